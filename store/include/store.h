/* The view store on LMDB: events, timelines, view items with their indexes, dead letters, checkpoint. */
#ifndef STORE_H
#define STORE_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>

#include "ct.h"
#include "evt.h"
#include "fold.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The on-disk format this code reads and writes; a store of another version is refused at open. */
#define STORE_FORMAT_VERSION 5 /* 3: the SLA due index (dues, duek) and the rule index (vrule); 4: the exception
                                  lifecycle (closed, cidx, vuna, vdue, vsnz; lifecycle fields on every item);
                                  5: the trend (table trend, meta trend/clock_ns; store_trend.c); the
                                  predicted-risk tables (risk_h, risk_samp, risk_open; store_risk.c); reference data (ref, refuse:
                                  store_ref.c); hourly item counts per view and part (meta hcnt/..., what olderThan counts read) */

/*
 * Processes, threads and transactions (read this first, as lmdb.h's caveats):
 *
 * - One writer process per store directory. store_open without read_only takes DIR/writer.lock
 *   (an flock held until store_close); a second writer gets CT_CONFLICT. Any number of processes
 *   may open the store read_only beside it; together they may hold at most max_readers read
 *   transactions at once.
 * - A store handle may be shared by the threads of its process: store_reader_begin, every
 *   store_reader_* / read call on a thread's own reader, store_env_dir and store_generation_changed
 *   may run from several threads at once.
 * - Writes (store_apply, store_apply_meta) run on one thread at a time: the writer thread. They may run
 *   while other threads read. When the map is full the writer grows it, which LMDB allows only with
 *   no transaction of this process open: it waits until every store_reader of the process has ended.
 *   So a thread must never hold a store_reader while it calls store_apply (it would wait for itself),
 *   and readers must be short.
 * - A store_reader is one LMDB read transaction (opened with MDB_NOTLS) and a shared hold on the
 *   handle's transaction lock. Use it from one thread at a time, and end it on the thread that began
 *   it (POSIX lets only the holder release a pthread read lock). It sees one snapshot: what commits
 *   meanwhile is not visible until a new reader. While it is open, LMDB cannot reuse the pages it
 *   sees, so a long-lived reader makes the file grow: one reader per request, then end it.
 * - Nothing handed out points into LMDB memory. What a callback receives is borrowed until the
 *   callback returns; what a function returns is copied out and owned by the caller (each says how to
 *   free it) and stays valid after store_reader_end. A callback may call other read functions on the
 *   same reader, but must not end it or write.
 * - store_close: no reader of the handle may be open and no other thread may be using it.
 * - A handle keeps reading the generation it opened; after a rebuild swapped DIR/current, open a new
 *   handle (see store_generation_changed). Do not use a handle in a child process after fork().
 * - store_item_to_json and store_op_name touch no store: any thread.
 */

typedef struct store store;

/** Options of store_open. Zero-initialise, then set dir. */
typedef struct store_opts {
    const char *dir;        /**< the environment's directory (created if missing unless read_only) */
    size_t map_size;        /**< initial map size in bytes (default 256 MiB); grown on demand */
    unsigned max_readers;   /**< reader slots (default 1024) */
    int read_only;          /**< open for reading only (dump, server) */
    int probe;              /**< with read_only: no error is logged when there is no store (CT_NOT_FOUND) */
    int no_sync;            /**< skip fsync at commit (tests only: loses durability on a host crash) */
    int flat;               /**< dir itself is the environment, without generations (a rebuild's new generation) */
    const fold_sla_rules *sla_rules; /**< the SLA rules the fold computes dues with (borrowed for the store's
                                          life; NULL: fold_sla_defaults()). Readers use them only to know
                                          which milestone closes a breach of a non-default rule. */
    int64_t trend_drop_before_ns; /**< a rebuild's hint (0: none): the trend rows of buckets that start before
                                       this instant (ns since the epoch) will be dropped anyway by the end of
                                       the writes this handle is opened for, so the writer does not close them
                                       on the way (it saves a derive per 5 minutes of business time before it).
                                       It must be at most store_trend_cutoff() of the trend clock the store
                                       ends with, else rows that are kept are missing: the caller checks that
                                       with store_trend_hint_held() and starts over without the hint when not.
                                       The views, and the rows of buckets from this instant on, are the same
                                       as without it. */
} store_opts;

