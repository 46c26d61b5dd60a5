/* towerd fold: fold event files into the store offline, with progress and a summary. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evt.h"
#include "store.h"
#include "towerd.h"

#define BATCH 1000
#define MAX_SHOWN 100

static void fold_usage(FILE *out)
{
    fprintf(out,
            "usage: towerd fold [--data DIR] [--batch N] [--strict] [--quiet] FILE...\n\n"
            "Validates and folds events from NDJSON files (one event per line) or JSON\n"
            "arrays into the store, as the projector would. '-' reads standard input.\n"
            "Invalid lines and conflicting duplicates become dead letters and are listed\n"
            "on stderr with their file, line, code and field; good events still go in.\n\n"
            "  --data DIR   the store (default $TOWER_DATA or ./tower-data; created if missing)\n"
            "  --batch N    events per write transaction (default %d)\n"
            "  --strict     exit 3 if any record was dead-lettered\n"
            "  --quiet      no progress line\n"
            "  --help       this text\n\n"
            "Exit codes: 0 folded; 1 failure (I/O, store); 2 usage; 3 dead letters with --strict.\n",
            BATCH);
}

typedef struct pending {
    store_input in[BATCH];
    evt_event *ev[BATCH];
    evt_error err[BATCH];
    char *raw[BATCH];
    size_t line[BATCH];
    store_outcome out[BATCH];
    size_t n;
} pending;

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
        p->in[i] = (store_input){0, rec.event, &p->err[i], p->raw[i], rec.raw_len, "application/json"};
        t->records++;
        if (p->n == BATCH) st = flush(s, p, path, t);
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

int towerd_fold(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, 0, 'd'}, {"strict", no_argument, 0, 's'},
                                         {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *data = NULL;
    int strict = 0, quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:sqh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': strict = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fold_usage(stdout); return TOWERD_EXIT_OK;
        default: fold_usage(stderr); return TOWERD_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "towerd fold: no input file (use - for standard input)\n\n");
        fold_usage(stderr);
        return TOWERD_EXIT_USAGE;
    }
    store *s = NULL;
    store_opts so = {.dir = towerd_data_dir(data)};
    if (store_open(&s, &so) != CT_OK) return TOWERD_EXIT_FAIL;

    pending *p = ct_calloc(1, sizeof *p);
    totals t = {0};
    int64_t t0 = ct_mono_ns();
    ct_status st = CT_OK;
    for (int i = optind; i < argc && st == CT_OK; i++) st = fold_file(s, argv[i], p, &t, quiet);
    double secs = (double)(ct_mono_ns() - t0) / 1e9;

    store_reader *r = NULL;
    store_stats ss = {0};
    if (store_reader_begin(s, &r) == CT_OK) store_reader_stats(r, &ss);
    store_reader_end(r);
    if (t.shown > MAX_SHOWN) fprintf(stderr, "(%" PRIu64 " more rejected records not shown)\n", t.shown - MAX_SHOWN);
    fprintf(stderr,
            "folded %" PRIu64 " records in %.2fs (%.0f/s): %" PRIu64 " accepted, %" PRIu64 " duplicates, %" PRIu64
            " dead-lettered; applied sequence %" PRIu64 "\n",
            t.records, secs, secs > 0 ? (double)t.records / secs : 0.0, t.applied, t.dups, t.dead,
            ss.applied_seq);
    free(p);
    store_close(s);
    if (st != CT_OK) return TOWERD_EXIT_FAIL;
    return strict && t.dead ? TOWERD_EXIT_REJECTED : TOWERD_EXIT_OK;
}
