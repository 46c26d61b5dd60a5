/* GET /api/v1/reference and the tower_unknown_codes metric (contract v1.2, docs/contract/reference.md): the latest
 * definition of every warehouse, carrier and sku, and the UNKNOWN_CODE anomalies grouped by code and producer. */
#include "server_int.h"

#include <stdlib.h>
#include <string.h>

/* Groups of unknown codes an answer lists at most; the items the metric and the answer read at most. */
#define REF_MAX_GROUPS 1000
#define REF_MAX_ITEMS 100000

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

/* ---- definitions ---------------------------------------------------------------------------------- */

typedef struct defs {
    json_t *list;
    size_t limit;
    int truncated;
} defs;

static json_t *def_json(char kind, const char *code, const evt_event *e, uint64_t seq)
{
    json_t *o = json_object();
    char t[40];
    if (kind == 'w') {
        json_object_set_new(o, "warehouseId", json_string(code));
        set_str(o, "name", e->warehouse_defined->name);
        set_str(o, "region", e->warehouse_defined->region);
        set_str(o, "timeZone", e->warehouse_defined->time_zone);
    } else if (kind == 'c') {
        json_object_set_new(o, "carrierId", json_string(code));
        set_str(o, "name", e->carrier_defined->name);
    } else {
        json_object_set_new(o, "sku", json_string(code));
        set_str(o, "unit", e->sku_defined->unit);
        set_str(o, "name", e->sku_defined->name);
    }
    evt_time_format(e->occurred_at->seconds, e->occurred_at->nanos, t);
    json_object_set_new(o, "definedAt", json_string(t));
    json_object_set_new(o, "eventId", json_string(e->event_id));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    return o;
}

static int def_add(void *ctx, char kind, const char *code, const evt_event *def, uint64_t seq)
{
    defs *d = ctx;
    int ok = (kind == 'w' && def->payload_case == TOWER__V1__EVENT__PAYLOAD_WAREHOUSE_DEFINED) ||
             (kind == 'c' && def->payload_case == TOWER__V1__EVENT__PAYLOAD_CARRIER_DEFINED) ||
             (kind == 'k' && def->payload_case == TOWER__V1__EVENT__PAYLOAD_SKU_DEFINED);
    if (!ok) return 0; /* cannot happen: the writer files a definition under its own kind */
    if (json_array_size(d->list) >= d->limit) {
        d->truncated = 1;
        return 1;
    }
    json_array_append_new(d->list, def_json(kind, code, def, seq));
    return 0;
}

/* ---- the unknown codes, grouped by (kind, code, producer, instance) ---------------------------------- */

typedef struct groups {
    json_t *index; /* "kind\x1f code\x1f system\x1f instance" -> the group object (borrowed from list) */
    json_t *list;
    uint64_t items;
    int truncated;
} groups;

static json_t *group_new(const Tower__V1__ViewItem *it)
{
    json_t *g = json_object();
    json_object_set_new(g, "kind", json_string(it->kind));
    json_object_set_new(g, "code", json_string(it->code));
    json_object_set_new(g, "producer", json_string(it->producer ? it->producer : ""));
    set_str(g, "producerInstance", it->producer_instance);
    json_object_set_new(g, "count", json_integer(0));
    json_object_set_new(g, "runbook", json_string("rule/UNKNOWN_CODE"));
    return g;
}

static int group_item(void *ctx, const Tower__V1__ViewItem *it)
{
    groups *g = ctx;
    if (!it->kind || !it->code || !it->since) return 0;
    if (++g->items > REF_MAX_ITEMS) {
        g->truncated = 1;
        return 1;
    }
    char *key = ct_sprintf("%s\x1f%s\x1f%s\x1f%s", it->kind, it->code, it->producer ? it->producer : "",
                           it->producer_instance ? it->producer_instance : "");
    json_t *grp = json_object_get(g->index, key);
    if (!grp) {
        if (json_array_size(g->list) >= REF_MAX_GROUPS) {
            g->truncated = 1;
            free(key);
            return 0;
        }
        grp = group_new(it);
        json_array_append_new(g->list, grp);
        json_object_set(g->index, key, grp);
        /* Items come oldest first: the group's first item is its since and example. */
        char t[40];
        evt_time_format(it->since->seconds, it->since->nanos, t);
        json_object_set_new(grp, "since", json_string(t));
        json_t *ex = json_object();
        set_str(ex, "orderId", it->order_id);
        set_str(ex, "shipmentId", it->shipment_id);
        set_str(ex, "eventId", it->event_id);
        set_str(ex, "exceptionId", it->exception_id);
        json_object_set_new(grp, "example", ex);
    }
    free(key);
    json_object_set_new(grp, "count", json_integer(json_integer_value(json_object_get(grp, "count")) + 1));
    return 0;
}