/**
 * \brief Open (or create) a store.
 * \param out receives the store (close with store_close); untouched on failure.
 * \param opts borrowed for the call, except sla_rules (borrowed for the store's life).
 * \return CT_OK; CT_STORE_VERSION if the store has another format version;
 *         CT_NOT_FOUND if read_only and there is no store; CT_CONFLICT if not read_only and another
 *         process is writing the store; CT_STORE_CORRUPT for a damaged data file; CT_STORE on any
 *         other LMDB failure (each logged with the directory and LMDB's message).
 */
ct_status store_open(store **out, const store_opts *opts);

/*
 * Layout of a store directory: DIR/current is a symlink to the generation in
 * use (DIR/gen-N, an LMDB environment). A rebuild fills DIR/gen-N+1 beside it
 * and then swaps the link atomically; processes that had the old generation
 * open keep reading it until they reopen (store_generation_changed).
 */

/** \brief Close the store; NULL is a no-op. No transaction may be open. */
void store_close(store *s);

/**
 * \brief The map size in bytes: as found at open, or as this handle's store_apply last grew it.
 * Call it from the writer thread (store_apply changes it without a lock).
 */
size_t store_map_size(store *s);

/** How much room the store takes and has (store_space_get). */
typedef struct store_space {
    uint64_t file_bytes; /**< the size of the data file (DIR/gen-N/data.mdb) */
    uint64_t map_bytes;  /**< the map size: how far the data file may grow before the writer grows the map */
    uint64_t used_bytes; /**< the pages in use, up to the last one written, in bytes (at most map_bytes) */
} store_space;

/**
 * \brief The store's space now, for metrics (store_stats.c). Thread-safe; call it with no read
 * transaction open on this thread. \return CT_OK; CT_STORE (logged) or CT_IO (the data file cannot be
 * stat'ed) and out untouched.
 */
ct_status store_space_get(store *s, store_space *out);

/** \brief The environment directory in use (DIR/gen-N). */
const char *store_env_dir(const store *s);

/** \brief 1 if DIR/current now points at another generation than the one open (a rebuild swapped it). */
int store_generation_changed(const store *s);

/**
 * \brief Start a rebuild: create the next, empty generation directory beside
 * the current one. \param out_dir receives its path (caller frees).
 */
ct_status store_rebuild_begin(const char *root, char **out_dir);

/**
 * \brief Empty a rebuild's generation (gen_dir from store_rebuild_begin, closed by every handle) so that the
 * replay can start over in it: its files are removed, the directory kept. \return CT_OK; CT_IO (logged).
 */
ct_status store_rebuild_reset(const char *gen_dir);

/**
 * \brief Finish a rebuild: point DIR/current at gen_dir atomically (rename of a
 * new symlink over the old), then remove the previous generation.
 */
ct_status store_rebuild_commit(const char *root, const char *gen_dir);

/* ---- writing (one writer process: the projector, or the offline fold; one thread at a time) ---- */

/** One message to apply: a valid event, or a rejected one. */
typedef struct store_input {
    uint64_t seq;              /**< stream sequence; 0 means "the next after the applied sequence" */
    evt_event *event;          /**< the valid event (borrowed), or NULL if rejected */
    const evt_error *error;    /**< when event is NULL: why it was rejected (borrowed) */
    const void *raw;           /**< the bytes as received (borrowed), kept for dead letters */
    size_t raw_len;            /**< their length */
    const char *content_type;  /**< "application/json" or "application/x-protobuf" */
    const void *packed;        /**< the event's canonical protobuf (evt_pack) when the caller made it already (a
                                    thread of its own beside the writer's), borrowed; NULL: the store packs it */
    size_t packed_len;         /**< its length */
} store_input;

/** What became of one input. */
typedef enum store_outcome {
    STORE_APPLIED,     /**< a new event, folded into the views */
    STORE_DUPLICATE,   /**< the same event (or the same rejected bytes) was seen before: no change */
    STORE_DEAD_LETTER, /**< rejected (invalid, undecodable or conflicting duplicate): a dead letter */
    STORE_SKIPPED      /**< seq at or below the applied sequence: already applied before a restart */
} store_outcome;

/** A change of one view item, reported after a commit. */
typedef enum store_op { STORE_OP_ADD, STORE_OP_UPDATE, STORE_OP_REMOVE } store_op;

/** \brief "add", "update" or "remove". */
const char *store_op_name(store_op op);

