// My queue (#/mine): the open exceptions assigned to the caller, across views, oldest first
// (GET /api/v1/exceptions?assignee=me), with the same actions and panel as the view pages.
import { api, canWrite } from '../api.js';
import { live } from '../stream.js';
import { ageMs } from '../clock.js';
import { h, fmtAge, fmtCount, fmtTime, throttle, announce, zoned } from '../util.js';
import { VIEW_BY_ID, itemSla, stateLabel, stateIcon, itemDetail } from '../views.js';
import { itemState, stateChip, actionBar, viewOfException, learnMe, whoAmI } from '../exceptions.js';
import { drawer } from '../panel.js';

const LIMIT = 1000;

export function mount(main) {
  document.title = 'My queue · Control tower';
  const st = { alive: true, items: [], write: null, selected: new Set(), loaded: false };
  const status = h('p', { class: 'view-status', id: 'mine-status', role: 'status' }, 'Loading…');
  const tbody = h('tbody', {});
  const thead = h('thead', {});
  const selectAll = h('input', { type: 'checkbox', id: 'select-all', 'aria-label': 'Select every row' });
  selectAll.addEventListener('change', () => {
    for (const cb of tbody.querySelectorAll('input.row-select')) {
      cb.checked = selectAll.checked;
      if (cb.checked) st.selected.add(cb.dataset.ex); else st.selected.delete(cb.dataset.ex);
    }
    sync();
  });
  const table = h('table', { class: 'grid items', id: 'items', 'data-view': 'mine' },
    h('caption', { class: 'sr-only' }, 'Exceptions assigned to me, oldest first'), thead, tbody);
  const bar = actionBar({ ids: () => [...st.selected], onResult: afterAction });
  bar.el.hidden = true;
  const panel = drawer({ onAction: afterAction });
  const headCount = h('span', { class: 'head-count num', id: 'head-count' }, '');
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › My queue'),
    h('div', { class: 'page-head' }, h('h1', {}, 'My queue ', headCount),
      h('p', { class: 'muted' }, 'Open exceptions assigned to me, across every view, oldest first.')),
    h('p', { class: 'next-step compact' }, h('strong', {}, 'Next step: '),
      'work the oldest first; click a row for what to do, its notes and history. Resolve what is fixed, note what is waiting.'),
    h('div', { class: 'toolbar' }, status),
    bar.el,
    h('div', { class: 'with-drawer' }, h('div', { class: 'table-wrap' }, table), panel.el));

  const COLS = ['View', 'Age', zoned('Since'), 'Concerns', 'Detail', 'State', 'SLA'];

  function rowFor(it) {
    const view = it.view || viewOfException(it.exceptionId);
    const a = ageMs(it.since);
    const sla = itemSla(view, it);
    const exId = it.exceptionId || '';
    const concerns = it.orderId ? h('a', { href: '#/order/' + encodeURIComponent(it.orderId) }, it.orderId)
      : it.shipmentId ? h('a', { href: '#/shipment/' + encodeURIComponent(it.shipmentId) }, it.shipmentId)
        : it.seq !== undefined ? h('a', { href: '#/dead-letters?seq=' + it.seq }, `dead letter ${it.seq}`) : '—';
    const tr = h('tr', { 'data-key': exId, 'data-ex': exId, 'data-view': view || '', 'data-state': sla, 'data-xstate': itemState(it),
      class: panel.id === exId ? 'current' : null },
      st.write ? h('td', { class: 'c-select' }, h('input', { type: 'checkbox', class: 'row-select', 'data-ex': exId,
        checked: st.selected.has(exId), 'aria-label': `Select ${exId}` })) : null,
      h('td', { class: 'c-view' }, view ? h('a', { href: '#/view/' + view }, (VIEW_BY_ID[view] || { label: view }).label) : '—'),
      h('td', { class: 'num c-age' }, h('span', { class: 'age num', 'data-since': it.since || '' }, fmtAge(a))),
      h('td', { class: 'num c-since' }, fmtTime(it.since)),
      h('td', { class: 'c-concerns' }, concerns, it.orderId && it.shipmentId ? [' · ', h('a', { href: '#/shipment/' + encodeURIComponent(it.shipmentId) }, it.shipmentId)] : null),
      h('td', { class: 'wrap c-detail' }, itemDetail(it) || it.message || '—'),
      h('td', { class: 'c-xstate' }, stateChip(it)),
      h('td', { class: 'c-sla' }, h('span', { class: 'badge small', 'data-state': sla }, stateIcon(sla), h('span', {}, stateLabel(view, sla)))),
      h('td', { class: 'c-open' }, h('button', { type: 'button', class: 'ghost details', 'data-ex': exId }, 'Details')));
    tr._item = it;
    return tr;
  }

  function render() {
    thead.replaceChildren(h('tr', {}, st.write ? h('th', { scope: 'col', class: 'c-select' }, selectAll) : null,
      COLS.map((c) => h('th', { scope: 'col', class: /^(Age|Since)/.test(c) ? 'num' : null }, c)),
      h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Details'))));
    tbody.replaceChildren(...st.items.map(rowFor));
    if (!st.items.length) {
      tbody.append(h('tr', { class: 'empty' }, h('td', { colspan: COLS.length + 1 + (st.write ? 1 : 0) },
        'Nothing assigned to you. Pick something from a view with "Assign to me".')));
    }
    const n = st.items.length;
    status.textContent = `${fmtCount(n)} exception${n === 1 ? '' : 's'} assigned to ${whoAmI() || 'me'}${n >= LIMIT ? ' (the first 1,000)' : ''}`;
    headCount.textContent = fmtCount(n);
    sync();
  }

  function sync() {
    const ids = new Set(st.items.map((it) => it.exceptionId));
    for (const id of [...st.selected]) if (!ids.has(id)) st.selected.delete(id);
    const boxes = [...tbody.querySelectorAll('input.row-select')];
    selectAll.checked = boxes.length > 0 && boxes.every((b) => b.checked);
    selectAll.indeterminate = !selectAll.checked && st.selected.size > 0;
    bar.update({ count: st.selected.size, states: st.items.filter((it) => st.selected.has(it.exceptionId)).map((it) => itemState(it)) });
  }

  async function load() {
    table.setAttribute('aria-busy', 'true');
    try {
      const [b, w] = await Promise.all([api(`/exceptions?assignee=me&limit=${LIMIT}`), st.write === null ? canWrite() : st.write]);
      if (!st.alive) return;
      st.write = w === null ? !!(await canWrite()) : !!w;
      bar.el.hidden = !st.write;
      st.items = b.items || b.exceptions || [];
      if (st.items.length) learnMe(st.items[0].assignee);
      st.loaded = true;
      render();
      table.dataset.loaded = 'true';
    } catch (e) {
      if (st.alive) { status.textContent = `Could not load your queue: ${e.message}`; status.classList.add('error'); }
    } finally {
      table.removeAttribute('aria-busy');
    }
  }
  const reload = throttle(() => { if (st.alive) load(); }, 500);

  function afterAction(_action, r) {
    for (const x of r.results || []) if (x.status === 'done') st.selected.delete(x.exceptionId);
    announce(bar.status.textContent);
    reload();
  }

  tbody.addEventListener('change', (e) => {
    const cb = e.target.closest('input.row-select');
    if (!cb) return;
    if (cb.checked) st.selected.add(cb.dataset.ex); else st.selected.delete(cb.dataset.ex);
    sync();
  });
  tbody.addEventListener('click', (e) => {
    const det = e.target.closest('button.details');
    if (!det && e.target.closest('a, button, input, label')) return;
    const tr = e.target.closest('tr[data-ex]');
    if (!tr || !tr.dataset.ex) return;
    panel.open(tr.dataset.ex);
    for (const r of tbody.querySelectorAll('tr')) r.classList.toggle('current', r === tr);
  });

  // A change to one of my rows, or an item now assigned to me (or to someone, while my name is unknown).
  function onDelta(e) {
    const it = e.detail.item || {};
    if (st.items.some((x) => x.exceptionId === it.exceptionId) || (it.assignee && (whoAmI() === null || it.assignee === whoAmI()))) reload();
  }
  function onOpen(e) { if (e.detail.reconnected) reload(); }
  live.addEventListener('delta', onDelta);
  live.addEventListener('open', onOpen);
  live.addEventListener('resync', reload);
  live.subscribe({});
  load();
  return {
    unmount() {
      st.alive = false;
      panel.close();
      live.removeEventListener('delta', onDelta);
      live.removeEventListener('open', onOpen);
      live.removeEventListener('resync', reload);
    },
  };
}
