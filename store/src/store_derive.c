/* Deriving a process the batch touched: the fold's items against the stored ones (with their index entries
 * and counts), the SLA dues, the closed records and the risk records, in the batch's transaction. */
#include "store_apply_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- items and their indexes ---------------------------------------------------- */

static int view_of(const Tower__V1__ViewItem *it, fold_view *v) { return fold_view_parse(it->view, v); }

static uint32_t part_hash(const char *key)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) h = (h ^ *p) * 16777619u;
    return h;
}

/* Add d to the count kept under key, found through part_slot (a batch touches many keys when items
 * are counted per hour). */
static void part_delta_add(wtx *w, const char *key, int64_t d)
{
    size_t mask = w->slot_cap - 1, h = w->slot_cap ? part_hash(key) & mask : 0;
    for (; w->slot_cap && w->part_slot[h]; h = (h + 1) & mask)
        if (!strcmp(w->parts[w->part_slot[h] - 1].key, key)) {
            w->parts[w->part_slot[h] - 1].delta += d;
            return;
        }
    if (w->n_parts == w->cap_parts) {
        w->cap_parts = w->cap_parts ? w->cap_parts * 2 : 16;
        w->parts = ct_realloc(w->parts, w->cap_parts * sizeof *w->parts);
    }
    w->parts[w->n_parts].key = ct_strdup(key);
    w->parts[w->n_parts++].delta = d;
    if (w->n_parts * 2 > w->slot_cap) { /* grow and re-place every key */
        free(w->part_slot);
        w->slot_cap = w->slot_cap ? w->slot_cap * 2 : 64;
        w->part_slot = ct_calloc(w->slot_cap, sizeof *w->part_slot);
        for (size_t i = 0; i < w->n_parts; i++) {
            size_t j = part_hash(w->parts[i].key) & (w->slot_cap - 1);
            while (w->part_slot[j]) j = (j + 1) & (w->slot_cap - 1);
            w->part_slot[j] = (uint32_t)i + 1;
        }
    } else {
        w->part_slot[h] = (uint32_t)w->n_parts;
    }
}

/* Items per view [and part] and hour of since (store_int.h STORE_HOUR_NS): what makes a count
 * with olderThan cheap (store_read.c). kind '-' and part "" for the whole view. */
static void hour_count(wtx *w, fold_view v, char kind, const char *part, int64_t since_ns, int64_t d)
{
    char key[96 + EVT_MAX_ID];
    store__hour_count_key(key, sizeof key, v, kind, part, since_ns / STORE_HOUR_NS);
    part_delta_add(w, key, d);
}

void store__part_count(wtx *w, fold_view v, char kind, const char *part, int64_t d)
{
    char key[64 + EVT_MAX_ID];
    /* "count/<view>/<kind>/<part>" (parts are at most EVT_MAX_ID bytes, view names short), without printf:
     * this runs for every index entry written. */
    const char *vn = fold_view_name(v);
    size_t vl = strlen(vn), pl = strnlen(part, EVT_MAX_ID);
    memcpy(key, "count/", 6);
    memcpy(key + 6, vn, vl);
    key[6 + vl] = '/';
    key[7 + vl] = kind;
    key[8 + vl] = '/';
    memcpy(key + 9 + vl, part, pl);
    key[9 + vl + pl] = '\0';
    part_delta_add(w, key, d);
}

