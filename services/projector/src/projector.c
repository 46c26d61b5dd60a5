/* The projector loop: fetch, decode, fold one batch per LMDB transaction with its checkpoint, then notify. */
#include "projector.h"

#include "ct_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define WAIT_IDLE_MS 100
#define FETCH 1000
#define REBUILD_CACHE_BYTES ((size_t)1 << 30)

/* One batch: the inputs gathered for a commit and the fetched messages they borrow from. The projector has
 * two: while one is committed (on a thread of its own, while the projector is behind), the next is gathered. */
typedef struct batch {
    store_input *in;
    evt_error *err;
    store_outcome *out;
    size_t n;                  /* inputs gathered */
    bus_batch *lists;          /* the fetched messages they borrow from */
    size_t n_lists, cap_lists;
    store_changes changes;     /* the commit's view changes (for the notices) */
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

/* The change notices of one commit, on BUS_CHANGES_SUBJECT: {"seq","prev","changes":[{view,op,item}],"more",
 * "store"} ("store": the store's id in hex, store.h STORE_META_ID), split into parts of about NOTICE_PART
 * bytes. A commit without changes still sends one, so that the chain of prev -> seq is unbroken for readers
 * that check it. */
#define NOTICE_PART (256 * 1024)

static void notice_send(bus *b, const store_changes *c, uint64_t prev, json_t *arr, int more)
{
    json_t *msg = json_object();
    json_object_set_new(msg, "seq", json_integer((json_int_t)c->seq));
    json_object_set_new(msg, "prev", json_integer((json_int_t)prev));
    json_object_set_new(msg, "changes", arr);
    json_object_set_new(msg, "more", json_boolean(more));
    if (c->store_id) json_object_set_new(msg, "store", json_sprintf("%016" PRIx64, c->store_id));
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
            notice_send(b, c, prev, arr, 1);
            arr = json_array();
            bytes = 0;
        }
    }
    notice_send(b, c, prev, arr, 0);
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

/* ---- the run: a projector and its stages (open, gather, commit, after-commit) ------------------------ */

typedef struct proj {
    bus *b;
    const projector_opts *o;
    volatile sig_atomic_t *stop;
    projector_figures *fig;
    const char *consumer;
    size_t max;                /* events per commit at most while caught up */
    size_t max_behind;         /* events per commit at most while the consumer has a backlog (>= max) */
    int64_t quiet;             /* ms without more that end a batch */
    int64_t max_delay_ns;      /* the longest a caught-up projector holds a batch's first event */
    store_opts so;
    store *s;
    bus_consumer *c;
    batch bts[2];
    batch *bt;                 /* the batch being gathered (one of bts) */
    batch *fly;                /* the batch being committed on the commit thread, or NULL */
    pthread_t commit_th;       /* that thread, while fly is set */
    atomic_int fly_done;       /* set by that thread when it is done: the projector joins it at its next step */
    ct_status fly_status;      /* its store_apply_meta's status (written by the thread, read after the join) */
    int64_t fly_ns;            /* how long that took */
    int64_t fly_now;           /* the commit's wall-clock time */
    store_meta fly_meta[6 + COMMIT_META]; /* the figures it writes with the batch */
    bus_stream_state st;
    int64_t batch_t0;          /* when the first input of bt arrived (monotonic) */
    uint64_t backlog;          /* messages still in the stream after the last one fetched */
    uint64_t gap_seen;         /* the sequence a gap was last seen at */
    int64_t tail_checked;      /* when the idle projector last compared itself with the stream's end (monotonic) */
    int64_t tail_behind;       /* since when it is idle and behind it at tail_seq (0: it is not) */
    uint64_t tail_seq;         /* the last sequence in then */
    uint64_t stalled_at;       /* the last sequence in when a stall last made the consumer re-read */
    int direct;                /* reading the stream directly: the consumer stays stuck (proj_read_direct) */
    int reread;                /* reopen the consumer at once, without waiting */
    int need_open;             /* (re)open the consumer from the checkpoint */
    uint64_t dlq_published;    /* dead letters up to this sequence are in TOWER_DLQ */
    commit_figures cf;
    uint64_t sla_hash;
    uint64_t applied, first_applied;
    int64_t t0, rate_t;
    uint64_t rate_n;
    progress_state ps;
    int64_t waiting_since, waiting_log; /* not connected since (monotonic), next log line */
} proj;

