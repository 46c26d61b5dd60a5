#!/usr/bin/env python3
"""Integration tests of the tower's observability: versions, /metrics families, JSON logs.

usage: test_observability.py TOWERD TOWERCTL [TEST_NAME_SUBSTRING...]

- `towerd --version` and `towerctl --version`: the project's version (top-level CMakeLists.txt), the git
  commit the build was made from (checked against `git rev-parse HEAD` when the source is a checkout,
  else "unknown") and the event contract's version (from the .proto's package).
- `towerd serve` on a store folded offline: tower_build_info, the process families, the store's size
  and map, and the request-duration histogram (cumulative buckets, _count equal to the requests made
  and to tower_http_requests_total), with every log line one JSON object (TOWER_LOG_FORMAT=json).
- `towerd up --no-sim` on a nats-server of its own with a stand-in Alertmanager that fails the first
  post and takes the next: the projector's counter and commit histogram (from the store's meta), the
  SLA engine's Alertmanager posts by result, and JSON log lines again.

Environment: TOWER_SOURCE_DIR (the source tree, set by ctest), TOWER_IT_SLOW, TOWER_IT_KEEP=1,
TOWER_IT_VERBOSE=1. Python 3 standard library only.
"""

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402
from test_server import parse_metrics  # noqa: E402  (the strict Prometheus text parser)

