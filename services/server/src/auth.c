/* Who calls, and the check every route makes: API tokens (a file of hashed tokens with roles and
 * policies), or a user vouched for by a trusted SSO proxy (its user and groups headers, the groups
 * mapped to roles). Tokens are compared by their SHA-256 in constant time and never logged; only a
 * token's name is. The parsing and matching are pure, in access.c. */
#include "access.h"
#include "server_int.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct server_token {
    access_token_line t; /* name, role, hash, policy */
    access_bucket bucket; /* the ingest rate (guarded by bucket_lock) */
};

/* The SSO proxy's settings (--trusted-proxies and the rest). */
struct server_proxy {
    access_cidr cidrs[ACCESS_MAX_CIDRS];
    size_t n_cidrs;
    access_mapping map[ACCESS_MAX_MAPPINGS];
    size_t n_map;
    char user_h[ACCESS_MAX_HEADER + 1], groups_h[ACCESS_MAX_HEADER + 1];
};

/* Every token's bucket: held for a few arithmetic operations only. */
static pthread_mutex_t bucket_lock = PTHREAD_MUTEX_INITIALIZER;

int http_role_parse(const char *name, http_role *out)
{
    static const char *const names[] = {"viewer", "operator", "ingest"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (http_role)i;
            return 0;
        }
    return -1;
}

static void sha256(const char *token, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(token, len, out, &n, EVP_sha256(), NULL);
}

void http_token_hash(const char *token, char out[65])
{
    unsigned char h[32];
    sha256(token, strlen(token), h);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/* Parse the file into *out (may be NULL: only check). */
static ct_status load(const char *path, server_token **out, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        ct_log(CT_LOG_ERROR, "server", "cannot read the tokens file %s: %s", path, strerror(errno));
        return CT_IO;
    }
    server_token *v = NULL;
    size_t n = 0, cap = 0;
    char line[1100], why[200];
    int lineno = 0;
    ct_status st = CT_OK;
    access_token_line t;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        int got = strchr(line, '\n') || feof(f) ? access_token_line_parse(line, &t, why, sizeof why) : -1;
        if (got < 0 && !strchr(line, '\n') && !feof(f)) {
            snprintf(why, sizeof why, "the line is longer than %zu bytes", sizeof line - 2);
            while (fgets(line, sizeof line, f) && !strchr(line, '\n')) continue;
        }
        if (got < 0) {
            ct_log(CT_LOG_ERROR, "server", "%s:%d: %s", path, lineno, why);
            st = CT_INVALID;
        }
        if (got <= 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = ct_realloc(v, cap * sizeof *v);
        }
        memset(&v[n], 0, sizeof v[n]);
        v[n++].t = t;
    }
    fclose(f);
    if (st == CT_OK && !n) {
        ct_log(CT_LOG_ERROR, "server", "%s: no token in the file", path);
        st = CT_INVALID;
    }
    if (st != CT_OK || !out) {
        free(v);
        return st;
    }
    *out = v;
    *n_out = n;
    return CT_OK;
}

ct_status http_tokens_check(const char *path) { return load(path, NULL, NULL); }

ct_status http_token_line_check(const char *line, char *why, size_t whycap)
{
    access_token_line t;
    int got = access_token_line_parse(line, &t, why, whycap);
    if (got == 0) snprintf(why, whycap, "no token on the line");
    return got == 1 ? CT_OK : CT_INVALID;
}

ct_status server__tokens_load(http_server *s, const char *path) { return load(path, &s->tokens, &s->n_tokens); }

/* ---- the SSO proxy ---- */

