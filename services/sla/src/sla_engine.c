/* The SLA engine loop: publish breaches of overdue dues, keep Alertmanager told of open and closed breaches. */
#include "sla_engine.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ct_metrics.h"
#include "store.h"

#define SEC 1000000000LL
#define MAX_DUES_PER_CYCLE 2000     /* a backlog of dues is worked off over several cycles */
#define MAX_ALERTS 10000            /* open breaches sent per post at most (the oldest first) */

/* ---- breaches -------------------------------------------------------------------------- */

typedef struct engine {
    const sla_engine_opts *o;
    bus *b;
    store *s;
    sla_engine_figures *fig;
    /* Breach ids JetStream acknowledged in this process: not sent again while their due is listed. */
    json_t *acked;
    /* Alerts as last delivered: item key -> the firing alert. */
    json_t *sent;
    /* The channels of the orders whose breaches need one for their severity (order id -> channel). */
    json_t *channels;
    int alerting;
    CURL *curl;
    unsigned failures;
    int64_t next_attempt_mono, next_resend_mono, breaker_until_mono;
    int store_missing_logged;
    sla_risk_runner *risk;       /* predicted risk (sla_risk_engine.c) */
    int64_t next_risk_mono;
} engine;

static int64_t now_of(const engine *e) { return ct_now_ns() + e->o->clock_offset_ns; }

typedef struct due_list {
    Tower__V1__ViewItem **v;
    size_t n;
} due_list;

static int collect(void *ctx, const Tower__V1__ViewItem *it)
{
    due_list *l = ctx;
    /* Copied out: the item is borrowed from the read transaction. */
    size_t len = tower__v1__view_item__get_packed_size(it);
    uint8_t *buf = ct_malloc(len ? len : 1);
    tower__v1__view_item__pack(it, buf);
    Tower__V1__ViewItem *copy = tower__v1__view_item__unpack(NULL, len, buf);
    free(buf);
    if (!copy) return 0;
    l->v = ct_realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n++] = copy;
    return l->n >= MAX_DUES_PER_CYCLE;
}

static void due_list_free(due_list *l)
{
    for (size_t i = 0; i < l->n; i++) tower__v1__view_item__free_unpacked(l->v[i], NULL);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int open_store(engine *e)
{
    if (e->s && store_generation_changed(e->s)) {
        ct_log(CT_LOG_INFO, "sla", "the store was rebuilt; reopening %s", e->o->data_dir);
        store_close(e->s);
        e->s = NULL;
    }
    if (e->s) return 0;
    store_opts so = {.dir = e->o->data_dir, .read_only = 1, .sla_rules = sla_rules_fold(e->o->rules)};
    if (store_open(&e->s, &so) != CT_OK) {
        if (!e->store_missing_logged)
            ct_log(CT_LOG_WARN, "sla", "no store in %s yet: waiting for the projector", e->o->data_dir);
        e->store_missing_logged = 1;
        return -1;
    }
    e->store_missing_logged = 0;
    return 0;
}

typedef struct pub_ctx {
    engine *e;
    char **ids;
    size_t n;
    int failed;
} pub_ctx;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    pub_ctx *p = ctx;
    engine *e = p->e;
    if (tag >= p->n) return;
    switch (ack->result) {
    case BUS_PUB_STORED:
        e->fig->published++;
        ct_log(CT_LOG_INFO, "sla", "breach %s raised (stream sequence %" PRIu64 ")", p->ids[tag], ack->seq);
        json_object_set_new(e->acked, p->ids[tag], json_true());
        break;
    case BUS_PUB_DUPLICATE:
        e->fig->duplicates++;
        ct_log(CT_LOG_DEBUG, "sla", "breach %s was already raised", p->ids[tag]);
        json_object_set_new(e->acked, p->ids[tag], json_true());
        break;
    case BUS_PUB_FAILED:
        e->fig->publish_failures++;
        p->failed = 1;
        ct_log(CT_LOG_WARN, "sla", "breach %s not stored: %s (retried next cycle)", p->ids[tag], ack->error);
        break;
    }
}

