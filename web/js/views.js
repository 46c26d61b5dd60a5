// What the views are, how they are labelled, and their SLA state (the default durations of docs/contract.md).

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
    what: 'Order holds, inventory shorts and blocked shipments', sla: { rule: 'readiness', ms: 4 * HOUR } },
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
];

export const VIEW_BY_ID = Object.fromEntries(VIEWS.map((v) => [v.id, v]));

/** Share of the SLA duration from which an item is "warning". */
export const WARNING_SHARE = 0.75;

/** The SLA state of an item (or of a tile, given its oldest item's age): 'ok' | 'warning' | 'breached'. */
export function slaState(viewId, ageMs, count = 1) {
  const v = VIEW_BY_ID[viewId];
  if (!v || !count) return 'ok';
  if (v.alwaysBreached) return 'breached';
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
  if (state === 'warning') return v && !v.sla && !v.alwaysBreached ? 'Review' : 'Warning';
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
  return [it.kind, it.reason, it.sku, it.lastFailure, it.interface, it.rule, it.code].filter(Boolean).join(' · ');
}
