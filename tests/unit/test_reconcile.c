/* Unit tests of towerd reconcile's pure parts: the mapping's [reconcile] section and the comparison of a
 * snapshot row's status with the tower's milestones (every kind of disagreement). */
#include "batch_reconcile.h"
#include "test.h"

static const char *const MAPPING =
    "[import]\n"
    "name = erp-status\n"
    "system = erp\n"
    "delimiter = semicolon\n"
    "[reconcile]\n"
    "id = order_no\n"
    "status = \"Order Status\"\n"
    "status.APPROVED = orderApproved\n"
    "status.RELEASED = orderReleased\n"
    "status.SHIPPED = orderReleased, shipmentConfirmed\n"
    "status.INVOICED = shipmentConfirmed, invoicePosted\n"
    "status.CANCELLED = orderCancelled\n"
    "status.ARCHIVED =\n"
    "reflect.podCaptured = INVOICED, ARCHIVED\n"
    "reflect.invoicePosted = INVOICED, ARCHIVED\n"
    "reflect.orderCancelled = CANCELLED\n";

static batch_mapping *parse(const char *text, unsigned flags, char **err)
{
    batch_mapping *m = NULL;
    *err = NULL;
    if (batch_mapping_parse_flags(&m, text, strlen(text), "rec.ini", flags, err) != CT_OK) return NULL;
    return m;
}

/* The milestones object of store_entity_json from a list of types. */
static json_t *seen(const char *const *types)
{
    json_t *o = json_object();
    for (; *types; types++) json_object_set_new(o, *types, json_string("2026-11-27T08:00:00Z"));
    return o;
}

static void test_mapping_section(void)
{
    char *err;
    batch_mapping *m = parse(MAPPING, BATCH_MAPPING_RECONCILE, &err);
    T_ASSERT(m != NULL);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        free(err);
        return;
    }
    const batch_rec_spec *s = batch_mapping_reconcile(m);
    T_EQ_STR(s->id_column, "order_no");
    T_EQ_STR(s->status_column, "Order Status");
    T_EQ_INT(s->nst, 6);
    T_EQ_INT(batch_rec_status_find(s, "SHIPPED")->n, 2);
    T_EQ_STR(batch_rec_status_find(s, "SHIPPED")->milestones[1], "shipmentConfirmed");
    T_EQ_INT(batch_rec_status_find(s, "ARCHIVED")->n, 0);
    T_ASSERT(batch_rec_status_find(s, "shipped") == NULL); /* exact */
    T_EQ_INT(s->nrf, 3);
    T_EQ_INT(s->nclosing, 2); /* the default */
    T_EQ_STR(s->closing[0], "invoicePosted");
    /* Bind: the header names the columns. */
    const char *hdr = "Order Status;x;order_no\n";
    batch_reader *r = batch_reader_new(hdr, strlen(hdr), batch_mapping_format(m));
    batch_row row;
    T_EQ_INT(batch_reader_next(r, &row), 1);
    T_EQ_INT(batch_mapping_bind_reconcile(m, &row, "snap.csv", &err), 0);
    T_EQ_INT(s->id_col, 2);
    T_EQ_INT(s->status_col, 0);
    batch_reader_free(r);
    const char *bad = "status;order\n";
    r = batch_reader_new(bad, strlen(bad), batch_mapping_format(m));
    T_EQ_INT(batch_reader_next(r, &row), 1);
    T_EQ_INT(batch_mapping_bind_reconcile(m, &row, "snap.csv", &err), -1);
    T_ASSERT(err && strstr(err, "rec.ini:6: column \"order_no\" is not in the header of snap.csv"));
    free(err);
    batch_reader_free(r);
    batch_mapping_free(m);
}

