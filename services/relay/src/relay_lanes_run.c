/* An event destination with lanes = N > 1 (docs/outbound.md "Lanes"): one thread, one curl multi handle, up to
 * one request in flight per lane. Events go to lanes by entity (relay_window_pick: each order, shipment and
 * route through one lane, in stream order); each lane retries its head event with the destination's backoff
 * until it is delivered or a dead letter, then takes the next; every attempt counts for the destination's one
 * breaker; a Retry-After holds every lane. The checkpoint moves over the prefix of done events only. */
#include "relay_int.h"

#include <stdlib.h>
#include <string.h>

#define FETCH_MAX 256
#define IDLE_WAIT_MS 500
#define BUSY_POLL_MS 50

typedef relay__worker worker;

typedef struct lane {
    CURL *curl;
    struct curl_slist *hd;
    relay__outcome oc;
    size_t q[RELAY_LANE_DEPTH]; /* window slots, in stream order */
    size_t qhead, qn;
    int busy;                   /* a request in flight */
    int attempt;                /* attempts made for the head event */
    int64_t next_ns;            /* no attempt before this (monotonic): its backoff */
    json_t *attempts;           /* the head event's attempts */
    ct_buf body;                /* the head event's body, built at its first attempt */
    char id[EVT_MAX_EVENT_ID + 80];
} lane;

typedef struct run {
    worker *w;
    relay *r;
    const relay_dest *d;
    CURLM *multi;
    lane *lanes;
    unsigned nl;
    relay_window win;
    evt_event **ev;          /* per window slot, owned until done */
    relay__feed *feed;       /* the reader */
    bus_batch batch;         /* fetched; dispatched up to next */
    size_t next;
    evt_event *held;         /* decoded, waiting for its lane (relay_window_pick said -1) */
    uint64_t held_seq, held_keys[RELAY_LANE_KEYS];
    size_t held_nk;
    uint64_t read_upto;      /* the last sequence dispatched or skipped */
    uint64_t pending;        /* the stream's messages after read_upto, as last seen */
    int inflight;
    int64_t pause_until_ns;  /* a Retry-After: no lane starts before (monotonic) */
    evt_event **ok;          /* delivered this round: noted in one transaction, then freed */
    size_t n_ok;
} run;

/* ---- lanes -------------------------------------------------------------------------------------------- */

static size_t lane_head(const lane *l) { return l->q[l->qhead % RELAY_LANE_DEPTH]; }

/* The head event is done: the lane takes the next. */
static void lane_pop(run *x, lane *l)
{
    relay_window_done(&x->win, lane_head(l));
    l->qhead++;
    l->qn--;
    l->attempt = 0;
    l->next_ns = 0;
    json_decref(l->attempts);
    l->attempts = NULL;
    ct_buf_free(&l->body);
}

/* Send the head event of lane l (its first attempt builds the body and the id). */
static void lane_send(run *x, lane *l)
{
    size_t slot = lane_head(l);
    const evt_event *e = x->ev[slot];
    if (!l->attempt) {
        relay__payload(x->d, e, x->win.v[slot].seq, &l->body);
        snprintf(l->id, sizeof l->id, "%s.%s", e->event_id, x->d->name);
        l->attempts = json_array();
    }
    l->attempt++;
    relay__http_setup(l->curl, x->d, l->id, l->body.data, l->body.len, &l->oc, &l->hd);
    curl_multi_add_handle(x->multi, l->curl);
    l->busy = 1;
    x->inflight++;
}

/* Start what may go now: each idle lane's head event, unless backing off, held by a Retry-After, or the
 * breaker says no (half-open: one probe in flight at most). 0, or the ns until the breaker lets one go. */
static int64_t start_lanes(run *x, int64_t now)
{
    if (now < x->pause_until_ns) return 0;
    for (unsigned i = 0; i < x->nl; i++) {
        lane *l = &x->lanes[i];
        if (l->busy || !l->qn || now < l->next_ns) continue;
        if (x->w->br.state == RELAY_BREAKER_HALF_OPEN && x->inflight) return 0;
        relay_breaker_state before = x->w->br.state;
        int64_t wait = 0;
        if (!relay_breaker_allow(&x->w->br, now, &wait)) return wait;
        relay__set_breaker(x->w, before);
        lane_send(x, l);
    }
    return 0;
}

/* ---- outcomes ----------------------------------------------------------------------------------------- */

static void note_one(run *x, const evt_event *e, const char *status, const char *error)
{
    relay__note nt = {.dest = x->d->name, .status = status, .error = error, .at_ns = ct_now_ns()};
    relay__db_note_many(x->r->db, &e, 1, &nt);
}

/* A failed attempt of the head event: another after the backoff (a Retry-After holds every lane), or, at
 * max_attempts or a refusal, its dead letter. */
