/* Unit tests of the API's route and query-string parsing (services/server/src/query.c). */
#include "test.h"

#include "query.h"
#include "server_int.h"

static int parse(const char *uri, const char *qs, server_query *q, server_query_err *e)
{
    return server_query_parse(uri, qs, q, e);
}

static void test_routes(void)
{
    server_query q;
    server_query_err e;
    struct {
        const char *uri;
        server_route route;
        const char *method;
        http_role need;
    } ok[] = {
        {"/api/v1/summary", SERVER_ROUTE_SUMMARY, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/views/blocked", SERVER_ROUTE_VIEWS, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/orders/SO-1", SERVER_ROUTE_ORDERS, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/shipments/SH-1", SERVER_ROUTE_SHIPMENTS, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/dead-letters", SERVER_ROUTE_DEAD_LETTERS, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/events", SERVER_ROUTE_INGEST, "POST", HTTP_ROLE_INGEST},
        {"/api/v1/trend", SERVER_ROUTE_TREND, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/stream", SERVER_ROUTE_STREAM, "GET", HTTP_ROLE_VIEWER},
        {"/api/v1/dead-letters/4711/redrive", SERVER_ROUTE_REDRIVE, "POST", HTTP_ROLE_OPERATOR},
        {"/api/v1/dead-letters/9999999999999999999/redrive", SERVER_ROUTE_REDRIVE, "POST", HTTP_ROLE_OPERATOR},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        T_EQ_INT(parse(ok[i].uri, NULL, &q, &e), 0);
        T_EQ_INT(q.route, ok[i].route);
        T_EQ_STR(q.method, ok[i].method);
        T_EQ_INT(q.need, ok[i].need);
    }
    T_EQ_INT(parse("/api/v1/dead-letters/4711/redrive", NULL, &q, &e), 0);
    T_EQ_INT(q.dl_seq, 4711);
    T_EQ_INT(parse("/api/v1/dead-letters/9999999999999999999/redrive", NULL, &q, &e), 0);
    T_ASSERT(q.dl_seq == 9999999999999999999ull);
    const char *none[] = {"", "/", "/api", "/api/", "/api/v1", "/api/v2/summary", "/api/v1/summary/extra",
                          "/api/v1/orders", "/api/v1/dead-letters/0/redrive", "/api/v1/dead-letters/01/redrive",
                          "/api/v1/dead-letters/x/redrive", "/api/v1/dead-letters/1/redrive/",
                          "/api/v1/dead-letters/+1/redrive", "/api/v1/dead-letters/ 1/redrive",
                          "/api/v1/dead-letters/10000000000000000000/redrive", "/api/v1/dead-letters/1"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        T_EQ_INT(parse(none[i], NULL, &q, &e), -1);
        T_EQ_INT(q.route, SERVER_ROUTE_OTHER_API);
        T_EQ_INT(e.status, 404);
        T_EQ_STR(e.code, "NOT_FOUND");
    }
    /* A route with a bad id or view: the route is known (for 405/401/403 first), then 404. */
    T_EQ_INT(parse("/api/v1/views/nope", NULL, &q, &e), -1);
    T_EQ_INT(q.route, SERVER_ROUTE_VIEWS);
    T_EQ_INT(e.status, 404);
    T_EQ_STR(e.code, "UNKNOWN_VIEW");
    T_EQ_STR(e.message, "no view \"nope\"");
    T_EQ_INT(parse("/api/v1/views/blocked/extra", NULL, &q, &e), -1);
    T_EQ_STR(e.code, "UNKNOWN_VIEW");
    char long_id[200];
    memset(long_id, 'A', sizeof long_id);
    snprintf(long_id, sizeof long_id, "/api/v1/orders/%0*d", EVT_MAX_ID + 1, 0);
    T_EQ_INT(parse(long_id, NULL, &q, &e), -1);
    T_EQ_INT(q.route, SERVER_ROUTE_ORDERS);
    T_EQ_INT(e.status, 404);
    T_EQ_STR(e.message, "no such order");
    T_EQ_INT(parse("/api/v1/shipments/", NULL, &q, &e), -1);
    T_EQ_STR(e.message, "no such shipment");
    T_EQ_INT(parse("/api/v1/orders/a/b", NULL, &q, &e), -1);
    T_EQ_INT(parse("/api/v1/orders/SO-1", NULL, &q, &e), 0);
    T_EQ_STR(q.id, "SO-1");
}

static void test_view_params(void)
{
    server_query q;
    server_query_err e;
    T_EQ_INT(parse("/api/v1/views/blocked", NULL, &q, &e), 0);
    T_EQ_INT(q.view, FOLD_VIEW_BLOCKED);
    T_EQ_INT(q.limit, 100);
    T_EQ_INT(q.has_older_than, 0);
    T_EQ_STR(q.warehouse, "");
    T_EQ_INT(parse("/api/v1/views/missing_pod", "warehouse=dc%2D2&carrier=d+h+l&limit=1000&olderThan=1h%33%30m&cursor=k",
                   &q, &e), 0);
    T_EQ_INT(q.view, FOLD_VIEW_MISSING_POD);
    T_EQ_STR(q.warehouse, "dc-2");
    T_EQ_STR(q.carrier, "d h l");
    T_EQ_STR(q.cursor, "k");
    T_EQ_INT(q.limit, 1000);
    T_EQ_INT(q.has_older_than, 1);
    T_EQ_INT(q.older_than_ns, 5400LL * 1000000000LL);
    /* olderThan=0s is a filter (older than now), not its absence */
    T_EQ_INT(parse("/api/v1/views/blocked", "olderThan=0s", &q, &e), 0);
    T_EQ_INT(q.has_older_than, 1);
    T_EQ_INT(q.older_than_ns, 0);
    /* names match in any case, the first one wins, a bare name or a name inside another is not one */
    T_EQ_INT(parse("/api/v1/views/blocked", "WAREHOUSE=a&warehouse=b&xcarrier=c&carrier&limit=5", &q, &e), 0);
    T_EQ_STR(q.warehouse, "a");
    T_EQ_STR(q.carrier, "");
    T_EQ_INT(q.limit, 5);
    /* a '%' without two hex digits is kept as it is */
    T_EQ_INT(parse("/api/v1/views/blocked", "warehouse=a%zz%4&carrier=%", &q, &e), 0);
    T_EQ_STR(q.warehouse, "a%zz%4");
    T_EQ_STR(q.carrier, "%");
    struct {
        const char *qs, *field;
    } bad[] = {{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=", "limit"}, {"limit=x", "limit"},
               {"limit=11111111111111111111", "limit"}, {"olderThan=", "olderThan"}, {"olderThan=2x", "olderThan"},
               {"olderThan=99999999999999999999s", "olderThan"}, {"olderThan=-1h", "olderThan"},
               {"warehouse=%00", "warehouse"}, {"carrier=a%00b", "carrier"}, {"cursor=%00", "cursor"},
               {"limit=1%00", "limit"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_EQ_INT(parse("/api/v1/views/blocked", bad[i].qs, &q, &e), -1);
        T_EQ_INT(q.route, SERVER_ROUTE_VIEWS);
        T_EQ_INT(e.status, 400);
        T_EQ_STR(e.code, "INVALID_PARAMETER");
        T_EQ_STR(e.field, bad[i].field);
    }
    /* the lengths the buffers take: 79 bytes of warehouse pass, 80 do not */
    char qs[300];
    snprintf(qs, sizeof qs, "warehouse=%079d", 0);
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), 0);
    T_EQ_INT(strlen(q.warehouse), 79);
    snprintf(qs, sizeof qs, "warehouse=%080d", 0);
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), -1);
    T_EQ_STR(e.message, "warehouse is too long");
    snprintf(qs, sizeof qs, "warehouse=%%41%078d", 0); /* 79 decoded bytes from 81 */
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), 0);
    /* dead letters take the same parameters on their own view */
    T_EQ_INT(parse("/api/v1/dead-letters", "limit=3&cursor=9", &q, &e), 0);
    T_EQ_INT(q.view, FOLD_VIEW_DEAD_LETTERS);
    T_EQ_INT(q.limit, 3);
    T_EQ_INT(parse("/api/v1/dead-letters", "limit=0", &q, &e), -1);
    T_EQ_STR(e.field, "limit");
}

