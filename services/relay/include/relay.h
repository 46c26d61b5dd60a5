/* The outbound relay (docs/outbound.md): business events from the events stream delivered to destinations
 * (webhooks, Slack-compatible incoming webhooks, email over SMTP), each from its own consumer and checkpoint,
 * signed in the Standard Webhooks form, with retries, Retry-After, a circuit breaker and delivery dead letters. */
#ifndef RELAY_H
#define RELAY_H

#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bus.h"
#include "ct.h"
#include "evt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- destinations (relay_conf.c, pure but for reading the files) ------------------------------------ */

typedef enum relay_kind {
    RELAY_WEBHOOK, /**< POST of the JSON payload (docs/outbound.md), signed when a secret is set */
    RELAY_SLACK,   /**< POST of {"text": "..."} to a Slack-compatible incoming webhook */
    RELAY_EMAIL,   /**< one email per event over SMTP (libcurl): relay_email_message */
    RELAY_ROUTE_PLANNER /**< route requests for ready, unblocked shipments (readiness orchestration, relay_ready.c) */
} relay_kind;

/** One destination: a [destination NAME] section of the relay file. */
typedef struct relay_dest {
    char *name;               /**< 1-64 chars of [A-Za-z0-9_-] (it names the consumer and the state files) */
    char *url;                /**< http:// or https://; kind = email: smtp:// or smtps:// (no credentials in it) */
    relay_kind kind;          /**< kind = webhook (default) | slack | email */
    unsigned char *secret;    /**< the Standard Webhooks key (whsec_ + base64, decoded), or NULL: unsigned */
    size_t secret_len;
    char **events;            /**< the event types it receives (JSON names, e.g. "routeDispatched"); "*": all */
    size_t n_events;
    char **warehouses;        /**< only events of these warehouses (none: any) */
    size_t n_warehouses;
    char **carriers;          /**< only events of these carriers (none: any) */
    size_t n_carriers;
    int64_t timeout_ns;       /**< timeout = 5s: one attempt, connect included */
    int max_attempts;         /**< max_attempts = 8: then the delivery is a dead letter */
    int64_t backoff_min_ns;   /**< backoff_min = 1s: the first retry's delay bound */
    int64_t backoff_max_ns;   /**< backoff_max = 5m: no delay is longer (Retry-After included) */
    int breaker_failures;     /**< breaker_failures = 5: consecutive failed attempts that open the breaker */
    int batch;                /**< batch = 1: kind = webhook only: up to this many events per request (1..RELAY_BATCH_MAX) */
    int lanes;                /**< lanes = 8 (kind = webhook or slack event destinations with batch = 1; else 1):
                                   requests in flight at once, events spread by entity (1..RELAY_LANES_MAX) */
    int64_t breaker_cooldown_ns; /**< breaker_cooldown = 30s: open this long, then one half-open probe */
    /* kind = email only (the keys are refused on other kinds, as secret_file and secret_env are on email): */
    char *mail_from;          /**< from = the sender (envelope and From:), local@domain */
    char **mail_to;           /**< to = 1-20 recipients (envelope and To:), local@domain each */
    size_t n_mail_to;
    char *subject_prefix;     /**< subject_prefix = "[tower]": 1-64 printable ASCII characters */
    char *smtp_user;          /**< from the variable named by username_env, or NULL (never logged) */
    char *smtp_password;      /**< from the variable named by password_env, or NULL (never logged) */
    /* exceptions = ...: an exception destination (relay_exc.c; no events key): */
    unsigned exceptions;      /**< the changes it receives: RELAY_EXC_* bits (0: an event destination) */
    char **views;             /**< only exceptions of these views (none: any) */
    size_t n_views;
    char **customers;         /**< only exceptions of orders created for these customers (none: any) */
    size_t n_customers;
} relay_dest;

#define RELAY_BATCH_MAX 500 /**< the largest batch = N */
#define RELAY_LANES_MAX 64  /**< the most lanes = N */
#define RELAY_LANES_DEFAULT 8 /**< lanes when not given (where lanes apply) */

