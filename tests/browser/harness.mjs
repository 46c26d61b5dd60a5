// The browser tests' harness: a private nats-server, `towerd projector` and `towerd serve` as child
// processes on free loopback ports (startStack: the fixture most tests share), HTTP helpers, Chromium
// (playwright-core), the command line, the checks with their watchdog and summary, and cleanup of
// everything we started. Node's standard library and playwright-core only.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, openSync, closeSync, readFileSync, writeFileSync, appendFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

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
    // reused: browsers retry an idempotent request then, and so do we, once. A POST of events is
    // idempotent too (the tower keeps an event id once), so it is retried as well.
    const idempotent = (opts.method || 'GET') === 'GET' || path.startsWith('/api/v1/events');
    if (!idempotent || !(e instanceof TypeError)) throw e;
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

// --- Chromium

export const CHROMIUM = process.env.TOWER_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** Debian's Chromium, headless, through playwright-core. */
export function launchChromium(args = CHROMIUM_FLAGS) {
  return chromium.launch({ executablePath: CHROMIUM, args, headless: true });
}

// --- the command line

/**
 * The command line of a browser test: TOWERD [--artifacts DIR] [--slow N] [OPTION VALUE...] [CHECK...].
 * `options` names the file's own options that take a value (e.g. ['--docs-shot']). Prints the usage and
 * exits 2 without TOWERD. Returns {towerd, artifacts, SLOW (>= 1; TOWER_IT_SLOW by default), slow(ms):
 * ms stretched by SLOW, only: the CHECK substrings, opts: {option: value}}.
 */
export function parseArgs(file, options = []) {
  const argv = process.argv.slice(2);
  const a = { towerd: argv.shift(), artifacts: resolve('browser-artifacts'), SLOW: Number(process.env.TOWER_IT_SLOW || 1),
    only: [], opts: {} };
  while (argv.length) {
    const x = argv.shift();
    if (x === '--artifacts') a.artifacts = resolve(argv.shift());
    else if (x === '--slow') a.SLOW = Number(argv.shift());
    else if (options.includes(x)) a.opts[x] = argv.shift();
    else a.only.push(x);
  }
  if (!a.towerd) {
    const more = options.map((o) => ` [${o} VALUE]`).join('');
    process.stderr.write(`usage: node ${file} TOWERD [--artifacts DIR] [--slow N]${more} [CHECK...]\n`);
    process.exit(2);
  }
  if (!(a.SLOW >= 1)) a.SLOW = 1;
  a.slow = (ms) => Math.round(ms * a.SLOW);
  return a;
}

// --- checks

