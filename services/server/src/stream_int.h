/* Internals of the live stream: the hub that turns change notices into per-client queues, and the clients. */
#ifndef STREAM_INT_H
#define STREAM_INT_H

#include <pthread.h>
#include <stdint.h>

#include "server_int.h"
#include "stream_proto.h"

/* What a queued batch carries. */
typedef enum hub_kind {
    HUB_DELTAS,  /* the deltas of one commit (or one part of it) */
    HUB_SUMMARY  /* a summary message */
} hub_kind;

/* One delta message, serialised once and shared by every client. */
typedef struct hub_delta {
    int view;
    char *warehouse;  /* the item's warehouse, NULL when it has none */
    char *text;       /* {"type":"delta",...} */
    size_t len;
} hub_delta;

/* A reference-counted batch of messages queued to many clients at once. */
typedef struct hub_batch {
    int refs;
    hub_kind kind;
    uint64_t seq;
    unsigned views;   /* views the deltas touch (bits) */
    size_t n;
    hub_delta *d;
    char *text;       /* HUB_SUMMARY: the message */
    size_t len;
    size_t bytes;     /* the messages' bytes, all of them (what a turn that takes it may send) */
} hub_batch;

void stream__batch_unref(hub_batch *b);

typedef struct ws_client ws_client;

/* A frame being built: STREAM_HEADROOM bytes (room for the transport's websocket header), then the
 * messages separated by newlines. Frames are cut at about STREAM_FRAME_MAX; a message is never split. */
#define STREAM_HEADROOM 16
#define STREAM_FRAME_MAX (256 * 1024)
typedef struct stream_frame {
    ct_buf buf;
    size_t msgs; /* messages in it */
} stream_frame;

/* How a client's frames leave, and how it is woken: civetweb (stream_ws.c: a sender thread per client)
 * or libwebsockets (stream_lws.c: a few service threads for every client). The hub only queues and wakes. */
typedef struct stream_transport {
    /* Under c->mu, from any thread: the client has work (flush, snapshot, errors, resync) or is closing.
     * Must not block, nor take the hub's lock. */
    void (*wake)(ws_client *c);
    /* Send (or queue for sending) a frame of payload f->buf[STREAM_HEADROOM..]; it may take f->buf (leaving
     * it zeroed). 0, or -1: the connection is finished. Called by the thread composing the client's turn. */
    int (*emit)(ws_client *c, stream_frame *f);
} stream_transport;

/* One websocket client, whatever its transport. */
struct ws_client {
    http_server *srv;
    const stream_transport *tr;
    struct mg_connection *conn;     /* civetweb's connection (NULL on libwebsockets) */
    pthread_t thread;               /* civetweb: its sender thread */
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;              /* civetweb: the sender waits on it */
    /* under mu: */
    hub_batch **q;
    size_t qn, qcap, q_deltas;
    unsigned views;                 /* subscribed views; 0 until the first subscribe */
    char warehouse[EVT_MAX_ID + 1]; /* "" for all */
    unsigned want_snapshot;         /* views to send a snapshot of */
    char resync[160];               /* non-empty: tell the client why its deltas were dropped */
    ct_buf errors;                  /* error messages to send, NDJSON */
    int closing;
    int idle;                       /* not in a sending turn: the flusher may wake it for queued changes */
    int flush;                      /* the flusher says: send what is queued */
    int64_t next_ping_ns;           /* monotonic: ping the client if it said nothing until then */
    int unanswered;                 /* pings sent since the client last said anything */
    /* the sending side's own: */
    uint64_t view_seq[FOLD_VIEW_COUNT];  /* deltas at or below a view's snapshot seq are in the snapshot */
    uint64_t summary_seq;                /* the last summary sent: older ones still queued are skipped */
    struct ws_client *next, *prev;       /* the hub's list, under the hub's mu */
    int linked;                          /* in the hub's list (under the hub's mu) */
};

/* What one turn sends, taken from the client under its lock and composed without it. */
typedef struct stream_pending {
    hub_batch **q;      /* the batches taken, a reference each; the array is reused from turn to turn */
    size_t qn, qcap;
    unsigned snap;      /* views asked for a fresh snapshot */
    unsigned views;     /* views subscribed */
    char resync[160];   /* non-empty: why the client's deltas were dropped */
    char wh[EVT_MAX_ID + 1]; /* the warehouse subscribed, "" for all */
    ct_buf errs;        /* error messages, NDJSON */
} stream_pending;

/* ---- stream_client.c: what both transports share ---- */

/* Keep-alive: a client silent for --ws-ping is pinged, and dropped after this many pings unanswered. */
#define WS_MAX_UNANSWERED 2

/* Set up a client (zeroed by the caller) and put it in the hub's list; the transport's wake may be called
 * from then on. */
