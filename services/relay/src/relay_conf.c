/* The relay file: its [destination NAME] sections (read with inih, a whole line per read), their secrets, and
 * which events each destination receives. */
#include "relay.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ct_config.h"
#include "fold.h"

#define NAME_MAX_LEN 64
#define SECRET_FILE_MAX 4096 /* a whsec_ secret is well under 100 characters */
#define NS_PER_S INT64_C(1000000000)

enum {
    K_URL, K_KIND, K_SECRET_FILE, K_SECRET_ENV, K_EVENTS, K_WAREHOUSES, K_CARRIERS, K_TIMEOUT, K_MAX_ATTEMPTS,
    K_BACKOFF_MIN, K_BACKOFF_MAX, K_BREAKER_FAILURES, K_BREAKER_COOLDOWN, K_BATCH, K_LANES,
    K_FROM, K_TO, K_SUBJECT_PREFIX, K_USERNAME_ENV, K_PASSWORD_ENV, /* kind = email only */
    K_EXCEPTIONS, K_VIEWS, K_CUSTOMERS, /* exception destinations */
    K_COUNT
};
static const char *const keys[K_COUNT] = {
    "url", "kind", "secret_file", "secret_env", "events", "warehouses", "carriers", "timeout", "max_attempts",
    "backoff_min", "backoff_max", "breaker_failures", "breaker_cooldown", "batch", "lanes",
    "from", "to", "subject_prefix", "username_env", "password_env", "exceptions", "views", "customers"};

#define MAIL_TO_MAX 20
#define SUBJECT_PREFIX_MAX 64
#define ADDRESS_MAX 254

/* Where each destination and each of its keys was written, for messages. */
typedef struct dest_lines {
    int section;
    int key[K_COUNT]; /* 0 while the key is not given: a second one is an error */
} dest_lines;

typedef struct parse_ctx {
    relay_conf *c;
    dest_lines *at;     /* one per destination of c */
    const char *path;   /* the file's name for messages */
    ct_ini_lines lines; /* the file, a whole line per read; lines.lineno is the line inih is on */
    char *err;          /* the first problem, without "FILE:LINE: " */
    int err_line;
    ct_status err_status; /* CT_IO for a secret file that cannot be read, else CT_INVALID */
} parse_ctx;

/* ---- freeing -------------------------------------------------------------------------------------------- */

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

static void dest_free(relay_dest *d)
{
    free(d->name);
    free(d->url);
    if (d->secret) OPENSSL_cleanse(d->secret, d->secret_len);
    free(d->secret);
    free_list(d->events, d->n_events);
    free_list(d->warehouses, d->n_warehouses);
    free_list(d->carriers, d->n_carriers);
    free(d->mail_from);
    free_list(d->mail_to, d->n_mail_to);
    free(d->subject_prefix);
    free_list(d->views, d->n_views);
    free_list(d->customers, d->n_customers);
    if (d->smtp_user) OPENSSL_cleanse(d->smtp_user, strlen(d->smtp_user));
    free(d->smtp_user);
    if (d->smtp_password) OPENSSL_cleanse(d->smtp_password, strlen(d->smtp_password));
    free(d->smtp_password);
}

void relay_conf_free(relay_conf *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) dest_free(&c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

/* ---- problems ------------------------------------------------------------------------------------------- */

/* Keep the first problem found (taking msg); later ones are dropped, as inih keeps only its first. */
static void fail_at(parse_ctx *pc, int line, ct_status st, char *msg)
{
    if (pc->err) {
        free(msg);
        return;
    }
    pc->err = msg;
    pc->err_line = line;
    pc->err_status = st;
}

/* fail_at the line being read, a bad file. */
static void fail(parse_ctx *pc, char *msg) { fail_at(pc, pc->lines.lineno, CT_INVALID, msg); }

/* ---- values --------------------------------------------------------------------------------------------- */

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return 0;
    return 1;
}

/* A warehouse or carrier id as the contract has them: 1-64 characters of [A-Za-z0-9._:-]. */
static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > EVT_MAX_ID) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._:-", *s)) return 0;
    return 1;
}

