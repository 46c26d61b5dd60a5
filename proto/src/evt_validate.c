/* Validation and normalisation of a decoded event: every rule of the contract, in one descriptor walk. */
#include "evt_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const code_names[] = {
#define EVT_X(name) #name,
    EVT_CODE_MAP(EVT_X)
#undef EVT_X
};

const char *evt_code_str(evt_code c)
{
    if ((int)c < 0 || c >= EVT_CODE_COUNT) return "UNKNOWN";
    return code_names[c];
}

/* ---- paths, names and error text ----------------------------------------- */

/* Paths are built for every field walked, error or not: plain copies, no printf. */
static void path_add(evt__path *p, const char *s, size_t n)
{
    size_t room = sizeof p->s - 1 - p->len;
    if (n > room) n = room;
    memcpy(p->s + p->len, s, n);
    p->len += n;
    p->s[p->len] = '\0';
}

size_t evt__path_push(evt__path *p, const char *name)
{
    size_t old = p->len;
    if (p->len) path_add(p, ".", 1);
    path_add(p, name, strlen(name));
    return old;
}

size_t evt__path_index(evt__path *p, size_t i)
{
    size_t old = p->len;
    char buf[24];
    size_t n = sizeof buf;
    buf[--n] = ']';
    do {
        buf[--n] = (char)('0' + i % 10);
        i /= 10;
    } while (i && n > 1);
    buf[--n] = '[';
    path_add(p, buf + n, sizeof buf - n);
    return old;
}

void evt__path_pop(evt__path *p, size_t len)
{
    p->len = len;
    p->s[len] = '\0';
}

void evt__err_clear(evt_error *err)
{
    if (!err) return;
    err->code = EVT_OK;
    err->field[0] = '\0';
    err->message[0] = '\0';
    err->event_id[0] = '\0';
}

/*
 * Length of the well-formed UTF-8 sequence at p (at most avail bytes), or 0.
 * Overlong forms, surrogates and code points past U+10FFFF are not well formed.
 */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n) return 0;
    unsigned cp = c & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static int utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

/*
 * Copy at most max bytes of s into out (cap bytes), keeping whole UTF-8
 * characters and replacing control characters and broken bytes with '?', so
 * that what we put in an error can always go into JSON. Returns 1 if s was cut.
 */
static int safe_copy(const char *s, size_t max, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), i = 0, o = 0;
    while (i < len && i < max && o + 1 < cap) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7F))) {
            out[o++] = '?';
            i++;
            continue;
        }
        if (i + n > max || o + n >= cap) break;
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
    }
    out[o] = '\0';
    return i < len;
}

void evt__err_event_id(evt_error *err, const char *id)
{
    if (!err || !id) return;
    safe_copy(id, EVT_MAX_EVENT_ID, err->event_id, sizeof err->event_id);
}

void evt__quote(const char *s, char *out, size_t cap)
{
    char body[80];
    int cut = safe_copy(s, 60, body, sizeof body);
    snprintf(out, cap, "\"%s%s\"", body, cut ? "..." : "");
}

