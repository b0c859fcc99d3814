// Small DOM helpers and the shared views: JSON tree, diff, times, messages.

// h('a.cls', {href: '#'}, 'text', child…): an element; attributes starting with "on" are listeners.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split('.');
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

// '2026-11-28T10:30:45.123456Z' → '2026-11-28 10:30:45Z'
export const shortTime = (iso) => (iso ? iso.replace('T', ' ').replace(/\.\d+/, '') : '');

export function timeEl(iso) {
  return h('time', { datetime: iso, title: iso }, shortTime(iso));
}

export function ago(iso, now = Date.now()) {
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

const typeOf = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

// A JSON value as a collapsible tree (<details>: keyboard and screen-reader friendly).
export function tree(value, key = null, depth = 0) {
  const t = typeOf(value);
  const label = key === null ? null : h('span.k', {}, key);
  if (t === 'object' || t === 'array') {
    const entries = t === 'array' ? value.map((v, i) => [String(i), v]) : Object.entries(value);
    const summary = h('summary', {}, label, label ? ': ' : '',
      h('span.muted', {}, t === 'array' ? `[${entries.length}]` : `{${entries.length}}`));
    const list = h('ul', {}, entries.map(([k, v]) => h('li', {}, tree(v, k, depth + 1))));
    return h('details', { open: depth < 4 }, summary, list);
  }
  return h('span.leaf', {}, label, label ? ': ' : '', h(`span.v-${t}`, {}, JSON.stringify(value)));
}

export function docView(config) {
  return h('div.doc', {}, tree(config),
    h('details.raw', {}, h('summary', {}, 'Raw JSON'), h('pre', {}, JSON.stringify(config, null, 2))));
}

const show = (v) => (v === undefined ? '' : JSON.stringify(v));

// The API's key-level diff ({added, removed, changed}) as rows: [path, kind, from, to].
export function diffRows(d) {
  const rows = [
    ...d.removed.map((c) => [c.path, 'removed', c.value, undefined]),
    ...d.added.map((c) => [c.path, 'added', undefined, c.value]),
    ...d.changed.map((c) => [c.path, 'changed', c.from, c.to]),
  ];
  return rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function diffView(d, mode = 'inline', labels = ['before', 'after']) {
  const rows = diffRows(d);
  if (!rows.length) return h('p.muted.diff-empty', {}, 'No differences.');
  if (mode === 'side') {
    return h('table.diff.side', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Key'), h('th', { scope: 'col' }, labels[0]), h('th', { scope: 'col' }, labels[1]))),
      h('tbody', {}, rows.map(([p, kind, a, b]) => h(`tr.${kind}`, {},
        h('th', { scope: 'row' }, h('code', {}, p)),
        h('td.old', {}, a === undefined ? h('span.muted', {}, '—') : h('code', {}, show(a))),
        h('td.new', {}, b === undefined ? h('span.muted', {}, '—') : h('code', {}, show(b)))))));
  }
  return h('ul.diff.inline', {}, rows.map(([p, kind, a, b]) => h(`li.${kind}`, {},
    h('span.sign', { 'aria-hidden': 'true' }, kind === 'added' ? '+' : kind === 'removed' ? '−' : '~'),
    h('code.path', {}, p), ' ', h('span.kind', {}, kind), ' ',
    kind !== 'added' ? h('code.old', {}, show(a)) : null,
    kind === 'changed' ? ' → ' : null,
    kind !== 'removed' ? h('code.new', {}, show(b)) : null)));
}

export function errorBox(err, prefix = '') {
  const where = err && err.details && err.details.path ? ` (at ${err.details.path})` : '';
  return h('p.error', { role: 'alert' }, `${prefix}${err.message || err}${where}`);
}

let toastTimer = null;
export function toast(text) {
  const el = $('#toast');
  el.textContent = text;
  el.classList.add('on');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('on'), 4000);
}

// '#/s/name?from=1&to=2' → {parts: ['s', 'name'], query: URLSearchParams}
export function parseHash(hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q) };
}

// A local datetime-local value (seconds) → the RFC 3339 instant at the end of that second.
export function localToInstant(value) {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  return new Date(d.getTime() + 999).toISOString();
}

export function instantToLocal(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
