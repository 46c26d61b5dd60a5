/* The fold: derives view items and stages of one process from its events, as docs/contract.md
 * defines them. */
#include "fold.h"
#include "fold_int.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef const evt_event *ev;

static const char *view_names[] = {
#define FOLD_X(id, name) name,
    FOLD_VIEW_MAP(FOLD_X)
#undef FOLD_X
};

static const char *stage_names[] = {
#define FOLD_X(id) #id,
    FOLD_STAGE_MAP(FOLD_X)
#undef FOLD_X
};

const char *fold_view_name(fold_view v)
{
    return (unsigned)v < FOLD_VIEW_COUNT ? view_names[v] : "";
}

int fold_view_parse(const char *name, fold_view *out)
{
    for (int i = 0; i < FOLD_VIEW_COUNT; i++) {
        if (strcmp(name, view_names[i]) == 0) {
            *out = (fold_view)i;
            return 0;
        }
    }
    return -1;
}

const char *fold_stage_name(fold_stage s)
{
    if (s == FOLD_STAGE_NONE || (unsigned)s >= FOLD_STAGE_COUNT) return "";
    return stage_names[s];
}

/* ---- SLA rules ------------------------------------------------------------ */

static const struct {
    const char *from, *to;
    char level;
} pairs[] = {
#define FOLD_X(id, from, to, level) {from, to, level},
    FOLD_SLA_PAIR_MAP(FOLD_X)
#undef FOLD_X
};

int fold_sla_pair_parse(const char *from, const char *to, fold_sla_pair *out)
{
    for (int i = 0; i < FOLD_SLA_PAIR_COUNT; i++) {
        if (from && to && strcmp(from, pairs[i].from) == 0 && strcmp(to, pairs[i].to) == 0) {
            *out = (fold_sla_pair)i;
            return 0;
        }
    }
    return -1;
}

const char *fold_sla_pair_from(fold_sla_pair p) { return (unsigned)p < FOLD_SLA_PAIR_COUNT ? pairs[p].from : ""; }
const char *fold_sla_pair_to(fold_sla_pair p) { return (unsigned)p < FOLD_SLA_PAIR_COUNT ? pairs[p].to : ""; }
char fold_sla_pair_level(fold_sla_pair p) { return (unsigned)p < FOLD_SLA_PAIR_COUNT ? pairs[p].level : 'o'; }

#define MINUTE_NS (60LL * 1000000000LL)

static const fold_sla_rule default_rules[] = {
    {"release", FOLD_SLA_RELEASE, 15 * MINUTE_NS, "warning", NULL, NULL, NULL, 0},
    {"readiness", FOLD_SLA_READINESS, 4 * 60 * MINUTE_NS, "warning", NULL, NULL, NULL, 0},
    {"routing", FOLD_SLA_ROUTING, 60 * MINUTE_NS, "warning", NULL, NULL, NULL, 0},
    {"pod", FOLD_SLA_POD, 24 * 60 * MINUTE_NS, "warning", NULL, NULL, NULL, 0},
    {"invoicing", FOLD_SLA_INVOICING, 24 * 60 * MINUTE_NS, "warning", NULL, NULL, NULL, 0},
    {"posting_recovery", FOLD_SLA_POSTING_RECOVERY, 60 * MINUTE_NS, "warning", NULL, NULL, NULL, 0},
};

static const fold_sla_rules defaults = {default_rules, sizeof default_rules / sizeof default_rules[0]};

const fold_sla_rules *fold_sla_defaults(void) { return &defaults; }

/* Does one scope dimension match? An unscoped entry matches anything; a scoped one only that value. */
static int scope_ok(const char *want, const char *have)
{
    return !want || (have && strcmp(want, have) == 0);
}

const fold_sla_rule *fold_sla_resolve(const fold_sla_rules *r, const char *name, const char *warehouse,
                                      const char *carrier, const char *channel)
{
    const fold_sla_rule *best = NULL;
    int best_w = -1;
    if (!r) r = &defaults;
    for (size_t i = 0; i < r->n; i++) {
        const fold_sla_rule *x = &r->v[i];
        if (strcmp(x->name, name) != 0) continue;
        if (!scope_ok(x->warehouse, warehouse) || !scope_ok(x->carrier, carrier) || !scope_ok(x->channel, channel))
            continue;
        int w = (x->warehouse ? 4 : 0) + (x->carrier ? 2 : 0) + (x->channel ? 1 : 0);
        if (w > best_w) {
            best = x;
            best_w = w;
        }
    }
    return best;
}

/* The pair a rule name measures: the configured rules first, then the defaults. -1 if unknown. */
static int rule_pair(const fold_sla_rules *r, const char *name, fold_sla_pair *out)
{
    const fold_sla_rules *sets[2] = {r, &defaults};
    for (int k = 0; k < 2; k++) {
        if (!sets[k]) continue;
        for (size_t i = 0; i < sets[k]->n; i++) {
            if (strcmp(sets[k]->v[i].name, name) == 0) {
                *out = sets[k]->v[i].pair;
                return 0;
            }
        }
    }
    return -1;
}

