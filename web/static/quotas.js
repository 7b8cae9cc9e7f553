// Quotas: the page listing quotas and the keys they govern, with a form to add, change and delete
// them, and the quota standing shown on a key's page. Over-quota rows come first and stand out.
import { getJson, sendJson } from './api.js';
import * as fmt from './fmt.js';
import { h, field } from './dom.js';

const KEYS_SHOWN = 200;
// The keys asked for: the most used, or with the key filter that key's rows wherever it ranks.
const KEYS_FETCHED = 1000;

const ratio = (used, limit) => (BigInt(limit) === 0n ? Infinity : Number(used) / Number(limit));

// A usage bar (a <meter>, so no inline style is needed) with the percentage next to it.
export function usageBar(used, limit, label) {
  const r = ratio(used, limit);
  // Rounded down: 100% only once the limit is reached.
  const pct = Number.isFinite(r) ? `${fmt.int(Math.floor(r * 100))}%` : BigInt(used) > 0n ? '∞' : '–';
  const max = Math.max(Number(limit), 1);
  return h('span', { class: 'usage' },
    h('meter', { min: 0, max, low: max * 0.8, high: max * 0.999, optimum: 0, value: Math.min(Number(used), max),
      'aria-label': label || `${fmt.int(used)} of ${fmt.int(limit)}` }),
    h('span', { class: 'small' }, pct));
}

const periodText = (q) => `${q.period === 'day' ? 'day' : 'month'} · ${q.tz}`;
const keyCell = (q) => (q.key === null || q.key === undefined ? h('span', { class: 'tag' }, 'default') : h('code', {}, q.key));
const isOver = (q) => Boolean(q.over) || (q.key === null && Number(q.over_keys) > 0);

function disabledNote() {
  return h('p', { class: 'banner', id: 'q-disabled', role: 'status' },
    'Quotas are not enabled on this stickmeter. Start it with ',
    h('code', {}, 'stickmeter serve --quota /table'), ' (once per table) to set quotas that HAProxy enforces.');
}

// The JSON body of a PUT. The limit is written as typed (digits only), so a limit past 2^53 is
// not rounded; anything else goes as a string and the API names the problem.
function quotaBody(f) {
  const limitText = f.limit.trim();
  const limit = /^\d+$/.test(limitText) ? BigInt(limitText).toString() : JSON.stringify(limitText);
  // No zone typed: the server's billing zone (the API's default, and what the field starts on).
  const rest = JSON.stringify({ table: f.table.trim(), key: f.key === '' ? null : f.key, metric: f.metric.trim(),
    period: f.period, ...(f.tz.trim() ? { tz: f.tz.trim() } : {}) });
  return `${rest.slice(0, -1)},"limit":${limit}}`;
}

