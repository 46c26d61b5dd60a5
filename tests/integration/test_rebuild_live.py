#!/usr/bin/env python3
"""A rebuild during live ingestion never shows the past, and an idle projector follows a swap at once.

usage: test_rebuild_live.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, a live `towerd projector` and `towerd serve`; a publisher keeps sending events while
`towerd rebuild` runs three times; every answer of the server polled meanwhile (appliedSeq of the summary,
asOfSeq of a view page) must never go back. Then, with the stream idle, a rebuild: the projector must move
to the new generation by itself within seconds (before, it stayed on the old one until the next event),
and an event published afterwards must show.

Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import json
import os
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None


class RebuildLive(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-rebuild-")
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
        self.serve = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve.log"), args=["--nats", self.nats.url])
        self.addCleanup(self.serve.stop)
        self.serve.start()
        self.n = 0
        fx.wait_stream(self.nc)  # some tests publish straight to JetStream

    def get(self, path):
        with urllib.request.urlopen(self.serve.url + path, timeout=fx.tmo(10)) as r:
            return json.loads(r.read().decode())

    def publish(self, k):
        for _ in range(k):
            self.n += 1
            self.nc.js_publish("tower.evt.erp.orderApproved",
                               fx.pb_event("rl-%06d" % self.n, 1795766400 + self.n, 0, "erp", "RL-%06d" % self.n, "dc-1"))

    def rebuild(self):
        r = self.t.run("rebuild", "--nats", self.nats.url, "--data", self.data, "--batch", "50", check=0, timeout=300)
        return r.err

    def test_1_answers_never_go_back_and_idle_projector_follows(self):
        self.publish(fx.scaled(3000, 600))
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        stop = threading.Event()
        seen = {"summary": [], "view": []}
        problems = []

        def publisher():
            while not stop.is_set():
                self.publish(20)

        def poller():
            while not stop.is_set():
                try:
                    seen["summary"].append(self.get("/api/v1/summary")["appliedSeq"])
                    seen["view"].append(self.get("/api/v1/views/awaiting_release?limit=1")["asOfSeq"])
                except OSError as e:
                    problems.append(str(e))

        threads = [threading.Thread(target=publisher, daemon=True), threading.Thread(target=poller, daemon=True)]
        for th in threads:
            th.start()
        try:
            for _ in range(3):
                err = self.rebuild()
                self.assertIn("swapped in the rebuilt store", err)
        finally:
            stop.set()
            for th in threads:
                th.join(timeout=fx.tmo(20))
        self.assertEqual(problems, [], "the server stopped answering during the rebuilds")
        for what, seqs in seen.items():
            self.assertGreater(len(seqs), 10, "too few answers to judge")
            back = [(a, b) for a, b in zip(seqs, seqs[1:]) if b < a]
            self.assertEqual(back, [], "%s went back in time during the rebuilds (%d answers)" % (what, len(seqs)))
        fx.log("test 1: %d summaries, %d pages while 3 rebuilds ran; %d events" % (len(seen["summary"]),
                                                                                  len(seen["view"]), self.n))

        # Idle stream: after a rebuild the projector moves to the new generation by itself.
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        before = open(self.proj.log_path, errors="replace").read().count("the store was rebuilt")
        self.rebuild()
        deadline = time.monotonic() + fx.tmo(5)
        while time.monotonic() < deadline:
            if open(self.proj.log_path, errors="replace").read().count("the store was rebuilt") > before:
                break
            time.sleep(0.05)
        else:
            self.fail("the idle projector did not follow the swap within 5 s:\n" + self.proj.log())
        # And what is published next shows at once.
        self.publish(1)
        st, _ = fx.wait_caught_up(self.t, self.data, self.nc, self.proj, timeout=30)
        self.assertEqual(self.get("/api/v1/summary")["appliedSeq"], st["appliedSeq"])


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
