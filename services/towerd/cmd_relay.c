/* towerd relay: business events delivered to outbound destinations (docs/outbound.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nats_opts.h"
#include "relay.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"relay", 0, "TOWER_RELAY", "relay.file", CT_OPT_STRING, NULL, "FILE",
     "the destinations (INI, one [destination NAME] section each; see docs/outbound.md)", 0, 0},
    {"state", 0, "TOWER_RELAY_STATE", "relay.state", CT_OPT_STRING, "./tower-data/relay", "DIR",
     "checkpoints, delivery dead letters and status per destination", 0, 0},
    {"data", 0, "TOWER_DATA", "store.data", CT_OPT_STRING, NULL, "DIR",
     "the projector's store, read-only: needed by destinations with exceptions = (exception changes)", 0, 0},
    {"redrive", 0, NULL, NULL, CT_OPT_STRING, NULL, "NAME",
     "deliver NAME's dead letters once more (a route planner's: back in its queue), then exit (0 all delivered, 1 some still dead)", 0, 0},
};

static const char *const ignore[] = {"store", "server", "sla", "sim", "publish", "up", "projector", NULL};

static const towerd_spec spec = {
    .cmd = "towerd relay",
    .usage = "usage: towerd relay --relay FILE [--state DIR] [--data STORE] [--nats URL] [--redrive NAME]\n\n"
             "Delivers business events from TOWER_EVENTS to the destinations of FILE: each destination\n"
             "has its own JetStream consumer and checkpoint (a dead destination holds up no other; a\n"
             "restart resumes where it stopped), signs webhooks in the Standard Webhooks form, retries\n"
             "with exponential backoff and jitter (Retry-After honoured on 429 and 503), opens a circuit\n"
             "breaker on repeated failures, and keeps a delivery it gave up as a dead letter in\n"
             "DIR/NAME.dead.ndjson. DIR/NAME.status.json says how each destination is doing. A kind =\n"
             "route_planner destination gets a route request for each shipment that is ready and not\n"
             "blocked, once per shipment set, held while its breaker is open, and recorded on the stream\n"
             "as routeRequested once taken (its fold and queue in DIR/relay.lmdb). A destination with\n"
             "exceptions = ... gets exception changes (opened, acknowledged, breached, resolved) read from\n"
             "the projector's store given with --data. Runs until SIGINT or SIGTERM.\n\n"
             "Exit codes: 0 stopped (or --redrive delivered everything); 1 failure (or --redrive left\n"
             "dead letters); 2 usage or a bad relay file.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .nats = 1,
    .ignore = ignore,
};

int towerd_relay(int argc, char **argv)
{
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    const char *file = ct_config_str(c.cfg, "relay"), *state = ct_config_str(c.cfg, "state");
    if (!file) {
        fprintf(stderr, "%s: --relay FILE is required (the destinations)\n", c.cmd);
        towerd_end(&c);
        return TOWERD_EXIT_USAGE;
    }
    relay_conf conf = {0};
    char err[512];
    ct_status st = relay_conf_load(file, &conf, err, sizeof err);
    if (st != CT_OK) {
        fprintf(stderr, "%s: %s\n", c.cmd, err);
        towerd_end(&c);
        return st == CT_IO ? TOWERD_EXIT_FAIL : TOWERD_EXIT_USAGE;
    }
    const char *data = ct_config_str(c.cfg, "data");
    for (size_t i = 0; i < conf.n && !data && !ct_config_str(c.cfg, "redrive"); i++)
        if (conf.v[i].exceptions) {
            fprintf(stderr, "%s: destination %s has exceptions: --data DIR (the projector's store) is required\n",
                    c.cmd, conf.v[i].name);
            relay_conf_free(&conf);
            towerd_end(&c);
            return TOWERD_EXIT_USAGE;
        }
    towerd_handle_signals();
    bus_opts bo;
    towerd_bus_opts(c.cfg, &bo, "towerd relay");
    bus *b = NULL;
    rc = TOWERD_EXIT_FAIL;
    if (bus_connect(&b, &bo) != CT_OK) goto out;
    const char *redrive = ct_config_str(c.cfg, "redrive");
    if (redrive) {
        /* The stream must be readable: wait for the connection a while. */
        for (int i = 0; i < 100 && !bus_is_connected(b); i++) usleep(50000);
        int r = relay_redrive(b, &conf, state, redrive, stdout);
        rc = r == 0 ? TOWERD_EXIT_OK : r == 2 ? TOWERD_EXIT_USAGE : TOWERD_EXIT_FAIL;
        goto out;
    }
    relay_figures *fig = ct_calloc(conf.n, sizeof *fig);
    relay_opts ro = {.conf = &conf, .state_dir = state, .instance = "tower-relay", .store_dir = data};
    relay *r = NULL;
    if (relay_start(&r, b, &ro, fig) == CT_OK) {
        ct_log(CT_LOG_INFO, "relay", "relaying to %zu destination(s); state in %s", conf.n, state);
        while (!towerd_stop) usleep(100000);
        ct_log(CT_LOG_INFO, "relay", "stopping");
        relay_stop(r);
        rc = TOWERD_EXIT_OK;
    }
    free(fig);
out:
    bus_close(b);
    relay_conf_free(&conf);
    towerd_end(&c);
    return rc;
}
