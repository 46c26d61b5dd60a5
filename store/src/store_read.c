/* The store's read path: index range scans of views, timelines, dead letters, item JSON and the dump. */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex_encode(char *out, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_decode(unsigned char *out, size_t cap, const char *s, size_t *n)
{
    size_t len = strlen(s);
    if (len % 2 || len / 2 > cap) return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = s[2 * i + (size_t)j];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out[i] = (unsigned char)v;
    }
    *n = len / 2;
    return 0;
}

/* The time key of an instant in ns. */
/* One view scan: the index it ranges over, where it starts, where it stops and what it filters. */
typedef struct view_scan {
    MDB_dbi dbi;                           /* the narrowest index for the query */
    unsigned char prefix[2 + EVT_MAX_ID];  /* view (1) [+ warehouse, carrier or rule + NUL] */
    size_t pl;
    unsigned char start[511];              /* the key to continue after: prefix [+ time key + item key] */
    size_t sl;                             /* == pl: from the start of the range */
    unsigned char cutoff[STORE__TIME_KEY]; /* since_before_ns as a time key (when set) */
    int check_carrier;                     /* the index is by warehouse: filter the carrier on the item */
    int check_rule;                        /* the index is not by rule: filter the rule on the item */
    int check_life;                        /* a state or assignee filter: judged on the item */
    int check_code;                        /* a dead letter's code: judged on the item */
    int check_extra;                       /* customer, channel, reason or SLA state (store_read_filter.c) */
    size_t delivered;                      /* items given to the callback so far */
} view_scan;

/* The narrowest index: warehouse, else carrier, else rule, else the whole view. Returns -1 when the
 * id is longer than any stored one (the scan finds nothing). */
static int scan_choose_index(const store *s, const store_query *q, view_scan *sc)
{
    const char *part = NULL;
    sc->dbi = s->vidx;
    sc->pl = 0;
    sc->prefix[sc->pl++] = (unsigned char)q->view;
    if (q->warehouse && *q->warehouse) {
        sc->dbi = s->vwh;
        part = q->warehouse;
    } else if (q->carrier && *q->carrier) {
        sc->dbi = s->vca;
        part = q->carrier;
    } else if (q->rule && *q->rule) {
        sc->dbi = s->vrule;
        part = q->rule;
    }
    if (part) {
        size_t n = strlen(part);
        if (n > EVT_MAX_ID) return -1;
        memcpy(sc->prefix + sc->pl, part, n);
        sc->pl += n;
        sc->prefix[sc->pl++] = 0;
    }
    sc->check_carrier = sc->dbi == s->vwh && q->carrier && *q->carrier;
    sc->check_rule = sc->dbi != s->vrule && q->rule && *q->rule;
    sc->check_life = (q->state && *q->state && strcmp(q->state, "all") != 0) || q->assignee;
    sc->check_code = q->code && *q->code;
    sc->check_extra = store__filter_extra(q);
    return 0;
}

/* Where the scan starts: the prefix, then the decoded page cursor if any. -1 for a malformed cursor. */
static int scan_set_start(view_scan *sc, const char *cursor)
{
    sc->sl = sc->pl;
    memcpy(sc->start, sc->prefix, sc->pl);
    if (!cursor || !*cursor) return 0;
    size_t cn = 0;
    if (hex_decode(sc->start + sc->pl, sizeof sc->start - sc->pl, cursor, &cn) != 0 || cn < STORE__TIME_KEY)
        return -1;
    sc->sl += cn;
    return 0;
}

/* Position c on the first key of the range: at the start, or just after the cursor's key. */
static int scan_first(MDB_cursor *c, const view_scan *sc, MDB_val *k, MDB_val *v)
{
    k->mv_size = sc->sl;
    k->mv_data = (void *)sc->start;
    int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    if (rc == 0 && sc->sl > sc->pl && k->mv_size == sc->sl && memcmp(k->mv_data, sc->start, sc->sl) == 0)
        rc = mdb_cursor_get(c, k, v, MDB_NEXT);
    return rc;
}

/* Whether index key k is still in the view (and part), and before the cutoff. */
static int scan_in_range(const view_scan *sc, const store_query *q, const MDB_val *k)
{
    const unsigned char *kd = k->mv_data;
    if (k->mv_size < sc->pl + STORE__TIME_KEY || memcmp(kd, sc->prefix, sc->pl) != 0) return 0;
    return !q->since_before_ns || memcmp(kd + sc->pl, sc->cutoff, STORE__TIME_KEY) < 0;
}

