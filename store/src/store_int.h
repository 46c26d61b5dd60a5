/* Internals shared by the store's files: the environment, its tables and key encodings. */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "store.h"

struct store {
    MDB_env *env;
    char *dir;       /* the environment directory (DIR/gen-N, or a flat DIR) */
    char *root;      /* DIR as given */
    char *gen;       /* the generation DIR/current pointed at when opened ("" for a flat DIR) */
    int new_gen;     /* a first generation made by this open: DIR/current points at it once its tables exist */
    int lock_fd;     /* DIR/writer.lock, held by the one writer process (-1 for readers) */
    /* Read transactions hold it shared; changing the map size (growing it, or adopting the size
     * another process grew it to) needs it exclusive: LMDB forbids that with a transaction open. */
    pthread_rwlock_t txn_lock;
    size_t map_size;
    int read_only;
    uint64_t id;     /* STORE_META_ID, read (a writer: made) when opened */
    MDB_dbi meta;    /* "format", "applied_seq", "stat/<name>", "count/<view>" -> u64 */
    MDB_dbi events;  /* eventId -> u64 seq (BE) + canonical protobuf */
    MDB_dbi tl;      /* DUPSORT: "o:<id>" / "s:<id>" / "r:<id>" -> time key (12) + eventId */
    MDB_dbi links;   /* shipmentId -> orderId (the current link) */
    MDB_dbi oship;   /* DUPSORT: orderId -> shipmentId */
    MDB_dbi items;   /* item key -> packed ViewItem */
    MDB_dbi vidx;    /* view (1) + time key (12) + item key -> "" */
    MDB_dbi vwh;     /* view (1) + warehouse + NUL + time key + item key -> "" */
    MDB_dbi vca;     /* view (1) + carrier + NUL + time key + item key -> "" */
    MDB_dbi dlq;     /* u64 seq (BE) -> packed DeadLetter */
    MDB_dbi dlraw;   /* u64 hash of raw bytes (BE) -> u64 seq (BE), DUPSORT */
    MDB_dbi cust;    /* DUPSORT: customerId -> orderId (from orderCreated), for search */
    MDB_dbi vrule;   /* view (1) + rule + NUL + time key + item key -> "" (anomalies, sla_breaches) */
    MDB_dbi dues;    /* due time key (12) + "o:<id>|<rule>" or "s:<id>|<rule>" -> packed ViewItem (the due) */
    MDB_dbi duek;    /* "o:<id>|<rule>" / "s:<id>|<rule>" -> due time key (12): the dues of an entity */
    /* The exception lifecycle (format 4): */
    MDB_dbi closed;  /* "<k>:<entity>|<exceptionId>" -> packed ViewItem of a closed instance someone acted on */
    MDB_dbi cidx;    /* closed time key (12) + closed key -> "": the closed ones, by when they closed */
    MDB_dbi vuna;    /* view (1) + time key + item key -> "": items with no acknowledgement */
    MDB_dbi vdue;    /* view (1) + SLA due time key + item key -> "": items an SLA rule covers */
    MDB_dbi vsnz;    /* view (1) + snoozed-until time key + item key -> "": items ever snoozed */
    /* Reference data (format 5, store_ref_int.h): */
    MDB_dbi ref;     /* kind (1) + code -> time key + eventId of its latest definition */
    MDB_dbi refuse;  /* kind (1) + code + NUL + "o:<id>" / "s:<id>" -> "": the entities naming a code */
    MDB_dbi trend;   /* format 5: u64 bucket start in s (BE) -> trend row (store_trend.c) */
    MDB_dbi risk_h;    /* format 5: lead-time histogram slices, stage + wh + carrier + day -> counts (store_risk.c) */
    MDB_dbi risk_samp; /* format 5: orderId -> the delivered order's lead-time sample (store_risk.c) */
    MDB_dbi risk_open; /* format 5: orderId -> the open order with a promise, as the SLA engine predicts it */
    const fold_sla_rules *sla; /* the rules the fold computes dues with (borrowed; NULL: defaults) */
    int64_t trend_drop_before; /* store_opts.trend_drop_before_ns: rows of buckets before it are not closed */
    /* The writer's decoded events, kept across batches (store_apply.c; owned, freed by store_close; emptied
     * when a batch fails, since its events were never stored). */
    struct store__loader *wload;
    struct store__keep *wkeep; /* what the writer keeps of each entity (store_keep.c; owned) */
};

