/* Unit tests of the event codec: times, JSON and protobuf decoding, validation codes, encoding, the reader. */
#include "evt.h"
#include "test.h"

#include <math.h>

#define ENV "\"eventId\":\"e-1\",\"occurredAt\":\"2026-11-27T08:15:00Z\","

/* Decode JSON text; the event (or NULL) for the caller to free, *err filled either way. */
static evt_event *dec(const char *json, evt_error *err)
{
    evt_event *e = NULL;
    ct_status st = evt_from_json_text(&e, json, strlen(json), err);
    if (st != CT_OK && e) T_FAIL("an event was returned with status %d", (int)st);
    return st == CT_OK ? e : NULL;
}

/* Expect json to be rejected with code and field; the message must name the field. */
static void reject_at(int line, const char *json, evt_code code, const char *field)
{
    evt_error err;
    evt_event *e = dec(json, &err);
    test_checks++;
    if (e || err.code != code || strcmp(err.field, field) != 0) {
        fprintf(stderr, "%s:%d: FAIL: want %s at \"%s\", got %s at \"%s\" (%s) for %s\n", __FILE__,
                line, evt_code_str(code), field, evt_code_str(err.code), err.field, err.message, json);
        test_failures++;
    } else if (*field) {
        char want[200];
        snprintf(want, sizeof want, "field \"%s\": ", field);
        T_ASSERT(strncmp(err.message, want, strlen(want)) == 0 || code == EVT_MULTIPLE_PAYLOADS ||
                 code == EVT_UNKNOWN_PAYLOAD);
    }
    evt_free(e);
}
#define REJECT(json, code, field) reject_at(__LINE__, json, code, field)

static evt_event *must_dec(int line, const char *json)
{
    evt_error err;
    evt_event *e = dec(json, &err);
    test_checks++;
    if (!e) {
        fprintf(stderr, "%s:%d: FAIL: rejected %s at \"%s\": %s\n", __FILE__, line,
                evt_code_str(err.code), err.field, err.message);
        test_failures++;
    }
    return e;
}
#define MUST(json) must_dec(__LINE__, json)

/* 1 if two events pack to the same bytes. */
static int same_pack(const evt_event *a, const evt_event *b)
{
    ct_buf pa = {0}, pb = {0};
    evt_pack(a, &pa);
    evt_pack(b, &pb);
    int same = pa.len == pb.len && (pa.len == 0 || memcmp(pa.data, pb.data, pa.len) == 0);
    ct_buf_free(&pa);
    ct_buf_free(&pb);
    return same;
}

/* Remove a path such as "routePlanned.stops[0].shipmentId" from a JSON object. */
static void remove_path(json_t *root, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = root;
    char *tok = buf;
    for (;;) {
        char *dot = strchr(tok, '.');
        if (dot) *dot = '\0';
        char *br = strchr(tok, '[');
        if (br) *br = '\0';
        if (!dot && !br) {
            json_object_del(cur, tok);
            return;
        }
        cur = json_object_get(cur, tok);
        if (br) cur = json_array_get(cur, (size_t)atoi(br + 1));
        if (!cur || !dot) return;
        tok = dot + 1;
    }
}

/* ---- times ----------------------------------------------------------------------- */

static void time_ok(int line, const char *s, int64_t want_sec, int32_t want_nanos)
{
    int64_t sec = 42;
    int32_t ns = 42;
    test_checks++;
    if (evt_time_parse(s, &sec, &ns) != 0 || sec != want_sec || ns != want_nanos) {
        fprintf(stderr, "%s:%d: FAIL: %s -> %lld.%09d, want %lld.%09d\n", __FILE__, line, s,
                (long long)sec, (int)ns, (long long)want_sec, (int)want_nanos);
        test_failures++;
    }
}
#define TIME_OK(s, sec, ns) time_ok(__LINE__, s, sec, ns)

static void time_bad(int line, const char *s)
{
    int64_t sec = 42;
    int32_t ns = 7;
    test_checks++;
    if (evt_time_parse(s, &sec, &ns) == 0 || sec != 42 || ns != 7) {
        fprintf(stderr, "%s:%d: FAIL: %s was accepted or changed the outputs\n", __FILE__, line,
                s ? s : "NULL");
        test_failures++;
    }
}

