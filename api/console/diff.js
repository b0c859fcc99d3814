// Diff between any two versions or instants of a service, inline or side by side (key-level).
import { get, svcPath } from './api.js';
import { diffRows, diffView, errorBox, h, shortTime } from './ui.js';

const side = (s) => (s ? `v${s.version}${s.deleted ? ' (deleted)' : ''} · ${shortTime(s.stored_at)}` : 'nothing');

export function diffPage(main, [name], query) {
  const esc = encodeURIComponent(name);
  const from = h('input', { id: 'diff-from', value: query.get('from') || '', placeholder: 'previous', autocomplete: 'off' });
  const to = h('input', { id: 'diff-to', value: query.get('to') || '', placeholder: 'current', autocomplete: 'off' });
  let mode = query.get('mode') === 'side' ? 'side' : 'inline';
  const radio = (value, label) => h('label.radio', {},
    h('input', { type: 'radio', name: 'mode', value, checked: mode === value, onchange: () => { mode = value; run(); } }), label);
  const out = h('div', { id: 'diff-result', 'aria-live': 'polite' });
  main.append(
    h('div.page-head', {}, h('h1', { tabindex: '-1' }, 'Diff · ', h('a', { href: `#/s/${esc}` }, name))),
    h('form.card.diff-form', { onsubmit: (e) => { e.preventDefault(); run(); } },
      h('div.fields', {},
        h('div', {}, h('label', { for: 'diff-from' }, 'From (version or RFC 3339 instant)'), from),
        h('div', {}, h('label', { for: 'diff-to' }, 'To (version or instant)'), to)),
      h('fieldset.modes', {}, h('legend', {}, 'Show'), radio('inline', 'Inline'), radio('side', 'Side by side')),
      h('button', { type: 'submit', id: 'compare' }, 'Compare')),
    out);

  async function run() {
    const q = new URLSearchParams();
    if (from.value.trim()) q.set('from', from.value.trim());
    if (to.value.trim()) q.set('to', to.value.trim());
    history.replaceState(null, '', `#/diff/${esc}?${q}${mode === 'side' ? '&mode=side' : ''}`);
    try {
      const d = await get(`${svcPath(name, '/diff')}?${q}`);
      const rows = diffRows(d);
      const count = (k) => rows.filter((r) => r[1] === k).length;
      out.replaceChildren(h('section.card', {},
        h('h2', {}, `${side(d.from)} → ${side(d.to)}`),
        h('p.muted', { id: 'diff-summary' }, `${count('changed')} changed, ${count('added')} added, ${count('removed')} removed`),
        diffView(d, mode, [d.from ? `v${d.from.version}` : 'before', `v${d.to.version}`])));
    } catch (err) {
      out.replaceChildren(errorBox(err));
    }
  }
  run();
}
