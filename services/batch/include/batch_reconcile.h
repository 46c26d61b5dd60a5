/*
 * Reconciliation of a legacy system's snapshot with the tower (towerd reconcile, docs/reconcile.md): the
 * [reconcile] section of a mapping file (parsed by batch_mapping.c) and the pure comparison of one
 * snapshot row's status with the milestones the tower has seen of the order. No I/O; single-threaded per
 * object.
 */
#ifndef BATCH_RECONCILE_H
#define BATCH_RECONCILE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "batch.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Most milestones or statuses one [reconcile] key may list. */
#define BATCH_REC_MAX_LIST 16

/** status.VALUE = MILESTONE, ...: what one status of the system implies the tower has seen. */
typedef struct batch_rec_status {
    char *value;        /**< the status as the system writes it (exact, after trimming spaces) */
    char **milestones;  /**< the event types it implies (none: a status that implies nothing) */
    size_t n;
    int line;           /**< its line in the mapping */
} batch_rec_status;

/** reflect.MILESTONE = STATUS, ...: once the tower has seen MILESTONE, the system's status must be one of these. */
typedef struct batch_rec_reflect {
    char *milestone;
    char **statuses;    /**< each one of the status.VALUE values */
    size_t n;
    int line;
} batch_rec_reflect;

/** A mapping's [reconcile] section (owned by the mapping). */
typedef struct batch_rec_spec {
    char *id_column, *status_column; /**< the columns of the order id and of its status (required) */
    int line;                        /**< the line of the [reconcile] header */
    int id_line, status_line, closing_line;
    long id_col, status_col;         /**< their 0-based indexes once bound (batch_mapping_bind_reconcile) */
    batch_rec_status *st;
    size_t nst;
    batch_rec_reflect *rf;
    size_t nrf;
    char **closing;                  /**< milestones that close an order (--full: not expected in a snapshot of
                                          open orders); default invoicePosted, orderCancelled */
    size_t nclosing;
} batch_rec_spec;

/** Flag of batch_mapping_parse_flags: the mapping is for reconciliation ([reconcile] required, [kind] optional). */
#define BATCH_MAPPING_RECONCILE 1

/**
 * \brief batch_mapping_parse with flags: BATCH_MAPPING_RECONCILE requires a [reconcile] section and lets
 * the mapping have no [kind] section (batch_mapping_parse requires one, and checks but ignores [reconcile]).
 */
ct_status batch_mapping_parse_flags(batch_mapping **out, const char *text, size_t len, const char *name,
                                    unsigned flags, char **err);

/** \brief The mapping's [reconcile] section (borrowed from m), or NULL when it has none. */
const batch_rec_spec *batch_mapping_reconcile(const batch_mapping *m);

/**
 * \brief Resolve the [reconcile] id and status columns for one file: against its header row (NULL when
 * the mapping has none). \return 0; -1 with *err "MAPPING:LINE: column \"x\" is not in the header of FILE
 * (...)" (for the caller to free), or when the mapping has no [reconcile].
 */
int batch_mapping_bind_reconcile(batch_mapping *m, const batch_row *header, const char *file, char **err);

/** The kinds of disagreement (and of snapshot rows that could not be compared). */
typedef enum batch_rec_kind {
    BATCH_REC_MISSING_MILESTONE,      /**< the status implies a milestone the tower has not seen */
    BATCH_REC_NOT_REFLECTED,          /**< the tower has seen a milestone (reflect.M) the status does not reflect */
    BATCH_REC_UNKNOWN_ORDER,          /**< the tower has no event of the order */
    BATCH_REC_MISSING_FROM_SNAPSHOT,  /**< --full: an order open in the tower that the snapshot does not list */
    BATCH_REC_UNKNOWN_STATUS,         /**< a status the mapping has no status.VALUE for */
    BATCH_REC_BAD_ROW,                /**< a row that cannot be read, or without a valid order id or status */
    BATCH_REC_DUPLICATE,              /**< the order is listed again in the snapshot */
    BATCH_REC_KIND_COUNT
} batch_rec_kind;

/** \brief "missing_milestone", "not_reflected", ... (static storage). */
const char *batch_rec_kind_name(batch_rec_kind k);

