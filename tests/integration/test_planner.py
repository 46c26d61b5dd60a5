#!/usr/bin/env python3
"""Integration tests of readiness orchestration: a kind = route_planner relay destination
(docs/outbound.md "Route planner").

usage: test_planner.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, events published with `towerd publish`, `towerd relay` processes and an HTTP route
planner written here (test_relay.py's Receiver):

1. once per shipment set: only shipments that are ready and not blocked for DOCK_CAPACITY or CARRIER (nor
   routed, nor of a cancelled order) are requested, each once, with webhook-id = the set's id + destination;
   each request taken is on the stream as its routeRequested (source tms), exactly once; an unblock
   releases a blocked one; a restart and a kill -9 with a request in flight ask nothing twice.
2. an outage: 503 with Retry-After, the breaker opens, the requests are held (the status lists them; `towerd
   serve` says on the pending_route items and the order answer "route planner unavailable since HH:MM");
   the planner back, the held requests go out, the breaker closes, the items say "route requested".
3. hostile planner answers: a redirect, 400 and a garbage 200 body: a refusal is a dead letter holding the
   request, never asked again; `--redrive` queues it again and it goes out.
5. a request taken while NATS is down: recorded once NATS is back, the planner not asked again.
4. `towerd up --relay FILE` with its route planner simulator: bad --planner-sim knobs exit 2 naming the
   knob; the loop runs (requests taken, routePlanned or
   routeFailed on the stream for them: on the shipment's page); hostile requests to the simulator (wrong
   method, no or huge body, not JSON, not a routeRequested, no webhook-id) are refused with 4xx, and a repeat
   of a request taken is answered without planning twice.
"""

import json
import os
import re
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_relay as tr  # noqa: E402

TOWERD = None
SANITIZER = r"(AddressSanitizer|LeakSanitizer|runtime error:)"


