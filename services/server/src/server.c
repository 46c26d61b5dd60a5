/* The HTTP server: civetweb setup, the store shared by request threads, JSON replies and counters. */
#include "server_int.h"
#include "stream_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

const int server__codes[SERVER_N_CODES] = {200, 400, 401, 403, 404, 405, 408, 413, 415, 500, 503, 0};

static const char *route_names[] = {
#define SERVER_X(id, name) name,
    SERVER_ROUTE_MAP(SERVER_X)
#undef SERVER_X
};

const char *server__route_name(server_route r) { return (unsigned)r < SERVER_ROUTE_COUNT ? route_names[r] : ""; }

/* When the request this worker thread handles began (monotonic ns; 0: none on this thread). civetweb
 * handles one request at a time per worker thread, from begin_request to the handler's answer. */
static _Thread_local int64_t request_t0;

void server__count(http_server *s, server_route route, int status)
{
    int i = 0;
    while (i < SERVER_N_CODES - 1 && server__codes[i] != status) i++;
    __atomic_fetch_add(&s->requests[route][i], 1, __ATOMIC_RELAXED);
    if (request_t0) ct_hist_observe(&s->durations[route], ct_mono_ns() - request_t0);
}

static int port_of(const struct sockaddr_storage *a, char *host, size_t cap)
{
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &in->sin_addr, host, (socklen_t)cap);
        return ntohs(in->sin_port);
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, (socklen_t)cap);
        return ntohs(in6->sin6_port);
    }
    return -1;
}

/* civetweb does not hand out its sockets, so the socket is found by its address pair among our
 * descriptors. */
int server__socket_of(const struct mg_connection *conn)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    DIR *d = opendir("/proc/self/fd");
    if (!d || !ri) {
        if (d) closedir(d);
        return -1;
    }
    int found = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        int fd = atoi(de->d_name);
        struct stat sb;
        if (fd <= 2 || fd == dirfd(d) || fstat(fd, &sb) != 0 || !S_ISSOCK(sb.st_mode)) continue;
        struct sockaddr_storage peer, self;
        socklen_t pl = sizeof peer, sl = sizeof self;
        char host[INET6_ADDRSTRLEN], shost[INET6_ADDRSTRLEN];
        if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || getsockname(fd, (struct sockaddr *)&self, &sl) != 0)
            continue;
        if (port_of(&peer, host, sizeof host) != ri->remote_port || port_of(&self, shost, sizeof shost) != ri->server_port)
            continue;
        if (strcmp(host, ri->remote_addr) != 0) continue;
        found = fd;
        break;
    }
    closedir(d);
    return found;
}

int64_t server__request_timeout_ns(const struct mg_connection *c)
{
    const http_server *s = mg_get_user_data(mg_get_context(c));
    return (s ? s->o.request_timeout_ms : 10000) * 1000000LL;
}

int server__read_ready(struct mg_connection *c, int fd, char *buf, size_t cap)
{
    size_t want = cap;
    if (fd >= 0) {
        /* civetweb's mg_read returns only once it has all it was asked for (each wait for a byte is
         * bounded by the request timeout, the whole read is not): ask for no more than the kernel
         * holds, or for one byte (civetweb may hold some already; else the wait is bounded). */
        int avail = 0;
        if (ioctl(fd, FIONREAD, &avail) != 0) avail = 0;
        want = avail > 0 ? ((size_t)avail < cap ? (size_t)avail : cap) : 1;
    }
    return mg_read(c, buf, want);
}

/* After refusing a request with a body. civetweb would read and discard the rest of the body at
 * whatever pace the client sends it, holding a worker thread all along (a slow client for ever).
 * Take what keeps coming (up to 8 MiB, within the request timeout) ourselves, so that an
 * ordinary client that sends its whole body before reading gets the answer; then end the reading
 * side of the socket: civetweb sees the end of the request and closes the connection. */