static void test_time_parse(void)
{
    TIME_OK("2026-11-27T08:30:00Z", 1795768200, 0);
    TIME_OK("2026-11-27T09:30:00+01:00", 1795768200, 0);
    TIME_OK("2026-11-27T03:00:00-05:30", 1795768200, 0);
    TIME_OK("2026-11-27t08:30:00z", 1795768200, 0);
    TIME_OK("2026-11-27T08:30:00-00:00", 1795768200, 0);
    TIME_OK("2026-11-27T08:30:00.5Z", 1795768200, 500000000);
    TIME_OK("2026-11-27T08:30:00.123456789Z", 1795768200, 123456789);
    TIME_OK("2026-11-27T08:30:00.1234567891Z", 1795768200, 123456789);
    TIME_OK("2026-11-27T09:30:00.000001+01:00", 1795768200, 1000);
    TIME_OK("2024-02-29T00:00:00Z", 1709164800, 0);
    TIME_OK("2000-02-29T12:00:00Z", 951825600, 0);
    TIME_OK("1969-12-31T23:59:59Z", -1, 0);
    TIME_OK("0001-01-01T00:00:00Z", INT64_C(-62135596800), 0);
    TIME_OK("9999-12-31T23:59:59.999999999Z", INT64_C(253402300799), 999999999);
    TIME_OK("2026-01-01T00:30:00+23:59", 1767225600 + 1800 - 86340, 0);

    static const char *const bad[] = {
        "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-04-00T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T23:60:00Z",
        "2026-11-27T23:59:60Z", "2026-11-27T08:30:00", "2026-11-27T08:30:00+01", "2026-11-27T08:30:00+0100",
        "2026-11-27T08:30:00+24:00", "2026-11-27T08:30:00+01:60", "2026-11-27 08:30:00Z",
        "2026-11-27T08:30:00.Z", "2026-11-27T08:30Z", "2026-11-27T08:30:00ZZ", "26-11-27T08:30:00Z",
        "0000-12-31T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "", NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) time_bad(__LINE__, bad[i]);
}

static void time_fmt(int line, int64_t sec, int32_t ns, const char *want)
{
    char out[40];
    evt_time_format(sec, ns, out);
    test_checks++;
    if (strcmp(out, want) != 0) {
        fprintf(stderr, "%s:%d: FAIL: format %lld.%d = %s, want %s\n", __FILE__, line,
                (long long)sec, (int)ns, out, want);
        test_failures++;
    }
}
#define TIME_FMT(sec, ns, want) time_fmt(__LINE__, sec, ns, want)

static void test_time_format(void)
{
    TIME_FMT(0, 0, "1970-01-01T00:00:00Z");
    TIME_FMT(1795768200, 0, "2026-11-27T08:30:00Z");
    TIME_FMT(1795768200, 500000000, "2026-11-27T08:30:00.500Z");
    TIME_FMT(1795768200, 123456000, "2026-11-27T08:30:00.123456Z");
    TIME_FMT(1795768200, 1000, "2026-11-27T08:30:00.000001Z");
    TIME_FMT(1795768200, 123456789, "2026-11-27T08:30:00.123456789Z");
    TIME_FMT(1795768200, 1, "2026-11-27T08:30:00.000000001Z");
    TIME_FMT(-1, 0, "1969-12-31T23:59:59Z");
    TIME_FMT(1709164800, 0, "2024-02-29T00:00:00Z");
    TIME_FMT(INT64_C(-62135596800), 0, "0001-01-01T00:00:00Z");
    TIME_FMT(INT64_C(253402300799), 999999999, "9999-12-31T23:59:59.999999999Z");

    /* Every day of four centuries around the epoch goes through parse and back. */
    int bad = 0;
    for (int64_t day = -80000; day < 80000 && bad < 3; day += 1) {
        char out[40];
        int64_t sec;
        int32_t ns;
        evt_time_format(day * 86400 + 3723, 250000000, out);
        if (evt_time_parse(out, &sec, &ns) != 0 || sec != day * 86400 + 3723 || ns != 250000000) {
            T_FAIL("day %lld: %s did not round-trip", (long long)day, out);
            bad++;
        }
    }
    test_checks++;
}

/* ---- the payloads -------------------------------------------------------------- */

typedef struct example {
    const char *type;     /* evt_type_name */
    const char *subject;  /* evt_type_subject */
    const char *json;     /* a valid event of that type */
    const char *need[3];  /* paths that, removed, make it MISSING_FIELD at that path */
} example;

static const example examples[] = {
    {"orderCreated", "order_created",
     "{" ENV "\"source\":{\"system\":\"erp\",\"instance\":\"erp-eu\"},\"orderId\":\"SO-1\","
     "\"orderCreated\":{\"customerId\":\"C-9\",\"channel\":\"ECOMMERCE\",\"lines\":[{\"sku\":\"A\","
     "\"qty\":2},{\"sku\":\"B\",\"qty\":1}],\"promisedBy\":\"2026-11-30T17:00:00.25+01:00\","
     "\"warehouseId\":\"dc-2\",\"carrierId\":\"dhl\"}}",
     {"orderId"}},
    {"orderApproved", "order_approved",
     "{" ENV "\"source\":{\"system\":\"erp\"},\"orderId\":\"SO-1\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}}",
     {"orderId"}},
    {"orderHeld", "order_held",
     "{" ENV "\"source\":{\"system\":\"erp\"},\"orderId\":\"SO-1\",\"orderHeld\":{\"reason\":\"CREDIT\"}}",
     {"orderId"}},
    {"orderHoldReleased", "order_hold_released",
     "{" ENV "\"source\":{\"system\":\"erp\"},\"orderId\":\"SO-1\",\"orderHoldReleased\":{}}", {"orderId"}},
    {"orderReleased", "order_released",
     "{" ENV "\"source\":{\"system\":\"erp\"},\"orderId\":\"SO-1\",\"warehouseId\":\"dc-2\","
     "\"orderReleased\":{\"warehouseId\":\"dc-2\"}}",
     {"orderId"}},
    {"orderCancelled", "order_cancelled",
     "{" ENV "\"source\":{\"system\":\"erp\"},\"orderId\":\"SO-1\",\"orderCancelled\":{\"reason\":\"customer asked\"}}",
     {"orderId"}},
    {"pickStarted", "pick_started",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"orderId\":\"SO-1\",\"pickStarted\":{\"warehouseId\":\"dc-2\",\"waveId\":\"W7\"}}",
     {"orderId"}},
    {"pickShort", "pick_short",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"orderId\":\"SO-1\",\"pickShort\":{\"sku\":\"A\",\"qtyShort\":3}}",
     {"orderId", "pickShort.sku"}},
    {"inventoryResolved", "inventory_resolved",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"orderId\":\"SO-1\",\"inventoryResolved\":{\"sku\":\"A\"}}",
     {"orderId", "inventoryResolved.sku"}},
    {"packCompleted", "pack_completed",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"orderId\":\"SO-1\",\"shipmentId\":\"SH-1\","
     "\"packCompleted\":{\"cartons\":3,\"weightKg\":12.5}}",
     {"orderId", "shipmentId"}},
    {"shipmentReady", "shipment_ready",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"orderId\":\"SO-1\",\"shipmentId\":\"SH-1\","
     "\"shipmentReady\":{\"warehouseId\":\"dc-2\",\"dockId\":\"D4\"}}",
     {"orderId", "shipmentId"}},
    {"shipmentBlocked", "shipment_blocked",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"shipmentId\":\"SH-1\",\"shipmentBlocked\":{\"reason\":\"DOCK_CAPACITY\"}}",
     {"shipmentId"}},
    {"shipmentUnblocked", "shipment_unblocked",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"shipmentId\":\"SH-1\",\"shipmentUnblocked\":{}}", {"shipmentId"}},
    {"shipmentConfirmed", "shipment_confirmed",
     "{" ENV "\"source\":{\"system\":\"wms\"},\"shipmentId\":\"SH-1\",\"carrierId\":\"ups\","
     "\"shipmentConfirmed\":{\"carrierId\":\"dhl\"}}",
     {"shipmentId"}},
    {"routeRequested", "route_requested",
     "{" ENV "\"source\":{\"system\":\"tms\"},\"routeRequested\":{\"shipmentIds\":[\"SH-1\",\"SH-2\"]}}", {NULL}},
    {"routePlanned", "route_planned",
     "{" ENV "\"source\":{\"system\":\"tms\"},\"routeId\":\"R-1\",\"routePlanned\":{\"vehicleId\":\"V1\","
     "\"carrierId\":\"dhl\",\"stops\":[{\"shipmentId\":\"SH-1\",\"sequence\":1,\"eta\":\"2026-11-27T14:00:00Z\"},"
     "{\"shipmentId\":\"SH-2\",\"sequence\":2}]}}",
     {"routeId", "routePlanned.stops[0].shipmentId", "routePlanned.stops[1].shipmentId"}},
    {"routeFailed", "route_failed",
     "{" ENV "\"source\":{\"system\":\"tms\"},\"routeFailed\":{\"shipmentIds\":[\"SH-1\"],\"reason\":\"no truck\"}}", {NULL}},
    {"routeDispatched", "route_dispatched",
     "{" ENV "\"source\":{\"system\":\"tms\"},\"routeId\":\"R-1\",\"routeDispatched\":{}}", {"routeId"}},
    {"deliveryAttempted", "delivery_attempted",
     "{" ENV "\"source\":{\"system\":\"carrier\"},\"shipmentId\":\"SH-1\",\"deliveryAttempted\":{\"reason\":\"nobody home\"}}",
     {"shipmentId"}},
    {"deliveryCompleted", "delivery_completed",
     "{" ENV "\"source\":{\"system\":\"carrier\"},\"shipmentId\":\"SH-1\",\"deliveryCompleted\":{}}", {"shipmentId"}},
    {"podCaptured", "pod_captured",
     "{" ENV "\"source\":{\"system\":\"carrier\"},\"shipmentId\":\"SH-1\",\"podCaptured\":{\"podRef\":\"POD-7\"}}",
     {"shipmentId"}},
    {"invoicePosted", "invoice_posted",
     "{" ENV "\"source\":{\"system\":\"finance\"},\"orderId\":\"SO-1\",\"invoicePosted\":{\"invoiceId\":\"I-1\","
     "\"amount\":\"-1234.50\",\"currency\":\"EUR\"}}",
     {"orderId"}},
    {"postingFailed", "posting_failed",
     "{" ENV "\"source\":{\"system\":\"finance\"},\"orderId\":\"SO-1\",\"postingFailed\":{\"reason\":\"timeout\","
     "\"interface\":\"SAP-FI\"}}",
     {"orderId"}},
    {"slaBreached", "sla_breached",
     "{" ENV "\"source\":{\"system\":\"tower\"},\"orderId\":\"SO-1\",\"slaBreached\":{\"rule\":\"release\","
     "\"dueAt\":\"2026-11-27T08:30:00Z\"}}",
     {"orderId", "slaBreached.rule"}},
    /* Contract v1.2. */
    {"orderAtRisk", "order_at_risk",
     "{" ENV "\"source\":{\"system\":\"tower\"},\"orderId\":\"SO-1\",\"orderAtRisk\":{"
     "\"predictedBy\":\"2026-11-27T14:20:00Z\",\"promisedBy\":\"2026-11-27T12:00:00Z\",\"stage\":\"PICKING\","
     "\"basis\":\"p80 of 412 orders from PICKING at dc-2\"}}",
     {"orderId", "orderAtRisk.predictedBy"}},
    {"orderBackOnTrack", "order_back_on_track",
     "{" ENV "\"source\":{\"system\":\"tower\"},\"orderId\":\"SO-1\",\"orderBackOnTrack\":{"
     "\"predictedBy\":\"2026-11-27T11:20:00Z\"}}",
     {"orderId"}},
    {"warehouseDefined", "warehouse_defined",
     "{" ENV "\"source\":{\"system\":\"mdm\"},\"warehouseDefined\":{\"warehouseId\":\"dc-2\","
     "\"name\":\"Leipzig DC\",\"region\":\"EU-Central\",\"timeZone\":\"Europe/Berlin\"}}",
     {"warehouseDefined.warehouseId"}},
    {"carrierDefined", "carrier_defined",
     "{" ENV "\"source\":{\"system\":\"mdm\"},\"carrierDefined\":{\"carrierId\":\"dhl\",\"name\":\"DHL\"}}",
     {"carrierDefined.carrierId"}},
    {"skuDefined", "sku_defined",
     "{" ENV "\"source\":{\"system\":\"mdm\"},\"skuDefined\":{\"sku\":\"A-1\",\"unit\":\"EA\"}}",
     {"skuDefined.sku"}},
    {"mismatchFound", "mismatch_found",
     "{" ENV "\"source\":{\"system\":\"tower\"},\"orderId\":\"SO-1\",\"mismatchFound\":{\"system\":\"erp\","
     "\"check\":\"missing_milestone:orderReleased\",\"theirs\":\"RELEASED\",\"ours\":\"stage APPROVED; orderReleased "
     "not seen\",\"snapshot\":\"erp-status.csv 2026-11-27T02:10:00Z\",\"message\":\"erp says RELEASED\"}}",
     {"orderId", "mismatchFound.system", "mismatchFound.check"}},
    {"mismatchCleared", "mismatch_cleared",
     "{" ENV "\"source\":{\"system\":\"tower\"},\"orderId\":\"SO-1\",\"mismatchCleared\":{\"system\":\"wms\","
     "\"check\":\"unknown_order\",\"snapshot\":\"wms.csv 2026-11-28T02:10:00Z\"}}",
     {"orderId", "mismatchCleared.system", "mismatchCleared.check"}},
};
#define N_EXAMPLES (sizeof examples / sizeof examples[0])

/* JSON -> event -> JSON -> event packs to the same bytes, and so does a protobuf round trip. */
static void test_payload_round_trips(void)
{
    T_EQ_INT(N_EXAMPLES, 31);
    for (size_t i = 0; i < N_EXAMPLES; i++) {
        evt_event *a = MUST(examples[i].json);
        if (!a) continue;
        T_EQ_STR(evt_type_name(a), examples[i].type);
        T_EQ_STR(evt_type_subject(a), examples[i].subject);

        json_t *j = evt_to_json(a);
        char *text = json_dumps(j, JSON_COMPACT);
        evt_event *b = MUST(text);
        T_ASSERT(b && same_pack(a, b));
        /* The canonical JSON is a fixed point. */
        json_t *j2 = b ? evt_to_json(b) : NULL;
        char *text2 = j2 ? json_dumps(j2, JSON_COMPACT) : NULL;
        T_EQ_STR(text2, text);

        ct_buf pb = {0};
        evt_pack(a, &pb);
        evt_event *c = NULL;
        evt_error err;
        T_EQ_INT(evt_from_protobuf(&c, (const uint8_t *)pb.data, pb.len, &err), CT_OK);
        T_ASSERT(c && same_pack(a, c));
        T_EQ_STR(c ? evt_type_name(c) : "", examples[i].type);

        ct_buf_free(&pb);
        free(text);
        free(text2);
        json_decref(j);
        json_decref(j2);
        evt_free(a);
        evt_free(b);
        evt_free(c);
    }
}

/* Removing each required key from a valid example is MISSING_FIELD naming that key. */
static void test_required_keys(void)
{
    for (size_t i = 0; i < N_EXAMPLES; i++) {
        for (int k = 0; k < 3 && examples[i].need[k]; k++) {
            json_t *root = json_loads(examples[i].json, 0, NULL);
            remove_path(root, examples[i].need[k]);
            char *text = json_dumps(root, JSON_COMPACT);
            REJECT(text, EVT_MISSING_FIELD, examples[i].need[k]);
            free(text);
            json_decref(root);
        }
    }
    /* A definition's code may come from the envelope instead (contract v1.2). */
    evt_event *w = MUST("{" ENV "\"source\":{\"system\":\"mdm\"},\"warehouseId\":\"dc-9\",\"warehouseDefined\":{}}");
    T_EQ_STR(w ? evt_defined_code(w) : NULL, "dc-9");
    evt_free(w);
    REJECT("{" ENV "\"source\":{\"system\":\"mdm\"},\"carrierDefined\":{\"carrierId\":\"bad id\"}}",
           EVT_INVALID_ID, "carrierDefined.carrierId");
    /* slaBreached is satisfied by a shipmentId alone. */
    evt_free(MUST("{" ENV "\"source\":{\"system\":\"tower\"},\"shipmentId\":\"SH-1\",\"slaBreached\":{\"rule\":\"pod\"}}"));
    /* The envelope's own required fields. */
    REJECT("{\"occurredAt\":\"2026-11-27T08:15:00Z\",\"source\":{\"system\":\"erp\"},\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_MISSING_FIELD, "eventId");
    REJECT("{\"eventId\":\"e\",\"source\":{\"system\":\"erp\"},\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_MISSING_FIELD, "occurredAt");
    REJECT("{" ENV "\"orderId\":\"S\",\"orderHoldReleased\":{}}", EVT_MISSING_FIELD, "source.system");
    REJECT("{" ENV "\"source\":{\"instance\":\"x\"},\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_MISSING_FIELD, "source.system");
    /* An empty free text is absent, so an empty sku is a missing one. */
    REJECT("{" ENV "\"source\":{\"system\":\"wms\"},\"orderId\":\"S\",\"pickShort\":{\"sku\":\"\"}}",
           EVT_MISSING_FIELD, "pickShort.sku");
}

#define ERP "\"source\":{\"system\":\"erp\"},"

/* Every rejection code, with the JSON path of the culprit. */
static void test_validation_codes(void)
{
    evt_error err;

    REJECT("nope", EVT_MALFORMED, "");
    REJECT("[{}]", EVT_MALFORMED, "");
    REJECT("{\"eventId\":", EVT_MALFORMED, "");
    T_ASSERT(dec("{\"eventId\": }", &err) == NULL && strstr(err.message, "column") != NULL);

    REJECT("{" ENV ERP "\"orderId\":\"SO-1\",\"orderCancelled\":{\"reason\":5}}", EVT_INVALID_TYPE,
           "orderCancelled.reason");
    REJECT("{\"eventId\":7," "\"occurredAt\":\"2026-11-27T08:15:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_TYPE, "eventId");
    REJECT("{\"eventId\":\"e\",\"occurredAt\":17," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_TYPE, "occurredAt");
    REJECT("{" ENV "\"source\":\"erp\",\"orderId\":\"S\",\"orderHoldReleased\":{}}", EVT_INVALID_TYPE, "source");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderApproved\":\"dc-2\"}", EVT_INVALID_TYPE, "orderApproved");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"lines\":{}}}", EVT_INVALID_TYPE, "orderCreated.lines");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"lines\":[{\"qty\":1},{\"qty\":\"2\"}]}}",
           EVT_INVALID_TYPE, "orderCreated.lines[1].qty");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"channel\":1}}", EVT_INVALID_TYPE, "orderCreated.channel");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"shipmentId\":\"H\",\"packCompleted\":{\"weightKg\":\"3\"}}",
           EVT_INVALID_TYPE, "packCompleted.weightKg");
    REJECT("{" ENV ERP "\"routeRequested\":{\"shipmentIds\":[\"A\",null]}}", EVT_INVALID_TYPE,
           "routeRequested.shipmentIds[1]");

    REJECT("{\"eventId\":\"e 1\",\"occurredAt\":\"2026-11-27T08:15:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_ID, "eventId");
    REJECT("{" ENV ERP "\"orderId\":\"\",\"orderHoldReleased\":{}}", EVT_INVALID_ID, "orderId");
    REJECT("{" ENV ERP "\"orderId\":\"SO 1\",\"orderHoldReleased\":{}}", EVT_INVALID_ID, "orderId");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"carrierId\":\"0123456789012345678901234567890123456789012345678901234567890123X\","
           "\"orderHoldReleased\":{}}", EVT_INVALID_ID, "carrierId");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderApproved\":{\"warehouseId\":\"dc/2\"}}", EVT_INVALID_ID,
           "orderApproved.warehouseId");
    REJECT("{" ENV ERP "\"routeRequested\":{\"shipmentIds\":[\"A\",\"\"]}}", EVT_INVALID_ID,
           "routeRequested.shipmentIds[1]");
    REJECT("{" ENV ERP "\"routeId\":\"R\",\"routePlanned\":{\"stops\":[{\"shipmentId\":\"A B\"}]}}", EVT_INVALID_ID,
           "routePlanned.stops[0].shipmentId");
    /* 128 characters is the longest event id, 129 too long. */
    char id[140], json[400];
    memset(id, 'x', 129);
    id[129] = '\0';
    snprintf(json, sizeof json, "{\"eventId\":\"%s\",\"occurredAt\":\"2026-11-27T08:15:00Z\"," ERP
             "\"orderId\":\"S\",\"orderHoldReleased\":{}}", id);
    REJECT(json, EVT_INVALID_ID, "eventId");
    id[128] = '\0';
    snprintf(json, sizeof json, "{\"eventId\":\"%s\",\"occurredAt\":\"2026-11-27T08:15:00Z\"," ERP
             "\"orderId\":\"S\",\"orderHoldReleased\":{}}", id);
    evt_free(MUST(json));

    T_ASSERT(!dec("{\"eventId\":\"e\",\"occurredAt\":\"2026-13-01T00:00:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
                  &err));
    T_EQ_INT(err.code, EVT_INVALID_TIME);
    T_EQ_STR(err.field, "occurredAt");
    T_EQ_STR(err.message, "field \"occurredAt\": \"2026-13-01T00:00:00Z\" is not an RFC 3339 time");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"promisedBy\":\"2026-11-27\"}}", EVT_INVALID_TIME,
           "orderCreated.promisedBy");
    REJECT("{" ENV ERP "\"routeId\":\"R\",\"routePlanned\":{\"stops\":[{\"shipmentId\":\"A\",\"eta\":\"2026-11-27T24:00:00Z\"}]}}",
           EVT_INVALID_TIME, "routePlanned.stops[0].eta");
    /* Times parse in the years 1-9999, but an event's lie in 2000-2099 (a zero value or a sentinel
     * from a producer would make an item centuries old, or one that never breaches). */
    REJECT("{\"eventId\":\"e\",\"occurredAt\":\"0001-01-01T00:00:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_TIME, "occurredAt");
    T_ASSERT(!dec("{\"eventId\":\"e\",\"occurredAt\":\"0001-01-01T00:00:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
                  &err));
    T_ASSERT(strstr(err.message, "0001-01-01T00:00:00Z is outside the accepted years 2000-2099") != NULL);
    REJECT("{\"eventId\":\"e\",\"occurredAt\":\"9999-12-31T23:59:59Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_TIME, "occurredAt");
    REJECT("{\"eventId\":\"e\",\"occurredAt\":\"1999-12-31T23:59:59Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_TIME, "occurredAt");
    REJECT("{\"eventId\":\"e\",\"occurredAt\":\"2100-01-01T00:00:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}",
           EVT_INVALID_TIME, "occurredAt");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"promisedBy\":\"9999-01-01T00:00:00Z\"}}", EVT_INVALID_TIME,
           "orderCreated.promisedBy");
    evt_free(MUST("{\"eventId\":\"e\",\"occurredAt\":\"2000-01-01T00:00:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}"));
    evt_free(MUST("{\"eventId\":\"e\",\"occurredAt\":\"2099-12-31T23:59:59.999Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}"));

    /* Nesting is bounded before jansson's recursive parser sees it (a server thread's stack). */
    {
        size_t n = 60000; /* within the size limit: the depth is what is judged */
        char *deep = ct_malloc(n + 1);
        memset(deep, '[', n);
        deep[n] = 0;
        T_ASSERT(!dec(deep, &err));
        T_EQ_INT(err.code, EVT_TOO_LARGE);
        if (!strstr(err.message, "nests deeper than 32")) T_FAIL("message: %s", err.message);
        free(deep);
        char ok[200], bad[200];
        snprintf(ok, sizeof ok, "{" ENV ERP "\"orderId\":\"S\",\"orderHoldReleased\":{},\"x\":%s1%s}",
                 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
        snprintf(bad, sizeof bad, "{" ENV ERP "\"orderId\":\"S\",\"orderHoldReleased\":{},\"x\":%s1%s}",
                 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
        T_ASSERT(!dec(bad, &err));
        T_EQ_INT(err.code, EVT_TOO_LARGE);
        evt_event *e31 = dec(ok, &err); /* 31 levels pass the bound (the unknown field is judged as ever) */
        T_ASSERT(e31 || err.code != EVT_TOO_LARGE);
        evt_free(e31);
    }

    T_ASSERT(!dec("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"lines\":[{\"sku\":\"A\",\"qty\":1},{\"sku\":\"B\",\"qty\":0}]}}",
                  &err));
    T_EQ_INT(err.code, EVT_INVALID_VALUE);
    T_EQ_STR(err.message, "field \"orderCreated.lines[1].qty\": must be > 0, got 0");
    T_EQ_STR(err.event_id, "e-1");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"lines\":[{\"qty\":1.5}]}}", EVT_INVALID_VALUE,
           "orderCreated.lines[0].qty");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"lines\":[{\"qty\":3000000000}]}}", EVT_INVALID_VALUE,
           "orderCreated.lines[0].qty");
    evt_free(MUST("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"lines\":[{\"qty\":2.0}]}}"));
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"pickShort\":{\"sku\":\"A\",\"qtyShort\":-1}}", EVT_INVALID_VALUE,
           "pickShort.qtyShort");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"shipmentId\":\"H\",\"packCompleted\":{\"cartons\":0}}", EVT_INVALID_VALUE,
           "packCompleted.cartons");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"shipmentId\":\"H\",\"packCompleted\":{\"weightKg\":-0.5}}",
           EVT_INVALID_VALUE, "packCompleted.weightKg");
    REJECT("{" ENV ERP "\"routeRequested\":{\"shipmentIds\":[]}}", EVT_INVALID_VALUE, "routeRequested.shipmentIds");
    REJECT("{" ENV ERP "\"routeFailed\":{\"reason\":\"x\"}}", EVT_INVALID_VALUE, "routeFailed.shipmentIds");
    REJECT("{" ENV ERP "\"routeId\":\"R\",\"routePlanned\":{\"stops\":[]}}", EVT_INVALID_VALUE, "routePlanned.stops");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"invoicePosted\":{\"amount\":\"12,50\"}}", EVT_INVALID_VALUE,
           "invoicePosted.amount");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"invoicePosted\":{\"amount\":\"12.\"}}", EVT_INVALID_VALUE,
           "invoicePosted.amount");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"invoicePosted\":{\"amount\":1.5}}", EVT_INVALID_TYPE,
           "invoicePosted.amount");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"invoicePosted\":{\"currency\":\"eur\"}}", EVT_INVALID_VALUE,
           "invoicePosted.currency");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderCreated\":{\"channel\":\"CHANNEL_UNSPECIFIED\"}}", EVT_INVALID_VALUE,
           "orderCreated.channel");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderHeld\":{\"reason\":\"WEATHER\"}}", EVT_INVALID_VALUE, "orderHeld.reason");
    REJECT("{" ENV "\"source\":{\"system\":\"sap\"},\"orderId\":\"S\",\"orderHoldReleased\":{}}", EVT_INVALID_VALUE,
           "source.system");

    char big[600];
    memset(big, 'r', 513);
    big[513] = '\0';
    char *long_json = ct_sprintf("{" ENV ERP "\"orderId\":\"S\",\"orderCancelled\":{\"reason\":\"%s\"}}", big);
    REJECT(long_json, EVT_TOO_LARGE, "orderCancelled.reason");
    free(long_json);
    char *huge = ct_malloc(EVT_MAX_EVENT_BYTES + 2);
    memset(huge, ' ', EVT_MAX_EVENT_BYTES + 1);
    huge[0] = '{';
    huge[EVT_MAX_EVENT_BYTES] = '}';
    huge[EVT_MAX_EVENT_BYTES + 1] = '\0';
    REJECT(huge, EVT_TOO_LARGE, "");
    free(huge);

    REJECT("{" ENV ERP "\"orderId\":\"S\"}", EVT_NO_PAYLOAD, "");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderApproved\":null,\"note\":\"x\"}", EVT_NO_PAYLOAD, "");
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderTeleported\":{\"to\":\"Mars\"},\"weird\":[1]}", EVT_UNKNOWN_PAYLOAD,
           "orderTeleported");
    T_ASSERT(!dec("{" ENV ERP "\"orderId\":\"S\",\"fooBar\":{},\"bazQux\":{}}", &err));
    T_EQ_INT(err.code, EVT_UNKNOWN_PAYLOAD);
    T_ASSERT(strstr(err.message, "\"fooBar\", \"bazQux\"") != NULL);
    REJECT("{" ENV ERP "\"orderId\":\"S\",\"orderApproved\":{},\"orderReleased\":{}}", EVT_MULTIPLE_PAYLOADS,
           "orderReleased");

    /* The eventId is reported even when the event is otherwise broken, or is itself the problem. */
    T_ASSERT(!dec("{\"eventId\":\"bad id\",\"source\":5}", &err));
    T_EQ_INT(err.code, EVT_INVALID_TYPE);
    T_EQ_STR(err.event_id, "bad id");
    T_ASSERT(!dec("{\"eventId\":\"\",\"occurredAt\":\"2026-11-27T08:15:00Z\"," ERP "\"orderId\":\"S\",\"orderHoldReleased\":{}}", &err));
    T_EQ_INT(err.code, EVT_INVALID_ID);
    T_EQ_STR(err.event_id, "");
    T_ASSERT(!dec("{\"eventId\":5}", &err));
    T_EQ_STR(err.event_id, "");

    T_EQ_STR(evt_code_str(EVT_OK), "OK");
    T_EQ_STR(evt_code_str(EVT_MISSING_FIELD), "MISSING_FIELD");
    T_EQ_STR(evt_code_str(EVT_CONFLICTING_DUPLICATE), "CONFLICTING_DUPLICATE");
    T_EQ_STR(evt_code_str((evt_code)99), "UNKNOWN");
}

