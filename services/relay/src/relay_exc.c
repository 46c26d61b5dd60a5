/* Exception destinations (docs/outbound.md "Exception changes"): the destination's own consumer reads the
 * events stream; for each event the thread waits until the projector's store (read-only) has applied it, folds
 * the processes it concerns from their stored timelines as of the event (its sequence), diffs each order's and
 * shipment's open exceptions against what the destination last knew of it (relay.lmdb), and commits the new knowledge, the changes to send (an outbox) and the checkpoint
 * in one transaction; then it delivers the outbox in order. A kill at any point repeats deliveries (with the
 * same webhook-id), never loses one. */
#include "relay_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define FETCH_MAX 64
#define FETCH_WAIT_MS 500
#define WAIT_LOG_FIRST_NS 2000000000LL
#define WAIT_LOG_EVERY_NS 30000000000LL
#define ENTITIES_MAX 32

typedef relay__worker worker;

/* The thread's own state (w->ext). */
typedef struct exc {
    store *st;       /* the projector's store, read-only, this thread's handle */
    int missing_logged;
} exc;

/* ---- relay.lmdb keys (beside relay_db.c's 'E' and the planner's 'M', 'S', 'C', 'Q'): 'X' dest NUL "o:ID"
 * knowledge; 'O' dest NUL seq(8) idx(4) the outbox; 'P' dest NUL the checkpoint (8 bytes big-endian) ---- */

static void key_of(ct_buf *k, char tag, const char *dest)
{
    ct_buf_reset(k);
    ct_buf_addc(k, tag);
    ct_buf_adds(k, dest);
    ct_buf_addc(k, '\0');
}

static void be_add(ct_buf *k, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) ct_buf_addc(k, (char)(v >> (8 * i)));
}

static uint64_t read_checkpoint(relay__db *db, const char *dest)
{
    MDB_txn *t = NULL;
    ct_buf k = {0};
    key_of(&k, 'P', dest);
    MDB_val key = {k.len, k.data}, v;
    uint64_t seq = 0;
    if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &t) == 0) {
        if (mdb_get(t, db->dbi, &key, &v) == 0 && v.mv_size == 8)
            for (int i = 0; i < 8; i++) seq = seq << 8 | ((const unsigned char *)v.mv_data)[i];
        mdb_txn_abort(t);
    }
    ct_buf_free(&k);
    return seq;
}

static int put_json(relay__db *db, MDB_txn *t, const ct_buf *k, const json_t *o)
{
    char *txt = json_dumps(o, JSON_COMPACT);
    MDB_val key = {k->len, k->data}, v = {txt ? strlen(txt) : 0, txt};
    int rc = txt ? mdb_put(t, db->dbi, &key, &v, 0) : ENOMEM;
    free(txt);
    return rc;
}

static json_t *get_json(relay__db *db, MDB_txn *t, const ct_buf *k)
{
    MDB_val key = {k->len, k->data}, v;
    if (mdb_get(t, db->dbi, &key, &v) != 0) return NULL;
    json_error_t je;
    return json_loadb(v.mv_data, v.mv_size, 0, &je);
}

/* ---- the store ------------------------------------------------------------------------------------------- */

static int store_ready(worker *w, exc *x)
{
    if (x->st && store_generation_changed(x->st)) {
        store_close(x->st);
        x->st = NULL;
    }
    if (x->st) return 0;
    const char *dir = w->r->store_dir;
    store_opts so = {.dir = dir, .read_only = 1, .probe = 1};
    if (dir && store_open(&x->st, &so) == CT_OK) {
        x->missing_logged = 0;
        return 0;
    }
    x->st = NULL;
    if (!x->missing_logged)
        ct_log(CT_LOG_WARN, "relay", "%s: no store %s yet (the projector's --data): waiting for it", w->d->name,
               dir ? dir : "(none given)");
    x->missing_logged = 1;
    return -1;
}

