/* A kind = route_planner destination's thread (docs/outbound.md "Route planner"): it folds the events stream
 * into the readiness of each shipment (relay_ready.c) in STATE/relay.lmdb, one transaction per fetched batch
 * with the sequence it reached, so that a restart or a kill resumes exactly there; a shipment that becomes
 * ready and unblocked gets a route request in the destination's queue in the same transaction (once per
 * shipment set: the request's id comes from the set). The queue goes out in order, one request at a time, with
 * the destination's backoff, Retry-After and breaker; while the breaker is open the requests are held (the
 * fold goes on). A request the planner took is recorded on the stream as the routeRequested event it carried
 * (its id from the set, its content fixed when queued: a redo after a crash publishes the same event again,
 * which JetStream and the store drop as an exact duplicate), then leaves the queue. */
#include "relay_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define FETCH_MAX 64
#define QUEUE_MAX 100000     /* held requests at most: then the fold waits */
#define HELD_SHOWN 200       /* held shipments listed in the status file */
#define PUBLISH_WAIT_MS 3000 /* then again a second later (NATS down: the request stays at the head) */

typedef struct planner {
    relay__worker *w;
    relay__db *db;
    uint64_t fold_seq;    /* the last stream sequence folded (in the LMDB, with the fold) */
    uint64_t held;        /* requests in the queue */
    int64_t next_try_ns;  /* monotonic: no attempt before (backoff, Retry-After) */
    int attempt;          /* attempts of the queue's head so far */
    json_t *attempts;     /* and what they got (a dead letter's list) */
    uint64_t taken_qn;    /* the head the planner took, not yet recorded on the stream (NATS down): 0 none */
} planner;

/* ---- keys: a tag, the destination, NUL, the rest ---- */

static void key(ct_buf *k, char tag, const char *dest, const void *rest, size_t n)
{
    ct_buf_reset(k);
    ct_buf_addc(k, tag);
    ct_buf_adds(k, dest);
    ct_buf_addc(k, '\0');
    if (n) ct_buf_add(k, rest, n);
}

