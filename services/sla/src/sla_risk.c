/* Predicted risk in the SLA engine, the pure part: options, the decision per order, its event and alert. */
#include "sla_risk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL

void sla_risk_opts_default(sla_risk_opts *o)
{
    memset(o, 0, sizeof *o);
    o->enabled = 1;
    o->window_days = 7;
    risk_config_default(&o->cfg);
    risk_hyst_config_default(&o->hyst);
    o->severity = "warning";
}

static int severity_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 32) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

int sla_risk_opts_config(const ct_config *c, sla_risk_opts *o, char *err, size_t errlen)
{
    sla_risk_opts_default(o);
    o->enabled = ct_config_bool(c, "risk");
    int64_t pct = ct_config_int(c, "risk-percentile"), win = ct_config_duration_ns(c, "risk-window");
    int64_t minn = ct_config_int(c, "risk-min-samples");
    if (win % (86400 * SEC) || win < 86400 * SEC || win > RISK_MAX_WINDOW_DAYS * 86400 * SEC)
        return snprintf(err, errlen, "--risk-window: whole days from 1d to %dd", RISK_MAX_WINDOW_DAYS), -1;
    if (minn < 1 || minn > 1000000) return snprintf(err, errlen, "--risk-min-samples: 1 to 1000000"), -1;
    o->window_days = (int)(win / (86400 * SEC));
    o->cfg.percentile = pct > 100 ? 101 : (int)pct;
    o->cfg.min_samples = (uint32_t)minn;
    o->hyst.raise_below = -ct_config_duration_ns(c, "risk-raise-late") / SEC;
    o->hyst.clear_above = -ct_config_duration_ns(c, "risk-clear-late") / SEC;
    o->hyst.confirm = ct_config_duration_ns(c, "risk-confirm") / SEC;
    o->hyst.min_dwell = ct_config_duration_ns(c, "risk-dwell") / SEC;
    o->severity = ct_config_str(c, "risk-severity");
    const char *why = risk_config_check(&o->cfg);
    if (why) return snprintf(err, errlen, "--risk-percentile / --risk-min-samples: %s", why), -1;
    if (o->hyst.clear_above <= o->hyst.raise_below)
        return snprintf(err, errlen, "--risk-clear-late must be shorter than --risk-raise-late"), -1;
    why = risk_hyst_config_check(&o->hyst);
    if (why) return snprintf(err, errlen, "--risk-raise-late / --risk-clear-late / --risk-dwell: %s", why), -1;
    if (!severity_ok(o->severity)) return snprintf(err, errlen, "--risk-severity: letters, digits, _ and - only"), -1;
    return 0;
}

static int predict_at(const store_risk_open *o, const sla_risk_windows *w, const sla_risk_opts *opts, int64_t now,
                      risk_prediction *pred, char *err, size_t errlen)
{
    risk_query q = {o->stage, o->entered_at, o->warehouse, o->carrier, o->promised_by, now};
    return risk_predict_hist(o->carrier && *o->carrier ? w->carrier : NULL, w->warehouse, &opts->cfg, &q, pred, err,
                             errlen);
}

int sla_risk_decide(const store_risk_open *o, const sla_risk_windows *w, const sla_risk_opts *opts, int64_t now_s,
                    int64_t *pending_since, risk_prediction *pred, char *err, size_t errlen)
{
    if (predict_at(o, w, opts, now_s, pred, err, errlen) != 0) return -1;
    risk_hyst h = {o->at_risk, 0, o->changes > 0, o->changed_at, *pending_since > 0 ? *pending_since : 0};
    if (*pending_since < 0 && !o->at_risk && pred->slack < opts->hyst.raise_below) {
        /* Nothing remembered: was it predicted late as of the start of the confirm period too? */
        int64_t back = now_s - opts->hyst.confirm;
        if (o->entered_at > back) back = o->entered_at;
        risk_prediction then;
        char e2[64];
        if (back > 0 && back < now_s && predict_at(o, w, opts, back, &then, e2, sizeof e2) == 0 &&
            then.slack < opts->hyst.raise_below)
            h.pending_since = back;
    }
    risk_change ch = risk_hyst_step(&h, &opts->hyst, now_s, pred->slack);
    *pending_since = h.pending_since;
    return (int)ch;
}

int sla_risk_event_id(const char *order_id, uint32_t n, char *out)
{
    int k = snprintf(out, EVT_MAX_EVENT_ID + 1, "risk-%s-%u", order_id ? order_id : "", n);
    return !order_id || !*order_id || k < 0 || k > EVT_MAX_EVENT_ID ? -1 : 0;
}

static void set_time(json_t *o, const char *k, int64_t s)
{
    char buf[48];
    evt_time_format(s, 0, buf);
    json_object_set_new(o, k, json_string(buf));
}

