/* Loading a process (an order with its shipments, or one unlinked shipment) from LMDB, each event decoded once. */
#include "store_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

int store__entity_key(char *buf, size_t cap, char kind, const char *id)
{
    int n = snprintf(buf, cap, "%c:%s", kind, id);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---- a bump allocator for the decoded events ------------------------------------------ */

struct store__arena {
    struct store__arena *next;
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
        b->used = 0;
        b->cap = cap;
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

/* ---- the loader: events by id, each decoded once ---------------------------------------- */

void store__loader_init(store__loader *l, MDB_txn *txn, const store *s, size_t chunk)
{
    memset(l, 0, sizeof *l);
    l->txn = txn;
    l->s = s;
    l->chunk = chunk;
}

void store__loader_free(store__loader *l)
{
    for (size_t i = 0; i < l->cache.cap; i++) free(l->cache.id[i]);
    free(l->cache.id);
    free(l->cache.ev);
    free(l->cache.seq);
    memset(&l->cache, 0, sizeof l->cache);
    for (struct store__arena *a = l->arena, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    l->arena = NULL;
}

static size_t cache_slot(const store__loader *l, const char *id, size_t len)
{
    size_t h = ct_hash64(id, len) & (l->cache.cap - 1);
    while (l->cache.id[h] && !(strlen(l->cache.id[h]) == len && memcmp(l->cache.id[h], id, len) == 0))
        h = (h + 1) & (l->cache.cap - 1);
    return h;
}

static void cache_grow(store__loader *l)
{
    size_t old_cap = l->cache.cap;
    char **old_id = l->cache.id;
    evt_event **old_ev = l->cache.ev;
    uint64_t *old_seq = l->cache.seq;
    l->cache.cap = old_cap ? old_cap * 2 : 1024;
    l->cache.id = ct_calloc(l->cache.cap, sizeof *l->cache.id);
    l->cache.ev = ct_calloc(l->cache.cap, sizeof *l->cache.ev);
    l->cache.seq = ct_calloc(l->cache.cap, sizeof *l->cache.seq);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old_id[i]) continue;
        size_t h = cache_slot(l, old_id[i], strlen(old_id[i]));
        l->cache.id[h] = old_id[i];
        l->cache.ev[h] = old_ev[i];
        l->cache.seq[h] = old_seq[i];
    }
    free(old_id);
    free(old_ev);
    free(old_seq);
}

/* Remember a decoded event; returns its slot. */
static size_t cache_put(store__loader *l, const char *id, size_t len, evt_event *e, uint64_t seq)
{
    if ((l->cache.n + 1) * 2 > l->cache.cap) cache_grow(l);
    size_t h = cache_slot(l, id, len);
    l->cache.id[h] = ct_strndup(id, len);
    l->cache.ev[h] = e;
    l->cache.seq[h] = seq;
    l->cache.n++;
    return h;
}

/* The slot of event id: from the cache, or read from `events` (u64 seq + protobuf) and decoded. */
static int event_slot(store__loader *l, const char *id, size_t len, size_t *slot)
{
    if (l->cache.cap) {
        size_t h = cache_slot(l, id, len);
        if (l->cache.ev[h]) {
            *slot = h;
            return 0;
        }
    }
    MDB_val ek = {len, (void *)id}, ev;
    int rc = mdb_get(l->txn, l->s->events, &ek, &ev);
    if (rc) return rc;
    ProtobufCAllocator alloc = {arena_alloc, arena_free, l};
    evt_event *e = (evt_event *)protobuf_c_message_unpack(&tower__v1__event__descriptor, &alloc, ev.mv_size - 8,
                                                          (uint8_t *)ev.mv_data + 8);
    if (!e) return MDB_CORRUPTED;
    *slot = cache_put(l, id, len, e, store__get_u64(ev.mv_data));
    return 0;
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

int store__load_entity(store__loader *l, char kind, const char *id, store__events *out)
{
    char key[EVT_MAX_ID + 8];
    int kl = store__entity_key(key, sizeof key, kind, id);
    if (kl < 0) return MDB_BAD_VALSIZE;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(l->txn, l->s->tl, &c);
    if (rc) return rc;
    MDB_val k = {(size_t)kl, key}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    while (rc == 0) {
        /* A timeline value is the time key, then the eventId. */
        size_t slot;
        rc = event_slot(l, (const char *)v.mv_data + STORE__TIME_KEY, v.mv_size - STORE__TIME_KEY, &slot);
        if (rc) break;
        events_push(out, l->cache.ev[slot], l->cache.seq[slot]);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
    }
    mdb_cursor_close(c);
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
