/* towerd up: the whole tower in one process — its own nats-server, the projector, the server and the simulators. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "store_upgrade.h"
#include "relay.h"
#include "towerd.h"
#include "up_nats.h"
#include "up_planner.h"
#include "up_supervisor.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR",
     "everything the tower keeps: DIR/store (the views), DIR/nats (JetStream), DIR/sim.state, DIR/clock", 0, 0},
    {"batch", 0, "TOWER_PROJECTOR_BATCH", "projector.batch", CT_OPT_INT, "1000", "N", "events per commit at most", 0, 0},
    {"quiet", 0, "TOWER_PROJECTOR_QUIET", "projector.quiet", CT_OPT_DURATION, "5ms", "DURATION",
     "commit what arrived after this long without more", 0, 0},
    {"no-sim", 0, "TOWER_UP_NO_SIM", "up.no_sim", CT_OPT_BOOL, NULL, NULL,
     "run without the simulators (real systems publish to the stream)", 0, 0},
    {"supervisor-rate", 0, "TOWER_UP_SUPERVISOR_RATE", "up.supervisor_rate", CT_OPT_STRING, "30", "N",
     "simulated supervisors' actions on open exceptions per real minute (0, or --no-sim: none)", 0, 0},
    {"no-sla", 0, "TOWER_UP_NO_SLA", "up.no_sla", CT_OPT_BOOL, NULL, NULL,
     "run without the SLA engine (then the simulators report SLA breaches themselves, as --sla-breaches says)", 0, 0},
    {"sla-rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "SLA rules (INI, docs/sla.md; default: the contract's six rules)", 0, 0},
    {"relay", 0, "TOWER_RELAY", "relay.file", CT_OPT_STRING, NULL, "FILE",
     "deliver business events to the destinations of FILE (docs/outbound.md; state in DIR/relay)", 0, 0},
    {"planner-sim", 0, "TOWER_UP_PLANNER_SIM", "up.planner_sim", CT_OPT_STRING, NULL, "KNOBS",
     "the route planner simulator behind --relay's route_planner destinations on 127.0.0.1 (docs/outbound.md): "
     "fail=0.05,latency=50ms,outage=40s/180s,route_fail=0.05,plan_delay=2s", 0, 0},
    {"alertmanager", 0, "TOWER_SLA_ALERTMANAGER", "sla.alertmanager", CT_OPT_STRING, NULL, "URL",
     "Alertmanager's base URL: one alert per open SLA breach (default: no alerts)", 0, 0},
    SLA_RISK_OPT_DEFS, /* predicted risk in the SLA engine (docs/risk.md) */
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
    "DIR/store), the HTTP server (dashboard, REST API, /metrics) and, unless --no-sim, the simulators and\n"
    "the simulated supervisors, who work the open exceptions (--supervisor-rate). A new trace opens on\n"
    "--history (default 36h) of business played at once, so that every view has items within seconds;\n"
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
    "4 the store cannot follow the stream (run towerd rebuild --data DIR/store).\n"
    "A store of an older build's format is rebuilt from the stream by itself at start (progress in the log;\n"
    "the API answers 503 until the new generation is swapped in).";

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

/* The in-process roles' figures in the server's /metrics: the SLA engine's and the relay's. */
typedef struct up_metrics_ctx {
    const sla_engine_figures *sla;   /* NULL without the engine */
    const relay_conf *relay;         /* NULL without --relay */
    const relay_figures *relay_fig;
} up_metrics_ctx;

static void up_metrics(ct_buf *out, void *vctx)
{
    const up_metrics_ctx *m = vctx;
    if (m->sla) sla_engine_metrics(out, m->sla);
    if (m->relay) relay_metrics(m->relay, m->relay_fig, out);
}

/* The duplicates dropped at publish that the simulators and the supervisors counted, for the server's /metrics
   and summary (their figures are atomics: read from any request thread). */
