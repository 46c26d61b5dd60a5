#!/usr/bin/env python3
"""Integration tests of the relay's delivery lanes (`lanes = N`, docs/outbound.md "Lanes").

usage: test_relay_lanes.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, events published with `towerd publish`, `towerd relay` and an HTTP receiver written in
test_relay.py that records every request:

1. per-entity order: lanes = 8 (the default) against a receiver that answers after a random delay and
   refuses some first attempts with 503: requests overlap (more than one in flight), every event is
   delivered, each order, shipment and route sees its requests (retries included) in stream order, the
   checkpoint reaches the stream's end.
2. kill -9 with requests in flight on several lanes: the checkpoint never passes an event not answered 2xx;
   after a restart every event is delivered, repeats only after the checkpoint at the kill, each with the
   same webhook-id and body.
3. hostile `lanes` values and combinations in the relay file: exit 2, FILE:LINE: naming the key.
4. refusals and the breaker across lanes: refused events are dead letters (their 400 recorded), failures on
   any lane open the destination's one breaker, and once healed every other event is delivered, each entity
   still in stream order, the breaker closed.

Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1.
"""

import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_relay as tr  # noqa: E402

TOWERD = None
N_ORDERS = 12


def workload(n):
    """n events over N_ORDERS orders, each with two shipments, and routes: a deliveryAttempted /
    deliveryCompleted / podCaptured names its shipment and most often its order, a routeDispatched its
    route."""
    rnd = random.Random(7)
    evs = []
    for i in range(n):
        o = rnd.randrange(N_ORDERS)
        if i % 7 == 6:
            evs.append(tr.event("ev-%03d" % i, "routeDispatched", i % 3600, routeId="R%d" % (o % 3)))
            continue
        typ = rnd.choice(["deliveryAttempted", "deliveryCompleted", "podCaptured"])
        ids = {"shipmentId": "S%d-%d" % (o, i % 2)}
        if rnd.random() < 0.6:  # else the shipment alone: its lane is not its order's unless they meet
            ids["orderId"] = "O%d" % o
        evs.append(tr.event("ev-%03d" % i, typ, i % 3600, **ids))
    return evs


def entities(doc):
    ev = doc["event"]
    return [k[0] + ":" + ev[k] for k in ("orderId", "shipmentId", "routeId") if k in ev]


