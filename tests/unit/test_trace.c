/* Unit tests of the trace generator: determinism, order, validity, faults, coverage of every view, bounded memory. */
#include "sim_trace.h"
#include "test.h"

#include <ctype.h>
#include <jansson.h>

static const char *const payloads[24] = {
    "orderCreated",      "orderApproved",     "orderHeld",       "orderHoldReleased", "orderReleased",
    "orderCancelled",    "pickStarted",       "pickShort",       "inventoryResolved", "packCompleted",
    "shipmentReady",     "shipmentBlocked",   "shipmentUnblocked", "shipmentConfirmed", "routeRequested",
    "routePlanned",      "routeFailed",       "routeDispatched", "deliveryAttempted", "deliveryCompleted",
    "podCaptured",       "invoicePosted",     "postingFailed",   "slaBreached"};

static const char *const kind_names[] = {"valid", "duplicate", "reordered", "bad", "conflict"};

/* ---- A string map (key -> int64 and an owned string), enough for a few hundred thousand keys. ---- */

typedef struct smap {
    char **keys;
    char **vals;
    int64_t *nums;
    size_t cap, n;
} smap;

static uint64_t hash_str(const char *s) { return ct_hash64(s, strlen(s)); }

static void smap_grow(smap *m);

/* The slot of key, created (num = INT64_MAX, val = NULL) when absent. */
static size_t smap_slot(smap *m, const char *key)
{
    if (m->n * 2 >= m->cap) smap_grow(m);
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], key) != 0) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = strdup(key);
        m->nums[i] = INT64_MAX;
        m->n++;
    }
    return i;
}

static int smap_find(const smap *m, const char *key, size_t *slot)
{
    if (!m->cap) return 0;
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (strcmp(m->keys[i], key) == 0) {
            *slot = i;
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

static void smap_grow(smap *m)
{
    smap old = *m;
    m->cap = old.cap ? old.cap * 2 : 1024;
    m->n = 0;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    m->nums = calloc(m->cap, sizeof *m->nums);
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.keys[i]) continue;
        size_t j = hash_str(old.keys[i]) & (m->cap - 1);
        while (m->keys[j]) j = (j + 1) & (m->cap - 1);
        m->keys[j] = old.keys[i];
        m->vals[j] = old.vals[i];
        m->nums[j] = old.nums[i];
        m->n++;
    }
    free(old.keys);
    free(old.vals);
    free(old.nums);
}

static void smap_free(smap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        free(m->vals[i]);
    }
    free(m->keys);
    free(m->vals);
    free(m->nums);
    memset(m, 0, sizeof *m);
}

/* Keep the earliest time seen for "prefix|id". */
static void smap_min(smap *m, const char *prefix, const char *id, int64_t t)
{
    char key[256];
    snprintf(key, sizeof key, "%s|%s", prefix, id);
    size_t i = smap_slot(m, key);
    if (t < m->nums[i]) m->nums[i] = t;
}

/* The earliest time of "prefix|id", or INT64_MAX when never seen. */
static int64_t smap_get(const smap *m, const char *prefix, const char *id)
{
    char key[256];
    size_t i;
    snprintf(key, sizeof key, "%s|%s", prefix, id);
    return smap_find(m, key, &i) ? m->nums[i] : INT64_MAX;
}

/* ---- RFC 3339 and a reference validator of the contract, written apart from the generator. ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int num(const char *s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return 0;
        *out = *out * 10 + (s[i] - '0');
    }
    return 1;
}

/* Parse an RFC 3339 time into ns since the epoch; 0 when malformed or out of range. */
static int parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, se, oh = 0, om = 0;
    if (strlen(s) < 20 || !num(s, 4, &y) || s[4] != '-' || !num(s + 5, 2, &mo) || s[7] != '-' ||
        !num(s + 8, 2, &d) || s[10] != 'T' || !num(s + 11, 2, &h) || s[13] != ':' || !num(s + 14, 2, &mi) ||
        s[16] != ':' || !num(s + 17, 2, &se))
        return 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59) return 0;
    const char *p = s + 19;
    int64_t frac = 0;
    if (*p == '.') {
        int64_t scale = 100000000;
        p++;
        if (!isdigit((unsigned char)*p)) return 0;
        for (; isdigit((unsigned char)*p); p++, scale /= 10)
            if (scale) frac += (*p - '0') * scale;
    }
    int sign = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (!num(p + 1, 2, &oh) || p[3] != ':' || !num(p + 4, 2, &om) || oh > 23 || om > 59) return 0;
        p += 6;
    } else {
        return 0;
    }
    if (*p) return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - sign * (oh * 3600 + om * 60);
    *out = secs * 1000000000LL + frac;
    return 1;
}

