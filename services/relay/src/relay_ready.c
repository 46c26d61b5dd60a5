/* Readiness orchestration (docs/outbound.md "Route planner"): which shipments a kind = route_planner
 * destination is asked about, as a pure fold of the few event types that decide it, and the request it gets. */
#include "relay_int.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t add_id(const char **ids, size_t n, size_t cap, const char *id)
{
    if (!id || !*id || n >= cap) return n;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id)) return n;
    ids[n] = id;
    return n + 1;
}

size_t relay_ready_ids(const evt_event *e, const char **ids, size_t cap)
{
    size_t n = add_id(ids, 0, cap, e->shipment_id);
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED:
        for (size_t i = 0; i < e->route_planned->n_stops; i++)
            if (e->route_planned->stops[i]) n = add_id(ids, n, cap, e->route_planned->stops[i]->shipment_id);
        break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED:
        for (size_t i = 0; i < e->route_requested->n_shipment_ids; i++)
            n = add_id(ids, n, cap, e->route_requested->shipment_ids[i]);
        break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_FAILED:
        for (size_t i = 0; i < e->route_failed->n_shipment_ids; i++)
            n = add_id(ids, n, cap, e->route_failed->shipment_ids[i]);
        break;
    default: break;
    }
    return n;
}

static int64_t occurred_ns(const evt_event *e)
{
    return e->occurred_at ? e->occurred_at->seconds * 1000000000LL + e->occurred_at->nanos : 0;
}

static int set_str(char *dst, const char *src)
{
    if (!src || !*src || dst[0] || strlen(src) > RELAY_ID_MAX) return 0;
    snprintf(dst, RELAY_ID_MAX + 1, "%s", src);
    return 1;
}

static int set_flag(uint8_t *f, uint8_t v)
{
    if (*f == v) return 0;
    *f = v;
    return 1;
}

/* The latest of shipmentBlocked/shipmentUnblocked by occurredAt (equal times: the later in the stream). */
static int apply_block(relay_ship *s, const evt_event *e, int blocked)
{
    int64_t at = occurred_ns(e);
    if (s->block_at_ns && at < s->block_at_ns) return 0;
    s->block_at_ns = at;
    if (blocked) {
        int r = e->shipment_blocked->has_reason ? (int)e->shipment_blocked->reason : 0;
        blocked = r == TOWER__V1__SHIPMENT_BLOCKED__REASON__DOCK_CAPACITY ||
                  r == TOWER__V1__SHIPMENT_BLOCKED__REASON__CARRIER;
    }
    set_flag(&s->blocked, (uint8_t)blocked);
    return 1;
}

int relay_ready_apply(relay_ship *s, const evt_event *e)
{
    int ch = 0;
    if (e->order_id && e->shipment_id) ch |= set_str(s->order_id, e->order_id); /* the earliest link wins */
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_READY:
        ch |= set_flag(&s->ready, 1);
        ch |= set_str(s->warehouse_id, e->shipment_ready->warehouse_id ? e->shipment_ready->warehouse_id
                                                                       : e->warehouse_id);
        break;
    case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_BLOCKED: ch |= apply_block(s, e, 1); break;
    case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_UNBLOCKED: ch |= apply_block(s, e, 0); break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED: ch |= set_flag(&s->requested, 1); break;
    case TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED:
    case TOWER__V1__EVENT__PAYLOAD_SHIPMENT_CONFIRMED:
    case TOWER__V1__EVENT__PAYLOAD_DELIVERY_COMPLETED: ch |= set_flag(&s->routed, 1); break;
    default: break;
    }
    return ch;
}

int relay_ready_due(const relay_ship *s, int order_cancelled)
{
    return s->ready && !s->blocked && !s->routed && !s->requested && !s->queued && !s->refused && !order_cancelled;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

void relay_request_id(const char *const *ids, size_t n, char out[32])
{
    const char **v = ct_calloc(n ? n : 1, sizeof *v);
    memcpy(v, ids, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_str);
    ct_buf joined = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) ct_buf_addc(&joined, '\n');
        ct_buf_adds(&joined, v[i]);
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(joined.data ? joined.data : ""), joined.len, md);
    ct_buf_free(&joined);
    free(v);
    int k = snprintf(out, 32, "rr-");
    for (int i = 0; i < 12; i++) k += snprintf(out + k, (size_t)(32 - k), "%02x", md[i]);
}

json_t *relay_request_event(const char *const *ids, size_t n, const char *warehouse, int64_t at_ns,
                            const char *instance)
{
    char id[32], when[48];
    relay_request_id(ids, n, id);
    evt_time_format(at_ns / 1000000000LL, (int32_t)(at_ns % 1000000000LL), when);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(list, json_string(ids[i]));
    json_t *p = json_pack("{s:o}", "shipmentIds", list);
    if (warehouse && *warehouse) json_object_set_new(p, "warehouseId", json_string(warehouse));
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "eventId", id, "occurredAt", when, "source", "system", "tms",
                     "instance", instance && *instance ? instance : "tower-relay", "routeRequested", p);
}