/* Add (del = 0) or remove (del = 1) the index entries of an item. */
static int index_item(wtx *w, const Tower__V1__ViewItem *it, const char *key, int del)
{
    fold_view v;
    if (view_of(it, &v) != 0 || !it->since) return MDB_INCOMPATIBLE;
    size_t kl = strlen(key);
    unsigned char buf[1 + EVT_MAX_ID + 1 + STORE__TIME_KEY + 511];
    unsigned char tk[STORE__TIME_KEY];
    store__time_key(tk, it->since);

    /* A rule is indexed (and counted) when it is short enough for a key; EVT_MAX_ID bounds ids alike. */
    const char *rule = it->rule && *it->rule && strlen(it->rule) <= EVT_MAX_ID ? it->rule : NULL;
    struct {
        MDB_dbi dbi;
        const char *part;
    } idx[] = {{w->s->vidx, NULL}, {w->s->vwh, it->warehouse_id}, {w->s->vca, it->carrier_id}, {w->s->vrule, rule}};
    static const char kinds[] = {0, 'w', 'c', 'r'};
    for (int i = 0; i < 4; i++) {
        if (i > 0 && !idx[i].part) continue;
        size_t n = 0;
        buf[n++] = (unsigned char)v;
        if (idx[i].part) {
            size_t pl = strlen(idx[i].part);
            memcpy(buf + n, idx[i].part, pl);
            n += pl;
            buf[n++] = 0;
        }
        memcpy(buf + n, tk, STORE__TIME_KEY);
        n += STORE__TIME_KEY;
        if (n + kl > 511) return MDB_BAD_VALSIZE;
        memcpy(buf + n, key, kl);
        n += kl;
        MDB_val k = {n, buf}, val = {0, ""};
        int rc = del ? mdb_del(w->txn, idx[i].dbi, &k, NULL) : mdb_put(w->txn, idx[i].dbi, &k, &val, 0);
        if (rc && !(del && rc == MDB_NOTFOUND)) return rc;
        if (i > 0) store__part_count(w, v, kinds[i], idx[i].part, del ? -1 : 1);
        hour_count(w, v, i ? kinds[i] : '-', i ? idx[i].part : "", store__ts_ns(it->since), del ? -1 : 1);
    }
    int rc = store__life_index(w->txn, w->s, it, (int)v, key, del);
    if (rc) return rc;
    w->count_delta[v] += del ? -1 : 1;
    if (!it->acknowledged_at) w->unacked_delta[v] += del ? -1 : 1;
    return 0;
}

void store__change_add(wtx *w, store_op op, const void *packed, size_t len)
{
    if (!w->changes) return;
    Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, len, packed);
    fold_view v;
    if (!it || view_of(it, &v) != 0) {
        if (it) tower__v1__view_item__free_unpacked(it, NULL);
        return;
    }
    store_changes *c = w->changes;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->v = ct_realloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = (store_change){op, v, it};
}

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv *)a)->key, ((const kv *)b)->key); }

/* "<kind>:<id>|" into buf (cap bytes): its length, or -1 when it does not fit. */
static int entity_prefix(char *buf, size_t cap, char kind, const char *id)
{
    int n = store__entity_key(buf, cap - 1, kind, id);
    if (n < 0) return -1;
    buf[n] = '|';
    buf[n + 1] = '\0';
    return n + 1;
}

/* "<kind>:<id>|<rest>", allocated (caller frees); no printf: it runs for every process derived. */
static char *entity_key_dup(char kind, const char *id, const char *rest)
{
    size_t il = strlen(id), rl = strlen(rest);
    char *k = ct_malloc(il + rl + 4);
    k[0] = kind;
    k[1] = ':';
    memcpy(k + 2, id, il);
    k[2 + il] = '|';
    memcpy(k + 3 + il, rest, rl + 1);
    return k;
}

static void kv_push(kv **arr, size_t *n, size_t *cap, const char *key, size_t kl, const void *val, size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *arr = ct_realloc(*arr, *cap * sizeof **arr);
    }
    kv *e = &(*arr)[(*n)++];
    e->key = ct_strndup(key, kl);
    e->val = ct_malloc(len ? len : 1);
    memcpy(e->val, val, len);
    e->len = len;
    e->pb = NULL;
}

/* Reads the rows of dbi under an entity's prefix (pl bytes) into row(), which also adds them to the keep's
 * part of kept: that part is emptied first, again if the read fails, and marked whole once it is read. */
