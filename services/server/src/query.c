/* Parsing an API request's path and query string into a route and checked parameters (pure). */
#include "query.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ct_config.h"

static int fail(server_query_err *err, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(server_query_err *err, int status, const char *code, const char *field, const char *fmt, ...)
{
    err->status = status;
    err->code = code;
    err->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode src[0..len) into buf; '+' is a space; a '%' not followed by two hex digits is kept. */
static int decode(const char *src, size_t len, char *buf, size_t cap)
{
    size_t j = 0;
    int nul = 0;
    for (size_t i = 0; i < len; i++) {
        if (j + 1 >= cap) {
            buf[j] = '\0';
            return -1;
        }
        char ch = src[i];
        int hi, lo;
        if (ch == '%' && i + 2 < len && (hi = hexval(src[i + 1])) >= 0 && (lo = hexval(src[i + 2])) >= 0) {
            ch = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (!ch) nul = 1;
        buf[j++] = ch;
    }
    buf[j] = '\0';
    return nul ? -2 : 1;
}

int server_query_var(const char *qs, const char *name, char *buf, size_t cap)
{
    if (cap) buf[0] = '\0';
    if (!qs || !cap) return 0;
    size_t nl = strlen(name);
    /* "a=1&b=2": the first parameter whose name matches, in any case, wins. */
    for (const char *p = qs;;) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && p[nl] == '=' && !strncasecmp(p, name, nl)) return decode(p + nl + 1, seg - nl - 1, buf, cap);
        if (!amp) return 0;
        p = amp + 1;
    }
}

/* The route of a decoded path; for redrive also the dead letter's sequence. */
static server_route route_of(const char *uri, uint64_t *seq)
{
    if (!strcmp(uri, "/api/v1/summary")) return SERVER_ROUTE_SUMMARY;
    if (!strncmp(uri, "/api/v1/views/", 14)) return SERVER_ROUTE_VIEWS;
    if (!strncmp(uri, "/api/v1/orders/", 15)) return SERVER_ROUTE_ORDERS;
    if (!strncmp(uri, "/api/v1/shipments/", 18)) return SERVER_ROUTE_SHIPMENTS;
    if (!strcmp(uri, "/api/v1/search")) return SERVER_ROUTE_SEARCH;
    if (!strcmp(uri, "/api/v1/dead-letters")) return SERVER_ROUTE_DEAD_LETTERS;
    if (!strcmp(uri, "/api/v1/events")) return SERVER_ROUTE_INGEST;
    if (!strcmp(uri, "/api/v1/trend")) return SERVER_ROUTE_TREND;
    if (!strcmp(uri, "/api/v1/stream")) return SERVER_ROUTE_STREAM;
    if (!strcmp(uri, "/api/v1/me")) return SERVER_ROUTE_ME;
    if (!strcmp(uri, "/api/v1/producers")) return SERVER_ROUTE_PRODUCERS;
    if (!strcmp(uri, "/api/v1/reference")) return SERVER_ROUTE_REFERENCE;
    if (!strcmp(uri, "/api/v1/values")) return SERVER_ROUTE_VALUES;
    if (!strcmp(uri, "/api/v1/leadtimes")) return SERVER_ROUTE_LEADTIMES;
    if (!strcmp(uri, "/api/v1/sla/rules")) return SERVER_ROUTE_SLA_RULES;
    if (!strcmp(uri, "/api/v1/runbooks") || !strncmp(uri, "/api/v1/runbooks/", 17)) return SERVER_ROUTE_RUNBOOKS;
    if (!strcmp(uri, "/api/v1/integrations") || !strncmp(uri, "/api/v1/integrations/", 21)) {
        /* /api/v1/integrations/{name}/dead-letters or /redrive; any other shape is no route (404, any method). */
        const char *slash = uri[20] ? strchr(uri + 21, '/') : NULL;
        if (!uri[20]) return SERVER_ROUTE_INTEGRATIONS;
        if (slash && !strcmp(slash, "/redrive")) return SERVER_ROUTE_INTEGRATION_REDRIVE;
        return slash && !strcmp(slash, "/dead-letters") ? SERVER_ROUTE_INTEGRATIONS : SERVER_ROUTE_OTHER_API;
    }
    if (!strcmp(uri, "/api/v1/exceptions") || !strncmp(uri, "/api/v1/exceptions/", 19)) {
        const char *rest = uri[18] ? uri + 19 : "";
        return !strcmp(rest, "actions") || strchr(rest, '/') ? SERVER_ROUTE_ACTIONS : SERVER_ROUTE_EXCEPTIONS;
    }
    if (strncmp(uri, "/api/v1/dead-letters/", 21) != 0) return SERVER_ROUTE_OTHER_API;
    /* /api/v1/dead-letters/{seq}/redrive: 1 to 19 digits without a leading zero (fits in 64 bits). */
    const char *p = uri + 21, *d = p;
    uint64_t v = 0;
    while (*d >= '0' && *d <= '9' && d - p < 19) v = v * 10 + (uint64_t)(*d++ - '0');
    if (d == p || *p == '0' || strcmp(d, "/redrive") != 0) return SERVER_ROUTE_OTHER_API;
    *seq = v;
    return SERVER_ROUTE_REDRIVE;
}

/* A string parameter of a view page: "" when absent. */
static int str_param(const char *qs, const char *name, char *buf, size_t cap, server_query_err *err)
{
    int got = server_query_var(qs, name, buf, cap);
    if (got == -1) return fail(err, 400, "INVALID_PARAMETER", name, "%s is too long", name);
    if (got == -2) return fail(err, 400, "INVALID_PARAMETER", name, "%s must not contain a NUL byte", name);
    return 0;
}

int server_action_known(const char *a)
{
    static const char *const names[] = {"ack", "assign", "snooze", "note", "resolve", "reopen"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(a, names[i])) return 1;
    return 0;
}

/* The states a list may be filtered by (store_query.state takes the same). */
static int state_ok(const char *state)
{
    static const char *const ok[] = {"", "all", "open", "acknowledged", "snoozed", "attention"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(state, ok[i])) return 1;
    return 0;
}

/* state= and assignee= (views and exceptions). */
static int life_params(const char *qs, server_query *out, server_query_err *err)
{
    if (str_param(qs, "state", out->state, sizeof out->state, err)) return -1;
    if (!state_ok(out->state))
        return fail(err, 400, "INVALID_PARAMETER", "state",
                    "state must be one of open, acknowledged, snoozed, attention, all");
    int got = server_query_var(qs, "assignee", out->assignee, sizeof out->assignee);
    if (got < 0 || (got && !out->assignee[0]))
        return fail(err, 400, "INVALID_PARAMETER", "assignee",
                    "assignee must be a name of 1-%d bytes, me or none", EVT_MAX_ACTOR);
    if (got) {
        out->has_assignee = 1;
        if (!strcmp(out->assignee, "none")) out->assignee[0] = '\0';
        else if (!strcmp(out->assignee, "me")) out->assignee_me = 1;
    }
    return 0;
}

/* sort=: one of the server_sort names. */
static int sort_param(const char *qs, server_query *out, server_query_err *err)
{
    static const char *const names[] = {"age", "newest", "priority", "warehouse", "carrier", "slack"};
    char sort[16];
    int gs = server_query_var(qs, "sort", sort, sizeof sort);
    if (gs == 0) return 0;
    for (size_t i = 0; gs > 0 && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(sort, names[i])) {
            out->sort = (server_sort)i;
            out->sort_priority = out->sort == SERVER_SORT_PRIORITY;
            return 0;
        }
    return fail(err, 400, "INVALID_PARAMETER", "sort", "sort must be age, newest, priority, warehouse, carrier or slack");
}

/* customer=, channel=, reason= and sla= (judged on each item; docs/api.md). */
static int item_filter_params(const char *qs, server_query *out, server_query_err *err)
{
    static const char *const channels[] = {"ECOMMERCE", "EDI", "SERVICE"};
    static const char *const slas[] = {"breached", "due_soon", "within", "none"};
    char buf[16];
    if (str_param(qs, "customer", out->customer, sizeof out->customer, err) ||
        str_param(qs, "reason", out->reason, sizeof out->reason, err))
        return -1;
    if (strlen(out->customer) > EVT_MAX_ID)
        return fail(err, 400, "INVALID_PARAMETER", "customer", "customer is too long: a customer id has at most %d bytes",
                    EVT_MAX_ID);
    int got = server_query_var(qs, "channel", buf, sizeof buf);
    for (size_t i = 0; got > 0 && buf[0] && i < sizeof channels / sizeof channels[0]; i++)
        if (!strcasecmp(buf, channels[i])) strcpy(out->channel, channels[i]);
    if (got < 0 || (got > 0 && buf[0] && !out->channel[0]))
        return fail(err, 400, "INVALID_PARAMETER", "channel", "channel must be ECOMMERCE, EDI or SERVICE");
    got = server_query_var(qs, "sla", buf, sizeof buf);
    for (size_t i = 0; got > 0 && i < sizeof slas / sizeof slas[0]; i++)
        if (!strcmp(buf, slas[i])) out->sla = (int)i + 1;
    if (got < 0 || (got > 0 && buf[0] && !out->sla))
        return fail(err, 400, "INVALID_PARAMETER", "sla", "sla must be breached, due_soon, within or none");
    return 0;
}

/* limit: from 1 to max, def when absent. */
static int limit_param(const char *qs, int64_t def, int64_t max, server_query *out, server_query_err *err)
{
    char buf[16];
    int64_t limit = 0;
    out->limit = def;
    int got = server_query_var(qs, "limit", buf, sizeof buf);
    if (got < 0 || (got && (ct_parse_int(buf, &limit) != 0 || limit < 1 || limit > max)))
        return fail(err, 400, "INVALID_PARAMETER", "limit", "limit must be an integer from 1 to %lld", (long long)max);
    if (got) out->limit = limit;
    return 0;
}

/* view, when given, one of the views (out->has_view says whether it was). */
static int view_filter_param(const char *qs, server_query *out, server_query_err *err)
{
    char buf[64];
    int got = server_query_var(qs, "view", buf, sizeof buf);
    if (got < 0 || (got && fold_view_parse(buf, &out->view) != 0))
        return fail(err, 400, "INVALID_PARAMETER", "view", "view must be one of the views, e.g. blocked");
    out->has_view = got > 0;
    return 0;
}

static int view_params(const char *qs, server_query *out, server_query_err *err)
{
    if (life_params(qs, out, err) || sort_param(qs, out, err) || item_filter_params(qs, out, err)) return -1;
    int gc = server_query_var(qs, "code", out->code, sizeof out->code);
    int code_ok = gc >= 0;
    for (const char *p = out->code; code_ok && *p; p++) code_ok = (*p >= 'A' && *p <= 'Z') || *p == '_';
    if (!code_ok || (gc > 0 && !out->code[0]))
        return fail(err, 400, "INVALID_PARAMETER", "code", "code must be a dead-letter code such as INVALID_VALUE");
    if (str_param(qs, "warehouse", out->warehouse, sizeof out->warehouse, err) ||
        str_param(qs, "carrier", out->carrier, sizeof out->carrier, err) ||
        str_param(qs, "cursor", out->cursor, sizeof out->cursor, err))
        return -1;
    if (limit_param(qs, SERVER_QUERY_DEFAULT_LIMIT, SERVER_QUERY_MAX_LIMIT, out, err)) return -1;
    char buf[32];
    int got = server_query_var(qs, "olderThan", buf, sizeof buf);
    if (got) {
        int64_t d = 0;
        if (got < 0 || ct_parse_duration_ns(buf, &d) != 0 || d < 0)
            return fail(err, 400, "INVALID_PARAMETER", "olderThan", "olderThan must be a duration such as 90m, 2h or 1d");
        out->has_older_than = 1;
        out->older_than_ns = d;
    }
    return 0;
}

/* A destination's name as a relay file allows it: 1-64 of [A-Za-z0-9_-] (never "..", never a '/'). */
static int dest_name_ok(const char *p, size_t n)
{
    if (n == 0 || n > SERVER_DEST_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
              p[i] == '_' || p[i] == '-'))
            return 0;
    return 1;
}

