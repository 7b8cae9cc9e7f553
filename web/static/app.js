// stickmeter web UI: hash-routed pages over the JSON API (/api/v1). No framework: each page is a
// function that renders into <main> and may register a timer, cleared when the route changes.
import { getJson, getText, request, buildUrl } from './api.js';
import * as fmt from './fmt.js';
import { barChart } from './chart.js';
import { h, field } from './dom.js';
import { quotasPage, keyQuotaBox } from './quotas.js';

const main = document.getElementById('main');
const banner = document.getElementById('banner');
let generation = 0; // bumped on every navigation; stale async work checks it and stops
let cleanups = []; // run when the route changes (timers, listeners)

function showError(err) {
  if (!err) { banner.hidden = true; banner.textContent = ''; return; }
  banner.hidden = false;
  banner.textContent = err.message || String(err);
}

function hashParams() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [route, query = ''] = hash.split('?');
  return { route: route || 'overview', params: new URLSearchParams(query) };
}

function go(route, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  const before = location.hash;
  location.hash = `#/${route}${s ? `?${s}` : ''}`;
  // The hashchange event comes a task later; until then the old page must not look ready under
  // the new address.
  if (location.hash !== before) delete main.dataset.ready;
}

function replaceHash(route, params) {
  const q = new URLSearchParams(params).toString();
  history.replaceState(null, '', `#/${route}${q ? `?${q}` : ''}`);
}

let tablesCache = null;
async function tables(refresh = false) {
  if (!tablesCache || refresh) {
    const body = await getJson('/api/v1/tables');
    tablesCache = Array.isArray(body) ? body : body.tables || [];
  }
  return tablesCache;
}
function counterMetrics(t) {
  if (!t) return [];
  if (Array.isArray(t.counter_metrics) && t.counter_metrics.length) return t.counter_metrics;
  return (t.data_types || []).filter((d) => /(_cnt|^gpc\d|^gpc\.\d+)$/.test(d));
}

function rangeFrom(params) {
  const preset = params.get('range') || 'month';
  if (preset === 'custom') {
    const from = Number(params.get('from'));
    const to = Number(params.get('to'));
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) return { preset, from, to };
  }
  const p = preset === 'custom' ? 'month' : preset;
  const [from, to] = fmt.presetRange(p);
  return { preset: p, from, to };
}

// ---------------------------------------------------------------------------------------------
// Overview: peers, tables and ingest counters, refreshed every few seconds.

// Prometheus text -> Map(name -> sum over label sets).
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    out.set(m[1], (out.get(m[1]) || 0) + v);
  }
  return out;
}
function pickMetric(metrics, patterns) {
  for (const re of patterns) {
    for (const [name, v] of metrics) if (re.test(name)) return { name, v };
  }
  return null;
}