/* A reader of the store once it has applied seq: NULL when stopping. Logs while it waits. */
static store_reader *reader_at(worker *w, exc *x, uint64_t seq)
{
    int64_t start = relay__mono_ns(), next_log = start + WAIT_LOG_FIRST_NS;
    while (!atomic_load(&w->r->stop)) {
        store_reader *rd = NULL;
        store_stats ss = {0};
        if (store_ready(w, x) == 0 && store_reader_begin(x->st, &rd) == CT_OK) {
            store_reader_stats(rd, &ss);
            if (ss.applied_seq >= seq) return rd;
            store_reader_end(rd);
        }
        if (relay__mono_ns() >= next_log) {
            ct_log(CT_LOG_WARN, "relay", "%s: waiting for the store to apply sequence %llu (applied %llu, %llds): "
                   "is the projector running?", w->d->name, (unsigned long long)seq,
                   (unsigned long long)ss.applied_seq, (long long)((relay__mono_ns() - start) / 1000000000LL));
            next_log = relay__mono_ns() + WAIT_LOG_EVERY_NS;
        }
        relay__nap(w->r, 50000000LL);
    }
    return NULL;
}

/* ---- what an event concerns ------------------------------------------------------------------------------- */

/* "o:ID" or "s:ID". */
static void ekey(char kind, const char *id, char out[RELAY_ID_MAX + 80])
{
    snprintf(out, RELAY_ID_MAX + 80, "%c:%.*s", kind, EVT_MAX_ID, id);
}

/* The entities an event names ("o:ID", "s:ID"): its order, its shipments, an action's exception's entity. */
static void named_entities(const evt_event *e, json_t *set)
{
    char k[RELAY_ID_MAX + 80];
    if (e->order_id) ekey('o', e->order_id, k), json_object_set_new(set, k, json_true());
    const char *ship[16];
    size_t n = relay_ready_ids(e, ship, 16);
    for (size_t i = 0; i < n; i++) ekey('s', ship[i], k), json_object_set_new(set, k, json_true());
    evt_action a = evt_action_of(e);
    evt_exid x;
    const char *why;
    if (a.exception_id && evt_exid_parse(a.exception_id, &x, &why) == 0 && x.kind != 'd')
        ekey(x.kind, x.entity, k), json_object_set_new(set, k, json_true());
}

/* The owner ("o:ID", "s:ID") of an exception, from its id; 0 if it has none (a dead letter, a bad id). */
static int owner_of(const char *exid, char out[RELAY_ID_MAX + 80])
{
    evt_exid x;
    const char *why;
    if (!exid || evt_exid_parse(exid, &x, &why) != 0 || x.kind == 'd') return 0;
    ekey(x.kind, x.entity, out);
    return 1;
}

/* The whole process of an entity (an order's document; a linked shipment's order's): NULL if unknown. */
static json_t *process_doc(store_reader *rd, const char *ek)
{
    json_t *doc = NULL;
    if (store_entity_json(rd, ek[0], ek + 2, 0, &doc) != CT_OK) return NULL;
    const char *oid = ek[0] == 's' ? json_string_value(json_object_get(doc, "orderId")) : NULL;
    json_t *order = NULL;
    if (oid && store_entity_json(rd, 'o', oid, 0, &order) == CT_OK) {
        json_decref(doc);
        return order;
    }
    return doc;
}

/* The events of one entity with a stream sequence up to `upto`, copied out of the store (owned). */
typedef struct evlist {
    evt_event **v;
    size_t n, cap;
    uint64_t upto;
} evlist;

