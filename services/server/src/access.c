/* Pure parsing and matching of who calls and what a caller may do (see access.h). */
#include "access.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why && cap) vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* The next item of a comma-separated list, trimmed: its start and length; NULL at the end. *p moves on. */
static const char *next_item(const char **p, size_t *len)
{
    while (**p) {
        const char *s = *p, *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        *p = comma ? comma + 1 : s + n;
        while (n && isspace((unsigned char)*s)) s++, n--;
        while (n && isspace((unsigned char)s[n - 1])) n--;
        if (n) {
            *len = n;
            return s;
        }
    }
    return NULL;
}

/* ---- trusted proxies ---- */

/* Text to the 16-byte form (IPv4 as ::ffff:a.b.c.d): 4 or 6, or 0 if it is no address. */
static int addr16(const char *text, unsigned char out[16])
{
    unsigned char v4[4];
    if (inet_pton(AF_INET, text, v4) == 1) {
        memset(out, 0, 10);
        out[10] = out[11] = 0xff;
        memcpy(out + 12, v4, 4);
        return 4;
    }
    return inet_pton(AF_INET6, text, out) == 1 ? 6 : 0;
}

static int cidr_parse1(const char *s, size_t n, access_cidr *out, char *why, size_t cap)
{
    char buf[64];
    if (n >= sizeof buf) return fail(why, cap, "'%.40s...' is too long for an address", s);
    memcpy(buf, s, n);
    buf[n] = 0;
    char *slash = strchr(buf, '/');
    if (slash) *slash = 0;
    int fam = addr16(buf, out->addr);
    if (!fam) return fail(why, cap, "'%s' is not an IPv4 or IPv6 address", buf);
    int max = fam == 4 ? 32 : 128;
    long bits = max;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || bits < 0 || bits > max)
            return fail(why, cap, "'%s/%s': the prefix length must be 0..%d", buf, slash + 1, max);
    }
    out->bits = (int)bits + (fam == 4 ? 96 : 0);
    return 0;
}

int access_cidrs_parse(const char *list, access_cidr *out, size_t cap, char *why, size_t whycap)
{
    size_t n = 0, len;
    const char *item;
    while (list && (item = next_item(&list, &len))) {
        if (n == cap) return fail(why, whycap, "more than %zu networks", cap);
        if (cidr_parse1(item, len, &out[n], why, whycap) != 0) return -1;
        n++;
    }
    return (int)n;
}

static int in_cidr(const access_cidr *c, const unsigned char a[16])
{
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(a, c->addr, (size_t)full)) return 0;
    if (!rest) return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (c->addr[full] & mask);
}

int access_cidrs_match(const access_cidr *v, size_t n, const char *addr)
{
    unsigned char a[16];
    if (!addr || !addr16(addr, a)) return 0;
    for (size_t i = 0; i < n; i++)
        if (in_cidr(&v[i], a)) return 1;
    return 0;
}

/* ---- groups to roles ---- */

int access_mappings_parse(const char *list, access_mapping *out, size_t cap, char *why, size_t whycap)
{
    size_t n = 0, len;
    const char *item;
    while (list && (item = next_item(&list, &len))) {
        if (n == cap) return fail(why, whycap, "more than %zu group=role pairs", cap);
        const char *eq = memchr(item, '=', len);
        if (!eq || eq == item) return fail(why, whycap, "'%.*s': expected GROUP=ROLE", (int)(len > 80 ? 80 : len), item);
        size_t gl = (size_t)(eq - item);
        while (gl && isspace((unsigned char)item[gl - 1])) gl--;
        if (gl > ACCESS_MAX_GROUP) return fail(why, whycap, "a group name is longer than %d bytes", ACCESS_MAX_GROUP);
        char role[16];
        const char *r = eq + 1;
        size_t rl = (size_t)(item + len - r);
        while (rl && isspace((unsigned char)*r)) r++, rl--;
        if (rl >= sizeof role) rl = sizeof role - 1;
        memcpy(role, r, rl);
        role[rl] = 0;
        if (http_role_parse(role, &out[n].role) != 0)
            return fail(why, whycap, "'%.*s': the role must be viewer, operator or ingest", (int)gl, item);
        memcpy(out[n].group, item, gl);
        out[n].group[gl] = 0;
        n++;
    }
    return (int)n;
}

/* Operator outranks viewer, which outranks ingest (a person with both is an operator). */
static int rank(http_role r) { return r == HTTP_ROLE_OPERATOR ? 3 : r == HTTP_ROLE_VIEWER ? 2 : 1; }

int access_groups_role(const access_mapping *m, size_t n, const char *groups, http_role *role)
{
    int best = 0;
    for (size_t i = 0; i < n; i++) {
        int hit = !strcmp(m[i].group, "*");
        const char *p = groups;
        size_t len;
        const char *g;
        while (!hit && p && (g = next_item(&p, &len)))
            hit = strlen(m[i].group) == len && !memcmp(m[i].group, g, len);
        if (hit && rank(m[i].role) > best) {
            best = rank(m[i].role);
            *role = m[i].role;
        }
    }
    return best ? 0 : -1;
}

/* ---- tokens and their policies ---- */

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

