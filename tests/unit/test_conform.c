/* Per-producer conformance (store_conform.c): the producer labels read from rejected bytes, hostile ones
 * included, and the dead letters' rows in the store (counts, sequences, example, the producer bound), equal
 * but for the receive times when the same stream is folded again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"
#include "store_conform.h"

static void labels(const char *raw, const char *ct, char *sys, char *ins)
{
    store_conform_source(raw, raw ? strlen(raw) : 0, ct, NULL, sys, ins);
}

static void test_source_json(void)
{
    char sys[STORE_CONFORM_SYSTEM], ins[STORE_CONFORM_INSTANCE];
    labels("{\"source\":{\"system\":\"wms\",\"instance\":\"wms-dc2\"},\"eventId\":\"\"}", NULL, sys, ins);
    T_EQ_STR(sys, "wms");
    T_EQ_STR(ins, "wms-dc2");
    labels("{\"source\":{\"system\":\"sap\"}}", NULL, sys, ins);
    T_EQ_STR(sys, "(other)");
    T_EQ_STR(ins, "(none)");
    labels("{\"eventId\":\"x\"}", NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
    labels("{\"source\":{\"system\":\"erp\",\"instance\":\"a b\\\"c\"}}", NULL, sys, ins);
    T_EQ_STR(sys, "erp");
    T_EQ_STR(ins, "(invalid)");
    labels("{\"source\":{\"system\":7,\"instance\":{\"x\":1}}}", NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
    T_EQ_STR(ins, "(invalid)");
    labels("{\"source\":{\"system\":\"erp\",\"instance\":\"(overflow)\"}}", NULL, sys, ins);
    T_EQ_STR(ins, "(invalid)"); /* a producer cannot pose as the bound's own rows */
    char big[100];
    memset(big, 'a', 65);
    snprintf(big + 65, sizeof big - 65, "%s", "");
    char *doc = ct_sprintf("{\"source\":{\"system\":\"carrier\",\"instance\":\"%s\"}}", big);
    labels(doc, NULL, sys, ins);
    T_EQ_STR(ins, "(invalid)"); /* 65 characters */
    free(doc);
    labels("not json", NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
    T_EQ_STR(ins, "(none)");
    labels(NULL, NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
}

static void test_source_hostile(void)
{
    char sys[STORE_CONFORM_SYSTEM], ins[STORE_CONFORM_INSTANCE];
    /* 10,000 nested arrays around the source: refused before jansson's recursion. */
    size_t n = 10000;
    char *deep = malloc(2 * n + 64);
    size_t k = (size_t)sprintf(deep, "{\"source\":{\"system\":\"erp\"},\"x\":");
    memset(deep + k, '[', n);
    memset(deep + k + n, ']', n);
    strcpy(deep + k + 2 * n, "}");
    labels(deep, NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
    free(deep);
    /* Over the largest event: not looked at. */
    size_t big = EVT_MAX_EVENT_BYTES + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    memcpy(huge, "{\"source\":{\"system\":\"erp\"}}", 27);
    huge[big] = 0;
    labels(huge, NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
    free(huge);
}

static void test_source_protobuf(void)
{
    char sys[STORE_CONFORM_SYSTEM], ins[STORE_CONFORM_INSTANCE];
    Tower__V1__Source src = TOWER__V1__SOURCE__INIT;
    src.system = "finance";
    src.instance = "fin-1";
    Tower__V1__Event e = TOWER__V1__EVENT__INIT;
    e.event_id = "x";
    e.source = &src;
    uint8_t buf[256];
    size_t len = tower__v1__event__pack(&e, buf);
    store_conform_source(buf, len, "application/x-protobuf", NULL, sys, ins);
    T_EQ_STR(sys, "finance");
    T_EQ_STR(ins, "fin-1");
    /* Every truncation, and garbage: no read past the end (ASan), labels always set. */
    for (size_t cut = 0; cut < len; cut++) {
        store_conform_source(buf, cut, "application/x-protobuf", NULL, sys, ins);
        T_ASSERT(sys[0] != 0 && ins[0] != 0);
    }
    uint8_t junk[] = {0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x03, 'e', 'r', 'p'};
    store_conform_source(junk, sizeof junk, "application/x-protobuf", NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
    uint8_t varints[16];
    memset(varints, 0xff, sizeof varints);
    store_conform_source(varints, sizeof varints, "application/x-protobuf", NULL, sys, ins);
    T_EQ_STR(sys, "(unknown)");
}

typedef struct rows {
    store_conform_row v[128];
    size_t n;
} rows;

static int grab(void *ctx, const store_conform_row *row)
{
    rows *r = ctx;
    if (r->n < 128) r->v[r->n++] = *row;
    return 0;
}

static void scan(fx *f, rows *out)
{
    out->n = 0;
    store_reader *r = NULL;
    T_ASSERT(store_reader_begin(f->s, &r) == CT_OK);
    T_ASSERT(store_conform_scan(r, grab, out) == CT_OK);
    store_reader_end(r);
}

static const char *const BAD =
    "{\"eventId\":\"w-1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"wms\",\"instance\":\"wms-dc2\"},"
    "\"orderId\":\"SO-1\",\"pickShort\":{\"qtyShort\":2}}\n"
    "{\"eventId\":\"w-2\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"wms\",\"instance\":\"wms-dc2\"},"
    "\"orderId\":\"SO-1\",\"pickShort\":{\"sku\":\"A\",\"qtyShort\":0}}\n"
    "{\"eventId\":\"w-3\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"wms\",\"instance\":\"wms-dc2\"},"
    "\"orderId\":\"SO-1\",\"pickShort\":{\"sku\":\"B\",\"qtyShort\":-1}}\n"
    "{\"eventId\":\"e-1\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},\"orderApproved\":{}}\n"
    "not json at all\n";

static void feed_stream(fx *f)
{
    T_ASSERT(fx_feed(f, BAD) == CT_OK);
    f->now_ns += 5000000000LL;
    /* The very same bytes again: one dead letter, not counted twice. */
    T_ASSERT(fx_feed(f, "not json at all\n") == CT_OK);
    T_ASSERT(fx_feed(f, "{\"eventId\":\"e-2\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\"},"
                        "\"orderId\":\"SO-2\",\"orderApproved\":{}}\n") == CT_OK);
    /* A conflicting duplicate: counted under the source of the copy that conflicts. */
    T_ASSERT(fx_feed(f, "{\"eventId\":\"e-2\",\"occurredAt\":\"2026-11-27T08:00:00Z\",\"source\":{\"system\":\"erp\","
                        "\"instance\":\"erp-eu\"},\"orderId\":\"SO-3\",\"orderApproved\":{}}\n") == CT_OK);
}

static const store_conform_row *find(const rows *r, const char *sys, const char *ins, const char *code)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].system, sys) && !strcmp(r->v[i].instance, ins) && !strcmp(r->v[i].code, code))
            return &r->v[i];
    return NULL;
}