/* Open the store; warn when the SLA rules changed since it last applied events. */
static int proj_open_store(proj *p)
{
    const projector_opts *o = p->o;
    p->so = (store_opts){.dir = o->data_dir, .flat = o->flat, .sla_rules = o->sla_rules,
                         .trend_drop_before_ns = o->trend_drop_before_ns};
    ct_status opened = store_open(&p->s, &p->so);
    /* A damaged store cannot follow the stream either: the way out is the same, a rebuild. */
    if (opened != CT_OK) return opened == CT_STORE_CORRUPT ? PROJECTOR_NEED_REBUILD : PROJECTOR_FAIL;
    /* A rebuild replays the whole stream in one go, nobody else in its process: it keeps more decoded events
     * between its commits than a live projector does (the store's default, 256 MiB). */
    if (o->flat && o->stop_at_seq) store_writer_cache(p->s, REBUILD_CACHE_BYTES);
    p->sla_hash = rules_hash(o->sla_rules);
    store_reader *r0 = NULL;
    if (store_reader_begin(p->s, &r0) == CT_OK) {
        uint64_t was = store_reader_meta(r0, PROJECTOR_META_SLA_RULES);
        store_reader_end(r0);
        if (was && was != p->sla_hash)
            ct_log(CT_LOG_WARN, "projector",
                   "the SLA rules changed since the store %s last applied events: dues are recomputed with the "
                   "new rules as orders and shipments get new events; towerd rebuild recomputes them all now",
                   o->data_dir);
    }
    for (int i = 0; i < 2; i++) {
        p->bts[i].in = ct_calloc(p->max_behind + FETCH, sizeof *p->bts[i].in);
        p->bts[i].err = ct_calloc(p->max_behind + FETCH, sizeof *p->bts[i].err);
        p->bts[i].out = ct_calloc(p->max_behind + FETCH, sizeof *p->bts[i].out);
    }
    return PROJECTOR_OK;
}

/* What a stage tells the loop. */
enum { STEP_ON, STEP_AGAIN, STEP_RETRY, STEP_DONE };

/* The consumer, (re)opened from the store's checkpoint after checking the stream can be followed.
 * STEP_ON; STEP_AGAIN (the streams were just created); STEP_RETRY (not connected, NATS failed);
 * STEP_DONE (a rebuild already at its target); or a PROJECTOR_* failure (negative: -rc). */
static int proj_open_consumer(proj *p)
{
    const projector_opts *o = p->o;
    if (!bus_is_connected(p->b)) {
        log_waiting(p->b, &p->waiting_since, &p->waiting_log);
        return STEP_RETRY;
    }
    p->waiting_since = 0;
    bus_consumer_close(p->c);
    p->c = NULL;
    ct_status bs = bus_stream_info(p->b, &p->st);
    if (bs == CT_NOT_FOUND) return bus_ensure_streams(p->b) == CT_OK ? STEP_AGAIN : STEP_RETRY;
    if (bs != CT_OK) return STEP_RETRY;
    int rc = check_stream(p->s, o->data_dir, &p->st, o->flat);
    if (rc != PROJECTOR_OK) return -rc;
    store_reader *r = NULL;
    if (store_reader_begin(p->s, &r) != CT_OK) return -PROJECTOR_FAIL;
    store_stats ss;
    store_reader_stats(r, &ss);
    figures_load(r, &p->cf);
    if (o->dead_letter_stream) p->dlq_published = store_reader_meta(r, PROJECTOR_META_DLQ_PUBLISHED);
    store_reader_end(r);
    p->applied = ss.applied_seq;
    if (!p->first_applied) p->first_applied = p->applied;
    /* Dead letters committed but not yet in TOWER_DLQ when we stopped: send them now. */
    if (o->dead_letter_stream) flush_dlq(p->b, p->s, &p->dlq_published);
    atomic_store_explicit(&p->fig->applied_seq, p->applied, memory_order_relaxed);
    atomic_store_explicit(&p->fig->stream_last_seq, p->st.last_seq, memory_order_relaxed);
    if (o->stop_at_seq && p->applied >= o->stop_at_seq) return STEP_DONE;
    /* A rebuild starts from what the stream still holds. */
    uint64_t from = p->applied + 1 < p->st.first_seq && o->flat ? p->st.first_seq : p->applied + 1;
    if (bus_consumer_open(&p->c, p->b, p->consumer, from) != CT_OK) return STEP_RETRY;
    ct_log(CT_LOG_INFO, "projector", "consuming %s from sequence %" PRIu64 " (stream holds %" PRIu64 "..%" PRIu64 ")",
           BUS_EVENTS_STREAM, p->applied + 1, p->st.first_seq, p->st.last_seq);
    p->need_open = 0;
    return STEP_ON;
}