typedef struct up_dups_ctx {
    const sim_run_figures *sim;      /* NULL without the simulators */
    const up_supervisor_figures *sup; /* NULL without the supervisors */
} up_dups_ctx;

static size_t up_publish_dups(void *vctx, server_pub_dups *out, size_t max)
{
    const up_dups_ctx *d = vctx;
    size_t n = 0;
    if (d->sim && n < max) out[n++] = (server_pub_dups){"simulators", atomic_load(&d->sim->duplicates)};
    if (d->sup && n < max) out[n++] = (server_pub_dups){"supervisors", atomic_load(&d->sup->duplicates)};
    return n;
}

/* Each role's thread: the main thread sets stop (the roles' API takes a volatile sig_atomic_t flag); the
   role's thread writes rc, then sets done, which the main thread reads (both atomics: seq_cst). */

typedef struct proj_thread {
    bus *b;
    projector_opts po;
    volatile sig_atomic_t stop;
    atomic_int done;
    atomic_int rc;
    pthread_t th;
} proj_thread;

/* ---- upgrading a store of another format (docs/deploy.md "Upgrading") ---- */

/* One replay of the stream up to st's last message into gen (towerd_replay_fn), with a consumer of its own. */
typedef struct up_replay_ctx {
    proj_thread *p;
    const bus_stream_state *st;
} up_replay_ctx;

static int up_replay_once(void *vctx, const char *gen, int64_t trend_hint)
{
    up_replay_ctx *r = vctx;
    projector_opts po = r->p->po;
    char *consumer = towerd_consumer_name("rebuild", r->p->po.data_dir);
    po.data_dir = gen;
    po.flat = 1;
    po.consumer = consumer;
    po.stop_at_seq = r->st->last_seq;
    po.progress = 1;
    po.notify = 0;
    po.dead_letter_stream = 0;
    po.trend_drop_before_ns = trend_hint;
    int rc = projector_run(r->p->b, &po, &r->p->stop, NULL);
    free(consumer);
    return rc;
}

/* Replay the whole stream into gen (progress on stderr), with the trend hint (towerd_replay_hinted). */
static int up_replay(proj_thread *p, const char *gen, const bus_stream_state *st)
{
    if (!st->msgs)
        return towerd_empty_generation(gen, st, p->po.sla_rules) == CT_OK ? PROJECTOR_OK : PROJECTOR_FAIL;
    up_replay_ctx r = {p, st};
    return towerd_replay_hinted(p->b, st, gen, up_replay_once, &r, &p->stop);
}

/* A store of an older build's format is rebuilt from the stream into a new generation and swapped in, on the
 * projector's thread before it projects (this build cannot read the old generation: readers answer 503 until
 * the swap). PROJECTOR_OK to go on (or stopped meanwhile), else the projector's exit code. */
static int up_upgrade(proj_thread *p)
{
    const char *dir = p->po.data_dir;
    if (!towerd_store_is_old(dir)) return PROJECTOR_OK;
    ct_log(CT_LOG_WARN, "up", "upgrade: the store %s has another format than this build's (version %d): rebuilding it "
           "from the stream into a new generation, then projecting on from there. Until the swap the dashboard and "
           "the API answer 503 (this build cannot read the old generation) and the readers' \"format version\" "
           "errors are expected; progress follows", dir, STORE_FORMAT_VERSION);
    bus_stream_state st;
    ct_status got = towerd_wait_stream(p->b, &st, &p->stop);
    if (p->stop) return PROJECTOR_OK;
    if (got == CT_NOT_FOUND) {
        ct_log(CT_LOG_ERROR, "up", "upgrade: there is no %s stream to rebuild the store from: move %s aside to start "
               "afresh, or use the towerd build that wrote it", BUS_EVENTS_STREAM, dir);
        return PROJECTOR_NEED_REBUILD;
    }
    char *gen = NULL;
    if (store_rebuild_begin(dir, &gen) != CT_OK) return PROJECTOR_FAIL;
    ct_log(CT_LOG_INFO, "up", "upgrade: replaying %s (sequences %" PRIu64 "..%" PRIu64 ", %" PRIu64 " messages) into %s",
           BUS_EVENTS_STREAM, st.first_seq, st.last_seq, st.msgs, gen);
    int rc = up_replay(p, gen, &st);
    if (rc == PROJECTOR_OK && p->stop)
        ct_log(CT_LOG_WARN, "up", "upgrade: interrupted; the old store is untouched (partial generation left in %s: "
               "remove it; the next start rebuilds anew)", gen);
    else if (rc == PROJECTOR_OK && store_rebuild_commit(dir, gen) != CT_OK)
        rc = PROJECTOR_FAIL;
    else if (rc == PROJECTOR_OK)
        ct_log(CT_LOG_INFO, "up", "upgrade: done, the store was rebuilt in this build's format (%s/current -> %s); "
               "projecting on", dir, strrchr(gen, '/') + 1);
    free(gen);
    return rc;
}