static int scan_into_keep(wtx *w, MDB_dbi dbi, const char *prefix, int pl, store__kent *kept, unsigned part,
                          void (*row)(wtx *w, store__kent *kept, const MDB_val *k, const MDB_val *v, void *ctx),
                          void *ctx)
{
    store__keep_reset(w->s->wkeep, kept, part);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(w->txn, dbi, &c);
    if (rc) return rc;
    MDB_val k = {(size_t)pl, (void *)prefix}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= (size_t)pl && memcmp(k.mv_data, prefix, (size_t)pl) == 0) {
        row(w, kept, &k, &v, ctx);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        store__keep_reset(w->s->wkeep, kept, part);
        return rc;
    }
    kept->has |= part;
    return 0;
}

typedef struct kv_out {
    kv **arr;
    size_t *n, *cap;
} kv_out;

static void item_row(wtx *w, store__kent *kept, const MDB_val *k, const MDB_val *v, void *ctx)
{
    kv_out *o = ctx;
    kv_push(o->arr, o->n, o->cap, k->mv_data, k->mv_size, v->mv_data, v->mv_size);
    store__keep_row_add(w->s->wkeep, &kept->items, k->mv_data, k->mv_size, NULL, v->mv_data, v->mv_size);
}

/* The items an entity holds now, copied out (LMDB memory may move on the next write), appended to *arr. */
static int old_items(wtx *w, char kind, const char *id, kv **arr, size_t *n, size_t *cap)
{
    char prefix[EVT_MAX_ID + 8];
    int pl = entity_prefix(prefix, sizeof prefix, kind, id);
    if (pl < 0) return 0;
    store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
    if (kept->has & STORE_KEEP_ITEMS) {
        for (size_t i = 0; i < kept->items.n; i++)
            kv_push(arr, n, cap, kept->items.v[i].key, strlen(kept->items.v[i].key), kept->items.v[i].val,
                    kept->items.v[i].len);
        return 0;
    }
    kv_out o = {arr, n, cap};
    return scan_into_keep(w, w->s->items, prefix, pl, kept, STORE_KEEP_ITEMS, item_row, &o);
}

int store__item_remove(wtx *w, const kv *old)
{
    Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, old->len, old->val);
    if (!it) return MDB_CORRUPTED;
    int rc = index_item(w, it, old->key, 1);
    tower__v1__view_item__free_unpacked(it, NULL);
    if (rc) return rc;
    MDB_val k = {strlen(old->key), old->key};
    rc = mdb_del(w->txn, w->s->items, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int store__item_put(wtx *w, const kv *nw)
{
    int rc = index_item(w, nw->pb, nw->key, 0);
    if (rc) return rc;
    MDB_val k = {strlen(nw->key), nw->key}, v = {nw->len, nw->val};
    return mdb_put(w->txn, w->s->items, &k, &v, 0);
}

static int ts_eq(const Tower__V1__Timestamp *a, const Tower__V1__Timestamp *b)
{
    if (!a || !b) return a == b;
    return a->seconds == b->seconds && a->nanos == b->nanos;
}

static int str_eq(const char *a, const char *b) { return a && b ? strcmp(a, b) == 0 : a == b; }

/* Do two items of one key have the very same index entries and counts (index_item, store__life_index)? */
static int same_index(const Tower__V1__ViewItem *a, const Tower__V1__ViewItem *b)
{
    return str_eq(a->view, b->view) && ts_eq(a->since, b->since) && str_eq(a->warehouse_id, b->warehouse_id) &&
           str_eq(a->carrier_id, b->carrier_id) && str_eq(a->rule, b->rule) &&
           !a->acknowledged_at == !b->acknowledged_at && ts_eq(a->sla_due_at, b->sla_due_at) &&
           ts_eq(a->snoozed_until, b->snoozed_until);
}

/* An item whose content changed under its key: its index entries are rewritten only if they differ. */
static int item_update(wtx *w, const kv *old, const kv *nw)
{
    Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, old->len, old->val);
    if (!it) return MDB_CORRUPTED;
    int rc = 0;
    if (!same_index(it, nw->pb)) {
        rc = index_item(w, it, old->key, 1);
        if (!rc) rc = index_item(w, nw->pb, nw->key, 0);
    }
    tower__v1__view_item__free_unpacked(it, NULL);
    if (rc) return rc;
    MDB_val k = {strlen(nw->key), nw->key}, v = {nw->len, nw->val};
    return mdb_put(w->txn, w->s->items, &k, &v, 0);
}

