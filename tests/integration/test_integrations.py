#!/usr/bin/env python3
"""Integration tests of the relay seen from the server and towerctl (the Integrations API).

usage: test_integrations.py TOWERD TOWERCTL [TEST_NAME_SUBSTRING...]

A real nats-server, events published with `towerd publish`, a real `towerd relay` delivering to an HTTP
receiver written here that fails and then heals, and `towerd serve --relay FILE --relay-state DIR --tokens`:

1. GET /api/v1/integrations shows each destination's breaker (open), backlog, last error, failing since and
   dead letters count, and only scheme://host:port of its URL (the path, a Slack webhook's secret, never
   shows, nor user info); GET .../NAME/dead-letters lists them (newest last, ?limit bounded); a redrive by a
   viewer is 403, by an operator while the receiver still fails keeps them (stillDead), and once healed
   delivers them (the receiver gets them, the list is empty); hostile names (../, 300 characters, bytes
   beyond ASCII, unknown) are 404 and touch nothing; towerctl relay, relay dead, relay redrive with their
   exit codes (0, 1 still dead, 4 unknown, 5 viewer).
2. a server without --relay: {"destinations": [], "configured": false}, every name 404 (towerctl says so);
   with --no-nats a redrive is 503; a bad relay file stops `towerd serve` with FILE:LINE (exit 2).
3. `towerd up --relay FILE`: its server lists the destination with the figures of the relay it runs (DIR/relay).

Environment: TOWER_IT_SLOW, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
import test_relay as tr  # noqa: E402

TOWERD = None
TOWERCTL = None
SECRET_PATH = "/services/T0SECRET/B0SECRET/XsecretX"


class Serve:
    """`towerd serve` as a child process on a free port."""

    def __init__(self, test, *args, name="serve"):
        self.test = test
        self.port = fx.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(test.root, "%s-%d.log" % (name, self.port))
        argv = [TOWERD, "serve", "--data", os.path.join(test.root, "store"), "--http", "127.0.0.1:%d" % self.port,
                "--web", test.root] + list(args)
        with open(self.log_path, "ab") as log:
            self.proc = fx.spawn(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=test.t.env())
        test.addCleanup(self.stop)
        deadline = time.monotonic() + fx.tmo(30)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                test.fail("towerd serve exited with %s:\n%s" % (self.proc.returncode, fx.tail(self.log_path)))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        test.fail("towerd serve did not answer /healthz:\n" + fx.tail(self.log_path))

    def stop(self):
        p = self.proc
        if p.poll() is None:
            p.terminate()
            self.test.assertEqual(p.wait(timeout=fx.tmo(20)), 0, "serve exits 0 on SIGTERM:\n" + fx.tail(self.log_path))
        fx.reap(p)
        with open(self.log_path, errors="replace") as f:
            log = f.read()
        self.test.assertNotRegex(log, r"(AddressSanitizer|LeakSanitizer|runtime error:)", log[-4000:])

    def request(self, method, path, token=None, body=None, timeout=60):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=fx.tmo(timeout)) as r:
                text = r.read().decode()
                return r.status, json.loads(text), text
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            return e.code, json.loads(text), text


class IntegrationsTest(unittest.TestCase):
    maxDiff = 6000
    # test_relay.py's fixtures (its RelayTest holds its own tests: borrowed, not inherited)
    setUp_relay = tr.RelayTest.setUp
    tearDown = tr.RelayTest.tearDown
    receiver = tr.RelayTest.receiver
    publish = tr.RelayTest.publish
    relay_file = tr.RelayTest.relay_file
    relay = tr.RelayTest.relay
    dead_letters = tr.RelayTest.dead_letters
    wait = tr.RelayTest.wait

    def setUp(self):
        tr.TOWERD = TOWERD
        self.setUp_relay()
        self.tok = {}
        lines = []
        for name, role in (("wall", "viewer"), ("ops", "operator")):
            r = subprocess.run([TOWERD, "token", name, role], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.tok[role] = r.stdout.strip()
            lines.append(r.stderr.strip().splitlines()[-1])
        self.tokens = os.path.join(self.root, "tokens")
        with open(self.tokens, "w") as f:
            f.write("\n".join(lines) + "\n")

    def ctl(self, url, *args, token="viewer", check=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOWER_") or k.startswith("TOWER_IT_")}
        env["TOWER_URL"] = url
        if token:
            env["TOWER_TOKEN"] = self.tok.get(token, token)
        p = subprocess.run([TOWERCTL] + list(args), capture_output=True, text=True, timeout=fx.tmo(120), env=env)
        self.assertNotRegex(p.stderr, r"(AddressSanitizer|LeakSanitizer|runtime error:)", p.stderr[-3000:])
        if check is not None:
            self.assertEqual(p.returncode, check, "towerctl %s: %s\n%s" % (" ".join(args), p.stdout, p.stderr))
        return p

    def wait_api(self, srv, pred, what, timeout=30):
        """Poll GET /api/v1/integrations until pred(destinations by name) holds; returns the answer."""
        last = [None]

        def ok():
            st, doc, _ = srv.request("GET", "/api/v1/integrations", token=self.tok["viewer"])
            self.assertEqual(st, 200, doc)
            last[0] = doc
            by = {d["name"]: d for d in doc["destinations"]}
            return doc if pred(by) else None
        return self.wait(ok, timeout, what, lambda: json.dumps(last[0])[:3000])


class T1Integrations(IntegrationsTest):
    def test_1_listing_dead_letters_redrive(self):
        healed = threading.Event()
        rc = self.receiver(lambda req: {"status": 200 if healed.is_set() else 500})
        conf = self.relay_file([
            ("erp", dict(url="http://relay:pw@127.0.0.1:%d/erp/dispatch-XsecretX" % rc.port, events="routeDispatched",
                         max_attempts=2, backoff_min="20ms", backoff_max="50ms", breaker_failures=1000)),
            ("chat", dict(url=rc.url(SECRET_PATH), kind="slack", events="routeDispatched", warehouses="dc-1",
                          max_attempts=1000, backoff_min="20ms", backoff_max="50ms", breaker_failures=2,
                          breaker_cooldown="60s")),
        ])
        seqs = dict((eid, seq) for seq, eid in self.publish([tr.route("r-%d" % i, i, warehouseId="dc-1")
                                                              for i in range(1, 4)]))
        self.relay(conf).start()
        srv = Serve(self, "--nats", self.nats.url, "--relay", conf, "--relay-state", self.state,
                    "--tokens", self.tokens)

        # The breaker of chat opens (2 failures in a row) with a backlog; erp's three deliveries die.
        doc = self.wait_api(srv, lambda by: by["chat"]["breaker"] == "open" and (by["chat"]["backlog"] or 0) >= 1
                            and by["erp"]["deadLetters"] == 3, "chat's breaker open with a backlog, 3 dead letters of erp")
        st, doc, text = srv.request("GET", "/api/v1/integrations", token=self.tok["viewer"])
        self.assertEqual(st, 200, doc)
        self.assertIs(doc["configured"], True)
        by = {d["name"]: d for d in doc["destinations"]}
        self.assertEqual([d["name"] for d in doc["destinations"]], ["erp", "chat"])
        chat, erp = by["chat"], by["erp"]
        self.assertEqual((chat["kind"], chat["endpoint"]), ("slack", "http://127.0.0.1:%d" % rc.port))
        self.assertEqual((erp["kind"], erp["endpoint"]), ("webhook", "http://127.0.0.1:%d" % rc.port))
        self.assertEqual((chat["events"], chat["warehouses"], chat["carriers"]), (["routeDispatched"], ["dc-1"], []))
        for secret in ("XsecretX", "T0SECRET", "services", "dispatch", "relay:pw", ":pw@"):
            self.assertNotIn(secret, text, "the URL's path or user info shows")
        self.assertRegex(chat["lastError"] or "", r"500", chat)
        self.assertIsNotNone(chat["failingSince"], chat)
        self.assertIsNone(chat["lastOkAt"], chat)
        self.assertGreaterEqual(chat["failed"], 2, chat)
        self.assertEqual(chat["deadLetters"], 0, chat)
        self.assertEqual(erp["breaker"], "closed", erp)

        # Dead letters: newest last, bounded by limit; bad limits refused.
        st, dl, text = srv.request("GET", "/api/v1/integrations/erp/dead-letters", token=self.tok["viewer"])
        self.assertEqual(st, 200, dl)
        self.assertEqual(dl["count"], 3)
        self.assertEqual([x["eventId"] for x in dl["items"]], ["r-1", "r-2", "r-3"])
        self.assertEqual([x["seq"] for x in dl["items"]], [seqs["r-1"], seqs["r-2"], seqs["r-3"]])
        for x in dl["items"]:
            self.assertEqual([a["status"] for a in x["attempts"]], [500, 500], x)
        self.assertNotIn("XsecretX", text)
        st, dl2, _ = srv.request("GET", "/api/v1/integrations/erp/dead-letters?limit=2", token=self.tok["viewer"])
        self.assertEqual((st, [x["eventId"] for x in dl2["items"]], dl2["count"]), (200, ["r-2", "r-3"], 3), dl2)
        for bad in ("0", "1001", "-1", "abc", "1e3", "99999999999999999999"):
            st, e, _ = srv.request("GET", "/api/v1/integrations/erp/dead-letters?limit=" + bad, token=self.tok["viewer"])
            self.assertEqual((st, e["error"]["field"]), (400, "limit"), (bad, e))
        self.assertEqual(srv.request("GET", "/api/v1/integrations")[0], 401, "a token is needed")

        # Hostile names: 404, nothing touched.
        before = sorted(os.listdir(self.state))
        # ("/api/v1/integrations/../x" is another route: the server normalizes dot segments of the path)
        for name in ("..%2F..%2Fetc", "..%2Fstate", "a" * 300, "a" * 65, "%C3%A9t%C3%A9", "nope", "erp%00", "erp.dead",
                     "erp%20", "a..b", "...", "erp%2F..%2F..%2Fx"):
            for method, tail, token in (("GET", "/dead-letters", "viewer"), ("POST", "/redrive", "operator")):
                st, e, _ = srv.request(method, "/api/v1/integrations/%s%s" % (name, tail), token=self.tok[token])
                self.assertEqual(st, 404, (name, method, e))
        for path in ("/api/v1/integrations/erp", "/api/v1/integrations/erp/", "/api/v1/integrations/erp/dead-letters/x",
                     "/api/v1/integrations/erp/x/redrive", "/api/v1/integrations//redrive"):
            st, e, _ = srv.request("GET", path, token=self.tok["viewer"])
            self.assertIn(st, (404, 405), (path, e))
        self.assertEqual(sorted(os.listdir(self.state)), before)
        self.assertEqual(srv.request("GET", "/api/v1/integrations/erp/redrive", token=self.tok["operator"])[0], 405)

        # towerctl relay: the table; relay dead; exit codes.
        p = self.ctl(srv.url, "relay", check=0)
        self.assertRegex(p.stdout, r"(?m)^chat\s+slack\s+http://127\.0\.0\.1:%d\s+open\s" % rc.port, p.stdout)
        self.assertRegex(p.stdout, r"(?m)^erp\s+webhook\s+\S+\s+closed\s+0\s+\d+\s+3\s", p.stdout)
        self.assertNotIn("XsecretX", p.stdout)
        p = self.ctl(srv.url, "relay", "--json", check=0)
        self.assertEqual([d["name"] for d in json.loads(p.stdout)["destinations"]], ["erp", "chat"])
        p = self.ctl(srv.url, "relay", "dead", "erp", check=0)
        self.assertRegex(p.stdout, r"(?m)^%d\s+r-1\s+routeDispatched\s+\S+\s+2\s+500\s+HTTP 500" % seqs["r-1"], p.stdout)
        p = self.ctl(srv.url, "relay", "dead", "erp", "--limit", "1", "--json", check=0)
        self.assertEqual([x["eventId"] for x in json.loads(p.stdout)["items"]], ["r-3"])
        self.ctl(srv.url, "relay", "dead", "nope", check=4)
        self.ctl(srv.url, "relay", "dead", "../../etc", check=4)
        self.ctl(srv.url, "relay", "dead", "a" * 300, check=4)
        self.ctl(srv.url, "relay", "dead", "erp", token="not-a-token", check=5)
        self.ctl(srv.url, "relay", "redrive", "erp", token="viewer", check=5)
        self.ctl(srv.url, "relay", "redrive", "nope", token="operator", check=4)

        # Redrive: a viewer may not; while the receiver still fails nothing is lost (stillDead 3).
        st, e, _ = srv.request("POST", "/api/v1/integrations/erp/redrive", token=self.tok["viewer"])
        self.assertEqual(st, 403, e)
        st, r, text = srv.request("POST", "/api/v1/integrations/erp/redrive", token=self.tok["operator"])
        self.assertEqual(st, 200, r)
        self.assertEqual((r["delivered"], r["stillDead"], r["ok"]), (0, 3, False), r)
        self.assertTrue(any("r-1" in line for line in r["report"]), r)
        self.assertNotIn("XsecretX", text)
        self.assertEqual(len(self.dead_letters("erp")), 3)
        p = self.ctl(srv.url, "relay", "redrive", "erp", token="operator", check=1)
        self.assertIn("3 still dead", p.stdout)

        # Healed: an operator's redrive delivers them, the receiver gets them, none is left.
        healed.set()
        n0 = len([q for q in rc.snapshot() if q["path"] == "/erp/dispatch-XsecretX" and q["status"] == 200])
        st, r, _ = srv.request("POST", "/api/v1/integrations/erp/redrive", token=self.tok["operator"])
        self.assertEqual(st, 200, r)
        self.assertEqual((r["delivered"], r["stillDead"], r["ok"]), (3, 0, True), r)
        got = [q["doc"]["event"]["eventId"] for q in rc.snapshot()
               if q["path"] == "/erp/dispatch-XsecretX" and q["status"] == 200]
        self.assertEqual(got[n0:], ["r-1", "r-2", "r-3"])
        st, dl, _ = srv.request("GET", "/api/v1/integrations/erp/dead-letters", token=self.tok["viewer"])
        self.assertEqual((st, dl["count"], dl["items"]), (200, 0, []), dl)
        p = self.ctl(srv.url, "relay", "redrive", "erp", token="operator", check=0)
        self.wait_api(srv, lambda by: by["erp"]["deadLetters"] == 0, "erp without dead letters")


class T2NoRelay(IntegrationsTest):
    def test_2_unconfigured_no_nats_and_bad_file(self):
        srv = Serve(self, "--nats", self.nats.url, "--tokens", self.tokens)
        st, doc, _ = srv.request("GET", "/api/v1/integrations", token=self.tok["viewer"])
        self.assertEqual((st, doc["destinations"], doc["configured"]), (200, [], False), doc)
        for method, path in (("GET", "/api/v1/integrations/erp/dead-letters"), ("POST", "/api/v1/integrations/erp/redrive")):
            st, e, _ = srv.request(method, path, token=self.tok["operator"])
            self.assertEqual(st, 404, e)
        p = self.ctl(srv.url, "relay", check=0)
        self.assertIn("no relay configured", p.stdout)
        self.ctl(srv.url, "relay", "redrive", "erp", token="operator", check=4)

        # --no-nats: the list works, a redrive cannot (503).
        conf = self.relay_file([("erp", dict(url="http://127.0.0.1:9/x", events="*")),
                                ("ops", dict(url="http://127.0.0.1:9/y", exceptions="opened,resolved",
                                             views="blocked", warehouses="dc-2"))])
        os.makedirs(self.state, exist_ok=True)
        with open(os.path.join(self.state, "erp.dead.ndjson"), "w") as f:
            f.write(json.dumps({"seq": 7, "eventId": "e-7", "type": "routeDispatched", "destination": "erp",
                                "deadAt": "2026-12-06T10:00:00Z", "attempts": [{"at": "2026-12-06T10:00:00Z",
                                                                              "status": 0, "error": "refused"}]}) + "\n")
            f.write("not json\n")
        with open(os.path.join(self.state, "erp.status.json"), "w") as f:
            f.write("[1, 2")  # a torn file: unknown, never a 500
        srv2 = Serve(self, "--no-nats", "--relay", conf, "--relay-state", self.state, "--tokens", self.tokens, name="nonats")
        st, doc, _ = srv2.request("GET", "/api/v1/integrations", token=self.tok["viewer"])
        self.assertEqual(st, 200, doc)
        d = doc["destinations"][0]
        self.assertEqual((d["breaker"], d["deadLetters"], d["delivered"], d["endpoint"]),
                         ("unknown", 2, None, "http://127.0.0.1:9"), d)
        # An exception destination says which changes and views it takes, not "events: []".
        ops = doc["destinations"][1]
        self.assertEqual((ops["name"], ops["events"], ops["exceptions"], ops["views"], ops["warehouses"]),
                         ("ops", [], ["opened", "resolved"], ["blocked"], ["dc-2"]), ops)
        self.assertNotIn("exceptions", d, "an event destination has no exceptions key")
        st, dl, _ = srv2.request("GET", "/api/v1/integrations/erp/dead-letters", token=self.tok["viewer"])
        self.assertEqual((st, dl["count"], dl["unreadable"], [x["eventId"] for x in dl["items"]]), (200, 2, 1, ["e-7"]))
        st, e, _ = srv2.request("POST", "/api/v1/integrations/erp/redrive", token=self.tok["operator"])
        self.assertEqual(st, 503, e)

        # A bad relay file: the server does not start (FILE:LINE, exit 2); a missing one neither.
        bad = os.path.join(self.root, "bad.ini")
        with open(bad, "w") as f:
            f.write("[destination erp]\nurl = ftp://x/\nevents = *\n")
        for path, where in ((bad, bad + ":2:"), (os.path.join(self.root, "none.ini"), "none.ini")):
            r = self.t.run("serve", "--no-nats", "--data", os.path.join(self.root, "store"), "--http",
                           "127.0.0.1:%d" % fx.free_port(), "--relay", path, timeout=30)
            self.assertEqual(r.rc, 2, r.describe())
            self.assertIn(where, r.err, r.describe())
        r = self.t.run("serve", "--help", timeout=30)
        for word in ("--relay", "--relay-state", "TOWER_RELAY_STATE", "relay.state"):
            self.assertIn(word, r.out)


class T3Up(IntegrationsTest):
    def test_3_up_shows_its_relay(self):
        rc = self.receiver()
        conf = self.relay_file([("ops", dict(url=rc.url("/up/" + "XsecretX"), events="routeDispatched", timeout="2s"))])
        data = os.path.join(self.root, "data")
        up = fx.Up(self.t, self.root, data, ["--seed", "7", "--orders", "30", "--rate", "1500", "--warp", "10000",
                                            "--web", self.root, "--supervisor-rate", "0", "--progress", "0",
                                            "--relay", conf])
        self.addCleanup(up.close)
        up.start()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        seen = {}

        def listed():
            with opener.open(up.base + "/api/v1/integrations", timeout=10) as resp:
                doc = json.loads(resp.read().decode())
            seen["doc"] = doc
            d = doc["destinations"][0] if doc.get("destinations") else {}
            return doc.get("configured") and d.get("name") == "ops" and (d.get("delivered") or 0) >= 2 \
                and d.get("breaker") == "closed"
        self.wait(listed, 60, "up's /api/v1/integrations with ops delivering (DATA/relay read)",
                  lambda: json.dumps(seen.get("doc"))[:2000] + "\n" + up.logs())
        self.assertEqual(seen["doc"]["destinations"][0]["endpoint"], "http://127.0.0.1:%d" % rc.port)
        self.assertNotIn("XsecretX", json.dumps(seen["doc"]))
        self.assertTrue(os.path.exists(os.path.join(data, "relay", "ops.status.json")))
        r = self.t.run("up", "--help", timeout=30)
        self.assertNotIn("--relay-state", r.out, "up keeps the relay's state in DIR/relay")


def main():
    return fx.main(sys.modules[__name__], binaries=("TOWERD", "TOWERCTL"))


if __name__ == "__main__":
    sys.exit(main())