static void test_store_rows(void)
{
    fx f;
    fx_open(&f);
    feed_stream(&f);
    rows r;
    scan(&f, &r);
    T_EQ_INT(r.n, 5);
    const store_conform_row *w = find(&r, "wms", "wms-dc2", "INVALID_VALUE");
    T_ASSERT(w != NULL);
    if (w) {
        T_EQ_INT(w->count, 2);
        T_EQ_INT(w->first_seq, 2);
        T_EQ_INT(w->last_seq, 3);
        T_EQ_INT(w->example_seq, 3);
        T_EQ_STR(w->example_event_id, "w-3");
        T_ASSERT(strstr(w->example, "qtyShort") != NULL);
    }
    const store_conform_row *m = find(&r, "wms", "wms-dc2", "MISSING_FIELD");
    T_ASSERT(m && m->count == 1 && m->first_seq == 1);
    T_ASSERT(find(&r, "erp", "(none)", "MISSING_FIELD") != NULL);
    const store_conform_row *u = find(&r, "(unknown)", "(none)", "MALFORMED");
    T_ASSERT(u && u->count == 1);
    const store_conform_row *c = find(&r, "erp", "erp-eu", "CONFLICTING_DUPLICATE");
    T_ASSERT(c && c->count == 1 && c->first_ns == f.now_ns);

    /* The same stream folded again later (a rebuild): the same rows but for the receive times. */
    fx g;
    fx_open(&g);
    g.now_ns = f.now_ns + 3600LL * 1000000000LL;
    feed_stream(&g);
    rows r2;
    scan(&g, &r2);
    T_EQ_INT(r2.n, r.n);
    for (size_t i = 0; i < r.n && i < r2.n; i++) {
        store_conform_row a = r.v[i], b = r2.v[i];
        a.first_ns = a.last_ns = b.first_ns = b.last_ns = 0;
        T_ASSERT(memcmp(&a, &b, sizeof a) == 0);
    }
    fx_close(&g);
    fx_close(&f);
}

