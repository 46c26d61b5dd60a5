/* Exception changes (docs/outbound.md "Exception changes"), pure: what a destination last knew of an entity's
 * exceptions against its open items now, the destination's filters and the webhook-id of a change. */
#include "relay.h"

#include <stdio.h>
#include <string.h>

#define GONE_KEEP 32 /* closed exception ids remembered per entity (a reopen's opening count) */

static const char *const change_names[] = {"opened", "acknowledged", "breached", "resolved"};

const char *relay_exc_change_name(unsigned bit)
{
    for (unsigned i = 0; i < 4; i++)
        if (bit == 1u << i) return change_names[i];
    return NULL;
}

unsigned relay_exc_change_bit(const char *name)
{
    for (unsigned i = 0; i < 4; i++)
        if (name && !strcmp(name, change_names[i])) return 1u << i;
    return 0;
}

static void add_change(json_t *changes, unsigned bit, const char *exid, json_int_t n, json_t *item)
{
    json_array_append_new(changes, json_pack("{s:s, s:s, s:I, s:O}", "change", relay_exc_change_name(bit),
                                             "exceptionId", exid, "n", n, "item", item));
}

/* Whether the item's slaDueAt is at or before at_ns. */
static int breached_at(const json_t *item, int64_t at_ns)
{
    const char *due = json_string_value(json_object_get(item, "slaDueAt"));
    int64_t s;
    int32_t ns;
    if (!due || evt_time_parse(due, &s, &ns) != 0) return 0;
    return s * 1000000000LL + ns <= at_ns;
}

/* One open item now: its record in the new knowledge, and its changes. */
static void diff_item(const json_t *kopen, const json_t *kgone, json_t *item, int64_t at_ns, json_t *nopen,
                      json_t *changes)
{
    const char *exid = json_string_value(json_object_get(item, "exceptionId"));
    if (!exid || json_object_get(nopen, exid)) return;
    const json_t *was = json_object_get(kopen, exid);
    json_int_t n = was ? json_integer_value(json_object_get(was, "n")) : json_integer_value(json_object_get(kgone, exid)) + 1;
    int ack = json_object_get(item, "acknowledgedAt") != NULL, breach = breached_at(item, at_ns);
    int was_ack = was && json_is_true(json_object_get(was, "ack"));
    int was_breach = was && json_is_true(json_object_get(was, "breached"));
    if (!was) add_change(changes, RELAY_EXC_OPENED, exid, n, item);
    if (ack && !was_ack) add_change(changes, RELAY_EXC_ACKNOWLEDGED, exid, n, item);
    if (breach && !was_breach) add_change(changes, RELAY_EXC_BREACHED, exid, n, item);
    json_object_set_new(nopen, exid, json_pack("{s:O, s:b, s:b, s:I}", "item", item, "ack", ack || was_ack,
                                               "breached", breach || was_breach, "n", n));
}

/* The closed ids remembered: the old ones (but those open again), then the newly closed, the oldest dropped. */
static json_t *gone_after(const json_t *kgone, const json_t *nopen, json_t *closed)
{
    json_t *all = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)kgone, k, v) if (!json_object_get(nopen, k)) json_object_set(all, k, v);
    json_object_foreach(closed, k, v) json_object_set(all, k, v);
    json_t *out = json_object();
    size_t skip = json_object_size(all) > GONE_KEEP ? json_object_size(all) - GONE_KEEP : 0, i = 0;
    json_object_foreach(all, k, v) if (i++ >= skip) json_object_set(out, k, v);
    json_decref(all);
    return out;
}

json_t *relay_exc_diff(const json_t *known, const json_t *current, int64_t at_ns, json_t *changes)
{
    const json_t *kopen = json_object_get(known, "open"), *kgone = json_object_get(known, "gone");
    json_t *nopen = json_object(), *closed = json_object();
    size_t i;
    json_t *item;
    json_array_foreach((json_t *)current, i, item)
        if (json_is_object(item)) diff_item(kopen, kgone, item, at_ns, nopen, changes);
    const char *exid;
    json_t *was;
    json_object_foreach((json_t *)kopen, exid, was) {
        if (json_object_get(nopen, exid)) continue;
        json_int_t n = json_integer_value(json_object_get(was, "n"));
        add_change(changes, RELAY_EXC_RESOLVED, exid, n, json_object_get(was, "item"));
        json_object_set_new(closed, exid, json_integer(n));
    }
    json_t *gone = gone_after(kgone, nopen, closed);
    json_decref(closed);
    return json_pack("{s:o, s:o}", "open", nopen, "gone", gone);
}

static int listed(char *const *v, size_t n, const char *s)
{
    if (!n) return 1;
    for (size_t i = 0; s && i < n; i++)
        if (!strcmp(v[i], s)) return 1;
    return 0;
}

int relay_exc_wants(const relay_dest *d, const json_t *change, const char *customer)
{
    const json_t *item = json_object_get(change, "item");
    const char *str = json_string_value(json_object_get(change, "change"));
    return (d->exceptions & relay_exc_change_bit(str)) &&
           listed(d->views, d->n_views, json_string_value(json_object_get(item, "view"))) &&
           listed(d->warehouses, d->n_warehouses, json_string_value(json_object_get(item, "warehouseId"))) &&
           listed(d->carriers, d->n_carriers, json_string_value(json_object_get(item, "carrierId"))) &&
           listed(d->customers, d->n_customers, customer);
}

void relay_exc_id(const relay_dest *d, const json_t *change, char *out, size_t cap)
{
    const char *exid = json_string_value(json_object_get(change, "exceptionId"));
    const char *c = json_string_value(json_object_get(change, "change"));
    json_int_t n = json_integer_value(json_object_get(change, "n"));
    if (n > 1) snprintf(out, cap, "%s.%s-%lld.%s", exid ? exid : "", c ? c : "", (long long)n, d->name);
    else snprintf(out, cap, "%s.%s.%s", exid ? exid : "", c ? c : "", d->name);
}
