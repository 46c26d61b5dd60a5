// Drill-down of one order or shipment: stage, open exceptions with SLA state, shipments, routes, timeline.
import { api } from '../api.js';
import { live } from '../stream.js';
import { ageMs, now } from '../clock.js';
import { h, fmtAge, fmtTime, parseTime, throttle, fmtWhen, zoned, warehouseZone, fmtAtWarehouse } from '../util.js';
import { VIEW_BY_ID, itemSla, stateLabel, stateIcon, itemDetail, eventLabel } from '../views.js';
import { stateChip, exceptionHref, viewOfException } from '../exceptions.js';
import { runbookHref } from './runbook.js';
import { riskBanner } from './risk.js';

const STAGES = ['CREATED', 'APPROVED', 'RELEASED', 'PICKING', 'PACKED', 'READY', 'ROUTED', 'SHIPPED', 'DELIVERED', 'POD', 'INVOICED'];
const ENVELOPE = new Set(['eventId', 'occurredAt', 'source', 'orderId', 'shipmentId', 'routeId']);

const ACTION_VERB = {
  exceptionAcknowledged: 'acknowledged', exceptionAssigned: 'assigned', exceptionSnoozed: 'snoozed',
  exceptionNoted: 'added a note to', exceptionResolved: 'resolved', exceptionReopened: 'reopened',
};

/** An action on an exception, as a sentence: "dana assigned the Blocked exception to sam: “...”". */
function saidAction(type, p, at) {
  const view = viewOfException(p.exceptionId);
  const what = `the ${(VIEW_BY_ID[view] || { label: '' }).label} exception`.replace('the  exception', 'an exception');
  let text = `${p.actor || 'someone'} ${ACTION_VERB[type]} ${what}`;
  if (type === 'exceptionAssigned') text = p.assignee ? `${text} to ${p.assignee}` : `${p.actor || 'someone'} unassigned ${what}`;
  if (type === 'exceptionSnoozed' && p.until) {
    // An until in the past un-snoozes (docs/exceptions.md).
    text = parseTime(p.until) <= parseTime(at) ? `${p.actor || 'someone'} ended the snooze of ${what}` : `${text} until ${fmtWhen(p.until)}`;
  }
  if (type === 'exceptionResolved' && p.resolution) text += ` as ${p.resolution}`;
  return [text + (p.note ? ': ' : ''), p.note ? h('q', {}, p.note) : null, ' ',
    p.exceptionId ? h('a', { href: exceptionHref(p.exceptionId), class: 'ex-link' }, 'open it') : null];
}

/** A short sentence of what an event's payload said. */
function said(type, p, at) {
  if (!p || typeof p !== 'object') return '';
  if (ACTION_VERB[type]) return saidAction(type, p, at);
  const parts = [];
  for (const [k, v] of Object.entries(p)) {
    if (k === 'lines' && Array.isArray(v)) {
      parts.push(`${v.length} line${v.length === 1 ? '' : 's'}: ` + v.slice(0, 4).map((l) => `${l.sku}×${l.qty}`).join(', ') + (v.length > 4 ? ', …' : ''));
    } else if (k === 'stops' && Array.isArray(v)) {
      parts.push(`${v.length} stop${v.length === 1 ? '' : 's'}: ` + v.slice(0, 4).map((s) => `#${s.sequence ?? '?'} ${s.shipmentId}${s.eta ? ' eta ' + fmtTime(s.eta).slice(5, 16) : ''}`).join(', ') + (v.length > 4 ? ', …' : ''));
    } else if (Array.isArray(v)) {
      parts.push(`${k}: ${v.join(', ')}`);
    } else if (v && typeof v === 'object') {
      parts.push(`${k}: ${JSON.stringify(v)}`);
    } else if (/At$|By$/.test(k) && typeof v === 'string') {
      parts.push(`${k}: ${fmtTime(v)}`);
    } else {
      parts.push(`${k}: ${v}`);
    }
  }
  return parts.join(' · ');
}

/** What the outbound relay did about this order or shipment (docs/outbound.md): "notify: deliveryCompleted
 * delivered 10:42", "erp: routeDispatched failing since 10:40 (HTTP 503)". None without a relay. */
