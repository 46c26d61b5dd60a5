#!/usr/bin/env python3
"""The multi-node recipe (deploy/cluster/) run on loopback, and the failures it is for.

usage: test_cluster.py TOWERD [TEST_NAME_SUBSTRING...]

Environment: TOWER_IT_SLOW (timeout multiplier; 4 for ASan), TOWER_IT_KEEP=1 (keep the directory).

`deploy/cluster/cluster.sh up` starts a 3-node JetStream cluster (streams with 3 replicas), two read
replicas (projector + serve + sla each, own store), nginx with TLS in front of both, Alertmanager.
Through nginx (HTTPS, tokens): events are ingested; both replicas converge to the same views; a live
stream client (wss) on the replica that is then killed -9 reconnects through nginx to the other one
and resyncs by sequence (its snapshot is not behind what it had), and after more events its picture of
every view equals the REST answer; REST through nginx keeps answering 200 while a replica is down;
the JetStream stream leader is killed -9 while events are ingested: every acknowledged event is in
the stream exactly once, and both replicas converge again; the SLA engines' alerts reach Alertmanager.
"""

import json
import os
import random
import socket
import ssl
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
SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SRC, "deploy", "cluster", "cluster.sh")
VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "sla_breaches"]
# The ports cluster.sh takes from its base (see its port functions).
OFFSETS = [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 40, 50]


def free_base():
    """A base port whose every port the recipe uses is free (outside the ephemeral range)."""
    for _ in range(200):
        base = random.randrange(10000, 30000)
        socks = []
        try:
            for off in OFFSETS:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", base + off))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range for the cluster")


class ClusterMirror:
    """A live-stream client's picture of every view (snapshots, then deltas), over wss through nginx."""

    def __init__(self, port, token, ctx):
        self.ws = fx.WsClient(port, path="/api/v1/stream?token=" + token, ssl_context=ctx)
        self.lock = threading.Lock()
        self.items, self.seq, self.problems, self.snapshots = {}, {}, [], 0
        self.closed = threading.Event()
        self.ws.send({"type": "subscribe"})
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                msgs = self.ws.recv(timeout=0.5)
            except (TimeoutError, socket.timeout, ssl.SSLError):
                continue
            except (OSError, fx.WsClosed):
                self.closed.set()
                return
            with self.lock:
                for m in msgs:
                    self._apply(m)

    def _apply(self, m):
        t = m.get("type")
        if t == "snapshot":
            self.items[m["view"]] = {it["key"]: it for it in m["items"]}
            self.seq[m["view"]] = m["seq"]
            self.snapshots += 1
        elif t == "delta":
            v = m["view"]
            if v not in self.items:
                self.problems.append("delta before the snapshot of %s" % v)
                return
            if m["seq"] < self.seq[v]:
                self.problems.append("%s: delta %d after %d" % (v, m["seq"], self.seq[v]))
            self.seq[v] = m["seq"]
            if m["op"] == "remove":
                self.items[v].pop(m["item"]["key"], None)
            else:
                self.items[v][m["item"]["key"]] = m["item"]
        elif t == "error":
            self.problems.append("error %s" % m)

    def keys(self, view):
        with self.lock:
            return set(self.items.get(view, {}))

    def max_seq(self):
        with self.lock:
            return max(self.seq.values()) if self.seq else 0

    def close(self):
        self.ws.close()
        self.thread.join(timeout=5)


