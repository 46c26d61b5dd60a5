#!/usr/bin/env node
// Real-browser test of the Contract health page (#/contract, web/js/pages/contract.js): Debian's Chromium
// driven by playwright-core against `towerd serve --no-nats` on a store that `towerd fold` filled with the
// rejected events of three producers (docs/contract/conformance.md).
//
// usage: node test_contract.mjs TOWERD [--artifacts DIR] [--slow N] [CHECK_NAME_SUBSTRING...]
//
// Checks: the navigation links the page; one row per producer and code with its count, first and last seen,
// the latest example and a link to that dead letter; a producer's hostile instance shows as "(invalid)" and
// its text nowhere as markup; no uncaught JavaScript error. TOWER_IT_KEEP=1 keeps the temporary directory.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  log, start, stop, tempdir, http, until, tail, freePort, run, sanitizerReport, parseArgs, Checks, assert, assertEq,
  launchChromium,
} from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const WEB = join(REPO, 'web');
const WATCHDOG_MS = 60000;

const { towerd: TOWERD, artifacts: ARTIFACTS, slow, only } = parseArgs('test_contract.mjs');
const S = { pages: {} };
const C = new Checks({
  only, watchdogMs: Math.min(slow(WATCHDOG_MS), 110000),
  onFail: async () => {
    for (const [n, p] of Object.entries(S.pages)) {
      try { mkdirSync(ARTIFACTS, { recursive: true }); await p.screenshot({ path: join(ARTIFACTS, `contract-fail-${n}.png`) }); } catch { /* closed */ }
    }
  },
});
const check = C.check.bind(C);

const at = '2026-11-27T08:00:00Z';
const ev = (id, system, instance, rest) => JSON.stringify({ eventId: id, occurredAt: at, source: instance ? { system, instance } : { system }, ...rest });
const LINES = [
  ev('w-1', 'wms', 'wms-dc2', { orderId: 'SO-1', pickShort: { qtyShort: 1 } }),           // MISSING_FIELD (sku)
  ev('w-2', 'wms', 'wms-dc2', { orderId: 'SO-1', pickShort: { sku: 'A', qtyShort: 0 } }), // INVALID_VALUE
  ev('w-3', 'wms', 'wms-dc2', { orderId: 'SO-1', pickShort: { sku: 'B', qtyShort: -2 } }),
  ev('c-1', 'carrier', 'dhl-eu', { shipmentId: 'S 1', podCaptured: {} }),                 // INVALID_ID
  ev('x-1', 'erp', '<img src=x onerror=alert(1)>', { orderApproved: {} }),                // MISSING_FIELD, hostile instance
  ev('ok-1', 'erp', 'erp-eu', { orderId: 'SO-2', orderApproved: { warehouseId: 'dc-1' } }),
];

async function setup() {
  S.root = tempdir('tower-bc-');
  log('fixture in', S.root);
  const file = join(S.root, 'bad.ndjson');
  writeFileSync(file, LINES.join('\n') + '\n');
  S.data = join(S.root, 'store');
  C.phase = 'towerd fold';
  const f = await run([TOWERD, 'fold', '--data', S.data, '--quiet', file], { timeoutMs: slow(30000) });
  assert(f.code === 0 || f.code === 3, `towerd fold exited ${f.code}: ${f.err}`);
  S.port = await freePort();
  S.logPath = join(S.root, 'serve.log');
  C.phase = 'starting towerd serve';
  S.serve = start([TOWERD, 'serve', '--no-nats', '--data', S.data, '--http', `127.0.0.1:${S.port}`, '--web', WEB], S.logPath);
  await until('towerd serve answering /healthz', async () => {
    if (S.serve.exitCode !== null) throw new Error(`towerd serve exited ${S.serve.exitCode}:\n${tail(S.logPath)}`);
    return (await http(S.port, '/healthz', { timeoutMs: 1000 })).status === 200;
  }, slow(20000), 50);
  C.phase = 'launching Chromium';
  S.browser = await launchChromium();
  S.errors = [];
  S.ctx = await S.browser.newContext({ viewport: { width: 1600, height: 1000 } });
  S.ctx.setDefaultTimeout(slow(10000));
  S.base = `http://127.0.0.1:${S.port}`;
}

async function checks() {
  let page;
  await check('the navigation leads to the page', async () => {
    page = await S.ctx.newPage();
    page.on('pageerror', (e) => S.errors.push(e.message));
    page.on('dialog', (d) => { S.errors.push(`a dialog opened: ${d.message()}`); d.dismiss(); });
    S.pages.main = page;
    await page.goto(S.base + '/#/');
    await page.click('.mainnav a[data-nav="contract"]');
    await page.waitForSelector('#contract-rows[data-loaded="true"] #contract tbody tr');
    assertEq(await page.getAttribute('.mainnav a[data-nav="contract"]', 'aria-current'), 'page', 'the nav link is current');
  });

  await check('one row per producer and code, with count, times and the latest example', async () => {
    const rows = await page.$$eval('#contract tbody tr', (trs) => trs.map((t) => ({
      key: `${t.dataset.system}|${t.dataset.instance}|${t.dataset.code}|${t.dataset.where}`,
      count: t.querySelector('[data-fig="count"]').textContent, text: t.textContent,
      link: t.querySelector('a[href^="#/dead-letters"]')?.getAttribute('href') || null,
      times: t.querySelectorAll('time').length })));
    const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
    assertEq(rows.map((r) => r.key).sort(), ['carrier|dhl-eu|INVALID_ID|dead letters', 'erp|(invalid)|MISSING_FIELD|dead letters',
      'wms|wms-dc2|INVALID_VALUE|dead letters', 'wms|wms-dc2|MISSING_FIELD|dead letters'], 'rows');
    const v = byKey['wms|wms-dc2|INVALID_VALUE|dead letters'];
    assertEq(v.count, '2', 'two INVALID_VALUE from wms-dc2');
    assert(v.text.includes('wms / wms-dc2') && v.text.includes('w-3') && v.text.includes('qtyShort'), `the latest example: ${v.text}`);
    assertEq(v.link, '#/dead-letters?seq=3', 'the link to the latest example');
    assertEq(v.times, 2, 'first and last seen');
    const totals = await page.textContent('#contract-totals');
    assert(totals.includes('5 dead letters') && totals.includes('3 producers'), `totals: ${totals}`);
  });

  await check('a hostile instance is "(invalid)" and never markup', async () => {
    assertEq(await page.$$eval('#main img', (i) => i.length), 0, 'images injected');
    assert(!(await page.textContent('#main')).includes('onerror'), 'the hostile instance shows');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'contract.png'), fullPage: true });
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
