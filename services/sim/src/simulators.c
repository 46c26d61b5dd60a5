/* The simulators: one generator hands each record, on time, to the publisher thread of the system that reports it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evt.h"
#include "sim_run.h"

#define QUEUE_MAX 8192       /* records waiting for one publisher before the generator waits */
#define BATCH 512            /* publishes per wait for their acknowledgements */
#define ACK_WAIT_MS 30000    /* how long to wait for acknowledgements before publishing again */
#define STOP_ACK_WAIT_MS 5000 /* the same once asked to stop */
#define STATE_EVERY_NS 1000000000LL
#define NONE UINT64_MAX

/* One record on its way: its ordinal in the trace, what it is, its bytes. */
typedef struct item {
    struct item *next;
    uint64_t idx;
    int kind;
    size_t len;
    char line[]; /* NUL-terminated */
} item;

/* One simulated system instance: a thread, a connection, a queue. */
typedef struct publisher {
    sim_source src;
    bus *b;
    volatile sig_atomic_t *stop; /* the caller's: give up retrying once set */
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* records arrived or quit (publisher waits); room freed (generator waits) */
    item *head, *tail; /* the queue, oldest first */
    size_t n;
    uint64_t busy_from; /* ordinal of the oldest record handed to NATS and not acknowledged, or NONE */
    int quit;           /* publish what is queued, then exit */
    uint64_t stored, dups, retries;
} publisher;

void sim_run_opts_default(sim_run_opts *o)
{
    memset(o, 0, sizeof *o);
    sim_trace_opts_default(&o->trace);
    o->trace.orders = 0;
    o->rate = 60;
    o->warp = 1;
    o->sla_breaches = 1;
    o->trace.mdm = 1; /* the simulators play the master-data system too */
    o->trace.bad_days = 1; /* and slow days, so that the demo has orders at risk (docs/risk.md) */
}

/* ---- publishing ---- */

typedef struct acks {
    publisher *p;
    unsigned char *settled;
    size_t failed;
    char first_error[256];
} acks;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    acks *a = ctx;
    if (ack->result == BUS_PUB_FAILED) {
        if (!a->failed++) snprintf(a->first_error, sizeof a->first_error, "%s", ack->error);
        return;
    }
    a->settled[tag] = 1;
    pthread_mutex_lock(&a->p->mu);
    if (ack->result == BUS_PUB_STORED)
        a->p->stored++;
    else
        a->p->dups++;
    pthread_mutex_unlock(&a->p->mu);
}

/* Hand one record to NATS: a valid one as its protobuf event, anything else as the raw bytes received. */
static ct_status send_one(publisher *p, const item *it, size_t tag)
{
    if (it->kind != SIM_BAD) {
        evt_event *e = NULL;
        evt_error err;
        if (evt_from_json_text(&e, it->line, it->len, &err) == CT_OK) {
            ct_status st = bus_publish_event(p->b, e, tag);
            evt_free(e);
            return st;
        }
        ct_log(CT_LOG_DEBUG, "sim", "%s: record %" PRIu64 " does not validate (%s): published raw", p->src.instance,
               it->idx, err.message);
    }
    /* What a broken adapter sends arrives on its system's subjects all the same; the message id (a hash of
       the bytes) keeps a record sent again after a restart from being stored twice. */
    char subject[96], id[96];
    snprintf(subject, sizeof subject, "tower.evt.%s.invalid", p->src.system);
    snprintf(id, sizeof id, "%s~raw~%016" PRIx64, p->src.instance, ct_hash64(it->line, it->len));
    return bus_publish_raw(p->b, subject, it->line, it->len, id, tag);
}

/* Publish a batch until every record is acknowledged; returns the ordinal of the oldest record still not
   acknowledged when asked to stop first, or NONE. */
