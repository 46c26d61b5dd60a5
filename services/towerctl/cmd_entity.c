/* towerctl order, shipment and search: one process whole (state, exceptions, timeline), or ids by prefix. */
#include <stdlib.h>
#include <string.h>

#include "towerctl.h"

/* "shipment SH-1 route R-3 warehouseId=dc-2 dockId=D4": the ids the entity line does not already say,
 * then the payload's fields. */
static char *event_detail(const json_t *ev, const char *type, const char *self_key, const char *self_id)
{
    ct_buf b = {0};
    static const char *const ids[][2] = {{"orderId", "order"}, {"shipmentId", "shipment"}, {"routeId", "route"}};
    for (size_t i = 0; i < 3; i++) {
        const char *v = json_string_value(json_object_get(ev, ids[i][0]));
        if (!v || (!strcmp(ids[i][0], self_key) && !strcmp(v, self_id))) continue;
        ct_buf_addf(&b, "%s%s %s", b.len ? " " : "", ids[i][1], v);
    }
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(ev, type), k, v) {
        char *cell = ctl_cell_raw(v); /* the event's payload as it is */
        ct_buf_addf(&b, "%s%s=%s", b.len ? " " : "", k, cell ? cell : "null");
        free(cell);
    }
    return b.data;
}

static void print_indented_table(const ctl_table *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    ctl_table_print(t, mem);
    fclose(mem);
    int bol = 1;
    for (char *p = buf; p && *p; p++) {
        if (bol) fputs("  ", stdout);
        fputc(*p, stdout);
        bol = *p == '\n';
    }
    free(buf);
}

static void print_exceptions(const json_t *ex)
{
    size_t n = json_array_size(ex);
    if (!n) {
        printf("\nno open exceptions\n");
        return;
    }
    printf("\n%zu open %s:\n", n, ctl_plural(n, "exception", "exceptions"));
    static const char *const head[] = {"VIEW", "AGE", "SINCE", "ENTITY", "WAREHOUSE", "CARRIER", "DETAIL"};
    ctl_table t;
    ctl_table_init(&t, 7, head);
    size_t i;
    json_t *it;
    json_array_foreach(ex, i, it) {
        char age[32] = "-";
        json_t *a = json_object_get(it, "ageSeconds");
        if (json_is_integer(a)) ctl_fmt_age(json_integer_value(a), age, sizeof age);
        const char *sh = json_string_value(json_object_get(it, "shipmentId"));
        const char *o = json_string_value(json_object_get(it, "orderId"));
        char *ent = sh ? ct_sprintf("shipment %s", sh) : o ? ct_sprintf("order %s", o) : NULL;
        char *view = ctl_cell(json_object_get(it, "view"));
        char *since = ctl_cell(json_object_get(it, "since"));
        char *wh = ctl_cell(json_object_get(it, "warehouseId"));
        char *ca = ctl_cell(json_object_get(it, "carrierId"));
        ct_buf d = {0};
        static const char *const keys[] = {"kind", "reason", "sku", "lastFailure", "interface", "rule", "code",
                                           "message", NULL};
        for (size_t k = 0; keys[k]; k++) {
            char *v = ctl_cell(json_object_get(it, keys[k]));
            if (v) ct_buf_addf(&d, "%s%s=%s", d.len ? " " : "", keys[k], v);
            free(v);
        }
        const char *row[] = {view, age, since, ent, wh, ca, d.data ? d.data : ""};
        ctl_table_row(&t, row);
        free(ent);
        free(view);
        free(since);
        free(wh);
        free(ca);
        ct_buf_free(&d);
    }
    print_indented_table(&t);
    ctl_table_free(&t);
}

typedef struct ms {
    const char *type, *at;
} ms;

/* Nanoseconds of an RFC 3339 UTC time's fraction ("...:05.25Z" -> 250000000). */
static long fraction_ns(const char *t)
{
    const char *dot = strlen(t) > 19 && t[19] == '.' ? t + 20 : NULL;
    long ns = 0;
    int digits = 0;
    for (; dot && *dot >= '0' && *dot <= '9' && digits < 9; dot++, digits++) ns = ns * 10 + (*dot - '0');
    for (; digits < 9; digits++) ns *= 10;
    return ns;
}

