/* towerd reconcile: a legacy system's snapshot (CSV / fixed-width, through a mapping) against the tower's store. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch_reconcile.h"
#include "bus.h"
#include "store.h"
#include "mapping_file.h"
#include "nats_opts.h"
#include "towerd.h"

#define READER_ROWS 256 /* rows compared per store read transaction (readers must be short) */
#define PUB_WINDOW 1024 /* --publish: events in flight before waiting for their acks */

static const ct_opt_def own_defs[] = {
    {"mapping", 'm', "TOWER_RECONCILE_MAPPING", "reconcile.mapping", CT_OPT_STRING, NULL, "FILE",
     "the mapping file with a [reconcile] section (see docs/reconcile.md): required", 0, 0},
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory", 0, 0},
    {"full", 0, NULL, "reconcile.full", CT_OPT_BOOL, NULL, NULL,
     "the snapshot lists every open order: also report the tower's open orders it does not list", 0, 0},
    {"json", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "print one JSON object per disagreement, then {\"summary\":...}, on stdout", 0, 0},
    {"metrics-file", 0, "TOWER_RECONCILE_METRICS_FILE", "reconcile.metrics_file", CT_OPT_STRING, NULL, "PATH",
     "write the run's figures there for node_exporter's textfile collector (atomically)", 0, 0},
    {"max-file-size", 0, "TOWER_IMPORT_MAX_FILE_SIZE", "import.max_file_size", CT_OPT_SIZE, "1GiB", "SIZE",
     "refuse larger files", 0, 0},
    {"publish", 0, NULL, "reconcile.publish", CT_OPT_BOOL, NULL, NULL,
     "publish each order's disagreement as a mismatchFound event, and a mismatchCleared for an earlier one this "
     "snapshot no longer shows (the mismatches view; needs --nats)", 0, 0},
    {"timeout", 0, "TOWER_PUBLISH_TIMEOUT", "publish.timeout", CT_OPT_DURATION, "30s", "DURATION",
     "--publish: how long to wait for JetStream's acknowledgements", 0, 0},
};

static const char *const ignore[] = {"nats", "stream", "store", "projector", "server", "sla", "sim", "publish", "up",
                                     "import", "relay", NULL};

static const towerd_spec spec = {
    .cmd = "towerd reconcile",
    .usage = "usage: towerd reconcile --mapping FILE [--data DIR] [--full] [--json] [--metrics-file PATH]\n"
             "                        [--publish --nats URL] FILE...\n\n"
             "Compares a legacy system's snapshot (e.g. the ERP's nightly list of orders with their status, CSV\n"
             "or fixed-width, read through the mapping's [reconcile] section) with what the tower's store has\n"
             "seen of each order, read-only, and reports every disagreement as FILE:LINE: ORDER: KIND: what\n"
             "the system says vs what the tower has, and what to do. Kinds: missing_milestone (the status\n"
             "implies a milestone the tower has not seen), not_reflected (the tower has seen a milestone the\n"
             "status does not reflect), unknown_order, unknown_status, bad_row, duplicate, and with --full\n"
             "missing_from_snapshot (an order open in the tower that the snapshot does not list).\n\n"
             "With --publish, each order's disagreement becomes a mismatchFound event (an item of the view\n"
             "mismatches, worked like every exception) and an earlier one this snapshot no longer shows a\n"
             "mismatchCleared; event ids are stable, so running the same snapshot again changes nothing.\n\n"
             "Exit codes: 0 no disagreement; 1 runtime failure (a file, the store; with --publish, NATS or an\n"
             "event not stored); 2 usage, or a mapping error (MAPPING:LINE, also a column missing from a\n"
             "file's header); 3 disagreements found (and, with --publish, published).",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
    .min_args = 1,
    .max_args = INT_MAX,
    .args_usage = "no snapshot file",
};

/* The order ids listed so far, with their first line (open addressing). */
typedef struct idset {
    char **ids;
    size_t *lines;
    size_t n, cap;
} idset;

/* --publish: an item of the mismatches view this system raised earlier (strings owned). */
typedef struct prior {
    char *order, *check, *theirs, *ours;
} prior;

