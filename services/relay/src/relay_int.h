/* Internals of the relay shared by its files. */
#ifndef RELAY_INT_H
#define RELAY_INT_H

#include <curl/curl.h>
#include <jansson.h>
#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>

#include "ct_metrics.h"
#include "relay.h"

/* ---- HTTP (relay_http.c) ---- */

/* One destination's HTTP client: a libcurl easy handle, reused (its connection too). */
typedef struct relay__http {
    CURL *curl;
} relay__http;

/* What one attempt got: the HTTP status (0: no answer), why it failed, and Retry-After (-1: none). */
typedef struct relay__outcome {
    int status;
    char error[200];
    int64_t retry_after_ns;
} relay__outcome;

/* libcurl's global set-up: once per process, before any thread uses it. */
void relay__http_global(void);
void relay__http_init(relay__http *h);
void relay__http_free(relay__http *h);
/* POST body to the destination with its headers (webhook-id = id, webhook-timestamp, webhook-signature when
 * it has a secret), within its timeout. */
void relay__http_post(relay__http *h, const relay_dest *d, const char *id, const char *body, size_t len,
                      relay__outcome *out);

/* The same in two halves, for a transfer run by a curl multi handle (relay_lanes_run.c): the options of the
 * POST on c (the headers into *hd; body borrowed until the transfer ends), then, when it ended with rc, the
 * outcome (and *hd freed). */
void relay__http_setup(CURL *c, const relay_dest *d, const char *id, const char *body, size_t len,
                       relay__outcome *out, struct curl_slist **hd);
void relay__http_done(CURL *c, CURLcode rc, relay__outcome *out, struct curl_slist **hd);

/* ---- SMTP (relay_smtp.c) ---- */

/* Send the event as one email (relay_email_message) to a kind = email destination over the same libcurl
 * handle, within its timeout. out->status: the SMTP reply code of a failure (4xx: transient, retried; 5xx:
 * refused, a dead letter), 250 when accepted, 0 when no reply (no connection, a timeout). */
void relay__smtp_send(relay__http *h, const relay_dest *d, const char *id, const evt_event *e, uint64_t seq,
                      relay__outcome *out);

/* The same with a message built already (an exception change's, relay_exc.c). */
void relay__smtp_send_msg(relay__http *h, const relay_dest *d, const ct_buf *msg, relay__outcome *out);

/* ---- payloads (relay_payload.c, pure) ---- */

/* The body a destination gets for an event (docs/outbound.md): the versioned JSON envelope with the event,
 * or a Slack text. */
void relay__payload(const relay_dest *d, const evt_event *e, uint64_t seq, ct_buf *out);
/* A batch's body (batch = N): {"version": 1, "destination", "batch": [the envelope of each event, in order]}. */
void relay__payload_batch(const relay_dest *d, const evt_event *const *evs, const uint64_t *seqs, size_t n, ct_buf *out);

/* ---- the relay's LMDB (relay_db.c) ---- */

typedef struct relay__db {
    MDB_env *env;
    MDB_dbi dbi;
    char *path; /* its real path: one environment per directory and process */
    int refs;
    struct relay__db *next;
} relay__db;

/* STATE/relay.lmdb, opened once per process (a reference more when open already); create 0: NULL when it does
 * not exist. */
relay__db *relay__db_open(const char *state_dir, int create);
void relay__db_close(relay__db *db);
void relay__db_sync(relay__db *db);

/* What a destination did about an event, recorded for each order, shipment and route it names. */
typedef struct relay__note {
    const char *dest;
    const char *status;   /* delivered | failing | dead | requested | refused */
    const char *type;     /* the event type */
    const char *event_id;
    const char *error;    /* or NULL */
    int64_t at_ns;        /* wall clock */
    int64_t since_ns;     /* failing: when the run of failures began (0: at, or the record's) */
} relay__note;
void relay__db_note(relay__db *db, const evt_event *e, const relay__note *n);
/* The same for each of n events, in one transaction (n->type and n->event_id taken from each). */
void relay__db_note_many(relay__db *db, const evt_event *const *evs, size_t count, const relay__note *n);
/* The same for one entity ('o' order, 's' shipment, 'r' route) inside the caller's write transaction; a NULL
 * note deletes the record. 0, or an LMDB error. */
int relay__db_note_key(relay__db *db, MDB_txn *t, char kind, const char *id, const char *dest, const relay__note *n);

/* ---- the state directory and delivery (relay.c) ---- */

typedef struct relay relay;

typedef struct relay__worker {
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
    json_t *(*status_extra)(struct relay__worker *w); /* more status fields (a route planner's held requests) */
    void *ext;                /* the route planner's own state (relay_planner.c) */
} relay__worker;

