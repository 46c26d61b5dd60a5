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
    int lock_fd;     /* DIR/writer.lock, held by the one writer process (-1 for readers) */
    /* Read transactions hold it shared; changing the map size (growing it, or adopting the size
     * another process grew it to) needs it exclusive: LMDB forbids that with a transaction open. */
    pthread_rwlock_t txn_lock;
    size_t map_size;
    int read_only;
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
    const fold_sla_rules *sla; /* the rules the fold computes dues with (borrowed; NULL: defaults) */
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

uint64_t store__meta_u64(MDB_txn *txn, const store *s, const char *key);
int store__meta_put_u64(MDB_txn *txn, const store *s, const char *key, uint64_t v);

#endif
