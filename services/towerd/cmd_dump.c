/* towerd dump: every view of the store as one JSON object, or a per-view summary; read-only. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "towerd.h"

static const ct_opt_def own_defs[] = {
    {"data", 'd', "TOWER_DATA", "store.data", CT_OPT_STRING, "./tower-data", "DIR", "the store directory", 0, 0},
    {"stable", 's', NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "leave out what a replay does not reproduce and sort dead letters: equal events, equal dumps", 0, 0},
    {"summary", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "print per view the count and the oldest item's since, and totals", 0, 0},
    {"closed", 0, NULL, NULL, CT_OPT_BOOL, NULL, NULL,
     "also print the closed exceptions someone acted on, as \"closed\" (docs/exceptions.md)", 0, 0},
};

static const char *const ignore[] = {"store", "nats", "stream", "projector", "server", "sla", "sim", "publish", "up",
                                     NULL};

static const towerd_spec spec = {
    .cmd = "towerd dump",
    .usage = "usage: towerd dump [--data DIR] [--stable] [--closed] | [--summary]\n\n"
             "Prints every view as one JSON object: view name -> array of items, oldest\n"
             "first, in the item shape of docs/contract.md. Reads one consistent\n"
             "snapshot and never blocks a process writing the same store.\n\n"
             "Exit codes: 0 printed; 1 no store or store failure; 2 usage.",
    .defs = own_defs,
    .ndefs = sizeof own_defs / sizeof own_defs[0],
    .ignore = ignore,
};

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
    towerd_ctx c;
    int rc = towerd_start(&c, &spec, argc, argv);
    if (rc != TOWERD_CONTINUE) return rc;
    int flags = (ct_config_bool(c.cfg, "stable") ? STORE_DUMP_STABLE : 0) |
                (ct_config_bool(c.cfg, "closed") ? STORE_DUMP_CLOSED : 0);
    store *s = NULL;
    store_opts so = {.dir = ct_config_str(c.cfg, "data"), .read_only = 1};
    ct_status st = store_open(&s, &so);
    if (st == CT_OK) st = ct_config_bool(c.cfg, "summary") ? summary(s) : store_dump(s, flags, stdout);
    store_close(s);
    towerd_end(&c);
    if (fflush(stdout) != 0) return TOWERD_EXIT_FAIL;
    return st == CT_OK ? TOWERD_EXIT_OK : TOWERD_EXIT_FAIL;
}