static int header_name_ok(const char *h)
{
    size_t n = strlen(h);
    if (!n || n > ACCESS_MAX_HEADER) return 0;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

ct_status server__proxy_init(http_server *s)
{
    const server_opts *o = &s->o;
    if (!o->trusted_proxies || !*o->trusted_proxies) return CT_OK;
    struct server_proxy *p = ct_calloc(1, sizeof *p);
    s->proxy = p;
    char why[200];
    const char *uh = o->proxy_user_header ? o->proxy_user_header : "X-Forwarded-User";
    const char *gh = o->proxy_groups_header ? o->proxy_groups_header : "X-Forwarded-Groups";
    int nc = access_cidrs_parse(o->trusted_proxies, p->cidrs, ACCESS_MAX_CIDRS, why, sizeof why);
    int nm = nc < 0 ? 0 : access_mappings_parse(o->proxy_roles, p->map, ACCESS_MAX_MAPPINGS, why, sizeof why);
    if (nc < 0 || nm < 0) {
        ct_log(CT_LOG_ERROR, "server", "--%s: %s", nc < 0 ? "trusted-proxies" : "proxy-roles", why);
        return CT_USAGE;
    }
    if (!header_name_ok(uh) || !header_name_ok(gh) || !strcasecmp(uh, gh)) {
        ct_log(CT_LOG_ERROR, "server", "--proxy-user-header and --proxy-groups-header must be two header names "
               "(letters, digits, '-', '_'; at most %d bytes)", ACCESS_MAX_HEADER);
        return CT_USAGE;
    }
    if (!nm) ct_log(CT_LOG_WARN, "server", "--trusted-proxies without --proxy-roles: no proxy user gets a role");
    snprintf(p->user_h, sizeof p->user_h, "%s", uh);
    snprintf(p->groups_h, sizeof p->groups_h, "%s", gh);
    p->n_cidrs = (size_t)nc;
    p->n_map = (size_t)nm;
    ct_log(CT_LOG_INFO, "server", "SSO: trusting %s and %s from %s (%zu group mapping(s))", uh, gh,
           o->trusted_proxies, p->n_map);
    return CT_OK;
}

void server__proxy_free(http_server *s)
{
    free(s->proxy);
    s->proxy = NULL;
}

static int header_count(struct mg_connection *c, const char *name)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    int n = 0;
    for (int i = 0; i < ri->num_headers; i++)
        if (ri->http_headers[i].name && !strcasecmp(ri->http_headers[i].name, name)) n++;
    return n;
}

static int from_trusted(struct mg_connection *c, const struct server_proxy *p)
{
    return access_cidrs_match(p->cidrs, p->n_cidrs, mg_get_request_info(c)->remote_addr);
}

int server__proxy_guard(struct mg_connection *c, http_server *s)
{
    const struct server_proxy *p = s->proxy;
    if (!p || from_trusted(c, p)) return 0;
    const char *h = header_count(c, p->user_h) ? p->user_h : header_count(c, p->groups_h) ? p->groups_h : NULL;
    if (!h) return 0;
    ct_log(CT_LOG_WARN, "server", "refused a request from %s carrying %s: not a trusted proxy (--trusted-proxies)",
           mg_get_request_info(c)->remote_addr, h);
    return server__error(c, s, SERVER_ROUTE_OTHER_API, 403, "PROXY_HEADER_REFUSED", h,
                         "%s is accepted only from a trusted SSO proxy; this request came from another address", h);
}

/* The proxy's user: 0 (*id set), 401 (a bad user header), 403 (no role for the groups), or -1: no
 * proxy user in this request (go on with tokens). */
static int proxy_user(struct mg_connection *c, http_server *s, server_ident *id, int quiet)
{
    const struct server_proxy *p = s->proxy;
    if (!p || !from_trusted(c, p)) return -1;
    int nu = header_count(c, p->user_h);
    if (!nu) return -1;
    const char *user = mg_get_header(c, p->user_h);
    size_t len = strlen(user);
    int bad = nu > 1 || !len || len > EVT_MAX_ACTOR || header_count(c, p->groups_h) > 1;
    for (const char *q = user; !bad && *q; q++) bad = (unsigned char)*q < 0x20 || *q == 0x7f;
    if (bad) {
        if (!quiet)
            ct_log(CT_LOG_WARN, "server", "the proxy sent %s %s: refused (once, 1-%d bytes, no control characters)",
                   nu > 1 ? "several" : "a bad", p->user_h, EVT_MAX_ACTOR);
        return 401;
    }
    snprintf(id->name, sizeof id->name, "%s", user);
    id->via = "proxy";
    id->token = NULL;
    if (access_groups_role(p->map, p->n_map, mg_get_header(c, p->groups_h), &id->role) != 0) return 403;
    return 0;
}

