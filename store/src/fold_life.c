/* The exception lifecycle (contract v1.1, docs/exceptions.md): every item's exception id, its state from
 * the actions on it, its SLA due time, and the closed instances someone acted on. Pure, like the fold. */
#include "fold_int.h"

#include <stdlib.h>
#include <string.h>

typedef const evt_event *ev;

/* Processes with more events than this get no closer search (it folds every prefix of the process). */
#define CLOSER_MAX_EVENTS 400

static int later(ev a, ev b) { return !b || fold_event_cmp(a, b) > 0; }
static int earlier(ev a, ev b) { return !b || fold_event_cmp(a, b) < 0; }

static int act_cmp(const void *x, const void *y)
{
    ev a = *(ev const *)x, b = *(ev const *)y;
    int c = strcmp(evt_action_of(a).exception_id, evt_action_of(b).exception_id);
    return c ? c : strcmp(a->event_id, b->event_id);
}

const char *fold_resolution_name(const evt_event *r)
{
    if (!r || r->payload_case != TOWER__V1__EVENT__PAYLOAD_EXCEPTION_RESOLVED) return "OTHER";
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &tower__v1__exception_resolved__resolution__descriptor, (int)r->exception_resolved->resolution);
    return v ? v->name : "OTHER";
}

const evt_event *fold_life_apply(Tower__V1__ViewItem *pb, evt_event *const *acts, size_t n)
{
    ev ack = NULL, assign = NULL, snooze = NULL, decide = NULL;
    uint32_t notes = 0;
    for (size_t i = 0; i < n; i++) {
        ev e = acts[i];
        int dup = 0; /* the same action twice (an entity's events may repeat) */
        for (size_t j = 0; j < i && !dup; j++) dup = strcmp(acts[j]->event_id, e->event_id) == 0;
        if (dup) continue;
        if (evt_action_of(e).note) notes++;
        switch (e->payload_case) {
        case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_ACKNOWLEDGED:
            if (earlier(e, ack)) ack = e;
            break;
        case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_ASSIGNED:
            if (later(e, assign)) assign = e;
            if (e->exception_assigned->assignee && earlier(e, ack)) ack = e;
            break;
        case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_SNOOZED:
            if (later(e, snooze)) snooze = e;
            break;
        case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_RESOLVED:
        case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_REOPENED:
            if (later(e, decide)) decide = e;
            break;
        default: break;
        }
    }
    pb->assignee = assign ? assign->exception_assigned->assignee : NULL;
    pb->acknowledged_at = ack ? ack->occurred_at : NULL;
    pb->acknowledged_by = ack ? (char *)evt_action_of(ack).actor : NULL;
    pb->snoozed_until = snooze ? snooze->exception_snoozed->until : NULL;
    pb->has_notes = notes > 0;
    pb->notes = notes;
    return decide && decide->payload_case == TOWER__V1__EVENT__PAYLOAD_EXCEPTION_RESOLVED ? decide : NULL;
}

/* ---- SLA due times -------------------------------------------------------------------------------- */

int fold_view_sla_pair(fold_view v)
{
    switch (v) {
    case FOLD_VIEW_AWAITING_RELEASE: return FOLD_SLA_RELEASE;
    case FOLD_VIEW_PENDING_ROUTE: return FOLD_SLA_ROUTING;
    case FOLD_VIEW_MISSING_POD: return FOLD_SLA_POD;
    case FOLD_VIEW_POSTING_FAILED: return FOLD_SLA_POSTING_RECOVERY;
    default: return -1;
    }
}

/* Each of these views starts at its pair's from-milestone, so the due time is since + within. */
static void set_due(fold_item *it, const fold_sla_rules *rules, const char *channel)
{
    if (it->view == FOLD_VIEW_SLA_BREACHES) {
        it->due = ct_malloc(sizeof *it->due);
        *it->due = *it->pb.since;
        it->pb.sla_due_at = it->due;
        return;
    }
    int pair = fold_view_sla_pair(it->view);
    if (pair < 0) return;
    for (size_t i = 0; i < rules->n; i++) {
        if ((int)rules->v[i].pair != pair) continue;
        const fold_sla_rule *x = fold_sla_resolve(rules, rules->v[i].name, it->pb.warehouse_id, it->pb.carrier_id,
                                                  channel);
        if (!x || x->disabled) return;
        int64_t ns = (int64_t)it->pb.since->nanos + x->within_ns % 1000000000LL;
        it->due = ct_malloc(sizeof *it->due);
        tower__v1__timestamp__init(it->due);
        it->due->has_seconds = it->due->has_nanos = 1;
        it->due->seconds = it->pb.since->seconds + x->within_ns / 1000000000LL + ns / 1000000000LL;
        it->due->nanos = (int32_t)(ns % 1000000000LL);
        it->pb.sla_due_at = it->due;
        return;
    }
}

