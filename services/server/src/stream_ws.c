/* The live stream's websocket connections: civetweb's handlers, and one sender thread per client that
 * drains the client's queue into coalesced frames, so that no socket write ever blocks the hub. */
#include "stream_int.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Frames are cut at about this size; a message is never split. */
#define FRAME_MAX (256 * 1024)
#define SENDER_STACK (256 * 1024)

/* A frame being built: the buffer starts with room for the websocket header, so that header and
 * payload leave in one write (mg_websocket_write makes two: two packets per frame with TCP_NODELAY). */
#define HEADROOM 10

typedef struct frame {
    ct_buf buf;  /* HEADROOM bytes, then the messages separated by newlines */
    size_t msgs; /* messages in it */
} frame;

static void frame_reset(frame *f)
{
    f->buf.len = 0;
    ct_buf_add(&f->buf, "\0\0\0\0\0\0\0\0\0\0", HEADROOM);
    f->msgs = 0;
}

static size_t frame_payload(const frame *f) { return f->buf.len - HEADROOM; }

static int send_frame(ws_client *c, frame *f)
{
    size_t n = frame_payload(f);
    if (!n) {
        f->msgs = 0; /* messages of no bytes, if any, leave with nothing */
        return 0;
    }
    unsigned char h[HEADROOM];
    size_t hl;
    h[0] = 0x80 | MG_WEBSOCKET_OPCODE_TEXT; /* FIN, text; a server's frames are not masked */
    if (n < 126) {
        h[1] = (unsigned char)n;
        hl = 2;
    } else if (n < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(n >> 8);
        h[3] = (unsigned char)n;
        hl = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    char *start = f->buf.data + HEADROOM - hl;
    memcpy(start, h, hl);
    /* The connection's lock keeps civetweb's own pings from landing inside the frame. */
    mg_lock_connection(c->conn);
    int rc = mg_write(c->conn, start, hl + n);
    mg_unlock_connection(c->conn);
    stream_hub *hub = c->srv->hub;
    __atomic_fetch_add(&hub->frames, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&hub->messages, f->msgs, __ATOMIC_RELAXED);
    /* A write that timed out part way returns what it wrote: the frame is cut, and anything sent
     * after it would be read as its payload. Only a whole frame is a success; after a cut one the
     * connection is finished. */
    int whole = rc == (int)(hl + n);
    frame_reset(f);
    return whole ? 0 : -1;
}

/* Append one message; send the frame first if it would grow past FRAME_MAX. */
static int add_msg(ws_client *c, frame *f, const char *text, size_t len)
{
    if (frame_payload(f) && frame_payload(f) + len + 1 > FRAME_MAX) {
        if (send_frame(c, f) != 0) return -1;
    }
    if (frame_payload(f)) ct_buf_add(&f->buf, "\n", 1);
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

/* Keep-alive, ours rather than civetweb's (which answers pings itself, oversized ones included, and
 * never shows them to us): a client silent for --ws-ping (30 s) is pinged, and dropped after
 * WS_MAX_UNANSWERED pings without a word back. */
#define WS_MAX_UNANSWERED 2

static int64_t ping_interval_ns(const ws_client *c)
{
    int ms = c->srv->o.ws_ping_ms > 0 ? c->srv->o.ws_ping_ms : 30000;
    return ms * 1000000LL;
}

/* Under c->mu: the client said something (any frame). */
static void heard_from(ws_client *c)
{
    c->unanswered = 0;
    c->next_ping_ns = ct_mono_ns() + ping_interval_ns(c);
}

/* Under c->mu: wait for work or for the next ping; 1 when a ping is due, 0 when there is work. */
static int wait_work(ws_client *c)
{
    while (!c->closing && !c->flush && !c->want_snapshot && !c->errors.len) {
        int64_t now = ct_mono_ns();
        if (now >= c->next_ping_ns) return 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t until = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + (c->next_ping_ns - now);
        ts.tv_sec = (time_t)(until / 1000000000LL);
        ts.tv_nsec = (long)(until % 1000000000LL);
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    return 0;
}

/* The client's connection is over (gone, stuck, or silent): civetweb's reader then fails and runs
 * the close handler; the client reconnects and starts from snapshots. */
static void drop(ws_client *c)
{
    int fd = server__socket_of(c->conn);
    if (fd >= 0) shutdown(fd, SHUT_RDWR);
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    for (size_t i = 0; i < c->qn; i++) stream__batch_unref(c->q[i]);
    c->qn = 0;
    pthread_mutex_unlock(&c->mu);
}

/* What one turn of the sender sends, taken from the client under its lock and sent without it. */
typedef struct pending {
    hub_batch **q;      /* the batches taken, a reference each; the array is reused from turn to turn */
    size_t qn, qcap;    /* batches in q, and its room */
    unsigned snap;      /* views asked for a fresh snapshot */
    unsigned views;     /* views subscribed */
    char resync[sizeof ((ws_client *)0)->resync]; /* non-empty: why the client's deltas were dropped */
    char wh[sizeof ((ws_client *)0)->warehouse];  /* the warehouse subscribed, "" for all */
    ct_buf errs;        /* error messages, NDJSON */
} pending;

/* Under c->mu: take everything queued and asked for. Taking it all at once is what coalesces deltas
 * into few frames. */
static void take_pending(ws_client *c, pending *p)
{
    if (p->qcap < c->qcap) {
        p->qcap = c->qcap;
        p->q = ct_realloc(p->q, p->qcap * sizeof *p->q);
    }
    p->qn = c->qn;
    if (p->qn) memcpy(p->q, c->q, p->qn * sizeof *p->q);
    c->qn = 0;
    c->q_deltas = 0;
    p->snap = c->want_snapshot;
    p->views = c->views;
    c->want_snapshot = 0;
    memcpy(p->resync, c->resync, sizeof p->resync);
    c->resync[0] = 0;
    memcpy(p->wh, c->warehouse, sizeof p->wh);
    p->errs = c->errors;
    memset(&c->errors, 0, sizeof c->errors);
}

/* What the sender does next. */
typedef enum turn {
    TURN_SEND,   /* send what take_pending took */
    TURN_PING,   /* the client was quiet for a ping interval: ping it */
    TURN_SILENT, /* it answered none of WS_MAX_UNANSWERED pings: drop it */
    TURN_CLOSE   /* the connection is closing: stop */
} turn;

/* Wait for work or for the next ping, and take the work (into p) or count the ping. */
static turn next_turn(ws_client *c, pending *p)
{
    turn t = TURN_SEND;
    pthread_mutex_lock(&c->mu);
    /* Changes queued meanwhile do not wake this thread: the hub's flusher does, at most once per
     * coalescing interval, so that they leave in one frame (stream_hub.c). */
    c->idle = 1;
    int ping = wait_work(c);
    c->idle = 0;
    if (ping && !c->closing) {
        t = c->unanswered >= WS_MAX_UNANSWERED ? TURN_SILENT : TURN_PING;
        c->unanswered++;
        c->next_ping_ns = ct_mono_ns() + ping_interval_ns(c);
    } else {
        c->flush = 0;
        if (c->closing) t = TURN_CLOSE;
        else take_pending(c, p);
    }
    pthread_mutex_unlock(&c->mu);
    return t;
}

/* -1 when the client is to be dropped: silent, or the ping cannot be written. */
static int send_ping(ws_client *c, turn t)
{
    if (t == TURN_SILENT) {
        ct_log(CT_LOG_INFO, "stream", "dropping a live-stream client that answers no ping");
        return -1;
    }
    return mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_PING, "", 0) <= 0 ? -1 : 0;
}

/* The client's error messages, then why its deltas were dropped (if they were). Frees p->errs. */
static int add_notes(ws_client *c, pending *p, frame *f)
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
static int add_snapshots(ws_client *c, const pending *p, frame *f)
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
static int add_batch(ws_client *c, const pending *p, frame *f, const hub_batch *b)
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

/* Everything taken, in frames of up to FRAME_MAX, the last one sent too. Every batch taken is released,
 * whatever happens. -1 when the connection is finished: the peer is gone, or stuck past the write
 * timeout with a frame cut. */
static int send_pending(ws_client *c, pending *p, frame *f)
{
    int failed = add_notes(c, p, f);
    if (!failed) failed = add_snapshots(c, p, f);
    for (size_t i = 0; i < p->qn; i++) {
        if (!failed) failed = add_batch(c, p, f, p->q[i]);
        stream__batch_unref(p->q[i]);
    }
    p->qn = 0;
    if (!failed) failed = send_frame(c, f);
    return failed;
}

/* The client's sender thread: one turn per wake-up, until the connection closes or fails. */
static void *sender(void *arg)
{
    ws_client *c = arg;
    frame f = {0};
    pending p = {0};
    frame_reset(&f);
    for (;;) {
        turn t = next_turn(c, &p);
        if (t == TURN_CLOSE) break;
        int failed = t == TURN_SEND ? send_pending(c, &p, &f) : send_ping(c, t);
        if (failed) {
            drop(c);
            break;
        }
    }
    free(p.q);
    free(f.buf.data);
    return NULL;
}

#define SOCKET_SNDBUF (128 * 1024)

/* Cap the kernel's send buffer of this client's socket. Otherwise Linux grows it to 4 MB for a
 * client that stopped reading, and the client's queue (what we bound) only starts to fill once
 * those megabytes are buffered. */
static void cap_send_buffer(const struct mg_connection *conn)
{
    int fd = server__socket_of(conn);
    if (fd < 0) return;
    int v = SOCKET_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
}

/* Refuse the upgrade beyond the connection limit or without the viewer role. */
int stream__connect(const struct mg_connection *conn, void *cbdata)
{
    http_server *s = cbdata;
    stream_hub *h = s->hub;
    unsigned max = s->o.ws_max_clients ? s->o.ws_max_clients : 256;
    if (!server__allowed((struct mg_connection *)conn, s, HTTP_ROLE_VIEWER)) {
        __atomic_fetch_add(&h->rejected, 1, __ATOMIC_RELAXED);
        return 1;
    }
    pthread_mutex_lock(&h->mu);
    int full = h->stopping || h->n_clients >= (int)max;
    pthread_mutex_unlock(&h->mu);
    if (full) {
        __atomic_fetch_add(&h->rejected, 1, __ATOMIC_RELAXED);
        ct_log(CT_LOG_WARN, "stream", "refusing a live-stream client: %u connections is the limit (--ws-max-clients)", max);
        return 1;
    }
    return 0;
}

void stream__ready(struct mg_connection *conn, void *cbdata)
{
    http_server *s = cbdata;
    /* The client exists from here on: civetweb calls the close handler only after the ready one
     * (a handshake that fails calls neither), so nothing made here can leak. A burst of handshakes
     * may pass the limit by a few; the worker threads bound them anyway. */
    ws_client *c = ct_calloc(1, sizeof *c);
    c->srv = s;
    c->conn = conn;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the keep-alive's waits */
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->next_ping_ns = ct_mono_ns() + ping_interval_ns(c);
    mg_set_user_connection_data(conn, c);
    __atomic_fetch_add(&s->hub->accepted, 1, __ATOMIC_RELAXED);
    cap_send_buffer(conn);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SENDER_STACK);
    c->started = pthread_create(&c->thread, &attr, sender, c) == 0;
    pthread_attr_destroy(&attr);
    if (!c->started) ct_log(CT_LOG_ERROR, "stream", "cannot start a sender thread: this client gets nothing");
    pthread_mutex_lock(&s->hub->mu);
    c->next = s->hub->clients;
    s->hub->clients = c;
    s->hub->n_clients++;
    pthread_mutex_unlock(&s->hub->mu);
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
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    free(txt);
}

/* A frame RFC 6455 forbids: the connection ends with close code 1002 (protocol error). */
static int protocol_error(struct mg_connection *conn, const char *why)
{
    char buf[125];
    size_t n = strlen(why) < sizeof buf - 2 ? strlen(why) : sizeof buf - 2;
    buf[0] = (char)(1002 >> 8);
    buf[1] = (char)(1002 & 0xff);
    memcpy(buf + 2, why, n);
    mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, buf, n + 2);
    return 0; /* civetweb closes the connection */
}