static int get_u64(planner *p, MDB_txn *t, const char *name, uint64_t *v)
{
    ct_buf k = {0};
    key(&k, 'M', p->w->d->name, name, strlen(name));
    MDB_val kv = {k.len, k.data}, dv;
    int rc = mdb_get(t, p->db->dbi, &kv, &dv);
    *v = 0;
    if (!rc && dv.mv_size == sizeof *v) memcpy(v, dv.mv_data, sizeof *v);
    ct_buf_free(&k);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_u64(planner *p, MDB_txn *t, const char *name, uint64_t v)
{
    ct_buf k = {0};
    key(&k, 'M', p->w->d->name, name, strlen(name));
    MDB_val kv = {k.len, k.data}, dv = {sizeof v, &v};
    int rc = mdb_put(t, p->db->dbi, &kv, &dv, 0);
    ct_buf_free(&k);
    return rc;
}

static int get_ship(planner *p, MDB_txn *t, const char *sid, relay_ship *s)
{
    ct_buf k = {0};
    key(&k, 'S', p->w->d->name, sid, strlen(sid));
    MDB_val kv = {k.len, k.data}, dv;
    int rc = mdb_get(t, p->db->dbi, &kv, &dv);
    memset(s, 0, sizeof *s);
    if (!rc && dv.mv_size == sizeof *s) memcpy(s, dv.mv_data, sizeof *s);
    ct_buf_free(&k);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_ship(planner *p, MDB_txn *t, const char *sid, const relay_ship *s)
{
    ct_buf k = {0};
    key(&k, 'S', p->w->d->name, sid, strlen(sid));
    MDB_val kv = {k.len, k.data}, dv = {sizeof *s, (void *)s};
    int rc = mdb_put(t, p->db->dbi, &kv, &dv, 0);
    ct_buf_free(&k);
    return rc;
}

static int cancelled(planner *p, MDB_txn *t, const char *oid)
{
    if (!oid[0]) return 0;
    ct_buf k = {0};
    key(&k, 'C', p->w->d->name, oid, strlen(oid));
    MDB_val kv = {k.len, k.data}, dv;
    int rc = mdb_get(t, p->db->dbi, &kv, &dv);
    ct_buf_free(&k);
    return rc == 0;
}

static int wh_ok(const relay_dest *d, const relay_ship *s)
{
    if (!d->n_warehouses) return 1;
    for (size_t i = 0; i < d->n_warehouses; i++)
        if (!strcmp(d->warehouses[i], s->warehouse_id)) return 1;
    return 0;
}

/* ---- the queue: 'Q' dest NUL <8-byte big-endian number> -> the routeRequested event (JSON) ---- */

static void qkey(ct_buf *k, const char *dest, uint64_t qn)
{
    unsigned char be[8];
    for (int i = 0; i < 8; i++) be[i] = (unsigned char)(qn >> (56 - 8 * i));
    key(k, 'Q', dest, be, 8);
}

static int enqueue(planner *p, MDB_txn *t, const char *sid, relay_ship *s)
{
    uint64_t qn;
    int rc = get_u64(p, t, "qn", &qn);
    if (rc) return rc;
    const char *ids[1] = {sid};
    json_t *ev = relay_request_event(ids, 1, s->warehouse_id, ct_now_ns(), p->w->r->instance);
    char *txt = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    ct_buf k = {0};
    qkey(&k, p->w->d->name, qn + 1);
    MDB_val kv = {k.len, k.data}, dv = {strlen(txt), txt};
    rc = mdb_put(t, p->db->dbi, &kv, &dv, 0);
    if (!rc) rc = put_u64(p, t, "qn", qn + 1);
    relay__note n = {.dest = p->w->d->name, .status = "queued", .type = "routeRequested", .event_id = "",
                     .at_ns = ct_now_ns()};
    char id[32];
    relay_request_id(ids, 1, id);
    n.event_id = id;
    if (!rc) rc = relay__db_note_key(p->db, t, 's', sid, p->w->d->name, &n);
    if (!rc && s->order_id[0]) rc = relay__db_note_key(p->db, t, 'o', s->order_id, p->w->d->name, &n);
    s->queued = 1;
    free(txt);
    ct_buf_free(&k);
    return rc;
}

/* ---- the fold ---- */

static int fold_event(planner *p, MDB_txn *t, const evt_event *e, uint64_t *queued)
{
    int rc = 0;
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_ORDER_CANCELLED && e->order_id) {
        ct_buf k = {0};
        key(&k, 'C', p->w->d->name, e->order_id, strlen(e->order_id));
        MDB_val kv = {k.len, k.data}, dv = {1, "1"};
        rc = mdb_put(t, p->db->dbi, &kv, &dv, 0);
        ct_buf_free(&k);
    }
    const char *ids[64];
    size_t n = relay_ready_ids(e, ids, 64);
    for (size_t i = 0; i < n && !rc; i++) {
        relay_ship s;
        if (strlen(ids[i]) > RELAY_ID_MAX || (rc = get_ship(p, t, ids[i], &s)) != 0) continue;
        if (!relay_ready_apply(&s, e)) continue;
        if (relay_ready_due(&s, cancelled(p, t, s.order_id)) && wh_ok(p->w->d, &s)) {
            rc = enqueue(p, t, ids[i], &s);
            if (!rc) (*queued)++;
        }
        if (!rc) rc = put_ship(p, t, ids[i], &s);
    }
    return rc;
}

/* Fold a batch in one transaction with the sequence reached. 0, or -1 (nothing of it kept). */
static int fold_batch(planner *p, const bus_batch *batch);

static int planner_take(void *ctx, bus_batch *batch) { return fold_batch(ctx, batch); }

static int fold_batch(planner *p, const bus_batch *batch)
{
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(p->db->env, NULL, 0, &t);
    uint64_t seq = p->fold_seq, queued = 0, pending = 0;
    for (size_t i = 0; i < batch->n && !rc; i++) {
        const bus_msg *m = &batch->v[i];
        if (m->seq <= seq) continue;
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_protobuf(&e, m->data, m->len, &err) == CT_OK) rc = fold_event(p, t, e, &queued);
        evt_free(e);
        seq = m->seq;
        pending = m->pending;
    }
    if (!rc) rc = put_u64(p, t, "seq", seq);
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    if (rc) {
        ct_log(CT_LOG_ERROR, "relay", "%s: cannot keep the readiness of the shipments: %s", p->w->d->name,
               mdb_strerror(rc));
        relay__set_error(p->w, "the relay's state (relay.lmdb) cannot be written");
        return -1;
    }
    p->held += queued;
    p->fold_seq = seq;
    p->w->seq = seq;
    atomic_store(&p->w->f->backlog, pending);
    relay__write_checkpoint(p->w); /* STATE/NAME.seq, for the eye: the LMDB's sequence is the one resumed from */
    return 0;
}