async function overviewPage(gen) {
  main.replaceChildren(
    h('h1', {}, 'Overview'),
    h('div', { class: 'cards', id: 'ov-cards' }),
    h('h2', {}, 'HAProxy peers'),
    h('div', { class: 'scroll', id: 'ov-peers' }, h('p', { class: 'muted pad' }, 'Loading…')),
    h('h2', {}, 'Stick tables'),
    h('div', { class: 'scroll', id: 'ov-tables' }),
    h('p', { class: 'muted small', id: 'ov-updated' }),
  );
  const prev = { at: 0, peers: new Map(), received: null };
  let busy = false; // a slow answer must not pile up refreshes
  const refresh = async () => {
    if (busy) return;
    busy = true;
    try { await refreshOnce(); } finally { busy = false; }
  };
  const refreshOnce = async () => {
    let peers, tbls, metricsText;
    try {
      [peers, tbls, metricsText] = await Promise.all([
        getJson('/api/v1/peers'),
        tables(true),
        getText('/metrics').catch(() => ''),
      ]);
    } catch (err) {
      if (gen === generation) showError(err);
      return;
    }
    if (gen !== generation) return;
    showError(null);
    peers = Array.isArray(peers) ? peers : peers.peers || [];
    const now = Date.now();
    const dt = prev.at ? (now - prev.at) / 1000 : 0;
    const metrics = parseMetrics(metricsText);
    const received = pickMetric(metrics, [/^stickmeter_updates_received_total$/, /^stickmeter_.*updates.*_total$/]);
    const storeParts = [...metrics].filter(([name]) => /^stickmeter_(store|db|rocksdb)_.*bytes$/.test(name));
    const stored = storeParts.length
      ? { name: storeParts.map(([n]) => n).join(' + '), v: storeParts.reduce((a, [, v]) => a + v, 0) } : null;
    const deltas = pickMetric(metrics, [/^stickmeter_deltas_written_total$/]);
    const ingestRate = received && prev.received !== null && dt > 0 ? (received.v - prev.received) / dt : null;

    const connected = peers.filter((p) => p.connected).length;
    const cards = [
      ['Peers connected', `${fmt.int(connected)} / ${fmt.int(peers.length)}`],
      ['Stick tables', fmt.int(tbls.length)],
      ['Updates received', received ? fmt.int(received.v) : '–', received ? received.name : 'not exported in /metrics'],
      ['Ingest rate', ingestRate === null ? '…' : `${fmt.rate(ingestRate)} /s`, 'updates per second between two refreshes'],
      ['Deltas written', deltas ? fmt.int(deltas.v) : '–', deltas ? deltas.name : 'not exported in /metrics'],
      ['Store size', stored ? fmt.bytes(stored.v) : '–', stored ? stored.name : 'not exported in /metrics'],
    ];
    document.getElementById('ov-cards').replaceChildren(...cards.map(([label, value, title]) =>
      h('div', { class: 'card', title }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value))));

    const peerRows = peers.map((p) => {
      const key = `${p.name}|${p.direction}|${p.address}`;
      const before = prev.peers.get(key);
      const r = before !== undefined && dt > 0 ? Math.max(0, (p.updates - before) / dt) : null;
      prev.peers.set(key, p.updates);
      return h('tr', {},
        h('td', { class: 'nowrap' }, h('span', { class: `dot ${p.connected ? 'on' : 'off'}`, title: p.connected ? 'connected' : 'disconnected' }),
          p.name),
        h('td', {}, p.direction || '–'),
        h('td', { class: 'nowrap' }, h('code', {}, p.address || '–')),
        h('td', { class: 'hide-sm', title: fmt.time(p.since_ms) }, p.connected ? fmt.ago(p.since_ms, now) : 'disconnected'),
        h('td', { title: fmt.time(p.last_message_ms) }, fmt.ago(p.last_message_ms, now)),
        h('td', { class: 'num' }, fmt.int(p.updates)),
        h('td', { class: 'num' }, r === null ? '…' : fmt.rate(r)),
        h('td', { class: 'hide-sm small bad' }, p.last_error || ''));
    });
    // A shared peers section makes totals over nodes inexact: say so above everything else.
    const warnings = peers.filter((p) => p.warning).map((p) =>
      h('p', { class: 'banner', role: 'alert' }, `Topology warning for ${p.name}: ${p.warning}.`));
    document.getElementById('ov-peers').replaceChildren(...warnings, peers.length
      ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Peer'), h('th', {}, 'Direction'), h('th', {}, 'Address'),
        h('th', { class: 'hide-sm' }, 'Connected since'), h('th', {}, 'Last message'), h('th', { class: 'num' }, 'Updates'),
        h('th', { class: 'num' }, 'Updates/s'), h('th', { class: 'hide-sm' }, 'Last error'))), h('tbody', {}, peerRows))
      : h('p', { class: 'muted pad' }, 'No HAProxy peer has connected yet.'));

    const tableRows = tbls.map((t) => {
      const counters = new Set(counterMetrics(t));
      return h('tr', {},
        h('td', {}, h('a', { href: `#/usage?table=${encodeURIComponent(t.name)}` }, t.name)),
        h('td', {}, `${t.key_type || '–'}${t.key_size ? ` (${t.key_size})` : ''}`),
        h('td', { class: 'hide-sm' }, t.expire_ms ? fmt.duration(t.expire_ms) : '–'),
        h('td', {}, (t.data_types || []).map((d) => h('span', { class: `tag${counters.has(d) ? ' counter' : ''}`,
          title: counters.has(d) ? 'counter: billed as deltas' : 'gauge: sampled, never summed' }, d))),
        h('td', {}, (t.sources || []).join(', ') || '–'));
    });
    document.getElementById('ov-tables').replaceChildren(tbls.length
      ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Table'), h('th', {}, 'Key type'), h('th', { class: 'hide-sm' }, 'Expire'),
        h('th', {}, 'Data types'), h('th', {}, 'Sources'))), h('tbody', {}, tableRows))
      : h('p', { class: 'muted pad' }, 'No stick table has been announced yet.'));

    document.getElementById('ov-updated').textContent =
      `Updated ${fmt.time(now)} · refreshes every 5 s · counters are outlined in blue, gauges are not billed`;
    prev.at = now;
    prev.received = received ? received.v : null;
  };
  await refresh();
  const timer = setInterval(refresh, 5000);
  cleanups.push(() => clearInterval(timer));
}

