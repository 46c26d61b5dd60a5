/* The relay's I/O: one thread per destination consuming the events stream from its own checkpoint,
 * delivering each wanted event over HTTP or SMTP (libcurl) with retries, Retry-After and a circuit breaker, and
 * keeping its checkpoint, its dead letters and its status in the state directory (docs/outbound.md). */
#include "relay_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ct_version.h"

#define FETCH_MAX 64
#define FETCH_WAIT_MS 500
#define STATUS_EVERY_NS 1000000000LL

typedef relay__worker worker;

int64_t relay__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleep up to ns, in short steps so that a stop is seen within 50 ms. 0: slept; -1: stopping. */
int relay__nap(relay *r, int64_t ns)
{
    int64_t end = relay__mono_ns() + ns;
    while (!atomic_load(&r->stop)) {
        int64_t left = end - relay__mono_ns();
        if (left <= 0) return 0;
        struct timespec t = {0, (long)(left < 50000000LL ? left : 50000000LL)};
        nanosleep(&t, NULL);
    }
    return -1;
}

/* ---- the state directory ---------------------------------------------------------------------------- */

char *relay__state_path(const char *dir, const char *name, const char *suffix)
{
    return ct_sprintf("%s/%s%s", dir, name, suffix);
}

/* Write a whole file through a temporary and a rename: a reader or a crash sees the old or the new. */
int relay__write_file(const char *path, const char *data, size_t len)
{
    char *tmp = ct_sprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;
    if (fd >= 0) close(fd);
    ok = ok && rename(tmp, path) == 0;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? 0 : -1;
}

uint64_t relay__read_checkpoint(const char *dir, const char *name)
{
    char *p = relay__state_path(dir, name, ".seq");
    FILE *f = fopen(p, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1) v = 0;
        fclose(f);
    }
    free(p);
    return v;
}

/* The checkpoint: one fixed-width line written in place at offset 0 with one pwrite (a few µs, where a
 * rename per delivery cost as much as a third of a delivery); a kill cannot tear a write of 21 bytes at the
 * start of a page. Not fsynced: a host crash may repeat deliveries, with the same webhook-ids. */