/* Is name the JSON name of a payload of tower.v1.Event ("routeDispatched")? The codec's own names decide. */
static int event_type_known(const char *name)
{
    const ProtobufCMessageDescriptor *d = &tower__v1__event__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        evt_event probe = {.payload_case = (Tower__V1__Event__PayloadCase)f->id};
        const char *t = evt_type_name(&probe);
        if (*t && strcmp(t, name) == 0) return 1;
    }
    return 0;
}

/* 1 for smtp:// and smtps:// URLs (kind = email), 0 for others. */
static int url_is_mail(const char *url) { return !strncasecmp(url, "smtp://", 7) || !strncasecmp(url, "smtps://", 8); }

/* The URL of a destination: http(s) (smtp(s) for kind = email, checked with the kind in check_dests), a host
 * at least. Its text stays out of messages: a Slack incoming-webhook URL is itself a secret. */
static const char *url_problem(const char *url)
{
    size_t skip = strncasecmp(url, "http://", 7) == 0 ? 7 : strncasecmp(url, "https://", 8) == 0 ? 8 : 0;
    if (!skip && url_is_mail(url)) skip = url[4] == ':' ? 7 : 8;
    if (!skip) return "url must start with http:// or https:// (smtp:// or smtps:// for kind = email)";
    if (!url[skip] || url[skip] == '/') return "url has no host after its scheme";
    for (const char *p = url; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p)) return "url contains a blank or a control character";
    if (url_is_mail(url)) {
        size_t host = strcspn(url + skip, "/?#");
        if (memchr(url + skip, '@', host))
            return "url carries credentials: give them with username_env and password_env";
    }
    return NULL;
}

/* An email address, checked loosely: local@domain, the local part 1-64 printable ASCII characters without
 * blanks and without any of <>()[]\,;:"@, the domain dot-separated labels of [A-Za-z0-9-]. */
static int address_ok(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || at - s > 64 || strlen(s) > ADDRESS_MAX) return 0;
    for (const char *p = s; p < at; p++)
        if (*p <= ' ' || *p > '~' || strchr("<>()[]\\,;:\"@", *p)) return 0;
    const char *dom = at + 1;
    if (!*dom || *dom == '.' || dom[strlen(dom) - 1] == '.' || strstr(dom, "..")) return 0;
    for (const char *p = dom; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.') return 0;
    return 1;
}

typedef enum list_kind { L_EVENTS, L_WAREHOUSES, L_CARRIERS, L_ADDRESSES, L_EXCEPTIONS, L_VIEWS, L_CUSTOMERS } list_kind;

/* What is wrong with one item of a list, or NULL. */
static char *item_problem(list_kind k, const char *item, size_t n_items)
{
    switch (k) {
    case L_EVENTS:
        if (strcmp(item, "*") == 0) return n_items == 1 ? NULL : ct_strdup("events: \"*\" (all) stands alone");
        if (!event_type_known(item))
            return ct_sprintf("unknown event type \"%s\" (a payload's JSON name such as routeDispatched, or *)", item);
        return NULL;
    case L_WAREHOUSES:
    case L_CARRIERS:
        if (!id_ok(item))
            return ct_sprintf("%s \"%s\" is not an id (1-%d characters of [A-Za-z0-9._:-])",
                              k == L_WAREHOUSES ? "warehouse" : "carrier", item, EVT_MAX_ID);
        return NULL;
    case L_EXCEPTIONS:
        if (!relay_exc_change_bit(item))
            return ct_sprintf("exceptions: unknown change \"%s\" (opened, acknowledged, breached, resolved)", item);
        return NULL;
    case L_VIEWS:
        if (!evt_exid_view_known(item, strlen(item)) || !strcmp(item, "dead_letters"))
            return ct_sprintf("views: \"%s\" is not a view of orders or shipments (e.g. blocked, pending_route)", item);
        return NULL;
    case L_CUSTOMERS:
        if (!id_ok(item))
            return ct_sprintf("customer \"%s\" is not an id (1-%d characters of [A-Za-z0-9._:-])", item, EVT_MAX_ID);
        return NULL;
    case L_ADDRESSES:
        if (n_items > MAIL_TO_MAX) return ct_sprintf("to has %zu addresses: at most %d", n_items, MAIL_TO_MAX);
        if (!address_ok(item)) return ct_sprintf("to: \"%s\" is not an email address (local@domain)", item);
        return NULL;
    }
    return NULL;
}

