// Key detail: one key of a table for one metric over a period (this month, last month, a day,
// a custom range, in the billing zone).
//
// The chart's step follows the period: the finest of 1m, 1h, 1d that gives at most 400 bars
// (series.js) (a month at 1m would draw 1-px slivers); finer steps are not offered for it.
//
// Counter: the billed total, its chart (sum of deltas per step), its subtotals per HAProxy node
// and per day, checked to add up to the total, and the audit trail (key_audit.js). Gauge: no
// total and no audit trail exist (the API refuses both), so the page shows per step either the
// largest sample and the peak over the range, or the last value (each node's, summed) and the
// latest one. A key the table
// has never had (the API's 404 naming the key) is said to be unknown, with the table's keys that
// start like it, so a misspelling is never shown as a reconciled zero.
import { getJson, ApiError } from './api.js';
import * as fmt from './fmt.js';
import { barChart } from './chart.js';
import { STEP_MS, stepsFor, loadSeries } from './series.js';
import { auditSection, subtotals } from './key_audit.js';
import { coverageNotice } from './coverage.js';
import { keyNames } from './names.js';
import { h, field } from './dom.js';
import {
  main, nav, isCurrent, showError, go, tables, gaugeMetrics, defaultMetric, metricSelect, rangeFrom,
  rangeParams, rangeControls, loading,
} from './shared.js';

const SIMILAR_KEYS = 20;

const unknownKey = (err) => err instanceof ApiError && err.status === 404 && /^key:/.test(err.detail);

export async function keyPage(gen, params, keyQuotaBox) {
  const table = params.get('table');
  const key = params.get('key');
  if (!table || !key) { go('usage', {}); return; }
  let tbls;
  try { tbls = await tables(); } catch (err) { showError(err); return; }
  if (!isCurrent(gen)) return;
  const t = tbls.find((x) => x.name === table);
  const metric = params.get('metric') || defaultMetric(t);
  const gauge = gaugeMetrics(t).includes(metric);
  const agg = gauge && params.get('agg') === 'last' ? 'last' : 'max';
  const r = rangeFrom(params);
  const span = r.to - r.from;
  const allowed = stepsFor(span);
  // An asked step too fine for the period (an old link, a period made longer) gives way.
  const step = allowed.includes(params.get('step')) ? params.get('step') : allowed[0];
  const sort = Object.fromEntries(['sort', 'dir'].filter((k) => params.get(k)).map((k) => [k, params.get(k)]));
  const back = `#/usage?${new URLSearchParams({ table, metric, ...rangeParams(params), ...sort })}`;

  const stepButtons = h('div', { class: 'seg', role: 'group', 'aria-label': 'Chart step', id: 'key-steps' },
    Object.keys(STEP_MS).map((s) => h('button', {
      type: 'button', 'aria-pressed': String(s === step), disabled: !allowed.includes(s), dataset: { step: s },
      title: allowed.includes(s) ? undefined : `${fmt.int(Math.ceil(span / STEP_MS[s]))} bars: too fine for this period`,
      onclick: () => go('key', { ...Object.fromEntries(params), step: s }),
    }, s)));
  const aggButtons = gauge ? h('div', { class: 'seg', role: 'group', 'aria-label': 'Value per step', id: 'key-agg' },
    [['max', 'Maximum'], ['last', 'Last']].map(([a, label]) => h('button', {
      type: 'button', 'aria-pressed': String(a === agg), dataset: { agg: a },
      title: a === 'max' ? 'The largest sample of any node in each step' : 'Each node’s last value at the end of each step, summed over nodes',
      onclick: () => go('key', { ...Object.fromEntries(params), agg: a }),
    }, label))) : null;
  const metricSel = metricSelect('key-metric', t, metric);
  metricSel.addEventListener('change', () => go('key', { ...Object.fromEntries(params), metric: metricSel.value }));
  // A new period drops the step, which the period then picks.
  const keep = Object.fromEntries([...params].filter(([k]) => !['range', 'from', 'to', 'day', 'month', 'step'].includes(k)));
  const ranges = rangeControls(params, () => go('key', { ...keep, ...ranges.value() }));
  const totalBox = h('div', { class: 'big loading', id: 'key-total' }, '…');
  const chartBox = h('div', { class: 'panel chart', id: 'key-chart' }, loading('Loading…', 'muted'));
  const reconcile = h('p', { id: 'key-reconcile', class: 'small' });
  const subtotalsBox = h('div', { class: 'subtotals', id: 'key-subtotals' });
  const audit = gauge ? null : auditSection(gen, { table, key, metric, r, params });
  const headline = !gauge ? `Billed ${metric} in range`
    : agg === 'last' ? `Latest ${metric} in range (summed over nodes, not billed)` : `Peak ${metric} in range (maximum sample, not billed)`;

  // The key's display name (--key-names), when it has one, once the names are read.
  const nameBox = h('span', { class: 'key-name muted', id: 'key-name' });
  keyNames(table).then((names) => { if (isCurrent(gen)) nameBox.textContent = names.get(key) || ''; });
  // replaceChildren would print a null as text: the parts a gauge lacks are filtered out.
  main.replaceChildren(...[
    h('p', { class: 'small' }, h('a', { href: back }, '← Usage of ', table)),
    h('h1', {}, 'Key ', h('code', {}, key), ' ', nameBox),
    h('form', { class: 'controls', onsubmit: (e) => e.preventDefault() }, field('key-metric', 'Metric', metricSel), ranges.nodes),
    h('div', { class: 'total-line' },
      h('div', {}, h('div', { class: 'muted small', id: 'key-total-label' }, headline), totalBox),
      h('div', { class: 'muted small', id: 'key-period' }, `${table} · [${fmt.time(r.from)}, ${fmt.time(r.to)}) ${fmt.zone}`)),
    coverageNotice(gen, { id: 'key-coverage', from: r.from, to: r.to }),
    gauge ? null : keyQuotaBox(table, key),
    h('div', { class: 'row-actions' }, ...[h('span', { class: 'muted small' }, 'Step'), stepButtons,
      gauge ? h('span', { class: 'muted small' }, 'Value') : null, aggButtons].filter(Boolean)),
    h('div', { class: 'gap-top' }, chartBox),
    gauge ? null : h('h2', {}, 'Subtotals'),
    subtotalsBox,
    reconcile,
    h('h2', {}, 'Audit trail'),
    gauge
      ? h('p', { class: 'muted small', id: 'key-gauge-note' }, `${metric} is a gauge: HAProxy sends its current value, which is sampled, `
        + 'never summed or billed, so it has no deltas and no audit trail. “Maximum” charts the largest sample of any node in each step; '
        + '“Last” charts each node’s last value at the end of each step (carried forward until the node sends another), summed over nodes.')
      : h('p', { class: 'muted small' }, 'Every absolute value received from HAProxy and the delta derived from it. The billed total is the sum of the deltas.'),
    ...(audit ? audit.nodes : [])].filter(Boolean));

  let billed = null;
  let unknown = null; // the API's 404 for a key the table never had
  const usageP = gauge ? Promise.resolve() : getJson('/api/v1/usage', { table, metric, from: r.from, to: r.to, key })
    .then((b) => {
      const row = (b.rows || []).find((x) => String(x.key) === key);
      billed = row ? row.total : 0;
      totalBox.textContent = fmt.amount(metric, billed);
      totalBox.dataset.value = String(billed);
      totalBox.classList.remove('loading');
    });
  const seriesP = loadSeries({ table, metric, key, r, step, agg: gauge ? agg : undefined })
    .then((s) => {
      if (!isCurrent(gen)) return;
      const { points } = s;
      if (s.gauge) {
        const peak = !points.length ? null : agg === 'last' ? points[points.length - 1].v : Math.max(...points.map((p) => p.v));
        totalBox.textContent = peak === null ? 'no samples' : fmt.int(peak);
        totalBox.dataset.value = peak === null ? '' : String(peak);
        totalBox.classList.remove('loading');
      }
      const draw = () => chartBox.replaceChildren(points.length
        ? barChart({ points, stepMs: s.stepMs, from: r.from, to: r.to, metric, gauge: s.gauge, agg: s.agg,
          width: chartBox.clientWidth - 28, height: window.innerWidth < 640 ? 200 : 240 })
        : h('p', { class: 'muted' }, s.gauge ? 'No samples in this range.' : 'No deltas in this range.'));
      draw();
      let pending = 0;
      const onResize = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(draw); };
      window.addEventListener('resize', onResize);
      nav.cleanups.push(() => window.removeEventListener('resize', onResize));
    });

  const results = await Promise.allSettled([usageP, seriesP, audit ? audit.load() : Promise.resolve()]);
  if (!isCurrent(gen)) return;
  for (const res of results) {
    if (res.status !== 'rejected') continue;
    if (unknownKey(res.reason)) unknown = res.reason;
    else showError(res.reason);
  }
  if (unknown) {
    subtotalsBox.replaceChildren();
    await unknownKeyView(gen, { table, key, metric, params, totalBox, chartBox, auditBox: audit ? audit.nodes[0] : subtotalsBox, reconcile });
    return;
  }
  if (!gauge && billed !== null) {
    await subtotals(gen, { box: subtotalsBox, reconcile, table, key, metric, r, sources: t.sources || [], billed });
  }
}