typedef struct store_change {
    store_op op;                  /**< what happened */
    fold_view view;               /**< in which view */
    Tower__V1__ViewItem *item;    /**< the item (for remove: as it was); owned by the change list */
} store_change;

/** The net view changes of one batch. Zero-initialise; free with store_changes_free. */
typedef struct store_changes {
    store_change *v;   /**< the changes */
    size_t n, cap;     /**< count and allocation */
    uint64_t seq;      /**< the applied sequence after the batch */
    uint64_t store_id; /**< the id of the store that made them (STORE_META_ID) */
} store_changes;

/** \brief Free the changes; the list is empty and reusable afterwards. */
void store_changes_free(store_changes *c);

/**
 * \brief Apply a batch in one durable write transaction, together with the
 * new applied sequence (the checkpoint). The map grows and the batch is
 * retried when LMDB reports MDB_MAP_FULL.
 * \param now_ns the receive time stamped on new dead letters.
 * \param outcomes n entries, filled per input (may be NULL).
 * \param changes when not NULL, receives the net view changes of the batch (emptied first; the caller
 *        frees them with store_changes_free).
 * \return CT_OK; CT_STORE (logged) if LMDB fails, then nothing of the batch is applied.
 *         CT_USAGE for a store opened read_only.
 * Writer thread only; the calling thread must hold no store_reader (see the top of this file).
 */
ct_status store_apply(store *s, const store_input *in, size_t n, int64_t now_ns, store_outcome *outcomes,
                      store_changes *changes);

/**
 * \brief Bound the decoded events the writer keeps from one batch to the next (default 256 MiB): the events of
 * the processes still moving are then read from LMDB and decoded once, not at every batch that touches them.
 * A bound under 8 MiB also makes the blocks smaller (tests use a few KiB to exercise the eviction). A quarter
 * of it more bounds what the writer keeps of each order and shipment it touched (its timeline, items, SLA
 * dues and risk records as last read or written), so that a process touched again is not read back. Writer
 * thread only.
 */
void store_writer_cache(store *s, size_t bytes);

/** A named figure kept in the store's meta table (e.g. the projector's stream identity). */
typedef struct store_meta {
    const char *key;   /**< a short name, e.g. "bus/stream_created_ns" */
    uint64_t value;    /**< its value */
} store_meta;

/*
 * Meta keys the projector writes with every commit (store_apply_meta) and operators read back: towerd
 * status, /metrics. They name the store's figures, so they live here, where a reader needs no projector.
 */
/** When the events stream the store follows was created (a different value: the stream was recreated). */
#define PROJECTOR_META_STREAM_CREATED "proj/stream_created_ns"
/** The stream's last sequence as the projector last saw it. */
#define PROJECTOR_META_STREAM_LAST "proj/stream_last_seq"
/** Wall-clock time of the projector's last commit, in ns since the epoch. */
#define PROJECTOR_META_COMMIT_NS "proj/last_commit_ns"
/** The projector's fold rate over its last seconds, in thousandths of an event per second. */
#define PROJECTOR_META_RATE "proj/rate_milli"
/** Dead letters up to this sequence are in TOWER_DLQ (at least once; the message id makes it once). */
#define PROJECTOR_META_DLQ_PUBLISHED "proj/dlq_published_seq"
/** A hash of the SLA rules the store's dues were last computed with (a change is logged at start). */
#define PROJECTOR_META_SLA_RULES "proj/sla_rules_hash"
/** Stream messages the projector folded (events, duplicates and dead letters), a counter kept across restarts. */
#define PROJECTOR_META_EVENTS_TOTAL "proj/events_total"
/** The commit-duration histogram (ct_metrics.h's slots, printf this with the slot 0..CT_HIST_BOUNDS): commits
 * per slot, not cumulative. A commit's own duration is written with the next commit. */
#define PROJECTOR_META_COMMIT_SLOT "proj/commit_slot_%d"
/** The sum of the commit durations counted in the histogram, in ns. */
#define PROJECTOR_META_COMMIT_SUM_NS "proj/commit_sum_ns"

/*
 * Time to acknowledge and time to close an exception, per view, as the writer observed them while applying
 * (docs/exceptions.md "Metrics"): histograms kept in the meta table under store_life_meta_key, per slot (not
 * cumulative), with the sum in ms. Slot i < STORE_LIFE_BOUNDS counts durations up to store_life_bounds()[i]
 * seconds; slot STORE_LIFE_BOUNDS the longer ones.
 */