/* ---- tokens ---- */

/* The presented token: "Authorization: Bearer T", else ?token=T (browsers cannot set websocket headers). */
static int presented(struct mg_connection *c, char *buf, size_t cap)
{
    const char *h = mg_get_header(c, "Authorization");
    if (h && !strncasecmp(h, "Bearer ", 7)) {
        h += 7;
        while (*h == ' ') h++;
        size_t n = strlen(h);
        if (n >= cap) return -1;
        memcpy(buf, h, n + 1);
        return n ? 1 : 0;
    }
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (ri->query_string) {
        int n = mg_get_var(ri->query_string, strlen(ri->query_string), "token", buf, cap);
        if (n == -2) return -1;
        if (n > 0) return 1;
    }
    return 0;
}

static server_token *token_of(struct mg_connection *c, http_server *s)
{
    char tok[512];
    if (presented(c, tok, sizeof tok) <= 0) return NULL;
    unsigned char h[32];
    sha256(tok, strlen(tok), h);
    server_token *found = NULL;
    for (size_t i = 0; i < s->n_tokens; i++) {
        unsigned char diff = 0;
        for (int k = 0; k < 32; k++) diff |= (unsigned char)(h[k] ^ s->tokens[i].t.hash[k]);
        if (!diff) found = &s->tokens[i];
    }
    return found;
}

/* server__identify; quiet: without logging a bad user header (it was, by the route's check). */
static int identify(struct mg_connection *c, http_server *s, server_ident *id, int quiet)
{
    int pu = proxy_user(c, s, id, quiet);
    if (pu >= 0) return pu;
    if (!s->n_tokens) { /* no tokens: loopback only, open (checked at start) */
        snprintf(id->name, sizeof id->name, "local");
        id->role = HTTP_ROLE_OPERATOR;
        id->via = "local";
        id->token = NULL;
        return 0;
    }
    server_token *t = token_of(c, s);
    if (!t) return 401;
    snprintf(id->name, sizeof id->name, "%s", t->t.name);
    id->role = t->t.role;
    id->via = "token";
    id->token = t;
    return 0;
}

int server__identify(struct mg_connection *c, http_server *s, server_ident *id) { return identify(c, s, id, 0); }

int server__auth(struct mg_connection *c, http_server *s, http_role need)
{
    server_ident id;
    int rc = server__identify(c, s, &id);
    if (rc) return rc;
    if (!strcmp(id.via, "local")) return 0; /* loopback mode: open to local users, ingest included */
    if (id.role == need || (need == HTTP_ROLE_VIEWER && id.role == HTTP_ROLE_OPERATOR)) return 0;
    ct_log(CT_LOG_INFO, "server", "%s '%s' (%s) refused: the route needs the %s role",
           id.token ? "token" : "user", id.name, server__role_name(id.role), server__role_name(need));
    return 403;
}

int server__auth_token(http_server *s, const char *tok, http_role need)
{
    if (!s->n_tokens) return 0; /* no tokens: loopback only, open (checked at start) */
    if (!tok || !*tok) return 401;
    unsigned char h[32];
    sha256(tok, strlen(tok), h);
    const server_token *found = NULL;
    for (size_t i = 0; i < s->n_tokens; i++) {
        unsigned char diff = 0;
        for (int k = 0; k < 32; k++) diff |= (unsigned char)(h[k] ^ s->tokens[i].t.hash[k]);
        if (!diff) found = &s->tokens[i];
    }
    if (!found) return 401;
    http_role r = found->t.role;
    return r == need || (need == HTTP_ROLE_VIEWER && r == HTTP_ROLE_OPERATOR) ? 0 : 403;
}

int server__allowed(struct mg_connection *c, http_server *s, http_role need) { return server__auth(c, s, need) == 0; }

const char *server__role_name(http_role r)
{
    return r == HTTP_ROLE_VIEWER ? "viewer" : r == HTTP_ROLE_OPERATOR ? "operator" : "ingest";
}

int server__caller(struct mg_connection *c, http_server *s, char *name, size_t cap, http_role *role)
{
    server_ident id;
    if (server__identify(c, s, &id) != 0) return -1;
    snprintf(name, cap, "%s", id.name);
    *role = id.role;
    return 0;
}

