/* libFuzzer target: protobuf bytes as published on the bus -> decode + validation -> the pure fold of
 * the decoded event together with fixed events of the same order and shipment. Checks that a valid
 * event re-encodes to itself, and that the fold depends only on the set of events: folding the
 * events in reverse order with the fuzzed one duplicated gives the same items and stage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evt.h"
#include "fold.h"
#include "small_stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_proto_fold: invariant broken: %s\n", what);
        abort();
    }
}

/* Fixed events of the fuzzed event's order and shipment (their ids are set with jansson). */
static const char *const fixed[] = {
    "{\"eventId\":\"fz-fixed-1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
    "\"orderCreated\":{\"customerId\":\"C-1\",\"channel\":\"EDI\",\"lines\":[{\"sku\":\"K\",\"qty\":2}],"
    "\"promisedBy\":\"2026-11-29T00:00:00Z\"}}",
    "{\"eventId\":\"fz-fixed-2\",\"occurredAt\":\"2026-11-27T08:05:00Z\",\"source\":{\"system\":\"erp\"},"
    "\"orderApproved\":{\"warehouseId\":\"dc-1\"}}",
    "{\"eventId\":\"fz-fixed-3\",\"occurredAt\":\"2026-11-27T08:30:00Z\",\"source\":{\"system\":\"erp\"},"
    "\"orderReleased\":{\"warehouseId\":\"dc-1\"}}",
    "{\"eventId\":\"fz-fixed-4\",\"occurredAt\":\"2026-11-27T09:00:00Z\",\"source\":{\"system\":\"wms\"},"
    "\"packCompleted\":{\"cartons\":1}}",
    "{\"eventId\":\"fz-fixed-5\",\"occurredAt\":\"2026-11-27T09:10:00Z\",\"source\":{\"system\":\"wms\"},"
    "\"shipmentReady\":{\"warehouseId\":\"dc-1\"}}",
    "{\"eventId\":\"fz-fixed-6\",\"occurredAt\":\"2026-11-27T12:00:00Z\",\"source\":{\"system\":\"carrier\"},"
    "\"deliveryCompleted\":{}}",
};
#define NFIXED (sizeof fixed / sizeof fixed[0])

static evt_event *fixed_event(size_t i, const char *order, const char *ship)
{
    json_error_t je;
    json_t *o = json_loads(fixed[i], 0, &je);
    check(o != NULL, "a fixed event parses");
    json_object_set_new(o, "orderId", json_string(order));
    if (i >= 3) json_object_set_new(o, "shipmentId", json_string(ship));
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_json(&e, o, &err) != CT_OK) fprintf(stderr, "fixed event %zu: %s\n", i, err.message);
    check(e != NULL, "a fixed event is valid");
    json_decref(o);
    return e;
}

/* Does event e name shipment s (envelope or a route's payload)? */
static int names_shipment(const evt_event *e, const char *s)
{
    if (e->shipment_id && !strcmp(e->shipment_id, s)) return 1;
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED)
        for (size_t i = 0; i < e->route_requested->n_shipment_ids; i++)
            if (!strcmp(e->route_requested->shipment_ids[i], s)) return 1;
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_ROUTE_FAILED)
        for (size_t i = 0; i < e->route_failed->n_shipment_ids; i++)
            if (!strcmp(e->route_failed->shipment_ids[i], s)) return 1;
    if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED)
        for (size_t i = 0; i < e->route_planned->n_stops; i++)
            if (e->route_planned->stops[i]->shipment_id && !strcmp(e->route_planned->stops[i]->shipment_id, s))
                return 1;
    return 0;
}

/* A fold result as comparable bytes: the stage, then per item its key and packed item, sorted by key. */
static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const fold_item *)a)->key, ((const fold_item *)b)->key);
}

static void digest(fold_result *r, ct_buf *out)
{
    if (r->n_items) qsort(r->items, r->n_items, sizeof *r->items, item_cmp);
    char line[64];
    snprintf(line, sizeof line, "stage %d items %zu dues %zu\n", (int)r->stage, r->n_items, r->n_dues);
    ct_buf_adds(out, line);
    for (size_t i = 0; i < r->n_items; i++) {
        ct_buf_adds(out, r->items[i].key);
        size_t n = protobuf_c_message_get_packed_size(&r->items[i].pb.base);
        uint8_t *b = malloc(n ? n : 1);
        protobuf_c_message_pack(&r->items[i].pb.base, b);
        ct_buf_add(out, (const char *)b, n);
        free(b);
    }
}

