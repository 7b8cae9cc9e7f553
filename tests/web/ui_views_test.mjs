// Browser test of the UI's views a billing user relies on, against a real stickmeter and a real
// HAProxy pushing a table with counters and gauges (conn_cur, http_req_rate), driven by headless
// Chromium:
//   - the usage page opens on http_req_cnt, largest total first; the chosen sort and metric stay
//     across range changes and a reload (they live in the address);
//   - gauges are offered, marked, and a key's gauge is shown as its maximum per step, without
//     asking for a total or an audit trail;
//   - a misspelt key says "unknown key" (never a green check) and lists the keys that start
//     like it;
//   - the overview's ingest rate and per-peer Updates/s fill in, in updates;
//   - with the server gone the UI says it cannot be reached (no raw "Failed to fetch", peers
//     unknown, no endless "Loading…"), retries on its own and on Retry, and recovers.
//
// Usage: node ui_views_test.mjs --stickmeter BIN --node-modules DIR --artifacts DIR
import fs from 'node:fs';
import path from 'node:path';
import {
  HAPROXY, CHROMIUM, parseArgs, log, check, eq, stopProcess, httpGet, waitFor, sleep, runTest, tempDir,
  startStickmeter, startHaproxy, openBrowser, openPage,
} from './harness.mjs';

const CUSTOMERS = { 'acme.example': 30, 'globex.example': 12, 'initech.example': 5 };
const args = parseArgs(['stickmeter', 'node-modules', 'artifacts']);

