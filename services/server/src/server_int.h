/* Internals of the HTTP server shared by its files. */
#ifndef SERVER_INT_H
#define SERVER_INT_H

#include <civetweb.h>
#include <jansson.h>
#include <pthread.h>

#include "ct_metrics.h"
#include "query.h"
#include "server.h"
#include "store.h"

/* Status codes counted per route. */
#define SERVER_N_CODES 12
extern const int server__codes[SERVER_N_CODES];

typedef struct server_token server_token;

struct http_server {
    struct mg_context *ctx;
    server_opts o;
    char *data_dir;
    pthread_rwlock_t lock;   /* guards st: readers use it, a reopen replaces it */
    store *st;
    int swap_waiting;        /* a rebuilt generation is behind st: st is read until it catches up (refresh) */
    int64_t swap_recheck_ns; /* when to look at it again (monotonic; guarded by lock) */
    uint64_t requests[SERVER_ROUTE_COUNT][SERVER_N_CODES];
    ct_hist durations[SERVER_ROUTE_COUNT]; /* request durations, counted with requests (server__count) */
    int streams_ok;          /* the events streams were ensured (ingest) */
    uint64_t publish_dups;   /* publishes JetStream acked as duplicates since start (server__publish; atomic) */
    struct stream_hub *hub;  /* the live stream (stream_hub.c) */
    char *csp;               /* Content-Security-Policy when the stream is on another origin (--stream-listen), else NULL: SERVER_CSP */
    server_token *tokens;    /* API tokens (auth.c); none: open, loopback only */
    struct server_proxy *proxy; /* the trusted SSO proxy (auth.c), or NULL: none */
    size_t n_tokens;
    char *web_real;          /* the web root's real path (symbolic links resolved), or NULL */
    char **hosts;            /* Host values (lowercase host:port) allowed in loopback mode (guard.c) */
    size_t n_hosts;
    struct relay_conf *relay; /* the relay file's destinations (integrations.c), or NULL: none */
    pthread_mutex_t relay_lock; /* one redrive at a time */
    int relay_lock_ready;     /* relay_lock was initialized */
};

/* ---- guard.c: what every request passes before a handler ---- */

/* One listen address: host ("" for every address), port, and whether the host is loopback. */
typedef struct server_listen {
    char host[64];
    int port;
    int loopback;
} server_listen;

/* The policy of every answer, static files and API alike: scripts and styles of our own only,
 * the live stream on our own origin, never framed. */
#define SERVER_CSP                                                                                        \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

/* Parse civetweb's listening_ports ("127.0.0.1:8080,[::1]:8080"): up to cap entries; the count, or -1
 * with *why. TLS entries ("8443s") are refused: civetweb's TLS does not work on Debian. */
int server__listen_parse(const char *list, server_listen *out, size_t cap, const char **why);
/* The Host values a browser may use for these addresses (loopback ones under each loopback name),
 * plus extra (comma-separated, e.g. "tower.example.com"); *out is a malloc'd array of strings. */
size_t server__hosts_build(const server_listen *l, size_t nl, const char *extra, char ***out);
/* Whether host[0..len) (a Host header: name[:port]) is one of hosts, case-insensitively. */
int server__host_allowed(char *const *hosts, size_t n, const char *host, size_t len);
/* Whether a Host header may be served in loopback mode: a loopback name (any port: it cannot be
 * rebound), or one of hosts. */
int server__host_header_ok(char *const *hosts, size_t n, const char *host);
/* Whether an Origin header names one of hosts (exactly: a page of another local port is another origin;
 * http or https; "null" never does). */
int server__origin_allowed(char *const *hosts, size_t n, const char *origin);
/* Whether a Content-Type is JSON or NDJSON (which a browser cannot send without a CORS preflight). */
int server__json_content_type(const char *ct);
/* Add SERVER_CSP and the other security headers to an answer being built. */
void server__security_headers(struct mg_connection *c);
/* Checks on every request (uri: its path): repeated lengths (400); in loopback mode the Host (403),
 * and for API writes and websocket upgrades the Origin (403) and, with a body, the Content-Type
 * (415). 0: go on; else the status of the answer sent. */
int server__guard(struct mg_connection *c, http_server *s, const char *uri);
/* A websocket upgrade of the live stream without the viewer role: 401/403 answered over HTTP
 * (instead of a closed connection). 0: go on. */
int server__guard_upgrade(struct mg_connection *c, http_server *s, const char *uri);

/* The least stack any thread of the process gets (stack.c): civetweb asks for 100 KiB. */
#define SERVER_MIN_STACK ((size_t)1 << 20)
/* The floor stack.c applies; calling it also links stack.c into every program using the server. */
size_t server__min_stack(void);