static void end_body(struct mg_connection *c, int drain)
{
    int64_t limit = server__request_timeout_ns(c), start = ct_now_ns();
    int fd = server__socket_of(c);
    if (fd < 0) return; /* civetweb discards the rest as before */
    size_t left = drain ? 8u << 20 : 0;
    char *buf = ct_malloc(65536);
    int n = 1;
    while (left && ct_now_ns() - start < limit && (n = server__read_ready(c, fd, buf, 65536)) > 0)
        left = (size_t)n < left ? left - (size_t)n : 0;
    free(buf);
    if (n == 0) return; /* the whole body is in */
    shutdown(fd, SHUT_RD);
}

int server__json(struct mg_connection *c, http_server *s, server_route route, int status, json_t *body)
{
    char *txt = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    size_t len = txt ? strlen(txt) : 0;
    if (txt) {
        /* Body and final newline in one write: a lone 1-byte write could wait for a delayed ACK. */
        txt = ct_realloc(txt, len + 2);
        txt[len] = '\n';
        txt[len + 1] = 0;
    }
    /* A request whose body is refused unread cannot share its connection with the next one. */
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *te = mg_get_header(c, "Transfer-Encoding");
    int with_body = ri && (ri->content_length > 0 || (te && strstr(te, "chunked")));
    int refused = status == 413 || status == 408 || (with_body && status >= 400);
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", len + 1);
    if (mg_response_header_start(c, status) == 0) {
        mg_response_header_add(c, "Content-Type", "application/json; charset=utf-8", -1);
        mg_response_header_add(c, "Cache-Control", "no-store", -1);
        server__security_headers(c);
        mg_response_header_add(c, "Content-Length", cl, -1);
        if (refused) mg_response_header_add(c, "Connection", "close", -1);
        mg_response_header_send(c);
    } else {
        /* civetweb builds no head for a websocket upgrade request (refused before the handshake):
         * write it ourselves; the connection ends with the answer. */
        mg_printf(c,
                  "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n"
                  "Content-Security-Policy: %s\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                  "Referrer-Policy: no-referrer\r\nContent-Length: %s\r\nConnection: close\r\n\r\n",
                  status, mg_get_response_code_text(c, status), SERVER_CSP, cl);
    }
    if (txt) mg_write(c, txt, len + 1);
    else mg_write(c, "\n", 1);
    if (refused && with_body) end_body(c, status != 408);
    free(txt);
    server__count(s, route, status);
    return status;
}

int server__error(struct mg_connection *c, http_server *s, server_route route, int status, const char *code,
                  const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    json_t *m = json_string(msg);
    if (!m) {
        /* Not UTF-8 (a decoded %ff in a path, say): the bytes beyond ASCII become '?'. */
        for (char *p = msg; *p; p++)
            if ((unsigned char)*p >= 0x80) *p = '?';
        m = json_string(msg);
    }
    json_object_set_new(e, "message", m);
    if (field) json_object_set_new(e, "field", json_string(field));
    json_t *body = json_object();
    json_object_set_new(body, "error", e);
    return server__json(c, s, route, status, body);
}

static uint64_t applied_of(store *st)
{
    store_reader *r = NULL;
    store_stats ss = {0};
    if (store_reader_begin(st, &r) != CT_OK) return 0;
    store_reader_stats(r, &ss);
    store_reader_end(r);
    return ss.applied_seq;
}

/* How often a server waiting for a rebuilt generation to catch up looks again. */
#define SWAP_RECHECK_NS (100 * 1000000LL)

/* Open the store if it exists now, or reopen it after a rebuild swapped generations. A new generation
 * behind the one being read (the live projector has not caught up in it yet) is not taken: answers never
 * go back in time (appliedSeq, asOfSeq); the old one, frozen, is read until the new one has caught up. */