#define STORE_LIFE_BOUNDS 8
#define STORE_LIFE_SLOTS (STORE_LIFE_BOUNDS + 1)
/** \brief The upper bounds of the slots, in seconds: 1 min, 5 min, 15 min, 1 h, 4 h, 12 h, 1 d, 3 d. */
const int64_t *store_life_bounds(void);
/** \brief The meta key of a slot (slot -1: the sum in ms); which 0: acknowledge, 1: close. */
void store_life_meta_key(char *buf, size_t cap, fold_view v, int which, int slot);

/**
 * \brief store_apply, also writing the given figures in the same transaction.
 * The figures are written last, so "applied_seq" among them sets the checkpoint
 * (a rebuild of a stream whose events were all removed starts past them).
 */
ct_status store_apply_meta(store *s, const store_input *in, size_t n, int64_t now_ns, store_outcome *outcomes,
                           store_changes *changes, const store_meta *meta, size_t n_meta);

/* ---- reading (any number of readers, any process, any thread: see the top of this file) ------ */

typedef struct store_reader store_reader;

/**
 * \brief Begin a read transaction: a consistent snapshot until store_reader_end. Safe from any thread;
 * the reader is then used by one thread at a time and ended on the thread that began it.
 * \param out receives the reader (end with store_reader_end); untouched on failure.
 * \return CT_OK; CT_STORE (logged) if LMDB fails, e.g. when max_readers transactions are open.
 */
ct_status store_reader_begin(store *s, store_reader **out);
/** \brief End it, on the thread that began it; NULL is a no-op. */
void store_reader_end(store_reader *r);

/** Totals kept by the store. */
typedef struct store_stats {
    uint64_t applied_seq;   /**< the checkpoint: last applied stream sequence */
    uint64_t events;        /**< distinct valid events applied */
    uint64_t duplicates;    /**< duplicates ignored */
    uint64_t dead_letters;  /**< dead letters recorded */
} store_stats;

/** \brief The totals as of the snapshot. */
void store_reader_stats(store_reader *r, store_stats *out);
/** \brief A figure written with store_apply_meta (0 if never written). */
uint64_t store_reader_meta(store_reader *r, const char *key);

/** \brief Items in a view as of the snapshot. */
uint64_t store_reader_count(store_reader *r, fold_view v);

/**
 * \brief Items in a view per warehouse (kind 'w'), per carrier (kind 'c') or per rule (kind 'r',
 * anomalies and sla_breaches), as of the snapshot: fn is called once per id with a non-zero count,
 * in id order. Kind 't' with FOLD_VIEW_SLA_BREACHES gives, per rule, the slaBreached events ever
 * applied (a counter: it never goes down).
 */
void store_reader_breakdown(store_reader *r, fold_view v, char kind,
                            void (*fn)(void *ctx, const char *id, uint64_t count), void *ctx);

/** A view query: oldest first, optionally filtered, paged. */
typedef struct store_query {
    fold_view view;          /**< which view */
    const char *warehouse;   /**< only items of this warehouse (NULL: all) */
    const char *carrier;     /**< only items of this carrier (NULL: all) */
    const char *rule;        /**< only items of this rule (anomalies, sla_breaches; NULL: all) */
    int64_t since_before_ns; /**< only items whose since is strictly before this (0: no bound) */
    const char *state;       /**< only items in this state (docs/exceptions.md): "open", "acknowledged", "snoozed",
                                  or "attention" (open or acknowledged, not snoozed); NULL, "" or "all": any */
    const char *assignee;    /**< only items assigned to this name; "" only unassigned ones; NULL: any */
    int64_t now_ns;          /**< the instant the state filter judges snoozes at */
    const char *code;        /**< dead letters: only those of this code, e.g. "INVALID_VALUE" (NULL: any) */
    /* Filters judged on each item (store_read_filter.c), NULL or 0: any. */
    const char *customer;    /**< only items of orders created for this customer (exact; an index lookup per item) */
    const char *channel;     /**< only items of orders of this channel, "ECOMMERCE", "EDI" or "SERVICE" (reads
                                  the order's orderCreated: its timeline per item) */
    const char *reason;      /**< only items whose reason or lastFailure is this text (case-insensitive) */
    int sla;                 /**< a store_sla_state: only items in this SLA state at now_ns (0: any) */
    const char *cursor;      /**< continue after this cursor (from a previous page), or NULL */
    size_t limit;            /**< at most this many items (0: no limit) */
} store_query;

