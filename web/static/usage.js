// Usage: totals per key for a table, counter and range; for a gauge (which has no total), each
// key's peak and latest value in the range, each linking to its maximum or last value per step.
//
// The page's state is its address: table, metric, range, filter, sort column and direction,
// comparison, so changing the range keeps the order and a reload shows the same view. Defaults:
// http_req_cnt (else the table's first counter), largest total first.
//
// Above the rows, a chart of the period stacked by the top keys (usage_chart.js); with "Compare"
// each key's total in the previous period of the same kind (the month before, the day before,
// the custom range just before) and the change; "Download CSV" saves the rows shown. A key's
// display name (serve --key-names, names.js) follows it, and the filter matches it too.
import { getJson } from './api.js';
import * as fmt from './fmt.js';
import { h, field } from './dom.js';
import {
  main, isCurrent, showError, go, replaceHash, tables, counterMetrics, gaugeMetrics, defaultMetric,
  metricSelect, rangeFrom, rangeParams, rangeControls, shiftRange, periodName, loading,
} from './shared.js';
import { topKeysChart, downloadCsv } from './usage_chart.js';
import { coverageNotice } from './coverage.js';
import { keyNames, nameLabel } from './names.js';

// Rows drawn at once: a table of 100,000 keys would make the page sluggish on a phone.
const MAX_ROWS = 2000;
// Keys per page of the "top customers" view (the server ranks them: order=total&limit&offset).
const TOP_PAGE = 100;

// Every row of a usage query: a reply ends once its keys reach 8 MiB, with `next_offset` where
// the next page starts, so pages are read until none follows. A key seen on an earlier page is
// not listed again (a key first seen meanwhile shifts the rows after it by one).
async function everyUsageRow(query) {
  const rows = [];
  const seen = new Set();
  for (let offset = 0; ;) {
    const body = await getJson('/api/v1/usage', { ...query, ...(offset ? { offset } : {}) });
    for (const row of body.rows || []) {
      if (seen.has(String(row.key))) continue;
      seen.add(String(row.key));
      rows.push(row);
    }
    if (body.next_offset == null) return { rows, total_rows: body.total_rows ?? rows.length };
    offset = body.next_offset;
  }
}

// The key's page keeps the usage page's range, and its sort for the way back.
const keyLink = (tname, key, metric, params, sort = {}) =>
  `#/key?${new URLSearchParams({ table: tname, key, metric, ...rangeParams(params), ...sort })}`;

