// The browser test's harness: a private nats-server, `towerd projector` and `towerd serve` as child
// processes on free loopback ports, HTTP helpers, and cleanup of everything we started.
// Node's standard library only.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, openSync, closeSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const T0 = Date.now();
export function log(...args) {
  process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(2).padStart(6)}s] ${args.join(' ')}\n`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every child gets PR_SET_PDEATHSIG(SIGKILL) through a one-line python3 exec wrapper, so none
// outlives this test even when the test itself is killed (e.g. by ctest's timeout).
const PDEATH = 'import ctypes,os,sys; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0); os.execvp(sys.argv[1], sys.argv[1:])';

const children = new Set();
const tempdirs = [];
export const KEEP = !['', '0', undefined].includes(process.env.TOWER_IT_KEEP);

/** Spawns argv with stdout+stderr appended to logPath; registered for cleanup. */
export function start(argv, logPath, { env } = {}) {
  const fd = openSync(logPath, 'a');
  writeFileSync(fd, `\n==== start: ${argv.join(' ')}\n`);
  const p = spawn('python3', ['-c', PDEATH, ...argv], {
    stdio: ['ignore', fd, fd], env: { ...process.env, ...(env || {}) },
  });
  closeSync(fd);
  p.exited = new Promise((resolve) => p.on('exit', (code, sig) => { children.delete(p); resolve({ code, sig }); }));
  children.add(p);
  return p;
}

/** Runs a command to completion: {code, out, err}; fails after timeoutMs. */
export function run(argv, { timeoutMs = 60000, input } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn('python3', ['-c', PDEATH, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(p);
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`\`${argv.join(' ')}\` did not finish within ${timeoutMs} ms\n${err.slice(-2000)}`)); }, timeoutMs);
    p.on('exit', (code) => { clearTimeout(timer); children.delete(p); resolve({ code, out, err }); });
    if (input !== undefined) p.stdin.end(input); else p.stdin.end();
  });
}

/** Stops a child with a signal and waits (SIGKILL after graceMs): {code, sig}. */
export async function stop(p, sig = 'SIGTERM', graceMs = 15000) {
  if (!p || p.exitCode !== null || p.signalCode !== null) return p ? p.exited : null;
  p.kill(sig);
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  const r = await p.exited;
  clearTimeout(t);
  return r;
}

export function cleanup() {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
  children.clear();
  for (const d of tempdirs.splice(0)) {
    if (KEEP) log('keeping', d);
    else rmSync(d, { recursive: true, force: true });
  }
}

export function tempdir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempdirs.push(d);
  return d;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tail(path, n = 40) {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-n).join('\n');
  } catch (e) {
    return `(cannot read ${path}: ${e.message})`;
  }
}

/** GET/POST against a local port: {status, body (parsed JSON when possible), text}. */
export async function http(port, path, opts = {}) {
  try {
    return await http1(port, path, opts);
  } catch (e) {
    // A keep-alive connection the server closed as idle (civetweb: after 500 ms) just as it was
    // reused: browsers retry an idempotent request then, and so do we, once.
    if ((opts.method || 'GET') !== 'GET' || !(e instanceof TypeError)) throw e;
    return await http1(port, path, opts);
  }
}

async function http1(port, path, { method = 'GET', body, headers = {}, timeoutMs = 15000 } = {}) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    // The server takes writes only as JSON or NDJSON (a browser page could send text/plain unasked).
    const hdrs = body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')
      ? { ...headers, 'Content-Type': 'application/json' } : headers;
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, body, headers: hdrs, signal: ctl.signal });
    const text = await res.text();
    let parsed = null;
    try { parsed = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body: parsed, text };
  } finally {
    clearTimeout(t);
  }
}

/** Polls fn() until it returns a truthy value; throws with the last reason after timeoutMs. */
export async function until(what, fn, timeoutMs, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last: ${last})` : ''}`);
    await sleep(everyMs);
  }
}

/** A JetStream nats-server of our own on free loopback ports, with a unique server name. */
export class Nats {
  constructor(root) {
    this.root = root;
    this.name = 'tower-bt-' + randomBytes(5).toString('hex');
    this.logPath = join(root, 'nats-server.log');
  }
  get url() { return `nats://127.0.0.1:${this.port}`; }
  async start(timeoutMs) {
    this.port = await freePort();
    this.mport = await freePort();
    const conf = join(this.root, 'nats.conf');
    writeFileSync(conf, `server_name: "${this.name}"\nlisten: 127.0.0.1:${this.port}\nhttp: 127.0.0.1:${this.mport}\n` +
      'jetstream {\n  max_memory_store: 256MB\n  max_file_store: 1GB\n}\n');
    const bin = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
    this.proc = start([bin, '-c', conf, '-js', '-sd', join(this.root, 'js')], this.logPath);
    await until('nats-server ready', async () => {
      if (this.proc.exitCode !== null) throw new Error(`nats-server exited ${this.proc.exitCode}:\n${tail(this.logPath)}`);
      const r = await http(this.mport, '/varz', { timeoutMs: 1000 });
      if (r.status !== 200 || !r.body) return false;
      // Someone else's server on this port: never talk to it.
      if (r.body.server_name !== this.name) throw new Error(`port ${this.mport} answered by ${r.body.server_name}`);
      return (await http(this.mport, '/healthz', { timeoutMs: 1000 })).status === 200;
    }, timeoutMs);
    return this;
  }
}

/** `towerd serve` on a fixed port (kept across restarts so that the page reconnects to it); `extra`: more options. */
export class Serve {
  constructor(towerd, { data, web, nats, logPath, extra = [] }) {
    Object.assign(this, { towerd, data, web, nats, logPath, extra });
    this.starts = 0;
  }
  async start(timeoutMs) {
    if (!this.port) this.port = await freePort();
    this.proc = start([this.towerd, 'serve', '--data', this.data, '--http', `127.0.0.1:${this.port}`,
      '--web', this.web, '--nats', this.nats, ...this.extra], this.logPath);
    this.starts++;
    await until('towerd serve answering /healthz', async () => {
      if (this.proc.exitCode !== null) throw new Error(`towerd serve exited ${this.proc.exitCode}:\n${tail(this.logPath)}`);
      return (await http(this.port, '/healthz', { timeoutMs: 1000 })).status === 200;
    }, timeoutMs, 50);
    return this;
  }
  async stop() {
    const r = await stop(this.proc, 'SIGTERM');
    this.proc = null;
    return r;
  }
}

/** Sanitizer reports in a log file, if any. */
export function sanitizerReport(path) {
  const m = /^.*(AddressSanitizer|LeakSanitizer|runtime error:).*$/m.exec(tail(path, 400));
  return m ? m[0] : null;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { cleanup(); process.exit(128 + 2); });
}
process.on('exit', () => {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});