void relay__write_checkpoint(worker *w)
{
    if (w->seq_fd < 0) {
        char *p = relay__state_path(w->r->state_dir, w->d->name, ".seq");
        w->seq_fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (w->seq_fd < 0) ct_log(CT_LOG_ERROR, "relay", "%s: cannot open %s: %s", w->d->name, p, strerror(errno));
        free(p);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%020llu\n", (unsigned long long)w->seq);
    if (w->seq_fd >= 0 && pwrite(w->seq_fd, buf, (size_t)n, 0) != n)
        ct_log(CT_LOG_ERROR, "relay", "%s: cannot write its checkpoint: %s", w->d->name, strerror(errno));
    atomic_store(&w->f->checkpoint, w->seq);
}

void relay__time_json(json_t *o, const char *k, int64_t ns)
{
    if (!ns) {
        json_object_set_new(o, k, json_null());
        return;
    }
    char buf[48];
    evt_time_format(ns / 1000000000LL, (int32_t)(ns % 1000000000LL), buf);
    json_object_set_new(o, k, json_string(buf));
}

void relay__write_status(worker *w, int force)
{
    int64_t now = relay__mono_ns();
    if (!force && now - w->status_ns < STATUS_EVERY_NS) return;
    w->status_ns = now;
    relay_figures *f = w->f;
    json_t *o = json_object();
    json_object_set_new(o, "destination", json_string(w->d->name));
    json_object_set_new(o, "breaker", json_string(relay_breaker_name((relay_breaker_state)atomic_load(&f->breaker))));
    json_object_set_new(o, "delivered", json_integer((json_int_t)atomic_load(&f->delivered)));
    json_object_set_new(o, "attempts", json_integer((json_int_t)atomic_load(&f->attempts)));
    json_object_set_new(o, "failed", json_integer((json_int_t)atomic_load(&f->failed)));
    json_object_set_new(o, "dead", json_integer((json_int_t)atomic_load(&f->dead)));
    json_object_set_new(o, "skipped", json_integer((json_int_t)atomic_load(&f->skipped)));
    json_object_set_new(o, "checkpoint", json_integer((json_int_t)atomic_load(&f->checkpoint)));
    json_object_set_new(o, "backlog", json_integer((json_int_t)atomic_load(&f->backlog)));
    pthread_mutex_lock(&w->r->err_lock);
    json_object_set_new(o, "lastError", f->last_error[0] ? json_string(f->last_error) : json_null());
    pthread_mutex_unlock(&w->r->err_lock);
    relay__time_json(o, "lastOkAt", atomic_load(&f->last_ok_ns));
    relay__time_json(o, "failingSince", atomic_load(&f->failing_since_ns));
    if (w->status_extra) {
        json_t *x = w->status_extra(w);
        if (x) json_object_update(o, x);
        json_decref(x);
    }
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *p = relay__state_path(w->r->state_dir, w->d->name, ".status.json");
    if (txt) relay__write_file(p, txt, strlen(txt));
    free(p);
    free(txt);
}

/* ---- one delivery ------------------------------------------------------------------------------------- */

void relay__set_error(worker *w, const char *msg)
{
    pthread_mutex_lock(&w->r->err_lock);
    snprintf(w->f->last_error, sizeof w->f->last_error, "%.250s", msg);
    pthread_mutex_unlock(&w->r->err_lock);
}

void relay__set_breaker(worker *w, relay_breaker_state before)
{
    atomic_store(&w->f->breaker, (int)w->br.state);
    if (w->br.state != before) {
        ct_log(w->br.state == RELAY_BREAKER_CLOSED ? CT_LOG_INFO : CT_LOG_WARN, "relay", "%s: breaker %s",
               w->d->name, relay_breaker_name(w->br.state));
        relay__write_status(w, 1);
    }
}

/* Whether an outcome is worth another attempt: no answer; HTTP 408, 429 and 5xx; an SMTP 4xx (transient). */
int relay__retryable(const relay_dest *d, int status)
{
    if (d->kind == RELAY_EMAIL) return status == 0 || (status >= 400 && status < 500);
    return status == 0 || status == 408 || status == 429 || status >= 500;
}

/* Append the dead letter: the event and every attempt. */
void relay__dead_letter(worker *w, const evt_event *e, uint64_t seq, json_t *attempts)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "eventId", json_string(e->event_id));
    json_object_set_new(o, "type", json_string(evt_type_name(e)));
    json_object_set_new(o, "destination", json_string(w->d->name));
    relay__time_json(o, "deadAt", ct_now_ns());
    json_object_set(o, "attempts", attempts);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *p = relay__state_path(w->r->state_dir, w->d->name, ".dead.ndjson");
    /* Locked: a redrive rewrites the file under the same lock. */
    FILE *f = fopen(p, "a");
    if (f) flock(fileno(f), LOCK_EX);
    if (!f || fprintf(f, "%s\n", txt) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        ct_log(CT_LOG_ERROR, "relay", "%s: cannot append a dead letter to %s: %s", w->d->name, p, strerror(errno));
    if (f) fclose(f); /* and unlocked */
    free(p);
    free(txt);
    atomic_fetch_add(&w->f->dead, 1);
    ct_log(CT_LOG_WARN, "relay", "%s: gave up event %s (seq %llu) after %zu attempt(s): a dead letter", w->d->name,
           e->event_id, (unsigned long long)seq, json_array_size(attempts));
}

/* What the destination did about the events, for the order page (one LMDB transaction). */
static void note(worker *w, const evt_event *const *evs, size_t n, const char *status, const char *error)
{
    relay__note nt = {.dest = w->d->name, .status = status, .error = error, .at_ns = ct_now_ns()};
    relay__db_note_many(w->r->db, evs, n, &nt);
}

/* The counters and the breaker after an attempt (the counters first, so that the status written at a breaker
 * change agrees with them). */
