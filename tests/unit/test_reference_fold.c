/* Reference data (contract v1.2): the reference table and the UNKNOWN_CODE anomalies, in any arrival order. */
#include "fx.h"
#include "sim_trace.h"

/* Events: definitions (mdm) and business events naming codes. */
#define WH1 "{\"eventId\":\"mdm-w1\",\"occurredAt\":\"2026-11-27T06:00:00Z\",\"source\":{\"system\":\"mdm\"}," \
            "\"warehouseDefined\":{\"warehouseId\":\"dc-1\",\"name\":\"Lyon\",\"region\":\"EU\",\"timeZone\":\"Europe/Paris\"}}"
#define WH1B "{\"eventId\":\"mdm-w1b\",\"occurredAt\":\"2026-11-27T07:00:00Z\",\"source\":{\"system\":\"mdm\"}," \
             "\"warehouseDefined\":{\"warehouseId\":\"dc-1\",\"name\":\"Lyon 2\",\"timeZone\":\"Europe/Berlin\"}}"
#define WH1OLD "{\"eventId\":\"mdm-w1o\",\"occurredAt\":\"2026-11-27T05:00:00Z\",\"source\":{\"system\":\"mdm\"}," \
               "\"warehouseDefined\":{\"warehouseId\":\"dc-1\",\"name\":\"Old\"}}"
#define WH9 "{\"eventId\":\"mdm-w9\",\"occurredAt\":\"2026-11-27T09:00:00Z\",\"source\":{\"system\":\"mdm\"}," \
            "\"warehouseDefined\":{\"warehouseId\":\"dc-9\",\"name\":\"Nine\",\"timeZone\":\"Asia/Tokyo\"}}"
#define CA1 "{\"eventId\":\"mdm-c1\",\"occurredAt\":\"2026-11-27T06:00:00Z\",\"source\":{\"system\":\"mdm\"}," \
            "\"carrierDefined\":{\"carrierId\":\"dhl\",\"name\":\"DHL\"}}"
#define SK1 "{\"eventId\":\"mdm-k1\",\"occurredAt\":\"2026-11-27T06:00:00Z\",\"source\":{\"system\":\"mdm\"}," \
            "\"skuDefined\":{\"sku\":\"SKU-1\",\"unit\":\"EA\"}}"
#define O1 "{\"eventId\":\"erp-1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\",\"instance\":\"erp-eu\"}," \
           "\"orderId\":\"O1\",\"orderCreated\":{\"customerId\":\"C1\",\"lines\":[{\"sku\":\"SKU-1\",\"qty\":1},{\"sku\":\"SKU-2\",\"qty\":1}],\"warehouseId\":\"dc-1\"}}"
#define O2 "{\"eventId\":\"wms-2\",\"occurredAt\":\"2026-11-27T08:30:00Z\",\"source\":{\"system\":\"wms\",\"instance\":\"wms-dc9\"}," \
           "\"orderId\":\"O1\",\"pickStarted\":{\"warehouseId\":\"dc-9\"}}"
#define O3 "{\"eventId\":\"wms-3\",\"occurredAt\":\"2026-11-27T08:10:00Z\",\"source\":{\"system\":\"wms\",\"instance\":\"wms-dc9b\"}," \
           "\"orderId\":\"O1\",\"pickStarted\":{\"warehouseId\":\"dc-9\"}}"
#define S1 "{\"eventId\":\"car-1\",\"occurredAt\":\"2026-11-27T10:00:00Z\",\"source\":{\"system\":\"carrier\"}," \
           "\"shipmentId\":\"S1\",\"carrierId\":\"ups\",\"deliveryAttempted\":{}}"

static const char *const all_lines[] = {WH1, WH1B, WH1OLD, WH9, CA1, SK1, O1, O2, O3, S1};
#define N_LINES (sizeof all_lines / sizeof all_lines[0])

/* The UNKNOWN_CODE items: "key code producer producerInstance eventId since" lines, sorted by key. */
static char *unknown_of(fx *f)
{
    json_t *arr = fx_view(f, FOLD_VIEW_ANOMALIES);
    ct_buf b = {0};
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) {
        const char *rule = json_string_value(json_object_get(it, "rule"));
        if (!rule || strcmp(rule, "UNKNOWN_CODE") != 0) continue;
        const char *f_[] = {"key", "kind", "code", "producer", "producerInstance", "eventId", "since", "exceptionId"};
        for (size_t k = 0; k < sizeof f_ / sizeof f_[0]; k++) {
            const char *v = json_string_value(json_object_get(it, f_[k]));
            ct_buf_adds(&b, v ? v : "-");
            ct_buf_addc(&b, k + 1 < sizeof f_ / sizeof f_[0] ? ' ' : '\n');
        }
    }
    json_decref(arr);
    ct_buf_addc(&b, '\0');
    return (char *)b.data;
}

