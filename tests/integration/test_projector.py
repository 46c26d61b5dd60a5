#!/usr/bin/env python3
"""Integration tests of the projector against a real nats-server (JetStream).

usage: test_projector.py TOWERD [TEST_NAME_SUBSTRING...]

Environment: TOWER_IT_SCALE (trace sizes, default 1.0), TOWER_IT_SLOW (timeout multiplier, default
1.0; use 4 for ASan), TOWER_IT_SEED (random seed of the kill schedules), TOWER_IT_KEEP=1 (keep the
temporary directories), TOWER_IT_VERBOSE=1 (log every towerd run).

Each test gets its own nats-server (free loopback ports, own store dir) and temporary directory;
all of it is removed and every child process killed even when a test fails.
The views of the projector are compared with an offline `towerd fold` of the same events: every
view but dead_letters (publish never sends invalid lines), which is checked on its own.
"""

import collections
import copy
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
SEED = int(os.environ.get("TOWER_IT_SEED", str(int(time.time()) % 100000)))
VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "dead_letters", "sla_breaches"]


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    return path


def good_event(i, order, warehouse="dc-1", seconds=None):
    """JSON of a valid orderApproved event it-good-I (the same one pb_event encodes)."""
    if seconds is None:
        seconds = 1795000000 + 60 * i
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    return {"eventId": "it-good-%d" % i, "occurredAt": t, "source": {"system": "erp"}, "orderId": order,
            "orderApproved": {"warehouseId": warehouse}}


class TowerTest(unittest.TestCase):
    """A private nats-server, a temporary directory and helpers; everything is cleaned up."""

    maxDiff = 4000

    def setUp(self):
        self.rng = random.Random("%s/%s" % (SEED, self.id()))
        self.root = fx.make_tempdir("tower-it-%s-" % self._testMethodName[:24])
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self._nc = None
        self.addCleanup(self._close_client)
        self.t0 = time.monotonic()

    def _close_client(self):
        if self._nc is not None:
            self._nc.close()

    def nc(self):
        """A raw NATS client connected to the current server (reconnected after a restart)."""
        if self._nc is None or self._nc.closed:
            if self._nc is not None:
                self._nc.close()
            self._nc = fx.NatsClient(self.nats.url)
        return self._nc

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def projector(self, name="store", **kw):
        p = fx.Projector(self.t, self.path(name), **kw)
        self.addCleanup(p.close)
        return p

    def caught_up(self, data, projector=None, timeout=90):
        return fx.wait_caught_up(self.t, data, self.nc(), projector, timeout=timeout)

    def wait_stream(self, name="TOWER_EVENTS", timeout=30):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            info = self.nc().stream_info(name)
            if info is not None:
                return info
            time.sleep(0.05)
        self.fail("stream %s was not created within %ss" % (name, timeout))

    def assertViewsEqual(self, got, want, what, skip=("dead_letters",)):
        d = fx.diff_views(got, want, skip)
        if d:
            self.fail("%s: the views differ from the offline fold's:\n%s" % (what, d))

    def assertMeaningful(self, dump, min_views=4):
        """The trace must exercise the views, or equality proves little."""
        nonempty = [v for v in VIEWS if v != "dead_letters" and dump.get(v)]
        self.assertGreaterEqual(len(nonempty), min_views,
                                "the reference fold fills too few views to compare: %s" % fx.view_sizes(dump))

    def status_after_kill(self, data):
        """status --json of a store whose projector was just killed (maybe before it created the store)."""
        r = self.t.run("status", "--data", data, "--json", "--nats", self.nats.url, timeout=60)
        if r.rc != 0 and not os.path.exists(os.path.join(data, "current")):
            return {"appliedSeq": 0, "lag": 1}
        self.assertEqual(r.rc, 0, r.describe())
        return r.json()

    def trace(self, name, seed, orders, **kw):
        return self.t.gen(self.path(name), seed, orders, **kw)


# ---------------------------------------------------------------------------------------------

class T1KillProjector(TowerTest):
    def test_1_kill9_projector_repeatedly(self):
        """kill -9 the projector at random moments (>= 20 times) while a trace is published in chunks."""
        orders = fx.scaled(1000, 200)
        trace = self.trace("trace.ndjson", 11, orders)
        chunks = fx.split_file(trace, 24, self.root)
        want, want_st = self.t.offline(self.root, trace)
        self.assertMeaningful(want)
        data = self.path("store")
        proj = self.projector()

        published = []
        errors = []
        done = threading.Event()
        stop = threading.Event()  # set when the test ends, even on failure
        self.addCleanup(stop.set)

        # The last chunks are kept back for kills that must land while events wait to be folded: with
        # the publisher's pauses the projector is often caught up when a random kill comes (it was, at
        # all 20 kills, once under ASan with two test files running at a time).
        reserved = chunks[-3:]

        def publisher():
            try:
                for c in chunks[:-3]:
                    if stop.is_set():
                        return
                    r = self.t.publish(c)
                    published.append(r.summary)
                    time.sleep(self.rng.uniform(0.05, 0.35) * fx.SLOW)
            except BaseException as e:  # reported by the main thread
                errors.append(e)
            finally:
                done.set()

        th = threading.Thread(target=publisher, daemon=True)
        th.start()
        kills, mid_work, applied_seen = 0, 0, []
        batches = collections.Counter()
        while kills < 20 or not done.is_set():
            batch = self.rng.choice([10, 50, 200, 1000])
            batches[batch] += 1
            proj.start(args=["--batch", str(batch)])
            time.sleep(self.rng.uniform(0.03, 0.5) * fx.SLOW)
            self.assertTrue(proj.alive(), "the projector died on its own:\n%s" % proj.log())
            proj.kill9()
            kills += 1
            st = self.status_after_kill(data)
            info = self.nc().stream_info("TOWER_EVENTS")
            last = info["state"]["last_seq"] if info else 0
            if last > st["appliedSeq"]:
                mid_work += 1
            applied_seen.append(st["appliedSeq"])
            self.assertLess(kills, 400, "the publisher never finished")
        th.join(fx.tmo(120))
        if errors:
            raise errors[0]
        for c in reserved:
            published.append(self.t.publish(c).summary)  # the projector is down: all of it waits
            # small batches (a commit, with its fsync, every 10 events): killed as soon as it
            # consumes, it is in the middle of the chunk
            proj.start(args=["--batch", "10"]).wait_running()
            proj.kill9()
            kills += 1
            st = self.status_after_kill(data)
            if self.nc().stream_info("TOWER_EVENTS")["state"]["last_seq"] > st["appliedSeq"]:
                mid_work += 1
            applied_seen.append(st["appliedSeq"])
        fx.log("test 1: %d kills (%d with unapplied events), batch sizes %s, applied after each kill %s"
               % (kills, mid_work, dict(batches), applied_seen))
        self.assertEqual(applied_seen, sorted(applied_seen),
                         "the checkpoint went backwards across kill -9: %s" % applied_seen)
        self.assertGreaterEqual(mid_work, 1, "no kill landed while events were unapplied")

        proj.start().wait_running()
        st, info = self.caught_up(data, proj)
        self.assertEqual(proj.stop(), 0, "projector exit code on SIGTERM:\n%s" % proj.log())
        got = self.t.dump(data)
        self.assertViewsEqual(got, want, "after %d kill -9" % kills)
        self.assertEqual(got["dead_letters"], [], "publish sends no invalid line and the trace has no conflicts")

        stored = sum(p["stored"] for p in published)
        self.assertEqual(sum(p["failed"] for p in published), 0)
        self.assertEqual(info["state"]["messages"], stored)
        self.assertEqual(st["appliedSeq"], info["state"]["last_seq"])
        self.assertEqual(st["events"], want_st["events"], "distinct valid events (offline fold) vs projector")
        self.assertEqual(st["events"], stored, "distinct valid events (JetStream stored) vs projector")
        self.assertEqual(st["duplicates"], 0)
        self.assertEqual(st["deadLetters"], 0)
        self.assertEqual(st["lag"], 0)