/* The server gives canonical UTC times ("2026-11-02T06:00:11Z", fractions only when not zero): the
 * first 19 characters sort as text, then the fraction. */
static int by_time(const void *a, const void *b)
{
    const ms *x = a, *y = b;
    int c = strncmp(x->at, y->at, 19);
    if (!c) {
        long fx = fraction_ns(x->at), fy = fraction_ns(y->at);
        c = fx < fy ? -1 : fx > fy;
    }
    return c ? c : strcmp(x->type, y->type);
}

static void print_entity(const json_t *b, char kind)
{
    const char *self_key = kind == 'o' ? "orderId" : "shipmentId";
    const char *id = json_string_value(json_object_get(b, self_key));
    char *stage = ctl_cell(json_object_get(b, "stage"));
    printf("%s %s  stage %s\n", kind == 'o' ? "order" : "shipment", id ? id : "?", stage ? stage : "unknown");
    free(stage);
    if (kind == 's') {
        const char *o = json_string_value(json_object_get(b, "orderId"));
        char *os = ctl_cell(json_object_get(b, "orderStage"));
        if (o) printf("order %s  stage %s\n", o, os ? os : "unknown");
        else printf("order: none links this shipment (an orphan)\n");
        free(os);
    }
    const char *cust = json_string_value(json_object_get(b, "customerId"));
    if (kind == 'o') {
        char *ch = ctl_cell(json_object_get(b, "channel"));
        char *pb = ctl_cell(json_object_get(b, "promisedBy"));
        printf("customer %s", cust ? cust : "unknown (no orderCreated seen)");
        if (ch) printf("  channel %s", ch);
        if (pb) printf("  promised by %s", pb);
        fputc('\n', stdout);
        free(ch);
        free(pb);
    }
    json_t *ships = json_object_get(b, "shipments");
    size_t i, nships = json_array_size(ships);
    json_t *x;
    if (nships) printf("%zu %s:", nships, ctl_plural(nships, "shipment", "shipments"));
    else printf("no shipments");
    json_array_foreach(ships, i, x) {
        char *sid = ctl_cell(json_object_get(x, "shipmentId"));
        char *st = ctl_cell(json_object_get(x, "stage"));
        printf("%s %s (%s)", i ? "," : "", sid ? sid : "?", st ? st : "unknown");
        free(sid);
        free(st);
    }
    fputc('\n', stdout);

    /* Milestones, earliest first. */
    json_t *m = json_object_get(b, "milestones");
    size_t nm = json_object_size(m), k = 0;
    ms *list = ct_calloc(nm ? nm : 1, sizeof *list);
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v) {
        if (json_is_string(v)) list[k++] = (ms){key, json_string_value(v)};
    }
    qsort(list, k, sizeof *list, by_time);
    printf(k ? "\nmilestones (earliest of each):\n" : "\nno milestones\n");
    for (size_t j = 0; j < k; j++) {
        char at[32];
        printf("  %-22s %s\n", list[j].type, ctl_fmt_time(list[j].at, at, sizeof at) ? at : list[j].at);
    }
    free(list);

    print_exceptions(json_object_get(b, "openExceptions"));

    json_t *tl = json_object_get(b, "timeline");
    size_t ntl = json_array_size(tl);
    if (ntl) printf("\ntimeline (%zu %s):\n", ntl, ctl_plural(ntl, "event", "events"));
    else printf("\ntimeline: no events\n");
    static const char *const head[] = {"TIME", "SEQ", "SOURCE", "TYPE", "EVENT", "DETAIL"};
    ctl_table t;
    ctl_table_init(&t, 6, head);
    json_array_foreach(tl, i, x) {
        json_t *ev = json_object_get(x, "event");
        const char *type = json_string_value(json_object_get(x, "type"));
        char *at = ctl_cell(json_object_get(ev, "occurredAt"));
        char *seq = ctl_cell(json_object_get(x, "seq"));
        const char *sys = json_string_value(json_object_get(json_object_get(ev, "source"), "system"));
        const char *inst = json_string_value(json_object_get(json_object_get(ev, "source"), "instance"));
        char *src = ct_sprintf("%s%s%s", sys ? sys : "?", inst ? "/" : "", inst ? inst : "");
        char *eid = ctl_cell(json_object_get(ev, "eventId"));
        char *d = event_detail(ev, type ? type : "", self_key, id ? id : "");
        const char *row[] = {at, seq, src, type, eid, d ? d : ""};
        ctl_table_row(&t, row);
        free(at);
        free(seq);
        free(src);
        free(eid);
        free(d);
    }
    if (json_array_size(tl)) print_indented_table(&t);
    ctl_table_free(&t);
}

