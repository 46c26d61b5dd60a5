/* towerd import: legacy CSV / fixed-width files into events through a mapping file, once or from a drop directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "nats_opts.h"
#include "mapping_file.h"
#include "towerd.h"

#define WINDOW 4096       /* publishes in flight before waiting for their acks */
#define MAX_REPORTED 1000 /* rejected rows listed in a watch report */

static const ct_opt_def own_defs[] = {
    {"mapping", 'm', "TOWER_IMPORT_MAPPING", "import.mapping", CT_OPT_STRING, NULL, "FILE",
     "the mapping file (INI; see docs/import.md): required", 0, 0},
    {"watch", 0, "TOWER_IMPORT_WATCH", "import.watch", CT_OPT_STRING, NULL, "DIR",
     "take files from the drop directory DIR until SIGTERM (no FILE arguments)", 0, 0},
    {"poll", 0, "TOWER_IMPORT_POLL", "import.poll", CT_OPT_DURATION, "1s", "DURATION",
     "how often --watch looks for new files", 0, 0},
    {"max-file-size", 0, "TOWER_IMPORT_MAX_FILE_SIZE", "import.max_file_size", CT_OPT_SIZE, "1GiB", "SIZE",
     "refuse larger files", 0, 0},
    {"timeout", 0, "TOWER_PUBLISH_TIMEOUT", "publish.timeout", CT_OPT_DURATION, "30s", "DURATION",
     "give up on acknowledgements after this long", 0, 0},
    {"dry-run", 'n', NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "map and validate only: print the events as NDJSON on stdout, publish nothing (no NATS)", 0, 0},
    {"json", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "print the summary as JSON on stdout", 0, 0},
};

static const char *const ignore[] = {"store", "projector", "server", "sla", "sim", "publish", "up", NULL};

static const towerd_spec spec = {
    .cmd = "towerd import",
    .usage = "usage: towerd import --mapping FILE [OPTIONS] FILE...\n"
             "       towerd import --mapping FILE --watch DIR [OPTIONS]\n\n"
             "Reads CSV (RFC 4180) or fixed-width files exported by a legacy system, maps each row into an\n"
             "event through the mapping file, validates it with the event codec and publishes it to\n"
             "JetStream, waiting for every acknowledgement. The eventId is a hash of the mapping's name, the\n"
             "row's kind and the cells the mapping reads (not the file name nor the line), so importing a\n"
             "file again, or tomorrow's snapshot repeating a row, adds nothing. A rejected row is reported as\n"
             "FILE:LINE: CODE: message (naming the field and its column) and published as a JSON record that\n"
             "the projector dead-letters with its validation error.\n\n"
             "--watch DIR takes every complete file dropped into DIR (not dotfiles, *.tmp, *.part: write\n"
             "there and rename), claims it by renaming it into DIR/work/, and once every row is acknowledged\n"
             "moves it to DIR/done/ (every row stored) or DIR/failed/ (rejected rows, or a file that cannot\n"
             "be read), beside a report NAME.report.json; files left in work/ by a crash are imported again\n"
             "first (the stable ids make that harmless). SIGTERM/SIGINT stop it (the file in hand stays in\n"
             "work/ unless finished).\n\n"
             "Exit codes: 0 every row stored (or already there), or --watch stopped by a signal; 1 runtime\n"
             "failure (a file or NATS, some row not stored: FAILED lines); 2 usage, or a mapping error (its\n"
             "FILE:LINE, also a column missing from a file's header; nothing is published); 3 rows were\n"
             "rejected (the others are stored).",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
    .min_args = 0,
    .max_args = INT_MAX,
};

/* What one file came to. */
typedef struct imp_stats {
    uint64_t rows, events, stored, dups, rejected, dead, skipped, failed;
} imp_stats;

/* A file's outcome. */
typedef enum imp_rc {
    IMP_OK,          /* every row handled (some may be rejected) */
    IMP_BAD_FILE,    /* unreadable, or its header does not fit the mapping: nothing published */
    IMP_NOT_STORED,  /* some publish was not acknowledged: try again */
    IMP_STOPPED      /* a signal stopped it midway */
} imp_rc;

