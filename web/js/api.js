// The REST client: JSON in and out, the API token (sessionStorage) and the token prompt on 401.

const TOKEN_KEY = 'tower.token';

export class ApiError extends Error {
  constructor(status, body, path) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status} for ${path}`);
    this.status = status;
    this.code = e.code || (status ? 'HTTP_' + status : 'NETWORK');
    this.field = e.field;
    this.body = body;
  }
}

export function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

export function setToken(t) {
  try {
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  } catch { /* private mode: keep it for this page only */ }
}

let asking = null;

/**
 * Shows the token dialog once for every caller waiting on it; resolves true when a token was entered,
 * false when the user cancelled.
 */
export function askToken(message) {
  if (asking) return asking;
  const dlg = document.getElementById('token-dialog');
  if (!dlg || typeof dlg.showModal !== 'function') return Promise.resolve(false);
  const input = dlg.querySelector('input');
  const msg = dlg.querySelector('.token-message');
  msg.textContent = message || 'The server needs an API token.';
  input.value = '';
  asking = new Promise((resolve) => {
    const done = () => {
      dlg.removeEventListener('close', done);
      asking = null;
      const ok = dlg.returnValue === 'ok' && input.value.trim() !== '';
      if (ok) setToken(input.value.trim());
      resolve(ok);
    };
    dlg.addEventListener('close', done);
    dlg.showModal();
    input.focus();
  });
  return asking;
}

/**
 * Calls the API: `path` is under /api/v1 (e.g. "/summary"). Resolves with the parsed JSON body; rejects
 * with an ApiError carrying the status and the server's {error:{code,message,field}}. On 401 the user is
 * asked for a token and the call is retried with it (unless `noPrompt`).
 */
export async function api(path, { method = 'GET', body, headers = {}, signal, noPrompt = false } = {}) {
  for (let attempt = 0; ; attempt++) {
    const hdrs = { Accept: 'application/json', ...headers };
    const t = token();
    if (t) hdrs.Authorization = 'Bearer ' + t;
    if (body !== undefined && typeof body !== 'string') {
      body = JSON.stringify(body);
      hdrs['Content-Type'] = 'application/json';
    } else if (typeof body === 'string' && body !== '') {
      hdrs['Content-Type'] = 'application/json';
    }
    let res;
    try {
      res = await fetch('/api/v1' + path, { method, body, headers: hdrs, signal, cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, { error: { code: 'NETWORK', message: 'the server cannot be reached' } }, path);
    }
    let data = null;
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (res.status === 401 && attempt < 3 && !noPrompt) {
      const why = t ? 'The API token was refused. Enter another one.' : 'The server needs an API token.';
      if (await askToken(why)) continue;
    }
    if (!res.ok) throw new ApiError(res.status, data, path);
    return data;
  }
}

let caller = { token: null, answer: null, info: null };

/**
 * Who the caller is, from GET /api/v1/me: {name, role, canAct} (the name is what the server records as
 * the actor and means by "me"); null when unknown (no token yet, the server cannot be reached). Kept per
 * token, asked again after a change. A server without /me is probed instead: a bulk action with no id,
 * judged by role first (403 for a viewer) and then refused as invalid (400) for an operator.
 */
export function whoami() {
  const t = token();
  if (caller.answer && caller.token === t) return caller.answer;
  const answer = (async () => {
    let info = null;
    try {
      const m = await api('/me', { noPrompt: true });
      info = { name: m.name || null, role: m.role || null, canAct: !!m.canAct };
    } catch (e) {
      if (e.status !== 404) { caller = { token: null, answer: null, info: null }; return null; }
      try {
        await api('/exceptions/actions', { method: 'POST', body: { action: 'ack', ids: [] }, noPrompt: true });
        info = { name: null, role: null, canAct: true };
      } catch (p) {
        if (p.status === 401 || p.status === 0) { caller = { token: null, answer: null, info: null }; return null; }
        info = { name: null, role: p.status === 403 ? 'viewer' : null, canAct: p.status !== 403 };
      }
    }
    if (caller.answer === answer) caller.info = info;
    return info;
  })();
  caller = { token: t, answer, info: null };
  return answer;
}

/** Whether the caller may act on exceptions (the operator role): true, false, or null when unknown. */
export async function canWrite() {
  const m = await whoami();
  return m ? m.canAct : null;
}

/** The caller's name once known (for "assigned to me"), else null. */
export function myName() {
  return caller.info && caller.token === token() ? caller.info.name : null;
}
