/* The wire side of an event: canonical JSON out, protobuf in and out, and the event type names. */
#include "evt_internal.h"

#include <stdlib.h>
#include <string.h>

/* Payload names indexed by payload case - 20; the test checks them against the descriptor. */
static const char *const type_names[37] = {
    "orderCreated",      "orderApproved",     "orderHeld",         "orderHoldReleased",
    "orderReleased",     "orderCancelled",    "pickStarted",       "pickShort",
    "inventoryResolved", "packCompleted",     "shipmentReady",     "shipmentBlocked",
    "shipmentUnblocked", "shipmentConfirmed", "routeRequested",    "routePlanned",
    "routeFailed",       "routeDispatched",   "deliveryAttempted", "deliveryCompleted",
    "podCaptured",       "invoicePosted",     "postingFailed",     "slaBreached",
    "exceptionAcknowledged", "exceptionAssigned", "exceptionSnoozed", "exceptionNoted",
    "exceptionResolved", "exceptionReopened",
    "orderAtRisk",       "orderBackOnTrack",  "warehouseDefined",  "carrierDefined",
    "skuDefined",        "mismatchFound",     "mismatchCleared",
};

static const ProtobufCFieldDescriptor *payload_field(const evt_event *e)
{
    if (!e || e->payload_case < TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED ||
        e->payload_case > TOWER__V1__EVENT__PAYLOAD_MISMATCH_CLEARED)
        return NULL;
    return protobuf_c_message_descriptor_get_field(&tower__v1__event__descriptor,
                                                   (unsigned)e->payload_case);
}

const char *evt_type_name(const evt_event *e)
{
    if (!payload_field(e)) return "";
    return type_names[e->payload_case - TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED];
}

const char *evt_type_subject(const evt_event *e)
{
    const ProtobufCFieldDescriptor *f = payload_field(e);
    return f ? f->name : "";
}

/* ---- canonical JSON ---------------------------------------------------------- */

static json_t *message_to_json(const ProtobufCMessage *m);

/* A value as JSON, or NULL if it cannot be one (only in events that did not pass validation). */
static json_t *value_to_json(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *)slot ? json_string(*(char *const *)slot) : NULL;
    case PROTOBUF_C_TYPE_INT32:
        return json_integer(*(const int32_t *)slot);
    case PROTOBUF_C_TYPE_INT64:
        return json_integer((json_int_t)*(const int64_t *)slot);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)slot);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)slot);
        return ev ? json_string(ev->name) : json_integer(*(const int *)slot);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (!sub) return NULL;
        if (sub->descriptor == &tower__v1__timestamp__descriptor) {
            const Tower__V1__Timestamp *t = (const Tower__V1__Timestamp *)sub;
            char buf[40];
            evt_time_format(t->has_seconds ? t->seconds : 0, t->has_nanos ? t->nanos : 0, buf);
            return json_string(buf);
        }
        return message_to_json(sub);
    }
    default:
        return NULL;
    }
}

/* Present fields in field-number order; jansson keeps insertion order when dumping. */
static json_t *message_to_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *obj = json_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!evt__field_present(m, f)) continue;
        char name[64];
        json_t *v;
        evt__json_name(f->name, name, sizeof name);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)evt__member(m, f->quantifier_offset);
            void *const *arr = *(void *const *const *)evt__member(m, f->offset);
            v = json_array();
            /* Only strings and messages are repeated in the contract: arrays of pointers. */
            for (size_t j = 0; j < n; j++) {
                json_t *elem = value_to_json(f, &arr[j]);
                if (elem) json_array_append_new(v, elem);
            }
        } else {
            v = value_to_json(f, evt__member(m, f->offset));
        }
        if (v) json_object_set_new(obj, name, v);
    }
    return obj;
}

json_t *evt_to_json(const evt_event *e)
{
    if (!e) return NULL;
    return message_to_json(&e->base);
}

/* ---- protobuf ------------------------------------------------------------------ */

typedef struct buf_sink {
    ProtobufCBuffer base;
    ct_buf *out;
} buf_sink;

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    ct_buf_add(((buf_sink *)b)->out, data, len);
}

void evt_pack(const evt_event *e, ct_buf *out)
{
    buf_sink sink = {.base = {.append = sink_append}, .out = out};
    if (e) protobuf_c_message_pack_to_buffer(&e->base, &sink.base);
}

/*
 * Forget the fields this version does not know, in m and every message below
 * it, so that evt_pack writes only what we understood: two producers' copies
 * of one event then pack to the same bytes. unpack allocated them with the
 * system allocator, which is what protobuf-c's default allocator uses.
 */
static void drop_unknown(ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < m->n_unknown_fields; i++) free(m->unknown_fields[i].data);
    free(m->unknown_fields);
    m->unknown_fields = NULL;
    m->n_unknown_fields = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE || !evt__field_present(m, f)) continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)evt__member(m, f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)evt__member(m, f->offset);
            for (size_t j = 0; j < n; j++)
                if (arr[j]) drop_unknown(arr[j]);
        } else {
            drop_unknown(*(ProtobufCMessage **)evt__member(m, f->offset));
        }
    }
}

ct_status evt_from_protobuf(evt_event **out, const uint8_t *data, size_t len, evt_error *err)
{
    evt_error scratch;
    char list[256] = "";
    int unknown = 0;

    if (!err) err = &scratch;
    evt__err_clear(err);
    if (len > EVT_MAX_EVENT_BYTES)
        return evt__fail(err, EVT_TOO_LARGE, "", "the event is %zu bytes, over the limit of %d", len,
                         EVT_MAX_EVENT_BYTES);
    evt_event *e = tower__v1__event__unpack(NULL, len, data);
    if (!e)
        return evt__fail(err, EVT_UNDECODABLE, "", "the %zu bytes do not decode as a tower.v1.Event",
                         len);
    /*
     * A payload of a newer version arrives as an unknown length-delimited field
     * of the envelope; note those before they are dropped, so that an event
     * with only such a payload is UNKNOWN_PAYLOAD rather than NO_PAYLOAD.
     */
    for (unsigned i = 0; i < e->base.n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &e->base.unknown_fields[i];
        if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) continue;
        size_t o = strlen(list);
        if (o + 24 < sizeof list)
            snprintf(list + o, sizeof list - o, "%sfield %u", unknown ? ", " : "", (unsigned)u->tag);
        unknown++;
    }
    drop_unknown(&e->base);
    ct_status st = evt__check(e, err, "", unknown ? list : NULL);
    if (st != CT_OK) {
        evt_free(e);
        return st;
    }
    *out = e;
    return CT_OK;
}