/* Unknown JSON fields are ignored; the result is the event without them. */
static void test_unknown_json_fields(void)
{
    evt_event *plain = MUST("{" ENV ERP "\"orderId\":\"S\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}}");
    evt_event *extra = MUST("{" ENV "\"source\":{\"system\":\"erp\",\"zone\":\"eu\"},\"orderId\":\"S\",\"v\":2,"
                            "\"orderApproved\":{\"warehouseId\":\"dc-2\",\"priority\":true},\"futurePayload\":{\"a\":1},"
                            "\"orderHeld\":null,\"routeId\":null}");
    T_ASSERT(plain && extra && same_pack(plain, extra));
    /* Offsets are converted: the same instant is the same event. */
    evt_event *offset = MUST("{\"eventId\":\"e-1\",\"occurredAt\":\"2026-11-27T09:15:00+01:00\"," ERP
                             "\"orderId\":\"S\",\"orderApproved\":{\"warehouseId\":\"dc-2\"}}");
    T_ASSERT(plain && offset && same_pack(plain, offset));
    /* Normalisation: empty free text becomes absent, times carry both fields. */
    evt_event *e = MUST("{" ENV ERP "\"orderId\":\"S\",\"orderCancelled\":{\"reason\":\"\"}}");
    if (e) {
        T_ASSERT(e->order_cancelled->reason == NULL);
        T_ASSERT(e->occurred_at->has_seconds && e->occurred_at->has_nanos);
        json_t *j = evt_to_json(e);
        char *s = json_dumps(j, JSON_COMPACT);
        T_EQ_STR(s, "{\"eventId\":\"e-1\",\"occurredAt\":\"2026-11-27T08:15:00Z\",\"source\":{\"system\":\"erp\"},"
                    "\"orderId\":\"S\",\"orderCancelled\":{}}");
        free(s);
        json_decref(j);
    }
    evt_free(plain);
    evt_free(extra);
    evt_free(offset);
    evt_free(e);
}