/* A cursor to the last item delivered; the next page starts after it (caller frees). */
static char *scan_cursor(const view_scan *sc)
{
    char *cur = ct_malloc(2 * sizeof sc->start + 1);
    hex_encode(cur, sc->start + sc->pl, sc->sl - sc->pl);
    return cur;
}

/* The state and assignee filters (docs/exceptions.md "Lists"). */
static int life_wants(const store_query *q, const Tower__V1__ViewItem *it)
{
    if (q->assignee && (*q->assignee ? !it->assignee || strcmp(it->assignee, q->assignee) != 0 : it->assignee != NULL))
        return 0;
    if (!q->state || !*q->state || strcmp(q->state, "all") == 0) return 1;
    const char *st = store_item_state(it, q->now_ns);
    if (strcmp(q->state, "attention") == 0) return strcmp(st, "open") == 0 || strcmp(st, "acknowledged") == 0;
    return strcmp(st, q->state) == 0;
}

/* The filters the index could not apply. */
static int scan_wants(store_reader *r, const view_scan *sc, const store_query *q, const Tower__V1__ViewItem *it)
{
    return (!sc->check_carrier || (it->carrier_id && strcmp(it->carrier_id, q->carrier) == 0)) &&
           (!sc->check_rule || (it->rule && strcmp(it->rule, q->rule) == 0)) && (!sc->check_life || life_wants(q, it)) &&
           (!sc->check_code || (it->code && strcmp(it->code, q->code) == 0)) &&
           (!sc->check_extra || store__filter_wants(r, q, it));
}

/* The item index key k names, decoded into *out (caller frees with
 * tower__v1__view_item__free_unpacked). */
static ct_status scan_item(store_reader *r, const view_scan *sc, const MDB_val *k, Tower__V1__ViewItem **out)
{
    const unsigned char *kd = k->mv_data;
    MDB_val ik = {k->mv_size - sc->pl - STORE__TIME_KEY, (char *)kd + sc->pl + STORE__TIME_KEY}, iv;
    int rc = mdb_get(r->txn, r->s->items, &ik, &iv);
    if (rc) return store__fail(r->s, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc, "read an indexed item");
    *out = tower__v1__view_item__unpack(NULL, iv.mv_size, iv.mv_data);
    return *out ? CT_OK : store__fail(r->s, MDB_CORRUPTED, "decode an item");
}

/* Read the item index key k names and give it to fn if the filters keep it; *stop: fn asked to stop. */
static ct_status scan_visit(store_reader *r, view_scan *sc, const store_query *q, const MDB_val *k,
                            store_item_fn fn, void *ctx, int *stop)
{
    const unsigned char *kd = k->mv_data;
    Tower__V1__ViewItem *it = NULL;
    ct_status st = scan_item(r, sc, k, &it);
    if (st != CT_OK) return st;
    if (scan_wants(r, sc, q, it)) {
        *stop = fn(ctx, it);
        sc->delivered++;
        sc->sl = k->mv_size;
        memcpy(sc->start, kd, sc->sl);
    }
    tower__v1__view_item__free_unpacked(it, NULL);
    return CT_OK;
}

ct_status store_view_scan(store_reader *r, const store_query *q, store_item_fn fn, void *ctx,
                          char **next_cursor)
{
    if (next_cursor) *next_cursor = NULL;
    if ((unsigned)q->view >= FOLD_VIEW_COUNT) return CT_INVALID;
    view_scan sc = {0};
    if (scan_choose_index(r->s, q, &sc) != 0) return CT_OK; /* no such id can be stored */
    if (scan_set_start(&sc, q->cursor) != 0) return CT_INVALID;
    if (q->since_before_ns) store__ns_time_key(sc.cutoff, q->since_before_ns);

    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, sc.dbi, &c);
    if (rc) return store__fail(r->s, rc, "open a view cursor");
    MDB_val k, v;
    ct_status st = CT_OK;
    int stop = 0;
    rc = scan_first(c, &sc, &k, &v);
    while (rc == 0 && st == CT_OK && !stop && scan_in_range(&sc, q, &k)) {
        if (q->limit && sc.delivered == q->limit) {
            if (next_cursor) *next_cursor = scan_cursor(&sc);
            break;
        }
        st = scan_visit(r, &sc, q, &k, fn, ctx, &stop);
        if (st == CT_OK && !stop) rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (st == CT_OK && rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "scan a view");
    mdb_cursor_close(c);
    return st;
}

