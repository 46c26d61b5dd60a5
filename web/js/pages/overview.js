// The overview: one tile per view (count, oldest age, SLA state, trend), breakdowns by warehouse and carrier.
import { api } from '../api.js';
import { live } from '../stream.js';
import { ageMs, setServerNow, now } from '../clock.js';
import { sparkline } from '../chart.js';
import { h, fmtAge, fmtCount, fmtDuration, parseTime, sayAge, throttle, announce } from '../util.js';
import { VIEWS, VIEW_BY_ID, tileSla, stateLabel, stateIcon } from '../views.js';
import { fillRiskTile, leadTimesPanel } from './risk.js';

const TREND_WINDOW_MS = 3 * 3600 * 1000;   // what the sparklines show
const LOCAL_INTERVAL_MS = 10000;            // sampling when the server keeps no trend

export function mount(main) {
  document.title = 'Overview · Control tower';
  const st = {
    views: {},              // view -> {count, oldestSince, byWarehouse, byCarrier}
    trend: Object.fromEntries(VIEWS.map((v) => [v.id, []])),
    trendInterval: LOCAL_INTERVAL_MS,
    trendFromServer: false,
    tiles: {},
    tileState: {},
    meta: null,
    alive: true,
    lastSparks: Date.now(),
  };

  const status = h('p', { class: 'ov-status', id: 'ov-status' }, 'Loading the summary…');
  const nextStep = h('p', { class: 'next-step compact', id: 'ov-next', hidden: true });
  const tiles = h('div', { class: 'tiles', role: 'list', 'aria-label': 'Exception views' });
  for (const v of VIEWS) {
    const t = tile(v);
    st.tiles[v.id] = t;
    tiles.append(t.el);
  }
  const whBox = h('div', { class: 'breakdown-body', id: 'by-warehouse' });
  const caBox = h('div', { class: 'breakdown-body', id: 'by-carrier' });
  const trendNote = h('p', { class: 'note', id: 'trend-note' });
  const leadTimes = leadTimesPanel();
  main.append(
    h('div', { class: 'page-head' },
      h('h1', {}, 'Exceptions now'),
      status),
    nextStep,
    h('div', { class: 'ov-grid' },
      h('section', { class: 'ov-tiles', 'aria-labelledby': 'tiles-h' },
        h('h2', { id: 'tiles-h', class: 'sr-only' }, 'Views'),
        tiles, trendNote),
      h('aside', { class: 'breakdown', 'aria-label': 'Breakdowns' },
        h('section', { 'aria-labelledby': 'wh-h' }, h('h2', { id: 'wh-h' }, 'By warehouse'), whBox),
        h('section', { 'aria-labelledby': 'ca-h' }, h('h2', { id: 'ca-h' }, 'By carrier'), caBox),
        leadTimes.section)),
  );
  const refreshRiskTop = throttle(() => {
    if (st.alive && st.views.at_risk) fillRiskTile(main.querySelector('#risk-top'), st.views.at_risk.count);
  }, 3000);

  function tile(v) {
    const count = h('span', { class: 'tile-count num', 'data-count': '', 'aria-hidden': 'true' }, '—');
    const badge = h('span', { class: 'badge', 'data-state': 'ok' });
    const age = h('span', { class: 'age num' }, '—');
    const spark = h('div', { class: 'tile-spark' });
    const unackN = h('span', { class: 'num tile-unack-count', 'data-unack': '' }, '—');
    const unackAge = h('span', { class: 'age num tile-unack-age' }, '');
    const unack = h('div', { class: 'tile-unack', 'data-unack': '' }, unackN, ' unacknowledged', h('span', { class: 'unack-oldest' }, ' · oldest ', unackAge));
    const foot = v.sla ? `SLA ${v.sla.rule} · ${fmtDuration(v.sla.ms)}` : v.alwaysBreached ? 'Every item is a breach' : 'No SLA · review';
    const el = h('a', { class: 'tile', role: 'listitem', href: v.id === 'dead_letters' ? '#/dead-letters' : '#/view/' + v.id,
      'data-view': v.id, 'data-state': 'ok' },
      h('div', { class: 'tile-head' }, h('span', { class: 'tile-label' }, v.label), badge),
      h('div', { class: 'tile-body' }, count,
        h('div', { class: 'tile-oldest' }, h('span', { class: 'muted' }, 'oldest'), age)),
      unack,
      spark,
      v.id === 'at_risk' ? h('div', { class: 'tile-risk', id: 'risk-top' }) : null,
      h('div', { class: 'tile-foot' }, h('span', {}, v.what), h('span', { class: 'muted' }, foot)));
    return { el, count, badge, age, spark, unack, unackN, unackAge };
  }

  function renderTile(id) {
    const t = st.tiles[id], s = st.views[id];
    if (!t || !s) return;
    const n = s.count;
    if (t.count.dataset.count !== String(n)) {
      t.count.dataset.count = String(n);
      t.count.textContent = fmtCount(n);
      t.el.classList.remove('bump');
      void t.el.offsetWidth; // restart the highlight animation
      t.el.classList.add('bump');
      if (id === 'at_risk') refreshRiskTop();
    }
    if (s.oldestSince && n > 0) {
      t.age.dataset.since = s.oldestSince;
      t.age.textContent = fmtAge(ageMs(s.oldestSince)); // now, not at the next tick: no "—" flash
    } else {
      delete t.age.dataset.since;
      t.age.textContent = '—';
    }
    // Who has to look: the items nobody acknowledged yet, and the oldest of them (when the server says).
    const u = s.unacknowledged;
    t.unack.hidden = typeof u !== 'number';
    if (typeof u === 'number') {
      t.unack.dataset.unack = String(u);
      t.unackN.textContent = fmtCount(u);
      t.unack.classList.toggle('none', u === 0);
      const since = u > 0 ? s.oldestUnacknowledgedSince : null;
      t.unack.querySelector('.unack-oldest').hidden = !since;
      if (since) {
        t.unackAge.dataset.since = since;
        t.unackAge.textContent = fmtAge(ageMs(since));
      } else {
        delete t.unackAge.dataset.since;
      }
    }
    updateState(id);
  }

  function updateState(id) {
    const t = st.tiles[id], s = st.views[id];
    if (!t || !s) return;
    const a = s.oldestSince && s.count > 0 ? ageMs(s.oldestSince) : NaN;
    const state = tileSla(id, s);
    const label = stateLabel(id, state);
    const prev = st.tileState[id];
    if (!prev || prev.state !== state) {
      t.el.dataset.state = state;
      t.badge.dataset.state = state;
      t.badge.replaceChildren(stateIcon(state), h('span', {}, label));
      if (prev && state === 'breached') announce(`${VIEW_BY_ID[id].label}: SLA breached`);
    }
    // The accessible name is refreshed when something worth saying changes, not on every tick.
    const minute = Number.isFinite(a) ? Math.floor(a / 60000) : -1;
    if (!prev || prev.state !== state || prev.count !== s.count || prev.minute !== minute || prev.unack !== s.unacknowledged) {
      const oldest = Number.isFinite(a) ? `, oldest ${sayAge(a)}` : '';
      const unack = typeof s.unacknowledged === 'number' ? `, ${s.unacknowledged} unacknowledged` : '';
      t.el.setAttribute('aria-label', `${VIEW_BY_ID[id].label}: ${s.count} item${s.count === 1 ? '' : 's'}${oldest}${unack}, ${label}`);
    }
    st.tileState[id] = { state, count: s.count, minute, unack: s.unacknowledged };
  }

  function renderSpark(id) {
    const t = st.tiles[id];
    const from = now() - TREND_WINDOW_MS;
    const pts = st.trend[id].filter((p) => p.t >= from);
    // The count holds until it changes: the line runs on to now at the current count.
    const cur = st.views[id];
    if (cur && typeof cur.count === 'number' && (!pts.length || pts[pts.length - 1].t < now())) pts.push({ t: now(), v: cur.count });
    const vals = pts.map((p) => p.v);
    const label = pts.length > 1
      ? `Trend of ${VIEW_BY_ID[id].label} over ${Math.round((pts[pts.length - 1].t - pts[0].t) / 60000)} minutes: from ${vals[0]} to ${vals[vals.length - 1]}, peak ${Math.max(...vals)}`
      : `No trend yet for ${VIEW_BY_ID[id].label}`;
    t.spark.replaceChildren(sparkline(pts, { label }));
  }
  const renderSparks = throttle(() => { for (const v of VIEWS) renderSpark(v.id); }, 2000);

  function renderStatus() {
    const m = st.meta;
    if (!m) return;
    const parts = [`applied seq ${fmtCount(m.appliedSeq)}`];
    if (typeof m.lag === 'number') parts.push(`projector lag ${fmtCount(m.lag)}`);
    if (typeof m.events === 'number') parts.push(`${fmtCount(m.events)} events`);
    status.textContent = parts.join(' · ');
    status.classList.toggle('warn', typeof m.lag === 'number' && m.lag > 1000);
  }

  function breakdown(box, key, what) {
    const cols = new Set();
    let any = false;
    for (const v of VIEWS) {
      const b = st.views[v.id] && st.views[v.id][key];
      if (b) { any = true; for (const k of Object.keys(b)) cols.add(k); }
    }
    if (!any) {
      box.replaceChildren(h('p', { class: 'note' }, `This server does not report counts by ${what} yet.`));
      return;
    }
    if (!VIEWS.some((v) => st.views[v.id] && st.views[v.id].count > 0)) {
      box.replaceChildren(h('p', { class: 'note' }, `No open item at any ${what}: nothing to break down.`));
      return;
    }
    const names = [...cols].sort();
    const param = key === 'byWarehouse' ? 'warehouse' : 'carrier';
    const table = h('table', { class: 'grid num-table', 'data-breakdown': key },
      h('caption', { class: 'sr-only' }, `Open items per view and ${what}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'View'),
        names.map((n) => h('th', { scope: 'col', class: 'num' }, n)))),
      h('tbody', {}, VIEWS.filter((v) => st.views[v.id] && st.views[v.id].count > 0).map((v) => {
        const b = st.views[v.id][key] || {};
        return h('tr', { 'data-view': v.id }, h('th', { scope: 'row' }, v.label), names.map((n) => {
          const c = b[n] || 0;
          // Every item, snoozed ones included, as the cell counts them.
          const href = v.id === 'dead_letters' ? null : `#/view/${v.id}?state=all&${param}=${encodeURIComponent(n)}`;
          return h('td', { class: 'num' + (c ? '' : ' zero'), 'data-col': n, 'data-n': String(c) },
            c && href ? h('a', { href, 'aria-label': `${v.label} at ${n}: ${c}` }, fmtCount(c)) : fmtCount(c));
        }));
      })));
    box.replaceChildren(table);
  }

  function applySummaryViews(views, full) {
    for (const v of VIEWS) {
      const s = views[v.id];
      if (!s) continue;
      const cur = st.views[v.id] || {};
      st.views[v.id] = {
        count: s.count ?? cur.count ?? 0,
        oldestSince: s.oldestSince !== undefined ? s.oldestSince : cur.oldestSince,
        byWarehouse: s.byWarehouse || (full ? null : cur.byWarehouse),
        byCarrier: s.byCarrier || (full ? null : cur.byCarrier),
        // The lifecycle figures (docs/exceptions.md); stream summaries may not carry them: kept until the next full one.
        unacknowledged: s.unacknowledged !== undefined ? s.unacknowledged : (full ? undefined : cur.unacknowledged),
        oldestUnacknowledgedSince: s.oldestUnacknowledgedSince !== undefined ? s.oldestUnacknowledgedSince
          : (full ? undefined : cur.oldestUnacknowledgedSince),
        snoozed: s.snoozed !== undefined ? s.snoozed : (full ? undefined : cur.snoozed),
        breached: s.breached !== undefined ? s.breached : (full ? undefined : cur.breached),
      };
      renderTile(v.id);
    }
  }

  /** "What do I do next?": the view to start with (breached first, then the oldest unacknowledged), or why none. */
  function renderNext() {
    const order = { breached: 0, warning: 1, ok: 2 };
    const cands = VIEWS.filter((v) => st.views[v.id] && st.views[v.id].count > 0).map((v) => {
      const s = st.views[v.id];
      const state = tileSla(v.id, s);
      return { v, s, state, rank: order[state] ?? 2, unack: typeof s.unacknowledged === 'number' ? s.unacknowledged : s.count,
        oldest: s.oldestSince ? parseTime(s.oldestSince) : Infinity };
    });
    nextStep.hidden = false;
    if (!cands.length) {
      nextStep.replaceChildren(h('strong', {}, 'Nothing is stuck: '), 'every view is empty. New exceptions appear here as they happen.');
      return;
    }
    cands.sort((a, b) => a.rank - b.rank || (b.unack > 0) - (a.unack > 0) || a.oldest - b.oldest);
    const c = cands[0];
    const href = c.v.id === 'dead_letters' ? '#/dead-letters' : `#/view/${c.v.id}` + (c.state === 'breached' && c.v.sla ? '?sla=breached' : '');
    const why = c.state === 'breached' ? (typeof c.s.breached === 'number' && c.s.breached > 0 ? `${fmtCount(c.s.breached)} past their SLA` : 'past its SLA')
      : c.state === 'warning' ? (c.v.sla ? 'due soon' : 'to review') : 'the oldest open items';
    nextStep.replaceChildren(h('strong', {}, 'Start here: '),
      h('a', { href, id: 'ov-next-link' }, c.v.label), ` — ${why}` +
      (c.unack > 0 && typeof c.s.unacknowledged === 'number' ? `, ${fmtCount(c.unack)} nobody acknowledged yet` : '') + '. ', c.v.next);
  }

  function renderBreakdowns() {
    breakdown(whBox, 'byWarehouse', 'warehouse');
    breakdown(caBox, 'byCarrier', 'carrier');
    renderNext();
  }

  async function loadSummary() {
    const s = await api('/summary');
    if (!st.alive) return;
    if (s.now) setServerNow(s.now, s.warp);
    st.meta = s;
    applySummaryViews(s.views || {}, true);
    renderBreakdowns();
    renderStatus();
    if (!st.trendFromServer) addLocalSample(s.views || {});
    main.querySelector('.ov-grid').dataset.loaded = 'true';
  }

  async function loadTrend() {
    try {
      const tr = await api('/trend');
      if (!st.alive) return;
      st.trendFromServer = true;
      st.trendInterval = (tr.intervalSeconds || 10) * 1000;
      for (const v of VIEWS) st.trend[v.id] = [];
      for (const smp of tr.samples || []) {
        const t = parseTime(smp.t);
        for (const v of VIEWS) {
          const c = smp.counts && smp.counts[v.id];
          if (typeof c === 'number') st.trend[v.id].push({ t, v: c });
        }
      }
      trendNote.textContent = `Trends: the last ${Math.round(TREND_WINDOW_MS / 3600000)} hours, one point per ${Math.round((tr.intervalSeconds || 300) / 60)} minutes of event time, kept in the store (the same on every replica, and after a restart).`;
    } catch (e) {
      if (!st.alive) return;
      st.trendFromServer = false;
      trendNote.textContent = 'Trends: since this page opened (the server keeps no trend).';
    }
    renderSparks();
  }

  /** Adds (or, within one interval, replaces) the newest trend sample. */
  function addLocalSample(views) {
    const t = now();
    for (const v of VIEWS) {
      const s = views[v.id];
      if (!s || typeof s.count !== 'number') continue;
      const arr = st.trend[v.id];
      const last = arr[arr.length - 1];
      if (last && t - last.t < st.trendInterval && arr.length > 1 && t - arr[arr.length - 2].t < st.trendInterval) {
        last.t = t; last.v = s.count;
      } else {
        arr.push({ t, v: s.count });
      }
      const from = t - TREND_WINDOW_MS - st.trendInterval;
      while (arr.length && arr[0].t < from) arr.shift();
    }
    renderSparks();
  }

  const refreshBreakdowns = throttle(() => {
    if (st.alive) loadSummary().catch(() => {});
  }, 5000);

  function onSummary(e) {
    const m = e.detail;
    applySummaryViews(m.views || {}, false);
    if (st.meta && typeof m.seq === 'number') { st.meta.appliedSeq = m.seq; renderStatus(); }
    addLocalSample(m.views || {});
    const hasBreakdown = Object.values(m.views || {}).some((x) => x && x.byWarehouse);
    if (hasBreakdown) renderBreakdowns(); else refreshBreakdowns();
  }

  function reload() {
    loadSummary().catch((err) => {
      status.textContent = `The summary could not be loaded: ${err.message}`;
      status.classList.add('error');
    });
    loadTrend();
    leadTimes.load();
    refreshRiskTop();
  }

  function onOpen(e) { if (e.detail.reconnected) reload(); }
  function onResync() { reload(); }

  live.addEventListener('summary', onSummary);
  live.addEventListener('open', onOpen);
  live.addEventListener('resync', onResync);
  live.subscribe({});
  reload();

  return {
    tick() {
      for (const v of VIEWS) updateState(v.id);
      if (Date.now() - (st.lastNext || 0) > 5000) { st.lastNext = Date.now(); renderNext(); }
      if (Date.now() - st.lastSparks > st.trendInterval) { st.lastSparks = Date.now(); renderSparks(); }
    },
    unmount() {
      st.alive = false;
      live.removeEventListener('summary', onSummary);
      live.removeEventListener('open', onOpen);
      live.removeEventListener('resync', onResync);
    },
  };
}