/* Does an undecodable bus message look like a JSON record (its first non-blank byte '{')? */
static int json_record(const void *data, size_t len)
{
    const unsigned char *d = data;
    size_t i = 0;
    while (i < len && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) i++;
    return i < len && d[i] == '{';
}

/* The bus carries protobuf; a JSON record there (a producer's adapter that skipped the encoding) stays a dead
 * letter, but with the reason the JSON contract gives: its real validation error, or, for a valid event,
 * UNDECODABLE saying how to send it (a redrive of the dead letter re-encodes it). */
static void explain_json(const void *data, size_t len, evt_error *err)
{
    evt_event *e = NULL;
    evt_error je;
    if (evt_from_json_text(&e, data, len, &je) != CT_OK) {
        *err = je;
        char msg[sizeof err->message];
        snprintf(msg, sizeof msg, "(a JSON record on the bus, which carries protobuf) %.440s", je.message);
        memcpy(err->message, msg, sizeof msg);
        return;
    }
    snprintf(err->event_id, sizeof err->event_id, "%s", e->event_id);
    evt_free(e);
    err->code = EVT_UNDECODABLE;
    err->field[0] = '\0';
    snprintf(err->message, sizeof err->message,
             "a valid JSON event, but the bus carries protobuf: send it with towerd publish or POST /api/v1/events "
             "(a redrive of this dead letter re-encodes it)");
}

/* The last sequence taken into a batch: gathered, being committed, or applied. */
static uint64_t proj_last_in(const proj *p)
{
    if (p->bt->n) return p->bt->in[p->bt->n - 1].seq;
    return p->fly ? p->fly->in[p->fly->n - 1].seq : p->applied;
}

/* Idle, but is the stream ahead? Acks are not used (the checkpoint is the position), so messages the
 * consumer sent and NATS then lost (a node killed while delivering) are not sent again, and when no later
 * message arrives nothing shows the hole: seen as a projector stuck a few events behind after a node loss.
 * Compare with the stream's end now and then; behind it, with nothing arriving for TAIL_STALL_NS: re-read
 * from the checkpoint; still nothing at the same place TAIL_STALL_NS later: read the stream directly. */
#define TAIL_CHECK_NS 1000000000LL
#define TAIL_STALL_NS 3000000000LL
#define TAIL_INFO_WAIT_MS 1000

static void proj_take(proj *p, bus_batch *msgs);

/* The consumer, reopened, still delivers nothing while the stream is ahead (a consumer left stuck by a NATS
 * node's loss: seen in a cluster, a replica stuck 443 events behind for 90 s): read the next messages from the
 * stream itself, one request each, until the consumer delivers again (p->direct ends at its next message). */