static int on_timeline(void *ctx, const evt_event *e, uint64_t seq)
{
    evlist *l = ctx;
    if (seq > l->upto) return 0;
    size_t len = tower__v1__event__get_packed_size(e);
    uint8_t *buf = ct_malloc(len ? len : 1);
    tower__v1__event__pack(e, buf);
    evt_event *c = NULL;
    evt_error err;
    if (evt_from_protobuf(&c, buf, len, &err) == CT_OK) {
        if (l->n == l->cap) l->v = ct_realloc(l->v, (l->cap = l->cap ? l->cap * 2 : 16) * sizeof *l->v);
        l->v[l->n++] = c;
    } else {
        evt_free(c);
    }
    free(buf);
    return 0;
}

static void evlist_free(evlist *l)
{
    for (size_t i = 0; i < l->n; i++) evt_free(l->v[i]);
    free(l->v);
}

/* One process as of sequence upto: its order (NULL: an unlinked shipment) and shipments, folded. */
typedef struct asof {
    evlist *lists;      /* 0: the order's, 1..ns: the shipments' */
    fold_entity *ships;
    size_t ns;
    fold_result res;
} asof;

static void asof_fold(store_reader *rd, const char *oid, const json_t *sids, uint64_t upto, asof *a)
{
    a->ns = json_array_size(sids);
    a->lists = ct_calloc(a->ns + 1, sizeof *a->lists);
    a->ships = ct_calloc(a->ns ? a->ns : 1, sizeof *a->ships);
    for (size_t i = 0; i <= a->ns; i++) {
        a->lists[i].upto = upto;
        const char *id = i ? json_string_value(json_array_get(sids, i - 1)) : oid;
        if (id) store_timeline(rd, i ? 's' : 'o', id, on_timeline, &a->lists[i]);
        if (i) a->ships[i - 1] = (fold_entity){id, a->lists[i].v, a->lists[i].n};
    }
    fold_process fp = {{oid, a->lists[0].v, a->lists[0].n}, a->ships, a->ns};
    fold_derive_sla(&fp, NULL, &a->res);
}

static void asof_free(asof *a)
{
    fold_result_free(&a->res);
    for (size_t i = 0; i <= a->ns; i++) evlist_free(&a->lists[i]);
    free(a->lists);
    free(a->ships);
}

/* An item as a change carries it: the contract's item shape with its view. */
static json_t *item_json(const fold_item *it)
{
    json_t *o = store_item_to_json(&it->pb, 0);
    json_object_set_new(o, "view", json_string(fold_view_name(it->view)));
    return o;
}

/* The process of a named entity now (membership): its order id (or NULL) and shipment ids (a new array),
 * and its customer (a new string or NULL). */
static json_t *membership(store_reader *rd, const char *ek, char **oid, char **cust)
{
    json_t *doc = process_doc(rd, ek), *sids = json_array();
    const char *o = json_string_value(json_object_get(doc, "orderId"));
    *oid = o ? ct_strdup(o) : NULL;
    const char *c = json_string_value(json_object_get(doc, "customerId"));
    *cust = c ? ct_strdup(c) : NULL;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(doc, "shipments"), i, x)
        if (json_is_string(json_object_get(x, "shipmentId"))) json_array_append(sids, json_object_get(x, "shipmentId"));
    if (!o && ek[0] == 's') json_array_append_new(sids, json_string(ek + 2)); /* an unlinked shipment */
    json_decref(doc);
    return sids;
}

