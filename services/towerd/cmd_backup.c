/* towerd backup: a consistent hot copy of the store into a new data directory, beside a running projector. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory to copy", 0,
     0},
    {"json", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "print what was copied as JSON", 0, 0},
};

static const char *const ignore[] = {"store", "nats", "stream", "projector", "server", "sla", "sim", "publish", "up",
                                     "relay", NULL};

static const towerd_spec spec = {
    .cmd = "towerd backup",
    .usage = "usage: towerd backup [--data DIR] [--json] OUT\n\n"
             "Copies the store into OUT, a new data directory (OUT must not exist, or be empty),\n"
             "from one consistent snapshot, while the projector goes on writing: LMDB's compacting\n"
             "copy, written as OUT.tmp-PID, fsynced, checked by opening it, then renamed to OUT.\n"
             "Prints the copy's applied sequence (its checkpoint), events and size.\n\n"
             "Restore: stop the projector, move the old DIR aside, move OUT to DIR, start the\n"
             "projector: it resumes the stream from the backup's checkpoint + 1.\n\n"
             "Exit codes: 0 copied; 1 no store, or a store or I/O failure (OUT is left as it was);\n"
             "2 usage, or OUT exists and is not empty.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .ignore = ignore,
    .min_args = 1,
    .max_args = 1,
    .args_usage = "give one output directory, OUT (see --help)",
};

static void print_info(const char *out, const store_backup_info *in, double secs, int json)
{
    const store_stats *ss = &in->stats;
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "out", out, "appliedSeq",
                              (json_int_t)ss->applied_seq, "events", (json_int_t)ss->events, "duplicates",
                              (json_int_t)ss->duplicates, "deadLetters", (json_int_t)ss->dead_letters, "bytes",
                              (json_int_t)in->bytes, "sourceBytes", (json_int_t)in->source_bytes, "seconds", secs);
        json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(o);
        return;
    }
    printf("backup             %s\napplied sequence   %" PRIu64 "\nevents             %" PRIu64
           "\nduplicates         %" PRIu64 "\ndead letters       %" PRIu64 "\nsize               %" PRIu64
           " bytes (the live data file: %" PRIu64 ")\nseconds            %.2f\n",
           out, ss->applied_seq, ss->events, ss->duplicates, ss->dead_letters, in->bytes, in->source_bytes, secs);
}

int towerd_backup(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    const char *data = ct_config_str(c.cfg, "data"), *out = c.args[0];
    store_backup_info info;
    int64_t t0 = ct_mono_ns();
    ct_status st = store_backup(data, out, &info);
    if (st == CT_OK) {
        print_info(out, &info, (double)(ct_mono_ns() - t0) / 1e9, ct_config_bool(c.cfg, "json"));
        rc = fflush(stdout) == 0 ? TOWERD_EXIT_OK : TOWERD_EXIT_FAIL;
    } else {
        /* The store said why (on stderr); an OUT that is taken is the caller's to change. */
        fprintf(stderr, "towerd backup: nothing written to %s (%s)\n", out, ct_status_str(st));
        rc = st == CT_CONFLICT ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
    }
    towerd_end(&c);
    return rc;
}