typedef struct relay_conf {
    relay_dest *v;
    size_t n;
} relay_conf;

/**
 * \brief Read a relay file: INI, one [destination NAME] section per destination, keys url, kind, secret_file
 * (a file holding whsec_...), secret_env (an environment variable holding it), events (comma-separated types
 * or *), warehouses, carriers, timeout, max_attempts, backoff_min, backoff_max, breaker_failures,
 * breaker_cooldown, batch, lanes (defaults to 1 where lanes do not apply); exceptions, views, customers; for
 * kind = email also from, to, subject_prefix, username_env, password_env. Durations as
 * 500ms, 5s, 2m. Unknown keys and sections are errors, and so are keys of another kind.
 * \param err receives "FILE:LINE: the problem" on failure (never the secret).
 * \return CT_OK; CT_IO if a file cannot be read; CT_INVALID for a bad file.
 */
ct_status relay_conf_load(const char *path, relay_conf *out, char *err, size_t errcap);
void relay_conf_free(relay_conf *c);

/* ---- exception changes (relay_exc_diff.c, pure; docs/outbound.md "Exception changes") ----------------- */

/** The changes of an exception a destination may receive (exceptions = opened, breached, ...). */
enum {
    RELAY_EXC_OPENED = 1,       /**< a new exceptionId in the entity's open items (also a reopen) */
    RELAY_EXC_ACKNOWLEDGED = 2, /**< an open exception got its first acknowledgement or assignment */
    RELAY_EXC_BREACHED = 4,     /**< an open exception's slaDueAt is at or before the event's occurredAt */
    RELAY_EXC_RESOLVED = 8      /**< the exceptionId left the open items (a person resolved it, or it cleared) */
};

/** \brief "opened", "acknowledged", "breached", "resolved" for one bit; NULL for another value. */
const char *relay_exc_change_name(unsigned bit);
/** \brief The bit of a change name; 0 if unknown. */
unsigned relay_exc_change_bit(const char *name);

/**
 * \brief Diff what a destination last knew of one entity (an order or a shipment) against its open items now.
 * \param known {"open": {exceptionId: {"item", "ack", "breached", "n"}}, "gone": {exceptionId: n}} or NULL
 *        (nothing known); borrowed.
 * \param current the entity's open items now (store_item_to_json shape, each with "exceptionId" and "view");
 *        borrowed. Items without an exceptionId are ignored.
 * \param at_ns the instant a slaDueAt is judged at (the event's occurredAt).
 * \param changes receives, appended in order, {"change", "exceptionId", "n" (1, or the how-many-th opening of
 *        a reopened exception), "item"}: per current item opened, acknowledged, breached; then resolved for each
 *        known one that left (with its item as last known).
 * \return the new knowledge (a new reference; "gone" keeps at most 32 ids).
 */
json_t *relay_exc_diff(const json_t *known, const json_t *current, int64_t at_ns, json_t *changes);

/** \brief Whether destination d wants a change (relay_exc_diff's shape) of an exception of an order created for
 * customer (NULL: unknown): its exceptions, views, warehouses, carriers and customers filters. */
int relay_exc_wants(const relay_dest *d, const json_t *change, const char *customer);

/** \brief The webhook-id of a change: "<exceptionId>.<change>[-<n> when n > 1].<destination>". */
void relay_exc_id(const relay_dest *d, const json_t *change, char *out, size_t cap);

/** \brief 1 if the destination receives this event (its type, warehouse and carrier filters). */
int relay_dest_wants(const relay_dest *d, const evt_event *e);

/**
 * \brief The email a kind = email destination sends for an event (relay_payload.c, pure): RFC 5322 with CRLF
 * lines: Date (now_s), From, To, Subject "<prefix> <type> <shipment|order|route|event> <id>", Message-ID
 * "<eventId.NAME@tower>" (a ':' written '=', a leading or repeated '.' written '~': the same for every
 * attempt, so receivers can de-duplicate), MIME text/plain; charset=utf-8, quoted-printable: the event's
 * facts, then its canonical JSON on one (soft-wrapped) line.
 */