ct_status evt__fail(evt_error *err, evt_code code, const char *path, const char *fmt, ...)
{
    if (!err) return CT_INVALID;
    char text[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", path ? path : "");
    /* Built by hand rather than with one snprintf, which the compiler flags as maybe truncating. */
    size_t o = 0;
    if (path && *path) {
        int n = snprintf(err->message, sizeof err->message, "field \"%s\": ", err->field);
        o = n < 0 ? 0 : (size_t)n;
    }
    size_t tl = strlen(text);
    if (tl > sizeof err->message - 1 - o) tl = sizeof err->message - 1 - o;
    memcpy(err->message + o, text, tl);
    err->message[o + tl] = '\0';
    return CT_INVALID;
}

static void json_name(const char *proto_name, char *out, size_t cap)
{
    size_t o = 0;
    int upper = 0;
    for (const char *p = proto_name; *p && o + 1 < cap; p++) {
        if (*p == '_') {
            upper = 1;
            continue;
        }
        out[o++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        upper = 0;
    }
    out[o] = '\0';
}

/* Descriptor names are static strings: remember each conversion per thread, by address. */
void evt__json_name(const char *proto_name, char *out, size_t cap)
{
    static _Thread_local struct {
        const char *key;
        char name[48];
    } cache[256];
    size_t h = ((uintptr_t)proto_name >> 3) & 255;
    if (cache[h].key != proto_name) {
        json_name(proto_name, cache[h].name, sizeof cache[h].name);
        cache[h].key = strlen(cache[h].name) + 1 < sizeof cache[h].name ? proto_name : NULL;
        if (!cache[h].key) {
            json_name(proto_name, out, cap);
            return;
        }
    }
    size_t n = strlen(cache[h].name);
    if (n >= cap) n = cap - 1;
    memcpy(out, cache[h].name, n);
    out[n] = '\0';
}

int evt__field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)evt__member(m, f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)evt__member(m, f->quantifier_offset) > 0;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)evt__member(m, f->offset) != NULL;
    default:
        return *(const protobuf_c_boolean *)evt__member(m, f->quantifier_offset) != 0;
    }
}

/* ---- the rules ------------------------------------------------------------- */

