// The server's clock as the page sees it: ages are computed against it, at its warp speed in demo mode.
import { parseTime } from './util.js';

let serverMs = Date.now();   // the server's "now" when last told
let localMs = Date.now();    // our clock when we were told
let warp = 1;                // server seconds per real second (demo mode may run faster)
let known = false;

/**
 * Records the server's clock from a summary ("now", and "warp" when present). Without a warp factor the
 * previous one stays (stream summaries carry "now" only).
 */
export function setServerNow(nowIso, warpFactor) {
  const t = parseTime(nowIso);
  if (!Number.isFinite(t)) return;
  const local = Date.now();
  if (Number.isFinite(warpFactor) && warpFactor > 0) {
    warp = warpFactor;
    told = true;
  } else if (!told) {
    estimate(t, local);
  }
  serverMs = t;
  localMs = local;
  known = true;
}

let told = false;        // the server gave its warp factor: no estimate
let anchor = null;       // {server, local}: the reading the estimate measures from

/**
 * Without a "warp" from the server, it is measured: how far the server's clock moved between two readings
 * at least 3 s apart on ours. Snapped to 1 when close, so that network jitter never warps a real clock.
 */
function estimate(server, local) {
  if (!anchor || server < anchor.server) { anchor = { server, local }; return; }
  const dl = local - anchor.local;
  if (dl < 3000) return;
  const w = (server - anchor.server) / dl;
  warp = w > 1.5 ? Number(w.toPrecision(2)) : 1;
  anchor = { server, local };
}

/** The server's current time in milliseconds: its last "now" plus the real time since, times the warp. */
export function now() {
  return serverMs + (Date.now() - localMs) * warp;
}

/** The age of something that started at `since` (RFC 3339 or ms), in milliseconds. */
export function ageMs(since) {
  const t = typeof since === 'number' ? since : parseTime(since);
  return Number.isFinite(t) ? Math.max(0, now() - t) : NaN;
}

export function warpFactor() { return warp; }
/** Whether the warp factor is the server's own figure (else measured, or 1). */
export function warpTold() { return told; }

/**
 * "60× speed": a demo clock's warp. The server's own figure (exact) is shown as is; one measured from two
 * readings is rounded to what a person reads: 60, not 61.
 */
export function warpLabel(w, exact = told) {
  if (exact) return `${Number(w.toFixed(2))}× speed`;
  const n = w >= 20 ? Math.round(w / 5) * 5 : w >= 2 ? Math.round(w) : Math.round(w * 10) / 10;
  return `${n}× speed`;
}
export function serverClockKnown() { return known; }