static int ref_line(void *ctx, char kind, const char *code, const evt_event *def, uint64_t seq)
{
    (void)seq;
    ct_buf *b = ctx;
    json_t *j = evt_to_json(def);
    char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    ct_buf_addc(b, kind);
    ct_buf_adds(b, code);
    ct_buf_adds(b, t);
    ct_buf_addc(b, '\n');
    free(t);
    json_decref(j);
    return 0;
}

/* The reference table: per kind and code, its latest definition. */
static char *refs_of(fx *f)
{
    ct_buf b = {0};
    store_reader *r = NULL;
    store_reader_begin(f->s, &r);
    for (const char *k = FOLD_REF_KINDS; *k; k++) store_reference_scan(r, *k, ref_line, &b);
    store_reader_end(r);
    ct_buf_addc(&b, '\0');
    return (char *)b.data;
}

static void feed(fx *f, const char *line) { T_EQ_INT(fx_feed(f, line), CT_OK); }

static void unknown_opens_and_clears(void)
{
    fx f;
    fx_open(&f);
    /* No warehouse defined yet: no rule applies. */
    feed(&f, O1);
    feed(&f, O2);
    char *u = unknown_of(&f);
    T_EQ_STR(u, "");
    free(u);
    /* The first warehouse definition: dc-9 is unknown now (O1 names it through pickStarted). */
    feed(&f, WH1);
    u = unknown_of(&f);
    T_ASSERT(strstr(u, "o:O1|anomalies|UNKNOWN_CODE|warehouse|dc-9 warehouse dc-9 wms wms-dc9 wms-2 2026-11-27T08:30:00Z") != NULL);
    T_ASSERT(strstr(u, "dc-1") == NULL); /* defined */
    T_ASSERT(strstr(u, "SKU-") == NULL); /* no sku defined at all */
    free(u);
    /* An earlier event naming it: since and producer are the earliest's. */
    feed(&f, O3);
    u = unknown_of(&f);
    T_ASSERT(strstr(u, "wms wms-dc9b wms-3 2026-11-27T08:10:00Z") != NULL);
    free(u);
    /* The first sku definition: SKU-2 of the order's lines opens, from the ERP. */
    feed(&f, SK1);
    u = unknown_of(&f);
    T_ASSERT(strstr(u, "UNKNOWN_CODE|sku|SKU-2 sku SKU-2 erp erp-eu erp-1") != NULL);
    free(u);
    /* Defining dc-9 clears its item; the event itself stays applied. */
    feed(&f, WH9);
    u = unknown_of(&f);
    T_ASSERT(strstr(u, "dc-9") == NULL);
    T_ASSERT(strstr(u, "SKU-2") != NULL);
    free(u);
    fx_close(&f);
}

/* A batch that fills the map is applied again in a grown one. Its first attempt named dc-9 for O1 in the
 * index of the codes entities name; the writer must not take that for stored (the attempt was aborted): the
 * first definition of dc-9 afterwards must still find O1 and clear its item. */
static void refs_after_a_failed_batch(void)
{
    fx f;
    fx_open_map(&f, 1 << 20);
    feed(&f, WH1);
    size_t map0 = store_map_size(f.s);
    ct_buf b = {0};
    ct_buf_adds(&b, O2);
    ct_buf_addc(&b, '\n');
    for (int i = 0; i < 250; i++) { /* about 20 KiB each: 5 MiB in all, more than the map */
        ct_buf_addf(&b, "{\"eventId\":\"fill-%d\",\"occurredAt\":\"2026-11-27T08:40:00Z\",\"source\":{\"system\":\"erp\"},"
                        "\"orderId\":\"F%d\",\"orderCreated\":{\"customerId\":\"C1\",\"lines\":[", i, i);
        for (int l = 0; l < 200; l++)
            ct_buf_addf(&b, "%s{\"sku\":\"SKU-%03d-padding-padding-padding-padding-padding-padding\",\"qty\":1}", l ? "," : "", l);
        ct_buf_adds(&b, "]}}\n");
    }
    ct_buf_addc(&b, '\0');
    feed(&f, (const char *)b.data);
    ct_buf_free(&b);
    T_ASSERT(store_map_size(f.s) > map0); /* the batch did fill the map at least once */
    char *u = unknown_of(&f);
    T_ASSERT(strstr(u, "o:O1|anomalies|UNKNOWN_CODE|warehouse|dc-9") != NULL);
    free(u);
    feed(&f, WH9);
    u = unknown_of(&f);
    T_ASSERT(strstr(u, "dc-9") == NULL);
    free(u);
    fx_close(&f);
}

