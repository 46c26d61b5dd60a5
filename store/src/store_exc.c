/* Reading exceptions (docs/exceptions.md): one whole, with its history; the closed ones; the per-view
 * lifecycle figures of the summary. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The entity prefix of an exception's item and closed keys ("o:<id>|", "d:<seq, 20 digits>|"). */
static void entity_prefix(const evt_exid *x, char *buf, size_t cap)
{
    if (x->kind == 'd') snprintf(buf, cap, "d:%020llu|", strtoull(x->entity, NULL, 10));
    else snprintf(buf, cap, "%c:%s|", x->kind, x->entity);
}

/* The open item of an exception, or its closed record. *closed says which. */
static ct_status find_exception(store_reader *r, const char *exid, const evt_exid *x, Tower__V1__ViewItem **out,
                                int *closed)
{
    char prefix[EVT_MAX_ID + 32];
    entity_prefix(x, prefix, sizeof prefix);
    size_t pl = strlen(prefix);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->items, &c);
    if (rc) return store__fail(r->s, rc, "open an items cursor");
    MDB_val k = {pl, prefix}, v;
    ct_status st = CT_NOT_FOUND;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && k.mv_size >= pl && !memcmp(k.mv_data, prefix, pl);
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, v.mv_size, v.mv_data);
        if (it && it->exception_id && strcmp(it->exception_id, exid) == 0) {
            *out = it;
            *closed = 0;
            st = CT_OK;
            break;
        }
        if (it) tower__v1__view_item__free_unpacked(it, NULL);
    }
    mdb_cursor_close(c);
    if (st != CT_NOT_FOUND) return st;
    char *ck = ct_sprintf("%s%s", prefix, exid);
    MDB_val ckv = {strlen(ck), ck};
    rc = strlen(ck) > 511 ? MDB_NOTFOUND : mdb_get(r->txn, r->s->closed, &ckv, &v);
    free(ck);
    if (rc == MDB_NOTFOUND) return CT_NOT_FOUND;
    if (rc) return store__fail(r->s, rc, "read a closed exception");
    *out = tower__v1__view_item__unpack(NULL, v.mv_size, v.mv_data);
    if (!*out) return CT_STORE_CORRUPT;
    *closed = 1;
    return CT_OK;
}

/* An event by id, decoded (caller evt_frees), or NULL. */
static evt_event *event_by_id(store_reader *r, const char *id)
{
    if (!id) return NULL;
    MDB_val k = {strlen(id), (void *)id}, v;
    if (mdb_get(r->txn, r->s->events, &k, &v) != 0 || v.mv_size < 8) return NULL;
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_protobuf(&e, (const uint8_t *)v.mv_data + 8, v.mv_size - 8, &err) != CT_OK) return NULL;
    return e;
}

static json_t *event_ref(const evt_event *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "eventId", json_string(e->event_id));
    json_object_set_new(o, "type", json_string(evt_type_name(e)));
    store__json_time(o, "at", e->occurred_at);
    return o;
}

typedef struct hist_ctx {
    const char *exid;
    const Tower__V1__ViewItem *it;
    json_t *history, *notes, *opened_by;
} hist_ctx;

static const char *action_word(const evt_event *e)
{
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_ACKNOWLEDGED: return "acknowledged";
    case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_ASSIGNED: return "assigned";
    case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_SNOOZED: return "snoozed";
    case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_NOTED: return "noted";
    case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_RESOLVED: return "resolved";
    case TOWER__V1__EVENT__PAYLOAD_EXCEPTION_REOPENED: return "reopened";
    default: return "";
    }
}

