/* Unit tests of towerd import's pure parts: the CSV / fixed-width reader, the mapping file and row -> event. */
#include "batch.h"
#include "test.h"

/* ---- the reader ------------------------------------------------------------------------------------- */

typedef struct rows {
    size_t n;
    size_t line[16], ncols[16];
    evt_code code[16];
    char cell[16][4][64];
    char msg[16][256];
} rows;

static rows read_all(const char *data, size_t len, const batch_format *f)
{
    rows out;
    memset(&out, 0, sizeof out);
    batch_reader *r = batch_reader_new(data, len, f);
    batch_row row;
    while (batch_reader_next(r, &row) == 1 && out.n < 16) {
        out.line[out.n] = row.line;
        out.ncols[out.n] = row.ncols;
        out.code[out.n] = row.code;
        snprintf(out.msg[out.n], sizeof out.msg[0], "%s", row.message);
        for (size_t i = 0; i < row.ncols && i < 4; i++) snprintf(out.cell[out.n][i], 64, "%s", row.cols[i]);
        out.n++;
    }
    batch_reader_free(r);
    return out;
}

static const batch_format csv = {.delim = ','};

static void test_csv_rfc4180(void)
{
    const char *d = "\xEF\xBB\xBF" "a,b,c\r\n"
                    "\"x,1\",\"say \"\"hi\"\"\",\r\n"
                    "\n"
                    "\"two\nlines\",2,3\n"
                    "last,,\"\"";
    rows r = read_all(d, strlen(d), &csv);
    T_EQ_INT(r.n, 4);
    T_EQ_STR(r.cell[0][0], "a");
    T_EQ_INT(r.ncols[0], 3);
    T_EQ_STR(r.cell[1][0], "x,1");
    T_EQ_STR(r.cell[1][1], "say \"hi\"");
    T_EQ_STR(r.cell[1][2], "");
    T_EQ_INT(r.line[2], 4);
    T_EQ_STR(r.cell[2][0], "two\nlines");
    T_EQ_INT(r.line[3], 6); /* the line after the two-line record */
    T_EQ_INT(r.ncols[3], 3);
    T_EQ_STR(r.cell[3][2], "");
    for (size_t i = 0; i < r.n; i++) T_EQ_INT(r.code[i], EVT_OK);
    batch_format semi = {.delim = ';'};
    rows s = read_all("a;\"b;c\"\n", 8, &semi);
    T_EQ_INT(s.ncols[0], 2);
    T_EQ_STR(s.cell[0][1], "b;c");
}

static void test_csv_errors_recover(void)
{
    const char *d = "ok,1\n"
                    "bad\"quote,2\n"
                    "\"closed\"x,3\n"
                    "fine,4\n"
                    "\"open,5\n"
                    "after,6\n";
    rows r = read_all(d, strlen(d), &csv);
    T_EQ_INT(r.n, 6);
    T_EQ_INT(r.code[0], EVT_OK);
    T_EQ_INT(r.code[1], EVT_MALFORMED);
    T_EQ_INT(r.line[1], 2);
    T_ASSERT(strstr(r.msg[1], "column 1") != NULL);
    T_EQ_INT(r.code[2], EVT_MALFORMED);
    T_ASSERT(strstr(r.msg[2], "after the closing quote") != NULL);
    T_EQ_STR(r.cell[3][0], "fine");
    T_EQ_INT(r.line[3], 4);
    /* The quote left open swallows to the end, is reported, and the next line is read again. */
    T_EQ_INT(r.code[4], EVT_MALFORMED);
    T_EQ_INT(r.line[4], 5);
    T_EQ_STR(r.cell[5][0], "after");
    T_EQ_INT(r.line[5], 6);
    rows z = read_all("a,b\0c,d\nx,y\n", 12, &csv);
    T_EQ_INT(z.code[0], EVT_MALFORMED);
    T_ASSERT(strstr(z.msg[0], "NUL") != NULL);
    T_EQ_STR(z.cell[1][0], "x");
}

/* Hostile shapes: a million columns, a line over the record limit, a field of quotes, all followed by a good row. */
static void test_csv_hostile(void)
{
    size_t n = 2000000;
    char *d = malloc(n + 16);
    for (size_t i = 0; i < n; i++) d[i] = i % 2 ? ',' : 'x';
    memcpy(d + n, "\nok,1\n", 7);
    rows r = read_all(d, n + 6, &csv);
    T_EQ_INT(r.n, 2);
    T_EQ_INT(r.code[0], EVT_TOO_LARGE);
    T_ASSERT(strstr(r.msg[0], "columns") != NULL);
    T_EQ_STR(r.cell[1][0], "ok");
    memset(d, 'y', n);
    r = read_all(d, n + 6, &csv);
    T_EQ_INT(r.code[0], EVT_TOO_LARGE);
    T_EQ_STR(r.cell[1][0], "ok");
    memset(d, '"', n); /* an even run of quotes: one quoted field of escaped quotes, too long */
    r = read_all(d, n + 6, &csv);
    T_EQ_INT(r.code[0], EVT_TOO_LARGE);
    T_EQ_STR(r.cell[1][0], "ok");
    T_EQ_INT(r.line[1], 2);
    free(d);
}

