/* A rebuild's trend hint (store_opts.trend_drop_before_ns): guessed from the stream's last messages, checked
 * against the trend clock the rebuilt store ends with (projector.h). */
#include <inttypes.h>

#include "projector.h"

/* How many messages back from the stream's end the guess looks at. */
#define GUESS_MESSAGES 32

static int64_t occurred_ns(const evt_event *e)
{
    return e->occurred_at ? e->occurred_at->seconds * 1000000000LL + e->occurred_at->nanos : 0;
}

int64_t projector_trend_guess(bus *b, const bus_stream_state *st)
{
    if (!st->last_seq || st->last_seq < st->first_seq) return 0;
    uint64_t from = st->last_seq - st->first_seq >= GUESS_MESSAGES ? st->last_seq - GUESS_MESSAGES + 1 : st->first_seq;
    if (!from) from = 1;
    bus_batch msgs;
    /* What was read before NATS stopped answering is guessed from; deleted messages are left out. */
    if (bus_stream_read(b, from, st->last_seq, GUESS_MESSAGES, 10000, &msgs) != CT_OK) return 0;
    int64_t occ[GUESS_MESSAGES];
    size_t n = 0;
    for (size_t i = 0; i < msgs.n && n < GUESS_MESSAGES; i++) {
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_protobuf(&e, msgs.v[i].data, msgs.v[i].len, &err) != CT_OK) continue; /* a dead letter */
        occ[n++] = occurred_ns(e);
        evt_free(e);
    }
    bus_batch_free(&msgs);
    return store_trend_guess(occ, n);
}

int projector_trend_guess_held(const char *gen, int64_t hint_ns)
{
    store *s = NULL;
    store_opts so = {.dir = gen, .flat = 1, .read_only = 1};
    if (store_open(&s, &so) != CT_OK) return -1;
    store_reader *r = NULL;
    int held = -1;
    if (store_reader_begin(s, &r) == CT_OK) {
        int64_t clock = store_reader_trend_clock(r);
        held = store_trend_hint_held(hint_ns, clock);
        store_reader_end(r);
        char h[48], c[48];
        evt_time_format(hint_ns / 1000000000LL, 0, h);
        evt_time_format(clock / 1000000000LL, (int32_t)(clock % 1000000000LL), c);
        if (held)
            ct_log(CT_LOG_INFO, "rebuild", "the trend clock ended at %s: the trend rows before %s, not closed on the "
                   "way, are dropped anyway", c, h);
        else
            ct_log(CT_LOG_WARN, "rebuild", "the trend clock ended at %s, less than 48 hours after %s: trend rows that "
                   "are kept were not closed (the stream's last events are dated later than the trend clock reached)",
                   c, h);
    }
    store_close(s);
    return held;
}