static ct_status refresh(http_server *s)
{
    pthread_rwlock_wrlock(&s->lock);
    ct_status st = CT_OK;
    if (s->st && store_generation_changed(s->st) && ct_mono_ns() >= s->swap_recheck_ns) {
        store *nw = NULL;
        store_opts so = {.dir = s->data_dir, .read_only = 1};
        uint64_t was = applied_of(s->st);
        if (store_open(&nw, &so) == CT_OK && applied_of(nw) >= was) {
            ct_log(CT_LOG_INFO, "server", "the store was rebuilt; reading %s now", store_env_dir(nw));
            store_close(s->st);
            s->st = nw;
            s->swap_waiting = 0;
        } else {
            if (!s->swap_waiting)
                ct_log(CT_LOG_INFO, "server", "the store was rebuilt; its new generation is behind sequence %llu yet: "
                       "answering from the previous one until it catches up", (unsigned long long)was);
            s->swap_waiting = 1;
            s->swap_recheck_ns = ct_mono_ns() + SWAP_RECHECK_NS;
            store_close(nw);
        }
    }
    if (!s->st) {
        store_opts so = {.dir = s->data_dir, .read_only = 1};
        st = store_open(&s->st, &so);
    }
    pthread_rwlock_unlock(&s->lock);
    return st;
}

ct_status server__begin(http_server *s, store_reader **out)
{
    pthread_rwlock_rdlock(&s->lock);
    int fresh = s->st && (!store_generation_changed(s->st) || ct_mono_ns() < s->swap_recheck_ns);
    pthread_rwlock_unlock(&s->lock);
    if (!fresh) {
        ct_status st = refresh(s);
        if (st != CT_OK) return st;
    }
    /* The read lock is held for the whole request, so that no reopen closes the store under it. */
    pthread_rwlock_rdlock(&s->lock);
    if (!s->st) {
        pthread_rwlock_unlock(&s->lock);
        return CT_NOT_FOUND;
    }
    ct_status st = store_reader_begin(s->st, out);
    if (st != CT_OK) pthread_rwlock_unlock(&s->lock);
    return st;
}

void server__end(http_server *s, store_reader *r)
{
    store_reader_end(r);
    pthread_rwlock_unlock(&s->lock);
}

static int log_message(const struct mg_connection *c, const char *message)
{
    (void)c;
    ct_log(CT_LOG_WARN, "server", "%s", message);
    return 1;
}

/* Every request passes here first. Refused: more headers than civetweb keeps (it drops the rest
 * silently, an Authorization header among them), and static files whose real path leaves the web
 * root (civetweb follows symbolic links). */
static int begin_request(struct mg_connection *c)
{
    request_t0 = ct_mono_ns();
    http_server *s = mg_get_user_data(mg_get_context(c));
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!s || !ri) return 0;
    if (ri->num_headers >= SERVER_MAX_HEADERS)
        return server__error(c, s, SERVER_ROUTE_OTHER_API, 400, "TOO_MANY_HEADERS", NULL,
                             "at most %d request headers are accepted", SERVER_MAX_HEADERS - 1);
    const char *uri = ri->local_uri ? ri->local_uri : "/";
    int rc = server__guard(c, s, uri);
    if (!rc) rc = server__guard_upgrade(c, s, uri);
    if (rc) return rc;
    if (!s->web_real || !strncmp(uri, "/api/", 5) || !strcmp(uri, "/api") || !strcmp(uri, "/metrics") ||
        !strcmp(uri, "/healthz") || !strcmp(uri, "/readyz"))
        return 0;
    size_t n = strlen(s->web_real) + strlen(uri) + 2;
    char *path = ct_malloc(n), *real = NULL;
    snprintf(path, n, "%s/%s", s->web_real, uri);
    real = realpath(path, NULL);
    free(path);
    size_t rl = strlen(s->web_real);
    int outside = real && !(strncmp(real, s->web_real, rl) == 0 && (real[rl] == '/' || real[rl] == '\0'));
    free(real);
    if (!outside) return 0; /* inside, or nothing there: civetweb answers */
    ct_log(CT_LOG_WARN, "server", "refused a static path that leads out of the web root: %.200s", uri);
    mg_response_header_start(c, 404);
    mg_response_header_add(c, "Content-Type", "text/plain; charset=utf-8", -1);
    mg_response_header_add(c, "Content-Length", "10", -1);
    server__security_headers(c);
    mg_response_header_send(c);
    mg_write(c, "Not found\n", 10);
    return 404;
}

