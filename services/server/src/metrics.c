/* /metrics in the Prometheus text format, and the /healthz and /readyz probes. */
#include "server_int.h"
#include "stream_int.h"
#include "leadtimes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void family(ct_buf *b, const char *name, const char *type, const char *help)
{
    ct_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int oldest(void *ctx, const Tower__V1__ViewItem *it)
{
    if (it->since) *(int64_t *)ctx = it->since->seconds;
    return 1;
}

/* Seconds from since (seconds since the epoch; 0: none) to now (ns), never below 0; 0 when none. */
static int64_t age_seconds(int64_t now, int64_t since)
{
    int64_t age = since ? now / 1000000000LL - since : 0;
    return age < 0 ? 0 : age;
}

/* One family of one unlabelled series. */
static void single(ct_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    family(b, name, type, help);
    ct_buf_addf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* ---- SLA breaches per rule ---------------------------------------------------------------------- */

/* Rules named in /metrics: the defaults always (so that a series exists at 0), then those the store
 * has seen, up to a bound that keeps the label's cardinality small whatever events arrive. */
#define SLA_METRIC_RULES 64

typedef struct sla_rule_row {
    char name[EVT_MAX_ID + 1];
    uint64_t open, total;
} sla_rule_row;

typedef struct sla_rows {
    sla_rule_row v[SLA_METRIC_RULES];
    size_t n;
    int total_pass; /* 0: filling open counts, 1: total counts */
} sla_rows;

static sla_rule_row *sla_row(sla_rows *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].name, name)) return &r->v[i];
    if (r->n == SLA_METRIC_RULES || strlen(name) > EVT_MAX_ID) return NULL;
    sla_rule_row *x = &r->v[r->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    return x;
}

static void sla_count(void *ctx, const char *id, uint64_t n)
{
    sla_rows *r = ctx;
    sla_rule_row *x = sla_row(r, id);
    if (!x) return;
    if (r->total_pass) x->total = n;
    else x->open = n;
}

/* Rule names are [A-Za-z0-9._:-] from the rules file, but a producer could send others: escape for the label. */
static void label_value(ct_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') ct_buf_addc(b, '\\');
        if (*s == '\n') {
            ct_buf_adds(b, "\\n");
            continue;
        }
        ct_buf_addc(b, *s);
    }
}

static void sla_metrics(ct_buf *b, store_reader *r, int64_t now)
{
    sla_rows rows;
    rows.n = 0;
    rows.total_pass = 0;
    const fold_sla_rules *d = fold_sla_defaults();
    for (size_t i = 0; i < d->n; i++) sla_row(&rows, d->v[i].name);
    store_reader_breakdown(r, FOLD_VIEW_SLA_BREACHES, 'r', sla_count, &rows);
    rows.total_pass = 1;
    store_reader_breakdown(r, FOLD_VIEW_SLA_BREACHES, 't', sla_count, &rows);

    family(b, "tower_sla_open_breaches", "gauge", "Open SLA breaches (the sla_breaches view) per rule.");
    for (size_t i = 0; i < rows.n; i++) {
        ct_buf_adds(b, "tower_sla_open_breaches{rule=\"");
        label_value(b, rows.v[i].name);
        ct_buf_addf(b, "\"} %llu\n", (unsigned long long)rows.v[i].open);
    }
    family(b, "tower_sla_breaches_total", "counter", "SLA breaches raised (slaBreached events applied) per rule.");
    for (size_t i = 0; i < rows.n; i++) {
        ct_buf_adds(b, "tower_sla_breaches_total{rule=\"");
        label_value(b, rows.v[i].name);
        ct_buf_addf(b, "\"} %llu\n", (unsigned long long)rows.v[i].total);
    }
    family(b, "tower_sla_oldest_open_breach_age_seconds", "gauge",
           "Seconds since the due time of the oldest open breach per rule (0 when none).");
    for (size_t i = 0; i < rows.n; i++) {
        int64_t since = 0;
        if (rows.v[i].open) {
            store_query q = {.view = FOLD_VIEW_SLA_BREACHES, .rule = rows.v[i].name, .limit = 1};
            store_view_scan(r, &q, oldest, &since, NULL);
        }
        ct_buf_adds(b, "tower_sla_oldest_open_breach_age_seconds{rule=\"");
        label_value(b, rows.v[i].name);
        ct_buf_addf(b, "\"} %lld\n", (long long)age_seconds(now, since));
    }
}