/* Add a process's entities, its open items as of upto, and how its resolved ones closed, to out. */
static void add_process(store_reader *rd, const char *ek, uint64_t upto, json_t *out)
{
    char *oid = NULL, *cust = NULL, k[RELAY_ID_MAX + 80];
    json_t *sids = membership(rd, ek, &oid, &cust), *ents = json_object(), *x;
    json_object_set_new(ents, ek, json_true());
    if (oid) ekey('o', oid, k), json_object_set_new(ents, k, json_true());
    size_t i;
    json_array_foreach(sids, i, x) ekey('s', json_string_value(x), k), json_object_set_new(ents, k, json_true());
    const char *en;
    json_object_foreach(ents, en, x)
        if (!json_object_get(out, en) && json_object_size(out) < ENTITIES_MAX)
            json_object_set_new(out, en, json_pack("{s:[], s:s?, s:{}}", "items", "customer", cust, "closed"));
    asof a = {0};
    asof_fold(rd, oid, sids, upto, &a);
    for (i = 0; i < a.res.n_items; i++) {
        json_t *slot = owner_of(a.res.items[i].exid, k) ? json_object_get(out, k) : NULL;
        if (slot) json_array_append_new(json_object_get(slot, "items"), item_json(&a.res.items[i]));
    }
    for (i = 0; i < a.res.n_closed; i++) {
        json_t *slot = owner_of(a.res.closed[i].exid, k) ? json_object_get(out, k) : NULL;
        if (slot) json_object_set_new(json_object_get(slot, "closed"), a.res.closed[i].exid, item_json(&a.res.closed[i]));
    }
    asof_free(&a);
    json_decref(ents);
    json_decref(sids);
    free(oid);
    free(cust);
}

/* Every entity of the processes an event concerns, as of its sequence: {"o:ID": {"items": [open items],
 * "customer": "...", "closed": {exceptionId: the item of one resolved by a person}}, "s:ID": {...}}. */
static json_t *current_state(store_reader *rd, const evt_event *e, uint64_t seq)
{
    json_t *named = json_object(), *out = json_object();
    named_entities(e, named);
    const char *ek;
    json_t *v;
    json_object_foreach(named, ek, v)
        if (!json_object_get(out, ek)) add_process(rd, ek, seq, out); /* else in a process seen already */
    json_decref(named);
    return out;
}

/* ---- the change envelope (docs/outbound.md) --------------------------------------------------------------- */

/* How a resolved exception closed, as of the event: "resolved" by a person (a closed item of the process with a
 * resolution), else "cleared" (its condition ended, acted on or not). */
static void closure(const json_t *closed, const char *exid, json_t *env)
{
    const json_t *c = json_object_get(closed, exid);
    if (c && json_object_get(c, "resolution")) {
        json_object_set_new(env, "state", json_string("resolved"));
        json_object_set_new(env, "closedAs", json_string("resolved"));
        const char *keys[] = {"resolution", "resolvedBy", "closedAt"};
        for (size_t i = 0; i < 3; i++)
            if (json_object_get(c, keys[i])) json_object_set(env, keys[i], json_object_get(c, keys[i]));
        return;
    }
    json_object_set_new(env, "state", json_string("closed"));
    json_object_set_new(env, "closedAs", json_string("cleared"));
}

static void links(json_t *env, const char *exid, const json_t *item)
{
    json_t *l = json_object();
    char buf[EVT_MAX_EXID + 64];
    snprintf(buf, sizeof buf, "/api/v1/exceptions/%s", exid);
    json_object_set_new(l, "exception", json_string(buf));
    const char *o = json_string_value(json_object_get(item, "orderId"));
    const char *s = json_string_value(json_object_get(item, "shipmentId"));
    if (o) snprintf(buf, sizeof buf, "/api/v1/orders/%s", o), json_object_set_new(l, "order", json_string(buf));
    if (s) snprintf(buf, sizeof buf, "/api/v1/shipments/%s", s), json_object_set_new(l, "shipment", json_string(buf));
    json_object_set_new(env, "links", l);
}