/* Append a varint to a buffer, for hand-made protobuf bytes. */
static void add_varint(ct_buf *b, uint64_t v)
{
    while (v >= 0x80) {
        ct_buf_addc(b, (char)(v | 0x80));
        v >>= 7;
    }
    ct_buf_addc(b, (char)v);
}

/* Append the protobuf bytes of any message. */
static void pack_msg(const ProtobufCMessage *m, ct_buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *tmp = ct_malloc(n);
    protobuf_c_message_pack(m, tmp);
    ct_buf_add(out, tmp, n);
    free(tmp);
}

static void test_protobuf(void)
{
    evt_error err;
    evt_event *e = MUST(examples[15].json); /* routePlanned: nested messages and arrays */
    if (!e) return;
    ct_buf orig = {0}, bytes = {0}, again = {0};
    evt_pack(e, &orig);

    /* An unknown varint field 99 at the end of the envelope is dropped. */
    ct_buf_add(&bytes, orig.data, orig.len);
    add_varint(&bytes, (99u << 3) | 0);
    add_varint(&bytes, 1);
    evt_event *d = NULL;
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_OK);
    if (d) {
        T_EQ_INT(d->base.n_unknown_fields, 0);
        evt_pack(d, &again);
        T_ASSERT(again.len == orig.len && memcmp(again.data, orig.data, orig.len) == 0);
        evt_free(d);
        d = NULL;
    }

    /* Unknown fields inside the payload and inside a stop are dropped too. */
    Tower__V1__RoutePlanned *rp = e->route_planned;
    ct_buf stop = {0}, payload = {0};
    e->payload_case = TOWER__V1__EVENT__PAYLOAD__NOT_SET;
    ct_buf_reset(&bytes);
    evt_pack(e, &bytes); /* the envelope alone */
    e->payload_case = TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED;
    size_t nstops = rp->n_stops;
    rp->n_stops = 0; /* pack the payload without stops, then add them by hand */
    ct_buf_reset(&payload);
    pack_msg(&rp->base, &payload);
    rp->n_stops = nstops;
    for (size_t i = 0; i < nstops; i++) {
        ct_buf_reset(&stop);
        pack_msg(&rp->stops[i]->base, &stop);
        add_varint(&stop, (77u << 3) | 2);
        add_varint(&stop, 3);
        ct_buf_add(&stop, "abc", 3);
        add_varint(&payload, (3u << 3) | 2);
        add_varint(&payload, stop.len);
        ct_buf_add(&payload, stop.data, stop.len);
    }
    add_varint(&payload, (50u << 3) | 5);
    ct_buf_add(&payload, "\1\2\3\4", 4);
    add_varint(&bytes, (35u << 3) | 2);
    add_varint(&bytes, payload.len);
    ct_buf_add(&bytes, payload.data, payload.len);
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_OK);
    if (d) {
        T_EQ_INT(d->route_planned->base.n_unknown_fields, 0);
        T_EQ_INT(d->route_planned->stops[1]->base.n_unknown_fields, 0);
        ct_buf_reset(&again);
        evt_pack(d, &again);
        T_ASSERT(again.len == orig.len && memcmp(again.data, orig.data, orig.len) == 0);
        evt_free(d);
        d = NULL;
    }

    /* Only an unknown message-like field and no known payload: UNKNOWN_PAYLOAD; nothing: NO_PAYLOAD. */
    e->payload_case = TOWER__V1__EVENT__PAYLOAD__NOT_SET;
    ct_buf_reset(&bytes);
    evt_pack(e, &bytes);
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_INVALID);
    T_EQ_INT(err.code, EVT_NO_PAYLOAD);
    T_EQ_STR(err.event_id, "e-1");
    add_varint(&bytes, (99u << 3) | 2);
    add_varint(&bytes, 0);
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_INVALID);
    T_EQ_INT(err.code, EVT_UNKNOWN_PAYLOAD);
    T_ASSERT(strstr(err.message, "field 99") != NULL);
    e->payload_case = TOWER__V1__EVENT__PAYLOAD_ROUTE_PLANNED;

    /* Bytes that are not an event, and too many of them. */
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)"\xff\xff\xff", 3, &err), CT_INVALID);
    T_EQ_INT(err.code, EVT_UNDECODABLE);
    uint8_t *zeros = ct_calloc(EVT_MAX_EVENT_BYTES + 1, 1);
    T_EQ_INT(evt_from_protobuf(&d, zeros, EVT_MAX_EVENT_BYTES + 1, &err), CT_INVALID);
    T_EQ_INT(err.code, EVT_TOO_LARGE);
    free(zeros);

    /* Protobuf input is checked by evt_validate alone: values JSON could never carry. */
    rp->stops[0]->eta->nanos = 1000000000;
    ct_buf_reset(&bytes);
    evt_pack(e, &bytes);
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_INVALID);
    T_EQ_INT(err.code, EVT_INVALID_TIME);
    T_EQ_STR(err.field, "routePlanned.stops[0].eta");
    rp->stops[0]->eta->nanos = 0;
    rp->stops[0]->eta->has_nanos = 0; /* absent nanos are normalised to present zero */
    T_EQ_INT(evt_validate(e, &err), CT_OK);
    T_ASSERT(rp->stops[0]->eta->has_nanos == 1);
    free(rp->stops[1]->shipment_id);
    rp->stops[1]->shipment_id = NULL;
    ct_buf_reset(&bytes);
    evt_pack(e, &bytes);
    T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_INVALID);
    T_EQ_INT(err.code, EVT_MISSING_FIELD);
    T_EQ_STR(err.field, "routePlanned.stops[1].shipmentId");
    T_EQ_STR(err.event_id, "e-1");

    evt_event *h = MUST("{" ENV ERP "\"orderId\":\"S\",\"orderHeld\":{\"reason\":\"CREDIT\"}}");
    if (h) {
        h->order_held->reason = (Tower__V1__OrderHeld__Reason)99;
        T_EQ_INT(evt_validate(h, &err), CT_INVALID);
        T_EQ_INT(err.code, EVT_INVALID_VALUE);
        T_EQ_STR(err.field, "orderHeld.reason");
        h->order_held->reason = TOWER__V1__ORDER_HELD__REASON__REASON_UNSPECIFIED;
        T_EQ_INT(evt_validate(h, &err), CT_INVALID);
        T_EQ_INT(err.code, EVT_INVALID_VALUE);
        evt_free(h);
    }
    evt_event *w = MUST("{" ENV ERP "\"orderId\":\"S\",\"shipmentId\":\"H\",\"packCompleted\":{\"weightKg\":1}}");
    if (w) {
        w->pack_completed->weight_kg = NAN;
        ct_buf_reset(&bytes);
        evt_pack(w, &bytes);
        T_EQ_INT(evt_from_protobuf(&d, (const uint8_t *)bytes.data, bytes.len, &err), CT_INVALID);
        T_EQ_INT(err.code, EVT_INVALID_VALUE);
        T_EQ_STR(err.field, "packCompleted.weightKg");
        w->pack_completed->weight_kg = -0.0;
        T_EQ_INT(evt_validate(w, &err), CT_OK);
        T_ASSERT(!signbit(w->pack_completed->weight_kg));
        free(w->event_id);
        w->event_id = ct_strdup("caf\xc3\xa9");
        T_EQ_INT(evt_validate(w, &err), CT_INVALID);
        T_EQ_INT(err.code, EVT_INVALID_ID);
        T_EQ_STR(err.event_id, "caf\xc3\xa9");
        free(w->event_id);
        w->event_id = ct_strdup("e-2");
        w->source->instance = ct_strdup("bad \xff utf8");
        T_EQ_INT(evt_validate(w, &err), CT_INVALID);
        T_EQ_INT(err.code, EVT_INVALID_VALUE);
        T_EQ_STR(err.field, "source.instance");
        evt_free(w);
    }

    ct_buf_free(&orig);
    ct_buf_free(&bytes);
    ct_buf_free(&again);
    ct_buf_free(&stop);
    ct_buf_free(&payload);
    evt_free(e);
}