class T1bKillProjectorDeadLetters(TowerTest):
    def test_1b_kill9_dead_letters_reach_dlq(self):
        """kill -9 while dead letters are being recorded: every dead letter of the view reaches TOWER_DLQ
        (once: its message id is the stream sequence)."""
        trace = self.trace("trace.ndjson", 12, fx.scaled(300, 30), clean=True)
        lines = read_lines(trace)
        conflicts = []
        for line in lines:  # the same events, other content: each one a conflicting duplicate
            e = json.loads(line)
            e["source"]["instance"] = "it-conflict"
            conflicts.append(json.dumps(e))
        cfile = write_lines(self.path("conflicts.ndjson"), conflicts)
        # The tower's own breaches are identified by their eventId alone: another copy is a duplicate.
        engine = sum(1 for line in lines if json.loads(line)["source"]["system"] == "tower")
        self.assertGreater(len(lines) - engine, 0)
        self.t.publish(trace, check=0)
        self.t.publish(cfile, check=0)
        data = self.path("store")
        proj = self.projector()
        kills = 0
        while kills < 15:
            proj.start()
            time.sleep(self.rng.uniform(0.05, 0.4) * fx.SLOW)
            if not proj.alive():
                break
            proj.kill9()
            kills += 1
            st = self.status_after_kill(data)
            if st["lag"] == 0:
                break
        proj.start().wait_running()
        st, info = self.caught_up(data, proj)
        self.assertEqual(proj.stop(), 0, proj.log())
        dump = self.t.dump(data, stable=False)
        view = sorted(d["seq"] for d in dump["dead_letters"])
        self.assertEqual(len(view), len(lines) - engine, "one CONFLICTING_DUPLICATE per conflicting copy")
        self.assertEqual(st["deadLetters"], len(lines) - engine)
        dlq = self.nc().stream_info("TOWER_DLQ")
        seqs = collections.Counter()
        for s in range(dlq["state"]["first_seq"], dlq["state"]["last_seq"] + 1):
            _, hdrs, _ = self.nc().stream_msg("TOWER_DLQ", s)
            seqs[int(hdrs["Tower-Seq"])] += 1
        missing = sorted(set(view) - set(seqs))
        fx.log("test 1b: %d kills; %d dead letters in the view, %d messages in TOWER_DLQ, %d missing there"
               % (kills, len(view), dlq["state"]["messages"], len(missing)))
        self.assertEqual([s for s, n in seqs.items() if n > 1], [], "dead letters twice in TOWER_DLQ")
        self.assertEqual(len(missing), 0,
                         "BUG (towerd projector): %d of %d dead letters committed to the store never reached "
                         "TOWER_DLQ after kill -9 (a dead letter must be (re)sent after a crash between the LMDB "
                         "commit and its publish); e.g. stream sequences %s" % (len(missing), len(view), missing[:10]))
        self.assertEqual(dlq["state"]["messages"], len(view))


class T2KillNats(TowerTest):
    def test_2_kill9_nats_server_mid_stream(self):
        """kill -9 nats-server and restart it mid-stream: the projector reconnects on its own."""
        orders = fx.scaled(800, 200)
        trace = self.trace("trace.ndjson", 22, orders)
        chunks = fx.split_file(trace, 16, self.root)
        want, want_st = self.t.offline(self.root, trace)
        self.assertMeaningful(want)
        data = self.path("store")
        proj = self.projector().start(args=["--batch", "100"])  # more fetches: more of them cut by a kill
        pid = proj.proc.pid

        runs = collections.Counter()
        hit = []  # exit codes of publish runs that a kill landed in
        errors = []
        done = threading.Event()
        running = threading.Event()  # a publish run is in flight
        current = {}
        stop = threading.Event()  # set when the test ends, even on failure
        self.addCleanup(stop.set)

        def publisher():
            try:
                for i, c in enumerate(chunks):
                    for attempt in range(60):
                        if stop.is_set():
                            return
                        runs[i] += 1
                        current["kills"] = kills
                        running.set()
                        r = self.t.publish(c, check=(0, 1, 3), extra=["--timeout", "2s"], timeout=120)
                        running.clear()
                        if current["kills"] != kills:
                            hit.append(r.rc)
                        if r.rc in (0, 3):
                            break
                        fx.log("test 2: publish of chunk %d failed (attempt %d), re-running: %s"
                               % (i, attempt + 1, r.err.strip().splitlines()[-1:] if r.err else ""))
                        time.sleep(0.3)
                    else:
                        raise AssertionError("chunk %d never published" % i)
                    time.sleep(self.rng.uniform(0.05, 0.25) * fx.SLOW)
            except BaseException as e:
                errors.append(e)
            finally:
                running.clear()
                done.set()

        kills = 0
        th = threading.Thread(target=publisher, daemon=True)
        th.start()
        # Kills aimed at a publish in flight (the projector is consuming then), one at a random moment.
        last_run = 0
        for aim in ("publish", "publish", "publish", "publish", "random"):
            if aim == "publish":
                # Wait until a publish run is storing messages, then kill: acks are in flight.
                nc = fx.NatsClient(self.nats.url)
                try:
                    base = None
                    deadline = time.monotonic() + fx.tmo(60)
                    while time.monotonic() < deadline and not done.is_set():
                        n = nc.stream_info("TOWER_EVENTS")
                        n = n["state"]["messages"] if n else 0
                        if not running.is_set() or sum(runs.values()) <= last_run:
                            base = None  # wait for a run that no kill has hit yet
                        elif base is None:
                            base = n
                        elif n > base:
                            break
                        time.sleep(0.002)
                finally:
                    nc.close()
            else:
                time.sleep(self.rng.uniform(0.2, 1.0) * fx.SLOW)
            self.nats.kill9()
            last_run = sum(runs.values())
            kills += 1
            fx.log("test 2: killed nats-server (%d, aimed at %s, publish in flight: %s)"
                   % (kills, aim, running.is_set()))
            time.sleep(self.rng.uniform(0.2, 1.0))
            self.nats.start()
        th.join(fx.tmo(300))
        self.assertTrue(done.is_set(), "the publisher did not finish")
        if errors:
            raise errors[0]
        fx.log("test 2: %d nats-server kills, publish runs per chunk %s, exit codes of the runs hit by a kill %s"
               % (kills, dict(runs), hit))
        st, info = self.caught_up(data, proj, timeout=120)
        self.assertTrue(proj.alive() and proj.proc.pid == pid, "the projector was not the same process throughout")
        got = self.t.dump(data)
        d = fx.diff_views(got, want)
        if d or st["events"] != want_st["events"] or info["state"]["messages"] != want_st["events"]:
            # Where were events lost: in JetStream, or between JetStream and the store?
            in_stream = fx.stream_event_ids(self.nc())
            ids = collections.Counter(e for _, e in in_stream)
            valid = set(fx.trace_event_ids(trace)) - {x.get("eventId") for x in want["dead_letters"]}
            lost = sorted(valid - set(ids))
            culprit = ""
            if not lost and len(ids) == want_st["events"] and st["appliedSeq"] == info["state"]["last_seq"]:
                culprit = ("BUG (towerd projector): JetStream holds every valid event exactly once and the "
                           "checkpoint says all %d sequences were applied, yet the store has %d events: the "
                           "projector skipped %d messages across NATS restarts (it never checks that a fetched "
                           "sequence follows its checkpoint, and keeps the server-side AckNone consumer after a "
                           "reconnect instead of reopening it from the checkpoint).\n"
                           % (info["state"]["last_seq"], st["events"], want_st["events"] - st["events"]))
            self.fail(culprit + "after %d nats-server kill -9 the store differs from the offline fold's:\n%s\n"
                      "diagnosis: stream holds %d messages (%d distinct eventIds, %d twice), last seq %d; store: %s; "
                      "offline fold: %d events; valid eventIds absent from the stream: %d %s\n--- projector log:\n%s"
                      % (kills, d or "(views equal)", len(in_stream), len(ids),
                         sum(1 for n in ids.values() if n > 1), info["state"]["last_seq"], st, want_st["events"],
                         len(lost), lost[:10], proj.log(30)))
        self.assertEqual(got["dead_letters"], [])
        self.assertEqual(st["events"], want_st["events"])
        self.assertEqual(info["state"]["messages"], want_st["events"],
                         "the stream should hold each distinct valid event once (message ids)")
        self.assertEqual(st["deadLetters"], 0)

        # SIGTERM while NATS is down: a clean, prompt stop.
        self.nats.kill9()
        # stop() waits this long for the exit, then fails the test
        self.assertEqual(proj.stop(timeout=10), 0, "SIGTERM while NATS is down: no prompt, clean stop\n" + proj.log())
        # Started while NATS is down: it waits for it, then catches up.
        proj.start()
        deadline = time.monotonic() + fx.tmo(20)
        while "waiting for NATS" not in proj.log(5) and proj.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(proj.alive(), "a projector started while NATS is down must wait for it:\n" + proj.log())
        self.assertIn("waiting for NATS", proj.log(5))
        self.nats.start()
        extra = write_lines(self.path("extra.ndjson"), [json.dumps(good_event(i, "SO-LATE%d" % i)) for i in range(5)])
        self.t.publish(extra, check=0)
        st, info = self.caught_up(data, proj)
        want2, want2_st = self.t.offline(self.root, trace, extra)
        self.assertViewsEqual(self.t.dump(data), want2, "after a start while NATS was down")
        self.assertEqual(st["events"], want2_st["events"])
        self.assertEqual(proj.stop(), 0, proj.log())


