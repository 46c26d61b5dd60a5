/* The live stream's hub: change notices in, one shared batch per commit out to every subscribed
 * client's bounded queue; a ticker for summaries and catching missed notices; the trend, read from the store. */
#include "stream_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void stream__batch_unref(hub_batch *b)
{
    if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) > 0) return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->d[i].warehouse);
        free(b->d[i].text);
    }
    free(b->d);
    free(b->text);
    free(b);
}

/* Under c->mu. */
static void drop_queue(ws_client *c)
{
    for (size_t i = 0; i < c->qn; i++) stream__batch_unref(c->q[i]);
    c->qn = 0;
    c->q_deltas = 0;
}

void stream__enqueue(http_server *s, ws_client *c, hub_batch *b)
{
    stream_hub *h = s->hub;
    size_t bound = s->o.ws_queue ? s->o.ws_queue : 20000;
    pthread_mutex_lock(&c->mu);
    if (c->closing) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    /* A client that does not keep up loses what it has not taken and is resynced when it reads
     * again (an empty queue takes any one batch, however large). */
    if (b->kind == HUB_DELTAS && c->q_deltas && c->q_deltas + b->n > bound) {
        drop_queue(c);
        snprintf(c->resync, sizeof c->resync, "slow client: more than %zu changes were waiting", bound);
        c->want_snapshot |= c->views;
        __atomic_fetch_add(&h->drops, 1, __ATOMIC_RELAXED);
    } else {
        if (c->qn == c->qcap) {
            c->qcap = c->qcap ? c->qcap * 2 : 16;
            c->q = ct_realloc(c->q, c->qcap * sizeof *c->q);
        }
        __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
        c->q[c->qn++] = b;
        if (b->kind == HUB_DELTAS) c->q_deltas += b->n;
    }
    /* No wake-up for changes: the flusher wakes senders with work, at most once per coalescing interval
     * (a wake-up per client per commit is what costs, not the writes). A resync is sent now. */
    if (c->resync[0]) c->tr->wake(c);
    pthread_mutex_unlock(&c->mu);
}

/* Under h->mu. */
static void resync_locked(http_server *s, const char *reason)
{
    stream_hub *h = s->hub;
    for (ws_client *c = h->clients; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        drop_queue(c);
        if (c->views) {
            snprintf(c->resync, sizeof c->resync, "%s", reason);
            c->want_snapshot |= c->views;
            __atomic_fetch_add(&h->resyncs, 1, __ATOMIC_RELAXED);
        }
        c->tr->wake(c);
        pthread_mutex_unlock(&c->mu);
    }
}

void stream__resync_all(http_server *s, const char *reason)
{
    pthread_mutex_lock(&s->hub->mu);
    resync_locked(s, reason);
    pthread_mutex_unlock(&s->hub->mu);
}

/* Ask the flusher for a pass (at the end of the current coalescing interval at the latest). */
static void flush_soon(stream_hub *h)
{
    pthread_mutex_lock(&h->tick_mu);
    if (!h->flush_due) {
        h->flush_due = 1;
        pthread_cond_signal(&h->flush_cv);
    }
    pthread_mutex_unlock(&h->tick_mu);
}

/* Queue a batch to every client it concerns, and have it flushed soon. With more than SUMMARY_WAIT_CLIENTS
 * clients a summary waits up to SUMMARY_WAIT_NS for the next flush of deltas, so that it leaves in their
 * frame rather than in one of its own (with 10,000 clients a frame per client per summary costs as much as
 * the deltas); with fewer, dashboards' counts follow at once. */
#define SUMMARY_WAIT_NS 1000000000LL
#define SUMMARY_WAIT_CLIENTS 1000

static void broadcast(http_server *s, hub_batch *b)
{
    stream_hub *h = s->hub;
    int queued = 0;
    for (ws_client *c = h->clients; c; c = c->next)
        if (b->kind == HUB_SUMMARY ? c->views != 0 : (c->views & b->views) != 0) {
            stream__enqueue(s, c, b);
            queued = 1;
        }
    if (queued && b->kind == HUB_SUMMARY && h->n_clients > SUMMARY_WAIT_CLIENTS) {
        if (!h->summary_wait_mono) h->summary_wait_mono = ct_mono_ns();
    } else if (queued) {
        flush_soon(h);
    }
}