/* ---- the reader --------------------------------------------------------------------- */

#define GOOD(id) "{\"eventId\":\"" id "\",\"occurredAt\":\"2026-11-27T08:15:00Z\",\"source\":{\"system\":\"erp\"}," \
                 "\"orderId\":\"S\",\"orderHoldReleased\":{}}"

typedef struct seen {
    size_t line;
    evt_code code;
    char id[EVT_MAX_EVENT_ID + 1];
    char raw[300];
} seen;

/* Read everything; returns the count of records, or -1 if next failed. */
static int read_all(evt_reader *r, seen *out, int max)
{
    int n = 0;
    evt_record rec;
    int got;
    while ((got = evt_reader_next(r, &rec)) == 1 && n < max) {
        out[n].line = rec.line;
        out[n].code = rec.event ? EVT_OK : rec.error.code;
        snprintf(out[n].id, sizeof out[n].id, "%s", rec.event ? rec.event->event_id : rec.error.event_id);
        snprintf(out[n].raw, sizeof out[n].raw, "%.*s", (int)(rec.raw_len < 299 ? rec.raw_len : 299), rec.raw);
        T_EQ_INT(strlen(out[n].raw), rec.raw_len);
        evt_free(rec.event);
        n++;
    }
    return got < 0 ? -1 : n;
}

