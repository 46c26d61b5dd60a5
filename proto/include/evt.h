/* The event contract's C codec: JSON <-> validated tower.v1.Event, protobuf, RFC 3339 times. */
#ifndef EVT_H
#define EVT_H

#include <stdio.h>
#include <jansson.h>

#include "ct.h"
#include "tower/v1/event.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The decoded event: protobuf-c's generated struct, used as the domain type. */
typedef Tower__V1__Event evt_event;

/** Largest accepted encoded event (JSON text or protobuf bytes). */
#define EVT_MAX_EVENT_BYTES (64 * 1024)
/** Longest event id; other correlation ids (order, shipment, route, warehouse, carrier). */
#define EVT_MAX_EVENT_ID 128
/** Every time in an event lies in the years 2000-2099 (UTC): [EVT_MIN_SECONDS, EVT_END_SECONDS). */
#define EVT_MIN_SECONDS INT64_C(946684800)
#define EVT_END_SECONDS INT64_C(4102444800)
#define EVT_MAX_ID 64
/** Longest free-text string (reasons, sku, customer, ...). */
#define EVT_MAX_TEXT 512
/** Longest note of an exception action (contract v1.1). */
#define EVT_MAX_NOTE 2000
/** Longest actor of an exception action. */
#define EVT_MAX_ACTOR 128

/**
 * Machine-readable reasons an event is rejected (dead-letter codes).
 * The string form is the name: "MISSING_FIELD".
 */
#define EVT_CODE_MAP(X)                                                        \
    X(OK)                    /* valid */                                       \
    X(MALFORMED)             /* not JSON, or not a JSON object */             \
    X(UNDECODABLE)           /* protobuf bytes that do not decode */          \
    X(TOO_LARGE)             /* over EVT_MAX_EVENT_BYTES or EVT_MAX_TEXT */   \
    X(MISSING_FIELD)         /* a required field is absent */                 \
    X(INVALID_TYPE)          /* a field has the wrong JSON type */            \
    X(INVALID_ID)            /* an id is empty, too long or has bad chars */  \
    X(INVALID_TIME)          /* a time is not RFC 3339 */                     \
    X(INVALID_VALUE)         /* qty <= 0, empty stops, unknown enum, ... */   \
    X(NO_PAYLOAD)            /* names no payload */                           \
    X(UNKNOWN_PAYLOAD)       /* names only payloads this version lacks */     \
    X(MULTIPLE_PAYLOADS)     /* names more than one payload */                \
    X(CONFLICTING_DUPLICATE) /* eventId already applied with other content */

typedef enum evt_code {
#define EVT_X(name) EVT_##name,
    EVT_CODE_MAP(EVT_X)
#undef EVT_X
    EVT_CODE_COUNT
} evt_code;

/** \brief "MISSING_FIELD" for EVT_MISSING_FIELD (static storage). */
const char *evt_code_str(evt_code c);

/** Why an event was rejected. */
typedef struct evt_error {
    evt_code code;       /**< EVT_OK when there is no error */
    char field[128];     /**< JSON path of the culprit ("orderCreated.lines[1].qty"); "" for the whole event */
    char message[512];   /**< a sentence naming the field and the problem, without any line prefix */
    char event_id[EVT_MAX_EVENT_ID + 1]; /**< the eventId when one could be read (even if invalid in itself: ""), else "" */
} evt_error;

/* ---- times ------------------------------------------------------------ */

/**
 * \brief Parse an RFC 3339 time ("2026-11-27T09:30:00.25+01:00") into UTC.
 * Accepts any UTC offset (Z, z, +HH:MM, -HH:MM), 'T' or 't', and 1 or more
 * fractional digits (beyond 9 are truncated). Rejects out-of-range fields
 * (month 13, Feb 30, second 60, hour 24, offset beyond 23:59).
 * \return 0 on success, -1 if malformed. *sec and *nanos are untouched on failure.
 */
int evt_time_parse(const char *s, int64_t *sec, int32_t *nanos);

/**
 * \brief Format a UTC instant as RFC 3339 with "Z": no fraction when nanos is 0,
 * else 3, 6 or 9 digits (the fewest that are exact), as proto3 JSON does.
 * \param out at least 40 bytes.
 */
void evt_time_format(int64_t sec, int32_t nanos, char *out);

/* ---- decoding and validation ----------------------------------------- */

/**
 * \brief Decode and validate one event given as a JSON object.
 * \param out receives a new event for the caller to free with evt_free; untouched on failure.
 * \return CT_OK, or CT_INVALID with *err filled (code, field, message, event_id).
 */
ct_status evt_from_json(evt_event **out, const json_t *obj, evt_error *err);

/** \brief evt_from_json on JSON text (one object); MALFORMED if it does not parse, TOO_LARGE past the limit. */
ct_status evt_from_json_text(evt_event **out, const char *text, size_t len, evt_error *err);

/**
 * \brief Decode protobuf bytes (as published on the bus) and validate.
 * Unknown fields are dropped and the event is normalised, so that
 * evt_pack gives the canonical bytes used for duplicate detection.
 * \return CT_OK, or CT_INVALID with *err (UNDECODABLE, or any validation code).
 */
