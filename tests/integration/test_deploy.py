#!/usr/bin/env python3
"""The systemd units and the example configuration of deploy/.

usage: test_deploy.py TOWERD

- `systemd-analyze verify` accepts every unit of deploy/systemd and the target with no warning at
  all (an unknown key, a misplaced one, a bad value), with ExecStart pointed at the built towerd;
- `systemd-analyze security --offline` rates every service's exposure at most EXPOSURE, and each
  keeps the hardening docs/deploy.md promises (dedicated user, read-only system, state directory,
  no new privileges, private /tmp, a restart policy that stops on usage errors);
- every role starts from its unit's ExecStart arguments with deploy/towerd.conf (so every key of it
  is one that role accepts), the paths moved to a temporary directory by TOWER_* variables (which
  beat the file), against a real nats-server; each reaches its running state and exits 0 on SIGTERM,
  which is how systemd stops it.

Exit 77 (skipped) only when systemd-analyze is not installed: tools/setup.sh installs it (systemd).
Python 3 standard library only.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natsfx as fx  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
UNITS = os.path.join(SRC, "deploy", "systemd")
CONF = os.path.join(SRC, "deploy", "towerd.conf")
ROLES = ("projector", "serve", "sla", "relay")
EXPOSURE = 25  # systemd-analyze's threshold is in tenths: 25 is an exposure of 2.5 (of 10); the units score 1.5
REQUIRED = ("User=tower", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes",
            "StateDirectory=tower", "Restart=on-failure", "RestartPreventExitStatus=2", "CapabilityBoundingSet=",
            "PartOf=towerd.target", "WantedBy=towerd.target", "ExecStart=/usr/local/bin/towerd ")
# What each role logs once it runs (after connecting to NATS and opening what it needs).
READY = {"projector": "consuming TOWER_EVENTS from sequence", "serve": "listening on http://",
         "sla": "sla: store ", "relay": "relaying to 1 destination"}

failures = []


def check(cond, what):
    first, _, rest = what.partition("\n")
    print(("ok   " if cond else "FAIL ") + first + ("" if cond or not rest else "\n" + rest), flush=True)
    if not cond:
        failures.append(what)


def units_copy(towerd, tmp):
    """The units with ExecStart on the built binary (verify checks that the command exists)."""
    out = []
    for name in sorted(os.listdir(UNITS)):
        if not name.endswith((".service", ".target")):
            continue
        with open(os.path.join(UNITS, name)) as f:
            text = f.read()
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text.replace("/usr/local/bin/towerd", towerd))
        out.append(path)
    return out


def test_verify(analyze, units):
    r = subprocess.run([analyze, "verify"] + units, capture_output=True, text=True, timeout=120)
    check(r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(),
          "systemd-analyze verify: no error, no warning\n%s%s" % (r.stdout, r.stderr))


def test_security(analyze, units):
    for u in units:
        if not u.endswith(".service"):
            continue
        r = subprocess.run([analyze, "security", "--offline=true", "--no-pager", "--threshold=%d" % EXPOSURE, u],
                           capture_output=True, text=True, timeout=120)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        check(r.returncode == 0 and m is not None,
              "%s: exposure %s <= %.1f\n%s" % (os.path.basename(u), m.group(1) if m else "?", EXPOSURE / 10, r.stderr))


def test_hardening():
    names = set(os.listdir(UNITS))
    for role in ROLES:
        check("towerd-%s.service" % role in names, "a unit for towerd %s" % role)
        with open(os.path.join(UNITS, "towerd-%s.service" % role)) as f:
            text = f.read()
        lines = set(l.strip() for l in text.splitlines())
        missing = [k for k in REQUIRED if not any(l.startswith(k) for l in lines)]
        check(not missing, "towerd-%s.service has %s" % (role, ", ".join(REQUIRED) if not missing else missing))
        exec_line = [l for l in lines if l.startswith("ExecStart=")]
        check(exec_line == ["ExecStart=/usr/local/bin/towerd %s --config /etc/tower/towerd.conf" % role],
              "towerd-%s.service runs towerd %s --config /etc/tower/towerd.conf: %s" % (role, role, exec_line))
    with open(os.path.join(UNITS, "towerd.target")) as f:
        target = f.read()
    for role in ("projector", "serve", "sla"):
        check("towerd-%s.service" % role in target, "towerd.target wants towerd-%s" % role)


def wait_log(path, marker, proc, timeout):
    deadline = time.monotonic() + fx.tmo(timeout)
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            if marker in f.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def test_roles(towerd, tmp):
    nats = fx.NatsServer(root=os.path.join(tmp, "nats"))
    nats.start()
    relay_file = os.path.join(tmp, "relay.ini")
    with open(relay_file, "w") as f:
        f.write("[destination hook]\nkind = webhook\nurl = http://127.0.0.1:9/hook\nevents = *\n")
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("TOWER_"))
    env.update({"TOWER_NATS_URL": nats.url, "TOWER_DATA": os.path.join(tmp, "data"),
                "TOWER_HTTP": "127.0.0.1:%d" % fx.free_port(), "TOWER_WEB": os.path.join(SRC, "web"),
                "TOWER_RELAY": relay_file, "TOWER_RELAY_STATE": os.path.join(tmp, "relay-state")})
    try:
        for role in ROLES:  # the start order of docs/deploy.md: the projector first
            log = os.path.join(tmp, role + ".log")
            with open(log, "wb") as lf:
                p = fx.spawn([towerd, role, "--config", CONF], stdout=lf, stderr=subprocess.STDOUT, env=env,
                             stdin=subprocess.DEVNULL)
            ready = wait_log(log, READY[role], p, 60)
            if role == "serve" and ready:
                with urllib.request.urlopen("http://%s/healthz" % env["TOWER_HTTP"], timeout=fx.tmo(10)) as r:
                    ready = r.status == 200
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=fx.tmo(30))
            except subprocess.TimeoutExpired:
                p.kill()
                rc = p.wait()
            fx.reap(p)
            check(ready and rc == 0, "towerd %s --config deploy/towerd.conf runs, and exits 0 on SIGTERM (rc %s)\n%s"
                  % (role, rc, fx.tail(log)))
    finally:
        nats.close()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    towerd = os.path.abspath(sys.argv[1])
    fx.install_signal_cleanup()
    tmp = tempfile.mkdtemp(prefix="tower-deploy-")
    try:
        test_hardening()
        test_roles(towerd, tmp)
        analyze = shutil.which("systemd-analyze")
        if not analyze:
            print("SKIP: systemd-analyze is not installed (Debian package systemd; tools/setup.sh installs it)")
            sys.exit(77 if not failures else 1)
        units = units_copy(towerd, tmp)
        test_verify(analyze, units)
        test_security(analyze, units)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("\n%d failure(s)" % len(failures))
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