static void *proj_main(void *arg)
{
    proj_thread *p = arg;
    int rc = up_upgrade(p);
    if (rc == PROJECTOR_OK && !p->stop) rc = projector_run(p->b, &p->po, &p->stop, NULL);
    atomic_store(&p->rc, rc);
    atomic_store(&p->done, 1);
    return NULL;
}

typedef struct sla_thread {
    bus *b;
    sla_engine_opts so;
    sla_risk_opts risk;     /* so.risk points here */
    sla_engine_figures fig; /* shown by the server's /metrics */
    volatile sig_atomic_t stop;
    atomic_int done;
    atomic_int rc;
    pthread_t th;
} sla_thread;

static void *sla_main(void *arg)
{
    sla_thread *t = arg;
    atomic_store(&t->rc, sla_engine_run(t->b, &t->so, &t->stop, &t->fig));
    atomic_store(&t->done, 1);
    return NULL;
}

typedef struct sup_thread {
    up_supervisor_opts so;
    up_supervisor_figures fig;
    volatile sig_atomic_t stop;
    atomic_int done;
    atomic_int rc; /* a ct_status */
    pthread_t th;
} sup_thread;

static void *sup_main(void *arg)
{
    sup_thread *s = arg;
    atomic_store(&s->rc, (int)up_supervisor_run(&s->so, &s->stop, &s->fig));
    atomic_store(&s->done, 1);
    return NULL;
}

typedef struct sim_thread {
    sim_run_opts so;
    volatile sig_atomic_t stop;
    atomic_int done;
    atomic_int rc; /* a ct_status */
    sim_run_figures fig;
    pthread_t th;
} sim_thread;

static void *sim_main(void *arg)
{
    sim_thread *s = arg;
    atomic_store(&s->rc, (int)sim_run(&s->so, &s->stop, &s->fig));
    atomic_store(&s->done, 1);
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

/* Start a role's thread with SIGINT and SIGTERM blocked in it; 1 if started. */
static int thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    sigset_t old;
    signals_block(&old);
    int ok = pthread_create(th, NULL, fn, arg) == 0;
    signals_restore(&old);
    return ok;
}

/* ---- one run of towerd up ---- */

/* Everything one run holds, from the options to the threads; released by up_shutdown. */
typedef struct up_run {
    towerd_ctx c;
    int own_nats, with_sim, with_sla; /* start nats-server (no --nats), the simulators, the SLA engine */
    double sup_rate;                  /* the simulated supervisors' actions per minute (0: none) */
    const char *data;                 /* --data (borrowed from the options) */
    char *bin;                        /* the nats-server binary (own_nats) */
    char *store_dir, *state;          /* DIR/store, DIR/sim.state */
    char *consumer, *link_base;       /* the projector's consumer, the dashboard's URL for alerts */
    sla_rules *rules;
    up_nats nats;                     /* our own nats-server, when own_nats */
    bus_opts bo;                      /* how every role connects (the simulators' threads use it too) */
    const char *one_url[1];           /* bo's URL list for our own server */
    bus *bproj, *bsrv, *bsla, *bsup;  /* the projector's, the server's, the SLA engine's, the supervisors' */
    http_server *srv;
    proj_thread proj;
    sim_thread sim;
    sla_thread sla;
    sup_thread sup;
    int proj_started, sim_started, sla_started, sup_started;
    relay_conf rconf;                 /* --relay: the destinations (rconf.n 0: no relay) */
    relay_figures *rfig;
    relay *rel;
    bus *brel;
    char *relay_dir;                  /* DIR/relay */
    up_planner *planner;              /* the route planner simulator (--relay with a route_planner on loopback) */
    up_metrics_ctx metrics;
    up_dups_ctx dups;
} up_run;