/* Publish the breach of every overdue due; returns -1 if some could not be stored. */
static int breach_cycle(engine *e, int64_t now)
{
    due_list l = {0};
    store_reader *r = NULL;
    int rc = 0;
    if (store_reader_begin(e->s, &r) != CT_OK) return -1;
    store_dues_scan(r, now, collect, &l);
    int64_t next = 0;
    e->fig->next_due_ns = store_dues_next(r, &next) == CT_OK ? next : 0;
    store_reader_end(r);
    e->fig->overdue = l.n;

    pub_ctx p = {e, ct_calloc(l.n ? l.n : 1, sizeof(char *)), 0, 0};
    json_t *still = json_object();
    for (size_t i = 0; i < l.n; i++) {
        char id[EVT_MAX_EVENT_ID + 1];
        if (sla_breach_id(l.v[i], id) != 0) continue;
        if (json_object_get(e->acked, id)) {
            /* Stored already; the projector has not folded it yet. */
            json_object_set_new(still, id, json_true());
            continue;
        }
        evt_event *ev = NULL;
        evt_error err;
        if (sla_breach_event(l.v[i], &ev, &err) != CT_OK) {
            ct_log(CT_LOG_WARN, "sla", "cannot raise the breach of %s: %s", l.v[i]->key ? l.v[i]->key : "?", err.message);
            continue;
        }
        p.ids[p.n] = ct_strdup(id);
        if (bus_publish_event(e->b, ev, p.n) != CT_OK) {
            e->fig->publish_failures++;
            p.failed = 1;
            free(p.ids[p.n]);
        } else {
            p.n++;
        }
        evt_free(ev);
    }
    if (p.n) bus_publish_wait(e->b, 10000, on_ack, &p);
    /* Keep only the ids still listed as due: the rest were folded (or closed). */
    for (size_t i = 0; i < p.n; i++)
        if (json_object_get(e->acked, p.ids[i])) json_object_set_new(still, p.ids[i], json_true());
    json_decref(e->acked);
    e->acked = still;
    if (p.failed) rc = -1;
    ct_log(CT_LOG_DEBUG, "sla", "breach cycle done: %zu overdue, %zu raised now", l.n, p.n);
    for (size_t i = 0; i < p.n; i++) free(p.ids[i]);
    free(p.ids);
    due_list_free(&l);
    return rc;
}

/* ---- alerts ------------------------------------------------------------------------------- */

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
    (void)ptr;
    (void)ud;
    return size * n;
}

