/* towerd up's simulated supervisors: sample the open exceptions (one short read snapshot), decide, publish. */
#include "up_supervisor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

#define SEC 1000000000LL
#define PER_VIEW 8              /* candidates kept per view and class (reservoir samples) */
#define SCAN_LIMIT 5000         /* items looked at per view and turn at most (oldest first) */
#define MAX_PER_TURN 20         /* actions of one turn at most: a backlog beyond is dropped, not burst */
#define RECENT_NS (10 * SEC)    /* an exception acted on is left alone this long (real time): the fold catches up */
#define RESOLVED_RING 32        /* resolutions remembered for a reopen */
#define REOPEN_PERCENT 4        /* of the actions, when something resolved is remembered */

enum { FRESH, WORKED, NCLASSES }; /* not acknowledged yet; acknowledged or snoozed */

typedef struct pool {
    sup_item v[PER_VIEW];
    size_t n;     /* kept */
    uint64_t seen; /* offered (for the reservoir) */
} pool;

typedef struct sup {
    const up_supervisor_opts *o;
    up_supervisor_figures *fig;
    store *s;
    int store_missing_logged;
    uint64_t rng;
    uint64_t serial;
    json_t *recent; /* exception id -> mono ns it was acted on */
    char resolved[RESOLVED_RING][EVT_MAX_EXID + 1];
    size_t n_resolved;
    /* one turn's sample */
    pool pools[FOLD_VIEW_COUNT][NCLASSES];
    int64_t now_ns;
    int64_t mono;
} sup;

static int open_store(sup *u)
{
    if (u->s && store_generation_changed(u->s)) {
        store_close(u->s);
        u->s = NULL;
    }
    if (u->s) return 0;
    store_opts so = {.dir = u->o->store_dir, .read_only = 1, .sla_rules = u->o->sla_rules};
    if (store_open(&u->s, &so) != CT_OK) {
        if (!u->store_missing_logged)
            ct_log(CT_LOG_INFO, "supervisor", "no store in %s yet: waiting for the projector", u->o->store_dir);
        u->store_missing_logged = 1;
        return -1;
    }
    u->store_missing_logged = 0;
    return 0;
}

static int recently_acted(sup *u, const char *exid)
{
    json_t *t = json_object_get(u->recent, exid);
    return t && u->mono - (int64_t)json_integer_value(t) < RECENT_NS;
}

static void forget_old(sup *u)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(u->recent, tmp, k, v)
    {
        if (u->mono - (int64_t)json_integer_value(v) >= RECENT_NS) json_object_del(u->recent, k);
    }
}

/* Reservoir-sample one item into its view's pool of its class. */
static int offer(void *ctx, const Tower__V1__ViewItem *it)
{
    sup *u = ctx;
    sup_item si;
    if (sup_item_of(it, u->now_ns, &si) != 0 || recently_acted(u, si.exception_id)) return 0;
    pool *p = &u->pools[si.view][si.acknowledged || si.snoozed ? WORKED : FRESH];
    p->seen++;
    if (p->n < PER_VIEW) {
        p->v[p->n++] = si;
    } else {
        uint64_t j = sup_rand(&u->rng) % p->seen;
        if (j < PER_VIEW) p->v[j] = si;
    }
    return 0;
}

/* One read snapshot: a sample of every view's open items; the reader ends before anything slow. */
static size_t sample(sup *u)
{
    memset(u->pools, 0, sizeof u->pools);
    store_reader *r = NULL;
    if (open_store(u) != 0 || store_reader_begin(u->s, &r) != CT_OK) return 0;
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        store_query q = {.view = (fold_view)v, .limit = SCAN_LIMIT};
        store_view_scan(r, &q, offer, u, NULL);
    }
    store_reader_end(r);
    size_t n = 0;
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) n += u->pools[v][FRESH].n + u->pools[v][WORKED].n;
    return n;
}