class LanesTest(unittest.TestCase):
    maxDiff = 6000
    # test_relay.py's fixtures (borrowed, not inherited: its tests are its own)
    setUp_relay = tr.RelayTest.setUp
    tearDown = tr.RelayTest.tearDown
    receiver = tr.RelayTest.receiver
    publish = tr.RelayTest.publish
    relay = tr.RelayTest.relay
    checkpoint = tr.RelayTest.checkpoint
    status = tr.RelayTest.status
    wait = tr.RelayTest.wait
    wait_checkpoints = tr.RelayTest.wait_checkpoints
    wait_status = tr.RelayTest.wait_status
    last_seq = tr.RelayTest.last_seq
    secret_file = tr.RelayTest.secret_file
    check_payload = tr.RelayTest.check_payload
    dead_letters = tr.RelayTest.dead_letters

    def setUp(self):
        tr.TOWERD = TOWERD
        self.setUp_relay()

    def conf(self, text, name="relay.ini"):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assert_entity_order(self, reqs, seqs):
        """Each entity's requests (every attempt) arrive in stream order."""
        last = {}
        for q in reqs:
            s = seqs[q["doc"]["event"]["eventId"]]
            for ent in entities(q["doc"]):
                self.assertGreaterEqual(s, last.get(ent, 0), "%s: seq %d after seq %d" % (ent, s, last.get(ent, 0)))
                last[ent] = s

    def max_overlap(self, reqs):
        """The most requests in flight at once, from the receiver's arrival and answer times."""
        marks = sorted([(q["t"], 1) for q in reqs] + [(q["answered"] or q["t"], -1) for q in reqs])
        n = best = 0
        for _, d in marks:
            n += d
            best = max(best, n)
        return best

    # ---- 1
    def test_1_per_entity_order_with_random_delays(self):
        rnd = random.Random(11)
        secret = tr.new_secret()

        def behave(req):
            if req["n"] == 1 and rnd.random() < 0.1:
                return {"status": 503}
            return {"delay": rnd.random() * 0.02}

        rc = self.receiver(behave)
        stream = self.publish(workload(240))
        seqs = {eid: s for s, eid in stream}
        conf = self.conf("[destination hook]\nurl = %s\nevents = *\nsecret_file = %s\nbackoff_min = 20ms\n"
                         "backoff_max = 50ms\nbreaker_failures = 1000\n"
                         % (rc.url("/h"), self.secret_file(secret)))
        r = self.relay(conf).start()
        self.wait_checkpoints(["hook"], self.last_seq(), timeout=60)
        reqs = rc.snapshot()
        for q in reqs:
            self.check_payload(q, "hook", seqs, secret=secret)
        ok = tr.ok_ids(reqs)
        self.assertEqual(sorted(ok), sorted(seqs), "every event delivered once")
        self.assertGreater(sum(1 for q in reqs if q["status"] == 503), 5, "some first attempts refused")
        self.assert_entity_order(reqs, seqs)
        overlap = self.max_overlap(reqs)
        fx.log("lanes = 8: %d requests, at most %d at once" % (len(reqs), overlap))
        self.assertGreater(overlap, 1, "requests overlap: the lanes work side by side")
        self.assertLessEqual(overlap, 8, "one request per lane at most")
        self.wait_status("hook", delivered=len(seqs), dead=0, backlog=0, checkpoint=self.last_seq())
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 2
    def test_2_kill9_with_lanes_in_flight(self):
        rnd = random.Random(5)
        rc = self.receiver(lambda req: {"delay": 0.005 + rnd.random() * 0.03})
        stream = self.publish(workload(300))
        seqs = {eid: s for s, eid in stream}
        last = self.last_seq()
        conf = self.conf("[destination hook]\nurl = %s\nevents = *\nlanes = 8\n" % rc.url("/k"))
        r = self.relay(conf).start()

        def busy():
            with rc.cond:
                return len(rc.reqs) >= 60 and len(rc.inflight) >= 2
        self.wait(busy, 30, "60 requests and two in flight")
        r.kill9()
        t_kill = time.monotonic()
        ck = self.checkpoint("hook") or 0

        # What the killed relay had sent may still be on its way into the receiver's threads (each lane's
        # request, read when its thread gets a CPU): wait until all of it is read and answered, so that
        # every request after `before` is the restarted relay's.
        def settled():
            with rc.cond:
                return not rc.inflight and rc.reqs and time.monotonic() - rc.reqs[-1]["t"] > 0.5
        self.wait(settled, 30, "the killed relay's requests read and answered", relays=[])
        before = rc.snapshot()
        fx.log("killed at checkpoint %d after %d requests" % (ck, len(before)))
        answered = {q["doc"]["event"]["eventId"] for q in before
                    if q["answered"] is not None and q["answered"] < t_kill and 200 <= q["status"] < 300}
        for eid, s in seqs.items():
            if s <= ck:
                self.assertIn(eid, answered, "the checkpoint %d passed seq %d, never answered" % (ck, s))
        r.start()
        self.wait_checkpoints(["hook"], last, timeout=60)
        reqs = rc.snapshot()
        self.assertEqual(set(tr.ok_ids(reqs)), set(seqs), "every event delivered")
        by_id = {}
        for q in reqs:
            by_id.setdefault(q["doc"]["event"]["eventId"], []).append(q)
        for eid, qs in by_id.items():
            if len(qs) > 1:
                self.assertGreater(seqs[eid], ck, "%s repeated though the checkpoint had passed it" % eid)
                self.assertEqual({q["headers"].get("webhook-id") for q in qs}, {eid + ".hook"})
                self.assertEqual(len({q["body"] for q in qs}), 1, "a repeat carries the same body")
        fx.log("repeats after kill -9: %d" % sum(1 for qs in by_id.values() if len(qs) > 1))
        self.assert_entity_order(reqs[len(before):], seqs)
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 4
    def test_4_dead_letters_and_the_breaker_across_lanes(self):
        healthy = threading.Event()
        refused = {"ev-%03d" % i for i in (3, 10, 17)}

        def behave(req):
            eid = req["doc"]["event"]["eventId"]
            return {"status": 400 if eid in refused else 200 if healthy.is_set() else 500}

        rc = self.receiver(behave)
        stream = self.publish(workload(40))
        seqs = {eid: s for s, eid in stream}
        conf = self.conf("[destination hook]\nurl = %s\nevents = *\nlanes = 4\nbreaker_failures = 3\n"
                         "breaker_cooldown = 300ms\nbackoff_min = 20ms\nbackoff_max = 50ms\nmax_attempts = 1000\n"
                         % rc.url("/b"))
        r = self.relay(conf).start()
        self.wait_status("hook", timeout=15, breaker="open")
        healthy.set()
        self.wait_checkpoints(["hook"], self.last_seq(), timeout=30)
        self.wait_status("hook", timeout=10, breaker="closed", dead=len(refused))
        reqs = rc.snapshot()
        self.assertEqual(set(tr.ok_ids(reqs)), set(seqs) - refused, "every other event delivered")
        dead = self.dead_letters("hook")
        self.assertEqual(sorted(d["eventId"] for d in dead), sorted(refused))
        for d in dead:
            self.assertEqual(d["seq"], seqs[d["eventId"]], d)
            self.assertEqual(d["attempts"][-1]["status"], 400, d)
        self.assert_entity_order(reqs, seqs)
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 3
    def test_3_hostile_lanes_values(self):
        head = "[destination a]\nurl = http://127.0.0.1:9/x\nevents = *\n"
        cases = [("0", 'lanes "0" is not a positive integer'), ("-3", 'lanes "-3" is not a positive integer'),
                 ("65", "lanes 65 is more than 64"), ("many", 'lanes "many" is not a positive integer'),
                 ("", 'lanes "" is not a positive integer'), ("1.5", 'lanes "1.5" is not a positive integer'),
                 ("0x10", 'lanes "0x10" is not'), ("99999999999999999999", "is not a positive integer"),
                 ("8\x01", "lanes"), ("4\nlanes = 4", 'key "lanes" given twice')]
        files = [(head + "lanes = %s\n" % v, 4 if "given twice" not in want else 5, want) for v, want in cases]
        files += [(head + "lanes = 4\nbatch = 20\n", 4, "lanes and batch exclude each other"),
                  ("[destination m]\nkind = email\nurl = smtp://127.0.0.1:9\nfrom = t@example.com\n"
                   "to = o@example.com\nevents = *\nlanes = 2\n", 7,
                   "lanes is only for kind = webhook or slack event destinations")]
        for i, (text, line, want) in enumerate(files):
            path = self.conf(text, "bad-%d.ini" % i)
            res = self.t.run("relay", "--nats", self.nats.url, "--relay", path, "--state",
                             os.path.join(self.root, "state-%d" % i), timeout=15)
            self.assertEqual(res.rc, 2, "%r: %s" % (text, res.describe()))
            self.assertIn("%s:%d:" % (path, line), res.err, "%r: %s" % (text, res.describe()))
            self.assertIn(want, res.err, "%r: %s" % (text, res.describe()))


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