/* --publish: what identifies the snapshot, and what is published. */
typedef struct pubctx {
    bus *b;
    char *snapshot;            /* "NAME TIME" (NAME +N when several files), cleaned */
    uint64_t snapshot_id;      /* names, sizes, times and contents */
    int64_t at_s;              /* the latest file's modification time: the events' occurredAt */
    int32_t at_ns;
    int nfiles;
    idset found;               /* "ORDER|CHECK" found this run */
    idset unsure;              /* orders listed in rows that could not be compared */
    uint64_t blind;            /* rows without a usable order id */
    prior *prior;              /* the view's items of this system */
    size_t nprior;
    idset prior_ix;            /* "ORDER|CHECK" -> index + 1 */
    evt_event **ev;            /* the events to publish, owned */
    size_t nev, capev;
    uint64_t found_n, cleared_n, unchanged, stored, dups, failed;
} pubctx;

typedef struct rctx {
    const ct_config *cfg;
    batch_mapping *m;
    const batch_rec_spec *spec;
    const char *system;
    store *s;
    store_reader *r;
    size_t reader_rows;
    int json;
    size_t header_cols;
    batch_rec_finding *found;
    size_t cap_found;
    idset seen;
    uint64_t rows, matched, kinds[BATCH_REC_KIND_COUNT];
    int publish;
    pubctx p;
} rctx;

/* ---- the set of ids --------------------------------------------------------------------------------- */

static size_t *idset_slot(idset *s, const char *id, size_t *i)
{
    size_t mask = s->cap - 1;
    for (*i = (size_t)ct_hash64(id, strlen(id)) & mask; s->ids[*i]; *i = (*i + 1) & mask)
        if (!strcmp(s->ids[*i], id)) return &s->lines[*i];
    return NULL;
}

static void idset_grow(idset *s)
{
    idset g = {ct_calloc(s->cap ? s->cap * 2 : 1024, sizeof(char *)), NULL, s->n, s->cap ? s->cap * 2 : 1024};
    g.lines = ct_calloc(g.cap, sizeof *g.lines);
    for (size_t j = 0; j < s->cap; j++)
        if (s->ids[j]) {
            size_t i;
            idset_slot(&g, s->ids[j], &i);
            g.ids[i] = s->ids[j], g.lines[i] = s->lines[j];
        }
    free(s->ids);
    free(s->lines);
    *s = g;
}

/* Add id listed on line; 0 if new, else the line it was first listed on. */
static size_t idset_add(idset *s, const char *id, size_t line)
{
    if ((s->n + 1) * 2 > s->cap) idset_grow(s);
    size_t i, *first = idset_slot(s, id, &i);
    if (first) return *first;
    s->ids[i] = ct_strdup(id), s->lines[i] = line, s->n++;
    return 0;
}

static int idset_has(idset *s, const char *id)
{
    size_t i;
    return s->cap && idset_slot(s, id, &i) != NULL;
}

static void idset_free(idset *s)
{
    for (size_t i = 0; i < s->cap; i++) free(s->ids[i]);
    free(s->ids);
    free(s->lines);
}

/* ---- --publish: mismatches as events ---------------------------------------------------------------- */

static size_t *idset_get(idset *s, const char *id)
{
    size_t i;
    return s->cap ? idset_slot(s, id, &i) : NULL;
}

/* Build and keep an event to publish; one that does not validate is said and counted as failed. */
static void queue(rctx *x, const batch_rec_mismatch *m)
{
    json_t *j = batch_rec_mismatch_event(m);
    evt_event *e = NULL;
    evt_error err = {0};
    if (!j || evt_from_json(&e, j, &err) != CT_OK) {
        fprintf(stderr, "towerd reconcile: %s: cannot build its %s event: %s\n", m->order,
                m->cleared ? "mismatchCleared" : "mismatchFound", err.message);
        x->p.failed++;
    } else {
        if (x->p.nev == x->p.capev) {
            x->p.capev = x->p.capev ? x->p.capev * 2 : 64;
            x->p.ev = ct_realloc(x->p.ev, x->p.capev * sizeof *x->p.ev);
        }
        x->p.ev[x->p.nev++] = e;
        if (m->cleared) x->p.cleared_n++;
        else x->p.found_n++;
    }
    json_decref(j);
}

static int same(const char *a, const char *b) { return !strcmp(a ? a : "", b ? b : ""); }

