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
} hub_batch;

void stream__batch_unref(hub_batch *b);

/* One websocket client. Its own sender thread drains its queue; civetweb's worker reads its messages. */
typedef struct ws_client {
    http_server *srv;
    struct mg_connection *conn;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu: */
    hub_batch **q;
    size_t qn, qcap, q_deltas;
    unsigned views;                 /* subscribed views; 0 until the first subscribe */
    char warehouse[EVT_MAX_ID + 1]; /* "" for all */
    unsigned want_snapshot;         /* views to send a snapshot of */
    char resync[160];               /* non-empty: tell the client why its deltas were dropped */
    ct_buf errors;                  /* error messages to send, NDJSON */
    int closing;
    int idle;                       /* the sender waits for work */
    int flush;                      /* the flusher says: send what is queued */
    int64_t next_ping_ns;           /* monotonic: ping the client if it said nothing until then */
    int unanswered;                 /* pings sent since the client last said anything */
    /* the sender's own: */
    uint64_t view_seq[FOLD_VIEW_COUNT];  /* deltas at or below a view's snapshot seq are in the snapshot */
    uint64_t summary_seq;                /* the last summary sent: older ones still queued are skipped */
    struct ws_client *next;
} ws_client;

typedef struct stream_hub stream_hub;

/* The hub, part of the server (s->hub). */
struct stream_hub {
    pthread_mutex_t mu;
    ws_client *clients;        /* under mu */
    int n_clients;             /* under mu */
    uint64_t last_seen;        /* the last commit whose notice arrived (or that a resync covered) */
    int64_t last_seen_mono;    /* when last_seen last moved, or a notice last arrived */
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
    int64_t next_open_ns;      /* no store yet: when the ticker looks for it again (monotonic) */
    /* The trend: a count per view every TREND_INTERVAL, for TREND_SAMPLES samples (in memory). */
    struct trend_sample {
        int64_t t_ns;
        uint64_t counts[FOLD_VIEW_COUNT];
    } *trend;
    size_t trend_n, trend_head;
    pthread_mutex_t trend_mu;
    int64_t trend_last_mono;
    /* figures for /metrics */
    uint64_t accepted, rejected, drops, resyncs, frames, messages;
};

#define TREND_INTERVAL_S 10
#define TREND_SAMPLES 2160 /* six hours */

/* Start/stop the hub: subscribe to notices (when the server has a bus), start the ticker. */
void stream__hub_start(http_server *s);
/* Wake every client's sender (they stop), stop the ticker and the subscription. */
void stream__hub_stop(http_server *s);
void stream__hub_free(http_server *s);
/* Drop every client's queue and send them fresh snapshots (reason says why). Takes hub.mu. */
void stream__resync_all(http_server *s, const char *reason);
/* Queue a batch to a client (under client mu), dropping it to a resync if over its bound. */
void stream__enqueue(http_server *s, ws_client *c, hub_batch *b);

/* civetweb's websocket handlers. */
int stream__connect(const struct mg_connection *conn, void *cbdata);
void stream__ready(struct mg_connection *conn, void *cbdata);
int stream__data(struct mg_connection *conn, int flags, char *data, size_t len, void *cbdata);
void stream__close(const struct mg_connection *conn, void *cbdata);

/* A {"type":"summary",...} message as of the store now (caller frees; NULL without a store). */
char *stream__summary_text(http_server *s, uint64_t *seq);

/* GET /api/v1/trend */
int stream__trend(struct mg_connection *c, http_server *s);

#endif
