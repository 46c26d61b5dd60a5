/* Property test: any permutation of a generated trace, with any events repeated, in any batching, folds to identical views. */
#include "fx.h"
#include "sim_trace.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next_rand(void)
{
    /* splitmix64: a fixed seed makes a failing permutation reproducible. */
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct trace {
    char **line;
    size_t n;
} trace;

static void load_trace(trace *t, uint32_t orders, uint64_t seed)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.seed = seed;
    o.orders = orders;
    o.p_conflict = 0; /* the one arrival-order-dependent case is tested on its own */
    sim_trace *g = NULL;
    if (sim_trace_create(&g, &o) != CT_OK) exit(2);
    size_t cap = 1024;
    t->line = malloc(cap * sizeof *t->line);
    t->n = 0;
    sim_record rec;
    while (sim_trace_next(g, &rec)) {
        if (t->n == cap) t->line = realloc(t->line, (cap *= 2) * sizeof *t->line);
        t->line[t->n++] = strdup(rec.line);
    }
    sim_trace_destroy(g);
}

/* Fold lines in the given order, in batches of random sizes; return the stable dump (closed exceptions too). */
static char *fold(char **lines, size_t n, int random_batches)
{
    fx f;
    /* A third of the permutations start with a map of 1 MiB: batches fail when it is full and are applied
     * again in a grown map (what the writer keeps of the failed attempt must be forgotten). */
    fx_open_map(&f, random_batches && next_rand() % 3 == 0 ? 1 << 20 : 16 << 20);
    /* Half the permutations with a writer cache of a few KiB: decoded events evicted between batches (and
     * with them the timelines the writer keeps). */
    if (random_batches && next_rand() % 2) store_writer_cache(f.s, 48 << 10);
    size_t i = 0;
    while (i < n) {
        size_t batch = random_batches ? 1 + next_rand() % 300 : 256;
        if (batch > 256) batch = 256; /* fx_feed's limit */
        ct_buf b = {0};
        for (size_t j = 0; j < batch && i < n; j++, i++) {
            ct_buf_adds(&b, lines[i]);
            ct_buf_addc(&b, '\n');
        }
        if (fx_feed(&f, b.data) != CT_OK) T_FAIL("store_apply failed");
        ct_buf_free(&b);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    store_dump(f.s, STORE_DUMP_STABLE | STORE_DUMP_DUES | STORE_DUMP_CLOSED, m); /* the SLA due index too */
    fclose(m);
    fx_close(&f);
    return buf;
}

/* The exception ids of the orders' and shipments' items in a dump (dead letters' name their stream
 * sequence, which a permutation changes: they are tested in test_views). */
static void collect_exids(const char *dump, char ***ids, size_t *n)
{
    json_error_t je;
    json_t *d = json_loads(dump, 0, &je);
    const char *view;
    json_t *items;
    json_object_foreach(d, view, items) {
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it) {
            const char *x = json_string_value(json_object_get(it, "exceptionId"));
            if (!x || x[0] == 'd') continue;
            *ids = realloc(*ids, (*n + 1) * sizeof **ids);
            (*ids)[(*n)++] = strdup(x);
        }
    }
    json_decref(d);
}

/* Random actions (every kind, any order of times) on exceptions seen half-way and at the end of the trace:
 * some close later, some are resolved, reopened, snoozed, and some name instances that never appear. */
static void add_actions(trace *t)
{
    char **ids = NULL;
    size_t n_ids = 0;
    char *half = fold(t->line, t->n / 2, 0), *end = fold(t->line, t->n, 0);
    collect_exids(half, &ids, &n_ids);
    collect_exids(end, &ids, &n_ids);
    free(half);
    free(end);
    T_ASSERT(n_ids > 100);
    static const char *const kinds[] = {"exceptionAcknowledged", "exceptionAssigned", "exceptionSnoozed",
                                        "exceptionNoted", "exceptionResolved", "exceptionReopened"};
    static const char *const names[] = {"ana", "ben", "chen", ""};
    size_t want = n_ids;
    t->line = realloc(t->line, (t->n + want + 20) * sizeof *t->line);
    for (size_t k = 0; k < want; k++) {
        const char *x = ids[next_rand() % n_ids];
        int kind = (int)(next_rand() % 6);
        char extra[200] = "";
        if (kind == 1) snprintf(extra, sizeof extra, ",\"assignee\":\"%s\"", names[next_rand() % 4]);
        if (kind == 2) snprintf(extra, sizeof extra, ",\"until\":\"2026-11-2%dT1%d:00:00Z\"", (int)(next_rand() % 9),
                                (int)(next_rand() % 10));
        if (kind == 3 || next_rand() % 3 == 0) strcat(extra, ",\"note\":\"n\"");
        if (kind == 4) strcat(extra, ",\"resolution\":\"NOT_AN_ISSUE\"");
        char line[1024];
        snprintf(line, sizeof line,
                 "{\"eventId\":\"act-%zu\",\"occurredAt\":\"2026-11-2%dT%02d:%02d:00Z\",\"source\":{\"system\":"
                 "\"tower\"},\"%s\":{\"exceptionId\":\"%s\",\"actor\":\"sup\"%s}}",
                 k, (int)(next_rand() % 9), (int)(next_rand() % 24), (int)(next_rand() % 60), kinds[kind], x, extra);
        t->line[t->n++] = strdup(line);
    }
    /* Actions for an instance no event makes. */
    t->line[t->n++] = strdup("{\"eventId\":\"act-ghost\",\"occurredAt\":\"2026-11-27T10:00:00Z\",\"source\":"
                             "{\"system\":\"tower\"},\"exceptionAcknowledged\":{\"exceptionId\":"
                             "\"o~NO-SUCH~blocked~ORDER_HOLD~1\",\"actor\":\"sup\"}}");
    for (size_t i = 0; i < n_ids; i++) free(ids[i]);
    free(ids);
}

