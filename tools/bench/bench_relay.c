/* Benchmark: the relay's throughput and latency against a local receiver, next to the raw consume rate of
 * the same stream in the same run, and what a dead destination costs a live one. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "bus.h"
#include "evt.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_relay [--events N] [--trickle N] [--batch N] [--lanes N] [--delay-ms D] [--towerd PATH]\n"
            "                   [--dir DIR]\n\n"
            "Starts nats-server -js on a free loopback port, publishes N routeDispatched events (default\n"
            "20000), then measures in the same run:\n"
            "  raw:      a pull consumer reading and decoding the whole stream (what the relay reads),\n"
            "            events/s, the median of three reads\n"
            "  relay:    `towerd relay` delivering them to a local HTTP receiver (keep-alive, answers 200\n"
            "            at once), one event per request, lanes = 1: events/s from the first to the last received\n"
            "  lanes:    the same with lanes = N (--lanes, default 8; 1: no such run)\n"
            "  batch:    with --batch N (> 1): the same with batch = N (up to N events per request)\n"
            "  dead:     the lanes (or with --batch the batch) run with a second destination whose URL\n"
            "            refuses connections (it retries for ever): the live destination's events/s\n"
            "  trickle:  N more events (default 200), one every 20 ms, whose occurredAt is the publish\n"
            "            time: latency publish -> received by the receiver, p50/p99/max\n"
            "--batch-only: with --batch N, no one-event-per-request runs (a relay without lanes takes it).\n"
            "--delay-ms D: the receiver answers each request D ms after reading it (a receiver that works).\n"
            "TOWERD defaults to the towerd built beside this benchmark; DIR (default /tmp) holds the\n"
            "scratch files, removed at the end (BENCH_KEEP=1 keeps them).\n");
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the receiver: HTTP/1.1 keep-alive, 200 to every POST, counting, latency from occurredAt ---- */

typedef struct receiver {
    int fd, port;
    _Atomic uint64_t got;
    _Atomic int64_t first_ns, last_ns;
    _Atomic uint64_t first_k; /* events in the first body (not timed: the rate runs from its arrival) */
    uint32_t *lat_us; /* trickle latencies */
    _Atomic size_t lat_n;
    size_t lat_cap;
    atomic_int measure; /* record latencies */
    useconds_t delay_us; /* --delay-ms: each answer this long after its request (a receiver doing work) */
} receiver;

static receiver R;

/* The events of a body: one, or a batch's (each envelope's event has one eventId). */
static uint64_t events_in(const char *body, size_t len)
{
    uint64_t k = 0;
    for (const char *p = body; (p = memmem(p, len - (size_t)(p - body), "\"eventId\":\"", 11)) != NULL; p += 11) k++;
    return k ? k : 1;
}

static void on_body(const char *body, size_t len)
{
    int64_t now = wall_ns();
    uint64_t k = events_in(body, len), n = atomic_fetch_add(&R.got, k) + k;
    if (n == k) {
        atomic_store(&R.first_k, k);
        atomic_store(&R.first_ns, mono_ns());
    }
    atomic_store(&R.last_ns, mono_ns());
    if (!atomic_load(&R.measure)) return;
    /* Every event of the body: its latency from its occurredAt (the publish time). */
    for (const char *p = body; (p = memmem(p, len - (size_t)(p - body), "\"occurredAt\":\"", 14)) != NULL;) {
        char t[48];
        size_t tl = 0;
        for (p += 14; p < body + len && *p != '"' && tl < sizeof t - 1; p++) t[tl++] = *p;
        t[tl] = 0;
        int64_t s;
        int32_t ns;
        if (evt_time_parse(t, &s, &ns) != 0) continue;
        size_t i = atomic_fetch_add(&R.lat_n, 1);
        if (i < R.lat_cap) R.lat_us[i] = (uint32_t)((now - (s * 1000000000LL + ns)) / 1000);
    }
}

static void *conn_main(void *arg)
{
    int fd = (int)(intptr_t)arg;
    ct_buf b = {0};
    char chunk[65536];
    for (;;) {
        char *end = b.len ? memmem(b.data, b.len, "\r\n\r\n", 4) : NULL;
        if (end) {
            size_t head = (size_t)(end - b.data) + 4, clen = 0;
            const char *cl = memmem(b.data, head, "Content-Length:", 15);
            if (!cl) cl = memmem(b.data, head, "content-length:", 15);
            if (cl) clen = strtoul(cl + 15, NULL, 10);
            if (b.len >= head + clen) {
                on_body(b.data + head, clen);
                if (R.delay_us) usleep(R.delay_us);
                static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                if (write(fd, ok, sizeof ok - 1) < 0) break;
                memmove(b.data, b.data + head + clen, b.len - head - clen);
                b.len -= head + clen;
                continue;
            }
        }
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r <= 0) break;
        ct_buf_add(&b, chunk, (size_t)r);
    }
    close(fd);
    ct_buf_free(&b);
    return NULL;
}

