#!/usr/bin/env python3
"""Hostile input against the running tower: no request may crash or hang it, and loopback mode has no
open doors.

usage: test_hardening.py TOWERD [TEST_NAME_SUBSTRING...]

- Deep JSON nesting (100,000 '[', and as much as each limit lets through to the parser) sent to every
  entry point of `towerd up` (ingest as an array and as an NDJSON line, redrive of a real dead letter,
  a live-stream message): each gets a 4xx or an error message naming the limit, and the process
  still answers.
- Against `towerd serve` with a real nats-server: listen lists that leave loopback without tokens are
  refused; in loopback mode a foreign Host (DNS rebinding), a foreign Origin on writes and websocket
  upgrades, and a body a browser could send without a preflight (text/plain, a form, no type) are
  refused, and nothing is stored; Expect: 100-continue gets a proper final answer; a body over the event
  limit stores nothing; two Content-Length headers are refused; websocket frames RFC 6455 forbids end
  the connection with 1002; a refused upgrade is answered 401/403 over HTTP; occurredAt outside the
  years 2000-2099, or too far ahead of the clock, is rejected; every answer carries the security
  headers; an error message is valid JSON even for a path that is not UTF-8.
Python 3 standard library only.
"""

import datetime
import hashlib
import http.client as httpclient
import json
import os
import re
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
D = None


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "%s %r" % (self.status, self.body[:300])


def http(port, path, method="GET", body=None, headers=None, timeout=15):
    """One request on a new connection (http.client sends Host 127.0.0.1:PORT unless told)."""
    c = httpclient.HTTPConnection("127.0.0.1", port, timeout=fx.tmo(timeout))
    try:
        hdrs = dict(headers or {})
        skip_host = any(k.lower() == "host" for k in hdrs)
        c.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        if body is not None and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        return Resp(r.status, r.headers, r.read())
    finally:
        c.close()


def raw(port, data, timeout=10):
    """Bytes as they are; everything answered until the server closes (or the timeout)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=fx.tmo(timeout)) as s:
        try:
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out


def event(eid, when=None, order="SO-H-1", **payload):
    e = {"eventId": eid, "occurredAt": when or "2026-11-27T08:15:00Z", "source": {"system": "erp"},
         "orderId": order}
    e.update(payload or {"orderApproved": {"warehouseId": "dc-1"}})
    return e


def ndjson(*events):
    return "".join(json.dumps(e) + "\n" for e in events).encode()


JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


def ws_close_code(ws, timeout=10):
    """Read frames until the server's close frame: its status code (None if the socket just ended)."""
    ws.sock.settimeout(fx.tmo(timeout))
    while True:
        f = ws._frame_in_buf()
        if f is None:
            try:
                chunk = ws.sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                return None
            if not chunk:
                return None
            ws.buf += chunk
            continue
        op, data = f
        if op == 8:
            return int.from_bytes(data[:2], "big") if len(data) >= 2 else None


def assert_alive(tc, port, proc_alive):
    tc.assertTrue(proc_alive(), "the process died")
    tc.assertEqual(http(port, "/healthz").status, 200)


class Fixture:
    pass


def setUpModule():
    global D
    D = Fixture()
    D.t = fx.Towerd(TOWERD)
    D.root = fx.make_tempdir("tower-it-hard-")
    D.t.cwd = D.root
    D.nats = fx.NatsServer(root=os.path.join(D.root, "nats")).start()
    D.client = fx.NatsClient(D.nats.port)
    D.data = os.path.join(D.root, "data")
    trace = os.path.join(D.root, "trace.ndjson")
    D.t.gen(trace, 3, 30)
    D.t.fold(D.data, trace)  # a store to serve (what is posted goes to NATS; no projector folds it here)
    D.web = os.path.join(SRC, "web")
    D.serve = fx.TowerServe(D.t, D.data, os.path.join(D.root, "serve.log"), args=["--nats", D.nats.url])
    D.serve.cwd = D.root
    D.serve.start()
    # the dashboard's files, for the static-file headers
    D.serve_web = fx.TowerServe(D.t, D.data, os.path.join(D.root, "serve-web.log"), args=["--no-nats"])
    D.serve_web.start()
    os.makedirs(os.path.join(D.root, "web-probe"), exist_ok=True)


def tearDownModule():
    for s in ("serve", "serve_web"):
        if getattr(D, s, None):
            getattr(D, s).stop()
    if getattr(D, "client", None):
        D.client.close()
    if getattr(D, "nats", None):
        D.nats.close()
    fx.remove_tempdir(D.root)


