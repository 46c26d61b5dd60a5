/* The outbound relay seen from the server (docs/outbound.md): the destinations of the relay file with what
 * the relay reports of each (STATE/NAME.status.json) and their delivery dead letters (STATE/NAME.dead.ndjson),
 * and a redrive of those on the server's NATS connection.
 *
 * GET  /api/v1/integrations                       viewer: every destination, its figures and dead letters count
 * GET  /api/v1/integrations/{name}/dead-letters   viewer: the dead letters, newest last (?limit=1..1000)
 * POST /api/v1/integrations/{name}/redrive        operator: relay_redrive, its report
 *
 * A destination's URL is never shown whole: only scheme://host:port (the path of a Slack webhook is its
 * secret, and so would be credentials in the authority); strings from the state files have that path and
 * any user info removed too. */
#include "server_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "relay.h"

/* The largest status file read, and the longest dead letter line kept (longer ones are counted, not shown). */
#define STATUS_MAX (64 * 1024)
#define DEAD_LINE_MAX (1024 * 1024)

static const char *state_dir(const http_server *s)
{
    return s->o.relay_state && *s->o.relay_state ? s->o.relay_state : "./tower-data/relay";
}

ct_status server__integrations_init(http_server *s)
{
    pthread_mutex_init(&s->relay_lock, NULL);
    s->relay_lock_ready = 1;
    if (!s->o.relay_file || !*s->o.relay_file) return CT_OK;
    relay_conf *c = ct_calloc(1, sizeof *c);
    char err[512] = "";
    ct_status st = relay_conf_load(s->o.relay_file, c, err, sizeof err);
    if (st != CT_OK) {
        ct_log(CT_LOG_ERROR, "server", "%s", err[0] ? err : "the relay file cannot be read");
        free(c);
        return CT_USAGE;
    }
    s->relay = c;
    ct_log(CT_LOG_INFO, "server", "integrations: %zu destination(s) of %s (relay state %s)", c->n, s->o.relay_file,
           state_dir(s));
    return CT_OK;
}

void server__integrations_free(http_server *s)
{
    if (s->relay) {
        relay_conf_free(s->relay);
        free(s->relay);
        s->relay = NULL;
    }
    if (s->relay_lock_ready) pthread_mutex_destroy(&s->relay_lock);
    s->relay_lock_ready = 0;
}

static const relay_dest *find_dest(const http_server *s, const char *name)
{
    for (size_t i = 0; s->relay && i < s->relay->n; i++)
        if (!strcmp(s->relay->v[i].name, name)) return &s->relay->v[i];
    return NULL;
}

/* The parts of a URL that may be shown and those that may not: [scheme://]authority without user info
 * (host:port), the user info and the rest (path, query). */
typedef struct url_parts {
    char shown[300];
    char userinfo[300];
    char rest[2048];
} url_parts;

static void url_split(const char *url, url_parts *u)
{
    memset(u, 0, sizeof *u);
    const char *p = strstr(url, "://");
    const char *a = p ? p + 3 : url;
    size_t n = strcspn(a, "/?#");
    const char *host = a;
    for (size_t i = 0; i < n; i++)
        if (a[i] == '@') host = a + i + 1;
    if (host > a) snprintf(u->userinfo, sizeof u->userinfo, "%.*s", (int)(host - a - 1), a);
    snprintf(u->shown, sizeof u->shown, "%.*s%.*s", (int)(a - url), url, (int)(n - (size_t)(host - a)), host);
    snprintf(u->rest, sizeof u->rest, "%s", a + n);
}

/* text with every occurrence of the URL's secret parts (a path longer than "/", user info) replaced by "...". */
static json_t *redacted(const url_parts *u, const char *text)
{
    if (!text) return json_null();
    char *out = ct_strdup(text);
    const char *needles[2] = {strlen(u->rest) > 1 ? u->rest : NULL, u->userinfo[0] ? u->userinfo : NULL};
    for (int k = 0; k < 2; k++) {
        if (!needles[k]) continue;
        size_t nl = strlen(needles[k]);
        char *hit;
        while ((hit = strstr(out, needles[k]))) {
            size_t before = (size_t)(hit - out);
            char *next = ct_sprintf("%.*s...%s", (int)before, out, hit + nl);
            free(out);
            out = next;
        }
    }
    json_t *j = json_string(out);
    if (!j) { /* not UTF-8: the bytes beyond ASCII become '?' */
        for (char *q = out; *q; q++)
            if ((unsigned char)*q >= 0x80) *q = '?';
        j = json_string(out);
    }
    free(out);
    return j;
}