class T3Poison(TowerTest):
    def test_3_poison_messages(self):
        """Undecodable and invalid raw messages become dead letters; good ones are applied; the
        projector keeps running."""
        data = self.path("store")
        proj = self.projector().start()
        self.wait_stream("TOWER_EVENTS")
        self.wait_stream("TOWER_DLQ")
        nc = self.nc()
        base = 1795000000
        goods = [good_event(i, "SO-P%d" % i, "dc-%d" % (1 + i % 3)) for i in range(1, 8)]

        def pb_of(e):
            return fx.pb_event(e["eventId"], base + 60 * int(e["eventId"].rsplit("-", 1)[1]), 0, "erp",
                               e["orderId"], e["orderApproved"]["warehouseId"])

        json_text = json.dumps(good_event(99, "SO-P99")).encode()
        bad_json = dict(good_event(98, "SO-P98"))
        bad_json["orderApproved"] = {"warehouseId": "dc 1"}
        poisons = [
            ("garbage", b"\xff\xff\xff", {"UNDECODABLE"}),
            ("json text", json_text, {"UNDECODABLE"}),
            ("bad json", json.dumps(bad_json).encode(), {"INVALID_ID"}),
            ("empty", b"", {"UNDECODABLE", "NO_PAYLOAD", "MISSING_FIELD"}),
            ("no eventId", fx.pb_event(None, base, 0, "erp", "SO-P50", "dc-1"), {"MISSING_FIELD"}),
            ("bad orderId", fx.pb_event("it-bad-order", base, 0, "erp", "SO 1", "dc-1"), {"INVALID_ID"}),
            ("no payload", fx.pb_event("it-no-payload", base, 0, "erp", "SO-P51", payload=False), {"NO_PAYLOAD"}),
        ]
        sent = []  # (kind, seq, bytes, accepted codes)
        for i, g in enumerate(goods):
            ack = nc.js_publish("tower.evt.erp.orderApproved", pb_of(g), msg_id=g["eventId"])
            self.assertEqual(ack.get("stream"), "TOWER_EVENTS", ack)
            if i < len(poisons):
                kind, raw, codes = poisons[i]
                ack = nc.js_publish("tower.evt.erp.orderApproved" if i % 2 else "tower.evt.wms.garbage", raw)
                self.assertEqual(ack.get("stream"), "TOWER_EVENTS", ack)
                sent.append((kind, ack["seq"], raw, codes))
        st, info = self.caught_up(data, proj)
        self.assertTrue(proj.alive(), "the projector stopped on poison:\n%s" % proj.log())

        dump = self.t.dump(data, stable=False)
        dls = {d.get("seq"): d for d in dump["dead_letters"]}
        report = []
        for kind, seq, raw, codes in sent:
            d = dls.get(seq)
            report.append("%-11s seq %-3d -> %s" % (kind, seq, d and (d.get("code"), d.get("message"))))
        fx.log("test 3: dead letters:\n  " + "\n  ".join(report))
        self.assertEqual(sorted(dls), sorted(s for _, s, _, _ in sent),
                         "dead letters by stream sequence: %s" % dump["dead_letters"])
        for kind, seq, raw, codes in sent:
            d = dls[seq]
            self.assertIn(d["code"], codes, "%s (seq %d): %s" % (kind, seq, d))
            self.assertTrue(d.get("message"), "%s: a dead letter needs a message: %s" % (kind, d))
            self.assertTrue(d.get("receivedAt"), "%s: no receivedAt: %s" % (kind, d))
        by_kind = {k: dls[s] for k, s, _, _ in sent}
        self.assertIn("eventId", by_kind["no eventId"]["message"], "the message names the field")
        # A JSON record on the bus (which carries protobuf) says its real problem, or how to send it.
        self.assertIn("orderApproved.warehouseId", by_kind["bad json"]["message"], "the JSON record's real error")
        self.assertEqual(by_kind["bad json"].get("eventId"), "it-good-98")
        self.assertIn("towerd publish", by_kind["json text"]["message"])
        self.assertIn("orderId", by_kind["bad orderId"]["message"], "the message names the field")
        self.assertEqual(by_kind["bad orderId"].get("eventId"), "it-bad-order")
        self.assertEqual(by_kind["no payload"].get("eventId"), "it-no-payload")

        # TOWER_DLQ holds one message per poison, with the raw bytes and where they came from.
        dlq = self.nc().stream_info("TOWER_DLQ")
        self.assertEqual(dlq["state"]["messages"], len(sent), "TOWER_DLQ message count")
        got_dlq = {}
        for s in range(dlq["state"]["first_seq"], dlq["state"]["last_seq"] + 1):
            subject, hdrs, body = self.nc().stream_msg("TOWER_DLQ", s)
            got_dlq[int(hdrs.get("Tower-Seq", "0"))] = (subject, hdrs, body)
        for kind, seq, raw, codes in sent:
            self.assertIn(seq, got_dlq, "%s (seq %d) not in TOWER_DLQ" % (kind, seq))
            subject, hdrs, body = got_dlq[seq]
            self.assertEqual(subject, "tower.dlq." + dls[seq]["code"], kind)
            self.assertEqual(hdrs.get("Tower-Code"), dls[seq]["code"], kind)
            self.assertEqual(body, raw, "%s: TOWER_DLQ must keep the raw bytes" % kind)

        # Every good event is applied, as an offline fold of the same events gives.
        good_file = write_lines(self.path("good.ndjson"), [json.dumps(g) for g in goods])
        want, want_st = self.t.offline(self.root, good_file)
        self.assertViewsEqual(self.t.dump(data), want, "good events among poison")
        self.assertEqual(sorted(i["orderId"] for i in dump["awaiting_release"]), sorted(g["orderId"] for g in goods))
        self.assertEqual(st["events"], len(goods))
        self.assertEqual(st["deadLetters"], len(sent))
        self.assertEqual(st["appliedSeq"], info["state"]["last_seq"])
        self.assertEqual(info["state"]["messages"], len(goods) + len(sent))

        # Still alive and still applying.
        late = good_event(8, "SO-P8")
        ack = nc.js_publish("tower.evt.erp.orderApproved", pb_of(late), msg_id=late["eventId"])
        self.assertEqual(ack.get("stream"), "TOWER_EVENTS", ack)
        st, _ = self.caught_up(data, proj)
        self.assertEqual(st["events"], len(goods) + 1)
        self.assertTrue(proj.alive())
        self.assertEqual(proj.stop(), 0, proj.log())