struct relay {
    bus *b;
    const relay_opts *o;
    char *state_dir;
    char *instance;
    relay__worker *w;
    size_t n;
    atomic_int stop;
    pthread_mutex_t err_lock; /* guards figures[].last_error */
    relay__db *db;            /* STATE/relay.lmdb */
    char *store_dir;          /* the projector's store (a copy of relay_opts.store_dir), or NULL */
};

int64_t relay__mono_ns(void);
int relay__nap(relay *r, int64_t ns);
void relay__write_status(relay__worker *w, int force);
void relay__write_checkpoint(relay__worker *w);
void relay__set_error(relay__worker *w, const char *msg);
void relay__set_breaker(relay__worker *w, relay_breaker_state before);
int relay__retryable(const relay_dest *d, int status);
void relay__time_json(json_t *o, const char *k, int64_t ns);

/* Append the dead letter of one event: the event and every attempt (relay.c). */
void relay__dead_letter(relay__worker *w, const evt_event *e, uint64_t seq, json_t *attempts);
/* The counters and the breaker after an attempt (relay.c). */
void relay__count_outcome(relay__worker *w, int ok, size_t n);
/* A consumer name: "<instance>-<destination>". */
void relay__consumer_name(const relay__worker *w, char *out, size_t cap);
/* One round of a destination's consumer (*c; NULL: closed): opened at from_seq when closed, then up to max
 * messages within wait_ms handed to take. A failure closes it, so that the next round starts again from the
 * then from_seq, and naps: 1 s when opening fails or take returns non-zero, 0.5 s when the fetch fails (not
 * on a timeout). -1 when it could not be opened, else 0. */
int relay__consume(relay__worker *w, bus_consumer **c, uint64_t from_seq, size_t max, int wait_ms,
                   int (*take)(void *ctx, bus_batch *b), void *ctx);

/* A destination's reader (relay_feed.c): a thread fetching the events stream from start_seq ahead of the
 * deliveries (`want` messages per fetch, a few fetches ahead), so that NATS delivers the next messages while the
 * destination works on the last ones. wake (or NULL) is called from the reader's thread after each batch it
 * queues (the lanes' curl_multi_wakeup). */
typedef struct relay__feed relay__feed;
relay__feed *relay__feed_start(relay__worker *w, uint64_t start_seq, size_t want, void (*wake)(void *),
                               void *wake_arg);
/* The next fetched batch, in stream order, moved to *out (the caller frees it), waiting up to wait_ms (or a relay
 * stop). CT_OK or CT_TIMEOUT. */
ct_status relay__feed_next(relay__feed *f, int64_t wait_ms, bus_batch *out);
/* Whether a batch is queued (relay__feed_next would not wait). */
int relay__feed_ready(relay__feed *f);
/* Stop the reader (within 0.5 s) and free the batches it holds; NULL is a no-op. */
void relay__feed_stop(relay__feed *f);

/* An event destination's thread with lanes > 1 (relay_lanes_run.c): one curl multi handle, one request in flight
 * per lane. */
void *relay__lanes_main(void *arg);

/* The route planner destination's thread (relay_planner.c). */
void *relay__planner_main(void *arg);
/* Its dead letters (refused requests) back in its queue; the report as relay_redrive's. */
int relay__planner_redrive(const relay_dest *d, const char *state_dir, FILE *report);
char *relay__state_path(const char *dir, const char *name, const char *suffix);
int relay__write_file(const char *path, const char *data, size_t len);
uint64_t relay__read_checkpoint(const char *dir, const char *name);
int relay__deliver(relay *r, void *worker, const evt_event *e, uint64_t seq, int redrive);
/* Deliver a body until answered 2xx, given up, or the relay stops: relay.c's loop. evs NULL: an exception
 * change (relay_exc.c): no per-entity notes, no event dead letter; kind = email sends body as the message.
 * 0 delivered (a redrive: 0 delivered, 1 not); 2 given up (evs NULL: *attempts receives the attempts, a new
 * reference, for the caller's dead letter); -1 stopping. */
int relay__deliver_body(relay *r, relay__worker *w, const char *id, const ct_buf *body, const evt_event *const *evs,
                        const uint64_t *seqs, size_t n, int redrive, json_t **attempts);

/* ---- exception destinations (relay_exc.c) ---- */

/* An exception destination's thread. */
void *relay__exc_main(void *arg);
/* The body a destination gets for a change envelope (docs/outbound.md "Exception changes"): the JSON, a Slack
 * text, or an email message (kind = email). Pure. */
void relay__exc_payload(const relay_dest *d, const json_t *env, int64_t now_s, ct_buf *out);
/* A dead letter of an exception change once more (one attempt): 1 delivered, 0 not. */
int relay__exc_redrive_one(relay *r, relay__worker *w, json_t *line);

#endif
