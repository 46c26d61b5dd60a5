/* towerctl publish: an NDJSON file sent to POST /api/v1/events in chunks within the server's limits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

#define MAX_BODY (4u * 1024 * 1024) /* the server's body limit */
#define MAX_EVENTS 10000             /* the server's events-per-request limit */

typedef struct pub {
    ctl_ctx *c;
    const char *file;     /* the name in messages */
    ct_buf body;          /* the chunk being filled: records joined by '\n' */
    size_t *lines;        /* the file line of each record of the chunk */
    size_t n, cap;        /* records in the chunk */
    size_t batch;         /* records per chunk at most */
    size_t records, accepted, dups, rejected, failed, requests;
    json_t *results;      /* --json: every result, with its file line */
    int stop;             /* an exit code that ends the run (the server refused a whole request) */
} pub;

static int blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

static void problem(pub *p, size_t line, const char *code, const char *msg, const char *field)
{
    if (ctl_error_json(code, msg, field, json_pack("{s:o, s:I}", "file", ctl_json_text(p->file), "line", (json_int_t)line))) return;
    fprintf(stderr, "%s:%zu: ", p->file, line);
    ctl_put_clean(stderr, code);
    fputs(": ", stderr);
    ctl_put_clean(stderr, msg);
    if (field) {
        fputs(" (field ", stderr);
        ctl_put_clean(stderr, field);
        fputc(')', stderr);
    }
    fputc('\n', stderr);
}

/* A record refused before sending: counted and reported like the server's rejections. */
static void local_reject(pub *p, size_t line, const char *code, const char *msg)
{
    p->records++;
    p->rejected++;
    problem(p, line, code, msg, NULL);
    if (p->results) {
        json_t *o = json_pack("{s:s, s:I, s:s, s:{s:s, s:s}}", "file", p->file, "line", (json_int_t)line, "status",
                              "rejected", "error", "code", code, "message", msg);
        json_array_append_new(p->results, o);
    }
}

static void take_results(pub *p, json_t *results)
{
    size_t i;
    json_t *o;
    json_array_foreach(results, i, o) {
        json_t *ix = json_object_get(o, "index");
        size_t k = json_is_integer(ix) ? (size_t)json_integer_value(ix) : i;
        size_t line = k < p->n ? p->lines[k] : 0;
        const char *st = json_string_value(json_object_get(o, "status"));
        json_t *err = json_object_get(o, "error");
        int ok = st && (!strcmp(st, "accepted") || !strcmp(st, "duplicate"));
        int rej = st && !strcmp(st, "rejected");
        if (ok && !strcmp(st, "accepted")) p->accepted++;
        else if (ok) p->dups++;
        else if (rej) p->rejected++;
        else p->failed++; /* "failed", or a status this client does not know: not known to be stored */
        if (!ok) {
            const char *code = json_string_value(json_object_get(err, "code"));
            const char *msg = json_string_value(json_object_get(err, "message"));
            problem(p, line, rej ? (code ? code : "REJECTED") : "FAILED", msg ? msg : "(no message)",
                    rej ? json_string_value(json_object_get(err, "field")) : NULL);
        }
        if (p->results) {
            json_t *x = json_deep_copy(o);
            json_object_set_new(x, "file", json_string(p->file));
            json_object_set_new(x, "line", json_integer((json_int_t)line));
            json_array_append_new(p->results, x);
        }
    }
    p->records += json_array_size(results);
}

/* Send the chunk; on a refusal of the whole request, p->stop gets the exit code. */
static void flush_chunk(pub *p)
{
    if (!p->n || p->stop) return;
    ctl_resp r;
    p->requests++;
    int got = ctl_http_request(p->c->http, "POST", "/api/v1/events", p->body.data, p->body.len,
                               "application/x-ndjson", &r);
    json_t *results = got == 0 && r.json ? json_object_get(r.json, "results") : NULL;
    if (json_is_array(results)) {
        take_results(p, results);
        if (json_array_size(results) != p->n) {
            fprintf(stderr, "%s: the server answered %zu results for %zu events (lines %zu-%zu)\n", p->c->cmd,
                    json_array_size(results), p->n, p->lines[0], p->lines[p->n - 1]);
            p->stop = CTL_EXIT_FAIL;
        }
    } else {
        fprintf(stderr, "%s: lines %zu-%zu of %s were not taken:\n", p->c->cmd, p->lines[0], p->lines[p->n - 1],
                p->file);
        p->stop = ctl_report(p->c, &r);
        if (p->stop == CTL_EXIT_OK) p->stop = CTL_EXIT_FAIL; /* a 2xx without results */
    }
    ctl_resp_free(&r);
    ct_buf_reset(&p->body);
    p->n = 0;
}