/* When a removed item closed: its resolution, else the latest event of the batch (what cleared it). */
static int64_t closed_ns(const wtx *w, const Tower__V1__ViewItem *it, const fold_result *res)
{
    int64_t ns = w->latest_ns;
    for (size_t i = 0; res && i < res->n_closed; i++)
        if (it->exception_id && strcmp(res->closed[i].exid, it->exception_id) == 0 && res->closed[i].pb.closed_at)
            ns = store__ts_ns(res->closed[i].pb.closed_at);
    return ns;
}

static void observe_remove(wtx *w, const kv *old, const fold_result *res)
{
    Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, old->len, old->val);
    fold_view v;
    if (it && view_of(it, &v) == 0) store__life_observe_close(&w->life, it, (int)v, closed_ns(w, it, res));
    if (it) tower__v1__view_item__free_unpacked(it, NULL);
}

/* The first acknowledgement of an item (new, or updated from an unacknowledged one). */
void store__observe_ack(wtx *w, const kv *old, const kv *nw)
{
    if (!nw->pb->acknowledged_at) return;
    fold_view v;
    if (view_of(nw->pb, &v) != 0) return;
    if (old) {
        Tower__V1__ViewItem *o = tower__v1__view_item__unpack(NULL, old->len, old->val);
        int had = !o || o->acknowledged_at;
        if (o) tower__v1__view_item__free_unpacked(o, NULL);
        if (had) return;
    }
    store__life_observe_ack(&w->life, nw->pb, (int)v);
}

/* The i-th entity of a process (its order first, if it has one): its id, and its kind in *kind. */
static const char *process_entity(const char *order_id, char *const *sids, size_t i, char *kind)
{
    if (order_id && i == 0) {
        *kind = 'o';
        return order_id;
    }
    *kind = 's';
    return sids[i - (order_id ? 1 : 0)];
}

/* Whether key is under prefix ("<kind>:<id>|", pl bytes). */
static int under(const char *key, const char *prefix, int pl) { return strncmp(key, prefix, (size_t)pl) == 0; }

/* An item or due under an entity not of the process (none is derived so): what is kept of it is dropped. */
static void keep_stray(wtx *w, const char *key, unsigned part)
{
    const char *bar = strchr(key, '|');
    store__kent *kept = bar ? store__keep_get(w->s->wkeep, key, (size_t)(bar - key), 0) : NULL;
    if (kept) store__keep_reset(w->s->wkeep, kept, part);
}

/* After a diff: the process's entities hold exactly the n new records of recs (of one part, STORE_KEEP_ITEMS
 * or STORE_KEEP_DUES), each kept under its entity by keep(recs, j). */
typedef struct keep_rec_ops {
    unsigned part;
    const char *(*key)(const void *recs, size_t j);
    void (*keep)(wtx *w, store__kent *kept, const void *recs, size_t j);
} keep_rec_ops;

static void keep_after_diff(wtx *w, const char *order_id, char *const *sids, size_t ns, const keep_rec_ops *ops,
                            const void *recs, size_t n)
{
    char *placed = ct_calloc(n ? n : 1, 1);
    for (size_t e = 0; e < ns + (order_id ? 1 : 0); e++) {
        char kind, prefix[EVT_MAX_ID + 8];
        const char *id = process_entity(order_id, sids, e, &kind);
        int pl = entity_prefix(prefix, sizeof prefix, kind, id);
        if (pl < 0) continue;
        store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
        store__keep_reset(w->s->wkeep, kept, ops->part);
        for (size_t j = 0; j < n; j++) {
            if (!under(ops->key(recs, j), prefix, pl)) continue;
            ops->keep(w, kept, recs, j);
            placed[j] = 1;
        }
        kept->has |= ops->part;
    }
    for (size_t j = 0; j < n; j++)
        if (!placed[j]) keep_stray(w, ops->key(recs, j), ops->part);
    free(placed);
}

static const char *item_key(const void *recs, size_t j) { return ((const kv *)recs)[j].key; }

