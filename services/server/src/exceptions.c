/* The exception lifecycle's routes (docs/exceptions.md): act on one or many exceptions (publish the action,
 * wait until the projector applied it, answer the exception as now folded), read one, list them. */
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define MAX_ACTION_BODY (64 * 1024)
#define MAX_BULK_IDS 500
/* How long an action waits for the projector to apply it before answering 504 (it still applies later). */
#define APPLY_WAIT_NS (5LL * 1000000000LL)
#define MIN_SNOOZE_S 60
#define MAX_SNOOZE_S (30LL * 86400)

static int fail(server_query_err *err, int status, const char *code, const char *field, const char *msg)
{
    err->status = status;
    err->code = code;
    err->field = field;
    snprintf(err->message, sizeof err->message, "%s", msg);
    return -1;
}

static const char *payload_of(const char *action)
{
    static const char *const map[][2] = {{"ack", "exceptionAcknowledged"}, {"assign", "exceptionAssigned"},
                                         {"snooze", "exceptionSnoozed"},   {"note", "exceptionNoted"},
                                         {"resolve", "exceptionResolved"}, {"reopen", "exceptionReopened"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(action, map[i][0])) return map[i][1];
    return NULL;
}

/* A string member of the body: 1 present (as *out), 0 absent or null, -1 another type. */
static int body_str(const json_t *body, const char *name, const char **out)
{
    json_t *v = body ? json_object_get(body, name) : NULL;
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    *out = json_string_value(v);
    return 1;
}

static void time_str(int64_t ns, char *buf)
{
    evt_time_format(ns / 1000000000LL, (int32_t)(ns % 1000000000LL), buf);
}

/* The fields of the action's payload from the body; -1 with *err naming the field at fault. */
static int action_fields(const char *action, const char *actor, const json_t *body, int64_t now_ns, json_t *pl,
                         server_query_err *err)
{
    const char *note = NULL, *v = NULL;
    if (body_str(body, "note", &note) < 0) return fail(err, 400, "INVALID_PARAMETER", "note", "note must be a string");
    if (note && *note) json_object_set_new(pl, "note", json_string(note));
    if (!strcmp(action, "note") && (!note || !*note))
        return fail(err, 400, "INVALID_PARAMETER", "note", "note is required: 1-2000 bytes of text");
    if (!strcmp(action, "assign")) {
        int got = body_str(body, "assignee", &v);
        if (got <= 0)
            return fail(err, 400, "INVALID_PARAMETER", "assignee",
                        "assignee is required: a name, \"me\", or \"\" to unassign");
        if (!strcmp(v, "me")) v = actor;
        if (*v) json_object_set_new(pl, "assignee", json_string(v));
    } else if (!strcmp(action, "snooze")) {
        json_t *fs = body ? json_object_get(body, "forSeconds") : NULL;
        int got = body_str(body, "until", &v);
        if (got < 0) return fail(err, 400, "INVALID_PARAMETER", "until", "until must be an RFC 3339 time");
        if ((got > 0) == (fs != NULL))
            return fail(err, 400, "INVALID_PARAMETER", "until",
                        "give until (an RFC 3339 time) or forSeconds (60 s to 30 days), one of them");
        char buf[48];
        if (fs) {
            if (!json_is_integer(fs) || json_integer_value(fs) < MIN_SNOOZE_S || json_integer_value(fs) > MAX_SNOOZE_S)
                return fail(err, 400, "INVALID_PARAMETER", "forSeconds", "forSeconds must be an integer from 60 to 2592000");
            time_str(now_ns + (int64_t)json_integer_value(fs) * 1000000000LL, buf);
            v = buf;
        }
        json_object_set_new(pl, "until", json_string(v));
    } else if (!strcmp(action, "resolve")) {
        int got = body_str(body, "resolution", &v);
        static const char *const names[] = {"FIXED_AT_SOURCE", "REDRIVEN", "NOT_AN_ISSUE", "DUPLICATE", "OTHER"};
        const char *found = NULL;
        for (size_t i = 0; got > 0 && i < sizeof names / sizeof names[0]; i++)
            if (!strcasecmp(v, names[i])) found = names[i];
        if (!found)
            return fail(err, 400, "INVALID_PARAMETER", "resolution",
                        "resolution is required: FIXED_AT_SOURCE, REDRIVEN, NOT_AN_ISSUE, DUPLICATE or OTHER");
        json_object_set_new(pl, "resolution", json_string(found));
    }
    return 0;
}

evt_event *server__action_event(const char *action, const char *exid, const char *actor, const json_t *body,
                                int64_t now_ns, server_query_err *err)
{
    const char *payload = payload_of(action);
    if (!payload) return fail(err, 404, "NOT_FOUND", NULL, "no such action"), NULL;
    if (body && !json_is_object(body))
        return fail(err, 400, "INVALID_JSON", NULL, "the body must be a JSON object"), NULL;
    json_t *pl = json_object();
    json_object_set_new(pl, "exceptionId", json_string(exid));
    json_object_set_new(pl, "actor", json_string(actor));
    if (action_fields(action, actor, body, now_ns, pl, err) != 0) {
        json_decref(pl);
        return NULL;
    }
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        memcpy(rnd, &ts, sizeof rnd < sizeof ts ? sizeof rnd : sizeof ts);
    }
    char id[40] = "act-", at[48];
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(id + 4 + 2 * i, 3, "%02x", rnd[i]);
    time_str(now_ns, at);
    json_t *ev = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o}", "eventId", id, "occurredAt", at, "source", "system",
                           "tower", "instance", "api", payload, pl);
    evt_event *e = NULL;
    evt_error ee;
    if (evt_from_json(&e, ev, &ee) != CT_OK) {
        /* The body's field: the last part of the path ("exceptionNoted.note" -> note). */
        const char *dot = strrchr(ee.field, '.');
        static _Thread_local char field[sizeof ee.field];
        snprintf(field, sizeof field, "%s", dot ? dot + 1 : ee.field);
        err->status = 400;
        err->code = "INVALID_PARAMETER";
        err->field = *field ? field : NULL;
        snprintf(err->message, sizeof err->message, "%.300s", ee.message);
        e = NULL;
    }
    json_decref(ev);
    return e;
}