/* A comma-separated list, items trimmed; an empty item (or list) is a mistake. Returns 0, or -1 after fail. */
static int parse_list(parse_ctx *pc, const char *key, list_kind k, const char *value, char ***items, size_t *n)
{
    char **v = NULL;
    size_t count = 0;
    const char *p = value;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && isspace((unsigned char)*b)) b++;
        while (e > b && isspace((unsigned char)e[-1])) e--;
        if (e == b) {
            fail(pc, ct_sprintf("%s has an empty item (a comma-separated list)", key));
            goto bad;
        }
        v = ct_realloc(v, (count + 1) * sizeof *v);
        v[count++] = ct_strndup(b, (size_t)(e - b));
        if (!*end) break;
        p = end + 1;
    }
    for (size_t i = 0; i < count; i++) {
        char *problem = item_problem(k, v[i], count);
        if (problem) {
            fail(pc, problem);
            goto bad;
        }
    }
    *items = v;
    *n = count;
    return 0;
bad:
    free_list(v, count);
    return -1;
}

static int parse_duration(parse_ctx *pc, const char *key, const char *value, int64_t *out)
{
    int64_t ns;
    if (ct_parse_duration_ns(value, &ns) != 0 || ns <= 0) {
        fail(pc, ct_sprintf("%s \"%s\" is not a positive duration (e.g. 500ms, 5s, 2m)", key, value));
        return -1;
    }
    *out = ns;
    return 0;
}

static int parse_count(parse_ctx *pc, const char *key, const char *value, int *out)
{
    int64_t v;
    if (ct_parse_int(value, &v) != 0 || v < 1 || v > INT_MAX) {
        fail(pc, ct_sprintf("%s \"%s\" is not a positive integer", key, value));
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_kind(parse_ctx *pc, const char *value, relay_kind *out)
{
    static const struct {
        const char *name;
        relay_kind kind;
    } kinds[] = {{"webhook", RELAY_WEBHOOK}, {"slack", RELAY_SLACK}, {"email", RELAY_EMAIL},
                 {"route_planner", RELAY_ROUTE_PLANNER}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(value, kinds[i].name)) {
            *out = kinds[i].kind;
            return 0;
        }
    fail(pc, ct_sprintf("kind \"%s\" is not webhook, slack, email or route_planner", value));
    return -1;
}

static int parse_batch(parse_ctx *pc, const char *value, int *out)
{
    if (parse_count(pc, "batch", value, out) != 0) return -1;
    if (*out > RELAY_BATCH_MAX) {
        fail(pc, ct_sprintf("batch %d is more than %d", *out, RELAY_BATCH_MAX));
        return -1;
    }
    return 0;
}

static int parse_lanes(parse_ctx *pc, const char *value, int *out)
{
    if (parse_count(pc, "lanes", value, out) != 0) return -1;
    if (*out > RELAY_LANES_MAX) {
        fail(pc, ct_sprintf("lanes %d is more than %d", *out, RELAY_LANES_MAX));
        return -1;
    }
    return 0;
}

/* ---- secrets -------------------------------------------------------------------------------------------- */

/* Decode a secret's text, trimmed of blanks, into d. The text is never quoted: where names its origin. */
static int take_secret(parse_ctx *pc, relay_dest *d, char *text, const char *where)
{
    char *s = text;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1])) s[--len] = '\0';
    while (isspace((unsigned char)*s)) s++;
    if (relay_secret_decode(s, &d->secret, &d->secret_len) != 0) {
        fail(pc, ct_sprintf("%s does not hold a Standard Webhooks secret (whsec_ and base64)", where));
        return -1;
    }
    return 0;
}

