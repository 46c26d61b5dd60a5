/* API tokens: a file of hashed tokens with roles, and the check every route makes. Tokens are
 * compared by their SHA-256 in constant time and never logged; only the token's name is. */
#include "server_int.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct server_token {
    char name[64];
    http_role role;
    unsigned char hash[32];
};

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

static int unhex(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char ch = (char)tolower((unsigned char)hex[2 * i + k]);
            if (ch >= '0' && ch <= '9') v = v * 16 + (unsigned)(ch - '0');
            else if (ch >= 'a' && ch <= 'f') v = v * 16 + (unsigned)(ch - 'a' + 10);
            else return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
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
    char line[512];
    int lineno = 0;
    ct_status st = CT_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char name[128], role[64], hex[128], extra[8];
        int k = sscanf(line, "%127s %63s %127s %7s", name, role, hex, extra);
        if (k <= 0) continue;
        server_token t;
        const char *why = NULL;
        if (k != 3) why = "expected NAME ROLE SHA256HEX";
        else if (strlen(name) >= sizeof t.name) why = "the name is longer than 63 bytes";
        else if (http_role_parse(role, &t.role) != 0) why = "the role must be viewer, operator or ingest";
        else if (unhex(strncmp(hex, "sha256:", 7) ? hex : hex + 7, t.hash) != 0)
            why = "the hash must be 64 hex digits (towerd token prints it); never put the token itself here";
        if (why) {
            ct_log(CT_LOG_ERROR, "server", "%s:%d: %s", path, lineno, why);
            st = CT_INVALID;
            continue;
        }
        memcpy(t.name, name, strlen(name) + 1); /* shorter than t.name: checked above */
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = ct_realloc(v, cap * sizeof *v);
        }
        v[n++] = t;
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

ct_status server__tokens_load(http_server *s, const char *path) { return load(path, &s->tokens, &s->n_tokens); }

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

int server__auth(struct mg_connection *c, http_server *s, http_role need)
{
    if (!s->n_tokens) return 0; /* no tokens: loopback only, open (checked at start) */
    char tok[512];
    if (presented(c, tok, sizeof tok) <= 0) return 401;
    unsigned char h[32];
    sha256(tok, strlen(tok), h);
    const server_token *found = NULL;
    for (size_t i = 0; i < s->n_tokens; i++) {
        unsigned char diff = 0;
        for (int k = 0; k < 32; k++) diff |= (unsigned char)(h[k] ^ s->tokens[i].hash[k]);
        if (!diff) found = &s->tokens[i];
    }
    if (!found) return 401;
    int ok = found->role == need || (need == HTTP_ROLE_VIEWER && found->role == HTTP_ROLE_OPERATOR);
    if (!ok) {
        ct_log(CT_LOG_INFO, "server", "token '%s' (%s) refused: the route needs the %s role", found->name,
               found->role == HTTP_ROLE_VIEWER ? "viewer" : found->role == HTTP_ROLE_OPERATOR ? "operator" : "ingest",
               need == HTTP_ROLE_VIEWER ? "viewer" : need == HTTP_ROLE_OPERATOR ? "operator" : "ingest");
        return 403;
    }
    return 0;
}

int server__allowed(struct mg_connection *c, http_server *s, http_role need) { return server__auth(c, s, need) == 0; }

const char *server__role_name(http_role r)
{
    return r == HTTP_ROLE_VIEWER ? "viewer" : r == HTTP_ROLE_OPERATOR ? "operator" : "ingest";
}

int server__caller(struct mg_connection *c, http_server *s, char *name, size_t cap, http_role *role)
{
    if (!s->n_tokens) {
        snprintf(name, cap, "local");
        *role = HTTP_ROLE_OPERATOR;
        return 0;
    }
    char tok[512];
    if (presented(c, tok, sizeof tok) <= 0) return -1;
    unsigned char h[32];
    sha256(tok, strlen(tok), h);
    for (size_t i = 0; i < s->n_tokens; i++) {
        unsigned char diff = 0;
        for (int k = 0; k < 32; k++) diff |= (unsigned char)(h[k] ^ s->tokens[i].hash[k]);
        if (!diff) {
            snprintf(name, cap, "%s", s->tokens[i].name);
            *role = s->tokens[i].role;
            return 0;
        }
    }
    return -1;
}

int server__deny(struct mg_connection *c, http_server *s, server_route route, int status, http_role need)
{
    if (status == 401)
        return server__error(c, s, route, 401, "UNAUTHORIZED", NULL,
                             "an API token is required: send 'Authorization: Bearer TOKEN'");
    return server__error(c, s, route, 403, "FORBIDDEN", NULL, "this token's role may not do this (needs %s)",
                         need == HTTP_ROLE_VIEWER ? "viewer" : need == HTTP_ROLE_OPERATOR ? "operator" : "ingest");
}
