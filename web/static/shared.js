// What the pages share: navigation state, the error banner, the offline state, the tables
// cache, metric lists and the range controls.
import { getJson, onOffline } from './api.js';
import * as fmt from './fmt.js';
import { h, field } from './dom.js';

export const main = document.getElementById('main');
const banner = document.getElementById('banner');
const offlineBox = document.getElementById('offline');
const offlineMsg = document.getElementById('offline-msg');
const retryButton = document.getElementById('offline-retry');

// generation: bumped on every navigation; stale async work compares it and stops.
// cleanups: run when the route changes (timers, listeners).
export const nav = { generation: 0, cleanups: [] };
export const isCurrent = (gen) => gen === nav.generation;

// ---------------------------------------------------------------------------------------------
// Offline: when a request gets no answer the UI says so once, in its own banner, replaces
// every loading indicator with that message, greys what may be stale (body.offline) and asks
// /api/v1/health every RETRY_MS (and on Retry) until the server answers; then the current page
// is drawn again.

export const RETRY_MS = 5000;
const UNREACHABLE = 'Server unreachable: waiting for it to come back.';
let offline = false;
let retryTimer = null;
let lastTry = 0;
let onBackOnline = () => {};

export const isOffline = () => offline;
// `fn` redraws the current page once the server answers again (app.js: the router).
export function whenBackOnline(fn) { onBackOnline = fn; }

function showOfflineText() {
  offlineMsg.textContent = `The stickmeter server at ${location.host} cannot be reached. ` +
    `Retrying every ${RETRY_MS / 1000} s${lastTry ? ` (last try ${new Date(lastTry).toLocaleTimeString()})` : ''}.`;
}

function markLoading() {
  for (const e of document.querySelectorAll('.loading')) {
    e.textContent = UNREACHABLE;
    e.classList.replace('loading', 'unreachable');
  }
}

function goOffline() {
  if (!offline) {
    offline = true;
    document.body.classList.add('offline');
    banner.hidden = true;
    offlineBox.hidden = false;
    retryTimer = setInterval(probe, RETRY_MS);
  }
  showOfflineText();
  markLoading();
}
onOffline(goOffline);

let probing = false;
async function probe() {
  if (probing) return;
  probing = true;
  retryButton.disabled = true;
  lastTry = Date.now();
  try {
    const res = await fetch('/api/v1/health', { cache: 'no-store' });
    if (res.ok) { backOnline(); return; }
  } catch { /* still unreachable */ } finally {
    probing = false;
    retryButton.disabled = false;
  }
  if (offline) showOfflineText();
}

function backOnline() {
  if (!offline) return;
  offline = false;
  clearInterval(retryTimer);
  retryTimer = null;
  document.body.classList.remove('offline');
  offlineBox.hidden = true;
  onBackOnline();
}
retryButton.addEventListener('click', probe);

// The banner for other errors; an unreachable server gets the offline state instead.
export function showError(err) {
  if (err && err.offline) { goOffline(); return; }
  if (!err) { banner.hidden = true; banner.textContent = ''; return; }
  banner.hidden = false;
  banner.textContent = err.message || String(err);
}

// A "Loading…" placeholder that the offline state replaces.
export const loading = (text = 'Loading…', cls = 'muted pad') =>
  h('p', { class: `${cls} ${offline ? 'unreachable' : 'loading'}` }, offline ? UNREACHABLE : text);

// ---------------------------------------------------------------------------------------------
// Navigation.

export function hashParams() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [route, query = ''] = hash.split('?');
  return { route: route || 'overview', params: new URLSearchParams(query) };
}

export function go(route, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  const before = location.hash;
  location.hash = `#/${route}${s ? `?${s}` : ''}`;
  // The hashchange event comes a task later; until then the old page must not look ready under
  // the new address.
  if (location.hash !== before) delete main.dataset.ready;
}

