/* towerd sim: the simulated ERP, WMS, route planner, carriers and finance publishing to JetStream; their options. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats_opts.h"
#include "towerd.h"

/* A fault rate: its flag, names and where it lives in the generator's options. */
typedef struct rate_def {
    const char *flag, *env, *key, *help;
    size_t off; /* offsetof(sim_trace_opts, p_...) */
} rate_def;

#define RATE(flag, env, key, field, help) {flag, env, key, help, offsetof(sim_trace_opts, field)}
static const rate_def rates[] = {
    RATE("holds", "TOWER_SIM_HOLDS", "sim.holds", p_hold, "orders put on credit/pricing/allocation hold"),
    RATE("short-picks", "TOWER_SIM_SHORT_PICKS", "sim.short_picks", p_short_pick, "orders with a short pick"),
    RATE("multi-shipments", "TOWER_SIM_MULTI_SHIPMENTS", "sim.multi_shipments", p_multi_shipment,
         "orders packed into 2-3 shipments"),
    RATE("blocks", "TOWER_SIM_BLOCKS", "sim.blocks", p_block, "shipments blocked at the dock"),
    RATE("route-failures", "TOWER_SIM_ROUTE_FAILURES", "sim.route_failures", p_route_fail,
         "route plans that fail (retried later)"),
    RATE("cancellations", "TOWER_SIM_CANCELLATIONS", "sim.cancellations", p_cancel, "orders cancelled"),
    RATE("missing-pod", "TOWER_SIM_MISSING_POD", "sim.missing_pod", p_missing_pod,
         "deliveries never followed by a proof of delivery"),
    RATE("failed-attempts", "TOWER_SIM_FAILED_ATTEMPTS", "sim.failed_attempts", p_attempt_fail,
         "failed delivery attempts before success"),
    RATE("posting-failures", "TOWER_SIM_POSTING_FAILURES", "sim.posting_failures", p_posting_fail,
         "invoice postings that fail (finance retries them)"),
    RATE("stuck", "TOWER_SIM_STUCK", "sim.stuck", p_stuck, "orders that stop at some stage for good"),
    RATE("late", "TOWER_SIM_LATE", "sim.late", p_late, "events reported late, after later ones (out of order)"),
    RATE("duplicates", "TOWER_SIM_DUPLICATES", "sim.duplicates", p_duplicate, "events reported twice"),
    RATE("malformed", "TOWER_SIM_MALFORMED", "sim.malformed", p_bad, "bad records (dead letters)"),
    RATE("conflicts", "TOWER_SIM_CONFLICTS", "sim.conflicts", p_conflict,
         "an eventId reused with other content (dead letters)"),
    RATE("anomalies", "TOWER_SIM_ANOMALIES", "sim.anomalies", p_drift,
         "orders whose milestones come out of sequence"),
    RATE("undefined-codes", "TOWER_SIM_UNDEFINED_CODES", "sim.undefined_codes", p_undefined,
         "orders naming a sku the master data never defines (UNKNOWN_CODE anomalies)"),
};
#define NRATES (sizeof rates / sizeof rates[0])

static char rate_defaults[NRATES][32]; /* the generator's defaults as text, for --help */

const char towerd_sim_help[] =
    "The simulators: one generator (the seeded trace of `towerd gen`) hands each record, when its time comes,\n"
    "to the publisher of the system that reports it: the ERP, one WMS per warehouse, the route planner, each\n"
    "carrier and finance (and, with --sla-breaches, the tower's SLA engine), each a thread with its own NATS\n"
    "connection. Valid records go out as protobuf events with their message ids; bad ones raw, to be\n"
    "dead-lettered. Fault rates are probabilities (0..1), per order, shipment, route or record.\n\n"
    "Time warp: --warp W runs business time W times faster than real time (the process clock, which ages and\n"
    "SLA deadlines read too): at --rate 60 --warp 60, an order arrives every real second and an hour of\n"
    "business happens per real minute, so that a 15-minute SLA breaches within seconds.\n";

