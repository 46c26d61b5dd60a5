/* Loading a process (an order with its shipments, or one unlinked shipment) from LMDB, each event decoded once. */
#include "store_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int store__entity_key(char *buf, size_t cap, char kind, const char *id)
{
    size_t il = strlen(id);
    if (il + 3 > cap) return -1;
    buf[0] = kind;
    buf[1] = ':';
    memcpy(buf + 2, id, il + 1);
    return (int)(il + 2);
}

/* ---- a bump allocator for the decoded events ------------------------------------------ */

struct store__arena {
    struct store__arena *next; /* the next older block */
    uint64_t serial;           /* 1 for the loader's first block, then counting up */
    size_t used, cap;
    max_align_t data[];
};

static void *arena_alloc(void *ctx, size_t n)
{
    store__loader *l = ctx;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct store__arena *a = l->arena;
    if (!a || a->used + n > a->cap) {
        size_t cap = n > l->chunk ? n : l->chunk;
        struct store__arena *b = ct_malloc(sizeof *b + cap);
        b->next = a;
        b->serial = ++l->blocks;
        b->used = 0;
        b->cap = cap;
        l->bytes += cap;
        l->arena = a = b;
    }
    void *p = (char *)a->data + a->used;
    a->used += n;
    return p;
}

static void arena_free(void *ctx, void *p)
{
    (void)ctx;
    (void)p; /* freed with the whole arena */
}

/* Free the blocks of serial <= cutoff (all of them for UINT64_MAX). */
static void arena_drop(store__loader *l, uint64_t cutoff)
{
    struct store__arena **link = &l->arena;
    while (*link && (*link)->serial > cutoff) link = &(*link)->next;
    for (struct store__arena *a = *link, *next; a; a = next) {
        next = a->next;
        l->bytes -= a->cap;
        free(a);
    }
    *link = NULL;
}

/* ---- the loader: events by id, each decoded once ---------------------------------------- */

void store__loader_init(store__loader *l, MDB_txn *txn, const store *s, size_t chunk)
{
    memset(l, 0, sizeof *l);
    l->txn = txn;
    l->s = s;
    l->chunk = chunk;
}

static void cache_arrays_free(store__loader *l)
{
    free(l->cache.id);
    free(l->cache.ev);
    free(l->cache.seq);
    free(l->cache.blk);
    memset(&l->cache, 0, sizeof l->cache);
}

void store__loader_free(store__loader *l)
{
    store__keep_clear(l->keep, STORE_KEEP_TL);
    cache_arrays_free(l);
    arena_drop(l, UINT64_MAX);
}

static size_t cache_slot(const store__loader *l, const char *id, size_t len)
{
    size_t h = ct_hash64(id, len) & (l->cache.cap - 1);
    while (l->cache.id[h] && !(strlen(l->cache.id[h]) == len && memcmp(l->cache.id[h], id, len) == 0))
        h = (h + 1) & (l->cache.cap - 1);
    return h;
}

/* Re-index into cap slots the cached events (with drop: only those decoded after block `cutoff`). */
static void cache_rehash(store__loader *l, size_t cap, int drop, uint64_t cutoff)
{
    store__loader old = *l;
    l->cache.cap = cap;
    l->cache.n = 0;
    l->cache.id = ct_calloc(cap, sizeof *l->cache.id);
    l->cache.ev = ct_calloc(cap, sizeof *l->cache.ev);
    l->cache.seq = ct_calloc(cap, sizeof *l->cache.seq);
    l->cache.blk = ct_calloc(cap, sizeof *l->cache.blk);
    for (size_t i = 0; i < old.cache.cap; i++) {
        if (!old.cache.id[i] || (drop && old.cache.blk[i] <= cutoff)) continue;
        size_t h = cache_slot(l, old.cache.id[i], strlen(old.cache.id[i]));
        l->cache.id[h] = old.cache.id[i];
        l->cache.ev[h] = old.cache.ev[i];
        l->cache.seq[h] = old.cache.seq[i];
        l->cache.blk[h] = old.cache.blk[i];
        l->cache.n++;
    }
    cache_arrays_free(&old);
}

