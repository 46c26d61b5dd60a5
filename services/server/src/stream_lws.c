/* The live stream on libwebsockets (--stream-listen): the same protocol and hub as civetweb's
 * /api/v1/stream, but every connection is served by a few event-driven service threads (--stream-threads,
 * one libwebsockets context each; Debian's build has one service thread per context) instead of two
 * threads per client. One acceptor thread hands each accepted connection to the service thread with the fewest.
 * The hub queues changes and wakes a client by putting it on its thread's ready list; that
 * thread composes the client's frames and writes them only when the socket can take them, so a client
 * that stops reading never blocks the thread: its queue overflows to a resync, and a frame it has not
 * taken within --request-timeout closes it. */
#include "stream_int.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LWS_MAX_THREADS 16
#define TIMER_US (250 * LWS_US_PER_MS) /* keep-alive and write-timeout checks */
#define SOCKET_SNDBUF (128 * 1024)
/* A turn takes queued changes of about this many bytes at most (the rest follows in the next turn): what a
 * client's turn composes waits in memory until its socket takes it, so 10,000 slow clients must not each
 * compose everything they have queued. */
#define TURN_BYTES (32 * 1024)
#define STREAM_PATH "/api/v1/stream"

_Static_assert(LWS_PRE <= STREAM_HEADROOM, "a frame's headroom must hold libwebsockets' LWS_PRE");

typedef struct lws_shard lws_shard;

/* A client on libwebsockets; c first: the hub sees a ws_client. */
typedef struct lws_client {
    ws_client c;
    struct lws *wsi;
    lws_shard *sh;
    /* the service thread's own: */
    ct_buf *out;              /* composed frames not yet written (headroom, then payload) */
    size_t out_head, out_n, out_cap;
    int64_t wait_since;       /* since when a writable callback was asked for and has not come (monotonic), 0: none */
    int want_ping, kill;
    ct_buf rx;                /* the message being received (at most STREAM_MAX_CLIENT_MSG bytes kept) */
    size_t rx_total;
    int rx_active, rx_binary;
    stream_pending p;
    stream_frame f;
    struct lws_client *prev, *next; /* the shard's clients */
    /* under the shard's ready_mu: */
    int in_ready;
    struct lws_client *ready_next;
} lws_client;

/* One service thread and its libwebsockets context. */
struct lws_shard {
    struct stream_lws *L;
    struct lws_context *ctx;
    pthread_t thread;
    int started;
    volatile int stopping;
    struct lws_vhost *vh;
    int n_clients;            /* atomic: its upgraded connections */
    pthread_mutex_t ready_mu;
    int signalled;            /* under ready_mu: the thread was woken and has not looked yet */
    lws_client *ready;        /* under ready_mu: clients woken since the thread last looked */
    int *adopt;               /* under ready_mu: accepted sockets for the thread to take */
    size_t adopt_n, adopt_cap;
    lws_client *clients;      /* the thread's own */
    lws_sorted_usec_list_t sul;
};

typedef struct stream_lws {
    http_server *s;
    server_listen addr;
    int n;
    int n_clients;            /* atomic: connections upgraded, every shard */
    int listen_fd, stop_pipe[2];
    pthread_t acceptor;
    int acceptor_started;
    lws_shard sh[LWS_MAX_THREADS];
} stream_lws;

/* ---- waking a client (any thread) ------------------------------------------------------------- */

/* The service thread: ask for a writable callback. libwebsockets calls back only once what the socket did not
 * take of the last write is sent: a client that takes nothing is closed after the write timeout (on_timer). */
static void want_writable(lws_client *lc)
{
    if (!lc->wait_since) lc->wait_since = ct_mono_ns();
    lws_callback_on_writable(lc->wsi);
}

/* Under sh->ready_mu: wake the service thread, once for everything handed to it meanwhile. */
static void signal_locked(lws_shard *sh)
{
    if (sh->signalled) return;
    sh->signalled = 1;
    lws_cancel_service(sh->ctx);
}

