/* towerd sla: the SLA engine alone: overdue milestones become slaBreached events, open breaches Alertmanager alerts. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats_opts.h"
#include "sla_engine.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory (read-only)", 0, 0},
    {"sla-rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "SLA rules file (default: the built-in rules); give the projector the same file", 0, 0},
    {"rules", 0, NULL, NULL, CT_OPT_STRING, NULL, "FILE", "deprecated: the old name of --sla-rules", 0, 0},
    {"alertmanager", 0, "TOWER_SLA_ALERTMANAGER", "sla.alertmanager", CT_OPT_STRING, NULL, "URL",
     "Alertmanager base URL, e.g. http://127.0.0.1:9093 (alerts go to URL/api/v2/alerts; none: no alerts)", 0, 0},
    {"dashboard-url", 0, "TOWER_SLA_DASHBOARD_URL", "sla.dashboard_url", CT_OPT_STRING, NULL, "URL",
     "the dashboard's base URL for links in alerts (URL/#/order/ID), e.g. http://tower.example:8080", 0, 0},
    {"resend", 0, "TOWER_SLA_RESEND", "sla.resend", CT_OPT_DURATION, "60s", "DURATION",
     "re-send firing alerts this often (endsAt is 4x this ahead)", 0, 0},
    {"poll", 0, "TOWER_SLA_POLL", "sla.poll", CT_OPT_DURATION, "1s", "DURATION",
     "look at the store for new dues and breaches this often (the next due wakes it sooner)", 0, 0},
    {"breaker-failures", 0, "TOWER_SLA_BREAKER_FAILURES", "sla.breaker_failures", CT_OPT_INT, "5", "N",
     "consecutive Alertmanager failures that open the circuit", 0, 0},
    {"breaker-open", 0, "TOWER_SLA_BREAKER_OPEN", "sla.breaker_open", CT_OPT_DURATION, "60s", "DURATION",
     "how long the circuit stays open before one trial", 0, 0},
    {"now", 0, "TOWER_SLA_NOW", NULL, CT_OPT_STRING, NULL, "TIME",
     "start the clock at this RFC 3339 time (it runs on from there): tests and what-if runs", 0, 0},
    {"clock-offset", 0, "TOWER_CLOCK_OFFSET", NULL, CT_OPT_STRING, NULL, "[-]DURATION",
     "shift the clock by this much (e.g. 15m or -1h)", 0, 0},
    {"once", 0, NULL, NULL, CT_OPT_BOOL, "false", NULL,
     "one cycle: raise what is overdue now, post the alerts once, print a JSON summary, exit", 0, 0},
    {"check-rules", 0, NULL, NULL, CT_OPT_BOOL, "false", NULL, "check the rules file, print the rules, exit", 0, 0},
    SLA_RISK_OPT_DEFS,
};

static const char *const ignore[] = {"server", "projector", "sim", "publish", "up", "relay", NULL};

static const char usage[] =
    "usage: towerd sla [OPTIONS]\n\n"
    "The SLA engine. Reads the due-time index that the projector keeps in the store (an order\n"
    "approved and not released is due 15 minutes after its approval, ...) and, for every due\n"
    "that has passed, publishes a slaBreached event into TOWER_EVENTS with a deterministic\n"
    "eventId (sla-<rule>-<o|s>-<id>-<dueAtSeconds>): a restart, or two SLA engines at once,\n"
    "raise one breach. With --alertmanager, posts one alert per open breach (re-sent every\n"
    "--resend) and resolves it when the awaited milestone arrives; failed posts back off and a\n"
    "circuit breaker stops hammering a dead Alertmanager; nothing is lost meanwhile, since the\n"
    "alerts are re-derived from the store's sla_breaches view each cycle.\n\n"
    "Predicted risk (docs/risk.md): every few seconds it predicts when each open order with a\n"
    "promisedBy will be delivered, from the lead times of recent deliveries the store keeps, and\n"
    "publishes orderAtRisk / orderBackOnTrack when the prediction crosses the promise (with\n"
    "hysteresis: --risk-raise-late, --risk-confirm, --risk-clear-late, --risk-dwell); open at_risk\n"
    "items are TowerOrderAtRisk alerts of severity --risk-severity.\n\n"
    "The rules file format is described in docs/sla.md; a bad file is refused with FILE:LINE.\n"
    "--rules FILE still works as a deprecated name of --sla-rules FILE.\n"
    "The clock is the process clock (time-warped under towerd up), shifted by --now or\n"
    "--clock-offset for tests.\n\n"
    "Exit codes: 0 stopped (or --once done); 1 failure; 2 usage or a bad rules file.";

/* "[-]DURATION" in ns; -1 if malformed. */
static int signed_duration(const char *s, int64_t *out)
{
    int neg = *s == '-';
    int64_t v;
    if (ct_parse_duration_ns(s + neg, &v) != 0) return -1;
    *out = neg ? -v : v;
    return 0;
}

static const towerd_spec spec = {
    .cmd = "towerd sla",
    .usage = usage,
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
};

/* Load --sla-rules, or --rules, its deprecated old name (a flag only); 0, or -1 after saying why not. */
static int load_rules(const ct_config *cfg, sla_rules **rules)
{
    const char *path = ct_config_str(cfg, "sla-rules"), *old = ct_config_str(cfg, "rules");
    if (old && path && strcmp(ct_config_source(cfg, "sla-rules"), "flag") == 0) {
        fprintf(stderr, "towerd sla: give --sla-rules only (--rules is its deprecated old name)\n");
        return -1;
    }
    if (old) {
        ct_log(CT_LOG_WARN, "sla", "--rules is deprecated: use --sla-rules (the same as the projector's)");
        path = old;
    }
    char *err = NULL;
    if (sla_rules_load(rules, path, &err) != CT_OK) {
        fprintf(stderr, "towerd sla: %s\n", err);
        free(err);
        return -1;
    }
    return 0;
}