static const char ndjson[] = "\n  \n" GOOD("a") "\n"
                             "   \t\n"
                             GOOD("b") "\r\n"
                             "{\"eventId\":\"c\", oops\n"
                             GOOD("d") "\n"
                             "{\"eventId\":\"e\"}\n"
                             GOOD("f");

static void check_ndjson(seen *s, int n)
{
    T_EQ_INT(n, 6);
    if (n != 6) return;
    T_EQ_INT(s[0].line, 3);
    T_EQ_INT(s[0].code, EVT_OK);
    T_EQ_STR(s[0].id, "a");
    T_EQ_STR(s[0].raw, GOOD("a"));
    T_EQ_INT(s[1].line, 5);
    T_EQ_STR(s[1].raw, GOOD("b"));
    T_EQ_INT(s[1].code, EVT_OK);
    T_EQ_INT(s[2].line, 6);
    T_EQ_INT(s[2].code, EVT_MALFORMED);
    T_EQ_STR(s[2].raw, "{\"eventId\":\"c\", oops");
    T_EQ_INT(s[3].line, 7);
    T_EQ_STR(s[3].id, "d");
    T_EQ_INT(s[4].line, 8);
    T_EQ_INT(s[4].code, EVT_MISSING_FIELD);
    T_EQ_STR(s[4].id, "e");
    T_EQ_INT(s[5].line, 9);
    T_EQ_STR(s[5].id, "f");
}

