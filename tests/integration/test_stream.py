#!/usr/bin/env python3
"""Integration tests of the live stream (websocket /api/v1/stream), API tokens and dead-letter redrive,
against a real nats-server, a real projector and a real `towerd serve`.

usage: test_stream.py TOWERD [TEST_NAME_SUBSTRING...]

A client's snapshot with the deltas after it must equal the views as the REST API gives them; a client
that stops reading is dropped to a resync while another keeps receiving; a missed commit (a gap in the
notice chain) and a reconnect both end in snapshots that equal the views; the notices of another store (a
replica's projector on the same bus) are not followed. Every route enforces its role.
Coalescing: a change after a quiet spell leaves at once; later ones leave together, one frame per interval.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "dead_letters", "sla_breaches",
         "at_risk", "mismatches"]


class Mirror:
    """A client's picture of the views: snapshots, then deltas applied in order, checked as they come."""

    def __init__(self, port, views=None, warehouse=None, rcvbuf=None, headers=None, path="/api/v1/stream"):
        self.ws = fx.WsClient(port, path=path, rcvbuf=rcvbuf, headers=headers)
        self.lock = threading.Lock()
        self.items, self.snap_seq, self.last_seq, self.counts = {}, {}, {}, {}
        self.resyncs, self.errors, self.problems, self.msgs = [], [], [], 0
        self.snapshots = 0
        self.summary_seq = 0
        self.reading = threading.Event()
        self.reading.set()
        self.closed = False
        sub = {"type": "subscribe"}
        if views is not None:
            sub["views"] = views
        if warehouse is not None:
            sub["warehouse"] = warehouse
        self.ws.send(sub)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.closed:
            self.reading.wait()
            try:
                msgs = self.ws.recv(timeout=0.5)
            except (TimeoutError, OSError, fx.WsClosed) as e:
                if isinstance(e, (fx.WsClosed,)) or self.closed:
                    return
                continue
            with self.lock:
                for m in msgs:
                    self.apply(m)

    def apply(self, m):
        self.msgs += 1
        t = m.get("type")
        if t == "snapshot":
            v = m["view"]
            self.items[v] = {it["key"]: it for it in m["items"]}
            if len(self.items[v]) != len(m["items"]):
                self.problems.append("%s: a snapshot lists a key twice" % v)
            self.snap_seq[v] = self.last_seq[v] = m["seq"]
            self.counts[v] = m["count"]
            self.snapshots += 1
        elif t == "delta":
            v, key = m["view"], m["item"]["key"]
            if v not in self.items:
                self.problems.append("delta before the snapshot of %s: %s" % (v, m))
                return
            if m["seq"] <= self.snap_seq[v] or m["seq"] < self.last_seq[v]:
                self.problems.append("%s: delta seq %d after snapshot %d / delta %d" % (v, m["seq"], self.snap_seq[v],
                                                                                         self.last_seq[v]))
            self.last_seq[v] = m["seq"]
            have = key in self.items[v]
            if (m["op"] == "add") == have:
                self.problems.append("%s: %s of %s which is %s" % (v, m["op"], key, "there" if have else "absent"))
            if m["op"] == "remove":
                self.items[v].pop(key, None)
            else:
                self.items[v][key] = m["item"]
        elif t == "summary":
            if m["seq"] < self.summary_seq:
                self.problems.append("summary seq went back: %d after %d" % (m["seq"], self.summary_seq))
            self.summary_seq = m["seq"]
            for k in ("now", "views"):
                if k not in m:
                    self.problems.append("summary without %s: %s" % (k, m))
        elif t == "resync":
            self.resyncs.append(m)
        elif t == "error":
            self.errors.append(m["error"])
        else:
            self.problems.append("unknown message %s" % m)

    def snapshot_of(self, view):
        with self.lock:
            return dict(self.items.get(view, {}))

    def close(self):
        self.closed = True
        self.reading.set()
        self.ws.close()
        self.thread.join(timeout=5)


