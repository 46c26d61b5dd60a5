/* towerd up: the whole tower in one process — its own nats-server, the projector, the server and the simulators. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nats_opts.h"
#include "projector.h"
#include "server.h"
#include "server_opts.h"
#include "sla_engine.h"
#include "towerd.h"
#include "up_nats.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR",
     "everything the tower keeps: DIR/store (the views), DIR/nats (JetStream), DIR/sim.state, DIR/clock", 0, 0},
    {"batch", 0, "TOWER_PROJECTOR_BATCH", "projector.batch", CT_OPT_INT, "1000", "N", "events per commit at most", 0, 0},
    {"quiet", 0, "TOWER_PROJECTOR_QUIET", "projector.quiet", CT_OPT_DURATION, "5ms", "DURATION",
     "commit what arrived after this long without more", 0, 0},
    {"no-sim", 0, "TOWER_UP_NO_SIM", "up.no_sim", CT_OPT_BOOL, NULL, NULL,
     "run without the simulators (real systems publish to the stream)", 0, 0},
    {"no-sla", 0, "TOWER_UP_NO_SLA", "up.no_sla", CT_OPT_BOOL, NULL, NULL,
     "run without the SLA engine (then the simulators report SLA breaches themselves, as --sla-breaches says)", 0, 0},
    {"sla-rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "SLA rules (INI, docs/sla.md; default: the contract's six rules)", 0, 0},
    {"alertmanager", 0, "TOWER_SLA_ALERTMANAGER", "sla.alertmanager", CT_OPT_STRING, NULL, "URL",
     "Alertmanager's base URL: one alert per open SLA breach (default: no alerts)", 0, 0},
    {"nats-server", 0, "TOWER_NATS_SERVER", "up.nats_server", CT_OPT_STRING, NULL, "PATH",
     "the nats-server binary (default: found in PATH, /usr/sbin, /usr/bin)", 0, 0},
    {"nats-max-memory", 0, "TOWER_UP_NATS_MAX_MEMORY", "up.nats_max_memory", CT_OPT_SIZE, "256MiB", "SIZE",
     "JetStream memory limit of the nats-server started here", 0, 0},
    {"nats-max-file", 0, "TOWER_UP_NATS_MAX_FILE", "up.nats_max_file", CT_OPT_SIZE, "8GiB", "SIZE",
     "JetStream disk limit of the nats-server started here", 0, 0},
};
#define NOWN (sizeof own_defs / sizeof own_defs[0])

static const char usage_fmt[] =
    "usage: towerd up [OPTIONS]\n\n"
    "Runs the whole control tower in one process: starts nats-server with JetStream on a free loopback\n"
    "port (config, store and log under DIR/nats; it dies with us), then the projector (store under\n"
    "DIR/store), the HTTP server (dashboard, REST API, /metrics) and, unless --no-sim, the simulators;\n"
    "prints the dashboard's URL. SIGINT or SIGTERM (Ctrl-C) stops everything cleanly. Started again on\n"
    "the same DIR it resumes: the same stream, the same store, the simulators' trace where it was, and\n"
    "business time where it was (DIR/clock). With --nats URL it uses that NATS instead of starting one.\n"
    "It needs nats-server (Debian: sudo apt-get install nats-server) unless --nats is given.\n"
    "That nats-server listens on 127.0.0.1 only and takes only clients with the password made at each start;\n"
    "it is in DIR/nats/client.conf (mode 0600) with the URL: towerd publish --config DIR/nats/client.conf FILE.\n\n"
    "%s\n"
    "In `up` the warp (default 60) applies to the whole process: the projector, the server's ages and\n"
    "the simulators see the same \"now\". Read the store with `towerd dump --data DIR/store`.\n\n"
    "Exit codes: 0 stopped; 1 failure (no nats-server, cannot listen, NATS or store failure); 2 usage;\n"
    "4 the store cannot follow the stream (run towerd rebuild --data DIR/store).";

/* ---- business time across restarts ---- */

