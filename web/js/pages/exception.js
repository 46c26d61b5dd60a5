// One exception on a page of its own (#/exception/ID): the panel, with links to its order or shipment.
import { live } from '../stream.js';
import { h } from '../util.js';
import { mountPanel } from '../panel.js';
import { VIEW_BY_ID } from '../views.js';
import { viewOfException } from '../exceptions.js';

export function mount(main, id) {
  const view = viewOfException(id);
  const label = (VIEW_BY_ID[view] || { label: 'Exception' }).label;
  document.title = `${label} exception · Control tower`;
  const box = h('div', { class: 'exception-page panel', id: 'exception-panel' });
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Overview'), ' › ',
      view ? h('a', { href: view === 'dead_letters' ? '#/dead-letters' : '#/view/' + view }, label) : 'Exception', ' › Exception'),
    box);
  live.subscribe({});
  const p = mountPanel(box, id, { headingLevel: 'h1' });
  return { unmount() { p.unmount(); } };
}