void relay_email_message(const relay_dest *d, const evt_event *e, uint64_t seq, int64_t now_s, ct_buf *out);

/* ---- delivery lanes (relay_lanes.c, pure; docs/outbound.md "Lanes") ----------------------------------- */

#define RELAY_LANE_DEPTH 32 /**< events waiting on one lane at most (the window is lanes * this) */
#define RELAY_LANE_KEYS 16  /**< the most entities one event is ordered by */

/**
 * \brief The entities an event is ordered by, as 64-bit hashes: its order first, then its shipments
 * (relay_ready_ids: the envelope's, route stops and lists) and its route; an event naming none, its event id.
 * keys[0] chooses its lane. \return how many (1..RELAY_LANE_KEYS), or 0 for an event naming more entities
 * than fit: it is then ordered after (and before) every event around it, a barrier.
 */
size_t relay_lane_keys(const evt_event *e, uint64_t keys[RELAY_LANE_KEYS]);

/** One event of the window: delivered, given up, or not yet. */
typedef struct relay_window_item {
    uint64_t seq;                    /**< its stream sequence */
    uint64_t upto;                   /**< the last sequence looked at before the next item (skipped ones) */
    uint64_t keys[RELAY_LANE_KEYS];  /**< relay_lane_keys */
    uint8_t nkeys;                   /**< 0: a barrier (shares an entity with every event) */
    uint8_t done;                    /**< delivered or a dead letter */
    uint16_t lane;
} relay_window_item;

/**
 * The events of a destination between its checkpoint and what it has read, in stream order, each on its
 * lane. The checkpoint only moves over a prefix of done events: a crash sends again at most what was in
 * flight or waiting, never skips one.
 */
typedef struct relay_window {
    relay_window_item *v;  /**< a ring of cap items (owned) */
    size_t cap, head, n;   /**< the ring: items head .. head + n - 1 (mod cap) */
    uint64_t checkpoint;   /**< every sequence up to it is done */
    unsigned lanes;
    unsigned queued[RELAY_LANES_MAX]; /**< not-done items per lane */
} relay_window;

/** \brief An empty window of lanes (1..RELAY_LANES_MAX) * RELAY_LANE_DEPTH items after checkpoint. */
void relay_window_init(relay_window *w, unsigned lanes, uint64_t checkpoint);
void relay_window_free(relay_window *w);
/**
 * \brief The lane of an event with these keys (nkeys 0: a barrier): the lane of the not-done events sharing
 * one of its keys (so that each entity's events go through one lane, in stream order), else keys[0] mod
 * lanes (a barrier with none: lane 0).
 * \return the lane, or -1: it must wait (its entities are waiting on two lanes, its lane is full, or the
 * window is).
 */
int relay_window_pick(const relay_window *w, const uint64_t *keys, size_t nkeys);
/** \brief Append the event at seq (after every item) on lane (relay_window_pick's). \return its slot, valid
 * until relay_window_advance passes it. */
size_t relay_window_add(relay_window *w, uint64_t seq, const uint64_t *keys, size_t nkeys, unsigned lane);
/** \brief A sequence the destination does not take (after every item): done at once. */
void relay_window_skip(relay_window *w, uint64_t seq);
/** \brief The event at slot is done (delivered, or a dead letter). */
void relay_window_done(relay_window *w, size_t slot);
/** \brief Drop the done events at the head. \return the checkpoint: the last sequence up to which every
 * event is done. */
uint64_t relay_window_advance(relay_window *w);

/* ---- readiness orchestration (relay_ready.c, pure) ---------------------------------------------------- */

#define RELAY_ID_MAX 64 /**< the contract's longest order, shipment or warehouse id */

