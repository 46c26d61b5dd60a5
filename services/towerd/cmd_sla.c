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
    {"rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "SLA rules file (default: the built-in rules); give the projector the same file", 0, 0},
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
};

static const char *const ignore[] = {"server", "projector", "sim", "publish", "up", NULL};

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
    "The rules file format is described in docs/sla.md; a bad file is refused with FILE:LINE.\n"
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

int towerd_sla(int argc, char **argv)
{
    size_t ndefs;
    ct_opt_def *defs = towerd_defs_concat(own_defs, sizeof own_defs / sizeof own_defs[0], &ndefs);
    ct_config *cfg = NULL;
    int help = 0, rc = TOWERD_EXIT_FAIL;
    bus *b = NULL;
    sla_rules *rules = NULL;
    char *err = NULL;
    if (ct_config_parse(&cfg, "towerd sla", usage, defs, ndefs, ignore, argc, argv, NULL, NULL, &help) != CT_OK) {
        free(defs);
        return TOWERD_EXIT_USAGE;
    }
    if (help) {
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    if (sla_rules_load(&rules, ct_config_str(cfg, "rules"), &err) != CT_OK) {
        fprintf(stderr, "towerd sla: %s\n", err);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    if (ct_config_bool(cfg, "check-rules")) {
        ct_buf d = {0};
        sla_rules_describe(rules, &d);
        fputs(d.data ? d.data : "", stdout);
        ct_buf_free(&d);
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    sla_engine_opts o = {.data_dir = ct_config_str(cfg, "data"),
                         .rules = rules,
                         .alertmanager = ct_config_str(cfg, "alertmanager"),
                         .link_base = ct_config_str(cfg, "dashboard-url"),
                         .resend_ns = ct_config_duration_ns(cfg, "resend"),
                         .poll_ns = ct_config_duration_ns(cfg, "poll"),
                         .once = ct_config_bool(cfg, "once"),
                         .breaker_failures = (unsigned)ct_config_int(cfg, "breaker-failures"),
                         .breaker_open_ns = ct_config_duration_ns(cfg, "breaker-open")};
    const char *now = ct_config_str(cfg, "now"), *offset = ct_config_str(cfg, "clock-offset");
    if (now) {
        int64_t secs;
        int32_t nanos;
        if (evt_time_parse(now, &secs, &nanos) != 0) {
            fprintf(stderr, "towerd sla: --now: \"%s\" is not an RFC 3339 time\n", now);
            rc = TOWERD_EXIT_USAGE;
            goto out;
        }
        o.clock_offset_ns = secs * 1000000000LL + nanos - ct_now_ns();
    }
    if (offset) {
        int64_t d;
        if (signed_duration(offset, &d) != 0) {
            fprintf(stderr, "towerd sla: --clock-offset: \"%s\" is not a duration such as 15m or -1h\n", offset);
            rc = TOWERD_EXIT_USAGE;
            goto out;
        }
        o.clock_offset_ns += d;
    }
    if (o.alertmanager && strncmp(o.alertmanager, "http://", 7) != 0 && strncmp(o.alertmanager, "https://", 8) != 0) {
        fprintf(stderr, "towerd sla: --alertmanager: \"%s\" is not an http:// or https:// URL\n", o.alertmanager);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }

    towerd_handle_signals();
    bus_opts bo;
    towerd_bus_opts(cfg, &bo, "towerd sla");
    bo.wait_connect = !o.once;
    bo.stop = &towerd_stop; /* SIGTERM ends a wait for an unreachable NATS */
    if (bus_connect(&b, &bo) != CT_OK) goto out;
    ct_log(CT_LOG_INFO, "sla", "store %s, %zu rules%s%s", o.data_dir, sla_rules_fold(rules)->n,
           o.alertmanager ? ", alerts to " : "", o.alertmanager ? o.alertmanager : "");
    sla_engine_figures fig = {0};
    rc = sla_engine_run(b, &o, &towerd_stop, &fig) == 0 ? TOWERD_EXIT_OK : TOWERD_EXIT_FAIL;
    if (o.once) {
        char next[48] = "";
        if (fig.next_due_ns) evt_time_format(fig.next_due_ns / 1000000000LL, (int32_t)(fig.next_due_ns % 1000000000LL), next);
        printf("{\"overdue\":%" PRIu64 ",\"published\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"failed\":%" PRIu64
               ",\"alertPosts\":%" PRIu64 ",\"alertFailures\":%" PRIu64 ",\"alertsFiring\":%" PRIu64
               ",\"nextDueAt\":%s%s%s}\n",
               fig.overdue, fig.published, fig.duplicates, fig.publish_failures, fig.alert_posts, fig.alert_failures,
               fig.alerts_firing, *next ? "\"" : "", *next ? next : "null", *next ? "\"" : "");
    }
out:
    free(err);
    bus_close(b);
    sla_rules_destroy(rules);
    ct_config_destroy(cfg);
    free(defs);
    return rc;
}