/* Take one candidate: fresh ones first (two in three), from a view chosen evenly among those with some. */
static int take(sup *u, sup_item *out)
{
    int cls = FRESH;
    int have[NCLASSES] = {0, 0};
    for (int v = 0; v < FOLD_VIEW_COUNT; v++)
        for (int c = 0; c < NCLASSES; c++) have[c] += u->pools[v][c].n > 0;
    if (!have[FRESH] && !have[WORKED]) return -1;
    if (!have[FRESH] || (have[WORKED] && sup_below(&u->rng, 3) == 0)) cls = WORKED;
    uint32_t k = sup_below(&u->rng, (uint32_t)have[cls]);
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        pool *p = &u->pools[v][cls];
        if (!p->n) continue;
        if (k--) continue;
        uint32_t i = sup_below(&u->rng, (uint32_t)p->n);
        *out = p->v[i];
        p->v[i] = p->v[--p->n];
        return 0;
    }
    return -1;
}

typedef struct pending {
    sup_action action;
    char exid[EVT_MAX_EXID + 1];
} pending;

typedef struct turn {
    sup *u;
    pending *v;
    size_t n;
} turn;

static void remember_resolved(sup *u, const char *exid)
{
    if (u->n_resolved == RESOLVED_RING) {
        memmove(u->resolved[0], u->resolved[1], sizeof u->resolved[0] * (RESOLVED_RING - 1));
        u->n_resolved--;
    }
    snprintf(u->resolved[u->n_resolved++], sizeof u->resolved[0], "%s", exid);
}

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    turn *t = ctx;
    sup *u = t->u;
    if (tag >= t->n) return;
    pending *p = &t->v[tag];
    if (ack->result == BUS_PUB_FAILED) {
        atomic_fetch_add(&u->fig->failed, 1);
        ct_log(CT_LOG_WARN, "supervisor", "%s of %s not stored: %s", sup_action_name(p->action), p->exid, ack->error);
        return;
    }
    atomic_fetch_add(&u->fig->stored[p->action], 1);
    if (ack->result == BUS_PUB_DUPLICATE) atomic_fetch_add(&u->fig->duplicates, 1);
    ct_log(CT_LOG_DEBUG, "supervisor", "%s %s", sup_action_name(p->action), p->exid);
    if (p->action == SUP_RESOLVE) remember_resolved(u, p->exid);
}

/* Publish one decided action; 0 if handed to the bus (its tag is t->n - 1). */
static int publish(sup *u, turn *t, const char *exid, const sup_choice *c)
{
    json_t *j = sup_event_json(exid, c, u->now_ns, u->serial++);
    evt_event *ev = NULL;
    evt_error err;
    ct_status st = evt_from_json(&ev, j, &err);
    json_decref(j);
    if (st != CT_OK) {
        atomic_fetch_add(&u->fig->failed, 1);
        ct_log(CT_LOG_WARN, "supervisor", "cannot build the %s of %s: %s", sup_action_name(c->action), exid,
               err.message);
        return -1;
    }
    pending *p = &t->v[t->n];
    p->action = c->action;
    snprintf(p->exid, sizeof p->exid, "%s", exid);
    if (bus_publish_event(u->o->bus, ev, t->n) != CT_OK) {
        atomic_fetch_add(&u->fig->failed, 1);
        evt_free(ev);
        return -1;
    }
    evt_free(ev);
    t->n++;
    json_object_set_new(u->recent, exid, json_integer(u->mono));
    return 0;
}

