#!/usr/bin/env node
// Real-browser test of the Reference data page (#/reference, web/js/pages/reference.js) and of warehouse times
// (util.js fmtAtWarehouse): Debian's Chromium driven by playwright-core, in the America/Los_Angeles zone, against
// `towerd serve --no-nats` on a store folded offline from master data and orders of our own.
//
// usage: node test_reference.mjs TOWERD [--artifacts DIR] [--slow N]
//
// Checks: the navigation opens the page; it lists the warehouses with their time zones and local times, the
// carriers, the skus (filtered), a hostile name and zone as text, and the unknown codes by code and producer with a runbook link; an order's
// open exception at a warehouse with a time zone shows its since in that zone, named; one at a warehouse
// without a zone shows none (the browser's zone only); the exception panel shows the warehouse time too.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, parseArgs, runOfflineServe } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const { towerd: TOWERD, SLOW } = parseArgs('test_reference.mjs');
let n = 0;
const ev = (system, instance, at, payload, body, env = {}) =>
  JSON.stringify({ eventId: `br-${++n}`, occurredAt: at, source: instance ? { system, instance } : { system }, ...env, [payload]: body });
const lines = [
  ev('mdm', 'mdm-1', '2026-11-27T06:00:00Z', 'warehouseDefined', { warehouseId: 'dc-1', name: 'Osaka DC', region: 'APAC', timeZone: 'Asia/Tokyo' }),
  ev('mdm', 'mdm-1', '2026-11-27T06:00:00Z', 'warehouseDefined', { warehouseId: 'dc-2', name: 'No zone DC' }),
  // Hostile: a zone no browser knows, with markup, and a name with markup: shown as text, times fall back.
  ev('mdm', 'mdm-1', '2026-11-27T06:00:00Z', 'warehouseDefined', { warehouseId: 'dc-3', name: '<img src=x onerror=alert(1)>', timeZone: 'Mars/Olympus<script>' }),
  ev('erp', 'erp-eu', '2026-11-27T08:00:00Z', 'orderApproved', { warehouseId: 'dc-3' }, { orderId: 'BR-O4' }),
  ev('mdm', 'mdm-1', '2026-11-27T06:00:00Z', 'carrierDefined', { carrierId: 'dhl', name: 'DHL Parcel' }),
  ev('mdm', 'mdm-1', '2026-11-27T06:00:00Z', 'skuDefined', { sku: 'SKU-1', unit: 'EA', name: 'Bolt' }),
  ev('mdm', 'mdm-1', '2026-11-27T06:00:00Z', 'skuDefined', { sku: 'SKU-2', unit: 'KG', name: 'Sand' }),
  // O1 at dc-1 (Tokyo), approved 08:00Z, not released: awaiting_release since 08:00Z = 17:00 in Tokyo.
  ev('erp', 'erp-eu', '2026-11-27T07:00:00Z', 'orderCreated', { lines: [{ sku: 'SKU-1', qty: 1 }], warehouseId: 'dc-1' }, { orderId: 'BR-O1' }),
  ev('erp', 'erp-eu', '2026-11-27T08:00:00Z', 'orderApproved', { warehouseId: 'dc-1' }, { orderId: 'BR-O1' }),
  // O2 at dc-2 (no zone).
  ev('erp', 'erp-eu', '2026-11-27T07:00:00Z', 'orderCreated', { lines: [{ sku: 'SKU-2', qty: 1 }], warehouseId: 'dc-2' }, { orderId: 'BR-O2' }),
  ev('erp', 'erp-eu', '2026-11-27T08:00:00Z', 'orderApproved', { warehouseId: 'dc-2' }, { orderId: 'BR-O2' }),
  // O3 names an undefined sku (ERP) and an undefined warehouse (WMS).
  ev('erp', 'erp-eu', '2026-11-27T09:00:00Z', 'orderCreated', { lines: [{ sku: 'SKU-NOPE', qty: 1 }] }, { orderId: 'BR-O3' }),
  ev('wms', 'wms-dc9', '2026-11-27T09:30:00Z', 'pickStarted', { warehouseId: 'dc-9' }, { orderId: 'BR-O3' }),
];