/* ---- the process's actions, by exception id ------------------------------------------------------------ */

typedef struct acts {
    ev *v;      /* every action of the process, sorted by exception id, then event id */
    size_t n;
} acts;

static void acts_collect(const fold_process *p, acts *a)
{
    size_t cap = 0;
    for (size_t k = 0; k <= p->n_shipments; k++) {
        const fold_entity *e = k == 0 ? &p->order : &p->shipments[k - 1];
        for (size_t i = 0; i < e->n_events; i++) {
            if (!evt_is_action(e->events[i]) || !evt_action_of(e->events[i]).exception_id) continue;
            if (a->n == cap) {
                cap = cap ? cap * 2 : 16;
                a->v = ct_realloc(a->v, cap * sizeof *a->v);
            }
            a->v[a->n++] = e->events[i];
        }
    }
    if (a->n) qsort(a->v, a->n, sizeof *a->v, act_cmp);
}

/* The actions on one exception id: [*from, return) in a->v. */
static size_t acts_range(const acts *a, const char *exid, size_t *from)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(evt_action_of(a->v[mid]).exception_id, exid) < 0) lo = mid + 1;
        else hi = mid;
    }
    *from = lo;
    while (hi < a->n && strcmp(evt_action_of(a->v[hi]).exception_id, exid) == 0) hi++;
    return lo < a->n && strcmp(evt_action_of(a->v[lo]).exception_id, exid) == 0 ? hi : lo;
}

/* ---- closers: when did an instance someone acted on close? ------------------------------------------ */

static int ev_cmp(const void *x, const void *y) { return fold_event_cmp(*(ev const *)x, *(ev const *)y); }

/* The process cut at an instant: every entity keeps its events up to and including `upto` (by
 * fold_event_cmp), without actions (the views do not depend on them). The arrays are allocated once per search and refilled per cut. */
typedef struct cut {
    fold_process p;
    fold_entity *ships;
    ev *buf;
} cut;

static void cut_make(cut *c, const fold_process *p, size_t total)
{
    memset(c, 0, sizeof *c);
    c->ships = ct_calloc(p->n_shipments ? p->n_shipments : 1, sizeof *c->ships);
    c->buf = ct_calloc(total ? total : 1, sizeof *c->buf);
    c->p = *p;
    c->p.shipments = c->ships;
}

static void cut_fill(cut *c, const fold_process *p, ev upto)
{
    size_t o = 0;
    for (size_t k = 0; k <= p->n_shipments; k++) {
        const fold_entity *src = k == 0 ? &p->order : &p->shipments[k - 1];
        fold_entity *dst = k == 0 ? &c->p.order : &c->ships[k - 1];
        *dst = *src;
        dst->events = (evt_event *const *)(c->buf + o);
        dst->n_events = 0;
        for (size_t i = 0; i < src->n_events; i++)
            if (!evt_is_action(src->events[i]) && fold_event_cmp(src->events[i], upto) <= 0)
                c->buf[o + dst->n_events++] = src->events[i];
        o += dst->n_events;
    }
}

static void cut_free(cut *c)
{
    free(c->ships);
    free(c->buf);
}

static const fold_item *find_item(const fold_result *r, const char *exid)
{
    for (size_t i = 0; i < r->n_items; i++)
        if (r->items[i].exid && strcmp(r->items[i].exid, exid) == 0) return &r->items[i];
    return NULL;
}

static void set_exids(fold_result *r)
{
    char buf[EVT_MAX_EXID + 1];
    for (size_t i = 0; i < r->n_items; i++) {
        fold_item *it = &r->items[i];
        if (it->exid) continue;
        if (evt_exid_build(buf, sizeof buf, it->key, it->pb.since) == 0) continue;
        it->exid = ct_strdup(buf);
        it->pb.exception_id = it->exid;
    }
}

static fold_item *closed_add(fold_result *r, const fold_item *like)
{
    r->closed = ct_realloc(r->closed, (r->n_closed + 1) * sizeof *r->closed);
    fold_item *c = &r->closed[r->n_closed++];
    *c = *like;
    c->key = ct_strdup(like->key);
    c->exid = ct_strdup(like->exid);
    c->due = NULL;
    if (like->due) {
        c->due = ct_malloc(sizeof *c->due);
        *c->due = *like->due;
    }
    c->pb.sla_due_at = c->due;
    c->pb.key = c->key;
    c->pb.exception_id = c->exid;
    return c;
}

