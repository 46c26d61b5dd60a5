/* Internals of the store's write path shared by its files: the write transaction's context (store_apply.c:
 * the batch, its inputs, its trend rows) and deriving the processes it touched (store_derive.c: the items, their
 * indexes and counts, the SLA dues, the risk records). */
#ifndef STORE_APPLY_INT_H
#define STORE_APPLY_INT_H

#include "store_int.h"
#include "store_conform_int.h"
#include "store_ref_int.h"
#include "store_risk_int.h"

/* ---- a small set of strings, for the entities a batch touched ------------ */

typedef struct strset {
    char **slot;
    size_t cap, n;
    char **order;   /* insertion order, so that processing is deterministic */
} strset;

/* ---- the write transaction's context ---------------------------------------- */

typedef struct wtx {
    store *s;
    MDB_txn *txn;
    strset orders, ships;
    strset relinks;   /* shipments named together with an order: their link may change */
    int64_t count_delta[FOLD_VIEW_COUNT];
    /* Count changes per view and warehouse or carrier ("count/<view>/w/<id>", "/c/"): few distinct keys. */
    struct part_delta {
        char *key;
        int64_t delta;
    } *parts;
    size_t n_parts, cap_parts;
    uint32_t *part_slot; /* open addressing over parts: index + 1, 0 empty; slot_cap a power of two */
    size_t slot_cap;
    uint64_t n_events, n_dups, n_dead;
    strset dls;       /* dead letters (their sequence, decimal) to derive: new ones, or acted on */
    int64_t unacked_delta[FOLD_VIEW_COUNT];
    int64_t latest_ns; /* the latest occurredAt of the batch's new events (when an item it removed closed) */
    store__life life;  /* time to acknowledge and to close, observed in this batch */
    store__refb refb;  /* what the batch's reference-data definitions make derive again (store_ref.c) */
    int64_t trend_clock; /* the trend clock (store.h): a row is closed before an event moves it to another bucket */
    int64_t trend_keep;  /* rows of buckets before this are dropped at the end of the batch: not closed on the way */
    store_changes *changes;
    /* Loads the processes the batch touched; it decodes each event once for the whole batch (an event named
     * by an order and its shipments, or by several processes) and keeps it for the next batches (s->wload). */
    store__loader *load;
} wtx;

/* An item as stored: its key and packed bytes (owned by whoever filled it). */
typedef struct kv {
    char *key;
    unsigned char *val;
    size_t len;
    const Tower__V1__ViewItem *pb;  /* new items only: the derived item */
} kv;

/* Count d more (or fewer) items of view v under a part ("count/<view>/<kind>/<part>"). */
void store__part_count(wtx *w, fold_view v, char kind, const char *part, int64_t d);
/* Record a change of the batch for the notices (the packed item is copied). */
void store__change_add(wtx *w, store_op op, const void *packed, size_t len);
/* Remove a stored item with its index entries; put a new one with its index entries. 0 or an MDB_* code. */
int store__item_remove(wtx *w, const kv *old);
int store__item_put(wtx *w, const kv *nw);
/* Observe the first acknowledgement of an item (new: old NULL; or updated from an unacknowledged one). */
void store__observe_ack(wtx *w, const kv *old, const kv *nw);
/* Derive a process (an order and its shipments, or one unlinked shipment) and store its items, dues and
 * risk records. 0 or an MDB_* code. */
int store__derive_process(wtx *w, const char *order_id, const char *lone_shipment);

#endif
