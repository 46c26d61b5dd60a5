/* Predicted delivery risk: lead-time statistics, the prediction for an open order, and the hysteresis
 * that turns predictions into orderAtRisk / orderBackOnTrack decisions. Pure: no I/O, no clock, no
 * globals. Every time is business time in Unix seconds (UTC), as the events carry it.
 *
 * Statistics. For every delivered order and every stage it entered, the duration from entering the
 * stage to delivery is one sample, kept under the keys (stage, warehouse) and, when the order has a
 * carrier, (stage, warehouse, carrier). A key holds one histogram per business day (the UTC day of the
 * delivery) with RISK_BUCKETS log-scale buckets; a window is the sum of the days' histograms in
 * (day(now) - window_days, day(now)]. Order independence: a day's histogram is a sum of counts
 * (commutative), and a key keeps exactly the days in (newest day seen - window_days, newest day seen]:
 * a sample older than that is dropped when it arrives or when a newer day evicts it, so after any
 * sequence of adds the state is the same function of the set of samples (tests/unit/test_risk.c checks
 * permutations). The store keeps the same statistics as one (stage, warehouse, carrier, day) slice per LMDB
 * value (store/include/store_risk.h), read back as windows for risk_predict_hist.
 *
 * Thread-safety: a risk_stats is not synchronised. Adds need exclusive access; the const queries
 * (risk_stats_window, risk_predict) may run concurrently with each other when nothing adds.
 * Ownership: risk_stats_new returns an object the caller frees with risk_stats_free. Strings passed
 * in are copied or only read during the call; outputs are caller-owned structs. */
#ifndef TOWER_RISK_H
#define TOWER_RISK_H

#include <stddef.h>
#include <stdint.h>

#define RISK_BUCKET_SUB_BITS 4    /* 2^4 buckets per power of two: each within 6.25 % (1.1 h at 18 h) */
/* 0..31 s exact, then 16 buckets per power of two up to 2^25 s (388 days): 352 buckets */
#define RISK_BUCKETS ((2 << RISK_BUCKET_SUB_BITS) + (24 - RISK_BUCKET_SUB_BITS) * (1 << RISK_BUCKET_SUB_BITS))
#define RISK_ID_MAX 64            /* warehouse and carrier ids, as in the contract */
#define RISK_MAX_WINDOW_DAYS 31
#define RISK_BASIS_MAX 192
#define RISK_DAY 86400

/* The contract's stages an open order can wait in, lowest to highest (DELIVERED and later close it). */
typedef enum {
    RISK_CREATED,
    RISK_APPROVED,
    RISK_RELEASED,
    RISK_PICKING,
    RISK_PACKED,
    RISK_READY,
    RISK_ROUTED,
    RISK_SHIPPED,
    RISK_STAGE_COUNT
} risk_stage;

/* "CREATED" ... "SHIPPED"; "?" for a value out of range. */
const char *risk_stage_name(risk_stage s);
/* The stage of that exact name, or -1. */
int risk_stage_parse(const char *name);

/* Buckets: the bucket of a duration (negative counts as 0, beyond 2^25-1 s as the last bucket), its
 * inclusive lower bound, exclusive upper bound, and the value it stands for (its midpoint). */
int risk_bucket_of(int64_t seconds);
int64_t risk_bucket_lo(int b);
int64_t risk_bucket_hi(int b);
int64_t risk_bucket_value(int b);

typedef struct risk_stats risk_stats;

/* A window of window_days days (1..RISK_MAX_WINDOW_DAYS; 7 is the default the docs use). NULL on a bad
 * argument or out of memory. */
risk_stats *risk_stats_new(int window_days);
void risk_stats_free(risk_stats *st);
int risk_stats_window_days(const risk_stats *st);
/* Number of keys held (for tests and sizing). */
size_t risk_stats_keys(const risk_stats *st);

/* One delivered order. warehouse/carrier: NULL or "" when unknown (an unknown warehouse is its own
 * key ""; without a carrier only the warehouse key gets the sample). entered[s]: when the order
 * entered stage s (its earliest milestone of that stage), 0 when it never did. */
typedef struct {
    const char *warehouse;
    const char *carrier;
    int64_t delivered_at;
    int64_t entered[RISK_STAGE_COUNT];
} risk_sample;

/* Add a delivered order. Returns the number of stages that gave a sample (a stage entered after the
 * delivery gives none: its milestones are out of order; a sample of a day older than its key's window
 * is counted here but dropped), or -1 with err naming the field (delivered_at <= 0, an id longer than
 * RISK_ID_MAX) or saying out of memory. Cancelled orders are never added: they have no delivery. */
int risk_stats_add(risk_stats *st, const risk_sample *s, char *err, size_t errlen);

/* A window's histogram. */
typedef struct {
    uint32_t n;
    uint32_t counts[RISK_BUCKETS];
} risk_hist;

/* The histogram of key (stage, warehouse[, carrier]) over the window ending on now's day. carrier NULL
 * or "" asks for the warehouse key. Days after now's day are not counted. Returns 0 (an unknown key
 * gives an empty histogram). */
int risk_stats_window(const risk_stats *st, risk_stage stage, const char *warehouse,
                      const char *carrier, int64_t now, risk_hist *out);

