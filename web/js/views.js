// What the views are, how they are labelled, and their SLA state: by the SLA rules the server serves
// (GET /api/v1/sla/rules, the same rules the projector dates items with), and by each item's slaDueAt.
import { api } from './api.js';
import { now } from './clock.js';
import { parseTime } from './util.js';
import { riskDetail } from './pages/risk.js';

const MIN = 60000, HOUR = 60 * MIN;

/**
 * One entry per view, in the order the overview shows them. `sla` is the business-milestone rule whose
 * default duration judges an item's age (docs/contract.md "SLA rules"); views without a rule are
 * "needs review" when not empty and never breach by age; sla_breaches are breached by definition.
 * `next` is what to do about one of its items (the exception panel shows it).
 */
export const VIEWS = [
  { id: 'awaiting_release', label: 'Awaiting release', entity: 'order',
    next: 'Release the order to its warehouse in the ERP, or find out who holds it back.',
    what: 'Approved orders not yet released to a warehouse', sla: { rule: 'release', ms: 15 * MIN } },
  { id: 'blocked', label: 'Blocked', entity: 'order',
    next: 'Clear the hold or the inventory short at the warehouse: replenish, substitute or split the order.',
    // No SLA of its own (the server dates no blocked item: a block is not a milestone); late readiness
    // shows as an item of sla_breaches.
    what: 'Order holds, inventory shorts and blocked shipments', sla: null },
  { id: 'pending_route', label: 'Pending route', entity: 'shipment',
    next: 'Plan a route for the shipment in the route planner, or hand it to a carrier.',
    what: 'Ready shipments without a planned route', sla: { rule: 'routing', ms: 1 * HOUR } },
  { id: 'missing_pod', label: 'Missing POD', entity: 'shipment',
    next: 'Ask the carrier for the proof of delivery.',
    what: 'Delivered shipments without proof of delivery', sla: { rule: 'pod', ms: 24 * HOUR } },
  { id: 'posting_failed', label: 'Posting failed', entity: 'order',
    next: 'Fix the invoice in finance and post it again.',
    what: 'Invoices that failed to post to finance', sla: { rule: 'posting_recovery', ms: 1 * HOUR } },
  { id: 'anomalies', label: 'Anomalies', entity: 'order',
    next: 'Ask the reporting system which milestone is wrong, and correct it at the source.',
    what: 'Milestones in an impossible order', sla: null },
  { id: 'orphans', label: 'Orphan shipments', entity: 'shipment',
    next: 'Link the shipment to its order at the source (WMS or ERP).',
    what: 'Shipments no event links to an order', sla: null },
  { id: 'dead_letters', label: 'Dead letters', entity: 'event',
    next: 'Correct the event and redrive it, or resolve it when it is not needed.',
    what: 'Rejected events waiting for correction', sla: null },
  { id: 'sla_breaches', label: 'SLA breaches', entity: 'order',
    next: 'Act on the late milestone now, and warn the customer if the promise is at risk.',
    what: 'Open breaches of a milestone SLA', sla: null, alwaysBreached: true },
  { id: 'at_risk', label: 'At risk', entity: 'order',
    next: 'Speed the order up (expedite picking, change the carrier), or tell the customer the promise will slip.',
    what: 'Open orders predicted to miss their promised delivery', sla: null },
  { id: 'mismatches', label: 'Mismatches', entity: 'order',
    next: 'Compare what the system says with the order page: re-send the event the tower lacks, or correct the system; the next reconciliation clears it.',
    what: 'Orders a system\'s snapshot disagrees with the tower on (towerd reconcile)', sla: null },
];

export const VIEW_BY_ID = Object.fromEntries(VIEWS.map((v) => [v.id, v]));

/** Share of the SLA duration from which an item is "warning" (the server's dueSoonShare replaces it). */
export let WARNING_SHARE = 0.75;

let rulesState = { loaded: false, source: 'built-in', pending: null };