struct store_reader {
    store *s;
    MDB_txn *txn;
};

#define STORE__TIME_KEY 12

/* Log an LMDB failure with what was being done, and map it to a status. */
ct_status store__fail(const store *s, int rc, const char *what);

void store__put_u64(unsigned char *p, uint64_t v);
uint64_t store__get_u64(const unsigned char *p);
/* 12 bytes that sort like the instant: biased big-endian seconds, then nanos. */
void store__time_key(unsigned char *p, const Tower__V1__Timestamp *t);
/* The same key of an instant in ns since the epoch, and back. */
void store__ns_time_key(unsigned char *p, int64_t ns);
int64_t store__time_key_ns(const unsigned char *p);
/* A timestamp in ns since the epoch (0 for NULL). */
int64_t store__ts_ns(const Tower__V1__Timestamp *t);
/* Set key k of o to t as RFC 3339 (nothing for NULL). */
void store__json_time(json_t *o, const char *k, const Tower__V1__Timestamp *t);

uint64_t store__meta_u64(MDB_txn *txn, const store *s, const char *key);
int store__meta_put_u64(MDB_txn *txn, const store *s, const char *key, uint64_t v);

/* Items per view [and warehouse, carrier or rule] and hour of their since, kept in meta by the writer
 * under "hcnt/<view>/<kind>/<part>/<hour, 8 digits>" (kind '-' and part "" for the whole view), so
 * that a count with olderThan reads whole hours and walks the index of one hour only. */
#define STORE_HOUR_NS (3600LL * 1000000000LL)
/* The key into buf (cap bytes); hour < 0 gives the prefix alone ("hcnt/<view>/<kind>/<part>/"). */
size_t store__hour_count_key(char *buf, size_t cap, int view, char kind, const char *part, int64_t hour);

/* ---- loading a process (store_process.c) ------------------------------------------
 * Both the write path (re-deriving the processes a batch touched) and the read path (one order or
 * shipment whole) load a process from one transaction through a loader. The loader decodes each event
 * once, by eventId, into memory of its own: an event named by an order and its shipments, or by several
 * processes of one batch, is read and unpacked once. Every event it hands out is borrowed from the
 * loader until store__loader_free. Functions returning int give 0 or an MDB_* code. */

/* The key of an entity's timeline, "<kind>:<id>": its length, or -1 when it does not fit in cap. */
int store__entity_key(char *buf, size_t cap, char kind, const char *id);

/* ---- what the writer keeps of each entity between batches (store_keep.c) --------------------------
 * A process touched again is derived again: its entities' timelines, items and SLA dues are what the writer
 * read or wrote the last time. It keeps them in memory (per entity, "<kind>:<id>"), so that they need not be
 * read back from LMDB and their events looked up again. Writer thread only. What is kept is exactly what its
 * committed transactions hold, or the open one wrote: forgotten whole when a batch fails (its transaction is
 * aborted), the timelines when the loader drops the blocks their events are in, everything past the budget. */
enum { STORE_KEEP_TL = 1, STORE_KEEP_ITEMS = 2, STORE_KEEP_DUES = 4, STORE_KEEP_RISK = 8, STORE_KEEP_ALL = 15 };

typedef struct store__ktl {
    unsigned char tk[STORE__TIME_KEY];  /* the timeline value: the time key, then the eventId */
    char *eid;                          /* owned; the eventId of an entry added since (ev NULL until it is loaded) */
    evt_event *ev;                      /* the event (borrowed from the writer's loader), NULL: not loaded yet */
    uint64_t seq;                       /* its stream sequence */
} store__ktl;

/* An item or a due as stored under the entity's key prefix. */
typedef struct store__krow {
    char *key;                          /* the item key, or "<kind>:<id>|<rule>" for a due (owned) */
    unsigned char tk[STORE__TIME_KEY];  /* a due's time (unused for an item) */
    unsigned char *val;                 /* the packed item or due as stored (owned), or NULL: not known (read it) */
    size_t len;
} store__krow;

typedef struct store__krows {
    store__krow *v;
    size_t n;
} store__krows;

/* One record of a table keyed by the entity's id, as stored. */
typedef struct store__krec {
    int known;          /* 0: not known (read it) */
    unsigned char *val; /* owned; NULL: there is no record */
    size_t len;
} store__krec;