/* Count the index keys of sc's range from `from` (a time key) up to sc's cutoff. */
static ct_status count_keys_from(store_reader *r, view_scan *sc, const store_query *q, const unsigned char *from,
                                 uint64_t *out)
{
    memcpy(sc->start, sc->prefix, sc->pl);
    memcpy(sc->start + sc->pl, from, STORE__TIME_KEY);
    sc->sl = sc->pl + STORE__TIME_KEY;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, sc->dbi, &c);
    if (rc) return store__fail(r->s, rc, "open a view cursor");
    MDB_val k, v;
    uint64_t n = 0;
    for (rc = scan_first(c, sc, &k, &v); rc == 0 && scan_in_range(sc, q, &k); rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        n++;
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) return store__fail(r->s, rc, "count a view");
    *out += n;
    return CT_OK;
}

/* The count of items older than q->since_before_ns in the view or one part of it (kind, part): the kept
 * hourly counts of the hours before the cutoff's, plus the index keys of the cutoff's own hour before the
 * cutoff, counted from the nearer end of that hour (its kept count minus the keys after the cutoff). */
static ct_status count_older(store_reader *r, const store_query *q, char kind, const char *part, uint64_t *out)
{
    view_scan sc = {0};
    if (scan_choose_index(r->s, q, &sc) != 0) return CT_OK;
    int64_t cut_hour = q->since_before_ns / STORE_HOUR_NS;
    char pre[96 + EVT_MAX_ID], end[96 + EVT_MAX_ID];
    size_t pl = store__hour_count_key(pre, sizeof pre, (int)q->view, kind, part, -1);
    size_t el = store__hour_count_key(end, sizeof end, (int)q->view, kind, part, cut_hour);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->meta, &c);
    if (rc) return store__fail(r->s, rc, "open the meta cursor");
    MDB_val k = {pl, pre}, v;
    uint64_t n = 0, in_hour = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != el || memcmp(k.mv_data, pre, pl) != 0) break;
        int cmp = memcmp(k.mv_data, end, el);
        if (cmp > 0) break;
        if (v.mv_size == 8) *(cmp == 0 ? &in_hour : &n) += store__get_u64(v.mv_data);
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) return store__fail(r->s, rc, "count a view");
    unsigned char from[STORE__TIME_KEY];
    int64_t hour_start = cut_hour * STORE_HOUR_NS;
    *out = n;
    if (q->since_before_ns - hour_start <= STORE_HOUR_NS / 2) { /* from the hour's start up to the cutoff */
        store__ns_time_key(sc.cutoff, q->since_before_ns);
        store__ns_time_key(from, hour_start);
        return count_keys_from(r, &sc, q, from, out);
    }
    uint64_t after = 0; /* from the cutoff to the hour's end */
    store__ns_time_key(sc.cutoff, hour_start + STORE_HOUR_NS);
    store__ns_time_key(from, q->since_before_ns);
    store_query qe = *q;
    qe.since_before_ns = hour_start + STORE_HOUR_NS;
    ct_status st = count_keys_from(r, &sc, &qe, from, &after);
    if (st == CT_OK) *out = n + (in_hour > after ? in_hour - after : 0);
    return st;
}

