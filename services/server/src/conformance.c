/* Per-producer conformance (docs/contract/conformance.md): GET /api/v1/producers and the
 * tower_producer_* metrics. The dead letters' rows come from the store (store_conform.c); the HTTP ingest's
 * rejections, which are never stored, are counted here, in memory, since this process started. */
#include "server_int.h"
#include "store_conform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ingest's rows: one tally per process (a process runs one server), guarded by its mutex. Bounded as
 * the store's: at most STORE_CONFORM_MAX_PRODUCERS pairs under their own instance, then "(overflow)"; the
 * systems and codes are closed lists. */
static struct {
    pthread_mutex_t mu;
    store_conform_row *v;
    size_t n, cap;
    size_t producers;
    uint64_t total;
} tally = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0, 0, 0};

static int same_pair(const store_conform_row *r, const char *system, const char *instance)
{
    return !strcmp(r->system, system) && !strcmp(r->instance, instance);
}

/* The row of (system, instance, code), appended when new. Under tally.mu. */
static store_conform_row *tally_row(const char *system, char *instance, const char *code)
{
    int pair_known = 0;
    for (size_t i = 0; i < tally.n && !pair_known; i++) pair_known = same_pair(&tally.v[i], system, instance);
    if (!pair_known && strcmp(instance, "(overflow)") != 0) {
        if (tally.producers >= STORE_CONFORM_MAX_PRODUCERS) strcpy(instance, "(overflow)");
        else tally.producers++;
    }
    for (size_t i = 0; i < tally.n; i++)
        if (same_pair(&tally.v[i], system, instance) && !strcmp(tally.v[i].code, code)) return &tally.v[i];
    if (tally.n == tally.cap) {
        tally.cap = tally.cap ? tally.cap * 2 : 16;
        tally.v = ct_realloc(tally.v, tally.cap * sizeof *tally.v);
    }
    store_conform_row *r = &tally.v[tally.n++];
    memset(r, 0, sizeof *r);
    snprintf(r->system, sizeof r->system, "%s", system);
    snprintf(r->instance, sizeof r->instance, "%s", instance);
    snprintf(r->code, sizeof r->code, "%s", code);
    return r;
}

void server__conform_reject(const char *raw, size_t len, const evt_error *err)
{
    char system[STORE_CONFORM_SYSTEM], instance[STORE_CONFORM_INSTANCE];
    store_conform_source(raw, len, "application/json", NULL, system, instance);
    int64_t now = ct_now_ns();
    pthread_mutex_lock(&tally.mu);
    store_conform_row *r = tally_row(system, instance, evt_code_str(err->code));
    store_conform_row_add(r, 0, now, err->event_id, err->message);
    tally.total++;
    pthread_mutex_unlock(&tally.mu);
}

static int row_cmp(const void *a, const void *b)
{
    const store_conform_row *x = a, *y = b;
    int c = strcmp(x->system, y->system);
    if (!c) c = strcmp(x->instance, y->instance);
    return c ? c : strcmp(x->code, y->code);
}

/* A sorted copy of the ingest's rows (the caller frees *out), and their total. */
static size_t tally_copy(store_conform_row **out, uint64_t *total)
{
    pthread_mutex_lock(&tally.mu);
    size_t n = tally.n;
    *out = ct_malloc((n ? n : 1) * sizeof **out);
    if (n) memcpy(*out, tally.v, n * sizeof **out);
    *total = tally.total;
    pthread_mutex_unlock(&tally.mu);
    if (n) qsort(*out, n, sizeof **out, row_cmp);
    return n;
}

static int add_row(void *ctx, const store_conform_row *row)
{
    json_t **o = ctx;
    json_array_append_new(o[0], store_conform_row_json(row));
    json_object_set_new(o[1], "total", json_integer(json_integer_value(json_object_get(o[1], "total")) +
                                                    (json_int_t)row->count));
    return 0;
}

int server__producers(struct mg_connection *c, http_server *s)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_PRODUCERS, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    store_stats ss;
    store_reader_stats(r, &ss);
    json_t *dl = json_object(), *rows = json_array();
    json_object_set_new(dl, "total", json_integer(0));
    json_t *ctx[2] = {rows, dl};
    ct_status st = store_conform_scan(r, add_row, ctx);
    server__end(s, r);
    json_object_set_new(dl, "rows", rows);
    if (st != CT_OK) {
        json_decref(dl);
        return server__error(c, s, SERVER_ROUTE_PRODUCERS, 500, "STORE_ERROR", NULL, "reading the producers failed");
    }
    store_conform_row *v;
    uint64_t total;
    size_t n = tally_copy(&v, &total);
    json_t *in = json_object(), *irows = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(irows, store_conform_row_json(&v[i]));
    free(v);
    json_object_set_new(in, "total", json_integer((json_int_t)total));
    json_object_set_new(in, "rows", irows);
    json_t *body = json_object();
    json_object_set_new(body, "asOfSeq", json_integer((json_int_t)ss.applied_seq));
    server__now_json(body, ct_now_ns());
    json_object_set_new(body, "deadLetters", dl);
    json_object_set_new(body, "ingestRejections", in);
    return server__json(c, s, SERVER_ROUTE_PRODUCERS, 200, body);
}

/* ---- metrics --------------------------------------------------------------------------------- */

static void metric_row(ct_buf *b, const char *name, const store_conform_row *row)
{
    /* The labels are closed lists or ids of [A-Za-z0-9._:-] and "(...)" words: nothing to escape. */
    ct_buf_addf(b, "%s{system=\"%s\",instance=\"%s\",code=\"%s\"} %llu\n", name, row->system, row->instance,
                row->code, (unsigned long long)row->count);
}

static int metric_dead(void *ctx, const store_conform_row *row)
{
    metric_row(ctx, "tower_producer_dead_letters_total", row);
    return 0;
}

void server__conform_metrics(ct_buf *b, store_reader *r)
{
    ct_buf_addf(b, "# HELP tower_producer_dead_letters_total Dead letters by producer (source.system, source.instance) "
                   "and code, from the stream (a rebuild recounts them).\n"
                   "# TYPE tower_producer_dead_letters_total counter\n");
    store_conform_scan(r, metric_dead, b);
}

void server__conform_ingest_metrics(ct_buf *b)
{
    ct_buf_addf(b, "# HELP tower_producer_rejections_total Events the HTTP ingest refused, by producer (source.system, "
                   "source.instance) and code, since this server started.\n"
                   "# TYPE tower_producer_rejections_total counter\n");
    store_conform_row *v;
    uint64_t total;
    size_t n = tally_copy(&v, &total);
    for (size_t i = 0; i < n; i++) metric_row(b, "tower_producer_rejections_total", &v[i]);
    free(v);
}
