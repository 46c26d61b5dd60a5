/* Benchmark: view query latency over a store of 1,000,000 open workflows, over HTTP and direct, next to raw LMDB cursor reads in the same run. */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "evt.h"
#include "server.h"
#include "store.h"

#define VIEW_PATH "/api/v1/views/awaiting_release?warehouse=dc-2&olderThan=2h&limit=100"
#define WAREHOUSES 3
#define SPREAD_NS (48LL * 3600 * 1000000000LL) /* items' since spread over the last 48 hours */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_query [--items N] [--requests N] [--conns N] [--batch N] [--dir DIR] [--store DIR]\n"
            "                   [--quickack]\n\n"
            "Builds a store of N open workflows (default 1000000: one orderApproved per order, spread over\n"
            "3 warehouses and the last 48 hours, so every order waits in awaiting_release), with store_apply\n"
            "in batches of BATCH (default 10000, no fsync: the store's content is what matters here), then\n"
            "measures in the same run, REQUESTS times each (default 5000):\n"
            "  raw:    an LMDB read txn + cursor over 100 consecutive keys of an N-key database (random start)\n"
            "  direct: store_view_scan of awaiting_release, warehouse dc-2, olderThan 2h, limit 100\n"
            "          (alone, and with the items turned into the JSON answer as the server does)\n"
            "  http:   GET " VIEW_PATH "\n"
            "          over HTTP/1.1 keep-alive against an in-process http_server_start on a free loopback\n"
            "          port, from CONNS connections at once (default 1), one request at a time on each\n"
            "and prints p50/p90/p99/max of each. DIR (default /tmp) holds the temporary stores, removed at\n"
            "the end. --store DIR reuses (or first builds and keeps) the store in DIR, for repeated runs.\n"
            "--quickack makes the HTTP client acknowledge every segment at once (TCP_QUICKACK), which\n"
            "takes the client's delayed ACK out of the HTTP figure (a diagnostic of Nagle delays).\n");
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double p50, p90, p99, max, mean; /* microseconds */
} stats;

static stats stats_of(int64_t *ns, size_t n)
{
    stats s = {0};
    if (!n) return s;
    qsort(ns, n, sizeof *ns, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)ns[i];
    s.mean = sum / (double)n / 1e3;
    s.p50 = (double)ns[n * 50 / 100] / 1e3;
    s.p90 = (double)ns[n * 90 / 100] / 1e3;
    s.p99 = (double)ns[n * 99 / 100] / 1e3;
    s.max = (double)ns[n - 1] / 1e3;
    return s;
}

/* ---- the store of N open workflows ---------------------------------------- */

static void build_store(const char *dir, size_t n, size_t batch, int64_t now)
{
    store *s = NULL;
    store_opts so = {.dir = dir, .no_sync = 1, .map_size = (size_t)2 << 30};
    if (store_open(&s, &so) != CT_OK) exit(1);
    store_input *in = ct_calloc(batch, sizeof *in);
    evt_error *err = ct_calloc(batch, sizeof *err);
    char **txt = ct_calloc(batch, sizeof *txt);
    int64_t t0 = ct_mono_ns(), last = t0;
    for (size_t i = 0; i < n;) {
        size_t m = 0;
        for (; m < batch && i < n; m++, i++) {
            /* Oldest first in publish order does not matter to the store; spread evenly. */
            int64_t at = now - SPREAD_NS + (int64_t)((double)SPREAD_NS * (double)i / (double)n);
            char when[48];
            evt_time_format(at / 1000000000LL, (int32_t)(at % 1000000000LL), when);
            txt[m] = ct_sprintf("{\"eventId\":\"bq-%08zu\",\"occurredAt\":\"%s\",\"source\":{\"system\":\"erp\","
                                "\"instance\":\"erp-bench\"},\"orderId\":\"BQ-%08zu\",\"orderApproved\":"
                                "{\"warehouseId\":\"dc-%zu\"}}",
                                i, when, i, i % WAREHOUSES + 1);
            evt_event *e = NULL;
            if (evt_from_json_text(&e, txt[m], strlen(txt[m]), &err[m]) != CT_OK) {
                fprintf(stderr, "generated event rejected: %s\n", err[m].message);
                exit(1);
            }
            in[m] = (store_input){0, e, &err[m], txt[m], strlen(txt[m]), "application/json", NULL, 0};
        }
        if (store_apply(s, in, m, ct_now_ns(), NULL, NULL) != CT_OK) exit(1);
        for (size_t j = 0; j < m; j++) {
            evt_free(in[j].event);
            free(txt[j]);
        }
        if (ct_mono_ns() - last > 5000000000LL) {
            last = ct_mono_ns();
            fprintf(stderr, "  store: %zu / %zu items (%.0f/s)\n", i, n, (double)i / ((double)(last - t0) / 1e9));
        }
    }
    fprintf(stderr, "store: %zu items in %.1f s\n", n, (double)(ct_mono_ns() - t0) / 1e9);
    store_close(s);
    free(in);
    free(err);
    free(txt);
}