/* Warp the clock so that business time goes on from where the last run on this DIR left it. */
static void clock_resume(const char *dir, double warp)
{
    char *path = ct_sprintf("%s/clock", dir);
    int64_t real = ct_wall_ns(), origin = real;
    long long o = 0;
    double f = 0;
    FILE *in = fopen(path, "r");
    if (in) {
        if (fscanf(in, "origin_ns=%lld factor=%lf", &o, &f) == 2 && f > 0 && isfinite(f)) {
            /* Business time now, had the last run gone on: continue from it at the new rate. */
            double now_then = (double)o + (double)(real - o) * f;
            if (f == warp)
                origin = o;
            else if (warp != 1.0)
                origin = real + (int64_t)((now_then - (double)real) / (1.0 - warp));
            else if (now_then > (double)real + 1e9)
                ct_log(CT_LOG_WARN, "up",
                       "the last run warped business time %.0f s ahead of the wall clock; without a warp it goes "
                       "back to the wall clock (ages look younger until then)",
                       (now_then - (double)real) / 1e9);
        }
        fclose(in);
    }
    ct_clock_set(origin, warp);
    FILE *out = fopen(path, "w");
    if (out) {
        fprintf(out, "origin_ns=%lld factor=%.17g\n# towerd up: business time = origin + (wall - origin) * factor\n",
                (long long)origin, warp);
        fclose(out);
    }
    free(path);
}

/* ---- the roles' threads ---- */

typedef struct proj_thread {
    bus *b;
    projector_opts po;
    volatile sig_atomic_t stop;
    volatile int done;
    int rc;
    pthread_t th;
} proj_thread;

static void *proj_main(void *arg)
{
    proj_thread *p = arg;
    p->rc = projector_run(p->b, &p->po, &p->stop, NULL);
    p->done = 1;
    return NULL;
}

typedef struct sla_thread {
    bus *b;
    sla_engine_opts so;
    volatile sig_atomic_t stop;
    volatile int done;
    int rc;
    pthread_t th;
} sla_thread;

static void *sla_main(void *arg)
{
    sla_thread *t = arg;
    t->rc = sla_engine_run(t->b, &t->so, &t->stop, NULL);
    t->done = 1;
    return NULL;
}

typedef struct sim_thread {
    sim_run_opts so;
    volatile sig_atomic_t stop;
    volatile int done;
    ct_status rc;
    sim_run_figures fig;
    pthread_t th;
} sim_thread;

static void *sim_main(void *arg)
{
    sim_thread *s = arg;
    s->rc = sim_run(&s->so, &s->stop, &s->fig);
    s->done = 1;
    return NULL;
}

