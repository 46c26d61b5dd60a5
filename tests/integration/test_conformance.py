#!/usr/bin/env python3
"""Per-producer conformance: a bad producer's rejections by source.system, source.instance and code.

usage: test_conformance.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, `towerd projector` and `towerd serve`. Bad messages go on the bus from two producers
(protobuf and JSON) and through the HTTP ingest (hostile ones included); GET /api/v1/producers and /metrics
must show them by system, instance and code with counts, sequences and an example; after `towerd rebuild`
the dead letters' rows are the same but for their receive times (docs/contract/conformance.md).

Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None


def pb_bad(event_id, system, instance):
    """A protobuf event with an envelope and no payload (NO_PAYLOAD), from system/instance."""
    src = fx.pb_bytes(1, system) + (fx.pb_bytes(2, instance) if instance else b"")
    ts = fx.pb_uint(1, 1795766400)
    return fx.pb_bytes(1, event_id) + fx.pb_bytes(2, ts) + fx.pb_bytes(3, src) + fx.pb_bytes(4, "SO-1")


class Conformance(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-conform-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.data = os.path.join(self.root, "data")
        self.nc = fx.NatsClient(self.nats.port)
        self.addCleanup(self.nc.close)
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start()
        self.serve = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve.log"),
                                   args=["--nats", self.nats.url])
        self.addCleanup(self.serve.stop)
        self.serve.start()

    def get(self, path):
        with urllib.request.urlopen(self.serve.url + path, timeout=fx.tmo(10)) as r:
            body = r.read().decode()
            return json.loads(body) if path.startswith("/api/") else body

    def post(self, raw):
        req = urllib.request.Request(self.serve.url + "/api/v1/events", data=raw.encode(), method="POST")
        req.add_header("Content-Type", "application/x-ndjson")
        try:
            with urllib.request.urlopen(req, timeout=fx.tmo(30)) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def wait(self, cond, what, timeout=60):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.1)
        self.fail("waited %.0fs for %s" % (fx.tmo(timeout), what))

    def publish_bad(self):
        self.wait(lambda: self.nc.stream_info("TOWER_EVENTS"), "the events stream")
        for i in range(3):
            self.nc.js_publish("tower.evt.wms.pickShort", pb_bad("w-%d" % i, "wms", "wms-dc2"))
        bad_id = {"eventId": "c 1", "occurredAt": "2026-11-27T08:00:00Z",
                  "source": {"system": "carrier", "instance": "dhl-1"}, "shipmentId": "S-1", "podCaptured": {}}
        self.nc.js_publish("tower.evt.carrier.podCaptured", json.dumps(bad_id).encode())
        self.nc.js_publish("tower.evt.erp.orderApproved", fx.pb_event("ok-1", 1795766400, 0, "erp", "SO-9", "dc-1"))
        self.nc.js_publish("tower.evt.x.y", b"\xff\x00garbage")
        # Hostile JSON on the bus, read again for its source on the projector's thread: nested past the bound.
        deep = b'{"source":{"system":"wms","instance":"wms-dc2"},"x":' + b"[" * 20000 + b"]" * 20000 + b"}"
        self.nc.js_publish("tower.evt.wms.pickShort", deep)

    def rows(self, doc, part):
        return {(r["system"], r["instance"], r["code"]): r for r in doc[part]["rows"]}

    def test_1_dead_letters_by_producer_survive_rebuild(self):
        self.publish_bad()
        doc = self.wait(lambda: (lambda d: d if d["deadLetters"]["total"] == 6 else None)(self.get("/api/v1/producers")),
                        "6 dead letters by producer")
        rows = self.rows(doc, "deadLetters")
        wms = rows[("wms", "wms-dc2", "NO_PAYLOAD")]
        self.assertEqual(wms["count"], 3)
        self.assertEqual((wms["firstSeq"], wms["lastSeq"]), (1, 3))
        self.assertEqual(wms["example"]["seq"], 3)
        self.assertEqual(wms["example"]["eventId"], "w-2")
        self.assertIn("payload", wms["example"]["message"])
        self.assertLessEqual(wms["firstSeenAt"], wms["lastSeenAt"])
        dhl = rows[("carrier", "dhl-1", "INVALID_ID")]
        self.assertEqual(dhl["count"], 1)
        self.assertIn("eventId", dhl["example"]["message"])
        self.assertEqual(rows[("(unknown)", "(none)", "UNDECODABLE")]["count"], 1)
        self.assertEqual(rows[("(unknown)", "(none)", "TOO_LARGE")]["count"], 1)
        self.assertEqual(len(rows), 4, rows)

        metrics = self.get("/metrics")
        self.assertIn('tower_producer_dead_letters_total{system="wms",instance="wms-dc2",code="NO_PAYLOAD"} 3\n',
                      metrics)
        self.assertIn('tower_producer_dead_letters_total{system="carrier",instance="dhl-1",code="INVALID_ID"} 1\n',
                      metrics)

        self.t.run("rebuild", "--nats", self.nats.url, "--data", self.data, check=0, timeout=120)

        def strip(d):
            out = self.rows(d, "deadLetters")
            for r in out.values():
                r.pop("firstSeenAt")
                r.pop("lastSeenAt")
            return out
        want = strip(doc)
        self.wait(lambda: strip(self.get("/api/v1/producers")) == want, "the same rows after the rebuild")

    def test_2_ingest_rejections_by_producer(self):
        good = {"eventId": "e-1", "occurredAt": "2026-11-27T08:00:00Z", "source": {"system": "erp", "instance": "erp-eu"},
                "orderId": "SO-1", "orderApproved": {}}
        missing = dict(good, eventId="e-2")
        del missing["orderId"]
        hostile_instance = dict(good, eventId="e-3", source={"system": "erp", "instance": "x\"} 1\n" * 40})
        hostile_instance.pop("orderId")
        deep = '{"eventId":"e-4","source":{"system":"tms","instance":"rp-1"},"x":' + "[" * 5000 + "]" * 5000 + "}"
        body = "\n".join([json.dumps(good), json.dumps(missing), json.dumps(missing), json.dumps(hostile_instance),
                          deep, '{"source":{"system":"sap-ecc"}}']) + "\n"
        status, res = self.post(body)
        self.assertEqual(status, 400, res)
        self.assertEqual(res["rejected"], 5, res)
        doc = self.get("/api/v1/producers")
        rows = self.rows(doc, "ingestRejections")
        self.assertEqual(doc["ingestRejections"]["total"], 5)
        eu = rows[("erp", "erp-eu", "MISSING_FIELD")]
        self.assertEqual(eu["count"], 2)
        self.assertEqual(eu["example"]["eventId"], "e-2")
        self.assertNotIn("firstSeq", eu)
        self.assertEqual(rows[("erp", "(invalid)", "MISSING_FIELD")]["count"], 1)
        # The nesting is refused before its source can be read: whose it is stays unknown.
        self.assertEqual(rows[("(unknown)", "(none)", "TOO_LARGE")]["count"], 1)
        self.assertEqual(rows[("(other)", "(none)", "MISSING_FIELD")]["count"], 1)
        metrics = self.get("/metrics")
        self.assertIn('tower_producer_rejections_total{system="erp",instance="erp-eu",code="MISSING_FIELD"} 2\n',
                      metrics)
        self.assertNotIn("x\"}", metrics)
        # Never stored: the store's rows are untouched.
        self.assertEqual(doc["deadLetters"]["total"], 0)


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
