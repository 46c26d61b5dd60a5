/*
 * The message bus adapter: the only code that speaks NATS (connection, streams, publishing, consuming).
 *
 * Threads (read this first):
 * - bus_connect and bus_close run on one thread, with no other call on the handle in progress
 *   (bus_close waits for the watch and the background connector, not for callers).
 * - Any thread, at any time: bus_servers, bus_is_connected, bus_health_get, bus_watch_start,
 *   bus_stream_info, bus_notify, bus_dead_letter, bus_stream_get, bus_stream_read, bus_subscribe, bus_unsubscribe.
 * - Publishing is a batch: bus_publish_event / bus_publish_raw calls, then bus_publish_wait, which
 *   reports every publish made since the last wait. The handle keeps one batch: two threads must not
 *   interleave batches on one handle (each would collect the other's acks). Serialise them (the
 *   server's ingest holds a lock around a batch) or give each publisher its own connection.
 * - A subscription's callback runs on one library thread, never on the caller's.
 * - A bus_consumer belongs to the thread that opened it: open, fetch, free batches and close it there.
 */
#ifndef BUS_H
#define BUS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ct.h"
#include "evt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BUS_EVENTS_STREAM "TOWER_EVENTS"
#define BUS_DLQ_STREAM "TOWER_DLQ"
/** Events are published on tower.evt.<system>.<type>. */
#define BUS_EVENTS_SUBJECTS "tower.evt.>"
#define BUS_DLQ_SUBJECTS "tower.dlq.>"
/**
 * Change notices (core NATS, not stored), one or more messages per commit on this subject:
 * {"seq":S,"prev":P,"changes":[{"view":V,"op":"add|update|remove","item":{..}}],"more":bool}.
 * prev is the applied sequence before the commit, so a reader that missed a commit sees a gap;
 * "more" says that further parts of the same commit follow.
 */
#define BUS_CHANGES_SUBJECT "tower.changes"

typedef struct bus bus;

/**
 * How to reach NATS, and the stream limits. Zero values mean the defaults.
 *
 * bus_connect copies the struct shallowly: the strings, the urls array and *stop it points to are
 * borrowed, not copied, and must stay valid until bus_close.
 */
typedef struct bus_opts {
    const char *const *urls;  /**< server URLs, tried in turn (default nats://127.0.0.1:4222) */
    size_t n_urls;            /**< how many */
    const char *user;         /**< user name (with password) */
    const char *password;     /**< never logged */
    const char *token;        /**< auth token; never logged */
    const char *creds;        /**< NATS credentials file (JWT + nkey seed) */
    const char *tls_ca;       /**< CA certificate file: enables TLS and verifies the server */
    const char *name;         /**< connection name shown by the server (default "towerd") */
    const char *stream;       /**< events stream (default TOWER_EVENTS) */
    const char *dlq_stream;   /**< dead-letter stream (default TOWER_DLQ) */
    int replicas;             /**< stream replicas (default 1) */
    int64_t max_age_ns;       /**< stream max age (default 0: unlimited) */
    int64_t max_bytes;        /**< stream max bytes (default 0: unlimited) */
    int64_t dup_window_ns;    /**< JetStream duplicate window (default 2 min) */
    int wait_connect;         /**< when non-zero, keep retrying the first connection instead of failing */
    int connect_async;        /**< with wait_connect: return after the first attempt, connecting in the background */
    volatile sig_atomic_t *stop; /**< with wait_connect (not async): stop waiting when it becomes non-zero */
} bus_opts;

/**
 * \brief Connect to NATS (reconnecting on its own afterwards, for ever).
 * No call blocks for longer than one attempt per server (2 s each against a server that never
 * answers) unless wait_connect without connect_async asks to wait (until connected or *stop).
 * \return CT_OK (with connect_async, perhaps not connected yet: bus_is_connected tells);
 *         CT_BUS if no server could be reached or the credentials are refused (logged);
 *         CT_TIMEOUT when *stop ended the wait.
 */
ct_status bus_connect(bus **out, const bus_opts *o);

/** \brief The configured server URLs, comma-separated, for log lines (constant; any thread). */
const char *bus_servers(bus *b);

/**
 * \brief Close the connection, after flushing (not when NATS does not answer); NULL is a no-op.
 * Stops the watch and the background connector first: waits at most for one round trip of the
 * watch (2 s) or one connection attempt (2 s a server). Not concurrently with other calls on b.
 */