/* Fold order `order` with shipments ship[0..ns) out of events ev[0..n), as the store would. */
static void fold_all(const char *order, char **ship, size_t ns, evt_event **ev, size_t n, ct_buf *out)
{
    evt_event **oe = calloc(n, sizeof *oe);
    evt_event **se = calloc(n * (ns ? ns : 1), sizeof *se);
    fold_entity *ents = calloc(ns ? ns : 1, sizeof *ents);
    size_t no = 0;
    for (size_t i = 0; i < n; i++)
        if (ev[i]->order_id && !strcmp(ev[i]->order_id, order)) oe[no++] = ev[i];
    for (size_t k = 0; k < ns; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (names_shipment(ev[i], ship[k])) se[k * n + m++] = ev[i];
        ents[k] = (fold_entity){ship[k], se + k * n, m};
        (void)fold_link(&ents[k]);
    }
    fold_process p = {{order, oe, no}, ents, ns};
    fold_result r = {0};
    fold_derive(&p, &r);
    for (size_t i = 0; i < r.n_items; i++) check(r.items[i].key && r.items[i].view < FOLD_VIEW_COUNT, "an item has a key and a view");
    digest(&r, out);
    fold_result_free(&r);
    free(ents);
    free(se);
    free(oe);
}

static void add_ship(char ***ship, size_t *ns, const char *id)
{
    if (!id || *ns >= 8) return;
    for (size_t i = 0; i < *ns; i++)
        if (!strcmp((*ship)[i], id)) return;
    (*ship)[(*ns)++] = (char *)id;
}

static int one_input(const uint8_t *data, size_t size)
{
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_protobuf(&e, data, size, &err) != CT_OK) {
        check(e == NULL && err.code != EVT_OK, "a rejection has a code and no event");
        check(memchr(err.message, 0, sizeof err.message) != NULL, "the message is terminated");
        return 0;
    }
    /* The canonical bytes decode to the same event. */
    ct_buf a = {0}, b = {0};
    evt_pack(e, &a);
    evt_event *again = NULL;
    check(evt_from_protobuf(&again, (const uint8_t *)a.data, a.len, &err) == CT_OK, "canonical bytes are valid");
    evt_pack(again, &b);
    check(a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len)), "canonical bytes are a fixed point");
    evt_free(again);

    /* Two different events with one eventId never reach the fold together: the store refuses the second. */
    if (!strncmp(e->event_id, "fz-fixed-", 9)) goto out;
    const char *order = e->order_id ? e->order_id : "O-FZ";
    const char *sid = e->shipment_id ? e->shipment_id : "S-FZ";
    evt_event *ev[NFIXED + 2];
    size_t n = 0;
    for (size_t i = 0; i < NFIXED; i++) ev[n++] = fixed_event(i, order, sid);
    ev[n++] = e;
    char **ship = calloc(8, sizeof *ship);
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        add_ship(&ship, &ns, ev[i]->shipment_id);
        if (ev[i]->payload_case == TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED)
            for (size_t k = 0; k < ev[i]->route_planned->n_stops; k++)
                add_ship(&ship, &ns, ev[i]->route_planned->stops[k]->shipment_id);
        if (ev[i]->payload_case == TOWER__V1__EVENT__PAYLOAD_ROUTE_REQUESTED)
            for (size_t k = 0; k < ev[i]->route_requested->n_shipment_ids; k++)
                add_ship(&ship, &ns, ev[i]->route_requested->shipment_ids[k]);
    }
    ct_buf d1 = {0}, d2 = {0};
    fold_all(order, ship, ns, ev, n, &d1);
    /* The same set in reverse order, the fuzzed event twice. */
    evt_event *rev[NFIXED + 2];
    for (size_t i = 0; i < n; i++) rev[i] = ev[n - 1 - i];
    rev[n] = e;
    fold_all(order, ship, ns, rev, n + 1, &d2);
    check(d1.len == d2.len && !memcmp(d1.data, d2.data, d1.len), "the fold depends only on the set of events");

    free(ship);
    for (size_t i = 0; i < NFIXED; i++) evt_free(ev[i]);
    ct_buf_free(&d1);
    ct_buf_free(&d2);
out:
    evt_free(e);
    ct_buf_free(&a);
    ct_buf_free(&b);
    return 0;
}

/* On a thread with a civetweb worker's stack, where the server runs this code. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_on_small_stack(one_input, data, size);
    return 0;
}
