/* Parsing the live stream's client messages: {"type":"subscribe",...} and {"type":"resync",...}. */
#include "stream_proto.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int fail(stream_err *err, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(stream_err *err, const char *code, const char *field, const char *fmt, ...)
{
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* A view name: its bit, or -1 (err filled, naming field). */
static int view_bit(const json_t *v, const char *field, stream_err *err)
{
    fold_view fv;
    if (!json_is_string(v)) return fail(err, "INVALID_FIELD", field, "%s: expected a view name (a string)", field);
    if (fold_view_parse(json_string_value(v), &fv) != 0)
        return fail(err, "UNKNOWN_VIEW", field, "%s: no view is called '%.40s'", field, json_string_value(v));
    return 1 << fv;
}

static int subscribe(const json_t *o, stream_req *out, stream_err *err)
{
    out->type = STREAM_REQ_SUBSCRIBE;
    out->views = STREAM_ALL_VIEWS;
    const json_t *views = json_object_get(o, "views");
    if (views && !json_is_null(views)) {
        if (!json_is_array(views))
            return fail(err, "INVALID_FIELD", "views", "views: expected an array of view names");
        if (json_array_size(views) > 64)
            return fail(err, "INVALID_FIELD", "views", "views: at most 64 names");
        out->views = 0;
        for (size_t i = 0; i < json_array_size(views); i++) {
            char field[32];
            snprintf(field, sizeof field, "views[%zu]", i);
            int b = view_bit(json_array_get(views, i), field, err);
            if (b < 0) return -1;
            out->views |= (unsigned)b;
        }
        if (!out->views) return fail(err, "INVALID_FIELD", "views", "views: empty (omit it for every view)");
    }
    const json_t *wh = json_object_get(o, "warehouse");
    if (wh && !json_is_null(wh)) {
        if (!json_is_string(wh)) return fail(err, "INVALID_FIELD", "warehouse", "warehouse: expected a string");
        size_t n = json_string_length(wh);
        if (n > EVT_MAX_ID)
            return fail(err, "INVALID_FIELD", "warehouse", "warehouse: longer than %d bytes", EVT_MAX_ID);
        if (memchr(json_string_value(wh), 0, n))
            return fail(err, "INVALID_FIELD", "warehouse", "warehouse: contains a NUL character");
        memcpy(out->warehouse, json_string_value(wh), n + 1);
    }
    return 0;
}

int stream_req_parse(const char *data, size_t len, stream_req *out, stream_err *err)
{
    memset(out, 0, sizeof *out);
    if (len > STREAM_MAX_CLIENT_MSG)
        return fail(err, "TOO_LARGE", NULL, "message of %zu bytes; at most %d are accepted", len, STREAM_MAX_CLIENT_MSG);
    json_error_t je;
    /* Bounded before parsing: 4 KiB of '[' would overflow a worker thread's stack inside jansson.
     * jansson rejects invalid UTF-8 and NUL in strings unless asked. */
    size_t deep = ct_json_too_deep(data, len, CT_JSON_MAX_DEPTH);
    if (deep)
        return fail(err, "TOO_DEEP", NULL, "the message nests deeper than %d arrays and objects (at byte %zu)",
                    CT_JSON_MAX_DEPTH, deep);
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return fail(err, "INVALID_JSON", NULL, "not JSON: %s (at byte %d)", je.text, je.position);
    int rc = -1;
    const json_t *type = json_object_get(o, "type");
    if (!json_is_object(o)) {
        fail(err, "INVALID_JSON", NULL, "expected a JSON object");
    } else if (!json_is_string(type)) {
        fail(err, "INVALID_FIELD", "type", "type: missing, expected \"subscribe\" or \"resync\"");
    } else if (!strcmp(json_string_value(type), "subscribe")) {
        rc = subscribe(o, out, err);
    } else if (!strcmp(json_string_value(type), "resync")) {
        out->type = STREAM_REQ_RESYNC;
        const json_t *v = json_object_get(o, "view");
        if (!v || json_is_null(v)) {
            out->views = STREAM_ALL_VIEWS;
            rc = 0;
        } else {
            int b = view_bit(v, "view", err);
            if (b >= 0) {
                out->views = (unsigned)b;
                rc = 0;
            }
        }
    } else {
        fail(err, "UNKNOWN_TYPE", "type", "type: '%.40s' is not a message type (subscribe, resync)",
             json_string_value(type));
    }
    json_decref(o);
    return rc;
}
