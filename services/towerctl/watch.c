/* towerctl watch: the live stream (/api/v1/stream) over a libwebsockets client, one service loop thread. */
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "towerctl.h"

#define MAX_MESSAGE (64u * 1024 * 1024) /* one websocket message (a snapshot is bounded by the server) */
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define TICK_US (200 * LWS_US_PER_MS)   /* how often the loop looks at the stop flag, whatever happens */

typedef struct view_seq {
    char *view;
    json_int_t seq;
} view_seq;

typedef struct watch {
    ctl_ctx *c;
    struct lws_context *ctx;
    struct lws *wsi;
    /* where to connect (parsed from --url) */
    char host[256];
    char hosthdr[300];
    char path[1024];
    int port, tls;
    char *auth;              /* "Bearer TOKEN" or NULL; never printed */
    char *subscribe;         /* the subscribe message, sent on every (re)connection */
    int summaries;           /* --summaries: print summary messages in text mode too */
    /* outgoing messages waiting for a writable socket (owned strings) */
    char **txq;
    size_t ntx, captx;
    ct_buf rx;               /* the message being received (fragments joined) */
    view_seq *seqs;          /* the last sequence seen per view, to notice one going back */
    size_t nseqs;
    int ever_connected, established, got_data;
    int backoff_ms;
    lws_sorted_usec_list_t sul_reconnect, sul_tick;
    int done, exit_code;
} watch;

/* Set by the signal handler, which may run on any thread (libcurl's resolver has its own); lock-free, so
   that the handler may touch them. */
static atomic_int stop_flag;
static _Atomic(struct lws_context *) signal_ctx;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_POINTER_LOCK_FREE == 2, "the signal handler needs lock-free atomics");

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, 1);
    struct lws_context *ctx = atomic_load(&signal_ctx);
    if (ctx) lws_cancel_service(ctx); /* only writes to lws's event pipe */
}

/* The local clock in towerctl's one precision for times: UTC to the millisecond. */
static void now_text(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char sec[24];
    strftime(sec, sizeof sec, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%.19s.%03dZ", sec, (int)(ts.tv_nsec / 1000000 % 1000));
}

static void notice(const watch *w, const char *fmt, const char *arg)
{
    char when[32];
    now_text(when, sizeof when);
    if (ctl_json_errors) {
        char *text = ct_sprintf(fmt, arg ? arg : "");
        ctl_note(w->c, "%s %s", when, text);
        free(text);
        return;
    }
    fprintf(stderr, "%s %s: ", when, w->c->cmd);
    fprintf(stderr, fmt, arg ? arg : "");
    fputc('\n', stderr);
}

static void enqueue(watch *w, char *msg)
{
    if (w->ntx == w->captx) {
        w->captx = w->captx ? w->captx * 2 : 8;
        w->txq = ct_realloc(w->txq, w->captx * sizeof *w->txq);
    }
    w->txq[w->ntx++] = msg;
    if (w->wsi && w->established) lws_callback_on_writable(w->wsi);
}

static void clear_queue(watch *w)
{
    for (size_t i = 0; i < w->ntx; i++) free(w->txq[i]);
    w->ntx = 0;
}

/* ---- connecting and reconnecting ------------------------------------------------------------------ */

static void connect_now(watch *w);

static void on_reconnect(lws_sorted_usec_list_t *sul)
{
    watch *w = (watch *)((char *)sul - offsetof(watch, sul_reconnect));
    if (!atomic_load(&stop_flag) && !w->done) connect_now(w);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    watch *w = (watch *)((char *)sul - offsetof(watch, sul_tick));
    if (!atomic_load(&stop_flag) && !w->done) lws_sul_schedule(w->ctx, 0, &w->sul_tick, on_tick, TICK_US);
}

/* The connection is gone: retry later (with a growing pause), unless we are stopping. */
static void lost(watch *w, const char *why)
{
    w->wsi = NULL;
    w->established = 0;
    ct_buf_reset(&w->rx);
    clear_queue(w);
    if (atomic_load(&stop_flag) || w->done) return;
    if (!w->ever_connected) {
        /* Never connected: the server is unreachable (or refused us); say so and stop, like every command. */
        fprintf(stderr, "towerctl: cannot reach %s (the live stream %s): %s\n", ctl_http_base(w->c->http), w->path,
                why);
        w->exit_code = CTL_EXIT_FAIL;
        w->done = 1;
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "%s; reconnecting in %d.%ds", why, w->backoff_ms / 1000, w->backoff_ms % 1000 / 100);
    notice(w, "%s", msg);
    lws_sul_schedule(w->ctx, 0, &w->sul_reconnect, on_reconnect, (lws_usec_t)w->backoff_ms * LWS_US_PER_MS);
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

static void connect_now(watch *w)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = w->ctx;
    ci.address = w->host;
    ci.port = w->port;
    ci.path = w->path;
    ci.host = w->hosthdr;
    ci.origin = NULL; /* not a browser: no Origin (a wrong one is refused in loopback mode) */
    ci.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
    ci.local_protocol_name = "tower";
    ci.pwsi = &w->wsi;
    ci.userdata = NULL;
    if (!lws_client_connect_via_info(&ci)) lost(w, "the connection could not be started");
}

/* ---- messages ------------------------------------------------------------------------------------- */

static json_int_t *seq_slot(watch *w, const char *view)
{
    for (size_t i = 0; i < w->nseqs; i++)
        if (!strcmp(w->seqs[i].view, view)) return &w->seqs[i].seq;
    w->seqs = ct_realloc(w->seqs, (w->nseqs + 1) * sizeof *w->seqs);
    w->seqs[w->nseqs] = (view_seq){ct_strdup(view), -1};
    return &w->seqs[w->nseqs++].seq;
}

static void ask_resync(watch *w, const char *view)
{
    json_t *m = json_pack("{s:s, s:s}", "type", "resync", "view", view);
    enqueue(w, json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER));
    json_decref(m);
}