await runOfflineServe({
  towerd: TOWERD, slow: SLOW, repo: REPO, lines, timezoneId: 'America/Los_Angeles', prefix: 'tower-br-ref-',
  checks: async (check, page, base) => {
    await check('the navigation opens the page: warehouses with zones, carriers, skus', async () => {
      await page.goto(base + '#/');
      await page.click('.mainnav a[data-nav="reference"]');
      await page.waitForSelector('#main[data-loaded="reference"] #reference-warehouses');
      const wh = await page.$$eval('#reference-warehouses tbody tr', (rs) => rs.map((r) => [...r.children].map((c) => c.textContent)));
      assert(wh.length === 3 && wh[0][0] === 'dc-1' && wh[0][3] === 'Asia/Tokyo', `warehouses: ${JSON.stringify(wh)}`);
      assert(wh[2][1] === '<img src=x onerror=alert(1)>' && wh[2][3] === 'Mars/Olympus<script>', `hostile text: ${JSON.stringify(wh[2])}`);
      assert((await page.$$('#reference-warehouses img, #reference-warehouses script')).length === 0, 'markup stays text');
      assert(/ GMT\+9$/.test(wh[0][4]), `dc-1's local time names its zone: ${wh[0][4]}`);
      assert(/not defined/.test(wh[1][3]) && wh[1][4] === '—', `dc-2 has no zone: ${JSON.stringify(wh[1])}`);
      const ca = await page.$$eval('#reference-carriers tbody tr', (rs) => rs.map((r) => r.dataset.carrier));
      assert(ca.join() === 'dhl', `carriers: ${ca}`);
      await page.fill('#sku-filter', 'sand');
      const skus = await page.$$eval('#reference-skus-table tbody tr', (rs) => rs.map((r) => r.textContent));
      assert(skus.length === 1 && /SKU-2KGSand/.test(skus[0]), `filtered skus: ${skus}`);
    });

    await check('the unknown codes by code and producer, with what to do and the runbook', async () => {
      const rows = await page.$$eval('#reference-unknown-table tbody tr', (rs) => rs.map((r) => ({
        kind: r.dataset.kind, code: r.dataset.code, producer: r.children[2].textContent, count: r.children[3].textContent,
        runbook: r.querySelector('a[href^="#/runbook/"]') && r.querySelector('a[href^="#/runbook/"]').getAttribute('href'),
        order: r.querySelector('a[href^="#/order/"]') && r.querySelector('a[href^="#/order/"]').textContent })));
      rows.sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0)); // sku, then warehouse
      assert(rows.length === 2, `rows: ${JSON.stringify(rows)}`);
      assert(rows[0].code === 'SKU-NOPE' && rows[0].kind === 'sku' && rows[0].producer === 'erp / erp-eu' && rows[0].count === '1' &&
        rows[0].order === 'BR-O3', `sku row: ${JSON.stringify(rows[0])}`);
      assert(rows[1].code === 'dc-9' && rows[1].producer === 'wms / wms-dc9' && rows[1].runbook === '#/runbook/rule/UNKNOWN_CODE',
        `warehouse row: ${JSON.stringify(rows[1])}`);
      await page.click('#reference-unknown-table a[href="#/runbook/rule/UNKNOWN_CODE"]');
      await page.waitForSelector('#runbook[data-id="rule/UNKNOWN_CODE"] h2');
    });

    await check('an order at a warehouse with a zone: its times in that zone, named', async () => {
      await page.goto(base + '#/order/BR-O1');
      await page.waitForSelector('#exceptions tbody tr');
      const t = await page.$$eval('#exceptions .wh-time', (xs) => xs.map((x) => x.textContent));
      assert(t.includes('dc-1: 2026-11-27 17:00:00 GMT+9 (Asia/Tokyo)'), `warehouse times: ${JSON.stringify(t)}`);
      const plain = await page.$eval('#exceptions tbody tr td:nth-child(3)', (td) => td.firstChild.textContent);
      assert(plain === '2026-11-27 00:00:00', `the browser's zone stays beside it: ${plain}`);
      await page.goto(base + '#/order/BR-O2');
      await page.waitForSelector('#exceptions tbody tr');
      assert((await page.$$('#exceptions .wh-time')).length === 0, 'a warehouse without a zone: the browser\'s zone only');
      await page.goto(base + '#/order/BR-O4');
      await page.waitForSelector('#exceptions tbody tr');
      assert((await page.$$('#exceptions .wh-time')).length === 0, 'a zone the browser does not know: the browser\'s zone only');
    });

    await check('the exception panel shows the warehouse time', async () => {
      await page.goto(base + '#/order/BR-O1');
      await page.waitForSelector('#exceptions a.ex-link');
      await page.click('#exceptions tr[data-view="awaiting_release"] a.ex-link');
      await page.waitForSelector('.wh-time');
      const t = await page.textContent('.panel .wh-time, #panel .wh-time, .wh-time');
      assert(t === '2026-11-27 17:00:00 GMT+9 (Asia/Tokyo)', `panel: ${t}`);
    });
  },
});