/* ---- acting -------------------------------------------------------------------------------------------- */

/* Whether the action applies to the exception as it stands: 0, or -1 with *err (404, 409). */
static int applicable(store_reader *r, const char *exid, const char *action, int64_t now, server_query_err *err)
{
    Tower__V1__ViewItem *it = NULL;
    int closed = 0;
    ct_status st = store_exception_get(r, exid, &it, &closed);
    if (st == CT_NOT_FOUND) return fail(err, 404, "NOT_FOUND", NULL, "no such exception, open or closed");
    if (st != CT_OK) return fail(err, 500, "STORE_ERROR", NULL, "reading the exception failed");
    int open = !closed;
    const char *state = store_item_state(it, now);
    int rc = 0;
    if (!strcmp(action, "reopen")) {
        if (!state || strcmp(state, "resolved") != 0)
            rc = fail(err, 409, "CONFLICT", NULL,
                      open ? "the exception is open: only a resolved one can be reopened"
                           : "the exception closed because its condition cleared: there is nothing to reopen");
    } else if (strcmp(action, "note") != 0 && !open) {
        rc = fail(err, 409, "CONFLICT", NULL,
                  state && !strcmp(state, "resolved") ? "the exception is resolved: reopen it first"
                                                      : "the exception is closed (its condition cleared); notes only");
    }
    tower__v1__view_item__free_unpacked(it, NULL);
    return rc;
}

typedef struct acks {
    uint64_t *seq;  /* per event: its stream sequence, 0 when not stored */
    char (*why)[256];
} acks;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    acks *a = ctx;
    if (ack->result == BUS_PUB_STORED) a->seq[tag] = ack->seq;
    else snprintf(a->why[tag], sizeof a->why[tag], "%s", ack->result == BUS_PUB_DUPLICATE ? "a duplicate" : ack->error);
}