/* ---- the queue's head ---- */

/* The head: its number and event (new reference). 1 found, 0 none. */
static int head(planner *p, uint64_t *qn, json_t **ev)
{
    MDB_txn *t = NULL;
    MDB_cursor *c = NULL;
    int found = 0;
    if (mdb_txn_begin(p->db->env, NULL, MDB_RDONLY, &t) != 0) return 0;
    ct_buf k = {0};
    key(&k, 'Q', p->w->d->name, NULL, 0);
    MDB_val kv = {k.len, k.data}, dv;
    if (mdb_cursor_open(t, p->db->dbi, &c) == 0 && mdb_cursor_get(c, &kv, &dv, MDB_SET_RANGE) == 0 &&
        kv.mv_size == k.len + 8 && !memcmp(kv.mv_data, k.data, k.len)) {
        const unsigned char *be = (const unsigned char *)kv.mv_data + k.len;
        *qn = 0;
        for (int i = 0; i < 8; i++) *qn = *qn << 8 | be[i];
        json_error_t je;
        *ev = json_loadb(dv.mv_data, dv.mv_size, 0, &je);
        found = *ev != NULL;
    }
    if (c) mdb_cursor_close(c);
    mdb_txn_abort(t);
    ct_buf_free(&k);
    return found;
}

static json_t *ship_ids(json_t *ev) { return json_object_get(json_object_get(ev, "routeRequested"), "shipmentIds"); }

/* Whether every shipment of the request still needs it (not routed, blocked or cancelled meanwhile). */
static int still_wanted(planner *p, json_t *ev)
{
    MDB_txn *t = NULL;
    if (mdb_txn_begin(p->db->env, NULL, MDB_RDONLY, &t) != 0) return 1;
    int ok = 1;
    size_t i;
    json_t *v;
    json_array_foreach(ship_ids(ev), i, v)
    {
        relay_ship s;
        const char *sid = json_string_value(v);
        if (!sid || strlen(sid) > RELAY_ID_MAX || get_ship(p, t, sid, &s) != 0) continue;
        s.queued = 0;
        if (!relay_ready_due(&s, cancelled(p, t, s.order_id))) ok = 0;
    }
    mdb_txn_abort(t);
    return ok;
}

