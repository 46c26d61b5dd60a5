/* towerd gen: write a seeded, realistic event trace as NDJSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_trace.h"
#include "towerd.h"

static void gen_usage(FILE *out)
{
    fprintf(out, "usage: towerd gen [--seed N] [--orders N] [--warehouses N] [--clean] [--conflicts P] [-o FILE]\n\n"
                 "Writes a realistic trace of ERP, WMS, route planner, carrier and finance events\n"
                 "(NDJSON), the same for the same seed and options: holds, short picks, several\n"
                 "shipments per order, multi-stop routes, failures, cancellations, missing POD,\n"
                 "posting failures, late and duplicate reports and some bad records.\n\n"
                 "  --seed N        generator seed (default 1)\n"
                 "  --orders N      orders to generate (default 1000)\n"
                 "  --warehouses N  warehouses dc-1..dc-N (default 3)\n"
                 "  --clean         no bad records, no duplicates, no late reports\n"
                 "  --conflicts P   probability of a conflicting duplicate per record (default 0)\n"
                 "  -o FILE         write to FILE instead of standard output\n"
                 "  --help          this text\n\n"
                 "Exit codes: 0 written; 1 I/O failure; 2 usage.\n");
}

int towerd_gen(int argc, char **argv)
{
    static const struct option opts[] = {{"seed", required_argument, 0, 's'},
                                         {"orders", required_argument, 0, 'n'},
                                         {"warehouses", required_argument, 0, 'w'},
                                         {"clean", no_argument, 0, 'c'},
                                         {"conflicts", required_argument, 0, 'C'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.seed = 1;
    const char *path = NULL;
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:n:w:cC:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': o.seed = strtoull(optarg, &end, 10); if (*end) goto bad; break;
        case 'n': o.orders = (uint32_t)strtoul(optarg, &end, 10); if (*end || !o.orders) goto bad; break;
        case 'w': o.warehouses = (uint32_t)strtoul(optarg, &end, 10); if (*end || !o.warehouses) goto bad; break;
        case 'c': o.p_bad = o.p_duplicate = o.p_late = o.p_conflict = 0; break;
        case 'C': o.p_conflict = strtod(optarg, &end); if (*end || o.p_conflict < 0 || o.p_conflict > 1) goto bad; break;
        case 'o': path = optarg; break;
        case 'h': gen_usage(stdout); return TOWERD_EXIT_OK;
        default: gen_usage(stderr); return TOWERD_EXIT_USAGE;
        }
    }
    sim_trace *t = NULL;
    if (sim_trace_create(&t, &o) != CT_OK) {
        fprintf(stderr, "towerd gen: invalid options\n");
        return TOWERD_EXIT_USAGE;
    }
    FILE *out = path ? fopen(path, "w") : stdout;
    if (!out) {
        fprintf(stderr, "towerd gen: cannot create %s: %m\n", path);
        sim_trace_destroy(t);
        return TOWERD_EXIT_FAIL;
    }
    sim_record rec;
    while (sim_trace_next(t, &rec)) {
        fwrite(rec.line, 1, rec.len, out);
        fputc('\n', out);
    }
    sim_trace_destroy(t);
    int failed = ferror(out) || (path ? fclose(out) != 0 : fflush(out) != 0);
    if (failed) {
        fprintf(stderr, "towerd gen: write failed\n");
        return TOWERD_EXIT_FAIL;
    }
    return TOWERD_EXIT_OK;
bad:
    fprintf(stderr, "towerd gen: invalid value '%s' for --%s\n\n", optarg,
            c == 's' ? "seed" : c == 'n' ? "orders" : c == 'w' ? "warehouses" : "conflicts");
    gen_usage(stderr);
    return TOWERD_EXIT_USAGE;
}
