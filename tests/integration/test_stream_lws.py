#!/usr/bin/env python3
"""Integration tests of the live stream's libwebsockets listener (`towerd serve --stream-listen`), against a
real nats-server, projector and server.

usage: test_stream_lws.py TOWERD [TEST_NAME_SUBSTRING...]

The protocol checks of test_stream.py run again with every client on the listener (snapshot then deltas
equal to the views, the slow client dropped to a resync, missed commits, tokens and roles, the connection
limit, coalescing). Then what is the listener's own: hostile frames (reserved bits, opcodes, oversized and
fragmented control frames) end the connection, oversized and deeply nested messages get an error, Origin and
Host are checked in loopback mode, a client stuck on a full socket is closed while 20 others get every delta,
and the server's thread count does not grow with its clients (200 of them), where civetweb's does.
"""

import json
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_stream as ts  # noqa: E402
from test_hardening import ws_close_code  # noqa: E402

TOWERD = None


class L1SnapshotAndDeltas(ts.T1SnapshotAndDeltas):
    lws = True


class L2SlowClient(ts.T2SlowClient):
    lws = True


class L3Gaps(ts.T3Gaps):
    lws = True


class L4TokensAndRedrive(ts.T4TokensAndRedrive):
    lws = True


class L5Coalescing(ts.T5Coalescing):
    lws = True


class L6EmptyTurns(ts.T6EmptyTurns):
    lws = True


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def subscribed(port, n):
    """n clients, each subscribed to one view and past its snapshot."""
    out = []
    for _ in range(n):
        ws = fx.WsClient(port, timeout=fx.tmo(30))
        ws.send({"type": "subscribe", "views": ["blocked"]})
        got = []
        while not any(m.get("type") == "snapshot" for m in got):
            got += ws.recv(timeout=fx.tmo(30))
        out.append(ws)
    return out