export function assert(cond, msg) { if (!cond) throw new Error(msg); }
export function assertEq(got, want, what) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}:\n  got  ${g.slice(0, 1500)}\n  want ${w.slice(0, 1500)}`);
}

/**
 * A test file's checks: check(name, fn) runs one (unless the command line chose others) and records
 * it; a watchdog stops everything after `watchdogMs`; main(setup, checks, teardown, logs) runs the file
 * and exits 0 only when some check ran and none failed. `onFail(name)` runs after a failed check (e.g.
 * screenshots); `logs()` gives [label, path, lines] of the logs to show when something failed.
 */
export class Checks {
  constructor({ only = [], watchdogMs, onFail = null }) {
    Object.assign(this, { only, watchdogMs, onFail, results: [], phase: 'starting' });
    this.watchdog = setTimeout(() => {
      log(`FAIL: the test did not finish within ${watchdogMs / 1000} s (while: ${this.phase}); stopping everything`);
      for (const r of this.results) if (!r.ok) log(`FAIL ${r.name}: ${r.why}`);
      cleanup();
      process.exit(1);
    }, watchdogMs);
  }

  async check(name, fn) {
    if (this.only.length && !this.only.some((s) => name.includes(s))) return;
    const t0 = Date.now();
    this.phase = `check "${name}"`;
    try {
      await fn();
      this.results.push({ name, ok: true });
      log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      this.results.push({ name, ok: false, why: e.stack || String(e) });
      log(`FAIL ${name} (${Date.now() - t0} ms): ${e.message}`);
      if (this.onFail) await this.onFail(name);
    }
  }

  fail(name, why) { this.results.push({ name, ok: false, why }); }

  async main(setup, checks, teardown, logs = () => []) {
    try {
      await setup();
      await checks();
    } catch (e) {
      log('FAIL setup:', e.stack || e);
      this.fail('setup', e.stack || String(e));
    }
    try {
      for (const p of await teardown()) this.fail('clean shutdown', p);
    } catch (e) {
      this.fail('teardown', e.stack || String(e));
    }
    const failed = this.results.filter((r) => !r.ok);
    let code = 0;
    if (failed.length) {
      code = 1;
      process.stderr.write(`\n${failed.length} of ${this.results.length} checks failed:\n`);
      for (const f of failed) process.stderr.write(`\n--- ${f.name}\n${f.why}\n`);
      for (const [what, path, n] of logs()) if (path) process.stderr.write(`\n--- ${what} (tail)\n${tail(path, n)}\n`);
    } else if (!this.results.length) {
      code = 1;
      process.stderr.write('no check ran\n');
    } else {
      process.stderr.write(`\nall ${this.results.length} checks passed\n`);
    }
    clearTimeout(this.watchdog);
    cleanup();
    process.exit(code);
  }
}

// --- the fixture most tests share

/** The tokens file of `towerd serve --tokens` (0600): a line "NAME ROLE SHA-256" per [name, role, token]. */
export function writeTokens(path, entries) {
  const sha = (t) => createHash('sha256').update(t).digest('hex');
  writeFileSync(path, entries.map(([name, role, token]) => `${name} ${role} ${sha(token)}\n`).join(''), { mode: 0o600 });
  return path;
}

/**
 * Into S: a nats-server (S.nats), a trace from `towerd gen GEN...` with `lines` appended, published
 * (S.trace; none when `gen` is null), `towerd projector` (S.projector, S.data, S.projLog) and `towerd
 * serve` (S.serve), then waits until the projector has applied the whole stream (S.summary). `headers`
 * go with the summary requests (a token). `setPhase(what)` is told each step for the watchdog's message.
 */
export async function startStack(S, { towerd, slow, web, gen = null, lines = () => [], projectorExtra = [],
  serveExtra = [], headers = {}, setPhase = () => {} }) {
  setPhase('starting nats-server');
  S.nats = await new Nats(S.root).start(slow(15000));
  if (gen) {
    setPhase('generating and publishing the trace');
    S.trace = join(S.root, 'trace.ndjson');
    let r = await run([towerd, 'gen', ...gen, '-o', S.trace], { timeoutMs: slow(30000) });
    assert(r.code === 0, `towerd gen exited ${r.code}: ${r.err}`);
    const more = lines();
    if (more.length) appendFileSync(S.trace, more.join('\n') + '\n');
    r = await run([towerd, 'publish', '--nats', S.nats.url, S.trace], { timeoutMs: slow(40000) });
    assert(r.code === 0 || r.code === 3, `towerd publish exited ${r.code}: ${r.err.slice(-2000)}`);
  }
  setPhase('starting the projector and towerd serve');
  S.data = join(S.root, 'store');
  S.projLog = join(S.root, 'projector.log');
  S.projector = start([towerd, 'projector', '--nats', S.nats.url, '--data', S.data, ...projectorExtra], S.projLog);
  S.serve = new Serve(towerd, { data: S.data, web, nats: S.nats.url, logPath: join(S.root, 'serve.log'), extra: serveExtra });
  await S.serve.start(slow(20000));
  if (gen) {
    setPhase('waiting for the projector to catch up');
    await caughtUp(S, slow(30000), headers);
  }
  return S;
}

/** Waits until the projector applied everything the stream holds, as the server reports it: S.summary. */
export async function caughtUp(S, timeoutMs, headers = {}) {
  S.summary = await until('the projector to catch up', async () => {
    if (S.projector.exitCode !== null) throw new Error(`the projector exited ${S.projector.exitCode}:\n${tail(S.projLog)}`);
    const r = await http(S.serve.port, '/api/v1/summary', { headers });
    if (r.status !== 200) throw new Error(`summary -> ${r.status} ${r.text.slice(0, 200)}`);
    const b = r.body;
    if (!(b.streamLastSeq > 0 && b.appliedSeq === b.streamLastSeq && b.lag === 0)) {
      throw new Error(`applied ${b.appliedSeq}, stream ${b.streamLastSeq}, lag ${b.lag}`);
    }
    return b;
  }, timeoutMs, 100);
  return S.summary;
}

/** Stops what startStack started (S.browser first, when there): the problems, as exit codes on SIGTERM
 *  other than 0 and sanitizer reports in the logs. */
export async function stopStack(S) {
  if (S.browser) await S.browser.close().catch(() => {});
  const problems = [];
  if (S.serve && S.serve.proc) {
    const r = await S.serve.stop();
    if (r.code !== 0) problems.push(`towerd serve exited ${JSON.stringify(r)} on SIGTERM`);
  }
  if (S.projector) {
    const r = await stop(S.projector, 'SIGTERM');
    if (r && r.code !== 0) problems.push(`the projector exited ${JSON.stringify(r)} on SIGTERM`);
  }
  for (const [what, path] of [['towerd serve', S.serve && S.serve.logPath], ['the projector', S.projLog]]) {
    const rep = path && sanitizerReport(path);
    if (rep) problems.push(`${what} reported: ${rep}\n${tail(path, 60)}`);
  }
  if (S.nats && S.nats.proc) await stop(S.nats.proc, 'SIGTERM');
  return problems;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => { cleanup(); process.exit(128 + 2); });
}
process.on('exit', () => {
  for (const p of children) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/**
 * A test file against `towerd serve --no-nats` on a store folded offline from `lines` (NDJSON event lines):
 * folds them, starts serve (the dashboard from repo/web, runbooks from repo/docs/runbooks) and Chromium in
 * `timezoneId`, runs `checks(check, page, base)` through a Checks (a page error fails too), then stops it all
 * (serve must exit 0 on SIGTERM; a sanitizer report fails) and exits 0 only when every check passed.
 */
export async function runOfflineServe({ towerd, slow, repo, lines, timezoneId, prefix, checks, watchdogMs = 90000 }) {
  const C = new Checks({ watchdogMs: watchdogMs * slow });
  const root = tempdir(prefix);
  const logPath = join(root, 'serve.log');
  const errors = [];
  let serve = null, browser = null, page = null, base = '';
  await C.main(async () => {
    const trace = join(root, 'events.ndjson');
    writeFileSync(trace, lines.join('\n') + '\n');
    const data = join(root, 'store');
    const port = await freePort();
    const f = await run([towerd, 'fold', '--data', data, trace]);
    assert(f.code === 0, `towerd fold: ${JSON.stringify(f).slice(0, 500)}`);
    serve = start([towerd, 'serve', '--no-nats', '--data', data, '--http', `127.0.0.1:${port}`, '--web', join(repo, 'web'),
      '--runbooks', join(repo, 'docs', 'runbooks')], logPath);
    await until('towerd serve answering', async () => {
      if (serve.exitCode !== null) throw new Error(`towerd serve exited:\n${tail(logPath)}`);
      return (await http(port, '/healthz', { timeoutMs: 1000 })).status === 200;
    }, 20000 * slow, 50);
    browser = await launchChromium();
    const ctx = await browser.newContext({ timezoneId });
    page = await ctx.newPage();
    page.setDefaultTimeout(10000 * slow);
    page.on('pageerror', (e) => errors.push(e.message));
    base = `http://127.0.0.1:${port}/`;
  }, async () => {
    await checks((name, fn) => C.check(name, fn), page, base);
    if (errors.length) C.fail('no page error', errors.join('\n'));
  }, async () => {
    const problems = [];
    if (browser) await browser.close().catch(() => {});
    if (serve) {
      const r = await stop(serve, 'SIGTERM');
      if (r && r.code !== 0) problems.push(JSON.stringify(r));
    }
    const rep = sanitizerReport(logPath);
    if (rep) C.fail('sanitizers', rep);
    return problems;
  }, () => [['towerd serve', logPath, 40]]);
}