static int read_secret_file(parse_ctx *pc, relay_dest *d, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fail_at(pc, pc->lines.lineno, CT_IO, ct_sprintf("cannot read secret file %s: %s", path, strerror(errno)));
        return -1;
    }
    char buf[SECRET_FILE_MAX + 1];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int read_err = ferror(f) ? (errno ? errno : EIO) : 0;
    int too_long = !read_err && n == sizeof buf - 1 && fgetc(f) != EOF;
    fclose(f);
    buf[n] = '\0';
    int rc = -1;
    char *where = ct_sprintf("secret file %s", path);
    if (read_err)
        fail_at(pc, pc->lines.lineno, CT_IO, ct_sprintf("cannot read secret file %s: %s", path, strerror(read_err)));
    else if (too_long || memchr(buf, '\0', n))
        fail(pc, ct_sprintf("%s does not hold a Standard Webhooks secret (whsec_ and base64)", where));
    else
        rc = take_secret(pc, d, buf, where);
    free(where);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int read_secret_env(parse_ctx *pc, relay_dest *d, const char *var)
{
    const char *v = getenv(var);
    if (!v || !*v) {
        fail(pc, ct_sprintf("secret_env: environment variable %s is not set", var));
        return -1;
    }
    char *copy = ct_strdup(v);
    char *where = ct_sprintf("environment variable %s", var);
    int rc = take_secret(pc, d, copy, where);
    free(where);
    OPENSSL_cleanse(copy, strlen(copy));
    free(copy);
    return rc;
}

/* username_env / password_env: the variable's value, never quoted. */
static int read_credential_env(parse_ctx *pc, const char *key, const char *var, char **out)
{
    if (!*var) {
        fail(pc, ct_sprintf("%s needs a value (the name of an environment variable)", key));
        return -1;
    }
    const char *v = getenv(var);
    if (!v || !*v) {
        fail(pc, ct_sprintf("%s: environment variable %s is not set", key, var));
        return -1;
    }
    for (const char *p = v; *p; p++)
        if (iscntrl((unsigned char)*p)) {
            fail(pc, ct_sprintf("%s: environment variable %s holds a control character", key, var));
            return -1;
        }
    *out = ct_strdup(v);
    return 0;
}

/* ---- reading the file ----------------------------------------------------------------------------------- */

static relay_dest *dest_add(parse_ctx *pc, const char *name)
{
    relay_conf *c = pc->c;
    c->v = ct_realloc(c->v, (c->n + 1) * sizeof *c->v);
    pc->at = ct_realloc(pc->at, (c->n + 1) * sizeof *pc->at);
    memset(&pc->at[c->n], 0, sizeof *pc->at);
    pc->at[c->n].section = pc->lines.lineno;
    relay_dest *d = &c->v[c->n++];
    *d = (relay_dest){.name = ct_strdup(name),
                      .kind = RELAY_WEBHOOK,
                      .timeout_ns = 5 * NS_PER_S,
                      .max_attempts = 8,
                      .backoff_min_ns = 1 * NS_PER_S,
                      .backoff_max_ns = 300 * NS_PER_S,
                      .breaker_failures = 5,
                      .breaker_cooldown_ns = 30 * NS_PER_S,
                      .batch = 1,
                      .lanes = RELAY_LANES_DEFAULT};
    return d;
}