static void print_delta(const json_t *m, const char *view)
{
    const json_t *it = json_object_get(m, "item");
    char when[32];
    now_text(when, sizeof when);
    char *seq = ctl_cell(json_object_get(m, "seq"));
    char *op = ctl_cell(json_object_get(m, "op"));
    const char *sh = json_string_value(json_object_get(it, "shipmentId"));
    const char *o = json_string_value(json_object_get(it, "orderId"));
    const char *eid = json_string_value(json_object_get(it, "eventId"));
    char *ent = sh ? ct_sprintf("shipment %s", sh) : o ? ct_sprintf("order %s", o)
                : eid ? ct_sprintf("event %s", eid) : ct_strdup("-");
    char *wh = ctl_cell(json_object_get(it, "warehouseId"));
    char *ca = ctl_cell(json_object_get(it, "carrierId"));
    printf("%s  delta  %s  %s  seq %s  ", when, view, op ? op : "?", seq ? seq : "?");
    ctl_put_clean(stdout, ent);
    if (sh && o) {
        fputs(" (order ", stdout);
        ctl_put_clean(stdout, o);
        fputc(')', stdout);
    }
    printf("  warehouse ");
    ctl_put_clean(stdout, wh ? wh : "-");
    printf("  carrier ");
    ctl_put_clean(stdout, ca ? ca : "-");
    fputc('\n', stdout);
    free(seq);
    free(op);
    free(ent);
    free(wh);
    free(ca);
}

