/* Consuming the events stream: a pull consumer positioned by the store's checkpoint. */
#include "bus_int.h"

#include <stdlib.h>
#include <string.h>

/*
 * The pull protocol is spoken directly on core NATS (a request to
 * $JS.API.CONSUMER.MSG.NEXT with our own inbox as reply subject) rather than
 * with natsSubscription_Fetch: cnats 3.4's fetch overruns its array when
 * messages of an earlier, expired pull request arrive during a later one, and
 * with AckNone a message dropped on the client side is never redelivered. Here
 * at most one pull request is outstanding, it is drained to its end, and any
 * late message is simply returned with the next batch.
 */
struct bus_consumer {
    bus *b;
    char *name;
    char *inbox;
    char *next_subject;
    natsSubscription *sub;
    int outstanding;       /* a pull request has not ended yet */
    size_t req_left;       /* messages that request may still bring */
    int64_t deadline_ns;   /* when that request ends for sure */
    unsigned conn_gen;     /* the connection it was sent on (a reconnection loses it) */
};

/* How long a pull request lives. Longer than any caller's wait, so that a steady flow is never
 * interrupted by the round trip of a new request; short enough that a request lost without a
 * trace costs little. */
#define REQUEST_MS 1000

ct_status bus_consumer_open(bus_consumer **out, bus *b, const char *name, uint64_t start_seq)
{
    jsErrCode jerr = 0;
    if (!bus__nc(b)) return CT_BUS; /* not connected yet */
    natsStatus s = js_DeleteConsumer(b->js, b->stream, name, NULL, &jerr);
    if (s != NATS_OK && s != NATS_NOT_FOUND) return bus__status(s, "remove the previous consumer");

    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = name;
    cc.AckPolicy = js_AckNone; /* the store's checkpoint, written with the state, is the position */
    cc.DeliverPolicy = start_seq > 1 ? js_DeliverByStartSequence : js_DeliverAll;
    cc.OptStartSeq = start_seq > 1 ? start_seq : 0;
    cc.MaxWaiting = 16;
    jsConsumerInfo *ci = NULL;
    s = js_AddConsumer(&ci, b->js, b->stream, &cc, NULL, &jerr);
    jsConsumerInfo_Destroy(ci);
    if (s != NATS_OK) {
        ct_log(CT_LOG_ERROR, "bus", "cannot create consumer %s on %s: %s (JetStream error %d)", name, b->stream,
               natsStatus_GetText(s), (int)jerr);
        return s == NATS_NOT_FOUND ? CT_NOT_FOUND : CT_BUS;
    }

    bus_consumer *c = ct_calloc(1, sizeof *c);
    c->b = b;
    c->name = ct_strdup(name);
    natsInbox *inbox = NULL;
    s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        c->inbox = ct_strdup(inbox);
        natsInbox_Destroy(inbox);
        s = natsConnection_SubscribeSync(&c->sub, b->nc, c->inbox);
    }
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
    if (s != NATS_OK) {
        bus_consumer_close(c);
        return bus__status(s, "subscribe to the consumer's inbox");
    }
    c->next_subject = ct_sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", b->stream, name);
    *out = c;
    return CT_OK;
}

/* A pull-protocol status (404 no messages, 408 request expired, 409 ...) ends a request. */
static int is_status(natsMsg *m, int *code)
{
    const char *v = NULL;
    if (natsMsg_GetDataLength(m) != 0 || natsMsgHeader_Get(m, "Status", &v) != NATS_OK || !v) return 0;
    *code = atoi(v);
    return 1;
}