static void proj_read_direct(proj *p, uint64_t last_in, uint64_t last_seq)
{
    bus_batch msgs;
    if (!p->direct)
        ct_log(CT_LOG_WARN, "projector", "the consumer delivers nothing after %" PRIu64 " although the stream ends at %"
               PRIu64 "; reading the stream directly until it does", last_in, last_seq);
    p->direct = 1;
    p->tail_behind = 0;
    if (p->o->stop_at_seq && last_seq > p->o->stop_at_seq) last_seq = p->o->stop_at_seq; /* a rebuild's end */
    if (bus_stream_read(p->b, last_in + 1, last_seq, FETCH, TAIL_INFO_WAIT_MS, &msgs) == CT_OK) proj_take(p, &msgs);
}

static void proj_check_tail(proj *p)
{
    int64_t now = ct_mono_ns();
    if (now - p->tail_checked < TAIL_CHECK_NS) return;
    p->tail_checked = now;
    bus_stream_state st;
    /* At most TAIL_INFO_WAIT_MS, and not while NATS is down: a stop must not wait on it (a 10 s JetStream
     * timeout held SIGTERM past its 10 s bound with nats-server killed). */
    if (bus_stream_info_wait(p->b, &st, TAIL_INFO_WAIT_MS) != CT_OK) return;
    uint64_t last_in = proj_last_in(p);
    if (st.last_seq <= last_in || (p->o->stop_at_seq && last_in >= p->o->stop_at_seq)) {
        p->tail_behind = 0;
        return;
    }
    if (p->direct) {
        proj_read_direct(p, last_in, st.last_seq);
        return;
    }
    if (!p->tail_behind || p->tail_seq != last_in) {
        p->tail_behind = now;
        p->tail_seq = last_in;
        return;
    }
    if (now - p->tail_behind < TAIL_STALL_NS) return;
    if (p->stalled_at == last_in) { /* re-read from here already: the consumer stays stuck */
        proj_read_direct(p, last_in, st.last_seq);
        return;
    }
    ct_log(CT_LOG_WARN, "projector", "the stream ends at %" PRIu64 " but nothing after %" PRIu64
           " arrived for %llds; re-reading from there", st.last_seq, last_in, (long long)(TAIL_STALL_NS / 1000000000LL));
    p->tail_behind = 0;
    p->stalled_at = last_in;
    p->need_open = p->reread = 1;
}

/* An input's event and packed bytes (the projector's own). */
static void input_free(store_input *in)
{
    evt_free(in->event);
    free((void *)in->packed);
    in->event = NULL;
    in->packed = NULL;
}

/* Add one fetch's messages to the batch; a gap makes the consumer re-read from the checkpoint. */
static void proj_take(proj *p, bus_batch *msgs)
{
    batch *bt = p->bt;
    uint64_t last_in = proj_last_in(p);
    for (size_t i = 0; i < msgs->n; i++) {
        const bus_msg *m = &msgs->v[i];
        if (m->seq <= last_in) continue; /* redelivered after a reconnect */
        if (m->seq > last_in + 1 && p->gap_seen != last_in + 1) {
            /* Never skip silently: re-read from the checkpoint. A hole that is still
             * there the second time is one the stream really has (deleted messages). */
            ct_log(CT_LOG_WARN, "projector", "expected sequence %" PRIu64 ", got %" PRIu64 "; re-reading from there",
                   last_in + 1, m->seq);
            p->gap_seen = last_in + 1;
            p->need_open = p->reread = 1;
            break;
        }
        if (m->seq > last_in + 1)
            ct_log(CT_LOG_WARN, "projector", "sequences %" PRIu64 "..%" PRIu64 " are not in the stream (deleted)",
                   last_in + 1, m->seq - 1);
        evt_event *e = NULL;
        const char *ctype = "application/x-protobuf";
        if (evt_from_protobuf(&e, m->data, m->len, &bt->err[bt->n]) != CT_OK && json_record(m->data, m->len)) {
            explain_json(m->data, m->len, &bt->err[bt->n]);
            ctype = "application/json"; /* so that a redrive reads it as JSON */
        }
        bt->in[bt->n] = (store_input){m->seq, e, &bt->err[bt->n], m->data, m->len, ctype, NULL, 0};
        if (e) { /* packed here, beside the commit thread, rather than by the store on it */
            ct_buf pk = {0};
            evt_pack(e, &pk);
            bt->in[bt->n].packed = pk.data;
            bt->in[bt->n].packed_len = pk.len;
        }
        last_in = m->seq;
        bt->n++;
    }
    if (bt->n_lists == bt->cap_lists) {
        bt->cap_lists = bt->cap_lists ? bt->cap_lists * 2 : 8;
        bt->lists = ct_realloc(bt->lists, bt->cap_lists * sizeof *bt->lists);
    }
    bt->lists[bt->n_lists++] = *msgs;
    if (bt->n && !p->batch_t0) p->batch_t0 = ct_mono_ns();
    if (msgs->n) p->backlog = msgs->v[msgs->n - 1].pending;
}

