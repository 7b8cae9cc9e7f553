// stickmeter web UI: hash-routed pages over the JSON API (/api/v1). No framework: each page is a
// function that renders into <main> and may register cleanups (timers, listeners), run when the
// route changes. The overview, usage and key pages live in their own modules; shared.js holds
// what they share (navigation, errors and the offline state, tables, ranges).
import { request, getJson, buildUrl, signOut, hasToken, onTokenChange } from './api.js';
import * as fmt from './fmt.js';
import { h, field } from './dom.js';
import { quotasPage, keyQuotaBox } from './quotas.js';
import {
  main, nav, isCurrent, showError, go, hashParams, tables, forgetTables, counterMetrics, whenBackOnline, loading,
} from './shared.js';
import { overviewPage } from './overview.js';
import { usagePage } from './usage.js';
import { keyPage } from './key.js';
import { coverageNotice } from './coverage.js';

// ---------------------------------------------------------------------------------------------
// Billing export: preview and download of period totals, in the rows layout (one row per key
// and metric) or the invoice layout (one row per key of one table, a column per metric).

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'KiB', 'MiB', 'GiB', 'TiB'];

// Exact sum of a column of the invoice ("15", "1.500000"), as text: integers as BigInt, decimals
// scaled by their fixed number of decimals, so no float ever rounds a billed amount.
function sumColumn(cells) {
  const decimals = Math.max(0, ...cells.map((c) => (c.includes('.') ? c.length - c.indexOf('.') - 1 : 0)));
  let sum = 0n;
  for (const c of cells) {
    const [i, f = ''] = c.split('.');
    if (!/^\d+$/.test(i) || !/^\d*$/.test(f)) return '';
    sum += BigInt(i + f.padEnd(decimals, '0'));
  }
  if (!decimals) return fmt.int(sum);
  const text = sum.toString().padStart(decimals + 1, '0');
  return `${fmt.int(BigInt(text.slice(0, -decimals)))}.${text.slice(-decimals)}`;
}

// The invoice preview: key (and name) then the value columns, with their sums in the footer.
function invoiceTable(header, rows) {
  const keyCol = header.indexOf('key');
  const first = header[keyCol + 1] === 'name' ? keyCol + 2 : keyCol + 1;
  const cls = (i) => (i >= first ? 'num' : i < keyCol ? 'hide-sm' : '');
  const shown = (c, i) => (i >= first && /^\d+$/.test(c) ? fmt.int(BigInt(c)) : c);
  return h('table', { id: 'x-rows', class: 'invoice' },
    h('thead', {}, h('tr', {}, header.map((c, i) => h('th', { class: cls(i) }, c)))),
    h('tbody', {}, rows.slice(0, 500).map((r) => h('tr', {}, r.map((c, i) => h('td', {
      class: cls(i), dataset: i >= first ? { value: c } : undefined }, shown(c, i)))))),
    h('tfoot', {}, h('tr', {}, header.map((c, i) => (i < keyCol ? h('td', { class: 'hide-sm' })
      : i === keyCol ? h('td', {}, 'Total') : i < first ? h('td')
        : h('td', { class: 'num', dataset: { column: c } }, sumColumn(rows.map((r) => r[i] || '0'))))))));
}

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

// The month before this one, in the billing zone ("YYYY-MM").
function previousMonth() {
  return fmt.monthInput(fmt.presetRange('last-month')[0]);
}

