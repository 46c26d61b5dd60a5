/* towerd up's route planner simulator (up_planner.h). */
#include "up_planner.h"

#include <civetweb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ct_config.h"
#include "evt.h"
#include "server.h"

#define BODY_MAX (64 * 1024)
#define SEEN_MAX 4096 /* request ids remembered (a repeat is answered without planning twice) */
#define JOBS_MAX 10000

/* ---- knobs ---- */

static int knob_share(const char *k, const char *v, double *out, char *err, size_t cap)
{
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= 0 && d <= 1)) {
        snprintf(err, cap, "--planner-sim: %s \"%s\" is not a share from 0 to 1", k, v);
        return -1;
    }
    *out = d;
    return 0;
}

static int knob_time(const char *k, const char *v, int64_t max, int64_t *out, char *err, size_t cap)
{
    if (ct_parse_duration_ns(v, out) != 0 || *out < 0 || *out > max) {
        snprintf(err, cap, "--planner-sim: %s \"%s\" is not a duration from 0 to %llds (e.g. 50ms, 2s)", k, v,
                 (long long)(max / 1000000000LL));
        return -1;
    }
    return 0;
}

static int knob(up_planner_knobs *o, const char *k, char *v, char *err, size_t cap)
{
    const int64_t hour = 3600LL * 1000000000LL;
    if (!strcmp(k, "fail")) return knob_share(k, v, &o->fail, err, cap);
    if (!strcmp(k, "route_fail")) return knob_share(k, v, &o->route_fail, err, cap);
    if (!strcmp(k, "latency")) return knob_time(k, v, 10000000000LL, &o->latency_ns, err, cap);
    if (!strcmp(k, "plan_delay")) return knob_time(k, v, hour, &o->plan_delay_ns, err, cap);
    if (!strcmp(k, "outage")) {
        char *slash = strchr(v, '/');
        if (!slash) {
            snprintf(err, cap, "--planner-sim: outage \"%s\" is not FOR/EVERY (e.g. 40s/180s, 0/0: none)", v);
            return -1;
        }
        *slash = '\0';
        if (knob_time(k, v, hour, &o->outage_for_ns, err, cap) || knob_time(k, slash + 1, hour, &o->outage_every_ns, err, cap))
            return -1;
        if (o->outage_for_ns > o->outage_every_ns) {
            snprintf(err, cap, "--planner-sim: outage FOR/EVERY: FOR is longer than EVERY");
            return -1;
        }
        return 0;
    }
    snprintf(err, cap, "--planner-sim: unknown knob \"%s\" (fail, latency, outage, route_fail, plan_delay)", k);
    return -1;
}

int up_planner_parse(const char *spec, up_planner_knobs *o, char *err, size_t cap)
{
    *o = (up_planner_knobs){.fail = 0.05, .latency_ns = 50000000LL, .outage_for_ns = 40000000000LL,
                            .outage_every_ns = 180000000000LL, .route_fail = 0.05, .plan_delay_ns = 2000000000LL};
    if (!spec || !*spec) return 0;
    if (strlen(spec) > 1000) {
        snprintf(err, cap, "--planner-sim: longer than 1000 characters");
        return -1;
    }
    char *s = strdup(spec), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(s, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            snprintf(err, cap, "--planner-sim: \"%s\" is not KNOB=VALUE", item);
            rc = -1;
            break;
        }
        *eq = '\0';
        rc = knob(o, item, eq + 1, err, cap);
    }
    free(s);
    return rc;
}

/* ---- one simulator ---- */

typedef struct job {
    int64_t due_ns;   /* monotonic */
    evt_event *req;   /* the routeRequested taken (owned) */
    char id[160];     /* its webhook-id */
} job;

typedef struct sim {
    const relay_dest *d;
    up_planner_knobs k;
    struct mg_context *ctx;
    bus *b;
    int64_t start_ns;
    pthread_mutex_t lock;  /* rng, seen, jobs */
    pthread_cond_t cond;
    uint64_t rng;
    char (*seen)[160];
    size_t n_seen;
    job *jobs;
    size_t n_jobs;
    uint64_t route_num;
    int stop;
    pthread_t th;
    int th_started;
} sim;

