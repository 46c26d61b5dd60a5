// Integrations: the outbound relay's destinations (docs/outbound.md) — each one's circuit breaker, figures,
// last error, its delivery dead letters with every attempt, and a Redrive button for operators.
import { api, whoami } from '../api.js';
import { h, fmtTime, fmtCount, announce, fmtWhen, zoneName } from '../util.js';

const REFRESH_MS = 3000;
const DEAD_SHOWN = 20;

const BREAKER_WORD = { closed: 'Closed', open: 'Open', 'half-open': 'Half-open', unknown: 'Unknown' };
const BREAKER_MARK = { closed: '●', open: '■', 'half-open': '◆', unknown: '?' };

/** "What do I do next?" for a destination, from its breaker and figures. */
export function nextStep(d) {
  const failed = d.failed ?? 0;
  const dead = d.deadLetters ?? 0;
  let s;
  switch (d.breaker) {
    case 'open':
      s = `Open: the receiver failed ${d.breakerFailures ?? 'several'} times in a row. Deliveries wait, nothing is lost;` +
        ` a probe goes every ${d.breakerCooldownSeconds ?? 30} s and they resume when it answers.` +
        ' Check the receiver (its logs, its URL, its certificate).';
      break;
    case 'half-open':
      s = 'Half-open: one probe delivery is on its way; a success closes the breaker and the backlog drains.';
      break;
    case 'closed':
      s = d.backlog ? `Delivering: ${fmtCount(d.backlog)} event${d.backlog === 1 ? '' : 's'} still to go.`
        : 'Healthy: nothing waits.';
      if (d.failingSince) s += ' Recent attempts failed; they are retried with backoff.';
      break;
    default:
      s = 'Unknown: the relay has written no status for this destination. Is `towerd relay` (or `towerd up --relay`)' +
        ' running with this state directory?';
  }
  if (dead) {
    s += ` ${fmtCount(dead)} dead letter${dead === 1 ? '' : 's'}: deliveries given up after ${d.maxAttempts ?? 'their'} attempts` +
      ' or refused by the receiver. Fix the cause, then redrive them.';
  } else if (failed && d.breaker === 'closed' && !d.failingSince) {
    s += ' No dead letter.';
  }
  return s;
}

function num(v) { return v === null || v === undefined ? '—' : fmtCount(v); }

