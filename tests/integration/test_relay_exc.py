#!/usr/bin/env python3
"""Integration tests of exception destinations (docs/outbound.md "Exception changes").

usage: test_relay_exc.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, `towerd projector` folding the stream into a store, `towerd relay --data STORE` and
HTTP receivers written in test_relay.py:

1. a blocked shipment opens one change; an acknowledgement (a published exceptionAcknowledged) sends
   acknowledged; the unblock sends resolved (closedAs cleared); a person's exceptionResolved sends resolved
   (closedAs resolved, with the resolution); filters by view and warehouse, a Slack and an email
   destination; a destination with exceptions but no --data is refused (exit 2).
2. kill -9 of the relay mid-stream (a delivery hanging), then a restart: every change arrives, in order per
   exception, and any repeat carries the same webhook-id; blocks that came and went while the relay was down
   (the store ahead of it) are reported all the same.
3. a refused change is a dead letter (the change's payload, its type, the event at which it was seen);
   `--redrive NAME` (no --data needed) sends the same payload once more and empties the file.
4. garbage in relay.lmdb (outbox entries, knowledge) is dropped or taken as nothing known.
5. `towerd up --relay FILE` gives exception destinations its own store.
"""

import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_relay as tr  # noqa: E402

TOWERD = None


def ev(eid, etype, sec, payload=None, system="wms", **ids):
    e = {"eventId": eid, "occurredAt": "2026-11-27T10:%02d:%02dZ" % (sec // 60 % 60, sec % 60),
         "source": {"system": system}}
    e.update(ids)
    e[etype] = payload or {}
    return e


def ready(eid, sec, order, ship, wh):
    return ev(eid, "shipmentReady", sec, {"warehouseId": wh, "dockId": "D1"}, orderId=order, shipmentId=ship)


def block(eid, sec, order, ship, wh):
    return ev(eid, "shipmentBlocked", sec, {"reason": "DAMAGE", "warehouseId": wh}, orderId=order, shipmentId=ship)


def unblock(eid, sec, order, ship):
    return ev(eid, "shipmentUnblocked", sec, {}, orderId=order, shipmentId=ship)


def action(eid, etype, sec, exid, **kw):
    p = {"exceptionId": exid, "actor": "dana"}
    p.update(kw)
    return ev(eid, etype, sec, p, system="tower")


def changes(rc, path):
    """[(webhook-id, type, exceptionId, view)] of the requests answered 2xx to path, in arrival order."""
    return [(r["id"], r["doc"].get("type"), r["doc"].get("exceptionId"), r["doc"].get("view"))
            for r in rc.snapshot(path) if r["status"] and 200 <= r["status"] < 300 and isinstance(r["doc"], dict)
            and "exceptionId" in r["doc"]]


class ExcTest(unittest.TestCase):
    maxDiff = 6000

    def setUp(self):
        tr.RelayTest.setUp(self)
        self.data = os.path.join(self.root, "data")
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start().wait_running()

    def exc_relay(self, conf):
        r = self.relay(conf)
        r.argv = lambda *extra: tr.Relay.argv(r, "--data", self.data, *extra)
        return r

    def test_1_lifecycle_and_filters(self):
        rc = self.receiver()
        sk = self.sink()
        conf = self.relay_file([
            ("all", {"url": rc.url("/all"), "exceptions": "opened, acknowledged, breached, resolved",
                     "backoff_min": "100ms", "backoff_max": "1s"}),
            ("dc2", {"url": rc.url("/dc2"), "exceptions": "opened,resolved", "views": "blocked",
                     "warehouses": "dc-2"}),
            ("chat", {"url": rc.url("/chat"), "kind": "slack", "exceptions": "opened", "views": "pending_route"}),
            ("mail", {"url": sk.url(), "kind": "email", "from": "tower@example.com", "to": "ops@example.com",
                      "exceptions": "opened", "views": "blocked", "warehouses": "dc-1"}),
        ])
        bad = self.t.run("relay", "--nats", self.nats.url, "--relay", conf, "--state", self.state, timeout=30)
        self.assertEqual(bad.rc, 2, bad.describe())
        self.assertIn("--data", bad.err)
        r = self.exc_relay(conf).start()
        self.publish([ev("c1", "orderCreated", 1, {"customerId": "C-1", "lines": [{"sku": "A", "qty": 1}]},
                         system="erp", orderId="O1"),
                      ready("r1", 2, "O1", "S1", "dc-2"), block("b1", 3, "O1", "S1", "dc-2"),
                      ready("r2", 4, "O2", "S2", "dc-1"), block("b2", 5, "O2", "S2", "dc-1")])
        got = self.wait(lambda: (c := changes(rc, "/all")) and len([x for x in c if x[3] == "blocked"]) == 2 and c,
                        30, "two blocked exceptions opened", lambda: str(changes(rc, "/all")))
        ex1 = next(x[2] for x in got if x[3] == "blocked" and x[2].startswith("s~S1~"))
        ex2 = next(x[2] for x in got if x[3] == "blocked" and x[2].startswith("s~S2~"))
        self.publish([action("a1", "exceptionAcknowledged", 6, ex1), unblock("u1", 7, "O1", "S1"),
                      action("z2", "exceptionResolved", 8, ex2, resolution="NOT_AN_ISSUE")])
        want = [(ex1 + ".opened.all", "exception.opened"), (ex1 + ".acknowledged.all", "exception.acknowledged"),
                (ex1 + ".resolved.all", "exception.resolved"), (ex2 + ".opened.all", "exception.opened"),
                (ex2 + ".resolved.all", "exception.resolved")]
        self.wait(lambda: all(w in [(x[0], x[1]) for x in changes(rc, "/all")] for w in want), 30,
                  "the lifecycle of both", lambda: str(changes(rc, "/all")))
        ids = [x[0] for x in changes(rc, "/all")]
        self.assertEqual(len(ids), len(set(ids)), "each change once: %s" % ids)
        self.assertLess(ids.index(ex1 + ".opened.all"), ids.index(ex1 + ".acknowledged.all"))
        self.assertLess(ids.index(ex1 + ".acknowledged.all"), ids.index(ex1 + ".resolved.all"))
        docs = {q["id"]: q for q in rc.snapshot("/all")}
        o1 = docs[ex1 + ".opened.all"]
        self.assertEqual(o1["headers"]["webhook-id"], ex1 + ".opened.all")
        d = o1["doc"]
        self.assertEqual((d["version"], d["destination"], d["state"], d["customerId"], d["item"]["shipmentId"],
                          d["item"]["warehouseId"], d["item"]["reason"], d["links"]["exception"]),
                         (1, "all", "open", "C-1", "S1", "dc-2", "DAMAGE", "/api/v1/exceptions/" + ex1), d)
        self.assertEqual(d["seenAt"]["eventId"], "b1", d)
        self.assertEqual(docs[ex1 + ".acknowledged.all"]["doc"]["state"], "acknowledged")
        self.assertEqual(docs[ex1 + ".acknowledged.all"]["doc"]["item"]["acknowledgedBy"], "dana")
        res1 = docs[ex1 + ".resolved.all"]["doc"]
        self.assertEqual((res1["closedAs"], res1["state"], res1["seenAt"]["eventId"]), ("cleared", "closed", "u1"), res1)
        res2 = docs[ex2 + ".resolved.all"]["doc"]
        self.assertEqual((res2["closedAs"], res2["resolution"], res2["resolvedBy"]), ("resolved", "NOT_AN_ISSUE", "dana"))
        # Filters: dc2 got only S1's blocked exception (opened, resolved); chat the two pending_route ones.
        self.wait(lambda: len(changes(rc, "/dc2")) == 2, 20, "dc2's two changes", lambda: str(changes(rc, "/dc2")))
        self.assertEqual([x[0] for x in changes(rc, "/dc2")], [ex1 + ".opened.dc2", ex1 + ".resolved.dc2"])
        self.wait(lambda: len([q for q in rc.snapshot("/chat") if q["status"] == 200]) == 2, 20, "two Slack lines")
        texts = sorted(q["doc"]["text"] for q in rc.snapshot("/chat"))
        self.assertEqual(len(texts), 2)
        self.assertTrue(texts[0].startswith("exception.opened: pending_route shipment S1 (dc-2"), texts)
        self.assertTrue(texts[1].startswith("exception.opened: pending_route shipment S2 (dc-1"), texts)
        # Email: one message for S2's blocked exception, its Message-ID from the webhook-id.
        self.wait(lambda: len(sk.mails) == 1, 20, "one mail")
        m = sk.mails[0]["msg"]
        self.assertEqual(str(m["Subject"]), "[tower] exception.opened blocked shipment S2")
        self.assertEqual(str(m["Message-ID"]), "<%s.opened.mail@tower>" % ex2)
        body = m.get_content()
        self.assertIn("exception    " + ex2, body)
        doc = json.loads(body.splitlines()[body.splitlines().index("The change (JSON):") + 1])
        self.assertEqual((doc["type"], doc["exceptionId"], doc["destination"]), ("exception.opened", ex2, "mail"))
        self.assertEqual(r.stop(), 0, r.log())

    def test_2_kill9_mid_stream(self):
        hang = {"on": True}

        def behave(req):
            if hang["on"] and req["id"] and req["id"].startswith("s~S5~blocked") and ".opened." in req["id"]:
                return {"hang": 30}
            return None
        rc = self.receiver(behave)
        conf = self.relay_file([("all", {"url": rc.url("/all"), "exceptions": "opened,resolved", "views": "blocked",
                                         "timeout": "1s", "backoff_min": "100ms", "backoff_max": "500ms"})])
        r = self.exc_relay(conf).start()
        n = 12
        evs = []
        for i in range(n):
            evs += [block("b%d" % i, 10 + i, "O%d" % i, "S%d" % i, "dc-1"), unblock("u%d" % i, 30 + i, "O%d" % i, "S%d" % i)]
        self.publish(evs)
        self.wait(lambda: rc.inflight, 30, "S5's opened in flight", lambda: str(changes(rc, "/all")))
        r.kill9()
        hang["on"] = False
        rc.release()
        # While the relay is down: more blocks come and go (the store goes ahead of the relay).
        self.publish([x for i in range(n, n + 4) for x in (block("b%d" % i, 10 + i, "O%d" % i, "S%d" % i, "dc-1"),
                                                            unblock("u%d" % i, 40 + i, "O%d" % i, "S%d" % i))])
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        r.start()
        want = n + 4

        def done():
            got = changes(rc, "/all")
            return len({x[0] for x in got if x[1] == "exception.resolved"}) == want and got
        got = self.wait(done, 60, "every block opened and resolved", lambda: str(changes(rc, "/all")))
        ids = [x[0] for x in got]
        self.assertEqual(len({x for x in ids if ".opened." in x}), want, ids)
        for x in set(ids):  # per exception: opened (first arrival) before resolved
            if ".resolved." in x:
                self.assertLess(ids.index(x.replace(".resolved.", ".opened.")), ids.index(x))
        dups = [x for x in set(ids) if ids.count(x) > 1]
        self.assertLessEqual(len(dups), 2, "repeats only of what was in flight: %s" % dups)
        self.assertEqual(r.stop(), 0, r.log())

    def test_3_dead_letter_then_redrive(self):
        refuse = {"on": True}
        rc = self.receiver(lambda req: {"status": 400} if refuse["on"] else None)
        conf = self.relay_file([("dl", {"url": rc.url("/dl"), "exceptions": "opened", "max_attempts": 1})])
        r = self.exc_relay(conf).start()
        self.publish([block("b1", 1, "O1", "S1", "dc-1")])
        dead = self.wait(lambda: self.dead_letters("dl"), 20, "a dead letter")
        self.assertEqual(len(dead), 1, dead)
        d = dead[0]
        self.assertEqual((d["type"], d["eventId"], d["destination"], d["change"]["type"], d["attempts"][0]["status"]),
                         ("exception.opened", "b1", "dl", "exception.opened", 400), d)
        self.assertTrue(d["exceptionId"].startswith("s~S1~blocked~"), d)
        refuse["on"] = False
        red = self.t.run("relay", "--nats", self.nats.url, "--relay", conf, "--state", self.state, "--redrive", "dl",
                         timeout=60)
        self.assertEqual(red.rc, 0, red.describe())
        self.assertEqual(self.dead_letters("dl"), [])
        ok = [q for q in rc.snapshot("/dl") if q["status"] == 200]
        self.assertEqual([q["id"] for q in ok], [d["exceptionId"] + ".opened.dl"])
        self.assertEqual(ok[0]["doc"], d["change"], "the same payload")
        self.assertEqual(r.stop(), 0, r.log())

    def test_4_hostile_relay_lmdb(self):
        """Garbage in relay.lmdb (an outbox entry that is no JSON, one without an id, knowledge that is no
        object), read by the destination's thread: dropped or taken as nothing known, never a crash."""
        if not shutil.which("mdb_load"):
            self.skipTest("no mdb_load (lmdb-utils)")
        rc = self.receiver()
        conf = self.relay_file([("all", {"url": rc.url("/all"), "exceptions": "opened,resolved"})])
        r = self.exc_relay(conf).start()
        self.publish([block("b1", 1, "O1", "S1", "dc-1")])
        self.wait(lambda: len(changes(rc, "/all")) == 1, 20, "S1 opened")
        self.assertEqual(r.stop(), 0, r.log())
        text = ("VERSION=3\nformat=print\ntype=btree\nHEADER=END\n"
                " Oall\\00\\00\\00\\00\\00\\00\\00\\00\\01\\00\\00\\00\\00\n garbage{\n"
                " Oall\\00\\00\\00\\00\\00\\00\\00\\00\\01\\00\\00\\00\\01\n {\"id\": 5}\n"
                " Xall\\00o:O1\n [1,2\n Xall\\00s:S1\n \"x\"\nDATA=END\n")
        load = os.path.join(self.root, "garbage.txt")
        with open(load, "w") as f:
            f.write(text)
        fx.spawn(["mdb_load", "-f", load, os.path.join(self.state, "relay.lmdb")]).wait(timeout=30)
        r.start()
        self.publish([unblock("u1", 2, "O1", "S1"), block("b2", 3, "O2", "S2", "dc-1")])
        self.wait(lambda: any(x[2].startswith("s~S2~") for x in changes(rc, "/all")), 20, "S2 opened after the garbage",
                  lambda: str(changes(rc, "/all")))
        # S1's knowledge was destroyed (a string): its unblock finds nothing known to resolve; nothing else came.
        got = changes(rc, "/all")
        self.assertEqual(sorted(x[1] + " " + x[2][:5] for x in got), ["exception.opened s~S1~", "exception.opened s~S2~"])
        self.assertIn("dropped an unreadable change", fx.tail(r.log_path, 200))
        self.assertEqual(r.stop(), 0, r.log())

    def test_5_up_passes_its_store(self):
        """`towerd up --relay FILE` runs exception destinations against its own store."""
        rc = self.receiver()
        conf = self.relay_file([("ops", {"url": rc.url("/ops"), "exceptions": "opened, resolved"})])
        data = os.path.join(self.root, "up")
        up = fx.Up(self.t, self.root, data, ["--seed", "7", "--orders", "20", "--rate", "1500", "--warp", "10000",
                                            "--web", self.root, "--supervisor-rate", "0", "--progress", "0",
                                            "--relay", conf])
        self.addCleanup(up.close)
        up.start()
        self.wait(lambda: changes(rc, "/ops"), 60, "an exception change from up", lambda: up.logs())
        d = rc.snapshot("/ops")[0]["doc"]
        self.assertTrue(d["type"].startswith("exception.") and d["exceptionId"] and d["item"]["view"], d)
        self.assertEqual(up.stop(), 0, up.logs())


for _name in ("tearDown", "receiver", "sink", "publish", "relay_file", "relay", "status", "dead_letters", "wait",
              "checkpoint"):
    setattr(ExcTest, _name, getattr(tr.RelayTest, _name))


def main():
    def prepare():
        tr.TOWERD = TOWERD
    return fx.main(sys.modules[__name__], prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