static void *accept_main(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(R.fd, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) continue;
            break;
        }
        pthread_t t;
        pthread_create(&t, NULL, conn_main, (void *)(intptr_t)c);
        pthread_detach(t);
    }
    return NULL;
}

static int receiver_start(void)
{
    R.fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(R.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(R.fd, (struct sockaddr *)&a, sizeof a) || listen(R.fd, 64) ||
        getsockname(R.fd, (struct sockaddr *)&a, &al))
        return -1;
    R.port = ntohs(a.sin_port);
    pthread_t t;
    pthread_create(&t, NULL, accept_main, NULL);
    pthread_detach(t);
    return 0;
}

/* ---- publishing and the raw consumer ---- */

static void pub_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    (void)tag;
    if (ack->result != BUS_PUB_STORED) ++*(size_t *)ctx;
}

static int publish(bus *b, size_t from, size_t n, int64_t pace_ns)
{
    size_t failed = 0;
    for (size_t i = from; i < from + n; i++) {
        int64_t now = wall_ns();
        char when[48], txt[300];
        evt_time_format(now / 1000000000LL, (int32_t)(now % 1000000000LL), when);
        int tl = snprintf(txt, sizeof txt,
                          "{\"eventId\":\"br-%08zu\",\"occurredAt\":\"%s\",\"source\":{\"system\":\"tms\"},"
                          "\"routeId\":\"R-%08zu\",\"warehouseId\":\"dc-1\",\"routeDispatched\":{}}",
                          i, when, i);
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_json_text(&e, txt, (size_t)tl, &err) != CT_OK) return -1;
        bus_publish_event(b, e, i);
        evt_free(e);
        if (pace_ns) {
            bus_publish_wait(b, 10000, pub_ack, &failed);
            struct timespec ts = {0, (long)pace_ns};
            nanosleep(&ts, NULL);
        } else if (i % 500 == 499) {
            bus_publish_wait(b, 30000, pub_ack, &failed);
        }
    }
    bus_publish_wait(b, 30000, pub_ack, &failed);
    return failed ? -1 : 0;
}

static double raw_consume(bus *b, size_t n, const char *name)
{
    bus_consumer *c = NULL;
    if (bus_consumer_open(&c, b, name, 1) != CT_OK) return 0;
    size_t got = 0;
    int64_t t0 = mono_ns();
    while (got < n) {
        bus_batch bt = {0};
        ct_status st = bus_consumer_fetch(c, 256, 2000, &bt);
        if (st != CT_OK) break;
        for (size_t i = 0; i < bt.n; i++) { /* what the relay does with each: decode it */
            evt_event *e = NULL;
            evt_error err;
            if (evt_from_protobuf(&e, bt.v[i].data, bt.v[i].len, &err) == CT_OK) got++;
            evt_free(e);
        }
        bus_batch_free(&bt);
    }
    double s = (double)(mono_ns() - t0) / 1e9;
    bus_consumer_close(c);
    return got == n && s > 0 ? (double)n / s : 0;
}

/* ---- the relay as a child process ---- */

static pid_t start_relay(const char *towerd, const char *url, const char *file, const char *state, const char *log)
{
    pid_t p = fork();
    if (p == 0) {
        FILE *f = freopen(log, "a", stderr);
        (void)f;
        execl(towerd, towerd, "relay", "--nats", url, "--relay", file, "--state", state, (char *)NULL);
        _exit(127);
    }
    return p;
}

static void stop_child(pid_t p)
{
    if (p <= 0) return;
    kill(p, SIGTERM);
    waitpid(p, NULL, 0);
}