struct up_planner {
    sim *v;
    size_t n;
};

static int64_t mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double draw(sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

static int answer(struct mg_connection *c, int status, const char *extra, const char *body)
{
    mg_printf(c,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n%s",
              status, status < 300 ? "OK" : status == 503 ? "Service Unavailable" : status < 500 ? "Bad Request" : "Error",
              strlen(body), extra ? extra : "", body);
    return status;
}

/* The body, bounded: 0, or -1 (too long, or cut short). */
static int read_body(struct mg_connection *c, ct_buf *out)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (ri->content_length < 0 || ri->content_length > BODY_MAX) return -1;
    char buf[8192];
    int n;
    while (out->len < (size_t)ri->content_length && (n = mg_read(c, buf, sizeof buf)) > 0) ct_buf_add(out, buf, (size_t)n);
    return out->len == (size_t)ri->content_length ? 0 : -1;
}

/* The request's routeRequested, validated as any event. NULL with why. */
static evt_event *parse_request(const ct_buf *body, const char **why)
{
    json_error_t je;
    json_t *o = body->len ? json_loadb(body->data, body->len, 0, &je) : NULL;
    json_t *ev = json_object_get(o, "event");
    evt_event *e = NULL;
    evt_error err;
    *why = "{\"error\":\"the body is not a route request: {\\\"event\\\": a routeRequested event}\"}";
    if (json_is_object(ev) && evt_from_json(&e, ev, &err) == CT_OK &&
        e->payload_case != TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED) {
        evt_free(e);
        e = NULL;
    }
    json_decref(o);
    return e;
}

/* Already taken: 1 (a repeat); else remembered, 0. Under s->lock. */
static int seen_before(sim *s, const char *id)
{
    for (size_t i = 0; i < s->n_seen && i < SEEN_MAX; i++)
        if (!strcmp(s->seen[i], id)) return 1;
    snprintf(s->seen[s->n_seen % SEEN_MAX], sizeof s->seen[0], "%s", id);
    s->n_seen++;
    return 0;
}

/* The planner's mood now: 0 takes requests; else the status it answers (Retry-After in *retry, seconds). */
static int mood(sim *s, int *retry)
{
    *retry = 0;
    if (s->k.outage_every_ns > 0 && s->k.outage_for_ns > 0) {
        int64_t phase = (mono() - s->start_ns) % s->k.outage_every_ns;
        if (phase < s->k.outage_for_ns) {
            *retry = (int)((s->k.outage_for_ns - phase) / 1000000000LL) + 1;
            if (*retry > 2) *retry = 2; /* come back soon: the relay's breaker opens on repeated failures */
            return 503;
        }
    }
    pthread_mutex_lock(&s->lock);
    int fail = draw(s) < s->k.fail;
    pthread_mutex_unlock(&s->lock);
    return fail ? 500 : 0;
}

