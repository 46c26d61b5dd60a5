/* Reference data in the store (contract v1.2; store_ref.c): the reference table, the index of the codes each
 * entity names, and what a batch's definitions make the writer derive again. */
#ifndef STORE_REF_INT_H
#define STORE_REF_INT_H

#include "store_int.h"

/*
 * Tables (format 5):
 *  ref:    kind (1: 'w', 'c', 'k') + code -> time key (12) + eventId of the latest definition (greatest occurredAt,
 *          ties by eventId): a function of the set of definitions.
 *  refuse: kind (1) + code (or "#<16 hex>" for one over 200 bytes) + NUL + "o:<order>" or "s:<shipment>" -> "":
 *          the entities whose events name the code (an event with an envelope orderId: its order; any other:
 *          the shipments it names). Only read to find what a new definition changes.
 */

/* What one batch's definitions change: kinds defined for the first time, codes defined for the first time. */
typedef struct store__refb {
    char first[4];  /* kinds that had no definition before the batch */
    struct store__refb_code {
        char kind;
        char *code; /* owned */
    } *codes;
    size_t n, cap;
} store__refb;

/* Index one applied (non-action) event: a definition updates the reference table (and *b); any other event
 * indexes the codes it names under the entities it counts for. Returns 0 or an MDB_* code. */
int store__ref_event(MDB_txn *txn, const store *s, const evt_event *e, store__refb *b);

/* Call add for every entity ('o' or 's', id) whose items the batch's new definitions may change. */
int store__ref_touched(MDB_txn *txn, const store *s, const store__refb *b,
                       void (*add)(void *ctx, char ek, const char *id), void *ctx);

void store__refb_free(store__refb *b);

/* The reference table as the fold asks it, read in txn: fill q and pass store__ref_fold(q). */
typedef struct store__refq {
    MDB_txn *txn;
    const store *s;
    fold_ref ref;
} store__refq;

const fold_ref *store__ref_fold(store__refq *q, MDB_txn *txn, const store *s);

#endif
