/* towerd projector and towerd rebuild: the stream folded into the store, live or from scratch. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nats_opts.h"
#include "projector.h"
#include "sla.h"
#include "store_upgrade.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory", 0, 0},
    {"batch", 0, "TOWER_PROJECTOR_BATCH", "projector.batch", CT_OPT_INT, "1000", "N", "events per commit at most", 0, 0},
    {"batch-behind", 0, "TOWER_PROJECTOR_BATCH_BEHIND", "projector.batch_behind", CT_OPT_INT, "0", "N",
     "events per commit at most while behind the stream (0: 10 x --batch; a rebuild: 50 x --batch)", 0, 0},
    {"quiet", 0, "TOWER_PROJECTOR_QUIET", "projector.quiet", CT_OPT_DURATION, "5ms", "DURATION",
     "commit what arrived after this long without more", 0, 0},
    {"consumer", 0, "TOWER_PROJECTOR_CONSUMER", "projector.consumer", CT_OPT_STRING, NULL, "NAME",
     "durable consumer name, one per store (default: tower-<hash of host and store path>)", 0, 0},
    {"sla-rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "SLA rules file (default: the built-in rules; see docs/sla.md)", 0, 0},
};

static const char *const ignore[] = {"server", "sla", "sim", "publish", "relay", NULL};

static const towerd_spec projector_spec = {
    .cmd = "towerd projector",
    .usage = "usage: towerd projector [OPTIONS]\n\n"
             "Consumes TOWER_EVENTS from the store's checkpoint and folds each batch into the store in one\n"
             "LMDB transaction together with the new checkpoint, then publishes change notices\n"
             "(tower.changes.<view>) and dead letters (TOWER_DLQ). Runs until SIGINT or SIGTERM and\n"
             "reconnects on its own. A store of another format (an older build's) is first rebuilt from\n"
             "the stream into a new generation, as towerd rebuild does.\n\n"
             "Exit codes: 0 stopped; 1 failure; 2 usage; 4 the store cannot follow the stream (it was\n"
             "recreated, lost events, or dropped events not yet applied): run towerd rebuild; or a\n"
             "store of another format and no stream to rebuild it from.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
};

static const towerd_spec rebuild_spec = {
    .cmd = "towerd rebuild",
    .usage = "usage: towerd rebuild [OPTIONS]\n\n"
             "Replays the whole events stream into a fresh store generation beside the live one (progress\n"
             "and ETA on stderr), then swaps it in atomically: readers keep answering from the old one\n"
             "meanwhile, and a running projector continues from the new one.\n\n"
             "Exit codes: 0 rebuilt; 1 failure; 2 usage.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
};

/* One run of towerd projector or towerd rebuild: what it holds, released by proj_end. */
typedef struct proj_cmd {
    towerd_ctx c;
    int rebuild;       /* towerd rebuild, else towerd projector */
    sla_rules *rules;  /* the SLA rules the dues are computed with */
    bus *b;            /* the connection */
    char consumer[64]; /* the durable consumer's name */
    char *gen;         /* rebuild: the new generation's directory */
} proj_cmd;

/* The rules, the signals and the connection; the exit code on failure, else TOWERD_CONTINUE. */
static int proj_prepare(proj_cmd *pc)
{
    char *err = NULL;
    if (sla_rules_load(&pc->rules, ct_config_str(pc->c.cfg, "sla-rules"), &err) != CT_OK) {
        fprintf(stderr, "%s: %s\n", pc->c.cmd, err);
        free(err);
        return TOWERD_EXIT_USAGE;
    }
    towerd_handle_signals();
    bus_opts bo;
    towerd_bus_opts(pc->c.cfg, &bo, pc->c.cmd);
    bo.wait_connect = !pc->rebuild;
    bo.connect_async = !pc->rebuild; /* projector_run waits for the connection, stoppable */
    return bus_connect(&pc->b, &bo) == CT_OK ? TOWERD_CONTINUE : TOWERD_EXIT_FAIL;
}

/* Each store needs its own consumer (a projector recreates its consumer at start): --consumer, else one
   named after this host and store, so that two projectors on one stream never share one. */
static void proj_consumer(proj_cmd *pc, const char *data)
{
    const char *flag = ct_config_str(pc->c.cfg, "consumer");
    if (flag) {
        snprintf(pc->consumer, sizeof pc->consumer, "%s", flag);
        return;
    }
    mkdir(data, 0755); /* so that the path resolves the same on the first run and after */
    char *name = towerd_consumer_name(pc->rebuild ? "rebuild" : "projector", data);
    snprintf(pc->consumer, sizeof pc->consumer, "%s", name);
    free(name);
}

/* The applied sequence of a store (dir, or a flat generation) and the stream it follows (the stream's
 * creation time), or zeros. */
