// Service: the document (collapsible), time travel (version slider, instant picker), the history
// timeline, live changes over the SSE watch, edit, roll back and chain verification.
import { get, svcPath, watch } from './api.js';
import { editor } from './edit.js';
import { timeline } from './timeline.js';
import { docView, errorBox, h, instantToLocal, localToInstant, shortTime, toast } from './ui.js';

export function servicePage(main, [name]) {
  const st = { name, current: null, versions: new Map(), viewing: null, editing: false };
  const esc = encodeURIComponent(name);
  const badge = h('span.badge', { id: 'version' });
  const live = h('span.live', { id: 'live', role: 'status' }, 'connecting…');
  const verifyOut = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const slider = h('input', { id: 'travel', type: 'range', min: 1, max: 1, step: 1, value: 1, 'aria-describedby': 'travel-label' });
  const sliderLabel = h('output', { id: 'travel-label', for: 'travel' });
  const instant = h('input', { id: 'instant', type: 'datetime-local', step: 1 });
  const note = h('div', { id: 'doc-note' });
  const doc = h('div', { id: 'document' });
  const pane = h('div');
  const tl = timeline(st, { show: (v) => view(v), refresh });

  const editBtn = h('button', { type: 'button', id: 'edit', onclick: openEditor }, 'Edit');
  main.append(
    h('div.page-head', {}, h('h1', { tabindex: '-1' }, name, ' ', badge), live),
    h('div.toolbar', {}, editBtn,
      h('a.button', { href: `#/diff/${esc}` }, 'Compare versions'),
      h('button', { type: 'button', id: 'verify', onclick: verify }, 'Verify chain')),
    verifyOut,
    h('div.columns', {},
      h('section.card', { 'aria-labelledby': 'doc-h' }, h('h2', { id: 'doc-h' }, 'Document'),
        h('div.travel', {},
          h('label', { for: 'travel' }, 'Time travel'), slider, sliderLabel,
          h('form.instant', { onsubmit: (e) => { e.preventDefault(); at(); } },
            h('label', { for: 'instant' }, 'As of (your local time)'), instant,
            h('button', { type: 'submit' }, 'Go'),
            h('button', { type: 'button', onclick: () => view(null) }, 'Latest'))),
        note, pane),
      h('section.card', { 'aria-labelledby': 'hist-h' }, h('h2', { id: 'hist-h' }, 'History'), tl.el)));
  pane.append(doc);

  const latest = () => (st.current ? st.current.version : 0);

  function setCurrent(v) {
    st.current = v;
    st.versions.set(v.version, v);
    badge.textContent = `v${v.version}`;
    slider.max = String(Math.max(v.version, 1));
    if (st.viewing === null) slider.value = String(v.version);
  }

  async function version(n) {
    if (!st.versions.has(n)) {
      try {
        st.versions.set(n, await get(`${svcPath(name)}?version=${n}`));
      } catch (err) {
        if (err.status !== 404 || !(err.details && err.details.deleted)) throw err;
        st.versions.set(n, { version: n, config: null, deleted: true });
      }
    }
    return st.versions.get(n);
  }

  // Show version n (null: the latest) in the document pane.
  async function view(n) {
    st.viewing = n === latest() ? null : n;
    const target = st.viewing === null ? latest() : n;
    slider.value = String(target);
    if (!target) return;
    try {
      const v = await version(target);
      if (Number(slider.value) !== target) return; // the slider moved on meanwhile
      const when = v.updated_at || v.occurred_at;
      sliderLabel.textContent = `v${target} of ${latest()}${when ? ` · ${shortTime(when)}` : ''}`;
      note.replaceChildren(st.viewing === null ? '' : h('p.notice', {},
        `Showing v${target}, as of ${shortTime(when)} — not the current version (v${latest()}). `,
        h('a', { href: `#/diff/${esc}?from=${target}&to=${latest()}` }, `Diff v${target} → v${latest()}`)));
      doc.replaceChildren(v.config === null ? h('p.muted', {}, `Deleted at v${target}.`) : docView(v.config));
      doc.dataset.version = String(target);
    } catch (err) {
      note.replaceChildren(errorBox(err));
    }
  }

  async function at() {
    const iso = localToInstant(instant.value);
    if (!iso) { note.replaceChildren(h('p.error', { role: 'alert' }, 'Pick a date and time.')); return; }
    try {
      const v = await get(`${svcPath(name)}?at=${encodeURIComponent(iso)}`);
      st.versions.set(v.version, v);
      view(v.version);
    } catch (err) {
      const why = err.status === 404 ? (err.details && err.details.deleted ? `${name} was deleted at that instant.` : `${name} did not exist yet at that instant.`) : null;
      note.replaceChildren(why ? h('p.notice', {}, why) : errorBox(err));
    }
  }

  let sliderTimer = null;
  slider.addEventListener('input', () => {
    sliderLabel.textContent = `v${slider.value} of ${latest()}`;
    clearTimeout(sliderTimer);
    sliderTimer = setTimeout(() => view(Number(slider.value)), 120);
  });

  async function refresh() {
    try {
      const cur = await get(svcPath(name));
      setCurrent(cur);
      if (!instant.value) instant.value = instantToLocal(cur.updated_at);
    } catch (err) {
      if (err.status === 404 && err.details && err.details.deleted) setCurrent({ version: err.details.version, config: null, deleted: true });
      else if (err.status !== 401) doc.replaceChildren(errorBox(err));
    }
    await tl.load();
    if (!st.editing) view(st.viewing);
  }

  function onEvent(kind, e) {
    const known = latest();
    const v = { ...e, updated_at: e.occurred_at };
    if (e.version < known) return;
    setCurrent(v);
    tl.add(v);
    if (kind === 'change' && e.version > known) {
      toast(`${name}: v${e.version} by ${e.actor}${e.reason ? ` — ${e.reason}` : ''}`);
    }
    if (st.viewing === null && !st.editing) view(null);
    else view(st.viewing);
  }

  function openEditor() {
    if (!st.current || st.editing) return;
    st.editing = true;
    editBtn.disabled = true;
    const done = (saved) => {
      st.editing = false;
      editBtn.disabled = false;
      pane.replaceChildren(doc);
      if (saved) { toast(`Saved ${name} as v${saved}`); refresh(); } else view(st.viewing);
      editBtn.focus();
    };
    pane.replaceChildren(editor(st, done));
  }

  async function verify() {
    verifyOut.replaceChildren(h('p.muted', {}, 'Verifying the chain on the stream…'));
    try {
      const r = await get(svcPath(name, '/verify'));
      verifyOut.replaceChildren(r.ok
        ? h('p.ok', { id: 'verify-ok' }, `✓ Chain intact: ${r.events} events, versions 1–${r.version}, head hash ${r.head_hash.slice(0, 16)}… (checked ${shortTime(r.checked_at)})`)
        : h('div.error', { id: 'verify-broken' }, h('p', {}, `✗ Chain broken (${r.events} events read):`), h('ul', {}, r.problems.map((p) => h('li', {}, p)))));
    } catch (err) {
      verifyOut.replaceChildren(errorBox(err, 'Verification failed: '));
    }
  }

  refresh();
  const stop = watch(name, onEvent, (state, err) => {
    live.textContent = state === 'live' ? '● live' : state === 'error' ? `not live: ${err.message}` : 'reconnecting…';
    live.className = `live ${state}`;
  });
  return () => { stop(); clearTimeout(sliderTimer); };
}
