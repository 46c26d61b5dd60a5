/* JSON to tower.v1.Event: the canonical proto3 JSON mapping, decoded by walking the descriptors. */
#include "evt_internal.h"

#include <stdlib.h>
#include <string.h>

const char *evt__json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/*
 * A 32-bit integer: a JSON integer, or a real with an integral value (1.0,
 * 1e3), since some producers print every number as a double. A number that is
 * not integral or does not fit is a bad value; anything else a bad type.
 */
static ct_status decode_int32(const json_t *v, int32_t *out, const char *path, evt_error *err)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < INT32_MIN || x > INT32_MAX)
            return evt__fail(err, EVT_INVALID_VALUE, path, "must be a 32-bit integer, got %lld",
                             (long long)x);
        *out = (int32_t)x;
        return CT_OK;
    }
    if (json_is_real(v)) {
        /* Range first, so that the conversion below is defined (and libm is not needed). */
        double d = json_real_value(v);
        if (!(d >= INT32_MIN && d <= INT32_MAX))
            return evt__fail(err, EVT_INVALID_VALUE, path, "must be a 32-bit integer, got %g", d);
        if ((double)(int32_t)d != d)
            return evt__fail(err, EVT_INVALID_VALUE, path, "must be an integer, got %g", d);
        *out = (int32_t)d;
        return CT_OK;
    }
    return evt__fail(err, EVT_INVALID_TYPE, path, "must be a number, got %s", evt__json_kind(v));
}

static ct_status decode_message(ProtobufCMessage *m, const json_t *obj, int skip_oneof,
                                evt__path *p, evt_error *err);

/* Decode one JSON value into the storage of a singular field or of one array element. */
static ct_status decode_value(const ProtobufCFieldDescriptor *f, const json_t *v, void *slot,
                              evt__path *p, evt_error *err)
{
    char q[100];
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v))
            return evt__fail(err, EVT_INVALID_TYPE, p->s, "must be a string, got %s", evt__json_kind(v));
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        /* Jansson only builds such strings when asked to; a C string could not carry one. */
        if (memchr(s, '\0', len))
            return evt__fail(err, EVT_INVALID_VALUE, p->s, "contains a NUL character");
        *(char **)slot = ct_strndup(s, len);
        return CT_OK;
    }
    case PROTOBUF_C_TYPE_INT32:
        return decode_int32(v, slot, p->s, err);
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!json_is_number(v))
            return evt__fail(err, EVT_INVALID_TYPE, p->s, "must be a number, got %s", evt__json_kind(v));
        *(double *)slot = json_number_value(v);
        return CT_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        char names[200];
        if (!json_is_string(v))
            return evt__fail(err, EVT_INVALID_TYPE, p->s, "must be a string naming a value, got %s",
                             evt__json_kind(v));
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
        if (!ev || ev->value == 0) {
            evt__enum_names(ed, names, sizeof names);
            evt__quote(json_string_value(v), q, sizeof q);
            return evt__fail(err, EVT_INVALID_VALUE, p->s, "must be one of %s, got %s", names, q);
        }
        *(int *)slot = ev->value;
        return CT_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *md = f->descriptor;
        if (md == &tower__v1__timestamp__descriptor) {
            int64_t sec;
            int32_t nanos;
            if (!json_is_string(v))
                return evt__fail(err, EVT_INVALID_TYPE, p->s, "must be an RFC 3339 time string, got %s",
                                 evt__json_kind(v));
            if (evt_time_parse(json_string_value(v), &sec, &nanos) != 0) {
                evt__quote(json_string_value(v), q, sizeof q);
                return evt__fail(err, EVT_INVALID_TIME, p->s, "%s is not an RFC 3339 time", q);
            }
            Tower__V1__Timestamp *t = ct_malloc(sizeof *t);
            tower__v1__timestamp__init(t);
            t->has_seconds = t->has_nanos = 1;
            t->seconds = sec;
            t->nanos = nanos;
            *(Tower__V1__Timestamp **)slot = t;
            return CT_OK;
        }
        if (!json_is_object(v))
            return evt__fail(err, EVT_INVALID_TYPE, p->s, "must be an object, got %s", evt__json_kind(v));
        /* Attach before filling, so that freeing the root frees a half-decoded message too. */
        ProtobufCMessage *sub = ct_malloc(md->sizeof_message);
        protobuf_c_message_init(md, sub);
        *(ProtobufCMessage **)slot = sub;
        return decode_message(sub, v, 0, p, err);
    }
    default:
        return evt__fail(err, EVT_INVALID_TYPE, p->s, "has a type this codec does not decode");
    }
}

static ct_status decode_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const json_t *v,
                              evt__path *p, evt_error *err)
{
    void *slot = evt__member(m, f->offset);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v))
            return evt__fail(err, EVT_INVALID_TYPE, p->s, "must be an array, got %s", evt__json_kind(v));
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            return evt__fail(err, EVT_INVALID_TYPE, p->s, "has a type this codec does not decode");
        size_t n = json_array_size(v);
        if (n == 0) return CT_OK;
        /* Strings and messages are both arrays of pointers; each is counted before it is
         * filled so that a failure half-way leaves nothing unreachable for the free. */
        void **arr = ct_calloc(n, sizeof *arr);
        size_t *count = evt__member(m, f->quantifier_offset);
        *(void ***)slot = arr;
        for (size_t i = 0; i < n; i++) {
            *count = i + 1;
            size_t mark = evt__path_index(p, i);
            ct_status st = decode_value(f, json_array_get(v, i), &arr[i], p, err);
            evt__path_pop(p, mark);
            if (st) return st;
        }
        return CT_OK;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)evt__member(m, f->quantifier_offset) = f->id;
    ct_status st = decode_value(f, v, slot, p, err);
    if (st) return st;
    if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && f->type != PROTOBUF_C_TYPE_STRING &&
        f->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *)evt__member(m, f->quantifier_offset) = 1;
    return CT_OK;
}

