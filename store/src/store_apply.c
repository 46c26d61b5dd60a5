/* The store's write path: one batch of events in one LMDB transaction, with its view changes and checkpoint. */
#include "store_int.h"
#include "store_conform_int.h"
#include "store_ref_int.h"
#include "store_risk_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small set of strings, for the entities a batch touched ------------ */

typedef struct strset {
    char **slot;
    size_t cap, n;
    char **order;   /* insertion order, so that processing is deterministic */
} strset;

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->order[i]);
    free(s->slot);
    free(s->order);
    memset(s, 0, sizeof *s);
}

static int strset_has(const strset *s, const char *str)
{
    if (!s->cap) return 0;
    size_t h = ct_hash64(str, strlen(str)) & (s->cap - 1);
    while (s->slot[h]) {
        if (strcmp(s->slot[h], str) == 0) return 1;
        h = (h + 1) & (s->cap - 1);
    }
    return 0;
}

static int strset_add(strset *s, const char *str)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        char **slot = ct_calloc(cap, sizeof *slot);
        for (size_t i = 0; i < s->n; i++) {
            size_t h = ct_hash64(s->order[i], strlen(s->order[i])) & (cap - 1);
            while (slot[h]) h = (h + 1) & (cap - 1);
            slot[h] = s->order[i];
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
        s->order = ct_realloc(s->order, cap * sizeof *s->order);
    }
    size_t h = ct_hash64(str, strlen(str)) & (s->cap - 1);
    while (s->slot[h]) {
        if (strcmp(s->slot[h], str) == 0) return 0;
        h = (h + 1) & (s->cap - 1);
    }
    s->slot[h] = s->order[s->n++] = ct_strdup(str);
    return 1;
}

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

/* The writer's loader's memory blocks: large, a batch decodes many events. */
#define BATCH_ARENA_CHUNK ((size_t)1 << 20)
/* The decoded events the writer keeps across batches, in bytes: the events of the processes that are still
 * moving (a process's events come close together in the stream) are then read and decoded once. */
#define WRITER_CACHE_BYTES ((size_t)256 << 20)

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

static void part_count(wtx *w, fold_view v, char kind, const char *part, int64_t d)
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
        if (i > 0) part_count(w, v, kinds[i], idx[i].part, del ? -1 : 1);
        hour_count(w, v, i ? kinds[i] : '-', i ? idx[i].part : "", store__ts_ns(it->since), del ? -1 : 1);
    }
    int rc = store__life_index(w->txn, w->s, it, (int)v, key, del);
    if (rc) return rc;
    w->count_delta[v] += del ? -1 : 1;
    if (!it->acknowledged_at) w->unacked_delta[v] += del ? -1 : 1;
    return 0;
}

static void change_add(wtx *w, store_op op, const void *packed, size_t len)
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

typedef struct kv {
    char *key;
    unsigned char *val;
    size_t len;
    const Tower__V1__ViewItem *pb;  /* new items only: the derived item */
} kv;

static int kv_cmp(const void *a, const void *b) { return strcmp(((const kv *)a)->key, ((const kv *)b)->key); }

/* The items an entity holds now, copied out (LMDB memory may move on the next write). */
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

static int old_items(wtx *w, char kind, const char *id, kv **arr, size_t *n, size_t *cap)
{
    char prefix[EVT_MAX_ID + 8];
    int pl = entity_prefix(prefix, sizeof prefix, kind, id);
    if (pl < 0) return 0;
    store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
    if (kept->has & STORE_KEEP_ITEMS) {
        for (size_t i = 0; i < kept->n_items; i++)
            kv_push(arr, n, cap, kept->items[i].key, strlen(kept->items[i].key), kept->items[i].val, kept->items[i].len);
        return 0;
    }
    store__keep_reset(kept, STORE_KEEP_ITEMS);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(w->txn, w->s->items, &c);
    if (rc) return rc;
    MDB_val k = {(size_t)pl, prefix}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= (size_t)pl && memcmp(k.mv_data, prefix, (size_t)pl) == 0) {
        kv_push(arr, n, cap, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        store__keep_item_add(w->s->wkeep, kept, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        store__keep_reset(kept, STORE_KEEP_ITEMS);
        return rc;
    }
    kept->has |= STORE_KEEP_ITEMS;
    return 0;
}

static int item_remove(wtx *w, const kv *old)
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

static int item_put(wtx *w, const kv *nw)
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
static void observe_ack(wtx *w, const kv *old, const kv *nw)
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
    if (kept) store__keep_reset(kept, part);
}

