/* towerd: the control tower's server binary, one sub-command per role. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ct_version.h"
#include "towerd.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
    const char *help;
} commands[] = {
    {"up", towerd_up, "the whole tower in one process: nats-server, projector, server, simulators"},
    {"sim", towerd_sim, "the simulated ERP, WMS, route planner, carriers and finance, publishing"},
    {"fold", towerd_fold, "fold NDJSON/JSON event files into the store, offline"},
    {"dump", towerd_dump, "print every view of the store as one JSON object (or a summary)"},
    {"gen", towerd_gen, "write a seeded, realistic event trace as NDJSON"},
    {"publish", towerd_publish, "validate event files and publish them to JetStream"},
    {"import", towerd_import, "map legacy CSV / fixed-width files into events and publish them"},
    {"reconcile", towerd_reconcile, "compare a legacy system's snapshot (CSV / fixed-width) with the tower"},
    {"projector", towerd_projector, "fold the events stream into the store, live"},
    {"rebuild", towerd_rebuild, "replay the whole stream into a fresh store and swap it in"},
    {"backup", towerd_backup, "copy the store, consistent and hot, into a new data directory"},
    {"serve", towerd_serve, "the REST API, /metrics, health probes and the dashboard"},
    {"status", towerd_status, "the projector's figures: applied sequence, lag, dead letters"},
    {"relay", towerd_relay, "deliver business events to webhooks and Slack, with retries and breakers"},
    {"sla", towerd_sla, "the SLA engine: overdue milestones become breaches and Alertmanager alerts"},
    {"token", towerd_token, "make an API token for a role, and its hashed line for the tokens file"},
};

volatile sig_atomic_t towerd_stop;

static void on_signal(int sig)
{
    (void)sig;
    towerd_stop = 1;
}

void towerd_handle_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: towerd COMMAND [OPTIONS]\n\n"
                 "The logistics control tower: folds business-milestone events into views of\n"
                 "stuck workflows.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'towerd COMMAND --help' describes each command; 'towerd --version' says which build this is.\n"
                 "Environment: TOWER_DATA (default store directory), TOWER_LOG (debug|info|warn|error).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TOWERD_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return TOWERD_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        ct_version_print(stdout, "towerd");
        return TOWERD_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "towerd: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return TOWERD_EXIT_USAGE;
}
