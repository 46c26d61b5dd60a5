/* The store's predicted-risk tables (store_risk.h): lead-time histogram slices, delivered orders' samples,
 * open orders with a promise. Written in the writer's transaction, read by the SLA engine and the API. */
#include "store_risk.h"
#include "store_int.h"
#include "store_risk_int.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MAX (1 + 2 * (RISK_ID_MAX + 1) + 4)
#define SAMPLE_MAX (2 * (RISK_ID_MAX + 1) + 8 * (RISK_STAGE_COUNT + 1))
#define OPEN_MAX (2 + 8 * 3 + 4 + 2 * (RISK_ID_MAX + 1))

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static const char *nz(const char *s) { return s ? s : ""; }

/* stage + warehouse + NUL + carrier + NUL [+ day]: the length, or 0 when an id is too long. */
static size_t hist_key(unsigned char *k, risk_stage st, const char *wh, const char *ca, int with_day, uint32_t day)
{
    size_t wl = strlen(nz(wh)), cl = strlen(nz(ca));
    if (wl > RISK_ID_MAX || cl > RISK_ID_MAX) return 0;
    size_t n = 0;
    k[n++] = (unsigned char)st;
    memcpy(k + n, nz(wh), wl + 1);
    n += wl + 1;
    memcpy(k + n, nz(ca), cl + 1);
    n += cl + 1;
    if (with_day) {
        put_be(k + n, day, 4);
        n += 4;
    }
    return n;
}

/* A slice value: (u16 bucket, u32 count) pairs, big-endian, buckets ascending. */
static void slice_add(risk_hist *h, const MDB_val *v)
{
    const unsigned char *p = v->mv_data;
    for (size_t i = 0; i + 6 <= v->mv_size; i += 6) {
        unsigned b = (unsigned)get_be(p + i, 2);
        uint32_t c = (uint32_t)get_be(p + i + 2, 4);
        if (b >= RISK_BUCKETS) continue;
        h->counts[b] += c;
        h->n += c;
    }
}