def last_seq():
    info = D.client.stream_info("TOWER_EVENTS")
    return info["state"]["last_seq"] if info else 0


class T0DeepNestingUp(unittest.TestCase):
    """`towerd up` (its own nats-server, projector, SLA engine, server) against deep nesting everywhere."""

    def test_deep_nesting_every_entry_point(self):
        root = fx.make_tempdir("tower-it-hard-up-")
        self.addCleanup(fx.remove_tempdir, root)
        up = fx.Up(D.t, root, os.path.join(root, "data"), ["--no-sim", "--web", D.web])
        self.addCleanup(up.close)
        up.start()
        port, log = up.port, up.logs
        # the store exists once the projector made it
        deadline = time.monotonic() + fx.tmo(60)
        while True:
            self.assertIsNone(up.proc.poll(), "towerd up exited:\n" + log())
            try:
                if http(port, "/api/v1/summary", timeout=2).status == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, "towerd up did not answer:\n" + log())
            time.sleep(0.1)
        alive = lambda: up.proc.poll() is None  # noqa: E731

        # a real dead letter to redrive: a conflicting duplicate (same eventId, other content)
        r = http(port, "/api/v1/events", "POST", ndjson(event("deep-1")), NDJSON)
        self.assertEqual(r.status, 200, r)
        r = http(port, "/api/v1/events", "POST",
                 ndjson(event("deep-1", orderApproved={"warehouseId": "dc-2"})), NDJSON)
        self.assertEqual(r.status, 200, r)
        deadline = time.monotonic() + fx.tmo(30)
        while True:
            items = http(port, "/api/v1/dead-letters").json()["items"]
            if items:
                break
            self.assertLess(time.monotonic(), deadline, "no dead letter:\n" + log())
            time.sleep(0.1)
        dl = items[0]["seq"]

        probes = [
            ("ingest, an array of 100,000 '['", "/api/v1/events", b"[" * 100000, 400, "nests deeper"),
            ("ingest, an event line nesting 60,000 deep", "/api/v1/events",
             b'{"eventId":"deep-2","x":' + b"[" * 60000 + b"\n", 400, "nests deeper"),
            ("ingest, one line of 100,000 '{\"a\":'", "/api/v1/events", b'{"a":' * 100000, 400, None),
            ("redrive, 60,000 '[' (within its 64 KiB)", "/api/v1/dead-letters/%d/redrive" % dl, b"[" * 60000, 400,
             "nests deeper"),
            ("redrive, 100,000 '['", "/api/v1/dead-letters/%d/redrive" % dl, b"[" * 100000, 413, None),
        ]
        for what, path, body, want, text in probes:
            r = http(port, path, "POST", body, JSON, timeout=30)
            fx.log("%s: %s %s" % (what, r.status, r.body[:160]))
            self.assertEqual(r.status, want, "%s: %r" % (what, r))
            if text:
                j = r.json()
                err = j["error"] if "error" in j else j["results"][0]["error"]
                self.assertIn(text, err["message"], what)
            assert_alive(self, port, alive)

        for n, code in ((4000, "TOO_DEEP"), (100000, "TOO_LARGE")):
            ws = fx.WsClient(port, timeout=fx.tmo(10))
            ws.send_frame(1, b"[" * n)
            msgs = []
            deadline = time.monotonic() + fx.tmo(10)
            while not any(m.get("type") == "error" for m in msgs) and time.monotonic() < deadline:
                msgs += ws.recv(timeout=fx.tmo(10))
            err = [m for m in msgs if m.get("type") == "error"]
            self.assertTrue(err, msgs)
            self.assertEqual(err[0]["error"]["code"], code, err)
            fx.log("websocket, %d '[': %s" % (n, err[0]["error"]))
            # the connection still works
            ws.send({"type": "subscribe", "views": ["blocked"]})
            got = []
            while not any(m.get("type") == "snapshot" for m in got):
                got += ws.recv(timeout=fx.tmo(10))
            ws.close()
            assert_alive(self, port, alive)
        self.assertEqual(http(port, "/api/v1/summary").status, 200)
        self.assertEqual(up.stop(), 0, log())