/* /api/v1/integrations, /api/v1/integrations/{name}/dead-letters?limit=, /api/v1/integrations/{name}/redrive. */
static int integration_params(const char *uri, const char *qs, server_query *out, server_query_err *err)
{
    if (out->route == SERVER_ROUTE_INTEGRATION_REDRIVE) {
        out->method = "POST";
        out->need = HTTP_ROLE_OPERATOR;
    }
    if (!uri[20]) return 0; /* the list */
    const char *name = uri + 21, *slash = strchr(name, '/');
    size_t n = slash ? (size_t)(slash - name) : strlen(name);
    if (!slash || !dest_name_ok(name, n))
        return fail(err, 404, "NOT_FOUND", NULL,
                    "no such destination: a name is 1-%d of A-Z a-z 0-9 _ - (see GET /api/v1/integrations)",
                    SERVER_DEST_MAX);
    memcpy(out->dest, name, n);
    out->dest[n] = '\0';
    if (out->route == SERVER_ROUTE_INTEGRATION_REDRIVE) return 0;
    if (strcmp(slash, "/dead-letters") != 0)
        return fail(err, 404, "NOT_FOUND", NULL, "no route %.200s", uri);
    out->dest_dead = 1;
    return limit_param(qs, SERVER_QUERY_DEFAULT_LIMIT, SERVER_QUERY_MAX_LIMIT, out, err);
}

