/* What the writer keeps of each entity between batches: its timeline, items and dues as last read or written. */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

/* A key of a table whose entries are never removed, known to be stored: len bytes follow. */
typedef struct seen_key {
    size_t len;
    unsigned char key[];
} seen_key;

struct store__keep {
    store__kent **slot;  /* open addressing by entity key; cap a power of two */
    size_t cap, n;
    seen_key **seen;     /* open addressing: keys of the reference index known to be stored */
    size_t seen_cap, n_seen;
    size_t bytes;        /* what the entities hold (an estimate of their allocations) */
    size_t budget;       /* store__keep_trim forgets everything past it */
};

store__keep *store__keep_new(size_t budget)
{
    store__keep *k = ct_calloc(1, sizeof *k);
    k->budget = budget;
    return k;
}

void store__keep_budget(store__keep *k, size_t budget) { k->budget = budget; }

/* What one kept record counts for in the budget (an estimate of its allocations). */
#define KEPT_BYTES(keylen, len) (sizeof(void *) * 4 + (keylen) + (len) + 32)

static void bytes_less(store__keep *k, size_t n) { k->bytes = k->bytes > n ? k->bytes - n : 0; }

static void tl_free(store__keep *k, store__kent *e)
{
    for (size_t i = 0; i < e->n_tl; i++) free(e->tl[i].eid);
    bytes_less(k, e->cap_tl * sizeof *e->tl); /* an eid lives until its event is loaded: not counted */
    free(e->tl);
    e->tl = NULL;
    e->n_tl = e->cap_tl = 0;
}

static void rows_free(store__keep *k, store__krows *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        bytes_less(k, KEPT_BYTES(strlen(rows->v[i].key), rows->v[i].len));
        free(rows->v[i].key);
        free(rows->v[i].val);
    }
    free(rows->v);
    rows->v = NULL;
    rows->n = 0;
}

static void rec_free(store__keep *k, store__krec *r)
{
    if (r->val) bytes_less(k, KEPT_BYTES(0, r->len));
    free(r->val);
    memset(r, 0, sizeof *r);
}

static void forget(store__keep *k, store__kent *e, unsigned parts)
{
    if (parts & STORE_KEEP_RISK) rec_free(k, &e->risk[0]), rec_free(k, &e->risk[1]);
    if (parts & STORE_KEEP_TL) tl_free(k, e);
    if (parts & STORE_KEEP_ITEMS) rows_free(k, &e->items);
    if (parts & STORE_KEEP_DUES) rows_free(k, &e->dues);
    e->has &= ~parts;
}

void store__keep_clear(store__keep *k, unsigned parts)
{
    if (!k) return;
    for (size_t i = 0; i < k->cap; i++) {
        store__kent *e = k->slot[i];
        if (!e) continue;
        forget(k, e, parts);
        if (parts == STORE_KEEP_ALL) {
            free(e->ekey);
            free(e);
            k->slot[i] = NULL;
        }
    }
    if (parts == STORE_KEEP_ALL) {
        for (size_t i = 0; i < k->seen_cap; i++) free(k->seen[i]);
        free(k->seen);
        k->seen = NULL;
        k->seen_cap = k->n_seen = 0;
        k->n = 0;
        k->bytes = 0;
    }
}

void store__keep_free(store__keep *k)
{
    if (!k) return;
    store__keep_clear(k, STORE_KEEP_ALL);
    free(k->slot);
    free(k);
}

void store__keep_trim(store__keep *k)
{
    if (k && k->budget && k->bytes > k->budget) store__keep_clear(k, STORE_KEEP_ALL);
}

/* A hash whose low bits are mixed: ct_hash64's are weak for keys that differ in a few digits ("o:SO-001234"),
 * and a table of a power of two slots uses only those. */
static size_t slot_hash(const void *key, size_t len)
{
    uint64_t h = ct_hash64(key, len);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return (size_t)h;
}

static size_t find(const store__keep *k, const char *ekey, size_t kl)
{
    size_t h = slot_hash(ekey, kl) & (k->cap - 1);
    while (k->slot[h] && !(k->slot[h]->kl == kl && memcmp(k->slot[h]->ekey, ekey, kl) == 0)) h = (h + 1) & (k->cap - 1);
    return h;
}

static void grow(store__keep *k)
{
    size_t cap = k->cap ? k->cap * 2 : 4096;
    store__kent **old = k->slot;
    size_t ocap = k->cap;
    k->slot = ct_calloc(cap, sizeof *k->slot);
    k->cap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i]) k->slot[find(k, old[i]->ekey, old[i]->kl)] = old[i];
    free(old);
}

store__kent *store__keep_get(store__keep *k, const char *ekey, size_t kl, int create)
{
    if (!k || (!k->cap && !create)) return NULL;
    if (create && (k->n + 1) * 2 > k->cap) grow(k);
    size_t h = find(k, ekey, kl);
    if (k->slot[h] || !create) return k->slot[h];
    store__kent *e = ct_calloc(1, sizeof *e);
    e->ekey = ct_strndup(ekey, kl);
    e->kl = kl;
    k->slot[h] = e;
    k->n++;
    k->bytes += sizeof *e + kl + 2 * sizeof(void *);
    return e;
}