class T4Rebuild(TowerTest):
    def test_4_rebuild_equals_live(self):
        """rebuild gives the live projector's dump, swaps DIR/current, and dump works meanwhile."""
        orders = fx.scaled(1000, 50)
        trace = self.trace("trace.ndjson", 44, orders, conflicts=0.01)
        data = self.path("store")
        proj = self.projector().start()
        self.t.publish(trace)
        st_live, info = self.caught_up(data, proj)
        live = self.t.dump(data)
        want, want_st = self.t.offline(self.root, trace)
        self.assertViewsEqual(live, want, "live projector")
        conflicts_live = sorted((d["code"], d.get("eventId")) for d in live["dead_letters"])
        conflicts_want = sorted((d["code"], d.get("eventId")) for d in want["dead_letters"]
                                if d["code"] == "CONFLICTING_DUPLICATE")
        self.assertGreater(len(conflicts_want), 0, "the trace should hold conflicting duplicates")
        self.assertEqual(conflicts_live, conflicts_want, "the projector's dead letters are the conflicting duplicates")
        before = os.readlink(os.path.join(data, "current"))

        rb = fx.spawn([self.t.binary, "rebuild", "--nats", self.nats.url, "--data", data, "--batch", "25"],
                      stdout=fx.subprocess.PIPE, stderr=fx.subprocess.PIPE, env=self.t.env(), cwd=self.root)
        errs = []
        err_reader = threading.Thread(target=lambda: errs.append(rb.stderr.read()), daemon=True)
        err_reader.start()
        t0 = time.monotonic()
        during, dumps = 0, 0
        while rb.poll() is None and time.monotonic() - t0 < fx.tmo(300):
            r = self.t.run("dump", "--data", data, "--stable", timeout=60)
            dumps += 1
            if rb.poll() is None:  # it ran entirely while the rebuild ran
                self.assertEqual(r.rc, 0, "dump during the rebuild: " + r.describe())
                self.assertIsNone(fx.diff_views(r.json(), live, skip=()), "dump during the rebuild")
                during += 1
        try:
            rc = rb.wait(timeout=fx.tmo(300))
        finally:
            if rb.poll() is None:
                rb.kill()
            rb.wait()
            fx.reap(rb)
        err_reader.join(10)
        stderr = errs[0].decode("utf-8", "replace") if errs else ""
        secs = time.monotonic() - t0
        fx.log("test 4: rebuild took %.2fs; %d dumps, %d of them while it ran" % (secs, dumps, during))
        self.assertEqual(rc, 0, "towerd rebuild failed:\n" + stderr[-3000:])
        self.assertGreaterEqual(during, 1, "no dump could run during the rebuild (%.2fs): raise TOWER_IT_SCALE" % secs)
        self.assertIn("rebuild [", stderr, "a progress bar on stderr")
        self.assertIn("100.0%", stderr, "the progress bar reaches 100%")
        # stderr is a pipe here, not a terminal: whole lines for a log, no carriage returns, one final line
        self.assertNotIn("\r", stderr, "progress redrawn in place in a log")
        bars = [x for x in stderr.splitlines() if x.startswith("rebuild [")]
        self.assertEqual(sum("100.0%" in x for x in bars), 1, "the final progress line once: %s" % bars)
        self.assertIn("100.0%", bars[-1], "the last progress line is the final one")
        self.assertProgressSane(stderr)
        # the dead letters were reported by the live projector: the rebuild counts them, one line
        self.assertNotIn("dead letter at sequence", stderr, "a rebuild logs every dead letter again")
        m = re.search(r"replayed up to sequence (\d+): (\d+) events applied, (\d+) duplicates, (\d+) dead letters", stderr)
        self.assertIsNotNone(m, "the rebuild's summary line: " + stderr[-2000:])
        self.assertEqual(int(m.group(4)), len(live["dead_letters"]), "dead letters counted by the rebuild")
        after = os.readlink(os.path.join(data, "current"))
        fx.log("test 4: current %s -> %s" % (before, after))
        self.assertNotEqual(after, before, "DIR/current must point at a new generation")
        self.assertTrue(os.path.isdir(os.path.join(data, after)))
        self.assertTrue(before.startswith("gen-") and after.startswith("gen-"), (before, after))
        self.assertEqual(int(after[4:]), int(before[4:]) + 1, "the next generation")

        rebuilt = self.t.dump(data)
        self.assertIsNone(fx.diff_views(rebuilt, live, skip=()), "rebuilt vs live, every view (--stable)")
        st = self.t.status(data)
        self.assertEqual(st["appliedSeq"], info["state"]["last_seq"])
        self.assertEqual(st["events"], st_live["events"])
        self.assertEqual(st["deadLetters"], st_live["deadLetters"])

        # The running projector continues from the new generation.
        extra = [good_event(1000 + i, "SO-RB%d" % i) for i in range(5)]
        extra_file = write_lines(self.path("extra.ndjson"), [json.dumps(e) for e in extra])
        self.t.publish(extra_file, check=0)
        st2, _ = self.caught_up(data, proj)
        self.assertTrue(proj.alive(), proj.log())
        self.assertEqual(st2["events"], st_live["events"] + len(extra))
        want2, _ = self.t.offline(self.root, trace, extra_file)
        self.assertViewsEqual(self.t.dump(data), want2, "projector after the rebuild")
        self.assertEqual(proj.stop(), 0, proj.log())

    def assertProgressSane(self, stderr):
        """Every progress line of a rebuild: done never above the total, an ETA below a day."""
        bars = [x for x in stderr.splitlines() if x.startswith("rebuild [")]
        self.assertGreaterEqual(len(bars), 1, "no progress line: " + stderr[-2000:])
        for line in bars:
            m = re.search(r"%\s+(\d+)/(\d+)\s+\d+ events/s\s+ETA (\d+)s$", line)
            self.assertIsNotNone(m, "a progress line: %r" % line)
            done, total, eta = int(m.group(1)), int(m.group(2)), int(m.group(3))
            self.assertLessEqual(done, total, "more done than the total: %r" % line)
            self.assertLess(eta, 86400, "an absurd ETA: %r" % line)
        return bars

    def test_4b_rebuild_while_the_stream_grows(self):
        """A rebuild while events keep coming: its progress never shows more done than the total."""
        trace = self.trace("trace.ndjson", 45, fx.scaled(400, 50))
        data = self.path("store")
        proj = self.projector().start()
        self.t.publish(trace)
        self.caught_up(data, proj)
        stop = threading.Event()
        published = [0]

        def publish_more():
            k = 0
            while not stop.is_set():
                lines = [json.dumps(good_event(100000 + k * 200 + i, "SO-GROW%d" % (k * 200 + i))) for i in range(200)]
                f = write_lines(self.path("grow-%d.ndjson" % k), lines)
                if self.t.publish(f, check=None).rc == 0:
                    published[0] += len(lines)
                k += 1

        pub = threading.Thread(target=publish_more, daemon=True)
        pub.start()
        try:
            while published[0] == 0 and pub.is_alive():
                time.sleep(0.05)
            r = self.t.run("rebuild", "--nats", self.nats.url, "--data", data, "--batch", "25", timeout=300)
        finally:
            stop.set()
            pub.join(fx.tmo(200))
        self.assertEqual(r.rc, 0, r.describe())
        bars = self.assertProgressSane(r.err)
        self.assertIn("100.0%", bars[-1], "the last progress line is the final one")
        fx.log("test 4b: %d events published during the rebuild; last line %s" % (published[0], bars[-1]))
        st, _ = self.caught_up(data, proj)
        self.assertTrue(proj.alive(), proj.log())
        self.assertEqual(proj.stop(), 0, proj.log())


