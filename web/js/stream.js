// The live stream: one websocket to /api/v1/stream with reconnect and backoff, and the live model built
// from its snapshots, deltas and summaries (with gap detection and resync). The server may serve the stream
// on a listener of its own (towerd serve --stream-listen): GET /api/v1/me then says where ("stream"), and
// the page connects there; otherwise, or when /me cannot be asked, to /api/v1/stream on its own origin.
import { api, token } from './api.js';
import { setServerNow } from './clock.js';
import { itemKey } from './views.js';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const RESYNC_MIN_INTERVAL_MS = 5000;
const STREAM_PATH = '/api/v1/stream';

function wsProto() {
  return location.protocol === 'https:' ? 'wss:' : 'ws:';
}

/** The websocket URL (without token) the server advertised: {url} or {port, path}; null if none or unusable. */
export function advertisedBase(s) {
  if (!s || typeof s !== 'object') return null;
  if (typeof s.url === 'string' && s.url) {
    if (s.url.startsWith('/') && !s.url.startsWith('//')) return `${wsProto()}//${location.host}${s.url}`;
    if (/^wss?:\/\/[^/]+/.test(s.url)) return s.url;
    return null;
  }
  if (Number.isInteger(s.port) && s.port > 0 && s.port < 65536) {
    const path = typeof s.path === 'string' && s.path.startsWith('/') ? s.path : STREAM_PATH;
    return `${wsProto()}//${location.hostname}:${s.port}${path}`;
  }
  return null;
}

function sameOrigin() {
  return `${wsProto()}//${location.host}${STREAM_PATH}`;
}

/**
 * The live model. Events (CustomEvent, detail = the message or state):
 * - 'state': the connection state changed ({state, attempt, retryInMs, since}); state is
 *   'connecting' | 'live' | 'reconnecting' | 'offline'.
 * - 'open': connected ({reconnected}): after a reconnect, pages reload what they show (a gap may lie behind).
 * - 'snapshot', 'delta', 'summary', 'resync', 'servererror': the server's messages, after the model applied them.
 */