static void shipment_codes(void)
{
    fx f;
    fx_open(&f);
    feed(&f, S1 "\n" CA1);
    char *u = unknown_of(&f);
    T_ASSERT(strstr(u, "s:S1|anomalies|UNKNOWN_CODE|carrier|ups carrier ups carrier - car-1") != NULL);
    free(u);
    fx_close(&f);
}

static void latest_definition_wins(void)
{
    fx f;
    fx_open(&f);
    feed(&f, WH1B);
    feed(&f, WH1OLD);
    feed(&f, WH1);
    char *r = refs_of(&f);
    T_ASSERT(strstr(r, "\"Lyon 2\"") != NULL);
    T_ASSERT(strstr(r, "\"Old\"") == NULL);
    store_reader *rd = NULL;
    store_reader_begin(f.s, &rd);
    T_EQ_INT(store_reference_count(rd, 'w'), 1);
    T_EQ_INT(store_reference_count(rd, 'c'), 0);
    T_EQ_INT(store_reference_scan(rd, 'x', ref_line, NULL), CT_INVALID);
    store_reader_end(rd);
    free(r);
    fx_close(&f);
}

/* Hostile: a sku of 500 bytes (free text in an order line) and one with spaces: items with hashed keys. */
static void hostile_codes(void)
{
    fx f;
    fx_open(&f);
    char sku[501];
    memset(sku, 'x', 500);
    sku[500] = '\0';
    char *line = ct_sprintf("{\"eventId\":\"h1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
                            "\"orderId\":\"OH\",\"orderCreated\":{\"lines\":[{\"sku\":\"%s\"},{\"sku\":\"a b|c\"}]}}",
                            sku);
    feed(&f, SK1);
    feed(&f, line);
    char *u = unknown_of(&f);
    T_ASSERT(strstr(u, "o:OH|anomalies|UNKNOWN_CODE|sku|#") != NULL);
    T_ASSERT(strstr(u, "o:OH|anomalies|UNKNOWN_CODE|sku|a b|c sku a b|c") != NULL);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_ANOMALIES), 2);
    free(u);
    free(line);
    fx_close(&f);
}

/* Every arrival order, in random batches, gives the same items and reference table. */
static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_rand(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    return z ^ (z >> 31);
}

/* map_size: the map the store starts with (a small one fills: batches are applied again in a grown map). */
static char *fold_perm(const char *const *lines, size_t n, size_t map_size)
{
    fx f;
    fx_open_map(&f, map_size);
    size_t i = 0;
    while (i < n) {
        size_t batch = 1 + next_rand() % (n > 100 ? 256 : 4); /* fx_feed takes at most 256 */
        ct_buf b = {0};
        for (size_t j = 0; j < batch && i < n; j++, i++) {
            ct_buf_adds(&b, lines[i]);
            ct_buf_addc(&b, '\n');
        }
        ct_buf_addc(&b, '\0');
        if (fx_feed(&f, (const char *)b.data) != CT_OK) T_FAIL("store_apply failed");
        ct_buf_free(&b);
    }
    char *u = unknown_of(&f), *r = refs_of(&f), *dump = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&dump, &len);
    store_dump(f.s, STORE_DUMP_STABLE | STORE_DUMP_DUES | STORE_DUMP_CLOSED, m);
    fclose(m);
    char *out = ct_sprintf("%s--\n%s--\n%s", u, r, dump);
    free(u);
    free(r);
    free(dump);
    fx_close(&f);
    return out;
}