static int on_request(struct mg_connection *c, void *arg)
{
    sim *s = arg;
    if (strcmp(mg_get_request_info(c)->request_method, "POST") != 0)
        return answer(c, 405, NULL, "{\"error\":\"POST a route request\"}");
    ct_buf body = {0};
    if (read_body(c, &body) != 0) {
        ct_buf_free(&body);
        return answer(c, 413, NULL, "{\"error\":\"the body is missing or longer than 64 KiB\"}");
    }
    const char *why;
    evt_event *e = parse_request(&body, &why);
    ct_buf_free(&body);
    const char *hid = mg_get_header(c, "webhook-id");
    if (!e || !hid || strlen(hid) >= sizeof ((job *)0)->id) {
        evt_free(e);
        return answer(c, 400, NULL, e ? "{\"error\":\"no webhook-id header\"}" : why);
    }
    if (s->k.latency_ns) {
        struct timespec t = {(time_t)(s->k.latency_ns / 1000000000LL), (long)(s->k.latency_ns % 1000000000LL)};
        nanosleep(&t, NULL);
    }
    int retry, st = mood(s, &retry);
    if (st) {
        evt_free(e);
        char hdr[64] = "";
        if (retry) snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", retry);
        return answer(c, st, hdr, "{\"error\":\"the route planner is unavailable\"}");
    }
    pthread_mutex_lock(&s->lock);
    int again = seen_before(s, hid), full = !again && s->n_jobs >= JOBS_MAX;
    if (!again && !full) {
        s->jobs[s->n_jobs++] = (job){.due_ns = mono() + s->k.plan_delay_ns, .req = e};
        snprintf(s->jobs[s->n_jobs - 1].id, sizeof s->jobs[0].id, "%s", hid);
        e = NULL;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    evt_free(e);
    if (full) return answer(c, 429, "Retry-After: 5\r\n", "{\"error\":\"too many requests in planning\"}");
    return answer(c, again ? 200 : 202, NULL, again ? "{\"taken\":\"before\"}" : "{\"taken\":\"now\"}");
}

/* The planner's answer on the stream: routePlanned (one route, the shipments as its stops) or routeFailed. */
static json_t *plan_event(sim *s, const job *j, int fail, uint64_t num)
{
    const Tower__V1__RouteRequested *rq = j->req->route_requested;
    char id[200], when[48], eta[48], rid[48];
    int64_t now = ct_now_ns();
    evt_time_format(now / 1000000000LL, (int32_t)(now % 1000000000LL), when);
    snprintf(id, sizeof id, "%s-%s", fail ? "rf" : "rp", j->req->event_id);
    json_t *ids = json_array(), *stops = json_array();
    for (size_t i = 0; i < rq->n_shipment_ids; i++) {
        json_array_append_new(ids, json_string(rq->shipment_ids[i]));
        int64_t at = now / 1000000000LL + 3600 + 900 * (int64_t)i;
        evt_time_format(at, 0, eta);
        json_array_append_new(stops, json_pack("{s:s, s:i, s:s}", "shipmentId", rq->shipment_ids[i], "sequence",
                                               (int)i + 1, "eta", eta));
    }
    json_t *o = json_pack("{s:s, s:s, s:{s:s, s:s}}", "eventId", id, "occurredAt", when, "source", "system", "tms",
                          "instance", "planner-sim");
    json_t *p;
    if (fail) {
        json_decref(stops);
        p = json_pack("{s:o, s:s}", "shipmentIds", ids, "reason", "NO_CAPACITY");
        json_object_set_new(o, "routeFailed", p);
    } else {
        json_decref(ids);
        snprintf(rid, sizeof rid, "RT-P%06llu", (unsigned long long)num);
        json_object_set_new(o, "routeId", json_string(rid));
        p = json_pack("{s:s, s:o}", "vehicleId", "VH-SIM", "stops", stops);
        json_object_set_new(o, "routePlanned", p);
    }
    if (rq->warehouse_id) json_object_set_new(p, "warehouseId", json_string(rq->warehouse_id));
    (void)s;
    return o;
}

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    (void)tag;
    *(int *)ctx = ack->result == BUS_PUB_STORED || ack->result == BUS_PUB_DUPLICATE;
}

static void publish_plan(sim *s, const job *j)
{
    pthread_mutex_lock(&s->lock);
    int fail = draw(s) < s->k.route_fail;
    uint64_t num = ++s->route_num;
    pthread_mutex_unlock(&s->lock);
    json_t *o = plan_event(s, j, fail, num);
    evt_event *e = NULL;
    evt_error err;
    ct_status st = evt_from_json(&e, o, &err);
    if (st == CT_OK) st = bus_publish_event(s->b, e, 0);
    int stored = 0;
    if (st == CT_OK) st = bus_publish_wait(s->b, 10000, on_ack, &stored);
    if (st == CT_OK && !stored) st = CT_BUS;
    if (st != CT_OK) ct_log(CT_LOG_WARN, "planner-sim", "%s: cannot publish the plan of %s", s->d->name, j->id);
    evt_free(e);
    json_decref(o);
}