ct_status store_view_count(store_reader *r, const store_query *q, uint64_t *out)
{
    *out = 0;
    if ((unsigned)q->view >= FOLD_VIEW_COUNT) return CT_INVALID;
    const char *parts[3] = {q->warehouse, q->carrier, q->rule};
    static const char kinds[3] = {'w', 'c', 'r'};
    int n_parts = 0, which = -1;
    for (int i = 0; i < 3; i++)
        if (parts[i] && *parts[i]) {
            n_parts++;
            which = i;
        }
    int life = (q->state && *q->state && strcmp(q->state, "all") != 0) || q->assignee || (q->code && *q->code) ||
               store__filter_extra(q);
    if (!q->since_before_ns && n_parts == 0 && !life) {
        *out = store_reader_count(r, q->view);
        return CT_OK;
    }
    if (!q->since_before_ns && n_parts == 1 && !life) {
        /* The same key store_apply keeps per view and part (see part_count); an id too long to be
         * stored is in no item. */
        if (strlen(parts[which]) > EVT_MAX_ID) return CT_OK;
        char key[64 + EVT_MAX_ID];
        snprintf(key, sizeof key, "count/%s/%c/%s", fold_view_name(q->view), kinds[which], parts[which]);
        *out = store__meta_u64(r->txn, r->s, key);
        return CT_OK;
    }
    if (q->since_before_ns > 0 && n_parts <= 1 && !life)
        return count_older(r, q, which < 0 ? '-' : kinds[which], which < 0 ? "" : parts[which], out);
    /* No kept count: walk the range of the narrowest index (the part's items, or the view's), cut at
     * since_before_ns (the index is in since order). The cost is O(items in that range): one key read
     * each, plus reading and decoding the item only when a filter the index cannot apply is checked
     * (carrier or rule besides a warehouse), as a page of that size would. */
    view_scan sc = {0};
    if (scan_choose_index(r->s, q, &sc) != 0) return CT_OK; /* no such id can be stored */
    scan_set_start(&sc, NULL);
    if (q->since_before_ns) store__ns_time_key(sc.cutoff, q->since_before_ns);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, sc.dbi, &c);
    if (rc) return store__fail(r->s, rc, "open a view cursor");
    MDB_val k, v;
    ct_status st = CT_OK;
    uint64_t n = 0;
    for (rc = scan_first(c, &sc, &k, &v); rc == 0 && scan_in_range(&sc, q, &k);
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (!sc.check_carrier && !sc.check_rule && !sc.check_life && !sc.check_code && !sc.check_extra) {
            n++;
            continue;
        }
        Tower__V1__ViewItem *it = NULL;
        st = scan_item(r, &sc, &k, &it);
        if (st != CT_OK) break;
        n += (uint64_t)scan_wants(r, &sc, q, it);
        tower__v1__view_item__free_unpacked(it, NULL);
    }
    if (st == CT_OK && rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "count a view");
    mdb_cursor_close(c);
    if (st == CT_OK) *out = n;
    return st;
}

ct_status store_dues_scan(store_reader *r, int64_t until_ns, store_item_fn fn, void *ctx)
{
    unsigned char cutoff[STORE__TIME_KEY];
    store__ns_time_key(cutoff, until_ns);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->dues, &c);
    if (rc) return store__fail(r->s, rc, "open a dues cursor");
    MDB_val k, v;
    ct_status st = CT_OK;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        /* At or before until: a due at exactly until_ns is due. */
        if (k.mv_size < STORE__TIME_KEY || memcmp(k.mv_data, cutoff, STORE__TIME_KEY) > 0) break;
        Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, v.mv_size, v.mv_data);
        if (!it) {
            st = store__fail(r->s, MDB_CORRUPTED, "decode a due");
            break;
        }
        int stop = fn(ctx, it);
        tower__v1__view_item__free_unpacked(it, NULL);
        if (stop) break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (st == CT_OK && rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "scan the dues");
    mdb_cursor_close(c);
    return st;
}

ct_status store_dues_next(store_reader *r, int64_t *due_ns)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->dues, &c);
    if (rc) return store__fail(r->s, rc, "open a dues cursor");
    MDB_val k, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND) return CT_NOT_FOUND;
    if (rc) return store__fail(r->s, rc, "read the next due");
    if (k.mv_size < STORE__TIME_KEY) return store__fail(r->s, MDB_CORRUPTED, "read the next due");
    *due_ns = store__time_key_ns(k.mv_data);
    return CT_OK;
}

ct_status store_timeline(store_reader *r, char kind, const char *id,
                         int (*fn)(void *ctx, const evt_event *e, uint64_t seq), void *ctx)
{
    char key[EVT_MAX_ID + 8];
    int kl = store__entity_key(key, sizeof key, kind, id);
    if (kl < 0) return CT_NOT_FOUND;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->tl, &c);
    if (rc) return store__fail(r->s, rc, "open a timeline cursor");
    MDB_val k = {(size_t)kl, key}, v;
    ct_status st = CT_OK;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    if (rc == MDB_NOTFOUND) st = CT_NOT_FOUND;
    while (rc == 0) {
        MDB_val ek = {v.mv_size - STORE__TIME_KEY, (char *)v.mv_data + STORE__TIME_KEY}, ev;
        rc = mdb_get(r->txn, r->s->events, &ek, &ev);
        if (rc) break;
        evt_event *e = (evt_event *)protobuf_c_message_unpack(&tower__v1__event__descriptor, NULL,
                                                              ev.mv_size - 8, (uint8_t *)ev.mv_data + 8);
        if (!e) {
            rc = MDB_CORRUPTED;
            break;
        }
        int stop = fn(ctx, e, store__get_u64(ev.mv_data));
        evt_free(e);
        if (stop) break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP);
    }
    if (rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "read a timeline");
    mdb_cursor_close(c);
    return st;
}

