// Browser test of stickmeter's web UI against the real thing: a stickmeter started with a token,
// a Debian HAProxy pushing a stick table to it over the peers protocol, a known number of HTTP
// requests per customer, and headless Chromium (the system's, through playwright-core) driving
// every page. Checks that pages load without console errors, that the totals shown equal the
// API's and the requests sent, that the audit trail adds up to the billed total, and that the CSV
// download equals the export endpoint's bytes, and that the invoice layout downloaded from the UI
// equals the API's and `stickmeter export`'s bytes, with the display names of --key-names, which
// the usage rows and the key page show too. Screenshots of each page at laptop and phone width
// are written to --artifacts.
//
// Usage: node ui_test.mjs --stickmeter BIN --source REPO --node-modules DIR --artifacts DIR
// Bounded: everything stops after 85 s; processes and the temp dir are always cleaned up.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import {
  HAPROXY, CHROMIUM, parseArgs, log, counts, check, eq, stopProcess, httpGet, waitFor, sleep, runTest, tempDir,
  startStickmeter, startHaproxy, openBrowser, openPage,
} from './harness.mjs';

const TOKEN = 'web-ui-test-token-0123456789';
// Requests sent per customer (Host header); `billable` of them hit /billable and bump gpc0.
const CUSTOMERS = {
  'acme.example': { requests: 64, billable: 20 },
  'globex.example': { requests: 12, billable: 0 },
  'initech.example': { requests: 5, billable: 5 },
};
const args = parseArgs(['stickmeter', 'source', 'node-modules', 'artifacts']);
const started = Date.now();

// ---------------------------------------------------------------------------------------------
// The API from node, with the token.

