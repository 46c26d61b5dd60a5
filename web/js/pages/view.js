// One view: its items oldest first (or newest first, by priority, warehouse or carrier: sorted by the server)
// with ticking ages, filters (lifecycle state, assignee, warehouse, carrier, customer, reason, channel, SLA
// state, age; the known values offered from GET /api/v1/values), cursor paging, CSV export, live rows,
// what to try when nothing matches; selection and actions (operator role) and the exception panel.
import { api, canWrite } from '../api.js';
import { live, cmpSince } from '../stream.js';
import { ageMs } from '../clock.js';
import {
  h, fmtAge, fmtCount, fmtDuration, fmtTime, parseDuration, parseTime, csvField, download, announce, throttle, zoned,
} from '../util.js';
import { VIEW_BY_ID, itemSla, WARNING_SHARE, stateLabel, stateIcon, itemKey, itemHref, itemDetail } from '../views.js';
import {
  STATE_CHOICES, ASSIGNEE_CHOICES, STATE_LABEL, itemState, stateChip, actionBar, whoAmI,
} from '../exceptions.js';
import { drawer } from '../panel.js';

const PAGE = 100;
const EXPORT_PAGE = 1000;
const EXPORT_MAX_PAGES = 500;
/** The orders the server sorts a page in (sort=). */
/** at_risk adds its own order, and starts on it: the latest against their promise first. */
const SLACK_CHOICE = ['slack', 'Latest against promise'];
const SORT_CHOICES = [['age', 'Oldest first'], ['newest', 'Newest first'], ['priority', 'Priority (SLA)'],
  ['warehouse', 'Warehouse'], ['carrier', 'Carrier']];
const SLA_CHOICES = [['', 'Any SLA state'], ['breached', 'Breached'], ['due_soon', 'Due soon'], ['within', 'Within SLA'],
  ['none', 'No SLA']];
const CHANNEL_CHOICES = [['', 'Any channel'], ['ECOMMERCE', 'E-commerce'], ['EDI', 'EDI'], ['SERVICE', 'Service']];
/** What each SLA filter keeps, as the row badges say it. */
const SLA_OF_STATE = { breached: 'breached', due_soon: 'warning', within: 'ok' };
const AGE_CHOICES = [['', 'Any age'], ['15m', '≥ 15 min'], ['1h', '≥ 1 h'], ['2h', '≥ 2 h'], ['4h', '≥ 4 h'], ['1d', '≥ 1 day'], ['2d', '≥ 2 days']];
const CSV_COLUMNS = ['since', 'ageSeconds', 'orderId', 'shipmentId', 'warehouseId', 'carrierId', 'kind', 'reason', 'sku',
  'lastFailure', 'interface', 'rule', 'seq', 'code', 'message', 'eventId', 'receivedAt', 'exceptionId', 'state', 'assignee',
  'acknowledgedAt', 'acknowledgedBy', 'snoozedUntil', 'notes', 'slaDueAt', 'system', 'check', 'theirs', 'ours', 'snapshot'];

