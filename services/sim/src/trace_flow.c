/* The story of each order: ERP, WMS, route planner, carrier and finance steps, scheduled as future events. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Scheduled steps. The entity a step holds decides its range: orders, then shipments, ticks, routes. */
enum {
    OP_ARRIVE,
    OP_HOLD,
    OP_HOLD_RELEASE,
    OP_APPROVE,
    OP_RELEASE,
    OP_PICK,
    OP_SHORT,
    OP_RESOLVE,
    OP_CANCEL,
    OP_PACK,
    OP_INVOICE,
    OP_SLA_RELEASE,
    OP_SLA_POSTING,
    OP_READY,
    OP_BLOCK,
    OP_UNBLOCK,
    OP_CONFIRM,
    OP_ATTEMPT,
    OP_DELIVER,
    OP_POD,
    OP_SLA_ROUTING,
    OP_TICK,
    OP_PLAN,
    OP_DISPATCH
};

/* Where a cancellation happens, instead of the next step. */
enum { CS_NONE, CS_CREATED, CS_HELD, CS_APPROVED, CS_RELEASED, CS_PICKED, CS_COUNT };
/* Where a stuck order stops for good, so that every view of the tower gets items. */
enum {
    ST_NONE,
    ST_CREATED,
    ST_HOLD,
    ST_APPROVED,
    ST_RELEASED,
    ST_SHORT,
    ST_BLOCK,
    ST_READY,
    ST_ROUTE_FAIL,
    ST_CONFIRMED,
    ST_POSTING,
    ST_NO_INVOICE,
    ST_COUNT
};
/* Sequence anomalies: what integrations get wrong in the field. */
enum { DR_NONE, DR_RELEASE_EARLY, DR_NO_READY, DR_EARLY_INVOICE, DR_COUNT };

static const char *const channels[] = {"ECOMMERCE", "EDI", "SERVICE"};
static const char *const currencies[] = {"EUR", "USD", "GBP"};
static const char *const hold_reasons[] = {"CREDIT", "PRICING", "ALLOCATION", "OTHER"};
static const char *const block_reasons[] = {"DOCK_CAPACITY", "DAMAGE", "INVENTORY"};
static const char *const cancel_reasons[] = {"CUSTOMER_REQUEST", "CREDIT_REJECTED", "OUT_OF_STOCK",
                                             "DUPLICATE_ORDER"};
static const char *const route_fail_reasons[] = {"SOLVER_TIMEOUT", "NO_VEHICLE_CAPACITY", "TIME_WINDOW_INFEASIBLE",
                                                 "API_RATE_LIMITED"};
static const char *const attempt_reasons[] = {"RECIPIENT_ABSENT", "ADDRESS_NOT_FOUND", "REFUSED",
                                              "ACCESS_RESTRICTED"};
static const char *const posting_reasons[] = {"ERP interface timeout", "GL period closed", "tax code missing",
                                              "customer account locked"};
static const char *const posting_ifaces[] = {"IDOC_INVOIC", "FI_GL_POST", "TAX_ENGINE", "AR_OPEN_ITEMS"};

/* ---- Entities and their references ---- */

static void order_unref(sim_trace *t, sim__order *o)
{
    if (--o->refs > 0) return;
    free(o);
    t->st.orders_live--;
}

static void ship_unref(sim_trace *t, sim__ship *s)
{
    if (--s->refs > 0) return;
    order_unref(t, s->o);
    free(s);
    t->st.shipments_live--;
}

static void route_unref(sim_trace *t, sim__route *r)
{
    if (--r->refs > 0) return;
    for (int i = 0; i < r->n; i++) ship_unref(t, r->s[i]);
    free(r);
    t->st.routes_live--;
}

static void ent_ref(uint32_t op, void *ent)
{
    if (!ent) return;
    if (op < OP_READY)
        ((sim__order *)ent)->refs++;
    else if (op < OP_TICK)
        ((sim__ship *)ent)->refs++;
    else
        ((sim__route *)ent)->refs++;
}

static void ent_unref(sim_trace *t, uint32_t op, void *ent)
{
    if (!ent) return;
    if (op < OP_READY)
        order_unref(t, ent);
    else if (op < OP_TICK)
        ship_unref(t, ent);
    else
        route_unref(t, ent);
}

static void sched(sim_trace *t, int64_t at, uint32_t op, void *ent, uint32_t arg)
{
    sim__action a = {{at, t->seq++}, ent, op, arg};
    ent_ref(op, ent);
    sim__heap_push(&t->acts, &a);
}

/* A time between lo and hi from now, in whole microseconds as source clocks keep them. */
static int64_t after(sim_trace *t, int64_t lo, int64_t hi)
{
    return t->now + lo + sim__rng_range(&t->rng, 0, (hi - lo) / 1000) * 1000;
}