/* The head leaves the queue: "requested" (the planner took it), "refused", or NULL (no longer needed). */
static int finish(planner *p, uint64_t qn, json_t *ev, const char *outcome)
{
    MDB_txn *t = NULL;
    int rc = mdb_txn_begin(p->db->env, NULL, 0, &t);
    ct_buf k = {0};
    qkey(&k, p->w->d->name, qn);
    MDB_val kv = {k.len, k.data};
    if (!rc) rc = mdb_del(t, p->db->dbi, &kv, NULL);
    relay__note n = {.dest = p->w->d->name, .status = outcome, .type = "routeRequested",
                     .event_id = json_string_value(json_object_get(ev, "eventId")), .at_ns = ct_now_ns()};
    size_t i;
    json_t *v;
    json_array_foreach(ship_ids(ev), i, v)
    {
        relay_ship s;
        const char *sid = json_string_value(v);
        if (rc || !sid || strlen(sid) > RELAY_ID_MAX || (rc = get_ship(p, t, sid, &s)) != 0) continue;
        s.queued = 0;
        if (outcome && !strcmp(outcome, "requested")) s.requested = 1;
        if (outcome && !strcmp(outcome, "refused")) s.refused = 1;
        rc = put_ship(p, t, sid, &s);
        if (!rc) rc = relay__db_note_key(p->db, t, 's', sid, p->w->d->name, outcome ? &n : NULL);
        if (!rc && s.order_id[0]) rc = relay__db_note_key(p->db, t, 'o', s.order_id, p->w->d->name, outcome ? &n : NULL);
    }
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    ct_buf_free(&k);
    relay__db_sync(p->db);
    if (rc) ct_log(CT_LOG_ERROR, "relay", "%s: cannot update its queue: %s", p->w->d->name, mdb_strerror(rc));
    if (!rc && p->held) p->held--;
    p->attempt = 0;
    json_decref(p->attempts);
    p->attempts = json_array();
    return rc ? -1 : 0;
}

/* ---- one attempt of the head ---- */

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    (void)tag;
    *(int *)ctx = ack->result == BUS_PUB_STORED || ack->result == BUS_PUB_DUPLICATE;
}

/* Record the request on the stream: the routeRequested it carried, stored by JetStream (or had already: the
 * same message id). 0, or -1. */
static int publish(planner *p, json_t *ev)
{
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_json(&e, ev, &err) != CT_OK) return -1;
    int stored = 0;
    ct_status st = bus_publish_event(p->w->r->b, e, 0);
    if (st == CT_OK) st = bus_publish_wait(p->w->r->b, PUBLISH_WAIT_MS, on_ack, &stored);
    evt_free(e);
    return st == CT_OK && stored ? 0 : -1;
}