static void lane_failed(run *x, lane *l)
{
    size_t slot = lane_head(l);
    evt_event *e = x->ev[slot];
    char msg[300];
    snprintf(msg, sizeof msg, "%s: %s", e->event_id, l->oc.error[0] ? l->oc.error : "HTTP error");
    relay__set_error(x->w, msg);
    ct_log(CT_LOG_INFO, "relay", "%s: attempt %d of %s failed: %s", x->d->name, l->attempt, e->event_id, msg);
    if (!relay__retryable(x->d, l->oc.status) || l->attempt >= x->d->max_attempts) {
        note_one(x, e, "dead", msg);
        relay__dead_letter(x->w, e, x->win.v[slot].seq, l->attempts);
        evt_free(e);
        x->ev[slot] = NULL;
        lane_pop(x, l);
        relay__write_status(x->w, 1);
        return;
    }
    if (l->attempt == 1) note_one(x, e, "failing", msg);
    int64_t delay = relay_backoff_ns(l->attempt, x->d->backoff_min_ns, x->d->backoff_max_ns, &x->w->rng);
    int64_t now = relay__mono_ns();
    if ((l->oc.status == 429 || l->oc.status == 503) && l->oc.retry_after_ns >= 0) {
        delay = l->oc.retry_after_ns < x->d->backoff_max_ns ? l->oc.retry_after_ns : x->d->backoff_max_ns;
        if (now + delay > x->pause_until_ns) x->pause_until_ns = now + delay;
    }
    l->next_ns = now + delay;
    relay__write_status(x->w, 1);
}

/* A transfer of lane l ended with rc. */
static void lane_finish(run *x, lane *l, CURLcode rc)
{
    curl_multi_remove_handle(x->multi, l->curl);
    relay__http_done(l->curl, rc, &l->oc, &l->hd);
    l->busy = 0;
    x->inflight--;
    atomic_fetch_add(&x->w->f->attempts, 1);
    json_t *a = json_object();
    relay__time_json(a, "at", ct_now_ns());
    json_object_set_new(a, "status", json_integer(l->oc.status));
    if (l->oc.error[0]) json_object_set_new(a, "error", json_string(l->oc.error));
    json_array_append_new(l->attempts, a);
    int ok = l->oc.status >= 200 && l->oc.status < 300;
    relay__count_outcome(x->w, ok, 1);
    if (!ok) {
        lane_failed(x, l);
        return;
    }
    size_t slot = lane_head(l);
    x->ok[x->n_ok++] = x->ev[slot];
    x->ev[slot] = NULL;
    lane_pop(x, l);
}

