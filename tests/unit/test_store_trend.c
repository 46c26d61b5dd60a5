/* The trend kept in the store (store.h "the trend"): the same rows whatever the batching, bounded, and one
 * event far in the future moves the clock by at most STORE_TREND_LEAP_S. */
#include "fx.h"
#include "sim_trace.h"

#define NS 1000000000LL

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct trace {
    char **line;
    size_t n;
} trace;

/* A generated trace (late, duplicate and bad records included), with extra lines appended. */
static void load_trace(trace *t, uint32_t orders, const char *const *extra, size_t n_extra)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.seed = 17;
    o.orders = orders;
    o.orders_per_minute = 2; /* a few hours of business: many minutes, some with several events */
    sim_trace *g = NULL;
    if (sim_trace_create(&g, &o) != CT_OK) exit(2);
    size_t cap = 1024;
    t->line = malloc(cap * sizeof *t->line);
    t->n = 0;
    sim_record rec;
    while (sim_trace_next(g, &rec)) {
        if (t->n + n_extra >= cap) t->line = realloc(t->line, (cap *= 2) * sizeof *t->line);
        t->line[t->n++] = strdup(rec.line);
    }
    sim_trace_destroy(g);
    for (size_t i = 0; i < n_extra; i++) t->line[t->n++] = strdup(extra[i]);
}

static void trace_free(trace *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->line[i]);
    free(t->line);
}

static int row_text(void *ctx, const store_trend_row *row)
{
    ct_buf *b = ctx;
    char line[64];
    snprintf(line, sizeof line, "%lld %lld", (long long)row->bucket_ns, (long long)row->t_ns);
    ct_buf_adds(b, line);
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        snprintf(line, sizeof line, " %llu", (unsigned long long)row->counts[v]);
        ct_buf_adds(b, line);
    }
    ct_buf_addc(b, '\n');
    return 0;
}

/* Every row as text, and the row count and clock. */
static char *trend_text(store *s, size_t *rows, int64_t *clock)
{
    ct_buf b = {0};
    store_reader *r = NULL;
    if (store_reader_begin(s, &r) != CT_OK) exit(2);
    T_EQ_INT(store_reader_trend(r, 0, row_text, &b), CT_OK);
    *clock = store_reader_trend_clock(r);
    store_reader_end(r);
    *rows = 0;
    for (size_t i = 0; i < b.len; i++) *rows += b.data[i] == '\n';
    ct_buf_addc(&b, '\0');
    return b.data;
}

/* Fold the trace in batches of `batch` lines (0: random sizes); the trend as text. */
static char *fold(const trace *t, size_t batch, size_t *rows, int64_t *clock)
{
    fx f;
    fx_open(&f);
    for (size_t i = 0; i < t->n;) {
        size_t k = batch ? batch : 1 + next_rand() % 256;
        ct_buf b = {0};
        for (size_t j = 0; j < k && i < t->n; j++, i++) {
            ct_buf_adds(&b, t->line[i]);
            ct_buf_addc(&b, '\n');
        }
        if (fx_feed(&f, b.data) != CT_OK) T_FAIL("store_apply failed");
        ct_buf_free(&b);
    }
    char *txt = trend_text(f.s, rows, clock);
    /* The last row holds the counts the store keeps now. */
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    const char *last = strrchr(txt, '\n');
    while (last && last > txt && last[-1] != '\n') last--;
    ct_buf want = {0};
    char num[32];
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        snprintf(num, sizeof num, " %llu", (unsigned long long)store_reader_count(r, (fold_view)v));
        ct_buf_adds(&want, num);
    }
    ct_buf_addc(&want, '\0');
    store_reader_end(r);
    T_ASSERT(last && strstr(last, want.data) != NULL);
    ct_buf_free(&want);
    fx_close(&f);
    return txt;
}

static void advance(void)
{
    T_EQ_INT(store_trend_advance(0, 5 * NS), 5 * NS);
    T_EQ_INT(store_trend_advance(10 * NS, 5 * NS), 10 * NS);           /* never back */
    T_EQ_INT(store_trend_advance(10 * NS, 70 * NS), 70 * NS);
    T_EQ_INT(store_trend_advance(10 * NS, 10 * NS + 86400 * NS), 10 * NS + STORE_TREND_LEAP_S * NS); /* bounded */
}

