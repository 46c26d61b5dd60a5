// Working exceptions (docs/exceptions.md): their lifecycle state, the actions (one exception or many), the
// action bar shared by the view pages, "My queue" and the exception panel, and the dialog asking for an
// action's fields (assignee, snooze time, resolution, note).
import { api, ApiError, myName } from './api.js';
import { now } from './clock.js';
import { h, fmtTime, parseTime, fmtWhen, useUtc, zoneName, zoned } from './util.js';
import { VIEW_BY_ID } from './views.js';

export const RESOLUTIONS = [
  ['FIXED_AT_SOURCE', 'Fixed at the source'],
  ['REDRIVEN', 'Redriven'],
  ['NOT_AN_ISSUE', 'Not an issue'],
  ['DUPLICATE', 'Duplicate'],
  ['OTHER', 'Other (say why in the note)'],
];

export const STATE_LABEL = {
  open: 'Open', acknowledged: 'Acknowledged', snoozed: 'Snoozed', resolved: 'Resolved', closed: 'Closed',
};

/** The state filter of the lists: the dashboard starts on what needs attention. */
export const STATE_CHOICES = [
  ['attention', 'Needs attention'], ['all', 'All'], ['open', 'Open'], ['acknowledged', 'Acknowledged'], ['snoozed', 'Snoozed'],
];
export const ASSIGNEE_CHOICES = [['', 'Anyone'], ['me', 'Me'], ['none', 'Unassigned']];
export const SORT_CHOICES = [['age', 'Oldest first'], ['priority', 'Priority']];

/** The caller's actor name once known (GET /api/v1/me, or an assignment to "me"); null until then. */
let me = null;
export function whoAmI() { return myName() || me; }
export function learnMe(name) { if (name) me = name; }

/**
 * The lifecycle state of an item now: its `state` as the server decided it when read, except that a snooze
 * whose `until` has passed since (on the server's clock) is over.
 */
export function itemState(it) {
  if (!it) return 'open';
  const until = parseTime(it.snoozedUntil);
  const acked = !!(it.acknowledgedAt || it.assignee);
  if (it.state === 'snoozed' && Number.isFinite(until) && until <= now()) return acked ? 'acknowledged' : 'open';
  if (it.state) return it.state;
  if (Number.isFinite(until) && until > now()) return 'snoozed';
  return acked ? 'acknowledged' : 'open';
}

/** A chip with the state in words (and the snooze's end), never colour alone. */
export function stateChip(it, state = itemState(it)) {
  const label = STATE_LABEL[state] || state;
  const until = state === 'snoozed' && it && it.snoozedUntil ? ` until ${fmtTime(it.snoozedUntil).slice(5, 16)}` : '';
  return h('span', { class: 'xstate', 'data-xstate': state, title: until ? `Snoozed until ${fmtWhen(it.snoozedUntil)}` : null },
    h('span', { class: 'xstate-mark', 'aria-hidden': 'true' }), label + until);
}

export function exceptionHref(id) { return '#/exception/' + encodeURIComponent(id); }

/** The view an exception id names (o~ORDER~VIEW~..., s~SHIPMENT~VIEW~..., d~SEQ~dead_letters). */
export function viewOfException(id) {
  const parts = String(id || '').split('~');
  if (parts[0] === 'd') return 'dead_letters';
  // The entity id comes first and may itself hold "~": the view is the first known view name after it.
  for (let i = 2; i < parts.length; i++) if (VIEW_BY_ID[parts[i]]) return parts[i];
  return null;
}

/** What to do about an exception of a view, whatever its state: the business step. */
export function viewNextStep(viewId) {
  return (VIEW_BY_ID[viewId] && VIEW_BY_ID[viewId].next) || 'Find out why it is stuck and fix it at the source.';
}

