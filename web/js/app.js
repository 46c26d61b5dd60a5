// The dashboard shell: hash routing, the header (search, connection state, server clock), the ticking ages.
import { live } from './stream.js';
import { whoami } from './api.js';
import { ageMs, now, warpFactor, warpLabel } from './clock.js';
import { fmtAge, fmtTime, sayAge, useUtc, setUseUtc, zoneName } from './util.js';
import { loadSlaRules, slaRulesLoaded } from './views.js';
import * as overview from './pages/overview.js';
import * as viewPage from './pages/view.js';
import * as entityPage from './pages/entity.js';
import * as searchPage from './pages/search.js';
import * as deadLetters from './pages/deadletters.js';
import * as minePage from './pages/mine.js';
import * as exceptionPage from './pages/exception.js';
import * as integrationsPage from './pages/integrations.js';
import * as runbookPage from './pages/runbook.js';
import * as contractPage from './pages/contract.js';
import * as referencePage from './pages/reference.js';

const main = document.getElementById('main');
let current = null;   // the mounted page: {unmount(), tick()}
let routeId = 0;

/** '#/view/blocked?warehouse=dc-2' -> {parts: ['view', 'blocked'], params: URLSearchParams}. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  return { parts, params: new URLSearchParams(query || '') };
}

function route() {
  const { parts, params } = parseHash();
  const id = ++routeId;
  if (current && current.unmount) current.unmount();
  current = null;
  main.replaceChildren();
  main.removeAttribute('aria-busy');
  let page = null, arg = null, nav = null;
  switch (parts[0] || '') {
    case '': page = overview; nav = 'overview'; break;
    case 'view': page = viewPage; arg = parts[1]; break;
    case 'order': page = entityPage; arg = { kind: 'order', id: parts.slice(1).join('/') }; break;
    case 'shipment': page = entityPage; arg = { kind: 'shipment', id: parts.slice(1).join('/') }; break;
    case 'search': page = searchPage; arg = parts.slice(1).join('/'); break;
    case 'dead-letters': page = deadLetters; nav = 'dead-letters'; break;
    case 'mine': page = minePage; nav = 'mine'; break;
    case 'exception': page = exceptionPage; arg = parts.slice(1).join('/'); break;
    case 'integrations': page = integrationsPage; nav = 'integrations'; break;
    case 'runbook': page = runbookPage; arg = parts.slice(1).join('/') || null; break;
    case 'runbooks': page = runbookPage; arg = 'list'; nav = 'runbooks'; break;
    case 'contract': page = contractPage; nav = 'contract'; break;
    case 'reference': page = referencePage; nav = 'reference'; break;
    default: break;
  }
  for (const a of document.querySelectorAll('.mainnav a')) {
    if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (!page) {
    document.title = 'Not found · Control tower';
    main.innerHTML = '<h1>Page not found</h1><p><a href="#/">Back to the overview</a></p>';
    return;
  }
  current = page.mount(main, arg, params) || {};
  if (id === routeId) tick();
  showCaller();
  // The SLA rules the server uses (asked before the first page; again here when a token was missing then):
  // rows and tiles take them at the next tick, captions at the next page.
  if (!slaRulesLoaded()) loadSlaRules();
  referencePage.loadWarehouseZones(); // warehouse times: new definitions show from the next page on
}

/** Who is using the dashboard, and whether they may act (the token's role). */
async function showCaller() {
  const m = await whoami();
  const el = document.getElementById('whoami');
  if (!m || !el) return;
  el.hidden = false;
  el.dataset.role = m.role || '';
  el.textContent = m.canAct ? (m.name || 'operator') : `${m.name || m.role || 'viewer'} · read only`;
  el.title = m.canAct ? `Signed in as ${m.name || '?'} (${m.role || 'operator'}): you can act on exceptions`
    : `Signed in as ${m.name || '?'} (${m.role || 'viewer'}): acting on exceptions needs the operator role`;
}

