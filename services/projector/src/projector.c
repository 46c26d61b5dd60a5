/* The projector loop: fetch, decode, fold one batch per LMDB transaction with its checkpoint, then notify. */
#include "projector.h"

#include "ct_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define WAIT_IDLE_MS 100
#define FETCH 1000

typedef struct batch {
    store_input *in;
    evt_error *err;
    store_outcome *out;
    size_t n;
} batch;

/* Is the store able to follow this stream? Never skip events silently. */
static int check_stream(store *s, const char *dir, bus_stream_state *st, int rebuild)
{
    store_reader *r = NULL;
    if (store_reader_begin(s, &r) != CT_OK) return PROJECTOR_FAIL;
    store_stats ss;
    store_reader_stats(r, &ss);
    uint64_t created = store_reader_meta(r, PROJECTOR_META_STREAM_CREATED);
    store_reader_end(r);
    if (created && st->created_ns && created != (uint64_t)st->created_ns) {
        ct_log(CT_LOG_ERROR, "projector",
               "the events stream was recreated since the store %s was built from it (stream created %" PRId64
               ", store built from a stream created %" PRIu64 "): its sequences mean other events now. "
               "Rebuild the store from the stream: towerd rebuild --data %s",
               dir, st->created_ns, created, dir);
        return PROJECTOR_NEED_REBUILD;
    }
    if (ss.applied_seq > st->last_seq) {
        ct_log(CT_LOG_ERROR, "projector",
               "the store %s has applied up to sequence %" PRIu64 " but the stream ends at %" PRIu64
               ": the stream lost events (a host crash before its fsync?) or was replaced. "
               "Rebuild the store from the stream: towerd rebuild --data %s",
               dir, ss.applied_seq, st->last_seq, dir);
        return PROJECTOR_NEED_REBUILD;
    }
    /* An emptied stream says first_seq = last_seq + 1; a new one says 0. */
    if (st->first_seq > 0 && ss.applied_seq + 1 < st->first_seq && !(rebuild && ss.applied_seq == 0)) {
        ct_log(CT_LOG_ERROR, "projector",
               "events %" PRIu64 "..%" PRIu64 " were removed from the stream (limits) before the store %s applied "
               "them. Rebuild the store from what the stream holds (towerd rebuild --data %s) or raise the "
               "stream's limits",
               ss.applied_seq + 1, st->first_seq - 1, dir, dir);
        return PROJECTOR_NEED_REBUILD;
    }
    return PROJECTOR_OK;
}

/* The change notices of one commit, on BUS_CHANGES_SUBJECT: {"seq","prev","changes":[{view,op,item}],"more"},
 * split into parts of about NOTICE_PART bytes. A commit without changes still sends one, so that
 * the chain of prev -> seq is unbroken for readers that check it. */
#define NOTICE_PART (256 * 1024)

static void notice_send(bus *b, uint64_t seq, uint64_t prev, json_t *arr, int more)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "seq", json_integer((json_int_t)seq));
    json_object_set_new(msg, "prev", json_integer((json_int_t)prev));
    json_object_set_new(msg, "changes", arr);
    json_object_set_new(msg, "more", json_boolean(more));
    char *txt = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (txt) bus_notify(b, BUS_CHANGES_SUBJECT, txt, strlen(txt));
    free(txt);
    json_decref(msg);
}

static void notify(bus *b, const store_changes *c, uint64_t prev)
{
    json_t *arr = json_array();
    size_t bytes = 0;
    for (size_t i = 0; i < c->n; i++) {
        json_t *ch = json_object();
        json_object_set_new(ch, "view", json_string(fold_view_name(c->v[i].view)));
        json_object_set_new(ch, "op", json_string(store_op_name(c->v[i].op)));
        json_object_set_new(ch, "item", store_item_to_json(c->v[i].item, 0));
        json_array_append_new(arr, ch);
        bytes += 512; /* a generous estimate of one change's JSON */
        if (bytes >= NOTICE_PART && i + 1 < c->n) {
            notice_send(b, c->seq, prev, arr, 1);
            arr = json_array();
            bytes = 0;
        }
    }
    notice_send(b, c->seq, prev, arr, 0);
}

