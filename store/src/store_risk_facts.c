/* The lead-time and risk facts of one order process (docs/risk.md), pure: from its events, in any order. */
#include "store_risk_int.h"

#include <stdlib.h>
#include <string.h>

typedef const evt_event *ev;

static int64_t at(ev e) { return e && e->occurred_at ? e->occurred_at->seconds : 0; }

static void earliest(ev *slot, ev e)
{
    if (!*slot || fold_event_cmp(e, *slot) < 0) *slot = e;
}

static void latest(ev *slot, ev e)
{
    if (!*slot || fold_event_cmp(e, *slot) > 0) *slot = e;
}

static int route_names(ev e, const char *sid)
{
    if (e->payload_case != TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED) return 0;
    for (size_t i = 0; i < e->route_planned->n_stops; i++) {
        const char *s = e->route_planned->stops[i]->shipment_id;
        if (s && strcmp(s, sid) == 0) return 1;
    }
    return 0;
}

/* A shipment's earliest milestone per stage, PACKED..SHIPPED, then DELIVERED at index RISK_STAGE_COUNT. */
typedef struct ship_m {
    ev m[RISK_STAGE_COUNT + 1];
    ev wh, ca;
} ship_m;

static void ship_facts(const fold_entity *s, ship_m *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < s->n_events; i++) {
        ev e = s->events[i];
        if (evt_is_action(e)) continue;
        if (fold_event_warehouse(e)) latest(&f->wh, e);
        if (fold_event_carrier(e)) latest(&f->ca, e);
        switch (e->payload_case) {
        case TOWER__V1__EVENT__PAYLOAD_PACK_COMPLETED: earliest(&f->m[RISK_PACKED], e); break;
        case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_READY: earliest(&f->m[RISK_READY], e); break;
        case TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED:
            if (route_names(e, s->id)) earliest(&f->m[RISK_ROUTED], e);
            break;
        case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_CONFIRMED: earliest(&f->m[RISK_SHIPPED], e); break;
        case TOWER__V1__EVENT__PAYLOAD_DELIVERY_COMPLETED: earliest(&f->m[RISK_STAGE_COUNT], e); break;
        default: break;
        }
    }
}

typedef struct order_m {
    ev m[RISK_PICKING + 1];
    ev created_latest, cancel, risk_latest, wh, ca;
    uint32_t risk_n;
} order_m;

static void order_facts(const fold_entity *o, order_m *f)
{
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < o->n_events; i++) {
        ev e = o->events[i];
        if (evt_is_action(e)) continue;
        if (fold_event_warehouse(e)) latest(&f->wh, e);
        if (fold_event_carrier(e)) latest(&f->ca, e);
        switch (e->payload_case) {
        case TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED:
            earliest(&f->m[RISK_CREATED], e);
            latest(&f->created_latest, e);
            break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_APPROVED: earliest(&f->m[RISK_APPROVED], e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_RELEASED: earliest(&f->m[RISK_RELEASED], e); break;
        case TOWER__V1__EVENT__PAYLOAD_PICK_STARTED: earliest(&f->m[RISK_PICKING], e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_CANCELLED: earliest(&f->cancel, e); break;
        case TOWER__V1__EVENT__PAYLOAD_ORDER_AT_RISK:
        case TOWER__V1__EVENT__PAYLOAD_ORDER_BACK_ON_TRACK:
            latest(&f->risk_latest, e);
            f->risk_n++; /* the store keeps one copy per eventId */
            break;
        default: break;
        }
    }
}

/* When the shipment reached stage s or beyond: its earliest milestone of a stage >= s (0: none). */
static int64_t reach(const ship_m *f, int s)
{
    int64_t best = 0;
    for (int k = s; k <= RISK_STAGE_COUNT; k++)
        if (f->m[k] && (!best || at(f->m[k]) < best)) best = at(f->m[k]);
    return best;
}

/* The shipment stages' entry times: the least advanced shipment's, i.e. the latest of the shipments' own
 * earliest milestone of that stage; 0 when a shipment lacks it. Also the delivery. */
static void ship_stages(const ship_m *sm, size_t n, store__risk_facts *out)
{
    for (int st = RISK_PACKED; st <= RISK_STAGE_COUNT; st++) {
        int64_t t = 0;
        size_t have = 0;
        for (size_t i = 0; i < n; i++) {
            if (!sm[i].m[st]) break;
            have++;
            if (at(sm[i].m[st]) > t) t = at(sm[i].m[st]);
        }
        if (!n || have < n) t = 0;
        if (st < RISK_STAGE_COUNT) out->entered[st] = t;
        else out->delivered_at = t;
    }
}

static void where(const order_m *of, const ship_m *sm, size_t n, store__risk_facts *out)
{
    ev w = of->wh, c = of->ca;
    if (!w)
        for (size_t i = 0; i < n; i++)
            if (sm[i].wh) latest(&w, sm[i].wh);
    if (!c)
        for (size_t i = 0; i < n; i++)
            if (sm[i].ca) latest(&c, sm[i].ca);
    out->warehouse = w ? fold_event_warehouse(w) : NULL;
    out->carrier = c ? fold_event_carrier(c) : NULL;
}

/* The open order's stage (the fold's) and when it entered it. */
static void open_stage(const order_m *of, const ship_m *sm, size_t n, fold_stage stage, store__risk_facts *out)
{
    int s = (int)stage - (int)FOLD_STAGE_CREATED; /* FOLD_STAGE_CREATED..SHIPPED map onto risk_stage */
    if (s < 0 || s >= RISK_STAGE_COUNT) return;
    out->stage = (risk_stage)s;
    if (s <= RISK_PICKING) {
        out->stage_at = at(of->m[s]);
    } else {
        int64_t t = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t r = reach(&sm[i], s);
            if (r > t) t = r;
        }
        out->stage_at = t;
    }
    out->open = out->promised_by > 0;
}

void store__risk_facts_of(const fold_process *p, fold_stage stage, store__risk_facts *out)
{
    memset(out, 0, sizeof *out);
    order_m of;
    order_facts(&p->order, &of);
    ship_m *sm = ct_calloc(p->n_shipments ? p->n_shipments : 1, sizeof *sm);
    for (size_t i = 0; i < p->n_shipments; i++) ship_facts(&p->shipments[i], &sm[i]);
    where(&of, sm, p->n_shipments, out);
    for (int s = RISK_CREATED; s <= RISK_PICKING; s++) out->entered[s] = at(of.m[s]);
    ship_stages(sm, p->n_shipments, out);
    const Tower__V1__OrderCreated *oc = of.created_latest ? of.created_latest->order_created : NULL;
    if (oc && oc->promised_by) out->promised_by = oc->promised_by->seconds;
    out->changes = of.risk_n;
    if (of.risk_latest) {
        out->at_risk = of.risk_latest->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_AT_RISK;
        out->changed_at = at(of.risk_latest);
    }
    if (of.cancel) {
        out->delivered_at = 0;
    } else if (out->delivered_at) {
        out->delivered = 1;
    } else {
        open_stage(&of, sm, p->n_shipments, stage, out);
    }
    free(sm);
}