static uint64_t publish_batch(publisher *p, item **v, size_t n)
{
    unsigned char settled[BATCH] = {0};
    for (int round = 0;; round++) {
        acks a = {p, settled, 0, ""};
        for (size_t i = 0; i < n; i++)
            if (!settled[i]) send_one(p, v[i], i);
        bus_publish_wait(p->b, *p->stop ? STOP_ACK_WAIT_MS : ACK_WAIT_MS, on_ack, &a);
        uint64_t oldest = NONE;
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            if (!settled[i]) {
                left++;
                if (v[i]->idx < oldest) oldest = v[i]->idx;
            }
        if (!left) return NONE;
        if (round == 0 || round % 30 == 0)
            ct_log(CT_LOG_WARN, "sim", "%s: %zu of %zu records not stored (%s); publishing them again",
                   p->src.instance, left, n, a.failed ? a.first_error : "not sent");
        if (*p->stop) return oldest;
        pthread_mutex_lock(&p->mu);
        p->retries += left;
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < 10 && !*p->stop; i++) usleep(100000);
    }
}

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    item *batch[BATCH];
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->head && !p->quit) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->head) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        size_t nb = 0;
        while (p->head && nb < BATCH) {
            batch[nb++] = p->head;
            p->head = p->head->next;
        }
        if (!p->head) p->tail = NULL;
        p->n -= nb;
        p->busy_from = batch[0]->idx;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);

        uint64_t left = publish_batch(p, batch, nb);
        for (size_t i = 0; i < nb; i++) free(batch[i]);
        pthread_mutex_lock(&p->mu);
        p->busy_from = left;
        pthread_mutex_unlock(&p->mu);
        if (left != NONE) break; /* stopped with records not stored: the state file says where to resume */
    }
    return NULL;
}

