/* towerctl ack, assign, snooze, note, resolve, reopen (work an exception), exception ID (one, whole) and
 * mine (my queue): the exception lifecycle API of docs/exceptions.md. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

#define MAX_NOTE 2000      /* bytes; the contract's bound */
#define BULK_MAX 500       /* ids per POST /api/v1/exceptions/actions */
#define MANY_ARGS 100000   /* "ID..." */
#define SNOOZE_MIN 60      /* seconds */
#define SNOOZE_MAX (30 * 86400)

/* ---- the actions ---------------------------------------------------------------------------------- */

typedef enum act_kind { ACT_ACK, ACT_ASSIGN, ACT_SNOOZE, ACT_NOTE, ACT_RESOLVE, ACT_REOPEN } act_kind;

static const char *const act_names[] = {"ack", "assign", "snooze", "note", "resolve", "reopen"};

static const char *const resolutions[] = {"FIXED_AT_SOURCE", "REDRIVEN", "NOT_AN_ISSUE", "DUPLICATE", "OTHER",
                                          NULL};

/* An exceptionId: "o~...", "s~..." or "d~..." (docs/exceptions.md, "Identity"). */
static int looks_like_id(const char *s)
{
    return s[0] && strchr("osd", s[0]) && s[1] == '~';
}

/* A note is 1 to 2,000 bytes; \p what names where it came from ("--note", "TEXT"). */
static int check_note(const ctl_ctx *c, const char *note, const char *what)
{
    size_t n = strlen(note);
    if (n >= 1 && n <= MAX_NOTE) return CTL_EXIT_OK;
    fprintf(stderr, "%s: %s must be 1 to 2,000 bytes of text (it is %zu)\n", c->cmd, what, n);
    return CTL_EXIT_USAGE;
}