class L6Listener(ts.StreamTest):
    lws = True

    def test_6_hostile_frames_and_messages(self):
        self.start_serve()
        port = self.ws_port
        # Frames RFC 6455 forbids end the connection with 1002 (protocol error).
        for what, op, data, fin in (("RSV1 set", 0x41, b'{"type":"resync"}', True),
                                    ("RSV3 set", 0x11, b'{"type":"resync"}', True),
                                    ("a fragmented ping", 0x9, b"p", False),
                                    ("reserved opcode 3", 0x3, b"x", True),
                                    ("reserved opcode 11", 0xB, b"x", True)):
            ws = fx.WsClient(port)
            ws.send_frame(op, data, fin=fin)
            self.assertEqual(ws_close_code(ws), 1002, what)
            ws.sock.close()
        # An oversized control frame: libwebsockets drops the connection at once, without a close frame.
        ws = fx.WsClient(port)
        ws.send_frame(0x9, b"p" * 126)
        ws.sock.settimeout(fx.tmo(10))
        try:
            rest = ws.sock.recv(4096)
        except ConnectionResetError:
            rest = b""
        self.assertEqual(rest, b"", "a 126-byte ping left the connection open")
        ws.sock.close()
        # Messages: deep nesting and oversized ones get an error, and the connection still works.
        ws = fx.WsClient(port, timeout=fx.tmo(10))
        for data, code in ((b"[" * 4000, "TOO_DEEP"), (b"[" * 100000, "TOO_LARGE"),
                           (b'{"type":"subscribe","views":' + b"[" * 40 + b"]" * 40 + b"}", "TOO_DEEP")):
            ws.send_frame(1, data)
            msgs = []
            while not any(m.get("type") == "error" for m in msgs):
                msgs += ws.recv(timeout=fx.tmo(10))
            self.assertEqual([m["error"]["code"] for m in msgs if m.get("type") == "error"], [code], msgs)
        ws.send({"type": "subscribe", "views": ["blocked"]})
        got = []
        while not any(m.get("type") == "snapshot" for m in got):
            got += ws.recv(timeout=fx.tmo(10))
        ws.close()
        self.assertEqual(self.request("GET", "/healthz")[0], 200)

    def test_7_origin_and_host_in_loopback_mode(self):
        self.start_serve()
        port = self.ws_port
        with self.assertRaises(fx.WsClosed) as cm:
            fx.WsClient(port, headers={"Origin": "http://127.0.0.1:%d" % fx.free_port()})
        self.assertIn("403", str(cm.exception))
        with self.assertRaises(fx.WsClosed) as cm:  # a second Host header
            fx.WsClient(port, headers={"Host": "evil.example"})
        self.assertIn("400", str(cm.exception))
        s = socket.create_connection(("127.0.0.1", port), timeout=fx.tmo(10))
        s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.assertRegex(s.recv(4096), rb"^HTTP/1\.[01] 403 ")
        s.close()
        with self.assertRaises(fx.WsClosed) as cm:  # this listener serves the stream only
            fx.WsClient(port, path="/api/v1/other")
        self.assertIn("404", str(cm.exception))
        # The dashboard's own origin (the civetweb port), and no Origin at all (not a browser), may connect.
        for hdrs in ({"Origin": "http://127.0.0.1:%d" % self.port}, {"Origin": "http://localhost:%d" % self.port}, {}):
            ws = fx.WsClient(port, headers=hdrs)
            self.assertEqual(ws.status, 101)
            ws.close()
        # The dashboard is told where the stream is, and its pages may connect there.
        st, me = self.request("GET", "/api/v1/me")
        self.assertEqual((st, me.get("stream")), (200, {"port": port, "path": "/api/v1/stream"}), me)
        with urllib.request.urlopen(self.base + "/healthz", timeout=fx.tmo(30)) as r:
            csp = r.headers.get("Content-Security-Policy")
        self.assertIn("connect-src 'self' ws://127.0.0.1:%d ws://localhost:%d" % (port, port), csp)

    def test_8_a_stuck_client_is_closed_and_the_others_get_every_delta(self):
        self.publish_trace("a.ndjson", 81, fx.scaled(40, 10))
        # A short write timeout: a client that takes no frame for 2 s is closed.
        self.start_serve("--ws-queue", "2000", "--request-timeout", "2s")
        readers = [self.mirror(views=["awaiting_release", "blocked"]) for _ in range(20)]
        stuck = self.mirror(rcvbuf=4096)
        self.wait_settled(readers + [stuck], 0)
        stuck.reading.clear()  # stops reading: its socket fills, then its queue

        def metric(name):
            st, m = self.request("GET", "/metrics")
            return int(m.split("\n%s " % name)[1].split("\n")[0])

        rounds = 0
        while metric("tower_ws_clients") > 20 and rounds < 6:
            self.publish_trace("b%d.ndjson" % rounds, 82 + rounds, fx.scaled(600, 300))
            rounds += 1
        deadline = time.monotonic() + fx.tmo(30)
        while metric("tower_ws_clients") > 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(metric("tower_ws_clients"), 20, "the stuck client was not closed:\n" + fx.tail(self.serve_log))
        self.wait_settled(readers, self.applied())
        for m in readers:
            self.assertMirrors(m, ["awaiting_release", "blocked"])
            self.assertEqual([r for r in m.resyncs if "slow client" in r["reason"]], [], m.resyncs)
        fx.log("test 8: the stuck client closed after %d trace(s); 20 readers got every delta" % rounds)

    def test_9_threads_do_not_grow_with_clients(self):
        self.start_serve()
        pid = self.serve.pid
        before = threads_of(pid)
        clients = subscribed(self.ws_port, 200)
        during = threads_of(pid)
        st, m = self.request("GET", "/metrics")
        self.assertIn("tower_ws_clients 200\n", m)
        fx.log("test 9: %d threads before, %d with 200 libwebsockets clients" % (before, during))
        self.assertLessEqual(during, before + 2, "threads grew with the clients")
        for ws in clients:
            ws.close()
        # The same count on civetweb's /api/v1/stream grows by a thread per client (what the listener avoids):
        # the check above can fail.
        civet = []
        for _ in range(10):
            civet.append(fx.WsClient(self.port))
        deadline = time.monotonic() + fx.tmo(10)
        while threads_of(pid) < during + 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(threads_of(pid), during + 10, "civetweb's clients got no threads of their own")
        for ws in civet:
            ws.close()


def prepare():
    ts.TOWERD = TOWERD  # the checks reused from test_stream.py read their module's global


def main():
    return fx.main(sys.modules[__name__], prepare=prepare)


if __name__ == "__main__":
    sys.exit(main())