/** The SLA state of an item at an instant (store_query.sla, store_item_sla). */
typedef enum store_sla_state {
    STORE_SLA_ANY = 0,    /**< no filter */
    STORE_SLA_BREACHED,   /**< its slaDueAt is at or before now (every item of sla_breaches) */
    STORE_SLA_DUE_SOON,   /**< not breached, but STORE_SLA_SOON_SHARE or more of the time allowed has passed */
    STORE_SLA_WITHIN,     /**< less than that has passed */
    STORE_SLA_NONE        /**< no SLA rule covers the item (no slaDueAt) */
} store_sla_state;

/** The share of an SLA's time allowed from which an item is due soon (the dashboard's "Warning"). */
#define STORE_SLA_SOON_SHARE 0.75

/** \brief The SLA state of an item at now_ns (never STORE_SLA_ANY). */
store_sla_state store_item_sla(const Tower__V1__ViewItem *it, int64_t now_ns);

/**
 * \brief The distinct customer ids of orderCreated events in the store, in id order, at most limit
 * (fn is called with each, borrowed for the call). \return 1 when more exist than limit, else 0.
 */
int store_reader_customers(store_reader *r, size_t limit, void (*fn)(void *ctx, const char *id), void *ctx);

/**
 * \brief The stored customer id equal to id ignoring case (an exact match first), copied into out
 * (cap bytes). Reads at most 100000 ids. \return 1 found, 0 none.
 */
int store_reader_customer_resolve(store_reader *r, const char *id, char *out, size_t cap);

/** Called per item; the item is borrowed until the call returns. Return non-zero to stop. */
typedef int (*store_item_fn)(void *ctx, const Tower__V1__ViewItem *item);

/**
 * \brief Visit the items of a view, oldest first, as an index range scan.
 * \param next_cursor when not NULL, receives a cursor to the next page (caller frees), or NULL at the end.
 * \return CT_OK; CT_INVALID for a malformed cursor; CT_STORE on LMDB failure.
 */
ct_status store_view_scan(store_reader *r, const store_query *q, store_item_fn fn, void *ctx,
                          char **next_cursor);

/**
 * \brief The number of items a query's filters select (its cursor and limit are ignored), as of the
 * snapshot: what walking every page of the query yields. The view alone, or with one of warehouse,
 * carrier or rule, reads the count the store keeps (one key; an unknown id gives 0). Any other
 * combination (since_before_ns, or two of warehouse, carrier and rule) counts by scanning the query's
 * index range: O(items in that range) key reads, plus decoding each item when a filter is checked on
 * the item (warehouse and carrier: the warehouse's range, its items decoded to check the carrier).
 * \param out receives the count (0 on failure).
 * \return CT_OK; CT_INVALID for an unknown view; CT_STORE on LMDB failure.
 */
ct_status store_view_count(store_reader *r, const store_query *q, uint64_t *out);

/**
 * \brief Visit the open SLA dues (see fold_due) whose due time is at or before until_ns,
 * earliest first. Each due is given as a view item (borrowed until fn returns): since is
 * the due time, key "o:<order>|<rule>" or "s:<shipment>|<rule>", rule, orderId,
 * shipmentId (for a shipment's due), warehouseId and carrierId where known.
 * Return non-zero from fn to stop. \return CT_OK or CT_STORE.
 */
ct_status store_dues_scan(store_reader *r, int64_t until_ns, store_item_fn fn, void *ctx);

/** \brief The earliest open due time in ns since the epoch. \return CT_OK, or CT_NOT_FOUND if none. */
ct_status store_dues_next(store_reader *r, int64_t *due_ns);

/** \brief Visit the timeline of an entity ('o' order, 's' shipment, 'r' route), oldest first. */
ct_status store_timeline(store_reader *r, char kind, const char *id,
                         int (*fn)(void *ctx, const evt_event *e, uint64_t seq), void *ctx);

/**
 * \brief The dead letter at a stream sequence: its item, the raw bytes as received and their content type.
 * \param out receives a new Tower__V1__DeadLetter (decoded copy, independent of the reader: it stays
 *        valid after store_reader_end); the caller frees it with
 *        tower__v1__dead_letter__free_unpacked(*out, NULL). Untouched on failure.
 * \return CT_OK; CT_NOT_FOUND if there is none at seq; CT_STORE_CORRUPT if it does not decode;
 *         CT_STORE on LMDB failure.
 */