class StreamTest(unittest.TestCase):
    serve_args = ()
    lws = False  # True: the clients use the libwebsockets listener (--stream-listen; test_stream_lws.py)

    def setUp(self):
        self.root = fx.make_tempdir("tower-it-stream-")
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
        self.serve = None
        self.mirrors = []
        fx.wait_stream(self.nc)  # some tests publish straight to JetStream

    def tearDown(self):
        for m in self.mirrors:
            m.close()

    def start_serve(self, *args, expect_rc=None):
        self.port = fx.free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.serve_log = os.path.join(self.root, "serve-%d.log" % self.port)
        log = open(self.serve_log, "ab")
        argv = [TOWERD, "serve", "--data", self.data, "--http", "127.0.0.1:%d" % self.port,
                "--nats", self.nats.url, "--web", self.root, "--ws-snapshot-max", "100000"] + list(args)
        self.ws_port = self.port  # where the clients connect: civetweb's port, or the --stream-listen one
        if self.lws:
            self.ws_port = fx.free_port()
            argv += ["--stream-listen", "127.0.0.1:%d" % self.ws_port]
        self.serve = fx.spawn(argv, stdout=log, stderr=log)
        log.close()
        self.addCleanup(self.stop_serve, self.serve)
        # Ready, not only alive: /readyz answers 200 once the store is readable (the projector started in
        # setUp creates it, later than that on a busy machine) and NATS is connected; a client
        # subscribing before would get no snapshot.
        deadline = time.monotonic() + fx.tmo(30)
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                st, body = self.request("GET", "/readyz")
                if st == 200:
                    return
                last = "%s %s" % (st, body)
            except (OSError, ValueError) as e:
                last = repr(e)
            time.sleep(0.1)
        self.fail("towerd serve was not ready (/readyz): %s\n%s" % (last, fx.tail(self.serve_log)))

    def stop_serve(self, p):
        if p.poll() is None:
            p.terminate()
            self.assertEqual(p.wait(timeout=fx.tmo(20)), 0, "serve exits 0 on SIGTERM:\n" + fx.tail(self.serve_log))
        fx.reap(p)
        with open(self.serve_log, errors="replace") as f:
            log = f.read()
        self.assertNotIn("runtime error", log, "UBSan report in the server's log")
        self.assertNotIn("AddressSanitizer", log)

    def request(self, method, path, data=None, token=None):
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=fx.tmo(30)) as r:
                body = r.read().decode()
                return r.status, (json.loads(body) if body.strip().startswith(("{", "[")) else body)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def mirror(self, **kw):
        m = Mirror(self.ws_port, **kw)
        self.mirrors.append(m)
        return m

    def publish_trace(self, name, seed, orders, clean=False):
        path = self.t.gen(os.path.join(self.root, name), seed, orders, clean=clean)
        self.t.publish(path)
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        return path

    def api_items(self, view, warehouse=None):
        items, cursor = {}, None
        while True:
            q = "/api/v1/views/%s?limit=1000" % view
            if warehouse:
                q += "&warehouse=" + warehouse
            if cursor:
                q += "&cursor=" + cursor
            st, page = self.request("GET", q)
            self.assertEqual(st, 200, page)
            for it in page["items"]:
                it.pop("ageSeconds", None)
                it.pop("state", None)
                self.assertNotIn(it["key"], items, "a key twice in the API's pages")
                items[it["key"]] = it
            cursor = page["nextCursor"]
            if not cursor:
                return items

    def wait_settled(self, mirrors, applied, quiet=1.0):
        """Until every mirror has a summary at the applied sequence and nothing arrived for `quiet` s."""
        deadline = time.monotonic() + fx.tmo(60)
        last = [-1] * len(mirrors)
        still = time.monotonic()
        while time.monotonic() < deadline:
            now = [m.msgs for m in mirrors]
            if now != last:
                last, still = now, time.monotonic()
            elif (time.monotonic() - still > fx.tmo(quiet)
                  and all(m.summary_seq >= applied for m in mirrors)):
                return
            time.sleep(0.1)
        self.fail("the clients did not settle at sequence %d: %s" % (applied, [(m.summary_seq, m.msgs)
                                                                                 for m in mirrors]))

    def assertMirrors(self, m, views, warehouse=None):
        self.assertEqual(m.problems, [], "protocol problems seen by the client")
        for v in views:
            want = self.api_items(v, warehouse)
            got = m.snapshot_of(v)
            for it in got.values():
                it.pop("ageSeconds", None)
                it.pop("state", None)
            self.assertEqual(sorted(got), sorted(want), "%s%s: the client's keys differ from the API's"
                             % (v, " @" + warehouse if warehouse else ""))
            self.assertEqual(got, want, "%s: the client's items differ from the API's" % v)

    def applied(self):
        st, s = self.request("GET", "/api/v1/summary")
        self.assertEqual(st, 200, s)
        return s["appliedSeq"]


