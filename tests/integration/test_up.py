#!/usr/bin/env python3
"""Integration tests of `towerd up` (the whole tower in one process) and of the simulators (`towerd sim`).

usage: test_up.py TOWERD [TEST_NAME_SUBSTRING...]

Environment: TOWER_IT_SLOW (timeout multiplier; 4 is set automatically for a sanitizer build),
TOWER_IT_KEEP=1 (keep the temporary directories), TOWER_IT_VERBOSE=1 (log every towerd run).

- up: a temporary data dir and free ports; the dashboard and the API answer, the counts grow as the
  simulators publish, each simulated system has its own NATS connection, SIGTERM exits 0 and leaves no
  nats-server behind, and a restart on the same dir resumes the same stream, store and trace: at the end
  of the trace the store holds exactly the events and dead letters of the same trace folded offline.
- up without nats-server: the message says how to install it, exit 1.
- up's own nats-server listens on 127.0.0.1 only and needs the credentials up makes at each start (in
  DATA/nats/client.conf, 0600, never on a command line or in a log): a client without them is refused;
  with --nats URL, up uses that NATS as it is.
- up's simulated supervisors (--supervisor-rate) act on open exceptions: items become acknowledged and
  assigned (seen through GET /api/v1/views/...), by the actions they publish (source tower /
  supervisor-sim); with --supervisor-rate 0 nothing is acted on and they have no connection.
- sim --dry-run: deterministic for a seed, different for another, the very records of `towerd gen`.
- The simulated traffic at the default fault rates, folded offline, fills every view.
"""

import calendar
import configparser
import json
import os
import re
import socket
import signal
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

TOWERD = None
VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "dead_letters", "sla_breaches"]
# The simulated systems of the default options: each publishes over its own connection.
INSTANCES = ["erp-eu", "routeplanner", "finance-eu", "tower-1", "wms-dc1", "wms-dc2", "wms-dc3",
             "dhl", "ups", "postnl", "dpd", "fedex"]