static void test_reader_ndjson(void)
{
    seen s[10];
    evt_reader *r = NULL;
    T_EQ_INT(evt_reader_open_mem(&r, ndjson, strlen(ndjson)), CT_OK);
    T_EQ_INT(evt_reader_is_array(r), 0);
    check_ndjson(s, read_all(r, s, 10));
    evt_reader_destroy(r);

    FILE *f = tmpfile();
    fputs(ndjson, f);
    rewind(f);
    T_EQ_INT(evt_reader_open(&r, f), CT_OK);
    check_ndjson(s, read_all(r, s, 10));
    evt_reader_destroy(r);
    fclose(f);

    /* A line over the size limit is one TOO_LARGE record; the next line is still read. */
    ct_buf big = {0};
    ct_buf_addc(&big, '{');
    for (int i = 0; i < EVT_MAX_EVENT_BYTES; i++) ct_buf_addc(&big, ' ');
    ct_buf_adds(&big, "}\n" GOOD("z") "\n");
    T_EQ_INT(evt_reader_open_mem(&r, big.data, big.len), CT_OK);
    evt_record rec;
    T_EQ_INT(evt_reader_next(r, &rec), 1);
    T_EQ_INT(rec.error.code, EVT_TOO_LARGE);
    T_ASSERT(rec.event == NULL);
    T_EQ_INT(evt_reader_next(r, &rec), 1);
    T_EQ_INT(rec.line, 2);
    T_ASSERT(rec.event != NULL);
    evt_free(rec.event);
    T_EQ_INT(evt_reader_next(r, &rec), 0);
    evt_reader_destroy(r);
    ct_buf_free(&big);

    T_EQ_INT(evt_reader_open_mem(&r, " \n\n", 3), CT_OK);
    T_EQ_INT(evt_reader_next(r, &rec), 0);
    evt_reader_destroy(r);
    T_EQ_INT(evt_reader_open_mem(&r, NULL, 0), CT_OK);
    T_EQ_INT(evt_reader_next(r, &rec), 0);
    evt_reader_destroy(r);
    evt_reader_destroy(NULL);
}

