/* What the dashboard offers and colours by: GET /api/v1/values (the filter values present in the store),
 * GET /api/v1/sla/rules (the SLA rules this server was started with), and the case-insensitive
 * resolution of the warehouse, carrier and customer filters of a view page. */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* At most this many distinct values per list; the reasons are read from at most VALUES_SCAN items. */
#define VALUES_MAX 500
#define VALUES_SCAN 20000

/* ---- case-insensitive filters ---- */

typedef struct ci_ctx {
    const char *want;
    char *out;
    size_t cap;
    int exact;
} ci_ctx;

static void ci_match(void *vctx, const char *id, uint64_t n)
{
    (void)n;
    ci_ctx *c = vctx;
    if (c->exact || strcasecmp(id, c->want) != 0) return;
    c->exact = strcmp(id, c->want) == 0;
    snprintf(c->out, c->cap, "%s", id);
}

/* The stored id of the view's warehouses (kind 'w') or carriers ('c') equal to want ignoring case; want
 * itself when none is. */
static void resolve_part(store_reader *r, fold_view v, char kind, const char *want, char *out, size_t cap)
{
    snprintf(out, cap, "%s", want);
    if (!*want) return;
    ci_ctx c = {want, out, cap, 0};
    store_reader_breakdown(r, v, kind, ci_match, &c);
}

void server__resolve_ids(store_reader *r, const server_query *pq, server_ids *ids)
{
    resolve_part(r, pq->view, 'w', pq->warehouse, ids->warehouse, sizeof ids->warehouse);
    resolve_part(r, pq->view, 'c', pq->carrier, ids->carrier, sizeof ids->carrier);
    snprintf(ids->customer, sizeof ids->customer, "%s", pq->customer);
    if (pq->customer[0]) store_reader_customer_resolve(r, pq->customer, ids->customer, sizeof ids->customer);
}

/* ---- GET /api/v1/values ---- */

/* Counts per id, in an object; a new id beyond VALUES_MAX is dropped and noted. */
typedef struct tally {
    json_t *counts;
    int truncated;
} tally;

static void tally_add(tally *t, const char *id, uint64_t n)
{
    json_t *old = json_object_get(t->counts, id);
    if (!old && json_object_size(t->counts) >= VALUES_MAX) {
        t->truncated = 1;
        return;
    }
    json_object_set_new(t->counts, id, json_integer(json_integer_value(old) + (json_int_t)n));
}

static void tally_breakdown(void *ctx, const char *id, uint64_t n) { tally_add(ctx, id, n); }

static int reason_seen(void *ctx, const Tower__V1__ViewItem *it)
{
    if (it->reason && *it->reason) tally_add(ctx, it->reason, 1);
    if (it->last_failure && *it->last_failure) tally_add(ctx, it->last_failure, 1);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* [{"id","count"}...] in id order (a new reference); t->counts is released. */
static json_t *tally_list(tally *t)
{
    size_t n = json_object_size(t->counts), i = 0;
    const char **keys = ct_malloc((n ? n : 1) * sizeof *keys);
    const char *k;
    json_t *v;
    json_object_foreach(t->counts, k, v) keys[i++] = k;
    qsort(keys, n, sizeof *keys, cmp_str);
    json_t *arr = json_array();
    for (i = 0; i < n; i++)
        json_array_append_new(arr, json_pack("{s:s,s:O}", "id", keys[i], "count", json_object_get(t->counts, keys[i])));
    free(keys);
    json_decref(t->counts);
    return arr;
}

static void customer_seen(void *ctx, const char *id) { json_array_append_new(ctx, json_string(id)); }

/* The views the values are read from: the one asked for, else all. */
static void values_collect(store_reader *r, const server_query *pq, tally *wh, tally *ca, tally *re, int *scan_cut)
{
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        if (pq->has_view && (fold_view)v != pq->view) continue;
        store_reader_breakdown(r, (fold_view)v, 'w', tally_breakdown, wh);
        store_reader_breakdown(r, (fold_view)v, 'c', tally_breakdown, ca);
        /* Only these views' items carry a reason or a lastFailure (dead letters have codes: their page filters those). */
        if (v != FOLD_VIEW_BLOCKED && v != FOLD_VIEW_POSTING_FAILED && v != FOLD_VIEW_PENDING_ROUTE) continue;
        store_query q = {.view = (fold_view)v, .limit = VALUES_SCAN};
        char *next = NULL;
        store_view_scan(r, &q, reason_seen, re, &next);
        if (next) *scan_cut = 1;
        free(next);
    }
}

