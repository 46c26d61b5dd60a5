/* A live-stream client, whatever carries it (civetweb or libwebsockets): its messages in, and each
 * sending turn composed into coalesced frames that the transport sends. */
#include "stream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void stream__frame_reset(stream_frame *f)
{
    f->buf.len = 0;
    static const char zero[STREAM_HEADROOM];
    ct_buf_add(&f->buf, zero, STREAM_HEADROOM);
    f->msgs = 0;
}

/* Hand the frame to the transport (nothing when it is empty); the frame is empty after. */
static int flush_frame(ws_client *c, stream_frame *f)
{
    if (!stream__frame_payload(f)) {
        f->msgs = 0; /* messages of no bytes, if any, leave with nothing */
        return 0;
    }
    size_t msgs = f->msgs;
    int rc = c->tr->emit(c, f);
    stream_hub *hub = c->srv->hub;
    __atomic_fetch_add(&hub->frames, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hub->messages, msgs, __ATOMIC_RELAXED);
    stream__frame_reset(f);
    return rc;
}

/* Append one message; send the frame first if it would grow past STREAM_FRAME_MAX. */
static int add_msg(ws_client *c, stream_frame *f, const char *text, size_t len)
{
    if (stream__frame_payload(f) && stream__frame_payload(f) + len + 1 > STREAM_FRAME_MAX) {
        if (flush_frame(c, f) != 0) return -1;
    }
    if (stream__frame_payload(f)) ct_buf_add(&f->buf, "\n", 1);
    ct_buf_add(&f->buf, text, len);
    f->msgs++;
    return 0;
}

typedef struct snap_ctx {
    json_t *items;
} snap_ctx;

static int snap_item(void *ctx, const Tower__V1__ViewItem *it)
{
    json_array_append_new(((snap_ctx *)ctx)->items, store_item_to_json(it, 0));
    return 0;
}

/* {"type":"snapshot",...} of one view as of the store now; *seq gets its applied sequence. */
static char *snapshot(ws_client *c, fold_view v, const char *wh, uint64_t *seq)
{
    http_server *s = c->srv;
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK) return NULL;
    store_stats ss;
    store_reader_stats(r, &ss);
    snap_ctx sc = {json_array()};
    store_query q = {.view = v, .warehouse = *wh ? wh : NULL, .limit = s->o.ws_snapshot_max ? s->o.ws_snapshot_max : 500};
    store_view_scan(r, &q, snap_item, &sc, NULL);
    /* The filtered count, as the REST view listing gives it. */
    uint64_t count = 0;
    store_view_count(r, &q, &count);
    server__end(s, r);
    json_t *m = json_object();
    json_object_set_new(m, "type", json_string("snapshot"));
    json_object_set_new(m, "view", json_string(fold_view_name(v)));
    json_object_set_new(m, "seq", json_integer((json_int_t)ss.applied_seq));
    json_object_set_new(m, "count", json_integer((json_int_t)count));
    json_object_set_new(m, "items", sc.items);
    char *txt = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    *seq = ss.applied_seq;
    return txt;
}

int64_t stream__ping_interval_ns(const ws_client *c)
{
    int ms = c->srv->o.ws_ping_ms > 0 ? c->srv->o.ws_ping_ms : 30000;
    return ms * 1000000LL;
}

void stream__heard_from(ws_client *c)
{
    c->unanswered = 0;
    c->next_ping_ns = ct_mono_ns() + stream__ping_interval_ns(c);
}

int stream__has_work(const ws_client *c)
{
    return c->flush || c->want_snapshot || c->errors.len || c->resync[0];
}

/* Under c->mu: how many of the queued batches a turn takes (see stream__take_pending). */
static size_t batches_to_take(const ws_client *c, size_t max)
{
    if (!max) return c->qn;
    size_t n = 0, bytes = 0;
    while (n < c->qn && (!n || bytes + c->q[n]->bytes <= max)) bytes += c->q[n++]->bytes;
    return n;
}

void stream__take_pending(ws_client *c, stream_pending *p, size_t max)
{
    if (p->qcap < c->qcap) {
        p->qcap = c->qcap;
        p->q = ct_realloc(p->q, p->qcap * sizeof *p->q);
    }
    p->qn = batches_to_take(c, max);
    if (p->qn) memcpy(p->q, c->q, p->qn * sizeof *p->q);
    for (size_t i = 0; i < p->qn; i++)
        if (p->q[i]->kind == HUB_DELTAS) c->q_deltas -= p->q[i]->n;
    c->qn -= p->qn;
    if (c->qn) memmove(c->q, c->q + p->qn, c->qn * sizeof *c->q);
    c->flush = c->qn > 0; /* what is left leaves in the next turn */
    p->snap = c->want_snapshot;
    p->views = c->views;
    c->want_snapshot = 0;
    memcpy(p->resync, c->resync, sizeof p->resync);
    c->resync[0] = 0;
    memcpy(p->wh, c->warehouse, sizeof p->wh);
    p->errs = c->errors;
    memset(&c->errors, 0, sizeof c->errors);
}

/* The client's error messages, then why its deltas were dropped (if they were). Frees p->errs. */
static int add_notes(ws_client *c, stream_pending *p, stream_frame *f)
{
    int failed = 0;
    if (p->errs.len) failed = add_msg(c, f, p->errs.data, p->errs.len - 1); /* without the last newline */
    free(p->errs.data);
    memset(&p->errs, 0, sizeof p->errs);
    if (failed || !p->resync[0]) return failed;
    json_t *m = json_pack("{s:s,s:s}", "type", "resync", "reason", p->resync);
    char *txt = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    failed = add_msg(c, f, txt, strlen(txt));
    free(txt);
    return failed;
}