void stream__client_attach(ws_client *c, http_server *s, const stream_transport *tr);
/* Take it out of the hub's list and mark it closing: no wake-up comes after this returns. */
void stream__client_detach(ws_client *c);
/* Release what the client holds (queue, errors, lock); not the struct itself. After detach. */
void stream__client_destroy(ws_client *c);
/* A message from the client: text = 1 for a whole text message; errors are queued to it. Any thread. */
void stream__client_message(ws_client *c, int text, const char *data, size_t len);
/* Under c->mu: the client said something (any frame). */
void stream__heard_from(ws_client *c);
int64_t stream__ping_interval_ns(const ws_client *c);
/* Under c->mu: whether a turn has something to send. */
int stream__has_work(const ws_client *c);
/* Under c->mu: take what is asked for and the queued batches into p (coalescing): all of them (max 0), or
 * from the oldest while they hold at most max bytes (one at least); the rest waits for the next turn, which
 * is then due at once. */
void stream__take_pending(ws_client *c, stream_pending *p, size_t max);
/* Compose what was taken into frames handed to the transport's emit (the last one too). Releases every
 * batch taken. -1 when the connection is finished. */
int stream__send_pending(ws_client *c, stream_pending *p, stream_frame *f);
void stream__frame_reset(stream_frame *f);
static inline size_t stream__frame_payload(const stream_frame *f) { return f->buf.len - STREAM_HEADROOM; }

typedef struct stream_hub stream_hub;

/* The hub, part of the server (s->hub). */
struct stream_hub {
    pthread_mutex_t mu;
    ws_client *clients;        /* under mu */
    int n_clients;             /* under mu */
    uint64_t last_seen;        /* the last commit whose notice arrived (or that a resync covered) */
    int64_t last_seen_mono;    /* when last_seen last moved, or a notice last arrived */
    uint64_t store_id;         /* the id of the store read (STORE_META_ID; 0: not known): only its notices count */
    uint64_t foreign;          /* notices of another store ignored (another replica's projector) */
    int64_t behind_mono;       /* when the store was first seen ahead of last_seen (0: it is not) */
    uint64_t cur_seq;          /* the commit whose parts are arriving */
    int cur_more, cur_skip;
    bus_sub *sub;
    pthread_t ticker;
    int ticker_started;
    pthread_t flusher;             /* wakes the senders with queued changes, at most once per coalescing interval */
    int flusher_started;
    pthread_mutex_t tick_mu;
    pthread_cond_t tick_cv;
    pthread_cond_t flush_cv;       /* under tick_mu: changes were queued (flush_due) */
    int flush_due;
    int stopping;
    uint64_t summary_seq;      /* the applied sequence of the last summary sent */
    int64_t summary_mono;      /* when it was sent (monotonic) */
    int64_t summary_wait_mono; /* under mu: since when a queued summary waits for a flush (0: none waits) */
    int64_t next_open_ns;      /* no store yet: when the ticker looks for it again (monotonic) */
    struct stream_lws *lws;    /* the libwebsockets listener (stream_lws.c), or NULL */
    /* figures for /metrics */
    uint64_t accepted, rejected, drops, resyncs, frames, messages;
};

/* GET /api/v1/trend answers the store's trend rows (store.h) of the last TREND_ANSWER_S before its clock. */
#define TREND_ANSWER_S (6 * 3600)

/* Start/stop the hub: subscribe to notices (when the server has a bus), start the ticker. */
void stream__hub_start(http_server *s);
/* Wake every client's sender (they stop), stop the ticker and the subscription. */
void stream__hub_stop(http_server *s);
void stream__hub_free(http_server *s);
/* Drop every client's queue and send them fresh snapshots (reason says why). Takes hub.mu. */
void stream__resync_all(http_server *s, const char *reason);
/* Queue a batch to a client (under client mu), dropping it to a resync if over its bound. */
void stream__enqueue(http_server *s, ws_client *c, hub_batch *b);

/* ---- stream_lws.c: the libwebsockets listener (--stream-listen), a few service threads ---- */
/* Start it (s->o.stream_listen set): CT_OK, CT_USAGE (bad address), CT_IO (cannot listen). */
ct_status stream__lws_start(http_server *s);
/* Stop its threads and close its connections (after stream__hub_stop, before stream__hub_free). */
void stream__lws_stop(http_server *s);
/* The Content-Security-Policy that lets the dashboard reach the stream's listener (malloc'd), or NULL:
 * SERVER_CSP does (no --stream-listen, or only a same-origin --stream-url). */
char *stream__csp(const http_server *s);

/* civetweb's websocket handlers. */
int stream__connect(const struct mg_connection *conn, void *cbdata);
void stream__ready(struct mg_connection *conn, void *cbdata);
int stream__data(struct mg_connection *conn, int flags, char *data, size_t len, void *cbdata);
void stream__close(const struct mg_connection *conn, void *cbdata);

/* A {"type":"summary",...} message as of the store now (caller frees; NULL without a store). */
char *stream__summary_text(http_server *s, uint64_t *seq);

/* GET /api/v1/trend: from the store's trend (store.h), any thread. */
int stream__trend(struct mg_connection *c, http_server *s);

#endif
