/* Predicted risk in the store (docs/risk.md): the lead-time statistics and the open orders the SLA engine
 * evaluates, both kept by the writer in the write transaction as a function of the events.
 *
 * - Lead times (table risk_h): every delivered, not cancelled order gives, per stage it entered (at or
 *   before its delivery), the duration from entering the stage to delivery, counted in a log-scale
 *   histogram (risk.h's buckets) under (stage, warehouse) and, with a carrier, (stage, warehouse, carrier),
 *   in the slice of its delivery's UTC day. The writer keeps each delivered order's sample (risk_samp) and,
 *   when a later event changes it (a late milestone moving an entry time, a cancellation), subtracts the old
 *   sample and adds the new: the slices are the sum over the delivered orders of their current samples,
 *   whatever the arrival order. Slices are never pruned (a few hundred bytes per key and day).
 * - Open orders (risk_open): every order that is neither delivered nor cancelled, has a promisedBy and
 *   waits in a stage CREATED..SHIPPED, with that stage, when it entered it, its warehouse, carrier and
 *   promise, and its at-risk state (its latest orderAtRisk / orderBackOnTrack, and how many of those it has).
 *
 * Reads take a store_reader (store.h); what a callback receives is borrowed until it returns. */
#ifndef STORE_RISK_H
#define STORE_RISK_H

#include <stdint.h>

#include "risk.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One open order with a promise. Times in Unix seconds (business time). */
typedef struct store_risk_open {
    const char *order_id;   /**< borrowed for the callback */
    const char *warehouse;  /**< "" when unknown */
    const char *carrier;    /**< "" until known */
    risk_stage stage;       /**< the stage it waits in */
    int64_t entered_at;     /**< when it entered that stage */
    int64_t promised_by;    /**< its latest orderCreated's promisedBy */
    int at_risk;            /**< its latest orderAtRisk / orderBackOnTrack is orderAtRisk */
    int64_t changed_at;     /**< that event's occurredAt (0: none yet) */
    uint32_t changes;       /**< how many orderAtRisk / orderBackOnTrack events it has (distinct ids) */
} store_risk_open;

/** \brief Visit the open orders with a promise, in order id order; return non-zero from fn to stop.
 *  \return CT_OK or CT_STORE. */
ct_status store_risk_open_scan(store_reader *r, int (*fn)(void *ctx, const store_risk_open *o), void *ctx);

/** \brief One open order's record. \return CT_OK, CT_NOT_FOUND (not open, no promise, or unknown), CT_STORE. */
ct_status store_risk_open_get(store_reader *r, const char *order_id,
                              int (*fn)(void *ctx, const store_risk_open *o), void *ctx);

/**
 * \brief The lead-time histogram of key (stage, warehouse[, carrier]) over the window_days days ending on
 * now's UTC day: (day(now) - window_days, day(now)]. carrier NULL or "" asks for the warehouse key.
 * \return CT_OK (an unknown key gives n = 0); CT_INVALID for window_days outside 1..RISK_MAX_WINDOW_DAYS or an
 * id longer than RISK_ID_MAX; CT_STORE.
 */
ct_status store_risk_window(store_reader *r, risk_stage stage, const char *warehouse, const char *carrier,
                            int64_t now_s, int window_days, risk_hist *out);

/** One key with samples in the window (store_risk_keys). */
typedef struct store_risk_key {
    risk_stage stage;
    const char *warehouse;  /**< borrowed; "" for orders without a warehouse */
    const char *carrier;    /**< borrowed; "" for the warehouse key */
    const risk_hist *hist;  /**< the window's histogram (borrowed) */
} store_risk_key;

/**
 * \brief Visit every key with at least one sample in the window ending on now's day, in key order (stage,
 * warehouse, carrier; the warehouse key before its carriers). Return non-zero from fn to stop.
 * \return CT_OK; CT_INVALID for a bad window; CT_STORE.
 */
ct_status store_risk_keys(store_reader *r, int64_t now_s, int window_days,
                          int (*fn)(void *ctx, const store_risk_key *k), void *ctx);

#ifdef __cplusplus
}
#endif
#endif