export function replaceHash(route, params) {
  const q = new URLSearchParams(params).toString();
  history.replaceState(null, '', `#/${route}${q ? `?${q}` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// Tables and metrics.

let tablesCache = null;
// Drops what was read with a token that is gone (signing out).
export function forgetTables() { tablesCache = null; }
export async function tables(refresh = false) {
  if (!tablesCache || refresh) {
    const body = await getJson('/api/v1/tables');
    tablesCache = Array.isArray(body) ? body : body.tables || [];
  }
  return tablesCache;
}

export function counterMetrics(t) {
  if (!t) return [];
  if (Array.isArray(t.counter_metrics) && t.counter_metrics.length) return t.counter_metrics;
  return (t.data_types || []).filter((d) => /(_cnt|^gpc\d|^gpc\.\d+)$/.test(d));
}

// Sampled values (conn_cur, http_req_rate, ...): shown as a maximum per step, never summed.
export function gaugeMetrics(t) {
  if (!t) return [];
  if (Array.isArray(t.gauge_metrics)) return t.gauge_metrics;
  const counters = new Set(counterMetrics(t));
  return (t.data_types || []).filter((d) => !counters.has(d));
}

// The metric a page opens with: http_req_cnt (what most bill by) when the table has it, else
// its first counter, else its first gauge.
export function defaultMetric(t) {
  const counters = counterMetrics(t);
  if (counters.includes('http_req_cnt')) return 'http_req_cnt';
  return counters[0] || gaugeMetrics(t)[0] || '';
}

// A <select> of the table's counters, then its gauges marked as such.
export function metricSelect(id, t, selected) {
  const opt = (m, label) => h('option', { value: m, selected: m === selected }, label);
  const gauges = gaugeMetrics(t);
  return h('select', { id },
    h('optgroup', { label: 'Counters (billed)' }, counterMetrics(t).map((m) => opt(m, m))),
    gauges.length ? h('optgroup', { label: 'Gauges (sampled, not billed)' }, gauges.map((m) => opt(m, `${m} (gauge)`))) : null);
}

// ---------------------------------------------------------------------------------------------
// Ranges, in the billing zone (fmt.js): presets today, this month, last month, one calendar day
// (`range=day&day=YYYY-MM-DD`), one calendar month (`range=a-month&month=YYYY-MM`) and a custom
// [from, to) (`range=custom&from=&to=`, Unix ms).

const PRESETS = [['today', 'Today'], ['month', 'This month'], ['last-month', 'Last month'], ['day', 'A day'],
  ['a-month', 'A month'], ['custom', 'Custom']];
const isDate = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text || '');
const isMonth = (text) => /^\d{4}-\d{2}$/.test(text || '');

export function rangeFrom(params) {
  const preset = params.get('range') || 'month';
  if (preset === 'custom') {
    const from = Number(params.get('from'));
    const to = Number(params.get('to'));
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) return { preset, from, to };
  }
  if (preset === 'day') {
    const day = isDate(params.get('day')) ? params.get('day') : fmt.dateInput(Date.now());
    const [from, to] = fmt.presetRange('day', Date.now(), day);
    return { preset, from, to, day };
  }
  if (preset === 'a-month') {
    const month = isMonth(params.get('month')) ? params.get('month') : fmt.monthInput(Date.now());
    const [from, to] = fmt.presetRange('a-month', Date.now(), month);
    return { preset, from, to, month };
  }
  const p = PRESETS.some(([v]) => v === preset) && preset !== 'custom' ? preset : 'month';
  const [from, to] = fmt.presetRange(p);
  return { preset: p, from, to };
}

// The range part of a page's address: the preset, the day of `day`, the month of `a-month`,
// from/to of `custom`.
export function rangeParams(params) {
  const r = rangeFrom(params);
  if (params.get('range') === 'custom') return { range: 'custom', from: r.from, to: r.to };
  if (r.preset === 'day') return { range: 'day', day: r.day };
  if (r.preset === 'a-month') return { range: 'a-month', month: r.month };
  return { range: r.preset };
}

// The range part of the address of the period `dir` periods after (1) or before (-1) the one in
// `params`: the next or previous day, calendar month, or custom range of the same length.
export function shiftRange(params, dir) {
  const r = rangeFrom(params);
  const w = fmt.wall(r.from);
  if (r.preset === 'today' || r.preset === 'day') return { range: 'day', day: fmt.dateInput(fmt.zoned(w.y, w.m, w.d + dir)) };
  if (r.preset === 'custom') {
    const span = r.to - r.from;
    return { range: 'custom', from: r.from + dir * span, to: r.to + dir * span };
  }
  return { range: 'a-month', month: fmt.monthInput(fmt.zoned(w.y, w.m + dir, 1)) };
}

// A short name of the period of `params` ("March 2026", "Mar 29, 2026", or its two ends).
export function periodName(params) {
  const r = rangeFrom(params);
  if (['month', 'last-month', 'a-month'].includes(r.preset)) return fmt.monthName(r.from);
  if (r.preset === 'today' || r.preset === 'day') return fmt.day(r.from);
  return `${fmt.time(r.from)} – ${fmt.time(r.to)}`;
}

// The period picker, and buttons to the previous and next period. `onChange` is called after
// any change; `value()` then gives the new range part of the address.
export function rangeControls(params, onChange) {
  const r = rangeFrom(params);
  const chosen = params.get('range') === 'custom' ? 'custom' : r.preset;
  const preset = h('select', { id: 'range' },
    PRESETS.map(([v, t]) => h('option', { value: v, selected: v === chosen }, t)));
  // "A day" starts on today when the period holds it, else on the period's first day; "A month"
  // likewise.
  const now = Date.now();
  const inPeriod = now >= r.from && now < r.to ? now : r.from;
  const day = h('input', { id: 'day', type: 'date', value: r.day || fmt.dateInput(inPeriod) });
  const month = h('input', { id: 'month', type: 'month', value: r.month || fmt.monthInput(inPeriod) });
  const from = h('input', { id: 'from', type: 'datetime-local', value: fmt.toLocalInput(r.from) });
  const to = h('input', { id: 'to', type: 'datetime-local', value: fmt.toLocalInput(r.to) });
  const dayField = field('day', 'Day', day);
  const monthField = field('month', 'Month', month);
  const custom = h('span', { class: 'contents' },
    field('from', 'From (inclusive)', from), field('to', 'To (exclusive)', to));
  const sync = () => {
    const isCustom = preset.value === 'custom';
    from.disabled = to.disabled = !isCustom;
    dayField.hidden = preset.value !== 'day';
    monthField.hidden = preset.value !== 'a-month';
  };
  sync();
  let shifted = null;
  preset.addEventListener('change', () => {
    sync();
    if (preset.value !== 'custom') {
      const [f, t] = fmt.presetRange(preset.value, Date.now(), preset.value === 'a-month' ? month.value : day.value);
      from.value = fmt.toLocalInput(f);
      to.value = fmt.toLocalInput(t);
    }
    onChange();
  });
  for (const i of [day, month, from, to]) i.addEventListener('change', onChange);
  const step = (dir) => () => { shifted = shiftRange(params, dir); onChange(); };
  const periodNav = h('div', { class: 'field period-nav' }, h('span', { class: 'label-gap', 'aria-hidden': 'true' }, '\u00a0'),
    h('div', { class: 'seg', role: 'group', 'aria-label': 'Period' },
      h('button', { type: 'button', id: 'range-prev', title: 'The period before', 'aria-label': 'Previous period', onclick: step(-1) }, '◀'),
      h('button', { type: 'button', id: 'range-next', title: 'The period after', 'aria-label': 'Next period', onclick: step(1) }, '▶')));
  const value = () => {
    if (shifted) return shifted;
    if (preset.value === 'day') return { range: 'day', day: isDate(day.value) ? day.value : fmt.dateInput(Date.now()) };
    if (preset.value === 'a-month') return { range: 'a-month', month: isMonth(month.value) ? month.value : fmt.monthInput(Date.now()) };
    if (preset.value !== 'custom') return { range: preset.value };
    return { range: 'custom', from: fmt.fromLocalInput(from.value), to: fmt.fromLocalInput(to.value) };
  };
  return { nodes: [field('range', 'Period', preset), dayField, monthField, custom, periodNav], value };
}