static void test_fixed(void)
{
    batch_fixed_col cols[] = {{0, 3}, {3, 5}, {8, 4}};
    batch_format f = {.fixed = 1, .cols = cols, .ncols = 3};
    const char *d = "ABC12345wxyz\r\nDEF1\n\nGHI\0x\n";
    rows r = read_all(d, 26, &f);
    T_EQ_INT(r.n, 3);
    T_EQ_STR(r.cell[0][2], "wxyz");
    T_EQ_STR(r.cell[1][1], "1");
    T_EQ_STR(r.cell[1][2], "");
    T_EQ_INT(r.line[2], 4);
    T_EQ_INT(r.code[2], EVT_MALFORMED);
}

/* ---- the mapping -------------------------------------------------------------------------------------- */

#define HEAD "[import]\nname = erp-x\nsystem = erp\nkind = status\ntime_format = %d.%m.%Y %H:%M\ntime_zone = +01:00\n"
#define KIND_APPROVED "[kind approved]\nmatch = APPROVED\ntype = orderApproved\noccurredAt = col at\n" \
                      "orderId = col order\norderApproved.warehouseId = col whs\n"
#define KIND_CREATED "[kind created]\nmatch = CREATED\ntype = orderCreated\noccurredAt = col at\norderId = col order\n" \
                     "orderCreated.lines[0].sku = col sku\norderCreated.lines[0].qty = col qty\n" \
                     "orderCreated.channel = const EDI\n"

static batch_mapping *parse(const char *text, char **err)
{
    batch_mapping *m = NULL;
    *err = NULL;
    batch_mapping_parse(&m, text, strlen(text), "map.ini", err);
    return m;
}

/* A mapping error names the mapping's file and line. */
static void expect_error(const char *text, const char *where, const char *what)
{
    char *err;
    batch_mapping *m = parse(text, &err);
    T_ASSERT(m == NULL);
    if (!err || !strstr(err, where) || !strstr(err, what)) T_FAIL("want \"%s\" ... \"%s\", got \"%s\"", where, what, err);
    test_checks++;
    free(err);
    batch_mapping_free(m);
}

static void test_mapping_errors(void)
{
    expect_error(HEAD "color = red\n" KIND_APPROVED, "map.ini:7:", "unknown key \"color\"");
    expect_error(HEAD "[kind a]\ntype = orderApprovd\noccurredAt = col at\n", "map.ini:8:", "not an event type");
    expect_error(HEAD "[kind a]\ntype = orderApproved\noccurredAt = col at\norderApproved.warehouse = col w\n",
                 "map.ini:10:", "OrderApproved has no field warehouse");
    expect_error(HEAD "[kind a]\ntype = orderApproved\norderId = col o\n", "map.ini:7:", "maps no occurredAt");
    expect_error(HEAD "[kind a]\ntype = orderApproved\noccurredAt = col at\neventId = col id\n", "map.ini:10:",
                 "derived from the row");
    expect_error("[import]\nname = x\nsystem = erp\n" KIND_APPROVED KIND_CREATED, "map.ini:10:",
                 "need [import] kind");
    expect_error(HEAD "[kind a]\ntype = orderApproved\noccurredAt = col at\norderId = col o int\n", "map.ini:10:",
                 "cannot take a int");
    expect_error(HEAD "[kind a]\ntype = orderApproved\noccurredAt = column at\n", "map.ini:9:", "expected \"col COLUMN");
    expect_error(HEAD "[kind a]\ntype = orderCreated\noccurredAt = col at\norderCreated.lines.sku = col s\n",
                 "map.ini:10:", "is a list");
    expect_error("[import]\nname = x\nsystem = erp\ntime_zone = Europe/Paris\n", "map.ini:4:", "not a UTC offset");
    expect_error("[import]\nname = x\nsystem = mainframe\n", "map.ini:3:", "not one of erp");
    expect_error(HEAD KIND_APPROVED "[kind approved]\n", "map.ini:13:", "given twice");
    expect_error(HEAD "[sheet]\n", "map.ini:7:", "unknown section");
    expect_error(HEAD "[kind a]\ntype = orderApproved\noccurredAt = col at\noccurredAt = col at2\n", "map.ini:10:",
                 "mapped twice");
    expect_error("", "map.ini:1:", "empty");
    /* Hostile mappings: a huge line, a NUL byte, an endless path. */
    char *big = malloc(20000);
    memset(big, 'a', 19999);
    big[19999] = '\0';
    memcpy(big, "[import]\nname = ", 16);
    expect_error(big, "map.ini:2:", "line too long");
    const char nul[] = "[import]\nname = a\0b\nsystem = erp\n";
    char *err0 = NULL;
    batch_mapping *m0 = NULL;
    T_EQ_INT(batch_mapping_parse(&m0, nul, sizeof nul - 1, "map.ini", &err0), CT_INVALID);
    T_ASSERT(err0 && strstr(err0, "map.ini:2: line contains a NUL byte"));
    free(err0);
    free(big);
    expect_error(HEAD "[kind a]\ntype = orderApproved\noccurredAt = col at\na.b.c.d.e.f.g.h.i.j = col x\n",
                 "map.ini:10:", "not an event path");
    char *err;
    batch_mapping *m = parse(HEAD KIND_APPROVED KIND_CREATED, &err);
    T_ASSERT(m != NULL);
    if (!m) fprintf(stderr, "%s\n", err);
    batch_mapping_free(m);
}