/* After diff_items: the process's entities hold exactly the new items (nw, n of them). */
static void keep_items(wtx *w, const char *order_id, char *const *sids, size_t ns, const kv *nw, size_t n)
{
    char *placed = ct_calloc(n ? n : 1, 1);
    for (size_t e = 0; e < ns + (order_id ? 1 : 0); e++) {
        char kind, prefix[EVT_MAX_ID + 8];
        const char *id = process_entity(order_id, sids, e, &kind);
        int pl = entity_prefix(prefix, sizeof prefix, kind, id);
        if (pl < 0) continue;
        store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
        store__keep_reset(kept, STORE_KEEP_ITEMS);
        for (size_t j = 0; j < n; j++) {
            if (!under(nw[j].key, prefix, pl)) continue;
            store__keep_item_add(w->s->wkeep, kept, nw[j].key, strlen(nw[j].key), nw[j].val, nw[j].len);
            placed[j] = 1;
        }
        kept->has |= STORE_KEEP_ITEMS;
    }
    for (size_t j = 0; j < n; j++)
        if (!placed[j]) keep_stray(w, nw[j].key, STORE_KEEP_ITEMS);
    free(placed);
}

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
            rc = item_remove(w, &old[i]);
            if (!rc) change_add(w, STORE_OP_REMOVE, old[i].val, old[i].len);
            i++;
        } else if (c > 0) {
            observe_ack(w, NULL, &nw[j]);
            rc = item_put(w, &nw[j]);
            if (!rc) change_add(w, STORE_OP_ADD, nw[j].val, nw[j].len);
            j++;
        } else {
            if (old[i].len != nw[j].len || memcmp(old[i].val, nw[j].val, old[i].len) != 0) {
                observe_ack(w, &old[i], &nw[j]);
                rc = item_update(w, &old[i], &nw[j]);
                if (!rc) change_add(w, STORE_OP_UPDATE, nw[j].val, nw[j].len);
            }
            i++;
            j++;
        }
    }
    if (!rc) keep_items(w, p->order_id, p->sids, p->ns, nw, res->n_items);
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

/* The dues an entity has now (from duek), appended to *arr. */
static int old_dues(wtx *w, char kind, const char *id, due_rec **arr, size_t *n)
{
    char prefix[EVT_MAX_ID + 8];
    int pl = entity_prefix(prefix, sizeof prefix, kind, id);
    if (pl < 0) return 0;
    store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
    if (kept->has & STORE_KEEP_DUES) {
        for (size_t i = 0; i < kept->n_dues; i++) {
            due_rec *d = due_push(arr, n, kept->dues[i].key, strlen(kept->dues[i].key), kept->dues[i].tk);
            d->val = kept->dues[i].val;
            d->len = kept->dues[i].len;
        }
        return 0;
    }
    store__keep_reset(kept, STORE_KEEP_DUES);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(w->txn, w->s->duek, &c);
    if (rc) return rc;
    MDB_val k = {(size_t)pl, prefix}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= (size_t)pl && memcmp(k.mv_data, prefix, (size_t)pl) == 0) {
        if (v.mv_size == STORE__TIME_KEY) {
            due_rec *d = due_push(arr, n, k.mv_data, k.mv_size, v.mv_data);
            store__keep_due_add(w->s->wkeep, kept, d->key, d->tk, NULL, 0);
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        store__keep_reset(kept, STORE_KEEP_DUES);
        return rc;
    }
    kept->has |= STORE_KEEP_DUES;
    return 0;
}

/* After diff_dues: the process's entities have exactly the new dues (nw, n of them). */
static void keep_dues(wtx *w, const char *order_id, char *const *sids, size_t ns, const due_rec *nw, size_t n)
{
    char *placed = ct_calloc(n ? n : 1, 1);
    for (size_t e = 0; e < ns + (order_id ? 1 : 0); e++) {
        char kind, prefix[EVT_MAX_ID + 8];
        const char *id = process_entity(order_id, sids, e, &kind);
        int pl = entity_prefix(prefix, sizeof prefix, kind, id);
        if (pl < 0) continue;
        store__kent *kept = store__keep_get(w->s->wkeep, prefix, (size_t)pl - 1, 1);
        store__keep_reset(kept, STORE_KEEP_DUES);
        for (size_t j = 0; j < n; j++) {
            if (!under(nw[j].key, prefix, pl)) continue;
            store__keep_due_add(w->s->wkeep, kept, nw[j].key, nw[j].tk, nw[j].val, nw[j].len);
            placed[j] = 1;
        }
        kept->has |= STORE_KEEP_DUES;
    }
    for (size_t j = 0; j < n; j++)
        if (!placed[j]) keep_stray(w, nw[j].key, STORE_KEEP_DUES);
    free(placed);
}

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
    if (!rc) keep_dues(w, order_id, sids, ns, nw, n_new); /* after the last use of old[].val */
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
static int derive_process(wtx *w, const char *order_id, const char *lone_shipment)
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

