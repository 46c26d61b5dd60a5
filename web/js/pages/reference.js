// Reference data (contract v1.2, docs/contract/reference.md): the warehouses (with their time zones), carriers and
// skus the master data defined (the latest definition of each code), and the codes orders and shipments name that
// no definition covers (UNKNOWN_CODE anomalies, by code and producer) with what to do next. Also loads the
// warehouses' time zones the other pages show warehouse times in (util.js fmtAtWarehouse).
import { api } from '../api.js';
import { h, fmtTime, fmtCount, fmtWhen, fmtInZone, fmtAge, zoneName, setWarehouseZones } from '../util.js';
import { ageMs, now } from '../clock.js';

const REFRESH_MS = 10000;
const SKU_SHOWN = 200; // skus listed at once; the filter finds the others

/** Loads the warehouses' time zones for every page (quietly: without them times stay in the browser's zone). */
export async function loadWarehouseZones() {
  try {
    const doc = await api('/reference?kind=warehouse&limit=10000', { noPrompt: true }); // the page asks, not this
    setWarehouseZones(doc.warehouses || []);
    return true;
  } catch {
    return false;
  }
}

/** "wms / wms-dc2", or the system alone. */
export function producerLabel(g) {
  return g.producerInstance ? `${g.producer} / ${g.producerInstance}` : g.producer || 'unknown producer';
}

/** What to do next about one unknown code. */
export function nextStep(g) {
  const def = { warehouse: 'warehouseDefined', carrier: 'carrierDefined', sku: 'skuDefined' }[g.kind] || 'a definition';
  return `If ${g.code} is real, have the master data publish its ${def}: the items close by themselves. ` +
    `If not, ${producerLabel(g)} sends a wrong code: fix its mapping, then resolve the items as fixed at source.`;
}

function table(id, caption, heads, rows) {
  return h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, heads.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows)));
}

function unknownRows(groups) {
  return groups.map((g) => {
    const ex = g.example || {};
    const where = ex.orderId ? h('a', { href: '#/order/' + encodeURIComponent(ex.orderId) }, ex.orderId)
      : ex.shipmentId ? h('a', { href: '#/shipment/' + encodeURIComponent(ex.shipmentId) }, ex.shipmentId) : '—';
    return h('tr', { 'data-kind': g.kind, 'data-code': g.code, 'data-producer': g.producer || '' },
      h('td', {}, g.kind),
      h('th', { scope: 'row' }, h('code', {}, g.code)),
      h('td', {}, producerLabel(g)),
      h('td', { class: 'num', 'data-fig': 'count' }, fmtCount(g.count)),
      h('td', { class: 'num' }, h('time', { datetime: g.since }, fmtWhen(g.since)), ' (',
        h('span', { class: 'age num', 'data-since': g.since }, fmtAge(ageMs(g.since))), ' ago)'),
      h('td', {}, where, ex.exceptionId ? [' · ', h('a', { href: '#/exception/' + encodeURIComponent(ex.exceptionId) }, 'work it')] : ''),
      h('td', { class: 'wrap' }, nextStep(g), ' ', h('a', { href: '#/runbook/' + (g.runbook || 'rule/UNKNOWN_CODE') }, 'Runbook')));
  });
}

function warehouseRows(list) {
  const t = now();
  return list.map((w) => h('tr', { 'data-warehouse': w.warehouseId },
    h('th', { scope: 'row' }, h('code', {}, w.warehouseId)),
    h('td', {}, w.name || '—'), h('td', {}, w.region || '—'),
    h('td', {}, w.timeZone || h('span', { class: 'muted' }, 'not defined: the browser\'s zone is used')),
    h('td', { class: 'num wh-local' }, w.timeZone ? fmtInZone(t, w.timeZone) : '—'),
    h('td', { class: 'num' }, fmtTime(w.definedAt))));
}

function skuRows(list, filter) {
  const f = filter.trim().toLowerCase();
  const hits = f ? list.filter((s) => s.sku.toLowerCase().includes(f) || (s.name || '').toLowerCase().includes(f)) : list;
  return hits.slice(0, SKU_SHOWN).map((s) => h('tr', { 'data-sku': s.sku },
    h('th', { scope: 'row' }, h('code', {}, s.sku)), h('td', {}, s.unit || '—'), h('td', {}, s.name || '—')));
}