/* ---- ordering ----------------------------------------------------------- */

/* Compare occurredAt only: the anomaly rules say "before" strictly, and equal
 * times break no rule, whatever the event ids. */
static int time_cmp(ev a, ev b)
{
    const Tower__V1__Timestamp *x = a->occurred_at, *y = b->occurred_at;
    if (x->seconds != y->seconds) return x->seconds < y->seconds ? -1 : 1;
    if (x->nanos != y->nanos) return x->nanos < y->nanos ? -1 : 1;
    return 0;
}

int fold_event_cmp(const evt_event *a, const evt_event *b)
{
    int c = time_cmp(a, b);
    if (c) return c;
    return strcmp(a->event_id, b->event_id);
}

static void take_earliest(ev *slot, ev e)
{
    if (!*slot || fold_event_cmp(e, *slot) < 0) *slot = e;
}

static void take_latest(ev *slot, ev e)
{
    if (!*slot || fold_event_cmp(e, *slot) > 0) *slot = e;
}

/* ---- generic payload access ---------------------------------------------- */

/* The lookups by descriptor below are remembered per payload case (the fold asks them for every event it
 * reads): tables of atomics that any thread may fill, every writer of a slot storing the same value. */
#define FIELD_MEMO 128
static _Atomic(const ProtobufCFieldDescriptor *) memo_payload[FIELD_MEMO];
static _Atomic(const ProtobufCFieldDescriptor *) memo_field[2][FIELD_MEMO];
static const ProtobufCFieldDescriptor memo_none; /* "no such field" */

/* The payload message of an event, found through the descriptor so that the
 * fields every payload shares (warehouse_id, carrier_id) need no switch. */
static const ProtobufCMessage *payload_of(ev e)
{
    unsigned pcase = (unsigned)e->payload_case;
    if (pcase == TOWER__V1__EVENT__PAYLOAD__NOT_SET) return NULL;
    const ProtobufCFieldDescriptor *f = NULL;
    if (pcase < FIELD_MEMO) f = atomic_load_explicit(&memo_payload[pcase], memory_order_acquire);
    if (!f) {
        f = protobuf_c_message_descriptor_get_field(&tower__v1__event__descriptor, pcase);
        if (!f) f = &memo_none;
        if (pcase < FIELD_MEMO) atomic_store_explicit(&memo_payload[pcase], f, memory_order_release);
    }
    if (f == &memo_none) return NULL;
    return *(const ProtobufCMessage *const *)((const char *)e + f->offset);
}

/* The string field `which` (0: warehouse_id, 1: carrier_id) of an event's payload message, through its
 * descriptor. */

static const ProtobufCFieldDescriptor *string_field(const ProtobufCMessage *m, unsigned pcase, int which)
{
    static const char *const names[2] = {"warehouse_id", "carrier_id"};
    const ProtobufCFieldDescriptor *f = NULL;
    if (pcase < FIELD_MEMO) f = atomic_load_explicit(&memo_field[which][pcase], memory_order_acquire);
    if (f) return f;
    f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, names[which]);
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED) f = &memo_none;
    if (pcase < FIELD_MEMO) atomic_store_explicit(&memo_field[which][pcase], f, memory_order_release);
    return f;
}

static const char *payload_string(ev e, int which)
{
    const ProtobufCMessage *m = payload_of(e);
    if (!m) return NULL;
    const ProtobufCFieldDescriptor *f = string_field(m, (unsigned)e->payload_case, which);
    if (f == &memo_none) return NULL;
    const char *s = *(const char *const *)((const char *)m + f->offset);
    return s && *s ? s : NULL;
}

const char *fold_event_warehouse(const evt_event *e)
{
    const char *s = payload_string(e, 0);
    return s ? s : (e->warehouse_id && *e->warehouse_id ? e->warehouse_id : NULL);
}

const char *fold_event_carrier(const evt_event *e)
{
    const char *s = payload_string(e, 1);
    return s ? s : (e->carrier_id && *e->carrier_id ? e->carrier_id : NULL);
}

static int is(ev e, Tower__V1__Event__PayloadCase c) { return e->payload_case == c; }

/* Does a route event name this shipment in its stops or its list? */
static int route_names(ev e, const char *sid)
{
    if (is(e, TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED)) {
        for (size_t i = 0; i < e->route_planned->n_stops; i++) {
            const char *s = e->route_planned->stops[i]->shipment_id;
            if (s && strcmp(s, sid) == 0) return 1;
        }
    } else if (is(e, TOWER__V1__EVENT__PAYLOAD_ROUTE_FAILED)) {
        for (size_t i = 0; i < e->route_failed->n_shipment_ids; i++)
            if (strcmp(e->route_failed->shipment_ids[i], sid) == 0) return 1;
    }
    return 0;
}

/* ---- facts ---------------------------------------------------------------- */

typedef struct sku_fact {
    const char *sku;
    ev latest;   /* latest of pickShort / inventoryResolved for this sku */
} sku_fact;

