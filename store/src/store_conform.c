/* Per-producer conformance (docs/contract/conformance.md): the dead letters counted by source.system,
 * source.instance and code, in the meta table, written in the transaction that records each new dead letter.
 *
 * Meta keys (values are not u64 figures, so no other reader of the meta table looks under these prefixes):
 *   "conform/<system>|<instance>|<code>" -> a row: 6 x u64 (count, first seq, last seq, first ns, last ns,
 *                                           example seq), the example's eventId, NUL, its message
 *   "conformp/<system>|<instance>"       -> "" : the pairs counted under their own instance
 *   "conformn"                            -> u64: how many such pairs (at most STORE_CONFORM_MAX_PRODUCERS)
 * Only the stream decides them (the dead letters, in sequence order), so a rebuild gives the same rows but for
 * the receive times, which are those of the rebuild (as the dead letters' receivedAt). */
#include "store_conform_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_systems[] = {"erp", "wms", "tms", "carrier", "finance", "mdm", "tower"};

static void set_system(const char *v, size_t n, char out[STORE_CONFORM_SYSTEM])
{
    if (!v || !n) {
        strcpy(out, "(unknown)");
        return;
    }
    for (size_t i = 0; i < sizeof known_systems / sizeof known_systems[0]; i++)
        if (strlen(known_systems[i]) == n && !memcmp(known_systems[i], v, n)) {
            strcpy(out, known_systems[i]);
            return;
        }
    strcpy(out, "(other)");
}

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
}

