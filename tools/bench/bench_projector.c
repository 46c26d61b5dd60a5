/* Benchmark: projector, publish and rebuild rates on a real JetStream stream, each next to its raw baseline from the same run. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "bus.h"
#include "evt.h"
#include "projector.h"
#include "sim_trace.h"
#include "store.h"
#define BATCH 1000 /* the projector's default batch */


static double secs_since(int64_t t0) { return (double)(ct_mono_ns() - t0) / 1e9; }

/* bench_fold's raw baseline, in this run: LMDB durable puts of n random 16-byte keys with 200-byte values
 * (an event's average size), 1,000 per write transaction, one fsync per commit. */
static double raw_lmdb_puts(const char *dir, size_t n)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)8 << 30);
    if (mdb_env_open(env, dir, 0, 0644) != 0) return 0;
    char val[200];
    memset(val, 'x', sizeof val);
    uint64_t x = 88172645463325252ULL;
    int64_t t0 = ct_mono_ns();
    for (size_t i = 0; i < n;) {
        mdb_txn_begin(env, NULL, 0, &txn);
        mdb_dbi_open(txn, NULL, 0, &dbi);
        for (size_t j = 0; j < 1000 && i < n; j++, i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char key[24];
            int kl = snprintf(key, sizeof key, "%016" PRIx64, x);
            MDB_val k = {(size_t)kl, key}, v = {sizeof val, val};
            mdb_put(txn, dbi, &k, &v, 0);
        }
        if (mdb_txn_commit(txn) != 0) return 0;
    }
    double r = (double)n / secs_since(t0);
    mdb_env_close(env);
    return r;
}

/* One rebuild of the stream into a new generation of data, then the swap, as towerd rebuild does it
 * (towerd_replay_hinted): with the trend hint guessed from the stream's last messages (hint non-zero), checked
 * after the replay, which runs again without it when it did not hold. Its seconds; *rc the projector's code. */
static double rebuild_once(bus *b, const char *data, const bus_stream_state *st, size_t behind, int hint, int *rc,
                           const char *label)
{
    char *gen = NULL;
    volatile sig_atomic_t stop = 0;
    int64_t t0 = ct_mono_ns();
    store_rebuild_begin(data, &gen);
    int64_t guess = hint ? projector_trend_guess(b, st) : 0;
    projector_opts ro = {.data_dir = gen, .flat = 1, .consumer = "bench-rebuild", .batch = BATCH,
                         .batch_behind = behind, .stop_at_seq = st->last_seq, .trend_drop_before_ns = guess};
    *rc = projector_run(b, &ro, &stop, NULL);
    int held = guess ? projector_trend_guess_held(gen, guess) : 1;
    if (*rc == 0 && held == 0) {
        store_rebuild_reset(gen);
        ro.trend_drop_before_ns = 0;
        *rc = projector_run(b, &ro, &stop, NULL);
    }
    store_rebuild_commit(data, gen);
    double secs = secs_since(t0);
    char h[48] = "none";
    if (guess) evt_time_format(guess / 1000000000LL, 0, h);
    fprintf(stderr, "rebuild (%s): %.1f s; trend hint %s%s\n", label, secs, h,
            !guess ? "" : held == 1 ? " (held)" : " (did not hold: replayed again without it)");
    free(gen);
    return secs;
}

/* The projector's commits' total duration as the store keeps it for /metrics, in seconds (without the last
 * commit's, added after it): the commit thread's busy time, beside the run's wall time. */
static double commit_seconds(const char *data)
{
    store *s = NULL;
    store_opts o = {.dir = data, .read_only = 1};
    if (store_open(&s, &o) != CT_OK) return 0;
    store_reader *r = NULL;
    double secs = 0;
    if (store_reader_begin(s, &r) == CT_OK) {
        secs = (double)store_reader_meta(r, PROJECTOR_META_COMMIT_SUM_NS) / 1e9;
        store_reader_end(r);
    }
    store_close(s);
    return secs;
}

/* The business time the trace spans: its earliest and latest occurredAt, in hours. */
static double span_hours(evt_event *const *ev, size_t n)
{
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        int64_t t = ev[i]->occurred_at->seconds;
        if (t < lo) lo = t;
        if (t > hi) hi = t;
    }
    return n ? (double)(hi - lo) / 3600.0 : 0;
}

