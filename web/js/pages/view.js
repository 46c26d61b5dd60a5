// One view: its items oldest first with ticking ages, filters, cursor paging, CSV export, live rows.
import { api } from '../api.js';
import { live, cmpSince } from '../stream.js';
import { ageMs } from '../clock.js';
import {
  h, fmtCount, fmtDuration, fmtTime, parseDuration, parseTime, csvField, download, announce, throttle,
} from '../util.js';
import { VIEW_BY_ID, slaState, stateLabel, stateIcon, itemKey, itemHref, itemDetail } from '../views.js';

const PAGE = 100;
const EXPORT_PAGE = 1000;
const EXPORT_MAX_PAGES = 500;
const AGE_CHOICES = [['', 'Any age'], ['15m', '≥ 15 min'], ['1h', '≥ 1 h'], ['2h', '≥ 2 h'], ['4h', '≥ 4 h'], ['1d', '≥ 1 day'], ['2d', '≥ 2 days']];
const CSV_COLUMNS = ['since', 'ageSeconds', 'orderId', 'shipmentId', 'warehouseId', 'carrierId', 'kind', 'reason', 'sku',
  'lastFailure', 'interface', 'rule', 'seq', 'code', 'message', 'eventId', 'receivedAt'];

export function mount(main, viewId, params) {
  const v = VIEW_BY_ID[viewId];
  if (!v) {
    document.title = 'Unknown view · Control tower';
    main.append(h('h1', {}, 'Unknown view'), h('p', {}, 'No view named ', h('code', {}, String(viewId)), '. ',
      h('a', { href: '#/' }, 'Back to the overview')));
    return {};
  }
  document.title = `${v.label} · Control tower`;
  const filters = {
    warehouse: params.get('warehouse') || '',
    carrier: params.get('carrier') || '',
    olderThan: params.get('olderThan') || params.get('minAge') || '',
  };
  const minAgeMs = parseDuration(filters.olderThan);
  const isDL = viewId === 'dead_letters';

  const st = {
    alive: true, loaded: false, loading: false, asOfSeq: 0, items: [], nextCursor: null,
    cursors: [null], page: 0, buffer: [], total: null, added: 0, removed: 0,
  };

  // --- filters
  const whInput = h('input', { id: 'f-warehouse', name: 'warehouse', value: filters.warehouse, list: 'wh-list', size: 10, maxlength: 64, spellcheck: 'false' });
  const caInput = h('input', { id: 'f-carrier', name: 'carrier', value: filters.carrier, list: 'ca-list', size: 10, maxlength: 64, spellcheck: 'false' });
  const ageSel = h('select', { id: 'f-age', name: 'olderThan' },
    AGE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.olderThan }, label)));
  const whList = h('datalist', { id: 'wh-list' });
  const caList = h('datalist', { id: 'ca-list' });
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    h('div', { class: 'field' }, h('label', { for: 'f-warehouse' }, 'Warehouse'), whInput, whList),
    h('div', { class: 'field' }, h('label', { for: 'f-carrier' }, 'Carrier'), caInput, caList),
    h('div', { class: 'field' }, h('label', { for: 'f-age' }, 'Minimum age'), ageSel),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', class: 'ghost', onclick: () => { location.hash = '#/view/' + viewId; } }, 'Clear'));
  form.addEventListener('submit', (e) => { e.preventDefault(); applyFilters(); });
  ageSel.addEventListener('change', applyFilters);

  function applyFilters() {
    const p = new URLSearchParams();
    if (whInput.value.trim()) p.set('warehouse', whInput.value.trim());
    if (caInput.value.trim()) p.set('carrier', caInput.value.trim());
    if (ageSel.value) p.set('olderThan', ageSel.value);
    const q = p.toString();
    location.hash = '#/view/' + viewId + (q ? '?' + q : '');
  }

  // --- table
  const status = h('p', { class: 'view-status', id: 'view-status', role: 'status' }, 'Loading…');
  const tbody = h('tbody', {});
  const cols = isDL
    ? ['Age', 'Seq', 'Code', 'Message', 'Event id', 'State']
    : ['Age', 'Since (UTC)', 'Order', 'Shipment', 'Warehouse', 'Carrier', 'Detail', 'SLA'];
  const table = h('table', { class: 'grid items', id: 'items', 'data-view': viewId },
    h('caption', { class: 'sr-only' }, `${v.label}: open items, oldest first`),
    h('thead', {}, h('tr', {}, cols.map((c, i) => h('th', { scope: 'col', 'aria-sort': i === 0 ? 'descending' : null,
      class: /^(Age|Seq|Since)/.test(c) ? 'num' : null }, c)))),
    tbody);
  const prevBtn = h('button', { type: 'button', id: 'prev', onclick: () => go(st.page - 1) }, '‹ Previous');
  const nextBtn = h('button', { type: 'button', id: 'next', onclick: () => go(st.page + 1) }, 'Next ›');
  const pageInfo = h('span', { class: 'page-info num' });
  const exportBtn = h('button', { type: 'button', id: 'export', onclick: exportCsv }, 'Export CSV');
  const slaText = v.sla ? `SLA ${v.sla.rule}: ${fmtDuration(v.sla.ms)} (warning from ${fmtDuration(v.sla.ms * 0.75)})`
    : v.alwaysBreached ? 'Every item is an open SLA breach' : 'No SLA: review every item';

  const headCount = h('span', { class: 'head-count num', id: 'head-count' }, '');
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ', v.label),
    h('div', { class: 'page-head' }, h('h1', {}, v.label, ' ', headCount),
      h('p', { class: 'muted' }, v.what, ' · ', slaText)),
    form,
    h('div', { class: 'toolbar' }, status, h('div', { class: 'pager' }, prevBtn, pageInfo, nextBtn, exportBtn)),
    h('div', { class: 'table-wrap' }, table),
  );

  function rowFor(it) {
    const key = itemKey(viewId, it);
    const a = ageMs(it.since);
    const state = slaState(viewId, a);
    const href = itemHref(it);
    const idLink = (text, link) => (text ? (link ? h('a', { href: link }, text) : text) : h('span', { class: 'muted' }, '—'));
    const badge = h('span', { class: 'badge small', 'data-state': state }, stateIcon(state), h('span', {}, stateLabel(viewId, state)));
    const ageCell = h('td', { class: 'num age-cell' }, h('span', { class: 'age num', 'data-since': it.since || '' }, ''));
    let cells;
    if (isDL) {
      cells = [ageCell, h('td', { class: 'num' }, h('a', { href: '#/dead-letters?seq=' + it.seq }, String(it.seq))),
        h('td', {}, h('code', {}, it.code || '')), h('td', { class: 'wrap' }, it.message || ''),
        h('td', {}, it.eventId || ''), h('td', {}, badge)];
    } else {
      cells = [ageCell, h('td', { class: 'num' }, fmtTime(it.since)),
        h('td', {}, idLink(it.orderId, it.orderId && '#/order/' + encodeURIComponent(it.orderId))),
        h('td', {}, idLink(it.shipmentId, it.shipmentId && '#/shipment/' + encodeURIComponent(it.shipmentId))),
        h('td', {}, it.warehouseId || h('span', { class: 'muted' }, '—')),
        h('td', {}, it.carrierId || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'wrap' }, itemDetail(it)), h('td', {}, badge)];
    }
    const tr = h('tr', { 'data-key': key, 'data-state': state, 'data-href': href || '' }, cells);
    tr._item = it;
    return tr;
  }

  tbody.addEventListener('click', (e) => {
    if (e.target.closest('a, button')) return;
    const tr = e.target.closest('tr');
    if (tr && tr.dataset.href) location.hash = tr.dataset.href;
  });

  function render() {
    tbody.replaceChildren(...st.items.map(rowFor));
    if (!st.items.length) {
      tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: cols.length },
        st.page === 0 ? 'Nothing here: no item matches.' : 'No more items.')));
    }
    renderPager();
  }

  function isFiltered() { return !!(filters.warehouse || filters.carrier || filters.olderThan); }

  function renderPager() {
    // Timers (a leaving row's fade) may fire after the user has moved to another page.
    if (!st.alive) return;
    prevBtn.disabled = st.page === 0;
    nextBtn.disabled = !st.nextCursor;
    const n = tbody.querySelectorAll('tr[data-key]').length;
    pageInfo.textContent = `Page ${st.page + 1} · ${n} row${n === 1 ? '' : 's'}`;
    const filtered = filters.warehouse || filters.carrier || filters.olderThan;
    const total = st.total;
    status.textContent = (total === null ? '' : `${fmtCount(total)} ${filtered ? 'match the filters' : 'in this view'}`) +
      (filtered ? ' · filtered: ' + [filters.warehouse && 'warehouse ' + filters.warehouse,
        filters.carrier && 'carrier ' + filters.carrier, filters.olderThan && 'older than ' + filters.olderThan].filter(Boolean).join(', ') : '');
    headCount.textContent = total === null ? '' : fmtCount(total);
  }

  function query(cursor, limit) {
    const p = new URLSearchParams();
    if (filters.warehouse) p.set('warehouse', filters.warehouse);
    if (filters.carrier) p.set('carrier', filters.carrier);
    if (filters.olderThan) p.set('olderThan', filters.olderThan);
    p.set('limit', String(limit));
    if (cursor) p.set('cursor', cursor);
    return (isDL ? '/dead-letters?' : `/views/${encodeURIComponent(viewId)}?`) + p.toString();
  }

  async function load() {
    st.loading = true;
    table.setAttribute('aria-busy', 'true');
    try {
      const body = await api(query(st.cursors[st.page], PAGE));
      if (!st.alive) return;
      st.items = body.items || [];
      st.nextCursor = body.nextCursor || null;
      st.asOfSeq = body.asOfSeq || 0;
      st.total = typeof body.count === 'number' ? body.count : st.total;
      st.loaded = true;
      render();
      table.dataset.loaded = 'true';
      table.dataset.asOfSeq = String(st.asOfSeq);
      // Deltas that arrived while loading and are newer than this answer.
      const pending = st.buffer;
      st.buffer = [];
      for (const m of pending) applyDelta(m);
    } catch (e) {
      if (!st.alive) return;
      status.textContent = `Could not load the view: ${e.message}`;
      status.classList.add('error');
    } finally {
      st.loading = false;
      table.removeAttribute('aria-busy');
    }
  }
  const reload = throttle(() => { if (st.alive) load(); }, 500);

  function go(page) {
    if (page < 0) return;
    if (page > st.page) {
      if (!st.nextCursor) return;
      st.cursors[page] = st.nextCursor;
    }
    st.page = page;
    st.cursors.length = page + 1;
    load().then(() => {
      const first = tbody.querySelector('tr a');
      table.scrollIntoView({ block: 'start' });
      if (first) first.focus({ preventScroll: true });
    });
  }

  function passes(it) {
    if (filters.warehouse && it.warehouseId !== filters.warehouse) return false;
    if (filters.carrier && it.carrierId !== filters.carrier) return false;
    if (minAgeMs && !(ageMs(it.since) >= minAgeMs)) return false;
    return true;
  }

  /** Does an item of this `since` belong on the page shown (between its first and last row)? */
  function inRange(it) {
    const rows = tbody.querySelectorAll('tr[data-key]');
    const t = parseTime(it.since);
    if (st.page > 0 && rows.length && t < parseTime(rows[0]._item.since)) return false;
    if (st.nextCursor && rows.length && t > parseTime(rows[rows.length - 1]._item.since)) return false;
    return true;
  }

  function findRow(key) {
    for (const tr of tbody.querySelectorAll('tr[data-key]')) if (tr.dataset.key === key) return tr;
    return null;
  }

  function applyDelta(m) {
    if (!st.loaded || st.loading) { st.buffer.push(m); return; }
    if (m.seq <= st.asOfSeq) return;
    const it = m.item || {};
    const key = itemKey(viewId, it);
    const old = findRow(key);
    if (m.op === 'remove') {
      if (old) {
        old.classList.add('leaving');
        old.removeAttribute('data-key');
        setTimeout(() => { old.remove(); renderPager(); }, 600);
        st.removed++;
      }
      if (st.total !== null) st.total = Math.max(0, st.total - 1);
    } else {
      if (old) old.remove();
      if (m.op === 'add' && !old && st.total !== null) st.total++;
      if (passes(it) && inRange(it)) {
        const tr = rowFor(it);
        tr.classList.add('arrived');
        const rows = [...tbody.querySelectorAll('tr[data-key]')];
        const before = rows.find((r) => cmpSince(it, r._item) < 0);
        const empty = tbody.querySelector('tr.empty');
        if (empty) empty.remove();
        tbody.insertBefore(tr, before || null);
        if (!old) st.added++;
      }
    }
    renderPager();
    say();
  }

  const say = throttle(() => {
    if (!st.alive || (!st.added && !st.removed)) return;
    const parts = [];
    if (st.added) parts.push(`${st.added} item${st.added === 1 ? '' : 's'} added`);
    if (st.removed) parts.push(`${st.removed} removed`);
    announce(`${v.label}: ${parts.join(', ')}`);
    st.added = 0; st.removed = 0;
  }, 3000);

  function onDelta(e) { if (e.detail.view === viewId) applyDelta(e.detail); }
  function onSnapshot(e) {
    const m = e.detail;
    if (m.view !== viewId) return;
    // The snapshot counts with its warehouse filter only: its count is ours without carrier or age.
    if (!filters.carrier && !filters.olderThan && typeof m.count === 'number') st.total = m.count;
    // The stream is further than the page: reload it (deltas after it are buffered meanwhile).
    if (st.loaded && m.seq > st.asOfSeq) { st.loaded = false; reload(); }
  }
  function onOpen(e) { if (e.detail.reconnected) { st.loaded = false; reload(); } }
  function onSummary(e) {
    const s = e.detail.views && e.detail.views[viewId];
    // The summary counts whole views: a filtered page keeps the filtered count of its answers.
    if (!isFiltered() && s && typeof s.count === 'number') { st.total = s.count; renderPager(); }
  }
  function onResync() { st.loaded = false; reload(); }

  live.addEventListener('delta', onDelta);
  live.addEventListener('snapshot', onSnapshot);
  live.addEventListener('open', onOpen);
  live.addEventListener('summary', onSummary);
  live.addEventListener('resync', onResync);
  live.subscribe({ views: [viewId], warehouse: filters.warehouse || undefined });
  load();
  fillChoices();

  /** Warehouse and carrier suggestions from the summary's breakdowns, when the server gives them. */
  async function fillChoices() {
    try {
      const s = await api('/summary');
      const vs = (s.views || {})[viewId] || {};
      for (const [list, key] of [[whList, 'byWarehouse'], [caList, 'byCarrier']]) {
        list.replaceChildren(...Object.keys(vs[key] || {}).sort().map((n) => h('option', { value: n })));
      }
      if (st.total === null && !isFiltered() && typeof vs.count === 'number') { st.total = vs.count; renderPager(); }
    } catch { /* suggestions only */ }
  }

  async function exportCsv() {
    exportBtn.disabled = true;
    const lines = [CSV_COLUMNS.join(',')];
    let cursor = null, pages = 0, n = 0;
    try {
      do {
        const body = await api(query(cursor, EXPORT_PAGE));
        for (const it of body.items || []) {
          const row = { ...it, ageSeconds: Math.floor(ageMs(it.since) / 1000) };
          lines.push(CSV_COLUMNS.map((c) => csvField(row[c])).join(','));
          n++;
        }
        cursor = body.nextCursor || null;
        pages++;
        status.textContent = `Exporting… ${fmtCount(n)} rows`;
      } while (cursor && pages < EXPORT_MAX_PAGES && st.alive);
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
      const suffix = [filters.warehouse, filters.carrier, filters.olderThan && 'older-' + filters.olderThan].filter(Boolean).join('-');
      download(`${viewId}${suffix ? '-' + suffix : ''}-${stamp}.csv`, lines.join('\r\n') + '\r\n');
      status.textContent = `Exported ${fmtCount(n)} rows${cursor ? ' (stopped at the export limit)' : ''}.`;
      announce(`Exported ${n} rows`);
    } catch (e) {
      status.textContent = `Export failed: ${e.message}`;
    } finally {
      exportBtn.disabled = false;
    }
  }

  return {
    tick() {
      for (const tr of tbody.querySelectorAll('tr[data-key]')) {
        const state = slaState(viewId, ageMs(tr._item.since));
        if (tr.dataset.state !== state) {
          tr.dataset.state = state;
          const b = tr.querySelector('.badge');
          b.dataset.state = state;
          b.replaceChildren(stateIcon(state), h('span', {}, stateLabel(viewId, state)));
        }
      }
    },
    unmount() {
      st.alive = false;
      live.removeEventListener('delta', onDelta);
      live.removeEventListener('snapshot', onSnapshot);
      live.removeEventListener('open', onOpen);
      live.removeEventListener('summary', onSummary);
      live.removeEventListener('resync', onResync);
    },
  };
}