int server__values(struct mg_connection *c, http_server *s, const server_query *pq)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_VALUES, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    tally wh = {json_object(), 0}, ca = {json_object(), 0}, re = {json_object(), 0};
    int scan_cut = 0;
    values_collect(r, pq, &wh, &ca, &re, &scan_cut);
    json_t *cust = json_array();
    int cust_more = store_reader_customers(r, VALUES_MAX, customer_seen, cust);
    server__end(s, r);
    json_t *body = json_object();
    json_object_set_new(body, "view", pq->has_view ? json_string(fold_view_name(pq->view)) : json_null());
    json_object_set_new(body, "warehouses", tally_list(&wh));
    json_object_set_new(body, "carriers", tally_list(&ca));
    json_object_set_new(body, "reasons", tally_list(&re));
    json_object_set_new(body, "customers", cust);
    json_object_set_new(body, "channels", json_pack("[sss]", "ECOMMERCE", "EDI", "SERVICE"));
    json_object_set_new(body, "slaStates", json_pack("[ssss]", "breached", "due_soon", "within", "none"));
    json_object_set_new(body, "sorts", json_pack("[sssss]", "age", "newest", "priority", "warehouse", "carrier"));
    json_object_set_new(body, "truncated",
                        json_pack("{s:b,s:b,s:b,s:b}", "warehouses", wh.truncated, "carriers", ca.truncated, "reasons",
                                  re.truncated || scan_cut, "customers", cust_more));
    return server__json(c, s, SERVER_ROUTE_VALUES, 200, body);
}

/* ---- GET /api/v1/sla/rules ---- */

static void set_scope(json_t *o, const char *k, const char *v) { json_object_set_new(o, k, v ? json_string(v) : json_null()); }

static json_t *rule_json(const fold_sla_rule *x)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(x->name));
    json_object_set_new(o, "from", json_string(fold_sla_pair_from(x->pair)));
    json_object_set_new(o, "to", json_string(fold_sla_pair_to(x->pair)));
    json_object_set_new(o, "level", json_string(fold_sla_pair_level(x->pair) == 'o' ? "order" : "shipment"));
    json_object_set_new(o, "withinSeconds", json_real((double)x->within_ns / 1e9));
    json_object_set_new(o, "severity", json_string(x->severity ? x->severity : "warning"));
    set_scope(o, "warehouse", x->warehouse);
    set_scope(o, "carrier", x->carrier);
    set_scope(o, "channel", x->channel);
    json_object_set_new(o, "enabled", json_boolean(!x->disabled));
    return o;
}

/* Per view: the rule its items are dated by (the first rule of the view's pair, as the fold takes it). */
static json_t *views_json(const fold_sla_rules *rules)
{
    json_t *views = json_object();
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        json_t *o = json_object();
        int pair = fold_view_sla_pair((fold_view)v);
        const fold_sla_rule *x = NULL;
        for (size_t i = 0; pair >= 0 && !x && i < rules->n; i++)
            if ((int)rules->v[i].pair == pair) x = fold_sla_resolve(rules, rules->v[i].name, NULL, NULL, NULL);
        json_object_set_new(o, "rule", x ? json_string(x->name) : json_null());
        json_object_set_new(o, "withinSeconds", x && !x->disabled ? json_real((double)x->within_ns / 1e9) : json_null());
        json_object_set_new(o, "alwaysBreached", json_boolean(v == FOLD_VIEW_SLA_BREACHES));
        json_object_set_new(views, fold_view_name((fold_view)v), o);
    }
    return views;
}

int server__sla_rules(struct mg_connection *c, http_server *s)
{
    const fold_sla_rules *rules = s->o.sla_rules ? s->o.sla_rules : fold_sla_defaults();
    json_t *arr = json_array();
    for (size_t i = 0; i < rules->n; i++) json_array_append_new(arr, rule_json(&rules->v[i]));
    json_t *body = json_object();
    json_object_set_new(body, "source", json_string(s->o.sla_rules ? "file" : "defaults"));
    json_object_set_new(body, "dueSoonShare", json_real(STORE_SLA_SOON_SHARE));
    json_object_set_new(body, "rules", arr);
    json_object_set_new(body, "views", views_json(rules));
    return server__json(c, s, SERVER_ROUTE_SLA_RULES, 200, body);
}
