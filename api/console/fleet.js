// The whole fleet as of one instant (the snapshot endpoint).
import { get } from './api.js';
import { errorBox, h, instantToLocal, localToInstant, shortTime, timeEl, tree } from './ui.js';

export function fleetPage(main, _parts, query) {
  const picker = h('input', { id: 'fleet-at', type: 'datetime-local', step: 1, required: true });
  const filter = h('input', { id: 'fleet-filter', type: 'search', placeholder: 'Filter by name', autocomplete: 'off' });
  const out = h('div', { id: 'fleet-result', 'aria-live': 'polite' });
  let snap = null;
  main.append(
    h('div.page-head', {}, h('h1', { tabindex: '-1' }, 'Fleet at an instant')),
    h('form.card.toolbar', { onsubmit: (e) => { e.preventDefault(); load(localToInstant(picker.value)); } },
      h('label', { for: 'fleet-at' }, 'As of (your local time)'), picker,
      h('button', { type: 'submit' }, 'Show'),
      h('button', { type: 'button', id: 'fleet-now', onclick: () => load(null) }, 'Now'),
      h('label', { for: 'fleet-filter', class: 'sr-only' }, 'Filter services'), filter),
    out);

  function row(name, s) {
    const cell = h('details', {}, h('summary', {}, 'config'));
    cell.addEventListener('toggle', () => { if (cell.open && cell.children.length === 1) cell.append(tree(s.config)); }, { once: true });
    return h('tr', { 'data-service': name },
      h('th', { scope: 'row' }, h('a', { href: `#/s/${encodeURIComponent(name)}` }, name)),
      h('td.num', { 'data-label': 'Version' }, `v${s.version}`),
      h('td', { 'data-label': 'Changed' }, timeEl(s.updated_at)),
      h('td', { 'data-label': 'By' }, s.actor),
      h('td', { 'data-label': 'Document' }, cell));
  }

  function render() {
    if (!snap) return;
    const q = filter.value.trim().toLowerCase();
    const names = Object.keys(snap.services).sort().filter((n) => n.toLowerCase().includes(q));
    out.replaceChildren(h('section.card', {},
      h('h2', { id: 'fleet-at-label' }, `As of ${shortTime(snap.at)}`),
      h('p.muted', {}, `${names.length} services${snap.deleted.length ? `; deleted by then: ${snap.deleted.join(', ')}` : ''}`),
      h('table.services', {}, h('thead', {}, h('tr', {}, ['Service', 'Version', 'Changed', 'By', 'Document'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, names.map((n) => row(n, snap.services[n]))))));
  }

  async function load(iso) {
    const q = iso ? `?at=${encodeURIComponent(iso)}` : '';
    history.replaceState(null, '', `#/fleet${iso ? `?at=${encodeURIComponent(iso)}` : ''}`);
    try {
      snap = await get(`/api/v1/snapshot${q}`);
      picker.value = instantToLocal(snap.at);
      render();
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  }
  filter.addEventListener('input', render);
  load(query.get('at'));
}