/* The versioned envelope of one change (new reference). */
static json_t *envelope(worker *w, const json_t *closed, const json_t *ch, const char *customer, const evt_event *e,
                        uint64_t seq)
{
    const char *exid = json_string_value(json_object_get(ch, "exceptionId"));
    const char *change = json_string_value(json_object_get(ch, "change"));
    json_t *item = json_object_get(ch, "item");
    char id[EVT_MAX_EXID + 120], type[40], when[48];
    relay_exc_id(w->d, ch, id, sizeof id);
    snprintf(type, sizeof type, "exception.%s", change);
    evt_time_format(e->occurred_at ? e->occurred_at->seconds : 0, e->occurred_at ? e->occurred_at->nanos : 0, when);
    json_t *env = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s, s:O?, s:O}", "version", 1, "id", id, "type", type,
                            "destination", w->d->name, "seq", (json_int_t)seq, "exceptionId", exid, "view",
                            json_object_get(item, "view"), "item", item);
    if (!strcmp(change, "resolved")) closure(closed, exid, env);
    else json_object_set_new(env, "state", json_string(json_object_get(item, "acknowledgedAt") ? "acknowledged" : "open"));
    if (json_integer_value(json_object_get(ch, "n")) > 1) json_object_set(env, "opening", json_object_get(ch, "n"));
    if (customer) json_object_set_new(env, "customerId", json_string(customer));
    json_object_set_new(env, "seenAt", json_pack("{s:s, s:s, s:s}", "eventId", e->event_id, "type", evt_type_name(e),
                                                 "occurredAt", when));
    links(env, exid, item);
    return env;
}

/* ---- one event: diff, then knowledge, outbox and checkpoint in one transaction ------------------------------ */

/* Diff one entity in t: its new knowledge, and its wanted changes into the outbox after *idx. */
static int diff_entity(worker *w, MDB_txn *t, const char *ek, const json_t *now, const evt_event *e, uint64_t seq,
                       uint32_t *idx)
{
    relay__db *db = w->r->db;
    ct_buf k = {0};
    key_of(&k, 'X', w->d->name);
    ct_buf_adds(&k, ek);
    json_t *known = get_json(db, t, &k), *changes = json_array();
    int64_t at = e->occurred_at ? e->occurred_at->seconds * 1000000000LL + e->occurred_at->nanos : 0;
    json_t *next = relay_exc_diff(known, json_object_get(now, "items"), at, changes);
    int rc = 0;
    if (json_object_size(json_object_get(next, "open")) || json_object_size(json_object_get(next, "gone")))
        rc = put_json(db, t, &k, next);
    else if (known) {
        MDB_val key = {k.len, k.data};
        rc = mdb_del(t, db->dbi, &key, NULL);
    }
    const char *customer = json_string_value(json_object_get(now, "customer"));
    size_t i;
    json_t *ch;
    json_array_foreach(changes, i, ch) {
        if (rc || !relay_exc_wants(w->d, ch, customer)) continue;
        json_t *env = envelope(w, json_object_get(now, "closed"), ch, customer, e, seq);
        key_of(&k, 'O', w->d->name);
        be_add(&k, seq, 8);
        be_add(&k, (*idx)++, 4);
        rc = put_json(db, t, &k, env);
        json_decref(env);
    }
    json_decref(known);
    json_decref(next);
    json_decref(changes);
    ct_buf_free(&k);
    return rc;
}

/* The event at seq: its changes into the outbox and the checkpoint, one transaction. 0, or an LMDB error. */
static int take_event(worker *w, store_reader *rd, const evt_event *e, uint64_t seq)
{
    relay__db *db = w->r->db;
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(db->env, NULL, 0, &t);
    uint32_t idx = 0;
    if (!rc && e && rd) {
        json_t *cur = current_state(rd, e, seq);
        const char *ek;
        json_t *now;
        json_object_foreach(cur, ek, now) if (!rc) rc = diff_entity(w, t, ek, now, e, seq, &idx);
        json_decref(cur);
    }
    ct_buf k = {0};
    key_of(&k, 'P', w->d->name);
    unsigned char be[8];
    for (int i = 0; i < 8; i++) be[i] = (unsigned char)(seq >> (56 - 8 * i));
    MDB_val key = {k.len, k.data}, v = {8, be};
    if (!rc) rc = mdb_put(t, db->dbi, &key, &v, 0);
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    ct_buf_free(&k);
    if (rc) ct_log(CT_LOG_ERROR, "relay", "%s: cannot record sequence %llu in relay.lmdb: %s", w->d->name,
                   (unsigned long long)seq, mdb_strerror(rc));
    return rc;
}