/* Business time a new trace starts before now (--history): long enough for every kind of exception, posting
   failures of the nightly invoicing included, to be on the dashboard within seconds of the start. */
#define UP_HISTORY_DEFAULT "36h"

/* The option table: up's own, the server's, the simulators' and the NATS ones (out has UP_MAX_DEFS). */
#define UP_MAX_DEFS (NOWN + 32 + TOWERD_SIM_MAX_DEFS)
static size_t up_defs(ct_opt_def *out)
{
    size_t n = 0;
    memcpy(out, own_defs, sizeof own_defs);
    n += NOWN;
    memcpy(out + n, towerd_server_defs, towerd_server_nshared * sizeof *out);
    n += towerd_server_nshared;
    size_t sim0 = n;
    n += towerd_sim_defs(out + n, "60", 0);
    for (size_t i = sim0; i < n; i++) /* a demo opens on a day of business history, not on an empty dashboard */
        if (strcmp(out[i].flag, "history") == 0) out[i].def = UP_HISTORY_DEFAULT;
    if (n + towerd_nats_ndefs > UP_MAX_DEFS) abort(); /* a bug: UP_MAX_DEFS too small */
    memcpy(out + n, towerd_nats_defs, towerd_nats_ndefs * sizeof *out);
    /* Without --nats, up starts its own server: the shared option has no default here. */
    for (size_t i = n; i < n + towerd_nats_ndefs; i++)
        if (strcmp(out[i].flag, "nats") == 0) {
            out[i].def = NULL;
            out[i].help = "use this NATS (URLs, comma-separated) instead of starting nats-server";
        }
    return n + towerd_nats_ndefs;
}

/* What the options ask for: the roles, the simulators' settings, the rules, the nats-server binary. */
static int up_options(up_run *u)
{
    const ct_config *cfg = u->c.cfg;
    if (towerd_sim_config(cfg, "towerd up", &u->sim.so) < 0) return TOWERD_EXIT_USAGE;
    u->own_nats = ct_config_str(cfg, "nats") == NULL;
    u->with_sim = !ct_config_bool(cfg, "no-sim");
    u->with_sla = !ct_config_bool(cfg, "no-sla");
    const char *sr = ct_config_str(cfg, "supervisor-rate");
    char *end = NULL;
    u->sup_rate = sr ? strtod(sr, &end) : NAN;
    if (!sr || end == sr || *end || !isfinite(u->sup_rate) || u->sup_rate < 0 || u->sup_rate > 60000) {
        fprintf(stderr, "towerd up: --supervisor-rate (%s): \"%s\" is not a number between 0 and 60000\n",
                ct_config_source(cfg, "supervisor-rate"), sr ? sr : "");
        return TOWERD_EXIT_USAGE;
    }
    if (!u->with_sim) u->sup_rate = 0;
    char *err = NULL;
    if (sla_rules_load(&u->rules, ct_config_str(cfg, "sla-rules"), &err) != CT_OK) {
        fprintf(stderr, "towerd up: %s\n", err);
        free(err);
        return TOWERD_EXIT_USAGE;
    }
    const char *rf = ct_config_str(cfg, "relay");
    if (rf) {
        char rerr[512];
        ct_status rs = relay_conf_load(rf, &u->rconf, rerr, sizeof rerr);
        if (rs != CT_OK) {
            fprintf(stderr, "towerd up: %s\n", rerr);
            return rs == CT_IO ? TOWERD_EXIT_FAIL : TOWERD_EXIT_USAGE;
        }
    }
    /* The SLA engine raises the breaches; simulated ones on top would double them. */
    if (u->with_sla) u->sim.so.sla_breaches = 0;
    if (!u->own_nats) return TOWERD_CONTINUE;
    const char *flag = ct_config_str(cfg, "nats-server");
    u->bin = up_nats_find_server(flag);
    if (u->bin) return TOWERD_CONTINUE;
    if (flag)
        fprintf(stderr, "towerd up: nats-server not found: %s is not an executable file\n", flag);
    else
        fprintf(stderr, "towerd up: nats-server not found (looked in PATH, /usr/sbin and /usr/bin)\n");
    fprintf(stderr, "Install it (Debian, Ubuntu: sudo apt-get install nats-server), give its path with\n"
                    "--nats-server PATH, or use a running NATS with JetStream: --nats nats://HOST:4222\n");
    return TOWERD_EXIT_FAIL;
}