/* Rounds of random permutations: TOWER_PROP_ROUNDS, or 20 (10 under the sanitizers, 5-10x slower: they
 * look for memory errors on the same paths, and the normal build runs all 20). */
static int rounds(void)
{
    const char *e = getenv("TOWER_PROP_ROUNDS");
    if (e && atoi(e) > 0) return atoi(e);
#if defined(__SANITIZE_ADDRESS__)
    return 10;
#else
    return 20;
#endif
}

static void permutations(void)
{
    trace t;
    load_trace(&t, 250, 11);
    add_actions(&t);
    T_ASSERT(t.n > 3000);
    char *reference = fold(t.line, t.n, 0);
    /* The reference must have something in every view but orphans may be few: check the big ones. */
    T_ASSERT(strstr(reference, "\"awaiting_release\": []") == NULL);
    T_ASSERT(strstr(reference, "\"blocked\": []") == NULL);
    T_ASSERT(strstr(reference, "\"dead_letters\": []") == NULL);
    T_ASSERT(strstr(reference, "\"sla_dues\": []") == NULL);
    if (getenv("TOWER_PROP_DUMP")) { /* to look at what the reference holds */
        FILE *o = fopen(getenv("TOWER_PROP_DUMP"), "w");
        if (o) fputs(reference, o), fclose(o);
    }
    /* The actions did their work: states, closed and resolved exceptions. */
    T_ASSERT(strstr(reference, "\"acknowledgedBy\":\"sup\"") != NULL);
    T_ASSERT(strstr(reference, "\"snoozedUntil\"") != NULL);
    T_ASSERT(strstr(reference, "\"closed\": []") == NULL);
    T_ASSERT(strstr(reference, "\"resolution\":\"NOT_AN_ISSUE\"") != NULL);
    T_ASSERT(strstr(reference, "\"closedBy\":\"") != NULL);

    size_t cap = t.n * 2;
    char **perm = malloc(cap * sizeof *perm);
    const int n_rounds = rounds();
    for (int round = 0; round < n_rounds; round++) {
        size_t n = t.n;
        memcpy(perm, t.line, n * sizeof *perm);
        /* Random extra copies of random lines (up to 25 %). */
        size_t extra = next_rand() % (t.n / 4);
        for (size_t k = 0; k < extra; k++) perm[n++] = t.line[next_rand() % t.n];
        for (size_t k = n - 1; k > 0; k--) {
            size_t j = next_rand() % (k + 1);
            char *x = perm[k];
            perm[k] = perm[j];
            perm[j] = x;
        }
        char *d = fold(perm, n, 1);
        if (strcmp(d, reference) != 0) {
            T_FAIL("round %d: dump differs from the in-order fold", round);
            FILE *a = fopen("/tmp/tower-prop-ref.json", "w"), *b = fopen("/tmp/tower-prop-perm.json", "w");
            if (a && b) {
                fputs(reference, a);
                fputs(d, b);
                fprintf(stderr, "see /tmp/tower-prop-ref.json and /tmp/tower-prop-perm.json\n");
            }
            if (a) fclose(a);
            if (b) fclose(b);
            free(d);
            break;
        }
        test_checks++;
        free(d);
    }
    free(perm);
    free(reference);
    for (size_t i = 0; i < t.n; i++) free(t.line[i]);
    free(t.line);
}

int main(void)
{
    T_RUN(permutations);
    return t_done();
}
