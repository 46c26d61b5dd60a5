/* The trend kept in the store (store.h "the trend"): the same rows whatever the batching, bounded, and one
 * event far in the future moves the clock by at most STORE_TREND_LEAP_S; a rebuild's hint (rows it drops anyway
 * are not closed) gives the same rows and views, and a wrong guess of it is caught. */
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

/* A generated trace (late, duplicate and bad records included) of orders arriving at opm per minute, with extra
 * lines appended. */
static void load_trace_at(trace *t, uint32_t orders, double opm, const char *const *extra, size_t n_extra)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.seed = 17;
    o.orders = orders;
    o.orders_per_minute = opm;
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

/* A few hours of business: many minutes, some with several events. */
static void load_trace(trace *t, uint32_t orders, const char *const *extra, size_t n_extra)
{
    load_trace_at(t, orders, 2, extra, n_extra);
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

/* ---- the rebuild's hint (store_opts.trend_drop_before_ns) ---- */

/* A store as a replay left it: its trend rows, their number, the clock, and its stable dump (views, dues,
 * closed exceptions) as text. */
typedef struct folded {
    char *rows;
    size_t n_rows;
    int64_t clock;
    char *dump;
} folded;

static void folded_free(folded *f)
{
    free(f->rows);
    free(f->dump);
}

/* Fold the trace into a store opened with the trend hint hint_ns (0: none), batch lines per batch (0: random). */
static void fold_hinted(const trace *t, size_t batch, int64_t hint_ns, folded *out)
{
    fx f;
    fx_open(&f);
    store_close(f.s);
    store_opts o = {.dir = f.dir, .no_sync = 1, .map_size = 16 << 20, .trend_drop_before_ns = hint_ns};
    if (store_open(&f.s, &o) != CT_OK) exit(2);
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
    out->rows = trend_text(f.s, &out->n_rows, &out->clock);
    size_t len = 0;
    FILE *m = open_memstream(&out->dump, &len);
    T_EQ_INT(store_dump(f.s, STORE_DUMP_STABLE | STORE_DUMP_DUES | STORE_DUMP_CLOSED, m), CT_OK);
    fclose(m);
    fx_close(&f);
}

/* The occurredAt of line i, or 0 when it does not decode. */
static int64_t occurred_of(const trace *t, size_t i)
{
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_json_text(&e, t->line[i], strlen(t->line[i]), &err) != CT_OK) return 0;
    int64_t ns = e->occurred_at->seconds * NS + e->occurred_at->nanos;
    evt_free(e);
    return ns;
}

/* What the rebuild guesses (projector_trend_guess): store_trend_guess of the valid events of the last 32 lines. */
static int64_t guess_of(const trace *t)
{
    int64_t occ[32];
    size_t n = 0;
    for (size_t i = t->n > 32 ? t->n - 32 : 0; i < t->n; i++)
        if (occurred_of(t, i)) occ[n++] = occurred_of(t, i);
    return store_trend_guess(occ, n);
}

/* What towerd rebuild does (towerd_replay_hinted): with the guess, then, if it did not hold, again without. */
static int fold_as_rebuild(const trace *t, size_t batch, folded *out)
{
    int64_t guess = guess_of(t);
    fold_hinted(t, batch, guess, out);
    if (store_trend_hint_held(guess, out->clock)) return 0;
    folded_free(out);
    fold_hinted(t, batch, 0, out);
    return 1;
}

static void same_store(const folded *a, const folded *b)
{
    T_EQ_INT(a->n_rows, b->n_rows);
    T_EQ_INT(a->clock, b->clock);
    T_ASSERT(strcmp(a->rows, b->rows) == 0);
    T_ASSERT(strcmp(a->dump, b->dump) == 0);
}

static void cutoff_and_held(void)
{
    int64_t b = STORE_TREND_BUCKET_S * NS, day2 = STORE_TREND_KEEP_BUCKETS * b;
    int64_t clock = 1793613600LL * NS + 7 * NS; /* 2026-11-02T10:00:07Z: its bucket starts at 10:00 */
    T_EQ_INT(store_trend_cutoff(clock), 1793613600LL * NS - day2);
    T_EQ_INT(store_trend_cutoff(0), 0);
    T_ASSERT(store_trend_hint_held(0, clock));
    T_ASSERT(store_trend_hint_held(store_trend_cutoff(clock), clock));
    T_ASSERT(store_trend_hint_held(store_trend_cutoff(clock) - b, clock));
    T_ASSERT(!store_trend_hint_held(store_trend_cutoff(clock) + 1, clock));
    T_ASSERT(store_trend_hint_held(store_trend_cutoff(clock) + b, 0)); /* no event: no row was closed */
    int64_t h = 3600 * NS, occ[] = {clock, clock + 5 * h, clock - 9 * h, clock + 6 * h};
    T_EQ_INT(store_trend_guess(occ, 0), 0);
    T_EQ_INT(store_trend_guess(occ, 1), store_trend_cutoff(clock - h));
    T_EQ_INT(store_trend_guess(occ, 2), store_trend_cutoff(clock - h)); /* the earliest */
    T_EQ_INT(store_trend_guess(occ + 1, 1), store_trend_cutoff(clock + 4 * h));
    T_EQ_INT(store_trend_guess(occ, 4), store_trend_cutoff(clock - 10 * h)); /* a late one lowers it */
}

