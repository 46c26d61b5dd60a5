/* POST /api/v1/events: the ingest gateway — validate, publish to JetStream, answer per event only after the acks. */
#include "access.h"
#include "server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define MAX_BODY (4 * 1024 * 1024)
#define MAX_EVENTS 10000
#define ACK_TIMEOUT_MS 10000

/* The bus has one set of publishes in flight: one ingest request publishes at a time. */
static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct result {
    json_t *arr;
    size_t stored, dups, failed;
} result;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    result *r = ctx;
    json_t *o = json_array_get(r->arr, tag);
    if (!o) return;
    switch (ack->result) {
    case BUS_PUB_STORED:
        json_object_set_new(o, "status", json_string("accepted"));
        json_object_set_new(o, "seq", json_integer((json_int_t)ack->seq));
        r->stored++;
        break;
    case BUS_PUB_DUPLICATE:
        json_object_set_new(o, "status", json_string("duplicate"));
        r->dups++;
        break;
    case BUS_PUB_FAILED: {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string("NOT_STORED"));
        json_object_set_new(e, "message", json_string(ack->error));
        json_object_set_new(o, "status", json_string("failed"));
        json_object_set_new(o, "error", e);
        r->failed++;
        break;
    }
    }
}

/* An ack on its way to the caller's callback: duplicates counted (publish_dups). */
typedef struct dup_count {
    void (*fn)(void *ctx, size_t tag, const bus_pub_ack *ack);
    void *ctx;
    uint64_t dups;
} dup_count;

static void count_dups(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    dup_count *d = ctx;
    if (ack->result == BUS_PUB_DUPLICATE) d->dups++;
    d->fn(d->ctx, tag, ack);
}

void server__publish(http_server *s, evt_event *const *evs, size_t n,
                     void (*fn)(void *ctx, size_t tag, const bus_pub_ack *ack), void *ctx)
{
    dup_count d = {fn, ctx, 0};
    if (!bus_is_connected(s->o.bus)) {
        /* Published now, the events would wait in the client library's reconnect buffer and their acks time out
         * (ACK_TIMEOUT_MS): the caller would wait that long to hear that nothing is acknowledged. */
        bus_pub_ack a = {.result = BUS_PUB_FAILED};
        snprintf(a.error, sizeof a.error, "NATS is unreachable (reconnecting): not published; send it again");
        for (size_t i = 0; i < n; i++)
            if (evs[i]) fn(ctx, i, &a);
        return;
    }
    pthread_mutex_lock(&publish_lock);
    for (size_t i = 0; i < n; i++)
        if (evs[i]) bus_publish_event(s->o.bus, evs[i], i);
    bus_publish_wait(s->o.bus, ACK_TIMEOUT_MS, count_dups, &d);
    pthread_mutex_unlock(&publish_lock);
    if (d.dups) __atomic_add_fetch(&s->publish_dups, d.dups, __ATOMIC_RELAXED);
}

size_t server__publish_dups(http_server *s, server_pub_dups *out, size_t max)
{
    if (!max) return 0;
    out[0] = (server_pub_dups){"server", __atomic_load_n(&s->publish_dups, __ATOMIC_RELAXED)};
    size_t n = 1;
    if (s->o.publish_dups) n += s->o.publish_dups(s->o.publish_dups_ctx, out + 1, max - 1);
    return n < max ? n : max;
}

int server__read_body(struct mg_connection *c, size_t max, ct_buf *body)
{
    /* civetweb bounds each wait for data by request_timeout_ms, but not the whole body: a client
     * sending a byte now and then would hold this thread for ever. The body as a whole gets that time. */
    int64_t limit = server__request_timeout_ns(c), start = ct_now_ns();
    const struct mg_request_info *ri = mg_get_request_info(c);
    int fd = server__socket_of(c);
    /* A client that asked whether to send its body (curl does for large ones) waits for this. It
     * goes straight to the socket: written through civetweb, it would count as the answer's start
     * and civetweb would then refuse the real status line. */
    const char *expect = mg_get_header(c, "Expect");
    if (expect && !strcasecmp(expect, "100-continue") && fd >= 0) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (send(fd, cont, sizeof cont - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof cont - 1)) {
            ct_buf_free(body);
            return -2;
        }
    }
    /* civetweb's worker threads have small stacks: read through the buffer itself. */
    for (;;) {
        int64_t left = limit - (ct_now_ns() - start);
        if (left <= 0) {
            ct_buf_free(body);
            return -2;
        }
        if (body->cap - body->len < 16385) {
            body->cap = body->cap ? body->cap * 2 : 65536;
            body->data = ct_realloc(body->data, body->cap);
        }
        int n = server__read_ready(c, fd, body->data + body->len, body->cap - body->len - 1);
        if (n <= 0) break;
        body->len += (size_t)n;
        body->data[body->len] = '\0';
        if (body->len > max) {
            ct_buf_free(body);
            return -1;
        }
    }
    /* civetweb also ends a read that timed out as if the body had ended. */
    if (ri && ri->content_length > 0 && body->len < (size_t)ri->content_length) {
        ct_buf_free(body);
        return -2;
    }
    return 0;
}