class ClusterTest(unittest.TestCase):
    maxDiff = 3000

    def setUp(self):
        self.root = fx.make_tempdir("tower-it-cluster-")
        self.addCleanup(fx.remove_tempdir, self.root)
        self.dir = os.path.join(self.root, "cluster")
        self.env = dict(os.environ, TOWERD=TOWERD, CLUSTER_BASE_PORT=str(free_base()),
                        CLUSTER_WEB=os.path.join(SRC, "web"))
        self.t = fx.Towerd(TOWERD)
        self.t.cwd = self.root
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPSHandler(context=None))

    def sh(self, *args, check=True, timeout=120):
        r = subprocess.run(["sh", SCRIPT] + list(args), env=self.env, capture_output=True, text=True,
                           timeout=fx.tmo(timeout))
        if check and r.returncode != 0:
            raise AssertionError("cluster.sh %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r

    def up(self):
        self.sh("up", self.dir, timeout=180)
        self.addCleanup(self.sh, "down", self.dir, check=False)
        env = {}
        with open(os.path.join(self.dir, "cluster.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                env[k] = v
        self.cenv = env
        self.https_port = int(env["HTTPS"].rsplit(":", 1)[1])
        self.ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "tls", "tower.crt"))
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                                  urllib.request.HTTPSHandler(context=self.ctx))
        self.ops = open(os.path.join(self.dir, "secrets", "ops.token")).read().strip()
        self.erp = open(os.path.join(self.dir, "secrets", "erp.token")).read().strip()

    def http(self, url, token=None, data=None, ctype=None, timeout=15):
        req = urllib.request.Request(url, data=data)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if ctype:
            req.add_header("Content-Type", ctype)
        try:
            with self.opener.open(req, timeout=fx.tmo(timeout)) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except (urllib.error.URLError, OSError) as e:  # nobody listens (a killed replica)
            return 0, str(e).encode()

    def ingest(self, path):
        with open(path, "rb") as f:
            body = f.read()
        deadline = time.monotonic() + fx.tmo(30)
        while True:
            st, out = self.http(self.cenv["HTTPS"] + "/api/v1/events", self.erp, body, "application/x-ndjson", 60)
            # 503: nothing was stored (e.g. the stream's leader is being elected); a client sends it again
            if st != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(st, 200, out[:500])
        res = json.loads(out)
        self.assertEqual(res["failed"], 0, res)
        return res

    def summary(self, base):
        st, out = self.http(base + "/api/v1/summary", self.ops)
        self.assertEqual(st, 200, out[:300])
        return json.loads(out)

    def view_keys(self, base, view):
        st, out = self.http(base + "/api/v1/views/%s?limit=1000" % view, self.ops)
        self.assertEqual(st, 200, out[:300])
        return {it["key"] for it in json.loads(out)["items"]}

    def converged(self, timeout=60):
        """Both replicas applied the whole stream and hold the same views (their stable dumps agree)."""
        deadline = time.monotonic() + fx.tmo(timeout)
        while True:
            s1, s2 = self.summary(self.cenv["SERVE_1"]), self.summary(self.cenv["SERVE_2"])
            if (s1["appliedSeq"] == s2["appliedSeq"] == s1.get("streamLastSeq") and s1["appliedSeq"] > 0):
                d1 = self.t.run("dump", "--data", os.path.join(self.dir, "replica-1", "data"), "--stable").out
                d2 = self.t.run("dump", "--data", os.path.join(self.dir, "replica-2", "data"), "--stable").out
                if d1 == d2:
                    return s1["appliedSeq"]
            if time.monotonic() > deadline:
                for r in (1, 2):  # what the projectors said, for whoever reads the failure
                    path = os.path.join(self.dir, "log", "projector-%d.log" % r)
                    if os.path.exists(path):
                        with open(path, errors="replace") as f:
                            lines = [ln for ln in f if " info " not in ln or "consuming" in ln]
                        fx.log("projector-%d (last warnings and positions):\n%s" % (r, "".join(lines[-25:])))
                self.fail("the replicas did not converge: %s / %s" % (
                    {k: s1.get(k) for k in ("appliedSeq", "streamLastSeq")},
                    {k: s2.get(k) for k in ("appliedSeq", "streamLastSeq")}))
            time.sleep(0.2)

    def ws_replica(self, timeout=10):
        """Which replica's serve holds the one live-stream client (from their /metrics)."""
        deadline = time.monotonic() + fx.tmo(timeout)
        while time.monotonic() < deadline:
            for r in (1, 2):
                st, out = self.http(self.cenv["SERVE_%d" % r] + "/metrics")
                if st == 200 and "\ntower_ws_clients 1\n" in out.decode():
                    return r
            time.sleep(0.1)
        self.fail("no replica reports the live-stream client")

    def mirror_matches(self, m, base, timeout=30):
        deadline = time.monotonic() + fx.tmo(timeout)
        while True:
            diff = {v: (len(m.keys(v)), len(self.view_keys(base, v))) for v in VIEWS
                    if m.keys(v) != self.view_keys(base, v)}
            if not diff:
                return
            if time.monotonic() > deadline:
                detail = {}
                for v in diff:
                    mine, rest = m.keys(v), self.view_keys(base, v)
                    with m.lock:
                        extra = [m.items[v][k] for k in sorted(mine - rest)][:3]
                    detail[v] = {"client only": extra, "REST only": sorted(rest - mine)[:3], "client seq": m.seq.get(v)}
                self.fail("the live client's views differ from REST (client, REST): %s; problems %s; %s; REST summary %s"
                          % (diff, m.problems[:5], json.dumps(detail)[:3000], json.dumps(self.summary(base))[:600]))
            time.sleep(0.2)

    def stream_leader(self):
        for port in self.cenv["NATS_MONITOR"].split(","):
            st, out = self.http("http://127.0.0.1:%s/jsz?streams=1" % port)
            if st != 200:
                continue
            for acc in json.loads(out).get("account_details", []):
                for s in acc.get("stream_detail", []):
                    if s["name"] == "TOWER_EVENTS" and s.get("cluster", {}).get("leader"):
                        return s["cluster"]["leader"]
        return None

    def test_cluster_replicas_and_node_loss(self):
        trace = os.path.join(self.root, "trace.ndjson")
        self.t.run("gen", "--seed", "5", "--orders", "150", "--clean", "-o", trace)
        parts = fx.split_file(trace, 3, self.root)
        self.up()

        # 1. ingest through nginx; both replicas converge
        accepted = self.ingest(parts[0])["accepted"]
        seq1 = self.converged()
        fx.log("part 1: %d accepted, both replicas at %d" % (accepted, seq1))

        # 2. a live client through nginx; kill -9 the replica holding it
        m = ClusterMirror(self.https_port, self.ops, self.ctx)
        self.addCleanup(m.close)
        deadline = time.monotonic() + fx.tmo(15)
        while m.snapshots < len(VIEWS) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(m.snapshots, len(VIEWS), m.problems)
        seen = m.max_seq()
        self.assertGreaterEqual(seen, seq1)
        victim = self.ws_replica()
        other = 3 - victim
        self.sh("kill", self.dir, "serve-%d" % victim)
        self.assertTrue(m.closed.wait(fx.tmo(10)), "the client noticed its replica's death")
        # the balancer keeps answering, every request
        codes = [self.http(self.cenv["HTTPS"] + "/api/v1/summary", self.ops)[0] for _ in range(20)]
        self.assertEqual(codes, [200] * 20, "REST through nginx with serve-%d dead" % victim)

        # 3. the client reconnects through nginx (to the other replica) and resyncs by sequence
        m2 = ClusterMirror(self.https_port, self.ops, self.ctx)
        self.addCleanup(m2.close)
        deadline = time.monotonic() + fx.tmo(15)
        while m2.snapshots < len(VIEWS) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(m2.snapshots, len(VIEWS), m2.problems)
        self.assertGreaterEqual(m2.max_seq(), seen, "the resync is not behind what the client had")
        self.assertEqual(self.ws_replica(), other)
        self.ingest(parts[1])
        self.mirror_matches(m2, self.cenv["SERVE_%d" % other])
        self.assertEqual(m2.problems, [])
        self.sh("start", self.dir, "serve-%d" % victim)
        seq2 = self.converged()

        # 4. kill -9 the stream's leader node while ingesting: nothing acknowledged is lost or doubled
        leader = self.stream_leader()
        self.assertIsNotNone(leader, "no stream leader reported")
        node = "nats-" + leader.rsplit("n", 1)[1]
        done = {}
        th = threading.Thread(target=lambda: done.setdefault("res", self.ingest(parts[2])))
        th.start()
        time.sleep(0.05)
        self.sh("kill", self.dir, node)
        th.join(fx.tmo(90))
        self.assertIn("res", done, "the ingest during the node loss did not finish")
        self.sh("start", self.dir, node)
        seq3 = self.converged(90)
        with open(os.path.join(self.dir, "secrets", "nats.password")) as f:
            nc = fx.NatsClient(self.cenv["NATS_URLS"].split(",")[0], user="tower", password=f.read().strip())
        self.addCleanup(nc.close)
        # The restarted node may still be catching up with the cluster (a JetStream API request through it can
        # go unanswered meanwhile): ask again until the stream's contents can be read.
        deadline = time.monotonic() + fx.tmo(60)
        while True:
            try:
                ids = [eid for _, eid in fx.stream_event_ids(nc) if eid]
                break
            except fx.NatsError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        want = set(fx.trace_event_ids(trace))
        missing = want - set(ids)
        # What the ingest acknowledged is in the stream once. (The tower's own events, raised by both replicas'
        # SLA engines, may be there twice after the node loss, which costs the bus its duplicate window: the
        # projectors apply them once, and none of them is a dead letter, checked below.)
        mine = [eid for eid in ids if eid in want]
        doubled = len(mine) - len(set(mine))
        self.assertEqual((len(missing), doubled), (0, 0), "lost %s" % sorted(missing)[:5])
        for r in (1, 2):
            self.assertEqual(self.view_keys(self.cenv["SERVE_%d" % r], "dead_letters"), set(),
                             "replica %d has dead letters" % r)
        self.mirror_matches(m2, self.cenv["SERVE_%d" % other])
        fx.log("FIGURES test_cluster: %d events, replicas at %d, %d, %d; client resynced from %d to %d on replica %d; "
               "leader %s killed mid-ingest: 0 lost, 0 doubled" % (len(want), seq1, seq2, seq3, seen, m2.max_seq(),
                                                                   other, leader))

        # 5. the SLA engines' alerts reach Alertmanager (when it is installed)
        am = self.cenv.get("ALERTMANAGER")
        if am:
            deadline = time.monotonic() + fx.tmo(30)
            alerts = []
            while time.monotonic() < deadline and not alerts:
                st, out = self.http(am + "/api/v2/alerts")
                alerts = [a for a in json.loads(out) if a["labels"].get("alertname", "").startswith("Tower")] \
                    if st == 200 else []
                time.sleep(0.3)
            self.assertTrue(alerts, "no tower alert in Alertmanager")


def main():
    return fx.main(sys.modules[__name__])


if __name__ == "__main__":
    sys.exit(main())