/* ---- the store's figures ------------------------------------------------------------------------ */

static void view_metrics(ct_buf *b, store_reader *r, int64_t now)
{
    family(b, "tower_view_items", "gauge", "Items in each view now.");
    for (int v = 0; v < FOLD_VIEW_COUNT; v++)
        ct_buf_addf(b, "tower_view_items{view=\"%s\"} %llu\n", fold_view_name((fold_view)v),
                    (unsigned long long)store_reader_count(r, (fold_view)v));
    family(b, "tower_view_oldest_age_seconds", "gauge", "Age of the oldest item of each view (0 when empty).");
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
        int64_t since = 0;
        store_query q = {.view = (fold_view)v, .limit = 1};
        store_view_scan(r, &q, oldest, &since, NULL);
        ct_buf_addf(b, "tower_view_oldest_age_seconds{view=\"%s\"} %lld\n", fold_view_name((fold_view)v),
                    (long long)age_seconds(now, since));
    }
}

/* The exception lifecycle (docs/exceptions.md "Metrics"): unacknowledged items, and the time to acknowledge
 * and to close kept by the projector in the store. */
static void life_metrics(ct_buf *b, store_reader *r, int64_t now)
{
    store_life_fig f[FOLD_VIEW_COUNT];
    for (int v = 0; v < FOLD_VIEW_COUNT; v++) store_life_figures(r, (fold_view)v, now, &f[v]);
    family(b, "tower_exceptions_unacknowledged", "gauge", "Items of each view that nobody acknowledged or was assigned.");
    for (int v = 0; v < FOLD_VIEW_COUNT; v++)
        ct_buf_addf(b, "tower_exceptions_unacknowledged{view=\"%s\"} %llu\n", fold_view_name((fold_view)v),
                    (unsigned long long)f[v].unacknowledged);
    family(b, "tower_exceptions_oldest_unacknowledged_age_seconds", "gauge",
           "Age of the oldest item of each view that nobody acknowledged (0 when there is none).");
    for (int v = 0; v < FOLD_VIEW_COUNT; v++)
        ct_buf_addf(b, "tower_exceptions_oldest_unacknowledged_age_seconds{view=\"%s\"} %lld\n",
                    fold_view_name((fold_view)v),
                    (long long)age_seconds(now, f[v].oldest_unacknowledged_ns / 1000000000LL));
    static const char *const names[2] = {"tower_exception_ack_seconds", "tower_exception_close_seconds"};
    static const char *const helps[2] = {
        "Time from an exception's start (since) to its first acknowledgement or assignment, per view.",
        "Time from an exception's start (since) to its close (condition cleared, or resolved), per view."};
    const int64_t *bounds = store_life_bounds();
    for (int w = 0; w < 2; w++) {
        family(b, names[w], "histogram", helps[w]);
        for (int v = 0; v < FOLD_VIEW_COUNT; v++) {
            char key[96];
            uint64_t cum = 0;
            for (int i = 0; i < STORE_LIFE_SLOTS; i++) {
                store_life_meta_key(key, sizeof key, (fold_view)v, w, i);
                cum += store_reader_meta(r, key);
                if (i < STORE_LIFE_BOUNDS)
                    ct_buf_addf(b, "%s_bucket{view=\"%s\",le=\"%lld\"} %llu\n", names[w], fold_view_name((fold_view)v),
                                (long long)bounds[i], (unsigned long long)cum);
                else
                    ct_buf_addf(b, "%s_bucket{view=\"%s\",le=\"+Inf\"} %llu\n", names[w], fold_view_name((fold_view)v),
                                (unsigned long long)cum);
            }
            store_life_meta_key(key, sizeof key, (fold_view)v, w, -1);
            uint64_t ms = store_reader_meta(r, key);
            ct_buf_addf(b, "%s_sum{view=\"%s\"} %llu.%03llu\n", names[w], fold_view_name((fold_view)v),
                        (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
            ct_buf_addf(b, "%s_count{view=\"%s\"} %llu\n", names[w], fold_view_name((fold_view)v), (unsigned long long)cum);
        }
    }
}

static void total_metrics(ct_buf *b, const store_stats *ss)
{
    single(b, "tower_events_applied_total", "counter", "Distinct valid events folded into the views.", ss->events);
    single(b, "tower_duplicates_total", "counter", "Events received again and ignored.", ss->duplicates);
    single(b, "tower_dead_letters_total", "counter", "Messages rejected into the dead letters.", ss->dead_letters);
    single(b, "tower_applied_sequence", "gauge", "Last stream sequence folded into the store (the checkpoint).",
           ss->applied_seq);
}

/* The projector's counter and commit-duration histogram, from the meta keys it writes with every commit
 * (so that they are here whichever process runs the projector). */
static void projector_counters(ct_buf *b, store_reader *r)
{
    single(b, "tower_projector_events_total", "counter",
           "Stream messages the projector folded (events, duplicates, dead letters); its rate is the fold rate.",
           store_reader_meta(r, PROJECTOR_META_EVENTS_TOTAL));
    uint64_t n[CT_HIST_SLOTS];
    for (int i = 0; i < CT_HIST_SLOTS; i++) {
        char key[32];
        snprintf(key, sizeof key, PROJECTOR_META_COMMIT_SLOT, i);
        n[i] = store_reader_meta(r, key);
    }
    family(b, "tower_projector_commit_duration_seconds", "histogram",
           "Duration of the projector's store commits (fold and fsync of one batch); written with the next commit.");
    ct_metrics_hist(b, "tower_projector_commit_duration_seconds", "", n, store_reader_meta(r, PROJECTOR_META_COMMIT_SUM_NS));
}

/* The projector's last commit and rate, from the meta keys it writes with every commit (none: none yet). */
static void projector_metrics(ct_buf *b, store_reader *r, int64_t now)
{
    uint64_t commit = store_reader_meta(r, PROJECTOR_META_COMMIT_NS);
    uint64_t rate = store_reader_meta(r, PROJECTOR_META_RATE);
    if (!commit) return;
    double age = (double)(now - (int64_t)commit) / 1e9;
    family(b, "tower_projector_last_commit_age_seconds", "gauge", "Seconds since the projector's last commit.");
    ct_buf_addf(b, "tower_projector_last_commit_age_seconds %.3f\n", age > 0 ? age : 0.0);
    family(b, "tower_projector_events_per_second", "gauge", "Projector fold rate over its last seconds.");
    ct_buf_addf(b, "tower_projector_events_per_second %.3f\n", (double)rate / 1000.0);
    projector_counters(b, r);
}

/* NATS's connection; the stream's last sequence, from NATS when it answers, else as the projector last
 * saw it; and the projector's lag behind it. */
static void stream_metrics(ct_buf *b, http_server *s, store_reader *r, const bus_health *nh, uint64_t applied)
{
    uint64_t stream_last = store_reader_meta(r, PROJECTOR_META_STREAM_LAST);
    if (s->o.bus) {
        char why[256];
        if (nh->stream_known && !server__nats_unready(nh, why, sizeof why)) stream_last = nh->stream.last_seq;
        family(b, "tower_nats_connected", "gauge", "1 while connected to NATS.");
        ct_buf_addf(b, "tower_nats_connected %d\n", nh->connected);
    }
    if (!stream_last) return;
    single(b, "tower_stream_last_sequence", "gauge", "Last sequence of the events stream.", stream_last);
    single(b, "tower_projector_lag_events", "gauge", "Events in the stream not yet folded into the store.",
           stream_last > applied ? stream_last - applied : 0);
}

/* The store's data file and map, outside any read transaction (store_space_get wants none). */
static void space_metrics(ct_buf *b, http_server *s)
{
    store_space sp;
    pthread_rwlock_rdlock(&s->lock);
    ct_status st = s->st ? store_space_get(s->st, &sp) : CT_NOT_FOUND;
    pthread_rwlock_unlock(&s->lock);
    if (st != CT_OK) return;
    single(b, "tower_store_file_bytes", "gauge", "Size of the store's data file.", sp.file_bytes);
    single(b, "tower_store_map_bytes", "gauge", "The store's map size: how far the data file may grow before the map grows.",
           sp.map_bytes);
    family(b, "tower_store_map_used_ratio", "gauge", "Share of the map in use (pages up to the last one written).");
    ct_buf_addf(b, "tower_store_map_used_ratio %.6f\n", sp.map_bytes ? (double)sp.used_bytes / (double)sp.map_bytes : 0.0);
}

/* Everything read from the store, in one read transaction; nothing when the store cannot be read. */
static void store_metrics(ct_buf *b, http_server *s, const bus_health *nh, int64_t now)
{
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK) return;
    store_stats ss;
    store_reader_stats(r, &ss);
    view_metrics(b, r, now);
    life_metrics(b, r, now);
    total_metrics(b, &ss);
    projector_metrics(b, r, now);
    stream_metrics(b, s, r, nh, ss.applied_seq);
    sla_metrics(b, r, now);
    family(b, "tower_orders_at_risk", "gauge",
           "Open orders predicted to miss their promisedBy (the at_risk view) per warehouse (\"\": none).");
    server__risk_metrics(b, r);
    server__conform_metrics(b, r);
    server__reference_metrics(b, r);
    server__end(s, r);
}

/* ---- the live stream and the HTTP requests ------------------------------------------------------ */

static void ws_metrics(ct_buf *b, stream_hub *h)
{
    pthread_mutex_lock(&h->mu);
    int clients = h->n_clients;
    pthread_mutex_unlock(&h->mu);
    family(b, "tower_ws_clients", "gauge", "Live-stream (websocket) clients connected now.");
    ct_buf_addf(b, "tower_ws_clients %d\n", clients);
    struct {
        const char *name, *help;
        uint64_t *v;
    } ws[] = {
        {"tower_ws_connections_total", "Live-stream connections accepted.", &h->accepted},
        {"tower_ws_refused_total", "Live-stream connections refused (connection limit or token).", &h->rejected},
        {"tower_ws_drops_total", "Clients whose queue was dropped because they did not keep up (then resynced).", &h->drops},
        {"tower_ws_resyncs_total", "Client resyncs after missed change notices.", &h->resyncs},
        {"tower_ws_frames_total", "Websocket frames sent.", &h->frames},
        {"tower_ws_messages_total", "Live-stream messages sent (several per frame).", &h->messages},
    };
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        single(b, ws[i].name, "counter", ws[i].help, __atomic_load_n(ws[i].v, __ATOMIC_RELAXED));
}

/* Request durations per route (routes with requests only, as tower_http_requests_total). */
static void duration_metrics(ct_buf *b, http_server *s)
{
    family(b, "tower_http_request_duration_seconds", "histogram",
           "Time from a request's arrival to its answer, by route (the counts match tower_http_requests_total).");
    for (int rt = 0; rt < SERVER_ROUTE_COUNT; rt++) {
        uint64_t n[CT_HIST_SLOTS], sum_ns, total = 0;
        ct_hist_snapshot(&s->durations[rt], n, &sum_ns);
        for (int i = 0; i < CT_HIST_SLOTS; i++) total += n[i];
        if (!total) continue;
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\"", server__route_name((server_route)rt));
        ct_metrics_hist(b, "tower_http_request_duration_seconds", labels, n, sum_ns);
    }
}

