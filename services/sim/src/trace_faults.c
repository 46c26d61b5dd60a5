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

/* One bad record in the making: what each way of going wrong needs, and what it decides. */
typedef struct bad {
    sim_trace *t;
    sim__doc *d;             /* the event being damaged: t->doc */
    unsigned long long n;    /* the bad record's number */
    char id[64];             /* its eventId */
    char oid[72], sid[72];   /* the event's orderId and shipmentId, or "" */
    int payload;             /* the event's payload node, or -1 */
    int inst;                /* the instance that reports the record */
    sim__style st;           /* how it is rendered */
} bad;

/* Give the current event the id of a bad record and note what the faults reuse of it. */
static void bad_begin(bad *b, sim_trace *t)
{
    const sim__inst *in = &t->inst[t->ev_inst];
    b->t = t;
    b->d = &t->doc;
    /* Bad records take ids of their own ("x" numbers) so that two of them are never the same bytes and
       the valid events keep their numbering whatever p_bad is. */
    b->n = (unsigned long long)++t->bad_num;
    b->inst = t->ev_inst;
    snprintf(b->id, sizeof b->id, "%s-%sx%llu", in->prefix, t->tag, b->n);
    copy_key(b->d, "orderId", b->oid, sizeof b->oid);
    copy_key(b->d, "shipmentId", b->sid, sizeof b->sid);
    sim__doc_set_str(b->d, sim__doc_find(b->d, 0, "eventId"), b->id);
    b->payload = sim__doc_payload(b->d);
    b->st = (sim__style){0, in->offset_min, in->zulu};
}

/* The record cut somewhere after its eventId, so that it stays unique. */
static void truncated(bad *b, sim__rng *r, ct_buf *out)
{
    sim__doc_render(b->d, &b->st, out);
    size_t min = strlen("{\"eventId\":\"\"") + strlen(b->id) + 1;
    size_t cut = out->len * (size_t)sim__rng_range(r, 40, 95) / 100;
    if (cut < min) cut = min;
    if (cut < out->len) {
        out->len = cut;
        out->data[cut] = '\0';
    }
}

static void no_id(bad *b)
{
    char msg[48];
    sim__doc_unlink(b->d, 0, sim__doc_find(b->d, 0, "eventId"));
    /* Without an eventId the transport's message id is what keeps the bytes unique. */
    snprintf(msg, sizeof msg, "msg-%llu", b->n);
    sim__doc_str(b->d, 0, "messageId", msg);
}

static void order_space(bad *b)
{
    int o = sim__doc_find(b->d, 0, "orderId");
    char spaced[72];
    snprintf(spaced, sizeof spaced, "%s", b->oid[0] ? b->oid : "SO-100000");
    char *dash = strchr(spaced, '-');
    if (dash) *dash = ' ';
    if (o >= 0)
        sim__doc_set_str(b->d, o, spaced);
    else
        sim__doc_str(b->d, 0, "orderId", spaced);
}

static void two_payloads(bad *b)
{
    int same = b->payload >= 0 && strcmp(b->d->n[b->payload].key, "orderHeld") == 0;
    int p2 = sim__doc_obj(b->d, 0, same ? "orderCancelled" : "orderHeld");
    sim__doc_str(b->d, p2, "reason", same ? "CUSTOMER_REQUEST" : "CREDIT");
}

/* An EDI resend whose line lost its quantity. */
static void qty_zero(bad *b)
{
    sim__doc *d = b->d;
    b->inst = fab_begin(b->t, SIM__INST_ERP, b->id);
    sim__doc_str(d, 0, "orderId", b->oid[0] ? b->oid : "SO-100000");
    int p = sim__doc_obj(d, 0, "orderCreated");
    sim__doc_str(d, p, "channel", "EDI");
    int lines = sim__doc_arr(d, p, "lines");
    int l = sim__doc_obj(d, lines, NULL);
    sim__doc_str(d, l, "sku", "SKU-10001");
    sim__doc_int(d, l, "qty", 0);
    b->st = (sim__style){0, 0, 1};
}

static void empty_stops(bad *b)
{
    sim__doc *d = b->d;
    char rid[48];
    snprintf(rid, sizeof rid, "RT-X%s%llu", b->t->tag, b->n);
    b->inst = fab_begin(b->t, SIM__INST_TMS, b->id);
    sim__doc_str(d, 0, "routeId", rid);
    int p = sim__doc_obj(d, 0, "routePlanned");
    sim__doc_str(d, p, "vehicleId", "VH-dhl-001");
    sim__doc_str(d, p, "carrierId", "dhl");
    sim__doc_arr(d, p, "stops");
    b->st = (sim__style){0, 0, 1};
}

/* A reason code this version of the contract does not know. */
static void bad_enum(bad *b)
{
    sim__doc *d = b->d;
    if (b->oid[0]) {
        b->inst = fab_begin(b->t, SIM__INST_ERP, b->id);
        sim__doc_str(d, 0, "orderId", b->oid);
        int p = sim__doc_obj(d, 0, "orderHeld");
        sim__doc_str(d, p, "reason", "WEATHER");
        b->st = (sim__style){0, 0, 1};
    } else {
        fab_begin(b->t, b->t->ev_inst, b->id);
        sim__doc_str(d, 0, "shipmentId", b->sid[0] ? b->sid : "SH-100000-1");
        int p = sim__doc_obj(d, 0, "shipmentBlocked");
        sim__doc_str(d, p, "reason", "FLOOD");
    }
}

/* Damage the event the way kind says (a kind that renders the record itself excepted). */
static void damage(bad *b, int kind)
{
    sim__doc *d = b->d;
    switch (kind) {
    case BAD_NO_ID: no_id(b); break;
    case BAD_NO_TIME: sim__doc_unlink(d, 0, sim__doc_find(d, 0, "occurredAt")); break;
    case BAD_TIME: sim__doc_set_str(d, sim__doc_find(d, 0, "occurredAt"), "2026-13-45T99:00:00Z"); break;
    case BAD_ORDER_SPACE: order_space(b); break;
    case BAD_NO_PAYLOAD:
        if (b->payload >= 0) sim__doc_unlink(d, 0, b->payload);
        break;
    case BAD_TWO_PAYLOADS: two_payloads(b); break;
    case BAD_QTY_ZERO: qty_zero(b); break;
    case BAD_EMPTY_STOPS: empty_stops(b); break;
    case BAD_ENUM: bad_enum(b); break;
    case BAD_UNKNOWN_PAYLOAD:
        if (b->payload >= 0) d->n[b->payload].key = "orderShipped";
        break;
    default: sim__doc_set_str(d, sim__doc_find(d, sim__doc_find(d, 0, "source"), "system"), "crm"); break;
    }
}

int sim__fault_bad(sim_trace *t, sim__rng *r, ct_buf *out)
{
    bad b;
    bad_begin(&b, t);
    int kind = (int)sim__rng_below(r, BAD_COUNT);
    if (kind == BAD_NOT_JSON) {
        not_json(t, r, b.id, b.oid, out);
    } else if (kind == BAD_TRUNCATED) {
        truncated(&b, r, out);
    } else {
        damage(&b, kind);
        sim__doc_render(b.d, &b.st, out);
    }
    return b.inst;
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