/* Bind m to a header line and map one data line. */
static void map_line(batch_mapping *m, const char *header, const char *line, batch_result *res, char **bind_err)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s\n%s\n", header, line);
    batch_reader *r = batch_reader_new(buf, strlen(buf), batch_mapping_format(m));
    batch_row row;
    *bind_err = NULL;
    batch_reader_next(r, &row);
    memset(res, 0, sizeof *res);
    if (batch_mapping_bind(m, &row, "f.csv", bind_err) == 0 && batch_reader_next(r, &row) == 1)
        batch_map_row(m, &row, "f.csv", res);
    batch_reader_free(r);
}

#define HDR "order,status,at,whs,sku,qty,exported"

static const char *jstr(json_t *j, const char *k1, const char *k2)
{
    json_t *v = json_object_get(j, k1);
    if (k2) v = json_object_get(v, k2);
    return json_string_value(v);
}

static void test_row_to_event(void)
{
    char *err;
    batch_mapping *m = parse(HEAD KIND_APPROVED KIND_CREATED, &err);
    batch_result a, b, c;
    map_line(m, HDR, "SO-1,APPROVED,27.11.2026 08:15,dc-2,,,2026-12-01", &a, &err);
    T_EQ_INT(a.outcome, BATCH_EVENT);
    T_EQ_STR(jstr(a.json, "occurredAt", NULL), "2026-11-27T07:15:00Z");
    T_EQ_STR(jstr(a.json, "orderApproved", "warehouseId"), "dc-2");
    T_EQ_STR(jstr(a.json, "source", "system"), "erp");
    T_EQ_STR(a.event->order_id, "SO-1");
    /* The same cells give the same id, whatever the columns the mapping does not read. */
    map_line(m, HDR, " SO-1 ,APPROVED,27.11.2026 08:15,dc-2,,,2026-12-02", &b, &err);
    T_EQ_STR(jstr(a.json, "eventId", NULL), jstr(b.json, "eventId", NULL));
    map_line(m, HDR, "SO-1,APPROVED,27.11.2026 08:16,dc-2,,,2026-12-01", &c, &err);
    T_ASSERT(strcmp(jstr(a.json, "eventId", NULL), jstr(c.json, "eventId", NULL)) != 0);
    T_ASSERT(!strncmp(jstr(a.json, "eventId", NULL), "imp-erp-x-approved-", 19));
    batch_result_clear(&a);
    batch_result_clear(&b);
    batch_result_clear(&c);
    map_line(m, HDR, "SO-2,CREATED,27.11.2026 09:00,,SKU-1,3,", &a, &err);
    T_EQ_INT(a.outcome, BATCH_EVENT);
    json_t *line0 = json_array_get(json_object_get(json_object_get(a.json, "orderCreated"), "lines"), 0);
    T_EQ_INT(json_integer_value(json_object_get(line0, "qty")), 3);
    T_EQ_STR(jstr(a.json, "orderCreated", "channel"), "EDI");
    batch_result_clear(&a);
    batch_mapping_free(m);
}