static void item_keep(wtx *w, store__kent *kept, const void *recs, size_t j)
{
    const kv *x = &((const kv *)recs)[j];
    store__keep_row_add(w->s->wkeep, &kept->items, x->key, strlen(x->key), NULL, x->val, x->len);
}

static const keep_rec_ops item_ops = {STORE_KEEP_ITEMS, item_key, item_keep};

/* Replace the items of the process's entities by the derived ones; record what changed. */
static int diff_items(wtx *w, const store__process *p, kv *old, size_t n_old, const fold_result *res)
{
    kv *nw = ct_calloc(res->n_items ? res->n_items : 1, sizeof *nw);
    for (size_t i = 0; i < res->n_items; i++) {
        const Tower__V1__ViewItem *pb = &res->items[i].pb;
        nw[i].key = res->items[i].key;
        nw[i].len = tower__v1__view_item__get_packed_size(pb);
        nw[i].val = ct_malloc(nw[i].len);
        tower__v1__view_item__pack(pb, nw[i].val);
        nw[i].pb = pb;
    }
    if (n_old) qsort(old, n_old, sizeof *old, kv_cmp);
    qsort(nw, res->n_items, sizeof *nw, kv_cmp);

    int rc = 0;
    size_t i = 0, j = 0;
    while (rc == 0 && (i < n_old || j < res->n_items)) {
        int c = i == n_old ? 1 : j == res->n_items ? -1 : strcmp(old[i].key, nw[j].key);
        if (c < 0) {
            observe_remove(w, &old[i], res);
            rc = store__item_remove(w, &old[i]);
            if (!rc) store__change_add(w, STORE_OP_REMOVE, old[i].val, old[i].len);
            i++;
        } else if (c > 0) {
            store__observe_ack(w, NULL, &nw[j]);
            rc = store__item_put(w, &nw[j]);
            if (!rc) store__change_add(w, STORE_OP_ADD, nw[j].val, nw[j].len);
            j++;
        } else {
            if (old[i].len != nw[j].len || memcmp(old[i].val, nw[j].val, old[i].len) != 0) {
                store__observe_ack(w, &old[i], &nw[j]);
                rc = item_update(w, &old[i], &nw[j]);
                if (!rc) store__change_add(w, STORE_OP_UPDATE, nw[j].val, nw[j].len);
            }
            i++;
            j++;
        }
    }
    if (!rc) keep_after_diff(w, p->order_id, p->sids, p->ns, &item_ops, nw, res->n_items);
    for (size_t k = 0; k < res->n_items; k++) free(nw[k].val);
    free(nw);
    return rc;
}

/* ---- the SLA due index ---------------------------------------------------------------- */

typedef struct due_rec {
    char *key;                         /* "o:<id>|<rule>" */
    unsigned char tk[STORE__TIME_KEY]; /* the due time */
    unsigned char *val;                /* new dues: the packed item; old ones: as kept (borrowed), or NULL */
    size_t len;
    int keep;
} due_rec;

static due_rec *due_push(due_rec **arr, size_t *n, const char *key, size_t kl, const unsigned char *tk)
{
    *arr = ct_realloc(*arr, (*n + 1) * sizeof **arr);
    due_rec *d = &(*arr)[(*n)++];
    memset(d, 0, sizeof *d);
    d->key = ct_strndup(key, kl);
    memcpy(d->tk, tk, STORE__TIME_KEY);
    return d;
}

typedef struct due_out {
    due_rec **arr;
    size_t *n;
} due_out;

static void due_row(wtx *w, store__kent *kept, const MDB_val *k, const MDB_val *v, void *ctx)
{
    if (v->mv_size != STORE__TIME_KEY) return;
    due_out *o = ctx;
    due_rec *d = due_push(o->arr, o->n, k->mv_data, k->mv_size, v->mv_data);
    store__keep_row_add(w->s->wkeep, &kept->dues, d->key, strlen(d->key), d->tk, NULL, 0);
}