static void set_instance(const char *v, size_t n, char out[STORE_CONFORM_INSTANCE])
{
    if (!v || !n) {
        strcpy(out, "(none)");
        return;
    }
    int ok = n <= EVT_MAX_ID;
    for (size_t i = 0; ok && i < n; i++) ok = id_char(v[i]);
    if (!ok) {
        strcpy(out, "(invalid)");
        return;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

/* ---- reading the source from the bytes ------------------------------------------------------ */

/* A protobuf varint at *p (< end): 0 and *p advanced, or -1. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* The last length-delimited fields number fa (into *a) and fb (into *b, when b is not NULL) of a message.
 * Stops at the first malformed field, keeping what was found before it. */
static void scan_fields(const uint8_t *p, const uint8_t *end, int fa, int fb, const uint8_t **a, size_t *al,
                        const uint8_t **b, size_t *bl)
{
    while (p < end) {
        uint64_t tag, n = 0;
        if (varint(&p, end, &tag) != 0) return;
        int wt = (int)(tag & 7), num = (int)(tag >> 3);
        if (wt == 0) {
            if (varint(&p, end, &n) != 0) return;
            continue;
        }
        if (wt == 1) n = 8;
        else if (wt == 5) n = 4;
        else if (wt != 2 || varint(&p, end, &n) != 0) return;
        if (n > (uint64_t)(end - p)) return;
        if (wt == 2 && num == fa) *a = p, *al = (size_t)n;
        if (wt == 2 && b && num == fb) *b = p, *bl = (size_t)n;
        p += n;
    }
}

static void source_protobuf(const uint8_t *raw, size_t len, char *system, char *instance)
{
    const uint8_t *src = NULL, *sys = NULL, *ins = NULL;
    size_t srcl = 0, sysl = 0, insl = 0;
    scan_fields(raw, raw + len, 3, 0, &src, &srcl, NULL, NULL);
    if (src) scan_fields(src, src + srcl, 1, 2, &sys, &sysl, &ins, &insl);
    set_system((const char *)sys, sysl, system);
    set_instance((const char *)ins, insl, instance);
}

static void source_json(const char *raw, size_t len, char *system, char *instance)
{
    json_t *root = NULL;
    if (!ct_json_too_deep(raw, len, CT_JSON_MAX_DEPTH)) root = json_loadb(raw, len, 0, NULL);
    json_t *src = json_is_object(root) ? json_object_get(root, "source") : NULL;
    json_t *sys = json_object_get(src, "system"), *ins = json_object_get(src, "instance");
    set_system(json_string_value(sys), json_is_string(sys) ? json_string_length(sys) : 0, system);
    if (ins && !json_is_string(ins)) strcpy(instance, "(invalid)");
    else set_instance(json_string_value(ins), ins ? json_string_length(ins) : 0, instance);
    json_decref(root);
}

void store_conform_source(const void *raw, size_t len, const char *content_type, const evt_event *valid,
                          char system[STORE_CONFORM_SYSTEM], char instance[STORE_CONFORM_INSTANCE])
{
    if (valid) {
        const char *sy = valid->source ? valid->source->system : NULL, *in = valid->source ? valid->source->instance : NULL;
        set_system(sy, sy ? strlen(sy) : 0, system);
        set_instance(in, in ? strlen(in) : 0, instance);
    } else if (!raw || !len || len > EVT_MAX_EVENT_BYTES) {
        set_system(NULL, 0, system);
        set_instance(NULL, 0, instance);
    } else if (content_type && !strcmp(content_type, "application/x-protobuf")) {
        source_protobuf(raw, len, system, instance);
    } else {
        source_json(raw, len, system, instance);
    }
}

/* ---- rows ----------------------------------------------------------------------------------- */

/* Copy at most cap - 1 bytes of s, cut back to a UTF-8 character boundary. */
static void copy_utf8(char *out, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    }
    if (n) memcpy(out, s, n);
    out[n] = '\0';
}

void store_conform_row_add(store_conform_row *r, uint64_t seq, int64_t now_ns, const char *event_id,
                           const char *message)
{
    if (!r->count) {
        r->first_seq = seq;
        r->first_ns = now_ns;
    }
    r->count++;
    r->last_seq = seq;
    r->last_ns = now_ns;
    r->example_seq = seq;
    copy_utf8(r->example_event_id, sizeof r->example_event_id, event_id);
    copy_utf8(r->example, sizeof r->example, message);
}

static void time_json(json_t *o, const char *k, int64_t ns)
{
    char buf[48];
    evt_time_format(ns / 1000000000LL, (int32_t)(ns % 1000000000LL), buf);
    json_object_set_new(o, k, json_string(buf));
}

json_t *store_conform_row_json(const store_conform_row *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "system", json_string(r->system));
    json_object_set_new(o, "instance", json_string(r->instance));
    json_object_set_new(o, "code", json_string(r->code));
    json_object_set_new(o, "count", json_integer((json_int_t)r->count));
    time_json(o, "firstSeenAt", r->first_ns);
    time_json(o, "lastSeenAt", r->last_ns);
    if (r->first_seq) json_object_set_new(o, "firstSeq", json_integer((json_int_t)r->first_seq));
    if (r->last_seq) json_object_set_new(o, "lastSeq", json_integer((json_int_t)r->last_seq));
    json_t *ex = json_object();
    if (r->example_seq) json_object_set_new(ex, "seq", json_integer((json_int_t)r->example_seq));
    if (*r->example_event_id) json_object_set_new(ex, "eventId", json_string(r->example_event_id));
    json_t *msg = json_string(r->example); /* NULL unless UTF-8: the codec's messages are */
    json_object_set_new(ex, "message", msg ? msg : json_string("(not UTF-8)"));
    json_object_set_new(o, "example", ex);
    return o;
}

/* ---- the row's encoding in the meta table ------------------------------------------------------ */

#define ROW_HEAD 48

static size_t row_encode(const store_conform_row *r, unsigned char *buf, size_t cap)
{
    uint64_t f[6] = {r->count, r->first_seq, r->last_seq, (uint64_t)r->first_ns, (uint64_t)r->last_ns, r->example_seq};
    size_t el = strlen(r->example_event_id), ml = strlen(r->example);
    if (ROW_HEAD + el + 1 + ml > cap) return 0;
    for (int i = 0; i < 6; i++) store__put_u64(buf + 8 * i, f[i]);
    memcpy(buf + ROW_HEAD, r->example_event_id, el + 1);
    memcpy(buf + ROW_HEAD + el + 1, r->example, ml);
    return ROW_HEAD + el + 1 + ml;
}