static int on_event(void *vctx, const evt_event *e, uint64_t seq)
{
    hist_ctx *h = vctx;
    if (!evt_is_action(e)) {
        /* The event its since is: the condition's start (for a breach, the slaBreached of that due time). */
        const Tower__V1__Timestamp *since = h->it->since;
        int match = since && store__ts_ns(e->occurred_at) == store__ts_ns(since);
        if (h->it->view && !strcmp(h->it->view, "sla_breaches"))
            match = e->payload_case == TOWER__V1__EVENT__PAYLOAD_SLA_BREACHED &&
                    store__ts_ns(e->sla_breached->due_at ? e->sla_breached->due_at : e->occurred_at) == store__ts_ns(since);
        if (match && !h->opened_by) h->opened_by = event_ref(e);
        return 0;
    }
    evt_action a = evt_action_of(e);
    if (!a.exception_id || strcmp(a.exception_id, h->exid) != 0) return 0;
    json_t *o = json_object();
    store__json_time(o, "at", e->occurred_at);
    json_object_set_new(o, "action", json_string(action_word(e)));
    json_object_set_new(o, "actor", json_string(a.actor ? a.actor : ""));
    if (a.note) json_object_set_new(o, "note", json_string(a.note));
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_EXCEPTION_ASSIGNED)
        json_object_set_new(o, "assignee", json_string(e->exception_assigned->assignee ? e->exception_assigned->assignee : ""));
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_EXCEPTION_SNOOZED) store__json_time(o, "until", e->exception_snoozed->until);
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_EXCEPTION_RESOLVED)
        json_object_set_new(o, "resolution", json_string(fold_resolution_name(e)));
    json_object_set_new(o, "eventId", json_string(e->event_id));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    /* The timeline is in occurredAt order; equal times keep their stream order. */
    json_array_append_new(h->history, o);
    if (a.note) {
        json_t *n = json_object();
        store__json_time(n, "at", e->occurred_at);
        json_object_set_new(n, "actor", json_string(a.actor ? a.actor : ""));
        json_object_set_new(n, "note", json_string(a.note));
        json_object_set_new(n, "action", json_string(action_word(e)));
        json_array_append_new(h->notes, n);
    }
    return 0;
}

ct_status store_exception_get(store_reader *r, const char *exid, Tower__V1__ViewItem **out, int *closed)
{
    evt_exid x;
    if (!exid || evt_exid_parse(exid, &x, NULL) != 0) return CT_NOT_FOUND;
    return find_exception(r, exid, &x, out, closed);
}

ct_status store_exception_json(store_reader *r, const char *exid, int64_t now_ns, json_t **out)
{
    evt_exid x;
    if (!exid || evt_exid_parse(exid, &x, NULL) != 0) return CT_NOT_FOUND;
    Tower__V1__ViewItem *it = NULL;
    int closed = 0;
    ct_status st = find_exception(r, exid, &x, &it, &closed);
    if (st != CT_OK) return st;

    json_t *o = json_object();
    json_object_set_new(o, "exceptionId", json_string(exid));
    json_object_set_new(o, "view", json_string(it->view ? it->view : x.view));
    json_object_set_new(o, "state", json_string(store_item_state(it, now_ns)));
    json_object_set_new(o, "open", json_boolean(!closed));
    json_object_set_new(o, "item", store_item_to_json(it, closed ? 0 : now_ns));
    store__json_time(o, "openedAt", it->since);
    hist_ctx h = {exid, it, json_array(), json_array(), NULL};
    /* The actions are on the timeline of what the id names (a dead letter's: its sequence). */
    st = store_timeline(r, x.kind, x.entity, on_event, &h);
    if (st == CT_NOT_FOUND) st = CT_OK;
    if (h.opened_by) json_object_set_new(o, "openedBy", h.opened_by);
    if (it->closed_at) {
        store__json_time(o, "closedAt", it->closed_at);
        evt_event *ce = event_by_id(r, it->closed_by);
        if (ce) json_object_set_new(o, "closedBy", event_ref(ce));
        else if (it->closed_by) json_object_set_new(o, "closedBy", json_pack("{s:s}", "eventId", it->closed_by));
        evt_free(ce);
    }
    if (it->resolution) json_object_set_new(o, "resolution", json_string(it->resolution));
    if (it->resolved_by) json_object_set_new(o, "resolvedBy", json_string(it->resolved_by));
    if (it->assignee) json_object_set_new(o, "assignee", json_string(it->assignee));
    store__json_time(o, "acknowledgedAt", it->acknowledged_at);
    if (it->acknowledged_by) json_object_set_new(o, "acknowledgedBy", json_string(it->acknowledged_by));
    store__json_time(o, "snoozedUntil", it->snoozed_until);
    store__json_time(o, "slaDueAt", it->sla_due_at);
    json_object_set_new(o, "notes", h.notes);
    json_object_set_new(o, "history", h.history);
    tower__v1__view_item__free_unpacked(it, NULL);
    if (st != CT_OK) {
        json_decref(o);
        return st;
    }
    *out = o;
    return CT_OK;
}

/* ---- closed exceptions, most recently closed first ------------------------------------------------------ */