/* A finding of an order, as a mismatchFound unless the view already holds it unchanged (theirs and ours). */
static void raise_found(rctx *x, const batch_rec_finding *f, const char *id, const char *status, const json_t *doc,
                        const char *message)
{
    char check[96];
    if (!id || !batch_rec_check(f, check, sizeof check)) return;
    char *key = ct_sprintf("%s|%s", id, check), *theirs, *ours;
    idset_add(&x->p.found, key, 1);
    batch_rec_sides(f, status, doc, &theirs, &ours);
    size_t *ix = idset_get(&x->p.prior_ix, key);
    if (ix && same(theirs, x->p.prior[*ix - 1].theirs) && same(ours, x->p.prior[*ix - 1].ours)) {
        x->p.unchanged++;
    } else {
        char *msg = batch_rec_clean(message ? message : "", EVT_MAX_TEXT);
        batch_rec_mismatch m = {0, id, x->system, check, theirs, ours, msg, x->p.snapshot, x->p.snapshot_id,
                                x->p.at_s, x->p.at_ns};
        queue(x, &m);
        free(msg);
    }
    free(key);
    free(theirs);
    free(ours);
}

/* Does this run say an earlier mismatch of an order is over? Its order was listed and compared and the check
 * not found; or, with --full (the snapshot lists every open order), the order is not listed and every row
 * could be read. */
static int clears(rctx *x, const prior *pr)
{
    if (idset_has(&x->p.unsure, pr->order)) return 0;
    if (idset_has(&x->seen, pr->order)) return 1;
    return ct_config_bool(x->cfg, "full") && x->p.blind == 0;
}

static void raise_cleared(rctx *x)
{
    for (size_t i = 0; i < x->p.nprior; i++) {
        prior *pr = &x->p.prior[i];
        char *key = ct_sprintf("%s|%s", pr->order, pr->check);
        if (!idset_has(&x->p.found, key) && clears(x, pr)) {
            batch_rec_mismatch m = {1, pr->order, x->system, pr->check, NULL, NULL, NULL, x->p.snapshot,
                                    x->p.snapshot_id, x->p.at_s, x->p.at_ns};
            queue(x, &m);
        }
        free(key);
    }
}

/* store_view_scan's callback: keep the items of this system's orders. */
static int prior_add(void *ctx, const Tower__V1__ViewItem *it)
{
    rctx *x = ctx;
    if (!it->system || strcmp(it->system, x->system) || !it->order_id || it->shipment_id || !it->check) return 0;
    if (x->p.nprior % 64 == 0) x->p.prior = ct_realloc(x->p.prior, (x->p.nprior + 64) * sizeof *x->p.prior);
    prior *pr = &x->p.prior[x->p.nprior++];
    *pr = (prior){ct_strdup(it->order_id), ct_strdup(it->check), ct_strdup(it->theirs ? it->theirs : ""),
                  ct_strdup(it->ours ? it->ours : "")};
    char *key = ct_sprintf("%s|%s", pr->order, pr->check);
    idset_add(&x->p.prior_ix, key, x->p.nprior);
    free(key);
    return 0;
}

/* The mismatches this system raised earlier, from the store's view, a page per read transaction. */
static int load_prior(rctx *x)
{
    char *cursor = NULL;
    ct_status st = CT_OK;
    do {
        store_reader *r = NULL;
        store_query q = {.view = FOLD_VIEW_MISMATCHES, .cursor = cursor, .limit = READER_ROWS};
        char *next = NULL;
        st = store_reader_begin(x->s, &r);
        if (st == CT_OK) st = store_view_scan(r, &q, prior_add, x, &next);
        store_reader_end(r);
        free(cursor);
        cursor = next;
    } while (st == CT_OK && cursor);
    free(cursor);
    if (st != CT_OK) fprintf(stderr, "towerd reconcile: cannot read the mismatches view: %s\n", ct_status_str(st));
    return st == CT_OK ? 0 : -1;
}

