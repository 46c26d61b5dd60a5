/* The exception lifecycle in the store (format 4): the lifecycle indexes of an item, the closed instances
 * of a process, and the time-to-acknowledge and time-to-close histograms kept in the meta table. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store__life_index(MDB_txn *txn, const store *s, const Tower__V1__ViewItem *it, int view, const char *key, int del)
{
    struct {
        MDB_dbi dbi;
        const Tower__V1__Timestamp *t;
    } li[] = {{s->vuna, it->acknowledged_at ? NULL : it->since}, {s->vdue, it->sla_due_at}, {s->vsnz, it->snoozed_until}};
    size_t kl = strlen(key);
    unsigned char buf[1 + STORE__TIME_KEY + 511];
    if (kl > 511 - 1 - STORE__TIME_KEY) return MDB_BAD_VALSIZE;
    for (size_t i = 0; i < sizeof li / sizeof li[0]; i++) {
        if (!li[i].t) continue;
        buf[0] = (unsigned char)view;
        store__time_key(buf + 1, li[i].t);
        memcpy(buf + 1 + STORE__TIME_KEY, key, kl);
        MDB_val k = {1 + STORE__TIME_KEY + kl, buf}, v = {0, ""};
        int rc = del ? mdb_del(txn, li[i].dbi, &k, NULL) : mdb_put(txn, li[i].dbi, &k, &v, 0);
        if (rc && !(del && rc == MDB_NOTFOUND)) return rc;
    }
    return 0;
}

/* ---- closed instances ------------------------------------------------------------------------------- */

/* The closed key of an item: "<k>:<entity>|" (its key up to the first '|') then its exception id. */
char *store__closed_key(const char *item_key, const char *exid)
{
    const char *bar = strchr(item_key, '|');
    size_t el = bar ? (size_t)(bar - item_key) + 1 : strlen(item_key);
    return ct_sprintf("%.*s%s", (int)el, item_key, exid);
}

static int cidx_key(unsigned char *buf, size_t cap, const Tower__V1__ViewItem *it, const char *ckey, size_t *len)
{
    size_t kl = strlen(ckey);
    if (STORE__TIME_KEY + kl > cap || !it->closed_at) return MDB_BAD_VALSIZE;
    store__time_key(buf, it->closed_at);
    memcpy(buf + STORE__TIME_KEY, ckey, kl);
    *len = STORE__TIME_KEY + kl;
    return 0;
}

