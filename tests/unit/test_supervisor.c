/* Unit tests of towerd up's simulated supervisors' decisions (services/towerd/up_supervisor_decide.c): what they
   do to an exception in each state, determinism for a seed, and that every action makes a valid event. */
#include <jansson.h>

#include "test.h"
#include "up_supervisor_decide.h"

#define SEC 1000000000LL
static const int64_t NOW = 1796000000LL * SEC; /* 2026-11-30 */

static sup_item item(fold_view v, int acknowledged, int assigned, int snoozed)
{
    sup_item it;
    memset(&it, 0, sizeof it);
    it.view = v;
    snprintf(it.exception_id, sizeof it.exception_id, "o~SO-1~%s~1795990000000000000", fold_view_name(v));
    it.acknowledged = acknowledged;
    it.assigned = assigned;
    it.snoozed = snoozed;
    return it;
}

/* How often each action is chosen for n draws of one item. */
static void histogram(const sup_item *it, uint64_t seed, int n, int out[SUP_NACTIONS])
{
    memset(out, 0, sizeof(int) * SUP_NACTIONS);
    uint64_t rng = seed;
    for (int i = 0; i < n; i++) {
        sup_choice c;
        sup_decide(it, &rng, &c);
        T_ASSERT((unsigned)c.action < SUP_NACTIONS);
        out[c.action]++;
    }
}

static void test_what_they_do(void)
{
    int h[SUP_NACTIONS];
    const int n = 10000;
    /* A new exception: mostly acknowledged, often assigned, sometimes snoozed; never resolved outside
       anomalies, orphans and dead letters; no note alone, no reopen. */
    sup_item fresh = item(FOLD_VIEW_AWAITING_RELEASE, 0, 0, 0);
    histogram(&fresh, 7, n, h);
    T_ASSERT(h[SUP_ACK] > n / 2);
    T_ASSERT(h[SUP_ASSIGN] > n / 5 && h[SUP_ASSIGN] < h[SUP_ACK]);
    T_ASSERT(h[SUP_SNOOZE] > n / 20 && h[SUP_SNOOZE] < n / 5);
    T_EQ_INT(h[SUP_RESOLVE], 0);
    T_EQ_INT(h[SUP_NOTE], 0);
    T_EQ_INT(h[SUP_REOPEN], 0);
    /* A new dead letter, anomaly or orphan: some are resolved at once. */
    for (fold_view v = FOLD_VIEW_ORPHANS; v <= FOLD_VIEW_DEAD_LETTERS; v++) {
        sup_item dl = item(v, 0, 0, 0);
        histogram(&dl, 7, n, h);
        T_ASSERT(h[SUP_RESOLVE] > n / 10 && h[SUP_RESOLVE] < n / 3);
        T_ASSERT(h[SUP_ACK] > h[SUP_RESOLVE]);
    }
    /* Acknowledged, nobody has it: assigned often, never acknowledged again. */
    sup_item acked = item(FOLD_VIEW_BLOCKED, 1, 0, 0);
    histogram(&acked, 7, n, h);
    T_EQ_INT(h[SUP_ACK], 0);
    T_ASSERT(h[SUP_ASSIGN] > n / 4);
    T_ASSERT(h[SUP_NOTE] > 0 && h[SUP_SNOOZE] > 0);
    T_EQ_INT(h[SUP_RESOLVE], 0);
    /* Assigned already: notes, snoozes, and resolutions where they may resolve; no reassignment. */
    sup_item owned = item(FOLD_VIEW_ANOMALIES, 1, 1, 0);
    histogram(&owned, 7, n, h);
    T_EQ_INT(h[SUP_ACK], 0);
    T_EQ_INT(h[SUP_ASSIGN], 0);
    T_ASSERT(h[SUP_RESOLVE] > n / 2);
    T_ASSERT(h[SUP_NOTE] > 0 && h[SUP_SNOOZE] > 0);
    /* Snoozed: a note only. */
    sup_item snoozed = item(FOLD_VIEW_MISSING_POD, 1, 1, 1);
    histogram(&snoozed, 7, n, h);
    T_EQ_INT(h[SUP_NOTE], n);
}

