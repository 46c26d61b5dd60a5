/* towerctl relay: the outbound relay's destinations (docs/outbound.md) as the server shows them: the list with
 * each one's breaker and figures, a destination's delivery dead letters, and their redrive. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

/* A destination's name as a relay file allows it (1-64 of [A-Za-z0-9_-]); anything else is no destination. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-'))
            return 0;
    return 1;
}

static int bad_name(const ctl_ctx *c, const char *name)
{
    fprintf(stderr, "%s: no destination \"", c->cmd);
    ctl_put_clean(stderr, name);
    fprintf(stderr, "\" (a name is 1-64 of A-Z a-z 0-9 _ -; see towerctl relay)\n");
    return CTL_EXIT_NOT_FOUND;
}

static char *cell(const json_t *o, const char *k) { return ctl_cell(json_object_get(o, k)); }

static char *joined(const json_t *a)
{
    if (!json_array_size(a)) return ct_strdup("any");
    ct_buf b = {0};
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        if (i) ct_buf_adds(&b, ",");
        ct_buf_adds(&b, json_string_value(v) ? json_string_value(v) : "?");
    }
    char *s = ct_strndup(b.data, b.len);
    ct_buf_free(&b);
    return s;
}

int ctl_cmd_relay_list(int argc, char **argv)
{
    static const ctl_spec spec = {
        "towerctl relay",
        "usage: towerctl relay [OPTIONS]\n"
        "       towerctl relay dead NAME [--limit N]\n"
        "       towerctl relay redrive NAME\n\n"
        "The outbound relay's destinations as the server knows them (towerd serve --relay FILE, or towerd up\n"
        "--relay FILE): per destination its kind, where it delivers (scheme://host:port only), the breaker\n"
        "(closed, open, half-open; unknown when the relay has written no status), delivered, failed attempts,\n"
        "dead letters, backlog, the last error and since when it fails. GET /api/v1/integrations.\n"
        "`towerctl relay dead NAME` lists a destination's dead letters, `towerctl relay redrive NAME` tries\n"
        "them once more (operator).",
        NULL, 0, 0, 0};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    ctl_resp r;
    rc = ctl_get_json(&c, "/api/v1/integrations", &r);
    if (rc != CTL_EXIT_OK) goto out;
    if (c.json) {
        ctl_print_body(&r);
        goto out;
    }
    json_t *list = json_object_get(r.json, "destinations");
    if (!json_is_true(json_object_get(r.json, "configured"))) {
        printf("no relay configured on this server (towerd serve --relay FILE --relay-state DIR)\n");
        goto out;
    }
    static const char *const head[] = {"NAME", "KIND", "ENDPOINT", "BREAKER", "DELIVERED", "FAILED", "DEAD",
                                       "BACKLOG", "FAILING SINCE", "LAST ERROR"};
    ctl_table t;
    ctl_table_init(&t, 10, head);
    size_t i;
    json_t *d;
    json_array_foreach(list, i, d)
    {
        char *v[10] = {cell(d, "name"),     cell(d, "kind"),        cell(d, "endpoint"), cell(d, "breaker"),
                       cell(d, "delivered"), cell(d, "failed"),     cell(d, "deadLetters"), cell(d, "backlog"),
                       cell(d, "failingSince"), cell(d, "lastError")};
        const char *row[10];
        for (int k = 0; k < 10; k++) row[k] = v[k];
        ctl_table_row(&t, row);
        for (int k = 0; k < 10; k++) free(v[k]);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    json_array_foreach(list, i, d)
    {
        char *ev = joined(json_object_get(d, "events")), *wh = joined(json_object_get(d, "warehouses")),
             *ca = joined(json_object_get(d, "carriers"));
        printf("%s: events ", json_string_value(json_object_get(d, "name")));
        ctl_put_clean(stdout, ev);
        fputs("; warehouses ", stdout);
        ctl_put_clean(stdout, wh);
        fputs("; carriers ", stdout);
        ctl_put_clean(stdout, ca);
        fputc('\n', stdout);
        free(ev);
        free(wh);
        free(ca);
    }
out:
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}

int ctl_cmd_relay_dead(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"limit", 'n', NULL, NULL, CT_OPT_INT, "100", "N", "the newest N dead letters (1-1000)", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl relay dead",
        "usage: towerctl relay dead NAME [--limit N]\n\n"
        "The delivery dead letters of destination NAME, oldest first (the newest N): the event's stream\n"
        "sequence, id and type, when it was given up, and each attempt (time, HTTP status or 0, error).\n"
        "GET /api/v1/integrations/NAME/dead-letters.",
        defs, sizeof defs / sizeof defs[0], 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    ctl_resp r = {0};
    int64_t limit = ct_config_int(c.cfg, "limit");
    if (limit < 1 || limit > 1000) {
        fprintf(stderr, "%s: --limit must be from 1 to 1000\n", c.cmd);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    if (!name_ok(c.args[0])) {
        rc = bad_name(&c, c.args[0]);
        goto out;
    }
    char path[160];
    snprintf(path, sizeof path, "/api/v1/integrations/%s/dead-letters?limit=%" PRId64, c.args[0], limit);
    rc = ctl_get_json(&c, path, &r);
    if (rc != CTL_EXIT_OK) goto out;
    if (c.json) {
        ctl_print_body(&r);
        goto out;
    }
    static const char *const head[] = {"SEQ", "EVENT", "TYPE", "DEAD AT", "ATTEMPTS", "LAST STATUS", "LAST ERROR"};
    ctl_table t;
    ctl_table_init(&t, 7, head);
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(r.json, "items"), i, d)
    {
        json_t *att = json_object_get(d, "attempts");
        json_t *last = json_array_get(att, json_array_size(att) ? json_array_size(att) - 1 : 0);
        char n[24];
        snprintf(n, sizeof n, "%zu", json_array_size(att));
        char *v[6] = {cell(d, "seq"), cell(d, "eventId"), cell(d, "type"), cell(d, "deadAt"), cell(last, "status"),
                      cell(last, "error")};
        const char *row[7] = {v[0], v[1], v[2], v[3], n, v[4], v[5]};
        ctl_table_row(&t, row);
        for (int k = 0; k < 6; k++) free(v[k]);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    char *count = cell(r.json, "count");
    printf("%s dead letter(s) of %s\n", count ? count : "0", c.args[0]);
    free(count);
out:
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}

int ctl_cmd_relay_redrive(int argc, char **argv)
{
    static const ctl_spec spec = {
        "towerctl relay redrive",
        "usage: towerctl relay redrive NAME\n\n"
        "Tries every delivery dead letter of destination NAME once more (each event read back from the\n"
        "stream by its sequence) and prints the relay's report; those still failing stay dead letters.\n"
        "Exit 0 when all went through (or there were none), 1 when some are still dead, 4 for an unknown\n"
        "destination, 5 without the operator role. POST /api/v1/integrations/NAME/redrive.",
        NULL, 0, 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    ctl_resp r = {0};
    if (!name_ok(c.args[0])) {
        rc = bad_name(&c, c.args[0]);
        goto out;
    }
    char path[160];
    snprintf(path, sizeof path, "/api/v1/integrations/%s/redrive", c.args[0]);
    if (ctl_http_request(c.http, "POST", path, "{}", 2, "application/json", &r) != 0 || r.status < 200 ||
        r.status >= 300) {
        rc = ctl_report(&c, &r);
        goto out;
    }
    if (!r.json) {
        fprintf(stderr, "%s: the server answered %ld without JSON\n", c.cmd, r.status);
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    json_int_t left = json_integer_value(json_object_get(r.json, "stillDead"));
    if (c.json) {
        ctl_print_body(&r);
    } else {
        size_t i;
        json_t *line;
        json_array_foreach(json_object_get(r.json, "report"), i, line)
        {
            ctl_put_clean(stdout, json_string_value(line));
            fputc('\n', stdout);
        }
    }
    rc = left > 0 ? CTL_EXIT_FAIL : CTL_EXIT_OK;
out:
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}