/* Hostile: an event in 2099 (valid for the codec) after the trace, then one of the trace's own time. */
static const char *const future[] = {
    "{\"eventId\":\"far-future\",\"occurredAt\":\"2099-12-31T23:59:59Z\",\"source\":{\"system\":\"erp\"},"
    "\"orderId\":\"ZZ-1\",\"orderCreated\":{\"customerId\":\"c\",\"channel\":\"EDI\",\"lines\":[{\"sku\":\"S\",\"qty\":1}]}}",
    "{\"eventId\":\"after-it\",\"occurredAt\":\"2026-11-02T06:00:00Z\",\"source\":{\"system\":\"erp\"},"
    "\"orderId\":\"ZZ-2\",\"orderCreated\":{\"customerId\":\"c\",\"channel\":\"EDI\",\"lines\":[{\"sku\":\"S\",\"qty\":1}]}}",
    "not json at all",
};

static void same_rows_whatever_the_batching(void)
{
    trace t;
    load_trace(&t, 400, future, 3);
    size_t rows1, rows2, rows3;
    int64_t c1, c2, c3;
    char *one = fold(&t, 1, &rows1, &c1), *big = fold(&t, 256, &rows2, &c2), *rnd = fold(&t, 0, &rows3, &c3);
    T_ASSERT(rows1 > 50);
    T_ASSERT(rows1 <= STORE_TREND_KEEP_BUCKETS + 1);
    T_EQ_INT(rows1, rows2);
    T_EQ_INT(rows1, rows3);
    T_EQ_INT(c1, c2);
    T_EQ_INT(c1, c3);
    T_ASSERT(strcmp(one, big) == 0);
    T_ASSERT(strcmp(one, rnd) == 0);
    /* The 2099 event moved the clock by one leap at most, past the trace's last minute. */
    const char *last = strrchr(one, '\n');
    while (last && last > one && last[-1] != '\n') last--;
    long long bucket = 0, tns = 0;
    T_ASSERT(last && sscanf(last, "%lld %lld", &bucket, &tns) == 2);
    T_EQ_INT(c1, tns);
    T_ASSERT(c1 < 1798761600LL * NS); /* 2027-01-01: not 2099-12-31 */
    free(one);
    free(big);
    free(rnd);
    trace_free(&t);
}

/* Sixty hourly events, one batch each (batch 0) or all in one batch (batch 1): the text of the rows. */
static char *hourly(int one_batch, size_t *rows, int64_t *clock)
{
    fx f;
    fx_open(&f);
    ct_buf all = {0};
    char line[512];
    for (int h = 0; h < 60; h++) {
        snprintf(line, sizeof line,
                 "{\"eventId\":\"r-%d\",\"occurredAt\":\"2026-11-%02dT%02d:00:00Z\",\"source\":{\"system\":\"erp\"},"
                 "\"orderId\":\"R-%d\",\"orderCreated\":{\"customerId\":\"c\",\"channel\":\"EDI\","
                 "\"lines\":[{\"sku\":\"S\",\"qty\":1}]}}\n",
                 h, 2 + h / 24, h % 24, h);
        if (one_batch) ct_buf_adds(&all, line);
        else if (fx_feed(&f, line) != CT_OK) T_FAIL("store_apply failed");
    }
    ct_buf_addc(&all, '\0');
    if (one_batch && fx_feed(&f, all.data) != CT_OK) T_FAIL("store_apply failed");
    ct_buf_free(&all);
    char *txt = trend_text(f.s, rows, clock);
    fx_close(&f);
    return txt;
}

/* Rows older than the kept window are dropped: a trace over more than 48 hours keeps 48 hours of rows, also
 * when one batch goes past them (then they are not written at all). */
static void retention(void)
{
    size_t rows, rows1;
    int64_t clock, clock1;
    char *txt = hourly(0, &rows, &clock), *one = hourly(1, &rows1, &clock1);
    T_EQ_INT(rows, 49); /* the hours 11..59: the row 48 hours before the last one's bucket is the first kept */
    long long first = 0;
    T_ASSERT(sscanf(txt, "%lld", &first) == 1);
    T_EQ_INT(clock - first, (int64_t)STORE_TREND_KEEP_BUCKETS * STORE_TREND_BUCKET_S * NS);
    T_EQ_INT(rows1, rows);
    T_EQ_INT(clock1, clock);
    T_ASSERT(strcmp(txt, one) == 0);
    free(txt);
    free(one);
}

int main(void)
{
    T_RUN(advance);
    T_RUN(same_rows_whatever_the_batching);
    T_RUN(retention);
    return t_done();
}
