#!/usr/bin/env node
// Real-browser tests of what supervisors tripped over on the dashboard (web/): Debian's Chromium driven by
// playwright-core against a real nats-server + `towerd projector` + `towerd serve`, both started with the
// same --sla-rules file (release: 1000 days), fed a generated trace and a few orders of our own.
//
// usage: node test_usability.mjs TOWERD [--artifacts DIR] [--slow N] [CHECK_NAME_SUBSTRING...]
//
// Checks: the SLA colours follow the rules the server serves (not durations built into the page); the
// warehouse and carrier filters offer the view's values and match them ignoring case; the customer, reason,
// channel and SLA-state filters give the API's answers; sortable headings sort on the server; tile captions
// are whole and the clock stays on one line; the demo clock says "60× speed"; the timeline says "SLA
// breached"; times are local with the zone named, UTC on request (kept across reloads); an empty filtered
// page says why and offers what to try; the overview says where to start. Exit 0 when every check passed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  log, run, start, stop, tempdir, http, until, tail, parseArgs, Checks, assert, assertEq, launchChromium,
  startStack, stopStack,
} from './harness.mjs';
import { warpLabel } from '../../web/js/clock.js';
import { eventLabel } from '../../web/js/views.js';

const HERE = dirname(fileURLToPath(import.meta.url));
// TOWER_TEST_WEB: another copy of the dashboard (to see these checks fail on the files before a fix).
const WEB = process.env.TOWER_TEST_WEB || join(resolve(HERE, '..', '..'), 'web');
const ZONE = 'America/New_York'; // local time that is not UTC, so that a page showing UTC is told apart

const { towerd: TOWERD, artifacts: ARTIFACTS, slow, only } = parseArgs('test_usability.mjs');
const C = new Checks({ only, watchdogMs: slow(100000) });
const check = C.check.bind(C);

// --- the fixture
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const DAY = 86400000;

/** Six approved orders of ours at dc-2, 1 to 6 days old: customers CU-Alpha (1, 2) and CU-Beta, channels EDI (1-3) and SERVICE. */
function ownLines(nowMs) {
  const lines = [];
  for (let k = 1; k <= 6; k++) {
    const id = `UX-${k}`, at = nowMs - k * DAY;
    const src = { system: 'erp', instance: 'ux' };
    lines.push(JSON.stringify({ eventId: `ux-c-${k}`, occurredAt: iso(at - 60000), source: src, orderId: id,
      orderCreated: { customerId: k <= 2 ? 'CU-Alpha' : 'CU-Beta', channel: k <= 3 ? 'EDI' : 'SERVICE',
        lines: [{ sku: 'SKU-UX', qty: 1 }], warehouseId: 'dc-2' } }));
    lines.push(JSON.stringify({ eventId: `ux-a-${k}`, occurredAt: iso(at), source: src, orderId: id,
      orderApproved: { warehouseId: 'dc-2' } }));
  }
  return lines;
}

const S = {};

async function api(path) {
  const r = await http(S.serve.port, '/api/v1' + path);
  if (r.status !== 200) throw new Error(`GET /api/v1${path} -> ${r.status} ${r.text.slice(0, 300)}`);
  return r.body;
}

async function setup() {
  S.root = tempdir('tower-ux-');
  log('fixture in', S.root);
  // Release within 1000 days: nothing of the trace is late for release, although the built-in 15 min says so.
  S.rules = join(S.root, 'sla.rules');
  writeFileSync(S.rules, '[rule release]\nwithin = 1000d\n');
  await startStack(S, { towerd: TOWERD, slow, web: WEB, gen: ['--seed', '20261206', '--orders', '80'],
    lines: () => ownLines(Date.now()), projectorExtra: ['--sla-rules', S.rules], serveExtra: ['--sla-rules', S.rules],
    setPhase: (p) => { C.phase = p; } });
  C.phase = 'launching Chromium';
  S.browser = await launchChromium();
  S.context = await S.browser.newContext({ viewport: { width: 1920, height: 1080 }, timezoneId: ZONE });
  S.context.setDefaultTimeout(slow(10000));
  S.errors = [];
  S.base = `http://127.0.0.1:${S.serve.port}`;
  mkdirSync(ARTIFACTS, { recursive: true });
}

async function newPage(path, context = S.context) {
  const page = await context.newPage();
  page.on('pageerror', (e) => S.errors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy/.test(m.text())) S.errors.push(`CSP: ${m.text()}`); });
  if (path !== undefined) await page.goto(S.base + '/' + path);
  return page;
}