/* A rebuild's progress on stderr: a bar redrawn in place on a terminal; in a log (not a terminal),
 * a line every PROGRESS_LOG_NS. The final call ends it with the figures of the whole run. */
#define PROGRESS_TTY_NS 200000000LL
#define PROGRESS_LOG_NS 5000000000LL

typedef struct progress_state {
    int tty;            /* stderr is a terminal */
    uint64_t last_line; /* the applied sequence last written (UINT64_MAX: none yet) */
    int64_t last_ns;    /* when (monotonic) */
} progress_state;

void projector_progress_format(char *buf, size_t cap, uint64_t applied, uint64_t first, uint64_t target, double secs)
{
    /* The stream may have grown since the target was read (a rebuild's fetch brings what follows it too),
     * and a store may start beyond it: the total is never less than what is known done. */
    if (applied < first) first = applied;
    if (target < applied) target = applied;
    uint64_t did = applied - first, todo = target - first, left = target - applied;
    double done = todo ? (double)did / (double)todo : 1.0;
    double rate = secs > 0 ? (double)did / secs : 0;
    double eta = rate > 0 && left ? (double)left / rate : 0;
    char bar[31];
    int fill = (int)(done * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    snprintf(buf, cap, "rebuild [%s] %5.1f%%  %" PRIu64 "/%" PRIu64 "  %.0f events/s  ETA %.0fs", bar, done * 100,
             applied, target, rate, eta);
}

static void progress(progress_state *ps, uint64_t applied, uint64_t first, uint64_t target, int64_t t0, int final)
{
    int tty = ps->tty;
    int64_t mono = ct_mono_ns();
    if (!final && ps->last_ns && mono - ps->last_ns < (tty ? PROGRESS_TTY_NS : PROGRESS_LOG_NS)) return;
    ps->last_ns = mono;
    if (!tty && final && applied == ps->last_line) return; /* that line is the final one already */
    char line[160];
    projector_progress_format(line, sizeof line, applied, first, target, (double)(mono - t0) / 1e9);
    fprintf(stderr, "%s%s%s", tty ? "\r" : "", line, tty ? (final ? "   \n" : "   ") : "\n");
    ps->last_line = applied;
}

typedef struct dlq_ctx {
    bus *b;
    uint64_t *published;
    int failed;
} dlq_ctx;

static int publish_one(void *vctx, const Tower__V1__DeadLetter *d)
{
    dlq_ctx *c = vctx;
    const Tower__V1__ViewItem *it = d->item;
    if (!it) return 0;
    if (bus_dead_letter(c->b, it->seq, it->code ? it->code : "UNKNOWN", it->message ? it->message : "",
                        d->raw.data, d->raw.len) != CT_OK) {
        c->failed = 1;
        return 1; /* NATS is away: the next commit or restart retries from here */
    }
    *c->published = it->seq;
    return 0;
}

/* Send the dead letters above the watermark to TOWER_DLQ, from the store: a dead letter
 * committed while NATS was away, or just before a crash, still gets there. */
static void flush_dlq(bus *b, store *s, uint64_t *published)
{
    store_reader *r = NULL;
    if (store_reader_begin(s, &r) != CT_OK) return;
    dlq_ctx c = {b, published, 0};
    store_dead_letters_after(r, *published, publish_one, &c);
    store_reader_end(r);
}

/* A hash of the SLA rules, to notice at start that they changed since the store's dues were computed. */
static uint64_t rules_hash(const fold_sla_rules *r)
{
    if (!r) r = fold_sla_defaults();
    ct_buf b = {0};
    for (size_t i = 0; i < r->n; i++) {
        const fold_sla_rule *x = &r->v[i];
        ct_buf_addf(&b, "%s|%d|%lld|%s|%s|%s|%d\n", x->name, (int)x->pair, (long long)x->within_ns,
                    x->warehouse ? x->warehouse : "", x->carrier ? x->carrier : "", x->channel ? x->channel : "",
                    x->disabled);
    }
    uint64_t h = ct_hash64(b.data ? b.data : "", b.len);
    ct_buf_free(&b);
    return h ? h : 1;
}

/* The figures kept in the store's meta with every commit, for /metrics: the messages folded and the
 * commit-duration histogram. They carry on from what the store holds, so a restart resets nothing. */
typedef struct commit_figures {
    uint64_t events;              /* PROJECTOR_META_EVENTS_TOTAL */
    uint64_t slot[CT_HIST_SLOTS]; /* commits per duration slot */
    uint64_t sum_ns;              /* their total duration */
    char keys[CT_HIST_SLOTS][32]; /* the slots' meta keys */
} commit_figures;

#define COMMIT_META (CT_HIST_SLOTS + 2)

static void figures_load(store_reader *r, commit_figures *f)
{
    f->events = store_reader_meta(r, PROJECTOR_META_EVENTS_TOTAL);
    f->sum_ns = store_reader_meta(r, PROJECTOR_META_COMMIT_SUM_NS);
    for (int i = 0; i < CT_HIST_SLOTS; i++) {
        snprintf(f->keys[i], sizeof f->keys[i], PROJECTOR_META_COMMIT_SLOT, i);
        f->slot[i] = store_reader_meta(r, f->keys[i]);
    }
}

/* The figures as COMMIT_META meta entries (borrowing f's keys). */
static void figures_meta(const commit_figures *f, store_meta *out)
{
    out[0] = (store_meta){PROJECTOR_META_EVENTS_TOTAL, f->events};
    out[1] = (store_meta){PROJECTOR_META_COMMIT_SUM_NS, f->sum_ns};
    for (int i = 0; i < CT_HIST_SLOTS; i++) out[2 + i] = (store_meta){f->keys[i], f->slot[i]};
}

static void figures_commit(commit_figures *f, int64_t ns)
{
    f->slot[ct_hist_slot(ns)]++;
    f->sum_ns += (uint64_t)(ns > 0 ? ns : 0);
}

/* Not connected: say so when it starts, then every 30 s, while the bus retries in the background
 * (no round trip is tried meanwhile: it would wait out its timeout, deaf to *stop). */
static void log_waiting(bus *b, int64_t *since_ns, int64_t *next_ns)
{
    int64_t now = ct_mono_ns();
    if (!*since_ns) {
        *since_ns = now;
        *next_ns = now + 30000000000LL;
        ct_log(CT_LOG_WARN, "projector", "waiting for NATS at %s (not connected); retrying", bus_servers(b));
    } else if (now >= *next_ns) {
        *next_ns = now + 30000000000LL;
        ct_log(CT_LOG_WARN, "projector", "still waiting for NATS at %s after %lld s; retrying", bus_servers(b),
               (long long)((now - *since_ns) / 1000000000LL));
    }
}

int projector_run(bus *b, const projector_opts *o, volatile sig_atomic_t *stop, projector_figures *fig)
{
    const char *consumer = o->consumer ? o->consumer : "tower-projector";
    size_t max = o->batch ? o->batch : 1000;
    int64_t quiet = o->quiet_ms > 0 ? o->quiet_ms : 5;
    int rc = PROJECTOR_OK;
    store *s = NULL;
    bus_consumer *c = NULL;
    batch bt = {0};
    store_changes changes = {0};
    bus_stream_state st = {0};
    projector_figures local = {0};
    size_t n = 0;              /* inputs gathered for the next commit */
    int64_t batch_t0 = 0;      /* when the first of them arrived (monotonic) */
    uint64_t backlog = 0;      /* messages still in the stream after the last one fetched */
    /* A batch is committed when full, when the stream is quiet for `quiet` ms, or, while the
     * projector is caught up, at the latest this long after its first event arrived: a steady flow
     * never holds an event for a whole batch, and a projector behind commits full batches (fewer
     * fsyncs) until it has caught up. */
    const int64_t max_delay_ns = o->stop_at_seq ? INT64_MAX / 2 /* a rebuild: throughput first */
                                                : (quiet * 2 > 10 ? quiet * 2 : 10) * 1000000LL;
    bus_batch *lists = NULL;   /* the fetched messages they borrow from */
    size_t n_lists = 0, cap_lists = 0;
    uint64_t gap_seen = 0;     /* the sequence a gap was last seen at */
    int reread = 0;            /* reopen the consumer at once, without waiting */
    uint64_t dlq_published = 0; /* dead letters up to this sequence are in TOWER_DLQ */
    commit_figures cf = {0};
    if (!fig) fig = &local;

    store_opts so = {.dir = o->data_dir, .flat = o->flat, .sla_rules = o->sla_rules};
    ct_status opened = store_open(&s, &so);
    if (opened != CT_OK) {
        /* A damaged store cannot follow the stream either: the way out is the same, a rebuild. */
        rc = opened == CT_STORE_CORRUPT ? PROJECTOR_NEED_REBUILD : PROJECTOR_FAIL;
        goto out;
    }
    uint64_t sla_hash = rules_hash(o->sla_rules);
    {
        store_reader *r0 = NULL;
        if (store_reader_begin(s, &r0) == CT_OK) {
            uint64_t was = store_reader_meta(r0, PROJECTOR_META_SLA_RULES);
            store_reader_end(r0);
            if (was && was != sla_hash)
                ct_log(CT_LOG_WARN, "projector",
                       "the SLA rules changed since the store %s last applied events: dues are recomputed with the "
                       "new rules as orders and shipments get new events; towerd rebuild recomputes them all now",
                       o->data_dir);
        }
    }
    bt.in = ct_calloc(max + FETCH, sizeof *bt.in);
    bt.err = ct_calloc(max + FETCH, sizeof *bt.err);
    bt.out = ct_calloc(max + FETCH, sizeof *bt.out);

    uint64_t applied = 0, first_applied = 0;
    int64_t t0 = ct_mono_ns(), rate_t = ct_mono_ns();
    progress_state ps = {isatty(STDERR_FILENO), UINT64_MAX, 0};
    uint64_t rate_n = 0;
    int need_open = 1;
    int64_t waiting_since = 0, waiting_log = 0; /* not connected since (monotonic), next log line */
    while (!*stop) {
        if (need_open && !bus_is_connected(b)) {
            log_waiting(b, &waiting_since, &waiting_log);
            goto retry;
        }
        waiting_since = 0;
        if (need_open) {
            bus_consumer_close(c);
            c = NULL;
            ct_status bs = bus_stream_info(b, &st);
            if (bs == CT_NOT_FOUND) {
                if (bus_ensure_streams(b) != CT_OK) goto retry;
                continue;
            }
            if (bs != CT_OK) goto retry;
            rc = check_stream(s, o->data_dir, &st, o->flat);
            if (rc != PROJECTOR_OK) goto out;
            store_reader *r = NULL;
            if (store_reader_begin(s, &r) != CT_OK) {
                rc = PROJECTOR_FAIL;
                goto out;
            }
            store_stats ss;
            store_reader_stats(r, &ss);
            figures_load(r, &cf);
            store_reader_end(r);
            applied = ss.applied_seq;
            if (!first_applied) first_applied = applied;
            if (o->dead_letter_stream) {
                /* Dead letters committed but not yet in TOWER_DLQ when we stopped: send them now. */
                store_reader *r2 = NULL;
                if (store_reader_begin(s, &r2) == CT_OK) {
                    dlq_published = store_reader_meta(r2, PROJECTOR_META_DLQ_PUBLISHED);
                    store_reader_end(r2);
                }
                flush_dlq(b, s, &dlq_published);
            }
            atomic_store_explicit(&fig->applied_seq, applied, memory_order_relaxed);
            atomic_store_explicit(&fig->stream_last_seq, st.last_seq, memory_order_relaxed);
            if (o->stop_at_seq && applied >= o->stop_at_seq) break;
            /* A rebuild starts from what the stream still holds. */
            uint64_t from = applied + 1 < st.first_seq && o->flat ? st.first_seq : applied + 1;
            if (bus_consumer_open(&c, b, consumer, from) != CT_OK) goto retry;
            ct_log(CT_LOG_INFO, "projector", "consuming %s from sequence %" PRIu64 " (stream holds %" PRIu64 "..%" PRIu64 ")",
                   BUS_EVENTS_STREAM, applied + 1, st.first_seq, st.last_seq);
            need_open = 0;
        }
        atomic_store_explicit(&fig->connected, bus_is_connected(b), memory_order_relaxed);

        /* Gather fetches until the batch is full or the stream is quiet for a few ms. */
        /* Always the same fetch size: cnats 3.4 crashes in _fetch when a later fetch on
         * a subscription asks for fewer messages than an earlier one. The arrays have
         * FETCH slots of slack, so a batch may exceed max by less than one fetch. */
        bus_batch msgs;
        int64_t wait = WAIT_IDLE_MS;
        if (n && backlog > 0) {
            wait = quiet;
        } else if (n) {
            int64_t left = (batch_t0 + max_delay_ns - ct_mono_ns()) / 1000000LL;
            wait = left < quiet ? (left > 1 ? left : 1) : quiet;
        }
        ct_status fs = bus_consumer_fetch(c, FETCH, wait, &msgs);
        if (fs == CT_OK) {
            uint64_t last_in = n ? bt.in[n - 1].seq : applied;
            for (size_t i = 0; i < msgs.n; i++) {
                const bus_msg *m = &msgs.v[i];
                if (m->seq <= last_in) continue; /* redelivered after a reconnect */
                if (m->seq > last_in + 1 && gap_seen != last_in + 1) {
                    /* Never skip silently: re-read from the checkpoint. A hole that is still
                     * there the second time is one the stream really has (deleted messages). */
                    ct_log(CT_LOG_WARN, "projector", "expected sequence %" PRIu64 ", got %" PRIu64 "; re-reading from there",
                           last_in + 1, m->seq);
                    gap_seen = last_in + 1;
                    need_open = reread = 1;
                    break;
                }
                if (m->seq > last_in + 1)
                    ct_log(CT_LOG_WARN, "projector", "sequences %" PRIu64 "..%" PRIu64 " are not in the stream (deleted)",
                           last_in + 1, m->seq - 1);
                evt_event *e = NULL;
                evt_from_protobuf(&e, m->data, m->len, &bt.err[n]);
                bt.in[n] = (store_input){m->seq, e, &bt.err[n], m->data, m->len, "application/x-protobuf"};
                last_in = m->seq;
                n++;
            }
            if (n_lists == cap_lists) {
                cap_lists = cap_lists ? cap_lists * 2 : 8;
                lists = ct_realloc(lists, cap_lists * sizeof *lists);
            }
            lists[n_lists++] = msgs;
            if (n && !batch_t0) batch_t0 = ct_mono_ns();
            if (msgs.n) backlog = msgs.v[msgs.n - 1].pending;
            if (need_open && !n) goto reopen;
            if (!need_open && n < max && !(o->stop_at_seq && last_in >= o->stop_at_seq) &&
                (backlog > 0 || ct_mono_ns() - batch_t0 < max_delay_ns))
                continue;
        } else if (fs == CT_TIMEOUT) {
            if (!n) {
                if (o->progress) progress(&ps, applied, first_applied, o->stop_at_seq, t0, 0);
                /* Idle, a rebuild may have swapped generations: follow it now, not at the next event. */
                if (!o->flat && store_generation_changed(s)) goto reopen;
                continue;
            }
        } else {
            need_open = 1;
            if (!n) goto retry;
        }

        if (n) {
            int64_t now = ct_now_ns();
            double rate = atomic_load_explicit(&fig->rate, memory_order_relaxed);
            store_meta meta[6 + COMMIT_META] = {
                {PROJECTOR_META_STREAM_CREATED, (uint64_t)st.created_ns},
                {PROJECTOR_META_STREAM_LAST, st.last_seq > bt.in[n - 1].seq ? st.last_seq : bt.in[n - 1].seq},
                {PROJECTOR_META_COMMIT_NS, (uint64_t)now},
                {PROJECTOR_META_RATE, (uint64_t)(rate * 1000)},
                {PROJECTOR_META_DLQ_PUBLISHED, dlq_published},
                {PROJECTOR_META_SLA_RULES, sla_hash}};
            cf.events += n;
            figures_meta(&cf, meta + 6);
            int64_t commit_t0 = ct_mono_ns();
            ct_status as = store_apply_meta(s, bt.in, n, now, bt.out, o->notify ? &changes : NULL, meta,
                                            sizeof meta / sizeof meta[0]);
            figures_commit(&cf, ct_mono_ns() - commit_t0);
            if (as != CT_OK) {
                for (size_t i = 0; i < n; i++) evt_free(bt.in[i].event);
                n = 0;
                rc = PROJECTOR_FAIL;
                goto out;
            }
            uint64_t prev_applied = applied;
            applied = bt.in[n - 1].seq;
            for (size_t i = 0; i < n; i++) {
                switch (bt.out[i]) {
                case STORE_APPLIED: atomic_fetch_add_explicit(&fig->events, 1, memory_order_relaxed); break;
                case STORE_DUPLICATE: atomic_fetch_add_explicit(&fig->duplicates, 1, memory_order_relaxed); break;
                case STORE_DEAD_LETTER:
                    atomic_fetch_add_explicit(&fig->dead_letters, 1, memory_order_relaxed);
                    /* A rebuild re-derives dead letters the live projector reported already: it
                     * counts them (below) rather than logging each again. */
                    ct_log(o->stop_at_seq ? CT_LOG_DEBUG : CT_LOG_WARN, "projector",
                           "dead letter at sequence %" PRIu64 ": %s: %s", bt.in[i].seq,
                           bt.in[i].event ? "CONFLICTING_DUPLICATE" : evt_code_str(bt.err[i].code),
                           bt.in[i].event ? "eventId already applied with different content" : bt.err[i].message);
                    break;
                case STORE_SKIPPED: break;
                }
                evt_free(bt.in[i].event);
            }
            if (o->notify) notify(b, &changes, prev_applied);
            if (o->dead_letter_stream) flush_dlq(b, s, &dlq_published);
            atomic_store_explicit(&fig->applied_seq, applied, memory_order_relaxed);
            if (applied > st.last_seq) st.last_seq = applied;
            atomic_store_explicit(&fig->stream_last_seq, st.last_seq, memory_order_relaxed);
            atomic_store_explicit(&fig->last_commit_ns, now, memory_order_relaxed);
            rate_n += n;
            int64_t mono = ct_mono_ns();
            if (mono - rate_t > 1000000000LL) {
                atomic_store_explicit(&fig->rate, (double)rate_n / ((double)(mono - rate_t) / 1e9),
                                      memory_order_relaxed);
                rate_n = 0;
                rate_t = mono;
            }
            if (o->progress) progress(&ps, applied, first_applied, o->stop_at_seq, t0, 0);
        }
    reopen:
        n = 0;
        batch_t0 = 0;
        for (size_t i = 0; i < n_lists; i++) bus_batch_free(&lists[i]);
        n_lists = 0;
        if (reread) {
            reread = 0;
            continue;
        }
        if (need_open) goto retry;
        if (o->stop_at_seq && applied >= o->stop_at_seq) break;
        if (!o->flat && store_generation_changed(s)) {
            /* A rebuild swapped in a new generation: continue from its checkpoint. */
            ct_log(CT_LOG_INFO, "projector", "the store was rebuilt; reopening %s", o->data_dir);
            store_close(s);
            s = NULL;
            if (store_open(&s, &so) != CT_OK) {
                rc = PROJECTOR_FAIL;
                goto out;
            }
            need_open = 1;
        }
        continue;
    retry:
        atomic_store_explicit(&fig->connected, 0, memory_order_relaxed);
        for (int i = 0; i < 4 && !*stop; i++) usleep(250000);
    }
    if (o->progress) progress(&ps, applied, first_applied, o->stop_at_seq ? o->stop_at_seq : applied, t0, 1);
    if (o->stop_at_seq && !*stop)
        ct_log(CT_LOG_INFO, "projector", "replayed up to sequence %" PRIu64 ": %" PRIu64 " events applied, %" PRIu64
               " duplicates, %" PRIu64 " dead letters (GET /api/v1/dead-letters lists them)", applied,
               atomic_load_explicit(&fig->events, memory_order_relaxed),
               atomic_load_explicit(&fig->duplicates, memory_order_relaxed),
               atomic_load_explicit(&fig->dead_letters, memory_order_relaxed));
out:
    for (size_t i = 0; i < n; i++) evt_free(bt.in[i].event);
    for (size_t i = 0; i < n_lists; i++) bus_batch_free(&lists[i]);
    free(lists);
    store_changes_free(&changes);
    bus_consumer_close(c);
    store_close(s);
    free(bt.in);
    free(bt.err);
    free(bt.out);
    return rc;
}