/* The transfers that ended. */
static void collect(run *x)
{
    int running = 0, left = 0;
    curl_multi_perform(x->multi, &running);
    CURLMsg *m;
    while ((m = curl_multi_info_read(x->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        for (unsigned i = 0; i < x->nl; i++)
            if (x->lanes[i].busy && x->lanes[i].curl == m->easy_handle) {
                lane_finish(x, &x->lanes[i], m->data.result);
                break;
            }
    }
}

/* The round's deliveries noted (one transaction) and the checkpoint moved over what is done. */
static void settle(run *x)
{
    if (x->n_ok) {
        relay__note nt = {.dest = x->d->name, .status = "delivered", .at_ns = ct_now_ns()};
        relay__db_note_many(x->r->db, (const evt_event *const *)x->ok, x->n_ok, &nt);
        for (size_t i = 0; i < x->n_ok; i++) evt_free(x->ok[i]);
        x->n_ok = 0;
    }
    uint64_t cp = relay_window_advance(&x->win);
    size_t waiting = 0;
    for (size_t k = 0; k < x->win.n; k++) waiting += !x->win.v[(x->win.head + k) % x->win.cap].done;
    atomic_store(&x->w->f->backlog, x->pending + waiting + (x->held != NULL));
    if (cp > x->w->seq) {
        x->w->seq = cp;
        relay__write_checkpoint(x->w);
    }
}

/* ---- reading the stream ------------------------------------------------------------------------------- */

/* Put the held event on its lane if it may go now. 1: placed (or nothing held); 0: it still waits. */
static int place_held(run *x)
{
    if (!x->held) return 1;
    int ln = relay_window_pick(&x->win, x->held_keys, x->held_nk);
    if (ln < 0) return 0;
    size_t slot = relay_window_add(&x->win, x->held_seq, x->held_keys, x->held_nk, (unsigned)ln);
    x->ev[slot] = x->held;
    lane *l = &x->lanes[ln];
    l->q[(l->qhead + l->qn++) % RELAY_LANE_DEPTH] = slot;
    x->held = NULL;
    return 1;
}

/* The fetched messages onto lanes, in stream order, until one must wait. */
static void dispatch(run *x)
{
    while (place_held(x) && x->next < x->batch.n) {
        const bus_msg *m = &x->batch.v[x->next++];
        if (m->seq <= x->read_upto) continue;
        x->read_upto = m->seq;
        x->pending = m->pending;
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_protobuf(&e, m->data, m->len, &err) != CT_OK || !relay_dest_wants(x->d, e)) {
            evt_free(e);
            atomic_fetch_add(&x->w->f->skipped, 1);
            relay_window_skip(&x->win, m->seq);
            continue;
        }
        x->held = e;
        x->held_seq = m->seq;
        x->held_nk = relay_lane_keys(e, x->held_keys);
    }
}

/* More messages when all fetched ones are placed (from the reader, which fetches ahead): waiting up to
 * wait_ms (0: what is there). */
static void fetch(run *x, int64_t wait_ms)
{
    bus_batch_free(&x->batch);
    x->next = 0;
    relay__feed_next(x->feed, wait_ms, &x->batch);
}

/* ---- the loop ----------------------------------------------------------------------------------------- */

/* How long the loop may wait for news when nothing is in flight: until a lane's backoff ends (200 ms at most,
 * so that the status and a stop are seen), else IDLE_WAIT_MS. */
static int64_t idle_ms(const run *x, int64_t now, int64_t breaker_wait)
{
    int64_t due = -1;
    for (unsigned i = 0; i < x->nl; i++) {
        const lane *l = &x->lanes[i];
        if (!l->qn || l->busy) continue;
        int64_t at = l->next_ns > x->pause_until_ns ? l->next_ns : x->pause_until_ns;
        if (at < now + breaker_wait) at = now + breaker_wait;
        if (due < 0 || at < due) due = at;
    }
    if (due < 0) return IDLE_WAIT_MS;
    int64_t ms = (due - now) / 1000000 + 1;
    return ms < 1 ? 1 : ms > 200 ? 200 : ms;
}

static void round_once(run *x)
{
    int room = !x->held && x->next >= x->batch.n && x->win.n < x->win.cap;
    int64_t now = relay__mono_ns();
    int64_t bwait = start_lanes(x, now);
    if (room) fetch(x, x->inflight ? 0 : idle_ms(x, now, bwait));
    dispatch(x);
    bwait = start_lanes(x, relay__mono_ns());
    if (x->inflight) {
        /* Woken by an answer or by the reader (a batch queued): then it takes the batch if there is room. */
        int can_read = !x->held && x->next >= x->batch.n && x->win.n < x->win.cap;
        if (!can_read || !relay__feed_ready(x->feed)) curl_multi_poll(x->multi, NULL, 0, BUSY_POLL_MS, NULL);
    } else if (!room) {
        relay__nap(x->r, idle_ms(x, relay__mono_ns(), bwait) * 1000000LL);
    }
    collect(x);
    settle(x);
    relay__write_status(x->w, 0);
}

/* The reader queued a batch: curl_multi_poll returns (thread-safe). */
static void wake(void *multi) { curl_multi_wakeup(multi); }

static void run_init(run *x, worker *w)
{
    memset(x, 0, sizeof *x);
    x->w = w;
    x->r = w->r;
    x->d = w->d;
    x->nl = (unsigned)(w->d->lanes < 1 ? 1 : w->d->lanes > RELAY_LANES_MAX ? RELAY_LANES_MAX : w->d->lanes);
    relay_window_init(&x->win, x->nl, w->seq);
    x->read_upto = w->seq;
    x->ev = ct_calloc(x->win.cap, sizeof *x->ev);
    x->ok = ct_calloc(x->win.cap, sizeof *x->ok);
    x->lanes = ct_calloc(x->nl, sizeof *x->lanes);
    x->multi = curl_multi_init();
    for (unsigned i = 0; i < x->nl; i++) x->lanes[i].curl = curl_easy_init();
    x->feed = relay__feed_start(w, w->seq + 1, FETCH_MAX, wake, x->multi);
}

/* Stopping: what is in flight is abandoned (it goes again after a restart: the checkpoint is before it). */
static void run_free(run *x)
{
    for (unsigned i = 0; i < x->nl; i++) {
        lane *l = &x->lanes[i];
        if (l->busy) curl_multi_remove_handle(x->multi, l->curl);
        curl_slist_free_all(l->hd);
        json_decref(l->attempts);
        ct_buf_free(&l->body);
        if (l->curl) curl_easy_cleanup(l->curl);
    }
    curl_multi_cleanup(x->multi);
    for (size_t i = 0; i < x->win.cap; i++) evt_free(x->ev[i]);
    for (size_t i = 0; i < x->n_ok; i++) evt_free(x->ok[i]);
    evt_free(x->held);
    bus_batch_free(&x->batch);
    relay__feed_stop(x->feed);
    relay_window_free(&x->win);
    free(x->ev);
    free(x->ok);
    free(x->lanes);
}

void *relay__lanes_main(void *arg)
{
    worker *w = arg;
    run *x = ct_calloc(1, sizeof *x);
    run_init(x, w);
    relay__write_status(w, 1);
    while (!atomic_load(&w->r->stop)) round_once(x);
    settle(x);
    run_free(x);
    free(x);
    relay__write_status(w, 1);
    return NULL;
}
