/* The REST routes under /api/v1: summary, views with filters and paging, orders, shipments, search, dead letters. */
#include "server_int.h"
#include "stream_int.h"
#include "leadtimes.h"
#include "ct_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* sort=priority (docs/exceptions.md): breached first, then the share of the SLA used, then age; sort=slack: the
 * least slack (promisedBy - predictedBy) first; newest, warehouse, carrier as named. The whole filtered view is
 * read and sorted (at most PRIORITY_MAX items); the cursor is an offset. */
#define PRIORITY_MAX 20000

typedef struct prio {
    json_t *item;
    server_sort by; /* what the page is sorted by (the same in every element: qsort takes no context) */
    const char *part; /* sort=warehouse or carrier: the item's id ("" for none; borrowed from item) */
    int breached;
    double share;
    int64_t since;
    uint64_t seq; /* dead letters: their sequence (the raw bytes are added to the page's items only) */
    int has_slack; /* sort=slack: the item has a prediction and a promise (at_risk items do) */
    int64_t slack; /* promisedBy - predictedBy (ns; negative: expected late) */
} prio;

typedef struct prio_ctx {
    prio *v;
    size_t n, cap;
    int64_t now_ns;
    server_sort by;
} prio_ctx;

static int64_t ts_ns(const Tower__V1__Timestamp *t) { return t ? t->seconds * 1000000000LL + t->nanos : 0; }

/* One item with its priority, from the item itself. */
static int prio_collect(void *vctx, const Tower__V1__ViewItem *it)
{
    prio_ctx *c = vctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->v = ct_realloc(c->v, c->cap * sizeof *c->v);
    }
    int64_t since = ts_ns(it->since), due = ts_ns(it->sla_due_at);
    const char *part = c->by == SERVER_SORT_WAREHOUSE ? it->warehouse_id : c->by == SERVER_SORT_CARRIER ? it->carrier_id : NULL;
    json_t *o = store_item_to_json(it, c->now_ns);
    json_t *pj = json_object_get(o, c->by == SERVER_SORT_WAREHOUSE ? "warehouseId" : "carrierId");
    int has_slack = it->predicted_by && it->promised_by;
    c->v[c->n++] = (prio){o, c->by, part && pj ? json_string_value(pj) : "", due && due <= c->now_ns,
                          due > since ? (double)(c->now_ns - since) / (double)(due - since) : -1.0, since,
                          it->has_seq ? it->seq : 0, has_slack,
                          has_slack ? ts_ns(it->promised_by) - ts_ns(it->predicted_by) : 0};
    return 0;
}

static int prio_cmp(const void *a, const void *b)
{
    const prio *x = a, *y = b;
    if (x->by == SERVER_SORT_WAREHOUSE || x->by == SERVER_SORT_CARRIER) {
        /* By id (items without one last), then oldest first. */
        int c = (!*x->part) - (!*y->part);
        if (!c) c = strcmp(x->part, y->part);
        if (c) return c;
    } else if (x->by == SERVER_SORT_NEWEST) {
        if (x->since != y->since) return x->since > y->since ? -1 : 1;
    } else if (x->by == SERVER_SORT_SLACK) {
        /* The least slack first (the latest against its promise); items without a prediction last. */
        if (x->has_slack != y->has_slack) return y->has_slack - x->has_slack;
        if (x->slack != y->slack) return x->slack < y->slack ? -1 : 1;
    } else {
        if (x->breached != y->breached) return y->breached - x->breached;
        if (x->share != y->share) return x->share > y->share ? -1 : 1;
    }
    if (x->since != y->since) return x->since < y->since ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x->item, "key")), json_string_value(json_object_get(y->item, "key")));
}

