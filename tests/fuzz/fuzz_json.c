/* libFuzzer target: the JSON side of the event codec (one event as text, the NDJSON / array reader
 * over a memory buffer, RFC 3339 times). Besides crashes it checks two invariants: a valid event
 * survives JSON -> event -> canonical JSON -> event unchanged (same canonical protobuf bytes), and a
 * parsed time formats to a text that parses back to the same instant. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evt.h"
#include "small_stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
        abort();
    }
}

static void check_error(const evt_error *err)
{
    check(err->code > EVT_OK && err->code < EVT_CODE_COUNT, "a rejection has a code");
    check(memchr(err->message, 0, sizeof err->message) != NULL, "the message is terminated");
    check(memchr(err->field, 0, sizeof err->field) != NULL, "the field is terminated");
    check(memchr(err->event_id, 0, sizeof err->event_id) != NULL, "the event id is terminated");
}

/* A valid event encodes to JSON that decodes to the same event (compared by canonical bytes). */
static void roundtrip(const evt_event *e)
{
    ct_buf a = {0}, b = {0};
    evt_pack(e, &a);
    json_t *j = evt_to_json(e);
    check(j != NULL, "evt_to_json gives an object");
    char *txt = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    check(txt != NULL, "the canonical JSON dumps");
    evt_event *again = NULL;
    evt_error err;
    ct_status st = evt_from_json_text(&again, txt, strlen(txt), &err);
    if (st != CT_OK) fprintf(stderr, "canonical JSON %s rejected: %s\n", txt, err.message);
    check(st == CT_OK, "the canonical JSON of a valid event is valid");
    evt_pack(again, &b);
    check(a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len)), "JSON round trip keeps the event");
    evt_event *pb = NULL;
    st = evt_from_protobuf(&pb, (const uint8_t *)a.data, a.len, &err);
    check(st == CT_OK, "the canonical protobuf of a valid event is valid");
    evt_free(pb);
    evt_free(again);
    free(txt);
    ct_buf_free(&a);
    ct_buf_free(&b);
}

static void times(const uint8_t *data, size_t size)
{
    char s[80];
    if (size >= sizeof s) return;
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t sec = 0;
    int32_t nanos = 0;
    if (evt_time_parse(s, &sec, &nanos) != 0) return;
    check(nanos >= 0 && nanos <= 999999999, "nanos in range");
    char out[48];
    evt_time_format(sec, nanos, out);
    int64_t sec2 = -1;
    int32_t nanos2 = -1;
    check(evt_time_parse(out, &sec2, &nanos2) == 0, "a formatted time parses");
    check(sec == sec2 && nanos == nanos2, "a formatted time parses to the same instant");
}

static int one_input(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    evt_event *e = NULL;
    evt_error err;
    if (evt_from_json_text(&e, text, size, &err) == CT_OK) {
        check(e != NULL, "an accepted event is returned");
        roundtrip(e);
        evt_free(e);
    } else {
        check(e == NULL, "a rejected event leaves out untouched");
        check_error(&err);
    }

    evt_reader *r = NULL;
    if (evt_reader_open_mem(&r, text, size) == CT_OK) {
        evt_record rec;
        int got;
        size_t n = 0;
        while ((got = evt_reader_next(r, &rec)) == 1) {
            check(rec.raw != NULL, "a record has its raw bytes");
            if (rec.event) {
                roundtrip(rec.event);
                evt_free(rec.event);
            } else {
                check_error(&rec.error);
            }
            check(++n <= size + 1, "the reader ends");
        }
        if (got < 0) check_error(&rec.error);
        evt_reader_destroy(r);
    }
    times(data, size);
    return 0;
}

/* On a thread with a civetweb worker's stack, where the server runs this code. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_on_small_stack(one_input, data, size);
    return 0;
}
