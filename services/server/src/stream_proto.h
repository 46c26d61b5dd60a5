/* The live stream's client messages (pure: no I/O), parsed and bounded before the server acts on them. */
#ifndef STREAM_PROTO_H
#define STREAM_PROTO_H

#include <stddef.h>

#include "evt.h"
#include "fold.h"

/** The largest client message accepted, in bytes (a subscribe names at most every view). */
#define STREAM_MAX_CLIENT_MSG 4096

typedef enum stream_req_type {
    STREAM_REQ_SUBSCRIBE, /**< replace the subscription: views and warehouse */
    STREAM_REQ_RESYNC     /**< send fresh snapshots (one view, or all subscribed) */
} stream_req_type;

/** A parsed client message. */
typedef struct stream_req {
    stream_req_type type;
    unsigned views;                  /**< bit (1 << fold_view): subscribe's views (all when absent); resync's view */
    char warehouse[EVT_MAX_ID + 1];  /**< subscribe's warehouse filter ("" for all) */
} stream_req;

/** Why a client message was refused: a machine code, the JSON path of the field, a message. */
typedef struct stream_err {
    const char *code;   /**< INVALID_JSON, TOO_LARGE, INVALID_FIELD, UNKNOWN_TYPE, UNKNOWN_VIEW */
    char field[32];     /**< e.g. "views[2]" ("" when the message as a whole is wrong) */
    char message[160];
} stream_err;

/** The bit of every view. */
#define STREAM_ALL_VIEWS ((1u << FOLD_VIEW_COUNT) - 1)

/**
 * \brief Parse one client message (len bytes, not necessarily NUL-terminated).
 * \return 0 and *out filled, or -1 and *err filled.
 */
int stream_req_parse(const char *data, size_t len, stream_req *out, stream_err *err);

#endif
