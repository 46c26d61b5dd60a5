/* The write path's hook of per-producer conformance (store_conform.c). */
#ifndef STORE_CONFORM_INT_H
#define STORE_CONFORM_INT_H

#include "store_conform.h"
#include "store_int.h"

/* Count a new dead letter (seq, received at now_ns) under its producer and code, in txn (the transaction
 * recording it). 0 or an MDB_* code (then the batch fails as any write would). */
int store__conform_dead(MDB_txn *txn, const store *s, const store_input *in, const char *code,
                        const char *message, const char *event_id, uint64_t seq, int64_t now_ns);

#endif
