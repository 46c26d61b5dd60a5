#!/usr/bin/env python3
"""The dashboard's trend (GET /api/v1/trend) is kept in the store: it survives a restart of the server and
is the same on two replicas that folded the same stream, whatever their commit batching, and after a rebuild.

usage: test_trend.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server; one trace published; two projectors with their own stores, one committing every event
(--batch 1 --batch-behind 1), one in large commits; a `towerd serve --no-nats` on each store. Then a hostile
event dated 2099 (valid for the codec, published straight to JetStream as protobuf, as a producer could) moves the trend's
clock by one hour at most, on both replicas alike. Python 3 standard library only.
"""

import calendar
import json
import os
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ts_s(s):
    return calendar.timegm(time.strptime(s.rstrip("Z").partition(".")[0], "%Y-%m-%dT%H:%M:%S"))


def get_trend(serve):
    with OPENER.open(serve.url + "/api/v1/trend", timeout=fx.tmo(10)) as r:
        return json.loads(r.read())


def wait_trend(serve, seq, timeout=60):
    """The trend once the server's store has applied seq (a read-only server sees commits at once)."""
    deadline = time.monotonic() + fx.tmo(timeout)
    body = {}
    while time.monotonic() < deadline:
        body = get_trend(serve)
        if body.get("appliedSeq") == seq:
            return body
        time.sleep(0.05)
    raise AssertionError("the trend did not reach sequence %d: %s" % (seq, str(body)[:300]))


class Trend(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = fx.make_tempdir("tower-it-trend-")
        cls.nats = fx.NatsServer(root=os.path.join(cls.root, "nats"))
        cls.nats.start()
        cls.t = fx.Towerd(TOWERD, cls.nats)
        cls.t.cwd = cls.root
        cls.nc = fx.NatsClient(cls.nats.port)
        cls.t.publish(cls.t.gen(os.path.join(cls.root, "a.ndjson"), 11, fx.scaled(80, 30)))
        cls.data = [os.path.join(cls.root, d) for d in ("one", "big")]
        cls.proj = [fx.Projector(cls.t, cls.data[0], args=["--batch", "1", "--batch-behind", "1"],
                                 log_path=os.path.join(cls.root, "p1.log")),
                    fx.Projector(cls.t, cls.data[1], args=["--batch", "5000"], log_path=os.path.join(cls.root, "p2.log"))]
        for p in cls.proj:
            p.start()
        cls.last = 0
        for d, p in zip(cls.data, cls.proj):
            cls.last = fx.wait_caught_up(cls.t, d, cls.nc, p)[1]["state"]["last_seq"]
        cls.serve = [fx.TowerServe(cls.t, d, os.path.join(cls.root, "serve-%d.log" % i), args=["--no-nats"]).start()
                     for i, d in enumerate(cls.data)]

    @classmethod
    def tearDownClass(cls):
        for s in cls.serve:
            s.stop()
        for p in cls.proj:
            p.close()
        cls.nc.close()
        cls.nats.close()
        fx.remove_tempdir(cls.root)

    def both(self, seq):
        return [wait_trend(s, seq) for s in self.serve]

    def test_1_same_on_two_replicas(self):
        a, b = self.both(self.last)
        self.assertEqual(a["intervalSeconds"], 300)
        self.assertGreater(len(a["samples"]), 10, a)
        self.assertEqual(a, b, "two stores of one stream, one commit per event and large commits")
        times = [ts_s(x["t"]) for x in a["samples"]]
        self.assertEqual(times, sorted(times))
        self.assertLessEqual(times[-1] - times[0], 6 * 3600 + a["intervalSeconds"], "the answer covers six hours")
        with OPENER.open(self.serve[0].url + "/api/v1/summary", timeout=fx.tmo(10)) as r:
            summary = json.loads(r.read())
        last = a["samples"][-1]["counts"]
        for view, fig in summary["views"].items():
            self.assertEqual(last.get(view), fig["count"], view)

    def test_2_survives_a_restart(self):
        before = wait_trend(self.serve[0], self.last)
        port = self.serve[0].port
        self.serve[0].stop()
        self.serve[0].start(port=port)
        self.assertEqual(wait_trend(self.serve[0], self.last), before)

    def test_3_far_future_event_moves_the_clock_an_hour_at_most(self):
        before = wait_trend(self.serve[0], self.last)
        ev = fx.pb_event("trend-2099", 4102441200, 0, "erp", "TR-2099", "dc-1")  # 2099-12-31T23:00:00Z
        ack = self.nc.js_publish("tower.evt.erp.orderApproved", ev, msg_id="trend-2099")
        self.assertIn("seq", ack, ack)
        seq = ack["seq"]
        a, b = self.both(seq)
        self.assertEqual(a, b)
        self.assertLessEqual(ts_s(a["clock"]) - ts_s(before["clock"]), 3600, a["clock"])
        self.assertGreater(ts_s(a["clock"]), ts_s(before["clock"]))
        type(self).last = seq

    def test_4_a_rebuild_gives_the_same_trend(self):
        want = wait_trend(self.serve[1], self.last)
        self.proj[0].stop()
        r = self.t.run("rebuild", "--data", self.data[0], "--nats", self.nats.url, timeout=240)
        self.assertEqual(r.rc, 0, r.err)
        self.assertEqual(wait_trend(self.serve[0], self.last), want)


def main():
    global TOWERD
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    TOWERD = os.path.abspath(sys.argv[1])
    fx.install_signal_cleanup()
    suite = unittest.TestLoader().loadTestsFromTestCase(Trend)
    if len(sys.argv) > 2:
        suite = unittest.TestSuite(t for t in suite if any(s in t.id() for s in sys.argv[2:]))
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if res.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