/* mkdir that tolerates an existing directory; 0, or -1 after saying why. */
static int make_dir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST) return 0;
    fprintf(stderr, "towerd up: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
}

/* DIR and DIR/store, the signals, business time, and our own nats-server unless --nats. */
static int up_broker(up_run *u)
{
    u->data = ct_config_str(u->c.cfg, "data");
    u->store_dir = ct_sprintf("%s/store", u->data);
    u->state = ct_sprintf("%s/sim.state", u->data);
    if (make_dir(u->data) < 0 || make_dir(u->store_dir) < 0) return TOWERD_EXIT_FAIL;
    towerd_handle_signals();
    clock_resume(u->data, u->sim.so.warp);
    if (!u->own_nats) return TOWERD_CONTINUE;
    if (up_nats_start(&u->nats, u->bin, u->data, ct_config_size(u->c.cfg, "nats-max-memory"),
                      ct_config_size(u->c.cfg, "nats-max-file"), &towerd_stop) != CT_OK)
        return TOWERD_EXIT_FAIL;
    ct_log(CT_LOG_INFO, "up", "nats-server %s is up (pid %d, log %s)", u->nats.url, (int)u->nats.pid,
           u->nats.log_path);
    return TOWERD_CONTINUE;
}

/* The three connections (projector, server, SLA engine), then the streams. */
static int up_connect(up_run *u)
{
    towerd_bus_opts(u->c.cfg, &u->bo, "towerd up projector");
    if (u->own_nats) up_nats_bus_opts(&u->nats, &u->bo, u->one_url); /* its own credentials, whatever the flags say */
    u->bo.wait_connect = 1;
    /* One attempt each, then in the background: with signals blocked here, a wait for an unreachable
     * --nats would not hear SIGTERM; the stream setup below is where up waits, and stops when told. */
    u->bo.connect_async = 1;
    sigset_t old;
    signals_block(&old);
    ct_status cs = bus_connect(&u->bproj, &u->bo);
    u->bo.name = "towerd up server";
    if (cs == CT_OK) cs = bus_connect(&u->bsrv, &u->bo);
    u->bo.name = "towerd up sla";
    if (cs == CT_OK && u->with_sla) cs = bus_connect(&u->bsla, &u->bo);
    u->bo.name = "towerd up supervisor";
    if (cs == CT_OK && u->sup_rate > 0) cs = bus_connect(&u->bsup, &u->bo);
    u->bo.name = "towerd up relay";
    if (cs == CT_OK && u->rconf.n) cs = bus_connect(&u->brel, &u->bo);
    signals_restore(&old);
    if (cs != CT_OK) return TOWERD_EXIT_FAIL;
    bus_watch_start(u->bsrv, 0, 0); /* the server's NATS figures, kept fresh by a thread of their own */
    /* The streams exist before any role uses them (the projector would make them too). */
    for (int tries = 0; bus_ensure_streams(u->bproj) != CT_OK; tries++) {
        if (towerd_stop) {
            ct_log(CT_LOG_INFO, "up", "stopping");
            return TOWERD_EXIT_OK;
        }
        if (tries == 60) {
            fprintf(stderr, "towerd up: cannot create the streams on NATS\n");
            return TOWERD_EXIT_FAIL;
        }
        usleep(500000);
    }
    return TOWERD_CONTINUE;
}