static void lws_wake(ws_client *c)
{
    lws_client *lc = (lws_client *)c;
    lws_shard *sh = lc->sh;
    pthread_mutex_lock(&sh->ready_mu);
    if (!lc->in_ready) {
        lc->in_ready = 1;
        lc->ready_next = sh->ready;
        sh->ready = lc;
    }
    signal_locked(sh);
    pthread_mutex_unlock(&sh->ready_mu);
}

/* The service thread: take the sockets accepted for it, and ask for a writable callback of every client
 * woken. */
static void take_ready(lws_shard *sh)
{
    pthread_mutex_lock(&sh->ready_mu);
    sh->signalled = 0;
    lws_client *r = sh->ready;
    sh->ready = NULL;
    for (lws_client *lc = r; lc; lc = lc->ready_next) lc->in_ready = 0;
    int *adopt = sh->adopt;
    size_t n = sh->adopt_n;
    sh->adopt = NULL;
    sh->adopt_n = sh->adopt_cap = 0;
    pthread_mutex_unlock(&sh->ready_mu);
    for (lws_client *lc = r; lc; lc = lc->ready_next) want_writable(lc);
    for (size_t i = 0; i < n; i++)
        lws_adopt_socket_vhost(sh->vh, adopt[i]); /* on failure it closes the socket */
    free(adopt);
}

/* libwebsockets' emit: the frame waits in the client's list until its socket can take it. */
static int lws_emit(ws_client *c, stream_frame *f)
{
    lws_client *lc = (lws_client *)c;
    if (lc->out_n == lc->out_cap) {
        lc->out_cap = lc->out_cap ? lc->out_cap * 2 : 4;
        lc->out = ct_realloc(lc->out, lc->out_cap * sizeof *lc->out);
    }
    lc->out[lc->out_n++] = f->buf;
    memset(&f->buf, 0, sizeof f->buf);
    return 0;
}

static const stream_transport lws_transport = {lws_wake, lws_emit};

/* ---- sending (the service thread, in the writable callback) ------------------------------------ */