/* Refuse a record the codec accepted but this server does not: an occurredAt too far ahead of its
 * clock (latest, 0 for no limit), or an exception action (only the server vouches for an actor). The
 * event is freed and rec->error filled. */
static void ingest_refuse_checked(http_server *s, evt_record *rec, int64_t latest)
{
    evt_event *e = rec->event;
    if (!e) return;
    if (latest && e->occurred_at->seconds > latest) {
        snprintf(rec->error.event_id, sizeof rec->error.event_id, "%s", e->event_id);
        rec->error.code = EVT_INVALID_TIME;
        snprintf(rec->error.field, sizeof rec->error.field, "occurredAt");
        snprintf(rec->error.message, sizeof rec->error.message,
                 "occurredAt is %lld s ahead of this server's clock; at most %lld s are accepted (a wrong clock or "
                 "time zone at the producer?)",
                 (long long)(e->occurred_at->seconds - latest + s->o.max_future_skew_ns / 1000000000LL),
                 (long long)(s->o.max_future_skew_ns / 1000000000LL));
    } else if (evt_is_action(e)) {
        /* An action names its actor, which only the server vouches for (docs/exceptions.md "Producers"). */
        snprintf(rec->error.event_id, sizeof rec->error.event_id, "%s", e->event_id);
        rec->error.code = EVT_INVALID_VALUE;
        snprintf(rec->error.field, sizeof rec->error.field, "%s", evt_type_name(e));
        snprintf(rec->error.message, sizeof rec->error.message,
                 "%s is an exception action: act through POST /api/v1/exceptions/{id}/{action}, which records "
                 "the caller as its actor", evt_type_name(e));
    } else {
        return;
    }
    evt_free(e);
    rec->event = NULL;
}

/* The result line of a rejected record (code: the policy's refusal, or the codec's code). */
static json_t *ingest_rejection(json_t *o, const evt_record *rec, const char *refused)
{
    if (*rec->error.event_id) json_object_set_new(o, "eventId", json_string(rec->error.event_id));
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(refused ? refused : evt_code_str(rec->error.code)));
    json_object_set_new(e, "message", json_string(rec->error.message));
    if (*rec->error.field) json_object_set_new(e, "field", json_string(rec->error.field));
    json_object_set_new(o, "status", json_string("rejected"));
    json_object_set_new(o, "error", e);
    return o;
}

/* What reading a body gave: the events to publish (evs[0..count), NULL where rejected), the per-record
 * results, and how the read ended. */
typedef struct ingest_batch {
    evt_event **evs;
    size_t count, rejected, to_publish;
    int whole_bad, too_many;
    evt_error whole_err; /* the reader's error when whole_bad */
} ingest_batch;

/* Read and check every record of the body before anything is published: a body over a limit is
 * refused whole, with nothing stored. */
static void ingest_read(http_server *s, const access_policy *pol, const ct_buf *body, result *res,
                        ingest_batch *b)
{
    evt_reader *rd = NULL;
    evt_reader_open_mem(&rd, body->data, body->len);
    b->evs = ct_calloc(MAX_EVENTS, sizeof *b->evs);
    evt_record rec;
    int got;
    int64_t latest = s->o.max_future_skew_ns > 0
                         ? ct_now_ns() / 1000000000LL + s->o.max_future_skew_ns / 1000000000LL
                         : 0;
    while ((got = evt_reader_next(rd, &rec)) == 1 && b->count < MAX_EVENTS) {
        const char *refused = rec.event ? server__source_refused(pol, rec.event, &rec.error) : NULL;
        if (refused) {
            evt_free(rec.event);
            rec.event = NULL;
        }
        ingest_refuse_checked(s, &rec, latest);
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer((json_int_t)b->count));
        if (rec.event) {
            json_object_set_new(o, "eventId", json_string(rec.event->event_id));
            b->evs[b->count] = rec.event;
            b->to_publish++;
        } else {
            ingest_rejection(o, &rec, refused);
            server__conform_reject(rec.raw, rec.raw_len, &rec.error); /* by producer (conformance.c) */
            b->rejected++;
        }
        json_array_append_new(res->arr, o);
        b->count++;
    }
    b->whole_bad = got < 0;
    b->too_many = got == 1 && b->count >= MAX_EVENTS;
    if (b->too_many) evt_free(rec.event);
    if (b->whole_bad) b->whole_err = rec.error;
    evt_reader_destroy(rd);
}