/* Find the process of a shipment whose link the batch cannot have changed. */
static int place(wtx *w, const char *sid, strset *lone)
{
    MDB_val k = {strlen(sid), (void *)sid}, v;
    int rc = mdb_get(w->txn, w->s->links, &k, &v);
    if (rc == MDB_NOTFOUND) {
        strset_add(lone, sid);
        return 0;
    }
    if (rc) return rc;
    char *oid = ct_strndup(v.mv_data, v.mv_size);
    strset_add(&w->orders, oid);
    free(oid);
    return 0;
}

/* Recompute the link of a shipment the batch touched; both its old and new order need deriving. */
static int relink(wtx *w, const char *sid, strset *lone)
{
    store__events l = {0};
    int rc = store__load_entity(w->load, 's', sid, &l);
    if (rc) goto out;
    fold_entity e = {sid, l.ev, l.n};
    const char *now = fold_link(&e);

    MDB_val k = {strlen(sid), (void *)sid}, v;
    char *was = NULL;
    rc = mdb_get(w->txn, w->s->links, &k, &v);
    if (rc == 0) was = ct_strndup(v.mv_data, v.mv_size);
    else if (rc != MDB_NOTFOUND) goto out;
    rc = 0;

    if (!(was && now && strcmp(was, now) == 0)) {
        if (was) {
            MDB_val ok = {strlen(was), was}, ov = {strlen(sid), (void *)sid};
            rc = mdb_del(w->txn, w->s->oship, &ok, &ov);
            if (rc && rc != MDB_NOTFOUND) goto done;
            rc = mdb_del(w->txn, w->s->links, &k, NULL);
            if (rc && rc != MDB_NOTFOUND) goto done;
            rc = 0;
            strset_add(&w->orders, was);
        }
        if (now) {
            MDB_val nv = {strlen(now), (void *)now}, ok = {strlen(now), (void *)now}, ov = {strlen(sid), (void *)sid};
            rc = mdb_put(w->txn, w->s->links, &k, &nv, 0);
            if (!rc) rc = mdb_put(w->txn, w->s->oship, &ok, &ov, 0);
            if (rc) goto done;
        }
    }
    if (now) strset_add(&w->orders, now);
    else strset_add(lone, sid);
done:
    free(was);
out:
    store__events_free(&l);
    return rc;
}

/* ---- one input -------------------------------------------------------------------- */

static int timeline_add(wtx *w, char kind, const char *id, const unsigned char *tk, const char *eid)
{
    char key[EVT_MAX_ID + 8];
    int kl = store__entity_key(key, sizeof key, kind, id);
    if (kl < 0) return MDB_BAD_VALSIZE;
    unsigned char val[STORE__TIME_KEY + EVT_MAX_EVENT_ID];
    size_t el = strlen(eid);
    memcpy(val, tk, STORE__TIME_KEY);
    memcpy(val + STORE__TIME_KEY, eid, el);
    MDB_val k = {(size_t)kl, key}, v = {STORE__TIME_KEY + el, val};
    int rc = mdb_put(w->txn, w->s->tl, &k, &v, MDB_NODUPDATA);
    if (!rc) store__keep_tl_added(w->s->wkeep, key, (size_t)kl, tk, eid);
    if (rc == MDB_KEYEXIST) rc = 0;
    if (!rc && kind == 'o') strset_add(&w->orders, id);
    if (!rc && kind == 's') strset_add(&w->ships, id);
    if (!rc && kind == 'd') strset_add(&w->dls, id);
    return rc;
}

/* An action joins the timeline of what its exception id names, whatever its envelope says: the order's or
 * shipment's (whose process is then derived again) or the dead letter's. */
static int index_action(wtx *w, const evt_event *e, const unsigned char *tk)
{
    evt_exid x;
    if (evt_exid_parse(evt_action_of(e).exception_id, &x, NULL) != 0) return 0; /* validated before */
    return timeline_add(w, x.kind, x.entity, tk, e->event_id);
}