ct_status evt_from_protobuf(evt_event **out, const uint8_t *data, size_t len, evt_error *err);

/**
 * \brief Check every rule of the contract on a decoded event, and normalise it
 * (timestamps with both seconds and nanos present, nanos in 0..999999999;
 * empty free-text strings become absent).
 * \return CT_OK or CT_INVALID with *err.
 */
ct_status evt_validate(evt_event *e, evt_error *err);

/** \brief Free an event from this codec (or protobuf-c's unpack); NULL is a no-op. */
void evt_free(evt_event *e);

/* ---- encoding --------------------------------------------------------- */

/** \brief The canonical JSON object of an event (new reference, for the caller to json_decref). */
json_t *evt_to_json(const evt_event *e);

/** \brief Append the canonical protobuf bytes of a normalised event to out. */
void evt_pack(const evt_event *e, ct_buf *out);

/** \brief The event type, i.e. the payload's JSON name ("orderApproved"); "" if none. */
const char *evt_type_name(const evt_event *e);

/** \brief The payload's snake_case name ("order_approved"), used in NATS subjects; "" if none. */
const char *evt_type_subject(const evt_event *e);

/* ---- exception ids (contract v1.1, evt_exid.c) ------------------------------------------- */

/** Longest exception id. */
#define EVT_MAX_EXID 256

/** What an exception id names: the entity whose item it is, the view and (but for a dead letter) since. */
typedef struct evt_exid {
    char kind;                    /**< 'o' an order's item, 's' a shipment's, 'd' a dead letter */
    char entity[EVT_MAX_ID + 1];  /**< the order or shipment id, or the dead letter's sequence (digits) */
    char view[32];                /**< the view */
    int64_t since_ns;             /**< the item's since in ns since the epoch (0 for a dead letter) */
} evt_exid;

/**
 * \brief The exception id of a view item, from its key ("o:<order>|<view>[|<sub>]", "s:...",
 * "d:<seq>|dead_letters") and since (ignored for a dead letter): "o~<order>~<view>[~<sub>]~<sinceNs>".
 * A sub part of id characters is kept (its '|' become '~'); any other is replaced by "h-<16 hex>", a hash
 * of it.
 * \return its length (0 and "" for a key that is not an item key).
 */
size_t evt_exid_build(char *out, size_t cap, const char *key, const Tower__V1__Timestamp *since);

/**
 * \brief Parse an exception id.
 * \return 0 with *out filled; -1 with *why (static, e.g. "names no known
 * view after the entity id") for an id that is malformed.
 */
int evt_exid_parse(const char *id, evt_exid *out, const char **why);

/** \brief 1 if name[0..len) is a view an exception id may name. */
int evt_exid_view_known(const char *name, size_t len);

/**
 * \brief The code a reference-data event defines (contract v1.2): warehouseDefined's warehouse id,
 * carrierDefined's carrier id (the payload's, else the envelope's), skuDefined's sku; NULL for another
 * event or one without its code. The string belongs to the event.
 */
const char *evt_defined_code(const evt_event *e);

/** \brief 1 if the event is an exception action (exceptionAcknowledged ... exceptionReopened). */
int evt_is_action(const evt_event *e);

/** The fields every action shares, or NULL members for an event that is no action. */
typedef struct evt_action {
    const char *exception_id; /**< what it acts on */
    const char *actor;        /**< who */
    const char *note;         /**< the note, or NULL */
} evt_action;

/** \brief The shared fields of an action (all NULL for another event). */
evt_action evt_action_of(const evt_event *e);

/* ---- reading files and bodies: NDJSON or a JSON array ----------------- */

typedef struct evt_reader evt_reader;

/** One record read from a file or body. */
typedef struct evt_record {
    evt_event *event;   /**< the valid event (owned by the caller), or NULL when rejected */
    evt_error error;    /**< why it was rejected when event is NULL */
    const char *raw;    /**< the record's bytes as read (borrowed until the next call) */
    size_t raw_len;     /**< their length */
    size_t line;        /**< 1-based line number (NDJSON) or element number (JSON array) */
} evt_record;

/**
 * \brief Read events from a stream. The first non-blank byte decides: '[' is a
 * JSON array (parsed whole), anything else NDJSON read line by line (blank
 * lines skipped). The stream is borrowed until evt_reader_destroy.
 */
ct_status evt_reader_open(evt_reader **out, FILE *in);

/** \brief Read events from memory (an HTTP body); data is borrowed. */
ct_status evt_reader_open_mem(evt_reader **out, const char *data, size_t len);

/**
 * \brief The next record. \return 1 with *rec filled, 0 at the end, -1 on an
 * I/O error or when a JSON array as a whole does not parse (then rec->error says why).
 */
int evt_reader_next(evt_reader *r, evt_record *rec);

/** \brief 1 if the input was a JSON array. */
int evt_reader_is_array(const evt_reader *r);

/** \brief Free the reader; NULL is a no-op. */
void evt_reader_destroy(evt_reader *r);

#ifdef __cplusplus
}
#endif
#endif