def http_get(url, timeout=10):
    """(status, content type, body bytes); HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def utc_seconds(text):
    """Seconds since the epoch of an RFC 3339 UTC time (\"...Z\", fraction dropped)."""
    return calendar.timegm(time.strptime(text.split(".")[0].rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))


def processes_mentioning(text):
    """Pids of live processes whose command line contains text."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in cmd and int(pid) != os.getpid():
            found.append((int(pid), cmd.strip()))
    return found


def nats_handshake(port, connect):
    """(INFO as a dict, the server's first answer to CONNECT connect + PING) over a raw socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        line, _, buf = buf.partition(b"\r\n")
        if not line.startswith(b"INFO "):
            raise AssertionError("expected INFO, got %r" % line[:100])
        info = json.loads(line[5:])
        s.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return info, buf.partition(b"\r\n")[0].decode("utf-8", "replace")


def tcp_listeners(port):
    """The local addresses (hex, as in /proc/net/tcp*) of the sockets listening on port."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            addr, hexport = cols[1].rsplit(":", 1)
            if cols[3] == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.append(addr)
    return found


class UpTest(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.root = fx.make_tempdir("tower-up-%s-" % self._testMethodName[:20])
        self.addCleanup(fx.remove_tempdir, self.root)
        self.t = fx.Towerd(TOWERD)
        self.t.cwd = self.root

    def dry_run(self, *args):
        r = self.t.run("sim", "--dry-run", *args, check=0, timeout=300)
        self.assertTrue(r.out.endswith("\n") and r.out.count("\n") > 0, r.describe())
        return r.out

    def fold_status(self, text, name):
        """Fold NDJSON text offline: (stable dump, status)."""
        path = os.path.join(self.root, name + ".ndjson")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return self.t.offline(self.root, path)

    # ---- the simulators, offline

    def test_dry_run_is_deterministic(self):
        a = self.dry_run("--seed", "11", "--orders", "300")
        b = self.dry_run("--seed", "11", "--orders", "300")
        c = self.dry_run("--seed", "12", "--orders", "300")
        self.assertEqual(a, b, "two dry runs of seed 11 differ")
        self.assertNotEqual(a, c, "seeds 11 and 12 gave the same records")
        # The knobs change the records too, and fault rates of 0 leave no bad record.
        d = self.dry_run("--seed", "11", "--orders", "300", "--malformed", "0", "--duplicates", "0")
        self.assertNotEqual(a, d)
        for line in d.splitlines():
            json.loads(line)  # every record parses: no malformed one
        # No second model: at the generator's defaults (60 orders a minute, no warp) these are the very
        # records of `towerd gen`.
        gen = os.path.join(self.root, "gen.ndjson")
        self.t.gen(gen, 11, 300)
        plain = self.dry_run("--seed", "11", "--orders", "300", "--bad-days=false",
                             "--master-data=false")  # gen plays no bad days, no master data
        with open(gen, encoding="utf-8") as f:
            self.assertEqual(plain, f.read(), "sim --dry-run and gen disagree for the same seed")
        # The tower's SLA stand-in can be turned off: then no slaBreached record.
        e = self.dry_run("--seed", "11", "--orders", "300", "--sla-breaches=false")
        self.assertIn('"slaBreached"', a)
        self.assertNotIn('"slaBreached"', e)
        self.assertLess(len(e), len(a))

    def test_default_traffic_fills_every_view(self):
        text = self.dry_run("--seed", "5", "--orders", "2000", "--rate", "60", "--warp", "60")
        dump, status = self.fold_status(text, "traffic")
        empty = [v for v in VIEWS if not dump.get(v)]
        self.assertEqual(empty, [], "views left empty by 2,000 simulated orders: %s (sizes %s)"
                         % (empty, fx.view_sizes(dump)))
        self.assertGreater(status["deadLetters"], 0)
        self.assertGreater(status["duplicates"], 0)

    def test_bad_options_are_usage_errors(self):
        for args in (["--rate", "0"], ["--rate", "fast"], ["--warp", "-1"], ["--short-picks", "1.5"],
                     ["--warehouses", "0"], ["--history", "31d"], ["--history", "-1h"], ["--history", "soon"]):
            r = self.t.run("sim", "--dry-run", "--orders", "5", *args, check=2)
            self.assertIn(args[0], r.err)
        r = self.t.run("up", "--rate", "0", "--data", os.path.join(self.root, "d"), check=2)
        self.assertIn("--rate", r.err)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d")), "a usage error created the data dir")
        for bad in ("-1", "often", "1e9"):
            r = self.t.run("up", "--supervisor-rate", bad, "--data", os.path.join(self.root, "d"), check=2)
            self.assertIn("--supervisor-rate", r.err)
        r = self.t.run("up", "--data", os.path.join(self.root, "d"), env={"TOWER_UP_SUPERVISOR_RATE": "x"}, check=2)
        self.assertIn("TOWER_UP_SUPERVISOR_RATE", r.err)
        self.assertFalse(os.path.exists(os.path.join(self.root, "d")), "a usage error created the data dir")

    # ---- towerd up

    def test_up_without_nats_server(self):
        data = os.path.join(self.root, "d")
        r = self.t.run("up", "--data", data, "--http", "127.0.0.1:%d" % fx.free_port(),
                       "--nats-server", os.path.join(self.root, "no", "nats-server"), check=1, timeout=60)
        self.assertIn("nats-server not found", r.err)
        self.assertIn("apt-get install nats-server", r.err)
        self.assertEqual(processes_mentioning(data), [])
        # The same from the environment.
        r = self.t.run("up", "--data", data, env={"TOWER_NATS_SERVER": "/nonexistent/nats-server"}, check=1,
                       timeout=60)
        self.assertIn("apt-get install nats-server", r.err)

    def test_up_help(self):
        r = self.t.run("up", "--help", check=0)
        for word in ("--data", "--http", "--nats", "--nats-server", "--no-sim", "--warp", "--rate", "--seed",
                     "--orders", "--short-picks", "--malformed", "apt-get install nats-server", "(default: 60)",
                     "--supervisor-rate", "TOWER_UP_SUPERVISOR_RATE", "--history", "(default: 36h)"):
            self.assertIn(word, r.out)

    def test_up_nats_needs_credentials(self):
        data = os.path.join(self.root, "data")
        up = fx.Up(self.t, self.root, data, ["--no-sim", "--web", self.root])
        self.addCleanup(up.close)
        out = up.start()
        port = int(re.search(r"NATS +nats://127\.0\.0\.1:(\d+) ", out).group(1))
        mport = int(re.search(r"monitoring http://127\.0\.0\.1:(\d+)/jsz", out).group(1))
        m = re.search(r"towerd publish --config (\S+) FILE", out)
        self.assertIsNotNone(m, "up does not say how to publish into its NATS\n" + out)
        client_conf = m.group(1)
        ndir = os.path.join(data, "nats")
        self.assertEqual(client_conf, os.path.join(ndir, "client.conf"))
        # The secrets are in files of their owner's only.
        for path, mode in ((ndir, 0o700), (client_conf, 0o600), (os.path.join(ndir, "nats.conf"), 0o600)):
            self.assertEqual(os.stat(path).st_mode & 0o777, mode, "mode of %s" % path)
        ini = configparser.ConfigParser()
        ini.read(client_conf)
        url, user, password = ini["nats"]["url"], ini["nats"]["user"], ini["nats"]["password"]
        self.assertEqual(url, "nats://127.0.0.1:%d" % port)
        self.assertRegex(password, r"^[0-9a-f]{64}$")
        with open(os.path.join(ndir, "nats.conf")) as f:
            conf = f.read()
        self.assertIn("listen: 127.0.0.1:%d\n" % port, conf)
        self.assertIn("authorization {", conf)
        # Loopback only: the client port and the (read-only) monitoring port.
        for p in (port, mport):
            self.assertEqual(tcp_listeners(p), ["0100007F"], "port %d listens beyond 127.0.0.1" % p)

        # Without credentials, or with a wrong password: refused.
        info, answer = nats_handshake(port, {"verbose": False, "pedantic": False, "name": "intruder"})
        self.assertTrue(info.get("auth_required"), info)
        self.assertEqual(answer, "-ERR 'Authorization Violation'")
        _, answer = nats_handshake(port, {"verbose": False, "user": user, "pass": "0" * 64})
        self.assertEqual(answer, "-ERR 'Authorization Violation'")
        # With them: in.
        _, answer = nats_handshake(port, {"verbose": False, "user": user, "pass": password})
        self.assertEqual(answer, "PONG")

        # The recipe up prints works; publishing without the credentials does not.
        events = self.t.gen(os.path.join(self.root, "ev.ndjson"), 3, 5, clean=True)
        r = self.t.run("publish", "--nats", url, events, check=1, timeout=60)
        self.assertRegex(r.err, r"Auth(entication|orization) Violation")
        self.t.run("publish", "--config", client_conf, events, check=0, timeout=60)
        deadline = time.monotonic() + fx.tmo(30)
        while up.summary()["events"] == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertGreater(up.summary()["events"], 0, up.logs())

        # The password is on no command line, in no log and on no monitoring page.
        self.assertEqual(processes_mentioning(password), [])
        for path in (up.out_path, up.err_path, os.path.join(ndir, "nats-server.log")):
            with open(path, errors="replace") as f:
                self.assertNotIn(password, f.read(), path)
        for page in ("varz", "connz?auth=1&subs=1", "jsz?accounts=1"):
            status, _, body = http_get("http://127.0.0.1:%d/%s" % (mport, page))
            self.assertEqual(status, 200, page)
            self.assertNotIn(password.encode(), body, page)

        # New credentials at every start: the old ones no longer work.
        self.assertEqual(up.stop(), 0, up.logs())
        up.start()
        ini2 = configparser.ConfigParser()
        ini2.read(client_conf)
        self.assertNotEqual(ini2["nats"]["password"], password)
        _, answer = nats_handshake(int(ini2["nats"]["url"].rsplit(":", 1)[1]),
                                   {"verbose": False, "user": user, "pass": password})
        self.assertEqual(answer, "-ERR 'Authorization Violation'")
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertEqual(processes_mentioning(data), [])

    def test_up_opens_on_history(self):
        """A new demo opens on a day and a half of business history (the default --history 36h), played at
        full speed before the simulators go live: every view the simulators fill is non-empty within seconds,
        with ages of hours, and the SLA engine has raised the breaches of what is overdue."""
        data = os.path.join(self.root, "data")
        up = fx.Up(self.t, self.root, data, ["--web", self.root, "--progress", "1s"])
        self.addCleanup(up.close)
        out = up.start()
        t0 = time.monotonic()
        self.assertIn("history 36h (a new trace opens on it", out)
        # Up's own 10 s, stretched for slow builds, plus slack for a busy CI machine.
        bound = fx.tmo(10) + 20
        counts = {}
        while True:
            status, _, body = http_get(up.base + "/api/v1/summary")  # 503 until the store is readable
            s = json.loads(body) if status == 200 else {"views": {v: {"count": 0} for v in VIEWS}}
            counts = {v: s["views"][v]["count"] for v in VIEWS}
            if all(counts.values()):
                break
            self.assertLess(time.monotonic() - t0, bound, "views still empty %.0f s after the start: %s\n%s"
                            % (bound, counts, up.logs()))
            time.sleep(0.1)
        took = time.monotonic() - t0
        fx.log("every view non-empty %.2f s after up's banner: %s" % (took, counts))
        print("every view non-empty %.2f s after up's banner" % took, file=sys.stderr)
        # The history ends "now": its oldest open items are hours old (business time), none in the future.
        ages = [s["views"][v]["oldestAgeSeconds"] for v in VIEWS if v != "dead_letters"]
        self.assertGreater(max(ages), 12 * 3600, s["views"])
        self.assertGreaterEqual(min(ages), 0, s["views"])
        # The first order of the trace was created 36 business hours before the start (to the minute).
        status, _, body = http_get(up.base + "/api/v1/orders/SO-R1-100000")
        self.assertEqual(status, 200, body[:300])
        created = utc_seconds(json.loads(body)["milestones"]["orderCreated"])
        self.assertAlmostEqual(utc_seconds(s["now"]) - created, 36 * 3600, delta=3600, msg=body[:300])
        # The breaches are the engine's, not a simulated stand-in's.
        self.assertIn("SLA engine", out)
        self.assertIn("sla: breach sla-", fx.tail(up.err_path, 2000))
        # Then the simulators play live: the trace goes on past the history.
        self.assertRegex(fx.tail(up.err_path, 2000), r"sim: history handed over: \d+ records reported before now")
        before = up.summary()["events"]
        deadline = time.monotonic() + fx.tmo(30)
        while up.summary()["events"] <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertGreater(up.summary()["events"], before, up.logs())
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertEqual(processes_mentioning(data), [])

    def token(self, name, role, tokens_file):
        """A new API token of role, its line appended to tokens_file."""
        r = self.t.run("token", name, role, check=0)
        with open(tokens_file, "a") as f:
            f.write(r.err.strip().splitlines()[-1] + "\n")
        return r.out.strip()

    def api(self, up, path, token, data=None):
        """(status, body bytes) of GET path, or POST data (NDJSON), with a bearer token."""
        req = urllib.request.Request(up.base + path, data=data, method="POST" if data is not None else "GET",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/x-ndjson"})
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def publish_dups(self, up, token):
        """(the summary's publishDuplicates, /metrics' tower_publish_duplicates_total by source)."""
        status, body = self.api(up, "/api/v1/summary", token)
        self.assertEqual(status, 200, body[:300])
        summary = json.loads(body)["publishDuplicates"]
        status, body = self.api(up, "/metrics", token)
        self.assertEqual(status, 200, body[:300])
        metrics = {m.group(1): int(m.group(2)) for m in
                   re.finditer(r'^tower_publish_duplicates_total\{source="([a-z]+)"\} (\d+)$', body.decode(), re.M)}
        return summary, metrics

    def test_up_counts_publish_duplicates(self):
        """Duplicates JetStream drops at publish (ack duplicate) never reach the store: the simulators', the
        ingest gateway's and towerd publish's are counted by the publisher, in /metrics and the summary."""
        data = os.path.join(self.root, "data")
        tokens = os.path.join(self.root, "tokens")
        viewer, ingest = self.token("v", "viewer", tokens), self.token("i", "ingest", tokens)
        up = fx.Up(self.t, self.root, data, ["--web", self.root, "--progress", "1s", "--supervisor-rate", "0",
                                             "--tokens", tokens])
        self.addCleanup(up.close)
        out = up.start()
        # The history holds the trace's reported-twice events: the simulators count them.
        deadline = time.monotonic() + fx.tmo(30)
        while time.monotonic() < deadline:  # the store may not be readable yet (503): wait
            status, body = self.api(up, "/api/v1/summary", viewer)
            if status == 200 and json.loads(body)["publishDuplicates"].get("simulators", 0) > 0:
                break
            time.sleep(0.2)
        summary, metrics = self.publish_dups(up, viewer)
        self.assertGreater(summary["simulators"], 0, "%s\n%s" % (summary, up.logs()))
        self.assertGreaterEqual(metrics["simulators"], summary["simulators"])
        self.assertNotIn("supervisors", summary, "--supervisor-rate 0: no supervisors")
        logged = [int(x) for x in re.findall(r"sim: \d+ records handed over: \d+ stored, (\d+) duplicates",
                                             fx.tail(up.err_path, 4000))]
        self.assertTrue(logged and max(logged) > 0, up.logs())
        # The ingest gateway: the same events twice; the second time JetStream drops them all.
        events = self.t.gen(os.path.join(self.root, "ev.ndjson"), 3, 4, clean=True)
        with open(events, "rb") as f:
            body = f.read()
        n = body.count(b"\n")
        answers = []
        for _ in range(2):
            status, answer = self.api(up, "/api/v1/events", ingest, data=body)
            self.assertEqual(status, 200, answer[:300])
            answers.append(json.loads(answer))
        self.assertEqual((answers[0]["duplicates"], answers[1]["duplicates"]), (0, n), answers)
        summary, metrics = self.publish_dups(up, viewer)
        self.assertEqual((summary["server"], metrics["server"]), (n, n), (summary, metrics))
        # towerd publish of the same file: its summary says they were dropped at publish.
        conf = re.search(r"towerd publish --config (\S+) FILE", out).group(1)
        r = self.t.run("publish", "--config", conf, "--json", events, check=0, timeout=60)
        self.assertEqual((r.json()["stored"], r.json()["duplicates"]), (0, n), r.describe())
        self.assertIn("%d duplicates (already in the stream: dropped by JetStream at publish)" % n, r.err)
        self.assertEqual(up.stop(), 0, up.logs())

    def test_up_with_external_nats_as_is(self):
        """--nats URL: no credentials of up's own, no client.conf; the NATS is used as it is."""
        with fx.NatsServer(root=os.path.join(self.root, "ext")) as ns:
            data = os.path.join(self.root, "data")
            up = fx.Up(self.t, self.root, data, ["--no-sim", "--nats", ns.url, "--web", self.root])
            self.addCleanup(up.close)
            out = up.start()
            self.assertIn("NATS        %s\n" % ns.url, out)
            self.assertNotIn("--config", out)
            self.assertFalse(os.path.exists(os.path.join(data, "nats")))
            events = self.t.gen(os.path.join(self.root, "ev.ndjson"), 3, 5, clean=True)
            self.t.run("publish", "--nats", ns.url, events, check=0, timeout=60)
            deadline = time.monotonic() + fx.tmo(30)
            while up.summary()["events"] == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            self.assertGreater(up.summary()["events"], 0, up.logs())
            self.assertEqual(up.stop(), 0, up.logs())

    def test_up_with_unreachable_nats_stops_on_sigterm(self):
        """--nats URL where nothing answers: up waits for it (saying so) and still stops on SIGTERM."""
        data = os.path.join(self.root, "data")
        argv = [self.t.binary, "up", "--no-sim", "--data", data, "--http", "127.0.0.1:%d" % fx.free_port(),
                "--nats", "nats://127.0.0.1:%d" % fx.free_port(), "--web", self.root]
        err_path = os.path.join(self.root, "up-unreachable.err")
        with open(err_path, "wb") as err:
            p = fx.spawn(argv, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, env=self.t.env(),
                         cwd=self.root)
        try:
            deadline = time.monotonic() + fx.tmo(20)
            while "NATS" not in fx.tail(err_path, 20) and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIsNone(p.poll(), fx.tail(err_path))
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=fx.tmo(15)), 0, fx.tail(err_path))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            fx.reap(p)

    # ---- the simulated supervisors

    def worked_items(self, up):
        """Every item of every view (first page of 1,000) with an acknowledgedAt or an assignee, and the
        number of items looked at."""
        worked, seen = [], 0
        for v in VIEWS:
            status, _, body = http_get(up.base + "/api/v1/views/%s?limit=1000" % v)
            self.assertEqual(status, 200, body[:300])
            items = json.loads(body)["items"]
            seen += len(items)
            worked += [dict(i, view=v) for i in items if i.get("acknowledgedAt") or i.get("assignee")]
        return worked, seen

    def supervisor_connected(self, out):
        monitor = re.search(r"monitoring (http://127\.0\.0\.1:\d+)/jsz", out).group(1)
        status, _, body = http_get(monitor + "/connz?limit=1024")
        return "towerd up supervisor" in {c.get("name") for c in json.loads(body)["connections"]}

    def test_up_runs_the_sla_engine_and_supervisors(self):
        data = os.path.join(self.root, "data")
        up = fx.Up(self.t, self.root, data, ["--seed", "7", "--orders", "60", "--rate", "1500", "--warp", "10000",
                                          "--web", self.root, "--supervisor-rate", "600", "--progress", "2s"])
        self.addCleanup(up.close)
        out = up.start()
        self.assertIn("SLA engine", out)
        monitor = re.search(r"monitoring (http://127\.0\.0\.1:\d+)/jsz", out).group(1)
        status, _, body = http_get(monitor + "/connz?limit=1024")
        names = {c.get("name") for c in json.loads(body)["connections"]}
        self.assertIn("towerd up sla", names)
        self.assertNotIn("tower-sim tower-1", names, "the simulators must not raise breaches beside the engine")
        # The stuck orders of the trace breach their SLAs in business time (10,000x): the engine raises them.
        deadline = time.monotonic() + fx.tmo(60)
        n = 0
        while time.monotonic() < deadline and n == 0:
            n = up.summary()["views"]["sla_breaches"]["count"]
            time.sleep(0.3)
        self.assertGreater(n, 0, "no SLA breach raised by the engine\n" + up.logs())
        self.assertIn("sla: breach sla-", fx.tail(up.err_path, 400))
        # The simulated supervisors, in the same run.
        self.assertIn("supervisors 600 actions per minute", out)
        self.assertTrue(self.supervisor_connected(out), "the supervisors have no NATS connection of their own")
        # Within a bounded time, items are acknowledged and assigned to the simulated supervisors.
        deadline = time.monotonic() + fx.tmo(60)
        worked, seen = [], 0
        while time.monotonic() < deadline:
            worked, seen = self.worked_items(up)
            if [i for i in worked if i.get("assignee")] and [i for i in worked if i.get("acknowledgedAt")]:
                break
            time.sleep(0.5)
        else:
            self.fail("no item acknowledged and assigned by the supervisors (%d items seen, %d worked)\n%s"
                      % (seen, len(worked), up.logs()))
        people = {"dana", "ravi", "mei", "lukas", "sofia"}
        for i in worked:
            if i.get("assignee"):
                self.assertIn(i["assignee"], people, i)
            if i.get("acknowledgedBy"):
                self.assertIn(i["acknowledgedBy"], people, i)
            self.assertIn(i.get("state"), ("acknowledged", "snoozed"), i)
        # Their summary line, like the simulators'.
        summary = r"supervisor: \d+ actions stored \(ack \d+, assign \d+, snooze \d+, note \d+, resolve \d+, reopen \d+\)"
        deadline = time.monotonic() + fx.tmo(20)
        while not re.search(summary, fx.tail(up.err_path, 400)) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertRegex(fx.tail(up.err_path, 400), summary)
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertEqual(processes_mentioning(data), [])
        # Nothing they published was refused.
        self.assertNotIn("sup-", "\n".join(l for l in fx.tail(up.err_path, 5000).splitlines() if "dead letter" in l))
        self.assertNotRegex(fx.tail(up.err_path, 2000), r"(AddressSanitizer|LeakSanitizer|runtime error:)")

    def test_up_runs_stops_and_resumes(self):
        data = os.path.join(self.root, "data")
        web = os.path.join(self.root, "web")
        os.makedirs(web)
        with open(os.path.join(web, "index.html"), "w") as f:
            f.write("<!doctype html><title>tower</title><p>dashboard-marker-7f3a</p>\n")
        # 60 orders arriving within ~3 s, their stories (about 41 hours of business time) told within ~15 s.
        # Without the SLA engine the simulators report the breaches (the trace's "tower-1"), so that
        # the stream is exactly the trace and can be compared with it folded offline.
        # --history 0: the trace starts now, so that its counts are seen to grow.
        trace = ["--seed", "7", "--orders", "60", "--rate", "1500", "--warp", "10000", "--history", "0"]
        # No simulated supervisors: their actions would be events beyond the trace's.
        up = fx.Up(self.t, self.root, data, trace + ["--web", web, "--no-sla", "--supervisor-rate", "0"])
        self.addCleanup(up.close)
        out = up.start()
        self.assertIn("http://127.0.0.1:%d/" % up.port, out)
        m = re.search(r"monitoring (http://127\.0\.0\.1:\d+)/jsz", out)
        self.assertIsNotNone(m, out)
        monitor = m.group(1)

        status, ctype, body = http_get(up.base + "/")
        self.assertEqual(status, 200, body[:300])
        self.assertIn(b"dashboard-marker-7f3a", body)
        self.assertIn("text/html", ctype)

        # The counts grow as the simulators publish.
        seen = []
        deadline = time.monotonic() + fx.tmo(60)
        while time.monotonic() < deadline and (len(seen) < 2 or seen[-1] <= seen[0]):
            s = up.summary()
            if s["events"] > 0 and (not seen or s["events"] != seen[-1]):
                seen.append(s["events"])
            time.sleep(0.2)
        self.assertTrue(len(seen) >= 2 and seen[-1] > seen[0], "the event count did not grow: %s\n%s"
                        % (seen, up.logs()))

        # Each simulated system publishes over its own connection.
        status, _, body = http_get(monitor + "/connz?limit=1024")
        self.assertEqual(status, 200)
        names = {c.get("name") for c in json.loads(body)["connections"]}
        missing = [i for i in INSTANCES if "tower-sim %s" % i not in names]
        self.assertEqual(missing, [], "no connection of their own for %s (connections: %s)" % (missing, sorted(names)))
        # --supervisor-rate 0: no simulated supervisors, and nothing is acted on.
        self.assertIn("supervisors off", out)
        self.assertNotIn("towerd up supervisor", names)
        worked, seen = self.worked_items(up)
        self.assertGreater(seen, 0, "no open item to judge by")
        self.assertEqual(worked, [], "items worked without supervisors")

        before = up.summary()
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertEqual(processes_mentioning(data), [], "processes left behind after SIGTERM")
        self.assertIn("stopping", fx.tail(up.err_path))
        with open(os.path.join(data, "sim.state")) as f:
            state = f.read()
        self.assertRegex(state, r"resume=\d+")

        # Restart on the same dir: the same stream and store, the trace goes on where it was.
        up.start()
        applied, last = before["appliedSeq"], None
        deadline = time.monotonic() + fx.tmo(120)
        while time.monotonic() < deadline:
            s = up.summary()
            self.assertGreaterEqual(s["appliedSeq"], applied, "appliedSeq went back: %s after %s" % (s, before))
            applied = s["appliedSeq"]
            last = s
            if s.get("lag") == 0 and "the trace is over" in fx.tail(up.err_path, 400):
                break
            time.sleep(0.3)
        else:
            self.fail("the trace did not end within %.0fs: %s\n%s" % (fx.tmo(120), last, up.logs()))
        self.assertIn("resuming run 1", fx.tail(up.err_path, 400))

        # Nothing lost, nothing doubled: the same trace folded offline has as many events and dead letters.
        dump, offline = self.fold_status(self.dry_run(*trace), "trace")
        deadline = time.monotonic() + fx.tmo(30)
        while True:
            s = up.summary()
            if (s["events"], s["deadLetters"], s.get("lag")) == (offline["events"], offline["deadLetters"], 0):
                break
            if time.monotonic() > deadline:
                self.fail("after the trace: %d events and %d dead letters (lag %s), offline %d and %d\n%s"
                          % (s["events"], s["deadLetters"], s.get("lag"), offline["events"], offline["deadLetters"],
                             up.logs()))
            time.sleep(0.3)
        self.assertGreater(s["appliedSeq"], before["appliedSeq"])
        self.assertEqual(up.stop(), 0, up.logs())
        self.assertEqual(processes_mentioning(data), [], "processes left behind after SIGTERM")
        for path in (up.err_path,):
            self.assertNotRegex(fx.tail(path, 2000), r"(AddressSanitizer|LeakSanitizer|runtime error:)")


class Result(unittest.TextTestResult):
    pass


def main():
    global TOWERD
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    TOWERD = os.path.abspath(sys.argv[1])
    patterns = sys.argv[2:]
    fx.install_signal_cleanup()
    fx.stretch_for_sanitizer(TOWERD)
    fx.log("towerd %s, slow %s" % (TOWERD, fx.SLOW))
    suite = unittest.TestLoader().loadTestsFromTestCase(UpTest)
    tests = fx.select(list(suite), patterns)  # NAME, =NAME, ~NAME (tests/cases.cmake)
    if not tests and patterns and all(p.startswith("~") for p in patterns):
        return 0  # every test of this file runs in a ctest of its own
    res = unittest.TextTestRunner(verbosity=2, resultclass=Result, stream=sys.stdout).run(unittest.TestSuite(tests))
    fx.kill_all_children()
    return 0 if res.wasSuccessful() and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
