// Contract health: which producer (source.system / source.instance) broke the event contract how (the
// code), since when, how often, with the latest example (docs/contract/conformance.md). Dead letters come
// from the store; the HTTP ingest's rejections from the server's memory (since it started).
import { api } from '../api.js';
import { h, fmtTime, fmtCount, fmtWhen, zoneName, zoned, fmtAge } from '../util.js';
import { ageMs } from '../clock.js';

const REFRESH_MS = 5000;

/** One line per (system, instance, code, where): dead letters and ingest rejections side by side. */
export function mergeRows(doc) {
  const rows = [];
  for (const [where, part] of [['dead letters', doc.deadLetters], ['ingest', doc.ingestRejections]]) {
    for (const r of (part && part.rows) || []) rows.push({ ...r, where });
  }
  // The latest breakage first; ties by producer and code, so that the order is stable between refreshes.
  rows.sort((a, b) => (b.lastSeenAt || '').localeCompare(a.lastSeenAt || '') ||
    `${a.system}/${a.instance}/${a.code}/${a.where}`.localeCompare(`${b.system}/${b.instance}/${b.code}/${b.where}`));
  return rows;
}

/** "wms / wms-dc2"; "(none)" instances are left out. */
export function producerName(r) {
  return r.instance && r.instance !== '(none)' ? `${r.system} / ${r.instance}` : r.system;
}

export function mount(main) {
  document.title = 'Contract health · Control tower';
  const st = { alive: true, timer: null };
  const status = h('p', { class: 'view-status', role: 'status', id: 'contract-status' }, 'Loading…');
  const figs = h('p', { class: 'small', id: 'contract-totals' }, '');
  const body = h('div', { id: 'contract-rows' });
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › Contract health'),
    h('div', { class: 'page-head' }, h('h1', {}, 'Contract health'),
      h('p', { class: 'muted' }, 'What each producer sent that the tower refused: by system, instance and reason, since when, ' +
        'how often, and the latest example. Fix it at the source, then redrive its dead letters.')),
    h('div', { class: 'toolbar' }, status), figs, body);

  function row(r) {
    const example = r.example || {};
    const open = r.where === 'dead letters' && example.seq
      ? h('a', { href: `#/dead-letters?seq=${encodeURIComponent(example.seq)}`, class: 'small' }, `seq ${example.seq}`) : null;
    return h('tr', { 'data-system': r.system, 'data-instance': r.instance, 'data-code': r.code, 'data-where': r.where },
      h('th', { scope: 'row' }, producerName(r)),
      h('td', {}, h('code', {}, r.code)),
      h('td', {}, r.where),
      h('td', { class: 'num', 'data-fig': 'count' }, fmtCount(r.count)),
      h('td', { class: 'num' }, h('time', { datetime: r.firstSeenAt }, fmtWhen(r.firstSeenAt))),
      h('td', { class: 'num' }, h('time', { datetime: r.lastSeenAt }, fmtTime(r.lastSeenAt)), ' (',
        h('span', { class: 'num', 'data-since': r.lastSeenAt }, fmtAge(ageMs(r.lastSeenAt))), ' ago)'),
      h('td', { class: 'wrap' }, example.eventId ? [h('span', { class: 'mono' }, example.eventId), ': '] : '',
        example.message || '—', open ? [' · ', open] : ''));
  }

  function render(doc) {
    const rows = mergeRows(doc);
    const dl = (doc.deadLetters && doc.deadLetters.total) || 0;
    const ing = (doc.ingestRejections && doc.ingestRejections.total) || 0;
    const producers = new Set(rows.map(producerName)).size;
    figs.textContent = `${fmtCount(dl)} dead letter${dl === 1 ? '' : 's'} · ${fmtCount(ing)} ingest rejection${ing === 1 ? '' : 's'}` +
      ` (since the server started) · ${producers} producer${producers === 1 ? '' : 's'}`;
    if (!rows.length) {
      body.replaceChildren(h('p', { class: 'ok-note', id: 'contract-none' }, 'No producer has sent anything the tower refused.'));
      return;
    }
    body.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'contract' },
      h('caption', { class: 'sr-only' }, 'Rejections by producer and code, the latest first'),
      h('thead', {}, h('tr', {}, ['Producer', 'Code', 'Where', 'Count', zoned('First seen'), zoned('Last seen'), 'Latest example']
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map(row)))));
  }

  async function load() {
    clearTimeout(st.timer);
    try {
      const doc = await api('/producers');
      if (!st.alive) return;
      render(doc);
      status.textContent = `As of sequence ${fmtCount(doc.asOfSeq || 0)} · updated ${fmtTime(doc.now || new Date().toISOString()).slice(11)} ${zoneName()}`;
      body.dataset.loaded = 'true';
    } catch (e) {
      if (st.alive) status.textContent = `Could not load the producers: ${e.message}`;
    }
    if (st.alive) st.timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return {
    unmount() {
      st.alive = false;
      clearTimeout(st.timer);
    },
  };
}
