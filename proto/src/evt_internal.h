/* Internals shared by the codec's files: error filling, JSON paths and names, descriptor walking. */
#ifndef EVT_INTERNAL_H
#define EVT_INTERNAL_H

#include "evt.h"

/** A JSON path being built while walking a message ("routePlanned.stops[2].eta"). */
typedef struct evt__path {
    char s[128]; /**< NUL-terminated; silently truncated when a path would not fit */
    size_t len;  /**< bytes used in s */
} evt__path;

/** \brief Append ".name" (or "name" at the root); returns the length to restore with evt__path_pop. */
size_t evt__path_push(evt__path *p, const char *name);
/** \brief Append "[i]"; returns the length to restore. */
size_t evt__path_index(evt__path *p, size_t i);
/** \brief Cut the path back to a length returned by a push. */
void evt__path_pop(evt__path *p, size_t len);

/**
 * \brief Fill *err (which may be NULL) with code, field and the sentence
 * `field "<path>": <fmt...>` (or just fmt when path is empty), keeping
 * err->event_id. \return CT_INVALID, so that callers can `return evt__fail(...)`.
 */
ct_status evt__fail(evt_error *err, evt_code code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** \brief Clear *err to EVT_OK with empty strings; NULL is a no-op. */
void evt__err_clear(evt_error *err);

/** \brief Record the eventId for error reports (truncated to EVT_MAX_EVENT_ID bytes). */
void evt__err_event_id(evt_error *err, const char *id);

/** \brief Quote a value for an error message: "\"abc\"", cut at about 60 bytes with "...". */
void evt__quote(const char *s, char *out, size_t cap);

/** \brief The lowerCamelCase JSON name of a proto field name ("qty_short" -> "qtyShort"). */
void evt__json_name(const char *proto_name, char *out, size_t cap);

/** \brief "an object", "a string", "a number", ... for error messages. */
const char *evt__json_kind(const json_t *v);

/** \brief The names of an enum's values but the *_UNSPECIFIED zero, comma-separated. */
void evt__enum_names(const ProtobufCEnumDescriptor *ed, char *out, size_t cap);

/** \brief 1 if field f of message m is present (oneof members: only the selected one). */
int evt__field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f);

/** \brief Address of field f's storage (or of its array pointer when repeated) inside m. */
static inline void *evt__member(const ProtobufCMessage *m, unsigned offset)
{
    return (char *)m + offset;
}

/**
 * \brief evt_validate, plus what only the decoder knows: when the event names
 * no known payload and unknown_list is not NULL, the error is UNKNOWN_PAYLOAD
 * with field unknown_field and unknown_list quoted in the message, instead of
 * NO_PAYLOAD. Running every path through this one function keeps the order of
 * checks, and so the reported error, the same for JSON and protobuf input.
 */
ct_status evt__check(evt_event *e, evt_error *err, const char *unknown_field,
                     const char *unknown_list);

#endif