static int id_ok(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    if (!s || !*s || strlen(s) > max) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._:-", *s)) return 0;
    return 1;
}

static int in_set(const char *s, const char *const *set)
{
    for (; s && *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

/* The payload index of an event object, -1 for none, -2 for several. */
static int payload_of(json_t *ev, json_t **body)
{
    int found = -1;
    for (int i = 0; i < 24; i++) {
        json_t *b = json_object_get(ev, payloads[i]);
        if (!b) continue;
        if (found >= 0) return -2;
        found = i;
        *body = b;
    }
    return found;
}

/* NULL when the line is a valid event by the contract, else what is wrong with it. */
static const char *invalid_reason(const char *line)
{
    static const char *const systems[] = {"erp", "wms", "tms", "carrier", "finance", "tower", NULL};
    static const char *const holds[] = {"CREDIT", "PRICING", "ALLOCATION", "OTHER", NULL};
    static const char *const blocks[] = {"INVENTORY", "DOCK_CAPACITY", "CARRIER", "DAMAGE", "OTHER", NULL};
    static const char *const channels[] = {"ECOMMERCE", "EDI", "SERVICE", NULL};
    static const char *why;
    json_t *ev = json_loads(line, 0, NULL), *b = NULL;
    int64_t t;
    why = NULL;
    if (!ev || !json_is_object(ev)) why = "not a JSON object";
    else if (!id_ok(json_object_get(ev, "eventId"), 128)) why = "eventId";
    else if (!json_is_string(json_object_get(ev, "occurredAt")) ||
             !parse_time(json_string_value(json_object_get(ev, "occurredAt")), &t))
        why = "occurredAt";
    else if (!in_set(json_string_value(json_object_get(json_object_get(ev, "source"), "system")), systems))
        why = "source.system";
    else if ((json_object_get(ev, "orderId") && !id_ok(json_object_get(ev, "orderId"), 64)) ||
             (json_object_get(ev, "shipmentId") && !id_ok(json_object_get(ev, "shipmentId"), 64)) ||
             (json_object_get(ev, "routeId") && !id_ok(json_object_get(ev, "routeId"), 64)))
        why = "correlation id";
    if (why) goto out;
    int p = payload_of(ev, &b);
    if (p < 0 || !json_is_object(b)) {
        why = p == -2 ? "two payloads" : "no payload";
        goto out;
    }
    const char *name = payloads[p];
    int has_o = json_object_get(ev, "orderId") != NULL, has_s = json_object_get(ev, "shipmentId") != NULL;
    int has_r = json_object_get(ev, "routeId") != NULL;
    json_t *lines = json_object_get(b, "lines"), *stops = json_object_get(b, "stops");
    json_t *ids = json_object_get(b, "shipmentIds");
    size_t i;
    json_t *v;
    if (p <= 8 || p >= 21) {
        if (p == 23 ? !(has_o || has_s) || !json_object_get(b, "rule") : !has_o) why = "orderId";
    } else if (p >= 9 && p <= 13) {
        if (!has_s || (p <= 10 && !has_o)) why = "shipmentId";
    } else if (p >= 18 && p <= 20) {
        if (!has_s) why = "shipmentId";
    } else if (p == 15 || p == 17) {
        if (!has_r) why = "routeId";
    }
    if (!why && (p == 14 || p == 16) && (json_array_size(ids) == 0)) why = "shipmentIds";
    if (!why && p == 15 && json_array_size(stops) == 0) why = "stops";
    json_array_foreach(ids, i, v) if (!id_ok(v, 64)) why = "shipmentIds[]";
    json_array_foreach(stops, i, v)
    {
        json_t *eta = json_object_get(v, "eta");
        if (!id_ok(json_object_get(v, "shipmentId"), 64)) why = "stops.shipmentId";
        if (eta && !parse_time(json_string_value(eta), &t)) why = "stops.eta";
    }
    json_array_foreach(lines, i, v) if (json_integer_value(json_object_get(v, "qty")) <= 0) why = "qty";
    if (!why && strcmp(name, "orderHeld") == 0 && !in_set(json_string_value(json_object_get(b, "reason")), holds))
        why = "orderHeld.reason";
    if (!why && strcmp(name, "shipmentBlocked") == 0 &&
        !in_set(json_string_value(json_object_get(b, "reason")), blocks))
        why = "shipmentBlocked.reason";
    if (!why && strcmp(name, "orderCreated") == 0 && json_object_get(b, "channel") &&
        !in_set(json_string_value(json_object_get(b, "channel")), channels))
        why = "channel";
    if (!why && (p == 7 || p == 8) && !json_is_string(json_object_get(b, "sku"))) why = "sku";
    if (!why && p == 7 && json_integer_value(json_object_get(b, "qtyShort")) <= 0) why = "qtyShort";
out:
    json_decref(ev);
    return why;
}

/* Replace every time string by its instant, so that two spellings of one event compare equal. */
static void normalize(json_t *j)
{
    static const char *const times[] = {"occurredAt", "promisedBy", "eta", "dueAt", NULL};
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach(j, i, v) normalize(v);
        return;
    }
    json_object_foreach(j, key, v)
    {
        int64_t t;
        if (in_set(key, times) && json_is_string(v) && parse_time(json_string_value(v), &t))
            json_object_set_new(j, key, json_integer(t));
        else
            normalize(v);
    }
}

static int same_event(const char *a, const char *b)
{
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    normalize(ja);
    normalize(jb);
    int same = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}

/* The eventId of a line, copied into out; 0 when it has none. */
static int event_id(const char *line, char *out, size_t cap)
{
    json_t *j = json_loads(line, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "eventId"));
    if (id) snprintf(out, cap, "%s", id);
    json_decref(j);
    return id != NULL;
}

