/* towerd's sub-commands, each a main of its own. */
#ifndef TOWERD_H
#define TOWERD_H

/* Exit codes shared by every sub-command. */
enum {
    TOWERD_EXIT_OK = 0,      /* done */
    TOWERD_EXIT_FAIL = 1,    /* a runtime failure: I/O, store, bus */
    TOWERD_EXIT_USAGE = 2,   /* bad flags or arguments */
    TOWERD_EXIT_REJECTED = 3 /* done, but input was rejected (with --strict) */
};

int towerd_fold(int argc, char **argv);
int towerd_dump(int argc, char **argv);
int towerd_gen(int argc, char **argv);

/* The store directory: --data, else $TOWER_DATA, else ./tower-data. */
const char *towerd_data_dir(const char *flag);

#endif
