/* The store's write path: one batch of events in one LMDB transaction, with its view changes and checkpoint. */
#include "store_apply_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- the set of strings of store_apply_int.h, for the entities a batch touched ------------ */

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

/* The writer's loader's memory blocks: large, a batch decodes many events. */
#define BATCH_ARENA_CHUNK ((size_t)1 << 20)
/* The decoded events the writer keeps across batches, in bytes: the events of the processes that are still
 * moving (a process's events come close together in the stream) are then read and decoded once. */
#define WRITER_CACHE_BYTES ((size_t)256 << 20)

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
            rc = store__item_remove(w, &old);
            if (!rc) store__change_add(w, STORE_OP_REMOVE, old.val, old.len);
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
            store__observe_ack(w, have ? &old : NULL, &nw);
            if (have) rc = store__item_remove(w, &old);
            if (!rc) rc = store__item_put(w, &nw);
            if (!rc) store__change_add(w, have ? STORE_OP_UPDATE : STORE_OP_ADD, nw.val, nw.len);
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
            store__part_count(w, FOLD_VIEW_SLA_BREACHES, 't', e->sla_breached->rule, 1);
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
    for (size_t i = 0; i < w->orders.n && !rc; i++) rc = store__derive_process(w, w->orders.order[i], NULL);
    for (size_t i = 0; i < lone.n && !rc; i++) rc = store__derive_process(w, NULL, lone.order[i]);
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