static sim_trace *make(uint32_t orders, uint64_t seed)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = orders;
    o.seed = seed;
    sim_trace *t = NULL;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    return t;
}

/* ---- Tests ---- */

static void test_determinism(void)
{
    sim_trace *a = make(1000, 7), *b = make(1000, 7), *c = make(1000, 8);
    sim_record ra, rb, rc;
    size_t n = 0, diff = 0, differ_seed = 0;
    for (;;) {
        int ha = sim_trace_next(a, &ra), hb = sim_trace_next(b, &rb);
        if (ha != hb) {
            T_FAIL("traces of the same seed end at different records (%zu)", n);
            break;
        }
        if (!ha) break;
        if (ra.len != rb.len || strcmp(ra.line, rb.line) != 0 || ra.emit_ns != rb.emit_ns || ra.kind != rb.kind)
            diff++;
        if (sim_trace_next(c, &rc) && strcmp(ra.line, rc.line) != 0) differ_seed++;
        n++;
    }
    T_EQ_INT(diff, 0);
    T_ASSERT(n > 10000);
    T_ASSERT(differ_seed > n / 2);
    sim_trace_destroy(a);
    sim_trace_destroy(b);
    sim_trace_destroy(c);
}

/* Fault rates change what is reported around the story, never the story: the valid lines are the same. */
static void test_faults_keep_story(void)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = 300;
    sim_trace *a = NULL, *b = NULL;
    T_EQ_INT(sim_trace_create(&a, &o), CT_OK);
    o.p_bad = o.p_duplicate = o.p_late = o.p_conflict = 0;
    T_EQ_INT(sim_trace_create(&b, &o), CT_OK);
    smap seen = {0};
    sim_record r;
    size_t va = 0, vb = 0, missing = 0;
    while (sim_trace_next(a, &r))
        if (r.kind == SIM_VALID) smap_slot(&seen, r.line), va++;
    while (sim_trace_next(b, &r)) {
        size_t slot;
        T_ASSERT(r.kind == SIM_VALID);
        vb++;
        if (!smap_find(&seen, r.line, &slot)) missing++;
    }
    T_EQ_INT(va, vb);
    T_EQ_INT(missing, 0);
    smap_free(&seen);
    sim_trace_destroy(a);
    sim_trace_destroy(b);
}

