#!/usr/bin/env python3
"""Integration tests of the SLA engine (`towerd sla`) against a real nats-server and projector, and a small HTTP
server standing in for Alertmanager.

usage: test_sla.py TOWERD [TEST_NAME_SUBSTRING...]

The clock is injected (`--now`): an order approved and never released breaches exactly once at 15 minutes,
not a second before; a release closes the breach (the order says how late it was); restarts and two engines
at once raise one breach (counted in the stream); alerts fire with the right labels, are re-sent, resolve,
and arrive after Alertmanager comes back; an acknowledged, assigned or snoozed breach still fires, its alert
carrying the breach's "assignee" and "state" as annotations (actions published as events, docs/exceptions.md). Every alert posted is consistent in wall-clock time (startsAt <=
endsAt, endsAt not in the past), also from `towerd up --warp 60`, whose business clock runs ahead of it.
"""

import collections
import datetime
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    return datetime.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp()


# Business time: an hour ago, on a whole minute, so that "now" and the due times are all in the past of the
# real clock (Alertmanager-like receivers compare with it) and the injected clock is what decides.
T0 = (int(time.time()) // 60) * 60 - 3600


def rfc3339_parse(s):
    """An RFC 3339 time (fractions and offsets too) as Unix seconds."""
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00")).timestamp()


def alert_problems(received_at, a, slack=5):
    """What Alertmanager would refuse or misread in one posted alert: it lives in wall-clock time, so startsAt
    <= endsAt, startsAt not in the future, and endsAt in the future (firing) or about now (resolved); never an
    endsAt in the past, which Alertmanager takes as an alert resolved long ago."""
    who = a.get("labels", {}).get("order_id")
    try:
        starts, ends = rfc3339_parse(a["startsAt"]), rfc3339_parse(a["endsAt"])
    except (KeyError, ValueError) as e:
        return ["%s: no RFC 3339 startsAt/endsAt (%s): %s" % (who, e, json.dumps(a))]
    out = []
    if starts > ends:
        out.append("%s: startsAt %s after endsAt %s" % (who, a["startsAt"], a["endsAt"]))
    if starts > received_at + slack:
        out.append("%s: startsAt %s in the future of the wall clock (%s)" % (who, a["startsAt"], rfc3339(received_at)))
    if ends < received_at - slack:
        out.append("%s: endsAt %s in the past of the wall clock (%s)" % (who, a["endsAt"], rfc3339(received_at)))
    return out


def ev(eid, order, payload, at, body=None, **extra):
    e = {"eventId": eid, "occurredAt": rfc3339(at), "source": {"system": "erp"}, "orderId": order,
         payload: body if body is not None else {}}
    e.update(extra)
    return e


class AlertReceiver:
    """Stands in for Alertmanager: records every POST /api/v2/alerts body with the time it arrived."""

    def __init__(self, port=None):
        self.port = port or fx.free_port()
        self.posts = []
        self.lock = threading.Lock()
        self.httpd = None

    def start(self):
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ok = self.path == "/api/v2/alerts" and self.headers.get("Content-Type") == "application/json"
                if ok:
                    with recv.lock:
                        recv.posts.append((time.time(), json.loads(body)))
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def alerts(self, order_id):
        """[(received_at, alert)] of one order, in arrival order."""
        with self.lock:
            return [(t, a) for t, body in self.posts for a in body
                    if a.get("labels", {}).get("order_id") == order_id]

    def problems(self):
        """alert_problems of every alert posted so far."""
        with self.lock:
            return [p for t, body in self.posts for a in body for p in alert_problems(t, a)]

    def wait(self, what, cond, timeout=60):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.1)
        with self.lock:
            raise AssertionError("the alert receiver never saw %s; it got %d posts: %s"
                                 % (what, len(self.posts), json.dumps(self.posts[-5:])[:3000]))


def firing(t_alert):
    t, a = t_alert
    return parse_time(a["endsAt"]) > t