static int closed_del(MDB_txn *txn, const store *s, const MDB_val *k, const MDB_val *v)
{
    Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, v->mv_size, v->mv_data);
    int rc = 0;
    if (it) {
        unsigned char buf[STORE__TIME_KEY + 600];
        size_t len = 0;
        char *ck = ct_strndup(k->mv_data, k->mv_size);
        if (cidx_key(buf, sizeof buf, it, ck, &len) == 0) {
            MDB_val ik = {len, buf};
            rc = mdb_del(txn, s->cidx, &ik, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        }
        free(ck);
        tower__v1__view_item__free_unpacked(it, NULL);
    }
    if (!rc) {
        MDB_val dk = *k;
        rc = mdb_del(txn, s->closed, &dk, NULL);
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    return rc;
}

int store__closed_put(MDB_txn *txn, const store *s, const Tower__V1__ViewItem *it)
{
    if (!it->key || !it->exception_id) return 0;
    char *ck = store__closed_key(it->key, it->exception_id);
    size_t len = tower__v1__view_item__get_packed_size(it);
    unsigned char *val = ct_malloc(len ? len : 1);
    tower__v1__view_item__pack(it, val);
    MDB_val k = {strlen(ck), ck}, old;
    int rc = strlen(ck) > 511 ? MDB_BAD_VALSIZE : 0;
    if (!rc) rc = mdb_get(txn, s->closed, &k, &old);
    if (rc == 0 && old.mv_size == len && memcmp(old.mv_data, val, len) == 0) goto out; /* unchanged */
    if (rc == 0) rc = closed_del(txn, s, &k, &old);
    else if (rc == MDB_NOTFOUND) rc = 0;
    if (!rc) {
        MDB_val v = {len, val};
        rc = mdb_put(txn, s->closed, &k, &v, 0);
    }
    if (!rc) {
        unsigned char buf[STORE__TIME_KEY + 600];
        size_t il = 0;
        rc = cidx_key(buf, sizeof buf, it, ck, &il);
        if (!rc) {
            MDB_val ik = {il, buf}, e = {0, ""};
            rc = mdb_put(txn, s->cidx, &ik, &e, 0);
        }
    }
out:
    free(val);
    free(ck);
    return rc;
}

int store__closed_del_key(MDB_txn *txn, const store *s, const char *ckey)
{
    MDB_val k = {strlen(ckey), (void *)ckey}, v;
    int rc = mdb_get(txn, s->closed, &k, &v);
    if (rc == MDB_NOTFOUND) return 0;
    return rc ? rc : closed_del(txn, s, &k, &v);
}

int store__closed_diff(MDB_txn *txn, const store *s, char *const *prefixes, size_t n_prefixes, const fold_item *nw,
                       size_t n_new)
{
    /* The closed records the entities hold now, then those not derived any more go. */
    char **old = NULL;
    size_t n_old = 0;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, s->closed, &c);
    for (size_t i = 0; i < n_prefixes && !rc; i++) {
        size_t pl = strlen(prefixes[i]);
        MDB_val k = {pl, prefixes[i]}, v;
        int g = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (g == 0 && k.mv_size >= pl && memcmp(k.mv_data, prefixes[i], pl) == 0) {
            old = ct_realloc(old, (n_old + 1) * sizeof *old);
            old[n_old++] = ct_strndup(k.mv_data, k.mv_size);
            g = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        if (g != MDB_NOTFOUND && g != 0) rc = g;
    }
    if (c) mdb_cursor_close(c);
    for (size_t j = 0; j < n_old && !rc; j++) {
        int keep = 0;
        for (size_t i = 0; i < n_new && !keep; i++) {
            char *ck = store__closed_key(nw[i].key, nw[i].exid);
            keep = strcmp(ck, old[j]) == 0;
            free(ck);
        }
        if (!keep) rc = store__closed_del_key(txn, s, old[j]);
    }
    for (size_t i = 0; i < n_new && !rc; i++) rc = store__closed_put(txn, s, &nw[i].pb);
    for (size_t j = 0; j < n_old; j++) free(old[j]);
    free(old);
    return rc;
}

/* ---- histograms ------------------------------------------------------------------------------------ */

static const int64_t life_bounds_s[STORE_LIFE_BOUNDS] = {60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400};

const int64_t *store_life_bounds(void) { return life_bounds_s; }

void store__life_observe(store__life *l, int view, int which, int64_t ns)
{
    if (view < 0 || view >= FOLD_VIEW_COUNT || which < 0 || which > 1) return;
    if (ns < 0) ns = 0;
    int slot = 0;
    while (slot < STORE_LIFE_BOUNDS && ns > life_bounds_s[slot] * 1000000000LL) slot++;
    l->n[view][which][slot]++;
    l->sum_ms[view][which] += (uint64_t)(ns / 1000000);
    l->any = 1;
}

void store__life_observe_close(store__life *l, const Tower__V1__ViewItem *it, int view, int64_t closed_ns)
{
    if (it->since && closed_ns) store__life_observe(l, view, 1, closed_ns - store__ts_ns(it->since));
}

void store__life_observe_ack(store__life *l, const Tower__V1__ViewItem *it, int view)
{
    if (it->since && it->acknowledged_at) store__life_observe(l, view, 0, store__ts_ns(it->acknowledged_at) - store__ts_ns(it->since));
}

static const char *const which_name[2] = {"ack", "close"};

void store_life_meta_key(char *buf, size_t cap, fold_view v, int which, int slot)
{
    if (slot < 0) snprintf(buf, cap, "life/%s/%s/sum_ms", fold_view_name(v), which_name[which & 1]);
    else snprintf(buf, cap, "life/%s/%s/%d", fold_view_name(v), which_name[which & 1], slot);
}

int store__life_flush(MDB_txn *txn, const store *s, const store__life *l)
{
    if (!l->any) return 0;
    char key[96];
    int rc = 0;
    for (int v = 0; v < FOLD_VIEW_COUNT && !rc; v++)
        for (int w = 0; w < 2 && !rc; w++) {
            for (int i = 0; i < STORE_LIFE_SLOTS && !rc; i++) {
                if (!l->n[v][w][i]) continue;
                store_life_meta_key(key, sizeof key, (fold_view)v, w, i);
                rc = store__meta_put_u64(txn, s, key, store__meta_u64(txn, s, key) + l->n[v][w][i]);
            }
            if (!rc && l->sum_ms[v][w]) {
                store_life_meta_key(key, sizeof key, (fold_view)v, w, -1);
                rc = store__meta_put_u64(txn, s, key, store__meta_u64(txn, s, key) + l->sum_ms[v][w]);
            }
        }
    return rc;
}
