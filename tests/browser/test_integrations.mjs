#!/usr/bin/env node
// Real-browser test of the Integrations page (#/integrations, web/js/pages/integrations.js): Debian's Chromium
// driven by playwright-core against `towerd serve --no-nats --relay FILE --relay-state DIR --tokens FILE`,
// whose relay state directory (NAME.status.json, NAME.dead.ndjson, as `towerd relay` writes them) this test
// writes itself.
//
// usage: node test_integrations.mjs TOWERD [--artifacts DIR] [--slow N] [CHECK_NAME_SUBSTRING...]
//
// Checks: the navigation links the page; one card per destination of the relay file, in its order, with the
// breaker badge (open, closed, unknown) and its colour, delivered / failed / dead / backlog, the last error
// and since when it fails, the last delivery, the "next step" sentence; never the URL's path (a Slack
// webhook's secret); the dead letters with their attempts; the page follows a status change by itself
// (auto-refresh); an operator has a Redrive button whose answer is shown (here 503: no NATS); a viewer has no
// Redrive button. TOWER_IT_KEEP=1 keeps the temporary directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import {
  log, start, stop, tempdir, http, until, tail, freePort, sanitizerReport, parseArgs, Checks, assert, assertEq,
  launchChromium, writeTokens,
} from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const WEB = join(REPO, 'web');
const WATCHDOG_MS = 60000;
const SECRET = 'T0SECRET/B0SECRET/XsecretX';

const { towerd: TOWERD, artifacts: ARTIFACTS, slow, only } = parseArgs('test_integrations.mjs');
const S = { pages: {} };
const C = new Checks({
  only, watchdogMs: Math.min(slow(WATCHDOG_MS), 110000),
  onFail: async () => {
    for (const [n, p] of Object.entries(S.pages)) {
      try { mkdirSync(ARTIFACTS, { recursive: true }); await p.screenshot({ path: join(ARTIFACTS, `integrations-fail-${n}.png`) }); } catch { /* closed */ }
    }
  },
});
const check = C.check.bind(C);

const TOKENS = { ops: randomBytes(24).toString('hex'), wall: randomBytes(24).toString('hex') };

function status(over) {
  return JSON.stringify({
    destination: 'erp', breaker: 'open', delivered: 3, attempts: 9, failed: 6, dead: 2, skipped: 1, checkpoint: 12,
    backlog: 4, lastError: 'HTTP 503', lastOkAt: '2026-12-06T10:00:00Z', failingSince: '2026-12-06T10:01:00Z', ...over,
  });
}
function letter(seq, id) {
  return JSON.stringify({
    seq, eventId: id, type: 'routeDispatched', destination: 'erp', deadAt: '2026-12-06T10:02:00Z',
    attempts: [{ at: '2026-12-06T10:01:00Z', status: 503, error: 'HTTP 503' }, { at: '2026-12-06T10:01:30Z', status: 0, error: 'Timeout was reached' }],
  });
}

async function setup() {
  S.root = tempdir('tower-bi-');
  log('fixture in', S.root);
  S.state = join(S.root, 'relay');
  mkdirSync(S.state);
  S.conf = join(S.root, 'relay.ini');
  writeFileSync(S.conf, '[destination erp]\nurl = http://127.0.0.1:9/erp/dispatch\nevents = routeDispatched\n' +
    'max_attempts = 2\nbreaker_failures = 5\nbreaker_cooldown = 30s\n\n' +
    `[destination chat]\nurl = https://hooks.slack.com/services/${SECRET}\nkind = slack\nevents = deliveryAttempted\nwarehouses = dc-1\n\n` +
    '[destination notify]\nurl = http://127.0.0.1:9/notify\nevents = *\n');
  writeFileSync(join(S.state, 'erp.status.json'), status({}));
  writeFileSync(join(S.state, 'erp.dead.ndjson'), letter(5, 'rd-5') + '\n' + letter(7, 'rd-7') + '\n');
  writeFileSync(join(S.state, 'chat.status.json'), JSON.stringify({
    destination: 'chat', breaker: 'closed', delivered: 40, attempts: 40, failed: 0, dead: 0, skipped: 3, checkpoint: 12,
    backlog: 0, lastError: null, lastOkAt: '2026-12-06T10:05:00Z', failingSince: null,
  }));
  const tokens = join(S.root, 'tokens');
  writeTokens(tokens, [['ops', 'operator', TOKENS.ops], ['wall', 'viewer', TOKENS.wall]]);
  S.port = await freePort();
  S.logPath = join(S.root, 'serve.log');
  C.phase = 'starting towerd serve';
  S.serve = start([TOWERD, 'serve', '--no-nats', '--data', join(S.root, 'store'), '--http', `127.0.0.1:${S.port}`,
    '--web', WEB, '--tokens', tokens, '--relay', S.conf, '--relay-state', S.state], S.logPath);
  await until('towerd serve answering /healthz', async () => {
    if (S.serve.exitCode !== null) throw new Error(`towerd serve exited ${S.serve.exitCode}:\n${tail(S.logPath)}`);
    return (await http(S.port, '/healthz', { timeoutMs: 1000 })).status === 200;
  }, slow(20000), 50);
  C.phase = 'launching Chromium';
  S.browser = await launchChromium();
  S.errors = [];
  S.base = `http://127.0.0.1:${S.port}`;
  S.ctx = {};
  for (const who of ['ops', 'wall']) {
    const ctx = await S.browser.newContext({ viewport: { width: 1920, height: 1080 }, colorScheme: 'dark' });
    ctx.setDefaultTimeout(slow(10000));
    await ctx.addInitScript((t) => { sessionStorage.setItem('tower.token', t); }, TOKENS[who]);
    S.ctx[who] = ctx;
  }
}