/**
 * Takes the SLA rules the server serves (GET /api/v1/sla/rules): each view's rule and its duration replace
 * the built-in defaults, so that the colours agree with the breaches the server raises.
 */
export function setSlaRules(body) {
  if (!body || !body.views) return;
  for (const v of VIEWS) {
    const r = body.views[v.id];
    if (!r || v.alwaysBreached) continue;
    v.sla = r.rule && Number.isFinite(r.withinSeconds) ? { rule: r.rule, ms: r.withinSeconds * 1000 } : null;
    v.slaOff = !!r.rule && !Number.isFinite(r.withinSeconds); // the rule is disabled: no SLA for this view
  }
  if (Number.isFinite(body.dueSoonShare) && body.dueSoonShare > 0 && body.dueSoonShare < 1) WARNING_SHARE = body.dueSoonShare;
  rulesState.loaded = true;
  rulesState.source = body.source || 'server';
}

/** Asks the server for its SLA rules once (no token prompt); resolves true when they were taken. */
export function loadSlaRules() {
  if (rulesState.loaded) return Promise.resolve(true);
  if (!rulesState.pending) {
    rulesState.pending = api('/sla/rules', { noPrompt: true })
      .then((b) => { setSlaRules(b); return true; })
      .catch(() => false)
      .finally(() => { rulesState.pending = null; });
  }
  return rulesState.pending;
}

export function slaRulesLoaded() { return rulesState.loaded; }
/** Where the SLA durations come from: "file" or "defaults" (the server's), or "built-in" (not asked yet). */
export function slaRulesSource() { return rulesState.source; }

/**
 * The SLA state of one item: from its slaDueAt when it has one (the projector dated it with the server's
 * rules, scopes included): breached from the due time, warning from WARNING_SHARE of the time allowed;
 * else by its age against its view's rule.
 */
export function itemSla(viewId, it) {
  const v = VIEW_BY_ID[viewId];
  if (!v) return 'ok';
  if (v.alwaysBreached) return 'breached';
  const due = parseTime(it && it.slaDueAt), since = parseTime(it && it.since);
  if (Number.isFinite(due)) {
    const t = now();
    if (t >= due) return 'breached';
    if (Number.isFinite(since) && due > since && t - since >= WARNING_SHARE * (due - since)) return 'warning';
    return 'ok';
  }
  return slaState(viewId, Number.isFinite(since) ? Math.max(0, now() - since) : NaN);
}

/**
 * The SLA state of a tile from the summary of its view: breached when the server counts breached items
 * (their due time passed), else by the oldest item's age against the view's rule.
 */
export function tileSla(viewId, s) {
  if (!s || !s.count) return 'ok';
  const v = VIEW_BY_ID[viewId];
  if (v && v.sla && typeof s.breached === 'number' && s.breached > 0) return 'breached';
  const a = s.oldestSince ? Math.max(0, now() - parseTime(s.oldestSince)) : NaN;
  return slaState(viewId, a, s.count);
}

/** The SLA state of an item (or of a tile, given its oldest item's age): 'ok' | 'warning' | 'breached'. */
export function slaState(viewId, ageMs, count = 1) {
  const v = VIEW_BY_ID[viewId];
  if (!v || !count) return 'ok';
  if (v.alwaysBreached) return 'breached';
  if (v.slaOff) return 'ok';
  if (!v.sla) return 'warning';
  if (!Number.isFinite(ageMs)) return 'ok';
  if (ageMs >= v.sla.ms) return 'breached';
  if (ageMs >= v.sla.ms * WARNING_SHARE) return 'warning';
  return 'ok';
}

/** The words that go with a state (never colour alone). */
export function stateLabel(viewId, state) {
  const v = VIEW_BY_ID[viewId];
  if (state === 'breached') return 'Breached';
  if (state === 'warning') return v && !v.sla && !v.slaOff && !v.alwaysBreached ? 'Review' : 'Due soon';
  return 'OK';
}

