/* Exception ids (contract v1.1): built from a view item's key and since, parsed back to what an action
 * acts on. Pure: no clock, no store. */
#include "evt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The views an exception id may name; fold.h's FOLD_VIEW_MAP lists the same (test_views checks it). */
static const char *const views[] = {"awaiting_release", "blocked",   "pending_route",
                                    "missing_pod",      "posting_failed", "orphans",
                                    "anomalies",        "dead_letters",   "sla_breaches",
                                    "at_risk", "mismatches"};

int evt_exid_view_known(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        if (strlen(views[i]) == len && memcmp(views[i], name, len) == 0) return 1;
    return 0;
}

static int id_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
}

/* A sub-key part kept as is when it uses only id characters (its '|' become '~'); else its hash. */
static size_t put_part(char *out, size_t o, size_t cap, const char *part)
{
    int plain = *part != '\0' && strlen(part) <= EVT_MAX_ID * 2;
    for (const char *p = part; plain && *p; p++) plain = id_char(*p) || *p == '|';
    if (plain) {
        for (const char *p = part; *p && o + 1 < cap; p++) out[o++] = *p == '|' ? '~' : *p;
    } else {
        char h[24];
        snprintf(h, sizeof h, "h-%016llx", (unsigned long long)ct_hash64(part, strlen(part)));
        for (const char *p = h; *p && o + 1 < cap; p++) out[o++] = *p;
    }
    out[o < cap ? o : cap - 1] = '\0';
    return o;
}

size_t evt_exid_build(char *out, size_t cap, const char *key, const Tower__V1__Timestamp *since)
{
    if (cap == 0) return 0;
    out[0] = '\0';
    /* key: "<k>:<entity>|<view>[|<sub>]"; the entity and view never hold '|'. */
    const char *bar = key ? strchr(key, '|') : NULL;
    if (!key || strlen(key) < 4 || key[1] != ':' || !bar) return 0;
    const char *view = bar + 1, *bar2 = strchr(view, '|');
    size_t o = 0;
    const char *ent = key + 2;
    if (key[0] == 'd')
        while (*ent == '0' && ent + 1 < bar) ent++; /* "d:00000000000000000042|": the sequence, 42 */
    int n = snprintf(out, cap, "%c~%.*s~%.*s", key[0], (int)(bar - ent), ent,
                     (int)(bar2 ? (size_t)(bar2 - view) : strlen(view)), view);
    if (n < 0 || (size_t)n >= cap) return out[0] = '\0', 0;
    o = (size_t)n;
    if (bar2) {
        if (o + 1 < cap) out[o++] = '~';
        o = put_part(out, o, cap, bar2 + 1);
    }
    if (key[0] != 'd') {
        int64_t ns = since ? since->seconds * 1000000000LL + since->nanos : 0;
        n = snprintf(out + o, cap - o, "~%lld", (long long)ns);
        if (n < 0 || (size_t)n >= cap - o) return out[0] = '\0', 0;
        o += (size_t)n;
    }
    return o;
}

static int digits(const char *s, size_t len)
{
    if (len == 0 || len > 19) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

int evt_exid_parse(const char *id, evt_exid *out, const char **why)
{
    const char *dummy;
    if (!why) why = &dummy;
    memset(out, 0, sizeof *out);
    size_t len = id ? strlen(id) : 0;
    if (len == 0) return *why = "is empty", -1;
    if (len > EVT_MAX_EXID) return *why = "is over 256 characters", -1;
    for (size_t i = 0; i < len; i++)
        if (!id_char(id[i]) && id[i] != '~') return *why = "has a character outside [A-Za-z0-9._:~-]", -1;
    if ((id[0] != 'o' && id[0] != 's' && id[0] != 'd') || id[1] != '~')
        return *why = "must start with o~, s~ or d~ (an order's, a shipment's or a dead letter's exception)", -1;
    out->kind = id[0];
    const char *ent = id + 2, *t1 = strchr(ent, '~');
    if (!t1 || t1 == ent || (size_t)(t1 - ent) > EVT_MAX_ID) return *why = "names no entity id of 1-64 characters", -1;
    memcpy(out->entity, ent, (size_t)(t1 - ent));
    const char *view = t1 + 1, *t2 = strchr(view, '~');
    size_t vl = t2 ? (size_t)(t2 - view) : strlen(view);
    if (!evt_exid_view_known(view, vl)) return *why = "names no known view after the entity id", -1;
    memcpy(out->view, view, vl);
    if (out->kind == 'd') {
        if (t2 || vl != strlen("dead_letters") || memcmp(view, "dead_letters", vl) != 0)
            return *why = "of a dead letter must be d~<seq>~dead_letters", -1;
        if (!digits(out->entity, strlen(out->entity)) || out->entity[0] == '0')
            return *why = "of a dead letter must name its sequence (digits)", -1;
        return 0;
    }
    if (!t2 || memcmp(out->view, "dead_letters", 12) == 0)
        return *why = "must end with ~<since in ns> (an order's or shipment's exception)", -1;
    const char *last = strrchr(id, '~') + 1;
    if (!digits(last, strlen(last))) return *why = "must end with ~<since in ns> (digits)", -1;
    if (!id_char(out->entity[0])) return *why = "names no entity id", -1;
    errno = 0;
    long long ns = strtoll(last, NULL, 10);
    if (errno == ERANGE) return *why = "has a since beyond the 64-bit range", -1;
    out->since_ns = ns;
    return 0;
}

const char *evt_defined_code(const evt_event *e)
{
    if (!e) return NULL;
    switch (e->payload_case) {
    case TOWER__V1__EVENT__PAYLOAD_WAREHOUSE_DEFINED:
        return e->warehouse_defined && e->warehouse_defined->warehouse_id
                   ? e->warehouse_defined->warehouse_id
                   : e->warehouse_id;
    case TOWER__V1__EVENT__PAYLOAD_CARRIER_DEFINED:
        return e->carrier_defined && e->carrier_defined->carrier_id ? e->carrier_defined->carrier_id
                                                                    : e->carrier_id;
    case TOWER__V1__EVENT__PAYLOAD_SKU_DEFINED:
        return e->sku_defined ? e->sku_defined->sku : NULL;
    default: return NULL;
    }
}

int evt_is_action(const evt_event *e)
{
    return e && e->payload_case >= TOWER__V1__EVENT__PAYLOAD_EXCEPTION_ACKNOWLEDGED &&
           e->payload_case <= TOWER__V1__EVENT__PAYLOAD_EXCEPTION_REOPENED;
}

evt_action evt_action_of(const evt_event *e)
{
    evt_action a = {NULL, NULL, NULL};
    if (!e) return a;
#define ACT(c, m)                                                                                          \
    case TOWER__V1__EVENT__PAYLOAD_##c:                                                                    \
        if (e->m) a = (evt_action){e->m->exception_id, e->m->actor, e->m->note};                           \
        break;
    switch (e->payload_case) {
        ACT(EXCEPTION_ACKNOWLEDGED, exception_acknowledged)
        ACT(EXCEPTION_ASSIGNED, exception_assigned)
        ACT(EXCEPTION_SNOOZED, exception_snoozed)
        ACT(EXCEPTION_NOTED, exception_noted)
        ACT(EXCEPTION_RESOLVED, exception_resolved)
        ACT(EXCEPTION_REOPENED, exception_reopened)
    default: break;
    }
#undef ACT
    return a;
}