async function main() {
  for (const f of [args.stickmeter, HAPROXY, CHROMIUM]) if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  fs.mkdirSync(args.artifacts, { recursive: true });
  const tmp = tempDir('views');
  const server = await startStickmeter(args.stickmeter, tmp);
  const apiPort = server.httpPort;
  let stickmeter = server.proc;
  const api = async (p) => {
    const r = await httpGet(apiPort, p);
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${r.body}`);
    return JSON.parse(r.body.toString());
  };

  const { proc: haproxy, fePort } = await startHaproxy(tmp, {
    name: 'lb1', peersPort: server.peersPort, section: 'tracker', frontend: true,
    tableLine: 'table quota type string len 64 size 10k expire 1h store gpc0,http_req_cnt,bytes_out_cnt,conn_cur,http_req_rate(10s)',
  });
  for (const [host, n] of Object.entries(CUSTOMERS)) {
    for (let i = 0; i < n; i++) {
      await httpGet(fePort, `/r/${i}`, { Host: host });
      if (i % 4 === 0) await sleep(15);
    }
  }
  const table = (await waitFor('the table', async () => (await api('/api/v1/tables')).tables[0], 15000)).name;
  const from = Date.now() - 3600_000;
  const to = Date.now() + 3600_000;
  const usage = async (metric) => (await api(`/api/v1/usage?${new URLSearchParams({ table, metric, from, to })}`)).rows;
  await waitFor('every request in the API', async () => {
    const got = Object.fromEntries((await usage('http_req_cnt')).map((r) => [r.key, r.total]));
    return Object.entries(CUSTOMERS).every(([k, n]) => got[k] === n);
  }, 20000);
  log('stickmeter and HAProxy up, traffic stored');

  const browser = await openBrowser(args['node-modules']);
  let offlinePhase = false; // refused connections are logged by Chromium while the server is down
  const { page, problems, ready, visit } = await openPage(browser, server.base, {},
    (text) => offlinePhase && /ERR_CONNECTION_REFUSED|Failed to load resource/.test(text));
  const requested = [];
  page.on('request', (r) => { if (r.url().includes('/api/')) requested.push(r.url()); });
  const keysShown = () => page.$$eval('#usage-rows tbody tr td:first-child', (tds) => tds.map((t) => t.textContent.trim()));
  const hashParam = async (name) => new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1] || '').get(name);
  const bannerText = async () => ((await page.isVisible('#banner')) ? await page.textContent('#banner') : '');

  // Defaults: http_req_cnt (not the alphabetically first bytes_out_cnt), largest total first.
  await visit('#/usage', 'usage');
  eq(await page.inputValue('#metric'), 'http_req_cnt', 'the usage page opens on http_req_cnt');
  const byTotal = (await usage('http_req_cnt')).sort((a, b) => b.total - a.total || a.key.localeCompare(b.key)).map((r) => r.key);
  eq(await keysShown(), byTotal, 'keys ordered by usage, largest first, by default');
  eq(await page.getAttribute('#usage-rows th:nth-child(2)', 'aria-sort'), 'descending', 'the total column is marked as the sort');
  // The chosen sort survives a range change, a metric change and a reload.
  await page.click('#usage-rows thead th:nth-child(1) button');
  const byKey = [...byTotal].sort();
  eq(await keysShown(), byKey, 'sorted by key after a click');
  await page.selectOption('#range', 'today');
  await page.waitForFunction(() => /range=today/.test(location.hash) && document.querySelector('main').dataset.ready === 'usage');
  eq([await hashParam('sort'), await hashParam('dir'), await page.inputValue('#metric')], ['key', 'asc', 'http_req_cnt'],
    'sort, order and metric kept in the address after a range change');
  eq(await keysShown(), byKey, 'still sorted by key after the range change');
  await page.selectOption('#metric', 'bytes_out_cnt');
  await page.waitForFunction(() => /metric=bytes_out_cnt/.test(location.hash) && document.querySelector('main').dataset.ready === 'usage');
  eq(await hashParam('sort'), 'key', 'sort kept after a metric change');
  await page.reload();
  await ready('usage');
  eq([await page.inputValue('#metric'), await page.inputValue('#range')], ['bytes_out_cnt', 'today'], 'metric and range kept by a reload');
  eq(await keysShown(), byKey, 'sort kept by a reload');
  await page.click('#usage-rows a.key-link:text-is("acme.example")');
  await ready('key');
  await page.click('main a[href^="#/usage"]');
  await ready('usage');
  eq([await hashParam('sort'), await keysShown()], ['key', byKey], 'a key page links back to the same sort');
  eq(problems, [], 'no console errors on the usage page');
  log('usage defaults and sort checked');

  // Gauges: offered and marked in the picker; a key's gauge is a maximum per step.
  const gaugeOptions = await page.$$eval('#metric optgroup', (groups) => groups.map((g) => [g.label, [...g.children].map((o) => o.textContent)]));
  check(gaugeOptions.some(([label, opts]) => /gauge/i.test(label) && opts.includes('conn_cur (gauge)') && opts.includes('http_req_rate (gauge)')),
    `gauges offered and marked in the metric picker: ${JSON.stringify(gaugeOptions)}`);
  await page.selectOption('#metric', 'http_req_rate');
  await page.waitForFunction(() => /metric=http_req_rate/.test(location.hash) && document.querySelector('main').dataset.ready === 'usage');
  check(/is a gauge/.test(await page.textContent('#gauge-note')), 'the usage page says the metric is a gauge');
  // Each key's peak and latest value in the period, as the usage API gives them for a gauge.
  const today = {
    from: await page.evaluate(() => new Date(new Date().setHours(0, 0, 0, 0)).getTime()),
    to: await page.evaluate(() => new Date(new Date().setHours(24, 0, 0, 0)).getTime()),
  };
  const gaugeUsage = async (agg) => (await api(`/api/v1/usage?${new URLSearchParams({ table, metric: 'http_req_rate', ...today, agg, order: 'total' })}`)).rows;
  const [peaks, latest] = [await gaugeUsage('max'), await gaugeUsage('last')];
  check(peaks.length > 0 && peaks[0].total > 0, `keys had a request rate: ${JSON.stringify(peaks)}`);
  await page.waitForSelector('#usage-rows td.peak');
  const gaugeRows = await page.$$eval('#usage-rows tbody tr', (trs) => trs.map((tr) => [tr.querySelector('a.key-link').textContent,
    Number(tr.querySelector('td.peak').dataset.value), Number(tr.querySelector('td.latest').dataset.value)]));
  eq(gaugeRows.map(([k, p]) => [k, p]), peaks.map((x) => [x.key, x.total]), 'a gauge lists each key\'s peak, largest first');
  const latestOf = Object.fromEntries(latest.map((x) => [x.key, x.total]));
  eq(gaugeRows.map(([k, , l]) => [k, l]), gaugeRows.map(([k]) => [k, latestOf[k] ?? 0]), 'and each key\'s latest value');
  eq(await bannerText(), '', 'no API error for a gauge on the usage page');
  requested.length = 0;
  await page.click('#usage-rows a.key-link:text-is("acme.example")');
  await ready('key');
  const series = await api(`/api/v1/series?${new URLSearchParams({ table, metric: 'http_req_rate', key: 'acme.example', from: await page.evaluate(() => new Date(new Date().setHours(0, 0, 0, 0)).getTime()), to: await page.evaluate(() => new Date(new Date().setHours(24, 0, 0, 0)).getTime()), step: '1h' })}`);
  eq(series.gauge, true, 'the series API marks http_req_rate as a gauge');
  const peak = Math.max(...series.points.map((p) => p.v));
  check(peak > 0, `acme.example had a request rate: ${JSON.stringify(series.points)}`);
  check(/Peak http_req_rate/.test(await page.textContent('#key-total-label')), 'the key page shows a peak, not a billed total');
  eq(Number(await page.getAttribute('#key-total', 'data-value')), peak, 'the peak is the largest maximum per step');
  eq(await page.$$eval('#key-chart rect.bar', (r) => r.length), series.points.length, 'one bar per step maximum');
  check(await page.isVisible('#key-gauge-note'), 'the key page says a gauge has no audit trail');
  check(!/\bnull\b|undefined/.test(await page.textContent('main')), 'no "null" or "undefined" shown on the gauge key page');
  eq(requested.filter((u) => /\/api\/v1\/(usage|audit)\?/.test(u)), [], 'no usage or audit call for a gauge');
  eq(await bannerText(), '', 'no API error on the gauge key page');
  await page.screenshot({ path: path.join(args.artifacts, 'views-gauge-key.png'), fullPage: true });
  // The same gauge as its last value per step: each node's value at the step's end, summed.
  await page.click('#key-agg button[data-agg="last"]');
  await page.waitForFunction(() => /agg=last/.test(location.hash) && document.querySelector('main').dataset.ready === 'key');
  await page.waitForSelector('#key-total:not(.loading)');
  const lastSeries = await api(`/api/v1/series?${new URLSearchParams({ table, metric: 'http_req_rate', key: 'acme.example', from: await page.evaluate(() => new Date(new Date().setHours(0, 0, 0, 0)).getTime()), to: await page.evaluate(() => new Date(new Date().setHours(24, 0, 0, 0)).getTime()), step: '1h', agg: 'last' })}`);
  eq(lastSeries.agg, 'last', 'the series API names the last value per step');
  check(lastSeries.points.length >= series.points.length, `every step from the first sample has a last value: ${JSON.stringify(lastSeries.points)}`);
  check(/Latest http_req_rate/.test(await page.textContent('#key-total-label')), 'the key page shows the latest value');
  eq(Number(await page.getAttribute('#key-total', 'data-value')), lastSeries.points[lastSeries.points.length - 1].v, 'the latest value is the last step\'s');
  eq(await page.$$eval('#key-chart rect.bar', (r) => r.length), lastSeries.points.length, 'one bar per step\'s last value');
  eq(await page.getAttribute('#key-agg button[data-agg="last"]', 'aria-pressed'), 'true', 'the Last button is pressed');
  eq(await bannerText(), '', 'no API error for the last value per step');
  log('gauges checked');

  // A misspelt key: "unknown key", keys that start like it, never a green check.
  await visit(`#/key?${new URLSearchParams({ table, key: 'acmee.example', metric: 'http_req_cnt', range: 'custom', from, to })}`, 'key');
  await page.waitForSelector('#key-similar');
  eq(await page.textContent('#key-total'), 'unknown key', 'the total says unknown key');
  const reconcile = await page.textContent('#key-reconcile');
  check(/Unknown key/.test(reconcile) && !/✓/.test(reconcile), `no green check for an unknown key: ${reconcile}`);
  check((await page.$$eval('#key-similar a', (as) => as.map((a) => a.textContent))).includes('acme.example'), 'keys starting like it are offered');
  eq(await bannerText(), '', 'the 404 is shown as unknown key, not as a raw API error');
  eq(problems.filter((p) => !/status of 404/.test(p)), [], 'no console errors on the unknown key page');
  problems.length = 0;
  await page.screenshot({ path: path.join(args.artifacts, 'views-unknown-key.png'), fullPage: true });
  log('unknown key checked');

  // Overview: rates fill in, in updates.
  await visit('#/overview', 'overview');
  await page.waitForFunction(() => /^[0-9.,]+ updates\/s$/.test(document.querySelector('#ov-card-rate .value')?.textContent || ''), null, { timeout: 6000 });
  await page.waitForFunction(() => [...document.querySelectorAll('#ov-peers tbody tr td:nth-child(7)')]
    .some((td) => /^[0-9.,]+$/.test(td.textContent.trim())), null, { timeout: 6000 });
  // The card is the sum of the peers' counts (polled: HAProxy may still be sending).
  await waitFor('Updates received = the sum of /api/v1/peers updates', async () => {
    const sum = (await api('/api/v1/peers')).peers.reduce((a, p) => a + p.updates, 0);
    return (await page.textContent('#ov-card-received .value')).replace(/[^0-9]/g, '') === String(sum);
  }, 12000);
  check(/ updates$/.test(await page.textContent('#ov-card-received .value')), 'updates received counted in updates');
  check(/^\d+ \/ \d+$/.test((await page.textContent('#ov-card-peers .value')).trim()), 'peers connected shown');
  log('overview rates checked');

  // The server goes away: a clear offline state, retries, recovery.
  offlinePhase = true;
  await stopProcess(stickmeter, 10000);
  await page.waitForSelector('#offline:not([hidden])', { timeout: 8000 });
  check(/cannot be reached/.test(await page.textContent('#offline')), 'the offline banner says the server cannot be reached');
  eq((await page.textContent('#ov-card-peers .value')).trim(), 'unknown', 'the peers indicator is unknown while offline');
  check(!/Failed to fetch/.test(await page.textContent('body')), 'no raw "Failed to fetch"');
  eq(await bannerText(), '', 'no raw error banner while offline');
  await page.screenshot({ path: path.join(args.artifacts, 'views-offline-overview.png'), fullPage: true });
  await page.evaluate(() => { location.hash = '#/usage'; });
  await ready('usage');
  check(!/Loading…/.test(await page.textContent('main')), 'no endless Loading… while offline');
  check(await page.isVisible('main .unreachable'), 'the page says the server is unreachable where it was loading');
  const before = await page.textContent('#offline-msg');
  await page.click('#offline-retry');
  await page.waitForFunction((b) => document.getElementById('offline-msg').textContent !== b, before, { timeout: 5000 });
  check(await page.isVisible('#offline'), 'Retry while the server is down keeps the offline state');
  // Back: Retry recovers at once.
  stickmeter = await server.restart();
  const t0 = Date.now();
  await page.click('#offline-retry');
  await page.waitForSelector('#offline', { state: 'hidden', timeout: 3000 });
  await ready('usage');
  check(Date.now() - t0 < 3000, 'Retry recovers at once');
  check((await keysShown()).length > 0, 'the usage page is drawn again after recovery');
  // Down again, then back without a click: the automatic retry recovers within its period.
  await stopProcess(stickmeter, 10000);
  await page.evaluate(() => { location.hash = '#/overview'; });
  await page.waitForSelector('#offline:not([hidden])', { timeout: 8000 });
  stickmeter = await server.restart();
  await page.waitForSelector('#offline', { state: 'hidden', timeout: 8000 });
  await ready('overview');
  check((await page.textContent('#ov-card-peers .value')).trim() !== 'unknown', 'the peers indicator is known again');
  offlinePhase = false;
  eq(problems, [], 'no console errors through the outage');
  log('offline state and recovery checked');

  await browser.close();
  await stopProcess(haproxy);
  eq(await stopProcess(stickmeter, 10000), { code: 0, signal: null }, 'stickmeter exits 0 on SIGTERM');
}

await runTest('views', 110_000, main);