typedef struct store__kent {
    char *ekey;         /* "<kind>:<id>" (owned) */
    size_t kl;
    unsigned has;       /* which of the parts below are known (STORE_KEEP_*) */
    store__ktl *tl;     /* the timeline, in LMDB's order */
    size_t n_tl, cap_tl;
    store__krows items; /* the items under "<ekey>|" */
    store__krows dues;  /* the dues under "<ekey>|" */
    store__krec risk[2]; /* an order's records in risk_samp and risk_open (STORE_KEEP_RISK: either known) */
} store__kent;

typedef struct store__keep store__keep;

/* A keep that forgets everything once it holds more than budget bytes (store__keep_trim); 0: no bound. */
store__keep *store__keep_new(size_t budget);
void store__keep_budget(store__keep *k, size_t budget);
void store__keep_free(store__keep *k);
/* Forget the given parts of every entity (STORE_KEEP_ALL: the entities too). NULL k is fine. */
void store__keep_clear(store__keep *k, unsigned parts);
/* Between batches: forget everything when over the budget. */
void store__keep_trim(store__keep *k);
/* The entity of key ekey (kl bytes), created empty (has 0) when create; NULL when absent (or k NULL). */
store__kent *store__keep_get(store__keep *k, const char *ekey, size_t kl, int create);
/* Forget some parts of one entity. */
void store__keep_reset(store__keep *k, store__kent *e, unsigned parts);
/* Append a loaded timeline entry (the caller reads them in LMDB's order). */
void store__keep_tl_push(store__keep *k, store__kent *e, const unsigned char *tk, evt_event *ev, uint64_t seq);
/* A new timeline entry was put: added to the kept timeline, if one is kept, at its place (loaded later). */
void store__keep_tl_added(store__keep *k, const char *ekey, size_t kl, const unsigned char *tk, const char *eid);
/* Append a copy of an item or a due to rows (tk: a due's time, NULL for an item; val NULL: not known). */
void store__keep_row_add(store__keep *k, store__krows *rows, const char *key, size_t kl, const unsigned char *tk,
                         const void *val, size_t len);
/* Keys of the reference index (entries never removed) known to be stored: a put of one is not needed. */
int store__keep_seen(const store__keep *k, const void *key, size_t len);
void store__keep_see(store__keep *k, const void *key, size_t len);
/* Know a record as stored: val NULL for none. */
void store__keep_rec_set(store__keep *k, store__kent *e, store__krec *r, const void *val, size_t len);

typedef struct store__loader {
    MDB_txn *txn;             /* the transaction read (borrowed; must outlive the loader's use) */
    const store *s;           /* its store (borrowed) */
    size_t chunk;             /* the size of the loader's memory blocks */
    size_t budget;            /* store__loader_trim keeps at most this many bytes of blocks (0: no bound) */
    struct {
        char **id;            /* eventId per slot (in the blocks below), NULL for a free slot */
        evt_event **ev;       /* the decoded event (in the blocks below) */
        uint64_t *seq;        /* its stream sequence */
        uint64_t *blk;        /* the serial of the newest block when it was decoded: it lives in that one or later */
        size_t cap, n;
    } cache;
    struct store__arena *arena; /* the blocks the events are decoded into, newest first (owned) */
    uint64_t blocks;          /* the serial of the newest block (0: none yet) */
    size_t bytes;             /* the blocks' total size */
    uint64_t hits, misses;    /* events found decoded / read and decoded (for profiling) */
    store__keep *keep;        /* the writer's: the timelines it keeps (not owned; NULL for a reader's loader) */
} store__loader;

/* Start a loader on txn; chunk is the size of its memory blocks (a batch wants large ones, a single
 * read small ones). Nothing is allocated until the first event. */
void store__loader_init(store__loader *l, MDB_txn *txn, const store *s, size_t chunk);
/* Free every event the loader handed out, and its index; the loader is empty and reusable afterwards. */
void store__loader_free(store__loader *l);
/* The writer's loader lives across its transactions: an event, once stored, never changes (a later copy
 * of its eventId is a duplicate or a dead letter), so a decoded event stays true for every later batch.
 * Between batches (no event handed out is in use), drop the oldest blocks, and the events decoded into
 * them, until at most half the budget is left, once the blocks exceed the budget. */
