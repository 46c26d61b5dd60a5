/* Unit tests of the exception lifecycle (docs/exceptions.md) on a real store: ids, every action, ordering,
 * snoozes across now, resolve and reopen, actions before their instance, closing, dead letters, filters. */
#include "fx.h"

#define EV(id, at, sys, rest)                                                                       \
    "{\"eventId\":\"" id "\",\"occurredAt\":\"" at "\",\"source\":{\"system\":\"" sys "\"}," rest "}\n"
#define ACT(id, at, type, exid, rest)                                                               \
    EV(id, at, "tower", "\"" type "\":{\"exceptionId\":\"" exid "\",\"actor\":\"ana\"" rest "}")

#define T0 "2026-11-27T08:00:00Z"
#define T1 "2026-11-27T09:00:00Z"
#define T2 "2026-11-27T10:00:00Z"
#define T3 "2026-11-27T11:00:00Z"
#define T4 "2026-11-27T12:00:00Z"
/* The exception id of O1's hold held at T1 (2026-11-27T09:00:00Z = 1795770000 s). */
#define HOLD1 "o~O1~blocked~ORDER_HOLD~1795770000000000000"
#define HOLD3 "o~O1~blocked~ORDER_HOLD~1795777200000000000"

static int64_t ns_of(const char *t)
{
    int64_t s = 0;
    int32_t n = 0;
    evt_time_parse(t, &s, &n);
    return s * 1000000000LL + n;
}

static void ids(void)
{
    char buf[EVT_MAX_EXID + 1];
    Tower__V1__Timestamp t = TOWER__V1__TIMESTAMP__INIT;
    t.seconds = 1795770000;
    t.nanos = 5;
    evt_exid_build(buf, sizeof buf, "o:O1|blocked|ORDER_HOLD", &t);
    T_EQ_STR(buf, "o~O1~blocked~ORDER_HOLD~1795770000000000005");
    evt_exid_build(buf, sizeof buf, "o:O1|blocked|INVENTORY|SKU-9", &t);
    T_EQ_STR(buf, "o~O1~blocked~INVENTORY~SKU-9~1795770000000000005");
    evt_exid_build(buf, sizeof buf, "s:S1|pending_route", &t);
    T_EQ_STR(buf, "s~S1~pending_route~1795770000000000005");
    evt_exid_build(buf, sizeof buf, "d:00000000000000000042|dead_letters", &t);
    T_EQ_STR(buf, "d~42~dead_letters");
    /* A sub part with other characters (a sku with a space) is hashed: still URL-safe and parseable. */
    evt_exid_build(buf, sizeof buf, "o:O1|blocked|INVENTORY|blue shirt/XL", &t);
    T_ASSERT(strstr(buf, "~h-") != NULL && strchr(buf, ' ') == NULL && strchr(buf, '/') == NULL);
    evt_exid x;
    T_EQ_INT(evt_exid_parse(buf, &x, NULL), 0);
    T_EQ_INT(evt_exid_parse("o~O1~blocked~ORDER_HOLD~1795770000000000005", &x, NULL), 0);
    T_EQ_INT(x.kind, 'o');
    T_EQ_STR(x.entity, "O1");
    T_EQ_STR(x.view, "blocked");
    T_ASSERT(x.since_ns == 1795770000000000005LL);
    T_EQ_INT(evt_exid_parse("d~42~dead_letters", &x, NULL), 0);
    T_EQ_STR(x.entity, "42");
    const char *bad[] = {"", "x~O1~blocked~1", "o~~blocked~1", "o~O1~nope~1", "o~O1~blocked", "o~O1~blocked~abc",
                         "o~O 1~blocked~1", "d~042~dead_letters", "d~42~dead_letters~1", "d~x~dead_letters",
                         "o~O1~dead_letters~1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        if (evt_exid_parse(bad[i], &x, &why) == 0) T_FAIL("\"%s\" parsed", bad[i]);
        else T_ASSERT(why && *why);
    }
    /* The views an id may name are the fold's. */
    for (int v = 0; v < FOLD_VIEW_COUNT; v++)
        T_ASSERT(evt_exid_view_known(fold_view_name((fold_view)v), strlen(fold_view_name((fold_view)v))));
    T_ASSERT(!evt_exid_view_known("nope", 4));
}

