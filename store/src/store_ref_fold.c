/* Reference data in the fold (contract v1.2): the codes events name, and the UNKNOWN_CODE anomalies of a
 * process given what the reference table defines. Pure: the table is asked through fold_ref. */
#include "fold_int.h"

#include <stdlib.h>
#include <string.h>

typedef const evt_event *ev;

const char *fold_ref_kind_name(char kind)
{
    switch (kind) {
    case 'w': return "warehouse";
    case 'c': return "carrier";
    case 'k': return "sku";
    default: return "";
    }
}

static int is_definition(ev e)
{
    return e->payload_case == TOWER__V1__EVENT__PAYLOAD_WAREHOUSE_DEFINED ||
           e->payload_case == TOWER__V1__EVENT__PAYLOAD_CARRIER_DEFINED ||
           e->payload_case == TOWER__V1__EVENT__PAYLOAD_SKU_DEFINED;
}

static void name_if(void (*fn)(void *, char, const char *), void *ctx, char kind, const char *code)
{
    if (code && *code) fn(ctx, kind, code);
}

void fold_event_codes(const evt_event *e, void (*fn)(void *ctx, char kind, const char *code), void *ctx)
{
    if (evt_is_action(e) || is_definition(e)) return;
    /* The payload's id first (fold_event_*), then the envelope's when it says something else. */
    const char *w = fold_event_warehouse(e), *c = fold_event_carrier(e);
    name_if(fn, ctx, 'w', w);
    if (w && e->warehouse_id && *e->warehouse_id && strcmp(w, e->warehouse_id) != 0) fn(ctx, 'w', e->warehouse_id);
    name_if(fn, ctx, 'c', c);
    if (c && e->carrier_id && *e->carrier_id && strcmp(c, e->carrier_id) != 0) fn(ctx, 'c', e->carrier_id);
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED:
        for (size_t i = 0; i < e->order_created->n_lines; i++)
            if (e->order_created->lines[i]) name_if(fn, ctx, 'k', e->order_created->lines[i]->sku);
        break;
    case TOWER__V1__EVENT__PAYLOAD_PICK_SHORT: name_if(fn, ctx, 'k', e->pick_short->sku); break;
    case TOWER__V1__EVENT__PAYLOAD_INVENTORY_RESOLVED: name_if(fn, ctx, 'k', e->inventory_resolved->sku); break;
    default: break;
    }
}

/* ---- the codes one entity names, each with its earliest event ----------------------------------------- */

typedef struct named {
    char kind;
    const char *code; /* borrowed from the event */
    ev first;
} named;

typedef struct named_set {
    named *v;
    size_t n, cap;
    ev cur;         /* the event being read */
    const int *any; /* per kind (kind_index): whether the table defines any code of it; others are not kept */
} named_set;

static int kind_index(char kind) { return kind == 'w' ? 0 : kind == 'c' ? 1 : 2; }

static void named_add(void *ctx, char kind, const char *code)
{
    named_set *s = ctx;
    if (!s->any[kind_index(kind)]) return; /* nothing of this kind is defined: no code of it is unknown */
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].kind == kind && strcmp(s->v[i].code, code) == 0) {
            if (fold_event_cmp(s->cur, s->v[i].first) < 0) s->v[i].first = s->cur;
            return;
        }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 8;
        s->v = ct_realloc(s->v, s->cap * sizeof *s->v);
    }
    s->v[s->n++] = (named){kind, code, s->cur};
}

/* An event with an envelope orderId counts for the order; any other for the shipments that hold it. */
static void entity_codes(const fold_entity *ent, int is_order, named_set *s)
{
    for (size_t i = 0; i < ent->n_events; i++) {
        ev e = ent->events[i];
        if (!is_order && e->order_id && *e->order_id) continue;
        s->cur = e;
        fold_event_codes(e, named_add, s);
    }
}

/* ---- where an entity is (as fold.c decides it for the other items) ------------------------------------- */

static ev latest_with(const fold_entity *ent, int carrier)
{
    ev best = NULL;
    for (size_t i = 0; ent && i < ent->n_events; i++) {
        ev e = ent->events[i];
        if (evt_is_action(e) || !(carrier ? fold_event_carrier(e) : fold_event_warehouse(e))) continue;
        if (!best || fold_event_cmp(e, best) > 0) best = e;
    }
    return best;
}