/* The business time in minutes the first n records of the trace so gives span (their report times). */
static double trace_minutes(const sim_trace_opts *so, size_t n)
{
    sim_trace *g = NULL;
    if (sim_trace_create(&g, so) != CT_OK) return 0;
    sim_record rec;
    int64_t first = 0, last = 0;
    for (size_t i = 0; i < n && sim_trace_next(g, &rec); i++) {
        if (!i) first = rec.emit_ns;
        last = rec.emit_ns;
    }
    sim_trace_destroy(g);
    return (double)(last - first) / 60e9;
}

typedef struct counts {
    uint64_t stored, dups, failed;
} counts;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    (void)tag;
    counts *c = ctx;
    c->stored += ack->result == BUS_PUB_STORED;
    c->dups += ack->result == BUS_PUB_DUPLICATE;
    c->failed += ack->result == BUS_PUB_FAILED;
}

int main(int argc, char **argv)
{
    size_t target = 1000000, behind = 0;
    double days = 0;
    const char *base = "/tmp", *hint_mode = "on";
    int c;
    static const struct option opts[] = {{"events", required_argument, 0, 'n'}, {"dir", required_argument, 0, 'd'},
                                         {"batch-behind", required_argument, 0, 'B'},
                                         {"days", required_argument, 0, 'D'},
                                         {"trend-hint", required_argument, 0, 'H'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    while ((c = getopt_long(argc, argv, "n:d:B:D:H:h", opts, NULL)) != -1) {
        if (c == 'n') target = strtoull(optarg, NULL, 10);
        else if (c == 'B') behind = strtoull(optarg, NULL, 10);
        else if (c == 'd') base = optarg;
        else if (c == 'D' && (days = strtod(optarg, NULL)) > 0) continue;
        else if (c == 'H' && (!strcmp(optarg, "on") || !strcmp(optarg, "off") || !strcmp(optarg, "both") ||
                             !strcmp(optarg, "off-on")))
            hint_mode = optarg;
        else {
            printf("usage: bench_projector [--events N] [--dir DIR] [--batch-behind N] [--days D]\n"
                   "                       [--trend-hint on|off|both|off-on]\n\n"
                   "Starts nats-server -js on a free loopback port (store under DIR, default /tmp) and measures,\n"
                   "in one run, on a generated trace of N events (default 1000000):\n"
                   "  raw publish:   async JetStream publishes of the pre-encoded protobuf events\n"
                   "  raw consume:   pull-fetching the whole stream, batch 1000, doing nothing with it\n"
                   "  projector:     decode + validate + fold + durable commit of the whole stream\n"
                   "  rebuild:       towerd rebuild's path: a new generation, the whole stream, the swap\n"
                   "  publish:       towerd publish's path: JSON decode + validate + encode + publish + acks\n"
                   "  raw LMDB:      durable LMDB puts of N 200-byte records, 1000 per commit (bench_fold's baseline)\n"
                   "The projector and the rebuild commit --batch-behind events at most while behind (default: the\n"
                   "projector's, 10 x its batch of 1000, and 50 x for the rebuild).\n"
                   "--days D spreads the orders' arrivals over D days of business time (default: 60 orders per\n"
                   "minute, about a day for 1,000,000 events). --trend-hint: the rebuild skips closing the trend\n"
                   "rows it drops anyway, as towerd rebuild does (on, default), or not (off); both: the rebuild\n"
                   "twice on the same stream, with the hint and then without (off-on: without, then with).\n");
            return c == 'h' ? 0 : 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    char *dir = ct_sprintf("%s/bench-proj-XXXXXX", base);
    if (!mkdtemp(dir)) return 1;
    int port = bench_free_port();
    pid_t nats = bench_start_nats(dir, port);
    if (nats < 0) exit(1);
    char *url = ct_sprintf("nats://127.0.0.1:%d", port);
    const char *urls[] = {url};
    bus_opts bo = {.urls = urls, .n_urls = 1, .name = "bench"};
    bus *b = NULL;
    if (bus_connect(&b, &bo) != CT_OK || bus_ensure_streams(b) != CT_OK) return 1;

    /* The trace, as JSON lines and as validated events. */
    sim_trace_opts so;
    sim_trace_opts_default(&so);
    so.seed = 1;
    so.orders = (uint32_t)(target / 8 + 1);
    so.p_bad = so.p_duplicate = 0; /* publish rejects bad lines and JetStream drops duplicates: keep N exact */
    if (days > 0) { /* the arrival rate that spreads the first N events over the days asked (one correction) */
        so.orders_per_minute = (double)so.orders / (days * 1440.0);
        double got_min = trace_minutes(&so, target);
        if (got_min > 0) so.orders_per_minute *= got_min / (days * 1440.0);
    }
    sim_trace *g = NULL;
    sim_trace_create(&g, &so);
    char **lines = ct_malloc(target * sizeof *lines);
    evt_event **ev = ct_malloc(target * sizeof *ev);
    size_t n = 0;
    sim_record rec;
    evt_error err;
    while (n < target && sim_trace_next(g, &rec)) {
        evt_event *e = NULL;
        if (evt_from_json_text(&e, rec.line, rec.len, &err) != CT_OK) continue;
        lines[n] = ct_strndup(rec.line, rec.len);
        ev[n++] = e;
    }
    sim_trace_destroy(g);
    fprintf(stderr, "trace: %zu valid events over %.1f hours of business time\n", n, span_hours(ev, n));

    /* Raw publish: pre-encoded bytes, message ids, async, all acks awaited. */
    ct_buf pb = {0};
    counts raw_c = {0};
    int64_t t0 = ct_mono_ns();
    for (size_t i = 0; i < n; i++) {
        ct_buf_reset(&pb);
        evt_pack(ev[i], &pb);
        char id[EVT_MAX_EVENT_ID + 18], subject[96];
        bus_event_msg_id(ev[i], &pb, id);
        snprintf(subject, sizeof subject, "tower.evt.%s.%s", ev[i]->source->system, evt_type_subject(ev[i]));
        bus_publish_raw(b, subject, pb.data, pb.len, id, i);
        if (i % 4096 == 4095) bus_publish_wait(b, 60000, on_ack, &raw_c);
    }
    bus_publish_wait(b, 60000, on_ack, &raw_c);
    double raw_pub = (double)n / secs_since(t0);
    ct_buf_free(&pb);
    bus_stream_state st;
    bus_stream_info(b, &st);
    fprintf(stderr, "raw publish: %" PRIu64 " stored, %" PRIu64 " duplicates, %" PRIu64 " failed; stream at %" PRIu64 "\n",
            raw_c.stored, raw_c.dups, raw_c.failed, st.last_seq);

    /* Raw consume: fetch everything, touch nothing. */
    bus_consumer *cons = NULL;
    bus_consumer_open(&cons, b, "bench-raw", 1);
    uint64_t got = 0, last = 0;
    t0 = ct_mono_ns();
    while (last < st.last_seq) {
        bus_batch bt;
        ct_status s = bus_consumer_fetch(cons, 1000, 1000, &bt);
        if (s == CT_OK) {
            got += bt.n;
            last = bt.v[bt.n - 1].seq;
        } else if (s != CT_TIMEOUT) {
            break;
        }
        bus_batch_free(&bt);
    }
    double raw_consume = (double)got / secs_since(t0);
    bus_consumer_close(cons);

    /* Projector: the whole stream into a fresh store, durable commits. */
    volatile sig_atomic_t stop = 0;
    char *data = ct_sprintf("%s/data", dir);
    projector_opts po = {.data_dir = data, .consumer = "bench-projector", .batch = BATCH, .batch_behind = behind,
                         .stop_at_seq = st.last_seq};
    t0 = ct_mono_ns();
    int rc = projector_run(b, &po, &stop, NULL);
    double proj_s = secs_since(t0);
    double proj = (double)st.last_seq / proj_s;
    double proj_commit_s = commit_seconds(data);

    /* Rebuild: the same stream into a new generation, then the swap (twice with --trend-hint both or off-on:
     * rebuild_s with the hint, rebuild_off_s without). */
    int rc2 = 0, rc3 = 0, off_on = !strcmp(hint_mode, "off-on"), both = off_on || !strcmp(hint_mode, "both");
    double rebuild_off_s = off_on ? rebuild_once(b, data, &st, behind, 0, &rc3, "no trend hint") : 0;
    double rebuild_s = rebuild_once(b, data, &st, behind, strcmp(hint_mode, "off") != 0, &rc2,
                                    strcmp(hint_mode, "off") ? "trend hint" : "no trend hint");
    if (both && !off_on) rebuild_off_s = rebuild_once(b, data, &st, behind, 0, &rc3, "no trend hint");
    double rebuild_commit_s = commit_seconds(data); /* the last rebuild's generation */

    /* The raw LMDB baseline, after the two runs it is compared with. */
    char *raw_dir = ct_sprintf("%s/raw-lmdb", dir);
    mkdir(raw_dir, 0755);
    double raw_puts = raw_lmdb_puts(raw_dir, n);

    /* towerd publish's path, into a new stream. */
    bus_stream_delete(b);
    bus_ensure_streams(b);
    counts pc = {0};
    t0 = ct_mono_ns();
    for (size_t i = 0; i < n; i++) {
        evt_event *e = NULL;
        if (evt_from_json_text(&e, lines[i], strlen(lines[i]), &err) == CT_OK) bus_publish_event(b, e, i);
        evt_free(e);
        if (i % 4096 == 4095) bus_publish_wait(b, 60000, on_ack, &pc);
    }
    bus_publish_wait(b, 60000, on_ack, &pc);
    double tower_pub = (double)n / secs_since(t0);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("events %zu over %.1f hours of business time; stream last sequence %" PRIu64
           "; projector rc %d, rebuild rc %d %d\n", n, span_hours(ev, n), st.last_seq, rc, rc2, rc3);
    printf("raw JetStream pull consume:  %8.0f events/s\n", raw_consume);
    printf("projector (durable commits): %8.0f events/s (%.1f s)  ratio %.2f\n", proj, proj_s, proj / raw_consume);
    printf("rebuild of the whole stream: %8.0f events/s (%.1f s)  ratio %.2f  (raw consume time %.1f s)\n",
           (double)st.last_seq / rebuild_s, rebuild_s, ((double)st.last_seq / rebuild_s) / raw_consume,
           (double)got / raw_consume);
    printf("raw LMDB durable puts:       %8.0f puts/s (bench_fold's baseline: 1,000 per commit); projector / raw "
           "%.2f, rebuild / raw %.2f\n", raw_puts, proj / raw_puts, ((double)st.last_seq / rebuild_s) / raw_puts);
    printf("commit thread busy:          projector %.1f s of %.1f s (%.0f %%), the last rebuild %.1f s of %.1f s "
           "(%.0f %%)\n", proj_commit_s, proj_s, 100 * proj_commit_s / proj_s, rebuild_commit_s,
           both && !off_on ? rebuild_off_s : rebuild_s, 100 * rebuild_commit_s / (both && !off_on ? rebuild_off_s : rebuild_s));
    printf("rebuild trend hint:          %s\n", !both ? hint_mode
           : off_on ? "off (below), then on (the rebuild above)" : "on (the rebuild above), then off (below)");
    if (both)
        printf("rebuild without the hint:    %8.0f events/s (%.1f s)  ratio %.2f; / raw LMDB %.2f; hint speed-up "
               "%.2f\n", (double)st.last_seq / rebuild_off_s, rebuild_off_s,
               ((double)st.last_seq / rebuild_off_s) / raw_consume, ((double)st.last_seq / rebuild_off_s) / raw_puts,
               rebuild_off_s / rebuild_s);
    printf("raw async publish:           %8.0f events/s\n", raw_pub);
    printf("towerd publish path:         %8.0f events/s  ratio %.2f (%" PRIu64 " stored, %" PRIu64 " failed)\n",
           tower_pub, tower_pub / raw_pub, pc.stored, pc.failed);
    printf("max RSS %ld MiB (includes the in-memory trace)\n", ru.ru_maxrss / 1024);

    bus_close(b);
    kill(nats, SIGTERM);
    waitpid(nats, NULL, 0);
    bench_rm_rf(dir);
    for (size_t i = 0; i < n; i++) {
        free(lines[i]);
        evt_free(ev[i]);
    }
    free(lines);
    free(ev);
    free(raw_dir);
    free(data);
    free(url);
    free(dir);
    return rc || rc2 || rc3 ? 1 : 0;
}
