/* Reference data on the read side (contract v1.2): the latest definition of every code (store.h). */
#include "store_ref_int.h"

#include <string.h>

/* The definition an entry of the reference table names, decoded (NULL if its event is missing). */
static int def_get(store_reader *r, const MDB_val *v, evt_event **out, uint64_t *seq)
{
    *out = NULL;
    if (v->mv_size <= STORE__TIME_KEY) return MDB_CORRUPTED;
    MDB_val ek = {v->mv_size - STORE__TIME_KEY, (char *)v->mv_data + STORE__TIME_KEY}, ev;
    int rc = mdb_get(r->txn, r->s->events, &ek, &ev);
    if (rc) return rc;
    if (ev.mv_size < 8) return MDB_CORRUPTED;
    *out = (evt_event *)protobuf_c_message_unpack(&tower__v1__event__descriptor, NULL, ev.mv_size - 8,
                                                  (uint8_t *)ev.mv_data + 8);
    *seq = store__get_u64(ev.mv_data);
    return *out ? 0 : MDB_CORRUPTED;
}

ct_status store_reference_scan(store_reader *r, char kind, store_ref_fn fn, void *ctx)
{
    if (!kind || !strchr(FOLD_REF_KINDS, kind)) return CT_INVALID;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->ref, &c);
    if (rc) return store__fail(r->s, rc, "open the reference table");
    MDB_val k = {1, &kind}, v;
    char code[EVT_MAX_ID + 1];
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 2 || ((const char *)k.mv_data)[0] != kind) break;
        if (k.mv_size - 1 > EVT_MAX_ID) continue;
        memcpy(code, (const char *)k.mv_data + 1, k.mv_size - 1);
        code[k.mv_size - 1] = '\0';
        evt_event *e = NULL;
        uint64_t seq = 0;
        rc = def_get(r, &v, &e, &seq);
        if (rc) break;
        int stop = fn(ctx, kind, code, e, seq);
        evt_free(e);
        if (stop) break;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) return store__fail(r->s, rc, "read the reference table");
    return CT_OK;
}

uint64_t store_reference_count(store_reader *r, char kind)
{
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, r->s->ref, &c)) return 0;
    MDB_val k = {1, &kind}, v;
    uint64_t n = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 1 || ((const char *)k.mv_data)[0] != kind) break;
        n++;
    }
    mdb_cursor_close(c);
    return n;
}
