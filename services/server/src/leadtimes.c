/* GET /api/v1/leadtimes: the lead-time statistics the store keeps for predicted risk (docs/risk.md), per
 * (stage, warehouse) and (stage, warehouse, carrier), over a window of business days ending now (or at=). */
#include "leadtimes.h"
#include "server_int.h"
#include "store_risk.h"
#include "ct_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEADTIMES_MAX_KEYS 5000

static int bad(server_query_err *err, const char *field, const char *msg)
{
    err->status = 400;
    err->code = "INVALID_PARAMETER";
    err->field = field;
    snprintf(err->message, sizeof err->message, "%s", msg);
    return -1;
}

/* An id filter: absent, or 1..RISK_ID_MAX bytes. */
static int id_param(const char *qs, const char *name, char *out, server_query_err *err)
{
    int got = server_query_var(qs, name, out, RISK_ID_MAX + 1);
    if (got == -1 || got == -2 || (got > 0 && !*out)) {
        char m[120];
        snprintf(m, sizeof m, "%s must be an id of 1 to %d bytes", name, RISK_ID_MAX);
        return bad(err, name, m);
    }
    return 0;
}

static int int_param(const char *qs, const char *name, int lo, int hi, int *out, server_query_err *err)
{
    char buf[16], m[120];
    int64_t v = 0;
    int got = server_query_var(qs, name, buf, sizeof buf);
    if (got == 0) return 0;
    snprintf(m, sizeof m, "%s must be an integer from %d to %d", name, lo, hi);
    if (got < 0 || ct_parse_int(buf, &v) != 0 || v < lo || v > hi) return bad(err, name, m);
    *out = (int)v;
    return 0;
}

int server__leadtimes_params(const char *qs, leadtimes_params *p, server_query_err *err)
{
    memset(p, 0, sizeof *p);
    memset(err, 0, sizeof *err);
    p->stage = -1;
    p->percentile = 50;
    p->window_days = 7;
    char buf[48];
    if (id_param(qs, "warehouse", p->warehouse, err) || id_param(qs, "carrier", p->carrier, err)) return -1;
    int got = server_query_var(qs, "stage", buf, sizeof buf);
    if (got < 0 || (got > 0 && (p->stage = risk_stage_parse(buf)) < 0))
        return bad(err, "stage",
                   "stage must be one of CREATED, APPROVED, RELEASED, PICKING, PACKED, READY, ROUTED, SHIPPED");
    if (int_param(qs, "percentile", 50, 99, &p->percentile, err) ||
        int_param(qs, "window", 1, RISK_MAX_WINDOW_DAYS, &p->window_days, err))
        return -1;
    got = server_query_var(qs, "at", buf, sizeof buf);
    if (got) {
        int64_t sec;
        int32_t ns;
        if (got < 0 || evt_time_parse(buf, &sec, &ns) != 0 || sec < EVT_MIN_SECONDS || sec >= EVT_END_SECONDS)
            return bad(err, "at", "at must be an RFC 3339 time in 2000-2099");
        p->at_s = sec;
    }
    return 0;
}

typedef struct lt_ctx {
    const leadtimes_params *p;
    json_t *keys;
    int truncated;
} lt_ctx;

static json_t *pct(const risk_hist *h, int p)
{
    uint32_t used = 0;
    int64_t v = risk_hist_percentile(h, p, -1, &used);
    return v < 0 ? json_null() : json_integer(v);
}

static int on_key(void *ctx, const store_risk_key *k)
{
    lt_ctx *c = ctx;
    const leadtimes_params *p = c->p;
    if (p->stage >= 0 && (int)k->stage != p->stage) return 0;
    if (p->warehouse[0] && strcmp(p->warehouse, k->warehouse) != 0) return 0;
    if (p->carrier[0] && strcmp(p->carrier, k->carrier) != 0) return 0;
    if (json_array_size(c->keys) >= LEADTIMES_MAX_KEYS) {
        c->truncated = 1;
        return 1;
    }
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_string(risk_stage_name(k->stage)));
    json_object_set_new(o, "warehouseId", json_string(k->warehouse));
    json_object_set_new(o, "carrierId", *k->carrier ? json_string(k->carrier) : json_null());
    json_object_set_new(o, "samples", json_integer(k->hist->n));
    json_object_set_new(o, "p50Seconds", pct(k->hist, 50));
    json_object_set_new(o, "p80Seconds", pct(k->hist, 80));
    json_object_set_new(o, "p95Seconds", pct(k->hist, 95));
    json_object_set_new(o, "percentileSeconds", pct(k->hist, p->percentile));
    json_array_append_new(c->keys, o);
    return 0;
}

int server__leadtimes(struct mg_connection *c, http_server *s, const char *qs)
{
    leadtimes_params p;
    server_query_err err;
    if (server__leadtimes_params(qs, &p, &err) != 0)
        return server__error(c, s, SERVER_ROUTE_LEADTIMES, err.status, err.code, err.field, "%s", err.message);
    int64_t now = p.at_s ? p.at_s : ct_now_ns() / 1000000000LL;
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, SERVER_ROUTE_LEADTIMES, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    lt_ctx lc = {&p, json_array(), 0};
    ct_status st = store_risk_keys(r, now, p.window_days, on_key, &lc);
    server__end(s, r);
    if (st != CT_OK) {
        json_decref(lc.keys);
        return server__error(c, s, SERVER_ROUTE_LEADTIMES, 500, "STORE_ERROR", NULL, "the statistics could not be read");
    }
    json_t *body = json_object();
    server__now_json(body, now * 1000000000LL);
    json_object_set_new(body, "windowDays", json_integer(p.window_days));
    json_object_set_new(body, "percentile", json_integer(p.percentile));
    json_object_set_new(body, "keys", lc.keys);
    json_object_set_new(body, "truncated", json_boolean(lc.truncated));
    return server__json(c, s, SERVER_ROUTE_LEADTIMES, 200, body);
}

/* ---- /metrics: tower_orders_at_risk ---- */

typedef struct risk_rows {
    ct_buf *b;
    uint64_t sum;
} risk_rows;

static void at_risk_row(void *ctx, const char *id, uint64_t n)
{
    risk_rows *rr = ctx;
    ct_buf_adds(rr->b, "tower_orders_at_risk{warehouse=\"");
    for (const char *p = id; *p; p++) {
        if (*p == '\\' || *p == '"') ct_buf_addc(rr->b, '\\');
        if (*p == '\n') ct_buf_adds(rr->b, "\\n");
        else ct_buf_addc(rr->b, *p);
    }
    ct_buf_addf(rr->b, "\"} %llu\n", (unsigned long long)n);
    rr->sum += n;
}

void server__risk_metrics(ct_buf *b, store_reader *r)
{
    risk_rows rr = {b, 0};
    store_reader_breakdown(r, FOLD_VIEW_AT_RISK, 'w', at_risk_row, &rr);
    uint64_t total = store_reader_count(r, FOLD_VIEW_AT_RISK);
    if (total > rr.sum || !rr.sum)
        ct_buf_addf(b, "tower_orders_at_risk{warehouse=\"\"} %llu\n", (unsigned long long)(total - rr.sum));
}
