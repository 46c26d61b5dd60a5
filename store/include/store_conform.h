/* Per-producer conformance (docs/contract/conformance.md): rejected messages counted by the producer that
 * sent them (source.system, source.instance) and their code, with the first and last seen and an example.
 * The store keeps the dead letters' figures (written with each new dead letter, so a rebuild gives the same
 * counts and sequences); the server keeps the HTTP ingest's rejections in memory with the same rows. */
#ifndef STORE_CONFORM_H
#define STORE_CONFORM_H

#include <stddef.h>
#include <stdint.h>

#include "ct.h"
#include "evt.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Room for a system label: "erp", "wms", "tms", "carrier", "finance", "tower", "(other)", "(unknown)". */
#define STORE_CONFORM_SYSTEM 16
/** Room for an instance label: an id (1-64 of [A-Za-z0-9._:-]), "(none)", "(invalid)" or "(overflow)". */
#define STORE_CONFORM_INSTANCE (EVT_MAX_ID + 1)
/** Distinct (system, instance) pairs counted under their own instance; later ones count as "(overflow)". */
#define STORE_CONFORM_MAX_PRODUCERS 64
/** The longest example message kept (cut at a UTF-8 boundary). */
#define STORE_CONFORM_EXAMPLE 512

/** One producer's rejections of one code. */
typedef struct store_conform_row {
    char system[STORE_CONFORM_SYSTEM];
    char instance[STORE_CONFORM_INSTANCE];
    char code[32];                      /**< a dead-letter code, e.g. "INVALID_ID" */
    uint64_t count;                     /**< rejections counted */
    uint64_t first_seq, last_seq;       /**< stream sequences of the first and the latest (0: the ingest's) */
    int64_t first_ns, last_ns;          /**< when the first and the latest were received (ns since the epoch) */
    uint64_t example_seq;               /**< the latest one's sequence (0: the ingest's) */
    char example_event_id[EVT_MAX_EVENT_ID + 1]; /**< its eventId when one could be read, else "" */
    char example[STORE_CONFORM_EXAMPLE];         /**< its message (a sentence naming the field) */
} store_conform_row;

/**
 * \brief The producer labels of a rejected message (pure): from the valid event when given, else read from
 * the bytes (JSON: the "source" object; protobuf: field 3's fields 1 and 2, without decoding the rest).
 * system is one of the six known systems, "(unknown)" when none can be read, or "(other)"; instance is an id
 * (1-64 of [A-Za-z0-9._:-]), "(none)" when absent or empty, or "(invalid)". Bounded: at most
 * EVT_MAX_EVENT_BYTES are looked at (beyond: "(unknown)", "(none)"), JSON nesting as the codec bounds it.
 * \param raw the bytes as received (may be NULL when len is 0); content_type "application/x-protobuf" or
 *        anything else for JSON.
 * \param valid the decoded event when there is one (a conflicting duplicate), else NULL.
 */
void store_conform_source(const void *raw, size_t len, const char *content_type, const evt_event *valid,
                          char system[STORE_CONFORM_SYSTEM], char instance[STORE_CONFORM_INSTANCE]);

/** \brief Count one more rejection in a row (pure): count, first/last sequence and time, the example. */
void store_conform_row_add(store_conform_row *r, uint64_t seq, int64_t now_ns, const char *event_id,
                           const char *message);

/** \brief The row as JSON (a new object): system, instance, code, count, firstSeenAt, lastSeenAt,
 *  firstSeq/lastSeq (when not 0), example {seq, eventId, message}. */
json_t *store_conform_row_json(const store_conform_row *r);

typedef struct store_reader store_reader;

/**
 * \brief Every dead-letter row of the store, ordered by system, instance and code.
 * \param fn called per row (the row is valid during the call); a non-zero return stops the scan.
 * \return CT_OK, or CT_STORE_CORRUPT for a row that does not decode (the rows before it were given).
 */
ct_status store_conform_scan(store_reader *r, int (*fn)(void *ctx, const store_conform_row *row), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