/* "[destination NAME]": a new destination. Returns its index, -1 on error. */
static long section_open(parse_ctx *pc, const char *text, size_t len)
{
    char *s = ct_strndup(text, len);
    char *save = NULL;
    const char *kind = strtok_r(s, " \t", &save);
    const char *name = kind ? strtok_r(NULL, " \t", &save) : NULL;
    const char *extra = name ? strtok_r(NULL, " \t", &save) : NULL;
    long idx = -1;
    if (!kind || strcmp(kind, "destination") != 0)
        fail(pc, ct_sprintf("unknown section [%.*s]: sections are [destination NAME]", (int)len, text));
    else if (!name)
        fail(pc, ct_strdup("[destination] needs a name: [destination NAME]"));
    else if (extra || !name_ok(name))
        fail(pc, ct_sprintf("destination name \"%.*s\" must be 1-%d characters of [A-Za-z0-9_-]",
                            (int)(len - (size_t)(name - s)), text + (name - s), NAME_MAX_LEN));
    else {
        for (size_t i = 0; i < pc->c->n; i++)
            if (strcmp(pc->c->v[i].name, name) == 0) {
                fail(pc, ct_sprintf("destination %s is defined twice (first on line %d)", name, pc->at[i].section));
                goto out;
            }
        dest_add(pc, name);
        idx = (long)pc->c->n - 1;
    }
out:
    free(s);
    return idx;
}

static long open_section(void *ctx, const char *text, size_t len) { return section_open(ctx, text, len); }

/* inih's reader: ct_config's, sections as "[<destination index>]" (ct_ini_read_sectioned). */
static char *read_line(char *str, int num, void *stream)
{
    parse_ctx *pc = stream;
    char *problem;
    char *got = ct_ini_read_sectioned(&pc->lines, str, num, &problem, open_section, pc);
    if (problem) fail(pc, problem);
    return got;
}

/* exceptions = opened, breached, ...: the bits of d->exceptions. */
static int parse_exceptions(parse_ctx *pc, relay_dest *d, const char *value)
{
    char **v = NULL;
    size_t n = 0;
    if (parse_list(pc, "exceptions", L_EXCEPTIONS, value, &v, &n) != 0) return -1;
    for (size_t i = 0; i < n; i++) d->exceptions |= relay_exc_change_bit(v[i]);
    free_list(v, n);
    return 0;
}

