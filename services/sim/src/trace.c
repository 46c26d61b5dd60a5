/* The trace generator's public face: options, the emission loop over two heaps, and fault injection per record. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

static const char *const carrier_names[SIM__NCARRIERS] = {"dhl", "ups", "postnl", "dpd", "fedex"};
/* Carriers report in their local time: Central European, US Eastern. */
static const int carrier_offsets[SIM__NCARRIERS] = {60, -300, 60, 60, -300};
/* Warehouses sit in Europe, the US East and India, in turn. */
static const int wms_offsets[3] = {60, -300, 330};

void sim_trace_opts_default(sim_trace_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 42;
    o->orders = 1000;
    o->warehouses = 3;
    o->start_ns = 1793599200LL * SIM__SEC; /* 2026-11-02T06:00:00Z */
    o->orders_per_minute = 60;
    o->p_hold = 0.08;
    o->p_short_pick = 0.05;
    o->p_multi_shipment = 0.15;
    o->p_block = 0.04;
    o->p_route_fail = 0.05;
    o->p_cancel = 0.03;
    o->p_missing_pod = 0.02;
    o->p_attempt_fail = 0.06;
    o->p_posting_fail = 0.03;
    o->p_stuck = 0.03;
    o->p_late = 0.02;
    o->p_duplicate = 0.02;
    o->p_bad = 0.005;
    o->p_conflict = 0;
    o->offsets = 1;
    o->p_drift = 0.01;
    o->p_undefined = 0.01;
}

static int prob_ok(double p) { return p >= 0 && p <= 1; }

static int opts_ok(const sim_trace_opts *o)
{
    const double ps[] = {o->p_hold, o->p_short_pick, o->p_multi_shipment, o->p_block, o->p_route_fail,
                         o->p_cancel, o->p_missing_pod, o->p_attempt_fail, o->p_posting_fail, o->p_stuck,
                         o->p_late, o->p_duplicate, o->p_bad, o->p_conflict, o->p_drift, o->p_undefined};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        if (!prob_ok(ps[i])) return 0;
    if (o->warehouses < 1 || o->warehouses > 999 || !isfinite(o->orders_per_minute) || o->orders_per_minute <= 0)
        return 0;
    /* Trace times are int64 nanoseconds: keep the whole trace (twice its expected length plus the
       days an order lives) well inside that range, which also keeps every year in 1970-2200. */
    double span = 2.0 * (double)o->orders / o->orders_per_minute * 60e9 + 10.0 * (double)SIM__DAY;
    return o->start_ns >= 0 && (double)o->start_ns + span < 7e18;
}

static void inst_set(sim__inst *in, const char *name, const char *prefix, const char *system, int offset_min,
                     int zulu, int64_t prec_ns, int64_t lat_lo, int64_t lat_hi)
{
    snprintf(in->name, sizeof in->name, "%s", name);
    snprintf(in->prefix, sizeof in->prefix, "%s", prefix);
    in->system = system;
    in->offset_min = offset_min;
    in->zulu = zulu;
    in->prec_ns = prec_ns;
    in->lat_lo = lat_lo;
    in->lat_hi = lat_hi;
    in->counter = 0;
}