/* The server refused something: say what on stderr; a refused subscription ends the watch. */
static void on_error(watch *w, const json_t *m)
{
    json_t *e = json_object_get(m, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    if (!ctl_error_json(code ? code : "ERROR", msg, field, NULL)) {
        fputs("towerctl: ", stderr);
        ctl_put_clean(stderr, code ? code : "ERROR");
        fputs(": ", stderr);
        ctl_put_clean(stderr, msg ? msg : "(no message)");
        if (field) {
            fputs(" (field ", stderr);
            ctl_put_clean(stderr, field);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    }
    if (!w->got_data) {
        /* The subscription itself was refused (an unknown view, say): nothing will come. */
        w->exit_code = CTL_EXIT_REJECTED;
        w->done = 1;
    }
}

static void on_snapshot(watch *w, const json_t *m, const char *view, const char *when)
{
    json_t *seqv = json_object_get(m, "seq");
    w->got_data = 1;
    *seq_slot(w, view) = json_integer_value(seqv);
    if (w->c->json) return;
    char *count = ctl_cell(json_object_get(m, "count"));
    char *seq = ctl_cell(seqv);
    printf("%s  snapshot  %s  seq %s  count %s  items %zu\n", when, view, seq ? seq : "?", count ? count : "?",
           json_array_size(json_object_get(m, "items")));
    free(count);
    free(seq);
}

static void on_delta(watch *w, const json_t *m, const char *view, const char *when)
{
    w->got_data = 1;
    json_int_t *last = seq_slot(w, view);
    json_int_t s = json_integer_value(json_object_get(m, "seq"));
    if (!w->c->json) print_delta(m, view);
    if (*last >= 0 && s < *last) {
        /* Sequences never go back: this client missed something. Ask for a fresh snapshot. */
        if (ctl_json_errors)
            ctl_note(w->c, "%s %s: sequence went back (%" JSON_INTEGER_FORMAT " after %" JSON_INTEGER_FORMAT
                           "); asking for a resync", when, view, s, *last);
        else
            fprintf(stderr, "%s %s: %s: sequence went back (%" JSON_INTEGER_FORMAT " after %" JSON_INTEGER_FORMAT
                            "); asking for a resync\n", when, w->c->cmd, view, s, *last);
        ask_resync(w, view);
    }
    if (s > *last) *last = s;
}

static void on_resync(watch *w, const json_t *m, const char *when)
{
    w->got_data = 1;
    if (w->c->json) return;
    printf("%s  resync  ", when);
    ctl_put_clean(stdout, json_string_value(json_object_get(m, "reason")));
    fputs("  (a new snapshot follows)\n", stdout);
}

static void on_summary(watch *w, const json_t *m, const char *when)
{
    w->got_data = 1;
    if (w->c->json || !w->summaries) return;
    char *seq = ctl_cell(json_object_get(m, "seq"));
    printf("%s  summary  seq %s ", when, seq ? seq : "?");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(m, "views"), k, v) {
        char *n = ctl_cell(json_object_get(v, "count"));
        printf(" %s=%s", k, n ? n : "?");
        free(n);
    }
    fputc('\n', stdout);
    free(seq);
}

static void handle(watch *w, json_t *m)
{
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *view = json_string_value(json_object_get(m, "view"));
    char when[32];
    now_text(when, sizeof when);
    if (type && !strcmp(type, "error")) on_error(w, m);
    if (w->c->json) ctl_print_json(m);
    if (!type) return;
    if (!strcmp(type, "snapshot") && view)
        on_snapshot(w, m, view, when);
    else if (!strcmp(type, "delta") && view)
        on_delta(w, m, view, when);
    else if (!strcmp(type, "resync"))
        on_resync(w, m, when);
    else if (!strcmp(type, "summary"))
        on_summary(w, m, when);
}

/* One complete websocket message: one or more JSON messages separated by '\n'. */
static void on_message(watch *w)
{
    char *p = w->rx.data, *end = w->rx.data + w->rx.len;
    while (p && p < end && !w->done) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        size_t i = 0;
        while (i < len && (p[i] == ' ' || p[i] == '\r' || p[i] == '\t')) i++;
        if (i < len) {
            json_error_t je;
            json_t *m = json_loadb(p, len, 0, &je);
            if (m && json_is_object(m)) handle(w, m);
            else notice(w, "ignoring a message that is not a JSON object: %s", je.text);
            json_decref(m);
        }
        p = nl ? nl + 1 : end;
    }
    fflush(stdout);
    ct_buf_reset(&w->rx);
}