/* Serialise the deltas of one notice part once. */
static hub_batch *batch_of(uint64_t seq, json_t *changes)
{
    hub_batch *b = ct_calloc(1, sizeof *b);
    b->refs = 1;
    b->kind = HUB_DELTAS;
    b->seq = seq;
    size_t n = json_array_size(changes);
    b->d = ct_calloc(n ? n : 1, sizeof *b->d);
    for (size_t i = 0; i < n; i++) {
        json_t *ch = json_array_get(changes, i);
        fold_view v;
        json_t *item = json_object_get(ch, "item");
        const char *op = json_string_value(json_object_get(ch, "op"));
        if (!json_is_object(item) || !op || fold_view_parse(json_string_value(json_object_get(ch, "view")), &v) != 0)
            continue;
        json_t *m = json_object();
        json_object_set_new(m, "type", json_string("delta"));
        json_object_set_new(m, "view", json_string(fold_view_name(v)));
        json_object_set_new(m, "seq", json_integer((json_int_t)seq));
        json_object_set_new(m, "op", json_string(op));
        json_object_set(m, "item", item);
        hub_delta *d = &b->d[b->n];
        d->text = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(m);
        if (!d->text) continue;
        d->len = strlen(d->text);
        d->view = (int)v;
        const char *wh = json_string_value(json_object_get(item, "warehouseId"));
        d->warehouse = wh && *wh ? ct_strdup(wh) : NULL;
        b->views |= 1u << v;
        b->bytes += d->len + 1;
        b->n++;
    }
    return b;
}

/* Whether a notice is of the store with id `ours`: its "store" (16 hex digits) is that id. One that names
 * none (an older projector) is checked by its chain like before; one whose "store" is not an id is no store's
 * projector's, and is not followed. */
static int notice_ours(const json_t *v, uint64_t ours)
{
    if (!v) return 1;
    const char *t = json_string_value(v);
    if (!t || strlen(t) != 16 || strspn(t, "0123456789abcdef") != 16) return 0;
    return ours && strtoull(t, NULL, 16) == ours;
}

/* A change notice from the projector (bus thread): check the chain, fan the deltas out. */
static void on_notice(void *ctx, const char *data, size_t len)
{
    http_server *s = ctx;
    stream_hub *h = s->hub;
    json_error_t je;
    /* Anyone who may publish on the bus can send one: bounded like every other input. */
    json_t *n = ct_json_too_deep(data, len, 2 * CT_JSON_MAX_DEPTH) ? NULL : json_loadb(data, len, 0, &je);
    json_t *seqj = n ? json_object_get(n, "seq") : NULL, *prevj = n ? json_object_get(n, "prev") : NULL;
    if (!json_is_integer(seqj) || !json_is_integer(prevj) || !json_is_array(json_object_get(n, "changes"))) {
        ct_log(CT_LOG_WARN, "stream", "ignoring a change notice that is not one (%zu bytes)", len);
        json_decref(n);
        return;
    }
    uint64_t seq = (uint64_t)json_integer_value(seqj), prev = (uint64_t)json_integer_value(prevj);
    int more = json_is_true(json_object_get(n, "more"));
    const json_t *from = json_object_get(n, "store");
    pthread_mutex_lock(&h->mu);
    if (!notice_ours(from, h->store_id)) {
        /* Another store's projector (a replica's, on the same bus): its commits are not this store's, and
         * following them would skip the notices of this store's own as seen. Before the store is open (its
         * id not known yet) no notice that names a store is followed: no client has a snapshot yet. */
        if (h->store_id && !h->foreign++)
            ct_log(CT_LOG_INFO, "stream", "ignoring the change notices of store %.40s (this server reads store "
                   "%016" PRIx64 "): another replica's projector shares the bus",
                   json_is_string(from) ? json_string_value(from) : "(not an id)", h->store_id);
        pthread_mutex_unlock(&h->mu);
        json_decref(n);
        return;
    }
    pthread_mutex_unlock(&h->mu);
    hub_batch *b = batch_of(seq, json_object_get(n, "changes"));
    json_decref(n);

    pthread_mutex_lock(&h->mu);
    h->last_seen_mono = ct_mono_ns(); /* notices are flowing, if perhaps behind the store */
    int skip;
    if (h->cur_more && seq == h->cur_seq) {
        skip = h->cur_skip; /* the next part of the commit under way */
    } else if (seq <= h->last_seen) {
        skip = 1; /* already in every snapshot taken since */
    } else if (prev != h->last_seen || h->cur_more) {
        char reason[160];
        snprintf(reason, sizeof reason, "changes were missed between sequence %" PRIu64 " and %" PRIu64, h->last_seen,
                 seq);
        ct_log(CT_LOG_INFO, "stream", "%s: resyncing every client", reason);
        resync_locked(s, reason);
        skip = 1;
        /* The snapshots that follow come from the store: go on from what it holds, not from what
         * the notice claims (a notice from another store's projector may be far ahead). */
        uint64_t applied = 0;
        store_reader *r = NULL;
        if (server__begin(s, &r) == CT_OK) {
            store_stats ss;
            store_reader_stats(r, &ss);
            applied = ss.applied_seq;
            server__end(s, r);
        }
        h->last_seen = applied;
        h->last_seen_mono = ct_mono_ns();
    } else {
        skip = 0;
    }
    if (!skip && seq > h->last_seen) {
        h->last_seen = seq;
        h->last_seen_mono = ct_mono_ns();
    }
    h->cur_seq = seq;
    h->cur_more = more;
    h->cur_skip = skip;
    if (!skip && b->n) broadcast(s, b);
    pthread_mutex_unlock(&h->mu);
    stream__batch_unref(b);
}

