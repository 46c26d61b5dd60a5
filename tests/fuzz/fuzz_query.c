/* libFuzzer target: the API's route and query-string parsing (server_query_parse), without civetweb.
 * The input is "PATH\nQUERY" (no newline: a path without a query string). Checks the bounds of what
 * is parsed, and that server_query_var decodes exactly as civetweb's mg_get_var, which it replaced. */
#include <civetweb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_query: invariant broken: %s\n", what);
        abort();
    }
}

static int terminated(const char *s, size_t cap) { return memchr(s, 0, cap) != NULL; }

/* server_query_var against mg_get_var for one name. */
static void same_as_civetweb(const char *qs, const char *name, size_t cap)
{
    char mine[1100], theirs[1100];
    int a = server_query_var(qs, name, mine, cap);
    int b = mg_get_var(qs, strlen(qs), name, theirs, cap);
    check(terminated(mine, cap), "the decoded value is terminated");
    switch (a) {
    case 1: check(b >= 0 && (size_t)b == strlen(mine) && !strcmp(mine, theirs), "a value decodes as civetweb does"); break;
    case 0: check(b == -1, "an absent parameter is absent for civetweb too"); break;
    case -1: check(b == -2, "a value too long is too long for civetweb too"); break;
    case -2: check(b >= 0 && memchr(theirs, 0, (size_t)b) != NULL, "a NUL byte is refused"); break;
    default: check(0, "server_query_var returns 1, 0, -1 or -2");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *qs = memchr(buf, '\n', size);
    if (qs) *qs++ = '\0';

    server_query q;
    server_query_err err;
    int rc = server_query_parse(buf, qs, &q, &err);
    check(q.route < SERVER_ROUTE_COUNT, "the route is one of ours");
    check(!strcmp(q.method, "GET") || !strcmp(q.method, "POST"), "the method is GET or POST");
    if (rc != 0) {
        check(rc == -1, "failure is -1");
        check(err.status == 400 || err.status == 404, "a refusal is 400 or 404");
        check(err.code != NULL && terminated(err.message, sizeof err.message), "a refusal has a code and a message");
        check(q.route != SERVER_ROUTE_OTHER_API || err.status == 404, "no route is 404");
    } else {
        check(q.route != SERVER_ROUTE_OTHER_API, "success has a route");
        if (q.route == SERVER_ROUTE_ACTIONS || q.route == SERVER_ROUTE_EXCEPTIONS) {
            evt_exid x;
            check(terminated(q.exid, sizeof q.exid) && terminated(q.action, sizeof q.action) &&
                      terminated(q.assignee, sizeof q.assignee) && terminated(q.state, sizeof q.state),
                  "the exception's strings are terminated");
            check(!q.exid[0] || evt_exid_parse(q.exid, &x, NULL) == 0, "an exception id in the path parses");
            check(q.route != SERVER_ROUTE_ACTIONS || !q.exid[0] || server_action_known(q.action),
                  "an action on one exception is one of the six");
            check(!q.has_view || q.view < FOLD_VIEW_COUNT, "the view filter is one of ours");
        }
        if (q.route == SERVER_ROUTE_VIEWS || q.route == SERVER_ROUTE_DEAD_LETTERS) {
            check(q.view < FOLD_VIEW_COUNT, "the view is one of ours");
            check(q.limit >= 1 && q.limit <= SERVER_QUERY_MAX_LIMIT, "the limit is in bounds");
            check(q.older_than_ns >= 0, "olderThan is not negative");
            check(terminated(q.warehouse, sizeof q.warehouse) && terminated(q.carrier, sizeof q.carrier) &&
                      terminated(q.cursor, sizeof q.cursor),
                  "filters are terminated");
            check(terminated(q.customer, sizeof q.customer) && strlen(q.customer) <= EVT_MAX_ID &&
                      terminated(q.reason, sizeof q.reason) && terminated(q.channel, sizeof q.channel),
                  "the item filters are terminated and bounded");
            check(!q.channel[0] || !strcmp(q.channel, "ECOMMERCE") || !strcmp(q.channel, "EDI") ||
                      !strcmp(q.channel, "SERVICE"),
                  "a channel is one of the three");
            check(q.sla >= 0 && q.sla <= 4 && q.sort >= SERVER_SORT_AGE && q.sort <= SERVER_SORT_CARRIER,
                  "the SLA state and the sort are known ones");
            check(q.sort_priority == (q.sort == SERVER_SORT_PRIORITY), "sort=priority sets sort_priority");
        }
        if (q.route == SERVER_ROUTE_ORDERS || q.route == SERVER_ROUTE_SHIPMENTS)
            check(q.id && *q.id && strlen(q.id) <= EVT_MAX_ID && !strchr(q.id, '/'), "an entity id is bounded");
        if (q.route == SERVER_ROUTE_VALUES) check(!q.has_view || q.view < FOLD_VIEW_COUNT, "a values view is one of ours");
        if (q.route == SERVER_ROUTE_SEARCH) check(q.q[0] && strlen(q.q) <= EVT_MAX_ID + 1, "a search is bounded");
        if (q.route == SERVER_ROUTE_REDRIVE) check(q.dl_seq > 0, "a redrive names a sequence");
    }
    if (qs) {
        static const char *const names[] = {"warehouse", "carrier", "cursor", "limit", "olderThan", "q", "token",
                                            "customer", "reason", "channel", "sla", "sort"};
        static const size_t caps[] = {80, 80, 1100, 16, 32, EVT_MAX_ID + 2, 1, EVT_MAX_ID + 2, EVT_MAX_TEXT + 1, 16, 16, 16};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) same_as_civetweb(qs, names[i], caps[i]);
    }
    free(buf);
    return 0;
}
