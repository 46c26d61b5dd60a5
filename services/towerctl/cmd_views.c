/* towerctl summary, stuck and export: the views, as a summary, a readable table or CSV. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

/* ---- summary -------------------------------------------------------------------------------------- */

int ctl_cmd_summary(int argc, char **argv)
{
    static const ctl_spec spec = {
        "towerctl summary",
        "usage: towerctl summary [OPTIONS]\n\n"
        "Per view: the number of items and the oldest one's since and age; then the applied stream\n"
        "sequence, the stream's last sequence and the lag (when the server is connected to NATS), and\n"
        "the event, duplicate and dead-letter totals. GET /api/v1/summary.",
        NULL, 0, 0, 0};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    ctl_resp r;
    rc = ctl_get_json(&c, "/api/v1/summary", &r);
    if (rc != CTL_EXIT_OK) goto out;
    if (c.json) {
        ctl_print_body(&r);
        goto out;
    }
    static const char *const head[] = {"VIEW", "COUNT", "OLDEST SINCE", "OLDEST AGE"};
    ctl_table t;
    ctl_table_init(&t, 4, head);
    const char *name;
    json_t *v;
    json_object_foreach(json_object_get(r.json, "views"), name, v) {
        char *count = ctl_cell(json_object_get(v, "count"));
        char *since = ctl_cell(json_object_get(v, "oldestSince"));
        json_t *age = json_object_get(v, "oldestAgeSeconds");
        char agebuf[32] = "-";
        if (json_is_integer(age)) ctl_fmt_age(json_integer_value(age), agebuf, sizeof agebuf);
        const char *row[] = {name, count, since, agebuf};
        ctl_table_row(&t, row);
        free(count);
        free(since);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    char *applied = ctl_cell(json_object_get(r.json, "appliedSeq"));
    char *last = ctl_cell(json_object_get(r.json, "streamLastSeq"));
    char *lag = ctl_cell(json_object_get(r.json, "lag"));
    char *events = ctl_cell(json_object_get(r.json, "events"));
    char *dups = ctl_cell(json_object_get(r.json, "duplicates"));
    char *dead = ctl_cell(json_object_get(r.json, "deadLetters"));
    printf("\napplied sequence %s, stream last sequence %s, lag %s%s\n", applied ? applied : "-",
           last ? last : "-", lag ? lag : "-", last ? "" : " (the server has no NATS connection)");
    printf("events %s, duplicates %s, dead letters %s\n", events ? events : "-", dups ? dups : "-",
           dead ? dead : "-");
    free(applied);
    free(last);
    free(lag);
    free(events);
    free(dups);
    free(dead);
out:
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}

/* ---- paging through a view ------------------------------------------------------------------------ */

/* The path of one page of a view: with the command's filters (stuck, export) or without (dlq list, which
 * asks the dead-letter route for the raw bytes too). */
static char *page_path(ctl_ctx *c, const char *view, const char *cursor, int filters)
{
    ct_buf b = {0};
    if (!filters) {
        ct_buf_adds(&b, "/api/v1/dead-letters");
    } else {
        char *ev = ctl_http_escape(view);
        ct_buf_addf(&b, "/api/v1/views/%s", ev);
        free(ev);
    }
    char sep = '?';
    static const char *const params[][2] = {{"limit", "limit"},     {"older-than", "olderThan"},
                                            {"warehouse", "warehouse"}, {"carrier", "carrier"},
                                            {"state", "state"},     {"assignee", "assignee"},
                                            {"sort", "sort"}};
    for (size_t i = 0; i < (filters ? sizeof params / sizeof params[0] : 1u); i++) {
        const char *v = ct_config_str(c->cfg, params[i][0]);
        if (!v) continue;
        char *e = ctl_http_escape(v);
        ct_buf_addf(&b, "%c%s=%s", sep, params[i][1], e);
        sep = '&';
        free(e);
    }
    const char *code = filters ? NULL : ct_config_str(c->cfg, "code");
    if (code) {
        char *e = ctl_http_escape(code);
        ct_buf_addf(&b, "%ccode=%s", sep, e);
        sep = '&';
        free(e);
    }
    if (cursor) {
        char *e = ctl_http_escape(cursor);
        ct_buf_addf(&b, "%ccursor=%s", sep, e);
        free(e);
    }
    return b.data;
}

/* A view's "next page" loop. The visitor gets each page's body (borrowed for the call). */
typedef int (*page_fn)(void *ctx, const ctl_resp *page);

static int walk(ctl_ctx *c, const char *view, const char *first_cursor, int all, int filters, page_fn fn,
                void *ctx)
{
    char *cursor = first_cursor ? ct_strdup(first_cursor) : NULL;
    int rc = CTL_EXIT_OK;
    json_int_t first_seq = -1;
    for (;;) {
        char *path = page_path(c, view, cursor, filters);
        ctl_resp r;
        rc = ctl_get_json(c, path, &r);
        free(path);
        if (rc != CTL_EXIT_OK) {
            ctl_resp_free(&r);
            break;
        }
        json_t *seq = json_object_get(r.json, "asOfSeq");
        if (first_seq < 0) first_seq = json_integer_value(seq);
        else if (json_integer_value(seq) != first_seq) {
            ctl_note(c, "note: the view changed while paging (sequence %" JSON_INTEGER_FORMAT " -> %" JSON_INTEGER_FORMAT
                        "): an item that moved may be missing or repeated", first_seq, json_integer_value(seq));
            first_seq = json_integer_value(seq);
        }
        rc = fn(ctx, &r);
        const char *next = json_string_value(json_object_get(r.json, "nextCursor"));
        int more = all && rc == CTL_EXIT_OK && next && *next && json_array_size(json_object_get(r.json, "items"));
        if (more && cursor && !strcmp(next, cursor)) {
            fprintf(stderr, "%s: the server gave the same cursor twice; stopping\n", c->cmd);
            rc = CTL_EXIT_FAIL;
            more = 0;
        }
        free(cursor);
        cursor = more ? ct_strdup(next) : NULL;
        ctl_resp_free(&r);
        if (!more) break;
    }
    free(cursor);
    return rc;
}

/* ---- stuck ----------------------------------------------------------------------------------------- */

typedef struct stuck_ctx {
    int json, all;
    json_t *merged;     /* --json --all: every page's items in one answer */
    ctl_table t;
    int dead;           /* the dead_letters view: other columns */
    size_t shown;
    json_int_t count, seq;
    char *next;         /* the last page's nextCursor */
} stuck_ctx;

static char *detail(const json_t *it)
{
    static const char *const keys[] = {"kind", "reason", "sku", "lastFailure", "interface", "rule", "check", NULL};
    ct_buf b = {0};
    for (size_t i = 0; keys[i]; i++) {
        char *v = ctl_cell(json_object_get(it, keys[i]));
        if (!v) continue;
        ct_buf_addf(&b, "%s%s=%s", b.len ? " " : "", keys[i], v);
        free(v);
    }
    return b.data;
}

static int stuck_page(void *vctx, const ctl_resp *page)
{
    stuck_ctx *s = vctx;
    json_t *body = page->json;
    json_t *items = json_object_get(body, "items");
    s->count = json_integer_value(json_object_get(body, "count"));
    s->seq = json_integer_value(json_object_get(body, "asOfSeq"));
    free(s->next);
    s->next = ctl_cell(json_object_get(body, "nextCursor"));
    if (s->json && !s->all) {
        ctl_print_body(page); /* one page: the server's answer as it is */
        return CTL_EXIT_OK;
    }
    if (s->json) {
        if (!s->merged) s->merged = json_deep_copy(body);
        else json_array_extend(json_object_get(s->merged, "items"), items);
        return CTL_EXIT_OK;
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        char age[32] = "-";
        json_t *a = json_object_get(it, "ageSeconds");
        if (json_is_integer(a)) ctl_fmt_age(json_integer_value(a), age, sizeof age);
        if (s->dead) {
            char *seq = ctl_cell(json_object_get(it, "seq"));
            char *rec = ctl_cell(json_object_get(it, "receivedAt"));
            char *code = ctl_cell(json_object_get(it, "code"));
            char *eid = ctl_cell(json_object_get(it, "eventId"));
            char *msg = ctl_cell(json_object_get(it, "message"));
            char *st = ctl_cell(json_object_get(it, "state"));
            char *who = ctl_cell(json_object_get(it, "assignee"));
            char *ex = ctl_cell(json_object_get(it, "exceptionId"));
            const char *row[] = {seq, age, rec, code, eid, st, who, ex, msg};
            ctl_table_row(&s->t, row);
            free(seq);
            free(rec);
            free(code);
            free(eid);
            free(msg);
            free(st);
            free(who);
            free(ex);
        } else {
            char *since = ctl_cell(json_object_get(it, "since"));
            char *o = ctl_cell(json_object_get(it, "orderId"));
            char *sh = ctl_cell(json_object_get(it, "shipmentId"));
            char *wh = ctl_cell(json_object_get(it, "warehouseId"));
            char *ca = ctl_cell(json_object_get(it, "carrierId"));
            char *d = detail(it);
            char *st = ctl_cell(json_object_get(it, "state"));
            char *who = ctl_cell(json_object_get(it, "assignee"));
            char *ex = ctl_cell(json_object_get(it, "exceptionId"));
            const char *row[] = {age, since, o, sh, wh, ca, st, who, ex, d ? d : ""};
            ctl_table_row(&s->t, row);
            free(since);
            free(o);
            free(sh);
            free(wh);
            free(ca);
            free(d);
            free(st);
            free(who);
            free(ex);
        }
        s->shown++;
    }
    return CTL_EXIT_OK;
}

/* The filters both stuck and export take. */
#define VIEW_FILTER_DEFS                                                                                          \
    {"older-than", 0, NULL, NULL, CT_OPT_DURATION, NULL, "DURATION",                                             \
     "only items whose since is older than this (90m, 2h, 1d)", 0, 0},                                            \
    {"warehouse", 0, NULL, NULL, CT_OPT_STRING, NULL, "W", "only items of this warehouse", 0, 0},                  \
    {"carrier", 0, NULL, NULL, CT_OPT_STRING, NULL, "C", "only items of this carrier", 0, 0},                      \
    {"cursor", 0, NULL, NULL, CT_OPT_STRING, NULL, "CURSOR", "start after this cursor (a nextCursor)", 0, 0},      \
    {"state", 0, NULL, NULL, CT_OPT_STRING, NULL, "S",                                                           \
     "only exceptions in this state: open, acknowledged, snoozed, attention (open or acknowledged), all", 0, 0},  \
    {"assignee", 0, NULL, NULL, CT_OPT_STRING, NULL, "NAME",                                                     \
     "only exceptions assigned to NAME, to me (the token's name), or to none", 0, 0},                            \
    {"sort", 0, NULL, NULL, CT_OPT_STRING, NULL, "ORDER",                                                        \
     "age (oldest first, the default), newest, priority (breached SLA first, then the share of the SLA used), " \
     "warehouse, carrier, or slack (at_risk: the latest against its promise first)", 0, 0}

/* Whether stuck was given a filter, which makes the answer's count the filtered count (--state all is
 * the default: every exception not resolved). */
static int has_filters(const ctl_ctx *c)
{
    static const char *const flags[] = {"older-than", "warehouse", "carrier", "assignee", NULL};
    for (size_t i = 0; flags[i]; i++)
        if (ct_config_str(c->cfg, flags[i])) return 1;
    const char *state = ct_config_str(c->cfg, "state");
    return state && strcmp(state, "all") != 0;
}

/* The dead-letter listing shares the table code: `dlq list` is `stuck dead_letters` with raw bytes. */
static int list_view(int argc, char **argv, const ctl_spec *spec, const char *fixed_view)
{
    ctl_ctx c;
    int rc = ctl_start(&c, spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    const char *view = fixed_view ? fixed_view : c.args[0];
    stuck_ctx s = {.json = c.json, .dead = !strcmp(view, "dead_letters")};
    static const char *const head[] = {"AGE",   "SINCE",    "ORDER",     "SHIPMENT", "WAREHOUSE",
                                       "CARRIER", "STATE", "ASSIGNEE", "EXCEPTION", "DETAIL"};
    static const char *const dhead[] = {"SEQ",   "AGE",      "RECEIVED",  "CODE",   "EVENT",
                                        "STATE", "ASSIGNEE", "EXCEPTION", "MESSAGE"};
    if (!fixed_view && (rc = ctl_check_choices(&c, 1)) != CTL_EXIT_OK) {
        ctl_end(&c);
        return rc;
    }
    if (s.dead) ctl_table_init(&s.t, 9, dhead);
    else ctl_table_init(&s.t, 10, head);
    int all = s.all = ct_config_bool(c.cfg, "all");
    rc = walk(&c, view, ct_config_str(c.cfg, "cursor"), all, fixed_view == NULL, stuck_page, &s);
    if (s.json) {
        /* One page was printed as it came; --all prints the pages merged. */
        if (rc == CTL_EXIT_OK && s.merged) {
            json_object_set_new(s.merged, "nextCursor", json_null());
            ctl_print_json(s.merged);
        }
    } else if (rc == CTL_EXIT_OK) {
        if (s.shown) ctl_table_print(&s.t, stdout);
        /* count is the filtered count when filters were given (dlq list: --code). */
        int filtered = fixed_view ? ct_config_str(c.cfg, "code") != NULL : has_filters(&c);
        printf("%s%zu item%s shown; %s %" JSON_INTEGER_FORMAT " (as of sequence %" JSON_INTEGER_FORMAT ")\n",
               s.shown ? "\n" : "", s.shown, s.shown == 1 ? "" : "s",
               filtered ? "the filters match" : "the view holds", s.count, s.seq);
        if (s.next && !all) printf("more: add --all, or --cursor %s\n", s.next);
    }
    ctl_table_free(&s.t);
    json_decref(s.merged);
    free(s.next);
    ctl_end(&c);
    return rc;
}

int ctl_cmd_stuck(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        VIEW_FILTER_DEFS,
        {"limit", 'n', NULL, NULL, CT_OPT_INT, NULL, "N", "items per page, 1-1000 (the server's default: 100)", 0, 0},
        {"all", 'a', NULL, NULL, CT_OPT_BOOL, NULL, NULL, "follow nextCursor to the last page", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl stuck",
        "usage: towerctl stuck VIEW [--older-than 2h] [--warehouse W] [--carrier C] [--state S]\n"
        "                           [--assignee NAME|me|none] [--sort ORDER] [--limit N] [--all]\n\n"
        "The items of a view, oldest first, with their age: what is stuck where. VIEW is one of\n"
        "awaiting_release, blocked, pending_route, missing_pod, posting_failed, orphans, anomalies,\n"
        "dead_letters, sla_breaches, at_risk, mismatches. Each item is an exception: its STATE, ASSIGNEE\n"
        "and EXCEPTION id "
        "(what ack, assign, snooze, note and resolve take) are shown. One page (GET /api/v1/views/VIEW)\n"
        "unless --all; the line under the table gives the cursor of the next page. With --json --all, one\n"
        "answer holds every page's items. Resolved exceptions are not in the views.",
        defs, sizeof defs / sizeof defs[0], 1, 1};
    return list_view(argc, argv, &spec, NULL);
}

int ctl_cmd_dlq_list(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"limit", 'n', NULL, NULL, CT_OPT_INT, NULL, "N", "dead letters per page, 1-1000 (the server's default: 100)",
         0, 0},
        {"cursor", 0, NULL, NULL, CT_OPT_STRING, NULL, "CURSOR", "start after this cursor (a nextCursor)", 0, 0},
        {"all", 'a', NULL, NULL, CT_OPT_BOOL, NULL, NULL, "follow nextCursor to the last page", 0, 0},
        {"code", 0, NULL, NULL, CT_OPT_STRING, NULL, "CODE", "only dead letters of this code, e.g. INVALID_VALUE", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl dlq list",
        "usage: towerctl dlq list [--limit N] [--all] [--cursor CURSOR] [--code CODE]\n\n"
        "The dead letters, oldest first: stream sequence (what `dlq redrive` takes), age, when the\n"
        "tower received it, code, event id and the reason. GET /api/v1/dead-letters; --json prints the\n"
        "server's answer, with each dead letter's raw bytes.",
        defs, sizeof defs / sizeof defs[0], 0, 0};
    return list_view(argc, argv, &spec, "dead_letters");
}

/* ---- export ---------------------------------------------------------------------------------------- */

typedef struct export_ctx {
    const char *const *cols;
    int json;
    int header_done;
    size_t rows;
} export_ctx;

static int export_page(void *vctx, const ctl_resp *page)
{
    export_ctx *x = vctx;
    json_t *body = page->json;
    size_t i;
    json_t *it;
    /* The header goes out with the first page, so that an error (an unknown view) prints no CSV at all. */
    if (!x->json && !x->header_done) {
        for (size_t k = 0; x->cols[k]; k++) {
            if (k) fputc(',', stdout);
            ctl_csv_field(stdout, x->cols[k]);
        }
        fputs("\r\n", stdout);
        x->header_done = 1;
    }
    json_array_foreach(json_object_get(body, "items"), i, it) {
        if (x->json) {
            ctl_print_json(it);
        } else {
            for (size_t k = 0; x->cols[k]; k++) {
                if (k) fputc(',', stdout);
                char *v = ctl_cell_raw(json_object_get(it, x->cols[k]));
                ctl_csv_field(stdout, v);
                free(v);
            }
            fputs("\r\n", stdout);
        }
        x->rows++;
    }
    return ferror(stdout) ? CTL_EXIT_FAIL : CTL_EXIT_OK;
}

int ctl_cmd_export(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        VIEW_FILTER_DEFS,
        {"csv", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "write CSV (the default format)", 0, 0},
        {"limit", 'n', NULL, NULL, CT_OPT_INT, "1000", "N", "items per request, 1-1000", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl export",
        "usage: towerctl export VIEW --csv [--older-than 2h] [--warehouse W] [--carrier C] [--state S]\n"
        "                       [--assignee NAME|me|none] [--sort ORDER] > FILE.csv\n\n"
        "Every item of a view (following the cursors to the last page) as CSV on standard output: a\n"
        "header row, then one row per item, oldest first; RFC 4180 (CRLF line ends, fields with commas,\n"
        "quotes or line breaks quoted, quotes doubled), UTF-8. The columns are the item fields of the\n"
        "view, then the exception's (exceptionId, state, assignee, acknowledgedAt, acknowledgedBy,\n"
        "snoozedUntil, notes, slaDueAt). With --json instead: one item per line (NDJSON). A note on\n"
        "stderr tells when the view changed while paging; on an error the output stops where it failed\n"
        "and the exit code says why.",
        defs, sizeof defs / sizeof defs[0], 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    const char *view = c.args[0];
    if (c.json && ct_config_bool(c.cfg, "csv")) {
        fprintf(stderr, "%s: --csv and --json exclude each other\n", c.cmd);
        ctl_end(&c);
        return CTL_EXIT_USAGE;
    }
    if ((rc = ctl_check_choices(&c, 1)) != CTL_EXIT_OK) {
        ctl_end(&c);
        return rc;
    }
    export_ctx x = {ctl_view_columns(view), c.json, 0, 0};
    rc = walk(&c, view, ct_config_str(c.cfg, "cursor"), 1, 1, export_page, &x);
    if (rc == CTL_EXIT_OK) ctl_note(&c, "%zu %s of %s", x.rows, ctl_plural(x.rows, "item", "items"), view);
    ctl_end(&c);
    return rc;
}