/* ---- raw LMDB: 100 consecutive keys of an N-key database -------------------- */

static void raw_lmdb(const char *dir, size_t n, size_t iters, int64_t *out)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)4 << 30);
    if (mdb_env_open(env, dir, MDB_NOSYNC, 0644) != 0) {
        fprintf(stderr, "cannot open %s\n", dir);
        exit(1);
    }
    /* Values of about a stored view item's size; keys in order, as an index's are. */
    char val[160];
    memset(val, 'v', sizeof val);
    for (size_t i = 0; i < n;) {
        mdb_txn_begin(env, NULL, 0, &txn);
        mdb_dbi_open(txn, NULL, 0, &dbi);
        for (size_t j = 0; j < 100000 && i < n; j++, i++) {
            char key[24];
            int kl = snprintf(key, sizeof key, "%016zx", i);
            MDB_val k = {(size_t)kl, key}, v = {sizeof val, val};
            if (mdb_put(txn, dbi, &k, &v, MDB_APPEND) != 0) exit(1);
        }
        if (mdb_txn_commit(txn) != 0) exit(1);
    }
    mdb_env_sync(env, 1);
    mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    mdb_dbi_open(txn, NULL, 0, &dbi);
    mdb_txn_abort(txn);
    uint64_t x = 88172645463325252ULL;
    volatile unsigned sink = 0;
    for (size_t it = 0; it < iters + iters / 10; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        char key[24];
        int kl = snprintf(key, sizeof key, "%016zx", (size_t)(x % (n > 100 ? n - 100 : 1)));
        int64_t t0 = ct_mono_ns();
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
        mdb_cursor_open(txn, dbi, &cur);
        MDB_val k = {(size_t)kl, key}, v;
        int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        for (int i = 0; i < 100 && rc == 0; i++) {
            sink += ((const unsigned char *)v.mv_data)[v.mv_size - 1]; /* touch the value */
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        if (it >= iters / 10) out[it - iters / 10] = ct_mono_ns() - t0; /* the first tenth warms up */
    }
    (void)sink;
    mdb_env_close(env);
}

/* ---- direct: store_view_scan --------------------------------------------------- */

typedef struct scan_ctx {
    size_t n;
    json_t *items;
    int64_t now;
    int bad;
} scan_ctx;

static int count_item(void *vctx, const Tower__V1__ViewItem *it)
{
    scan_ctx *c = vctx;
    c->n++;
    if (!it->warehouse_id || strcmp(it->warehouse_id, "dc-2") != 0) c->bad++;
    return 0;
}

static int json_item(void *vctx, const Tower__V1__ViewItem *it)
{
    scan_ctx *c = vctx;
    c->n++;
    json_array_append_new(c->items, store_item_to_json(it, c->now));
    return 0;
}

static void direct(const char *dir, size_t iters, int with_json, int64_t *out)
{
    store *s = NULL;
    store_opts so = {.dir = dir, .read_only = 1};
    if (store_open(&s, &so) != CT_OK) exit(1);
    for (size_t it = 0; it < iters + iters / 10; it++) {
        int64_t t0 = ct_mono_ns();
        int64_t now = ct_now_ns();
        store_reader *r = NULL;
        if (store_reader_begin(s, &r) != CT_OK) exit(1);
        scan_ctx c = {0, with_json ? json_array() : NULL, now, 0};
        store_query q = {.view = FOLD_VIEW_AWAITING_RELEASE, .warehouse = "dc-2",
                         .since_before_ns = now - 2 * 3600 * 1000000000LL, .limit = 100};
        char *next = NULL;
        if (store_view_scan(r, &q, with_json ? json_item : count_item, &c, &next) != CT_OK) exit(1);
        store_reader_end(r);
        if (with_json) {
            json_t *body = json_object();
            json_object_set_new(body, "items", c.items);
            json_object_set_new(body, "nextCursor", next ? json_string(next) : json_null());
            char *txt = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
            free(txt);
            json_decref(body);
        }
        free(next);
        if (c.n != 100 || c.bad) {
            fprintf(stderr, "direct scan returned %zu items (%d of another warehouse), expected 100 of dc-2\n", c.n, c.bad);
            exit(1);
        }
        if (it >= iters / 10) out[it - iters / 10] = ct_mono_ns() - t0;
    }
    store_close(s);
}

/* ---- HTTP keep-alive client -------------------------------------------------------- */

/* --quickack: acknowledge every segment at once (a diagnostic: it hides the server's Nagle delay). */
static int quickack;

