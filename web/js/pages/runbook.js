// Runbooks: #/runbook/KIND/NAME shows one (GET /api/v1/runbooks/KIND/NAME); #/runbook?view=..&reason=..
// &code=..&rule=..&alert=.. the most specific one that exists (GET /api/v1/runbooks/match); #/runbooks lists
// them all. The text is Markdown rendered by markdown.js, which never inserts HTML.
import { api } from '../api.js';
import { h } from '../util.js';
import { render } from '../markdown.js';

const KEYS = ['alert', 'rule', 'code', 'reason', 'view'];

/** The dashboard link of the runbook that fits an item of a view (the page picks the most specific). */
export function runbookHref(view, it = {}) {
  const q = new URLSearchParams();
  if (it.rule) q.set('rule', it.rule);
  if (it.code) q.set('code', it.code);
  if (it.reason && /^[A-Z_]+$/.test(it.reason)) q.set('reason', it.reason);
  if (it.kind === 'INVENTORY') q.set('reason', 'INVENTORY');
  if (view) q.set('view', view);
  return '#/runbook?' + q.toString();
}

export function mount(main, arg, params) {
  document.title = 'Runbook · Control tower';
  const crumbs = h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ',
    h('a', { href: '#/runbooks' }, 'Runbooks'));
  const body = h('article', { class: 'runbook', id: 'runbook', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(crumbs, body);
  let alive = true;
  const show = (rb) => {
    if (!alive) return;
    document.title = `${rb.title} · Runbook · Control tower`;
    body.removeAttribute('aria-busy');
    body.dataset.id = rb.id;
    // The file's own "# Title" line is the page's h1: render the rest (## -> h2).
    const md = String(rb.markdown).replace(/^# [^\n]*\n?/, '');
    body.replaceChildren(h('h1', {}, rb.title), h('p', { class: 'muted' }, `Runbook ${rb.id}`), render(md, { base: 1 }));
  };
  const fail = (e, asked) => {
    if (!alive) return;
    body.removeAttribute('aria-busy');
    const msg = e && e.status === 404
      ? `No runbook has been written for ${asked} yet. Ask the team that runs the tower to add one (a Markdown file in its runbooks directory), and note what you did on the exception meanwhile.`
      : `The runbook could not be loaded: ${(e && e.message) || e}.`;
    body.replaceChildren(h('h1', {}, 'No runbook'), h('p', { class: 'empty', id: 'runbook-missing' }, msg),
      h('p', {}, h('a', { href: '#/runbooks' }, 'See every runbook')));
  };
  if (arg === 'list') {
    document.title = 'Runbooks · Control tower';
    api('/runbooks').then((r) => {
      if (!alive) return;
      body.removeAttribute('aria-busy');
      const groups = new Map();
      for (const rb of r.runbooks) {
        const kind = rb.id.split('/')[0];
        if (!groups.has(kind)) groups.set(kind, []);
        groups.get(kind).push(rb);
      }
      body.replaceChildren(h('h1', {}, 'Runbooks'),
        h('p', { class: 'muted' }, 'What to do for each view, reason, dead-letter code, rule and alert.'),
        r.count ? '' : h('p', { class: 'empty' }, 'No runbooks are installed (towerd serve --runbooks DIR).'),
        ...[...groups].flatMap(([kind, list]) => [h('h2', {}, kind[0].toUpperCase() + kind.slice(1) + 's'),
          h('ul', {}, list.map((rb) => h('li', {}, h('a', { href: `#/runbook/${rb.id}` }, rb.title))))]));
    }).catch((e) => fail(e, 'this server'));
  } else if (arg) {
    api('/runbooks/' + arg.split('/').map(encodeURIComponent).join('/')).then(show).catch((e) => fail(e, arg));
  } else {
    const q = new URLSearchParams();
    for (const k of KEYS) if (params.get(k)) q.set(k, params.get(k));
    api('/runbooks/match?' + q.toString()).then(show)
      .catch((e) => fail(e, KEYS.filter((k) => params.get(k)).map((k) => `${k} ${params.get(k)}`).join(', ') || 'this'));
  }
  return { unmount() { alive = false; } };
}
