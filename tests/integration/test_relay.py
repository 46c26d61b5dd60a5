#!/usr/bin/env python3
"""Integration tests of the outbound relay (`towerd relay`, docs/outbound.md).

usage: test_relay.py TOWERD [TEST_NAME_SUBSTRING...]

A real nats-server, events published with `towerd publish`, real `towerd relay` processes, and HTTP
receivers written here (http.server in threads) that record every request and answer as each test says:

1. signed delivery: each wanted event exactly once, in stream order, the version-1 payload, a valid
   Standard Webhooks signature, webhook-id = eventId.destination; type, warehouse and carrier filters;
   STATE/NAME.seq reaches the stream's last sequence; a restart resumes after it.
2. retries: 500, 500, 200 (delays from backoff_min, bounded by the doubling cap); 408 retried; 429 with
   Retry-After: 2 (the next attempt >= 2 s later); 503 with an HTTP-date Retry-After; a Retry-After
   capped at backoff_max; 400 and 404 dead letters at once (one attempt), the next event delivered.
3. max_attempts exhausted: a dead letter with every attempt; --redrive while the receiver still fails
   (exit 1, the letter kept), then healed (exit 0, delivered with the same webhook-id, the letter gone).
4. the circuit breaker against a hanging receiver: open after breaker_failures timeouts, no attempt while
   open, one half-open probe per cooldown, closed when healed, every event delivered, nothing lost.
5. kill -9 of the relay with a delivery in flight: after a restart every event is delivered, the one in
   flight again, any duplicate with the same webhook-id and body.
6. a destination on a closed port costs another destination nothing; its breaker opens, its backlog shows.
7. kind = slack: {"text": ...} naming the event type and the order or shipment; SIGINT exits 0.
8. `towerd up --relay FILE`: the simulated route planner's routeDispatched events reach the receiver,
   DATA/relay holds the state, /metrics has tower_relay_* for the destination.
9. bad relay files: exit 2, FILE:LINE: on stderr, never the secret (nor an SMTP password); --help.
10. kind = email against a real SMTP server (aiosmtpd): every wanted event once, in order, as a mail with
    the envelope and From/To/Subject/Message-ID/Date/Content-Type the docs give and the event as canonical
    JSON in its body; filters; AUTH with username_env/password_env (never logged); a restart resumes.
11. email retries: an SMTP 451 at DATA and at RCPT retried (the same Message-ID), then delivered; 550 at DATA
    and at RCPT dead letters after one attempt; the next event delivered.
12. email to a server that is down: attempts fail (status 0), the breaker opens, nothing is lost; the
    server up, every event arrives once, in order, the breaker closes.
13. batch = N: up to N events per request in stream order, the body signed, a retry carries the same batch,
    a kill -9 loses nothing and repeats nothing delivered, a refused batch makes each of its events a dead letter.

Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library, and aiosmtpd
(Debian's python3-aiosmtpd, tools/setup.sh) for the SMTP server of tests 10-12.
"""

import base64
import email
import email.policy
import email.utils
import hashlib
import hmac
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

try:
    import aiosmtpd.controller  # noqa: E402
    import aiosmtpd.smtp  # noqa: E402
except ImportError:
    # Debian installs python3-aiosmtpd for its own python3; another python3 of the same version (pyenv's)
    # can use it from there.
    _deb = "/usr/lib/python3/dist-packages"
    if os.path.isdir(os.path.join(_deb, "aiosmtpd")) and _deb not in sys.path:
        sys.path.append(_deb)
    try:
        import aiosmtpd.controller  # noqa: E402
        import aiosmtpd.smtp  # noqa: E402
    except ImportError:
        aiosmtpd = None
if aiosmtpd is not None:
    import logging
    import warnings
    # aiosmtpd warns (and logs) that our test server takes AUTH without TLS: on purpose, on loopback.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", module=r"aiosmtpd\..*")

TOWERD = None
STREAM = "TOWER_EVENTS"


# ---------------------------------------------------------------------------------------------
# events