export async function quotasPage(ctx, params) {
  const { main, isCurrent, showError, go } = ctx;
  const table = params.get('table') || '';
  const key = params.get('key') || '';
  main.replaceChildren(h('h1', {}, 'Quotas'));
  let list, keys, tbls;
  try {
    [list, keys, tbls] = await Promise.all([
      getJson('/api/v1/quotas', { table, key: table ? key : '' }),
      getJson('/api/v1/quotas/keys', { table, key: table ? key : '', limit: KEYS_FETCHED }),
      ctx.tables().catch(() => []),
    ]);
  } catch (err) { if (isCurrent()) showError(err); return; }
  if (!isCurrent()) return;
  const enabled = list.enabled !== false;
  const quotas = (list.quotas || []).slice().sort((a, b) => (isOver(b) - isOver(a))
    || ratio(b.used, b.limit) - ratio(a.used, a.limit) || String(a.table).localeCompare(String(b.table)));

  // Filter by table and key (the key filter keeps the key's own quotas and its table's defaults).
  const tableNames = [...new Set([...tbls.map((t) => t.name), ...quotas.map((q) => q.table)])].sort();
  const tableSel = h('select', { id: 'q-filter-table' }, h('option', { value: '' }, 'All tables'),
    tableNames.map((n) => h('option', { value: n, selected: n === table }, n)));
  const keyFilter = h('input', { id: 'q-filter-key', type: 'search', placeholder: 'a key', value: key });
  const navigate = () => go('quotas', { table: tableSel.value, key: tableSel.value ? keyFilter.value : '' });
  tableSel.addEventListener('change', navigate);
  keyFilter.addEventListener('change', navigate);
  main.append(h('form', { class: 'controls', onsubmit: (e) => { e.preventDefault(); navigate(); } },
    field('q-filter-table', 'Table', tableSel), field('q-filter-key', 'Key (with a table)', keyFilter)));
  if (!enabled) main.append(disabledNote());

  // The form: add, or change (Edit fills it in).
  const counters = [...new Set(tbls.flatMap((t) => t.counter_metrics || []))].sort();
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  const f = {
    table: h('input', { id: 'q-table', list: 'q-tables', required: true, value: table }),
    key: h('input', { id: 'q-key', placeholder: 'empty = the table default', value: key }),
    metric: h('input', { id: 'q-metric', list: 'q-metrics', required: true, placeholder: 'http_req_cnt' }),
    limit: h('input', { id: 'q-limit', inputmode: 'numeric', required: true, placeholder: '0 or more' }),
    period: h('select', { id: 'q-period' }, h('option', { value: 'month' }, 'Calendar month'), h('option', { value: 'day' }, 'Day')),
    tz: h('input', { id: 'q-tz', list: 'q-zones', value: fmt.zone }),
  };
  const formError = h('p', { class: 'small bad', id: 'q-form-error', role: 'alert' });
  const formStatus = h('span', { class: 'muted small', id: 'q-form-status', role: 'status' });
  const save = h('button', { type: 'submit', class: 'primary', id: 'q-save' }, 'Save quota');
  const form = h('form', { class: 'controls', id: 'q-form' },
    h('datalist', { id: 'q-tables' }, tableNames.map((n) => h('option', { value: n }))),
    h('datalist', { id: 'q-metrics' }, counters.map((m) => h('option', { value: m }))),
    h('datalist', { id: 'q-zones' }, ['UTC', ...zones.filter((z) => z !== 'UTC')].map((z) => h('option', { value: z }))),
    field('q-table', 'Table', f.table), field('q-key', 'Key', f.key), field('q-metric', 'Metric', f.metric),
    field('q-limit', 'Limit', f.limit), field('q-period', 'Period', f.period), field('q-tz', 'Time zone', f.tz),
    h('div', { class: 'field' }, save));
  const edit = (q) => {
    f.table.value = q.table;
    f.key.value = q.key ?? '';
    f.metric.value = q.metric;
    f.limit.value = String(q.limit);
    f.period.value = q.period;
    f.tz.value = q.tz;
    formError.textContent = '';
    f.limit.focus();
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    formError.textContent = '';
    formStatus.textContent = 'Saving…';
    save.disabled = true;
    const values = Object.fromEntries(Object.entries(f).map(([k, c]) => [k, c.value]));
    try {
      const saved = await sendJson('PUT', '/api/v1/quotas', {}, quotaBody(values));
      if (!isCurrent()) return;
      formStatus.textContent = `Saved: ${saved.table} ${saved.key ?? '(default)'} ${saved.metric} ≤ ${fmt.int(saved.limit)} per ${saved.period}.`;
      ctx.reload();
    } catch (err) {
      formStatus.textContent = '';
      formError.textContent = err.detail || err.message;
    } finally {
      save.disabled = false;
    }
  });

  const remove = async (q) => {
    const what = `${q.table} ${q.key === null ? '(the table default)' : q.key} ${q.metric}`;
    if (!window.confirm(`Delete the quota ${what}?`)) return;
    try {
      await sendJson('DELETE', '/api/v1/quotas', { table: q.table, metric: q.metric, key: q.key ?? '' });
      if (isCurrent()) ctx.reload();
    } catch (err) { if (isCurrent()) showError(err); }
  };

  const quotaRows = quotas.map((q) => h('tr', { class: isOver(q) ? 'over' : undefined, dataset: { over: String(isOver(q)) } },
    h('td', {}, q.table), h('td', {}, keyCell(q)), h('td', {}, q.metric),
    h('td', { class: 'hide-sm nowrap', title: `${fmt.day(Number(q.period_start))} – ${fmt.day(Number(q.period_end) - 1)}` }, periodText(q)),
    h('td', { class: 'num', dataset: { value: String(q.limit) } }, fmt.int(q.limit)),
    q.key === null
      ? [h('td', { class: 'num', dataset: { overKeys: String(q.over_keys ?? 0) } },
        `${fmt.int(q.over_keys ?? 0)} key${Number(q.over_keys) === 1 ? '' : 's'} over`), h('td', {})]
      : [h('td', { class: 'num', dataset: { value: String(q.used) } }, fmt.int(q.used)),
        h('td', { class: 'nowrap' }, usageBar(q.used, q.limit, `${q.key}: ${fmt.int(q.used)} of ${fmt.int(q.limit)}`))],
    h('td', { class: 'nowrap' },
      h('button', { type: 'button', class: 'q-edit', 'aria-label': `Edit ${q.table} ${q.key ?? 'default'} ${q.metric}`, onclick: () => edit(q) }, 'Edit'), ' ',
      h('button', { type: 'button', class: 'q-delete', 'aria-label': `Delete ${q.table} ${q.key ?? 'default'} ${q.metric}`, onclick: () => remove(q) }, 'Delete'))));
  main.append(
    h('div', { class: 'scroll', id: 'q-list' }, quotas.length
      ? h('table', { id: 'q-rows' }, h('thead', {}, h('tr', {}, h('th', {}, 'Table'), h('th', {}, 'Key'), h('th', {}, 'Metric'),
        h('th', { class: 'hide-sm' }, 'Period'), h('th', { class: 'num' }, 'Limit'), h('th', { class: 'num' }, 'Used'),
        h('th', {}, 'Usage'), h('th', { 'aria-label': 'Actions' }))), h('tbody', {}, quotaRows))
      : h('p', { class: 'muted pad' }, enabled ? 'No quota yet: add one below.' : 'No quotas.')),
    h('h2', {}, 'Add or change a quota'),
    h('p', { class: 'muted small' }, 'A quota with an empty key is the table default: it governs every key without a quota of its own for that metric. A key is over quota once its usage in the period reaches the limit.'),
    form, h('div', { class: 'row-actions' }, formStatus), formError);

  // The keys against their quotas, over first, as the API orders them. There may be more than it
  // gave: it stopped at the limit asked for, or at its byte budget (truncated).
  const rows = keys.keys || [];
  const more = rows.length >= KEYS_FETCHED || keys.truncated;
  const keyLink = (k) => `#/key?${new URLSearchParams({ table: k.table, key: k.key, metric: k.metric })}`;
  main.append(h('h2', {}, 'Keys'),
    h('div', { class: 'scroll', id: 'q-keys' }, rows.length
      ? h('table', { id: 'q-key-rows' }, h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', { class: 'hide-sm' }, 'Table'),
        h('th', {}, 'Metric'), h('th', { class: 'num' }, 'Used'), h('th', { class: 'num' }, 'Limit'), h('th', {}, 'Usage'))),
      h('tbody', {}, rows.slice(0, KEYS_SHOWN).map((k) => h('tr', { class: k.over ? 'over' : undefined, dataset: { over: String(Boolean(k.over)) } },
        h('td', {}, h('a', { href: keyLink(k) }, String(k.key))), h('td', { class: 'hide-sm' }, k.table), h('td', {}, k.metric),
        h('td', { class: 'num', dataset: { value: String(k.used) } }, fmt.int(k.used)),
        h('td', { class: 'num' }, fmt.int(k.limit), k.default ? ' ' : '', k.default ? h('span', { class: 'tag', title: "the table's default" }, 'default') : null),
        h('td', { class: 'nowrap' }, usageBar(k.used, k.limit, `${k.key}: ${fmt.int(k.used)} of ${fmt.int(k.limit)}`))))))
      : h('p', { class: 'muted pad' }, 'No key is governed by a quota yet.')),
    rows.length > KEYS_SHOWN || more ? h('p', { class: 'muted small', id: 'q-keys-more' },
      `Showing ${fmt.int(Math.min(rows.length, KEYS_SHOWN))} of ${fmt.int(rows.length)}${more ? ' or more' : ''} keys, the most used first${more ? '; filter by table and key to find one' : ''}.`) : '');
}

