/* towerd serve: the HTTP API, metrics, health probes and the dashboard's static files. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nats_opts.h"
#include "server_opts.h"
#include "server.h"
#include "sla.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory (read only)", 0, 0},
    {"no-nats", 0, "TOWER_NO_NATS", NULL, CT_OPT_BOOL, NULL, NULL,
     "do not connect to NATS (no stream figures; readiness needs only the store)", 0, 0},
    {"sla-rules", 0, "TOWER_SLA_RULES", "sla.rules", CT_OPT_STRING, NULL, "FILE",
     "the SLA rules the projector uses (INI, docs/sla.md), served at /api/v1/sla/rules for the dashboard's "
     "colours (default: the contract's rules; a bad file: exit 2)", 0, 0},
};
#define NOWN (sizeof own_defs / sizeof own_defs[0])

static const char *const ignore[] = {"projector", "sla", "sim", "publish", NULL};

static const char usage[] =
    "usage: towerd serve [OPTIONS]\n\n"
    "Serves the REST API (/api/v1/...), /metrics, /healthz, /readyz and the dashboard\n"
    "from the store, read-only, one LMDB read transaction per request. Runs until SIGINT\n"
    "or SIGTERM.\n\n"
    "Without --tokens it listens on loopback only and the API is open to local users; with\n"
    "--tokens every /api route needs 'Authorization: Bearer TOKEN' (the websocket also takes\n"
    "?token=): viewer reads and streams, operator also redrives dead letters, ingest posts\n"
    "events. /metrics, /healthz, /readyz and the dashboard's files stay open.\n\n"
    "Exit codes: 0 stopped; 1 cannot listen; 2 usage (a bad tokens file, or a non-loopback\n"
    "address without tokens).";

/* The connection for the stream's figures, or NULL with --no-nats or when it cannot be made. */
static bus *serve_bus(const ct_config *cfg)
{
    if (ct_config_bool(cfg, "no-nats")) return NULL;
    bus *b = NULL;
    bus_opts bo;
    towerd_bus_opts(cfg, &bo, "towerd serve");
    bo.wait_connect = 1;
    bo.connect_async = 1; /* serve the store meanwhile; /readyz tells */
    if (bus_connect(&b, &bo) != CT_OK) return NULL;
    /* Requests read the stream's state from the watch's snapshot: none waits on NATS. */
    bus_watch_start(b, 0, 0);
    return b;
}

int towerd_serve(int argc, char **argv)
{
    ct_opt_def own[NOWN + 48]; /* room for towerd_server_defs */
    memcpy(own, own_defs, sizeof own_defs);
    memcpy(own + NOWN, towerd_server_defs, towerd_server_ndefs * sizeof *own);
    towerd_spec spec = {.cmd = "towerd serve", .usage = usage, .defs = own, .ndefs = NOWN + towerd_server_ndefs,
                        .nats = 1, .ignore = ignore};
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    towerd_handle_signals();
    bus *b = serve_bus(c.cfg);
    http_server *srv = NULL;
    server_opts so;
    towerd_server_opts(c.cfg, &so);
    so.data_dir = ct_config_str(c.cfg, "data");
    so.bus = b;
    sla_rules *rules = NULL;
    char *err = NULL;
    ct_status st = sla_rules_load(&rules, ct_config_str(c.cfg, "sla-rules"), &err);
    if (st != CT_OK) {
        fprintf(stderr, "towerd serve: --sla-rules: %s\n", err ? err : "cannot be read");
        free(err);
        st = CT_USAGE;
    } else {
        if (ct_config_str(c.cfg, "sla-rules")) so.sla_rules = sla_rules_fold(rules);
        st = http_server_start(&srv, &so);
    }
    if (st == CT_OK) {
        while (!towerd_stop) usleep(100000);
        ct_log(CT_LOG_INFO, "server", "stopping");
    }
    rc = st == CT_OK ? TOWERD_EXIT_OK : st == CT_USAGE ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
    http_server_stop(srv);
    sla_rules_destroy(rules);
    bus_close(b);
    towerd_end(&c);
    return rc;
}
