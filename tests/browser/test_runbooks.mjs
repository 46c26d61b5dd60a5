#!/usr/bin/env node
// Real-browser test of the runbook pages (#/runbooks, #/runbook/KIND/NAME, #/runbook?view=..; web/js/pages/
// runbook.js and web/js/markdown.js): Debian's Chromium driven by playwright-core against
// `towerd serve --no-nats --runbooks DIR`, DIR being the shipped docs/runbooks plus a hostile runbook.
//
// usage: node test_runbooks.mjs TOWERD [--artifacts DIR] [--slow N]
//
// Checks: the navigation lists every kind of runbook; a view's runbook renders its headings, lists and
// code; the most specific runbook is chosen for a view and reason, the view's when the reason has none;
// a runbook with HTML, a javascript: link and an onerror image shows them as text (no script element,
// no image, no such link; no dialog, no page error); a missing runbook says what to do instead.
import { cpSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  log, start, stop, cleanup, tempdir, http, until, tail, freePort, sanitizerReport, parseArgs, assert, launchChromium,
} from './harness.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..', '..');
const { towerd: TOWERD, SLOW } = parseArgs('test_runbooks.mjs');
const watchdog = setTimeout(() => { log('FAIL: no end within 90 s'); cleanup(); process.exit(1); }, 90000 * SLOW);
const results = [];
const errors = [];
const dialogs = [];
async function check(name, fn) {
  try { await fn(); results.push({ name, ok: true }); log(`ok   ${name}`); }
  catch (e) { results.push({ name, ok: false, why: e.stack || String(e) }); log(`FAIL ${name}: ${e.message}`); }
}

const root = tempdir('tower-br-');
const books = join(root, 'runbooks');
cpSync(join(REPO, 'docs', 'runbooks'), books, { recursive: true });
writeFileSync(join(books, 'reason', 'EVIL.md'), '# Evil <img src=x onerror="alert(1)">\n\n<script>alert(2)</script>\n\n' +
  '- [click](javascript:alert(3))\n- [home](#/)\n- **bold** and `code`\n');
const port = await freePort();
const logPath = join(root, 'serve.log');
const serve = start([TOWERD, 'serve', '--no-nats', '--data', join(root, 'store'), '--http', `127.0.0.1:${port}`,
  '--web', join(REPO, 'web'), '--runbooks', books], logPath);
let browser;
try {
  await until('towerd serve answering', async () => {
    if (serve.exitCode !== null) throw new Error(`towerd serve exited:\n${tail(logPath)}`);
    return (await http(port, '/healthz', { timeoutMs: 1000 })).status === 200;
  }, 20000 * SLOW, 50);
  browser = await launchChromium();
  const page = await browser.newPage();
  page.setDefaultTimeout(10000 * SLOW);
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const base = `http://127.0.0.1:${port}/`;

  await check('the navigation lists every kind of runbook', async () => {
    await page.goto(base + '#/');
    await page.click('.mainnav a[data-nav="runbooks"]');
    await page.waitForSelector('#runbook h2');
    const kinds = await page.$$eval('#runbook h2', (hs) => hs.map((h) => h.textContent));
    for (const k of ['Alerts', 'Rules', 'Codes', 'Reasons', 'Views']) assert(kinds.includes(k), `kinds: ${kinds}`);
    const links = await page.$$eval('#runbook a', (as) => as.map((a) => a.getAttribute('href')));
    assert(links.includes('#/runbook/view/blocked') && links.includes('#/runbook/alert/TowerProjectorStalled'), `links: ${links.slice(0, 8)}`);
  });

  await check('a view\'s runbook renders headings, lists and code', async () => {
    await page.goto(base + '#/runbook/view/pending_route');
    await page.waitForSelector('#runbook[data-id="view/pending_route"] h2');
    const t = await page.$eval('#runbook', (a) => ({ h1: a.querySelector('h1').textContent, h2: [...a.querySelectorAll('h2')].map((h) => h.textContent),
      ol: a.querySelectorAll('ol li').length, pre: a.querySelectorAll('pre code').length }));
    assert(/Pending route/.test(t.h1), `title: ${t.h1}`);
    assert(t.h2.includes('First checks') && t.h2.includes('Escalate when'), `sections: ${t.h2}`);
    assert(t.ol >= 2 && t.pre === 1, `lists and code: ${JSON.stringify(t)}`);
  });

  await check('the most specific runbook, else the view\'s', async () => {
    await page.goto(base + '#/runbook?view=blocked&reason=DOCK_CAPACITY');
    await page.waitForSelector('#runbook[data-id="reason/DOCK_CAPACITY"]');
    await page.goto(base + '#/runbook?view=blocked&reason=NOTHING_LIKE_IT');
    await page.waitForSelector('#runbook[data-id="view/blocked"]');
  });

  await check('HTML and javascript: links in a runbook stay text', async () => {
    await page.goto(base + '#/runbook/reason/EVIL');
    await page.waitForSelector('#runbook[data-id="reason/EVIL"] li');
    const t = await page.$eval('#runbook', (a) => ({ scripts: a.querySelectorAll('script').length, imgs: a.querySelectorAll('img').length,
      hrefs: [...a.querySelectorAll('a')].map((x) => x.getAttribute('href')), text: a.textContent, strong: a.querySelectorAll('strong').length }));
    assert(t.scripts === 0 && t.imgs === 0, `elements from the file: ${JSON.stringify(t)}`);
    assert(!t.hrefs.some((h) => /^javascript:/i.test(h)) && t.hrefs.includes('#/'), `links: ${t.hrefs}`);
    assert(t.text.includes('<script>alert(2)</script>') && t.text.includes('click (javascript:alert(3))'), 'shown as text');
    assert(t.strong === 1, 'bold still renders');
    await page.waitForTimeout(300);
    assert(dialogs.length === 0, `dialogs: ${dialogs}`);
  });

  await check('a missing runbook says what to do instead', async () => {
    await page.goto(base + '#/runbook/view/no_such_view');
    const msg = await page.textContent('#runbook-missing');
    assert(/No runbook has been written for view\/no_such_view/.test(msg) && /note what you did/.test(msg), msg);
  });
  if (errors.length) results.push({ name: 'no page error', ok: false, why: errors.join('\n') });
} catch (e) {
  results.push({ name: 'setup', ok: false, why: e.stack || String(e) });
}
if (browser) await browser.close().catch(() => {});
const r = await stop(serve, 'SIGTERM');
if (r && r.code !== 0) results.push({ name: 'clean shutdown', ok: false, why: JSON.stringify(r) });
const rep = sanitizerReport(logPath);
if (rep) results.push({ name: 'sanitizers', ok: false, why: rep });
const failed = results.filter((x) => !x.ok);
for (const f of failed) process.stderr.write(`\n--- ${f.name}\n${f.why}\n`);
process.stderr.write(failed.length ? `\n${failed.length} of ${results.length} checks failed\n` : `\nall ${results.length} checks passed\n`);
clearTimeout(watchdog);
cleanup();
process.exit(failed.length || !results.length ? 1 : 0);