ct_status store_dead_letter(store_reader *r, uint64_t seq, Tower__V1__DeadLetter **out)
{
    unsigned char sk[8];
    store__put_u64(sk, seq);
    MDB_val k = {8, sk}, v;
    int rc = mdb_get(r->txn, r->s->dlq, &k, &v);
    if (rc == MDB_NOTFOUND) return CT_NOT_FOUND;
    if (rc) return store__fail(r->s, rc, "read a dead letter");
    Tower__V1__DeadLetter *d = tower__v1__dead_letter__unpack(NULL, v.mv_size, v.mv_data);
    if (!d) return store__fail(r->s, MDB_CORRUPTED, "decode a dead letter");
    *out = d;
    return CT_OK;
}

ct_status store_dead_letters_after(store_reader *r, uint64_t after_seq,
                                   int (*fn)(void *ctx, const Tower__V1__DeadLetter *d), void *ctx)
{
    unsigned char sk[8];
    store__put_u64(sk, after_seq + 1);
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->dlq, &c);
    if (rc) return store__fail(r->s, rc, "open a dead-letter cursor");
    MDB_val k = {8, sk}, v;
    ct_status st = CT_OK;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        Tower__V1__DeadLetter *d = tower__v1__dead_letter__unpack(NULL, v.mv_size, v.mv_data);
        if (!d) {
            st = store__fail(r->s, MDB_CORRUPTED, "decode a dead letter");
            break;
        }
        int stop = fn(ctx, d);
        tower__v1__dead_letter__free_unpacked(d, NULL);
        if (stop) break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (st == CT_OK && rc && rc != MDB_NOTFOUND) st = store__fail(r->s, rc, "read dead letters");
    mdb_cursor_close(c);
    return st;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

json_t *store_item_to_json(const Tower__V1__ViewItem *it, int64_t now_ns)
{
    json_t *o = json_object();
    set_str(o, "key", it->key);
    store__json_time(o, "since", it->since);
    set_str(o, "orderId", it->order_id);
    set_str(o, "shipmentId", it->shipment_id);
    set_str(o, "warehouseId", it->warehouse_id);
    set_str(o, "carrierId", it->carrier_id);
    set_str(o, "kind", it->kind);
    set_str(o, "reason", it->reason);
    set_str(o, "sku", it->sku);
    set_str(o, "lastFailure", it->last_failure);
    set_str(o, "interface", it->interface);
    set_str(o, "rule", it->rule);
    if (it->has_seq) json_object_set_new(o, "seq", json_integer((json_int_t)it->seq));
    set_str(o, "code", it->code);
    set_str(o, "message", it->message);
    store__json_time(o, "receivedAt", it->received_at);
    set_str(o, "eventId", it->event_id);
    set_str(o, "producer", it->producer);
    set_str(o, "producerInstance", it->producer_instance);
    set_str(o, "exceptionId", it->exception_id);
    if (now_ns > 0 && it->exception_id) json_object_set_new(o, "state", json_string(store_item_state(it, now_ns)));
    set_str(o, "assignee", it->assignee);
    store__json_time(o, "acknowledgedAt", it->acknowledged_at);
    set_str(o, "acknowledgedBy", it->acknowledged_by);
    store__json_time(o, "snoozedUntil", it->snoozed_until);
    if (it->has_notes && it->notes) json_object_set_new(o, "notes", json_integer(it->notes));
    store__json_time(o, "slaDueAt", it->sla_due_at);
    store__json_time(o, "closedAt", it->closed_at);
    set_str(o, "closedBy", it->closed_by);
    set_str(o, "resolution", it->resolution);
    set_str(o, "resolvedBy", it->resolved_by);
    store__json_time(o, "predictedBy", it->predicted_by);
    store__json_time(o, "promisedBy", it->promised_by);
    set_str(o, "stage", it->stage);
    set_str(o, "basis", it->basis);
    set_str(o, "system", it->system);
    set_str(o, "check", it->check);
    set_str(o, "theirs", it->theirs);
    set_str(o, "ours", it->ours);
    set_str(o, "snapshot", it->snapshot);
    if (now_ns > 0 && it->since) {
        int64_t age = now_ns / 1000000000LL - it->since->seconds;
        json_object_set_new(o, "ageSeconds", json_integer(age < 0 ? 0 : age));
    }
    return o;
}

