#!/usr/bin/env python3
"""Integration tests of `towerctl`, the command-line client of the HTTP API.

usage: test_towerctl.py TOWERD TOWERCTL [TEST_NAME_SUBSTRING...]

Read side: a store folded offline from a generated trace (plus lines of our own) is served by a real
`towerd serve --no-nats`; every command's output is checked against the API's JSON and `towerd dump`.
Errors and exit codes: 404, an unknown view, a bad parameter, an unreachable server, and (with a
stub HTTP server of our own) 401, 403, 5xx and the bearer token. Write side: a real nats-server, a
projector and `towerd serve --nats` for publish (chunked by count and by bytes; the views compared
with an offline fold), dead-letter redrive and the live stream (watch) when the server offers them, and
the exception lifecycle (docs/exceptions.md): ack, assign, snooze, note, resolve, reopen with one id (the
single route) and many (the bulk route, 500 ids a request), `exception ID`, `mine`, the listing filters
(--state, --assignee, --sort), roles with `--tokens` (a viewer gets 403), and what towerctl sends (a stub).

Environment: TOWER_IT_SLOW (timeout multiplier; 4 is set automatically for a sanitizer build),
TOWER_IT_SEED, TOWER_IT_KEEP=1, TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import calendar
import csv
import socket
import http.server
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = TOWERCTL = None
SEED = int(os.environ.get("TOWER_IT_SEED", "20261128"))
VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "dead_letters", "sla_breaches",
         "at_risk", "mismatches"]
COMMANDS = ["summary", "stuck", "order", "shipment", "search", "publish", "dlq list", "dlq redrive", "export",
            "watch", "mine", "exception", "ack", "assign", "snooze", "note", "resolve", "reopen"]
SANITIZER = re.compile(r"(?m)^.*(AddressSanitizer|LeakSanitizer|runtime error:).*$")

# ---------------------------------------------------------------------------------------------
# helpers

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api(base, path, method="GET", data=None, headers=None):
    """(status, parsed JSON or None) of one request."""
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=fx.tmo(30)) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    try:
        return status, json.loads(body.decode("utf-8"))
    except ValueError:
        return status, None


def no_age(x):
    """A JSON value without ageSeconds, oldestAgeSeconds, now and an item's state (they depend on the clock:
    a snooze ends when its time comes; `towerd dump` gives no state)."""
    if isinstance(x, dict):
        return {k: no_age(v) for k, v in x.items()
                if k not in ("ageSeconds", "oldestAgeSeconds", "now", "oldestUnacknowledgedAgeSeconds")
                and not (k == "state" and "exceptionId" in x)}
    if isinstance(x, list):
        return [no_age(v) for v in x]
    return x


def ctl_env(extra=None, url=None):
    e = {k: v for k, v in os.environ.items()
         if not (k.startswith("TOWER_") and not k.startswith("TOWER_IT_")) and k.lower() not in
         ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    if url:
        e["TOWER_URL"] = url
    e.update(extra or {})
    return e


def ctl(*args, url=None, env=None, input=None, timeout=120, check=None):
    """Run towerctl; returns a natsfx Result (rc, out, err). check: the exit code(s) required."""
    argv = [TOWERCTL] + [str(a) for a in args]
    t0 = time.monotonic()
    p = fx.spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                 stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                 env=ctl_env(env, url if url is not None else (D.serve.url if D and D.serve else None)))
    try:
        out, err = p.communicate(input=input.encode() if isinstance(input, str) else input, timeout=fx.tmo(timeout))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        fx.reap(p)
        raise AssertionError("`%s` did not finish within %.0fs" % (" ".join(argv), fx.tmo(timeout)))
    fx.reap(p)
    r = fx.Result(argv, p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                  time.monotonic() - t0)
    m = SANITIZER.search(r.err)
    if m:
        raise AssertionError("towerctl reported a sanitizer error: %s\n%s" % (m.group(0), r.describe()))
    if check is not None:
        ok = check if isinstance(check, (tuple, list, set)) else (check,)
        if r.rc not in ok:
            raise AssertionError("expected exit %s: %s" % (check, r.describe()))
    return r


def parse_table(text, header_first):
    """The rows of a towerctl table: the header line starts with `header_first`; columns are cut at the
    header's column starts. Returns (header names, [row dicts]); stops at the first empty line."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith(header_first):
            break
    else:
        raise AssertionError("no table with a %r header in:\n%s" % (header_first, text[:2000]))
    head = lines[i]
    indent = len(head) - len(head.lstrip())
    starts = [m.start() for m in re.finditer(r"(?:(?<=^)|(?<=  ))\S", head[indent:])]
    names = [head[indent + s:indent + (starts[k + 1] if k + 1 < len(starts) else len(head) - indent)].strip()
             for k, s in enumerate(starts)]
    rows = []
    for line in lines[i + 1:]:
        if not line.strip():
            break
        body = line[indent:]
        cells = []
        for k, s in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else None
            cells.append(body[s:end].strip() if end is not None else body[s:].strip())
        rows.append(dict(zip(names, cells)))
    return names, rows


def cell(v):
    """How towerctl shows an item field in a table: '-' when absent."""
    return "-" if v is None else str(v)