static const char array_text[] = "\n [" GOOD("a") ",\n 5,\n {\"eventId\":\"c\",\"x\": [1, 2]},\n" GOOD("d") "]\n";

static void check_array(seen *s, int n)
{
    T_EQ_INT(n, 4);
    if (n != 4) return;
    T_EQ_INT(s[0].line, 1);
    T_EQ_INT(s[0].code, EVT_OK);
    T_EQ_STR(s[0].raw, GOOD("a"));
    T_EQ_INT(s[1].line, 2);
    T_EQ_INT(s[1].code, EVT_MALFORMED);
    T_EQ_STR(s[1].raw, "5");
    T_EQ_INT(s[2].line, 3);
    T_EQ_INT(s[2].code, EVT_MISSING_FIELD);
    T_EQ_STR(s[2].id, "c");
    T_EQ_STR(s[2].raw, "{\"eventId\":\"c\",\"x\":[1,2]}");
    T_EQ_INT(s[3].line, 4);
    T_EQ_STR(s[3].id, "d");
}

static void test_reader_array(void)
{
    seen s[10];
    evt_reader *r = NULL;
    T_EQ_INT(evt_reader_open_mem(&r, array_text, strlen(array_text)), CT_OK);
    T_EQ_INT(evt_reader_is_array(r), 1);
    check_array(s, read_all(r, s, 10));
    evt_reader_destroy(r);

    FILE *f = tmpfile();
    fputs(array_text, f);
    rewind(f);
    T_EQ_INT(evt_reader_open(&r, f), CT_OK);
    T_EQ_INT(evt_reader_is_array(r), 1);
    check_array(s, read_all(r, s, 10));
    evt_reader_destroy(r);
    fclose(f);

    /* An array that does not parse fails as a whole, naming jansson's line and column. */
    const char broken[] = "[\n" GOOD("a") ",\n {\"eventId\": }\n]";
    T_EQ_INT(evt_reader_open_mem(&r, broken, strlen(broken)), CT_OK);
    evt_record rec;
    T_EQ_INT(evt_reader_next(r, &rec), -1);
    T_EQ_INT(rec.error.code, EVT_MALFORMED);
    T_EQ_INT(rec.line, 3);
    T_ASSERT(strstr(rec.error.message, "line 3, column") != NULL);
    T_ASSERT(rec.event == NULL);
    T_EQ_INT(evt_reader_next(r, &rec), 0);
    evt_reader_destroy(r);

    T_EQ_INT(evt_reader_open_mem(&r, "[]", 2), CT_OK);
    T_EQ_INT(evt_reader_next(r, &rec), 0);
    evt_reader_destroy(r);
}

/* The payload name table agrees with the descriptor's field names. */
static void test_type_names(void)
{
    evt_event e = TOWER__V1__EVENT__INIT;
    T_EQ_STR(evt_type_name(&e), "");
    T_EQ_STR(evt_type_subject(&e), "");
    for (unsigned c = 20; c <= 54; c++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(&tower__v1__event__descriptor, c);
        e.payload_case = (Tower__V1__Event__PayloadCase)c;
        char camel[64];
        size_t o = 0;
        for (const char *p = f->name; *p; p++) {
            if (*p == '_') continue;
            camel[o++] = p > f->name && p[-1] == '_' ? (char)(*p - 'a' + 'A') : *p;
        }
        camel[o] = '\0';
        T_EQ_STR(evt_type_name(&e), camel);
        T_EQ_STR(evt_type_subject(&e), f->name);
    }
}

int main(void)
{
    T_RUN(test_time_parse);
    T_RUN(test_time_format);
    T_RUN(test_type_names);
    T_RUN(test_payload_round_trips);
    T_RUN(test_required_keys);
    T_RUN(test_validation_codes);
    T_RUN(test_unknown_json_fields);
    T_RUN(test_protobuf);
    T_RUN(test_reader_ndjson);
    T_RUN(test_reader_array);
    return t_done();
}