void relay__count_outcome(worker *w, int ok, size_t n)
{
    relay_breaker_state before = w->br.state;
    if (ok) {
        atomic_fetch_add(&w->f->delivered, n);
        atomic_store(&w->f->last_ok_ns, ct_now_ns());
        atomic_store(&w->f->failing_since_ns, 0);
    } else {
        atomic_fetch_add(&w->f->failed, 1);
        if (!atomic_load(&w->f->failing_since_ns)) atomic_store(&w->f->failing_since_ns, ct_now_ns());
    }
    relay_breaker_result(&w->br, ok, relay__mono_ns());
    relay__set_breaker(w, before);
}

/* One attempt, when the breaker lets it go. 0 done (oc filled); -1 stopping. */
static int attempt_once(relay *r, worker *w, const char *id, const ct_buf *body, const evt_event *e, uint64_t seq,
                        relay__outcome *oc, json_t *attempts)
{
    int64_t wait = 0;
    relay_breaker_state before = w->br.state;
    while (!relay_breaker_allow(&w->br, relay__mono_ns(), &wait)) {
        relay__write_status(w, 0);
        if (relay__nap(r, wait < 200000000LL ? wait : 200000000LL) != 0) return -1;
    }
    relay__set_breaker(w, before);
    if (w->d->kind == RELAY_EMAIL && !e) relay__smtp_send_msg(&w->http, w->d, body, oc);
    else if (w->d->kind == RELAY_EMAIL) relay__smtp_send(&w->http, w->d, id, e, seq, oc);
    else relay__http_post(&w->http, w->d, id, body->data, body->len, oc);
    atomic_fetch_add(&w->f->attempts, 1);
    json_t *a = json_object();
    relay__time_json(a, "at", ct_now_ns());
    json_object_set_new(a, "status", json_integer(oc->status));
    if (oc->error[0]) json_object_set_new(a, "error", json_string(oc->error));
    json_array_append_new(attempts, a);
    return 0;
}

/* Deliver a body carrying n events (one, or a batch) until it is answered 2xx, given up (each event a dead
 * letter), or the relay stops. 0: done (delivered or dead; a redrive: 0 delivered, 1 not); -1: stopping (not
 * done: it goes again after a restart). */
int relay__deliver_body(relay *r, worker *w, const char *id, const ct_buf *body, const evt_event *const *evs,
                        const uint64_t *seqs, size_t n, int redrive, json_t **given_up)
{
    const relay_dest *d = w->d;
    json_t *attempts = json_array();
    int rc = -1;
    for (int attempt = 1; !atomic_load(&r->stop); attempt++) {
        relay__outcome oc;
        if (attempt_once(r, w, id, body, evs ? evs[0] : NULL, seqs[0], &oc, attempts) != 0) break;
        int ok = oc.status >= 200 && oc.status < 300;
        relay__count_outcome(w, ok, n);
        if (ok) {
            if (evs) note(w, evs, n, "delivered", NULL);
            rc = 0;
            break;
        }
        char msg[300];
        const char *what = n == 1 && evs ? evs[0]->event_id : id;
        snprintf(msg, sizeof msg, "%s: %s", what, oc.error[0] ? oc.error : "HTTP error");
        relay__set_error(w, msg);
        ct_log(CT_LOG_INFO, "relay", "%s: attempt %d of %s failed: %s", d->name, attempt, what, msg);
        if (!relay__retryable(d, oc.status) || attempt >= d->max_attempts || redrive) {
            if (evs) note(w, evs, n, redrive ? "failing" : "dead", msg);
            for (size_t i = 0; i < n && !redrive && evs; i++) relay__dead_letter(w, evs[i], seqs[i], attempts);
            if (!evs && !redrive && given_up) *given_up = json_incref(attempts);
            rc = redrive ? 1 : evs ? 0 : 2;
            break;
        }
        if (attempt == 1 && evs) note(w, evs, n, "failing", msg);
        int64_t delay = relay_backoff_ns(attempt, d->backoff_min_ns, d->backoff_max_ns, &w->rng);
        if ((oc.status == 429 || oc.status == 503) && oc.retry_after_ns >= 0)
            delay = oc.retry_after_ns < d->backoff_max_ns ? oc.retry_after_ns : d->backoff_max_ns;
        relay__write_status(w, 1);
        if (relay__nap(r, delay) != 0) break;
    }
    json_decref(attempts);
    relay__write_status(w, rc != 0); /* a delivery: at most once a second (the loop writes the rest) */
    return rc;
}