static int index_event(wtx *w, const evt_event *e)
{
    unsigned char tk[STORE__TIME_KEY];
    store__time_key(tk, e->occurred_at);
    if (evt_is_action(e)) return index_action(w, e, tk);
    int64_t ns = e->occurred_at->seconds * 1000000000LL + e->occurred_at->nanos;
    if (ns > w->latest_ns) w->latest_ns = ns;
    int rc = 0;
    if (e->order_id) rc = timeline_add(w, 'o', e->order_id, tk, e->event_id);
    if (!rc && e->shipment_id) rc = timeline_add(w, 's', e->shipment_id, tk, e->event_id);
    if (!rc && e->shipment_id && e->order_id) strset_add(&w->relinks, e->shipment_id);
    if (!rc && e->route_id) rc = timeline_add(w, 'r', e->route_id, tk, e->event_id);
    if (!rc && e->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED && e->order_id &&
        e->order_created->customer_id && *e->order_created->customer_id) {
        /* Support asks "what is stuck for customer C": an index from customer to orders. */
        const char *cid = e->order_created->customer_id;
        MDB_val k = {strlen(cid) > 400 ? 400 : strlen(cid), (void *)cid}, v = {strlen(e->order_id), e->order_id};
        rc = mdb_put(w->txn, w->s->cust, &k, &v, MDB_NODUPDATA);
        if (rc == MDB_KEYEXIST) rc = 0;
    }
    if (rc) return rc;
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED:
        for (size_t i = 0; i < e->route_requested->n_shipment_ids && !rc; i++)
            rc = timeline_add(w, 's', e->route_requested->shipment_ids[i], tk, e->event_id);
        break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_FAILED:
        for (size_t i = 0; i < e->route_failed->n_shipment_ids && !rc; i++)
            rc = timeline_add(w, 's', e->route_failed->shipment_ids[i], tk, e->event_id);
        break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED:
        for (size_t i = 0; i < e->route_planned->n_stops && !rc; i++)
            rc = timeline_add(w, 's', e->route_planned->stops[i]->shipment_id, tk, e->event_id);
        break;
    default: break;
    }
    return rc;
}

