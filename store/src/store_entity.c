/* Reading one order or shipment whole (stage, milestones, shipments, open exceptions, timeline) and searching ids. */
#include "store_ref_int.h"

#include <stdlib.h>
#include <string.h>

/* The loader's memory blocks: one process is small. */
#define ENTITY_ARENA_CHUNK ((size_t)64 << 10)

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

/* A stage is always present: null while no milestone is known (an orphan shipment named only by a block). */
static void set_stage(json_t *o, const char *k, fold_stage st)
{
    json_object_set_new(o, k, st == FOLD_STAGE_NONE ? json_null() : json_string(fold_stage_name(st)));
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

/* The open items of every entity of the process: the order's, then each shipment's. */
static json_t *open_exceptions_json(store_reader *r, const store__process *p, int64_t now_ns)
{
    json_t *arr = json_array();
    if (p->order_id) open_items(r, 'o', p->order_id, now_ns, arr);
    for (size_t i = 0; i < p->ns; i++) open_items(r, 's', p->sids[i], now_ns, arr);
    return arr;
}

/* The event lists of a process: 0 is the order's, 1..ns the shipments'. */
static size_t n_lists(const store__process *p) { return 1 + p->ns; }

static const store__events *list_at(const store__process *p, size_t i)
{
    return i == 0 ? &p->order : &p->ships[i - 1];
}

typedef struct seq_event {
    const evt_event *e;
    uint64_t seq;
} seq_event;

static int by_time(const void *a, const void *b)
{
    return fold_event_cmp(((const seq_event *)a)->e, ((const seq_event *)b)->e);
}

/* Every event of the order and its shipments once, oldest first, with its sequence. */
static json_t *timeline_json(const store__process *p)
{
    size_t total = 0, n = 0;
    for (size_t l = 0; l < n_lists(p); l++) total += list_at(p, l)->n;
    seq_event *all = ct_calloc(total ? total : 1, sizeof *all);
    for (size_t l = 0; l < n_lists(p); l++) {
        const store__events *list = list_at(p, l);
        for (size_t j = 0; j < list->n; j++) all[n++] = (seq_event){list->ev[j], list->seq[j]};
    }
    qsort(all, n, sizeof *all, by_time);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (i && strcmp(all[i].e->event_id, all[i - 1].e->event_id) == 0) continue; /* named by two entities */
        json_t *o = json_object();
        json_object_set_new(o, "seq", json_integer((json_int_t)all[i].seq));
        json_object_set_new(o, "type", json_string(evt_type_name(all[i].e)));
        json_object_set_new(o, "event", evt_to_json(all[i].e));
        json_array_append_new(arr, o);
    }
    free(all);
    return arr;
}

/* The earliest occurrence of each milestone type, as {"orderApproved": time, ...}. */
static json_t *milestones_json(const store__process *p)
{
    const evt_event *first[64] = {0};
    for (size_t l = 0; l < n_lists(p); l++)
        for (size_t j = 0; j < list_at(p, l)->n; j++) {
            const evt_event *e = list_at(p, l)->ev[j];
            unsigned c = (unsigned)e->payload_case;
            if (c < 64 && (!first[c] || fold_event_cmp(e, first[c]) < 0)) first[c] = e;
        }
    json_t *o = json_object();
    for (unsigned c = 0; c < 64; c++)
        if (first[c]) store__json_time(o, evt_type_name(first[c]), first[c]->occurred_at);
    return o;
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
        store__json_time(x, "dueAt", b->due);
        if (b->closed_at) {
            json_object_set_new(x, "state", json_string("closed"));
            store__json_time(x, "closedAt", b->closed_at);
            /* Negative when the milestone happened in time but was reported after the deadline. */
            json_object_set_new(x, "lateBySeconds", json_integer(b->closed_at->seconds - b->due->seconds));
        } else {
            json_object_set_new(x, "state", json_string(b->cancelled ? "cancelled" : "open"));
        }
        json_array_append_new(arr, x);
    }
    return arr;
}

/* The shipments of the order with their stages (none for an unlinked shipment). */
static json_t *shipments_json(const store__process *p, const fold_result *res)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < p->ns && p->order_id; i++) {
        json_t *x = json_object();
        set_str(x, "shipmentId", p->sids[i]);
        set_stage(x, "stage", res->shipment_stages[i]);
        json_array_append_new(arr, x);
    }
    return arr;
}