/* The dues an entity has now (from duek), appended to *arr. */
static int old_dues(wtx *w, char kind, const char *id, due_rec **arr, size_t *n)
{
    char prefix[EVT_MAX_ID + 8];
    int pl = entity_prefix(prefix, sizeof prefix, kind, id);
    if (pl < 0) return 0;
    store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
    if (kept->has & STORE_KEEP_DUES) {
        for (size_t i = 0; i < kept->dues.n; i++) {
            const store__krow *r = &kept->dues.v[i];
            due_rec *d = due_push(arr, n, r->key, strlen(r->key), r->tk);
            d->val = r->val;
            d->len = r->len;
        }
        return 0;
    }
    due_out o = {arr, n};
    return scan_into_keep(w, w->s->duek, prefix, pl, kept, STORE_KEEP_DUES, due_row, &o);
}

static const char *due_key(const void *recs, size_t j) { return ((const due_rec *)recs)[j].key; }

static void due_keep(wtx *w, store__kent *kept, const void *recs, size_t j)
{
    const due_rec *d = &((const due_rec *)recs)[j];
    store__keep_row_add(w->s->wkeep, &kept->dues, d->key, strlen(d->key), d->tk, d->val, d->len);
}

static const keep_rec_ops due_ops = {STORE_KEEP_DUES, due_key, due_keep};

/* dues key: the due time, then the entity|rule key. */
static size_t due_index_key(unsigned char *buf, const unsigned char *tk, const char *key)
{
    size_t kl = strlen(key);
    memcpy(buf, tk, STORE__TIME_KEY);
    memcpy(buf + STORE__TIME_KEY, key, kl);
    return STORE__TIME_KEY + kl;
}

/* Replace the dues of the process's entities by the derived ones, in the batch's transaction:
 * the index survives restarts and rebuilds like the views. Unchanged dues are not rewritten. */
static int diff_dues(wtx *w, const char *order_id, char **sids, size_t ns, const fold_result *res)
{
    due_rec *old = NULL, *nw = NULL;
    size_t n_old = 0, n_new = 0;
    unsigned char kb[STORE__TIME_KEY + 2 * EVT_MAX_ID + 16];
    int rc = 0;
    if (order_id) rc = old_dues(w, 'o', order_id, &old, &n_old);
    for (size_t i = 0; i < ns && !rc; i++) rc = old_dues(w, 's', sids[i], &old, &n_old);

    for (size_t i = 0; i < res->n_dues && !rc; i++) {
        const fold_due *d = &res->dues[i];
        if (strlen(d->entity) > EVT_MAX_ID || strlen(d->rule) > EVT_MAX_ID) continue; /* cannot be a key */
        nw = ct_realloc(nw, (n_new + 1) * sizeof *nw);
        due_rec *x = &nw[n_new++];
        memset(x, 0, sizeof *x);
        x->key = entity_key_dup(d->kind, d->entity, d->rule);
        store__time_key(x->tk, &d->due);
        Tower__V1__ViewItem it = TOWER__V1__VIEW_ITEM__INIT;
        Tower__V1__Timestamp due = d->due;
        it.since = &due;
        it.key = x->key;
        it.rule = (char *)d->rule;
        it.order_id = (char *)d->order_id;
        it.shipment_id = (char *)d->shipment_id;
        it.warehouse_id = (char *)d->warehouse;
        it.carrier_id = (char *)d->carrier;
        x->len = tower__v1__view_item__get_packed_size(&it);
        x->val = ct_malloc(x->len);
        tower__v1__view_item__pack(&it, x->val);
        /* Unchanged (same entity, rule, time and content)? */
        for (size_t j = 0; j < n_old; j++) {
            if (old[j].keep || strcmp(old[j].key, x->key) != 0 || memcmp(old[j].tk, x->tk, STORE__TIME_KEY) != 0)
                continue;
            MDB_val k = {due_index_key(kb, x->tk, x->key), kb}, v = {old[j].len, old[j].val};
            if ((old[j].val || mdb_get(w->txn, w->s->dues, &k, &v) == 0) && v.mv_size == x->len &&
                memcmp(v.mv_data, x->val, x->len) == 0)
                old[j].keep = x->keep = 1;
            break;
        }
    }
    for (size_t j = 0; j < n_old && !rc; j++) {
        if (old[j].keep) continue;
        MDB_val k = {due_index_key(kb, old[j].tk, old[j].key), kb};
        rc = mdb_del(w->txn, w->s->dues, &k, NULL);
        if (rc == MDB_NOTFOUND) rc = 0;
        if (!rc) {
            MDB_val ek = {strlen(old[j].key), old[j].key};
            rc = mdb_del(w->txn, w->s->duek, &ek, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        }
    }
    for (size_t i = 0; i < n_new && !rc; i++) {
        if (nw[i].keep) continue;
        MDB_val k = {due_index_key(kb, nw[i].tk, nw[i].key), kb}, v = {nw[i].len, nw[i].val};
        rc = mdb_put(w->txn, w->s->dues, &k, &v, 0);
        if (!rc) {
            MDB_val ek = {strlen(nw[i].key), nw[i].key}, ev = {STORE__TIME_KEY, nw[i].tk};
            rc = mdb_put(w->txn, w->s->duek, &ek, &ev, 0);
        }
    }
    if (!rc) keep_after_diff(w, order_id, sids, ns, &due_ops, nw, n_new); /* after the last use of old[].val */
    for (size_t j = 0; j < n_old; j++) free(old[j].key);
    for (size_t i = 0; i < n_new; i++) {
        free(nw[i].key);
        free(nw[i].val);
    }
    free(old);
    free(nw);
    return rc;
}

/* The items the entities of a process hold now, copied out into *old (caller frees with kv_free). */
static int process_items(wtx *w, const store__process *p, kv **old, size_t *n_old)
{
    size_t cap = 0;
    int rc = p->order_id ? old_items(w, 'o', p->order_id, old, n_old, &cap) : 0;
    for (size_t i = 0; i < p->ns && !rc; i++) rc = old_items(w, 's', p->sids[i], old, n_old, &cap);
    return rc;
}

static void kv_free(kv *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(arr[i].key);
        free(arr[i].val);
    }
    free(arr);
}

