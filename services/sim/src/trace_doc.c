/* The trace generator's tools: a seeded PRNG, an event document rendered in several spellings, RFC 3339 times, heaps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

/* ---- PRNG ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void sim__rng_seed(sim__rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t sim__rng_next(sim__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim__rng_below(sim__rng *r, uint64_t n)
{
    /* The modulo bias is below 2^-40 for the small ranges used here, far under any visible effect. */
    return n ? sim__rng_next(r) % n : 0;
}

int64_t sim__rng_range(sim__rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo;
    return lo + (int64_t)sim__rng_below(r, (uint64_t)(hi - lo) + 1);
}

double sim__rng_unit(sim__rng *r) { return (double)(sim__rng_next(r) >> 11) * 0x1.0p-53; }

int sim__rng_chance(sim__rng *r, double p) { return sim__rng_unit(r) < p; }

/* ---- Document ---- */

void sim__doc_reset(sim__doc *d)
{
    d->count = 1;
    d->slen = 0;
    d->n[0] = (sim__node){.key = NULL, .s = NULL, .t = 0, .first = -1, .last = -1, .next = -1, .type = SIM__OBJ};
}

static int add(sim__doc *d, int parent, const char *key, uint8_t type)
{
    /* Documents are built by this module only; running out of nodes is a bug, not an input error. */
    if (d->count >= SIM__MAX_NODES) {
        fprintf(stderr, "sim: event document overflow\n");
        abort();
    }
    int i = d->count++;
    d->n[i] = (sim__node){.key = key, .s = NULL, .t = 0, .first = -1, .last = -1, .next = -1, .type = type};
    sim__node *p = &d->n[parent];
    if (p->last < 0)
        p->first = i;
    else
        d->n[p->last].next = i;
    p->last = i;
    return i;
}

static const char *save(sim__doc *d, const char *s, size_t n)
{
    if (d->slen + n + 1 > SIM__STR_CAP) {
        fprintf(stderr, "sim: event document string overflow\n");
        abort();
    }
    char *p = d->str + d->slen;
    memcpy(p, s, n);
    p[n] = '\0';
    d->slen += n + 1;
    return p;
}

int sim__doc_obj(sim__doc *d, int parent, const char *key) { return add(d, parent, key, SIM__OBJ); }

int sim__doc_arr(sim__doc *d, int parent, const char *key) { return add(d, parent, key, SIM__ARR); }

int sim__doc_str(sim__doc *d, int parent, const char *key, const char *s)
{
    int i = add(d, parent, key, SIM__STR);
    d->n[i].s = save(d, s, strlen(s));
    return i;
}

/* Write the decimal digits of v backwards from end; returns the start. */
static char *put_u64(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

int sim__doc_int(sim__doc *d, int parent, const char *key, int64_t v) { return sim__doc_fixed(d, parent, key, v, 0); }

int sim__doc_fixed(sim__doc *d, int parent, const char *key, int64_t v, int decimals)
{
    char tmp[48], *end = tmp + sizeof tmp, *p = end;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    uint64_t scale = 1;
    for (int i = 0; i < decimals; i++) scale *= 10;
    if (decimals > 0) {
        uint64_t frac = u % scale;
        for (int i = 0; i < decimals; i++) {
            *--p = (char)('0' + frac % 10);
            frac /= 10;
        }
        *--p = '.';
    }
    p = put_u64(p, u / scale);
    if (v < 0) *--p = '-';
    int i = add(d, parent, key, SIM__NUM);
    d->n[i].s = save(d, p, (size_t)(end - p));
    return i;
}

int sim__doc_time(sim__doc *d, int parent, const char *key, int64_t ns)
{
    int i = add(d, parent, key, SIM__TIME);
    d->n[i].t = ns;
    return i;
}

void sim__doc_set_str(sim__doc *d, int node, const char *s)
{
    d->n[node].type = SIM__STR;
    d->n[node].s = save(d, s, strlen(s));
}

int sim__doc_find(const sim__doc *d, int parent, const char *key)
{
    for (int c = d->n[parent].first; c >= 0; c = d->n[c].next)
        if (d->n[c].key && strcmp(d->n[c].key, key) == 0) return c;
    return -1;
}

void sim__doc_unlink(sim__doc *d, int parent, int child)
{
    sim__node *p = &d->n[parent];
    int prev = -1;
    for (int c = p->first; c >= 0; prev = c, c = d->n[c].next) {
        if (c != child) continue;
        if (prev < 0)
            p->first = d->n[c].next;
        else
            d->n[prev].next = d->n[c].next;
        if (p->last == c) p->last = prev;
        return;
    }
}

int sim__doc_payload(const sim__doc *d)
{
    for (int c = d->n[0].first; c >= 0; c = d->n[c].next)
        if (d->n[c].type == SIM__OBJ && strcmp(d->n[c].key, "source") != 0) return c;
    return -1;
}

static void quote(ct_buf *b, const char *s)
{
    ct_buf_addc(b, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '"' && c != '\\' && c >= 0x20) continue;
        ct_buf_add(b, run, (size_t)(s - run));
        if (c == '"' || c == '\\') {
            ct_buf_addc(b, '\\');
            ct_buf_addc(b, (char)c);
        } else {
            ct_buf_addf(b, "\\u%04x", c);
        }
        run = s + 1;
    }
    ct_buf_add(b, run, (size_t)(s - run));
    ct_buf_addc(b, '"');
}

