/* SLA evaluation, pure: is a due overdue at "now", its breach event and id, and the alerts of open breaches. */
#include "sla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t ts_ns(const Tower__V1__Timestamp *t) { return t->seconds * 1000000000LL + t->nanos; }

int sla_due_overdue(const Tower__V1__ViewItem *due, int64_t now_ns)
{
    return due && due->since && ts_ns(due->since) <= now_ns;
}

/* The entity of a due: its shipment for a shipment's due (key "s:..."), else its order. */
static int due_entity(const Tower__V1__ViewItem *d, char *kind, const char **id)
{
    int ship = d->key && d->key[0] == 's';
    *kind = ship ? 's' : 'o';
    *id = ship ? d->shipment_id : d->order_id;
    return *id && **id ? 0 : -1;
}

int sla_breach_id(const Tower__V1__ViewItem *due, char *out)
{
    char kind;
    const char *id;
    if (!due->rule || !*due->rule || !due->since || due_entity(due, &kind, &id) != 0) return -1;
    int n = snprintf(out, EVT_MAX_EVENT_ID + 1, "sla-%s-%c-%s-%lld", due->rule, kind, id,
                     (long long)due->since->seconds);
    return n < 0 || n > EVT_MAX_EVENT_ID ? -1 : 0;
}

static void time_str(const Tower__V1__Timestamp *t, char *buf) { evt_time_format(t->seconds, t->nanos, buf); }

ct_status sla_breach_event(const Tower__V1__ViewItem *due, evt_event **out, evt_error *err)
{
    char id[EVT_MAX_EVENT_ID + 1], when[48];
    memset(err, 0, sizeof *err);
    char kind;
    const char *eid;
    if (sla_breach_id(due, id) != 0 || due_entity(due, &kind, &eid) != 0) {
        err->code = EVT_MISSING_FIELD;
        snprintf(err->message, sizeof err->message, "the due %s lacks a rule, an entity or a time",
                 due->key ? due->key : "(no key)");
        return CT_INVALID;
    }
    time_str(due->since, when);
    json_t *e = json_object(), *src = json_object(), *p = json_object();
    json_object_set_new(e, "eventId", json_string(id));
    /* occurredAt is the due time, not "now": every copy of this breach, whoever raises it, is equal. */
    json_object_set_new(e, "occurredAt", json_string(when));
    json_object_set_new(src, "system", json_string("tower"));
    json_object_set_new(src, "instance", json_string("sla"));
    json_object_set_new(e, "source", src);
    if (kind == 'o') json_object_set_new(e, "orderId", json_string(eid));
    else json_object_set_new(e, "shipmentId", json_string(eid));
    json_object_set_new(p, "rule", json_string(due->rule));
    json_object_set_new(p, "dueAt", json_string(when));
    if (due->warehouse_id && *due->warehouse_id) json_object_set_new(p, "warehouseId", json_string(due->warehouse_id));
    if (due->carrier_id && *due->carrier_id) json_object_set_new(p, "carrierId", json_string(due->carrier_id));
    json_object_set_new(e, "slaBreached", p);
    ct_status st = evt_from_json(out, e, err);
    json_decref(e);
    return st;
}

int64_t sla_backoff_ns(unsigned failures, int64_t base_ns, int64_t cap_ns)
{
    if (!failures) return 0;
    int64_t d = base_ns;
    for (unsigned i = 1; i < failures && d < cap_ns; i++) d *= 2;
    return d < cap_ns ? d : cap_ns;
}