int relay__deliver(relay *r, void *vw, const evt_event *e, uint64_t seq, int redrive)
{
    worker *w = vw;
    ct_buf body = {0};
    relay__payload(w->d, e, seq, &body);
    char id[EVT_MAX_EVENT_ID + 80];
    snprintf(id, sizeof id, "%s.%s", e->event_id, w->d->name);
    int rc = relay__deliver_body(r, w, id, &body, &e, &seq, 1, redrive, NULL);
    ct_buf_free(&body);
    return rc;
}

/* A batch = N destination's events: one request for up to N of them, in stream order. */
static int deliver_batch(relay *r, worker *w, evt_event *const *evs, const uint64_t *seqs, size_t n)
{
    ct_buf body = {0};
    relay__payload_batch(w->d, (const evt_event *const *)evs, seqs, n, &body);
    char id[160];
    snprintf(id, sizeof id, "batch-%llu-%llu.%s", (unsigned long long)seqs[0], (unsigned long long)seqs[n - 1],
             w->d->name);
    int rc = relay__deliver_body(r, w, id, &body, (const evt_event *const *)evs, seqs, n, 0, NULL);
    ct_buf_free(&body);
    return rc;
}

/* ---- the destination's loop ------------------------------------------------------------------------------ */

/* The group of wanted events waiting to go out together (batch = N), with their sequences. */
typedef struct group {
    evt_event *ev[RELAY_BATCH_MAX];
    uint64_t seq[RELAY_BATCH_MAX];
    size_t n;
    uint64_t upto;   /* the last sequence looked at (skipped ones after the group's last event included) */
    uint64_t pending;
} group;

/* Send the group: then the checkpoint moves to what it covers. 0, or -1 (stopping: nothing moved). */
static int flush(worker *w, group *g)
{
    int rc = 0;
    if (g->n == 1 && w->d->batch <= 1) rc = relay__deliver(w->r, w, g->ev[0], g->seq[0], 0);
    else if (g->n) rc = deliver_batch(w->r, w, g->ev, g->seq, g->n);
    for (size_t i = 0; i < g->n; i++) evt_free(g->ev[i]);
    int sent = g->n > 0;
    g->n = 0;
    if (rc != 0) return -1;
    if (g->upto > w->seq) {
        w->seq = g->upto;
        atomic_store(&w->f->backlog, g->pending);
        if (sent) relay__write_checkpoint(w);
    }
    return 0;
}

/* A fetched batch: each wanted event delivered (alone, or with the next ones up to the destination's batch
 * size), in stream order; the checkpoint after each delivery and at the end. */
static void take_batch(worker *w, const bus_batch *batch)
{
    relay *r = w->r;
    size_t cap = w->d->batch > 1 ? (size_t)w->d->batch : 1;
    group *g = ct_calloc(1, sizeof *g);
    int moved = 0, stopped = 0;
    for (size_t i = 0; i < batch->n && !atomic_load(&r->stop) && !stopped; i++) {
        const bus_msg *m = &batch->v[i];
        if (m->seq <= w->seq || m->seq <= g->upto) continue;
        atomic_store(&w->f->backlog, m->pending + 1); /* this one is not done yet */
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_protobuf(&e, m->data, m->len, &err) == CT_OK && relay_dest_wants(w->d, e)) {
            g->ev[g->n] = e;
            g->seq[g->n++] = m->seq;
        } else {
            evt_free(e);
            atomic_fetch_add(&w->f->skipped, 1);
        }
        g->upto = m->seq;
        g->pending = m->pending;
        moved = 1;
        if (g->n >= cap || (g->n && w->d->batch <= 1)) stopped = flush(w, g) != 0;
    }
    if (!stopped && !atomic_load(&r->stop)) stopped = flush(w, g) != 0;
    for (size_t i = 0; i < g->n; i++) evt_free(g->ev[i]); /* stopping: they go again after a restart */
    if (moved && !stopped) relay__write_checkpoint(w);
    free(g);
}