static int64_t pick(sim_trace *t, int64_t lo, int64_t hi) { return sim__rng_range(&t->rng, lo, hi); }

static int chance(sim_trace *t, double p) { return sim__rng_chance(&t->rng, p); }

/* Bad days (sim_trace_opts.bad_days; predicted risk, docs/simulators.md): a warehouse starts picking 3-6 h late on about one day in five,
 * a carrier delivers 4-9 h late on about one day in six. Decided by a hash of the seed, the site and the day,
 * not by the random sequence. kind 0: warehouse, 1: carrier. */
static int64_t bad_day_delay(const sim_trace *t, int kind, int site, int64_t at)
{
    if (!t->o.bad_days) return 0;
    /* Days counted from the trace's start, not the calendar: the trace stays a function of its options. */
    int64_t day = (at - t->o.start_ns) / SIM__DAY - (at < t->o.start_ns);
    uint64_t h = t->o.seed * 0x9E3779B97F4A7C15ULL ^ (uint64_t)kind << 56 ^ (uint64_t)site << 40 ^ (uint64_t)day;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    if (h % (kind ? 6 : 5)) return 0;
    return (int64_t)((kind ? 4 : 3) + (h >> 8) % (kind ? 6 : 4)) * SIM__HOUR;
}

static int wms(const sim__order *o) { return SIM__INST_WMS0 + o->wh; }

static int carrier_inst(const sim_trace *t, int c) { return SIM__INST_WMS0 + (int)t->o.warehouses + c; }

static const char *carrier_id(const sim_trace *t, int c) { return t->inst[carrier_inst(t, c)].name; }

/* Begin an event with its correlation keys; returns its payload object. */
static int ev(sim_trace *t, int inst, int64_t at, const char *oid, const char *sid, const char *rid,
              const char *payload)
{
    sim__ev_begin(t, inst, at);
    if (oid) sim__doc_str(&t->doc, 0, "orderId", oid);
    if (sid) sim__doc_str(&t->doc, 0, "shipmentId", sid);
    if (rid) sim__doc_str(&t->doc, 0, "routeId", rid);
    return sim__doc_obj(&t->doc, 0, payload);
}

static void put(sim_trace *t, int node, const char *key, const char *val) { sim__doc_str(&t->doc, node, key, val); }

/* ---- Orders ---- */

static int64_t unit_price_cents(uint32_t sku) { return 199 + (int64_t)((sku * 2654435761u) % 24800u); }

static void fate(sim_trace *t, sim__order *o)
{
    const sim_trace_opts *p = &t->o;
    o->wh = (uint16_t)pick(t, 0, (int64_t)p->warehouses - 1);
    int64_t c = pick(t, 0, 99);
    o->channel = c < 60 ? 0 : c < 88 ? 1 : 2;
    o->customer = (uint32_t)pick(t, 10000, 99999);
    o->nlines = (uint8_t)pick(t, 1, o->channel == 1 ? SIM__MAX_LINES : 3);
    for (int i = 0; i < o->nlines; i++) {
        uint32_t sku;
        int again;
        do {
            sku = (uint32_t)pick(t, 10000, 13999);
            again = 0;
            for (int j = 0; j < i; j++) again |= o->sku[j] == sku;
        } while (again);
        o->sku[i] = sku;
        o->qty[i] = (uint16_t)(o->channel == 1 ? 12 * pick(t, 1, 20) : pick(t, 1, o->channel == 0 ? 3 : 10));
        o->amount_cents += o->qty[i] * unit_price_cents(sku);
    }
    if (t->o.mdm) sim__mdm_skus(t, o);
    c = pick(t, 0, 99);
    o->currency = c < 60 ? 0 : c < 85 ? 1 : 2;
    o->hold = (uint8_t)chance(t, p->p_hold);
    o->hold_reason = (uint8_t)(pick(t, 0, 99) < 95 ? pick(t, 0, 2) : 3);
    o->short_pick = (uint8_t)chance(t, p->p_short_pick);
    o->short_line = (uint8_t)pick(t, 0, o->nlines - 1);
    o->nship = (uint8_t)(chance(t, p->p_multi_shipment) ? pick(t, 2, 3) : 1);
    int cancel = chance(t, p->p_cancel);
    int cstage = (int)pick(t, CS_CREATED, CS_COUNT - 1);
    int cdrift = chance(t, 0.35);
    int stuck = chance(t, p->p_stuck);
    int sstage = (int)pick(t, ST_NONE + 1, ST_COUNT - 1);
    int drift = chance(t, p->p_drift);
    int dkind = (int)pick(t, DR_NONE + 1, DR_COUNT - 1);
    o->slow_release = (uint8_t)chance(t, 0.05);
    if (cancel) {
        if (cstage == CS_HELD && !o->hold) cstage = CS_APPROVED;
        o->cancel_at = (uint8_t)cstage;
        /* Only a pick or a pack can still happen after a cancellation that came too late. */
        o->cancel_drift = (uint8_t)(cdrift && (cstage == CS_RELEASED || cstage == CS_PICKED));
    } else if (stuck) {
        o->stuck = (uint8_t)sstage;
        if (sstage == ST_HOLD) o->hold = 1;
        if (sstage == ST_SHORT) o->short_pick = 1;
    } else if (drift) {
        o->drift = (uint8_t)dkind;
    }
}

