#!/usr/bin/env python3
"""Upgrades: `towerd projector` and `towerd up` rebuild a store of another format from the stream by themselves.

usage: test_upgrade.py TOWERD

A real nats-server and projector fold a trace; the store's format version is then set back by one
(mdb_load on its meta table, as an older build would have left it), which every reader refuses.
The projector started on it rebuilds the store from the stream into a new generation, swaps it in
and goes on projecting: the views are those of the original fold, events published afterwards are
applied, and the old generation is gone. Without a stream to rebuild from, it exits 4 saying so.
`towerd up` started on a data directory whose store has the older format does the same on its projector's
thread, saying so in its log with the rebuild's progress, while its server answers 503 (this build cannot read
the old generation) until the swap, and then goes on as usual.
Python 3 standard library only; mdb_load comes with lmdb-utils (tools/setup.sh).
"""

import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def store_format():
    with open(os.path.join(SRC, "store", "include", "store.h")) as f:
        for line in f:
            if line.startswith("#define STORE_FORMAT_VERSION"):
                return int(line.split()[2])
    raise AssertionError("no STORE_FORMAT_VERSION in store.h")


def set_format(gen_dir, version):
    """Overwrite meta["format"] (8 bytes, big-endian) as an older build would have written it."""
    value = "".join("\\%02x" % b for b in version.to_bytes(8, "big"))
    dump = "VERSION=3\nformat=print\ndatabase=meta\ntype=btree\nHEADER=END\n format\n %s\nDATA=END\n" % value
    r = subprocess.run(["mdb_load", "-s", "meta", gen_dir], input=dump, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("mdb_load: %s" % r.stderr)


def wait_summary(port, done, timeout=60):
    """(status, body) of GET /api/v1/summary once done(status, body) holds (status 0: no answer)."""
    deadline = time.monotonic() + fx.tmo(timeout)
    st, body = 0, {}
    while time.monotonic() < deadline:
        try:
            with OPENER.open("http://127.0.0.1:%d/api/v1/summary" % port, timeout=fx.tmo(10)) as r:
                st, body = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            st, body = e.code, {"raw": raw.decode(errors="replace")}
        except (OSError, ValueError):
            st, body = 0, {}
        if done(st, body):
            return st, body
        time.sleep(0.05)
    return st, body


class Upgrade(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-upgrade-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.nc = fx.NatsClient(self.nats.port)
        self.addCleanup(self.nc.close)
        self.data = os.path.join(self.root, "data")

    def projector(self, name):
        p = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, name + ".log"))
        self.addCleanup(p.close)
        p.start()
        return p

    def test_1_old_format_rebuilt_by_the_projector(self):
        trace = self.t.gen(os.path.join(self.root, "a.ndjson"), 5, fx.scaled(200, 50))
        self.t.publish(trace)
        p = self.projector("first")
        fx.wait_caught_up(self.t, self.data, self.nc, p)
        p.stop()
        before = self.t.dump(self.data)
        gen = os.path.realpath(os.path.join(self.data, "current"))
        set_format(gen, store_format() - 1)
        r = self.t.run("dump", "--data", self.data, check=None)
        self.assertNotEqual(r.rc, 0, "the old format is refused by readers")
        self.assertIn("format version %d" % (store_format() - 1), r.err)

        # A server of this build cannot read the old generation: 503 until the swap, then the new one.
        port = fx.free_port()
        slog = open(os.path.join(self.root, "serve.log"), "ab")
        serve = fx.spawn([TOWERD, "serve", "--data", self.data, "--http", "127.0.0.1:%d" % port, "--nats",
                          self.nats.url, "--web", self.root], stdout=slog, stderr=slog)
        slog.close()
        self.addCleanup(lambda: (serve.terminate(), serve.wait(), fx.reap(serve)))
        st, body = wait_summary(port, lambda st, b: st not in (0, 404))  # 404: its routes are not set yet
        self.assertEqual(st, 503, body)
        self.assertIn("STORE_UNAVAILABLE", body["raw"])

        p = self.projector("upgrade")
        last = fx.wait_caught_up(self.t, self.data, self.nc, p)[1]["state"]["last_seq"]
        st, body = wait_summary(port, lambda st, b: st == 200 and b.get("appliedSeq") == last)
        self.assertEqual((st, body.get("appliedSeq")), (200, last), body)
        self.assertTrue(p.alive(), p.log())
        log = p.log(200)
        self.assertIn("has another format than this build's", log)
        self.assertIn("projecting on", log)
        self.assertEqual(self.t.dump(self.data), before, "the rebuilt store holds what the first fold did")
        new_gen = os.path.realpath(os.path.join(self.data, "current"))
        self.assertNotEqual(new_gen, gen)
        self.assertFalse(os.path.exists(gen), "the old generation is removed after the swap")
        # It goes on projecting: later events are applied.
        more = self.t.gen(os.path.join(self.root, "b.ndjson"), 6, fx.scaled(20, 10))
        self.t.publish(more)
        st, _ = fx.wait_caught_up(self.t, self.data, self.nc, p)
        self.assertGreater(st["appliedSeq"], 0)
        self.assertEqual(p.stop(), 0, p.log())

    def test_2_no_stream_to_rebuild_from(self):
        trace = self.t.gen(os.path.join(self.root, "a.ndjson"), 7, 5)
        self.t.publish(trace)
        p = self.projector("first")
        fx.wait_caught_up(self.t, self.data, self.nc, p)
        p.stop()
        set_format(os.path.realpath(os.path.join(self.data, "current")), store_format() - 1)
        self.nc.stream_delete("TOWER_EVENTS")
        r = self.t.run("projector", "--data", self.data, "--nats", self.nats.url, check=None, timeout=120)
        self.assertEqual(r.rc, 4, r.err)
        self.assertIn("no TOWER_EVENTS stream to rebuild the store from", r.err)