static void test_fixed_width(void)
{
    char *err;
    batch_mapping *m = parse("[import]\nname = f\nsystem = erp\nformat = fixed\n[columns]\nst = 11 10\n"
                             "order = 1 10\n[reconcile]\nid = order\nstatus = st\nstatus.RELEASED = orderReleased\n",
                             BATCH_MAPPING_RECONCILE, &err);
    T_ASSERT(m != NULL);
    if (!m) {
        free(err);
        return;
    }
    T_EQ_INT(batch_mapping_bind_reconcile(m, NULL, "f.txt", &err), 0);
    const batch_rec_spec *s = batch_mapping_reconcile(m);
    T_EQ_INT(s->id_col, 1); /* the [columns] order: the reader's cells */
    T_EQ_INT(s->status_col, 0);
    const char *line = "SO-1      RELEASED  \n";
    batch_reader *r = batch_reader_new(line, strlen(line), batch_mapping_format(m));
    batch_row row;
    T_EQ_INT(batch_reader_next(r, &row), 1);
    T_ASSERT(row.ncols == 2 && !strncmp(row.cols[s->id_col], "SO-1", 4) &&
             !strncmp(row.cols[s->status_col], "RELEASED", 8));
    batch_reader_free(r);
    batch_mapping_free(m);
    /* A column that is not in [columns]. */
    m = parse("[import]\nname = f\nsystem = erp\nformat = fixed\n[columns]\nst = 11 10\n"
              "[reconcile]\nid = order\nstatus = st\nstatus.RELEASED = orderReleased\n",
              BATCH_MAPPING_RECONCILE, &err);
    T_EQ_INT(batch_mapping_bind_reconcile(m, NULL, "f.txt", &err), -1);
    T_ASSERT(err && strstr(err, "rec.ini:8: column \"order\" is not in [columns]"));
    free(err);
    batch_mapping_free(m);
}

static void test_import_still_needs_a_kind(void)
{
    char *err;
    /* A reconcile-only mapping is not an import mapping... */
    T_ASSERT(parse(MAPPING, 0, &err) == NULL);
    T_ASSERT(err && strstr(err, "no [kind NAME] section"));
    free(err);
    /* ...and an import mapping with a [reconcile] section still imports. */
    char *both = ct_sprintf("%s[kind approved]\nmatch = APPROVED\ntype = orderApproved\noccurredAt = col 3\n"
                            "orderId = col 1\n", MAPPING);
    batch_mapping *m = parse(both, 0, &err);
    T_ASSERT(m != NULL && batch_mapping_reconcile(m) != NULL);
    batch_mapping_free(m);
    free(both);
    /* A reconcile run needs the section. */
    T_ASSERT(parse("[import]\nname = a\nsystem = erp\n", BATCH_MAPPING_RECONCILE, &err) == NULL);
    T_ASSERT(err && strstr(err, "rec.ini:1: no [reconcile] section"));
    free(err);
}

static void expect_error(const char *section, const char *want)
{
    char *text = ct_sprintf("[import]\nname = a\nsystem = erp\n[reconcile]\n%s", section), *err;
    batch_mapping *m = parse(text, BATCH_MAPPING_RECONCILE, &err);
    T_ASSERT(m == NULL);
    if (!err || !strstr(err, want)) T_FAIL("for %s: got \"%s\", want \"%s\"", section, err ? err : "(none)", want);
    free(err);
    batch_mapping_free(m);
    free(text);
}

static void test_mapping_errors(void)
{
    expect_error("status = s\nstatus.A = orderApproved\n", "rec.ini:4: [reconcile] has no id");
    expect_error("id = o\nstatus.A = orderApproved\n", "rec.ini:4: [reconcile] has no status");
    expect_error("id = o\nstatus = s\n", "rec.ini:4: [reconcile] has no status.VALUE");
    expect_error("id = o\nstatus = s\nstatus.A = orderAproved\n",
                 "rec.ini:7: status.A: \"orderAproved\" is not an event type");
    expect_error("id = o\nstatus = s\nstatus.A = orderApproved\nstatus.A = orderReleased\n",
                 "rec.ini:8: status.A given twice (first on line 7)");
    expect_error("id = o\nstatus = s\nstatus.A = orderApproved\nreflect.podCapture = A\n",
                 "rec.ini:8: reflect.podCapture: \"podCapture\" is not an event type");
    expect_error("id = o\nstatus = s\nstatus.A = orderApproved\nreflect.podCaptured = B\n",
                 "rec.ini:8: reflect.podCaptured: status \"B\" has no status.B line");
    expect_error("id = o\nstatus = s\nstatus.A = orderApproved\nreflect.podCaptured =\n",
                 "rec.ini:8: reflect.podCaptured lists no status");
    expect_error("id = o\nid = p\n", "rec.ini:6: key \"id\" given twice");
    expect_error("id = \nstatus = s\n", "rec.ini:5: id is empty");
    expect_error("id = o\nstatus = s\nstatus.A = orderApproved\nclosing = invoice\n",
                 "rec.ini:8: closing: \"invoice\" is not an event type");
    expect_error("id = o\nstatuses.A = x\n", "rec.ini:6: unknown key \"statuses.A\" in [reconcile]");
    expect_error("id = o\nstatus = s\nstatus.A = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n",
                 "rec.ini:7: status.A lists 17 values (at most 16)");
}

