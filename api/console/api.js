// The public HTTP API, with the bearer token kept in session storage (none with API_AUTH=off).
const KEY = 'config-ledger.token';

export const token = {
  get: () => sessionStorage.getItem(KEY) || '',
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, body, headers) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || 'http_error';
    this.details = e.details || null;
    this.headers = headers;
  }
}

function headersWith(extra) {
  const h = { Accept: 'application/json', ...extra };
  const t = token.get();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

export const svcPath = (service, tail = '') => `/api/v1/config/${encodeURIComponent(service)}${tail}`;

// fetch → {data, headers, status}; a 4xx/5xx throws ApiError (401 also tells the app).
export async function call(path, { method = 'GET', body, headers = {}, signal } = {}) {
  const init = { method, headers: headersWith(headers), signal, cache: 'no-store' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    const err = new ApiError(r.status, data, r.headers);
    if (r.status === 401) window.dispatchEvent(new CustomEvent('auth-required', { detail: err }));
    throw err;
  }
  return { data, headers: r.headers, status: r.status };
}

export const get = async (path, opts) => (await call(path, opts)).data;

// Server-Sent Events over fetch (EventSource cannot send the Authorization header). Resumes with
// Last-Event-ID after a lost connection. Returns a function that stops the watch.
export function watch(service, onEvent, onState) {
  let stopped = false;
  let last = null;
  let ctrl = null;
  const handle = (block) => {
    let id = null, kind = 'message', data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') kind = value;
      else if (field === 'data') data += (data ? '\n' : '') + value;
    }
    if (id !== null) last = id;
    if (data) onEvent(kind, JSON.parse(data));
  };
  (async () => {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const extra = { Accept: 'text/event-stream' };
        if (last !== null) extra['Last-Event-ID'] = last;
        const r = await fetch(svcPath(service, '/watch'), { headers: headersWith(extra), signal: ctrl.signal, cache: 'no-store' });
        if (!r.ok) {
          const err = new ApiError(r.status, await r.json().catch(() => null), r.headers);
          onState('error', err);
          if (r.status < 500) return;
        } else {
          onState('live');
          const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
          let buf = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += value;
            let i;
            while ((i = buf.indexOf('\n\n')) >= 0) { handle(buf.slice(0, i)); buf = buf.slice(i + 2); }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      if (stopped) return;
      onState('reconnecting');
      await new Promise((res) => setTimeout(res, 1000));
    }
  })();
  return () => { stopped = true; if (ctrl) ctrl.abort(); };
}