ct_status store_dead_letter(store_reader *r, uint64_t seq, Tower__V1__DeadLetter **out);

/**
 * \brief Visit the dead letters with a sequence above after_seq, in sequence order.
 * The dead letter is borrowed until fn returns; return non-zero to stop.
 */
ct_status store_dead_letters_after(store_reader *r, uint64_t after_seq,
                                   int (*fn)(void *ctx, const Tower__V1__DeadLetter *d), void *ctx);

/**
 * \brief One order ('o') or shipment ('s') whole, as JSON: ids, stage (and the
 * order's stage for a shipment), what orderCreated said (customer, channel,
 * promisedBy), the order's shipments with their stages, the earliest time of
 * each milestone, the items of every view it is in now (openExceptions, with
 * ageSeconds when now_ns > 0), every SLA breach of the process (slaBreaches:
 * rule, orderId or shipmentId, dueAt, state "open", "closed" or "cancelled", and
 * for a closed one closedAt, the time of the awaited milestone, and
 * lateBySeconds = closedAt - dueAt), and the timeline of every event of the order
 * and its shipments, oldest first, each with its stream sequence.
 * \param out receives a new reference (the caller json_decrefs it); untouched on failure.
 * \return CT_OK; CT_INVALID for a kind other than 'o' or 's'; CT_NOT_FOUND if no event names the
 *         entity; CT_STORE or CT_STORE_CORRUPT (logged) if a timeline cannot be read.
 */
ct_status store_entity_json(store_reader *r, char kind, const char *id, int64_t now_ns, json_t **out);

/**
 * \brief Find orders and shipments whose id starts with q, and customers (with their
 * orders) whose id starts with q; at most limit of each, in id order.
 * \param q the prefix (borrowed for the call), 1 to EVT_MAX_ID bytes.
 * \param limit at most this many orders, shipments and (customer, order) pairs each; 0 gives empty lists.
 * \param out receives a new reference, owned by the caller (json_decref it):
 *        {"orders":[id...],"shipments":[id...],"customers":[{"customerId","orderId"}...]}, every
 *        string copied out of the store. Untouched on failure.
 * \return CT_OK; CT_INVALID for an empty or over-long q.
 */
ct_status store_search(store_reader *r, const char *q, size_t limit, json_t **out);

/**
 * \brief The state of an exception (docs/exceptions.md, "State") at now_ns: "resolved" or "closed" for a
 * closed instance, else "snoozed" while snoozed_until is after now_ns, else "acknowledged" or "open".
 * (static storage)
 */
const char *store_item_state(const Tower__V1__ViewItem *it, int64_t now_ns);

/**
 * \brief The open view item with this key ("o:<order>|<view>[|<sub>]", "s:...", "d:<seq>|dead_letters").
 * \param out receives a decoded copy (free with tower__v1__view_item__free_unpacked(*out, NULL)).
 * \return CT_OK; CT_NOT_FOUND; CT_STORE_CORRUPT; CT_STORE.
 */
ct_status store_item_get(store_reader *r, const char *key, Tower__V1__ViewItem **out);

/* ---- exceptions (store_exc.c; docs/exceptions.md) ---- */

/**
 * \brief One exception whole, open or closed, as JSON (docs/exceptions.md "Read one"): exceptionId, view,
 * state, open, item, openedAt, openedBy, closedAt, closedBy, resolution, assignee, acknowledgedAt/By,
 * snoozedUntil, slaDueAt, notes and history (every action on it, oldest first, with its stream sequence).
 * \param out receives a new reference. \return CT_OK; CT_NOT_FOUND (also for a malformed id); CT_STORE.
 */
ct_status store_exception_json(store_reader *r, const char *exid, int64_t now_ns, json_t **out);

/**
 * \brief One exception's item, open (its view item) or closed (the record kept of it), without its history.
 * \param out receives a decoded copy (free with tower__v1__view_item__free_unpacked); \param closed 1 if closed.
 * \return CT_OK; CT_NOT_FOUND (also for a malformed id); CT_STORE or CT_STORE_CORRUPT.
 */
ct_status store_exception_get(store_reader *r, const char *exid, Tower__V1__ViewItem **out, int *closed);

