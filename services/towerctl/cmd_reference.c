/* towerctl reference: the reference data (contract v1.2, docs/contract/reference.md) as the server shows it: the
 * warehouses with their time zones, the carriers, the skus (with --kind sku), and the unknown codes by code and
 * producer. GET /api/v1/reference. */
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

static char *cell(const json_t *o, const char *k) { return ctl_cell(json_object_get(o, k)); }

/* One table of rows (objects) with the given keys as columns. */
static void print_table(const json_t *rows, size_t n, const char *const *head, const char *const *keys)
{
    ctl_table t;
    ctl_table_init(&t, n, head);
    size_t i;
    json_t *o;
    json_array_foreach(rows, i, o)
    {
        char *v[8];
        const char *row[8];
        for (size_t k = 0; k < n; k++) row[k] = v[k] = cell(o, keys[k]);
        ctl_table_row(&t, row);
        for (size_t k = 0; k < n; k++) free(v[k]);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
}

static void print_defs(const json_t *doc)
{
    static const struct {
        const char *list, *title;
        size_t n;
        const char *head[5], *keys[5];
    } parts[] = {
        {"warehouses", "warehouses", 5, {"WAREHOUSE", "NAME", "REGION", "TIME ZONE", "DEFINED AT"},
         {"warehouseId", "name", "region", "timeZone", "definedAt"}},
        {"carriers", "carriers", 3, {"CARRIER", "NAME", "DEFINED AT"}, {"carrierId", "name", "definedAt"}},
        {"skus", "skus", 4, {"SKU", "UNIT", "NAME", "DEFINED AT"}, {"sku", "unit", "name", "definedAt"}},
    };
    const json_t *counts = json_object_get(doc, "counts");
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++) {
        const json_t *rows = json_object_get(doc, parts[p].list);
        json_int_t n = json_integer_value(json_object_get(counts, parts[p].list));
        if (!rows) {
            printf("%lld %s defined (--kind %.*s lists them)\n\n", (long long)n, parts[p].title,
                   (int)strlen(parts[p].title) - 1, parts[p].title);
            continue;
        }
        print_table(rows, parts[p].n, parts[p].head, parts[p].keys);
        printf("%lld %s defined%s\n\n", (long long)n, parts[p].title,
               json_is_true(json_object_get(json_object_get(doc, "truncated"), parts[p].list)) ? " (list cut)" : "");
    }
}

static void print_unknown(const json_t *doc)
{
    const json_t *u = json_object_get(doc, "unknown"), *groups = json_object_get(u, "groups");
    if (!json_array_size(groups)) {
        printf("no unknown code: every warehouse, carrier and sku named is defined\n");
        return;
    }
    static const char *const head[] = {"KIND", "CODE", "PRODUCER", "INSTANCE", "ITEMS", "SINCE", "EXAMPLE"};
    ctl_table t;
    ctl_table_init(&t, 7, head);
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        const json_t *ex = json_object_get(g, "example");
        char *v[7] = {cell(g, "kind"), cell(g, "code"), cell(g, "producer"), cell(g, "producerInstance"),
                      cell(g, "count"), cell(g, "since"),
                      cell(ex, json_object_get(ex, "orderId") ? "orderId" : "shipmentId")};
        const char *row[7];
        for (int k = 0; k < 7; k++) row[k] = v[k];
        ctl_table_row(&t, row);
        for (int k = 0; k < 7; k++) free(v[k]);
    }
    ctl_table_print(&t, stdout);
    ctl_table_free(&t);
    printf("%lld item(s) name a code no definition covers (anomaly UNKNOWN_CODE; runbook rule/UNKNOWN_CODE)\n",
           (long long)json_integer_value(json_object_get(u, "items")));
}

int ctl_cmd_reference(int argc, char **argv)
{
    static const ct_opt_def defs[] = {
        {"kind", 'k', NULL, NULL, CT_OPT_STRING, NULL, "KIND", "list only warehouse, carrier or sku definitions", 0, 0},
    };
    static const ctl_spec spec = {
        "towerctl reference",
        "usage: towerctl reference [--kind warehouse|carrier|sku] [OPTIONS]\n\n"
        "The reference data the master data defined (the latest definition of each code): the warehouses with\n"
        "their region and time zone, the carriers, and with --kind sku the skus; then the codes orders and\n"
        "shipments name that no definition covers (anomaly UNKNOWN_CODE), by code and producer, with how many\n"
        "items name each, since when, and an example. GET /api/v1/reference.",
        defs, sizeof defs / sizeof defs[0], 0, 0};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    ctl_resp r = {0};
    const char *kind = ct_config_str(c.cfg, "kind");
    if (kind && strcmp(kind, "warehouse") && strcmp(kind, "carrier") && strcmp(kind, "sku")) {
        fprintf(stderr, "%s: --kind must be warehouse, carrier or sku\n", c.cmd);
        rc = CTL_EXIT_USAGE;
        goto out;
    }
    char path[96];
    snprintf(path, sizeof path, "/api/v1/reference?kind=%s&limit=10000", kind ? kind : "warehouse");
    if (!kind) snprintf(path, sizeof path, "/api/v1/reference?limit=10000");
    rc = ctl_get_json(&c, path, &r);
    if (rc != CTL_EXIT_OK) goto out;
    if (c.json) {
        ctl_print_body(&r);
        goto out;
    }
    if (!kind) { /* skus are many: without --kind only their count */
        json_object_del(r.json, "skus");
    }
    print_defs(r.json);
    print_unknown(r.json);
out:
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}