class T1SnapshotAndDeltas(StreamTest):
    def test_1_snapshot_then_deltas_equal_the_views(self):
        self.publish_trace("a.ndjson", 11, fx.scaled(120, 30))
        self.start_serve()
        a = self.mirror()
        b = self.mirror(views=["blocked", "awaiting_release", "pending_route"], warehouse="dc-1")
        self.wait_settled([a, b], 0)
        self.assertEqual(sorted(a.items), sorted(VIEWS), "a snapshot of every view")
        self.assertEqual(sorted(b.items), ["awaiting_release", "blocked", "pending_route"])
        self.assertMirrors(a, VIEWS)
        self.assertMirrors(b, list(b.items), "dc-1")
        # A snapshot's count is the REST listing's count with the same filter: the filtered count.
        for m, wh in ((a, None), (b, "dc-1")):
            for v in m.items:
                q = "/api/v1/views/%s?limit=1" % v + ("&warehouse=" + wh if wh else "")
                st, page = self.request("GET", q)
                self.assertEqual(st, 200, page)
                self.assertEqual(m.counts[v], page["count"], "snapshot count of %s @%s vs %s" % (v, wh, q))
                self.assertEqual(page["count"], len(self.api_items(v, wh)), "count of %s @%s" % (v, wh))
        before = a.msgs
        # More events: the deltas carry the views forward.
        self.publish_trace("b.ndjson", 12, fx.scaled(200, 40))
        self.wait_settled([a, b], self.applied())
        deltas = a.msgs - before
        fx.log("test 1: %d messages after the snapshots" % deltas)
        self.assertGreater(deltas, 10)
        self.assertMirrors(a, VIEWS)
        self.assertMirrors(b, list(b.items), "dc-1")
        for v in b.items:
            for it in b.items[v].values():
                self.assertEqual(it.get("warehouseId"), "dc-1", "the warehouse filter let %s through" % it)
        self.assertEqual(a.resyncs, [], "no resync without a reason")
        # A client asks for a fresh snapshot of one view.
        # (The count is taken before asking: the answer may arrive before send() returns.)
        n = a.snapshots
        a.ws.send({"type": "resync", "view": "blocked"})
        deadline = time.monotonic() + fx.tmo(10)
        while a.snapshots == n and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(a.snapshots, n, "no snapshot after a resync request")
        self.assertMirrors(a, ["blocked"])
        # Bad client messages get an error naming the field; the connection stays usable.
        a.ws.send_frame(1, b"{not json")
        a.ws.send({"type": "subscribe", "views": ["blocked", "nope"]})
        a.ws.send({"type": "dance"})
        a.ws.send_frame(1, b'{"type":"subscribe","warehouse":"' + b"x" * 5000 + b'"}')
        a.ws.send_frame(2, b"\x00\x01")
        deadline = time.monotonic() + fx.tmo(10)
        while len(a.errors) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        codes = [(e["code"], e.get("field")) for e in a.errors]
        self.assertEqual(codes, [("INVALID_JSON", None), ("UNKNOWN_VIEW", "views[1]"), ("UNKNOWN_TYPE", "type"),
                                 ("TOO_LARGE", None), ("INVALID_FRAME", None)], a.errors)
        self.publish_trace("c.ndjson", 13, fx.scaled(40, 10))
        self.wait_settled([a], self.applied())
        self.assertMirrors(a, VIEWS)
        # A plain GET of the stream is told to upgrade.
        st, r = self.request("GET", "/api/v1/stream")
        self.assertEqual(st, 400, r)
        self.assertEqual(r["error"]["code"], "UPGRADE_REQUIRED")
        if self.lws:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/api/v1/stream" % self.ws_port, timeout=fx.tmo(30))
                self.fail("a plain GET of the stream listener was answered 200")
            except urllib.error.HTTPError as e:
                self.assertEqual((e.code, json.loads(e.read().decode())["error"]["code"]), (400, "UPGRADE_REQUIRED"))
        st, m = self.request("GET", "/metrics")
        self.assertIn("tower_ws_clients 2\n", m)