const char *store_item_state(const Tower__V1__ViewItem *it, int64_t now_ns)
{
    if (it->closed_at) return it->resolution ? "resolved" : "closed";
    if (it->snoozed_until && store__ts_ns(it->snoozed_until) > now_ns) return "snoozed";
    if (it->acknowledged_at) return "acknowledged";
    return "open";
}

ct_status store_item_get(store_reader *r, const char *key, Tower__V1__ViewItem **out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    if (k.mv_size == 0 || k.mv_size > 511) return CT_NOT_FOUND;
    int rc = mdb_get(r->txn, r->s->items, &k, &v);
    if (rc == MDB_NOTFOUND) return CT_NOT_FOUND;
    if (rc) return store__fail(r->s, rc, "read an item");
    Tower__V1__ViewItem *it = tower__v1__view_item__unpack(NULL, v.mv_size, v.mv_data);
    if (!it) return CT_STORE_CORRUPT;
    *out = it;
    return CT_OK;
}

typedef struct dump_ctx {
    FILE *out;
    int flags;
    size_t n;
    char **stable;        /* dead letters in stable mode, sorted before printing */
    size_t n_stable, cap;
} dump_ctx;

static int dump_item(void *vctx, const Tower__V1__ViewItem *it)
{
    dump_ctx *d = vctx;
    json_t *o = store_item_to_json(it, 0);
    if ((d->flags & STORE_DUMP_STABLE) && it->received_at) {
        json_object_del(o, "seq");
        json_object_del(o, "key"); /* names the seq */
        json_object_del(o, "exceptionId"); /* names it too */
        json_object_del(o, "receivedAt");
        json_object_del(o, "since");
        char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (d->n_stable == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->stable = ct_realloc(d->stable, d->cap * sizeof *d->stable);
        }
        d->stable[d->n_stable++] = txt;
    } else {
        char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(d->out, "%s\n    %s", d->n ? "," : "", txt);
        free(txt);
        d->n++;
    }
    json_decref(o);
    return 0;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

ct_status store_dump(store *s, int flags, FILE *out)
{
    store_reader *r = NULL;
    ct_status st = store_reader_begin(s, &r);
    if (st != CT_OK) return st;
    fputs("{", out);
    for (int v = 0; v < FOLD_VIEW_COUNT && st == CT_OK; v++) {
        dump_ctx d = {out, flags, 0, NULL, 0, 0};
        fprintf(out, "%s\n  \"%s\": [", v ? "," : "", fold_view_name((fold_view)v));
        store_query q = {.view = (fold_view)v};
        st = store_view_scan(r, &q, dump_item, &d, NULL);
        if (d.n_stable) qsort(d.stable, d.n_stable, sizeof *d.stable, str_cmp);
        for (size_t i = 0; i < d.n_stable; i++) {
            fprintf(out, "%s\n    %s", i ? "," : "", d.stable[i]);
            free(d.stable[i]);
        }
        free(d.stable);
        fputs(d.n || d.n_stable ? "\n  ]" : "]", out);
    }
    if (st == CT_OK && (flags & STORE_DUMP_DUES)) {
        dump_ctx d = {out, 0, 0, NULL, 0, 0};
        fputs(",\n  \"sla_dues\": [", out);
        st = store_dues_scan(r, INT64_MAX, dump_item, &d);
        fputs(d.n ? "\n  ]" : "]", out);
    }
    if (st == CT_OK && (flags & STORE_DUMP_CLOSED)) {
        dump_ctx d = {out, flags & STORE_DUMP_STABLE, 0, NULL, 0, 0};
        fputs(",\n  \"closed\": [", out);
        store_closed_query q = {0};
        st = store_closed_scan(r, &q, dump_item, &d, NULL);
        if (d.n_stable) qsort(d.stable, d.n_stable, sizeof *d.stable, str_cmp);
        for (size_t i = 0; i < d.n_stable; i++) {
            fprintf(out, "%s\n    %s", i || d.n ? "," : "", d.stable[i]);
            free(d.stable[i]);
        }
        free(d.stable);
        fputs(d.n || d.n_stable ? "\n  ]" : "]", out);
    }
    fputs("\n}\n", out);
    store_reader_end(r);
    return st;
}
