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
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory", 0, 0},
    {"batch", 0, "TOWER_PROJECTOR_BATCH", "projector.batch", CT_OPT_INT, "1000", "N", "events per commit at most", 0, 0},
    {"quiet", 0, "TOWER_PROJECTOR_QUIET", "projector.quiet", CT_OPT_DURATION, "5ms", "DURATION",
     "commit what arrived after this long without more", 0, 0},
    {"consumer", 0, "TOWER_PROJECTOR_CONSUMER", "projector.consumer", CT_OPT_STRING, NULL, "NAME",
     "durable consumer name, one per store (default: tower-<hash of host and store path>)", 0, 0},
    {"sla-rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "SLA rules file (default: the built-in rules; see docs/sla.md)", 0, 0},
};

static const char *const ignore[] = {"server", "sla", "sim", "publish", NULL};

static int run(int argc, char **argv, int rebuild)
{
    size_t ndefs;
    ct_opt_def *defs = towerd_defs_concat(own_defs, sizeof own_defs / sizeof own_defs[0], &ndefs);
    ct_config *cfg = NULL;
    char **args = NULL;
    int nargs = 0, help = 0, rc = TOWERD_EXIT_FAIL;
    bus *b = NULL;
    char *gen = NULL;
    sla_rules *rules = NULL;
    const char *usage = rebuild
        ? "usage: towerd rebuild [OPTIONS]\n\n"
          "Replays the whole events stream into a fresh store generation beside the live one (progress\n"
          "and ETA on stderr), then swaps it in atomically: readers keep answering from the old one\n"
          "meanwhile, and a running projector continues from the new one.\n\n"
          "Exit codes: 0 rebuilt; 1 failure; 2 usage."
        : "usage: towerd projector [OPTIONS]\n\n"
          "Consumes TOWER_EVENTS from the store's checkpoint and folds each batch into the store in one\n"
          "LMDB transaction together with the new checkpoint, then publishes change notices\n"
          "(tower.changes.<view>) and dead letters (TOWER_DLQ). Runs until SIGINT or SIGTERM and\n"
          "reconnects on its own.\n\n"
          "Exit codes: 0 stopped; 1 failure; 2 usage; 4 the store cannot follow the stream (it was\n"
          "recreated, lost events, or dropped events not yet applied): run towerd rebuild.";
    if (ct_config_parse(&cfg, rebuild ? "towerd rebuild" : "towerd projector", usage, defs, ndefs, ignore, argc, argv,
                        &args, &nargs, &help) != CT_OK) {
        free(defs);
        return TOWERD_EXIT_USAGE;
    }
    if (help) {
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    if (nargs) {
        fprintf(stderr, "towerd %s: unexpected argument '%s'\n", rebuild ? "rebuild" : "projector", args[0]);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    char *rules_err = NULL;
    if (sla_rules_load(&rules, ct_config_str(cfg, "sla-rules"), &rules_err) != CT_OK) {
        fprintf(stderr, "towerd %s: %s\n", rebuild ? "rebuild" : "projector", rules_err);
        free(rules_err);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    towerd_handle_signals();
    bus_opts bo;
    towerd_bus_opts(cfg, &bo, rebuild ? "towerd rebuild" : "towerd projector");
    bo.wait_connect = !rebuild;
    bo.connect_async = !rebuild; /* projector_run waits for the connection, stoppable */
    if (bus_connect(&b, &bo) != CT_OK) goto out;

    const char *data = ct_config_str(cfg, "data");
    /* Each store needs its own consumer (a projector recreates its consumer at start): name it
     * after this host and store, so that two projectors on one stream never share one. */
    char consumer[64];
    if (ct_config_str(cfg, "consumer")) {
        snprintf(consumer, sizeof consumer, "%s", ct_config_str(cfg, "consumer"));
    } else {
        mkdir(data, 0755); /* so that the path resolves the same on the first run and after */
        char host[256] = "", *real = realpath(data, NULL);
        gethostname(host, sizeof host - 1);
        char *who = ct_sprintf("%s:%s", host, real ? real : data);
        snprintf(consumer, sizeof consumer, "tower-%s-%08llx", rebuild ? "rebuild" : "projector",
                 (unsigned long long)(ct_hash64(who, strlen(who)) & 0xffffffffULL));
        free(who);
        free(real);
    }
    projector_opts po = {.data_dir = data,
                         .consumer = consumer,
                         .batch = (size_t)ct_config_int(cfg, "batch"),
                         .quiet_ms = ct_config_duration_ns(cfg, "quiet") / 1000000,
                         .notify = !rebuild,
                         .dead_letter_stream = !rebuild,
                         .sla_rules = sla_rules_fold(rules)};
    if (!rebuild) {
        ct_log(CT_LOG_INFO, "projector", "store %s", data);
        rc = projector_run(b, &po, &towerd_stop, NULL);
        goto out;
    }

    bus_stream_state st;
    ct_status s = bus_stream_info(b, &st);
    if (s == CT_NOT_FOUND) {
        fprintf(stderr, "towerd rebuild: there is no %s stream to rebuild from\n", BUS_EVENTS_STREAM);
        goto out;
    }
    if (s != CT_OK || store_rebuild_begin(data, &gen) != CT_OK) goto out;
    ct_log(CT_LOG_INFO, "rebuild", "replaying %s (sequences %" PRIu64 "..%" PRIu64 ", %" PRIu64 " messages) into %s",
           BUS_EVENTS_STREAM, st.first_seq, st.last_seq, st.msgs, gen);
    if (st.msgs == 0) {
        /* Nothing to replay: an empty store that has seen the stream up to its last sequence. */
        store *empty = NULL;
        store_opts so = {.dir = gen, .flat = 1, .sla_rules = sla_rules_fold(rules)};
        if (store_open(&empty, &so) != CT_OK) goto out;
        store_meta meta[] = {{"applied_seq", st.last_seq}, {PROJECTOR_META_STREAM_CREATED, (uint64_t)st.created_ns},
                             {PROJECTOR_META_STREAM_LAST, st.last_seq}};
        ct_status as = store_apply_meta(empty, NULL, 0, ct_now_ns(), NULL, NULL, meta, 3);
        store_close(empty);
        if (as != CT_OK) goto out;
        rc = PROJECTOR_OK;
    } else {
        po.data_dir = gen;
        po.flat = 1;
        po.stop_at_seq = st.last_seq;
        po.progress = 1;
        rc = projector_run(b, &po, &towerd_stop, NULL);
    }
    if (rc == PROJECTOR_OK && towerd_stop) {
        fprintf(stderr, "towerd rebuild: interrupted; the live store is untouched (partial generation left in %s)\n", gen);
        rc = TOWERD_EXIT_FAIL;
    } else if (rc == PROJECTOR_OK) {
        if (store_rebuild_commit(data, gen) != CT_OK) {
            rc = TOWERD_EXIT_FAIL;
        } else {
            ct_log(CT_LOG_INFO, "rebuild", "swapped in the rebuilt store: %s/current -> %s", data, strrchr(gen, '/') + 1);
        }
    }
out:
    free(gen);
    bus_close(b);
    sla_rules_destroy(rules);
    ct_config_destroy(cfg);
    free(defs);
    return rc;
}

int towerd_projector(int argc, char **argv) { return run(argc, argv, 0); }
int towerd_rebuild(int argc, char **argv) { return run(argc, argv, 1); }
