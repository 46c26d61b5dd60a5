/* Benchmark: event published -> websocket delta received, for 1 to thousands of live-stream clients (some of them stuck), next to raw JetStream latency in the same run. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
            "usage: bench_stream [--clients N] [--rate R] [--seconds S] [--stuck K] [--ws-queue N]\n"
            "                    [--coalesce-ms MS] [--drain S] [--no-baseline] [--actions A] [--towerd PATH]\n"
            "                    [--dir DIR] [--lws] [--client-threads T] [--ws-max-clients N]\n\n"
            "Starts nats-server -js on a free loopback port, then measures in the same run:\n"
            "  baseline: R messages/s of 200 B for S seconds published to a scratch JetStream stream\n"
            "            (async, paced): latency publish -> core NATS subscriber, and publish -> ack\n"
            "  pipeline: `towerd projector` and `towerd serve --ws-max-clients N` as child processes, N\n"
            "            libwebsockets clients (one thread) subscribed to awaiting_release, and orderApproved\n"
            "            events of new orders published at a paced R/s for S seconds whose occurredAt is\n"
            "            the wall-clock publish time; each \"add\" delta's item.since is that occurredAt, so\n"
            "            latency = receive wall time - since. Every delta must reach every client.\n"
            "  actions:  with --actions A, then A acknowledgements, one after the other, through\n"
            "            POST /api/v1/exceptions/{id}/ack on A of those orders: latency request sent -> the\n"
            "            answer (read-your-writes), and request sent -> the update delta on every client.\n"
            "The first K clients (default 0) stop reading once their snapshot arrived (stuck clients);\n"
            "they are left out of the delivery and latency figures, which are those of the others.\n"
            "--lws: the clients use the libwebsockets listener (towerd serve --stream-listen, on another port)\n"
            "instead of civetweb's /api/v1/stream. The clients run in T threads (default 1), one libwebsockets\n"
            "context each, in this process: the server is a separate process with its own 20,000 descriptors.\n"
            "--ws-max-clients is passed to towerd serve (default N, at least 256; 256 with --lws). The server's\n"
            "threads and RSS are read from /proc. At most 40 M latencies are kept (every k-th delta).\n"
            "Defaults: N 1, R 5000, S 20, drain 15 s after the last publish. The server's RSS is read from\n"
            "/proc. --ws-queue and --coalesce-ms are passed to towerd serve (default: its own defaults).\n"
            "TOWERD defaults to the towerd built beside this benchmark; DIR (default /tmp) holds the\n"
            "nats-server store and the view store, removed at the end.\n"
            "Environment: BENCH_VERBOSE=1 prints progress every second, BENCH_KEEP=1 keeps DIR and its\n"
            "logs (with TOWER_LOG=debug for more), BENCH_LWS_DEBUG=1 turns libwebsockets' log on.\n");
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

static void sleep_until_mono(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000LL), (long)(t % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
}

/* ---- percentiles --------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    size_t n;
    double p50, p90, p99, p999, max; /* milliseconds */
} stats;

static stats stats_of(uint32_t *us, size_t n)
{
    stats s = {n, 0, 0, 0, 0, 0};
    if (!n) return s;
    qsort(us, n, sizeof *us, cmp_u32);
    s.p50 = us[n * 50 / 100] / 1e3;
    s.p90 = us[n * 90 / 100] / 1e3;
    s.p99 = us[n * 99 / 100] / 1e3;
    s.p999 = us[n * 999 / 1000] / 1e3;
    s.max = us[n - 1] / 1e3;
    return s;
}

static uint32_t to_us(int64_t ns) { return ns <= 0 ? 0 : ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000); }

/* ---- processes ------------------------------------------------------------------ */

/* Fork and exec argv with output to log (NULL: /dev/null); the child dies with us. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark, even if it crashes */
        int fd = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("TOWER_LOG", "warn", 0); /* TOWER_LOG=debug to see more in the kept logs */
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void stop_child(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void show_log(const char *path)
{
    char *cmd = ct_sprintf("tail -n 20 '%s' >&2", path);
    if (system(cmd) != 0) fprintf(stderr, "(no log %s)\n", path);
    free(cmd);
}

/* VmRSS and VmHWM of a process, in KiB, and its thread count. */
static void proc_mem(pid_t pid, long *rss, long *hwm, long *threads)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) *rss = atol(line + 6);
        else if (!strncmp(line, "VmHWM:", 6)) *hwm = atol(line + 6);
        else if (!strncmp(line, "Threads:", 8)) *threads = atol(line + 8);
    }
    fclose(f);
}

/* CPU seconds (user + system) used so far by a process. */
static double proc_cpu(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Seconds this thread has run, and waited on a run queue for a CPU (from /proc/thread-self/schedstat). */
static void thread_sched(double *run, double *wait)
{
    unsigned long long r = 0, w = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &r, &w) != 2) r = w = 0;
        fclose(f);
    }
    *run = (double)r / 1e9;
    *wait = (double)w / 1e9;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* GET path, whole answer (caller frees) or NULL. Connection: close. */
static char *http_get_all(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[256];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return NULL;
    }
    ct_buf b = {0};
    char chunk[16384];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) > 0) ct_buf_add(&b, chunk, (size_t)r);
    close(fd);
    ct_buf_add(&b, "", 1);
    return (char *)b.data;
}

static double metric(const char *text, const char *name)
{
    if (!text) return -1;
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)); p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ') return atof(p + n + 1);
    return -1;
}

/* ---- the raw baseline: JetStream publish -> core subscriber, and -> ack --------------- */

typedef struct raw_lat {
    pthread_mutex_t mu;
    uint32_t *sub, *ack;
    size_t n_sub, n_ack, cap, ack_errors;
} raw_lat;

static void raw_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
    (void)nc;
    (void)sub;
    raw_lat *r = closure;
    int64_t now = wall_ns(), sent;
    if (natsMsg_GetDataLength(m) >= 8) {
        memcpy(&sent, natsMsg_GetData(m), 8);
        pthread_mutex_lock(&r->mu);
        if (r->n_sub < r->cap) r->sub[r->n_sub++] = to_us(now - sent);
        pthread_mutex_unlock(&r->mu);
    }
    natsMsg_Destroy(m);
}

