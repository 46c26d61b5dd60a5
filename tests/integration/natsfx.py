"""Integration-test harness: a private nats-server, a tiny raw NATS client, and towerd helpers.

Python 3 standard library only.

- NatsServer: a JetStream-enabled nats-server on free loopback ports, with its own store dir and a
  generated config file (small JetStream limits, a unique server_name so that we can tell that the
  server answering is ours); start / stop (SIGTERM) / kill9 / restart on the same port and store.
- NatsClient: the NATS text protocol over a socket (INFO, CONNECT, PING/PONG, PUB/HPUB, SUB/UNSUB,
  MSG/HMSG) with request/reply over one muxed inbox, JetStream publish (PubAck) and JetStream API calls.
- Towerd: runs towerd commands with a timeout; Projector: the projector as a child process
  (start / stop / kill -9); wait_caught_up(): status --json shows lag 0 and appliedSeq == the
  stream's last sequence.
- Every child process is registered and killed at exit, and gets PR_SET_PDEATHSIG(SIGKILL) so that
  none survives the test runner even if the runner itself is killed.
"""

import atexit
import base64
import ctypes
import json
import os
import queue
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

# ---------------------------------------------------------------------------------------------
# knobs

SCALE = float(os.environ.get("TOWER_IT_SCALE", "1.0"))
# Multiplies every timeout (an ASan build is 3-5x slower). Defaults to generous values anyway.
SLOW = float(os.environ.get("TOWER_IT_SLOW", "1.0"))
KEEP = os.environ.get("TOWER_IT_KEEP", "") not in ("", "0")
VERBOSE = os.environ.get("TOWER_IT_VERBOSE", "") not in ("", "0")

_T0 = time.monotonic()


def log(*args):
    print("[%7.2fs]" % (time.monotonic() - _T0), *args, file=sys.stderr, flush=True)


def tmo(seconds):
    """A timeout, scaled for slow builds."""
    return seconds * SLOW


def scaled(n, minimum=1):
    return max(minimum, int(round(n * SCALE)))


# ---------------------------------------------------------------------------------------------
# child processes: always cleaned up

_children = set()
_children_lock = threading.Lock()
_tempdirs = []

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _pdeathsig():
    # PR_SET_PDEATHSIG = 1: the child gets SIGKILL when the thread that forked it dies.
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def spawn(argv, **kw):
    """Popen registered for cleanup (killed at exit) and tied to our life (PDEATHSIG)."""
    kw.setdefault("preexec_fn", _pdeathsig)
    p = subprocess.Popen(argv, **kw)
    with _children_lock:
        _children.add(p)
    return p


def reap(p):
    with _children_lock:
        _children.discard(p)


def kill_all_children():
    with _children_lock:
        procs = list(_children)
        _children.clear()
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
        try:
            p.wait(timeout=10)
        except Exception:
            pass


def make_tempdir(prefix="tower-it-"):
    d = tempfile.mkdtemp(prefix=prefix)
    _tempdirs.append(d)
    return d


def remove_tempdir(d):
    if KEEP:
        log("keeping", d)
        return
    shutil.rmtree(d, ignore_errors=True)
    if d in _tempdirs:
        _tempdirs.remove(d)


def _cleanup_at_exit():
    kill_all_children()
    for d in list(_tempdirs):
        remove_tempdir(d)


atexit.register(_cleanup_at_exit)


def _on_term(sig, frame):
    _cleanup_at_exit()
    sys.exit(128 + sig)


def install_signal_cleanup():
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_term)


def thread_stacks(pid, timeout=30):
    """Every thread's backtrace of a live process (gdb, when installed), for the report of a hang."""
    gdb = shutil.which("gdb")
    if not gdb:
        return "(no gdb to show them)"
    try:
        r = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx", "-ex", "thread apply all bt 30"],
                           capture_output=True, text=True, timeout=timeout)
        return "\n".join(l for l in r.stdout.splitlines() if l.startswith(("Thread", "#"))) or r.stderr[-2000:]
    except (OSError, subprocess.SubprocessError) as e:
        return "(gdb failed: %s)" % e


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)


# ---------------------------------------------------------------------------------------------
# nats-server

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _rand(n=8):
    return "".join(random.SystemRandom().choice(string.ascii_lowercase + string.digits) for _ in range(n))


