/* Business-milestone SLAs, the pure part: the rules file, breach event ids and events, alert bodies. */
#ifndef SLA_H
#define SLA_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "ct.h"
#include "evt.h"
#include "fold.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Nothing here does I/O (but sla_rules_load reading its file) or reads a
 * clock: "now" is an argument. The engine (sla_engine.h) does the rest.
 */

/* ---- rules --------------------------------------------------------------- */

/** The longest rule name (it is part of breach event ids, which are at most 128 characters). */
#define SLA_RULE_NAME_MAX 32

typedef struct sla_rules sla_rules;

/**
 * \brief Load SLA rules: the defaults of docs/contract.md ("SLA rules"), changed and extended by an INI file.
 *
 * One section per rule or scoped override:
 *
 *     [rule release]                     ; change a default rule
 *     within = 30m
 *     [rule release warehouse=dc-2]      ; an override for one warehouse
 *     within = 10m
 *     severity = critical
 *     [rule release channel=SERVICE carrier=dhl]
 *     enabled = false
 *     [rule express_pod]                 ; a rule of one's own
 *     from = deliveryCompleted
 *     to = podCaptured
 *     within = 2h
 *
 * Keys: from, to (a supported pair, see FOLD_SLA_PAIR_MAP), within (a duration, > 0),
 * severity ([A-Za-z0-9_-], default "warning"), enabled (true/false). Scopes
 * (warehouse=, carrier=, channel= ECOMMERCE|EDI|SERVICE) go in the section name.
 * An override takes what it does not set from the unscoped rule of its name,
 * and cannot change from/to. A new rule needs from, to and within.
 *
 * \param out receives the rules; untouched on failure.
 * \param path the file, or NULL for the defaults alone.
 * \param err on failure, receives "FILE:LINE: problem" for the caller to free (may be NULL).
 * \return CT_OK; CT_IO if the file cannot be read; CT_INVALID if it is malformed.
 */
ct_status sla_rules_load(sla_rules **out, const char *path, char **err);

/** \brief sla_rules_load from text in memory; name stands for the file in messages. */
ct_status sla_rules_parse(sla_rules **out, const char *text, size_t len, const char *name, char **err);

/** \brief The rules as the fold takes them (borrowed until sla_rules_destroy). */
const fold_sla_rules *sla_rules_fold(const sla_rules *r);

/**
 * \brief The entry of a rule that applies to this scope (see fold_sla_resolve);
 * r NULL means the defaults. \return the entry (maybe disabled), or NULL.
 */
const fold_sla_rule *sla_rules_lookup(const sla_rules *r, const char *rule, const char *warehouse,
                                      const char *carrier, const char *channel);

/** \brief 1 if an entry of rule `rule` is scoped by channel (its severity may then depend on the order's channel). */
int sla_rules_channel_scoped(const sla_rules *r, const char *rule);

/** \brief One line per rule and override ("release: orderApproved -> orderReleased within 15m ..."). */
void sla_rules_describe(const sla_rules *r, ct_buf *out);

/** \brief Free the rules; NULL is a no-op. */
void sla_rules_destroy(sla_rules *r);

/* ---- breaches -------------------------------------------------------------- */

/**
 * \brief Is a due (an item from store_dues_scan) overdue at now? A due exactly at now is.
 */
int sla_due_overdue(const Tower__V1__ViewItem *due, int64_t now_ns);

/**
 * \brief The eventId of the breach of a due: "sla-<rule>-<o|s>-<entity>-<dueAtSeconds>".
 * Deterministic, so that two SLA processes, or one restarted, raise one breach.
 * \param out at least EVT_MAX_EVENT_ID + 1 bytes.
 * \return 0, or -1 if the due lacks a rule, an entity or a time.
 */
int sla_breach_id(const Tower__V1__ViewItem *due, char *out);

/**
 * \brief The slaBreached event of a due: eventId as sla_breach_id, occurredAt =
 * dueAt (not "now": every copy must be equal content), source tower/sla, the
 * due's order or shipment id, rule, dueAt, warehouseId and carrierId.
 * \param out receives a validated event for the caller to evt_free.
 * \return CT_OK, or CT_INVALID (with err) if the due cannot make a valid event.
 */
ct_status sla_breach_event(const Tower__V1__ViewItem *due, evt_event **out, evt_error *err);

/* ---- alerts ------------------------------------------------------------------ */

/** How alerts are built. */
typedef struct sla_alert_opts {
    const sla_rules *rules;   /**< for the severity of each rule and scope (NULL: defaults) */
    const char *link_base;    /**< the dashboard's base URL, e.g. "http://tower:8080" (NULL: no links) */
    int64_t resend_ns;        /**< alerts are re-sent this often; a firing alert's endsAt is now + 4x this */
} sla_alert_opts;

/**
 * \brief "Now" for building alerts: the two clocks read at one instant.
 *
 * Alertmanager lives in wall-clock time: it refuses an alert whose endsAt is before its startsAt and
 * takes an endsAt in the (wall-clock) past as resolved. The engine's clock is business time, which
 * towerd up's --warp runs faster than the wall clock and --now / --clock-offset shift. So an alert's
 * startsAt and endsAt are wall-clock instants, and the business due time goes in its dueAt annotation.
 */
typedef struct sla_alert_clock {
    int64_t wall_ns;     /**< the real wall clock (ct_wall_ns()): the time of startsAt and endsAt */
    int64_t business_ns; /**< the engine's now at the same instant (warped, shifted): the time of dueAt */
    double warp;         /**< business ns per wall ns (ct_clock_factor()); not > 0 counts as 1 */
} sla_alert_clock;

/**
 * \brief The wall-clock instant at which the business clock passed due_ns: wall - (business - due) / warp,
 * never after the wall clock now (a due in the business future starts now). Equals due_ns on an
 * unwarped, unshifted clock.
 */
int64_t sla_alert_wall_of(const sla_alert_clock *now, int64_t due_ns);

/**
 * \brief The Alertmanager API v2 alert of an open breach (an sla_breaches item),
 * firing (resolved_at_ns 0: endsAt = wall now + 4 * resend) or resolved (endsAt = resolved_at_ns, wall
 * clock, never before startsAt).
 * Labels: alertname=TowerSlaBreach, rule, severity (the rule entry of the breach's warehouse,
 * carrier and the order's channel), warehouse and carrier where known (the grouping labels),
 * and order_id / shipment_id (identity, not for grouping); annotations summary, description,
 * dashboard, dueAt (the breach's due time, business clock); generatorURL the order page.
 * startsAt is the wall-clock instant the due time passed (sla_alert_wall_of), so that startsAt <= endsAt
 * whatever the warp or shift of the business clock.
 * \param now the clocks now (borrowed for the call).
 * \param channel the order's channel (NULL: unknown; only unscoped entries match).
 * \return a new reference.
 */
json_t *sla_alert_json(const Tower__V1__ViewItem *breach, const sla_alert_opts *o, const sla_alert_clock *now,
                       int64_t resolved_at_ns, const char *channel);

/**
 * \brief The next delay of an exponential backoff: base * 2^(failures-1), at most cap (0 after no failure).
 */
int64_t sla_backoff_ns(unsigned failures, int64_t base_ns, int64_t cap_ns);

#ifdef __cplusplus
}
#endif
#endif