static sim__order *order_new(sim_trace *t)
{
    sim__order *o = ct_calloc(1, sizeof *o);
    o->refs = 1;
    o->num = 100000 + t->created++;
    snprintf(o->id, sizeof o->id, "SO-%s%u", t->tag, (unsigned)o->num);
    t->st.orders_live++;
    return o;
}

static int64_t interarrival(sim_trace *t)
{
    double mean = 60.0 * (double)SIM__SEC / t->o.orders_per_minute;
    double d = -log1p(-sim__rng_unit(&t->rng)) * mean;
    return d > 1e15 ? (int64_t)1e15 : (int64_t)d / 1000 * 1000;
}

/* A WMS shipment that never came from an ERP order (a manual one), blocked at the dock: an orphan. */
static void stray_blocked(sim_trace *t, int wh)
{
    char sid[32];
    snprintf(sid, sizeof sid, "SH-M%s%06llu", t->tag, (unsigned long long)++t->stray_num);
    int p = ev(t, SIM__INST_WMS0 + wh, t->now, NULL, sid, NULL, "shipmentBlocked");
    put(t, p, "reason", "DAMAGE");
    put(t, p, "warehouseId", t->whname[wh]);
    sim__ev_finish(t);
}

static void breach(sim_trace *t, const char *oid, const char *sid, const char *rule, int64_t due, int wh)
{
    int p = ev(t, SIM__INST_TOWER, t->now, oid, sid, NULL, "slaBreached");
    put(t, p, "rule", rule);
    sim__doc_time(&t->doc, p, "dueAt", due);
    put(t, p, "warehouseId", t->whname[wh]);
    sim__ev_finish(t);
}

static void on_arrive(sim_trace *t)
{
    sim__order *o = order_new(t);
    fate(t, o);
    if (t->created < t->o.orders) sched(t, t->now + interarrival(t), OP_ARRIVE, NULL, 0);
    int p = ev(t, SIM__INST_ERP, t->now, o->id, NULL, NULL, "orderCreated");
    char buf[32];
    snprintf(buf, sizeof buf, "C-%05u", (unsigned)o->customer);
    put(t, p, "customerId", buf);
    put(t, p, "channel", channels[o->channel]);
    int lines = sim__doc_arr(&t->doc, p, "lines");
    for (int i = 0; i < o->nlines; i++) {
        int l = sim__doc_obj(&t->doc, lines, NULL);
        snprintf(buf, sizeof buf, "SKU-%05u", (unsigned)o->sku[i]);
        put(t, l, "sku", buf);
        sim__doc_int(&t->doc, l, "qty", o->qty[i]);
    }
    /* The promise: delivery within 9 h (e-commerce), 12 h (EDI) or 7 h (service), to the next whole hour; most
       orders make it, not those of a warehouse's or carrier's bad day (bad_day_delay). The draw that once set a
       promise days ahead is kept, so that the rest of the trace is the same. */
    static const int64_t promise_h[] = {9, 12, 7};
    (void)pick(t, 2, o->channel == 1 ? 7 : 4);
    int64_t promise = t->now + promise_h[o->channel % 3] * SIM__HOUR;
    sim__doc_time(&t->doc, p, "promisedBy", (promise + SIM__HOUR - 1) / SIM__HOUR * SIM__HOUR);
    sim__ev_finish(t);
    int stray = chance(t, t->o.p_stuck * 0.5);
    if (stray) stray_blocked(t, (int)pick(t, 0, (int64_t)t->o.warehouses - 1));
    if (o->cancel_at == CS_CREATED)
        sched(t, after(t, 5 * SIM__MIN, 90 * SIM__MIN), OP_CANCEL, o, 0);
    else if (o->stuck == ST_CREATED)
        ;
    else if (o->hold)
        sched(t, after(t, SIM__MIN, 6 * SIM__MIN), OP_HOLD, o, 0);
    else
        sched(t, after(t, SIM__MIN, 8 * SIM__MIN), OP_APPROVE, o, 0);
    order_unref(t, o);
}