/* "not_an_issue", "Not-An-Issue" -> "NOT_AN_ISSUE"; NULL when it is none of the resolutions. */
static const char *resolution_of(const char *s)
{
    char up[32];
    size_t n = strlen(s);
    if (n >= sizeof up) return NULL;
    for (size_t i = 0; i <= n; i++) {
        char ch = s[i];
        up[i] = ch == '-' ? '_' : (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    for (size_t i = 0; resolutions[i]; i++)
        if (!strcmp(up, resolutions[i])) return resolutions[i];
    return NULL;
}

/* snooze: exactly one of --for (60 s to 30 days) and --until. */
static int snooze_fields(const ctl_ctx *c, json_t *body)
{
    const char *dur = ct_config_str(c->cfg, "for");
    const char *until = ct_config_str(c->cfg, "until");
    if (dur && until) {
        fprintf(stderr, "%s: give --for or --until, not both\n", c->cmd);
        return CTL_EXIT_USAGE;
    }
    if (!dur && !until) {
        fprintf(stderr, "%s: say how long: --for DURATION (30m, 1h, 2d) or --until TIME (RFC 3339)\n", c->cmd);
        return CTL_EXIT_USAGE;
    }
    if (until) {
        json_object_set_new(body, "until", json_string(until));
        return CTL_EXIT_OK;
    }
    int64_t secs = ct_config_duration_ns(c->cfg, "for") / 1000000000LL;
    if (secs < SNOOZE_MIN || secs > SNOOZE_MAX) {
        fprintf(stderr, "%s: --for must be from 1m to 30d (it is %s)\n", c->cmd, dur);
        return CTL_EXIT_USAGE;
    }
    json_object_set_new(body, "forSeconds", json_integer((json_int_t)secs));
    return CTL_EXIT_OK;
}

/* assign: the last positional argument is the assignee (NAME or me), unless --none unassigns. */
static int assign_fields(const ctl_ctx *c, json_t *body, int *nids)
{
    if (ct_config_bool(c->cfg, "none")) {
        for (int i = 0; i < c->nargs; i++)
            if (!looks_like_id(c->args[i])) {
                fprintf(stderr, "%s: \"%s\" is not an exception id (o~..., s~... or d~...); --none unassigns and "
                                "takes no NAME\n", c->cmd, c->args[i]);
                return CTL_EXIT_USAGE;
            }
        json_object_set_new(body, "assignee", json_string(""));
        return CTL_EXIT_OK;
    }
    const char *who = c->args[c->nargs - 1];
    if (c->nargs < 2 || looks_like_id(who) || !*who) {
        fprintf(stderr, "%s: name the assignee after the ids (NAME, or me), or give --none to unassign\n", c->cmd);
        return CTL_EXIT_USAGE;
    }
    json_object_set_new(body, "assignee", json_string(who));
    *nids = c->nargs - 1;
    return CTL_EXIT_OK;
}

/* The action's body (its fields; the ids are added for the bulk route) and how many arguments are ids. */
static int action_body(const ctl_ctx *c, act_kind k, json_t *body, int *nids)
{
    *nids = c->nargs;
    int rc = CTL_EXIT_OK;
    if (k == ACT_ASSIGN) rc = assign_fields(c, body, nids);
    else if (k == ACT_SNOOZE) rc = snooze_fields(c, body);
    else if (k == ACT_RESOLVE) {
        const char *given = ct_config_str(c->cfg, "resolution");
        const char *res = given ? resolution_of(given) : NULL;
        if (!res) {
            fprintf(stderr, "%s: --resolution %s%s%s must be one of FIXED_AT_SOURCE, REDRIVEN, NOT_AN_ISSUE, "
                            "DUPLICATE, OTHER (any case)\n", c->cmd, given ? "\"" : "is required: it",
                    given ? given : "", given ? "\"" : "");
            return CTL_EXIT_USAGE;
        }
        json_object_set_new(body, "resolution", json_string(res));
    }
    if (rc != CTL_EXIT_OK) return rc;
    if (k == ACT_NOTE) {
        *nids = 1;
        if (!*c->args[0]) {
            fprintf(stderr, "%s: the exception id is empty\n", c->cmd);
            return CTL_EXIT_USAGE;
        }
        rc = check_note(c, c->args[1], "TEXT (the note)");
        if (rc == CTL_EXIT_OK) json_object_set_new(body, "note", json_string(c->args[1]));
        return rc;
    }
    const char *note = ct_config_str(c->cfg, "note");
    if (note) {
        rc = check_note(c, note, "--note");
        if (rc == CTL_EXIT_OK) json_object_set_new(body, "note", json_string(note));
    }
    for (int i = 0; rc == CTL_EXIT_OK && i < *nids; i++)
        if (!*c->args[i]) {
            fprintf(stderr, "%s: an exception id is empty\n", c->cmd);
            rc = CTL_EXIT_USAGE;
        }
    return rc;
}

/* ---- the answers: one result per id --------------------------------------------------------------- */

/* The table of results: done ones with their state, failed ones with the error's code. */
static void result_row(ctl_table *t, const char *id, const json_t *ex, const json_t *err)
{
    if (err || !ex) {
        const char *code = json_string_value(json_object_get(err, "code"));
        char *d = ct_sprintf("failed: %s", code ? code : "UNKNOWN");
        const char *row[] = {id, "-", NULL, d};
        ctl_table_row(t, row);
        free(d);
        return;
    }
    char *state = ctl_cell(json_object_get(ex, "state"));
    char *who = ctl_cell(json_object_get(ex, "assignee"));
    const char *until = json_string_value(json_object_get(ex, "snoozedUntil"));
    const char *res = json_string_value(json_object_get(ex, "resolution"));
    json_t *notes = json_object_get(ex, "notes");
    ct_buf d = {0};
    char at[32];
    if (state && !strcmp(state, "snoozed") && until)
        ct_buf_addf(&d, "until %s", ctl_fmt_time(until, at, sizeof at) ? at : until);
    if (res) ct_buf_addf(&d, "%sresolution %s", d.len ? "  " : "", res);
    if (json_is_array(notes) && json_array_size(notes))
        ct_buf_addf(&d, "%snotes %zu", d.len ? "  " : "", json_array_size(notes));
    else if (json_is_integer(notes) && json_integer_value(notes) > 0)
        ct_buf_addf(&d, "%snotes %" JSON_INTEGER_FORMAT, d.len ? "  " : "", json_integer_value(notes));
    const char *row[] = {id, state, who, d.data ? d.data : ""};
    ctl_table_row(t, row);
    free(state);
    free(who);
    ct_buf_free(&d);
}

/* "towerctl ack: o~...: CONFLICT: message (field F)" for each failed id of a bulk answer. */
static void report_failed(const ctl_ctx *c, const char *id, const json_t *err)
{
    const char *code = json_string_value(json_object_get(err, "code"));
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *field = json_string_value(json_object_get(err, "field"));
    if (ctl_error_json(code ? code : "FAILED", msg, field, json_pack("{s:o}", "id", ctl_json_text(id)))) return;
    fprintf(stderr, "%s: ", c->cmd);
    ctl_put_clean(stderr, id);
    fputs(": ", stderr);
    ctl_put_clean(stderr, code ? code : "FAILED");
    fputs(": ", stderr);
    ctl_put_clean(stderr, msg ? msg : "(no message)");
    if (field) {
        fputs(" (field ", stderr);
        ctl_put_clean(stderr, field);
        fputc(')', stderr);
    }
    fputc('\n', stderr);
}

typedef struct bulk {
    json_t *merged;   /* {"done","failed","results"} over every request */
    size_t done, failed;
} bulk;

/* One request of the bulk route for ids[from, to). */
static int bulk_chunk(ctl_ctx *c, act_kind k, const json_t *fields, int from, int to, bulk *b)
{
    json_t *req = json_deep_copy(fields);
    json_t *ids = json_array();
    for (int i = from; i < to; i++) json_array_append_new(ids, json_string(c->args[i]));
    json_object_set_new(req, "action", json_string(act_names[k]));
    json_object_set_new(req, "ids", ids);
    char *s = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    ctl_resp r;
    int rc = CTL_EXIT_OK;
    if (ctl_http_request(c->http, "POST", "/api/v1/exceptions/actions", s, strlen(s), "application/json", &r) != 0 ||
        r.status < 200 || r.status >= 300) {
        rc = ctl_report(c, &r);
    } else if (!json_is_array(json_object_get(r.json, "results"))) {
        fprintf(stderr, "%s: the server's answer has no results\n", c->cmd);
        rc = CTL_EXIT_FAIL;
    } else {
        json_array_extend(json_object_get(b->merged, "results"), json_object_get(r.json, "results"));
    }
    free(s);
    ctl_resp_free(&r);
    return rc;
}

static int run_bulk(ctl_ctx *c, act_kind k, const json_t *fields, int nids, ctl_table *t)
{
    bulk b = {json_pack("{s:i, s:i, s:[]}", "done", 0, "failed", 0, "results"), 0, 0};
    int rc = CTL_EXIT_OK;
    for (int from = 0; from < nids && rc == CTL_EXIT_OK; from += BULK_MAX)
        rc = bulk_chunk(c, k, fields, from, from + BULK_MAX < nids ? from + BULK_MAX : nids, &b);
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(b.merged, "results"), i, x) {
        const char *id = json_string_value(json_object_get(x, "exceptionId"));
        const char *st = json_string_value(json_object_get(x, "status"));
        json_t *err = st && !strcmp(st, "done") ? NULL : json_object_get(x, "error");
        if (!id) id = i < (size_t)nids ? c->args[i] : "?";
        if (st && !strcmp(st, "done")) b.done++;
        else {
            b.failed++;
            if (!err) {
                err = json_pack("{s:s}", "code", st ? st : "FAILED");
                json_object_set_new(x, "error", err);
            }
            report_failed(c, id, err);
        }
        result_row(t, id, json_object_get(x, "exception"), err);
    }
    json_object_set_new(b.merged, "done", json_integer((json_int_t)b.done));
    json_object_set_new(b.merged, "failed", json_integer((json_int_t)b.failed));
    if (c->json && rc == CTL_EXIT_OK) ctl_print_json(b.merged);
    else if (!c->json && t->nrows > 1) {
        ctl_table_print(t, stdout);
        printf("\n%zu done, %zu failed\n", b.done, b.failed);
    }
    json_decref(b.merged);
    if (rc == CTL_EXIT_OK && b.failed) rc = CTL_EXIT_PARTIAL;
    return rc;
}

static int run_single(ctl_ctx *c, act_kind k, const json_t *fields, ctl_table *t)
{
    char *e = ctl_http_escape(c->args[0]);
    char *path = ct_sprintf("/api/v1/exceptions/%s/%s", e, act_names[k]);
    char *s = json_dumps(fields, JSON_COMPACT);
    ctl_resp r;
    int rc = CTL_EXIT_OK;
    if (ctl_http_request(c->http, "POST", path, s, strlen(s), "application/json", &r) != 0 || r.status < 200 ||
        r.status >= 300) {
        rc = ctl_report(c, &r);
    } else if (c->json) {
        ctl_print_body(&r);
    } else {
        json_t *ex = json_object_get(r.json, "exception");
        const char *id = json_string_value(json_object_get(ex, "exceptionId"));
        result_row(t, id ? id : c->args[0], ex, NULL);
        ctl_table_print(t, stdout);
    }
    ctl_resp_free(&r);
    free(s);
    free(path);
    free(e);
    return rc;
}

static int act(int argc, char **argv, const ctl_spec *spec, act_kind k)
{
    ctl_ctx c;
    int rc = ctl_start(&c, spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    json_t *fields = json_object();
    int nids = 0;
    rc = action_body(&c, k, fields, &nids);
    if (rc == CTL_EXIT_OK) {
        static const char *const head[] = {"EXCEPTION", "STATE", "ASSIGNEE", "DETAIL"};
        ctl_table t;
        ctl_table_init(&t, 4, head);
        rc = nids == 1 ? run_single(&c, k, fields, &t) : run_bulk(&c, k, fields, nids, &t);
        ctl_table_free(&t);
    }
    json_decref(fields);
    ctl_end(&c);
    return rc;
}

#define NOTE_DEF {"note", 0, NULL, NULL, CT_OPT_STRING, NULL, "TEXT", "a note kept with the action (1-2,000 bytes)", 0, 0}

#define ACT_HELP_TAIL                                                                                             \
    "\n\nOne ID: POST /api/v1/exceptions/ID/ACTION; several: POST /api/v1/exceptions/actions (500 ids per\n"      \
    "request). Prints each exception's state after the action (EXCEPTION, STATE, ASSIGNEE); --json the\n"          \
    "server's answer ({\"eventId\",\"seq\",\"exception\"} for one ID, {\"done\",\"failed\",\"results\"} for\n"     \
    "several). Each failed ID is reported on stderr as \"ID: CODE: message\" and makes the exit code 6; the\n"    \
    "others are done all the same. Exception ids are in `towerctl stuck` and `towerctl mine` (EXCEPTION).\n"      \
    "Needs a token with the operator role when the server requires tokens."

int ctl_cmd_ack(int argc, char **argv)
{
    static const ct_opt_def defs[] = {NOTE_DEF};
    static const ctl_spec spec = {
        "towerctl ack",
        "usage: towerctl ack ID... [--note TEXT]\n\n"
        "Acknowledge exceptions: someone has seen them and owns the next step. Their state becomes\n"
        "acknowledged (unless snoozed)." ACT_HELP_TAIL,
        defs, 1, 1, MANY_ARGS};
    return act(argc, argv, &spec, ACT_ACK);
}

int ctl_cmd_assign(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        NOTE_DEF,
        {"none", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "unassign (then every argument is an ID)", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl assign",
        "usage: towerctl assign ID... NAME [--note TEXT]\n"
        "       towerctl assign ID... me\n"
        "       towerctl assign ID... --none\n\n"
        "Assign exceptions to NAME (the last argument), to yourself (me: the token's name), or to nobody\n"
        "(--none). The latest assignment wins; an assignment also acknowledges." ACT_HELP_TAIL,
        defs, 2, 1, MANY_ARGS};
    return act(argc, argv, &spec, ACT_ASSIGN);
}

int ctl_cmd_snooze(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        NOTE_DEF,
        {"for", 0, NULL, NULL, CT_OPT_DURATION, NULL, "DURATION", "snooze this long: 1m to 30d (30m, 1h, 2d, 1h30m)",
         0, 0},
        {"until", 0, NULL, NULL, CT_OPT_STRING, NULL, "TIME",
         "snooze until this time, RFC 3339 (2026-12-06T18:00:00Z); a past time un-snoozes", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl snooze",
        "usage: towerctl snooze ID... (--for DURATION | --until TIME) [--note TEXT]\n\n"
        "Hide exceptions from the \"needs attention\" lists until a time: their state is snoozed until\n"
        "then. The latest snooze wins." ACT_HELP_TAIL,
        defs, 3, 1, MANY_ARGS};
    return act(argc, argv, &spec, ACT_SNOOZE);
}

int ctl_cmd_note(int argc, char **argv)
{
    static const ctl_spec spec = {
        "towerctl note",
        "usage: towerctl note ID TEXT\n\n"
        "Add a note (1 to 2,000 bytes of text; quote it, and put -- before a TEXT that starts with -) to\n"
        "an exception's notes; it changes nothing else.\n"
        "POST /api/v1/exceptions/ID/note. Prints the exception's state and number of notes; --json the\n"
        "server's answer. Needs a token with the operator role when the server requires tokens.",
        NULL, 0, 2, 2};
    return act(argc, argv, &spec, ACT_NOTE);
}

int ctl_cmd_resolve(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        NOTE_DEF,
        {"resolution", 'r', NULL, NULL, CT_OPT_STRING, NULL, "R",
         "why it is closed: FIXED_AT_SOURCE, REDRIVEN, NOT_AN_ISSUE, DUPLICATE or OTHER (any case); required", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl resolve",
        "usage: towerctl resolve ID... --resolution R [--note TEXT]\n\n"
        "Close exceptions by hand although their condition may persist: they leave their view and are\n"
        "listed among the closed exceptions; `towerctl reopen` brings them back." ACT_HELP_TAIL,
        defs, 2, 1, MANY_ARGS};
    return act(argc, argv, &spec, ACT_RESOLVE);
}

int ctl_cmd_reopen(int argc, char **argv)
{
    static const ct_opt_def defs[] = {NOTE_DEF};
    static const ctl_spec spec = {
        "towerctl reopen",
        "usage: towerctl reopen ID... [--note TEXT]\n\n"
        "Reopen resolved exceptions: they are back in their view. Reopening one that is not resolved\n"
        "fails (CONFLICT)." ACT_HELP_TAIL,
        defs, 1, 1, MANY_ARGS};
    return act(argc, argv, &spec, ACT_REOPEN);
}

/* ---- exception ID: one exception, whole ----------------------------------------------------------- */

static void print_line(const char *label, const json_t *v)
{
    char *s = ctl_cell(v);
    if (!s) return;
    printf("%-16s", label);
    ctl_put_clean(stdout, s);
    fputc('\n', stdout);
    free(s);
}

/* "orderApproved erp-9" from {"eventId","type"}. */
static void print_event_ref(const char *label, const json_t *at, const json_t *ref)
{
    char *t = ctl_cell(at);
    if (!t && !ref) return;
    const char *type = json_string_value(json_object_get(ref, "type"));
    const char *eid = json_string_value(json_object_get(ref, "eventId"));
    char *s = ct_sprintf("%s%s%s%s%s%s", t ? t : "-", ref ? " (by " : "", type ? type : "", type && eid ? " " : "",
                         eid ? eid : "", ref ? ")" : "");
    printf("%-16s", label);
    ctl_put_clean(stdout, s);
    fputc('\n', stdout);
    free(s);
    free(t);
}

static void print_item(const json_t *it)
{
    static const char *const keys[] = {"orderId", "shipmentId", "warehouseId", "carrierId", "kind", "reason",
                                       "sku", "lastFailure", "interface", "rule", "seq", "code", "message",
                                       "eventId", NULL};
    ct_buf b = {0};
    for (size_t i = 0; keys[i]; i++) {
        char *v = ctl_cell(json_object_get(it, keys[i]));
        if (v) ct_buf_addf(&b, "%s%s=%s", b.len ? " " : "", keys[i], v);
        free(v);
    }
    if (b.data) {
        printf("%-16s", "item");
        ctl_put_clean(stdout, b.data);
        fputc('\n', stdout);
    }
    ct_buf_free(&b);
}

static void print_notes(const json_t *notes)
{
    size_t nn = json_array_size(notes);
    if (nn) printf("\nnotes (%zu):\n", nn);
    else printf("\nno notes\n");
    size_t i;
    json_t *n;
    json_array_foreach(notes, i, n) {
        char *at = ctl_cell(json_object_get(n, "at"));
        char *who = ctl_cell(json_object_get(n, "actor"));
        char *what = ctl_cell(json_object_get(n, "action"));
        char *text = ctl_cell(json_object_get(n, "note"));
        printf("  %s  ", at ? at : "-");
        ctl_put_clean(stdout, who ? who : "-");
        printf(" (%s): ", what ? what : "-");
        ctl_put_clean(stdout, text ? text : "");
        fputc('\n', stdout);
        free(at);
        free(who);
        free(what);
        free(text);
    }
}

static void print_history(const json_t *hist)
{
    size_t nh = json_array_size(hist);
    if (!nh) {
        printf("\nhistory: no actions\n");
        return;
    }
    printf("\nhistory (%zu %s):\n", nh, ctl_plural(nh, "action", "actions"));
    static const char *const head[] = {"TIME", "SEQ", "ACTION", "ACTOR", "DETAIL"};
    ctl_table t;
    ctl_table_init(&t, 5, head);
    size_t i;
    json_t *h;
    json_array_foreach(hist, i, h) {
        char *at = ctl_cell(json_object_get(h, "at"));
        char *seq = ctl_cell(json_object_get(h, "seq"));
        char *what = ctl_cell(json_object_get(h, "action"));
        char *who = ctl_cell(json_object_get(h, "actor"));
        ct_buf d = {0};
        static const char *const keys[] = {"assignee", "until", "resolution", "note", NULL};
        for (size_t k = 0; keys[k]; k++) {
            json_t *v = json_object_get(h, keys[k]);
            char *s = ctl_cell(v);
            if (s) ct_buf_addf(&d, "%s%s=%s", d.len ? " " : "", keys[k], !strcmp(keys[k], "assignee") && !*s ? "(none)" : s);
            free(s);
        }
        const char *row[] = {at, seq, what, who, d.data ? d.data : ""};
        ctl_table_row(&t, row);
        free(at);
        free(seq);
        free(what);
        free(who);
        ct_buf_free(&d);
    }
    /* indented like the order's tables */
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    ctl_table_print(&t, mem);
    fclose(mem);
    for (char *line = buf, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        printf("  %.*s\n", (int)(nl - line), line);
    }
    free(buf);
    ctl_table_free(&t);
}

static void print_exception(const json_t *x)
{
    print_line("exception", json_object_get(x, "exceptionId"));
    print_line("view", json_object_get(x, "view"));
    print_line("state", json_object_get(x, "state"));
    json_t *who = json_object_get(x, "assignee");
    printf("%-16s", "assignee");
    ctl_put_clean(stdout, json_string_length(who) ? json_string_value(who) : "(none)");
    fputc('\n', stdout);
    json_t *it = json_object_get(x, "item");
    print_item(it);
    print_event_ref("opened", json_object_get(x, "openedAt"), json_object_get(x, "openedBy"));
    json_t *age = json_object_get(it, "ageSeconds");
    if (json_is_integer(age) && !json_object_get(x, "closedAt")) {
        char buf[32];
        ctl_fmt_age(json_integer_value(age), buf, sizeof buf);
        printf("%-16s%s\n", "age", buf);
    }
    print_line("sla due", json_object_get(it, "slaDueAt"));
    char *ack = ctl_cell(json_object_get(x, "acknowledgedAt"));
    char *ackby = ctl_cell(json_object_get(x, "acknowledgedBy"));
    if (ack) {
        printf("%-16s%s by ", "acknowledged", ack);
        ctl_put_clean(stdout, ackby ? ackby : "-");
        fputc('\n', stdout);
    }
    free(ack);
    free(ackby);
    print_line("snoozed until", json_object_get(x, "snoozedUntil"));
    if (json_object_get(x, "closedAt") || json_object_get(x, "closedBy"))
        print_event_ref("closed", json_object_get(x, "closedAt"), json_object_get(x, "closedBy"));
    print_line("resolution", json_object_get(x, "resolution"));
    print_notes(json_object_get(x, "notes"));
    print_history(json_object_get(x, "history"));
}

int ctl_cmd_exception(int argc, char **argv)
{
    static const ctl_spec spec = {
        "towerctl exception",
        "usage: towerctl exception ID\n\n"
        "One exception, open or closed: its view and item, state (open, acknowledged, snoozed, resolved,\n"
        "closed), assignee, when it opened and what opened it, acknowledgement, snooze, closing and\n"
        "resolution, its notes, and the history of every action on it (time, stream sequence, action,\n"
        "actor, fields). GET /api/v1/exceptions/ID; --json prints that answer.",
        NULL, 0, 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    char *e = ctl_http_escape(c.args[0]);
    char *path = ct_sprintf("/api/v1/exceptions/%s", e);
    free(e);
    ctl_resp r;
    rc = ctl_get_json(&c, path, &r);
    free(path);
    if (rc == CTL_EXIT_OK) {
        if (c.json) ctl_print_body(&r);
        else print_exception(r.json);
    }
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}

/* ---- mine: my queue across views ------------------------------------------------------------------ */

static int check_choice(const ctl_ctx *c, const char *flag, const char *const *ok)
{
    const char *v = ct_config_str(c->cfg, flag);
    if (!v) return CTL_EXIT_OK;
    for (size_t i = 0; ok[i]; i++)
        if (!strcmp(v, ok[i])) return CTL_EXIT_OK;
    fprintf(stderr, "%s: --%s \"%s\" must be one of ", c->cmd, flag, v);
    for (size_t i = 0; ok[i]; i++) fprintf(stderr, "%s%s", i ? ", " : "", ok[i]);
    fputc('\n', stderr);
    return CTL_EXIT_USAGE;
}

const char *const ctl_states[] = {"open", "acknowledged", "snoozed", "attention", "all", NULL};
const char *const ctl_sorts[] = {"age", "newest", "priority", "warehouse", "carrier", "slack", NULL};

int ctl_check_choices(const ctl_ctx *c, int view_filters)
{
    int rc = check_choice(c, "state", ctl_states);
    if (!view_filters) return rc;
    if (rc == CTL_EXIT_OK) rc = check_choice(c, "sort", ctl_sorts);
    const char *who = ct_config_str(c->cfg, "assignee");
    if (rc == CTL_EXIT_OK && who && !*who) {
        fprintf(stderr, "%s: --assignee must be a NAME, me or none\n", c->cmd);
        rc = CTL_EXIT_USAGE;
    }
    return rc;
}

static char *mine_path(const ctl_ctx *c)
{
    ct_buf b = {0};
    ct_buf_adds(&b, "/api/v1/exceptions?assignee=me");
    static const char *const params[] = {"state", "view", "limit", NULL};
    for (size_t i = 0; params[i]; i++) {
        const char *v = ct_config_str(c->cfg, params[i]);
        if (!v) continue;
        char *e = ctl_http_escape(v);
        ct_buf_addf(&b, "&%s=%s", params[i], e);
        free(e);
    }
    return b.data;
}

static void mine_table(const json_t *items)
{
    static const char *const head[] = {"AGE", "VIEW", "STATE", "ORDER", "SHIPMENT", "WAREHOUSE", "SLA DUE",
                                       "EXCEPTION"};
    ctl_table t;
    ctl_table_init(&t, 8, head);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        char age[32] = "-";
        json_t *a = json_object_get(it, "ageSeconds");
        if (json_is_integer(a)) ctl_fmt_age(json_integer_value(a), age, sizeof age);
        static const char *const keys[] = {"view", "state", "orderId", "shipmentId", "warehouseId", "slaDueAt",
                                           "exceptionId"};
        char *v[7];
        for (size_t k = 0; k < 7; k++) v[k] = ctl_cell(json_object_get(it, keys[k]));
        const char *row[] = {age, v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
        ctl_table_row(&t, row);
        for (size_t k = 0; k < 7; k++) free(v[k]);
    }
    if (json_array_size(items)) ctl_table_print(&t, stdout);
    ctl_table_free(&t);
}

int ctl_cmd_mine(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"state", 0, NULL, NULL, CT_OPT_STRING, NULL, "S", "only these: open, acknowledged, snoozed, attention, all",
         0, 0},
        {"view", 0, NULL, NULL, CT_OPT_STRING, NULL, "VIEW", "only this view's", 0, 0},
        {"limit", 'n', NULL, NULL, CT_OPT_INT, NULL, "N", "at most N, 1-1000 (the server's default: 100)", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl mine",
        "usage: towerctl mine [--state S] [--view VIEW] [--limit N]\n\n"
        "My queue: the open exceptions assigned to me (the token's name) across every view, oldest\n"
        "first, with their age, view, state, entity, SLA due time and exception id (what ack, assign,\n"
        "snooze, note and resolve take). GET /api/v1/exceptions?assignee=me.",
        defs, sizeof defs / sizeof defs[0], 0, 0};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    rc = ctl_check_choices(&c, 0);
    ctl_resp r = {0};
    if (rc == CTL_EXIT_OK) {
        char *path = mine_path(&c);
        rc = ctl_get_json(&c, path, &r);
        free(path);
    }
    if (rc == CTL_EXIT_OK && c.json) {
        ctl_print_body(&r);
    } else if (rc == CTL_EXIT_OK) {
        json_t *items = json_object_get(r.json, "items");
        if (!items) items = json_object_get(r.json, "exceptions");
        mine_table(items);
        size_t n = json_array_size(items);
        printf("%s%zu exception%s assigned to you\n", n ? "\n" : "", n, n == 1 ? "" : "s");
    }
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}