void relay__consumer_name(const worker *w, char *out, size_t cap)
{
    snprintf(out, cap, "%s-%s", w->r->instance, w->d->name);
}

int relay__consume(worker *w, bus_consumer **c, uint64_t from_seq, size_t max, int wait_ms,
                   int (*take)(void *ctx, bus_batch *b), void *ctx)
{
    relay *r = w->r;
    if (!*c) {
        char cname[200];
        relay__consumer_name(w, cname, sizeof cname);
        if (bus_consumer_open(c, r->b, cname, from_seq) != CT_OK) {
            *c = NULL;
            relay__nap(r, 1000000000LL);
            return -1;
        }
    }
    bus_batch batch = {0};
    ct_status st = bus_consumer_fetch(*c, max, wait_ms, &batch);
    int failed = st == CT_OK ? take(ctx, &batch) != 0 : st != CT_TIMEOUT;
    bus_batch_free(&batch);
    if (failed) {
        bus_consumer_close(*c);
        *c = NULL;
        relay__nap(r, st == CT_OK ? 1000000000LL : 500000000LL);
    }
    return 0;
}

/* The destination's loop: batches from its reader (relay_feed.c, which fetches ahead), delivered in order. */
static void *worker_main(void *arg)
{
    worker *w = arg;
    relay *r = w->r;
    relay__write_status(w, 1);
    size_t want = w->d->batch > FETCH_MAX ? (size_t)w->d->batch : FETCH_MAX; /* a whole batch at once */
    relay__feed *feed = relay__feed_start(w, w->seq + 1, want, NULL, NULL);
    while (!atomic_load(&r->stop)) {
        bus_batch batch = {0};
        if (relay__feed_next(feed, FETCH_WAIT_MS, &batch) == CT_OK) take_batch(w, &batch);
        bus_batch_free(&batch);
        relay__write_status(w, 0);
    }
    relay__feed_stop(feed);
    relay__write_status(w, 1);
    return NULL;
}

static int mkdir_p(const char *dir)
{
    char *p = ct_strdup(dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    int rc = mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : -1;
    free(p);
    return rc;
}

static void worker_init(relay *r, worker *w, const relay_dest *d, relay_figures *f, size_t i)
{
    w->r = r;
    w->d = d;
    w->f = f;
    w->rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)ct_now_ns() ^ (i << 32);
    w->br = (relay_breaker){RELAY_BREAKER_CLOSED, 0, d->breaker_failures, d->breaker_cooldown_ns, 0};
    w->seq = relay__read_checkpoint(r->state_dir, d->name);
    w->seq_fd = -1;
    atomic_store(&f->checkpoint, w->seq);
    relay__http_init(&w->http);
}