class T2SlowClient(StreamTest):
    def test_2_a_client_that_stops_reading_is_dropped_to_a_resync(self):
        self.publish_trace("a.ndjson", 21, fx.scaled(60, 20))
        # The write timeout (--request-timeout) must outlast the pause, or the connection is cut.
        self.start_serve("--ws-queue", "3000", "--request-timeout", "120s")
        fast = self.mirror()
        slow = self.mirror(rcvbuf=4096)
        self.wait_settled([fast, slow], 0)
        slow.reading.clear()  # stops reading: its socket fills, then its queue
        time.sleep(0.6)
        def metric(name):
            st, m = self.request("GET", "/metrics")
            return int(m.split("\n%s " % name)[1].split("\n")[0])

        # How much data it takes depends on the socket buffers (the kernel's, under the server's cap)
        # and on when the client's sender last took its queue: publish until the queue overflows.
        drops, rounds = 0, 0
        while not drops and rounds < 4:
            path = self.t.gen(os.path.join(self.root, "b%d.ndjson" % rounds), 22 + 100 * rounds, fx.scaled(1200, 600))
            rounds += 1
            for chunk in fx.split_file(path, 4, self.root, "b%d" % rounds):
                self.t.publish(chunk)
                drops = metric("tower_ws_drops_total")
                if drops:
                    break
            fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
            deadline = time.monotonic() + fx.tmo(5)
            while not drops and time.monotonic() < deadline:
                drops = metric("tower_ws_drops_total")
                time.sleep(0.2)
        fx.log("test 2: the slow client dropped after %d trace(s); ws clients %d, frames %d" % (
            rounds, metric("tower_ws_clients"), metric("tower_ws_frames_total")))
        self.assertGreaterEqual(drops, 1, "the client that stopped reading was never dropped:\n" + fx.tail(self.serve_log))
        # The other client kept receiving all along.
        self.publish_trace("c.ndjson", 23, fx.scaled(30, 10))
        self.wait_settled([fast], self.applied())
        self.assertMirrors(fast, VIEWS)
        # It was never dropped for being slow. (On a loaded machine NATS may cut the server's
        # connection as a slow consumer of notices; the resync that follows is right, so allowed.)
        self.assertEqual([r for r in fast.resyncs if "slow client" in r["reason"]], [], fast.resyncs)
        if fast.resyncs:
            fx.log("test 2: the reading client was resynced: %s" % fast.resyncs)
        # The slow one reads again: it is told to resync, gets snapshots, and ends equal to the views.
        slow.reading.set()
        self.wait_settled([slow], self.applied())
        self.assertTrue(slow.resyncs, "the dropped client was not told to resync")
        # Its resync says why: it was too slow; unless NATS cut the server's notices meanwhile (above), when
        # every client is told to resync for the missed notices, this one too (its drop is counted above).
        reasons = [r["reason"] for r in slow.resyncs]
        self.assertTrue(any("slow client" in r for r in reasons) or
                        (fast.resyncs and any("no change notice" in r for r in reasons)), reasons)
        self.assertMirrors(slow, VIEWS)


class T3Gaps(StreamTest):
    def test_3_a_missed_commit_and_a_reconnect_resync(self):
        self.publish_trace("a.ndjson", 31, fx.scaled(60, 20))
        self.start_serve()
        a = self.mirror()
        self.wait_settled([a], 0)
        # A notice whose prev is not the last commit seen: the server missed one and resyncs everyone.
        applied = self.applied()
        self.nc.publish("tower.changes", json.dumps({"seq": applied + 1000, "prev": applied + 999,
                                                     "changes": [], "more": False}).encode())
        self.nc.flush()
        deadline = time.monotonic() + fx.tmo(10)
        while not a.resyncs and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(a.resyncs, "a gap in the notice chain did not resync the client")
        self.assertIn("missed", a.resyncs[0]["reason"])
        self.wait_settled([a], 0)
        self.assertMirrors(a, VIEWS)
        # A client that was away while events arrived reconnects: its new snapshots are current.
        a.close()
        self.mirrors.remove(a)
        self.publish_trace("b.ndjson", 32, fx.scaled(80, 20))
        b = self.mirror()
        self.wait_settled([b], self.applied())
        self.assertMirrors(b, VIEWS)
        # Deltas keep flowing after the fake far-ahead notice (the server trusts the store's sequence).
        self.publish_trace("c.ndjson", 33, fx.scaled(40, 10))
        self.wait_settled([b], self.applied())
        self.assertMirrors(b, VIEWS)