typedef struct want {
    batch_rec_kind kind;
    const char *milestone;
} want;

static void compare(const batch_rec_spec *s, const char *status, const char *const *types, const want *w, size_t nw)
{
    json_t *ms = types ? seen(types) : NULL;
    batch_rec_finding f[32];
    size_t n = batch_rec_compare(s, status, ms, f, 32);
    if (n != nw) T_FAIL("status %s: %zu findings, want %zu", status, n, nw);
    for (size_t i = 0; i < n && i < nw; i++) {
        T_EQ_STR(batch_rec_kind_name(f[i].kind), batch_rec_kind_name(w[i].kind));
        if (w[i].milestone) T_EQ_STR(f[i].milestone, w[i].milestone);
        else T_ASSERT(f[i].milestone == NULL);
    }
    json_decref(ms);
}

static void test_compare_every_kind(void)
{
    char *err;
    batch_mapping *m = parse(MAPPING, BATCH_MAPPING_RECONCILE, &err);
    if (!m) {
        T_FAIL("%s", err);
        free(err);
        return;
    }
    const batch_rec_spec *s = batch_mapping_reconcile(m);
    const char *const created[] = {"orderCreated", "orderApproved", NULL};
    const char *const released[] = {"orderCreated", "orderApproved", "orderReleased", NULL};
    const char *const shipped[] = {"orderReleased", "shipmentConfirmed", NULL};
    const char *const podded[] = {"orderReleased", "shipmentConfirmed", "deliveryCompleted", "podCaptured", NULL};
    const char *const invoiced[] = {"shipmentConfirmed", "invoicePosted", "podCaptured", NULL};
    const char *const cancelled[] = {"orderCreated", "orderCancelled", NULL};
    /* Agreement. */
    compare(s, "APPROVED", created, NULL, 0);
    compare(s, "RELEASED", released, NULL, 0);
    compare(s, "SHIPPED", shipped, NULL, 0);
    compare(s, "INVOICED", invoiced, NULL, 0);
    compare(s, "CANCELLED", cancelled, NULL, 0);
    compare(s, "ARCHIVED", invoiced, NULL, 0); /* implies nothing, reflects the POD and the invoice */
    /* The system is ahead: its status implies milestones the tower has not seen. */
    compare(s, "RELEASED", created, (want[]){{BATCH_REC_MISSING_MILESTONE, "orderReleased"}}, 1);
    compare(s, "SHIPPED", created,
            (want[]){{BATCH_REC_MISSING_MILESTONE, "orderReleased"},
                     {BATCH_REC_MISSING_MILESTONE, "shipmentConfirmed"}},
            2);
    compare(s, "INVOICED", shipped, (want[]){{BATCH_REC_MISSING_MILESTONE, "invoicePosted"}}, 1);
    compare(s, "CANCELLED", released, (want[]){{BATCH_REC_MISSING_MILESTONE, "orderCancelled"}}, 1);
    /* The tower is ahead: a milestone the status does not reflect. */
    compare(s, "SHIPPED", podded, (want[]){{BATCH_REC_NOT_REFLECTED, "podCaptured"}}, 1);
    compare(s, "SHIPPED", invoiced,
            (want[]){{BATCH_REC_MISSING_MILESTONE, "orderReleased"}, {BATCH_REC_NOT_REFLECTED, "podCaptured"},
                     {BATCH_REC_NOT_REFLECTED, "invoicePosted"}},
            3);
    compare(s, "RELEASED", cancelled,
            (want[]){{BATCH_REC_MISSING_MILESTONE, "orderReleased"}, {BATCH_REC_NOT_REFLECTED, "orderCancelled"}}, 2);
    /* Unknown order, unknown status (alone, whatever the tower has). */
    compare(s, "RELEASED", NULL, (want[]){{BATCH_REC_UNKNOWN_ORDER, NULL}}, 1);
    compare(s, "SHIPPD", podded, (want[]){{BATCH_REC_UNKNOWN_STATUS, NULL}}, 1);
    compare(s, "SHIPPD", NULL, (want[]){{BATCH_REC_UNKNOWN_STATUS, NULL}}, 1);
    /* cap: the count is whole, only cap are written. */
    json_t *ms = seen(invoiced);
    batch_rec_finding one[1];
    T_EQ_INT(batch_rec_compare(s, "SHIPPED", ms, one, 1), 3);
    T_EQ_STR(one[0].milestone, "orderReleased");
    /* Open or closed (--full). */
    T_EQ_INT(batch_rec_is_open(s, ms), 0);
    json_decref(ms);
    ms = seen(podded);
    T_EQ_INT(batch_rec_is_open(s, ms), 1);
    json_decref(ms);
    ms = seen(cancelled);
    T_EQ_INT(batch_rec_is_open(s, ms), 0);
    json_decref(ms);
    batch_mapping_free(m);
}

