/* Reading one order or shipment whole (stage, milestones, shipments, open exceptions, timeline) and searching ids. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct evlist {
    evt_event **ev;
    uint64_t *seq;
    size_t n, cap;
} evlist;

static void evlist_free(evlist *l)
{
    for (size_t i = 0; i < l->n; i++) evt_free(l->ev[i]);
    free(l->ev);
    free(l->seq);
    memset(l, 0, sizeof *l);
}

static int collect(void *ctx, const evt_event *e, uint64_t seq)
{
    evlist *l = ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ev = ct_realloc(l->ev, l->cap * sizeof *l->ev);
        l->seq = ct_realloc(l->seq, l->cap * sizeof *l->seq);
    }
    /* store_timeline frees its copy after the call: keep our own. */
    ct_buf b = {0};
    evt_pack(e, &b);
    l->ev[l->n] = (evt_event *)protobuf_c_message_unpack(&tower__v1__event__descriptor, NULL, b.len, (uint8_t *)b.data);
    ct_buf_free(&b);
    if (l->ev[l->n]) l->seq[l->n++] = seq;
    return 0;
}

static ct_status load(store_reader *r, char kind, const char *id, evlist *out)
{
    ct_status st = store_timeline(r, kind, id, collect, out);
    return st == CT_NOT_FOUND ? CT_OK : st;
}

/* The shipments linked to an order. */
static size_t linked(store_reader *r, const char *oid, char ***out)
{
    size_t n = 0, cap = 0;
    char **ids = NULL;
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, r->s->oship, &c) != 0) return 0;
    MDB_val k = {strlen(oid), (void *)oid}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    while (rc == 0) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            ids = ct_realloc(ids, cap * sizeof *ids);
        }
        ids[n++] = ct_strndup(v.mv_data, v.mv_size);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
    *out = ids;
    return n;
}

/* The items an entity is in now, with their view. */
static void open_items(store_reader *r, char kind, const char *id, int64_t now_ns, json_t *arr)
{
    char prefix[EVT_MAX_ID + 8];
    int pl = snprintf(prefix, sizeof prefix, "%c:%s|", kind, id);
    MDB_cursor *c = NULL;
    if (pl < 0 || (size_t)pl >= sizeof prefix || mdb_cursor_open(r->txn, r->s->items, &c) != 0) return;
    MDB_val k = {(size_t)pl, prefix}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= (size_t)pl && memcmp(k.mv_data, prefix, (size_t)pl) == 0) {
        Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, v.mv_size, v.mv_data);
        if (it) {
            json_t *o = store_item_to_json(it, now_ns);
            json_object_set_new(o, "view", json_string(it->view));
            json_array_append_new(arr, o);
            tower__v1__view_item__free_unpacked(it, NULL);
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

static int by_time(const void *a, const void *b)
{
    const evt_event *x = *(evt_event *const *)a, *y = *(evt_event *const *)b;
    return fold_event_cmp(x, y);
}

/* Every event of the order and its shipments once, oldest first, with its sequence. */
static json_t *timeline_json(evlist *lists, size_t n_lists)
{
    size_t total = 0;
    for (size_t i = 0; i < n_lists; i++) total += lists[i].n;
    evt_event **all = ct_calloc(total ? total : 1, sizeof *all);
    size_t n = 0;
    for (size_t i = 0; i < n_lists; i++)
        for (size_t j = 0; j < lists[i].n; j++) all[n++] = lists[i].ev[j];
    qsort(all, n, sizeof *all, by_time);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(all[i]->event_id, all[i - 1]->event_id) == 0) continue; /* named by two entities */
        uint64_t seq = 0;
        for (size_t l = 0; l < n_lists && !seq; l++)
            for (size_t j = 0; j < lists[l].n; j++)
                if (lists[l].ev[j] == all[i]) seq = lists[l].seq[j];
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)seq));
        json_object_set_new(o, "type", json_string(evt_type_name(all[i])));
        json_object_set_new(o, "event", evt_to_json(all[i]));
        json_array_append_new(arr, o);
    }
    free(all);
    return arr;
}