async function exportPage(gen, params) {
  let tbls;
  try { tbls = await tables(); } catch (err) { showError(err); return; }
  if (!isCurrent(gen)) return;
  main.replaceChildren(h('h1', {}, 'Billing export'));
  if (!tbls.length) { main.append(h('p', { class: 'muted' }, 'No stick table has been announced yet.')); return; }
  const invoice = params.get('layout') === 'invoice';
  // An invoice is of one table: the first one until another is chosen.
  const tname = tbls.some((t) => t.name === params.get('table')) ? params.get('table') : invoice ? tbls[0].name : '';
  const metrics = [...new Set((tname ? tbls.filter((t) => t.name === tname) : tbls).flatMap(counterMetrics))].sort();
  const mname = metrics.includes(params.get('metric')) ? params.get('metric') : '';
  const mode = params.get('mode') === 'range' ? 'range' : 'month';
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  if (!zones.includes('UTC')) zones.unshift('UTC');
  const tz = params.get('tz') || fmt.zone;
  if (!zones.includes(tz)) zones.unshift(tz);

  const tableSel = h('select', { id: 'x-table' }, invoice ? null : h('option', { value: '' }, 'All tables'),
    tbls.map((t) => h('option', { value: t.name, selected: t.name === tname }, t.name)));
  const metricSel = h('select', { id: 'x-metric' }, h('option', { value: '' }, 'All counters'),
    metrics.map((m) => h('option', { value: m, selected: m === mname }, m)));
  const layoutSel = h('select', { id: 'x-layout' },
    h('option', { value: 'rows', selected: !invoice }, 'A row per key and metric'),
    h('option', { value: 'invoice', selected: invoice }, 'Invoice: a row per key'));
  const perSourceBox = h('input', { id: 'x-per-source', type: 'checkbox', checked: params.get('per_source') === 'true' });
  const unit = BYTE_UNITS.includes(params.get('bytes_unit')) ? params.get('bytes_unit') : 'B';
  const unitSel = h('select', { id: 'x-unit' }, BYTE_UNITS.map((u) => h('option', { value: u, selected: u === unit }, u)));
  // Downloads are for spreadsheets: Excel-safe unless unticked (the address keeps excel=0).
  const excelBox = h('input', { id: 'x-excel', type: 'checkbox', checked: params.get('excel') !== '0' });
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
    if (layoutSel.value === 'invoice') Object.assign(q, { layout: 'invoice', ...(unitSel.value !== 'B' ? { bytes_unit: unitSel.value } : {}) });
    if (perSourceBox.checked) q.per_source = 'true';
    if (modeSel.value === 'month') Object.assign(q, { period: month.value, tz: zoneSel.value });
    else Object.assign(q, { from: fmt.fromLocalInput(from.value), to: fmt.fromLocalInput(to.value) });
    return q;
  };
  const navigate = () => {
    const q = query();
    go('export', { ...q, mode: modeSel.value, ...(excelBox.checked ? {} : { excel: '0' }) });
  };
  for (const c of [tableSel, metricSel, layoutSel, perSourceBox, unitSel, excelBox, modeSel, month, zoneSel, from, to]) c.addEventListener('change', navigate);
  for (const f of mode === 'month' ? rangeFields : monthFields) f.hidden = true;

  const preview = h('div', { class: 'scroll', id: 'x-preview' }, loading('Loading preview…'));
  const status = h('span', { class: 'muted small', id: 'x-status', role: 'status' });
  const download = async (format) => {
    status.textContent = `Preparing ${format.toUpperCase()}…`;
    try {
      // Downloads are for spreadsheets: names that look like formulas are kept as text. The
      // preview and the script URL below use the exact bytes.
      const res = await request('/api/v1/export', { ...query(), format, ...(format === 'csv' && excelBox.checked ? { excel_safe: '1' } : {}) });
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
    h('form', { class: 'controls', onsubmit: (e) => e.preventDefault() }, field('x-layout', 'Layout', layoutSel), field('x-table', 'Table', tableSel), field('x-metric', 'Metric', metricSel), field('x-mode', 'Period', modeSel), monthFields, rangeFields,
      h('div', { class: 'field', hidden: !invoice }, h('label', { for: 'x-unit' }, 'Bytes in'), unitSel),
      h('div', { class: 'field' }, h('span', { class: 'label-gap' }, 'Options'),
        h('label', { class: 'check', for: 'x-per-source' }, perSourceBox, invoice ? ' A column per HAProxy node' : ' A row per HAProxy node'),
        h('label', { class: 'check', for: 'x-excel' }, excelBox, ' Excel-safe CSV download'))),
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
  } catch (err) { if (isCurrent(gen)) showError(err); return; }
  if (!isCurrent(gen)) return;
  preview.before(coverageNotice(gen, { id: 'x-coverage', period: q.period, tz: q.tz, from: q.from, to: q.to }));
  const [header = [], ...rows] = parseCsv(text).filter((r) => r.length > 1 || r[0]);
  if (invoice) {
    preview.replaceChildren(rows.length ? invoiceTable(header, rows) : h('p', { class: 'muted pad' }, 'No usage in this period.'));
    if (partial) preview.before(h('p', { class: 'small bad', id: 'x-partial' }, 'This period is not over yet: the totals are partial and will grow.'));
    if (rows.length > 500) preview.append(h('p', { class: 'muted small pad' }, `Showing 500 of ${fmt.int(rows.length)} keys; the download has them all.`));
    return;
  }
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
        h('td', { colspan: totalCol - leading }, `Total ${m}`),
        h('td', { class: 'num', title: fmt.isBytes(m) ? fmt.bytes(s) : undefined }, fmt.int(s)),
        // With a row per node, the source column follows the total.
        header.slice(totalCol + 1).map(() => h('td'))))))
    : h('p', { class: 'muted pad' }, 'No usage in this period.'));
  if (partial) preview.before(h('p', { class: 'small bad', id: 'x-partial' }, 'This period is not over yet: the totals are partial and will grow.'));
  if (rows.length > 500) preview.append(h('p', { class: 'muted small pad' }, `Showing 500 of ${fmt.int(rows.length)} rows; the download has them all.`));
}


