/* The simulated supervisors' decisions, pure: which action for which exception, and its event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "up_supervisor_decide.h"

const char *const sup_people[SUP_NPEOPLE] = {"dana", "ravi", "mei", "lukas", "sofia"};

static const char *const ack_notes[] = {
    "looking into it",
    "on it: called the warehouse",
    "seen; waiting for the carrier's answer",
};
static const char *const snooze_notes[] = {
    "carrier says tomorrow morning",
    "waiting for the ERP batch to rerun",
    "customer asked to hold it for an hour",
    "warehouse team will recount the bin",
};
static const char *const plain_notes[] = {
    "chased the carrier again",
    "escalated to the site lead",
    "ERP support ticket opened",
    "warehouse confirmed, fix in progress",
    "customer informed of the delay",
    "checked the route plan: a stop is missing",
};
static const char *const resolve_notes[] = {
    "known upstream glitch, nothing to do",
    "duplicate of a report already handled",
    "checked with the source system: data is fine",
    "handled by phone with the site",
};
static const char *const reopen_notes[] = {
    "seen again: reopening",
    "the site says it is not fixed after all",
};

#define PICK(rng, arr) (arr)[sup_below((rng), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))]

uint64_t sup_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint32_t sup_below(uint64_t *state, uint32_t n) { return n ? (uint32_t)(sup_rand(state) % n) : 0; }

const char *sup_action_name(sup_action a)
{
    static const char *const names[SUP_NACTIONS] = {"ack", "assign", "snooze", "note", "resolve", "reopen"};
    return (unsigned)a < SUP_NACTIONS ? names[a] : "?";
}

const char *sup_action_payload(sup_action a)
{
    static const char *const names[SUP_NACTIONS] = {"exceptionAcknowledged", "exceptionAssigned",
                                                    "exceptionSnoozed",      "exceptionNoted",
                                                    "exceptionResolved",     "exceptionReopened"};
    return (unsigned)a < SUP_NACTIONS ? names[a] : "";
}

int sup_view_resolvable(fold_view v)
{
    return v == FOLD_VIEW_ANOMALIES || v == FOLD_VIEW_ORPHANS || v == FOLD_VIEW_DEAD_LETTERS;
}

static int64_t ts_ns(const Tower__V1__Timestamp *t) { return t ? t->seconds * 1000000000LL + t->nanos : 0; }

int sup_item_of(const Tower__V1__ViewItem *it, int64_t now_ns, sup_item *out)
{
    memset(out, 0, sizeof *out);
    if (!it->view || fold_view_parse(it->view, &out->view) != 0) return -1;
    if (it->exception_id && *it->exception_id && strlen(it->exception_id) <= EVT_MAX_EXID) {
        memcpy(out->exception_id, it->exception_id, strlen(it->exception_id) + 1);
    } else if (!it->key || !evt_exid_build(out->exception_id, sizeof out->exception_id, it->key, it->since)) {
        return -1;
    }
    out->acknowledged = it->acknowledged_at != NULL;
    out->assigned = it->assignee && *it->assignee;
    out->snoozed = it->snoozed_until && ts_ns(it->snoozed_until) > now_ns;
    return 0;
}

static void choose(sup_choice *c, sup_action a, uint64_t *rng)
{
    c->action = a;
    switch (a) {
    case SUP_ACK:
        /* Two acknowledgements in three come without a note. */
        c->note = sup_below(rng, 3) == 0 ? PICK(rng, ack_notes) : NULL;
        break;
    case SUP_ASSIGN:
        c->assignee = PICK(rng, sup_people);
        break;
    case SUP_SNOOZE:
        c->note = PICK(rng, snooze_notes);
        break;
    case SUP_NOTE:
        c->note = PICK(rng, plain_notes);
        break;
    case SUP_RESOLVE:
        c->resolution = sup_below(rng, 3) ? "NOT_AN_ISSUE" : "OTHER";
        c->note = PICK(rng, resolve_notes);
        break;
    case SUP_REOPEN:
        c->note = PICK(rng, reopen_notes);
        break;
    case SUP_NACTIONS:
        break;
    }
}

void sup_decide(const sup_item *it, uint64_t *rng, sup_choice *out)
{
    memset(out, 0, sizeof *out);
    out->actor = PICK(rng, sup_people);
    uint32_t d = sup_below(rng, 100);
    int resolvable = sup_view_resolvable(it->view);
    sup_action a;
    if (it->snoozed) {
        a = SUP_NOTE;
    } else if (!it->acknowledged) {
        if (resolvable && d < 20) a = SUP_RESOLVE;
        else if (d < 60) a = SUP_ACK;
        else if (d < 90) a = SUP_ASSIGN;
        else a = SUP_SNOOZE;
    } else if (!it->assigned && d < 40) {
        a = SUP_ASSIGN;
    } else if (resolvable && d < 65) {
        a = SUP_RESOLVE;
    } else if (d < 80) {
        a = SUP_SNOOZE;
    } else {
        a = SUP_NOTE;
    }
    choose(out, a, rng);
}

void sup_decide_reopen(uint64_t *rng, sup_choice *out)
{
    memset(out, 0, sizeof *out);
    out->actor = PICK(rng, sup_people);
    choose(out, SUP_REOPEN, rng);
}

static void time_str(int64_t ns, char *buf)
{
    int64_t s = ns / 1000000000LL;
    int32_t n = (int32_t)(ns % 1000000000LL);
    if (n < 0) {
        n += 1000000000;
        s--;
    }
    evt_time_format(s, n, buf);
}

json_t *sup_event_json(const char *exception_id, const sup_choice *c, int64_t now_ns, uint64_t serial)
{
    char when[48], id[64];
    time_str(now_ns, when);
    /* The id hashes what makes the action this one: the same inputs give the same id (and the same content,
       so a copy is a duplicate, not a conflict); another time or serial another id. */
    char *basis = ct_sprintf("%s|%s|%lld|%llu|%s", exception_id, sup_action_name(c->action), (long long)now_ns,
                             (unsigned long long)serial, c->actor ? c->actor : "");
    snprintf(id, sizeof id, "sup-%s-%016llx", sup_action_name(c->action),
             (unsigned long long)ct_hash64(basis, strlen(basis)));
    free(basis);
    json_t *e = json_object(), *src = json_object(), *p = json_object();
    json_object_set_new(e, "eventId", json_string(id));
    json_object_set_new(e, "occurredAt", json_string(when));
    json_object_set_new(src, "system", json_string("tower"));
    json_object_set_new(src, "instance", json_string("supervisor-sim"));
    json_object_set_new(e, "source", src);
    json_object_set_new(p, "exceptionId", json_string(exception_id));
    json_object_set_new(p, "actor", json_string(c->actor ? c->actor : sup_people[0]));
    if (c->note) json_object_set_new(p, "note", json_string(c->note));
    if (c->action == SUP_ASSIGN && c->assignee) json_object_set_new(p, "assignee", json_string(c->assignee));
    if (c->action == SUP_RESOLVE)
        json_object_set_new(p, "resolution", json_string(c->resolution ? c->resolution : "OTHER"));
    if (c->action == SUP_SNOOZE) {
        char until[48];
        time_str(now_ns + SUP_SNOOZE_NS, until);
        json_object_set_new(p, "until", json_string(until));
    }
    json_object_set_new(e, sup_action_payload(c->action), p);
    return e;
}