/* Add a file to the snapshot's identity: its name, size, time and content; the latest time wins. */
static void snapshot_add(rctx *x, const char *path, const char *data, size_t len)
{
    struct stat sb;
    if (stat(path, &sb) != 0) memset(&sb, 0, sizeof sb);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    uint64_t v[5] = {x->p.snapshot_id, ct_hash64(base, strlen(base)), (uint64_t)len, ct_hash64(data, len),
                     (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec};
    x->p.snapshot_id = ct_hash64(v, sizeof v);
    if (x->p.nfiles++ == 0 || sb.st_mtim.tv_sec > x->p.at_s ||
        (sb.st_mtim.tv_sec == x->p.at_s && sb.st_mtim.tv_nsec > x->p.at_ns)) {
        x->p.at_s = sb.st_mtim.tv_sec;
        x->p.at_ns = (int32_t)sb.st_mtim.tv_nsec;
    }
    if (x->p.nfiles == 1) x->p.snapshot = batch_rec_clean(base, 200);
}

/* The snapshot's name and time, once every file was added; a time outside the contract's years is now. */
static void snapshot_done(rctx *x)
{
    if (x->p.at_s < EVT_MIN_SECONDS || x->p.at_s >= EVT_END_SECONDS) x->p.at_s = time(NULL), x->p.at_ns = 0;
    char at[48];
    evt_time_format(x->p.at_s, x->p.at_ns, at);
    char *s = x->p.nfiles > 1 ? ct_sprintf("%s +%d %s", x->p.snapshot, x->p.nfiles - 1, at)
                              : ct_sprintf("%s %s", x->p.snapshot ? x->p.snapshot : "", at);
    free(x->p.snapshot);
    x->p.snapshot = s;
}

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    rctx *x = ctx;
    if (ack->result == BUS_PUB_STORED) x->p.stored++;
    else if (ack->result == BUS_PUB_DUPLICATE) x->p.dups++;
    else {
        x->p.failed++;
        fprintf(stderr, "towerd reconcile: %s: FAILED: %s\n", x->p.ev[tag]->event_id, ack->error);
    }
}

/* Publish every queued event with acks: 0, or -1 when one was not stored. */
static int publish_all(rctx *x)
{
    int64_t timeout_ms = ct_config_duration_ns(x->cfg, "timeout") / 1000000;
    for (size_t i = 0; i < x->p.nev; i++) {
        bus_publish_event(x->p.b, x->p.ev[i], i);
        if ((i + 1) % PUB_WINDOW == 0 || i + 1 == x->p.nev) bus_publish_wait(x->p.b, timeout_ms, on_ack, x);
    }
    return x->p.failed ? -1 : 0;
}

static void pub_free(pubctx *p)
{
    for (size_t i = 0; i < p->nprior; i++) {
        free(p->prior[i].order);
        free(p->prior[i].check);
        free(p->prior[i].theirs);
        free(p->prior[i].ours);
    }
    free(p->prior);
    for (size_t i = 0; i < p->nev; i++) evt_free(p->ev[i]);
    free(p->ev);
    free(p->snapshot);
    idset_free(&p->found);
    idset_free(&p->unsure);
    idset_free(&p->prior_ix);
    bus_close(p->b);
}

/* ---- output ------------------------------------------------------------------------------------------- */

static void emit(rctx *x, json_t *f)
{
    if (x->json) {
        char *t = json_dumps(f, JSON_COMPACT);
        if (t) puts(t);
        free(t);
    } else {
        json_int_t line = json_integer_value(json_object_get(f, "line"));
        const char *order = json_string_value(json_object_get(f, "orderId"));
        printf("%s", json_string_value(json_object_get(f, "file")));
        if (line) printf(":%" JSON_INTEGER_FORMAT, line);
        printf(": %s%s%s: %s. To do: %s.\n", order ? order : "", order ? ": " : "",
               json_string_value(json_object_get(f, "kind")), json_string_value(json_object_get(f, "message")),
               json_string_value(json_object_get(f, "action")));
    }
    json_decref(f);
}

static void finding(rctx *x, const batch_rec_finding *f, const char *file, size_t line, const char *id,
                    const char *status, const json_t *doc, const char *detail)
{
    x->kinds[f->kind]++;
    json_t *j = batch_rec_finding_json(f, x->system, file, line, id, status, doc, detail);
    if (x->publish) {
        if (f->kind == BATCH_REC_BAD_ROW && !id) x->p.blind++;
        else if (f->kind == BATCH_REC_BAD_ROW || f->kind == BATCH_REC_UNKNOWN_STATUS) idset_add(&x->p.unsure, id, 1);
        else raise_found(x, f, id, status, doc, json_string_value(json_object_get(j, "message")));
    }
    emit(x, j);
}