ct_status store_closed_scan(store_reader *r, const store_closed_query *q, store_item_fn fn, void *ctx, char **next_cursor)
{
    if (next_cursor) *next_cursor = NULL;
    unsigned char start[STORE__TIME_KEY + 600];
    size_t sl = 0;
    if (q->cursor && *q->cursor) {
        size_t n = strlen(q->cursor);
        if (n % 2 || n / 2 > sizeof start || n / 2 < STORE__TIME_KEY) return CT_INVALID;
        for (size_t i = 0; i < n / 2; i++) {
            unsigned v;
            if (sscanf(q->cursor + 2 * i, "%2x", &v) != 1) return CT_INVALID;
            start[i] = (unsigned char)v;
        }
        sl = n / 2;
    }
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->cidx, &c);
    if (rc) return store__fail(r->s, rc, "open a closed cursor");
    MDB_val k, v;
    if (sl) {
        k.mv_size = sl;
        k.mv_data = start;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        /* Before the cursor's key: the previous one (at the cursor or past it when it is gone). */
        rc = rc == MDB_NOTFOUND ? mdb_cursor_get(c, &k, &v, MDB_LAST) : mdb_cursor_get(c, &k, &v, MDB_PREV);
        if (rc == 0 && k.mv_size == sl && !memcmp(k.mv_data, start, sl)) rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    } else {
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    }
    ct_status st = CT_OK;
    size_t delivered = 0;
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
        if (k.mv_size <= STORE__TIME_KEY) continue;
        if (q->since_ns && store__time_key_ns(k.mv_data) < q->since_ns) break;
        if (q->limit && delivered == q->limit) {
            if (next_cursor) {
                /* The cursor names the last key delivered: kept in start. */
                char *cur = ct_malloc(2 * sl + 1);
                for (size_t i = 0; i < sl; i++) sprintf(cur + 2 * i, "%02x", start[i]);
                *next_cursor = cur;
            }
            break;
        }
        MDB_val ck = {k.mv_size - STORE__TIME_KEY, (char *)k.mv_data + STORE__TIME_KEY}, cv;
        if (mdb_get(r->txn, r->s->closed, &ck, &cv) != 0) continue;
        Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, cv.mv_size, cv.mv_data);
        if (!it) {
            st = store__fail(r->s, MDB_CORRUPTED, "decode a closed exception");
            break;
        }
        int want = !q->view || (it->view && strcmp(it->view, q->view) == 0);
        int stop = 0;
        if (want) {
            stop = fn(ctx, it);
            delivered++;
            sl = k.mv_size < sizeof start ? k.mv_size : sizeof start;
            memcpy(start, k.mv_data, sl);
        }
        tower__v1__view_item__free_unpacked(it, NULL);
        if (stop) break;
    }
    if (st == CT_OK && rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "scan the closed exceptions");
    mdb_cursor_close(c);
    return st;
}

/* ---- the summary's lifecycle figures ------------------------------------------------------------------ */

/* Count the keys of view v in dbi from the instant lo_ns (inclusive) to hi_ns (exclusive; 0: no end). */
static uint64_t count_between(store_reader *r, MDB_dbi dbi, fold_view v, int64_t lo_ns, int64_t hi_ns)
{
    unsigned char key[1 + STORE__TIME_KEY];
    key[0] = (unsigned char)v;
    store__ns_time_key(key + 1, lo_ns);
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, dbi, &c)) return 0;
    MDB_val k = {lo_ns ? sizeof key : 1, key}, val;
    uint64_t n = 0;
    for (int rc = mdb_cursor_get(c, &k, &val, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &val, MDB_NEXT)) {
        const unsigned char *kd = k.mv_data;
        if (k.mv_size < 1 + STORE__TIME_KEY || kd[0] != (unsigned char)v) break;
        if (hi_ns && store__time_key_ns(kd + 1) >= hi_ns) break;
        n++;
    }
    mdb_cursor_close(c);
    return n;
}

void store_life_figures(store_reader *r, fold_view v, int64_t now_ns, store_life_fig *out)
{
    memset(out, 0, sizeof *out);
    char key[64];
    snprintf(key, sizeof key, "unacked/%s", fold_view_name(v));
    out->unacknowledged = store__meta_u64(r->txn, r->s, key);
    MDB_cursor *c = NULL;
    if (mdb_cursor_open(r->txn, r->s->vuna, &c) == 0) {
        unsigned char p = (unsigned char)v;
        MDB_val k = {1, &p}, val;
        if (mdb_cursor_get(c, &k, &val, MDB_SET_RANGE) == 0 && k.mv_size >= 1 + STORE__TIME_KEY &&
            ((const unsigned char *)k.mv_data)[0] == p)
            out->oldest_unacknowledged_ns = store__time_key_ns((const unsigned char *)k.mv_data + 1);
        mdb_cursor_close(c);
    }
    out->snoozed = count_between(r, r->s->vsnz, v, now_ns + 1, 0);
    out->breached = count_between(r, r->s->vdue, v, 0, now_ns);
}