class UpUpgrade(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-upgrade-up-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self.nc = fx.NatsClient(self.nats.port)
        self.addCleanup(self.nc.close)
        self.data = os.path.join(self.root, "data")
        self.store = os.path.join(self.data, "store")

    def up(self):
        u = fx.Up(self.t, self.root, self.data, ["--no-sim", "--no-sla", "--nats", self.nats.url, "--web", self.root])
        self.addCleanup(u.close)
        u.start()
        return u

    def test_3_up_rebuilds_an_old_store(self):
        self.t.publish(self.t.gen(os.path.join(self.root, "a.ndjson"), 8, fx.scaled(200, 50)))
        u = self.up()
        fx.wait_caught_up(self.t, self.store, self.nc)
        self.assertEqual(u.stop(), 0, u.logs())
        before = self.t.dump(self.store)
        gen = os.path.realpath(os.path.join(self.store, "current"))
        set_format(gen, store_format() - 1)

        u.start()
        last = fx.wait_caught_up(self.t, self.store, self.nc, timeout=120)[1]["state"]["last_seq"]
        st, body = wait_summary(u.port, lambda st, b: st == 200 and b.get("appliedSeq") == last)
        self.assertEqual((st, body.get("appliedSeq")), (200, last), u.logs())
        self.assertIsNone(u.proc.poll(), u.logs())
        log = fx.tail(u.err_path, 400)
        self.assertIn("has another format than this build's", log)
        self.assertIn("upgrade: replaying TOWER_EVENTS", log)
        self.assertIn("rebuild [", log, "the rebuild's progress is in the log")
        self.assertIn("upgrade: done", log)
        self.assertEqual(self.t.dump(self.store), before, "the rebuilt store holds what the first fold did")
        self.assertNotEqual(os.path.realpath(os.path.join(self.store, "current")), gen)
        self.assertFalse(os.path.exists(gen), "the old generation is removed after the swap")
        # It goes on projecting.
        self.t.publish(self.t.gen(os.path.join(self.root, "b.ndjson"), 9, fx.scaled(20, 10)))
        fx.wait_caught_up(self.t, self.store, self.nc)
        self.assertEqual(u.stop(), 0, u.logs())


def main():
    global TOWERD
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    TOWERD = os.path.abspath(sys.argv[1])
    if not shutil.which("mdb_load"):
        sys.exit("test_upgrade: mdb_load is missing (Debian package lmdb-utils; tools/setup.sh installs it)")
    fx.install_signal_cleanup()
    fx.stretch_for_sanitizer(TOWERD)  # an ASan build's servers take longer to come up and answer
    suite = unittest.TestSuite([unittest.TestLoader().loadTestsFromTestCase(Upgrade),
                                unittest.TestLoader().loadTestsFromTestCase(UpUpgrade)])
    if len(sys.argv) > 2:
        suite = unittest.TestSuite(t for c in suite for t in c if any(s in t.id() for s in sys.argv[2:]))
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if res.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
