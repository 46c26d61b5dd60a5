#!/usr/bin/env python3
"""SSO through a trusted reverse proxy, and the per-token ingest policy, against a real `towerd serve`,
projector and nats-server.

usage: test_sso.py TOWERD [TEST_NAME_SUBSTRING...]

The "proxy" is this test connecting from 127.0.0.2 (every 127/8 address is loopback on Linux), the
only address --trusted-proxies names; requests from 127.0.0.1 play any other client. Checked: the
user and groups headers from an untrusted address are refused (403 naming the header) however the
rest of the request looks; from the proxy, groups map to roles (the highest wins, no mapped group
is 403, a bad or repeated user header 401); the proxy's user is the actor of an exception action and
of the access log line of every write; a proxied request without a user falls back to tokens. Then
a tokens file with policies: an ingest token limited to the carrier system keeps the carrier line
and rejects the ERP line naming source.system; its rate limit answers 429 with Retry-After and
stores nothing; a malformed policy stops the server with FILE:LINE (exit 2).
Python 3 standard library only.
"""

import http.client
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_stream as ts  # noqa: E402

TOWERD = None
PROXY = "127.0.0.2"
ROLES = "tower-ops=operator, tower-staff=viewer, erp-systems=ingest"

CARRIER = {"eventId": "sso-carrier-1", "occurredAt": "2026-11-02T09:10:39Z",
           "source": {"system": "carrier", "instance": "dhl"}, "shipmentId": "SH-SSO-1",
           "deliveryCompleted": {"carrierId": "dhl"}}
ERP = {"eventId": "sso-erp-1", "occurredAt": "2026-11-02T06:00:00Z", "source": {"system": "erp", "instance": "erp-eu"},
       "orderId": "SO-SSO-1", "orderCreated": {"customerId": "C-1", "channel": "ECOMMERCE",
                                                "lines": [{"sku": "SKU-1", "qty": 2}], "promisedBy": "2026-11-05T00:00:00Z"}}


