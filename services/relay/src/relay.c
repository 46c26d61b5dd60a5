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

typedef struct worker {
    relay *r;
    const relay_dest *d;
    relay_figures *f;
    pthread_t thread;
    int started;
    uint64_t rng;
    relay_breaker br;
    relay__http http;
    int64_t status_ns;        /* when the status file was last written (monotonic) */
    uint64_t seq;             /* the checkpoint */
    int seq_fd;               /* STATE/NAME.seq, open: the checkpoint is rewritten in place after each event */
} worker;

struct relay {
    bus *b;
    const relay_opts *o;
    char *state_dir;
    char *instance;
    worker *w;
    size_t n;
    atomic_int stop;
    pthread_mutex_t err_lock; /* guards figures[].last_error */
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Sleep up to ns, in short steps so that a stop is seen within 50 ms. 0: slept; -1: stopping. */
static int nap(relay *r, int64_t ns)
{
    int64_t end = mono_ns() + ns;
    while (!atomic_load(&r->stop)) {
        int64_t left = end - mono_ns();
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
static void write_checkpoint(worker *w)
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

static void time_json(json_t *o, const char *k, int64_t ns)
{
    if (!ns) {
        json_object_set_new(o, k, json_null());
        return;
    }
    char buf[48];
    evt_time_format(ns / 1000000000LL, (int32_t)(ns % 1000000000LL), buf);
    json_object_set_new(o, k, json_string(buf));
}

static void write_status(worker *w, int force)
{
    int64_t now = mono_ns();
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
    time_json(o, "lastOkAt", atomic_load(&f->last_ok_ns));
    time_json(o, "failingSince", atomic_load(&f->failing_since_ns));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *p = relay__state_path(w->r->state_dir, w->d->name, ".status.json");
    if (txt) relay__write_file(p, txt, strlen(txt));
    free(p);
    free(txt);
}

/* ---- one delivery ------------------------------------------------------------------------------------- */

static void set_error(worker *w, const char *msg)
{
    pthread_mutex_lock(&w->r->err_lock);
    snprintf(w->f->last_error, sizeof w->f->last_error, "%.250s", msg);
    pthread_mutex_unlock(&w->r->err_lock);
}

static void set_breaker(worker *w, relay_breaker_state before)
{
    atomic_store(&w->f->breaker, (int)w->br.state);
    if (w->br.state != before) {
        ct_log(w->br.state == RELAY_BREAKER_CLOSED ? CT_LOG_INFO : CT_LOG_WARN, "relay", "%s: breaker %s",
               w->d->name, relay_breaker_name(w->br.state));
        write_status(w, 1);
    }
}

/* Whether an outcome is worth another attempt: no answer; HTTP 408, 429 and 5xx; an SMTP 4xx (transient). */
static int retryable(const relay_dest *d, int status)
{
    if (d->kind == RELAY_EMAIL) return status == 0 || (status >= 400 && status < 500);
    return status == 0 || status == 408 || status == 429 || status >= 500;
}

/* Append the dead letter: the event and every attempt. */
static void dead_letter(worker *w, const evt_event *e, uint64_t seq, json_t *attempts)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "eventId", json_string(e->event_id));
    json_object_set_new(o, "type", json_string(evt_type_name(e)));
    json_object_set_new(o, "destination", json_string(w->d->name));
    time_json(o, "deadAt", ct_now_ns());
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

/* Deliver one event until it is answered 2xx, given up (a dead letter), or the relay stops.
 * 0: done (delivered or dead); -1: stopping (not done: it goes again after a restart). */
int relay__deliver(relay *r, void *vw, const evt_event *e, uint64_t seq, int redrive)
{
    worker *w = vw;
    const relay_dest *d = w->d;
    ct_buf body = {0};
    relay__payload(d, e, seq, &body);
    char id[EVT_MAX_EVENT_ID + 80];
    snprintf(id, sizeof id, "%s.%s", e->event_id, d->name);
    json_t *attempts = json_array();
    int rc = -1;
    for (int attempt = 1; !atomic_load(&r->stop); attempt++) {
        int64_t wait = 0;
        relay_breaker_state before = w->br.state;
        while (!relay_breaker_allow(&w->br, mono_ns(), &wait)) {
            write_status(w, 0);
            if (nap(r, wait < 200000000LL ? wait : 200000000LL) != 0) goto out;
        }
        set_breaker(w, before);
        relay__outcome oc;
        if (d->kind == RELAY_EMAIL) relay__smtp_send(&w->http, d, id, e, seq, &oc);
        else relay__http_post(&w->http, d, id, body.data, body.len, &oc);
        atomic_fetch_add(&w->f->attempts, 1);
        json_t *a = json_object();
        time_json(a, "at", ct_now_ns());
        json_object_set_new(a, "status", json_integer(oc.status));
        if (oc.error[0]) json_object_set_new(a, "error", json_string(oc.error));
        json_array_append_new(attempts, a);
        before = w->br.state;
        int ok = oc.status >= 200 && oc.status < 300;
        /* The counters first, so that the status written at a breaker change agrees with them. */
        if (ok) {
            atomic_fetch_add(&w->f->delivered, 1);
            atomic_store(&w->f->last_ok_ns, ct_now_ns());
            atomic_store(&w->f->failing_since_ns, 0);
        } else {
            atomic_fetch_add(&w->f->failed, 1);
            if (!atomic_load(&w->f->failing_since_ns)) atomic_store(&w->f->failing_since_ns, ct_now_ns());
        }
        relay_breaker_result(&w->br, ok, mono_ns());
        set_breaker(w, before);
        if (ok) {
            rc = 0;
            break;
        }
        char msg[300];
        snprintf(msg, sizeof msg, "%s: %s", e->event_id, oc.error[0] ? oc.error : "HTTP error");
        set_error(w, msg);
        ct_log(CT_LOG_INFO, "relay", "%s: attempt %d of %s failed: %s", d->name, attempt, e->event_id, msg);
        if (!retryable(d, oc.status) || attempt >= d->max_attempts || redrive) {
            if (!redrive) dead_letter(w, e, seq, attempts);
            rc = redrive ? 1 : 0;
            break;
        }
        int64_t delay = relay_backoff_ns(attempt, d->backoff_min_ns, d->backoff_max_ns, &w->rng);
        if ((oc.status == 429 || oc.status == 503) && oc.retry_after_ns >= 0)
            delay = oc.retry_after_ns < d->backoff_max_ns ? oc.retry_after_ns : d->backoff_max_ns;
        write_status(w, 1);
        if (nap(r, delay) != 0) break;
    }
out:
    json_decref(attempts);
    ct_buf_free(&body);
    write_status(w, 1);
    return rc;
}

/* ---- the destination's loop ------------------------------------------------------------------------------ */

static void *worker_main(void *arg)
{
    worker *w = arg;
    relay *r = w->r;
    char cname[200];
    snprintf(cname, sizeof cname, "%s-%s", r->instance, w->d->name);
    bus_consumer *c = NULL;
    write_status(w, 1);
    while (!atomic_load(&r->stop)) {
        if (!c && bus_consumer_open(&c, r->b, cname, w->seq + 1) != CT_OK) {
            c = NULL;
            nap(r, 1000000000LL);
            continue;
        }
        bus_batch batch = {0};
        ct_status st = bus_consumer_fetch(c, FETCH_MAX, FETCH_WAIT_MS, &batch);
        if (st == CT_TIMEOUT) {
            write_status(w, 0);
            continue;
        }
        if (st != CT_OK) {
            bus_consumer_close(c);
            c = NULL;
            nap(r, 500000000LL);
            continue;
        }
        int moved = 0;
        for (size_t i = 0; i < batch.n && !atomic_load(&r->stop); i++) {
            const bus_msg *m = &batch.v[i];
            if (m->seq <= w->seq) continue;
            atomic_store(&w->f->backlog, m->pending + 1); /* this one is not done yet */
            evt_event *e = NULL;
            evt_error err;
            int wanted = evt_from_protobuf(&e, m->data, m->len, &err) == CT_OK && relay_dest_wants(w->d, e);
            if (!wanted) {
                atomic_fetch_add(&w->f->skipped, 1);
            } else if (relay__deliver(r, w, e, m->seq, 0) != 0) {
                evt_free(e);
                break; /* stopping: this one goes again after a restart */
            }
            evt_free(e);
            w->seq = m->seq;
            moved = 1;
            atomic_store(&w->f->backlog, m->pending);
            if (wanted) write_checkpoint(w);
        }
        if (moved) write_checkpoint(w);
        bus_batch_free(&batch);
        write_status(w, 0);
    }
    bus_consumer_close(c);
    write_status(w, 1);
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
    pthread_mutex_init(&r->err_lock, NULL);
    r->n = o->conf->n;
    r->w = ct_calloc(r->n ? r->n : 1, sizeof *r->w);
    for (size_t i = 0; i < r->n; i++) {
        worker_init(r, &r->w[i], &o->conf->v[i], &figures[i], i);
        r->w[i].started = pthread_create(&r->w[i].thread, NULL, worker_main, &r->w[i]) == 0;
        ct_log(CT_LOG_INFO, "relay", "%s: %s %s from sequence %llu", o->conf->v[i].name,
               o->conf->v[i].kind == RELAY_SLACK ? "slack" : o->conf->v[i].kind == RELAY_EMAIL ? "email" : "webhook",
               o->conf->v[i].url,
               (unsigned long long)r->w[i].seq + 1);
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
    free(r->w);
    free(r->state_dir);
    free(r->instance);
    free(r);
}

/* ---- redrive: the dead letters of one destination, once more ---------------------------------------------- */

int relay_redrive(bus *b, const relay_conf *conf, const char *state_dir, const char *name, FILE *report)
{
    const relay_dest *d = NULL;
    for (size_t i = 0; i < conf->n; i++)
        if (!strcmp(conf->v[i].name, name)) d = &conf->v[i];
    if (!d) {
        fprintf(report, "no destination %s in the relay file\n", name);
        return 2;
    }
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
    relay r = {0};
    r.b = b;
    r.state_dir = (char *)state_dir;
    pthread_mutex_init(&r.err_lock, NULL);
    relay_figures fig;
    memset(&fig, 0, sizeof fig);
    worker w;
    memset(&w, 0, sizeof w);
    r.instance = "tower-relay";
    worker_init(&r, &w, d, &fig, 0);
    w.br.threshold = 1 << 30; /* a redrive tries each once, whatever the breaker */
    ct_buf keep = {0};
    char *line = NULL;
    size_t cap = 0, done = 0, left = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        uint64_t seq = o ? (uint64_t)json_integer_value(json_object_get(o, "seq")) : 0;
        ct_buf raw = {0};
        evt_event *e = NULL;
        evt_error err;
        int ok = seq && bus_stream_get(b, seq, &raw) == CT_OK &&
                 evt_from_protobuf(&e, (const uint8_t *)raw.data, raw.len, &err) == CT_OK &&
                 relay__deliver(&r, &w, e, seq, 1) == 0;
        fprintf(report, "%s seq %llu (%s): %s\n", name, (unsigned long long)seq, e ? e->event_id : "?",
                ok ? "delivered" : fig.last_error[0] ? fig.last_error : "not delivered");
        if (ok) done++;
        else {
            ct_buf_add(&keep, line, (size_t)n);
            left++;
        }
        evt_free(e);
        ct_buf_free(&raw);
        json_decref(o);
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