static void on_hold(sim_trace *t, sim__order *o)
{
    int p = ev(t, SIM__INST_ERP, t->now, o->id, NULL, NULL, "orderHeld");
    put(t, p, "reason", hold_reasons[o->hold_reason]);
    sim__ev_finish(t);
    if (o->cancel_at == CS_HELD)
        sched(t, after(t, 30 * SIM__MIN, 3 * SIM__HOUR), OP_CANCEL, o, 0);
    else if (o->stuck != ST_HOLD)
        sched(t, after(t, 10 * SIM__MIN, 3 * SIM__HOUR), OP_HOLD_RELEASE, o, 0);
}

static void on_hold_release(sim_trace *t, sim__order *o)
{
    ev(t, SIM__INST_ERP, t->now, o->id, NULL, NULL, "orderHoldReleased");
    sim__ev_finish(t);
    sched(t, after(t, SIM__MIN, 5 * SIM__MIN), OP_APPROVE, o, 0);
}

static void release(sim_trace *t, sim__order *o, int64_t at)
{
    int p = ev(t, SIM__INST_ERP, at, o->id, NULL, NULL, "orderReleased");
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    o->released = 1;
    if (o->drift == DR_EARLY_INVOICE) {
        /* Prepaid web orders invoiced at release: before any shipment can have left. */
        o->invoice_sched = 1;
        sched(t, after(t, 15 * SIM__MIN, 50 * SIM__MIN), OP_INVOICE, o, 0);
    }
    if (o->cancel_at == CS_RELEASED)
        sched(t, after(t, 5 * SIM__MIN, 30 * SIM__MIN), OP_CANCEL, o, 0);
    else if (o->stuck != ST_RELEASED)
        sched(t, after(t, 10 * SIM__MIN, 60 * SIM__MIN) + bad_day_delay(t, 0, o->wh, t->now), OP_PICK, o, 0);
}

static void on_approve(sim_trace *t, sim__order *o)
{
    int p = ev(t, SIM__INST_ERP, t->now, o->id, NULL, NULL, "orderApproved");
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    o->approved_at = t->ev_at;
    sched(t, o->approved_at + 15 * SIM__MIN + pick(t, 5 * SIM__SEC, 60 * SIM__SEC), OP_SLA_RELEASE, o, 0);
    if (o->cancel_at == CS_APPROVED)
        sched(t, after(t, 2 * SIM__MIN, 12 * SIM__MIN), OP_CANCEL, o, 0);
    else if (o->stuck == ST_APPROVED)
        ;
    else if (o->drift == DR_RELEASE_EARLY)
        release(t, o, t->now - pick(t, 2, 45) * SIM__SEC); /* The ERP stamped the release before the approval. */
    else if (o->slow_release)
        sched(t, after(t, 16 * SIM__MIN, 45 * SIM__MIN), OP_RELEASE, o, 0);
    else
        sched(t, after(t, SIM__MIN, 10 * SIM__MIN), OP_RELEASE, o, 0);
}

static void on_sla_release(sim_trace *t, sim__order *o)
{
    if (!o->released && !o->cancelled) breach(t, o->id, NULL, "release", o->approved_at + 15 * SIM__MIN, o->wh);
}

static void on_pick(sim_trace *t, sim__order *o)
{
    sim__civil c;
    char wave[48];
    sim__civil_of(t->now, &c);
    /* Waves are released every half hour per warehouse. */
    snprintf(wave, sizeof wave, "WV-%u-%04d%02d%02d-%02d", (unsigned)o->wh + 1, c.year, c.month, c.day,
             c.hour * 2 + c.minute / 30);
    int p = ev(t, wms(o), t->now, o->id, NULL, NULL, "pickStarted");
    put(t, p, "warehouseId", t->whname[o->wh]);
    put(t, p, "waveId", wave);
    sim__ev_finish(t);
    if (o->after_cancel) return;
    if (o->short_pick)
        sched(t, after(t, 5 * SIM__MIN, 25 * SIM__MIN), OP_SHORT, o, 0);
    else if (o->cancel_at == CS_PICKED)
        sched(t, after(t, 5 * SIM__MIN, 20 * SIM__MIN), OP_CANCEL, o, 0);
    else
        sched(t, after(t, 10 * SIM__MIN, 40 * SIM__MIN), OP_PACK, o, 0);
}

static void on_short(sim_trace *t, sim__order *o)
{
    char sku[32];
    snprintf(sku, sizeof sku, "SKU-%05u", (unsigned)o->sku[o->short_line]);
    int p = ev(t, wms(o), t->now, o->id, NULL, NULL, "pickShort");
    put(t, p, "sku", sku);
    sim__doc_int(&t->doc, p, "qtyShort", pick(t, 1, o->qty[o->short_line]));
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    if (o->stuck != ST_SHORT) sched(t, after(t, 15 * SIM__MIN, 2 * SIM__HOUR), OP_RESOLVE, o, 0);
}