/* Decode the known fields of obj into m; unknown keys are ignored, null means absent. */
static ct_status decode_message(ProtobufCMessage *m, const json_t *obj, int skip_oneof,
                                evt__path *p, evt_error *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (skip_oneof && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        char name[64];
        evt__json_name(f->name, name, sizeof name);
        const json_t *v = json_object_get(obj, name);
        if (!v || json_is_null(v)) continue;
        size_t mark = evt__path_push(p, name);
        ct_status st = decode_field(m, f, v, p, err);
        evt__path_pop(p, mark);
        if (st) return st;
    }
    return CT_OK;
}

static int is_event_field(const char *key)
{
    const ProtobufCMessageDescriptor *d = &tower__v1__event__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        char name[64];
        evt__json_name(d->fields[i].name, name, sizeof name);
        if (strcmp(name, key) == 0) return 1;
    }
    return 0;
}

/* Append ", \"key\"" to a list of names for a message, keeping it a valid string when it is full. */
static void list_add(char *list, size_t cap, const char *key)
{
    char q[100];
    size_t o = strlen(list);
    evt__quote(key, q, sizeof q);
    if (o + strlen(q) + 8 >= cap) {
        if (!strstr(list, ", ...")) snprintf(list + o, cap - o, ", ...");
        return;
    }
    snprintf(list + o, cap - o, "%s%s", o ? ", " : "", q);
}

ct_status evt_from_json(evt_event **out, const json_t *obj, evt_error *err)
{
    evt_error scratch;
    evt__path p = {.len = 0};
    evt_event *e = NULL;
    ct_status st;
    char unknown_first[128] = "", list[256] = "";
    int unknown = 0;

    if (!err) err = &scratch;
    evt__err_clear(err);
    if (!obj || !json_is_object(obj))
        return evt__fail(err, EVT_MALFORMED, "", "the event is not a JSON object but %s",
                         obj ? evt__json_kind(obj) : "nothing");
    /* Read the id before anything can fail, so that every dead letter can be traced. */
    const json_t *id = json_object_get(obj, "eventId");
    if (json_is_string(id)) evt__err_event_id(err, json_string_value(id));

    e = ct_malloc(sizeof *e);
    tower__v1__event__init(e);
    st = decode_message(&e->base, obj, 1, &p, err);
    if (st) goto out;

    /* Exactly one known payload; a key of the oneof set to null is absent like any field. */
    const ProtobufCMessageDescriptor *d = &tower__v1__event__descriptor;
    const ProtobufCFieldDescriptor *pf = NULL;
    const json_t *pv = NULL;
    int known = 0;
    char second[64] = "";
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) continue;
        char name[64];
        evt__json_name(f->name, name, sizeof name);
        const json_t *v = json_object_get(obj, name);
        if (!v || json_is_null(v)) continue;
        if (++known == 1) {
            pf = f;
            pv = v;
        } else if (known == 2) {
            snprintf(second, sizeof second, "%s", name);
        }
        list_add(list, sizeof list, name);
    }
    if (known > 1) {
        st = evt__fail(err, EVT_MULTIPLE_PAYLOADS, "", "the event names %d payloads (%s), not one",
                       known, list);
        snprintf(err->field, sizeof err->field, "%s", second);
        goto out;
    }
    if (known == 1) {
        char name[64];
        evt__json_name(pf->name, name, sizeof name);
        size_t mark = evt__path_push(&p, name);
        st = decode_field(&e->base, pf, pv, &p, err);
        evt__path_pop(&p, mark);
        if (st) goto out;
    } else {
        /* An unknown key holding an object is most likely a payload from a newer version. */
        const char *key;
        json_t *v;
        list[0] = '\0';
        json_object_foreach((json_t *)obj, key, v) {
            if (!json_is_object(v) || is_event_field(key)) continue;
            if (unknown++ == 0) snprintf(unknown_first, sizeof unknown_first, "%s", key);
            list_add(list, sizeof list, key);
        }
    }
    st = evt__check(e, err, unknown_first, unknown ? list : NULL);

out:
    if (st != CT_OK) {
        evt_free(e);
        return st;
    }
    *out = e;
    return CT_OK;
}

ct_status evt_from_json_text(evt_event **out, const char *text, size_t len, evt_error *err)
{
    evt_error scratch;
    json_error_t je;

    if (!err) err = &scratch;
    evt__err_clear(err);
    if (len > EVT_MAX_EVENT_BYTES)
        return evt__fail(err, EVT_TOO_LARGE, "", "the event is %zu bytes, over the limit of %d", len,
                         EVT_MAX_EVENT_BYTES);
    size_t deep = text ? ct_json_too_deep(text, len, CT_JSON_MAX_DEPTH) : 0;
    if (deep)
        return evt__fail(err, EVT_TOO_LARGE, "", "the event nests deeper than %d arrays and objects (at byte %zu)",
                         CT_JSON_MAX_DEPTH, deep);
    json_t *root = json_loadb(text ? text : "", text ? len : 0, 0, &je);
    if (!root)
        return evt__fail(err, EVT_MALFORMED, "", "the event is not JSON: %s (line %d, column %d)",
                         je.text, je.line, je.column);
    ct_status st;
    if (!json_is_object(root))
        st = evt__fail(err, EVT_MALFORMED, "", "the event is not a JSON object but %s",
                       evt__json_kind(root));
    else
        st = evt_from_json(out, root, err);
    json_decref(root);
    return st;
}