/* Derive a process (an order and its shipments, or one unlinked shipment) and store its items. */
int store__derive_process(wtx *w, const char *order_id, const char *lone_shipment)
{
    store__process p;
    fold_result res = {0};
    kv *old = NULL;
    size_t n_old = 0;
    int rc = store__load_process(w->load, order_id, lone_shipment, &p);
    if (!rc) {
        fold_process fp = store__process_fold(&p);
        store__refq rq;
        fold_derive_ref(&fp, w->s->sla, store__ref_fold(&rq, w->txn, w->s), &res);
        rc = process_items(w, &p, &old, &n_old);
    }
    if (!rc) rc = diff_items(w, &p, old, n_old, &res);
    if (!rc) rc = diff_dues(w, order_id, p.sids, p.ns, &res);
    if (!rc && order_id) {
        /* Predicted risk: the order's lead-time sample and open record (store_risk.c). */
        fold_process fp = store__process_fold(&p);
        store__risk_facts rf;
        store__risk_facts_of(&fp, res.stage, &rf);
        char ek[EVT_MAX_ID + 8];
        int kl = store__entity_key(ek, sizeof ek, 'o', order_id);
        store__kent *kept = kl < 0 ? NULL : store__keep_get(w->s->wkeep, ek, (size_t)kl, 1);
        rc = store__risk_update(w->txn, w->s, order_id, &rf, w->s->wkeep, kept);
    }
    if (!rc) {
        char **prefixes = ct_calloc(p.ns + 1, sizeof *prefixes);
        size_t np = 0;
        if (order_id) prefixes[np++] = entity_key_dup('o', order_id, "");
        for (size_t i = 0; i < p.ns; i++) prefixes[np++] = entity_key_dup('s', p.sids[i], "");
        rc = store__closed_diff(w->txn, w->s, prefixes, np, res.closed, res.n_closed);
        for (size_t i = 0; i < np; i++) free(prefixes[i]);
        free(prefixes);
    }
    fold_result_free(&res);
    kv_free(old, n_old);
    store__process_free(&p);
    return rc;
}