async function waitTable(page) {
  await page.waitForSelector('#items[data-loaded="true"]:not([aria-busy])', { timeout: slow(10000) });
}

const rowKeys = (page) => page.$$eval('#items tbody tr[data-key]', (rows) => rows.map((r) => r.dataset.key));

/** The rows' keys once they are `want` (or after the wait, whatever they are: the caller asserts them). A page
 * that changed its hash remounts and reloads its table: the old table can pass waitTable just before. */
async function settledKeys(page, want) {
  await page.waitForFunction((w) => JSON.stringify([...document.querySelectorAll('#items tbody tr[data-key]')]
    .map((r) => r.dataset.key)) === w, JSON.stringify(want), { timeout: slow(10000) }).catch(() => {});
  return rowKeys(page);
}

async function checks() {
  await check('the SLA colours follow the rules the server serves', async () => {
    const rules = await api('/sla/rules');
    assertEq([rules.source, rules.views.awaiting_release.rule, rules.views.awaiting_release.withinSeconds],
      ['file', 'release', 1000 * 86400], 'GET /api/v1/sla/rules for awaiting_release');
    const s = await api('/summary');
    assert(s.views.awaiting_release.count >= 6 && s.views.awaiting_release.breached === 0,
      `awaiting_release: ${JSON.stringify(s.views.awaiting_release)}`);
    const ov = await newPage('#/');
    await ov.waitForSelector('.ov-grid[data-loaded="true"]');
    // Days old, so 15 min would say breached; the server's 1000 days say OK.
    await ov.waitForSelector('.tile[data-view="awaiting_release"][data-state="ok"]', { timeout: slow(5000) })
      .catch(async () => { throw new Error(`tile state ${await ov.getAttribute('.tile[data-view="awaiting_release"]', 'data-state')}, want ok`); });
    const foot = await ov.textContent('.tile[data-view="awaiting_release"] .tile-foot');
    assert(/1000 days/.test(foot), `the tile does not say the served duration: "${foot}"`);
    const vp = await newPage('#/view/awaiting_release?state=all');
    await waitTable(vp);
    const states = await vp.$$eval('#items tbody tr[data-key]', (rows) => [...new Set(rows.map((r) => r.dataset.state))]);
    assertEq(states, ['ok'], 'the row SLA states of awaiting_release');
    await ov.close();
    await vp.close();
  });

  await check('warehouse and carrier filters offer the values and match them ignoring case', async () => {
    const vals = await api('/values?view=awaiting_release');
    assert(vals.warehouses.some((w) => w.id === 'dc-2'), `values: ${JSON.stringify(vals.warehouses)}`);
    const want = (await api('/views/awaiting_release?state=all&warehouse=dc-2&limit=1000')).items.map((i) => i.key);
    assert(want.length >= 6, `dc-2 has ${want.length} items`);
    const upper = await api('/views/awaiting_release?state=all&warehouse=DC-2&limit=1000');
    assertEq(upper.items.map((i) => i.key), want, 'the API for warehouse=DC-2');
    const page = await newPage('#/view/awaiting_release?state=all&warehouse=DC-2');
    await waitTable(page);
    assertEq(await settledKeys(page, want.slice(0, 100)), want.slice(0, 100), 'the rows for warehouse=DC-2');
    const opts = await page.$$eval('#f-warehouse option', (os) => os.map((o) => o.value));
    for (const w of vals.warehouses) assert(opts.includes(w.id), `the warehouse choices ${JSON.stringify(opts)} lack ${w.id}`);
    const carriers = await page.$$eval('#f-carrier option', (os) => os.map((o) => o.value).filter(Boolean));
    assertEq(carriers, vals.carriers.map((c) => c.id), 'the carrier choices');
    await page.close();
  });

  await check('customer, reason, channel and SLA filters give the API answers', async () => {
    const page = await newPage('#/view/awaiting_release?state=all');
    await waitTable(page);
    const cases = [
      ['f-channel', 'EDI', 'channel=EDI', ['o:UX-1', 'o:UX-2', 'o:UX-3']],
      ['f-sla', 'within', 'sla=within', null],
    ];
    for (const [id, value, q, mustHave] of cases) {
      await page.goto(S.base + '/#/view/awaiting_release?state=all');
      await waitTable(page);
      await page.selectOption('#' + id, value);
      await page.waitForFunction((qq) => location.hash.includes(qq), q);
      await waitTable(page);
      const want = (await api(`/views/awaiting_release?state=all&${q}`)).items.map((i) => i.key);
      assertEq(await settledKeys(page, want), want, `the rows for ${q}`);
      for (const m of mustHave || []) assert(want.some((k) => k.startsWith(m + '|')), `${q}: ${m} missing from ${JSON.stringify(want)}`);
    }
    await page.goto(S.base + '/#/view/awaiting_release?state=all');
    await waitTable(page);
    await page.fill('#f-customer', 'cu-alpha');
    await page.press('#f-customer', 'Enter');
    await page.waitForFunction(() => location.hash.includes('customer=cu-alpha'));
    await waitTable(page);
    const keys = await rowKeys(page);
    assertEq(keys.map((k) => k.split('|')[0]).sort(), ['o:UX-1', 'o:UX-2'], 'the rows of customer cu-alpha');
    // The breached view has items with reasons: the reason choice lists them, the filter keeps them.
    const vals = await api('/values?view=blocked');
    if (vals.reasons.length) {
      const r = vals.reasons[0];
      await page.goto(S.base + `/#/view/blocked?state=all&reason=${encodeURIComponent(r.id.toLowerCase())}`);
      await waitTable(page);
      const want = (await api(`/views/blocked?state=all&reason=${encodeURIComponent(r.id)}&limit=100`)).items.map((i) => i.key);
      assert(want.length === r.count || want.length === 100, `reason ${r.id}: ${want.length} items, values say ${r.count}`);
      assertEq(await settledKeys(page, want), want, `the rows for reason ${r.id}`);
    }
    await page.close();
  });

  await check('sortable headings sort on the server', async () => {
    const page = await newPage('#/view/missing_pod?state=all');
    await waitTable(page);
    // Age from another order sorts oldest first (no sort= at all); again, newest first.
    for (const [col, sort] of [['.c-carrier', 'carrier'], ['.c-warehouse', 'warehouse'], ['.c-sla', 'priority'], ['.c-age', 'age'],
      ['.c-age', 'newest']]) {
      await page.click(`#items thead th${col} button.sort`);
      await page.waitForFunction((s) => (s === 'age' ? !location.hash.includes('sort=') : location.hash.includes('sort=' + s)), sort);
      await waitTable(page);
      const want = (await api(`/views/missing_pod?state=all&sort=${sort}`)).items.map((i) => i.key);
      assertEq(await settledKeys(page, want), want, `the rows sorted by ${sort}`);
      const aria = await page.getAttribute(`#items thead th${col}`, 'aria-sort');
      assert(aria === 'ascending' || aria === 'descending', `the ${sort} heading has aria-sort "${aria}"`);
    }
    const wh = await api('/views/missing_pod?state=all&sort=warehouse&limit=1000');
    const ids = wh.items.map((i) => i.warehouseId || '\uffff');
    assertEq(ids, [...ids].sort(), 'sort=warehouse orders by warehouse');
    await page.close();
  });

  await check('tile captions are whole and the clock stays on one line', async () => {
    for (const width of [1920, 1180, 900]) {
      const ctx = await S.browser.newContext({ viewport: { width, height: 900 }, timezoneId: ZONE });
      const page = await newPage('#/', ctx);
      await page.waitForSelector('.ov-grid[data-loaded="true"]');
      const cut = await page.$$eval('.tile-foot span', (els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1)
        .map((e) => `${e.closest('.tile').dataset.view}: "${e.textContent}"`));
      assertEq(cut, [], `captions cut at ${width} px`);
      await page.goto(S.base + '/#/view/blocked');
      await waitTable(page);
      const lines = await page.evaluate(() => {
        const c = document.getElementById('clock');
        const lh = parseFloat(getComputedStyle(c).fontSize) * 1.6;
        return { h: c.getBoundingClientRect().height, lh, text: c.textContent };
      });
      assert(lines.h < lines.lh, `at ${width} px the clock "${lines.text}" takes ${lines.h} px (one line is under ${lines.lh})`);
      await ctx.close();
    }
  });

  await check('the demo clock says its speed cleanly', async () => {
    assertEq([warpLabel(61.3, false), warpLabel(60, true), warpLabel(3.02, false), warpLabel(2.5, true)],
      ['60× speed', '60× speed', '3× speed', '2.5× speed'], 'warp labels');
    const page = await S.context.newPage();
    page.on('pageerror', (e) => S.errors.push(`warp: ${e.message}`));
    // A server in demo mode says its warp in the summary (towerd up --warp 60).
    await page.route('**/api/v1/summary', async (route) => {
      const res = await route.fetch();
      const body = await res.json();
      await route.fulfill({ response: res, json: { ...body, warp: 60 } });
    });
    await page.goto(S.base + '/#/');
    await page.waitForSelector('#warp:not([hidden])');
    assertEq(await page.textContent('#warp'), '60× speed', 'the warp label');
    await page.close();
  });

  await check('the timeline says "SLA breached"', async () => {
    assertEq([eventLabel('slaBreached'), eventLabel('podCaptured'), eventLabel('orderHoldReleased')],
      ['SLA breached', 'POD captured', 'Order hold released'], 'event labels');
    const b = (await api('/views/sla_breaches?state=all')).items.find((i) => i.orderId);
    assert(b, 'no SLA breach of an order in the trace');
    const page = await newPage('#/order/' + encodeURIComponent(b.orderId));
    await page.waitForSelector('#entity[data-loaded="true"]');
    const said = await page.$$eval('#timeline tr[data-type="slaBreached"] td:nth-child(4)', (tds) => tds.map((t) => t.textContent));
    assert(said.length > 0 && said.every((t) => t === 'SLA breached'), `the timeline says ${JSON.stringify(said)}`);
    await page.close();
  });

  await check('times are local with the zone named, UTC on request, kept across reloads', async () => {
    const page = await newPage('#/view/awaiting_release?state=all');
    await waitTable(page);
    const zone = await page.evaluate(() => new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' })
      .formatToParts(new Date()).find((p) => p.type === 'timeZoneName').value);
    assert(zone !== 'UTC', `the browser zone is ${zone}`);
    const head = () => page.textContent('#items thead th.c-since');
    const first = () => page.$eval('#items tbody tr[data-key]', (tr) => ({ shown: tr.querySelector('.c-since').textContent, since: tr._item.since }));
    await page.waitForFunction((z) => document.getElementById('clock').textContent.endsWith(' ' + z), zone);
    assert((await head()).includes(`(${zone})`), `the since heading "${await head()}" does not name ${zone}`);
    let f = await first();
    const local = await page.evaluate((s) => {
      const d = new Date(s), p = (n) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
    }, f.since);
    assertEq(f.shown, local, 'a since cell in local time');
    await page.click('#tz-toggle');
    await waitTable(page);
    await page.waitForFunction(() => document.getElementById('clock').textContent.endsWith(' UTC'));
    f = await first();
    assertEq(f.shown, f.since.replace('T', ' ').replace(/(\.\d+)?Z$/, ''), 'a since cell in UTC');
    assert((await head()).includes('(UTC)'), `the heading says "${await head()}"`);
    assertEq(await page.evaluate(() => localStorage.getItem('tower.tz')), 'utc', 'the choice kept');
    await page.reload();
    await waitTable(page);
    await page.waitForFunction(() => document.getElementById('clock').textContent.endsWith(' UTC'));
    assertEq(await page.getAttribute('#tz-toggle', 'aria-pressed'), 'true', 'the toggle after a reload');
    await page.click('#tz-toggle'); // back to local for the other checks
    await page.close();
  });

  await check('an empty page says why and what to try', async () => {
    const page = await newPage('#/view/awaiting_release?state=all&warehouse=nowhere');
    await waitTable(page);
    await page.waitForSelector('#empty-help .unknown-value');
    const text = await page.textContent('#empty-help');
    assert(/warehouse nowhere/.test(text) && /No item of this view has warehouse/.test(text), `the empty page says "${text}"`);
    await page.click('#empty-help button[data-try="warehouse"]');
    await page.waitForFunction(() => !location.hash.includes('warehouse='));
    await waitTable(page);
    assert((await rowKeys(page)).length > 0, 'dropping the filter shows no row');
    await page.goto(S.base + '/#/view/posting_failed?state=all');
    await waitTable(page);
    if ((await api('/views/posting_failed?state=all')).count === 0) {
      const t = await page.textContent('#empty-help');
      assert(/This view is empty/.test(t) && /overview/.test(t), `an empty view says "${t}"`);
    }
    await page.goto(S.base + '/#/');
    await page.waitForSelector('#ov-next-link');
    const next = await page.textContent('#ov-next');
    assert(/^Start here:/.test(next), `the overview's next step says "${next}"`);
    await page.screenshot({ path: join(ARTIFACTS, 'usability-overview.png') });
    await page.close();
  });

  await check('no uncaught JavaScript error and no CSP violation', async () => {
    assertEq(S.errors, [], 'page errors');
  });
}

async function teardown() {
  C.phase = 'teardown';
  return stopStack(S);
}

await C.main(setup, checks, teardown, () => [['towerd serve log', S.serve && S.serve.logPath, 30]]);
