/* Unit tests of every view rule, anomaly, link and dead-letter rule of docs/contract.md, on a real store. */
#include "fx.h"

/* One event line: id, time, system, then the keys and payload as JSON members. */
#define EV(id, at, sys, rest)                                                                       \
    "{\"eventId\":\"" id "\",\"occurredAt\":\"" at "\",\"source\":{\"system\":\"" sys "\"}," rest "}\n"

#define T0 "2026-11-27T08:00:00Z"
#define T1 "2026-11-27T09:00:00Z"
#define T2 "2026-11-27T10:00:00Z"
#define T3 "2026-11-27T11:00:00Z"

static void awaiting_release(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("a1", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_AWAITING_RELEASE), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_AWAITING_RELEASE, 0, "orderId"), "O1");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_AWAITING_RELEASE, 0, "warehouseId"), "dc-2");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_AWAITING_RELEASE, 0, "since"), T1);
    /* A second, earlier approval moves since to the earliest approval. */
    fx_feed(&f, EV("a0", T0, "erp", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_AWAITING_RELEASE, 0, "since"), T0);
    T_EQ_INT(f.changes.n, 1);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_UPDATE);
    fx_feed(&f, EV("r1", T2, "erp", "\"orderId\":\"O1\",\"orderReleased\":{\"warehouseId\":\"dc-2\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_AWAITING_RELEASE), 0);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_AWAITING_RELEASE), 0);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_REMOVE);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 0);
    fx_close(&f);
}

static void release_before_approval(void)
{
    fx f;
    fx_open(&f);
    /* Released with no approval: the release itself breaks the rule. */
    fx_feed(&f, EV("r1", T1, "erp", "\"orderId\":\"O1\",\"orderReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "rule"), "RELEASE_BEFORE_APPROVAL");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T1);
    /* An approval dated after the release: still an anomaly, since = the later (the approval). */
    fx_feed(&f, EV("a1", T2, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T2);
    /* Presence ignores time order: the order is released, so not awaiting release. */
    T_EQ_INT(fx_n(&f, FOLD_VIEW_AWAITING_RELEASE), 0);
    /* An earlier approval (arriving last) clears it. */
    fx_feed(&f, EV("a0", T0, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 0);
    /* Equal times break no rule. */
    fx_feed(&f, EV("a9", T3, "erp", "\"orderId\":\"O2\",\"orderApproved\":{}")
                EV("r9", T3, "erp", "\"orderId\":\"O2\",\"orderReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 0);
    fx_close(&f);
}

static void order_hold(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("h1", T1, "erp", "\"orderId\":\"O1\",\"orderHeld\":{\"reason\":\"CREDIT\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "kind"), "ORDER_HOLD");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "reason"), "CREDIT");
    /* A hold release dated before the hold changes nothing: the latest is still the hold. */
    fx_feed(&f, EV("x0", T0, "erp", "\"orderId\":\"O1\",\"orderHoldReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    fx_feed(&f, EV("x2", T2, "erp", "\"orderId\":\"O1\",\"orderHoldReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    /* A new hold after that: blocked again, since = the new hold. */
    fx_feed(&f, EV("h3", T3, "erp", "\"orderId\":\"O1\",\"orderHeld\":{\"reason\":\"PRICING\"}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "since"), T3);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "reason"), "PRICING");
    /* Same time: the greater eventId is the latest ("x4" > "h3"... compare bytewise). */
    fx_feed(&f, EV("z3", T3, "erp", "\"orderId\":\"O1\",\"orderHoldReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    fx_feed(&f, EV("h5", T3, "erp", "\"orderId\":\"O2\",\"orderHoldReleased\":{}")
                EV("h6", T3, "erp", "\"orderId\":\"O2\",\"orderHeld\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "reason"), "");
    fx_close(&f);
}

static void inventory_blocks(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("p1", T1, "wms", "\"orderId\":\"O1\",\"pickShort\":{\"sku\":\"A\",\"qtyShort\":2,\"warehouseId\":\"dc-1\"}")
                EV("p2", T2, "wms", "\"orderId\":\"O1\",\"pickShort\":{\"sku\":\"B\",\"qtyShort\":1}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 2);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "kind"), "INVENTORY");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "sku"), "A");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 1, "sku"), "B");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 1, "warehouseId"), "dc-1");
    fx_feed(&f, EV("r1", T3, "wms", "\"orderId\":\"O1\",\"inventoryResolved\":{\"sku\":\"A\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "sku"), "B");
    /* A resolution of B dated before its short pick does not resolve it. */
    fx_feed(&f, EV("r0", T0, "wms", "\"orderId\":\"O1\",\"inventoryResolved\":{\"sku\":\"B\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    fx_close(&f);
}

static void shipment_blocks(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("k1", T0, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"packCompleted\":{\"cartons\":2}")
                EV("b1", T1, "wms", "\"shipmentId\":\"S1\",\"shipmentBlocked\":{\"reason\":\"DOCK_CAPACITY\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "kind"), "SHIPMENT");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "reason"), "DOCK_CAPACITY");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "shipmentId"), "S1");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "orderId"), "O1");
    fx_feed(&f, EV("u1", T2, "wms", "\"shipmentId\":\"S1\",\"shipmentUnblocked\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    fx_close(&f);
}

static void pending_route(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("y1", T0, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"shipmentReady\":{\"warehouseId\":\"dc-3\",\"dockId\":\"D4\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_PENDING_ROUTE), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_PENDING_ROUTE, 0, "warehouseId"), "dc-3");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_PENDING_ROUTE, 0, "since"), T0);
    fx_feed(&f, EV("f1", T1, "tms", "\"routeFailed\":{\"shipmentIds\":[\"S1\",\"S9\"],\"reason\":\"no capacity\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_PENDING_ROUTE), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_PENDING_ROUTE, 0, "lastFailure"), "no capacity");
    fx_feed(&f, EV("p2", T2, "tms", "\"routeId\":\"R1\",\"routePlanned\":{\"carrierId\":\"dhl\",\"stops\":[{\"shipmentId\":\"S1\",\"sequence\":1}]}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_PENDING_ROUTE), 0);
    /* A later failure of a re-plan puts it back. */
    fx_feed(&f, EV("f3", T3, "tms", "\"routeFailed\":{\"shipmentIds\":[\"S1\"],\"reason\":\"vehicle broke\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_PENDING_ROUTE), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_PENDING_ROUTE, 0, "lastFailure"), "vehicle broke");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_PENDING_ROUTE, 0, "carrierId"), "dhl");
    /* Confirmation (goods left) takes it out whatever the routing says. */
    fx_feed(&f, EV("c4", "2026-11-27T12:00:00Z", "wms", "\"shipmentId\":\"S1\",\"shipmentConfirmed\":{\"carrierId\":\"ups\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_PENDING_ROUTE), 0);
    /* S9 was only named by a route failure: an orphan, not pending (never ready). */
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ORPHANS), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ORPHANS, 0, "shipmentId"), "S9");
    fx_close(&f);
}

static void missing_pod(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("d1", T1, "carrier", "\"shipmentId\":\"S1\",\"deliveryCompleted\":{\"carrierId\":\"dhl\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISSING_POD), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISSING_POD, 0, "carrierId"), "dhl");
    /* A POD dated before the delivery still counts: presence ignores order. */
    fx_feed(&f, EV("p0", T0, "carrier", "\"shipmentId\":\"S1\",\"podCaptured\":{\"podRef\":\"x\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISSING_POD), 0);
    fx_close(&f);
}

static void posting_failed(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("f1", T1, "finance", "\"orderId\":\"O1\",\"postingFailed\":{\"reason\":\"timeout\",\"interface\":\"erp-ar\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_POSTING_FAILED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_POSTING_FAILED, 0, "reason"), "timeout");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_POSTING_FAILED, 0, "interface"), "erp-ar");
    fx_feed(&f, EV("i2", T2, "finance", "\"orderId\":\"O1\",\"invoicePosted\":{\"invoiceId\":\"I1\",\"amount\":\"10.50\",\"currency\":\"EUR\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_POSTING_FAILED), 0);
    fx_feed(&f, EV("f3", T3, "finance", "\"orderId\":\"O1\",\"postingFailed\":{\"reason\":\"again\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_POSTING_FAILED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_POSTING_FAILED, 0, "since"), T3);
    fx_close(&f);
}

static void orphans_and_links(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("b1", T2, "wms", "\"shipmentId\":\"S1\",\"shipmentBlocked\":{\"reason\":\"DAMAGE\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ORPHANS), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ORPHANS, 0, "since"), T2);
    fx_feed(&f, EV("q1", T1, "tms", "\"routeRequested\":{\"shipmentIds\":[\"S1\"]}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ORPHANS, 0, "since"), T1);
    /* A link to O2 (later), then an earlier link to O1: the earliest wins. */
    fx_feed(&f, EV("k3", T3, "wms", "\"orderId\":\"O2\",\"shipmentId\":\"S1\",\"packCompleted\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ORPHANS), 0);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "orderId"), "O2");
    fx_feed(&f, EV("o1", T0, "erp", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-1\"}")
                EV("k0", T0, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"packCompleted\":{}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "orderId"), "O1");
    /* The shipment has no warehouse of its own: it takes its order's. */
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "warehouseId"), "dc-1");
    /* Cancelling O2 does not touch S1 any more; cancelling O1 does. */
    fx_feed(&f, EV("c2", T3, "erp", "\"orderId\":\"O2\",\"orderCancelled\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    fx_feed(&f, EV("c1", T3, "erp", "\"orderId\":\"O1\",\"orderCancelled\":{\"reason\":\"customer\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_AWAITING_RELEASE), 0);
    fx_close(&f);
}

static void route_before_ready(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("p1", T1, "tms", "\"routeId\":\"R1\",\"routePlanned\":{\"stops\":[{\"shipmentId\":\"S1\"}]}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "rule"), "ROUTE_BEFORE_READY");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T1);
    fx_feed(&f, EV("y2", T2, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"shipmentReady\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T2);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "orderId"), "O1");
    fx_feed(&f, EV("y0", T0, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"shipmentReady\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 0);
    fx_close(&f);
}

static void invoice_before_shipment(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("i1", T1, "finance", "\"orderId\":\"O1\",\"invoicePosted\":{\"amount\":\"1.00\",\"currency\":\"EUR\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "rule"), "INVOICE_BEFORE_SHIPMENT");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T1);
    fx_feed(&f, EV("k1", T0, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"packCompleted\":{}")
                EV("c2", T2, "wms", "\"shipmentId\":\"S1\",\"shipmentConfirmed\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T2);
    /* A second shipment confirmed earlier than the invoice clears it (earliest confirmation). */
    fx_feed(&f, EV("k2", T0, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S2\",\"packCompleted\":{}")
                EV("c0", T0, "wms", "\"shipmentId\":\"S2\",\"shipmentConfirmed\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 0);
    fx_close(&f);
}

static void activity_after_cancel(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("c1", T1, "erp", "\"orderId\":\"O1\",\"orderCancelled\":{}")
                EV("p0", T0, "wms", "\"orderId\":\"O1\",\"pickStarted\":{}")
                EV("p1", T1, "wms", "\"orderId\":\"O1\",\"pickShort\":{\"sku\":\"A\"}"));
    /* Activity before or at the cancellation time is fine. */
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 0);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0); /* the short pick of a cancelled order leaves blocked */
    fx_feed(&f, EV("k3", T3, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"packCompleted\":{}")
                EV("d2", T2, "carrier", "\"shipmentId\":\"S1\",\"deliveryCompleted\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "rule"), "ACTIVITY_AFTER_CANCEL");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T2);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISSING_POD), 0); /* cancelled: leaves missing_pod */
    /* An earlier cancellation makes the earlier pick count: since moves back. */
    fx_feed(&f, EV("c0", "2026-11-27T07:00:00Z", "erp", "\"orderId\":\"O1\",\"orderCancelled\":{}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_ANOMALIES, 0, "since"), T0);
    fx_close(&f);
}

static void dead_letters(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, "{not json\n");
    T_EQ_INT(f.last, STORE_DEAD_LETTER);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 0, "code"), "MALFORMED");
    /* The very same bytes again: a duplicate, not a second dead letter. */
    fx_feed(&f, "{not json\n");
    T_EQ_INT(f.last, STORE_DUPLICATE);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 1);
    fx_feed(&f, EV("q1", T1, "erp", "\"orderId\":\"O1\",\"orderCreated\":{\"lines\":[{\"sku\":\"A\",\"qty\":0}]}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 2);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 1, "code"), "INVALID_VALUE");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 1, "eventId"), "q1");
    T_ASSERT(strstr(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 1, "message"), "qty") != NULL);
    /* A good event, its exact duplicate, and a conflicting duplicate. */
    fx_feed(&f, EV("a1", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-1\"}"));
    T_EQ_INT(f.last, STORE_APPLIED);
    /* Same event, other spelling: key order and offset differ, the instant is the same. */
    fx_feed(&f, "{\"orderApproved\":{\"warehouseId\":\"dc-1\"},\"orderId\":\"O1\",\"source\":{\"system\":\"erp\"},"
                "\"occurredAt\":\"2026-11-27T10:00:00+01:00\",\"eventId\":\"a1\"}\n");
    T_EQ_INT(f.last, STORE_DUPLICATE);
    fx_feed(&f, EV("a1", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-9\"}"));
    T_EQ_INT(f.last, STORE_DEAD_LETTER);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 3);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 2, "code"), "CONFLICTING_DUPLICATE");
    /* The first copy stays applied. */
    T_EQ_STR(fx_field(&f, FOLD_VIEW_AWAITING_RELEASE, 0, "warehouseId"), "dc-1");
    /* The raw bytes are kept for redrive. */
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    Tower__V1__DeadLetter *d = NULL;
    T_EQ_INT(store_dead_letter(r, 1, &d), CT_OK);
    if (d) {
        T_EQ_INT(d->raw.len, 9);
        T_ASSERT(d->raw.len == 9 && memcmp(d->raw.data, "{not json", 9) == 0);
        tower__v1__dead_letter__free_unpacked(d, NULL);
    }
    store_stats ss;
    store_reader_stats(r, &ss);
    T_EQ_INT(ss.dead_letters, 3);
    T_EQ_INT(ss.duplicates, 2);
    T_EQ_INT(ss.events, 1);
    T_EQ_INT(ss.applied_seq, 6);
    store_reader_end(r);
    fx_close(&f);
}

static void exactly_once_by_seq(void)
{
    fx f;
    fx_open(&f);
    evt_error err;
    evt_event *e = NULL;
    const char *line = EV("a1", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}");
    T_EQ_INT(evt_from_json_text(&e, line, strlen(line), &err), CT_OK);
    store_input in = {5, e, NULL, line, strlen(line), "application/json", NULL, 0};
    store_outcome out;
    T_EQ_INT(store_apply(f.s, &in, 1, f.now_ns, &out, NULL), CT_OK);
    T_EQ_INT(out, STORE_APPLIED);
    /* Redelivery of sequence 5 after a restart: skipped, not counted as a duplicate. */
    T_EQ_INT(store_apply(f.s, &in, 1, f.now_ns, &out, NULL), CT_OK);
    T_EQ_INT(out, STORE_SKIPPED);
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    store_stats ss;
    store_reader_stats(r, &ss);
    T_EQ_INT(ss.applied_seq, 5);
    T_EQ_INT(ss.duplicates, 0);
    store_reader_end(r);
    evt_free(e);
    fx_close(&f);
}

static void sla_breaches(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("a1", T0, "erp", "\"orderId\":\"O1\",\"orderApproved\":{\"warehouseId\":\"dc-1\"}")
                EV("b1", T1, "tower", "\"orderId\":\"O1\",\"slaBreached\":{\"rule\":\"release\",\"dueAt\":\"2026-11-27T08:15:00Z\"}")
                EV("b2", T1, "tower", "\"shipmentId\":\"S1\",\"slaBreached\":{\"rule\":\"pod\",\"dueAt\":\"2026-11-27T08:30:00+00:00\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_SLA_BREACHES), 2);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_SLA_BREACHES, 0, "rule"), "release");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_SLA_BREACHES, 0, "since"), "2026-11-27T08:15:00Z"); /* since = dueAt */
    T_EQ_STR(fx_field(&f, FOLD_VIEW_SLA_BREACHES, 0, "warehouseId"), "dc-1");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_SLA_BREACHES, 1, "shipmentId"), "S1");
    /* The awaited milestone closes the breach, even when it is dated before it. */
    fx_feed(&f, EV("r1", T0, "erp", "\"orderId\":\"O1\",\"orderReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_SLA_BREACHES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_SLA_BREACHES, 0, "rule"), "pod");
    fx_feed(&f, EV("p1", T2, "carrier", "\"shipmentId\":\"S1\",\"podCaptured\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_SLA_BREACHES), 0);
    /* posting_recovery closes only with an invoice later than the failure. */
    fx_feed(&f, EV("i0", T0, "finance", "\"orderId\":\"O2\",\"invoicePosted\":{}")
                EV("f1", T1, "finance", "\"orderId\":\"O2\",\"postingFailed\":{}")
                EV("b3", T2, "tower", "\"orderId\":\"O2\",\"slaBreached\":{\"rule\":\"posting_recovery\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_SLA_BREACHES), 1);
    fx_feed(&f, EV("i3", T3, "finance", "\"orderId\":\"O2\",\"invoicePosted\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_SLA_BREACHES), 0);
    fx_close(&f);
}

typedef struct tl_ctx {
    char ids[16][32];
    int n;
} tl_ctx;

static int tl_collect(void *vctx, const evt_event *e, uint64_t seq)
{
    tl_ctx *c = vctx;
    (void)seq;
    if (c->n < 16) snprintf(c->ids[c->n++], 32, "%s", e->event_id);
    return 0;
}

/* The timeline of an order and of a shipment: every event naming it, oldest first, each once. */
static void timelines(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("c", T2, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"packCompleted\":{}")
                EV("a", T0, "erp", "\"orderId\":\"O1\",\"orderCreated\":{}")
                EV("b", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}")
                EV("d", T3, "tms", "\"routeId\":\"R1\",\"routePlanned\":{\"stops\":[{\"shipmentId\":\"S1\"},{\"shipmentId\":\"S2\"}]}")
                EV("b", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}"));
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    tl_ctx o = {.n = 0}, s = {.n = 0}, rt = {.n = 0};
    T_EQ_INT(store_timeline(r, 'o', "O1", tl_collect, &o), CT_OK);
    T_EQ_INT(o.n, 3);
    T_EQ_STR(o.ids[0], "a");
    T_EQ_STR(o.ids[1], "b");
    T_EQ_STR(o.ids[2], "c");
    T_EQ_INT(store_timeline(r, 's', "S1", tl_collect, &s), CT_OK);
    T_EQ_INT(s.n, 2);
    T_EQ_STR(s.ids[0], "c");
    T_EQ_STR(s.ids[1], "d");
    T_EQ_INT(store_timeline(r, 'r', "R1", tl_collect, &rt), CT_OK);
    T_EQ_INT(rt.n, 1);
    T_EQ_INT(store_timeline(r, 'o', "nope", tl_collect, &rt), CT_NOT_FOUND);
    store_reader_end(r);
    fx_close(&f);
}

/* An order read whole, a shipment read whole, and search by id prefix and customer. */
static void entity_and_search(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("e1", T0, "erp", "\"orderId\":\"SO-17\",\"orderCreated\":{\"customerId\":\"ACME-9\",\"channel\":\"EDI\"}")
                EV("e2", T1, "erp", "\"orderId\":\"SO-17\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}")
                EV("e3", T2, "wms", "\"orderId\":\"SO-17\",\"shipmentId\":\"SH-17-1\",\"packCompleted\":{}")
                EV("e4", T3, "wms", "\"shipmentId\":\"SH-17-1\",\"shipmentBlocked\":{\"reason\":\"DAMAGE\"}")
                EV("e5", T3, "erp", "\"orderId\":\"SO-18\",\"orderCreated\":{\"customerId\":\"ACME-2\"}"));
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    json_t *o = NULL;
    T_EQ_INT(store_entity_json(r, 'o', "SO-17", 0, &o), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(o, "stage")), "PACKED");
    T_EQ_STR(json_string_value(json_object_get(o, "customerId")), "ACME-9");
    T_EQ_STR(json_string_value(json_object_get(o, "channel")), "EDI");
    json_t *tl = json_object_get(o, "timeline");
    T_EQ_INT(json_array_size(tl), 4); /* its own three events and its shipment's block, once each */
    T_EQ_STR(json_string_value(json_object_get(json_object_get(json_array_get(tl, 3), "event"), "eventId")), "e4");
    T_EQ_STR(json_string_value(json_object_get(json_array_get(tl, 0), "type")), "orderCreated");
    json_t *ex = json_object_get(o, "openExceptions");
    /* awaiting release (the order) and blocked (its shipment) */
    T_EQ_INT(json_array_size(ex), 2);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(o, "milestones"), "orderApproved")), T1);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(o, "shipments"), 0), "stage")), "PACKED");
    json_decref(o);
    T_EQ_INT(store_entity_json(r, 's', "SH-17-1", 0, &o), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(o, "orderId")), "SO-17");
    T_EQ_STR(json_string_value(json_object_get(o, "stage")), "PACKED");
    json_decref(o);
    T_EQ_INT(store_entity_json(r, 'o', "SO-404", 0, &o), CT_NOT_FOUND);

    json_t *sr = NULL;
    T_EQ_INT(store_search(r, "SO-1", 10, &sr), CT_OK);
    T_EQ_INT(json_array_size(json_object_get(sr, "orders")), 2);
    T_EQ_INT(json_array_size(json_object_get(sr, "shipments")), 0);
    json_decref(sr);
    T_EQ_INT(store_search(r, "SH-17", 10, &sr), CT_OK);
    T_EQ_STR(json_string_value(json_array_get(json_object_get(sr, "shipments"), 0)), "SH-17-1");
    json_decref(sr);
    T_EQ_INT(store_search(r, "ACME-9", 10, &sr), CT_OK);
    json_t *c = json_array_get(json_object_get(sr, "customers"), 0);
    T_EQ_STR(json_string_value(json_object_get(c, "orderId")), "SO-17");
    T_EQ_INT(json_array_size(json_object_get(sr, "customers")), 1);
    json_decref(sr);
    T_EQ_INT(store_search(r, "", 10, &sr), CT_INVALID);
    store_reader_end(r);
    fx_close(&f);
}

/* The stage is the furthest milestone; with several shipments, the least advanced one counts. */
static void stages(void)
{
    const char *lines[] = {
        EV("e1", T0, "erp", "\"orderId\":\"O1\",\"orderCreated\":{}"),
        EV("e2", T0, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}"),
        EV("e3", T0, "erp", "\"orderId\":\"O1\",\"orderReleased\":{}"),
        EV("e4", T1, "wms", "\"orderId\":\"O1\",\"pickStarted\":{}"),
        EV("e5", T1, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S1\",\"packCompleted\":{}"),
        EV("e6", T1, "wms", "\"orderId\":\"O1\",\"shipmentId\":\"S2\",\"packCompleted\":{}"),
        EV("e7", T2, "carrier", "\"shipmentId\":\"S1\",\"deliveryCompleted\":{}"),
        EV("e8", T2, "tms", "\"routeId\":\"R\",\"routePlanned\":{\"stops\":[{\"shipmentId\":\"S2\"}]}"),
        EV("e9", T3, "finance", "\"orderId\":\"O1\",\"invoicePosted\":{}"),
        EV("eA", T3, "erp", "\"orderId\":\"O1\",\"orderCancelled\":{}"),
    };
    evt_event *ev[10];
    evt_error err;
    for (int i = 0; i < 10; i++) {
        ev[i] = NULL;
        if (evt_from_json_text(&ev[i], lines[i], strlen(lines[i]), &err) != CT_OK) T_FAIL("line %d: %s", i, err.message);
    }
    struct {
        size_t n_order;   /* how many of e1..e4, e9, eA */
        size_t n_ship;    /* how many of e5..e8 */
        const char *stage;
    } cases[] = {{1, 0, "CREATED"}, {2, 0, "APPROVED"}, {4, 0, "PICKING"}, {4, 1, "PACKED"},
                 {4, 2, "PACKED"},  {4, 3, "PACKED"},   {4, 4, "ROUTED"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        evt_event *s1[4], *s2[4];
        size_t n1 = 0, n2 = 0;
        for (size_t i = 0; i < cases[c].n_ship; i++) {
            evt_event *e = ev[4 + i];
            if (i == 0 || i == 2) s1[n1++] = e;
            else s2[n2++] = e;
        }
        fold_entity ships[2] = {{"S1", s1, n1}, {"S2", s2, n2}};
        size_t ns = cases[c].n_ship == 0 ? 0 : cases[c].n_ship == 1 ? 1 : 2;
        fold_process p = {{"O1", ev, cases[c].n_order}, ships, ns};
        fold_result r = {0};
        fold_derive(&p, &r);
        T_EQ_STR(fold_stage_name(r.stage), cases[c].stage);
        fold_result_free(&r);
    }
    /* The least advanced shipment decides; an invoice is the furthest; cancellation overrides all. */
    evt_event *s1[] = {ev[4], ev[6]};
    evt_event *s2[] = {ev[5], ev[6]};
    fold_entity ships[2] = {{"S1", s1, 2}, {"S2", s2, 1}};
    fold_result r = {0};
    fold_process p = {{"O1", ev, 4}, ships, 2};
    fold_derive(&p, &r);
    T_EQ_STR(fold_stage_name(r.stage), "PACKED"); /* S1 delivered, S2 only packed */
    evt_event *s2b[] = {ev[5], ev[7]};
    ships[1].events = s2b;
    ships[1].n_events = 2;
    fold_derive(&p, &r);
    T_EQ_STR(fold_stage_name(r.stage), "ROUTED"); /* S1 delivered, S2 routed: least is ROUTED */
    evt_event *ord[] = {ev[0], ev[1], ev[2], ev[3], ev[8]};
    p.order.events = ord;
    p.order.n_events = 5;
    fold_derive(&p, &r);
    T_EQ_STR(fold_stage_name(r.stage), "INVOICED");
    evt_event *ord2[] = {ev[0], ev[1], ev[2], ev[3], ev[8], ev[9]};
    p.order.events = ord2;
    p.order.n_events = 6;
    fold_derive(&p, &r);
    T_EQ_STR(fold_stage_name(r.stage), "CANCELLED");
    fold_result_free(&r);
    for (int i = 0; i < 10; i++) evt_free(ev[i]);
}

/* Reconciliation mismatches: per (entity, system, check), an item while the latest of found / cleared is found. */
#define MM(id, at, ent, type, check, rest)                                                          \
    EV(id, at, "tower", ent ",\"" type "\":{\"system\":\"erp\",\"check\":\"" check "\"" rest "}")
#define MR "missing_milestone:orderReleased"

static void mismatches(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, MM("f1", T1, "\"orderId\":\"O1\"", "mismatchFound", MR,
                   ",\"theirs\":\"RELEASED\",\"ours\":\"stage APPROVED\",\"snapshot\":\"erp.csv\",\"message\":\"m1\""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 1);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_MISMATCHES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "key"), "o:O1|mismatches|erp|" MR);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "system"), "erp");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "check"), MR);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "theirs"), "RELEASED");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "ours"), "stage APPROVED");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "snapshot"), "erp.csv");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "message"), "m1");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "since"), T1);
    /* A later found of the same check: fields from the latest, since stays the first of the run. */
    fx_feed(&f, MM("f2", T2, "\"orderId\":\"O1\"", "mismatchFound", MR, ",\"theirs\":\"SHIPPED\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "theirs"), "SHIPPED");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "ours"), "");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "since"), T1);
    /* A clear dated before the latest found changes nothing; one after it removes the item. */
    fx_feed(&f, MM("c0", T0, "\"orderId\":\"O1\"", "mismatchCleared", MR, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "since"), T1); /* no found after c0 is earlier than f1 */
    fx_feed(&f, MM("c3", T3, "\"orderId\":\"O1\"", "mismatchCleared", MR, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 0);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_MISMATCHES), 0);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_REMOVE);
    /* The other arrival order: the clear first, then an earlier found: nothing; then a later one: a new run. */
    fx_feed(&f, MM("c2", T2, "\"orderId\":\"O2\"", "mismatchCleared", MR, ""));
    fx_feed(&f, MM("f9", T1, "\"orderId\":\"O2\"", "mismatchFound", MR, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 0);
    fx_feed(&f, MM("fa", T3, "\"orderId\":\"O2\"", "mismatchFound", MR, ""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "since"), T3);
    /* Same time: the greater eventId is the latest ("fa" < "fb" found, "zz" clear wins over both). */
    fx_feed(&f, MM("zz", T3, "\"orderId\":\"O2\"", "mismatchCleared", MR, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 0);
    /* Checks and systems are apart: another check of O1 is its own item. */
    fx_feed(&f, MM("u1", T1, "\"orderId\":\"O3\"", "mismatchFound", "unknown_order", ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 1);
    /* An order known only through mismatches has no stage and no other item; a shipment's mismatch (with an
     * orderId too) belongs to the shipment, links nothing and makes no orphan. */
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ANOMALIES) + fx_n(&f, FOLD_VIEW_AWAITING_RELEASE), 0);
    fx_feed(&f, MM("s1", T1, "\"orderId\":\"O9\",\"shipmentId\":\"S9\"", "mismatchFound", "unknown_order", ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 2);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ORPHANS), 0);
    json_t *v = fx_view(&f, FOLD_VIEW_MISMATCHES);
    int ship = 0;
    for (size_t i = 0; i < json_array_size(v); i++)
        ship += json_string_value(json_object_get(json_array_get(v, i), "shipmentId")) != NULL;
    T_EQ_INT(ship, 1);
    json_decref(v);
    /* Hostile checks: 500 bytes of '|', '~', spaces and non-ASCII make a bounded key and a parseable id; a system
     * outside the contract's list and a missing check are rejected by the codec (dead letters, no item). */
    char big[1200], chk[501];
    for (int i = 0; i < 500; i++) chk[i] = "|~ /x"[i % 5];
    chk[500] = '\0';
    snprintf(big, sizeof big, EV("h1", T1, "tower", "\"orderId\":\"O7\",\"mismatchFound\":{\"system\":\"wms\","
                                 "\"check\":\"%s\"}"), chk);
    fx_feed(&f, big);
    fx_feed(&f, MM("h2", T1, "\"orderId\":\"O8\"", "mismatchFound", "x", "") /* valid */
                EV("h3", T1, "tower", "\"orderId\":\"O8\",\"mismatchFound\":{\"system\":\"sap\",\"check\":\"y\"}")
                EV("h4", T1, "tower", "\"orderId\":\"O8\",\"mismatchCleared\":{\"system\":\"erp\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 4);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 2);
    v = fx_view(&f, FOLD_VIEW_MISMATCHES);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const char *k = json_string_value(json_object_get(json_array_get(v, i), "key"));
        const char *x = json_string_value(json_object_get(json_array_get(v, i), "exceptionId"));
        evt_exid ex;
        T_ASSERT(k && strlen(k) < 200 && x && evt_exid_parse(x, &ex, NULL) == 0);
        const char *o = json_string_value(json_object_get(json_array_get(v, i), "orderId"));
        if (o && !strcmp(o, "O7"))
            T_EQ_STR(json_string_value(json_object_get(json_array_get(v, i), "check")), chk);
    }
    json_decref(v);
    fx_close(&f);
}

/* The exception lifecycle applies to a mismatch like to every item (docs/exceptions.md). */
#define MMX "o~O1~mismatches~erp~" MR "~1795770000000000000" /* since T1 */
#define MACT(id, at, type, rest) EV(id, at, "tower", "\"" type "\":{\"exceptionId\":\"" MMX "\",\"actor\":\"ana\"" rest "}")

static void mismatch_lifecycle(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, MM("f1", T1, "\"orderId\":\"O1\"", "mismatchFound", MR, ""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "exceptionId"), MMX);
    fx_feed(&f, MACT("a1", T2, "exceptionAcknowledged", ""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "acknowledgedAt"), T2);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "acknowledgedBy"), "ana");
    fx_feed(&f, MACT("n1", T2, "exceptionAssigned", ",\"assignee\":\"ben\",\"note\":\"asked the ERP team\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "assignee"), "ben");
    /* The same disagreement in a later snapshot is the same instance: the actions stay. */
    fx_feed(&f, MM("f2", T2, "\"orderId\":\"O1\"", "mismatchFound", MR, ""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_MISMATCHES, 0, "assignee"), "ben");
    /* Resolved by a person: it leaves the view although the snapshots still disagree; reopened: back. */
    fx_feed(&f, MACT("r1", T3, "exceptionResolved", ",\"resolution\":\"NOT_AN_ISSUE\""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 0);
    fx_feed(&f, MACT("z1", T3, "exceptionReopened", "")); /* same time: "z1" > "r1" is the latest */
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 1);
    /* Cleared: it closes, closedBy the clear, and keeps its history. */
    fx_feed(&f, MM("c3", T3, "\"orderId\":\"O1\"", "mismatchCleared", MR, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_MISMATCHES), 0);
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    json_t *ex = NULL;
    T_EQ_INT(store_exception_json(r, MMX, 0, &ex), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(ex, "state")), "closed");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ex, "closedBy"), "eventId")), "c3");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ex, "openedBy"), "eventId")), "f1");
    json_decref(ex);
    store_reader_end(r);
    fx_close(&f);
}

int main(void)
{
    T_RUN(awaiting_release);
    T_RUN(release_before_approval);
    T_RUN(order_hold);
    T_RUN(inventory_blocks);
    T_RUN(shipment_blocks);
    T_RUN(pending_route);
    T_RUN(missing_pod);
    T_RUN(posting_failed);
    T_RUN(orphans_and_links);
    T_RUN(route_before_ready);
    T_RUN(invoice_before_shipment);
    T_RUN(activity_after_cancel);
    T_RUN(dead_letters);
    T_RUN(sla_breaches);
    T_RUN(exactly_once_by_seq);
    T_RUN(stages);
    T_RUN(timelines);
    T_RUN(entity_and_search);
    T_RUN(mismatches);
    T_RUN(mismatch_lifecycle);
    return t_done();
}