/* A rejected message becomes a dead letter, unless the very same bytes were rejected before. */
static int dead_letter(wtx *w, uint64_t seq, const store_input *in, evt_code code, const char *message,
                       const char *event_id, int64_t now_ns, store_outcome *out)
{
    unsigned char hk[8], sk[8];
    store__put_u64(hk, ct_hash64(in->raw, in->raw_len));
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(w->txn, w->s->dlraw, &c);
    if (rc) return rc;
    MDB_val k = {8, hk}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    while (rc == 0) {
        MDB_val dk = {8, v.mv_data}, dv;
        if (mdb_get(w->txn, w->s->dlq, &dk, &dv) == 0) {
            Tower__V1__DeadLetter *d = tower__v1__dead_letter__unpack(NULL, dv.mv_size, dv.mv_data);
            int same = d && d->has_raw && d->raw.len == in->raw_len &&
                       (in->raw_len == 0 || memcmp(d->raw.data, in->raw, in->raw_len) == 0);
            if (d) tower__v1__dead_letter__free_unpacked(d, NULL);
            if (same) {
                mdb_cursor_close(c);
                w->n_dups++;
                *out = STORE_DUPLICATE;
                return 0;
            }
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) return rc;

    Tower__V1__Timestamp recv = TOWER__V1__TIMESTAMP__INIT;
    recv.has_seconds = recv.has_nanos = 1;
    recv.seconds = now_ns / 1000000000LL;
    recv.nanos = (int32_t)(now_ns % 1000000000LL);
    Tower__V1__ViewItem item = TOWER__V1__VIEW_ITEM__INIT;
    item.view = (char *)fold_view_name(FOLD_VIEW_DEAD_LETTERS);
    item.since = &recv;
    item.received_at = &recv;
    item.has_seq = 1;
    item.seq = seq;
    item.code = (char *)evt_code_str(code);
    item.message = (char *)message;
    item.event_id = event_id && *event_id ? (char *)event_id : NULL;
    char dkey[48];
    snprintf(dkey, sizeof dkey, "d:%020llu|dead_letters", (unsigned long long)seq);
    item.key = dkey;
    Tower__V1__DeadLetter dl = TOWER__V1__DEAD_LETTER__INIT;
    dl.item = &item;
    dl.has_raw = 1;
    dl.raw.data = (uint8_t *)in->raw;
    dl.raw.len = in->raw_len;
    dl.content_type = (char *)(in->content_type ? in->content_type : "application/json");

    size_t len = tower__v1__dead_letter__get_packed_size(&dl);
    uint8_t *buf = ct_malloc(len);
    tower__v1__dead_letter__pack(&dl, buf);
    store__put_u64(sk, seq);
    MDB_val dk = {8, sk}, dv = {len, buf};
    rc = mdb_put(w->txn, w->s->dlq, &dk, &dv, 0);
    free(buf);
    if (!rc) {
        MDB_val hv = {8, sk};
        rc = mdb_put(w->txn, w->s->dlraw, &k, &hv, 0);
    }
    if (!rc) {
        /* Its item is derived with the batch (dl_derive): actions on it may have come first. */
        char sq[24];
        snprintf(sq, sizeof sq, "%llu", (unsigned long long)seq);
        strset_add(&w->dls, sq);
    }
    /* Counted by producer and code (store_conform.c). */
    if (!rc) rc = store__conform_dead(w->txn, w->s, in, item.code, message, event_id, seq, now_ns);
    if (!rc) {
        w->n_dead++;
        *out = STORE_DEAD_LETTER;
    }
    return rc;
}

/* A dead letter's item: as rejected, with the lifecycle its actions give; resolved, it leaves the view for
 * the closed list (a reopen brings it back). Actions on a dead letter not recorded (yet) wait for it. */
static int dl_derive(wtx *w, const char *seq_dec)
{
    unsigned long long seq = strtoull(seq_dec, NULL, 10);
    unsigned char sk[8];
    store__put_u64(sk, seq);
    MDB_val k = {8, sk}, v;
    int rc = mdb_get(w->txn, w->s->dlq, &k, &v);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    Tower__V1__DeadLetter *d = tower__v1__dead_letter__unpack(NULL, v.mv_size, v.mv_data);
    if (!d || !d->item || !d->item->key) {
        if (d) tower__v1__dead_letter__free_unpacked(d, NULL);
        return MDB_CORRUPTED;
    }
    Tower__V1__ViewItem *it = d->item;
    char exid[EVT_MAX_EXID + 1];
    evt_exid_build(exid, sizeof exid, it->key, it->since);
    it->exception_id = exid;
    store__events acts = {0};
    rc = store__load_entity(w->load, 'd', seq_dec, &acts);
    const evt_event *resolved = rc ? NULL : fold_life_apply(it, acts.ev, acts.n);

    kv old = {0};
    MDB_val ik = {strlen(it->key), it->key}, iv;
    int have = 0;
    if (!rc) {
        rc = mdb_get(w->txn, w->s->items, &ik, &iv);
        have = rc == 0;
        if (have) {
            old.key = it->key;
            old.val = ct_malloc(iv.mv_size);
            memcpy(old.val, iv.mv_data, iv.mv_size);
            old.len = iv.mv_size;
        }
        if (rc == MDB_NOTFOUND) rc = 0;
    }
    char *ck = store__closed_key(it->key, exid);
    if (!rc && resolved) {
        if (have) {
            int64_t cns = resolved->occurred_at->seconds * 1000000000LL + resolved->occurred_at->nanos;
            store__life_observe_close(&w->life, it, FOLD_VIEW_DEAD_LETTERS, cns);
            rc = item_remove(w, &old);
            if (!rc) change_add(w, STORE_OP_REMOVE, old.val, old.len);
        }
        it->closed_at = resolved->occurred_at;
        it->closed_by = resolved->event_id;
        it->resolution = (char *)fold_resolution_name(resolved);
        it->resolved_by = (char *)evt_action_of(resolved).actor;
        if (!rc) rc = store__closed_put(w->txn, w->s, it);
        it->closed_at = NULL;
        it->closed_by = it->resolution = it->resolved_by = NULL;
    } else if (!rc) {
        kv nw = {it->key, NULL, tower__v1__view_item__get_packed_size(it), it};
        nw.val = ct_malloc(nw.len ? nw.len : 1);
        tower__v1__view_item__pack(it, nw.val);
        if (!have || old.len != nw.len || memcmp(old.val, nw.val, nw.len) != 0) {
            observe_ack(w, have ? &old : NULL, &nw);
            if (have) rc = item_remove(w, &old);
            if (!rc) rc = item_put(w, &nw);
            if (!rc) change_add(w, have ? STORE_OP_UPDATE : STORE_OP_ADD, nw.val, nw.len);
        }
        if (!rc) rc = store__closed_del_key(w->txn, w->s, ck);
        free(nw.val);
    }
    free(ck);
    free(old.val);
    /* Pointers into the actions and exid: detach before the free, which would free them. */
    it->exception_id = NULL;
    it->assignee = it->acknowledged_by = NULL;
    it->acknowledged_at = it->snoozed_until = NULL;
    tower__v1__dead_letter__free_unpacked(d, NULL);
    store__events_free(&acts);
    return rc;
}

/* An event the tower's SLA engine raised: a breach or a risk transition. Its id is its identity (the rule,
 * the entity and the due time; the order and its count of transitions); the rest is what the raising engine
 * saw at its "now": the warehouse and carrier its projector knew then, a prediction. Two engines (one per
 * replica) raising the same one send copies that can differ there. The bus's duplicate window keeps one;
 * a copy that reaches the stream anyway (a NATS node lost in between) is a plain duplicate: the first copy
 * stays applied, and it is no producer's mistake to dead-letter. */
static int engine_copy(const evt_event *e)
{
    return (e->payload_case == TOWER__V1__EVENT__PAYLOAD_SLA_BREACHED ||
            e->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_AT_RISK ||
            e->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_BACK_ON_TRACK) &&
           e->source && e->source->system && strcmp(e->source->system, "tower") == 0;
}

static int apply_one(wtx *w, uint64_t seq, const store_input *in, int64_t now_ns, ct_buf *pb,
                     store_outcome *out)
{
    if (!in->event) {
        const evt_error *e = in->error;
        return dead_letter(w, seq, in, e ? e->code : EVT_MALFORMED, e ? e->message : "rejected",
                           e ? e->event_id : NULL, now_ns, out);
    }
    const evt_event *e = in->event;
    ct_buf_reset(pb);
    unsigned char sk[8] = {0};
    ct_buf_add(pb, sk, 8);
    if (in->packed) ct_buf_add(pb, in->packed, in->packed_len);
    else evt_pack(e, pb);

    MDB_val k = {strlen(e->event_id), e->event_id}, v;
    int rc = mdb_get(w->txn, w->s->events, &k, &v);
    if (rc == 0) {
        if ((v.mv_size == pb->len && memcmp((char *)v.mv_data + 8, pb->data + 8, pb->len - 8) == 0) ||
            engine_copy(e)) {
            w->n_dups++;
            *out = STORE_DUPLICATE;
            return 0;
        }
        char *msg = ct_sprintf("field \"eventId\": \"%s\" was already applied (seq %llu) with different "
                               "content; the first copy stays applied",
                               e->event_id, (unsigned long long)store__get_u64(v.mv_data));
        /* A conflicting copy that came as protobuf is kept as its canonical bytes. */
        store_input copy = *in;
        if (!copy.raw) {
            copy.raw = pb->data + 8;
            copy.raw_len = pb->len - 8;
            copy.content_type = "application/x-protobuf";
        }
        rc = dead_letter(w, seq, &copy, EVT_CONFLICTING_DUPLICATE, msg, e->event_id, now_ns, out);
        free(msg);
        return rc;
    }
    if (rc != MDB_NOTFOUND) return rc;

    store__put_u64((unsigned char *)pb->data, seq);
    v.mv_size = pb->len;
    v.mv_data = pb->data;
    rc = mdb_put(w->txn, w->s->events, &k, &v, 0);
    if (!rc) store__loader_adopt(w->load, e->event_id, pb->data, pb->len);
    if (!rc) rc = index_event(w, e);
    if (!rc && !evt_is_action(e)) rc = store__ref_event(w->txn, w->s, e, &w->refb);
    if (!rc) {
        /* Breaches ever raised, per rule (for /metrics); a rule too long for a key is not counted. */
        if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_SLA_BREACHED && e->sla_breached->rule &&
            strlen(e->sla_breached->rule) <= EVT_MAX_ID)
            part_count(w, FOLD_VIEW_SLA_BREACHES, 't', e->sla_breached->rule, 1);
        w->n_events++;
        *out = STORE_APPLIED;
    }
    return rc;
}