/* The dashboard's filters (customer, reason, channel, sla), sorts and routes (values, sla/rules). */
static void test_item_filters(void)
{
    server_query q;
    server_query_err e;
    T_EQ_INT(parse("/api/v1/views/blocked", "customer=C-1&reason=on+hold&channel=edi&sla=due_soon&sort=carrier", &q, &e), 0);
    T_EQ_STR(q.customer, "C-1");
    T_EQ_STR(q.reason, "on hold");
    T_EQ_STR(q.channel, "EDI");
    T_EQ_INT(q.sla, 2);
    T_EQ_INT(q.sort, SERVER_SORT_CARRIER);
    T_EQ_INT(q.sort_priority, 0);
    T_EQ_INT(parse("/api/v1/views/blocked", "sort=priority&sla=none&channel=", &q, &e), 0);
    T_EQ_INT(q.sort_priority, 1);
    T_EQ_INT(q.sla, 4);
    T_EQ_STR(q.channel, "");
    T_EQ_INT(parse("/api/v1/views/blocked", NULL, &q, &e), 0);
    T_EQ_INT(q.sort, SERVER_SORT_AGE);
    T_EQ_INT(q.sla, 0);
    struct {
        const char *qs, *field;
    } bad[] = {{"channel=FAX", "channel"}, {"channel=ED", "channel"}, {"channel=EDI%00", "channel"},
               {"channel=ECOMMERCEECOMMERCE", "channel"}, {"sla=late", "sla"}, {"sla=Breached", "sla"},
               {"sla=breached%00", "sla"}, {"sort=random", "sort"}, {"sort=", "sort"}, {"customer=a%00", "customer"},
               {"reason=%00", "reason"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_EQ_INT(parse("/api/v1/views/blocked", bad[i].qs, &q, &e), -1);
        T_EQ_INT(e.status, 400);
        T_EQ_STR(e.field, bad[i].field);
    }
    char qs[700];
    snprintf(qs, sizeof qs, "customer=%0*d", EVT_MAX_ID, 0);
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), 0);
    snprintf(qs, sizeof qs, "customer=%0*d", EVT_MAX_ID + 1, 0);
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), -1);
    T_EQ_STR(e.field, "customer");
    snprintf(qs, sizeof qs, "reason=%0*d", EVT_MAX_TEXT, 0);
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), 0);
    snprintf(qs, sizeof qs, "reason=%0*d", EVT_MAX_TEXT + 1, 0);
    T_EQ_INT(parse("/api/v1/views/blocked", qs, &q, &e), -1);
    T_EQ_STR(e.field, "reason");
    T_EQ_INT(parse("/api/v1/values", NULL, &q, &e), 0);
    T_EQ_INT(q.route, SERVER_ROUTE_VALUES);
    T_EQ_INT(q.has_view, 0);
    T_EQ_INT(parse("/api/v1/values", "view=missing_pod", &q, &e), 0);
    T_EQ_INT(q.has_view, 1);
    T_EQ_INT(q.view, FOLD_VIEW_MISSING_POD);
    T_EQ_INT(parse("/api/v1/values", "view=nope", &q, &e), -1);
    T_EQ_STR(e.field, "view");
    T_EQ_INT(parse("/api/v1/sla/rules", NULL, &q, &e), 0);
    T_EQ_INT(q.route, SERVER_ROUTE_SLA_RULES);
    T_EQ_STR(q.method, "GET");
    T_EQ_INT(parse("/api/v1/sla/rules/x", NULL, &q, &e), -1);
    T_EQ_INT(e.status, 404);
}