static ssize_t recv_some(int fd, void *buf, size_t n)
{
    if (quickack) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    return read(fd, buf, n);
}

typedef struct conn {
    int fd;
    char *buf;
    size_t cap, len;
} conn;

static int conn_open(conn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->cap = 1 << 20;
    c->buf = ct_malloc(c->cap);
    return 0;
}

static void conn_close(conn *c)
{
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
}

/* One GET on the connection; returns the status, body in c->buf (NUL-terminated, *body_len bytes). */
static int http_get(conn *c, const char *path, char **body, size_t *body_len)
{
    char req[512];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n", path);
    if (write(c->fd, req, (size_t)rl) != rl) return -1;
    c->len = 0;
    char *hdr_end = NULL;
    while (!hdr_end) {
        if (c->len + 1 >= c->cap) return -1;
        ssize_t r = recv_some(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (r <= 0) return -1;
        c->len += (size_t)r;
        c->buf[c->len] = 0;
        hdr_end = strstr(c->buf, "\r\n\r\n");
    }
    int status = atoi(c->buf + 9);
    const char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (!cl || cl > hdr_end) return -1; /* the server always sends one */
    size_t want = strtoull(cl + 17, NULL, 10);
    size_t hl = (size_t)(hdr_end + 4 - c->buf);
    if (hl + want + 1 > c->cap) return -1;
    while (c->len < hl + want) {
        ssize_t r = recv_some(c->fd, c->buf + c->len, c->cap - c->len - 1);
        if (r <= 0) return -1;
        c->len += (size_t)r;
    }
    c->buf[hl + want] = 0;
    *body = c->buf + hl;
    *body_len = want;
    return status;
}

typedef struct http_job {
    int port;
    size_t iters;
    int64_t *out;
    int failed;
} http_job;

static void *http_worker(void *arg)
{
    http_job *j = arg;
    conn c;
    if (conn_open(&c, j->port) != 0) {
        j->failed = 1;
        return NULL;
    }
    for (size_t it = 0; it < j->iters + j->iters / 10; it++) {
        char *body;
        size_t bl;
        int64_t t0 = ct_mono_ns();
        int st = http_get(&c, VIEW_PATH, &body, &bl);
        int64_t dt = ct_mono_ns() - t0;
        if (st != 200) {
            fprintf(stderr, "request %zu: status %d\n", it, st);
            j->failed = 1;
            break;
        }
        if (it >= j->iters / 10) j->out[it - j->iters / 10] = dt;
    }
    conn_close(&c);
    return NULL;
}

/* One answer checked in full: 100 items of dc-2, all older than two hours. */
static void check_answer(int port, size_t *bytes)
{
    conn c;
    char *body;
    size_t bl;
    if (conn_open(&c, port) != 0 || http_get(&c, VIEW_PATH, &body, &bl) != 200) {
        fprintf(stderr, "the view query failed\n");
        exit(1);
    }
    json_error_t je;
    json_t *o = json_loadb(body, bl, 0, &je);
    json_t *items = json_object_get(o, "items");
    size_t n = json_array_size(items), ok = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i);
        const char *wh = json_string_value(json_object_get(it, "warehouseId"));
        ok += wh && !strcmp(wh, "dc-2") && json_integer_value(json_object_get(it, "ageSeconds")) >= 7200;
    }
    if (n != 100 || ok != 100) {
        fprintf(stderr, "the view query returned %zu items, %zu of them as expected: %.300s\n", n, ok, body);
        exit(1);
    }
    fprintf(stderr, "http answer: %zu bytes, %zu items, count %lld\n", bl, n,
            (long long)json_integer_value(json_object_get(o, "count")));
    *bytes = bl;
    json_decref(o);
    conn_close(&c);
}