static int flush_meta(wtx *w, uint64_t seq)
{
    int rc = store__meta_put_u64(w->txn, w->s, "applied_seq", seq);
    struct {
        const char *key;
        uint64_t add;
    } stats[] = {{"stat/events", w->n_events}, {"stat/duplicates", w->n_dups}, {"stat/dead_letters", w->n_dead}};
    for (int i = 0; i < 3 && !rc; i++) {
        if (!stats[i].add) continue;
        rc = store__meta_put_u64(w->txn, w->s, stats[i].key, store__meta_u64(w->txn, w->s, stats[i].key) + stats[i].add);
    }
    for (int v = 0; v < FOLD_VIEW_COUNT && !rc; v++) {
        for (int u = 0; u < 2 && !rc; u++) {
            int64_t d = u ? w->unacked_delta[v] : w->count_delta[v];
            if (!d) continue;
            char key[64];
            snprintf(key, sizeof key, "%s/%s", u ? "unacked" : "count", fold_view_name((fold_view)v));
            int64_t n = (int64_t)store__meta_u64(w->txn, w->s, key) + d;
            rc = store__meta_put_u64(w->txn, w->s, key, n < 0 ? 0 : (uint64_t)n);
            if (u) w->unacked_delta[v] = 0; /* flushed once per trend row (apply_batch) */
            else w->count_delta[v] = 0;
        }
    }
    for (size_t i = 0; i < w->n_parts && !rc; i++) {
        if (!w->parts[i].delta) continue;
        int64_t n = (int64_t)store__meta_u64(w->txn, w->s, w->parts[i].key) + w->parts[i].delta;
        if (n > 0) {
            rc = store__meta_put_u64(w->txn, w->s, w->parts[i].key, (uint64_t)n);
        } else {
            MDB_val k = {strlen(w->parts[i].key), w->parts[i].key};
            rc = mdb_del(w->txn, w->s->meta, &k, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        }
        w->parts[i].delta = 0;
    }
    w->n_events = w->n_dups = w->n_dead = 0;
    return rc;
}

static void ref_touch(void *ctx, char ek, const char *id)
{
    wtx *w = ctx;
    strset_add(ek == 'o' ? &w->orders : &w->ships, id);
}

/* Derive every process and dead letter the inputs so far touched, and forget them. */
static int derive_touched(wtx *w)
{
    strset lone = {0};
    /* Entities naming a code the inputs defined for the first time (or of a kind defined for the first time). */
    int rc = store__ref_touched(w->txn, w->s, &w->refb, ref_touch, w);
    store__refb_free(&w->refb);
    /* Links first (only an event carrying both ids can change one), then every touched process. */
    for (size_t i = 0; i < w->relinks.n && !rc; i++) rc = relink(w, w->relinks.order[i], &lone);
    for (size_t i = 0; i < w->ships.n && !rc; i++)
        if (!strset_has(&w->relinks, w->ships.order[i])) rc = place(w, w->ships.order[i], &lone);
    for (size_t i = 0; i < w->orders.n && !rc; i++) rc = derive_process(w, w->orders.order[i], NULL);
    for (size_t i = 0; i < lone.n && !rc; i++) rc = derive_process(w, NULL, lone.order[i]);
    for (size_t i = 0; i < w->dls.n && !rc; i++) rc = dl_derive(w, w->dls.order[i]);
    strset_free(&w->orders);
    strset_free(&w->ships);
    strset_free(&w->relinks);
    strset_free(&w->dls);
    strset_free(&lone);
    return rc;
}

/* The views as of the inputs so far, and the trend row of the clock's bucket (store_trend.c). */
static int close_rows(wtx *w, uint64_t seq)
{
    int rc = derive_touched(w);
    if (!rc) rc = flush_meta(w, seq);
    if (!rc && w->trend_clock > 0) rc = store__trend_put(w->txn, w->s, w->trend_clock);
    return rc;
}

/* The trend clock after the batch: advanced over exactly the events apply_one will apply (ids not stored yet,
 * at their first copy in the batch). The rows of buckets before its kept window would be dropped at the end
 * of the batch, so they are not closed on the way (a batch over more than the kept window derives less); nor
 * are those before the store's trend_drop_before (a rebuild's hint, store_opts: dropped by the end of it). */
static int trend_window(wtx *w, const store_input *in, size_t n, uint64_t seq)
{
    strset seen = {0};
    int64_t clock = w->trend_clock;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (in[i].seq && in[i].seq <= seq) continue;
        seq = in[i].seq ? in[i].seq : seq + 1;
        const evt_event *e = in[i].event;
        if (!e || !strset_add(&seen, e->event_id)) continue;
        MDB_val k = {strlen(e->event_id), e->event_id}, v;
        rc = mdb_get(w->txn, w->s->events, &k, &v);
        if (rc == MDB_NOTFOUND) clock = store_trend_advance(clock, store__ts_ns(e->occurred_at));
        if (rc == MDB_NOTFOUND || rc == 0) rc = 0;
    }
    strset_free(&seen);
    w->trend_keep = store_trend_cutoff(clock);
    if (w->s->trend_drop_before > w->trend_keep) w->trend_keep = w->s->trend_drop_before;
    return rc;
}