/* GET /api/v1/reference: kind=warehouse|carrier|sku (absent: all), limit= codes per kind (1..10000, 1000). */
static int reference_params(const char *qs, server_query *out, server_query_err *err)
{
    char buf[32];
    int got = server_query_var(qs, "kind", buf, sizeof buf);
    if (got > 0) out->ref_kind = !strcmp(buf, "warehouse") ? 'w' : !strcmp(buf, "carrier") ? 'c' : !strcmp(buf, "sku") ? 'k' : 0;
    if (got < 0 || (got > 0 && !out->ref_kind))
        return fail(err, 400, "INVALID_PARAMETER", "kind", "kind must be warehouse, carrier or sku");
    return limit_param(qs, 1000, 10000, out, err);
}

/* POST /api/v1/exceptions/actions, or /api/v1/exceptions/{id}/{action}. */
static int action_params(const char *uri, server_query *out, server_query_err *err)
{
    out->method = "POST";
    out->need = HTTP_ROLE_OPERATOR;
    const char *rest = uri + 19;
    if (!strcmp(rest, "actions")) return 0;
    const char *slash = strchr(rest, '/');
    size_t il = (size_t)(slash - rest);
    evt_exid x;
    if (il == 0 || il > EVT_MAX_EXID) return fail(err, 404, "NOT_FOUND", NULL, "no such exception");
    memcpy(out->exid, rest, il);
    out->exid[il] = '\0';
    if (strlen(slash + 1) >= sizeof out->action || !server_action_known(slash + 1))
        return fail(err, 404, "NOT_FOUND", NULL,
                    "no action \"%.32s\": use ack, assign, snooze, note, resolve or reopen", slash + 1);
    strcpy(out->action, slash + 1);
    if (evt_exid_parse(out->exid, &x, NULL) != 0)
        return fail(err, 404, "NOT_FOUND", NULL, "no exception \"%.200s\" (not an exception id)", out->exid);
    return 0;
}

