/* Reference data on the write path (contract v1.2): the latest definition per code, the index of the codes
 * entities name, and the entities a new definition changes (store_ref_int.h). */
#include "store_ref_int.h"

#include <stdlib.h>
#include <string.h>

#define REF_CODE_MAX 200 /* longer codes (only free-text skus can be) are indexed by a hash */

static char def_kind(const evt_event *e)
{
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_WAREHOUSE_DEFINED: return 'w';
    case TOWER__V1__EVENT__PAYLOAD_CARRIER_DEFINED: return 'c';
    case TOWER__V1__EVENT__PAYLOAD_SKU_DEFINED: return 'k';
    default: return 0;
    }
}

/* kind + code (hashed past REF_CODE_MAX) into buf (at least REF_CODE_MAX + 2 bytes): its length. */
static size_t code_key(unsigned char *buf, char kind, const char *code)
{
    size_t cl = strlen(code);
    buf[0] = (unsigned char)kind;
    if (cl <= REF_CODE_MAX) {
        memcpy(buf + 1, code, cl);
        return 1 + cl;
    }
    char h[24];
    snprintf(h, sizeof h, "#%016llx", (unsigned long long)ct_hash64(code, cl));
    memcpy(buf + 1, h, 17);
    return 18;
}

/* Does any key of the table start with these bytes? */
static int has_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t pl, int *out)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc) return rc;
    MDB_val k = {pl, (void *)prefix}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    *out = rc == 0 && k.mv_size >= pl && memcmp(k.mv_data, prefix, pl) == 0;
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static void refb_code(store__refb *b, char kind, const char *code)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 8;
        b->codes = ct_realloc(b->codes, b->cap * sizeof *b->codes);
    }
    b->codes[b->n].kind = kind;
    b->codes[b->n++].code = ct_strdup(code);
}

/* A definition: it becomes the code's if it is later (occurredAt, then eventId) than the one held. */
static int define(MDB_txn *txn, const store *s, const evt_event *e, char kind, store__refb *b)
{
    const char *code = evt_defined_code(e);
    if (!code || strlen(code) > EVT_MAX_ID) return 0; /* validated before: an id */
    unsigned char key[EVT_MAX_ID + 2], val[STORE__TIME_KEY + EVT_MAX_EVENT_ID];
    size_t kl = code_key(key, kind, code), el = strlen(e->event_id);
    store__time_key(val, e->occurred_at);
    memcpy(val + STORE__TIME_KEY, e->event_id, el);
    MDB_val k = {kl, key}, v;
    int rc = mdb_get(txn, s->ref, &k, &v);
    if (rc == 0) {
        size_t n = v.mv_size < STORE__TIME_KEY + el ? v.mv_size : STORE__TIME_KEY + el;
        int c = memcmp(val, v.mv_data, n);
        if (c < 0 || (c == 0 && STORE__TIME_KEY + el <= v.mv_size)) return 0; /* the held one is as late */
    } else if (rc == MDB_NOTFOUND) {
        int any = 0;
        rc = has_prefix(txn, s->ref, key, 1, &any);
        if (rc) return rc;
        if (!any && !strchr(b->first, kind)) b->first[strlen(b->first)] = kind;
        else if (!strchr(b->first, kind)) refb_code(b, kind, code);
    } else {
        return rc;
    }
    MDB_val nv = {STORE__TIME_KEY + el, val};
    return mdb_put(txn, s->ref, &k, &nv, 0);
}

typedef struct name_ctx {
    MDB_txn *txn;
    const store *s;
    char ek;
    const char *entity;
    int rc;
} name_ctx;

static void name_one(void *ctx, char kind, const char *code)
{
    name_ctx *n = ctx;
    if (n->rc) return;
    unsigned char key[REF_CODE_MAX + 2 + 3 + EVT_MAX_ID];
    size_t kl = code_key(key, kind, code), il = strlen(n->entity);
    if (il > EVT_MAX_ID) return; /* ids are validated: cannot happen */
    key[kl++] = 0;
    key[kl++] = (unsigned char)n->ek;
    key[kl++] = ':';
    memcpy(key + kl, n->entity, il);
    MDB_val k = {kl + il, key}, v = {0, ""};
    if (store__keep_seen(n->s->wkeep, key, kl + il)) return; /* an entry is never removed */
    int rc = mdb_put(n->txn, n->s->refuse, &k, &v, MDB_NOOVERWRITE);
    n->rc = rc == MDB_KEYEXIST ? 0 : rc;
    if (!n->rc) store__keep_see(n->s->wkeep, key, kl + il);
}