/* ---- the outbox --------------------------------------------------------------------------------------------- */

/* The first change waiting (a new reference, and its key in k), or NULL. */
static json_t *outbox_first(worker *w, ct_buf *k)
{
    relay__db *db = w->r->db;
    MDB_txn *t = NULL;
    MDB_cursor *c = NULL;
    json_t *env = NULL;
    ct_buf p = {0};
    key_of(&p, 'O', w->d->name);
    if (mdb_txn_begin(db->env, NULL, MDB_RDONLY, &t) == 0 && mdb_cursor_open(t, db->dbi, &c) == 0) {
        MDB_val key = {p.len, p.data}, v;
        if (mdb_cursor_get(c, &key, &v, MDB_SET_RANGE) == 0 && key.mv_size > p.len &&
            memcmp(key.mv_data, p.data, p.len) == 0) {
            json_error_t je;
            env = json_loadb(v.mv_data, v.mv_size, 0, &je);
            ct_buf_reset(k);
            ct_buf_add(k, key.mv_data, key.mv_size);
            if (!env) env = json_object(); /* unreadable: dropped below (never blocks the queue) */
        }
    }
    if (c) mdb_cursor_close(c);
    if (t) mdb_txn_abort(t);
    ct_buf_free(&p);
    return env;
}

static void outbox_drop(worker *w, const ct_buf *k)
{
    MDB_txn *t = NULL;
    MDB_val key = {k->len, k->data};
    int rc = mdb_txn_begin(w->r->db->env, NULL, 0, &t);
    if (!rc) rc = mdb_del(t, w->r->db->dbi, &key, NULL);
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    if (rc) ct_log(CT_LOG_ERROR, "relay", "%s: cannot clear a sent change: %s", w->d->name, mdb_strerror(rc));
}