/* Add delta to one bucket of one slice. */
static int hist_adjust(MDB_txn *txn, const store *s, const unsigned char *key, size_t kl, int bucket, int delta)
{
    risk_hist h;
    memset(&h, 0, sizeof h);
    MDB_val k = {kl, (void *)key}, v;
    int rc = mdb_get(txn, s->risk_h, &k, &v);
    if (rc && rc != MDB_NOTFOUND) return rc;
    if (!rc) slice_add(&h, &v);
    int64_t c = (int64_t)h.counts[bucket] + delta;
    h.counts[bucket] = c < 0 ? 0 : (uint32_t)c;
    unsigned char buf[RISK_BUCKETS * 6];
    size_t n = 0;
    for (int b = 0; b < RISK_BUCKETS; b++) {
        if (!h.counts[b]) continue;
        put_be(buf + n, (uint64_t)b, 2);
        put_be(buf + n + 2, h.counts[b], 4);
        n += 6;
    }
    if (!n) {
        rc = mdb_del(txn, s->risk_h, &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    MDB_val nv = {n, buf};
    return mdb_put(txn, s->risk_h, &k, &nv, 0);
}

/* ---- a delivered order's sample ----------------------------------------------------------------- */

typedef struct sample {
    char wh[RISK_ID_MAX + 1], ca[RISK_ID_MAX + 1];
    int64_t delivered_at;
    int64_t entered[RISK_STAGE_COUNT];
} sample;

static size_t sample_pack(unsigned char *p, const store__risk_facts *f)
{
    size_t wl = strlen(nz(f->warehouse)), cl = strlen(nz(f->carrier)), n = 0;
    if (!f->delivered || wl > RISK_ID_MAX || cl > RISK_ID_MAX) return 0;
    memcpy(p, nz(f->warehouse), wl + 1);
    n += wl + 1;
    memcpy(p + n, nz(f->carrier), cl + 1);
    n += cl + 1;
    put_be(p + n, (uint64_t)f->delivered_at, 8);
    n += 8;
    for (int s = 0; s < RISK_STAGE_COUNT; s++, n += 8) put_be(p + n, (uint64_t)f->entered[s], 8);
    return n;
}

static int sample_unpack(const MDB_val *v, sample *out)
{
    const char *p = v->mv_data, *end = p + v->mv_size;
    size_t wl = strnlen(p, v->mv_size);
    if (wl > RISK_ID_MAX || p + wl + 1 >= end) return -1;
    memcpy(out->wh, p, wl + 1);
    p += wl + 1;
    size_t cl = strnlen(p, (size_t)(end - p));
    if (cl > RISK_ID_MAX || p + cl + 1 + 8 * (RISK_STAGE_COUNT + 1) != end) return -1;
    memcpy(out->ca, p, cl + 1);
    p += cl + 1;
    out->delivered_at = (int64_t)get_be((const unsigned char *)p, 8);
    for (int s = 0; s < RISK_STAGE_COUNT; s++) out->entered[s] = (int64_t)get_be((const unsigned char *)p + 8 + 8 * s, 8);
    return 0;
}

/* Count (delta +1) or uncount (-1) a sample in its slices: per stage entered at or before the delivery, under
 * (stage, warehouse) and, with a carrier, (stage, warehouse, carrier). */
static int sample_count(MDB_txn *txn, const store *s, const sample *x, int delta)
{
    if (x->delivered_at <= 0) return 0;
    uint32_t day = (uint32_t)(x->delivered_at / RISK_DAY);
    unsigned char key[KEY_MAX];
    int rc = 0;
    for (int st = 0; st < RISK_STAGE_COUNT && !rc; st++) {
        if (!x->entered[st] || x->entered[st] > x->delivered_at) continue;
        int b = risk_bucket_of(x->delivered_at - x->entered[st]);
        size_t kl = hist_key(key, (risk_stage)st, x->wh, "", 1, day);
        rc = hist_adjust(txn, s, key, kl, b, delta);
        if (!rc && x->ca[0]) {
            kl = hist_key(key, (risk_stage)st, x->wh, x->ca, 1, day);
            rc = hist_adjust(txn, s, key, kl, b, delta);
        }
    }
    return rc;
}

/* Where the writer keeps what it knows of an order's record (NULL: nothing kept). */
typedef struct kept_rec {
    store__keep *k;
    store__kent *e;
    store__krec *r;
} kept_rec;

/* Make the record at key in dbi exactly nv (n 0: none). *old_out gets the previous record when asked. */
static int record_swap(MDB_txn *txn, MDB_dbi dbi, const char *order_id, const unsigned char *nv, size_t n,
                       MDB_val *old_out, int *changed, const kept_rec *kr)
{
    MDB_val k = {strlen(order_id), (void *)order_id}, v = {0, NULL};
    int rc = MDB_NOTFOUND;
    if (kr && kr->r->known) {
        if (kr->r->val) v = (MDB_val){kr->r->len, kr->r->val}, rc = 0;
    } else {
        rc = mdb_get(txn, dbi, &k, &v);
        if (rc && rc != MDB_NOTFOUND) return rc;
        if (kr) store__keep_rec_set(kr->k, kr->e, kr->r, rc ? NULL : v.mv_data, v.mv_size);
    }
    int had = !rc;
    *changed = had ? !(n == v.mv_size && memcmp(v.mv_data, nv, n) == 0) : n > 0;
    if (!*changed) return 0;
    if (had && old_out) {
        old_out->mv_data = ct_malloc(v.mv_size ? v.mv_size : 1);
        memcpy(old_out->mv_data, v.mv_data, v.mv_size);
        old_out->mv_size = v.mv_size;
    }
    if (n) {
        MDB_val w = {n, (void *)nv};
        rc = mdb_put(txn, dbi, &k, &w, 0);
    } else {
        rc = mdb_del(txn, dbi, &k, NULL);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (!rc && kr) store__keep_rec_set(kr->k, kr->e, kr->r, n ? nv : NULL, n);
    return rc;
}

static int sample_update(MDB_txn *txn, const store *s, const char *order_id, const store__risk_facts *f,
                         const kept_rec *kr)
{
    unsigned char nv[SAMPLE_MAX];
    size_t n = sample_pack(nv, f);
    MDB_val old = {0, NULL};
    int changed = 0;
    int rc = record_swap(txn, s->risk_samp, order_id, nv, n, &old, &changed, kr);
    if (rc || !changed) {
        free(old.mv_data); /* copied before a put that failed (a full map: the batch is retried) */
        return rc;
    }
    sample x;
    if (old.mv_data && sample_unpack(&old, &x) == 0) rc = sample_count(txn, s, &x, -1);
    free(old.mv_data);
    MDB_val nw = {n, nv};
    if (!rc && n && sample_unpack(&nw, &x) == 0) rc = sample_count(txn, s, &x, +1);
    return rc;
}

/* ---- an open order's record ------------------------------------------------------------------------ */

static size_t open_pack(unsigned char *p, const store__risk_facts *f)
{
    size_t wl = strlen(nz(f->warehouse)), cl = strlen(nz(f->carrier)), n = 0;
    if (!f->open || wl > RISK_ID_MAX || cl > RISK_ID_MAX) return 0;
    p[n++] = (unsigned char)f->stage;
    p[n++] = (unsigned char)(f->at_risk != 0);
    put_be(p + n, (uint64_t)f->stage_at, 8);
    put_be(p + n + 8, (uint64_t)f->promised_by, 8);
    put_be(p + n + 16, (uint64_t)f->changed_at, 8);
    put_be(p + n + 24, f->changes, 4);
    n += 28;
    memcpy(p + n, nz(f->warehouse), wl + 1);
    n += wl + 1;
    memcpy(p + n, nz(f->carrier), cl + 1);
    return n + cl + 1;
}

static int open_unpack(const MDB_val *k, const MDB_val *v, char *oid, size_t cap, store_risk_open *o)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < 30 || k->mv_size >= cap || p[0] >= RISK_STAGE_COUNT || p[v->mv_size - 1] != 0) return -1;
    memcpy(oid, k->mv_data, k->mv_size);
    oid[k->mv_size] = '\0';
    o->order_id = oid;
    o->stage = (risk_stage)p[0];
    o->at_risk = p[1];
    o->entered_at = (int64_t)get_be(p + 2, 8);
    o->promised_by = (int64_t)get_be(p + 10, 8);
    o->changed_at = (int64_t)get_be(p + 18, 8);
    o->changes = (uint32_t)get_be(p + 26, 4);
    o->warehouse = (const char *)p + 30;
    size_t wl = strlen(o->warehouse);
    if (30 + wl + 1 >= v->mv_size) return -1;
    o->carrier = o->warehouse + wl + 1;
    return 0;
}

int store__risk_update(MDB_txn *txn, const store *s, const char *order_id, const store__risk_facts *f,
                       store__keep *keep, store__kent *kept)
{
    if (!order_id || !*order_id || strlen(order_id) > EVT_MAX_ID) return 0;
    kept_rec ks = {keep, kept, kept ? &kept->risk[0] : NULL}, ko = {keep, kept, kept ? &kept->risk[1] : NULL};
    int rc = sample_update(txn, s, order_id, f, kept ? &ks : NULL);
    if (rc) return rc;
    unsigned char nv[OPEN_MAX];
    size_t n = open_pack(nv, f);
    int changed = 0;
    return record_swap(txn, s->risk_open, order_id, nv, n, NULL, &changed, kept ? &ko : NULL);
}

/* ---- reading ------------------------------------------------------------------------------------ */

typedef int (*open_fn)(void *ctx, const store_risk_open *o);

ct_status store_risk_open_scan(store_reader *r, open_fn fn, void *ctx)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->risk_open, &c);
    if (rc) return store__fail(r->s, rc, "open the risk_open table");
    MDB_val k, v;
    char oid[EVT_MAX_ID + 1];
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        store_risk_open o;
        if (open_unpack(&k, &v, oid, sizeof oid, &o) != 0) continue;
        if (fn(ctx, &o)) break;
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? CT_OK : store__fail(r->s, rc, "read the risk_open table");
}