/* Correlation and filter ids: 1-64 chars of [A-Za-z0-9._:-] wherever they appear. */
static int is_id_field(const char *name)
{
    static const char *const ids[] = {"order_id", "shipment_id", "route_id", "warehouse_id",
                                      "carrier_id", "shipment_ids"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (strcmp(name, ids[i]) == 0) return 1;
    return 0;
}

/* Fields that a message requires when it is present (the envelope's are listed here too). */
static int is_required(const ProtobufCMessageDescriptor *d, const char *name)
{
    static const struct {
        const ProtobufCMessageDescriptor *d;
        const char *name;
    } req[] = {
        {&tower__v1__event__descriptor, "event_id"},
        {&tower__v1__event__descriptor, "occurred_at"},
        {&tower__v1__event__descriptor, "source"},
        {&tower__v1__source__descriptor, "system"},
        {&tower__v1__route_stop__descriptor, "shipment_id"},
        {&tower__v1__pick_short__descriptor, "sku"},
        {&tower__v1__inventory_resolved__descriptor, "sku"},
        {&tower__v1__sla_breached__descriptor, "rule"},
        /* Contract v1.1: every action names its exception and its actor. */
        {&tower__v1__exception_acknowledged__descriptor, "exception_id"},
        {&tower__v1__exception_acknowledged__descriptor, "actor"},
        {&tower__v1__exception_assigned__descriptor, "exception_id"},
        {&tower__v1__exception_assigned__descriptor, "actor"},
        {&tower__v1__exception_snoozed__descriptor, "exception_id"},
        {&tower__v1__exception_snoozed__descriptor, "actor"},
        {&tower__v1__exception_snoozed__descriptor, "until"},
        {&tower__v1__exception_noted__descriptor, "exception_id"},
        {&tower__v1__exception_noted__descriptor, "actor"},
        {&tower__v1__exception_noted__descriptor, "note"},
        {&tower__v1__exception_resolved__descriptor, "exception_id"},
        {&tower__v1__exception_resolved__descriptor, "actor"},
        {&tower__v1__exception_resolved__descriptor, "resolution"},
        {&tower__v1__exception_reopened__descriptor, "exception_id"},
        {&tower__v1__exception_reopened__descriptor, "actor"},
        /* Contract v1.2. */
        {&tower__v1__order_at_risk__descriptor, "predicted_by"},
        {&tower__v1__sku_defined__descriptor, "sku"},
        {&tower__v1__mismatch_found__descriptor, "system"},
        {&tower__v1__mismatch_found__descriptor, "check"},
        {&tower__v1__mismatch_cleared__descriptor, "system"},
        {&tower__v1__mismatch_cleared__descriptor, "check"},
    };
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        if (req[i].d == d && strcmp(req[i].name, name) == 0) return 1;
    return 0;
}

/* Which envelope keys each payload needs, indexed by payload case - 20 (docs/contract.md, "Payloads"). */
enum { K_ORDER = 1, K_SHIPMENT = 2, K_ROUTE = 4, K_ORDER_OR_SHIPMENT = 8, K_WAREHOUSE = 16,
       K_CARRIER = 32 };
static const unsigned char required_keys[37] = {
    K_ORDER,               /* order_created */
    K_ORDER,               /* order_approved */
    K_ORDER,               /* order_held */
    K_ORDER,               /* order_hold_released */
    K_ORDER,               /* order_released */
    K_ORDER,               /* order_cancelled */
    K_ORDER,               /* pick_started */
    K_ORDER,               /* pick_short */
    K_ORDER,               /* inventory_resolved */
    K_ORDER | K_SHIPMENT,  /* pack_completed */
    K_ORDER | K_SHIPMENT,  /* shipment_ready */
    K_SHIPMENT,            /* shipment_blocked */
    K_SHIPMENT,            /* shipment_unblocked */
    K_SHIPMENT,            /* shipment_confirmed */
    0,                     /* route_requested */
    K_ROUTE,               /* route_planned */
    0,                     /* route_failed */
    K_ROUTE,               /* route_dispatched */
    K_SHIPMENT,            /* delivery_attempted */
    K_SHIPMENT,            /* delivery_completed */
    K_SHIPMENT,            /* pod_captured */
    K_ORDER,               /* invoice_posted */
    K_ORDER,               /* posting_failed */
    K_ORDER_OR_SHIPMENT,   /* sla_breached */
    0, 0, 0, 0, 0, 0,      /* the exception actions: their exception_id names what they act on */
    K_ORDER,               /* order_at_risk */
    K_ORDER,               /* order_back_on_track */
    K_WAREHOUSE,           /* warehouse_defined: the payload's id or the envelope's */
    K_CARRIER,             /* carrier_defined: likewise */
    0,                     /* sku_defined: its sku is a required payload field */
    K_ORDER_OR_SHIPMENT,   /* mismatch_found */
    K_ORDER_OR_SHIPMENT,   /* mismatch_cleared */
};

static ct_status check_id(const char *s, size_t max, const char *path, evt_error *err)
{
    size_t len = strlen(s);
    int ok = len >= 1 && len <= max;
    for (size_t i = 0; ok && i < len; i++) {
        char c = s[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == ':' || c == '-';
    }
    if (ok) return CT_OK;
    if (len == 0)
        return evt__fail(err, EVT_INVALID_ID, path,
                         "must be 1-%zu characters of [A-Za-z0-9._:-], got an empty string", max);
    if (len > max)
        return evt__fail(err, EVT_INVALID_ID, path,
                         "must be 1-%zu characters of [A-Za-z0-9._:-], got %zu characters", max, len);
    char q[100];
    evt__quote(s, q, sizeof q);
    return evt__fail(err, EVT_INVALID_ID, path, "must be 1-%zu characters of [A-Za-z0-9._:-], got %s",
                     max, q);
}

static int is_decimal(const char *s)
{
    const char *p = s + (*s == '-');
    const char *start = p;
    while (*p >= '0' && *p <= '9') p++;
    if (p == start) return 0;
    if (*p == '.') {
        start = ++p;
        while (*p >= '0' && *p <= '9') p++;
        if (p == start) return 0;
    }
    return *p == '\0';
}

static int is_currency(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z') return 0;
    return s[3] == '\0';
}

static ct_status check_text(char **ps, const ProtobufCFieldDescriptor *f, int in_array,
                            const char *path, evt_error *err)
{
    const char *s = *ps;
    size_t len = strlen(s);
    char q[100];
    if (strcmp(f->name, "system") == 0) {
        static const char *const systems[] = {"erp", "wms", "tms", "carrier", "finance", "mdm", "tower"};
        for (size_t i = 0; i < sizeof systems / sizeof systems[0]; i++)
            if (strcmp(s, systems[i]) == 0) return CT_OK;
        evt__quote(s, q, sizeof q);
        return evt__fail(err, EVT_INVALID_VALUE, path,
                         "must be one of erp, wms, tms, carrier, finance, mdm, tower, got %s", q);
    }
    if (strcmp(f->name, "exception_id") == 0) {
        evt_exid x;
        const char *why = NULL;
        if (evt_exid_parse(s, &x, &why) == 0) return CT_OK;
        evt__quote(s, q, sizeof q);
        return evt__fail(err, EVT_INVALID_VALUE, path, "%s, got %s (an exception id is the exceptionId of a view "
                         "item)", why, q);
    }
    /* Notes of exception actions are longer than other text; actors and assignees are names. */
    size_t max = strcmp(f->name, "note") == 0                                     ? EVT_MAX_NOTE
               : strcmp(f->name, "actor") == 0 || strcmp(f->name, "assignee") == 0 ? EVT_MAX_ACTOR
                                                                                   : EVT_MAX_TEXT;
    if (len > max) return evt__fail(err, EVT_TOO_LARGE, path, "is %zu bytes, over the limit of %zu", len, max);
    if (!utf8_valid(s, len)) return evt__fail(err, EVT_INVALID_VALUE, path, "is not valid UTF-8");
    if (strcmp(f->name, "amount") == 0) {
        if (is_decimal(s)) return CT_OK;
        evt__quote(s, q, sizeof q);
        return evt__fail(err, EVT_INVALID_VALUE, path,
                         "must be a decimal string such as \"1234.50\", got %s", q);
    }
    if (strcmp(f->name, "currency") == 0) {
        if (is_currency(s)) return CT_OK;
        evt__quote(s, q, sizeof q);
        return evt__fail(err, EVT_INVALID_VALUE, path,
                         "must be an ISO 4217 code of three capital letters, got %s", q);
    }
    /* An empty free text says nothing: make it absent so that "" and a missing field are one event. */
    if (len == 0 && !in_array) {
        free(*ps);
        *ps = NULL;
    }
    return CT_OK;
}

static ct_status check_time(Tower__V1__Timestamp *t, const char *path, evt_error *err)
{
    /* Both fields present, so that the packed bytes of one instant are always the same. */
    if (!t->has_seconds) t->seconds = 0;
    if (!t->has_nanos) t->nanos = 0;
    t->has_seconds = t->has_nanos = 1;
    if (t->nanos < 0 || t->nanos > 999999999)
        return evt__fail(err, EVT_INVALID_TIME, path, "nanos must be in 0..999999999, got %d",
                         (int)t->nanos);
    /* A time from year 1 or 9999 is a producer's bug (a zero value, a sentinel): it would make an
     * item decades old, or one that never breaches. */
    if (t->seconds < EVT_MIN_SECONDS || t->seconds >= EVT_END_SECONDS) {
        char buf[48];
        if (t->seconds >= INT64_C(-62135596800) && t->seconds <= INT64_C(253402300799))
            evt_time_format(t->seconds, t->nanos, buf); /* years 1-9999: writable as RFC 3339 */
        else
            snprintf(buf, sizeof buf, "%lld seconds since 1970", (long long)t->seconds);
        return evt__fail(err, EVT_INVALID_TIME, path, "%s is outside the accepted years 2000-2099", buf);
    }
    return CT_OK;
}

void evt__enum_names(const ProtobufCEnumDescriptor *ed, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < ed->n_values; i++) {
        if (ed->values[i].value == 0) continue;
        int n = snprintf(out + o, cap - o, "%s%s", o ? ", " : "", ed->values[i].name);
        if (n < 0 || (size_t)n >= cap - o) break;
        o += (size_t)n;
    }
}

static ct_status check_enum(int v, const ProtobufCEnumDescriptor *ed, const char *path, evt_error *err)
{
    /* The *_UNSPECIFIED value 0 is no value at all, and JSON cannot name it either. */
    if (v != 0 && protobuf_c_enum_descriptor_get_value(ed, v)) return CT_OK;
    char names[200];
    evt__enum_names(ed, names, sizeof names);
    return evt__fail(err, EVT_INVALID_VALUE, path, "must be one of %s, got %d", names, v);
}

static ct_status check_message(ProtobufCMessage *m, int skip_oneof, evt__path *p, evt_error *err);

/* Check one value: a present singular field, or one element of a repeated one. */
static ct_status check_value(const ProtobufCFieldDescriptor *f, void *slot, int in_array,
                             evt__path *p, evt_error *err)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char **ps = slot;
        if (!*ps) return evt__fail(err, EVT_MISSING_FIELD, p->s, "is required");
        if (strcmp(f->name, "event_id") == 0) return check_id(*ps, EVT_MAX_EVENT_ID, p->s, err);
        if (is_id_field(f->name)) return check_id(*ps, EVT_MAX_ID, p->s, err);
        return check_text(ps, f, in_array, p->s, err);
    }
    case PROTOBUF_C_TYPE_INT32: {
        int32_t v = *(int32_t *)slot;
        if ((strcmp(f->name, "qty") == 0 || strcmp(f->name, "qty_short") == 0 ||
             strcmp(f->name, "cartons") == 0) && v <= 0)
            return evt__fail(err, EVT_INVALID_VALUE, p->s, "must be > 0, got %d", (int)v);
        return CT_OK;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double *pd = slot;
        if (strcmp(f->name, "weight_kg") != 0) return CT_OK;
        if (!isfinite(*pd)) return evt__fail(err, EVT_INVALID_VALUE, p->s, "must be a finite number");
        if (*pd < 0) return evt__fail(err, EVT_INVALID_VALUE, p->s, "must be >= 0, got %g", *pd);
        if (*pd == 0) *pd = 0.0; /* -0.0 packs differently from 0.0 but is the same weight. */
        return CT_OK;
    }
    case PROTOBUF_C_TYPE_ENUM:
        return check_enum(*(int *)slot, f->descriptor, p->s, err);
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *sub = *(ProtobufCMessage **)slot;
        if (!sub) return evt__fail(err, EVT_MISSING_FIELD, p->s, "is required");
        if (sub->descriptor == &tower__v1__timestamp__descriptor)
            return check_time((Tower__V1__Timestamp *)sub, p->s, err);
        return check_message(sub, 0, p, err);
    }
    default:
        return CT_OK;
    }
}