static void row(const char *name, stats s, double base_p99)
{
    printf("| %-44s | %8.1f | %8.1f | %8.1f | %8.1f | %8.1f | %6.1fx |\n", name, s.p50, s.p90, s.p99, s.max, s.mean,
           s.p99 / base_p99);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"items", required_argument, 0, 'n'},    {"requests", required_argument, 0, 'r'},
                                         {"conns", required_argument, 0, 'c'},    {"batch", required_argument, 0, 'b'},
                                         {"dir", required_argument, 0, 'd'},      {"store", required_argument, 0, 's'},
                                         {"quickack", no_argument, 0, 'Q'},       {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    size_t items = 1000000, reqs = 5000, conns = 1, batch = 10000;
    const char *base = "/tmp", *keep = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "n:r:c:b:d:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n': items = strtoull(optarg, NULL, 10); break;
        case 'r': reqs = strtoull(optarg, NULL, 10); break;
        case 'c': conns = strtoull(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'd': base = optarg; break;
        case 's': keep = optarg; break;
        case 'Q': quickack = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (items < 1000 || !reqs || !conns || conns > 64 || !batch) {
        usage(stderr);
        return 2;
    }
    ct_log_set_level(CT_LOG_WARN);
    char *tmp = ct_sprintf("%s/bench-query-XXXXXX", base);
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char *data = keep ? ct_strdup(keep) : ct_sprintf("%s/data", tmp);
    char *raw_dir = ct_sprintf("%s/raw", tmp);
    mkdir(raw_dir, 0755);

    char *cur = ct_sprintf("%s/current", data);
    struct stat sb;
    int64_t now = ct_now_ns();
    if (keep && stat(cur, &sb) == 0) {
        fprintf(stderr, "store: reusing %s (built earlier with its own --items)\n", data);
    } else {
        fprintf(stderr, "store: building %zu open workflows in %s\n", items, data);
        build_store(data, items, batch, now);
    }
    free(cur);

    int64_t *raw_ns = ct_calloc(reqs, sizeof *raw_ns), *dir_ns = ct_calloc(reqs, sizeof *dir_ns);
    int64_t *json_ns = ct_calloc(reqs, sizeof *json_ns), *http_ns = ct_calloc(reqs * conns, sizeof *http_ns);

    fprintf(stderr, "raw: LMDB database of %zu keys\n", items);
    raw_lmdb(raw_dir, items, reqs, raw_ns);
    bench_rm_rf(raw_dir);

    fprintf(stderr, "direct: store_view_scan x %zu\n", reqs);
    direct(data, reqs, 0, dir_ns);
    direct(data, reqs, 1, json_ns);

    /* The server opens the store itself (the direct phase closed its handle first: LMDB wants
     * one environment handle per process). */
    int port = bench_free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    server_opts so = {.listen = listen, .data_dir = data};
    http_server *srv = NULL;
    if (http_server_start(&srv, &so) != CT_OK) return 1;
    size_t answer_bytes = 0;
    check_answer(port, &answer_bytes);
    fprintf(stderr, "http: %zu requests on each of %zu keep-alive connections\n", reqs, conns);
    http_job *jobs = ct_calloc(conns, sizeof *jobs);
    pthread_t *th = ct_calloc(conns, sizeof *th);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t t0 = ct_mono_ns();
    for (size_t i = 0; i < conns; i++) {
        jobs[i] = (http_job){port, reqs, http_ns + i * reqs, 0};
        pthread_create(&th[i], NULL, http_worker, &jobs[i]);
    }
    int failed = 0;
    for (size_t i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        failed |= jobs[i].failed;
    }
    double http_s = (double)(ct_mono_ns() - t0) / 1e9;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    http_server_stop(srv);

    stats sr = stats_of(raw_ns, reqs), sd = stats_of(dir_ns, reqs), sj = stats_of(json_ns, reqs);
    stats sh = stats_of(http_ns, reqs * conns);
    printf("\nbench_query: %zu open workflows (awaiting_release, 3 warehouses); query: warehouse dc-2, olderThan 2h, "
           "limit 100 (%zu-byte answer)\n",
           items, answer_bytes);
    printf("%zu timed requests per line (after %zu warm-up)%s\n\n", reqs, reqs / 10,
           conns > 1 ? "; http from several connections at once" : "");
    printf("| %-44s | %8s | %8s | %8s | %8s | %8s | %7s |\n", "latency (microseconds)", "p50", "p90", "p99", "max",
           "mean", "p99/raw");
    printf("|----------------------------------------------|----------|----------|----------|----------|----------|---------|\n");
    row("raw LMDB: read txn + cursor over 100 keys", sr, sr.p99);
    row("store_view_scan (100 items, no JSON)", sd, sr.p99);
    row("store_view_scan + item JSON + dumps", sj, sr.p99);
    char name[64];
    snprintf(name, sizeof name, "HTTP GET keep-alive, %zu conn%s%s", conns, conns > 1 ? "s" : "",
             quickack ? ", quickack" : "");
    row(name, sh, sr.p99);
    printf("\nhttp: %.0f requests/s, process CPU %.0f us per request (server + client)\n",
           (double)(reqs * conns) / http_s, cpu * 1e6 / (double)(reqs * conns));
    printf("design target: p99 < 2 ms over HTTP: %s (p99 %.2f ms)\n", sh.p99 < 2000 ? "met" : "MISSED", sh.p99 / 1e3);

    if (!keep) bench_rm_rf(tmp);
    else rmdir(tmp);
    free(tmp);
    free(data);
    free(raw_dir);
    free(raw_ns);
    free(dir_ns);
    free(json_ns);
    free(http_ns);
    free(jobs);
    free(th);
    return failed;
}