static void on_resolve(sim_trace *t, sim__order *o)
{
    char sku[32];
    snprintf(sku, sizeof sku, "SKU-%05u", (unsigned)o->sku[o->short_line]);
    int p = ev(t, wms(o), t->now, o->id, NULL, NULL, "inventoryResolved");
    put(t, p, "sku", sku);
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    if (o->cancel_at == CS_PICKED)
        sched(t, after(t, 5 * SIM__MIN, 20 * SIM__MIN), OP_CANCEL, o, 0);
    else
        sched(t, after(t, 5 * SIM__MIN, 20 * SIM__MIN), OP_PACK, o, 0);
}

static void on_cancel(sim_trace *t, sim__order *o)
{
    int p = ev(t, SIM__INST_ERP, t->now, o->id, NULL, NULL, "orderCancelled");
    put(t, p, "reason", cancel_reasons[pick(t, 0, N_OF(cancel_reasons) - 1)]);
    sim__ev_finish(t);
    o->cancelled = 1;
    if (!o->cancel_drift) return;
    /* The cancellation reached the warehouse too late: one more pick or pack happens anyway. */
    o->after_cancel = 1;
    if (o->cancel_at == CS_RELEASED)
        sched(t, after(t, 2 * SIM__MIN, 15 * SIM__MIN), OP_PICK, o, 0);
    else
        sched(t, after(t, 3 * SIM__MIN, 20 * SIM__MIN), OP_PACK, o, 0);
}

static void on_pack(sim_trace *t, sim__order *o, uint32_t k)
{
    sim__ship *s = ct_calloc(1, sizeof *s);
    s->refs = 1;
    s->o = o;
    o->refs++;
    s->idx = (uint8_t)k;
    snprintf(s->id, sizeof s->id, "SH-%s%u-%u", t->tag, (unsigned)o->num, (unsigned)k + 1);
    s->dock = (uint8_t)pick(t, 1, 12);
    s->cartons = (uint16_t)(o->channel == 1 ? pick(t, 3, 24) : pick(t, 1, 4));
    t->st.shipments_live++;
    /* Weight in hundredths of a kilogram, written with two decimals: no floating point in the trace. */
    int64_t weight = s->cartons * pick(t, 150, 1800);
    int p = ev(t, wms(o), t->now, o->id, s->id, NULL, "packCompleted");
    sim__doc_int(&t->doc, p, "cartons", s->cartons);
    sim__doc_fixed(&t->doc, p, "weightKg", weight, 2);
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    if (!o->after_cancel) {
        sched(t, after(t, 5 * SIM__MIN, 20 * SIM__MIN), OP_READY, s, 0);
        if (k + 1 < o->nship) sched(t, after(t, 3 * SIM__MIN, 15 * SIM__MIN), OP_PACK, o, k + 1);
    }
    ship_unref(t, s);
}

static void on_invoice(sim_trace *t, sim__order *o)
{
    int fail = chance(t, t->o.p_posting_fail);
    if ((o->stuck == ST_POSTING && !o->failed_once) || fail) {
        int64_t e = pick(t, 0, N_OF(posting_reasons) - 1);
        int p = ev(t, SIM__INST_FIN, t->now, o->id, NULL, NULL, "postingFailed");
        put(t, p, "reason", posting_reasons[e]);
        put(t, p, "interface", posting_ifaces[e]);
        sim__ev_finish(t);
        o->failed_once = 1;
        o->failed_at = t->ev_at;
        sched(t, o->failed_at + SIM__HOUR + pick(t, 5 * SIM__SEC, 60 * SIM__SEC), OP_SLA_POSTING, o, 0);
        /* Finance gives up after a few automatic retries, so that the trace ends whatever the rate. */
        if (o->stuck != ST_POSTING && ++o->posting_fails < SIM__MAX_RETRIES)
            sched(t, after(t, 20 * SIM__MIN, 100 * SIM__MIN), OP_INVOICE, o, 0);
        return;
    }
    sim__civil c;
    char inv[48], amount[48];
    sim__civil_of(t->now, &c);
    snprintf(inv, sizeof inv, "INV-%04d-%s%07llu", c.year, t->tag, (unsigned long long)++t->invoice_num);
    snprintf(amount, sizeof amount, "%lld.%02lld", (long long)(o->amount_cents / 100),
             (long long)(o->amount_cents % 100));
    int p = ev(t, SIM__INST_FIN, t->now, o->id, NULL, NULL, "invoicePosted");
    put(t, p, "invoiceId", inv);
    put(t, p, "amount", amount);
    put(t, p, "currency", currencies[o->currency]);
    sim__ev_finish(t);
    o->posted = 1;
}