/** What to do next given the state: the lifecycle step (`canAct`: the caller may act on it). */
export function stateNextStep(ex, canAct = true) {
  const state = ex.state || itemState(ex);
  switch (state) {
    case 'open': return canAct ? 'Nobody has taken it yet: acknowledge it, or assign it to whoever fixes it.'
      : 'Nobody has taken it yet: tell an operator, who can acknowledge or assign it.';
    case 'acknowledged':
      return ex.assignee ? `${ex.assignee} owns it. Add a note when something happens; resolve it once it is fixed.`
        : `Acknowledged${ex.acknowledgedBy ? ' by ' + ex.acknowledgedBy : ''}, but nobody owns it: assign it.`;
    case 'snoozed': return `Snoozed until ${fmtWhen(ex.snoozedUntil)}: it comes back then unless its condition clears.`;
    case 'resolved': return `Resolved${ex.resolution ? ' (' + ex.resolution + ')' : ''}: nothing to do. Reopen it if it was closed by mistake.`;
    case 'closed': return 'Closed: its condition cleared. Nothing to do.';
    default: return '';
  }
}

/** One line saying what went wrong with an action, for people. */
export function errorText(e) {
  const err = e instanceof ApiError ? { code: e.code, message: e.message, status: e.status } : (e || {});
  if (err.status === 403 || err.code === 'FORBIDDEN') return 'refused: acting on exceptions needs the operator role';
  if (err.status === 401) return 'refused: an API token is needed';
  switch (err.code) {
    case 'CONFLICT': return 'it does not apply any more (closed, or not resolved): ' + (err.message || '');
    case 'NOT_FOUND': return 'no such exception (any more)';
    case 'NOT_APPLIED': return 'sent, but not applied yet: it will show within seconds';
    case 'NO_BUS': case 'NOT_STORED': return 'could not be sent, nothing changed: try again';
    default: return err.message || err.code || 'failed';
  }
}

/**
 * Acts on exceptions: one id through its own route, several through the bulk route (500 at a time).
 * Resolves {done, failed, results: [{exceptionId, status, error?, exception?}]}; never rejects for a refusal
 * of the action (the results say it), only for network errors on the bulk route.
 */
export async function act(ids, action, fields = {}) {
  if (ids.length === 1) {
    const id = ids[0];
    try {
      const r = await api(`/exceptions/${encodeURIComponent(id)}/${action}`, { method: 'POST', body: fields });
      noteMe(action, fields, r && r.exception);
      return { done: 1, failed: 0, results: [{ exceptionId: id, status: 'done', exception: r && r.exception }] };
    } catch (e) {
      return { done: 0, failed: 1, results: [{ exceptionId: id, status: 'failed', error: { code: e.code, message: e.message, status: e.status } }] };
    }
  }
  const out = { done: 0, failed: 0, results: [] };
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    try {
      const r = await api('/exceptions/actions', { method: 'POST', body: { action, ids: chunk, ...fields } });
      out.done += r.done || 0;
      out.failed += r.failed || 0;
      for (const x of r.results || []) {
        out.results.push(x);
        if (x.status === 'done') noteMe(action, fields, x.exception);
      }
    } catch (e) {
      for (const id of chunk) out.results.push({ exceptionId: id, status: 'failed', error: { code: e.code, message: e.message, status: e.status } });
      out.failed += chunk.length;
    }
  }
  return out;
}

function noteMe(action, fields, ex) {
  if (action === 'assign' && fields.assignee === 'me' && ex && ex.assignee) learnMe(ex.assignee);
}

const PAST = {
  ack: 'Acknowledged', assign: 'Assigned', snooze: 'Snoozed', note: 'Noted', resolve: 'Resolved', reopen: 'Reopened',
};

/** "Acknowledged 3." / "Snoozed 2; 1 failed: ..." */
export function resultText(action, r) {
  const parts = [];
  if (r.done) parts.push(`${PAST[action] || action} ${r.done === 1 && r.results.length === 1 ? 'it' : r.done}`);
  if (r.failed) {
    const first = r.results.find((x) => x.status !== 'done');
    parts.push(`${r.done ? '' : 'Not done: '}${r.failed} failed${first && first.error ? ': ' + errorText(first.error) : ''}`);
  }
  return parts.join('; ') + '.';
}

// --- the dialog asking for an action's fields

let dlg = null;