/* The command's state. */
typedef struct ictx {
    const ct_config *cfg;
    batch_mapping *m;
    bus *b;                 /* NULL with --dry-run */
    int64_t timeout_ms;
    uint64_t max_size;
    int watch;              /* stop at a signal */
    size_t *lines;          /* per publish tag: the row's line */
    size_t inflight;
    const char *label;      /* the file's name in messages */
    imp_stats *st;
    ct_buf errors;          /* the rejected rows as JSON array items (watch reports) */
    size_t nerrors;
    char file_error[1024];  /* why a file was bad */
} ictx;

/* ---- files ------------------------------------------------------------------------------------ */

typedef struct mapped {
    char *data;
    size_t len;
} mapped;

/* Map a whole regular file into memory; -1 with x->file_error. */
static int file_load(ictx *x, const char *path, mapped *out)
{
    *out = (mapped){0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(x->file_error, sizeof x->file_error, "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > x->max_size) {
        snprintf(x->file_error, sizeof x->file_error, "%s: %s", path,
                 S_ISREG(sb.st_mode) ? "larger than --max-file-size" : "not a regular file");
        close(fd);
        return -1;
    }
    if (sb.st_size > 0) {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            snprintf(x->file_error, sizeof x->file_error, "cannot read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        out->data = p;
        out->len = (size_t)sb.st_size;
    }
    close(fd);
    return 0;
}

static void file_unload(mapped *f)
{
    if (f->data) munmap(f->data, f->len);
    *f = (mapped){0};
}

/* ---- publishing --------------------------------------------------------------------------------- */

/* Tags below this are events, from it on dead-letter records (to count them apart). */
#define DEAD_TAG WINDOW

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    ictx *x = ctx;
    int dead = tag >= DEAD_TAG;
    switch (ack->result) {
    case BUS_PUB_STORED:
    case BUS_PUB_DUPLICATE:
        if (dead) x->st->dead++;
        else if (ack->result == BUS_PUB_STORED) x->st->stored++;
        else x->st->dups++;
        break;
    case BUS_PUB_FAILED:
        x->st->failed++;
        fprintf(stderr, "%s:%zu: FAILED: %s\n", x->label, x->lines[dead ? tag - DEAD_TAG : tag], ack->error);
        break;
    }
}

static void flush(ictx *x)
{
    if (x->b && x->inflight) bus_publish_wait(x->b, x->timeout_ms, on_ack, x);
    x->inflight = 0;
}

/* Publish a rejected row's JSON record raw on tower.evt.<system>.invalid (the projector dead-letters it). */
static void publish_dead(ictx *x, const batch_result *r, size_t line)
{
    char *txt = json_dumps(r->json, JSON_COMPACT | JSON_SORT_KEYS);
    if (!txt) return;
    if (!x->b) {
        free(txt);
        return;
    }
    char subject[96], id[64];
    snprintf(subject, sizeof subject, "tower.evt.%s.invalid", batch_mapping_system(x->m));
    snprintf(id, sizeof id, "imp-bad-%016" PRIx64, ct_hash64(txt, strlen(txt)));
    x->lines[x->inflight] = line;
    bus_publish_raw(x->b, subject, txt, strlen(txt), id, DEAD_TAG + x->inflight);
    free(txt);
    if (++x->inflight == WINDOW) flush(x);
}

static void publish_event(ictx *x, const batch_result *r, size_t line)
{
    if (!x->b) { /* --dry-run: the canonical event on stdout */
        json_t *j = evt_to_json(r->event);
        char *txt = json_dumps(j, JSON_COMPACT);
        if (txt) puts(txt);
        free(txt);
        json_decref(j);
        return;
    }
    x->lines[x->inflight] = line;
    bus_publish_event(x->b, r->event, x->inflight);
    if (++x->inflight == WINDOW) flush(x);
}

/* Keep a rejected row for the report. */
static void note_rejected(ictx *x, size_t line, const batch_result *r)
{
    fprintf(stderr, "%s:%zu: %s: %s\n", x->label, line, evt_code_str(r->code), r->message);
    if (x->nerrors++ >= MAX_REPORTED) return;
    json_t *e = json_pack("{sIssss}", "line", (json_int_t)line, "code", evt_code_str(r->code), "message", r->message);
    char *txt = e ? json_dumps(e, JSON_COMPACT) : NULL;
    if (txt) ct_buf_addf(&x->errors, "%s%s", x->errors.len ? "," : "", txt);
    free(txt);
    json_decref(e);
}

/* ---- one file ----------------------------------------------------------------------------------- */

/* Read the header row (if the mapping has one) and bind the mapping's columns; -1 with x->file_error. */
static int bind_file(ictx *x, batch_reader *r, const char *label)
{
    batch_row hdr;
    int has = batch_mapping_has_header(x->m) ? batch_reader_next(r, &hdr) : 0;
    if (has && hdr.code != EVT_OK) {
        snprintf(x->file_error, sizeof x->file_error, "%s:%zu: %s: header row: %s", label, hdr.line,
                 evt_code_str(hdr.code), hdr.message);
        return -1;
    }
    if (batch_mapping_has_header(x->m) && !has) return 1; /* an empty file: nothing to bind */
    char *err = NULL;
    if (batch_mapping_bind(x->m, has ? &hdr : NULL, label, &err) != 0) {
        snprintf(x->file_error, sizeof x->file_error, "%s", err);
        free(err);
        return -1;
    }
    return 0;
}

/* Map and publish every row of data; the acks are all in when it returns. */
static imp_rc import_data(ictx *x, const char *data, size_t len, const char *label, const char *base)
{
    batch_reader *r = batch_reader_new(data, len, batch_mapping_format(x->m));
    x->label = label;
    int bound = bind_file(x, r, label);
    if (bound != 0) {
        batch_reader_free(r);
        return bound < 0 ? IMP_BAD_FILE : IMP_OK;
    }
    batch_row row;
    imp_rc rc = IMP_OK;
    while (batch_reader_next(r, &row) == 1) {
        if (x->watch && towerd_stop) {
            rc = IMP_STOPPED;
            break;
        }
        x->st->rows++;
        batch_result res;
        batch_map_row(x->m, &row, base, &res);
        if (res.outcome == BATCH_EVENT) {
            x->st->events++;
            publish_event(x, &res, row.line);
        } else if (res.outcome == BATCH_REJECTED) {
            x->st->rejected++;
            note_rejected(x, row.line, &res);
            publish_dead(x, &res, row.line);
        } else {
            x->st->skipped++;
        }
        batch_result_clear(&res);
    }
    flush(x);
    batch_reader_free(r);
    if (rc == IMP_OK && x->st->failed) rc = IMP_NOT_STORED;
    return rc;
}

/* Import one file from its path; label names it in messages, base in dead-letter records. */
static imp_rc import_path(ictx *x, const char *path, const char *label, const char *base)
{
    mapped f;
    x->file_error[0] = '\0';
    imp_rc rc = IMP_BAD_FILE;
    if (file_load(x, path, &f) == 0) {
        rc = import_data(x, f.data, f.len, label, base);
        file_unload(&f);
    }
    if (rc == IMP_BAD_FILE) fprintf(stderr, "towerd import: %s\n", x->file_error);
    return rc;
}

/* Check that a file's header fits the mapping, before anything is published; after saying why, -1 when the
   file cannot be read, -2 when it does not fit. */
static int precheck(ictx *x, const char *path)
{
    mapped f;
    x->file_error[0] = '\0';
    if (file_load(x, path, &f) != 0) {
        fprintf(stderr, "towerd import: %s\n", x->file_error);
        return -1;
    }
    batch_reader *r = batch_reader_new(f.data, f.len, batch_mapping_format(x->m));
    int rc = bind_file(x, r, path);
    batch_reader_free(r);
    file_unload(&f);
    if (rc < 0) fprintf(stderr, "%s\n", x->file_error);
    return rc < 0 ? -2 : 0;
}

static void summary(const ictx *x, const char *label, const imp_stats *s)
{
    fprintf(stderr,
            "%s: %" PRIu64 " rows: %" PRIu64 " events (%" PRIu64 " stored, %" PRIu64 " duplicates), %" PRIu64
            " rejected (%" PRIu64 " dead letters published), %" PRIu64 " skipped, %" PRIu64 " failed\n",
            label, s->rows, s->events, s->stored, s->dups, s->rejected, s->dead, s->skipped, s->failed);
}

static void summary_json(FILE *out, const imp_stats *s)
{
    fprintf(out,
            "{\"rows\":%" PRIu64 ",\"events\":%" PRIu64 ",\"stored\":%" PRIu64 ",\"duplicates\":%" PRIu64
            ",\"rejected\":%" PRIu64 ",\"deadLetters\":%" PRIu64 ",\"skipped\":%" PRIu64 ",\"failed\":%" PRIu64 "}",
            s->rows, s->events, s->stored, s->dups, s->rejected, s->dead, s->skipped, s->failed);
}

/* ---- once --------------------------------------------------------------------------------------- */

static int run_once(ictx *x, char **files, int n)
{
    imp_stats total = {0};
    int not_stored = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        imp_stats s = {0};
        x->st = &s;
        imp_rc rc = import_path(x, files[i], files[i], files[i]);
        not_stored |= rc == IMP_NOT_STORED;
        bad |= rc == IMP_BAD_FILE;
        summary(x, files[i], &s);
        total.rows += s.rows, total.events += s.events, total.stored += s.stored, total.dups += s.dups;
        total.rejected += s.rejected, total.dead += s.dead, total.skipped += s.skipped, total.failed += s.failed;
    }
    if (ct_config_bool(x->cfg, "json")) {
        summary_json(stdout, &total);
        fputc('\n', stdout);
    }
    if (not_stored || bad) return TOWERD_EXIT_FAIL;
    return total.rejected ? TOWERD_EXIT_REJECTED : TOWERD_EXIT_OK;
}