/* The row of key (after the prefix "conform/") and value; -1 if either does not decode. */
static int row_decode(const char *key, size_t kl, const unsigned char *v, size_t vl, store_conform_row *r)
{
    memset(r, 0, sizeof *r);
    const char *b1 = memchr(key, '|', kl), *b2 = b1 ? memchr(b1 + 1, '|', kl - (size_t)(b1 + 1 - key)) : NULL;
    if (!b2 || (size_t)(b1 - key) >= sizeof r->system || (size_t)(b2 - b1 - 1) >= sizeof r->instance ||
        kl - (size_t)(b2 + 1 - key) >= sizeof r->code || vl < ROW_HEAD + 1)
        return -1;
    memcpy(r->system, key, (size_t)(b1 - key));
    memcpy(r->instance, b1 + 1, (size_t)(b2 - b1 - 1));
    memcpy(r->code, b2 + 1, kl - (size_t)(b2 + 1 - key));
    uint64_t f[6];
    for (int i = 0; i < 6; i++) f[i] = store__get_u64(v + 8 * i);
    r->count = f[0], r->first_seq = f[1], r->last_seq = f[2];
    r->first_ns = (int64_t)f[3], r->last_ns = (int64_t)f[4], r->example_seq = f[5];
    const unsigned char *nul = memchr(v + ROW_HEAD, 0, vl - ROW_HEAD);
    size_t el = nul ? (size_t)(nul - (v + ROW_HEAD)) : 0, ml = nul ? vl - ROW_HEAD - el - 1 : 0;
    if (!nul || el >= sizeof r->example_event_id || ml >= sizeof r->example) return -1;
    memcpy(r->example_event_id, v + ROW_HEAD, el);
    memcpy(r->example, nul + 1, ml);
    return 0;
}

/* ---- the write path ------------------------------------------------------------------------------ */

/* The instance a pair is counted under: its own while fewer than STORE_CONFORM_MAX_PRODUCERS pairs are. */
static int producer_slot(MDB_txn *txn, const store *s, const char *system, char *instance)
{
    char key[64 + STORE_CONFORM_SYSTEM + STORE_CONFORM_INSTANCE];
    snprintf(key, sizeof key, "conformp/%s|%s", system, instance);
    MDB_val k = {strlen(key), key}, v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc != MDB_NOTFOUND) return rc;
    uint64_t n = store__meta_u64(txn, s, "conformn");
    if (n >= STORE_CONFORM_MAX_PRODUCERS) {
        strcpy(instance, "(overflow)");
        return 0;
    }
    v.mv_size = 0;
    v.mv_data = "";
    rc = mdb_put(txn, s->meta, &k, &v, 0);
    return rc ? rc : store__meta_put_u64(txn, s, "conformn", n + 1);
}

int store__conform_dead(MDB_txn *txn, const store *s, const store_input *in, const char *code,
                        const char *message, const char *event_id, uint64_t seq, int64_t now_ns)
{
    store_conform_row r = {0};
    store_conform_source(in->raw, in->raw_len, in->content_type, in->event, r.system, r.instance);
    int rc = producer_slot(txn, s, r.system, r.instance);
    if (rc) return rc;
    char key[64 + sizeof r.system + sizeof r.instance + sizeof r.code];
    int kl = snprintf(key, sizeof key, "conform/%s|%s|%s", r.system, r.instance, code);
    MDB_val k = {(size_t)kl, key}, v;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == 0) {
        if (row_decode(key + 8, (size_t)kl - 8, v.mv_data, v.mv_size, &r) != 0) return MDB_CORRUPTED;
    } else if (rc == MDB_NOTFOUND) {
        copy_utf8(r.code, sizeof r.code, code);
    } else {
        return rc;
    }
    store_conform_row_add(&r, seq, now_ns, event_id, message);
    unsigned char buf[ROW_HEAD + sizeof r.example_event_id + sizeof r.example];
    v.mv_size = row_encode(&r, buf, sizeof buf);
    v.mv_data = buf;
    return mdb_put(txn, s->meta, &k, &v, 0);
}

/* ---- the read path ------------------------------------------------------------------------------ */

ct_status store_conform_scan(store_reader *r, int (*fn)(void *ctx, const store_conform_row *row), void *ctx)
{
    static const char prefix[] = "conform/";
    const size_t pl = sizeof prefix - 1;
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->s->meta, &c);
    if (rc) return store__fail(r->s, rc, "reading the producers' rejections");
    MDB_val k = {pl, (void *)prefix}, v;
    ct_status st = CT_OK;
    store_conform_row row;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && k.mv_size > pl && !memcmp(k.mv_data, prefix, pl);
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (row_decode((const char *)k.mv_data + pl, k.mv_size - pl, v.mv_data, v.mv_size, &row) != 0) {
            st = CT_STORE_CORRUPT;
            break;
        }
        if (fn(ctx, &row)) break;
    }
    mdb_cursor_close(c);
    return st;
}