static void dead_request(planner *p, uint64_t qn, json_t *ev)
{
    json_t *o = json_object();
    json_object_set_new(o, "seq", json_integer((json_int_t)qn));
    json_object_set(o, "eventId", json_object_get(ev, "eventId"));
    json_object_set_new(o, "type", json_string("routeRequested"));
    json_object_set_new(o, "destination", json_string(p->w->d->name));
    relay__time_json(o, "deadAt", ct_now_ns());
    json_object_set(o, "attempts", p->attempts);
    json_object_set(o, "request", ev);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    char *path = relay__state_path(p->w->r->state_dir, p->w->d->name, ".dead.ndjson");
    FILE *f = fopen(path, "a");
    if (f) flock(fileno(f), LOCK_EX);
    if (!f || fprintf(f, "%s\n", txt) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        ct_log(CT_LOG_ERROR, "relay", "%s: cannot append a dead letter to %s: %s", p->w->d->name, path, strerror(errno));
    if (f) fclose(f);
    free(path);
    free(txt);
    atomic_fetch_add(&p->w->f->dead, 1);
}

static int record(planner *p, uint64_t qn, json_t *ev);

/* The planner's answer: counters, breaker, and what becomes of the head. 0 go on; 1 wait. */
static int outcome(planner *p, uint64_t qn, json_t *ev, const relay__outcome *oc)
{
    relay__worker *w = p->w;
    int ok = oc->status >= 200 && oc->status < 300;
    relay_breaker_state before = w->br.state;
    if (ok) {
        atomic_fetch_add(&w->f->delivered, 1);
        atomic_store(&w->f->last_ok_ns, ct_now_ns());
        atomic_store(&w->f->failing_since_ns, 0);
    } else {
        atomic_fetch_add(&w->f->failed, 1);
        if (!atomic_load(&w->f->failing_since_ns)) atomic_store(&w->f->failing_since_ns, ct_now_ns());
    }
    relay_breaker_result(&w->br, ok, relay__mono_ns());
    relay__set_breaker(w, before);
    const char *id = json_string_value(json_object_get(ev, "eventId"));
    if (ok) {
        return record(p, qn, ev);
    }
    char msg[300];
    snprintf(msg, sizeof msg, "%s: %s", id ? id : "?", oc->error[0] ? oc->error : "HTTP error");
    relay__set_error(w, msg);
    ct_log(CT_LOG_INFO, "relay", "%s: attempt %d of %s failed: %s", w->d->name, p->attempt, id ? id : "?", msg);
    if (!relay__retryable(w->d, oc->status)) { /* refused: a dead letter, not asked again */
        dead_request(p, qn, ev);
        ct_log(CT_LOG_WARN, "relay", "%s: the planner refused %s: a dead letter", w->d->name, id ? id : "?");
        return finish(p, qn, ev, "refused") == 0 ? 0 : 1;
    }
    int64_t delay = relay_backoff_ns(p->attempt, w->d->backoff_min_ns, w->d->backoff_max_ns, &w->rng);
    if ((oc->status == 429 || oc->status == 503) && oc->retry_after_ns >= 0)
        delay = oc->retry_after_ns < w->d->backoff_max_ns ? oc->retry_after_ns : w->d->backoff_max_ns;
    p->next_try_ns = relay__mono_ns() + delay;
    return 1;
}

/* The planner took the head: on the stream, then out of the queue. 0 go on; 1 wait (NATS: again in 1 s, without
 * asking the planner again). */
static int record(planner *p, uint64_t qn, json_t *ev)
{
    if (publish(p, ev) != 0) {
        p->taken_qn = qn;
        relay__set_error(p->w, "the route request was taken but cannot be recorded on the stream (NATS)");
        p->next_try_ns = relay__mono_ns() + 1000000000LL;
        return 1;
    }
    p->taken_qn = 0;
    return finish(p, qn, ev, "requested") == 0 ? 0 : 1;
}

static void attempt(planner *p, uint64_t qn, json_t *ev, relay__outcome *oc)
{
    relay__worker *w = p->w;
    const char *id = json_string_value(json_object_get(ev, "eventId"));
    char hid[RELAY_ID_MAX + 80];
    snprintf(hid, sizeof hid, "%s.%s", id ? id : "", w->d->name);
    json_t *env = json_pack("{s:i, s:s, s:s, s:i, s:s, s:O}", "version", 1, "id", hid, "destination", w->d->name,
                            "seq", 0, "type", "routeRequested", "event", ev);
    char *body = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    relay__http_post(&w->http, w->d, hid, body, strlen(body), oc);
    free(body);
    atomic_fetch_add(&w->f->attempts, 1);
    p->attempt++;
    json_t *a = json_object();
    relay__time_json(a, "at", ct_now_ns());
    json_object_set_new(a, "status", json_integer(oc->status));
    if (oc->error[0]) json_object_set_new(a, "error", json_string(oc->error));
    json_array_append_new(p->attempts, a);
    (void)qn;
}

/* Send what the queue holds, in order, while the planner takes it. 0: the queue is empty; 1: requests wait
 * (a backoff, an open breaker). */
static int pump(planner *p)
{
    relay__worker *w = p->w;
    while (!atomic_load(&w->r->stop)) {
        uint64_t qn = 0;
        json_t *ev = NULL;
        if (!head(p, &qn, &ev)) return 0;
        int rc = 1;
        int64_t wait;
        if (qn == p->taken_qn) { /* taken by the planner: recorded (again: an exact duplicate is dropped) */
            rc = relay__mono_ns() >= p->next_try_ns ? record(p, qn, ev) : 1;
        } else if (!still_wanted(p, ev)) {
            rc = finish(p, qn, ev, NULL);
        } else if (relay__mono_ns() >= p->next_try_ns) {
            relay_breaker_state before = w->br.state;
            if (relay_breaker_allow(&w->br, relay__mono_ns(), &wait)) {
                relay__set_breaker(w, before);
                relay__outcome oc;
                attempt(p, qn, ev, &oc);
                rc = outcome(p, qn, ev, &oc);
            }
        }
        json_decref(ev);
        relay__write_status(w, 0);
        if (rc) return 1;
    }
    return 1;
}

/* ---- status: the held requests ---- */

static json_t *status_extra(relay__worker *w)
{
    planner *p = w->ext;
    json_t *o = json_object(), *list = json_array();
    json_object_set_new(o, "kind", json_string("route_planner"));
    json_object_set_new(o, "held", json_integer((json_int_t)p->held));
    atomic_store(&w->f->held, p->held);
    MDB_txn *t = NULL;
    MDB_cursor *c = NULL;
    ct_buf k = {0};
    key(&k, 'Q', w->d->name, NULL, 0);
    if (mdb_txn_begin(p->db->env, NULL, MDB_RDONLY, &t) == 0 && mdb_cursor_open(t, p->db->dbi, &c) == 0) {
        MDB_val kv = {k.len, k.data}, dv;
        for (int rc = mdb_cursor_get(c, &kv, &dv, MDB_SET_RANGE); !rc && json_array_size(list) < HELD_SHOWN;
             rc = mdb_cursor_get(c, &kv, &dv, MDB_NEXT)) {
            if (kv.mv_size != k.len + 8 || memcmp(kv.mv_data, k.data, k.len)) break;
            json_error_t je;
            json_t *ev = json_loadb(dv.mv_data, dv.mv_size, 0, &je);
            if (!json_array_size(list)) json_object_set(o, "heldSince", json_object_get(ev, "occurredAt"));
            size_t i;
            json_t *v;
            json_array_foreach(ship_ids(ev), i, v) json_array_append(list, v);
            json_decref(ev);
        }
    }
    if (c) mdb_cursor_close(c);
    if (t) mdb_txn_abort(t);
    ct_buf_free(&k);
    json_object_set_new(o, "heldShipments", list);
    return o;
}

/* ---- the thread ---- */

static int planner_init(planner *p, relay__worker *w)
{
    memset(p, 0, sizeof *p);
    p->w = w;
    p->db = w->r->db;
    p->attempts = json_array();
    MDB_txn *t = NULL;
    if (!p->db || mdb_txn_begin(p->db->env, NULL, MDB_RDONLY, &t) != 0) return -1;
    get_u64(p, t, "seq", &p->fold_seq);
    ct_buf k = {0};
    key(&k, 'Q', w->d->name, NULL, 0);
    MDB_cursor *c = NULL;
    MDB_val kv = {k.len, k.data}, dv;
    if (mdb_cursor_open(t, p->db->dbi, &c) == 0)
        for (int rc = mdb_cursor_get(c, &kv, &dv, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(c, &kv, &dv, MDB_NEXT)) {
            if (kv.mv_size != k.len + 8 || memcmp(kv.mv_data, k.data, k.len)) break;
            p->held++;
        }
    if (c) mdb_cursor_close(c);
    mdb_txn_abort(t);
    ct_buf_free(&k);
    w->seq = p->fold_seq;
    atomic_store(&w->f->checkpoint, w->seq);
    w->ext = p;
    w->status_extra = status_extra;
    return 0;
}

void *relay__planner_main(void *arg)
{
    relay__worker *w = arg;
    relay *r = w->r;
    planner p;
    if (planner_init(&p, w) != 0) {
        relay__set_error(w, "the relay's state (relay.lmdb) cannot be opened: no route requests");
        ct_log(CT_LOG_ERROR, "relay", "%s: no relay.lmdb in %s: no route requests", w->d->name, r->state_dir);
        relay__write_status(w, 1);
        json_decref(p.attempts);
        return NULL;
    }
    bus_consumer *c = NULL;
    relay__write_status(w, 1);
    while (!atomic_load(&r->stop)) {
        int waiting = pump(&p);
        if (p.held >= QUEUE_MAX) { /* the fold waits for the planner */
            relay__nap(r, 200000000LL);
            continue;
        }
        /* a failure of the fold: again from the last sequence kept */
        if (relay__consume(w, &c, p.fold_seq + 1, FETCH_MAX, waiting ? 100 : 500, planner_take, &p) != 0) continue;
        relay__write_status(w, 0);
    }
    bus_consumer_close(c);
    relay__write_status(w, 1);
    w->status_extra = NULL;
    json_decref(p.attempts);
    return NULL;
}

/* ---- redrive: refused requests back in the queue ---- */

/* One dead letter's request back in the queue, its shipments no longer refused. */
static int requeue(planner *p, json_t *ev)
{
    MDB_txn *t = NULL;
    uint64_t qn = 0;
    int rc = mdb_txn_begin(p->db->env, NULL, 0, &t);
    if (!rc) rc = get_u64(p, t, "qn", &qn);
    char *txt = json_dumps(ev, JSON_COMPACT);
    ct_buf k = {0};
    qkey(&k, p->w->d->name, qn + 1);
    MDB_val kv = {k.len, k.data}, dv = {txt ? strlen(txt) : 0, txt};
    if (!rc) rc = txt ? mdb_put(t, p->db->dbi, &kv, &dv, 0) : ENOMEM;
    if (!rc) rc = put_u64(p, t, "qn", qn + 1);
    size_t i;
    json_t *v;
    json_array_foreach(ship_ids(ev), i, v)
    {
        relay_ship s;
        const char *sid = json_string_value(v);
        if (rc || !sid || strlen(sid) > RELAY_ID_MAX || (rc = get_ship(p, t, sid, &s)) != 0) continue;
        s.refused = 0;
        s.queued = 1;
        rc = put_ship(p, t, sid, &s);
    }
    if (!rc) rc = mdb_txn_commit(t);
    else if (t) mdb_txn_abort(t);
    relay__db_sync(p->db);
    free(txt);
    ct_buf_free(&k);
    return rc ? -1 : 0;
}

int relay__planner_redrive(const relay_dest *d, const char *state_dir, FILE *report)
{
    char *path = relay__state_path(state_dir, d->name, ".dead.ndjson");
    FILE *f = fopen(path, "r+");
    relay__db *db = f ? relay__db_open(state_dir, 0) : NULL;
    if (!f || !db) {
        fprintf(report, "%s: no dead letters (%s)\n", d->name, path);
        if (f) fclose(f);
        free(path);
        return 0;
    }
    flock(fileno(f), LOCK_EX);
    relay__worker w = {.d = d};
    planner p = {.w = &w, .db = db};
    ct_buf keep = {0};
    char *line = NULL;
    size_t cap = 0, done = 0, left = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        json_t *ev = json_object_get(o, "request");
        int ok = json_is_array(ship_ids(ev)) && requeue(&p, ev) == 0;
        const char *id = json_string_value(json_object_get(ev, "eventId"));
        fprintf(report, "%s %s: %s\n", d->name, id ? id : "?", ok ? "queued again" : "not a route request");
        if (ok) done++;
        else {
            ct_buf_add(&keep, line, (size_t)n);
            left++;
        }
        json_decref(o);
    }
    free(line);
    rewind(f);
    if (ftruncate(fileno(f), 0) != 0 || (keep.len && fwrite(keep.data, 1, keep.len, f) != keep.len) || fflush(f) != 0)
        fprintf(report, "cannot rewrite %s: %s\n", path, strerror(errno));
    fclose(f);
    fprintf(report, "%s: %zu delivered, %zu still dead (a route planner's requests are queued again: the running "
                    "relay sends them)\n", d->name, done, left);
    ct_buf_free(&keep);
    relay__db_close(db);
    free(path);
    return left ? 1 : 0;
}