static json_t *str_list(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static const char *kind_name(relay_kind k)
{
    return k == RELAY_WEBHOOK ? "webhook" : k == RELAY_SLACK ? "slack" : k == RELAY_EMAIL ? "email" : "route_planner";
}

static char *dest_path(const http_server *s, const char *name, const char *suffix)
{
    return ct_sprintf("%s/%s%s", state_dir(s), name, suffix);
}

/* The status file's fields into o (breaker "unknown" and nulls when there is none, or it is not readable). */
static void add_status(json_t *o, const http_server *s, const relay_dest *d, const url_parts *u)
{
    static const char *const nums[] = {"delivered", "attempts", "failed", "dead", "skipped", "checkpoint", "backlog"};
    static const char *const times[] = {"lastOkAt", "failingSince"};
    char *path = dest_path(s, d->name, ".status.json");
    json_t *st = NULL;
    struct stat sb;
    FILE *f = fopen(path, "r");
    if (f && fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= STATUS_MAX) {
        char *buf = ct_malloc(STATUS_MAX + 1);
        size_t n = fread(buf, 1, STATUS_MAX, f);
        json_error_t je;
        st = json_loadb(buf, n, 0, &je);
        free(buf);
        if (st && !json_is_object(st)) {
            json_decref(st);
            st = NULL;
        }
    }
    if (f) fclose(f);
    free(path);
    const char *br = st ? json_string_value(json_object_get(st, "breaker")) : NULL;
    if (!br || (strcmp(br, "closed") && strcmp(br, "open") && strcmp(br, "half-open"))) br = "unknown";
    json_object_set_new(o, "breaker", json_string(br));
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        json_t *v = st ? json_object_get(st, nums[i]) : NULL;
        json_object_set_new(o, nums[i], json_is_integer(v) ? json_integer(json_integer_value(v)) : json_null());
    }
    const char *le = st ? json_string_value(json_object_get(st, "lastError")) : NULL;
    json_object_set_new(o, "lastError", le ? redacted(u, le) : json_null());
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        const char *t = st ? json_string_value(json_object_get(st, times[i])) : NULL;
        int64_t sec;
        int32_t ns;
        json_object_set_new(o, times[i], t && evt_time_parse(t, &sec, &ns) == 0 ? json_string(t) : json_null());
    }
    if (st) {
        char buf[48];
        evt_time_format((int64_t)sb.st_mtim.tv_sec, (int32_t)sb.st_mtim.tv_nsec, buf);
        json_object_set_new(o, "statusAt", json_string(buf));
    } else {
        json_object_set_new(o, "statusAt", json_null());
    }
    if (d->kind == RELAY_ROUTE_PLANNER) { /* the held requests (docs/outbound.md "Route planner") */
        json_t *h = st ? json_object_get(st, "held") : NULL, *hs = st ? json_object_get(st, "heldSince") : NULL;
        json_object_set_new(o, "held", json_is_integer(h) ? json_integer(json_integer_value(h)) : json_null());
        json_object_set_new(o, "heldSince", json_is_string(hs) ? json_string(json_string_value(hs)) : json_null());
    }
    json_decref(st);
}

/* Lines of the dead letters file (a last line without its newline counts). */
static uint64_t count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char buf[65536];
    uint64_t n = 0;
    size_t got;
    int last = '\n';
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < got; i++)
            if (buf[i] == '\n') n++;
        last = buf[got - 1];
    }
    if (last != '\n') n++;
    fclose(f);
    return n;
}