// ---------------------------------------------------------------------------------------------

// What the pages in other modules need of this one.
function pageContext(gen) {
  return { main, isCurrent: () => isCurrent(gen), showError, go, tables, reload: route };
}

const PAGES = {
  overview: overviewPage, usage: usagePage, export: exportPage,
  key: (gen, params) => keyPage(gen, params, (table, key) => keyQuotaBox(pageContext(gen), table, key)),
  quotas: (gen, params) => quotasPage(pageContext(gen), params),
};

function route() {
  nav.generation++;
  for (const c of nav.cleanups) c();
  nav.cleanups = [];
  showError(null);
  const { route: name, params } = hashParams();
  const page = PAGES[name] || overviewPage;
  const navName = name === 'key' ? 'usage' : PAGES[name] ? name : 'overview';
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.nav === navName) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${{ overview: 'Overview', usage: 'Usage', key: 'Key', export: 'Billing export', quotas: 'Quotas' }[navName] || 'Overview'} · stickmeter`;
  const gen = nav.generation;
  Promise.resolve(page(gen, params)).catch((err) => { if (isCurrent(gen)) showError(err); })
    .finally(() => {
      if (!isCurrent(gen)) return;
      main.dataset.ready = name;
      performance.mark(`stickmeter:ready:${name}`); // lets tests and operators time a page's render
    });
}

// ---------------------------------------------------------------------------------------------
// The header: the billing zone, the theme and signing out.

// The server's billing zone (/api/v1/info) before the first page is drawn, so every month and
// time shown is the export's. When the server needs a token this is the call that asks for it,
// so the zone is read once the token is known. Unreachable: the offline state, and UTC until
// the server answers (the zone is read again then); a server without /api/v1/info: UTC.
const zoneLabel = document.getElementById('zone');
async function loadBillingZone() {
  try {
    const body = await getJson('/api/v1/info');
    if (body && typeof body.billing_tz === 'string') fmt.setZone(body.billing_tz);
  } catch { /* offline (shared.js shows it) or refused: keep the zone in use */ }
  zoneLabel.textContent = `Billing zone: ${fmt.zoneLabel()}`;
  zoneLabel.dataset.zone = fmt.zone;
}

// Light, dark or the system's, remembered in this browser.
const THEME_KEY = 'stickmeter.theme';
function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
const themeSel = document.getElementById('theme');
let storedTheme = 'system';
try { storedTheme = localStorage.getItem(THEME_KEY) || 'system'; } catch { /* storage off */ }
themeSel.value = ['light', 'dark'].includes(storedTheme) ? storedTheme : 'system';
applyTheme(themeSel.value);
themeSel.addEventListener('change', () => {
  try {
    if (themeSel.value === 'system') localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, themeSel.value);
  } catch { /* storage off: for this page only */ }
  applyTheme(themeSel.value);
});

// Sign out: shown while this tab holds a token; forgets it and what was read with it (the zone
// too), clears the page, asks for a token to read the zone again, then draws the page.
const signOutButton = document.getElementById('sign-out');
signOutButton.hidden = !hasToken();
onTokenChange((held) => { signOutButton.hidden = !held; });
signOutButton.addEventListener('click', async () => {
  signOut();
  forgetTables();
  zoneLabel.textContent = '';
  delete zoneLabel.dataset.zone;
  main.replaceChildren(loading());
  delete main.dataset.ready;
  await readZone();
  route();
});

// Pages are drawn once the zone has been read (a link followed while the token is asked for
// waits for it too).
let zoneRead = Promise.resolve();
function readZone() {
  zoneRead = loadBillingZone();
  return zoneRead;
}
window.addEventListener('hashchange', async () => { delete main.dataset.ready; await zoneRead; route(); });
// Back from offline: the current page is drawn again from fresh answers (and the zone re-read).
whenBackOnline(async () => { delete main.dataset.ready; await readZone(); route(); });
await readZone();
route();
