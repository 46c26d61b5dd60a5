/* towerctl: the support and SRE client of the tower's HTTP API; dispatch, global options, errors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ct_version.h"
#include "towerctl.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"summary", ctl_cmd_summary, "per view: count and oldest age; applied sequence, stream last sequence, lag"},
    {"stuck", ctl_cmd_stuck, "the items of a view, oldest first, with filters (--older-than, --warehouse, ...)"},
    {"order", ctl_cmd_order, "one order: stage, customer, milestones, shipments, exceptions, timeline"},
    {"shipment", ctl_cmd_shipment, "one shipment: the same"},
    {"search", ctl_cmd_search, "orders, shipments and customers by id prefix"},
    {"publish", ctl_cmd_publish, "send NDJSON events to the ingest route, in bounded chunks"},
    {"dlq list", ctl_cmd_dlq_list, "the dead letters: sequence, code, message"},
    {"dlq redrive", ctl_cmd_dlq_redrive, "redrive a dead letter as stored, or with a corrected event"},
    {"export", ctl_cmd_export, "a whole view as CSV (every page), for spreadsheets"},
    {"watch", ctl_cmd_watch, "live deltas, snapshots and resyncs over the websocket stream"},
    {"mine", ctl_cmd_mine, "my queue: the open exceptions assigned to me, across views"},
    {"exception", ctl_cmd_exception, "one exception: item, state, assignee, notes, history"},
    {"ack", ctl_cmd_ack, "acknowledge exceptions (ID...): seen, someone owns the next step"},
    {"assign", ctl_cmd_assign, "assign exceptions to NAME, me, or --none"},
    {"snooze", ctl_cmd_snooze, "hide exceptions from the attention lists --for 1h or --until TIME"},
    {"note", ctl_cmd_note, "add a note to an exception"},
    {"resolve", ctl_cmd_resolve, "close exceptions by hand, with a --resolution"},
    {"reopen", ctl_cmd_reopen, "reopen resolved exceptions"},
    {"relay", ctl_cmd_relay_list, "the outbound relay's destinations: breaker, delivered, failed, dead, backlog"},
    {"relay dead", ctl_cmd_relay_dead, "a destination's delivery dead letters, with every attempt"},
    {"relay redrive", ctl_cmd_relay_redrive, "try a destination's delivery dead letters once more"},
    {"reference", ctl_cmd_reference, "reference data: warehouses (time zones), carriers, skus, unknown codes"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The options every command takes; they may also come before the command name. */
static const ct_opt_def global_defs[] = {
    {"url", 0, "TOWER_URL", "towerctl.url", CT_OPT_STRING, "http://127.0.0.1:8080", "URL",
     "the tower's HTTP API (http:// or https://)", 0, 0},
    {"token", 0, "TOWER_TOKEN", "towerctl.token", CT_OPT_STRING, NULL, "TOKEN",
     "API token, sent as \"Authorization: Bearer TOKEN\"; never printed", 1, 0},
    {"json", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "print the server's JSON (one line) for scripts", 0, 0},
};
#define N_GLOBAL (sizeof global_defs / sizeof global_defs[0])

/* Sections of a shared tower config file that belong to towerd's roles. */
static const char *const ignore_sections[] = {"nats", "stream", "store", "server", "projector", "sla",
                                              "sim", "publish", "up", "web", NULL};

static void usage(FILE *out)
{
    fprintf(out, "usage: towerctl [--url URL] [--token TOKEN] [--json] [--config FILE] COMMAND [ARGS]\n\n"
                 "The support and SRE client of the control tower's HTTP API.\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'towerctl COMMAND --help' describes each command and its options; --version, the build.\n"
                 "Environment: TOWER_URL (default http://127.0.0.1:8080), TOWER_TOKEN, TOWER_CONFIG (an INI\n"
                 "file whose [towerctl] section may set url and token).\n\n" CTL_EXIT_HELP "\n");
}

/* ---- errors as JSON (--json) ---------------------------------------------------------------------- */

int ctl_json_errors;

static FILE *err_real;    /* the process's stderr while stderr collects text (--json), else NULL */
static char *err_text;    /* what was written to the collecting stderr */
static size_t err_len;

/* One JSON object as a line on the real stderr (stolen). */
static void emit_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return;
    FILE *f = err_real ? err_real : stderr;
    fputs(s, f);
    fputc('\n', f);
    fflush(f);
    free(s);
}

