#!/usr/bin/env python3
"""Runbooks served by `towerd serve --runbooks DIR` (docs/runbooks/README.md).

usage: test_runbooks.py TOWERD [TEST_NAME_SUBSTRING...]

- Every built-in view, every Prometheus alert of deploy/prometheus/tower-alerts.yml and every SLA rule
  has a shipped runbook, served with its title; the list names them all.
- match picks the most specific runbook that exists (alert, rule, code, reason, then view) and says what
  it tried; 404 naming them when none exists.
- Hostile names and files: path traversal, names out of the charset, a symbolic link out of the
  directory, a file over 256 KiB, a directory named like a runbook, bytes that are not UTF-8, NUL in a
  parameter; HTML in a runbook is served as the text it is (the dashboard renders it as text).
- With tokens: viewer may read, no token is 401.
"""

import json
import os
import shutil
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "dead_letters", "sla_breaches",
         "at_risk", "mismatches"]
SLA_RULES = ["release", "readiness", "routing", "pod", "invoicing", "posting_recovery"]


def alerts_of_rules():
    with open(os.path.join(SRC, "deploy", "prometheus", "tower-alerts.yml")) as f:
        return [line.split("alert:", 1)[1].strip() for line in f if line.strip().startswith("- alert:")]


class RunbooksTest(unittest.TestCase):
    maxDiff = 3000

    @classmethod
    def setUpClass(cls):
        cls.root = fx.make_tempdir("tower-it-runbooks-")
        cls.dir = os.path.join(cls.root, "runbooks")
        shutil.copytree(os.path.join(SRC, "docs", "runbooks"), cls.dir)
        # hostile neighbours
        with open(os.path.join(cls.root, "secret.md"), "w") as f:
            f.write("# secret\nnot for the API\n")
        os.symlink(os.path.join(cls.root, "secret.md"), os.path.join(cls.dir, "view", "linked.md"))
        with open(os.path.join(cls.dir, "view", "huge.md"), "w") as f:
            f.write("# huge\n" + "x" * (256 * 1024))
        os.mkdir(os.path.join(cls.dir, "view", "adir.md"))
        with open(os.path.join(cls.dir, "code", "LATIN1.md"), "wb") as f:
            f.write(b"# caf\xe9\n")
        with open(os.path.join(cls.dir, "reason", "HTML.md"), "w") as f:
            f.write("# <img src=x onerror=alert(1)>\n<script>alert(1)</script>\n[x](javascript:alert(1))\n")
        cls.t = fx.Towerd(TOWERD)
        cls.data = os.path.join(cls.root, "data")
        cls.srv = fx.TowerServe(cls.t, cls.data, os.path.join(cls.root, "serve.log"),
                                ["--no-nats", "--runbooks", cls.dir])
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        fx.remove_tempdir(cls.root)

    def get(self, path, base=None, token=None):
        req = urllib.request.Request((base or self.srv.url) + path)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(req, timeout=fx.tmo(10)) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def test_shipped_runbooks(self):
        st, body = self.get("/api/v1/runbooks")
        self.assertEqual(st, 200, body)
        ids = {rb["id"] for rb in body["runbooks"]}
        self.assertEqual(body["count"], len(body["runbooks"]))
        want = ({"view/" + v for v in VIEWS} | {"alert/" + a for a in alerts_of_rules()} |
                {"rule/" + r for r in SLA_RULES})
        self.assertEqual(want - ids, set(), "runbooks missing")
        self.assertNotIn("view/linked", ids, "a symbolic link is not listed")
        self.assertNotIn("view/huge", ids)
        for v in VIEWS:
            st, rb = self.get("/api/v1/runbooks/view/" + v)
            self.assertEqual(st, 200, rb)
            self.assertEqual(rb["id"], "view/" + v)
            self.assertTrue(rb["markdown"].startswith("# "), rb["markdown"][:80])
            self.assertEqual(rb["title"], rb["markdown"].split("\n", 1)[0][2:])
            for part in ("What it means", "What to do", "Escalate when"):
                self.assertIn(part, rb["markdown"], "view/%s has no '%s'" % (v, part))

    def test_match_most_specific(self):
        st, rb = self.get("/api/v1/runbooks/match?view=blocked&reason=DOCK_CAPACITY")
        self.assertEqual((st, rb["id"]), (200, "reason/DOCK_CAPACITY"), rb)
        st, rb = self.get("/api/v1/runbooks/match?view=blocked&reason=NO_SUCH")
        self.assertEqual((st, rb["id"], rb["tried"]), (200, "view/blocked", ["reason/NO_SUCH", "view/blocked"]))
        st, rb = self.get("/api/v1/runbooks/match?view=sla_breaches&rule=routing")
        self.assertEqual(rb["id"], "rule/routing")
        st, rb = self.get("/api/v1/runbooks/match?view=dead_letters&code=INVALID_TIME")
        self.assertEqual(rb["id"], "code/INVALID_TIME")
        st, rb = self.get("/api/v1/runbooks/match?view=nothing_like_it&reason=NOPE")
        self.assertEqual(st, 404)
        self.assertIn("reason/NOPE", rb["error"]["message"])
        self.assertIn("view/nothing_like_it", rb["error"]["message"])
        st, rb = self.get("/api/v1/runbooks/match")
        self.assertEqual(st, 404)

    def test_hostile(self):
        cases = {
            "/api/v1/runbooks/view/linked": 404,           # a symbolic link out of the directory
            "/api/v1/runbooks/view/huge": 404,             # over 256 KiB
            "/api/v1/runbooks/view/adir": 404,             # a directory
            "/api/v1/runbooks/view/.hidden": 400,
            "/api/v1/runbooks/view/a%20b": 400,
            "/api/v1/runbooks/view/" + "a" * 65: 400,
            "/api/v1/runbooks/etc/passwd": 404,
            "/api/v1/runbooks/view/a/b": 404,
            "/api/v1/runbooks/view": 404,
            "/api/v1/runbooks/": 404,
            "/api/v1/runbooks/match?view=a%00b": 400,
            "/api/v1/runbooks/match?view=..%2f..%2fsecret": 400,
            "/api/v1/runbooks/match?reason=" + "R" * 5000: 400,
        }
        for path, want in cases.items():
            st, body = self.get(path)
            self.assertEqual(st, want, "%s: %s" % (path[:80], body))
            self.assertIn("message", body["error"])
        # traversal through the decoded path never reaches the secret beside the directory
        for path in ("/api/v1/runbooks/view/..%2f..%2fsecret", "/api/v1/runbooks/view/%2e%2e%2fsecret"):
            st, body = self.get(path)
            self.assertIn(st, (400, 404), path)
            self.assertNotIn("not for the API", json.dumps(body))
        st, rb = self.get("/api/v1/runbooks/code/LATIN1")
        self.assertEqual(st, 200)
        self.assertIn("not valid UTF-8", rb["markdown"])
        st, rb = self.get("/api/v1/runbooks/reason/HTML")
        self.assertEqual(st, 200)
        self.assertIn("<script>alert(1)</script>", rb["markdown"], "served as the text it is")
        self.assertTrue(self.srv.alive())

    def test_roles(self):
        tokens = os.path.join(self.root, "tokens2")
        r = self.t.run("token", "--hash", "vic", "viewer", check=0, input="viewer-token-0123456789\n")
        with open(tokens, "w") as f:
            f.write(r.out)
        srv = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve2.log"),
                            ["--no-nats", "--runbooks", self.dir, "--tokens", tokens])
        srv.start()
        try:
            st, _ = self.get("/api/v1/runbooks/view/blocked", base=srv.url)
            self.assertEqual(st, 401)
            st, rb = self.get("/api/v1/runbooks/view/blocked", base=srv.url, token="viewer-token-0123456789")
            self.assertEqual((st, rb["id"]), (200, "view/blocked"))
        finally:
            srv.stop()


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