static void any_arrival_order(void)
{
    const char *perm[N_LINES];
    memcpy(perm, all_lines, sizeof perm);
    char *want = fold_perm(perm, N_LINES, 16 << 20);
    T_ASSERT(strstr(want, "SKU-2") != NULL && strstr(want, "carrier ups") != NULL);
    for (int round = 0; round < 60; round++) {
        for (size_t i = N_LINES - 1; i > 0; i--) {
            size_t j = next_rand() % (i + 1);
            const char *t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        char *got = fold_perm(perm, N_LINES, 16 << 20);
        if (strcmp(got, want) != 0) {
            T_FAIL("round %d differs:\n%s\nwant:\n%s", round, got, want);
            free(got);
            break;
        }
        test_checks++;
        free(got);
    }
    free(want);
}

/* A simulated trace with the master data and many undefined skus, shuffled: the same store content. */
static void simulated_trace_any_order(void)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = 60;
    o.seed = 5;
    o.mdm = 1;
    o.p_undefined = 0.3;
    o.p_conflict = 0; /* the one arrival-order-dependent case (test_views) */
    sim_trace *t = NULL;
    T_EQ_INT(sim_trace_create(&t, &o), CT_OK);
    size_t n = 0, cap = 8192;
    const char **lines = malloc(cap * sizeof *lines);
    sim_record r;
    while (t && sim_trace_next(t, &r)) {
        if (n == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = strdup(r.line);
    }
    sim_trace_destroy(t);
    char *want = fold_perm(lines, n, 16 << 20);
    T_ASSERT(strstr(want, "UNKNOWN_CODE|sku|SKU-9") != NULL);
    for (int round = 0; round < 3; round++) {
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = next_rand() % (i + 1);
            const char *x = lines[i];
            lines[i] = lines[j];
            lines[j] = x;
        }
        /* Rounds 1 and 2 in a map that fills: what the writer learnt of a failed attempt is forgotten. */
        char *got = fold_perm(lines, n, round ? 1 << 20 : 16 << 20);
        if (strcmp(got, want) != 0) T_FAIL("shuffle %d of the simulated trace differs", round);
        test_checks++;
        free(got);
    }
    free(want);
    for (size_t i = 0; i < n; i++) free((char *)lines[i]);
    free(lines);
}

/* The master-data simulator adds its definitions and the intentional undefined skus, and changes nothing else. */
static char *trace_text(int mdm, double p_undefined, size_t *n_mdm)
{
    sim_trace_opts o;
    sim_trace_opts_default(&o);
    o.orders = 400;
    o.mdm = mdm;
    o.p_undefined = p_undefined;
    sim_trace *t = NULL;
    if (sim_trace_create(&t, &o) != CT_OK) return NULL;
    ct_buf b = {0};
    sim_record r;
    *n_mdm = 0;
    while (sim_trace_next(t, &r)) {
        if (strstr(r.line, "\"system\":\"mdm\"")) {
            ++*n_mdm;
            continue;
        }
        ct_buf_add(&b, r.line, r.len);
        ct_buf_addc(&b, '\n');
    }
    sim_trace_destroy(t);
    ct_buf_addc(&b, '\0');
    return (char *)b.data;
}

static void simulator_changes_nothing_else(void)
{
    size_t m0 = 0, m1 = 0, m2 = 0;
    char *plain = trace_text(0, 0.5, &m0), *defs = trace_text(1, 0, &m1), *undef = trace_text(1, 0.05, &m2);
    T_EQ_INT(m0, 0);
    T_EQ_INT(m1, 3 + 5 + 4000);
    T_EQ_INT(m2, m1);
    T_ASSERT(plain && defs && strcmp(plain, defs) == 0); /* definitions only: the rest byte for byte */
    /* Undefined skus: the only lines that differ name one (SKU-9xxxx). */
    size_t diff = 0, bad = 0;
    char *a = plain, *b = undef;
    while (a && b && *a && *b) {
        char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        if (!ea || !eb) break;
        if (ea - a != eb - b || memcmp(a, b, (size_t)(ea - a)) != 0) {
            diff++;
            *eb = '\0';
            if (!strstr(b, "\"SKU-9")) bad++;
            *eb = '\n';
        }
        a = ea + 1;
        b = eb + 1;
    }
    T_ASSERT(diff > 0);
    T_EQ_INT(bad, 0);
    T_ASSERT(a && b && !*a && !*b); /* as many lines */
    free(plain);
    free(defs);
    free(undef);
}

int main(void)
{
    T_RUN(simulator_changes_nothing_else);
    T_RUN(unknown_opens_and_clears);
    T_RUN(shipment_codes);
    T_RUN(refs_after_a_failed_batch);
    T_RUN(latest_definition_wins);
    T_RUN(hostile_codes);
    T_RUN(any_arrival_order);
    T_RUN(simulated_trace_any_order);
    return t_done();
}