static void test_finding_json(void)
{
    json_t *doc = json_pack("{s:s,s:{s:s,s:s}}", "stage", "APPROVED", "milestones", "orderCreated",
                            "2026-11-27T07:15:00Z", "orderApproved", "2026-11-27T07:20:00Z");
    batch_rec_finding f = {BATCH_REC_MISSING_MILESTONE, "orderReleased"};
    json_t *j = batch_rec_finding_json(&f, "erp", "snap.csv", 4, "SO-1", "RELEASED", doc, NULL);
    T_EQ_STR(json_string_value(json_object_get(j, "kind")), "missing_milestone");
    T_EQ_INT(json_integer_value(json_object_get(j, "line")), 4);
    T_EQ_STR(json_string_value(json_object_get(j, "towerStage")), "APPROVED");
    T_EQ_STR(json_string_value(json_object_get(j, "message")),
             "erp says RELEASED, which implies orderReleased; the tower has not seen orderReleased (stage APPROVED; "
             "seen: orderCreated, orderApproved)");
    T_ASSERT(json_string_value(json_object_get(j, "action")) != NULL);
    json_decref(j);
    f = (batch_rec_finding){BATCH_REC_NOT_REFLECTED, "orderApproved"};
    j = batch_rec_finding_json(&f, "erp", "snap.csv", 5, "SO-1", "CREATED", doc, NULL);
    T_EQ_STR(json_string_value(json_object_get(j, "message")),
             "the tower has seen orderApproved at 2026-11-27T07:20:00Z (stage APPROVED); erp says CREATED, which "
             "does not reflect it");
    json_decref(j);
    /* Hostile text: control bytes and bytes that are not UTF-8 never break the JSON nor the terminal. */
    f = (batch_rec_finding){BATCH_REC_UNKNOWN_STATUS, NULL};
    j = batch_rec_finding_json(&f, "erp", "snap\x1b[2J.csv", 6, "SO-2", "SHIP\xff\x1b", NULL, NULL);
    T_EQ_STR(json_string_value(json_object_get(j, "file")), "snap?[2J.csv");
    T_EQ_STR(json_string_value(json_object_get(j, "status")), "SHIP??");
    T_ASSERT(json_object_get(j, "line") && !json_object_get(j, "towerStage"));
    T_ASSERT(strstr(json_string_value(json_object_get(j, "message")), "erp says \"SHIP??\""));
    json_decref(j);
    f = (batch_rec_finding){BATCH_REC_MISSING_FROM_SNAPSHOT, NULL};
    j = batch_rec_finding_json(&f, "erp", "snap.csv", 0, "SO-3", NULL, doc, NULL);
    T_ASSERT(!json_object_get(j, "line") && !json_object_get(j, "status"));
    T_EQ_STR(json_string_value(json_object_get(j, "message")),
             "the tower has order SO-3 open (stage APPROVED; seen: orderCreated, orderApproved); the erp snapshot "
             "does not list it");
    json_decref(j);
    json_decref(doc);
    for (int k = 0; k < BATCH_REC_KIND_COUNT; k++) T_ASSERT(strcmp(batch_rec_kind_name((batch_rec_kind)k), "unknown"));
}