/* Start a turn: take what is queued and compose it into frames. 1: there are frames to write. */
static int start_turn(lws_client *lc)
{
    ws_client *c = &lc->c;
    pthread_mutex_lock(&c->mu);
    if (c->closing) {
        pthread_mutex_unlock(&c->mu);
        return -1;
    }
    if (!stream__has_work(c)) {
        c->idle = 1;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    stream__take_pending(c, &lc->p, TURN_BYTES);
    c->idle = 0;
    pthread_mutex_unlock(&c->mu);
    if (stream__send_pending(c, &lc->p, &lc->f) != 0) return -1;
    return lc->out_head < lc->out_n;
}

/* The turn's frames are written: the client may be woken for queued changes again. 1 if it has work. */
static int end_turn(lws_client *lc)
{
    ws_client *c = &lc->c;
    lc->out_head = lc->out_n = 0;
    pthread_mutex_lock(&c->mu);
    c->idle = 1;
    int more = stream__has_work(c) || c->closing;
    pthread_mutex_unlock(&c->mu);
    return more;
}

/* One write per writable callback (libwebsockets' rule): a ping, or the next frame. -1: close. */
static int on_writable(lws_client *lc)
{
    lc->wait_since = 0;
    if (lc->kill) return -1;
    if (lc->want_ping) {
        unsigned char b[LWS_PRE + 1];
        lc->want_ping = 0;
        if (lws_write(lc->wsi, b + LWS_PRE, 0, LWS_WRITE_PING) < 0) return -1;
        want_writable(lc);
        return 0;
    }
    if (lc->out_head == lc->out_n) {
        int rc = start_turn(lc);
        if (rc < 0) return -1;
        if (!rc) {
            /* Nothing to write: either nothing was queued (idle already), or all that was taken composed no frame
             * (changes a snapshot already covers, an older summary, another view's). The turn ends here all the
             * same, or the client would stay marked busy and never be woken again. */
            if (end_turn(lc)) want_writable(lc);
            return 0;
        }
    }
    ct_buf *b = &lc->out[lc->out_head++];
    size_t n = b->len - STREAM_HEADROOM;
    int w = lws_write(lc->wsi, (unsigned char *)b->data + STREAM_HEADROOM, n, LWS_WRITE_TEXT);
    ct_buf_free(b);
    if (w < (int)n) return -1;
    if (lc->out_head < lc->out_n || end_turn(lc)) want_writable(lc);
    return 0;
}

/* ---- the keep-alive and the write timeout (the service thread, every TIMER_US) ----------------- */

static void check_client(lws_client *lc, int64_t now, int64_t write_timeout)
{
    ws_client *c = &lc->c;
    if (lc->wait_since && now - lc->wait_since > write_timeout) {
        ct_log(CT_LOG_INFO, "stream", "dropping a live-stream client that took no frame for %lld ms",
               (long long)(write_timeout / 1000000));
        lc->kill = 1;
    }
    pthread_mutex_lock(&c->mu);
    if (!lc->kill && now >= c->next_ping_ns) {
        if (c->unanswered >= WS_MAX_UNANSWERED) {
            ct_log(CT_LOG_INFO, "stream", "dropping a live-stream client that answers no ping");
            lc->kill = 1;
        } else {
            c->unanswered++;
            c->next_ping_ns = now + stream__ping_interval_ns(c);
            lc->want_ping = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    /* A client stuck on a full socket gets no writable callback: close it from here. */
    if (lc->kill) lws_set_timeout(lc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    else if (lc->want_ping) want_writable(lc);
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
    lws_shard *sh = lws_container_of(sul, lws_shard, sul);
    int64_t now = ct_mono_ns(), wt = (int64_t)sh->L->s->o.request_timeout_ms * 1000000LL;
    lws_client *next;
    for (lws_client *lc = sh->clients; lc; lc = next) {
        next = lc->next; /* a kill closes later, never inside this walk */
        check_client(lc, now, wt);
    }
    lws_sul_schedule(sh->ctx, 0, &sh->sul, on_timer, TIMER_US);
}

/* ---- HTTP: the upgrade's checks, and answers to anything else ---------------------------------- */

/* A JSON answer with the security headers; 1 (answered) or -1 (hang up). */
static int answer(struct lws *wsi, unsigned status, const char *code, const char *field, const char *msg)
{
    json_t *e = json_pack("{s:s,s:s}", "code", code, "message", msg);
    if (field) json_object_set_new(e, "field", json_string(field));
    json_t *o = json_pack("{s:o}", "error", e);
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    size_t len = strlen(body);
    unsigned char buf[LWS_PRE + 2048 + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + LWS_PRE + 2048;
    static const struct { const char *n, *v; } sec[] = {{"content-security-policy:", SERVER_CSP},
        {"x-content-type-options:", "nosniff"}, {"x-frame-options:", "DENY"}, {"referrer-policy:", "no-referrer"}};
    int bad = lws_add_http_common_headers(wsi, status, "application/json", len, &p, end);
    for (size_t i = 0; !bad && i < sizeof sec / sizeof sec[0]; i++)
        bad = lws_add_http_header_by_name(wsi, (const unsigned char *)sec[i].n, (const unsigned char *)sec[i].v,
                                          (int)strlen(sec[i].v), &p, end);
    if (!bad) bad = lws_finalize_write_http_header(wsi, start, &p, end);
    if (!bad && len < 1024) {
        memcpy(end + LWS_PRE, body, len); /* end + LWS_PRE .. : room for the body, LWS_PRE before it */
        bad = lws_write(wsi, end + LWS_PRE, len, LWS_WRITE_HTTP_FINAL) < 0;
    }
    free(body);
    return bad ? -1 : 1;
}

/* A header's value into buf; 1 if there, 0 if not, -1 if repeated or longer than cap. */
static int header(struct lws *wsi, enum lws_token_indexes h, char *buf, int cap)
{
    int n = lws_hdr_total_length(wsi, h);
    if (n <= 0) return 0;
    if (n >= cap || lws_hdr_fragment_length(wsi, h, 1) > 0) return -1;
    return lws_hdr_copy(wsi, buf, cap, h) < 0 ? -1 : 1;
}

/* Loopback mode (no tokens): Host and Origin, as the civetweb listener checks them (guard.c). */
static int check_origin(struct lws *wsi, http_server *s)
{
    char host[256], origin[512];
    int hn = header(wsi, WSI_TOKEN_HOST, host, sizeof host);
    if (hn < 0) return answer(wsi, 400, "BAD_REQUEST", "Host", "a request carries at most one Host");
    if (hn > 0 && !server__host_header_ok(s->hosts, s->n_hosts, host))
        return answer(wsi, 403, "HOST_NOT_ALLOWED", "Host", "this Host is not an address of this server (behind a "
                      "proxy, list the names users reach it by with --allowed-hosts)");
    int on = header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin);
    if (on < 0 || (on > 0 && !server__origin_allowed(s->hosts, s->n_hosts, origin)))
        return answer(wsi, 403, "ORIGIN_NOT_ALLOWED", "Origin",
                      "requests from pages of another origin may not open the live stream");
    return 0;
}

/* Tokens: "Authorization: Bearer T", else ?token=T (browsers cannot set websocket headers). */
static int check_token(struct lws *wsi, http_server *s)
{
    char auth[600], tok[520];
    const char *t = NULL;
    int an = header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof auth);
    if (an > 0 && !strncasecmp(auth, "Bearer ", 7)) {
        t = auth + 7;
        while (*t == ' ') t++;
    } else if (an == 0) {
        t = lws_get_urlarg_by_name(wsi, "token=", tok, (int)sizeof tok); /* just after "token=" in tok, or NULL */
    }
    int st = server__auth_token(s, t, HTTP_ROLE_VIEWER);
    if (!st) return 0;
    return st == 401 ? answer(wsi, 401, "UNAUTHORIZED", NULL, "an API token is required: send 'Authorization: "
                              "Bearer TOKEN' (or ?token=TOKEN)")
                     : answer(wsi, 403, "FORBIDDEN", NULL, "this token's role may not do this (needs viewer)");
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: 0 lets the upgrade go on; 1 answered (refused); -1 hang up. */
static int confirm_upgrade(struct lws *wsi, stream_lws *L)
{
    http_server *s = L->s;
    char uri[256];
    int rc = 0;
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 || strcmp(uri, STREAM_PATH))
        rc = answer(wsi, 404, "NOT_FOUND", NULL, "this listener serves the live stream only: " STREAM_PATH);
    if (!rc && !s->n_tokens) rc = check_origin(wsi, s);
    if (!rc) rc = check_token(wsi, s);
    unsigned max = s->o.stream_max_clients ? s->o.stream_max_clients : 10000;
    stream_hub *h = s->hub;
    if (!rc && (unsigned)__atomic_load_n(&L->n_clients, __ATOMIC_RELAXED) >= max) {
        ct_log(CT_LOG_WARN, "stream", "refusing a live-stream client: %u connections is the limit "
               "(--stream-max-clients)", max);
        rc = answer(wsi, 503, "TOO_MANY_CLIENTS", NULL, "the live stream has as many clients as it takes");
    }
    if (rc) __atomic_fetch_add(&h->rejected, 1, __ATOMIC_RELAXED);
    return rc;
}

/* ---- connections (the service thread) ----------------------------------------------------------- */

static void established(struct lws *wsi, lws_shard *sh, lws_client **slot)
{
    lws_client *lc = ct_calloc(1, sizeof *lc);
    lc->wsi = wsi;
    lc->sh = sh;
    stream__frame_reset(&lc->f);
    lc->next = sh->clients;
    if (sh->clients) sh->clients->prev = lc;
    sh->clients = lc;
    __atomic_fetch_add(&sh->L->n_clients, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&sh->n_clients, 1, __ATOMIC_RELAXED);
    *slot = lc;
    stream__client_attach(&lc->c, sh->L->s, &lws_transport);
}

static void closed(lws_client *lc)
{
    lws_shard *sh = lc->sh;
    stream__client_detach(&lc->c); /* no wake-up after this */
    pthread_mutex_lock(&sh->ready_mu);
    if (lc->in_ready)
        for (lws_client **p = &sh->ready; *p; p = &(*p)->ready_next)
            if (*p == lc) {
                *p = lc->ready_next;
                break;
            }
    pthread_mutex_unlock(&sh->ready_mu);
    if (lc->prev) lc->prev->next = lc->next;
    else sh->clients = lc->next;
    if (lc->next) lc->next->prev = lc->prev;
    __atomic_fetch_sub(&sh->L->n_clients, 1, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&sh->n_clients, 1, __ATOMIC_RELAXED);
    for (size_t i = lc->out_head; i < lc->out_n; i++) ct_buf_free(&lc->out[i]);
    free(lc->out);
    for (size_t i = 0; i < lc->p.qn; i++) stream__batch_unref(lc->p.q[i]);
    free(lc->p.q);
    free(lc->p.errs.data);
    ct_buf_free(&lc->f.buf);
    ct_buf_free(&lc->rx);
    stream__client_destroy(&lc->c);
    free(lc);
}

/* A piece of a client message: kept up to the size bound (beyond it only counted), handed on when whole. */
static void receive(lws_client *lc, struct lws *wsi, const char *in, size_t len)
{
    ws_client *c = &lc->c;
    pthread_mutex_lock(&c->mu);
    stream__heard_from(c);
    pthread_mutex_unlock(&c->mu);
    if (!lc->rx_active) {
        lc->rx_active = 1;
        lc->rx_total = 0;
        lc->rx_binary = lws_frame_is_binary(wsi);
        lc->rx.len = 0;
    }
    lc->rx_total += len;
    if (lc->rx_total <= STREAM_MAX_CLIENT_MSG) ct_buf_add(&lc->rx, in, len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi)) return;
    lc->rx_active = 0;
    /* Over the bound, the parser refuses it by its length alone (TOO_LARGE) and reads none of it. */
    stream__client_message(c, !lc->rx_binary, lc->rx.data ? lc->rx.data : "", lc->rx_total);
    ct_buf_free(&lc->rx);
}

static int plain_http(struct lws *wsi, const char *uri)
{
    int r = strcmp(uri, STREAM_PATH)
                ? answer(wsi, 404, "NOT_FOUND", NULL, "this listener serves the live stream only: " STREAM_PATH)
                : answer(wsi, 400, "UPGRADE_REQUIRED", NULL,
                         "the live stream is a websocket: connect with Upgrade: websocket");
    return r < 0 || lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    lws_client **slot = user;
    lws_client *lc = slot ? *slot : NULL;
    lws_shard *sh = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return confirm_upgrade(wsi, sh->L);
    case LWS_CALLBACK_HTTP: return plain_http(wsi, in ? (const char *)in : "");
    case LWS_CALLBACK_ESTABLISHED: established(wsi, sh, slot); return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE: return lc ? on_writable(lc) : 0;
    case LWS_CALLBACK_RECEIVE:
        if (lc) receive(lc, wsi, in, len);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (lc) {
            pthread_mutex_lock(&lc->c.mu);
            stream__heard_from(&lc->c);
            pthread_mutex_unlock(&lc->c.mu);
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (lc) closed(lc);
        if (slot) *slot = NULL;
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: take_ready(sh); return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"tower-stream", callback, sizeof(lws_client *), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the service threads -------------------------------------------------------------------------- */

static void *service(void *arg)
{
    lws_shard *sh = arg;
    lws_sul_schedule(sh->ctx, 0, &sh->sul, on_timer, TIMER_US);
    while (!sh->stopping)
        if (lws_service(sh->ctx, 0) < 0) break;
    return NULL;
}

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    ct_log(level == LLL_ERR ? CT_LOG_ERROR : CT_LOG_WARN, "stream", "libwebsockets: %.*s", (int)n, line);
}

static struct lws_context *make_context(lws_shard *sh)
{
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* the acceptor hands it sockets */
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = sh;
    info.timeout_secs = (unsigned)(sh->L->s->o.request_timeout_ms + 999) / 1000;
    info.vhost_name = "tower-stream";
    struct lws_context *ctx = lws_create_context(&info);
    if (ctx) sh->vh = lws_get_vhost_by_name(ctx, "tower-stream");
    if (ctx && !sh->vh) {
        lws_context_destroy(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* ---- the acceptor ------------------------------------------------------------------------------- */

/* An accepted socket to the service thread with the fewest clients. */
static void hand(stream_lws *L, int fd)
{
    int one = 1, v = SOCKET_SNDBUF;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* frames leave now, not after a delayed ACK */
    /* Keep the kernel's send buffer small: otherwise Linux grows it to 4 MB for a client that stopped
     * reading, and its queue (what we bound) starts to fill only once those megabytes are buffered. */
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    lws_shard *sh = &L->sh[0];
    for (int i = 1; i < L->n; i++)
        if (__atomic_load_n(&L->sh[i].n_clients, __ATOMIC_RELAXED) < __atomic_load_n(&sh->n_clients, __ATOMIC_RELAXED))
            sh = &L->sh[i];
    pthread_mutex_lock(&sh->ready_mu);
    if (sh->adopt_n == sh->adopt_cap) {
        sh->adopt_cap = sh->adopt_cap ? sh->adopt_cap * 2 : 16;
        sh->adopt = ct_realloc(sh->adopt, sh->adopt_cap * sizeof *sh->adopt);
    }
    sh->adopt[sh->adopt_n++] = fd;
    signal_locked(sh);
    pthread_mutex_unlock(&sh->ready_mu);
}

static void *acceptor(void *arg)
{
    stream_lws *L = arg;
    struct pollfd p[2] = {{L->listen_fd, POLLIN, 0}, {L->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR) break;
        if (p[1].revents) break;
        for (;;) {
            int fd = accept4(L->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                hand(L, fd);
                continue;
            }
            if (errno == EMFILE || errno == ENFILE) {
                ct_log(CT_LOG_WARN, "stream", "cannot accept a live-stream connection: out of file descriptors");
                poll(NULL, 0, 100); /* the connection waits in the backlog */
            }
            break;
        }
    }
    return NULL;
}

/* The listening socket (nonblocking), or -1. */
static int listen_on(const server_listen *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (strchr(a->host, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)a->port);
        if (inet_pton(AF_INET6, a->host, &s6->sin6_addr) != 1) return -1;
        sl = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)a->port);
        if (a->host[0] && inet_pton(AF_INET, a->host, &s4->sin_addr) != 1) return -1;
        sl = sizeof *s4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* TIME_WAIT of a previous run is fine */
    /* Dashboards reconnect together after a restart: a long backlog (the kernel caps it at somaxconn). */
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4096) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static ct_status parse_addr(http_server *s, stream_lws *L)
{
    const char *why = NULL;
    if (server__listen_parse(s->o.stream_listen, &L->addr, 1, &why) != 1) {
        ct_log(CT_LOG_ERROR, "server", "--stream-listen '%s': %s (one HOST:PORT)", s->o.stream_listen, why);
        return CT_USAGE;
    }
    if (!L->addr.loopback && !s->n_tokens) {
        ct_log(CT_LOG_ERROR, "server", "refusing to serve the live stream on %s without API tokens: configure "
               "--tokens or listen on loopback only", s->o.stream_listen);
        return CT_USAGE;
    }
    L->listen_fd = listen_on(&L->addr);
    if (L->listen_fd < 0) {
        ct_log(CT_LOG_ERROR, "server", "cannot listen on %s (--stream-listen): in use, or not an address of "
               "this host", s->o.stream_listen);
        return CT_IO;
    }
    return CT_OK;
}

ct_status stream__lws_start(http_server *s)
{
    stream_lws *L = ct_calloc(1, sizeof *L);
    L->s = s;
    L->listen_fd = L->stop_pipe[0] = L->stop_pipe[1] = -1;
    s->hub->lws = L;
    ct_status st = parse_addr(s, L);
    if (st != CT_OK) return st;
    if (pipe2(L->stop_pipe, O_CLOEXEC) != 0) return CT_IO;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
    int n = s->o.stream_threads > 0 ? (int)s->o.stream_threads : 2;
    n = n > LWS_MAX_THREADS ? LWS_MAX_THREADS : n;
    for (int i = 0; i < n; i++, L->n++) {
        lws_shard *sh = &L->sh[i];
        sh->L = L;
        pthread_mutex_init(&sh->ready_mu, NULL);
        sh->ctx = make_context(sh);
        if (!sh->ctx) {
            ct_log(CT_LOG_ERROR, "server", "cannot start the live stream's libwebsockets context");
            return CT_IO;
        }
    }
    for (int i = 0; i < L->n; i++)
        L->sh[i].started = pthread_create(&L->sh[i].thread, NULL, service, &L->sh[i]) == 0;
    L->acceptor_started = pthread_create(&L->acceptor, NULL, acceptor, L) == 0;
    ct_log(CT_LOG_INFO, "server", "live stream on ws://%s%s (libwebsockets, %d service threads, at most %u clients)",
           s->o.stream_listen, STREAM_PATH, L->n, s->o.stream_max_clients ? s->o.stream_max_clients : 10000);
    return CT_OK;
}

void stream__lws_stop(http_server *s)
{
    stream_lws *L = s->hub ? s->hub->lws : NULL;
    if (!L) return;
    if (L->acceptor_started) {
        ssize_t w = write(L->stop_pipe[1], "x", 1);
        (void)w;
        pthread_join(L->acceptor, NULL);
    }
    for (int i = 0; i < L->n; i++) {
        lws_shard *sh = &L->sh[i];
        if (!sh->started) continue;
        sh->stopping = 1;
        lws_cancel_service(sh->ctx);
        pthread_join(sh->thread, NULL);
    }
    /* Destroying a context closes its connections: their close callbacks run here, on this thread. */
    for (int i = 0; i < L->n; i++) {
        lws_shard *sh = &L->sh[i];
        if (sh->ctx) lws_context_destroy(sh->ctx);
        for (size_t k = 0; k < sh->adopt_n; k++) close(sh->adopt[k]);
        free(sh->adopt);
        pthread_mutex_destroy(&sh->ready_mu);
    }
    for (int k = 0; k < 2; k++)
        if (L->stop_pipe[k] >= 0) close(L->stop_pipe[k]);
    if (L->listen_fd >= 0) close(L->listen_fd);
    free(L);
    s->hub->lws = NULL;
}

json_t *stream__advertise(http_server *s)
{
    if (s->o.stream_url && *s->o.stream_url) return json_pack("{s:s}", "url", s->o.stream_url);
    stream_lws *L = s->hub ? s->hub->lws : NULL;
    if (!L) return NULL;
    return json_pack("{s:i,s:s}", "port", L->addr.port, "path", STREAM_PATH);
}

/* "ws://NAME:PORT" for every Host name the server answers to (s->hosts, their ports replaced). IPv6
 * literals are left out: CSP has no syntax for them (Chromium ignores "ws://[::1]:8081" with a warning). */
static void add_sources(ct_buf *b, const http_server *s, int port)
{
    for (size_t i = 0; i < s->n_hosts; i++) {
        const char *h = s->hosts[i], *end = h + strlen(h);
        if (h[0] == '[') continue;
        const char *colon = strchr(h, ':');
        if (colon) end = colon;
        char src[300];
        snprintf(src, sizeof src, " ws://%.*s:%d", (int)(end - h) > 250 ? 250 : (int)(end - h), h, port);
        if (!b->data || !strstr(b->data, src)) ct_buf_adds(b, src);
    }
}

char *stream__csp(const http_server *s)
{
    ct_buf b = {0};
    const char *url = s->o.stream_url;
    if (url && (!strncmp(url, "ws://", 5) || !strncmp(url, "wss://", 6))) {
        const char *host = strstr(url, "://") + 3, *slash = strchr(host, '/');
        size_t n = slash ? (size_t)(slash - url) : strlen(url);
        ct_buf_addf(&b, " %.*s", n > 300 ? 300 : (int)n, url);
    } else if (!url && s->o.stream_listen && *s->o.stream_listen) {
        server_listen a;
        const char *why;
        if (server__listen_parse(s->o.stream_listen, &a, 1, &why) != 1) return NULL; /* refused at start */
        add_sources(&b, s, a.port);
    }
    if (!b.len) return NULL;
    static const char *const mark = "connect-src 'self'";
    const char *at = strstr(SERVER_CSP, mark) + strlen(mark);
    char *csp = ct_sprintf("%.*s%s%s", (int)(at - SERVER_CSP), SERVER_CSP, b.data, at);
    ct_buf_free(&b);
    return csp;
}