/* A trace over about 70 hours: the rows and the views are the same with the hint, for several batchings; a
 * hint past the cutoff the store ends with loses rows that are kept, and the check sees it. */
static void hint_gives_the_same_store(void)
{
    trace t;
    load_trace_at(&t, 500, 0.12, NULL, 0);
    folded want, got;
    fold_hinted(&t, 256, 0, &want);
    int64_t cutoff = store_trend_cutoff(want.clock), guess = guess_of(&t), first = occurred_of(&t, 0);
    T_ASSERT(first > 0 && first < cutoff - 12 * 3600 * NS); /* more than 60 hours */
    T_ASSERT(want.n_rows > STORE_TREND_KEEP_BUCKETS / 2);
    T_ASSERT(guess > first && store_trend_hint_held(guess, want.clock));
    const size_t batches[] = {3, 256, 0}; /* (one event per commit: same_rows_whatever_the_batching) */
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        fold_hinted(&t, batches[i], guess, &got);
        same_store(&got, &want);
        folded_free(&got);
    }
    fold_hinted(&t, 37, cutoff, &got); /* the latest hint that holds */
    same_store(&got, &want);
    folded_free(&got);
    int64_t wrong = cutoff + 12 * 3600 * NS;
    fold_hinted(&t, 256, wrong, &got);
    T_ASSERT(!store_trend_hint_held(wrong, got.clock));
    T_EQ_INT(got.clock, want.clock);
    T_ASSERT(strcmp(got.rows, want.rows) != 0); /* rows of the 12 hours after the cutoff were not closed */
    T_ASSERT(strcmp(got.dump, want.dump) == 0); /* the views do not depend on it */
    folded_free(&got);
    folded_free(&want);
    trace_free(&t);
}

/* The trace ending with 40 events dated 2099 (then a line that does not decode): the guess, from the last 32
 * alone, is far past the clock, which moved one hour per event; the check after the first replay sees it and
 * the second, without the hint, gives the store of a replay without it. Ending with one such event, or with it
 * and then an event far in the past, the guess holds (lower: fewer rows skipped), with the same store and no
 * second replay. */
static void wrong_guess_is_caught(void)
{
    static char many[40][400];
    const char *ahead[41];
    for (int i = 0; i < 40; i++) {
        snprintf(many[i], sizeof many[i],
                 "{\"eventId\":\"ahead-%d\",\"occurredAt\":\"2099-12-31T23:%02d:00Z\",\"source\":{\"system\":\"erp\"},"
                 "\"orderId\":\"ZA-%d\",\"orderCreated\":{\"customerId\":\"c\",\"channel\":\"EDI\","
                 "\"lines\":[{\"sku\":\"S\",\"qty\":1}]}}", i, i, i);
        ahead[i] = many[i];
    }
    ahead[40] = future[2];
    const char *const one[] = {future[0], future[2]};
    const char *const *ends[] = {ahead, one, future};
    const size_t n_ends[] = {41, 2, 3};
    for (int k = 0; k < 3; k++) {
        trace t;
        load_trace_at(&t, 500, 0.12, ends[k], n_ends[k]);
        folded want, got;
        fold_hinted(&t, 256, 0, &want);
        T_EQ_INT(store_trend_hint_held(guess_of(&t), want.clock), k != 0);
        if (k == 0) {
            fold_hinted(&t, 256, guess_of(&t), &got); /* what the first replay leaves */
            T_ASSERT(strcmp(got.rows, want.rows) != 0);
            folded_free(&got);
        }
        T_EQ_INT(fold_as_rebuild(&t, 256, &got), k == 0);
        same_store(&got, &want);
        folded_free(&got);
        T_EQ_INT(fold_as_rebuild(&t, 0, &got), k == 0);
        same_store(&got, &want);
        folded_free(&got);
        folded_free(&want);
        trace_free(&t);
    }
}

int main(void)
{
    T_RUN(advance);
    T_RUN(same_rows_whatever_the_batching);
    T_RUN(retention);
    T_RUN(cutoff_and_held);
    T_RUN(hint_gives_the_same_store);
    T_RUN(wrong_guess_is_caught);
    return t_done();
}