/* One turn: n actions from one sample. */
static void act(sup *u, size_t n)
{
    u->now_ns = ct_now_ns();
    u->mono = ct_mono_ns();
    forget_old(u);
    size_t have = sample(u);
    pending v[MAX_PER_TURN];
    turn t = {u, v, 0};
    for (size_t i = 0; i < n && i < MAX_PER_TURN; i++) {
        sup_choice c;
        if (u->n_resolved && sup_below(&u->rng, 100) < REOPEN_PERCENT) {
            size_t k = sup_below(&u->rng, (uint32_t)u->n_resolved);
            char exid[EVT_MAX_EXID + 1];
            snprintf(exid, sizeof exid, "%s", u->resolved[k]);
            memmove(u->resolved[k], u->resolved[k + 1], sizeof u->resolved[0] * (u->n_resolved - k - 1));
            u->n_resolved--;
            sup_decide_reopen(&u->rng, &c);
            publish(u, &t, exid, &c);
            continue;
        }
        sup_item it;
        if (take(u, &it) != 0) {
            if (!have) atomic_fetch_add(&u->fig->idle, 1);
            break;
        }
        sup_decide(&it, &u->rng, &c);
        publish(u, &t, it.exception_id, &c);
    }
    if (t.n) bus_publish_wait(u->o->bus, 5000, on_ack, &t); /* bounded: a stop waits at most this */
}

static void log_summary(const up_supervisor_figures *f)
{
    uint64_t a[SUP_NACTIONS], total = 0;
    for (int i = 0; i < SUP_NACTIONS; i++) total += a[i] = atomic_load(&f->stored[i]);
    ct_log(CT_LOG_INFO, "supervisor",
           "%" PRIu64 " actions stored (ack %" PRIu64 ", assign %" PRIu64 ", snooze %" PRIu64 ", note %" PRIu64
           ", resolve %" PRIu64 ", reopen %" PRIu64 "), %" PRIu64 " duplicates dropped at publish, %" PRIu64
           " failed, %" PRIu64 " turns with nothing open",
           total, a[SUP_ACK], a[SUP_ASSIGN], a[SUP_SNOOZE], a[SUP_NOTE], a[SUP_RESOLVE], a[SUP_REOPEN],
           atomic_load(&f->duplicates), atomic_load(&f->failed), atomic_load(&f->idle));
}

ct_status up_supervisor_run(const up_supervisor_opts *o, volatile sig_atomic_t *stop, up_supervisor_figures *fig)
{
    if (!(o->rate > 0) || o->rate > 1e6 || !o->bus) {
        ct_log(CT_LOG_ERROR, "supervisor", "the supervisors need a rate above 0 and a bus");
        return CT_INVALID;
    }
    up_supervisor_figures scratch;
    sup u = {.o = o, .fig = fig ? fig : &scratch, .recent = json_object()};
    memset(u.fig, 0, sizeof *u.fig);
    /* The seed, spread: seed 1 and 2 give unrelated sequences. */
    u.rng = o->seed ^ 0x5375706572766973ULL; /* "Supervis" */
    sup_rand(&u.rng);
    ct_log(CT_LOG_INFO, "supervisor", "simulated supervisors (%s, %s, %s, %s, %s): %g actions per minute, seed %" PRIu64,
           sup_people[0], sup_people[1], sup_people[2], sup_people[3], sup_people[4], o->rate, o->seed);
    int64_t interval = (int64_t)(60.0 * SEC / o->rate);
    if (interval < 1000000) interval = 1000000;
    int64_t next = ct_mono_ns() + interval;
    int64_t next_log = o->progress_ns > 0 ? ct_mono_ns() + o->progress_ns : INT64_MAX;
    while (!*stop) {
        int64_t now = ct_mono_ns();
        if (now >= next) {
            int64_t owed = (now - next) / interval + 1;
            if (owed > MAX_PER_TURN) owed = MAX_PER_TURN;
            act(&u, (size_t)owed);
            next += owed * interval;
            if (next < ct_mono_ns()) next = ct_mono_ns() + interval; /* fell behind: no burst to catch up */
        }
        if (ct_mono_ns() >= next_log) {
            log_summary(u.fig);
            next_log = ct_mono_ns() + o->progress_ns;
        }
        int64_t wait = next - ct_mono_ns();
        if (wait > 100000000LL) wait = 100000000LL;
        if (wait > 0) usleep((useconds_t)(wait / 1000));
    }
    log_summary(u.fig);
    json_decref(u.recent);
    store_close(u.s);
    return CT_OK;
}