// The quota standing of one key, for its page: each quota that governs it (its own, else the
// table's default, whose usage for this key is read from /api/v1/usage over the quota's period).
export function keyQuotaBox(ctx, table, key) {
  const box = h('div', { id: 'key-quota', class: 'small' });
  const link = h('a', { href: `#/quotas?${new URLSearchParams({ table, key })}` }, 'Quotas of this key');
  const load = async () => {
    const list = await getJson('/api/v1/quotas', { table, key });
    if (list.enabled === false) return;
    const all = list.quotas || [];
    const own = new Set(all.filter((q) => q.key !== null).map((q) => q.metric));
    const governing = all.filter((q) => q.key !== null || !own.has(q.metric));
    const lines = await Promise.all(governing.map(async (q) => {
      let { used } = q;
      if (q.key === null) {
        const u = await getJson('/api/v1/usage', { table, metric: q.metric, key, from: q.period_start, to: q.period_end });
        const row = (u.rows || []).find((x) => String(x.key) === key);
        used = row ? row.total : 0;
      }
      const over = BigInt(used) >= BigInt(q.limit);
      return h('div', { class: `quota-line${over ? ' over' : ''}`, dataset: { over: String(over), metric: q.metric } },
        h('span', {}, `${q.metric}: ${fmt.int(used)} of ${fmt.int(q.limit)} ${q.period === 'day' ? 'today' : 'this month'} (${q.tz})${q.key === null ? ", the table's default" : ''}`),
        usageBar(used, q.limit), over ? h('strong', { class: 'bad' }, 'over quota') : null);
    }));
    if (!ctx.isCurrent()) return;
    box.replaceChildren(lines.length ? h('div', {}, ...lines) : h('span', { class: 'muted' }, 'No quota governs this key. '), link);
  };
  load().catch((err) => {
    if (!ctx.isCurrent()) return;
    // An unreachable server has its own banner; an unknown key is said by the key's page.
    if (err.offline) ctx.showError(err);
    else if (!(err.status === 404 && /^key:/.test(err.detail || ''))) box.replaceChildren(h('span', { class: 'bad' }, `Quota: ${err.message}`));
  });
  return box;
}
