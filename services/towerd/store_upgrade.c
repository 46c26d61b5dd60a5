/* Rebuilding a store from the stream: the steps towerd projector/rebuild and towerd up share. */
#include "store_upgrade.h"

#include <unistd.h>

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
