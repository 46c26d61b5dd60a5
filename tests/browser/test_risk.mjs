#!/usr/bin/env node
// Real-browser test of predicted risk on the dashboard (docs/risk.md, web/js/pages/risk.js): Debian's Chromium
// driven by playwright-core, in UTC, against `towerd serve --no-nats` on a store folded offline from a trace of
// our own (deliveries of yesterday for the lead times, two orders raised at risk, one at risk then delivered).
//
// usage: node test_risk.mjs TOWERD [--artifacts DIR] [--slow N]
//
// Checks: the At risk tile counts the open at-risk orders and lists them latest against their promise first
// (by slack, not by age); the lead-times panel shows dc-2's median from PICKING; the order page says
// "expected 14:20, promised 12:00, waiting in PICKING at dc-2" with the basis; the view page lists the items
// with how late they are expected; a delivered order is in none of them.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, parseArgs, runOfflineServe } from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const { towerd: TOWERD, SLOW, artifacts: ARTIFACTS } = parseArgs('test_risk.mjs');
// Yesterday (UTC), so that the deliveries are in the lead-times window the server reads at its now.
const DAY = new Date(Date.now() - 86400000).toISOString().slice(0, 10);
const at = (hm) => `${DAY}T${hm}:00Z`;
let n = 0;
const ev = (system, time, payload, body, env) =>
  JSON.stringify({ eventId: `br-risk-${++n}`, occurredAt: time, source: { system }, ...env, [payload]: body });
const lines = [];
for (let i = 0; i < 5; i++) { // five deliveries from PICKING at dc-2, 4 h each
  const o = `BR-D${i}`, s = `${o}-S`;
  lines.push(ev('erp', at('01:00'), 'orderCreated', { warehouseId: 'dc-2' }, { orderId: o }),
    ev('wms', at('02:00'), 'pickStarted', {}, { orderId: o }),
    ev('wms', at('03:00'), 'packCompleted', {}, { orderId: o, shipmentId: s }),
    ev('carrier', at('06:00'), 'deliveryCompleted', {}, { shipmentId: s }));
}
const risk = (o, time, predicted, promised, basis) => ev('tower', time, 'orderAtRisk',
  { predictedBy: predicted, promisedBy: promised, stage: 'PICKING', basis }, { orderId: o });
for (const [o, promised] of [['BR-A', at('12:00')], ['BR-B', at('09:00')], ['BR-C', at('12:00')], ['BR-E', at('13:20')]]) {
  lines.push(ev('erp', at('07:00'), 'orderCreated', { warehouseId: 'dc-2', promisedBy: promised }, { orderId: o }),
    ev('wms', at('08:00'), 'pickStarted', {}, { orderId: o }));
}
// BR-A: 2 h 20 min late, raised at 08:30 (the newest); BR-B: 5 h 20 min late, raised at 08:10; BR-E: 1 h late, raised
// at 08:00 (the oldest): by slack B, A, E; by age E, B, A.
lines.push(risk('BR-A', at('08:30'), at('14:20'), at('12:00'), 'p50 of 25 orders from PICKING at dc-2'),
  risk('BR-E', at('08:00'), at('14:20'), at('13:20'), 'p50 of 25 orders from PICKING at dc-2'),
  risk('BR-B', at('08:10'), at('14:20'), at('09:00'), 'p50 of 25 orders from PICKING at dc-2'),
  risk('BR-C', at('08:20'), at('14:20'), at('12:00'), 'p50 of 25 orders from PICKING at dc-2'),
  ev('wms', at('09:00'), 'packCompleted', {}, { orderId: 'BR-C', shipmentId: 'BR-C-S' }),
  ev('carrier', at('11:00'), 'deliveryCompleted', {}, { shipmentId: 'BR-C-S' }));

await runOfflineServe({
  towerd: TOWERD, slow: SLOW, repo: REPO, lines, timezoneId: 'UTC', prefix: 'tower-br-risk-',
  checks: async (check, page, base) => {
    await check('the At risk tile: its count, and its orders latest against their promise first', async () => {
      await page.goto(base + '#/');
      await page.waitForSelector('.tile[data-view="at_risk"] [data-count="3"]');
      await page.waitForSelector('#risk-top li');
      const rows = await page.$$eval('#risk-top li', (ls) => ls.map((l) => [l.dataset.order, l.textContent]));
      assert(rows.map((r) => r[0]).join() === 'BR-B,BR-A,BR-E', `by slack: ${JSON.stringify(rows)}`);
      assert(/late by 5 h 20 min · PICKING/.test(rows[0][1]), `row: ${rows[0][1]}`);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'risk-overview.png'), fullPage: true });
    });

    await check('the lead-times panel: dc-2 from PICKING', async () => {
      await page.waitForSelector('#lead-times table tr[data-warehouse="dc-2"]');
      const cell = await page.$eval('#lead-times tr[data-warehouse="dc-2"] td[data-stage="PICKING"]', (td) => td.textContent);
      assert(/^(3 h 5\d min|4 h( \d min)?)$/.test(cell), `p50 from PICKING at dc-2 (4 h, within a bucket): ${cell}`);
    });

    await check('the order page says expected, promised, stage and warehouse, with the basis', async () => {
      await page.goto(base + '#/order/BR-A');
      await page.waitForSelector('#risk-line');
      const t = await page.textContent('#risk-line');
      assert(t.includes('expected 14:20, promised 12:00, waiting in PICKING at dc-2'), `line: ${t}`);
      assert(t.includes('Based on p50 of 25 orders from PICKING at dc-2'), `basis: ${t}`);
      assert(await page.$('#exceptions tr[data-view="at_risk"]'), 'the at_risk exception is listed');
      await page.screenshot({ path: join(ARTIFACTS, 'risk-order.png'), fullPage: true });
    });

    await check('the view page lists them latest against their promise first; a delivered order is not at risk', async () => {
      await page.goto(base + '#/view/at_risk');
      await page.waitForSelector('text=late by 5 h 20 min · PICKING');
      const body = await page.textContent('#main');
      assert(body.includes('BR-A') && body.includes('BR-B') && body.includes('BR-E') && !body.includes('BR-C'),
        'BR-A, BR-B and BR-E only');
      assert(await page.$eval('#f-sort', (s) => s.value) === 'slack', 'the page starts sorted by slack');
      const order = async () => page.$$eval('#main tbody tr[data-key]', (trs) => trs.map((tr) => tr.textContent.match(/BR-[A-Z]/)?.[0]));
      const got = await order();
      assert(got.join() === 'BR-B,BR-A,BR-E', `by slack: ${got}`);
      await page.selectOption('#f-sort', 'age');
      await page.waitForFunction(() => location.hash.includes('sort=age'));
      await page.waitForFunction(() => [...document.querySelectorAll('#main tbody tr[data-key]')]
        .map((tr) => tr.textContent.match(/BR-[A-Z]/)?.[0]).join() === 'BR-E,BR-B,BR-A');
      await page.goto(base + '#/order/BR-C');
      await page.waitForSelector('#entity[data-loaded="true"]');
      assert(!(await page.$('#risk-line')), 'BR-C was delivered: no risk line');
    });
  },
});