/* Before input in: when it is a new event that moves the trend clock to another bucket, the row of the
 * clock's bucket is closed first, so that every batching of the stream gives the same rows. */
static int trend_before(wtx *w, const store_input *in, uint64_t seq)
{
    int64_t b = (int64_t)STORE_TREND_BUCKET_S * 1000000000LL;
    if (!in->event || w->trend_clock <= 0 || w->trend_clock - w->trend_clock % b < w->trend_keep) return 0;
    int64_t next = store_trend_advance(w->trend_clock, store__ts_ns(in->event->occurred_at));
    if (next / b == w->trend_clock / b) return 0;
    MDB_val k = {strlen(in->event->event_id), in->event->event_id}, v;
    int rc = mdb_get(w->txn, w->s->events, &k, &v);
    if (rc == 0) return 0; /* a duplicate or a conflicting copy: it moves nothing */
    return rc == MDB_NOTFOUND ? close_rows(w, seq) : rc;
}

/* One attempt at the batch; MDB_MAP_FULL makes the caller grow the map and retry. */
static int apply_batch(store *s, const store_input *in, size_t n, int64_t now_ns, store_outcome *outcomes,
                       store_changes *changes, const store_meta *meta, size_t n_meta, uint64_t *applied)
{
    wtx w = {0};
    ct_buf pb = {0};
    w.s = s;
    w.changes = changes;
    int rc = mdb_txn_begin(s->env, NULL, 0, &w.txn);
    if (rc) return rc;
    if (!s->wload) store_writer_cache(s, WRITER_CACHE_BYTES);
    w.load = s->wload;
    w.load->txn = w.txn;

    uint64_t seq = store__meta_u64(w.txn, s, "applied_seq");
    w.trend_clock = (int64_t)store__meta_u64(w.txn, s, STORE_META_TREND_CLOCK);
    int64_t clock0 = w.trend_clock;
    rc = trend_window(&w, in, n, seq);
    for (size_t i = 0; i < n && !rc; i++) {
        store_outcome o = STORE_SKIPPED;
        if (in[i].seq && in[i].seq <= seq) {
            /* Already applied before a restart: exactly-once effect. */
        } else {
            rc = trend_before(&w, &in[i], seq);
            seq = in[i].seq ? in[i].seq : seq + 1;
            if (!rc) rc = apply_one(&w, seq, &in[i], now_ns, &pb, &o);
            if (!rc && o == STORE_APPLIED)
                w.trend_clock = store_trend_advance(w.trend_clock, store__ts_ns(in[i].event->occurred_at));
        }
        if (outcomes) outcomes[i] = o;
    }
    if (!rc) rc = close_rows(&w, seq);
    if (!rc && w.trend_clock != clock0)
        rc = store__meta_put_u64(w.txn, s, STORE_META_TREND_CLOCK, (uint64_t)w.trend_clock);
    if (!rc) rc = store__life_flush(w.txn, s, &w.life);
    for (size_t i = 0; i < n_meta && !rc; i++) rc = store__meta_put_u64(w.txn, s, meta[i].key, meta[i].value);
    if (!rc) {
        rc = mdb_txn_commit(w.txn);
        w.txn = NULL;
    }
    if (w.txn) mdb_txn_abort(w.txn);
    if (!rc) *applied = seq;
    for (size_t i = 0; i < w.n_parts; i++) free(w.parts[i].key);
    free(w.parts);
    free(w.part_slot);
    strset_free(&w.orders);
    strset_free(&w.ships);
    strset_free(&w.relinks);
    strset_free(&w.dls);
    store__refb_free(&w.refb);
    /* A failed batch stored none of its events, and none of what the keep learnt of it holds: forget them all. */
    if (rc) {
        store__loader_free(w.load);
        store__keep_clear(s->wkeep, STORE_KEEP_ALL);
    } else {
        store__loader_trim(w.load);
        store__keep_trim(s->wkeep);
    }
    w.load->txn = NULL;
    ct_buf_free(&pb);
    return rc;
}

