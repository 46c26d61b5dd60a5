// Search results: orders and shipments by id prefix, and customers with their orders; an exact id opens it.
import { api } from '../api.js';
import { h } from '../util.js';

export function mount(main, q) {
  document.title = `Search “${q}” · Control tower`;
  const input = document.getElementById('q');
  if (input && input.value !== q) input.value = q;
  let alive = true;
  const out = h('div', { id: 'search-results', 'aria-live': 'polite' }, h('p', { class: 'loading' }, 'Searching…'));
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › Search'),
    h('h1', {}, 'Search ', h('span', { class: 'mono' }, `“${q}”`)), out);

  (async () => {
    let r;
    try {
      r = await api('/search?q=' + encodeURIComponent(q));
    } catch (e) {
      if (alive) out.replaceChildren(h('p', { class: 'error', role: 'alert' }, `Search failed: ${e.message}`));
      return;
    }
    if (!alive) return;
    const orders = r.orders || [], ships = r.shipments || [], custs = r.customers || [];
    // An exact id, or a single hit, opens the page directly (replacing the search in the history).
    const exactOrder = orders.find((o) => o === q), exactShip = ships.find((s) => s === q);
    const custOrders = [...new Set(custs.filter((c) => c.customerId === q).map((c) => c.orderId))];
    let target = null;
    if (exactOrder) target = '#/order/' + encodeURIComponent(exactOrder);
    else if (exactShip) target = '#/shipment/' + encodeURIComponent(exactShip);
    else if (orders.length + ships.length + custs.length === 1) {
      target = orders.length ? '#/order/' + encodeURIComponent(orders[0])
        : ships.length ? '#/shipment/' + encodeURIComponent(ships[0]) : '#/order/' + encodeURIComponent(custs[0].orderId);
    } else if (custOrders.length === 1 && !orders.length && !ships.length) {
      target = '#/order/' + encodeURIComponent(custOrders[0]);
    }
    if (target) { location.replace(target); return; }
    if (!orders.length && !ships.length && !custs.length) {
      out.replaceChildren(h('p', {}, 'Nothing found. Try the beginning of an order id (SO-…), a shipment id (SH-…) or a customer id.'));
      return;
    }
    const section = (title, id, items) => (items.length ? h('section', { 'aria-labelledby': id },
      h('h2', { id }, `${title} (${items.length})`), h('ul', { class: 'results' }, items)) : null);
    const byCust = new Map();
    for (const c of custs) {
      if (!byCust.has(c.customerId)) byCust.set(c.customerId, []);
      byCust.get(c.customerId).push(c.orderId);
    }
    // replaceChildren prints null as text: leave empty sections out.
    out.replaceChildren(...[
      section('Orders', 'r-orders', orders.map((o) => h('li', {}, h('a', { href: '#/order/' + encodeURIComponent(o) }, o)))),
      section('Shipments', 'r-ships', ships.map((s) => h('li', {}, h('a', { href: '#/shipment/' + encodeURIComponent(s) }, s)))),
      section('Customers', 'r-custs', [...byCust].map(([c, os]) => h('li', {}, h('span', { class: 'mono' }, c), ': ',
        os.map((o, i) => [i ? ', ' : '', h('a', { href: '#/order/' + encodeURIComponent(o) }, o)])))),
      (orders.length >= 50 || ships.length >= 50) ? h('p', { class: 'note' }, 'Showing the first 50 of each; type more of the id to narrow.') : null,
    ].filter(Boolean));
  })();
  return { unmount() { alive = false; } };
}