static void on_sla_posting(sim_trace *t, sim__order *o)
{
    /* Only the latest failure's own check reports; an earlier one finds its deadline moved on. */
    int64_t due = o->failed_at + SIM__HOUR;
    if (!o->posted && t->now >= due) breach(t, o->id, NULL, "posting_recovery", due, o->wh);
}

/* ---- Shipments and the route planner ---- */

static void pool_join(sim_trace *t, sim__ship *s, int64_t lo, int64_t hi)
{
    sim__pool *p = &t->pools[s->o->wh];
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->items = ct_realloc(p->items, p->cap * sizeof *p->items);
    }
    p->items[p->n++] = s;
    s->refs++;
    if (!p->tick_pending) {
        p->tick_pending = 1;
        sched(t, after(t, lo, hi), OP_TICK, NULL, s->o->wh);
    }
}

static void on_ready(sim_trace *t, sim__ship *s)
{
    sim__order *o = s->o;
    int first = s->idx == 0;
    if (!(o->drift == DR_NO_READY && first)) {
        char dock[32];
        snprintf(dock, sizeof dock, "D%u-%02u", (unsigned)o->wh + 1, (unsigned)s->dock);
        int p = ev(t, wms(o), t->now, o->id, s->id, NULL, "shipmentReady");
        put(t, p, "warehouseId", t->whname[o->wh]);
        put(t, p, "dockId", dock);
        sim__ev_finish(t);
        s->ready_at = t->ev_at;
        sched(t, s->ready_at + SIM__HOUR + pick(t, 5 * SIM__SEC, 60 * SIM__SEC), OP_SLA_ROUTING, s, 0);
    } /* Otherwise the readiness message was lost, yet the shipment goes on to be routed. */
    int block = chance(t, t->o.p_block);
    if ((o->stuck == ST_BLOCK && first) || block)
        sched(t, after(t, SIM__MIN, 15 * SIM__MIN), OP_BLOCK, s, 0);
    else if (o->stuck == ST_READY && first)
        ; /* The planner never hears of it. */
    else {
        s->must_fail = (uint8_t)(o->stuck == ST_ROUTE_FAIL && first);
        pool_join(t, s, 5 * SIM__MIN, 15 * SIM__MIN);
    }
}

static void on_block(sim_trace *t, sim__ship *s)
{
    sim__order *o = s->o;
    int p = ev(t, wms(o), t->now, NULL, s->id, NULL, "shipmentBlocked");
    put(t, p, "reason", block_reasons[pick(t, 0, N_OF(block_reasons) - 1)]);
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    if (!(o->stuck == ST_BLOCK && s->idx == 0))
        sched(t, after(t, 15 * SIM__MIN, 150 * SIM__MIN), OP_UNBLOCK, s, 0);
}

static void on_unblock(sim_trace *t, sim__ship *s)
{
    int p = ev(t, wms(s->o), t->now, NULL, s->id, NULL, "shipmentUnblocked");
    put(t, p, "warehouseId", t->whname[s->o->wh]);
    sim__ev_finish(t);
    pool_join(t, s, 5 * SIM__MIN, 15 * SIM__MIN);
}

static void on_sla_routing(sim_trace *t, sim__ship *s)
{
    if (!s->planned) breach(t, NULL, s->id, "routing", s->ready_at + SIM__HOUR, s->o->wh);
}

static void ship_list(sim_trace *t, int payload, const sim__route *r)
{
    int arr = sim__doc_arr(&t->doc, payload, "shipmentIds");
    for (int i = 0; i < r->n; i++) put(t, arr, NULL, r->s[i]->id);
}

static void on_tick(sim_trace *t, uint32_t wh)
{
    sim__pool *p = &t->pools[wh];
    p->tick_pending = 0;
    /* The planner batches everything ready in one warehouse into multi-stop requests. */
    while (p->n) {
        sim__route *r = ct_calloc(1, sizeof *r);
        r->refs = 1;
        r->num = (uint32_t)++t->route_num;
        r->wh = (uint16_t)wh;
        t->st.routes_live++;
        size_t take = 1, want = (size_t)pick(t, 3, SIM__MAX_STOPS);
        if (p->items[0]->must_fail)
            r->must_fail = 1; /* An address the planner cannot geocode: planned alone, it fails for good. */
        else
            while (take < want && take < p->n && !p->items[take]->must_fail) take++;
        memcpy(r->s, p->items, take * sizeof *p->items);
        r->n = (uint8_t)take;
        p->n -= take;
        memmove(p->items, p->items + take, p->n * sizeof *p->items);
        int pl = ev(t, SIM__INST_TMS, t->now, NULL, NULL, NULL, "routeRequested");
        ship_list(t, pl, r);
        int stray = chance(t, t->o.p_stuck * 0.5);
        if (stray) {
            /* A shipment keyed by hand in the planner, known to no order: an orphan. */
            char sid[32];
            snprintf(sid, sizeof sid, "SH-M%s%06llu", t->tag, (unsigned long long)++t->stray_num);
            put(t, sim__doc_find(&t->doc, pl, "shipmentIds"), NULL, sid);
        }
        put(t, pl, "warehouseId", t->whname[wh]);
        sim__ev_finish(t);
        sched(t, after(t, SIM__MIN, 6 * SIM__MIN), OP_PLAN, r, 0);
        route_unref(t, r);
    }
}