// ---------------------------------------------------------------------------------------------
// Usage: totals per key for a table, metric and range.

function rangeControls(params, onChange) {
  const r = rangeFrom(params);
  const preset = h('select', { id: 'range' },
    [['today', 'Today'], ['month', 'This month'], ['last-month', 'Last month'], ['custom', 'Custom']]
      .map(([v, t]) => h('option', { value: v, selected: v === (params.get('range') === 'custom' ? 'custom' : r.preset) }, t)));
  const from = h('input', { id: 'from', type: 'datetime-local', value: fmt.toLocalInput(r.from) });
  const to = h('input', { id: 'to', type: 'datetime-local', value: fmt.toLocalInput(r.to) });
  const custom = h('span', { class: 'contents' },
    field('from', 'From (inclusive)', from), field('to', 'To (exclusive)', to));
  const sync = () => {
    const isCustom = preset.value === 'custom';
    from.disabled = to.disabled = !isCustom;
  };
  sync();
  preset.addEventListener('change', () => {
    sync();
    if (preset.value !== 'custom') {
      const [f, t] = fmt.presetRange(preset.value);
      from.value = fmt.toLocalInput(f);
      to.value = fmt.toLocalInput(t);
    }
    onChange();
  });
  for (const i of [from, to]) i.addEventListener('change', onChange);
  const value = () => {
    if (preset.value !== 'custom') return { range: preset.value };
    return { range: 'custom', from: fmt.fromLocalInput(from.value), to: fmt.fromLocalInput(to.value) };
  };
  return { nodes: [field('range', 'Range', preset), custom], value };
}

// Rows drawn at once: a table of 100,000 keys would make the page sluggish on a phone.
const MAX_ROWS = 2000;
// Keys per page of the "top customers" view (the server ranks them: order=total&limit&offset).
const TOP_PAGE = 100;