static void every_action(void)
{
    fx f;
    fx_open(&f);
    fx_feed(&f, EV("h1", T1, "erp", "\"orderId\":\"O1\",\"orderHeld\":{\"reason\":\"CREDIT\"}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "exceptionId"), HOLD1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "acknowledgedAt"), "");
    /* An assignment (later) and an acknowledgement (earlier): acknowledged at the earlier, by its actor. */
    fx_feed(&f, ACT("x2", T3, "exceptionAssigned", HOLD1, ",\"assignee\":\"ben\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "assignee"), "ben");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "acknowledgedAt"), T3);
    T_EQ_INT(f.changes.n, 1);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_UPDATE);
    fx_feed(&f, ACT("x1", T2, "exceptionAcknowledged", HOLD1, ",\"note\":\"looking\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "acknowledgedAt"), T2);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "acknowledgedBy"), "ana");
    /* An assignment dated before the latest one does not win; an unassignment after it does. */
    fx_feed(&f, ACT("x0", T1, "exceptionAssigned", HOLD1, ",\"assignee\":\"chen\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "assignee"), "ben");
    fx_feed(&f, ACT("x3", T4, "exceptionAssigned", HOLD1, ""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "assignee"), "");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "acknowledgedAt"), T1); /* chen's assignment acknowledged first */
    /* Notes: every action's note counts. */
    fx_feed(&f, ACT("n1", T2, "exceptionNoted", HOLD1, ",\"note\":\"carrier says tomorrow\""));
    json_t *v = fx_view(&f, FOLD_VIEW_BLOCKED);
    T_EQ_INT(json_integer_value(json_object_get(json_array_get(v, 0), "notes")), 2);
    json_decref(v);
    /* A snooze: snoozed while until is after now, decided when read. */
    fx_feed(&f, ACT("z1", T2, "exceptionSnoozed", HOLD1, ",\"until\":\"" T3 "\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "snoozedUntil"), T3);
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    Tower__V1__ViewItem *it = NULL;
    T_EQ_INT(store_item_get(r, "o:O1|blocked|ORDER_HOLD", &it), CT_OK);
    T_EQ_STR(store_item_state(it, ns_of(T2)), "snoozed");
    T_EQ_STR(store_item_state(it, ns_of(T4)), "acknowledged");
    tower__v1__view_item__free_unpacked(it, NULL);
    store_query q = {.view = FOLD_VIEW_BLOCKED, .state = "attention", .now_ns = ns_of(T2)};
    uint64_t n = 9;
    store_view_count(r, &q, &n);
    T_EQ_INT(n, 0);
    q.now_ns = ns_of(T4);
    store_view_count(r, &q, &n);
    T_EQ_INT(n, 1);
    q.state = "snoozed";
    store_view_count(r, &q, &n);
    T_EQ_INT(n, 0);
    store_life_fig lf;
    store_life_figures(r, FOLD_VIEW_BLOCKED, ns_of(T2), &lf);
    T_EQ_INT(lf.unacknowledged, 0);
    T_EQ_INT(lf.snoozed, 1);
    store_reader_end(r);
    /* A later snooze until the past un-snoozes. */
    fx_feed(&f, ACT("z2", T3, "exceptionSnoozed", HOLD1, ",\"until\":\"" T0 "\""));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "snoozedUntil"), T0);

    /* Resolve: the item leaves the view (a remove) and is kept closed with its resolution. */
    fx_feed(&f, ACT("r1", T3, "exceptionResolved", HOLD1, ",\"resolution\":\"NOT_AN_ISSUE\""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_BLOCKED), 0);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_REMOVE);
    store_reader_begin(f.s, &r);
    json_t *ex = NULL;
    T_EQ_INT(store_exception_json(r, HOLD1, ns_of(T4), &ex), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(ex, "state")), "resolved");
    T_EQ_STR(json_string_value(json_object_get(ex, "resolution")), "NOT_AN_ISSUE");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ex, "closedBy"), "eventId")), "r1");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ex, "openedBy"), "eventId")), "h1");
    T_EQ_INT(json_array_size(json_object_get(ex, "history")), 8);
    T_EQ_INT(json_array_size(json_object_get(ex, "notes")), 2);
    T_EQ_STR(json_string_value(json_object_get(json_array_get(json_object_get(ex, "history"), 0), "action")), "assigned");
    json_decref(ex);
    store_reader_end(r);
    /* A reopen dated before the resolve changes nothing; one after brings it back (an add). */
    fx_feed(&f, ACT("o1", T2, "exceptionReopened", HOLD1, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    fx_feed(&f, ACT("o2", T4, "exceptionReopened", HOLD1, ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_ADD);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "acknowledgedBy"), "ana");
    fx_close(&f);
}