/* The ids and stages: an order's own stage, or a shipment's stage with its order's. */
static void put_identity(json_t *o, char kind, const char *id, const store__process *p, const fold_result *res)
{
    if (kind == 'o') {
        set_str(o, "orderId", id);
        set_stage(o, "stage", res->stage);
        return;
    }
    size_t me = 0;
    for (size_t i = 0; i < p->ns; i++)
        if (strcmp(p->sids[i], id) == 0) me = i;
    set_str(o, "shipmentId", id);
    set_str(o, "orderId", p->order_id);
    set_stage(o, "stage", p->ns ? res->shipment_stages[me] : FOLD_STAGE_NONE);
    if (p->order_id) set_stage(o, "orderStage", res->stage);
}

/* What the order said about itself: customer, channel and promisedBy of its latest orderCreated. */
static void put_order_facts(json_t *o, const store__events *order)
{
    const evt_event *created = NULL;
    for (size_t j = 0; j < order->n; j++)
        if (order->ev[j]->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED &&
            (!created || fold_event_cmp(order->ev[j], created) > 0))
            created = order->ev[j];
    if (!created) return;
    set_str(o, "customerId", created->order_created->customer_id);
    json_t *cj = evt_to_json(created);
    json_t *payload = json_object_get(cj, "orderCreated");
    json_t *ch = payload ? json_object_get(payload, "channel") : NULL;
    json_t *pb = payload ? json_object_get(payload, "promisedBy") : NULL;
    if (ch) json_object_set(o, "channel", ch);
    if (pb) json_object_set(o, "promisedBy", pb);
    json_decref(cj);
}

/* The entity's document, from its derived process (a new reference). */
static json_t *entity_doc(store_reader *r, char kind, const char *id, const store__process *p, const fold_result *res,
                          int64_t now_ns)
{
    json_t *o = json_object();
    put_identity(o, kind, id, p, res);
    if (kind == 'o') put_order_facts(o, &p->order);
    json_object_set_new(o, "shipments", shipments_json(p, res));
    json_object_set_new(o, "milestones", milestones_json(p));
    json_object_set_new(o, "openExceptions", open_exceptions_json(r, p, now_ns));
    json_object_set_new(o, "slaBreaches", breaches_json(res));
    json_object_set_new(o, "timeline", timeline_json(p));
    return o;
}

/* CT_OK if the entity has events; CT_NOT_FOUND if it has none (or its id cannot be a key). */
static ct_status entity_exists(store__loader *l, char kind, const char *id)
{
    store__events self = {0};
    int rc = store__load_entity(l, kind, id, &self);
    size_t n = self.n;
    store__events_free(&self);
    if (rc == MDB_BAD_VALSIZE) return CT_NOT_FOUND;
    if (rc) return store__fail(l->s, rc, "read a timeline");
    return n ? CT_OK : CT_NOT_FOUND;
}

/* The order of the entity's process: the order itself, or the shipment's linked order; NULL for an
 * unlinked shipment. Caller frees. */
static char *process_order_id(store_reader *r, char kind, const char *id)
{
    if (kind == 'o') return ct_strdup(id);
    MDB_val k = {strlen(id), (void *)id}, v;
    return mdb_get(r->txn, r->s->links, &k, &v) == 0 ? ct_strndup(v.mv_data, v.mv_size) : NULL;
}

ct_status store_entity_json(store_reader *r, char kind, const char *id, int64_t now_ns, json_t **out)
{
    if (kind != 'o' && kind != 's') return CT_INVALID;
    store__loader l;
    store__loader_init(&l, r->txn, r->s, ENTITY_ARENA_CHUNK);
    store__process p = {0};
    fold_result res = {0};
    char *oid = NULL;
    ct_status st = entity_exists(&l, kind, id);
    if (st != CT_OK) goto out;
    oid = process_order_id(r, kind, id);
    int rc = store__load_process(&l, oid, oid ? NULL : id, &p);
    if (rc) {
        st = store__fail(r->s, rc, "read a timeline");
        goto out;
    }
    fold_process fp = store__process_fold(&p);
    store__refq rq;
    fold_derive_ref(&fp, r->s->sla, store__ref_fold(&rq, r->txn, r->s), &res);
    *out = entity_doc(r, kind, id, &p, &res, now_ns);
out:
    fold_result_free(&res);
    store__process_free(&p);
    free(oid);
    store__loader_free(&l);
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