def ms(t):
    """A time as towerctl shows it: one precision for every time, milliseconds (truncated)."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$", t or "")
    return "%s.%sZ" % (m.group(1), (m.group(2) or "").ljust(3, "0")[:3]) if m else t


def rfc3339(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# ---------------------------------------------------------------------------------------------
# the read-side fixture: one store folded offline, its dump, one `towerd serve --no-nats`

class Fixture:
    serve = None


D = None


def extra_lines(now_s):
    """150 orders awaiting release at 10-minute steps before now (ages that --older-than splits, with 5
    minutes between any item and a whole hour), customers for some, and dead letters whose messages
    hold commas and quotes (CSV quoting) and non-ASCII bytes."""
    lines = []
    for k in range(1, 151):
        lines.append({"eventId": "ctl-ar-%04d" % k, "occurredAt": rfc3339(now_s - (600 * k + 300)),
                      "source": {"system": "erp", "instance": "ctl"}, "orderId": "CTL-AR-%04d" % k,
                      "orderApproved": {"warehouseId": "dc-%d" % (1 + k % 3)}})
        if k % 10 == 0:
            lines.append({"eventId": "ctl-cr-%04d" % k, "occurredAt": rfc3339(now_s - (600 * k + 400)),
                          "source": {"system": "erp"}, "orderId": "CTL-AR-%04d" % k,
                          "orderCreated": {"customerId": "CTL-CUST-%d" % (k % 3), "channel": "EDI",
                                           "lines": [{"sku": "SKU-1", "qty": 1}]}})
    out = [json.dumps(e, separators=(",", ":")).encode() for e in lines]
    out.append('{"eventId":"ctl-bad-ü","occurredAt":"2026-11-02T06:00:00Z","source":{"system":"erp"},'
               '"orderId":"CTL-BAD-1","orderApproved":{"warehouseId":"dc-1"}}'.encode("utf-8"))
    out.append(b'{"eventId":"ctl-bad-2","occurredAt":"2026-11-02T06:00:00Z","source":{"system":"erp"},'
               b'"orderId":"CTL-BAD-2","orderTeleported":{"to":"a, \\"b\\""}}')
    return out


def setUpModule():
    global D
    fix = Fixture()
    fix.t = fx.Towerd(TOWERD)
    fix.root = fx.make_tempdir("tower-it-ctl-")
    fix.t.cwd = fix.root
    fix.trace = os.path.join(fix.root, "trace.ndjson")
    fix.t.gen(fix.trace, SEED, fx.scaled(400, 150), conflicts=0.02)
    with open(fix.trace, "rb") as f:
        ends_nl = f.read().endswith(b"\n")
    with open(fix.trace, "ab") as f:
        f.write((b"" if ends_nl else b"\n") + b"\n".join(extra_lines(int(time.time()))) + b"\n")
    fix.data = os.path.join(fix.root, "store")
    fix.t.fold(fix.data, fix.trace)
    fix.dump = fix.t.dump(fix.data, stable=False)
    fix.status = fix.t.run("status", "--data", fix.data, "--no-nats", "--json", check=0).json()
    fix.serve = fx.TowerServe(fix.t, fix.data, os.path.join(fix.root, "serve.log"), args=["--no-nats"])
    D = fix
    fix.serve.start()
    fx.log("fixture: views %s; server %s" % (fx.view_sizes(fix.dump), fix.serve.url))


def tearDownModule():
    if D is not None and D.serve is not None:
        D.serve.kill()
    if D is not None:
        fx.remove_tempdir(D.root)


class Base(unittest.TestCase):
    maxDiff = 4000

    def get(self, path, status=200):
        st, body = api(D.serve.url, path)
        self.assertEqual(st, status, "GET %s" % path)
        return body

    def assertServerError(self, r, rc, code, field=None):
        self.assertEqual(r.rc, rc, r.describe())
        want = "towerctl: %s: " % code
        self.assertIn(want, r.err, r.describe())
        if field:
            self.assertIn("(field %s)" % field, r.err, r.describe())
        self.assertEqual(r.out, "", "nothing on stdout after an error: " + r.describe())


# ---------------------------------------------------------------------------------------------
# usage

class T01Usage(Base):
    def test_01_help_everywhere(self):
        r = ctl("--help", check=0)
        for c in COMMANDS:
            self.assertIn(c, r.out, "towerctl --help names %s" % c)
        for code in ("0 ok", "1 server unreachable", "2 usage", "3 input rejected", "4 not found",
                     "5 unauthorized", "6 an action on several ids"):
            self.assertIn(code, r.out, "towerctl --help documents exit %r" % code)
        for c in COMMANDS:
            r = ctl(*c.split(), "--help", env={"TOWER_TOKEN": "sekret-help-123"}, check=0)
            self.assertIn("usage: towerctl %s" % c, r.out, r.describe())
            self.assertIn("Exit codes:", r.out, r.describe())
            self.assertIn("--url", r.out)
            self.assertNotIn("sekret-help-123", r.out + r.err, "--help printed the token")
        ctl("dlq", "--help", check=0)

    def test_02_usage_errors(self):
        cases = [(), ("bogus",), ("stuck",), ("stuck", "a", "b"), ("order",), ("stuck", "blocked", "--limit"),
                 ("stuck", "blocked", "--older-than", "2x"), ("stuck", "blocked", "--nope"),
                 ("dlq",), ("dlq", "nope"), ("dlq", "redrive", "abc"), ("dlq", "redrive", "0"),
                 ("summary", "--url", "ftp://127.0.0.1:1"), ("publish",), ("--url",),
                 ("export", "blocked", "--csv", "--json"), ("publish", "x.ndjson", "--batch", "10001"),
                 ("ack",), ("assign",), ("assign", "o~A~b~1"), ("snooze", "o~A~b~1"), ("note", "o~A~b~1"),
                 ("note", "o~A~b~1", "x", "y"), ("resolve", "o~A~b~1"), ("resolve", "o~A~b~1", "-r", "nope"),
                 ("reopen",), ("exception",), ("exception", "a", "b"), ("mine", "x"),
                 ("stuck", "blocked", "--state", "nope"), ("export", "blocked", "--sort", "nope")]
        for args in cases:
            r = ctl(*args)
            self.assertEqual(r.rc, 2, r.describe())
            self.assertTrue(r.err.strip(), "a usage error says what is wrong: " + r.describe())


# ---------------------------------------------------------------------------------------------
# read commands against the API and the dump

class T02Read(Base):
    def test_03_summary(self):
        r = ctl("summary", "--json", check=0)
        self.assertEqual(no_age(json.loads(r.out)), no_age(self.get("/api/v1/summary")))
        self.assertEqual(r.out.count("\n"), 1, "--json is one line")
        r = ctl("summary", check=0)
        _, rows = parse_table(r.out, "VIEW")
        self.assertEqual([x["VIEW"] for x in rows], VIEWS)
        for x in rows:
            want = D.dump[x["VIEW"]]
            self.assertEqual(int(x["COUNT"]), len(want), x)
            self.assertEqual(x["OLDEST SINCE"], ms(want[0]["since"]) if want else "-", x)
        self.assertIn("applied sequence %d," % D.status["appliedSeq"], r.out)
        self.assertIn("dead letters %d" % D.status["deadLetters"], r.out)
        # global options before the command, and the environment
        r2 = ctl("--url", D.serve.url, "--json", "summary", url="http://127.0.0.1:1", check=0)
        self.assertEqual(no_age(json.loads(r2.out))["appliedSeq"], D.status["appliedSeq"])

    def test_04_stuck_every_view(self):
        for v in VIEWS:
            r = ctl("stuck", v, "--all", "--json", "--limit", 7, check=0)
            got = json.loads(r.out)
            self.assertEqual(no_age(got["items"]), D.dump[v], "stuck %s --all --json" % v)
            self.assertEqual(got["count"], len(D.dump[v]))
            self.assertIsNone(got["nextCursor"])
            r = ctl("stuck", v, "--all", "--limit", 13, check=0)
            want = D.dump[v]
            self.assertIn("%d item%s shown; the view holds %d" % (len(want), "" if len(want) == 1 else "s", len(want)),
                          r.out, r.describe())
            if not want:
                continue
            if v == "dead_letters":
                _, rows = parse_table(r.out, "SEQ")
                self.assertEqual([(x["SEQ"], x["CODE"], x["EVENT"]) for x in rows],
                                 [(str(i["seq"]), i["code"], cell(i.get("eventId"))) for i in want], v)
                for x, i in zip(rows, want):
                    self.assertEqual(x["MESSAGE"], re.sub(r"[\x00-\x1f\x7f]", "?", i["message"]))
            else:
                _, rows = parse_table(r.out, "AGE")
                self.assertEqual([(x["SINCE"], x["ORDER"], x["SHIPMENT"], x["WAREHOUSE"], x["CARRIER"]) for x in rows],
                                 [(ms(i["since"]), cell(i.get("orderId")), cell(i.get("shipmentId")),
                                   cell(i.get("warehouseId")), cell(i.get("carrierId"))) for i in want],
                                 "stuck %s: the table's rows" % v)
                for x, i in zip(rows, want):
                    for k in ("kind", "reason", "sku", "lastFailure", "interface", "rule"):
                        if k in i:
                            self.assertIn("%s=%s" % (k, i[k]), x["DETAIL"], (v, x, i))

    def test_05_stuck_filters_and_pages(self):
        v = "awaiting_release"
        now = time.time()
        want = [i for i in D.dump[v] if fx_ts(i["since"]) < now - 7200]
        self.assertTrue(0 < len(want) < len(D.dump[v]), "the fixture splits at 2h")
        r = ctl("stuck", v, "--older-than", "2h", "--all", "--json", check=0)
        self.assertEqual(no_age(json.loads(r.out)["items"]), want)
        for w in ("dc-1", "dc-2", "dc-nowhere"):
            r = ctl("stuck", v, "--warehouse", w, "--all", "--json", check=0)
            ww = [i for i in D.dump[v] if i.get("warehouseId") == w]
            self.assertEqual(no_age(json.loads(r.out)["items"]), ww)
            self.assertEqual(json.loads(r.out)["count"], len(ww), "count of stuck %s --warehouse %s" % (v, w))
            r = ctl("stuck", v, "--warehouse", w, "--all", check=0)
            self.assertIn("%d item%s shown; the filters match %d" % (len(ww), "" if len(ww) == 1 else "s", len(ww)),
                          r.out, r.describe())
        carriers = sorted({i["carrierId"] for x in VIEWS for i in D.dump[x] if "carrierId" in i})
        self.assertTrue(carriers)
        for vv in ("missing_pod", "anomalies"):
            r = ctl("stuck", vv, "--carrier", carriers[0], "--all", "--json", check=0)
            self.assertEqual(no_age(json.loads(r.out)["items"]),
                             [i for i in D.dump[vv] if i.get("carrierId") == carriers[0]])
        # one page of 7, then the next from the cursor it names
        r = ctl("stuck", v, "--limit", 7, check=0)
        _, rows = parse_table(r.out, "AGE")
        self.assertEqual([x["ORDER"] for x in rows], [i["orderId"] for i in D.dump[v][:7]])
        m = re.search(r"--cursor (\S+)", r.out)
        self.assertIsNotNone(m, r.out)
        r = ctl("stuck", v, "--limit", 7, "--cursor", m.group(1), "--json", check=0)
        page = json.loads(r.out)
        self.assertEqual(no_age(page["items"]), D.dump[v][7:14])
        self.assertEqual(no_age(page), no_age(self.get("/api/v1/views/%s?limit=7&cursor=%s" % (v, m.group(1)))))
        # the default page is the server's (100)
        r = ctl("stuck", v, "--json", check=0)
        self.assertEqual(len(json.loads(r.out)["items"]), min(100, len(D.dump[v])))

    def entity_checks(self, kind, ident):
        path = "/api/v1/%s/%s" % ("orders" if kind == "order" else "shipments", urllib.parse.quote(ident, safe=":"))
        api_json = self.get(path)
        r = ctl(kind, ident, "--json", check=0)
        self.assertEqual(no_age(json.loads(r.out)), no_age(api_json), "%s %s --json" % (kind, ident))
        r = ctl(kind, ident, check=0)
        first = r.out.splitlines()[0]
        self.assertEqual(first, "%s %s  stage %s" % (kind, ident, api_json["stage"] or "unknown"), r.out[:300])
        if kind == "order" and "customerId" in api_json:
            self.assertIn("customer %s" % api_json["customerId"], r.out)
        for s in api_json["shipments"]:
            self.assertIn("%s (%s)" % (s["shipmentId"], s["stage"] or "unknown"), r.out)
        nex = len(api_json["openExceptions"])
        self.assertIn("no open exceptions" if not nex else "%d open exception%s:" % (nex, "s" if nex > 1 else ""),
                      r.out)
        if api_json["openExceptions"]:
            _, ex = parse_table(r.out.split("open exception")[1], "VIEW")
            self.assertEqual(sorted(x["VIEW"] for x in ex), sorted(i["view"] for i in api_json["openExceptions"]))
        for k, t in api_json["milestones"].items():
            self.assertRegex(r.out, r"(?m)^  %s +%s$" % (re.escape(k), re.escape(ms(t))))
        tl = api_json["timeline"]
        self.assertIn("timeline (%d event%s):" % (len(tl), "s" if len(tl) > 1 else ""), r.out)
        _, rows = parse_table(r.out.split("timeline (")[1], "TIME")
        self.assertEqual([(x["TIME"], x["SEQ"], x["TYPE"], x["EVENT"]) for x in rows],
                         [(ms(e["event"]["occurredAt"]), str(e["seq"]), e["type"], e["event"]["eventId"]) for e in tl])
        # One precision for the times of a column (milliseconds), whatever the events' own: the column lines up.
        times = [x["TIME"] for x in rows] + re.findall(r"(?m)^  [A-Za-z]+ +(\S+)$", r.out.split("milestones")[1].split("\n\n")[0])
        self.assertTrue(times and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", x) for x in times), times)
        for x, e in zip(rows, tl):
            src = e["event"]["source"]
            self.assertEqual(x["SOURCE"], src["system"] + ("/" + src["instance"] if "instance" in src else ""))
            for k, val in (e["event"].get(e["type"]) or {}).items():
                if isinstance(val, str):
                    self.assertIn("%s=%s" % (k, val), x["DETAIL"], (x, e))
        return api_json

    def test_06_orders_and_shipments(self):
        orders = sorted({i["orderId"] for v in VIEWS for i in D.dump[v] if "orderId" in i})
        stages = set()
        for o in orders[:: max(1, len(orders) // 40)] + ["CTL-AR-0010"]:
            if o.startswith("CTL-BAD"):
                continue
            stages.add(self.entity_checks("order", o)["stage"])
        self.assertGreaterEqual(len(stages), 3, "the sample should reach several stages: %s" % stages)
        # Counts in words: one approval, nothing shipped.
        r = ctl("order", "CTL-AR-0001", check=0)
        for line in ("no shipments", "1 open exception:", "timeline (1 event):"):
            self.assertRegex(r.out, r"(?m)^%s$" % re.escape(line), r.out)
        self.assertNotRegex(r.out, r"\((0|1) [a-z]+s\)|^shipments \(0\)", r.out)
        ships = sorted({i["shipmentId"] for v in VIEWS if v != "dead_letters" for i in D.dump[v] if "shipmentId" in i})
        self.assertTrue(ships)
        for s in ships[:: max(1, len(ships) // 25)]:
            self.entity_checks("shipment", s)

    def test_07_search(self):
        for qq in ("CTL-AR-001", "CTL-CUST-1", "SO-", "SH-", "ZZZ-nothing"):
            want = self.get("/api/v1/search?q=" + urllib.parse.quote(qq))
            r = ctl("search", qq, "--json", check=0)
            self.assertEqual(json.loads(r.out), want)
            r = ctl("search", qq, check=0)
            lines = [("order " + x) for x in want["orders"]] + [("shipment " + x) for x in want["shipments"]] + \
                    ["customer %s order %s" % (c["customerId"], c["orderId"]) for c in want["customers"]]
            self.assertEqual(r.out.splitlines(), lines, qq)
        self.assertIn("customer CTL-CUST-1 order CTL-AR-0010", ctl("search", "CTL-CUST-1", check=0).out)

    def test_08_dlq_list(self):
        want = D.dump["dead_letters"]
        self.assertGreater(len(want), 3)
        r = ctl("dlq", "list", "--all", "--limit", 3, check=0)
        _, rows = parse_table(r.out, "SEQ")
        self.assertEqual([(int(x["SEQ"]), x["CODE"]) for x in rows], [(i["seq"], i["code"]) for i in want])
        r = ctl("dlq", "list", "--limit", 5, "--json", check=0)
        self.assertEqual(no_age(json.loads(r.out)), no_age(self.get("/api/v1/dead-letters?limit=5")))
        self.assertIn("raw", json.loads(r.out)["items"][0], "dlq list --json carries the raw bytes")

    def test_09_export_csv(self):
        for v in VIEWS:
            r = ctl("export", v, "--csv", "--limit", 9, check=0)
            raw = r.out.encode("utf-8")
            want = D.dump[v]
            self.assertTrue(raw.endswith(b"\r\n"), v)
            self.assertNotIn(b"\n", raw.replace(b"\r\n", b""), "export %s: CRLF line ends" % v)
            rows = list(csv.reader(io.StringIO(r.out, newline="")))
            header, body = rows[0], rows[1:]
            self.assertIn("since", header)
            self.assertEqual(len(body), len(want), "export %s: every item once" % v)
            clock = ("ageSeconds", "state")  # decided when read; `towerd dump` has no state
            got = [{k: val for k, val in zip(header, row) if k not in clock} for row in body]
            expect = [{k: cell(i.get(k)) if i.get(k) is not None else "" for k in header if k not in clock}
                      for i in want]
            self.assertEqual(got, expect, "export %s" % v)
            keys = [tuple(sorted(x.items())) for x in got]
            self.assertEqual(len(keys), len(set(keys)), "export %s: an item twice" % v)
            # every field of the item shape (docs/contract.md) is a column: nothing the support team needs is lost
            shape = {"since", "ageSeconds", "orderId", "shipmentId", "warehouseId", "carrierId", "kind", "reason",
                     "sku", "lastFailure", "interface", "rule", "seq", "code", "message", "receivedAt", "eventId",
                     "exceptionId", "assignee", "acknowledgedAt", "acknowledgedBy", "snoozedUntil", "notes",
                     "slaDueAt"}
            for i in want:
                self.assertTrue(set(i) & shape <= set(header),
                                "export %s: fields %s not exported" % (v, (set(i) & shape) - set(header)))
            self.assertIn("%d item%s of %s" % (len(want), "" if len(want) == 1 else "s", v), r.err)
        quoted = ctl("export", "dead_letters", "--csv", check=0).out
        self.assertIn('""', quoted, "a dead letter message with quotes is quoted RFC 4180 style")
        r = ctl("export", "awaiting_release", "--warehouse", "dc-2", "--older-than", "2h", "--json", check=0)
        now = time.time()
        self.assertEqual([no_age(json.loads(x)) for x in r.out.splitlines()],
                         [i for i in D.dump["awaiting_release"] if i.get("warehouseId") == "dc-2"
                          and fx_ts(i["since"]) < now - 7200])


def fx_ts(s):
    """RFC 3339 UTC -> seconds (float)."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z$", s)
    base = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    return base + (float(m.group(7)) if m.group(7) else 0.0)