/* The earliest slaBreached per rule of one entity. */
typedef struct breach_fact {
    const char *rule;
    ev first;
} breach_fact;

typedef struct breaches {
    breach_fact *v;
    size_t n;
} breaches;

typedef struct order_facts {
    ev created, approved_first, released_first, pick_first, hold_latest, posting_latest;
    ev invoice_first, cancel_first, wh_latest, ca_latest;
    ev risk_latest; /* latest of orderAtRisk / orderBackOnTrack (the at_risk view) */
    sku_fact *skus;
    size_t n_skus;
    breaches sla;
} order_facts;

typedef struct ship_facts {
    ev named_first, packed_first, ready_first, confirmed_first, delivered_first, pod_first;
    ev block_latest, route_latest, planned_first, fail_latest, wh_latest, ca_latest;
    fold_stage stage;
    breaches sla;
} ship_facts;

/* The due time of a breach (its occurredAt when dueAt is absent). */
static const Tower__V1__Timestamp *due_at(ev e)
{
    return e->sla_breached->due_at ? e->sla_breached->due_at : e->occurred_at;
}

static int due_cmp(ev a, ev b)
{
    const Tower__V1__Timestamp *x = due_at(a), *y = due_at(b);
    if (x->seconds != y->seconds) return x->seconds < y->seconds ? -1 : 1;
    if (x->nanos != y->nanos) return x->nanos < y->nanos ? -1 : 1;
    return strcmp(a->event_id, b->event_id);
}

static void breach_add(breaches *b, ev e)
{
    const char *rule = e->sla_breached->rule;
    size_t j = 0;
    while (j < b->n && strcmp(b->v[j].rule, rule) != 0) j++;
    if (j == b->n) {
        b->v = ct_realloc(b->v, (b->n + 1) * sizeof *b->v);
        b->v[j] = (breach_fact){rule, NULL};
        b->n++;
    }
    if (!b->v[j].first || due_cmp(e, b->v[j].first) < 0) b->v[j].first = e;
}