/* --publish: the checks, the two sides, cleaning, and event ids that are stable per content. */
static void test_mismatch_events(void)
{
    char c[96];
    batch_rec_finding mm = {BATCH_REC_MISSING_MILESTONE, "orderReleased"}, uo = {BATCH_REC_UNKNOWN_ORDER, NULL};
    batch_rec_finding bad = {BATCH_REC_BAD_ROW, NULL}, dup = {BATCH_REC_DUPLICATE, NULL};
    T_ASSERT(batch_rec_check(&mm, c, sizeof c));
    T_EQ_STR(c, "missing_milestone:orderReleased");
    T_ASSERT(batch_rec_check(&uo, c, sizeof c));
    T_EQ_STR(c, "unknown_order");
    T_ASSERT(!batch_rec_check(&bad, c, sizeof c) && !batch_rec_check(&dup, c, sizeof c));
    json_t *doc = json_pack("{s:s,s:{s:s}}", "stage", "APPROVED", "milestones", "orderApproved", "2026-11-27T08:00:00Z");
    char *theirs, *ours;
    batch_rec_sides(&mm, "RELEASED", doc, &theirs, &ours);
    T_EQ_STR(theirs, "RELEASED");
    T_EQ_STR(ours, "stage APPROVED; orderReleased not seen");
    free(theirs);
    free(ours);
    json_decref(doc);
    /* Control bytes become '?'; a cut never splits a UTF-8 character; bytes that are not UTF-8 become '?'. */
    char *k = batch_rec_clean("a\x1b" "b\xc3\xa9\xc3\xa9", 4);
    T_EQ_STR(k, "a?b");
    free(k);
    k = batch_rec_clean("x\xe9y", 10);
    T_EQ_STR(k, "x?y");
    free(k);
    batch_rec_mismatch m = {0, "SO-1", "erp", "missing_milestone:orderReleased", "RELEASED", "stage APPROVED", "msg",
                            "erp.csv 2026-12-02T02:10:00Z", 42, 1796177400, 0};
    json_t *a = batch_rec_mismatch_event(&m), *b = batch_rec_mismatch_event(&m);
    T_ASSERT(json_equal(a, b));
    const char *ida = json_string_value(json_object_get(a, "eventId"));
    T_ASSERT(ida && !strncmp(ida, "rec-erp-f-", 10));
    T_EQ_STR(json_string_value(json_object_get(a, "occurredAt")), "2026-12-02T02:10:00Z");
    m.ours = "stage PICKING";
    json_t *d = batch_rec_mismatch_event(&m); /* changed content: another event */
    T_ASSERT(strcmp(ida, json_string_value(json_object_get(d, "eventId"))) != 0);
    m.cleared = 1;
    json_t *e = batch_rec_mismatch_event(&m);
    T_ASSERT(!strncmp(json_string_value(json_object_get(e, "eventId")), "rec-erp-c-", 10));
    T_ASSERT(json_object_get(e, "mismatchCleared") && !json_object_get(json_object_get(e, "mismatchCleared"), "ours"));
    json_decref(a);
    json_decref(b);
    json_decref(d);
    json_decref(e);
}

int main(void)
{
    T_RUN(test_mapping_section);
    T_RUN(test_fixed_width);
    T_RUN(test_import_still_needs_a_kind);
    T_RUN(test_mapping_errors);
    T_RUN(test_compare_every_kind);
    T_RUN(test_finding_json);
    T_RUN(test_mismatch_events);
    return t_done();
}