static void test_valid_records(void)
{
    sim_trace *t = make(1000, 11);
    sim_record r;
    smap ids = {0};
    int64_t last = INT64_MIN;
    size_t n = 0, unordered = 0, invalid = 0, dup_ids = 0, early = 0, bad_len = 0;
    int first = 1;
    while (sim_trace_next(t, &r)) {
        n++;
        if (r.emit_ns < last) unordered++;
        last = r.emit_ns;
        if (strlen(r.line) != r.len || strchr(r.line, '\n')) bad_len++;
        if (r.kind != SIM_VALID) continue;
        const char *why = invalid_reason(r.line);
        if (why) {
            if (invalid++ < 3) T_FAIL("valid record rejected (%s): %s", why, r.line);
            continue;
        }
        json_t *j = json_loads(r.line, 0, NULL);
        json_t *body = NULL;
        const char *id = json_string_value(json_object_get(j, "eventId"));
        int64_t at = 0;
        parse_time(json_string_value(json_object_get(j, "occurredAt")), &at);
        if (at > r.emit_ns) early++;
        T_ASSERT(json_is_string(json_object_get(json_object_get(j, "source"), "system")));
        T_ASSERT(payload_of(j, &body) >= 0);
        size_t slot = smap_slot(&ids, id);
        if (ids.nums[slot] != INT64_MAX) dup_ids++;
        ids.nums[slot] = 1;
        if (first) {
            /* The first order is created at start_ns exactly. */
            T_EQ_STR(json_string_value(json_object_get(j, "occurredAt")), "2026-11-02T06:00:00Z");
            T_ASSERT(json_object_get(j, "orderCreated") != NULL);
            first = 0;
        }
        json_decref(j);
    }
    T_ASSERT(n > 10000);
    T_EQ_INT(unordered, 0);
    T_EQ_INT(invalid, 0);
    T_EQ_INT(dup_ids, 0);
    T_EQ_INT(early, 0);
    T_EQ_INT(bad_len, 0);
    smap_free(&ids);
    sim_trace_destroy(t);
}

/* Duplicates repeat earlier valid bytes; respelled ones are the same event; conflicts reuse an id with other content. */
static void test_fault_records(void)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = 1000;
    o.p_bad = 0.05;
    o.p_conflict = 0.02;
    sim_trace *t = NULL;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    smap valid = {0}, bad = {0};
    sim_record r;
    size_t count[5] = {0}, wrong[5] = {0}, bad_same = 0, bad_reused = 0;
    char id[256];
    while (sim_trace_next(t, &r)) {
        size_t slot;
        count[r.kind]++;
        int has_id = event_id(r.line, id, sizeof id);
        int known = has_id && smap_find(&valid, id, &slot);
        switch (r.kind) {
        case SIM_VALID:
            slot = smap_slot(&valid, id);
            valid.vals[slot] = strdup(r.line);
            break;
        case SIM_DUPLICATE:
            if (!known || strcmp(valid.vals[slot], r.line) != 0) wrong[r.kind]++;
            break;
        case SIM_REORDERED:
            if (!known || strcmp(valid.vals[slot], r.line) == 0 || !same_event(valid.vals[slot], r.line))
                wrong[r.kind]++;
            break;
        case SIM_CONFLICT:
            if (!known || same_event(valid.vals[slot], r.line) || invalid_reason(r.line)) wrong[r.kind]++;
            break;
        case SIM_BAD: {
            const char *why = invalid_reason(r.line);
            if (!why && wrong[r.kind]++ < 3) T_FAIL("bad record passes validation: %s", r.line);
            if (smap_find(&bad, r.line, &slot)) bad_same++;
            smap_slot(&bad, r.line);
            if (known) bad_reused++;
            break;
        }
        }
    }
    for (int k = 1; k < 5; k++) {
        fprintf(stderr, "  %s: %zu, wrong %zu\n", kind_names[k], count[k], wrong[k]);
        T_ASSERT(count[k] > 0);
        T_EQ_INT(wrong[k], 0);
    }
    T_EQ_INT(bad_same, 0);
    T_EQ_INT(bad_reused, 0);
    smap_free(&valid);
    smap_free(&bad);
    sim_trace_destroy(t);

    /* No bad records, no conflicts when their rates are 0 (the default for conflicts). */
    sim_trace_opts_default(&o);
    o.orders = 500;
    o.p_bad = 0;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    size_t bads = 0, conflicts = 0;
    while (sim_trace_next(t, &r)) bads += r.kind == SIM_BAD, conflicts += r.kind == SIM_CONFLICT;
    T_EQ_INT(bads, 0);
    T_EQ_INT(conflicts, 0);
    sim_trace_destroy(t);
}

