// The exception panel: one exception (GET /api/v1/exceptions/{id}) with what to do next, its item, state,
// assignee, notes and audit trail, and the actions (operator role). Used as the drawer of the view pages and
// "My queue", and as the page #/exception/ID; it follows the live stream.
import { api, canWrite } from './api.js';
import { live } from './stream.js';
import { runbookHref } from './pages/runbook.js';
import { ageMs } from './clock.js';
import { h, fmtAge, fmtTime, throttle, fmtWhen, zoned, warehouseZone, fmtAtWarehouse } from './util.js';
import { VIEW_BY_ID, itemSla, stateLabel, stateIcon, itemDetail } from './views.js';
import {
  stateChip, stateNextStep, viewNextStep, viewOfException, actionBar,
} from './exceptions.js';

const HISTORY_WORDS = {
  acknowledged: 'Acknowledged', assigned: 'Assigned', snoozed: 'Snoozed', noted: 'Note', resolved: 'Resolved', reopened: 'Reopened',
};

/**
 * Mounts the panel of exception `id` into `el`. `onClose` (a drawer) adds a close button; `onAction(action,
 * result)` is told of every action taken from the panel. Returns {unmount(), id}.
 */
export function mountPanel(el, id, { onClose, onAction, headingLevel = 'h2' } = {}) {
  const st = { alive: true, ex: null, write: null };
  const H = headingLevel;
  el.replaceChildren(h('p', { class: 'loading' }, 'Loading the exception…'));
  el.dataset.exceptionId = id;
  delete el.dataset.loaded;

  const bar = actionBar({
    id: 'panel-actions', reopen: true, single: true, ids: () => [id],
    onResult: (action, r) => {
      const x = r.results[0];
      if (x && x.status === 'done' && x.exception && st.alive) render(x.exception);
      if (onAction) onAction(action, r);
    },
  });

  async function load() {
    let ex;
    try {
      ex = await api('/exceptions/' + encodeURIComponent(id));
    } catch (e) {
      if (!st.alive) return;
      el.replaceChildren(head(null),
        h('p', { class: 'error', role: 'alert' }, e.status === 404
          ? 'No such exception: it closed without anyone acting on it, or the id is wrong.'
          : `Could not load it: ${e.message}`));
      el.dataset.loaded = 'error';
      return;
    }
    if (!st.alive) return;
    if (st.write === null) st.write = await canWrite();
    if (!st.alive) return;
    render(ex);
  }
  const reload = throttle(() => { if (st.alive) load(); }, 300);

  function head(ex) {
    const view = (ex && ex.view) || viewOfException(id);
    const label = (VIEW_BY_ID[view] || { label: view || 'Exception' }).label;
    return h('div', { class: 'panel-head' },
      h(H, { id: 'panel-title', tabindex: '-1' }, label, ' ', ex ? stateChip(ex.item || ex, ex.state) : null),
      onClose ? h('button', { type: 'button', class: 'ghost close', id: 'panel-close', 'aria-label': 'Close the exception panel', onclick: onClose }, '✕') : null);
  }

  function render(ex) {
    st.ex = ex;
    const it = ex.item || {};
    const view = ex.view || viewOfException(id);
    const live_ = ex.state !== 'closed' && ex.state !== 'resolved';
    const sla = live_ ? itemSla(view, { ...it, since: it.since || ex.openedAt }) : null;
    const facts = [];
    const link = (kind, v) => h('a', { href: `#/${kind}/${encodeURIComponent(v)}` }, v);
    if (it.orderId) facts.push(['Order', link('order', it.orderId)]);
    if (it.shipmentId) facts.push(['Shipment', link('shipment', it.shipmentId)]);
    if (view === 'dead_letters' && it.seq !== undefined) facts.push(['Dead letter', h('a', { href: '#/dead-letters?seq=' + it.seq }, `seq ${it.seq}`)]);
    const detail = itemDetail(it) || it.message;
    if (detail) facts.push(['Detail', detail]);
    if (it.warehouseId) facts.push(['Warehouse', it.warehouseId]);
    if (warehouseZone(it.warehouseId)) facts.push(['Opened, warehouse time', h('span', { class: 'wh-time' }, fmtAtWarehouse(ex.openedAt || it.since, it.warehouseId))]);
    if (it.carrierId) facts.push(['Carrier', it.carrierId]);
    const opened = ex.openedAt || it.since;
    facts.push(['Opened', h('span', {}, `${fmtWhen(opened)}`, live_ ? [' · age ', h('span', { class: 'age num', 'data-since': opened }, fmtAge(ageMs(opened)))] : null)]);
    if (it.slaDueAt) facts.push(['SLA due', `${fmtWhen(it.slaDueAt)}`]);
    if (sla) facts.push(['SLA', h('span', { class: 'badge small', 'data-state': sla }, stateIcon(sla), h('span', {}, stateLabel(view, sla)))]);
    facts.push(['Assignee', h('span', { id: 'panel-assignee' }, ex.assignee || h('span', { class: 'muted' }, 'nobody'))]);
    facts.push(['Acknowledged', ex.acknowledgedAt ? `${fmtWhen(ex.acknowledgedAt)}${ex.acknowledgedBy ? ' by ' + ex.acknowledgedBy : ''}` : h('span', { class: 'muted' }, 'not yet')]);
    if (ex.state === 'snoozed' && ex.snoozedUntil) facts.push(['Snoozed until', `${fmtWhen(ex.snoozedUntil)}`]);
    if (ex.resolution) facts.push(['Resolution', ex.resolution]);
    if (ex.closedAt) facts.push(['Closed', `${fmtWhen(ex.closedAt)}${ex.closedBy && ex.closedBy.type ? ' by ' + ex.closedBy.type : ''}`]);

    const notes = ex.notes || [];
    const history = ex.history || [];
    const next = [stateNextStep(ex, st.write !== false)];
    if (live_) next.push(viewNextStep(view));

    const parts = [
      head(ex),
      h('section', { class: 'next-step', id: 'next-step', 'aria-label': 'What to do next' },
        h('strong', {}, 'Next step: '), next.filter(Boolean).join(' '), ' ',
        h('a', { href: runbookHref(view, it), id: 'panel-runbook', class: 'runbook-link' }, 'Open the runbook')),
    ];
    if (st.write) {
      parts.push(bar.el);
      bar.update({ count: 1, states: [ex.state] });
    } else if (st.write === false) {
      parts.push(h('p', { class: 'note', id: 'read-only-note' }, 'Read only: acting on exceptions needs the operator role.'));
    }
    parts.push(
      h('dl', { class: 'facts', id: 'panel-facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
      h('section', { 'aria-labelledby': 'notes-h' },
        h('h3', { id: 'notes-h' }, `Notes (${notes.length})`),
        notes.length ? h('ol', { class: 'notes', id: 'panel-notes' }, notes.map((n) => h('li', {},
          h('span', { class: 'muted small' }, `${fmtTime(n.at)} · ${n.actor || '?'}${n.action && n.action !== 'noted' ? ' · ' + n.action : ''}`),
          h('p', {}, n.note))))
          : h('p', { class: 'muted', id: 'panel-notes' }, 'No note yet.')),
      h('section', { 'aria-labelledby': 'hist-h' },
        h('h3', { id: 'hist-h' }, `Audit trail (${history.length})`),
        history.length ? h('table', { class: 'grid history', id: 'panel-history' },
          h('caption', { class: 'sr-only' }, 'Every action on this exception, oldest first'),
          h('thead', {}, h('tr', {}, [zoned('When'), 'Action', 'By', 'What', 'Seq'].map((c) => h('th', { scope: 'col', class: c === 'Seq' ? 'num' : null }, c)))),
          h('tbody', {}, history.map((x) => h('tr', { 'data-action': x.action },
            h('td', { class: 'num' }, fmtTime(x.at)),
            h('td', {}, HISTORY_WORDS[x.action] || x.action),
            h('td', {}, x.actor || '—'),
            h('td', { class: 'wrap' }, [x.assignee !== undefined ? (x.assignee ? `to ${x.assignee}` : 'unassigned') : null,
              x.until ? `until ${fmtWhen(x.until)}` : null, x.resolution || null, x.note ? `“${x.note}”` : null].filter(Boolean).join(' · ')),
            h('td', { class: 'num' }, x.seq ? String(x.seq) : '—')))))
          : h('p', { class: 'muted', id: 'panel-history' }, 'Nobody has acted on it yet.')),
      h('p', { class: 'muted small mono' }, 'Exception ', id),
    );
    el.replaceChildren(...parts);
    el.dataset.state = ex.state || '';
    el.dataset.loaded = 'true';
  }

  function onDelta(e) {
    const it = e.detail.item;
    if (it && it.exceptionId === id) reload();
  }
  function onOpen(e) { if (e.detail.reconnected) reload(); }
  live.addEventListener('delta', onDelta);
  live.addEventListener('open', onOpen);
  live.addEventListener('resync', reload);
  load();
  return {
    id,
    reload,
    unmount() {
      st.alive = false;
      live.removeEventListener('delta', onDelta);
      live.removeEventListener('open', onOpen);
      live.removeEventListener('resync', reload);
    },
  };
}

/**
 * A drawer at the right of a list holding the panel of one exception at a time; the list stays usable.
 * Escape or the close button closes it. Returns {el, open(id), close(), id}.
 */
export function drawer({ onAction } = {}) {
  let cur = null;
  let opener = null;
  const el = h('aside', { class: 'drawer', id: 'exception-panel', 'aria-labelledby': 'panel-title', tabindex: '-1', hidden: true });
  function open(id) {
    if (cur) cur.unmount();
    opener = document.activeElement;
    el.hidden = false;
    cur = mountPanel(el, id, { onClose: close, onAction });
    el.focus({ preventScroll: true });
  }
  function close() {
    if (cur) cur.unmount();
    cur = null;
    el.hidden = true;
    el.replaceChildren();
    delete el.dataset.exceptionId;
    if (opener && opener.isConnected) opener.focus({ preventScroll: true });
    opener = null;
  }
  el.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !document.querySelector('dialog[open]')) close(); });
  return { el, open, close, get id() { return cur ? cur.id : null; } };
}