export async function usagePage(gen, params) {
  let tbls;
  try { tbls = await tables(); } catch (err) { showError(err); return; }
  if (!isCurrent(gen)) return;
  main.replaceChildren(h('h1', {}, 'Usage'));
  if (!tbls.length) {
    main.append(h('p', { class: 'muted' }, 'No stick table has been announced yet.'));
    return;
  }
  const tname = params.get('table') && tbls.some((t) => t.name === params.get('table')) ? params.get('table') : tbls[0].name;
  const table = tbls.find((t) => t.name === tname);
  const asked = params.get('metric');
  const metric = counterMetrics(table).includes(asked) || gaugeMetrics(table).includes(asked) ? asked : defaultMetric(table);
  const gauge = gaugeMetrics(table).includes(metric);
  const state = {
    sort: params.get('sort') === 'key' ? 'key' : 'total',
    dir: params.get('dir') === 'asc' || params.get('dir') === 'desc' ? params.get('dir') : (params.get('sort') === 'key' ? 'asc' : 'desc'),
    filter: params.get('q') || '',
  };

  const tableSel = h('select', { id: 'table' }, tbls.map((t) => h('option', { value: t.name, selected: t.name === tname }, t.name)));
  const metricSel = metricSelect('metric', table, metric);
  const filter = h('input', { id: 'filter', type: 'search', placeholder: 'key contains…', value: state.filter });
  // "top": the server ranks the keys and sends one page of TOP_PAGE; "all": every key, sorted
  // and filtered here.
  const top = !gauge && params.get('show') === 'top';
  const offset = top ? Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0) : 0;
  const showSel = h('select', { id: 'show', disabled: gauge },
    [['all', 'All keys'], ['top', `Top ${TOP_PAGE} by total`]].map(([v, t]) => h('option', { value: v, selected: v === (top ? 'top' : 'all') }, t)));
  // Everything the address holds, from the controls and the current sort.
  const address = () => ({
    table: tableSel.value, metric: tableSel.value === tname ? metricSel.value : '', ...ranges.value(), q: filter.value,
    sort: state.sort, dir: state.dir, ...(showSel.value === 'top' ? { show: 'top' } : {}),
    ...(compareBox.checked ? { compare: '1' } : {}),
  });
  const compare = !gauge && params.get('compare') === '1';
  const compareBox = h('input', { id: 'compare', type: 'checkbox', checked: compare, disabled: gauge });
  const navigate = () => go('usage', address());
  const ranges = rangeControls(params, navigate);
  compareBox.addEventListener('change', navigate);
  tableSel.addEventListener('change', navigate);
  metricSel.addEventListener('change', navigate);
  showSel.addEventListener('change', navigate);
  filter.disabled = top;
  main.append(h('form', { class: 'controls', onsubmit: (e) => e.preventDefault() },
    field('table', 'Table', tableSel), field('metric', 'Metric', metricSel), ranges.nodes, field('show', 'Show', showSel),
    field('filter', 'Filter keys', filter),
    h('div', { class: 'field' }, h('span', { class: 'label-gap' }, 'Compare'),
      h('label', { class: 'check', for: 'compare' }, compareBox, ' with the period before'))));
  if (!metric) {
    main.append(h('p', { class: 'muted' }, 'This table stores no counter, so there is nothing to bill.'));
    return;
  }
  if (gauge) { await gaugeValues(gen, { params, tname, metric, filter }); return; }
  const r = rangeFrom(params);
  const before = compare ? rangeFrom(new URLSearchParams(shiftRange(params, -1))) : null;
  const summary = h('div', { class: 'total-line', id: 'usage-summary' });
  const chartBox = h('div', { class: 'panel chart', id: 'usage-chart' }, loading('Loading…', 'muted'));
  const holder = h('div', { class: 'scroll', id: 'usage-table' }, loading());
  const csvButton = h('button', { type: 'button', id: 'usage-csv', disabled: true }, 'Download CSV');
  main.append(coverageNotice(gen, { id: 'usage-coverage', from: r.from, to: r.to }), summary, chartBox, h('div', { class: 'row-actions' }, csvButton), holder,
    h('p', { class: 'muted small', id: 'usage-period' }, `${r.preset === 'custom' ? '' : `${periodName(params)}: `}[${fmt.time(r.from)}, ${fmt.time(r.to)}) in ${fmt.zone}.`
      + (before ? ` Compared with [${fmt.time(before.from)}, ${fmt.time(before.to)}).` : '')
      + ' Totals are exact sums of deltas over all HAProxy nodes.'));

  let rows;
  let page;
  let previous = null; // key -> total in the period before (every key of it)
  let names; // key -> display name (--key-names)
  try {
    const [body, prev, named] = await Promise.all([
      top ? getJson('/api/v1/usage', { table: tname, metric, from: r.from, to: r.to, order: 'total', limit: TOP_PAGE, offset })
        : everyUsageRow({ table: tname, metric, from: r.from, to: r.to }),
      before ? everyUsageRow({ table: tname, metric, from: before.from, to: before.to }) : null,
      keyNames(tname)]);
    names = named;
    rows = body.rows || [];
    page = { total: body.total_rows ?? rows.length, next: body.next_offset ?? null };
    if (prev) previous = new Map((prev.rows || []).map((x) => [String(x.key), x.total]));
  } catch (err) { if (isCurrent(gen)) showError(err); return; }
  if (!isCurrent(gen)) return;
  // Keys billed before but not in this period are customers who stopped: listed with 0.
  if (previous && !top) {
    const now = new Set(rows.map((x) => String(x.key)));
    for (const k of previous.keys()) if (!now.has(k)) rows.push({ key: k, total: 0 });
  }
  const prevOf = (x) => (previous ? previous.get(String(x.key)) ?? 0 : undefined);
  topKeysChart(gen, { box: chartBox, table: tname, metric, r, rows: top && offset > 0 ? [] : rows,
    keyCount: top ? Number(page.total) : undefined });
  if (top) {
    topPage(rows, page, { params, tname, metric, offset, summary, holder, prevOf, previous, names });
    csvButton.disabled = !rows.length;
    csvButton.onclick = () => downloadCsv({ table: tname, metric, params, rows, prevOf });
    return;
  }

  const render = () => {
    const q = state.filter.toLowerCase();
    // The filter finds a key by its display name too.
    const shown = rows.filter((x) => String(x.key).toLowerCase().includes(q) || (names.get(String(x.key)) || '').toLowerCase().includes(q));
    const sign = state.dir === 'asc' ? 1 : -1;
    const byKey = (a, b) => (String(a.key) < String(b.key) ? -1 : String(a.key) > String(b.key) ? 1 : 0);
    // Equal totals stay in key order whichever way the totals go.
    shown.sort((a, b) => (state.sort === 'total' ? sign * fmt.cmp(a.total, b.total) || byKey(a, b) : sign * byKey(a, b)));
    const sum = fmt.sum(shown.map((x) => x.total));
    summary.replaceChildren(...[
      h('div', {}, h('div', { class: 'muted small' }, q ? 'Total of shown keys' : 'Total'),
        h('div', { class: 'big', id: 'usage-total', dataset: { value: String(sum) } }, fmt.amount(metric, sum))),
      h('div', {}, h('div', { class: 'muted small' }, 'Keys'), h('div', { class: 'big' }, `${fmt.int(shown.length)}${q ? ` of ${fmt.int(rows.length)}` : ''}`)),
      previous ? previousTotal(metric, sum, fmt.sum(shown.map(prevOf))) : null].filter(Boolean));
    csvButton.disabled = !shown.length;
    csvButton.onclick = () => downloadCsv({ table: tname, metric, params, rows: shown, prevOf });
    const th = (col, label, cls) => h('th', { class: cls, 'aria-sort': state.sort === col ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', { class: 'sort', type: 'button', onclick: () => {
        if (state.sort === col) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else { state.sort = col; state.dir = col === 'total' ? 'desc' : 'asc'; }
        render();
        replaceHash('usage', { ...Object.fromEntries(params), q: state.filter, sort: state.sort, dir: state.dir });
      } }, label));
    holder.replaceChildren(shown.length
      ? h('table', { id: 'usage-rows' },
        h('thead', {}, h('tr', {}, th('key', 'Key'), th('total', `Total (${fmt.unit(metric)})`, 'num'), previous ? compareHeads() : null)),
        h('tbody', {}, shown.slice(0, MAX_ROWS).map((x) => h('tr', {},
          h('td', {}, h('a', { href: keyLink(tname, String(x.key), metric, params, { sort: state.sort, dir: state.dir }), class: 'key-link' }, String(x.key)), nameLabel(names, x.key)),
          totalCell(metric, x.total), previous ? compareCells(metric, x.total, prevOf(x)) : null))))
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
function topPage(rows, page, { params, tname, metric, offset, summary, holder, prevOf, previous, names }) {
  const sum = fmt.sum(rows.map((x) => x.total));
  summary.replaceChildren(...[
    h('div', {}, h('div', { class: 'muted small' }, 'Total of this page'),
      h('div', { class: 'big', id: 'usage-total', dataset: { value: String(sum) } }, fmt.amount(metric, sum))),
    h('div', {}, h('div', { class: 'muted small' }, 'Keys'), h('div', { class: 'big', id: 'usage-keys' },
      rows.length ? `${fmt.int(offset + 1)}–${fmt.int(offset + rows.length)} of ${fmt.int(page.total)}` : `0 of ${fmt.int(page.total)}`)),
    previous ? previousTotal(metric, sum, fmt.sum(rows.map(prevOf))) : null].filter(Boolean));
  const pageLink = (id, label, to) => h('a', { id, href: `#/usage?${new URLSearchParams({ ...Object.fromEntries(params), show: 'top', offset: String(to) })}` }, label);
  const pager = h('p', { class: 'pad', id: 'usage-pager' },
    offset > 0 ? pageLink('usage-prev', `← Previous ${TOP_PAGE}`, Math.max(0, offset - TOP_PAGE)) : '',
    page.next !== null ? [' ', pageLink('usage-next', `Next ${TOP_PAGE} →`, page.next)] : '');
  holder.replaceChildren(rows.length
    ? h('table', { id: 'usage-rows' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', { class: 'num' }, `Total (${fmt.unit(metric)})`), previous ? compareHeads() : null,
        h('th', { class: 'num' }, 'Rank'))),
      h('tbody', {}, rows.map((x, i) => h('tr', {},
        h('td', {}, h('a', { href: keyLink(tname, String(x.key), metric, params), class: 'key-link' }, String(x.key)), nameLabel(names, x.key)),
        totalCell(metric, x.total), previous ? compareCells(metric, x.total, prevOf(x)) : null,
        h('td', { class: 'num muted' }, fmt.int(offset + i + 1))))))
    : h('p', { class: 'muted pad' }, page.total ? 'No keys past this page.' : 'No usage in this range.'), pager);
}