/* GET /api/v1/exceptions/{id}, or the list with closed, view, since, lifecycle filters, cursor and limit. */
static int exception_params(const char *uri, const char *qs, server_query *out, server_query_err *err)
{
    if (uri[18] == '/') {
        evt_exid x;
        const char *id = uri + 19;
        if (!*id || strlen(id) > EVT_MAX_EXID || evt_exid_parse(id, &x, NULL) != 0)
            return fail(err, 404, "NOT_FOUND", NULL, "no exception \"%.200s\" (not an exception id)", id);
        strcpy(out->exid, id);
        return 0;
    }
    char buf[64];
    int got = server_query_var(qs, "closed", buf, sizeof buf);
    out->closed = got > 0 && (!strcmp(buf, "1") || !strcmp(buf, "true"));
    if (got < 0 || (got > 0 && !out->closed && strcmp(buf, "0") && strcmp(buf, "false")))
        return fail(err, 400, "INVALID_PARAMETER", "closed", "closed must be 1 or 0");
    if (view_filter_param(qs, out, err)) return -1;
    got = server_query_var(qs, "since", buf, sizeof buf);
    if (got) {
        int64_t sec;
        int32_t ns;
        if (got < 0 || evt_time_parse(buf, &sec, &ns) != 0 || sec < EVT_MIN_SECONDS || sec >= EVT_END_SECONDS)
            return fail(err, 400, "INVALID_PARAMETER", "since", "since must be an RFC 3339 time in 2000-2099");
        out->since_ns = sec * 1000000000LL + ns;
    }
    if (life_params(qs, out, err) || str_param(qs, "cursor", out->cursor, sizeof out->cursor, err)) return -1;
    if (limit_param(qs, SERVER_QUERY_DEFAULT_LIMIT, SERVER_QUERY_MAX_LIMIT, out, err)) return -1;
    return 0;
}

