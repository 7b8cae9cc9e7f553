// The key page's audit trail and what reconciles it with the billed total.
//
// The trail is paged on the server (the API's cursor), one page shown at a time, so a busy
// customer's month is a few pages, not one endless list; "Download audit CSV" saves every event
// of the period. The billed total is reconciled by subtotals the server computes: per HAProxy
// node (usage with `source`) and per day of the billing zone (the series by day), each of which
// must add up to the total.
import { getJson } from './api.js';
import * as fmt from './fmt.js';
import { h } from './dom.js';
import { saveCsv } from './csv.js';
import { loadSeries } from './series.js';
import { isCurrent, showError, periodName } from './shared.js';

const AUDIT_PAGE = 50;
// Events per call when downloading the whole trail (the API's largest page).
const DOWNLOAD_PAGE = 10000;

// The audit section of key `key`: `nodes` to place on the page, `load()` for its first page
// (rejects with the API's error, such as the 404 of an unknown key).
export function auditSection(gen, { table, key, metric, r, params }) {
  const box = h('div', { class: 'scroll', id: 'key-audit' });
  const label = h('span', { class: 'muted small', id: 'audit-page' });
  const prev = h('button', { type: 'button', id: 'audit-prev', disabled: true }, '← Earlier');
  const next = h('button', { type: 'button', id: 'audit-next', disabled: true }, 'Later →');
  const csv = h('button', { type: 'button', id: 'audit-csv' }, 'Download audit CSV');
  const cursors = [null]; // cursors[i]: where page i starts
  let index = 0;
  const query = (after, limit) => getJson('/api/v1/audit', { table, key, metric, from: r.from, to: r.to, limit, after });

  const render = (events) => {
    const sum = fmt.sum(events.map((e) => e.delta));
    const first = index * AUDIT_PAGE;
    box.replaceChildren(events.length
      ? h('table', { id: 'audit-rows' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Source'), h('th', { class: 'hide-sm' }, 'Metric'),
          h('th', { class: 'num' }, 'Value'), h('th', { class: 'num' }, 'Delta'), h('th', {}, 'Reason'))),
        h('tbody', {}, events.map((e) => h('tr', {},
          h('td', {}, fmt.time(e.t)), h('td', {}, e.source), h('td', { class: 'hide-sm' }, e.metric),
          h('td', { class: 'num' }, fmt.int(e.value)), h('td', { class: 'num', dataset: { value: String(e.delta) } }, `+${fmt.int(e.delta)}`),
          h('td', {}, e.reason)))),
        h('tfoot', {}, h('tr', {}, h('td', { colspan: 2 }, `Sum of this page's ${fmt.int(events.length)} deltas`),
          h('td', { class: 'hide-sm' }), h('td', {}),
          h('td', { class: 'num', id: 'audit-sum', dataset: { value: String(sum) } }, fmt.int(sum)), h('td', {}))))
      : h('p', { class: 'muted pad' }, 'No audit events in this range.'));
    label.textContent = events.length ? `Events ${fmt.int(first + 1)}–${fmt.int(first + events.length)}` : '';
    prev.disabled = index === 0;
    next.disabled = cursors[index + 1] === undefined;
  };
  const show = async (i) => {
    prev.disabled = next.disabled = true;
    const body = await query(cursors[i], AUDIT_PAGE);
    if (!isCurrent(gen)) return;
    index = i;
    if (body.next) cursors[i + 1] = body.next;
    render(body.events || []);
  };
  prev.addEventListener('click', () => show(index - 1).catch(showError));
  next.addEventListener('click', () => show(index + 1).catch(showError));
  csv.addEventListener('click', async () => {
    csv.disabled = true;
    try {
      const rows = [['time_utc', 't_ms', 'source', 'metric', 'value', 'delta', 'reason']];
      for (let after = null; ;) {
        const body = await query(after, DOWNLOAD_PAGE);
        for (const e of body.events || []) {
          rows.push([new Date(Number(e.t)).toISOString(), String(e.t), e.source, e.metric, String(e.value), String(e.delta), e.reason]);
        }
        if (!body.next) break;
        after = body.next;
      }
      saveCsv(`audit-${table}-${key}-${metric}-${periodName(params)}`, rows);
    } catch (err) { showError(err); } finally { csv.disabled = false; }
  });
  return {
    nodes: [box, h('div', { class: 'row-actions' }, prev, next, label, csv)],
    load: () => show(0),
  };
}

// Subtotals of the billed total `billed` per HAProxy node (the table's `sources`) and per day,
// drawn into `box`; `reconcile` says whether each adds up to the total. The per-node totals are
// asked one at a time, so that a fleet of nodes does not take every query slot of the server.
export async function subtotals(gen, { box, reconcile, table, key, metric, r, sources, billed }) {
  box.replaceChildren(h('p', { class: 'muted small loading' }, 'Subtotals…'));
  let nodes;
  let days;
  try {
    nodes = [];
    for (const source of sources) {
      const body = await getJson('/api/v1/usage', { table, metric, from: r.from, to: r.to, key, source });
      if (!isCurrent(gen)) return;
      const row = (body.rows || [])[0];
      if (row) nodes.push({ source, total: row.total });
    }
    days = (await loadSeries({ table, metric, key, r, step: '1d' })).points;
  } catch (err) {
    if (isCurrent(gen)) showError(err);
    return;
  }
  if (!isCurrent(gen)) return;
  const nodeSum = fmt.sum(nodes.map((n) => n.total));
  const daySum = fmt.sum(days.map((d) => d.v));
  const want = BigInt(billed);
  const table2 = (id, head, rows, sum) => h('table', { id },
    h('thead', {}, h('tr', {}, h('th', {}, head), h('th', { class: 'num' }, 'Total'))),
    h('tbody', {}, rows.map(([name, v]) => h('tr', {}, h('td', {}, name), h('td', { class: 'num', dataset: { value: String(v) } }, fmt.int(v))))),
    h('tfoot', {}, h('tr', {}, h('td', {}, 'Sum'), h('td', { class: 'num', dataset: { value: String(sum) } }, fmt.int(sum)))));
  box.replaceChildren(
    h('div', { class: 'scroll' }, table2('key-nodes', 'HAProxy node', nodes.map((n) => [n.source, n.total]), nodeSum)),
    h('div', { class: 'scroll' }, table2('key-days', `Day (${fmt.zone})`, days.map((d) => [fmt.day(d.t), d.v]), daySum)));
  if (nodeSum === want && daySum === want) {
    reconcile.className = 'small ok';
    reconcile.textContent = `✓ The ${fmt.int(nodes.length)} node subtotals and the ${fmt.int(days.length)} daily subtotals of ${metric} `
      + `each add up to the billed total, ${fmt.int(billed)}.`;
  } else {
    reconcile.className = 'small bad';
    reconcile.textContent = `The subtotals do not add up to the billed total ${fmt.int(billed)}: nodes ${fmt.int(nodeSum)}, days ${fmt.int(daySum)}.`;
  }
}