/* ---- the drop directory --------------------------------------------------------------------------- */

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

/* A file that is complete by convention: not hidden, not *.tmp, *.part, *.partial, *~. */
static int complete_name(const char *n)
{
    static const char *const partial[] = {".tmp", ".part", ".partial", "~", ".report.json", NULL};
    if (n[0] == '.') return 0;
    size_t len = strlen(n);
    for (int i = 0; partial[i]; i++) {
        size_t l = strlen(partial[i]);
        if (len >= l && !strcmp(n + len - l, partial[i])) return 0;
    }
    return 1;
}

static int filter_complete(const struct dirent *d) { return complete_name(d->d_name); }

/* The name a file was dropped with: the claimed name without its "YYYYmmddTHHMMSS.NNNNNNNNN-" prefix. */
static const char *dropped_name(const char *claimed)
{
    const char *dash = strchr(claimed, '-');
    return dash && dash - claimed == 25 && claimed[8] == 'T' ? dash + 1 : claimed;
}

/* Write the report beside where the file goes, atomically; 0 or -1. */
static int write_report(ictx *x, const char *dest, const char *claimed, const char *outcome)
{
    char *path = ct_sprintf("%s/%s.report.json", dest, claimed), *tmp = ct_sprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int rc = -1;
    if (f) {
        json_t *j = json_pack("{ssssssssss}", "file", dropped_name(claimed), "claimed", claimed, "mapping",
                              batch_mapping_name(x->m), "outcome", outcome, "error", x->file_error);
        char *head = json_dumps(j, JSON_COMPACT);
        head[strlen(head) - 1] = '\0'; /* without its '}' */
        fprintf(f, "%s,\"counts\":", head);
        summary_json(f, x->st);
        fprintf(f, ",\"rejectedRows\":[%s]}\n", x->errors.len ? x->errors.data : "");
        free(head);
        json_decref(j);
        rc = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -1;
        rc |= fclose(f);
        if (rc == 0) rc = rename(tmp, path);
    }
    if (rc != 0) ct_log(CT_LOG_ERROR, "import", "cannot write %s: %s", path, strerror(errno));
    free(path);
    free(tmp);
    return rc;
}