static void label(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

static void ns_str(int64_t ns, char *buf)
{
    int64_t s = ns / 1000000000LL;
    int32_t n = (int32_t)(ns % 1000000000LL);
    if (n < 0) {
        n += 1000000000;
        s--;
    }
    evt_time_format(s, n, buf);
}

int64_t sla_alert_wall_of(const sla_alert_clock *now, int64_t due_ns)
{
    double warp = now->warp > 0 ? now->warp : 1.0;
    int64_t ago = now->business_ns - due_ns;
    if (ago <= 0) return now->wall_ns;
    /* Whole seconds: the two clocks are read a few microseconds apart, and a warp magnifies that; a
       startsAt that moved by those on every re-send would look like a new alert to a reader. */
    int64_t at = now->wall_ns - (int64_t)((double)ago / warp);
    return at - at % 1000000000LL;
}

json_t *sla_alert_json(const Tower__V1__ViewItem *b, const sla_alert_opts *o, const sla_alert_clock *now,
                       int64_t resolved_at_ns, const char *channel)
{
    const fold_sla_rule *rule =
        sla_rules_lookup(o->rules, b->rule ? b->rule : "", b->warehouse_id, b->carrier_id, channel);
    const char *severity = rule && rule->severity ? rule->severity : "warning";
    json_t *a = json_object(), *labels = json_object(), *ann = json_object();
    /* Grouping labels have few values; order_id / shipment_id give each breach its own identity. */
    label(labels, "alertname", "TowerSlaBreach");
    label(labels, "rule", b->rule);
    label(labels, "severity", severity);
    label(labels, "warehouse", b->warehouse_id);
    label(labels, "carrier", b->carrier_id);
    const char *ship = b->key && b->key[0] == 's' ? b->shipment_id : NULL;
    label(labels, "order_id", b->order_id);
    label(labels, "shipment_id", ship);
    json_object_set_new(a, "labels", labels);

    /* Alertmanager compares startsAt and endsAt with each other and endsAt with its wall clock, so both
       are wall-clock instants: startsAt when the business clock passed the due time, endsAt the wall
       clock plus the re-send margin (or the resolution). The due time itself, business time, is the
       dueAt annotation. On an unwarped, unshifted clock startsAt is the due time. */
    char due[48], starts[48], ends[48];
    int64_t due_ns = b->since ? b->since->seconds * 1000000000LL + b->since->nanos : now->business_ns;
    if (b->since) time_str(b->since, due);
    else ns_str(now->business_ns, due);
    int64_t starts_ns = sla_alert_wall_of(now, due_ns);
    int64_t resend = o->resend_ns > 0 ? o->resend_ns : 60LL * 1000000000LL;
    int64_t ends_ns = resolved_at_ns ? resolved_at_ns : now->wall_ns + 4 * resend;
    if (ends_ns < starts_ns) ends_ns = starts_ns;
    ns_str(starts_ns, starts);
    ns_str(ends_ns, ends);
    json_object_set_new(a, "startsAt", json_string(starts));
    json_object_set_new(a, "endsAt", json_string(ends));

    const char *what = ship ? ship : b->order_id ? b->order_id : "?";
    char *summary = ct_sprintf("SLA %s breached by %s %s", b->rule ? b->rule : "?", ship ? "shipment" : "order", what);
    const fold_sla_rule *def = rule;
    char *desc = def ? ct_sprintf("%s was due by %s (%s -> %s)%s%s", what, due, fold_sla_pair_from(def->pair),
                                  fold_sla_pair_to(def->pair), b->warehouse_id ? " at " : "",
                                  b->warehouse_id ? b->warehouse_id : "")
                     : ct_sprintf("%s was due by %s", what, due);
    json_object_set_new(ann, "summary", json_string(summary));
    json_object_set_new(ann, "dueAt", json_string(due));
    json_object_set_new(ann, "description", json_string(desc));
    free(summary);
    free(desc);
    if (o->link_base && *o->link_base && b->order_id) {
        size_t n = strlen(o->link_base);
        char *url = ct_sprintf("%.*s/#/order/%s", (int)(n && o->link_base[n - 1] == '/' ? n - 1 : n), o->link_base,
                               b->order_id);
        json_object_set_new(ann, "dashboard", json_string(url));
        json_object_set_new(a, "generatorURL", json_string(url));
        free(url);
    } else if (o->link_base && *o->link_base && ship) {
        size_t n = strlen(o->link_base);
        char *url = ct_sprintf("%.*s/#/shipment/%s", (int)(n && o->link_base[n - 1] == '/' ? n - 1 : n),
                               o->link_base, ship);
        json_object_set_new(ann, "dashboard", json_string(url));
        json_object_set_new(a, "generatorURL", json_string(url));
        free(url);
    }
    if (o->link_base && *o->link_base && b->rule) {
        /* The Alertmanager convention: a runbook_url annotation. The dashboard's runbook page picks the
           rule's own runbook, or the view's (docs/runbooks). */
        size_t n = strlen(o->link_base);
        char *url = ct_sprintf("%.*s/#/runbook?rule=%s&view=sla_breaches",
                               (int)(n && o->link_base[n - 1] == '/' ? n - 1 : n), o->link_base, b->rule);
        json_object_set_new(ann, "runbook_url", json_string(url));
        free(url);
    }
    json_object_set_new(a, "annotations", ann);
    return a;
}
