/* towerd dump: every view of the store as one JSON object, or a per-view summary; read-only. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "towerd.h"

static void dump_usage(FILE *out)
{
    fprintf(out, "usage: towerd dump [--data DIR] [--stable | --summary]\n\n"
                 "Prints every view as one JSON object: view name -> array of items, oldest\n"
                 "first, in the item shape of EVENTS.md. Reads one consistent snapshot and\n"
                 "never blocks a process writing the same store.\n\n"
                 "  --data DIR   the store (default $TOWER_DATA or ./tower-data)\n"
                 "  --stable     leave out what a replay does not reproduce (dead letters' seq and\n"
                 "               receivedAt) and sort dead letters by content: dumps of the same\n"
                 "               set of events compare equal byte for byte\n"
                 "  --summary    print per view the count and the oldest item's since, and totals\n"
                 "  --help       this text\n\n"
                 "Exit codes: 0 printed; 1 no store or store failure; 2 usage.\n");
}

static int first_item(void *ctx, const Tower__V1__ViewItem *it)
{
    char *out = ctx;
    if (it->since) evt_time_format(it->since->seconds, it->since->nanos, out);
    return 1;
}

static ct_status summary(store *s)
{
    store_reader *r = NULL;
    ct_status st = store_reader_begin(s, &r);
    if (st != CT_OK) return st;
    store_stats ss;
    store_reader_stats(r, &ss);
    printf("%-18s %10s  %s\n", "view", "count", "oldest since");
    for (int v = 0; v < FOLD_VIEW_COUNT && st == CT_OK; v++) {
        char oldest[48] = "-";
        store_query q = {.view = (fold_view)v, .limit = 1};
        st = store_view_scan(r, &q, first_item, oldest, NULL);
        printf("%-18s %10" PRIu64 "  %s\n", fold_view_name((fold_view)v), store_reader_count(r, (fold_view)v),
               oldest);
    }
    printf("\napplied sequence %" PRIu64 ", events %" PRIu64 ", duplicates %" PRIu64 ", dead letters %" PRIu64 "\n",
           ss.applied_seq, ss.events, ss.duplicates, ss.dead_letters);
    store_reader_end(r);
    return st;
}

int towerd_dump(int argc, char **argv)
{
    static const struct option opts[] = {{"data", required_argument, 0, 'd'}, {"stable", no_argument, 0, 's'},
                                         {"summary", no_argument, 0, 'S'},     {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *data = NULL;
    int flags = 0, sum = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "d:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': flags |= STORE_DUMP_STABLE; break;
        case 'S': sum = 1; break;
        case 'h': dump_usage(stdout); return TOWERD_EXIT_OK;
        default: dump_usage(stderr); return TOWERD_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "towerd dump: unexpected argument '%s'\n\n", argv[optind]);
        dump_usage(stderr);
        return TOWERD_EXIT_USAGE;
    }
    store *s = NULL;
    store_opts so = {.dir = towerd_data_dir(data), .read_only = 1};
    if (store_open(&s, &so) != CT_OK) return TOWERD_EXIT_FAIL;
    ct_status st = sum ? summary(s) : store_dump(s, flags, stdout);
    store_close(s);
    if (fflush(stdout) != 0) return TOWERD_EXIT_FAIL;
    return st == CT_OK ? TOWERD_EXIT_OK : TOWERD_EXIT_FAIL;
}