ct_status bus_consumer_fetch(bus_consumer *c, size_t max, int64_t wait_ms, bus_batch *out)
{
    memset(out, 0, sizeof *out);
    if (wait_ms < 1) wait_ms = 1;
    if (c->outstanding && c->conn_gen != c->b->conn_gen) c->outstanding = 0; /* lost with the connection */
    if (!c->outstanding) {
        int64_t expires_ms = wait_ms > REQUEST_MS ? wait_ms : REQUEST_MS;
        char req[96];
        snprintf(req, sizeof req, "{\"batch\":%zu,\"expires\":%lld}", max, (long long)expires_ms * 1000000LL);
        natsStatus s = natsConnection_PublishRequestString(c->b->nc, c->next_subject, c->inbox, req);
        if (s != NATS_OK) return bus__status(s, "send a pull request");
        c->outstanding = 1;
        c->req_left = max;
        c->conn_gen = c->b->conn_gen;
        /* The server ends the request by then; a little slack for its status to travel. (A
         * request partly served may end without a status we see: the slack is all it costs.) */
        c->deadline_ns = ct_mono_ns() + expires_ms * 1000000LL + 20000000LL;
    }
    const int64_t call_end_ns = ct_mono_ns() + wait_ms * 1000000LL;

    natsMsg **msgs = ct_calloc(max + 1, sizeof *msgs); /* NULL-terminated for bus_batch_free */
    size_t n = 0;
    ct_status st = CT_OK;
    while (n < max && c->outstanding) {
        int64_t now = ct_mono_ns();
        int64_t left = (c->deadline_ns - now) / 1000000LL;
        if (left <= 0) {
            /* The request has expired but its end was not seen (nats-server 2.9 does not always
             * send the 408): the next call makes a new one. A consumer or a connection that is
             * gone shows there (no responders, a failed publish), not here. */
            c->outstanding = 0;
            break;
        }
        /* The caller waits wait_ms for a first message, then gets what arrived as soon as the flow
         * pauses for a millisecond; the request stays outstanding and the next call reads on. */
        int64_t call_left = (call_end_ns - now + 999999) / 1000000LL;
        if (!n && call_left <= 0) break;
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, c->sub, n ? 1 : (call_left < left ? call_left : left));
        if (s == NATS_TIMEOUT) {
            if (n) break;
            continue;
        }
        if (s != NATS_OK) {
            c->outstanding = 0;
            if (!n) st = bus__status(s, "read pulled messages");
            break;
        }
        int code = 0;
        if (is_status(m, &code)) {
            natsMsg_Destroy(m);
            if (code == 100) continue; /* heartbeat */
            c->outstanding = 0;
            if (code != 404 && code != 408) {
                ct_log(CT_LOG_WARN, "bus", "pull request on consumer %s ended with status %d", c->name, code);
                if (!n) st = CT_BUS;
            }
            break;
        }
        msgs[n++] = m;
        /* A request served in full ends without a status: count what it brought, over calls. */
        if (--c->req_left == 0) c->outstanding = 0;
    }

    out->v = ct_calloc(n ? n : 1, sizeof *out->v);
    out->native = msgs;
    for (size_t i = 0; i < n; i++) {
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, msgs[i]) != NATS_OK) continue;
        bus_msg *bm = &out->v[out->n++];
        bm->seq = md->Sequence.Stream;
        bm->subject = natsMsg_GetSubject(msgs[i]);
        bm->data = natsMsg_GetData(msgs[i]);
        bm->len = (size_t)natsMsg_GetDataLength(msgs[i]);
        bm->pending = md->NumPending;
        jsMsgMetaData_Destroy(md);
    }

    if (st != CT_OK) {
        bus_batch_free(out);
        return st;
    }
    if (!out->n) {
        bus_batch_free(out);
        return CT_TIMEOUT;
    }
    return CT_OK;
}

void bus_batch_free(bus_batch *b)
{
    natsMsg **msgs = b->native;
    if (msgs) {
        for (size_t i = 0; msgs[i]; i++) natsMsg_Destroy(msgs[i]);
        free(msgs);
    }
    free(b->v);
    memset(b, 0, sizeof *b);
}

void bus_consumer_close(bus_consumer *c)
{
    if (!c) return;
    /* The consumer stays on the server: a restart recreates it at the store's checkpoint. */
    if (c->sub) {
        natsSubscription_Unsubscribe(c->sub);
        natsSubscription_Destroy(c->sub);
    }
    free(c->inbox);
    free(c->next_subject);
    free(c->name);
    free(c);
}

ct_status bus_stream_get(bus *b, uint64_t seq, ct_buf *out)
{
    if (!bus__nc(b)) return CT_BUS;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, b->js, b->stream, seq, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return CT_NOT_FOUND;
    if (s != NATS_OK) return bus__status(s, "read a message of the stream");
    ct_buf_add(out, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
    return CT_OK;
}

ct_status bus_stream_read(bus *b, uint64_t from, uint64_t last_seq, size_t max, int64_t wait_ms, bus_batch *out)
{
    memset(out, 0, sizeof *out);
    if (!bus__nc(b)) return CT_BUS;
    size_t cap = last_seq >= from && last_seq - from + 1 < max ? (size_t)(last_seq - from + 1) : max;
    natsMsg **msgs = ct_calloc(cap + 1, sizeof *msgs); /* NULL-terminated for bus_batch_free */
    out->v = ct_calloc(cap ? cap : 1, sizeof *out->v);
    out->native = msgs;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = wait_ms > 0 ? wait_ms : 1000;
    ct_status st = CT_OK;
    for (uint64_t seq = from; seq <= last_seq && out->n < cap; seq++) {
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetMsg(&m, b->js, b->stream, seq, &jo, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) continue; /* deleted */
        if (s != NATS_OK) {
            st = bus__status(s, "read a message of the stream");
            break;
        }
        msgs[out->n] = m;
        out->v[out->n++] = (bus_msg){seq, natsMsg_GetSubject(m), natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), last_seq - seq};
    }
    if (out->n) return CT_OK; /* what was read before a failure is good: the next call goes on */
    bus_batch_free(out);
    return st != CT_OK ? st : CT_NOT_FOUND;
}
