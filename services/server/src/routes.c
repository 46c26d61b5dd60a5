/* The REST routes under /api/v1: summary, views with filters and paging, orders, shipments, search, dead letters. */
#include "server_int.h"
#include "stream_int.h"
#include "ct_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

/* A query parameter: 1 found, 0 absent, -1 too long. */
static int param(const struct mg_request_info *ri, const char *name, char *buf, size_t cap)
{
    if (!ri->query_string) return 0;
    int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, buf, cap);
    if (n == -1) return 0;
    if (n < 0) return -1;
    return 1;
}

typedef struct collect_ctx {
    json_t *items;
    int64_t now_ns;
    store_reader *r;
    int raw;  /* dead letters: add the rejected bytes */
} collect_ctx;

static void add_raw(json_t *o, store_reader *r, uint64_t seq)
{
    Tower__V1__DeadLetter *d = NULL;
    if (store_dead_letter(r, seq, &d) != CT_OK) return;
    if (d->has_raw) {
        json_t *txt = json_stringn((const char *)d->raw.data, d->raw.len); /* NULL unless valid UTF-8 */
        if (txt) {
            json_object_set_new(o, "raw", txt);
        } else {
            char *hex = ct_malloc(d->raw.len * 2 + 1);
            for (size_t i = 0; i < d->raw.len; i++) snprintf(hex + 2 * i, 3, "%02x", d->raw.data[i]);
            json_object_set_new(o, "rawHex", json_string(hex));
            free(hex);
        }
    }
    if (d->content_type) json_object_set_new(o, "contentType", json_string(d->content_type));
    tower__v1__dead_letter__free_unpacked(d, NULL);
}

static int collect(void *vctx, const Tower__V1__ViewItem *it)
{
    collect_ctx *c = vctx;
    json_t *o = store_item_to_json(it, c->now_ns);
    if (c->raw && it->has_seq) add_raw(o, c->r, it->seq);
    json_array_append_new(c->items, o);
    return 0;
}

static int view_page(struct mg_connection *c, http_server *s, server_route route, const char *name, int raw)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    fold_view v;
    if (fold_view_parse(name, &v) != 0)
        return server__error(c, s, route, 404, "UNKNOWN_VIEW", NULL, "no view \"%.64s\"", name);

    char wh[80] = "", ca[80] = "", older[32] = "", lim[16] = "", cursor[1100] = "";
    if (param(ri, "warehouse", wh, sizeof wh) < 0)
        return server__error(c, s, route, 400, "INVALID_PARAMETER", "warehouse", "warehouse is too long");
    if (param(ri, "carrier", ca, sizeof ca) < 0)
        return server__error(c, s, route, 400, "INVALID_PARAMETER", "carrier", "carrier is too long");
    if (param(ri, "cursor", cursor, sizeof cursor) < 0)
        return server__error(c, s, route, 400, "INVALID_PARAMETER", "cursor", "cursor is too long");
    int64_t limit = DEFAULT_LIMIT;
    int got = param(ri, "limit", lim, sizeof lim);
    if (got < 0 || (got && (ct_parse_int(lim, &limit) != 0 || limit < 1 || limit > MAX_LIMIT)))
        return server__error(c, s, route, 400, "INVALID_PARAMETER", "limit", "limit must be an integer from 1 to %d",
                             MAX_LIMIT);
    int64_t now = ct_now_ns(), before = 0;
    got = param(ri, "olderThan", older, sizeof older);
    if (got) {
        int64_t d = 0;
        if (got < 0 || ct_parse_duration_ns(older, &d) != 0)
            return server__error(c, s, route, 400, "INVALID_PARAMETER", "olderThan",
                                 "olderThan must be a duration such as 90m, 2h or 1d");
        before = now - d;
    }

    store_reader *r = NULL;
    ct_status st = server__begin(s, &r);
    if (st != CT_OK)
        return server__error(c, s, route, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    collect_ctx cc = {json_array(), now, r, raw};
    store_query q = {.view = v, .warehouse = *wh ? wh : NULL, .carrier = *ca ? ca : NULL,
                     .since_before_ns = before, .cursor = *cursor ? cursor : NULL, .limit = (size_t)limit};
    char *next = NULL;
    st = store_view_scan(r, &q, collect, &cc, &next);
    store_stats ss;
    store_reader_stats(r, &ss);
    uint64_t count = store_reader_count(r, v);
    server__end(s, r);
    if (st == CT_INVALID) {
        json_decref(cc.items);
        return server__error(c, s, route, 400, "INVALID_PARAMETER", "cursor", "cursor is not one this server gave");
    }
    if (st != CT_OK) {
        json_decref(cc.items);
        free(next);
        return server__error(c, s, route, 500, "STORE_ERROR", NULL, "reading the view failed");
    }
    json_t *body = json_object();
    json_object_set_new(body, "view", json_string(fold_view_name(v)));
    json_object_set_new(body, "count", json_integer((json_int_t)count));
    json_object_set_new(body, "asOfSeq", json_integer((json_int_t)ss.applied_seq));
    json_object_set_new(body, "items", cc.items);
    json_object_set_new(body, "nextCursor", next ? json_string(next) : json_null());
    free(next);
    return server__json(c, s, route, 200, body);
}