/* One key of a destination; its line is recorded already. Returns 0, or -1 after fail. */
static int set_key(parse_ctx *pc, relay_dest *d, const dest_lines *at, int k, const char *value)
{
    const char *problem;
    switch (k) {
    case K_URL:
        if ((problem = url_problem(value)) != NULL) {
            fail(pc, ct_strdup(problem));
            return -1;
        }
        d->url = ct_strdup(value);
        return 0;
    case K_KIND: return parse_kind(pc, value, &d->kind);
    case K_FROM:
        if (!address_ok(value)) {
            fail(pc, ct_sprintf("from \"%s\" is not an email address (local@domain)", value));
            return -1;
        }
        d->mail_from = ct_strdup(value);
        return 0;
    case K_TO: return parse_list(pc, keys[k], L_ADDRESSES, value, &d->mail_to, &d->n_mail_to);
    case K_SUBJECT_PREFIX: {
        size_t n = strlen(value);
        int ok = n >= 1 && n <= SUBJECT_PREFIX_MAX;
        for (const char *p = value; ok && *p; p++) ok = *p >= ' ' && *p <= '~';
        if (!ok) {
            fail(pc, ct_sprintf("subject_prefix must be 1-%d printable ASCII characters", SUBJECT_PREFIX_MAX));
            return -1;
        }
        d->subject_prefix = ct_strdup(value);
        return 0;
    }
    case K_USERNAME_ENV: return read_credential_env(pc, keys[k], value, &d->smtp_user);
    case K_PASSWORD_ENV: return read_credential_env(pc, keys[k], value, &d->smtp_password);
    case K_SECRET_FILE:
    case K_SECRET_ENV:
        if (at->key[k == K_SECRET_FILE ? K_SECRET_ENV : K_SECRET_FILE]) {
            fail(pc, ct_strdup("secret_file and secret_env exclude each other: give one"));
            return -1;
        }
        if (!*value) {
            fail(pc, ct_sprintf("%s needs a value", keys[k]));
            return -1;
        }
        return k == K_SECRET_FILE ? read_secret_file(pc, d, value) : read_secret_env(pc, d, value);
    case K_EVENTS: return parse_list(pc, keys[k], L_EVENTS, value, &d->events, &d->n_events);
    case K_WAREHOUSES: return parse_list(pc, keys[k], L_WAREHOUSES, value, &d->warehouses, &d->n_warehouses);
    case K_CARRIERS: return parse_list(pc, keys[k], L_CARRIERS, value, &d->carriers, &d->n_carriers);
    case K_TIMEOUT: return parse_duration(pc, keys[k], value, &d->timeout_ns);
    case K_MAX_ATTEMPTS: return parse_count(pc, keys[k], value, &d->max_attempts);
    case K_BACKOFF_MIN: return parse_duration(pc, keys[k], value, &d->backoff_min_ns);
    case K_BACKOFF_MAX: return parse_duration(pc, keys[k], value, &d->backoff_max_ns);
    case K_BREAKER_FAILURES: return parse_count(pc, keys[k], value, &d->breaker_failures);
    case K_BREAKER_COOLDOWN: return parse_duration(pc, keys[k], value, &d->breaker_cooldown_ns);
    case K_BATCH: return parse_batch(pc, value, &d->batch);
    case K_LANES: return parse_lanes(pc, value, &d->lanes);
    case K_EXCEPTIONS: return parse_exceptions(pc, d, value);
    case K_VIEWS: return parse_list(pc, keys[k], L_VIEWS, value, &d->views, &d->n_views);
    case K_CUSTOMERS: return parse_list(pc, keys[k], L_CUSTOMERS, value, &d->customers, &d->n_customers);
    }
    return 0;
}

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *pc = user;
    if (!*section) {
        fail(pc, ct_sprintf("key \"%s\" outside a [destination NAME] section", name));
        return 0;
    }
    if (strcmp(section, "-") == 0) return 1; /* the bad header was reported */
    size_t i = (size_t)strtol(section, NULL, 10);
    int k = 0;
    while (k < K_COUNT && strcmp(keys[k], name) != 0) k++;
    if (k == K_COUNT) {
        fail(pc, ct_sprintf("unknown key \"%s\" (url, kind, secret_file, secret_env, events, warehouses, carriers, "
                            "timeout, max_attempts, backoff_min, backoff_max, breaker_failures, breaker_cooldown, batch, lanes, "
                            "exceptions, views, customers; for kind = email from, to, subject_prefix, username_env, "
                            "password_env)",
                            name));
        return 0;
    }
    dest_lines *at = &pc->at[i];
    if (at->key[k]) {
        fail(pc, ct_sprintf("key \"%s\" given twice (first on line %d)", name, at->key[k]));
        return 0;
    }
    at->key[k] = pc->lines.lineno;
    return set_key(pc, &pc->c->v[i], at, k, value) == 0;
}

/* ---- checking the whole ----------------------------------------------------------------------------------- */

/* The line of the first key given that a destination of this kind must not have (*key: which), or 0. */
static int foreign_key(const dest_lines *at, relay_kind kind, int *key)
{
    int line = 0;
    for (int k = 0; k < K_COUNT; k++) {
        int email_only = k >= K_FROM && k <= K_PASSWORD_ENV, webhook_only = k == K_SECRET_FILE || k == K_SECRET_ENV;
        int foreign = kind == RELAY_EMAIL ? webhook_only : email_only;
        if (foreign && at->key[k] && (!line || at->key[k] < line)) {
            line = at->key[k];
            *key = k;
        }
    }
    return line;
}

/* An exception destination's keys together: exceptions excludes events, batch and route_planner; views and
 * customers need it. 1 after fail, else 0. */
static int check_exc(parse_ctx *pc, const relay_dest *d, const dest_lines *at)
{
    const char *why = NULL;
    int line = at->key[K_EXCEPTIONS];
    if (d->exceptions && d->events) why = "exceptions and events exclude each other (one destination per kind of feed)";
    else if (d->exceptions && d->kind == RELAY_ROUTE_PLANNER) why = "a route_planner gets no exception changes";
    else if (d->exceptions && d->batch > 1) why = "batch is not for exception destinations";
    else if (!d->exceptions && (at->key[K_VIEWS] || at->key[K_CUSTOMERS])) {
        why = "views and customers filter exception changes: they need exceptions";
        line = at->key[K_VIEWS] ? at->key[K_VIEWS] : at->key[K_CUSTOMERS];
    }
    if (!why) return 0;
    fail_at(pc, line, CT_INVALID, ct_sprintf("destination %s: %s", d->name, why));
    return 1;
}

