#!/usr/bin/env python3
"""NATS outages on loopback: `towerd serve` and `towerd projector` started while NATS does not
answer (a port that accepts connections but never speaks, and a port where nothing listens), and a
running server whose nats-server hangs (SIGSTOP).

usage: test_nats_outage.py TOWERD [TEST_NAME_SUBSTRING...]

Environment: TOWER_IT_SLOW (timeout multiplier; 4 by itself for a sanitizer build), TOWER_IT_KEEP=1
(keep the temporary directories).

What is checked: serve answers /healthz and the API from its store within a few seconds whatever
NATS does, /readyz says 503 with the reason, and both serve and the projector stop within a few
seconds of SIGTERM; with a hung nats-server, /api/v1/summary, /metrics and /readyz each answer within
2 s, /readyz turns 503 (NATS not answering) within 10 s and ready again after SIGCONT. Only loopback
addresses are ever contacted.
"""

import json
import os
import signal
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
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def http_get(url, timeout):
    """(status, body bytes, seconds taken); HTTP errors are answers too; no answer within timeout raises."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    t0 = time.monotonic()
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read(), time.monotonic() - t0
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.monotonic() - t0


class SilentServer:
    """A loopback port that accepts TCP connections and never says a word (a black-holed NATS)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for c in self.conns:
            c.close()


