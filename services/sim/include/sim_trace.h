/* A seeded generator of realistic event traces: orders across warehouses from creation to invoice, with faults. */
#ifndef SIM_TRACE_H
#define SIM_TRACE_H

#include <stdint.h>

#include "ct.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What one generated record is, so that tests can count what to expect. */
typedef enum sim_kind {
    SIM_VALID,     /**< a valid event, first time emitted */
    SIM_DUPLICATE, /**< byte-identical repeat of an earlier valid event */
    SIM_REORDERED, /**< a valid event re-emitted with the same content but other JSON spelling
                        (key order, UTC offset): still the same event, a duplicate */
    SIM_BAD,       /**< invalid: malformed JSON, missing field, bad id/time, no payload, bad value */
    SIM_CONFLICT   /**< reuses an earlier eventId with different content */
} sim_kind;

/** Knobs of the generator. Start from sim_trace_opts_default. */
typedef struct sim_trace_opts {
    uint64_t seed;            /**< same seed, same options: same trace, byte for byte */
    uint32_t orders;          /**< orders to generate (default 1000) */
    uint32_t warehouses;      /**< warehouses "dc-1".."dc-N" (default 3) */
    int64_t start_ns;         /**< occurredAt of the first order, ns since epoch (default 2026-11-02T06:00:00Z) */
    double orders_per_minute; /**< mean order arrival rate in trace time (default 60) */
    double p_hold;            /**< order put on credit/pricing/allocation hold (then usually released) */
    double p_short_pick;      /**< a short pick per order (usually resolved) */
    double p_multi_shipment;  /**< order packed into 2-3 shipments */
    double p_block;           /**< shipment blocked at the dock (usually unblocked) */
    double p_route_fail;      /**< route planning fails for a batch (retried later) */
    double p_cancel;          /**< order cancelled at some stage */
    double p_missing_pod;     /**< delivery without proof of delivery, ever */
    double p_attempt_fail;    /**< failed delivery attempt before success */
    double p_posting_fail;    /**< invoice posting fails (usually retried and posted) */
    double p_stuck;           /**< order stops at a random stage (never released, never routed, ...) */
    double p_late;            /**< event reported late: emitted after later events (out of order) */
    double p_duplicate;       /**< valid event emitted again (SIM_DUPLICATE or SIM_REORDERED) */
    double p_bad;             /**< a bad record is emitted (SIM_BAD) */
    double p_conflict;        /**< a conflicting duplicate is emitted (SIM_CONFLICT) */
    int offsets;              /**< when non-zero, some times carry non-UTC offsets and fractional seconds */
    double p_drift;           /**< order breaks the milestone sequence: released before approval, routed without
                                   readiness, invoiced before shipment (default small; cancellations drift too) */
    uint32_t run;             /**< 0 (default): ids as always ("SO-100000", "erp-1"); N > 0: every id the
                                   generator makes carries "RN-" ("SO-R3-100000", "erp-R3-1", "RT-R3-000001"),
                                   so that several runs of one seed can share a stream without colliding.
                                   Changes only the ids: the story and the faults stay the same. */
    int mdm;                  /**< when non-zero, also play the master-data system (source "mdm", instance "mdm-1",
                                   the last source): before the first order it defines every warehouse (name,
                                   region, time zone), carrier and sku the trace names (trace_mdm.c). Default 0:
                                   the trace is the same as without it. */
    double p_undefined;       /**< with mdm: an order's first line names a sku the master data never defines
                                   (SKU-90000..SKU-90049; drawn from a stream of its own, so the rest of the trace
                                   stays the same). Default 0.01 */
    int bad_days;             /**< when non-zero, warehouses and carriers have bad days (predicted risk, docs/risk.md):
                                   picking starts 3-6 h late on about one day in five per warehouse, deliveries are
                                   4-9 h late on about one day in six per carrier (a hash of seed, site and day, not
                                   the random sequence). Default 0 (towerd gen); the simulators turn it on. */
} sim_trace_opts;

/** \brief Fill *o with realistic defaults (all fault rates small but non-zero, p_conflict 0). */
void sim_trace_opts_default(sim_trace_opts *o);

typedef struct sim_trace sim_trace;

/** One generated record. */
typedef struct sim_record {
    const char *line;  /**< one JSON object, NUL-terminated, no newline; borrowed until the next call */
    size_t len;        /**< strlen(line) */
    int64_t emit_ns;   /**< when the source system reports it (trace time; >= occurredAt; non-decreasing) */
    sim_kind kind;     /**< what it is */
    int source;        /**< the reporting system instance that emits it: 0 .. sim_trace_source_count() - 1 */
} sim_record;

/**
 * \brief Create a generator. Memory stays bounded however many orders are
 * asked for (orders are generated as the trace advances).
 * \return CT_OK, or CT_INVALID if an option is out of range.
 */
ct_status sim_trace_create(sim_trace **out, const sim_trace_opts *o);

/** \brief The next record in emission order. \return 1, or 0 when the trace is over. */
int sim_trace_next(sim_trace *t, sim_record *rec);

/** \brief Free the generator; NULL is a no-op. */
void sim_trace_destroy(sim_trace *t);

/**
 * \brief How many reporting system instances the generator plays: the ERP, the route planner,
 * finance, the tower itself (its SLA engine's slaBreached), one WMS per warehouse, then the carriers.
 */
int sim_trace_source_count(const sim_trace *t);

/** One reporting system instance, as its records name it in "source". */
typedef struct sim_source {
    const char *system;   /**< source.system: "erp", "tms", "finance", "tower", "wms" or "carrier" */
    const char *instance; /**< source.instance: "erp-eu", "wms-dc2", "dhl", ... */
} sim_source;

/**
 * \brief Describe instance i (0 <= i < sim_trace_source_count); the strings are borrowed until
 * sim_trace_destroy. A record's source is the instance its envelope names, even for a bad record
 * (whose "source" may itself be broken: it is still that system that sent it).
 */
void sim_trace_source_get(const sim_trace *t, int i, sim_source *out);

/** What the generator holds in memory now: a debug view for tests of bounded memory. */
typedef struct sim_trace_stats {
    uint32_t orders_created; /**< orders created so far */
    size_t orders_live;      /**< orders held now (in flight) */
    size_t orders_peak;      /**< most orders held at once */
    size_t shipments_live;   /**< shipments held now */
    size_t shipments_peak;   /**< most shipments held at once */
    size_t routes_live;      /**< routes held now */
    size_t pending;          /**< scheduled steps plus records not yet emitted */
    size_t pending_peak;     /**< most of those at once */
} sim_trace_stats;

/** \brief Copy the generator's counters into *out (t is only read). */
void sim_trace_stats_get(const sim_trace *t, sim_trace_stats *out);

#ifdef __cplusplus
}
#endif
#endif