/* What one gather step ended with. */
enum { GATHER_MORE, GATHER_COMMIT, GATHER_IDLE, GATHER_RETRY };

/* One fetch: the batch grows until it is full (max events, or max_behind while the consumer has a backlog:
 * a projector behind commits fewer, larger transactions) or the stream is quiet for a few ms (or, caught up,
 * at the latest max_delay_ns after its first event). Always the same fetch size: cnats 3.4 crashes in _fetch when
 * a later fetch on a subscription asks for fewer messages than an earlier one; the arrays have FETCH slots
 * of slack, so a batch may exceed max by less than one fetch. */
static int proj_gather(proj *p)
{
    const projector_opts *o = p->o;
    bus_batch msgs;
    int64_t wait = WAIT_IDLE_MS;
    size_t n = p->bt->n;
    if (n && p->backlog > 0) {
        wait = p->quiet;
    } else if (n) {
        int64_t left = (p->batch_t0 + p->max_delay_ns - ct_mono_ns()) / 1000000LL;
        wait = left < p->quiet ? (left > 1 ? left : 1) : p->quiet;
    }
    if (p->fly && wait > p->quiet) wait = p->quiet; /* back soon to finish the commit in flight */
    ct_status fs = bus_consumer_fetch(p->c, FETCH, wait, &msgs);
    if (fs == CT_OK) {
        if (p->direct) ct_log(CT_LOG_INFO, "projector", "the consumer delivers again");
        p->direct = 0;
        proj_take(p, &msgs);
        n = p->bt->n;
        if (p->need_open && !n) return GATHER_COMMIT; /* nothing to commit: on to the re-read */
        uint64_t last_in = proj_last_in(p);
        size_t max = p->backlog > 0 ? p->max_behind : p->max;
        if (!p->need_open && n < max && !(o->stop_at_seq && last_in >= o->stop_at_seq) &&
            (p->backlog > 0 || ct_mono_ns() - p->batch_t0 < p->max_delay_ns))
            return GATHER_MORE;
        return GATHER_COMMIT;
    }
    if (fs == CT_TIMEOUT) return n ? GATHER_COMMIT : GATHER_IDLE;
    p->need_open = 1;
    return n ? GATHER_COMMIT : GATHER_RETRY;
}

/* The commit thread: the batch in one durable transaction with the checkpoint and the projector's figures.
 * It alone uses the store until the projector joins it (proj_drain). */
static void *commit_main(void *arg)
{
    proj *p = arg;
    batch *b = p->fly;
    int64_t t0 = ct_mono_ns();
    p->fly_status = store_apply_meta(p->s, b->in, b->n, p->fly_now, b->out, p->o->notify ? &b->changes : NULL,
                                     p->fly_meta, sizeof p->fly_meta / sizeof p->fly_meta[0]);
    p->fly_ns = ct_mono_ns() - t0;
    atomic_store_explicit(&p->fly_done, 1, memory_order_release);
    return NULL;
}

/* Hand the gathered batch to the commit thread and gather the next one into the other batch. The figures
 * written with it are taken now, on the projector's thread. Returns PROJECTOR_OK, or PROJECTOR_FAIL when no
 * thread could be started (then nothing is committed and the batch is still p->bt). */