int ctl_error_json(const char *code, const char *msg, const char *field, json_t *extra)
{
    if (!ctl_json_errors) {
        json_decref(extra);
        return 0;
    }
    json_t *e = json_object();
    json_object_set_new(e, "code", ctl_json_text(code ? code : "ERROR"));
    json_object_set_new(e, "message", ctl_json_text(msg ? msg : "(no message)"));
    if (field) json_object_set_new(e, "field", ctl_json_text(field));
    if (extra) json_object_update(e, extra);
    json_decref(extra);
    emit_json(json_pack("{s:o}", "error", e));
    return 1;
}

void ctl_note(const ctl_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    if (!s) return;
    if (ctl_json_errors) emit_json(json_pack("{s:o}", "note", ctl_json_text(s)));
    else fprintf(stderr, "%s: %s\n", c->cmd, s);
    free(s);
}

/* --json on the command line (anywhere: it is a global option); "--json=false" and the like are not. */
static int wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) return 1;
        if (!strncmp(argv[i], "--json=", 7))
            return strcmp(argv[i] + 7, "false") && strcmp(argv[i] + 7, "0") && strcmp(argv[i] + 7, "no") &&
                   strcmp(argv[i] + 7, "off");
    }
    return 0;
}

/* With --json: stderr collects the text messages (usage errors, local failures) until the end. */
static void errors_collect(void)
{
    FILE *m = open_memstream(&err_text, &err_len);
    if (!m) return;
    fflush(stderr);
    err_real = stderr;
    stderr = m;
}

/* The exit code's name, the code of an error collected as text. */
static const char *exit_code_name(int rc)
{
    static const char *const names[] = {"OK", "FAILED", "USAGE", "REJECTED", "NOT_FOUND", "DENIED", "PARTIAL"};
    return rc >= 0 && rc < 7 ? names[rc] : "FAILED";
}

/* A collected line without its "towerctl ...: " prefix. */
static const char *unprefixed(const char *line)
{
    if (strncmp(line, "towerctl", 8) != 0) return line;
    const char *colon = strstr(line, ": ");
    return colon ? colon + 2 : line;
}

/* The collected text as JSON: one error (its lines joined) when the command failed, else notes. */
static void errors_flush(int rc)
{
    if (!err_real) return;
    fclose(stderr);
    stderr = err_real;
    err_real = NULL;
    ct_buf msg = {0};
    for (char *line = strtok(err_text, "\n"); line; line = strtok(NULL, "\n")) {
        if (rc == CTL_EXIT_OK) emit_json(json_pack("{s:o}", "note", ctl_json_text(unprefixed(line))));
        else ct_buf_addf(&msg, "%s%s", msg.len ? "\n" : "", unprefixed(line));
    }
    if (rc != CTL_EXIT_OK && msg.len) ctl_error_json(exit_code_name(rc), msg.data, NULL, NULL);
    ct_buf_free(&msg);
    free(err_text);
    err_text = NULL;
}

int ctl_exit_for_status(long status)
{
    if (status >= 200 && status < 300) return CTL_EXIT_OK;
    if (status == 401 || status == 403) return CTL_EXIT_DENIED;
    if (status == 404) return CTL_EXIT_NOT_FOUND;
    if (status >= 400 && status < 500) return CTL_EXIT_REJECTED;
    return CTL_EXIT_FAIL;
}