def catches_sigterm(pid):
    """Whether the process has installed its SIGTERM handler (SigCgt in /proc/PID/status)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    except OSError:
        pass
    return False


def wait_for(what, cond, timeout, interval=0.05):
    deadline = time.monotonic() + fx.tmo(timeout)
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("%s: not within %.0fs" % (what, fx.tmo(timeout)))


class Base(unittest.TestCase):
    def setUp(self):
        self.dir = fx.make_tempdir("tower-it-outage-")
        self.t = fx.Towerd(TOWERD)
        self.t.cwd = self.dir
        self.logs = []

    def tearDown(self):
        fx.kill_all_children()
        for path in self.logs:
            text = fx.tail(path, 100000)
            for marker in SANITIZER:
                if marker in text:
                    self.fail("sanitizer report in %s:\n%s" % (path, fx.tail(path, 80)))
        fx.remove_tempdir(self.dir)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def store(self):
        """A small store folded offline, and its summary view names."""
        trace = self.t.gen(self.path("trace.ndjson"), 7, fx.scaled(60))
        data = self.path("store")
        self.t.fold(data, trace)
        return data, trace

    def unreachable(self, kind):
        if kind == "silent":
            s = SilentServer()
            self.addCleanup(s.close)
            return s.url
        return "nats://127.0.0.1:%d" % fx.free_port()  # nothing listens there

    def serve(self, data, url, name):
        log_path = self.path(name + ".log")
        self.logs.append(log_path)
        return fx.TowerServe(self.t, data, log_path, args=["--nats", url])

    def stop_within(self, proc_stop, seconds, what, log):
        t0 = time.monotonic()
        rc = proc_stop()
        took = time.monotonic() - t0
        self.assertLess(took, fx.tmo(seconds), "%s took %.1fs to stop on SIGTERM\n--- log:\n%s" % (what, took, log()))
        return rc


class TestUnreachableAtStart(Base):
    def _serve_unreachable(self, kind):
        data, _ = self.store()
        srv = self.serve(data, self.unreachable(kind), "serve-" + kind)
        t0 = time.monotonic()
        srv.start(timeout=8)  # /healthz answers (waits on the condition, fails after tmo(8))
        fx.log("%s NATS: /healthz answered after %.1fs" % (kind, time.monotonic() - t0))
        st, body, took = http_get(srv.url + "/api/v1/summary", fx.tmo(3))
        self.assertEqual(st, 200, body)
        summary = json.loads(body)
        self.assertGreater(summary["events"], 0)
        self.assertNotIn("streamLastSeq", summary)
        view = sorted(summary["views"])[0]
        st, body, _ = http_get(srv.url + "/api/v1/views/" + view, fx.tmo(3))
        self.assertEqual(st, 200, body)
        st, body, _ = http_get(srv.url + "/readyz", fx.tmo(3))
        self.assertEqual(st, 503, body)
        reasons = json.loads(body)["reasons"]
        self.assertTrue(any("NATS" in r for r in reasons), reasons)
        st, body, _ = http_get(srv.url + "/metrics", fx.tmo(3))
        self.assertEqual(st, 200)
        self.assertIn(b"tower_nats_connected 0", body)
        rc = self.stop_within(srv.stop, 5, "serve", srv.log)
        self.assertEqual(rc, 0, srv.log())

    def test_a1_serve_silent_nats(self):
        self._serve_unreachable("silent")

    def test_a2_serve_refused_nats(self):
        self._serve_unreachable("refused")

    def test_a3_serve_sigterm_while_connecting(self):
        """SIGTERM as soon as the handler is there (during the first connection attempt)."""
        data, _ = self.store()
        url = self.unreachable("silent")
        srv = self.serve(data, url, "serve-early")
        srv.port = fx.free_port()
        argv = [self.t.binary, "serve", "--data", data, "--http", "127.0.0.1:%d" % srv.port, "--nats", url]
        with open(srv.log_path, "ab") as logf:
            srv.proc = fx.spawn(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=self.t.env(), cwd=self.dir)
        wait_for("serve's SIGTERM handler", lambda: catches_sigterm(srv.proc.pid), 10, 0.01)
        rc = self.stop_within(srv.stop, 6, "serve", srv.log)
        self.assertEqual(rc, 0, srv.log())

    def _projector_unreachable(self, kind):
        url = self.unreachable(kind)
        p = fx.Projector(self.t, self.path("pstore-" + kind), url=url)
        self.logs.append(p.log_path)
        # At once: SIGTERM during the first connection attempt.
        p.start()
        wait_for("the projector's SIGTERM handler", lambda: catches_sigterm(p.proc.pid), 10, 0.01)
        rc = self.stop_within(lambda: p.stop(timeout=6), 6, "the projector", p.log)
        self.assertEqual(rc, 0, p.log())
        # Later: it says that it waits for NATS, keeps retrying, and still stops on SIGTERM.
        p.start()
        marker = "==== start %d:" % p.starts

        def says_waiting():
            text = fx.tail(p.log_path, 200)
            return "waiting for NATS at %s" % url in text[text.rfind(marker):]

        wait_for("the projector's 'waiting for NATS' line", says_waiting, 10)
        self.assertTrue(p.alive(), p.log())
        rc = self.stop_within(lambda: p.stop(timeout=6), 5, "the projector", p.log)
        self.assertEqual(rc, 0, p.log())

    def test_b1_projector_silent_nats(self):
        self._projector_unreachable("silent")

    def test_b2_projector_refused_nats(self):
        self._projector_unreachable("refused")


class TestHungNats(Base):
    def test_c_nats_sigstop(self):
        data, trace = self.store()
        nats = fx.NatsServer(root=self.path("nats")).start()
        self.addCleanup(nats.close)
        self.t.server = nats
        # The store is the projector's, fed from the stream (the offline store stays as it is).
        pdata = self.path("live")
        proj = fx.Projector(self.t, pdata, url=nats.url)
        self.logs.append(proj.log_path)
        proj.start()
        proj.wait_running()
        self.t.publish(trace, check=(0, 3))
        with fx.NatsClient(nats.port) as client:
            fx.wait_caught_up(self.t, pdata, client, projector=proj)
        srv = self.serve(pdata, nats.url, "serve-hung")
        srv.start(timeout=15)

        def ready():
            st, body, _ = http_get(srv.url + "/readyz", fx.tmo(3))
            return (st, json.loads(body))

        wait_for("/readyz 200 before the outage", lambda: ready()[0] == 200, 15)
        st, body, _ = http_get(srv.url + "/api/v1/summary", fx.tmo(3))
        self.assertIn("streamLastSeq", json.loads(body))

        os.kill(nats.proc.pid, signal.SIGSTOP)
        self.addCleanup(lambda: nats.proc and nats.proc.poll() is None and os.kill(nats.proc.pid, signal.SIGCONT))
        stopped = time.monotonic()

        def all_answer_fast(when):
            for path in ("/api/v1/summary", "/metrics", "/readyz"):
                try:
                    st, _, took = http_get(srv.url + path, fx.tmo(2))
                except (OSError, socket.timeout) as e:
                    self.fail("%s: %s did not answer within %.0fs while NATS hangs: %s" % (when, path, fx.tmo(2), e))
                self.assertIn(st, (200, 503), path)
                fx.log("%s: %s -> %d in %.2fs" % (when, path, st, took))

        all_answer_fast("at once")
        status, body = wait_for("/readyz 503 while NATS hangs", lambda: (lambda r: r if r[0] == 503 else None)(ready()),
                                10, 0.2)
        fx.log("/readyz 503 after %.1fs: %s" % (time.monotonic() - stopped, body["reasons"]))
        self.assertTrue(any("NATS" in r for r in body["reasons"]), body)
        all_answer_fast("later")
        st, body, _ = http_get(srv.url + "/api/v1/summary", fx.tmo(2))
        self.assertEqual(st, 200)

        os.kill(nats.proc.pid, signal.SIGCONT)
        wait_for("/readyz 200 after SIGCONT", lambda: ready()[0] == 200, 15, 0.2)
        st, body, _ = http_get(srv.url + "/api/v1/summary", fx.tmo(3))
        self.assertIn("streamLastSeq", json.loads(body))
        rc = self.stop_within(srv.stop, 5, "serve", srv.log)
        self.assertEqual(rc, 0, srv.log())
        self.assertEqual(proj.stop(), 0, proj.log())


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