static int proj_commit_start(proj *p)
{
    batch *b = p->bt;
    p->fly_now = ct_now_ns();
    double rate = atomic_load_explicit(&p->fig->rate, memory_order_relaxed);
    uint64_t last = b->in[b->n - 1].seq;
    store_meta head[6] = {{PROJECTOR_META_STREAM_CREATED, (uint64_t)p->st.created_ns},
                          {PROJECTOR_META_STREAM_LAST, p->st.last_seq > last ? p->st.last_seq : last},
                          {PROJECTOR_META_COMMIT_NS, (uint64_t)p->fly_now},
                          {PROJECTOR_META_RATE, (uint64_t)(rate * 1000)},
                          {PROJECTOR_META_DLQ_PUBLISHED, p->dlq_published},
                          {PROJECTOR_META_SLA_RULES, p->sla_hash}};
    memcpy(p->fly_meta, head, sizeof head);
    p->cf.events += b->n;
    figures_meta(&p->cf, p->fly_meta + 6);
    p->fly = b;
    atomic_store_explicit(&p->fly_done, 0, memory_order_relaxed);
    if (pthread_create(&p->commit_th, NULL, commit_main, p) != 0) {
        ct_log(CT_LOG_ERROR, "projector", "cannot start the commit thread");
        p->cf.events -= b->n;
        p->fly = NULL;
        return PROJECTOR_FAIL;
    }
    p->bt = b == &p->bts[0] ? &p->bts[1] : &p->bts[0];
    p->batch_t0 = 0;
    return PROJECTOR_OK;
}

/* After a commit: the outcomes counted, the change notices and dead letters sent, the figures. */
static void proj_after_commit(proj *p, batch *b)
{
    const projector_opts *o = p->o;
    projector_figures *fig = p->fig;
    uint64_t prev_applied = p->applied;
    p->applied = b->in[b->n - 1].seq;
    for (size_t i = 0; i < b->n; i++) {
        switch (b->out[i]) {
        case STORE_APPLIED: atomic_fetch_add_explicit(&fig->events, 1, memory_order_relaxed); break;
        case STORE_DUPLICATE: atomic_fetch_add_explicit(&fig->duplicates, 1, memory_order_relaxed); break;
        case STORE_DEAD_LETTER:
            atomic_fetch_add_explicit(&fig->dead_letters, 1, memory_order_relaxed);
            /* A rebuild re-derives dead letters the live projector reported already: it
             * counts them (below) rather than logging each again. */
            ct_log(o->stop_at_seq ? CT_LOG_DEBUG : CT_LOG_WARN, "projector",
                   "dead letter at sequence %" PRIu64 ": %s: %s", b->in[i].seq,
                   b->in[i].event ? "CONFLICTING_DUPLICATE" : evt_code_str(b->err[i].code),
                   b->in[i].event ? "eventId already applied with different content" : b->err[i].message);
            break;
        case STORE_SKIPPED: break;
        }
        input_free(&b->in[i]);
    }
    if (o->notify) notify(p->b, &b->changes, prev_applied);
    if (o->dead_letter_stream) flush_dlq(p->b, p->s, &p->dlq_published);
    atomic_store_explicit(&fig->applied_seq, p->applied, memory_order_relaxed);
    if (p->applied > p->st.last_seq) p->st.last_seq = p->applied;
    atomic_store_explicit(&fig->stream_last_seq, p->st.last_seq, memory_order_relaxed);
    p->rate_n += b->n;
    int64_t mono = ct_mono_ns();
    if (mono - p->rate_t > 1000000000LL) {
        atomic_store_explicit(&fig->rate, (double)p->rate_n / ((double)(mono - p->rate_t) / 1e9), memory_order_relaxed);
        p->rate_n = 0;
        p->rate_t = mono;
    }
    if (o->progress) progress(&p->ps, p->applied, p->first_applied, o->stop_at_seq, p->t0, 0);
}

/* A batch's inputs (their events after a failed commit) and the fetched lists they borrowed from. */
static void proj_release(batch *b, int free_events)
{
    for (size_t i = 0; free_events && i < b->n; i++) input_free(&b->in[i]);
    b->n = 0;
    for (size_t i = 0; i < b->n_lists; i++) bus_batch_free(&b->lists[i]);
    b->n_lists = 0;
}