/* One instance per reporting system: ERP, planner, finance, tower, then a WMS per warehouse, then carriers. */
static void insts_init(sim_trace *t)
{
    const int off = t->o.offsets != 0;
    const int64_t ms = SIM__SEC / 1000, us = ms / 1000;
    uint32_t w = t->o.warehouses;
    t->ninst = SIM__INST_WMS0 + (int)w + SIM__NCARRIERS + (t->o.mdm != 0);
    t->inst = ct_calloc((size_t)t->ninst, sizeof *t->inst);
    /* Without offsets every clock speaks whole seconds in Z; with them each keeps its own habit. */
    inst_set(&t->inst[SIM__INST_ERP], "erp-eu", "erp", "erp", 0, 1, SIM__SEC, 200 * ms, 3 * SIM__SEC);
    inst_set(&t->inst[SIM__INST_TMS], "routeplanner", "tms", "tms", 0, 1, off ? us : SIM__SEC, 500 * ms,
             5 * SIM__SEC);
    inst_set(&t->inst[SIM__INST_FIN], "finance-eu", "finance", "finance", 0, !off, SIM__SEC, SIM__SEC,
             30 * SIM__SEC);
    inst_set(&t->inst[SIM__INST_TOWER], "tower-1", "tower", "tower", 0, 1, off ? ms : SIM__SEC, 0, SIM__SEC);
    t->whname = ct_calloc(w, sizeof *t->whname);
    for (uint32_t i = 0; i < w; i++) {
        char name[24], prefix[24];
        snprintf(t->whname[i], sizeof t->whname[i], "dc-%u", (unsigned)(i + 1));
        snprintf(name, sizeof name, "wms-dc%u", (unsigned)(i + 1));
        snprintf(prefix, sizeof prefix, "wms-dc%u", (unsigned)(i + 1));
        inst_set(&t->inst[SIM__INST_WMS0 + i], name, prefix, "wms", off ? wms_offsets[i % 3] : 0, 1,
                 off ? ms : SIM__SEC, 50 * ms, 2 * SIM__SEC);
    }
    for (int c = 0; c < SIM__NCARRIERS; c++)
        inst_set(&t->inst[SIM__INST_WMS0 + (int)w + c], carrier_names[c], carrier_names[c], "carrier",
                 off ? carrier_offsets[c] : 0, 1, SIM__SEC, 2 * SIM__SEC, 10 * SIM__MIN);
    if (t->o.mdm) sim__mdm_inst(t, &t->inst[t->ninst - 1]);
}

ct_status sim_trace_create(sim_trace **out, const sim_trace_opts *o)
{
    if (!out || !o || !opts_ok(o)) return CT_INVALID;
    sim_trace *t = ct_calloc(1, sizeof *t);
    t->o = *o;
    if (o->run) snprintf(t->tag, sizeof t->tag, "R%u-", (unsigned)o->run);
    sim__rng_seed(&t->rng, o->seed);
    sim__rng_seed(&t->frng, o->seed ^ 0x5DEECE66DF00DULL);
    sim__rng_seed(&t->mrng, o->seed ^ 0x6D646D2D72656600ULL);
    t->acts.elsz = sizeof(sim__action);
    t->ems.elsz = sizeof(sim__emission);
    insts_init(t);
    t->pools = ct_calloc(o->warehouses, sizeof *t->pools);
    t->now = o->start_ns;
    if (o->mdm) sim__mdm_start(t);
    sim__flow_start(t);
    *out = t;
    return CT_OK;
}

static void note_peaks(sim_trace *t)
{
    sim_trace_stats *s = &t->st;
    s->pending = t->acts.n + t->ems.n;
    if (s->pending > s->pending_peak) s->pending_peak = s->pending;
    if (s->orders_live > s->orders_peak) s->orders_peak = s->orders_live;
    if (s->shipments_live > s->shipments_peak) s->shipments_peak = s->shipments_live;
    s->orders_created = t->created;
}

int sim_trace_next(sim_trace *t, sim_record *rec)
{
    free(t->cur);
    t->cur = NULL;
    for (;;) {
        sim__hkey a, e;
        int has_a = sim__heap_top(&t->acts, &a), has_e = sim__heap_top(&t->ems, &e);
        /* A step at time x only makes records reported at x or later, so a record may leave once
           every step up to its report time has run: that keeps the output sorted by emit_ns. */
        if (has_a && (!has_e || a.at <= e.at)) {
            sim__action act;
            sim__heap_pop(&t->acts, &act);
            sim__flow_run(t, &act);
            note_peaks(t);
            continue;
        }
        if (!has_e) return 0;
        sim__emission em;
        sim__heap_pop(&t->ems, &em);
        t->cur = em.line;
        rec->line = em.line;
        rec->len = em.len;
        rec->emit_ns = em.k.at;
        rec->kind = (sim_kind)em.kind;
        rec->source = em.inst;
        t->st.pending = t->acts.n + t->ems.n;
        return 1;
    }
}

void sim_trace_destroy(sim_trace *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->acts.n; i++) sim__flow_drop(t, sim__heap_at(&t->acts, i));
    for (size_t i = 0; i < t->ems.n; i++) free(((sim__emission *)sim__heap_at(&t->ems, i))->line);
    sim__flow_free_pools(t);
    free(t->acts.data);
    free(t->ems.data);
    free(t->pools);
    free(t->whname);
    free(t->inst);
    ct_buf_free(&t->buf);
    free(t->cur);
    free(t);
}