class T7ForeignNotices(StreamTest):
    def test_7_notices_of_another_store_are_not_followed(self):
        # Replicas that share one NATS each project into their own store, and every projector notifies on
        # tower.changes. A server follows only its own store's notices: one of another store far ahead (a
        # replica further on), even chained to the last commit seen, must neither resync the clients nor
        # make the server take this store's next commits for seen (their deltas would never be sent).
        self.publish_trace("a.ndjson", 41, fx.scaled(40, 10))
        self.start_serve()
        a = self.mirror()
        applied = self.applied()
        self.wait_settled([a], applied)
        # Another store's id, then "store" fields that are no id at all (hostile or broken publishers): none of
        # them is followed.
        for store in ("00000000deadbeef", 12345, "x" * (512 << 10), "0000000zdeadbeef", "00000000DEADBEEF",
                      {"id": "00000000deadbeef"}, None):
            self.nc.publish("tower.changes", json.dumps({"seq": applied + 100000, "prev": applied, "changes": [],
                                                         "more": False, "store": store}).encode())
        self.nc.flush()
        self.publish_trace("b.ndjson", 42, fx.scaled(40, 10))
        self.wait_settled([a], self.applied())
        self.assertEqual(a.resyncs, [], "another store's notice resynced the client")
        self.assertMirrors(a, VIEWS)
        with open(self.serve_log, errors="replace") as f:
            self.assertIn("ignoring the change notices of store 00000000deadbeef", f.read())


