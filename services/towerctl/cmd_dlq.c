/* towerctl dlq redrive: send a dead letter back to the stream, as stored or with a corrected event. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

#define MAX_EVENT_BODY (1024u * 1024) /* one event; the server bounds it more tightly */

/* Read a whole file (or stdin for "-") into b. 0, or -1 with errno set. */
static int slurp(const char *path, ct_buf *b)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return -1;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        ct_buf_add(b, buf, n);
        if (b->len > MAX_EVENT_BODY) {
            errno = EFBIG;
            break;
        }
    }
    int bad = ferror(f) || b->len > MAX_EVENT_BODY;
    int saved = errno;
    if (f != stdin) fclose(f);
    errno = saved;
    return bad ? -1 : 0;
}

int ctl_cmd_dlq_redrive(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"body", 'b', NULL, NULL, CT_OPT_STRING, NULL, "FILE",
         "the corrected event (one JSON object; - reads standard input) instead of the stored bytes", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl dlq redrive",
        "usage: towerctl dlq redrive SEQ [--body FILE]\n\n"
        "Sends the dead letter with stream sequence SEQ (see `towerctl dlq list`) back into the events\n"
        "stream: as it was stored, or, with --body, as the corrected event in FILE. Prints whether the\n"
        "event was accepted or was a duplicate of one already stored. Needs a token with the operator\n"
        "role when the server requires tokens. POST /api/v1/dead-letters/SEQ/redrive.",
        defs, sizeof defs / sizeof defs[0], 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    rc = CTL_EXIT_OK;
    ct_buf body = {0};
    ctl_resp r = {0};
    int64_t seq = 0;
    if (ct_parse_int(c.args[0], &seq) != 0 || seq < 1) {
        fprintf(stderr, "%s: SEQ must be a dead letter's stream sequence, a positive integer\n", c.cmd);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    const char *file = ct_config_str(c.cfg, "body");
    if (file && slurp(file, &body) != 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", c.cmd, file, errno == EFBIG ? "larger than 1 MiB" : strerror(errno));
        rc = CTL_EXIT_FAIL;
        goto out;
    }
    if (file && !body.len) {
        fprintf(stderr, "%s: %s is empty; leave --body out to redrive the dead letter as stored\n", c.cmd, file);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    char path[96];
    snprintf(path, sizeof path, "/api/v1/dead-letters/%lld/redrive", (long long)seq);
    if (ctl_http_request(c.http, "POST", path, body.data, body.len, "application/json", &r) != 0 || r.status < 200 ||
        r.status >= 300) {
        rc = ctl_report(&c, &r);
        goto out;
    }
    if (c.json) {
        ctl_print_body(&r);
        goto out;
    }
    const char *result = json_string_value(json_object_get(r.json, "result"));
    const char *eid = json_string_value(json_object_get(r.json, "eventId"));
    printf("dead letter %lld redriven%s: event ", (long long)seq, file ? " with the corrected body" : " as stored");
    ctl_put_clean(stdout, eid ? eid : "?");
    if (result && !strcmp(result, "duplicate")) printf(" was already stored (duplicate)\n");
    else if (result && !strcmp(result, "accepted")) printf(" accepted\n");
    else {
        fputs(": ", stdout);
        ctl_put_clean(stdout, result ? result : "(no result)");
        fputc('\n', stdout);
    }
out:
    ctl_resp_free(&r);
    ct_buf_free(&body);
    ctl_end(&c);
    return rc;
}
