// Services: every service with its current version and last change; a filter box; live (polls
// the list every 2 s while the tab is visible: there is no fleet-wide change stream yet).
import { get } from './api.js';
import { ago, errorBox, h, timeEl } from './ui.js';

const POLL_MS = 2000;

function row(s) {
  const href = `#/s/${encodeURIComponent(s.service)}`;
  return h(`tr${s.deleted ? '.deleted' : ''}`, { 'data-service': s.service },
    h('th', { scope: 'row' }, h('a', { href }, s.service), s.deleted ? h('span.badge', {}, 'deleted') : null),
    h('td.num', { 'data-label': 'Version' }, `v${s.version}`),
    h('td', { 'data-label': 'When' }, timeEl(s.updated_at), h('span.muted.ago', {}, ` ${ago(s.updated_at)}`)),
    h('td', { 'data-label': 'Who' }, s.actor || ''),
    h('td.reason', { 'data-label': 'Why' }, s.reason || h('span.muted', {}, '—')));
}

export function servicesPage(main) {
  let services = [];
  let seq = -1;
  let timer = null;
  let first = true;
  const filter = h('input', { id: 'filter', type: 'search', placeholder: 'Filter by name, actor or reason', autocomplete: 'off', 'aria-controls': 'services' });
  const count = h('p.muted', { id: 'count', 'aria-live': 'polite' });
  const body = h('tbody');
  const status = h('div');
  const table = h('table.services', { id: 'services' },
    h('caption.sr-only', {}, 'Services and their last change'),
    h('thead', {}, h('tr', {}, ['Service', 'Version', 'When', 'Who', 'Why'].map((t) => h('th', { scope: 'col' }, t)))),
    body);
  main.append(h('div.page-head', {}, h('h1', { tabindex: '-1' }, 'Services'),
    h('label.filter', {}, h('span.sr-only', {}, 'Filter services'), filter)), count, status, table);

  function render() {
    const q = filter.value.trim().toLowerCase();
    const shown = q ? services.filter((s) => `${s.service} ${s.actor || ''} ${s.reason || ''}`.toLowerCase().includes(q)) : services;
    const frag = document.createDocumentFragment();
    for (const s of shown) frag.append(row(s));
    body.replaceChildren(frag);
    count.textContent = q ? `${shown.length} of ${services.length} services` : `${services.length} services`;
    if (!services.length) body.append(h('tr', {}, h('td', { colspan: 5 }, 'No service yet.')));
  }

  async function load() {
    timer = null;
    if (document.hidden && !first) { timer = setTimeout(load, POLL_MS); return; } // a background tab
    try {
      const data = await get('/api/v1/config');
      status.replaceChildren();
      if (data.projected_seq !== seq) {
        seq = data.projected_seq;
        services = data.services;
        render();
        if (first) { first = false; performance.mark('services-rendered'); main.dataset.ready = 'true'; }
      }
    } catch (err) {
      if (err.status === 401) return;
      status.replaceChildren(errorBox(err, 'Could not list services: '));
    }
    if (!stopped) timer = setTimeout(load, POLL_MS);
  }
  let stopped = false;
  filter.addEventListener('input', render);
  load();
  return () => { stopped = true; clearTimeout(timer); };
}
