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

static const char *const ignore[] = {"server", "sla", "sim", "publish", "projector", "relay", NULL};

static const towerd_spec spec = {
    .cmd = "towerd status",
    .usage = "usage: towerd status [OPTIONS]\n\n"
             "Prints the projector's figures kept in the store: applied sequence, the stream's last\n"
             "sequence (asked of NATS unless --no-nats), lag, events, duplicates, dead letters, last\n"
             "commit time and rate.\n\n"
             "Exit codes: 0 printed; 1 no store or failure, or NATS unreachable (the store's figures\n"
             "are printed all the same); 2 usage.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
};

/* The figures the store keeps. */
typedef struct figures {
    store_stats ss;
    uint64_t last;  /* the stream's last sequence: as of the last commit, or NATS's */
    int64_t commit; /* the last commit's time (ns), 0 if none */
    double rate;    /* events per second */
} figures;

static ct_status read_figures(const char *dir, figures *f)
{
    store *s = NULL;
    store_reader *r = NULL;
    store_opts so = {.dir = dir, .read_only = 1};
    ct_status st = store_open(&s, &so);
    if (st == CT_OK) st = store_reader_begin(s, &r);
    if (st == CT_OK) {
        store_reader_stats(r, &f->ss);
        f->last = store_reader_meta(r, PROJECTOR_META_STREAM_LAST);
        f->commit = (int64_t)store_reader_meta(r, PROJECTOR_META_COMMIT_NS);
        f->rate = (double)store_reader_meta(r, PROJECTOR_META_RATE) / 1000.0;
        store_reader_end(r);
    }
    store_close(s);
    return st;
}

/* live: 1 the stream's last sequence is NATS's, 0 not asked (--no-nats), < 0 NATS could not tell. */
static void print_figures(const figures *f, int live, int json)
{
    static const char *const nats_state[] = {"error", "unreachable", "off", "ok"};
    const store_stats *ss = &f->ss;
    uint64_t lag = f->last > ss->applied_seq ? f->last - ss->applied_seq : 0;
    char when[48] = "";
    if (f->commit) evt_time_format(f->commit / 1000000000LL, (int32_t)(f->commit % 1000000000LL), when);
    if (json) {
        printf("{\"appliedSeq\":%" PRIu64 ",\"streamLastSeq\":%" PRIu64 ",\"streamLastSeqLive\":%s,\"nats\":\"%s\""
               ",\"lag\":%" PRIu64 ",\"events\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"deadLetters\":%" PRIu64
               ",\"lastCommit\":%s%s%s,\"eventsPerSecond\":%.1f}\n",
               ss->applied_seq, f->last, live > 0 ? "true" : "false", nats_state[live + 2], lag, ss->events,
               ss->duplicates, ss->dead_letters, f->commit ? "\"" : "", f->commit ? when : "null",
               f->commit ? "\"" : "", f->rate);
    } else {
        printf("applied sequence   %" PRIu64 "\nstream last seq    %" PRIu64 "%s\nlag                %" PRIu64
               "\nevents             %" PRIu64 "\nduplicates         %" PRIu64 "\ndead letters       %" PRIu64
               "\nlast commit        %s\nevents/s           %.1f\n",
               ss->applied_seq, f->last, live > 0 ? "" : live == -1 ? " (as of the last commit: NATS unreachable)"
                                                                   : " (as of the last commit)",
               lag, ss->events, ss->duplicates, ss->dead_letters, f->commit ? when : "-", f->rate);
    }
}

int towerd_status(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    figures f = {0};
    bus *b = NULL;
    rc = TOWERD_EXIT_FAIL;
    if (read_figures(ct_config_str(c.cfg, "data"), &f) == CT_OK) {
        int live = 0;
        if (!ct_config_bool(c.cfg, "no-nats")) live = stream_last(c.cfg, &b, &f.last);
        print_figures(&f, live, ct_config_bool(c.cfg, "json"));
        /* What the store knows is printed all the same; without NATS's figures it is not a full answer. */
        rc = live < 0 ? TOWERD_EXIT_FAIL : TOWERD_EXIT_OK;
    }
    bus_close(b);
    towerd_end(&c);
    return rc;
}
