/* The trend: the open count of every view per 5 minutes (a bucket) of business time, kept by the writer (store.h). */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1000000000LL
#define BUCKET_NS ((int64_t)STORE_TREND_BUCKET_S * NS_PER_S)
/* A row: t_ns (8), the number of views (1), then per view: name length (1), name, count (8). */
#define ROW_MAX (9 + FOLD_VIEW_COUNT * (1 + 255 + 8))

int64_t store_trend_advance(int64_t clock, int64_t occurred_ns)
{
    if (occurred_ns <= clock) return clock;
    if (clock <= 0) return occurred_ns;
    int64_t leap = clock + (int64_t)STORE_TREND_LEAP_S * NS_PER_S;
    return occurred_ns < leap ? occurred_ns : leap;
}

static int64_t bucket_of(int64_t ns) { return ns - ns % BUCKET_NS; }

int64_t store_trend_cutoff(int64_t clock_ns)
{
    return clock_ns > 0 ? bucket_of(clock_ns) - (int64_t)STORE_TREND_KEEP_BUCKETS * BUCKET_NS : 0;
}

int64_t store_trend_guess(const int64_t *occurred_ns, size_t n)
{
    int64_t first = n ? occurred_ns[0] : 0;
    for (size_t i = 1; i < n; i++)
        if (occurred_ns[i] < first) first = occurred_ns[i];
    int64_t before = first - (int64_t)STORE_TREND_LEAP_S * NS_PER_S;
    return n && before > 0 ? store_trend_cutoff(before) : 0;
}

int store_trend_hint_held(int64_t hint_ns, int64_t clock_ns)
{
    return hint_ns <= 0 || clock_ns <= 0 || hint_ns <= store_trend_cutoff(clock_ns);
}

static void bucket_key(unsigned char *k, int64_t bucket_ns) { store__put_u64(k, (uint64_t)(bucket_ns / NS_PER_S)); }

/* The row of the counts in the meta table now, into buf (ROW_MAX bytes): its length. */
static size_t row_encode(MDB_txn *txn, const store *s, int64_t t_ns, unsigned char *buf)
{
    size_t n = 0;
    store__put_u64(buf, (uint64_t)t_ns);
    buf[8] = (unsigned char)FOLD_VIEW_COUNT;
    n = 9;
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        const char *name = fold_view_name((fold_view)v);
        size_t l = strlen(name);
        char key[300];
        if (l > 255 || l + 7 > sizeof key) continue; /* never: view names are short */
        memcpy(key, "count/", 6);
        memcpy(key + 6, name, l + 1);
        buf[n++] = (unsigned char)l;
        memcpy(buf + n, name, l);
        n += l;
        store__put_u64(buf + n, store__meta_u64(txn, s, key));
        n += 8;
    }
    return n;
}

/* Drop the rows of buckets before cutoff_ns. */
static int trend_prune(MDB_txn *txn, const store *s, int64_t cutoff_ns)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, s->trend, &c);
    if (rc) return rc;
    MDB_val k, v;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size != 8 || (int64_t)store__get_u64(k.mv_data) * NS_PER_S >= cutoff_ns) break;
        rc = mdb_cursor_del(c, 0);
        if (rc) break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int store__trend_put(MDB_txn *txn, const store *s, int64_t clock_ns)
{
    if (clock_ns <= 0) return 0;
    unsigned char key[8], row[ROW_MAX];
    int64_t bucket = bucket_of(clock_ns);
    bucket_key(key, bucket);
    MDB_val k = {8, key}, v = {row_encode(txn, s, clock_ns, row), row};
    int rc = mdb_put(txn, s->trend, &k, &v, 0);
    if (!rc) rc = trend_prune(txn, s, store_trend_cutoff(clock_ns));
    return rc;
}

/* Decode a row (its key and value as stored); -1 when malformed. */
static int row_decode(const MDB_val *k, const MDB_val *v, store_trend_row *out)
{
    const unsigned char *p = v->mv_data;
    size_t len = v->mv_size, at = 9;
    if (k->mv_size != 8 || len < 9) return -1;
    memset(out, 0, sizeof *out);
    out->bucket_ns = (int64_t)store__get_u64(k->mv_data) * NS_PER_S;
    out->t_ns = (int64_t)store__get_u64(p);
    for (unsigned i = 0; i < p[8]; i++) {
        if (at >= len) return -1;
        size_t l = p[at++];
        if (at + l + 8 > len) return -1;
        char name[256];
        memcpy(name, p + at, l);
        name[l] = '\0';
        fold_view view;
        if (fold_view_parse(name, &view) == 0) out->counts[view] = store__get_u64(p + at + l);
        at += l + 8; /* a view this build does not know is skipped */
    }
    return at == len ? 0 : -1;
}

ct_status store_reader_trend(store_reader *r, int64_t since_ns, int (*fn)(void *ctx, const store_trend_row *row),
                             void *ctx)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->trend, &c);
    if (rc) return store__fail(r->s, rc, "open the trend");
    unsigned char key[8];
    bucket_key(key, since_ns > 0 ? bucket_of(since_ns) : 0);
    MDB_val k = {8, key}, v;
    ct_status st = CT_OK;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        store_trend_row row;
        if (row_decode(&k, &v, &row) != 0) {
            ct_log(CT_LOG_ERROR, "store", "a trend row does not decode (store %s)", r->s->dir);
            st = CT_STORE_CORRUPT;
            break;
        }
        if (fn(ctx, &row)) break;
    }
    if (st == CT_OK && rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "read the trend");
    mdb_cursor_close(c);
    return st;
}

int64_t store_reader_trend_clock(store_reader *r)
{
    return (int64_t)store__meta_u64(r->txn, r->s, STORE_META_TREND_CLOCK);
}