/* The clock's shift (--now, --clock-offset) and the Alertmanager URL's check; 0, or -1 after saying why. */
static int clock_and_alerts(const ct_config *cfg, sla_engine_opts *o)
{
    const char *now = ct_config_str(cfg, "now"), *offset = ct_config_str(cfg, "clock-offset");
    if (now) {
        int64_t secs;
        int32_t nanos;
        if (evt_time_parse(now, &secs, &nanos) != 0) {
            fprintf(stderr, "towerd sla: --now: \"%s\" is not an RFC 3339 time\n", now);
            return -1;
        }
        o->clock_offset_ns = secs * 1000000000LL + nanos - ct_now_ns();
    }
    if (offset) {
        int64_t d;
        if (signed_duration(offset, &d) != 0) {
            fprintf(stderr, "towerd sla: --clock-offset: \"%s\" is not a duration such as 15m or -1h\n", offset);
            return -1;
        }
        o->clock_offset_ns += d;
    }
    if (o->alertmanager && strncmp(o->alertmanager, "http://", 7) != 0 && strncmp(o->alertmanager, "https://", 8) != 0) {
        fprintf(stderr, "towerd sla: --alertmanager: \"%s\" is not an http:// or https:// URL\n", o->alertmanager);
        return -1;
    }
    return 0;
}

/* --check-rules: the rules as they resolve, on stdout. */
static void print_rules(const sla_rules *rules)
{
    ct_buf d = {0};
    sla_rules_describe(rules, &d);
    fputs(d.data ? d.data : "", stdout);
    ct_buf_free(&d);
}

/* --once: the cycle's figures as JSON on stdout. */
static void print_once(const sla_engine_figures *fig)
{
    char next[48] = "";
    if (fig->next_due_ns)
        evt_time_format(fig->next_due_ns / 1000000000LL, (int32_t)(fig->next_due_ns % 1000000000LL), next);
    printf("{\"overdue\":%" PRIu64 ",\"published\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"failed\":%" PRIu64
           ",\"alertPosts\":%" PRIu64 ",\"alertFailures\":%" PRIu64 ",\"alertsFiring\":%" PRIu64
           ",\"nextDueAt\":%s%s%s,\"riskOpen\":%" PRIu64 ",\"riskRaised\":%" PRIu64 ",\"riskCleared\":%" PRIu64
           ",\"riskFailed\":%" PRIu64 "}\n",
           fig->overdue, fig->published, fig->duplicates, fig->publish_failures, fig->alert_posts, fig->alert_failures,
           fig->alerts_firing, *next ? "\"" : "", *next ? next : "null", *next ? "\"" : "", fig->risk_open,
           fig->risk_raised, fig->risk_cleared, fig->risk_failures);
}

/* Connect and run the engine until stopped (or one cycle with --once). */
static int engine(const ct_config *cfg, const sla_engine_opts *o, const sla_rules *rules)
{
    towerd_handle_signals();
    bus *b = NULL;
    bus_opts bo;
    towerd_bus_opts(cfg, &bo, "towerd sla");
    bo.wait_connect = !o->once;
    bo.stop = &towerd_stop; /* SIGTERM ends a wait for an unreachable NATS */
    if (bus_connect(&b, &bo) != CT_OK) return TOWERD_EXIT_FAIL;
    ct_log(CT_LOG_INFO, "sla", "store %s, %zu rules%s%s", o->data_dir, sla_rules_fold(rules)->n,
           o->alertmanager ? ", alerts to " : "", o->alertmanager ? o->alertmanager : "");
    sla_engine_figures fig = {0};
    int rc = sla_engine_run(b, o, &towerd_stop, &fig) == 0 ? TOWERD_EXIT_OK : TOWERD_EXIT_FAIL;
    if (o->once) print_once(&fig);
    bus_close(b);
    return rc;
}

int towerd_sla(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    sla_rules *rules = NULL;
    rc = TOWERD_EXIT_USAGE;
    if (load_rules(c.cfg, &rules) < 0) goto out;
    if (ct_config_bool(c.cfg, "check-rules")) {
        print_rules(rules);
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    sla_engine_opts o = {.data_dir = ct_config_str(c.cfg, "data"),
                         .rules = rules,
                         .alertmanager = ct_config_str(c.cfg, "alertmanager"),
                         .link_base = ct_config_str(c.cfg, "dashboard-url"),
                         .resend_ns = ct_config_duration_ns(c.cfg, "resend"),
                         .poll_ns = ct_config_duration_ns(c.cfg, "poll"),
                         .once = ct_config_bool(c.cfg, "once"),
                         .breaker_failures = (unsigned)ct_config_int(c.cfg, "breaker-failures"),
                         .breaker_open_ns = ct_config_duration_ns(c.cfg, "breaker-open")};
    sla_risk_opts risk;
    char rerr[160];
    if (sla_risk_opts_config(c.cfg, &risk, rerr, sizeof rerr) != 0) {
        fprintf(stderr, "towerd sla: %s\n", rerr);
        goto out;
    }
    o.risk = &risk;
    if (clock_and_alerts(c.cfg, &o) == 0) rc = engine(c.cfg, &o, rules);
out:
    sla_rules_destroy(rules);
    towerd_end(&c);
    return rc;
}