class SsoTest(ts.StreamTest):
    def setUp(self):
        ts.TOWERD = TOWERD
        super().setUp()
        self.tok = {}
        lines = []
        for name, role, policy in (("wall", "viewer", []), ("ops", "operator", []),
                                   ("dhl", "ingest", ["rate=1/h", "burst=2", "systems=carrier"])):
            r = subprocess.run([TOWERD, "token", name, role] + ["--" + p for p in policy], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.tok[name] = r.stdout.strip()
            lines.append(r.stderr.strip().splitlines()[-1])
        self.tokens = os.path.join(self.root, "tokens")
        with open(self.tokens, "w") as f:
            f.write("\n".join(lines) + "\n")

    def call(self, method, path, headers=None, body=None, source="127.0.0.1", token=None):
        """(status, headers, JSON or text) of one request from the source address given."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=fx.tmo(30), source_address=(source, 0))
        h = list(headers.items() if isinstance(headers, dict) else headers or [])  # a list keeps repeats
        if token:
            h.append(("Authorization", "Bearer " + self.tok[token]))
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.append(("Content-Type", "application/json"))
        try:
            c.putrequest(method, path)
            for k, v in h:
                c.putheader(k, v)
            if data is not None:
                c.putheader("Content-Length", str(len(data)))
            c.endheaders(data)
            r = c.getresponse()
            raw = r.read().decode()
            try:
                out = json.loads(raw)
            except ValueError:
                out = raw
            return r.status, r.headers, out
        finally:
            c.close()

    def as_user(self, method, path, user, groups, body=None):
        h = {"X-Forwarded-User": user}
        if groups is not None:
            h["X-Forwarded-Groups"] = groups
        return self.call(method, path, h, body, source=PROXY)

    def log_text(self):
        with open(self.serve_log, errors="replace") as f:
            return f.read()

    def assertLogged(self, line):
        """The server logs a write's access line after its answer: wait for it."""
        deadline = time.monotonic() + fx.tmo(10)
        while line not in self.log_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertIn(line, self.log_text())


class T1Proxy(SsoTest):
    def test_1_spoofing_roles_and_actor(self):
        self.publish_trace("a.ndjson", 21, fx.scaled(60, 30))
        self.start_serve("--tokens", self.tokens, "--trusted-proxies", PROXY + "/32", "--proxy-roles", ROLES)

        # Spoofed: the headers from any address but the proxy's are refused, token or not, on every path.
        for hdr in ("X-Forwarded-User", "X-Forwarded-Groups", "x-forwarded-user"):
            for path, token in (("/api/v1/me", "ops"), ("/api/v1/summary", None), ("/index.html", None)):
                st, _, b = self.call("GET", path, {hdr: "admin"}, token=token)
                self.assertEqual(st, 403, (hdr, path, b))
                self.assertEqual(b["error"]["code"], "PROXY_HEADER_REFUSED")
                self.assertEqual(b["error"]["field"].lower(), hdr.lower())
        st, _, b = self.call("POST", "/api/v1/exceptions/x/ack", {"X-Forwarded-User": "admin"}, {}, token="ops")
        self.assertEqual((st, b["error"]["code"]), (403, "PROXY_HEADER_REFUSED"), b)
        self.assertLogged("carrying X-Forwarded-User: not a trusted proxy")
        # Without those headers, 127.0.0.1 is an ordinary client: tokens work.
        st, _, me = self.call("GET", "/api/v1/me", token="wall")
        self.assertEqual((st, me["name"], me["role"]), (200, "wall", "viewer"), me)

        # From the proxy: groups to roles, the highest wins; no mapped group: 403; no user: tokens.
        st, _, me = self.as_user("GET", "/api/v1/me", "alice@example.com", "staff, tower-staff,tower-ops")
        self.assertEqual((st, me["name"], me["role"], me["canAct"]), (200, "alice@example.com", "operator", True), me)
        st, _, me = self.as_user("GET", "/api/v1/me", "bob", "tower-staff")
        self.assertEqual((st, me["role"]), (200, "viewer"), me)
        st, _, b = self.as_user("GET", "/api/v1/me", "carol", "finance")
        self.assertEqual((st, b["error"]["code"]), (403, "FORBIDDEN"), b)
        self.assertIn("groups", b["error"]["message"])
        st, _, b = self.as_user("GET", "/api/v1/me", "dave", None)
        self.assertEqual(st, 403, b)
        st, _, me = self.call("GET", "/api/v1/me", source=PROXY, token="wall")
        self.assertEqual((st, me["name"]), (200, "wall"), me)
        st, _, b = self.call("GET", "/api/v1/me", source=PROXY)
        self.assertEqual(st, 401, b)
        # Hostile user headers from the proxy itself: too long, or twice.
        st, _, b = self.as_user("GET", "/api/v1/me", "x" * 129, "tower-ops")
        self.assertEqual(st, 401, b)
        st, _, b = self.call("GET", "/api/v1/me", [("X-Forwarded-User", "alice"), ("X-Forwarded-User", "root"),
                                                   ("X-Forwarded-Groups", "tower-ops")], source=PROXY)
        self.assertEqual(st, 401, b)
        st, _, me = self.as_user("GET", "/api/v1/me", "eve", ",".join("g%d" % i for i in range(500)) + ",tower-staff")
        self.assertEqual((st, me.get("role")), (200, "viewer"), me)

        # The proxy's user is the actor: a viewer may not act, an operator's action names them.
        st, _, page = self.as_user("GET", "/api/v1/views/blocked?limit=5", "bob", "tower-staff")
        self.assertEqual(st, 200, page)
        self.assertTrue(page["items"], "the trace blocks some orders")
        x = page["items"][0]["exceptionId"]
        st, _, b = self.as_user("POST", "/api/v1/exceptions/%s/ack" % x, "bob", "tower-staff", {})
        self.assertEqual(st, 403, b)
        st, _, r = self.as_user("POST", "/api/v1/exceptions/%s/ack" % x, "alice@example.com", "tower-ops",
                                {"note": "on it"})
        self.assertEqual(st, 200, r)
        self.assertEqual(r["exception"]["acknowledgedBy"], "alice@example.com")
        st, _, one = self.call("GET", "/api/v1/exceptions/" + x, token="wall")
        self.assertEqual([(h["action"], h["actor"]) for h in one["history"]], [("acknowledged", "alice@example.com")])
        st, _, r = self.as_user("POST", "/api/v1/exceptions/%s/assign" % x, "alice@example.com", "tower-ops",
                                {"assignee": "me"})
        self.assertEqual((st, r["exception"]["assignee"]), (200, "alice@example.com"), r)
        self.assertLogged("POST /api/v1/exceptions/%s/ack 200 by alice@example.com (proxy) from %s" % (x, PROXY))
        self.assertLogged("POST /api/v1/exceptions/%s/ack 403 by bob (proxy)" % x)


class T2Policy(SsoTest):
    def test_2_source_systems_and_rate(self):
        self.start_serve("--tokens", self.tokens)
        body = (json.dumps(CARRIER) + "\n" + json.dumps(ERP) + "\n").encode()
        st, _, r = self.call("POST", "/api/v1/events", body=body, token="dhl")
        self.assertEqual(st, 400, r)
        self.assertEqual((r["accepted"], r["rejected"]), (1, 1), r)
        good, bad = r["results"]
        self.assertEqual((good["eventId"], good["status"]), ("sso-carrier-1", "accepted"), r)
        self.assertEqual((bad["eventId"], bad["status"]), ("sso-erp-1", "rejected"), r)
        self.assertEqual((bad["error"]["code"], bad["error"]["field"]), ("SOURCE_NOT_ALLOWED", "source.system"), r)
        self.assertIn("carrier", bad["error"]["message"])
        self.assertLogged("POST /api/v1/events 400 by dhl (token) from 127.0.0.1")

        # burst=2: the second request passes, the third is refused whole with Retry-After (rate 1/h).
        st, _, r = self.call("POST", "/api/v1/events", body=json.dumps(CARRIER).encode(), token="dhl")
        self.assertEqual((st, r["duplicates"]), (200, 1), r)
        last = self.nc.stream_info("TOWER_EVENTS")["state"]["last_seq"]
        third = dict(CARRIER, eventId="sso-carrier-3")
        st, h, r = self.call("POST", "/api/v1/events", body=json.dumps(third).encode(), token="dhl")
        self.assertEqual((st, r["error"]["code"]), (429, "RATE_LIMITED"), r)
        self.assertGreaterEqual(int(h["Retry-After"]), 3000, dict(h))
        # Nothing of the refused request was stored (the answer came after any publish would have).
        self.assertEqual(self.nc.stream_info("TOWER_EVENTS")["state"]["last_seq"], last)
        self.assertLogged("POST /api/v1/events 429 by dhl (token)")

    def test_3_bad_policy_line(self):
        with open(self.tokens, "a") as f:
            f.write("erp ingest %s rate=fast\n" % ("ab" * 32))
        log = os.path.join(self.root, "bad.log")
        with open(log, "wb") as lf:
            rc = subprocess.run([TOWERD, "serve", "--data", self.data, "--http", "127.0.0.1:%d" % fx.free_port(),
                                 "--no-nats", "--tokens", self.tokens], stdout=lf, stderr=lf, timeout=60).returncode
        text = open(log).read()
        self.assertEqual(rc, 2, text)
        self.assertIn("%s:4: rate=fast" % self.tokens, text)
        rc = subprocess.run([TOWERD, "serve", "--data", self.data, "--no-nats", "--trusted-proxies", "10.0.0.0/99"],
                            capture_output=True, text=True, timeout=60)
        self.assertEqual(rc.returncode, 2, rc.stderr)
        self.assertIn("trusted-proxies", rc.stderr)
        # towerd token checks a policy before it makes a token.
        for bad in (["--systems", "sap"], ["--rate", "10"], ["--burst", "5"], ["--rate", "1/s", "--burst", "0"]):
            r = subprocess.run([TOWERD, "token", "gw", "ingest"] + bad, capture_output=True, text=True, timeout=30)
            self.assertEqual((r.returncode, r.stdout), (2, ""), (bad, r.stderr))
        r = subprocess.run([TOWERD, "token", "wall", "viewer", "--rate", "1/s"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("ingest tokens only", r.stderr)


def main():
    global TOWERD
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    TOWERD = os.path.abspath(sys.argv[1])
    fx.install_signal_cleanup()
    fx.stretch_for_sanitizer(TOWERD)  # an ASan build's servers take longer to come up and answer
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for cls in (T1Proxy, T2Policy):
        for t in loader.loadTestsFromTestCase(cls):
            if len(sys.argv) < 3 or any(s in t.id() for s in sys.argv[2:]):
                suite.addTest(t)
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    sys.exit(0 if res.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