static ct_status check_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, evt__path *p,
                             evt_error *err)
{
    void *slot = evt__member(m, f->offset);
    ct_status st;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(size_t *)evt__member(m, f->quantifier_offset);
        if (n == 0 && strcmp(f->name, "shipment_ids") == 0)
            return evt__fail(err, EVT_INVALID_VALUE, p->s, "must list at least one shipment");
        if (n == 0 && strcmp(f->name, "stops") == 0)
            return evt__fail(err, EVT_INVALID_VALUE, p->s, "must list at least one stop");
        /* Only strings and messages are repeated in the contract: arrays of pointers. */
        void **arr = *(void ***)slot;
        if (n > 0 && !arr) return evt__fail(err, EVT_MISSING_FIELD, p->s, "is required");
        for (size_t i = 0; i < n; i++) {
            size_t mark = evt__path_index(p, i);
            st = check_value(f, &arr[i], 1, p, err);
            evt__path_pop(p, mark);
            if (st) return st;
        }
        return CT_OK;
    }
    if (evt__field_present(m, f)) {
        st = check_value(f, slot, 0, p, err);
        if (st) return st;
        /* An empty free text was just made absent; that counts as missing where it is required. */
        if (f->type != PROTOBUF_C_TYPE_STRING || *(char **)slot) return CT_OK;
    }
    if (!is_required(m->descriptor, f->name)) return CT_OK;
    if (m->descriptor == &tower__v1__event__descriptor && strcmp(f->name, "source") == 0)
        return evt__fail(err, EVT_MISSING_FIELD, "source.system", "is required");
    return evt__fail(err, EVT_MISSING_FIELD, p->s, "is required");
}