class NatsServer:
    """A private JetStream nats-server on loopback. Use as a context manager or call close()."""

    def __init__(self, root=None, binary=None, extra_conf=""):
        self.binary = binary or shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.extra_conf = extra_conf  # more configuration (authorization, tls), appended as is
        self.root = root or make_tempdir("tower-it-nats-")
        self.store_dir = os.path.join(self.root, "store")
        os.makedirs(self.store_dir, exist_ok=True)
        self.name = "tower-it-" + _rand()
        self.port = None
        self.mport = None
        self.proc = None
        self.starts = 0
        self.log_path = os.path.join(self.root, "nats-server.log")

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def _write_config(self):
        self.conf = os.path.join(self.root, "nats.conf")
        with open(self.conf, "w") as f:
            f.write('server_name: "%s"\n' % self.name)
            f.write("listen: 127.0.0.1:%d\n" % self.port)
            f.write("http: 127.0.0.1:%d\n" % self.mport)
            # The store dir is given by -sd: nats-server 2.9 refuses it in both places ("Duplicate
            # 'store_dir' configuration").
            f.write("jetstream {\n  max_memory_store: 256MB\n  max_file_store: 2GB\n}\n")
            f.write(self.extra_conf)

    def start(self, timeout=None):
        """Start; the first start picks free ports (retrying on a port race), restarts reuse them."""
        first = self.starts == 0
        last = None
        for _ in range(5 if first else 1):
            if first:
                self.port = free_port()
                self.mport = free_port()
                while self.mport == self.port:
                    self.mport = free_port()
            self._write_config()
            logf = open(self.log_path, "ab")
            self.proc = spawn([self.binary, "-c", self.conf, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                               "-m", str(self.mport), "-sd", self.store_dir],
                              stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            logf.close()
            try:
                self.wait_ready(timeout or tmo(30))
                self.starts += 1
                return self
            except Exception as e:
                last = e
                self._terminate(signal.SIGKILL)
        raise RuntimeError("nats-server did not start on port %s: %s\n--- log:\n%s"
                           % (self.port, last, tail(self.log_path)))

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        why = "not tried"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nats-server exited with %s" % self.proc.returncode)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(2)
                    line = b""
                    while not line.endswith(b"\r\n"):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        line += chunk
                if not line.startswith(b"INFO "):
                    why = "no INFO"
                    raise OSError(why)
                info = json.loads(line[5:].strip())
                if info.get("server_name") != self.name:
                    # Someone else's server on this port: never talk to it.
                    raise RuntimeError("port %d is answered by another server (%s), not ours (%s)"
                                       % (self.port, info.get("server_name"), self.name))
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.mport, timeout=2) as r:
                    body = json.loads(r.read().decode())
                if body.get("status") == "ok":
                    return
                why = "healthz says %s" % body
            except RuntimeError:
                raise
            except Exception as e:  # not up yet
                why = repr(e)
            time.sleep(0.05)
        raise RuntimeError("nats-server not ready after %.0fs: %s" % (timeout, why))

    def _terminate(self, sig, timeout=15):
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except OSError:
                pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        reap(p)
        self.proc = None
        return p.returncode

    def stop(self):
        """SIGTERM, then wait (SIGKILL after 15 s)."""
        return self._terminate(signal.SIGTERM)

    def kill9(self):
        return self._terminate(signal.SIGKILL)

    def restart(self, kill=False):
        (self.kill9 if kill else self.stop)()
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        self.kill9()
        remove_tempdir(self.root)

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.close()


# ---------------------------------------------------------------------------------------------
# a tiny NATS client

class NatsError(Exception):
    pass


class NoResponders(NatsError):
    pass


class Msg:
    __slots__ = ("subject", "reply", "headers", "data", "status")

    def __init__(self, subject, reply, headers, data, status):
        self.subject, self.reply, self.headers, self.data, self.status = subject, reply, headers, data, status

    def json(self):
        return json.loads(self.data.decode("utf-8"))

    def __repr__(self):
        return "Msg(%r, %r, %r, %r)" % (self.subject, self.headers, self.data[:80], self.status)


def _encode_headers(headers):
    out = "NATS/1.0\r\n"
    for k, v in (headers or {}).items():
        out += "%s: %s\r\n" % (k, v)
    return (out + "\r\n").encode()


def _decode_headers(raw):
    text = raw.decode("utf-8", "replace")
    lines = text.split("\r\n")
    status = None
    first = lines[0].split(None, 2)
    if len(first) >= 2:
        status = int(first[1])
    h = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        h[k.strip()] = v.strip()
    return h, status


class Subscription:
    def __init__(self, client, sid, subject):
        self.client, self.sid, self.subject = client, sid, subject
        self.q = queue.Queue()

    def next(self, timeout):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.q.get_nowait())
            except queue.Empty:
                return out

    def unsubscribe(self):
        self.client._unsub(self)