// The key was never seen: say so where the total, chart and reconciliation would be, and list
// the table's keys that start like it (/api/v1/keys with a prefix).
async function unknownKeyView(gen, { table, key, metric, params, totalBox, chartBox, auditBox, reconcile }) {
  totalBox.textContent = 'unknown key';
  totalBox.classList.remove('loading');
  totalBox.classList.add('bad');
  delete totalBox.dataset.value;
  chartBox.replaceChildren(h('p', { class: 'muted' }, 'Nothing to chart: no HAProxy node has ever sent this key.'));
  reconcile.className = 'small bad';
  reconcile.textContent = `Unknown key: table ${table} has never had the key “${key}”, so nothing was billed for it. Check the spelling.`;
  reconcile.dataset.unknown = 'true';
  for (const b of document.querySelectorAll('#audit-prev, #audit-next, #audit-csv')) b.hidden = true;
  auditBox.replaceChildren();
  const stem = key.slice(0, Math.max(1, Math.min(3, key.length - 1)));
  let similar = [];
  try {
    similar = (await getJson('/api/v1/keys', { table, prefix: stem, limit: SIMILAR_KEYS })).keys || [];
  } catch (e) { if (isCurrent(gen)) showError(e); }
  if (!isCurrent(gen)) return;
  auditBox.replaceChildren(h('div', { class: 'pad', id: 'key-similar' },
    h('p', { class: 'small' }, similar.length ? `Keys of ${table} starting with “${stem}”:` : `No key of ${table} starts with “${stem}”.`),
    similar.length ? h('ul', {}, similar.map((k) => h('li', {},
      h('a', { href: `#/key?${new URLSearchParams({ ...Object.fromEntries(params), key: String(k), metric })}` }, String(k))))) : null));
}