/* ---- keys known to be stored ------------------------------------------------------------------------ */

static size_t seen_find(const store__keep *k, const void *key, size_t len)
{
    size_t h = slot_hash(key, len) & (k->seen_cap - 1);
    while (k->seen[h] && !(k->seen[h]->len == len && memcmp(k->seen[h]->key, key, len) == 0))
        h = (h + 1) & (k->seen_cap - 1);
    return h;
}

int store__keep_seen(const store__keep *k, const void *key, size_t len)
{
    return k && k->seen_cap && k->seen[seen_find(k, key, len)] != NULL;
}

void store__keep_see(store__keep *k, const void *key, size_t len)
{
    if (!k) return;
    if ((k->n_seen + 1) * 2 > k->seen_cap) {
        seen_key **old = k->seen;
        size_t ocap = k->seen_cap;
        k->seen_cap = ocap ? ocap * 2 : 4096;
        k->seen = ct_calloc(k->seen_cap, sizeof *k->seen);
        for (size_t i = 0; i < ocap; i++)
            if (old[i]) k->seen[seen_find(k, old[i]->key, old[i]->len)] = old[i];
        free(old);
    }
    size_t h = seen_find(k, key, len);
    if (k->seen[h]) return;
    seen_key *s = ct_malloc(sizeof *s + len);
    s->len = len;
    memcpy(s->key, key, len);
    k->seen[h] = s;
    k->n_seen++;
    k->bytes += sizeof *s + len + 2 * sizeof(void *);
}

/* ---- timelines ---------------------------------------------------------------------------------------- */

static int tl_cmp(const store__ktl *a, const unsigned char *tk, const char *eid)
{
    int c = memcmp(a->tk, tk, STORE__TIME_KEY);
    if (c) return c;
    /* LMDB's order of duplicates: bytes, then the shorter first (strcmp gives the same). */
    return strcmp(a->ev ? a->ev->event_id : a->eid, eid);
}

static store__ktl *tl_insert(store__keep *k, store__kent *e, size_t at)
{
    if (e->n_tl == e->cap_tl) {
        size_t cap = e->cap_tl ? e->cap_tl * 2 : 8;
        e->tl = ct_realloc(e->tl, cap * sizeof *e->tl);
        k->bytes += (cap - e->cap_tl) * sizeof *e->tl;
        e->cap_tl = cap;
    }
    memmove(&e->tl[at + 1], &e->tl[at], (e->n_tl - at) * sizeof *e->tl);
    e->n_tl++;
    memset(&e->tl[at], 0, sizeof e->tl[at]);
    return &e->tl[at];
}

void store__keep_tl_push(store__keep *k, store__kent *e, const unsigned char *tk, evt_event *ev, uint64_t seq)
{
    store__ktl *t = tl_insert(k, e, e->n_tl);
    memcpy(t->tk, tk, STORE__TIME_KEY);
    t->ev = ev;
    t->seq = seq;
}

void store__keep_tl_added(store__keep *k, const char *ekey, size_t kl, const unsigned char *tk, const char *eid)
{
    store__kent *e = store__keep_get(k, ekey, kl, 0);
    if (!e || !(e->has & STORE_KEEP_TL)) return; /* read whole from LMDB when next wanted */
    size_t at = e->n_tl;
    while (at > 0 && tl_cmp(&e->tl[at - 1], tk, eid) > 0) at--;
    if (at > 0 && tl_cmp(&e->tl[at - 1], tk, eid) == 0) return; /* cannot happen: LMDB refused the copy */
    store__ktl *t = tl_insert(k, e, at);
    memcpy(t->tk, tk, STORE__TIME_KEY);
    t->eid = ct_strdup(eid);
}

/* ---- items and dues -------------------------------------------------------------------------------- */

void store__keep_row_add(store__keep *k, store__krows *rows, const char *key, size_t kl, const unsigned char *tk,
                         const void *val, size_t len)
{
    rows->v = ct_realloc(rows->v, (rows->n + 1) * sizeof *rows->v);
    store__krow *r = &rows->v[rows->n++];
    memset(r, 0, sizeof *r);
    r->key = ct_strndup(key, kl);
    if (tk) memcpy(r->tk, tk, STORE__TIME_KEY);
    if (val) {
        r->val = ct_malloc(len ? len : 1);
        memcpy(r->val, val, len);
        r->len = len;
    }
    k->bytes += KEPT_BYTES(kl, r->len);
}

void store__keep_rec_set(store__keep *k, store__kent *e, store__krec *r, const void *val, size_t len)
{
    rec_free(k, r);
    if (val) {
        r->val = ct_malloc(len ? len : 1);
        memcpy(r->val, val, len);
        r->len = len;
        k->bytes += KEPT_BYTES(0, len);
    }
    r->known = 1;
    e->has |= STORE_KEEP_RISK;
}

void store__keep_reset(store__keep *k, store__kent *e, unsigned parts) { forget(k, e, parts); }
