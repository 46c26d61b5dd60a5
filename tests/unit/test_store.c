/* Store tests on a real LMDB environment: paging, filters, index consistency, map growth, reopening, versions. */
#include <lmdb.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fx.h"

/* ---- helpers ------------------------------------------------------------------ */

typedef struct ids {
    char v[4096][80];
    size_t n;
} ids;

static int collect_ids(void *ctx, const Tower__V1__ViewItem *it)
{
    ids *x = ctx;
    if (x->n < 4096) {
        char t[48];
        evt_time_format(it->since->seconds, it->since->nanos, t);
        snprintf(x->v[x->n++], 80, "%s %s %s", t, it->order_id ? it->order_id : "-",
                 it->shipment_id ? it->shipment_id : "-");
    }
    return 0;
}

static char *dump_to_string(store *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    store_dump(s, STORE_DUMP_STABLE, m);
    fclose(m);
    return buf;
}

/* ---- paging and filters ---------------------------------------------------------- */

static void paging(void)
{
    fx f;
    fx_open(&f);
    ct_buf b = {0};
    for (int i = 0; i < 50; i++) {
        /* Some orders share a time, so that the item key breaks ties. */
        ct_buf_addf(&b,
                    "{\"eventId\":\"a%d\",\"occurredAt\":\"2026-11-27T08:%02d:00Z\",\"source\":{\"system\":\"erp\"},"
                    "\"orderId\":\"O%02d\",\"orderApproved\":{\"warehouseId\":\"dc-%d\",\"carrierId\":\"c%d\"}}\n",
                    i, i / 2, i, i % 3 + 1, i % 2);
    }
    T_EQ_INT(fx_feed(&f, b.data), CT_OK);
    ct_buf_free(&b);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_AWAITING_RELEASE), 50);

    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    static ids all, paged;
    all.n = paged.n = 0;
    store_query q = {.view = FOLD_VIEW_AWAITING_RELEASE};
    T_EQ_INT(store_view_scan(r, &q, collect_ids, &all, NULL), CT_OK);
    T_EQ_INT(all.n, 50);
    for (size_t i = 1; i < all.n; i++) T_ASSERT(strcmp(all.v[i - 1], all.v[i]) < 0);

    char *cursor = NULL;
    int pages = 0;
    do {
        store_query pq = {.view = FOLD_VIEW_AWAITING_RELEASE, .limit = 7, .cursor = cursor};
        char *next = NULL;
        size_t before = paged.n;
        T_EQ_INT(store_view_scan(r, &pq, collect_ids, &paged, &next), CT_OK);
        T_ASSERT(paged.n - before <= 7);
        free(cursor);
        cursor = next;
        pages++;
    } while (cursor && pages < 20);
    T_EQ_INT(pages, 8);
    T_EQ_INT(paged.n, 50);
    for (size_t i = 0; i < paged.n && i < all.n; i++) T_EQ_STR(paged.v[i], all.v[i]);

    /* Warehouse filter, carrier filter, both, and a time bound. */
    static ids wh;
    wh.n = 0;
    store_query wq = {.view = FOLD_VIEW_AWAITING_RELEASE, .warehouse = "dc-2"};
    store_view_scan(r, &wq, collect_ids, &wh, NULL);
    T_EQ_INT(wh.n, 17);
    uint64_t cnt = 99;
    T_EQ_INT(store_view_count(r, &wq, &cnt), CT_OK); /* the kept count per warehouse */
    T_EQ_INT(cnt, 17);
    wh.n = 0;
    store_query cq = {.view = FOLD_VIEW_AWAITING_RELEASE, .carrier = "c1"};
    store_view_scan(r, &cq, collect_ids, &wh, NULL);
    T_EQ_INT(wh.n, 25);
    T_EQ_INT(store_view_count(r, &cq, &cnt), CT_OK);
    T_EQ_INT(cnt, 25);
    wh.n = 0;
    store_query bq = {.view = FOLD_VIEW_AWAITING_RELEASE, .warehouse = "dc-2", .carrier = "c1"};
    store_view_scan(r, &bq, collect_ids, &wh, NULL);
    /* i % 3 == 1 and i odd: i = 1, 7, 13, ..., 49 */
    T_EQ_INT(wh.n, 9);
    T_EQ_INT(store_view_count(r, &bq, &cnt), CT_OK); /* no kept count: a scan */
    T_EQ_INT(cnt, 9);
    wh.n = 0;
    int64_t t10 = 1795766400LL; /* 2026-11-27T08:00:00Z */
    store_query tq = {.view = FOLD_VIEW_AWAITING_RELEASE, .since_before_ns = (t10 + 5 * 60) * 1000000000LL};
    store_view_scan(r, &tq, collect_ids, &wh, NULL);
    T_EQ_INT(wh.n, 10); /* minutes 0..4, two orders each */
    T_EQ_INT(store_view_count(r, &tq, &cnt), CT_OK);
    T_EQ_INT(cnt, 10);
    store_query tbq = bq;
    tbq.since_before_ns = tq.since_before_ns;
    wh.n = 0;
    store_view_scan(r, &tbq, collect_ids, &wh, NULL);
    T_EQ_INT(store_view_count(r, &tbq, &cnt), CT_OK);
    T_EQ_INT(cnt, wh.n);
    store_query aq = {.view = FOLD_VIEW_AWAITING_RELEASE, .cursor = "00", .limit = 1};
    T_EQ_INT(store_view_count(r, &aq, &cnt), CT_OK); /* cursor and limit do not change the count */
    T_EQ_INT(cnt, store_reader_count(r, FOLD_VIEW_AWAITING_RELEASE));
    wh.n = 0;
    store_query uq = {.view = FOLD_VIEW_AWAITING_RELEASE, .warehouse = "dc-9"};
    store_view_scan(r, &uq, collect_ids, &wh, NULL);
    T_EQ_INT(wh.n, 0);
    T_EQ_INT(store_view_count(r, &uq, &cnt), CT_OK);
    T_EQ_INT(cnt, 0);
    uq.since_before_ns = tq.since_before_ns;
    T_EQ_INT(store_view_count(r, &uq, &cnt), CT_OK);
    T_EQ_INT(cnt, 0);
    store_query badq = {.view = FOLD_VIEW_AWAITING_RELEASE, .cursor = "zz"};
    T_EQ_INT(store_view_scan(r, &badq, collect_ids, &wh, NULL), CT_INVALID);
    store_reader_end(r);
    fx_close(&f);
}