/* Wait until the receiver has `want` events (or 120 s); the rate between the first and the last. */
static double wait_rate(uint64_t want)
{
    int64_t deadline = mono_ns() + 120 * 1000000000LL;
    while (atomic_load(&R.got) < want && mono_ns() < deadline) usleep(2000);
    if (atomic_load(&R.got) < want) return 0;
    double s = (double)(atomic_load(&R.last_ns) - atomic_load(&R.first_ns)) / 1e9;
    return s > 0 ? (double)(want - atomic_load(&R.first_k)) / s : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void write_conf(const char *path, int port, int with_dead, int batch, int lanes)
{
    FILE *f = fopen(path, "w");
    fprintf(f, "[destination live]\nurl = http://127.0.0.1:%d/hook\nevents = routeDispatched\nbatch = %d\n", port, batch);
    if (batch <= 1) fprintf(f, "lanes = %d\n", lanes);
    if (with_dead)
        fprintf(f, "\n[destination dead]\nurl = http://127.0.0.1:%d/hook\nevents = routeDispatched\n"
                   "max_attempts = 1000000\nbackoff_min = 10ms\nbackoff_max = 100ms\nbreaker_failures = 1000000\n",
                bench_free_port());
    fclose(f);
}

static char *default_towerd(void)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return ct_strdup("towerd");
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    return ct_sprintf("%s/../services/towerd/towerd", self);
}

typedef struct bench {
    const char *towerd, *url, *dir;
    size_t n, trickle;
    int batch, lanes, batch_only;
    double raw, one, laned, batched, dead, p50, p99, max;
    double cpu_one, cpu_laned, cpu_batched; /* the relay process's CPU (user + system) per event, µs */
    size_t lat_n;
} bench;