/** Updates every ticking age on the page, the clock and the connection countdown. */
function tick() {
  for (const el of main.querySelectorAll('[data-since]')) {
    const a = ageMs(el.dataset.since);
    const txt = fmtAge(a);
    if (el.textContent !== txt) el.textContent = txt;
    if (el.dataset.say !== undefined) el.setAttribute('aria-label', sayAge(a));
  }
  if (current && current.tick) current.tick();
  const clock = document.getElementById('clock');
  const txt = fmtTime(now()).slice(11) + ' ' + zoneName(now());
  if (clock.textContent !== txt) clock.textContent = txt;
  clock.setAttribute('datetime', new Date(now()).toISOString());
  const w = warpFactor();
  const warpEl = document.getElementById('warp');
  warpEl.hidden = !(w > 1);
  if (w > 1) {
    const wt = warpLabel(w);
    if (warpEl.textContent !== wt) warpEl.textContent = wt;
    warpEl.title = `Demo clock: business time runs ${wt.replace(' speed', '')} faster than real time`;
  }
  renderConn();
}

/** The time-zone toggle: local time (the default, its zone named) or UTC, kept in this browser. */
function renderTz() {
  const b = document.getElementById('tz-toggle');
  if (!b) return;
  b.setAttribute('aria-pressed', useUtc() ? 'true' : 'false');
  b.textContent = useUtc() ? 'Local time' : 'UTC';
  b.title = useUtc() ? 'Times are in UTC: show them in your local time instead'
    : `Times are in your local time (${zoneName()}): show them in UTC instead`;
  b.setAttribute('aria-label', useUtc() ? 'Times shown in UTC; switch to local time' : `Times shown in local time, ${zoneName()}; switch to UTC`);
}
document.getElementById('tz-toggle').addEventListener('click', () => {
  setUseUtc(!useUtc());
  renderTz();
  route(); // every page draws its times again in the zone chosen
});
renderTz();

const CONN_TEXT = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

function renderConn() {
  const el = document.getElementById('conn');
  const st = live.state;
  el.dataset.state = st;
  document.body.classList.toggle('stale', st !== 'live' && live.everOpen);
  const label = el.querySelector('.conn-label');
  let text = CONN_TEXT[st] || st;
  if (st === 'reconnecting' || st === 'offline') {
    const s = Math.max(0, Math.ceil((live.retryAt - Date.now()) / 1000));
    text += s > 0 ? ` · retry in ${s}s` : ' · retrying';
    text += ' · figures may be stale';
  }
  if (label.textContent !== text) label.textContent = text;
  el.title = st === 'live' ? 'Live updates are flowing' : `Since ${fmtTime(live.stateSince)} (your clock)`;
}

let lastConnState = null;
live.addEventListener('state', (e) => {
  renderConn();
  const st = e.detail.state;
  // Announce real changes only (the countdown is not read out).
  if (st !== lastConnState && !(st === 'offline' && lastConnState === 'reconnecting')) {
    const say = document.getElementById('announce');
    if (say && lastConnState !== null) {
      say.textContent = st === 'live' ? 'Live updates restored' : st === 'connecting' ? '' : 'Live updates lost; reconnecting';
    }
  }
  lastConnState = st;
});

document.getElementById('search').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = document.getElementById('q').value.trim();
  if (!q) return;
  location.hash = '#/search/' + encodeURIComponent(q);
});

document.getElementById('skip').addEventListener('click', () => {
  const target = main.querySelector('h1') || main;
  if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
  target.focus();
});

// "/" focuses the search box (as on many dashboards), unless typing in a field.
document.addEventListener('keydown', (e) => {
  if (e.key === '/' && !/^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName) && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    document.getElementById('q').focus();
  }
});

window.addEventListener('hashchange', route);
live.start();
// The first page waits for the SLA rules (one request; without them, the built-in defaults).
Promise.allSettled([loadSlaRules(), referencePage.loadWarehouseZones()]).finally(route);
let tickTimer = null;
function scheduleTick() {
  // Every second, or four times a second when the demo clock runs faster than real time.
  const every = warpFactor() > 1 ? 250 : 1000;
  tickTimer = setTimeout(() => { tick(); scheduleTick(); }, every - (Date.now() % every));
}
scheduleTick();
window.tower = { live, get page() { return current; } }; // for debugging from the console
void tickTimer;
