/* towerd status: the projector's figures from the store (and the stream's, given --nats). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats_opts.h"
#include "projector.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory", 0, 0},
    {"json", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "print JSON", 0, 0},
    {"no-nats", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "do not ask NATS for the stream's last sequence", 0, 0},
};

/* Ask NATS for the stream's last sequence into *last: 1 done; -1 NATS unreachable, -2 no stream state from it
   (either said on stderr). */
static int stream_last(const ct_config *cfg, bus **b, uint64_t *last)
{
    bus_opts bo;
    towerd_bus_opts(cfg, &bo, "towerd status");
    if (bus_connect(b, &bo) != CT_OK) {
        *b = NULL;
        fprintf(stderr, "towerd status: NATS unreachable (%s): the stream's figures are as of the last commit\n",
                ct_config_str(cfg, "nats"));
        return -1;
    }
    bus_stream_state st;
    if (bus_stream_info(*b, &st) != CT_OK) {
        fprintf(stderr, "towerd status: NATS did not tell the stream's state: its figures are as of the last commit\n");
        return -2;
    }
    *last = st.last_seq;
    return 1;
}

int towerd_status(int argc, char **argv)
{
    size_t ndefs;
    ct_opt_def *defs = towerd_defs_concat(own_defs, sizeof own_defs / sizeof own_defs[0], &ndefs);
    ct_config *cfg = NULL;
    char **args = NULL;
    int nargs = 0, help = 0, rc = TOWERD_EXIT_FAIL;
    static const char *const ignore[] = {"server", "sla", "sim", "publish", "projector", NULL};
    store *s = NULL;
    bus *b = NULL;
    if (ct_config_parse(&cfg, "towerd status",
                        "usage: towerd status [OPTIONS]\n\n"
                        "Prints the projector's figures kept in the store: applied sequence, the stream's last\n"
                        "sequence (asked of NATS unless --no-nats), lag, events, duplicates, dead letters, last\n"
                        "commit time and rate.\n\n"
                        "Exit codes: 0 printed; 1 no store or failure, or NATS unreachable (the store's figures\n"
                        "are printed all the same); 2 usage.",
                        defs, ndefs, ignore, argc, argv, &args, &nargs, &help) != CT_OK) {
        free(defs);
        return TOWERD_EXIT_USAGE;
    }
    if (help) {
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    store_opts so = {.dir = ct_config_str(cfg, "data"), .read_only = 1};
    if (store_open(&s, &so) != CT_OK) goto out;
    store_reader *r = NULL;
    if (store_reader_begin(s, &r) != CT_OK) goto out;
    store_stats ss;
    store_reader_stats(r, &ss);
    uint64_t last = store_reader_meta(r, PROJECTOR_META_STREAM_LAST);
    int64_t commit = (int64_t)store_reader_meta(r, PROJECTOR_META_COMMIT_NS);
    double rate = (double)store_reader_meta(r, PROJECTOR_META_RATE) / 1000.0;
    store_reader_end(r);
    /* live: 1 the stream's last sequence is NATS's, 0 not asked (--no-nats), < 0 NATS could not tell. */
    static const char *const nats_state[] = {"error", "unreachable", "off", "ok"};
    int live = 0;
    if (!ct_config_bool(cfg, "no-nats")) live = stream_last(cfg, &b, &last);
    uint64_t lag = last > ss.applied_seq ? last - ss.applied_seq : 0;
    char when[48] = "";
    if (commit) evt_time_format(commit / 1000000000LL, (int32_t)(commit % 1000000000LL), when);
    if (ct_config_bool(cfg, "json")) {
        printf("{\"appliedSeq\":%" PRIu64 ",\"streamLastSeq\":%" PRIu64 ",\"streamLastSeqLive\":%s,\"nats\":\"%s\""
               ",\"lag\":%" PRIu64 ",\"events\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"deadLetters\":%" PRIu64
               ",\"lastCommit\":%s%s%s,\"eventsPerSecond\":%.1f}\n",
               ss.applied_seq, last, live > 0 ? "true" : "false", nats_state[live + 2], lag, ss.events, ss.duplicates,
               ss.dead_letters, commit ? "\"" : "", commit ? when : "null", commit ? "\"" : "", rate);
    } else {
        printf("applied sequence   %" PRIu64 "\nstream last seq    %" PRIu64 "%s\nlag                %" PRIu64
               "\nevents             %" PRIu64 "\nduplicates         %" PRIu64 "\ndead letters       %" PRIu64
               "\nlast commit        %s\nevents/s           %.1f\n",
               ss.applied_seq, last, live > 0 ? "" : live == -1 ? " (as of the last commit: NATS unreachable)"
                                                               : " (as of the last commit)",
               lag, ss.events, ss.duplicates, ss.dead_letters, commit ? when : "-", rate);
    }
    /* What the store knows is printed all the same; without NATS's figures it is not a full answer. */
    rc = live < 0 ? TOWERD_EXIT_FAIL : TOWERD_EXIT_OK;
out:
    bus_close(b);
    store_close(s);
    ct_config_destroy(cfg);
    free(defs);
    return rc;
}