/* Import DIR/work/claimed and move it to done/ or failed/ with its report; -1 when it stays in work/
   (not every row acknowledged, or stopped). */
static int process_claimed(ictx *x, const char *dir, const char *claimed)
{
    char *path = ct_sprintf("%s/work/%s", dir, claimed);
    imp_stats s = {0};
    x->st = &s;
    ct_buf_reset(&x->errors);
    x->nerrors = 0;
    imp_rc rc = import_path(x, path, path, dropped_name(claimed));
    summary(x, path, &s);
    int ret = -1;
    if (rc == IMP_OK || rc == IMP_BAD_FILE) {
        int ok = rc == IMP_OK && !s.rejected;
        char *dest = ct_sprintf("%s/%s", dir, ok ? "done" : "failed");
        char *to = ct_sprintf("%s/%s", dest, claimed);
        if (write_report(x, dest, claimed, ok ? "done" : "failed") == 0 && rename(path, to) == 0) {
            sync_dir(dest);
            ret = 0;
            ct_log(CT_LOG_INFO, "import", "%s -> %s", claimed, ok ? "done/" : "failed/");
        } else {
            ct_log(CT_LOG_ERROR, "import", "cannot move %s to %s: %s", path, to, strerror(errno));
        }
        free(dest);
        free(to);
    }
    free(path);
    return ret;
}