static json_t *dest_json(const http_server *s, const relay_dest *d)
{
    url_parts *u = ct_malloc(sizeof *u);
    url_split(d->url, u);
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(d->name));
    json_object_set_new(o, "kind", json_string(kind_name(d->kind)));
    json_object_set_new(o, "endpoint", json_string(u->shown));
    json_object_set_new(o, "signed", json_boolean(d->secret != NULL));
    json_object_set_new(o, "events", str_list(d->events, d->n_events));
    json_object_set_new(o, "warehouses", str_list(d->warehouses, d->n_warehouses));
    json_object_set_new(o, "carriers", str_list(d->carriers, d->n_carriers));
    if (d->exceptions) { /* an exception destination (docs/outbound.md "Exception changes") */
        json_t *ch = json_array();
        for (unsigned bit = 1; bit <= RELAY_EXC_RESOLVED; bit <<= 1)
            if (d->exceptions & bit) json_array_append_new(ch, json_string(relay_exc_change_name(bit)));
        json_object_set_new(o, "exceptions", ch);
        json_object_set_new(o, "views", str_list(d->views, d->n_views));
        json_object_set_new(o, "customers", str_list(d->customers, d->n_customers));
    }
    json_object_set_new(o, "maxAttempts", json_integer(d->max_attempts));
    json_object_set_new(o, "breakerFailures", json_integer(d->breaker_failures));
    json_object_set_new(o, "breakerCooldownSeconds", json_integer((json_int_t)(d->breaker_cooldown_ns / 1000000000LL)));
    add_status(o, s, d, u);
    char *dead = dest_path(s, d->name, ".dead.ndjson");
    json_object_set_new(o, "deadLetters", json_integer((json_int_t)count_lines(dead)));
    free(dead);
    free(u);
    return o;
}

/* One dead letter as shown: the fields the relay writes, attempt errors redacted. */
static json_t *letter_json(const url_parts *u, json_t *in)
{
    json_t *o = json_object();
    static const char *const keep[] = {"seq", "eventId", "type", "destination", "deadAt"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(in, keep[i]);
        if (json_is_string(v) || json_is_integer(v)) json_object_set(o, keep[i], v);
    }
    json_t *att = json_array(), *ia = json_object_get(in, "attempts");
    size_t i;
    json_t *a;
    json_array_foreach(ia, i, a)
    {
        if (!json_is_object(a)) continue;
        json_t *x = json_object();
        json_t *at = json_object_get(a, "at"), *st = json_object_get(a, "status");
        if (json_is_string(at)) json_object_set(x, "at", at);
        if (json_is_integer(st)) json_object_set(x, "status", st);
        const char *e = json_string_value(json_object_get(a, "error"));
        json_object_set_new(x, "error", e ? redacted(u, e) : json_null());
        json_array_append_new(att, x);
    }
    json_object_set_new(o, "attempts", att);
    return o;
}

static int dead_letters(struct mg_connection *c, http_server *s, const relay_dest *d, size_t limit)
{
    char *path = dest_path(s, d->name, ".dead.ndjson");
    FILE *f = fopen(path, "r");
    int err = f ? 0 : errno;
    free(path);
    if (!f && err != ENOENT)
        return server__error(c, s, SERVER_ROUTE_INTEGRATIONS, 500, "STATE_UNREADABLE", NULL,
                             "the dead letters of %s cannot be read: %s", d->name, strerror(err));
    url_parts *u = ct_malloc(sizeof *u);
    url_split(d->url, u);
    /* The newest `limit` letters: a ring of that many, in file order. */
    json_t **ring = ct_calloc(limit, sizeof *ring);
    uint64_t total = 0, unreadable = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (f && (n = getline(&line, &cap, f)) > 0) {
        if (n == 1 && line[0] == '\n') continue;
        total++;
        json_error_t je;
        json_t *o = n <= DEAD_LINE_MAX ? json_loadb(line, (size_t)n, 0, &je) : NULL;
        if (!json_is_object(o)) {
            json_decref(o);
            unreadable++;
            continue;
        }
        size_t slot = (size_t)((total - 1) % limit);
        json_decref(ring[slot]);
        ring[slot] = letter_json(u, o);
        json_decref(o);
        if (cap > DEAD_LINE_MAX) { /* do not keep a huge buffer for the next lines */
            free(line);
            line = NULL;
            cap = 0;
        }
    }
    free(line);
    if (f) fclose(f);
    json_t *items = json_array();
    size_t start = total > limit ? (size_t)(total % limit) : 0;
    for (size_t k = 0; k < limit; k++) {
        json_t *o = ring[(start + k) % limit];
        if (o) json_array_append_new(items, o);
    }
    free(ring);
    free(u);
    json_t *body = json_object();
    json_object_set_new(body, "destination", json_string(d->name));
    json_object_set_new(body, "count", json_integer((json_int_t)total));
    json_object_set_new(body, "unreadable", json_integer((json_int_t)unreadable));
    json_object_set_new(body, "items", items);
    return server__json(c, s, SERVER_ROUTE_INTEGRATIONS, 200, body);
}