/* Wait until the store has applied seq: 1, or 0 after APPLY_WAIT_NS. */
static int wait_applied(http_server *s, uint64_t seq)
{
    int64_t end = ct_now_ns() + APPLY_WAIT_NS;
    for (;;) {
        store_reader *r = NULL;
        if (server__begin(s, &r) == CT_OK) {
            store_stats ss;
            store_reader_stats(r, &ss);
            server__end(s, r);
            if (ss.applied_seq >= seq) return 1;
        }
        if (ct_now_ns() > end) return 0;
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static json_t *error_json(const server_query_err *e)
{
    json_t *o = json_pack("{s:s, s:s}", "code", e->code, "message", e->message);
    if (e->field) json_object_set_new(o, "field", json_string(e->field));
    return o;
}

/* One action of a request: judged, built, then published with the others. */
typedef struct act_one {
    const char *exid;
    evt_event *ev;
    server_query_err err;
    int failed;
} act_one;

static void act_prepare(http_server *s, act_one *a, const char *action, const char *actor, const json_t *body,
                        int64_t now)
{
    evt_exid x;
    a->failed = 1;
    if (!a->exid || evt_exid_parse(a->exid, &x, NULL) != 0) {
        fail(&a->err, 404, "NOT_FOUND", NULL, "no such exception (not an exception id)");
        return;
    }
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK) {
        fail(&a->err, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
        return;
    }
    int rc = applicable(r, a->exid, action, now, &a->err);
    server__end(s, r);
    if (rc) return;
    a->ev = server__action_event(action, a->exid, actor, body, now, &a->err);
    a->failed = a->ev == NULL;
}

/* Publish the prepared actions, wait for the last, and read each exception back. *status: the answer's. */
static json_t *act_run(http_server *s, act_one *as, size_t n, int *status)
{
    evt_event **evs = ct_calloc(n ? n : 1, sizeof *evs);
    acks a = {ct_calloc(n ? n : 1, sizeof *a.seq), ct_calloc(n ? n : 1, sizeof *a.why)};
    size_t todo = 0;
    for (size_t i = 0; i < n; i++)
        if (!as[i].failed) {
            evs[i] = as[i].ev;
            snprintf(a.why[i], sizeof a.why[i], "no acknowledgement from JetStream in time");
            todo++;
        }
    if (todo) server__publish(s, evs, n, on_ack, &a);
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++)
        if (!as[i].failed && a.seq[i] > last) last = a.seq[i];
    int applied = last ? wait_applied(s, last) : 1;
    json_t *results = json_array();
    int64_t now = ct_now_ns();
    store_reader *r = NULL;
    int have_r = applied && server__begin(s, &r) == CT_OK;
    *status = 200;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_pack("{s:s}", "exceptionId", as[i].exid ? as[i].exid : "");
        if (!as[i].failed && !a.seq[i]) {
            as[i].failed = 1;
            fail(&as[i].err, 503, "NOT_STORED", NULL, a.why[i]);
        } else if (!as[i].failed && !applied) {
            as[i].failed = 1;
            fail(&as[i].err, 504, "NOT_APPLIED", NULL,
                 "the action is stored and will apply, but the projector did not apply it within 5 s");
        }
        if (as[i].ev) {
            json_object_set_new(o, "eventId", json_string(as[i].ev->event_id));
            if (a.seq[i]) json_object_set_new(o, "seq", json_integer((json_int_t)a.seq[i]));
        }
        if (as[i].failed) {
            json_object_set_new(o, "status", json_string("failed"));
            json_object_set_new(o, "error", error_json(&as[i].err));
            if (*status == 200) *status = as[i].err.status;
        } else {
            json_t *ex = NULL;
            json_object_set_new(o, "status", json_string("done"));
            if (have_r && store_exception_json(r, as[i].exid, now, &ex) == CT_OK) json_object_set_new(o, "exception", ex);
        }
        json_array_append_new(results, o);
    }
    if (have_r) server__end(s, r);
    free(evs);
    free(a.seq);
    free(a.why);
    return results;
}

static int read_json_body(struct mg_connection *c, http_server *s, server_route route, json_t **out)
{
    ct_buf body = {0};
    *out = NULL;
    int got = server__read_body(c, MAX_ACTION_BODY, &body);
    if (got == -2) return server__error(c, s, route, 408, "REQUEST_TIMEOUT", NULL, "the body did not arrive in time");
    if (got != 0) return server__error(c, s, route, 413, "TOO_LARGE", NULL, "the body is over %d bytes", MAX_ACTION_BODY);
    if (!body.len) return 0;
    json_error_t je;
    size_t deep = ct_json_too_deep(body.data, body.len, CT_JSON_MAX_DEPTH);
    json_t *j = deep ? NULL : json_loadb(body.data, body.len, 0, &je);
    ct_buf_free(&body);
    if (deep)
        return server__error(c, s, route, 400, "INVALID_JSON", NULL, "the body nests deeper than %d levels",
                             CT_JSON_MAX_DEPTH);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return server__error(c, s, route, 400, "INVALID_JSON", NULL, "the body must be a JSON object");
    }
    *out = j;
    return 0;
}