/* CPU seconds (user + system) a process has used so far, from /proc/PID/stat; 0 if unknown. */
static double cpu_seconds(pid_t p)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)p);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    char *s = strrchr(buf, ')'); /* fields after the command name: state is field 3, utime 14, stime 15 */
    unsigned long long ut = 0, st = 0;
    if (!s || sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* One relay run from a fresh state directory against the receiver: its events/s for all n events. */
static double relay_run(const bench *B, const char *tag, int with_dead, int batch, int lanes, pid_t *keep,
                        double *cpu_us)
{
    char *file = ct_sprintf("%s/relay-%s.ini", B->dir, tag), *state = ct_sprintf("%s/state-%s", B->dir, tag);
    char *log = ct_sprintf("%s/relay.log", B->dir);
    atomic_store(&R.got, 0);
    write_conf(file, R.port, with_dead, batch, lanes);
    pid_t relay = start_relay(B->towerd, B->url, file, state, log);
    double rate = wait_rate(B->n);
    if (cpu_us) *cpu_us = cpu_seconds(relay) * 1e6 / (double)B->n;
    if (keep) *keep = relay;
    else stop_child(relay);
    free(file);
    free(state);
    free(log);
    return rate;
}

/* The trickle on the running relay (a dead destination beside): latency publish -> received. */
static void trickle(bench *B, bus *b, pid_t relay)
{
    atomic_store(&R.measure, 1);
    uint64_t before = atomic_load(&R.got);
    publish(b, B->n, B->trickle, 20 * 1000000LL);
    wait_rate(before + B->trickle);
    stop_child(relay);
    size_t ln = atomic_load(&R.lat_n) < R.lat_cap ? atomic_load(&R.lat_n) : R.lat_cap;
    qsort(R.lat_us, ln, sizeof *R.lat_us, cmp_u32);
    B->lat_n = ln;
    B->p50 = ln ? R.lat_us[ln / 2] / 1000.0 : 0;
    B->p99 = ln ? R.lat_us[(size_t)(ln * 0.99)] / 1000.0 : 0;
    B->max = ln ? R.lat_us[ln - 1] / 1000.0 : 0;
}

static void report(const bench *B)
{
    double raw = B->raw > 0 ? B->raw : 1;
    printf("\nbench_relay: %zu routeDispatched events, one destination (a local keep-alive receiver%s)\n\n", B->n,
           R.delay_us ? ", answering after --delay-ms" : "");
    printf("| | events/s | ratio to raw | relay CPU per event |\n|---|---|---|---|\n");
    printf("| raw: a pull consumer reading and decoding the stream | %.0f | 1.00 | (%.1f µs wall) |\n", B->raw, 1e6 / raw);
    if (!B->batch_only)
        printf("| relay -> receiver, one event per request, lanes = 1 | %.0f | **%.2f** | %.1f µs |\n", B->one,
               B->one / raw, B->cpu_one);
    if (B->lanes > 1 && !B->batch_only)
        printf("| relay -> receiver, one event per request, lanes = %d | %.0f | **%.2f** | %.1f µs |\n", B->lanes,
               B->laned, B->laned / raw, B->cpu_laned);
    if (B->batch > 1)
        printf("| relay -> receiver, batch = %d | %.0f | **%.2f** | %.1f µs |\n", B->batch, B->batched,
               B->batched / raw, B->cpu_batched);
    double base = B->batch > 1 ? B->batched : B->lanes > 1 ? B->laned : B->one;
    printf("| relay -> receiver (%s), a dead destination beside | %.0f | %.2f (%.2f of the run without) | |\n",
           B->batch > 1 ? "batch" : "lanes", B->dead, B->dead / raw, base > 0 ? B->dead / base : 0);
    printf("\ntrickle (one event every 20 ms, dead destination beside): %zu received, publish -> webhook received "
           "p50 %.2f ms, p99 **%.2f ms**, max %.2f ms\n", B->lat_n, B->p50, B->p99, B->max);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The raw rate: the median of three reads of the whole stream (one read of 20,000 events takes 0.1-0.3 s, short
 * enough for one descheduling on a busy machine to halve it). */
static double raw_median(bus *b, size_t n)
{
    double v[3];
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-raw-%d", i);
        v[i] = raw_consume(b, n, name);
    }
    qsort(v, 3, sizeof v[0], cmp_double);
    return v[1];
}

/* Publish, the raw rate, then each relay run from scratch, back to back. 0, or 3 if one failed. */
static int measure(bench *B, bus *b)
{
    fprintf(stderr, "publishing %zu routeDispatched events\n", B->n);
    if (publish(b, 0, B->n, 0) != 0) return 3;
    B->raw = raw_median(b, B->n);
    if (!B->batch_only) B->one = relay_run(B, "one", 0, 1, 1, NULL, &B->cpu_one);
    if (B->lanes > 1 && !B->batch_only) B->laned = relay_run(B, "lanes", 0, 1, B->lanes, NULL, &B->cpu_laned);
    if (B->batch > 1) B->batched = relay_run(B, "batch", 0, B->batch, 1, NULL, &B->cpu_batched);
    pid_t relay = -1;
    B->dead = relay_run(B, "dead", 1, B->batch, B->lanes, &relay, NULL);
    trickle(B, b, relay);
    report(B);
    return (B->one > 0 || B->batch_only) && B->dead > 0 && B->lat_n == B->trickle &&
                   (B->lanes <= 1 || B->laned > 0 || B->batch_only) &&
                   (B->batch <= 1 || B->batched > 0)
               ? 0
               : 3;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"events", required_argument, 0, 'n'}, {"trickle", required_argument, 0, 't'},
                                         {"towerd", required_argument, 0, 'T'}, {"dir", required_argument, 0, 'd'},
                                         {"batch", required_argument, 0, 'b'},  {"lanes", required_argument, 0, 'l'},
                                         {"delay-ms", required_argument, 0, 'D'}, {"batch-only", no_argument, 0, 'B'},
                                         {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    bench B = {.n = 20000, .trickle = 200, .batch = 1, .lanes = 8};
    const char *base = "/tmp";
    char *towerd = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "n:t:T:d:b:l:D:Bh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': B.n = strtoull(optarg, NULL, 10); break;
        case 't': B.trickle = strtoull(optarg, NULL, 10); break;
        case 'T': towerd = ct_strdup(optarg); break;
        case 'd': base = optarg; break;
        case 'b': B.batch = atoi(optarg); break;
        case 'l': B.lanes = atoi(optarg); break;
        case 'B': B.batch_only = 1; break;
        case 'D': R.delay_us = (useconds_t)(atof(optarg) * 1000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!B.n || B.batch < 1 || B.batch > 500 || B.lanes < 1 || B.lanes > 64 || (B.batch_only && B.batch < 2)) {
        usage(stderr);
        return 2;
    }
    if (!towerd) towerd = default_towerd();
    B.towerd = towerd;
    signal(SIGPIPE, SIG_IGN);
    ct_log_set_level(CT_LOG_WARN);
    char *dir = ct_sprintf("%s/bench-relay-XXXXXX", base);
    if (!mkdtemp(dir)) return 1;
    B.dir = dir;
    int port = bench_free_port(), rc = 1;
    pid_t nats = bench_start_nats(dir, port);
    char *url = ct_sprintf("nats://127.0.0.1:%d", port);
    B.url = url;
    const char *urls[] = {url};
    bus_opts bo = {.urls = urls, .n_urls = 1, .name = "bench-relay"};
    bus *b = NULL;
    R.lat_cap = B.trickle + 1;
    R.lat_us = ct_calloc(R.lat_cap, sizeof *R.lat_us);
    if (nats >= 0 && receiver_start() == 0 && bus_connect(&b, &bo) == CT_OK && bus_ensure_streams(b) == CT_OK)
        rc = measure(&B, b);
    bus_close(b);
    stop_child(nats);
    if (getenv("BENCH_KEEP")) fprintf(stderr, "kept %s\n", dir);
    else bench_rm_rf(dir);
    free(dir);
    free(url);
    free(towerd);
    free(R.lat_us);
    return rc;
}