ct_status relay_start(relay **out, bus *b, const relay_opts *o, relay_figures *figures)
{
    if (mkdir_p(o->state_dir) != 0) {
        ct_log(CT_LOG_ERROR, "relay", "cannot create the state directory %s: %s", o->state_dir, strerror(errno));
        return CT_IO;
    }
    /* Once, before any thread: libcurl's global set-up is not thread-safe (idempotent when done before). */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, relay__http_global);
    relay *r = ct_calloc(1, sizeof *r);
    r->b = b;
    r->o = o;
    r->state_dir = ct_strdup(o->state_dir);
    r->instance = ct_strdup(o->instance ? o->instance : "tower-relay");
    r->store_dir = o->store_dir ? ct_strdup(o->store_dir) : NULL;
    pthread_mutex_init(&r->err_lock, NULL);
    r->db = relay__db_open(r->state_dir, 1);
    if (!r->db) ct_log(CT_LOG_WARN, "relay", "no %s/relay.lmdb: deliveries are not recorded per order", r->state_dir);
    r->n = o->conf->n;
    r->w = ct_calloc(r->n ? r->n : 1, sizeof *r->w);
    for (size_t i = 0; i < r->n; i++) {
        worker_init(r, &r->w[i], &o->conf->v[i], &figures[i], i);
        void *(*fn)(void *) = o->conf->v[i].kind == RELAY_ROUTE_PLANNER ? relay__planner_main
                              : o->conf->v[i].exceptions                ? relay__exc_main
                              : o->conf->v[i].lanes > 1                 ? relay__lanes_main
                                                                         : worker_main;
        r->w[i].started = pthread_create(&r->w[i].thread, NULL, fn, &r->w[i]) == 0;
        ct_log(CT_LOG_INFO, "relay", "%s: %s%s %s from sequence %llu, %d lane(s)", o->conf->v[i].name,
               o->conf->v[i].kind == RELAY_SLACK           ? "slack"
               : o->conf->v[i].kind == RELAY_EMAIL         ? "email"
               : o->conf->v[i].kind == RELAY_ROUTE_PLANNER ? "route planner"
                                                           : "webhook",
               o->conf->v[i].exceptions ? " (exception changes)" : "", o->conf->v[i].url,
               (unsigned long long)r->w[i].seq + 1, o->conf->v[i].lanes);
    }
    *out = r;
    return CT_OK;
}

void relay_stop(relay *r)
{
    if (!r) return;
    atomic_store(&r->stop, 1);
    for (size_t i = 0; i < r->n; i++) {
        if (r->w[i].started) pthread_join(r->w[i].thread, NULL);
        relay__http_free(&r->w[i].http);
        if (r->w[i].seq_fd >= 0) close(r->w[i].seq_fd);
    }
    pthread_mutex_destroy(&r->err_lock);
    relay__db_close(r->db);
    free(r->w);
    free(r->state_dir);
    free(r->instance);
    free(r->store_dir);
    free(r);
}

/* ---- redrive: the dead letters of one destination, once more ---------------------------------------------- */

/* One dead letter once more: read back from the stream by its sequence, one attempt. 1 delivered, 0 not. */
static int redrive_one(relay *r, worker *w, const char *line, size_t n, FILE *report)
{
    json_error_t je;
    json_t *o = json_loadb(line, n, 0, &je);
    if (json_object_get(o, "change")) { /* an exception change's (relay_exc.c) */
        int done = relay__exc_redrive_one(r, w, o);
        json_decref(o);
        return done;
    }
    uint64_t seq = o ? (uint64_t)json_integer_value(json_object_get(o, "seq")) : 0;
    ct_buf raw = {0};
    evt_event *e = NULL;
    evt_error err;
    int ok = seq && bus_stream_get(r->b, seq, &raw) == CT_OK &&
             evt_from_protobuf(&e, (const uint8_t *)raw.data, raw.len, &err) == CT_OK &&
             relay__deliver(r, w, e, seq, 1) == 0;
    fprintf(report, "%s seq %llu (%s): %s\n", w->d->name, (unsigned long long)seq, e ? e->event_id : "?",
            ok ? "delivered" : w->f->last_error[0] ? w->f->last_error : "not delivered");
    evt_free(e);
    ct_buf_free(&raw);
    json_decref(o);
    return ok;
}