static int first_since(void *ctx, const Tower__V1__ViewItem *it)
{
    *(const Tower__V1__Timestamp **)ctx = NULL;
    if (it->since) {
        static _Thread_local Tower__V1__Timestamp t;
        t = *it->since;
        *(const Tower__V1__Timestamp **)ctx = &t;
    }
    return 1;
}

static void breakdown_add(void *ctx, const char *id, uint64_t n)
{
    json_object_set_new(ctx, id, json_integer((json_int_t)n));
}

json_t *server__summary_views(store_reader *r, int64_t now, int breakdown)
{
    json_t *views = json_object();
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        const Tower__V1__Timestamp *t = NULL;
        store_query q = {.view = (fold_view)v, .limit = 1};
        store_view_scan(r, &q, first_since, &t, NULL);
        json_t *o = json_object();
        json_object_set_new(o, "count", json_integer((json_int_t)store_reader_count(r, (fold_view)v)));
        if (t) {
            char buf[48];
            evt_time_format(t->seconds, t->nanos, buf);
            int64_t age = now / 1000000000LL - t->seconds;
            json_object_set_new(o, "oldestSince", json_string(buf));
            json_object_set_new(o, "oldestAgeSeconds", json_integer(age < 0 ? 0 : age));
        } else {
            json_object_set_new(o, "oldestSince", json_null());
            json_object_set_new(o, "oldestAgeSeconds", json_null());
        }
        if (breakdown) {
            json_t *w = json_object(), *ca = json_object();
            store_reader_breakdown(r, (fold_view)v, 'w', breakdown_add, w);
            store_reader_breakdown(r, (fold_view)v, 'c', breakdown_add, ca);
            json_object_set_new(o, "byWarehouse", w);
            json_object_set_new(o, "byCarrier", ca);
        }
        json_object_set_new(views, fold_view_name((fold_view)v), o);
    }
    return views;
}

void server__now_json(json_t *o, int64_t now)
{
    char buf[48];
    evt_time_format(now / 1000000000LL, (int32_t)(now % 1000000000LL), buf);
    json_object_set_new(o, "now", json_string(buf));
}

static int summary(struct mg_connection *c, http_server *s)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_SUMMARY, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    int64_t now = ct_now_ns();
    store_stats ss;
    store_reader_stats(r, &ss);
    json_t *views = server__summary_views(r, now, 1);
    server__end(s, r);
    json_t *body = json_object();
    json_object_set_new(body, "appliedSeq", json_integer((json_int_t)ss.applied_seq));
    if (s->o.bus) {
        bus_stream_state bs;
        if (bus_stream_info(s->o.bus, &bs) == CT_OK) {
            json_object_set_new(body, "streamLastSeq", json_integer((json_int_t)bs.last_seq));
            json_object_set_new(body, "lag",
                                json_integer(bs.last_seq > ss.applied_seq ? (json_int_t)(bs.last_seq - ss.applied_seq) : 0));
        }
    }
    json_object_set_new(body, "events", json_integer((json_int_t)ss.events));
    json_object_set_new(body, "duplicates", json_integer((json_int_t)ss.duplicates));
    json_object_set_new(body, "deadLetters", json_integer((json_int_t)ss.dead_letters));
    server__now_json(body, now);
    json_object_set_new(body, "views", views);
    return server__json(c, s, SERVER_ROUTE_SUMMARY, 200, body);
}

static int entity(struct mg_connection *c, http_server *s, server_route route, char kind, const char *id)
{
    if (!*id || strlen(id) > EVT_MAX_ID || strchr(id, '/'))
        return server__error(c, s, route, 404, "NOT_FOUND", NULL, "no such %s", kind == 'o' ? "order" : "shipment");
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, route, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    json_t *body = NULL;
    ct_status st = store_entity_json(r, kind, id, ct_now_ns(), &body);
    server__end(s, r);
    if (st == CT_NOT_FOUND)
        return server__error(c, s, route, 404, "NOT_FOUND", NULL, "no %s \"%s\" in the store",
                             kind == 'o' ? "order" : "shipment", id);
    if (st != CT_OK) return server__error(c, s, route, 500, "STORE_ERROR", NULL, "reading failed");
    return server__json(c, s, route, 200, body);
}