class T5StreamReset(TowerTest):
    def test_5_stream_reset_needs_rebuild(self):
        """A recreated stream is detected (exit 4 naming towerd rebuild); rebuild recovers."""
        trace_a = self.trace("a.ndjson", 55, fx.scaled(600, 40))
        trace_b = self.trace("b.ndjson", 56, fx.scaled(200, 20))
        data = self.path("store")
        proj = self.projector().start()
        self.t.publish(trace_a)
        st_a, info_a = self.caught_up(data, proj)
        self.assertEqual(proj.stop(), 0, proj.log())

        self.assertTrue(self.nc().stream_delete("TOWER_EVENTS"))
        self.t.publish(trace_b)
        info_b = self.nc().stream_info("TOWER_EVENTS")
        self.assertLess(info_b["state"]["last_seq"], info_a["state"]["last_seq"], "trace B is smaller")

        t0 = time.monotonic()
        proj.start()
        rc = proj.wait_exit(60)
        secs = time.monotonic() - t0
        self.assertEqual(rc, 4, "projector on a recreated stream: exit code (None: still running)\n" + proj.log())
        self.assertLess(secs, fx.tmo(15), "exit 4 should come quickly")
        self.assertIn("towerd rebuild", proj.log(), "the message names towerd rebuild")
        st = self.t.status(data, live=False)
        self.assertEqual(st["appliedSeq"], st_a["appliedSeq"], "the store was left untouched")

        r = self.t.run("rebuild", "--nats", self.nats.url, "--data", data, timeout=300)
        self.assertEqual(r.rc, 0, r.describe())
        proj.start()
        st, info = self.caught_up(data, proj)
        want, want_st = self.t.offline(self.root, trace_b)
        got = self.t.dump(data)
        self.assertViewsEqual(got, want, "after rebuild from the new stream")
        self.assertEqual(got["dead_letters"], [])
        self.assertEqual(st["events"], want_st["events"])
        self.assertEqual(st["appliedSeq"], info_b["state"]["last_seq"])
        self.assertEqual(proj.stop(), 0, proj.log())

    def test_5b_stream_deleted_under_running_projector(self):
        """Deleting the stream under a running projector: it must not carry on silently on the new one."""
        trace_a = self.trace("a.ndjson", 57, fx.scaled(200, 20))
        trace_b = self.trace("b.ndjson", 58, fx.scaled(100, 10), clean=True)
        data = self.path("store")
        proj = self.projector().start()
        self.t.publish(trace_a)
        self.caught_up(data, proj)
        self.assertTrue(self.nc().stream_delete("TOWER_EVENTS"))
        self.t.publish(trace_b, check=0)
        rc = proj.wait_exit(60)
        if rc is None:
            st = self.t.status(data)
            self.fail("the projector kept running on a recreated stream (status %s)\n%s" % (st, proj.log()))
        self.assertEqual(rc, 4, proj.log())
        self.assertIn("towerd rebuild", proj.log())


class T5RemovedEvents(TowerTest):
    """Events removed from the stream before the store applied them: exit 4, never a silent skip."""

    def events_file(self, name, n):
        lines = [json.dumps(good_event(i, "SO-%s%d" % (name.upper(), i)) | {"eventId": "it-%s-%d" % (name, i)})
                 for i in range(n)]
        return write_lines(self.path(name + ".ndjson"), lines)

    def prepare(self):
        """A store that applied 10 events (seq 1..10), then 10 more in the stream (11..20) unapplied."""
        data = self.path("store")
        proj = self.projector().start()
        self.t.publish(self.events_file("a", 10), check=0)
        self.caught_up(data, proj)
        return data, proj

    def expect_exit4(self, data, proj, what):
        rc = proj.wait_exit(4)
        if rc is None:
            # Show what it does instead: its status, then publish 5 more events and let it run.
            st = self.t.status(data)
            self.t.publish(self.events_file("c", 5), check=0)
            rc = proj.wait_exit(4)
            st2 = self.t.status(data)
            self.fail("BUG (towerd projector): %s: expected exit 4 naming towerd rebuild; got: still running "
                      "%.0fs after start, status %s; after 5 more events were published: exit "
                      "code %s (None: still running), status %s\n--- projector log:\n%s"
                      % (what, fx.tmo(4), st, rc, st2, proj.log(8)))
        self.assertEqual(rc, 4, "%s\n%s" % (what, proj.log()))
        self.assertIn("towerd rebuild", proj.log())

    def test_5c_purged_unapplied_events_keep(self):
        data, proj = self.prepare()
        self.assertEqual(proj.stop(), 0)
        self.t.publish(self.events_file("b", 10), check=0)
        r = self.nc().js_api("STREAM.PURGE.TOWER_EVENTS", {"keep": 5})
        self.assertTrue(r.get("success"), r)
        proj.start()
        self.expect_exit4(data, proj, "events 11..15 purged (keep 5) before being applied")

    def test_5d_unapplied_events_expired_by_max_age(self):
        """The documented case "removed by the stream's limits", down to an empty stream."""
        lim = ["--stream-max-age", "2s", "--dup-window", "1s"]  # a window cannot exceed max age
        data = self.path("store")
        proj = self.projector(args=lim).start()
        self.t.publish(self.events_file("a", 10), check=0, extra=lim)
        self.caught_up(data, proj)
        self.assertEqual(proj.stop(), 0)
        self.t.publish(self.events_file("b", 10), check=0, extra=lim)
        deadline = time.monotonic() + fx.tmo(30)
        while self.nc().stream_info("TOWER_EVENTS")["state"]["messages"] and time.monotonic() < deadline:
            time.sleep(0.2)
        info = self.nc().stream_info("TOWER_EVENTS")["state"]
        self.assertEqual((info["messages"], info["first_seq"], info["last_seq"]), (0, 21, 20),
                         "max age 2s should have removed every message")
        proj.start()
        self.expect_exit4(data, proj, "events 11..20 expired (max age) before being applied; the stream is "
                                      "empty (first_seq 21, last_seq 20, 0 messages)")

    def test_5e_deleted_unapplied_event(self):
        """An unapplied message deleted from the stream: the projector re-reads from its checkpoint, then
        goes on past the hole with a warning naming it (the implemented choice: deleted messages are not
        a limit)."""
        data, proj = self.prepare()
        self.assertEqual(proj.stop(), 0)
        self.t.publish(self.events_file("b", 10), check=0)
        r = self.nc().js_api("STREAM.MSG.DELETE.TOWER_EVENTS", {"seq": 15})
        self.assertTrue(r.get("success"), r)
        proj.start()
        st, info = self.caught_up(data, proj)
        self.assertEqual((st["appliedSeq"], st["events"]), (20, 19), st)
        self.assertIn("sequences 15..15 are not in the stream", proj.log(), "the hole must be reported")
        self.assertEqual(proj.stop(), 0)

    def test_5f_purged_while_projector_paused(self):
        data, proj = self.prepare()
        proj.proc.send_signal(fx.signal.SIGSTOP)
        try:
            time.sleep(1.0)  # its pending pull request (250 ms) expires: nothing more is delivered to it
            self.t.publish(self.events_file("b", 10), check=0)
            r = self.nc().js_api("STREAM.PURGE.TOWER_EVENTS", {"keep": 2})
            self.assertTrue(r.get("success"), r)
        finally:
            proj.proc.send_signal(fx.signal.SIGCONT)
        self.expect_exit4(data, proj, "a running (paused) projector: events purged (keep 2) before it applied them")