/** One shipment as a kind = route_planner destination sees it: a fold of the few event types readiness needs. */
typedef struct relay_ship {
    uint8_t ready;                          /**< a shipmentReady seen */
    uint8_t blocked;                        /**< the latest shipmentBlocked/shipmentUnblocked (by occurredAt) is a
                                                 block for DOCK_CAPACITY or CARRIER */
    uint8_t requested;                      /**< a routeRequested names it (ours once the planner took it, or any) */
    uint8_t routed;                         /**< a routePlanned stop, shipmentConfirmed or deliveryCompleted names it */
    uint8_t queued;                         /**< a request for it waits in the destination's queue */
    uint8_t refused;                        /**< the planner refused its request (not asked again) */
    int64_t block_at_ns;                    /**< occurredAt of the latest block/unblock applied (0: none) */
    char order_id[RELAY_ID_MAX + 1];        /**< its order ("" until an event links it) */
    char warehouse_id[RELAY_ID_MAX + 1];    /**< from shipmentReady ("" when not given) */
} relay_ship;

/** \brief The shipments an event concerns for readiness: the envelope's shipmentId, routePlanned stops,
 * routeRequested and routeFailed lists. \param ids receives borrowed pointers into e (at most cap).
 * \return how many. */
size_t relay_ready_ids(const evt_event *e, const char **ids, size_t cap);

/** \brief Fold an event into the state of one shipment it concerns (relay_ready_ids). \return 1 if s changed. */
int relay_ready_apply(relay_ship *s, const evt_event *e);

/** \brief Whether a route request is due for the shipment now: ready, not blocked, not routed, not requested,
 * queued or refused, and its order not cancelled. */
int relay_ready_due(const relay_ship *s, int order_cancelled);

/** \brief The request id (= the routeRequested eventId, the webhook-id's left part) of a shipment set:
 * "rr-" + 24 hex digits of SHA-256 over the sorted ids joined by newlines: the same set, the same id. */
void relay_request_id(const char *const *ids, size_t n, char out[32]);

/**
 * \brief The routeRequested event of a request (canonical JSON object, new reference): eventId from the set,
 * source {"system": "tms", "instance": instance}, occurredAt at_ns, shipmentIds, warehouseId when known.
 */
json_t *relay_request_event(const char *const *ids, size_t n, const char *warehouse, int64_t at_ns,
                            const char *instance);

/* ---- signing (relay_sign.c, pure) --------------------------------------------------------------------- */

/** \brief Decode a Standard Webhooks secret ("whsec_" + base64). \return 0 with *out (malloc'd), or -1. */
int relay_secret_decode(const char *text, unsigned char **out, size_t *len);

/** \brief The webhook-signature header value: "v1," + base64(HMAC-SHA256(key, id + "." + ts + "." + body)). */
void relay_sign(const unsigned char *key, size_t key_len, const char *id, int64_t ts, const char *body, size_t body_len,
                char out[64]);

/* ---- retries and the breaker (relay_policy.c, pure) --------------------------------------------------- */

/** \brief The delay before retry number `attempt` (1 = the first retry): full jitter in [min, min(max,
 * min * 2^(attempt-1))], drawn from *rng (splitmix64 state). */
int64_t relay_backoff_ns(int attempt, int64_t min_ns, int64_t max_ns, uint64_t *rng);

/** \brief A Retry-After header (delay-seconds or an HTTP-date) as a delay from now_s. \return 0, or -1. */
int relay_retry_after(const char *value, int64_t now_s, int64_t *delay_ns);

typedef enum relay_breaker_state { RELAY_BREAKER_CLOSED, RELAY_BREAKER_OPEN, RELAY_BREAKER_HALF_OPEN } relay_breaker_state;

typedef struct relay_breaker {
    relay_breaker_state state;
    int failures;        /**< consecutive failures while closed */
    int threshold;       /**< failures that open it */
    int64_t cooldown_ns; /**< open this long before a half-open probe */
    int64_t opened_ns;   /**< when it opened */
} relay_breaker;

