/* The SLA engine: overdue dues from the store become slaBreached events; open breaches become Alertmanager alerts. */
#ifndef SLA_ENGINE_H
#define SLA_ENGINE_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bus.h"
#include "ct.h"
#include "sla.h"
#include "sla_risk.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Options of sla_engine_run. Zero values mean the defaults. */
typedef struct sla_engine_opts {
    const char *data_dir;        /**< the store, opened read-only (it may not exist yet) */
    const sla_rules *rules;      /**< severities of alerts (NULL: defaults). The dues themselves are computed by
                                      the projector with its rules, in the store. */
    const char *alertmanager;    /**< Alertmanager's base URL, e.g. http://127.0.0.1:9093 (NULL: no alerts) */
    const char *link_base;       /**< the dashboard's base URL for links in alerts (NULL: none) */
    int64_t resend_ns;           /**< firing alerts are re-sent this often (default 60 s) */
    int64_t poll_ns;             /**< real time between looks at the store (default 1 s) */
    int64_t clock_offset_ns;     /**< added to ct_now_ns(): a shifted "now" for tests and demos */
    int once;                    /**< one cycle (publish what is overdue, one alert post), then return */
    int64_t am_timeout_ms;       /**< per Alertmanager request (default 5000) */
    unsigned breaker_failures;   /**< consecutive failures that open the circuit (default 5) */
    int64_t breaker_open_ns;     /**< how long the circuit stays open before one trial (default 60 s) */
    int64_t backoff_cap_ns;      /**< the longest pause between two failed attempts (default 30 s) */
    const sla_risk_opts *risk;   /**< predicted risk (docs/risk.md; NULL: sla_risk_opts_default, enabled) */
    int64_t risk_every_ns;       /**< real time between two risk evaluations (default 5 s; --once: one) */
} sla_engine_opts;

/** What the engine did. The alert fields are atomic: another thread (the HTTP server's /metrics, through
 * sla_engine_metrics) reads them while the engine runs; read the others once it has returned. */
typedef struct sla_engine_figures {
    uint64_t overdue;            /**< overdue dues seen in the last cycle */
    uint64_t published;          /**< breaches JetStream stored */
    uint64_t duplicates;         /**< breaches JetStream already had (another SLA process, or a restart) */
    uint64_t publish_failures;   /**< breaches not stored (retried next cycle) */
    _Atomic uint64_t alert_posts;    /**< successful posts to Alertmanager */
    _Atomic uint64_t alert_failures; /**< failed posts */
    _Atomic uint64_t alerts_firing;  /**< alerts firing as last delivered */
    atomic_int breaker_open;     /**< 1 while the circuit to Alertmanager is open */
    int64_t next_due_ns;         /**< the next due time (0: none) */
    uint64_t risk_open;          /**< open orders with a promise evaluated in the last risk cycle */
    uint64_t risk_raised;        /**< orderAtRisk events JetStream stored */
    uint64_t risk_cleared;       /**< orderBackOnTrack events JetStream stored */
    uint64_t risk_failures;      /**< risk events not stored (decided again next cycle) */
    _Atomic uint64_t risk_alerts_firing; /**< TowerOrderAtRisk alerts firing as last delivered */
} sla_engine_figures;

/** The engine's predicted-risk state: the pending memory of sla_risk.h and the changes published but not
 *  folded yet. One per engine; not thread-safe. */
typedef struct sla_risk_runner sla_risk_runner;
/** \brief A runner with these options (copied; NULL: defaults). Free with sla_risk_runner_free. */
sla_risk_runner *sla_risk_runner_new(const sla_risk_opts *o);
void sla_risk_runner_free(sla_risk_runner *r);
/**
 * \brief One risk cycle at now_ns: read the store's open orders with a promise and their lead-time windows in
 * one snapshot, decide each (sla_risk_decide), publish the orderAtRisk / orderBackOnTrack events (stable ids:
 * a restart or a second engine publish the same change once) and wait for their acks.
 * \return 0, or -1 when the store could not be read or some event was not stored.
 */
int sla_risk_cycle(sla_risk_runner *r, bus *b, store *s, int64_t now_ns, sla_engine_figures *fig);

/**
 * \brief Append the engine's families in the Prometheus text format:
 * tower_sla_alertmanager_posts_total{result="ok|error"}, tower_sla_alerts_firing and
 * tower_sla_alertmanager_circuit_open. Safe from any thread while the engine runs.
 */
void sla_engine_metrics(ct_buf *b, const sla_engine_figures *f);

/**
 * \brief Run the SLA engine until *stop becomes non-zero (or one cycle with o->once).
 *
 * Each cycle reads the store's due index in one read transaction and publishes
 * a slaBreached event (sla_breach_event: a deterministic eventId, so JetStream
 * and the fold drop copies) for every due at or before now; then, with an
 * Alertmanager, posts one alert per open breach of the sla_breaches view
 * (re-sent every resend_ns) and a resolved alert for every breach that closed
 * since the last delivery. Each firing alert carries the breach's lifecycle as annotations: "state"
 * (store_item_state at the engine's now: open, acknowledged or snoozed) and "assignee" (when assigned); a
 * change of either is posted at once. Failed posts back off exponentially; after
 * breaker_failures in a row the circuit opens for breaker_open_ns. Alert state
 * is re-derived from the store each cycle, so nothing is lost while
 * Alertmanager is away. Sleeps until the next due time or the next poll.
 *
 * Does not block the projector: it only reads the store, from its own thread or process.
 * \param fig when not NULL, updated as the engine goes.
 * \return 0 (stopped, or the one cycle done), 1 on a failure in once mode (no store, publish failed).
 */
int sla_engine_run(bus *b, const sla_engine_opts *o, volatile sig_atomic_t *stop, sla_engine_figures *fig);

#ifdef __cplusplus
}
#endif
#endif