class T1Listen(unittest.TestCase):
    def run_serve(self, listen, *extra):
        return D.t.run("serve", "--data", D.data, "--no-nats", "--http", listen, *extra, timeout=30, check=None)

    def test_listen_lists_that_leave_loopback_are_refused(self):
        p1, p2 = fx.free_port(), fx.free_port()
        for listen in ("127.0.0.1:%d,0.0.0.0:%d" % (p1, p2), "[::1]:%d,[::]:%d" % (p1, p2), "%d" % p1, "+%d" % p1,
                       "127.0.0.1:%d,%d" % (p1, p2), "[::ffff:10.0.0.1]:%d" % p1):
            r = self.run_serve(listen)
            self.assertEqual(r.rc, 2, "%s: %s" % (listen, r.describe()))
            self.assertIn("refusing to listen", r.err, listen)
        r = self.run_serve("127.0.0.1:%ds" % p1)
        self.assertEqual(r.rc, 2, r.describe())
        self.assertIn("TLS", r.err)

    def test_every_loopback_address_of_a_list_serves(self):
        p1, p2 = fx.free_port(), fx.free_port()
        logp = os.path.join(D.root, "serve-list.log")
        with open(logp, "wb") as out:
            p = fx.spawn([TOWERD, "serve", "--data", D.data, "--no-nats", "--http", "127.0.0.1:%d,localhost:%d" % (p1, p2)],
                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=D.t.env())
        try:
            deadline = time.monotonic() + fx.tmo(20)
            while True:
                try:
                    if http(p1, "/healthz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                self.assertIsNone(p.poll(), fx.tail(logp))
                self.assertLess(time.monotonic(), deadline, fx.tail(logp))
                time.sleep(0.05)
            self.assertEqual(http(p2, "/healthz").status, 200)
            self.assertNotEqual(http(p2, "/api/v1/summary", headers={"Host": "localhost:%d" % p2}).status, 403)
            self.assertNotEqual(http(p1, "/api/v1/summary", headers={"Host": "localhost:%d" % p2}).status, 403)
        finally:
            p.terminate()
            p.wait(timeout=fx.tmo(15))
            fx.reap(p)


class T2Loopback(unittest.TestCase):
    def test_foreign_host_is_refused(self):
        port = D.serve.port
        for host in ("evil.example", "rebind.attacker.example:%d" % port, "localhost.evil.example:%d" % port,
                     "10.1.2.3:%d" % port):
            for path in ("/api/v1/summary", "/", "/metrics"):
                r = http(port, path, headers={"Host": host})
                self.assertEqual(r.status, 403, "%s %s: %r" % (host, path, r))
                self.assertEqual(r.json()["error"]["code"], "HOST_NOT_ALLOWED")
        # loopback names cannot be rebound: any port, or none
        for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "LOCALHOST:%d" % port, "[::1]:%d" % port,
                     "127.0.0.1", "localhost"):
            r = http(port, "/api/v1/summary", headers={"Host": host})
            self.assertNotEqual(r.status, 403, "%s: %r" % (host, r))

    def test_allowed_hosts_for_a_proxy(self):
        s = fx.TowerServe(D.t, D.data, os.path.join(D.root, "serve-ah.log"),
                          args=["--no-nats", "--allowed-hosts", "tower.example.com,Tower.Example.com:8443"])
        s.cwd = D.root
        s.start()
        try:
            for host, want in (("tower.example.com", True), ("tower.example.com:8443", True),
                               ("other.example.com", False)):
                r = http(s.port, "/healthz", headers={"Host": host})
                self.assertEqual(r.status != 403, want, "%s: %r" % (host, r))
            r = http(s.port, "/api/v1/events", "POST", ndjson(event("ah-1")),
                     dict(NDJSON, Origin="https://tower.example.com:8443"))
            self.assertNotEqual(r.status, 403, r)  # 503: no NATS here, but past the origin check
        finally:
            s.stop()

    def test_cross_origin_writes_are_refused_and_store_nothing(self):
        port = D.serve.port
        before = last_seq()
        other = "http://127.0.0.1:%d" % fx.free_port()
        cases = [
            ("a page of another local port", dict(JSON, Origin=other), 403, "ORIGIN_NOT_ALLOWED"),
            ("a sandboxed page", dict(JSON, Origin="null"), 403, "ORIGIN_NOT_ALLOWED"),
            ("no-cors text/plain", {"Content-Type": "text/plain;charset=UTF-8"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
            ("a form", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
            ("a multipart form", {"Content-Type": "multipart/form-data; boundary=x"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
            ("a blob without type", {}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        ]
        for what, hdrs, want, code in cases:
            body = ndjson(event("xo-%d" % len(what), orderCancelled={"reason": "x"}))
            r = http(port, "/api/v1/events", "POST", body, hdrs)
            self.assertEqual(r.status, want, "%s: %r" % (what, r))
            self.assertEqual(r.json()["error"]["code"], code, what)
            r = http(port, "/api/v1/dead-letters/1/redrive", "POST", b"{}", hdrs)
            self.assertEqual(r.status, want, "redrive, %s: %r" % (what, r))
        self.assertEqual(last_seq(), before, "a refused write was stored")
        # the server's own origin writes
        r = http(port, "/api/v1/events", "POST", ndjson(event("xo-own")),
                 dict(NDJSON, Origin="http://127.0.0.1:%d" % port))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(last_seq(), before + 1)

    def test_cross_origin_websocket_upgrade_is_refused(self):
        port = D.serve.port
        with self.assertRaises(fx.WsClosed) as cm:
            fx.WsClient(port, headers={"Origin": "http://127.0.0.1:%d" % fx.free_port()})
        self.assertIn("403", str(cm.exception))
        with self.assertRaises(fx.WsClosed) as cm:  # a second Host header
            fx.WsClient(port, headers={"Host": "evil.example"})
        self.assertIn("400", str(cm.exception))
        out = raw(port, b"GET /api/v1/stream HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        b"Sec-WebSocket-Version: 13\r\n\r\n")
        self.assertRegex(out, rb"^HTTP/1\.1 403 ", out[:200])
        for hdrs in ({"Origin": "http://127.0.0.1:%d" % port}, {"Origin": "http://localhost:%d" % port}, {}):
            ws = fx.WsClient(port, headers=hdrs)
            self.assertEqual(ws.status, 101)
            ws.close()


class T3Requests(unittest.TestCase):
    def test_expect_100_continue_gets_a_real_answer(self):
        port = D.serve.port
        body = ndjson(*[event("exp-%d" % i) for i in range(3)])
        with socket.create_connection(("127.0.0.1", port), timeout=fx.tmo(10)) as s:
            s.sendall(("POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/x-ndjson\r\n"
                       "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (port, len(body))).encode())
            got = b""
            while b"\r\n\r\n" not in got:
                got += s.recv(4096)
            self.assertTrue(got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got)
            got = got[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
            s.sendall(body)
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        self.assertRegex(got, rb"^HTTP/1\.1 200 ", got[:300])
        # curl sends Expect: 100-continue for bodies over 1 MiB
        big = ndjson(*[event("exp-big-%d" % i, order="SO-BIG-%d" % i) for i in range(8000)])
        self.assertGreater(len(big), 1 << 20)
        path = os.path.join(D.root, "big.ndjson")
        with open(path, "wb") as f:
            f.write(big)
        if not fx.shutil.which("curl"):
            self.skipTest("no curl")
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{http_version}", "--max-time", "60",
                            "-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + path,
                            "http://127.0.0.1:%d/api/v1/events" % port], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "200 1.1", r.stderr)

    def test_too_many_events_stores_nothing(self):
        before = last_seq()
        body = ndjson(*[event("many-%d" % i, order="SO-M-%d" % i) for i in range(10001)])
        r = http(D.serve.port, "/api/v1/events", "POST", body, NDJSON, timeout=60)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json()["error"]["code"], "TOO_MANY_EVENTS")
        self.assertIn("nothing was stored", r.json()["error"]["message"])
        self.assertEqual(last_seq(), before, "events of a refused body were stored")

    def test_two_content_lengths_are_refused(self):
        port = D.serve.port
        smuggled = b"GET /api/v1/summary HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port
        body = b"{}" + smuggled
        req = (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n" % (port, len(body))) + body
        out = raw(port, req)
        self.assertRegex(out, rb"^HTTP/1\.1 400 ", out[:300])
        self.assertEqual(len(re.findall(rb"HTTP/1\.1 \d{3} ", out)), 1, out)  # the smuggled GET is not answered
        req = (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
               b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % port)
        self.assertRegex(raw(port, req), rb"^HTTP/1\.1 400 ")
        self.assertEqual(http(port, "/healthz").status, 200)

    def test_security_headers_on_every_answer(self):
        probes = [(D.serve.port, "/api/v1/summary"), (D.serve.port, "/api/v1/orders/nope"),
                  (D.serve.port, "/api/v1/nope"), (D.serve.port, "/metrics"), (D.serve.port, "/healthz"),
                  (D.serve_web.port, "/"), (D.serve_web.port, "/js/app.js"), (D.serve_web.port, "/nope.html")]
        for port, path in probes:
            r = http(port, path)
            csp = r.headers.get("Content-Security-Policy", "")
            self.assertIn("frame-ancestors 'none'", csp, "%s: %s" % (path, r.headers))
            self.assertIn("script-src 'self'", csp, path)
            self.assertNotIn("unsafe-inline", csp, path)
            self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff", path)
            self.assertEqual(r.headers.get("Referrer-Policy"), "no-referrer", path)
        r = http(D.serve.port, "/api/v1/events", "POST", b"x", {"Content-Type": "text/plain"})
        self.assertEqual(r.status, 415)
        self.assertIn("frame-ancestors 'none'", r.headers.get("Content-Security-Policy", ""))
        # the dashboard has no inline script for the policy to block
        with open(os.path.join(D.web, "index.html")) as f:
            html = f.read()
        self.assertNotRegex(html, r"<script(?![^>]*\bsrc=)[^>]*>")
        self.assertNotRegex(html, r"\son[a-z]+=")

    def test_error_message_of_a_path_that_is_not_utf8(self):
        r = http(D.serve.port, "/api/v1/orders/%ff%fe")
        self.assertEqual(r.status, 404, r)
        e = r.json()["error"]
        self.assertEqual(e["code"], "NOT_FOUND")
        self.assertTrue(e.get("message"), e)

    def test_event_times_outside_the_range_are_rejected(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        cases = [("0001-01-01T00:00:00Z", "rejected"), ("9999-12-31T23:59:59Z", "rejected"),
                 ("1999-12-31T23:59:59Z", "rejected"), ((now + datetime.timedelta(days=2)).strftime(fmt), "rejected"),
                 ((now + datetime.timedelta(hours=1)).strftime(fmt), "accepted"),
                 ((now - datetime.timedelta(days=30)).strftime(fmt), "accepted")]
        body = ndjson(*[event("time-%d" % i, when, order="SO-T-%d" % i) for i, (when, _) in enumerate(cases)])
        r = http(D.serve.port, "/api/v1/events", "POST", body, NDJSON)
        self.assertEqual(r.status, 400, r)
        res = r.json()["results"]
        for (when, want), got in zip(cases, res):
            self.assertEqual(got.get("status"), want, "%s: %s" % (when, got))
            if want == "rejected":
                self.assertEqual(got["error"]["code"], "INVALID_TIME", got)
                self.assertEqual(got["error"]["field"], "occurredAt", got)
        self.assertEqual(r.json()["accepted"], 2)


class T3bNotices(unittest.TestCase):
    def test_deep_and_broken_change_notices_are_ignored(self):
        """tower.changes is an input too (anyone who may publish on NATS): on the bus's thread, deep, huge,
        truncated and mistyped notices are ignored, and the server and its live stream go on."""
        port = D.serve.port
        ws = fx.WsClient(port)
        ws.send({"type": "subscribe", "views": ["blocked"]})
        got = []
        while not any(m.get("type") == "snapshot" for m in got):
            got += ws.recv(timeout=fx.tmo(10))
        notices = [b"[" * 100000, b'{"seq":9,"prev":8,"changes":' + b"[" * 60000, b"{" * 4000,
                   b'{"seq":9,"prev":8,"changes":[{"view":"blocked","op":"add","item":' + b"[" * 500 + b"]" * 500 + b"}]}",
                   b'{"seq":"x","prev":[],"changes":{}}', b'{"seq":9,"prev":8,"changes":[{"view":7}]}',
                   b'{"seq":9,"prev":8,', b"\xff\xfe", b"x" * (900 * 1024)]
        for n in notices:
            D.client.publish("tower.changes", n)
        D.client.flush()
        # a resync may follow (the chain looks broken): whatever comes, the server and the stream answer
        self.assertEqual(http(port, "/healthz").status, 200)
        self.assertTrue(D.serve.alive(), D.serve.log())
        ws.send({"type": "resync"})
        got = []
        while not any(m.get("type") == "snapshot" for m in got):
            got += ws.recv(timeout=fx.tmo(10))
        ws.close()
        self.assertEqual(http(port, "/api/v1/summary").status, 200)
        self.assertIn("ignoring a change notice", D.serve.log())


class T4Websocket(unittest.TestCase):
    def test_frames_rfc6455_forbids_close_with_1002(self):
        port = D.serve.port
        for what, op, data, fin in (("RSV1 set", 0x41, b'{"type":"resync"}', True),
                                    ("RSV3 set", 0x11, b'{"type":"resync"}', True),
                                    ("a 126-byte ping", 0x9, b"p" * 126, True),
                                    ("a fragmented ping", 0x9, b"p", False),
                                    ("reserved opcode 3", 0x3, b"x", True),
                                    ("reserved opcode 11", 0xB, b"x", True)):
            ws = fx.WsClient(port)
            ws.send_frame(op, data, fin=fin)
            self.assertEqual(ws_close_code(ws), 1002, what)
            ws.sock.close()
        # an ordinary client is unaffected
        ws = fx.WsClient(port)
        ws.send({"type": "subscribe", "views": ["blocked"]})
        got = []
        while not any(m.get("type") == "snapshot" for m in got):
            got += ws.recv(timeout=fx.tmo(10))
        ws.close()

    def test_keepalive_pings_a_silent_client_and_drops_a_dead_one(self):
        # the server's own keep-alive (civetweb's would answer a ping of any size)
        s = fx.TowerServe(D.t, D.data, os.path.join(D.root, "serve-ping.log"), args=["--no-nats", "--ws-ping", "500ms"])
        s.cwd = D.root
        s.start()
        try:
            dead = fx.WsClient(s.port)   # reads, never answers a ping
            alive = fx.WsClient(s.port)  # recv_frame answers pings
            pings, t0, closed = 0, time.monotonic(), None
            dead.sock.settimeout(0.2)
            while closed is None and time.monotonic() - t0 < fx.tmo(15):
                try:
                    alive.recv_frame(timeout=0.05)
                except (socket.timeout, TimeoutError):
                    pass
                f = dead._frame_in_buf()
                if f is None:
                    try:
                        chunk = dead.sock.recv(4096)
                    except (socket.timeout, TimeoutError):
                        continue
                    if not chunk:
                        closed = time.monotonic() - t0
                    dead.buf += chunk
                elif f[0] == 9:
                    pings += 1
            self.assertIsNotNone(closed, "a client that answers no ping was kept (%d pings)" % pings)
            self.assertGreaterEqual(pings, 2, pings)
            fx.log("a silent client got %d pings and was dropped after %.1fs" % (pings, closed))
            # the one that answered is still served
            alive.send({"type": "subscribe", "views": ["blocked"]})
            got = []
            while not any(m.get("type") == "snapshot" for m in got):
                got += alive.recv(timeout=fx.tmo(10))
            # a ping from the client is answered with its payload
            alive.send_frame(9, b"hello")
            while True:
                op, data = alive.recv_frame(timeout=fx.tmo(10))
                if op == 10:
                    self.assertEqual(data, b"hello")
                    break
            alive.close()
        finally:
            s.stop()

    def test_refused_upgrade_is_answered_401_or_403(self):
        tokens = {"viewer": "it-viewer-" + fx._rand(20), "ingest": "it-ingest-" + fx._rand(20)}
        path = os.path.join(D.root, "tokens")
        with open(path, "w") as f:
            for role, tok in tokens.items():
                f.write("%s-client %s %s\n" % (role, role, hashlib.sha256(tok.encode()).hexdigest()))
        s = fx.TowerServe(D.t, D.data, os.path.join(D.root, "serve-tok.log"), args=["--no-nats", "--tokens", path])
        s.cwd = D.root
        s.start()
        try:
            for q, want in (("", "401"), ("?token=wrong", "401"), ("?token=" + tokens["ingest"], "403")):
                with self.assertRaises(fx.WsClosed) as cm:
                    fx.WsClient(s.port, path="/api/v1/stream" + q)
                self.assertIn(want, str(cm.exception), q)
            ws = fx.WsClient(s.port, path="/api/v1/stream?token=" + tokens["viewer"])
            self.assertEqual(ws.status, 101)
            ws.close()
            # with tokens, Host and Origin are not judged: a token is needed anyway (a proxy's names)
            ws = fx.WsClient(s.port, path="/api/v1/stream?token=" + tokens["viewer"],
                             headers={"Origin": "https://tower.example.com"})
            ws.close()
        finally:
            s.stop()


if __name__ == "__main__":
    sys.exit(fx.main(sys.modules[__name__]))