function deliveriesPanel(list) {
  if (!list || !list.length) return null;
  const verb = { delivered: 'delivered', failing: 'failing since', dead: 'given up', queued: 'held since',
    requested: 'requested', refused: 'refused' };
  const line = (r) => {
    if (r.reason) return `${r.destination}: ${r.reason}`; /* a route planner: "route planner unavailable since 10:42" */
    const waiting = r.status === 'failing' || r.status === 'queued';
    return `${r.destination}: ${r.type} ${verb[r.status] || r.status} ${fmtTime(waiting ? (r.since || r.at) : r.at)}` +
      (waiting && r.error ? ` (${r.error})` : '');
  };
  return h('section', { 'aria-labelledby': 'dl-h', class: 'panel', id: 'deliveries' }, h('h2', { id: 'dl-h' }, 'Integrations'),
    h('ul', { class: 'delivery-list' }, list.map((r) => h('li', { 'data-status': r.status || '', 'data-destination': r.destination || '' },
      line(r), ' ', h('span', { class: 'muted small' }, r.about || '')))));
}

export function mount(main, arg) {
  const kind = arg.kind;
  const id = arg.id;
  const noun = kind === 'order' ? 'Order' : 'Shipment';
  document.title = `${noun} ${id} · Control tower`;
  const st = { alive: true, data: null, shipments: new Set(), exRows: [] };
  const body = h('div', { class: 'entity', id: 'entity', 'data-kind': kind, 'data-id': id });
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ', `${noun} ${id}`),
    body);
  body.append(h('h1', {}, `${noun} `, h('span', { class: 'mono' }, id)), h('p', { class: 'loading' }, 'Loading…'));

  async function load() {
    let d;
    try {
      d = await api(`/${kind === 'order' ? 'orders' : 'shipments'}/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!st.alive) return;
      body.replaceChildren(h('h1', {}, `${noun} `, h('span', { class: 'mono' }, id)),
        h('p', { class: 'error', role: 'alert' }, e.status === 404 ? `No ${kind} "${id}" is known to the tower.` : `Could not load it: ${e.message}`),
        h('p', {}, h('a', { href: '#/search/' + encodeURIComponent(id) }, `Search for "${id}"`)));
      return;
    }
    if (!st.alive) return;
    st.data = d;
    st.shipments = new Set((d.shipments || []).map((s) => s.shipmentId));
    if (kind === 'shipment') st.shipments.add(id);
    render(d);
  }
  const reload = throttle(() => { if (st.alive) load(); }, 1000);

  function stageBar(stage) {
    const cancelled = stage === 'CANCELLED';
    const at = STAGES.indexOf(stage);
    return h('ol', { class: 'stages' + (cancelled ? ' cancelled' : ''), 'aria-label': `Stage: ${stage || 'unknown'}` },
      STAGES.map((s, i) => h('li', {
        class: i < at ? 'done' : i === at ? 'current' : 'todo',
        'aria-current': i === at ? 'step' : null,
      }, h('span', { class: 'stage-name' }, eventLabel(s.toLowerCase())))));
  }

  function render(d) {
    const stage = d.stage || null;
    const facts = [];
    if (kind === 'shipment') {
      facts.push(['Order', d.orderId ? h('a', { href: '#/order/' + encodeURIComponent(d.orderId) }, d.orderId) : 'not linked to an order (orphan)']);
      if (d.orderStage) facts.push(['Order stage', d.orderStage]);
    }
    if (d.customerId) facts.push(['Customer', h('a', { href: '#/search/' + encodeURIComponent(d.customerId) }, d.customerId)]);
    if (d.channel) facts.push(['Channel', d.channel]);
    if (d.promisedBy) {
      const late = parseTime(d.promisedBy) < now() && !['DELIVERED', 'POD', 'INVOICED', 'CANCELLED'].includes(stage);
      facts.push(['Promised by', h('span', {}, fmtWhen(d.promisedBy), late ? h('strong', { class: 'late' }, ' · past due') : null)]);
    }
    const ms = d.milestones || {};
    const timeline = d.timeline || [];
    const instances = [...new Set(timeline.map((t) => t.event && t.event.source && [t.event.source.system, t.event.source.instance].filter(Boolean).join('/')).filter(Boolean))];

    // Open exceptions, oldest first.
    const ex = [...(d.openExceptions || [])].sort((a, b) => parseTime(a.since) - parseTime(b.since));
    st.exRows = [];
    const exTable = ex.length
      ? h('table', { class: 'grid', id: 'exceptions' },
        h('caption', { class: 'sr-only' }, 'Open exceptions, oldest first'),
        h('thead', {}, h('tr', {}, ['View', 'Age', zoned('Since'), 'Concerns', 'Detail', 'State', 'Assignee', 'SLA', 'Exception'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, ex.map((it) => {
          const state = itemSla(it.view, it);
          const badge = h('span', { class: 'badge small', 'data-state': state }, stateIcon(state), h('span', {}, stateLabel(it.view, state)));
          const tr = h('tr', { 'data-state': state, 'data-view': it.view, 'data-ex': it.exceptionId || '', 'data-xstate': it.state || '' },
            h('td', {}, h('a', { href: '#/view/' + it.view }, (VIEW_BY_ID[it.view] || { label: it.view }).label)),
            h('td', { class: 'num' }, h('span', { class: 'age num', 'data-since': it.since }, fmtAge(ageMs(it.since)))),
            h('td', { class: 'num' }, fmtTime(it.since), warehouseZone(it.warehouseId)
              ? h('div', { class: 'small muted wh-time' }, `${it.warehouseId}: ${fmtAtWarehouse(it.since, it.warehouseId)}`) : null),
            h('td', {}, it.shipmentId ? h('a', { href: '#/shipment/' + encodeURIComponent(it.shipmentId) }, it.shipmentId) : 'the order'),
            h('td', { class: 'wrap' }, itemDetail(it) || '—'),
            h('td', { class: 'c-xstate' }, stateChip(it)),
            h('td', { class: 'c-assignee' }, it.assignee || h('span', { class: 'muted' }, '—')),
            h('td', {}, badge),
            h('td', {}, it.exceptionId ? h('a', { href: exceptionHref(it.exceptionId), class: 'ex-link' }, 'Work it') : '—'));
          st.exRows.push({ tr, badge, it });
          return tr;
        })))
      : h('p', { class: 'ok-note' }, stateIcon('ok'), ' No open exception.');

    // Shipments and routes.
    const shipments = d.shipments || [];
    const shipList = shipments.length
      ? h('ul', { class: 'ship-list' }, shipments.map((s) => h('li', {},
        s.shipmentId === id ? h('strong', {}, s.shipmentId) : h('a', { href: '#/shipment/' + encodeURIComponent(s.shipmentId) }, s.shipmentId),
        ' ', h('span', { class: 'stage-chip' }, s.stage || 'unknown'))))
      : h('p', { class: 'muted' }, 'No shipment yet.');
    const routes = routesOf(timeline);

    body.replaceChildren(
      h('div', { class: 'entity-head' },
        h('h1', { tabindex: '-1' }, `${noun} `, h('span', { class: 'mono' }, id)),
        h('span', { class: 'stage-chip big', id: 'stage', 'data-stage': stage || '' }, stage || 'no stage')),
      stageBar(stage),
      riskBanner(ex),
      h('div', { class: 'entity-grid' },
        h('section', { 'aria-labelledby': 'facts-h', class: 'panel' }, h('h2', { id: 'facts-h' }, 'Facts'),
          h('dl', { class: 'facts' }, facts.map(([k, val]) => [h('dt', {}, k), h('dd', {}, val)]),
            h('dt', {}, 'Reported by'), h('dd', {}, instances.join(', ') || '—'),
            h('dt', {}, 'Milestones'), h('dd', {}, Object.keys(ms).length ? `${Object.keys(ms).length} kinds, first ${fmtTime(Object.values(ms).sort()[0])}` : '—'))),
        h('section', { 'aria-labelledby': 'ex-h', class: 'panel wide' }, h('h2', { id: 'ex-h' }, `Open exceptions (${ex.length})`),
          ex.length ? h('p', { class: 'next-step compact', id: 'entity-next' }, h('strong', {}, 'Next step: '),
            (VIEW_BY_ID[ex[0].view] || {}).next || '', ' ', ex.some((x) => !x.assignee) ? 'Take the unassigned ones (Work it).' : '',
            ' ', h('a', { href: runbookHref(ex[0].view, ex[0]), id: 'entity-runbook', class: 'runbook-link' }, 'Open the runbook')) : null,
          exTable),
        h('section', { 'aria-labelledby': 'sh-h', class: 'panel' }, h('h2', { id: 'sh-h' }, `Shipments (${shipments.length})`), shipList),
        h('section', { 'aria-labelledby': 'rt-h', class: 'panel wide' }, h('h2', { id: 'rt-h' }, 'Route'), routes),
        deliveriesPanel(d.deliveries)),
      h('section', { 'aria-labelledby': 'tl-h', class: 'panel' },
        h('h2', { id: 'tl-h' }, `Timeline (${timeline.length} events)`),
        h('table', { class: 'grid timeline', id: 'timeline' },
          h('caption', { class: 'sr-only' }, 'Every event of this process, oldest first'),
          h('thead', {}, h('tr', {}, [zoned('Occurred'), 'System', 'Instance', 'Event', 'Concerns', 'What it said', 'Seq'].map((c) =>
            h('th', { scope: 'col', class: c === 'Seq' ? 'num' : null }, c)))),
          h('tbody', {}, timeline.map((t) => {
            const e = t.event || {};
            const payload = e[t.type];
            const concerns = [e.orderId, e.shipmentId, e.routeId].filter(Boolean).join(' · ');
            const extra = Object.keys(e).filter((k) => !ENVELOPE.has(k) && k !== t.type);
            return h('tr', { 'data-event-id': e.eventId || '', 'data-type': t.type },
              h('td', { class: 'num' }, fmtTime(e.occurredAt)),
              h('td', {}, h('span', { class: 'sys', 'data-sys': (e.source && e.source.system) || '' }, (e.source && e.source.system) || '—')),
              h('td', {}, (e.source && e.source.instance) || '—'),
              h('td', {}, eventLabel(t.type)),
              h('td', { class: 'mono small' }, concerns),
              h('td', { class: 'wrap' }, said(t.type, payload, e.occurredAt), extra.length ? ` · ${extra.join(', ')}` : '',
                h('details', { class: 'raw' }, h('summary', {}, 'Event'), h('pre', {}, JSON.stringify(e, null, 2)))),
              h('td', { class: 'num' }, t.seq ? String(t.seq) : '—'));
          })))),
    );
    body.dataset.loaded = 'true';
  }

  /** Routes that name this process's shipments: planned (stops, vehicle, carrier), dispatched, failed. */
  function routesOf(timeline) {
    const planned = [], failed = [], dispatched = new Map();
    for (const t of timeline) {
      const e = t.event || {};
      if (t.type === 'routePlanned') planned.push(e);
      else if (t.type === 'routeFailed') failed.push(e);
      else if (t.type === 'routeDispatched' && e.routeId) dispatched.set(e.routeId, e.occurredAt);
    }
    if (!planned.length && !failed.length) return h('p', { class: 'muted' }, 'No route planned or failed yet.');
    return h('div', {},
      planned.map((e) => {
        const p = e.routePlanned || {};
        const stops = [...(p.stops || [])].sort((a, b) => (a.sequence || 0) - (b.sequence || 0));
        return h('div', { class: 'route' },
          h('p', {}, h('strong', {}, e.routeId || 'route'), ` planned ${fmtTime(e.occurredAt)}`,
            p.vehicleId ? ` · vehicle ${p.vehicleId}` : '', p.carrierId ? ` · carrier ${p.carrierId}` : '',
            dispatched.has(e.routeId) ? ` · dispatched ${fmtTime(dispatched.get(e.routeId))}` : ' · not dispatched'),
          h('ol', { class: 'stops' }, stops.map((s) => h('li', { class: st.shipments.has(s.shipmentId) ? 'mine' : null },
            `#${s.sequence ?? '?'} `,
            st.shipments.has(s.shipmentId) ? h('strong', {}, s.shipmentId) : s.shipmentId,
            s.eta ? ` · eta ${fmtTime(s.eta)}` : ''))));
      }),
      failed.map((e) => h('p', { class: 'route failed' }, stateIcon('warning'),
        ` Routing failed ${fmtTime(e.occurredAt)}: ${(e.routeFailed && e.routeFailed.reason) || 'no reason given'}`)));
  }

  function concerns(item) {
    if (!item) return false;
    if (kind === 'order' && item.orderId === id) return true;
    return !!(item.shipmentId && st.shipments.has(item.shipmentId)) || (st.data && item.orderId && item.orderId === st.data.orderId);
  }
  function onDelta(e) { if (concerns(e.detail.item)) reload(); }
  function onOpen(e) { if (e.detail.reconnected) reload(); }

  live.addEventListener('delta', onDelta);
  live.addEventListener('open', onOpen);
  live.addEventListener('resync', reload);
  live.subscribe({});
  load();

  return {
    tick() {
      for (const r of st.exRows) {
        const state = itemSla(r.it.view, r.it);
        if (r.tr.dataset.state !== state) {
          r.tr.dataset.state = state;
          r.badge.dataset.state = state;
          r.badge.replaceChildren(stateIcon(state), h('span', {}, stateLabel(r.it.view, state)));
        }
      }
    },
    unmount() {
      st.alive = false;
      live.removeEventListener('delta', onDelta);
      live.removeEventListener('open', onOpen);
      live.removeEventListener('resync', reload);
    },
  };
}