static ct_status unknown_scan(store_reader *r, groups *g)
{
    g->index = json_object();
    g->list = json_array();
    store_query q = {.view = FOLD_VIEW_ANOMALIES, .rule = "UNKNOWN_CODE"};
    ct_status st = store_view_scan(r, &q, group_item, g, NULL);
    json_decref(g->index);
    g->index = NULL;
    return st;
}

/* ---- GET /api/v1/reference --------------------------------------------------------------------------- */

static const char *list_name(char kind) { return kind == 'w' ? "warehouses" : kind == 'c' ? "carriers" : "skus"; }

int server__reference(struct mg_connection *c, http_server *s, const server_query *pq)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_REFERENCE, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    store_stats ss;
    store_reader_stats(r, &ss);
    json_t *body = json_object(), *counts = json_object(), *trunc = json_object();
    ct_status st = CT_OK;
    for (const char *k = FOLD_REF_KINDS; *k && st == CT_OK; k++) {
        json_object_set_new(counts, list_name(*k), json_integer((json_int_t)store_reference_count(r, *k)));
        if (pq->ref_kind && pq->ref_kind != *k) continue;
        defs d = {json_array(), (size_t)pq->limit, 0};
        st = store_reference_scan(r, *k, def_add, &d);
        json_object_set_new(body, list_name(*k), d.list);
        json_object_set_new(trunc, list_name(*k), json_boolean(d.truncated));
    }
    groups g = {0};
    if (st == CT_OK) st = unknown_scan(r, &g);
    server__end(s, r);
    if (st != CT_OK) {
        json_decref(body);
        json_decref(counts);
        json_decref(trunc);
        json_decref(g.list);
        return server__error(c, s, SERVER_ROUTE_REFERENCE, 500, "STORE_ERROR", NULL, "reading the reference data failed");
    }
    json_object_set_new(trunc, "unknown", json_boolean(g.truncated));
    json_object_set_new(body, "asOfSeq", json_integer((json_int_t)ss.applied_seq));
    server__now_json(body, ct_now_ns());
    json_object_set_new(body, "counts", counts);
    json_object_set_new(body, "unknown", json_pack("{s:I,s:o}", "items", (json_int_t)g.items, "groups", g.list));
    json_object_set_new(body, "truncated", trunc);
    return server__json(c, s, SERVER_ROUTE_REFERENCE, 200, body);
}

/* ---- tower_unknown_codes{kind,producer} ------------------------------------------------------------- */

typedef struct tally {
    uint64_t n[3][8];
    int cut;
} tally;

/* source.system is validated against a closed list: one slot each, "(other)" for anything else. */
static const char *const systems[] = {"erp", "wms", "tms", "carrier", "finance", "mdm", "tower", "(other)"};

static int tally_item(void *ctx, const Tower__V1__ViewItem *it)
{
    tally *t = ctx;
    if (!it->kind) return 0;
    int k = !strcmp(it->kind, "warehouse") ? 0 : !strcmp(it->kind, "carrier") ? 1 : 2;
    size_t p = 0;
    while (p < 7 && !(it->producer && !strcmp(it->producer, systems[p]))) p++;
    t->n[k][p]++;
    return ++t->cut >= REF_MAX_ITEMS;
}

void server__reference_metrics(ct_buf *b, store_reader *r)
{
    tally t = {0};
    store_query q = {.view = FOLD_VIEW_ANOMALIES, .rule = "UNKNOWN_CODE"};
    store_view_scan(r, &q, tally_item, &t, NULL);
    ct_buf_addf(b, "# HELP tower_unknown_codes Open UNKNOWN_CODE anomalies (an entity naming a code no reference "
                   "definition covers) by kind and producer (source.system of the earliest event naming it).\n"
                   "# TYPE tower_unknown_codes gauge\n");
    static const char *const kinds[] = {"warehouse", "carrier", "sku"};
    for (int k = 0; k < 3; k++)
        for (int p = 0; p < 8; p++)
            if (t.n[k][p])
                ct_buf_addf(b, "tower_unknown_codes{kind=\"%s\",producer=\"%s\"} %llu\n", kinds[k], systems[p],
                            (unsigned long long)t.n[k][p]);
}