/* Import what work/ holds (left by a crash, or not yet acknowledged); -1 if some stays. */
static int drain_work(ictx *x, const char *dir)
{
    char *work = ct_sprintf("%s/work", dir);
    struct dirent **v = NULL;
    int n = scandir(work, &v, filter_complete, alphasort), rc = 0;
    for (int i = 0; i < n; i++) {
        if (!towerd_stop && rc == 0) rc = process_claimed(x, dir, v[i]->d_name);
        free(v[i]);
    }
    free(v);
    free(work);
    return rc;
}

/* Claim the oldest-named complete file of dir by renaming it into work/; 1 claimed, 0 none. */
static int claim_next(const char *dir, char *claimed, size_t cap)
{
    struct dirent **v = NULL;
    int n = scandir(dir, &v, filter_complete, alphasort), got = 0;
    for (int i = 0; i < n; i++) {
        char *from = ct_sprintf("%s/%s", dir, v[i]->d_name);
        struct stat sb;
        int fits = strlen(v[i]->d_name) + 26 <= NAME_MAX; /* room for the claim's time prefix */
        if (!fits)
            ct_log(CT_LOG_WARN, "import", "%s: name too long to claim (at most %d bytes): rename it", from,
                   NAME_MAX - 26);
        if (!got && fits && stat(from, &sb) == 0 && S_ISREG(sb.st_mode)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            struct tm tm;
            gmtime_r(&ts.tv_sec, &tm);
            char stamp[32];
            strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
            snprintf(claimed, cap, "%s.%09ld-%s", stamp, ts.tv_nsec, v[i]->d_name);
            char *to = ct_sprintf("%s/work/%s", dir, claimed);
            got = rename(from, to) == 0; /* ENOENT: another importer took it */
            if (got) sync_dir(dir);
            free(to);
        }
        free(from);
        free(v[i]);
    }
    free(v);
    return got;
}

