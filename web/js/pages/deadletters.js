// Dead letters: why each event was refused, its raw bytes, and redrive (operator role) after confirmation.
import { api } from '../api.js';
import { live } from '../stream.js';
import { h, fmtTime, fmtCount, throttle, announce, fmtWhen } from '../util.js';
import { stateChip, exceptionHref } from '../exceptions.js';

const PAGE = 50;

export function mount(main, _arg, params) {
  document.title = 'Dead letters · Control tower';
  const focusSeq = params.get('seq');
  const st = { alive: true, cursors: [null], page: 0, next: null, items: [], count: null, current: null };
  const status = h('p', { class: 'view-status', role: 'status', id: 'dl-status' }, 'Loading…');
  const list = h('div', { class: 'dl-list', id: 'dead-letters' });
  const prevBtn = h('button', { type: 'button', onclick: () => go(st.page - 1) }, '‹ Previous');
  const nextBtn = h('button', { type: 'button', onclick: () => go(st.page + 1) }, 'Next ›');

  // The confirmation dialog: redrive as stored, or with a corrected event.
  const text = h('textarea', { id: 'redrive-body', rows: 12, spellcheck: 'false', 'aria-describedby': 'redrive-help' });
  const dlgMsg = h('p', { id: 'redrive-help' });
  const dlgResult = h('p', { class: 'dlg-result', role: 'alert' });
  const useCorrected = h('input', { type: 'checkbox', id: 'redrive-corrected' });
  const confirmBtn = h('button', { type: 'button', class: 'primary danger', id: 'redrive-confirm' }, 'Redrive');
  const dlg = h('dialog', { id: 'redrive-dialog', 'aria-labelledby': 'redrive-title' },
    h('h2', { id: 'redrive-title' }, 'Redrive a dead letter'), dlgMsg,
    h('div', { class: 'check' }, useCorrected, h('label', { for: 'redrive-corrected' }, 'Send my corrected event instead of the stored bytes')),
    h('label', { for: 'redrive-body', class: 'sr-only' }, 'Event JSON'), text, dlgResult,
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => dlg.close() }, 'Cancel'), confirmBtn));
  text.addEventListener('input', () => { useCorrected.checked = true; });
  confirmBtn.addEventListener('click', redrive);

  const headCount = h('span', { class: 'head-count num', id: 'head-count' }, '');
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › Dead letters'),
    h('div', { class: 'page-head' }, h('h1', {}, 'Dead letters ', headCount),
      h('p', { class: 'muted' }, 'Events the tower refused, with the reason and the bytes received. Redrive sends one back through validation (operator role).')),
    h('div', { class: 'toolbar' }, status, h('div', { class: 'pager' }, prevBtn, nextBtn)),
    list, dlg);

  function card(d) {
    const raw = d.raw !== undefined ? d.raw : d.rawHex !== undefined ? `(not UTF-8, hex) ${d.rawHex}` : '(no raw bytes kept)';
    return h('article', { class: 'dl', 'data-seq': String(d.seq), id: 'dl-' + d.seq, 'aria-labelledby': 'dl-h-' + d.seq },
      h('header', {},
        h('h2', { id: 'dl-h-' + d.seq }, h('code', { class: 'code' }, d.code || 'UNKNOWN'), ' ', h('span', { class: 'muted' }, `seq ${d.seq}`),
          d.eventId ? [' · ', h('span', { class: 'mono' }, d.eventId)] : null),
        h('div', { class: 'dl-actions' },
          d.exceptionId ? [stateChip(d), d.assignee ? h('span', { class: 'muted' }, ` ${d.assignee}`) : null,
            h('a', { href: exceptionHref(d.exceptionId), class: 'ex-link', 'aria-label': `Details of dead letter ${d.seq}` }, 'Details')] : null,
          h('button', { type: 'button', class: 'redrive', onclick: () => openDialog(d), 'aria-label': `Redrive dead letter ${d.seq}` }, 'Redrive…'))),
      h('p', { class: 'reason' }, d.message || ''),
      h('p', { class: 'muted small' }, `Received ${fmtWhen(d.receivedAt || d.since)} · age `,
        h('span', { class: 'age num', 'data-since': d.receivedAt || d.since }, '')),
      h('details', { open: focusSeq === String(d.seq) ? true : null },
        h('summary', {}, 'Raw event'), h('pre', { class: 'raw' }, raw)));
  }

  async function load() {
    try {
      const p = new URLSearchParams({ limit: String(PAGE) });
      if (st.cursors[st.page]) p.set('cursor', st.cursors[st.page]);
      const b = await api('/dead-letters?' + p.toString());
      if (!st.alive) return;
      st.items = b.items || [];
      st.next = b.nextCursor || null;
      st.count = b.count ?? st.items.length;
      list.replaceChildren(...st.items.map(card));
      if (!st.items.length) list.append(h('p', { class: 'ok-note' }, 'No dead letter. Every event received was valid.'));
      status.textContent = `${fmtCount(st.count)} dead letter${st.count === 1 ? '' : 's'} · page ${st.page + 1}`;
      headCount.textContent = fmtCount(st.count);
      prevBtn.disabled = st.page === 0;
      nextBtn.disabled = !st.next;
      list.dataset.loaded = 'true';
      if (focusSeq) {
        const el = document.getElementById('dl-' + focusSeq);
        if (el) el.scrollIntoView({ block: 'center' });
      }
    } catch (e) {
      if (st.alive) status.textContent = `Could not load the dead letters: ${e.message}`;
    }
  }
  const reload = throttle(() => { if (st.alive && !dlg.open) load(); }, 1000);

  function go(page) {
    if (page < 0 || (page > st.page && !st.next)) return;
    if (page > st.page) st.cursors[page] = st.next;
    st.page = page;
    st.cursors.length = page + 1;
    load();
  }

  function openDialog(d) {
    st.current = d;
    dlgMsg.textContent = `Dead letter ${d.seq} (${d.code}): ${d.message || ''}. Redriving publishes the event again; ` +
      'if it is (still) invalid the server refuses it, says which field is wrong and publishes nothing, so you can correct it here.';
    text.value = d.raw !== undefined ? prettyOrRaw(d.raw) : '';
    useCorrected.checked = false;
    dlgResult.textContent = '';
    confirmBtn.disabled = false;
    dlg.showModal();
    confirmBtn.focus();
  }

  async function redrive() {
    const d = st.current;
    if (!d) return;
    let body = '';
    if (useCorrected.checked) {
      try { JSON.parse(text.value); } catch (e) {
        dlgResult.textContent = `The corrected event is not valid JSON: ${e.message}`;
        return;
      }
      body = text.value;
    }
    confirmBtn.disabled = true;
    dlgResult.textContent = 'Redriving…';
    try {
      const r = await api(`/dead-letters/${encodeURIComponent(d.seq)}/redrive`, { method: 'POST', body });
      const msg = `Dead letter ${d.seq}: ${r.result || 'done'}${r.eventId ? ` (event ${r.eventId})` : ''}.`;
      dlgResult.textContent = msg;
      // The server resolves a redriven dead letter (REDRIVEN): it leaves the list; no second redrive meanwhile.
      redriven(d.seq);
      status.textContent = msg;
      announce(msg);
      setTimeout(() => { if (dlg.open) dlg.close(); load(); }, 1200);
    } catch (e) {
      dlgResult.textContent = e.status === 403 ? 'Refused: redrive needs a token with the operator role.'
        : e.status === 401 ? 'Refused: an API token is needed.'
          : `Redrive failed: ${e.message}`;
      confirmBtn.disabled = false;
    }
  }

  /** A dead letter that was redriven: its card says so and loses its button until it leaves the list. */
  function redriven(seq) {
    const el = document.getElementById('dl-' + seq);
    if (!el) return;
    el.classList.add('redriven');
    const b = el.querySelector('button.redrive');
    if (b) b.remove();
    const note = el.querySelector('.dl-actions');
    if (note && !note.querySelector('.redriven-note')) note.append(h('span', { class: 'redriven-note' }, 'Redriven'));
  }

  function onDelta(e) {
    const m = e.detail;
    if (m.view !== 'dead_letters') return;
    // Resolved (a redrive, or by hand) or cleared: the card goes at once, the page reloads after.
    if (m.op === 'remove' && m.item && m.item.seq !== undefined) {
      const el = document.getElementById('dl-' + m.item.seq);
      if (el && !(dlg.open && st.current && String(st.current.seq) === String(m.item.seq))) el.remove();
      else if (el) redriven(m.item.seq);
    }
    reload();
  }
  function onOpen(e) { if (e.detail.reconnected) reload(); }
  live.addEventListener('delta', onDelta);
  live.addEventListener('open', onOpen);
  live.subscribe({ views: ['dead_letters'] });
  load();
  return {
    unmount() {
      st.alive = false;
      live.removeEventListener('delta', onDelta);
      live.removeEventListener('open', onOpen);
    },
  };
}

function prettyOrRaw(raw) {
  try { return JSON.stringify(JSON.parse(raw), null, 2); } catch { return raw; }
}
