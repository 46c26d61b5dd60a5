/* Lead-time statistics: log-scale buckets, per-key rings of day slices, the window sum, percentiles. */
#include "risk.h"
#include "risk_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RISK_MAX_SECONDS ((INT64_C(1) << 25) - 1)
#define NO_DAY INT32_MIN

typedef struct {
    int stage;
    char warehouse[RISK_ID_MAX + 1];
    char carrier[RISK_ID_MAX + 1];
    int32_t maxday;
    int32_t *day;       /* window_days slots: the day each holds, NO_DAY when empty */
    uint32_t *n;        /* window_days totals */
    uint32_t *counts;   /* window_days * RISK_BUCKETS */
} risk_key;

struct risk_stats {
    int window;
    risk_key *keys;
    size_t nkeys, capkeys;
    uint32_t *table;    /* open addressing: key index + 1, 0 = empty */
    size_t tablecap;    /* power of two, at least twice nkeys */
};

static const char *const stage_names[RISK_STAGE_COUNT] = {
    "CREATED", "APPROVED", "RELEASED", "PICKING", "PACKED", "READY", "ROUTED", "SHIPPED"};

const char *risk_stage_name(risk_stage s)
{
    return (unsigned)s < RISK_STAGE_COUNT ? stage_names[s] : "?";
}

int risk_stage_parse(const char *name)
{
    for (int i = 0; name && i < RISK_STAGE_COUNT; i++)
        if (strcmp(name, stage_names[i]) == 0) return i;
    return -1;
}

#define SUB RISK_BUCKET_SUB_BITS
#define LINEAR (1 << (SUB + 1)) /* durations below this have a bucket each */

int risk_bucket_of(int64_t v)
{
    if (v < LINEAR) return v < 0 ? 0 : (int)v;
    if (v > RISK_MAX_SECONDS) v = RISK_MAX_SECONDS;
    int e = 63 - __builtin_clzll((unsigned long long)v);
    return LINEAR + (e - SUB - 1) * (1 << SUB) + (int)((v >> (e - SUB)) & ((1 << SUB) - 1));
}

int64_t risk_bucket_lo(int b)
{
    if (b < LINEAR) return b < 0 ? 0 : b;
    int e = (b - LINEAR) / (1 << SUB) + SUB + 1, sub = (b - LINEAR) % (1 << SUB);
    return (INT64_C(1) << e) + (int64_t)sub * (INT64_C(1) << (e - SUB));
}

int64_t risk_bucket_hi(int b)
{
    if (b < LINEAR) return (b < 0 ? 0 : b) + 1;
    int e = (b - LINEAR) / (1 << SUB) + SUB + 1;
    return risk_bucket_lo(b) + (INT64_C(1) << (e - SUB));
}

int64_t risk_bucket_value(int b)
{
    int64_t lo = risk_bucket_lo(b);
    return lo + (risk_bucket_hi(b) - lo) / 2;
}

void risk__set_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

risk_stats *risk_stats_new(int window_days)
{
    if (window_days < 1 || window_days > RISK_MAX_WINDOW_DAYS) return NULL;
    risk_stats *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->window = window_days;
    return st;
}

void risk_stats_free(risk_stats *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->nkeys; i++) {
        free(st->keys[i].day);
        free(st->keys[i].n);
        free(st->keys[i].counts);
    }
    free(st->keys);
    free(st->table);
    free(st);
}

int risk_stats_window_days(const risk_stats *st) { return st->window; }
size_t risk_stats_keys(const risk_stats *st) { return st->nkeys; }

static uint64_t key_hash(int stage, const char *wh, const char *carrier)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)stage;
    for (const char *p = wh; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = carrier; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* The slot of the key in the table: its own, or the empty one where it would go. */
static size_t key_slot(const risk_stats *st, int stage, const char *wh, const char *carrier)
{
    size_t mask = st->tablecap - 1, i = (size_t)key_hash(stage, wh, carrier) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t k = st->table[i];
        if (!k) return i;
        const risk_key *key = &st->keys[k - 1];
        if (key->stage == stage && strcmp(key->warehouse, wh) == 0 && strcmp(key->carrier, carrier) == 0)
            return i;
    }
}

static const risk_key *key_find(const risk_stats *st, int stage, const char *wh, const char *carrier)
{
    if (!st->tablecap) return NULL;
    uint32_t k = st->table[key_slot(st, stage, wh, carrier)];
    return k ? &st->keys[k - 1] : NULL;
}

static int table_grow(risk_stats *st)
{
    size_t cap = st->tablecap ? st->tablecap * 2 : 64;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    free(st->table);
    st->table = t;
    st->tablecap = cap;
    for (size_t i = 0; i < st->nkeys; i++) {
        const risk_key *k = &st->keys[i];
        st->table[key_slot(st, k->stage, k->warehouse, k->carrier)] = (uint32_t)(i + 1);
    }
    return 0;
}

static int key_init(risk_key *k, int window, int stage, const char *wh, const char *carrier)
{
    memset(k, 0, sizeof *k);
    k->stage = stage;
    snprintf(k->warehouse, sizeof k->warehouse, "%s", wh);
    snprintf(k->carrier, sizeof k->carrier, "%s", carrier);
    k->maxday = NO_DAY;
    k->day = malloc((size_t)window * sizeof *k->day);
    k->n = calloc((size_t)window, sizeof *k->n);
    k->counts = calloc((size_t)window * RISK_BUCKETS, sizeof *k->counts);
    if (!k->day || !k->n || !k->counts) {
        free(k->day), free(k->n), free(k->counts);
        return -1;
    }
    for (int i = 0; i < window; i++) k->day[i] = NO_DAY;
    return 0;
}