/* The answer: 2xx only when every event is in JetStream; 503 when some could not be stored (resend
 * them); 400 when some were invalid (the good ones are stored all the same). */
static int ingest_reply(struct mg_connection *c, http_server *s, result *res, size_t rejected)
{
    json_t *out = json_object();
    json_object_set_new(out, "accepted", json_integer((json_int_t)res->stored));
    json_object_set_new(out, "duplicates", json_integer((json_int_t)res->dups));
    json_object_set_new(out, "rejected", json_integer((json_int_t)rejected));
    json_object_set_new(out, "failed", json_integer((json_int_t)res->failed));
    json_object_set_new(out, "results", res->arr);
    int status = res->failed ? 503 : rejected ? 400 : 200;
    return server__json(c, s, SERVER_ROUTE_INGEST, status, out);
}

int server__ingest(struct mg_connection *c, http_server *s)
{
    const server_route route = SERVER_ROUTE_INGEST;
    const struct mg_request_info *ri = mg_get_request_info(c);
    if (!s->o.bus)
        return server__error(c, s, route, 503, "NO_BUS", NULL, "this server has no NATS connection to publish to");
    if (ri->content_length > MAX_BODY)
        return server__error(c, s, route, 413, "TOO_LARGE", NULL, "the body is over %d bytes", MAX_BODY);
    const access_policy *pol = NULL; /* the token's rate and source systems (auth.c) */
    int admit = server__ingest_admit(c, s, &pol);
    if (admit) return admit;

    /* A publisher makes sure the streams exist (a projector may not have started yet); not while NATS is
     * unreachable (that would wait out JetStream's timeout: server__publish answers at once then). */
    if (!__atomic_load_n(&s->streams_ok, __ATOMIC_ACQUIRE) && bus_is_connected(s->o.bus) &&
        bus_ensure_streams(s->o.bus) == CT_OK)
        __atomic_store_n(&s->streams_ok, 1, __ATOMIC_RELEASE);

    ct_buf body = {0};
    int rd_rc = server__read_body(c, MAX_BODY, &body);
    if (rd_rc == -2)
        return server__error(c, s, route, 408, "REQUEST_TIMEOUT", NULL, "the body did not arrive in time");
    if (rd_rc != 0)
        return server__error(c, s, route, 413, "TOO_LARGE", NULL, "the body is over %d bytes", MAX_BODY);
    if (!body.len) {
        ct_buf_free(&body);
        return server__error(c, s, route, 400, "EMPTY_BODY", NULL, "send NDJSON or a JSON array of events");
    }

    result res = {json_array(), 0, 0, 0};
    ingest_batch b = {0};
    ingest_read(s, pol, &body, &res, &b);
    if (!b.whole_bad && !b.too_many && b.to_publish) server__publish(s, b.evs, b.count, on_ack, &res);
    for (size_t i = 0; i < b.count; i++) evt_free(b.evs[i]);
    free(b.evs);
    ct_buf_free(&body);

    if (b.whole_bad || b.too_many) json_decref(res.arr);
    if (b.whole_bad)
        return server__error(c, s, route, 400, evt_code_str(b.whole_err.code), NULL, "%s", b.whole_err.message);
    if (b.too_many)
        return server__error(c, s, route, 413, "TOO_MANY_EVENTS", NULL, "at most %d events per request; nothing was "
                             "stored, resend in smaller bodies", MAX_EVENTS);
    return ingest_reply(c, s, &res, b.rejected);
}