function dialog() {
  if (dlg) return dlg;
  const title = h('h2', { id: 'act-title' });
  const what = h('p', { class: 'muted', id: 'act-what' });
  const assignee = h('input', { id: 'act-assignee', name: 'assignee', maxlength: 64, autocomplete: 'off', spellcheck: 'false' });
  const until = h('input', { id: 'act-until', name: 'until', type: 'datetime-local', step: 60 });
  const resolution = h('select', { id: 'act-resolution', name: 'resolution' },
    RESOLUTIONS.map(([v, l]) => h('option', { value: v }, l)));
  const note = h('textarea', { id: 'act-note', name: 'note', rows: 4, maxlength: 2000 });
  const error = h('p', { class: 'dlg-result', role: 'alert' });
  const ok = h('button', { type: 'submit', class: 'primary', id: 'act-ok', value: 'ok' }, 'OK');
  const fields = {
    assignee: h('div', { class: 'field' }, h('label', { for: 'act-assignee' }, 'Assign to (a name; empty to unassign)'), assignee),
    until: h('div', { class: 'field' }, h('label', { for: 'act-until', id: 'act-until-label' }, 'Snooze until'), until),
    resolution: h('div', { class: 'field' }, h('label', { for: 'act-resolution' }, 'Resolution'), resolution),
    note: h('div', { class: 'field' }, h('label', { for: 'act-note', id: 'act-note-label' }, 'Note'), note),
  };
  const form = h('form', { method: 'dialog' }, title, what, Object.values(fields), error,
    h('div', { class: 'actions' }, h('button', { type: 'button', id: 'act-cancel', onclick: () => el.close('cancel') }, 'Cancel'), ok));
  const el = h('dialog', { id: 'act-dialog', 'aria-labelledby': 'act-title' }, form);
  document.body.append(el);
  dlg = { el, form, title, what, fields, assignee, until, resolution, note, error, ok, noteLabel: el.querySelector('#act-note-label') };
  return dlg;
}