void store__loader_trim(store__loader *l);

/* An event the writer just stored (u64 seq + protobuf, as in the events table): decoded into the loader now,
 * from the caller's bytes, rather than read back when its process is derived. */
void store__loader_adopt(store__loader *l, const char *id, const void *stored, size_t size);

/* The events of one entity, oldest first by timeline key, with their stream sequences. The arrays are
 * owned by the list; the events are borrowed from the loader. Zero-initialise. */
typedef struct store__events {
    evt_event **ev;
    uint64_t *seq;
    size_t n, cap;
} store__events;

void store__events_free(store__events *e);

/* Append the events of entity kind:id ('o', 's', 'r') to *out. MDB_BAD_VALSIZE when the id is too long
 * for a key; a timeline entry whose event is missing ends the list; MDB_CORRUPTED for an event that does
 * not decode. */
int store__load_entity(store__loader *l, char kind, const char *id, store__events *out);

/* One process: an order and the shipments linked to it (oship), or one unlinked shipment. */
typedef struct store__process {
    char *order_id;           /* owned; NULL for an unlinked shipment */
    store__events order;      /* the order's events (empty without an order) */
    char **sids;              /* the shipment ids (owned), ns of them */
    store__events *ships;     /* their events, ns lists (owned; events borrowed from the loader) */
    fold_entity *se;          /* the same, as the fold takes them (ids and events borrowed from here) */
    size_t ns;
} store__process;

/* Load the process of order_id, or (order_id NULL) the one unlinked shipment lone_shipment, into *out.
 * *out is always filled enough for store__process_free, also on failure. */
int store__load_process(store__loader *l, const char *order_id, const char *lone_shipment, store__process *out);

/* The process as the fold takes it: borrowed from p, valid until store__process_free. */
fold_process store__process_fold(const store__process *p);

/* Free what the process owns (not the events: those belong to the loader); NULL members are fine. */
void store__process_free(store__process *p);

/* ---- the filters judged on each item (store_read_filter.c) ---- */

/* 1 when the query has a customer, channel, reason or SLA-state filter. */
int store__filter_extra(const store_query *q);
/* Whether an item passes those filters (reads the customer index, or the order's timeline for a channel). */
int store__filter_wants(store_reader *r, const store_query *q, const Tower__V1__ViewItem *it);

/* ---- the exception lifecycle (store_life.c) ---- */

/* Add (del 0) or remove (del 1) the lifecycle index entries of an item of view `view`. */
int store__life_index(MDB_txn *txn, const store *s, const Tower__V1__ViewItem *it, int view, const char *key, int del);
/* "<k>:<entity>|<exceptionId>": where a closed instance is kept (caller frees). */
char *store__closed_key(const char *item_key, const char *exid);
/* Keep one closed instance (replacing an older record of it). */
int store__closed_put(MDB_txn *txn, const store *s, const Tower__V1__ViewItem *it);
/* Forget one closed instance (a reopen); absent is fine. */
int store__closed_del_key(MDB_txn *txn, const store *s, const char *ckey);
/* Make the closed records under the given key prefixes ("o:<id>|", ...) exactly nw[0..n_new). */
int store__closed_diff(MDB_txn *txn, const store *s, char *const *prefixes, size_t n_prefixes, const fold_item *nw,
                       size_t n_new);

/* A batch's observations of time to acknowledge (0) and to close (1) per view. */
typedef struct store__life {
    uint64_t n[FOLD_VIEW_COUNT][2][STORE_LIFE_SLOTS];
    uint64_t sum_ms[FOLD_VIEW_COUNT][2];
    int any;
} store__life;

void store__life_observe(store__life *l, int view, int which, int64_t ns);
void store__life_observe_ack(store__life *l, const Tower__V1__ViewItem *it, int view);
void store__life_observe_close(store__life *l, const Tower__V1__ViewItem *it, int view, int64_t closed_ns);
/* Add the batch's observations to the counters in the meta table. */
int store__life_flush(MDB_txn *txn, const store *s, const store__life *l);

/* ---- the trend (store_trend.c) ---- */

/* Write the row of the clock's bucket: the view counts in the meta table now, t = clock_ns; drop the rows
 * that fell out of the kept window. 0 or an MDB_* code. */
int store__trend_put(MDB_txn *txn, const store *s, int64_t clock_ns);

#endif