static uint64_t mismatches(const rctx *x)
{
    uint64_t n = 0;
    for (int k = 0; k < BATCH_REC_KIND_COUNT; k++) n += x->kinds[k];
    return n;
}

static void summary(rctx *x, int nfiles, uint64_t applied)
{
    json_t *by = json_object();
    for (int k = 0; k < BATCH_REC_KIND_COUNT; k++)
        json_object_set_new(by, batch_rec_kind_name((batch_rec_kind)k), json_integer((json_int_t)x->kinds[k]));
    if (x->json) {
        json_t *s = json_pack("{s:{s:s,s:s,s:i,s:I,s:I,s:I,s:o,s:I,s:b}}", "summary", "system", x->system, "mapping",
                              batch_mapping_name(x->m), "files", nfiles, "rows", (json_int_t)x->rows, "matched",
                              (json_int_t)x->matched, "mismatches", (json_int_t)mismatches(x), "byKind", by,
                              "appliedSeq", (json_int_t)applied, "full", ct_config_bool(x->cfg, "full"));
        if (x->publish)
            json_object_set_new(json_object_get(s, "summary"), "published",
                                json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "snapshot", x->p.snapshot, "found",
                                          (json_int_t)x->p.found_n, "cleared", (json_int_t)x->p.cleared_n,
                                          "unchanged", (json_int_t)x->p.unchanged, "stored", (json_int_t)x->p.stored,
                                          "duplicates", (json_int_t)x->p.dups, "failed", (json_int_t)x->p.failed));
        emit(x, s);
        return;
    }
    printf("%s (%s): %" PRIu64 " rows, %" PRIu64 " matched, %" PRIu64 " disagreement%s", x->system,
           batch_mapping_name(x->m), x->rows, x->matched, mismatches(x), mismatches(x) == 1 ? "" : "s");
    const char *k;
    json_t *v;
    json_object_foreach(by, k, v) {
        if (json_integer_value(v)) printf(", %s %" JSON_INTEGER_FORMAT, k, json_integer_value(v));
    }
    printf(" (store at sequence %" PRIu64 ")\n", applied);
    if (x->publish)
        printf("published (%s): %" PRIu64 " mismatchFound, %" PRIu64 " mismatchCleared; %" PRIu64 " unchanged; "
               "%" PRIu64 " stored, %" PRIu64 " duplicates, %" PRIu64 " failed\n",
               x->p.snapshot, x->p.found_n, x->p.cleared_n, x->p.unchanged, x->p.stored, x->p.dups, x->p.failed);
    json_decref(by);
}

/* ---- metrics ------------------------------------------------------------------------------------------ */

static void metrics_text(const rctx *x, FILE *f)
{
    fprintf(f, "# HELP tower_reconcile_rows Snapshot rows read by the last towerd reconcile run.\n"
               "# TYPE tower_reconcile_rows gauge\n"
               "tower_reconcile_rows{system=\"%s\"} %" PRIu64 "\n",
            x->system, x->rows);
    fprintf(f, "# HELP tower_reconcile_mismatches Disagreements found by the last towerd reconcile run, per kind.\n"
               "# TYPE tower_reconcile_mismatches gauge\n");
    for (int k = 0; k < BATCH_REC_KIND_COUNT; k++)
        fprintf(f, "tower_reconcile_mismatches{system=\"%s\",kind=\"%s\"} %" PRIu64 "\n", x->system,
                batch_rec_kind_name((batch_rec_kind)k), x->kinds[k]);
    fprintf(f, "# HELP tower_reconcile_last_run_timestamp_seconds When the last towerd reconcile run finished.\n"
               "# TYPE tower_reconcile_last_run_timestamp_seconds gauge\n"
               "tower_reconcile_last_run_timestamp_seconds{system=\"%s\"} %lld\n",
            x->system, (long long)time(NULL));
}

/* Write the metrics to PATH through PATH.tmp.PID and a rename; 0 or -1 (said). */
static int write_metrics(const rctx *x, const char *path)
{
    char *tmp = ct_sprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        metrics_text(x, f);
        rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
        rc |= fclose(f);
        if (rc == 0) rc = rename(tmp, path);
        if (rc != 0) unlink(tmp);
    }
    if (rc != 0) fprintf(stderr, "towerd reconcile: cannot write %s: %s\n", path, strerror(errno));
    free(tmp);
    return rc;
}