/* Fresh snapshots of the views asked for, then the counts of every view as of now. */
static int add_snapshots(ws_client *c, const stream_pending *p, stream_frame *f)
{
    unsigned want = p->snap & p->views;
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        if (!(want & (1u << v))) continue;
        uint64_t seq = 0;
        char *txt = snapshot(c, (fold_view)v, p->wh, &seq);
        if (!txt) continue; /* no store yet: deltas will come */
        c->view_seq[v] = seq;
        int failed = add_msg(c, f, txt, strlen(txt));
        free(txt);
        if (failed) return -1;
    }
    if (!want) return 0;
    uint64_t seq;
    char *txt = stream__summary_text(c->srv, &seq);
    if (!txt) return 0;
    int failed = add_msg(c, f, txt, strlen(txt));
    c->summary_seq = seq;
    free(txt);
    return failed;
}

/* One queued batch: a summary newer than the last one sent, or the deltas of the views subscribed (and
 * of the warehouse, if one) that are newer than the view's snapshot. */
static int add_batch(ws_client *c, const stream_pending *p, stream_frame *f, const hub_batch *b)
{
    if (b->kind == HUB_SUMMARY) {
        if (b->seq < c->summary_seq) return 0;
        c->summary_seq = b->seq;
        return add_msg(c, f, b->text, b->len);
    }
    for (size_t k = 0; k < b->n; k++) {
        const hub_delta *d = &b->d[k];
        if (!(p->views & (1u << d->view)) || b->seq <= c->view_seq[d->view]) continue;
        if (p->wh[0] && (!d->warehouse || strcmp(d->warehouse, p->wh))) continue;
        if (add_msg(c, f, d->text, d->len) != 0) return -1;
    }
    return 0;
}

int stream__send_pending(ws_client *c, stream_pending *p, stream_frame *f)
{
    int failed = add_notes(c, p, f);
    if (!failed) failed = add_snapshots(c, p, f);
    for (size_t i = 0; i < p->qn; i++) {
        if (!failed) failed = add_batch(c, p, f, p->q[i]);
        stream__batch_unref(p->q[i]);
    }
    p->qn = 0;
    if (!failed) failed = flush_frame(c, f);
    return failed;
}

void stream__client_attach(ws_client *c, http_server *s, const stream_transport *tr)
{
    c->srv = s;
    c->tr = tr;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the keep-alive's waits */
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->idle = 1;
    c->next_ping_ns = ct_mono_ns() + stream__ping_interval_ns(c);
    __atomic_fetch_add(&s->hub->accepted, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(&s->hub->mu);
    c->next = s->hub->clients;
    c->prev = NULL;
    if (c->next) c->next->prev = c;
    s->hub->clients = c;
    c->linked = 1;
    s->hub->n_clients++;
    pthread_mutex_unlock(&s->hub->mu);
}

void stream__client_detach(ws_client *c)
{
    stream_hub *h = c->srv->hub;
    pthread_mutex_lock(&h->mu);
    if (c->linked) { /* O(1): 10,000 clients leaving at once must not walk the list 10,000 times */
        if (c->prev) c->prev->next = c->next;
        else h->clients = c->next;
        if (c->next) c->next->prev = c->prev;
        c->linked = 0;
        h->n_clients--;
    }
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    pthread_mutex_unlock(&c->mu);
}

void stream__client_destroy(ws_client *c)
{
    for (size_t i = 0; i < c->qn; i++) stream__batch_unref(c->q[i]);
    free(c->q);
    free(c->errors.data);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

static void client_error(ws_client *c, const stream_err *e)
{
    json_t *err = json_pack("{s:s,s:s}", "code", e->code, "message", e->message);
    if (e->field[0]) json_object_set_new(err, "field", json_string(e->field));
    json_t *m = json_pack("{s:s,s:o}", "type", "error", "error", err);
    char *txt = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(m);
    pthread_mutex_lock(&c->mu);
    if (c->errors.len < 64 * 1024) { /* a client flooding bad messages does not grow our memory */
        ct_buf_adds(&c->errors, txt);
        ct_buf_add(&c->errors, "\n", 1);
    }
    c->tr->wake(c);
    pthread_mutex_unlock(&c->mu);
    free(txt);
}

void stream__client_message(ws_client *c, int text, const char *data, size_t len)
{
    stream_req rq;
    stream_err e;
    if (!text) {
        e = (stream_err){.code = "INVALID_FRAME", .message = "only whole (unfragmented) text frames holding one JSON message are accepted"};
        client_error(c, &e);
        return;
    }
    if (stream_req_parse(data, len, &rq, &e) != 0) {
        client_error(c, &e);
        return;
    }
    pthread_mutex_lock(&c->mu);
    if (rq.type == STREAM_REQ_SUBSCRIBE) {
        /* A new subscription starts from fresh snapshots; what was queued for the old one is moot. */
        for (size_t i = 0; i < c->qn; i++) stream__batch_unref(c->q[i]);
        c->qn = 0;
        c->q_deltas = 0;
        c->views = rq.views;
        memcpy(c->warehouse, rq.warehouse, sizeof c->warehouse);
        c->want_snapshot = rq.views;
    } else {
        c->want_snapshot |= rq.views & c->views;
    }
    c->tr->wake(c);
    pthread_mutex_unlock(&c->mu);
}