int server__act(struct mg_connection *c, http_server *s, const server_query *pq)
{
    const server_route route = SERVER_ROUTE_ACTIONS;
    if (!s->o.bus)
        return server__error(c, s, route, 503, "NO_BUS", NULL, "this server has no NATS connection to publish to");
    char actor[EVT_MAX_ACTOR + 1];
    http_role role;
    if (server__caller(c, s, actor, sizeof actor, &role) != 0) return server__deny(c, s, route, 401, HTTP_ROLE_OPERATOR);
    json_t *body = NULL;
    int rc = read_json_body(c, s, route, &body);
    if (rc) return rc;
    int64_t now = ct_now_ns();
    int bulk = !pq->exid[0];
    const char *action = pq->action;
    size_t n = 1;
    json_t *ids = NULL;
    if (bulk) {
        json_t *ja = body ? json_object_get(body, "action") : NULL;
        action = json_is_string(ja) ? json_string_value(ja) : "";
        ids = body ? json_object_get(body, "ids") : NULL;
        if (!server_action_known(action)) {
            json_decref(body);
            return server__error(c, s, route, 400, "INVALID_PARAMETER", "action",
                                 "action must be ack, assign, snooze, note, resolve or reopen");
        }
        if (!json_is_array(ids) || json_array_size(ids) < 1 || json_array_size(ids) > MAX_BULK_IDS) {
            json_decref(body);
            return server__error(c, s, route, 400, "INVALID_PARAMETER", "ids",
                                 "ids must be an array of 1 to %d exception ids", MAX_BULK_IDS);
        }
        n = json_array_size(ids);
    }
    act_one *as = ct_calloc(n, sizeof *as);
    for (size_t i = 0; i < n; i++) {
        as[i].exid = bulk ? json_string_value(json_array_get(ids, i)) : pq->exid;
        act_prepare(s, &as[i], action, actor, body, now);
    }
    int status = 200;
    json_t *results = act_run(s, as, n, &status);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += (size_t)as[i].failed;
        evt_free(as[i].ev);
    }
    if (as[0].failed)
        ct_log(CT_LOG_INFO, "server", "%s %s by %s: %s", action, bulk ? "(bulk)" : pq->exid, actor, as[0].err.message);
    else
        ct_log(CT_LOG_INFO, "server", "%s of %zu exception(s) by %s: %zu done", action, n, actor, n - failed);
    free(as);
    json_decref(body);
    if (bulk) {
        json_t *out = json_pack("{s:I, s:I, s:o}", "done", (json_int_t)(n - failed), "failed", (json_int_t)failed,
                                "results", results);
        return server__json(c, s, route, 200, out);
    }
    json_t *one = json_incref(json_array_get(results, 0));
    json_decref(results);
    if (status != 200) {
        json_t *err = json_incref(json_object_get(one, "error"));
        json_object_del(one, "error");
        json_object_del(one, "status");
        json_object_set_new(one, "error", err);
        return server__json(c, s, route, status, one);
    }
    json_object_del(one, "status");
    return server__json(c, s, route, 200, one);
}

/* ---- reading ------------------------------------------------------------------------------------------- */

int server__exception_get(struct mg_connection *c, http_server *s, const server_query *pq)
{
    const server_route route = SERVER_ROUTE_EXCEPTIONS;
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, route, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    json_t *ex = NULL;
    ct_status st = store_exception_json(r, pq->exid, ct_now_ns(), &ex);
    server__end(s, r);
    if (st == CT_NOT_FOUND)
        return server__error(c, s, route, 404, "NOT_FOUND", NULL,
                             "no exception %.200s, open or closed (a closed one is kept when someone acted on it)",
                             pq->exid);
    if (st != CT_OK) return server__error(c, s, route, 500, "STORE_ERROR", NULL, "reading the exception failed");
    return server__json(c, s, route, 200, ex);
}

typedef struct list_ctx {
    json_t *items;
    int64_t now;
    int closed;
} list_ctx;