# ---------------------------------------------------------------------------------------------
# errors and exit codes

class StubHandler(http.server.BaseHTTPRequestHandler):
    """Answers by path: /status/NNN -> NNN with an error body; records the Authorization header, and the
    method, path and body of every request."""
    seen = []
    requests = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        StubHandler.seen.append(self.headers.get("Authorization"))
        n = int(self.headers.get("Content-Length") or 0)
        StubHandler.requests.append((self.command, self.path, self.rfile.read(n) if n else b""))
        m = re.search(r"/(\d{3})(?:/|$|\?)", self.path)
        status = int(m.group(1)) if m else 200
        if "html" in self.path:
            body = b"<html><body>Bad Gateway</body></html>"
            ctype = "text/html"
        elif self.path.endswith("/exceptions/actions"):
            body = b'{"done":0,"failed":0,"results":[]}'
            ctype = "application/json"
        else:
            code = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 500: "INTERNAL", 503: "STORE_UNAVAILABLE"}.get(status, "X")
            body = json.dumps({"error": {"code": code, "message": "stub says %d" % status}}).encode()
            ctype = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET


class T03Errors(Base):
    def test_10_server_errors(self):
        self.assertServerError(ctl("order", "NOPE-1"), 4, "NOT_FOUND")
        self.assertServerError(ctl("shipment", "NOPE-1"), 4, "NOT_FOUND")
        self.assertServerError(ctl("stuck", "nope"), 4, "UNKNOWN_VIEW")
        self.assertServerError(ctl("export", "nope", "--csv"), 4, "UNKNOWN_VIEW")
        self.assertServerError(ctl("stuck", "blocked", "--limit", 5000), 3, "INVALID_PARAMETER", "limit")
        self.assertServerError(ctl("stuck", "blocked", "--cursor", "zz"), 3, "INVALID_PARAMETER", "cursor")
        # publish against a server without NATS: 503, nothing taken
        path = os.path.join(D.root, "one.ndjson")
        with open(path, "w") as f:
            f.write(json.dumps({"eventId": "x-1", "occurredAt": "2026-11-02T06:00:00Z", "source": {"system": "erp"},
                                "orderId": "X-1", "orderApproved": {}}) + "\n")
        r = ctl("publish", path)
        self.assertEqual(r.rc, 1, r.describe())
        self.assertIn("towerctl: NO_BUS: ", r.err)

    def json_errors(self, r):
        """Every stderr line of a --json run: one JSON object each."""
        objs = []
        for line in r.err.splitlines():
            try:
                objs.append(json.loads(line))
            except ValueError:
                self.fail("with --json, a stderr line is not JSON: %r\n%s" % (line, r.describe()))
        return objs

    def test_10b_json_errors(self):
        """With --json every error is one JSON object a line on stderr ({"error":{"code","message",...}}, the
        API's shape), stdout stays empty, and the exit codes are those of the text mode."""
        port = fx.free_port()
        # (arguments, exit code, error code, HTTP status); the same exit code without --json unless marked
        cases = [(("order", "NOPE-1"), 4, "NOT_FOUND", 404), (("stuck", "nope"), 4, "UNKNOWN_VIEW", 404),
                 (("stuck", "blocked", "--limit", 5000), 3, "INVALID_PARAMETER", 400),
                 (("stuck", "blocked", "--limit"), 2, "USAGE", None), (("bogus",), 2, "USAGE", None),
                 ((), 2, "USAGE", None), (("publish", "x.ndjson", "--batch", "10001"), 2, "USAGE", None),
                 (("summary", "--url", "http://127.0.0.1:%d" % port), 1, "UNREACHABLE", None),
                 (("export", "blocked", "--csv"), 2, "USAGE", None)]  # --csv and --json exclude each other
        for args, rc, code, status in cases:
            r = ctl("--json", *args)
            self.assertEqual(r.rc, rc, r.describe())
            if args[:1] != ("export",):
                text = ctl(*args)
                self.assertEqual(text.rc, rc, "the same exit code without --json: " + text.describe())
                self.assertFalse(text.err.lstrip().startswith("{"), "without --json, errors are text")
            self.assertEqual(r.out, "", "nothing on stdout after an error: " + r.describe())
            objs = self.json_errors(r)
            self.assertEqual(len(objs), 1, r.describe())
            e = objs[0]["error"]
            self.assertEqual(e["code"], code, r.describe())
            self.assertTrue(e["message"] and not e["message"].startswith("towerctl"), e)
            if status:
                self.assertEqual(e["status"], status, e)
        # Bytes that are not UTF-8 (an argument, a file name) are replaced: the line is still JSON.
        r = ctl("--json", "bogus\udcff\x01", check=2)
        e = self.json_errors(r)[0]["error"]
        self.assertEqual(e["code"], "USAGE", r.describe())
        self.assertIn("bogus?", e["message"])
        r = ctl("--json", "publish", os.path.join(D.root, "nope\udcfe.ndjson"), check=1)
        self.assertIn("nope?.ndjson", self.json_errors(r)[0]["error"]["message"], r.describe())
        # --json after the command too, and the server's field
        e = self.json_errors(ctl("stuck", "blocked", "--limit", 5000, "--json", check=3))[0]["error"]
        self.assertEqual((e["code"], e["field"]), ("INVALID_PARAMETER", "limit"), e)

    def test_11_unreachable(self):
        port = fx.free_port()
        for args in (("summary",), ("order", "X"), ("stuck", "blocked", "--all"), ("export", "blocked", "--csv"),
                     ("watch",)):
            r = ctl(*args, url="http://127.0.0.1:%d" % port, timeout=60)
            self.assertEqual(r.rc, 1, r.describe())
            self.assertIn("cannot reach http://127.0.0.1:%d" % port, r.err, r.describe())
            self.assertEqual(r.out, "", r.describe())

    def test_12_token_and_status_codes_against_a_stub(self):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
        th = threading.Thread(target=srv.serve_forever, daemon=True)
        th.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        base = "http://127.0.0.1:%d" % srv.server_address[1]
        token = "tok-%d-secret" % os.getpid()
        for status, rc in ((401, 5), (403, 5), (404, 4), (400, 3), (500, 1), (503, 1)):
            StubHandler.seen.clear()
            r = ctl("summary", url=base + "/s/%d" % status, env={"TOWER_TOKEN": token})
            self.assertEqual(r.rc, rc, "HTTP %d: %s" % (status, r.describe()))
            self.assertIn("stub says %d" % status, r.err)
            self.assertEqual(StubHandler.seen, ["Bearer " + token], "the token is sent as a bearer header")
            self.assertNotIn(token, r.out + r.err, "the token was printed")
        r = ctl("summary", url=base + "/html/502")
        self.assertEqual(r.rc, 1, r.describe())
        self.assertIn("HTTP 502", r.err)
        # flag beats environment beats config file
        conf = os.path.join(D.root, "ctl.conf")
        with open(conf, "w") as f:
            f.write("[nats]\nurl = nats://ignored:4222\n[towerctl]\nurl = %s/s/403\ntoken = from-file\n" % base)
        StubHandler.seen.clear()
        r = ctl("--config", conf, "summary", url="")
        self.assertEqual((r.rc, StubHandler.seen), (5, ["Bearer from-file"]), r.describe())
        StubHandler.seen.clear()
        r = ctl("summary", "--config", conf, env={"TOWER_TOKEN": "from-env"}, url="")
        self.assertEqual((r.rc, StubHandler.seen), (5, ["Bearer from-env"]), r.describe())
        StubHandler.seen.clear()
        r = ctl("summary", "--token", "from-flag", env={"TOWER_CONFIG": conf, "TOWER_TOKEN": "from-env"}, url="")
        self.assertEqual((r.rc, StubHandler.seen), (5, ["Bearer from-flag"]), r.describe())
        for t in ("from-file", "from-env", "from-flag"):
            self.assertNotIn(t, r.out + r.err)
        r = ctl("summary", "--token", "bad token", url=base)
        self.assertEqual(r.rc, 2, r.describe())
        self.assertNotIn("bad token", r.err)


    def test_12b_real_tokens(self):
        """Against `towerd serve --tokens`: no token or a wrong one is 401 (exit 5), a token without the
        role is 403 (exit 5), a viewer token reads; the token is never printed."""
        helptext = D.t.run("serve", "--help", check=0).out
        if "--tokens" not in helptext:
            self.skipTest("this towerd serve has no --tokens yet")
        lines = []
        for name, role in (("v", "viewer"), ("i", "ingest")):
            tok = "ctl-%s-%d-secret" % (role, os.getpid())
            r = D.t.run("token", "--hash", name, role, input=tok + "\n", check=0)
            lines.append(r.out.strip())
            setattr(self, role, tok)
        tf = os.path.join(D.root, "tokens")
        with open(tf, "w") as f:
            f.write("\n".join(lines) + "\n")
        srv = fx.TowerServe(D.t, D.data, os.path.join(D.root, "serve-tokens.log"), args=["--no-nats", "--tokens", tf])
        self.addCleanup(srv.kill)
        srv.start()
        self.assertServerError(ctl("summary", url=srv.url), 5, "UNAUTHORIZED")
        self.assertServerError(ctl("summary", "--token", "wrong-token", url=srv.url), 5, "UNAUTHORIZED")
        r = ctl("stuck", "blocked", "--token", self.ingest, url=srv.url)
        self.assertServerError(r, 5, "FORBIDDEN")
        self.assertNotIn(self.ingest, r.err)
        r = ctl("summary", "--json", env={"TOWER_TOKEN": self.viewer}, url=srv.url, check=0)
        self.assertEqual(json.loads(r.out)["appliedSeq"], D.status["appliedSeq"])
        self.assertEqual(srv.stop(), 0, srv.log())