void store_writer_cache(store *s, size_t bytes)
{
    size_t chunk = bytes / 8 < BATCH_ARENA_CHUNK ? bytes / 8 : BATCH_ARENA_CHUNK;
    if (chunk < 4096) chunk = 4096;
    if (!s->wload) {
        s->wload = ct_malloc(sizeof *s->wload);
        store__loader_init(s->wload, NULL, s, chunk);
    }
    s->wload->chunk = chunk;
    s->wload->budget = bytes;
    /* The keep's timelines point into the loader's events; its items and dues are copies: a quarter more. */
    if (!s->wkeep) s->wkeep = store__keep_new(bytes / 4);
    store__keep_budget(s->wkeep, bytes / 4);
    s->wload->keep = s->wkeep;
    store__loader_trim(s->wload);
    store__keep_trim(s->wkeep);
}

ct_status store_apply(store *s, const store_input *in, size_t n, int64_t now_ns, store_outcome *outcomes,
                      store_changes *changes)
{
    return store_apply_meta(s, in, n, now_ns, outcomes, changes, NULL, 0);
}

ct_status store_apply_meta(store *s, const store_input *in, size_t n, int64_t now_ns, store_outcome *outcomes,
                           store_changes *changes, const store_meta *meta, size_t n_meta)
{
    if (s->read_only) {
        ct_log(CT_LOG_ERROR, "store", "store %s is open read-only", s->dir);
        return CT_USAGE;
    }
    for (;;) {
        uint64_t applied = 0;
        if (changes) store_changes_free(changes);
        int rc = apply_batch(s, in, n, now_ns, outcomes, changes, meta, n_meta, &applied);
        if (rc == 0) {
            if (changes) {
                changes->seq = applied;
                changes->store_id = s->id;
            }
            return CT_OK;
        }
        if (rc != MDB_MAP_FULL) return store__fail(s, rc, "apply a batch");
        size_t grown = s->map_size * 2;
        pthread_rwlock_wrlock(&s->txn_lock); /* no read transaction of this process may be open */
        int rc2 = mdb_env_set_mapsize(s->env, grown);
        pthread_rwlock_unlock(&s->txn_lock);
        if (rc2) return store__fail(s, rc2, "grow the map");
        ct_log(CT_LOG_INFO, "store", "map full: grew %s from %zu to %zu MiB, retrying the batch", s->dir,
               s->map_size >> 20, grown >> 20);
        s->map_size = grown;
    }
}