ct_status sla_risk_event(const store_risk_open *o, int raise, const risk_prediction *pred, int64_t now_s,
                         evt_event **out, evt_error *err)
{
    char id[EVT_MAX_EVENT_ID + 1];
    memset(err, 0, sizeof *err);
    if (sla_risk_event_id(o->order_id, o->changes + 1, id) != 0) {
        err->code = EVT_INVALID_VALUE;
        snprintf(err->message, sizeof err->message, "orderId: too long for a risk event id");
        return CT_INVALID;
    }
    json_t *e = json_object(), *src = json_object(), *p = json_object();
    json_object_set_new(e, "eventId", json_string(id));
    set_time(e, "occurredAt", now_s);
    json_object_set_new(src, "system", json_string("tower"));
    json_object_set_new(src, "instance", json_string("sla"));
    json_object_set_new(e, "source", src);
    json_object_set_new(e, "orderId", json_string(o->order_id));
    set_time(p, "predictedBy", pred->expected);
    if (o->promised_by > 0) set_time(p, "promisedBy", o->promised_by);
    json_object_set_new(p, "stage", json_string(risk_stage_name(o->stage)));
    json_object_set_new(p, "basis", json_string(pred->basis));
    json_object_set_new(e, raise ? "orderAtRisk" : "orderBackOnTrack", p);
    ct_status st = evt_from_json(out, e, err);
    json_decref(e);
    return st;
}

/* "14:20", or "Dec 7 14:20" when not on ref's UTC day. */
static void hm(const Tower__V1__Timestamp *t, int64_t ref, char *out, size_t cap)
{
    if (!t) {
        snprintf(out, cap, "?");
        return;
    }
    char buf[48];
    evt_time_format(t->seconds, 0, buf); /* 2026-12-07T14:20:00Z */
    if (t->seconds / 86400 == ref / 86400) snprintf(out, cap, "%.5s", buf + 11);
    else snprintf(out, cap, "%.10s %.5s", buf, buf + 11);
}

void sla_risk_line(const Tower__V1__ViewItem *it, char *out, size_t cap)
{
    char exp[32], prom[32];
    int64_t ref = it->promised_by ? it->promised_by->seconds : it->predicted_by ? it->predicted_by->seconds : 0;
    hm(it->predicted_by, ref, exp, sizeof exp);
    hm(it->promised_by, ref, prom, sizeof prom);
    snprintf(out, cap, "expected %s, promised %s, waiting in %s%s%s", exp, prom, it->stage ? it->stage : "?",
             it->warehouse_id ? " at " : "", it->warehouse_id ? it->warehouse_id : "");
}

static void label(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

static void ns_str(int64_t ns, char *buf)
{
    evt_time_format(ns / SEC, (int32_t)(ns % SEC), buf);
}

static void links(json_t *a, json_t *ann, const char *base, const char *order_id)
{
    if (!base || !*base || !order_id) return;
    size_t n = strlen(base);
    int bl = (int)(n && base[n - 1] == '/' ? n - 1 : n);
    char *url = ct_sprintf("%.*s/#/order/%s", bl, base, order_id);
    json_object_set_new(ann, "dashboard", json_string(url));
    json_object_set_new(a, "generatorURL", json_string(url));
    free(url);
    url = ct_sprintf("%.*s/#/runbook?view=at_risk", bl, base);
    json_object_set_new(ann, "runbook_url", json_string(url));
    free(url);
}

json_t *sla_risk_alert_json(const Tower__V1__ViewItem *it, const sla_alert_opts *o, const sla_alert_clock *now,
                            const char *severity)
{
    json_t *a = json_object(), *labels = json_object(), *ann = json_object();
    label(labels, "alertname", "TowerOrderAtRisk");
    label(labels, "severity", severity && *severity ? severity : "warning");
    label(labels, "warehouse", it->warehouse_id);
    label(labels, "carrier", it->carrier_id);
    label(labels, "stage", it->stage);
    label(labels, "order_id", it->order_id);
    json_object_set_new(a, "labels", labels);
    int64_t since_ns = it->since ? it->since->seconds * SEC + it->since->nanos : now->business_ns;
    int64_t starts = sla_alert_wall_of(now, since_ns);
    int64_t resend = o->resend_ns > 0 ? o->resend_ns : 60 * SEC;
    char s1[48], s2[48], line[200];
    ns_str(starts, s1);
    ns_str(now->wall_ns + 4 * resend, s2);
    json_object_set_new(a, "startsAt", json_string(s1));
    json_object_set_new(a, "endsAt", json_string(s2));
    sla_risk_line(it, line, sizeof line);
    char *summary = ct_sprintf("Order %s at risk: %s", it->order_id ? it->order_id : "?", line);
    json_object_set_new(ann, "summary", json_string(summary));
    free(summary);
    if (it->basis) json_object_set_new(ann, "basis", json_string(it->basis));
    const Tower__V1__Timestamp *times[2] = {it->predicted_by, it->promised_by};
    static const char *const names[2] = {"predictedBy", "promisedBy"};
    for (int i = 0; i < 2; i++) {
        if (!times[i]) continue;
        ns_str(times[i]->seconds * SEC, s1);
        json_object_set_new(ann, names[i], json_string(s1));
    }
    links(a, ann, o->link_base, it->order_id);
    json_object_set_new(a, "annotations", ann);
    return a;
}