void store__loader_trim(store__loader *l)
{
    if (!l->budget || l->bytes <= l->budget) return;
    /* Keep the newest blocks that fit in half the budget: what the next batches most likely name again. */
    size_t kept = 0;
    uint64_t cutoff = 0;
    for (const struct store__arena *a = l->arena; a; a = a->next) {
        if (kept + a->cap > l->budget / 2) {
            cutoff = a->serial;
            break;
        }
        kept += a->cap;
    }
    if (!cutoff) return;
    cache_rehash(l, l->cache.cap, 1, cutoff);
    arena_drop(l, cutoff);
    store__keep_clear(l->keep, STORE_KEEP_TL); /* their events may be in the blocks dropped */
}

/* Remember a decoded event (its id copied into the blocks); returns its slot. blk: see cache.blk. */
static size_t cache_put(store__loader *l, const char *id, size_t len, evt_event *e, uint64_t seq, uint64_t blk)
{
    if ((l->cache.n + 1) * 2 > l->cache.cap) cache_rehash(l, l->cache.cap ? l->cache.cap * 2 : 1024, 0, 0);
    size_t h = cache_slot(l, id, len);
    char *copy = arena_alloc(l, len + 1);
    memcpy(copy, id, len);
    copy[len] = '\0';
    l->cache.id[h] = copy;
    l->cache.ev[h] = e;
    l->cache.seq[h] = seq;
    l->cache.blk[h] = blk;
    l->cache.n++;
    return h;
}

/* Decode a stored event (u64 seq + protobuf) into the blocks and remember it: its slot in *slot. */
static int decode_put(store__loader *l, const char *id, size_t len, const void *stored, size_t size, size_t *slot)
{
    if (size < 8) return MDB_CORRUPTED;
    /* Everything decoded from here on lands in the newest block or a later one. */
    uint64_t blk = l->blocks;
    ProtobufCAllocator alloc = {arena_alloc, arena_free, l};
    evt_event *e = (evt_event *)protobuf_c_message_unpack(&tower__v1__event__descriptor, &alloc, size - 8,
                                                          (const uint8_t *)stored + 8);
    if (!e) return MDB_CORRUPTED;
    *slot = cache_put(l, id, len, e, store__get_u64(stored), blk);
    return 0;
}

/* The slot of event id: from the cache, or read from `events` (u64 seq + protobuf) and decoded. */
static int event_slot(store__loader *l, const char *id, size_t len, size_t *slot)
{
    if (l->cache.cap) {
        size_t h = cache_slot(l, id, len);
        if (l->cache.ev[h]) {
            l->hits++;
            *slot = h;
            return 0;
        }
    }
    MDB_val ek = {len, (void *)id}, ev;
    int rc = mdb_get(l->txn, l->s->events, &ek, &ev);
    if (rc) return rc;
    l->misses++;
    return decode_put(l, id, len, ev.mv_data, ev.mv_size, slot);
}

void store__loader_adopt(store__loader *l, const char *id, const void *stored, size_t size)
{
    size_t slot;
    if (l->cache.cap && l->cache.ev[cache_slot(l, id, strlen(id))]) return;
    (void)decode_put(l, id, strlen(id), stored, size, &slot); /* not decodable: read when wanted, and refused then */
}

/* ---- entities and processes ------------------------------------------------------------------ */

void store__events_free(store__events *e)
{
    free(e->ev);
    free(e->seq);
    memset(e, 0, sizeof *e);
}

static void events_push(store__events *out, evt_event *e, uint64_t seq)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 16;
        out->ev = ct_realloc(out->ev, out->cap * sizeof *out->ev);
        out->seq = ct_realloc(out->seq, out->cap * sizeof *out->seq);
    }
    out->ev[out->n] = e;
    out->seq[out->n++] = seq;
}

/* The kept timeline into *out, loading the entries added since it was read. 0, or MDB_NOTFOUND when an
 * added entry's event is not there (then read the timeline from LMDB). */