static void test_search(void)
{
    server_query q;
    server_query_err e;
    T_EQ_INT(parse("/api/v1/search", "q=ACME+x", &q, &e), 0);
    T_EQ_STR(q.q, "ACME x");
    const char *bad[] = {NULL, "", "q=", "Q=", "q=%00abc", "x=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_EQ_INT(parse("/api/v1/search", bad[i], &q, &e), -1);
        T_EQ_INT(e.status, 400);
        T_EQ_STR(e.field, "q");
    }
    T_EQ_INT(parse("/api/v1/search", "Q=x", &q, &e), 0);
    char qs[300];
    snprintf(qs, sizeof qs, "q=%0*d", EVT_MAX_ID + 1, 0);
    T_EQ_INT(parse("/api/v1/search", qs, &q, &e), 0); /* one past the id limit: found nothing, not refused */
    snprintf(qs, sizeof qs, "q=%0*d", EVT_MAX_ID + 2, 0);
    T_EQ_INT(parse("/api/v1/search", qs, &q, &e), -1);
}

static void test_var(void)
{
    char b[8];
    T_EQ_INT(server_query_var(NULL, "a", b, sizeof b), 0);
    T_EQ_INT(server_query_var("", "a", b, sizeof b), 0);
    T_EQ_INT(server_query_var("a=1234567", "a", b, sizeof b), 1);
    T_EQ_STR(b, "1234567");
    T_EQ_INT(server_query_var("a=12345678", "a", b, sizeof b), -1);
    T_EQ_INT(memchr(b, 0, sizeof b) != NULL, 1);
    T_EQ_INT(server_query_var("a=%41%42", "a", b, sizeof b), 1);
    T_EQ_STR(b, "AB");
    T_EQ_INT(server_query_var("&&a=&", "a", b, sizeof b), 1);
    T_EQ_STR(b, "");
    T_EQ_INT(server_query_var("a=x%00", "a", b, sizeof b), -2);
    T_EQ_INT(server_query_var("ab=1", "a", b, sizeof b), 0);
    T_EQ_INT(server_query_var("b=a=1", "a", b, sizeof b), 0);
}