export function mount(main, viewId, params) {
  const v = VIEW_BY_ID[viewId];
  if (!v) {
    document.title = 'Unknown view · Control tower';
    main.append(h('h1', {}, 'Unknown view'), h('p', {}, 'No view named ', h('code', {}, String(viewId)), '. ',
      h('a', { href: '#/' }, 'Back to the overview')));
    return {};
  }
  document.title = `${v.label} · Control tower`;
  const sortChoices = viewId === 'at_risk' ? [SLACK_CHOICE, ...SORT_CHOICES] : SORT_CHOICES;
  const defaultSort = sortChoices[0][0];
  const filters = {
    warehouse: params.get('warehouse') || '',
    carrier: params.get('carrier') || '',
    olderThan: params.get('olderThan') || params.get('minAge') || '',
    // The dashboard starts on what needs attention (the API's default is every unresolved item).
    state: STATE_CHOICES.some(([k]) => k === params.get('state')) ? params.get('state') : 'attention',
    assignee: params.get('assignee') || '',
    sort: sortChoices.some(([k]) => k === params.get('sort')) ? params.get('sort') : defaultSort,
    customer: params.get('customer') || '',
    reason: params.get('reason') || '',
    channel: CHANNEL_CHOICES.some(([k]) => k && k === (params.get('channel') || '').toUpperCase()) ? params.get('channel').toUpperCase() : '',
    sla: SLA_CHOICES.some(([k]) => k && k === params.get('sla')) ? params.get('sla') : '',
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
  // Warehouse, carrier and reason offer the values present in the view (GET /api/v1/values); the server
  // matches them ignoring case, so a value typed in a link ("DC-2" for "dc-2") finds its items too.
  const valueSelect = (id, name, anyLabel, cur) => h('select', { id, name, class: 'narrow' },
    h('option', { value: '' }, anyLabel), cur ? h('option', { value: cur, selected: true }, cur) : null);
  const whInput = valueSelect('f-warehouse', 'warehouse', 'Any warehouse', filters.warehouse);
  const caInput = valueSelect('f-carrier', 'carrier', 'Any carrier', filters.carrier);
  const reasonSel = valueSelect('f-reason', 'reason', 'Any reason', filters.reason);
  const custInput = h('input', { id: 'f-customer', name: 'customer', value: filters.customer, list: 'cu-list', size: 12, maxlength: 64,
    spellcheck: 'false', placeholder: 'any customer', autocomplete: 'off' });
  const channelSel = h('select', { id: 'f-channel', name: 'channel' },
    CHANNEL_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.channel }, label)));
  const slaSel = h('select', { id: 'f-sla', name: 'sla' },
    SLA_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.sla }, label)));
  const ageSel = h('select', { id: 'f-age', name: 'olderThan' },
    AGE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.olderThan }, label)));
  const stateSel = h('select', { id: 'f-state', name: 'state' },
    STATE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.state }, label)));
  const assigneeSel = h('select', { id: 'f-assignee', name: 'assignee' },
    ASSIGNEE_CHOICES.map(([val, label]) => h('option', { value: val, selected: val === filters.assignee }, label)),
    filters.assignee && !ASSIGNEE_CHOICES.some(([k]) => k === filters.assignee)
      ? h('option', { value: filters.assignee, selected: true }, filters.assignee) : null);
  const sortSel = h('select', { id: 'f-sort', name: 'sort' },
    sortChoices.map(([val, label]) => h('option', { value: val, selected: val === filters.sort }, label)));
  const cuList = h('datalist', { id: 'cu-list' });
  const known = { warehouses: null, carriers: null, reasons: null };   // from GET /api/v1/values
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    h('div', { class: 'field' }, h('label', { for: 'f-state' }, 'State'), stateSel),
    h('div', { class: 'field' }, h('label', { for: 'f-assignee' }, 'Assignee'), assigneeSel),
    h('div', { class: 'field' }, h('label', { for: 'f-sort' }, 'Sort'), sortSel),
    h('div', { class: 'field' }, h('label', { for: 'f-sla' }, 'SLA'), slaSel),
    h('div', { class: 'field' }, h('label', { for: 'f-warehouse' }, 'Warehouse'), whInput),
    h('div', { class: 'field' }, h('label', { for: 'f-carrier' }, 'Carrier'), caInput),
    h('div', { class: 'field', hidden: isDL }, h('label', { for: 'f-reason' }, 'Reason'), reasonSel),
    h('div', { class: 'field', hidden: isDL }, h('label', { for: 'f-customer' }, 'Customer'), custInput, cuList),
    h('div', { class: 'field', hidden: isDL }, h('label', { for: 'f-channel' }, 'Channel'), channelSel),
    h('div', { class: 'field' }, h('label', { for: 'f-age' }, 'Minimum age'), ageSel),
    h('button', { type: 'submit' }, 'Apply'),
    h('button', { type: 'button', class: 'ghost', onclick: () => { location.hash = '#/view/' + viewId; } }, 'Clear'));
  form.addEventListener('submit', (e) => { e.preventDefault(); applyFilters(); });
  for (const sel of [ageSel, stateSel, assigneeSel, sortSel, whInput, caInput, reasonSel, channelSel, slaSel]) {
    sel.addEventListener('change', () => applyFilters());
  }

  /** The filters as the form (and `change`) says them, in the page's hash. */
  function applyFilters(change = {}) {
    const f = {
      state: stateSel.value, assignee: assigneeSel.value, sort: sortSel.value, warehouse: whInput.value.trim(),
      carrier: caInput.value.trim(), reason: reasonSel.value, customer: custInput.value.trim(), channel: channelSel.value,
      sla: slaSel.value, olderThan: ageSel.value, ...change,
    };
    const p = new URLSearchParams();
    if (f.state !== 'attention') p.set('state', f.state);
    if (f.sort !== defaultSort) p.set('sort', f.sort);
    for (const k of ['assignee', 'warehouse', 'carrier', 'reason', 'customer', 'channel', 'sla', 'olderThan']) if (f[k]) p.set(k, f[k]);
    const q = p.toString();
    location.hash = '#/view/' + viewId + (q ? '?' + q : '');
  }

  // --- table
  const status = h('p', { class: 'view-status', id: 'view-status', role: 'status' }, 'Loading…');
  const tbody = h('tbody', {});
  const thead = h('thead', {});
  // [heading, class, the sort its heading asks the server for (clicked again: the other way), null: none]
  const COLS = isDL
    ? [['Age', 'num c-age', 'age'], ['Seq', 'num c-seq'], ['Code', 'c-code'], ['Message', 'c-message'], ['Event id', 'c-event'],
      ['State', 'c-xstate'], ['Assignee', 'c-assignee'], ['Review', 'c-sla']]
    : [['Age', 'num c-age', 'age'], [zoned('Since'), 'num c-since', 'since'], ['Order', 'c-order'], ['Shipment', 'c-shipment'],
      ['Warehouse', 'c-warehouse', 'warehouse'], ['Carrier', 'c-carrier', 'carrier'], ['Detail', 'c-detail'], ['State', 'c-xstate'],
      ['Assignee', 'c-assignee'], ['SLA', 'c-sla', 'priority']];
  const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every row on this page' });
  selectAll.addEventListener('change', () => selectPage(selectAll.checked));
  const stateWord = (STATE_CHOICES.find(([k]) => k === filters.state) || [0, filters.state])[1];
  const table = h('table', { class: 'grid items', id: 'items', 'data-view': viewId },
    h('caption', { class: 'sr-only' }, `${v.label}: ${stateWord.toLowerCase()}, ${sortWords()}`),
    thead, tbody);
  const prevBtn = h('button', { type: 'button', id: 'prev', onclick: () => go(st.page - 1) }, '‹ Previous');
  const nextBtn = h('button', { type: 'button', id: 'next', onclick: () => go(st.page + 1) }, 'Next ›');
  const pageInfo = h('span', { class: 'page-info num' });
  const exportBtn = h('button', { type: 'button', id: 'export', onclick: exportCsv }, 'Export CSV');
  const slaText = v.sla ? `SLA ${v.sla.rule}: ${fmtDuration(v.sla.ms)} (due soon from ${fmtDuration(v.sla.ms * WARNING_SHARE)}; ` +
      'each row by its own due time, as the server\'s rules set it)'
    : v.alwaysBreached ? 'Every item is an open SLA breach' : v.slaOff ? 'The SLA rule of this view is turned off' : 'No SLA: review every item';
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

  /** "oldest first", "by priority", … */
  function sortWords() {
    return { age: 'oldest first', newest: 'newest first', priority: 'by priority', warehouse: 'by warehouse', carrier: 'by carrier',
      slack: 'latest against their promise first' }[filters.sort];
  }

  /** A heading's sort: its button asks the server for that order (age and since: oldest, then newest first). */
  function headCell([c, cls, key]) {
    if (!key) return h('th', { scope: 'col', class: cls }, c);
    const byTime = key === 'age' || key === 'since';
    const on = byTime ? filters.sort === 'age' || filters.sort === 'newest' : filters.sort === key;
    // Oldest first is the longest age first ("descending" by age) and the earliest since ("ascending").
    const oldest = filters.sort === 'age';
    const dir = !on ? null : key === 'age' ? (oldest ? 'descending' : 'ascending') : key === 'since' ? (oldest ? 'ascending' : 'descending')
      : key === 'priority' ? 'descending' : 'ascending';
    const next = byTime ? (oldest ? 'newest' : 'age') : key;
    const mark = !on ? '↕' : dir === 'descending' ? '▼' : '▲';
    const say = { age: 'oldest first', newest: 'newest first', priority: 'by priority, breached first', warehouse: 'by warehouse', carrier: 'by carrier' }[next];
    return h('th', { scope: 'col', class: cls, 'aria-sort': dir },
      h('button', { type: 'button', class: 'sort', 'data-sort': next, title: `Sort ${say}`, onclick: () => applyFilters({ sort: next }) },
        c, h('span', { class: 'sort-mark', 'aria-hidden': 'true' }, mark)));
  }

  function renderHead() {
    thead.replaceChildren(h('tr', {},
      st.write ? h('th', { scope: 'col', class: 'c-select' }, selectAll) : null,
      COLS.map((col) => headCell(col)),
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
    const state = itemSla(viewId, it);
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
    if (!st.items.length) tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: nCols(), class: 'empty-help', id: 'empty-help' }, emptyHelp())));
    renderPager();
    syncSelection();
  }

  /** Any filter (`ignoreState`: besides the state filter)? */
  function isFiltered(ignoreState = false) {
    return !!(filters.warehouse || filters.carrier || filters.olderThan || filters.assignee || filters.customer ||
      filters.reason || filters.channel || filters.sla || (!ignoreState && filters.state !== 'all'));
  }

  /** The filters set, each with the words saying it and the change that drops it. */
  function filterList() {
    const stateOf = (k) => (STATE_CHOICES.find(([x]) => x === k) || [k, k])[1].toLowerCase();
    const slaOf = (k) => (SLA_CHOICES.find(([x]) => x === k) || [k, k])[1].toLowerCase();
    return [
      filters.state !== 'all' && { words: stateOf(filters.state), drop: { state: 'all' }, key: 'state' },
      filters.assignee && { words: filters.assignee === 'me' ? 'assigned to me' : filters.assignee === 'none' ? 'unassigned' : 'assigned to ' + filters.assignee, drop: { assignee: '' }, key: 'assignee' },
      filters.sla && { words: 'SLA ' + slaOf(filters.sla), drop: { sla: '' }, key: 'sla' },
      filters.warehouse && { words: 'warehouse ' + filters.warehouse, drop: { warehouse: '' }, key: 'warehouse' },
      filters.carrier && { words: 'carrier ' + filters.carrier, drop: { carrier: '' }, key: 'carrier' },
      filters.reason && { words: 'reason ' + filters.reason, drop: { reason: '' }, key: 'reason' },
      filters.customer && { words: 'customer ' + filters.customer, drop: { customer: '' }, key: 'customer' },
      filters.channel && { words: 'channel ' + filters.channel, drop: { channel: '' }, key: 'channel' },
      filters.olderThan && { words: 'older than ' + filters.olderThan, drop: { olderThan: '' }, key: 'olderThan' },
    ].filter(Boolean);
  }

  /** A filter value the view does not hold (from GET /api/v1/values), said so: the likeliest reason for nothing. */
  function unknownValue() {
    for (const [k, list] of [['warehouse', known.warehouses], ['carrier', known.carriers], ['reason', known.reasons]]) {
      const val = filters[k];
      if (val && list && !list.some((x) => x.id.toLowerCase() === val.toLowerCase())) {
        const some = list.slice(0, 6).map((x) => x.id).join(', ');
        return `No item of this view has ${k} “${val}”.` + (list.length ? ` Its ${k}s: ${some}${list.length > 6 ? ', …' : ''}.` : '');
      }
    }
    return null;
  }

  /** Why the page is empty, and what to try: each filter as a button that drops it. */
  function emptyHelp() {
    const link = (text, change, id) => h('button', { type: 'button', class: 'linkish', 'data-try': id, onclick: () => applyFilters(change) }, text);
    if (st.page > 0) {
      return [h('p', {}, 'No more items: the previous page held the last ones.'),
        h('button', { type: 'button', class: 'linkish', 'data-try': 'first', onclick: () => go(0) }, 'Back to the first page')];
    }
    const fl = filterList();
    if (!fl.length) {
      return [h('p', {}, h('strong', {}, 'This view is empty: nothing is stuck here right now.'),
        ' New items appear on this page as they happen, without reloading.'),
      h('p', {}, h('a', { href: '#/' }, 'Back to the overview'), ' to find the views that need you.')];
    }
    if (fl.length === 1 && fl[0].key === 'state' && filters.state === 'attention') {
      const snoozed = typeof st.snoozed === 'number' && st.snoozed > 0 ? ` (${st.snoozed} snoozed)` : '';
      return [h('p', {}, h('strong', {}, 'Nothing needs attention here.'),
        ` Every item of this view is snoozed${snoozed}, or the view is empty.`),
      h('p', {}, link('Show every state', { state: 'all' }, 'state'), ' · ', h('a', { href: '#/' }, 'back to the overview'))];
    }
    const unknown = unknownValue();
    return [h('p', {}, h('strong', {}, 'No item matches these filters: '), fl.map((f) => f.words).join(', '), '.'),
      unknown ? h('p', { class: 'unknown-value' }, unknown) : null,
      h('p', {}, 'Try: '),
      h('ul', {}, fl.map((f) => h('li', {}, link(`without “${f.words}”`, f.drop, f.key))),
        fl.length > 1 ? h('li', {}, link('without any filter', { state: 'all', assignee: '', sla: '', warehouse: '', carrier: '', reason: '', customer: '', channel: '', olderThan: '' }, 'all')) : null)];
  }

  function renderPager() {
    // Timers (a leaving row's fade) may fire after the user has moved to another page.
    if (!st.alive) return;
    prevBtn.disabled = st.page === 0;
    nextBtn.disabled = !st.nextCursor;
    const n = tbody.querySelectorAll('tr[data-key]').length;
    pageInfo.textContent = `Page ${st.page + 1} · ${n} row${n === 1 ? '' : 's'}`;
    const total = st.total;
    const said = filterList().map((f) => f.words);
    status.textContent = (total === null ? '' : `${fmtCount(total)} ${isFiltered() ? 'match the filters' : 'in this view'}`) +
      (said.length ? ' · ' + said.join(', ') : '') + ' · ' + sortWords() + (filters.sort !== 'age' ? ' (sorted by the server)' : '');
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
    for (const k of ['customer', 'reason', 'channel', 'sla']) if (filters[k]) p.set(k, filters[k]);
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

  const same = (a, b) => String(a || '').toLowerCase() === String(b || '').toLowerCase();

  /** Whether a changed item passes the filters (the server matches ids ignoring case, so do we). */
  function passes(it) {
    if (filters.warehouse && !same(it.warehouseId, filters.warehouse)) return false;
    if (filters.carrier && !same(it.carrierId, filters.carrier)) return false;
    if (filters.reason && !same(it.reason, filters.reason) && !same(it.lastFailure, filters.reason)) return false;
    if (filters.sla) {
      const s = itemSla(viewId, it);
      // As the server judges it: by slaDueAt alone (an item without one has no SLA).
      if (filters.sla === 'none' ? !!it.slaDueAt : !it.slaDueAt || s !== SLA_OF_STATE[filters.sla]) return false;
    }
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
    setTimeout(() => {
      tr.remove();
      renderPager();
      // A full page that lost a row: the next page's first item belongs on this one now (a page is the
      // next PAGE items from its cursor), so the page is asked again (at most every 2 s).
      if (st.alive && st.nextCursor && tbody.querySelectorAll('tr[data-key]').length < PAGE) refill();
    }, 600);
  }

  const refill = throttle(() => { if (st.alive) load(); }, 2000);

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
    } else if (filters.sort === 'age' && !filters.customer && !filters.channel && inRange(it)) {
      const tr = rowFor(it, m.local ? 0 : m.seq);
      tr.classList.add('arrived');
      const rows = [...tbody.querySelectorAll('tr[data-key]')];
      const before = rows.find((r) => cmpSince(it, r._item) < 0);
      const empty = tbody.querySelector('tr.empty');
      if (empty) empty.remove();
      tbody.insertBefore(tr, before || null);
      st.added++;
    } else if ((filters.sort !== 'age' || filters.customer || filters.channel) && !m.local) {
      // Where a new item ranks is the server's call; so is its customer or channel (not on the item).
      reload();
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
  // The stream's snapshot filters by the exact warehouse id: the page filters live rows itself (passes).
  live.subscribe({ views: [viewId] });
  load();
  fillChoices();

  /** The values the view holds (GET /api/v1/values?view=): warehouse, carrier and reason choices with counts. */
  async function fillChoices() {
    let vals;
    try {
      vals = await api(`/values?view=${encodeURIComponent(viewId)}`);
    } catch { return; /* the choices keep the value in use only */ }
    if (!st.alive) return;
    for (const [sel, key, cur] of [[whInput, 'warehouses', filters.warehouse], [caInput, 'carriers', filters.carrier], [reasonSel, 'reasons', filters.reason]]) {
      const list = vals[key] || [];
      known[key] = list;
      const match = cur && list.find((x) => x.id.toLowerCase() === cur.toLowerCase());
      const opts = list.map((x) => h('option', { value: x.id, selected: !!match && x === match }, `${x.id} (${fmtCount(x.count)})`));
      if (cur && !match) opts.unshift(h('option', { value: cur, selected: true }, `${cur} (none here)`));
      sel.replaceChildren(sel.options[0], ...opts);
      if (key === 'reasons') sel.closest('.field').hidden = isDL || (!list.length && !cur);
    }
    cuList.replaceChildren(...(vals.customers || []).map((c) => h('option', { value: c })));
    if (!st.items.length && st.loaded) render(); // the empty page can now say which value is unknown
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
      const suffix = [filters.warehouse, filters.carrier, filters.customer, filters.channel, filters.sla,
        filters.olderThan && 'older-' + filters.olderThan].filter(Boolean).join('-').replace(/[^A-Za-z0-9_-]/g, '_');
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
        const state = itemSla(viewId, tr._item);
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
