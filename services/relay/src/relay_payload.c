/* What a destination receives (docs/outbound.md "Payloads"): pure. */
#include "relay_int.h"

#include <string.h>

/* The id a Slack line names: the shipment (the more specific), else the order, else the route. */
static const char *subject_of(const evt_event *e, const char **what)
{
    if (e->shipment_id) return *what = "shipment", e->shipment_id;
    if (e->order_id) return *what = "order", e->order_id;
    if (e->route_id) return *what = "route", e->route_id;
    return *what = "event", e->event_id;
}

void relay__payload(const relay_dest *d, const evt_event *e, uint64_t seq, ct_buf *out)
{
    json_t *o;
    if (d->kind == RELAY_SLACK) {
        const char *what, *id = subject_of(e, &what);
        char when[48], text[600];
        evt_time_format(e->occurred_at->seconds, e->occurred_at->nanos, when);
        const char *wh = e->warehouse_id ? e->warehouse_id : NULL;
        snprintf(text, sizeof text, "%s: %s %s at %s%s%s (%s)", evt_type_name(e), what, id, when, wh ? ", " : "",
                 wh ? wh : "", e->source && e->source->system ? e->source->system : "");
        o = json_pack("{s:s}", "text", text);
    } else {
        char id[EVT_MAX_EVENT_ID + 80];
        snprintf(id, sizeof id, "%s.%s", e->event_id, d->name);
        o = json_pack("{s:i, s:s, s:s, s:I, s:s, s:o}", "version", 1, "id", id, "destination", d->name, "seq",
                      (json_int_t)seq, "type", evt_type_name(e), "event", evt_to_json(e));
    }
    char *txt = json_dumps(o, JSON_COMPACT);
    ct_buf_adds(out, txt ? txt : "{}");
    free(txt);
    json_decref(o);
}