/* Wait for the commit in flight, if any, and finish it: PROJECTOR_OK, or PROJECTOR_FAIL if it failed
 * (nothing of it applied). Afterwards the store is the projector thread's again. */
static int proj_drain(proj *p)
{
    if (!p->fly) return PROJECTOR_OK;
    batch *b = p->fly;
    pthread_join(p->commit_th, NULL);
    p->fly = NULL;
    figures_commit(&p->cf, p->fly_ns);
    if (p->fly_status != CT_OK) {
        proj_release(b, 1);
        return PROJECTOR_FAIL;
    }
    atomic_store_explicit(&p->fig->last_commit_ns, p->fly_now, memory_order_relaxed);
    proj_after_commit(p, b);
    proj_release(b, 0);
    return PROJECTOR_OK;
}

/* Commit the gathered batch. While the consumer has a backlog of at least a caught-up batch (a projector
 * behind, a rebuild) the commit runs beside the gathering of the next batch: the fetch and decoding on this
 * thread, the fold and the fsync on the commit thread. Otherwise it is waited for at once, so that its
 * notices leave without delay. */
static int proj_commit(proj *p)
{
    int rc = proj_drain(p);
    if (rc == PROJECTOR_OK) rc = proj_commit_start(p);
    if (rc == PROJECTOR_OK && p->backlog < p->max) rc = proj_drain(p);
    return rc;
}

/* A rebuild swapped in a new generation: continue from its checkpoint. 0, or -1 when it cannot be opened. */
static int proj_follow_swap(proj *p)
{
    if (p->o->flat || !store_generation_changed(p->s)) return 0;
    if (proj_drain(p) != PROJECTOR_OK) return -1;
    ct_log(CT_LOG_INFO, "projector", "the store was rebuilt; reopening %s", p->o->data_dir);
    store_close(p->s);
    p->s = NULL;
    if (store_open(&p->s, &p->so) != CT_OK) return -1;
    p->need_open = 1;
    return 0;
}

static void proj_pause(proj *p)
{
    atomic_store_explicit(&p->fig->connected, 0, memory_order_relaxed);
    for (int i = 0; i < 4 && !*p->stop; i++) usleep(250000);
}

static void proj_free(proj *p)
{
    proj_drain(p);
    for (int i = 0; i < 2; i++) {
        batch *b = &p->bts[i];
        proj_release(b, 1);
        free(b->lists);
        store_changes_free(&b->changes);
        free(b->in);
        free(b->err);
        free(b->out);
    }
    bus_consumer_close(p->c);
    store_close(p->s);
}

/* After a gather that ended a batch: commit it (if it has inputs), then what the gather asked for (a re-read,
 * a reopen). 0 to go on; 1 to end the run, with *rc. */
static int proj_after_gather(proj *p, int *rc)
{
    const projector_opts *o = p->o;
    if (p->bt->n) {
        *rc = proj_commit(p);
        if (*rc != PROJECTOR_OK) return 1;
    } else {
        proj_release(p->bt, 0); /* fetched lists whose messages were all taken before */
        p->batch_t0 = 0;
    }
    if (p->reread) {
        p->reread = 0;
        return 0;
    }
    if (p->need_open) {
        proj_pause(p);
        return 0;
    }
    if (o->stop_at_seq && proj_last_in(p) >= o->stop_at_seq) {
        *rc = proj_drain(p);
        return 1;
    }
    if (proj_follow_swap(p) != 0) *rc = PROJECTOR_FAIL;
    return *rc != PROJECTOR_OK;
}

/* The consumer (re)opened: 0 to gather, 1 to go round again, 2 to end the run with *rc. */
static int proj_reopen(proj *p, int *rc)
{
    *rc = proj_drain(p); /* the checkpoint it reopens from must be committed */
    if (*rc != PROJECTOR_OK) return 2;
    int step = proj_open_consumer(p);
    if (step < 0) {
        *rc = -step;
        return 2;
    }
    if (step == STEP_DONE) return 2;
    if (step == STEP_AGAIN) return 1;
    if (step == STEP_RETRY) {
        proj_pause(p);
        return 1;
    }
    return 0;
}