static void test_producer_bound(void)
{
    fx f;
    fx_open(&f);
    ct_buf b = {0};
    for (int i = 0; i < STORE_CONFORM_MAX_PRODUCERS + 10; i++)
        ct_buf_addf(&b, "{\"eventId\":\"c-%d\",\"source\":{\"system\":\"carrier\",\"instance\":\"c%d\"}}\n", i, i);
    T_ASSERT(fx_feed(&f, b.data) == CT_OK);
    ct_buf_free(&b);
    /* A producer counted before the bound keeps its own row after it. */
    T_ASSERT(fx_feed(&f, "{\"eventId\":\"c-0b\",\"source\":{\"system\":\"carrier\",\"instance\":\"c0\"}}\n") == CT_OK);
    rows r;
    scan(&f, &r);
    T_EQ_INT(r.n, STORE_CONFORM_MAX_PRODUCERS + 1);
    const store_conform_row *o = find(&r, "carrier", "(overflow)", "MISSING_FIELD");
    T_ASSERT(o && o->count == 10);
    const store_conform_row *c0 = find(&r, "carrier", "c0", "MISSING_FIELD");
    T_ASSERT(c0 && c0->count == 2);
    fx_close(&f);
}

static void test_row_json(void)
{
    store_conform_row r = {.system = "tms", .instance = "(none)", .code = "INVALID_ID"};
    store_conform_row_add(&r, 7, 1700000000LL * 1000000000LL, "ev-1", "field \"routeId\": bad");
    char msg[700];
    memset(msg, 'x', sizeof msg);
    memcpy(msg + 510, "\xc3\xa9", 2); /* a 2-byte character across the cut */
    msg[sizeof msg - 1] = 0;
    store_conform_row_add(&r, 9, 1700000001LL * 1000000000LL, "", msg);
    T_EQ_INT(r.count, 2);
    T_EQ_INT(r.first_seq, 7);
    T_EQ_INT(strlen(r.example), 510);
    json_t *o = store_conform_row_json(&r);
    T_ASSERT(json_string_value(json_object_get(json_object_get(o, "example"), "message")) != NULL);
    T_EQ_STR(json_string_value(json_object_get(o, "firstSeenAt")), "2023-11-14T22:13:20Z");
    T_ASSERT(json_object_get(json_object_get(o, "example"), "eventId") == NULL);
    json_decref(o);
}

int main(void)
{
    T_RUN(test_source_json);
    T_RUN(test_source_hostile);
    T_RUN(test_source_protobuf);
    T_RUN(test_store_rows);
    T_RUN(test_producer_bound);
    T_RUN(test_row_json);
    return t_done();
}