/* Every event type appears in a 2,000-order default trace; prints the mix. */
static void test_all_types(void)
{
    sim_trace *t = make(2000, 42);
    sim_record r;
    size_t types[24] = {0}, kinds[5] = {0}, total = 0;
    while (sim_trace_next(t, &r)) {
        total++;
        kinds[r.kind]++;
        if (r.kind != SIM_VALID) continue;
        json_t *j = json_loads(r.line, 0, NULL), *b;
        int p = payload_of(j, &b);
        if (p >= 0) types[p]++;
        json_decref(j);
    }
    fprintf(stderr, "  2000 orders, %zu records:", total);
    for (int i = 0; i < 24; i++) {
        fprintf(stderr, "%s %s %zu", i % 4 ? "," : "\n   ", payloads[i], types[i]);
        if (!types[i]) T_FAIL("no %s in the trace", payloads[i]);
    }
    fprintf(stderr, "\n   ");
    for (int k = 0; k < 5; k++) fprintf(stderr, "%s %s %zu", k ? "," : "", kind_names[k], kinds[k]);
    fputc('\n', stderr);
    T_ASSERT(kinds[SIM_DUPLICATE] > 0);
    T_ASSERT(kinds[SIM_REORDERED] > 0);
    T_ASSERT(kinds[SIM_BAD] > 0);
    T_EQ_INT(kinds[SIM_CONFLICT], 0);
    sim_trace_destroy(t);
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* The trace leaves items in every view of the tower, and breaks each anomaly rule at least once. */
static void test_view_coverage(void)
{
    sim_trace *t = make(2000, 42);
    smap m = {0};
    sim_record r;
    size_t bad = 0;
    /* Record the earliest time of each milestone per entity, and which shipments are linked or named. */
    while (sim_trace_next(t, &r)) {
        bad += r.kind == SIM_BAD;
        if (r.kind != SIM_VALID) continue;
        json_t *j = json_loads(r.line, 0, NULL), *b = NULL;
        int p = payload_of(j, &b);
        int64_t at = 0;
        parse_time(jstr(j, "occurredAt"), &at);
        const char *oid = jstr(j, "orderId"), *sid = jstr(j, "shipmentId");
        const char *name = payloads[p];
        if (oid) smap_min(&m, name, oid, at);
        if (sid) smap_min(&m, name, sid, at);
        if (sid) smap_min(&m, "named", sid, at);
        if (oid && sid) smap_min(&m, "linked", sid, at);
        if (sid && p == 11) smap_min(&m, jstr(b, "reason"), "blocked", at);
        json_t *list = json_object_get(b, p == 15 ? "stops" : "shipmentIds"), *v;
        size_t i;
        json_array_foreach(list, i, v)
        {
            const char *s = p == 15 ? jstr(v, "shipmentId") : json_string_value(v);
            smap_min(&m, "named", s, at);
            smap_min(&m, name, s, at);
        }
        json_decref(j);
    }
    size_t awaiting = 0, hold = 0, inventory = 0, blocked = 0, pending = 0, no_pod = 0, posting = 0, orphans = 0;
    size_t rel_early = 0, route_early = 0, inv_early = 0, after_cancel = 0;
    for (size_t i = 0; i < m.cap; i++) {
        if (!m.keys[i]) continue;
        char *bar = strchr(m.keys[i], '|');
        const char *id = bar + 1;
        size_t plen = (size_t)(bar - m.keys[i]);
#define IS(name) (plen == strlen(name) && strncmp(m.keys[i], name, plen) == 0)
#define SEEN(name) (smap_get(&m, name, id) != INT64_MAX)
        if (strncmp(id, "SO-", 3) == 0 && !SEEN("orderCancelled")) {
            if (IS("orderApproved") && !SEEN("orderReleased")) awaiting++;
            if (IS("orderHeld") && !SEEN("orderHoldReleased")) hold++;
            if (IS("pickShort") && !SEEN("inventoryResolved")) inventory++;
            if (IS("postingFailed") && !SEEN("invoicePosted")) posting++;
            if (IS("orderReleased") && m.nums[i] < smap_get(&m, "orderApproved", id)) rel_early++;
        }
        if (strncmp(id, "SO-", 3) == 0 && IS("orderCancelled")) {
            if (smap_get(&m, "pickStarted", id) > m.nums[i] && smap_get(&m, "pickStarted", id) != INT64_MAX)
                after_cancel++;
            if (smap_get(&m, "packCompleted", id) > m.nums[i] && smap_get(&m, "packCompleted", id) != INT64_MAX)
                after_cancel++;
        }
        if (IS("invoicePosted")) {
            /* Shipments are numbered SH-<order number>-<1..3>. */
            int64_t confirmed = INT64_MAX;
            for (int k = 1; k <= 3; k++) {
                char sid[64];
                snprintf(sid, sizeof sid, "SH-%s-%d", id + 3, k);
                int64_t c = smap_get(&m, "shipmentConfirmed", sid);
                if (c < confirmed) confirmed = c;
            }
            if (m.nums[i] < confirmed) inv_early++;
        }
        if (strncmp(id, "SH-", 3) == 0) {
            int linked = SEEN("linked");
            if (IS("shipmentBlocked") && linked && !SEEN("shipmentUnblocked")) blocked++;
            if (IS("shipmentReady") && !SEEN("routePlanned") && !SEEN("shipmentConfirmed")) pending++;
            if (IS("deliveryCompleted") && !SEEN("podCaptured")) no_pod++;
            if (IS("named") && !linked) orphans++;
            if (IS("routePlanned") && m.nums[i] < smap_get(&m, "shipmentReady", id)) route_early++;
        }
#undef IS
#undef SEEN
    }
    fprintf(stderr,
            "  awaiting_release %zu, holds %zu, inventory %zu, shipment blocks %zu, pending_route %zu,\n"
            "  missing_pod %zu, posting_failed %zu, orphans %zu, dead letters %zu; anomalies: release %zu,\n"
            "  route %zu, invoice %zu, after cancel %zu\n",
            awaiting, hold, inventory, blocked, pending, no_pod, posting, orphans, bad, rel_early, route_early,
            inv_early, after_cancel);
    T_ASSERT(awaiting > 0 && hold > 0 && inventory > 0 && blocked > 0 && pending > 0);
    T_ASSERT(no_pod > 0 && posting > 0 && orphans > 0 && bad > 0);
    T_ASSERT(rel_early > 0 && route_early > 0 && inv_early > 0 && after_cancel > 0);
    T_ASSERT(smap_get(&m, "DOCK_CAPACITY", "blocked") != INT64_MAX);
    T_ASSERT(smap_get(&m, "DAMAGE", "blocked") != INT64_MAX);
    T_ASSERT(smap_get(&m, "INVENTORY", "blocked") != INT64_MAX);
    smap_free(&m);
    sim_trace_destroy(t);
}

/* Times: plain UTC seconds without offsets; other offsets and fractions with them, always the same instant. */
static void test_offsets(void)
{
    for (int off = 0; off <= 1; off++) {
        sim_trace_opts o;
        sim_trace_opts_default(&o);
        o.orders = 300;
        o.offsets = off;
        sim_trace *t = NULL;
        T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
        sim_record r;
        size_t plain = 0, other = 0, ms = 0, us = 0, valid = 0;
        while (sim_trace_next(t, &r)) {
            if (r.kind != SIM_VALID) continue;
            json_t *j = json_loads(r.line, 0, NULL);
            const char *at = jstr(j, "occurredAt");
            size_t len = strlen(at);
            valid++;
            plain += at[len - 1] == 'Z' && !strchr(at, '.');
            other += strstr(at, "+05:30") || strstr(at, "-05:00") || strstr(at, "+01:00");
            const char *dot = strchr(at, '.');
            if (dot) {
                size_t digits = strspn(dot + 1, "0123456789");
                ms += digits == 3;
                us += digits == 6;
            }
            json_decref(j);
        }
        if (off) {
            T_ASSERT(other > 0 && ms > 0 && us > 0);
        } else {
            T_EQ_INT(plain, valid);
        }
        sim_trace_destroy(t);
    }
}

/* Money, weights and ids have the shapes the contract asks for. */
static void test_formats(void)
{
    sim_trace *t = make(500, 3);
    sim_record r;
    size_t weights = 0, amounts = 0, wrong = 0;
    while (sim_trace_next(t, &r)) {
        if (r.kind != SIM_VALID) continue;
        const char *w = strstr(r.line, "\"weightKg\":");
        if (w) {
            w += strlen("\"weightKg\":");
            size_t intd = strspn(w, "0123456789");
            weights++;
            if (!intd || w[intd] != '.' || strspn(w + intd + 1, "0123456789") != 2) wrong++;
        }
        json_t *j = json_loads(r.line, 0, NULL), *b = json_object_get(j, "invoicePosted");
        if (b) {
            const char *a = jstr(b, "amount"), *dot = a ? strchr(a, '.') : NULL;
            amounts++;
            if (!dot || strlen(dot) != 3 || strspn(a, "0123456789") != (size_t)(dot - a)) wrong++;
            if (!in_set(jstr(b, "currency"), (const char *const[]){"EUR", "USD", "GBP", NULL})) wrong++;
        }
        const char *oid = jstr(j, "orderId"), *sid = jstr(j, "shipmentId"), *rid = jstr(j, "routeId");
        if (oid && strncmp(oid, "SO-", 3) != 0) wrong++;
        if (sid && strncmp(sid, "SH-", 3) != 0) wrong++;
        if (rid && strncmp(rid, "RT-", 3) != 0) wrong++;
        json_decref(j);
    }
    T_ASSERT(weights > 0 && amounts > 0);
    T_EQ_INT(wrong, 0);
    sim_trace_destroy(t);
}

static void test_options(void)
{
    sim_trace_opts o;
    sim_trace *t = (sim_trace *)&o; /* A sentinel: a failed create must leave it untouched. */
    sim_trace_opts_default(&o);
    o.p_bad = 1.5;
    T_EQ_INT(sim_trace_create(&t, &o), CT_INVALID);
    T_ASSERT(t == (sim_trace *)&o);
    sim_trace_opts_default(&o);
    o.warehouses = 0;
    T_EQ_INT(sim_trace_create(&t, &o), CT_INVALID);
    sim_trace_opts_default(&o);
    o.orders_per_minute = 0;
    T_EQ_INT(sim_trace_create(&t, &o), CT_INVALID);
    T_EQ_INT(sim_trace_create(&t, NULL), CT_INVALID);
    sim_trace_destroy(NULL);

    sim_trace_opts_default(&o);
    o.orders = 0;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    sim_record r;
    T_EQ_INT(sim_trace_next(t, &r), 0);
    sim_trace_destroy(t);

    /* Every rate at 1 (all fail, all retry) and every rate at 0 still give finite, valid traces. */
    for (int all = 0; all <= 1; all++) {
        sim_trace_opts_default(&o);
        o.orders = 200;
        o.p_hold = o.p_short_pick = o.p_multi_shipment = o.p_block = o.p_route_fail = o.p_cancel = all;
        o.p_missing_pod = o.p_attempt_fail = o.p_posting_fail = o.p_stuck = o.p_late = o.p_duplicate = all;
        o.p_bad = o.p_conflict = o.p_drift = all;
        T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
        size_t n = 0, invalid = 0;
        while (sim_trace_next(t, &r) && n < 1000000) {
            n++;
            if (r.kind == SIM_VALID && invalid_reason(r.line)) invalid++;
        }
        T_ASSERT(n > 200 && n < 1000000);
        T_EQ_INT(invalid, 0);
        sim_trace_destroy(t);
    }

    /* Destroying mid-trace frees what is in flight (checked by the sanitizers and valgrind). */
    sim_trace_opts_default(&o);
    o.warehouses = 1;
    o.p_conflict = 0.5;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    for (int i = 0; i < 5000; i++) T_ASSERT(sim_trace_next(t, &r));
    sim_trace_stats st;
    sim_trace_stats_get(t, &st);
    T_ASSERT(st.orders_live > 0 && st.pending > 0);
    sim_trace_destroy(t);
}

/* 200,000 orders: fast, and the orders held stay bounded by arrival rate times lifetime, not by the count. */
static void test_bounded_memory(void)
{
    const char *env = getenv("TEST_TRACE_ORDERS"); /* Valgrind runs may ask for fewer. */
    uint32_t orders = env ? (uint32_t)atoi(env) : 200000;
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = orders;
    o.orders_per_minute = 20;
    sim_trace *t = NULL;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    sim_record r;
    sim_trace_stats st;
    size_t n = 0, peak_mid = 0, peak_end = 0, pending_peak = 0;
    int64_t t0 = ct_mono_ns();
    while (sim_trace_next(t, &r)) {
        if (++n % 1024) continue;
        sim_trace_stats_get(t, &st);
        /* Compare the second quarter of arrivals with the last: a steady state does not grow. */
        if (st.orders_created > orders / 4 && st.orders_created <= orders / 2 && st.orders_live > peak_mid)
            peak_mid = st.orders_live;
        if (st.orders_created > orders * 3 / 4 && st.orders_created < orders && st.orders_live > peak_end)
            peak_end = st.orders_live;
        if (st.pending > pending_peak) pending_peak = st.pending;
    }
    double secs = (double)(ct_mono_ns() - t0) / 1e9;
    sim_trace_stats_get(t, &st);
    fprintf(stderr, "  %u orders, %zu records in %.2f s; orders held: peak %zu (mid %zu, end %zu), shipments %zu, "
            "pending %zu\n", orders, n, secs, st.orders_peak, peak_mid, peak_end, st.shipments_peak, pending_peak);
    T_EQ_INT(st.orders_created, orders);
    /* An order lives under two days (invoice a day after shipping): rate x 48 h bounds what is held. */
    T_ASSERT(st.orders_peak <= (size_t)(20 * 60 * 48));
    if (orders >= 100000) {
        T_ASSERT(st.orders_peak < orders / 4);
        T_ASSERT(peak_end <= peak_mid + peak_mid / 5);
        T_ASSERT(pending_peak <= st.orders_peak * 3);
    }
    T_EQ_INT(st.orders_live, 0);
    T_EQ_INT(st.shipments_live, 0);
    T_EQ_INT(st.routes_live, 0);
    T_EQ_INT(st.pending, 0);
    sim_trace_destroy(t);
}

int main(void)
{
    T_RUN(test_determinism);
    T_RUN(test_faults_keep_story);
    T_RUN(test_valid_records);
    T_RUN(test_fault_records);
    T_RUN(test_all_types);
    T_RUN(test_view_coverage);
    T_RUN(test_offsets);
    T_RUN(test_formats);
    T_RUN(test_options);
    T_RUN(test_bounded_memory);
    return t_done();
}
