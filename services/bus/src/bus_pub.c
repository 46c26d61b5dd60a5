/* Publishing to JetStream: asynchronous publishes with message ids, acks collected per tag, retries. */
#include "bus_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPTS 5
#define ACK_WAIT_MS 5000

void bus_event_msg_id(const evt_event *e, const ct_buf *packed, char *out)
{
    snprintf(out, EVT_MAX_EVENT_ID + 18, "%s~%016llx", e->event_id,
             (unsigned long long)ct_hash64(packed->data, packed->len));
}

static bus__pending *find(bus *b, natsMsg *msg)
{
    /* Newest first: acks mostly arrive in publish order, near the end of the list. */
    for (size_t i = b->n_pend; i-- > 0;)
        if (b->pend[i].msg == msg && !b->pend[i].done) return &b->pend[i];
    return NULL;
}

void bus__ack_handler(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    bus *b = closure;
    pthread_mutex_lock(&b->mu);
    bus__pending *p = find(b, msg);
    if (p && pae && p->attempts < MAX_ATTEMPTS &&
        (pae->Err == NATS_TIMEOUT || pae->Err == NATS_NO_RESPONDERS || pae->Err == NATS_CONNECTION_CLOSED)) {
        /* Timeouts are safe to retry: the message id makes JetStream drop a second copy. */
        p->attempts++;
        pthread_mutex_unlock(&b->mu);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = ACK_WAIT_MS;
        if (js_PublishMsgAsync(js, &msg, &po) == NATS_OK) return;
        pthread_mutex_lock(&b->mu);
        p = find(b, msg);
    }
    if (p) {
        if (pa) {
            p->ack.result = pa->Duplicate ? BUS_PUB_DUPLICATE : BUS_PUB_STORED;
            p->ack.seq = pa->Sequence;
        } else {
            p->ack.result = BUS_PUB_FAILED;
            snprintf(p->ack.error, sizeof p->ack.error, "%s%s%s", natsStatus_GetText(pae ? pae->Err : NATS_ERR),
                     pae && pae->ErrText ? ": " : "", pae && pae->ErrText ? pae->ErrText : "");
        }
        p->done = 1;
        p->msg = NULL;
        b->n_done++;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    natsMsg_Destroy(msg);
}

static ct_status publish(bus *b, natsMsg *msg, size_t tag)
{
    pthread_mutex_lock(&b->mu);
    if (b->n_pend == b->cap_pend) {
        b->cap_pend = b->cap_pend ? b->cap_pend * 2 : 1024;
        b->pend = ct_realloc(b->pend, b->cap_pend * sizeof *b->pend);
    }
    bus__pending *p = &b->pend[b->n_pend++];
    memset(p, 0, sizeof *p);
    p->msg = msg;
    p->tag = tag;
    p->attempts = 1;
    pthread_mutex_unlock(&b->mu);

    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = ACK_WAIT_MS;
    natsMsg *m = msg;
    natsStatus s = bus__nc(b) && b->js ? js_PublishMsgAsync(b->js, &m, &po) : NATS_CONNECTION_DISCONNECTED;
    if (s != NATS_OK) {
        /* Not handed to the library: it is ours to destroy, and it failed. */
        pthread_mutex_lock(&b->mu);
        bus__pending *q = find(b, msg);
        if (q) {
            q->done = 1;
            q->msg = NULL;
            q->ack.result = BUS_PUB_FAILED;
            snprintf(q->ack.error, sizeof q->ack.error, "%s", natsStatus_GetText(s));
            b->n_done++;
        }
        pthread_mutex_unlock(&b->mu);
        natsMsg_Destroy(m);
    }
    return CT_OK;
}

ct_status bus_publish_raw(bus *b, const char *subject, const void *data, size_t len, const char *msg_id, size_t tag)
{
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, subject, NULL, data, (int)len);
    if (s == NATS_OK && msg_id) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id);
    if (s != NATS_OK) {
        natsMsg_Destroy(msg);
        return bus__status(s, "build a message");
    }
    return publish(b, msg, tag);
}

