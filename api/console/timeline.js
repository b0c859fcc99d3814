// The history timeline (newest first, paged) and "roll back to this version" with a confirmation
// that shows the diff and asks for a reason.
import { call, get, svcPath } from './api.js';
import { diffView, errorBox, h, timeEl, toast } from './ui.js';

export function timeline(st, { show, refresh }) {
  const list = h('ol.timeline', { id: 'timeline' });
  const more = h('button', { type: 'button', id: 'older', hidden: true, onclick: () => load(true) }, 'Load older');
  const el = h('div', {}, list, more);
  const items = new Map(); // version -> <li>
  const entries = new Map(); // version -> history entry
  let cursor = null;
  let pagedOlder = false;
  const esc = encodeURIComponent(st.name);

  function item(v) {
    const latest = st.current && v.version === st.current.version;
    const cs = v.change_set || null;
    return h('li', { 'data-version': v.version, 'data-latest': latest ? '1' : '0' },
      h('div.tl-head', {}, h('strong', {}, `v${v.version}`), ' ', h('span.kind', {}, v.kind), ' ',
        h('span.actor', {}, v.actor), ' ', timeEl(v.occurred_at)),
      h('p.reason', {}, v.reason || h('span.muted', {}, 'no reason given')),
      cs ? h('p.muted', {}, `change set ${typeof cs === 'object' ? cs.id || JSON.stringify(cs) : cs}`) : null,
      h('div.tl-actions', {},
        h('button.small', { type: 'button', onclick: () => show(v.version) }, 'Show'),
        v.version > 1 ? h('a.button.small', { href: `#/diff/${esc}?from=${v.version - 1}&to=${v.version}` }, 'Diff') : null,
        latest || v.config === null ? null
          : h('button.small', { type: 'button', 'data-rollback': v.version, onclick: () => confirmRollback(v.version) }, `Roll back to v${v.version}`)));
  }

  function place(v) {
    entries.set(v.version, v);
    const node = item(v);
    const old = items.get(v.version);
    items.set(v.version, node);
    if (old) { old.replaceWith(node); return; }
    const after = [...list.children].find((li) => Number(li.dataset.version) < v.version);
    list.insertBefore(node, after || null);
  }

  // The newest version changed: the "roll back" buttons move.
  function relabel() {
    for (const [n, li] of [...items]) {
      const isLatest = Boolean(st.current && n === st.current.version);
      if ((li.dataset.latest === '1') !== isLatest) place(entries.get(n));
    }
  }

  async function load(older = false) {
    try {
      const page = await get(`/api/v1/config/history/${esc}?limit=50${older && cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const v of page.versions) { if (!st.versions.has(v.version)) st.versions.set(v.version, v); place(v); }
      if (older || !pagedOlder) { cursor = page.next_cursor; more.hidden = !cursor; }
      if (older) pagedOlder = true;
      relabel();
    } catch (err) {
      if (err.status !== 401) list.replaceChildren(h('li', {}, errorBox(err)));
    }
  }

  function add(v) {
    place(v);
    relabel();
  }

  async function confirmRollback(n) {
    const cur = st.current.version;
    const reason = h('input', { id: 'rollback-reason', 'aria-required': 'true', autocomplete: 'off' });
    const err = h('div', { id: 'rollback-error', 'aria-live': 'assertive' });
    reason.addEventListener('input', () => err.replaceChildren());
    const diffBox = h('div', {}, h('p.muted', {}, 'Loading the diff…'));
    const dialog = h('dialog.card', { id: 'rollback-dialog', 'aria-labelledby': 'rb-title' });
    const close = () => { dialog.close(); dialog.remove(); };
    const form = h('form', { onsubmit: async (e) => {
      e.preventDefault();
      if (!reason.value.trim()) { err.replaceChildren(h('p.error', { role: 'alert' }, 'A reason is required.')); reason.focus(); return; }
      try {
        const r = await call(svcPath(st.name, '/rollback'), { method: 'POST', headers: { 'If-Match': `"${cur}"` }, body: { to_version: n, reason: reason.value.trim() } });
        close();
        await refresh();
        toast(`Rolled back ${st.name} to v${n}: now v${r.data.version}`);
      } catch (e2) {
        err.replaceChildren(e2.status === 409
          ? h('p.error', { role: 'alert' }, `Conflict: ${st.name} is now at version ${e2.details.current_version}, not v${cur}. Nothing was rolled back; close and look again.`)
          : errorBox(e2, 'Refused: '));
      }
    } },
    h('h2', { id: 'rb-title' }, `Roll back ${st.name} to v${n}?`),
    h('p', {}, `This appends v${cur + 1} with the document of v${n}; the history keeps every version. Changes from the current v${cur}:`),
    diffBox,
    h('label', { for: 'rollback-reason' }, 'Reason (required)'), reason, err,
    h('div.toolbar', {}, h('button', { type: 'submit', id: 'rollback-confirm' }, `Roll back to v${n}`),
      h('button', { type: 'button', onclick: close }, 'Cancel')));
    dialog.append(form);
    dialog.addEventListener('cancel', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
    try {
      const d = await get(`${svcPath(st.name, '/diff')}?from=${cur}&to=${n}`);
      diffBox.replaceChildren(diffView(d, 'side', [`v${cur} (now)`, `v${n}`]));
    } catch (e) {
      diffBox.replaceChildren(errorBox(e));
    }
  }

  return { el, load, add };
}