char *stream__summary_text(http_server *s, uint64_t *seq)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK) return NULL;
    store_stats ss;
    store_reader_stats(r, &ss);
    int64_t now = ct_now_ns();
    json_t *m = json_object();
    json_object_set_new(m, "type", json_string("summary"));
    json_object_set_new(m, "seq", json_integer((json_int_t)ss.applied_seq));
    server__now_json(m, now);
    json_object_set_new(m, "views", server__summary_views(r, now, 0));
    server__end(s, r);
    char *txt = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    *seq = ss.applied_seq;
    return txt;
}

/* Every 250 ms: a summary when the store moved, and a
 * resync when the store moved on but no notice came for STALE_NS (notices are not stored: the
 * last one lost while NATS reconnected would otherwise leave clients stale until the next). */
#define STALE_NS 5000000000LL

static void tick(http_server *s)
{
    stream_hub *h = s->hub;
    store_reader *r = NULL;
    /* Before the store exists, look for it every few seconds, not four times a second (each
     * failed open is logged). */
    pthread_rwlock_rdlock(&s->lock);
    int open = s->st != NULL;
    pthread_rwlock_unlock(&s->lock);
    if (!open && ct_mono_ns() < h->next_open_ns) return;
    if (server__begin(s, &r) != CT_OK) {
        h->next_open_ns = ct_mono_ns() + 5000000000LL;
        return;
    }
    store_stats ss;
    store_reader_stats(r, &ss);
    uint64_t id = store_reader_meta(r, STORE_META_ID);
    int64_t mono = ct_mono_ns();
    pthread_mutex_lock(&h->mu);
    h->store_id = id; /* a rebuild's swap brings a new one */
    pthread_mutex_unlock(&h->mu);
    /* Summaries go to every client: at most one a second (a dashboard's counts need no more). */
    int changed = ss.applied_seq != h->summary_seq && mono - h->summary_mono >= 1000000000LL;
    if (changed) h->summary_mono = mono;
    pthread_mutex_lock(&h->mu);
    int summary_due = h->summary_wait_mono && mono - h->summary_wait_mono >= SUMMARY_WAIT_NS;
    if (summary_due) h->summary_wait_mono = 0;
    pthread_mutex_unlock(&h->mu);
    if (summary_due) flush_soon(h); /* no deltas came to carry the last summary */
    server__end(s, r);

    pthread_mutex_lock(&h->mu);
    /* A commit's notice follows it by milliseconds: the store ahead of the notices is a gap only when it has
     * stayed ahead for STALE_NS (counted from when it was first seen ahead, not from the last notice, which
     * after a quiet spell is old for every new commit) while no notice came either. */
    if (ss.applied_seq <= h->last_seen) h->behind_mono = 0;
    else if (!h->behind_mono) h->behind_mono = mono;
    if (h->behind_mono && mono - h->behind_mono > STALE_NS && mono - h->last_seen_mono > STALE_NS) {
        char reason[160];
        snprintf(reason, sizeof reason, "no change notice arrived for sequence %" PRIu64 "..%" PRIu64, h->last_seen + 1,
                 ss.applied_seq);
        if (s->o.bus)
            ct_log(CT_LOG_WARN, "stream", "%s (the last came %.1f s ago; NATS %s): resyncing every client", reason,
                   (double)(mono - h->last_seen_mono) / 1e9, bus_is_connected(s->o.bus) ? "connected" : "disconnected");
        resync_locked(s, reason);
        h->last_seen = ss.applied_seq;
        h->last_seen_mono = mono;
        h->behind_mono = 0;
    }
    pthread_mutex_unlock(&h->mu);

    if (changed) {
        uint64_t seq = 0;
        hub_batch *b = ct_calloc(1, sizeof *b);
        b->refs = 1;
        b->kind = HUB_SUMMARY;
        b->text = stream__summary_text(s, &seq);
        b->seq = seq;
        b->len = b->text ? strlen(b->text) : 0;
        b->bytes = b->len + 1;
        if (b->text) {
            pthread_mutex_lock(&h->mu);
            broadcast(s, b);
            pthread_mutex_unlock(&h->mu);
            h->summary_seq = seq;
        }
        stream__batch_unref(b);
    }
}