/** One disagreement found by batch_rec_compare. */
typedef struct batch_rec_finding {
    batch_rec_kind kind;
    const char *milestone; /**< MISSING_MILESTONE, NOT_REFLECTED: the event type (borrowed from the spec) */
} batch_rec_finding;

/** \brief The status.VALUE entry of a status (exact match), or NULL. */
const batch_rec_status *batch_rec_status_find(const batch_rec_spec *s, const char *value);

/**
 * \brief Compare one row: the system's status with the milestones the tower has seen of the order
 * (an object event type -> time, as store_entity_json's "milestones"; NULL: the tower does not know the
 * order). Findings, in this order: UNKNOWN_STATUS (alone), UNKNOWN_ORDER (alone), then every
 * MISSING_MILESTONE of the status's milestones, then every NOT_REFLECTED. \return how many were found,
 * of which the first cap are written (BATCH_REC_MAX_LIST + s->nrf + 1 is always enough).
 */
size_t batch_rec_compare(const batch_rec_spec *s, const char *status, const json_t *milestones,
                         batch_rec_finding *out, size_t cap);

/** \brief 1 if the milestones hold none of the spec's closing milestones (the order is open). */
int batch_rec_is_open(const batch_rec_spec *s, const json_t *milestones);

/**
 * \brief A disagreement as JSON (a new reference): {"file", "line" (0: left out), "orderId", "kind",
 * "system", "status" (when known), "milestone" (when one), "towerStage" (from entity's "stage", when the
 * tower knows the order), "message" (what the system says vs what the tower has) and "action" (what to do)}.
 * \param entity store_entity_json's document of the order, or NULL. \param detail for BAD_ROW: why.
 */
json_t *batch_rec_finding_json(const batch_rec_finding *f, const char *system, const char *file, size_t line,
                               const char *order, const char *status, const json_t *entity, const char *detail);

/* ---- mismatches as events (towerd reconcile --publish; contract v1.2 mismatchFound / mismatchCleared) ---- */

/**
 * \brief The check a finding is published as: "missing_milestone:MILESTONE", "not_reflected:MILESTONE",
 * "unknown_order" or "missing_from_snapshot", written to out (cap bytes, 80 is always enough).
 * \return 1; 0 for the export's own problems (unknown_status, bad_row, duplicate), which are no mismatch.
 */
int batch_rec_check(const batch_rec_finding *f, char *out, size_t cap);

/**
 * \brief What the system says (its status, or "not listed") and what the tower has (e.g. "stage APPROVED;
 * orderReleased not seen") for a finding batch_rec_check accepts. \param entity store_entity_json's document
 * of the order, or NULL. *theirs and *ours are new strings (the caller frees them), cleaned like
 * batch_rec_clean.
 */
void batch_rec_sides(const batch_rec_finding *f, const char *status, const json_t *entity, char **theirs,
                     char **ours);

/** \brief A copy of untrusted text fit for an event: control bytes as '?', every non-ASCII byte as '?' when it
 *  is not UTF-8, cut to at most max bytes on a character boundary (a new string). */
char *batch_rec_clean(const char *s, size_t max);

/** One mismatch event to build (every string borrowed; NULL for an absent optional field). */
typedef struct batch_rec_mismatch {
    int cleared;            /**< 0: mismatchFound; 1: mismatchCleared (theirs, ours and message unused) */
    const char *order;      /**< the order that disagrees (the envelope's orderId) */
    const char *system;     /**< the system reconciled, "erp" */
    const char *check;      /**< batch_rec_check's */
    const char *theirs, *ours, *message;
    const char *snapshot;   /**< the snapshot's name and time, as people read it */
    uint64_t snapshot_id;   /**< a hash of what identifies the snapshot (names, sizes, times, contents) */
    int64_t at_s;           /**< occurredAt: the snapshot's time */
    int32_t at_ns;
} batch_rec_mismatch;

/**
 * \brief The event as JSON (a new reference), source "tower". Its eventId, "rec-SYSTEM-f-HEX" or
 * "rec-SYSTEM-c-HEX", is a hash of the snapshot id, the order and every field: the same disagreement in the
 * same snapshot is the same event (published again, it is a duplicate), a changed one a new event.
 */
json_t *batch_rec_mismatch_event(const batch_rec_mismatch *m);

#ifdef __cplusplus
}
#endif
#endif