export function mount(main) {
  document.title = 'Reference data · Control tower';
  const st = { alive: true, timer: null, doc: null, filter: '' };
  const status = h('p', { class: 'view-status', role: 'status', id: 'reference-status' }, 'Loading…');
  const unknown = h('section', { id: 'reference-unknown', 'aria-labelledby': 'ref-unknown-h' });
  const defs = h('div', { id: 'reference-defs' });
  const skuBox = h('input', { type: 'search', id: 'sku-filter', placeholder: 'Filter skus…', maxlength: '64',
    'aria-label': 'Filter the skus by code or name' });
  const skuBody = h('div', { id: 'reference-skus' });
  skuBox.addEventListener('input', () => { st.filter = skuBox.value; renderSkus(); });
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › Reference data'),
    h('div', { class: 'page-head' }, h('h1', {}, 'Reference data'),
      h('p', { class: 'muted' }, 'The warehouses, carriers and skus the master data defined (the latest definition of each), ' +
        'and the codes orders and shipments name that no definition covers.')),
    h('div', { class: 'toolbar' }, status), unknown, defs,
    h('h2', {}, 'Skus'), skuBox, skuBody);

  function renderUnknown(doc) {
    const groups = (doc.unknown && doc.unknown.groups) || [];
    const head = h('h2', { id: 'ref-unknown-h' }, 'Unknown codes');
    if (!groups.length) {
      unknown.replaceChildren(head, h('p', { class: 'ok-note', id: 'reference-unknown-none' },
        'Every warehouse, carrier and sku that orders and shipments name is defined (or no definition of its kind exists yet).'));
      return;
    }
    unknown.replaceChildren(head,
      h('p', { class: 'small' }, `${fmtCount(doc.unknown.items)} order or shipment item${doc.unknown.items === 1 ? '' : 's'} ` +
        `name ${groups.length} code${groups.length === 1 ? '' : 's'} no definition covers (anomaly UNKNOWN_CODE).`),
      table('reference-unknown-table', 'Unknown codes by code and producer',
        ['Kind', 'Code', 'Producer', 'Items', `Since (${zoneName()})`, 'Example', 'What to do'], unknownRows(groups)));
  }

  function renderSkus() {
    const list = (st.doc && st.doc.skus) || [];
    const n = (st.doc && st.doc.counts && st.doc.counts.skus) || 0;
    const rows = skuRows(list, st.filter);
    skuBody.replaceChildren(
      h('p', { class: 'small' }, `${fmtCount(n)} sku${n === 1 ? '' : 's'} defined` +
        (rows.length >= SKU_SHOWN ? `; the first ${SKU_SHOWN} shown: filter to find others` : '')),
      rows.length ? table('reference-skus-table', 'Skus', ['Sku', 'Unit', 'Name'], rows) : h('p', { class: 'muted' }, 'None.'));
  }

  function render(doc) {
    st.doc = doc;
    renderUnknown(doc);
    const wh = doc.warehouses || [], ca = doc.carriers || [];
    setWarehouseZones(wh);
    defs.replaceChildren(
      h('h2', {}, 'Warehouses'),
      wh.length ? table('reference-warehouses', 'Warehouses', ['Warehouse', 'Name', 'Region', 'Time zone', 'Local time now', `Defined (${zoneName()})`],
        warehouseRows(wh)) : h('p', { class: 'muted' }, 'No warehouse is defined: times are shown in the browser\'s zone.'),
      h('h2', {}, 'Carriers'),
      ca.length ? table('reference-carriers', 'Carriers', ['Carrier', 'Name', `Defined (${zoneName()})`],
        ca.map((c) => h('tr', { 'data-carrier': c.carrierId }, h('th', { scope: 'row' }, h('code', {}, c.carrierId)),
          h('td', {}, c.name || '—'), h('td', { class: 'num' }, fmtTime(c.definedAt))))) : h('p', { class: 'muted' }, 'No carrier is defined.'));
    renderSkus();
  }

  async function load() {
    clearTimeout(st.timer);
    try {
      const doc = await api('/reference?limit=10000');
      if (!st.alive) return;
      render(doc);
      status.textContent = `As of sequence ${fmtCount(doc.asOfSeq || 0)} · updated ${fmtTime(doc.now || new Date().toISOString()).slice(11)} ${zoneName()}`;
      main.dataset.loaded = 'reference';
    } catch (e) {
      if (st.alive) status.textContent = `Could not load the reference data: ${e.message}`;
    }
    if (st.alive) st.timer = setTimeout(load, REFRESH_MS);
  }

  load();
  return {
    unmount() {
      st.alive = false;
      clearTimeout(st.timer);
      delete main.dataset.loaded;
    },
  };
}