class Sla(unittest.TestCase):
    def setUp(self):
        self.root = fx.make_tempdir("tower-it-sla-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self.data = os.path.join(self.root, "data")
        self.proj = fx.Projector(self.t, self.data, log_path=os.path.join(self.root, "projector.log"))
        self.addCleanup(self.proj.close)
        self.proj.start()
        self.client = fx.NatsClient(self.nats.url)
        self.addCleanup(self.client.close)
        self.engines = []
        self.addCleanup(self.stop_engines)
        self.n_files = 0

    # -- helpers
    def publish(self, *events):
        self.n_files += 1
        path = os.path.join(self.root, "events-%d.ndjson" % self.n_files)
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        r = self.t.publish(path, check=0)
        return r

    def caught_up(self):
        fx.wait_caught_up(self.t, self.data, self.client, self.proj)

    def breaches_in_stream(self):
        return [eid for _, eid in fx.stream_event_ids(self.client) if eid and eid.startswith("sla-")]

    def sla_once(self, now, *extra):
        r = self.t.run("sla", "--once", "--nats", self.nats.url, "--data", self.data, "--now", rfc3339(now),
                       *extra, check=0, timeout=60)
        return r.json()

    def engine(self, now, *extra, name="sla"):
        log_path = os.path.join(self.root, "%s-%d.log" % (name, len(self.engines)))
        logf = open(log_path, "ab")
        argv = [TOWERD, "sla", "--nats", self.nats.url, "--data", self.data, "--now", rfc3339(now),
                "--poll", "200ms"] + list(extra)
        p = fx.spawn(argv, stdout=logf, stderr=subprocess.STDOUT, env=self.t.env({"TOWER_LOG": "debug"}),
                     cwd=self.root)
        logf.close()
        self.engines.append((p, log_path))
        return p, log_path

    def stop_engine(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=fx.tmo(20))
        fx.reap(p)
        return rc

    def stop_engines(self):
        for p, _ in self.engines:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            fx.reap(p)

    def view(self, name):
        return self.t.dump(self.data)[name]

    def wait_view(self, name, cond, what, timeout=60):
        deadline = time.monotonic() + fx.tmo(timeout)
        items = None
        while time.monotonic() < deadline:
            items = self.view(name)
            if cond(items):
                return items
            time.sleep(0.2)
        raise AssertionError("%s never held (%s: %s)\n--- projector log:\n%s"
                             % (what, name, json.dumps(items)[:2000], self.proj.log()))

    # -- tests
    def test_breach_exactly_once_at_due(self):
        self.publish(ev("a-1", "SO-1", "orderApproved", T0, {"warehouseId": "dc-2"}))
        self.caught_up()
        # One second before the due: nothing, and the summary names the due.
        s = self.sla_once(T0 + 15 * 60 - 1)
        self.assertEqual((s["overdue"], s["published"]), (0, 0), s)
        self.assertEqual(s["nextDueAt"], rfc3339(T0 + 15 * 60))
        self.assertEqual(self.breaches_in_stream(), [])
        # At the due: one breach, with its deterministic id.
        s = self.sla_once(T0 + 15 * 60)
        self.assertEqual((s["overdue"], s["published"]), (1, 1), s)
        want = "sla-release-o-SO-1-%d" % (T0 + 15 * 60)
        self.assertEqual(self.breaches_in_stream(), [want])
        self.caught_up()
        items = self.view("sla_breaches")
        self.assertEqual([(i["orderId"], i["rule"], i["since"], i.get("warehouseId")) for i in items],
                         [("SO-1", "release", rfc3339(T0 + 15 * 60), "dc-2")])
        # Later runs find nothing overdue: the breach took the due out of the index.
        s = self.sla_once(T0 + 3600)
        self.assertEqual((s["overdue"], s["published"]), (0, 0), s)
        self.assertEqual(self.breaches_in_stream(), [want])

        # The release closes it; the order says how late the release was.
        self.publish(ev("r-1", "SO-1", "orderReleased", T0 + 40 * 60, {"warehouseId": "dc-2"}))
        self.caught_up()
        self.assertEqual(self.view("sla_breaches"), [])
        serve = fx.TowerServe(self.t, self.data, os.path.join(self.root, "serve.log"), args=["--no-nats"])
        serve.start()
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                    serve.url + "/api/v1/orders/SO-1", timeout=fx.tmo(10)) as r:
                order = json.loads(r.read())
        finally:
            serve.stop()
        self.assertEqual(order["slaBreaches"], [{"rule": "release", "orderId": "SO-1",
                                                 "dueAt": rfc3339(T0 + 15 * 60), "state": "closed",
                                                 "closedAt": rfc3339(T0 + 40 * 60), "lateBySeconds": 25 * 60}])

    def test_restarts_and_two_engines_raise_one_breach(self):
        self.publish(ev("a-2", "SO-2", "orderApproved", T0, {"warehouseId": "dc-1"}))
        self.caught_up()
        # The projector is stopped, so the due stays in the index and every engine run raises it again.
        self.assertEqual(self.proj.stop(), 0)
        now = T0 + 20 * 60
        first = self.sla_once(now)
        self.assertEqual((first["published"], first["duplicates"]), (1, 0), first)
        again = self.sla_once(now + 60)   # a restart
        self.assertEqual((again["published"], again["duplicates"]), (0, 1), again)
        # Two engines at once, continuously.
        a, log_a = self.engine(now)
        b, log_b = self.engine(now)
        for log_path in (log_a, log_b):
            deadline = time.monotonic() + fx.tmo(30)
            while "already raised" not in fx.tail(log_path, 200) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertIn("already raised", fx.tail(log_path, 200), "each engine tried and was told it is a duplicate")
        # While the projector has not folded the breach, its due stays past: the engines look again at
        # each poll (200 ms), not at once (they spun a core). Judged on the cycles' own log times.
        for log_path in (log_a, log_b):
            with open(log_path, errors="replace") as f:
                stamps = [line[:23] for line in f if "breach cycle done" in line]
            per_second = collections.Counter(s[:19] for s in stamps)
            self.assertLessEqual(max(per_second.values()), 12, "cycles in one second: %s" % per_second.most_common(3))
        self.proj.start()
        self.caught_up()
        self.wait_view("sla_breaches", lambda items: len(items) == 1, "the breach is folded")
        # A restart of an engine after the fold: nothing is due any more.
        self.assertEqual(self.stop_engine(a), 0)
        s = self.sla_once(now + 120)
        self.assertEqual((s["overdue"], s["published"], s["duplicates"]), (0, 0, 0), s)
        self.assertEqual(self.stop_engine(b), 0)
        self.assertEqual(self.breaches_in_stream(), ["sla-release-o-SO-2-%d" % (T0 + 15 * 60)])
        self.assertEqual(len(self.view("sla_breaches")), 1)

    def test_alerts_fire_resend_and_resolve(self):
        am = AlertReceiver().start()
        self.addCleanup(am.stop)
        rules = os.path.join(self.root, "rules.ini")
        with open(rules, "w") as f:
            f.write("[rule release warehouse=dc-2]\nseverity = critical\n"
                    "[rule release channel=EDI]\nseverity = page\n")
        self.publish(ev("a-3", "SO-3", "orderApproved", T0, {"warehouseId": "dc-2"}))
        # an EDI order: the channel-scoped override gives its alert's severity
        self.publish(ev("c-5", "SO-5", "orderCreated", T0 - 60,
                        {"customerId": "C-5", "channel": "EDI", "lines": [{"sku": "SKU-1", "qty": 1}]}))
        self.publish(ev("a-5", "SO-5", "orderApproved", T0, {"warehouseId": "dc-1"}))
        self.caught_up()
        self.engine(T0 + 16 * 60, "--alertmanager", "http://127.0.0.1:%d" % am.port, "--resend", "2s",
                    "--dashboard-url", "http://tower.example:8080", "--sla-rules", rules)
        got = am.wait("two firing alerts of SO-3 (sent, then re-sent)",
                      lambda: [x for x in am.alerts("SO-3") if firing(x)][1:])
        t, a = got[0]
        self.assertEqual(a["labels"], {"alertname": "TowerSlaBreach", "rule": "release", "severity": "critical",
                                       "warehouse": "dc-2", "order_id": "SO-3"})
        # startsAt is a wall-clock instant: the engine's clock (--now) started a minute after the due time,
        # so the due passed a minute before the engine started. The due time itself is the dueAt annotation.
        self.assertEqual(a["annotations"]["dueAt"], rfc3339(T0 + 15 * 60))
        self.assertTrue(60 <= t - rfc3339_parse(a["startsAt"]) <= 60 + fx.tmo(30), (t, a["startsAt"]))
        self.assertEqual(a["generatorURL"], "http://tower.example:8080/#/order/SO-3")
        self.assertIn("SO-3", a["annotations"]["summary"])
        edi = am.wait("a firing alert of SO-5", lambda: [x for x in am.alerts("SO-5") if firing(x)])
        self.assertEqual(edi[0][1]["labels"], {"alertname": "TowerSlaBreach", "rule": "release", "severity": "page",
                                               "warehouse": "dc-1", "order_id": "SO-5"})
        # The release resolves it.
        self.publish(ev("r-3", "SO-3", "orderReleased", T0 + 30 * 60, {"warehouseId": "dc-2"}))
        am.wait("a resolved alert of SO-3", lambda: [x for x in am.alerts("SO-3") if not firing(x)])
        t_resolved, resolved = [x for x in am.alerts("SO-3") if not firing(x)][0]
        self.assertEqual(resolved["labels"], a["labels"])
        self.assertLessEqual(abs(rfc3339_parse(resolved["endsAt"]) - t_resolved), 5, resolved)  # endsAt = now
        self.assertEqual(am.problems(), [])

    def test_alerts_carry_assignee_and_state(self):
        am = AlertReceiver().start()
        self.addCleanup(am.stop)
        self.publish(ev("a-6", "SO-6", "orderApproved", T0, {"warehouseId": "dc-1"}))
        self.caught_up()
        self.engine(T0 + 16 * 60, "--alertmanager", "http://127.0.0.1:%d" % am.port, "--resend", "30s")
        got = am.wait("a firing alert of SO-6", lambda: [x for x in am.alerts("SO-6") if firing(x)])
        first = got[0][1]
        self.assertEqual(first["annotations"]["state"], "open", first)
        self.assertNotIn("assignee", first["annotations"])
        breach = self.wait_view("sla_breaches", lambda items: [i for i in items if i.get("orderId") == "SO-6"],
                                "the breach of SO-6 is folded")[0]
        exid = breach.get("exceptionId") or "o~SO-6~sla_breaches~release~%d" % ((T0 + 15 * 60) * 10**9)

        def action(eid, payload, at, **fields):
            body = dict(exceptionId=exid, actor="dana", **fields)
            return {"eventId": eid, "occurredAt": rfc3339(at), "source": {"system": "tower", "instance": "test"},
                    payload: body}

        def latest(cond, what):
            def got_it():
                alerts = [a for t, a in am.alerts("SO-6") if firing((t, a))]
                return alerts and cond(alerts[-1]["annotations"]) and alerts[-1]
            return am.wait(what, got_it, timeout=20)  # below the 30 s re-send

        # Assigned (which acknowledges): posted at once (not at the 30 s re-send), still firing.
        self.publish(action("ack-6", "exceptionAssigned", T0 + 16 * 60, assignee="ravi", note="on it"))
        a = latest(lambda ann: ann.get("assignee") == "ravi", "the alert of SO-6 with its assignee")
        self.assertEqual(a["annotations"]["state"], "acknowledged", a)
        self.assertEqual(a["labels"], first["labels"], "the lifecycle is in annotations, not labels")
        # Snoozed for an hour of the engine's clock: still firing, state snoozed.
        self.publish(action("snz-6", "exceptionSnoozed", T0 + 16 * 60 + 1, until=rfc3339(T0 + 80 * 60),
                            note="carrier says tomorrow"))
        a = latest(lambda ann: ann.get("state") == "snoozed", "the alert of SO-6 snoozed")
        self.assertEqual(a["annotations"]["assignee"], "ravi", a)
        # Unassigned: the annotation goes, the acknowledgement stays.
        self.publish(action("una-6", "exceptionAssigned", T0 + 16 * 60 + 2, assignee=""))
        a = latest(lambda ann: "assignee" not in ann, "the alert of SO-6 unassigned")
        self.assertEqual(a["annotations"]["state"], "snoozed", a)
        self.assertEqual(am.problems(), [])

    def test_alerts_arrive_after_alertmanager_recovers(self):
        am = AlertReceiver()  # not started: Alertmanager is down
        self.addCleanup(am.stop)
        self.publish(ev("a-4", "SO-4", "orderApproved", T0, {"warehouseId": "dc-3"}))
        self.caught_up()
        p, log_path = self.engine(T0 + 16 * 60, "--alertmanager", "http://127.0.0.1:%d" % am.port,
                                  "--breaker-failures", "2", "--breaker-open", "1s", "--resend", "2s")
        # The breach is raised and folded whatever Alertmanager does.
        self.wait_view("sla_breaches", lambda items: [i for i in items if i.get("orderId") == "SO-4"],
                       "the breach of SO-4 is folded while Alertmanager is down")
        deadline = time.monotonic() + fx.tmo(60)
        while "circuit open" not in fx.tail(log_path, 400) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn("circuit open", fx.tail(log_path, 400), "the engine noticed Alertmanager is down")
        self.assertIsNone(p.poll(), "the engine keeps running")
        am.start()
        got = am.wait("a firing alert of SO-4 after Alertmanager came back",
                      lambda: [x for x in am.alerts("SO-4") if firing(x)], timeout=90)
        self.assertEqual(got[0][1]["labels"]["warehouse"], "dc-3")
        self.assertEqual(got[0][1]["labels"]["severity"], "warning")
        self.assertEqual(am.problems(), [])

    def test_bad_rules_file_is_refused_with_its_line(self):
        rules = os.path.join(self.root, "bad.ini")
        with open(rules, "w") as f:
            f.write("[rule release]\nwithin = 15m\nwihtin = 5m\n")
        r = self.t.run("sla", "--once", "--nats", self.nats.url, "--data", self.data, "--sla-rules", rules, check=2)
        self.assertIn("%s:3: unknown key \"wihtin\"" % rules, r.err)
        r = self.t.run("projector", "--nats", self.nats.url, "--data", self.data, "--sla-rules", rules, check=2)
        self.assertIn("%s:3: unknown key \"wihtin\"" % rules, r.err)
        with open(rules, "w") as f:
            f.write("[rule release warehouse=dc-2]\nwithin = 5m\n")
        r = self.t.run("sla", "--check-rules", "--sla-rules", rules, check=0)
        self.assertIn("release warehouse=dc-2: orderApproved -> orderReleased within 5m", r.out)
        # --rules, the deprecated old name, still works, but not beside --sla-rules.
        r = self.t.run("sla", "--check-rules", "--rules", rules, check=0)
        self.assertIn("release warehouse=dc-2: orderApproved -> orderReleased within 5m", r.out)
        r = self.t.run("sla", "--check-rules", "--rules", rules, "--sla-rules", rules, check=2)
        self.assertIn("deprecated", r.err)