/* The earliest occurrence of each milestone type, as {"orderApproved": time, ...}. */
static json_t *milestones_json(evlist *lists, size_t n_lists)
{
    const evt_event *first[64] = {0};
    for (size_t l = 0; l < n_lists; l++)
        for (size_t j = 0; j < lists[l].n; j++) {
            const evt_event *e = lists[l].ev[j];
            unsigned c = (unsigned)e->payload_case;
            if (c < 64 && (!first[c] || fold_event_cmp(e, first[c]) < 0)) first[c] = e;
        }
    json_t *o = json_object();
    for (unsigned c = 0; c < 64; c++) {
        if (!first[c]) continue;
        char t[48];
        evt_time_format(first[c]->occurred_at->seconds, first[c]->occurred_at->nanos, t);
        json_object_set_new(o, evt_type_name(first[c]), json_string(t));
    }
    return o;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

/* A stage is always present: null while no milestone is known (an orphan shipment named only by a block). */
static void set_stage(json_t *o, const char *k, fold_stage st)
{
    json_object_set_new(o, k, st == FOLD_STAGE_NONE ? json_null() : json_string(fold_stage_name(st)));
}

static void set_ts(json_t *o, const char *k, const Tower__V1__Timestamp *t)
{
    char buf[48];
    evt_time_format(t->seconds, t->nanos, buf);
    json_object_set_new(o, k, json_string(buf));
}

/* Every SLA breach of the process (per entity and rule): open, closed (with how late) or cancelled. */
static json_t *breaches_json(const fold_result *res)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < res->n_breaches; i++) {
        const fold_breach *b = &res->breaches[i];
        json_t *x = json_object();
        json_object_set_new(x, "rule", json_string(b->rule));
        json_object_set_new(x, b->kind == 'o' ? "orderId" : "shipmentId", json_string(b->entity));
        set_ts(x, "dueAt", b->due);
        if (b->closed_at) {
            json_object_set_new(x, "state", json_string("closed"));
            set_ts(x, "closedAt", b->closed_at);
            /* Negative when the milestone happened in time but was reported after the deadline. */
            json_object_set_new(x, "lateBySeconds", json_integer(b->closed_at->seconds - b->due->seconds));
        } else {
            json_object_set_new(x, "state", json_string(b->cancelled ? "cancelled" : "open"));
        }
        json_array_append_new(arr, x);
    }
    return arr;
}

