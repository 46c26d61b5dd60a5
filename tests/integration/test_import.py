#!/usr/bin/env python3
"""Integration tests of `towerd import` (legacy CSV / fixed-width files) against a real nats-server and projector.

usage: test_import.py TOWERD [TEST_NAME_SUBSTRING...]

The example mappings import and their events reach the store; importing again changes nothing; bad rows are
reported FILE:LINE and dead-lettered while good rows are kept; a mapping error publishes nothing (exit 2);
kill -9 mid-import then a restart stores every row exactly once; watch mode moves files to done/ and failed/;
hostile files get clear errors.
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
EXAMPLES = os.path.join(SRC, "deploy", "import")
ERP_MAP = os.path.join(EXAMPLES, "erp-open-orders.ini")
ERP_CSV = os.path.join(EXAMPLES, "erp-open-orders.csv")
POD_MAP = os.path.join(EXAMPLES, "carrier-pod.ini")
POD_TXT = os.path.join(EXAMPLES, "carrier-pod.txt")
HEADER = "order_no;status;changed_at;customer;channel;warehouse;sku;qty;promised_by;hold_reason;note\n"


def wait_for(cond, what, timeout=60):
    deadline = time.monotonic() + fx.tmo(timeout)
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class Import(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-import-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.client = fx.NatsClient(self.nats.port)
        self.addCleanup(self.client.close)
        self.data = os.path.join(self.root, "data")
        self.proj = None

    def start_projector(self):
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start().wait_running()

    def imp(self, *args, check=None, timeout=120):
        return self.t.run("import", "--nats", self.nats.url, *args, check=check, timeout=timeout)

    def msgs(self, stream="TOWER_EVENTS"):
        info = self.client.stream_info(stream)
        return info["state"]["messages"] if info else 0

    def caught_up(self):
        st, _ = fx.wait_caught_up(self.t, self.data, self.client, self.proj)
        return st

    def write(self, name, text, mode="w"):
        path = os.path.join(self.root, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    # ---------------------------------------------------------------------------------------------

    def test_examples_stored_and_reimport_changes_nothing(self):
        self.start_projector()
        r = self.imp("-m", ERP_MAP, "--json", ERP_CSV, check=0)
        self.assertEqual(r.json(), {"rows": 10, "events": 9, "stored": 9, "duplicates": 0, "rejected": 0,
                                    "deadLetters": 0, "skipped": 1, "failed": 0})
        self.assertEqual(self.imp("-m", POD_MAP, "--json", POD_TXT, check=0).json()["stored"], 5)
        st = self.caught_up()
        self.assertEqual((st["events"], st["deadLetters"]), (14, 0))
        dump = self.t.dump(self.data)
        aw = {i["orderId"]: i for i in dump["awaiting_release"]}
        self.assertEqual(aw["SO-20001"]["warehouseId"], "dc-2")  # approved, not released
        self.assertEqual(aw["SO-20001"]["since"], "2026-11-27T07:20:00Z")  # 08:20 at +01:00
        self.assertNotIn("SO-20003", aw)  # released
        held = [i for i in dump["blocked"] if i.get("orderId") == "SO-20002"]
        self.assertEqual(len(held), 1, dump["blocked"])
        # Again, and as tomorrow's snapshot: the same rows under another name, reordered, plus a new one.
        r = self.imp("-m", ERP_MAP, "--json", ERP_CSV, check=0)
        self.assertEqual((r.json()["stored"], r.json()["duplicates"]), (0, 9))
        with open(ERP_CSV, newline="") as f:  # CRLF kept: a cell's line ending is part of its content
            lines = f.read().splitlines(keepends=True)
        snap = self.write("snapshot-2.csv", lines[0] + "".join(reversed(lines[1:7])) + "".join(lines[7:])
                          + "SO-20002;HOLD_RELEASED;27.11.2026 11:00;;;;;;;;\n")
        r = self.imp("-m", ERP_MAP, "--json", snap, check=0)
        self.assertEqual((r.json()["stored"], r.json()["duplicates"]), (1, 9))
        self.assertEqual(self.msgs(), 15)
        st = self.caught_up()
        self.assertEqual((st["events"], st["duplicates"], st["deadLetters"]), (15, 0, 0))

    def test_bad_rows_reported_and_dead_lettered(self):
        self.start_projector()
        bad = self.write("bad.csv", HEADER
                         + "SO-1;APPROVED;27.11.2026 08:00;;;dc-1;;;;;\n"         # 2 good
                         + "SO-2;APPROVED;31.02.2026 08:00;;;dc-1;;;;;\n"         # 3 bad time
                         + "SO-3;CREATED;27.11.2026 08:00;C-1;EDI;;SKU-1;x2;;;\n"  # 4 bad number
                         + "SO-4;APPROVED;27.11.2026 08:00;;;dc-1\n"              # 5 missing columns
                         + "SO-\"5;APPROVED;27.11.2026 08:00;;;dc-1;;;;;\n"       # 6 bad quote
                         + "SO-6;RELEASED;27.11.2026 09:00;;;dc-1;;;;;\n")        # 7 good
        r = self.imp("-m", ERP_MAP, "--json", bad, check=3)
        s = r.json()
        self.assertEqual((s["rows"], s["stored"], s["rejected"], s["deadLetters"]), (6, 2, 4, 4))
        self.assertIn(bad + ":3: INVALID_TIME: ", r.err)
        self.assertIn('column "changed_at": "31.02.2026 08:00"', r.err)
        self.assertIn(bad + ":4: INVALID_TYPE: ", r.err)
        self.assertIn('orderCreated.lines[0].qty', r.err)
        self.assertIn(bad + ":5: MALFORMED: the row has 6 columns, the header 11", r.err)
        self.assertIn(bad + ":6: MALFORMED: column 1: quote inside an unquoted field", r.err)
        st = self.caught_up()
        self.assertEqual((st["events"], st["deadLetters"]), (2, 4))
        dl = {d["code"]: d for d in self.t.dump(self.data)["dead_letters"]}
        # The codec's own verdict, as for any bad event.
        self.assertIn("INVALID_TIME", dl)
        self.assertIn("INVALID_TYPE", dl)
        self.assertIn("orderCreated.lines[0].qty", dl["INVALID_TYPE"]["message"])
        # The same bad file again adds no dead letter.
        self.imp("-m", ERP_MAP, bad, check=3)
        self.assertEqual(self.msgs(), 6)

    def test_mapping_errors_publish_nothing(self):
        with open(ERP_MAP) as f:
            text = f.read()
        typo = self.write("typo.ini", text.replace("orderApproved.warehouseId", "orderApproved.warehouse"))
        line = text[:text.index("orderApproved.warehouseId")].count("\n") + 1
        r = self.imp("-m", typo, ERP_CSV, check=2)
        self.assertIn("%s:%d: " % (typo, line), r.err)
        self.assertIn("has no field warehouse", r.err)
        col = self.write("col.ini", text.replace("col changed_at", "col changed"))
        line = text[:text.index("col changed_at")].count("\n") + 1
        r = self.imp("-m", col, ERP_CSV, check=2)
        self.assertIn('%s:%d: column "changed" is not in the header of %s' % (col, line, ERP_CSV), r.err)
        self.assertEqual(self.msgs(), 0)
        # No NATS: a runtime failure.
        r = self.t.run("import", "--nats", "nats://127.0.0.1:%d" % fx.free_port(), "-m", ERP_MAP, ERP_CSV, check=1)
        r = self.t.run("import", "--help", check=0)
        self.assertIn("Exit codes", r.out)

    def test_kill9_mid_import_then_restart_stores_each_row_once(self):
        n = fx.scaled(60000, 5000)
        drop = os.path.join(self.root, "drop")
        os.makedirs(drop)
        rows = "".join("SO-%06d;APPROVED;27.11.2026 08:%02d;;;dc-%d;;;;;\n" % (i, i % 60, i % 3) for i in range(n))
        self.write("drop/big.csv.tmp", HEADER + rows)
        os.rename(os.path.join(drop, "big.csv.tmp"), os.path.join(drop, "big.csv"))
        log = open(os.path.join(self.root, "watch.log"), "ab")
        argv = [TOWERD, "import", "--nats", self.nats.url, "-m", ERP_MAP, "--watch", drop, "--poll", "100ms"]
        p = fx.spawn(argv, stdout=log, stderr=log, env=self.t.env())
        wait_for(lambda: self.msgs() > 0, "the first events")
        p.kill()
        p.wait()
        fx.reap(p)
        mid = self.msgs()
        fx.log("killed at %d of %d events; work/: %s" % (mid, n, os.listdir(os.path.join(drop, "work"))))
        p = fx.spawn(argv, stdout=log, stderr=log, env=self.t.env())
        done = os.path.join(drop, "done")
        wait_for(lambda: any(f.endswith("big.csv") for f in os.listdir(done)), "big.csv in done/", timeout=300)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=fx.tmo(30)), 0)
        fx.reap(p)
        log.close()
        self.assertEqual(self.msgs(), n)
        self.assertEqual(os.listdir(os.path.join(drop, "work")), [])
        report = [f for f in os.listdir(done) if f.endswith(".report.json")]
        with open(os.path.join(done, report[0])) as f:
            rep = json.load(f)
        self.assertEqual((rep["file"], rep["counts"]["events"], rep["counts"]["rejected"]), ("big.csv", n, 0))
        self.assertEqual(rep["counts"]["stored"] + rep["counts"]["duplicates"], n)

    def test_watch_moves_files_to_done_and_failed(self):
        drop = os.path.join(self.root, "drop")
        os.makedirs(drop)
        argv = [TOWERD, "import", "--nats", self.nats.url, "-m", POD_MAP, "--watch", drop, "--poll", "100ms"]
        log = open(os.path.join(self.root, "watch.log"), "ab")
        p = fx.spawn(argv, stdout=log, stderr=log, env=self.t.env())
        self.addCleanup(lambda: p.poll() is not None or p.kill())
        with open(POD_TXT) as f:
            good = f.read()
        self.write("drop/.partial-upload", good)
        self.write("drop/upload.tmp", good)
        self.write("drop/pod-1.txt", good)
        self.write("drop/pod-2.txt", good.replace("202611281430", "202613281430"))
        done, failed = os.path.join(drop, "done"), os.path.join(drop, "failed")
        wait_for(lambda: os.path.isdir(failed) and any(f.endswith("pod-2.txt") for f in os.listdir(failed))
                 and any(f.endswith("pod-1.txt") for f in os.listdir(done)), "pod-1 in done/, pod-2 in failed/")
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=fx.tmo(30)), 0)
        fx.reap(p)
        log.close()
        self.assertEqual(sorted(os.listdir(drop)), [".partial-upload", "done", "failed", "upload.tmp", "work"])
        rep = [f for f in os.listdir(failed) if f.endswith(".report.json")]
        with open(os.path.join(failed, rep[0])) as f:
            rep = json.load(f)
        self.assertEqual((rep["file"], rep["outcome"], rep["counts"]["rejected"]), ("pod-2.txt", "failed", 1))
        self.assertEqual(rep["rejectedRows"][0]["line"], 2)
        self.assertEqual(rep["rejectedRows"][0]["code"], "INVALID_TIME")
        # pod-2's good rows are the same events as pod-1's: nothing new; its bad row is a dead letter.
        self.assertEqual(self.msgs(), 6)

    def test_hostile_files_get_clear_errors(self):
        self.start_projector()
        path = os.path.join(self.root, "hostile.csv")
        with open(path, "wb") as f:
            f.write(HEADER.encode())
            f.write(b"SO-1;APPROVED;27.11.2026 08:00;;;dc-1;;;;;\n")   # 2 good
            f.write(b"x" * (5 << 20) + b"\n")                          # 3 a 5 MB line
            f.write(b"SO-2;APP\0ROVED;27.11.2026 08:00;;;dc-1;;;;;\n")  # 4 NUL
            f.write(b";" * 1000000 + b"\n")                            # 5 a million columns
            f.write(b'"' * 999999 + b"\n")                             # 6 quotes, never closed
            f.write(b"SO-3;APPROVED;27.11.2026 08:00;;;dc-\xff;;;;;\n")  # 7 not UTF-8
            f.write(b"SO-4;APPROVED;27.11.2026 08:00;;;dc-4;;;;;")      # 8 good, no line ending
        r = self.imp("-m", ERP_MAP, "--json", path, check=3, timeout=300)
        self.assertEqual((r.json()["stored"], r.json()["rejected"]), (2, 5))
        self.assertIn(path + ":3: TOO_LARGE: record longer than", r.err)
        self.assertIn(path + ":4: MALFORMED: column 2: NUL byte", r.err)
        self.assertIn(path + ":5: TOO_LARGE: more than 1024 columns", r.err)
        self.assertIn(path + ":6: TOO_LARGE", r.err)
        self.assertIn(path + ":7: INVALID_VALUE: ", r.err)
        st = self.caught_up()
        self.assertEqual((st["events"], st["deadLetters"]), (2, 5))


if __name__ == "__main__":
    sys.exit(fx.main(sys.modules[__name__]))
