/* towerd's sub-commands, each a main of its own. */
#ifndef TOWERD_H
#define TOWERD_H

#include <signal.h>

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

/* Set by SIGINT and SIGTERM once towerd_handle_signals ran: the running role stops. */
extern volatile sig_atomic_t towerd_stop;

/* SIGINT and SIGTERM set towerd_stop; SIGPIPE is ignored. */
void towerd_handle_signals(void);

/* The store directory: --data, else $TOWER_DATA, else ./tower-data. */
const char *towerd_data_dir(const char *flag);

#endif