static void http_metrics(ct_buf *b, http_server *s)
{
    family(b, "tower_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (int rt = 0; rt < SERVER_ROUTE_COUNT; rt++)
        for (int i = 0; i < SERVER_N_CODES; i++) {
            uint64_t n = __atomic_load_n(&s->requests[rt][i], __ATOMIC_RELAXED);
            if (!n) continue;
            const char *route = server__route_name((server_route)rt);
            if (server__codes[i])
                ct_buf_addf(b, "tower_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n", route, server__codes[i],
                            (unsigned long long)n);
            else
                ct_buf_addf(b, "tower_http_requests_total{route=\"%s\",code=\"other\"} %llu\n", route,
                            (unsigned long long)n);
        }
}

/* Duplicates dropped at publish by this process's publishers (never in the store's tower_duplicates_total). */
static void publish_dup_metrics(ct_buf *b, http_server *s)
{
    server_pub_dups rows[8];
    size_t n = server__publish_dups(s, rows, 8);
    family(b, "tower_publish_duplicates_total", "counter",
           "Publishes JetStream dropped as duplicates (ack duplicate: the message id was in the stream already), "
           "counted by this process since it started, by publisher; the projector never sees them.");
    for (size_t i = 0; i < n; i++)
        ct_buf_addf(b, "tower_publish_duplicates_total{source=\"%s\"} %llu\n", rows[i].source,
                    (unsigned long long)rows[i].count);
}

int server__metrics(struct mg_connection *c, void *cbdata)
{
    http_server *s = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (strcmp(ri->request_method, "GET") != 0)
        return server__error(c, s, SERVER_ROUTE_METRICS, 405, "METHOD_NOT_ALLOWED", NULL, "use GET");
    ct_buf b = {0};
    int64_t now = ct_now_ns();
    /* NATS from the watch's snapshot, before any read transaction: no round trip, none held open. */
    bus_health nh = {0};
    if (s->o.bus) server__nats(s, &nh);
    ct_metrics_build_info(&b);
    ct_metrics_process(&b);
    store_metrics(&b, s, &nh, now);
    space_metrics(&b, s);
    ws_metrics(&b, s->hub);
    server__conform_ingest_metrics(&b);
    if (s->o.bus || s->o.publish_dups) publish_dup_metrics(&b, s);
    if (s->o.metrics_extra) s->o.metrics_extra(&b, s->o.metrics_ctx);
    /* This request is counted before the text is written, so that it is in it. */
    server__count(s, SERVER_ROUTE_METRICS, 200);
    http_metrics(&b, s);
    duration_metrics(&b, s);
    mg_send_http_ok(c, "text/plain; version=0.0.4; charset=utf-8", (long long)b.len);
    mg_write(c, b.data, b.len);
    ct_buf_free(&b);
    return 200;
}

int server__healthz(struct mg_connection *c, void *cbdata)
{
    if (strcmp(mg_get_request_info(c)->request_method, "GET") && strcmp(mg_get_request_info(c)->request_method, "HEAD"))
        return server__error(c, cbdata, SERVER_ROUTE_HEALTHZ, 405, "METHOD_NOT_ALLOWED", NULL, "use GET");
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string("ok"));
    return server__json(c, cbdata, SERVER_ROUTE_HEALTHZ, 200, body);
}