ct_status store_risk_open_get(store_reader *r, const char *order_id, open_fn fn, void *ctx)
{
    if (!order_id || !*order_id || strlen(order_id) > EVT_MAX_ID) return CT_NOT_FOUND;
    MDB_val k = {strlen(order_id), (void *)order_id}, v;
    int rc = mdb_get(r->txn, r->s->risk_open, &k, &v);
    if (rc == MDB_NOTFOUND) return CT_NOT_FOUND;
    if (rc) return store__fail(r->s, rc, "read the risk_open table");
    char oid[EVT_MAX_ID + 1];
    store_risk_open o;
    if (open_unpack(&k, &v, oid, sizeof oid, &o) != 0) return CT_NOT_FOUND;
    fn(ctx, &o);
    return CT_OK;
}

static int window_ok(int days) { return days >= 1 && days <= RISK_MAX_WINDOW_DAYS; }

ct_status store_risk_window(store_reader *r, risk_stage stage, const char *warehouse, const char *carrier,
                            int64_t now_s, int window_days, risk_hist *out)
{
    memset(out, 0, sizeof *out);
    if (!window_ok(window_days) || (unsigned)stage >= RISK_STAGE_COUNT || now_s <= 0) return CT_INVALID;
    uint32_t last = (uint32_t)(now_s / RISK_DAY), first = last + 1 - (uint32_t)window_days;
    unsigned char key[KEY_MAX];
    size_t pl = hist_key(key, stage, warehouse, carrier, 0, 0);
    if (!pl) return CT_INVALID;
    put_be(key + pl, first, 4);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->risk_h, &c);
    if (rc) return store__fail(r->s, rc, "open the risk_h table");
    MDB_val k = {pl + 4, key}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != pl + 4 || memcmp(k.mv_data, key, pl) != 0) break;
        if (get_be((const unsigned char *)k.mv_data + pl, 4) > last) break;
        slice_add(out, &v);
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? CT_OK : store__fail(r->s, rc, "read the risk_h table");
}