class DeliveryDropProxy:
    """A TCP proxy in front of nats-server that, while `drop` is set, swallows every message a JetStream consumer
    delivers (those carry a $JS.ACK reply subject) and passes everything else: API replies, direct reads,
    pull-request statuses. To the client, its consumer is alive and delivers nothing."""

    def __init__(self, upstream_port):
        self.up = upstream_port
        self.drop = threading.Event()
        self.dropped = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.socks = [self.lsock]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.up))
            self.socks += [c, u]
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._filter, args=(u, c), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                dst.sendall(d)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _filter(self, src, dst):
        """Server to client, one protocol line (and its payload) at a time."""
        buf = b""
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                buf += d
                out = []
                while True:
                    nl = buf.find(b"\r\n")
                    if nl < 0:
                        break
                    head = buf[:nl].split()
                    size = 0
                    if head and head[0] in (b"MSG", b"HMSG"):
                        size = int(head[-1]) + 2
                    if len(buf) < nl + 2 + size:
                        break
                    frame, buf = buf[:nl + 2 + size], buf[nl + 2 + size:]
                    reply = head[3] if len(head) >= (5 if head and head[0] == b"MSG" else 6) else b""
                    if self.drop.is_set() and reply.startswith(b"$JS.ACK."):
                        self.dropped += 1
                        continue
                    out.append(frame)
                if out:
                    dst.sendall(b"".join(out))
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class T5bStuckConsumer(TowerTest):
    def test_5g_stuck_consumer_read_directly(self):
        """A consumer that delivers nothing although the stream is ahead (as one left stuck by a NATS node's loss
        in a cluster) does not stop the projector: it re-reads, then reads the stream directly, and goes back to
        its consumer once that delivers again; the views are the offline fold's."""
        trace = self.trace("trace.ndjson", 57, fx.scaled(120, 30))
        with open(trace, "rb") as f:
            lines = f.read().splitlines(keepends=True)
        parts = [self.path("p%d.ndjson" % i) for i in range(3)]
        third = len(lines) // 3
        for i, path in enumerate(parts):
            with open(path, "wb") as f:
                f.writelines(lines[i * third:] if i == 2 else lines[i * third:(i + 1) * third])
        proxy = DeliveryDropProxy(self.nats.port)
        self.addCleanup(proxy.close)
        data = self.path("store")
        proj = fx.Projector(self.t, data, url="nats://127.0.0.1:%d" % proxy.port)
        self.addCleanup(proj.close)
        proj.start()
        self.t.publish(parts[0])
        self.caught_up(data, proj)

        proxy.drop.set()
        self.t.publish(parts[1])
        self.caught_up(data, proj, timeout=60)
        self.assertGreater(proxy.dropped, 0, "no delivery was dropped: the consumer was not stuck")
        log = proj.log(300)
        self.assertIn("re-reading from there", log, "the projector did not re-read first")
        self.assertIn("reading the stream directly", log, "the projector did not read the stream itself")

        proxy.drop.clear()
        self.t.publish(parts[2])
        self.caught_up(data, proj, timeout=60)
        self.assertIn("the consumer delivers again", proj.log(300))
        want, _ = self.t.offline(self.root, trace)
        self.assertViewsEqual(self.t.dump(data), want, "a projector whose consumer was stuck")