static int entity(int argc, char **argv, char kind)
{
    static const ctl_spec ospec = {
        "towerctl order",
        "usage: towerctl order ID\n\n"
        "Why is this order where it is: its stage, customer, channel and promised date, its shipments\n"
        "with their stages, the earliest time of each milestone, the open exceptions (every view item of\n"
        "the order and its shipments, SLA breaches included), then the timeline of every event of the\n"
        "order and its shipments, oldest first: time, stream sequence, source system/instance, type,\n"
        "event id and the payload. GET /api/v1/orders/ID.",
        NULL, 0, 1, 1};
    static const ctl_spec sspec = {
        "towerctl shipment",
        "usage: towerctl shipment ID\n\n"
        "The same for a shipment: its stage and its order's, the process's open exceptions and the\n"
        "timeline (what the carrier said is there). GET /api/v1/shipments/ID.",
        NULL, 0, 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, kind == 'o' ? &ospec : &sspec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    char *e = ctl_http_escape(c.args[0]);
    char *path = ct_sprintf("/api/v1/%s/%s", kind == 'o' ? "orders" : "shipments", e);
    free(e);
    ctl_resp r;
    rc = ctl_get_json(&c, path, &r);
    free(path);
    if (rc == CTL_EXIT_OK) {
        if (c.json) ctl_print_body(&r);
        else print_entity(r.json, kind);
    }
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}

int ctl_cmd_order(int argc, char **argv) { return entity(argc, argv, 'o'); }

int ctl_cmd_shipment(int argc, char **argv) { return entity(argc, argv, 's'); }

static void print_hit(const char *what, const char *id, const char *order)
{
    printf("%s ", what);
    ctl_put_clean(stdout, id);
    if (order) {
        printf(" order ");
        ctl_put_clean(stdout, order);
    }
    fputc('\n', stdout);
}

int ctl_cmd_search(int argc, char **argv)
{
    static const ctl_spec spec = {
        "towerctl search",
        "usage: towerctl search Q\n\n"
        "Orders and shipments whose id starts with Q, and customers whose id starts with Q (with their\n"
        "orders); one per line: \"order ID\", \"shipment ID\", \"customer ID order ID\".\n"
        "GET /api/v1/search?q=Q.",
        NULL, 0, 1, 1};
    ctl_ctx c;
    int rc = ctl_start(&c, &spec, argc, argv);
    if (rc != CTL_CONTINUE) return rc;
    char *e = ctl_http_escape(c.args[0]);
    char *path = ct_sprintf("/api/v1/search?q=%s", e);
    free(e);
    ctl_resp r;
    rc = ctl_get_json(&c, path, &r);
    free(path);
    if (rc == CTL_EXIT_OK && c.json) {
        ctl_print_body(&r);
    } else if (rc == CTL_EXIT_OK) {
        size_t i, n = 0;
        json_t *x;
        json_array_foreach(json_object_get(r.json, "orders"), i, x) {
            if (json_is_string(x)) print_hit("order", json_string_value(x), NULL), n++;
        }
        json_array_foreach(json_object_get(r.json, "shipments"), i, x) {
            if (json_is_string(x)) print_hit("shipment", json_string_value(x), NULL), n++;
        }
        json_array_foreach(json_object_get(r.json, "customers"), i, x) {
            const char *cu = json_string_value(json_object_get(x, "customerId"));
            const char *o = json_string_value(json_object_get(x, "orderId"));
            if (cu) print_hit("customer", cu, o ? o : "-"), n++;
        }
        if (!n) ctl_note(&c, "nothing starts with that");
    }
    ctl_resp_free(&r);
    ctl_end(&c);
    return rc;
}