/** A query of the closed exceptions. Zero-initialise. */
typedef struct store_closed_query {
    const char *view;     /**< only this view's (NULL: all) */
    int64_t since_ns;     /**< only those closed at or after this instant (0: all) */
    const char *cursor;   /**< continue after this cursor (from a previous page), or NULL */
    size_t limit;         /**< at most this many (0: no limit) */
} store_closed_query;

/**
 * \brief Visit the closed exceptions someone acted on, most recently closed first (items with closed_at,
 * closed_by, resolution). \param next_cursor when not NULL, receives a cursor to the next page or NULL.
 * \return CT_OK; CT_INVALID for a malformed cursor; CT_STORE.
 */
ct_status store_closed_scan(store_reader *r, const store_closed_query *q, store_item_fn fn, void *ctx,
                            char **next_cursor);

/** The lifecycle figures of a view (the summary's). */
typedef struct store_life_fig {
    uint64_t unacknowledged;          /**< items with no acknowledgement (a kept count) */
    int64_t oldest_unacknowledged_ns; /**< the since of the oldest of them (0: none) */
    uint64_t snoozed;                 /**< items snoozed at now (their latest snooze ends after now) */
    uint64_t breached;                /**< items whose SLA due time has passed at now */
} store_life_fig;

/* ---- the trend (store_trend.c; docs/deploy.md "Trends") ----
 * The open count of every view, kept in the store by the writer, one row per 5 minutes of business time: the
 * trend clock is the latest occurredAt of the events applied so far, in stream order, moving forward by at
 * most STORE_TREND_LEAP_S per event (one event far in the future cannot end the trend) and never back; a row
 * holds the counts after the last stream message applied while the clock was in its bucket. The writer
 * closes a row before the first event of the next bucket, whatever its batches: two stores that applied
 * the same stream have the same rows (a rebuild too). Rows older than STORE_TREND_KEEP_BUCKETS buckets
 * before the clock's are dropped (and not written on the way in a batch that goes past them, nor before a
 * rebuild's hint: store_opts.trend_drop_before_ns). */
#define STORE_TREND_BUCKET_S 300
#define STORE_TREND_KEEP_BUCKETS 576 /* 48 hours */
#define STORE_TREND_LEAP_S 3600
/** The meta key of the store's id: a random number given to each store (each generation) when a writer
 * first opens it. Change notices carry it, so that a server follows the notices of the store it reads and
 * not those of another replica's projector on the same bus (0: a store of an older build, no id yet). */
#define STORE_META_ID "store_id"
/** The meta key of the trend clock (ns since the epoch; 0: no event yet). */
#define STORE_META_TREND_CLOCK "trend/clock_ns"

/** One row of the trend: the counts per view as of t_ns, the clock after the last event of its bucket. */
typedef struct store_trend_row {
    int64_t bucket_ns;                 /**< the start of its bucket (STORE_TREND_BUCKET_S) */
    int64_t t_ns;                      /**< the trend clock when the row was last written */
    uint64_t counts[FOLD_VIEW_COUNT];  /**< per fold_view (0 for a view the row does not name) */
} store_trend_row;

/**
 * \brief Visit the trend rows whose bucket starts at or after since_ns, oldest first (the row is borrowed
 * until fn returns; return non-zero to stop). \return CT_OK; CT_STORE_CORRUPT for a row that does not
 * decode; CT_STORE.
 */
ct_status store_reader_trend(store_reader *r, int64_t since_ns, int (*fn)(void *ctx, const store_trend_row *row),
                             void *ctx);

/** \brief The trend clock as of the snapshot (ns since the epoch; 0 before the first event). */
int64_t store_reader_trend_clock(store_reader *r);

/** \brief The trend clock after an event occurred at occurred_ns, from clock (pure; see above). */
int64_t store_trend_advance(int64_t clock, int64_t occurred_ns);

/** \brief The start of the oldest bucket kept while the trend clock is clock_ns (pure): rows of buckets
 * before it are dropped. 0 when clock_ns <= 0 (no event yet). */
int64_t store_trend_cutoff(int64_t clock_ns);