/* ---- random events: index consistency, order independence, map growth ------------ */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33) % n;
}

/* A random but valid event touching a small set of orders and shipments, so that they collide. */
static void random_event(ct_buf *b, int i)
{
    static const char *types[] = {"orderCreated", "orderApproved", "orderHeld", "orderHoldReleased",
                                  "orderReleased", "orderCancelled", "pickStarted", "pickShort",
                                  "inventoryResolved", "packCompleted", "shipmentReady", "shipmentBlocked",
                                  "shipmentUnblocked", "shipmentConfirmed", "routeRequested", "routePlanned",
                                  "routeFailed", "routeDispatched", "deliveryAttempted", "deliveryCompleted",
                                  "podCaptured", "invoicePosted", "postingFailed"};
    const char *t = types[rnd(sizeof types / sizeof types[0])];
    int o = (int)rnd(60), s = (int)rnd(120);
    ct_buf_addf(b, "{\"eventId\":\"r%d\",\"occurredAt\":\"2026-11-%02uT%02u:%02u:00Z\",\"source\":{\"system\":\"erp\"}",
                i, 20 + rnd(5), rnd(24), rnd(4) * 15);
    if (strncmp(t, "order", 5) == 0 || !strcmp(t, "pickStarted") || !strcmp(t, "pickShort") ||
        !strcmp(t, "inventoryResolved") || !strcmp(t, "invoicePosted") || !strcmp(t, "postingFailed"))
        ct_buf_addf(b, ",\"orderId\":\"O%d\"", o);
    else if (!strcmp(t, "packCompleted") || !strcmp(t, "shipmentReady"))
        ct_buf_addf(b, ",\"orderId\":\"O%d\",\"shipmentId\":\"S%d\"", s / 2, s);
    else if (strncmp(t, "route", 5) != 0)
        ct_buf_addf(b, ",\"shipmentId\":\"S%d\"", s);
    else if (!strcmp(t, "routePlanned") || !strcmp(t, "routeDispatched"))
        ct_buf_addf(b, ",\"routeId\":\"R%u\"", rnd(30));
    ct_buf_addf(b, ",\"%s\":{", t);
    if (!strcmp(t, "pickShort") || !strcmp(t, "inventoryResolved")) ct_buf_addf(b, "\"sku\":\"K%u\",", rnd(3));
    if (!strcmp(t, "routeRequested") || !strcmp(t, "routeFailed"))
        ct_buf_addf(b, "\"shipmentIds\":[\"S%d\",\"S%u\"],", s, rnd(120));
    if (!strcmp(t, "routePlanned")) ct_buf_addf(b, "\"stops\":[{\"shipmentId\":\"S%d\"},{\"shipmentId\":\"S%u\"}],", s, rnd(120));
    if (rnd(2)) ct_buf_addf(b, "\"warehouseId\":\"dc-%u\",", rnd(3) + 1);
    if (rnd(3) == 0) ct_buf_addf(b, "\"carrierId\":\"c%u\",", rnd(3));
    if (b->data[b->len - 1] == ',') b->len--;
    ct_buf_adds(b, "}}\n");
}