static void render(const sim__doc *d, int i, const sim__style *st, ct_buf *b)
{
    const sim__node *n = &d->n[i];
    switch (n->type) {
    case SIM__STR: quote(b, n->s); return;
    case SIM__NUM: ct_buf_adds(b, n->s); return;
    case SIM__TIME:
        ct_buf_addc(b, '"');
        sim__time_format(b, n->t, st->offset_min, st->zulu);
        ct_buf_addc(b, '"');
        return;
    case SIM__ARR:
        /* Arrays keep their order in every spelling: element order is content (stops, lines). */
        ct_buf_addc(b, '[');
        for (int c = n->first; c >= 0; c = d->n[c].next) {
            if (c != n->first) ct_buf_addc(b, ',');
            render(d, c, st, b);
        }
        ct_buf_addc(b, ']');
        return;
    default: break;
    }
    int kids[32], nk = 0;
    for (int c = n->first; c >= 0 && nk < 32; c = d->n[c].next) kids[nk++] = c;
    ct_buf_addc(b, '{');
    for (int j = 0; j < nk; j++) {
        int c = kids[st->reversed ? nk - 1 - j : j];
        if (j) ct_buf_addc(b, ',');
        quote(b, d->n[c].key);
        ct_buf_addc(b, ':');
        render(d, c, st, b);
    }
    ct_buf_addc(b, '}');
}

void sim__doc_render(const sim__doc *d, const sim__style *st, ct_buf *out) { render(d, 0, st, out); }

/* ---- Times ---- */

static int64_t floor_div(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

void sim__civil_of(int64_t ns, sim__civil *c)
{
    int64_t secs = floor_div(ns, SIM__SEC);
    int64_t days = floor_div(secs, 86400);
    int64_t rem = secs - days * 86400;
    /* Howard Hinnant's civil_from_days: proleptic Gregorian, no tables, no TZ. */
    int64_t z = days + 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    c->year = (int)(yoe + era * 400 + (month <= 2));
    c->month = (int)month;
    c->day = (int)day;
    c->hour = (int)(rem / 3600);
    c->minute = (int)(rem / 60 % 60);
    c->second = (int)(rem % 60);
}

static char *put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10 % 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

void sim__time_format(ct_buf *b, int64_t ns, int offset_min, int zulu)
{
    int64_t secs = floor_div(ns, SIM__SEC);
    int64_t frac = ns - secs * SIM__SEC;
    sim__civil c;
    sim__civil_of((secs + (int64_t)offset_min * 60) * SIM__SEC, &c);
    char tmp[48], *p = tmp;
    p = put2(p, c.year / 100);
    p = put2(p, c.year % 100);
    *p++ = '-';
    p = put2(p, c.month);
    *p++ = '-';
    p = put2(p, c.day);
    *p++ = 'T';
    p = put2(p, c.hour);
    *p++ = ':';
    p = put2(p, c.minute);
    *p++ = ':';
    p = put2(p, c.second);
    if (frac) {
        /* Milliseconds, microseconds or nanoseconds: the shortest group that is exact. */
        int digits = frac % 1000000 == 0 ? 3 : frac % 1000 == 0 ? 6 : 9;
        int64_t v = digits == 3 ? frac / 1000000 : digits == 6 ? frac / 1000 : frac;
        *p++ = '.';
        for (int i = digits - 1; i >= 0; i--) {
            p[i] = (char)('0' + v % 10);
            v /= 10;
        }
        p += digits;
    }
    if (offset_min == 0 && zulu) {
        *p++ = 'Z';
    } else {
        int a = offset_min < 0 ? -offset_min : offset_min;
        *p++ = offset_min < 0 ? '-' : '+';
        p = put2(p, a / 60);
        *p++ = ':';
        p = put2(p, a % 60);
    }
    ct_buf_add(b, tmp, (size_t)(p - tmp));
}

/* ---- Heaps ---- */

static int less(const sim__heap *h, size_t i, size_t j)
{
    sim__hkey a, b;
    memcpy(&a, h->data + i * h->elsz, sizeof a);
    memcpy(&b, h->data + j * h->elsz, sizeof b);
    return a.at < b.at || (a.at == b.at && a.seq < b.seq);
}

static void swap(sim__heap *h, size_t i, size_t j)
{
    char tmp[64];
    char *a = h->data + i * h->elsz, *b = h->data + j * h->elsz;
    memcpy(tmp, a, h->elsz);
    memcpy(a, b, h->elsz);
    memcpy(b, tmp, h->elsz);
}

void sim__heap_push(sim__heap *h, const void *el)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->data = ct_realloc(h->data, h->cap * h->elsz);
    }
    memcpy(h->data + h->n * h->elsz, el, h->elsz);
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(h, i, p)) break;
        swap(h, i, p);
        i = p;
    }
}

int sim__heap_pop(sim__heap *h, void *out)
{
    if (!h->n) return 0;
    memcpy(out, h->data, h->elsz);
    h->n--;
    if (h->n) memcpy(h->data, h->data + h->n * h->elsz, h->elsz);
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && less(h, l, m)) m = l;
        if (r < h->n && less(h, r, m)) m = r;
        if (m == i) break;
        swap(h, i, m);
        i = m;
    }
    return 1;
}

int sim__heap_top(const sim__heap *h, sim__hkey *out)
{
    if (!h->n) return 0;
    memcpy(out, h->data, sizeof *out);
    return 1;
}

void *sim__heap_at(sim__heap *h, size_t i) { return h->data + i * h->elsz; }