async function usagePage(gen, params) {
  let tbls;
  try { tbls = await tables(); } catch (err) { showError(err); return; }
  if (gen !== generation) return;
  main.replaceChildren(h('h1', {}, 'Usage'));
  if (!tbls.length) {
    main.append(h('p', { class: 'muted' }, 'No stick table has been announced yet.'));
    return;
  }
  const tname = params.get('table') && tbls.some((t) => t.name === params.get('table')) ? params.get('table') : tbls[0].name;
  const table = tbls.find((t) => t.name === tname);
  const metrics = counterMetrics(table);
  const metric = metrics.includes(params.get('metric')) ? params.get('metric') : metrics[0];
  const state = { sort: params.get('sort') || 'key', dir: params.get('dir') || 'asc', filter: params.get('q') || '' };

  const tableSel = h('select', { id: 'table' }, tbls.map((t) => h('option', { value: t.name, selected: t.name === tname }, t.name)));
  const metricSel = h('select', { id: 'metric' }, metrics.map((m) => h('option', { value: m, selected: m === metric }, m)));
  const filter = h('input', { id: 'filter', type: 'search', placeholder: 'key contains…', value: state.filter });
  // "top": the server ranks the keys and sends one page of TOP_PAGE; "all": every key, sorted
  // and filtered here.
  const top = params.get('show') === 'top';
  const offset = top ? Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0) : 0;
  const showSel = h('select', { id: 'show' },
    [['all', 'All keys'], ['top', `Top ${TOP_PAGE} by total`]].map(([v, t]) => h('option', { value: v, selected: v === (top ? 'top' : 'all') }, t)));
  const navigate = () => {
    const rv = ranges.value();
    go('usage', { table: tableSel.value, metric: tableSel.value === tname ? metricSel.value : '', ...rv, q: filter.value, ...(showSel.value === 'top' ? { show: 'top' } : {}) });
  };
  const ranges = rangeControls(params, navigate);
  tableSel.addEventListener('change', navigate);
  metricSel.addEventListener('change', navigate);
  showSel.addEventListener('change', navigate);
  filter.disabled = top;
  main.append(h('form', { class: 'controls', onsubmit: (e) => e.preventDefault() },
    field('table', 'Table', tableSel), field('metric', 'Metric', metricSel), ranges.nodes, field('show', 'Show', showSel),
    field('filter', 'Filter keys', filter)));
  if (!metric) {
    main.append(h('p', { class: 'muted' }, 'This table stores no counter, so there is nothing to bill.'));
    return;
  }
  const r = rangeFrom(params);
  const summary = h('div', { class: 'total-line', id: 'usage-summary' });
  const holder = h('div', { class: 'scroll', id: 'usage-table' }, h('p', { class: 'muted pad' }, 'Loading…'));
  main.append(summary, holder,
    h('p', { class: 'muted small' }, `Range [${fmt.time(r.from)}, ${fmt.time(r.to)}) in ${fmt.zone}. Totals are exact sums of deltas over all HAProxy nodes.`));

  let rows;
  let page;
  try {
    const body = await getJson('/api/v1/usage', { table: tname, metric, from: r.from, to: r.to,
      ...(top ? { order: 'total', limit: TOP_PAGE, offset } : {}) });
    rows = body.rows || [];
    page = { total: body.total_rows ?? rows.length, next: body.next_offset ?? null };
  } catch (err) { if (gen === generation) showError(err); return; }
  if (gen !== generation) return;
  if (top) { topPage(rows, page, { params, tname, metric, r, offset, summary, holder }); return; }

  const render = () => {
    const q = state.filter.toLowerCase();
    const shown = rows.filter((x) => String(x.key).toLowerCase().includes(q));
    const sign = state.dir === 'asc' ? 1 : -1;
    shown.sort((a, b) => sign * (state.sort === 'total'
      ? fmt.cmp(a.total, b.total) || String(a.key).localeCompare(String(b.key))
      : (String(a.key) < String(b.key) ? -1 : String(a.key) > String(b.key) ? 1 : 0)));
    const sum = fmt.sum(shown.map((x) => x.total));
    summary.replaceChildren(
      h('div', {}, h('div', { class: 'muted small' }, q ? 'Total of shown keys' : 'Total'),
        h('div', { class: 'big', id: 'usage-total', dataset: { value: String(sum) } }, fmt.amount(metric, sum))),
      h('div', {}, h('div', { class: 'muted small' }, 'Keys'), h('div', { class: 'big' }, `${fmt.int(shown.length)}${q ? ` of ${fmt.int(rows.length)}` : ''}`)));
    const th = (col, label, cls) => h('th', { class: cls, 'aria-sort': state.sort === col ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', { class: 'sort', type: 'button', onclick: () => {
        if (state.sort === col) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else { state.sort = col; state.dir = col === 'total' ? 'desc' : 'asc'; }
        render();
        replaceHash('usage', { ...Object.fromEntries(params), q: state.filter, sort: state.sort, dir: state.dir });
      } }, label));
    const detail = (key) => `#/key?${new URLSearchParams({ table: tname, key, metric, range: r.preset === 'custom' ? 'custom' : (params.get('range') || 'month'), ...(params.get('range') === 'custom' ? { from: r.from, to: r.to } : {}) })}`;
    holder.replaceChildren(shown.length
      ? h('table', { id: 'usage-rows' },
        h('thead', {}, h('tr', {}, th('key', 'Key'), th('total', `Total (${fmt.unit(metric)})`, 'num'))),
        h('tbody', {}, shown.slice(0, MAX_ROWS).map((x) => h('tr', {},
          h('td', {}, h('a', { href: detail(String(x.key)), class: 'key-link' }, String(x.key))),
          h('td', { class: 'num', dataset: { value: String(x.total) }, title: `${fmt.int(x.total)} ${fmt.unit(metric)}` }, fmt.isBytes(metric) ? fmt.bytes(x.total) : fmt.int(x.total))))))
      : h('p', { class: 'muted pad' }, rows.length ? 'No key matches the filter.' : 'No usage in this range.'));
    if (shown.length > MAX_ROWS) {
      holder.append(h('p', { class: 'muted small pad' },
        `Showing ${fmt.int(MAX_ROWS)} of ${fmt.int(shown.length)} keys; the total covers them all. Filter to narrow the list.`));
    }
  };
  filter.addEventListener('input', () => {
    state.filter = filter.value;
    render();
    replaceHash('usage', { ...Object.fromEntries(params), q: filter.value, sort: state.sort, dir: state.dir });
  });
  render();
}