/* lanes = N > 1 is for webhook and slack event destinations with batch = 1 (1 after fail); where lanes do not
 * apply and the key is not given, a destination has one. */
static int check_lanes(parse_ctx *pc, relay_dest *d, const dest_lines *at)
{
    int fits = (d->kind == RELAY_WEBHOOK || d->kind == RELAY_SLACK) && !d->exceptions && d->batch <= 1;
    if (fits || !at->key[K_LANES] || d->lanes <= 1) {
        if (!fits) d->lanes = 1;
        return 0;
    }
    fail_at(pc, at->key[K_LANES], CT_INVALID,
            d->batch > 1 ? ct_sprintf("destination %s: lanes and batch exclude each other (a batch goes in stream "
                                      "order on one lane): give one", d->name)
                         : ct_sprintf("destination %s: lanes is only for kind = webhook or slack event destinations",
                                      d->name));
    return 1;
}

/* What no single line shows: a missing url or events, backoff bounds the wrong way round, a signed Slack
 * destination, keys of another kind, an email destination without sender or recipients. */
static void check_dests(parse_ctx *pc)
{
    for (size_t i = 0; i < pc->c->n && !pc->err; i++) {
        relay_dest *d = &pc->c->v[i];
        const dest_lines *at = &pc->at[i];
        int fk = 0, fline = foreign_key(at, d->kind, &fk);
        if (d->kind == RELAY_EMAIL && !d->subject_prefix) d->subject_prefix = ct_strdup("[tower]");
        if (fline) {
            fail_at(pc, fline, CT_INVALID,
                    d->kind == RELAY_EMAIL
                        ? ct_sprintf("destination %s: %s is not for kind = email (an email is not signed)", d->name,
                                     keys[fk])
                        : ct_sprintf("destination %s: %s is only for kind = email", d->name, keys[fk]));
        } else if (d->url && (d->kind == RELAY_EMAIL) != url_is_mail(d->url)) {
            fail_at(pc, at->key[K_URL], CT_INVALID,
                    d->kind == RELAY_EMAIL
                        ? ct_sprintf("destination %s: a kind = email url starts with smtp:// or smtps://", d->name)
                        : ct_sprintf("destination %s: url must start with http:// or https:// (smtp:// is for kind "
                                     "= email)", d->name));
        } else if (d->kind == RELAY_EMAIL && (!d->mail_from || !d->mail_to)) {
            fail_at(pc, at->section, CT_INVALID,
                    ct_sprintf("destination %s: kind = email needs from and to", d->name));
        } else if (d->kind == RELAY_EMAIL && !d->smtp_user != !d->smtp_password) {
            fail_at(pc, at->key[K_USERNAME_ENV] ? at->key[K_USERNAME_ENV] : at->key[K_PASSWORD_ENV], CT_INVALID,
                    ct_sprintf("destination %s: username_env and password_env go together", d->name));
        } else if (!d->url) {
            fail_at(pc, at->section, CT_INVALID, ct_sprintf("destination %s has no url", d->name));
        } else if (d->backoff_min_ns > d->backoff_max_ns) {
            int line = at->key[K_BACKOFF_MAX] ? at->key[K_BACKOFF_MAX] : at->key[K_BACKOFF_MIN];
            fail_at(pc, line, CT_INVALID,
                    ct_sprintf("destination %s: backoff_min is longer than backoff_max", d->name));
        } else if (d->kind == RELAY_SLACK && d->secret) {
            int line = at->key[K_SECRET_FILE] ? at->key[K_SECRET_FILE] : at->key[K_SECRET_ENV];
            fail_at(pc, line, CT_INVALID,
                    ct_sprintf("destination %s: a slack destination is not signed (no secret_file or secret_env)",
                               d->name));
        } else if (d->kind != RELAY_WEBHOOK && at->key[K_BATCH] && d->batch > 1) {
            fail_at(pc, at->key[K_BATCH], CT_INVALID,
                    ct_sprintf("destination %s: batch is only for kind = webhook", d->name));
        } else if (check_lanes(pc, d, at)) {
        } else if (check_exc(pc, d, at)) {
        } else if (d->kind == RELAY_ROUTE_PLANNER && d->events) {
            fail_at(pc, at->key[K_EVENTS], CT_INVALID,
                    ct_sprintf("destination %s: a route_planner gets route requests, not events (no events key)",
                               d->name));
        } else if (!d->events && !d->exceptions && d->kind != RELAY_ROUTE_PLANNER) {
            fail_at(pc, at->section, CT_INVALID,
                    ct_sprintf("destination %s has no events (event types such as routeDispatched, or * for all)",
                               d->name));
        }
    }
}

