#!/usr/bin/env python3
"""Integration tests of the exception lifecycle API (docs/exceptions.md).

usage: test_exceptions.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, a `towerd projector` and `towerd serve` with API tokens: every action through the API
with the roles it needs, read-your-writes (the answer and the next read show the action), the live delta of
every action on a subscribed websocket client, bulk actions, the lists and the summary's figures, hostile
bodies and ids, actions refused by the HTTP ingest, a redrive resolving its dead letter; then a rebuild
reproducing every state and closed exception, and a projector killed (-9) between an action's publish and
its commit applying it exactly once when it comes back.

Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_stream as ts  # noqa: E402

TOWERD = None


class ExceptionTest(ts.StreamTest):
    def setUp(self):
        ts.TOWERD = TOWERD
        super().setUp()
        self.tok = {}
        lines = []
        for name, role in (("wall", "viewer"), ("ops", "operator"), ("erp", "ingest")):
            r = subprocess.run([TOWERD, "token", name, role], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.tok[role] = r.stdout.strip()
            lines.append(r.stderr.strip().splitlines()[-1])
        self.tokens = os.path.join(self.root, "tokens")
        with open(self.tokens, "w") as f:
            f.write("\n".join(lines) + "\n")

    def op(self, method, path, body=None, token="operator", raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        return self.request(method, path, data=data, token=self.tok.get(token, token))

    def act(self, exid, action, body=None, token="operator"):
        return self.op("POST", "/api/v1/exceptions/%s/%s" % (exid, action), body if body is not None else {}, token)

    def items(self, view, query=""):
        st, page = self.op("GET", "/api/v1/views/%s?limit=1000%s" % (view, query), token="viewer")
        self.assertEqual(st, 200, page)
        return page

    def wait_item(self, m, view, key, pred, what):
        deadline = time.monotonic() + fx.tmo(10)
        while time.monotonic() < deadline:
            it = m.snapshot_of(view).get(key)
            if pred(it):
                return it
            time.sleep(0.02)
        self.fail("the live client never saw %s: %s" % (what, m.snapshot_of(view).get(key)))


class T1Api(ExceptionTest):
    def test_1_roles_actions_live_and_lists(self):
        self.publish_trace("a.ndjson", 21, fx.scaled(150, 40))
        self.start_serve("--tokens", self.tokens)
        m = ts.Mirror(self.port, headers={"Authorization": "Bearer " + self.tok["viewer"]})
        self.mirrors.append(m)
        self.wait_settled([m], self.applied_as("viewer"))
        blocked = self.items("blocked")["items"]
        self.assertGreater(len(blocked), 2, "the trace blocks some orders")
        it, other = blocked[0], blocked[1]
        x, key = it["exceptionId"], it["key"]
        self.assertEqual(it["state"], "open")

        # Roles: no token 401, viewer and ingest 403, and nothing changed.
        self.assertEqual(self.act(x, "ack", token="none-such")[0], 401)
        self.assertEqual(self.act(x, "ack", token="viewer")[0], 403)
        self.assertEqual(self.act(x, "ack", token="ingest")[0], 403)
        st, me = self.op("GET", "/api/v1/me", token="viewer")
        self.assertEqual((st, me["name"], me["role"], me["canAct"]), (200, "wall", "viewer", False))

        # Acknowledge: the answer is the exception as now folded, and so is the next read.
        st, r = self.act(x, "ack", {"note": "looking"})
        self.assertEqual(st, 200, r)
        ex = r["exception"]
        self.assertEqual((ex["state"], ex["acknowledgedBy"], ex["open"]), ("acknowledged", "ops", True))
        self.assertEqual([h["action"] for h in ex["history"]], ["acknowledged"])
        self.assertEqual(ex["notes"][0]["note"], "looking")
        got = {i["key"]: i for i in self.items("blocked")["items"]}[key]
        self.assertEqual(got["acknowledgedBy"], "ops", "read-your-writes: the view shows the action at once")
        self.wait_item(m, "blocked", key, lambda i: i and i.get("acknowledgedBy") == "ops", "the acknowledgement")

        # Assign to me; my queue has it.
        st, r = self.act(x, "assign", {"assignee": "me"})
        self.assertEqual((st, r["exception"]["assignee"]), (200, "ops"), r)
        self.wait_item(m, "blocked", key, lambda i: i and i.get("assignee") == "ops", "the assignment")
        st, q = self.op("GET", "/api/v1/exceptions?assignee=me")
        self.assertEqual(st, 200, q)
        self.assertEqual([i["exceptionId"] for i in q["items"]], [x])
        self.assertEqual(self.items("blocked", "&assignee=ops")["count"], 1)
        self.assertEqual(self.items("blocked", "&assignee=none")["count"], len(blocked) - 1)

        # Snooze for an hour: not in the "needs attention" list, back in it after an un-snooze.
        st, r = self.act(x, "snooze", {"forSeconds": 3600, "note": "carrier answers at noon"})
        self.assertEqual((st, r["exception"]["state"]), (200, "snoozed"), r)
        att = self.items("blocked", "&state=attention")
        self.assertNotIn(x, [i["exceptionId"] for i in att["items"]])
        self.assertEqual(att["count"], len(blocked) - 1)
        self.assertEqual(self.items("blocked", "&state=snoozed")["count"], 1)
        st, s = self.op("GET", "/api/v1/summary", token="viewer")
        self.assertEqual(s["views"]["blocked"]["snoozed"], 1)
        self.assertEqual(s["views"]["blocked"]["unacknowledged"], len(blocked) - 1)

        # A note; then resolve: the item leaves the view (live too) and is listed closed; reopen brings it back.
        st, r = self.act(x, "note", {"note": "ERP ticket 4411"})
        self.assertEqual((st, r["exception"]["item"]["notes"]), (200, 3), r)
        st, r = self.act(x, "resolve", {"resolution": "fixed_at_source", "note": "credit limit raised"})
        self.assertEqual((st, r["exception"]["state"], r["exception"]["resolution"]), (200, "resolved", "FIXED_AT_SOURCE"), r)
        self.assertNotIn(key, {i["key"] for i in self.items("blocked")["items"]})
        self.wait_item(m, "blocked", key, lambda i: i is None, "the removal of the resolved item")
        st, cl = self.op("GET", "/api/v1/exceptions?closed=1&view=blocked", token="viewer")
        self.assertEqual(st, 200, cl)
        self.assertEqual(cl["items"][0]["exceptionId"], x)
        self.assertEqual(cl["items"][0]["state"], "resolved")
        st, r = self.act(x, "ack")
        self.assertEqual((st, r["error"]["code"]), (409, "CONFLICT"), r)
        st, r = self.act(x, "reopen", {"note": "not fixed after all"})
        self.assertEqual((st, r["exception"]["state"]), (200, "snoozed"), r)
        self.wait_item(m, "blocked", key, lambda i: i is not None, "the reopened item")
        st, r = self.act(x, "reopen")
        self.assertEqual(st, 409, r)
        st, one = self.op("GET", "/api/v1/exceptions/" + x, token="viewer")
        self.assertEqual([h["action"] for h in one["history"]],
                         ["acknowledged", "assigned", "snoozed", "noted", "resolved", "reopened"])
        self.assertTrue(all(h["actor"] == "ops" and h["seq"] > 0 for h in one["history"]))

        # Bulk: the good ids acted on, the bad ones named.
        ids = [i["exceptionId"] for i in blocked[1:3]] + ["o~NOPE~blocked~ORDER_HOLD~1", "not an id"]
        st, r = self.op("POST", "/api/v1/exceptions/actions", {"action": "assign", "assignee": "dana", "ids": ids})
        self.assertEqual((st, r["done"], r["failed"]), (200, 2, 2), r)
        self.assertEqual([x["status"] for x in r["results"]], ["done", "done", "failed", "failed"])
        self.assertEqual(r["results"][0]["exception"]["assignee"], "dana")
        self.assertEqual(r["results"][2]["error"]["code"], "NOT_FOUND")
        self.assertEqual(self.items("blocked", "&assignee=dana")["count"], 2)

        # Priority sort: every item once, breached ones first.
        pr = self.items("blocked", "&sort=priority")
        self.assertEqual(sorted(i["key"] for i in pr["items"]), sorted(i["key"] for i in self.items("blocked")["items"]))

        # Metrics.
        st, text = self.request("GET", "/metrics", token=self.tok["viewer"])
        self.assertIn('tower_exceptions_unacknowledged{view="blocked"}', text)
        ack = [l for l in text.splitlines() if l.startswith('tower_exception_ack_seconds_count{view="blocked"}')]
        self.assertTrue(ack and int(ack[0].split()[-1]) >= 3, ack)
        close = [l for l in text.splitlines() if l.startswith('tower_exception_close_seconds_count{view="blocked"}')]
        self.assertTrue(close and int(close[0].split()[-1]) >= 1, close)
        self.assertEqual(m.problems, [], "protocol problems seen by the live client")
        self.other = other

    def test_2_hostile_bodies_and_ids(self):
        self.publish_trace("a.ndjson", 22, fx.scaled(60, 20))
        self.start_serve("--tokens", self.tokens)
        x = next(i["exceptionId"] for v in ts.VIEWS if v != "dead_letters" for i in self.items(v)["items"])
        cases = [
            (b"[" * 60000, 400, "INVALID_JSON", None),
            (b"[" * 100000, 413, "TOO_LARGE", None),
            (b'"just a string"', 400, "INVALID_JSON", None),
            (b"{not json", 400, "INVALID_JSON", None),
        ]
        for raw, status, code, field in cases:
            st, r = self.op("POST", "/api/v1/exceptions/%s/note" % x, raw=raw)
            self.assertEqual((st, r["error"]["code"]), (status, code), (raw[:20], r))
        for action, body, field in (("note", {}, "note"), ("note", {"note": "x" * 2001}, "note"),
                                    ("note", {"note": 5}, "note"), ("assign", {}, "assignee"),
                                    ("snooze", {}, "until"), ("snooze", {"forSeconds": 5}, "forSeconds"),
                                    ("snooze", {"until": "tomorrow"}, "until"),
                                    ("resolve", {"resolution": "FIXED"}, "resolution"),
                                    ("assign", {"assignee": "a" * 200}, "assignee")):
            st, r = self.act(x, action, body)
            self.assertEqual((st, r["error"].get("field")), (400, field), (action, body, r))
        for path in ("/api/v1/exceptions/%s/dance" % x, "/api/v1/exceptions/o~O1~nope~1/ack",
                     "/api/v1/exceptions/%s/ack" % ("o~" + "A" * 300 + "~blocked~1"),
                     "/api/v1/exceptions/o~NOPE~blocked~ORDER_HOLD~1/ack"):
            st, r = self.op("POST", path, {})
            self.assertEqual(st, 404, (path, r))
        self.assertEqual(self.op("GET", "/api/v1/exceptions/o~NOPE~blocked~1", token="viewer")[0], 404)
        st, r = self.op("POST", "/api/v1/exceptions/actions", {"action": "ack", "ids": ["x"] * 501})
        self.assertEqual((st, r["error"]["field"]), (400, "ids"), r)
        st, r = self.op("POST", "/api/v1/exceptions/actions", {"action": "dance", "ids": [x]})
        self.assertEqual((st, r["error"]["field"]), (400, "action"), r)
        st, r = self.op("GET", "/api/v1/views/blocked?state=sleepy", token="viewer")
        self.assertEqual((st, r["error"]["field"]), (400, "state"), r)
        # The HTTP ingest refuses actions: only the server vouches for an actor.
        ev = {"eventId": "forged-1", "occurredAt": "2026-11-27T10:00:00Z", "source": {"system": "tower"},
              "exceptionResolved": {"exceptionId": x, "actor": "ceo", "resolution": "OTHER"}}
        st, r = self.request("POST", "/api/v1/events", data=json.dumps(ev).encode(), token=self.tok["ingest"])
        self.assertEqual(st, 400, r)
        self.assertEqual(r["results"][0]["error"]["field"], "exceptionResolved")
        # Nothing of that changed the exception, and the server still answers.
        st, one = self.op("GET", "/api/v1/exceptions/" + x, token="viewer")
        self.assertEqual((st, one["state"], one["history"]), (200, "open", []))

    def test_3_redrive_resolves_the_dead_letter(self):
        self.start_serve("--tokens", self.tokens)
        # A producer's bad record (the HTTP ingest would refuse it; one on the bus becomes a dead letter).
        self.nc.js_publish("tower.evt.erp.orderCreated",
                           b'{"eventId":"dl-1","occurredAt":"2026-11-27T10:00:00Z","source":{"system":"erp"},'
                           b'"orderId":"O-DL","orderCreated":{"lines":[{"sku":"A","qty":0}]}}')
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        dl = self.items("dead_letters")["items"]
        self.assertEqual(len(dl), 1, dl)
        seq, x = dl[0]["seq"], dl[0]["exceptionId"]
        self.assertEqual(x, "d~%d~dead_letters" % seq)
        fixed = (b'{"eventId":"dl-1","occurredAt":"2026-11-27T10:00:00Z","source":{"system":"erp"},'
                 b'"orderId":"O-DL","orderCreated":{"lines":[{"sku":"A","qty":1}]}}')
        st, r = self.request("POST", "/api/v1/dead-letters/%d/redrive" % seq, data=fixed, token=self.tok["operator"])
        self.assertEqual(st, 200, r)
        self.assertTrue(r["resolved"]["stored"], r)
        deadline = time.monotonic() + fx.tmo(10)
        while self.items("dead_letters")["count"] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.items("dead_letters")["count"], 0, "the redriven dead letter left the view")
        st, one = self.op("GET", "/api/v1/exceptions/" + x, token="viewer")
        self.assertEqual((one["state"], one["resolution"], one["resolvedBy"]), ("resolved", "REDRIVEN", "ops"), one)

    def applied_as(self, role):
        st, s = self.op("GET", "/api/v1/summary", token=role)
        self.assertEqual(st, 200, s)
        return s["appliedSeq"]


class T2Durability(ExceptionTest):
    def test_4_rebuild_and_kill9_between_action_and_commit(self):
        self.publish_trace("a.ndjson", 23, fx.scaled(150, 40))
        self.start_serve("--tokens", self.tokens)
        blocked = self.items("blocked")["items"]
        for i, it in enumerate(blocked[:6]):
            action, body = [("ack", {}), ("assign", {"assignee": "ben"}), ("snooze", {"forSeconds": 7200}),
                            ("note", {"note": "n"}), ("resolve", {"resolution": "DUPLICATE"}), ("ack", {"note": "x"})][i]
            st, r = self.act(it["exceptionId"], action, body)
            self.assertEqual(st, 200, r)
        # More events: some acted-on exceptions close because their condition clears.
        self.publish_trace("b.ndjson", 24, fx.scaled(150, 40))
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)

        def dump():
            return self.t.run("dump", "--data", self.data, "--stable", "--closed", check=0).json()

        before = dump()
        self.assertTrue(any("acknowledgedBy" in i for i in before["blocked"]), "the actions show in the dump")
        self.assertTrue(before["closed"], "some acted-on exceptions are closed")
        self.t.run("rebuild", "--data", self.data, "--nats", self.nats.url, check=0, timeout=300)
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        self.assertEqual(dump(), before, "a rebuild reproduces every state and closed exception")

        # kill -9 between the action's publish and its commit: it applies once when the projector is back.
        x = next(i["exceptionId"] for v in ts.VIEWS for i in self.items(v)["items"]
                 if not any(k in i for k in ("notes", "acknowledgedAt", "snoozedUntil")))
        os.kill(self.proj.proc.pid, signal.SIGSTOP)
        try:
            st, r = self.act(x, "note", {"note": "while the projector was stuck"})
            self.assertEqual((st, r["error"]["code"]), (504, "NOT_APPLIED"), r)
            self.assertGreater(r["seq"], 0)
        finally:
            self.proj.kill9()
        self.proj.start()
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        st, one = self.op("GET", "/api/v1/exceptions/" + x, token="viewer")
        self.assertEqual([h.get("note") for h in one["history"]], ["while the projector was stuck"], one)
        self.assertEqual(one["item"]["notes"], 1)


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