/* Queue a record for p, waiting for room; 0 if asked to stop while waiting. */
static int enqueue(publisher *p, const sim_record *rec, uint64_t idx, volatile sig_atomic_t *stop)
{
    item *it = ct_malloc(sizeof *it + rec->len + 1);
    it->next = NULL;
    it->idx = idx;
    it->kind = rec->kind;
    it->len = rec->len;
    memcpy(it->line, rec->line, rec->len + 1);
    pthread_mutex_lock(&p->mu);
    while (p->n >= QUEUE_MAX && !*stop && !p->quit) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    if (p->n >= QUEUE_MAX) {
        pthread_mutex_unlock(&p->mu);
        free(it);
        return 0;
    }
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    p->n++;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

/* ---- the state file: which trace, and from where to go on ---- */

typedef struct run_state {
    uint64_t digest;  /* of the options that decide the trace */
    uint32_t run;     /* the ids' run tag */
    int64_t start_ns; /* the trace's start */
    int64_t shift_ns; /* how much later than their report time records go out (time the simulators were down) */
    uint64_t resume;  /* ordinal of the first record that may not be stored */
} run_state;

static uint64_t trace_digest(const sim_trace_opts *t)
{
    char *s = ct_sprintf("v1 seed=%" PRIu64 " orders=%" PRIu32 " wh=%" PRIu32 " opm=%.17g %.17g %.17g %.17g %.17g %.17g "
                         "%.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g %.17g offsets=%d",
                         t->seed, t->orders, t->warehouses, t->orders_per_minute, t->p_hold, t->p_short_pick,
                         t->p_multi_shipment, t->p_block, t->p_route_fail, t->p_cancel, t->p_missing_pod,
                         t->p_attempt_fail, t->p_posting_fail, t->p_stuck, t->p_late, t->p_duplicate, t->p_bad,
                         t->p_conflict, t->p_drift, t->offsets);
    if (t->mdm) { /* the master data changes the trace: a trace without it keeps its digest */
        char *m = ct_sprintf("%s mdm=%d undefined=%.17g", s, t->mdm, t->p_undefined);
        free(s);
        s = m;
    }
    if (t->bad_days) { /* so do the bad days */
        char *m = ct_sprintf("%s bad_days=%d", s, t->bad_days);
        free(s);
        s = m;
    }
    uint64_t h = ct_hash64(s, strlen(s));
    free(s);
    return h;
}

/* 1 when path held a state, 0 when there is none, -1 when it is unreadable (logged). */
static int state_load(const char *path, run_state *st)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        ct_log(CT_LOG_ERROR, "sim", "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char line[256];
    int seen = 0;
    memset(st, 0, sizeof *st);
    while (fgets(line, sizeof line, f)) {
        unsigned long long u;
        long long v;
        if (sscanf(line, "digest=%llx", &u) == 1) st->digest = u, seen |= 1;
        else if (sscanf(line, "run=%llu", &u) == 1) st->run = (uint32_t)u, seen |= 2;
        else if (sscanf(line, "start_ns=%lld", &v) == 1) st->start_ns = v, seen |= 4;
        else if (sscanf(line, "shift_ns=%lld", &v) == 1) st->shift_ns = v, seen |= 8;
        else if (sscanf(line, "resume=%llu", &u) == 1) st->resume = u, seen |= 16;
    }
    fclose(f);
    if (seen != 31) {
        ct_log(CT_LOG_WARN, "sim", "%s is incomplete: starting a new trace", path);
        return st->run ? 1 : 0;
    }
    return 1;
}

static ct_status state_save(const char *path, const run_state *st)
{
    char *tmp = ct_sprintf("%s.tmp", path);
    ct_status rc = CT_IO;
    FILE *f = fopen(tmp, "w");
    if (!f) goto out;
    fprintf(f,
            "# towerd sim: the trace being published and where a restart goes on (delete to start a new trace)\n"
            "digest=%016" PRIx64 "\nrun=%" PRIu32 "\nstart_ns=%" PRId64 "\nshift_ns=%" PRId64 "\nresume=%" PRIu64 "\n",
            st->digest, st->run, st->start_ns, st->shift_ns, st->resume);
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (!bad && rename(tmp, path) == 0) rc = CT_OK;
out:
    if (rc != CT_OK) ct_log(CT_LOG_ERROR, "sim", "cannot write %s: %s", path, strerror(errno));
    free(tmp);
    return rc;
}

/* ---- the generator ---- */

/* The most orders the generator takes at this rate: an endless run, for years of trace time. */
static uint32_t endless_orders(const sim_trace_opts *t)
{
    double room = 7e18 - (double)t->start_ns - 30.0 * 86400e9;
    double n = room / (2.0 * 60e9 / t->orders_per_minute) * 0.9;
    if (!(n >= 1)) n = 1;
    if (n > 4e9) n = 4e9;
    return (uint32_t)n;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {ns / 1000000000LL, ns % 1000000000LL};
    nanosleep(&ts, NULL);
}

/* The oldest record not known to be stored: the next one not handed over, or older in some queue. */
static uint64_t safe_point(publisher **pubs, int n, uint64_t handed)
{
    uint64_t safe = handed;
    for (int i = 0; i < n; i++) {
        publisher *p = pubs[i];
        if (!p) continue;
        pthread_mutex_lock(&p->mu);
        if (p->busy_from < safe) safe = p->busy_from;
        if (p->head && p->head->idx < safe) safe = p->head->idx;
        pthread_mutex_unlock(&p->mu);
    }
    return safe;
}

static void figures_update(sim_run_figures *f, publisher **pubs, int n, const sim_trace *t)
{
    uint64_t stored = 0, dups = 0, retries = 0;
    for (int i = 0; i < n; i++) {
        publisher *p = pubs[i];
        if (!p) continue;
        pthread_mutex_lock(&p->mu);
        stored += p->stored;
        dups += p->dups;
        retries += p->retries;
        pthread_mutex_unlock(&p->mu);
    }
    sim_trace_stats ts;
    sim_trace_stats_get(t, &ts);
    atomic_store(&f->stored, stored);
    atomic_store(&f->duplicates, dups);
    atomic_store(&f->retries, retries);
    atomic_store(&f->orders, ts.orders_created);
}

static void log_progress(const sim_run_figures *f)
{
    char when[48] = "-";
    int64_t trace_ns = atomic_load(&f->trace_ns);
    if (trace_ns > 0) evt_time_format(trace_ns / 1000000000LL, 0, when);
    ct_log(CT_LOG_INFO, "sim",
           "%" PRIu64 " records handed over: %" PRIu64 " stored, %" PRIu64 " duplicates, %" PRIu64
           " publishes retried; %" PRIu32 " orders; trace time %s",
           atomic_load(&f->records), atomic_load(&f->stored), atomic_load(&f->duplicates), atomic_load(&f->retries),
           atomic_load(&f->orders), when);
}

static void publisher_free(publisher *p)
{
    if (!p) return;
    while (p->head) {
        item *n = p->head->next;
        free(p->head);
        p->head = n;
    }
    bus_close(p->b);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* Connect every publisher and make sure the streams exist; 0 if asked to stop first. */
static ct_status publishers_open(publisher **pubs, int n, const sim_run_opts *o, volatile sig_atomic_t *stop)
{
    int ensured = 0;
    for (int i = 0; i < n; i++) {
        publisher *p = pubs[i];
        if (!p) continue;
        bus_opts bo = *o->bus;
        char name[64];
        snprintf(name, sizeof name, "tower-sim %s", p->src.instance);
        bo.name = name;
        bo.wait_connect = 1;
        if (bus_connect(&p->b, &bo) != CT_OK) return CT_BUS;
        if (ensured) continue;
        /* The first connection makes the streams, so that no publish finds nobody to answer. */
        for (int tries = 0; !*stop; tries++) {
            if (bus_ensure_streams(p->b) == CT_OK) {
                ensured = 1;
                break;
            }
            if (tries == 0) ct_log(CT_LOG_WARN, "sim", "waiting for NATS to create the streams");
            usleep(500000);
        }
        if (!ensured) return CT_OK;
    }
    for (int i = 0; i < n; i++) {
        publisher *p = pubs[i];
        if (!p) continue;
        if (pthread_create(&p->th, NULL, publisher_main, p) != 0) {
            ct_log(CT_LOG_ERROR, "sim", "cannot start the %s publisher thread", p->src.instance);
            return CT_IO;
        }
        p->started = 1;
    }
    return CT_OK;
}

/* ---- the run, stage by stage ---- */

/* What one sim_run holds between its stages. Only the generator's thread (sim_run's caller) touches it; a
   publisher thread sees its own struct, under its mutex. */
typedef struct run {
    const sim_run_opts *o;
    volatile sig_atomic_t *stop;        /* the caller's */
    sim_run_figures *fig;               /* the caller's, or a scratch one */
    int dry;                            /* a dry run: write the records, touch neither NATS nor the clock */
    int endless;                        /* orders 0: as many as the years allow */
    sim_trace_opts to;                  /* the trace's options as this run decides them */
    run_state st;                       /* the state file's contents, as they are to be saved */
    sim_trace *t;
    publisher **pubs;                   /* one per source; NULL for a skipped source, and in a dry run */
    unsigned char *skip;                /* 1 for a source whose records are dropped */
    int npubs;                          /* the generator's sources */
    int go;                             /* the publishers are up and no stop came first (1 in a dry run) */
    uint64_t handed;                    /* ordinal of the next record to hand over */
    sim_record rec;                     /* that record, when have */
    int have, over;                     /* a record is at hand; the trace is over */
    int64_t next_state, next_progress;  /* ct_mono_ns() of the next state save and of the next progress line */
    int64_t t0_mono;                    /* ct_mono_ns() when the run began */
    ct_status rc;
} run;

/* Every figure back to zero, each with an atomic store: another thread may already be reading them. */
static void figures_reset(sim_run_figures *f)
{
    atomic_store(&f->records, 0);
    atomic_store(&f->stored, 0);
    atomic_store(&f->duplicates, 0);
    atomic_store(&f->retries, 0);
    atomic_store(&f->orders, 0);
    atomic_store(&f->run, 0);
    atomic_store(&f->trace_ns, 0);
    atomic_store(&f->resumed, 0);
    atomic_store(&f->done, 0);
    atomic_store(&f->live, 0);
    atomic_store(&f->history, 0);
    atomic_store(&f->history_real_ns, 0);
}

static ct_status opts_check(const sim_run_opts *o, int dry)
{
    if (!(o->rate > 0) || !isfinite(o->rate) || !(o->warp > 0) || !isfinite(o->warp)) {
        ct_log(CT_LOG_ERROR, "sim", "the rate and the warp must be positive numbers");
        return CT_INVALID;
    }
    if (o->history_ns < 0 || o->history_ns > SIM_HISTORY_MAX_NS) {
        ct_log(CT_LOG_ERROR, "sim", "the history must be between 0 and 30 days");
        return CT_INVALID;
    }
    if (!dry && !o->bus) {
        ct_log(CT_LOG_ERROR, "sim", "neither NATS options nor a dry-run output: nowhere to publish");
        return CT_INVALID;
    }
    return CT_OK;
}

/* A live run with a state file: go on with the trace it describes if it is the one asked for, else take the
   next run tag. *loaded says whether a state was read. */
static ct_status state_resume(run *r, int *loaded)
{
    run_state old;
    *loaded = state_load(r->o->state_path, &old);
    if (*loaded < 0) return CT_IO;
    if (*loaded && old.digest == r->st.digest) {
        r->st = old;
        atomic_store(&r->fig->resumed, 1);
    } else if (*loaded) {
        r->st.run = old.run + 1;
        ct_log(CT_LOG_INFO, "sim", "the trace options changed since the last run: starting run %" PRIu32, r->st.run);
    }
    return CT_OK;
}

/* Which trace this run plays (its options, start and run tag) and from which record. */
static ct_status trace_place(run *r)
{
    const sim_run_opts *o = r->o;
    r->to = o->trace;
    r->to.orders_per_minute = o->rate / o->warp;
    r->endless = r->to.orders == 0;
    r->st.digest = trace_digest(&r->to);
    int loaded = 0;
    if (!r->dry && o->state_path && state_resume(r, &loaded) != CT_OK) return CT_IO;
    if (!r->dry && !atomic_load(&r->fig->resumed)) {
        /* A new trace starts now, on a whole minute like the default start (route ETAs are kept in whole
           minutes): then its story is a dry run's, only shifted in time. */
        r->st.start_ns = (ct_now_ns() - r->o->history_ns) / 60000000000LL * 60000000000LL;
        r->st.shift_ns = 0;
        r->st.resume = 0;
        if (!loaded) r->st.run = o->state_path ? 1 : (uint32_t)(ct_wall_ns() / 1000000000LL);
    }
    if (!r->dry) {
        r->to.start_ns = r->st.start_ns;
        r->to.run = r->st.run;
    }
    atomic_store(&r->fig->run, r->to.run);
    return CT_OK;
}

/* The generator; an endless run asks for as many orders as the years allow, fewer while it refuses. */
static ct_status trace_open(run *r)
{
    if (r->endless) r->to.orders = 1; /* checks the other options first */
    if (sim_trace_create(&r->t, &r->to) != CT_OK) {
        ct_log(CT_LOG_ERROR, "sim", "invalid simulator options (a rate outside 0..1, too few warehouses, or an "
                                    "order rate so low that the trace would outlast the year 2200)");
        return CT_INVALID;
    }
    if (!r->endless) return CT_OK;
    sim_trace_destroy(r->t);
    r->t = NULL;
    for (r->to.orders = endless_orders(&r->to); sim_trace_create(&r->t, &r->to) != CT_OK; r->to.orders /= 2)
        if (r->to.orders <= 1) return CT_INVALID;
    return CT_OK;
}

static publisher *publisher_new(const sim_source *src, volatile sig_atomic_t *stop)
{
    publisher *p = ct_calloc(1, sizeof *p);
    p->src = *src;
    p->stop = stop;
    p->busy_from = NONE;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

/* Which sources are skipped (the tower when its stand-in is off), decided once, for dry runs too; and a
   publisher, not yet connected, for each other source of a live run. */
static void publishers_new(run *r)
{
    r->npubs = sim_trace_source_count(r->t);
    r->pubs = ct_calloc((size_t)r->npubs, sizeof *r->pubs);
    r->skip = ct_calloc((size_t)r->npubs, 1);
    for (int i = 0; i < r->npubs; i++) {
        sim_source src;
        sim_trace_source_get(r->t, i, &src);
        r->skip[i] = !r->o->sla_breaches && strcmp(src.system, "tower") == 0;
        if (!r->skip[i] && !r->dry) r->pubs[i] = publisher_new(&src, r->stop);
    }
}

/* A live run: connect the publishers and start their threads; r->go says whether to go on. */
static ct_status publishers_start(run *r)
{
    ct_status rc = publishers_open(r->pubs, r->npubs, r->o, r->stop);
    r->go = rc == CT_OK && !*r->stop;
    if (r->go)
        ct_log(CT_LOG_INFO, "sim",
               "%s run %" PRIu32 ": %d publishers, %.6g orders per minute (trace time runs %.6gx), seed %" PRIu64
               "%s",
               atomic_load(&r->fig->resumed) ? "resuming" : "starting", r->st.run,
               r->npubs - (r->o->sla_breaches ? 0 : 1), r->o->rate, r->o->warp, r->to.seed,
               r->endless ? ", endless" : "");
    return rc;
}

/* The first record that may not be stored (the state's resume point), and for a live run the shift that
   puts its report time no earlier than now. */
static void trace_seek(run *r)
{
    for (; r->handed < r->st.resume; r->handed++)
        if (!sim_trace_next(r->t, &r->rec)) {
            r->over = 1;
            break;
        }
    if (!r->over) {
        r->have = sim_trace_next(r->t, &r->rec);
        r->over = !r->have;
    }
    if (r->have && !r->dry && atomic_load(&r->fig->resumed)) {
        /* Records the simulators should have sent while they were stopped go out from now on, not in a burst
           (a new trace's history, reported before now, goes out at once). */
        int64_t late = ct_now_ns() - (r->rec.emit_ns + r->st.shift_ns);
        if (late > 0) r->st.shift_ns += late;
    }
}

/* A live run's chores between records: the state file and the figures every second, the progress line;
   0 (r->rc set) when the state file cannot be written. */
static int live_chores(run *r)
{
    int64_t mono = ct_mono_ns();
    if (mono >= r->next_state) {
        r->st.resume = safe_point(r->pubs, r->npubs, r->handed);
        if (r->o->state_path && state_save(r->o->state_path, &r->st) != CT_OK) {
            r->rc = CT_IO;
            return 0;
        }
        figures_update(r->fig, r->pubs, r->npubs, r->t);
        r->next_state = mono + STATE_EVERY_NS;
    }
    if (mono >= r->next_progress) {
        log_progress(r->fig);
        r->next_progress = mono + r->o->progress_ns;
    }
    return 1;
}

/* The first record not yet due: what was reported before now (the history) is all handed over. */
static void going_live(run *r)
{
    if (atomic_load(&r->fig->live)) return;
    int64_t real = ct_mono_ns() - r->t0_mono;
    uint64_t n = atomic_load(&r->fig->records);
    atomic_store(&r->fig->history, n);
    atomic_store(&r->fig->history_real_ns, real);
    atomic_store(&r->fig->live, 1);
    ct_log(CT_LOG_INFO, "sim", "history handed over: %" PRIu64 " records reported before now, in %.2f s; playing live",
           n, (double)real / 1e9);
}

/* 1 when the record's report time has come; else a short sleep towards it, then 0. */
static int record_due(run *r)
{
    int64_t wait = r->rec.emit_ns + r->st.shift_ns - ct_now_ns();
    if (wait <= 0) return 1;
    going_live(r);
    /* Warped nanoseconds to real ones; short sleeps keep a stop request prompt. */
    double real = (double)wait / ct_clock_factor();
    sleep_ns(real > 50e6 ? 50000000LL : real < 1e5 ? 100000LL : (int64_t)real);
    return 0;
}

/* The record to its publisher's queue, or to the dry-run output; 0 when that failed (r->rc set if the output
   did) or a stop came while waiting for room. */
static int hand_over(run *r)
{
    const sim_record *rec = &r->rec;
    if (r->skip[rec->source]) return 1;
    if (r->dry) {
        fwrite(rec->line, 1, rec->len, r->o->dry_run);
        if (fputc('\n', r->o->dry_run) == EOF) {
            r->rc = CT_IO;
            return 0;
        }
    } else if (!enqueue(r->pubs[rec->source], rec, r->handed, r->stop)) {
        return 0;
    }
    atomic_fetch_add(&r->fig->records, 1);
    return 1;
}

static void trace_advance(run *r)
{
    atomic_store(&r->fig->trace_ns, r->rec.emit_ns);
    r->handed++;
    r->have = sim_trace_next(r->t, &r->rec);
    r->over = !r->have;
    if (r->dry && (atomic_load(&r->fig->records) & 1023) == 0) figures_update(r->fig, r->pubs, r->npubs, r->t);
}

/* Hand every record over in its turn (a live run at its report time) until the trace is over, a stop, or a
   failure. */
static void generate(run *r)
{
    trace_seek(r);
    r->next_state = ct_mono_ns() + STATE_EVERY_NS;
    r->next_progress = r->o->progress_ns > 0 ? ct_mono_ns() + r->o->progress_ns : INT64_MAX;
    while (r->have && !*r->stop) {
        if (!r->dry) {
            if (!live_chores(r)) break;
            if (!record_due(r)) continue;
        }
        if (!hand_over(r)) break;
        trace_advance(r);
    }
}

/* Publish what is queued (giving up on what NATS does not take once stopped): every thread told, then joined. */
static void publishers_quit(publisher **pubs, int n)
{
    for (int i = 0; i < n; i++) {
        publisher *p = pubs[i];
        if (!p || !p->started) continue;
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    for (int i = 0; i < n; i++)
        if (pubs[i] && pubs[i]->started) pthread_join(pubs[i]->th, NULL);
}

/* The last figures, and where to go on: a live run saves its state, a dry run flushes its output. */
static void run_finish(run *r)
{
    figures_update(r->fig, r->pubs, r->npubs, r->t);
    if (!r->dry && r->rc == CT_OK && r->npubs > 0 && r->pubs) {
        r->st.resume = safe_point(r->pubs, r->npubs, r->handed);
        if (r->o->state_path && r->handed > 0 && state_save(r->o->state_path, &r->st) != CT_OK) r->rc = CT_IO;
        atomic_store(&r->fig->done, r->over && r->st.resume == r->handed);
        log_progress(r->fig);
        if (atomic_load(&r->fig->done)) ct_log(CT_LOG_INFO, "sim", "the trace is over: every record is stored");
    } else if (r->dry) {
        atomic_store(&r->fig->done, r->over);
        if (fflush(r->o->dry_run) != 0 || ferror(r->o->dry_run)) r->rc = CT_IO;
    }
}

static void run_free(run *r)
{
    for (int i = 0; i < r->npubs; i++) publisher_free(r->pubs[i]);
    free(r->pubs);
    free(r->skip);
    sim_trace_destroy(r->t);
}

ct_status sim_run(const sim_run_opts *o, volatile sig_atomic_t *stop, sim_run_figures *figures)
{
    sim_run_figures scratch;
    run r = {.o = o, .stop = stop, .fig = figures ? figures : &scratch, .dry = o->dry_run != NULL, .t0_mono = ct_mono_ns()};
    figures_reset(r.fig);
    r.rc = opts_check(o, r.dry);
    if (r.rc == CT_OK) r.rc = trace_place(&r);
    if (r.rc == CT_OK) r.rc = trace_open(&r);
    if (r.rc == CT_OK) {
        publishers_new(&r);
        if (r.dry)
            r.go = 1;
        else
            r.rc = publishers_start(&r);
        if (r.go) generate(&r);
        publishers_quit(r.pubs, r.npubs);
        run_finish(&r);
    }
    run_free(&r);
    return r.rc;
}
