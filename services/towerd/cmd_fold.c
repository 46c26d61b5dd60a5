/* towerd fold: fold event files into the store offline, with progress and a summary. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evt.h"
#include "store.h"
#include "towerd.h"

#define BATCH_DEFAULT "1000"
#define BATCH_MAX 100000
#define MAX_SHOWN 100

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR",
     "the store directory (created if missing)", 0, 0},
    {"batch", 0, NULL, NULL, CT_OPT_INT, BATCH_DEFAULT, "N", "events per write transaction (1 to 100000)", 0, 0},
    {"strict", 's', NULL, NULL, CT_OPT_BOOL, NULL, NULL, "exit 3 if any record was dead-lettered", 0, 0},
    {"quiet", 'q', NULL, NULL, CT_OPT_BOOL, NULL, NULL, "no progress line", 0, 0},
};

static const char *const ignore[] = {"store", "nats", "stream", "projector", "server", "sla", "sim", "publish", "up",
                                     NULL};

static const towerd_spec spec = {
    .cmd = "towerd fold",
    .usage = "usage: towerd fold [--data DIR] [--batch N] [--strict] [--quiet] FILE...\n\n"
             "Validates and folds events from NDJSON files (one event per line) or JSON\n"
             "arrays into the store, as the projector would. '-' reads standard input.\n"
             "Invalid lines and conflicting duplicates become dead letters and are listed\n"
             "on stderr with their file, line, code and field; good events still go in.\n\n"
             "Exit codes: 0 folded; 1 failure (I/O, store); 2 usage; 3 dead letters with --strict.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .ignore = ignore,
    .min_args = 1,
    .max_args = INT_MAX,
    .args_usage = "no input file (use - for standard input)",
};

/* The records of one write transaction: cap of each (--batch), n in use. */
typedef struct pending {
    store_input *in;
    evt_event **ev;
    evt_error *err;
    char **raw;
    size_t *line;
    store_outcome *out;
    size_t n, cap;
} pending;

static void pending_init(pending *p, size_t cap)
{
    *p = (pending){.cap = cap};
    p->in = ct_calloc(cap, sizeof *p->in);
    p->ev = ct_calloc(cap, sizeof *p->ev);
    p->err = ct_calloc(cap, sizeof *p->err);
    p->raw = ct_calloc(cap, sizeof *p->raw);
    p->line = ct_calloc(cap, sizeof *p->line);
    p->out = ct_calloc(cap, sizeof *p->out);
}

static void pending_free(pending *p)
{
    free(p->in);
    free(p->ev);
    free(p->err);
    free(p->raw);
    free(p->line);
    free(p->out);
}

typedef struct totals {
    uint64_t records, applied, dups, dead, skipped, shown;
} totals;

static void report_rejected(totals *t, const char *file, size_t line, const char *code, const char *msg)
{
    if (t->shown++ < MAX_SHOWN) fprintf(stderr, "%s:%zu: %s: %s\n", file, line, code, msg);
}

static ct_status flush(store *s, pending *p, const char *file, totals *t)
{
    if (!p->n) return CT_OK;
    ct_status st = store_apply(s, p->in, p->n, ct_now_ns(), p->out, NULL);
    for (size_t i = 0; i < p->n; i++) {
        if (st == CT_OK) {
            switch (p->out[i]) {
            case STORE_APPLIED: t->applied++; break;
            case STORE_DUPLICATE: t->dups++; break;
            case STORE_SKIPPED: t->skipped++; break;
            case STORE_DEAD_LETTER:
                t->dead++;
                if (p->ev[i])
                    report_rejected(t, file, p->line[i], "CONFLICTING_DUPLICATE",
                                    "eventId already applied with different content; the first copy stays");
                else
                    report_rejected(t, file, p->line[i], evt_code_str(p->err[i].code), p->err[i].message);
                break;
            }
        }
        evt_free(p->ev[i]);
        free(p->raw[i]);
    }
    p->n = 0;
    return st;
}

static void progress(const char *file, off_t done, off_t size, uint64_t records, int64_t t0, int final)
{
    double secs = (double)(ct_mono_ns() - t0) / 1e9;
    double rate = secs > 0 ? (double)records / secs : 0;
    if (size > 0) {
        double frac = (double)done / (double)size;
        double eta = frac > 0 ? secs / frac - secs : 0;
        fprintf(stderr, "\r%s: %5.1f%%  %" PRIu64 " records  %.0f/s  ETA %.0fs   ", file, frac * 100.0, records,
                rate, eta);
    } else {
        fprintf(stderr, "\r%s: %" PRIu64 " records  %.0f/s   ", file, records, rate);
    }
    if (final) fputc('\n', stderr);
}

