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
int towerd_import(int argc, char **argv);
int towerd_reconcile(int argc, char **argv);
int towerd_projector(int argc, char **argv);
int towerd_rebuild(int argc, char **argv);
int towerd_backup(int argc, char **argv);
int towerd_status(int argc, char **argv);
int towerd_serve(int argc, char **argv);
int towerd_token(int argc, char **argv);
int towerd_sim(int argc, char **argv);
int towerd_up(int argc, char **argv);
int towerd_sla(int argc, char **argv);
int towerd_relay(int argc, char **argv);

/* ---- the prologue every command shares (start.c) ---- */

/* Returned by towerd_start when the command should go on (any other value is the exit code). */
#define TOWERD_CONTINUE (-1)

/* What every command has once started: its name, its options and its positional arguments. */
typedef struct towerd_ctx {
    const char *cmd;  /**< "towerd projector", for messages (borrowed from the spec) */
    ct_config *cfg;   /**< the parsed options (owned) */
    ct_opt_def *defs; /**< the option table cfg borrows (owned) */
    char **args;      /**< positional arguments (borrowed from argv) */
    int nargs;        /**< their number */
} towerd_ctx;

/* A command's description for towerd_start. */
typedef struct towerd_spec {
    const char *cmd;                 /**< "towerd projector" */
    const char *usage;               /**< the head of --help, exit codes included (borrowed for the call) */
    const ct_opt_def *defs;          /**< the command's own options (copied) */
    size_t ndefs;                    /**< their number */
    int nats;                        /**< 1: the NATS connection options (nats_opts.h) follow the own ones */
    const char *const *ignore;       /**< config-file sections meant for other commands, NULL-terminated */
    int min_args, max_args;          /**< positional arguments accepted */
    const char *args_usage;          /**< said when their number is wrong, e.g. "no input file"; NULL: a
                                          generic "unexpected argument 'X'" / "missing argument" */
} towerd_spec;

/* Parse the command line, the environment and the config file, handle --help and check the number of
   positional arguments. Returns TOWERD_CONTINUE with c ready (release it with towerd_end); otherwise the
   exit code to return (TOWERD_EXIT_OK after --help, TOWERD_EXIT_USAGE after saying what is wrong), with c
   already released. */
int towerd_start(towerd_ctx *c, const towerd_spec *spec, int argc, char **argv);

/* Release the context; safe on a zeroed one and twice. */
void towerd_end(towerd_ctx *c);

/* Set by SIGINT and SIGTERM once towerd_handle_signals ran: the running role stops. */
extern volatile sig_atomic_t towerd_stop;

/* SIGINT and SIGTERM set towerd_stop; SIGPIPE is ignored. */
void towerd_handle_signals(void);

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