/* Threads started from here (cnats', civetweb's, ours) leave SIGINT and SIGTERM to the main thread. */
static void signals_block(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

static void signals_restore(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

static char *consumer_name(const char *store_dir)
{
    char host[256] = "", *real = realpath(store_dir, NULL);
    gethostname(host, sizeof host - 1);
    char *who = ct_sprintf("%s:%s", host, real ? real : store_dir);
    char *name = ct_sprintf("tower-projector-%08llx", (unsigned long long)(ct_hash64(who, strlen(who)) & 0xffffffffULL));
    free(who);
    free(real);
    return name;
}

/* What runs where, on stdout. nats: our own server, or NULL for --nats. */
static void print_banner(const ct_config *cfg, const up_nats *nats, const char *data, const char *store_dir,
                         const char *state, const sim_run_opts *so, int with_sim, int with_sla)
{
    const char *http = ct_config_str(cfg, "http");
    printf("towerd up: the control tower is running\n"
           "  dashboard   http://%s/\n"
           "  API         http://%s/api/v1/summary\n",
           http, http);
    if (nats) {
        printf("  NATS        %s (monitoring http://127.0.0.1:%d/jsz)\n", nats->url, nats->mport);
        /* The credentials are new at each start and stay in the file (0600); never on the terminal. */
        printf("  publish     towerd publish --config %s FILE.ndjson (NATS credentials, new at each start)\n",
               nats->client_conf);
    } else {
        printf("  NATS        %s\n", ct_config_str(cfg, "nats"));
    }
    printf("  data        %s (views %s, simulator state %s)\n", data, store_dir, state);
    if (so->warp != 1.0) printf("  time warp   %gx: %g business minutes per real minute\n", so->warp, so->warp);
    if (with_sim)
        printf("  simulators  %g orders per minute, seed %" PRIu64 "%s\n", so->rate, so->trace.seed,
               so->trace.orders ? "" : ", endless");
    else
        printf("  simulators  off (--no-sim)\n");
    if (with_sla)
        printf("  SLA engine  %s\n", ct_config_str(cfg, "alertmanager") ? ct_config_str(cfg, "alertmanager")
                                                                        : "on (no Alertmanager: --alertmanager URL)");
}

int towerd_up(int argc, char **argv)
{
    ct_opt_def own[NOWN + 16 + TOWERD_SIM_MAX_DEFS];
    memcpy(own, own_defs, sizeof own_defs);
    memcpy(own + NOWN, towerd_server_defs, towerd_server_ndefs * sizeof *own);
    size_t nown = NOWN + towerd_server_ndefs;
    nown += towerd_sim_defs(own + nown, "60", 0);
    size_t ndefs;
    ct_opt_def *defs = towerd_defs_concat(own, nown, &ndefs);
    /* Without --nats, up starts its own server: the shared option has no default here. */
    for (size_t i = 0; i < ndefs; i++)
        if (strcmp(defs[i].flag, "nats") == 0) {
            defs[i].def = NULL;
            defs[i].help = "use this NATS (URLs, comma-separated) instead of starting nats-server";
        }
    static const char *const ignore[] = {"publish", "sla", NULL};
    char *usage = ct_sprintf(usage_fmt, towerd_sim_help);
    ct_config *cfg = NULL;
    char **args = NULL;
    int nargs = 0, help = 0, rc = TOWERD_EXIT_FAIL;
    char *bin = NULL, *store_dir = NULL, *state = NULL, *consumer = NULL;
    up_nats nats = {0};
    bus *bproj = NULL, *bsrv = NULL, *bsla = NULL;
    http_server *srv = NULL;
    proj_thread proj = {0};
    sim_thread sim = {0};
    sla_thread sla = {0};
    sla_rules *rules = NULL;
    char *link_base = NULL;
    int proj_started = 0, sim_started = 0, sla_started = 0;
    sigset_t old;
    const char *one_url[1];

    if (ct_config_parse(&cfg, "towerd up", usage, defs, ndefs, ignore, argc, argv, &args, &nargs, &help) != CT_OK) {
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    if (help) {
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    if (nargs) {
        fprintf(stderr, "towerd up: unexpected argument '%s'\n", args[0]);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    if (towerd_sim_config(cfg, "towerd up", &sim.so) < 0) {
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    const int own_nats = ct_config_str(cfg, "nats") == NULL, with_sim = !ct_config_bool(cfg, "no-sim");
    const int with_sla = !ct_config_bool(cfg, "no-sla");
    char *rules_err = NULL;
    if (sla_rules_load(&rules, ct_config_str(cfg, "sla-rules"), &rules_err) != CT_OK) {
        fprintf(stderr, "towerd up: %s\n", rules_err);
        free(rules_err);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    /* The SLA engine raises the breaches; simulated ones on top would double them. */
    if (with_sla) sim.so.sla_breaches = 0;
    if (own_nats) {
        bin = up_nats_find_server(ct_config_str(cfg, "nats-server"));
        if (!bin) {
            if (ct_config_str(cfg, "nats-server"))
                fprintf(stderr, "towerd up: nats-server not found: %s is not an executable file\n",
                        ct_config_str(cfg, "nats-server"));
            else
                fprintf(stderr, "towerd up: nats-server not found (looked in PATH, /usr/sbin and /usr/bin)\n");
            fprintf(stderr, "Install it (Debian, Ubuntu: sudo apt-get install nats-server), give its path with\n"
                            "--nats-server PATH, or use a running NATS with JetStream: --nats nats://HOST:4222\n");
            goto out;
        }
    }
    const char *data = ct_config_str(cfg, "data");
    if (mkdir(data, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "towerd up: cannot create %s: %s\n", data, strerror(errno));
        goto out;
    }
    store_dir = ct_sprintf("%s/store", data);
    state = ct_sprintf("%s/sim.state", data);
    if (mkdir(store_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "towerd up: cannot create %s: %s\n", store_dir, strerror(errno));
        goto out;
    }
    towerd_handle_signals();
    clock_resume(data, sim.so.warp);

    if (own_nats) {
        if (up_nats_start(&nats, bin, data, ct_config_size(cfg, "nats-max-memory"),
                          ct_config_size(cfg, "nats-max-file"), &towerd_stop) != CT_OK)
            goto out;
        ct_log(CT_LOG_INFO, "up", "nats-server %s is up (pid %d, log %s)", nats.url, (int)nats.pid, nats.log_path);
    }

    bus_opts bo;
    towerd_bus_opts(cfg, &bo, "towerd up projector");
    if (own_nats) up_nats_bus_opts(&nats, &bo, one_url); /* its own credentials, whatever the flags say */
    bo.wait_connect = 1;
    signals_block(&old);
    ct_status cs = bus_connect(&bproj, &bo);
    bo.name = "towerd up server";
    if (cs == CT_OK) cs = bus_connect(&bsrv, &bo);
    bo.name = "towerd up sla";
    if (cs == CT_OK && with_sla) cs = bus_connect(&bsla, &bo);
    signals_restore(&old);
    if (cs != CT_OK) goto out;
    bus_watch_start(bsrv, 0, 0); /* the server's NATS figures, kept fresh by a thread of their own */
    /* The streams exist before any role uses them (the projector would make them too). */
    for (int tries = 0; bus_ensure_streams(bproj) != CT_OK; tries++) {
        if (towerd_stop) goto stopped;
        if (tries == 60) {
            fprintf(stderr, "towerd up: cannot create the streams on NATS\n");
            goto out;
        }
        usleep(500000);
    }

    consumer = consumer_name(store_dir);
    proj.b = bproj;
    proj.po = (projector_opts){.data_dir = store_dir,
                               .consumer = consumer,
                               .batch = (size_t)ct_config_int(cfg, "batch"),
                               .quiet_ms = ct_config_duration_ns(cfg, "quiet") / 1000000,
                               .notify = 1,
                               .dead_letter_stream = 1,
                               .sla_rules = sla_rules_fold(rules)};
    signals_block(&old);
    proj_started = pthread_create(&proj.th, NULL, proj_main, &proj) == 0;
    signals_restore(&old);
    if (!proj_started) goto out;

    server_opts srvo;
    towerd_server_opts(cfg, &srvo);
    srvo.data_dir = store_dir;
    srvo.bus = bsrv;
    signals_block(&old);
    cs = http_server_start(&srv, &srvo);
    signals_restore(&old);
    if (cs != CT_OK) {
        rc = cs == CT_USAGE ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
        goto out;
    }

    if (with_sla) {
        link_base = ct_sprintf("http://%s", ct_config_str(cfg, "http"));
        sla.b = bsla;
        sla.so = (sla_engine_opts){.data_dir = store_dir,
                                   .rules = rules,
                                   .alertmanager = ct_config_str(cfg, "alertmanager"),
                                   .link_base = link_base};
        signals_block(&old);
        sla_started = pthread_create(&sla.th, NULL, sla_main, &sla) == 0;
        signals_restore(&old);
        if (!sla_started) goto out;
    }

    if (with_sim) {
        sim.so.bus = &bo;
        sim.so.state_path = state;
        signals_block(&old);
        sim_started = pthread_create(&sim.th, NULL, sim_main, &sim) == 0;
        signals_restore(&old);
        if (!sim_started) goto out;
    }

    print_banner(cfg, own_nats ? &nats : NULL, data, store_dir, state, &sim.so, with_sim, with_sla);
    printf("Ctrl-C stops everything.\n");
    fflush(stdout);

    int sim_reported = 0;
    while (!towerd_stop) {
        usleep(100000);
        if (proj.done) {
            rc = proj.rc == PROJECTOR_NEED_REBUILD ? TOWERD_EXIT_REBUILD : TOWERD_EXIT_FAIL;
            ct_log(CT_LOG_ERROR, "up", "the projector stopped (exit %d): stopping everything", proj.rc);
            if (proj.rc == PROJECTOR_NEED_REBUILD)
                fprintf(stderr, "towerd up: the store cannot follow the stream: towerd rebuild --data %s --nats %s\n",
                        store_dir, own_nats ? nats.url : ct_config_str(cfg, "nats"));
            goto out;
        }
        if (sim_started && sim.done && !sim_reported) {
            sim_reported = 1;
            if (sim.rc != CT_OK)
                ct_log(CT_LOG_ERROR, "up", "the simulators stopped: %s (the tower goes on)", ct_status_str(sim.rc));
            else
                ct_log(CT_LOG_INFO, "up", "the simulators told every order (the tower goes on)");
        }
        if (up_nats_exited(&nats)) {
            fprintf(stderr, "towerd up: nats-server exited unexpectedly: stopping everything\n");
            up_nats_log_tail(&nats);
            goto out;
        }
    }
stopped:
    ct_log(CT_LOG_INFO, "up", "stopping");
    rc = TOWERD_EXIT_OK;
out:
    /* In order: no more events, no more readers, the last commit, then the broker. */
    if (sim_started) {
        sim.stop = 1;
        pthread_join(sim.th, NULL);
    }
    if (sla_started) {
        sla.stop = 1;
        pthread_join(sla.th, NULL);
    }
    http_server_stop(srv);
    if (proj_started) {
        proj.stop = 1;
        pthread_join(proj.th, NULL);
    }
    bus_close(bsla);
    bus_close(bsrv);
    bus_close(bproj);
    sla_rules_destroy(rules);
    free(link_base);
    if (nats.pid > 0) {
        up_nats_stop(&nats, SIGTERM, 20);
        ct_log(CT_LOG_INFO, "up", "nats-server stopped");
    }
    up_nats_free(&nats);
    free(bin);
    free(store_dir);
    free(state);
    free(consumer);
    free(usage);
    ct_config_destroy(cfg);
    free(defs);
    return rc;
}