static const char *str_or(const json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* Append a change given up to STATE/NAME.dead.ndjson (locked as relay.c's). */
static void exc_dead_letter(worker *w, const json_t *env, json_t *attempts)
{
    json_t *o = json_pack("{s:O, s:s, s:s, s:o}", "change", env, "exceptionId",
                          str_or(json_object_get(env, "exceptionId"), ""), "destination", w->d->name,
                          "attempts", attempts ? json_incref(attempts) : json_array());
    /* What an event destination's dead letters say too (the Integrations page lists them): the event at which
     * the change was seen, and the change's type. */
    json_object_set(o, "seq", json_object_get(env, "seq"));
    json_object_set_new(o, "eventId", json_string(str_or(json_object_get(json_object_get(env, "seenAt"), "eventId"), "")));
    json_object_set_new(o, "type", json_string(str_or(json_object_get(env, "type"), "exception")));
    relay__time_json(o, "deadAt", ct_now_ns());
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *p = relay__state_path(w->r->state_dir, w->d->name, ".dead.ndjson");
    FILE *f = fopen(p, "a");
    if (f) flock(fileno(f), LOCK_EX);
    if (!f || fprintf(f, "%s\n", txt) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        ct_log(CT_LOG_ERROR, "relay", "%s: cannot append a dead letter to %s: %s", w->d->name, p, strerror(errno));
    if (f) fclose(f);
    free(p);
    free(txt);
    atomic_fetch_add(&w->f->dead, 1);
    ct_log(CT_LOG_WARN, "relay", "%s: gave up %s: a dead letter", w->d->name,
           str_or(json_object_get(env, "id"), "a change"));
}

/* One change: 0 done (delivered or dead), 1 not (a redrive), -1 stopping. */
static int send_change(worker *w, const json_t *env, int redrive)
{
    ct_buf body = {0};
    relay__exc_payload(w->d, env, (int64_t)time(NULL), &body);
    const char *id = json_string_value(json_object_get(env, "id"));
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(env, "seq"));
    json_t *attempts = NULL;
    int rc = relay__deliver_body(w->r, w, id ? id : "?", &body, NULL, &seq, 1, redrive, &attempts);
    if (rc == 2) exc_dead_letter(w, env, attempts), rc = 0;
    json_decref(attempts);
    ct_buf_free(&body);
    return rc;
}

/* Deliver the outbox in order. 0 empty; -1 stopping. */
static int drain(worker *w)
{
    ct_buf k = {0};
    json_t *env;
    int rc = 0;
    while (rc == 0 && (env = outbox_first(w, &k)) != NULL) {
        if (!json_is_string(json_object_get(env, "id")))
            ct_log(CT_LOG_WARN, "relay", "%s: dropped an unreadable change from relay.lmdb", w->d->name);
        if (json_is_string(json_object_get(env, "id")) && send_change(w, env, 0) != 0) rc = -1;
        else outbox_drop(w, &k);
        json_decref(env);
    }
    ct_buf_free(&k);
    return rc;
}

int relay__exc_redrive_one(relay *r, relay__worker *w, json_t *line)
{
    (void)r;
    json_t *env = json_object_get(line, "change");
    return json_is_object(env) && send_change(w, env, 1) == 0;
}

/* ---- the thread ------------------------------------------------------------------------------------------- */

/* A fetched batch, event by event. 0, or -1 (stopping or failing: the rest goes again). */
static int take_batch(worker *w, exc *x, const bus_batch *batch)
{
    for (size_t i = 0; i < batch->n && !atomic_load(&w->r->stop); i++) {
        const bus_msg *m = &batch->v[i];
        if (m->seq <= w->seq) continue;
        atomic_store(&w->f->backlog, m->pending + 1);
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_protobuf(&e, m->data, m->len, &err) != CT_OK) evt_free(e), e = NULL;
        store_reader *rd = e ? reader_at(w, x, m->seq) : NULL;
        int rc = e && !rd ? -1 : take_event(w, rd, e, m->seq);
        store_reader_end(rd);
        evt_free(e);
        if (rc) return -1;
        w->seq = m->seq;
        atomic_store(&w->f->backlog, m->pending);
        relay__write_checkpoint(w);
        if (drain(w) != 0) return -1;
    }
    return 0;
}

typedef struct exc_take_ctx {
    worker *w;
    exc *x;
} exc_take_ctx;

static int exc_take(void *ctx, bus_batch *batch)
{
    exc_take_ctx *t = ctx;
    return take_batch(t->w, t->x, batch); /* a failure: from the checkpoint again */
}

static void run(worker *w, exc *x)
{
    relay *r = w->r;
    exc_take_ctx t = {w, x};
    bus_consumer *c = NULL;
    while (!atomic_load(&r->stop) && drain(w) == 0) {
        if (relay__consume(w, &c, w->seq + 1, FETCH_MAX, FETCH_WAIT_MS, exc_take, &t) != 0) continue;
        relay__write_status(w, 0);
    }
    bus_consumer_close(c);
}

void *relay__exc_main(void *arg)
{
    worker *w = arg;
    exc x = {0};
    w->ext = &x;
    if (!w->r->db) {
        relay__set_error(w, "no relay.lmdb in the state directory: exception changes cannot be kept");
        ct_log(CT_LOG_ERROR, "relay", "%s: no relay.lmdb: this exception destination does nothing", w->d->name);
        while (!atomic_load(&w->r->stop)) relay__nap(w->r, 200000000LL);
        return NULL;
    }
    w->seq = read_checkpoint(w->r->db, w->d->name);
    atomic_store(&w->f->checkpoint, w->seq);
    relay__write_status(w, 1);
    run(w, &x);
    relay__write_status(w, 1);
    store_close(x.st);
    w->ext = NULL;
    return NULL;
}