static void proj_finish(proj *p)
{
    const projector_opts *o = p->o;
    uint64_t target = o->stop_at_seq ? o->stop_at_seq : p->applied;
    if (o->progress) progress(&p->ps, p->applied, p->first_applied, target, p->t0, 1);
    if (o->stop_at_seq && !*p->stop)
        ct_log(CT_LOG_INFO, "projector", "replayed up to sequence %" PRIu64 ": %" PRIu64 " events applied, %" PRIu64
               " duplicates, %" PRIu64 " dead letters (GET /api/v1/dead-letters lists them)", p->applied,
               atomic_load_explicit(&p->fig->events, memory_order_relaxed),
               atomic_load_explicit(&p->fig->duplicates, memory_order_relaxed),
               atomic_load_explicit(&p->fig->dead_letters, memory_order_relaxed));
}

int projector_run(bus *b, const projector_opts *o, volatile sig_atomic_t *stop, projector_figures *fig)
{
    projector_figures local = {0};
    proj p = {.b = b, .o = o, .stop = stop, .fig = fig ? fig : &local};
    p.consumer = o->consumer ? o->consumer : "tower-projector";
    p.max = o->batch ? o->batch : 1000;
    /* Behind, larger commits: fewer fsyncs, and a process that several events of the batch touch is derived
     * once. A rebuild (a new generation, nobody waiting for its commits) takes larger ones still. */
    size_t behind_x = o->flat && o->stop_at_seq ? 50 : 10;
    p.max_behind = o->batch_behind > p.max ? o->batch_behind : o->batch_behind ? p.max : behind_x * p.max;
    p.quiet = o->quiet_ms > 0 ? o->quiet_ms : 5;
    /* A batch is committed when full, when the stream is quiet for `quiet` ms, or, while the projector is
     * caught up, at the latest this long after its first event arrived: a steady flow never holds an event
     * for a whole batch, and a projector behind commits full batches (fewer fsyncs) until it has caught up. */
    p.max_delay_ns = o->stop_at_seq ? INT64_MAX / 2 /* a rebuild: throughput first */
                                    : (p.quiet * 2 > 10 ? p.quiet * 2 : 10) * 1000000LL;
    p.t0 = p.rate_t = ct_mono_ns();
    p.ps = (progress_state){isatty(STDERR_FILENO), UINT64_MAX, 0};
    p.need_open = 1;
    p.bt = &p.bts[0];
    int rc = proj_open_store(&p);
    while (rc == PROJECTOR_OK && !*stop) {
        if (p.need_open) {
            int step = proj_reopen(&p, &rc);
            if (step == 2) break;
            if (step == 1) continue;
        }
        atomic_store_explicit(&p.fig->connected, bus_is_connected(b), memory_order_relaxed);
        int g = proj_gather(&p);
        if (g == GATHER_MORE) {
            /* A commit that finished meanwhile: its notices leave now, not after the batch being gathered. */
            if (p.fly && atomic_load_explicit(&p.fly_done, memory_order_acquire)) rc = proj_drain(&p);
            continue;
        }
        if (g == GATHER_RETRY || g == GATHER_IDLE) {
            /* Nothing more for now: finish the commit in flight (its notices), then wait or look around. */
            rc = proj_drain(&p);
            if (rc != PROJECTOR_OK) break;
            if (g == GATHER_RETRY) {
                proj_pause(&p);
                continue;
            }
            if (o->progress) progress(&p.ps, p.applied, p.first_applied, o->stop_at_seq, p.t0, 0);
            /* Idle, a rebuild may have swapped generations: follow it now, not at the next event. */
            if (proj_follow_swap(&p) != 0) rc = PROJECTOR_FAIL;
            proj_check_tail(&p);
            continue;
        }
        if (proj_after_gather(&p, &rc)) break;
    }
    if (rc == PROJECTOR_OK) rc = proj_drain(&p);
    if (rc == PROJECTOR_OK) proj_finish(&p);
    proj_free(&p);
    return rc;
}
