/* The checks every request passes before a handler sees it: the listen addresses allowed without
 * tokens, the Host and Origin of loopback mode (DNS rebinding, cross-origin writes and websocket
 * upgrades), content types of writes, request smuggling by repeated lengths, and the security
 * headers of every answer. The parsing and matching functions are pure (unit-tested). */
#include "server_int.h"
#include "stream_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- pure: listen addresses, hosts, origins, content types ---- */

static int host_is_loopback(const char *host)
{
    unsigned char a[16];
    if (!strcasecmp(host, "localhost")) return 1;
    if (inet_pton(AF_INET, host, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        static const unsigned char v4map[12] = {[10] = 0xff, [11] = 0xff};
        return !memcmp(a, one, 16) || (!memcmp(a, v4map, 12) && a[12] == 127);
    }
    return 0;
}

/* One entry of civetweb's listening_ports: PORT, +PORT, HOST:PORT or [V6]:PORT, then an optional
 * 's' (TLS) or 'r' (redirect to TLS). */
static int parse_entry(const char *e, size_t n, server_listen *out, const char **why)
{
    memset(out, 0, sizeof *out);
    while (n && isspace((unsigned char)*e)) e++, n--;
    while (n && isspace((unsigned char)e[n - 1])) n--;
    if (n && (e[n - 1] == 's' || e[n - 1] == 'r')) {
        *why = "TLS in civetweb is not available (terminate TLS in front, see deploy/nginx)";
        return -1;
    }
    const char *port = NULL;
    if (n && e[0] == '[') {
        const char *close = memchr(e, ']', n);
        if (!close || close + 1 >= e + n || close[1] != ':' || (size_t)(close - e - 1) >= sizeof out->host) {
            *why = "expected [IPv6]:PORT";
            return -1;
        }
        memcpy(out->host, e + 1, (size_t)(close - e - 1));
        port = close + 2;
    } else {
        const char *colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (e[i] == ':') colon = e + i;
        if (colon) {
            if ((size_t)(colon - e) >= sizeof out->host) {
                *why = "the host is too long";
                return -1;
            }
            memcpy(out->host, e, (size_t)(colon - e));
            port = colon + 1;
        } else {
            port = e + (n && e[0] == '+'); /* PORT or +PORT: every address */
        }
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (port == end || end != e + n || p < 0 || p > 65535) {
        *why = "expected HOST:PORT with a port in 0..65535";
        return -1;
    }
    out->port = (int)p;
    out->loopback = *out->host && host_is_loopback(out->host);
    return 0;
}

int server__listen_parse(const char *list, server_listen *out, size_t cap, const char **why)
{
    size_t n = 0;
    const char *p = list;
    *why = "no address";
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (n == cap) {
            *why = "too many addresses";
            return -1;
        }
        if (parse_entry(p, len, &out[n], why) != 0) return -1;
        n++;
        if (!comma) break;
        p = comma + 1;
    }
    return (int)n;
}

static void add_host(char ***v, size_t *n, const char *host, int port)
{
    *v = ct_realloc(*v, (*n + 1) * sizeof **v);
    int v6 = strchr(host, ':') != NULL;
    char *h = port ? ct_sprintf(v6 ? "[%s]:%d" : "%s:%d", host, port) : ct_sprintf(v6 ? "[%s]" : "%s", host);
    for (char *q = h; *q; q++) *q = (char)tolower((unsigned char)*q);
    (*v)[(*n)++] = h;
}

size_t server__hosts_build(const server_listen *l, size_t nl, const char *extra, char ***out)
{
    char **v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < nl; i++) {
        static const char *const loop[] = {"127.0.0.1", "localhost", "::1"};
        for (int k = 0; k < 3; k++) {
            const char *h = l[i].loopback ? loop[k] : l[i].host;
            add_host(&v, &n, h, l[i].port);
            if (l[i].port == 80) add_host(&v, &n, h, 0);
            if (!l[i].loopback) break;
        }
    }
    for (const char *p = extra; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        if (len) {
            char *h = ct_strndup(p, len);
            v = ct_realloc(v, (n + 1) * sizeof *v);
            for (char *q = h; *q; q++) *q = (char)tolower((unsigned char)*q);
            v[n++] = h;
        }
        p = comma ? comma + 1 : p + strlen(p);
    }
    *out = v;
    return n;
}

int server__host_allowed(char *const *hosts, size_t n, const char *host, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(hosts[i]) == len && !strncasecmp(hosts[i], host, len)) return 1;
    return 0;
}

int server__host_header_ok(char *const *hosts, size_t n, const char *host)
{
    /* A loopback name cannot be rebound to another server: any port, or none, will do. */
    const char *name = host, *end;
    if (*host == '[') {
        name = host + 1;
        end = strchr(name, ']');
        if (end && end[1] && end[1] != ':') end = NULL;
    } else {
        end = strrchr(host, ':');
        if (!end) end = host + strlen(host);
    }
    char buf[64];
    if (end && (size_t)(end - name) < sizeof buf) {
        memcpy(buf, name, (size_t)(end - name));
        buf[end - name] = 0;
        if (host_is_loopback(buf)) return 1;
    }
    return server__host_allowed(hosts, n, host, strlen(host));
}