static void order_collect(const fold_entity *o, order_facts *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < o->n_events; i++) {
        ev e = o->events[i];
        if (evt_is_action(e)) continue; /* actions act on items, they are no milestone */
        if (fold_event_warehouse(e)) take_latest(&f->wh_latest, e);
        if (fold_event_carrier(e)) take_latest(&f->ca_latest, e);
        switch (e->payload_case) {
        case TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED: take_latest(&f->created, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_APPROVED: take_earliest(&f->approved_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_RELEASED: take_earliest(&f->released_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_HELD:
        case TOWER__V1__EVENT__PAYLOAD_ORDER_HOLD_RELEASED: take_latest(&f->hold_latest, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_CANCELLED: take_earliest(&f->cancel_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_PICK_STARTED: take_earliest(&f->pick_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_INVOICE_POSTED:
            take_earliest(&f->invoice_first, e);
            take_latest(&f->posting_latest, e);
            break;
        case TOWER__V1__EVENT__PAYLOAD_POSTING_FAILED: take_latest(&f->posting_latest, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_AT_RISK:
        case TOWER__V1__EVENT__PAYLOAD_ORDER_BACK_ON_TRACK: take_latest(&f->risk_latest, e); break;
        case TOWER__V1__EVENT__PAYLOAD_SLA_BREACHED:
            if (!e->shipment_id) breach_add(&f->sla, e);
            break;
        case TOWER__V1__EVENT__PAYLOAD_PICK_SHORT:
        case TOWER__V1__EVENT__PAYLOAD_INVENTORY_RESOLVED: {
            const char *sku = is(e, TOWER__V1__EVENT__PAYLOAD_PICK_SHORT) ? e->pick_short->sku
                                                                          : e->inventory_resolved->sku;
            if (!sku) break;
            size_t j = 0;
            while (j < f->n_skus && strcmp(f->skus[j].sku, sku) != 0) j++;
            if (j == f->n_skus) {
                f->skus = ct_realloc(f->skus, (f->n_skus + 1) * sizeof *f->skus);
                f->skus[j].sku = sku;
                f->skus[j].latest = NULL;
                f->n_skus++;
            }
            take_latest(&f->skus[j].latest, e);
            break;
        }
        default: break;
        }
    }
}

static void ship_collect(const fold_entity *s, ship_facts *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < s->n_events; i++) {
        ev e = s->events[i];
        if (evt_is_action(e)) continue;
        if (!fold__is_mismatch(e)) take_earliest(&f->named_first, e);
        if (fold_event_warehouse(e)) take_latest(&f->wh_latest, e);
        if (fold_event_carrier(e)) take_latest(&f->ca_latest, e);
        switch (e->payload_case) {
        case TOWER__V1__EVENT__PAYLOAD_PACK_COMPLETED: take_earliest(&f->packed_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_READY: take_earliest(&f->ready_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_CONFIRMED: take_earliest(&f->confirmed_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_DELIVERY_COMPLETED: take_earliest(&f->delivered_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_POD_CAPTURED: take_earliest(&f->pod_first, e); break;
        case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_BLOCKED:
        case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_UNBLOCKED: take_latest(&f->block_latest, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED:
            if (route_names(e, s->id)) {
                take_latest(&f->route_latest, e);
                take_earliest(&f->planned_first, e);
            }
            break;
        case TOWER__V1__EVENT__PAYLOAD_ROUTE_FAILED:
            if (route_names(e, s->id)) {
                take_latest(&f->route_latest, e);
                take_latest(&f->fail_latest, e);
            }
            break;
        case TOWER__V1__EVENT__PAYLOAD_SLA_BREACHED:
            if (e->shipment_id && strcmp(e->shipment_id, s->id) == 0) breach_add(&f->sla, e);
            break;
        default: break;
        }
    }
    fold_stage st = FOLD_STAGE_NONE;
    if (f->packed_first) st = FOLD_STAGE_PACKED;
    if (f->ready_first) st = FOLD_STAGE_READY;
    if (f->planned_first) st = FOLD_STAGE_ROUTED;
    if (f->confirmed_first) st = FOLD_STAGE_SHIPPED;
    if (f->delivered_first) st = FOLD_STAGE_DELIVERED;
    if (f->pod_first) st = FOLD_STAGE_POD;
    f->stage = st;
}

const char *fold_link(const fold_entity *shipment)
{
    ev best = NULL;
    for (size_t i = 0; i < shipment->n_events; i++) {
        ev e = shipment->events[i];
        if (!evt_is_action(e) && !fold__is_mismatch(e) && e->order_id && *e->order_id && e->shipment_id &&
            strcmp(e->shipment_id, shipment->id) == 0)
            take_earliest(&best, e);
    }
    return best ? best->order_id : NULL;
}

/* ---- items ----------------------------------------------------------------- */

static char *str(const char *s) { return (char *)s; }

static fold_item *item_add(fold_result *r, fold_view v, char *key, ev since)
{
    if (r->n_items == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->items = ct_realloc(r->items, r->cap * sizeof *r->items);
    }
    fold_item *it = &r->items[r->n_items++];
    memset(it, 0, sizeof *it);
    tower__v1__view_item__init(&it->pb);
    it->view = v;
    it->key = key;
    it->pb.key = key;
    it->pb.view = str(view_names[v]);
    it->pb.since = since->occurred_at;
    return it;
}

/* Keys stay within LMDB's key limit: a long free-text part (a sku) is hashed. */
static char *sub_key(const char *s)
{
    if (strlen(s) <= 96) return ct_strdup(s);
    return ct_sprintf("#%016llx", (unsigned long long)ct_hash64(s, strlen(s)));
}

static fold_item *order_item(fold_result *r, fold_view v, const char *oid, const char *sub, ev since,
                             const char *wh, const char *ca)
{
    char *key;
    if (sub) {
        char *k = sub_key(sub);
        key = ct_sprintf("o:%s|%s|%s", oid, view_names[v], k);
        free(k);
    } else {
        key = ct_sprintf("o:%s|%s", oid, view_names[v]);
    }
    fold_item *it = item_add(r, v, key, since);
    it->pb.order_id = str(oid);
    it->pb.warehouse_id = str(wh);
    it->pb.carrier_id = str(ca);
    return it;
}

static fold_item *ship_item(fold_result *r, fold_view v, const char *sid, const char *oid, const char *sub,
                            ev since, const char *wh, const char *ca)
{
    char *key = sub ? ct_sprintf("s:%s|%s|%s", sid, view_names[v], sub)
                    : ct_sprintf("s:%s|%s", sid, view_names[v]);
    fold_item *it = item_add(r, v, key, since);
    it->pb.shipment_id = str(sid);
    it->pb.order_id = str(oid);
    it->pb.warehouse_id = str(wh);
    it->pb.carrier_id = str(ca);
    return it;
}

fold_item *fold__item_add(fold_result *r, fold_view v, char *key, ev since) { return item_add(r, v, key, since); }

fold_item *fold__order_item(fold_result *r, fold_view v, const char *oid, const char *sub, ev since, const char *wh,
                            const char *ca)
{
    return order_item(r, v, oid, sub, since, wh, ca);
}

fold_item *fold__ship_item(fold_result *r, fold_view v, const char *sid, const char *oid, const char *sub, ev since,
                           const char *wh, const char *ca)
{
    return ship_item(r, v, sid, oid, sub, since, wh, ca);
}

static const char *enum_name(const ProtobufCEnumDescriptor *d, int has, int v)
{
    if (!has) return NULL;
    const ProtobufCEnumValue *ev_ = protobuf_c_enum_descriptor_get_value(d, v);
    return ev_ ? ev_->name : NULL;
}

/* Activity that, after a cancellation, is an ACTIVITY_AFTER_CANCEL anomaly. */
static int is_order_activity(ev e)
{
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_PICK_STARTED:
    case TOWER__V1__EVENT__PAYLOAD_PICK_SHORT:
    case TOWER__V1__EVENT__PAYLOAD_PACK_COMPLETED:
    case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_READY:
    case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_CONFIRMED:
    case TOWER__V1__EVENT__PAYLOAD_DELIVERY_COMPLETED: return 1;
    default: return 0;
    }
}

static void after_cancel(ev *first, const fold_entity *ent, ev cancel)
{
    for (size_t i = 0; i < ent->n_events; i++) {
        ev e = ent->events[i];
        if (is_order_activity(e) && time_cmp(e, cancel) > 0) take_earliest(first, e);
    }
}

/* The event that closes a breach of a rule: the awaited milestone (docs/contract.md,
 * "SLA rules"), or NULL while it is missing. A rule this version
 * does not know stays open. self is the shipment a shipment-level breach names
 * (NULL for an order-level one, which looks at every shipment of the order). */
static ev awaited_by_pair(fold_sla_pair pair, const order_facts *of, const ship_facts *self, const ship_facts *sf,
                         size_t ns)
{
    const ship_facts *one = self ? self : sf;
    size_t n = self ? 1 : ns;
    ev found = NULL;
    switch (pair) {
    case FOLD_SLA_RELEASE: return of ? of->released_first : NULL;
    case FOLD_SLA_INVOICING: return of ? of->invoice_first : NULL;
    case FOLD_SLA_POSTING_RECOVERY:
        return of && of->posting_latest && is(of->posting_latest, TOWER__V1__EVENT__PAYLOAD_INVOICE_POSTED)
                   ? of->posting_latest
                   : NULL;
    case FOLD_SLA_READINESS:
        for (size_t i = 0; i < n; i++)
            if (one[i].ready_first) take_earliest(&found, one[i].ready_first);
        return found;
    case FOLD_SLA_ROUTING:
        for (size_t i = 0; i < n; i++)
            if (one[i].planned_first) take_earliest(&found, one[i].planned_first);
        return found;
    case FOLD_SLA_POD:
        for (size_t i = 0; i < n; i++)
            if (one[i].pod_first) take_earliest(&found, one[i].pod_first);
        return found;
    default: return NULL;
    }
}

static ev awaited_event(const fold_sla_rules *rules, const char *rule, const order_facts *of,
                        const ship_facts *self, const ship_facts *sf, size_t ns)
{
    fold_sla_pair pair;
    if (rule_pair(rules, rule, &pair) != 0) return NULL;
    return awaited_by_pair(pair, of, self, sf, ns);
}

static void breach_record(fold_result *r, char kind, const char *entity, const char *rule, ev b, ev closer,
                          int cancelled)
{
    r->breaches = ct_realloc(r->breaches, (r->n_breaches + 1) * sizeof *r->breaches);
    r->breaches[r->n_breaches++] =
        (fold_breach){kind, entity, rule, due_at(b), closer ? closer->occurred_at : NULL, cancelled};
}

static fold_item *item_since(fold_item *it, const Tower__V1__Timestamp *t)
{
    it->pb.since = (Tower__V1__Timestamp *)t;
    return it;
}

/* at_risk: the order's latest of orderAtRisk / orderBackOnTrack is orderAtRisk, and the order is not delivered
 * (every shipment deliveryCompleted; called only when not cancelled). since = that event. */
static void derive_at_risk(const fold_process *p, const order_facts *of, const ship_facts *sf, const char *wh,
                           const char *ca, fold_result *r)
{
    ev e = of->risk_latest;
    if (!e || !is(e, TOWER__V1__EVENT__PAYLOAD_ORDER_AT_RISK)) return;
    size_t delivered = 0;
    for (size_t i = 0; i < p->n_shipments; i++) delivered += sf[i].delivered_first != NULL;
    if (p->n_shipments && delivered == p->n_shipments) return;
    fold_item *it = order_item(r, FOLD_VIEW_AT_RISK, p->order.id, NULL, e, wh, ca);
    it->pb.predicted_by = e->order_at_risk->predicted_by;
    it->pb.promised_by = e->order_at_risk->promised_by;
    it->pb.stage = e->order_at_risk->stage;
    it->pb.basis = e->order_at_risk->basis;
}

static void derive_order(const fold_process *p, const fold_sla_rules *rules, const order_facts *of,
                         const ship_facts *sf, const char *wh, const char *ca, fold_result *r)
{
    const char *oid = p->order.id;
    int cancelled = of->cancel_first != NULL;

    if (!cancelled) {
        if (of->approved_first && !of->released_first)
            order_item(r, FOLD_VIEW_AWAITING_RELEASE, oid, NULL, of->approved_first, wh, ca);
        if (of->hold_latest && is(of->hold_latest, TOWER__V1__EVENT__PAYLOAD_ORDER_HELD)) {
            fold_item *it = order_item(r, FOLD_VIEW_BLOCKED, oid, "ORDER_HOLD", of->hold_latest, wh, ca);
            it->pb.kind = str("ORDER_HOLD");
            it->pb.reason = str(enum_name(&tower__v1__order_held__reason__descriptor,
                                          of->hold_latest->order_held->has_reason,
                                          of->hold_latest->order_held->reason));
        }
        for (size_t i = 0; i < of->n_skus; i++) {
            ev e = of->skus[i].latest;
            if (!is(e, TOWER__V1__EVENT__PAYLOAD_PICK_SHORT)) continue;
            char *sub = ct_sprintf("INVENTORY|%s", of->skus[i].sku);
            fold_item *it = order_item(r, FOLD_VIEW_BLOCKED, oid, sub, e, wh, ca);
            free(sub);
            it->pb.kind = str("INVENTORY");
            it->pb.sku = str(of->skus[i].sku);
        }
        if (of->posting_latest && is(of->posting_latest, TOWER__V1__EVENT__PAYLOAD_POSTING_FAILED)) {
            fold_item *it = order_item(r, FOLD_VIEW_POSTING_FAILED, oid, NULL, of->posting_latest, wh, ca);
            it->pb.reason = str(of->posting_latest->posting_failed->reason);
            it->pb.interface = str(of->posting_latest->posting_failed->interface);
        }
        for (size_t i = 0; i < of->sla.n; i++) {
            ev b = of->sla.v[i].first;
            if (awaited_event(rules, of->sla.v[i].rule, of, NULL, sf, p->n_shipments)) continue;
            fold_item *it = order_item(r, FOLD_VIEW_SLA_BREACHES, oid, of->sla.v[i].rule, b, wh, ca);
            item_since(it, due_at(b))->pb.rule = str(of->sla.v[i].rule);
        }
        derive_at_risk(p, of, sf, wh, ca, r);
    }

    /* Anomalies stay whether or not the order is cancelled. */
    if (of->released_first &&
        (!of->approved_first || time_cmp(of->released_first, of->approved_first) < 0)) {
        ev since = of->approved_first ? of->approved_first : of->released_first;
        order_item(r, FOLD_VIEW_ANOMALIES, oid, "RELEASE_BEFORE_APPROVAL", since, wh, ca)->pb.rule =
            str("RELEASE_BEFORE_APPROVAL");
    }
    if (of->invoice_first) {
        ev confirmed = NULL;
        for (size_t i = 0; i < p->n_shipments; i++)
            if (sf[i].confirmed_first) take_earliest(&confirmed, sf[i].confirmed_first);
        if (!confirmed || time_cmp(of->invoice_first, confirmed) < 0) {
            ev since = confirmed ? confirmed : of->invoice_first;
            order_item(r, FOLD_VIEW_ANOMALIES, oid, "INVOICE_BEFORE_SHIPMENT", since, wh, ca)->pb.rule =
                str("INVOICE_BEFORE_SHIPMENT");
        }
    }
    if (cancelled) {
        ev first = NULL;
        after_cancel(&first, &p->order, of->cancel_first);
        for (size_t i = 0; i < p->n_shipments; i++) after_cancel(&first, &p->shipments[i], of->cancel_first);
        if (first)
            order_item(r, FOLD_VIEW_ANOMALIES, oid, "ACTIVITY_AFTER_CANCEL", first, wh, ca)->pb.rule =
                str("ACTIVITY_AFTER_CANCEL");
    }
}

static void derive_shipment(const fold_sla_rules *rules, const fold_entity *s, const ship_facts *f,
                            const order_facts *of, const char *oid, int cancelled, const char *order_wh,
                            const char *order_ca, fold_result *r)
{
    const char *sid = s->id;
    const char *wh = f->wh_latest ? fold_event_warehouse(f->wh_latest) : order_wh;
    const char *ca = f->ca_latest ? fold_event_carrier(f->ca_latest) : order_ca;

    if (!cancelled) {
        if (f->block_latest && is(f->block_latest, TOWER__V1__EVENT__PAYLOAD_SHIPMENT_BLOCKED)) {
            fold_item *it = ship_item(r, FOLD_VIEW_BLOCKED, sid, oid, "SHIPMENT", f->block_latest, wh, ca);
            it->pb.kind = str("SHIPMENT");
            it->pb.reason = str(enum_name(&tower__v1__shipment_blocked__reason__descriptor,
                                          f->block_latest->shipment_blocked->has_reason,
                                          f->block_latest->shipment_blocked->reason));
        }
        if (f->ready_first && !f->confirmed_first && !f->delivered_first &&
            !(f->route_latest && is(f->route_latest, TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED))) {
            fold_item *it = ship_item(r, FOLD_VIEW_PENDING_ROUTE, sid, oid, NULL, f->ready_first, wh, ca);
            if (f->fail_latest) it->pb.last_failure = str(f->fail_latest->route_failed->reason);
        }
        if (f->delivered_first && !f->pod_first)
            ship_item(r, FOLD_VIEW_MISSING_POD, sid, oid, NULL, f->delivered_first, wh, ca);
        for (size_t i = 0; i < f->sla.n; i++) {
            ev b = f->sla.v[i].first;
            if (awaited_event(rules, f->sla.v[i].rule, of, f, NULL, 0)) continue;
            char *sub = sub_key(f->sla.v[i].rule);
            fold_item *it = ship_item(r, FOLD_VIEW_SLA_BREACHES, sid, oid, sub, b, wh, ca);
            free(sub);
            item_since(it, due_at(b))->pb.rule = str(f->sla.v[i].rule);
        }
    }
    if (!oid && f->named_first) ship_item(r, FOLD_VIEW_ORPHANS, sid, NULL, NULL, f->named_first, wh, ca);
    if (f->planned_first && (!f->ready_first || time_cmp(f->planned_first, f->ready_first) < 0)) {
        ev since = f->ready_first ? f->ready_first : f->planned_first;
        ship_item(r, FOLD_VIEW_ANOMALIES, sid, oid, "ROUTE_BEFORE_READY", since, wh, ca)->pb.rule =
            str("ROUTE_BEFORE_READY");
    }
}

/* ---- dues ------------------------------------------------------------------ */

static int ts_equal(const Tower__V1__Timestamp *a, const Tower__V1__Timestamp *b)
{
    return a->seconds == b->seconds && a->nanos == b->nanos;
}

/* Was this very due breached already (an slaBreached of the entity for the rule with this dueAt)? */
static int breached(const fold_entity *ent, char kind, const char *rule, const Tower__V1__Timestamp *due)
{
    for (size_t i = 0; i < ent->n_events; i++) {
        ev e = ent->events[i];
        if (!is(e, TOWER__V1__EVENT__PAYLOAD_SLA_BREACHED) || !e->sla_breached->rule) continue;
        if (kind == 'o' ? e->shipment_id != NULL : !(e->shipment_id && strcmp(e->shipment_id, ent->id) == 0))
            continue;
        if (strcmp(e->sla_breached->rule, rule) == 0 && ts_equal(due_at(e), due)) return 1;
    }
    return 0;
}

static void due_add(fold_result *r, const fold_entity *ent, char kind, const char *oid, const fold_sla_rule *rule,
                    ev from, const char *wh, const char *ca)
{
    Tower__V1__Timestamp t = TOWER__V1__TIMESTAMP__INIT;
    int64_t nanos = (int64_t)from->occurred_at->nanos + rule->within_ns % 1000000000LL;
    t.has_seconds = t.has_nanos = 1;
    t.seconds = from->occurred_at->seconds + rule->within_ns / 1000000000LL + nanos / 1000000000LL;
    t.nanos = (int32_t)(nanos % 1000000000LL);
    if (breached(ent, kind, rule->name, &t)) return;
    r->dues = ct_realloc(r->dues, (r->n_dues + 1) * sizeof *r->dues);
    r->dues[r->n_dues++] = (fold_due){kind, ent->id, oid, kind == 's' ? ent->id : NULL, rule->name, wh, ca, t};
}

/* The from-milestone of an order-level pair, or NULL. */
static ev order_from(fold_sla_pair pair, const order_facts *of, const ship_facts *sf, size_t ns)
{
    ev found = NULL;
    switch (pair) {
    case FOLD_SLA_RELEASE: return of->approved_first;
    case FOLD_SLA_READINESS: return of->released_first;
    case FOLD_SLA_INVOICING:
        for (size_t i = 0; i < ns; i++)
            if (sf[i].confirmed_first) take_earliest(&found, sf[i].confirmed_first);
        return found;
    case FOLD_SLA_POSTING_RECOVERY:
        return of->posting_latest && is(of->posting_latest, TOWER__V1__EVENT__PAYLOAD_POSTING_FAILED)
                   ? of->posting_latest
                   : NULL;
    default: return NULL;
    }
}

/* The open dues of the process: per rule name, the entry that applies to each entity. */
static void derive_dues(const fold_process *p, const fold_sla_rules *rules, const order_facts *of,
                        const ship_facts *sf, const char *wh, const char *ca, const char *channel, fold_result *r)
{
    for (size_t i = 0; i < rules->n; i++) {
        const char *name = rules->v[i].name;
        size_t j = 0;
        while (j < i && strcmp(rules->v[j].name, name) != 0) j++;
        if (j < i) continue; /* this name was done */
        if (p->order.id) {
            const fold_sla_rule *x = fold_sla_resolve(rules, name, wh, ca, channel);
            if (x && !x->disabled && fold_sla_pair_level(x->pair) == 'o') {
                ev from = order_from(x->pair, of, sf, p->n_shipments);
                if (from && !awaited_by_pair(x->pair, of, NULL, sf, p->n_shipments))
                    due_add(r, &p->order, 'o', p->order.id, x, from, wh, ca);
            }
        }
        for (size_t k = 0; k < p->n_shipments; k++) {
            const ship_facts *f = &sf[k];
            const char *swh = f->wh_latest ? fold_event_warehouse(f->wh_latest) : wh;
            const char *sca = f->ca_latest ? fold_event_carrier(f->ca_latest) : ca;
            const fold_sla_rule *x = fold_sla_resolve(rules, name, swh, sca, channel);
            if (!x || x->disabled || fold_sla_pair_level(x->pair) != 's') continue;
            ev from = x->pair == FOLD_SLA_ROUTING ? f->ready_first : x->pair == FOLD_SLA_POD ? f->delivered_first : NULL;
            if (from && !awaited_by_pair(x->pair, p->order.id ? of : NULL, f, NULL, 0))
                due_add(r, &p->shipments[k], 's', p->order.id, x, from, swh, sca);
        }
    }
}

void fold_result_free(fold_result *r)
{
    for (size_t i = 0; i < r->n_items; i++) {
        free(r->items[i].key);
        free(r->items[i].exid);
        free(r->items[i].due);
    }
    free(r->items);
    for (size_t i = 0; i < r->n_closed; i++) {
        free(r->closed[i].key);
        free(r->closed[i].exid);
        free(r->closed[i].due);
    }
    free(r->closed);
    free(r->shipment_stages);
    free(r->dues);
    free(r->breaches);
    memset(r, 0, sizeof *r);
}

void fold_derive(const fold_process *p, fold_result *out) { fold_derive_sla(p, NULL, out); }

void fold_derive_sla(const fold_process *p, const fold_sla_rules *rules, fold_result *out)
{
    if (!rules) rules = &defaults;
    fold__derive_raw(p, rules, out);
    fold__lifecycle(p, rules, out);
}

void fold__derive_raw(const fold_process *p, const fold_sla_rules *rules, fold_result *out)
{
    fold_result_free(out);
    ship_facts *sf = ct_calloc(p->n_shipments ? p->n_shipments : 1, sizeof *sf);
    out->shipment_stages = ct_calloc(p->n_shipments ? p->n_shipments : 1, sizeof *out->shipment_stages);
    for (size_t i = 0; i < p->n_shipments; i++) {
        ship_collect(&p->shipments[i], &sf[i]);
        out->shipment_stages[i] = sf[i].stage;
    }

    const char *wh = NULL, *ca = NULL;
    order_facts of;
    memset(&of, 0, sizeof of);
    if (p->order.id) {
        order_collect(&p->order, &of);
        /* The order's own events say where it is; failing that, its latest shipment event. */
        ev w = of.wh_latest, c = of.ca_latest;
        if (!w)
            for (size_t i = 0; i < p->n_shipments; i++)
                if (sf[i].wh_latest) take_latest(&w, sf[i].wh_latest);
        if (!c)
            for (size_t i = 0; i < p->n_shipments; i++)
                if (sf[i].ca_latest) take_latest(&c, sf[i].ca_latest);
        wh = w ? fold_event_warehouse(w) : NULL;
        ca = c ? fold_event_carrier(c) : NULL;
        derive_order(p, rules, &of, sf, wh, ca, out);

        fold_stage st = FOLD_STAGE_NONE;
        if (of.created) st = FOLD_STAGE_CREATED;
        if (of.approved_first) st = FOLD_STAGE_APPROVED;
        if (of.released_first) st = FOLD_STAGE_RELEASED;
        if (of.pick_first) st = FOLD_STAGE_PICKING;
        if (p->n_shipments) {
            fold_stage least = FOLD_STAGE_POD;
            for (size_t i = 0; i < p->n_shipments; i++)
                if (sf[i].stage < least) least = sf[i].stage;
            if (least > st) st = least;
        }
        if (of.invoice_first) st = FOLD_STAGE_INVOICED;
        if (of.cancel_first) st = FOLD_STAGE_CANCELLED;
        out->stage = st;
    }

    int cancelled = p->order.id && of.cancel_first;
    for (size_t i = 0; i < p->n_shipments; i++)
        derive_shipment(rules, &p->shipments[i], &sf[i], p->order.id ? &of : NULL, p->order.id, cancelled, wh, ca,
                        out);
    /* Reconciliation mismatches, whether or not the order is cancelled. */
    if (p->order.id) fold__mismatches(&p->order, 'o', NULL, wh, ca, out);
    for (size_t i = 0; i < p->n_shipments; i++) fold__mismatches(&p->shipments[i], 's', p->order.id, wh, ca, out);

    /* SLA: the open dues (none for a cancelled order), and every breach with whether it closed. */
    if (p->order.id && of.created && of.created->order_created->has_channel)
        out->channel = enum_name(&tower__v1__order_created__channel__descriptor, 1, of.created->order_created->channel);
    if (!cancelled) derive_dues(p, rules, p->order.id ? &of : NULL, sf, wh, ca, out->channel, out);
    for (size_t i = 0; p->order.id && i < of.sla.n; i++)
        breach_record(out, 'o', p->order.id, of.sla.v[i].rule, of.sla.v[i].first,
                      awaited_event(rules, of.sla.v[i].rule, &of, NULL, sf, p->n_shipments), cancelled);
    for (size_t k = 0; k < p->n_shipments; k++)
        for (size_t i = 0; i < sf[k].sla.n; i++)
            breach_record(out, 's', p->shipments[k].id, sf[k].sla.v[i].rule, sf[k].sla.v[i].first,
                          awaited_event(rules, sf[k].sla.v[i].rule, p->order.id ? &of : NULL, &sf[k], NULL, 0),
                          cancelled);

    for (size_t i = 0; i < p->n_shipments; i++) free(sf[i].sla.v);
    free(of.sla.v);
    free(of.skus);
    free(sf);
}