size_t towerd_sim_defs(ct_opt_def *out, const char *warp_default, int standalone)
{
    sim_trace_opts d;
    sim_trace_opts_default(&d);
    size_t n = 0;
    out[n++] = (ct_opt_def){"rate", 0, "TOWER_SIM_RATE", "sim.rate", CT_OPT_STRING, "60", "N",
                            "orders per minute of real time (may be fractional)", 0, 0};
    out[n++] = (ct_opt_def){"warp", 0, "TOWER_SIM_WARP", "sim.warp", CT_OPT_STRING, warp_default, "W",
                            "time-warp factor: business time runs W times faster than real time", 0, 0};
    out[n++] = (ct_opt_def){"seed", 0, "TOWER_SIM_SEED", "sim.seed", CT_OPT_INT, "1", "N",
                            "generator seed: the same seed and options give the same trace", 0, 0};
    out[n++] = (ct_opt_def){"orders", 0, "TOWER_SIM_ORDERS", "sim.orders", CT_OPT_INT, "0", "N",
                            "orders to simulate (0: endless)", 0, 0};
    out[n++] = (ct_opt_def){"warehouses", 0, "TOWER_SIM_WAREHOUSES", "sim.warehouses", CT_OPT_INT, "3", "N",
                            "warehouses dc-1..dc-N, each with its own WMS", 0, 0};
    for (size_t i = 0; i < NRATES; i++) {
        snprintf(rate_defaults[i], sizeof rate_defaults[i], "%.6g", *(const double *)((const char *)&d + rates[i].off));
        out[n++] = (ct_opt_def){rates[i].flag, 0, rates[i].env, rates[i].key, CT_OPT_STRING, rate_defaults[i], "P",
                                rates[i].help, 0, 0};
    }
    out[n++] = (ct_opt_def){"sla-breaches", 0, "TOWER_SIM_SLA_BREACHES", "sim.sla_breaches", CT_OPT_BOOL, "true",
                            NULL, "also play the tower's SLA engine (slaBreached events); --sla-breaches=false "
                            "once towerd sla runs", 0, 0};
    out[n++] = (ct_opt_def){"bad-days", 0, "TOWER_SIM_BAD_DAYS", "sim.bad_days", CT_OPT_BOOL, "true", NULL,
                            "warehouses and carriers have slow days (orders at risk, docs/risk.md); --bad-days=false: "
                            "the records of towerd gen", 0, 0};
    out[n++] = (ct_opt_def){"master-data", 0, "TOWER_SIM_MASTER_DATA", "sim.master_data", CT_OPT_BOOL, "true", NULL,
                            "also play the master-data system (warehouses, carriers and skus defined first; "
                            "docs/contract/reference.md); --master-data=false: the records of towerd gen", 0, 0};
    out[n++] = (ct_opt_def){"history", 0, "TOWER_SIM_HISTORY", "sim.history", CT_OPT_DURATION, "0", "DURATION",
                            "start a new trace this long (business time) before now: its history goes out at once, "
                            "then the simulators play live (at most 30d)", 0, 0};
    out[n++] = (ct_opt_def){"progress", 0, "TOWER_SIM_PROGRESS", "sim.progress", CT_OPT_DURATION, "30s", "DURATION",
                            "log the simulators' figures this often (0: never)", 0, 0};
    if (standalone) {
        out[n++] = (ct_opt_def){"dry-run", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL,
                                "write the records that would be published (NDJSON, in order) to standard output "
                                "at full speed; no NATS", 0, 0};
        out[n++] = (ct_opt_def){"state", 0, "TOWER_SIM_STATE", "sim.state", CT_OPT_STRING, NULL, "FILE",
                                "keep the progress here: a restart with the same options resumes the trace", 0, 0};
    }
    return n;
}