ct_status bus_publish_event(bus *b, const evt_event *e, size_t tag)
{
    ct_buf pb = {0};
    evt_pack(e, &pb);
    char id[EVT_MAX_EVENT_ID + 18];
    bus_event_msg_id(e, &pb, id);
    char subject[128];
    snprintf(subject, sizeof subject, "tower.evt.%s.%s", e->source->system, evt_type_subject(e));
    ct_status st = bus_publish_raw(b, subject, pb.data, pb.len, id, tag);
    ct_buf_free(&pb);
    return st;
}

ct_status bus_publish_wait(bus *b, int64_t timeout_ms, void (*fn)(void *ctx, size_t tag, const bus_pub_ack *ack),
                           void *ctx)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms;
    natsStatus s = bus__nc(b) && b->js ? js_PublishAsyncComplete(b->js, &po) : NATS_CONNECTION_DISCONNECTED;
    /* The ack handler may still be running for the last ack: wait for the count. */
    pthread_mutex_lock(&b->mu);
    int64_t deadline = ct_mono_ns() + 2000000000LL;
    while (s == NATS_OK && b->n_done < b->n_pend && ct_mono_ns() < deadline) {
        pthread_mutex_unlock(&b->mu);
        nats_Sleep(1);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    if (s != NATS_OK) {
        /* Whatever is still pending is given up: take the messages back from the library. */
        natsMsgList pending = {0};
        if (bus__nc(b) && b->js && js_PublishAsyncGetPendingList(&pending, b->js) == NATS_OK) {
            pthread_mutex_lock(&b->mu);
            for (int i = 0; i < pending.Count; i++) {
                bus__pending *p = find(b, pending.Msgs[i]);
                if (p) {
                    p->done = 1;
                    p->msg = NULL;
                    p->ack.result = BUS_PUB_FAILED;
                    snprintf(p->ack.error, sizeof p->ack.error, "no acknowledgement from JetStream within %lld ms",
                             (long long)timeout_ms);
                    b->n_done++;
                }
            }
            pthread_mutex_unlock(&b->mu);
            natsMsgList_Destroy(&pending);
        }
    }
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->n_pend; i++) {
        bus__pending *p = &b->pend[i];
        if (!p->done) {
            p->ack.result = BUS_PUB_FAILED;
            snprintf(p->ack.error, sizeof p->ack.error, "no acknowledgement from JetStream");
        }
        bus_pub_ack ack = p->ack;
        size_t tag = p->tag;
        pthread_mutex_unlock(&b->mu);
        if (fn) fn(ctx, tag, &ack);
        pthread_mutex_lock(&b->mu);
    }
    b->n_pend = b->n_done = 0;
    pthread_mutex_unlock(&b->mu);
    return s == NATS_OK ? CT_OK : CT_TIMEOUT;
}

ct_status bus_dead_letter(bus *b, uint64_t seq, const char *code, const char *message, const void *raw, size_t len)
{
    char subject[96], id[96], seqs[32];
    snprintf(subject, sizeof subject, "tower.dlq.%s", code);
    snprintf(id, sizeof id, "dlq-%s-%llu", b->stream, (unsigned long long)seq);
    snprintf(seqs, sizeof seqs, "%llu", (unsigned long long)seq);
    /* A header value is one line. */
    char text[512];
    snprintf(text, sizeof text, "%s", message);
    for (char *c = text; *c; c++)
        if (*c == '\r' || *c == '\n') *c = ' ';
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, subject, NULL, raw, (int)len);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Tower-Seq", seqs);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Tower-Code", code);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Tower-Message", text);
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    if (s == NATS_OK && !(bus__nc(b) && b->js)) s = NATS_CONNECTION_DISCONNECTED;
    if (s == NATS_OK) s = js_PublishMsg(&pa, b->js, msg, NULL, &jerr);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(msg);
    return bus__status(s, "publish a dead letter to TOWER_DLQ");
}