/* ---- the store ---------------------------------------------------------------------------------------- */

/* The reader for the next row: a new one every READER_ROWS rows; NULL after saying why. */
static store_reader *reader(rctx *x)
{
    if (x->r && x->reader_rows++ < READER_ROWS) return x->r;
    store_reader_end(x->r);
    x->r = NULL;
    x->reader_rows = 1;
    if (store_reader_begin(x->s, &x->r) != CT_OK) {
        fprintf(stderr, "towerd reconcile: cannot read the store\n");
        return NULL;
    }
    return x->r;
}

/* The tower's own notes about an order are no milestone of it: the mismatches reconcile raised and the actions
 * people took on them. An order known only through them is unknown to the tower. */
static void drop_tower_notes(json_t **doc)
{
    static const char *const notes[] = {"mismatchFound",    "mismatchCleared",  "exceptionAcknowledged",
                                        "exceptionAssigned", "exceptionSnoozed", "exceptionNoted",
                                        "exceptionResolved", "exceptionReopened"};
    json_t *ms = json_object_get(*doc, "milestones");
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++) json_object_del(ms, notes[i]);
    if (json_object_size(ms) == 0) {
        json_decref(*doc);
        *doc = NULL;
    }
}

/* The order's document (NULL: the tower does not know it); -1 on a store failure (said). */
static int lookup(rctx *x, const char *id, json_t **doc)
{
    store_reader *r = reader(x);
    *doc = NULL;
    if (!r) return -1;
    ct_status st = store_entity_json(r, 'o', id, 0, doc);
    if (st == CT_OK) drop_tower_notes(doc);
    if (st == CT_OK || st == CT_NOT_FOUND) return 0;
    fprintf(stderr, "towerd reconcile: cannot read order %s from the store: %s\n", id, ct_status_str(st));
    return -1;
}

/* ---- rows --------------------------------------------------------------------------------------------- */

/* The cell at col, trimmed of spaces and tabs (a new string; "" past the row's end). */
static char *cell(const batch_row *row, long col)
{
    if (col < 0 || (size_t)col >= row->ncols) return ct_strdup("");
    const char *s = row->cols[col];
    size_t n = row->lens[col];
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return ct_strndup(s, n);
}

/* The contract's id rule: 1-EVT_MAX_ID characters of [A-Za-z0-9._:-]. */
static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (!n || n > EVT_MAX_ID) return 0;
    return strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

/* The row's id and status; -1 with why when it cannot be compared. */
static int row_cells(const rctx *x, const batch_row *row, char **id, char **status, char *why, size_t cap)
{
    if (row->code != EVT_OK) return snprintf(why, cap, "%s: %s", evt_code_str(row->code), row->message), -1;
    *id = cell(row, x->spec->id_col);
    *status = cell(row, x->spec->status_col);
    if (x->header_cols && row->ncols != x->header_cols)
        return snprintf(why, cap, "MALFORMED: the row has %zu columns, the header %zu (a delimiter inside an "
                                  "unquoted field?)", row->ncols, x->header_cols), -1;
    if (!**id) return snprintf(why, cap, "column \"%s\" (the order id) is empty", x->spec->id_column), -1;
    if (!id_ok(*id))
        return snprintf(why, cap, "column \"%s\": \"%.80s\" is not an order id (1-64 characters of [A-Za-z0-9._:-])",
                        x->spec->id_column, *id), -1;
    if (!**status) return snprintf(why, cap, "column \"%s\" (the status) is empty", x->spec->status_column), -1;
    return 0;
}

static int compare_row(rctx *x, const char *file, size_t line, const char *id, const char *status)
{
    json_t *doc;
    if (lookup(x, id, &doc) != 0) return -1;
    size_t n = batch_rec_compare(x->spec, status, doc ? json_object_get(doc, "milestones") : NULL, x->found,
                                 x->cap_found);
    if (n > x->cap_found) n = x->cap_found;
    for (size_t i = 0; i < n; i++) finding(x, &x->found[i], file, line, id, status, doc, NULL);
    if (!n) x->matched++;
    json_decref(doc);
    return 0;
}