/* A number from an option's text; -1 after printing what is wrong. */
static int number(const ct_config *c, const char *cmd, const char *flag, double lo, double hi, int lo_open, double *out)
{
    const char *s = ct_config_str(c, flag);
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : NAN;
    if (!s || end == s || *end || errno || !isfinite(v) || v < lo || (lo_open && v == lo) || v > hi) {
        fprintf(stderr, "%s: --%s (%s): \"%s\" is not a number %s %g and %g\n", cmd, flag, ct_config_source(c, flag),
                s ? s : "", lo_open ? "above" : "between", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int towerd_sim_config(const ct_config *c, const char *cmd, sim_run_opts *o)
{
    sim_run_opts_default(o);
    if (number(c, cmd, "rate", 0, 1e7, 1, &o->rate) < 0) return -1;
    if (number(c, cmd, "warp", 0, 1e6, 1, &o->warp) < 0) return -1;
    for (size_t i = 0; i < NRATES; i++)
        if (number(c, cmd, rates[i].flag, 0, 1, 0, (double *)((char *)&o->trace + rates[i].off)) < 0) return -1;
    int64_t orders = ct_config_int(c, "orders"), wh = ct_config_int(c, "warehouses");
    if (orders > UINT32_MAX) {
        fprintf(stderr, "%s: --orders: at most %u\n", cmd, UINT32_MAX);
        return -1;
    }
    if (wh < 1 || wh > 999) {
        fprintf(stderr, "%s: --warehouses: between 1 and 999\n", cmd);
        return -1;
    }
    o->trace.seed = (uint64_t)ct_config_int(c, "seed");
    o->trace.orders = (uint32_t)orders;
    o->trace.warehouses = (uint32_t)wh;
    o->sla_breaches = ct_config_bool(c, "sla-breaches");
    o->trace.bad_days = ct_config_bool(c, "bad-days");
    o->trace.mdm = ct_config_bool(c, "master-data");
    o->progress_ns = ct_config_duration_ns(c, "progress");
    o->history_ns = ct_config_duration_ns(c, "history");
    if (o->history_ns < 0 || o->history_ns > SIM_HISTORY_MAX_NS) {
        fprintf(stderr, "%s: --history (%s): between 0 and 30d\n", cmd, ct_config_source(c, "history"));
        return -1;
    }
    return 0;
}

static const char *const sim_ignore[] = {"store", "projector", "server", "sla", "publish", "up", NULL};

static const char sim_usage_fmt[] =
    "usage: towerd sim [OPTIONS]\n\n"
    "Publishes simulated business events to JetStream the way the real systems would, until SIGINT or\n"
    "SIGTERM (or until --orders are all told). Records go out when the (warped) clock reaches their time.\n\n"
    "%s\n"
    "Determinism: the same --seed and options give the same records; --dry-run writes them (NDJSON, in\n"
    "order, from a fixed start 2026-11-02T06:00:00Z) at full speed without NATS. A live run starts its\n"
    "trace now (--history D: D before now, that history published at once, then live) and tags every\n"
    "id with its run (\"SO-R1-100000\", \"erp-R1-1\"): with --state FILE a restart\n"
    "with the same options resumes the trace (and a changed one starts the next run); without it each run\n"
    "is tagged with its start time, so that runs never collide on one stream.\n\n"
    "Exit codes: 0 stopped, or every order told; 1 NATS or I/O failure; 2 usage.";

/* Run the simulators with the parsed options until stopped or done; the exit code. */
static int sim_play(const ct_config *cfg, sim_run_opts *so)
{
    towerd_handle_signals();
    bus_opts bo;
    if (ct_config_bool(cfg, "dry-run")) {
        so->dry_run = stdout;
        so->progress_ns = 0;
    } else {
        towerd_bus_opts(cfg, &bo, "towerd sim");
        so->bus = &bo;
        so->state_path = ct_config_str(cfg, "state");
        /* The whole process runs in warped time from now on: the schedule and every occurredAt. */
        ct_clock_set(ct_wall_ns(), so->warp);
    }
    sim_run_figures fig;
    ct_status st = sim_run(so, &towerd_stop, &fig);
    if (st == CT_IO && so->dry_run && errno == EPIPE) st = CT_OK; /* the reader had enough: `| head` */
    if (st == CT_IO && so->dry_run) fprintf(stderr, "towerd sim: cannot write the records: %s\n", strerror(errno));
    return st == CT_OK ? TOWERD_EXIT_OK : st == CT_INVALID ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
}

int towerd_sim(int argc, char **argv)
{
    ct_opt_def own[TOWERD_SIM_MAX_DEFS];
    char *usage = ct_sprintf(sim_usage_fmt, towerd_sim_help);
    towerd_spec spec = {.cmd = "towerd sim", .usage = usage, .defs = own, .ndefs = towerd_sim_defs(own, "1", 1),
                        .nats = 1, .ignore = sim_ignore};
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    free(usage);
    if (rc != TOWERD_CONTINUE) return rc;
    sim_run_opts so;
    rc = towerd_sim_config(c.cfg, "towerd sim", &so) < 0 ? TOWERD_EXIT_USAGE : sim_play(c.cfg, &so);
    towerd_end(&c);
    return rc;
}