/* ---- the libwebsockets callback ----------------------------------------------------------------- */

/* The Authorization header of the upgrade request, when there is a token; -1 when it does not fit. */
static int add_auth(const watch *w, struct lws *wsi, void *in, size_t len)
{
    if (!w->auth) return 0;
    unsigned char **p = (unsigned char **)in, *end = (*p) + len;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"Authorization:", (const unsigned char *)w->auth,
                                    (int)strlen(w->auth), p, end))
        return -1;
    return 0;
}

/* Connected: subscribe (again), and start the pause between reconnections afresh. */
static void on_established(watch *w, struct lws *wsi)
{
    if (w->ever_connected) notice(w, "reconnected%s", "");
    w->ever_connected = w->established = 1;
    w->backoff_ms = BACKOFF_FIRST_MS;
    w->wsi = wsi;
    clear_queue(w);
    enqueue(w, ct_strdup(w->subscribe));
}

/* The upgrade failed: a refusal ends the watch (as a first connection refused does); anything else is retried. */
static void on_connection_error(watch *w, struct lws *wsi, const void *in, size_t len)
{
    int status = (int)lws_http_client_http_response(wsi);
    char why[300];
    snprintf(why, sizeof why, "%s", in && len ? (const char *)in : "connection failed");
    if (status == 401 || status == 403 || status == 404) {
        fprintf(stderr, "towerctl: the websocket upgrade got HTTP %d (%s)\n", status,
                status == 404 ? "this server has no live stream" : "check --token and its role");
        w->exit_code = status == 404 ? CTL_EXIT_NOT_FOUND : CTL_EXIT_DENIED;
        w->done = 1;
        w->wsi = NULL;
        return;
    }
    if (status >= 400 && !w->ever_connected) {
        fprintf(stderr, "towerctl: the websocket upgrade got HTTP %d\n", status);
        w->exit_code = ctl_exit_for_status(status);
        w->done = 1;
        w->wsi = NULL;
        return;
    }
    for (char *q = why; *q; q++)
        if ((unsigned char)*q < 0x20) *q = '?';
    lost(w, why);
}

/* A fragment of a text message: joined to the others, handled once the message is whole; -1 closes. */
static int on_receive(watch *w, struct lws *wsi, const void *in, size_t len)
{
    if (lws_frame_is_binary(wsi)) return 0;
    if (w->rx.len + len > MAX_MESSAGE) {
        lost(w, "a message over 64 MiB");
        return -1;
    }
    ct_buf_add(&w->rx, in, len);
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) on_message(w);
    return w->done ? -1 : 0;
}

/* The socket can take one more message: send the oldest queued; -1 closes when it was not all written. */
static int on_writeable(watch *w, struct lws *wsi)
{
    if (!w->ntx) return 0;
    char *msg = w->txq[0];
    size_t n = strlen(msg);
    unsigned char *buf = ct_malloc(LWS_PRE + n);
    memcpy(buf + LWS_PRE, msg, n);
    int wrote = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
    free(buf);
    free(msg);
    memmove(w->txq, w->txq + 1, (w->ntx - 1) * sizeof *w->txq);
    w->ntx--;
    if (wrote < (int)n) return -1;
    if (w->ntx) lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    (void)user;
    struct lws_context *ctx = lws_get_context(wsi);
    watch *w = ctx ? lws_context_user(ctx) : NULL;
    if (!w) return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: return add_auth(w, wsi, in, len);
    case LWS_CALLBACK_CLIENT_ESTABLISHED: on_established(w, wsi); return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: on_connection_error(w, wsi, in, len); return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE: return on_receive(w, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE: return on_writeable(w, wsi);
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (w->wsi == wsi || w->established) lost(w, "the connection closed");
        return 0;
    default: return 0;
    }
}