/* Compare one row; -1 on a store failure. */
static int one_row(rctx *x, const batch_row *row, const char *file)
{
    char why[600], *id = NULL, *status = NULL;
    int rc = 0;
    if (row_cells(x, row, &id, &status, why, sizeof why) != 0) {
        batch_rec_finding bad = {BATCH_REC_BAD_ROW, NULL};
        finding(x, &bad, file, row->line, id && id_ok(id) ? id : NULL, status && *status ? status : NULL, NULL, why);
    } else {
        size_t first = idset_add(&x->seen, id, row->line);
        if (first) {
            batch_rec_finding dup = {BATCH_REC_DUPLICATE, NULL};
            snprintf(why, sizeof why, "the snapshot lists order %s again (first on line %zu)", id, first);
            finding(x, &dup, file, row->line, id, status, NULL, why);
        } else {
            rc = compare_row(x, file, row->line, id, status);
        }
    }
    free(id);
    free(status);
    return rc;
}

/* ---- files -------------------------------------------------------------------------------------------- */

/* A whole regular file (a new buffer in *data); -1 after saying why. */
static int file_load(const rctx *x, const char *path, char **data, size_t *len)
{
    struct stat sb;
    FILE *f = fopen(path, "rb");
    const char *why = NULL;
    if (!f || fstat(fileno(f), &sb) != 0) why = strerror(errno);
    else if (!S_ISREG(sb.st_mode)) why = "not a regular file";
    else if ((uint64_t)sb.st_size > ct_config_size(x->cfg, "max-file-size")) why = "larger than --max-file-size";
    if (why) {
        fprintf(stderr, "towerd reconcile: cannot read %s: %s\n", path, why);
        if (f) fclose(f);
        return -1;
    }
    *data = ct_malloc((size_t)sb.st_size + 1);
    *len = fread(*data, 1, (size_t)sb.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "towerd reconcile: cannot read %s: read error\n", path);
        free(*data);
        return -1;
    }
    return 0;
}

/* Read the header row (if any) and bind the [reconcile] columns: 0; 1 for an empty file; -1 after saying why. */
static int bind_file(rctx *x, batch_reader *r, const char *file)
{
    batch_row hdr;
    int has = batch_mapping_has_header(x->m) ? batch_reader_next(r, &hdr) : 0;
    if (has && hdr.code != EVT_OK) {
        fprintf(stderr, "%s:%zu: %s: header row: %s\n", file, hdr.line, evt_code_str(hdr.code), hdr.message);
        return -1;
    }
    if (batch_mapping_has_header(x->m) && !has) return 1;
    char *err = NULL;
    x->header_cols = has ? hdr.ncols : 0;
    if (batch_mapping_bind_reconcile(x->m, has ? &hdr : NULL, file, &err) != 0) {
        fprintf(stderr, "%s\n", err);
        free(err);
        return -1;
    }
    return 0;
}

/* Compare every row of a file (or only bind it when check): 0; -1 mapping misfit; -2 failure. */
static int reconcile_file(rctx *x, const char *path, int check)
{
    char *data;
    size_t len;
    if (file_load(x, path, &data, &len) != 0) return -2;
    if (check && x->publish) snapshot_add(x, path, data, len);
    batch_reader *rd = batch_reader_new(data, len, batch_mapping_format(x->m));
    int rc = bind_file(x, rd, path);
    batch_row row;
    while (rc == 0 && !check && batch_reader_next(rd, &row) == 1) {
        x->rows++;
        if (one_row(x, &row, path) != 0) rc = -2;
    }
    batch_reader_free(rd);
    free(data);
    return rc > 0 ? 0 : rc;
}

/* ---- --full: the tower's open orders the snapshot does not list ------------------------------------------ */

