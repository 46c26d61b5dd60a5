/* Benchmark: offline fold rate of a generated trace next to the raw LMDB durable put rate, measured in one run. */
#include <getopt.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_util.h"
#include "evt.h"
#include "sim_trace.h"
#include "store.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_fold [--events N] [--batch N] [--dir DIR] [--seed N]\n\n"
                 "Generates a trace of about N events (default 1000000), then measures in the same run:\n"
                 "  raw:  LMDB durable puts of N records of the trace's average size, BATCH per transaction\n"
                 "  fold: JSON decode + validate + fold into a fresh store, BATCH events per durable transaction\n"
                 "and prints both rates and their ratio. DIR (default /tmp) holds the two temporary stores.\n");
}

static double secs(int64_t t0) { return (double)(ct_mono_ns() - t0) / 1e9; }

static char *mkdir_in(const char *base, const char *name)
{
    char *d = ct_sprintf("%s/%s-XXXXXX", base, name);
    if (!mkdtemp(d)) {
        perror("mkdtemp");
        exit(1);
    }
    return d;
}

/* The raw baseline: what LMDB alone does with the same number of records and bytes. */
static double raw_puts(const char *dir, size_t n, size_t value_size, size_t batch)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)8 << 30);
    if (mdb_env_open(env, dir, 0, 0644) != 0) {
        fprintf(stderr, "cannot open %s\n", dir);
        exit(1);
    }
    char *val = ct_malloc(value_size);
    memset(val, 'x', value_size);
    uint64_t x = 88172645463325252ULL;
    int64_t t0 = ct_mono_ns();
    for (size_t i = 0; i < n;) {
        mdb_txn_begin(env, NULL, 0, &txn);
        mdb_dbi_open(txn, NULL, 0, &dbi);
        for (size_t j = 0; j < batch && i < n; j++, i++) {
            /* Random keys, like event ids hashed over the key space. */
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char key[24];
            int kl = snprintf(key, sizeof key, "%016" PRIx64, x);
            MDB_val k = {(size_t)kl, key}, v = {value_size, val};
            mdb_put(txn, dbi, &k, &v, 0);
        }
        if (mdb_txn_commit(txn) != 0) {
            fprintf(stderr, "raw commit failed\n");
            exit(1);
        }
    }
    double s = secs(t0);
    mdb_env_close(env);
    free(val);
    return (double)n / s;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"events", required_argument, 0, 'n'}, {"batch", required_argument, 0, 'b'},
                                         {"dir", required_argument, 0, 'd'},    {"seed", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    size_t target = 1000000, batch = 1000;
    uint64_t seed = 1;
    const char *base = "/tmp";
    int c;
    while ((c = getopt_long(argc, argv, "n:b:d:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': target = strtoull(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'd': base = optarg; break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!target || !batch) {
        usage(stderr);
        return 2;
    }

    /* Generate the trace in memory first, so that generation is not timed. */
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.seed = seed;
    o.orders = (uint32_t)(target / 8 + 1); /* about 12 events per order: enough to reach the target */
    sim_trace *g = NULL;
    if (sim_trace_create(&g, &o) != CT_OK) return 1;
    char **lines = ct_malloc(target * sizeof *lines);
    size_t *lens = ct_malloc(target * sizeof *lens);
    size_t n = 0, bytes = 0;
    sim_record rec;
    while (n < target && sim_trace_next(g, &rec)) {
        lines[n] = ct_strndup(rec.line, rec.len);
        lens[n] = rec.len;
        bytes += rec.len;
        n++;
    }
    sim_trace_destroy(g);
    fprintf(stderr, "trace: %zu events, %zu bytes of JSON (%.0f B/event)\n", n, bytes, (double)bytes / (double)n);

    char *raw_dir = mkdir_in(base, "bench-raw");
    double raw = raw_puts(raw_dir, n, 200, batch);
    bench_rm_rf(raw_dir);
    free(raw_dir);

    char *fold_dir = mkdir_in(base, "bench-fold");
    store *s = NULL;
    store_opts so = {.dir = fold_dir};
    if (store_open(&s, &so) != CT_OK) return 1;
    store_input *in = ct_calloc(batch, sizeof *in);
    evt_error *err = ct_calloc(batch, sizeof *err);
    uint64_t applied = 0, dead = 0, dups = 0;
    store_outcome *out = ct_calloc(batch, sizeof *out);
    int64_t t0 = ct_mono_ns();
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; m < batch && i < n; m++, i++) {
            evt_event *e = NULL;
            evt_from_json_text(&e, lines[i], lens[i], &err[m]);
            in[m] = (store_input){0, e, &err[m], lines[i], lens[i], "application/json", NULL, 0};
        }
        if (store_apply(s, in, m, ct_now_ns(), out, NULL) != CT_OK) return 1;
        for (size_t j = 0; j < m; j++) {
            applied += out[j] == STORE_APPLIED;
            dead += out[j] == STORE_DEAD_LETTER;
            dups += out[j] == STORE_DUPLICATE;
            evt_free(in[j].event);
        }
    }
    double fold_s = secs(t0);
    double fold = (double)n / fold_s;
    store_close(s);
    char *du = ct_sprintf("du -sh '%s'", fold_dir);
    fflush(stdout);
    if (system(du) != 0) fprintf(stderr, "du failed\n");
    free(du);
    bench_rm_rf(fold_dir);
    free(fold_dir);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("events %zu (applied %" PRIu64 ", duplicates %" PRIu64 ", dead letters %" PRIu64 "), batch %zu\n", n,
           applied, dups, dead, batch);
    printf("raw LMDB durable puts: %.0f puts/s\n", raw);
    printf("offline fold:          %.0f events/s (%.1f s)\n", fold, fold_s);
    printf("ratio fold/raw:        %.2f\n", fold / raw);
    printf("max RSS:               %ld MiB (includes the in-memory trace)\n", ru.ru_maxrss / 1024);
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    free(lens);
    free(in);
    free(err);
    free(out);
    return 0;
}
