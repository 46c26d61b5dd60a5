#!/usr/bin/env python3
"""Integration test of predicted risk (docs/risk.md) against a real nats-server, projector and `towerd serve`.

usage: test_risk.py TOWERD [TEST_NAME_SUBSTRING...]

A constructed trace: 25 orders delivered 10 h after picking started at dc-2 (the lead-time statistics), and
open orders with promises. `towerd sla --once --now T` raises exactly the expected at-risk set (late by more
than 90 min for at least 90 min, from the statistics or the SLA-chain fallback; not an order without a
promise, not one in time, not one that entered its stage 10 minutes ago); a second run (a restart) raises
nothing again; a later promise brings an order back on track after the dwell; delivered and cancelled orders
leave the view. The at_risk view is served with its fields, GET /api/v1/leadtimes gives the statistics
(and refuses bad parameters naming them), /metrics counts tower_orders_at_risk per warehouse.
"""

import datetime
import json
import os
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
from test_sla import AlertReceiver  # noqa: E402  (a stand-in Alertmanager)

TOWERD = None
H = 3600
# Business time two days ago on a whole hour: everything happens in the real clock's past.
T0 = (int(fx.time.time()) // H) * H - 2 * 24 * H
T1 = T0 + 20 * H  # the open orders start picking here; the deliveries are done by then


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ev(eid, at, system, **body):
    e = {"eventId": eid, "occurredAt": rfc3339(at), "source": {"system": system}}
    e.update(body)
    return e


def order(oid, wh, t_pick, promise=None, created=None):
    created = t_pick if created is None else created
    oc = {"warehouseId": wh}
    if promise is not None:
        oc["promisedBy"] = rfc3339(promise)
    return [ev(oid + "-c", created, "erp", orderId=oid, orderCreated=oc),
            ev(oid + "-p", t_pick, "wms", orderId=oid, pickStarted={})]


def delivered(oid, wh, t_pick, lead):
    sid = oid + "-S"
    return order(oid, wh, t_pick) + [
        ev(oid + "-k", t_pick + 600, "wms", orderId=oid, shipmentId=sid, packCompleted={}),
        ev(oid + "-d", t_pick + lead, "carrier", shipmentId=sid, deliveryCompleted={})]


def get(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Risk(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-risk-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self.data = os.path.join(self.root, "data")
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start()
        self.client = fx.NatsClient(self.nats.url)
        self.addCleanup(self.client.close)
        self.n = 0

    def publish(self, events):
        self.n += 1
        path = os.path.join(self.root, "events-%d.ndjson" % self.n)
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        r = self.t.publish(path, check=0)
        fx.wait_caught_up(self.t, self.data, self.client, self.proj)
        return r

    def sla_once(self, now, *extra):
        r = self.t.run("sla", "--once", "--nats", self.nats.url, "--data", self.data, "--now", rfc3339(now),
                       *extra, check=0, timeout=60)
        fx.wait_caught_up(self.t, self.data, self.client, self.proj)
        return r.json()

    def at_risk(self):
        return {i["orderId"]: i for i in self.t.dump(self.data)["at_risk"]}

    def risk_ids(self):
        return sorted(eid for _, eid in fx.stream_event_ids(self.client) if eid and eid.startswith("risk-"))

    def test_at_risk_lifecycle(self):
        trace = []
        for i in range(25):
            trace += delivered("D%02d" % i, "dc-2", T0 + i * 60, 10 * H)
        trace += order("R1", "dc-2", T1, promise=T1 + 4 * H)                  # expected T1+10h: late by 6 h
        trace += order("R2", "dc-2", T1, promise=T1 + 11 * H)                 # in time by 1 h
        trace += order("R3", "dc-2", T1)                                       # no promise
        trace += order("R4", "dc-2", T1 + 110 * 60, promise=T1 + 4 * H, created=T1)  # late, but 10 min in PICKING
        trace += order("R5", "dc-9", T1, promise=T1 + 4 * H)                  # no statistics: the SLA chain
        trace += order("R6", "dc-2", T1, promise=T1 + 4 * H)                  # late: raised, then cancelled
        self.publish(trace)

        now = T1 + 2 * H
        out = self.sla_once(now)
        self.assertEqual(out["riskRaised"], 3, out)
        self.assertEqual(out["riskOpen"], 5, out)  # R1, R2, R4, R5, R6
        items = self.at_risk()
        self.assertEqual(sorted(items), ["R1", "R5", "R6"])
        r1 = items["R1"]
        self.assertEqual(r1["stage"], "PICKING")
        self.assertEqual(r1["warehouseId"], "dc-2")
        self.assertEqual(r1["promisedBy"], rfc3339(T1 + 4 * H))
        self.assertEqual(r1["basis"], "p50 of 25 orders from PICKING at dc-2")
        self.assertAlmostEqual(fx_ts(r1["predictedBy"]), T1 + 10 * H, delta=0.07 * 10 * H)
        self.assertAlmostEqual(fx_ts(r1["since"]), now, delta=30)  # the engine's clock runs on from --now
        self.assertTrue(r1["exceptionId"])
        self.assertIn("SLA windows from PICKING", items["R5"]["basis"])
        self.assertEqual(self.risk_ids(), ["risk-R1-1", "risk-R5-1", "risk-R6-1"])

        # A restart (another --once a minute later) raises nothing again; the open items are alerts of their own
        # severity.
        am = AlertReceiver().start()
        self.addCleanup(am.stop)
        out = self.sla_once(now + 60, "--alertmanager", "http://127.0.0.1:%d" % am.port, "--risk-severity", "info",
                            "--dashboard-url", "http://tower.example")
        self.assertEqual(out["riskRaised"], 0, out)
        self.assertEqual(len(self.risk_ids()), 3)
        alerts = {o: am.alerts(o) for o in ("R1", "R5", "R6")}
        for o, got in alerts.items():
            self.assertEqual(len(got), 1, (o, got))
            labels, ann = got[0][1]["labels"], got[0][1]["annotations"]
            self.assertEqual((labels["alertname"], labels["severity"], labels["stage"]),
                             ("TowerOrderAtRisk", "info", "PICKING"), labels)
            self.assertEqual(ann["runbook_url"], "http://tower.example/#/runbook?view=at_risk")
        self.assertIn("waiting in PICKING at dc-2", alerts["R1"][0][1]["annotations"]["summary"])
        self.assertEqual(am.problems(), [])

        # The API: the view, the statistics, bad parameters, the metric.
        srv = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve.log"), args=["--no-nats"])
        self.addCleanup(srv.kill)
        srv.start()
        st, body = get(srv.url + "/api/v1/views/at_risk")
        self.assertEqual(st, 200, body)
        self.assertEqual(sorted(i["orderId"] for i in json.loads(body)["items"]), ["R1", "R5", "R6"])
        # sort=slack: the latest against its promise first (promisedBy - predictedBy), ties oldest first.
        st, body = get(srv.url + "/api/v1/views/at_risk?sort=slack")
        self.assertEqual(st, 200, body)
        got = json.loads(body)["items"]

        def slack(i):
            return fx_ts(i["promisedBy"]) - fx_ts(i["predictedBy"])
        self.assertGreater(len({slack(i) for i in got}), 1, "the items should differ in slack")
        self.assertEqual([i["orderId"] for i in got],
                         [i["orderId"] for i in sorted(got, key=lambda i: (slack(i), fx_ts(i["since"]), i["key"]))])
        st, body = get(srv.url + "/api/v1/views/at_risk?sort=late")
        self.assertEqual((st, json.loads(body)["error"]["field"]), (400, "sort"), body)
        st, body = get(srv.url + "/api/v1/leadtimes?stage=PICKING&warehouse=dc-2&at=" + rfc3339(now))
        self.assertEqual(st, 200, body)
        keys = json.loads(body)["keys"]
        self.assertEqual([(k["stage"], k["warehouseId"], k["carrierId"], k["samples"]) for k in keys],
                         [("PICKING", "dc-2", None, 25)], body)
        self.assertAlmostEqual(keys[0]["p50Seconds"], 10 * H, delta=0.07 * 10 * H)
        for qs, field in (("stage=picking", "stage"), ("window=0", "window"), ("percentile=100", "percentile"),
                          ("warehouse=" + "x" * 65, "warehouse"), ("at=now", "at")):
            st, body = get(srv.url + "/api/v1/leadtimes?" + qs)
            self.assertEqual(st, 400, qs)
            self.assertEqual(json.loads(body)["error"]["field"], field, body)
        st, body = get(srv.url + "/metrics")
        self.assertIn('tower_orders_at_risk{warehouse="dc-2"} 2', body)
        self.assertIn('tower_orders_at_risk{warehouse="dc-9"} 1', body)
        srv.stop()

        # Back on track: a new promise (the latest orderCreated), after the dwell of 1 h. Delivered (R5) and
        # cancelled (R6) orders leave the view and are not evaluated any more.
        self.publish([ev("R1-c2", T1 + 5, "erp", orderId="R1",
                         orderCreated={"warehouseId": "dc-2", "promisedBy": rfc3339(T1 + 20 * H)}),
                      ev("R5-k", now + 120, "wms", orderId="R5", shipmentId="R5-S", packCompleted={}),
                      ev("R5-d", now + 180, "carrier", shipmentId="R5-S", deliveryCompleted={}),
                      ev("R6-x", now + 180, "erp", orderId="R6", orderCancelled={})])
        self.assertEqual(sorted(self.at_risk()), ["R1"])
        out = self.sla_once(now + 30 * 60)  # within the dwell: no change yet
        self.assertEqual(out["riskCleared"], 0, out)
        out = self.sla_once(now + H + 60)
        self.assertEqual((out["riskCleared"], out["riskRaised"], out["riskOpen"]), (1, 0, 3), out)
        self.assertEqual(self.at_risk(), {})
        self.assertEqual(self.risk_ids(), ["risk-R1-1", "risk-R1-2", "risk-R5-1", "risk-R6-1"])

    def test_bad_risk_options_are_refused(self):
        for args, what in ((["--risk-percentile", "101"], "--risk-percentile"),
                           (["--risk-percentile", "49"], "--risk-percentile"),
                           (["--risk-window", "36h"], "--risk-window"),
                           (["--risk-window", "32d"], "--risk-window"),
                           (["--risk-min-samples", "0"], "--risk-min-samples"),
                           (["--risk-clear-late", "2h"], "--risk-clear-late"),
                           (["--risk-severity", "bad label"], "--risk-severity")):
            r = self.t.run("sla", "--once", "--nats", self.nats.url, "--data", self.data, *args, check=2)
            self.assertIn(what, r.err, args)
        r = self.t.run("sla", "--once", "--nats", self.nats.url, "--data", self.data,
                       env={"TOWER_SLA_RISK_PERCENTILE": "120"}, check=2)
        self.assertIn("--risk-percentile", r.err)


def fx_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main():
    global TOWERD
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    TOWERD = os.path.abspath(sys.argv[1])
    fx.install_signal_cleanup()
    fx.stretch_for_sanitizer(TOWERD)
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Risk)
    if len(sys.argv) > 2:
        suite = unittest.TestSuite(t for t in suite if any(s in t.id() for s in sys.argv[2:]))
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("%d passed, %d failed" % (res.testsRun - failed, failed))
    return 0 if failed == 0 and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
