// JSON API client: adds the bearer token kept in sessionStorage and, when the API answers 401,
// asks for a token once (shared by every request waiting at that moment) and retries. signOut()
// forgets the token, so the next call asks again (a shared screen, a token being rotated).
const TOKEN_KEY = 'stickmeter.token';

export class ApiError extends Error {
  // `message` is prefixed with the path; `detail` is the API's message alone ("limit: ...").
  constructor(status, code, message, detail = message) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

// No HTTP answer at all: the server is down or the network between is. Pages show the UI's
// offline state for it instead of the browser's raw "Failed to fetch".
export class OfflineError extends ApiError {
  constructor(path) {
    super(0, 'offline', `${path}: the stickmeter server cannot be reached`, 'the stickmeter server cannot be reached');
    this.offline = true;
  }
}

const offlineListeners = new Set();
// Calls `fn` whenever a request gets no answer (shared.js starts the retries from it).
export function onOffline(fn) { offlineListeners.add(fn); }

let tokenPrompt = null;

function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function askToken(rejected) {
  if (tokenPrompt) return tokenPrompt;
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  document.getElementById('token-msg').textContent = rejected
    ? 'The token was not accepted. Enter a valid token.'
    : 'This stickmeter asks for a bearer token. It is kept in this browser tab only.';
  tokenPrompt = new Promise((resolve) => {
    const done = () => {
      const value = input.value.trim();
      if (!value) return;
      try { sessionStorage.setItem(TOKEN_KEY, value); } catch { /* private mode: keep in memory */ }
      memoryToken = value;
      for (const fn of tokenListeners) fn(true);
      input.value = '';
      form.removeEventListener('submit', done);
      tokenPrompt = null;
      resolve(value);
    };
    form.addEventListener('submit', done);
    dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
    dialog.showModal();
    input.focus();
  });
  return tokenPrompt;
}

// Attempts after a 503 "busy" answer before its error is shown.
const MAX_BUSY_RETRIES = 5;

let memoryToken = '';
const tokenListeners = new Set();
// Calls `fn(held)` whenever a token is entered (true) or forgotten (false).
export function onTokenChange(fn) { tokenListeners.add(fn); }
// True when this tab holds a token (one was asked for and entered).
export const hasToken = () => Boolean(token() || memoryToken);

// Forgets the token of this tab: the next request that needs one asks for it again.
export function signOut() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* private mode: only in memory */ }
  memoryToken = '';
  for (const fn of tokenListeners) fn(false);
}

function headers() {
  const t = token() || memoryToken;
  return t ? { Authorization: `Bearer ${t}` } : {};
}

// Fetches `path` (with `params` as query string) and returns the Response, prompting for a token
// on 401. Throws ApiError for other non-2xx answers, with the API's error message when present.
// `method` and `body` (JSON text) are for writes.
export async function request(path, params = {}, { accept, method = 'GET', body } = {}) {
  const url = buildUrl(path, params);
  let rejected = false;
  let busyRetries = 0;
  for (;;) {
    const h = headers();
    if (accept) h.Accept = accept;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(url, { method, headers: h, body, cache: 'no-store' });
    } catch {
      // fetch rejects only when no answer arrived (refused, reset, DNS, offline).
      for (const fn of offlineListeners) fn();
      throw new OfflineError(path);
    }
    if (res.status === 401) {
      await askToken(rejected || Boolean(h.Authorization));
      rejected = true;
      continue;
    }
    // The server answers 503 with Retry-After while as many queries as it runs at once are
    // under way (other pages, other users): wait as it asks, a few times, before giving up.
    const retryAfter = Number(res.headers.get('Retry-After'));
    if (res.status === 503 && retryAfter > 0 && busyRetries < MAX_BUSY_RETRIES) {
      busyRetries += 1;
      await new Promise((resolve) => setTimeout(resolve, Math.min(retryAfter, 5) * 1000 * (0.5 + Math.random())));
      continue;
    }
    if (!res.ok) {
      let code = `http_${res.status}`;
      let message = `${res.status} ${res.statusText}`;
      try {
        const body = await res.json();
        if (body && body.error) {
          code = body.error.code || code;
          message = body.error.message || message;
        }
      } catch { /* not JSON */ }
      throw new ApiError(res.status, code, `${path}: ${message}`, message);
    }
    return res;
  }
}

// Counts are exact 64-bit integers; past 2^53 a JS number would round them, so those become
// BigInt (where the browser gives the reviver the number's source text).
function exactIntegers(key, value, context) {
  if (typeof value === 'number' && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
    return BigInt(context.source);
  }
  return value;
}

export async function getJson(path, params) {
  const res = await request(path, params, { accept: 'application/json' });
  return JSON.parse(await res.text(), exactIntegers);
}

// A write: `body` is JSON text (sent as is, so exact integers survive). Returns the answer's JSON,
// or null for 204.
export async function sendJson(method, path, params, body) {
  const res = await request(path, params, { accept: 'application/json', method, body });
  if (res.status === 204) return null;
  return JSON.parse(await res.text(), exactIntegers);
}

export async function getText(path, params) {
  const res = await request(path, params);
  return res.text();
}

export function buildUrl(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
