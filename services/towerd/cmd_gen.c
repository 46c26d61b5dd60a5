/* towerd gen: write a seeded, realistic event trace as NDJSON. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_trace.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"seed", 's', NULL, NULL, CT_OPT_STRING, "1", "N", "generator seed", 0, 0},
    {"orders", 'n', NULL, NULL, CT_OPT_INT, "1000", "N", "orders to generate", 0, 0},
    {"warehouses", 'w', NULL, NULL, CT_OPT_INT, "3", "N", "warehouses dc-1..dc-N", 0, 0},
    {"clean", 'c', NULL, NULL, CT_OPT_BOOL, NULL, NULL, "no bad records, no duplicates, no late reports", 0, 0},
    {"conflicts", 'C', NULL, NULL, CT_OPT_STRING, "0", "P", "probability of a conflicting duplicate per record",
     0, 0},
    {"output", 'o', NULL, NULL, CT_OPT_STRING, NULL, "FILE", "write to FILE instead of standard output", 0, 0},
};

static const char *const ignore[] = {"store", "nats", "stream", "projector", "server", "sla", "sim", "publish", "up",
                                     NULL};

static const towerd_spec spec = {
    .cmd = "towerd gen",
    .usage = "usage: towerd gen [--seed N] [--orders N] [--warehouses N] [--clean] [--conflicts P] [-o FILE]\n\n"
             "Writes a realistic trace of ERP, WMS, route planner, carrier and finance events\n"
             "(NDJSON), the same for the same seed and options: holds, short picks, several\n"
             "shipments per order, multi-stop routes, failures, cancellations, missing POD,\n"
             "posting failures, late and duplicate reports and some bad records.\n\n"
             "Exit codes: 0 written; 1 I/O failure; 2 usage.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .ignore = ignore,
};

/* The generator's options from the parsed ones; -1 after saying which is wrong. */
static int trace_opts(const ct_config *cfg, sim_trace_opts *o)
{
    sim_trace_opts_default(o);
    const char *seed = ct_config_str(cfg, "seed"), *conflicts = ct_config_str(cfg, "conflicts"), *bad = NULL;
    char *end;
    int64_t orders = ct_config_int(cfg, "orders"), wh = ct_config_int(cfg, "warehouses");
    errno = 0;
    o->seed = strtoull(seed, &end, 10);
    if (!*seed || *end || errno || *seed == '-') bad = "seed";
    if (orders < 1 || orders > UINT32_MAX) bad = "orders";
    if (wh < 1 || wh > UINT32_MAX) bad = "warehouses";
    if (ct_config_bool(cfg, "clean")) o->p_bad = o->p_duplicate = o->p_late = o->p_conflict = 0;
    o->p_conflict = strtod(conflicts, &end);
    if (!*conflicts || *end || !(o->p_conflict >= 0 && o->p_conflict <= 1)) bad = "conflicts";
    if (bad) {
        fprintf(stderr, "towerd gen: invalid value '%s' for --%s\n", ct_config_str(cfg, bad), bad);
        return -1;
    }
    o->orders = (uint32_t)orders;
    o->warehouses = (uint32_t)wh;
    return 0;
}

/* Write the whole trace to path (NULL: stdout). */
static int write_trace(sim_trace *t, const char *path)
{
    FILE *out = path ? fopen(path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "towerd gen: cannot create %s: %m\n", path);
        return TOWERD_EXIT_FAIL;
    }
    sim_record rec;
    while (sim_trace_next(t, &rec)) {
        fwrite(rec.line, 1, rec.len, out);
        fputc('\n', out);
    }
    int failed = ferror(out) || (path ? fclose(out) != 0 : fflush(out) != 0);
    if (failed) {
        fprintf(stderr, "towerd gen: write failed\n");
        return TOWERD_EXIT_FAIL;
    }
    return TOWERD_EXIT_OK;
}

int towerd_gen(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    sim_trace_opts o;
    sim_trace *t = NULL;
    if (trace_opts(c.cfg, &o) < 0) {
        rc = TOWERD_EXIT_USAGE;
    } else if (sim_trace_create(&t, &o) != CT_OK) {
        fprintf(stderr, "towerd gen: invalid options\n");
        rc = TOWERD_EXIT_USAGE;
    } else {
        rc = write_trace(t, ct_config_str(c.cfg, "output"));
    }
    sim_trace_destroy(t);
    towerd_end(&c);
    return rc;
}
