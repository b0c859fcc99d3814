// The console's shell: session (login with a bearer token), hash router, page lifecycle.
import { ApiError, call, get, token } from './api.js';
import { $, errorBox, h, parseHash } from './ui.js';
import { servicesPage } from './services.js';
import { servicePage } from './service.js';
import { diffPage } from './diff.js';
import { fleetPage } from './fleet.js';

const PAGES = { '': servicesPage, s: servicePage, diff: diffPage, fleet: fleetPage };
const main = $('#main');
let cleanup = null;
let authOff = false;

function sessionBar() {
  const bar = $('#session');
  bar.replaceChildren();
  if (authOff) bar.append(h('span.badge.warn', { title: 'API_AUTH=off: every change is recorded as actor dev' }, 'Authentication off'));
  else if (token.get()) bar.append(h('button.link', { type: 'button', id: 'sign-out', onclick: signOut }, 'Sign out'));
}

function signOut() {
  token.clear();
  showLogin();
}

function stop() {
  if (cleanup) cleanup();
  cleanup = null;
}

function showLogin(err = null, refused = false) {
  stop();
  sessionBar();
  const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', required: true, 'aria-describedby': 'login-help' });
  const form = h('form.card.login', { id: 'login', onsubmit: (e) => { e.preventDefault(); signIn(input.value.trim()); } },
    h('h1', { tabindex: '-1' }, 'Sign in'),
    h('label', { for: 'token' }, 'Bearer token'), input,
    h('p.muted', { id: 'login-help' }, 'The token stays in this tab (session storage) and is sent as Authorization: Bearer.'),
    refused && err ? errorBox(err, 'Token refused: ') : null,
    h('button', { type: 'submit' }, 'Sign in'));
  main.replaceChildren(form);
  input.focus();
}

async function signIn(t) {
  if (!t) return;
  token.set(t);
  try {
    await get('/api/v1/config');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { token.clear(); showLogin(err, true); return; }
  }
  sessionBar();
  route();
}

async function route() {
  stop();
  const { parts, query } = parseHash(location.hash);
  const page = PAGES[parts[0] || ''] || servicesPage;
  main.replaceChildren();
  cleanup = page(main, parts.slice(1), query) || null;
}

window.addEventListener('auth-required', (e) => {
  if (authOff) return;
  showLogin(e.detail, Boolean(token.get()));
  token.clear();
});
window.addEventListener('hashchange', () => { route(); main.focus({ preventScroll: true }); });

// With API_AUTH=off the API answers without a token; otherwise a 401 asks for one.
(async () => {
  try {
    if (!token.get()) { await call('/api/v1/config', { method: 'HEAD' }); authOff = true; }
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return; // the login form is up
  }
  sessionBar();
  route();
})();