/* The pct-th percentile (nearest rank: the smallest bucket holding at least ceil(pct% of n) samples)
 * of the samples longer than `above` seconds (buckets whose upper bound exceeds it; pass -1 for all),
 * as a bucket value. *used gets how many samples it was taken over. -1 when there are none. */
int64_t risk_hist_percentile(const risk_hist *h, int pct, int64_t above, uint32_t *used);

/* Prediction parameters. */
typedef struct {
    int percentile;                      /* 50..99, default 50 (the backtest's best; see docs/risk.md) */
    uint32_t min_samples;                /* a key answers from this many samples, default 20 */
    int64_t fallback[RISK_STAGE_COUNT];  /* seconds from entering the stage to delivery when no key
                                            has enough samples (default: risk_fallback_from_sla of the
                                            built-in windows, 2 h dispatch, 24 h transit) */
} risk_config;

void risk_config_default(risk_config *c);
/* The fallback table as sums of the SLA chain's windows from each stage: approve (CREATED->APPROVED,
 * no built-in rule: pass 0 or a guess), release (15 m), readiness (RELEASED->READY, 4 h), routing
 * (READY->ROUTED, 1 h), dispatch (ROUTED->SHIPPED) and transit (SHIPPED->DELIVERED), none of which the
 * built-in rules give. A stage inside a window (PICKING, PACKED within readiness) gets the rest of it
 * counted from its own start: the whole window, a conservative choice. */
void risk_fallback_from_sla(int64_t approve, int64_t release, int64_t readiness, int64_t routing,
                            int64_t dispatch, int64_t transit, int64_t out[RISK_STAGE_COUNT]);
/* NULL when valid, else a message naming the field. */
const char *risk_config_check(const risk_config *c);

/* An open order at time now: the stage it waits in, since when, where, and its promise. */
typedef struct {
    risk_stage stage;
    int64_t entered_at;   /* when it entered stage; 0 = unknown (taken as now) */
    const char *warehouse;
    const char *carrier;  /* NULL or "" until known */
    int64_t promised_by;
    int64_t now;
} risk_query;

typedef enum { RISK_LEVEL_CARRIER, RISK_LEVEL_WAREHOUSE, RISK_LEVEL_FALLBACK } risk_level;

typedef struct {
    int64_t expected;     /* predicted delivery */
    int64_t remaining;    /* expected - now, >= 0 */
    int64_t slack;        /* promised_by - expected; negative = predicted late */
    risk_level level;
    uint32_t samples;     /* samples the percentile was taken over (0 for the fallback) */
    char basis[RISK_BASIS_MAX]; /* e.g. "p80 of 412 orders from PICKING at dc-2" */
} risk_prediction;

/* Predict: the carrier key when the carrier is known and its window has min_samples, else the
 * warehouse key, else the fallback. Within a key, the remaining time is the percentile of the
 * durations longer than the time already spent in the stage, minus that time (the order is known to
 * have waited that long); when fewer than min_samples are that long, the percentile of all of them
 * counted from now. Returns 0, or -1 with err naming the field (stage out of range, an id too long,
 * now <= 0, a bad config). */
int risk_predict(const risk_stats *st, const risk_config *c, const risk_query *q, risk_prediction *out,
                 char *err, size_t errlen);
/* The same from windows the caller already has (a cache, or the store's windows: store_risk_window): carrier_h is the
 * (stage, warehouse, carrier) window or NULL, warehouse_h the (stage, warehouse) window or NULL. */
int risk_predict_hist(const risk_hist *carrier_h, const risk_hist *warehouse_h, const risk_config *c,
                      const risk_query *q, risk_prediction *out, char *err, size_t errlen);

/* Hysteresis per order: raise when slack < raise_below, clear when slack > clear_above (which must be
 * greater: the gap is the band in which nothing changes), and never change again within min_dwell
 * seconds of the last change. A zero-initialised risk_hyst is an open order on track. */
typedef struct {
    int64_t raise_below;  /* default -90 min: predicted late by more than 1.5 h */
    int64_t clear_above;  /* default -30 min */
    int64_t min_dwell;    /* default 1 h */
    int64_t confirm;      /* raise only once slack < raise_below has held at every evaluation for this
                             long (default 90 min; 0: at the first such evaluation) */
} risk_hyst_config;

typedef struct {
    int at_risk;
    int closed;
    int changed;          /* has it ever changed */
    int64_t changed_at;
    int64_t pending_since; /* first evaluation of the current run below raise_below, 0 = none */
} risk_hyst;

typedef enum { RISK_NO_CHANGE, RISK_RAISE, RISK_CLEAR } risk_change;

void risk_hyst_config_default(risk_hyst_config *c);
/* NULL when valid, else a message naming the field. */
const char *risk_hyst_config_check(const risk_hyst_config *c);
/* One evaluation: RISK_RAISE means emit orderAtRisk, RISK_CLEAR orderBackOnTrack, else nothing. */
risk_change risk_hyst_step(risk_hyst *h, const risk_hyst_config *c, int64_t now, int64_t slack);
/* The order was delivered or cancelled: it leaves; no decision is emitted for it any more (the at_risk
 * view drops it by its own rule). */
void risk_hyst_close(risk_hyst *h);

#endif