static void test_choices_are_whole(void)
{
    uint64_t rng = 3;
    sup_item its[] = {item(FOLD_VIEW_DEAD_LETTERS, 0, 0, 0), item(FOLD_VIEW_ORPHANS, 1, 0, 0),
                      item(FOLD_VIEW_SLA_BREACHES, 0, 0, 0)};
    for (int i = 0; i < 3000; i++) {
        sup_choice c;
        sup_decide(&its[i % 3], &rng, &c);
        int person = 0;
        for (int k = 0; k < SUP_NPEOPLE; k++) person |= c.actor && strcmp(c.actor, sup_people[k]) == 0;
        T_ASSERT(person);
        if (c.action == SUP_ASSIGN) T_ASSERT(c.assignee && *c.assignee);
        if (c.action == SUP_SNOOZE || c.action == SUP_NOTE || c.action == SUP_RESOLVE) T_ASSERT(c.note && *c.note);
        if (c.action == SUP_RESOLVE)
            T_ASSERT(strcmp(c.resolution, "NOT_AN_ISSUE") == 0 || strcmp(c.resolution, "OTHER") == 0);
    }
    sup_choice r;
    sup_decide_reopen(&rng, &r);
    T_EQ_INT(r.action, SUP_REOPEN);
    T_ASSERT(r.actor && r.note);
}

static void test_deterministic(void)
{
    sup_item its[] = {item(FOLD_VIEW_DEAD_LETTERS, 0, 0, 0), item(FOLD_VIEW_BLOCKED, 1, 0, 0),
                      item(FOLD_VIEW_PENDING_ROUTE, 0, 0, 0)};
    char a[4096] = "", b[4096] = "", c[4096] = "";
    char *outs[3] = {a, b, c};
    uint64_t seeds[3] = {11, 11, 12};
    for (int s = 0; s < 3; s++) {
        uint64_t rng = seeds[s];
        size_t len = 0;
        for (int i = 0; i < 100; i++) {
            sup_choice ch;
            sup_decide(&its[i % 3], &rng, &ch);
            len += (size_t)snprintf(outs[s] + len, 4096 - len, "%d%c%c", (int)ch.action, ch.actor[0],
                                    ch.assignee ? ch.assignee[0] : '-');
        }
    }
    T_EQ_STR(a, b);
    T_ASSERT(strcmp(a, c) != 0);
    uint64_t r1 = 5, r2 = 5;
    for (int i = 0; i < 10; i++) T_ASSERT(sup_rand(&r1) == sup_rand(&r2));
    for (int i = 0; i < 1000; i++) T_ASSERT(sup_below(&r1, 7) < 7);
}

static void test_events_validate(void)
{
    /* A real exception id, as the store builds it. */
    Tower__V1__Timestamp since = TOWER__V1__TIMESTAMP__INIT;
    since.has_seconds = 1;
    since.seconds = 1795990000;
    char exid[EVT_MAX_EXID + 1];
    T_ASSERT(evt_exid_build(exid, sizeof exid, "o:SO-9|blocked|INVENTORY|SKU-1", &since) > 0);
    sup_choice all[SUP_NACTIONS] = {
        {SUP_ACK, "dana", NULL, NULL, NULL},
        {SUP_ASSIGN, "ravi", "mei", NULL, NULL},
        {SUP_SNOOZE, "mei", NULL, "carrier says tomorrow morning", NULL},
        {SUP_NOTE, "lukas", NULL, "chased the carrier again", NULL},
        {SUP_RESOLVE, "sofia", NULL, "known upstream glitch, nothing to do", "NOT_AN_ISSUE"},
        {SUP_REOPEN, "dana", NULL, "seen again: reopening", NULL},
    };
    for (int i = 0; i < SUP_NACTIONS; i++) {
        json_t *j = sup_event_json(exid, &all[i], NOW, 42);
        evt_event *ev = NULL;
        evt_error err;
        ct_status st = evt_from_json(&ev, j, &err);
        T_EQ_INT(st, CT_OK);
        if (st != CT_OK) {
            fprintf(stderr, "  %s: %s\n", sup_action_name(all[i].action), err.message);
            json_decref(j);
            continue;
        }
        T_ASSERT(evt_is_action(ev));
        T_EQ_STR(evt_type_name(ev), sup_action_payload(all[i].action));
        evt_action a = evt_action_of(ev);
        T_EQ_STR(a.exception_id, exid);
        T_EQ_STR(a.actor, all[i].actor);
        if (all[i].note) T_EQ_STR(a.note, all[i].note);
        T_EQ_STR(ev->source->system, "tower");
        T_EQ_STR(ev->source->instance, "supervisor-sim");
        T_EQ_INT(ev->occurred_at->seconds, NOW / SEC);
        T_ASSERT(strncmp(ev->event_id, "sup-", 4) == 0);
        if (all[i].action == SUP_SNOOZE) T_EQ_INT(ev->exception_snoozed->until->seconds, NOW / SEC + 3600);
        if (all[i].action == SUP_ASSIGN) T_EQ_STR(ev->exception_assigned->assignee, "mei");
        if (all[i].action == SUP_RESOLVE)
            T_EQ_INT(ev->exception_resolved->resolution, TOWER__V1__EXCEPTION_RESOLVED__RESOLUTION__NOT_AN_ISSUE);
        /* The same inputs give the same id; another serial or time another. */
        json_t *same = sup_event_json(exid, &all[i], NOW, 42), *other = sup_event_json(exid, &all[i], NOW, 43),
               *later = sup_event_json(exid, &all[i], NOW + 1, 42);
        T_EQ_STR(json_string_value(json_object_get(same, "eventId")), ev->event_id);
        T_ASSERT(strcmp(json_string_value(json_object_get(other, "eventId")), ev->event_id) != 0);
        T_ASSERT(strcmp(json_string_value(json_object_get(later, "eventId")), ev->event_id) != 0);
        T_ASSERT(json_equal(same, j));
        json_decref(same);
        json_decref(other);
        json_decref(later);
        json_decref(j);
        evt_free(ev);
    }
}

