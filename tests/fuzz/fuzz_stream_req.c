/* libFuzzer target: the live stream's client messages (stream_req_parse): subscribe and resync. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_proto.h"
#include "small_stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_stream_req: invariant broken: %s\n", what);
        abort();
    }
}

static int one_input(const uint8_t *data, size_t size)
{
    stream_req rq;
    stream_err err;
    memset(&err, 0, sizeof err);
    int rc = stream_req_parse((const char *)data, size, &rq, &err);
    if (rc == 0) {
        check(rq.type == STREAM_REQ_SUBSCRIBE || rq.type == STREAM_REQ_RESYNC, "a known type");
        check(rq.views && !(rq.views & ~STREAM_ALL_VIEWS), "views are some of ours");
        check(memchr(rq.warehouse, 0, sizeof rq.warehouse) != NULL, "the warehouse is terminated");
        check(size <= STREAM_MAX_CLIENT_MSG, "an accepted message is within the limit");
    } else {
        check(rc == -1, "failure is -1");
        check(err.code != NULL, "a refusal has a code");
        check(memchr(err.message, 0, sizeof err.message) && memchr(err.field, 0, sizeof err.field), "terminated texts");
    }
    return 0;
}

/* On a thread with a civetweb worker's stack, where the server runs this code. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_on_small_stack(one_input, data, size);
    return 0;
}
