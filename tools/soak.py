#!/usr/bin/env python3
"""Load and soak run of the whole tower: `towerd up` at a high simulator rate plus many live-stream
websocket clients (a tenth of them reading slowly), for N minutes, sampled every 5 s.

usage: tools/soak.py [--towerd PATH] [--minutes 5] [--clients 200] [--slow-fraction 0.1]
                     [--rate 6000] [--warp 600] [--data DIR] [--json FILE] [--keep]

Samples: the RSS of towerd and of its nats-server, the projector's lag and applied sequence (from
/api/v1/summary), the messages and resyncs each client received. At the end it says whether
  - memory stayed flat: towerd's mean anonymous RSS (heap; its total RSS also counts the LMDB pages it
    has mapped, which grow with the store) over the last third of the run is within 20 % (or 16 MiB)
    of its mean over the first third, and the same for nats-server's RSS;
  - the lag stayed bounded: below 10,000 events throughout (the default --ready-max-lag), and back
    under 2,000 at the end;
  - no client starved: every fast client received deltas in every whole minute of the run;
  - no error was logged (lines of towerd's log at level error, and nats-server's [ERR] lines);
and exits 0 when all four hold, 1 otherwise. Python 3 standard library only (it reuses the websocket
client of tests/integration/natsfx.py).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import natsfx as fx  # noqa: E402

VIEWS = ["awaiting_release", "blocked", "pending_route", "missing_pod", "posting_failed", "orphans",
         "anomalies", "dead_letters", "sla_breaches"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rss_kib(pid, field="VmRSS"):
    """VmRSS counts the store's pages that LMDB's map has touched (file-backed, they grow with the
    store and the kernel may drop them); RssAnon is the heap and stacks: that is the one that must
    stay flat."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            comm = st[st.index("(") + 1:st.rindex(")")]
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == pid:
            out.append((int(d), comm))
    return out


def get_json(url, timeout=5):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as r:
        return json.loads(r.read())