/* ---- the URL ---------------------------------------------------------------------------------------- */

/* http[s]://[user@]host[:port][/prefix] -> host, port, tls and the stream path. 0, or -1 if unusable. */
static int parse_url(watch *w, const char *url)
{
    const char *p;
    if (!strncmp(url, "http://", 7)) p = url + 7, w->tls = 0, w->port = 80;
    else if (!strncmp(url, "https://", 8)) p = url + 8, w->tls = 1, w->port = 443;
    else return -1;
    size_t auth_end = strcspn(p, "/?#");
    const char *at = memchr(p, '@', auth_end);
    if (at) p = at + 1;
    size_t hl = strcspn(p, "/?#");
    const char *hostport = p, *rest = p + hl;
    const char *colon = NULL;
    if (*hostport == '[') {
        const char *rb = memchr(hostport, ']', hl);
        if (!rb) return -1;
        if ((size_t)(rb - hostport - 1) >= sizeof w->host) return -1;
        memcpy(w->host, hostport + 1, (size_t)(rb - hostport - 1));
        w->host[rb - hostport - 1] = '\0';
        if (rb + 1 < rest && rb[1] == ':') colon = rb + 1;
    } else {
        colon = memchr(hostport, ':', hl);
        size_t n = colon ? (size_t)(colon - hostport) : hl;
        if (n == 0 || n >= sizeof w->host) return -1;
        memcpy(w->host, hostport, n);
        w->host[n] = '\0';
    }
    if (colon) {
        char num[8];
        size_t n = (size_t)(rest - colon - 1);
        int64_t port;
        if (n == 0 || n >= sizeof num) return -1;
        memcpy(num, colon + 1, n);
        num[n] = '\0';
        if (ct_parse_int(num, &port) != 0 || port < 1 || port > 65535) return -1;
        w->port = (int)port;
    }
    snprintf(w->hosthdr, sizeof w->hosthdr, "%.*s", (int)hl, hostport);
    size_t pl = strcspn(rest, "?#");
    while (pl && rest[pl - 1] == '/') pl--;
    if (pl + 16 >= sizeof w->path) return -1;
    snprintf(w->path, sizeof w->path, "%.*s/api/v1/stream", (int)pl, rest);
    return 0;
}

/* ---- the command, stage by stage ------------------------------------------------------------------ */

/* The subscribe message from --views and --warehouse (returned for the caller to free). */
static char *subscribe_message(const ct_config *cfg)
{
    json_t *sub = json_pack("{s:s}", "type", "subscribe");
    const char **views = NULL;
    size_t nv = ct_config_list(cfg, "views", &views);
    if (nv) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nv; i++) json_array_append_new(arr, json_string(views[i]));
        json_object_set_new(sub, "views", arr);
    }
    const char *wh = ct_config_str(cfg, "warehouse");
    if (wh) json_object_set_new(sub, "warehouse", json_string(wh));
    char *text = json_dumps(sub, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(sub);
    return text;
}

/* Where to connect, as whom and for what, from the options; -1 when --url cannot be used for a websocket.
   watch_free undoes it either way. */
static int watch_init(watch *w, ctl_ctx *c)
{
    memset(w, 0, sizeof *w);
    w->c = c;
    w->backoff_ms = BACKOFF_FIRST_MS;
    w->summaries = ct_config_bool(c->cfg, "summaries");
    if (parse_url(w, ct_config_str(c->cfg, "url")) != 0) return -1;
    const char *token = ct_config_str(c->cfg, "token");
    if (token && *token) w->auth = ct_sprintf("Bearer %s", token);
    w->subscribe = subscribe_message(c->cfg);
    return 0;
}

static void watch_free(watch *w)
{
    clear_queue(w);
    free(w->txq);
    for (size_t i = 0; i < w->nseqs; i++) free(w->seqs[i].view);
    free(w->seqs);
    ct_buf_free(&w->rx);
    free(w->subscribe);
    if (w->auth) {
        memset(w->auth, 0, strlen(w->auth));
        free(w->auth);
    }
}

