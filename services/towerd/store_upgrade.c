/* Rebuilding a store from the stream: the steps towerd projector/rebuild and towerd up share. */
#include "store_upgrade.h"

#include <unistd.h>

#include "projector.h"
#include "store.h"

int towerd_store_is_old(const char *dir)
{
    store *s = NULL;
    store_opts so = {.dir = dir, .read_only = 1, .probe = 1}; /* a new store is no error */
    ct_status st = store_open(&s, &so);
    store_close(s);
    return st == CT_STORE_VERSION;
}

ct_status towerd_wait_stream(bus *b, bus_stream_state *st, volatile sig_atomic_t *stop)
{
    ct_status got;
    while ((got = bus_stream_info(b, st)) != CT_OK && got != CT_NOT_FOUND && !*stop) usleep(250000);
    return *stop ? CT_BUS : got;
}

ct_status towerd_empty_generation(const char *gen, const bus_stream_state *st, const fold_sla_rules *rules)
{
    store *s = NULL;
    store_opts so = {.dir = gen, .flat = 1, .sla_rules = rules};
    if (store_open(&s, &so) != CT_OK) return CT_IO;
    store_meta meta[] = {{"applied_seq", st->last_seq}, {PROJECTOR_META_STREAM_CREATED, (uint64_t)st->created_ns},
                         {PROJECTOR_META_STREAM_LAST, st->last_seq}};
    ct_status as = store_apply_meta(s, NULL, 0, ct_now_ns(), NULL, NULL, meta, 3);
    store_close(s);
    return as;
}

/* The rebuild's trend hint: a guess checked after the replay rather than a pre-pass over the stream computing
 * the final trend clock exactly (which would read and decode the whole stream once more, and keep every eventId
 * to know which copies are applied). The guess costs 32 JetStream requests and holds unless the stream ends
 * with events dated well ahead of the rest; when it does not, the replay is done twice. */
int towerd_replay_hinted(bus *b, const bus_stream_state *st, const char *gen, towerd_replay_fn fn, void *ctx,
                         volatile sig_atomic_t *stop)
{
    int64_t hint = projector_trend_guess(b, st);
    if (hint) {
        char h[48];
        evt_time_format(hint / 1000000000LL, 0, h);
        ct_log(CT_LOG_INFO, "rebuild", "the trend rows before %s (about 48 hours before the stream's last "
               "events) are not closed on the way: they are dropped at the end", h);
    }
    int rc = fn(ctx, gen, hint);
    if (rc != PROJECTOR_OK || *stop || !hint) return rc;
    int held = projector_trend_guess_held(gen, hint);
    if (held < 0) return PROJECTOR_FAIL;
    if (held) return rc;
    ct_log(CT_LOG_WARN, "rebuild", "replaying again without skipping trend rows, into %s emptied", gen);
    if (store_rebuild_reset(gen) != CT_OK) return PROJECTOR_FAIL;
    return fn(ctx, gen, 0);
}