class Live extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.state = 'connecting';
    this.attempt = 0;
    this.retryAt = 0;
    this.stateSince = Date.now();
    this.everOpen = false;
    this.spec = {};            // the subscription: {views?: [...], warehouse?: "dc-2"}
    this.views = new Map();    // view -> {seq, count, items: Map(key -> item), filtered}
    this.summary = null;       // the last summary message
    this.lastSeq = 0;          // greatest seq seen on this connection
    this.mismatch = {};        // view -> consecutive summaries whose count disagrees with ours
    this.lastResync = {};      // view -> time we last asked for one
    this.messages = 0;
    this.timer = null;
    this.started = false;
    this.base = null;          // where the stream is (advertisedBase or sameOrigin), asked once per token
    this.baseToken = null;
  }

  /** Opens the connection (once); it then stays open, reconnecting on its own. */
  start() {
    if (this.started) return;
    this.started = true;
    window.addEventListener('online', () => this.reconnectNow());
    this.connect();
  }

  /** Replaces the subscription; sent now when connected, and after every reconnect. */
  subscribe(spec) {
    const s = {};
    if (spec && Array.isArray(spec.views)) s.views = [...spec.views];
    if (spec && spec.warehouse) s.warehouse = spec.warehouse;
    if (JSON.stringify(s) === JSON.stringify(this.spec) && this.views.size) return;
    this.spec = s;
    this.views.clear();
    this.mismatch = {};
    this.send({ type: 'subscribe', ...s });
  }

  /** Asks for a fresh snapshot of one view. */
  resync(view) {
    this.lastResync[view] = Date.now();
    this.send({ type: 'resync', view });
  }

  /** The model's items of a view (oldest first), or null before its snapshot. */
  items(view) {
    const v = this.views.get(view);
    if (!v) return null;
    return [...v.items.values()].sort((a, b) => cmpSince(a, b));
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      try { this.ws.send(JSON.stringify(msg)); } catch { /* the close handler reconnects */ }
    }
  }

  url(base) {
    const t = token();
    return (base || sameOrigin()) + (t ? '?token=' + encodeURIComponent(t) : '');
  }

  /** Where to connect: asked of GET /api/v1/me once per token, and again after failed attempts (the server
   *  may have restarted without its stream listener). */
  async resolveBase() {
    const t = token();
    if (this.base && this.baseToken === t && this.attempt < 3) return this.base;
    let base = null;
    try {
      const m = await api('/me', { noPrompt: true });
      base = advertisedBase(m && m.stream);
    } catch { /* no /me, no token yet, or offline: this origin */ }
    this.base = base || sameOrigin();
    this.baseToken = t;
    return this.base;
  }

  setState(state, extra = {}) {
    if (state !== this.state) this.stateSince = Date.now();
    this.state = state;
    this.emit('state', { state, attempt: this.attempt, since: this.stateSince, ...extra });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = null;
    const gen = (this.connectGen = (this.connectGen || 0) + 1);
    this.resolveBase().then((base) => { if (gen === this.connectGen) this.open(base); });
  }

  open(base) {
    let ws;
    try {
      ws = new WebSocket(this.url(base));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    if (this.state !== 'reconnecting' && this.state !== 'offline') this.setState('connecting');
    ws.onopen = () => {
      if (this.ws !== ws) return;
      const reconnected = this.everOpen;
      this.everOpen = true;
      this.lastSeq = 0;
      this.views.clear();
      this.mismatch = {};
      this.setState('live');
      this.send({ type: 'subscribe', ...this.spec });
      this.emit('open', { reconnected });
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws || typeof ev.data !== 'string') return;
      // One frame may hold several messages, one per line.
      for (const line of ev.data.split('\n')) {
        if (!line.trim()) continue;
        let m;
        try { m = JSON.parse(line); } catch { console.warn('stream: not JSON:', line.slice(0, 200)); continue; }
        this.messages++;
        this.attempt = 0; // the connection works: the next drop starts the backoff again
        try { this.apply(m); } catch (e) { console.error('stream: applying', m.type, e); }
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* a close follows */ };
  }

  scheduleReconnect() {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.retryAt = Date.now() + delay;
    this.setState(this.attempt > 4 ? 'offline' : 'reconnecting', { retryInMs: delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnects at once (the browser came back online, or the user asked). */
  reconnectNow() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    this.attempt = 0;
    this.connect();
  }

  apply(m) {
    if (typeof m.seq === 'number' && m.seq > this.lastSeq) this.lastSeq = m.seq;
    switch (m.type) {
      case 'snapshot': {
        const items = new Map();
        for (const it of m.items || []) items.set(itemKey(m.view, it), it);
        this.views.set(m.view, { snapSeq: m.seq, seq: m.seq, count: m.count ?? items.size, items, filtered: !!this.spec.warehouse });
        this.mismatch[m.view] = 0;
        this.emit('snapshot', m);
        break;
      }
      case 'delta': {
        const v = this.views.get(m.view);
        if (v) {
          if (m.seq <= v.snapSeq) return; // already in the snapshot (a commit's deltas share one seq)
          const key = itemKey(m.view, m.item || {});
          const had = v.items.has(key);
          if (m.op === 'remove') {
            if (had) v.items.delete(key);
            v.count = Math.max(0, v.count - 1);
          } else {
            v.items.set(key, m.item);
            if (m.op === 'add' && !had) v.count++;
          }
          v.seq = m.seq;
        }
        this.emit('delta', m);
        break;
      }
      case 'summary':
        if (m.now) setServerNow(m.now, m.warp);
        this.summary = m;
        this.checkCounts(m);
        this.emit('summary', m);
        break;
      case 'resync':
        this.views.clear();
        this.mismatch = {};
        this.emit('resync', m);
        break;
      case 'error':
        console.warn('stream: server error', m.error);
        this.emit('servererror', m);
        break;
      default:
        break;
    }
  }

  /**
   * Gap detection: once a summary at seq S arrived, every delta up to S has (the server sends a commit's
   * deltas before the summary that counts them). A view whose count still disagrees with the summary on
   * two summaries in a row lost something: ask for a fresh snapshot (at most every few seconds).
   */
  checkCounts(m) {
    if (!m.views) return;
    for (const [view, v] of this.views) {
      const s = m.views[view];
      if (!s || v.filtered || typeof s.count !== 'number') continue;
      if (s.count === v.count || (typeof m.seq === 'number' && m.seq < v.seq)) {
        this.mismatch[view] = 0;
        continue;
      }
      this.mismatch[view] = (this.mismatch[view] || 0) + 1;
      if (this.mismatch[view] >= 2 && Date.now() - (this.lastResync[view] || 0) > RESYNC_MIN_INTERVAL_MS) {
        this.mismatch[view] = 0;
        console.info(`stream: ${view} counts ${v.count}, the server ${s.count}: resync`);
        this.resync(view);
      }
    }
  }
}

export function cmpSince(a, b) {
  const x = Date.parse(a.since), y = Date.parse(b.since);
  if (x !== y) return (Number.isFinite(x) ? x : Infinity) - (Number.isFinite(y) ? y : Infinity);
  return 0;
}

export const live = new Live();