void sim_trace_stats_get(const sim_trace *t, sim_trace_stats *out) { *out = t->st; }

int sim_trace_source_count(const sim_trace *t) { return t->ninst; }

void sim_trace_source_get(const sim_trace *t, int i, sim_source *out)
{
    out->system = t->inst[i].system;
    out->instance = t->inst[i].name;
}

/* ---- Events ---- */

void sim__ev_begin(sim_trace *t, int inst, int64_t at)
{
    sim__inst *in = &t->inst[inst];
    sim__doc *d = &t->doc;
    int64_t r = at % in->prec_ns;
    t->ev_inst = inst;
    t->ev_at = at - (r < 0 ? r + in->prec_ns : r);
    char id[64];
    snprintf(id, sizeof id, "%s-%s%llu", in->prefix, t->tag, (unsigned long long)++in->counter);
    sim__doc_reset(d);
    sim__doc_str(d, 0, "eventId", id);
    sim__doc_time(d, 0, "occurredAt", t->ev_at);
    int src = sim__doc_obj(d, 0, "source");
    sim__doc_str(d, src, "system", in->system);
    sim__doc_str(d, src, "instance", in->name);
}

static void push_line(sim_trace *t, int64_t at, int kind, int inst, const char *line, size_t len)
{
    sim__emission em = {{at, t->seq++}, ct_strndup(line, len), len, kind, inst};
    sim__heap_push(&t->ems, &em);
}

static void render(sim_trace *t, const sim__style *st)
{
    ct_buf_reset(&t->buf);
    sim__doc_render(&t->doc, st, &t->buf);
}

void sim__ev_finish(sim_trace *t)
{
    const sim__inst *in = &t->inst[t->ev_inst];
    sim__rng *r = &t->frng;
    /* Every draw is made whatever the rates, so that one rate never shifts another fault's stream. */
    int64_t emit = t->now + sim__rng_range(r, in->lat_lo, in->lat_hi);
    int late = sim__rng_chance(r, t->o.p_late);
    int64_t late_by = sim__rng_range(r, 5 * SIM__MIN, 3 * SIM__HOUR);
    int dup = sim__rng_chance(r, t->o.p_duplicate), respelled = sim__rng_chance(r, 0.4);
    int64_t dup_after = sim__rng_range(r, SIM__SEC, 2 * SIM__HOUR);
    int conflict = sim__rng_chance(r, t->o.p_conflict);
    int64_t conflict_after = sim__rng_range(r, SIM__SEC, SIM__HOUR);
    int bad = sim__rng_chance(r, t->o.p_bad);
    int64_t bad_at = t->now + sim__rng_range(r, in->lat_lo, in->lat_hi + 5 * SIM__MIN);
    /* The content of a fault comes from its own stream, seeded by one draw made for every event. */
    sim__rng fr;
    sim__rng_seed(&fr, sim__rng_next(r));
    if (late) emit += late_by;

    sim__style st = {0, in->offset_min, in->zulu};
    render(t, &st);
    push_line(t, emit, SIM_VALID, t->ev_inst, t->buf.data, t->buf.len);
    if (dup && !respelled) push_line(t, emit + dup_after, SIM_DUPLICATE, t->ev_inst, t->buf.data, t->buf.len);
    if (dup && respelled) {
        /* The same event in another spelling: keys reversed, times in another offset when offsets are on. */
        sim__style alt = {1, in->offset_min, in->zulu};
        if (t->o.offsets) {
            alt.offset_min = in->offset_min == 0 ? 330 : 0;
            alt.zulu = 1;
        }
        render(t, &alt);
        push_line(t, emit + dup_after, SIM_REORDERED, t->ev_inst, t->buf.data, t->buf.len);
    }
    if (conflict) {
        sim__fault_conflict(t, &fr);
        render(t, &st);
        push_line(t, emit + conflict_after, SIM_CONFLICT, t->ev_inst, t->buf.data, t->buf.len);
    }
    if (bad) {
        ct_buf_reset(&t->buf);
        int inst = sim__fault_bad(t, &fr, &t->buf);
        push_line(t, bad_at, SIM_BAD, inst, t->buf.data, t->buf.len);
    }
}