typedef struct counter {
    size_t n;
    const char *wh, *ca;
    int bad;
} counter;

static int count_item(void *ctx, const Tower__V1__ViewItem *it)
{
    counter *c = ctx;
    c->n++;
    if (c->wh && (!it->warehouse_id || strcmp(it->warehouse_id, c->wh))) c->bad++;
    if (c->ca && (!it->carrier_id || strcmp(it->carrier_id, c->ca))) c->bad++;
    return 0;
}

typedef struct bd_entry {
    char id[16];
    uint64_t n;
} bd_entry;

typedef struct breakdown {
    bd_entry e[8];
    int n;
} breakdown;

static void bd_add(void *ctx, const char *id, uint64_t n)
{
    breakdown *b = ctx;
    T_ASSERT(b->n < 8);
    T_ASSERT(strlen(id) < sizeof b->e[0].id);
    snprintf(b->e[b->n].id, sizeof b->e[0].id, "%s", id);
    b->e[b->n++].n = n;
}

/* The breakdown's count for an id (0 when absent), checked to be listed once. */
static uint64_t bd_get(const breakdown *b, const char *id)
{
    uint64_t n = 0;
    int seen = 0;
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->e[i].id, id)) {
            n = b->e[i].n;
            seen++;
        }
    T_ASSERT(seen <= 1);
    return n;
}

/* A count with olderThan (kept hourly counts + a walk of the cutoff's hour) equals the scan's, for the
 * whole view and one warehouse or carrier, at cutoffs on and between hour boundaries over the trace's
 * days (2026-11-20..24) and outside them. */
static void check_older_counts(store_reader *r, fold_view v)
{
    const int64_t day20 = 1795132800LL; /* 2026-11-20T00:00:00Z */
    static const int64_t offsets[] = {-3600, 0, 1, 899, 900, 3600, 5400, 86399, 86400 + 2700, 2 * 86400 + 3599,
                                      3 * 86400 + 7200 + 1, 4 * 86400 + 23 * 3600 + 2700, 6 * 86400};
    static const char *const whs[] = {NULL, "dc-1", "dc-3"}, *const cas[] = {NULL, "c0", "c2"};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
        for (int p = 0; p < 5; p++) {
            store_query q = {.view = v, .since_before_ns = (day20 + offsets[i]) * 1000000000LL};
            if (p == 1 || p == 2) q.warehouse = whs[p];
            if (p == 3 || p == 4) q.carrier = cas[p - 2];
            counter c = {0};
            store_view_scan(r, &q, count_item, &c, NULL);
            uint64_t n = 999999;
            T_EQ_INT(store_view_count(r, &q, &n), CT_OK);
            T_EQ_INT(n, c.n);

        }
}

static void check_indexes(store *s)
{
    store_reader *r = NULL;
    store_reader_begin(s, &r);
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        counter all = {0};
        store_query q = {.view = (fold_view)v};
        store_view_scan(r, &q, count_item, &all, NULL);
        T_EQ_INT(store_reader_count(r, (fold_view)v), all.n);
        /* Every item is in exactly one warehouse index entry, or has no warehouse. */
        size_t by_wh = 0, by_ca = 0;
        breakdown bw = {0}, bc = {0};
        store_reader_breakdown(r, (fold_view)v, 'w', bd_add, &bw);
        store_reader_breakdown(r, (fold_view)v, 'c', bd_add, &bc);
        for (int w = 1; w <= 3; w++) {
            char name[16];
            snprintf(name, sizeof name, "dc-%d", w);
            counter c = {0, name, NULL, 0};
            store_query wq = {.view = (fold_view)v, .warehouse = name};
            store_view_scan(r, &wq, count_item, &c, NULL);
            T_EQ_INT(c.bad, 0);
            T_EQ_INT(bd_get(&bw, name), c.n); /* the kept count per warehouse equals its index */
            by_wh += c.n;
        }
        for (int k = 0; k < 3; k++) {
            char name[16];
            snprintf(name, sizeof name, "c%d", k);
            counter c = {0, NULL, name, 0};
            store_query cq = {.view = (fold_view)v, .carrier = name};
            store_view_scan(r, &cq, count_item, &c, NULL);
            T_EQ_INT(c.bad, 0);
            T_EQ_INT(bd_get(&bc, name), c.n);
            by_ca += c.n;
        }
        uint64_t sum_w = 0, sum_c = 0;
        for (int i = 0; i < bw.n; i++) sum_w += bw.e[i].n;
        for (int i = 0; i < bc.n; i++) sum_c += bc.e[i].n;
        T_EQ_INT(sum_w, by_wh); /* no warehouse outside dc-1..3 is counted */
        T_EQ_INT(sum_c, by_ca);
        T_ASSERT(by_wh <= all.n);
        T_ASSERT(by_ca <= all.n);
        check_older_counts(r, (fold_view)v);
    }
    store_reader_end(r);
}