static void route_id(const sim_trace *t, const sim__route *r, char *out, size_t cap)
{
    snprintf(out, cap, "RT-%s%06u", t->tag, (unsigned)r->num);
}

static void on_plan(sim_trace *t, sim__route *r)
{
    int fail = chance(t, t->o.p_route_fail);
    if (fail || r->must_fail) {
        int p = ev(t, SIM__INST_TMS, t->now, NULL, NULL, NULL, "routeFailed");
        ship_list(t, p, r);
        put(t, p, "reason",
            r->must_fail ? "ADDRESS_NOT_GEOCODED" : route_fail_reasons[pick(t, 0, N_OF(route_fail_reasons) - 1)]);
        put(t, p, "warehouseId", t->whname[r->wh]);
        sim__ev_finish(t);
        /* Retried later with whatever else is ready then, a few times at most so that the trace ends. */
        for (int i = 0; i < r->n && !r->must_fail; i++)
            if (++r->s[i]->route_fails < SIM__MAX_RETRIES) pool_join(t, r->s[i], 15 * SIM__MIN, 45 * SIM__MIN);
        return;
    }
    char rid[32], vehicle[48];
    r->carrier = (uint8_t)pick(t, 0, SIM__NCARRIERS - 1);
    r->vehicle = (uint16_t)pick(t, 1, 60);
    route_id(t, r, rid, sizeof rid);
    snprintf(vehicle, sizeof vehicle, "VH-%s-%03u", carrier_id(t, r->carrier), (unsigned)r->vehicle);
    int64_t dispatch = after(t, 20 * SIM__MIN, 90 * SIM__MIN);
    int64_t eta = dispatch + pick(t, 25 * SIM__MIN, 50 * SIM__MIN);
    int p = ev(t, SIM__INST_TMS, t->now, NULL, NULL, rid, "routePlanned");
    put(t, p, "vehicleId", vehicle);
    put(t, p, "carrierId", carrier_id(t, r->carrier));
    int stops = sim__doc_arr(&t->doc, p, "stops");
    for (int i = 0; i < r->n; i++) {
        sim__ship *s = r->s[i];
        s->eta = eta - eta % SIM__MIN;
        s->carrier = r->carrier;
        s->planned = 1;
        int st = sim__doc_obj(&t->doc, stops, NULL);
        put(t, st, "shipmentId", s->id);
        sim__doc_int(&t->doc, st, "sequence", i + 1);
        sim__doc_time(&t->doc, st, "eta", s->eta);
        eta += pick(t, 8 * SIM__MIN, 35 * SIM__MIN);
    }
    put(t, p, "warehouseId", t->whname[r->wh]);
    sim__ev_finish(t);
    sched(t, dispatch, OP_DISPATCH, r, 0);
}

static void on_dispatch(sim_trace *t, sim__route *r)
{
    char rid[32];
    route_id(t, r, rid, sizeof rid);
    int p = ev(t, SIM__INST_TMS, t->now, NULL, NULL, rid, "routeDispatched");
    put(t, p, "warehouseId", t->whname[r->wh]);
    put(t, p, "carrierId", carrier_id(t, r->carrier));
    sim__ev_finish(t);
    for (int i = 0; i < r->n; i++) sched(t, after(t, SIM__MIN, 8 * SIM__MIN), OP_CONFIRM, r->s[i], 0);
}

static void on_confirm(sim_trace *t, sim__ship *s)
{
    sim__order *o = s->o;
    int p = ev(t, wms(o), t->now, o->id, s->id, NULL, "shipmentConfirmed");
    put(t, p, "carrierId", carrier_id(t, s->carrier));
    put(t, p, "warehouseId", t->whname[o->wh]);
    sim__ev_finish(t);
    if (!o->invoice_sched && o->stuck != ST_NO_INVOICE) {
        /* Finance invoices in the nightly run after the first shipment left. */
        o->invoice_sched = 1;
        sched(t, after(t, 12 * SIM__HOUR, 30 * SIM__HOUR), OP_INVOICE, o, 0);
    }
    int attempt = chance(t, t->o.p_attempt_fail);
    int64_t at = s->eta + pick(t, -20 * SIM__MIN, 45 * SIM__MIN);
    at += bad_day_delay(t, 1, s->carrier, at);
    if (at < t->now + 10 * SIM__MIN) at = t->now + 10 * SIM__MIN;
    if (o->stuck == ST_CONFIRMED && s->idx == 0) return; /* Lost in the carrier's network. */
    sched(t, at, attempt ? OP_ATTEMPT : OP_DELIVER, s, 0);
}