int server__readyz(struct mg_connection *c, void *cbdata)
{
    http_server *s = cbdata;
    if (strcmp(mg_get_request_info(c)->request_method, "GET") && strcmp(mg_get_request_info(c)->request_method, "HEAD"))
        return server__error(c, s, SERVER_ROUTE_READYZ, 405, "METHOD_NOT_ALLOWED", NULL, "use GET");
    json_t *body = json_object(), *why = json_array();
    bus_health nh = {0};
    if (s->o.bus) server__nats(s, &nh); /* a snapshot: never a round trip */
    store_reader *r = NULL;
    uint64_t applied = 0;
    if (server__begin(s, &r) == CT_OK) {
        store_stats ss;
        store_reader_stats(r, &ss);
        applied = ss.applied_seq;
        server__end(s, r);
    } else {
        json_array_append_new(why, json_string("the store is not readable"));
    }
    if (s->o.bus) {
        char nats_why[256];
        if (server__nats_unready(&nh, nats_why, sizeof nats_why)) {
            json_array_append_new(why, json_string(nats_why));
        } else if (nh.stream_known) {
            uint64_t lag = nh.stream.last_seq > applied ? nh.stream.last_seq - applied : 0;
            uint64_t max = s->o.ready_max_lag ? s->o.ready_max_lag : 10000;
            json_object_set_new(body, "lag", json_integer((json_int_t)lag));
            if (lag > max) {
                char msg[96];
                snprintf(msg, sizeof msg, "the projector is %llu events behind (bound %llu)", (unsigned long long)lag,
                         (unsigned long long)max);
                json_array_append_new(why, json_string(msg));
            }
        }
    }
    int ready = json_array_size(why) == 0;
    json_object_set_new(body, "status", json_string(ready ? "ready" : "not ready"));
    json_object_set_new(body, "appliedSeq", json_integer((json_int_t)applied));
    json_object_set_new(body, "reasons", why);
    return server__json(c, s, SERVER_ROUTE_READYZ, ready ? 200 : 503, body);
}