static void random_consistency(void)
{
    enum { N = 4000 };
    rng_state = 42;
    static char *lines[N];
    for (int i = 0; i < N; i++) {
        ct_buf b = {0};
        random_event(&b, i);
        lines[i] = b.data;
    }
    /* Fold in order, in batches of 100, checking the indexes as we go. */
    fx a;
    fx_open(&a);
    for (int i = 0; i < N; i += 100) {
        ct_buf b = {0};
        for (int j = i; j < i + 100; j++) ct_buf_adds(&b, lines[j]);
        T_EQ_INT(fx_feed(&a, b.data), CT_OK);
        ct_buf_free(&b);
        if (i % 1000 == 0) check_indexes(a.s);
    }
    check_indexes(a.s);
    size_t total = 0;
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) total += fx_count(&a, (fold_view)v);
    T_ASSERT(total > 100); /* the random trace does put items in the views */

    /* Reversed, one event per batch: the same views. */
    fx b;
    fx_open(&b);
    for (int i = N - 1; i >= 0; i--) fx_feed(&b, lines[i]);
    check_indexes(b.s);
    char *da = dump_to_string(a.s), *db = dump_to_string(b.s);
    T_ASSERT(strcmp(da, db) == 0);
    if (strcmp(da, db) != 0) {
        FILE *x = fopen("/tmp/tower-dump-a.json", "w"), *y = fopen("/tmp/tower-dump-b.json", "w");
        fputs(da, x);
        fputs(db, y);
        fclose(x);
        fclose(y);
        fprintf(stderr, "dumps differ: /tmp/tower-dump-a.json /tmp/tower-dump-b.json\n");
    }
    free(da);
    free(db);
    fx_close(&a);
    fx_close(&b);
    for (int i = 0; i < N; i++) free(lines[i]);
}

