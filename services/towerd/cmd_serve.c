/* towerd serve: the HTTP API, metrics, health probes and the dashboard's static files. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nats_opts.h"
#include "server.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"http", 0, "TOWER_HTTP", "server.http", CT_OPT_STRING, "127.0.0.1:8080", "HOST:PORT",
     "listen address (beyond loopback only with --tokens)", 0, 0},
    {"tokens", 0, "TOWER_TOKENS", "server.tokens", CT_OPT_STRING, NULL, "FILE",
     "API tokens with roles, hashed (lines 'NAME ROLE SHA256HEX', see towerd token); every API route then needs one", 0, 0},
    {"ws-max-clients", 0, "TOWER_WS_MAX_CLIENTS", "server.ws_max_clients", CT_OPT_INT, "256", "N",
     "live-stream connections at once (each holds a worker thread)", 0, 0},
    {"ws-queue", 0, "TOWER_WS_QUEUE", "server.ws_queue", CT_OPT_INT, "20000", "N",
     "changes queued to one live-stream client before it is dropped to a resync", 0, 0},
    {"ws-snapshot-max", 0, "TOWER_WS_SNAPSHOT_MAX", "server.ws_snapshot_max", CT_OPT_INT, "500", "N",
     "items in a live-stream snapshot (the oldest; its count gives the total)", 0, 0},
    {"ws-coalesce", 0, "TOWER_WS_COALESCE", "server.ws_coalesce", CT_OPT_DURATION, "20ms", "DURATION",
     "a live-stream client gets at most one frame per this interval (changes are batched)", 0, 0},
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory (read only)", 0, 0},
    {"web", 0, "TOWER_WEB", "server.web", CT_OPT_STRING, "./web", "DIR", "the dashboard's static files", 0, 0},
    {"threads", 0, "TOWER_HTTP_THREADS", "server.threads", CT_OPT_INT, "32", "N", "worker threads", 0, 0},
    {"ready-max-lag", 0, "TOWER_READY_MAX_LAG", "server.ready_max_lag", CT_OPT_INT, "10000", "N",
     "/readyz fails when the projector is more events behind", 0, 0},
    {"no-nats", 0, "TOWER_NO_NATS", NULL, CT_OPT_BOOL, NULL, NULL,
     "do not connect to NATS (no stream figures; readiness needs only the store)", 0, 0},
};

int towerd_serve(int argc, char **argv)
{
    size_t ndefs;
    ct_opt_def *defs = towerd_defs_concat(own_defs, sizeof own_defs / sizeof own_defs[0], &ndefs);
    ct_config *cfg = NULL;
    char **args = NULL;
    int nargs = 0, help = 0, rc = TOWERD_EXIT_FAIL;
    bus *b = NULL;
    http_server *srv = NULL;
    static const char *const ignore[] = {"projector", "sla", "sim", "publish", NULL};
    if (ct_config_parse(&cfg, "towerd serve",
                        "usage: towerd serve [OPTIONS]\n\n"
                        "Serves the REST API (/api/v1/...), /metrics, /healthz, /readyz and the dashboard\n"
                        "from the store, read-only, one LMDB read transaction per request. Runs until SIGINT\n"
                        "or SIGTERM.\n\n"
                        "Without --tokens it listens on loopback only and the API is open to local users; with\n"
                        "--tokens every /api route needs 'Authorization: Bearer TOKEN' (the websocket also takes\n"
                        "?token=): viewer reads and streams, operator also redrives dead letters, ingest posts\n"
                        "events. /metrics, /healthz, /readyz and the dashboard's files stay open.\n\n"
                        "Exit codes: 0 stopped; 1 cannot listen; 2 usage (a bad tokens file, or a non-loopback\n"
                        "address without tokens).",
                        defs, ndefs, ignore, argc, argv, &args, &nargs, &help) != CT_OK) {
        free(defs);
        return TOWERD_EXIT_USAGE;
    }
    if (help) {
        rc = TOWERD_EXIT_OK;
        goto out;
    }
    if (nargs) {
        fprintf(stderr, "towerd serve: unexpected argument '%s'\n", args[0]);
        rc = TOWERD_EXIT_USAGE;
        goto out;
    }
    towerd_handle_signals();

    if (!ct_config_bool(cfg, "no-nats")) {
        bus_opts bo;
        towerd_bus_opts(cfg, &bo, "towerd serve");
        bo.wait_connect = 1;
        if (bus_connect(&b, &bo) != CT_OK) b = NULL; /* serve the store anyway; /readyz tells */
    }
    server_opts so = {.listen = ct_config_str(cfg, "http"),
                      .data_dir = ct_config_str(cfg, "data"),
                      .web_root = ct_config_str(cfg, "web"),
                      .threads = (unsigned)ct_config_int(cfg, "threads"),
                      .bus = b,
                      .ready_max_lag = (uint64_t)ct_config_int(cfg, "ready-max-lag"),
                      .tokens_file = ct_config_str(cfg, "tokens"),
                      .ws_max_clients = (unsigned)ct_config_int(cfg, "ws-max-clients"),
                      .ws_queue = (size_t)ct_config_int(cfg, "ws-queue"),
                      .ws_snapshot_max = (unsigned)ct_config_int(cfg, "ws-snapshot-max"),
                      .ws_coalesce_ms = (int)(ct_config_duration_ns(cfg, "ws-coalesce") / 1000000)};
    ct_status st = http_server_start(&srv, &so);
    if (st != CT_OK) {
        rc = st == CT_USAGE ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
        goto out;
    }
    while (!towerd_stop) usleep(100000);
    ct_log(CT_LOG_INFO, "server", "stopping");
    rc = TOWERD_EXIT_OK;
out:
    http_server_stop(srv);
    bus_close(b);
    ct_config_destroy(cfg);
    free(defs);
    return rc;
}