def ev(eid, etype, sec, **kw):
    """An event of the readiness types; payload fields in kw['p']."""
    system = {"shipmentReady": "wms", "shipmentBlocked": "wms", "shipmentUnblocked": "wms", "routePlanned": "tms",
              "orderCancelled": "erp", "orderCreated": "erp"}[etype]
    e = {"eventId": eid, "occurredAt": "2026-11-27T10:%02d:%02dZ" % (sec // 60 % 60, sec % 60),
         "source": {"system": system}}
    for k in ("orderId", "shipmentId", "routeId"):
        if k in kw:
            e[k] = kw[k]
    e[etype] = kw.get("p", {})
    return e


def ready(eid, sec, order, ship, wh="dc-1"):
    return ev(eid, "shipmentReady", sec, orderId=order, shipmentId=ship, p={"warehouseId": wh, "dockId": "D1"})


def blocked(eid, sec, ship, reason):
    return ev(eid, "shipmentBlocked", sec, shipmentId=ship, p={"reason": reason})


def req_ships(reqs):
    """The shipment ids of the requests answered 2xx, in order."""
    return [s for r in reqs if r["status"] and 200 <= r["status"] < 300
            for s in r["doc"]["event"]["routeRequested"]["shipmentIds"]]


class PlannerTest(unittest.TestCase):
    maxDiff = 6000

    def planner_conf(self, rc, **kw):
        keys = {"url": rc.url("/plan"), "kind": "route_planner", "backoff_min": "100ms", "backoff_max": "2s",
                "timeout": "2s"}
        keys.update(kw)
        return self.relay_file([("planner", keys)])

    def requested_on_stream(self):
        """eventId -> how many times the stream holds it, for the routeRequested ids (rr-...)."""
        counts = {}
        for _, eid in fx.stream_event_ids(self.nc, tr.STREAM):
            if eid.startswith("rr-"):
                counts[eid] = counts.get(eid, 0) + 1
        return counts

    def test_1_once_per_set(self):
        rc = self.receiver(lambda req: {"hang": 30} if req["doc"]["event"]["routeRequested"]["shipmentIds"] == ["S7"]
                           and req["n"] == 1 else None)
        r = self.relay(self.planner_conf(rc)).start()
        self.publish([
            ready("a1", 1, "O1", "S1"),
            blocked("b2", 2, "S2", "DOCK_CAPACITY"), ready("a2", 3, "O2", "S2"),
            blocked("b3", 4, "S3", "INVENTORY"), ready("a3", 5, "O3", "S3"),  # not a routing block
            ev("p4", "routePlanned", 6, routeId="R4", p={"stops": [{"shipmentId": "S4", "sequence": 1}]}),
            ready("a4", 7, "O4", "S4"),  # routed already
            blocked("b5", 8, "S5", "CARRIER"), ev("u5", "shipmentUnblocked", 9, shipmentId="S5"),
            ready("a5", 10, "O5", "S5"),
            ev("c6", "orderCancelled", 11, orderId="O6", p={"reason": "customer"}), ready("a6", 12, "O6", "S6"),
        ])
        self.wait(lambda: self.status("planner") and self.status("planner").get("delivered") == 3, 20,
                  "three requests", lambda: str(self.status("planner")), )
        self.assertEqual(sorted(req_ships(rc.snapshot())), ["S1", "S3", "S5"])
        for q in rc.snapshot():
            e = q["doc"]["event"]
            self.assertEqual(q["headers"]["webhook-id"], e["eventId"] + ".planner")
            self.assertRegex(e["eventId"], r"^rr-[0-9a-f]{24}$")
            self.assertEqual(e["source"]["system"], "tms")
            self.assertEqual(e["routeRequested"]["warehouseId"], "dc-1")
        self.wait(lambda: len(self.requested_on_stream()) == 3, 10, "three routeRequested on the stream")
        # The unblock releases S2; a second shipmentReady of S1 asks nothing again, nor does a restart.
        self.assertEqual(r.stop(), 0, r.log())
        self.publish([ev("u2", "shipmentUnblocked", 13, shipmentId="S2"), ready("a1b", 14, "O1", "S1")])
        r.start()
        self.wait(lambda: self.status("planner") and self.status("planner").get("delivered") == 1, 20, "S2 requested")
        self.assertEqual(sorted(req_ships(rc.snapshot())), ["S1", "S2", "S3", "S5"])
        # kill -9 with S7's request in flight (the planner hangs): after a restart it is asked again with the
        # same id, taken once, recorded once.
        self.publish([ready("a7", 15, "O7", "S7")])
        self.wait(lambda: rc.inflight, 20, "S7's request in flight")
        r.kill9()
        rc.release()
        r.start()
        self.wait(lambda: "S7" in req_ships(rc.snapshot()), 20, "S7 requested after the kill")
        s7 = [q["id"] for q in rc.snapshot() if q["doc"]["event"]["routeRequested"]["shipmentIds"] == ["S7"]]
        self.assertEqual(len(set(s7)), 1, "the same webhook-id: %s" % s7)
        self.wait(lambda: len(self.requested_on_stream()) == 5, 10, "five routeRequested on the stream",
                  lambda: str(self.requested_on_stream()))
        self.assertEqual(set(self.requested_on_stream().values()), {1}, "each recorded once")
        self.assertEqual(sorted(req_ships(rc.snapshot())), ["S1", "S2", "S3", "S5", "S7"], "nothing asked twice")

    def test_2_outage_held_and_released(self):
        down = {"on": True}
        rc = self.receiver(lambda req: {"status": 503, "headers": {"Retry-After": "1"}} if down["on"] else None)
        conf = self.relay_file([("planner", {"url": rc.url("/plan"), "kind": "route_planner", "backoff_min": "100ms",
                                             "backoff_max": "2s", "timeout": "2s", "breaker_failures": 2,
                                             "breaker_cooldown": "1s"}),
                                # Its breaker opens during the outage too: with the default 30 s cooldown its
                                # delivery after it came later than the wait below whenever the outage was short.
                                ("notify", {"url": rc.url("/notify"), "events": "shipmentReady", "backoff_min": "100ms",
                                            "backoff_max": "500ms", "max_attempts": 1000, "breaker_cooldown": "1s"})])
        r = self.relay(conf).start()
        data = os.path.join(self.root, "store")
        proj = fx.Projector(self.t, data, url=self.nats.url)
        srv = fx.TowerServe(self.t, data, os.path.join(self.root, "serve.log"),
                            args=["--nats", self.nats.url, "--relay", conf, "--relay-state", self.state])
        self.addCleanup(srv.kill)
        self.addCleanup(proj.close)
        proj.start()
        srv.start()
        self.publish([ready("a1", 1, "O1", "S1"), ready("a2", 2, "O2", "S2")])
        st = self.wait(lambda: (s := self.status("planner")) and s["breaker"] == "open" and s["held"] == 2 and s,
                       20, "the breaker open, two requests held", lambda: str(self.status("planner")))
        self.assertEqual(sorted(st["heldShipments"]), ["S1", "S2"])

        def items():
            with urllib.request.urlopen(srv.url + "/api/v1/views/pending_route", timeout=5) as f:
                return {i["shipmentId"]: i for i in json.load(f)["items"]}
        held = self.wait(lambda: (it := items()) and len(it) == 2 and all("routeRequest" in i for i in it.values())
                         and it, 20, "pending_route items with the reason", lambda: str(items()))
        rr = held["S1"]["routeRequest"]
        self.assertEqual(rr["state"], "held")
        self.assertRegex(rr["reason"], r"^route planner unavailable since \d\d:\d\d$")
        with urllib.request.urlopen(srv.url + "/api/v1/orders/O1", timeout=5) as f:
            order = json.load(f)
        dl = {d["destination"]: d for d in order.get("deliveries", [])}
        self.assertEqual(dl.get("planner", {}).get("status"), "queued", order.get("deliveries"))
        self.assertRegex(dl["planner"]["reason"], r"^route planner unavailable since \d\d:\d\d$")
        self.assertEqual(dl.get("notify", {}).get("status"), "failing", order.get("deliveries"))
        self.assertRegex(dl["notify"]["text"], r"^notify: shipmentReady failing since \d\d:\d\d \(.*503.*\)$")
        self.assertEqual(dl["notify"]["about"], "order O1")
        down["on"] = False
        self.wait(lambda: (s := self.status("planner")) and s["held"] == 0 and s["breaker"] == "closed", 20,
                  "released when the planner is back", lambda: str(self.status("planner")))
        self.assertEqual(sorted(req_ships(rc.snapshot("/plan"))), ["S1", "S2"])
        self.wait(lambda: all(i.get("routeRequest", {}).get("state") == "requested" for i in items().values()), 20,
                  "the items say requested", lambda: str(items()))

        def order_dl():
            with urllib.request.urlopen(srv.url + "/api/v1/orders/O1", timeout=5) as f:
                return {d["destination"]: d["status"] for d in json.load(f).get("deliveries", [])}
        self.wait(lambda: order_dl() == {"planner": "requested", "notify": "delivered"}, 20,
                  "the order says what each destination did", lambda: str(order_dl()))
        self.assertEqual(r.stop(), 0, r.log())
        self.assertEqual(srv.stop(), 0, srv.log())
        self.assertNotRegex(fx.tail(srv.log_path, 2000), SANITIZER, srv.log(200))

    def test_3_hostile_answers(self):
        def behave(req):
            s = req["doc"]["event"]["routeRequested"]["shipmentIds"][0]
            if s == "S1":
                return {"status": 302, "headers": {"Location": "http://127.0.0.1:1/"}}
            if s == "S2":
                return {"status": 400} if req["n"] == 1 else None
            return {"status": 200, "headers": {"Retry-After": "-5", "X-Junk": "\u00ff" * 50}}
        rc = self.receiver(behave)
        conf = self.planner_conf(rc)
        r = self.relay(conf).start()
        self.publish([ready("a1", 1, "O1", "S1"), ready("a2", 2, "O2", "S2"), ready("a3", 3, "O3", "S3")])
        self.wait(lambda: (s := self.status("planner")) and s["dead"] == 2 and s["delivered"] == 1, 20,
                  "two refusals, one taken", lambda: str(self.status("planner")))
        dead = self.dead_letters("planner")
        self.assertEqual(sorted(d["request"]["routeRequested"]["shipmentIds"][0] for d in dead), ["S1", "S2"])
        red = self.t.run("relay", "--nats", self.nats.url, "--relay", conf, "--state", self.state,
                         "--redrive", "planner", check=0)
        self.assertIn("queued again", red.out + red.err)
        self.wait(lambda: "S2" in req_ships(rc.snapshot()), 20, "S2 asked again after the redrive")
        self.assertEqual(sorted(req_ships(rc.snapshot())), ["S2", "S3"])
        self.assertEqual(r.stop(), 0, r.log())


    def test_5_taken_while_nats_is_down(self):
        # The planner takes a request while NATS is down: it is recorded once NATS is back, without asking the
        # planner again.
        gate = {"hold": True}
        rc = self.receiver(lambda req: {"hang": 30, "status": 200} if gate["hold"] else None)
        r = self.relay(self.planner_conf(rc)).start()
        self.publish([ready("a1", 1, "O1", "S1")])
        self.wait(lambda: rc.inflight, 20, "the request in flight")
        self.nats.stop()
        gate["hold"] = False
        rc.release()
        self.wait(lambda: "recorded on the stream" in ((self.status("planner") or {}).get("lastError") or ""), 20,
                  "the relay says it cannot record it", lambda: str(self.status("planner")))
        self.nats.start()
        self.wait(lambda: (s := self.status("planner")) and s["held"] == 0, 30, "recorded, out of the queue",
                  lambda: str(self.status("planner")))
        self.nc.close()
        self.nc = fx.NatsClient(self.nats.port)
        self.assertEqual(list(self.requested_on_stream().values()), [1])
        self.assertEqual(len(rc.snapshot("/plan")), 1, "the planner was asked once")
        self.assertEqual(r.stop(), 0, r.log())

    def test_4_up_simulator(self):
        port = fx.free_port()
        conf = self.relay_file([("planner", {"url": "http://127.0.0.1:%d/plan" % port, "kind": "route_planner",
                                             "timeout": "2s", "backoff_min": "100ms", "backoff_max": "1s"})])
        data = os.path.join(self.root, "data")
        for knobs, word in (("fail=2,speed=1", "fail \"2\" is not a share"),
                            ("outage=1s/2s,speed=1", "unknown knob \"speed\"")):
            bad = self.t.run("up", "--data", os.path.join(self.root, "bad"), "--http", "127.0.0.1:%d" % fx.free_port(),
                             "--no-sla", "--relay", conf, "--planner-sim", knobs, "--web", self.root, timeout=60)
            self.assertEqual(bad.rc, 2, bad.describe())
            self.assertIn(word, bad.err)
        up = fx.Up(self.t, self.root, data, ["--seed", "7", "--orders", "20", "--rate", "1500", "--warp", "10000",
                                            "--web", self.root, "--supervisor-rate", "0", "--progress", "0",
                                            "--relay", conf, "--planner-sim",
                                            "fail=0,outage=0/0,latency=0,plan_delay=0,route_fail=0"])
        self.addCleanup(up.close)
        up.start()
        self.wait(lambda: (s := self.status_in(data)) and s.get("delivered", 0) >= 1, 60, "requests taken",
                  lambda: up.logs())
        base = "http://127.0.0.1:%d/plan" % port

        def post(body, method="POST", headers=None):
            rq = urllib.request.Request(base, data=body, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(rq, timeout=10) as f:
                    return f.status, f.read()
            except urllib.error.HTTPError as e:
                return e.code, e.read()
        good = json.dumps({"version": 1, "event": {
            "eventId": "rr-test", "occurredAt": "2026-11-27T10:00:00Z", "source": {"system": "tms"},
            "routeRequested": {"shipmentIds": ["SX-1"]}}}).encode()
        wid = {"webhook-id": "rr-test.planner", "Content-Type": "application/json"}
        for body, method, hdr, want in [(None, "GET", wid, 405), (b"", "POST", wid, 400),
                                        (b"x" * 70000, "POST", wid, 413), (b"{not json", "POST", wid, 400),
                                        (b'{"event": {"eventId": "a"}}', "POST", wid, 400),
                                        (b'{"event": {"eventId": "a", "occurredAt": "2026-11-27T10:00:00Z", '
                                         b'"source": {"system": "erp"}, "orderId": "O", "orderCreated": {}}}',
                                         "POST", wid, 400),
                                        (b"[" * 5000 + b"]" * 5000, "POST", wid, 400),
                                        (good, "POST", {}, 400)]:
            st, _ = post(body, method, hdr)
            self.assertEqual(st, want, "%r %s" % ((body or b"")[:40], method))
        self.assertEqual(post(good, headers=wid)[0], 202)
        self.assertEqual(post(good, headers=wid)[0], 200, "a repeat is not planned twice")

        def planned():
            try:
                with urllib.request.urlopen(up.base + "/api/v1/shipments/SX-1", timeout=5) as f:
                    return [t for t in json.load(f).get("timeline", []) if "route" in json.dumps(t)]
            except urllib.error.HTTPError:
                return []
        got = self.wait(planned, 30, "the simulator's routePlanned for SX-1 on the stream", lambda: up.logs())
        self.assertEqual(len([t for t in got if "RT-P" in json.dumps(t)]), 1, got)
        self.assertIsNone(up.proc.poll(), "up still runs after the hostile requests")
        with urllib.request.urlopen(up.base + "/metrics", timeout=10) as f:
            self.assertRegex(f.read().decode(), r'(?m)^tower_relay_held_requests\{destination="planner"\} \d+$')
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertNotRegex(fx.tail(up.err_path, 5000), SANITIZER, up.logs())

    def status_in(self, data):
        return self.status("planner", state=os.path.join(data, "relay"))


for _name in ("setUp", "tearDown", "receiver", "publish", "relay_file", "relay", "status", "dead_letters", "wait",
              "checkpoint"):
    setattr(PlannerTest, _name, getattr(tr.RelayTest, _name))


def main():
    def prepare():
        tr.TOWERD = TOWERD
    return fx.main(sys.modules[__name__], prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