/** "2026-12-06T18:00" (datetime-local, in the zone times are shown in: local or UTC) for a time in ms. */
function localValue(ms) {
  if (useUtc()) return new Date(ms).toISOString().slice(0, 16);
  const d = new Date(ms), p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * Asks for the fields of an action: 'assign' | 'snoozeUntil' | 'resolve' | 'note'. Resolves the action's
 * body, or null when cancelled.
 */
export function askFields(kind, count) {
  const d = dialog();
  const which = { assign: ['assignee', 'note'], snoozeUntil: ['until', 'note'], resolve: ['resolution', 'note'], note: ['note'] }[kind];
  for (const [k, el] of Object.entries(d.fields)) el.hidden = !which.includes(k);
  const n = count === 1 ? 'this exception' : `these ${count} exceptions`;
  d.title.textContent = { assign: 'Assign', snoozeUntil: 'Snooze until…', resolve: 'Resolve', note: 'Add a note' }[kind];
  d.what.textContent = {
    assign: `Who works on ${n}? An assignment also acknowledges.`,
    snoozeUntil: `Hide ${n} from "Needs attention" until then (${zoneName()}).`,
    resolve: `Close ${n} although the condition may persist. It leaves the lists; it can be reopened.`,
    note: `A note on ${n}, kept in the audit trail.`,
  }[kind];
  d.ok.textContent = { assign: 'Assign', snoozeUntil: 'Snooze', resolve: 'Resolve', note: 'Add note' }[kind];
  d.noteLabel.textContent = kind === 'note' ? 'Note' : 'Note (optional)';
  d.note.required = kind === 'note';
  d.assignee.value = '';
  d.note.value = '';
  d.error.textContent = '';
  d.resolution.value = 'FIXED_AT_SOURCE';
  d.el.querySelector('#act-until-label').textContent = zoned('Snooze until');
  d.until.value = localValue(now() + 3600 * 1000);
  d.until.min = localValue(now());
  return new Promise((resolve) => {
    const submit = (e) => {
      const body = {};
      const note = d.note.value.trim();
      if (kind === 'note' && !note) { e.preventDefault(); d.error.textContent = 'Write the note first.'; return; }
      if (new TextEncoder().encode(note).length > 2000) { e.preventDefault(); d.error.textContent = 'A note is at most 2,000 bytes.'; return; }
      if (kind === 'assign') body.assignee = d.assignee.value.trim();
      if (kind === 'snoozeUntil') {
        const t = Date.parse(d.until.value + (useUtc() ? ':00Z' : ':00'));
        if (!Number.isFinite(t) || t <= now()) { e.preventDefault(); d.error.textContent = 'Pick a time in the future.'; return; }
        body.until = new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
      }
      if (kind === 'resolve') {
        body.resolution = d.resolution.value;
        if (body.resolution === 'OTHER' && !note) { e.preventDefault(); d.error.textContent = 'Say why in the note.'; return; }
      }
      if (note) body.note = note;
      d.result = body;
    };
    const close = () => {
      d.form.removeEventListener('submit', submit);
      d.el.removeEventListener('close', close);
      const r = d.el.returnValue === 'ok' ? d.result : null;
      d.result = null;
      resolve(r || null);
    };
    d.result = null;
    d.el.returnValue = '';
    d.form.addEventListener('submit', submit);
    d.el.addEventListener('close', close);
    d.el.showModal();
    (kind === 'assign' ? d.assignee : kind === 'snoozeUntil' ? d.until : kind === 'resolve' ? d.resolution : d.note).focus();
  });
}

// --- the action bar

const BUTTONS = [
  ['ack', 'Acknowledge', 'Someone has seen it and owns the next step'],
  ['assign-me', 'Assign to me', null],
  ['assign', 'Assign to…', null],
  ['snooze-1h', 'Snooze 1 h', 'Hide from "Needs attention" for an hour'],
  ['snooze-4h', 'Snooze 4 h', 'Hide from "Needs attention" for four hours'],
  ['snooze-until', 'Snooze until…', null],
  ['resolve', 'Resolve…', 'Close it with a reason'],
  ['note', 'Note…', 'Add a note to the audit trail'],
  ['reopen', 'Reopen', 'Bring a resolved exception back'],
];

/**
 * The action bar: buttons acting on `ids()` (the selection, or one exception). `onResult(action, result)`
 * is called after each action with the server's answers. `label` says what is selected ("3 selected").
 * update({count, states}) enables what applies: nothing without a selection, Reopen only for resolved ones.
 */
export function actionBar({ ids, onResult, id = 'action-bar', reopen = false, single = false }) {
  const status = h('span', { class: 'act-status', role: 'status', id: id + '-status' });
  const count = h('span', { class: 'act-count num', id: id + '-count' });
  const buttons = {};
  const bar = h('div', { class: 'action-bar', id, role: 'toolbar', 'aria-label': 'Act on the selected exceptions' }, count,
    BUTTONS.filter(([k]) => reopen || k !== 'reopen').map(([k, label, title]) => {
      const b = h('button', { type: 'button', 'data-act': k, title, onclick: () => run(k) }, label);
      buttons[k] = b;
      return b;
    }), status);
  let busy = false;

  async function run(k) {
    const list = ids();
    if (!list.length || busy) return;
    let action = k, fields = {};
    switch (k) {
      case 'assign-me': action = 'assign'; fields = { assignee: 'me' }; break;
      case 'snooze-1h': action = 'snooze'; fields = { forSeconds: 3600 }; break;
      case 'snooze-4h': action = 'snooze'; fields = { forSeconds: 4 * 3600 }; break;
      case 'assign': case 'resolve': case 'note': case 'snooze-until': {
        const f = await askFields(k === 'snooze-until' ? 'snoozeUntil' : k, list.length);
        if (!f) return;
        action = k === 'snooze-until' ? 'snooze' : k;
        fields = f;
        break;
      }
      default: break;
    }
    busy = true;
    bar.setAttribute('aria-busy', 'true');
    for (const b of Object.values(buttons)) b.disabled = true;
    status.textContent = 'Working…';
    status.classList.remove('error');
    let r;
    try {
      r = await act(list, action, fields);
    } finally {
      busy = false;
      bar.removeAttribute('aria-busy');
    }
    status.textContent = resultText(action, r);
    status.classList.toggle('error', r.failed > 0);
    status.dataset.done = String(r.done);
    status.dataset.failed = String(r.failed);
    if (onResult) onResult(action, r);
    update(last);
  }

  let last = { count: 0, states: [] };
  function update(u) {
    last = u || last;
    const n = last.count;
    count.textContent = single ? 'Act:' : n ? `${n} selected` : 'Select rows to act on them';
    const allResolved = n > 0 && last.states.length && last.states.every((s) => s === 'resolved');
    const anyClosed = last.states.some((s) => s === 'closed' || s === 'resolved');
    for (const [k, b] of Object.entries(buttons)) {
      b.disabled = busy || !n || (k === 'reopen' ? !allResolved : anyClosed);
    }
  }
  update(last);
  return { el: bar, update, status };
}