void bus_close(bus *b);

/** \brief 1 while connected (not reconnecting). Any thread. */
int bus_is_connected(bus *b);

/** \brief Create or update TOWER_EVENTS and TOWER_DLQ to the configured settings (idempotent). */
ct_status bus_ensure_streams(bus *b);

/** State of the events stream. */
typedef struct bus_stream_state {
    uint64_t first_seq;   /**< first sequence still stored */
    uint64_t last_seq;    /**< last sequence stored */
    uint64_t msgs;        /**< messages stored */
    int64_t created_ns;   /**< when the stream was created: a different value means it was recreated */
} bus_stream_state;

/**
 * \brief The events stream's state. CT_NOT_FOUND if it does not exist.
 * Without a watch this is a round trip (up to 10 s against a hung server). With a watch running
 * (bus_watch_start) it never waits on NATS: it answers from the watch's last answer, and fails at
 * once (CT_BUS not connected, CT_TIMEOUT no answer for BUS_WATCH_STALE_MS) when there is none.
 */
ct_status bus_stream_info(bus *b, bus_stream_state *out);
/** \brief bus_stream_info waiting at most timeout_ms (> 0) for the answer, and not at all while the connection
 * is down (CT_BUS); a failure is logged at debug level only: for a caller that must stay responsive and tries
 * again soon, such as a loop that also watches for a stop. */
ct_status bus_stream_info_wait(bus *b, bus_stream_state *out, int64_t timeout_ms);

/* ---- watching (for readers that must never wait on NATS) ------------------------------------- */

/** An answer of the watch older than this means NATS is unresponsive. */
#define BUS_WATCH_STALE_MS 4000

/** What the watch knows; a snapshot, consistent in itself. */
typedef struct bus_health {
    int watching;             /**< a watch runs on this bus */
    int connected;            /**< the connection is up (bus_is_connected) */
    int64_t since_answer_ms;  /**< since NATS last answered the watch's round trip (-1: never) */
    int stream_known;         /**< stream holds the events stream's state of that answer (0: no such stream) */
    bus_stream_state stream;  /**< the stream's state, when stream_known */
    char error[160];          /**< why the last round trip failed ("" when it was answered) */
} bus_health;

/**
 * \brief Start a thread that asks NATS for the events stream's state every period_ms, each
 * round trip bounded by timeout_ms (defaults 500 and 2000), and logs when NATS stops or resumes
 * answering. When connected, the first round trip is made before returning. Idempotent and
 * thread-safe: a second call does nothing. bus_close stops it.
 */
ct_status bus_watch_start(bus *b, int period_ms, int timeout_ms);

/** \brief The watch's snapshot (thread-safe, never waits on NATS); without a watch only connected is set. */
void bus_health_get(bus *b, bus_health *out);

/** \brief Delete the events stream (tests and operators' tooling). */
ct_status bus_stream_delete(bus *b);

/* ---- publishing -------------------------------------------------------- */

/** What became of one published message. */
typedef enum bus_pub_result {
    BUS_PUB_STORED,    /**< JetStream stored it (seq is set) */
    BUS_PUB_DUPLICATE, /**< JetStream had it already (same message id within the duplicate window) */
    BUS_PUB_FAILED     /**< not stored after every retry (error says why) */
} bus_pub_result;

typedef struct bus_pub_ack {
    bus_pub_result result;  /**< the outcome */
    uint64_t seq;           /**< stream sequence when stored */
    char error[256];        /**< why, when failed */
} bus_pub_ack;

/**
 * \brief The message id of an event: its eventId and a hash of its canonical
 * bytes, so that JetStream drops exact duplicates but lets a conflicting
 * duplicate (same eventId, other content) through to become a dead letter.
 * \param out at least EVT_MAX_EVENT_ID + 18 bytes.
 */
void bus_event_msg_id(const evt_event *e, const ct_buf *packed, char *out);

/**
 * \brief Publish one event asynchronously (protobuf, on tower.evt.<system>.<type>,
 * with its message id). tag identifies it in the acknowledgement.
 * Blocks only when too many publishes are in flight.
 */
ct_status bus_publish_event(bus *b, const evt_event *e, size_t tag);