/* guard.c: which listen lists are loopback only, and the Host and Origin values loopback mode takes. */
static void test_listen(void)
{
    server_listen l[16];
    const char *why = NULL;
    T_EQ_INT(server__listen_parse("127.0.0.1:8080", l, 16, &why), 1);
    T_EQ_INT(l[0].loopback, 1);
    T_EQ_INT(l[0].port, 8080);
    T_EQ_INT(server__listen_parse("127.0.0.1:1,[::1]:2,localhost:3,127.9.9.9:4,[::ffff:127.0.0.1]:5", l, 16, &why), 5);
    for (int i = 0; i < 5; i++) T_EQ_INT(l[i].loopback, 1);
    T_EQ_STR(l[1].host, "::1");
    /* Any address that is not loopback, wherever it is in the list. */
    T_EQ_INT(server__listen_parse("127.0.0.1:1,0.0.0.0:2", l, 16, &why), 2);
    T_EQ_INT(l[1].loopback, 0);
    const char *open[] = {"8080", "+8080", "0.0.0.0:1", "[::]:1", "10.0.0.1:1", "example.com:1", "[::ffff:10.0.0.1]:1"};
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        T_EQ_INT(server__listen_parse(open[i], l, 16, &why), 1);
        T_EQ_INT(l[0].loopback, 0);
    }
    const char *bad[] = {"", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000", "[::1", "[::1]8080", "127.0.0.1:8443s",
                         "127.0.0.1:80r", "127.0.0.1:1,", ",127.0.0.1:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) T_EQ_INT(server__listen_parse(bad[i], l, 16, &why), -1);
}

static void test_hosts(void)
{
    server_listen l[4];
    const char *why;
    char **h = NULL;
    int n = server__listen_parse("127.0.0.1:8080,[::1]:80", l, 4, &why);
    size_t nh = server__hosts_build(l, (size_t)n, " Tower.Example.com , proxy:8443", &h);
    const char *yes[] = {"127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080", "localhost", "127.0.0.1:80",
                         "[::1]", "tower.example.com", "proxy:8443"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) T_EQ_INT(server__host_allowed(h, nh, yes[i], strlen(yes[i])), 1);
    const char *no[] = {"evil.com", "127.0.0.1:8081", "127.0.0.1:81", "127.0.0.2:8080", "evil.com:8080", "localhost.evil.com:8080",
                        "", "proxy", "tower.example.com:8080"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) T_EQ_INT(server__host_allowed(h, nh, no[i], strlen(no[i])), 0);
    /* A Host header with a loopback name passes whatever its port (it cannot be rebound); others must be listed. */
    const char *host_yes[] = {"127.0.0.1", "127.0.0.1:1", "127.0.0.2:8080", "localhost", "LocalHost:9", "[::1]", "[::1]:5",
                              "tower.example.com", "proxy:8443"};
    for (size_t i = 0; i < sizeof host_yes / sizeof host_yes[0]; i++) T_EQ_INT(server__host_header_ok(h, nh, host_yes[i]), 1);
    const char *host_no[] = {"evil.com", "evil.com:8080", "localhost.evil.com:8080", "127.0.0.1.evil.com", "[::2]:8080",
                             "[::1", "proxy:8444", "", "0.0.0.0:8080", "10.0.0.1:8080"};
    for (size_t i = 0; i < sizeof host_no / sizeof host_no[0]; i++) T_EQ_INT(server__host_header_ok(h, nh, host_no[i]), 0);
    T_EQ_INT(server__origin_allowed(h, nh, "http://127.0.0.1:8080"), 1);
    T_EQ_INT(server__origin_allowed(h, nh, "https://tower.example.com"), 1);
    T_EQ_INT(server__origin_allowed(h, nh, "http://evil.com"), 0);
    T_EQ_INT(server__origin_allowed(h, nh, "http://127.0.0.1:9999"), 0);
    T_EQ_INT(server__origin_allowed(h, nh, "null"), 0);
    T_EQ_INT(server__origin_allowed(h, nh, "127.0.0.1:8080"), 0);
    T_EQ_INT(server__origin_allowed(h, nh, "file://127.0.0.1:8080"), 0);
    for (size_t i = 0; i < nh; i++) free(h[i]);
    free(h);
    T_EQ_INT(server__json_content_type("application/json"), 1);
    T_EQ_INT(server__json_content_type("Application/JSON; charset=utf-8"), 1);
    T_EQ_INT(server__json_content_type("application/x-ndjson"), 1);
    T_EQ_INT(server__json_content_type("text/plain"), 0);
    T_EQ_INT(server__json_content_type("application/x-www-form-urlencoded"), 0);
    T_EQ_INT(server__json_content_type("multipart/form-data; boundary=x"), 0);
    T_EQ_INT(server__json_content_type("application/jsonp"), 0);
    T_EQ_INT(server__json_content_type(NULL), 0);
}

int main(void)
{
    T_RUN(test_listen);
    T_RUN(test_hosts);
    T_RUN(test_routes);
    T_RUN(test_view_params);
    T_RUN(test_item_filters);
    T_RUN(test_search);
    T_RUN(test_var);
    return t_done();
}