static void test_item_of(void)
{
    Tower__V1__ViewItem it = TOWER__V1__VIEW_ITEM__INIT;
    Tower__V1__Timestamp since = TOWER__V1__TIMESTAMP__INIT, ack = TOWER__V1__TIMESTAMP__INIT,
                         until = TOWER__V1__TIMESTAMP__INIT;
    since.has_seconds = 1;
    since.seconds = 1795990000;
    it.view = "pending_route";
    it.key = "s:SH-1|pending_route";
    it.since = &since;
    sup_item si;
    /* No exceptionId on the item (a store of before v1.1): built from key and since. */
    T_EQ_INT(sup_item_of(&it, NOW, &si), 0);
    char want[EVT_MAX_EXID + 1];
    evt_exid_build(want, sizeof want, it.key, &since);
    T_EQ_STR(si.exception_id, want);
    T_EQ_INT(si.view, FOLD_VIEW_PENDING_ROUTE);
    T_EQ_INT(si.acknowledged + si.assigned + si.snoozed, 0);
    /* The item's own id wins; the lifecycle fields read as of now. */
    it.exception_id = "s~SH-1~pending_route~1795990000000000000";
    ack.has_seconds = 1;
    ack.seconds = 1795995000;
    it.acknowledged_at = &ack;
    it.assignee = "dana";
    until.has_seconds = 1;
    until.seconds = NOW / SEC + 60;
    it.snoozed_until = &until;
    T_EQ_INT(sup_item_of(&it, NOW, &si), 0);
    T_EQ_STR(si.exception_id, "s~SH-1~pending_route~1795990000000000000");
    T_EQ_INT(si.acknowledged, 1);
    T_EQ_INT(si.assigned, 1);
    T_EQ_INT(si.snoozed, 1);
    T_EQ_INT(sup_item_of(&it, NOW + 61 * SEC, &si), 0);
    T_EQ_INT(si.snoozed, 0); /* the snooze ran out */
    /* No view, or no key and no id: nothing to act on. */
    it.exception_id = NULL;
    it.key = NULL;
    T_EQ_INT(sup_item_of(&it, NOW, &si), -1);
    it.view = "nope";
    it.key = "s:SH-1|pending_route";
    T_EQ_INT(sup_item_of(&it, NOW, &si), -1);
}

int main(void)
{
    T_RUN(test_what_they_do);
    T_RUN(test_choices_are_whole);
    T_RUN(test_deterministic);
    T_RUN(test_events_validate);
    T_RUN(test_item_of);
    return t_done();
}