int server_query_parse(const char *uri, const char *qs, server_query *out, server_query_err *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (!uri) uri = "";
    out->route = route_of(uri, &out->dl_seq);
    out->method = "GET";
    out->need = HTTP_ROLE_VIEWER;
    switch (out->route) {
    case SERVER_ROUTE_OTHER_API:
        return fail(err, 404, "NOT_FOUND", NULL, "no route %.200s", uri);
    case SERVER_ROUTE_INGEST:
        out->method = "POST";
        out->need = HTTP_ROLE_INGEST;
        return 0;
    case SERVER_ROUTE_REDRIVE:
        out->method = "POST";
        out->need = HTTP_ROLE_OPERATOR;
        return 0;
    case SERVER_ROUTE_VIEWS:
        out->id = uri + 14;
        if (fold_view_parse(out->id, &out->view) != 0)
            return fail(err, 404, "UNKNOWN_VIEW", NULL, "no view \"%.64s\"", out->id);
        return view_params(qs, out, err);
    case SERVER_ROUTE_DEAD_LETTERS:
        out->view = FOLD_VIEW_DEAD_LETTERS;
        return view_params(qs, out, err);
    case SERVER_ROUTE_ORDERS:
    case SERVER_ROUTE_SHIPMENTS:
        out->id = uri + (out->route == SERVER_ROUTE_ORDERS ? 15 : 18);
        if (!*out->id || strlen(out->id) > EVT_MAX_ID || strchr(out->id, '/'))
            return fail(err, 404, "NOT_FOUND", NULL, "no such %s", out->route == SERVER_ROUTE_ORDERS ? "order" : "shipment");
        return 0;
    case SERVER_ROUTE_SEARCH:
        if (server_query_var(qs, "q", out->q, sizeof out->q) <= 0 || !out->q[0])
            return fail(err, 400, "INVALID_PARAMETER", "q",
                        "q is required: an order id, shipment id or customer id (prefix), at most %d characters",
                        EVT_MAX_ID);
        return 0;
    case SERVER_ROUTE_ME:
        return 0;
    case SERVER_ROUTE_VALUES:
        return view_filter_param(qs, out, err);
    case SERVER_ROUTE_INTEGRATIONS:
    case SERVER_ROUTE_INTEGRATION_REDRIVE:
        return integration_params(uri, qs, out, err);
    case SERVER_ROUTE_REFERENCE:
        return reference_params(qs, out, err);
    case SERVER_ROUTE_ACTIONS:
        return action_params(uri, out, err);
    case SERVER_ROUTE_EXCEPTIONS:
        return exception_params(uri, qs, out, err);
    default:
        return 0;
    }
}
