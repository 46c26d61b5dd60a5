/* Faults derived from a generated event: invalid records of many kinds, and conflicting reuses of an eventId. */
#include <stdio.h>
#include <string.h>

#include "trace_internal.h"

/* The ways a record goes wrong in the field, each one a dead letter for the tower. */
enum {
    BAD_NOT_JSON,
    BAD_TRUNCATED,
    BAD_NO_ID,
    BAD_NO_TIME,
    BAD_TIME,
    BAD_ORDER_SPACE,
    BAD_NO_PAYLOAD,
    BAD_TWO_PAYLOADS,
    BAD_QTY_ZERO,
    BAD_EMPTY_STOPS,
    BAD_ENUM,
    BAD_UNKNOWN_PAYLOAD,
    BAD_UNKNOWN_SYSTEM,
    BAD_COUNT
};

static void copy_key(const sim__doc *d, const char *key, char *out, size_t cap)
{
    int n = sim__doc_find(d, 0, key);
    snprintf(out, cap, "%s", n >= 0 && d->n[n].type == SIM__STR ? d->n[n].s : "");
}

/* A fresh envelope for a fabricated record of instance inst with the given id; returns inst. */
static int fab_begin(sim_trace *t, int inst, const char *id)
{
    sim__doc *d = &t->doc;
    const sim__inst *in = &t->inst[inst];
    sim__doc_reset(d);
    sim__doc_str(d, 0, "eventId", id);
    sim__doc_time(d, 0, "occurredAt", t->ev_at);
    int src = sim__doc_obj(d, 0, "source");
    sim__doc_str(d, src, "system", in->system);
    sim__doc_str(d, src, "instance", in->name);
    return inst;
}

static void not_json(sim_trace *t, sim__rng *r, const char *id, const char *oid, ct_buf *out)
{
    /* What really arrives on an event endpoint by mistake: XML from an old adapter, CSV, a proxy's error page. */
    switch (sim__rng_below(r, 3)) {
    case 0:
        ct_buf_addf(out, "<?xml version=\"1.0\"?><Event id=\"%s\"><Order>%s</Order></Event>", id,
                    oid[0] ? oid : "unknown");
        break;
    case 1: ct_buf_addf(out, "%s;%s;%s;STATUS_UPDATE", id, t->inst[t->ev_inst].system, oid); break;
    default: ct_buf_addf(out, "502 Bad Gateway: upstream closed connection (request %s)", id); break;
    }
}