static int name_for(name_ctx *n, const evt_event *e, char ek, const char *id)
{
    if (!id || !*id) return n->rc;
    n->ek = ek;
    n->entity = id;
    fold_event_codes(e, name_one, n);
    return n->rc;
}

/* The shipments a route event names in its lists and stops. */
static int name_route_shipments(name_ctx *n, const evt_event *e)
{
    int rc = 0;
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED:
        for (size_t i = 0; i < e->route_requested->n_shipment_ids && !rc; i++)
            rc = name_for(n, e, 's', e->route_requested->shipment_ids[i]);
        break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_FAILED:
        for (size_t i = 0; i < e->route_failed->n_shipment_ids && !rc; i++)
            rc = name_for(n, e, 's', e->route_failed->shipment_ids[i]);
        break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED:
        for (size_t i = 0; i < e->route_planned->n_stops && !rc; i++)
            if (e->route_planned->stops[i]) rc = name_for(n, e, 's', e->route_planned->stops[i]->shipment_id);
        break;
    default: break;
    }
    return rc;
}

int store__ref_event(MDB_txn *txn, const store *s, const evt_event *e, store__refb *b)
{
    char kind = def_kind(e);
    if (kind) return define(txn, s, e, kind, b);
    name_ctx n = {txn, s, 0, NULL, 0};
    if (e->order_id && *e->order_id) return name_for(&n, e, 'o', e->order_id);
    int rc = name_for(&n, e, 's', e->shipment_id);
    return rc ? rc : name_route_shipments(&n, e);
}

/* Every entity indexed under a key prefix. */
static int scan_entities(MDB_txn *txn, const store *s, const unsigned char *prefix, size_t pl,
                         void (*add)(void *ctx, char ek, const char *id), void *ctx)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, s->refuse, &c);
    if (rc) return rc;
    MDB_val k = {pl, (void *)prefix}, v;
    char id[EVT_MAX_ID + 1];
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < pl || memcmp(k.mv_data, prefix, pl) != 0) break;
        const unsigned char *p = k.mv_data, *nul = memchr(p + 1, 0, k.mv_size - 1);
        if (!nul) continue;
        size_t rest = k.mv_size - (size_t)(nul + 1 - p);
        if (rest < 3 || rest - 2 > EVT_MAX_ID) continue;
        memcpy(id, nul + 3, rest - 2);
        id[rest - 2] = '\0';
        add(ctx, (char)nul[1], id);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

int store__ref_touched(MDB_txn *txn, const store *s, const store__refb *b,
                       void (*add)(void *ctx, char ek, const char *id), void *ctx)
{
    int rc = 0;
    for (const char *k = b->first; *k && !rc; k++) {
        unsigned char prefix = (unsigned char)*k;
        rc = scan_entities(txn, s, &prefix, 1, add, ctx);
    }
    for (size_t i = 0; i < b->n && !rc; i++) {
        unsigned char key[REF_CODE_MAX + 3];
        size_t kl = code_key(key, b->codes[i].kind, b->codes[i].code);
        key[kl++] = 0;
        rc = scan_entities(txn, s, key, kl, add, ctx);
    }
    return rc;
}

void store__refb_free(store__refb *b)
{
    for (size_t i = 0; i < b->n; i++) free(b->codes[i].code);
    free(b->codes);
    memset(b, 0, sizeof *b);
}

/* ---- the reference table as the fold asks it ---------------------------------------------------------- */

static int q_defined(void *ctx, char kind, const char *code)
{
    const store__refq *q = ctx;
    if (strlen(code) > EVT_MAX_ID) return 0; /* no definition has such a code */
    unsigned char key[EVT_MAX_ID + 2];
    MDB_val k = {code_key(key, kind, code), key}, v;
    return mdb_get(q->txn, q->s->ref, &k, &v) == 0;
}

static int q_any(void *ctx, char kind)
{
    const store__refq *q = ctx;
    int any = 0;
    return has_prefix(q->txn, q->s->ref, &kind, 1, &any) == 0 && any;
}

const fold_ref *store__ref_fold(store__refq *q, MDB_txn *txn, const store *s)
{
    q->txn = txn;
    q->s = s;
    q->ref.defined = q_defined;
    q->ref.any = q_any;
    q->ref.ctx = q;
    return &q->ref;
}