# ---------------------------------------------------------------------------------------------
# the write side: a real nats-server, projector and `towerd serve --nats`

class Live:
    pass


L = None


def live():
    """The NATS fixture, started once for the tests that need it."""
    global L
    if L is not None:
        return L
    lv = Live()
    lv.root = fx.make_tempdir("tower-it-ctl-live-")
    lv.nats = fx.NatsServer(root=os.path.join(lv.root, "nats")).start()
    lv.t = fx.Towerd(TOWERD, lv.nats)
    lv.t.cwd = lv.root
    lv.data = os.path.join(lv.root, "store")
    lv.proj = fx.Projector(lv.t, lv.data, log_path=os.path.join(lv.root, "projector.log")).start()
    lv.serve = fx.TowerServe(lv.t, lv.data, os.path.join(lv.root, "serve.log"), args=["--nats", lv.nats.url])
    lv.serve.start()
    # Ready, not only alive: the store readable (the projector creates it) and NATS connected; the first
    # test to use this fixture may be a write (test_15's redrive), not only a publish that waits.
    deadline = time.monotonic() + fx.tmo(30)
    while api(lv.serve.url, "/readyz")[0] != 200:
        if time.monotonic() > deadline:
            raise AssertionError("towerd serve not ready: %s\n%s" % (api(lv.serve.url, "/readyz"), lv.serve.log()))
        time.sleep(0.1)
    lv.client = fx.NatsClient(lv.nats.url)
    L = lv
    return lv


def close_live():
    if L is None:
        return
    L.client.close()
    L.serve.kill()
    L.proj.close()
    L.nats.close()
    fx.remove_tempdir(L.root)


def fold_problems(t, root, path):
    """(line, code) of every line `towerd fold` rejects, and its stable dump."""
    d = os.path.join(root, "fold-%d" % int(time.monotonic() * 1000))
    r = t.run("fold", "--data", d, path, timeout=300)
    probs = set()
    for line in r.err.splitlines():
        m = re.match(r"^.*:(\d+): ([A-Z_]+): ", line)
        if m:
            probs.add((int(m.group(1)), m.group(2)))
    return probs, t.dump(d)


