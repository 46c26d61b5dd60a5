#!/usr/bin/env python3
"""Fault tests of the tower on loopback: a 3-node JetStream cluster losing a node, nats-server
restarted under the projector, the LMDB map filling up, damaged store files, the clock stepping back
and forth under the SLA engine, and the disk filling up under the projector.

usage: test_faults.py TOWERD [TEST_NAME_SUBSTRING...]

Environment: TOWER_IT_SCALE (trace sizes, default 1.0), TOWER_IT_SLOW (timeout multiplier; 4 by
itself for a sanitizer build), TOWER_IT_SEED (random choices), TOWER_IT_KEEP=1 (keep the temporary
directories), TOWER_IT_GROW=1 (run the 300 MB map-growth test in a slow build too).

Each test has its own nats-server(s) on free loopback ports and its own temporary directory; all of
it is removed and every child killed even when a test fails. "Nothing lost, nothing doubled" is
checked twice: in JetStream (every valid eventId of the trace is stored exactly once) and in the
store (its views equal those of an offline `towerd fold` of the same trace, and its event count
equals the fold's). Every towerd run is checked for death by a signal and for sanitizer reports.
"""

import collections
import datetime
import json
import os
import random
import resource
import shutil
import signal
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
SEED = int(os.environ.get("TOWER_IT_SEED", str(int(time.time()) % 100000)))
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_get(url, timeout=10):
    """(status, body bytes); HTTP errors are answers too."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Urls:
    """Stands in for a NatsServer where natsfx wants `.url`: a comma-separated list (a cluster)."""

    def __init__(self, urls):
        self.url = ",".join(urls)


# ---------------------------------------------------------------------------------------------
# a 3-node JetStream cluster on loopback

class ClusterNode(fx.NatsServer):
    """A nats-server of a cluster: its ports are chosen by the cluster, and start() does not wait
    (a lone node of a JetStream cluster is not healthy until it sees a meta leader)."""

    def spawn_only(self):
        self._write_config()
        logf = open(self.log_path, "ab")
        self.proc = fx.spawn([self.binary, "-c", self.conf, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                              "-m", str(self.mport), "-sd", self.store_dir],
                             stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        self.starts += 1
        return self

    def start(self, timeout=None):
        self.spawn_only()
        self.wait_ready(timeout or fx.tmo(60))
        return self


class Cluster:
    def __init__(self, root, n=3):
        ports = set()
        while len(ports) < 3 * n:
            ports.add(fx.free_port())
        ports = sorted(ports)
        self.nodes = []
        cports = ports[2 * n:]
        for i in range(n):
            routes = ", ".join("nats-route://127.0.0.1:%d" % cports[j] for j in range(n) if j != i)
            conf = ('cluster {\n  name: "tower-it-cluster"\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n'
                    % (cports[i], routes))
            node = ClusterNode(root=os.path.join(root, "n%d" % (i + 1)), extra_conf=conf)
            node.name = "n%d-%s" % (i + 1, node.name)
            node.port, node.mport = ports[2 * i], ports[2 * i + 1]
            self.nodes.append(node)

    @property
    def urls(self):
        return [n.url for n in self.nodes]

    def start(self):
        for n in self.nodes:
            n.spawn_only()
        for n in self.nodes:
            try:
                n.wait_ready(fx.tmo(60))
            except Exception as e:
                raise AssertionError("cluster node %s did not become healthy: %s\n--- log:\n%s"
                                     % (n.name, e, fx.tail(n.log_path)))
        return self

    def node(self, name):
        return next(n for n in self.nodes if n.name == name)

    def close(self):
        for n in self.nodes:
            n.kill9()


# ---------------------------------------------------------------------------------------------

class FaultTest(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.rng = random.Random("%s/%s" % (SEED, self.id()))
        self.root = fx.make_tempdir("tower-it-%s-" % self._testMethodName[:24])
        self.addCleanup(fx.remove_tempdir, self.root)
        self.nats = None
        self.t = fx.Towerd(TOWERD)
        self.t.cwd = self.root
        self._clients = []
        self.addCleanup(self._close_clients)

    def single_nats(self):
        self.nats = fx.NatsServer(root=self.path("nats"))
        self.addCleanup(self.nats.close)
        self.nats.start()
        self.t.server = self.nats
        return self.nats

    def _close_clients(self):
        for c in self._clients:
            c.close()

    def client(self, url=None):
        c = fx.NatsClient(url or self.nats.url)
        self._clients.append(c)
        return c

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def projector(self, name="store", **kw):
        p = fx.Projector(self.t, self.path(name), log_path=self.path(name + ".projector.log"), **kw)
        self.addCleanup(p.close)
        return p

    def assertViewsEqual(self, got, want, what, skip=("dead_letters",)):
        d = fx.diff_views(got, want, skip)
        if d:
            self.fail("%s: the views differ from the offline fold's:\n%s" % (what, d))

    def assertNoCrash(self, rc, text, what):
        self.assertFalse(rc is not None and rc < 0, "%s died of signal %s:\n%s" % (what, -(rc or 0), text[-3000:]))
        for s in SANITIZER:
            self.assertNotIn(s, text, "%s: sanitizer report:\n%s" % (what, text[-3000:]))

    def assertLogClean(self, path, what):
        with open(path, errors="replace") as f:
            self.assertNoCrash(None, f.read(), what)

    def wait_stream(self, client, name="TOWER_EVENTS", timeout=60):
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            try:
                info = client.stream_info(name)
                if info is not None:
                    return info
            except fx.NatsError:
                pass
            time.sleep(0.1)
        self.fail("stream %s was not created within %ss" % (name, timeout))

    def check_stream_once(self, client, trace, want, what):
        """Every valid eventId of the trace is in the stream exactly once (JetStream's side of 'nothing
        lost, nothing doubled'). Returns (events lost, events doubled)."""
        ids = collections.Counter(e for _, e in fx.stream_event_ids(client))
        valid = set(fx.trace_event_ids(trace)) - {x.get("eventId") for x in want["dead_letters"]}
        lost = sorted(valid - set(ids))
        doubled = sorted(e for e, n in ids.items() if n > 1)
        extra = sorted(set(ids) - valid)
        self.assertEqual((lost[:10], doubled[:10], extra[:10]), ([], [], []),
                         "%s: eventIds lost (%d), stored twice (%d), unexpected (%d) in the stream"
                         % (what, len(lost), len(doubled), len(extra)))
        return len(lost), len(doubled)

    def publisher(self, chunks, url, extra=(), hits=None):
        """A thread publishing the chunks one after the other, re-running a chunk whose run failed
        (a node or the server went away): message ids make the re-run safe. Returns (thread, state)."""
        state = {"runs": collections.Counter(), "errors": [], "done": threading.Event(), "failed_runs": 0}
        stop = threading.Event()
        self.addCleanup(stop.set)

        def run():
            try:
                for i, c in enumerate(chunks):
                    for attempt in range(80):
                        if stop.is_set():
                            return
                        state["runs"][i] += 1
                        r = self.t.publish(c, url=url, check=(0, 1, 3), timeout=120,
                                           extra=["--timeout", "3s"] + list(extra))
                        if r.rc in (0, 3):
                            break
                        state["failed_runs"] += 1
                        time.sleep(0.3)
                    else:
                        raise AssertionError("chunk %d never published" % i)
                    time.sleep(self.rng.uniform(0.05, 0.2) * fx.SLOW)
            except BaseException as e:  # reported by the main thread
                state["errors"].append(e)
            finally:
                state["done"].set()

        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th, state

    def join_publisher(self, th, state, timeout=300):
        th.join(fx.tmo(timeout))
        self.assertTrue(state["done"].is_set(), "the publisher did not finish")
        if state["errors"]:
            raise state["errors"][0]

    def wait_stored(self, client, n, timeout=60):
        """Until the stream holds at least n messages."""
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            try:
                info = client.stream_info("TOWER_EVENTS")
                if info and info["state"]["messages"] >= n:
                    return
            except fx.NatsError:
                pass
            time.sleep(0.02)


# ---------------------------------------------------------------------------------------------

class T1ClusterNodeLoss(FaultTest):
    def test_1_cluster_node_kill9(self):
        """A 3-node cluster with R3 streams: kill -9 the stream leader, then another node, while a trace
        is published; each comes back. Nothing lost or doubled; the projector (given all three URLs)
        goes on as the same process; its views equal the offline fold's."""
        cl = Cluster(self.path("cluster"))
        self.addCleanup(cl.close)
        cl.start()
        urls = Urls(cl.urls)
        self.t.server = urls
        trace = self.t.gen(self.path("trace.ndjson"), 31, fx.scaled(400, 100))
        chunks = fx.split_file(trace, 16, self.root)
        want, want_st = self.t.offline(self.root, trace)
        data = self.path("store")
        proj = self.projector(url=urls.url, args=["--stream-replicas", "3", "--batch", "100"])
        proj.start().wait_running(timeout=90)
        pid = proj.proc.pid
        c0 = self.client(cl.nodes[0].url)
        info = self.wait_stream(c0)
        self.assertEqual(info["config"]["num_replicas"], 3, info["config"])

        t0 = time.monotonic()
        th, state = self.publisher(chunks, urls.url, extra=["--stream-replicas", "3"])
        victims = []
        for k in range(2):
            self.wait_stored(c0 if c0 and not c0.closed else self.client(cl.nodes[1].url),
                             (k + 1) * len(fx.trace_event_ids(trace)) // 4, timeout=60)
            alive = [n for n in cl.nodes if n.running()]
            ask = self.client(alive[0].url)
            info = ask.stream_info("TOWER_EVENTS")
            leader = (info.get("cluster") or {}).get("leader")
            victim = cl.node(leader) if k == 0 and leader else self.rng.choice(
                [n for n in cl.nodes if n.name != (victims[-1] if victims else None)])
            victims.append(victim.name)
            fx.log("test 1: kill -9 %s (%s), stream leader %s" % (victim.name, victim.url, leader))
            victim.kill9()
            c0 = None if victim is cl.nodes[0] else c0
            time.sleep(self.rng.uniform(1.0, 2.0))
            victim.start()
            c0 = c0 or self.client(cl.nodes[0].url)
        self.join_publisher(th, state)
        secs = time.monotonic() - t0
        ask = self.client(cl.nodes[0].url)
        st, info = fx.wait_caught_up(self.t, data, ask, proj, timeout=120)
        self.assertTrue(proj.alive() and proj.proc.pid == pid, "the projector was not the same process throughout")
        got = self.t.dump(data)
        self.assertViewsEqual(got, want, "after killing %s" % victims)
        lost, doubled = self.check_stream_once(ask, trace, want, "cluster")
        self.assertEqual(st["events"], want_st["events"])
        self.assertEqual(st["deadLetters"], 0)
        # Every replica is current again.
        deadline = time.monotonic() + fx.tmo(60)
        while True:
            info = ask.stream_info("TOWER_EVENTS")
            reps = info.get("cluster", {}).get("replicas", [])
            if len(reps) == 2 and all(r.get("current") for r in reps):
                break
            self.assertLess(time.monotonic(), deadline, "replicas not current: %s" % info.get("cluster"))
            time.sleep(0.2)
        self.assertEqual(proj.stop(), 0, proj.log())
        self.assertLogClean(proj.log_path, "the projector")
        fx.log("FIGURES test_1_cluster_node_kill9: %d events (%d lines) published in %.1fs through kills of %s; "
               "%d failed publish runs re-run; lost %d, doubled %d; projector events %d = fold %d"
               % (info["state"]["messages"], len(fx.trace_event_ids(trace)), secs, victims, state["failed_runs"],
                  lost, doubled, st["events"], want_st["events"]))


class T2NatsRestart(FaultTest):
    def test_2_nats_sigterm_restart_mid_stream(self):
        """nats-server stopped with SIGTERM and started again (same port and store), twice, while a trace
        is published: the projector reconnects and catches up; views equal the offline fold's."""
        self.single_nats()
        trace = self.t.gen(self.path("trace.ndjson"), 32, fx.scaled(400, 100))
        chunks = fx.split_file(trace, 16, self.root)
        want, want_st = self.t.offline(self.root, trace)
        data = self.path("store")
        proj = self.projector(args=["--batch", "100"])
        proj.start().wait_running()
        pid = proj.proc.pid
        c = self.client()
        self.wait_stream(c)
        n_lines = len(fx.trace_event_ids(trace))
        t0 = time.monotonic()
        th, state = self.publisher(chunks, self.nats.url)
        downs = []
        for k in range(2):
            c = self.client()
            self.wait_stored(c, (k + 1) * n_lines // 4)
            c.close()
            t1 = time.monotonic()
            rc = self.nats.stop()  # nats-server 2.9 exits 1 on SIGTERM: only a clean stop matters here
            self.assertIn(rc, (0, 1), "nats-server exit code on SIGTERM")
            time.sleep(self.rng.uniform(0.3, 1.0))
            self.nats.start()
            downs.append(time.monotonic() - t1)
        self.join_publisher(th, state)
        secs = time.monotonic() - t0
        c = self.client()
        st, info = fx.wait_caught_up(self.t, data, c, proj, timeout=120)
        self.assertTrue(proj.alive() and proj.proc.pid == pid, "the projector was not the same process throughout")
        self.assertViewsEqual(self.t.dump(data), want, "after 2 nats-server restarts")
        lost, doubled = self.check_stream_once(c, trace, want, "restarts")
        self.assertEqual(st["events"], want_st["events"])
        self.assertIn("reconnected", proj.log(400))
        self.assertEqual(proj.stop(), 0, proj.log())
        self.assertLogClean(proj.log_path, "the projector")
        fx.log("FIGURES test_2_nats_sigterm_restart_mid_stream: %d events published in %.1fs across 2 restarts "
               "(down %s s); %d failed publish runs re-run; lost %d, doubled %d; projector events %d = fold %d"
               % (info["state"]["messages"], secs, ["%.1f" % d for d in downs], state["failed_runs"], lost,
                  doubled, st["events"], want_st["events"]))


class T3MapGrowth(FaultTest):
    def test_3_map_full_grows(self):
        """The projector fills its LMDB map (made to start at 32 MiB with TOWER_STORE_MAP_MIB instead of the
        default 256 MiB, so that ~50 MB of big dead letters do it) and grows it: no error, no lost event, views
        correct. Cheap enough for the sanitizer build too."""
        if fx.SCALE < 0.5:
            self.skipTest("TOWER_IT_SCALE < 0.5: no 50 MB store")
        fx.with_test_env(self, TOWER_STORE_MAP_MIB="32")  # for the projector started below
        self.single_nats()
        trace = self.t.gen(self.path("trace.ndjson"), 33, 200)
        want, want_st = self.t.offline(self.root, trace)
        data = self.path("store")
        proj = self.projector()
        proj.start().wait_running()
        c = self.client()
        self.wait_stream(c)
        self.t.publish(trace, check=(0, 3))
        t0 = time.monotonic()
        n_big, pad = 800, os.urandom(31000).hex()
        for i in range(n_big):  # malformed events of ~62 kB: dead letters whose raw bytes the store keeps
            body = ('{"eventId":"grow-%d","pad":"%s' % (i, pad)).encode()
            c.publish("tower.evt.erp.orderApproved", body)
            if i % 200 == 199:
                c.flush(timeout=fx.tmo(30))
        c.flush(timeout=fx.tmo(30))
        st, info = fx.wait_caught_up(self.t, data, c, proj, timeout=300)
        secs = time.monotonic() - t0
        size = os.path.getsize(os.path.join(data, "current", "data.mdb"))
        # The whole log: a batch's dead-letter lines follow the growth it caused, and a projector behind
        # commits batches of up to 1,000 (more than a short tail).
        log = proj.log(100000)
        self.assertIn("map full: grew", log, "the map never had to grow (store %d MiB)" % (size >> 20))
        self.assertGreater(size, 32 << 20)
        got = self.t.dump(data, stable=False)
        self.assertViewsEqual(got, want, "after the map grew")
        self.assertEqual(st["events"], want_st["events"])
        self.assertEqual(st["deadLetters"], n_big)
        self.assertEqual(len(got["dead_letters"]), n_big)
        self.assertNotIn(" error ", log, "the projector logged an error while the map grew")
        self.assertEqual(proj.stop(), 0, proj.log())
        fx.log("FIGURES test_3_map_full_grows: %d big dead letters (%d MB) + %d events folded in %.1fs; store %d MiB; "
               "growths: %s" % (n_big, n_big * 62000 // 1000000, want_st["events"], secs, size >> 20,
                                [ln.split("grew ", 1)[1] for ln in log.splitlines() if "map full: grew" in ln]))


class T4DamagedStore(FaultTest):
    def test_4_damaged_store_detected_then_rebuilt(self):
        """data.mdb truncated to half, or its meta pages overwritten with garbage: status, dump, serve and
        the projector say which file is damaged and that `towerd rebuild` is the way out, exit non-zero
        (the projector 4) and never crash; then rebuild from the stream restores the views."""
        self.single_nats()
        trace = self.t.gen(self.path("trace.ndjson"), 34, fx.scaled(300, 80))
        want, want_st = self.t.offline(self.root, trace)
        healthy = self.path("healthy")
        proj = self.projector("healthy")
        proj.start().wait_running()
        self.t.publish(trace, check=(0, 3))
        c = self.client()
        fx.wait_caught_up(self.t, healthy, c, proj)
        self.assertEqual(proj.stop(), 0, proj.log())
        figures = {}
        for kind in ("truncated", "meta-garbage"):
            data = self.path(kind)
            shutil.copytree(healthy, data, symlinks=True)
            f = os.path.join(data, "current", "data.mdb")
            size = os.path.getsize(f)
            if kind == "truncated":
                os.truncate(f, size // 2)
            else:
                with open(f, "r+b") as fh:
                    fh.write(os.urandom(2 * 4096))  # both meta pages (LMDB's page size here is 4 KiB)
            for cmd in (["status", "--data", data, "--no-nats"], ["status", "--data", data, "--json", "--nats", self.nats.url],
                        ["dump", "--data", data, "--stable"],
                        ["projector", "--nats", self.nats.url, "--data", data]):
                r = self.t.run(*cmd, timeout=60)
                what = "towerd %s on a %s store" % (cmd[0], kind)
                self.assertNoCrash(r.rc, r.err, what)
                self.assertEqual(r.rc, 4 if cmd[0] == "projector" else 1, what + ": " + r.describe())
                self.assertIn("data.mdb is damaged", r.err, what + ": " + r.describe())
                self.assertIn("towerd rebuild", r.err, what + ": " + r.describe())
                figures["%s %s" % (kind, cmd[0])] = r.rc
            # serve: it starts without a store (it waits for one), so it must answer 503 and say why.
            serve = fx.TowerServe(self.t, data, self.path("serve-%s.log" % kind), args=["--no-nats"])
            self.addCleanup(serve.kill)
            serve.start()
            status, body = http_get(serve.url + "/api/v1/summary")
            self.assertGreaterEqual(status, 500, body[:300])
            self.assertIn(b"error", body)
            rstatus, _ = http_get(serve.url + "/readyz")
            self.assertNotEqual(rstatus, 200, "/readyz with a damaged store")
            self.assertTrue(serve.alive(), serve.log())
            self.assertEqual(serve.stop(), 0, serve.log())
            slog = fx.tail(serve.log_path, 200)
            self.assertNoCrash(None, slog, "towerd serve on a %s store" % kind)
            self.assertIn("data.mdb is damaged", slog)
            figures["%s serve /api/v1/summary" % kind] = status
            # The way out: rebuild from the stream, then the projector goes on.
            r = self.t.run("rebuild", "--nats", self.nats.url, "--data", data, timeout=180)
            self.assertNoCrash(r.rc, r.err, "towerd rebuild")
            self.assertEqual(r.rc, 0, r.describe())
            got = self.t.dump(data)
            self.assertViewsEqual(got, want, "after rebuilding a %s store" % kind)
            p2 = self.projector(kind)
            p2.start().wait_running()
            st, _ = fx.wait_caught_up(self.t, data, c, p2)
            self.assertEqual(st["events"], want_st["events"])
            self.assertEqual(p2.stop(), 0, p2.log())
        fx.log("FIGURES test_4_damaged_store_detected_then_rebuilt: exit codes / HTTP statuses %s; rebuilt %d events"
               % (figures, want_st["events"]))


class T5ClockSteps(FaultTest):
    def test_5_sla_clock_back_and_forth(self):
        """The SLA engine's clock jumps back and forward (with the projector stopped, so that dues stay in
        the index and are raised again, and running): every overdue due is raised exactly once in the
        stream, none is lost, and the sla_breaches view holds each once."""
        self.single_nats()
        data = self.path("store")
        proj = self.projector()
        proj.start().wait_running()
        c = self.client()
        t0 = (int(time.time()) // 60) * 60 - 3 * 3600
        n = 8
        events = [{"eventId": "clk-a-%d" % i, "occurredAt": rfc3339(t0 + 300 * i), "source": {"system": "erp"},
                   "orderId": "SO-CLK%d" % i, "orderApproved": {"warehouseId": "dc-1"}} for i in range(n)]
        path = self.path("approved.ndjson")
        with open(path, "w") as f:
            f.write("".join(json.dumps(e) + "\n" for e in events))
        self.t.publish(path, check=0)
        fx.wait_caught_up(self.t, data, c, proj)
        due = [t0 + 300 * i + 900 for i in range(n)]  # the release rule: 15 minutes

        def once(now):
            r = self.t.run("sla", "--once", "--nats", self.nats.url, "--data", data, "--now", rfc3339(now),
                           timeout=60)
            self.assertNoCrash(r.rc, r.err, "towerd sla --once")
            self.assertEqual(r.rc, 0, r.describe())
            return r.json()

        def breaches():
            return collections.Counter(e for _, e in fx.stream_event_ids(c) if e and e.startswith("sla-"))

        steps = []
        # Phase 1, projector stopped: forward past 3 dues, back before all, forward past 2, back, forward past 5.
        self.assertEqual(proj.stop(), 0)
        for now in (due[2] + 30, t0, due[1] + 1, due[0] - 1, due[4] + 10, due[3]):
            s = once(now)
            steps.append((now - t0, s["overdue"], s["published"], s["duplicates"]))
        got = breaches()
        self.assertEqual(sorted(got), sorted("sla-release-o-SO-CLK%d-%d" % (i, due[i]) for i in range(5)), got)
        self.assertEqual([e for e, k in got.items() if k > 1], [])
        # Phase 2, projector running: the breaches fold, so later runs find them gone from the index.
        proj.start().wait_running()
        fx.wait_caught_up(self.t, data, c, proj)
        for now in (due[4] + 60, t0 - 3600, due[2], due[7] + 5, due[5] - 1, due[7] + 3600):
            s = once(now)
            steps.append((now - t0, s["overdue"], s["published"], s["duplicates"]))
            fx.wait_caught_up(self.t, data, c, proj)
        # Phase 3: a continuous engine whose clock is stepped back, then forward, by restarting it.
        for now in (t0 - 86400, due[7] + 7200):
            logp = self.path("sla-%d.log" % now)
            with open(logp, "ab") as logf:
                p = fx.spawn([self.t.binary, "sla", "--nats", self.nats.url, "--data", data, "--now", rfc3339(now),
                              "--poll", "100ms"], stdout=logf, stderr=subprocess.STDOUT,
                             env=self.t.env({"TOWER_LOG": "debug"}), cwd=self.root)
            # until it has run two whole cycles on that clock (the second after the first's breaches)
            deadline = time.monotonic() + fx.tmo(20)
            while time.monotonic() < deadline and p.poll() is None:
                with open(logp, errors="replace") as f:
                    if f.read().count("breach cycle done") >= 2:
                        break
                time.sleep(0.05)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=fx.tmo(20)), 0, fx.tail(logp))
            fx.reap(p)
            self.assertLogClean(logp, "towerd sla")
        fx.wait_caught_up(self.t, data, c, proj)
        got = breaches()
        want_ids = sorted("sla-release-o-SO-CLK%d-%d" % (i, due[i]) for i in range(n))
        self.assertEqual(sorted(got), want_ids, "breaches lost or unexpected")
        doubled = [e for e, k in got.items() if k > 1]
        self.assertEqual(doubled, [], "breaches stored twice")
        view = self.t.dump(data)["sla_breaches"]
        self.assertEqual(sorted(i["orderId"] for i in view), sorted("SO-CLK%d" % i for i in range(n)))
        self.assertEqual(proj.stop(), 0, proj.log())
        fx.log("FIGURES test_5_sla_clock_back_and_forth: %d dues; steps (now-t0 s, overdue, published, duplicates) "
               "%s; breaches in stream %d distinct, lost %d, doubled %d"
               % (n, steps, len(got), n - len(got), len(doubled)))


class T6DiskFull(FaultTest):
    def _setup_half(self, seed):
        self.single_nats()
        trace = self.t.gen(self.path("trace.ndjson"), seed, fx.scaled(600, 150))
        lines = open(trace, encoding="utf-8").read().splitlines(keepends=True)
        a, b = self.path("a.ndjson"), self.path("b.ndjson")
        with open(a, "w") as f:
            f.writelines(lines[:len(lines) // 4])
        with open(b, "w") as f:
            f.writelines(lines[len(lines) // 4:])
        want, want_st = self.t.offline(self.root, trace)
        return trace, a, b, want, want_st

    def _start_limited(self, data, log_path, fsize=None):
        """The projector with RLIMIT_FSIZE (SIGXFSZ ignored, so that writes past it fail with EFBIG)."""
        def pre():
            fx._pdeathsig()
            if fsize is not None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        logf = open(log_path, "ab")
        p = fx.spawn([self.t.binary, "projector", "--nats", self.nats.url, "--data", data],
                     stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.t.env(),
                     cwd=self.root, preexec_fn=pre)
        logf.close()
        return p

    def _disk_full(self, data, start_full, space_returns, what, seed):
        trace, a, b, want, want_st = self._setup_half(seed)
        proj = self.projector("store" if data is None else os.path.basename(data))
        data = proj.data
        proj.start().wait_running()
        c = self.client()
        self.t.publish(a, check=(0, 3))
        st_a, _ = fx.wait_caught_up(self.t, data, c, proj)
        self.assertEqual(proj.stop(), 0, proj.log())
        before = self.t.dump(data)
        full = start_full()
        self.t.publish(b, check=(0, 3))
        logp = self.path("full.projector.log")
        p = self._start_limited(data, logp, full)
        t0 = time.monotonic()
        try:
            rc = p.wait(timeout=fx.tmo(20))
        except subprocess.TimeoutExpired:
            rc = None  # still running: it retries
        fx.reap(p) if rc is not None else None
        secs = time.monotonic() - t0
        text = fx.tail(logp, 400)
        if rc is None:
            p.send_signal(signal.SIGTERM)
            rc_stop = p.wait(timeout=fx.tmo(30))
            fx.reap(p)
            self.assertNoCrash(rc_stop, text, "the projector on a full disk (stopped)")
            behaviour = "kept running (retrying) for %.0fs; SIGTERM -> exit %d" % (secs, rc_stop)
        else:
            self.assertNoCrash(rc, text, "the projector on a full disk")
            self.assertNotEqual(rc, 0, "the projector exited 0 on a full disk:\n" + text)
            behaviour = "exited %d after %.1fs" % (rc, secs)
        self.assertRegex(text, r"error.*(file size limit|disk is full)",
                         "no clear error about the full disk in the projector's log:\n" + text)
        msg = [ln for ln in text.splitlines() if " error " in ln][:2]
        # The store is intact: it opens, and holds exactly what it held before (no partial batch).
        st_full = self.t.status(data, live=False)
        self.assertEqual(st_full["appliedSeq"], st_a["appliedSeq"], "a partial batch reached the store")
        self.assertEqual(self.t.dump(data), before)
        space_returns()
        proj.start().wait_running()
        st, info = fx.wait_caught_up(self.t, data, c, proj)
        self.assertViewsEqual(self.t.dump(data), want, "after the disk had room again")
        self.assertEqual(st["events"], want_st["events"])
        self.assertEqual(proj.stop(), 0, proj.log())
        fx.log("FIGURES %s: %d events before the disk filled, %d after it had room again (= fold %d); projector on "
               "the full disk: %s; message: %s" % (what, st_a["events"], st["events"], want_st["events"], behaviour, msg))

    def test_6_disk_full_rlimit_fsize(self):
        """The store's file may not grow (RLIMIT_FSIZE at its current size: writes past it fail with EFBIG):
        the projector reports it and stops or retries, the store stays intact; without the limit it resumes
        and its views equal the offline fold's."""
        holder = {}

        def start_full():
            holder["size"] = os.path.getsize(os.path.join(self.path("store"), "current", "data.mdb"))
            return holder["size"]

        self._disk_full(None, start_full, lambda: None, "test_6_disk_full_rlimit_fsize", 36)

    def test_6b_disk_full_tmpfs(self):
        """The same on a real full filesystem (ENOSPC): a small tmpfs holding the store; it is grown
        (remount) for the resumption. Needs root and mount(2); skipped otherwise."""
        if os.geteuid() != 0 or not shutil.which("mount"):
            self.skipTest("not root: no tmpfs (test_6_disk_full_rlimit_fsize covers the case)")
        mnt = self.path("tmpfs")
        os.makedirs(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tower-it-tmpfs", mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs here (%s)" % r.stdout.decode(errors="replace").strip())
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data = os.path.join(mnt, "store")

        def start_full():
            used = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(mnt) for f in fs)
            size = used + 64 * 1024
            subprocess.run(["mount", "-o", "remount,size=%d" % size, mnt], check=True)
            return None

        def space_returns():
            subprocess.run(["mount", "-o", "remount,size=256m", mnt], check=True)

        # The projector's store lives on the tmpfs: a symlink from the test's dir keeps its paths short.
        os.symlink(data, self.path("tstore"))
        os.makedirs(data)
        self._disk_full(self.path("tstore"), start_full, space_returns, "test_6b_disk_full_tmpfs", 37)


# ---------------------------------------------------------------------------------------------

def main():
    return fx.main(sys.modules[__name__], seed=SEED)


if __name__ == "__main__":
    sys.exit(main())