/* civetweb keeps this many request headers (MG_MAX_HEADERS) and drops the rest: more is refused. */
#define SERVER_MAX_HEADERS 64

/* A read transaction on the current store generation (opened or reopened as needed). */
ct_status server__begin(http_server *s, store_reader **out);
void server__end(http_server *s, store_reader *r);

/* Send a JSON body with a status; the reference is taken. */
int server__json(struct mg_connection *c, http_server *s, server_route route, int status, json_t *body);
/* Send {"error":{code,message,field}}. */
int server__error(struct mg_connection *c, http_server *s, server_route route, int status, const char *code,
                  const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Count an answer under its route and status, and its duration since the request's begin_request (on
 * this thread) in the route's histogram. Call it once per request, from the thread that answers it. */
void server__count(http_server *s, server_route route, int status);

int server__api(struct mg_connection *c, void *cbdata);
int server__ingest(struct mg_connection *c, http_server *s);
int server__redrive(struct mg_connection *c, http_server *s, uint64_t seq);
/* Publish events (tag = index) and wait for their acks (ingest.c: one publish set at a time). */
void server__publish(http_server *s, evt_event *const *evs, size_t n,
                     void (*fn)(void *ctx, size_t tag, const bus_pub_ack *ack), void *ctx);
/* Publishes dropped as duplicates at publish, counted by this process since it started: {"server", this
 * server's (server__publish)}, then the rows of o.publish_dups; fills up to max rows, returns how many. */
size_t server__publish_dups(http_server *s, server_pub_dups *out, size_t max);
/* ---- exceptions.c: the exception lifecycle's routes (docs/exceptions.md) ---- */
int server__exception_get(struct mg_connection *c, http_server *s, const server_query *pq);
int server__exceptions_list(struct mg_connection *c, http_server *s, const server_query *pq);
int server__act(struct mg_connection *c, http_server *s, const server_query *pq);
int server__me(struct mg_connection *c, http_server *s);
/* ---- facets.c: filter values, SLA rules, case-insensitive filters (docs/api.md) ---- */
/* A view page's warehouse, carrier and customer filters as stored (matched ignoring case). */
typedef struct server_ids {
    char warehouse[80];
    char carrier[80];
    char customer[EVT_MAX_ID + 2];
} server_ids;
void server__resolve_ids(store_reader *r, const server_query *pq, server_ids *ids);
int server__values(struct mg_connection *c, http_server *s, const server_query *pq);
int server__sla_rules(struct mg_connection *c, http_server *s);
/* ---- conformance.c: rejections by producer (docs/contract/conformance.md) ---- */
/* Count an event the ingest refused (its raw JSON, borrowed) under its producer and code. Any thread. */
void server__conform_reject(const char *raw, size_t len, const evt_error *err);
/* GET /api/v1/producers; the tower_producer_* metric families (dead letters from r; the ingest's). */
int server__producers(struct mg_connection *c, http_server *s);
/* GET /api/v1/reference (reference.c): definitions and the unknown codes; tower_unknown_codes from r. */
int server__reference(struct mg_connection *c, http_server *s, const server_query *pq);
void server__reference_metrics(ct_buf *b, store_reader *r);
/* GET /api/v1/runbooks[/KIND/NAME | /match?...] (runbooks.c; uri decoded, qs raw). */
int server__runbooks(struct mg_connection *c, http_server *s, const char *uri, const char *qs);
/* A runbook kind (alert, rule, code, reason, view) and name (1-64 of [A-Za-z0-9_.-], no leading '.'). */
int server_runbook_kind_ok(const char *kind);
int server_runbook_name_ok(const char *name);
void server__conform_metrics(ct_buf *b, store_reader *r);
void server__conform_ingest_metrics(ct_buf *b);
/* ---- integrations.c: the outbound relay's destinations (docs/outbound.md) ---- */
/* Load the relay file (o.relay_file); CT_USAGE after logging FILE:LINE when it is bad. */
ct_status server__integrations_init(http_server *s);
void server__integrations_free(http_server *s);
int server__integrations(struct mg_connection *c, http_server *s, const server_query *pq);
/* The relay on the entities: "deliveries" (what each destination did about the order or shipment and its
 * shipments) added to an entity answer; "routeRequest" (held, and why) added to pending_route items. */
void server__integrations_entity(http_server *s, char kind, const char *id, json_t *body);
void server__integrations_pending(http_server *s, json_t *items);
int server__integration_redrive(struct mg_connection *c, http_server *s, const server_query *pq);
/* Build an action event (exceptionAcknowledged ... exceptionReopened) from an API body; NULL with *err for a
 * field at fault (code INVALID_PARAMETER). The caller frees it with evt_free. */