static void raw_on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pa;
    raw_lat *r = closure;
    int64_t now = wall_ns(), sent;
    pthread_mutex_lock(&r->mu);
    if (pae) r->ack_errors++;
    else if (natsMsg_GetDataLength(m) >= 8) {
        memcpy(&sent, natsMsg_GetData(m), 8);
        if (r->n_ack < r->cap) r->ack[r->n_ack++] = to_us(now - sent);
    }
    pthread_mutex_unlock(&r->mu);
    natsMsg_Destroy(m);
}

static int raw_baseline(const char *url, double rate, double seconds, stats *sub_st, stats *ack_st, size_t *sent_out,
                        size_t *ack_err)
{
    size_t total = (size_t)(rate * seconds);
    raw_lat r = {PTHREAD_MUTEX_INITIALIZER, ct_calloc(total + 1, 4), ct_calloc(total + 1, 4), 0, 0, total + 1, 0};
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    jsCtx *js = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = raw_on_ack;
    jo.PublishAsync.AckHandlerClosure = &r;
    jo.PublishAsync.MaxPending = 1 << 16;
    int rc = 1;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, &jo);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"bench.raw.>"};
    sc.Name = "BENCH_RAW";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jsErrCode jerr = 0;
    if (s == NATS_OK) s = js_AddStream(NULL, js, &sc, NULL, &jerr);
    if (s == NATS_OK) s = natsConnection_Subscribe(&sub, nc, "bench.raw.>", raw_on_msg, &r);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK) s = natsConnection_Flush(nc);
    if (s != NATS_OK) {
        fprintf(stderr, "baseline: %s (JetStream error %d)\n", natsStatus_GetText(s), (int)jerr);
        goto out;
    }
    char payload[200];
    memset(payload, 'p', sizeof payload);
    int64_t t0 = mono_ns();
    for (size_t i = 0; i < total; i++) {
        sleep_until_mono(t0 + (int64_t)((double)i * 1e9 / rate));
        int64_t now = wall_ns();
        memcpy(payload, &now, 8);
        s = js_PublishAsync(js, "bench.raw.x", payload, sizeof payload, NULL);
        if (s != NATS_OK) {
            fprintf(stderr, "baseline publish: %s\n", natsStatus_GetText(s));
            goto out;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    js_PublishAsyncComplete(js, &po);
    for (int i = 0; i < 100; i++) { /* the core subscriber may trail the acks a little */
        pthread_mutex_lock(&r.mu);
        int done = r.n_sub >= total;
        pthread_mutex_unlock(&r.mu);
        if (done) break;
        usleep(20000);
    }
    rc = 0;
out:
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    if (js) js_DeleteStream(js, "BENCH_RAW", NULL, NULL);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    pthread_mutex_lock(&r.mu);
    *sub_st = stats_of(r.sub, r.n_sub);
    *ack_st = stats_of(r.ack, r.n_ack);
    *ack_err = r.ack_errors;
    pthread_mutex_unlock(&r.mu);
    *sent_out = total;
    free(r.sub);
    free(r.ack);
    return rc;
}

/* ---- the live-stream clients ------------------------------------------------------ */

typedef struct cgroup cgroup;

typedef struct client {
    struct lws *wsi;
    cgroup *grp;
    size_t idx;
    int connecting, established, subscribed, closed, failed, stuck, sub_sent;
    uint64_t deltas, dups, resyncs, snapshots, frames, msgs, errors;
    uint32_t max_us;
    uint8_t *seen; /* a bit per published event */
    uint8_t *aseen; /* a bit per acknowledged order: its update delta arrived */
    uint64_t adeltas;
    ct_buf rx;
} client;

/* The clients served by one thread: its own libwebsockets context (--client-threads of them). */
struct cgroup {
    struct lws_context *ctx;
    pthread_t thread;
    size_t first, end, next_connect, pending;
    lws_sorted_usec_list_t sul_tick;
    double run, wait; /* seconds the thread ran, and waited for a CPU, while streaming */
    volatile int measured; /* the last g.measure the thread acted on */
};

#define MAX_CLIENT_THREADS 8
#define STREAM_PATH_NOTE "/api/v1/stream"
/* At most this many latencies are kept (each of every stride-th delta): 10,000 clients make millions. */
#define LAT_KEEP 40000000

typedef struct bench {
    int port, http_port;
    char origin[64]; /* the dashboard's page is on civetweb's port, whichever port the stream is on (set once) */
    size_t n_clients, n_stuck;
    client *cl;
    cgroup grp[MAX_CLIENT_THREADS];
    int n_grp;
    volatile int quit;     /* the client threads stop */
    volatile int measure;  /* the client threads note their run and wait times (1: at the start, 2: at the end) */
    size_t max_events;
    uint32_t *lat; /* the latency of every stride-th delta, non-stuck clients, microseconds (n atomic) */
    size_t lat_n, lat_cap, lat_seen, lat_stride;
    uint64_t stray; /* add deltas that are not of this run's orders */
    int64_t *pub_ns;  /* per event: when it was published (wall clock; its occurredAt) */
    int64_t *note_ns; /* per event: when the projector's change notice naming it reached us */
    uint32_t *fan;    /* per delta (non-stuck clients): receive - notice, microseconds */
    size_t fan_n;          /* atomic */
    int64_t *act_ns;  /* per event: when its acknowledgement was sent (wall clock), 0 if none */
    uint32_t *alat;   /* action sent -> update delta, non-stuck clients, microseconds */
    size_t alat_n, alat_cap; /* atomic */
    uint32_t *resp;   /* action sent -> HTTP answer, microseconds */
    size_t resp_n, n_actions, actions_ok;
    volatile int act_done;
    volatile size_t published;
    volatile int pub_done;
} bench;

/* Keep a latency at *n of arr (atomic: several client threads). */
static void keep(uint32_t *arr, size_t *n, size_t cap, uint32_t us)
{
    size_t i = __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
    if (i < cap) arr[i] = us;
}

static bench g;

static void on_line(client *c, char *line, int64_t now)
{
    c->msgs++;
    if (!strncmp(line, "{\"type\":\"delta\"", 15) && strstr(line, "\"op\":\"update\"")) {
        char *o = strstr(line, "\"orderId\":\"BS-");
        if (!o || !strstr(line, "\"acknowledgedAt\"")) return;
        size_t i = strtoull(o + 14, NULL, 10);
        if (i >= g.max_events || (c->aseen[i / 8] & (1u << (i % 8)))) return;
        int64_t sent = __atomic_load_n(&g.act_ns[i], __ATOMIC_ACQUIRE);
        if (!sent) return;
        c->aseen[i / 8] |= (uint8_t)(1u << (i % 8));
        c->adeltas++;
        if (!c->stuck) keep(g.alat, &g.alat_n, g.alat_cap, to_us(now - sent));
        return;
    }
    if (!strncmp(line, "{\"type\":\"delta\"", 15)) {
        if (!strstr(line, "\"op\":\"add\"")) return;
        char *o = strstr(line, "\"orderId\":\"BS-");
        char *s = strstr(line, "\"since\":\"");
        if (!o || !s) {
            __atomic_fetch_add(&g.stray, 1, __ATOMIC_RELAXED);
            return;
        }
        size_t i = strtoull(o + 14, NULL, 10);
        char t[48];
        size_t k = 0;
        for (s += 9; *s && *s != '"' && k < sizeof t - 1; s++) t[k++] = *s;
        t[k] = 0;
        int64_t sec;
        int32_t nanos;
        if (i >= g.max_events || evt_time_parse(t, &sec, &nanos) != 0) {
            __atomic_fetch_add(&g.stray, 1, __ATOMIC_RELAXED);
            return;
        }
        if (c->seen[i / 8] & (1u << (i % 8))) {
            c->dups++;
            return;
        }
        c->seen[i / 8] |= (uint8_t)(1u << (i % 8));
        c->deltas++;
        uint32_t us = to_us(now - (sec * 1000000000LL + nanos));
        if (us > c->max_us) c->max_us = us;
        if (c->stuck || __atomic_fetch_add(&g.lat_seen, 1, __ATOMIC_RELAXED) % g.lat_stride) return;
        keep(g.lat, &g.lat_n, g.lat_cap, us);
        int64_t noted = __atomic_load_n(&g.note_ns[i], __ATOMIC_ACQUIRE);
        if (noted) keep(g.fan, &g.fan_n, g.lat_cap, to_us(now - noted));
    } else if (!strncmp(line, "{\"type\":\"snapshot\"", 18)) {
        c->snapshots++;
        if (!c->subscribed) {
            c->subscribed = 1;
            if (c->stuck) {
                /* Stop reading, and keep the kernel's buffer small so that the server notices soon. */
                int fd = (int)lws_get_socket_fd(c->wsi), v = 16384;
                if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
                lws_rx_flow_control(c->wsi, 0);
            }
        }
    } else if (!strncmp(line, "{\"type\":\"resync\"", 16)) {
        c->resyncs++;
    } else if (!strncmp(line, "{\"type\":\"error\"", 15)) {
        c->errors++;
        fprintf(stderr, "client %zu: %.200s\n", c->idx, line);
    }
}

static void on_frame(client *c)
{
    int64_t now = wall_ns();
    c->frames++;
    ct_buf_add(&c->rx, "", 1);
    char *p = (char *)c->rx.data;
    while (p && *p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        on_line(c, p, now);
        p = nl ? nl + 1 : NULL;
    }
    c->rx.len = 0;
}

static void connect_more(cgroup *grp);

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    client *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->established = 1;
        c->connecting = 0;
        c->grp->pending--;
        lws_callback_on_writable(wsi);
        connect_more(c->grp);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c->connecting) c->grp->pending--;
        c->connecting = 0;
        c->failed = 1;
        fprintf(stderr, "client %zu: connection failed: %s\n", c->idx, in ? (const char *)in : "?");
        connect_more(c->grp);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_frame_is_binary(wsi)) break;
        ct_buf_add(&c->rx, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) on_frame(c);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c->sub_sent) {
            static const char msg[] = "{\"type\":\"subscribe\",\"views\":[\"awaiting_release\"]}";
            unsigned char buf[LWS_PRE + sizeof msg];
            memcpy(buf + LWS_PRE, msg, sizeof msg - 1);
            if (lws_write(wsi, buf + LWS_PRE, sizeof msg - 1, LWS_WRITE_TEXT) < 0) return -1;
            c->sub_sent = 1;
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->closed = 1;
        c->wsi = NULL;
        break;
    default: break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {{"tower", callback, 0, 65536, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};

/* Connections are opened a few dozen at a time: a burst of a thousand overruns the listen backlog. */
static void connect_more(cgroup *grp)
{
    while (grp->next_connect < grp->end && grp->pending < 32) {
        client *c = &g.cl[grp->next_connect++];
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = grp->ctx;
        ci.address = "127.0.0.1";
        ci.port = g.port;
        ci.path = "/api/v1/stream";
        /* A browser's Origin: the server's own (loopback mode refuses another origin's upgrade); libwebsockets
         * writes it as "http://" followed by this. */
        ci.host = "127.0.0.1";
        ci.origin = g.origin;
        ci.local_protocol_name = "tower";
        ci.userdata = c;
        ci.pwsi = &c->wsi;
        c->connecting = 1;
        grp->pending++;
        if (!lws_client_connect_via_info(&ci)) {
            c->connecting = 0;
            c->failed = 1;
            grp->pending--;
        }
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    cgroup *grp = lws_container_of(sul, cgroup, sul_tick);
    lws_sul_schedule(grp->ctx, 0, &grp->sul_tick, on_tick, 20 * LWS_US_PER_MS);
}

/* A client thread: its clients' connections, until the benchmark is over. */
static void *client_thread(void *arg)
{
    cgroup *grp = arg;
    int measured = 0;
    double r0 = 0, w0 = 0;
    connect_more(grp);
    while (!g.quit) {
        lws_service(grp->ctx, 0);
        if (g.measure != measured) {
            measured = g.measure;
            double r, w;
            thread_sched(&r, &w);
            if (measured == 1) {
                r0 = r;
                w0 = w;
            } else {
                grp->run = r - r0;
                grp->wait = w - w0;
            }
            __atomic_store_n(&grp->measured, measured, __ATOMIC_RELEASE);
        }
    }
    return NULL;
}

/* The clients connected (or failed): ready (subscribed) and failed counts. */
static void count_clients(size_t *ready, size_t *failed)
{
    *ready = *failed = 0;
    for (size_t i = 0; i < g.n_clients; i++) {
        *ready += __atomic_load_n(&g.cl[i].subscribed, __ATOMIC_RELAXED);
        *failed += __atomic_load_n(&g.cl[i].failed, __ATOMIC_RELAXED) || __atomic_load_n(&g.cl[i].closed, __ATOMIC_RELAXED);
    }
}

/* The projector's change notices, as the server's hub gets them: when each order's add was committed. */
static void on_notice(void *ctx, const char *data, size_t len)
{
    (void)ctx;
    int64_t now = wall_ns();
    static const char pat[] = "\"orderId\":\"BS-";
    const char *p = data, *end = data + len;
    while ((p = memmem(p, (size_t)(end - p), pat, sizeof pat - 1))) {
        p += sizeof pat - 1;
        size_t i = 0;
        while (p < end && *p >= '0' && *p <= '9') i = i * 10 + (size_t)(*p++ - '0');
        int64_t zero = 0;
        if (i < g.max_events) __atomic_compare_exchange_n(&g.note_ns[i], &zero, now, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
}

/* ---- the publisher ---------------------------------------------------------------- */

typedef struct pub_job {
    const char *url;
    double rate, seconds;
    size_t stored, failed;
    double achieved;
    int rc;
} pub_job;

static void pub_on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    (void)tag;
    pub_job *j = ctx;
    j->stored += ack->result == BUS_PUB_STORED;
    j->failed += ack->result != BUS_PUB_STORED;
}

static void *publisher(void *arg)
{
    pub_job *j = arg;
    const char *urls[] = {j->url};
    bus_opts bo = {.urls = urls, .n_urls = 1, .name = "bench-publisher"};
    bus *b = NULL;
    if (bus_connect(&b, &bo) != CT_OK) {
        j->rc = 1;
        g.pub_done = 1;
        return NULL;
    }
    size_t total = (size_t)(j->rate * j->seconds);
    size_t every = j->rate / 50 > 1 ? (size_t)(j->rate / 50) : 1; /* wait for acks every 20 ms or so */
    int64_t t0 = mono_ns();
    for (size_t i = 0; i < total; i++) {
        sleep_until_mono(t0 + (int64_t)((double)i * 1e9 / j->rate));
        int64_t now = wall_ns();
        char when[48], txt[512];
        evt_time_format(now / 1000000000LL, (int32_t)(now % 1000000000LL), when);
        int tl = snprintf(txt, sizeof txt,
                          "{\"eventId\":\"bs-%08zu\",\"occurredAt\":\"%s\",\"source\":{\"system\":\"erp\",\"instance\":"
                          "\"erp-bench\"},\"orderId\":\"BS-%08zu\",\"orderApproved\":{\"warehouseId\":\"dc-%zu\"}}",
                          i, when, i, i % 3 + 1);
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_json_text(&e, txt, (size_t)tl, &err) != CT_OK) {
            fprintf(stderr, "publisher: %s\n", err.message);
            j->rc = 1;
            break;
        }
        g.pub_ns[i] = now;
        bus_publish_event(b, e, i);
        evt_free(e);
        __atomic_store_n(&g.published, i + 1, __ATOMIC_RELEASE);
        if (i % every == every - 1) bus_publish_wait(b, 30000, pub_on_ack, j);
    }
    bus_publish_wait(b, 30000, pub_on_ack, j);
    j->achieved = (double)g.published / ((double)(mono_ns() - t0) / 1e9);
    bus_close(b);
    __atomic_store_n(&g.pub_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- the actions: acknowledgements through the API, one at a time ------------------------------- */

static char *http_post(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    char req[512];
    int rl = snprintf(req, sizeof req,
                      "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: 2\r\n\r\n{}", path);
    if (write(fd, req, (size_t)rl) != rl) {
        close(fd);
        return NULL;
    }
    ct_buf b = {0};
    char chunk[16384];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) > 0) ct_buf_add(&b, chunk, (size_t)r);
    close(fd);
    ct_buf_add(&b, "", 1);
    return (char *)b.data;
}

static void *acter(void *arg)
{
    int port = *(int *)arg;
    size_t step = g.published / (g.n_actions ? g.n_actions : 1);
    if (!step) step = 1;
    for (size_t k = 0, i = 0; k < g.n_actions && i < g.published; k++, i += step) {
        char path[160];
        snprintf(path, sizeof path, "/api/v1/exceptions/o~BS-%08zu~awaiting_release~%lld/ack", i, (long long)g.pub_ns[i]);
        int64_t t = wall_ns();
        __atomic_store_n(&g.act_ns[i], t, __ATOMIC_RELEASE);
        char *r = http_post(port, path);
        int64_t done = wall_ns();
        if (r && !strncmp(r, "HTTP/1.1 200", 12)) {
            g.actions_ok++;
            g.resp[g.resp_n++] = to_us(done - t);
        } else if (r) {
            fprintf(stderr, "action %zu: %.200s\n", i, r);
        }
        free(r);
        usleep(20000); /* 50 per second at most: a supervisor's pace, not a load test */
    }
    __atomic_store_n(&g.act_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- the sampler: the server's memory and the projector's lag while streaming --------------- */

typedef struct sampler {
    pid_t srv;
    int port;
    volatile int stop;
    long rss_max, rss_last, hwm, threads, threads_max;
    double lag_max;
} sampler;

static void *sample(void *arg)
{
    sampler *sm = arg;
    for (int i = 0; !sm->stop; i++) {
        long rss = 0, hwm = 0, thr = 0;
        proc_mem(sm->srv, &rss, &hwm, &thr);
        sm->rss_last = rss;
        sm->hwm = hwm;
        sm->threads = thr;
        if (thr > sm->threads_max) sm->threads_max = thr;
        if (rss > sm->rss_max) sm->rss_max = rss;
        if (i % 4 == 0) {
            char *m = http_get_all(sm->port, "/metrics");
            double lag = metric(m, "tower_projector_lag_events");
            if (getenv("BENCH_VERBOSE"))
                fprintf(stderr, "  t %.1f s: published %zu, applied %.0f, lag %.0f, client 0 has %" PRIu64 "\n", i * 0.25,
                        g.published, metric(m, "tower_applied_sequence"), lag, g.cl[g.n_stuck].deltas);
            if (lag > sm->lag_max) sm->lag_max = lag;
            free(m);
        }
        usleep(250000);
    }
    return NULL;
}

/* ---- main -------------------------------------------------------------------------- */

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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"clients", required_argument, 0, 'c'}, {"rate", required_argument, 0, 'r'},
        {"seconds", required_argument, 0, 's'}, {"stuck", required_argument, 0, 'k'},
        {"ws-queue", required_argument, 0, 'q'}, {"coalesce-ms", required_argument, 0, 'm'},
        {"drain", required_argument, 0, 'D'},   {"no-baseline", no_argument, 0, 'B'},
        {"towerd", required_argument, 0, 't'},  {"dir", required_argument, 0, 'd'},
        {"actions", required_argument, 0, 'A'}, {"lws", no_argument, 0, 'L'},
        {"client-threads", required_argument, 0, 'T'}, {"ws-max-clients", required_argument, 0, 'W'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    size_t n_clients = 1, n_stuck = 0, ws_queue = 0;
    double rate = 5000, seconds = 20, drain = 15;
    int coalesce = 0, baseline = 1, c;
    const char *base = "/tmp";
    char *towerd = NULL;
    size_t n_actions = 0, ws_max = 0;
    int lws = 0, n_threads = 1;
    while ((c = getopt_long(argc, argv, "c:r:s:k:q:m:D:Bt:d:A:LT:W:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': n_clients = strtoull(optarg, NULL, 10); break;
        case 'r': rate = atof(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'k': n_stuck = strtoull(optarg, NULL, 10); break;
        case 'q': ws_queue = strtoull(optarg, NULL, 10); break;
        case 'm': coalesce = atoi(optarg); break;
        case 'D': drain = atof(optarg); break;
        case 'B': baseline = 0; break;
        case 't': towerd = ct_strdup(optarg); break;
        case 'd': base = optarg; break;
        case 'A': n_actions = strtoull(optarg, NULL, 10); break;
        case 'L': lws = 1; break;
        case 'T': n_threads = atoi(optarg); break;
        case 'W': ws_max = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!n_clients || n_stuck >= n_clients || rate <= 0 || seconds <= 0 || n_clients > 15000 ||
        n_threads < 1 || n_threads > MAX_CLIENT_THREADS) {
        usage(stderr);
        return 2;
    }
    if (!towerd) towerd = default_towerd();
    if (access(towerd, X_OK) != 0) {
        fprintf(stderr, "no towerd at %s (build it, or pass --towerd PATH)\n", towerd);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    ct_log_set_level(CT_LOG_WARN);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max; /* a thousand sockets here, and as many in the server (inherited) */
    setrlimit(RLIMIT_NOFILE, &rl);

    char *dir = ct_sprintf("%s/bench-stream-XXXXXX", base);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = 1;
    pid_t nats = -1, proj = -1, srv = -1;
    char *web = NULL;
    bus *notices = NULL;
    bus_sub *nsub = NULL;
    int nport = bench_free_port(), hport = bench_free_port(), sport = lws ? bench_free_port() : hport;
    char *url = ct_sprintf("nats://127.0.0.1:%d", nport);
    char *data = ct_sprintf("%s/data", dir);
    char *proj_log = ct_sprintf("%s/projector.log", dir), *srv_log = ct_sprintf("%s/serve.log", dir);
    nats = bench_start_nats(dir, nport);
    if (nats < 0) goto out;

    stats b_sub = {0}, b_ack = {0};
    size_t b_sent = 0, b_err = 0;
    if (baseline) {
        fprintf(stderr, "baseline: raw JetStream publish at %.0f/s for %.0f s\n", rate, seconds);
        if (raw_baseline(url, rate, seconds, &b_sub, &b_ack, &b_sent, &b_err) != 0) goto out;
    }

    /* The pipeline: projector and server as children, so that the server's memory is its own. */
    char *proj_argv[] = {towerd, "projector", "--nats", url, "--data", data, NULL};
    proj = spawn(proj_argv, proj_log);
    char *cur = ct_sprintf("%s/current", data);
    struct stat sb;
    for (int i = 0; i < 400 && stat(cur, &sb) != 0; i++) usleep(25000);
    free(cur);
    if (waitpid(proj, NULL, WNOHANG) != 0) {
        fprintf(stderr, "towerd projector stopped:\n");
        show_log(proj_log);
        proj = -1;
        goto out;
    }
    char http[32], maxc[24], queue[24], coal[24], slisten[32], smax[24];
    snprintf(http, sizeof http, "127.0.0.1:%d", hport);
    /* civetweb's stream needs a worker thread per client; with --lws its clients are elsewhere. */
    if (!ws_max) ws_max = lws ? 256 : n_clients > 256 ? n_clients : 256;
    snprintf(maxc, sizeof maxc, "%zu", ws_max);
    web = ct_sprintf("%s/no-web", dir);
    char *srv_argv[24] = {towerd, "serve", "--nats", url, "--data", data, "--http", http, "--web", web, "--ws-max-clients", maxc};
    int sa = 12;
    if (lws) {
        snprintf(slisten, sizeof slisten, "127.0.0.1:%d", sport);
        snprintf(smax, sizeof smax, "%zu", n_clients + 16);
        srv_argv[sa++] = "--stream-listen";
        srv_argv[sa++] = slisten;
        srv_argv[sa++] = "--stream-max-clients";
        srv_argv[sa++] = smax;
    }
    if (ws_queue) {
        snprintf(queue, sizeof queue, "%zu", ws_queue);
        srv_argv[sa++] = "--ws-queue";
        srv_argv[sa++] = queue;
    }
    if (coalesce > 0) {
        snprintf(coal, sizeof coal, "%dms", coalesce);
        srv_argv[sa++] = "--ws-coalesce";
        srv_argv[sa++] = coal;
    }
    srv_argv[sa] = NULL;
    srv = spawn(srv_argv, srv_log);
    for (int i = 0; i < 400 && !bench_port_open(hport); i++) usleep(25000);
    if (!bench_port_open(hport)) {
        fprintf(stderr, "towerd serve did not start:\n");
        show_log(srv_log);
        goto out;
    }
    /* The port opens before the server registers its handlers (the websocket one first, /healthz
     * last): an upgrade in between is closed unanswered, so wait for /healthz. */
    for (int i = 0; i < 400; i++) {
        char *h = http_get_all(hport, "/healthz");
        int up = h && !strncmp(h, "HTTP/1.1 200", 12);
        free(h);
        if (up) break;
        usleep(25000);
    }
    long rss0 = 0, hwm0 = 0, thr0 = 0;
    proc_mem(srv, &rss0, &hwm0, &thr0);

    /* The clients: --client-threads threads, each with its own libwebsockets context and a share of them. */
    lws_set_log_level(getenv("BENCH_LWS_DEBUG") ? LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO | LLL_CLIENT : 0, NULL);
    g.port = sport;
    g.http_port = hport;
    snprintf(g.origin, sizeof g.origin, "127.0.0.1:%d", hport); /* libwebsockets writes "http://" before it */
    g.n_clients = n_clients;
    g.n_stuck = n_stuck;
    g.max_events = (size_t)(rate * seconds) + 1;
    g.cl = ct_calloc(n_clients, sizeof *g.cl);
    g.n_grp = n_threads;
    for (int k = 0; k < n_threads; k++) {
        cgroup *grp = &g.grp[k];
        grp->first = grp->next_connect = n_clients * (size_t)k / (size_t)n_threads;
        grp->end = n_clients * (size_t)(k + 1) / (size_t)n_threads;
        struct lws_context_creation_info info;
        memset(&info, 0, sizeof info);
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = protocols;
        info.gid = -1;
        info.uid = -1;
        info.fd_limit_per_thread = (unsigned)(grp->end - grp->first + 64);
        grp->ctx = lws_create_context(&info);
        if (!grp->ctx) {
            fprintf(stderr, "lws_create_context failed\n");
            goto out;
        }
        for (size_t i = grp->first; i < grp->end; i++) g.cl[i].grp = grp;
    }
    for (size_t i = 0; i < n_clients; i++) {
        g.cl[i].idx = i;
        g.cl[i].stuck = i < n_stuck;
        g.cl[i].seen = ct_calloc(g.max_events / 8 + 1, 1);
        g.cl[i].aseen = ct_calloc(g.max_events / 8 + 1, 1);
    }
    size_t expected = (n_clients - n_stuck) * g.max_events;
    g.lat_cap = expected < LAT_KEEP ? expected : LAT_KEEP;
    g.lat_stride = (expected + g.lat_cap - 1) / g.lat_cap;
    g.lat = ct_malloc(g.lat_cap * sizeof *g.lat);
    g.fan = ct_malloc(g.lat_cap * sizeof *g.fan);
    g.pub_ns = ct_calloc(g.max_events, sizeof *g.pub_ns);
    g.note_ns = ct_calloc(g.max_events, sizeof *g.note_ns);
    g.act_ns = ct_calloc(g.max_events, sizeof *g.act_ns);
    g.alat_cap = (n_clients - n_stuck) * (n_actions + 1);
    g.alat = ct_malloc(g.alat_cap * sizeof *g.alat);
    g.resp = ct_malloc((n_actions + 1) * sizeof *g.resp);
    g.n_actions = n_actions;
    fprintf(stderr, "pipeline: %zu clients (%d threads) connecting to towerd serve (%s%s%s)\n", n_clients, n_threads,
            lws ? "libwebsockets listener " : "civetweb ", lws ? slisten : http, STREAM_PATH_NOTE);
    int64_t t_conn = mono_ns();
    for (int k = 0; k < n_threads; k++) {
        lws_sul_schedule(g.grp[k].ctx, 0, &g.grp[k].sul_tick, on_tick, 20 * LWS_US_PER_MS);
        pthread_create(&g.grp[k].thread, NULL, client_thread, &g.grp[k]);
    }
    size_t ready = 0, failed = 0;
    while (mono_ns() - t_conn < 180 * 1000000000LL) {
        count_clients(&ready, &failed);
        if (ready + failed >= n_clients) break;
        usleep(10000);
    }
    double conn_s = (double)(mono_ns() - t_conn) / 1e9;
    fprintf(stderr, "pipeline: %zu clients subscribed, %zu failed, in %.1f s\n", ready, failed, conn_s);
    if (!ready) goto out;
    long rss1 = 0, hwm1 = 0, thr1 = 0;
    proc_mem(srv, &rss1, &hwm1, &thr1);

    /* Publish, and read until every client has every delta (or the drain time is over). */
    fprintf(stderr, "pipeline: publishing orderApproved at %.0f/s for %.0f s\n", rate, seconds);
    const char *nurls[] = {url};
    bus_opts nbo = {.urls = nurls, .n_urls = 1, .name = "bench-notices"};
    if (bus_connect(&notices, &nbo) != CT_OK || bus_subscribe(notices, BUS_CHANGES_SUBJECT, on_notice, NULL, &nsub) != CT_OK)
        goto out;
    pub_job pj = {url, rate, seconds, 0, 0, 0, 0};
    pthread_t pt;
    double cpu_srv0 = proc_cpu(srv), cpu_proj0 = proc_cpu(proj), cpu_nats0 = proc_cpu(nats), cpu_self0 = self_cpu();
    int64_t t_run0 = mono_ns();
    g.measure = 1;
    pthread_create(&pt, NULL, publisher, &pj);
    sampler sm = {srv, hport, 0, rss1, rss1, hwm1, thr1, thr1, 0};
    pthread_t st;
    pthread_create(&st, NULL, sample, &sm);
    int64_t t_done = 0;
    size_t complete = 0;
    for (;;) {
        usleep(10000);
        int64_t now = mono_ns();
        if (!__atomic_load_n(&g.pub_done, __ATOMIC_ACQUIRE)) continue;
        if (!t_done) t_done = now;
        size_t pub = g.published;
        complete = 0;
        for (size_t i = n_stuck; i < n_clients; i++) complete += __atomic_load_n(&g.cl[i].deltas, __ATOMIC_RELAXED) >= pub;
        if (complete == n_clients - n_stuck || now - t_done > (int64_t)(drain * 1e9)) break;
    }
    pthread_join(pt, NULL);
    /* The actions, once every delta of the publish phase is in. */
    size_t acomplete = 0;
    if (n_actions) {
        fprintf(stderr, "actions: %zu acknowledgements through the API\n", n_actions);
        pthread_t at;
        pthread_create(&at, NULL, acter, &hport);
        int64_t t_adone = 0;
        for (;;) {
            usleep(10000);
            if (!__atomic_load_n(&g.act_done, __ATOMIC_ACQUIRE)) continue;
            int64_t now = mono_ns();
            if (!t_adone) t_adone = now;
            acomplete = 0;
            for (size_t i = n_stuck; i < n_clients; i++)
                acomplete += __atomic_load_n(&g.cl[i].adeltas, __ATOMIC_RELAXED) >= g.actions_ok;
            if (acomplete == n_clients - n_stuck || now - t_adone > (int64_t)(drain * 1e9)) break;
        }
        pthread_join(at, NULL);
    }
    g.measure = 2;
    sm.stop = 1;
    pthread_join(st, NULL);
    double run_s = (double)(mono_ns() - t_run0) / 1e9;
    double cpu_srv = proc_cpu(srv) - cpu_srv0, cpu_proj = proc_cpu(proj) - cpu_proj0, cpu_nats = proc_cpu(nats) - cpu_nats0;
    double cpu_self = self_cpu() - cpu_self0;
    double loop_run = 0, loop_wait = 0;
    for (int k = 0; k < g.n_grp; k++) {
        for (int i = 0; i < 500 && __atomic_load_n(&g.grp[k].measured, __ATOMIC_ACQUIRE) != 2; i++)
            usleep(10000); /* the client threads note their times (they wake every 20 ms) */
        loop_run += g.grp[k].run;
        loop_wait += g.grp[k].wait;
    }
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    char *m = http_get_all(hport, "/metrics");
    long rss_last = 0, hwm = 0, thr = 0, rss_max = sm.rss_max;
    proc_mem(srv, &rss_last, &hwm, &thr);
    if (rss_last > rss_max) rss_max = rss_last;

    /* Figures. */
    size_t pub = g.published, active = n_clients - n_stuck;
    uint64_t got = 0, min_got = UINT64_MAX, dups = 0, resyncs = 0, frames = 0, msgs = 0, closed = 0;
    uint32_t worst_max = 0;
    for (size_t i = n_stuck; i < n_clients; i++) {
        client *cl = &g.cl[i];
        got += cl->deltas;
        if (cl->deltas < min_got) min_got = cl->deltas;
        dups += cl->dups;
        resyncs += cl->resyncs;
        frames += cl->frames;
        msgs += cl->msgs;
        closed += cl->closed || cl->failed;
        if (cl->max_us > worst_max) worst_max = cl->max_us;
    }
    if (g.lat_n > g.lat_cap) g.lat_n = g.lat_cap;
    if (g.fan_n > g.lat_cap) g.fan_n = g.lat_cap;
    if (g.alat_n > g.alat_cap) g.alat_n = g.alat_cap;
    /* Latency early and late in the run (arrival order): a growing figure means a backlog. */
    size_t fifth = g.lat_n / 5;
    uint32_t *early = ct_malloc((fifth + 1) * sizeof *early), *late = ct_malloc((fifth + 1) * sizeof *late);
    memcpy(early, g.lat, fifth * sizeof *early);
    memcpy(late, g.lat + g.lat_n - fifth, fifth * sizeof *late);
    stats s_early = stats_of(early, fifth), s_late = stats_of(late, fifth);
    free(early);
    free(late);
    stats lat = stats_of(g.lat, g.lat_n);
    stats fan = stats_of(g.fan, g.fan_n);
    uint32_t *proj_us = ct_malloc((g.published + 1) * sizeof *proj_us);
    size_t proj_n = 0;
    for (size_t i = 0; i < g.published; i++)
        if (g.note_ns[i] && g.pub_ns[i]) proj_us[proj_n++] = to_us(g.note_ns[i] - g.pub_ns[i]);
    stats proj_st = stats_of(proj_us, proj_n);
    free(proj_us);
    printf("\nbench_stream: %zu client%s (%zu stuck), orderApproved at %.0f/s for %.0f s; towerd serve: %s%s%s%s\n",
           n_clients, n_clients > 1 ? "s" : "", n_stuck, rate, seconds, ws_queue ? "--ws-queue " : "",
           ws_queue ? queue : "", coalesce > 0 ? " --ws-coalesce " : "",
           coalesce > 0 ? coal : ws_queue ? "" : "defaults");
    printf("published %zu (achieved %.0f/s; %zu stored, %zu not), connection set-up %.1f s\n\n", pub, pj.achieved,
           pj.stored, pj.failed, conn_s);
    printf("| latency (ms)                                   |       n |    p50 |    p90 |    p99 |  p99.9 |    max |\n");
    printf("|------------------------------------------------|---------|--------|--------|--------|--------|--------|\n");
    if (baseline) {
        printf("| raw: JetStream publish -> core NATS subscriber | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
               b_sub.n, b_sub.p50, b_sub.p90, b_sub.p99, b_sub.p999, b_sub.max);
        printf("| raw: JetStream publish -> ack                  | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
               b_ack.n, b_ack.p50, b_ack.p90, b_ack.p99, b_ack.p999, b_ack.max);
    }
    printf("| publish -> websocket delta, %5zu client%s      | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
           active, active > 1 ? "s" : " ", lat.n, lat.p50, lat.p90, lat.p99, lat.p999, lat.max);
    printf("|   publish -> change notice (projector)         | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
           proj_st.n, proj_st.p50, proj_st.p90, proj_st.p99, proj_st.p999, proj_st.max);
    printf("|   change notice -> delta received (server)     | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
           fan.n, fan.p50, fan.p90, fan.p99, fan.p999, fan.max);
    printf("|   the first fifth of the deltas received       | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
           s_early.n, s_early.p50, s_early.p90, s_early.p99, s_early.p999, s_early.max);
    printf("|   the last fifth of the deltas received        | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
           s_late.n, s_late.p50, s_late.p90, s_late.p99, s_late.p999, s_late.max);
    if (n_actions) {
        stats al = stats_of(g.alat, g.alat_n), rs = stats_of(g.resp, g.resp_n);
        printf("| action (ack) -> answer (read-your-writes)      | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
               rs.n, rs.p50, rs.p90, rs.p99, rs.p999, rs.max);
        printf("| action (ack) -> update delta, %5zu client%s    | %7zu | %6.2f | %6.2f | %6.2f | %6.2f | %6.1f |\n",
               active, active > 1 ? "s" : " ", al.n, al.p50, al.p90, al.p99, al.p999, al.max);
        if (baseline)
            printf("(ratio p99 action -> delta / p99 raw ack: %.1fx)\n", b_ack.p99 > 0 ? al.p99 / b_ack.p99 : 0);
        printf("actions: %zu of %zu answered 200; %zu/%zu clients got every update delta\n", g.actions_ok, n_actions,
               acomplete, active);
    }
    printf("\ndelivery: %" PRIu64 " add deltas received of %zu x %zu expected; %zu/%zu clients got every one; "
           "fewest per client %" PRIu64 "; duplicates %" PRIu64 ", resyncs %" PRIu64 ", clients closed %" PRIu64 "\n",
           got, pub, active, complete, active, min_got, dups, resyncs, closed);
    printf("frames %" PRIu64 ", messages %" PRIu64 " (%.1f per frame), stray deltas %" PRIu64 "\n", frames, msgs,
           frames ? (double)msgs / (double)frames : 0.0, g.stray);
    for (size_t i = 0; i < n_stuck; i++)
        printf("stuck client %zu: %" PRIu64 " deltas, %" PRIu64 " resyncs read before it stopped; closed: %s\n", i,
               g.cl[i].deltas, g.cl[i].resyncs, g.cl[i].closed ? "yes" : "no");
    printf("server (towerd serve, pid %d): RSS %.1f MiB before clients, %.1f MiB with clients subscribed, max %.1f "
           "MiB while streaming, %.1f MiB at the end; VmHWM %.1f MiB\n",
           (int)srv, rss0 / 1024.0, rss1 / 1024.0, rss_max / 1024.0, rss_last / 1024.0, hwm / 1024.0);
    printf("server threads (/proc): %ld before clients, %ld with %zu clients subscribed, at most %ld while streaming "
           "(stream transport: %s, --ws-max-clients %zu)\n", thr0, thr1, n_clients, sm.threads_max > thr ? sm.threads_max : thr,
           lws ? "libwebsockets --stream-listen" : "civetweb", ws_max);
    printf("latencies kept: every %zu%s delta (%zu of them)\n", g.lat_stride, g.lat_stride == 1 ? "st" : "th",
           g.lat_n < g.lat_cap ? g.lat_n : g.lat_cap);
    printf("CPU while streaming (%.1f s, 2 cores = %.0f core-s): towerd serve %.1f s, towerd projector %.1f s, "
           "nats-server %.1f s, this benchmark (clients, publisher) %.1f s; load average %.1f\n",
           run_s, 2 * run_s, cpu_srv, cpu_proj, cpu_nats, cpu_self, load[0]);
    printf("the clients' %d thread%s ran %.1f s and waited %.1f s for a CPU (run queue) while streaming\n", g.n_grp,
           g.n_grp > 1 ? "s" : "", loop_run, loop_wait);
    printf("projector lag: at most %.0f events (sampled every second from /metrics)\n", sm.lag_max);
    printf("server metrics: ws clients %.0f, drops %.0f, resyncs %.0f, frames %.0f, messages %.0f\n",
           metric(m, "tower_ws_clients"), metric(m, "tower_ws_drops_total"), metric(m, "tower_ws_resyncs_total"),
           metric(m, "tower_ws_frames_total"), metric(m, "tower_ws_messages_total"));
    if (baseline)
        printf("ratio p99 delta / p99 raw subscriber: %.1fx; / p99 raw ack: %.1fx\n",
               b_sub.p99 > 0 ? lat.p99 / b_sub.p99 : 0, b_ack.p99 > 0 ? lat.p99 / b_ack.p99 : 0);
    int all = complete == active && got == (uint64_t)pub * active && pj.stored == pub &&
              (!n_actions || (g.actions_ok == n_actions && acomplete == active));
    printf("every delta delivered to every client: %s\n", all ? "yes" : "NO");
    free(m);
    rc = all ? 0 : 3;

out:
    bus_unsubscribe(nsub);
    bus_close(notices);
    g.quit = 1;
    for (int k = 0; k < g.n_grp; k++)
        if (g.grp[k].ctx) {
            lws_cancel_service(g.grp[k].ctx);
            if (g.grp[k].thread) pthread_join(g.grp[k].thread, NULL);
            lws_context_destroy(g.grp[k].ctx);
        }
    stop_child(srv);
    stop_child(proj);
    stop_child(nats);
    if (rc == 1) {
        fprintf(stderr, "--- projector log\n");
        show_log(proj_log);
        fprintf(stderr, "--- serve log\n");
        show_log(srv_log);
    }
    if (getenv("BENCH_KEEP")) {
        fprintf(stderr, "kept %s (BENCH_KEEP)\n", dir);
    } else {
        bench_rm_rf(dir);
    }
    for (size_t i = 0; g.cl && i < n_clients; i++) {
        free(g.cl[i].seen);
        free(g.cl[i].aseen);
        ct_buf_free(&g.cl[i].rx);
    }
    free(g.cl);
    free(g.lat);
    free(g.fan);
    free(g.pub_ns);
    free(g.note_ns);
    free(g.act_ns);
    free(g.alat);
    free(g.resp);
    free(dir);
    free(url);
    free(data);
    free(proj_log);
    free(srv_log);
    free(towerd);
    free(web);
    return rc;
}