ct_status store_entity_json(store_reader *r, char kind, const char *id, int64_t now_ns, json_t **out)
{
    if (kind != 'o' && kind != 's') return CT_INVALID;
    evlist self = {0};
    ct_status st = load(r, kind, id, &self);
    if (st != CT_OK) return st;
    if (!self.n) {
        evlist_free(&self);
        return CT_NOT_FOUND;
    }

    /* The process the entity belongs to: the order and its shipments. */
    char *oid = NULL;
    if (kind == 'o') {
        oid = ct_strdup(id);
    } else {
        MDB_val k = {strlen(id), (void *)id}, v;
        if (mdb_get(r->txn, r->s->links, &k, &v) == 0) oid = ct_strndup(v.mv_data, v.mv_size);
    }
    char **sids = NULL;
    size_t ns = 0;
    if (oid) ns = linked(r, oid, &sids);
    else {
        sids = ct_malloc(sizeof *sids);
        sids[ns++] = ct_strdup(id);
    }
    evlist order = {0};
    evlist *ships = ct_calloc(ns ? ns : 1, sizeof *ships);
    fold_entity *se = ct_calloc(ns ? ns : 1, sizeof *se);
    if (oid && kind == 'o') order = self, self = (evlist){0};
    else if (oid) st = load(r, 'o', oid, &order);
    for (size_t i = 0; i < ns && st == CT_OK; i++) {
        st = load(r, 's', sids[i], &ships[i]);
        se[i] = (fold_entity){sids[i], ships[i].ev, ships[i].n};
    }
    fold_result res = {0};
    json_t *o = NULL;
    if (st == CT_OK) {
        fold_process p = {{oid, order.ev, order.n}, se, ns};
        fold_derive_sla(&p, r->s->sla, &res);
        o = json_object();
        size_t me = 0;
        for (size_t i = 0; i < ns; i++)
            if (kind == 's' && strcmp(sids[i], id) == 0) me = i;
        if (kind == 'o') {
            set_str(o, "orderId", id);
            set_stage(o, "stage", res.stage);
        } else {
            set_str(o, "shipmentId", id);
            set_str(o, "orderId", oid);
            set_stage(o, "stage", ns ? res.shipment_stages[me] : FOLD_STAGE_NONE);
            if (oid) set_stage(o, "orderStage", res.stage);
        }
        /* What the order said about itself: the latest orderCreated. */
        const evt_event *created = NULL;
        for (size_t j = 0; j < order.n; j++)
            if (order.ev[j]->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED &&
                (!created || fold_event_cmp(order.ev[j], created) > 0))
                created = order.ev[j];
        if (created && kind == 'o') {
            set_str(o, "customerId", created->order_created->customer_id);
            json_t *cj = evt_to_json(created);
            json_t *payload = json_object_get(cj, "orderCreated");
            json_t *ch = payload ? json_object_get(payload, "channel") : NULL;
            json_t *pb = payload ? json_object_get(payload, "promisedBy") : NULL;
            if (ch) json_object_set(o, "channel", ch);
            if (pb) json_object_set(o, "promisedBy", pb);
            json_decref(cj);
        }
        json_t *sh = json_array();
        for (size_t i = 0; i < ns && oid; i++) {
            json_t *x = json_object();
            set_str(x, "shipmentId", sids[i]);
            set_stage(x, "stage", res.shipment_stages[i]);
            json_array_append_new(sh, x);
        }
        json_object_set_new(o, "shipments", sh);

        evlist *lists = ct_calloc(ns + 2, sizeof *lists);
        size_t nl = 0;
        if (oid) lists[nl++] = order;
        for (size_t i = 0; i < ns; i++) lists[nl++] = ships[i];
        json_object_set_new(o, "milestones", milestones_json(lists, nl));
        json_t *ex = json_array();
        if (oid) open_items(r, 'o', oid, now_ns, ex);
        for (size_t i = 0; i < ns; i++) open_items(r, 's', sids[i], now_ns, ex);
        json_object_set_new(o, "openExceptions", ex);
        json_object_set_new(o, "slaBreaches", breaches_json(&res));
        json_object_set_new(o, "timeline", timeline_json(lists, nl));
        free(lists);
    }
    fold_result_free(&res);
    evlist_free(&self);
    evlist_free(&order);
    for (size_t i = 0; i < ns; i++) {
        evlist_free(&ships[i]);
        free(sids[i]);
    }
    free(ships);
    free(se);
    free(sids);
    free(oid);
    if (st == CT_OK) *out = o;
    else json_decref(o);
    return st;
}

/* Ids with a prefix, from the keys of a table (kind-prefixed for the timeline). */
static void prefix_scan(store_reader *r, MDB_dbi dbi, const char *kp, const char *q, size_t limit, json_t *arr,
                        int values)
{
    char key[EVT_MAX_ID + 8];
    int kl = snprintf(key, sizeof key, "%s%s", kp, q);
    if (kl < 0 || (size_t)kl >= sizeof key) return;
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, dbi, &c) != 0) return;
    MDB_val k = {(size_t)kl, key}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    size_t plen = strlen(kp);
    while (rc == 0 && json_array_size(arr) < limit && k.mv_size >= (size_t)kl &&
           memcmp(k.mv_data, key, (size_t)kl) == 0) {
        if (values) {
            json_t *x = json_object();
            json_object_set_new(x, "customerId", json_stringn((const char *)k.mv_data, k.mv_size));
            json_object_set_new(x, "orderId", json_stringn(v.mv_data, v.mv_size));
            json_array_append_new(arr, x);
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        } else {
            json_array_append_new(arr, json_stringn((const char *)k.mv_data + plen, k.mv_size - plen));
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP);
        }
    }
    mdb_cursor_close(c);
}

ct_status store_search(store_reader *r, const char *q, size_t limit, json_t **out)
{
    if (!q || !*q || strlen(q) > EVT_MAX_ID) return CT_INVALID;
    json_t *o = json_object(), *orders = json_array(), *ships = json_array(), *cust = json_array();
    prefix_scan(r, r->s->tl, "o:", q, limit, orders, 0);
    prefix_scan(r, r->s->tl, "s:", q, limit, ships, 0);
    prefix_scan(r, r->s->cust, "", q, limit, cust, 1);
    json_object_set_new(o, "orders", orders);
    json_object_set_new(o, "shipments", ships);
    json_object_set_new(o, "customers", cust);
    *out = o;
    return CT_OK;
}