static void applied_of(const char *dir, int flat, uint64_t *seq, uint64_t *stream_created)
{
    store *s = NULL;
    store_opts so = {.dir = dir, .read_only = 1, .flat = flat};
    *seq = *stream_created = 0;
    if (store_open(&s, &so) != CT_OK) return;
    store_reader *r = NULL;
    if (store_reader_begin(s, &r) == CT_OK) {
        store_stats ss;
        store_reader_stats(r, &ss);
        *seq = ss.applied_seq;
        *stream_created = store_reader_meta(r, PROJECTOR_META_STREAM_CREATED);
        store_reader_end(r);
    }
    store_close(s);
}

/* While the rebuild replayed, a live projector went on: replay on until the new generation has reached the
 * live one, so that the swap never shows the past. Each round replays what the live one applied meanwhile
 * (fewer events each time while the rebuild is faster than the traffic); after CATCH_UP_ROUNDS the swap
 * happens anyway: readers keep the old generation until the new one has caught up, and the live projector
 * follows the swap within a second. A live store of another stream (the stream was recreated: the reason
 * for this rebuild) is not chased, and nothing beyond the stream's last message is waited for. */
#define CATCH_UP_ROUNDS 50
static int catch_up(proj_cmd *pc, projector_opts *po, const char *data)
{
    for (int round = 0; round < CATCH_UP_ROUNDS && !towerd_stop; round++) {
        bus_stream_state st;
        uint64_t live, live_stream, mine, mine_stream;
        if (bus_stream_info(pc->b, &st) != CT_OK) return PROJECTOR_OK;
        applied_of(data, 0, &live, &live_stream);
        applied_of(pc->gen, 1, &mine, &mine_stream);
        if (live_stream != (uint64_t)st.created_ns) return PROJECTOR_OK;
        uint64_t target = live < st.last_seq ? live : st.last_seq;
        if (mine >= target) {
            if (round) ct_log(CT_LOG_INFO, "rebuild", "caught up with the live store at sequence %" PRIu64, mine);
            return PROJECTOR_OK;
        }
        ct_log(CT_LOG_INFO, "rebuild", "the live store applied up to %" PRIu64 " meanwhile (rebuilt: %" PRIu64
               "): replaying on", target, mine);
        po->stop_at_seq = target;
        po->progress = 0;
        int rc = projector_run(pc->b, po, &towerd_stop, NULL);
        if (rc != PROJECTOR_OK) return rc;
    }
    return PROJECTOR_OK;
}

/* One replay of the stream into gen (towerd_replay_fn): up to its last message, then catching up with the
 * live store. */
typedef struct replay_ctx {
    proj_cmd *pc;
    projector_opts *po;
    const char *data;
    uint64_t last_seq;
} replay_ctx;

static int replay(void *vctx, const char *gen, int64_t trend_hint)
{
    replay_ctx *r = vctx;
    r->po->data_dir = gen;
    r->po->flat = 1;
    r->po->stop_at_seq = r->last_seq;
    r->po->progress = 1;
    r->po->trend_drop_before_ns = trend_hint;
    int rc = projector_run(r->pc->b, r->po, &towerd_stop, NULL);
    if (rc == PROJECTOR_OK) rc = catch_up(r->pc, r->po, r->data);
    return rc;
}

/* Replay the stream into a new generation, then swap it in. */
static int rebuild(proj_cmd *pc, projector_opts *po)
{
    const char *data = po->data_dir;
    bus_stream_state st;
    ct_status s = bus_stream_info(pc->b, &st);
    if (s == CT_NOT_FOUND) {
        fprintf(stderr, "towerd rebuild: there is no %s stream to rebuild from\n", BUS_EVENTS_STREAM);
        return TOWERD_EXIT_FAIL;
    }
    if (s != CT_OK || store_rebuild_begin(data, &pc->gen) != CT_OK) return TOWERD_EXIT_FAIL;
    ct_log(CT_LOG_INFO, "rebuild", "replaying %s (sequences %" PRIu64 "..%" PRIu64 ", %" PRIu64 " messages) into %s",
           BUS_EVENTS_STREAM, st.first_seq, st.last_seq, st.msgs, pc->gen);
    int rc;
    if (st.msgs == 0) {
        rc = towerd_empty_generation(pc->gen, &st, sla_rules_fold(pc->rules)) == CT_OK ? PROJECTOR_OK
                                                                                       : TOWERD_EXIT_FAIL;
    } else {
        replay_ctx r = {pc, po, data, st.last_seq};
        rc = towerd_replay_hinted(pc->b, &st, pc->gen, replay, &r, &towerd_stop);
    }
    if (rc != PROJECTOR_OK) return rc;
    if (towerd_stop) {
        fprintf(stderr, "towerd rebuild: interrupted; the live store is untouched (partial generation left in %s)\n",
                pc->gen);
        return TOWERD_EXIT_FAIL;
    }
    if (store_rebuild_commit(data, pc->gen) != CT_OK) return TOWERD_EXIT_FAIL;
    ct_log(CT_LOG_INFO, "rebuild", "swapped in the rebuilt store: %s/current -> %s", data, strrchr(pc->gen, '/') + 1);
    return TOWERD_EXIT_OK;
}

