/* Consuming the events stream: a pull consumer positioned by the store's checkpoint. */
#include "bus_int.h"

#include <stdlib.h>
#include <string.h>

struct bus_consumer {
    bus *b;
    char *name;
    natsSubscription *sub;
};

ct_status bus_consumer_open(bus_consumer **out, bus *b, const char *name, uint64_t start_seq)
{
    jsErrCode jerr = 0;
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

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = b->stream;
    so.Consumer = name;
    natsSubscription *sub = NULL;
    s = js_PullSubscribe(&sub, b->js, BUS_EVENTS_SUBJECTS, name, NULL, &so, &jerr);
    if (s != NATS_OK) return bus__status(s, "bind to the consumer");
    bus_consumer *c = ct_calloc(1, sizeof *c);
    c->b = b;
    c->name = ct_strdup(name);
    c->sub = sub;
    *out = c;
    return CT_OK;
}

ct_status bus_consumer_fetch(bus_consumer *c, size_t max, int64_t wait_ms, bus_batch *out)
{
    natsMsgList *list = ct_calloc(1, sizeof *list);
    jsErrCode jerr = 0;
    memset(out, 0, sizeof *out);
    natsStatus s = natsSubscription_Fetch(list, c->sub, (int)max, wait_ms, &jerr);
    if (s == NATS_TIMEOUT || (s == NATS_OK && list->Count == 0)) {
        natsMsgList_Destroy(list);
        free(list);
        return CT_TIMEOUT;
    }
    if (s != NATS_OK) {
        natsMsgList_Destroy(list);
        free(list);
        ct_log(CT_LOG_WARN, "bus", "fetch from consumer %s failed: %s (JetStream error %d)", c->name,
               natsStatus_GetText(s), (int)jerr);
        return CT_BUS;
    }
    out->v = ct_calloc((size_t)list->Count, sizeof *out->v);
    out->native = list;
    for (int i = 0; i < list->Count; i++) {
        natsMsg *m = list->Msgs[i];
        jsMsgMetaData *md = NULL;
        if (natsMsg_GetMetaData(&md, m) != NATS_OK) continue; /* not a stream message (a status) */
        bus_msg *bm = &out->v[out->n++];
        bm->seq = md->Sequence.Stream;
        bm->subject = natsMsg_GetSubject(m);
        bm->data = natsMsg_GetData(m);
        bm->len = (size_t)natsMsg_GetDataLength(m);
        jsMsgMetaData_Destroy(md);
    }
    return out->n ? CT_OK : CT_TIMEOUT;
}

void bus_batch_free(bus_batch *b)
{
    if (b->native) {
        natsMsgList_Destroy(b->native);
        free(b->native);
    }
    free(b->v);
    memset(b, 0, sizeof *b);
}

void bus_consumer_close(bus_consumer *c)
{
    if (!c) return;
    /* Unsubscribing would delete a consumer made by js_PullSubscribe; ours was made by
     * js_AddConsumer and survives, which is what a restart wants (it recreates it anyway). */
    natsSubscription_Destroy(c->sub);
    free(c->name);
    free(c);
}
