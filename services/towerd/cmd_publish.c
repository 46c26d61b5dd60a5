/* towerd publish: validate event files and publish them to JetStream, waiting for every ack. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nats_opts.h"
#include "towerd.h"

#define WINDOW 4096 /* publishes in flight before waiting for their acks */

typedef struct where {
    const char *file;
    size_t line;
} where;

typedef struct pub_state {
    where *w;
    uint64_t stored, dups, rejected, failed;
} pub_state;

static void on_ack(void *ctx, size_t tag, const bus_pub_ack *ack)
{
    pub_state *p = ctx;
    switch (ack->result) {
    case BUS_PUB_STORED: p->stored++; break;
    case BUS_PUB_DUPLICATE: p->dups++; break;
    case BUS_PUB_FAILED:
        p->failed++;
        fprintf(stderr, "%s:%zu: FAILED: %s\n", p->w[tag].file, p->w[tag].line, ack->error);
        break;
    }
}

static const ct_opt_def own_defs[] = {
    {"timeout", 0, "TOWER_PUBLISH_TIMEOUT", "publish.timeout", CT_OPT_DURATION, "30s", "DURATION",
     "give up on acknowledgements after this long", 0, 0},
    {"json", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL, "print the summary as JSON on stdout", 0, 0},
};

static const char *const ignore[] = {"store", "projector", "server", "sla", "sim", NULL};

static const towerd_spec spec = {
    .cmd = "towerd publish",
    .usage = "usage: towerd publish [OPTIONS] FILE...\n\n"
             "Validates events from NDJSON files or JSON arrays ('-' is stdin), publishes each valid one\n"
             "to JetStream (protobuf on tower.evt.<system>.<type>, message id = eventId + content\n"
             "hash) and waits for every acknowledgement, retrying timeouts. Invalid lines are\n"
             "reported as FILE:LINE: CODE: message and not published. The summary counts the duplicates:\n"
             "events whose message id JetStream had already (its ack says duplicate), dropped at publish,\n"
             "so that no projector sees them (they are not in the store's duplicates count).\n\n"
             "Exit codes: 0 every event stored (or already there); 1 some event was not stored\n"
             "(FAILED lines) or NATS is unreachable; 2 usage; 3 some lines were invalid.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
    .min_args = 1,
    .max_args = INT_MAX,
    .args_usage = "no input file (use - for standard input)",
};

/* Publish the valid records of one file, then wait for their acks; -1 if it cannot be opened. */
static int publish_file(bus *b, const char *file, int64_t timeout_ms, pub_state *p, uint64_t *records)
{
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
    if (!f) {
        fprintf(stderr, "towerd publish: cannot open %s: %m\n", file);
        return -1;
    }
    evt_reader *r = NULL;
    evt_reader_open(&r, f);
    evt_record rec;
    size_t inflight = 0;
    int got;
    while ((got = evt_reader_next(r, &rec)) == 1) {
        ++*records;
        if (!rec.event) {
            p->rejected++;
            fprintf(stderr, "%s:%zu: %s: %s\n", file, rec.line, evt_code_str(rec.error.code), rec.error.message);
            continue;
        }
        p->w[inflight] = (where){file, rec.line};
        bus_publish_event(b, rec.event, inflight);
        evt_free(rec.event);
        if (++inflight == WINDOW) {
            bus_publish_wait(b, timeout_ms, on_ack, p);
            inflight = 0;
        }
    }
    if (got < 0) {
        fprintf(stderr, "%s: %s: %s\n", file, evt_code_str(rec.error.code), rec.error.message);
        p->rejected++;
    }
    /* Acks of this file before its name goes away from the report. */
    bus_publish_wait(b, timeout_ms, on_ack, p);
    evt_reader_destroy(r);
    if (f != stdin) fclose(f);
    return 0;
}

/* The summary on stderr, and as JSON on stdout with --json. */
static void report(const ct_config *cfg, const pub_state *p, uint64_t records, double secs)
{
    fprintf(stderr,
            "published %" PRIu64 " records in %.2fs (%.0f/s): %" PRIu64 " stored, %" PRIu64
            " duplicates (already in the stream: dropped by JetStream at publish), %" PRIu64 " rejected, %" PRIu64
            " failed\n",
            records, secs, secs > 0 ? (double)records / secs : 0.0, p->stored, p->dups, p->rejected, p->failed);
    if (ct_config_bool(cfg, "json"))
        printf("{\"records\":%" PRIu64 ",\"stored\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"failed\":%" PRIu64 ",\"seconds\":%.3f}\n",
               records, p->stored, p->dups, p->rejected, p->failed, secs);
}

int towerd_publish(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    rc = TOWERD_EXIT_FAIL;
    bus *b = NULL;
    bus_opts bo;
    towerd_bus_opts(c.cfg, &bo, "towerd publish");
    if (bus_connect(&b, &bo) != CT_OK || bus_ensure_streams(b) != CT_OK) goto out;

    int64_t timeout_ms = ct_config_duration_ns(c.cfg, "timeout") / 1000000;
    pub_state p = {0};
    p.w = ct_calloc(WINDOW, sizeof *p.w);
    uint64_t records = 0;
    int io_error = 0;
    int64_t t0 = ct_mono_ns();
    for (int i = 0; i < c.nargs && !io_error; i++)
        io_error = publish_file(b, c.args[i], timeout_ms, &p, &records) < 0;
    report(c.cfg, &p, records, (double)(ct_mono_ns() - t0) / 1e9);
    free(p.w);
    rc = io_error || p.failed ? TOWERD_EXIT_FAIL : p.rejected ? TOWERD_EXIT_REJECTED : TOWERD_EXIT_OK;
out:
    bus_close(b);
    towerd_end(&c);
    return rc;
}