static risk_key *key_get(risk_stats *st, int stage, const char *wh, const char *carrier)
{
    if ((st->nkeys + 1) * 2 > st->tablecap && table_grow(st) != 0) return NULL;
    size_t slot = key_slot(st, stage, wh, carrier);
    if (st->table[slot]) return &st->keys[st->table[slot] - 1];
    if (st->nkeys == st->capkeys) {
        size_t cap = st->capkeys ? st->capkeys * 2 : 32;
        risk_key *keys = realloc(st->keys, cap * sizeof *keys);
        if (!keys) return NULL;
        st->keys = keys;
        st->capkeys = cap;
    }
    if (key_init(&st->keys[st->nkeys], st->window, stage, wh, carrier) != 0) return NULL;
    st->table[slot] = (uint32_t)++st->nkeys;
    return &st->keys[st->nkeys - 1];
}

static int32_t day_of(int64_t t)
{
    return (int32_t)(t >= 0 ? t / RISK_DAY : -((-t + RISK_DAY - 1) / RISK_DAY));
}

/* Count one duration on day d; a day that has left the key's window is dropped. */
static void key_add(risk_key *k, int window, int32_t d, int64_t seconds)
{
    if (k->maxday != NO_DAY && d <= k->maxday - window) return;
    if (k->maxday == NO_DAY || d > k->maxday) k->maxday = d;
    int s = (int)(((d % window) + window) % window);
    if (k->day[s] != d) { /* the slot holds an older day, which has left the window */
        k->day[s] = d;
        k->n[s] = 0;
        memset(&k->counts[(size_t)s * RISK_BUCKETS], 0, RISK_BUCKETS * sizeof *k->counts);
    }
    k->n[s]++;
    k->counts[(size_t)s * RISK_BUCKETS + risk_bucket_of(seconds)]++;
}

static int check_id(const char *id, const char *field, char *err, size_t errlen)
{
    if (id && strlen(id) > RISK_ID_MAX) {
        risk__set_err(err, errlen, "%s: longer than %d characters", field, RISK_ID_MAX);
        return -1;
    }
    return 0;
}

int risk_stats_add(risk_stats *st, const risk_sample *s, char *err, size_t errlen)
{
    if (s->delivered_at <= 0) {
        risk__set_err(err, errlen, "delivered_at: must be a time after 1970 (got %lld)", (long long)s->delivered_at);
        return -1;
    }
    if (check_id(s->warehouse, "warehouse", err, errlen) || check_id(s->carrier, "carrier", err, errlen))
        return -1;
    const char *wh = s->warehouse ? s->warehouse : "", *ca = s->carrier ? s->carrier : "";
    int32_t d = day_of(s->delivered_at);
    int added = 0;
    for (int stage = 0; stage < RISK_STAGE_COUNT; stage++) {
        int64_t t = s->entered[stage];
        if (t <= 0 || t > s->delivered_at) continue;
        /* one key at a time: getting a key may move the others */
        risk_key *k = key_get(st, stage, wh, "");
        if (k) key_add(k, st->window, d, s->delivered_at - t);
        risk_key *kc = k && *ca ? key_get(st, stage, wh, ca) : NULL;
        if (kc) key_add(kc, st->window, d, s->delivered_at - t);
        if (!k || (*ca && !kc)) {
            risk__set_err(err, errlen, "out of memory");
            return -1;
        }
        added++;
    }
    return added;
}

int risk_stats_window(const risk_stats *st, risk_stage stage, const char *warehouse,
                      const char *carrier, int64_t now, risk_hist *out)
{
    memset(out, 0, sizeof *out);
    const risk_key *k = key_find(st, (int)stage, warehouse ? warehouse : "", carrier ? carrier : "");
    if (!k || k->maxday == NO_DAY) return 0;
    int32_t today = day_of(now), from = today - st->window, kept = k->maxday - st->window;
    for (int s = 0; s < st->window; s++) {
        int32_t d = k->day[s];
        if (d == NO_DAY || d <= from || d > today || d <= kept || !k->n[s]) continue;
        const uint32_t *c = &k->counts[(size_t)s * RISK_BUCKETS];
        for (int b = 0; b < RISK_BUCKETS; b++) out->counts[b] += c[b];
        out->n += k->n[s];
    }
    return 0;
}

int64_t risk_hist_percentile(const risk_hist *h, int pct, int64_t above, uint32_t *used)
{
    uint64_t n = 0;
    int first = 0;
    while (first < RISK_BUCKETS && risk_bucket_hi(first) - 1 <= above) first++;
    for (int b = first; b < RISK_BUCKETS; b++) n += h->counts[b];
    if (used) *used = (uint32_t)n;
    if (!n) return -1;
    if (pct < 1) pct = 1;
    if (pct > 100) pct = 100;
    uint64_t rank = (n * (uint64_t)pct + 99) / 100, cum = 0;
    for (int b = first; b < RISK_BUCKETS; b++) {
        cum += h->counts[b];
        if (cum >= rank) return risk_bucket_value(b);
    }
    return risk_bucket_value(RISK_BUCKETS - 1);
}