static ct_status priority_page(store_reader *r, const store_query *q0, server_sort by, collect_ctx *cc, char **next)
{
    store_query q = *q0;
    size_t offset = 0;
    if (q.cursor) {
        char *end = NULL;
        if (q.cursor[0] != 'p' || (offset = strtoull(q.cursor + 1, &end, 10), !end || *end)) return CT_INVALID;
    }
    q.cursor = NULL;
    q.limit = PRIORITY_MAX;
    prio_ctx pc = {NULL, 0, 0, cc->now_ns, by};
    ct_status st = store_view_scan(r, &q, prio_collect, &pc, NULL);
    if (pc.n) qsort(pc.v, pc.n, sizeof *pc.v, prio_cmp);
    for (size_t i = offset; i < pc.n && i < offset + q0->limit; i++) {
        if (cc->raw && pc.v[i].seq) add_raw(pc.v[i].item, r, pc.v[i].seq);
        json_array_append(cc->items, pc.v[i].item);
    }
    if (offset + q0->limit < pc.n) *next = ct_sprintf("p%zu", offset + q0->limit);
    for (size_t i = 0; i < pc.n; i++) json_decref(pc.v[i].item);
    free(pc.v);
    return st;
}

static int view_page(struct mg_connection *c, http_server *s, const server_query *pq, int raw)
{
    server_route route = pq->route;
    fold_view v = pq->view;
    int64_t now = ct_now_ns(), before = pq->has_older_than ? now - pq->older_than_ns : 0;
    store_reader *r = NULL;
    ct_status st = server__begin(s, &r);
    if (st != CT_OK)
        return server__error(c, s, route, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    collect_ctx cc = {json_array(), now, r, raw};
    char me[EVT_MAX_ACTOR + 1] = "";
    http_role role;
    if (pq->assignee_me) server__caller(c, s, me, sizeof me, &role);
    server_ids ids;
    server__resolve_ids(r, pq, &ids);
    store_query q = {.view = v, .warehouse = *ids.warehouse ? ids.warehouse : NULL,
                     .carrier = *ids.carrier ? ids.carrier : NULL, .since_before_ns = before,
                     .customer = *ids.customer ? ids.customer : NULL, .channel = *pq->channel ? pq->channel : NULL,
                     .reason = *pq->reason ? pq->reason : NULL, .sla = pq->sla,
                     .cursor = *pq->cursor ? pq->cursor : NULL, .limit = (size_t)pq->limit,
                     .state = *pq->state ? pq->state : NULL,
                     .assignee = pq->has_assignee ? (pq->assignee_me ? me : pq->assignee) : NULL, .now_ns = now,
                     .code = *pq->code ? pq->code : NULL};
    char *next = NULL;
    if (pq->sort != SERVER_SORT_AGE) st = priority_page(r, &q, pq->sort, &cc, &next);
    else st = store_view_scan(r, &q, collect, &cc, &next);
    store_stats ss;
    store_reader_stats(r, &ss);
    /* count: the items the filters select over all pages (the websocket snapshot counts alike). */
    uint64_t count = 0;
    if (st == CT_OK) st = store_view_count(r, &q, &count);
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
    if (v == FOLD_VIEW_PENDING_ROUTE && !raw) server__integrations_pending(s, cc.items); /* held, and why */
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
        store_life_fig lf;
        store_life_figures(r, (fold_view)v, now, &lf);
        json_object_set_new(o, "unacknowledged", json_integer((json_int_t)lf.unacknowledged));
        if (lf.oldest_unacknowledged_ns) {
            char buf[48];
            evt_time_format(lf.oldest_unacknowledged_ns / 1000000000LL, (int32_t)(lf.oldest_unacknowledged_ns % 1000000000LL), buf);
            int64_t age = (now - lf.oldest_unacknowledged_ns) / 1000000000LL;
            json_object_set_new(o, "oldestUnacknowledgedSince", json_string(buf));
            json_object_set_new(o, "oldestUnacknowledgedAgeSeconds", json_integer(age < 0 ? 0 : age));
        } else {
            json_object_set_new(o, "oldestUnacknowledgedSince", json_null());
            json_object_set_new(o, "oldestUnacknowledgedAgeSeconds", json_null());
        }
        json_object_set_new(o, "snoozed", json_integer((json_int_t)lf.snoozed));
        json_object_set_new(o, "breached", json_integer((json_int_t)lf.breached));
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
    /* A demo clock (towerd up --warp): how many business seconds pass per real second, for the dashboard. */
    if (ct_clock_factor() != 1.0) json_object_set_new(o, "warp", json_real(ct_clock_factor()));
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
    /* Dropped at publish by this process's publishers since it started (README "publishDuplicates"). */
    server_pub_dups pd[8];
    size_t npd = server__publish_dups(s, pd, 8);
    json_t *pdj = json_object();
    for (size_t i = 0; i < npd; i++) json_object_set_new(pdj, pd[i].source, json_integer((json_int_t)pd[i].count));
    json_object_set_new(body, "publishDuplicates", pdj);
    server__now_json(body, now);
    json_object_set_new(body, "views", views);
    return server__json(c, s, SERVER_ROUTE_SUMMARY, 200, body);
}

static int entity(struct mg_connection *c, http_server *s, server_route route, char kind, const char *id)
{
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
    server__integrations_entity(s, kind, id, body); /* the relay's deliveries about it */
    return server__json(c, s, route, 200, body);
}

static int search(struct mg_connection *c, http_server *s, const char *q)
{
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
    /* On the heap: civetweb's worker threads have small stacks. */
    server_query *pq = ct_malloc(sizeof *pq);
    server_query_err pe;
    int bad = server_query_parse(uri, ri->query_string, pq, &pe);
    server_route route = pq->route;
    int rc;
    /* No route is 404; then the method (405) and the token (401, 403) come before any parameter. */
    if (route == SERVER_ROUTE_OTHER_API) {
        rc = server__error(c, s, route, pe.status, pe.code, pe.field, "%s", pe.message);
        goto out;
    }
    if (strcmp(ri->request_method, pq->method) != 0) {
        rc = server__error(c, s, route, 405, "METHOD_NOT_ALLOWED", NULL, "%s is not allowed here; use %s",
                           ri->request_method, pq->method);
        goto out;
    }
    int auth = server__auth(c, s, pq->need);
    if (auth) {
        rc = server__deny(c, s, route, auth, pq->need);
        goto out;
    }
    if (bad) {
        rc = server__error(c, s, route, pe.status, pe.code, pe.field, "%s", pe.message);
        goto out;
    }
    switch (route) {
    case SERVER_ROUTE_INGEST: rc = server__ingest(c, s); break;
    case SERVER_ROUTE_REDRIVE: rc = server__redrive(c, s, pq->dl_seq); break;
    case SERVER_ROUTE_STREAM:
        rc = server__error(c, s, route, 400, "UPGRADE_REQUIRED", NULL,
                           "the live stream is a websocket: connect with Upgrade: websocket");
        break;
    case SERVER_ROUTE_SUMMARY: rc = summary(c, s); break;
    case SERVER_ROUTE_VIEWS: rc = view_page(c, s, pq, 0); break;
    case SERVER_ROUTE_ORDERS: rc = entity(c, s, route, 'o', pq->id); break;
    case SERVER_ROUTE_SHIPMENTS: rc = entity(c, s, route, 's', pq->id); break;
    case SERVER_ROUTE_SEARCH: rc = search(c, s, pq->q); break;
    case SERVER_ROUTE_DEAD_LETTERS: rc = view_page(c, s, pq, 1); break;
    case SERVER_ROUTE_TREND: rc = stream__trend(c, s); break;
    case SERVER_ROUTE_EXCEPTIONS: rc = server__exceptions_list(c, s, pq); break;
    case SERVER_ROUTE_ACTIONS: rc = server__act(c, s, pq); break;
    case SERVER_ROUTE_ME: rc = server__me(c, s); break;
    case SERVER_ROUTE_VALUES: rc = server__values(c, s, pq); break;
    case SERVER_ROUTE_LEADTIMES: rc = server__leadtimes(c, s, ri->query_string); break;
    case SERVER_ROUTE_SLA_RULES: rc = server__sla_rules(c, s); break;
    case SERVER_ROUTE_INTEGRATIONS: rc = server__integrations(c, s, pq); break;
    case SERVER_ROUTE_INTEGRATION_REDRIVE: rc = server__integration_redrive(c, s, pq); break;
    case SERVER_ROUTE_PRODUCERS: rc = server__producers(c, s); break;
    case SERVER_ROUTE_REFERENCE: rc = server__reference(c, s, pq); break;
    case SERVER_ROUTE_RUNBOOKS: rc = server__runbooks(c, s, uri, ri->query_string); break;
    default: rc = server__error(c, s, route, 404, "NOT_FOUND", NULL, "no route %.200s", uri); break;
    }
out:
    if (strcmp(ri->request_method, "GET")) server__access_log(c, s, rc); /* every write: who did it, or tried */
    free(pq);
    return rc;
}