/** \brief Publish raw bytes asynchronously on a subject (message id optional). */
ct_status bus_publish_raw(bus *b, const char *subject, const void *data, size_t len, const char *msg_id,
                          size_t tag);

/**
 * \brief Wait until every publish is acknowledged (retrying timeouts within the
 * duplicate window), or timeout_ms passes (those still pending are FAILED);
 * fn is called once per publish, from this thread, with its tag.
 */
ct_status bus_publish_wait(bus *b, int64_t timeout_ms, void (*fn)(void *ctx, size_t tag, const bus_pub_ack *ack),
                           void *ctx);

/** \brief Publish a core NATS message (not stored; change notices). */
ct_status bus_notify(bus *b, const char *subject, const void *data, size_t len);

typedef struct bus_sub bus_sub;

/**
 * \brief Subscribe to a core NATS subject; fn runs on one library thread, in arrival order,
 * with the message's bytes (valid during the call only). Before the first connection (connect_async)
 * the subscription is queued and made with the connection; it never waits for NATS to confirm.
 */
ct_status bus_subscribe(bus *b, const char *subject, void (*fn)(void *ctx, const char *data, size_t len), void *ctx,
                        bus_sub **out);

/**
 * \brief Unsubscribe; no callback runs after it returns (waits up to 5 s for NATS to confirm, 0.5 s
 * when it is known not to answer). NULL is a no-op.
 */
void bus_unsubscribe(bus_sub *s);

/**
 * \brief Publish a dead letter to TOWER_DLQ and wait for its ack: the raw bytes,
 * with headers saying where it came from and why.
 */
ct_status bus_dead_letter(bus *b, uint64_t seq, const char *code, const char *message, const void *raw, size_t len);

/* ---- consuming ----------------------------------------------------------- */

typedef struct bus_consumer bus_consumer;

/** One consumed message; data is borrowed until bus_batch_free. */
typedef struct bus_msg {
    uint64_t seq;         /**< stream sequence */
    const char *subject;  /**< where it was published */
    const void *data;     /**< the payload */
    size_t len;           /**< its length */
    uint64_t pending;     /**< messages of the stream still after this one for the consumer (its backlog) */
} bus_msg;

typedef struct bus_batch {
    bus_msg *v;    /**< the messages, in stream order */
    size_t n;      /**< how many */
    void *native;  /**< the library's list */
} bus_batch;

/**
 * \brief (Re)create the pull consumer `name` on the events stream so that it
 * delivers from start_seq on, and bind to it. An existing consumer of that
 * name is replaced: the store's checkpoint, not the consumer, is the truth.
 */
ct_status bus_consumer_open(bus_consumer **out, bus *b, const char *name, uint64_t start_seq);

/**
 * \brief Fetch up to max messages, waiting up to wait_ms for the first, then returning
 * as soon as no more arrive within a millisecond (the pull request stays outstanding and the
 * next call reads on).
 * \return CT_OK with at least one message; CT_TIMEOUT when there was none;
 *         CT_BUS when the connection or the consumer is gone (reopen it).
 */
ct_status bus_consumer_fetch(bus_consumer *c, size_t max, int64_t wait_ms, bus_batch *out);

/**
 * \brief One message of the events stream by its sequence (the relay's redrive).
 * \param out receives its payload (appended). \return CT_OK; CT_NOT_FOUND; CT_BUS.
 */
ct_status bus_stream_get(bus *b, uint64_t seq, ct_buf *out);

/**
 * \brief Messages from sequence from up to last_seq (at most max), read one by one from the stream itself
 * rather than through a consumer: slow, but answered by the stream's leader, which holds every message. The
 * projector's way on when its consumer delivers nothing although the stream is ahead (a consumer left stuck
 * by a NATS node's loss). Sequences the stream no longer has are left out. Each read waits at most wait_ms.
 * \return CT_OK with at least one message (free it with bus_batch_free); CT_NOT_FOUND when none of them is
 *         there; CT_BUS when NATS does not answer.
 */
ct_status bus_stream_read(bus *b, uint64_t from, uint64_t last_seq, size_t max, int64_t wait_ms, bus_batch *out);

/** \brief Release a batch. */
void bus_batch_free(bus_batch *b);

/** \brief Unbind (the consumer stays on the server until reopened or deleted); NULL is a no-op. */
void bus_consumer_close(bus_consumer *c);

#ifdef __cplusplus
}
#endif
#endif