/* Upgrades: a store of another format than this build's (an older build's) is rebuilt from the stream into a
 * new generation, as towerd rebuild does, before projecting goes on into it; servers of a build that reads the
 * old generation keep answering from it until the swap. TOWERD_CONTINUE to go on projecting, else the exit
 * code (4 when there is no stream to rebuild from). */
static int upgrade_store(proj_cmd *pc, const projector_opts *live)
{
    if (!towerd_store_is_old(live->data_dir)) return TOWERD_CONTINUE;
    ct_log(CT_LOG_WARN, "projector", "the store %s has another format than this build's (version %d): rebuilding it "
           "from the stream into a new generation, then projecting on from there", live->data_dir, STORE_FORMAT_VERSION);
    bus_stream_state st;
    ct_status got = towerd_wait_stream(pc->b, &st, &towerd_stop);
    if (towerd_stop) return TOWERD_EXIT_OK;
    if (got == CT_NOT_FOUND) {
        ct_log(CT_LOG_ERROR, "projector", "there is no %s stream to rebuild the store from: move %s aside to start "
               "afresh, or use the towerd build that wrote it", BUS_EVENTS_STREAM, live->data_dir);
        return TOWERD_EXIT_REBUILD;
    }
    projector_opts po = *live;
    po.notify = 0;
    po.dead_letter_stream = 0;
    char own[64];
    snprintf(own, sizeof own, "%s", pc->consumer);
    if (!ct_config_str(pc->c.cfg, "consumer")) {
        char *name = towerd_consumer_name("rebuild", live->data_dir);
        snprintf(pc->consumer, sizeof pc->consumer, "%s", name);
        free(name);
    }
    pc->rebuild = 1;
    int rc = rebuild(pc, &po);
    pc->rebuild = 0;
    snprintf(pc->consumer, sizeof pc->consumer, "%s", own);
    if (rc != TOWERD_EXIT_OK) return rc;
    ct_log(CT_LOG_INFO, "projector", "the store was rebuilt in this build's format; projecting on");
    return TOWERD_CONTINUE;
}

static int run(int argc, char **argv, int rebuilding)
{
    proj_cmd pc = {.rebuild = rebuilding};
    int rc = towerd_start(&pc.c, rebuilding ? &rebuild_spec : &projector_spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    int64_t batch = ct_config_int(pc.c.cfg, "batch"), behind = ct_config_int(pc.c.cfg, "batch-behind");
    if (batch > PROJECTOR_BATCH_MAX || behind > PROJECTOR_BATCH_MAX) {
        fprintf(stderr, "%s: %s: at most %d events per commit\n", pc.c.cmd,
                batch > PROJECTOR_BATCH_MAX ? "--batch" : "--batch-behind", PROJECTOR_BATCH_MAX);
        towerd_end(&pc.c);
        return TOWERD_EXIT_USAGE;
    }
    rc = proj_prepare(&pc);
    if (rc == TOWERD_CONTINUE) {
        const char *data = ct_config_str(pc.c.cfg, "data");
        proj_consumer(&pc, data);
        projector_opts po = {.data_dir = data,
                             .consumer = pc.consumer,
                             .batch = (size_t)ct_config_int(pc.c.cfg, "batch"),
                             .batch_behind = (size_t)ct_config_int(pc.c.cfg, "batch-behind"),
                             .quiet_ms = ct_config_duration_ns(pc.c.cfg, "quiet") / 1000000,
                             .notify = !rebuilding,
                             .dead_letter_stream = !rebuilding,
                             .sla_rules = sla_rules_fold(pc.rules)};
        if (!rebuilding) ct_log(CT_LOG_INFO, "projector", "store %s", data);
        rc = rebuilding ? TOWERD_CONTINUE : upgrade_store(&pc, &po);
        if (rc == TOWERD_CONTINUE) rc = rebuilding ? rebuild(&pc, &po) : projector_run(pc.b, &po, &towerd_stop, NULL);
    }
    free(pc.gen);
    bus_close(pc.b);
    sla_rules_destroy(pc.rules);
    towerd_end(&pc.c);
    return rc;
}

int towerd_projector(int argc, char **argv) { return run(argc, argv, 0); }
int towerd_rebuild(int argc, char **argv) { return run(argc, argv, 1); }