/* Walk the fields of m in field-number order; the first broken rule is the one reported. */
static ct_status check_message(ProtobufCMessage *m, int skip_oneof, evt__path *p, evt_error *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (skip_oneof && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        char name[64];
        evt__json_name(f->name, name, sizeof name);
        size_t mark = evt__path_push(p, name);
        ct_status st = check_field(m, f, p, err);
        evt__path_pop(p, mark);
        if (st) return st;
    }
    return CT_OK;
}

static ct_status check_keys(const evt_event *e, const char *type, evt_error *err)
{
    unsigned k = required_keys[e->payload_case - TOWER__V1__EVENT__PAYLOAD_ORDER_CREATED];
    if ((k & K_ORDER) && !e->order_id)
        return evt__fail(err, EVT_MISSING_FIELD, "orderId", "is required for %s events", type);
    if ((k & K_SHIPMENT) && !e->shipment_id)
        return evt__fail(err, EVT_MISSING_FIELD, "shipmentId", "is required for %s events", type);
    if ((k & K_ROUTE) && !e->route_id)
        return evt__fail(err, EVT_MISSING_FIELD, "routeId", "is required for %s events", type);
    if ((k & K_ORDER_OR_SHIPMENT) && !e->order_id && !e->shipment_id)
        return evt__fail(err, EVT_MISSING_FIELD, "orderId",
                         "is required for %s events unless shipmentId is given", type);
    if ((k & K_WAREHOUSE) && !evt_defined_code(e))
        return evt__fail(err, EVT_MISSING_FIELD, "warehouseDefined.warehouseId",
                         "is required (or the envelope's warehouseId) for %s events", type);
    if ((k & K_CARRIER) && !evt_defined_code(e))
        return evt__fail(err, EVT_MISSING_FIELD, "carrierDefined.carrierId",
                         "is required (or the envelope's carrierId) for %s events", type);
    return CT_OK;
}

