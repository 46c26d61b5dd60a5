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

#define SENDER_STACK (256 * 1024)

/* civetweb's emit: the websocket header goes into the frame's headroom, so that header and payload leave
 * in one write (mg_websocket_write makes two: two packets per frame with TCP_NODELAY). */
static int send_frame(ws_client *c, stream_frame *f)
{
    size_t n = stream__frame_payload(f);
    unsigned char h[10];
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
    char *start = f->buf.data + STREAM_HEADROOM - hl;
    memcpy(start, h, hl);
    /* The connection's lock keeps civetweb's own pings from landing inside the frame. */
    mg_lock_connection(c->conn);
    int rc = mg_write(c->conn, start, hl + n);
    mg_unlock_connection(c->conn);
    /* A write that timed out part way returns what it wrote: the frame is cut, and anything sent
     * after it would be read as its payload. Only a whole frame is a success; after a cut one the
     * connection is finished. */
    return rc == (int)(hl + n) ? 0 : -1;
}

/* civetweb's wake: the client's own sender thread waits on its condition variable. */
static void wake_sender(ws_client *c) { pthread_cond_signal(&c->cv); }

static const stream_transport civetweb_transport = {wake_sender, send_frame};

/* Keep-alive, ours rather than civetweb's (which answers pings itself, oversized ones included, and
 * never shows them to us): a client silent for --ws-ping (30 s) is pinged, and dropped after
 * WS_MAX_UNANSWERED pings without a word back. */
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

/* What the sender does next. */
typedef enum turn {
    TURN_SEND,   /* send what take_pending took */
    TURN_PING,   /* the client was quiet for a ping interval: ping it */
    TURN_SILENT, /* it answered none of WS_MAX_UNANSWERED pings: drop it */
    TURN_CLOSE   /* the connection is closing: stop */
} turn;

/* Wait for work or for the next ping, and take the work (into p) or count the ping. */
static turn next_turn(ws_client *c, stream_pending *p)
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
        c->next_ping_ns = ct_mono_ns() + stream__ping_interval_ns(c);
    } else {
        c->flush = 0;
        if (c->closing) t = TURN_CLOSE;
        else stream__take_pending(c, p, 0);
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

/* The client's sender thread: one turn per wake-up, until the connection closes or fails. */
static void *sender(void *arg)
{
    ws_client *c = arg;
    stream_frame f = {0};
    stream_pending p = {0};
    stream__frame_reset(&f);
    for (;;) {
        turn t = next_turn(c, &p);
        if (t == TURN_CLOSE) break;
        int failed = t == TURN_SEND ? stream__send_pending(c, &p, &f) : send_ping(c, t);
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
    c->conn = conn;
    mg_set_user_connection_data(conn, c);
    cap_send_buffer(conn);
    stream__client_attach(c, s, &civetweb_transport);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SENDER_STACK);
    c->started = pthread_create(&c->thread, &attr, sender, c) == 0;
    pthread_attr_destroy(&attr);
    if (!c->started) ct_log(CT_LOG_ERROR, "stream", "cannot start a sender thread: this client gets nothing");
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
    stream__heard_from(c);
    pthread_mutex_unlock(&c->mu);
    if (op == MG_WEBSOCKET_OPCODE_PING) return mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_PONG, data, len) > 0;
    if (op == MG_WEBSOCKET_OPCODE_PONG) return 1;
    stream__client_message(c, op == MG_WEBSOCKET_OPCODE_TEXT && (flags & 0x80), data, len);
    return 1;
}

void stream__close(const struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    ws_client *c = mg_get_user_connection_data(conn);
    if (!c) return;
    stream__client_detach(c);
    pthread_mutex_lock(&c->mu);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->started) pthread_join(c->thread, NULL);
    stream__client_destroy(c);
    mg_set_user_connection_data(conn, NULL);
    free(c);
}