int server__deny(struct mg_connection *c, http_server *s, server_route route, int status, http_role need)
{
    server_ident id;
    int who = identify(c, s, &id, 1);
    if (status == 401)
        return server__error(c, s, route, 401, "UNAUTHORIZED", NULL, "%s",
                             s->proxy ? "sign in through the SSO proxy, or send 'Authorization: Bearer TOKEN'"
                                      : "an API token is required: send 'Authorization: Bearer TOKEN'");
    if (who == 403)
        return server__error(c, s, route, 403, "FORBIDDEN", NULL, "none of your groups has a role here (--proxy-roles)");
    return server__error(c, s, route, 403, "FORBIDDEN", NULL, "this %s's role may not do this (needs %s)",
                         who == 0 && !id.token ? "user" : "token", server__role_name(need));
}

/* ---- writes: the access log and the ingest policy ---- */

void server__access_log(struct mg_connection *c, http_server *s, int status)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    server_ident id;
    int who = identify(c, s, &id, 1);
    ct_log(CT_LOG_INFO, "access", "%s %.200s %d by %s (%s) from %s", ri->request_method,
           ri->local_uri ? ri->local_uri : "?", status, who ? "-" : id.name, who ? "unidentified" : id.via,
           ri->remote_addr);
}

/* 429 with Retry-After (server__json cannot add a header). */
static int too_many(struct mg_connection *c, http_server *s, const char *name, int64_t wait)
{
    char msg[200], cl[24], ra[24];
    snprintf(msg, sizeof msg, "the ingest rate of token %.64s is used up: retry after %lld s", name, (long long)wait);
    json_t *o = json_pack("{s:{s:s, s:s}}", "error", "code", "RATE_LIMITED", "message", msg);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) body = ct_strdup("{}");
    body = ct_realloc(body, strlen(body) + 2);
    strcat(body, "\n");
    size_t n = strlen(body);
    snprintf(cl, sizeof cl, "%zu", n);
    snprintf(ra, sizeof ra, "%lld", (long long)wait);
    mg_response_header_start(c, 429);
    mg_response_header_add(c, "Content-Type", "application/json; charset=utf-8", -1);
    mg_response_header_add(c, "Cache-Control", "no-store", -1);
    server__security_headers(c);
    mg_response_header_add(c, "Retry-After", ra, -1);
    mg_response_header_add(c, "Content-Length", cl, -1);
    mg_response_header_add(c, "Connection", "close", -1); /* the body is not read */
    mg_response_header_send(c);
    mg_write(c, body, n);
    free(body);
    server__count(s, SERVER_ROUTE_INGEST, 429);
    return 429;
}

int server__ingest_admit(struct mg_connection *c, http_server *s, const access_policy **pol)
{
    server_ident id;
    *pol = NULL;
    if (identify(c, s, &id, 1) != 0 || !id.token) return 0; /* the route's check has passed */
    *pol = &id.token->t.policy;
    if (!((*pol)->rate > 0)) return 0;
    pthread_mutex_lock(&bucket_lock);
    int64_t wait = access_bucket_take(&id.token->bucket, *pol, ct_mono_ns());
    pthread_mutex_unlock(&bucket_lock);
    if (!wait) return 0;
    ct_log(CT_LOG_INFO, "server", "token '%s' refused an ingest request: its rate is used up (retry after %lld s)",
           id.name, (long long)wait);
    return too_many(c, s, id.name, wait);
}

const char *server__source_refused(const access_policy *pol, const evt_event *e, evt_error *err)
{
    const char *sys = e->source && e->source->system ? e->source->system : "";
    if (access_policy_system_ok(pol, sys)) return NULL;
    snprintf(err->event_id, sizeof err->event_id, "%s", e->event_id);
    snprintf(err->field, sizeof err->field, "source.system");
    char allowed[100] = "";
    for (size_t i = 0; i < pol->n_systems; i++)
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s", i ? ", " : "", pol->systems[i]);
    snprintf(err->message, sizeof err->message, "source.system \"%.16s\": this token may publish for %s only", sys,
             allowed);
    return "SOURCE_NOT_ALLOWED";
}