/* A client-only libwebsockets context whose user is w, or NULL. */
static struct lws_context *context_create(watch *w)
{
    const char *lg = getenv("TOWER_LOG");
    lws_set_log_level(lg && !strcmp(lg, "debug") ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);
    static const struct lws_protocols protocols[] = {
        {"tower", callback, 0, 65536, 0, NULL, 0},
        {NULL, NULL, 0, 0, 0, NULL, 0},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = w;
    info.options = w->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
    return lws_create_context(&info);
}

/* The handlers that were there before ours. */
typedef struct saved_signals {
    struct sigaction sigint, sigterm;
} saved_signals;

/* SIGINT and SIGTERM stop the loop, waking ctx. */
static void signals_catch(struct lws_context *ctx, saved_signals *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    atomic_store(&stop_flag, 0);
    atomic_store(&signal_ctx, ctx);
    sigaction(SIGINT, &sa, &old->sigint);
    sigaction(SIGTERM, &sa, &old->sigterm);
}

static void signals_restore(const saved_signals *old)
{
    sigaction(SIGINT, &old->sigint, NULL);
    sigaction(SIGTERM, &old->sigterm, NULL);
}

/* Connect, and serve the connection (and the reconnections) until a signal or the end; the exit code. */
static int watch_loop(watch *w)
{
    lws_sul_schedule(w->ctx, 0, &w->sul_tick, on_tick, TICK_US);
    connect_now(w);
    while (!atomic_load(&stop_flag) && !w->done)
        if (lws_service(w->ctx, 0) < 0) break;
    int rc = atomic_load(&stop_flag) ? CTL_EXIT_OK : w->exit_code;
    w->done = 1; /* from here on, a closing connection schedules nothing */
    return rc;
}

/* The live part: a context, the signals caught, the loop, then all of it undone; the exit code. */
static int watch_run(watch *w)
{
    w->ctx = context_create(w);
    if (!w->ctx) {
        fprintf(stderr, "%s: cannot start libwebsockets\n", w->c->cmd);
        return CTL_EXIT_FAIL;
    }
    saved_signals old;
    signals_catch(w->ctx, &old);
    int rc = watch_loop(w);
    atomic_store(&signal_ctx, NULL);
    lws_sul_cancel(&w->sul_tick);
    lws_sul_cancel(&w->sul_reconnect);
    lws_context_destroy(w->ctx);
    signals_restore(&old);
    fflush(stdout);
    return rc;
}

int ctl_cmd_watch(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"views", 0, NULL, NULL, CT_OPT_STRING, NULL, "V1,V2", "only these views (default: all)", 0, 1},
        {"warehouse", 0, NULL, NULL, CT_OPT_STRING, NULL, "W", "only items of this warehouse (default: all)", 0, 0},
        {"summaries", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "print the count summaries too (text mode)", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl watch",
        "usage: towerctl watch [--views a,b] [--warehouse W] [--json]\n\n"
        "Live, over the websocket /api/v1/stream: a line per snapshot (view, sequence, count), a line per\n"
        "delta (time received, view, op, sequence, entity, warehouse, carrier) and a line per resync; with\n"
        "--json every message the server sends as one JSON line. Runs until SIGINT or SIGTERM (exit 0).\n"
        "If the connection drops it says so on stderr and reconnects, waiting longer each time (up to\n"
        "30 s), and subscribes again (a fresh snapshot follows). The first connection failing is exit 1.",
        defs, sizeof defs / sizeof defs[0], 0, 0};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    watch w;
    if (watch_init(&w, &c) == 0) {
        rc = watch_run(&w);
    } else {
        fprintf(stderr, "%s: cannot use --url %s for the websocket\n", c.cmd, ctl_http_base(c.http));
        rc = CTL_EXIT_USAGE;
    }
    watch_free(&w);
    ctl_end(&c);
    return rc;
}
