/* towerd's sub-commands, each a main of its own. */
#ifndef TOWERD_H
#define TOWERD_H

#include <signal.h>
#include <stddef.h>

#include "ct_config.h"
#include "sim_run.h"

/* Exit codes shared by every sub-command. */
enum {
    TOWERD_EXIT_OK = 0,      /* done */
    TOWERD_EXIT_FAIL = 1,    /* a runtime failure: I/O, store, bus */
    TOWERD_EXIT_USAGE = 2,   /* bad flags or arguments */
    TOWERD_EXIT_REJECTED = 3, /* done, but input was rejected (fold --strict, publish) */
    TOWERD_EXIT_REBUILD = 4   /* the store cannot follow the stream: run towerd rebuild */
};

int towerd_fold(int argc, char **argv);
int towerd_dump(int argc, char **argv);
int towerd_gen(int argc, char **argv);
int towerd_publish(int argc, char **argv);
int towerd_projector(int argc, char **argv);
int towerd_rebuild(int argc, char **argv);
int towerd_status(int argc, char **argv);
int towerd_serve(int argc, char **argv);
int towerd_token(int argc, char **argv);
int towerd_sim(int argc, char **argv);
int towerd_up(int argc, char **argv);
int towerd_sla(int argc, char **argv);

/* Set by SIGINT and SIGTERM once towerd_handle_signals ran: the running role stops. */
extern volatile sig_atomic_t towerd_stop;

/* SIGINT and SIGTERM set towerd_stop; SIGPIPE is ignored. */
void towerd_handle_signals(void);

/* The store directory: --data, else $TOWER_DATA, else ./tower-data. */
const char *towerd_data_dir(const char *flag);

/* Room for the simulators' options in a command's table. */
#define TOWERD_SIM_MAX_DEFS 32

/* Append the simulators' options (section [sim]) to out, which has room for TOWERD_SIM_MAX_DEFS; standalone
   adds those of towerd sim alone (--dry-run, --state). Returns how many. The defaults are static text. */
size_t towerd_sim_defs(ct_opt_def *out, const char *warp_default, int standalone);

/* The simulators' options from a parsed configuration; -1 after printing "CMD: --flag: problem". */
int towerd_sim_config(const ct_config *c, const char *cmd, sim_run_opts *o);

/* The help text of the simulators' options and of the time warp, shared by towerd sim and towerd up. */
extern const char towerd_sim_help[];

#endif
