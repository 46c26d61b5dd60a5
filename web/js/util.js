// Small DOM and formatting helpers shared by every page (no dependencies).

/**
 * Builds an element: h('a', {href: '#/', class: 'x'}, 'text', child...).
 * Attributes starting with "on" become listeners; null/undefined/false attributes and children are skipped.
 * Text is always set as text, never parsed as HTML.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** An SVG element with attributes. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

/** Milliseconds since the epoch of an RFC 3339 time, or NaN. */
export function parseTime(s) {
  return typeof s === 'string' ? Date.parse(s) : NaN;
}

const pad = (n) => String(n).padStart(2, '0');

/**
 * A compact age with a constant shape per magnitude, so that ticking digits never move the layout
 * (the elements showing it use tabular numbers and a fixed width): "45s", "12m 09s", "4h 05m 09s", "3d 04h 12m".
 */
export function fmtAge(ms) {
  if (!Number.isFinite(ms)) return '—';
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hh = Math.floor(s / 3600); s -= hh * 3600;
  const mm = Math.floor(s / 60); s -= mm * 60;
  if (d > 0) return `${d}d ${pad(hh)}h ${pad(mm)}m`;
  if (hh > 0) return `${hh}h ${pad(mm)}m ${pad(s)}s`;
  if (mm > 0) return `${mm}m ${pad(s)}s`;
  return `${s}s`;
}

/** The same age in words, for screen readers ("3 days 4 hours"). */
export function sayAge(ms) {
  if (!Number.isFinite(ms)) return 'unknown';
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts = [];
  const units = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  for (const [name, n] of units) {
    const q = Math.floor(s / n);
    s -= q * n;
    if (q > 0) parts.push(`${q} ${name}${q === 1 ? '' : 's'}`);
    if (parts.length === 2) break;
  }
  return parts.length ? parts.join(' ') : '0 seconds';
}

/** A duration like "15 min", "4 h", "24 h" for SLA captions. */
export function fmtDuration(ms) {
  const m = Math.round(ms / 60000);
  if (m < 60) return `${m} min`;
  if (m >= 2880 && m % 1440 === 0) return `${m / 1440} days`;
  if (m % 60 === 0) return `${m / 60} h`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// --- the time zone times are shown in: local (the default, its zone named) or UTC (a toggle in the header,
// kept in localStorage under "tower.tz" = "utc" | "local").
const TZ_KEY = 'tower.tz';
let utc = (() => { try { return localStorage.getItem(TZ_KEY) === 'utc'; } catch { return false; } })();

/** Whether times are shown in UTC (else in the browser's local zone). */
export function useUtc() { return utc; }

/** Shows times in UTC (true) or local time (false), and remembers the choice in this browser. */
export function setUseUtc(on) {
  utc = !!on;
  try { localStorage.setItem(TZ_KEY, utc ? 'utc' : 'local'); } catch { /* private mode: this page only */ }
}

/** The zone times are shown in: "UTC", or the local zone's short name ("CET", "GMT+1"), at instant t. */
export function zoneName(t = Date.now()) {
  if (utc) return 'UTC';
  try {
    const part = new Intl.DateTimeFormat('en-GB', { timeZoneName: 'short' }).formatToParts(new Date(t))
      .find((p) => p.type === 'timeZoneName');
    if (part && part.value) return part.value;
  } catch { /* old browser: an offset below */ }
  const off = -new Date(t).getTimezoneOffset();
  return `UTC${off < 0 ? '−' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

/** "2026-11-27 09:30:00" in the zone chosen (zoneName() names it; fmtWhen adds it). */
export function fmtTime(s) {
  const t = typeof s === 'number' ? s : parseTime(s);
  if (!Number.isFinite(t)) return '—';
  const d = new Date(t);
  if (utc) {
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A time with its zone: "2026-11-27 10:30:00 CET" (or "… UTC"). */
export function fmtWhen(s) {
  const t = typeof s === 'number' ? s : parseTime(s);
  return Number.isFinite(t) ? `${fmtTime(t)} ${zoneName(t)}` : '—';
}

// --- warehouse time zones (reference data, GET /api/v1/reference: pages/reference.js loads them): a time at a
// warehouse is shown in the warehouse's own zone, named; the browser's zone (or UTC) when it has none defined.
const whZones = new Map();

/** Takes the warehouses' definitions ([{warehouseId, timeZone}...]); a zone this browser does not know is left out. */
export function setWarehouseZones(list) {
  whZones.clear();
  for (const w of list || []) {
    if (!w || !w.warehouseId || !w.timeZone) continue;
    try { new Intl.DateTimeFormat('en-GB', { timeZone: w.timeZone }); } catch { continue; }
    whZones.set(w.warehouseId, w.timeZone);
  }
}

/** The IANA zone of a warehouse ("Europe/Berlin"), or null when none is defined. */
export function warehouseZone(id) { return (id && whZones.get(id)) || null; }

/** "2026-11-27 10:30:00 CET" in IANA zone tz; fmtWhen(s) without a zone or when UTC is chosen. */
export function fmtInZone(s, tz) {
  const t = typeof s === 'number' ? s : parseTime(s);
  if (!Number.isFinite(t)) return '—';
  if (!tz || utc) return fmtWhen(t);
  try {
    const parts = {};
    for (const p of new Intl.DateTimeFormat('en-GB', {
      timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
      second: '2-digit', hourCycle: 'h23', timeZoneName: 'short',
    }).formatToParts(new Date(t))) parts[p.type] = p.value;
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
  } catch {
    return fmtWhen(t);
  }
}

/** A time at a warehouse, in its zone with the zone named ("… CET, Europe/Paris"); else as fmtWhen. */
export function fmtAtWarehouse(s, warehouseId) {
  const tz = warehouseZone(warehouseId);
  return tz && !utc ? `${fmtInZone(s, tz)} (${tz})` : fmtWhen(s);
}

/** A column heading naming the zone: "Since (CET)". */
export function zoned(label) { return `${label} (${zoneName()})`; }

/** Parses "90m", "2h", "1d", "30s" to milliseconds; 0 when empty or invalid. */
export function parseDuration(s) {
  const m = /^(\d+)\s*([smhd])$/.exec(String(s || '').trim());
  if (!m) return 0;
  return Number(m[1]) * { s: 1000, m: 60000, h: 3600000, d: 86400000 }[m[2]];
}

/** Formats an integer with thin grouping; the element shows it with tabular figures. */
export function fmtCount(n) {
  return Number.isFinite(n) ? n.toLocaleString('en-US') : '—';
}

/** Runs fn at most once per `ms`, trailing call included. */
export function throttle(fn, ms) {
  let timer = null, last = 0, pending = false;
  return function run() {
    const now = Date.now();
    if (timer) { pending = true; return; }
    const wait = Math.max(0, last + ms - now);
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      pending = false;
      fn();
      if (pending) run();
    }, wait);
  };
}

/** A CSV field per RFC 4180; formula-looking text is prefixed so spreadsheets do not execute it. */
export function csvField(v) {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** Starts a download of text as a file. */
export function download(name, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** Tells screen readers something through the page's polite live region. */
export function announce(text) {
  const el = document.getElementById('announce');
  if (!el) return;
  el.textContent = '';
  // A new text node after a tick makes screen readers read it even if it equals the previous one.
  setTimeout(() => { el.textContent = text; }, 50);
}
