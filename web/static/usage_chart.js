// The usage page's chart and download: the period stacked by its top keys, and the rows shown as
// a CSV file (csv.js: Excel-safe).
import * as fmt from './fmt.js';
import { h } from './dom.js';
import { stackedChart } from './chart.js';
import { stepsFor, loadSeries } from './series.js';
import { saveCsv } from './csv.js';
import { nav, isCurrent, showError, periodName } from './shared.js';

// Keys drawn as layers: more colours than this are hard to tell apart.
const TOP_LAYERS = 5;

// Draws into `box` the period `r` at the finest step that fits (series.js), one layer per key of
// the TOP_LAYERS largest totals among `rows`, and on top the other keys as one grey layer: the
// table's series (the series API without a key) less the top keys', so the bars are the whole
// table. The legend gives every layer's total. The series are asked one at a time: a chart must
// not take every query slot of the server (--max-queries) from the other pages.
// `keyCount`: the keys with usage in the period when `rows` holds only some of them (a page of
// the top keys); the other keys' layer is then every key but the top ones, as the bars are.
export async function topKeysChart(gen, { box, table, metric, r, rows, keyCount }) {
  const ranked = rows.filter((x) => BigInt(x.total) > 0n).sort((a, b) => fmt.cmp(b.total, a.total)
    || (String(a.key) < String(b.key) ? -1 : 1));
  const topRows = ranked.slice(0, TOP_LAYERS);
  if (!topRows.length) {
    box.replaceChildren(h('p', { class: 'muted' }, 'No usage to chart in this period.'));
    return;
  }
  const step = stepsFor(r.to - r.from)[0];
  const layers = [];
  let stepMs = 0;
  try {
    for (const x of topRows) {
      const s = await loadSeries({ table, metric, key: String(x.key), r, step });
      if (!isCurrent(gen)) return;
      stepMs = s.stepMs;
      layers.push({ label: String(x.key), points: s.points, total: x.total });
    }
  } catch (err) {
    if (isCurrent(gen)) showError(err);
    return;
  }
  const others = ranked.slice(TOP_LAYERS);
  const partial = keyCount !== undefined && keyCount > ranked.length;
  const otherCount = partial ? keyCount - topRows.length : others.length;
  let othersTotal = fmt.sum(others.map((x) => x.total));
  let othersDrawn = false;
  if (otherCount) {
    try {
      const whole = await loadSeries({ table, metric, r, step });
      if (!isCurrent(gen)) return;
      const top = new Map();
      for (const l of layers) for (const p of l.points) top.set(p.t, (top.get(p.t) || 0) + p.v);
      const points = whole.points.map((p) => ({ ...p, v: p.v - (top.get(p.t) || 0) })).filter((p) => p.v > 0);
      // Only some keys in `rows`: the others' total is the table's less the top keys'.
      if (partial) othersTotal = fmt.sum(whole.points.map((p) => p.v)) - fmt.sum(topRows.map((x) => x.total));
      layers.push({ label: `${otherCount} other keys`, points, total: othersTotal, others: true });
      othersDrawn = true;
    } catch (err) {
      if (isCurrent(gen)) showError(err);
      return;
    }
  }
  const draw = () => {
    const chart = stackedChart({ layers, stepMs, from: r.from, to: r.to, metric,
      width: box.clientWidth - 28, height: window.innerWidth < 640 ? 200 : 240 });
    const keyLayers = layers.filter((l) => !l.others);
    const othersName = `${fmt.int(otherCount)} other key${otherCount === 1 ? '' : 's'}`;
    const legend = h('ul', { class: 'legend', id: 'usage-legend' },
      keyLayers.map((l, i) => h('li', { dataset: { key: l.label, total: String(l.total) } },
        h('span', { class: `swatch layer-${i}` }), `${l.label}: ${fmt.amount(metric, l.total)}`)),
      otherCount ? h('li', { class: 'muted', id: 'usage-legend-others', dataset: { total: String(othersTotal), drawn: String(othersDrawn) } },
        othersDrawn ? h('span', { class: `swatch layer-${layers.length - 1}` }) : null,
        `${othersName}${othersDrawn ? '' : ' (not drawn)'}: ${fmt.amount(metric, othersTotal)}`) : null);
    box.replaceChildren(h('div', { class: 'muted small' },
      `Top ${keyLayers.length} by total${othersDrawn ? ' and the other keys' : ''}, per ${fmt.duration(stepMs)}`), chart, legend);
  };
  draw();
  let pending = 0;
  const onResize = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(draw); };
  window.addEventListener('resize', onResize);
  nav.cleanups.push(() => window.removeEventListener('resize', onResize));
}

// Saves `rows` (in their order) as usage-TABLE-METRIC-PERIOD.csv: key and exact total, and with a
// comparison (`prevOf` giving a row's previous total) the previous total too.
export function downloadCsv({ table, metric, params, rows, prevOf }) {
  const compare = rows.length && prevOf(rows[0]) !== undefined;
  saveCsv(`usage-${table}-${metric}-${periodName(params)}`, [
    ['key', 'total', ...(compare ? ['previous_total'] : [])],
    ...rows.map((x) => [x.key, String(x.total), ...(compare ? [String(prevOf(x))] : [])])]);
}
