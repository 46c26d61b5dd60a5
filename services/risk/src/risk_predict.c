/* The prediction for an open order, its fallback, and the per-order hysteresis. */
#include "risk.h"
#include "risk_int.h"

#include <stdio.h>
#include <string.h>

void risk_fallback_from_sla(int64_t approve, int64_t release, int64_t readiness, int64_t routing,
                            int64_t dispatch, int64_t transit, int64_t out[RISK_STAGE_COUNT])
{
    out[RISK_SHIPPED] = transit;
    out[RISK_ROUTED] = dispatch + transit;
    out[RISK_READY] = routing + out[RISK_ROUTED];
    out[RISK_PACKED] = readiness + out[RISK_READY];
    out[RISK_PICKING] = readiness + out[RISK_READY];
    out[RISK_RELEASED] = readiness + out[RISK_READY];
    out[RISK_APPROVED] = release + out[RISK_RELEASED];
    out[RISK_CREATED] = approve + out[RISK_APPROVED];
}

void risk_config_default(risk_config *c)
{
    memset(c, 0, sizeof *c);
    c->percentile = 50; /* the backtest's best trade-off; see docs/risk.md */
    c->min_samples = 20;
    risk_fallback_from_sla(0, 15 * 60, 4 * 3600, 3600, 2 * 3600, 24 * 3600, c->fallback);
}

const char *risk_config_check(const risk_config *c)
{
    if (c->percentile < 50 || c->percentile > 99) return "percentile: must be 50..99";
    if (c->min_samples < 1) return "min_samples: must be at least 1";
    for (int s = 0; s < RISK_STAGE_COUNT; s++)
        if (c->fallback[s] < 0) return "fallback: a stage's time must not be negative";
    return NULL;
}

static const char *where(const char *wh)
{
    return wh && *wh ? wh : "(unknown warehouse)";
}

/* Answer from one key's window if it has enough samples; 1 when it did. */
static int from_key(const risk_hist *h, const risk_config *c, const risk_query *q, int64_t spent,
                    risk_prediction *out)
{
    if (h->n < c->min_samples) return 0;
    uint32_t used = 0;
    int64_t p = risk_hist_percentile(h, c->percentile, spent, &used);
    int64_t remaining;
    if (p >= 0 && used >= c->min_samples) {
        remaining = p > spent ? p - spent : 0;
    } else { /* it has waited longer than nearly all: count the whole lead time from now */
        remaining = risk_hist_percentile(h, c->percentile, -1, &used);
    }
    out->remaining = remaining;
    out->samples = used;
    out->expected = q->now + remaining;
    return 1;
}

static void fallback(const risk_config *c, const risk_query *q, int64_t spent, uint32_t seen,
                     risk_prediction *out)
{
    int64_t f = c->fallback[q->stage];
    out->remaining = f > spent ? f - spent : 0;
    out->expected = q->now + out->remaining;
    out->samples = 0;
    out->level = RISK_LEVEL_FALLBACK;
    snprintf(out->basis, sizeof out->basis, "SLA windows from %s (%u orders at %s, fewer than %u)",
             risk_stage_name(q->stage), seen, where(q->warehouse), c->min_samples);
}

static int check_query(const risk_config *c, const risk_query *q, char *err, size_t errlen)
{
    const char *bad = risk_config_check(c);
    if (bad) {
        risk__set_err(err, errlen, "config: %s", bad);
        return -1;
    }
    if ((unsigned)q->stage >= RISK_STAGE_COUNT) {
        risk__set_err(err, errlen, "stage: %d is not a stage an open order waits in", (int)q->stage);
        return -1;
    }
    if (q->now <= 0) {
        risk__set_err(err, errlen, "now: must be a time after 1970");
        return -1;
    }
    if ((q->warehouse && strlen(q->warehouse) > RISK_ID_MAX) || (q->carrier && strlen(q->carrier) > RISK_ID_MAX)) {
        risk__set_err(err, errlen, "%s: longer than %d characters",
                q->warehouse && strlen(q->warehouse) > RISK_ID_MAX ? "warehouse" : "carrier", RISK_ID_MAX);
        return -1;
    }
    return 0;
}

int risk_predict_hist(const risk_hist *carrier_h, const risk_hist *warehouse_h, const risk_config *c,
                      const risk_query *q, risk_prediction *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (check_query(c, q, err, errlen) != 0) return -1;
    int64_t spent = q->entered_at > 0 && q->entered_at < q->now ? q->now - q->entered_at : 0;
    const char *stage = risk_stage_name(q->stage);
    if (carrier_h && q->carrier && *q->carrier && from_key(carrier_h, c, q, spent, out)) {
        out->level = RISK_LEVEL_CARRIER;
        snprintf(out->basis, sizeof out->basis, "p%d of %u orders from %s at %s via %s", c->percentile,
                 out->samples, stage, where(q->warehouse), q->carrier);
    } else if (warehouse_h && from_key(warehouse_h, c, q, spent, out)) {
        out->level = RISK_LEVEL_WAREHOUSE;
        snprintf(out->basis, sizeof out->basis, "p%d of %u orders from %s at %s", c->percentile, out->samples,
                 stage, where(q->warehouse));
    } else {
        fallback(c, q, spent, warehouse_h ? warehouse_h->n : 0, out);
    }
    out->slack = q->promised_by - out->expected;
    return 0;
}

int risk_predict(const risk_stats *st, const risk_config *c, const risk_query *q, risk_prediction *out,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (check_query(c, q, err, errlen) != 0) return -1;
    static const risk_hist empty;
    risk_hist hc = empty, hw;
    int with_carrier = q->carrier && *q->carrier;
    if (with_carrier) risk_stats_window(st, q->stage, q->warehouse, q->carrier, q->now, &hc);
    risk_stats_window(st, q->stage, q->warehouse, NULL, q->now, &hw);
    return risk_predict_hist(with_carrier ? &hc : NULL, &hw, c, q, out, err, errlen);
}

void risk_hyst_config_default(risk_hyst_config *c)
{
    c->raise_below = -90 * 60;
    c->clear_above = -30 * 60;
    c->min_dwell = 3600;
    c->confirm = 90 * 60;
}

const char *risk_hyst_config_check(const risk_hyst_config *c)
{
    if (c->clear_above <= c->raise_below) return "clear_above: must be greater than raise_below";
    if (c->min_dwell < 0) return "min_dwell: must not be negative";
    if (c->confirm < 0) return "confirm: must not be negative";
    return NULL;
}

risk_change risk_hyst_step(risk_hyst *h, const risk_hyst_config *c, int64_t now, int64_t slack)
{
    if (h->closed) return RISK_NO_CHANGE;
    int want_raise = !h->at_risk && slack < c->raise_below;
    if (!want_raise) h->pending_since = 0;
    else if (!h->pending_since) h->pending_since = now;
    if (h->changed && now - h->changed_at < c->min_dwell) return RISK_NO_CHANGE;
    risk_change ch = RISK_NO_CHANGE;
    if (want_raise && now - h->pending_since >= c->confirm) ch = RISK_RAISE;
    else if (h->at_risk && slack > c->clear_above) ch = RISK_CLEAR;
    if (ch != RISK_NO_CHANGE) {
        h->at_risk = ch == RISK_RAISE;
        h->changed = 1;
        h->changed_at = now;
        h->pending_since = 0;
    }
    return ch;
}

void risk_hyst_close(risk_hyst *h)
{
    h->closed = 1;
    h->at_risk = 0;
}