int relay_redrive(bus *b, const relay_conf *conf, const char *state_dir, const char *name, FILE *report)
{
    const relay_dest *d = NULL;
    for (size_t i = 0; i < conf->n; i++)
        if (!strcmp(conf->v[i].name, name)) d = &conf->v[i];
    if (!d) {
        fprintf(report, "no destination %s in the relay file\n", name);
        return 2;
    }
    if (d->kind == RELAY_ROUTE_PLANNER) return relay__planner_redrive(d, state_dir, report);
    char *path = relay__state_path(state_dir, name, ".dead.ndjson");
    FILE *f = fopen(path, "r+");
    /* Held for the whole redrive: a running relay appending a new dead letter waits for it. */
    if (f) flock(fileno(f), LOCK_EX);
    if (!f) {
        fprintf(report, "%s: no dead letters (%s)\n", name, path);
        free(path);
        return 0;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, relay__http_global);
    relay r = {.b = b, .state_dir = (char *)state_dir, .db = relay__db_open(state_dir, 0), .instance = "tower-relay"};
    pthread_mutex_init(&r.err_lock, NULL);
    relay_figures fig = {0};
    worker w = {0};
    worker_init(&r, &w, d, &fig, 0);
    w.br.threshold = 1 << 30; /* a redrive tries each once, whatever the breaker */
    ct_buf keep = {0};
    char *line = NULL;
    size_t cap = 0, done = 0, left = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (redrive_one(&r, &w, line, (size_t)n, report)) done++;
        else {
            ct_buf_add(&keep, line, (size_t)n);
            left++;
        }
    }
    free(line);
    /* Rewritten in place, under the lock: only what is still dead stays. */
    rewind(f);
    if (ftruncate(fileno(f), 0) != 0 || (keep.len && fwrite(keep.data, 1, keep.len, f) != keep.len) || fflush(f) != 0 ||
        fsync(fileno(f)) != 0)
        fprintf(report, "cannot rewrite %s: %s\n", path, strerror(errno));
    fclose(f);
    fprintf(report, "%s: %zu delivered, %zu still dead\n", name, done, left);
    ct_buf_free(&keep);
    free(path);
    relay__http_free(&w.http);
    relay__db_close(r.db);
    pthread_mutex_destroy(&r.err_lock);
    char *st = relay__state_path(state_dir, name, ".status.json");
    unlink(st); /* the running relay, if any, writes its own */
    free(st);
    return left ? 1 : 0;
}

/* ---- metrics -------------------------------------------------------------------------------------------- */

void relay_metrics(const relay_conf *conf, const relay_figures *figures, ct_buf *b)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } fam[] = {
        {"tower_relay_delivered_total", "counter", "Deliveries answered 2xx, per destination.", offsetof(relay_figures, delivered)},
        {"tower_relay_attempts_total", "counter", "Delivery attempts, per destination.", offsetof(relay_figures, attempts)},
        {"tower_relay_failed_attempts_total", "counter", "Attempts that failed, per destination.", offsetof(relay_figures, failed)},
        {"tower_relay_dead_letters_total", "counter", "Deliveries given up (delivery dead letters), per destination.",
         offsetof(relay_figures, dead)},
        {"tower_relay_checkpoint_sequence", "gauge", "The last stream sequence done, per destination.",
         offsetof(relay_figures, checkpoint)},
        {"tower_relay_backlog_events", "gauge", "Stream messages after the checkpoint, per destination.",
         offsetof(relay_figures, backlog)},
        {"tower_relay_held_requests", "gauge", "Route requests a route planner destination holds (0 for others).",
         offsetof(relay_figures, held)},
    };
    for (size_t k = 0; k < sizeof fam / sizeof fam[0]; k++) {
        ct_metrics_family(b, fam[k].name, fam[k].type, fam[k].help);
        for (size_t i = 0; i < conf->n; i++) {
            const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)&figures[i] + fam[k].off);
            ct_buf_addf(b, "%s{destination=\"%s\"} %llu\n", fam[k].name, conf->v[i].name,
                        (unsigned long long)atomic_load(v));
        }
    }
    ct_metrics_family(b, "tower_relay_breaker_state", "gauge",
                      "The destination's circuit breaker: 0 closed, 1 open, 2 half-open.");
    for (size_t i = 0; i < conf->n; i++)
        ct_buf_addf(b, "tower_relay_breaker_state{destination=\"%s\"} %d\n", conf->v[i].name,
                    atomic_load(&figures[i].breaker));
}