static void map_growth_and_reopen(void)
{
    char *dir = t_tmpdir();
    store *s = NULL;
    store_opts o = {.dir = dir, .no_sync = 1, .map_size = 1 << 20};
    T_EQ_INT(store_open(&s, &o), CT_OK);
    rng_state = 7;
    fx f = {.dir = NULL, .s = s, .now_ns = 1};
    for (int i = 0; i < 30; i++) {
        ct_buf b = {0};
        for (int j = 0; j < 200; j++) random_event(&b, i * 200 + j);
        T_EQ_INT(fx_feed(&f, b.data), CT_OK);
        ct_buf_free(&b);
    }
    T_ASSERT(store_map_size(s) > (1 << 20));
    /* One writer at a time: a second writer is refused, readers are not. */
    store *second = NULL;
    T_EQ_INT(store_open(&second, &o), CT_CONFLICT);
    store_opts ro0 = {.dir = dir, .read_only = 1};
    T_EQ_INT(store_open(&second, &ro0), CT_OK);
    store_close(second);
    char *before = dump_to_string(s);
    store_changes_free(&f.changes);
    store_close(s);

    /* Reopen read-only (as dump does) and read-write: the same views and checkpoint. */
    store_opts ro = {.dir = dir, .read_only = 1};
    T_EQ_INT(store_open(&s, &ro), CT_OK);
    char *after = dump_to_string(s);
    T_ASSERT(strcmp(before, after) == 0);
    store_reader *r = NULL;
    store_reader_begin(s, &r);
    store_stats ss;
    store_reader_stats(r, &ss);
    T_EQ_INT(ss.applied_seq, 6000);
    store_reader_end(r);
    store_close(s);
    free(after);

    /* A rebuild fills a new generation beside the current one and swaps it in atomically;
     * a reader that had the old one open keeps reading it and is told of the swap. */
    T_EQ_INT(store_open(&s, &ro), CT_OK);
    char *gen = NULL;
    T_EQ_INT(store_rebuild_begin(dir, &gen), CT_OK);
    T_ASSERT(gen && strstr(gen, "/gen-2") != NULL);
    store *fresh = NULL;
    store_opts fo = {.dir = gen, .no_sync = 1, .flat = 1};
    T_EQ_INT(store_open(&fresh, &fo), CT_OK);
    fx g = {.dir = NULL, .s = fresh, .now_ns = 1};
    fx_feed(&g, "{\"eventId\":\"n1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
                "\"orderId\":\"N1\",\"orderApproved\":{}}\n");
    store_changes_free(&g.changes);
    store_close(fresh);
    T_EQ_INT(store_generation_changed(s), 0);
    T_EQ_INT(store_rebuild_commit(dir, gen), CT_OK);
    T_EQ_INT(store_generation_changed(s), 1);
    char *old_view = dump_to_string(s);   /* the old generation, still mapped */
    T_ASSERT(strcmp(old_view, before) == 0);
    free(old_view);
    store_close(s);
    T_EQ_INT(store_open(&s, &ro), CT_OK);
    T_ASSERT(strstr(store_env_dir(s), "/gen-2") != NULL);
    store_reader_begin(s, &r);
    T_EQ_INT(store_reader_count(r, FOLD_VIEW_AWAITING_RELEASE), 1);
    store_reader_end(r);
    store_close(s);
    free(gen);
    free(before);

    /* A store of another format version is refused. */
    char *envdir = ct_sprintf("%s/gen-2", dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 16);
    mdb_env_set_mapsize(env, 64 << 20);
    T_EQ_INT(mdb_env_open(env, envdir, 0, 0644), 0);
    free(envdir);
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, "meta", 0, &meta);
    unsigned char v9[8] = {0, 0, 0, 0, 0, 0, 0, 9};
    MDB_val k = {6, "format"}, v = {8, v9};
    mdb_put(txn, meta, &k, &v, 0);
    mdb_txn_commit(txn);
    mdb_env_close(env);
    T_EQ_INT(store_open(&s, &o), CT_STORE_VERSION);

    /* Reading a directory with no store is a clear "not found". */
    char *empty = t_tmpdir();
    store_opts eo = {.dir = empty, .read_only = 1};
    T_EQ_INT(store_open(&s, &eo), CT_NOT_FOUND);
    t_rmdir(empty);
    t_rmdir(dir);
}

/* ---- damaged files ----------------------------------------------------------------- */

/* A data file cut short, or with both meta pages overwritten, is refused at open as corrupt, for
 * readers and the writer alike, instead of a SIGBUS at the first read past its end. */
static void damaged_store_is_refused(void)
{
    fx f;
    fx_open(&f);
    for (int i = 0; i < 10; i++) {
        ct_buf b = {0};
        for (int j = 0; j < 200; j++) random_event(&b, i * 200 + j);
        T_EQ_INT(fx_feed(&f, b.data), CT_OK);
        ct_buf_free(&b);
    }
    char *dir = ct_strdup(f.dir);
    char *data = ct_sprintf("%s/current/data.mdb", dir);
    store_changes_free(&f.changes);
    store_close(f.s);
    struct stat sb;
    T_EQ_INT(stat(data, &sb), 0);
    T_ASSERT(sb.st_size > 64 * 4096);
    char *copy = ct_sprintf("%s.copy", data);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", data, copy);
    T_EQ_INT(system(cmd), 0);

    /* Truncated to half: the meta pages are intact, the pages they point at are gone. */
    T_EQ_INT(truncate(data, sb.st_size / 2), 0);
    store *s = NULL;
    store_opts ro = {.dir = dir, .read_only = 1};
    store_opts rw = {.dir = dir, .no_sync = 1};
    T_EQ_INT(store_open(&s, &ro), CT_STORE_CORRUPT);
    T_ASSERT(s == NULL);
    T_EQ_INT(store_open(&s, &rw), CT_STORE_CORRUPT);
    T_ASSERT(s == NULL);

    /* Both meta pages overwritten with garbage. */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", copy, data);
    T_EQ_INT(system(cmd), 0);
    FILE *fp = fopen(data, "r+b");
    T_ASSERT(fp != NULL);
    for (int i = 0; i < 2 * 4096; i++) fputc((i * 131 + 7) & 0xff, fp);
    fclose(fp);
    T_EQ_INT(store_open(&s, &ro), CT_STORE_CORRUPT);
    T_EQ_INT(store_open(&s, &rw), CT_STORE_CORRUPT);

    /* The intact copy opens again. */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", copy, data);
    T_EQ_INT(system(cmd), 0);
    T_EQ_INT(store_open(&s, &ro), CT_OK);
    store_close(s);
    unlink(copy);
    free(copy);
    free(data);
    free(dir);
    t_rmdir(f.dir);
}