static void set_err(char *err, size_t errcap, const char *msg)
{
    if (err && errcap) snprintf(err, errcap, "%s", msg);
}

ct_status relay_conf_load(const char *path, relay_conf *out, char *err, size_t errcap)
{
    relay_conf c = {0};
    parse_ctx pc = {.c = &c, .path = path};
    pc.lines.f = fopen(path, "r");
    if (!pc.lines.f) {
        char *msg = ct_sprintf("cannot read relay file %s: %s", path, strerror(errno));
        set_err(err, errcap, msg);
        free(msg);
        *out = (relay_conf){0};
        return CT_IO;
    }
    int rc = ini_parse_stream(read_line, &pc, on_pair, &pc);
    ct_status st = CT_INVALID;
    char *msg = NULL;
    /* inih returns the first line with any error, its own or a handler's; ours may be earlier (the reader's). */
    if (pc.lines.read_errno) {
        msg = ct_sprintf("cannot read relay file %s: %s", path, strerror(pc.lines.read_errno));
        st = CT_IO;
    } else if (pc.err && (rc <= 0 || pc.err_line <= rc)) {
        msg = ct_sprintf("%s:%d: %s", path, pc.err_line, pc.err);
        st = pc.err_status;
    } else if (rc > 0) {
        msg = ct_sprintf("%s:%d: syntax error (expected KEY = VALUE or [destination NAME])", path, rc);
    } else if (rc < 0) {
        msg = ct_sprintf("cannot read relay file %s: inih error %d", path, rc);
        st = CT_IO;
    } else {
        check_dests(&pc);
        if (pc.err) msg = ct_sprintf("%s:%d: %s", path, pc.err_line, pc.err);
        else if (c.n == 0) msg = ct_sprintf("%s: no [destination NAME] section: nothing to relay", path);
    }
    fclose(pc.lines.f);
    free(pc.lines.line);
    free(pc.err);
    free(pc.at);
    if (msg) {
        set_err(err, errcap, msg);
        free(msg);
        relay_conf_free(&c);
        *out = (relay_conf){0};
        return st;
    }
    *out = c;
    return CT_OK;
}

/* ---- filters -------------------------------------------------------------------------------------------- */

static int listed(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0) return 1;
    return 0;
}

int relay_dest_wants(const relay_dest *d, const evt_event *e)
{
    if (d->exceptions) return 0; /* an exception destination: relay_exc_wants */
    if (!listed(d->events, d->n_events, "*") && !listed(d->events, d->n_events, evt_type_name(e))) return 0;
    /* A filter on warehouses (carriers) takes only events that name one of them, in the payload or the
     * envelope, as the views attribute them. */
    if (d->n_warehouses) {
        const char *w = fold_event_warehouse(e);
        if (!w || !listed(d->warehouses, d->n_warehouses, w)) return 0;
    }
    if (d->n_carriers) {
        const char *c = fold_event_carrier(e);
        if (!c || !listed(d->carriers, d->n_carriers, c)) return 0;
    }
    return 1;
}