static ct_status fold_file(store *s, const char *path, pending *p, totals *t, int quiet)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        ct_log(CT_LOG_ERROR, "fold", "cannot open %s: %m", path);
        return CT_IO;
    }
    struct stat sb;
    off_t size = fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) ? sb.st_size : 0;
    evt_reader *r = NULL;
    ct_status st = evt_reader_open(&r, f);
    int64_t t0 = ct_mono_ns(), last = t0;
    uint64_t start_records = t->records;
    int shown_progress = 0;
    while (st == CT_OK) {
        evt_record rec;
        int got = evt_reader_next(r, &rec);
        if (got < 0) {
            fprintf(stderr, "%s: %s: %s\n", path, evt_code_str(rec.error.code), rec.error.message);
            st = CT_INVALID;
            break;
        }
        if (got == 0) break;
        size_t i = p->n++;
        p->ev[i] = rec.event;
        p->err[i] = rec.error;
        p->raw[i] = ct_strndup(rec.raw, rec.raw_len);
        p->line[i] = rec.line;
        p->in[i] = (store_input){0, rec.event, &p->err[i], p->raw[i], rec.raw_len, "application/json", NULL, 0};
        t->records++;
        if (p->n == p->cap) st = flush(s, p, path, t);
        int64_t now = ct_mono_ns();
        if (!quiet && now - last > 1000000000LL) {
            progress(path, size ? ftello(f) : 0, size, t->records - start_records, t0, 0);
            last = now;
            shown_progress = 1;
        }
    }
    if (st == CT_OK) st = flush(s, p, path, t);
    else {
        for (size_t i = 0; i < p->n; i++) {
            evt_free(p->ev[i]);
            free(p->raw[i]);
        }
        p->n = 0;
    }
    if (shown_progress) progress(path, size, size, t->records - start_records, t0, 1);
    evt_reader_destroy(r);
    if (f != stdin) fclose(f);
    return st;
}

/* The closing summary on stderr. */
static void report_totals(store *s, const totals *t, double secs)
{
    store_reader *r = NULL;
    store_stats ss = {0};
    if (store_reader_begin(s, &r) == CT_OK) store_reader_stats(r, &ss);
    store_reader_end(r);
    if (t->shown > MAX_SHOWN)
        fprintf(stderr, "(%" PRIu64 " more rejected records not shown)\n", t->shown - MAX_SHOWN);
    fprintf(stderr,
            "folded %" PRIu64 " records in %.2fs (%.0f/s): %" PRIu64 " accepted, %" PRIu64 " duplicates, %" PRIu64
            " dead-lettered; applied sequence %" PRIu64 "\n",
            t->records, secs, secs > 0 ? (double)t->records / secs : 0.0, t->applied, t->dups, t->dead,
            ss.applied_seq);
}

int towerd_fold(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    int64_t batch = ct_config_int(c.cfg, "batch");
    if (batch < 1 || batch > BATCH_MAX) {
        fprintf(stderr, "towerd fold: --batch (%s): between 1 and %d\n", ct_config_source(c.cfg, "batch"), BATCH_MAX);
        towerd_end(&c);
        return TOWERD_EXIT_USAGE;
    }
    store *s = NULL;
    store_opts so = {.dir = ct_config_str(c.cfg, "data")};
    if (store_open(&s, &so) != CT_OK) {
        towerd_end(&c);
        return TOWERD_EXIT_FAIL;
    }
    pending p;
    pending_init(&p, (size_t)batch);
    totals t = {0};
    int quiet = ct_config_bool(c.cfg, "quiet");
    int64_t t0 = ct_mono_ns();
    ct_status st = CT_OK;
    for (int i = 0; i < c.nargs && st == CT_OK; i++) st = fold_file(s, c.args[i], &p, &t, quiet);
    report_totals(s, &t, (double)(ct_mono_ns() - t0) / 1e9);
    pending_free(&p);
    store_close(s);
    rc = st != CT_OK ? TOWERD_EXIT_FAIL : ct_config_bool(c.cfg, "strict") && t.dead ? TOWERD_EXIT_REJECTED : TOWERD_EXIT_OK;
    towerd_end(&c);
    return rc;
}