typedef struct keys_walk {
    unsigned char prefix[KEY_MAX];
    size_t pl;
    risk_hist h;
} keys_walk;

/* Hand the key walked so far to fn when it has samples; 1 when fn asks to stop. */
static int keys_emit(keys_walk *w, int (*fn)(void *, const store_risk_key *), void *ctx)
{
    if (!w->pl || !w->h.n) return 0;
    const char *wh = (const char *)w->prefix + 1;
    store_risk_key k = {(risk_stage)w->prefix[0], wh, wh + strlen(wh) + 1, &w->h};
    return fn(ctx, &k);
}

ct_status store_risk_keys(store_reader *r, int64_t now_s, int window_days,
                          int (*fn)(void *ctx, const store_risk_key *k), void *ctx)
{
    if (!window_ok(window_days) || now_s <= 0) return CT_INVALID;
    uint32_t last = (uint32_t)(now_s / RISK_DAY), first = last + 1 - (uint32_t)window_days;
    keys_walk *w = ct_calloc(1, sizeof *w);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->risk_h, &c), stop = 0;
    MDB_val k, v;
    for (rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !stop;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 7 || k.mv_size > KEY_MAX) continue;
        size_t pl = k.mv_size - 4;
        if (pl != w->pl || memcmp(k.mv_data, w->prefix, pl) != 0) {
            stop = keys_emit(w, fn, ctx);
            memcpy(w->prefix, k.mv_data, pl);
            w->pl = pl;
            memset(&w->h, 0, sizeof w->h);
        }
        uint32_t day = (uint32_t)get_be((const unsigned char *)k.mv_data + pl, 4);
        if (day >= first && day <= last) slice_add(&w->h, &v);
    }
    if (!stop && (rc == 0 || rc == MDB_NOTFOUND)) keys_emit(w, fn, ctx);
    if (c) mdb_cursor_close(c);
    free(w);
    return rc == 0 || rc == MDB_NOTFOUND ? CT_OK : store__fail(r->s, rc, "read the risk_h table");
}
