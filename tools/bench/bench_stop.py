#!/usr/bin/env python3
"""How long `towerd serve` takes from SIGTERM to its exit, against a raw baseline in the same run.

Usage: python3 tools/bench/bench_stop.py TOWERD [--runs N] [--threads N]

Folds a small generated trace into a temp store, then N times: starts `towerd serve --no-nats` on a
free loopback port, waits until it answers /healthz, waits a random 0-2.5 s (civetweb's listening
poll is 2 s long: where a stop falls in it matters), sends SIGTERM and times until the process has
exited (waitpid). Raw baseline, the same N times: `sleep 60` started, waited for the same pause,
SIGTERM, waitpid (the cost of the signal and the wait alone). Prints p50, p90 and max of both."""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port, proc, limit=20.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("towerd serve exited early (%d)" % proc.returncode)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("towerd serve did not answer /healthz in %.0f s" % limit)


def timed_stop(proc):
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait()
    return time.monotonic() - t0, rc


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) > 1 else 2
    towerd = os.path.abspath(argv[1])
    runs, threads = 20, 32
    args = argv[2:]
    while args:
        if args[0] == "--runs" and len(args) > 1:
            runs = int(args[1])
        elif args[0] == "--threads" and len(args) > 1:
            threads = int(args[1])
        else:
            print("bench_stop: unknown argument %r (see --help)" % args[0], file=sys.stderr)
            return 2
        args = args[2:]
    rng = random.Random(7)
    root = tempfile.mkdtemp(prefix="tower-bench-stop-")
    try:
        trace, data = os.path.join(root, "trace.ndjson"), os.path.join(root, "store")
        subprocess.run([towerd, "gen", "--orders", "200", "-o", trace], check=True, stderr=subprocess.DEVNULL)
        subprocess.run([towerd, "fold", "--data", data, trace], check=True, stderr=subprocess.DEVNULL)
        pauses = [rng.uniform(0, 2.5) for _ in range(runs)]
        serve, raw = [], []
        for pause in pauses:
            port = free_port()
            p = subprocess.Popen([towerd, "serve", "--data", data, "--http", "127.0.0.1:%d" % port, "--no-nats",
                                  "--threads", str(threads)], stderr=subprocess.DEVNULL, cwd=root)
            wait_healthy(port, p)
            time.sleep(pause)
            secs, rc = timed_stop(p)
            if rc != 0:
                raise SystemExit("towerd serve exited %d on SIGTERM" % rc)
            serve.append(secs)
            p = subprocess.Popen(["sleep", "60"])
            time.sleep(pause)
            raw.append(timed_stop(p)[0])
        for name, xs in (("raw: sleep, SIGTERM -> exit", raw), ("towerd serve, SIGTERM -> exit", serve)):
            print("%-32s runs %d  p50 %7.1f ms  p90 %7.1f ms  max %7.1f ms"
                  % (name, len(xs), pct(xs, 0.5) * 1e3, pct(xs, 0.9) * 1e3, max(xs) * 1e3))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
