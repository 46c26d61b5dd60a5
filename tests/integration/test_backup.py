#!/usr/bin/env python3
"""Integration tests of `towerd backup` and of the restore README describes, against a real nats-server.

usage: test_backup.py TOWERD [TEST_NAME_SUBSTRING...]

Environment: TOWER_IT_SCALE (trace sizes), TOWER_IT_SLOW (timeout multiplier; 4 for ASan),
TOWER_IT_KEEP=1 (keep the temporary directories), TOWER_IT_VERBOSE=1 (log every towerd run).

- A backup taken while the projector ingests is a store at one of its checkpoints; restored the
  README's way (projector stopped, backup moved into the data directory's place, projector started),
  the projector resumes from that checkpoint + 1 and catches up to the live store's and a rebuild's views.
- An OUT that exists and is not empty is refused (exit 2) and left as it was; --help; usage errors.
"""

import json
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
SEED = int(os.environ.get("TOWER_IT_SEED", "8"))


class BackupTest(unittest.TestCase):
    """A temporary directory and towerd; NATS only for the tests that start one."""

    maxDiff = 4000

    def setUp(self):
        self.root = fx.make_tempdir("tower-it-%s-" % self._testMethodName[:24])
        self.addCleanup(fx.remove_tempdir, self.root)
        self.t = fx.Towerd(TOWERD)
        self.t.cwd = self.root

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def start_nats(self):
        self.nats = fx.NatsServer(root=self.path("nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t.server = self.nats
        self.nc = fx.NatsClient(self.nats.url)
        self.addCleanup(self.nc.close)

    def projector(self, data):
        p = fx.Projector(self.t, data)
        self.addCleanup(p.close)
        return p

    def backup(self, data, out, check=0):
        return self.t.run("backup", "--data", data, "--json", out, check=check, timeout=300)

    def leftovers(self, parent):
        return [n for n in os.listdir(parent) if ".tmp-" in n]


class T1HotBackupRestore(BackupTest):
    def test_1_hot_backup_then_restore(self):
        """A backup while the projector ingests; restored in place, the projector resumes from its checkpoint."""
        self.start_nats()
        trace = self.t.gen(self.path("trace.ndjson"), SEED, fx.scaled(1500, 200))
        chunks = fx.split_file(trace, 12, self.root)
        data = self.path("store")
        proj = self.projector(data).start()
        self.t.publish(*chunks[:3])
        seq0 = fx.wait_caught_up(self.t, data, self.nc, proj)[0]["appliedSeq"]

        # Publish the rest in a thread; the last chunk only after the backup, so that the restored
        # store has to resume the stream.
        backup_done, errors = threading.Event(), []

        def publisher():
            try:
                for i, c in enumerate(chunks[3:], 3):
                    if i == len(chunks) - 1:
                        backup_done.wait(fx.tmo(120))
                    self.t.publish(c)
                    time.sleep(0.1)
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        th = threading.Thread(target=publisher, daemon=True)
        th.start()
        self.addCleanup(backup_done.set)
        # Back up once the projector folds what the thread publishes.
        deadline = time.monotonic() + fx.tmo(60)
        while self.t.status(data, live=False)["appliedSeq"] <= seq0 and time.monotonic() < deadline:
            time.sleep(0.05)
        out = self.path("backup")
        r = self.backup(data, out)
        backup_done.set()
        info = r.json()
        fx.log("test 1: backup while ingesting (checkpoint %d before the thread): %s, %.2fs" % (seq0, info, r.secs))
        th.join(fx.tmo(300))
        self.assertFalse(th.is_alive(), "the publisher did not finish")
        if errors:
            raise errors[0]

        # The backup is a store with a real checkpoint.
        seq = info["appliedSeq"]
        self.assertGreater(seq, 0)
        self.assertEqual(self.leftovers(self.root), [], "a temporary directory is left")
        self.assertEqual(os.readlink(os.path.join(out, "current")), "gen-1")
        st_b = self.t.status(out, live=False)
        self.assertEqual((st_b["appliedSeq"], st_b["events"], st_b["deadLetters"]),
                         (seq, info["events"], info["deadLetters"]))
        self.assertEqual(info["bytes"], os.path.getsize(os.path.join(out, "gen-1", "data.mdb")))
        self.t.dump(out)

        st_live, stream = fx.wait_caught_up(self.t, data, self.nc, proj)
        last = stream["state"]["last_seq"]
        self.assertLess(seq, last, "the last chunk was published after the backup")
        live = self.t.dump(data)

        # Restore as README says: stop the projector, move the backup into place, start the projector.
        self.assertEqual(proj.stop(), 0, proj.log())
        os.rename(data, self.path("store.old"))
        os.rename(out, data)
        proj.start().wait_running()
        self.assertRegex(proj.log(20), r"consuming TOWER_EVENTS from sequence %d \(" % (seq + 1),
                         "the projector resumes from the backup's checkpoint + 1")
        st, _ = fx.wait_caught_up(self.t, data, self.nc, proj)
        # A backup holding events past its checkpoint would count them again as duplicates here.
        self.assertEqual((st["events"], st["duplicates"], st["deadLetters"]),
                         (st_live["events"], st_live["duplicates"], st_live["deadLetters"]))
        restored = self.t.dump(data)
        self.assertIsNone(fx.diff_views(restored, live, skip=()), "restored vs live, every view (--stable)")
        self.assertEqual(proj.stop(), 0, proj.log())

        # A rebuild from the stream, and an offline fold of the trace, agree.
        rebuilt_dir = self.path("rebuilt")
        self.t.run("rebuild", "--nats", self.nats.url, "--data", rebuilt_dir, check=0, timeout=300)
        self.assertIsNone(fx.diff_views(self.t.dump(rebuilt_dir), restored, skip=()), "rebuilt vs restored")
        want, _ = self.t.offline(self.root, trace)
        self.assertIsNone(fx.diff_views(restored, want), "restored vs the offline fold of the trace")


class T2Refusals(BackupTest):
    def store(self):
        trace = self.t.gen(self.path("small.ndjson"), SEED, 30)
        data = self.path("store")
        self.t.fold(data, trace)
        return data

    def test_2_out_not_empty(self):
        """OUT exists and is not empty (or is a file): exit 2, nothing written, nothing left beside it."""
        data = self.store()
        out = self.path("out")
        os.mkdir(out)
        with open(os.path.join(out, "keep.txt"), "w") as f:
            f.write("mine\n")
        r = self.backup(data, out, check=2)
        self.assertEqual(r.out, "", "nothing printed on stdout")
        self.assertIn("is not an empty directory", r.err)
        self.assertIn("nothing written", r.err)
        self.assertEqual(os.listdir(out), ["keep.txt"])
        with open(os.path.join(out, "keep.txt")) as f:
            self.assertEqual(f.read(), "mine\n")
        self.backup(data, os.path.join(out, "keep.txt"), check=2)
        self.assertEqual(self.leftovers(self.root) + self.leftovers(out), [])
        # An empty directory is taken.
        empty = self.path("empty")
        os.mkdir(empty)
        self.assertGreater(self.backup(data, empty + "/").json()["events"], 0)
        self.assertEqual(self.t.dump(empty), self.t.dump(data))

    def test_3_help_and_usage(self):
        """--help exits 0 and describes the restore; a missing OUT or store is refused."""
        r = self.t.run("backup", "--help", check=0)
        self.assertIn("usage: towerd backup", r.out)
        self.assertIn("Restore", r.out)
        self.assertIn("backup", self.t.run("--help", check=0).out)
        self.t.run("backup", check=2)
        self.t.run("backup", "a", "b", check=2)
        self.t.run("backup", "--no-such-flag", "x", check=2)
        none = self.path("none")
        r = self.t.run("backup", "--data", self.path("no-store"), none, check=1)
        self.assertFalse(os.path.exists(none), "no OUT after a failure")
        self.assertEqual(self.leftovers(self.root), [])


def main():
    return fx.main(sys.modules[__name__], seed=SEED)


if __name__ == "__main__":
    sys.exit(main())