/* Without API tokens the server listens on loopback only (every address of the list): the API
 * would be open to anyone. Fills s->hosts, the Host values loopback mode accepts. */
static ct_status check_listen(http_server *s, const char *listen, const server_opts *o)
{
    server_listen l[16];
    const char *why = NULL;
    int n = server__listen_parse(listen, l, 16, &why);
    if (n < 0) {
        ct_log(CT_LOG_ERROR, "server", "bad listen address '%s': %s", listen, why);
        return CT_USAGE;
    }
    for (int i = 0; i < n && !o->tokens_file; i++) {
        if (l[i].loopback) continue;
        ct_log(CT_LOG_ERROR, "server",
               "refusing to listen on %s%s%d without API tokens: configure a tokens file (--tokens, see towerd token) "
               "or listen on loopback only (127.0.0.1:PORT) behind a TLS reverse proxy",
               *l[i].host ? l[i].host : "every address", *l[i].host ? ":" : " port ", l[i].port);
        return CT_USAGE;
    }
    s->n_hosts = server__hosts_build(l, (size_t)n, o->allowed_hosts, &s->hosts);
    return CT_OK;
}

/* Everything the server checks and loads before it listens: the listen addresses, the tokens, the
 * proxy's trust and the relay's database. */
static ct_status prepare(http_server *s, const char *listen, const server_opts *o)
{
    ct_status st = check_listen(s, listen, o);
    if (st != CT_OK) return st;
    if (o->tokens_file) {
        st = server__tokens_load(s, o->tokens_file);
        if (st != CT_OK) return st == CT_IO ? CT_IO : CT_USAGE;
        ct_log(CT_LOG_INFO, "server", "%zu API tokens loaded from %s; every API route needs one", s->n_tokens,
               o->tokens_file);
    }
    if (server__proxy_init(s) != CT_OK || server__integrations_init(s) != CT_OK) return CT_USAGE;
    return CT_OK;
}

/* civetweb's option strings, kept alive until mg_start has read them. */
typedef struct civet_opts {
    const char *v[32];
    char threads[16], timeout[16];
    char *extra_headers; /* owned */
} civet_opts;