class Client(threading.Thread):
    """One live-stream client: subscribes to every view and counts what it receives per minute."""

    def __init__(self, idx, port, slow, t0, stop):
        super().__init__(daemon=True)
        self.idx, self.port, self.slow, self.t0, self.stop = idx, port, slow, t0, stop
        self.messages = 0
        self.deltas = 0
        self.resyncs = 0
        self.reconnects = 0
        self.per_minute = {}   # minute -> deltas
        self.errors = []

    def connect(self):
        ws = fx.WsClient(self.port, rcvbuf=4096 if self.slow else None, timeout=10)
        ws.send({"type": "subscribe"})
        return ws

    def run(self):
        ws = None
        while not self.stop.is_set():
            try:
                if ws is None:
                    ws = self.connect()
                op, data = ws.recv_frame(timeout=2)
                if op != 1:
                    continue
                n = data.count(b"\n") + 1
                d = data.count(b'"type":"delta"')
                self.messages += n
                self.deltas += d
                self.resyncs += data.count(b'"type":"resync"')
                if d:
                    m = int((time.monotonic() - self.t0) // 60)
                    self.per_minute[m] = self.per_minute.get(m, 0) + d
                if self.slow:
                    time.sleep(0.5)  # a slow reader: one frame every half second, a 4 KiB receive buffer
            except socket.timeout:
                continue
            except (fx.WsClosed, OSError, ValueError) as e:
                if self.stop.is_set():
                    break
                self.errors.append(repr(e)[:200])
                self.reconnects += 1
                try:
                    if ws is not None:
                        ws.sock.close()
                except OSError:
                    pass
                ws = None
                time.sleep(0.5)
        if ws is not None:
            ws.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--towerd", default=None)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--slow-fraction", type=float, default=0.1)
    ap.add_argument("--rate", default="6000", help="orders per real minute (towerd up --rate)")
    ap.add_argument("--warp", default="600")
    ap.add_argument("--data", default=None)
    ap.add_argument("--json", default=None, help="write the samples and the verdict here")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()

    towerd = os.path.abspath(a.towerd) if a.towerd else None
    if not towerd:
        for cand in ("build/services/towerd/towerd", "build-rel/services/towerd/towerd"):
            if os.access(os.path.join(ROOT, cand), os.X_OK):
                towerd = os.path.join(ROOT, cand)
                break
    if not towerd or not os.access(towerd, os.X_OK):
        print("soak: no towerd binary (give --towerd PATH)", file=sys.stderr)
        return 2
    data = a.data or tempfile.mkdtemp(prefix="tower-soak-")
    port = free_port()
    log_path = os.path.join(data, "up.log")
    os.makedirs(data, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOWER_")}
    env["TOWER_LOG"] = "info"
    argv = [towerd, "up", "--data", data, "--http", "127.0.0.1:%d" % port, "--rate", a.rate, "--warp", a.warp,
            "--web", os.path.join(ROOT, "web"), "--ws-max-clients", str(max(256, a.clients + 20)),
            "--progress", "60s"]
    print("soak: %s" % " ".join(argv), flush=True)
    logf = open(log_path, "ab")
    up = fx.spawn(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=data)
    logf.close()
    base = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + 60
    while True:
        try:
            get_json(base + "/api/v1/summary")
            break
        except Exception:
            if up.poll() is not None or time.monotonic() > deadline:
                print("soak: towerd up did not come up (exit %s)\n%s" % (up.poll(), fx.tail(log_path)), file=sys.stderr)
                return 1
            time.sleep(0.2)
    nats_pid = None
    for _ in range(50):
        kids = [p for p, comm in children(up.pid) if comm.startswith("nats-server")]
        if kids:
            nats_pid = kids[0]
            break
        time.sleep(0.1)

    stop = threading.Event()
    t0 = time.monotonic()
    n_slow = int(round(a.clients * a.slow_fraction))
    clients = [Client(i, port, i < n_slow, t0, stop) for i in range(a.clients)]
    for c in clients:
        c.start()
        time.sleep(0.005)
    samples = []
    end = t0 + a.minutes * 60
    try:
        while time.monotonic() < end and up.poll() is None:
            time.sleep(max(0.0, min(5.0, end - time.monotonic())))
            s = {"t": round(time.monotonic() - t0, 1), "towerd_rss_kib": rss_kib(up.pid),
                 "towerd_anon_kib": rss_kib(up.pid, "RssAnon"),
                 "nats_rss_kib": rss_kib(nats_pid) if nats_pid else None}
            try:
                summ = get_json(base + "/api/v1/summary")
                s.update(lag=summ.get("lag"), applied=summ.get("appliedSeq"), events=summ.get("events"))
            except Exception as e:  # noqa: BLE001
                s["summary_error"] = repr(e)[:200]
            s["messages_fast"] = sum(c.messages for c in clients if not c.slow)
            s["messages_slow"] = sum(c.messages for c in clients if c.slow)
            s["resyncs"] = sum(c.resyncs for c in clients)
            samples.append(s)
            print("soak: t=%5.0fs towerd %s MiB (anon %s), nats-server %s MiB, lag %s, applied %s, fast msgs %d, slow msgs %d, "
                  "resyncs %d" % (s["t"], (s["towerd_rss_kib"] or 0) // 1024, (s["towerd_anon_kib"] or 0) // 1024,
                                  (s["nats_rss_kib"] or 0) // 1024,
                                  s.get("lag"), s.get("applied"), s["messages_fast"], s["messages_slow"],
                                  s["resyncs"]), flush=True)
    finally:
        stop.set()
        for c in clients:
            c.join(5)
        died = up.poll()
        if died is None:
            up.send_signal(signal.SIGTERM)
            try:
                rc = up.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.kill()
                rc = "killed after 60 s"
        else:
            rc = "died during the run: %s" % died
        fx.reap(up)

    secs = samples[-1]["t"] if samples else 0
    third = max(1, len(samples) // 3)

    def mean(key, part):
        v = [s[key] for s in part if s.get(key)]
        return sum(v) / len(v) if v else 0

    def flat(key):
        first, last = mean(key, samples[:third]), mean(key, samples[-third:])
        return first, last, last <= first * 1.2 or last - first <= 16 * 1024

    t_first, t_last, t_flat = flat("towerd_anon_kib")
    r_first, r_last, _ = flat("towerd_rss_kib")
    n_first, n_last, n_flat = flat("nats_rss_kib")
    lags = [s["lag"] for s in samples if isinstance(s.get("lag"), int)]
    lag_ok = bool(lags) and max(lags) < 10000 and lags[-1] < 2000
    minutes = int(secs // 60)
    fast = [c for c in clients if not c.slow]
    starved = [c.idx for c in fast if any(c.per_minute.get(m, 0) == 0 for m in range(minutes))]
    with open(log_path, errors="replace") as f:
        up_log = f.read()
    errors = [ln for ln in up_log.splitlines() if " error " in ln or "[ERR]" in ln]
    nats_log = os.path.join(data, "nats", "nats-server.log")
    if os.path.exists(nats_log):
        with open(nats_log, errors="replace") as f:
            errors += [ln for ln in f.read().splitlines() if "[ERR]" in ln]
    applied = [s["applied"] for s in samples if isinstance(s.get("applied"), int)]
    rate = (applied[-1] - applied[0]) / (samples[-1]["t"] - samples[0]["t"]) if len(applied) > 1 else 0
    verdict = {
        "seconds": secs, "clients": a.clients, "slow_clients": n_slow, "rate_orders_per_min": a.rate,
        "warp": a.warp, "events_applied": applied[-1] if applied else 0, "events_per_second": round(rate),
        "towerd_anon_mib_first_third": round(t_first / 1024, 1), "towerd_anon_mib_last_third": round(t_last / 1024, 1),
        "towerd_rss_mib_first_third": round(r_first / 1024, 1), "towerd_rss_mib_last_third": round(r_last / 1024, 1),
        "towerd_rss_mib_max": round(max((s["towerd_rss_kib"] or 0) for s in samples) / 1024, 1) if samples else 0,
        "nats_rss_mib_first_third": round(n_first / 1024, 1), "nats_rss_mib_last_third": round(n_last / 1024, 1),
        "memory_flat": t_flat and n_flat,
        "lag_max": max(lags) if lags else None, "lag_end": lags[-1] if lags else None, "lag_bounded": lag_ok,
        "whole_minutes": minutes, "fast_clients_starved": starved,
        "fast_deltas_min_per_client": min((c.deltas for c in fast), default=0),
        "fast_deltas_max_per_client": max((c.deltas for c in fast), default=0),
        "fast_resyncs": sum(c.resyncs for c in fast), "slow_resyncs": sum(c.resyncs for c in clients if c.slow),
        "slow_messages": sum(c.messages for c in clients if c.slow),
        "client_reconnects": sum(c.reconnects for c in clients),
        "client_errors": [e for c in clients for e in c.errors][:5],
        "errors_logged": len(errors), "error_lines": errors[:5], "towerd_exit": rc,
    }
    ok = verdict["memory_flat"] and lag_ok and not starved and not errors and rc == 0 and minutes >= 1 \
        or (minutes == 0 and verdict["memory_flat"] and lag_ok and not errors and rc == 0)
    verdict["ok"] = bool(ok)
    print(json.dumps(verdict, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"verdict": verdict, "samples": samples}, f, indent=1)
    if not a.keep and not a.data:
        shutil.rmtree(data, ignore_errors=True)
    else:
        print("soak: kept %s" % data)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