static void on_attempt(sim_trace *t, sim__ship *s)
{
    int p = ev(t, carrier_inst(t, s->carrier), t->now, NULL, s->id, NULL, "deliveryAttempted");
    put(t, p, "reason", attempt_reasons[pick(t, 0, N_OF(attempt_reasons) - 1)]);
    put(t, p, "carrierId", carrier_id(t, s->carrier));
    sim__ev_finish(t);
    int same_day = chance(t, 0.6);
    sched(t, same_day ? after(t, 2 * SIM__HOUR, 6 * SIM__HOUR) : after(t, 16 * SIM__HOUR, 26 * SIM__HOUR), OP_DELIVER,
          s, 0);
}

static void on_deliver(sim_trace *t, sim__ship *s)
{
    int p = ev(t, carrier_inst(t, s->carrier), t->now, NULL, s->id, NULL, "deliveryCompleted");
    put(t, p, "carrierId", carrier_id(t, s->carrier));
    sim__ev_finish(t);
    int missing = chance(t, t->o.p_missing_pod);
    if (!missing) sched(t, after(t, 10 * SIM__SEC, 20 * SIM__MIN), OP_POD, s, 0);
}

static void on_pod(sim_trace *t, sim__ship *s)
{
    char ref[48];
    snprintf(ref, sizeof ref, "POD-%s-%08llu", carrier_id(t, s->carrier), (unsigned long long)++t->pod_num);
    int p = ev(t, carrier_inst(t, s->carrier), t->now, NULL, s->id, NULL, "podCaptured");
    put(t, p, "podRef", ref);
    put(t, p, "carrierId", carrier_id(t, s->carrier));
    sim__ev_finish(t);
}

/* ---- Dispatch ---- */

void sim__flow_start(sim_trace *t)
{
    if (t->o.orders > 0) sched(t, t->o.start_ns, OP_ARRIVE, NULL, 0);
}

void sim__flow_run(sim_trace *t, const sim__action *a)
{
    sim__order *o = a->ent;
    sim__ship *s = a->ent;
    sim__route *r = a->ent;
    t->now = a->k.at;
    switch (a->op) {
    case OP_ARRIVE: on_arrive(t); break;
    case OP_HOLD: on_hold(t, o); break;
    case OP_HOLD_RELEASE: on_hold_release(t, o); break;
    case OP_APPROVE: on_approve(t, o); break;
    case OP_RELEASE: release(t, o, t->now); break;
    case OP_PICK: on_pick(t, o); break;
    case OP_SHORT: on_short(t, o); break;
    case OP_RESOLVE: on_resolve(t, o); break;
    case OP_CANCEL: on_cancel(t, o); break;
    case OP_PACK: on_pack(t, o, a->arg); break;
    case OP_INVOICE: on_invoice(t, o); break;
    case OP_SLA_RELEASE: on_sla_release(t, o); break;
    case OP_SLA_POSTING: on_sla_posting(t, o); break;
    case OP_READY: on_ready(t, s); break;
    case OP_BLOCK: on_block(t, s); break;
    case OP_UNBLOCK: on_unblock(t, s); break;
    case OP_CONFIRM: on_confirm(t, s); break;
    case OP_ATTEMPT: on_attempt(t, s); break;
    case OP_DELIVER: on_deliver(t, s); break;
    case OP_POD: on_pod(t, s); break;
    case OP_SLA_ROUTING: on_sla_routing(t, s); break;
    case OP_TICK: on_tick(t, a->arg); break;
    case OP_PLAN: on_plan(t, r); break;
    case OP_DISPATCH: on_dispatch(t, r); break;
    default: break;
    }
    ent_unref(t, a->op, a->ent);
}

void sim__flow_drop(sim_trace *t, const sim__action *a) { ent_unref(t, a->op, a->ent); }

void sim__flow_free_pools(sim_trace *t)
{
    for (uint32_t w = 0; w < t->o.warehouses; w++) {
        sim__pool *p = &t->pools[w];
        for (size_t i = 0; i < p->n; i++) ship_unref(t, p->items[i]);
        free(p->items);
        p->items = NULL;
        p->n = 0;
    }
}