/** \brief A guess of store_opts.trend_drop_before_ns from the occurredAt of the last n events of a stream
 * (pure): store_trend_cutoff() of the earliest of them, one STORE_TREND_LEAP_S earlier. The trend clock a
 * replay of the whole stream ends with is usually later: it is at least the latest occurredAt applied before
 * them, and it trails the events only after gaps of more than an hour between them (it moves an hour at most
 * per event), which the earliest of several events and the hour's margin absorb. Not always (all of them
 * dated far ahead of the clock): check it with store_trend_hint_held(). 0 when n is 0. */
int64_t store_trend_guess(const int64_t *occurred_ns, size_t n);

/** \brief 1 if a store opened with store_opts.trend_drop_before_ns = hint_ns and ending with the trend clock
 * clock_ns has exactly the rows of a store opened without it (pure): the hint is 0, at most
 * store_trend_cutoff(clock_ns), or no event moved the clock (then no row was closed). 0: rows that are kept
 * were not closed; replay again without the hint. */
int store_trend_hint_held(int64_t hint_ns, int64_t clock_ns);

/** \brief The lifecycle figures of view v at now_ns: O(snoozed + breached items) key reads. */
void store_life_figures(store_reader *r, fold_view v, int64_t now_ns, store_life_fig *out);

/** \brief The JSON item shape of docs/contract.md (new reference). now_ns > 0 adds ageSeconds and state. */
json_t *store_item_to_json(const Tower__V1__ViewItem *it, int64_t now_ns);

/** Flags of store_dump. */
enum {
    STORE_DUMP_STABLE = 1, /**< omit what a replay does not reproduce (dead letters' seq and receivedAt) and sort dead letters by content */
    STORE_DUMP_DUES = 2,   /**< also print the open SLA dues, as "sla_dues" (earliest first) */
    STORE_DUMP_CLOSED = 4  /**< also print the closed exceptions, as "closed" (most recently closed first) */
};

/**
 * \brief Print every view as one JSON object, view name -> items oldest
 * first, from one read transaction.
 */
ct_status store_dump(store *s, int flags, FILE *out);

/* ---- reference data (store_ref*.c; docs/contract/reference.md) ---- */

/** Called per code with its latest definition (borrowed until the call returns) and its stream sequence;
 *  kind 'w', 'c' or 'k' (fold.h FOLD_REF_KINDS). Return non-zero to stop. */
typedef int (*store_ref_fn)(void *ctx, char kind, const char *code, const evt_event *def, uint64_t seq);

/**
 * \brief Visit the codes of one kind that have a definition, in code order, each with its latest definition
 * (greatest occurredAt, ties by eventId). The UNKNOWN_CODE items are anomalies with rule UNKNOWN_CODE
 * (store_view_scan). \return CT_OK; CT_INVALID for another kind; CT_STORE on LMDB failure.
 */
ct_status store_reference_scan(store_reader *r, char kind, store_ref_fn fn, void *ctx);
/** \brief How many codes of a kind have a definition (0 on failure). */
uint64_t store_reference_count(store_reader *r, char kind);

/* ---- backup (store_backup.c; any process, beside a running writer) ---- */

/** What store_backup copied. */
typedef struct store_backup_info {
    store_stats stats;     /**< the copy's totals; stats.applied_seq is its checkpoint */
    uint64_t bytes;        /**< the size of the copy's data file */
    uint64_t source_bytes; /**< the size of the live data file it was copied from */
} store_backup_info;

/**
 * \brief A consistent copy of the store at dir, taken from one read snapshot while a writer may go on
 * (LMDB's compacting copy), into out_dir laid out as a store (out_dir/gen-1, out_dir/current), so that
 * store_open takes it as dir. It is written into out_dir.tmp-PID, fsynced, checked by opening it, and
 * renamed to out_dir at the end: a crash leaves no half backup under out_dir's name.
 * \param dir the store's directory (borrowed for the call).
 * \param out_dir a directory that does not exist yet, or is empty; its parent must exist.
 * \param info receives what was copied (zeroed first).
 * \return CT_OK; CT_CONFLICT (logged) if out_dir exists and is not an empty directory (nothing written);
 *         CT_NOT_FOUND if there is no store at dir; CT_IO for a file-system failure; CT_STORE,
 *         CT_STORE_CORRUPT or CT_STORE_VERSION as store_open. On failure out_dir is left as it was (but for
 *         CT_IO from the last step, the fsync of its parent after the rename: the backup is whole, maybe not durable).
 */
ct_status store_backup(const char *dir, const char *out_dir, store_backup_info *info);

#ifdef __cplusplus
}
#endif
#endif