const totalCell = (metric, total) => h('td', { class: 'num', dataset: { value: String(total) }, title: `${fmt.int(total)} ${fmt.unit(metric)}` },
  fmt.isBytes(metric) ? fmt.bytes(total) : fmt.int(total));

// The change from `before` to `now` in percent, one decimal; "new" from nothing, '' for 0 to 0.
export function change(now, before) {
  const [n, b] = [Number(now), Number(before)];
  if (b === 0) return n === 0 ? '' : 'new';
  const pct = ((n - b) / b) * 100;
  return `${pct > 0 ? '+' : ''}${pct.toFixed(1)}%`;
}

const compareHeads = () => [h('th', { class: 'num' }, 'Period before'), h('th', { class: 'num' }, 'Change')];
const compareCells = (metric, now, before) => [
  h('td', { class: 'num prev', dataset: { value: String(before) } }, fmt.isBytes(metric) ? fmt.bytes(before) : fmt.int(before)),
  h('td', { class: 'num change' }, change(now, before))];

function previousTotal(metric, now, before) {
  return h('div', {}, h('div', { class: 'muted small' }, 'Period before'),
    h('div', { class: 'big', id: 'usage-previous', dataset: { value: String(before) } }, fmt.amount(metric, before),
      h('span', { class: 'muted small', id: 'usage-change' }, ` ${change(now, before)}`)));
}