/* Text from the server or the network on a terminal: control characters become '?'. */
static void put_clean(FILE *f, const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && n < max; p++, n++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

/* ctl_report with --json: the server's error object with the HTTP status, or what went wrong. */
static int report_json(const ctl_ctx *c, const ctl_resp *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    const char *code = json_string_value(json_object_get(e, "code"));
    if (r->status == 0) {
        char *m = ct_sprintf("cannot reach %s: %s", ctl_http_base(c->http), r->err);
        ctl_error_json("UNREACHABLE", m, NULL, NULL);
        free(m);
        return CTL_EXIT_FAIL;
    }
    json_t *extra = json_pack("{s:I}", "status", (json_int_t)r->status);
    if (code) {
        ctl_error_json(code, json_string_value(json_object_get(e, "message")),
                       json_string_value(json_object_get(e, "field")), extra);
    } else {
        char *m = ct_sprintf("HTTP %ld from %s: %.200s", r->status, ctl_http_base(c->http),
                             r->body.len ? r->body.data : "(no body)");
        ctl_error_json("HTTP_ERROR", m, NULL, extra);
        free(m);
    }
    return ctl_exit_for_status(r->status);
}

int ctl_report(const ctl_ctx *c, const ctl_resp *r)
{
    if (r->status >= 200 && r->status < 300) return CTL_EXIT_OK;
    if (ctl_json_errors) return report_json(c, r);
    if (r->status == 0) {
        fprintf(stderr, "towerctl: cannot reach %s: ", ctl_http_base(c->http));
        put_clean(stderr, r->err, 300);
        fputc('\n', stderr);
        return CTL_EXIT_FAIL;
    }
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    if (code) {
        fputs("towerctl: ", stderr);
        put_clean(stderr, code, 100);
        fputs(": ", stderr);
        put_clean(stderr, msg ? msg : "(no message)", 1000);
        if (field) {
            fputs(" (field ", stderr);
            put_clean(stderr, field, 100);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    } else {
        fprintf(stderr, "towerctl: HTTP %ld from %s", r->status, ctl_http_base(c->http));
        if (r->body.len) {
            fputs(": ", stderr);
            put_clean(stderr, r->body.data, 200);
        }
        fputc('\n', stderr);
    }
    return ctl_exit_for_status(r->status);
}

int ctl_get_json(ctl_ctx *c, const char *path, ctl_resp *r)
{
    if (ctl_http_request(c->http, "GET", path, NULL, 0, NULL, r) != 0 || r->status < 200 || r->status >= 300)
        return ctl_report(c, r);
    if (!r->json) {
        fprintf(stderr, "towerctl: %s%s answered %ld without JSON\n", ctl_http_base(c->http), path, r->status);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

void ctl_print_body(const ctl_resp *r)
{
    size_t n = r->body.len;
    while (n && (r->body.data[n - 1] == '\n' || r->body.data[n - 1] == '\r')) n--;
    fwrite(r->body.data, 1, n, stdout);
    fputc('\n', stdout);
}

void ctl_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

/* A token goes into a header line: it must be visible ASCII. */
static int token_ok(const char *t)
{
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) return 0;
    return 1;
}

int ctl_start(ctl_ctx *c, const ctl_spec *spec, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    c->cmd = spec->cmd;
    size_t ndefs = spec->ndefs + N_GLOBAL;
    ct_opt_def *defs = ct_malloc(ndefs * sizeof *defs);
    if (spec->ndefs) memcpy(defs, spec->defs, spec->ndefs * sizeof *defs);
    memcpy(defs + spec->ndefs, global_defs, sizeof global_defs);
    char *head = ct_sprintf("%s\n\n%s", spec->usage, CTL_EXIT_HELP);
    int help = 0, rc = CTL_EXIT_USAGE;
    c->defs = defs; /* borrowed by the configuration: freed with it in ctl_end */
    if (ct_config_parse(&c->cfg, spec->cmd, head, defs, ndefs, ignore_sections, argc, argv, &c->args, &c->nargs,
                        &help) != CT_OK)
        goto fail;
    if (help) {
        rc = CTL_EXIT_OK;
        goto fail;
    }
    if (c->nargs < spec->min_args || c->nargs > spec->max_args) {
        if (c->nargs > spec->max_args)
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", spec->cmd, c->args[spec->max_args]);
        else
            fprintf(stderr, "%s: missing argument (see --help)\n", spec->cmd);
        goto fail;
    }
    c->json = ct_config_bool(c->cfg, "json");
    const char *token = ct_config_str(c->cfg, "token");
    if (token && !token_ok(token)) {
        fprintf(stderr, "%s: the token (%s) holds spaces or control characters\n", spec->cmd,
                ct_config_source(c->cfg, "token"));
        goto fail;
    }
    const char *url = ct_config_str(c->cfg, "url");
    ct_status st = ctl_http_open(&c->http, url, token);
    if (st == CT_USAGE) {
        fprintf(stderr, "%s: --url must start with http:// or https:// (%s)\n", spec->cmd,
                ct_config_source(c->cfg, "url"));
        goto fail;
    }
    if (st != CT_OK) {
        fprintf(stderr, "%s: cannot start the HTTP client\n", spec->cmd);
        rc = CTL_EXIT_FAIL;
        goto fail;
    }
    free(head);
    return CTL_CONTINUE;
fail:
    free(head);
    ctl_end(c);
    return rc;
}

void ctl_end(ctl_ctx *c)
{
    ctl_http_destroy(c->http);
    ct_config_destroy(c->cfg);
    free(c->defs);
    c->http = NULL;
    c->cfg = NULL;
    c->defs = NULL;
}

/* Global options given before the command: 1 flag alone, 2 flag and value, 0 not a global option. */
static int global_before(const char *a)
{
    if (!strcmp(a, "--url") || !strcmp(a, "--token") || !strcmp(a, "--config")) return 2;
    if (!strncmp(a, "--url=", 6) || !strncmp(a, "--token=", 8) || !strncmp(a, "--config=", 9)) return 1;
    if (!strcmp(a, "--json") || !strncmp(a, "--json=", 7)) return 1;
    return 0;
}

static int dispatch(int argc, char **argv);

int main(int argc, char **argv)
{
    ctl_json_errors = wants_json(argc, argv);
    if (ctl_json_errors) errors_collect();
    int rc = dispatch(argc, argv);
    errors_flush(rc);
    return rc;
}

/* The command named on the command line, run; its exit code. */
static int dispatch(int argc, char **argv)
{
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return CTL_EXIT_OK;
        }
        if (!strcmp(argv[i], "--version")) {
            ct_version_print(stdout, "towerctl");
            return CTL_EXIT_OK;
        }
        int n = global_before(argv[i]);
        if (!n || i + n > argc) {
            fprintf(stderr, n ? "towerctl: %s needs a value\n" : "towerctl: unknown option %s before the command\n",
                    argv[i]);
            if (!ctl_json_errors) usage(stderr);
            return CTL_EXIT_USAGE;
        }
        i += n;
    }
    if (i >= argc) {
        if (ctl_json_errors) fprintf(stderr, "towerctl: no command (towerctl --help lists them)\n");
        else usage(stderr);
        return CTL_EXIT_USAGE;
    }
    int first = i; /* the command word */
    char name[32];
    snprintf(name, sizeof name, "%s", argv[i]);
    if (!strcmp(argv[i], "help")) {
        usage(stdout);
        return CTL_EXIT_OK;
    }
    if (!strcmp(argv[i], "dlq")) {
        if (i + 1 >= argc || !strcmp(argv[i + 1], "--help") || !strcmp(argv[i + 1], "-h")) {
            FILE *out = i + 1 >= argc ? stderr : stdout;
            fprintf(out, "usage: towerctl dlq list [OPTIONS] | towerctl dlq redrive SEQ [--body FILE]\n\n"
                         "  list      the dead letters, oldest first, paged\n"
                         "  redrive   send a dead letter back to the stream, as stored or corrected\n\n"
                         "'towerctl dlq list --help' and 'towerctl dlq redrive --help' say more.\n\n" CTL_EXIT_HELP
                         "\n");
            return i + 1 >= argc ? CTL_EXIT_USAGE : CTL_EXIT_OK;
        }
        snprintf(name, sizeof name, "dlq %s", argv[i + 1]);
        i++;
    }
    if (!strcmp(argv[i], "relay") && i + 1 < argc && (!strcmp(argv[i + 1], "dead") || !strcmp(argv[i + 1], "redrive"))) {
        snprintf(name, sizeof name, "relay %s", argv[i + 1]);
        i++;
    }
    int (*run)(int, char **) = NULL;
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (!strcmp(name, commands[k].name)) run = commands[k].run;
    if (!run) {
        fputs("towerctl: unknown command '", stderr);
        put_clean(stderr, name, 32);
        fputs("'\n", stderr);
        if (!ctl_json_errors) {
            fputc('\n', stderr);
            usage(stderr);
        }
        return CTL_EXIT_USAGE;
    }
    /* The command's argv: its name, the global options that came before it, then the rest. */
    char **av = ct_malloc((size_t)argc * sizeof *av + sizeof *av);
    int n = 0;
    av[n++] = name;
    for (int k = 1; k < first; k++) av[n++] = argv[k];
    for (int k = i + 1; k < argc; k++) av[n++] = argv[k];
    av[n] = NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = run(n, av);
    curl_global_cleanup();
    free(av);
    if (fflush(stdout) != 0 && rc == CTL_EXIT_OK) rc = CTL_EXIT_FAIL;
    return rc;
}
