/* Internals of the store's predicted-risk tables (store_risk_facts.c: pure; store_risk.c: LMDB). */
#ifndef STORE_RISK_INT_H
#define STORE_RISK_INT_H

#include <lmdb.h>

#include "fold.h"
#include "risk.h"

struct store;

/* What one order process says about lead times and risk. Strings borrowed from the process's events. */
typedef struct store__risk_facts {
    const char *warehouse;           /* NULL when unknown */
    const char *carrier;             /* NULL when unknown */
    int delivered;                   /* every shipment (at least one) deliveryCompleted, not cancelled */
    int64_t delivered_at;            /* the latest shipment's earliest deliveryCompleted (s) */
    int64_t entered[RISK_STAGE_COUNT]; /* per stage, when the order entered it (s), 0: never (or not for all shipments) */
    int open;                        /* not delivered, not cancelled, a promise, a stage CREATED..SHIPPED */
    risk_stage stage;                /* open: the stage it waits in */
    int64_t stage_at;                /* open: when it entered it */
    int64_t promised_by;             /* the latest orderCreated's promisedBy (s), 0: none */
    int at_risk;                     /* the latest orderAtRisk / orderBackOnTrack is orderAtRisk */
    int64_t changed_at;              /* its occurredAt (s), 0: none */
    uint32_t changes;                /* distinct orderAtRisk / orderBackOnTrack events */
} store__risk_facts;

/* The facts of an order process from its events and the fold's stage (p->order.id must be set). Pure. */
void store__risk_facts_of(const fold_process *p, fold_stage stage, store__risk_facts *out);

/* Keep the order's sample (adjusting the histograms by the difference) and its open record in the write
 * transaction. 0 or an MDB_* code. With kept (the order's entity in the writer's keep, store_int.h), the
 * records as stored are known from it, and it learns them. */
struct store__keep;
struct store__kent;
int store__risk_update(MDB_txn *txn, const struct store *s, const char *order_id, const store__risk_facts *f,
                       struct store__keep *keep, struct store__kent *kept);

#endif