// A gauge has no total: each key's peak (its largest sample in the period) and its latest value
// (at the period's end, each node's last value summed) from /api/v1/usage with agg=max and
// agg=last, in the period. A key links to its chart of either per step.
async function gaugeValues(gen, { params, tname, metric, filter }) {
  const r = rangeFrom(params);
  const holder = h('div', { class: 'scroll', id: 'gauge-keys' }, loading());
  main.append(
    h('p', { class: 'small', id: 'gauge-note' }, `${metric} is a gauge: a sampled value (such as connections open now or a request rate), `
      + 'not a count, so it has no total and is never billed. Peak: the largest sample of any HAProxy node in the period. '
      + 'Latest: each node’s last value at the period’s end (or now), summed over the nodes. Open a key for either per step.'),
    coverageNotice(gen, { id: 'usage-coverage', from: r.from, to: r.to }), holder,
    h('p', { class: 'muted small', id: 'usage-period' }, `${r.preset === 'custom' ? '' : `${periodName(params)}: `}[${fmt.time(r.from)}, ${fmt.time(r.to)}) in ${fmt.zone}.`));
  let rows;
  let names;
  try {
    const range = { table: tname, metric, from: r.from, to: r.to };
    let peak;
    let last;
    [peak, last, names] = await Promise.all([getJson('/api/v1/usage', { ...range, agg: 'max' }), getJson('/api/v1/usage', { ...range, agg: 'last' }), keyNames(tname)]);
    const latest = new Map((last.rows || []).map((x) => [String(x.key), x.total]));
    rows = (peak.rows || []).map((x) => ({ key: String(x.key), max: x.total, last: latest.get(String(x.key)) ?? 0 }));
  } catch (err) { if (isCurrent(gen)) showError(err); return; }
  if (!isCurrent(gen)) return;
  const state = { sort: 'max', dir: 'desc' };
  const render = () => {
    const q = filter.value.toLowerCase();
    const shown = rows.filter((x) => x.key.toLowerCase().includes(q) || (names.get(x.key) || '').toLowerCase().includes(q));
    const sign = state.dir === 'asc' ? 1 : -1;
    const byKey = (a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
    // Equal values stay in key order whichever way the values go.
    shown.sort((a, b) => (state.sort === 'key' ? sign * byKey(a, b) : sign * fmt.cmp(a[state.sort], b[state.sort]) || byKey(a, b)));
    const th = (col, label, cls) => h('th', { class: cls, 'aria-sort': state.sort === col ? (state.dir === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', { class: 'sort', type: 'button', dataset: { col }, onclick: () => {
        if (state.sort === col) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else { state.sort = col; state.dir = col === 'key' ? 'asc' : 'desc'; }
        render();
      } }, label));
    const link = (key, agg) => `${keyLink(tname, key, metric, params)}&agg=${agg}`;
    holder.replaceChildren(shown.length
      ? h('table', { id: 'usage-rows' },
        h('thead', {}, h('tr', {}, th('key', 'Key'), th('max', 'Peak', 'num'), th('last', 'Latest', 'num'))),
        h('tbody', {}, shown.slice(0, MAX_ROWS).map((x) => h('tr', {},
          h('td', {}, h('a', { href: link(x.key, 'max'), class: 'key-link' }, x.key), nameLabel(names, x.key)),
          h('td', { class: 'num peak', dataset: { value: String(x.max) } }, h('a', { href: link(x.key, 'max') }, fmt.int(x.max))),
          h('td', { class: 'num latest', dataset: { value: String(x.last) } }, h('a', { href: link(x.key, 'last') }, fmt.int(x.last)))))))
      : h('p', { class: 'muted pad' }, rows.length ? 'No key matches the filter.' : 'No samples in this range.'));
    if (shown.length > MAX_ROWS) {
      holder.append(h('p', { class: 'muted small pad' }, `Showing ${fmt.int(MAX_ROWS)} of ${fmt.int(shown.length)} keys. Filter to narrow the list.`));
    }
  };
  filter.addEventListener('input', render);
  render();
}
