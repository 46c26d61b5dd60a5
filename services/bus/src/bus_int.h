/* Internals of the bus adapter shared by its files. */
#ifndef BUS_INT_H
#define BUS_INT_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>

#include "bus.h"

/* One asynchronous publish awaiting its ack. */
typedef struct bus__pending {
    natsMsg *msg;      /* the key: the library hands the same message back */
    size_t tag;
    int attempts;
    int done;
    bus_pub_ack ack;
} bus__pending;

/* Background reconnect interval, and that of the connector's first connection. */
#define BUS_RETRY_MS 250

struct bus {
    natsOptions *nopts;
    natsConnection *nc;     /* set once by the first successful attempt, then `live`: read via bus__nc */
    jsCtx *js;              /* likewise */
    bus_opts o;
    char *stream, *dlq_stream;
    atomic_int connected;
    atomic_uint conn_gen;   /* counts reconnections: server-side state (pull requests) is lost */
    atomic_int closing;     /* set by bus_close: the disconnection that follows is ours */
    int closed;             /* the closed callback ran: no callback follows it (under mu) */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bus__pending *pend;   /* publishes since the last bus_publish_wait */
    size_t n_pend, cap_pend, n_done;

    char *servers;          /* the URLs, comma-separated (constant after bus_connect) */

    /* The first connection, made in the background when it failed at once (bus_conn.c). */
    atomic_int live;           /* nc and js are set (stored with release after them) */
    atomic_int conn_stop;      /* the connector gives up (bus_close) */
    pthread_t connector;
    int connector_started;
    struct bus_sub *queued;    /* under mu: subscriptions asked for before the connection */

    /* The watch (bus_watch.c): its thread writes the snapshot under watch_mu, readers copy it. */
    pthread_mutex_t watch_mu;
    pthread_cond_t watch_cv;   /* wakes the thread early: stop */
    pthread_t watch_thread;
    atomic_int watching;       /* the thread was started (read by bus_stream_info on any thread) */
    int watch_claimed;         /* under watch_mu: bus_watch_start was called */
    int watch_stop;            /* under watch_mu */
    int period_ms, timeout_ms;
    int64_t answer_mono_ns;    /* under watch_mu: when NATS last answered (0: never) */
    int stream_known;          /* under watch_mu */
    bus_stream_state stream_state; /* under watch_mu */
    char watch_error[160];     /* under watch_mu */
    int unresponsive_logged;   /* the watch thread's own: "stopped answering" was logged */
};

/* A core-NATS subscription; sub is NULL while it waits in b->queued for the connection. */
struct bus_sub {
    bus *b;
    char *subject;
    natsSubscription *sub;
    void (*fn)(void *ctx, const char *data, size_t len);
    void *ctx;
    struct bus_sub *next;   /* in b->queued */
};

/* The connection once it exists (any thread), else NULL. */
static inline natsConnection *bus__nc(bus *b) { return atomic_load(&b->live) ? b->nc : NULL; }

/* One attempt at every server (cnats calls no callback when it fails); on success the JetStream
 * context, the queued subscriptions, and `live`. Any thread; one at a time. */
natsStatus bus__attempt(bus *b);
/* Retry bus__attempt every BUS_RETRY_MS in a thread, until connected or bus_close. */
ct_status bus__connector_start(bus *b);
void bus__connector_stop(bus *b);
/* Wait until live, or *b->o.stop (CT_TIMEOUT). */
ct_status bus__wait_live(bus *b);
/* Queue s for the connection when not live (1), else 0; unqueue: 1 if s was still queued (now removed). */
int bus__sub_queue(bus *b, struct bus_sub *s);
int bus__sub_unqueue(bus *b, struct bus_sub *s);
natsStatus bus__sub_open(bus *b, struct bus_sub *s);
void bus__on_sub_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

ct_status bus__status(natsStatus s, const char *what);
/* One stream-info round trip bounded by timeout_ms (0: the context's 10 s); logs nothing. */
natsStatus bus__stream_info_rt(bus *b, bus_stream_state *out, int64_t timeout_ms, jsErrCode *jerr);
/* bus_stream_info when a watch runs: from its snapshot. */
ct_status bus__watch_stream_info(bus *b, bus_stream_state *out);
void bus__watch_init(bus *b);
/* Not connected, or (with a watch) no answer for BUS_WATCH_STALE_MS: waiting on NATS is pointless. */
int bus__unresponsive(bus *b);
/* Stop and join the watch thread (before the connection goes); then free its lock. */
void bus__watch_stop(bus *b);
void bus__ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);

#endif