static int missing_prefix(rctx *x, const char *q, const char *file)
{
    store_reader *r = reader(x);
    json_t *res = NULL;
    if (!r || store_search(r, q, SIZE_MAX, &res) != CT_OK) return -1;
    x->reader_rows = READER_ROWS; /* the next lookup takes a new reader */
    json_t *orders = json_object_get(res, "orders"), *id;
    size_t i;
    int rc = 0;
    json_array_foreach(orders, i, id) {
        const char *oid = json_string_value(id);
        json_t *doc = NULL;
        if (!oid || idset_has(&x->seen, oid)) continue;
        if ((rc = lookup(x, oid, &doc)) != 0) break;
        if (doc && batch_rec_is_open(x->spec, json_object_get(doc, "milestones"))) {
            batch_rec_finding f = {BATCH_REC_MISSING_FROM_SNAPSHOT, NULL};
            finding(x, &f, file, 0, oid, NULL, doc, NULL);
        }
        json_decref(doc);
    }
    json_decref(res);
    return rc;
}

static int missing_from_snapshot(rctx *x, const char *file)
{
    static const char alphabet[] = "-.0123456789:ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    for (const char *c = alphabet; *c; c++) {
        char q[2] = {*c, '\0'};
        if (missing_prefix(x, q, file) != 0) return -1;
    }
    return 0;
}

/* ---- the command -------------------------------------------------------------------------------------- */

/* --publish: connect to NATS (before anything is compared); 0 or -1 (said). */
static int connect_bus(rctx *x)
{
    bus_opts bo;
    towerd_bus_opts(x->cfg, &bo, "towerd reconcile");
    if (bus_connect(&x->p.b, &bo) == CT_OK && bus_ensure_streams(x->p.b) == CT_OK) return 0;
    fprintf(stderr, "towerd reconcile: --publish: cannot reach NATS\n");
    return -1;
}

/* Every file, then --full (and with --publish the events); the exit code. */
static int run(rctx *x, char **files, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = reconcile_file(x, files[i], 1);
        if (rc) return rc == -1 ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
    }
    if (x->publish) snapshot_done(x);
    store_opts so = {.dir = ct_config_str(x->cfg, "data"), .read_only = 1};
    if (store_open(&x->s, &so) != CT_OK) {
        fprintf(stderr, "towerd reconcile: cannot open the store in %s\n", so.dir);
        return TOWERD_EXIT_FAIL;
    }
    if (x->publish && (connect_bus(x) != 0 || load_prior(x) != 0)) return TOWERD_EXIT_FAIL;
    for (int i = 0; i < n; i++)
        if (reconcile_file(x, files[i], 0) != 0) return TOWERD_EXIT_FAIL;
    if (ct_config_bool(x->cfg, "full") && missing_from_snapshot(x, files[0]) != 0) return TOWERD_EXIT_FAIL;
    if (x->publish) raise_cleared(x);
    int pub_failed = x->publish && publish_all(x) != 0;
    store_stats ss = {0};
    if (reader(x)) store_reader_stats(x->r, &ss);
    store_reader_end(x->r);
    x->r = NULL;
    summary(x, n, ss.applied_seq);
    if (fflush(stdout) != 0) return TOWERD_EXIT_FAIL;
    const char *mf = ct_config_str(x->cfg, "metrics-file");
    if (mf && write_metrics(x, mf) != 0) return TOWERD_EXIT_FAIL;
    if (pub_failed) return TOWERD_EXIT_FAIL;
    return mismatches(x) ? TOWERD_EXIT_REJECTED : TOWERD_EXIT_OK;
}

int towerd_reconcile(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    rctx x = {.cfg = c.cfg, .json = ct_config_bool(c.cfg, "json"), .publish = ct_config_bool(c.cfg, "publish")};
    rc = TOWERD_EXIT_USAGE;
    if (!ct_config_str(c.cfg, "mapping")) {
        fprintf(stderr, "towerd reconcile: --mapping FILE is required (see --help)\n");
        goto out;
    }
    x.m = towerd_mapping_load("towerd reconcile", ct_config_str(c.cfg, "mapping"), BATCH_MAPPING_RECONCILE);
    if (!x.m) goto out;
    x.spec = batch_mapping_reconcile(x.m);
    x.system = batch_mapping_system(x.m);
    x.cap_found = BATCH_REC_MAX_LIST + x.spec->nrf + 1;
    x.found = ct_calloc(x.cap_found, sizeof *x.found);
    rc = run(&x, c.args, c.nargs);
out:
    store_reader_end(x.r);
    store_close(x.s);
    free(x.found);
    idset_free(&x.seen);
    pub_free(&x.p);
    batch_mapping_free(x.m);
    towerd_end(&c);
    return rc;
}