static void *ticker(void *arg)
{
    http_server *s = arg;
    stream_hub *h = s->hub;
    pthread_mutex_lock(&h->tick_mu);
    while (!h->stopping) {
        pthread_mutex_unlock(&h->tick_mu);
        tick(s);
        pthread_mutex_lock(&h->tick_mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!h->stopping) pthread_cond_timedwait(&h->tick_cv, &h->tick_mu, &ts);
    }
    pthread_mutex_unlock(&h->tick_mu);
    return NULL;
}

/* Wakes the senders that have changes queued; 1 if one of them was busy writing (it needs
 * another wake-up for what it has not taken yet). */
static int wake_senders(stream_hub *h)
{
    int busy = 0;
    pthread_mutex_lock(&h->mu);
    for (ws_client *c = h->clients; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        if (c->qn && c->idle) {
            c->flush = 1;
            c->tr->wake(c);
        } else if (c->qn) {
            busy = 1;
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return busy;
}

/* The coalescing of changes into frames. Changes queued after a quiet spell leave at once (the
 * leading edge); changes queued within one interval of the last wake-up wait for the end of that
 * interval and leave together. So a client gets at most one frame per interval (what 1,000
 * clients need), and a lone change is not held back for a whole interval. */
static void *flusher(void *arg)
{
    http_server *s = arg;
    stream_hub *h = s->hub;
    int64_t interval = (s->o.ws_coalesce_ms > 0 ? s->o.ws_coalesce_ms : 20) * 1000000LL;
    int64_t last = ct_mono_ns() - interval;
    pthread_mutex_lock(&h->tick_mu);
    while (!h->stopping) {
        int64_t now = ct_mono_ns();
        if (h->flush_due && now - last >= interval) {
            h->flush_due = 0;
            pthread_mutex_unlock(&h->tick_mu);
            int busy = wake_senders(h);
            pthread_mutex_lock(&h->tick_mu);
            /* From the end of the pass: with many clients on few cores the pass itself takes a
             * while, and the interval then stretches with the load instead of adding to it. */
            last = ct_mono_ns();
            if (busy) h->flush_due = 1;
            continue;
        }
        int64_t wait = h->flush_due ? last + interval - now : 1000000000LL;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(wait / 1000000000LL);
        ts.tv_nsec += (long)(wait % 1000000000LL);
        while (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->flush_cv, &h->tick_mu, &ts);
    }
    pthread_mutex_unlock(&h->tick_mu);
    return NULL;
}

void stream__hub_start(http_server *s)
{
    stream_hub *h = ct_calloc(1, sizeof *h);
    s->hub = h;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->tick_mu, NULL);
    pthread_cond_init(&h->tick_cv, NULL);
    pthread_cond_init(&h->flush_cv, NULL);
    h->last_seen_mono = ct_mono_ns();
    if (s->o.bus && bus_subscribe(s->o.bus, BUS_CHANGES_SUBJECT, on_notice, s, &h->sub) != CT_OK) {
        ct_log(CT_LOG_WARN, "stream", "cannot subscribe to change notices: the live stream follows the store by resyncs every 5 s");
        h->sub = NULL;
    }
    /* Notices at or below what the store holds now are in any snapshot taken from here on. */
    store_reader *r = NULL;
    if (server__begin(s, &r) == CT_OK) {
        store_stats ss;
        store_reader_stats(r, &ss);
        uint64_t id = store_reader_meta(r, STORE_META_ID);
        server__end(s, r);
        pthread_mutex_lock(&h->mu);
        h->store_id = id;
        if (ss.applied_seq > h->last_seen) h->last_seen = ss.applied_seq;
        pthread_mutex_unlock(&h->mu);
    }
    if (pthread_create(&h->ticker, NULL, ticker, s) == 0) h->ticker_started = 1;
    if (pthread_create(&h->flusher, NULL, flusher, s) == 0) h->flusher_started = 1;
}

void stream__hub_stop(http_server *s)
{
    stream_hub *h = s->hub;
    if (!h) return;
    bus_unsubscribe(h->sub);
    h->sub = NULL;
    pthread_mutex_lock(&h->tick_mu);
    h->stopping = 1;
    pthread_cond_broadcast(&h->tick_cv);
    pthread_cond_broadcast(&h->flush_cv);
    pthread_mutex_unlock(&h->tick_mu);
    if (h->ticker_started) pthread_join(h->ticker, NULL);
    if (h->flusher_started) pthread_join(h->flusher, NULL);
    h->ticker_started = h->flusher_started = 0;
    pthread_mutex_lock(&h->mu);
    for (ws_client *c = h->clients; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        c->closing = 1;
        c->tr->wake(c);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&h->mu);
}

void stream__hub_free(http_server *s)
{
    stream_hub *h = s->hub;
    if (!h) return;
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->tick_mu);
    pthread_cond_destroy(&h->tick_cv);
    pthread_cond_destroy(&h->flush_cv);
    free(h);
    s->hub = NULL;
}