int server__origin_allowed(char *const *hosts, size_t n, const char *origin)
{
    const char *h = NULL;
    if (!strncasecmp(origin, "http://", 7)) h = origin + 7;
    else if (!strncasecmp(origin, "https://", 8)) h = origin + 8;
    if (!h) return 0; /* "null" (a sandboxed page, a file) and other schemes */
    size_t len = strlen(h);
    if (len && h[len - 1] == '/') len--;
    return server__host_allowed(hosts, n, h, len);
}

int server__json_content_type(const char *ct)
{
    static const char *const ok[] = {"application/json", "application/x-ndjson", "application/ndjson",
                                     "application/jsonl"};
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = strlen(ok[i]);
        if (!strncasecmp(ct, ok[i], n) && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ')) return 1;
    }
    return 0;
}

/* ---- per request ---- */

void server__security_headers(struct mg_connection *c)
{
    const http_server *s = mg_get_user_data(mg_get_context(c));
    mg_response_header_add(c, "Content-Security-Policy", s && s->csp ? s->csp : SERVER_CSP, -1);
    mg_response_header_add(c, "X-Content-Type-Options", "nosniff", -1);
    mg_response_header_add(c, "X-Frame-Options", "DENY", -1);
    mg_response_header_add(c, "Referrer-Policy", "no-referrer", -1);
}

static int count_header(const struct mg_request_info *ri, const char *name)
{
    int n = 0;
    for (int i = 0; i < ri->num_headers; i++)
        if (ri->http_headers[i].name && !strcasecmp(ri->http_headers[i].name, name)) n++;
    return n;
}

static int is_upgrade(struct mg_connection *c)
{
    const char *u = mg_get_header(c, "Upgrade");
    return u && strcasestr(u, "websocket") != NULL;
}

int server__guard(struct mg_connection *c, http_server *s, const char *uri)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    const server_route other = SERVER_ROUTE_OTHER_API;
    /* Two lengths, or a length and chunks: proxies and this server could split the stream differently. */
    int n_len = count_header(ri, "Content-Length"), n_te = count_header(ri, "Transfer-Encoding");
    int n_host = count_header(ri, "Host");
    if (n_len > 1 || (n_len && n_te) || n_te > 1 || n_host > 1) {
        /* civetweb's own error answer: it also marks the connection to be closed, so that what
         * follows the body as civetweb framed it is never read as a request of its own. */
        mg_send_http_error(c, 400, "a request carries at most one Host, and one Content-Length or one Transfer-Encoding "
                           "(not %d, %d and %d)\n", n_host, n_len, n_te);
        server__count(s, other, 400);
        return 400;
    }
    /* An SSO user header from anywhere but the trusted proxy would be anyone's word for who they are. */
    int spoof = server__proxy_guard(c, s);
    if (spoof) return spoof;
    if (s->n_tokens) return 0; /* with tokens, every API route needs one: no ambient authority to abuse */

    /* Loopback mode: the API is open to local users, so a browser must not be made to use it for a
     * page of another origin (cross-origin writes, websockets) or under another name (DNS rebinding). */
    const char *host = mg_get_header(c, "Host");
    if (host && !server__host_header_ok(s->hosts, s->n_hosts, host))
        return server__error(c, s, other, 403, "HOST_NOT_ALLOWED", "Host",
                             "Host '%.100s' is not an address of this server (behind a proxy, list the names "
                             "users reach it by with --allowed-hosts)", host);
    int api = !strncmp(uri, "/api/", 5);
    int upgrade = api && is_upgrade(c);
    int write = api && strcmp(ri->request_method, "GET") && strcmp(ri->request_method, "HEAD");
    if (!upgrade && !write) return 0;
    const char *origin = mg_get_header(c, "Origin");
    if (origin && !server__origin_allowed(s->hosts, s->n_hosts, origin)) {
        if (upgrade) __atomic_fetch_add(&s->hub->rejected, 1, __ATOMIC_RELAXED);
        return server__error(c, s, upgrade ? SERVER_ROUTE_STREAM : other, 403, "ORIGIN_NOT_ALLOWED", "Origin",
                             "requests from pages of another origin (%.100s) may not %s", origin,
                             upgrade ? "open the live stream" : "write");
    }
    const char *te = mg_get_header(c, "Transfer-Encoding");
    int body = ri->content_length > 0 || te;
    if (write && body && !server__json_content_type(mg_get_header(c, "Content-Type")))
        return server__error(c, s, other, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type",
                             "send the body as application/json or application/x-ndjson");
    return 0;
}

int server__guard_upgrade(struct mg_connection *c, http_server *s, const char *uri)
{
    if (strcmp(uri, "/api/v1/stream") || !is_upgrade(c)) return 0;
    int auth = server__auth(c, s, HTTP_ROLE_VIEWER);
    if (!auth) return 0;
    __atomic_fetch_add(&s->hub->rejected, 1, __ATOMIC_RELAXED); /* tower_ws_refused_total */
    return server__deny(c, s, SERVER_ROUTE_STREAM, auth, HTTP_ROLE_VIEWER);
}