async function newPage(who, name, path) {
  const page = await S.ctx[who].newPage();
  page.on('pageerror', (e) => S.errors.push(`${name}: ${e.message}`));
  page.on('dialog', (d) => d.dismiss());
  S.pages[name] = page;
  await page.goto(S.base + '/' + path);
  return page;
}

const figs = (page, name) => page.$$eval(`#int-${name} .int-figs dd`, (els) => Object.fromEntries(els.map((e) => [e.dataset.fig, e.textContent])));

async function checks() {
  let ops;
  await check('the navigation leads to the page; one card per destination, in the file\'s order', async () => {
    ops = await newPage('ops', 'ops', '#/');
    await ops.click('.mainnav a[data-nav="integrations"]');
    await ops.waitForSelector('#integrations[data-loaded="true"] article.int');
    assertEq(await ops.getAttribute('.mainnav a[data-nav="integrations"]', 'aria-current'), 'page', 'the nav link is current');
    assertEq(await ops.$$eval('#integrations article.int', (a) => a.map((e) => e.dataset.name)), ['erp', 'chat', 'notify'], 'cards');
  });

  await check('breaker badges with their words and colours; figures; last error; failing since; next step', async () => {
    const badge = (n) => ops.$eval(`#int-${n} .breaker`, (e) => ({ b: e.dataset.breaker, text: e.textContent.trim(), bg: getComputedStyle(e).backgroundColor }));
    const erp = await badge('erp'), chat = await badge('chat'), notify = await badge('notify');
    assertEq([erp.b, chat.b, notify.b], ['open', 'closed', 'unknown'], 'breaker states');
    assert(/Open$/.test(erp.text) && /Closed$/.test(chat.text) && /Unknown$/.test(notify.text), `badge words: ${erp.text} ${chat.text} ${notify.text}`);
    assert(new Set([erp.bg, chat.bg, notify.bg]).size === 3, `three different badge colours: ${erp.bg} ${chat.bg} ${notify.bg}`);
    assertEq(await figs(ops, 'erp'), { delivered: '3', failed: '6', dead: '2', backlog: '4' }, 'erp\'s figures');
    assertEq(await figs(ops, 'chat'), { delivered: '40', failed: '0', dead: '0', backlog: '0' }, 'chat\'s figures');
    assertEq(await figs(ops, 'notify'), { delivered: '—', failed: '—', dead: '0', backlog: '—' }, 'notify\'s figures (no status)');
    const text = await ops.textContent('#int-erp');
    assert(text.includes('Last error: HTTP 503'), `the last error: ${text}`);
    assert(text.includes('failing since 2026-12-06 10:01:00 UTC'), `failing since: ${text}`);
    assert(text.includes('Last delivered: 2026-12-06 10:00:00 UTC'), `last OK: ${text}`);
    const next = await ops.textContent('#int-erp .next-step');
    assert(/failed 5 times in a row/.test(next) && /nothing is lost/.test(next) && /2 dead letters/.test(next), `next step: ${next}`);
    assert(/Unknown/.test(await ops.textContent('#int-notify .next-step')), 'notify\'s next step');
    assert(/Healthy/.test(await ops.textContent('#int-chat .next-step')), 'chat\'s next step');
    const page = await ops.content();
    assert(!page.includes('XsecretX') && !page.includes('/services/'), 'the Slack URL\'s path shows');
    assert((await ops.textContent('#int-chat header')).includes('slack · https://hooks.slack.com'), 'chat\'s endpoint');
  });

  await check('the dead letters with their attempts', async () => {
    await ops.click('#int-erp details.int-dead-box summary');
    const rows = await ops.$$eval('#dead-erp li.int-dead', (ls) => ls.map((l) => ({ seq: l.dataset.seq, text: l.textContent, n: l.querySelectorAll('.attempts li').length })));
    assertEq(rows.map((r) => [r.seq, r.n]), [['7', 2], ['5', 2]], 'dead letters, newest first, two attempts each');
    assert(rows[0].text.includes('rd-7') && rows[0].text.includes('HTTP 503') && rows[0].text.includes('no answer Timeout was reached'), rows[0].text);
  });

  await check('the page follows a status change by itself', async () => {
    writeFileSync(join(S.state, 'erp.status.json.tmp'), status({ breaker: 'half-open', delivered: 9, backlog: 1 }));
    const { renameSync } = await import('node:fs');
    renameSync(join(S.state, 'erp.status.json.tmp'), join(S.state, 'erp.status.json'));
    await ops.waitForSelector('#int-erp .breaker[data-breaker="half-open"]', { timeout: slow(10000) });
    assertEq((await figs(ops, 'erp')).delivered, '9', 'delivered after the refresh');
    assert(/Half-open/.test(await ops.textContent('#int-erp .next-step')), 'the next step follows');
    assert(await ops.$eval('#int-erp details.int-dead-box', (d) => d.open), 'the opened dead letters stay open across refreshes');
    mkdirSync(ARTIFACTS, { recursive: true });
    await ops.screenshot({ path: join(ARTIFACTS, 'integrations.png'), fullPage: true });
  });

  await check('an operator has a Redrive button and sees its answer', async () => {
    assertEq(await ops.$$eval('button.redrive-int', (b) => b.map((e) => e.closest('article').dataset.name)), ['erp'], 'redrive buttons');
    await ops.click('#int-erp button.redrive-int');
    await ops.waitForSelector('#int-erp .int-result', { timeout: slow(10000) });
    await ops.waitForFunction(() => !/Redriving/.test(document.querySelector('#int-erp .int-result').textContent), null, { timeout: slow(10000) });
    const msg = await ops.textContent('#int-erp .int-result');
    assert(/Redrive failed: .*NATS/.test(msg), `the answer shown: ${msg}`);
  });

  await check('a viewer sees the same figures and no Redrive button', async () => {
    const wall = await newPage('wall', 'wall', '#/integrations');
    await wall.waitForSelector('#integrations[data-loaded="true"] article.int');
    await wall.waitForSelector('#int-erp .breaker[data-breaker="half-open"]');
    assertEq(await wall.$$eval('button.redrive-int', (b) => b.length), 0, 'redrive buttons for a viewer');
    assert((await wall.textContent('#int-erp')).includes('Redrive needs the operator role'), 'the viewer is told why');
    const r = await http(S.port, '/api/v1/integrations/erp/redrive', { method: 'POST', body: '{}', headers: { Authorization: 'Bearer ' + TOKENS.wall } });
    assertEq(r.status, 403, 'the server refuses a viewer\'s redrive');
  });

  await check('no uncaught JavaScript error', async () => {
    assertEq(S.errors, [], 'page errors');
  });
}

async function teardown() {
  C.phase = 'teardown';
  if (S.browser) await S.browser.close().catch(() => {});
  const problems = [];
  if (S.serve) {
    const r = await stop(S.serve, 'SIGTERM');
    if (r && r.code !== 0) problems.push(`towerd serve exited ${JSON.stringify(r)} on SIGTERM`);
    const rep = sanitizerReport(S.logPath);
    if (rep) problems.push(`towerd serve reported: ${rep}\n${tail(S.logPath, 60)}`);
  }
  return problems;
}

await C.main(setup, checks, teardown, () => [['towerd serve log', S.logPath, 30]]);