int server__integrations(struct mg_connection *c, http_server *s, const server_query *pq)
{
    if (pq->dest[0]) {
        const relay_dest *d = find_dest(s, pq->dest);
        if (!d)
            return server__error(c, s, SERVER_ROUTE_INTEGRATIONS, 404, "NOT_FOUND", NULL,
                                 "no destination \"%s\" in the relay file", pq->dest);
        return dead_letters(c, s, d, (size_t)pq->limit);
    }
    json_t *body = json_object(), *list = json_array();
    json_object_set_new(body, "configured", json_boolean(s->relay != NULL));
    for (size_t i = 0; s->relay && i < s->relay->n; i++) json_array_append_new(list, dest_json(s, &s->relay->v[i]));
    json_object_set_new(body, "destinations", list);
    server__now_json(body, ct_now_ns());
    return server__json(c, s, SERVER_ROUTE_INTEGRATIONS, 200, body);
}

/* "NAME: D delivered, S still dead", the redrive's last line. 0, or -1 if there is none. */
static int summary_line(const char *report, const char *name, unsigned long long *done, unsigned long long *left)
{
    size_t nl = strlen(name);
    for (const char *p = report; *p;) {
        const char *eol = strchr(p, '\n');
        if (!strncmp(p, name, nl) && p[nl] == ':' &&
            sscanf(p + nl + 1, " %llu delivered, %llu still dead", done, left) == 2)
            return 0;
        if (!eol) break;
        p = eol + 1;
    }
    return -1;
}

int server__integration_redrive(struct mg_connection *c, http_server *s, const server_query *pq)
{
    const server_route route = SERVER_ROUTE_INTEGRATION_REDRIVE;
    const relay_dest *d = find_dest(s, pq->dest);
    if (!d)
        return server__error(c, s, route, 404, "NOT_FOUND", NULL, "no destination \"%s\" in the relay file", pq->dest);
    if (!s->o.bus)
        return server__error(c, s, route, 503, "NATS_UNAVAILABLE", NULL,
                             "this server has no NATS connection (--no-nats): a redrive reads the events back from "
                             "the stream");
    if (pthread_mutex_trylock(&s->relay_lock) != 0)
        return server__error(c, s, route, 409, "REDRIVE_RUNNING", NULL,
                             "a redrive is running; try again when it is done");
    char *text = NULL;
    size_t len = 0;
    FILE *rep = open_memstream(&text, &len);
    if (!rep) {
        pthread_mutex_unlock(&s->relay_lock);
        return server__error(c, s, route, 500, "INTERNAL", NULL, "out of memory");
    }
    ct_log(CT_LOG_INFO, "server", "integrations: redrive of %s's dead letters", d->name);
    int rc = relay_redrive(s->o.bus, s->relay, state_dir(s), d->name, rep);
    fclose(rep);
    pthread_mutex_unlock(&s->relay_lock);
    url_parts *u = ct_malloc(sizeof *u);
    url_split(d->url, u);
    json_t *lines = json_array();
    unsigned long long done = 0, left = 0;
    int have = summary_line(text ? text : "", d->name, &done, &left) == 0;
    for (char *p = text, *eol; p && *p; p = eol ? eol + 1 : p + strlen(p)) {
        eol = strchr(p, '\n');
        if (eol) *eol = '\0';
        if (*p) json_array_append_new(lines, redacted(u, p));
        if (!have && strstr(p, "): delivered")) done++;
        if (!eol) break;
    }
    free(text);
    free(u);
    if (!have) {
        char *dead = dest_path(s, d->name, ".dead.ndjson");
        left = count_lines(dead);
        free(dead);
    }
    json_t *body = json_object();
    json_object_set_new(body, "destination", json_string(d->name));
    json_object_set_new(body, "delivered", json_integer((json_int_t)done));
    json_object_set_new(body, "stillDead", json_integer((json_int_t)left));
    json_object_set_new(body, "ok", json_boolean(rc == 0));
    json_object_set_new(body, "report", lines);
    return server__json(c, s, route, 200, body);
}