class T4TokensAndRedrive(StreamTest):
    def test_4_roles_limits_and_redrive(self):
        tokens = {}
        lines = []
        for name, role in (("wall", "viewer"), ("ops", "operator"), ("erp", "ingest")):
            r = subprocess.run([TOWERD, "token", name, role], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            tokens[role] = r.stdout.strip()
            line = r.stderr.strip().splitlines()[-1]
            self.assertNotIn(tokens[role], r.stderr, "the tokens file line holds the token itself")
            lines.append(line)
        tf = os.path.join(self.root, "tokens")
        with open(tf, "w") as f:
            f.write("# API tokens\n" + "\n".join(lines) + "\n")
        # A bad tokens file is refused with its line.
        bad = os.path.join(self.root, "bad-tokens")
        with open(bad, "w") as f:
            f.write(lines[0] + "\nops admin 00\n")
        r = subprocess.run([TOWERD, "serve", "--data", self.data, "--http", "127.0.0.1:%d" % fx.free_port(),
                            "--no-nats", "--tokens", bad], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn(bad + ":2:", r.stderr)
        # Beyond loopback without tokens: refused.
        r = subprocess.run([TOWERD, "serve", "--data", self.data, "--http", "0.0.0.0:%d" % fx.free_port(),
                            "--no-nats"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("without API tokens", r.stderr)

        # A dead letter: an event with a bad order id, straight onto the stream (as a system would).
        self.nc.js_publish("tower.evt.erp.orderApproved", fx.pb_event("fix-1", 1795766400, 0, "erp", "O 1", "dc-1"))
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        self.start_serve("--tokens", tf, "--ws-max-clients", "2", "--stream-max-clients", "2")
        V, O, I = tokens["viewer"], tokens["operator"], tokens["ingest"]
        st, r = self.request("GET", "/api/v1/summary")
        self.assertEqual((st, r["error"]["code"]), (401, "UNAUTHORIZED"), r)
        st, r = self.request("GET", "/api/v1/summary", token="twr_" + "0" * 48)
        self.assertEqual(st, 401, r)
        for role, tok in (("viewer", V), ("operator", O)):
            st, r = self.request("GET", "/api/v1/summary", token=tok)
            self.assertEqual(st, 200, (role, r))
        st, r = self.request("GET", "/api/v1/summary", token=I)
        self.assertEqual((st, r["error"]["code"]), (403, "FORBIDDEN"), r)
        body = json.dumps({"eventId": "g-1", "occurredAt": "2026-11-27T08:00:00Z", "source": {"system": "erp"},
                           "orderId": "G1", "orderApproved": {"warehouseId": "dc-1"}}).encode()
        st, r = self.request("POST", "/api/v1/events", body, token=V)
        self.assertEqual(st, 403, r)
        st, r = self.request("POST", "/api/v1/events", body, token=I)
        self.assertEqual(st, 200, r)
        st, dl = self.request("GET", "/api/v1/dead-letters", token=V)
        self.assertEqual(st, 200, dl)
        self.assertEqual(len(dl["items"]), 1, dl)
        seq = dl["items"][0]["seq"]
        self.assertEqual(dl["items"][0]["code"], "INVALID_ID")
        path = "/api/v1/dead-letters/%d/redrive" % seq
        st, r = self.request("POST", path, b"", token=V)
        self.assertEqual(st, 403, r)
        st, r = self.request("POST", path, b"", token=I)
        self.assertEqual(st, 403, r)
        # As stored it is still invalid: 400 naming the field.
        st, r = self.request("POST", path, b"", token=O)
        self.assertEqual(st, 400, r)
        self.assertEqual((r["error"]["code"], r["error"]["field"]), ("INVALID_ID", "orderId"), r)
        st, r = self.request("POST", "/api/v1/dead-letters/999999/redrive", b"", token=O)
        self.assertEqual(st, 404, r)
        st, r = self.request("GET", path, token=O)
        self.assertEqual(st, 405, r)
        fixed = body.replace(b'"g-1"', b'"fix-1"').replace(b'"G1"', b'"O1"')
        st, r = self.request("POST", path, b'{"eventId":', token=O)
        self.assertEqual(st, 400, r)
        st, r = self.request("POST", path, fixed, token=O)
        self.assertEqual(st, 200, r)
        self.assertEqual((r["deadLetter"], r["eventId"], r["result"]), (seq, "fix-1", "accepted"), r)
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        st, v = self.request("GET", "/api/v1/views/awaiting_release", token=V)
        self.assertEqual(sorted(i["orderId"] for i in v["items"]), ["G1", "O1"], v)
        st, r = self.request("POST", path, fixed, token=O)
        self.assertEqual((st, r["result"]), (200, "duplicate"), r)
        # The live stream needs a token too (browsers pass it as ?token=); the connection limit holds.
        with self.assertRaises(fx.WsClosed):
            fx.WsClient(self.ws_port)
        with self.assertRaises(fx.WsClosed):
            fx.WsClient(self.ws_port, path="/api/v1/stream?token=" + I)
        a = self.mirror(path="/api/v1/stream?token=" + V)
        b = self.mirror(headers={"Authorization": "Bearer " + O})
        self.wait_settled([a, b], 0)
        self.assertEqual(a.counts["awaiting_release"], 2)
        with self.assertRaises(fx.WsClosed):
            fx.WsClient(self.ws_port, path="/api/v1/stream?token=" + V)
        # The refusal is counted when the server has judged the upgrade, which the client may not wait for (a
        # slow server under ASan: 2 of 3 counted at the first scrape once): scrape until it is there.
        deadline = time.monotonic() + fx.tmo(10)
        while True:
            st, m = self.request("GET", "/metrics")
            self.assertEqual(st, 200, "metrics stay open for Prometheus")
            if "tower_ws_refused_total 3\n" in m or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertIn("tower_ws_refused_total 3\n", m)
        self.assertIn('tower_http_requests_total{route="redrive",code="403"} 2', m)
        # No token in the server's log.
        with open(self.serve_log) as f:
            log = f.read()
        for tok in tokens.values():
            self.assertNotIn(tok, log)
            self.assertNotIn(tok[4:], log)


class T6EmptyTurns(StreamTest):
    def test_6_a_client_whose_changes_all_filter_out_still_gets_summaries(self):
        """A sending turn can compose no frame at all: every change taken is for another warehouse than the
        client's filter (or one its snapshot already covers). The client must still get what comes next: the
        summaries every client gets (a libwebsockets client was left marked busy and never woken again)."""
        self.publish_trace("a.ndjson", 31, fx.scaled(40, 10))
        self.start_serve()
        other = self.mirror(warehouse="dc-none")  # no item is at this warehouse: its deltas all filter out
        every = self.mirror()
        self.wait_settled([other, every], 0)
        path = self.t.gen(os.path.join(self.root, "b.ndjson"), 32, fx.scaled(300, 100))
        for chunk in fx.split_file(path, 4, self.root, "b"):
            self.t.publish(chunk)
            time.sleep(0.3)  # several turns of changes, between the summaries (one a second at most)
        fx.wait_caught_up(self.t, self.data, self.nc, self.proj)
        self.publish_trace("c.ndjson", 33, fx.scaled(20, 5))
        self.wait_settled([other, every], self.applied())
        self.assertMirrors(every, VIEWS)
        self.assertEqual(other.problems, [], "protocol problems seen by the filtered client")


class T5Coalescing(StreamTest):
    def test_5_a_lone_change_leaves_at_once_then_one_frame_per_interval(self):
        """--ws-coalesce bounds the frames a client gets (at most one per interval) without holding a
        change that comes after a quiet spell: that one leaves at once (the leading edge). The interval
        is long (5 s) so that the two cases are seconds apart, far from any machine's noise."""
        interval = 5.0
        self.start_serve("--ws-coalesce", "%ds" % interval)
        ws = fx.WsClient(self.ws_port)
        self.addCleanup(ws.close)
        ws.send({"type": "subscribe", "views": ["awaiting_release"]})
        frames = []  # (receive time, messages)

        def until(pred, what, timeout):
            deadline = time.monotonic() + fx.tmo(timeout)
            while time.monotonic() < deadline:
                try:
                    msgs = ws.recv(timeout=0.5)
                except (TimeoutError, socket.timeout):
                    continue
                frames.append((time.monotonic(), msgs))
                if pred(msgs):
                    return frames[-1][0]
            self.fail("no %s within %.0f s; frames: %s" % (what, fx.tmo(timeout), [m for _, m in frames]))

        until(lambda ms: any(m.get("type") == "snapshot" for m in ms), "snapshot", 20)
        time.sleep(interval + 0.5)  # a quiet spell longer than the interval

        def post(order, k):
            ev = {"eventId": "co-%s-%d" % (order, k), "occurredAt": "2026-11-03T06:00:00Z",
                  "source": {"system": "erp"}, "orderId": order, "orderApproved": {"warehouseId": "dc-1"}}
            st, r = self.request("POST", "/api/v1/events", json.dumps(ev).encode())
            self.assertEqual(st, 200, r)

        def delta_of(order):
            return lambda ms: any(m.get("type") == "delta" and m["item"].get("orderId") == order for m in ms)

        t0 = time.monotonic()
        post("CO-A", 1)
        t1 = until(lambda ms: True, "frame after CO-A", 30)
        fx.log("test 5: the first frame after the quiet spell %.0f ms after the change" % ((t1 - t0) * 1000))
        self.assertLess(t1 - t0, interval * 0.6, "a change after a quiet spell waited for the coalescing interval")
        # Usually that frame holds CO-A's delta; it may hold only a summary that got there first.
        n = len(frames)
        post("CO-B", 2)
        post("CO-C", 3)
        tc = until(delta_of("CO-C"), "delta of CO-C", 30)
        later = frames[n:]
        fx.log("test 5: CO-C %.0f ms after the first frame, %d frame(s)" % ((tc - t1) * 1000, len(later)))
        self.assertTrue(any(delta_of("CO-A")(ms) for _, ms in frames[n - 1:]), "the delta of CO-A never came")
        self.assertEqual([i for i, (_, ms) in enumerate(later) if delta_of("CO-B")(ms)], [len(later) - 1],
                         "CO-B and CO-C leave together, in one frame")
        for (a, _), (b, _) in zip(frames[n - 1:], frames[n:]):
            self.assertGreater(b - a, interval * 0.8, "two frames within one coalescing interval")


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