evt_event *server__action_event(const char *action, const char *exid, const char *actor, const json_t *body,
                                int64_t now_ns, server_query_err *err);
/* Read the request body into *body (NUL-terminated); -1 (body freed) if over max bytes, -2 (freed)
 * if it did not arrive within the request timeout (a slow-body client). */
int server__read_body(struct mg_connection *c, size_t max, ct_buf *body);
/* The time a whole request may take (--request-timeout), in ns. */
int64_t server__request_timeout_ns(const struct mg_connection *c);
/* mg_read of at most what the socket fd holds, or of one byte when it holds none (so that no read
 * waits longer than the request timeout); fd -1: a plain mg_read of cap bytes. */
int server__read_ready(struct mg_connection *c, int fd, char *buf, size_t cap);
/* The socket of a connection (found among our descriptors), or -1. */
int server__socket_of(const struct mg_connection *conn);
int server__metrics(struct mg_connection *c, void *cbdata);
int server__healthz(struct mg_connection *c, void *cbdata);
int server__readyz(struct mg_connection *c, void *cbdata);
const char *server__route_name(server_route r);

/* The live stream's address for the dashboard, from --stream-url or --stream-listen (stream_lws.c):
 * {"url":...} or {"port":N,"path":"/api/v1/stream"} (new reference), or NULL: /api/v1/stream on this origin. */
json_t *stream__advertise(http_server *s);

/* Tokens (auth.c). server__auth: 0 allowed, 401 no or unknown token, 403 wrong role. */
ct_status server__tokens_load(http_server *s, const char *path);
int server__auth(struct mg_connection *c, http_server *s, http_role need);
/* The same for a token presented some other way (tok: NULL or "" when none), e.g. on the libwebsockets listener. */
int server__auth_token(http_server *s, const char *tok, http_role need);
int server__allowed(struct mg_connection *c, http_server *s, http_role need);
/* Who calls: the token's name and role ("local" and operator without tokens). 0, or -1 (no valid token). */
int server__caller(struct mg_connection *c, http_server *s, char *name, size_t cap, http_role *role);
const char *server__role_name(http_role r);
/* Answer 401 or 403 as JSON. */
int server__deny(struct mg_connection *c, http_server *s, server_route route, int status, http_role need);
/* Who calls (auth.c): a trusted proxy's user (via "proxy"), a token ("token"), or "local" in loopback
 * mode. server__identify: 0 with *id, 401 (no or unknown token, a bad user header), 403 (a proxy user
 * whose groups map to no role). token points into the server's tokens (valid until it stops). */
typedef struct server_ident {
    char name[EVT_MAX_ACTOR + 1];
    http_role role;
    const char *via;
    server_token *token;
} server_ident;
int server__identify(struct mg_connection *c, http_server *s, server_ident *id);
/* The SSO proxy's options (o.trusted_proxies ...): CT_USAGE after logging what is wrong. */
ct_status server__proxy_init(http_server *s);
void server__proxy_free(http_server *s);
/* A request carrying the proxy's user or groups header from an untrusted address: 403 answered
 * (PROXY_HEADER_REFUSED, the header as field). 0: go on. */
int server__proxy_guard(struct mg_connection *c, http_server *s);
/* One "access" log line for a write: method, path, status, who and from where. */
void server__access_log(struct mg_connection *c, http_server *s, int status);
/* Ingest: the caller token's policy in *pol (NULL: none) and its rate: 0 go on, or 429 answered. */
struct access_policy;
int server__ingest_admit(struct mg_connection *c, http_server *s, const struct access_policy **pol);
/* NULL when pol lets e be published, else the error code ("SOURCE_NOT_ALLOWED") with *err filled. */
const char *server__source_refused(const struct access_policy *pol, const evt_event *e, evt_error *err);

/* ---- NATS health (nats_watch.c) -------------------------------------------------------------
 * What the server knows of NATS comes from the bus's watch (a background thread refreshing the
 * stream's state with short round trips); requests read its snapshot and never wait on NATS.
 * Both are thread-safe; call them only when s->o.bus is set. */
/* The snapshot (starts the watch on first use when the caller did not). */
void server__nats(http_server *s, bus_health *out);
/* Why NATS makes the server not ready, written into buf, or NULL when it does not. */
const char *server__nats_unready(const bus_health *h, char *buf, size_t cap);
/* ---- end of NATS health ---- */

/* Per view: count, oldestSince, oldestAgeSeconds (and byWarehouse, byCarrier when breakdown). */
json_t *server__summary_views(store_reader *r, int64_t now, int breakdown);
/* Set "now" (RFC 3339) on o. */
void server__now_json(json_t *o, int64_t now);

#endif