/* ---- the relay on the entities: what each destination did about an order, a shipment (docs/outbound.md) ---- */

/* "HH:MM" (UTC) of an RFC 3339 time, or "?". */
static void hhmm(const char *iso, char out[8])
{
    if (iso && strlen(iso) >= 16 && iso[13] == ':') snprintf(out, 8, "%.5s", iso + 11);
    else snprintf(out, 8, "?");
}

/* A record's line for people: "notify: deliveryCompleted delivered 10:42", "erp: routeDispatched failing
 * since 10:40 (HTTP 503)". */
static void record_text(json_t *rec)
{
    const char *dest = json_string_value(json_object_get(rec, "destination"));
    const char *st = json_string_value(json_object_get(rec, "status"));
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *err = json_string_value(json_object_get(rec, "error"));
    char at[8], since[8];
    hhmm(json_string_value(json_object_get(rec, "at")), at);
    hhmm(json_string_value(json_object_get(rec, "since")), since);
    int failing = st && (!strcmp(st, "failing") || !strcmp(st, "queued"));
    char *t = ct_sprintf("%s: %s %s %s%s%s%.80s%s", dest ? dest : "?", type ? type : "?", st ? st : "?",
                         failing ? "since " : "", failing ? since : at, err ? " (" : "", err ? err : "", err ? ")" : "");
    json_object_set_new(rec, "text", json_string(t));
    free(t);
}

/* Whether out has a record of the same destination and event (an event about the order and its shipment). */
static int listed_already(json_t *out, json_t *rec)
{
    size_t i;
    json_t *x;
    json_array_foreach(out, i, x)
    {
        if (json_equal(json_object_get(x, "destination"), json_object_get(rec, "destination")) &&
            json_equal(json_object_get(x, "eventId"), json_object_get(rec, "eventId")))
            return 1;
    }
    return 0;
}

/* The records of one entity into out, each with "about" ("order O1", "shipment S1"), errors redacted. */
static void add_records(const http_server *s, relay_reader *rd, char kind, const char *id, json_t *out)
{
    json_t *recs = relay_reader_entity(rd, kind, id);
    size_t i;
    json_t *rec;
    json_array_foreach(recs, i, rec)
    {
        const relay_dest *d = find_dest(s, json_string_value(json_object_get(rec, "destination")));
        if (!d || listed_already(out, rec)) continue; /* no longer in the relay file; or said for the order */
        const char *err = json_string_value(json_object_get(rec, "error"));
        if (err) {
            url_parts *u = ct_malloc(sizeof *u);
            url_split(d->url, u);
            json_object_set_new(rec, "error", redacted(u, err));
            free(u);
        }
        char *about = ct_sprintf("%s %s", kind == 'o' ? "order" : kind == 's' ? "shipment" : "route", id);
        json_object_set_new(rec, "about", json_string(about));
        free(about);
        record_text(rec);
        json_array_append(out, rec);
    }
    json_decref(recs);
}

static void planner_state(const http_server *s, const relay_dest *d, char breaker[16], char since[48]);
static json_t *route_request(const relay_dest *d, json_t *rec, const char *breaker, const char *failing);

