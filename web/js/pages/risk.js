// Predicted risk on the dashboard (docs/risk.md): the one-line explanation of an at_risk item, the At risk
// tile's list of the orders latest against their promise (by slack), and the small lead-times panel.
import { api } from '../api.js';
import { h, fmtTime, fmtDuration, parseTime } from '../util.js';

/** "14:20", or "11-28 14:20" when not on the day of `ref` (both in the dashboard's zone). */
function hm(s, ref) {
  const t = fmtTime(s);
  if (t === '—') return '?';
  return ref && fmtTime(ref).slice(0, 10) !== t.slice(0, 10) ? t.slice(5, 16) : t.slice(11, 16);
}

/** "expected 14:20, promised 12:00, waiting in PICKING at dc-2" for an at_risk item ('' for any other). */
export function riskLine(it) {
  if (!it || !it.predictedBy) return '';
  return `expected ${hm(it.predictedBy, it.promisedBy)}, promised ${hm(it.promisedBy, it.promisedBy)}, ` +
    `waiting in ${it.stage || '?'}${it.warehouseId ? ' at ' + it.warehouseId : ''}`;
}

/** The short form for tables: "late by 2 h 20 min · PICKING" ('' for an item that is not at_risk). */
export function riskDetail(it) {
  if (!it || !it.predictedBy) return '';
  const s = slackMs(it);
  return `${Number.isFinite(s) && s < 0 ? 'late by ' + fmtDuration(-s) : 'in time'} · ${it.stage || '?'}`;
}

/** promisedBy - predictedBy in ms (negative: predicted late); NaN when either is missing. */
export function slackMs(it) {
  return parseTime(it && it.promisedBy) - parseTime(it && it.predictedBy);
}

/** The items sorted by slack, the latest against their promise first (then by order id). */
export function bySlack(items) {
  return [...items].sort((a, b) => (slackMs(a) - slackMs(b)) || String(a.orderId).localeCompare(String(b.orderId)));
}

/** The order page's line about an at_risk exception, with what the prediction rests on; null when none. */
export function riskBanner(exceptions) {
  const it = (exceptions || []).find((x) => x.view === 'at_risk');
  if (!it) return null;
  return h('p', { class: 'next-step compact risk-line', id: 'risk-line', role: 'status' },
    h('strong', {}, 'At risk: '), riskLine(it), '. ',
    h('span', { class: 'muted small', id: 'risk-basis' }, it.basis ? `Based on ${it.basis}.` : ''));
}

/** Fills a box inside the At risk tile with the 3 orders latest against their promise (by slack). */
export async function fillRiskTile(box, count) {
  if (!box) return;
  if (!count) {
    box.replaceChildren();
    return;
  }
  let body;
  try {
    body = await api('/views/at_risk?limit=1000&state=all');
  } catch {
    return; // the tile's count still says how many
  }
  const rows = bySlack(body.items || []).slice(0, 3);
  box.replaceChildren(h('ol', { class: 'risk-top', 'aria-label': 'Latest against their promise' }, rows.map((it) => {
    return h('li', { 'data-order': it.orderId || '' }, h('span', { class: 'mono' }, it.orderId || '?'), ` · ${riskDetail(it)}`);
  })));
}

/** The lead-times panel: p50 from each stage to delivery per warehouse, over the last 7 days. */
export function leadTimesPanel() {
  const box = h('div', { class: 'breakdown-body', id: 'lead-times' }, h('p', { class: 'note' }, 'Loading…'));
  const section = h('section', { 'aria-labelledby': 'lt-h' }, h('h2', { id: 'lt-h' }, 'Lead times (p50 to delivery, 7 days)'), box);
  async function load() {
    let body;
    try {
      body = await api('/leadtimes');
    } catch (e) {
      box.replaceChildren(h('p', { class: 'note' }, `Lead times could not be loaded: ${e.message}`));
      return;
    }
    const keys = (body.keys || []).filter((k) => !k.carrierId);
    if (!keys.length) {
      box.replaceChildren(h('p', { class: 'note' }, 'No delivery in the last 7 days yet: predictions use the SLA windows.'));
      return;
    }
    const stages = [...new Set(keys.map((k) => k.stage))];
    const whs = [...new Set(keys.map((k) => k.warehouseId))].sort();
    const cell = (wh, stage) => keys.find((k) => k.warehouseId === wh && k.stage === stage);
    box.replaceChildren(h('table', { class: 'grid num-table', 'data-leadtimes': '' },
      h('caption', { class: 'sr-only' }, 'Median time from entering each stage to delivery, per warehouse'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Warehouse'), stages.map((s) => h('th', { scope: 'col', class: 'num' }, s)))),
      h('tbody', {}, whs.map((wh) => h('tr', { 'data-warehouse': wh }, h('th', { scope: 'row' }, wh || '—'), stages.map((s) => {
        const k = cell(wh, s);
        return h('td', { class: 'num', 'data-stage': s, title: k ? `${k.samples} orders` : null },
          k && Number.isFinite(k.p50Seconds) ? fmtDuration(k.p50Seconds * 1000) : '—');
      }))))));
  }
  return { section, load };
}