let apiPort = 0;
async function api(urlPath) {
  const res = await httpGet(apiPort, urlPath, { Authorization: `Bearer ${TOKEN}` });
  if (res.status !== 200) throw new Error(`GET ${urlPath}: ${res.status} ${res.body.toString().slice(0, 300)}`);
  return res;
}
const apiJson = async (urlPath) => JSON.parse((await api(urlPath)).body.toString());
// A write with a JSON body; resolves to { status, body (parsed JSON or null) }.
function apiSend(method, urlPath, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? '' : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port: apiPort, path: urlPath, method, agent: false,
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null });
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}
const q = (params) => new URLSearchParams(params).toString();
// The cells of one CSV line (RFC 4180 quotes; no line breaks inside cells here).
function parseCsvLine(line) {
  const cells = [];
  let cell = '', quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { cells.push(cell); cell = ''; } else cell += c;
  }
  cells.push(cell);
  return cells;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  for (const f of [args.stickmeter, HAPROXY, CHROMIUM]) {
    if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  }
  fs.mkdirSync(args.artifacts, { recursive: true });

  // 1. stickmeter, with a token so the UI's token prompt is exercised.
  const tmp = tempDir('web');
  fs.writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  // Quotas on the table HAProxy sends (as "/quota"), when this stickmeter has --quota.
  const serveHelp = spawnSync(args.stickmeter, ['serve', '--help'], { encoding: 'utf8', timeout: 5000 });
  const quotaArgs = /--quota\b/.test(`${serveHelp.stdout}${serveHelp.stderr}`) ? ['--quota', '/quota'] : [];
  // Display names of two customers (one a formula, kept as text in Excel-safe downloads).
  const namesFile = path.join(tmp, 'names.csv');
  fs.writeFileSync(namesFile, 'table,key,name\r\n/quota,acme.example,"Acme, Inc."\r\n/quota,initech.example,=Initech\r\n');
  const server = await startStickmeter(args.stickmeter, tmp, ['--token-file', path.join(tmp, 'token'), '--key-names', namesFile, ...quotaArgs]);
  const stickmeter = server.proc;
  const peersPort = server.peersPort;
  apiPort = server.httpPort;
  log(`stickmeter up: http ${apiPort}, peers ${peersPort}`);

  // 2. HAProxy, pushing the `quota` table to stickmeter.
  const { proc: haproxy, fePort } = await startHaproxy(tmp, {
    name: 'lb1', peersPort, section: 'tracker', frontend: true,
    tableLine: 'table quota type string len 64 size 10k expire 1h store gpc0,http_req_cnt,bytes_out_cnt',
    rules: ['http-request sc-inc-gpc0(0) if { path_beg /billable }'],
  });
  // The probe above was counted too: it is a customer of its own.
  const expected = { 'probe.invalid': { http_req_cnt: 1, gpc0: 0 } };
  log(`haproxy up: frontend ${fePort}`);

  // 3. Known traffic. Small pauses let HAProxy push several updates per key, so the audit trail
  // has many events.
  for (const [host, c] of Object.entries(CUSTOMERS)) {
    for (let i = 0; i < c.requests; i++) {
      const r = await httpGet(fePort, i < c.billable ? `/billable/${i}` : `/free/${i}`, { Host: host });
      if (r.status !== 200) throw new Error(`HAProxy answered ${r.status} to request ${i} for ${host}`);
      if (i % 4 === 0) await sleep(15);
    }
    expected[host] = { http_req_cnt: c.requests, gpc0: c.billable };
  }
  log('traffic sent', JSON.stringify(expected));

  const tables = await waitFor('the quota table in /api/v1/tables', async () => {
    const t = (await apiJson('/api/v1/tables')).tables;
    return t.length ? t : null;
  }, 15000);
  const table = tables.find((t) => t.name.endsWith('quota'))?.name;
  check(table, `a quota table in ${JSON.stringify(tables)}`);
  const rangeFrom = started - 3600_000;
  const rangeTo = Date.now() + 3600_000;
  const usage = async (metric, extra = {}) =>
    (await apiJson(`/api/v1/usage?${q({ table, metric, from: rangeFrom, to: rangeTo, ...extra })}`)).rows;
  await waitFor('the API to show every request sent', async () => {
    const rows = await usage('http_req_cnt');
    const got = Object.fromEntries(rows.map((r) => [r.key, r.total]));
    return Object.entries(expected).every(([k, v]) => got[k] === v.http_req_cnt);
  }, 20000);
  const gpc0Rows = await usage('gpc0');
  eq(Object.fromEntries(gpc0Rows.map((r) => [r.key, r.total])),
    Object.fromEntries(Object.entries(expected).filter(([, v]) => v.gpc0 > 0).map(([k, v]) => [k, v.gpc0])),
    'gpc0 totals per key in the API');
  log('API shows the traffic');

  // 4. The browser.
  const browser = await openBrowser(args['node-modules']);
  let allow401 = true; // the token prompt's 401 shows up as a failed resource load, once
  const { page, problems, ready, visit } = await openPage(browser, `http://127.0.0.1:${apiPort}`,
    { acceptDownloads: true }, (text) => allow401 && /status of 401/.test(text));
  const base = `http://127.0.0.1:${apiPort}`;
  const noProblems = async (where) => {
    eq(problems, [], `no console errors on ${where}`);
    // Keyboard and screen-reader basics: every control has a label, every button a name.
    const unlabeled = await page.$$eval('main input, main select, main button, dialog input', (els) => els
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
      .map((e) => e.outerHTML.slice(0, 80)));
    eq(unlabeled, [], `every control on ${where} has a label`);
  };
  const shoot = async (name) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.screenshot({ path: path.join(args.artifacts, `${name}-laptop.png`), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(args.artifacts, `${name}-phone.png`), fullPage: true });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${name}: no horizontal page scroll at phone width (overflow ${overflow}px)`);
    await page.setViewportSize({ width: 1280, height: 800 });
  };
  const digits = (s) => Number(String(s).replace(/[^0-9]/g, ''));

  // Token prompt: the API answers 401 until the token is given.
  const first = await page.goto(`${base}/#/overview`);
  // The UI runs under its Content-Security-Policy (no inline code or style: a violation would
  // show as a console error below) and may not be framed.
  const firstHeaders = await first.allHeaders();
  check(/script-src 'self'/.test(firstHeaders['content-security-policy'] || '') && /frame-ancestors 'none'/.test(firstHeaders['content-security-policy']),
    `the UI is served with its Content-Security-Policy: ${firstHeaders['content-security-policy']}`);
  eq(firstHeaders['x-frame-options'], 'DENY', 'the UI may not be framed');
  await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
  await page.screenshot({ path: path.join(args.artifacts, 'token-prompt-laptop.png') });
  // A wrong token is refused and asked again.
  await page.fill('#token-input', 'not-the-token-0000000000');
  await page.press('#token-input', 'Enter');
  await page.waitForFunction(() => document.getElementById('token-dialog').open &&
    /not accepted/.test(document.getElementById('token-msg').textContent), null, { timeout: 10000 });
  counts.passed++;
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await ready('overview');
  check(!(await page.isVisible('#token-dialog[open]')), 'token dialog closes once the token is accepted');
  eq(await page.evaluate(() => sessionStorage.getItem('stickmeter.token')), TOKEN, 'token kept in sessionStorage');
  allow401 = false;
  log('token prompt answered');

  // Overview.
  await page.reload();
  await ready('overview');
  const peers = (await apiJson('/api/v1/peers')).peers;
  const lb1 = peers.find((p) => p.name === 'lb1');
  check(lb1 && lb1.connected, `lb1 connected in /api/v1/peers: ${JSON.stringify(peers)}`);
  const peerRows = await page.$$eval('#ov-peers tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
  check(peerRows.some((r) => r[0] === 'lb1' && r[2] === lb1.address), `overview lists peer lb1 at ${lb1.address}: ${JSON.stringify(peerRows)}`);
  const tableRows = await page.$$eval('#ov-tables tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
  check(tableRows.some((r) => r[0] === table && /string/.test(r[1]) && /http_req_cnt/.test(r[3]) && /lb1/.test(r[4])),
    `overview lists table ${table} with its key type, data types and source: ${JSON.stringify(tableRows)}`);
  // Updates/s appears after the second poll.
  await page.waitForFunction(() => [...document.querySelectorAll('#ov-peers tbody tr td:nth-child(7)')]
    .some((td) => /^[0-9.,]+$/.test(td.textContent.trim())), null, { timeout: 15000 });
  await noProblems('overview');
  await shoot('overview');
  log('overview checked');

  // Keyboard: Tab reaches the navigation, Enter follows it.
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  let tabs = 0;
  while (tabs < 12 && !(await page.evaluate(() => document.activeElement?.dataset?.nav === 'usage'))) {
    await page.keyboard.press('Tab');
    tabs++;
  }
  check(tabs < 12, 'the Usage link is reachable with Tab');
  await page.keyboard.press('Enter');
  await ready('usage');
  check((await page.evaluate(() => location.hash)).startsWith('#/usage'), 'Enter on the Usage link opens the usage page');

  // Usage: explicit range so the comparison with the API is exact, sorted by key like the API
  // (the page opens by total, largest first: ui_views_test.mjs).
  await visit(`#/usage?${q({ table, metric: 'http_req_cnt', range: 'custom', from: rangeFrom, to: rangeTo, sort: 'key', dir: 'asc' })}`, 'usage');
  // Time to a rendered page on a cold load (empty cache; reported in the artifacts, not asserted).
  const cold = await browser.newContext({ viewport: { width: 1280, height: 800 }, extraHTTPHeaders: { Authorization: `Bearer ${TOKEN}` } });
  const coldPage = await cold.newPage();
  await coldPage.goto(page.url());
  await coldPage.waitForSelector('main[data-ready="usage"]', { timeout: 10000 });
  const timing = await coldPage.evaluate(() => ({
    ready_ms: Math.round(performance.getEntriesByName('stickmeter:ready:usage').at(-1).startTime),
    dom_content_loaded_ms: Math.round(performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd),
    ui_transfer_bytes: performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))
      .filter((e) => !e.name.includes('/api/')).reduce((a, e) => a + e.transferSize, 0),
  }));
  await cold.close();
  fs.writeFileSync(path.join(args.artifacts, 'timing.json'), `${JSON.stringify(timing, null, 2)}\n`);
  log(`usage page, cold load: ${JSON.stringify(timing)}`);
  const apiRows = await usage('http_req_cnt');
  const shown = await page.$$eval('#usage-rows tbody tr', (trs) => trs.map((tr) => ({
    key: tr.cells[0].querySelector('a').textContent.trim(), name: tr.cells[0].querySelector('.key-name')?.textContent ?? null, text: tr.cells[1].textContent.trim(), value: Number(tr.cells[1].dataset.value),
  })));
  eq(shown.map((r) => [r.key, r.value]), apiRows.map((r) => [r.key, r.total]), 'usage rows shown = /api/v1/usage rows');
  eq(shown.map((r) => digits(r.text)), apiRows.map((r) => r.total), 'usage totals as displayed = API totals');
  check(shown.some((r) => r.key === 'acme.example' && r.text === '64'), 'acme.example shows 64 requests');
  eq(shown.filter((r) => r.name).map((r) => [r.key, r.name]), [['acme.example', 'Acme, Inc.'], ['initech.example', '=Initech']],
    'the usage rows show the display names of --key-names');
  const apiSum = apiRows.reduce((a, r) => a + r.total, 0);
  eq(digits(await page.textContent('#usage-total')), apiSum, 'usage grand total = sum of API totals');
  // Sort by total (descending first) and filter.
  await page.click('#usage-rows thead th:nth-child(2) button');
  const sortedKeys = await page.$$eval('#usage-rows tbody tr td:first-child a.key-link', (tds) => tds.map((t) => t.textContent.trim()));
  eq(sortedKeys, [...apiRows].sort((a, b) => b.total - a.total || a.key.localeCompare(b.key)).map((r) => r.key), 'sorted by total, descending');
  await page.fill('#filter', 'glob');
  eq(await page.$$eval('#usage-rows tbody tr td:first-child a.key-link', (tds) => tds.map((t) => t.textContent.trim())), ['globex.example'], 'filter keeps matching keys');
  eq(digits(await page.textContent('#usage-total')), 12, 'filtered total');
  await page.fill('#filter', 'inc.');
  eq(await page.$$eval('#usage-rows tbody tr td:first-child a.key-link', (tds) => tds.map((t) => t.textContent.trim())), ['acme.example'], 'the filter finds a key by its name');
  await page.fill('#filter', '');
  await noProblems('usage');
  await shoot('usage');
  // The presets render too (their range is the browser's; only check that they load cleanly).
  await page.selectOption('#range', 'today');
  await page.waitForFunction(() => /range=today/.test(location.hash) && document.querySelector('main').dataset.ready === 'usage');
  await noProblems('usage (today)');
  // Top customers: the server's ranking (order=total), one page at a time.
  const ranked = (await apiJson(`/api/v1/usage?${q({ table, metric: 'http_req_cnt', from: rangeFrom, to: rangeTo, order: 'total', limit: 100 })}`)).rows;
  const keysShown = () => page.$$eval('#usage-rows tbody tr td:first-child a.key-link', (tds) => tds.map((t) => t.textContent.trim()));
  await visit(`#/usage?${q({ table, metric: 'http_req_cnt', range: 'custom', from: rangeFrom, to: rangeTo })}`, 'usage');
  await page.selectOption('#show', 'top');
  await page.waitForFunction(() => /show=top/.test(location.hash) && document.querySelector('main').dataset.ready === 'usage');
  eq(await keysShown(), ranked.map((r) => r.key), 'top view = the API ranking by total');
  check(ranked.length >= 2, 'enough keys to page');
  await visit(`#/usage?${q({ table, metric: 'http_req_cnt', range: 'custom', from: rangeFrom, to: rangeTo, show: 'top', offset: 1 })}`, 'usage');
  eq(await keysShown(), ranked.slice(1).map((r) => r.key), 'offset=1 starts at the second key');
  check((await page.$('#usage-prev')) !== null, 'a later page links to the previous one');
  check((await page.$('#usage-next')) === null, 'the last page has no next link');
  await page.click('#usage-prev');
  await page.waitForFunction(() => /offset=0/.test(location.hash) && document.querySelector('main').dataset.ready === 'usage');
  eq(await keysShown(), ranked.map((r) => r.key), 'previous goes back to the first page');
  await noProblems('usage (top)');
  log('usage checked');

  // Key detail: billed total, chart and the audit trail adding up to it.
  await visit(`#/usage?${q({ table, metric: 'http_req_cnt', range: 'custom', from: rangeFrom, to: rangeTo })}`, 'usage');
  await page.click('#usage-rows a.key-link:text-is("acme.example")');
  await ready('key');
  eq(Number(await page.getAttribute('#key-total', 'data-value')), 64, 'key page billed total');
  eq(digits(await page.textContent('#key-total')), 64, 'key page billed total as displayed');
  await page.waitForFunction(() => document.getElementById('key-name').textContent === 'Acme, Inc.', null, { timeout: 5000 });
  counts.passed++;
  await page.click('button[aria-pressed]:text-is("1m")');
  await page.waitForFunction(() => /step=1m/.test(location.hash) && document.querySelector('main').dataset.ready === 'key');
  const series = await apiJson(`/api/v1/series?${q({ table, metric: 'http_req_cnt', key: 'acme.example', from: rangeFrom, to: rangeTo, step: '1m' })}`);
  eq(series.points.reduce((a, p) => a + p.v, 0), 64, 'series points add up to the requests');
  eq(await page.$$eval('#key-chart rect.bar', (r) => r.length), series.points.length, 'one bar per series point');
  const audit = [];
  for (let next = null; ;) {
    const body = await apiJson(`/api/v1/audit?${q({ table, key: 'acme.example', metric: 'http_req_cnt', from: rangeFrom, to: rangeTo, limit: 1000, ...(next ? { after: next } : {}) })}`);
    audit.push(...body.events);
    if (!body.next) break;
    next = body.next;
  }
  // The trail one server page at a time: every event once, in order, each page's sum its own.
  const auditShown = [];
  let pages = 0;
  let pageSums = 0;
  for (;;) {
    await page.waitForSelector('#audit-rows');
    const rows = await page.$$eval('#audit-rows tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
    auditShown.push(...rows);
    pageSums += Number(await page.getAttribute('#audit-sum', 'data-value'));
    pages++;
    check(pages < 50, 'audit paging ends');
    if (await page.isDisabled('#audit-next')) break;
    const label = await page.textContent('#audit-page');
    await page.click('#audit-next');
    await page.waitForFunction((before) => document.getElementById('audit-page').textContent !== before, label);
  }
  eq(auditShown.length, audit.length, 'every audit event of the key is listed');
  eq(auditShown.map((r) => [r[1], digits(r[3]), digits(r[4]), r[5]]), audit.map((e) => [e.source, e.value, e.delta, e.reason]),
    'audit rows = /api/v1/audit events (source, value, delta, reason)');
  eq(pageSums, 64, "the pages' sums of deltas add up to the billed total");
  // Subtotals per node and per day, each adding up to the total, and saying so.
  await page.waitForSelector('#key-nodes');
  const footSum = (id) => page.$eval(`#${id} tfoot td[data-value]`, (td) => Number(td.dataset.value));
  eq([await footSum('key-nodes'), await footSum('key-days')], [64, 64], 'the node and daily subtotals add up to the billed total');
  eq(await page.$$eval('#key-nodes tbody td:first-child', (tds) => tds.map((td) => td.textContent)), ['lb1'], 'one node sent them');
  check(/✓/.test(await page.textContent('#key-reconcile')), 'the page states that the subtotals add up to the billed total');
  // The whole trail as CSV: the API's events, exactly.
  const [auditFile] = await Promise.all([page.waitForEvent('download'), page.click('#audit-csv')]);
  const auditCsv = fs.readFileSync(await auditFile.path(), 'utf8').trimEnd().split('\r\n');
  eq(auditCsv[0], 'time_utc,t_ms,source,metric,value,delta,reason', 'the audit CSV header');
  eq(auditCsv.slice(1), audit.map((e) => [new Date(e.t).toISOString(), e.t, e.source, e.metric, e.value, e.delta, e.reason].join(',')),
    'the audit CSV holds every event of the period');
  log(`key page checked (${audit.length} audit events, ${pages} page(s))`);
  await noProblems('key detail');
  await shoot('key');

  // Billing export: preview and CSV download, byte for byte.
  const now = new Date();
  const period = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, '0')}`;
  await visit(`#/export?${q({ table, mode: 'month', period, tz: 'UTC' })}`, 'export');
  const exportPath = `/api/v1/export?${q({ table, period, tz: 'UTC', format: 'csv' })}`;
  const csv = (await api(exportPath)).body;
  const csvLines = csv.toString().trim().split(/\r?\n/);
  eq(csvLines[0], 'period_start,period_end,table,key,metric,total', 'CSV header');
  const previewRows = await page.$$eval('#x-rows tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.dataset.value ?? td.textContent.trim()).join(',')));
  eq(previewRows, csvLines.slice(1).map((l) => l.replace(/"/g, '')), 'preview rows = export CSV rows');
  const reqLine = csvLines.find((l) => l.includes(',acme.example,http_req_cnt,'));
  check(reqLine && reqLine.endsWith(',64'), `export has acme.example http_req_cnt 64: ${reqLine}`);
  // The download is the Excel-safe form (formula-like names kept as text); the preview above is
  // the exact form.
  const excelPath = `/api/v1/export?${q({ table, period, tz: 'UTC', format: 'csv', excel_safe: '1' })}`;
  const excelCsv = (await api(excelPath)).body;
  const [download, downloadRequest] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }),
    page.waitForRequest((r) => r.url().includes('/api/v1/export') && r.url().includes('format=csv'), { timeout: 10000 }),
    page.click('#x-csv')]);
  check(new URL(downloadRequest.url()).searchParams.get('excel_safe') === '1', `the CSV download asks for excel_safe=1: ${downloadRequest.url()}`);
  const downloaded = fs.readFileSync(await download.path());
  check(Buffer.compare(downloaded, excelCsv) === 0,
    `downloaded CSV (${downloaded.length} bytes, ${download.suggestedFilename()}) = GET ${excelPath} (${excelCsv.length} bytes)`);
  fs.writeFileSync(path.join(args.artifacts, 'export.csv'), downloaded);
  await page.waitForFunction(() => /Downloaded/.test(document.getElementById('x-status').textContent));
  const jsonPath = `/api/v1/export?${q({ table, period, tz: 'UTC', format: 'json' })}`;
  const jsonBody = (await api(jsonPath)).body;
  const [jsonDownload] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#x-json')]);
  const jsonDownloaded = fs.readFileSync(await jsonDownload.path());
  // This month is still running: its coverage runs up to the moment of each request, the one
  // part of the two bodies that may differ.
  const withoutNow = (buf) => {
    const o = JSON.parse(buf.toString());
    return JSON.stringify({ ...o, coverage: o.coverage.status });
  };
  check(withoutNow(jsonDownloaded) === withoutNow(jsonBody), `downloaded JSON (${jsonDownloaded.length} bytes) = GET ${jsonPath} (${jsonBody.length} bytes)`);
  await noProblems('billing export');
  await shoot('export');
  log('export checked');
  // From/to mode: the preview follows the chosen range (the traffic above is inside it).
  await page.selectOption('#x-mode', 'range');
  await page.waitForFunction(() => /mode=range/.test(location.hash) && document.querySelector('main').dataset.ready === 'export');
  check(await page.isVisible('#x-from') && !(await page.isVisible('#x-period')), 'from/to fields replace the month fields');
  await page.fill('#x-from', await page.evaluate((ms) => { const d = new Date(ms); const p = (n) => String(n).padStart(2, '0'); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; }, rangeFrom));
  await page.dispatchEvent('#x-from', 'change');
  await page.fill('#x-to', await page.evaluate((ms) => { const d = new Date(ms); const p = (n) => String(n).padStart(2, '0'); return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; }, rangeTo));
  await page.dispatchEvent('#x-to', 'change');
  await page.waitForFunction((to) => location.hash.includes(`to=${to}`) && document.querySelector('main').dataset.ready === 'export' &&
    document.querySelector('#x-rows'), Math.floor(rangeTo / 60000) * 60000);
  const rangeRows = await page.$$eval('#x-rows tbody tr', (trs) => trs.map((tr) => [...tr.cells].slice(2).map((td) => td.dataset.value ?? td.textContent.trim()).join(',')));
  eq(rangeRows, csvLines.slice(1).map((l) => l.split(',').slice(2).join(',')), 'from/to preview has the same keys and totals as the month');
  await noProblems('billing export (from/to)');

  // The invoice layout: a row per customer, a column per metric and per node, bytes in kB and
  // the display names; the download equals the API's bytes and `stickmeter export`'s.
  const invoiceQuery = { table, period, tz: 'UTC', layout: 'invoice', per_source: 'true', bytes_unit: 'kB' };
  await visit(`#/export?${q({ ...invoiceQuery, mode: 'month' })}`, 'export');
  eq([await page.inputValue('#x-layout'), await page.inputValue('#x-unit'), await page.isChecked('#x-per-source'), await page.isChecked('#x-excel')],
    ['invoice', 'kB', true, true], 'the export page shows the invoice options of its address');
  const invoiceCsv = (await api(`/api/v1/export?${q({ ...invoiceQuery, format: 'csv' })}`)).body.toString();
  const invoiceLines = invoiceCsv.trim().split('\r\n');
  eq(invoiceLines[0], 'period_start,period_end,table,key,name,bytes_out_cnt_kB,bytes_out_cnt_kB@lb1,gpc0,gpc0@lb1,http_req_cnt,http_req_cnt@lb1',
    'the invoice header: name, then each metric and its node');
  const invoicePreview = await page.$$eval('#x-rows tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.dataset.value ?? td.textContent.trim())));
  eq(invoicePreview, invoiceLines.slice(1).map((l) => parseCsvLine(l)), 'invoice preview rows = the API invoice rows');
  const acmeRow = invoicePreview.find((r) => r[3] === 'acme.example');
  eq([acmeRow?.[4], acmeRow?.[9]], ['Acme, Inc.', '64'], 'acme.example is named and has its 64 requests');
  check(/^\d+\.\d{6}$/.test(acmeRow?.[5] ?? ''), `bytes in kB with 6 decimals: ${acmeRow?.[5]}`);
  const safeInvoicePath = `/api/v1/export?${q({ ...invoiceQuery, format: 'csv', excel_safe: '1' })}`;
  const safeInvoice = (await api(safeInvoicePath)).body;
  check(safeInvoice.toString().includes(',initech.example,\'=Initech,'), 'the Excel-safe invoice keeps a formula-like name as text');
  const [invoiceDownload] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#x-csv')]);
  const invoiceDownloaded = fs.readFileSync(await invoiceDownload.path());
  check(Buffer.compare(invoiceDownloaded, safeInvoice) === 0,
    `downloaded invoice (${invoiceDownloaded.length} bytes, ${invoiceDownload.suggestedFilename()}) = GET ${safeInvoicePath} (${safeInvoice.length} bytes)`);
  eq(invoiceDownload.suggestedFilename(), `stickmeter-${period}-quota-invoice.csv`, 'the invoice file name');
  // The same request through the CLI, on the data directory the server is using.
  const cli = spawnSync(args.stickmeter, ['export', '--data', path.join(tmp, 'data'), '--period', period, '--tz', 'UTC',
    '--table', table, '--layout', 'invoice', '--per-source', '--bytes-unit', 'kB', '--key-names', namesFile, '--excel-safe'],
  { timeout: 15000, maxBuffer: 16 << 20 });
  eq(cli.status, 0, `stickmeter export --layout invoice exits 0: ${cli.stderr}`);
  check(Buffer.compare(cli.stdout, safeInvoice) === 0, `stickmeter export --layout invoice (${cli.stdout.length} bytes) = the API's and the UI's bytes`);
  // Without Excel-safe, the download is the exact bytes.
  await page.uncheck('#x-excel');
  await page.waitForFunction(() => /excel=0/.test(location.hash) && document.querySelector('main').dataset.ready === 'export');
  const [exactDownload] = await Promise.all([page.waitForEvent('download', { timeout: 10000 }), page.click('#x-csv')]);
  check(fs.readFileSync(await exactDownload.path()).toString() === invoiceCsv, 'unticked Excel-safe, the invoice download is the exact CSV');
  await noProblems('billing export (invoice)');
  await shoot('export-invoice');
  log('invoice export checked');

  // Quotas: a quota put through the API is listed, over, on the Quotas page and on the key's page.
  // Without --quota (a stickmeter that lacks it) the page says quotas are not enabled.
  const put = await apiSend('PUT', '/api/v1/quotas', { table, key: 'acme.example', metric: 'http_req_cnt', limit: 50 });
  if (put.status === 400 && put.body?.error?.code === 'quotas_disabled') {
    log(`SKIP the quota checks against stickmeter: it runs without --quota (${quotaArgs.length ? 'given, yet refused' : 'serve --help has no --quota'}): ${put.body.error.message}`);
    await visit('#/quotas', 'quotas');
    check(await page.isVisible('#q-disabled'), 'the Quotas page says quotas are not enabled');
    await noProblems('quotas (not enabled)');
  } else {
    eq([put.status, put.body?.used, put.body?.over], [200, 64, true], `PUT a quota of 50 for acme.example: ${JSON.stringify(put.body)}`);
    await visit(`#/quotas?${q({ table })}`, 'quotas');
    const quotaRows = await page.$$eval('#q-rows tbody tr', (trs) => trs.map((tr) => [tr.cells[1].textContent.trim(), tr.dataset.over]));
    eq(quotaRows, [['acme.example', 'true']], 'the Quotas page lists the quota, over');
    const keyRows = await page.$$eval('#q-key-rows tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent.trim()));
    check(keyRows[0] === 'acme.example', `acme.example first in the keys list: ${JSON.stringify(keyRows)}`);
    await noProblems('quotas');
    await shoot('quotas');
    await visit(`#/key?${q({ table, key: 'acme.example', metric: 'http_req_cnt' })}`, 'key');
    await page.waitForSelector('#key-quota a', { timeout: 10000 });
    check(/over quota/.test(await page.textContent('#key-quota')), 'the key page shows acme.example over quota');
    eq((await apiSend('DELETE', `/api/v1/quotas?${q({ table, metric: 'http_req_cnt', key: 'acme.example' })}`)).status, 204, 'DELETE the quota');
    log('quotas checked');
  }

  // Shutdown: SIGTERM must leave stickmeter with exit code 0.
  await browser.close();
  await stopProcess(haproxy);
  const exit = await stopProcess(stickmeter, 10000);
  eq(exit, { code: 0, signal: null }, 'stickmeter exits 0 on SIGTERM');
}

await runTest('web UI', 85_000, main);