export function mount(main) {
  document.title = 'Integrations · Control tower';
  const st = { alive: true, timer: null, canAct: null, busy: new Set(), results: new Map(), open: new Set() };
  const status = h('p', { class: 'view-status', role: 'status', id: 'int-status' }, 'Loading…');
  const list = h('div', { class: 'int-list', id: 'integrations' });
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › Integrations'),
    h('div', { class: 'page-head' }, h('h1', {}, 'Integrations'),
      h('p', { class: 'muted' }, 'Where the tower delivers business events (webhooks, Slack): each destination\'s circuit breaker, ' +
        'deliveries, failures and dead letters. Refreshes every few seconds.')),
    h('div', { class: 'toolbar' }, status), list);

  function deadList(name, dl) {
    if (!dl) return h('p', { class: 'muted small' }, 'Loading the dead letters…');
    if (!dl.items.length) return h('p', { class: 'ok-note small' }, 'No dead letter.');
    const rows = dl.items.slice().reverse().map((x) => h('li', { class: 'int-dead', 'data-seq': String(x.seq) },
      h('div', {}, h('span', { class: 'mono' }, x.eventId || '?'), ' ', h('span', { class: 'muted' }, `${x.type || ''} · seq ${x.seq}`),
        ' · given up ', x.deadAt ? h('time', { datetime: x.deadAt }, fmtWhen(x.deadAt)) : '?'),
      h('ol', { class: 'attempts', 'aria-label': `Attempts of event ${x.eventId || x.seq}` },
        ...(x.attempts || []).map((a) => h('li', {},
          h('span', { class: 'num' }, a.at ? fmtTime(a.at).slice(11) : '?'), ' ',
          h('code', {}, a.status ? `HTTP ${a.status}` : 'no answer'),
          a.error && a.error !== `HTTP ${a.status}` ? ` ${a.error}` : '')))));
    return h('div', {},
      h('p', { class: 'muted small' }, dl.count > dl.items.length ? `The newest ${dl.items.length} of ${fmtCount(dl.count)}, newest first:` : 'Newest first:'),
      h('ul', { class: 'int-dead-list', id: `dead-${name}` }, ...rows));
  }

  function card(d, dl) {
    const breaker = BREAKER_WORD[d.breaker] ? d.breaker : 'unknown';
    const fig = (label, value, cls) => h('div', { class: 'fig ' + (cls || '') }, h('dt', {}, label), h('dd', { class: 'num', 'data-fig': label.toLowerCase() }, value));
    const result = st.results.get(d.name);
    const redrive = st.canAct && d.deadLetters > 0
      ? h('button', { type: 'button', class: 'primary redrive-int', disabled: st.busy.has(d.name) ? true : null,
        'aria-label': `Redrive the dead letters of ${d.name}`, onclick: () => doRedrive(d.name) },
      st.busy.has(d.name) ? 'Redriving…' : `Redrive ${fmtCount(d.deadLetters)}`)
      : null;
    const det = h('details', { class: 'int-dead-box', open: st.open.has(d.name) ? true : null },
      h('summary', {}, `Dead letters (${fmtCount(d.deadLetters ?? 0)})`), deadList(d.name, dl));
    det.addEventListener('toggle', () => { if (det.open) st.open.add(d.name); else st.open.delete(d.name); });
    return h('article', { class: 'int', id: 'int-' + d.name, 'data-name': d.name, 'data-breaker': breaker, 'aria-labelledby': 'int-h-' + d.name },
      h('header', {},
        h('h2', { id: 'int-h-' + d.name }, d.name, ' ', h('span', { class: 'muted small' }, `${d.kind} · ${d.endpoint}`)),
        h('span', { class: 'breaker', 'data-breaker': breaker, title: 'Circuit breaker' },
          h('span', { 'aria-hidden': 'true' }, BREAKER_MARK[breaker] + ' '), BREAKER_WORD[breaker])),
      h('dl', { class: 'int-figs' },
        fig('Delivered', num(d.delivered)), fig('Failed', num(d.failed), d.failed ? 'warn' : ''),
        fig('Dead', num(d.deadLetters), d.deadLetters ? 'bad' : ''), fig('Backlog', num(d.backlog), d.backlog ? 'warn' : '')),
      h('p', { class: 'small' },
        d.exceptions ? ['Exception changes: ', d.exceptions.join(', '),
          d.views && d.views.length ? ` · views ${d.views.join(', ')}` : '',
          d.customers && d.customers.length ? ` · customers ${d.customers.join(', ')}` : '']
          : ['Events: ', (d.events || []).join(', ') || '—'],
        d.warehouses && d.warehouses.length ? ` · warehouses ${d.warehouses.join(', ')}` : '',
        d.carriers && d.carriers.length ? ` · carriers ${d.carriers.join(', ')}` : ''),
      d.lastError ? h('p', { class: 'int-error' }, 'Last error: ', h('code', {}, d.lastError),
        d.failingSince ? [' · failing since ', h('time', { datetime: d.failingSince }, fmtWhen(d.failingSince)),
          ' (', h('span', { class: 'num', 'data-since': d.failingSince }, ''), ')'] : '') : null,
      h('p', { class: 'muted small' }, 'Last delivered: ',
        d.lastOkAt ? h('time', { datetime: d.lastOkAt }, fmtWhen(d.lastOkAt)) : 'never'),
      h('p', { class: 'next-step' }, h('strong', {}, 'Next step: '), nextStep(d)),
      h('div', { class: 'int-actions' }, redrive,
        result ? h('p', { class: 'int-result', role: 'status' }, result) : null,
        st.canAct === false && d.deadLetters > 0 ? h('span', { class: 'muted small' }, 'Redrive needs the operator role.') : null),
      det);
  }

  async function load() {
    clearTimeout(st.timer);
    try {
      if (st.canAct === null) {
        const m = await whoami();
        st.canAct = m ? !!m.canAct : false;
      }
      const b = await api('/integrations');
      if (!st.alive) return;
      const dests = b.destinations || [];
      const dls = await Promise.all(dests.map((d) => (d.deadLetters > 0
        ? api(`/integrations/${encodeURIComponent(d.name)}/dead-letters?limit=${DEAD_SHOWN}`).catch(() => null)
        : Promise.resolve({ count: 0, items: [] }))));
      if (!st.alive) return;
      if (!b.configured) {
        list.replaceChildren(h('p', { class: 'ok-note', id: 'int-none' },
          'No relay is configured on this server. Start it with --relay FILE (towerd serve --relay FILE --relay-state DIR, ' +
          'or towerd up --relay FILE) to see the destinations here.'));
      } else {
        list.replaceChildren(...dests.map((d, i) => card(d, dls[i])));
      }
      const bad = dests.filter((d) => d.breaker === 'open').length;
      status.textContent = b.configured ? `${dests.length} destination${dests.length === 1 ? '' : 's'}` +
        (bad ? ` · ${bad} open breaker${bad === 1 ? '' : 's'}` : '') + ` · updated ${fmtTime(b.now || new Date().toISOString()).slice(11)} ${zoneName()}`
        : 'No relay configured';
      list.dataset.loaded = 'true';
    } catch (e) {
      if (st.alive) status.textContent = `Could not load the integrations: ${e.message}`;
    }
    if (st.alive) st.timer = setTimeout(load, REFRESH_MS);
  }

  async function doRedrive(name) {
    st.busy.add(name);
    st.results.set(name, 'Redriving…');
    load();
    try {
      const r = await api(`/integrations/${encodeURIComponent(name)}/redrive`, { method: 'POST', body: {} });
      const msg = `${name}: ${fmtCount(r.delivered)} delivered, ${fmtCount(r.stillDead)} still dead` +
        (r.stillDead ? ' (the receiver still fails: they stay dead letters; try again once it answers).' : '.');
      st.results.set(name, msg);
      announce(msg);
    } catch (e) {
      st.results.set(name, e.status === 403 ? 'Refused: redrive needs a token with the operator role.'
        : `Redrive failed: ${e.message}`);
    }
    st.busy.delete(name);
    if (st.alive) load();
  }

  load();
  return {
    unmount() {
      st.alive = false;
      clearTimeout(st.timer);
    },
  };
}