/* The trend's rows (store.h) as the API's samples. */
static int trend_row_json(void *ctx, const store_trend_row *row)
{
    json_t *o = json_object(), *counts = json_object();
    char buf[48];
    evt_time_format(row->t_ns / 1000000000LL, (int32_t)(row->t_ns % 1000000000LL), buf);
    json_object_set_new(o, "t", json_string(buf));
    for (int v = 0; v < FOLD_VIEW_COUNT; v++)
        json_object_set_new(counts, fold_view_name((fold_view)v), json_integer((json_int_t)row->counts[v]));
    json_object_set_new(o, "counts", counts);
    json_array_append_new(ctx, o);
    return 0;
}

int stream__trend(struct mg_connection *c, http_server *s)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_TREND, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    store_stats ss;
    store_reader_stats(r, &ss);
    int64_t clock = store_reader_trend_clock(r);
    json_t *samples = json_array();
    ct_status st = CT_OK;
    if (clock > 0) st = store_reader_trend(r, clock - TREND_ANSWER_S * 1000000000LL, trend_row_json, samples);
    server__end(s, r);
    if (st != CT_OK) {
        json_decref(samples);
        return server__error(c, s, SERVER_ROUTE_TREND, 500, "STORE_ERROR", NULL, "the trend could not be read");
    }
    json_t *body = json_object();
    json_object_set_new(body, "intervalSeconds", json_integer(STORE_TREND_BUCKET_S));
    json_object_set_new(body, "keepHours", json_integer(STORE_TREND_KEEP_BUCKETS * STORE_TREND_BUCKET_S / 3600));
    json_object_set_new(body, "appliedSeq", json_integer((json_int_t)ss.applied_seq));
    if (clock > 0) {
        char buf[48];
        evt_time_format(clock / 1000000000LL, (int32_t)(clock % 1000000000LL), buf);
        json_object_set_new(body, "clock", json_string(buf));
    }
    json_object_set_new(body, "samples", samples);
    return server__json(c, s, SERVER_ROUTE_TREND, 200, body);
}