/* The projector's thread, the HTTP server, then the SLA engine's and the simulators' threads. */
static int up_roles(up_run *u)
{
    const ct_config *cfg = u->c.cfg;
    u->consumer = towerd_consumer_name("projector", u->store_dir);
    u->proj.b = u->bproj;
    u->proj.po = (projector_opts){.data_dir = u->store_dir,
                                  .consumer = u->consumer,
                                  .batch = (size_t)ct_config_int(cfg, "batch"),
                                  .quiet_ms = ct_config_duration_ns(cfg, "quiet") / 1000000,
                                  .notify = 1,
                                  .dead_letter_stream = 1,
                                  .sla_rules = sla_rules_fold(u->rules)};
    if (!(u->proj_started = thread_start(&u->proj.th, proj_main, &u->proj))) return TOWERD_EXIT_FAIL;
    server_opts srvo;
    towerd_server_opts_shared(cfg, &srvo);
    srvo.data_dir = u->store_dir;
    srvo.sla_rules = ct_config_str(cfg, "sla-rules") ? sla_rules_fold(u->rules) : NULL;
    if (u->rconf.n) { /* the Integrations page: up's relay file and state */
        u->relay_dir = ct_sprintf("%s/relay", u->data);
        srvo.relay_file = ct_config_str(cfg, "relay");
        srvo.relay_state = u->relay_dir;
    }
    srvo.bus = u->bsrv;
    u->rfig = u->rconf.n ? ct_calloc(u->rconf.n, sizeof *u->rfig) : NULL;
    u->metrics = (up_metrics_ctx){u->with_sla ? &u->sla.fig : NULL, u->rconf.n ? &u->rconf : NULL, u->rfig};
    srvo.metrics_extra = up_metrics;
    srvo.metrics_ctx = &u->metrics;
    u->dups = (up_dups_ctx){u->with_sim ? &u->sim.fig : NULL, u->sup_rate > 0 ? &u->sup.fig : NULL};
    srvo.publish_dups = up_publish_dups;
    srvo.publish_dups_ctx = &u->dups;
    sigset_t old;
    signals_block(&old);
    ct_status cs = http_server_start(&u->srv, &srvo);
    signals_restore(&old);
    if (cs != CT_OK) return cs == CT_USAGE ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
    if (u->with_sla) {
        u->link_base = ct_sprintf("http://%s", ct_config_str(cfg, "http"));
        u->sla.b = u->bsla;
        u->sla.so = (sla_engine_opts){.data_dir = u->store_dir,
                                      .rules = u->rules,
                                      .alertmanager = ct_config_str(cfg, "alertmanager"),
                                      .link_base = u->link_base,
                                      .risk = &u->sla.risk};
        char rerr[160];
        if (sla_risk_opts_config(cfg, &u->sla.risk, rerr, sizeof rerr) != 0) {
            fprintf(stderr, "towerd up: %s\n", rerr);
            return TOWERD_EXIT_USAGE;
        }
        if (!(u->sla_started = thread_start(&u->sla.th, sla_main, &u->sla))) return TOWERD_EXIT_FAIL;
    }
    if (u->with_sim) {
        u->sim.so.bus = &u->bo;
        u->sim.so.state_path = u->state;
        if (!(u->sim_started = thread_start(&u->sim.th, sim_main, &u->sim))) return TOWERD_EXIT_FAIL;
    }
    if (u->rconf.n) {
        relay_opts ro = {.conf = &u->rconf, .state_dir = u->relay_dir, .instance = "tower-relay-up",
                         .store_dir = u->store_dir}; /* exception destinations read the projector's store */
        if (relay_start(&u->rel, u->brel, &ro, u->rfig) != CT_OK) return TOWERD_EXIT_FAIL;
        up_planner_knobs pk;
        char perr[256];
        if (up_planner_parse(ct_config_str(cfg, "planner-sim"), &pk, perr, sizeof perr) != 0) {
            fprintf(stderr, "towerd up: %s\n", perr);
            return TOWERD_EXIT_USAGE;
        }
        if (u->with_sim && up_planner_start(&u->planner, &u->rconf, &u->bo, &pk) != CT_OK) return TOWERD_EXIT_FAIL;
    }
    if (u->sup_rate > 0) {
        u->sup.so = (up_supervisor_opts){.store_dir = u->store_dir,
                                         .sla_rules = sla_rules_fold(u->rules),
                                         .bus = u->bsup,
                                         .rate = u->sup_rate,
                                         .seed = u->sim.so.trace.seed,
                                         .progress_ns = u->sim.so.progress_ns};
        if (!(u->sup_started = thread_start(&u->sup.th, sup_main, &u->sup))) return TOWERD_EXIT_FAIL;
    }
    return TOWERD_CONTINUE;
}