static const char *order_place(const fold_process *p, int carrier)
{
    ev best = latest_with(&p->order, carrier);
    for (size_t i = 0; !best && i < p->n_shipments; i++) {
        ev e = latest_with(&p->shipments[i], carrier);
        if (e && (!best || fold_event_cmp(e, best) > 0)) best = e;
    }
    if (!best) return NULL;
    return carrier ? fold_event_carrier(best) : fold_event_warehouse(best);
}

static const char *ship_place(const fold_process *p, const fold_entity *s, int carrier)
{
    ev e = latest_with(s, carrier);
    if (e) return carrier ? fold_event_carrier(e) : fold_event_warehouse(e);
    return p->order.id ? order_place(p, carrier) : NULL;
}

/* ---- the items -------------------------------------------------------------------------------------- */

/* Keys stay within LMDB's key limit: a long sku is hashed (its item still carries it whole). */
static char *item_key(char ek, const char *entity, char kind, const char *code)
{
    if (strlen(code) <= 96) return ct_sprintf("%c:%s|anomalies|UNKNOWN_CODE|%s|%s", ek, entity, fold_ref_kind_name(kind), code);
    return ct_sprintf("%c:%s|anomalies|UNKNOWN_CODE|%s|#%016llx", ek, entity, fold_ref_kind_name(kind),
                      (unsigned long long)ct_hash64(code, strlen(code)));
}

/* Where an entity is: found only for an entity that has an unknown code (most have none). */
typedef struct place {
    const fold_process *p;
    const fold_entity *s; /* the shipment, or NULL for the order */
    int found;
    const char *order, *shipment, *wh, *ca;
} place;

static void place_find(place *at)
{
    if (at->found) return;
    at->found = 1;
    at->wh = at->s ? ship_place(at->p, at->s, 0) : order_place(at->p, 0);
    at->ca = at->s ? ship_place(at->p, at->s, 1) : order_place(at->p, 1);
}

static void unknown_item(fold_result *r, place *at, const named *n)
{
    place_find(at);
    char *key = at->shipment ? item_key('s', at->shipment, n->kind, n->code) : item_key('o', at->order, n->kind, n->code);
    fold_item *it = fold__item_add(r, FOLD_VIEW_ANOMALIES, key, n->first);
    it->pb.order_id = (char *)at->order;
    it->pb.shipment_id = (char *)at->shipment;
    it->pb.warehouse_id = (char *)at->wh;
    it->pb.carrier_id = (char *)at->ca;
    it->pb.rule = "UNKNOWN_CODE";
    it->pb.kind = (char *)fold_ref_kind_name(n->kind);
    it->pb.code = (char *)n->code;
    it->pb.event_id = n->first->event_id;
    it->pb.producer = n->first->source ? n->first->source->system : NULL;
    it->pb.producer_instance = n->first->source ? n->first->source->instance : NULL;
}

/* The UNKNOWN_CODE items of one entity; any[] says which kinds have definitions (kind_index). */
static void entity_items(fold_result *r, const fold_ref *ref, const int *any, const fold_entity *ent, int is_order,
                         place *at)
{
    named_set s = {0};
    s.any = any;
    entity_codes(ent, is_order, &s);
    for (size_t i = 0; i < s.n; i++)
        if (!ref->defined(ref->ctx, s.v[i].kind, s.v[i].code)) unknown_item(r, at, &s.v[i]);
    free(s.v);
}

static void ref_items(const fold_process *p, const fold_ref *ref, fold_result *r)
{
    /* Which kinds the table defines, asked once per process: a kind without definitions has no unknown code
     * (reference data is optional), and without any the codes are not even gathered. */
    const int any[3] = {ref->any(ref->ctx, 'w') ? 1 : 0, ref->any(ref->ctx, 'c') ? 1 : 0, ref->any(ref->ctx, 'k') ? 1 : 0};
    if (!any[0] && !any[1] && !any[2]) return;
    if (p->order.id) {
        place at = {p, NULL, 0, p->order.id, NULL, NULL, NULL};
        entity_items(r, ref, any, &p->order, 1, &at);
    }
    for (size_t i = 0; i < p->n_shipments; i++) {
        const fold_entity *s = &p->shipments[i];
        place at = {p, s, 0, p->order.id, s->id, NULL, NULL};
        entity_items(r, ref, any, s, 0, &at);
    }
}

void fold_derive_ref(const fold_process *p, const fold_sla_rules *rules, const fold_ref *ref, fold_result *out)
{
    if (!rules) rules = fold_sla_defaults();
    fold__derive_raw(p, rules, out);
    if (ref) ref_items(p, ref, out);
    fold__lifecycle(p, rules, out);
}
