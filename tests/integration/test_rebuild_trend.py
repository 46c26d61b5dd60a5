#!/usr/bin/env python3
"""towerd rebuild of a stream over more than 48 hours of business time skips closing the trend rows it drops
anyway (docs/deploy.md "Trends"), and gives the same trend and views as the live projector; when its guess
of where the trend ends is wrong (the stream ends with events dated far in the future), it replays again
without skipping and still gives the same.

usage: test_rebuild_trend.py TOWERD [PATTERN...]

A real nats-server; a generated trace stretched to about 100 hours of business time, published; a live
`towerd projector` committing every event (--batch 1 --batch-behind 1), then stopped; `towerd rebuild` in
commits of 20 events (each well under 48 hours, so only the rebuild's hint skips rows); a `towerd serve
--no-nats` on the store. Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard
library only.
"""

import datetime
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
from test_trend import wait_trend  # noqa: E402  (the trend once the server's store applied a sequence)

TOWERD = None
TIME = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"')
STRETCH = 3  # the trace's 34 hours (60 orders, seed 5) become about 100


def stretch(src, dst):
    """Every instant of the trace moved away from its start STRETCH times as far (order kept)."""
    start = datetime.datetime(2026, 11, 2, 6, tzinfo=datetime.timezone.utc)

    def one(m):
        try:
            t = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
        except ValueError:
            return m.group(0)  # a bad record's time stays bad
        t = start + (t - start) * STRETCH
        return '"%s"' % t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    with open(src) as f, open(dst, "w") as g:
        for line in f:
            g.write(TIME.sub(one, line))
    return dst


class RebuildTrend(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = fx.make_tempdir("tower-it-rebuild-trend-")
        cls.nats = fx.NatsServer(root=os.path.join(cls.root, "nats"))
        cls.nats.start()
        cls.t = fx.Towerd(TOWERD, cls.nats)
        cls.t.cwd = cls.root
        cls.nc = fx.NatsClient(cls.nats.port)
        raw = cls.t.gen(os.path.join(cls.root, "raw.ndjson"), 5, 60)
        cls.t.publish(stretch(raw, os.path.join(cls.root, "long.ndjson")))
        cls.data = os.path.join(cls.root, "data")
        cls.proj = fx.Projector(cls.t, cls.data, args=["--batch", "1", "--batch-behind", "1"],
                                log_path=os.path.join(cls.root, "projector.log"))
        cls.serve = fx.TowerServe(cls.t, cls.data, os.path.join(cls.root, "serve.log"), args=["--no-nats"])

    @classmethod
    def tearDownClass(cls):
        cls.serve.stop()
        cls.proj.close()
        cls.nc.close()
        cls.nats.close()
        fx.remove_tempdir(cls.root)

    def live_then_rebuild(self):
        """The live projector's trend and views, then the rebuild's (and its log)."""
        self.proj.start()
        last = fx.wait_caught_up(self.t, self.data, self.nc, self.proj)[1]["state"]["last_seq"]
        self.assertEqual(self.proj.stop(), 0)
        if not self.serve.alive():
            self.serve.start()
        want, want_dump = wait_trend(self.serve, last), self.t.dump(self.data)
        r = self.t.run("rebuild", "--data", self.data, "--nats", self.nats.url, "--batch", "20",
                       "--batch-behind", "20", timeout=240)
        self.assertEqual(r.rc, 0, r.err)
        got = wait_trend(self.serve, last)
        self.assertEqual(got, want, "the rebuild's trend, the live projector's")
        self.assertIsNone(fx.diff_views(self.t.dump(self.data), want_dump, skip=()))
        return want, r.err

    def test_1_long_stream_skips_rows_and_gives_the_same_trend(self):
        want, log = self.live_then_rebuild()
        self.assertGreater(len(want["samples"]), 5, want)
        self.assertIn("are not closed on the way", log)
        self.assertIn("dropped anyway", log)
        self.assertNotIn("replaying again", log)

    def test_2_a_wrong_guess_replays_again(self):
        # 40 events dated 2099 end the stream: the guess from its last 32 messages is far past the clock,
        # which moves an hour per event.
        for i in range(40):
            ev = fx.pb_event("rt-2099-%d" % i, 4102441200 + i, 0, "erp", "RT-2099-%d" % i, "dc-1")
            self.assertIn("seq", self.nc.js_publish("tower.evt.erp.orderApproved", ev, msg_id="rt-2099-%d" % i))
        # Hostile last messages, which the guess passes over: bytes that are no event, a JSON record.
        for i, raw in enumerate([b"\xff\xfe\x00 not protobuf", b'{"eventId":"rt-json","occurredAt":"2099-01-01T00:00:00Z"}']):
            self.assertIn("seq", self.nc.js_publish("tower.evt.erp.orderApproved", raw, msg_id="rt-bad-%d" % i))
        want, log = self.live_then_rebuild()
        self.assertIn("are not closed on the way", log)
        self.assertIn("replaying again without skipping trend rows", log)


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