static int run_watch(ictx *x, const char *dir)
{
    const char *sub[] = {"work", "done", "failed"};
    for (int i = 0; i < 3; i++) {
        char *d = ct_sprintf("%s/%s", dir, sub[i]);
        int bad = mkdir(d, 0755) != 0 && errno != EEXIST;
        if (bad) fprintf(stderr, "towerd import: cannot create %s: %s\n", d, strerror(errno));
        free(d);
        if (bad) return TOWERD_EXIT_FAIL;
    }
    int64_t poll_ms = ct_config_duration_ns(x->cfg, "poll") / 1000000;
    ct_log(CT_LOG_INFO, "import", "watching %s (mapping %s)", dir, batch_mapping_name(x->m));
    while (!towerd_stop) {
        int busy = 0;
        if (drain_work(x, dir) == 0) {
            char claimed[NAME_MAX + 64];
            while (!towerd_stop && claim_next(dir, claimed, sizeof claimed)) {
                busy = process_claimed(x, dir, claimed) == 0; /* a failure waits a poll before retrying */
                if (!busy) break;
            }
        }
        for (int64_t t = 0; !busy && t < poll_ms && !towerd_stop; t += 50) usleep(50 * 1000);
    }
    ct_log(CT_LOG_INFO, "import", "stopped");
    return TOWERD_EXIT_OK;
}

/* ---- the command ---------------------------------------------------------------------------------- */

/* Check the arguments against the mode; 0 or an exit code. */
static int check_mode(const towerd_ctx *c)
{
    const char *watch = ct_config_str(c->cfg, "watch");
    if (!ct_config_str(c->cfg, "mapping")) {
        fprintf(stderr, "towerd import: --mapping FILE is required (see --help)\n");
        return TOWERD_EXIT_USAGE;
    }
    if (watch && c->nargs) {
        fprintf(stderr, "towerd import: --watch takes no FILE arguments\n");
        return TOWERD_EXIT_USAGE;
    }
    if (!watch && !c->nargs) {
        fprintf(stderr, "towerd import: no input file (or --watch DIR)\n");
        return TOWERD_EXIT_USAGE;
    }
    if (watch && ct_config_bool(c->cfg, "dry-run")) {
        fprintf(stderr, "towerd import: --dry-run does not go with --watch\n");
        return TOWERD_EXIT_USAGE;
    }
    return 0;
}

/* Connect to NATS (waiting for it in watch mode); 0 or -1. */
static int connect_bus(ictx *x, int watch)
{
    bus_opts bo;
    towerd_bus_opts(x->cfg, &bo, "towerd import");
    if (watch) {
        bo.wait_connect = 1;
        bo.stop = &towerd_stop;
    }
    return bus_connect(&x->b, &bo) == CT_OK && bus_ensure_streams(x->b) == CT_OK ? 0 : -1;
}

int towerd_import(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    if ((rc = check_mode(&c)) != 0) goto end;
    ictx x = {.cfg = c.cfg};
    x.timeout_ms = ct_config_duration_ns(c.cfg, "timeout") / 1000000;
    x.max_size = ct_config_size(c.cfg, "max-file-size");
    x.lines = ct_calloc(WINDOW, sizeof *x.lines);
    const char *watch = ct_config_str(c.cfg, "watch");
    x.watch = watch != NULL;
    rc = TOWERD_EXIT_USAGE;
    if (!(x.m = towerd_mapping_load("towerd import", ct_config_str(c.cfg, "mapping"), 0))) goto out;
    for (int i = 0; i < c.nargs; i++) {
        int bad = precheck(&x, c.args[i]);
        if (bad) {
            rc = bad == -1 ? TOWERD_EXIT_FAIL : TOWERD_EXIT_USAGE;
            goto out;
        }
    }
    if (x.watch) towerd_handle_signals(); /* once, a signal just ends it: importing again is harmless */
    rc = TOWERD_EXIT_FAIL;
    if (!ct_config_bool(c.cfg, "dry-run") && connect_bus(&x, x.watch) != 0) {
        if (x.watch && towerd_stop) rc = TOWERD_EXIT_OK;
        goto out;
    }
    rc = watch ? run_watch(&x, watch) : run_once(&x, c.args, c.nargs);
out:
    bus_close(x.b);
    batch_mapping_free(x.m);
    ct_buf_free(&x.errors);
    free(x.lines);
end:
    towerd_end(&c);
    return rc;
}
