#!/usr/bin/env python3
"""Integration tests of the ingest gateway, POST /api/v1/events, against a real nats-server.

usage: test_ingest.py TOWERD [PATTERN...]

Nothing is acknowledged with 2xx before JetStream acknowledged it; good events are stored even when
others in the same body are bad; every bad event is named with its field.
"""

import json
import socket
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None


def event(eid, order, payload="orderApproved", body=None, at="2026-11-27T08:00:00Z"):
    return {"eventId": eid, "occurredAt": at, "source": {"system": "erp"}, "orderId": order,
            payload: body if body is not None else {"warehouseId": "dc-1"}}


class Ingest(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-ingest-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.data = os.path.join(self.root, "data")
        self.port = fx.free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        log = open(os.path.join(self.root, "serve.log"), "ab")
        self.serve = fx.spawn([TOWERD, "serve", "--data", self.data, "--http", "127.0.0.1:%d" % self.port,
                               "--nats", self.nats.url, "--web", self.root], stdout=log, stderr=log)
        log.close()
        self.addCleanup(self.stop_serve)
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start()
        # Ready, not only alive: /readyz answers 200 once the server is connected to NATS (the tests post
        # events at once, which needs that connection) and the projector's store is there. Under load (two
        # test files per core, a sanitizer build) that can be seconds after /healthz answers.
        deadline = time.monotonic() + fx.tmo(30)
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                st, body = self.get("/readyz")
                if st == 200:
                    return
                last = "%s %s" % (st, body)
            except (OSError, ValueError) as e:
                last = repr(e)  # not listening yet, or listening before its routes are registered
            time.sleep(0.1)
        self.fail("towerd serve was not ready (/readyz) within %.0fs: %s" % (fx.tmo(30), last))

    def stop_serve(self):
        if self.serve.poll() is None:
            self.serve.terminate()
            self.assertEqual(self.serve.wait(timeout=fx.tmo(15)), 0, "serve exits 0 on SIGTERM")
        fx.reap(self.serve)

    def request(self, method, path, data=None, ctype="application/x-ndjson"):
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=fx.tmo(30)) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def get(self, path):
        return self.request("GET", path)

    def post(self, events, array=False, raw=None):
        if raw is None:
            raw = json.dumps(events) if array else "\n".join(json.dumps(e) for e in events) + "\n"
        return self.request("POST", "/api/v1/events", raw.encode())

    def wait_applied(self, seq):
        deadline = time.monotonic() + fx.tmo(30)
        while time.monotonic() < deadline:
            st, s = self.get("/api/v1/summary")
            if st == 200 and s["appliedSeq"] >= seq:
                return s
            time.sleep(0.1)
        self.fail("the projector did not apply sequence %d" % seq)

    def test_ndjson_and_array_with_bad_and_duplicate_events(self):
        st, r = self.post([event("i1", "O1"), event("i2", "O 2"), event("i3", "O3", "orderCreated",
                                                                         {"lines": [{"sku": "A", "qty": 0}]})])
        self.assertEqual(st, 400, r)
        self.assertEqual([x["status"] for x in r["results"]], ["accepted", "rejected", "rejected"])
        self.assertEqual(r["results"][1]["error"]["field"], "orderId")
        self.assertEqual(r["results"][1]["error"]["code"], "INVALID_ID")
        self.assertEqual(r["results"][2]["error"]["field"], "orderCreated.lines[0].qty")
        self.assertEqual(r["accepted"], 1)
        seq = r["results"][0]["seq"]
        self.assertGreater(seq, 0)
        # The good event is stored and folded although the body had bad ones.
        self.wait_applied(seq)
        st, v = self.get("/api/v1/views/awaiting_release")
        self.assertEqual([i["orderId"] for i in v["items"]], ["O1"])
        # A JSON array; the same event again is a duplicate, not a second copy.
        st, r = self.post([event("i1", "O1"), event("i4", "O4")], array=True)
        self.assertEqual(st, 200, r)
        self.assertEqual([x["status"] for x in r["results"]], ["duplicate", "accepted"])
        self.wait_applied(r["results"][1]["seq"])
        st, v = self.get("/api/v1/views/awaiting_release")
        self.assertEqual(v["count"], 2)

    def test_limits_and_methods(self):
        st, r = self.request("POST", "/api/v1/events", b"")
        self.assertEqual(st, 400, r)
        st, r = self.request("POST", "/api/v1/events", b"[{not json")
        self.assertEqual(st, 400, r)
        self.assertEqual(r["error"]["code"], "MALFORMED")
        # A body announced over the limit is refused before it is read.
        with socket.create_connection(("127.0.0.1", self.port), timeout=fx.tmo(10)) as c:
            c.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/x-ndjson\r\n"
                      b"Content-Length: %d\r\n\r\n" % (self.port, 5 << 20))
            head = c.recv(4096).decode("latin-1")
        self.assertTrue(head.startswith("HTTP/1.1 413"), head)
        st, r = self.get("/api/v1/events")
        self.assertEqual(st, 405, r)

    def test_nothing_acknowledged_without_jetstream(self):
        self.nats.stop()
        # Once the server knows NATS is gone (its /readyz says so), an ingest is answered at once, not after
        # JetStream's timeouts: nothing published, each event failed naming why.
        deadline = time.monotonic() + fx.tmo(30)
        while True:
            st, ready = self.get("/readyz")
            if (st == 503 and "nats" in json.dumps(ready).lower()) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(st, 503, ready)
        st, r = self.post([event("n1", "O9")])
        self.assertEqual(st, 503, r)
        self.assertEqual(r["results"][0]["status"], "failed")
        self.assertEqual(r["results"][0]["error"]["code"], "NOT_STORED", r)
        self.assertIn("NATS is unreachable", r["results"][0]["error"]["message"], r)
        self.nats.start()
        deadline = time.monotonic() + fx.tmo(30)
        while True:
            st, r = self.post([event("n1", "O9")])
            if st == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(st, 200, r)
        self.assertIn(r["results"][0]["status"], ("accepted", "duplicate"))


def main():
    # The command line, the sanitizer stretch (an ASan build's servers take longer to come up and answer),
    # test selection (NAME, =NAME, ~NAME) and the summary: natsfx.main.
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