static void before_the_instance_and_closing(void)
{
    fx f;
    fx_open(&f);
    /* Actions for an instance not seen yet wait for it. */
    fx_feed(&f, ACT("a1", T2, "exceptionAssigned", HOLD1, ",\"assignee\":\"ben\""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    store_reader *r = NULL;
    json_t *ex = NULL;
    store_reader_begin(f.s, &r);
    T_EQ_INT(store_exception_json(r, HOLD1, ns_of(T4), &ex), CT_NOT_FOUND);
    store_reader_end(r);
    fx_feed(&f, EV("h1", T1, "erp", "\"orderId\":\"O1\",\"orderHeld\":{\"reason\":\"CREDIT\"}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "assignee"), "ben");
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_ADD);
    /* The condition clears: closed, by the release, with its history. */
    fx_feed(&f, EV("u1", T3, "erp", "\"orderId\":\"O1\",\"orderHoldReleased\":{}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 0);
    store_reader_begin(f.s, &r);
    T_EQ_INT(store_exception_json(r, HOLD1, ns_of(T4), &ex), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(ex, "state")), "closed");
    T_EQ_STR(json_string_value(json_object_get(ex, "closedAt")), T3);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ex, "closedBy"), "type")), "orderHoldReleased");
    T_EQ_STR(json_string_value(json_object_get(ex, "assignee")), "ben");
    json_decref(ex);
    store_reader_end(r);
    /* Held again: a new instance, without the old one's actions. */
    fx_feed(&f, EV("h3", "2026-11-27T11:30:00Z", "erp", "\"orderId\":\"O1\",\"orderHeld\":{\"reason\":\"PRICING\"}"));
    fx_feed(&f, EV("h4", T4, "erp", "\"orderId\":\"O1\",\"orderHeld\":{\"reason\":\"PRICING\"}"));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_BLOCKED), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "assignee"), "");
    T_ASSERT(strcmp(fx_field(&f, FOLD_VIEW_BLOCKED, 0, "exceptionId"), HOLD1) != 0);
    /* The closed list has the first one; the closer of a hold is the release (not the later hold). */
    store_reader_begin(f.s, &r);
    T_EQ_INT(store_exception_json(r, HOLD1, ns_of(T4), &ex), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(json_object_get(ex, "closedBy"), "eventId")), "u1");
    json_decref(ex);
    store_reader_end(r);
    /* A malformed exception id is a dead letter naming the field. */
    fx_feed(&f, ACT("bad", T2, "exceptionAcknowledged", "o~O1~nope~1", ""));
    T_EQ_INT(f.last, STORE_DEAD_LETTER);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 0, "code"), "INVALID_VALUE");
    T_ASSERT(strstr(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 0, "message"), "exceptionAcknowledged.exceptionId") != NULL);
    /* An action's envelope ids do not make it a milestone of the order (no stage, no link, no orphan). */
    fx_feed(&f, EV("e9", T2, "tower", "\"orderId\":\"O9\",\"shipmentId\":\"S9\",\"exceptionNoted\":{\"exceptionId\":\"" HOLD1
                                       "\",\"actor\":\"ana\",\"note\":\"x\"}"));
    T_EQ_INT(f.last, STORE_APPLIED);
    T_EQ_INT(fx_n(&f, FOLD_VIEW_ORPHANS), 0);
    fx_close(&f);
}