/*
 * An instance someone acted on that the views no longer hold: fold every prefix of the process's events
 * (by occurredAt) from its since on; the first event after which a prefix that held it no longer does
 * closed it. The item as last held goes to r->closed. An instance no prefix held is not (yet) known: its
 * actions wait for it.
 */
static ev closer_search(const fold_process *p, const fold_sla_rules *rules, const char *exid, ev *all, size_t n,
                        fold_result *r)
{
    evt_exid x;
    if (evt_exid_parse(exid, &x, NULL) != 0 || x.kind == 'd') return NULL;
    cut c;
    cut_make(&c, p, n);
    fold_result pre = {0}, held = {0};
    int seen = 0;
    ev closer = NULL;
    for (size_t i = 0; i < n && !closer; i++) {
        int64_t t = all[i]->occurred_at->seconds * 1000000000LL + all[i]->occurred_at->nanos;
        if (t < x.since_ns && !seen) continue; /* nothing before its since can hold it */
        cut_fill(&c, p, all[i]);
        fold__derive_raw(&c.p, rules, &pre);
        set_exids(&pre);
        const fold_item *it = find_item(&pre, exid);
        if (it) {
            seen = 1;
            fold_result_free(&held);
            held = pre;
            memset(&pre, 0, sizeof pre);
        } else if (seen) {
            closer = all[i];
        }
    }
    if (closer) closed_add(r, find_item(&held, exid));
    fold_result_free(&pre);
    fold_result_free(&held);
    cut_free(&c);
    return closer;
}

void fold__lifecycle(const fold_process *p, const fold_sla_rules *rules, fold_result *r)
{
    set_exids(r);
    for (size_t i = 0; i < r->n_items; i++) set_due(&r->items[i], rules, r->channel);

    acts a = {0};
    acts_collect(p, &a);
    if (!a.n) return;

    /* Open items: their lifecycle; a resolved one leaves the view for the closed list. */
    char *matched = ct_calloc(a.n, 1);
    size_t keep = 0;
    for (size_t i = 0; i < r->n_items; i++) {
        fold_item *it = &r->items[i];
        size_t from = 0, to = it->exid ? acts_range(&a, it->exid, &from) : 0;
        ev resolved = NULL;
        if (to > from) {
            memset(matched + from, 1, to - from);
            resolved = fold_life_apply(&it->pb, (evt_event *const *)a.v + from, to - from);
        }
        if (resolved) {
            fold_item *c = closed_add(r, it);
            c->pb.closed_at = resolved->occurred_at;
            c->pb.closed_by = resolved->event_id;
            c->pb.resolution = (char *)fold_resolution_name(resolved);
            c->pb.resolved_by = (char *)evt_action_of(resolved).actor;
            free(it->key);
            free(it->exid);
            free(it->due);
            continue;
        }
        r->items[keep++] = *it;
    }
    r->n_items = keep;

    /* Instances acted on that the views no longer hold: closed (or not seen yet). */
    ev *all = NULL;
    size_t n_all = 0;
    for (size_t i = 0; i < a.n;) {
        size_t from = 0, to = acts_range(&a, evt_action_of(a.v[i]).exception_id, &from);
        if (!matched[i]) {
            if (!all) {
                size_t cap = p->order.n_events;
                for (size_t k = 0; k < p->n_shipments; k++) cap += p->shipments[k].n_events;
                all = ct_calloc(cap ? cap : 1, sizeof *all);
                for (size_t k = 0; k <= p->n_shipments; k++) {
                    const fold_entity *e = k == 0 ? &p->order : &p->shipments[k - 1];
                    for (size_t j = 0; j < e->n_events; j++)
                        if (!evt_is_action(e->events[j])) all[n_all++] = e->events[j];
                }
                qsort(all, n_all, sizeof *all, ev_cmp);
            }
            size_t before = r->n_closed;
            ev closer = n_all <= CLOSER_MAX_EVENTS
                            ? closer_search(p, rules, evt_action_of(a.v[i]).exception_id, all, n_all, r)
                            : NULL;
            if (closer) {
                fold_item *c = &r->closed[before];
                ev resolved = fold_life_apply(&c->pb, (evt_event *const *)a.v + from, to - from);
                c->pb.closed_at = closer->occurred_at;
                c->pb.closed_by = closer->event_id;
                c->pb.sla_due_at = NULL;
                free(c->due);
                c->due = NULL;
                if (resolved && fold_event_cmp(resolved, closer) < 0) {
                    c->pb.closed_at = resolved->occurred_at;
                    c->pb.closed_by = resolved->event_id;
                    c->pb.resolution = (char *)fold_resolution_name(resolved);
                    c->pb.resolved_by = (char *)evt_action_of(resolved).actor;
                }
            }
        }
        i = to > i ? to : i + 1;
    }
    free(all);
    free(matched);
    free(a.v);
}