int sim__fault_bad(sim_trace *t, sim__rng *r, ct_buf *out)
{
    sim__doc *d = &t->doc;
    const sim__inst *in = &t->inst[t->ev_inst];
    /* Bad records take ids of their own ("x" numbers) so that two of them are never the same bytes and
       the valid events keep their numbering whatever p_bad is. */
    char id[64], oid[72], sid[72];
    unsigned long long n = (unsigned long long)++t->bad_num;
    int inst = t->ev_inst;
    snprintf(id, sizeof id, "%s-%sx%llu", in->prefix, t->tag, n);
    copy_key(d, "orderId", oid, sizeof oid);
    copy_key(d, "shipmentId", sid, sizeof sid);
    sim__doc_set_str(d, sim__doc_find(d, 0, "eventId"), id);
    int payload = sim__doc_payload(d);
    sim__style st = {0, in->offset_min, in->zulu};
    int kind = (int)sim__rng_below(r, BAD_COUNT);
    switch (kind) {
    case BAD_NOT_JSON: not_json(t, r, id, oid, out); return inst;
    case BAD_TRUNCATED: {
        /* Cut somewhere after the eventId, so that the record stays unique. */
        sim__doc_render(d, &st, out);
        size_t min = strlen("{\"eventId\":\"\"") + strlen(id) + 1;
        size_t cut = out->len * (size_t)sim__rng_range(r, 40, 95) / 100;
        if (cut < min) cut = min;
        if (cut < out->len) {
            out->len = cut;
            out->data[cut] = '\0';
        }
        return inst;
    }
    case BAD_NO_ID: {
        char msg[48];
        sim__doc_unlink(d, 0, sim__doc_find(d, 0, "eventId"));
        /* Without an eventId the transport's message id is what keeps the bytes unique. */
        snprintf(msg, sizeof msg, "msg-%llu", n);
        sim__doc_str(d, 0, "messageId", msg);
        break;
    }
    case BAD_NO_TIME: sim__doc_unlink(d, 0, sim__doc_find(d, 0, "occurredAt")); break;
    case BAD_TIME: sim__doc_set_str(d, sim__doc_find(d, 0, "occurredAt"), "2026-13-45T99:00:00Z"); break;
    case BAD_ORDER_SPACE: {
        int o = sim__doc_find(d, 0, "orderId");
        char spaced[72];
        snprintf(spaced, sizeof spaced, "%s", oid[0] ? oid : "SO-100000");
        char *dash = strchr(spaced, '-');
        if (dash) *dash = ' ';
        if (o >= 0)
            sim__doc_set_str(d, o, spaced);
        else
            sim__doc_str(d, 0, "orderId", spaced);
        break;
    }
    case BAD_NO_PAYLOAD:
        if (payload >= 0) sim__doc_unlink(d, 0, payload);
        break;
    case BAD_TWO_PAYLOADS: {
        int same = payload >= 0 && strcmp(d->n[payload].key, "orderHeld") == 0;
        int p2 = sim__doc_obj(d, 0, same ? "orderCancelled" : "orderHeld");
        sim__doc_str(d, p2, "reason", same ? "CUSTOMER_REQUEST" : "CREDIT");
        break;
    }
    case BAD_QTY_ZERO: {
        /* An EDI resend whose line lost its quantity. */
        inst = fab_begin(t, SIM__INST_ERP, id);
        sim__doc_str(d, 0, "orderId", oid[0] ? oid : "SO-100000");
        int p = sim__doc_obj(d, 0, "orderCreated");
        sim__doc_str(d, p, "channel", "EDI");
        int lines = sim__doc_arr(d, p, "lines");
        int l = sim__doc_obj(d, lines, NULL);
        sim__doc_str(d, l, "sku", "SKU-10001");
        sim__doc_int(d, l, "qty", 0);
        st = (sim__style){0, 0, 1};
        break;
    }
    case BAD_EMPTY_STOPS: {
        char rid[48];
        snprintf(rid, sizeof rid, "RT-X%s%llu", t->tag, n);
        inst = fab_begin(t, SIM__INST_TMS, id);
        sim__doc_str(d, 0, "routeId", rid);
        int p = sim__doc_obj(d, 0, "routePlanned");
        sim__doc_str(d, p, "vehicleId", "VH-dhl-001");
        sim__doc_str(d, p, "carrierId", "dhl");
        sim__doc_arr(d, p, "stops");
        st = (sim__style){0, 0, 1};
        break;
    }
    case BAD_ENUM:
        /* A reason code this version of the contract does not know. */
        if (oid[0]) {
            inst = fab_begin(t, SIM__INST_ERP, id);
            sim__doc_str(d, 0, "orderId", oid);
            int p = sim__doc_obj(d, 0, "orderHeld");
            sim__doc_str(d, p, "reason", "WEATHER");
            st = (sim__style){0, 0, 1};
        } else {
            fab_begin(t, t->ev_inst, id);
            sim__doc_str(d, 0, "shipmentId", sid[0] ? sid : "SH-100000-1");
            int p = sim__doc_obj(d, 0, "shipmentBlocked");
            sim__doc_str(d, p, "reason", "FLOOD");
        }
        break;
    case BAD_UNKNOWN_PAYLOAD:
        if (payload >= 0) d->n[payload].key = "orderShipped";
        break;
    default: {
        int src = sim__doc_find(d, 0, "source");
        sim__doc_set_str(d, sim__doc_find(d, src, "system"), "crm");
        break;
    }
    }
    sim__doc_render(d, &st, out);
    return inst;
}

void sim__fault_conflict(sim_trace *t, sim__rng *r)
{
    sim__doc *d = &t->doc;
    int payload = sim__doc_payload(d);
    int w = payload >= 0 ? sim__doc_find(d, payload, "warehouseId") : -1;
    uint32_t nw = t->o.warehouses;
    char other[16];
    if (w >= 0 && d->n[w].type == SIM__STR) {
        /* The classic conflict: a resend that names another warehouse under the same eventId. */
        unsigned k = 0;
        sscanf(d->n[w].s, "dc-%u", &k);
        snprintf(other, sizeof other, "dc-%u", nw > 1 ? k % nw + 1 : k + 1);
        sim__doc_set_str(d, w, other);
    } else {
        snprintf(other, sizeof other, "dc-%u", (unsigned)(1 + sim__rng_below(r, nw)));
        sim__doc_str(d, 0, "warehouseId", other);
    }
}