ct_status evt__check(evt_event *e, evt_error *err, const char *unknown_field,
                     const char *unknown_list)
{
    evt_error scratch;
    evt__path p = {.len = 0};
    ct_status st;

    if (!err) err = &scratch;
    evt__err_clear(err);
    if (!e) return evt__fail(err, EVT_MALFORMED, "", "there is no event");
    evt__err_event_id(err, e->event_id);

    /* The envelope first, in field order: eventId, occurredAt, source, then the keys. */
    st = check_message(&e->base, 1, &p, err);
    if (st) return st;

    const ProtobufCFieldDescriptor *pf = NULL;
    if (e->payload_case != TOWER__V1__EVENT__PAYLOAD__NOT_SET)
        pf = protobuf_c_message_descriptor_get_field(&tower__v1__event__descriptor,
                                                     (unsigned)e->payload_case);
    if (!pf || !(pf->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
        if (unknown_list) {
            evt__fail(err, EVT_UNKNOWN_PAYLOAD, "",
                      "the event names no payload this version knows, only %s", unknown_list);
            snprintf(err->field, sizeof err->field, "%s", unknown_field ? unknown_field : "");
            return CT_INVALID;
        }
        return evt__fail(err, EVT_NO_PAYLOAD, "", "the event names no payload");
    }
    char type[64];
    evt__json_name(pf->name, type, sizeof type);
    ProtobufCMessage *payload = *(ProtobufCMessage **)evt__member(&e->base, pf->offset);
    if (!payload) return evt__fail(err, EVT_NO_PAYLOAD, type, "the payload is null");

    st = check_keys(e, type, err);
    if (st) return st;
    evt__path_push(&p, type);
    return check_message(payload, 0, &p, err);
}

ct_status evt_validate(evt_event *e, evt_error *err)
{
    return evt__check(e, err, NULL, NULL);
}

void evt_free(evt_event *e)
{
    if (e) protobuf_c_message_free_unpacked(&e->base, NULL);
}