// One page of the top customers: ranked by the server, with links to the previous and next page.
function topPage(rows, page, { params, tname, metric, r, offset, summary, holder }) {
  const sum = fmt.sum(rows.map((x) => x.total));
  summary.replaceChildren(
    h('div', {}, h('div', { class: 'muted small' }, 'Total of this page'),
      h('div', { class: 'big', id: 'usage-total', dataset: { value: String(sum) } }, fmt.amount(metric, sum))),
    h('div', {}, h('div', { class: 'muted small' }, 'Keys'), h('div', { class: 'big', id: 'usage-keys' },
      rows.length ? `${fmt.int(offset + 1)}–${fmt.int(offset + rows.length)} of ${fmt.int(page.total)}` : `0 of ${fmt.int(page.total)}`)));
  const detail = (key) => `#/key?${new URLSearchParams({ table: tname, key, metric, range: params.get('range') || 'month', ...(params.get('range') === 'custom' ? { from: r.from, to: r.to } : {}) })}`;
  const pageLink = (id, label, to) => h('a', { id, href: `#/usage?${new URLSearchParams({ ...Object.fromEntries(params), show: 'top', offset: String(to) })}` }, label);
  const pager = h('p', { class: 'pad', id: 'usage-pager' },
    offset > 0 ? pageLink('usage-prev', `← Previous ${TOP_PAGE}`, Math.max(0, offset - TOP_PAGE)) : '',
    page.next !== null ? [' ', pageLink('usage-next', `Next ${TOP_PAGE} →`, page.next)] : '');
  holder.replaceChildren(rows.length
    ? h('table', { id: 'usage-rows' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', { class: 'num' }, `Total (${fmt.unit(metric)})`), h('th', { class: 'num' }, 'Rank'))),
      h('tbody', {}, rows.map((x, i) => h('tr', {},
        h('td', {}, h('a', { href: detail(String(x.key)), class: 'key-link' }, String(x.key))),
        h('td', { class: 'num', dataset: { value: String(x.total) }, title: `${fmt.int(x.total)} ${fmt.unit(metric)}` }, fmt.isBytes(metric) ? fmt.bytes(x.total) : fmt.int(x.total)),
        h('td', { class: 'num muted' }, fmt.int(offset + i + 1))))))
    : h('p', { class: 'muted pad' }, page.total ? 'No keys past this page.' : 'No usage in this range.'), pager);
}

// ---------------------------------------------------------------------------------------------
// Key detail: chart and audit trail of one key.

const AUDIT_PAGE = 50;

async function keyPage(gen, params) {
  const table = params.get('table');
  const key = params.get('key');
  const metric = params.get('metric') || '';
  if (!table || !key) { go('usage', {}); return; }
  const r = rangeFrom(params);
  const span = r.to - r.from;
  const step = ['1m', '1h', '1d'].includes(params.get('step')) ? params.get('step') : span <= 6 * 3600e3 ? '1m' : span <= 3 * 86400e3 ? '1h' : '1d';
  const back = `#/usage?${new URLSearchParams({ table, metric, range: params.get('range') || 'month', ...(params.get('range') === 'custom' ? { from: r.from, to: r.to } : {}) })}`;

  const stepButtons = h('div', { class: 'seg', role: 'group', 'aria-label': 'Chart step' },
    ['1m', '1h', '1d'].map((s) => h('button', { type: 'button', 'aria-pressed': String(s === step),
      onclick: () => go('key', { ...Object.fromEntries(params), step: s }) }, s)));
  const totalBox = h('div', { class: 'big', id: 'key-total' }, '…');
  const chartBox = h('div', { class: 'panel chart', id: 'key-chart' }, h('p', { class: 'muted' }, 'Loading…'));
  const auditBox = h('div', { class: 'scroll', id: 'key-audit' });
  const reconcile = h('p', { id: 'key-reconcile', class: 'small' });
  const more = h('button', { type: 'button', id: 'audit-more' }, 'Load more');

  main.replaceChildren(
    h('p', { class: 'small' }, h('a', { href: back }, '← Usage of ', table)),
    h('h1', {}, 'Key ', h('code', {}, key)),
    h('div', { class: 'total-line' },
      h('div', {}, h('div', { class: 'muted small' }, `Billed ${metric} in range`), totalBox),
      h('div', { class: 'muted small' }, `${table} · [${fmt.time(r.from)}, ${fmt.time(r.to)}) ${fmt.zone}`)),
    keyQuotaBox(pageContext(gen), table, key),
    h('div', { class: 'row-actions' }, h('span', { class: 'muted small' }, 'Step'), stepButtons),
    h('div', { class: 'gap-top' }, chartBox),
    h('h2', {}, 'Audit trail'),
    h('p', { class: 'muted small' }, 'Every absolute value received from HAProxy and the delta derived from it. The billed total is the sum of the deltas.'),
    reconcile, auditBox, h('div', { class: 'row-actions' }, more));

  let billed = null;
  const usageP = getJson('/api/v1/usage', { table, metric, from: r.from, to: r.to, key })
    .then((b) => {
      const row = (b.rows || []).find((x) => String(x.key) === key);
      billed = row ? row.total : 0;
      totalBox.textContent = fmt.amount(metric, billed);
      totalBox.dataset.value = String(billed);
    });
  const seriesP = getJson('/api/v1/series', { table, metric, key, from: r.from, to: r.to, step })
    .then((s) => {
      if (gen !== generation) return;
      // The chart only needs shapes: plain numbers are fine there.
      const points = (s.points || []).map((p) => ({ t: Number(p.t), v: Number(p.v) }));
      const draw = () => chartBox.replaceChildren(points.length
        ? barChart({ points, stepMs: s.step_ms || 60000, from: r.from, to: r.to, metric,
          width: chartBox.clientWidth - 28, height: window.innerWidth < 640 ? 200 : 240 })
        : h('p', { class: 'muted' }, 'No deltas in this range.'));
      draw();
      let pending = 0;
      const onResize = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(draw); };
      window.addEventListener('resize', onResize);
      cleanups.push(() => window.removeEventListener('resize', onResize));
    });

  // The audit trail is paged with the API's cursor: each answer names the `next` page's start.
  const events = [];
  let next = null;
  let complete = false;
  const renderAudit = () => {
    const sum = fmt.sum(events.map((e) => e.delta));
    auditBox.replaceChildren(events.length
      ? h('table', { id: 'audit-rows' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Source'), h('th', { class: 'hide-sm' }, 'Metric'),
          h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Delta'), h('th', {}, 'Reason'))),
        h('tbody', {}, events.map((e) => h('tr', {},
          h('td', {}, fmt.time(e.t)), h('td', {}, e.source), h('td', { class: 'hide-sm' }, e.metric),
          h('td', { class: 'num' }, fmt.int(e.value)), h('td', { class: 'num', dataset: { value: String(e.delta) } }, `+${fmt.int(e.delta)}`),
          h('td', {}, e.reason)))),
        h('tfoot', {}, h('tr', {}, h('td', { colspan: 2 }, `Sum of the ${fmt.int(events.length)} deltas shown`),
          h('td', { class: 'hide-sm' }), h('td', {}),
          h('td', { class: 'num', id: 'audit-sum', dataset: { value: String(sum) } }, fmt.int(sum)), h('td', {}))))
      : h('p', { class: 'muted pad' }, 'No audit events in this range.'));
    more.hidden = complete;
    if (billed === null) reconcile.textContent = '';
    else if (complete && sum === BigInt(billed)) {
      reconcile.className = 'small ok';
      reconcile.textContent = `✓ The ${fmt.int(events.length)} deltas of ${metric} add up to the billed total, ${fmt.int(billed)}.`;
    } else if (complete) {
      reconcile.className = 'small bad';
      reconcile.textContent = `The deltas add up to ${fmt.int(sum)} but the billed total is ${fmt.int(billed)}.`;
    } else {
      reconcile.className = 'small muted';
      reconcile.textContent = `The deltas loaded so far add up to ${fmt.int(sum)} of ${fmt.int(billed)}; load more to reconcile.`;
    }
  };
  const loadMore = async () => {
    more.disabled = true;
    try {
      const body = await getJson('/api/v1/audit', { table, key, metric, from: r.from, to: r.to, limit: AUDIT_PAGE, after: next });
      if (gen !== generation) return;
      events.push(...(body.events || []));
      next = body.next || null;
      complete = !next;
    } catch (err) {
      showError(err);
    } finally {
      more.disabled = false;
    }
    renderAudit();
  };
  more.addEventListener('click', loadMore);
  try {
    await Promise.all([usageP, seriesP, loadMore()]);
  } catch (err) { if (gen === generation) showError(err); }
  if (gen === generation) renderAudit();
}

// ---------------------------------------------------------------------------------------------
// Billing export: preview and download of period totals.

function parseCsv(text) {
  const rows = [];
  let row = [], cell = '', quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += c;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

function previousMonth() {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - 1);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}`;
}

async function exportPage(gen, params) {
  let tbls;
  try { tbls = await tables(); } catch (err) { showError(err); return; }
  if (gen !== generation) return;
  main.replaceChildren(h('h1', {}, 'Billing export'));
  if (!tbls.length) { main.append(h('p', { class: 'muted' }, 'No stick table has been announced yet.')); return; }
  const tname = tbls.some((t) => t.name === params.get('table')) ? params.get('table') : '';
  const metrics = [...new Set((tname ? tbls.filter((t) => t.name === tname) : tbls).flatMap(counterMetrics))].sort();
  const mname = metrics.includes(params.get('metric')) ? params.get('metric') : '';
  const mode = params.get('mode') === 'range' ? 'range' : 'month';
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  if (!zones.includes('UTC')) zones.unshift('UTC');
  const tz = params.get('tz') || fmt.zone;
  if (!zones.includes(tz)) zones.unshift(tz);

  const tableSel = h('select', { id: 'x-table' }, h('option', { value: '' }, 'All tables'),
    tbls.map((t) => h('option', { value: t.name, selected: t.name === tname }, t.name)));
  const metricSel = h('select', { id: 'x-metric' }, h('option', { value: '' }, 'All counters'),
    metrics.map((m) => h('option', { value: m, selected: m === mname }, m)));
  const modeSel = h('select', { id: 'x-mode' }, h('option', { value: 'month', selected: mode === 'month' }, 'Calendar month'),
    h('option', { value: 'range', selected: mode === 'range' }, 'From / to'));
  const month = h('input', { id: 'x-period', type: 'month', value: params.get('period') || previousMonth(), required: true });
  const zoneSel = h('select', { id: 'x-tz' }, zones.map((z) => h('option', { value: z, selected: z === tz }, z)));
  const [df, dt] = fmt.presetRange('last-month');
  const from = h('input', { id: 'x-from', type: 'datetime-local', value: fmt.toLocalInput(Number(params.get('from')) || df) });
  const to = h('input', { id: 'x-to', type: 'datetime-local', value: fmt.toLocalInput(Number(params.get('to')) || dt) });
  const monthFields = [field('x-period', 'Month', month), field('x-tz', 'Time zone', zoneSel)];
  const rangeFields = [field('x-from', `From (${fmt.zone})`, from), field('x-to', `To, exclusive (${fmt.zone})`, to)];
  const query = () => {
    const q = { table: tableSel.value, metric: metricSel.value };
    if (modeSel.value === 'month') Object.assign(q, { period: month.value, tz: zoneSel.value });
    else Object.assign(q, { from: fmt.fromLocalInput(from.value), to: fmt.fromLocalInput(to.value) });
    return q;
  };
  const navigate = () => {
    const q = query();
    go('export', { ...q, mode: modeSel.value });
  };
  for (const c of [tableSel, metricSel, modeSel, month, zoneSel, from, to]) c.addEventListener('change', navigate);
  for (const f of mode === 'month' ? rangeFields : monthFields) f.hidden = true;

  const preview = h('div', { class: 'scroll', id: 'x-preview' }, h('p', { class: 'muted pad' }, 'Loading preview…'));
  const status = h('span', { class: 'muted small', id: 'x-status', role: 'status' });
  const download = async (format) => {
    status.textContent = `Preparing ${format.toUpperCase()}…`;
    try {
      // Downloads are for spreadsheets: names that look like formulas are kept as text. The
      // preview and the script URL below use the exact bytes.
      const res = await request('/api/v1/export', { ...query(), format, ...(format === 'csv' ? { excel_safe: '1' } : {}) });
      const blob = await res.blob();
      // The server names the file (Content-Disposition); fall back to a name of our own.
      const cd = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '');
      const name = cd ? cd[1] : `stickmeter-export.${format}`;
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      status.textContent = `Downloaded ${name} (${fmt.bytes(blob.size)}).`;
    } catch (err) {
      status.textContent = '';
      showError(err);
    }
  };
  const q = query();
  main.append(
    h('form', { class: 'controls', onsubmit: (e) => e.preventDefault() }, field('x-table', 'Table', tableSel), field('x-metric', 'Metric', metricSel), field('x-mode', 'Period', modeSel), monthFields, rangeFields),
    h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'primary', id: 'x-csv', onclick: () => download('csv') }, 'Download CSV'),
      h('button', { type: 'button', id: 'x-json', onclick: () => download('json') }, 'Download JSON'), status),
    h('p', { class: 'muted small' }, 'Same data from a script: ', h('code', { id: 'x-url' }, `${location.origin}${buildUrl('/api/v1/export', { ...q, format: 'csv' })}`)),
    h('h2', {}, 'Preview'), preview);

  if ((mode === 'month' && !q.period) || (mode === 'range' && !(q.from < q.to))) {
    preview.replaceChildren(h('p', { class: 'muted pad' }, 'Choose a valid period.'));
    return;
  }
  let text;
  let partial = false;
  try {
    const res = await request('/api/v1/export', { ...q, format: 'csv' });
    partial = res.headers.get('X-Stickmeter-Partial') === 'true';
    text = await res.text();
  } catch (err) { if (gen === generation) showError(err); return; }
  if (gen !== generation) return;
  const [header = [], ...rows] = parseCsv(text).filter((r) => r.length > 1 || r[0]);
  const totalCol = header.indexOf('total');
  const metricCol = header.indexOf('metric');
  const sums = new Map();
  for (const r of rows) sums.set(r[metricCol], (sums.get(r[metricCol]) || 0n) + (fmt.exact(r[totalCol]) ?? 0n));
  // On narrow screens the period columns (the same on every row) and, when one table is chosen,
  // the table column are hidden; they lead the header, so the footer can skip them in front.
  const narrowHidden = header.map((c) => c.startsWith('period') || (c === 'table' && Boolean(q.table)));
  const leading = narrowHidden.indexOf(false) === -1 ? header.length : narrowHidden.indexOf(false);
  const hideCls = (i) => (i < leading && narrowHidden[i] ? 'hide-sm' : '');
  preview.replaceChildren(rows.length
    ? h('table', { id: 'x-rows' },
      h('thead', {}, h('tr', {}, header.map((c, i) => h('th', { class: i === totalCol ? 'num' : hideCls(i) }, c)))),
      h('tbody', {}, rows.slice(0, 500).map((r) => h('tr', {}, r.map((c, i) => h('td', {
        class: i === totalCol ? 'num' : hideCls(i),
        dataset: i === totalCol ? { value: c } : undefined,
      }, i === totalCol && fmt.exact(c) !== null ? fmt.int(fmt.exact(c)) : c))))),
      h('tfoot', {}, [...sums].map(([m, s]) => h('tr', {},
        header.slice(0, leading).map(() => h('td', { class: 'hide-sm' })),
        h('td', { colspan: header.length - leading - 1 }, `Total ${m}`),
        h('td', { class: 'num', title: fmt.isBytes(m) ? fmt.bytes(s) : undefined }, fmt.int(s))))))
    : h('p', { class: 'muted pad' }, 'No usage in this period.'));
  if (partial) preview.before(h('p', { class: 'small bad', id: 'x-partial' }, 'This period is not over yet: the totals are partial and will grow.'));
  if (rows.length > 500) preview.append(h('p', { class: 'muted small pad' }, `Showing 500 of ${fmt.int(rows.length)} rows; the download has them all.`));
}

// ---------------------------------------------------------------------------------------------

// What the pages in other modules need of this one.
function pageContext(gen) {
  return { main, isCurrent: () => gen === generation, showError, go, tables, reload: route };
}

const PAGES = {
  overview: overviewPage, usage: usagePage, key: keyPage, export: exportPage,
  quotas: (gen, params) => quotasPage(pageContext(gen), params),
};

function route() {
  generation++;
  for (const c of cleanups) c();
  cleanups = [];
  showError(null);
  const { route: name, params } = hashParams();
  const page = PAGES[name] || overviewPage;
  const navName = name === 'key' ? 'usage' : PAGES[name] ? name : 'overview';
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.nav === navName) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${{ overview: 'Overview', usage: 'Usage', key: 'Key', export: 'Billing export', quotas: 'Quotas' }[navName] || 'Overview'} · stickmeter`;
  const gen = generation;
  Promise.resolve(page(gen, params)).catch((err) => { if (gen === generation) showError(err); })
    .finally(() => {
      if (gen !== generation) return;
      main.dataset.ready = name;
      performance.mark(`stickmeter:ready:${name}`); // lets tests and operators time a page's render
    });
}

document.getElementById('zone').textContent = `Times in ${fmt.zoneLabel()}`;
window.addEventListener('hashchange', () => { delete main.dataset.ready; route(); });
route();