/* Publish one event and wait for its ack: 200 accepted or duplicate, 503 not stored. */
static int publish_one(struct mg_connection *c, http_server *s, uint64_t seq, evt_event *e)
{
    result res = {json_array(), 0, 0, 0};
    json_array_append_new(res.arr, json_object());
    server__publish(s, &e, 1, on_ack, &res);
    json_t *o = json_incref(json_array_get(res.arr, 0));
    json_decref(res.arr);
    json_t *body = json_object();
    json_object_set_new(body, "deadLetter", json_integer((json_int_t)seq));
    json_object_set_new(body, "eventId", json_string(e->event_id));
    const char *status = json_string_value(json_object_get(o, "status"));
    json_object_set_new(body, "result", json_string(status ? status : "failed"));
    if (json_object_get(o, "seq")) json_object_set(body, "streamSeq", json_object_get(o, "seq"));
    if (json_object_get(o, "error")) json_object_set(body, "error", json_object_get(o, "error"));
    ct_log(CT_LOG_INFO, "server", "dead letter %llu redriven as event %s: %s", (unsigned long long)seq, e->event_id,
           status ? status : "failed");
    int code = res.failed || !status ? 503 : 200;
    if (code == 200) {
        /* The redrive resolves the dead letter (REDRIVEN), by the caller, so that it leaves the view. */
        char actor[EVT_MAX_ACTOR + 1], exid[48], note[200];
        http_role role;
        if (server__caller(c, s, actor, sizeof actor, &role) != 0) snprintf(actor, sizeof actor, "unknown");
        snprintf(exid, sizeof exid, "d~%llu~dead_letters", (unsigned long long)seq);
        snprintf(note, sizeof note, "redriven as event %s", e->event_id);
        json_t *rb = json_pack("{s:s, s:s}", "resolution", "REDRIVEN", "note", note);
        server_query_err qe;
        evt_event *act = server__action_event("resolve", exid, actor, rb, ct_now_ns(), &qe);
        json_decref(rb);
        if (act) {
            result rr = {json_array(), 0, 0, 0};
            json_array_append_new(rr.arr, json_object());
            server__publish(s, &act, 1, on_ack, &rr);
            json_object_set_new(body, "resolved", json_pack("{s:s, s:b}", "eventId", act->event_id, "stored", rr.stored > 0));
            json_decref(rr.arr);
            evt_free(act);
        }
    }
    json_decref(o);
    return server__json(c, s, SERVER_ROUTE_REDRIVE, code, body);
}

int server__redrive(struct mg_connection *c, http_server *s, uint64_t seq)
{
    const server_route route = SERVER_ROUTE_REDRIVE;
    if (!s->o.bus)
        return server__error(c, s, route, 503, "NO_BUS", NULL, "this server has no NATS connection to publish to");
    ct_buf body = {0};
    int got = server__read_body(c, EVT_MAX_EVENT_BYTES, &body);
    if (got == -2)
        return server__error(c, s, route, 408, "REQUEST_TIMEOUT", NULL, "the body did not arrive in time");
    if (got != 0)
        return server__error(c, s, route, 413, "TOO_LARGE", NULL, "a corrected event is at most %d bytes",
                             EVT_MAX_EVENT_BYTES);
    store_reader *r = NULL;
    if (server__begin(s, &r) != CT_OK) {
        ct_buf_free(&body);
        return server__error(c, s, route, 503, "STORE_UNAVAILABLE", NULL, "the store is not readable yet");
    }
    Tower__V1__DeadLetter *d = NULL;
    ct_status st = store_dead_letter(r, seq, &d);
    server__end(s, r);
    if (st != CT_OK) {
        ct_buf_free(&body);
        return server__error(c, s, route, 404, "NOT_FOUND", NULL, "no dead letter at sequence %llu",
                             (unsigned long long)seq);
    }
    evt_event *e = NULL;
    evt_error err;
    const char *what = "the corrected body";
    int corrected = body.len > 0;
    if (corrected) {
        st = evt_from_json_text(&e, body.data, body.len, &err);
    } else {
        what = "the dead letter as stored";
        int proto = d->content_type && strstr(d->content_type, "protobuf");
        st = !d->has_raw ? CT_INVALID
           : proto ? evt_from_protobuf(&e, d->raw.data, d->raw.len, &err)
                   : evt_from_json_text(&e, (const char *)d->raw.data, d->raw.len, &err);
        if (!d->has_raw) {
            memset(&err, 0, sizeof err);
            err.code = EVT_MALFORMED;
            snprintf(err.message, sizeof err.message, "no raw bytes were kept");
        }
    }
    tower__v1__dead_letter__free_unpacked(d, NULL);
    ct_buf_free(&body);
    if (st != CT_OK)
        return server__error(c, s, route, 400, evt_code_str(err.code), *err.field ? err.field : NULL,
                             "%s is not a valid event: %s%s", what, err.message,
                             corrected ? "" : " (send a corrected event as the body)");
    int rc = publish_one(c, s, seq, e);
    evt_free(e);
    return rc;
}