static void civet_opts_build(civet_opts *co, http_server *s, const char *listen, const server_opts *o)
{
    /* civetweb holds a worker thread per open websocket: room for every live client and the requests. */
    unsigned ws_max = o->ws_max_clients ? o->ws_max_clients : 256;
    snprintf(co->threads, sizeof co->threads, "%u", (o->threads ? o->threads : 32) + ws_max);
    snprintf(co->timeout, sizeof co->timeout, "%d", s->o.request_timeout_ms);
    const char **v = co->v;
    int n = 0;
    v[n++] = "listening_ports"; /* "127.0.0.1:8080"; a bracketed IPv6 address is passed as is */
    v[n++] = listen;
    v[n++] = "num_threads";
    v[n++] = co->threads;
    v[n++] = "request_timeout_ms";
    v[n++] = co->timeout;
    v[n++] = "enable_directory_listing";
    v[n++] = "no";
    v[n++] = "enable_keep_alive";
    v[n++] = "yes";
    v[n++] = "tcp_nodelay";
    v[n++] = "1"; /* answers and stream frames go out now, not after the peer's delayed ACK */
    v[n++] = "enable_websocket_ping_pong";
    v[n++] = "no"; /* ours (stream_ws.c): civetweb's answers any ping, however large, and hides them */
    v[n++] = "websocket_timeout_ms";
    v[n++] = "30000";
    v[n++] = "listen_backlog";
    v[n++] = "1024"; /* dashboards reconnect together after a restart */
    v[n++] = "connection_queue";
    v[n++] = "1024";
    v[n++] = "additional_header"; /* on static files and civetweb's own answers; ours add them too */
    s->csp = stream__csp(s);      /* the live stream on another port (--stream-listen) is another origin */
    co->extra_headers = ct_sprintf("Content-Security-Policy: %s\r\nX-Content-Type-Options: nosniff\r\n"
                                   "X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer",
                                   s->csp ? s->csp : SERVER_CSP);
    v[n++] = co->extra_headers;
    struct stat sb;
    if (o->web_root && stat(o->web_root, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        v[n++] = "document_root";
        v[n++] = o->web_root;
        s->web_real = realpath(o->web_root, NULL);
    } else if (o->web_root) {
        ct_log(CT_LOG_WARN, "server", "no dashboard: %s is not a directory", o->web_root);
    }
    v[n] = NULL;
}

/* Once civetweb listens: the stream hub, the optional libwebsockets listener, the handlers. */
static ct_status serve(http_server *s, const server_opts *o)
{
    stream__hub_start(s);
    if (o->stream_listen && *o->stream_listen) {
        ct_status st = stream__lws_start(s);
        if (st != CT_OK) return st;
    }
    mg_set_websocket_handler(s->ctx, "/api/v1/stream", stream__connect, stream__ready, stream__data, stream__close, s);
    mg_set_request_handler(s->ctx, "/api", server__api, s);
    mg_set_request_handler(s->ctx, "/metrics", server__metrics, s);
    mg_set_request_handler(s->ctx, "/healthz", server__healthz, s);
    mg_set_request_handler(s->ctx, "/readyz", server__readyz, s);
    refresh(s); /* the store may not exist yet: requests will try again */
    return CT_OK;
}

ct_status http_server_start(http_server **out, const server_opts *o)
{
    const char *listen = o->listen ? o->listen : "127.0.0.1:8080";
    http_server *s = ct_calloc(1, sizeof *s);
    s->o = *o;
    if (s->o.request_timeout_ms <= 0) s->o.request_timeout_ms = 10000;
    s->data_dir = ct_strdup(o->data_dir);
    pthread_rwlock_init(&s->lock, NULL);
    ct_status st = prepare(s, listen, o);
    if (st != CT_OK) {
        http_server_stop(s);
        return st;
    }

    civet_opts co;
    civet_opts_build(&co, s, listen, o);
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_message;
    cb.begin_request = begin_request;
    mg_init_library(0);
    ct_log(CT_LOG_DEBUG, "server", "worker threads get at least %zu KiB of stack", server__min_stack() / 1024);
    s->ctx = mg_start(&cb, s, co.v);
    free(co.extra_headers);
    if (!s->ctx) {
        ct_log(CT_LOG_ERROR, "server", "cannot listen on %s (in use, or not an address of this host)", listen);
        http_server_stop(s);
        return CT_IO;
    }
    st = serve(s, o);
    if (st != CT_OK) {
        http_server_stop(s);
        return st;
    }
    ct_log(CT_LOG_INFO, "server", "listening on http://%s (store %s)", listen, o->data_dir);
    *out = s;
    return CT_OK;
}

void http_server_stop(http_server *s)
{
    if (!s) return;
    stream__hub_stop(s); /* every sender wakes and ends, or mg_stop would wait on them */
    stream__lws_stop(s);
    server_civet_stop(s->ctx, s->o.listen ? s->o.listen : "127.0.0.1:8080");
    stream__hub_free(s);
    free(s->tokens);
    server__proxy_free(s);
    server__integrations_free(s);
    store_close(s->st);
    pthread_rwlock_destroy(&s->lock);
    free(s->data_dir);
    free(s->web_real);
    free(s->csp);
    for (size_t i = 0; i < s->n_hosts; i++) free(s->hosts[i]);
    free(s->hosts);
    free(s);
}
