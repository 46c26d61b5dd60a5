// One view: its items oldest first (or by priority) with ticking ages, filters (lifecycle state, assignee,
// warehouse, carrier, age), cursor paging, CSV export, live rows; selection and actions (operator role) and
// the exception panel in a drawer.
import { api, canWrite } from '../api.js';
import { live, cmpSince } from '../stream.js';
import { ageMs } from '../clock.js';
import {
  h, fmtAge, fmtCount, fmtDuration, fmtTime, parseDuration, parseTime, csvField, download, announce, throttle,
} from '../util.js';
import { VIEW_BY_ID, slaState, stateLabel, stateIcon, itemKey, itemHref, itemDetail } from '../views.js';
import {
  STATE_CHOICES, ASSIGNEE_CHOICES, SORT_CHOICES, STATE_LABEL, itemState, stateChip, actionBar, whoAmI,
} from '../exceptions.js';
import { drawer } from '../panel.js';

const PAGE = 100;
const EXPORT_PAGE = 1000;
const EXPORT_MAX_PAGES = 500;
const AGE_CHOICES = [['', 'Any age'], ['15m', '≥ 15 min'], ['1h', '≥ 1 h'], ['2h', '≥ 2 h'], ['4h', '≥ 4 h'], ['1d', '≥ 1 day'], ['2d', '≥ 2 days']];
const CSV_COLUMNS = ['since', 'ageSeconds', 'orderId', 'shipmentId', 'warehouseId', 'carrierId', 'kind', 'reason', 'sku',
  'lastFailure', 'interface', 'rule', 'seq', 'code', 'message', 'eventId', 'receivedAt', 'exceptionId', 'state', 'assignee',
  'acknowledgedAt', 'acknowledgedBy', 'snoozedUntil', 'notes', 'slaDueAt'];

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
    // The dashboard starts on what needs attention (the API's default is every unresolved item).
    state: STATE_CHOICES.some(([k]) => k === params.get('state')) ? params.get('state') : 'attention',
    assignee: params.get('assignee') || '',
    sort: params.get('sort') === 'priority' ? 'priority' : 'age',
  };
  const minAgeMs = parseDuration(filters.olderThan);
  const isDL = viewId === 'dead_letters';

  const st = {
    alive: true, loaded: false, loading: false, asOfSeq: 0, items: [], nextCursor: null,
    cursors: [null], page: 0, buffer: [], total: null, added: 0, removed: 0,
    write: null,              // may this caller act (operator role)? null until the probe answered
    selected: new Set(),      // exceptionIds of the selected rows (on this page)
  };

  // --- filters
  const whInput = h('input', { id: 'f-warehouse', name: 'warehouse', value: filters.warehouse, list: 'wh-list', size: 10, maxlength: 64, spellcheck: 'false' });
  const caInput = h('input', { id: 'f-carrier', name: 'carrier', value: filters.carrier, list: 'ca-list', size: 10, maxlength: 64, spellcheck: 'false' });
  const ageSel = h('select', { id: 'f-age', name: 'olderThan' },
    AGE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.olderThan }, label)));
  const stateSel = h('select', { id: 'f-state', name: 'state' },
    STATE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.state }, label)));
  const assigneeSel = h('select', { id: 'f-assignee', name: 'assignee' },
    ASSIGNEE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.assignee }, label)),
    filters.assignee && !ASSIGNEE_CHOICES.some(([k]) => k === filters.assignee)
      ? h('option', { value: filters.assignee, selected: true }, filters.assignee) : null);
  const sortSel = h('select', { id: 'f-sort', name: 'sort' },
    SORT_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.sort }, label)));
  const whList = h('datalist', { id: 'wh-list' });
  const caList = h('datalist', { id: 'ca-list' });
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    h('div', { class: 'field' }, h('label', { for: 'f-state' }, 'State'), stateSel),
    h('div', { class: 'field' }, h('label', { for: 'f-assignee' }, 'Assignee'), assigneeSel),
    h('div', { class: 'field' }, h('label', { for: 'f-sort' }, 'Sort'), sortSel),
    h('div', { class: 'field' }, h('label', { for: 'f-warehouse' }, 'Warehouse'), whInput, whList),
    h('div', { class: 'field' }, h('label', { for: 'f-carrier' }, 'Carrier'), caInput, caList),
    h('div', { class: 'field' }, h('label', { for: 'f-age' }, 'Minimum age'), ageSel),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', class: 'ghost', onclick: () => { location.hash = '#/view/' + viewId; } }, 'Clear'));
  form.addEventListener('submit', (e) => { e.preventDefault(); applyFilters(); });
  for (const sel of [ageSel, stateSel, assigneeSel, sortSel]) sel.addEventListener('change', applyFilters);

  function applyFilters() {
    const p = new URLSearchParams();
    if (stateSel.value !== 'attention') p.set('state', stateSel.value);
    if (assigneeSel.value) p.set('assignee', assigneeSel.value);
    if (sortSel.value !== 'age') p.set('sort', sortSel.value);
    if (whInput.value.trim()) p.set('warehouse', whInput.value.trim());
    if (caInput.value.trim()) p.set('carrier', caInput.value.trim());
    if (ageSel.value) p.set('olderThan', ageSel.value);
    const q = p.toString();
    location.hash = '#/view/' + viewId + (q ? '?' + q : '');
  }

  // --- table
  const status = h('p', { class: 'view-status', id: 'view-status', role: 'status' }, 'Loading…');
  const tbody = h('tbody', {});
  const thead = h('thead', {});
  const COLS = isDL
    ? [['Age', 'num c-age'], ['Seq', 'num c-seq'], ['Code', 'c-code'], ['Message', 'c-message'], ['Event id', 'c-event'],
      ['State', 'c-xstate'], ['Assignee', 'c-assignee'], ['Review', 'c-sla']]
    : [['Age', 'num c-age'], ['Since (UTC)', 'num c-since'], ['Order', 'c-order'], ['Shipment', 'c-shipment'],
      ['Warehouse', 'c-warehouse'], ['Carrier', 'c-carrier'], ['Detail', 'c-detail'], ['State', 'c-xstate'],
      ['Assignee', 'c-assignee'], ['SLA', 'c-sla']];
  const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every row on this page' });
  selectAll.addEventListener('change', () => selectPage(selectAll.checked));
  const stateWord = (STATE_CHOICES.find(([k]) => k === filters.state) || [0, filters.state])[1];
  const table = h('table', { class: 'grid items', id: 'items', 'data-view': viewId },
    h('caption', { class: 'sr-only' }, `${v.label}: ${stateWord.toLowerCase()}, ${filters.sort === 'priority' ? 'by priority' : 'oldest first'}`),
    thead, tbody);
  const prevBtn = h('button', { type: 'button', id: 'prev', onclick: () => go(st.page - 1) }, '‹ Previous');
  const nextBtn = h('button', { type: 'button', id: 'next', onclick: () => go(st.page + 1) }, 'Next ›');
  const pageInfo = h('span', { class: 'page-info num' });
  const exportBtn = h('button', { type: 'button', id: 'export', onclick: exportCsv }, 'Export CSV');
  const slaText = v.sla ? `SLA ${v.sla.rule}: ${fmtDuration(v.sla.ms)} (warning from ${fmtDuration(v.sla.ms * 0.75)})`
    : v.alwaysBreached ? 'Every item is an open SLA breach' : 'No SLA: review every item';
  const bar = actionBar({ ids: () => [...st.selected], onResult: afterAction });
  bar.el.hidden = true;
  const panel = drawer({ onAction: afterAction });

  const headCount = h('span', { class: 'head-count num', id: 'head-count' }, '');
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ', v.label),
    h('div', { class: 'page-head' }, h('h1', {}, v.label, ' ', headCount),
      h('p', { class: 'muted' }, v.what, ' · ', slaText)),
    h('p', { class: 'next-step compact' }, h('strong', {}, 'Next step: '), v.next,
      ' Click a row for its details, notes and history.'),
    form,
    h('div', { class: 'toolbar' }, status, h('div', { class: 'pager' }, prevBtn, pageInfo, nextBtn, exportBtn)),
    bar.el,
    h('div', { class: 'with-drawer' }, h('div', { class: 'table-wrap' }, table), panel.el),
  );

  function renderHead() {
    thead.replaceChildren(h('tr', {},
      st.write ? h('th', { scope: 'col', class: 'c-select' }, selectAll) : null,
      COLS.map(([c, cls], i) => h('th', { scope: 'col', class: cls, 'aria-sort': i === 0 && filters.sort === 'age' ? 'descending' : null }, c)),
      h('th', { scope: 'col', class: 'c-open' }, h('span', { class: 'sr-only' }, 'Details'))));
  }
  const nCols = () => COLS.length + 1 + (st.write ? 1 : 0);

  /** A few words naming an item, for labels ("order SO-1 · Blocked"). */
  function naming(it) {
    if (isDL) return `dead letter ${it.seq}`;
    return [it.orderId && 'order ' + it.orderId, it.shipmentId && 'shipment ' + it.shipmentId].filter(Boolean).join(', ') || 'this item';
  }

  function rowFor(it, seq = 0) {
    const key = itemKey(viewId, it);
    const a = ageMs(it.since);
    const state = slaState(viewId, a);
    const xs = itemState(it);
    const exId = it.exceptionId || '';
    const href = itemHref(it);
    const idLink = (text, link) => (text ? (link ? h('a', { href: link }, text) : text) : h('span', { class: 'muted' }, '—'));
    const badge = h('span', { class: 'badge small', 'data-state': state }, stateIcon(state), h('span', {}, stateLabel(viewId, state)));
    const ageCell = h('td', { class: 'num age-cell c-age' }, h('span', { class: 'age num', 'data-since': it.since || '' }, fmtAge(a)));
    const xCells = [h('td', { class: 'c-xstate' }, stateChip(it, xs)),
      h('td', { class: 'c-assignee' }, it.assignee || h('span', { class: 'muted' }, '—'))];
    let cells;
    if (isDL) {
      cells = [ageCell, h('td', { class: 'num c-seq' }, h('a', { href: '#/dead-letters?seq=' + it.seq }, String(it.seq))),
        h('td', { class: 'c-code' }, h('code', {}, it.code || '')), h('td', { class: 'wrap c-message' }, it.message || ''),
        h('td', { class: 'c-event' }, it.eventId || ''), xCells, h('td', { class: 'c-sla' }, badge)];
    } else {
      cells = [ageCell, h('td', { class: 'num c-since' }, fmtTime(it.since)),
        h('td', { class: 'c-order' }, idLink(it.orderId, it.orderId && '#/order/' + encodeURIComponent(it.orderId))),
        h('td', { class: 'c-shipment' }, idLink(it.shipmentId, it.shipmentId && '#/shipment/' + encodeURIComponent(it.shipmentId))),
        h('td', { class: 'c-warehouse' }, it.warehouseId || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'c-carrier' }, it.carrierId || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'wrap c-detail' }, itemDetail(it)), xCells, h('td', { class: 'c-sla' }, badge)];
    }
    const select = st.write ? h('td', { class: 'c-select' }, exId
      ? h('input', { type: 'checkbox', class: 'row-select', 'data-ex': exId, checked: st.selected.has(exId), 'aria-label': `Select ${naming(it)}` })
      : null) : null;
    const open = h('td', { class: 'c-open' }, exId
      ? h('button', { type: 'button', class: 'ghost details', 'data-ex': exId, 'aria-label': `Details of ${naming(it)}` }, 'Details')
      : null);
    const tr = h('tr', { 'data-key': key, 'data-state': state, 'data-xstate': xs, 'data-ex': exId, 'data-href': href || '',
      'data-assignee': it.assignee || '', class: exId && panel.id === exId ? 'current' : null }, select, cells, open);
    tr._item = it;
    tr._seq = seq;
    return tr;
  }

  function openPanel(exId) {
    panel.open(exId);
    for (const tr of tbody.querySelectorAll('tr[data-key]')) tr.classList.toggle('current', tr.dataset.ex === exId);
  }

  tbody.addEventListener('change', (e) => {
    const cb = e.target.closest('input.row-select');
    if (cb) toggle(cb.dataset.ex, cb.checked);
  });
  tbody.addEventListener('click', (e) => {
    const t = e.target;
    const det = t.closest('button.details');
    if (det) { openPanel(det.dataset.ex); return; }
    if (t.closest('a, button, input, label')) return;
    const td = t.closest('td.c-select');
    if (td) { const cb = td.querySelector('input'); if (cb) cb.click(); return; }
    const tr = t.closest('tr');
    if (!tr) return;
    if (tr.dataset.ex) openPanel(tr.dataset.ex);
    else if (tr.dataset.href) location.hash = tr.dataset.href;
  });

  // --- selection and actions
  function toggle(exId, on) {
    if (!exId) return;
    if (on) st.selected.add(exId); else st.selected.delete(exId);
    syncSelection();
  }

  function selectPage(on) {
    for (const cb of tbody.querySelectorAll('tr[data-key] input.row-select')) {
      cb.checked = on;
      if (on) st.selected.add(cb.dataset.ex); else st.selected.delete(cb.dataset.ex);
    }
    syncSelection();
  }

  /** The selection holds rows on the page only; the bar and the "all" box follow it. */
  function syncSelection() {
    if (!st.alive) return;
    const rows = [...tbody.querySelectorAll('tr[data-key]')];
    const onPage = new Set(rows.map((r) => r.dataset.ex).filter(Boolean));
    for (const id of [...st.selected]) if (!onPage.has(id)) st.selected.delete(id);
    const boxes = [...tbody.querySelectorAll('tr[data-key] input.row-select')];
    selectAll.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    selectAll.indeterminate = !selectAll.checked && st.selected.size > 0;
    bar.update({ count: st.selected.size, states: rows.filter((r) => st.selected.has(r.dataset.ex)).map((r) => r.dataset.xstate) });
  }

  /**
   * After an action (the bar or the panel): the answers hold each exception as now folded, so the rows
   * change at once (the live stream brings the same change to every other page). Done rows are unselected.
   */
  function afterAction(action, r) {
    if (!st.alive) return;
    for (const x of r.results || []) {
      if (x.status !== 'done') continue;
      st.selected.delete(x.exceptionId);
      const ex = x.exception;
      if (!ex || !ex.item) continue;
      const item = {
        ...ex.item, exceptionId: ex.exceptionId || x.exceptionId, state: ex.state, assignee: ex.assignee,
        acknowledgedAt: ex.acknowledgedAt, acknowledgedBy: ex.acknowledgedBy, snoozedUntil: ex.snoozedUntil,
      };
      applyDelta({ op: ex.state === 'resolved' || ex.state === 'closed' ? 'remove' : 'update', item, seq: 0, local: true });
    }
    for (const cb of tbody.querySelectorAll('input.row-select')) cb.checked = st.selected.has(cb.dataset.ex);
    syncSelection();
    announce(bar.status.textContent);
  }

  function render() {
    renderHead();
    tbody.replaceChildren(...st.items.map((it) => rowFor(it)));
    if (!st.items.length) {
      tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: nCols() },
        st.page > 0 ? 'No more items.' : filters.state === 'attention' && !isFiltered(true)
          ? 'Nothing needs attention here.' : 'Nothing here: no item matches.')));
    }
    renderPager();
    syncSelection();
  }

  /** Any filter (`ignoreState`: besides the state filter)? */
  function isFiltered(ignoreState = false) {
    return !!(filters.warehouse || filters.carrier || filters.olderThan || filters.assignee ||
      (!ignoreState && filters.state !== 'all'));
  }

  function renderPager() {
    // Timers (a leaving row's fade) may fire after the user has moved to another page.
    if (!st.alive) return;
    prevBtn.disabled = st.page === 0;
    nextBtn.disabled = !st.nextCursor;
    const n = tbody.querySelectorAll('tr[data-key]').length;
    pageInfo.textContent = `Page ${st.page + 1} · ${n} row${n === 1 ? '' : 's'}`;
    const total = st.total;
    const said = [
      filters.state !== 'all' && stateWord.toLowerCase(),
      filters.assignee && (filters.assignee === 'me' ? 'assigned to me' : filters.assignee === 'none' ? 'unassigned' : 'assigned to ' + filters.assignee),
      filters.warehouse && 'warehouse ' + filters.warehouse, filters.carrier && 'carrier ' + filters.carrier,
      filters.olderThan && 'older than ' + filters.olderThan].filter(Boolean);
    status.textContent = (total === null ? '' : `${fmtCount(total)} ${isFiltered() ? 'match the filters' : 'in this view'}`) +
      (said.length ? ' · ' + said.join(', ') : '') + (filters.sort === 'priority' ? ' · by priority' : '');
    headCount.textContent = total === null ? '' : fmtCount(total);
  }

  function query(cursor, limit) {
    const p = new URLSearchParams();
    if (filters.warehouse) p.set('warehouse', filters.warehouse);
    if (filters.carrier) p.set('carrier', filters.carrier);
    if (filters.olderThan) p.set('olderThan', filters.olderThan);
    p.set('state', filters.state);
    if (filters.assignee) p.set('assignee', filters.assignee);
    if (filters.sort !== 'age') p.set('sort', filters.sort);
    p.set('limit', String(limit));
    if (cursor) p.set('cursor', cursor);
    return (isDL ? '/dead-letters?' : `/views/${encodeURIComponent(viewId)}?`) + p.toString();
  }

  async function load() {
    st.loading = true;
    table.setAttribute('aria-busy', 'true');
    try {
      const [body, w] = await Promise.all([api(query(st.cursors[st.page], PAGE)), st.write === null ? canWrite() : st.write]);
      if (!st.alive) return;
      // A first probe without a token (401) is asked again once the page's own request got one.
      st.write = w === null ? !!(await canWrite()) : !!w;
      bar.el.hidden = !st.write;
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
    const xs = itemState(it);
    if (xs === 'resolved' || xs === 'closed') return false;
    if (filters.state === 'attention' && xs !== 'open' && xs !== 'acknowledged') return false;
    if (STATE_LABEL[filters.state] && xs !== filters.state) return false;
    if (filters.assignee === 'none' && it.assignee) return false;
    // "me" is the caller's name as the server knows it: known once an answer said it, else the page reloads.
    if (filters.assignee === 'me' && whoAmI() !== null && it.assignee !== whoAmI()) return false;
    if (filters.assignee && filters.assignee !== 'me' && filters.assignee !== 'none' && it.assignee !== filters.assignee) return false;
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

  /** The row of an item: by its key, or by its exception id (an action's answer). */
  function findRow(key, exId) {
    for (const tr of tbody.querySelectorAll('tr[data-key]')) {
      if (tr.dataset.key === key || (exId && tr.dataset.ex === exId)) return tr;
    }
    return null;
  }

  function leave(tr) {
    tr.classList.add('leaving');
    tr.removeAttribute('data-key');
    const cb = tr.querySelector('input.row-select');
    if (cb) cb.disabled = true;
    setTimeout(() => { tr.remove(); renderPager(); }, 600);
  }

  /**
   * A change of an item (a live delta, or an action's answer with `local`): a row changes in place, leaves
   * when the item no longer passes the filters (resolved, snoozed on "Needs attention", ...), or arrives.
   */
  function applyDelta(m) {
    if (!st.loaded || st.loading) { st.buffer.push(m); return; }
    if (!m.local && m.seq <= st.asOfSeq) return;
    const it = m.item || {};
    const key = itemKey(viewId, it);
    const old = findRow(key, it.exceptionId);
    // An older change than the one the row shows (an action's answer can outrun its own delta).
    if (old && !m.local && old._seq && m.seq < old._seq) return;
    const keep = m.op !== 'remove' && passes(it);
    if (!keep) {
      if (old) { leave(old); st.removed++; }
    } else if (old) {
      const tr = rowFor(it, m.local ? 0 : m.seq);
      tr.classList.add('changed');
      old.replaceWith(tr);
    } else if (filters.sort === 'age' && inRange(it)) {
      const tr = rowFor(it, m.local ? 0 : m.seq);
      tr.classList.add('arrived');
      const rows = [...tbody.querySelectorAll('tr[data-key]')];
      const before = rows.find((r) => cmpSince(it, r._item) < 0);
      const empty = tbody.querySelector('tr.empty');
      if (empty) empty.remove();
      tbody.insertBefore(tr, before || null);
      st.added++;
    } else if (filters.sort !== 'age' && !m.local) {
      reload(); // where a new item ranks by priority is the server's call
    }
    if (!isFiltered()) {
      if (!m.local && st.total !== null) {
        if (m.op === 'remove') st.total = Math.max(0, st.total - 1);
        else if (m.op === 'add' && !old) st.total++;
      }
    } else {
      recount();
    }
    if (filters.assignee === 'me' && whoAmI() === null && !m.local) reload();
    renderPager();
    syncSelection();
    say();
  }

  /** The count of a filtered page, asked again after changes (the stream counts whole views). */
  const recount = throttle(async () => {
    if (!st.alive) return;
    try {
      const b = await api(query(null, 1));
      if (st.alive && typeof b.count === 'number') { st.total = b.count; renderPager(); }
    } catch { /* the next change asks again */ }
  }, 1000);

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
    // The snapshot counts with its warehouse filter only: its count is ours without the other filters.
    if (!isFiltered() && typeof m.count === 'number') st.total = m.count;
    // The stream is further than the page: reload it (deltas after it are buffered meanwhile).
    if (st.loaded && m.seq > st.asOfSeq) { st.loaded = false; reload(); }
  }
  function onOpen(e) { if (e.detail.reconnected) { st.loaded = false; reload(); } }
  function onSummary(e) {
    const s = e.detail.views && e.detail.views[viewId];
    // The summary counts whole views: a filtered page keeps the filtered count of its answers; "needs
    // attention" alone is the view less its snoozed items when the summary says how many.
    if (!isFiltered() && s && typeof s.count === 'number') { st.total = s.count; renderPager(); }
    else if (!isFiltered(true) && filters.state === 'attention' && s && typeof s.count === 'number' && typeof s.snoozed === 'number') {
      st.total = s.count - s.snoozed;
      renderPager();
    }
    // Snoozes that ran out bring items back without a change of their own: fewer snoozed, reload.
    if (s && typeof s.snoozed === 'number') {
      if (st.snoozed !== undefined && s.snoozed < st.snoozed && filters.state !== 'snoozed' && filters.state !== 'all') reload();
      st.snoozed = s.snoozed;
    }
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
        // A snooze that ran out (decided when read: no change comes for it).
        if (itemState(tr._item) !== tr.dataset.xstate) {
          if (passes(tr._item)) tr.replaceWith(rowFor(tr._item, tr._seq));
          else leave(tr);
          syncSelection();
        }
      }
    },
    unmount() {
      st.alive = false;
      panel.close();
      live.removeEventListener('delta', onDelta);
      live.removeEventListener('snapshot', onSnapshot);
      live.removeEventListener('open', onOpen);
      live.removeEventListener('summary', onSummary);
      live.removeEventListener('resync', onResync);
    },
  };
}
