/* Predicted risk in the SLA engine loop: evaluate the store's open orders with a promise, publish the changes. */
#include "sla_engine.h"
#include "sla_risk.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RISK_CHANGES 2000 /* changes published per cycle at most (the rest next cycle) */
#define MAX_OPEN 1000000      /* open orders read per cycle at most */

/* One key's window, cached for a cycle. */
typedef struct win {
    uint64_t h;
    char key[2 * RISK_ID_MAX + 8];
    risk_hist hist;
} win;

typedef struct order_rec {
    store_risk_open o;       /* strings point into the record's own copies */
    char oid[EVT_MAX_ID + 1], wh[RISK_ID_MAX + 1], ca[RISK_ID_MAX + 1];
    const risk_hist *wc, *ww;
} order_rec;

struct sla_risk_runner {
    sla_risk_opts o;
    json_t *pending;   /* order id -> pending_since (s) remembered from the previous cycle */
    json_t *published; /* order id -> the change number published and not folded yet */
    win *wins;
    size_t n_wins, cap_wins;
    order_rec *recs;
    size_t n_recs, cap_recs;
    store_reader *r;
    int64_t now;
};

sla_risk_runner *sla_risk_runner_new(const sla_risk_opts *o)
{
    sla_risk_runner *r = ct_calloc(1, sizeof *r);
    if (o) r->o = *o;
    else sla_risk_opts_default(&r->o);
    r->pending = json_object();
    r->published = json_object();
    return r;
}

void sla_risk_runner_free(sla_risk_runner *r)
{
    if (!r) return;
    json_decref(r->pending);
    json_decref(r->published);
    free(r->wins);
    free(r->recs);
    free(r);
}

/* The window of (stage, warehouse[, carrier]) from the cache, or read once this cycle. NULL on failure. */
static const risk_hist *window_of(sla_risk_runner *r, risk_stage st, const char *wh, const char *ca)
{
    char key[sizeof r->wins[0].key];
    snprintf(key, sizeof key, "%d|%s|%s", (int)st, wh, ca);
    uint64_t h = ct_hash64(key, strlen(key));
    for (size_t i = 0; i < r->n_wins; i++)
        if (r->wins[i].h == h && strcmp(r->wins[i].key, key) == 0) return &r->wins[i].hist;
    if (r->n_wins == r->cap_wins) {
        r->cap_wins = r->cap_wins ? r->cap_wins * 2 : 64;
        r->wins = ct_realloc(r->wins, r->cap_wins * sizeof *r->wins);
    }
    win *w = &r->wins[r->n_wins];
    if (store_risk_window(r->r, st, wh, ca, r->now, r->o.window_days, &w->hist) != CT_OK) return NULL;
    w->h = h;
    memcpy(w->key, key, sizeof key);
    r->n_wins++;
    return &w->hist;
}

static int on_open(void *ctx, const store_risk_open *o)
{
    sla_risk_runner *r = ctx;
    if (r->n_recs == r->cap_recs) {
        r->cap_recs = r->cap_recs ? r->cap_recs * 2 : 256;
        r->recs = ct_realloc(r->recs, r->cap_recs * sizeof *r->recs);
    }
    order_rec *x = &r->recs[r->n_recs++];
    x->o = *o;
    snprintf(x->oid, sizeof x->oid, "%s", o->order_id);
    snprintf(x->wh, sizeof x->wh, "%s", o->warehouse);
    snprintf(x->ca, sizeof x->ca, "%s", o->carrier);
    x->o.order_id = x->o.warehouse = x->o.carrier = NULL; /* set once recs stops moving (load) */
    return r->n_recs >= MAX_OPEN;
}

/* Read the open orders and their windows in one snapshot. Windows are kept by index: the cache may move. */
static int load(sla_risk_runner *r, store *s)
{
    r->n_recs = r->n_wins = 0;
    if (store_reader_begin(s, &r->r) != CT_OK) return -1;
    ct_status st = store_risk_open_scan(r->r, on_open, r);
    for (size_t i = 0; i < r->n_recs; i++) { /* the copies' strings, now that the array is where it stays */
        order_rec *x = &r->recs[i];
        x->o.order_id = x->oid;
        x->o.warehouse = x->wh;
        x->o.carrier = x->ca;
    }
    size_t *wi = ct_calloc(r->n_recs ? 2 * r->n_recs : 1, sizeof *wi);
    for (size_t i = 0; i < r->n_recs && st == CT_OK; i++) {
        order_rec *x = &r->recs[i];
        const risk_hist *h = window_of(r, x->o.stage, x->wh, "");
        wi[2 * i] = wi[2 * i + 1] = SIZE_MAX;
        if (h) wi[2 * i] = (size_t)(((const char *)h - (const char *)r->wins) / sizeof(win));
        if (x->ca[0] && (h = window_of(r, x->o.stage, x->wh, x->ca)) != NULL)
            wi[2 * i + 1] = (size_t)(((const char *)h - (const char *)r->wins) / sizeof(win));
    }
    store_reader_end(r->r);
    r->r = NULL;
    for (size_t i = 0; i < r->n_recs; i++) {
        r->recs[i].ww = wi[2 * i] != SIZE_MAX ? &r->wins[wi[2 * i]].hist : NULL;
        r->recs[i].wc = wi[2 * i + 1] != SIZE_MAX ? &r->wins[wi[2 * i + 1]].hist : NULL;
    }
    free(wi);
    return st == CT_OK ? 0 : -1;
}