/* POST the alerts; 0 if Alertmanager took them (2xx). */
static int post(engine *e, const char *body)
{
    if (!e->curl) e->curl = curl_easy_init();
    if (!e->curl) return -1;
    const char *base = e->o->alertmanager;
    size_t n = strlen(base);
    char *url = ct_sprintf("%.*s/api/v2/alerts", (int)(n && base[n - 1] == '/' ? n - 1 : n), base);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = e->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(e->o->am_timeout_ms > 0 ? e->o->am_timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    CURLcode cc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    int rc = cc == CURLE_OK && code >= 200 && code < 300 ? 0 : -1;
    if (rc) {
        if (cc != CURLE_OK)
            ct_log(CT_LOG_WARN, "sla", "Alertmanager %s: %s", url, curl_easy_strerror(cc));
        else
            ct_log(CT_LOG_WARN, "sla", "Alertmanager %s answered HTTP %ld", url, code);
    }
    curl_slist_free_all(h);
    free(url);
    return rc;
}

typedef struct open_ctx {
    engine *e;
    const sla_alert_opts *ao;
    sla_alert_clock now;
    json_t *firing;   /* key -> alert */
    store_reader *r;
    json_t *channels; /* order id -> its channel, for this cycle (from e->channels or the store) */
} open_ctx;

/* The channel of the breach's order, when its rule has channel-scoped entries (NULL: unknown or
 * not needed). Known channels are kept from one cycle to the next for the orders still breaching. */
static const char *breach_channel(open_ctx *c, const Tower__V1__ViewItem *it)
{
    if (!it->order_id || !sla_rules_channel_scoped(c->ao->rules, it->rule)) return NULL;
    json_t *have = json_object_get(c->channels, it->order_id);
    if (!have) have = json_object_get(c->e->channels, it->order_id);
    if (!have) {
        json_t *o = NULL;
        if (store_entity_json(c->r, 'o', it->order_id, 0, &o) == CT_OK) {
            json_t *ch = json_object_get(o, "channel");
            if (json_is_string(ch)) have = json_string(json_string_value(ch));
            json_decref(o);
        }
        if (!have) return NULL; /* no orderCreated yet: unscoped entries */
        json_object_set_new(c->channels, it->order_id, have);
    } else {
        json_object_set(c->channels, it->order_id, have);
    }
    return json_string_value(have);
}

/* The breach's lifecycle as annotations (docs/exceptions.md): "assignee" when someone has it, and "state"
 * (open, acknowledged or snoozed at the engine's now). The item scanned is the breach's view item itself (the
 * one store_item_get gives for "o:<order>|sla_breaches|<rule>" or "s:<shipment>|..."), with the actions folded
 * in. An acknowledged or snoozed breach still fires: a breach is a breach; a resolved one has left the view. */
static void lifecycle_annotations(json_t *alert, const Tower__V1__ViewItem *it, int64_t business_ns)
{
    json_t *ann = json_object_get(alert, "annotations");
    if (!ann) return;
    if (it->assignee && *it->assignee) json_object_set_new(ann, "assignee", json_string(it->assignee));
    json_object_set_new(ann, "state", json_string(store_item_state(it, business_ns)));
}

/* An at_risk item: a TowerOrderAtRisk alert with the risk severity. */
static int on_at_risk(void *ctx, const Tower__V1__ViewItem *it)
{
    open_ctx *c = ctx;
    if (!it->key) return 0;
    const char *sev = c->e->o->risk ? c->e->o->risk->severity : NULL;
    json_t *a = sla_risk_alert_json(it, c->ao, &c->now, sev);
    lifecycle_annotations(a, it, c->now.business_ns);
    json_object_set_new(c->firing, it->key, a);
    return json_object_size(c->firing) >= MAX_ALERTS;
}

static int on_breach(void *ctx, const Tower__V1__ViewItem *it)
{
    open_ctx *c = ctx;
    if (!it->key) return 0;
    json_t *a = sla_alert_json(it, c->ao, &c->now, 0, breach_channel(c, it));
    lifecycle_annotations(a, it, c->now.business_ns);
    json_object_set_new(c->firing, it->key, a);
    return json_object_size(c->firing) >= MAX_ALERTS;
}

/* An annotation's value, or "" when absent. */
static const char *annotation(json_t *alert, const char *name)
{
    const char *v = json_string_value(json_object_get(json_object_get(alert, "annotations"), name));
    return v ? v : "";
}

/* The same breaches, each with the same assignee and state: nothing new to tell Alertmanager before the
 * re-send (an acknowledgement, an assignment or a snooze is posted at once, not at the next re-send). */
static int same_alerts(json_t *a, json_t *b)
{
    if (json_object_size(a) != json_object_size(b)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v)
    {
        json_t *w = json_object_get(b, k);
        if (!w || strcmp(annotation(v, "assignee"), annotation(w, "assignee")) != 0 ||
            strcmp(annotation(v, "state"), annotation(w, "state")) != 0)
            return 0;
    }
    return 1;
}

static void alert_cycle(engine *e)
{
    /* Alertmanager's time is the wall clock, not the engine's (warped, shifted) business clock: see
       sla_alert_clock. Both are read here, together, once per cycle. */
    int64_t mono = ct_mono_ns(), wall = ct_wall_ns();
    sla_alert_clock now = {wall, now_of(e), ct_clock_factor()};
    sla_alert_opts ao = {e->o->rules, e->o->link_base, e->o->resend_ns};
    open_ctx c = {e, &ao, now, json_object(), NULL, json_object()};
    if (store_reader_begin(e->s, &c.r) != CT_OK) {
        json_decref(c.firing);
        json_decref(c.channels);
        return;
    }
    store_query q = {.view = FOLD_VIEW_SLA_BREACHES};
    ct_status st = store_view_scan(c.r, &q, on_breach, &c, NULL);
    if (st == CT_OK && (!e->o->risk || e->o->risk->enabled)) {
        store_query rq = {.view = FOLD_VIEW_AT_RISK};
        st = store_view_scan(c.r, &rq, on_at_risk, &c, NULL);
    }
    store_reader_end(c.r);
    json_decref(e->channels);
    e->channels = c.channels; /* only the orders breaching now */
    if (st != CT_OK) {
        json_decref(c.firing);
        return;
    }
    int changed = !same_alerts(c.firing, e->sent);
    int due = changed || mono >= e->next_resend_mono;
    if (!due || (!json_object_size(c.firing) && !json_object_size(e->sent)) || mono < e->next_attempt_mono) {
        json_decref(c.firing);
        return;
    }
    if (e->breaker_until_mono && mono < e->breaker_until_mono) {
        json_decref(c.firing);
        return;
    }
    /* Open breaches fire; those delivered as firing that are no longer open are resolved now. */
    json_t *body = json_array();
    const char *k;
    json_t *v;
    json_object_foreach(c.firing, k, v) json_array_append(body, v);
    size_t resolved = 0;
    json_object_foreach(e->sent, k, v)
    {
        if (json_object_get(c.firing, k)) continue;
        json_t *a = json_deep_copy(v);
        char ends[48];
        /* endsAt the wall clock now, but never before startsAt (Alertmanager refuses that). startsAt
           was a wall-clock instant no later than the post that sent it, so this is a guard only. */
        int64_t s = 0;
        int32_t ns = 0;
        const char *starts = json_string_value(json_object_get(a, "startsAt"));
        int64_t at = wall;
        if (starts && evt_time_parse(starts, &s, &ns) == 0 && s * SEC + ns > at) at = s * SEC + ns;
        evt_time_format(at / SEC, (int32_t)(at % SEC), ends);
        json_object_set_new(a, "endsAt", json_string(ends));
        json_array_append_new(body, a);
        resolved++;
    }
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int ok = txt && post(e, txt) == 0;
    free(txt);
    if (ok) {
        if (e->breaker_until_mono || e->failures)
            ct_log(CT_LOG_INFO, "sla", "Alertmanager %s is back: alerts delivered", e->o->alertmanager);
        ct_log(CT_LOG_DEBUG, "sla", "posted %zu firing and %zu resolved alerts", json_object_size(c.firing), resolved);
        json_decref(e->sent);
        e->sent = c.firing;
        c.firing = NULL;
        e->failures = 0;
        e->breaker_until_mono = 0;
        e->fig->breaker_open = 0;
        e->next_attempt_mono = 0;
        e->next_resend_mono = mono + (e->o->resend_ns > 0 ? e->o->resend_ns : 60 * SEC);
        e->fig->alert_posts++;
        e->fig->alerts_firing = json_object_size(e->sent);
    } else {
        e->failures++;
        e->fig->alert_failures++;
        int64_t cap = e->o->backoff_cap_ns > 0 ? e->o->backoff_cap_ns : 30 * SEC;
        e->next_attempt_mono = mono + sla_backoff_ns(e->failures, SEC / 2, cap);
        unsigned limit = e->o->breaker_failures ? e->o->breaker_failures : 5;
        if (e->failures >= limit) {
            int64_t open = e->o->breaker_open_ns > 0 ? e->o->breaker_open_ns : 60 * SEC;
            if (!e->fig->breaker_open)
                ct_log(CT_LOG_WARN, "sla", "Alertmanager failed %u times in a row: circuit open for %llds, then one trial",
                       e->failures, (long long)(open / SEC));
            e->breaker_until_mono = mono + open;
            e->fig->breaker_open = 1;
        }
    }
    json_decref(c.firing);
}

/* ---- the figures in /metrics ------------------------------------------------------------------- */

void sla_engine_metrics(ct_buf *b, const sla_engine_figures *f)
{
    ct_metrics_family(b, "tower_sla_alertmanager_posts_total", "counter",
                      "Posts of alerts to Alertmanager by the SLA engine, by result.");
    ct_buf_addf(b, "tower_sla_alertmanager_posts_total{result=\"ok\"} %llu\n",
                (unsigned long long)atomic_load_explicit(&f->alert_posts, memory_order_relaxed));
    ct_buf_addf(b, "tower_sla_alertmanager_posts_total{result=\"error\"} %llu\n",
                (unsigned long long)atomic_load_explicit(&f->alert_failures, memory_order_relaxed));
    ct_metrics_family(b, "tower_sla_alerts_firing", "gauge", "SLA alerts firing as last delivered to Alertmanager.");
    ct_buf_addf(b, "tower_sla_alerts_firing %llu\n",
                (unsigned long long)atomic_load_explicit(&f->alerts_firing, memory_order_relaxed));
    ct_metrics_family(b, "tower_sla_alertmanager_circuit_open", "gauge",
                      "1 while the circuit breaker to Alertmanager is open (posts paused).");
    ct_buf_addf(b, "tower_sla_alertmanager_circuit_open %d\n", atomic_load_explicit(&f->breaker_open, memory_order_relaxed));
}

/* ---- the loop ---------------------------------------------------------------------------------- */

int sla_engine_run(bus *b, const sla_engine_opts *o, volatile sig_atomic_t *stop, sla_engine_figures *fig)
{
    sla_engine_figures local = {0};
    engine e = {0};
    e.o = o;
    e.b = b;
    e.fig = fig ? fig : &local;
    e.acked = json_object();
    e.sent = json_object();
    e.channels = json_object();
    e.risk = sla_risk_runner_new(o->risk);
    e.alerting = o->alertmanager && *o->alertmanager;
    int rc = 0;
    if (e.alerting) curl_global_init(CURL_GLOBAL_DEFAULT);
    int64_t poll = o->poll_ns > 0 ? o->poll_ns : SEC;

    while (!*stop) {
        if (open_store(&e) != 0) {
            if (o->once) {
                rc = 1;
                break;
            }
        } else {
            int64_t now = now_of(&e);
            if (breach_cycle(&e, now) != 0 && o->once) rc = 1;
            if (o->once || ct_mono_ns() >= e.next_risk_mono) {
                if (sla_risk_cycle(e.risk, b, e.s, now, e.fig) != 0 && o->once) rc = 1;
                e.next_risk_mono = ct_mono_ns() + (o->risk_every_ns > 0 ? o->risk_every_ns : 5 * SEC);
            }
            if (e.alerting) alert_cycle(&e);
        }
        if (o->once) break;
        /* Sleep until the next due (in real time: the clock may run warped) or the next poll. A due
         * already past was handled by this cycle (its breach waits for the projector to fold it):
         * it is looked at again at the next poll, not at once (that spun a core while the projector
         * was behind or stopped). */
        int64_t wait = poll;
        if (e.fig->next_due_ns) {
            double factor = ct_clock_factor() > 0 ? ct_clock_factor() : 1.0;
            int64_t until = (int64_t)((double)(e.fig->next_due_ns - now_of(&e)) / factor);
            if (until > 0 && until < wait) wait = until;
        }
        int64_t end = ct_mono_ns() + wait;
        while (!*stop && ct_mono_ns() < end) {
            int64_t left = end - ct_mono_ns();
            usleep((useconds_t)((left > 100000000LL ? 100000000LL : left > 0 ? left : 0) / 1000));
        }
    }
    if (e.curl) curl_easy_cleanup(e.curl);
    if (e.alerting) curl_global_cleanup();
    json_decref(e.acked);
    json_decref(e.sent);
    json_decref(e.channels);
    sla_risk_runner_free(e.risk);
    store_close(e.s);
    return rc;
}