static void test_row_rejects(void)
{
    char *err;
    batch_mapping *m = parse(HEAD KIND_APPROVED KIND_CREATED, &err);
    batch_result r;
    map_line(m, HDR, "SO-1,APPROVED,31.02.2026 08:15,dc-2,,,", &r, &err);
    T_EQ_INT(r.outcome, BATCH_REJECTED);
    T_EQ_INT(r.code, EVT_INVALID_TIME);
    T_ASSERT(strstr(r.message, "column \"at\"") && strstr(r.message, "%d.%m.%Y"));
    T_EQ_STR(jstr(r.json, "importRejected", "code"), "INVALID_TIME");
    batch_result_clear(&r);
    map_line(m, HDR, "SO-2,CREATED,27.11.2026 09:00,,SKU-1,three,", &r, &err);
    T_EQ_INT(r.code, EVT_INVALID_TYPE);
    T_ASSERT(strstr(r.message, "orderCreated.lines[0].qty") && strstr(r.message, "\"three\""));
    batch_result_clear(&r);
    map_line(m, HDR, "SO-3,APPROVED,27.11.2026 09:00,dc-1", &r, &err);
    T_EQ_INT(r.code, EVT_MALFORMED);
    T_ASSERT(strstr(r.message, "4 columns, the header 7") != NULL);
    T_ASSERT(json_object_get(r.json, "orderApproved") == NULL); /* so that the codec never takes it */
    batch_result_clear(&r);
    map_line(m, HDR, "SO-4,SHIPPED,27.11.2026 09:00,,,,", &r, &err);
    T_EQ_INT(r.code, EVT_INVALID_VALUE);
    T_ASSERT(strstr(r.message, "selects no [kind]") != NULL);
    batch_result_clear(&r);
    map_line(m, HDR, "SO 5,APPROVED,27.11.2026 09:00,dc-1,,,", &r, &err);
    T_EQ_INT(r.code, EVT_INVALID_ID);
    T_ASSERT(strstr(r.message, "column \"order\"") != NULL);
    batch_result_clear(&r);
    map_line(m, "order,status,when", "x,y,z", &r, &err);
    T_ASSERT(err && strstr(err, "map.ini:10: column \"at\" is not in the header of f.csv"));
    free(err);
    batch_mapping_free(m);
}

/* Without a header, a row too short for a column the mapping reads misses that field. */
static void test_row_missing_column(void)
{
    char *err;
    batch_mapping *m = parse("[import]\nname = n\nsystem = wms\nheader = no\n[kind pick]\ntype = pickShort\n"
                             "occurredAt = col 1\norderId = col 2\npickShort.sku = col 3\npickShort.qtyShort = col 4\n",
                             &err);
    T_ASSERT(m != NULL);
    T_EQ_INT(batch_mapping_bind(m, NULL, "f.csv", &err), 0);
    const char *d = "2026-11-27T08:00:00Z,SO-1,SKU-1,2\n2026-11-27T08:00:00Z,SO-1,SKU-1\n";
    batch_reader *r = batch_reader_new(d, strlen(d), batch_mapping_format(m));
    batch_row row;
    batch_result res;
    batch_reader_next(r, &row);
    batch_map_row(m, &row, "f.csv", &res);
    T_EQ_INT(res.outcome, BATCH_EVENT);
    batch_result_clear(&res);
    batch_reader_next(r, &row);
    batch_map_row(m, &row, "f.csv", &res);
    T_EQ_INT(res.code, EVT_MISSING_FIELD);
    T_ASSERT(strstr(res.message, "pickShort.qtyShort: column 4 (\"4\") is missing: the row has 3 columns") != NULL);
    batch_result_clear(&res);
    batch_reader_free(r);
    batch_mapping_free(m);
}

static void test_times(void)
{
    int64_t s;
    T_EQ_INT(batch_parse_time("27.11.2026 08:15", "%d.%m.%Y %H:%M", 3600, &s), 0);
    T_EQ_INT(s, 1795767300 - 3600);
    T_EQ_INT(batch_parse_time("2026-11-27 08:15 +0200", "%Y-%m-%d %H:%M %z", 3600, &s), 0);
    T_EQ_INT(s, 1795767300 - 7200);
    T_EQ_INT(batch_parse_time("30.02.2026 08:15", "%d.%m.%Y %H:%M", 0, &s), -1);
    T_EQ_INT(batch_parse_time("27.11.2026 08:15 junk", "%d.%m.%Y %H:%M", 0, &s), -1);
    int z;
    T_EQ_INT(batch_parse_zone("-05:30", &z), 0);
    T_EQ_INT(z, -19800);
    T_EQ_INT(batch_parse_zone("+24:00", &z), -1);
}

int main(void)
{
    T_RUN(test_csv_rfc4180);
    T_RUN(test_csv_errors_recover);
    T_RUN(test_csv_hostile);
    T_RUN(test_fixed);
    T_RUN(test_mapping_errors);
    T_RUN(test_row_to_event);
    T_RUN(test_row_rejects);
    T_RUN(test_row_missing_column);
    T_RUN(test_times);
    return t_done();
}
