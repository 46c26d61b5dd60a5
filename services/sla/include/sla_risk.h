/* Predicted risk in the SLA engine (docs/risk.md): the decision for one open order, its orderAtRisk /
 * orderBackOnTrack event, its alert, and the options. Pure but for sla_risk_opts_config reading a ct_config.
 *
 * Where the hysteresis state lives: whether an order is at risk, and when that last changed, are the store's
 * (its latest orderAtRisk / orderBackOnTrack, store_risk_open); the engine keeps only "since when has the
 * slack been below the raise threshold" (pending_since) in memory. An order the engine has no memory of (a
 * new order, a restart, --once) gets it by predicting the order again as of max(entered, now - confirm) with
 * the statistics of now: if it was predicted late then too, pending_since is that instant. So a restart never
 * raises again what is raised (the store says so), and a raise after a restart waits for no more than the
 * confirm period would have. */
#ifndef SLA_RISK_H
#define SLA_RISK_H

#include <jansson.h>
#include <stdint.h>

#include "ct.h"
#include "ct_config.h"
#include "evt.h"
#include "risk.h"
#include "sla.h"
#include "store_risk.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The options of predicted risk. */
typedef struct sla_risk_opts {
    int enabled;            /**< evaluate open orders (default 1) */
    int window_days;        /**< days of deliveries the statistics cover (default 7) */
    risk_config cfg;        /**< percentile, min_samples, fallback (risk_config_default) */
    risk_hyst_config hyst;  /**< raise / clear thresholds, confirm, dwell (risk_hyst_config_default) */
    const char *severity;   /**< the alerts' severity label (default "warning"; static or borrowed) */
} sla_risk_opts;

/** \brief The defaults of docs/risk.md. */
void sla_risk_opts_default(sla_risk_opts *o);

/**
 * \brief The options from a command's configuration (flags, TOWER_SLA_RISK_*, [sla] risk_* keys): risk,
 * risk-percentile, risk-window, risk-min-samples, risk-raise-late, risk-clear-late, risk-confirm, risk-dwell,
 * risk-severity (see SLA_RISK_OPT_DEFS). \return 0, or -1 with err naming the option.
 */
int sla_risk_opts_config(const ct_config *c, sla_risk_opts *o, char *err, size_t errlen);

/** The ct_opt_def initialisers of the options above, for a command's option table. */
#define SLA_RISK_OPT_DEFS                                                                                         \
    {"risk", 0, "TOWER_SLA_RISK", "sla.risk", CT_OPT_BOOL, "true", NULL,                                          \
     "predict which open orders will miss their promisedBy and raise orderAtRisk / orderBackOnTrack", 0, 0},      \
    {"risk-percentile", 0, "TOWER_SLA_RISK_PERCENTILE", "sla.risk_percentile", CT_OPT_INT, "50", "P",             \
     "the percentile (50-99) of recent lead times taken as the expected one", 0, 0},                              \
    {"risk-window", 0, "TOWER_SLA_RISK_WINDOW", "sla.risk_window", CT_OPT_DURATION, "7d", "DURATION",             \
     "the days of deliveries the lead-time statistics cover (1d-31d, whole days)", 0, 0},                         \
    {"risk-min-samples", 0, "TOWER_SLA_RISK_MIN_SAMPLES", "sla.risk_min_samples", CT_OPT_INT, "20", "N",          \
     "samples a (stage, warehouse[, carrier]) key needs, else the SLA chain is the fallback", 0, 0},              \
    {"risk-raise-late", 0, "TOWER_SLA_RISK_RAISE_LATE", "sla.risk_raise_late", CT_OPT_DURATION, "90m",            \
     "DURATION", "raise when an order is predicted later than its promise by more than this...", 0, 0},           \
    {"risk-confirm", 0, "TOWER_SLA_RISK_CONFIRM", "sla.risk_confirm", CT_OPT_DURATION, "90m", "DURATION",        \
     "...at every evaluation for this long (0: at once)", 0, 0},                                                  \
    {"risk-clear-late", 0, "TOWER_SLA_RISK_CLEAR_LATE", "sla.risk_clear_late", CT_OPT_DURATION, "30m",            \
     "DURATION", "clear (orderBackOnTrack) when predicted late by less than this (must be < raise)", 0, 0},       \
    {"risk-dwell", 0, "TOWER_SLA_RISK_DWELL", "sla.risk_dwell", CT_OPT_DURATION, "1h", "DURATION",                \
     "no change of an order within this long of its previous one", 0, 0},                                         \
    {"risk-severity", 0, "TOWER_SLA_RISK_SEVERITY", "sla.risk_severity", CT_OPT_STRING, "warning", "NAME",        \
     "the severity label of TowerOrderAtRisk alerts ([A-Za-z0-9_-])", 0, 0}

/** The windows one order's prediction needs (either may be NULL: no samples). */
typedef struct sla_risk_windows {
    const risk_hist *carrier;    /**< (stage, warehouse, carrier), when the carrier is known */
    const risk_hist *warehouse;  /**< (stage, warehouse) */
} sla_risk_windows;

/**
 * \brief Decide for one open order at now_s: predict, then step its hysteresis. *pending_since is the
 * engine's memory (0: below the raise threshold at no evaluation remembered; -1: nothing remembered, seed
 * it by predicting as of max(entered, now - confirm)) and is updated. pred receives the prediction.
 * \return RISK_RAISE, RISK_CLEAR or RISK_NO_CHANGE; -1 with err when the order cannot be predicted.
 */
int sla_risk_decide(const store_risk_open *o, const sla_risk_windows *w, const sla_risk_opts *opts, int64_t now_s,
                    int64_t *pending_since, risk_prediction *pred, char *err, size_t errlen);

/** \brief The eventId of an order's n-th change (n >= 1): "risk-<orderId>-<n>". \return 0, -1 if too long. */
int sla_risk_event_id(const char *order_id, uint32_t n, char *out);

/**
 * \brief The orderAtRisk (raise) or orderBackOnTrack event of a decision: eventId sla_risk_event_id(order,
 * changes + 1) (the same whoever decides the order's next change: JetStream and the fold keep one), occurredAt
 * now, source tower/sla, orderId, predictedBy, promisedBy, stage, basis.
 * \param out receives a validated event for the caller to evt_free. \return CT_OK, or CT_INVALID with err.
 */
ct_status sla_risk_event(const store_risk_open *o, int raise, const risk_prediction *pred, int64_t now_s,
                         evt_event **out, evt_error *err);

/**
 * \brief The Alertmanager alert of an at_risk item: alertname TowerOrderAtRisk, severity, warehouse,
 * carrier, stage, order_id; annotations summary ("order O expected 14:20, promised 12:00, waiting in PICKING
 * at dc-2"), predictedBy, promisedBy, basis, dashboard and runbook_url links; startsAt / endsAt as
 * sla_alert_json (wall clock). \return a new reference.
 */
json_t *sla_risk_alert_json(const Tower__V1__ViewItem *it, const sla_alert_opts *o, const sla_alert_clock *now,
                            const char *severity);

/** \brief The one-line explanation "expected 14:20, promised 12:00, waiting in PICKING at dc-2" (UTC times,
 *  dates added when not the same day) into out. */
void sla_risk_line(const Tower__V1__ViewItem *it, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