class T6Publish(TowerTest):
    def test_6_publish_duplicates_conflicts_invalid(self):
        trace = self.trace("trace.ndjson", 66, fx.scaled(300, 100))
        want, want_st = self.t.offline(self.root, trace)
        invalid = sum(1 for d in want["dead_letters"])
        self.assertGreater(invalid, 0, "the generated trace should hold invalid lines")
        n_lines = len(read_lines(trace))

        first = self.t.publish(trace, check=3)
        s1 = first.summary
        self.assertEqual(s1["records"], n_lines)
        self.assertEqual(s1["rejected"], invalid)
        self.assertEqual(s1["stored"], want_st["events"])
        self.assertEqual(s1["duplicates"], want_st["duplicates"])
        self.assertEqual(s1["failed"], 0)
        self.assertIn("%d stored" % s1["stored"], first.err)

        second = self.t.publish(trace, check=3)
        s2 = second.summary
        self.assertEqual(s2, dict(s2, records=n_lines, stored=0, duplicates=n_lines - invalid, rejected=invalid,
                                  failed=0), "the second publish of the same file")

        # A conflicting duplicate: an orderApproved of the trace, years later and at another warehouse
        # (applied, it would move the order's approval after its release: an anomaly).
        lines = read_lines(trace)
        awaiting = {i["orderId"] for i in want["awaiting_release"]}
        cands = []
        for line in lines:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and "orderApproved" in e and e.get("eventId") and e.get("orderId"):
                cands.append(e)
        self.assertTrue(cands, "no orderApproved in the trace")
        cands.sort(key=lambda e: (e["orderId"] not in awaiting, e["eventId"]))
        orig = cands[0]
        conflict = copy.deepcopy(orig)
        conflict["orderApproved"]["warehouseId"] = "dc-9"
        conflict["occurredAt"] = "2030-01-01T00:00:00Z"
        cfile = write_lines(self.path("conflict.ndjson"), [json.dumps(conflict)])
        r = self.t.publish(cfile, check=0)
        self.assertEqual((r.summary["stored"], r.summary["duplicates"]), (1, 0), "a conflicting duplicate is stored")
        r = self.t.publish(cfile, check=0)
        self.assertEqual((r.summary["stored"], r.summary["duplicates"]), (0, 1), "then it is an exact duplicate")

        data = self.path("store")
        proj = self.projector().start()
        st, info = self.caught_up(data, proj)
        got = self.t.dump(data)
        self.assertViewsEqual(got, want, "the first copy stays applied")
        other, _ = self.t.offline(self.root, cfile, trace)
        self.assertIsNotNone(fx.diff_views(other, want),
                             "the conflicting copy of %s should change the views had it come first" % orig["eventId"])
        self.assertEqual([(d["code"], d.get("eventId")) for d in got["dead_letters"]],
                         [("CONFLICTING_DUPLICATE", orig["eventId"])])
        self.assertEqual(st["events"], want_st["events"])
        self.assertEqual(st["deadLetters"], 1)
        dlq = self.nc().stream_info("TOWER_DLQ")
        self.assertEqual(dlq["state"]["messages"], 1)
        subject, hdrs, body = self.nc().stream_msg("TOWER_DLQ", dlq["state"]["last_seq"])
        self.assertEqual(subject, "tower.dlq.CONFLICTING_DUPLICATE")
        self.assertIn(b"dc-9", body, "TOWER_DLQ keeps the conflicting copy's bytes")
        self.assertEqual(proj.stop(), 0, proj.log())

        # A file with invalid lines: exit 3, FILE:LINE: CODE naming the field; the good lines go in.
        bad = self.path("bad.ndjson")
        e1 = good_event(1, "SO-INV1")
        e2 = dict(good_event(2, "SO 1"))
        e3 = good_event(3, "SO-INV3")
        e4 = good_event(4, "SO-INV4")
        del e4["occurredAt"]
        write_lines(bad, [json.dumps(e1), json.dumps(e2), json.dumps(e3), json.dumps(e4)])
        r = self.t.publish(bad, check=3)
        self.assertEqual(r.summary, dict(r.summary, records=4, stored=2, duplicates=0, rejected=2, failed=0))
        errlines = r.err.splitlines()
        l2 = [x for x in errlines if x.startswith(bad + ":2: ")]
        l4 = [x for x in errlines if x.startswith(bad + ":4: ")]
        self.assertEqual(len(l2), 1, r.err)
        self.assertEqual(len(l4), 1, r.err)
        self.assertTrue(l2[0].startswith(bad + ":2: INVALID_ID: ") and "orderId" in l2[0], l2[0])
        self.assertTrue(l4[0].startswith(bad + ":4: MISSING_FIELD: ") and "occurredAt" in l4[0], l4[0])
        self.assertFalse([x for x in errlines if x.startswith(bad + ":1:") or x.startswith(bad + ":3:")], r.err)

        # NATS unreachable: exit 1.
        r = self.t.publish(bad, url="nats://127.0.0.1:%d" % fx.free_port(), check=1, timeout=60)


class T7Notices(TowerTest):
    def test_7_change_notices(self):
        sub = self.nc().subscribe("tower.changes")
        self.nc().flush()
        data = self.path("store")
        proj = self.projector().start()
        trace = self.trace("trace.ndjson", 77, fx.scaled(60, 10), clean=True)
        for c in fx.split_file(trace, 4, self.root):
            self.t.publish(c, check=0)
            time.sleep(0.1)
        st, info = self.caught_up(data, proj)
        # The notices go out after each commit: wait for the one of the last commit, whole.
        msgs = []
        deadline = time.monotonic() + fx.tmo(10)
        while time.monotonic() < deadline:
            self.nc().flush()
            msgs += sub.drain()
            if msgs and msgs[-1].json()["seq"] >= st["appliedSeq"] and not msgs[-1].json()["more"]:
                break
            time.sleep(0.02)
        self.assertTrue(msgs, "no change notice arrived")
        dump = self.t.dump(data, stable=False)
        seqs, adds, items = [], collections.Counter(), collections.defaultdict(list)
        last, more = 0, False
        for m in msgs:
            n = m.json()
            self.assertEqual(m.subject, "tower.changes")
            self.assertEqual(sorted(n), ["changes", "more", "prev", "seq", "store"], n)
            self.assertIsInstance(n["seq"], int)
            # The id of the store that made the changes: 16 hex digits, the same for every commit.
            self.assertRegex(n["store"], "^[0-9a-f]{16}$")
            self.assertEqual(n["store"], msgs[0].json()["store"])
            # The commits chain: each notice names the sequence its commit started from; the parts
            # of one commit share seq and prev.
            if more:
                self.assertEqual(n["seq"], seqs[-1], "a commit's parts were interleaved")
            else:
                self.assertEqual(n["prev"], last, "a commit's notice is missing before seq %d" % n["seq"])
                self.assertGreater(n["seq"], n["prev"])
            more, last = n["more"], n["seq"]
            for ch in n["changes"]:
                self.assertEqual(sorted(ch), ["item", "op", "view"], ch)
                self.assertIn(ch["view"], dump, ch)
                self.assertIn(ch["op"], ("add", "update", "remove"), ch)
                self.assertIsInstance(ch["item"], dict)
                self.assertIn("since", ch["item"], ch)
                adds[ch["view"]] += {"add": 1, "remove": -1, "update": 0}[ch["op"]]
                if ch["op"] != "remove":
                    items[ch["view"]].append(ch["item"])
            seqs.append(n["seq"])
        fx.log("test 7: %d notices, seq %d..%d, applied %d" % (len(msgs), seqs[0], seqs[-1], st["appliedSeq"]))
        self.assertFalse(more, "the last commit's final part never came")
        self.assertEqual(seqs, sorted(seqs), "notice seq went backwards: %s" % seqs)
        self.assertGreater(seqs[0], 0)
        self.assertEqual(seqs[-1], st["appliedSeq"])
        for view in dump:
            self.assertEqual(adds[view], len(dump[view]),
                             "%s: adds - removes in the notices vs items in the store" % view)
            for it in dump[view]:
                self.assertIn(it, items[view], "%s: a stored item never announced by a notice" % view)
        self.assertGreater(sum(len(v) for v in dump.values()), 0)
        self.assertEqual(proj.stop(), 0, proj.log())