static void dead_letter_lifecycle(void)
{
    fx f;
    fx_open(&f);
    /* An action on dead letter 2 before it exists waits for it. */
    fx_feed(&f, ACT("a1", T1, "exceptionAcknowledged", "d~2~dead_letters", ""));
    fx_feed(&f, "{not json\n");
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 1);
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 0, "exceptionId"), "d~2~dead_letters");
    T_EQ_STR(fx_field(&f, FOLD_VIEW_DEAD_LETTERS, 0, "acknowledgedBy"), "ana");
    fx_feed(&f, ACT("r1", T2, "exceptionResolved", "d~2~dead_letters", ",\"resolution\":\"REDRIVEN\""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 0);
    T_EQ_INT(fx_count(&f, FOLD_VIEW_DEAD_LETTERS), 0);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_REMOVE);
    store_reader *r = NULL;
    json_t *ex = NULL;
    store_reader_begin(f.s, &r);
    T_EQ_INT(store_exception_json(r, "d~2~dead_letters", ns_of(T4), &ex), CT_OK);
    T_EQ_STR(json_string_value(json_object_get(ex, "resolution")), "REDRIVEN");
    json_decref(ex);
    store_reader_end(r);
    fx_feed(&f, ACT("o1", T3, "exceptionReopened", "d~2~dead_letters", ""));
    T_EQ_INT(fx_n(&f, FOLD_VIEW_DEAD_LETTERS), 1);
    T_EQ_INT(f.changes.n ? (int)f.changes.v[0].op : -1, STORE_OP_ADD);
    fx_close(&f);
}

static void sla_due_and_figures(void)
{
    fx f;
    fx_open(&f);
    /* awaiting_release is covered by the release rule: due 15 min after the approval. */
    fx_feed(&f, EV("a1", T1, "erp", "\"orderId\":\"O1\",\"orderApproved\":{}")
                EV("a2", T2, "erp", "\"orderId\":\"O2\",\"orderApproved\":{}"));
    T_EQ_STR(fx_field(&f, FOLD_VIEW_AWAITING_RELEASE, 0, "slaDueAt"), "2026-11-27T09:15:00Z");
    store_reader *r = NULL;
    store_reader_begin(f.s, &r);
    store_life_fig lf;
    store_life_figures(r, FOLD_VIEW_AWAITING_RELEASE, ns_of("2026-11-27T10:05:00Z"), &lf);
    T_EQ_INT(lf.unacknowledged, 2);
    T_ASSERT(lf.oldest_unacknowledged_ns == ns_of(T1));
    T_EQ_INT(lf.breached, 1);
    store_reader_end(r);
    fx_feed(&f, ACT("k1", T2, "exceptionAssigned", "o~O1~awaiting_release~1795770000000000000", ",\"assignee\":\"ben\""));
    store_reader_begin(f.s, &r);
    store_life_figures(r, FOLD_VIEW_AWAITING_RELEASE, ns_of(T4), &lf);
    T_EQ_INT(lf.unacknowledged, 1);
    T_ASSERT(lf.oldest_unacknowledged_ns == ns_of(T2));
    T_EQ_INT(lf.breached, 2);
    /* The assignee filter: ben's, and the unassigned ones. */
    store_query q = {.view = FOLD_VIEW_AWAITING_RELEASE, .assignee = "ben"};
    uint64_t n = 0;
    store_view_count(r, &q, &n);
    T_EQ_INT(n, 1);
    q.assignee = "";
    store_view_count(r, &q, &n);
    T_EQ_INT(n, 1);
    q.assignee = "chen";
    store_view_count(r, &q, &n);
    T_EQ_INT(n, 0);
    /* The time to acknowledge was observed: 1 h, in the 1 h slot (index 3). */
    char key[96];
    store_life_meta_key(key, sizeof key, FOLD_VIEW_AWAITING_RELEASE, 0, 3);
    T_EQ_INT(store_reader_meta(r, key), 1);
    store_reader_end(r);
    fx_close(&f);
}

int main(void)
{
    T_RUN(ids);
    T_RUN(every_action);
    T_RUN(before_the_instance_and_closing);
    T_RUN(dead_letter_lifecycle);
    T_RUN(sla_due_and_figures);
    return t_done();
}