/* A reader opens the store while a rebuild swaps generations: a rebuild points DIR/current at the new
 * generation, then removes the old one, so a reader that resolved the link just before finds its
 * generation gone. store_open then follows the link to the new one. The swapper does what a rebuild
 * does, as fast as it can: a new generation (hard links to the same files), relink, remove the old. */
typedef struct swapper {
    const char *root;
    volatile int stop;
    volatile int swaps;
} swapper;

static int link_env(const char *from, const char *to)
{
    const char *files[] = {"data.mdb", "lock.mdb"};
    if (mkdir(to, 0755) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        char a[600], b[600];
        snprintf(a, sizeof a, "%s/%s", from, files[i]);
        snprintf(b, sizeof b, "%s/%s", to, files[i]);
        if (link(a, b) != 0 && i == 0) return -1; /* lock.mdb may not exist yet */
    }
    return 0;
}

static void *swap_generations(void *arg)
{
    swapper *w = arg;
    for (int k = 1; !w->stop; k++) {
        char from[512], to[512], link_tmp[512], cur[512], target[32], f[600];
        snprintf(from, sizeof from, "%s/gen-%d", w->root, k);
        snprintf(to, sizeof to, "%s/gen-%d", w->root, k + 1);
        snprintf(target, sizeof target, "gen-%d", k + 1);
        snprintf(link_tmp, sizeof link_tmp, "%s/current.tmp", w->root);
        snprintf(cur, sizeof cur, "%s/current", w->root);
        if (link_env(from, to) != 0) break;
        unlink(link_tmp);
        if (symlink(target, link_tmp) != 0 || rename(link_tmp, cur) != 0) break;
        snprintf(f, sizeof f, "%s/data.mdb", from);
        unlink(f);
        snprintf(f, sizeof f, "%s/lock.mdb", from);
        unlink(f);
        rmdir(from);
        w->swaps++;
    }
    return NULL;
}

static void open_during_swaps(void)
{
    fx f;
    fx_open(&f);
    T_EQ_INT(fx_feed(&f, "{\"eventId\":\"s1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
                         "\"orderId\":\"SO-1\",\"orderApproved\":{\"warehouseId\":\"dc-1\"}}"), CT_OK);
    store_close(f.s);
    f.s = NULL;
    swapper w = {f.dir, 0, 0};
    pthread_t th;
    T_ASSERT(pthread_create(&th, NULL, swap_generations, &w) == 0);
    int opens = 0, failed = 0;
    while (w.swaps < 2000 && opens < 200000) {
        store *r = NULL;
        store_opts o = {.dir = f.dir, .read_only = 1};
        if (store_open(&r, &o) == CT_OK) {
            store_close(r);
        } else {
            failed++;
        }
        opens++;
    }
    w.stop = 1;
    pthread_join(th, NULL);
    fprintf(stderr, "open_during_swaps: %d opens during %d swaps, %d failed\n", opens, w.swaps, failed);
    T_ASSERT(w.swaps >= 2000);
    T_EQ_INT(failed, 0);
    fx_close(&f);
}

/* ---- backup ------------------------------------------------------------------------ */

#define BK_BATCHES 40
#define BK_BATCH 200
#define BK_MAX 8

/* The writer of hot_backup, in a child process (LMDB wants one open of an environment per process):
 * folds the batches one by one into a store whose small map must grow meanwhile, and says "x" on fd
 * after each commit. Exits 0 when every batch applied. */
static void backup_writer(const char *dir, char **batches, int fd)
{
    store *s = NULL;
    store_opts o = {.dir = dir, .no_sync = 1, .map_size = 1 << 20};
    if (store_open(&s, &o) != CT_OK) _exit(3);
    fx f = {.dir = NULL, .s = s, .now_ns = 1};
    for (int i = 0; i < BK_BATCHES; i++) {
        if (fx_feed(&f, batches[i]) != CT_OK || write(fd, "x", 1) != 1) _exit(4);
    }
    store_changes_free(&f.changes);
    store_close(s);
    _exit(0);
}