/* A route planner's records say why a request waits ("route planner unavailable since 10:42"). */
static void planner_reasons(const http_server *s, json_t *out)
{
    size_t i;
    json_t *rec;
    json_array_foreach(out, i, rec)
    {
        const relay_dest *d = find_dest(s, json_string_value(json_object_get(rec, "destination")));
        if (!d || d->kind != RELAY_ROUTE_PLANNER) continue;
        char breaker[16], failing[48];
        planner_state(s, d, breaker, failing);
        json_t *rr = route_request(d, rec, breaker, failing);
        json_object_set(rec, "reason", json_object_get(rr, "reason"));
        json_object_set(rec, "text", json_object_get(rr, "reason"));
        json_decref(rr);
    }
}

void server__integrations_entity(http_server *s, char kind, const char *id, json_t *body)
{
    if (!s->relay || !json_is_object(body)) return;
    relay_reader *rd = relay_reader_open(state_dir(s));
    json_t *out = json_array();
    if (rd) {
        add_records(s, rd, kind, id, out);
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(body, "shipments"), i, x)
        {
            const char *sid = json_string_value(json_object_get(x, "shipmentId"));
            if (sid && (kind != 's' || strcmp(sid, id)) && i < 100) add_records(s, rd, 's', sid, out);
        }
        relay_reader_close(rd);
    }
    planner_reasons(s, out);
    json_object_set_new(body, "deliveries", out);
}

/* A route planner destination's breaker and failingSince from its status file ("" when unknown). */
static void planner_state(const http_server *s, const relay_dest *d, char breaker[16], char since[48])
{
    json_t *o = json_object();
    url_parts *u = ct_malloc(sizeof *u);
    url_split(d->url, u);
    add_status(o, s, d, u);
    free(u);
    snprintf(breaker, 16, "%s", json_string_value(json_object_get(o, "breaker")));
    const char *f = json_string_value(json_object_get(o, "failingSince"));
    snprintf(since, 48, "%s", f ? f : "");
    json_decref(o);
}

/* Why a pending_route shipment waits, from the planner's record of it and its breaker. */
static json_t *route_request(const relay_dest *d, json_t *rec, const char *breaker, const char *failing)
{
    const char *st = json_string_value(json_object_get(rec, "status"));
    const char *at = json_string_value(json_object_get(rec, "at"));
    char t[8], reason[160];
    const char *state = st;
    if (st && !strcmp(st, "queued")) {
        int down = strcmp(breaker, "open") == 0 || strcmp(breaker, "half-open") == 0;
        hhmm(failing[0] ? failing : json_string_value(json_object_get(rec, "since")), t);
        state = down || failing[0] ? "held" : "queued";
        snprintf(reason, sizeof reason, down ? "route planner unavailable since %s" : failing[0] ? "route planner failing since %s" : "route request queued since %s", t);
    } else {
        hhmm(at, t);
        snprintf(reason, sizeof reason, "route %s %s", st && !strcmp(st, "refused") ? "request refused" : "requested", t);
    }
    json_t *o = json_pack("{s:s, s:s, s:s}", "destination", d->name, "state", state ? state : "?", "reason", reason);
    json_object_set(o, "since", json_object_get(rec, st && !strcmp(st, "queued") ? "since" : "at"));
    return o;
}

void server__integrations_pending(http_server *s, json_t *items)
{
    const relay_dest *d = NULL;
    for (size_t i = 0; s->relay && i < s->relay->n && !d; i++)
        if (s->relay->v[i].kind == RELAY_ROUTE_PLANNER) d = &s->relay->v[i];
    relay_reader *rd = d ? relay_reader_open(state_dir(s)) : NULL;
    if (!rd) return;
    char breaker[16], failing[48];
    planner_state(s, d, breaker, failing);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *sid = json_string_value(json_object_get(it, "shipmentId"));
        json_t *recs = sid ? relay_reader_entity(rd, 's', sid) : NULL;
        size_t k;
        json_t *rec;
        json_array_foreach(recs, k, rec)
        {
            const char *dn = json_string_value(json_object_get(rec, "destination"));
            if (dn && !strcmp(dn, d->name)) json_object_set_new(it, "routeRequest", route_request(d, rec, breaker, failing));
        }
        json_decref(recs);
    }
    relay_reader_close(rd);
}