/* What runs where, on stdout. */
static void print_banner(const up_run *u)
{
    const ct_config *cfg = u->c.cfg;
    const sim_run_opts *so = &u->sim.so;
    const char *http = ct_config_str(cfg, "http"), *am = ct_config_str(cfg, "alertmanager");
    printf("towerd up: the control tower is running\n"
           "  dashboard   http://%s/\n"
           "  API         http://%s/api/v1/summary\n",
           http, http);
    if (u->own_nats) {
        printf("  NATS        %s (monitoring http://127.0.0.1:%d/jsz)\n", u->nats.url, u->nats.mport);
        /* The credentials are new at each start and stay in the file (0600); never on the terminal. */
        printf("  publish     towerd publish --config %s FILE.ndjson (NATS credentials, new at each start)\n",
               u->nats.client_conf);
    } else {
        printf("  NATS        %s\n", ct_config_str(cfg, "nats"));
    }
    printf("  data        %s (views %s, simulator state %s)\n", u->data, u->store_dir, u->state);
    if (so->warp != 1.0) printf("  time warp   %gx: %g business minutes per real minute\n", so->warp, so->warp);
    if (u->with_sim)
        printf("  simulators  %g orders per minute, seed %" PRIu64 "%s%s%s%s\n", so->rate, so->trace.seed,
               so->trace.orders ? "" : ", endless", so->history_ns ? ", history " : "",
               so->history_ns ? ct_config_str(cfg, "history") : "",
               so->history_ns ? " (a new trace opens on it, played at once)" : "");
    else
        printf("  simulators  off (--no-sim)\n");
    if (u->sup_rate > 0)
        printf("  supervisors %g actions per minute on open exceptions (--supervisor-rate)\n", u->sup_rate);
    else
        printf("  supervisors off\n");
    if (u->with_sla) printf("  SLA engine  %s\n", am ? am : "on (no Alertmanager: --alertmanager URL)");
    if (u->rconf.n)
        printf("  relay       %zu destination(s) of %s (state %s)\n", u->rconf.n, ct_config_str(cfg, "relay"),
               u->relay_dir);
    printf("Ctrl-C stops everything.\n");
    fflush(stdout);
}

