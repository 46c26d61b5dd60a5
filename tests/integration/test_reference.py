#!/usr/bin/env python3
"""Reference data (contract v1.2): definitions from the master data, UNKNOWN_CODE anomalies opening and clearing
whatever the arrival order, GET /api/v1/reference (with hostile query strings) and tower_unknown_codes.

usage: test_reference.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, `towerd projector` and `towerd serve` (docs/contract/reference.md).
Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import json
import os
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
N = [0]


def ev(system, instance, at, payload_name, payload, **env):
    N[0] += 1
    e = {"eventId": "ref-%d" % N[0], "occurredAt": at, "source": {"system": system}}
    if instance:
        e["source"]["instance"] = instance
    e.update(env)
    e[payload_name] = payload
    return e


def wh_def(code, tz, name="DC", at="2026-11-27T06:00:00Z"):
    return ev("mdm", "mdm-1", at, "warehouseDefined", {"warehouseId": code, "name": name, "region": "EU",
                                                        "timeZone": tz})


class Reference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = fx.make_tempdir("tower-it-reference-")
        cls.nats = fx.NatsServer(root=os.path.join(cls.root, "nats"))
        cls.nats.start()
        cls.t = fx.Towerd(TOWERD, cls.nats)
        cls.data = os.path.join(cls.root, "data")
        cls.nc = fx.NatsClient(cls.nats.port)
        cls.proj = fx.Projector(cls.t, cls.data, log_path=os.path.join(cls.root, "projector.log"))
        cls.proj.start()
        cls.serve = fx.TowerServe(cls.t, cls.data, os.path.join(cls.root, "serve.log"), args=["--nats", cls.nats.url])
        cls.serve.start()

    @classmethod
    def tearDownClass(cls):
        cls.serve.stop()
        cls.proj.close()
        cls.nc.close()
        cls.nats.close()
        fx.remove_tempdir(cls.root)

    def get(self, path):
        try:
            with urllib.request.urlopen(self.serve.url + path, timeout=fx.tmo(10)) as r:
                body = r.read().decode()
                return r.status, (json.loads(body) if path.startswith("/api/") else body)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "{}")

    def wait(self, cond, what, timeout=60):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.1)
        self.fail("waited %.0fs for %s" % (fx.tmo(timeout), what))

    def publish(self, *events):
        """Through the HTTP ingest (it publishes to JetStream with acks), then wait until the projector applied them."""
        body = "\n".join(json.dumps(e) for e in events).encode()
        req = urllib.request.Request(self.serve.url + "/api/v1/events", data=body, method="POST")
        req.add_header("Content-Type", "application/x-ndjson")
        with urllib.request.urlopen(req, timeout=fx.tmo(30)) as r:
            self.assertEqual(r.status, 200)
        last = self.nc.stream_info("TOWER_EVENTS")["state"]["last_seq"]
        self.wait(lambda: self.get("/api/v1/reference")[1].get("asOfSeq", 0) >= last, "seq %d applied" % last)

    def unknown(self, order):
        st, page = self.get("/api/v1/views/anomalies?limit=1000")
        self.assertEqual(st, 200)
        return sorted((i["kind"], i["code"], i.get("producer"), i.get("eventId")) for i in page["items"]
                      if i.get("rule") == "UNKNOWN_CODE" and i.get("orderId") == order)

    def test_1_definition_after_and_before(self):
        # The first warehouse definition makes dc-9 (named by the WMS) unknown; its definition clears it.
        self.publish(wh_def("dc-1", "Europe/Paris"))
        named = ev("wms", "wms-dc9", "2026-11-27T08:00:00Z", "pickStarted", {"warehouseId": "dc-9"}, orderId="RA-1")
        self.publish(named)
        self.assertEqual(self.unknown("RA-1"), [("warehouse", "dc-9", "wms", named["eventId"])])
        _, ref = self.get("/api/v1/reference")
        grp = [g for g in ref["unknown"]["groups"] if g["code"] == "dc-9"]
        self.assertEqual(len(grp), 1)
        self.assertEqual((grp[0]["kind"], grp[0]["producer"], grp[0]["producerInstance"], grp[0]["count"],
                          grp[0]["since"], grp[0]["runbook"]),
                         ("warehouse", "wms", "wms-dc9", 1, "2026-11-27T08:00:00Z", "rule/UNKNOWN_CODE"))
        exid = grp[0]["example"]["exceptionId"]
        st, ex = self.get("/api/v1/exceptions/" + exid)
        self.assertEqual((st, ex.get("view"), ex.get("item", {}).get("rule"), ex.get("item", {}).get("code")),
                         (200, "anomalies", "UNKNOWN_CODE", "dc-9"), ex)
        _, metrics = self.get("/metrics")
        self.assertIn('tower_unknown_codes{kind="warehouse",producer="wms"} 1', metrics)
        self.publish(wh_def("dc-9", "Asia/Tokyo"))
        self.assertEqual(self.unknown("RA-1"), [])
        # Defined before: an order naming dc-1 opens nothing.
        self.publish(ev("erp", "erp-eu", "2026-11-27T08:00:00Z", "orderApproved", {"warehouseId": "dc-1"},
                        orderId="RA-2"))
        self.assertEqual(self.unknown("RA-2"), [])

    def test_2_first_definition_of_a_kind_last(self):
        named = ev("erp", "erp-eu", "2026-11-27T09:00:00Z", "orderCreated",
                   {"lines": [{"sku": "SKU-A", "qty": 1}, {"sku": "SKU-B", "qty": 2}]}, orderId="RB-1")
        self.publish(named)
        self.assertEqual(self.unknown("RB-1"), [])  # no sku is defined at all: no rule applies
        self.publish(ev("mdm", None, "2026-11-27T06:00:00Z", "skuDefined", {"sku": "SKU-A", "unit": "EA"}))
        self.assertEqual(self.unknown("RB-1"), [("sku", "SKU-B", "erp", named["eventId"])])
        self.publish(ev("mdm", None, "2026-11-27T06:00:00Z", "skuDefined", {"sku": "SKU-B", "unit": "KG"}))
        self.assertEqual(self.unknown("RB-1"), [])

    def test_3_api(self):
        # The latest definition wins, whatever the arrival order.
        self.publish(wh_def("dc-7", "Europe/Berlin", "New", "2026-11-27T07:00:00Z"),
                     wh_def("dc-7", "Europe/London", "Old", "2026-11-27T05:00:00Z"))
        st, ref = self.get("/api/v1/reference?kind=warehouse")
        self.assertEqual(st, 200)
        dc7 = [w for w in ref["warehouses"] if w["warehouseId"] == "dc-7"]
        self.assertEqual([(w["name"], w["timeZone"], w["definedAt"]) for w in dc7],
                         [("New", "Europe/Berlin", "2026-11-27T07:00:00Z")])
        self.assertNotIn("skus", ref)
        self.assertGreaterEqual(ref["counts"]["warehouses"], 3)
        st, ref = self.get("/api/v1/reference?kind=warehouse&limit=1")
        self.assertEqual((st, len(ref["warehouses"]), ref["truncated"]["warehouses"]), (200, 1, True))

    def test_5_towerctl(self):
        ctl = os.path.join(os.path.dirname(os.path.dirname(TOWERD)), "towerctl", "towerctl")

        def towerctl(*args):
            p = subprocess.run([ctl, "--url", self.serve.url, "reference"] + list(args), capture_output=True,
                               text=True, timeout=fx.tmo(30))
            return p.returncode, p.stdout + p.stderr

        rc, out = towerctl()
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"dc-7 +New +EU +Europe/Berlin +2026-11-27T07:00:00")
        self.assertIn("skus defined (--kind sku lists them)", out)
        rc, out = towerctl("--kind", "sku")
        self.assertRegex(out, r"SKU-B +KG")
        self.assertEqual(towerctl("--kind", "x")[0], 2)

    def test_4_hostile_query_strings(self):
        for qs, field in [("kind=bogus", "kind"), ("kind=%00", "kind"), ("kind=" + "w" * 5000, "kind"),
                          ("limit=0", "limit"), ("limit=10001", "limit"), ("limit=abc", "limit"),
                          ("limit=99999999999999999999999", "limit"), ("limit=%00", "limit"), ("kind=%", "kind")]:
            st, body = self.get("/api/v1/reference?" + qs)
            self.assertEqual((st, body.get("error", {}).get("field")), (400, field), qs)
        st, _ = self.get("/api/v1/reference/x")
        self.assertEqual(st, 404)
        st, body = self.get("/api/v1/reference?kind=sku&kind=bogus&other=%ff")  # the first occurrence wins
        self.assertEqual(st, 200)
        self.assertIn("skus", body)


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