/** \brief "closed", "open", "half-open". */
const char *relay_breaker_name(relay_breaker_state s);
/** \brief May an attempt go now? Closed: yes; open: no until the cooldown passed, then half-open and yes
 * (one probe). \param wait_ns receives how long until it may (0 when it may now). */
int relay_breaker_allow(relay_breaker *b, int64_t now_ns, int64_t *wait_ns);
/** \brief The outcome of an attempt: success closes it; a failure opens it at the threshold, or again when
 * half-open. */
void relay_breaker_result(relay_breaker *b, int ok, int64_t now_ns);

/* ---- running (relay.c) -------------------------------------------------------------------------------- */

/** What one destination has done, for metrics and the status line (atomics: read from any thread). */
typedef struct relay_figures {
    _Atomic uint64_t delivered;     /**< deliveries answered 2xx */
    _Atomic uint64_t attempts;      /**< attempts made */
    _Atomic uint64_t failed;        /**< attempts that failed */
    _Atomic uint64_t dead;          /**< deliveries given up: dead letters */
    _Atomic uint64_t skipped;       /**< events the destination does not receive */
    _Atomic uint64_t checkpoint;    /**< the last stream sequence done (delivered, dead or skipped) */
    _Atomic uint64_t backlog;       /**< stream messages still after the checkpoint, as last seen */
    _Atomic uint64_t held;          /**< kind = route_planner: route requests waiting in its queue */
    atomic_int breaker;             /**< relay_breaker_state */
    _Atomic int64_t last_ok_ns;     /**< wall clock of the last delivery, 0 if none */
    _Atomic int64_t failing_since_ns; /**< wall clock of the first failure of the current run, 0 if none */
    char last_error[256];           /**< the last failure (written under lock by the destination's thread) */
} relay_figures;

typedef struct relay_opts {
    const relay_conf *conf;  /**< the destinations (borrowed while running) */
    const char *state_dir;   /**< checkpoints and delivery dead letters: STATE/<name>.seq, STATE/<name>.dead.ndjson */
    const char *instance;    /**< the relay's name in logs and consumer names (default "tower-relay") */
    const char *store_dir;   /**< the projector's store (read-only), which exception destinations need; NULL: none */
} relay_opts;

typedef struct relay relay;

/**
 * \brief Start one thread per destination, each with its own consumer on the events stream from its
 * checkpoint + 1. \param figures n_dest entries (owned by the caller, live while running).
 */
ct_status relay_start(relay **out, bus *b, const relay_opts *o, relay_figures *figures);
/** \brief Stop the threads (each finishes or abandons its current attempt) and free; NULL is a no-op. */
void relay_stop(relay *r);

/**
 * \brief Deliver the dead letters of destination `name` once more (each read back from the stream by its
 * sequence, one attempt each), report each on `report`, and keep only those still not delivered.
 * \return 0 all delivered (or none); 1 some still dead; 2 no such destination.
 */
int relay_redrive(bus *b, const relay_conf *conf, const char *state_dir, const char *name, FILE *report);

/* ---- what the destinations did about an entity (relay_db.c: STATE/relay.lmdb, read-only here) ---------- */

typedef struct relay_reader relay_reader;
/** \brief A read snapshot of STATE/relay.lmdb. \return NULL when the relay has no state there yet. */
relay_reader *relay_reader_open(const char *state_dir);
/**
 * \brief What each destination last did about an order ('o'), a shipment ('s') or a route ('r'): a new array
 * of {"destination", "status": delivered | failing | dead | queued | requested | refused, "type", "eventId",
 * "at", "since" (failing, queued), "error"}; empty when none (or rd is NULL).
 */
json_t *relay_reader_entity(relay_reader *rd, char kind, const char *id);
void relay_reader_close(relay_reader *rd);

/** \brief Prometheus text of the destinations' figures (tower_relay_*). */
void relay_metrics(const relay_conf *conf, const relay_figures *figures, ct_buf *out);

#ifdef __cplusplus
}
#endif
#endif