static int parse_rate(const char *v, access_policy *p, char *why, size_t cap)
{
    char *end;
    double n = strtod(v, &end);
    double per = !strcmp(end, "/s") ? 1 : !strcmp(end, "/m") ? 60 : !strcmp(end, "/h") ? 3600 : 0;
    if (end == v || !per || !(n > 0) || n > 1e6)
        return fail(why, cap, "rate=%.40s: expected N/s, N/m or N/h with N in (0, 1000000]", v);
    p->rate = n / per;
    return 0;
}

static int parse_systems(const char *v, access_policy *p, char *why, size_t cap)
{
    static const char *const known[] = {"erp", "wms", "tms", "carrier", "finance", "mdm", "tower"};
    size_t len;
    const char *item;
    p->n_systems = 0;
    while ((item = next_item(&v, &len))) {
        int ok = 0;
        for (size_t k = 0; k < sizeof known / sizeof known[0] && !ok; k++)
            ok = strlen(known[k]) == len && !memcmp(known[k], item, len);
        if (!ok)
            return fail(why, cap, "systems: '%.*s' is not one of erp, wms, tms, carrier, finance, mdm, tower",
                        (int)(len > 40 ? 40 : len), item);
        if (p->n_systems == ACCESS_MAX_SYSTEMS) return fail(why, cap, "systems: a system is named twice");
        memcpy(p->systems[p->n_systems], item, len);
        p->systems[p->n_systems++][len] = 0;
    }
    if (!p->n_systems) return fail(why, cap, "systems= names no system");
    return 0;
}

int access_policy_option(const char *opt, access_policy *p, char *why, size_t cap)
{
    if (!strncmp(opt, "rate=", 5)) return parse_rate(opt + 5, p, why, cap);
    if (!strncmp(opt, "systems=", 8)) return parse_systems(opt + 8, p, why, cap);
    if (!strncmp(opt, "burst=", 6)) {
        char *end;
        long b = strtol(opt + 6, &end, 10);
        if (end == opt + 6 || *end || b < 1 || b > 1000000) return fail(why, cap, "burst=%.40s: expected 1..1000000", opt + 6);
        p->burst = (double)b;
        return 0;
    }
    return fail(why, cap, "unknown option '%.40s' (rate=N/s, burst=N, systems=a,b)", opt);
}

void access_policy_finish(access_policy *p)
{
    if (p->rate > 0 && p->burst < 1) p->burst = p->rate >= 1 ? ceil(p->rate) : 1;
}

int access_policy_system_ok(const access_policy *p, const char *system)
{
    if (!p || !p->n_systems) return 1;
    for (size_t i = 0; i < p->n_systems; i++)
        if (system && !strcmp(p->systems[i], system)) return 1;
    return 0;
}

int access_token_line_parse(const char *line, access_token_line *out, char *why, size_t whycap)
{
    char buf[1024], *save = NULL;
    size_t n = strcspn(line, "#\r\n");
    if (n >= sizeof buf) return fail(why, whycap, "the line is longer than %zu bytes", sizeof buf - 1);
    memcpy(buf, line, n);
    buf[n] = 0;
    memset(out, 0, sizeof *out);
    char *name = strtok_r(buf, " \t", &save), *role = strtok_r(NULL, " \t", &save), *hex = strtok_r(NULL, " \t", &save);
    if (!name) return 0;
    if (!role || !hex) return fail(why, whycap, "expected NAME ROLE SHA256HEX [OPTIONS]");
    if (strlen(name) > ACCESS_MAX_NAME) return fail(why, whycap, "the name is longer than %d bytes", ACCESS_MAX_NAME);
    if (http_role_parse(role, &out->role) != 0) return fail(why, whycap, "the role must be viewer, operator or ingest");
    if (unhex(strncmp(hex, "sha256:", 7) ? hex : hex + 7, out->hash) != 0)
        return fail(why, whycap, "the hash must be 64 hex digits (towerd token prints it); never put the token itself here");
    for (char *opt; (opt = strtok_r(NULL, " \t", &save));)
        if (access_policy_option(opt, &out->policy, why, whycap) != 0) return -1;
    if ((out->policy.rate > 0 || out->policy.n_systems) && out->role != HTTP_ROLE_INGEST)
        return fail(why, whycap, "rate= and systems= apply to ingest tokens only");
    if (out->policy.burst > 0 && !(out->policy.rate > 0)) return fail(why, whycap, "burst= needs rate=");
    access_policy_finish(&out->policy);
    memcpy(out->name, name, strlen(name) + 1);
    return 1;
}

int64_t access_bucket_take(access_bucket *b, const access_policy *p, int64_t now_ns)
{
    if (!(p->rate > 0)) return 0;
    if (!b->started) {
        b->started = 1;
        b->level = p->burst;
        b->last_ns = now_ns;
    }
    if (now_ns > b->last_ns) {
        b->level += (double)(now_ns - b->last_ns) / 1e9 * p->rate;
        if (b->level > p->burst) b->level = p->burst;
        b->last_ns = now_ns;
    }
    if (b->level >= 1) {
        b->level -= 1;
        return 0;
    }
    int64_t wait = (int64_t)ceil((1 - b->level) / p->rate);
    return wait < 1 ? 1 : wait;
}