TOWERD = None
TOWERCTL = None
SRC = os.environ.get("TOWER_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LE = ["0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"]
LOG_KEYS = {"ts", "level", "module", "msg"}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---------------------------------------------------------------------------------------------
# helpers

def http_get(url, timeout=10):
    """(status, body bytes); HTTP errors are answers too."""
    try:
        with OPENER.open(url, timeout=fx.tmo(timeout)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(base):
    status, body = http_get(base + "/metrics")
    assert status == 200, "GET /metrics: %s %r" % (status, body[:300])
    return parse_metrics(body.decode("utf-8"))


def value(fams, name, **labels):
    """The value of the one sample of `name` with these labels (None when there is none)."""
    fam = fams.get(name) or fams.get(re.sub(r"_(bucket|sum|count)$", "", name)) or {"samples": []}
    got = [v for n, lab, v in fam["samples"] if n == name and all(lab.get(k) == x for k, x in labels.items())]
    return got[0] if got else None


def versions(binary):
    """{"name", "version", "commit", "contract"} from BINARY --version (which must exit 0)."""
    r = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 0, "%s --version: exit %d: %r" % (binary, r.returncode, r.stderr)
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 3, "%s --version printed %r" % (binary, lines)
    name, version = lines[0].split(" ")
    assert lines[1].startswith("commit: ") and lines[2].startswith("contract: "), lines
    return {"name": name, "version": version, "commit": lines[1][8:], "contract": lines[2][10:]}


def project_version():
    with open(os.path.join(SRC, "CMakeLists.txt")) as f:
        return re.search(r"project\(\s*tower\s+VERSION\s+([0-9.]+)", f.read()).group(1)


def contract_major():
    with open(os.path.join(SRC, "proto", "tower", "v1", "event.proto")) as f:
        return re.search(r"^package tower\.v(\d+);", f.read(), re.M).group(1)


def git(*args):
    """git's stdout in the source tree, or None when it is not a checkout (or git fails)."""
    if not os.path.exists(os.path.join(SRC, ".git")):
        return None
    try:
        r = subprocess.run(["git", "-C", SRC] + list(args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=30)
    except OSError:
        return None
    return r.stdout.decode().strip() if r.returncode == 0 else None


def check_histogram(tc, fams, name, **labels):
    """Buckets le in order, cumulative (never decreasing), +Inf equal to _count, _sum >= 0: the count."""
    fam = fams.get(name)
    tc.assertIsNotNone(fam, "no %s in /metrics" % name)
    tc.assertEqual(fam["type"], "histogram")
    buckets = [(lab["le"], v) for n, lab, v in fam["samples"]
               if n == name + "_bucket" and all(lab.get(k) == x for k, x in labels.items())]
    tc.assertEqual([le for le, _ in buckets], LE, "%s%s buckets" % (name, labels))
    counts = [v for _, v in buckets]
    tc.assertEqual(counts, sorted(counts), "%s%s buckets are not cumulative: %s" % (name, labels, counts))
    count = value(fams, name + "_count", **labels)
    tc.assertEqual(counts[-1], count, "%s%s: +Inf bucket vs _count" % (name, labels))
    tc.assertGreaterEqual(value(fams, name + "_sum", **labels), 0)
    return count


def check_json_log(tc, text, what):
    """Every line a JSON object of exactly ts, level, module, msg: the parsed lines."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("==== start"):  # the harness's own marker lines
            continue
        try:
            o = json.loads(line)
        except ValueError as e:
            tc.fail("%s, line %d is not JSON (%s): %r" % (what, n, e, line))
        tc.assertIsInstance(o, dict, line)
        tc.assertEqual(set(o), LOG_KEYS, "%s, line %d: %r" % (what, n, line))
        tc.assertIn(o["level"], ("debug", "info", "warn", "error"), line)
        tc.assertRegex(o["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line)
        out.append(o)
    tc.assertTrue(out, "%s: no log line at all" % what)
    return out


class JsonTowerd(fx.Towerd):
    """towerd whose every run logs JSON lines."""

    def env(self, extra=None, drop_tower=True):
        e = super().env(extra, drop_tower)
        e["TOWER_LOG_FORMAT"] = "json"
        return e


# ---------------------------------------------------------------------------------------------

class T1Versions(unittest.TestCase):
    def test_versions(self):
        d, c = versions(TOWERD), versions(TOWERCTL)
        self.assertEqual((d["name"], c["name"]), ("towerd", "towerctl"))
        for v in (d, c):
            self.assertEqual(v["version"], project_version())
            self.assertEqual(v["contract"], contract_major() + ".0")
        self.assertEqual(d["commit"], c["commit"], "one build, one commit")
        full, short = git("rev-parse", "HEAD"), git("rev-parse", "--short", "HEAD")
        fx.log("versions: %s; HEAD %s" % (d, short))
        if not full:
            self.assertEqual(d["commit"], "unknown")
            return
        # `git describe --always --dirty`: HASH, or TAG-N-gHASH, then -dirty for uncommitted changes
        # (the tree may well be dirty while it is being worked on).
        h = re.sub(r"-dirty$", "", d["commit"])
        m = re.search(r"-g([0-9a-f]+)$", h)
        h = m.group(1) if m else h
        self.assertRegex(h, r"^[0-9a-f]{4,40}$", d["commit"])
        self.assertTrue(full.startswith(h), "commit %s is not HEAD %s" % (d["commit"], full))
        self.assertTrue(h.startswith(short) or short.startswith(h), "commit %s vs short HEAD %s" % (h, short))

    def test_version_is_not_a_command_option(self):
        """--version is towerd's, not every command's: the commands still refuse unknown options."""
        r = subprocess.run([TOWERD, "dump", "--version"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)


class T2Serve(unittest.TestCase):
    """towerd serve on a store folded offline, logging JSON."""

    def setUp(self):
        self.root = fx.make_tempdir("tower-obs-serve-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.t = JsonTowerd(TOWERD)
        self.t.cwd = self.root
        self.data = os.path.join(self.root, "data")
        trace = self.t.gen(os.path.join(self.root, "trace.ndjson"), 11, 60)
        self.t.run("fold", "--data", self.data, trace, check=(0, 3))
        self.srv = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve.log"), args=["--no-nats"])
        self.addCleanup(self.srv.kill)
        self.srv.start()

    def test_serve_metrics_and_json_log(self):
        fams = scrape(self.srv.url)
        v = versions(TOWERD)
        # the build
        self.assertEqual(fams["tower_build_info"]["type"], "gauge")
        self.assertEqual([(lab, x) for _, lab, x in fams["tower_build_info"]["samples"]],
                         [({"version": v["version"], "commit": v["commit"], "contract": v["contract"]}, 1.0)])
        # the process, as the Prometheus client libraries name it
        for name, typ in (("process_cpu_seconds_total", "counter"), ("process_resident_memory_bytes", "gauge"),
                          ("process_open_fds", "gauge"), ("process_start_time_seconds", "gauge")):
            self.assertEqual(fams.get(name, {}).get("type"), typ, name)
        self.assertGreater(value(fams, "process_open_fds"), 0)
        self.assertGreater(value(fams, "process_resident_memory_bytes"), 0)
        self.assertGreaterEqual(value(fams, "process_cpu_seconds_total"), 0)
        start = value(fams, "process_start_time_seconds")
        self.assertTrue(0 < start <= time.time() + 1, start)
        # the store: nothing writes it now, so the file's size is exact
        mdb = os.path.join(self.data, "current", "data.mdb")
        self.assertEqual(value(fams, "tower_store_file_bytes"), os.path.getsize(mdb))
        self.assertGreaterEqual(value(fams, "tower_store_map_bytes"), value(fams, "tower_store_file_bytes"))
        ratio = value(fams, "tower_store_map_used_ratio")
        self.assertTrue(0 < ratio <= 1, ratio)
        # the SLA engine does not run in `towerd serve`: its families are not there
        self.assertNotIn("tower_sla_alertmanager_posts_total", fams)
        self.check_request_histogram(fams)
        self.assertEqual(self.srv.stop(), 0)
        with open(self.srv.log_path, encoding="utf-8") as f:
            lines = check_json_log(self, f.read(), "towerd serve's log")
        self.assertTrue(any(o["module"] == "server" and "listening on" in o["msg"] for o in lines), lines)

    def check_request_histogram(self, before):
        views, orders = 7, 3
        for _ in range(views):
            self.assertEqual(http_get(self.srv.url + "/api/v1/views/blocked?limit=5")[0], 200)
        for i in range(orders):
            self.assertEqual(http_get(self.srv.url + "/api/v1/orders/SO-NOPE-%d" % i)[0], 404)

        def count(fams, route):
            return value(fams, "tower_http_request_duration_seconds_count", route=route) or 0

        # A request's duration is observed once its answer is written: the client may have the last answer a
        # moment before the server counted it. Scrape until both counts are reached (or time is up).
        deadline = time.monotonic() + fx.tmo(5)
        after = scrape(self.srv.url)
        while time.monotonic() < deadline and (count(after, "views") - count(before, "views") < views or
                                               count(after, "orders") - count(before, "orders") < orders):
            time.sleep(0.05)
            after = scrape(self.srv.url)

        def requests(fams, route):
            return sum(x for _, lab, x in fams["tower_http_requests_total"]["samples"] if lab["route"] == route)

        self.assertEqual(count(after, "views") - count(before, "views"), views)
        self.assertEqual(count(after, "orders") - count(before, "orders"), orders)
        routes = {lab["route"] for _, lab, _ in after["tower_http_requests_total"]["samples"]}
        self.assertTrue({"views", "orders", "metrics"} <= routes, routes)
        for route in routes:
            n = check_histogram(self, after, "tower_http_request_duration_seconds", route=route)
            self.assertEqual(n, requests(after, route), "route %s: histogram count vs tower_http_requests_total" % route)
        fx.log("request histogram: routes %s" % sorted(routes))


# ---------------------------------------------------------------------------------------------
# towerd up: the projector and the SLA engine in process

class FlakyAlertmanager:
    """Answers 500 to the first post, 200 to the others; counts both."""

    def __init__(self):
        self.port = fx.free_port()
        self.lock = threading.Lock()
        self.results = []
        me = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with me.lock:
                    code = 500 if not me.results else 200
                    me.results.append(code)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def counts(self):
        with self.lock:
            return self.results.count(200), self.results.count(500)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def wait_for(what, cond, timeout=60, log=lambda: ""):
    deadline = time.monotonic() + fx.tmo(timeout)
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("never: %s\n%s" % (what, log()))


class T3Up(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-obs-up-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self.am = FlakyAlertmanager()
        self.addCleanup(self.am.stop)
        self.up = fx.Up(self.t, self.root, os.path.join(self.root, "data"),
                        ["--no-sim", "--nats", self.nats.url, "--web", self.root,
                         "--alertmanager", "http://127.0.0.1:%d" % self.am.port], env={"TOWER_LOG_FORMAT": "json"})
        self.addCleanup(self.up.close)
        self.port = self.up.port
        self.logs = self.up.logs

    def start_up(self):
        self.up.start()

    def publish(self, name, events):
        path = os.path.join(self.root, name + ".ndjson")
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        self.t.publish(path, check=0)

    def applied(self):
        status, body = http_get("http://127.0.0.1:%d/api/v1/summary" % self.port)
        return json.loads(body)["appliedSeq"] if status == 200 else 0

    def test_up_projector_and_sla_metrics_and_json_log(self):
        self.start_up()
        t0 = int(time.time()) - 3600  # approved an hour ago, never released: the release SLA (15 min) is breached

        def approved(i):
            return {"eventId": "obs-a-%d" % i, "occurredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i)),
                    "source": {"system": "erp"}, "orderId": "SO-OBS-%d" % i, "orderApproved": {"warehouseId": "dc-1"}}
        # two publishes, each waited for: at least two commits, so that the histogram has counted one
        self.publish("first", [approved(i) for i in range(3)])
        wait_for("the first events folded", lambda: self.applied() >= 3, log=self.logs)
        self.publish("second", [approved(i) for i in range(3, 5)])
        wait_for("the second events folded", lambda: self.applied() >= 5, log=self.logs)
        # the engine raises the breaches; its first post fails, the next (after a backoff) goes through
        wait_for("a failed and a good post to Alertmanager", lambda: self.am.counts()[0] >= 1, log=self.logs)
        ok_before, errors = self.am.counts()
        fams = scrape("http://127.0.0.1:%d" % self.port)
        ok_after, _ = self.am.counts()
        self.assertEqual(errors, 1)
        self.assertEqual(fams["tower_sla_alertmanager_posts_total"]["type"], "counter")
        self.assertEqual(value(fams, "tower_sla_alertmanager_posts_total", result="error"), errors)
        ok = value(fams, "tower_sla_alertmanager_posts_total", result="ok")
        self.assertTrue(ok_before <= ok <= ok_after, "ok posts %s, Alertmanager saw %s..%s" % (ok, ok_before, ok_after))
        self.assertGreaterEqual(value(fams, "tower_sla_alerts_firing"), 1)
        # the projector's figures, from the store (one read transaction: exact)
        self.assertEqual(fams["tower_projector_events_total"]["type"], "counter")
        self.assertEqual(value(fams, "tower_projector_events_total"), value(fams, "tower_applied_sequence"))
        self.assertIn("tower_projector_events_per_second", fams)  # the gauge stays
        commits = check_histogram(self, fams, "tower_projector_commit_duration_seconds")
        self.assertGreaterEqual(commits, 1)
        self.assertLessEqual(commits, value(fams, "tower_projector_events_total"))
        self.assertIn("tower_build_info", fams)
        self.assertGreater(value(fams, "process_open_fds"), 0)
        fx.log("up: %d commits counted, %d events, posts ok %d error %d"
               % (commits, value(fams, "tower_projector_events_total"), ok, errors))
        # SIGTERM: a clean stop, and a log of JSON lines only
        err_path = self.up.err_path
        self.assertEqual(self.up.stop(), 0, self.logs())
        with open(err_path, encoding="utf-8") as f:
            lines = check_json_log(self, f.read(), "towerd up's stderr")
        modules = {o["module"] for o in lines}
        self.assertTrue({"server", "projector", "sla"} <= modules, modules)
        self.assertTrue(any("breach sla-release-o-SO-OBS-" in o["msg"] for o in lines), self.logs())


def main():
    return fx.main(sys.modules[__name__], binaries=("TOWERD", "TOWERCTL"))


if __name__ == "__main__":
    sys.exit(main())