static int kept_entity(store__loader *l, store__kent *e, store__events *out)
{
    for (size_t i = 0; i < e->n_tl; i++) {
        store__ktl *t = &e->tl[i];
        if (t->ev) continue;
        size_t slot;
        int rc = event_slot(l, t->eid, strlen(t->eid), &slot);
        if (rc) return rc;
        t->ev = l->cache.ev[slot];
        t->seq = l->cache.seq[slot];
        free(t->eid);
        t->eid = NULL;
    }
    for (size_t i = 0; i < e->n_tl; i++) events_push(out, e->tl[i].ev, e->tl[i].seq);
    return 0;
}

int store__load_entity(store__loader *l, char kind, const char *id, store__events *out)
{
    char key[EVT_MAX_ID + 8];
    int kl = store__entity_key(key, sizeof key, kind, id);
    if (kl < 0) return MDB_BAD_VALSIZE;
    store__kent *kept = store__keep_get(l->keep, key, (size_t)kl, l->keep != NULL);
    if (kept && (kept->has & STORE_KEEP_TL)) {
        size_t n0 = out->n;
        int rc = kept_entity(l, kept, out);
        if (rc != MDB_NOTFOUND) return rc;
        out->n = n0;
    }
    if (kept) store__keep_reset(l->keep, kept, STORE_KEEP_TL);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(l->txn, l->s->tl, &c);
    if (rc) return rc;
    MDB_val k = {(size_t)kl, key}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    while (rc == 0) {
        /* A timeline value is the time key, then the eventId. */
        size_t slot;
        rc = event_slot(l, (const char *)v.mv_data + STORE__TIME_KEY, v.mv_size - STORE__TIME_KEY, &slot);
        if (rc) {
            kept = NULL; /* an event missing: the list ends there, and is not kept */
            break;
        }
        events_push(out, l->cache.ev[slot], l->cache.seq[slot]);
        if (kept) store__keep_tl_push(l->keep, kept, v.mv_data, l->cache.ev[slot], l->cache.seq[slot]);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND && kept) kept->has |= STORE_KEEP_TL;
    else if (kept) store__keep_reset(l->keep, kept, STORE_KEEP_TL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void add_shipment(store__process *p, const char *sid, size_t len, size_t *cap)
{
    if (p->ns == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        p->sids = ct_realloc(p->sids, *cap * sizeof *p->sids);
    }
    p->sids[p->ns++] = ct_strndup(sid, len);
}

/* The shipments linked to the process's order, from oship. */
static int linked_shipments(store__loader *l, store__process *p)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(l->txn, l->s->oship, &c);
    if (rc) return rc;
    size_t cap = 0;
    MDB_val k = {strlen(p->order_id), p->order_id}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    while (rc == 0) {
        add_shipment(p, v.mv_data, v.mv_size, &cap);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int load_shipments(store__loader *l, store__process *p)
{
    p->ships = ct_calloc(p->ns ? p->ns : 1, sizeof *p->ships);
    p->se = ct_calloc(p->ns ? p->ns : 1, sizeof *p->se);
    for (size_t i = 0; i < p->ns; i++) {
        int rc = store__load_entity(l, 's', p->sids[i], &p->ships[i]);
        if (rc) return rc;
        p->se[i] = (fold_entity){p->sids[i], p->ships[i].ev, p->ships[i].n};
    }
    return 0;
}

int store__load_process(store__loader *l, const char *order_id, const char *lone_shipment, store__process *out)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    if (order_id) {
        out->order_id = ct_strdup(order_id);
        rc = store__load_entity(l, 'o', order_id, &out->order);
        if (!rc) rc = linked_shipments(l, out);
    } else {
        size_t cap = 0;
        add_shipment(out, lone_shipment, strlen(lone_shipment), &cap);
    }
    return rc ? rc : load_shipments(l, out);
}

fold_process store__process_fold(const store__process *p)
{
    return (fold_process){{p->order_id, p->order.ev, p->order.n}, p->se, p->ns};
}

void store__process_free(store__process *p)
{
    store__events_free(&p->order);
    for (size_t i = 0; i < p->ns; i++) {
        if (p->ships) store__events_free(&p->ships[i]);
        free(p->sids[i]);
    }
    free(p->ships);
    free(p->se);
    free(p->sids);
    free(p->order_id);
    memset(p, 0, sizeof *p);
}