/** The icon of a state: an inline SVG shape that differs by form, not only by colour. */
export function stateIcon(state) {
  const ns = 'http://www.w3.org/2000/svg';
  const s = document.createElementNS(ns, 'svg');
  s.setAttribute('viewBox', '0 0 20 20');
  s.setAttribute('class', 'icon');
  s.setAttribute('aria-hidden', 'true');
  s.setAttribute('focusable', 'false');
  const p = document.createElementNS(ns, 'path');
  if (state === 'breached') {
    // An octagon (stop sign) with a cross.
    p.setAttribute('d', 'M6 1h8l5 5v8l-5 5H6l-5-5V6z M6.5 5L5 6.5 8.5 10 5 13.5 6.5 15 10 11.5 13.5 15 15 13.5 11.5 10 15 6.5 13.5 5 10 8.5z');
    p.setAttribute('fill-rule', 'evenodd');
  } else if (state === 'warning') {
    // A triangle with an exclamation mark.
    p.setAttribute('d', 'M10 1L19.5 18H.5z M9 7h2v6H9z M9 14.5h2v2H9z');
    p.setAttribute('fill-rule', 'evenodd');
  } else {
    // A circle with a check mark.
    p.setAttribute('d', 'M10 1a9 9 0 1 1 0 18a9 9 0 1 1 0-18z M5 10.5l1.5-1.5 2.5 2.5 5-5 1.5 1.5-6.5 6.5z');
    p.setAttribute('fill-rule', 'evenodd');
  }
  s.append(p);
  return s;
}

/**
 * The identity of an item within its view, matching the store's item keys ("o:<order>|view|sub" or
 * "s:<shipment>|view|sub"): shipment items carry a shipmentId, order items do not; the sub-key is the
 * block kind and sku, or the rule; a dead letter is its stream sequence.
 */
export function itemKey(viewId, it) {
  if (it.key) return String(it.key);
  if (viewId === 'dead_letters') return 'dl:' + it.seq;
  const ent = it.shipmentId ? 's:' + it.shipmentId : 'o:' + (it.orderId || '');
  return [ent, viewId, it.kind || '', it.sku || '', it.rule || ''].join('|');
}

/** Where an item leads: its order when known, else its shipment. */
export function itemHref(it) {
  if (it.orderId) return '#/order/' + encodeURIComponent(it.orderId);
  if (it.shipmentId) return '#/shipment/' + encodeURIComponent(it.shipmentId);
  if (it.seq !== undefined) return '#/dead-letters?seq=' + it.seq;
  return null;
}

/** A one-line reason for an item ("ORDER_HOLD · CREDIT", "release", ...). */
export function itemDetail(it) {
  return [riskDetail(it), it.kind, it.reason, it.sku, it.lastFailure, it.routeRequest && it.routeRequest.reason, it.interface, it.rule, it.code,
    it.check && [it.system, it.check, it.theirs && 'says ' + it.theirs].filter(Boolean).join(' '),
    it.producer && 'from ' + [it.producer, it.producerInstance].filter(Boolean).join(' / ')].filter(Boolean).join(' · ');
}

/** Words that are acronyms in event names ("slaBreached" is "SLA breached", not "Sla breached"). */
const ACRONYMS = { sla: 'SLA', pod: 'POD', eta: 'ETA', erp: 'ERP', wms: 'WMS', tms: 'TMS', id: 'ID', edi: 'EDI', sku: 'SKU' };

/** "orderHoldReleased" -> "Order hold released"; "slaBreached" -> "SLA breached"; "podCaptured" -> "POD captured". */
export function eventLabel(type) {
  const words = String(type || '').replace(/([A-Z])/g, ' $1').toLowerCase().trim().split(/\s+/).filter(Boolean)
    .map((w) => ACRONYMS[w] || w);
  const s = words.join(' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}