class T04Publish(Base):
    def test_13_publish_chunks_and_problems(self):
        lv = live()
        trace = os.path.join(lv.root, "pub.ndjson")
        lv.t.gen(trace, SEED + 1, fx.scaled(150, 60))
        r = ctl("publish", trace, "--batch", 97, url=lv.serve.url, timeout=300)
        self.assertEqual(r.rc, 3, "the generated trace holds bad lines: " + r.describe())
        problems = {(int(m.group(1)), m.group(2))
                    for m in re.finditer(r"(?m)^%s:(\d+): ([A-Z_]+): " % re.escape(trace), r.err)}
        want, offline = fold_problems(lv.t, lv.root, trace)
        want = {p for p in want if p[1] != "CONFLICTING_DUPLICATE"}  # the projector finds those, not ingest
        self.assertTrue(want)
        self.assertEqual(problems, want, "publish reports the lines fold rejects")
        m = re.search(r"(\d+) events sent in (\d+) requests: (\d+) accepted, (\d+) duplicates, (\d+) rejected, "
                      r"(\d+) failed", r.out)
        self.assertIsNotNone(m, r.out)
        n, reqs, acc, dup, rej, failed = (int(x) for x in m.groups())
        nonblank = sum(1 for x in open(trace, "rb") if x.strip())
        self.assertEqual(n, nonblank)
        self.assertEqual((rej, failed), (len(want), 0))
        self.assertEqual(acc + dup + rej, n)
        self.assertEqual(reqs, -(-n // 97), "one request per 97 events")
        fx.wait_caught_up(lv.t, lv.data, lv.client, lv.proj)
        self.assertIsNone(fx.diff_views(lv.t.dump(lv.data), offline), "the projector's views equal an offline fold")
        # the same file again from stdin: nothing new, every result with its line
        with open(trace, "rb") as f:
            r = ctl("publish", "-", "--json", url=lv.serve.url, input=f.read(), timeout=300)
        self.assertEqual(r.rc, 3, r.describe())
        j = json.loads(r.out)
        self.assertEqual((j["accepted"], j["rejected"], j["requests"]), (0, len(want), 1))
        self.assertEqual({(x["line"], x["error"]["code"]) for x in j["results"] if x["status"] == "rejected"}, want)
        # with --json each problem is a JSON error naming its file and line (text without --json, above)
        errs = [json.loads(x)["error"] for x in r.err.splitlines()]
        self.assertEqual({(e["line"], e["code"]) for e in errs if e.get("file") == "-"}, want, r.err[:2000])

    def test_14_publish_limits(self):
        lv = live()
        # over 10,000 events: two requests by count
        many = os.path.join(lv.root, "many.ndjson")
        with open(many, "w") as f:
            for k in range(10050):
                f.write(json.dumps({"eventId": "ctl-many-%05d" % k, "occurredAt": "2026-11-03T06:00:00Z",
                                    "source": {"system": "erp"}, "orderId": "CTL-MANY-%05d" % k,
                                    "orderApproved": {"warehouseId": "dc-9"}}) + "\n")
                if k % 1000 == 0:
                    f.write("\n   \n")  # blank lines are skipped, not counted
        r = ctl("publish", many, "--json", url=lv.serve.url, timeout=300, check=0)
        j = json.loads(r.out)
        self.assertEqual((j["records"], j["accepted"], j["requests"]), (10050, 10050, 2), r.err[-2000:])
        # over 4 MiB in fewer than 10,000 events: split by bytes (padding in a field the tower ignores)
        big = os.path.join(lv.root, "big.ndjson")
        pad = "p" * 3000
        with open(big, "w") as f:
            for k in range(1800):
                f.write(json.dumps({"eventId": "ctl-big-%05d" % k, "occurredAt": "2026-11-03T07:00:00Z",
                                    "source": {"system": "erp"}, "orderId": "CTL-BIG-%05d" % k,
                                    "orderApproved": {"warehouseId": "dc-8"}, "padding": pad}) + "\n")
        self.assertGreater(os.path.getsize(big), 4 * 1024 * 1024)
        r = ctl("publish", big, "--json", url=lv.serve.url, timeout=300, check=0)
        j = json.loads(r.out)
        self.assertEqual((j["accepted"], j["requests"]), (1800, 2), r.err[-2000:])
        fx.wait_caught_up(lv.t, lv.data, lv.client, lv.proj)
        for w, n in (("dc-9", 10050), ("dc-8", 1800)):
            r = ctl("export", "awaiting_release", "--warehouse", w, "--csv", url=lv.serve.url, check=0)
            self.assertEqual(len(r.out.splitlines()) - 1, n, "export of %s after publish" % w)
        # cells a spreadsheet would evaluate come out as text (CSV injection), numbers stay numbers
        evil = {"eventId": "ctl-csv-1", "occurredAt": "2026-11-03T08:00:00Z", "source": {"system": "finance"},
                "orderId": "CTL-CSV-1", "postingFailed": {"reason": '=HYPERLINK("http://x.example/","y")',
                                                          "interface": "@SUM(A1)"}}
        path = os.path.join(lv.root, "evil.ndjson")
        with open(path, "w") as f:
            f.write(json.dumps(evil) + "\n")
        r = ctl("publish", path, url=lv.serve.url)
        self.assertEqual(r.rc, 0, r.describe())
        fx.wait_caught_up(lv.t, lv.data, lv.client, lv.proj)
        r = ctl("export", "posting_failed", "--csv", url=lv.serve.url, check=0)
        rows = list(csv.reader(io.StringIO(r.out, newline="")))
        row = [dict(zip(rows[0], x)) for x in rows[1:] if "CTL-CSV-1" in x]
        self.assertEqual(len(row), 1, r.out[-2000:])
        self.assertEqual((row[0]["reason"], row[0]["interface"]), ("'" + evil["postingFailed"]["reason"], "'@SUM(A1)"))
        self.assertRegex(row[0]["ageSeconds"], r"^\d+$")
        arr = os.path.join(lv.root, "array.json")
        with open(arr, "w") as f:
            f.write("[{}]\n")
        r = ctl("publish", arr, url=lv.serve.url)
        self.assertEqual(r.rc, 2, r.describe())
        self.assertIn("NDJSON", r.err)


# ---------------------------------------------------------------------------------------------
# dead-letter redrive

def ev(eid, order, at="2026-11-04T06:00:00Z", wh="dc-1"):
    return {"eventId": eid, "occurredAt": at, "source": {"system": "erp"}, "orderId": order,
            "orderApproved": {"warehouseId": wh}}


class T05Redrive(Base):
    def test_15_dlq_redrive(self):
        lv = live()
        probe = ctl("dlq", "redrive", "987654321", url=lv.serve.url)
        if probe.rc == 4 and "no route" in probe.err:
            self.skipTest("the server has no redrive route yet (%s)" % probe.err.strip())
        self.assertEqual(probe.rc, 4, "an unknown sequence is 404: " + probe.describe())
        # a conflicting duplicate: same eventId, other content -> a dead letter in the projector's store
        path = os.path.join(lv.root, "conflict.ndjson")
        with open(path, "w") as f:
            f.write(json.dumps(ev("ctl-conf-1", "CTL-CONF-1")) + "\n")
        ctl("publish", path, url=lv.serve.url, check=0)
        with open(path, "w") as f:
            f.write(json.dumps(ev("ctl-conf-1", "CTL-CONF-1", wh="dc-7")) + "\n")
        ctl("publish", path, url=lv.serve.url, check=0)
        fx.wait_caught_up(lv.t, lv.data, lv.client, lv.proj)
        dl = json.loads(ctl("dlq", "list", "--all", "--json", url=lv.serve.url, check=0).out)["items"]
        mine = [d for d in dl if d.get("eventId") == "ctl-conf-1"]
        self.assertEqual([d["code"] for d in mine], ["CONFLICTING_DUPLICATE"], dl)
        seq = mine[0]["seq"]
        # an invalid correction: 400, exit 3
        bad = os.path.join(lv.root, "bad.json")
        with open(bad, "w") as f:
            f.write('{"eventId":"ctl-conf-1b","source":{"system":"erp"},"orderId":"CTL-CONF-1","orderApproved":{}}')
        r = ctl("dlq", "redrive", seq, "--body", bad, url=lv.serve.url)
        self.assertEqual(r.rc, 3, r.describe())
        self.assertRegex(r.err, r"towerctl: [A-Z_]+: ")
        # a corrected event under a new id: accepted, then applied
        good = os.path.join(lv.root, "good.json")
        with open(good, "w") as f:
            f.write(json.dumps(ev("ctl-conf-1b", "CTL-CONF-2", wh="dc-7")))
        r = ctl("dlq", "redrive", seq, "--body", good, "--json", url=lv.serve.url, check=0)
        j = json.loads(r.out)
        self.assertEqual((j["deadLetter"], j["eventId"], j["result"]), (seq, "ctl-conf-1b", "accepted"))
        r = ctl("dlq", "redrive", seq, "--body", good, url=lv.serve.url, check=0)
        self.assertIn("ctl-conf-1b was already stored (duplicate)", r.out)
        fx.wait_caught_up(lv.t, lv.data, lv.client, lv.proj)
        r = ctl("order", "CTL-CONF-2", url=lv.serve.url, check=0)
        self.assertIn("ctl-conf-1b", r.out)
        # as stored: the server decides (accepted or duplicate), the answer names the event
        r = ctl("dlq", "redrive", seq, "--json", url=lv.serve.url)
        self.assertIn(r.rc, (0, 3), r.describe())
        if r.rc == 0:
            self.assertEqual(json.loads(r.out)["eventId"], "ctl-conf-1")


# ---------------------------------------------------------------------------------------------
# watch

class Watcher:
    """`towerctl watch` in the background; its stdout lines in a queue, stderr in a file."""

    def __init__(self, url, *args):
        self.errpath = os.path.join(L.root, "watch-%d.err" % time.monotonic_ns())
        errf = open(self.errpath, "wb")
        self.p = fx.spawn([TOWERCTL, "watch"] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=errf,
                          stdin=subprocess.DEVNULL, env=ctl_env(url=url))
        errf.close()
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.decode("utf-8", "replace").rstrip("\n"))
        self.q.put(None)

    def wait_for(self, pred, what, timeout=60):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError("watch exited (%s) before %s; stderr:\n%s" % (self.p.wait(), what, self.err()))
            self.lines.append(line)
            if pred(line):
                return line
        raise AssertionError("no %s within %.0fs; the last lines (cut at 300 characters): %s; stderr:\n%s"
                             % (what, fx.tmo(timeout), [x[:300] for x in self.lines[-10:]], self.err()[-3000:]))

    def err(self):
        with open(self.errpath, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGINT):
        self.p.send_signal(sig)
        rc = self.p.wait(timeout=fx.tmo(20))
        fx.reap(self.p)
        return rc


def has_stream(port):
    """Whether the server answers a websocket upgrade of /api/v1/stream with 101 (civetweb closes the
    connection without an answer when no websocket handler is registered there)."""
    with socket.create_connection(("127.0.0.1", port), timeout=fx.tmo(10)) as s:
        s.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        try:
            head = s.recv(4096)
        except OSError:
            head = b""
    return head.startswith(b"HTTP/1.1 101")



class StubStream:
    """A minimal websocket server of our own (RFC 6455 handshake and unfragmented frames) that plays the
    stream protocol from a script: it records the handshake headers and every message the client sends,
    and sends what the test tells it. One client at a time; a new connection replaces the old one."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.conns = queue.Queue()      # (connection, request head) per accepted client
        self.received = queue.Queue()   # text messages from clients
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import base64
        import hashlib
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk:
                    break
                head += chunk
            text = head.decode("latin-1")
            key = re.search(r"(?im)^sec-websocket-key: *(\S+)", text)
            if not key:
                c.close()
                continue
            acc = base64.b64encode(hashlib.sha1((key.group(1) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                                .encode()).digest()).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
            self.conns.put((c, text))
            threading.Thread(target=self._read, args=(c,), daemon=True).start()

    def _read(self, c):
        buf = b""
        try:
            while True:
                while len(buf) < 2:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                op, n = buf[0] & 15, buf[1] & 127
                i = 2
                if n == 126:
                    n, i = int.from_bytes(buf[2:4], "big"), 4
                elif n == 127:
                    n, i = int.from_bytes(buf[2:10], "big"), 10
                while len(buf) < i + 4 + n:
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                mask, data = buf[i:i + 4], buf[i + 4:i + 4 + n]
                buf = buf[i + 4 + n:]
                data = bytes(b ^ mask[k % 4] for k, b in enumerate(data))
                if op == 1:
                    self.received.put(data.decode())
                elif op == 8:
                    return
        except OSError:
            return

    @staticmethod
    def send(c, text):
        data = text.encode()
        n = len(data)
        head = bytes([0x81]) + (bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big") if n < 65536
                               else bytes([127]) + n.to_bytes(8, "big"))
        c.sendall(head + data)

    def next_conn(self, timeout=30):
        return self.conns.get(timeout=fx.tmo(timeout))

    def next_msg(self, timeout=30):
        return json.loads(self.received.get(timeout=fx.tmo(timeout)))

    def close(self):
        self.sock.close()


class T06Watch(Base):
    def test_16a_watch_protocol_against_a_stub(self):
        """The client side of the protocol, whatever the server's state: the token header, subscribe, several
        messages in one frame, text and JSON lines, a resync asked when a sequence goes back, reconnection
        with a new subscription, and SIGINT/SIGTERM -> exit 0."""
        lv = live()  # only for its temporary directory
        st = StubStream()
        self.addCleanup(st.close)
        url = "http://127.0.0.1:%d" % st.port
        w = Watcher(url, "--json", "--views", "blocked,missing_pod", "--warehouse", "dc-2", "--token", "tok-ws-1")
        self.addCleanup(lambda: w.p.poll() is None and w.p.kill())
        c, head = st.next_conn()
        self.assertRegex(head, r"(?m)^GET /api/v1/stream HTTP/1.1\r$")
        self.assertRegex(head, r"(?im)^authorization: Bearer tok-ws-1\r$")
        self.assertEqual(st.next_msg(), {"type": "subscribe", "views": ["blocked", "missing_pod"], "warehouse": "dc-2"})
        msgs = [{"type": "snapshot", "view": "blocked", "seq": 10, "count": 1,
                 "items": [{"since": "2026-11-02T06:00:00Z", "orderId": "SO-1", "warehouseId": "dc-2"}]},
                {"type": "delta", "view": "blocked", "seq": 11, "op": "add",
                 "item": {"since": "2026-11-02T07:00:00Z", "shipmentId": "SH-2", "orderId": "SO-2",
                          "warehouseId": "dc-2", "carrierId": "dhl", "kind": "SHIPMENT"}},
                {"type": "summary", "seq": 11, "views": {"blocked": {"count": 2, "oldestSince": "2026-11-02T06:00:00Z"}}}]
        st.send(c, "\n".join(json.dumps(m) for m in msgs))          # three messages in one frame
        for m in msgs:
            self.assertEqual(json.loads(w.wait_for(lambda x: True, "message %s" % m["type"])), m)
        # a sequence going back: the client asks for a fresh snapshot of that view
        st.send(c, json.dumps({"type": "delta", "view": "blocked", "seq": 9, "op": "remove",
                               "item": {"orderId": "SO-1", "warehouseId": "dc-2"}}) + "\n")
        w.wait_for(lambda x: json.loads(x).get("seq") == 9, "the late delta")
        self.assertEqual(st.next_msg(), {"type": "resync", "view": "blocked"})
        # the connection drops: watch says so, reconnects and subscribes again
        c.shutdown(socket.SHUT_RDWR)
        c.close()
        c2, _ = st.next_conn(timeout=60)
        self.assertEqual(st.next_msg()["type"], "subscribe")
        self.assertIn("reconnecting", w.err())
        st.send(c2, json.dumps({"type": "resync", "reason": "slow client"}))
        w.wait_for(lambda x: json.loads(x).get("type") == "resync", "the resync message")
        self.assertEqual(w.stop(signal.SIGINT), 0, w.err())
        self.assertIsNone(SANITIZER.search(w.err()), w.err())
        self.assertNotIn("tok-ws-1", w.err() + "\n".join(w.lines))

        # text mode
        t = Watcher(url, "--summaries")
        self.addCleanup(lambda: t.p.poll() is None and t.p.kill())
        c, _ = st.next_conn()
        self.assertEqual(st.next_msg(), {"type": "subscribe"})
        st.send(c, "\n".join(json.dumps(m) for m in msgs) + "\n" + json.dumps(
            {"type": "resync", "reason": "queue full"}))
        t.wait_for(lambda x: re.search(r"  snapshot  blocked  seq 10  count 1  items 1$", x), "the snapshot line")
        t.wait_for(lambda x: re.search(r"  delta  blocked  add  seq 11  shipment SH-2 \(order SO-2\)  warehouse dc-2  "
                                       r"carrier dhl$", x), "the delta line")
        t.wait_for(lambda x: re.search(r"  summary  seq 11  blocked=2$", x), "the summary line")
        t.wait_for(lambda x: re.search(r"  resync  queue full  \(a new snapshot follows\)$", x), "the resync line")
        st.send(c, json.dumps({"type": "error", "error": {"code": "BAD_VIEW", "message": "no view x",
                                                          "field": "views"}}))
        deadline = time.monotonic() + fx.tmo(10)
        while "BAD_VIEW" not in t.err() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn("towerctl: BAD_VIEW: no view x (field views)", t.err())
        self.assertIsNone(t.p.poll(), "an error after data does not end watch")
        self.assertEqual(t.stop(signal.SIGTERM), 0, t.err())
        # an error before any data: the subscription was refused -> exit 3
        r = Watcher(url, "--views", "nope")
        c, _ = st.next_conn()
        st.next_msg()
        st.send(c, json.dumps({"type": "error", "error": {"code": "UNKNOWN_VIEW", "message": "no view nope"}}))
        self.assertEqual(r.p.wait(timeout=fx.tmo(20)), 3, r.err())
        fx.reap(r.p)

    def test_16b_watch_live(self):
        lv = live()
        if not has_stream(lv.serve.port):
            r = ctl("watch", url=lv.serve.url, timeout=30)
            self.assertEqual(r.rc, 1, "no stream at all: " + r.describe())
            self.skipTest("the server has no websocket stream yet (towerctl says: %s)" % r.err.strip())
        w = Watcher(lv.serve.url, "--json", "--views", "awaiting_release,blocked")
        self.addCleanup(lambda: w.p.poll() is None and w.p.kill())
        first = w.wait_for(lambda x: True, "a first message", timeout=30)
        seen = {}

        def snap(line):
            m = json.loads(line)
            if m.get("type") == "snapshot":
                seen[m["view"]] = m
            return set(seen) >= {"awaiting_release", "blocked"}
        if not snap(first):
            w.wait_for(snap, "snapshots of both views")
        self.assertEqual(set(seen), {"awaiting_release", "blocked"}, "only the views subscribed to")
        t = Watcher(lv.serve.url, "--views", "awaiting_release", "--warehouse", "dc-5")
        self.addCleanup(lambda: t.p.poll() is None and t.p.kill())
        t.wait_for(lambda x: "snapshot  awaiting_release" in x, "a text snapshot line")
        path = os.path.join(lv.root, "live.ndjson")
        with open(path, "w") as f:
            for k in range(5):
                f.write(json.dumps(ev("ctl-live-%d" % k, "CTL-LIVE-%d" % k, wh="dc-5" if k % 2 else "dc-6")) + "\n")
        ctl("publish", path, url=lv.serve.url, check=0)
        got = set()

        def delta(line):
            m = json.loads(line)
            if m.get("type") == "delta" and m.get("view") == "awaiting_release" and m.get("op") == "add":
                got.add(m["item"].get("orderId"))
            return {"CTL-LIVE-%d" % k for k in range(5)} <= got
        w.wait_for(delta, "deltas adding the five orders")
        for k in (1, 3):
            t.wait_for(lambda x, k=k: re.search(r"  delta  awaiting_release  add  seq \d+  order CTL-LIVE-%d  "
                                                r"warehouse dc-5  carrier -$" % k, x), "the text delta of order %d" % k)
        self.assertFalse([x for x in t.lines if "dc-6" in x], "--warehouse dc-5 shows no other warehouse")
        # the server goes away and comes back on the same port: watch says so and resubscribes
        port = lv.serve.port
        lv.serve.stop()
        lv.serve.start(port=port)
        t.wait_for(lambda x: "snapshot  awaiting_release" in x, "a new snapshot after the reconnection", timeout=90)
        self.assertIn("reconnecting", t.err())
        self.assertEqual(w.stop(signal.SIGINT), 0, w.err())
        self.assertEqual(t.stop(signal.SIGTERM), 0, t.err())
        for x in (w, t):
            self.assertIsNone(SANITIZER.search(x.err()), x.err())


# ---------------------------------------------------------------------------------------------
# working exceptions (docs/exceptions.md): ack, assign, snooze, note, resolve, reopen, exception, mine

NOPE_ID = "o~CTL-NOPE-1~awaiting_release~1764662411000000000"  # well-formed, never seen


class T07Exceptions(Base):
    """Every lifecycle command against the live tower (real nats-server, projector, `towerd serve --nats`,
    loopback mode: the actor is `local`), and against the same tower with `--tokens` for the roles and
    `me`. Each test publishes its own orders (awaiting_release items in a warehouse of its own), so
    the tests do not depend on each other."""

    def fresh(self, tag, n=1):
        """Publish n orders awaiting release in warehouse dc-x-TAG; wait until the projector applied
        them; return their exception ids, oldest first (as the API lists them)."""
        lv = live()
        wh = "dc-x-" + tag
        path = os.path.join(lv.root, "exc-%s.ndjson" % tag)
        now = int(time.time())
        with open(path, "w") as f:
            for k in range(n):
                f.write(json.dumps(ev("ctl-exc-%s-%d" % (tag, k), "CTL-EXC-%s-%d" % (tag, k),
                                      at=rfc3339(now - 3600 - 60 * (n - k)), wh=wh)) + "\n")
        ctl("publish", path, url=lv.serve.url, check=0)
        fx.wait_caught_up(lv.t, lv.data, lv.client, lv.proj)
        st, body = api(lv.serve.url, "/api/v1/views/awaiting_release?warehouse=%s&limit=1000" % wh)
        self.assertEqual(st, 200, body)
        items = body["items"]
        self.assertEqual([i["orderId"] for i in items], ["CTL-EXC-%s-%d" % (tag, k) for k in range(n)], body)
        for i in items:
            self.assertRegex(i.get("exceptionId", ""), r"^o~CTL-EXC-%s-\d+~awaiting_release~\d+$" % tag, i)
        self.wh = wh
        return [i["exceptionId"] for i in items]

    def view(self, **params):
        """The items of awaiting_release in this test's warehouse, from the API, with the filters given."""
        q = "&".join("%s=%s" % (k, urllib.parse.quote(v)) for k, v in params.items())
        st, body = api(live().serve.url, "/api/v1/views/awaiting_release?warehouse=%s&limit=1000%s"
                       % (self.wh, "&" + q if q else ""))
        self.assertEqual(st, 200, body)
        return body

    def exc(self, xid):
        st, body = api(live().serve.url, "/api/v1/exceptions/" + urllib.parse.quote(xid, safe="~:"))
        self.assertEqual(st, 200, body)
        return body

    def rows(self, r):
        """The result table of an action: EXCEPTION -> row."""
        _, rows = parse_table(r.out, "EXCEPTION")
        return {x["EXCEPTION"]: x for x in rows}

    def test_17a_ids_in_stuck_and_export(self):
        ids = self.fresh("ids", 3)
        lv = live()
        r = ctl("stuck", "awaiting_release", "--warehouse", self.wh, url=lv.serve.url, check=0)
        _, rows = parse_table(r.out, "AGE")
        self.assertEqual([(x["ORDER"], x["EXCEPTION"], x["STATE"], x["ASSIGNEE"]) for x in rows],
                         [("CTL-EXC-ids-%d" % k, ids[k], "open", "-") for k in range(3)], r.out)
        r = ctl("stuck", "awaiting_release", "--warehouse", self.wh, "--json", url=lv.serve.url, check=0)
        self.assertEqual([i["exceptionId"] for i in json.loads(r.out)["items"]], ids)
        r = ctl("export", "awaiting_release", "--warehouse", self.wh, "--state", "open", "--csv", url=lv.serve.url,
                check=0)
        rows = list(csv.DictReader(io.StringIO(r.out, newline="")))
        self.assertEqual([(x["orderId"], x["exceptionId"], x["state"], x["assignee"]) for x in rows],
                         [("CTL-EXC-ids-%d" % k, ids[k], "open", "") for k in range(3)], r.out)
        # the dead letters' table names their exception ids too
        r = ctl("stuck", "dead_letters", "--json", url=lv.serve.url, check=0)
        dl = json.loads(r.out)["items"]
        if dl:
            r = ctl("stuck", "dead_letters", url=lv.serve.url, check=0)
            _, rows = parse_table(r.out, "SEQ")
            self.assertEqual([x["EXCEPTION"] for x in rows], [cell(i.get("exceptionId")) for i in dl])
            self.assertTrue(all(x["EXCEPTION"].startswith("d~") for x in rows), rows)

    def test_17b_ack_one_and_show(self):
        ids = self.fresh("ack", 2)
        lv = live()
        r = ctl("ack", ids[0], "--note", "seen, calling the DC", url=lv.serve.url, check=0)
        row = self.rows(r)[ids[0]]
        self.assertEqual((row["STATE"], row["ASSIGNEE"]), ("acknowledged", "-"), r.out)
        self.assertEqual(self.exc(ids[0])["state"], "acknowledged", "the server agrees")
        self.assertEqual(self.exc(ids[1])["state"], "open", "only the one acknowledged")
        # --json: the server's answer, read-your-writes
        r = ctl("ack", ids[1], "--json", url=lv.serve.url, check=0)
        self.assertEqual(r.out.count("\n"), 1, "one line")
        j = json.loads(r.out)
        self.assertEqual((j["exception"]["exceptionId"], j["exception"]["state"]), (ids[1], "acknowledged"), j)
        self.assertIsInstance(j["seq"], int)
        self.assertTrue(j["eventId"])
        # exception ID: text and JSON
        want = self.exc(ids[0])
        r = ctl("exception", ids[0], "--json", url=lv.serve.url, check=0)
        self.assertEqual(no_age(json.loads(r.out)), no_age(want))
        self.assertEqual([n["note"] for n in want["notes"]], ["seen, calling the DC"])
        self.assertEqual([(h["action"], h["actor"]) for h in want["history"]], [("acknowledged", "local")])
        r = ctl("exception", ids[0], url=lv.serve.url, check=0)
        self.assertRegex(r.out, r"(?m)^exception +%s$" % re.escape(ids[0]))
        self.assertRegex(r.out, r"(?m)^view +awaiting_release$")
        self.assertRegex(r.out, r"(?m)^state +acknowledged$")
        self.assertRegex(r.out, r"(?m)^assignee +\(none\)$")
        self.assertRegex(r.out, r"(?m)^acknowledged +%s by local$" % re.escape(ms(want["acknowledgedAt"])))
        self.assertIn("orderId=CTL-EXC-ack-0", r.out)
        self.assertIn("notes (1):", r.out)
        self.assertRegex(r.out, r"(?m)^  \S+  local \(acknowledged\): seen, calling the DC$")
        self.assertIn("history (1 action):", r.out)
        _, hist = parse_table(r.out.split("history (")[1], "TIME")
        self.assertEqual([(x["SEQ"], x["ACTION"], x["ACTOR"]) for x in hist],
                         [(str(h["seq"]), "acknowledged", "local") for h in want["history"]])
        self.assertIn("note=seen, calling the DC", hist[0]["DETAIL"])

    def test_17c_assign_many_me_none_and_filters(self):
        ids = self.fresh("asg", 4)
        lv = live()
        r = ctl("assign", ids[0], ids[1], "dana", "--note", "yours", url=lv.serve.url, check=0)
        rows = self.rows(r)
        self.assertEqual({k: (v["STATE"], v["ASSIGNEE"]) for k, v in rows.items()},
                         {ids[0]: ("acknowledged", "dana"), ids[1]: ("acknowledged", "dana")}, r.out)
        self.assertIn("2 done, 0 failed", r.out)
        r = ctl("assign", ids[2], "me", "--json", url=lv.serve.url, check=0)
        self.assertEqual(json.loads(r.out)["exception"]["assignee"], "local", "me is the caller (loopback: local)")
        # the listing filters, through stuck
        for args, want in ((("--assignee", "dana"), ids[:2]), (("--assignee", "none"), ids[3:]),
                           (("--assignee", "me"), ids[2:3]), (("--state", "open"), ids[3:]),
                           (("--state", "acknowledged"), ids[:3]), (("--state", "open", "--assignee", "none"), ids[3:]),
                           (("--sort", "priority", "--state", "all"), None),
                           (("--sort", "newest", "--state", "all"), None), (("--sort", "slack", "--state", "all"), None)):
            r = ctl("stuck", "awaiting_release", "--warehouse", self.wh, "--json", *args, url=lv.serve.url, check=0)
            j = json.loads(r.out)
            got = [i["exceptionId"] for i in j["items"]]
            if want is None:
                self.assertEqual(sorted(got), sorted(ids), args)
                continue
            self.assertEqual(got, want, args)
            self.assertEqual(j["count"], len(want), "count is what the filters select: %s" % (args,))
            r = ctl("stuck", "awaiting_release", "--warehouse", self.wh, *args, url=lv.serve.url, check=0)
            _, rows = parse_table(r.out, "AGE") if want else (None, [])
            self.assertEqual([x["EXCEPTION"] for x in rows], want, r.out)
            self.assertIn("the filters match %d" % len(want), r.out)
        # mine: my queue across views (loopback: me is local)
        r = ctl("mine", "--json", url=lv.serve.url, check=0)
        mine = json.loads(r.out)
        items = mine.get("items", mine.get("exceptions"))
        self.assertIn(ids[2], [i["exceptionId"] for i in items])
        self.assertTrue(all(i.get("assignee") == "local" for i in items), items)
        r = ctl("mine", url=lv.serve.url, check=0)
        _, rows = parse_table(r.out, "AGE")
        self.assertEqual([x["EXCEPTION"] for x in rows], [i["exceptionId"] for i in items])
        self.assertIn("%d exception%s assigned to you" % (len(items), "" if len(items) == 1 else "s"), r.out)
        # unassign: every argument is an id
        r = ctl("assign", ids[0], ids[2], "--none", url=lv.serve.url, check=0)
        self.assertEqual({v["ASSIGNEE"] for v in self.rows(r).values()}, {"-"}, r.out)
        self.assertNotIn(ids[2], [i["exceptionId"] for i in
                                  json.loads(ctl("mine", "--json", url=lv.serve.url, check=0).out).get("items", [])])
        self.assertEqual(self.exc(ids[1])["assignee"], "dana")

    def test_17d_snooze(self):
        ids = self.fresh("snz", 3)
        lv = live()
        t0 = time.time()
        r = ctl("snooze", ids[0], "--for", "1h", "--note", "carrier says tomorrow", url=lv.serve.url, check=0)
        row = self.rows(r)[ids[0]]
        self.assertEqual(row["STATE"], "snoozed", r.out)
        until = self.exc(ids[0])["snoozedUntil"]
        self.assertIn("until %s" % ms(until), row["DETAIL"])
        self.assertLess(abs(fx_ts(until) - (t0 + 3600)), 120, until)
        later = rfc3339(int(t0) + 7200)
        r = ctl("snooze", ids[1], ids[2], "--until", later, "--json", url=lv.serve.url, check=0)
        j = json.loads(r.out)
        self.assertEqual((j["done"], j["failed"]), (2, 0), j)
        self.assertEqual({x["exceptionId"]: x["exception"]["snoozedUntil"] for x in j["results"]},
                         {ids[1]: later, ids[2]: later})
        self.assertEqual([i["exceptionId"] for i in self.view(state="snoozed")["items"]], ids)
        self.assertEqual(self.view(state="attention")["items"], [])
        # a time in the past un-snoozes
        r = ctl("snooze", ids[2], "--until", "2020-01-01T00:00:00Z", url=lv.serve.url, check=0)
        self.assertEqual(self.rows(r)[ids[2]]["STATE"], "open", r.out)
        r = ctl("stuck", "awaiting_release", "--warehouse", self.wh, "--state", "attention", url=lv.serve.url, check=0)
        _, rows = parse_table(r.out, "AGE")
        self.assertEqual([x["EXCEPTION"] for x in rows], [ids[2]])
        # a bad time is the server's 400, naming the field
        self.assertServerError(ctl("snooze", ids[0], "--until", "tomorrow", url=lv.serve.url), 3,
                               "INVALID_PARAMETER", "until")

    def test_17e_note(self):
        ids = self.fresh("note", 1)
        lv = live()
        r = ctl("note", ids[0], "WMS ticket 4711 opened", url=lv.serve.url, check=0)
        row = self.rows(r)[ids[0]]
        self.assertEqual(row["STATE"], "open", "a note alone does not acknowledge: " + r.out)
        self.assertIn("notes 1", row["DETAIL"])
        r = ctl("note", ids[0], "second — ünïcode", "--json", url=lv.serve.url, check=0)
        self.assertEqual([n["note"] for n in json.loads(r.out)["exception"]["notes"]],
                         ["WMS ticket 4711 opened", "second — ünïcode"])
        r = ctl("exception", ids[0], url=lv.serve.url, check=0)
        self.assertIn("notes (2):", r.out)
        self.assertIn("local (noted): second — ünïcode", r.out)
        self.assertEqual(self.view()["items"][0].get("notes"), 2, "the item carries how many notes")

    def test_17f_resolve_reopen_conflict(self):
        ids = self.fresh("res", 3)
        lv = live()
        r = ctl("resolve", ids[0], "--resolution", "not_an_issue", "--note", "test order", url=lv.serve.url, check=0)
        row = self.rows(r)[ids[0]]
        self.assertEqual(row["STATE"], "resolved", r.out)
        self.assertIn("resolution NOT_AN_ISSUE", row["DETAIL"])
        self.assertEqual([i["exceptionId"] for i in self.view()["items"]], ids[1:], "a resolved one leaves the view")
        r = ctl("exception", ids[0], url=lv.serve.url, check=0)
        self.assertRegex(r.out, r"(?m)^state +resolved$")
        self.assertRegex(r.out, r"(?m)^resolution +NOT_AN_ISSUE$")
        # the action does not apply: 409, exit 3
        self.assertServerError(ctl("ack", ids[0], url=lv.serve.url), 3, "CONFLICT")
        self.assertServerError(ctl("reopen", ids[1], url=lv.serve.url), 3, "CONFLICT")
        r = ctl("reopen", ids[0], "--note", "not fixed after all", url=lv.serve.url, check=0)
        self.assertIn(self.rows(r)[ids[0]]["STATE"], ("open", "acknowledged"), r.out)
        self.assertEqual([i["exceptionId"] for i in self.view()["items"]], ids, "reopened: back in the view")
        hist = [h["action"] for h in self.exc(ids[0])["history"]]
        self.assertEqual(hist, ["resolved", "reopened"])
        # several, in any case, with --json
        r = ctl("resolve", ids[1], ids[2], "-r", "Fixed-At-Source", "--json", url=lv.serve.url, check=0)
        j = json.loads(r.out)
        self.assertEqual({x["exceptionId"]: (x["status"], x["exception"]["resolution"]) for x in j["results"]},
                         {ids[1]: ("done", "FIXED_AT_SOURCE"), ids[2]: ("done", "FIXED_AT_SOURCE")}, j)

    def test_17g_bulk_partial_failure(self):
        ids = self.fresh("bulk", 2)
        lv = live()
        r = ctl("ack", ids[0], NOPE_ID, ids[1], url=lv.serve.url)
        self.assertEqual(r.rc, 6, "some failed: exit 6: " + r.describe())
        rows = self.rows(r)
        self.assertEqual((rows[ids[0]]["STATE"], rows[ids[1]]["STATE"]), ("acknowledged", "acknowledged"), r.out)
        self.assertEqual(rows[NOPE_ID]["DETAIL"], "failed: NOT_FOUND", r.out)
        self.assertIn("2 done, 1 failed", r.out)
        self.assertIn("towerctl ack: %s: NOT_FOUND: " % NOPE_ID, r.err)
        self.assertEqual(self.exc(ids[1])["state"], "acknowledged", "the others were done")
        r = ctl("resolve", ids[0], NOPE_ID, "--resolution", "duplicate", "--json", url=lv.serve.url)
        self.assertEqual(r.rc, 6, r.describe())
        j = json.loads(r.out)
        self.assertEqual((j["done"], j["failed"]), (1, 1), j)
        self.assertEqual({x["exceptionId"]: x["status"] for x in j["results"]}, {ids[0]: "done", NOPE_ID: "failed"})
        self.assertEqual([x["error"]["code"] for x in j["results"] if x["status"] == "failed"], ["NOT_FOUND"])

    def test_17h_errors(self):
        lv = live()
        # an unknown (or malformed) id: 404, exit 4, nothing on stdout
        for args in (("ack", NOPE_ID), ("note", NOPE_ID, "x"), ("exception", NOPE_ID), ("exception", "garbage"),
                     ("resolve", NOPE_ID, "--resolution", "other"), ("reopen", NOPE_ID),
                     ("assign", NOPE_ID, "dana"), ("snooze", NOPE_ID, "--for", "2d")):
            self.assertServerError(ctl(*args, url=lv.serve.url), 4, "NOT_FOUND")
        # refused before any request (the URL leads nowhere): exit 2, naming the option
        dead = "http://127.0.0.1:%d" % fx.free_port()
        for args, says in ((("resolve", NOPE_ID, "--resolution", "fixed"), "--resolution \"fixed\" must be one of"),
                           (("resolve", NOPE_ID), "--resolution is required"),
                           (("snooze", NOPE_ID, "--for", "30s"), "--for must be from 1m to 30d"),
                           (("snooze", NOPE_ID, "--for", "31d"), "--for must be from 1m to 30d"),
                           (("snooze", NOPE_ID, "--for", "1h", "--until", "2030-01-01T00:00:00Z"), "not both"),
                           (("snooze", NOPE_ID), "--for DURATION"),
                           (("assign", NOPE_ID), "name the assignee"),
                           (("assign", NOPE_ID, "dana", "--none"), "\"dana\" is not an exception id"),
                           (("ack", NOPE_ID, "--note", ""), "--note must be 1 to 2,000 bytes"),
                           (("ack", NOPE_ID, "--note", "x" * 2001), "--note must be 1 to 2,000 bytes"),
                           (("note", NOPE_ID, ""), "TEXT (the note) must be 1 to 2,000 bytes"),
                           (("stuck", "blocked", "--state", "closed"), "--state \"closed\" must be one of"),
                           (("stuck", "blocked", "--sort", "oldest"), "--sort \"oldest\" must be one of"),
                           (("mine", "--state", "nope"), "--state \"nope\" must be one of")):
            r = ctl(*args, url=dead)
            self.assertEqual(r.rc, 2, r.describe())
            self.assertIn(says, r.err, r.describe())
            self.assertEqual(r.out, "", r.describe())

    def test_17i_roles_and_me(self):
        """With --tokens: a viewer may read (exception, mine, stuck) but not act (403, exit 5); an operator
        acts, as itself (`me`, the actor)."""
        lv = live()
        ids = self.fresh("tok", 2)
        lines, toks = [], {}
        for name, role in (("vera", "viewer"), ("olga", "operator")):
            tok = "ctl-exc-%s-%d-secret" % (role, os.getpid())
            r = lv.t.run("token", "--hash", name, role, input=tok + "\n", check=0)
            lines.append(r.out.strip())
            toks[role] = tok
        tf = os.path.join(lv.root, "tokens-exc")
        with open(tf, "w") as f:
            f.write("\n".join(lines) + "\n")
        srv = fx.TowerServe(lv.t, lv.data, os.path.join(lv.root, "serve-exc-tokens.log"),
                            args=["--nats", lv.nats.url, "--tokens", tf])
        self.addCleanup(srv.kill)
        srv.start()
        viewer = {"TOWER_TOKEN": toks["viewer"]}
        operator = {"TOWER_TOKEN": toks["operator"]}
        for args in (("ack", ids[0]), ("ack", ids[0], ids[1]), ("assign", ids[0], "me"), ("note", ids[0], "hi"),
                     ("snooze", ids[0], "--for", "1h"), ("resolve", ids[0], "-r", "other"), ("reopen", ids[0])):
            r = ctl(*args, url=srv.url, env=viewer)
            self.assertServerError(r, 5, "FORBIDDEN")
            self.assertNotIn(toks["viewer"], r.err)
        self.assertServerError(ctl("ack", ids[0], url=srv.url), 5, "UNAUTHORIZED")
        self.assertEqual(self.exc(ids[0])["state"], "open", "nothing was done")
        r = ctl("exception", ids[0], "--json", url=srv.url, env=viewer, check=0)
        self.assertEqual(json.loads(r.out)["exceptionId"], ids[0])
        r = ctl("assign", ids[0], "me", "--note", "mine now", url=srv.url, env=operator, check=0)
        self.assertEqual(self.rows(r)[ids[0]]["ASSIGNEE"], "olga", r.out)
        x = self.exc(ids[0])
        self.assertEqual([(h["action"], h["actor"], h.get("assignee")) for h in x["history"]],
                         [("assigned", "olga", "olga")])
        self.assertEqual((x["acknowledgedBy"], x["assignee"]), ("olga", "olga"))
        r = ctl("mine", "--json", url=srv.url, env=operator, check=0)
        mine = json.loads(r.out)
        self.assertEqual([i["exceptionId"] for i in mine.get("items", mine.get("exceptions"))], [ids[0]])
        r = ctl("mine", url=srv.url, env=viewer, check=0)
        self.assertIn("0 exceptions assigned to you", r.out)
        r = ctl("stuck", "awaiting_release", "--warehouse", self.wh, "--assignee", "me", "--json", url=srv.url,
                env=operator, check=0)
        self.assertEqual([i["exceptionId"] for i in json.loads(r.out)["items"]], [ids[0]])
        self.assertEqual(srv.stop(), 0, srv.log())

    def test_17k_requests_against_a_stub(self):
        """What towerctl sends: the route per action, the id escaped in the path, the body's fields, the
        listing filters in the query."""
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        base = "http://127.0.0.1:%d" % srv.server_address[1]
        xid, yid = "o~SO-1~blocked~INVENTORY~SKU-9~1764662411000000000", "d~42~dead_letters"
        cases = [
            (("ack", xid), "/%s/ack" % xid, {}),
            (("ack", xid, "--note", "n 1"), "/%s/ack" % xid, {"note": "n 1"}),
            (("assign", xid, "dana"), "/%s/assign" % xid, {"assignee": "dana"}),
            (("assign", xid, "me", "--note", "x"), "/%s/assign" % xid, {"assignee": "me", "note": "x"}),
            (("assign", xid, "--none"), "/%s/assign" % xid, {"assignee": ""}),
            (("snooze", xid, "--for", "1h30m"), "/%s/snooze" % xid, {"forSeconds": 5400}),
            (("snooze", xid, "--until", "2026-12-06T18:00:00Z"), "/%s/snooze" % xid, {"until": "2026-12-06T18:00:00Z"}),
            (("note", xid, "-5 cartons, \"late\""), None, None),
            (("note", xid, "--", "-5 cartons"), "/%s/note" % xid, {"note": "-5 cartons"}),
            (("resolve", xid, "-r", "fixed-at-source"), "/%s/resolve" % xid, {"resolution": "FIXED_AT_SOURCE"}),
            (("reopen", xid), "/%s/reopen" % xid, {}),
            (("ack", xid, yid, "--note", "both"), "/actions", {"action": "ack", "ids": [xid, yid], "note": "both"}),
            (("assign", xid, yid, "me"), "/actions", {"action": "assign", "ids": [xid, yid], "assignee": "me"}),
            (("snooze", xid, yid, "--for", "2d"), "/actions", {"action": "snooze", "ids": [xid, yid],
                                                                "forSeconds": 172800}),
            (("resolve", xid, yid, "--resolution", "Not_An_Issue"), "/actions",
             {"action": "resolve", "ids": [xid, yid], "resolution": "NOT_AN_ISSUE"}),
        ]
        for args, path, body in cases:
            StubHandler.requests.clear()
            r = ctl(*args, url=base)
            if path is None:  # a TEXT starting with '-' is taken for an option: a usage error, nothing sent
                self.assertEqual((r.rc, StubHandler.requests), (2, []), r.describe())
                continue
            self.assertEqual(r.rc, 0, r.describe())
            self.assertEqual([(m, p) for m, p, _ in StubHandler.requests], [("POST", "/api/v1/exceptions" + path)], args)
            self.assertEqual(json.loads(StubHandler.requests[0][2] or b"{}"), body, args)
        for args, want in ((("exception", xid), "/api/v1/exceptions/" + xid),
                           (("exception", "a b/c"), "/api/v1/exceptions/a%20b%2Fc"),
                           (("mine",), "/api/v1/exceptions?assignee=me"),
                           (("mine", "--state", "snoozed", "--view", "blocked", "-n", 5),
                            "/api/v1/exceptions?assignee=me&state=snoozed&view=blocked&limit=5"),
                           (("stuck", "blocked", "--state", "open", "--assignee", "none", "--sort", "priority"),
                            "/api/v1/views/blocked?state=open&assignee=none&sort=priority"),
                           (("export", "blocked", "--csv", "--assignee", "me", "--state", "attention"),
                            "/api/v1/views/blocked?limit=1000&state=attention&assignee=me")):
            StubHandler.requests.clear()
            r = ctl(*args, url=base)
            self.assertEqual(r.rc, 0, r.describe())
            self.assertEqual([p for _, p, _ in StubHandler.requests], [want], args)

    def test_17j_bulk_over_500(self):
        """More ids than one bulk request takes: towerctl splits them, 500 per request."""
        ids = self.fresh("many", 3)
        lv = live()
        fake = ["o~CTL-NOPE-%d~awaiting_release~1764662411000000000" % k for k in range(520)]
        r = ctl("ack", *(ids + fake), "--json", url=lv.serve.url)
        self.assertEqual(r.rc, 6, r.describe()[-3000:])
        j = json.loads(r.out)
        self.assertEqual((j["done"], j["failed"], len(j["results"])), (3, 520, 523))
        self.assertEqual([x["exceptionId"] for x in j["results"]], ids + fake, "one result per id, in order")
        self.assertEqual({x["exception"]["state"] for x in j["results"] if x["status"] == "done"}, {"acknowledged"})


# ---------------------------------------------------------------------------------------------

def main():
    return fx.main(sys.modules[__name__], ("TOWERD", "TOWERCTL"), SEED, finish=close_live)


if __name__ == "__main__":
    sys.exit(main())