/* Watch the roles until SIGINT or SIGTERM, or until the projector or nats-server stops; the exit code. */
static int up_supervise(up_run *u)
{
    int sim_reported = 0, sup_reported = 0;
    while (!towerd_stop) {
        usleep(100000);
        if (atomic_load(&u->proj.done)) {
            int prc = atomic_load(&u->proj.rc);
            ct_log(CT_LOG_ERROR, "up", "the projector stopped (exit %d): stopping everything", prc);
            if (prc != PROJECTOR_NEED_REBUILD) return TOWERD_EXIT_FAIL;
            fprintf(stderr, "towerd up: the store cannot follow the stream: towerd rebuild --data %s --nats %s\n",
                    u->store_dir, u->own_nats ? u->nats.url : ct_config_str(u->c.cfg, "nats"));
            return TOWERD_EXIT_REBUILD;
        }
        if (u->sim_started && !sim_reported && atomic_load(&u->sim.done)) {
            sim_reported = 1;
            ct_status src = (ct_status)atomic_load(&u->sim.rc);
            if (src != CT_OK)
                ct_log(CT_LOG_ERROR, "up", "the simulators stopped: %s (the tower goes on)", ct_status_str(src));
            else
                ct_log(CT_LOG_INFO, "up", "the simulators told every order (the tower goes on)");
        }
        if (u->sup_started && !sup_reported && atomic_load(&u->sup.done)) {
            sup_reported = 1;
            ct_log(CT_LOG_ERROR, "up", "the simulated supervisors stopped: %s (the tower goes on)",
                   ct_status_str((ct_status)atomic_load(&u->sup.rc)));
        }
        if (up_nats_exited(&u->nats)) {
            fprintf(stderr, "towerd up: nats-server exited unexpectedly: stopping everything\n");
            up_nats_log_tail(&u->nats);
            return TOWERD_EXIT_FAIL;
        }
    }
    ct_log(CT_LOG_INFO, "up", "stopping");
    return TOWERD_EXIT_OK;
}

/* Stop in order: no more events, no more readers, the last commit, then the broker; free the rest. */
static void up_shutdown(up_run *u)
{
    if (u->sup_started) {
        u->sup.stop = 1;
        pthread_join(u->sup.th, NULL);
    }
    if (u->sim_started) {
        u->sim.stop = 1;
        pthread_join(u->sim.th, NULL);
    }
    if (u->sla_started) {
        u->sla.stop = 1;
        pthread_join(u->sla.th, NULL);
    }
    up_planner_stop(u->planner);
    relay_stop(u->rel);
    http_server_stop(u->srv);
    if (u->proj_started) {
        u->proj.stop = 1;
        pthread_join(u->proj.th, NULL);
    }
    bus_close(u->brel);
    relay_conf_free(&u->rconf);
    free(u->rfig);
    free(u->relay_dir);
    bus_close(u->bsup);
    bus_close(u->bsla);
    bus_close(u->bsrv);
    bus_close(u->bproj);
    sla_rules_destroy(u->rules);
    free(u->link_base);
    if (u->nats.pid > 0) {
        up_nats_stop(&u->nats, SIGTERM, 20);
        ct_log(CT_LOG_INFO, "up", "nats-server stopped");
    }
    up_nats_free(&u->nats);
    free(u->bin);
    free(u->store_dir);
    free(u->state);
    free(u->consumer);
    towerd_end(&u->c);
}

int towerd_up(int argc, char **argv)
{
    static const char *const ignore[] = {"publish", "sla", NULL};
    ct_opt_def defs[UP_MAX_DEFS];
    char *usage = ct_sprintf(usage_fmt, towerd_sim_help);
    towerd_spec spec = {.cmd = "towerd up", .usage = usage, .defs = defs, .ndefs = up_defs(defs), .ignore = ignore};
    up_run *u = ct_calloc(1, sizeof *u);
    int rc = towerd_start(&u->c, &spec, argc, argv);
    free(usage);
    if (rc != TOWERD_CONTINUE) {
        free(u);
        return rc;
    }
    rc = up_options(u);
    if (rc == TOWERD_CONTINUE) rc = up_broker(u);
    if (rc == TOWERD_CONTINUE) rc = up_connect(u);
    if (rc == TOWERD_CONTINUE) rc = up_roles(u);
    if (rc == TOWERD_CONTINUE) {
        print_banner(u);
        rc = up_supervise(u);
    }
    up_shutdown(u);
    free(u);
    return rc;
}