typedef struct pub {
    sla_risk_runner *r;
    sla_engine_figures *fig;
    char (*ids)[EVT_MAX_EVENT_ID + 1];
    uint32_t *nums;
    size_t *rec;
    int *raise;
    size_t n;
    int failed;
} pub;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    pub *p = ctx;
    if (tag >= p->n) return;
    const order_rec *x = &p->r->recs[p->rec[tag]];
    if (ack->result == BUS_PUB_FAILED) {
        p->fig->risk_failures++;
        p->failed = 1;
        ct_log(CT_LOG_WARN, "sla", "%s not stored: %s (decided again next cycle)", p->ids[tag], ack->error);
        return;
    }
    if (ack->result == BUS_PUB_STORED) {
        if (p->raise[tag]) p->fig->risk_raised++;
        else p->fig->risk_cleared++;
        ct_log(CT_LOG_INFO, "sla", "order %s %s (%s)", x->oid, p->raise[tag] ? "at risk" : "back on track", p->ids[tag]);
    } else {
        p->fig->duplicates++;
    }
    json_object_set_new(p->r->published, x->oid, json_integer(p->nums[tag]));
}

/* Decide one order; publish its change. */
static void decide(sla_risk_runner *r, bus *b, size_t i, json_t *pending, pub *p)
{
    order_rec *x = &r->recs[i];
    json_t *done = json_object_get(r->published, x->oid);
    if (done && json_integer_value(done) > (json_int_t)x->o.changes) return; /* published, not folded yet */
    json_t *mem = json_object_get(r->pending, x->oid);
    int64_t since = mem ? (int64_t)json_integer_value(mem) : -1;
    risk_prediction pred;
    char err[160];
    sla_risk_windows w = {x->wc, x->ww};
    int ch = sla_risk_decide(&x->o, &w, &r->o, r->now, &since, &pred, err, sizeof err);
    if (ch < 0) {
        ct_log(CT_LOG_DEBUG, "sla", "order %s: cannot predict: %s", x->oid, err);
        return;
    }
    json_object_set_new(pending, x->oid, json_integer(since));
    if (ch == RISK_NO_CHANGE || p->n >= MAX_RISK_CHANGES) return;
    evt_event *ev = NULL;
    evt_error e;
    if (sla_risk_event(&x->o, ch == RISK_RAISE, &pred, r->now, &ev, &e) != CT_OK) {
        ct_log(CT_LOG_WARN, "sla", "order %s: cannot make its risk event: %s", x->oid, e.message);
        return;
    }
    sla_risk_event_id(x->oid, x->o.changes + 1, p->ids[p->n]);
    p->nums[p->n] = x->o.changes + 1;
    p->rec[p->n] = i;
    p->raise[p->n] = ch == RISK_RAISE;
    if (bus_publish_event(b, ev, p->n) == CT_OK) p->n++;
    else p->failed = 1;
    evt_free(ev);
}

int sla_risk_cycle(sla_risk_runner *r, bus *b, store *s, int64_t now_ns, sla_engine_figures *fig)
{
    if (!r->o.enabled) return 0;
    r->now = now_ns / 1000000000LL;
    if (load(r, s) != 0) return -1;
    fig->risk_open = r->n_recs;
    size_t cap = r->n_recs < MAX_RISK_CHANGES ? r->n_recs + 1 : MAX_RISK_CHANGES;
    pub p = {r, fig, ct_calloc(cap, sizeof *p.ids), ct_calloc(cap, sizeof *p.nums), ct_calloc(cap, sizeof *p.rec),
             ct_calloc(cap, sizeof *p.raise), 0, 0};
    json_t *pending = json_object();
    for (size_t i = 0; i < r->n_recs && p.n < cap; i++) decide(r, b, i, pending, &p);
    if (p.n) bus_publish_wait(b, 10000, on_ack, &p);
    /* Remember only the orders still open; forget published changes the store now shows. */
    json_decref(r->pending);
    r->pending = pending;
    json_t *still = json_object();
    for (size_t i = 0; i < r->n_recs; i++) {
        json_t *n = json_object_get(r->published, r->recs[i].oid);
        if (n && json_integer_value(n) > (json_int_t)r->recs[i].o.changes) json_object_set(still, r->recs[i].oid, n);
    }
    json_decref(r->published);
    r->published = still;
    ct_log(CT_LOG_DEBUG, "sla", "risk cycle: %zu open orders, %zu changes", r->n_recs, p.n);
    int rc = p.failed ? -1 : 0;
    free(p.ids);
    free(p.nums);
    free(p.rec);
    free(p.raise);
    return rc;
}