int stream__data(struct mg_connection *conn, int flags, char *data, size_t len, void *cbdata)
{
    (void)cbdata;
    ws_client *c = mg_get_user_connection_data(conn);
    int op = flags & 0xf;
    /* civetweb hands over the first byte of the frame: FIN, the reserved bits, the opcode. No
     * extension is negotiated, so a reserved bit is an error; a control frame is at most 125 bytes
     * and never fragmented. (civetweb accepts unmasked client frames and does not say so.) */
    if (flags & 0x70) return protocol_error(conn, "reserved bits set, and no extension was negotiated");
    if ((op & 0x8) && (len > 125 || !(flags & 0x80)))
        return protocol_error(conn, "a control frame is at most 125 bytes and never fragmented");
    if ((op > MG_WEBSOCKET_OPCODE_BINARY && op < MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) || op > MG_WEBSOCKET_OPCODE_PONG)
        return protocol_error(conn, "reserved opcode");
    if (!c || op == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) return 0;
    pthread_mutex_lock(&c->mu);
    heard_from(c);
    pthread_mutex_unlock(&c->mu);
    if (op == MG_WEBSOCKET_OPCODE_PING) return mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len) > 0;
    if (op == MG_WEBSOCKET_OPCODE_PONG) return 1;
    stream_req rq;
    stream_err e;
    if (op != MG_WEBSOCKET_OPCODE_TEXT || !(flags & 0x80)) {
        e = (stream_err){.code = "INVALID_FRAME", .message = "only whole (unfragmented) text frames holding one JSON message are accepted"};
        client_error(c, &e);
        return 1;
    }
    if (stream_req_parse(data, len, &rq, &e) != 0) {
        client_error(c, &e);
        return 1;
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
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return 1;
}

void stream__close(const struct mg_connection *conn, void *cbdata)
{
    http_server *s = cbdata;
    ws_client *c = mg_get_user_connection_data(conn);
    if (!c) return;
    stream_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    for (ws_client **p = &h->clients; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    h->n_clients--;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_lock(&c->mu);
    c->closing = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started) pthread_join(c->thread, NULL);
    for (size_t i = 0; i < c->qn; i++) stream__batch_unref(c->q[i]);
    free(c->q);
    free(c->errors.data);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    mg_set_user_connection_data(conn, NULL);
    free(c);
}