static void *plan_main(void *arg)
{
    sim *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (!s->n_jobs) {
            pthread_cond_wait(&s->cond, &s->lock);
            continue;
        }
        int64_t wait = s->jobs[0].due_ns - mono();
        if (wait > 0) {
            pthread_mutex_unlock(&s->lock);
            struct timespec t = {0, (long)(wait < 50000000LL ? wait : 50000000LL)};
            nanosleep(&t, NULL);
            pthread_mutex_lock(&s->lock);
            continue;
        }
        job j = s->jobs[0];
        memmove(s->jobs, s->jobs + 1, --s->n_jobs * sizeof *s->jobs);
        pthread_mutex_unlock(&s->lock);
        publish_plan(s, &j);
        evt_free(j.req);
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

/* The loopback port of a route planner's URL, or 0. */
static int loopback_port(const char *url)
{
    const char *h = !strncmp(url, "http://127.0.0.1:", 17) ? url + 17 : !strncmp(url, "http://localhost:", 17) ? url + 17 : NULL;
    int port = h ? atoi(h) : 0;
    return port > 0 && port < 65536 ? port : 0;
}

static ct_status sim_start(sim *s, const relay_dest *d, const bus_opts *bo, const up_planner_knobs *k, int port)
{
    s->d = d;
    s->k = *k;
    s->start_ns = mono();
    s->rng = (uint64_t)ct_wall_ns();
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->seen = calloc(SEEN_MAX, sizeof *s->seen);
    s->jobs = calloc(JOBS_MAX, sizeof *s->jobs);
    bus_opts o = *bo;
    o.name = "towerd up planner-sim";
    if (!s->seen || !s->jobs || bus_connect(&s->b, &o) != CT_OK) return CT_BUS;
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *opts[] = {"listening_ports", listen, "num_threads", "4", NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    s->ctx = mg_start(&cb, s, opts);
    if (!s->ctx) {
        ct_log(CT_LOG_ERROR, "planner-sim", "%s: cannot listen on %s", d->name, listen);
        return CT_IO;
    }
    mg_set_request_handler(s->ctx, "/", on_request, s);
    s->th_started = pthread_create(&s->th, NULL, plan_main, s) == 0;
    ct_log(CT_LOG_INFO, "planner-sim", "%s: route planner simulator on http://%s (fail %.2f, latency %lldms, outage "
           "%llds every %llds)", d->name, listen, k->fail, (long long)(k->latency_ns / 1000000),
           (long long)(k->outage_for_ns / 1000000000LL), (long long)(k->outage_every_ns / 1000000000LL));
    return CT_OK;
}

static void sim_stop(sim *s)
{
    server_civet_stop(s->ctx, "127.0.0.1"); /* it listens on loopback only */
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->th_started) pthread_join(s->th, NULL);
    for (size_t i = 0; s->jobs && i < s->n_jobs; i++) evt_free(s->jobs[i].req);
    free(s->jobs);
    free(s->seen);
    bus_close(s->b);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
}

ct_status up_planner_start(up_planner **out, const relay_conf *conf, const bus_opts *bo, const up_planner_knobs *k)
{
    *out = NULL;
    up_planner *p = ct_calloc(1, sizeof *p);
    p->v = ct_calloc(conf->n ? conf->n : 1, sizeof *p->v);
    ct_status st = CT_OK;
    for (size_t i = 0; i < conf->n && st == CT_OK; i++) {
        int port = conf->v[i].kind == RELAY_ROUTE_PLANNER ? loopback_port(conf->v[i].url) : 0;
        if (port) st = sim_start(&p->v[p->n++], &conf->v[i], bo, k, port);
    }
    if (st != CT_OK || !p->n) {
        up_planner_stop(p);
        return st;
    }
    *out = p;
    return CT_OK;
}

void up_planner_stop(up_planner *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) sim_stop(&p->v[i]);
    free(p->v);
    free(p);
}