/* The stable dump of the store at dir, opened as a command opens it; NULL if it does not open. */
static char *dump_dir(const char *dir, store_stats *ss)
{
    store *s = NULL;
    store_reader *r = NULL;
    store_opts o = {.dir = dir, .read_only = 1};
    if (store_open(&s, &o) != CT_OK) return NULL;
    if (store_reader_begin(s, &r) == CT_OK) store_reader_stats(r, ss);
    store_reader_end(r);
    char *d = dump_to_string(s);
    store_close(s);
    return d;
}

/* Backups taken while a writer commits (and grows the map) are each a store at one of its
 * checkpoints: the same views as a fold of exactly the batches up to that checkpoint. */
static void hot_backup(void)
{
    char *root = t_tmpdir(), *dir = ct_sprintf("%s/live", root);
    char *batches[BK_BATCHES], *outs[BK_MAX];
    store_backup_info infos[BK_MAX];
    rng_state = 99;
    for (int i = 0; i < BK_BATCHES; i++) {
        ct_buf b = {0};
        for (int j = 0; j < BK_BATCH; j++) random_event(&b, i * BK_BATCH + j);
        batches[i] = b.data;
    }
    int p[2];
    T_EQ_INT(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        backup_writer(dir, batches, p[1]);
    }
    close(p[1]);
    char c;
    int n = 0, commits = read(p[0], &c, 1) == 1;
    for (; n < BK_MAX && commits < BK_BATCHES; n++) {
        outs[n] = ct_sprintf("%s/backup-%d", root, n);
        T_EQ_INT(store_backup(dir, outs[n], &infos[n]), CT_OK);
        commits += read(p[0], &c, 1) == 1;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    close(p[0]);
    T_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    T_ASSERT(n >= 2);
    fprintf(stderr, "hot_backup: %d backups while the writer ran, at sequences", n);
    for (int k = 0; k < n; k++) fprintf(stderr, " %" PRIu64, infos[k].stats.applied_seq);
    fputc('\n', stderr);

    /* Compare each with a fold of the batches up to its checkpoint (backups are in checkpoint order). */
    fx ref;
    fx_open(&ref);
    int fed = 0;
    for (int k = 0; k < n; k++) {
        uint64_t seq = infos[k].stats.applied_seq;
        T_ASSERT(seq > 0 && seq % BK_BATCH == 0);
        while ((uint64_t)fed * BK_BATCH < seq && fed < BK_BATCHES) T_EQ_INT(fx_feed(&ref, batches[fed++]), CT_OK);
        store_stats ss = {0};
        char *got = dump_dir(outs[k], &ss), *want = dump_to_string(ref.s);
        T_ASSERT(got && strcmp(got, want) == 0);
        T_EQ_INT(ss.applied_seq, seq);
        T_ASSERT(infos[k].bytes > 0 && infos[k].source_bytes > 0);
        free(got);
        free(want);
    }
    fx_close(&ref);

    /* A restored backup takes the writer on from its checkpoint. */
    store *w = NULL;
    store_opts wo = {.dir = outs[0], .no_sync = 1};
    T_EQ_INT(store_open(&w, &wo), CT_OK);
    fx f = {.dir = NULL, .s = w, .now_ns = 1};
    uint64_t next = infos[0].stats.applied_seq / BK_BATCH;
    T_EQ_INT(fx_feed(&f, batches[next]), CT_OK);
    store_changes_free(&f.changes);
    store_close(w);
    store_stats ss = {0};
    free(dump_dir(outs[0], &ss));
    T_EQ_INT(ss.applied_seq, infos[0].stats.applied_seq + BK_BATCH);

    for (int i = 0; i < BK_BATCHES; i++) free(batches[i]);
    for (int k = 0; k < n; k++) free(outs[k]);
    free(dir);
    t_rmdir(root);
}

/* OUT must be new or empty; a failed backup leaves nothing behind, under OUT's name or beside it. */
static void backup_refusals(void)
{
    fx f;
    fx_open(&f);
    T_EQ_INT(fx_feed(&f, "{\"eventId\":\"b1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
                         "\"orderId\":\"SO-1\",\"orderApproved\":{\"warehouseId\":\"dc-1\"}}"), CT_OK);
    char *root = t_tmpdir(), *out = ct_sprintf("%s/out", root), *file = ct_sprintf("%s/file", root);
    char *missing = ct_sprintf("%s/missing", root), *none = ct_sprintf("%s/none", root);
    store_backup_info info;
    T_EQ_INT(mkdir(out, 0755), 0); /* empty: taken */
    T_EQ_INT(store_backup(f.dir, out, &info), CT_OK);
    T_EQ_INT(info.stats.applied_seq, 1);
    T_EQ_INT(store_backup(f.dir, out, &info), CT_CONFLICT);
    FILE *fp = fopen(file, "w");
    fclose(fp);
    T_EQ_INT(store_backup(f.dir, file, &info), CT_CONFLICT);
    T_EQ_INT(store_backup(missing, none, &info), CT_NOT_FOUND);
    struct stat sb;
    T_ASSERT(stat(none, &sb) != 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 2", root); /* out and file, no *.tmp-* */
    T_EQ_INT(system(cmd), 0);
    free(out);
    free(file);
    free(missing);
    free(none);
    t_rmdir(root);
    fx_close(&f);
}

/* TOWER_STORE_MAP_MIB sets a new store's starting map size; a hostile value (not a number, 0, past the bound,
 * trailing garbage, huge) is refused with a warning and the default (256 MiB) used: the store still opens. */
static void map_size_env(void)
{
    static const struct {
        const char *v;
        size_t want;
    } cases[] = {{"32", (size_t)32 << 20},   {"abc", (size_t)256 << 20}, {"0", (size_t)256 << 20},
                 {"-5", (size_t)256 << 20},  {"12x", (size_t)256 << 20}, {"1048577", (size_t)256 << 20},
                 {"99999999999999999999", (size_t)256 << 20}, {"", (size_t)256 << 20}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("TOWER_STORE_MAP_MIB", cases[i].v, 1);
        char *dir = t_tmpdir();
        store *s = NULL;
        store_opts o = {.dir = dir, .no_sync = 1};
        T_EQ_INT(store_open(&s, &o), CT_OK);
        T_EQ_INT(s ? store_map_size(s) : 0, cases[i].want);
        store_close(s);
        t_rmdir(dir);
    }
    unsetenv("TOWER_STORE_MAP_MIB");
}

/* towerd up keeps its store in DIR/store: every command given --data DIR finds it there, readers and
 * writers alike, and a rebuild swaps generations there (not beside). */
static void up_layout(void)
{
    char *root = t_tmpdir(), *inner = ct_sprintf("%s/store", root);
    store *s = NULL;
    store_opts w = {.dir = inner};
    T_EQ_INT(store_open(&s, &w), CT_OK);
    evt_event *e = NULL;
    evt_error err;
    const char *ev = "{\"eventId\":\"u1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
                     "\"orderId\":\"SO-1\",\"orderApproved\":{}}";
    T_EQ_INT(evt_from_json_text(&e, ev, strlen(ev), &err), CT_OK);
    store_input in = {0, e, NULL, ev, strlen(ev), "application/json", NULL, 0};
    T_EQ_INT(store_apply(s, &in, 1, ct_now_ns(), NULL, NULL), CT_OK);
    evt_free(e);
    store_close(s);
    store_opts r = {.dir = root, .read_only = 1};
    T_EQ_INT(store_open(&s, &r), CT_OK);
    T_ASSERT(strstr(store_env_dir(s), "/store/gen-1") != NULL);
    store_reader *rd = NULL;
    store_reader_begin(s, &rd);
    T_EQ_INT(store_reader_count(rd, FOLD_VIEW_AWAITING_RELEASE), 1);
    store_reader_end(rd);
    store_close(s);
    char *gen = NULL;
    T_EQ_INT(store_rebuild_begin(root, &gen), CT_OK);
    T_ASSERT(gen && strstr(gen, "/store/gen-2") != NULL);
    /* A DIR with a store of its own is that store, whatever it holds beside. */
    char *own = t_tmpdir(), *own_inner = ct_sprintf("%s/store", own);
    store_opts ow = {.dir = own};
    T_EQ_INT(store_open(&s, &ow), CT_OK);
    T_ASSERT(strstr(store_env_dir(s), "/store/") == NULL);
    store_close(s);
    free(gen);
    free(inner);
    free(own_inner);
    t_rmdir(root);
    t_rmdir(own);
}

int main(void)
{
    T_RUN(paging);
    T_RUN(random_consistency);
    T_RUN(map_growth_and_reopen);
    T_RUN(damaged_store_is_refused);
    T_RUN(open_during_swaps);
    T_RUN(hot_backup);
    T_RUN(backup_refusals);
    T_RUN(up_layout);
    T_RUN(map_size_env);
    return t_done();
}
