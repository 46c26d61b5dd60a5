#!/usr/bin/env node
// The dashboard on the live stream's libwebsockets listener, in Debian's Chromium (playwright-core): a real
// nats-server, `towerd projector` and `towerd serve --stream-listen 127.0.0.1:PORT`. The page, loaded from
// civetweb's port, learns the stream's port from GET /api/v1/me, connects there (the Content-Security-Policy
// lets it), shows the connection live, and an event POSTed to the API appears on the open view without reload.
//
// usage: node test_stream_lws.mjs TOWERD [--slow N]
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { log, cleanup, tempdir, http, tail, freePort, parseArgs, assert, launchChromium, startStack, stopStack } from './harness.mjs';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'web');
const { towerd: TOWERD, slow } = parseArgs('test_stream_lws.mjs');
const watchdog = setTimeout(() => { log('FAIL: not within 80 s'); cleanup(); process.exit(1); }, slow(80000));

const S = {};
let failure = null;
try {
  S.root = tempdir('tower-bt-lws-');
  S.sport = await freePort();
  await startStack(S, { towerd: TOWERD, slow, web: WEB, serveExtra: ['--stream-listen', `127.0.0.1:${S.sport}`] });
  const base = `http://127.0.0.1:${S.serve.port}`;

  S.browser = await launchChromium();
  const page = await S.browser.newPage();
  const sockets = [], problems = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('console', (m) => { if (/Content Security Policy|WebSocket connection/i.test(m.text())) problems.push(m.text()); });
  await page.goto(base + '/#/view/awaiting_release');
  await page.waitForSelector('#conn[data-state="live"]', { timeout: slow(15000) });
  log('the page connected to', sockets.join(', '));
  assert(sockets.length >= 1 && sockets.every((u) => u.startsWith(`ws://127.0.0.1:${S.sport}/api/v1/stream`)),
    `the page did not use the stream listener on port ${S.sport}: ${sockets.join(', ')}`);

  const id = 'LWS-' + Date.now();
  const ev = { eventId: 'bt-' + id, occurredAt: new Date().toISOString(), source: { system: 'erp' }, orderId: id,
    orderApproved: { warehouseId: 'dc-1' } };
  const r = await http(S.serve.port, '/api/v1/events', { method: 'POST', body: JSON.stringify(ev) });
  assert(r.status === 200, `POST /api/v1/events -> ${r.status} ${r.text.slice(0, 300)}`);
  await page.waitForFunction((want) => document.body.innerText.includes(want), id, { timeout: slow(10000) });
  log('the new order arrived on the open page through the listener');
  const m = await http(S.serve.port, '/metrics');
  assert(/\ntower_ws_clients 1\n/.test(m.text), 'tower_ws_clients is not 1');
  assert(problems.length === 0, `the page reported: ${problems.join(' | ')}`);
} catch (e) {
  failure = e;
}
try {
  const problems = await stopStack(S);
  if (!failure && problems.length) failure = new Error(problems.join('\n'));
} catch (e) {
  failure = failure || e;
}
clearTimeout(watchdog);
if (failure) {
  process.stderr.write(`FAIL: ${failure.stack || failure}\n`);
  if (S.serve) process.stderr.write(`--- towerd serve log\n${tail(S.serve.logPath, 30)}\n`);
}
cleanup();
process.exit(failure ? 1 : 0);