class SlaUpWarped(unittest.TestCase):
    """The reported case: `towerd up --warp 60 --alertmanager URL`. Business time runs an hour per real minute,
    Alertmanager's clock does not: every alert it receives must still be consistent in wall-clock time."""

    def setUp(self):
        self.root = fx.make_tempdir("tower-it-sla-up-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = fx.NatsServer(root=os.path.join(self.root, "nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t = fx.Towerd(TOWERD, self.nats)
        self.t.cwd = self.root
        self.am = AlertReceiver().start()
        self.addCleanup(self.am.stop)

    def publish(self, name, *events):
        path = os.path.join(self.root, name + ".ndjson")
        with open(path, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")
        self.t.publish(path, check=0)

    def test_warped_up_posts_wall_clock_alerts(self):
        up = fx.Up(self.t, self.root, os.path.join(self.root, "data"),
                   ["--no-sim", "--warp", "60", "--nats", self.nats.url, "--web", self.root,
                    "--alertmanager", "http://127.0.0.1:%d" % self.am.port])
        self.addCleanup(up.close)
        up.start()
        # Approved now (wall clock, so at or before business time): the release SLA (15 business minutes)
        # is breached about 15 real seconds later.
        approved = int(time.time())
        self.publish("approved", ev("wa-1", "SO-W1", "orderApproved", approved, {"warehouseId": "dc-1"}))
        got = self.am.wait("a firing alert of SO-W1 from the warped engine",
                           lambda: [x for x in self.am.alerts("SO-W1") if firing(x)], timeout=120)
        t, a = got[0]
        self.assertEqual(self.am.problems(), [], up.logs())
        self.assertGreater(rfc3339_parse(a["endsAt"]), t, a)
        self.assertLessEqual(rfc3339_parse(a["startsAt"]), t, a)
        self.assertEqual(rfc3339_parse(a["annotations"]["dueAt"]), approved + 15 * 60, a)
        # The release (business "now" is ahead of the wall clock: this time is in its past) resolves it,
        # with endsAt the wall clock now.
        self.publish("released", ev("wr-1", "SO-W1", "orderReleased", int(time.time()), {"warehouseId": "dc-1"}))
        t_res, res = self.am.wait("a resolved alert of SO-W1", lambda: [x for x in self.am.alerts("SO-W1")
                                                                         if not firing(x)], timeout=120)[0]
        self.assertLessEqual(abs(rfc3339_parse(res["endsAt"]) - t_res), 5, res)
        self.assertEqual(self.am.problems(), [], up.logs())


def main():
    global TOWERD
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    TOWERD = os.path.abspath(sys.argv[1])
    fx.install_signal_cleanup()
    fx.stretch_for_sanitizer(TOWERD)  # an ASan build's servers take longer to come up and answer
    suite = unittest.TestSuite(t for case in (Sla, SlaUpWarped)
                               for t in unittest.defaultTestLoader.loadTestsFromTestCase(case))
    if len(sys.argv) > 2:  # NAME, =NAME, ~NAME (tests/cases.cmake)
        suite = unittest.TestSuite(fx.select(list(suite), sys.argv[2:]))
    res = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(res.failures) + len(res.errors)
    print("%d passed, %d failed" % (res.testsRun - failed, failed))
    return 0 if failed == 0 and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