class T8Config(TowerTest):
    def test_8_configuration_sources(self):
        trace = self.trace("trace.ndjson", 88, fx.scaled(50, 10), clean=True)
        self.t.publish(trace, check=0)
        want, want_st = self.t.offline(self.root, trace)
        url = self.nats.url
        bogus = "nats://127.0.0.1:%d" % fx.free_port()

        def check(name, data, args=(), env=None, absent=()):
            proj = fx.Projector(self.t, data, log_path=self.path(name + ".log"))
            self.addCleanup(proj.close)
            proj.start(args=list(args), env=env, with_flags=False)
            st, _ = self.caught_up(data, proj, timeout=60)
            self.assertEqual(proj.stop(), 0, proj.log())
            self.assertViewsEqual(self.t.dump(data), want, name)
            self.assertEqual(st["events"], want_st["events"], name)
            for a in absent:
                self.assertFalse(os.path.exists(a), "%s: %s should not have been used" % (name, a))

        def ini(name, nats_url, data):
            return write_lines(self.path(name), ["[nats]", "url = " + nats_url, "", "[store]", "data = " + data])

        # 1. environment variables only
        check("env", self.path("d-env"), env={"TOWER_NATS_URL": url, "TOWER_DATA": self.path("d-env")})
        # 2. --config FILE
        cfg = ini("tower.ini", url, self.path("d-file"))
        check("config", self.path("d-file"), args=["--config", cfg])
        # 3. TOWER_CONFIG
        cfg = ini("tower2.ini", url, self.path("d-tcfg"))
        check("TOWER_CONFIG", self.path("d-tcfg"), env={"TOWER_CONFIG": cfg})
        # 4. the environment beats the file, a flag beats the environment
        cfg = ini("tower3.ini", bogus, self.path("d-never"))
        check("env over file", self.path("d-env2"), args=["--config", cfg],
              env={"TOWER_NATS_URL": url, "TOWER_DATA": self.path("d-env2")}, absent=[self.path("d-never")])
        check("flag over env", self.path("d-flag"), args=["--nats", url, "--data", self.path("d-flag")],
              env={"TOWER_NATS_URL": bogus, "TOWER_DATA": self.path("d-never")}, absent=[self.path("d-never")])

    def test_8c_batch_bounds(self):
        """--batch and --batch-behind past their bound, or not a number: usage errors naming the flag."""
        for cmd in ("projector", "rebuild"):
            for flag, value, want in (("--batch-behind", "1000001", "--batch-behind: at most 1000000"),
                                      ("--batch", "99999999", "--batch: at most 1000000"),
                                      ("--batch-behind", "-3", "--batch-behind: \"-3\" is not a positive integer")):
                data = self.path("never-%s" % cmd)
                r = self.t.run(cmd, "--nats", self.nats.url, "--data", data, flag, value, check=2)
                self.assertIn(want, r.err, "%s %s %s" % (cmd, flag, value))
                self.assertFalse(os.path.exists(os.path.join(data, "current")), "no store made")

    def test_8b_stream_replicas_on_a_single_server(self):
        """--stream-replicas 3 against one nats-server: a warning naming both counts, and it still works."""
        warning = re.compile(r"stream TOWER_EVENTS has 1 replica\(s\), not the 3 asked \(--stream-replicas\)")
        data = self.path("store")
        proj = self.projector(args=["--stream-replicas", "3"]).start()
        info = self.wait_stream()
        self.assertEqual(info["config"]["num_replicas"], 1, info["config"])
        deadline = time.monotonic() + fx.tmo(30)
        while not warning.search(proj.log(200)) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertRegex(proj.log(200), warning, "the projector that created the stream warns")
        events = [good_event(i, "SO-R%d" % i) for i in range(10)]
        # publish ensures the streams every time: here the stream exists already (an update)
        for k in range(2):
            f = write_lines(self.path("r%d.ndjson" % k), [json.dumps(e) for e in events[5 * k:5 * k + 5]])
            r = self.t.publish(f, extra=["--stream-replicas", "3"], check=0)
            self.assertRegex(r.err, warning, "publish warns: " + r.describe())
        st, _ = self.caught_up(data, proj)
        self.assertEqual(st["events"], len(events))
        self.assertTrue(proj.alive(), proj.log())
        self.assertEqual(proj.stop(), 0, proj.log())


class T9Security(unittest.TestCase):
    """Connection options of real deployments: user/password, token, TLS with a CA. Secrets are never logged."""

    def setUp(self):
        self.root = fx.make_tempdir("tower-it-sec-")
        self.addCleanup(fx.remove_tempdir, self.root)

    def server(self, name, conf):
        nats = fx.NatsServer(root=os.path.join(self.root, name), extra_conf=conf)
        self.addCleanup(nats.close)
        nats.start()
        return nats, fx.Towerd(TOWERD, nats)

    def trace(self, t):
        path = os.path.join(self.root, "trace.ndjson")
        if not os.path.exists(path):
            t.gen(path, 5, 20, clean=True)
        return path

    def projector_with(self, t, nats, name, args, env=None):
        data = os.path.join(self.root, "data-" + name)
        proj = fx.Projector(t, data, log_path=os.path.join(self.root, name + ".log"))
        self.addCleanup(proj.close)
        proj.start(args=["--nats", nats.url, "--data", data] + args, env=env, with_flags=False)
        deadline = time.monotonic() + fx.tmo(60)
        st = None
        while time.monotonic() < deadline:
            r = t.run("status", "--data", data, "--no-nats", "--json", check=None)
            if r.rc == 0:
                st = r.json()
                if st["appliedSeq"] > 0 and st["lag"] == 0:
                    break
            time.sleep(0.2)
        self.assertEqual(proj.stop(), 0, proj.log())
        # The harness writes each command line into the log; only towerd's own output counts.
        return st, "\n".join(l for l in proj.log().splitlines() if not l.startswith("==== start"))

    def test_9_user_password_and_token(self):
        nats, t = self.server("userpass", 'authorization {\n  user: tower\n  password: "s3cret-pw"\n}\n')
        trace = self.trace(t)
        r = t.publish(trace, check=1)
        self.assertIn("Authentication Violation", r.err + r.out, "a refused connection says why")
        r = t.publish(trace, check=0, extra=["--nats-user", "tower", "--nats-password", "s3cret-pw"])
        self.assertGreater(r.summary["stored"], 0)
        st, log = self.projector_with(t, nats, "userpass", [], env={"TOWER_NATS_USER": "tower",
                                                                    "TOWER_NATS_PASSWORD": "s3cret-pw"})
        self.assertEqual(st["appliedSeq"], r.summary["stored"])
        self.assertNotIn("s3cret-pw", log, "the password must never be logged")

        nats, t = self.server("token", 'authorization {\n  token: "t0ken-xyz"\n}\n')
        t.publish(trace, check=1)
        r = t.publish(trace, check=0, extra=["--nats-token", "t0ken-xyz"])
        st, log = self.projector_with(t, nats, "token", ["--nats-token", "t0ken-xyz"])
        self.assertEqual(st["appliedSeq"], r.summary["stored"])
        self.assertNotIn("t0ken-xyz", log, "the token must never be logged")

    def test_9b_tls_with_ca(self):
        d = os.path.join(self.root, "pki")
        os.makedirs(d)

        def ssl(*args):
            subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
        ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=tower-it-ca")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=127.0.0.1")
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\n")
        ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.pem", "-days", "1", "-extfile", "san.ext")
        conf = 'tls {\n  cert_file: "%s"\n  key_file: "%s"\n}\n' % (os.path.join(d, "server.pem"),
                                                                   os.path.join(d, "server.key"))
        nats, t = self.server("tls", conf)
        trace = self.trace(t)
        url = "tls://127.0.0.1:%d" % nats.port
        # Without the CA the server's certificate is not trusted.
        t.publish(trace, url=url, check=1, timeout=60)
        r = t.publish(trace, url=url, check=0, extra=["--nats-ca", os.path.join(d, "ca.pem")])
        self.assertGreater(r.summary["stored"], 0)
        st, _ = self.projector_with(t, nats, "tls", ["--nats", url, "--nats-ca", os.path.join(d, "ca.pem")])
        self.assertEqual(st["appliedSeq"], r.summary["stored"])


# ---------------------------------------------------------------------------------------------

def main():
    return fx.main(sys.modules[__name__], seed=SEED)


if __name__ == "__main__":
    sys.exit(main())