static void add_record(pub *p, const char *rec, size_t len, size_t line)
{
    if (p->n == p->batch || (p->n && p->body.len + 1 + len > MAX_BODY)) flush_chunk(p);
    if (p->stop) return;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->lines = ct_realloc(p->lines, p->cap * sizeof *p->lines);
    }
    if (p->n) ct_buf_addc(&p->body, '\n');
    ct_buf_add(&p->body, rec, len);
    p->lines[p->n++] = line;
}

int ctl_cmd_publish(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"batch", 0, NULL, NULL, CT_OPT_INT, "10000", "N", "events per request at most (1-10000)", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl publish",
        "usage: towerctl publish FILE.ndjson | -\n\n"
        "Sends events (NDJSON: one event object per line; - reads standard input) to POST /api/v1/events,\n"
        "in requests within the server's limits (4 MiB, 10,000 events). Every event the server rejects is\n"
        "printed on stderr as FILE:LINE: CODE: message (field F); events it could not store as\n"
        "FILE:LINE: FAILED: message (sending the file again is safe: duplicates are recognised). Then a\n"
        "summary line. --json prints one JSON object with the totals and every result, with its line.\n"
        "Exit 3 when some events were rejected (the good ones are stored all the same), 1 when some\n"
        "could not be stored.",
        defs, sizeof defs / sizeof defs[0], 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    pub p = {.c = &c, .file = c.args[0], .batch = (size_t)ct_config_int(c.cfg, "batch")};
    FILE *in = NULL;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    if (p.batch < 1 || p.batch > MAX_EVENTS) {
        fprintf(stderr, "%s: --batch must be from 1 to %d\n", c.cmd, MAX_EVENTS);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    in = strcmp(p.file, "-") ? fopen(p.file, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "%s: cannot open %s: %s\n", c.cmd, p.file, strerror(errno));
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    if (c.json) p.results = json_array();
    ssize_t n;
    int first = 1;
    while (!p.stop && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n') len--;
        size_t i = 0;
        while (i < len && blank(line[i])) i++;
        if (i == len) continue; /* blank lines are skipped, as the server does */
        if (line[i] == '[') {
            if (first) {
                fprintf(stderr, "%s: %s is a JSON array; publish takes NDJSON, one event per line (jq -c '.[]' %s "
                                "| towerctl publish -)\n", c.cmd, p.file, p.file);
                rc = CTL_EXIT_USAGE;
                goto out;
            }
            /* Sent first in a request, it would make the server read the whole body as one array. */
            local_reject(&p, lineno, "MALFORMED", "a JSON array, not an event object");
            continue;
        }
        first = 0;
        if (len > MAX_BODY) {
            local_reject(&p, lineno, "TOO_LARGE", "the line is larger than a whole request may be (4 MiB)");
            continue;
        }
        add_record(&p, line, len, lineno);
    }
    if (ferror(in)) {
        fprintf(stderr, "%s: reading %s failed: %s\n", c.cmd, p.file, strerror(errno));
        p.stop = p.stop ? p.stop : CTL_EXIT_FAIL;
    }
    flush_chunk(&p);
    if (c.json) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "file", p.file, "records",
                              (json_int_t)p.records, "accepted", (json_int_t)p.accepted, "duplicates",
                              (json_int_t)p.dups, "rejected", (json_int_t)p.rejected, "failed", (json_int_t)p.failed,
                              "requests", (json_int_t)p.requests, "results", p.results);
        p.results = NULL;
        ctl_print_json(o);
        json_decref(o);
    } else {
        printf("%s: %zu %s sent in %zu request%s: %zu accepted, %zu duplicates, %zu rejected, %zu failed%s\n",
               p.file, p.records, ctl_plural(p.records, "event", "events"), p.requests, p.requests == 1 ? "" : "s",
               p.accepted, p.dups, p.rejected, p.failed,
               p.stop ? " (stopped early)" : "");
    }
    rc = p.stop ? p.stop : p.failed ? CTL_EXIT_FAIL : p.rejected ? CTL_EXIT_REJECTED : CTL_EXIT_OK;
out:
    if (in && in != stdin) fclose(in);
    free(line);
    free(p.lines);
    ct_buf_free(&p.body);
    json_decref(p.results);
    ctl_end(&c);
    return rc;
}
