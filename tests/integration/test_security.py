#!/usr/bin/env python3
"""Security tests of `towerd serve`, against the real binary with a tokens file and a real nats-server.

usage: test_security.py TOWERD [TEST_NAME_SUBSTRING...]

Every /api route enforces its role; static files cannot escape the web root (dot segments, encoded
dots and slashes, symlinks); oversized request heads, bodies and websocket messages get a 4xx or an
error and the server keeps serving; slow-header and slow-body clients are cut off by the request
timeout without starving the worker threads; websocket compression is never negotiated; no token or
NATS password reaches a log; and, when nginx is installed, deploy/nginx/tower.conf terminates TLS in
front of the server (HTTPS REST and a WSS live stream through it).
Python 3 standard library only. Measurements are printed (fx.log) for the report.
"""

import base64
import json
import os
import re
import shutil
import socket
import ssl
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
SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
D = None  # the shared fixture
TIMEOUT_S = 2.0  # --request-timeout of the main server
THREADS = 4      # --threads of the main server (plus --ws-max-clients 2: 6 civetweb workers)
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "%s %r" % (self.status, self.body[:300])


def http(port, path, method="GET", data=None, headers=None, timeout=15, scheme="http", ctx=None):
    req = urllib.request.Request("%s://127.0.0.1:%d%s" % (scheme, port, path), data=data, method=method,
                                 headers=headers or {})
    opener = _opener if ctx is None else urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    try:
        with opener.open(req, timeout=fx.tmo(timeout)) as r:
            return Resp(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        try:
            body = e.read()
        except Exception:  # noqa: BLE001
            body = b""
        return Resp(e.code, e.headers, body)


def raw(port, data, timeout=10, read=True):
    """Send bytes as they are; (status or None, everything answered until the server closes or times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=fx.tmo(timeout)) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may close before taking everything: what it answered still counts
        out = b""
        try:
            while read:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"Connection: close" not in out and len(out) > 12:
                    # a keep-alive answer: enough once its body (Content-Length) is in
                    head, _, body = out.partition(b"\r\n\r\n")
                    m = re.search(rb"Content-Length: (\d+)", head, re.I)
                    if m and len(body) >= int(m.group(1)):
                        break
        except (socket.timeout, ConnectionResetError):
            pass
    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
    return (int(m.group(1)) if m else None), out


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Serve:
    """`towerd serve` as a child process on a free loopback port, with its own environment and log."""

    def __init__(self, t, data, web, log_path, args=(), env=None):
        self.t, self.data, self.web, self.log_path = t, data, web, log_path
        self.args, self.extra_env = list(args), dict(env or {})
        self.proc, self.port = None, None

    def start(self, timeout=30):
        for _ in range(4):
            self.port = fx.free_port()
            argv = [self.t.binary, "serve", "--data", self.data, "--web", self.web,
                    "--http", "127.0.0.1:%d" % self.port] + self.args
            logf = open(self.log_path, "ab")
            # the harness's own line names no secret: what the server writes is what is checked
            shown = ["***" if i > 0 and argv[i - 1] == "--nats-password" else a for i, a in enumerate(argv)]
            logf.write(("\n==== start: %s\n" % " ".join(shown[1:])).encode())
            logf.flush()
            self.proc = fx.spawn(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=self.t.env(self.extra_env), cwd=os.path.dirname(self.log_path))
            logf.close()
            deadline = time.monotonic() + fx.tmo(timeout)
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if http(self.port, "/healthz", timeout=2).status == 200:
                        return self
                except Exception:  # noqa: BLE001 (not up yet)
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None or "listen" not in fx.tail(self.log_path, 5):
                break
        raise AssertionError("towerd serve did not start:\n" + fx.tail(self.log_path))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=fx.tmo(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        fx.reap(self.proc)
        rc, self.proc = self.proc.returncode, None
        return rc

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


class Fixture:
    pass


def setUpModule():
    global D
    f = Fixture()
    D = f
    f.t = fx.Towerd(TOWERD)
    f.root = fx.make_tempdir("tower-it-sec-")
    f.t.cwd = f.root
    trace = os.path.join(f.root, "trace.ndjson")
    f.t.gen(trace, 5, 40)
    f.data = os.path.join(f.root, "data")
    f.t.fold(f.data, trace)
    dump = f.t.dump(f.data)
    f.order = sorted({it["orderId"] for items in dump.values() for it in items if it.get("orderId")})[0]
    # the web root, a secret beside it, and symlinks from inside it to outside
    f.web = os.path.join(f.root, "web")
    os.makedirs(os.path.join(f.web, "sub"))
    f.mark = "it-%s" % fx._rand(10)
    with open(os.path.join(f.web, "index.html"), "w") as fh:
        fh.write("<!doctype html><title>tower</title>dashboard %s\n" % f.mark)
    with open(os.path.join(f.web, "sub", "ok.txt"), "w") as fh:
        fh.write("inside %s\n" % f.mark)
    f.outside = os.path.join(f.root, "outside")
    os.makedirs(f.outside)
    f.secret = "SECRET-%s" % f.mark
    with open(os.path.join(f.outside, "secret.txt"), "w") as fh:
        fh.write(f.secret + "\n")
    with open(os.path.join(f.root, "secret.txt"), "w") as fh:
        fh.write(f.secret + "\n")
    os.symlink(os.path.join(f.outside, "secret.txt"), os.path.join(f.web, "leak.txt"))
    os.symlink(f.outside, os.path.join(f.web, "outdir"))
    os.symlink("../secret.txt", os.path.join(f.web, "sub", "rel-leak.txt"))
    os.symlink("ok.txt", os.path.join(f.web, "sub", "inside-link.txt"))
    # tokens
    f.tokens, lines = {}, []
    for name, role in (("wall", "viewer"), ("ops", "operator"), ("erp", "ingest")):
        r = f.t.run("token", name, role, check=0)
        f.tokens[role] = r.out.strip()
        lines.append(r.err.strip().splitlines()[-1])
    f.tokens_file = os.path.join(f.root, "tokens")
    with open(f.tokens_file, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    # NATS with a password: the server gets it by flag, the nginx test's server by environment
    f.nats_pw = "pw-" + fx._rand(16)
    f.nats = fx.NatsServer(root=os.path.join(f.root, "nats"),
                           extra_conf='authorization {\n  user: tower\n  password: "%s"\n}\n' % f.nats_pw)
    f.nats.start()
    f.logs = []
    f.server = Serve(f.t, f.data, f.web, os.path.join(f.root, "serve.log"),
                     ["--tokens", f.tokens_file, "--nats", f.nats.url, "--nats-user", "tower",
                      "--nats-password", f.nats_pw, "--threads", str(THREADS), "--ws-max-clients", "2",
                      "--request-timeout", "%gs" % TIMEOUT_S], env={"TOWER_LOG": "debug"})
    f.logs.append(f.server.log_path)
    f.server.start()
    fx.log("fixture: server on port %d (pid %d), order %s" % (f.server.port, f.server.proc.pid, f.order))


def tearDownModule():
    if D is None:
        return
    if getattr(D, "server", None):
        D.server.stop()
    if getattr(D, "nats", None):
        D.nats.close()
    if not fx.KEEP:
        fx.remove_tempdir(D.root)


class SecTest(unittest.TestCase):
    def setUp(self):
        fx.log("START %s" % self.id())

    def tearDown(self):
        self.assertTrue(D.server.alive(), "the server died:\n" + fx.tail(D.server.log_path))

    def get(self, path, token=None, **kw):
        h = dict(kw.pop("headers", None) or {})
        if token:
            h["Authorization"] = "Bearer " + token
        return http(D.server.port, path, headers=h, **kw)

    def assertServing(self):
        r = self.get("/api/v1/summary", token=D.tokens["viewer"])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(D.server.alive())


class T1Roles(SecTest):
    def test_1_every_route_enforces_its_role(self):
        V, O, I = D.tokens["viewer"], D.tokens["operator"], D.tokens["ingest"]
        event = json.dumps({"eventId": "sec-1", "occurredAt": "2026-11-27T08:00:00Z", "source": {"system": "erp"},
                            "orderId": "SEC-1", "orderApproved": {"warehouseId": "dc-1"}}).encode()
        reads = ["/api/v1/summary", "/api/v1/views/blocked", "/api/v1/views/blocked?limit=0",
                 "/api/v1/views/nope", "/api/v1/orders/" + D.order, "/api/v1/orders/NOPE",
                 "/api/v1/shipments/NOPE", "/api/v1/search?q=SO", "/api/v1/search", "/api/v1/dead-letters",
                 "/api/v1/trend", "/api/v1/stream"]
        routes = [("GET", p, None, "viewer") for p in reads]
        routes += [("POST", "/api/v1/events", event, "ingest"),
                   ("POST", "/api/v1/dead-letters/999999/redrive", b"", "operator")]
        allowed = {"viewer": {"viewer", "operator"}, "operator": {"operator"}, "ingest": {"ingest"}}
        seen = {}
        for method, path, body, need in routes:
            for who, tok in (("none", None), ("unknown", "twr_" + "0" * 48), ("viewer", V), ("operator", O),
                             ("ingest", I)):
                r = self.get(path, token=tok, method=method, data=body)
                seen[(method, path, who)] = r.status
                if who in ("none", "unknown"):
                    self.assertEqual(r.status, 401, "%s %s as %s: %r" % (method, path, who, r))
                    self.assertEqual(r.json()["error"]["code"], "UNAUTHORIZED")
                elif who in allowed[need]:
                    self.assertNotIn(r.status, (401, 403), "%s %s as %s: %r" % (method, path, who, r))
                    self.assertLess(r.status, 500, "%s %s as %s: %r" % (method, path, who, r))
                else:
                    self.assertEqual(r.status, 403, "%s %s as %s: %r" % (method, path, who, r))
                    self.assertEqual(r.json()["error"]["code"], "FORBIDDEN")
        # the wrong method is 405 before the token is looked at; no route is 404
        self.assertEqual(self.get("/api/v1/summary", method="DELETE").status, 405)
        self.assertEqual(self.get("/api/v1/nope").status, 404)
        # ?token= works too (browsers' websockets); odd Authorization headers are 401, not a crash
        self.assertEqual(self.get("/api/v1/summary?token=" + V).status, 200)
        for h in ("Bearer", "Bearer ", "bearer " + V[:-1], "Basic " + base64.b64encode(b"a:b").decode(),
                  "Bearer " + "x" * 600, "Bearer " + V + "x"):
            r = self.get("/api/v1/summary", headers={"Authorization": h})
            self.assertEqual(r.status, 401, "Authorization: %s... -> %r" % (h[:20], r))
        self.assertEqual(self.get("/api/v1/summary", headers={"Authorization": "bearer " + V}).status, 200)
        # the live stream: viewer and operator only, by header or ?token=
        for who, kw, ok in (("none", {}, False), ("ingest", {"path": "/api/v1/stream?token=" + I}, False),
                            ("unknown", {"headers": {"Authorization": "Bearer twr_x"}}, False),
                            ("viewer", {"path": "/api/v1/stream?token=" + V}, True),
                            ("operator", {"headers": {"Authorization": "Bearer " + O}}, True)):
            try:
                ws = fx.WsClient(D.server.port, **kw)
                ws.close()
                got = True
            except fx.WsClosed:
                got = False
            self.assertEqual(got, ok, "websocket as %s" % who)
        # open routes
        for p in ("/metrics", "/healthz", "/", "/index.html"):
            self.assertEqual(self.get(p).status, 200, p)
        self.assertNotIn(self.get("/readyz").status, (401, 403))
        fx.log("roles: %d checks" % len(seen))


class T2Static(SecTest):
    def test_2_static_files_cannot_escape_the_web_root(self):
        self.assertIn(D.mark.encode(), self.get("/sub/ok.txt").body)
        up = lambda n, sep="/": sep.join([".."] * n)  # noqa: E731
        targets = ["/../secret.txt", "/" + up(6) + "/etc/passwd", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
                   "/.%2e/secret.txt", "/%2e./secret.txt", "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
                   "/sub/..%2f..%2fsecret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/%252e%252e/secret.txt",
                   "/..%5csecret.txt", "/..\\secret.txt", "/sub/../../secret.txt", "//secret.txt",
                   "/" + D.root + "/secret.txt", "/%2f" + D.root.lstrip("/").replace("/", "%2f") + "%2fsecret.txt",
                   "/%c0%ae%c0%ae/secret.txt", "/sub/..;/../secret.txt", "/%00/../secret.txt",
                   "/leak.txt", "/outdir/secret.txt", "/sub/rel-leak.txt", "/outdir/", "/outdir",
                   "/leak.txt%00", "/LEAK.TXT", "/sub/../leak.txt", "/%6c%65%61%6b.txt"]
        statuses = {}
        for t in targets:
            status, data = raw(D.server.port, b"GET " + t.encode("latin-1") + b" HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n")
            statuses[t] = status
            self.assertNotIn(D.secret.encode(), data, "GET %s served a file outside the web root (%s)" % (t, status))
            self.assertNotIn(b"root:x:0:0", data, "GET %s served /etc/passwd" % t)
            self.assertNotEqual(status, 500, "GET %s -> 500" % t)
        fx.log("static escapes: %s" % ", ".join("%s=%s" % (k, v) for k, v in statuses.items()))
        # a symlink that stays inside the web root still works
        r = self.get("/sub/inside-link.txt")
        self.assertEqual((r.status, D.mark.encode() in r.body), (200, True), r)


class T3Limits(SecTest):
    def test_3a_request_head_limits(self):
        """Oversized request lines and heads, too many headers: a 4xx (or a close), and the server goes on."""
        big = "A" * 100000
        cases = {
            "request line 100 kB": b"GET /api/v1/orders/" + big.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            "one header of 20 kB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20000 + b"\r\n\r\n",
            "one header of 1 MB": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 1000000 + b"\r\n\r\n",
            "200 headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                           b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
            "10000 headers (160 kB)": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                                      b"".join(b"X-H%d: v\r\n" % i for i in range(10000)) + b"\r\n",
            "200 headers with the token last": b"GET /api/v1/summary HTTP/1.1\r\nHost: x\r\n" +
                                               b"".join(b"X-H%d: v\r\n" % i for i in range(200)) +
                                               b"Authorization: Bearer " + D.tokens["viewer"].encode() + b"\r\n\r\n",
            "a header without a colon": b"GET /healthz HTTP/1.1\r\nHost: x\r\nnocolon\r\n\r\n",
            "NUL in a header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        }
        got = {}
        for what, data in cases.items():
            t0 = time.monotonic()
            status, out = raw(D.server.port, data, timeout=15)
            got[what] = "%s in %.2fs" % (status, time.monotonic() - t0)
            self.assertTrue(status is None or 400 <= status < 500 or (status == 200 and "headers" in what),
                            "%s: %s %r" % (what, status, out[:200]))
            self.assertServing()
        fx.log("request heads: %s" % got)

    def test_3b_body_limits(self):
        I = D.tokens["ingest"]
        line = json.dumps({"eventId": "sec-b", "occurredAt": "2026-11-27T08:00:00Z", "source": {"system": "erp"},
                           "orderId": "SEC-B", "orderApproved": {"warehouseId": "dc-1"}}).encode() + b"\n"
        over = line * (4 * 1024 * 1024 // len(line) + 2)
        t0 = time.monotonic()
        r = self.get("/api/v1/events", token=I, method="POST", data=over, timeout=60)
        self.assertEqual(r.status, 413, r)
        fx.log("a %d-byte body (Content-Length): %s in %.2fs" % (len(over), r.status, time.monotonic() - t0))
        # the same without Content-Length (chunked): read up to the limit, then refused
        with socket.create_connection(("127.0.0.1", D.server.port), timeout=fx.tmo(30)) as s:
            s.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + I.encode() +
                      b"\r\nTransfer-Encoding: chunked\r\n\r\n")
            status = None
            try:
                chunk = b"%x\r\n" % (64 * 1024) + b"x" * (64 * 1024) + b"\r\n"
                for _ in range(100):  # 6.4 MiB
                    s.sendall(chunk)
                s.sendall(b"0\r\n\r\n")
            except OSError:
                pass
            out = b""
            try:
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    out += c
            except (socket.timeout, ConnectionResetError):
                pass
            m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
            status = int(m.group(1)) if m else None
        self.assertEqual(status, 413, out[:300])
        # a Content-Length beyond the limit is refused before any byte of the body is read
        status, out = raw(D.server.port, b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          I.encode() + b"\r\nContent-Length: 99999999999\r\n\r\n", timeout=10)
        self.assertEqual(status, 413, out[:300])
        # a redrive body is at most one event (64 KiB)
        r = self.get("/api/v1/dead-letters/1/redrive", token=D.tokens["operator"], method="POST",
                     data=b"{" + b" " * 70000 + b"}")
        self.assertEqual(r.status, 413, r)
        self.assertServing()

    def test_3c_websocket_message_limits(self):
        V = D.tokens["viewer"]
        ws = fx.WsClient(D.server.port, path="/api/v1/stream?token=" + V, timeout=fx.tmo(20))
        try:
            ws.send({"type": "subscribe", "views": ["blocked"]})
            self.wait_type(ws, "snapshot")
            # over 4 KiB: an error naming the limit, and the connection stays usable
            ws.send_frame(1, json.dumps({"type": "subscribe", "pad": "x" * 5000}).encode())
            e = self.wait_type(ws, "error")
            self.assertEqual(e["error"]["code"], "TOO_LARGE", e)
            ws.send({"type": "resync", "view": "blocked"})
            self.wait_type(ws, "snapshot")
            # a fragmented message and a binary frame: errors too
            ws.send_frame(1, b'{"type":', fin=False)
            ws.send_frame(0, b'"resync"}', fin=True)
            self.assertEqual(self.wait_type(ws, "error")["error"]["code"], "INVALID_FRAME")
            ws.send_frame(2, b"\x00\x01")
            self.assertEqual(self.wait_type(ws, "error")["error"]["code"], "INVALID_FRAME")
            ws.send({"type": "resync", "view": "blocked"})
            self.wait_type(ws, "snapshot")  # every pending error is read by now
            # 10 MB in one frame: civetweb reads the whole frame before our handler sees it; measure
            pid = D.server.proc.pid
            before = rss_kb(pid)
            payload = b'{"type":"subscribe","pad":"' + b"x" * (10 * 1000 * 1000) + b'"}'
            t0 = time.monotonic()
            ws.send_frame(1, payload)
            sent = time.monotonic() - t0
            peak = rss_kb(pid)
            try:
                e = self.wait_type(ws, "error", timeout=30)
                answer = "%s after %.2fs" % (e["error"]["code"], time.monotonic() - t0)
                self.assertEqual(e["error"]["code"], "TOO_LARGE")
            except (fx.WsClosed, OSError) as ex:
                answer = "connection closed (%s) after %.2fs" % (ex, time.monotonic() - t0)
            after = rss_kb(pid)
            fx.log("a 10 MB websocket frame: sent in %.2fs; answer: %s; server RSS %d kB before, %d kB just "
                   "after sending, %d kB after the answer" % (sent, answer, before, peak, after))
        finally:
            ws.close()
        # a frame header claiming 2^62 bytes: the server must not try to allocate it
        ws = fx.WsClient(D.server.port, path="/api/v1/stream?token=" + V, timeout=fx.tmo(10))
        try:
            ws.sock.sendall(bytes([0x81, 0x80 | 127]) + (1 << 62).to_bytes(8, "big") + b"\0\0\0\0" + b"x" * 1000)
            try:
                msgs = ws.recv(timeout=10)
                outcome = "answered %s" % msgs
            except (fx.WsClosed, OSError, socket.timeout) as ex:
                outcome = "closed: %r" % ex
            fx.log("a frame header claiming 2^62 bytes: %s; server RSS %d kB" % (outcome, rss_kb(D.server.proc.pid)))
        finally:
            ws.close()
        self.assertServing()

    def wait_type(self, ws, typ, timeout=20):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            for m in ws.recv(timeout=max(0.1, deadline - time.monotonic())):
                if m.get("type") == typ:
                    return m
        raise AssertionError("no %s message within %ss" % (typ, timeout))

    def test_3d_no_websocket_compression(self):
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /api/v1/stream?token=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
               % (D.tokens["viewer"], key)).encode()
        with socket.create_connection(("127.0.0.1", D.server.port), timeout=fx.tmo(10)) as s:
            s.sendall(req)
            head = b""
            while b"\r\n\r\n" not in head:
                c = s.recv(4096)
                if not c:
                    break
                head += c
        head = head.split(b"\r\n\r\n")[0].decode("latin-1")
        self.assertTrue(head.startswith("HTTP/1.1 101"), head)
        self.assertNotIn("sec-websocket-extensions", head.lower(), head)


class T4Slow(SecTest):
    def slow_clients(self, n, start, drip, stop):
        """n sockets that send `start` then one byte of `drip` every 0.5 s; returns (sockets, closed times)."""
        socks, closed, t0 = [], {}, time.monotonic()

        def run(k, s):
            try:
                s.sendall(start)
                i = 0
                while not stop.is_set():
                    s.sendall(drip[i % len(drip):i % len(drip) + 1])
                    i += 1
                    # a closed connection shows as a readable EOF, an answer, or a send error
                    s.settimeout(0.5)
                    try:
                        c = s.recv(4096)
                        closed[k] = (time.monotonic() - t0, c[:40])
                        return
                    except socket.timeout:
                        pass
            except OSError as e:
                closed[k] = (time.monotonic() - t0, repr(e))

        threads = []
        for k in range(n):
            s = socket.create_connection(("127.0.0.1", D.server.port), timeout=fx.tmo(10))
            socks.append(s)
            th = threading.Thread(target=run, args=(k, s), daemon=True)
            th.start()
            threads.append(th)
        return socks, closed, threads

    def check_slow(self, what, start, drip, waves):
        n = THREADS + 2 + 6  # more than every civetweb worker (threads + ws-max-clients)
        stop = threading.Event()
        socks, closed, threads = self.slow_clients(n, start, drip, stop)
        try:
            time.sleep(0.5)
            t0 = time.monotonic()
            r = self.get("/api/v1/summary", token=D.tokens["viewer"], timeout=30)
            took = time.monotonic() - t0
            self.assertEqual(r.status, 200, r)
            # the slow clients fill every worker: the request waits for the timeout to free them (twice at
            # most: 2 waves of slow clients before it; a body's timeout is checked between reads, each of
            # which civetweb bounds by the timeout too, hence 2 timeouts per wave for bodies)
            self.assertLess(took, 2 * waves * TIMEOUT_S + 3, "%s: a normal request took %.2fs" % (what, took))
            deadline = time.monotonic() + fx.tmo(8 * TIMEOUT_S + 10)
            while len(closed) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            times = sorted(round(v[0], 1) for v in closed.values())
            fx.log("%s: %d slow clients; a normal request answered in %.2fs; %d cut off, at %s s; first answers %s"
                   % (what, n, took, len(closed), times, sorted({repr(v[1])[:40] for v in closed.values()})))
            self.assertEqual(len(closed), n, "%s: %d of %d slow clients still connected after %.0fs"
                             % (what, n - len(closed), n, 8 * TIMEOUT_S + 10))
        finally:
            stop.set()
            for th in threads:
                th.join(5)
            for s in socks:
                s.close()
        self.assertServing()

    def test_4a_slow_headers(self):
        self.check_slow("slow headers", b"GET /api/v1/summary HTTP/1.1\r\nHost: x\r\n", b"X-Slow: aaaaaaaaaa\r\n", 1)

    def test_4b_slow_body(self):
        start = (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + D.tokens["ingest"].encode() +
                 b"\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n")
        self.check_slow("slow body", start, b"{\"eventId\":\"slow\"}\n", 2)
        # a slow body on a route that takes none: refused (401, no token), and not read on at its pace
        start = b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        self.check_slow("slow body, no token", start, b"x", 2)


class T5Logs(SecTest):
    def test_9_no_secret_in_logs(self):
        # a refused token is named in the log, never shown
        self.get("/api/v1/events", token=D.tokens["viewer"], method="POST", data=b"{}")
        self.get("/api/v1/summary", token=D.tokens["ingest"])
        # both refusals are logged (by name) before they are answered: the log holds them now
        with open(D.server.log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.assertIn("token 'wall' (viewer) refused", text)
        self.assertIn("token 'erp' (ingest) refused", text)
        secrets = [D.nats_pw] + list(D.tokens.values()) + [t[4:] for t in D.tokens.values()]
        nginx_log = os.path.join(D.root, "nginx", "access.log")
        for path in D.logs + [D.nats.log_path] + [nginx_log]:
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for sec in secrets:
                if path == D.nats.log_path and sec == D.nats_pw:
                    continue  # nats-server's own log is not ours
                self.assertNotIn(sec, text, "a secret appears in %s" % path)
        fx.log("no secret in %d logs (%s)" % (len(D.logs), ", ".join(os.path.basename(p) for p in D.logs)))


class T6Nginx(SecTest):
    def test_6_nginx_tls_front(self):
        nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
        if not nginx or not shutil.which("openssl"):
            self.skipTest("nginx or openssl is not installed (tools/setup.sh installs them)")
        d = os.path.join(D.root, "nginx")
        os.makedirs(os.path.join(d, "tmp"))
        cert, key = os.path.join(d, "tower.crt"), os.path.join(d, "tower.key")
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                            "-keyout", key, "-out", cert], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        # a second server behind nginx, the NATS password by environment this time
        back = Serve(D.t, D.data, D.web, os.path.join(D.root, "serve-nginx.log"),
                     ["--tokens", D.tokens_file, "--nats", D.nats.url],
                     env={"TOWER_NATS_USER": "tower", "TOWER_NATS_PASSWORD": D.nats_pw, "TOWER_LOG": "debug"})
        D.logs.append(back.log_path)
        back.start()
        self.addCleanup(back.stop)
        port = fx.free_port()
        with open(os.path.join(SRC, "deploy", "nginx", "tower.conf")) as f:
            conf = f.read()
        conf = (conf.replace("127.0.0.1:8080", "127.0.0.1:%d" % back.port)
                .replace("listen 443 ssl", "listen 127.0.0.1:%d ssl" % port)
                .replace("listen [::]:443 ssl;", "")
                .replace("/etc/tower/tls/tower.crt", cert).replace("/etc/tower/tls/tower.key", key)
                .replace("/var/log/nginx/tower_access.log", os.path.join(d, "access.log")))
        with open(os.path.join(d, "tower.conf"), "w") as f:
            f.write(conf)
        main = ("daemon off;\nworker_processes 1;\npid %(d)s/nginx.pid;\nerror_log %(d)s/error.log warn;\n"
                "events { worker_connections 256; }\nhttp {\n"
                "  client_body_temp_path %(d)s/tmp/body;\n  proxy_temp_path %(d)s/tmp/proxy;\n"
                "  fastcgi_temp_path %(d)s/tmp/fcgi;\n  uwsgi_temp_path %(d)s/tmp/uwsgi;\n"
                "  scgi_temp_path %(d)s/tmp/scgi;\n  include %(d)s/tower.conf;\n}\n" % {"d": d})
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(main)
        r = subprocess.run([nginx, "-t", "-p", d, "-c", os.path.join(d, "nginx.conf")], capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        logf = open(os.path.join(d, "nginx.out"), "wb")
        p = fx.spawn([nginx, "-p", d, "-c", os.path.join(d, "nginx.conf")], stdout=logf, stderr=subprocess.STDOUT,
                     stdin=subprocess.DEVNULL)
        logf.close()

        def stop_nginx():
            if p.poll() is None:
                p.terminate()  # SIGTERM: fast shutdown of the master and its worker
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
            fx.reap(p)
        self.addCleanup(stop_nginx)
        ctx = ssl.create_default_context(cafile=cert)
        deadline = time.monotonic() + fx.tmo(20)
        while True:
            try:
                r = http(port, "/healthz", scheme="https", ctx=ctx, timeout=5)
                break
            except (urllib.error.URLError, OSError) as e:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise AssertionError("nginx did not answer: %r\n%s" % (e, fx.tail(os.path.join(d, "error.log"))))
                time.sleep(0.1)
        self.assertEqual(r.status, 200, r)
        V, I = D.tokens["viewer"], D.tokens["ingest"]
        r = http(port, "/api/v1/summary", scheme="https", ctx=ctx, headers={"Authorization": "Bearer " + V})
        self.assertEqual(r.status, 200, r)
        self.assertIn("views", r.json())
        self.assertEqual(http(port, "/api/v1/summary", scheme="https", ctx=ctx).status, 401)
        r = http(port, "/", scheme="https", ctx=ctx)
        self.assertIn(D.mark.encode(), r.body)
        self.assertIn("max-age", r.headers.get("Strict-Transport-Security", ""), r.headers)
        # ingest through the proxy, and its body limit (nginx answers 413 itself past 4 MiB)
        ev = json.dumps({"eventId": "sec-tls-1", "occurredAt": "2026-11-27T08:00:00Z", "source": {"system": "erp"},
                         "orderId": "SEC-TLS", "orderApproved": {"warehouseId": "dc-1"}}).encode()
        r = http(port, "/api/v1/events", method="POST", data=ev, scheme="https", ctx=ctx,
                 headers={"Authorization": "Bearer " + I, "Content-Type": "application/x-ndjson"})
        self.assertEqual(r.status, 200, r)
        r = http(port, "/api/v1/events", method="POST", data=b" " * (5 * 1024 * 1024), scheme="https", ctx=ctx,
                 headers={"Authorization": "Bearer " + I}, timeout=60)
        self.assertEqual(r.status, 413, r)
        # plain HTTP to the TLS port is refused
        status, _ = raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertNotEqual(status, 200)
        # WSS: the live stream through nginx
        raw_sock = socket.create_connection(("127.0.0.1", port), timeout=fx.tmo(15))
        s = ctx.wrap_socket(raw_sock, server_hostname="127.0.0.1")
        wkey = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /api/v1/stream?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n" % (V, port, wkey)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = s.recv(4096)
            self.assertTrue(c, "nginx closed the websocket handshake: %r" % buf)
            buf += c
        head, rest = buf.split(b"\r\n\r\n", 1)
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        self.assertNotIn(b"sec-websocket-extensions", head.lower())
        ws = fx.WsClient.__new__(fx.WsClient)
        ws.sock, ws.buf = s, rest
        ws.send({"type": "subscribe", "views": ["awaiting_release"]})
        got = []
        deadline = time.monotonic() + fx.tmo(20)
        while not any(m.get("type") == "summary" for m in got) and time.monotonic() < deadline:
            got += ws.recv(timeout=10)
        snaps = [m for m in got if m.get("type") == "snapshot"]
        self.assertEqual([m["view"] for m in snaps], ["awaiting_release"], got[:3])
        # a message over 4 KiB through the proxy: still our error, and the stream goes on
        ws.send_frame(1, json.dumps({"type": "resync", "pad": "y" * 5000}).encode())
        errs = []
        deadline = time.monotonic() + fx.tmo(20)
        while not errs and time.monotonic() < deadline:
            errs = [m for m in ws.recv(timeout=10) if m.get("type") == "error"]
        self.assertEqual(errs[0]["error"]["code"], "TOO_LARGE", errs)
        ws.close()
        fx.log("nginx %s: HTTPS REST, ingest, 413 over 4 MiB, WSS stream through port %d -> %d"
               % (subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip(), port, back.port))


def main():
    global TOWERD
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    TOWERD = os.path.abspath(sys.argv[1])
    fx.install_signal_cleanup()
    fx.stretch_for_sanitizer(TOWERD)  # an ASan build's servers take longer to come up and answer
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    only = sys.argv[2:]
    for cls in (T1Roles, T2Static, T3Limits, T4Slow, T6Nginx, T5Logs):
        for name in loader.getTestCaseNames(cls):
            if not only or any(o in name for o in only):
                suite.addTest(cls(name))
    t0 = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    fx.log("suite took %.1fs" % (time.monotonic() - t0))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
