// Edit the current document as JSON: validated locally (syntax) and by the API (rules), saved with
// If-Match on the version the page showed and a required reason; a conflict shows the newer version.
import { call, get, svcPath } from './api.js';
import { diffView, errorBox, h } from './ui.js';

export function editor(st, done) {
  let base = st.current.version;
  const text = h('textarea', { id: 'edit-doc', spellcheck: 'false', 'aria-describedby': 'edit-error' });
  text.value = JSON.stringify(st.current.config ?? {}, null, 2); // {} after a deletion
  text.rows = Math.min(24, Math.max(6, text.value.split('\n').length + 2));
  const docErr = h('div', { id: 'edit-error', 'aria-live': 'assertive' });
  const reason = h('input', { id: 'edit-reason', 'aria-required': 'true', autocomplete: 'off', 'aria-describedby': 'reason-error' });
  const reasonErr = h('div', { id: 'reason-error', 'aria-live': 'assertive' });
  const baseNote = h('p.muted', { id: 'edit-base' });
  const conflict = h('div', { id: 'conflict' });
  const setBase = (n) => { base = n; baseNote.textContent = `Saving replaces the document only if ${st.name} is still at v${n} (If-Match).`; };
  setBase(base);

  const fail = (box, field, content) => { box.replaceChildren(content); field.setAttribute('aria-invalid', 'true'); field.focus(); };
  const clear = () => {
    for (const [box, field] of [[docErr, text], [reasonErr, reason]]) { box.replaceChildren(); field.removeAttribute('aria-invalid'); }
    conflict.replaceChildren();
  };

  async function showConflict(now) {
    const box = h('div.conflict', { role: 'alert' },
      h('p', {}, h('strong', {}, 'Conflict: '), `${st.name} is now at version ${now}; you edited version ${base}. Nothing was saved.`));
    conflict.replaceChildren(box);
    box.scrollIntoView({ block: 'nearest' });
    try {
      const d = await get(`${svcPath(st.name, '/diff')}?from=${base}&to=${now}`);
      box.append(h('p', {}, `What changed from v${base} to v${now}:`), diffView(d, 'inline'));
    } catch (err) {
      box.append(errorBox(err));
    }
    const mine = text.value;
    box.append(h('div.toolbar', {},
      h('button', { type: 'button', onclick: async () => {
        const v = await get(svcPath(st.name));
        text.value = JSON.stringify(v.config, null, 2);
        setBase(v.version);
        conflict.replaceChildren();
        text.focus();
      } }, `Discard my edit and load v${now}`),
      h('button', { type: 'button', onclick: () => { text.value = mine; setBase(now); conflict.replaceChildren(); text.focus(); } },
        `Keep my edit, to save over v${now}`)));
    box.scrollIntoView({ block: 'center' });
  }

  async function save(e) {
    e.preventDefault();
    clear();
    let doc;
    try {
      doc = JSON.parse(text.value);
    } catch (err) {
      fail(docErr, text, h('p.error', { role: 'alert' }, `Not valid JSON: ${err.message}`));
      return;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      fail(docErr, text, h('p.error', { role: 'alert' }, 'A config document must be a JSON object.'));
      return;
    }
    if (!reason.value.trim()) {
      fail(reasonErr, reason, h('p.error', { role: 'alert' }, 'A reason is required for every change.'));
      return;
    }
    try {
      const q = `?reason=${encodeURIComponent(reason.value.trim())}`;
      const r = await call(svcPath(st.name) + q, { method: 'POST', body: text.value, headers: { 'If-Match': `"${base}"` } });
      done(r.data.version);
    } catch (err) {
      if (err.status === 409) showConflict(err.details.current_version);
      else if (err.details && err.details.rule === 'reason.required') fail(reasonErr, reason, errorBox(err));
      else fail(docErr, text, errorBox(err, err.status === 403 ? 'Not allowed: ' : 'Refused: '));
    }
  }

  const form = h('form.editor', { onsubmit: save },
    h('label', { for: 'edit-doc' }, 'Document (JSON)'), text, docErr,
    h('label', { for: 'edit-reason' }, 'Reason (required)'), reason, reasonErr,
    baseNote, conflict,
    h('div.toolbar', {}, h('button', { type: 'submit', id: 'save' }, 'Save'),
      h('button', { type: 'button', onclick: () => done(null) }, 'Cancel')));
  queueMicrotask(() => text.focus());
  return form;
}