static int search(struct mg_connection *c, http_server *s)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    char q[EVT_MAX_ID + 2] = "";
    int got = param(ri, "q", q, sizeof q);
    if (got <= 0 || !*q)
        return server__error(c, s, SERVER_ROUTE_SEARCH, 400, "INVALID_PARAMETER", "q",
                             "q is required: an order id, shipment id or customer id (prefix), at most %d characters",
                             EVT_MAX_ID);
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_SEARCH, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    json_t *body = NULL;
    ct_status st = store_search(r, q, 50, &body);
    server__end(s, r);
    if (st != CT_OK) return server__error(c, s, SERVER_ROUTE_SEARCH, 400, "INVALID_PARAMETER", "q", "q is not searchable");
    return server__json(c, s, SERVER_ROUTE_SEARCH, 200, body);
}

int server__api(struct mg_connection *c, void *cbdata)
{
    http_server *s = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *uri = ri->local_uri ? ri->local_uri : "";
    server_route route = SERVER_ROUTE_OTHER_API;
    if (!strcmp(uri, "/api/v1/summary")) route = SERVER_ROUTE_SUMMARY;
    else if (!strncmp(uri, "/api/v1/views/", 14)) route = SERVER_ROUTE_VIEWS;
    else if (!strncmp(uri, "/api/v1/orders/", 15)) route = SERVER_ROUTE_ORDERS;
    else if (!strncmp(uri, "/api/v1/shipments/", 18)) route = SERVER_ROUTE_SHIPMENTS;
    else if (!strcmp(uri, "/api/v1/search")) route = SERVER_ROUTE_SEARCH;
    else if (!strcmp(uri, "/api/v1/dead-letters")) route = SERVER_ROUTE_DEAD_LETTERS;
    else if (!strcmp(uri, "/api/v1/events")) route = SERVER_ROUTE_INGEST;
    else if (!strcmp(uri, "/api/v1/trend")) route = SERVER_ROUTE_TREND;
    else if (!strcmp(uri, "/api/v1/stream")) route = SERVER_ROUTE_STREAM;
    else if (!strncmp(uri, "/api/v1/dead-letters/", 21)) route = SERVER_ROUTE_REDRIVE;
    uint64_t dl_seq = 0;
    if (route == SERVER_ROUTE_REDRIVE) {
        /* /api/v1/dead-letters/{seq}/redrive */
        const char *p = uri + 21;
        char *end = NULL;
        dl_seq = strtoull(p, &end, 10);
        if (end == p || *p < '1' || *p > '9' || strcmp(end, "/redrive") != 0 || end - p > 19)
            route = SERVER_ROUTE_OTHER_API;
    }
    if (route == SERVER_ROUTE_OTHER_API)
        return server__error(c, s, route, 404, "NOT_FOUND", NULL, "no route %.200s", uri);

    const char *method = route == SERVER_ROUTE_INGEST || route == SERVER_ROUTE_REDRIVE ? "POST" : "GET";
    http_role need = route == SERVER_ROUTE_INGEST ? HTTP_ROLE_INGEST
                   : route == SERVER_ROUTE_REDRIVE ? HTTP_ROLE_OPERATOR : HTTP_ROLE_VIEWER;
    if (strcmp(ri->request_method, method) != 0)
        return server__error(c, s, route, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed here; use %s",
                             ri->request_method, method);
    int auth = server__auth(c, s, need);
    if (auth) return server__deny(c, s, route, auth, need);
    if (route == SERVER_ROUTE_INGEST) return server__ingest(c, s);
    if (route == SERVER_ROUTE_REDRIVE) return server__redrive(c, s, dl_seq);
    if (route == SERVER_ROUTE_STREAM)
        return server__error(c, s, route, 400, "UPGRADE_REQUIRED", NULL,
                             "the live stream is a websocket: connect with Upgrade: websocket");
    switch (route) {
    case SERVER_ROUTE_SUMMARY: return summary(c, s);
    case SERVER_ROUTE_VIEWS: return view_page(c, s, route, uri + 14, 0);
    case SERVER_ROUTE_ORDERS: return entity(c, s, route, 'o', uri + 15);
    case SERVER_ROUTE_SHIPMENTS: return entity(c, s, route, 's', uri + 18);
    case SERVER_ROUTE_SEARCH: return search(c, s);
    case SERVER_ROUTE_DEAD_LETTERS: return view_page(c, s, route, "dead_letters", 1);
    case SERVER_ROUTE_TREND: return stream__trend(c, s);
    default: return server__error(c, s, route, 404, "NOT_FOUND", NULL, "no route %.200s", uri);
    }
}
