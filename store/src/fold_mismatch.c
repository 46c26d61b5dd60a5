/* The mismatches view (towerd reconcile --publish, docs/reconcile.md): per entity, system and check, an item
 * while the latest of mismatchFound / mismatchCleared is mismatchFound. Pure, like the rest of the fold. */
#include "fold_int.h"

#include <stdlib.h>
#include <string.h>

typedef const evt_event *ev;

/* The facts of one (system, check) of an entity: its events, to find the latest and the run of founds. */
typedef struct mm_group {
    const char *system, *check;
    ev latest;        /* latest found or cleared */
    ev cleared;       /* latest cleared */
} mm_group;

int fold__is_mismatch(const evt_event *e)
{
    return e->payload_case == TOWER__V1__EVENT__PAYLOAD_MISMATCH_FOUND ||
           e->payload_case == TOWER__V1__EVENT__PAYLOAD_MISMATCH_CLEARED;
}

static const char *sys_of(ev e)
{
    return e->payload_case == TOWER__V1__EVENT__PAYLOAD_MISMATCH_FOUND ? e->mismatch_found->system
                                                                        : e->mismatch_cleared->system;
}

static const char *check_of(ev e)
{
    return e->payload_case == TOWER__V1__EVENT__PAYLOAD_MISMATCH_FOUND ? e->mismatch_found->check
                                                                        : e->mismatch_cleared->check;
}

/* Does the event belong to this entity: a shipment's when it names the shipment, else the order's. */
static int belongs(ev e, char kind, const char *id)
{
    if (!fold__is_mismatch(e) || !sys_of(e) || !check_of(e)) return 0;
    if (kind == 's') return e->shipment_id && strcmp(e->shipment_id, id) == 0;
    return !e->shipment_id;
}

static mm_group *group_of(mm_group **v, size_t *n, ev e)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].system, sys_of(e)) && !strcmp((*v)[i].check, check_of(e))) return &(*v)[i];
    *v = ct_realloc(*v, (*n + 1) * sizeof **v);
    (*v)[*n] = (mm_group){sys_of(e), check_of(e), NULL, NULL};
    return &(*v)[(*n)++];
}

/* since: the earliest found after the latest cleared (the start of the current run of founds). */
static ev since_of(const fold_entity *ent, char kind, const mm_group *g)
{
    ev first = NULL;
    for (size_t i = 0; i < ent->n_events; i++) {
        ev e = ent->events[i];
        if (!belongs(e, kind, ent->id) || e->payload_case != TOWER__V1__EVENT__PAYLOAD_MISMATCH_FOUND) continue;
        if (strcmp(sys_of(e), g->system) || strcmp(check_of(e), g->check)) continue;
        if (g->cleared && fold_event_cmp(e, g->cleared) <= 0) continue;
        if (!first || fold_event_cmp(e, first) < 0) first = e;
    }
    return first;
}

/* "system|check", hashed when long (item keys stay within LMDB's limit); a new string. */
static char *sub_of(const mm_group *g)
{
    char *s = ct_sprintf("%s|%s", g->system, g->check);
    if (strlen(s) <= 96) return s;
    char *h = ct_sprintf("%s|#%016llx", g->system, (unsigned long long)ct_hash64(g->check, strlen(g->check)));
    free(s);
    return h;
}

static void put_item(const fold_entity *ent, char kind, const char *oid, const mm_group *g, const char *wh,
                     const char *ca, fold_result *out)
{
    ev since = since_of(ent, kind, g);
    if (!since) return; /* cannot happen: the latest is a found */
    char *sub = sub_of(g);
    fold_item *it = kind == 'o' ? fold__order_item(out, FOLD_VIEW_MISMATCHES, ent->id, sub, since, wh, ca)
                                : fold__ship_item(out, FOLD_VIEW_MISMATCHES, ent->id, oid, sub, since, wh, ca);
    free(sub);
    const Tower__V1__MismatchFound *f = g->latest->mismatch_found;
    it->pb.system = f->system;
    it->pb.check = f->check;
    it->pb.theirs = f->theirs;
    it->pb.ours = f->ours;
    it->pb.snapshot = f->snapshot;
    it->pb.message = f->message;
    it->pb.event_id = g->latest->event_id;
}

void fold__mismatches(const fold_entity *ent, char kind, const char *oid, const char *wh, const char *ca,
                      fold_result *out)
{
    mm_group *v = NULL;
    size_t n = 0;
    for (size_t i = 0; i < ent->n_events; i++) {
        ev e = ent->events[i];
        if (!belongs(e, kind, ent->id)) continue;
        mm_group *g = group_of(&v, &n, e);
        if (!g->latest || fold_event_cmp(e, g->latest) > 0) g->latest = e;
        if (e->payload_case == TOWER__V1__EVENT__PAYLOAD_MISMATCH_CLEARED &&
            (!g->cleared || fold_event_cmp(e, g->cleared) > 0))
            g->cleared = e;
    }
    for (size_t i = 0; i < n; i++)
        if (v[i].latest->payload_case == TOWER__V1__EVENT__PAYLOAD_MISMATCH_FOUND)
            put_item(ent, kind, oid, &v[i], wh, ca, out);
    free(v);
}