static int list_add(void *vctx, const Tower__V1__ViewItem *it)
{
    list_ctx *l = vctx;
    json_t *o = store_item_to_json(it, l->closed ? 0 : l->now);
    if (l->closed) json_object_set_new(o, "state", json_string(store_item_state(it, l->now)));
    json_object_set_new(o, "view", json_string(it->view ? it->view : ""));
    json_array_append_new(l->items, o);
    return 0;
}

static int since_cmp(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "since"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "since"));
    int64_t xs = 0, ys = 0;
    int32_t xn = 0, yn = 0;
    evt_time_parse(x ? x : "", &xs, &xn);
    evt_time_parse(y ? y : "", &ys, &yn);
    if (xs != ys) return xs < ys ? -1 : 1;
    return xn < yn ? -1 : xn > yn;
}

int server__exceptions_list(struct mg_connection *c, http_server *s, const server_query *pq)
{
    const server_route route = SERVER_ROUTE_EXCEPTIONS;
    if (pq->exid[0]) return server__exception_get(c, s, pq);
    char me[EVT_MAX_ACTOR + 1] = "";
    http_role role;
    if (pq->assignee_me && server__caller(c, s, me, sizeof me, &role) != 0)
        return server__deny(c, s, route, 401, HTTP_ROLE_VIEWER);
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK)
        return server__error(c, s, route, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    int64_t now = ct_now_ns();
    list_ctx l = {json_array(), now, pq->closed};
    char *next = NULL;
    ct_status st = CT_OK;
    if (pq->closed) {
        store_closed_query q = {pq->has_view ? fold_view_name(pq->view) : NULL, pq->since_ns,
                                pq->cursor[0] ? pq->cursor : NULL, (size_t)pq->limit};
        st = store_closed_scan(r, &q, list_add, &l, &next);
    } else {
        /* A person's queue across views: each view's oldest first, then merged by since. */
        for (int v = 0; v < FOLD_VIEW_COUNT && st == CT_OK; v++) {
            if (pq->has_view && (fold_view)v != pq->view) continue;
            store_query q = {.view = (fold_view)v, .state = pq->state[0] ? pq->state : NULL,
                             .assignee = pq->has_assignee ? (pq->assignee_me ? me : pq->assignee) : NULL,
                             .now_ns = now, .limit = (size_t)pq->limit};
            st = store_view_scan(r, &q, list_add, &l, NULL);
        }
        size_t n = json_array_size(l.items);
        json_t **v = ct_calloc(n ? n : 1, sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(l.items, i));
        qsort(v, n, sizeof *v, since_cmp);
        json_array_clear(l.items);
        for (size_t i = 0; i < n && i < (size_t)pq->limit; i++) json_array_append(l.items, v[i]);
        for (size_t i = 0; i < n; i++) json_decref(v[i]);
        free(v);
    }
    store_stats ss;
    store_reader_stats(r, &ss);
    server__end(s, r);
    if (st == CT_INVALID) {
        json_decref(l.items);
        return server__error(c, s, route, 400, "INVALID_PARAMETER", "cursor", "cursor is not one this server gave");
    }
    if (st != CT_OK) {
        json_decref(l.items);
        free(next);
        return server__error(c, s, route, 500, "STORE_ERROR", NULL, "reading the exceptions failed");
    }
    json_t *body = json_pack("{s:I, s:o}", "asOfSeq", (json_int_t)ss.applied_seq, "items", l.items);
    if (pq->closed) json_object_set_new(body, "nextCursor", next ? json_string(next) : json_null());
    if (pq->assignee_me) json_object_set_new(body, "assignee", json_string(me));
    free(next);
    return server__json(c, s, route, 200, body);
}

int server__me(struct mg_connection *c, http_server *s)
{
    char name[EVT_MAX_ACTOR + 1];
    http_role role;
    if (server__caller(c, s, name, sizeof name, &role) != 0) return server__deny(c, s, SERVER_ROUTE_ME, 401, HTTP_ROLE_VIEWER);
    json_t *o = json_pack("{s:s, s:s, s:b}", "name", name, "role", server__role_name(role), "canAct",
                          role == HTTP_ROLE_OPERATOR);
    json_t *stream = stream__advertise(s); /* where the live stream is, when not at /api/v1/stream here */
    if (stream) json_object_set_new(o, "stream", stream);
    return server__json(c, s, SERVER_ROUTE_ME, 200, o);
}