class NatsClient:
    """The NATS text protocol over one socket, with a reader thread."""

    def __init__(self, url_or_port, name="tower-it", timeout=10, user=None, password=None):
        port = url_or_port if isinstance(url_or_port, int) else int(str(url_or_port).rsplit(":", 1)[1])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.settimeout(None)
        self.buf = b""
        self.wlock = threading.Lock()
        self.subs = {}
        self.next_sid = 1
        self.pongs = queue.Queue()
        self.errors = []
        self.closed = False
        self.inbox_prefix = "_INBOX.it" + _rand(12)
        self.pending = {}
        self.plock = threading.Lock()
        line = self._read_line_sync()
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line[:100])
        self.info = json.loads(line[5:])
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "name": name, "lang": "python-it", "version": "0.1", "protocol": 1}
        if user is not None:
            connect.update(user=user, **{"pass": password})
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        line = self._read_line_sync()
        if line.startswith(b"-ERR"):
            raise NatsError(line.decode())
        if line != b"PONG":
            raise NatsError("expected PONG, got %r" % line)
        self.reader = threading.Thread(target=self._read_loop, daemon=True)
        self.reader.start()
        self.inbox_sub = self._sub(self.inbox_prefix + ".*", self._on_reply)

    # -- low level
    def _read_line_sync(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise NatsError("connection closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _send(self, data):
        with self.wlock:
            self.sock.sendall(data)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise NatsError("connection closed")
            self.buf += chunk

    def _read_loop(self):
        try:
            while not self.closed:
                line = self._read_line_sync()
                if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                    parts = line.decode().split()
                    hmsg = parts[0] == "HMSG"
                    subject, sid = parts[1], int(parts[2])
                    if hmsg:
                        reply = parts[3] if len(parts) == 6 else None
                        hlen, total = int(parts[-2]), int(parts[-1])
                    else:
                        reply = parts[3] if len(parts) == 5 else None
                        hlen, total = 0, int(parts[-1])
                    self._need(total + 2)
                    payload = self.buf[:total]
                    self.buf = self.buf[total + 2:]
                    headers, status = _decode_headers(payload[:hlen]) if hmsg else ({}, None)
                    m = Msg(subject, reply, headers, payload[hlen:], status)
                    sub = self.subs.get(sid)
                    if sub is not None:
                        if callable(sub):
                            sub(m)
                        else:
                            sub.q.put(m)
                elif line == b"PING":
                    self._send(b"PONG\r\n")
                elif line == b"PONG":
                    self.pongs.put(True)
                elif line.startswith(b"-ERR"):
                    self.errors.append(line.decode())
                    if VERBOSE:
                        log("nats client:", line.decode())
                elif line.startswith(b"INFO ") or line == b"+OK":
                    pass
        except Exception as e:  # socket closed
            if not self.closed:
                self.errors.append("reader: %r" % e)
            self.closed = True

    def _sub(self, subject, target):
        sid = self.next_sid
        self.next_sid += 1
        self.subs[sid] = target
        self._send(("SUB %s %d\r\n" % (subject, sid)).encode())
        return sid

    def _unsub(self, sub):
        self.subs.pop(sub.sid, None)
        self._send(("UNSUB %d\r\n" % sub.sid).encode())

    def _on_reply(self, m):
        with self.plock:
            q = self.pending.pop(m.subject, None)
        if q is not None:
            q.put(m)

    # -- API
    def flush(self, timeout=10):
        self._send(b"PING\r\n")
        try:
            self.pongs.get(timeout=timeout)
        except queue.Empty:
            raise NatsError("no PONG within %ss" % timeout)

    def subscribe(self, subject):
        sid = self.next_sid
        sub = Subscription(self, sid, subject)
        self._sub(subject, sub)
        return sub

    def publish(self, subject, data=b"", headers=None, reply=None):
        if isinstance(data, str):
            data = data.encode()
        r = (" " + reply) if reply else ""
        if headers:
            h = _encode_headers(headers)
            self._send(("HPUB %s%s %d %d\r\n" % (subject, r, len(h), len(h) + len(data))).encode() + h + data + b"\r\n")
        else:
            self._send(("PUB %s%s %d\r\n" % (subject, r, len(data))).encode() + data + b"\r\n")

    def request(self, subject, data=b"", headers=None, timeout=10):
        inbox = "%s.%s" % (self.inbox_prefix, _rand(10))
        q = queue.Queue()
        with self.plock:
            self.pending[inbox] = q
        self.publish(subject, data, headers, reply=inbox)
        try:
            m = q.get(timeout=timeout)
        except queue.Empty:
            with self.plock:
                self.pending.pop(inbox, None)
            raise NatsError("no reply to %s within %ss" % (subject, timeout))
        if m.status == 503:
            raise NoResponders("no responders on %s" % subject)
        return m

    # -- JetStream
    def js_api(self, what, body=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else b""
        return self.request("$JS.API." + what, data, timeout=timeout).json()

    def js_publish(self, subject, data, msg_id=None, timeout=10):
        """Publish to a stream and return the PubAck JSON ({"stream","seq"[,"duplicate"]} or {"error"})."""
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        return self.request(subject, data, headers=headers, timeout=timeout).json()

    def stream_info(self, name):
        """The STREAM.INFO reply, or None when the stream does not exist."""
        r = self.js_api("STREAM.INFO." + name)
        if "error" in r:
            if r["error"].get("code") == 404:
                return None
            raise NatsError("STREAM.INFO %s: %s" % (name, r["error"]))
        return r

    def stream_delete(self, name):
        r = self.js_api("STREAM.DELETE." + name)
        if "error" in r:
            raise NatsError("STREAM.DELETE %s: %s" % (name, r["error"]))
        return r.get("success", False)

    def stream_msg(self, name, seq):
        """One stored message: (subject, headers dict, data bytes)."""
        r = self.js_api("STREAM.MSG.GET." + name, {"seq": seq})
        if "error" in r:
            raise NatsError("STREAM.MSG.GET %s %d: %s" % (name, seq, r["error"]))
        m = r["message"]
        hdrs = {}
        if m.get("hdrs"):
            hdrs, _ = _decode_headers(base64.b64decode(m["hdrs"]))
        return m["subject"], hdrs, base64.b64decode(m.get("data", "") or "")

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ---------------------------------------------------------------------------------------------
# protobuf by hand (tower.v1.Event)

def pb_varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_key(field, wire):
    return pb_varint((field << 3) | wire)


def pb_uint(field, n):
    return pb_key(field, 0) + pb_varint(n)


def pb_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return pb_key(field, 2) + pb_varint(len(data)) + data


def pb_event(event_id=None, seconds=None, nanos=0, system="erp", order_id=None, approved_warehouse=None,
             payload=True):
    """tower.v1.Event: 1 event_id, 2 occurred_at {1 seconds, 2 nanos}, 3 source {1 system}, 4 order_id,
    21 order_approved {1 warehouse_id}."""
    out = b""
    if event_id is not None:
        out += pb_bytes(1, event_id)
    if seconds is not None:
        ts = pb_uint(1, seconds) + (pb_uint(2, nanos) if nanos else b"")
        out += pb_bytes(2, ts)
    if system is not None:
        out += pb_bytes(3, pb_bytes(1, system))
    if order_id is not None:
        out += pb_bytes(4, order_id)
    if payload:
        out += pb_bytes(21, pb_bytes(1, approved_warehouse) if approved_warehouse else b"")
    return out


def pb_field1(data):
    """The first field 1 (length-delimited) of a protobuf message: an Event's event_id, or None."""
    i = 0
    try:
        while i < len(data):
            key, i = _read_varint(data, i)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _read_varint(data, i)
            elif wire == 2:
                n, i = _read_varint(data, i)
                if field == 1:
                    return data[i:i + n].decode("utf-8", "replace")
                i += n
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            else:
                return None
    except IndexError:
        return None
    return None


def _read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def stream_event_ids(client, stream="TOWER_EVENTS"):
    """[(seq, eventId)] of every message the stream holds (diagnostics; one request per message)."""
    info = client.stream_info(stream)
    out = []
    if not info or not info["state"]["messages"]:
        return out
    for s in range(info["state"]["first_seq"], info["state"]["last_seq"] + 1):
        try:
            _, _, data = client.stream_msg(stream, s)
        except NatsError:
            continue  # deleted
        out.append((s, pb_field1(data)))
    return out


def trace_event_ids(path):
    """eventIds of the lines of an NDJSON file that parse as JSON objects."""
    ids = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if isinstance(e, dict) and isinstance(e.get("eventId"), str):
                ids.append(e["eventId"])
    return ids


# ---------------------------------------------------------------------------------------------
# towerd

# Environment a test sets for every towerd it starts (e.g. TOWER_STORE_MAP_MIB): Tower.env adds it after
# dropping the caller's TOWER_* variables. Use with_test_env() so that it is undone after the test.
TEST_ENV = {}


def with_test_env(test, **kv):
    """Set TEST_ENV's keys for the rest of a unittest test (undone by its cleanup)."""
    old = dict(TEST_ENV)
    TEST_ENV.update(kv)
    test.addCleanup(lambda: (TEST_ENV.clear(), TEST_ENV.update(old)))


class Result:
    def __init__(self, argv, rc, out, err, secs):
        self.argv, self.rc, self.out, self.err, self.secs = argv, rc, out, err, secs

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise AssertionError("%s printed no JSON (%s): stdout %r stderr %r"
                                 % (" ".join(self.argv), e, self.out[:500], self.err[-2000:]))

    def describe(self):
        return "`%s` exited %s\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(self.argv), self.rc, self.out[-3000:], self.err[-3000:])


class Towerd:
    def __init__(self, binary, server=None):
        self.binary = os.path.abspath(binary)
        self.server = server
        self.cwd = None  # where the commands run (a default ./tower-data lands there)

    def env(self, extra=None, drop_tower=True):
        e = dict(os.environ)
        if drop_tower:  # the caller's TOWER_* must not leak into the tests
            for k in list(e):
                if k.startswith("TOWER_") and not k.startswith("TOWER_IT_"):
                    del e[k]
        e.update(TEST_ENV)  # what the running test itself sets for every towerd it starts
        e.setdefault("TOWER_LOG", "info")
        if extra:
            e.update(extra)
        return e

    def run(self, *args, timeout=120, env=None, check=None, input=None):
        """Run `towerd ARGS`; check=an exit code or a tuple of accepted ones (AssertionError otherwise)."""
        argv = [self.binary] + [str(a) for a in args]
        t0 = time.monotonic()
        p = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL, env=self.env(env),
                  cwd=self.cwd)
        try:
            out, err = p.communicate(input=input.encode() if isinstance(input, str) else input,
                                     timeout=tmo(timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            reap(p)
            raise AssertionError("`%s` did not finish within %.0fs\n--- stderr:\n%s"
                                 % (" ".join(argv), tmo(timeout), err.decode("utf-8", "replace")[-3000:]))
        reap(p)
        r = Result(argv, p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                   time.monotonic() - t0)
        if VERBOSE:
            log("ran", " ".join(argv[1:]), "->", r.rc, "in %.2fs" % r.secs)
        if check is not None:
            ok = check if isinstance(check, (tuple, list, set)) else (check,)
            if r.rc not in ok:
                raise AssertionError("expected exit %s: %s" % (check, r.describe()))
        return r

    # -- the commands the tests use
    def gen(self, path, seed, orders, clean=False, conflicts=None):
        args = ["gen", "--seed", seed, "--orders", orders, "-o", path]
        if clean:
            args.append("--clean")
        if conflicts is not None:
            args += ["--conflicts", conflicts]
        self.run(*args, check=0)
        return path

    def publish(self, *files, url=None, check=(0, 3), timeout=180, extra=()):
        r = self.run("publish", "--nats", url or self.server.url, "--json", *extra, *files,
                     timeout=timeout, check=check)
        r.summary = r.json() if r.out.strip() else None
        return r

    def fold(self, data, *files):
        return self.run("fold", "--data", data, "--quiet", *files, check=0, timeout=300)

    def dump(self, data, stable=True):
        args = ["dump", "--data", data] + (["--stable"] if stable else [])
        return self.run(*args, check=0).json()

    def status(self, data, url=None, live=True):
        args = ["status", "--data", data, "--json"]
        args += ["--nats", url or self.server.url] if live else ["--no-nats"]
        return self.run(*args, check=0, timeout=60).json()

    def offline(self, root, *files):
        """Fold files offline into a fresh store; return (stable dump, status)."""
        d = os.path.join(root, "offline-%s" % _rand(6))
        self.fold(d, *files)
        return self.dump(d), self.status(d, live=False)


class Projector:
    """`towerd projector` as a child process, its stderr in a log file."""

    def __init__(self, towerd, data, url=None, args=(), env=None, log_path=None):
        self.t, self.data, self.url, self.args, self.extra_env = towerd, data, url, list(args), env
        self.log_path = log_path or (data.rstrip("/") + ".projector.log")
        self.proc = None
        self.starts = 0

    def start(self, args=None, env=None, with_flags=True):
        argv = [self.t.binary, "projector"]
        if with_flags:
            argv += ["--nats", self.url or self.t.server.url, "--data", self.data]
        argv += list(self.args if args is None else args)
        e = dict(self.extra_env or {})
        e.update(env or {})
        logf = open(self.log_path, "ab")
        logf.write(("\n==== start %d: %s\n" % (self.starts + 1, " ".join(argv[1:]))).encode())
        logf.flush()
        self.proc = spawn(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                          env=self.t.env(e), cwd=self.t.cwd)
        logf.close()
        self.starts += 1
        return self

    def wait_running(self, timeout=60):
        """Until this start of the projector consumes (its signal handlers are installed by then): a
        store already caught up by an earlier, killed, instance says nothing about this one."""
        marker = "==== start %d:" % self.starts
        deadline = time.monotonic() + tmo(timeout)
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
            if "consuming " in text[text.rfind(marker):]:
                return self
            if not self.alive():
                raise AssertionError("the projector exited while starting:\n" + self.log())
            time.sleep(0.05)
        raise AssertionError("the projector did not start consuming within %.0fs:\n%s" % (tmo(timeout), self.log()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _end(self, sig, timeout):
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            try:
                p.send_signal(sig)
            except OSError:
                pass
        try:
            p.wait(timeout=tmo(timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            reap(p)
            self.proc = None
            raise AssertionError("the projector did not stop within %.0fs of signal %d\n--- log:\n%s"
                                 % (tmo(timeout), sig, self.log()))
        reap(p)
        self.proc = None
        return p.returncode

    def stop(self, timeout=30):
        """SIGTERM and wait: returns the exit code (0 expected)."""
        return self._end(signal.SIGTERM, timeout)

    def kill9(self):
        return self._end(signal.SIGKILL, 10)

    def wait_exit(self, timeout):
        """Wait for the projector to exit on its own: its exit code, or None if still running."""
        try:
            rc = self.proc.wait(timeout=tmo(timeout))
        except subprocess.TimeoutExpired:
            return None
        reap(self.proc)
        self.proc = None
        return rc

    def log(self, n=60):
        return tail(self.log_path, n)

    def close(self):
        if self.proc is not None:
            try:
                self.kill9()
            except AssertionError:
                pass


def wait_stream(client, name="TOWER_EVENTS", timeout=30):
    """Until the stream exists (a projector creates it): tests that publish straight to JetStream wait for it,
    since a server can be ready before (under load: "no responders")."""
    deadline = time.monotonic() + tmo(timeout)
    while client.stream_info(name) is None:
        if time.monotonic() > deadline:
            raise AssertionError("the stream %s was not created within %.0fs" % (name, tmo(timeout)))
        time.sleep(0.05)


def wait_caught_up(towerd, data, client, projector=None, timeout=90, stream="TOWER_EVENTS"):
    """Wait until `towerd status --json` shows lag 0 and appliedSeq == the stream's last sequence
    (asked of JetStream directly). Returns (status, stream_info). Fails with a clear message."""
    deadline = time.monotonic() + tmo(timeout)
    st, last, why = None, None, ""
    while time.monotonic() < deadline:
        if projector is not None and projector.proc is not None and not projector.alive():
            raise AssertionError("the projector exited with %s while we waited for it to catch up\n--- log:\n%s"
                                 % (projector.proc.returncode, projector.log(200)))
        try:
            info = client.stream_info(stream)
            last = info["state"]["last_seq"] if info else None
            st = towerd.status(data)
            if (last is not None and st.get("streamLastSeqLive") and st["lag"] == 0
                    and st["appliedSeq"] == last and st["streamLastSeq"] == last):
                return st, info
            why = "status %s, stream last seq %s" % (st, last)
        except (NatsError, AssertionError, OSError) as e:
            why = "error: %s" % e
        time.sleep(0.2)
    raise AssertionError("the projector did not catch up within %.0fs: %s%s"
                         % (tmo(timeout), why, ("\n--- projector log:\n" + projector.log()) if projector else ""))


# ---------------------------------------------------------------------------------------------
# comparing dumps

def diff_views(got, want, skip=("dead_letters",)):
    """None when every view but `skip` is equal, else a readable description of the first differences."""
    problems = []
    if set(got) != set(want):
        problems.append("view names differ: got %s, want %s" % (sorted(got), sorted(want)))
    for view in sorted(set(got) | set(want)):
        if view in skip:
            continue
        a, b = got.get(view), want.get(view)
        if a == b:
            continue
        if not isinstance(a, list) or not isinstance(b, list):
            problems.append("%s: got %r, want %r" % (view, a, b))
            continue
        msg = "%s: got %d items, want %d" % (view, len(a), len(b))
        for i in range(max(len(a), len(b))):
            x = a[i] if i < len(a) else None
            y = b[i] if i < len(b) else None
            if x != y:
                msg += "; first difference at index %d: got %s, want %s" % (
                    i, json.dumps(x, sort_keys=True), json.dumps(y, sort_keys=True))
                break
        missing = [json.dumps(y, sort_keys=True) for y in b if y not in a][:3]
        extra = [json.dumps(x, sort_keys=True) for x in a if x not in b][:3]
        if missing:
            msg += "; missing e.g. %s" % missing
        if extra:
            msg += "; unexpected e.g. %s" % extra
        problems.append(msg)
    return "\n".join(problems) or None


def view_sizes(dump):
    return {k: len(v) for k, v in sorted(dump.items())}


def split_file(path, chunks, out_dir, prefix="chunk"):
    """Split an NDJSON file into `chunks` files of consecutive lines; returns their paths."""
    with open(path, "rb") as f:
        lines = f.read().splitlines(keepends=True)
    n = max(1, chunks)
    size = (len(lines) + n - 1) // n
    paths = []
    for i in range(0, len(lines), size):
        p = os.path.join(out_dir, "%s-%03d.ndjson" % (prefix, len(paths)))
        with open(p, "wb") as f:
            f.writelines(lines[i:i + size])
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------------
# `towerd serve` as a child process (added for test_towerctl; the other tests have their own)

class TowerServe:
    """`towerd serve` on a free loopback port, its output in a log file; start() waits for /healthz.
    `args` are passed through (e.g. ["--no-nats"] or ["--nats", url]); `port` may be fixed (a restart
    on the same port)."""

    def __init__(self, towerd, data, log_path, args=(), cwd=None):
        self.t, self.data, self.log_path, self.args = towerd, data, log_path, list(args)
        self.cwd = cwd or os.path.dirname(log_path)
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=30, port=None):
        last = ""
        for attempt in range(4):
            self.port = port or free_port()
            argv = [self.t.binary, "serve", "--data", self.data, "--http", "127.0.0.1:%d" % self.port,
                    "--web", self.cwd] + self.args
            logf = open(self.log_path, "ab")
            logf.write(("\n==== start: %s\n" % " ".join(argv[1:])).encode())
            logf.flush()
            self.proc = spawn(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=self.t.env(), cwd=self.cwd)
            logf.close()
            deadline = time.monotonic() + tmo(timeout)
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with opener.open(self.url + "/healthz", timeout=2) as r:
                        if r.status == 200:
                            return self
                except Exception as e:  # not up yet
                    last = repr(e)
                time.sleep(0.05)
            rc = self.proc.poll()
            self.kill()
            if rc is not None and port is None and attempt < 3 and "listen" in tail(self.log_path, 5):
                continue  # the port was taken between free_port() and the bind
            raise AssertionError("towerd serve did not answer /healthz within %.0fs (exit %s; last: %s)\n--- log:\n%s"
                                 % (tmo(timeout), rc, last, tail(self.log_path)))
        raise AssertionError("towerd serve could not bind a port:\n" + tail(self.log_path))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code (the process is killed after `timeout`)."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=tmo(timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
        reap(p)
        self.proc = None
        return p.returncode

    def kill(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.kill()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        reap(p)
        self.proc = None

    def log(self, n=60):
        return tail(self.log_path, n)


class Up:
    """`towerd up` as a child process on a free loopback port: stdout and stderr in files of its own
    (up-N.out, up-N.err for its Nth start); `env` adds variables. start() returns once it printed its
    banner."""

    def __init__(self, towerd, root, data, args, env=None):
        self.t, self.root, self.data, self.args, self.extra_env = towerd, root, data, list(args), env
        self.port = free_port()
        self.proc = None
        self.runs = 0
        self.out_path = self.err_path = None

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.runs += 1
        self.out_path = os.path.join(self.root, "up-%d.out" % self.runs)
        self.err_path = os.path.join(self.root, "up-%d.err" % self.runs)
        argv = [self.t.binary, "up", "--data", self.data, "--http", "127.0.0.1:%d" % self.port] + self.args
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = spawn(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.t.env(self.extra_env),
                                 cwd=self.root)
        deadline = time.monotonic() + tmo(60)
        while time.monotonic() < deadline:
            text = self.stdout()
            if "Ctrl-C stops everything." in text:
                return text
            if self.proc.poll() is not None:
                raise AssertionError("towerd up exited with %s before it was up\n%s" % (self.proc.returncode,
                                                                                       self.logs()))
            time.sleep(0.1)
        raise AssertionError("towerd up printed no dashboard URL within %.0fs\n%s" % (tmo(60), self.logs()))

    def stdout(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def logs(self, n=80):
        return "--- stdout:\n%s\n--- stderr:\n%s" % (self.stdout(), tail(self.err_path, n))

    def summary(self):
        """GET /api/v1/summary. Right after the banner the projector may not have created the store yet (503
        STORE_UNAVAILABLE, seen under CI load): that is waited out, for at most 30 s."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + tmo(30)
        while True:
            try:
                with opener.open(self.base + "/api/v1/summary", timeout=10) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                body = e.read()[:300]
                if e.code != 503 or b"STORE_UNAVAILABLE" not in body or time.monotonic() > deadline:
                    raise AssertionError("GET /api/v1/summary answered %s: %r" % (e.code, body))
            time.sleep(0.1)

    def stop(self, timeout=60):
        """SIGTERM and wait: the exit code."""
        p = self.proc
        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(timeout=tmo(timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            reap(p)
            raise AssertionError("towerd up did not stop within %.0fs of SIGTERM\n%s" % (tmo(timeout), self.logs()))
        reap(p)
        self.proc = None
        return rc

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            reap(self.proc)
            self.proc = None


# ---------------------------------------------------------------------------------------------
# a minimal websocket client (RFC 6455) for the live stream: text frames, ping/pong, close

class WsClosed(Exception):
    pass


class WsClient:
    """A websocket client over a plain socket. recv() returns one frame's messages (a frame may hold
    several JSON messages separated by newlines); rcvbuf shrinks the socket's receive buffer so that a
    client that stops reading backs up quickly."""

    def __init__(self, port, path="/api/v1/stream", headers=None, timeout=10, rcvbuf=None, ssl_context=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        if ssl_context is not None:  # wss:// (e.g. through nginx)
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname="127.0.0.1")
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, port, key))
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WsClosed("closed during the handshake: %r" % self.buf[:200])
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.status = int(head.split(b" ", 2)[1])
        if self.status != 101:
            self.sock.close()
            raise WsClosed("handshake refused: %s" % head.split(b"\r\n", 1)[0].decode(errors="replace"))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsClosed("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, data, fin=True):
        mask = os.urandom(4)
        n = len(data)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(head + mask + body)

    def send(self, obj):
        self.send_frame(1, json.dumps(obj).encode())

    def _frame_in_buf(self):
        """(opcode, payload) when a whole frame is buffered (consumed then), else None."""
        b = self.buf
        if len(b) < 2:
            return None
        n, i = b[1] & 0x7F, 2
        if n == 126:
            if len(b) < 4:
                return None
            n, i = int.from_bytes(b[2:4], "big"), 4
        elif n == 127:
            if len(b) < 10:
                return None
            n, i = int.from_bytes(b[2:10], "big"), 10
        if len(b) < i + n:
            return None
        self.buf = b[i + n:]
        return b[0] & 0x0F, b[i:i + n]

    def recv_frame(self, timeout=None):
        """(opcode, payload) of the next frame; answers pings. A timeout loses nothing: bytes read
        so far stay buffered until their frame is whole."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while True:
            f = self._frame_in_buf()
            if f is None:
                chunk = self.sock.recv(262144)
                if not chunk:
                    raise WsClosed("connection closed")
                self.buf += chunk
                continue
            op, data = f
            if op == 9:
                self.send_frame(10, data)
                continue
            if op == 8:
                raise WsClosed("closed by the server")
            return op, data

    def recv(self, timeout=None):
        """The messages of the next text frame (a list of dicts)."""
        op, data = self.recv_frame(timeout)
        return [json.loads(line) for line in data.decode().split("\n") if line]

    def close(self):
        try:
            self.send_frame(8, b"")
        except OSError:
            pass
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# running a test file: the runner shared by the integration test files

def stretch_for_sanitizer(binary):
    """An ASan build is 3-5x slower: stretch every timeout (fx.SLOW = 4) unless TOWER_IT_SLOW says."""
    global SLOW
    if "TOWER_IT_SLOW" in os.environ:
        return
    try:
        with open(binary, "rb") as f:
            if b"__asan_init" in f.read():
                SLOW = 4.0
    except OSError:
        pass


def main(module, binaries=("TOWERD",), seed=0, prepare=None, finish=None):
    """The command line of an integration test file: BINARY... [PATTERN...] (see select()).

    Sets the module's globals named in `binaries` to the binaries' absolute paths (each must be an
    executable), stretches the timeouts for a sanitizer build (judged by the last binary), calls
    prepare() (it may return words for the log line), then runs the tests with run_module."""
    n = len(binaries)
    if len(sys.argv) < n + 1 or sys.argv[1] in ("-h", "--help"):
        print(module.__doc__)
        return 2
    paths = [os.path.abspath(a) for a in sys.argv[1:n + 1]]
    name = os.path.splitext(os.path.basename(module.__file__))[0]
    for path in paths:
        if not os.access(path, os.X_OK):
            print("%s: %s is not an executable" % (name, path), file=sys.stderr)
            print("0 passed, 1 failed")
            return 1
    for g, path in zip(binaries, paths):
        setattr(module, g, path)
    install_signal_cleanup()
    stretch_for_sanitizer(paths[-1])
    extra = (prepare() or "") if prepare else ""
    log("%s, seed %d, scale %s, slow %s%s" % (", ".join("%s %s" % (g.lower(), p) for g, p in zip(binaries, paths)),
                                             seed, SCALE, SLOW, extra))
    return run_module(module, sys.argv[n + 1:], seed, finish=finish)


class LoggingResult(unittest.TextTestResult):
    """Logs the start and the end (with its duration) of every test, on the log's clock."""

    def startTest(self, test):
        self._t0 = time.monotonic()
        log("START %s" % test.id())
        super().startTest(test)

    def stopTest(self, test):
        log("END   %s (%.1fs)" % (test.id(), time.monotonic() - self._t0))
        super().stopTest(test)


def select(tests, patterns):
    """The tests that `patterns` choose: NAME keeps the tests whose id contains NAME, =NAME those whose
    class or method is named NAME exactly, ~NAME leaves out those whose class or method is named NAME.
    With no pattern of the first two kinds, every test not left out. tests/cases.cmake registers one
    ctest per case of a long file with =CASE, and its other tests with ~CASE..., so none is missed."""
    def names(t):
        return t.id().split(".")[1:]  # class and method, without the module

    keep = [p for p in patterns if not p.startswith("~")]
    drop = [p[1:] for p in patterns if p.startswith("~")]

    def kept(t, p):
        return p[1:] in names(t) if p.startswith("=") else p in t.id()

    return [t for t in tests if (not keep or any(kept(t, p) for p in keep))
            and not any(d in names(t) for d in drop)]


def run_module(module, patterns, seed, finish=None):
    """Run the tests of a module that select(patterns) chooses, sorted by name; kill every child and
    call finish() at the end; print "N passed, M failed". A failure of setUpModule or tearDownModule
    counts. Returns the exit code: 0 only when some ran and none failed, or when the patterns only
    left tests out and none was left (the rest of a file whose cases all run as their own ctests)."""
    tests = []

    def flatten(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                flatten(t)
            else:
                tests.append(t)

    flatten(unittest.TestLoader().loadTestsFromModule(module))
    tests = select(tests, patterns)
    if not tests and patterns and all(p.startswith("~") for p in patterns):
        print("0 tests left: every test of this file runs in a ctest of its own")
        if finish is not None:
            finish()
        return 0
    tests.sort(key=lambda t: t.id().rsplit(".", 1)[1])
    runner = unittest.TextTestRunner(verbosity=2, resultclass=LoggingResult, stream=sys.stdout)
    t0 = time.monotonic()
    try:
        # setUpModule/tearDownModule run around the suite (the suite holds tests of this module)
        res = runner.run(unittest.TestSuite(tests))
    finally:
        if finish is not None:
            finish()
        kill_all_children()
    failed_ids = {t.id() for t, _ in res.failures + res.errors} | {t.id() for t in res.unexpectedSuccesses}
    ran = {t.id() for t in tests}
    failed = len(failed_ids & ran)
    if failed_ids - ran:  # setUpModule or tearDownModule failed: count the tests that could not run
        failed = max(failed, 1) if res.testsRun else len(tests)
    passed = max(0, res.testsRun - failed - len(res.skipped))
    if res.skipped:
        print("%d skipped: %s" % (len(res.skipped), "; ".join("%s (%s)" % (t.id().rsplit(".", 1)[1], why)
                                                                for t, why in res.skipped)))
    print("suite took %.1fs (seed %d)" % (time.monotonic() - t0, seed))
    print("%d passed, %d failed" % (passed, failed))
    sys.stdout.flush()
    return 0 if failed == 0 and res.testsRun > 0 else 1