def event(eid, etype, sec=0, **ids):
    """One event as the contract's JSON: routeDispatched needs routeId, the carrier events shipmentId.
    warehouseId / carrierId go on the envelope and the payload alike (so no precedence question)."""
    system = {"routeDispatched": "tms", "deliveryCompleted": "carrier", "podCaptured": "carrier",
              "deliveryAttempted": "carrier"}[etype]
    e = {"eventId": eid, "occurredAt": "2026-11-27T10:%02d:%02dZ" % (sec // 60 % 60, sec % 60),
         "source": {"system": system}}
    payload = {}
    for k in ("orderId", "shipmentId", "routeId"):
        if k in ids:
            e[k] = ids[k]
    for k in ("warehouseId", "carrierId"):
        if k in ids:
            e[k] = ids[k]
            payload[k] = ids[k]
    if etype == "podCaptured":
        payload["podRef"] = "pod-" + eid
    if etype == "deliveryAttempted":
        payload["reason"] = "nobody home"
    e[etype] = payload
    return e


def route(eid, n, **kw):
    return event(eid, "routeDispatched", n, routeId="R%d" % n, **kw)


def new_secret():
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def signature_ok(secret, headers, body):
    """docs/outbound.md's check: one of the space-separated v1 signatures is the HMAC of id.ts.body."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg = ("%s.%s." % (headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""))).encode() + body
    want = "v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()
    return any(s == want for s in headers.get("webhook-signature", "").split())


def letters(text):
    return re.sub(r"[^a-z]", "", text.lower())


# ---------------------------------------------------------------------------------------------
# an HTTP receiver that records every request

class Receiver:
    """An HTTP server on a free loopback port. Every request is recorded (arrival time, path, headers
    with lower-case names, body, the parsed JSON, its webhook id and the attempt number n for that
    (path, id)); `behave(req)` says how to answer: a dict with status (200), headers, delay (seconds
    of a slow answer) or hang (wait for release(), at most that many seconds)."""

    def __init__(self, behave=None):
        self.behave = behave
        self.cond = threading.Condition()
        self.reqs = []
        self.counts = {}
        self.inflight = set()
        self.released = threading.Event()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                rec._handle(self)

            do_GET = do_PUT = do_POST

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def _read_body(self, h):
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                n = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += h.rfile.read(n)
                h.rfile.readline()
        return h.rfile.read(int(h.headers.get("Content-Length") or 0))

    def _handle(self, h):
        t = time.monotonic()
        body = self._read_body(h)
        headers = {k.lower(): v for k, v in h.headers.items()}
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        wid = headers.get("webhook-id") or (doc.get("id") if isinstance(doc, dict) else None)
        with self.cond:
            key = (h.path, wid)
            self.counts[key] = self.counts.get(key, 0) + 1
            req = {"t": t, "wall": time.time(), "method": h.command, "path": h.path, "headers": headers,
                   "body": body, "doc": doc, "id": wid, "n": self.counts[key], "status": None, "answered": None,
                   "index": len(self.reqs)}
            self.reqs.append(req)
            self.inflight.add(req["index"])
            self.cond.notify_all()
        act = (self.behave(req) if self.behave else None) or {}
        status = act.get("status", 200)
        if act.get("hang"):
            self.released.wait(act["hang"])
            status = act.get("status", 504)  # the client gave up long ago
        elif act.get("delay"):
            time.sleep(act["delay"])  # a slow receiver
        ok = True
        try:
            data = b'{"ok":true}' if 200 <= status < 300 else b'{"error":"test"}'
            h.send_response(status)
            for k, v in act.get("headers", {}).items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            ok = False
            h.close_connection = True
        with self.cond:
            req["status"] = status
            req["answered"] = time.monotonic() if ok else None
            self.inflight.discard(req["index"])
            self.cond.notify_all()

    def snapshot(self, path=None):
        with self.cond:
            return [dict(r) for r in self.reqs if path is None or r["path"] == path]

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def ok_ids(reqs):
    """The event ids of the requests answered 2xx, in arrival order."""
    return [r["doc"]["event"]["eventId"] for r in reqs if r["status"] is not None and 200 <= r["status"] < 300]


def arrival_ids(reqs):
    return [r["doc"]["event"]["eventId"] if isinstance(r["doc"], dict) and "event" in r["doc"] else None
            for r in reqs]


# ---------------------------------------------------------------------------------------------
# an SMTP server that records every transaction

class Sink:
    """A real SMTP server (aiosmtpd) on a loopback port. Every transaction (from MAIL FROM on) is recorded
    in `tries` (n: its number from 1; mail_from, rcpts, stage "RCPT" or "DATA" it ended at, the reply code,
    at DATA the message parsed (msg), its raw bytes, its Message-ID (mid) and the eventId it is about (eid)).
    Accepted messages are also in `mails`. `behave(stage, tx)` may answer a stage (RCPT, DATA) with a reply
    such as "451 4.3.0 try later" instead of accepting. With `auth` = (user, password) the server demands
    AUTH (offered without TLS here) and records every attempt in `auths`."""

    def __init__(self, behave=None, port=None, auth=None):
        if aiosmtpd is None:
            raise AssertionError("the email tests need aiosmtpd: apt-get install python3-aiosmtpd (tools/setup.sh)")
        self.behave = behave
        self.cond = threading.Condition()
        self.tries, self.mails, self.auths = [], [], []
        self.port = port or fx.free_port()
        sink = self

        class Handler:
            async def handle_MAIL(self, server, session, envelope, address, options):
                with sink.cond:
                    tx = {"n": len(sink.tries) + 1, "t": time.monotonic(), "wall": time.time(), "mail_from": address,
                          "rcpts": [], "stage": "MAIL", "code": None, "auth": session.authenticated}
                    sink.tries.append(tx)
                    session.tower_tx = tx
                    sink.cond.notify_all()
                envelope.mail_from = address
                return "250 OK"

            async def handle_RCPT(self, server, session, envelope, address, options):
                tx = session.tower_tx
                tx["rcpts"].append(address)
                reply = sink.behave("RCPT", tx) if sink.behave else None
                if reply:
                    sink._end(tx, "RCPT", reply)
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                tx = session.tower_tx
                raw = envelope.original_content or envelope.content
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                mid = str(msg.get("Message-ID", ""))
                m = re.match(r"<(.*)\.[A-Za-z0-9_-]+@tower>$", mid)
                tx.update(raw=raw, msg=msg, mid=mid, eid=m.group(1) if m else None,
                          envelope_rcpts=list(envelope.rcpt_tos))
                with sink.cond:
                    tx["k"] = sum(1 for x in sink.tries if x.get("mid") == mid)
                reply = (sink.behave("DATA", tx) if sink.behave else None) or "250 Message accepted"
                sink._end(tx, "DATA", reply)
                return reply

        def authenticator(server, session, envelope, mechanism, data):
            ok = (data.login.decode(), data.password.decode()) == tuple(auth)
            with sink.cond:
                sink.auths.append((mechanism, data.login.decode(), data.password.decode(), ok))
            return aiosmtpd.smtp.AuthResult(success=ok)

        kw = {}
        if auth:
            kw = dict(auth_required=True, auth_require_tls=False, authenticator=authenticator)
        self.controller = aiosmtpd.controller.Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                                         ready_timeout=fx.tmo(10), **kw)
        self.started = False

    def _end(self, tx, stage, reply):
        with self.cond:
            tx["stage"], tx["code"] = stage, int(reply[:3])
            if stage == "DATA" and tx["code"] == 250:
                self.mails.append(tx)
            self.cond.notify_all()

    def start(self):
        self.controller.start()
        self.started = True
        return self

    def url(self, scheme="smtp"):
        return "%s://127.0.0.1:%d" % (scheme, self.port)

    def snapshot(self):
        with self.cond:
            return [dict(t) for t in self.tries]

    def delivered(self):
        with self.cond:
            return [t["eid"] for t in self.mails]

    def close(self):
        if self.started:
            self.started = False
            self.controller.stop()


# ---------------------------------------------------------------------------------------------
# `towerd relay` as a child process

class Relay:
    def __init__(self, test, conf, state, env=None, name="relay"):
        self.test, self.conf, self.state, self.env = test, conf, state, env or {}
        self.log_path = os.path.join(test.root, name + ".log")
        self.proc = None
        self.starts = 0

    def argv(self, *extra):
        return [TOWERD, "relay", "--nats", self.test.nats.url, "--relay", self.conf, "--state", self.state] + list(extra)

    def start(self):
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(("\n==== start %d\n" % self.starts).encode())
        logf.flush()
        self.proc = fx.spawn(self.argv(), stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=self.test.t.env(self.env))
        logf.close()
        self.t0 = time.monotonic()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20, sig=signal.SIGTERM):
        """SIGTERM (or sig): the exit code (fails if it does not exit in time)."""
        p = self.proc
        if p.poll() is None:
            p.send_signal(sig)
        try:
            rc = p.wait(timeout=fx.tmo(timeout))
        except subprocess.TimeoutExpired:
            stacks = fx.thread_stacks(p.pid)  # where it hangs, for the report
            p.kill()
            p.wait(timeout=10)
            fx.reap(p)
            self.proc = None
            raise AssertionError("the relay did not exit within %.0fs of signal %d\n%s\n--- its threads:\n%s"
                                 % (fx.tmo(timeout), sig, self.log(), stacks))
        fx.reap(p)
        self.proc = None
        return rc

    def kill9(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        fx.reap(p)
        self.proc = None

    def log(self, n=60):
        return "--- relay log:\n" + fx.tail(self.log_path, n)


# ---------------------------------------------------------------------------------------------
# the tests

class RelayTest(unittest.TestCase):
    maxDiff = 6000

    def setUp(self):
        self.root = fx.make_tempdir("tower-it-relay-%s-" % self._testMethodName[5:20])
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self.nc = fx.NatsClient(self.nats.port)
        self.addCleanup(self.nc.close)
        self.state = os.path.join(self.root, "state")
        self.relays = []
        self.receivers = []
        self.sinks = []
        self.npub = 0

    def tearDown(self):
        for r in self.relays:
            r.kill9()
        for rc in self.receivers:
            rc.close()
        for sk in self.sinks:
            sk.close()
        for r in self.relays:
            self.assertNotRegex(fx.tail(r.log_path, 2000), r"(AddressSanitizer|LeakSanitizer|runtime error:)",
                                r.log(200))

    # -- helpers
    def receiver(self, behave=None):
        rc = Receiver(behave)
        self.receivers.append(rc)
        return rc

    def sink(self, behave=None, port=None, auth=None, start=True):
        sk = Sink(behave, port, auth)
        self.sinks.append(sk)
        return sk.start() if start else sk

    def check_mail(self, tx, dest, published, seqs, prefix="[tower]", sender="tower@example.com",
                   rcpts=("ops@example.com", "other@example.com")):
        """An accepted mail as docs/outbound.md says; published maps eventId -> the event as published."""
        msg = tx["msg"]
        eid = tx["eid"]
        self.assertIn(eid, published, "a mail about an event we did not publish: %s" % tx["mid"])
        ev = published[eid]
        typ = next(k for k in ev if isinstance(ev[k], dict) and k != "source")
        self.assertEqual(tx["mail_from"], sender, "the envelope's sender")
        self.assertEqual(tx["envelope_rcpts"], list(rcpts), "the envelope's recipients")
        self.assertEqual(msg["From"].addresses[0].addr_spec, sender)
        self.assertEqual([a.addr_spec for a in msg["To"].addresses], list(rcpts))
        what, ref = next((w, ev[k]) for w, k in (("shipment", "shipmentId"), ("order", "orderId"), ("route", "routeId"))
                         if k in ev)
        self.assertEqual(str(msg["Subject"]), "%s %s %s %s" % (prefix, typ, what, ref))
        self.assertEqual(tx["mid"], "<%s.%s@tower>" % (eid, dest), "Message-ID from the idempotency id")
        when = email.utils.parsedate_to_datetime(str(msg["Date"])).timestamp()
        self.assertLess(abs(when - tx["wall"]), 120, "Date is not now: %s" % msg["Date"])
        self.assertEqual(msg.get_content_type(), "text/plain")
        self.assertEqual(msg.get_content_charset(), "utf-8")
        self.assertEqual(len(msg.get_all("Message-ID")), 1)
        body = msg.get_content()
        self.assertIn(eid, body.splitlines()[2], "the facts name the event: %r" % body[:300])
        self.assertIn("sequence     %d" % seqs[eid], body)
        # The event as canonical JSON, on the line after the marker: the published one.
        lines = body.splitlines()
        self.assertIn("The event (canonical JSON):", lines, repr(body))
        i = lines.index("The event (canonical JSON):")
        doc = json.loads(lines[i + 1])
        self.assertEqual(doc["eventId"], eid)
        self.assertIn(typ, doc, doc)
        for k in ("orderId", "shipmentId", "routeId", "warehouseId", "carrierId"):
            self.assertEqual(doc.get(k), ev.get(k), "%s in %s" % (k, doc))
        self.assertEqual(doc["source"]["system"], ev["source"]["system"])
        self.assertEqual(doc["occurredAt"][:19], ev["occurredAt"][:19])
        self.assertEqual(doc[typ], ev[typ], doc)
        return doc

    def publish(self, events):
        """Publish with `towerd publish`; returns [(seq, eventId)] of the whole stream."""
        self.npub += 1
        path = os.path.join(self.root, "events-%d.ndjson" % self.npub)
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        r = self.t.publish(path, check=0)
        self.assertEqual((r.summary or {}).get("stored"), len(events), r.describe())
        return fx.stream_event_ids(self.nc, STREAM)

    def last_seq(self):
        info = self.nc.stream_info(STREAM)
        return info["state"]["last_seq"] if info else 0

    def relay_file(self, dests, name="relay.ini"):
        """dests: [(NAME, {key: value})] in order; returns the file's path. These tests check one request at a
        time in stream order: a webhook or slack event destination gets lanes = 1 unless the test gives lanes
        (test_relay_lanes.py checks the default, lanes = 8)."""
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            for n, kv in dests:
                if kv.get("kind", "webhook") in ("webhook", "slack") and "events" in kv and "batch" not in kv:
                    kv = dict(kv, lanes=kv.get("lanes", 1))
                f.write("[destination %s]\n" % n)
                for k, v in kv.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")
        return path

    def secret_file(self, secret, name="secret"):
        path = os.path.join(self.root, name)
        with open(path, "w") as f:
            f.write(secret + "\n")
        os.chmod(path, 0o600)
        return path

    def relay(self, conf, env=None, name="relay", state=None):
        r = Relay(self, conf, state or self.state, env, name)
        self.relays.append(r)
        return r

    def checkpoint(self, dest, state=None):
        try:
            with open(os.path.join(state or self.state, dest + ".seq")) as f:
                m = re.match(r"\s*(\d+)", f.read())
                return int(m.group(1)) if m else None
        except OSError:
            return None

    def status(self, dest, state=None):
        try:
            with open(os.path.join(state or self.state, dest + ".status.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def dead_letters(self, dest, state=None):
        try:
            with open(os.path.join(state or self.state, dest + ".dead.ndjson")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def wait(self, pred, timeout, what, diag=None, relays=None):
        """Poll pred until it is true (returns its value); fails after the (scaled) timeout or when a
        relay of ours exits."""
        deadline = time.monotonic() + fx.tmo(timeout)
        while True:
            v = pred()
            if v:
                return v
            for r in (self.relays if relays is None else relays):
                if r.proc is not None and r.proc.poll() is not None:
                    self.fail("the relay exited with %s while we waited for %s\n%s"
                              % (r.proc.returncode, what, r.log(100)))
            if time.monotonic() > deadline:
                self.fail("%s: not within %.1fs%s\n%s" % (what, fx.tmo(timeout), (": " + diag()) if diag else "",
                                                         "\n".join(r.log(60) for r in self.relays)))
            time.sleep(0.02)

    def wait_status(self, dest, state=None, timeout=5, **want):
        """Wait until STATE/DEST.status.json has these values (it is rewritten at least every second)."""
        def ok():
            s = self.status(dest, state)
            return s if s and all(s.get(k) == v for k, v in want.items()) else None
        return self.wait(ok, timeout, "%s's status.json with %s" % (dest, want), lambda: str(self.status(dest, state)))

    def wait_checkpoints(self, dests, seq, timeout=20, state=None):
        self.wait(lambda: all(self.checkpoint(d, state) == seq for d in dests), timeout,
                  "checkpoints of %s at the stream's last sequence %d" % (dests, seq),
                  lambda: "checkpoints %s, status %s" % ({d: self.checkpoint(d, state) for d in dests},
                                                         {d: self.status(d, state) for d in dests}))

    def check_payload(self, req, dest, seqs, etype=None, secret=None):
        """A webhook request as docs/outbound.md says; seqs maps eventId -> stream sequence."""
        h, doc = req["headers"], req["doc"]
        self.assertEqual(req["method"], "POST", req)
        self.assertTrue(h.get("content-type", "").startswith("application/json"), h)
        self.assertIsInstance(doc, dict, "the body is no JSON object: %r" % req["body"][:300])
        ev = doc.get("event")
        self.assertIsInstance(ev, dict, doc)
        eid = ev.get("eventId")
        self.assertIn(eid, seqs, "an event we did not publish: %s" % doc)
        want_id = "%s.%s" % (eid, dest)
        self.assertEqual((doc.get("version"), doc.get("id"), doc.get("destination"), doc.get("seq")),
                         (1, want_id, dest, seqs[eid]), doc)
        if etype:
            self.assertEqual(doc.get("type"), etype, doc)
        self.assertIn(doc.get("type"), ev, "the event's payload is named by type: %s" % doc)
        self.assertEqual(h.get("webhook-id"), want_id, h)
        ts = h.get("webhook-timestamp", "")
        self.assertRegex(ts, r"^\d+$", h)
        self.assertLess(abs(int(ts) - req["wall"]), 120, "webhook-timestamp is not now: %s" % ts)
        if secret:
            self.assertIn("webhook-signature", h, "a destination with a secret signs")
            self.assertTrue(signature_ok(secret, h, req["body"]),
                            "a bad signature: %s over %r" % (h.get("webhook-signature"), req["body"][:200]))
            self.assertFalse(signature_ok(new_secret(), h, req["body"]), "the signature check accepts any key")
        else:
            self.assertNotIn("webhook-signature", h, "a destination without a secret does not sign")

    # ---- 1
    def test_1_signed_delivery_in_order_with_filters(self):
        rc = self.receiver()
        s_good, s_env = new_secret(), new_secret()
        evs = [
            route("rd-1", 1, warehouseId="dc-1", carrierId="dhl"),
            event("dc-1", "deliveryCompleted", 2, shipmentId="SH1", warehouseId="dc-2", carrierId="dhl"),
            route("rd-2", 3, warehouseId="dc-2", carrierId="ups"),
            event("pod-1", "podCaptured", 4, shipmentId="SH1", warehouseId="dc-2", carrierId="dhl"),
            event("da-1", "deliveryAttempted", 5, shipmentId="SH2", warehouseId="dc-1", carrierId="ups"),
            route("rd-3", 6, warehouseId="dc-1", carrierId="ups"),
            event("dc-2", "deliveryCompleted", 7, shipmentId="SH2", warehouseId="dc-1", carrierId="ups"),
            route("rd-4", 8, warehouseId="dc-2", carrierId="dhl"),
            event("pod-2", "podCaptured", 9, shipmentId="SH3", warehouseId="dc-1", carrierId="dhl"),
            route("rd-5", 10, warehouseId="dc-1", carrierId="ups"),
        ]
        stream = self.publish(evs)
        seqs = {eid: s for s, eid in stream}
        last = self.last_seq()
        self.assertEqual(len(stream), len(evs))
        fast = {"timeout": "2s", "backoff_min": "100ms", "backoff_max": "500ms"}
        conf = self.relay_file([
            ("good", dict(url=rc.url("/hooks/good?x=1"), secret_file=self.secret_file(s_good), events="routeDispatched",
                          **fast)),
            ("dc2", dict(url=rc.url("/dc2"), secret_env="RELAY_IT_SECRET", events="*", warehouses="dc-2", **fast)),
            ("dhl", dict(url=rc.url("/dhl"), events="deliveryCompleted, podCaptured", carriers="dhl", **fast)),
        ])
        r = self.relay(conf, env={"RELAY_IT_SECRET": s_env}).start()

        def typ(e):
            return next(k for k in e if k[0].islower() and isinstance(e[k], dict) and k != "source")

        want = {
            "/hooks/good?x=1": [e["eventId"] for e in evs if typ(e) == "routeDispatched"],
            "/dc2": [e["eventId"] for e in evs if e.get("warehouseId") == "dc-2"],
            "/dhl": [e["eventId"] for e in evs if typ(e) in ("deliveryCompleted", "podCaptured")
                     and e.get("carrierId") == "dhl"],
        }
        self.wait_checkpoints(["good", "dc2", "dhl"], last)
        got = {p: arrival_ids(rc.snapshot(p)) for p in want}
        self.assertEqual(got, want, "each destination gets each of its events once, in stream order, and no other")
        self.assertEqual(len(rc.snapshot()), sum(len(v) for v in want.values()), "requests to unknown paths")
        types = {e["eventId"]: typ(e) for e in evs}
        for path, dest, secret in (("/hooks/good?x=1", "good", s_good), ("/dc2", "dc2", s_env), ("/dhl", "dhl", None)):
            reqs = rc.snapshot(path)
            for q in reqs:
                self.check_payload(q, dest, seqs, types[q["doc"]["event"]["eventId"]], secret)
            self.assertEqual([q["doc"]["seq"] for q in reqs], sorted(q["doc"]["seq"] for q in reqs))
        # The event is the published one, as canonical JSON.
        q = rc.snapshot("/hooks/good?x=1")[0]["doc"]["event"]
        self.assertEqual((q["eventId"], q["routeId"], q["source"]["system"], q["occurredAt"][:19]),
                         ("rd-1", "R1", "tms", "2026-11-27T10:00:01"), q)
        st = self.wait_status("good", destination="good", breaker="closed", delivered=5, attempts=5, failed=0, dead=0,
                              skipped=5, checkpoint=last, backlog=0)
        for k in ("destination", "breaker", "delivered", "attempts", "failed", "dead", "checkpoint", "backlog",
                  "lastError", "lastOkAt", "failingSince"):
            self.assertIn(k, st, st)
        self.assertTrue(st["lastOkAt"], st)
        self.wait_status("dhl", delivered=len(want["/dhl"]), dead=0, checkpoint=last)
        self.assertEqual(self.dead_letters("good"), [])

        # Stop (exit 0); more events; a restart delivers only those.
        self.assertEqual(r.stop(), 0, r.log())
        stream = self.publish([route("rd-6", 11, warehouseId="dc-2", carrierId="dhl"),
                               event("dc-3", "deliveryCompleted", 12, shipmentId="SH4", carrierId="ups")])
        seqs = {eid: s for s, eid in stream}
        last2 = self.last_seq()
        self.assertEqual(last2, last + 2)
        r.start()
        self.wait_checkpoints(["good", "dc2", "dhl"], last2)
        self.assertEqual(arrival_ids(rc.snapshot("/hooks/good?x=1")), want["/hooks/good?x=1"] + ["rd-6"],
                         "after a restart: only the new event, nothing delivered again")
        self.assertEqual(arrival_ids(rc.snapshot("/dc2")), want["/dc2"] + ["rd-6"])
        self.assertEqual(arrival_ids(rc.snapshot("/dhl")), want["/dhl"])
        self.check_payload(rc.snapshot("/hooks/good?x=1")[-1], "good", seqs, "routeDispatched", s_good)
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 2
    def test_2_retries_retry_after_and_refusals(self):
        script = {
            "/flaky": {"rt-1": [500, 500, 200], "rt-2": [408, 200]},
            "/limited": {"rt-1": [(429, {"Retry-After": "2"}), 200]},
            "/capped": {"rt-1": [(429, {"Retry-After": "60"}), 200]},
            "/rejects": {"rt-1": [400], "rt-3": [404]},
        }
        date_holder = {}

        def behave(req):
            eid = req["doc"]["event"]["eventId"]
            if req["path"] == "/limited" and eid == "rt-2" and req["n"] == 1:
                when = math.ceil(time.time()) + 3
                date_holder["when"] = when
                return {"status": 503, "headers": {"Retry-After": email.utils.formatdate(when, usegmt=True)}}
            seq = script.get(req["path"], {}).get(eid, [200])
            a = seq[min(req["n"], len(seq)) - 1]
            return {"status": a[0], "headers": a[1]} if isinstance(a, tuple) else {"status": a}

        rc = self.receiver(behave)
        stream = self.publish([route("rt-%d" % i, i) for i in (1, 2, 3)])
        seqs = {eid: s for s, eid in stream}
        last = self.last_seq()
        common = {"events": "routeDispatched", "timeout": "2s", "max_attempts": "6", "breaker_failures": "20"}
        conf = self.relay_file([
            ("flaky", dict(url=rc.url("/flaky"), backoff_min="500ms", backoff_max="4s", **common)),
            ("limited", dict(url=rc.url("/limited"), backoff_min="100ms", backoff_max="10s", **common)),
            ("capped", dict(url=rc.url("/capped"), backoff_min="100ms", backoff_max="1s", **common)),
            ("rejects", dict(url=rc.url("/rejects"), backoff_min="100ms", backoff_max="1s", **common)),
        ])
        r = self.relay(conf).start()
        self.wait_checkpoints(["flaky", "limited", "capped", "rejects"], last, timeout=30)

        # flaky: 500, 500, 200 then 408, 200 then 200; every attempt the same payload and id.
        fl = rc.snapshot("/flaky")
        self.assertEqual([(q["doc"]["event"]["eventId"], q["status"]) for q in fl],
                         [("rt-1", 500), ("rt-1", 500), ("rt-1", 200), ("rt-2", 408), ("rt-2", 200), ("rt-3", 200)])
        for q in fl:
            self.check_payload(q, "flaky", seqs, "routeDispatched")
        self.assertEqual(len({q["body"] for q in fl[:3]}), 1, "a retry sends the same body")
        g1, g2, g3 = fl[1]["t"] - fl[0]["answered"], fl[2]["t"] - fl[1]["answered"], fl[4]["t"] - fl[3]["answered"]
        fx.log("flaky gaps: %.3f %.3f (408: %.3f)" % (g1, g2, g3))
        slack = fx.tmo(0.4)
        self.assertGreaterEqual(g1, 0.45, "the first retry waits backoff_min (500ms)")
        self.assertGreaterEqual(g2, 0.45, "the second retry waits at least backoff_min")
        self.assertLessEqual(g1, 0.5 + slack, "the first retry's delay is at most backoff_min")
        self.assertLessEqual(g2, 1.0 + slack, "the second retry's delay is at most 2 x backoff_min")
        self.assertGreaterEqual(g2, g1 - 0.15, "the gaps do not shrink")
        self.assertGreaterEqual(g3, 0.45, "408 is retried after a backoff")
        self.wait_status("flaky", delivered=3, attempts=6, failed=3, dead=0, checkpoint=last, breaker="closed")

        # limited: 429 Retry-After: 2 -> the next attempt >= 2 s later; 503 with an HTTP date.
        li = rc.snapshot("/limited")
        self.assertEqual([(q["doc"]["event"]["eventId"], q["status"]) for q in li],
                         [("rt-1", 429), ("rt-1", 200), ("rt-2", 503), ("rt-2", 200), ("rt-3", 200)])
        ga = li[1]["t"] - li[0]["answered"]
        gd = li[3]["wall"] - date_holder["when"]
        fx.log("limited gaps: Retry-After 2: %.3f; HTTP date: retried %.3fs after the date" % (ga, gd))
        self.assertGreaterEqual(ga, 1.95, "Retry-After: 2 honoured on 429")
        self.assertLessEqual(ga, 2.0 + fx.tmo(1.5), "Retry-After: 2 means about 2 s, not backoff_max")
        self.assertGreaterEqual(gd, -1.05, "Retry-After as an HTTP date honoured on 503 (second resolution)")
        self.assertLessEqual(gd, fx.tmo(1.5), "retried soon after the HTTP date")

        # capped: Retry-After: 60 is capped at backoff_max = 1s.
        ca = rc.snapshot("/capped")
        self.assertEqual([(q["doc"]["event"]["eventId"], q["status"]) for q in ca],
                         [("rt-1", 429), ("rt-1", 200), ("rt-2", 200), ("rt-3", 200)])
        gc = ca[1]["t"] - ca[0]["answered"]
        fx.log("capped gap: %.3f" % gc)
        self.assertLessEqual(gc, 1.0 + fx.tmo(0.6), "Retry-After capped at backoff_max")

        # rejects: 400 and 404 are dead letters at once, the next event is delivered.
        rj = rc.snapshot("/rejects")
        self.assertEqual([(q["doc"]["event"]["eventId"], q["status"]) for q in rj],
                         [("rt-1", 400), ("rt-2", 200), ("rt-3", 404)], "no retry of a refusal")
        dead = self.dead_letters("rejects")
        self.assertEqual([(d.get("eventId"), d.get("seq"), d.get("type"), d.get("destination")) for d in dead],
                         [("rt-1", seqs["rt-1"], "routeDispatched", "rejects"),
                          ("rt-3", seqs["rt-3"], "routeDispatched", "rejects")], dead)
        for d, code in zip(dead, (400, 404)):
            self.assertTrue(d.get("deadAt"), d)
            self.assertEqual([a.get("status") for a in d.get("attempts", [])], [code], d)
            self.assertIn("at", d["attempts"][0], d)
            self.assertIn("error", d["attempts"][0], d)
        self.wait_status("rejects", delivered=1, attempts=3, dead=2, checkpoint=last)
        for d in ("flaky", "limited", "capped"):
            self.assertEqual(self.dead_letters(d), [], d)
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 3
    def test_3_dead_letter_then_redrive(self):
        healthy = threading.Event()

        def behave(req):
            if req["doc"]["event"]["eventId"] == "rd-2" and not healthy.is_set():
                return {"status": 503}
            return {"status": 200}

        rc = self.receiver(behave)
        secret = new_secret()
        stream = self.publish([route("rd-%d" % i, i) for i in (1, 2, 3)])
        seqs = {eid: s for s, eid in stream}
        last = self.last_seq()
        conf = self.relay_file([("flaky", dict(url=rc.url("/in"), secret_file=self.secret_file(secret),
                                               events="routeDispatched", max_attempts="3", timeout="2s",
                                               backoff_min="100ms", backoff_max="200ms", breaker_failures="10"))])
        r = self.relay(conf).start()
        self.wait_checkpoints(["flaky"], last)
        reqs = rc.snapshot()
        self.assertEqual([(q["doc"]["event"]["eventId"], q["status"]) for q in reqs],
                         [("rd-1", 200), ("rd-2", 503), ("rd-2", 503), ("rd-2", 503), ("rd-3", 200)],
                         "max_attempts 3, then the next event")
        dead = self.dead_letters("flaky")
        self.assertEqual(len(dead), 1, dead)
        d = dead[0]
        self.assertEqual((d.get("seq"), d.get("eventId"), d.get("type"), d.get("destination")),
                         (seqs["rd-2"], "rd-2", "routeDispatched", "flaky"), d)
        self.assertTrue(d.get("deadAt"), d)
        self.assertEqual([a.get("status") for a in d.get("attempts", [])], [503, 503, 503], d)
        for a in d["attempts"]:
            self.assertTrue(a.get("at"), d)
            self.assertIn("error", a, d)
        self.wait_status("flaky", delivered=2, attempts=5, failed=3, dead=1, checkpoint=last)
        self.assertEqual(r.stop(), 0, r.log())

        # Redrive while the receiver still refuses: exit 1, the letter kept.
        n0 = len(rc.snapshot())
        res = self.t.run(*r.argv("--redrive", "flaky")[1:], timeout=60)
        self.assertEqual(res.rc, 1, res.describe())
        after = rc.snapshot()[n0:]
        self.assertGreaterEqual(len(after), 1, "the redrive tried it: " + res.describe())
        self.assertEqual({q["doc"]["event"]["eventId"] for q in after}, {"rd-2"}, "only the dead letter is redriven")
        self.assertEqual([x.get("eventId") for x in self.dead_letters("flaky")], ["rd-2"],
                         "a letter that failed again stays (once)")

        # Healed: exit 0, delivered with the same id, signed; the letter is gone.
        healthy.set()
        n1 = len(rc.snapshot())
        res = self.t.run(*r.argv("--redrive", "flaky")[1:], timeout=60)
        self.assertEqual(res.rc, 0, res.describe())
        self.assertTrue("rd-2" in res.out + res.err or re.search(r"\b%d\b" % seqs["rd-2"], res.out + res.err),
                        "the redrive says what it did: " + res.describe())
        after = rc.snapshot()[n1:]
        self.assertEqual([(q["doc"]["event"]["eventId"], q["status"]) for q in after], [("rd-2", 200)])
        self.check_payload(after[0], "flaky", seqs, "routeDispatched", secret)
        self.assertEqual(self.dead_letters("flaky"), [], "the delivered letter is removed")
        # Nothing left: a redrive does nothing and succeeds.
        res = self.t.run(*r.argv("--redrive", "flaky")[1:], timeout=60)
        self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(len(rc.snapshot()), n1 + 1, "nothing delivered by an empty redrive")

    # ---- 4
    def test_4_breaker_opens_probes_and_closes(self):
        healthy = threading.Event()
        rc = self.receiver(lambda req: {"status": 200} if healthy.is_set() else {"hang": 15, "status": 504})
        stream = self.publish([route("br-%d" % i, i) for i in (1, 2, 3, 4)])
        ids = [eid for _, eid in stream]
        last = self.last_seq()
        conf = self.relay_file([("slow", dict(url=rc.url("/slow"), events="routeDispatched", timeout="500ms",
                                              breaker_failures="3", breaker_cooldown="2s", max_attempts="100",
                                              backoff_min="100ms", backoff_max="200ms"))])
        # A watcher of status.json's breaker field (every change, with its time).
        seen, stop = [], threading.Event()

        def watch():
            prev = None
            while not stop.is_set():
                s = self.status("slow")
                b = s.get("breaker") if s else None
                if b != prev and b is not None:
                    seen.append((time.monotonic(), b, s))
                    prev = b
                time.sleep(0.01)

        w = threading.Thread(target=watch, daemon=True)
        w.start()
        self.addCleanup(stop.set)

        def states():
            return [b for _, b, _ in seen]

        r = self.relay(conf).start()
        self.wait(lambda: "open" in states(), 15, "status.json breaker open", lambda: str(seen))
        t_open = next(t for t, b, _ in seen if b == "open")
        reqs = rc.snapshot()
        self.assertEqual(len(reqs), 3, "breaker_failures 3 failed attempts open it")
        # (The snapshot written at the change itself may precede the failure's count: see the one after.)
        st = self.wait(lambda: (lambda s: s if s and s.get("breaker") == "open" and s.get("failed", 0) >= 3 else None)(
            self.status("slow")), 1.5, "status.json: open with 3 failed attempts", lambda: str(self.status("slow")))
        self.assertTrue(st["lastError"], st)
        self.assertTrue(st["failingSince"], st)
        self.assertEqual(st["delivered"], 0, st)
        opened_at = reqs[2]["t"] + 0.5  # the third attempt timed out
        # The half-open probe: one attempt, after the cooldown; status.json says half-open meanwhile.
        self.wait(lambda: len(rc.snapshot()) >= 4, 6, "the half-open probe", lambda: str(seen))
        reqs = rc.snapshot()
        probe = reqs[3]
        fx.log("breaker: opened ~%.2f (seen %.2f), probe at +%.2fs" % (opened_at, t_open, probe["t"] - opened_at))
        self.assertGreaterEqual(probe["t"] - opened_at, 1.8, "no attempt while open (breaker_cooldown 2s)")
        self.assertLessEqual(probe["t"] - opened_at, 2.0 + fx.tmo(1.5), "a probe soon after the cooldown")
        self.wait(lambda: "half-open" in states(), 3, "status.json breaker half-open during the probe",
                  lambda: str(seen))
        # The probe fails (it times out): open again; then healed, the next probe closes it.
        self.wait(lambda: states()[-1] == "open" and "half-open" in states(), 5, "breaker open again after the probe",
                  lambda: str(seen))
        self.assertEqual(len(rc.snapshot()), 4, "one probe only")
        healthy.set()
        rc.release()
        self.wait(lambda: len(rc.snapshot()) >= 5, 6, "the second probe", lambda: str(seen))
        second = rc.snapshot()[4]
        self.assertGreaterEqual(second["t"] - (probe["t"] + 0.5), 1.8, "no attempt while open again")
        self.wait_checkpoints(["slow"], last)
        self.wait(lambda: states()[-1] == "closed", 3, "status.json breaker closed", lambda: str(seen))
        reqs = rc.snapshot()
        self.assertEqual([q["doc"]["event"]["eventId"] for q in reqs[:4]], ["br-1"] * 4,
                         "the first event waits for the breaker")
        self.assertEqual(arrival_ids(reqs[4:]), ids, "after healing: every event once, in order, nothing lost")
        self.assertEqual(ok_ids(reqs[4:]), ids)
        st = self.wait_status("slow", delivered=4, breaker="closed", dead=0, checkpoint=last, attempts=8, failed=4)
        self.assertTrue(st["lastOkAt"], st)
        self.assertEqual(self.dead_letters("slow"), [])
        stop.set()
        self.assertEqual(r.stop(), 0, r.log())
        self.assertIn("open", fx.tail(r.log_path, 200).lower(), "the log says the breaker opened")

    # ---- 5
    def test_5_kill9_with_a_delivery_in_flight(self):
        rc = self.receiver(lambda req: {"status": 200, "delay": 0.4})
        secret = new_secret()
        stream = self.publish([route("k-%d" % i, i) for i in range(1, 9)])
        seqs = {eid: s for s, eid in stream}
        ids = [eid for _, eid in stream]
        last = self.last_seq()
        conf = self.relay_file([("hook", dict(url=rc.url("/k"), secret_file=self.secret_file(secret),
                                              events="routeDispatched", timeout="5s", backoff_min="100ms",
                                              backoff_max="300ms"))])
        r = self.relay(conf).start()

        def in_flight():
            with rc.cond:
                done = [q for q in rc.reqs if q["answered"] is not None]
                if len(done) >= 2 and rc.inflight:
                    return True
            return False

        self.wait(in_flight, 15, "two deliveries done and a third in flight")
        r.kill9()
        t_kill = time.monotonic()
        with rc.cond:
            flying = [dict(q) for q in rc.reqs if q["index"] in rc.inflight]
        self.assertEqual(len(flying), 1, "one delivery at a time")
        n_before = len(rc.snapshot())
        ck = self.checkpoint("hook")
        fx.log("killed with %s in flight, %d requests so far, checkpoint %s" % (flying[0]["id"], n_before, ck))
        # STATE/NAME.seq holds the last sequence done: the event before the one in flight is done.
        self.assertEqual(ck, seqs[flying[0]["doc"]["event"]["eventId"]] - 1,
                         "the checkpoint when the delivery of seq %d is in flight" % flying[0]["doc"]["seq"])
        r.start()
        self.wait_checkpoints(["hook"], last, timeout=30)
        reqs = rc.snapshot()
        for q in reqs:
            self.check_payload(q, "hook", seqs, "routeDispatched", secret)
        got = arrival_ids(reqs)
        self.assertEqual(set(ok_ids(reqs)), set(ids), "every event delivered: %s" % got)
        first = []
        for e in got:
            if e not in first:
                first.append(e)
        self.assertEqual(first, ids, "first deliveries in stream order")
        fe = flying[0]["doc"]["event"]["eventId"]
        answered_before_kill = [q for q in reqs if q["id"] == flying[0]["id"] and q["answered"] is not None
                                and q["answered"] < t_kill]
        if not answered_before_kill:
            self.assertIn(fe, got[n_before:], "the event in flight at the kill is delivered after the restart")
        # Any duplicate: the same webhook-id and the same body.
        by_id = {}
        for q in reqs:
            by_id.setdefault(q["doc"]["event"]["eventId"], []).append(q)
        dups = {e: qs for e, qs in by_id.items() if len(qs) > 1}
        fx.log("duplicates after kill -9: %s" % {e: len(qs) for e, qs in dups.items()})
        for e, qs in dups.items():
            self.assertEqual({q["headers"].get("webhook-id") for q in qs}, {e + ".hook"})
            self.assertEqual(len({q["body"] for q in qs}), 1, "a repeated delivery carries the same body")
        # Repeats come only from the delivery in flight and at most one answered but not yet checkpointed.
        self.assertLessEqual(len(dups), 2, "more repeats than an in-flight delivery explains: %s" % got)
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 6
    def test_6_a_dead_destination_costs_another_nothing(self):
        rc = self.receiver()
        closed = fx.free_port()
        stream = self.publish([route("iso-%d" % i, i) for i in range(1, 11)])
        ids = [eid for _, eid in stream]
        last = self.last_seq()
        conf = self.relay_file([
            ("down", dict(url="http://127.0.0.1:%d/nobody" % closed, events="*", timeout="500ms",
                          max_attempts="1000", backoff_min="100ms", backoff_max="300ms", breaker_cooldown="1s")),
            ("good", dict(url=rc.url("/good"), events="*", timeout="2s")),
        ])
        r = self.relay(conf).start()
        self.wait(lambda: len(ok_ids(rc.snapshot())) == len(ids), 8, "every event at the good destination",
                  lambda: str(arrival_ids(rc.snapshot())))
        took = time.monotonic() - r.t0
        fx.log("good destination: %d events %.2fs after the start" % (len(ids), took))
        self.assertEqual(arrival_ids(rc.snapshot()), ids, "once each, in order")
        self.wait_checkpoints(["good"], last)
        self.assertIn(self.checkpoint("down"), (None, 0), "the dead destination has done nothing")
        st = self.wait(lambda: (lambda s: s if s and s.get("breaker") in ("open", "half-open") else None)(
            self.status("down")), 10, "the dead destination's breaker opens", lambda: str(self.status("down")))
        self.assertGreaterEqual(st["failed"], 5, st)
        self.assertEqual((st["delivered"], st["dead"]), (0, 0), st)
        self.assertTrue(st["lastError"], st)
        self.assertTrue(st["failingSince"], st)
        self.wait_status("down", backlog=last, delivered=0, dead=0)
        self.assertEqual(self.dead_letters("down"), [])
        t0 = time.monotonic()
        self.assertEqual(r.stop(timeout=10), 0, r.log())
        self.assertLess(time.monotonic() - t0, fx.tmo(5), "SIGTERM stops a relay retrying a dead destination promptly")

    # ---- 7
    def test_7_slack(self):
        rc = self.receiver()
        self.publish([route("rd-1", 1),
                      event("dlv-1", "deliveryCompleted", 2, orderId="O-5", shipmentId="SH-5"),
                      event("pod-1", "podCaptured", 3, shipmentId="SH-6")])
        last = self.last_seq()
        conf = self.relay_file([("ops-channel", dict(url=rc.url("/services/T0/B0/XX"), kind="slack",
                                                     events="deliveryCompleted,podCaptured"))])
        r = self.relay(conf).start()
        self.wait_checkpoints(["ops-channel"], last)
        reqs = rc.snapshot()
        self.assertEqual(len(reqs), 2, [q["body"] for q in reqs])
        for q, typ, refs in zip(reqs, ("deliveryCompleted", "podCaptured"), (("O-5", "SH-5"), ("SH-6",))):
            self.assertEqual(q["method"], "POST")
            self.assertTrue(q["headers"].get("content-type", "").startswith("application/json"), q["headers"])
            doc = q["doc"]
            self.assertIsInstance(doc, dict, q["body"])
            self.assertIn("text", doc, doc)
            self.assertIsInstance(doc["text"], str, doc)
            self.assertNotIn("event", doc, "a Slack body is not the webhook payload")
            self.assertIn(letters(typ), letters(doc["text"]), "the text names the event type: %r" % doc["text"])
            self.assertTrue(any(ref in doc["text"] for ref in refs),
                            "the text names the order or the shipment %s: %r" % (refs, doc["text"]))
            self.assertNotIn("webhook-signature", q["headers"])
        self.assertEqual(r.stop(sig=signal.SIGINT), 0, "SIGINT stops it with exit 0\n" + r.log())

    # ---- 8
    def test_8_up_runs_the_relay(self):
        rc = self.receiver()
        secret = new_secret()
        conf = self.relay_file([("ops", dict(url=rc.url("/up"), secret_file=self.secret_file(secret),
                                             events="routeDispatched", timeout="2s"))])
        data = os.path.join(self.root, "data")
        up = fx.Up(self.t, self.root, data, ["--seed", "7", "--orders", "30", "--rate", "1500", "--warp", "10000",
                                            "--web", self.root, "--supervisor-rate", "0", "--progress", "0",
                                            "--relay", conf])
        self.addCleanup(up.close)
        up.start()
        self.wait(lambda: len(ok_ids(rc.snapshot())) >= 2, 60, "routeDispatched events from up's route planner",
                  lambda: up.logs())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def metric(text, name):
            m = re.search(r'^%s\{[^}]*destination="ops"[^}]*\}\s+([0-9.eE+-]+)\s*$' % name, text, re.M)
            return float(m.group(1)) if m else None

        agreed = {}

        def metrics_agree():
            with opener.open(up.base + "/metrics", timeout=10) as resp:
                text = resp.read().decode()
            n = len(ok_ids(rc.snapshot()))
            agreed["text"] = text
            return metric(text, "tower_relay_delivered_total") == n and n > 0

        self.wait(metrics_agree, 20, "/metrics tower_relay_delivered_total{destination=\"ops\"} = the deliveries",
                  lambda: "\n".join(l for l in agreed.get("text", "").splitlines() if "relay" in l))
        text = agreed["text"]
        self.assertEqual(metric(text, "tower_relay_breaker_state"), 0, text)
        for name in ("tower_relay_attempts_total", "tower_relay_dead_letters_total", "tower_relay_checkpoint_sequence",
                     "tower_relay_backlog_events", "tower_relay_failed_attempts_total"):
            self.assertIsNotNone(metric(text, name), "%s missing" % name)
        reqs = rc.snapshot()
        for q in reqs:
            self.assertEqual(q["doc"].get("type"), "routeDispatched", q["doc"])
            self.assertIn("routeId", q["doc"]["event"], q["doc"])
            self.assertEqual(q["headers"].get("webhook-id"), q["doc"]["event"]["eventId"] + ".ops")
            self.assertTrue(signature_ok(secret, q["headers"], q["body"]), q["headers"])
        ids = [q["doc"]["event"]["eventId"] for q in reqs]
        self.assertEqual(len(ids), len(set(ids)), "each once: %s" % ids)
        seqs = [q["doc"]["seq"] for q in reqs]
        self.assertEqual(seqs, sorted(seqs), "in stream order")
        relay_dir = os.path.join(data, "relay")
        self.assertTrue(os.path.exists(os.path.join(relay_dir, "ops.seq")), os.listdir(data))
        self.assertTrue(os.path.exists(os.path.join(relay_dir, "ops.status.json")), os.listdir(relay_dir))
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertGreaterEqual(self.checkpoint("ops", relay_dir) or 0, max(seqs))
        self.assertNotRegex(fx.tail(up.err_path, 2000), r"(AddressSanitizer|LeakSanitizer|runtime error:)")

    # ---- 9
    def test_9_bad_relay_files(self):
        secret = new_secret()
        good_secret = self.secret_file(secret, "good.secret")
        bad_secret_text = "whsec_%%%notbase64-SECRETMARK1%%%"
        bad_secret = self.secret_file(bad_secret_text, "bad.secret")
        env_secret = "whsec_***SECRETMARK2***"
        url = "http://127.0.0.1:9/x"
        cases = [
            # (name, lines, the line at fault or None for any, secrets that must not show)
            ("unknown-key", ["[destination a]", "url = " + url, "secret_file = " + good_secret, "colour = blue",
                             "events = *"], 4, [secret, secret[6:]]),
            ("bad-kind", ["[destination a]", "url = " + url, "kind = teams", "events = *"], 3, []),
            ("bad-url", ["[destination a]", "url = ftp://example.com/x", "events = *"], 2, []),
            ("bad-duration", ["[destination a]", "url = " + url, "events = *", "timeout = soon"], 4, []),
            ("bad-number", ["[destination a]", "url = " + url, "events = *", "max_attempts = -1"], 4, []),
            ("bad-secret-file", ["[destination a]", "url = " + url, "secret_file = " + bad_secret, "events = *"], 3,
             [bad_secret_text, "SECRETMARK1"]),
            ("bad-secret-env", ["[destination a]", "url = " + url, "secret_env = RELAY_IT_BAD", "events = *"], 3,
             [env_secret, "SECRETMARK2"]),
            ("bad-section", ["[dest a]", "url = " + url, "events = *"], 1, []),
            ("bad-name", ["[destination a/b]", "url = " + url, "events = *"], 1, []),
            ("no-url", ["[destination a]", "events = *"], None, []),
            ("email-signed", ["[destination m]", "kind = email", "url = smtp://127.0.0.1:9", "from = t@example.com",
                              "to = ops@example.com", "events = *", "secret_file = " + good_secret], 7,
             [secret, secret[6:]]),
            ("email-key-on-webhook", ["[destination a]", "url = " + url, "events = *", "to = ops@example.com"], 4, []),
            ("email-bad-to", ["[destination m]", "kind = email", "url = smtp://127.0.0.1:9", "from = t@example.com",
                              "to = ops@example.com, nobody", "events = *"], 5, []),
            ("email-no-to", ["[destination m]", "kind = email", "url = smtp://127.0.0.1:9", "from = t@example.com",
                             "events = *"], 1, []),
            ("email-http-url", ["[destination m]", "kind = email", "url = " + url, "from = t@example.com",
                                "to = ops@example.com", "events = *"], 3, []),
            ("email-url-credentials", ["[destination m]", "kind = email",
                                       "url = smtp://u:SECRETMARK4@127.0.0.1:9", "events = *"], 3, ["SECRETMARK4"]),
            ("email-password-alone", ["[destination m]", "kind = email", "url = smtp://127.0.0.1:9",
                                      "from = t@example.com", "to = ops@example.com", "events = *",
                                      "password_env = RELAY_IT_PASSWORD"], 7, ["SECRETMARK3"]),
        ]
        for name, lines, line, secrets in cases:
            path = os.path.join(self.root, name + ".ini")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            state = os.path.join(self.root, "state-" + name)
            res = self.t.run("relay", "--nats", self.nats.url, "--relay", path, "--state", state,
                             env={"RELAY_IT_BAD": env_secret, "RELAY_IT_PASSWORD": "pw-SECRETMARK3"}, timeout=15)
            self.assertEqual(res.rc, 2, "%s: %s" % (name, res.describe()))
            if line is None:
                self.assertRegex(res.err, re.escape(path) + r":\d+:", name)
            else:
                self.assertIn("%s:%d:" % (path, line), res.err, "%s: %s" % (name, res.describe()))
            for s in secrets:
                self.assertNotIn(s, res.out + res.err, "%s: the secret shows" % name)
        # The good secret in a good file is never logged either (a relay that runs, then stops).
        rc = self.receiver()
        self.publish([route("g-1", 1)])
        conf = self.relay_file([("a", dict(url=rc.url("/a"), secret_file=good_secret, events="*"))], "good.ini")
        r = self.relay(conf, env={"TOWER_LOG": "debug"}).start()
        self.wait_checkpoints(["a"], self.last_seq())
        self.assertEqual(r.stop(), 0, r.log())
        with open(r.log_path, errors="replace") as f:
            text = f.read()
        self.assertNotIn(secret, text)
        self.assertNotIn(secret[6:], text)
        # --help, and a missing --relay.
        res = self.t.run("relay", "--help", timeout=30)
        self.assertEqual(res.rc, 0, res.describe())
        for word in ("--relay", "--state", "--redrive", "--nats"):
            self.assertIn(word, res.out, res.describe())
        res = self.t.run("relay", "--nats", self.nats.url, "--state", self.state, timeout=30)
        self.assertEqual(res.rc, 2, res.describe())

    # ---- 10
    def test_10_email_delivery(self):
        plain = self.sink()
        authed = self.sink(auth=("tower-relay", "s3cret-PASSMARK"))
        evs = [
            route("rd-1", 1, warehouseId="dc-1", carrierId="dhl"),
            event("dc-1", "deliveryCompleted", 2, orderId="O-1", shipmentId="SH1", warehouseId="dc-2", carrierId="dhl"),
            event("da-1", "deliveryAttempted", 3, shipmentId="SH2", warehouseId="dc-2", carrierId="ups"),
            event("pod-1", "podCaptured", 4, shipmentId="SH1", warehouseId="dc-2", carrierId="dhl"),
            route("rd-2", 5, warehouseId="dc-2", carrierId="ups"),
            event("dc-2", "deliveryCompleted", 6, orderId="O-2", shipmentId="SH3", warehouseId="dc-1", carrierId="ups"),
        ]
        stream = self.publish(evs)
        seqs = {eid: s for s, eid in stream}
        published = {e["eventId"]: e for e in evs}
        last = self.last_seq()
        mail = dict(kind="email", **{"from": "tower@example.com"}, to="ops@example.com, other@example.com",
                    timeout="3s", backoff_min="100ms", backoff_max="300ms")
        conf = self.relay_file([
            ("mail", dict(url=plain.url(), events="routeDispatched, deliveryCompleted, podCaptured", **mail)),
            ("dc2-mail", dict(url=authed.url(), events="*", warehouses="dc-2", subject_prefix="[dc-2 ops]",
                              username_env="RELAY_IT_USER", password_env="RELAY_IT_PASSWORD", **mail)),
        ])
        env = {"RELAY_IT_USER": "tower-relay", "RELAY_IT_PASSWORD": "s3cret-PASSMARK", "TOWER_LOG": "debug"}
        r = self.relay(conf, env=env).start()
        want = {"mail": ["rd-1", "dc-1", "pod-1", "rd-2", "dc-2"], "dc2-mail": ["dc-1", "da-1", "pod-1", "rd-2"]}
        self.wait_checkpoints(["mail", "dc2-mail"], last)
        self.assertEqual(plain.delivered(), want["mail"], "each wanted event once, in stream order")
        self.assertEqual(authed.delivered(), want["dc2-mail"], "the warehouse filter, each once, in order")
        self.assertEqual([t["code"] for t in plain.snapshot()], [250] * 5, "one transaction per event")
        for tx in plain.mails:
            self.check_mail(tx, "mail", published, seqs)
        for tx in authed.mails:
            self.check_mail(tx, "dc2-mail", published, seqs, prefix="[dc-2 ops]")
            self.assertTrue(tx["auth"], "every mail to the AUTH server sent after AUTH")
        self.assertTrue(authed.auths, "the relay authenticated")
        self.assertTrue(all(a[1:] == ("tower-relay", "s3cret-PASSMARK", True) for a in authed.auths), authed.auths)
        self.assertEqual(plain.auths, [])
        # A mail names the event in its subject: spot-check one exactly.
        self.assertEqual(str(plain.mails[1]["msg"]["Subject"]), "[tower] deliveryCompleted shipment SH1")
        self.assertEqual(str(authed.mails[3]["msg"]["Subject"]), "[dc-2 ops] routeDispatched route R5")
        st = self.wait_status("mail", delivered=5, attempts=5, failed=0, dead=0, skipped=1, checkpoint=last,
                              breaker="closed")
        self.assertTrue(st["lastOkAt"], st)
        self.wait_status("dc2-mail", delivered=4, attempts=4, failed=0, dead=0, checkpoint=last)
        self.assertEqual(r.stop(), 0, r.log())
        # A restart delivers only what is new.
        stream = self.publish([route("rd-3", 7, warehouseId="dc-2")])
        seqs = {eid: s for s, eid in stream}
        published["rd-3"] = route("rd-3", 7, warehouseId="dc-2")
        r.start()
        self.wait_checkpoints(["mail", "dc2-mail"], self.last_seq())
        self.assertEqual(plain.delivered(), want["mail"] + ["rd-3"])
        self.assertEqual(authed.delivered(), want["dc2-mail"] + ["rd-3"])
        self.check_mail(plain.mails[-1], "mail", published, seqs)
        self.assertEqual(r.stop(), 0, r.log())
        # The password is never logged nor written to the state.
        with open(r.log_path, errors="replace") as f:
            text = f.read()
        self.assertNotIn("PASSMARK", text)
        self.assertIn("email", text, "the log names the destination's kind")
        for top, _, names in os.walk(self.state):  # relay.lmdb/ (per entity records) included
            for name in names:
                with open(os.path.join(top, name), errors="replace") as f:
                    self.assertNotIn("PASSMARK", f.read(), name)

    # ---- 11
    def test_11_email_transient_retried_refusal_dead(self):
        # Transactions in order: e-1 451 at DATA, then accepted; e-2 550 at DATA (dead); e-3 451 at RCPT,
        # then accepted; e-4 550 at RCPT (dead); e-5 accepted.
        def behave(stage, tx):
            if stage == "RCPT":
                return {4: "451 4.7.1 greylisted, try again later", 6: "550 5.1.1 mailbox unavailable"}.get(tx["n"])
            if tx["eid"] == "e-1" and tx["k"] == 1:
                return "451 4.3.0 temporary failure"
            if tx["eid"] == "e-2":
                return "550 5.7.1 message refused"
            return None

        sk = self.sink(behave)
        evs = [route("e-%d" % i, i) for i in range(1, 6)]
        stream = self.publish(evs)
        seqs = {eid: s for s, eid in stream}
        published = {e["eventId"]: e for e in evs}
        last = self.last_seq()
        conf = self.relay_file([("mail", dict(kind="email", url=sk.url(), **{"from": "tower@example.com"},
                                              to="ops@example.com, other@example.com", events="routeDispatched",
                                              timeout="3s", max_attempts="5", backoff_min="300ms",
                                              backoff_max="600ms", breaker_failures="20"))])
        r = self.relay(conf).start()
        self.wait_checkpoints(["mail"], last)
        tries = sk.snapshot()
        self.assertEqual([(t["stage"], t["code"], t.get("eid")) for t in tries],
                         [("DATA", 451, "e-1"), ("DATA", 250, "e-1"), ("DATA", 550, "e-2"), ("RCPT", 451, None),
                          ("DATA", 250, "e-3"), ("RCPT", 550, None), ("DATA", 250, "e-5")],
                         "4xx retried, 5xx not, every event once accepted or given up")
        self.assertEqual(sk.delivered(), ["e-1", "e-3", "e-5"])
        for tx in sk.mails:
            self.check_mail(tx, "mail", published, seqs)
        # The retry of e-1 is the same message (the same Message-ID and body), after the backoff.
        a, b = tries[0], tries[1]
        self.assertEqual(a["mid"], b["mid"])
        self.assertEqual(a["msg"].get_content(), b["msg"].get_content())
        gap = b["t"] - a["t"]
        fx.log("email retry gap after a 451: %.3f s" % gap)
        self.assertGreaterEqual(gap, 0.28, "the retry waits backoff_min")
        self.assertGreaterEqual(tries[4]["t"] - tries[3]["t"], 0.28, "a 451 at RCPT is retried after backoff_min")
        dead = self.dead_letters("mail")
        self.assertEqual([(d.get("eventId"), d.get("seq"), [a.get("status") for a in d.get("attempts", [])])
                          for d in dead], [("e-2", seqs["e-2"], [550]), ("e-4", seqs["e-4"], [550])], dead)
        for d in dead:
            self.assertIn("550", d["attempts"][0].get("error", ""), d)
        self.wait_status("mail", delivered=3, attempts=7, failed=4, dead=2, checkpoint=last, breaker="closed")
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 13
    def test_13_batch(self):
        # batch = 25: up to 25 events per request, in stream order, each envelope as alone, the body signed;
        # a 500 retried with the same batch; a kill -9 loses nothing; a refusal makes each event a dead letter.
        fail = {"first": True, "refuse": None}

        def behave(req):
            if fail["first"]:
                fail["first"] = False
                return {"status": 500}
            ids = [b["event"]["eventId"] for b in req["doc"]["batch"]]
            return {"status": 400} if fail["refuse"] in ids else None
        rc = self.receiver(behave)
        secret = new_secret()
        conf = self.relay_file([("bulk", dict(url=rc.url("/bulk"), secret_file=self.secret_file(secret),
                                              events="routeDispatched", batch=25, backoff_min="50ms",
                                              backoff_max="200ms"))])
        evs = [route("b-%03d" % i, i) for i in range(60)]
        seqs = dict((e, s) for s, e in self.publish(evs + [event("x-1", "podCaptured", 1, shipmentId="S1")]))
        r = self.relay(conf).start()
        self.wait_checkpoints(["bulk"], self.last_seq())
        reqs = rc.snapshot("/bulk")
        self.assertEqual(reqs[0]["status"], 500)
        self.assertEqual(reqs[1]["body"], reqs[0]["body"], "the retry carries the same batch")
        got = []
        for q in reqs[1:]:
            doc = q["doc"]
            self.assertEqual(doc["version"], 1)
            self.assertEqual(doc["destination"], "bulk")
            self.assertLessEqual(len(doc["batch"]), 25)
            self.assertTrue(signature_ok(secret, q["headers"], q["body"]), q["headers"])
            first, last = doc["batch"][0]["seq"], doc["batch"][-1]["seq"]
            self.assertEqual(q["headers"]["webhook-id"], "batch-%d-%d.bulk" % (first, last))
            for b in doc["batch"]:
                self.assertEqual(b["id"], b["event"]["eventId"] + ".bulk")
                self.assertEqual(b["seq"], seqs[b["event"]["eventId"]])
                got.append(b["event"]["eventId"])
        self.assertEqual(got, [e["eventId"] for e in evs], "every event once, in stream order")
        self.wait_status("bulk", delivered=60, dead=0)
        # A kill -9, more events, a restart: all of them, none twice.
        r.kill9()
        more = [route("c-%03d" % i, i) for i in range(30)]
        fail["refuse"] = "c-010"
        self.publish(more)
        r.start()
        self.wait_checkpoints(["bulk"], self.last_seq())
        after = [b["event"]["eventId"] for q in rc.snapshot("/bulk")[len(reqs):] if q["status"] == 200
                 for b in q["doc"]["batch"]]
        dead = [d["eventId"] for d in self.dead_letters("bulk")]
        self.assertIn("c-010", dead)
        self.assertEqual(sorted(after + dead), [e["eventId"] for e in more], "each delivered or a dead letter")
        self.assertLessEqual(len(dead), 25)
        self.assertEqual(r.stop(), 0, r.log())

    # ---- 12
    def test_12_email_server_down_breaker(self):
        port = fx.free_port()
        evs = [route("d-%d" % i, i) for i in range(1, 5)]
        stream = self.publish(evs)
        seqs = {eid: s for s, eid in stream}
        published = {e["eventId"]: e for e in evs}
        last = self.last_seq()
        sk = self.sink(port=port, start=False)
        conf = self.relay_file([("mail", dict(kind="email", url=sk.url(), **{"from": "tower@example.com"},
                                              to="ops@example.com, other@example.com", events="*",
                                              timeout="500ms", max_attempts="1000", backoff_min="100ms",
                                              backoff_max="200ms", breaker_failures="3", breaker_cooldown="1s"))])
        r = self.relay(conf).start()
        def opened():
            s = self.status("mail")
            return s if s and s.get("breaker") in ("open", "half-open") and s.get("failed", 0) >= 3 else None

        st = self.wait(opened, 15, "the breaker opens while the server is down", lambda: str(self.status("mail")))
        self.assertEqual((st["delivered"], st["dead"]), (0, 0), st)
        self.assertTrue(st["lastError"], st)
        self.assertTrue(st["failingSince"], st)
        self.assertEqual(self.dead_letters("mail"), [], "no answer is retried, never a dead letter")
        self.assertIn(self.checkpoint("mail"), (None, 0))
        # Probes go on while it is down (half-open after each cooldown): more failures, still nothing lost.
        self.wait(lambda: (self.status("mail") or {}).get("failed", 0) >= 5, 10, "half-open probes",
                  lambda: str(self.status("mail")))
        sk.start()
        self.wait_checkpoints(["mail"], last, timeout=20)
        self.assertEqual(sk.delivered(), [e["eventId"] for e in evs], "every event once, in order, nothing lost")
        for tx in sk.mails:
            self.check_mail(tx, "mail", published, seqs)
        self.wait_status("mail", delivered=4, dead=0, checkpoint=last, breaker="closed")
        self.assertEqual(r.stop(), 0, r.log())
        self.assertIn("breaker open", fx.tail(r.log_path, 200), "the log says the breaker opened")


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
