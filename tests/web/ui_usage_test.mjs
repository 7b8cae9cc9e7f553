// Browser test of the Usage page a billing team works from, against a real stickmeter and a
// real HAProxy sending traffic in two rounds, the second after a split instant T:
//   - a custom period [T, T+1h) with "Compare" lists every key's total in it and in the period
//     before, [T-1h, T), with the change, largest first, customers who stopped included;
//   - the previous and next period buttons move the period by its own length (a custom range)
//     or by a calendar month, in the address, with the month's name and field;
//   - "Download CSV" saves exactly the rows shown, in their order, Excel-safe;
//   - the chart stacks the top five keys, each layer adding up to the key's total (the
//     series API's own figure), and the legend names what the other keys add up to;
//   - a period before the first data says "No data" on the usage, key and export pages, and one
//     lb1 was connected for throughout says so quietly.
//
// Usage: node ui_usage_test.mjs --stickmeter BIN --node-modules DIR --artifacts DIR
import fs from 'node:fs';
import path from 'node:path';
import {
  HAPROXY, CHROMIUM, parseArgs, log, check, eq, httpGet, waitFor, runTest, tempDir, startStickmeter,
  startHaproxy, openBrowser, openPage,
} from './harness.mjs';

const args = parseArgs(['stickmeter', 'node-modules', 'artifacts']);
const hashParams = async (page) => new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1] || '');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  for (const f of [args.stickmeter, CHROMIUM, HAPROXY]) if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  fs.mkdirSync(args.artifacts, { recursive: true });
  const tmp = tempDir('usage');
  const server = await startStickmeter(args.stickmeter, tmp);
  const { fePort } = await startHaproxy(tmp, {
    name: 'lb1', peersPort: server.peersPort, frontend: true,
    tableLine: 'table quota type string len 64 size 10k expire 1h store http_req_cnt',
  });
  const api = async (p, q) => JSON.parse((await httpGet(server.httpPort, `${p}?${new URLSearchParams(q)}`)).body.toString());
  const table = (await waitFor('the table', async () => (await api('/api/v1/tables', {})).tables[0], 15000)).name;
  const usage = async (from, to) => Object.fromEntries(((await api('/api/v1/usage', { table, metric: 'http_req_cnt', from, to })).rows || [])
    .map((r) => [r.key, r.total]));
  const wide = [Date.now() - 86400e3, Date.now() + 86400e3];
  const send = async (round) => {
    for (const [key, n] of Object.entries(round)) for (let i = 0; i < n; i++) await httpGet(fePort, `/r/${i}`, { Host: key });
  };
  const stored = async (what, want) => waitFor(what, async () => {
    const got = await usage(...wide);
    return Object.entries(want).every(([k, v]) => got[k] === v);
  }, 20000);

  // Round A, then the split instant once stickmeter holds all of it, then round B.
  const A = { 'acme.example': 5, 'beta.example': 3, 'delta.example': 6, 'e1.example': 1, 'e2.example': 1 };
  const B = { 'acme.example': 12, 'beta.example': 1, 'gamma.example': 4 };
  await send(A);
  await stored('round A', A);
  const T = Date.now();
  await sleep(20);
  await send(B);
  const both = { ...A, 'gamma.example': 0 };
  for (const [k, v] of Object.entries(B)) both[k] += v;
  await stored('round B', both);
  // HAProxy's readiness probe (startHaproxy) is a key of its own, before T.
  const before = await usage(wide[0], T);
  const after = await usage(T, T + 3600e3);
  eq(after, B, 'the API: round B after T');
  log('two rounds stored, split at', new Date(T).toISOString());

  const browser = await openBrowser(args['node-modules']);
  const { page, problems, visit } = await openPage(browser, server.base, { acceptDownloads: true });
  const readyAfter = (pred) => page.waitForFunction(pred, undefined, { timeout: 10000 })
    .then(() => page.waitForSelector('main[data-ready="usage"]', { timeout: 10000 }));
  const shownRows = () => page.$$eval('#usage-rows tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.dataset.value ?? td.textContent)));

  // [T, T+1h) compared with [T-1h, T): every key of either, largest first, stopped ones at 0.
  const period = { table, metric: 'http_req_cnt', range: 'custom', from: String(T), to: String(T + 3600e3), compare: '1' };
  await visit(`#/usage?${new URLSearchParams(period)}`, 'usage');
  const change = (now, was) => (was === 0 ? (now === 0 ? '' : 'new') : `${now > was ? '+' : ''}${(((now - was) / was) * 100).toFixed(1)}%`);
  const keys = [...new Set([...Object.keys(after), ...Object.keys(before)])];
  const expected = keys.map((k) => [k, after[k] ?? 0, before[k] ?? 0])
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([k, now, was]) => [k, String(now), String(was), change(now, was)]);
  eq(await shownRows(), expected, 'each key with its total, the period before and the change');
  const sum = (o) => Object.values(o).reduce((a, v) => a + v, 0);
  eq([await page.getAttribute('#usage-total', 'data-value'), await page.getAttribute('#usage-previous', 'data-value')],
    [String(sum(after)), String(sum(before))], 'the totals of both periods');

  // A usage reply ends once its keys reach 8 MiB, with `next_offset`: here every reply of every
  // key is cut after two rows, and the page still lists every key of both periods, with the same
  // totals, by reading page after page.
  let cut = 0;
  const cutUsage = (url) => url.pathname === '/api/v1/usage' && !url.searchParams.has('order');
  await page.route(cutUsage, async (route) => {
    const url = new URL(route.request().url());
    const offset = Number(url.searchParams.get('offset') || 0);
    url.searchParams.delete('offset');
    const whole = await route.fetch({ url: url.toString() });
    const body = JSON.parse(await whole.text());
    const rows = body.rows.slice(offset, offset + 2);
    const next = offset + 2 < body.rows.length ? offset + 2 : null;
    if (next !== null) cut += 1;
    await route.fulfill({ response: whole, json: { ...body, rows, next_offset: next } });
  });
  await visit(`#/usage?${new URLSearchParams({ ...period, q: '' })}`, 'usage');  // another address: rendered again
  check(cut >= 2, `the replies were cut into pages (${cut} cuts)`);
  eq(await shownRows(), expected, 'every key of every page, with its total and the period before\'s');
  eq([await page.getAttribute('#usage-total', 'data-value'), await page.getAttribute('#usage-previous', 'data-value')],
    [String(sum(after)), String(sum(before))], 'the totals of both periods, over every page');
  await page.unroute(cutUsage);
  await visit(`#/usage?${new URLSearchParams(period)}`, 'usage');

  // Download CSV: the rows shown, in their order.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#usage-csv')]);
  const csv = fs.readFileSync(await download.path(), 'utf8');
  eq(csv, `key,total,previous_total\r\n${expected.map(([k, now, was]) => `${k},${now},${was}`).join('\r\n')}\r\n`, 'the CSV holds the rows shown');
  check(/^usage-.*quota.*http_req_cnt.*\.csv$/.test(download.suggestedFilename()), `the file is named after what it holds: ${download.suggestedFilename()}`);

  // Previous period: the hour before T; its own period before is empty.
  await page.click('#range-prev');
  await readyAfter(`new URLSearchParams(location.hash.split('?')[1]).get('to') === '${T}'`);
  eq(Number((await hashParams(page)).get('from')), T - 3600e3, 'the previous period is as long and ends where this one began');
  eq((await shownRows()).map((r) => [r[0], r[1]]),
    Object.entries(before).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([k, v]) => [k, String(v)]), 'the period before T');
  await page.click('#range-next');
  await readyAfter(`new URLSearchParams(location.hash.split('?')[1]).get('from') === '${T}'`);
  eq(await page.getAttribute('#usage-total', 'data-value'), String(sum(after)), 'and back');

  // The chart of [T-1h, T+1h): the five largest keys stacked, each adding up to its total.
  await visit(`#/usage?${new URLSearchParams({ ...period, from: String(T - 3600e3), compare: '' })}`, 'usage');
  const totals = await usage(T - 3600e3, T + 3600e3);
  await page.waitForSelector('#usage-legend', { timeout: 10000 });
  const ranked = Object.entries(totals).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const legend = await page.$$eval('#usage-legend li[data-key]', (lis) => lis.map((li) => [li.dataset.key, Number(li.dataset.total)]));
  eq(legend, ranked.slice(0, 5), 'the legend names the five largest keys with their totals');
  for (const [key, total] of legend) {
    const drawn = await page.$$eval(`#usage-chart rect[data-layer="${key}"]`, (rs) => rs.reduce((a, r) => a + Number(r.dataset.v), 0));
    eq(drawn, total, `the layer of ${key} adds up to its total`);
  }
  eq(Number(await page.getAttribute('#usage-legend-others', 'data-total')), sum(Object.fromEntries(ranked.slice(5))),
    'the legend says what the other keys add up to');
  // The other keys are one grey layer on top (the table's series less the top keys'): the bars
  // are the whole table.
  eq(await page.getAttribute('#usage-legend-others', 'data-drawn'), 'true', 'the other keys are drawn');
  const othersLabel = `${ranked.length - 5} other keys`;
  const othersDrawn = await page.$$eval(`#usage-chart rect[data-layer="${othersLabel}"]`, (rs) => rs.reduce((a, r) => a + Number(r.dataset.v), 0));
  eq(othersDrawn, sum(Object.fromEntries(ranked.slice(5))), 'the other keys\' layer adds up to their total');
  const allDrawn = await page.$$eval('#usage-chart rect.bar', (rs) => rs.reduce((a, r) => a + Number(r.dataset.v), 0));
  eq(allDrawn, sum(totals), 'the chart\'s bars add up to the whole table');
  await page.locator('#usage-chart rect.bar').first().hover();
  await page.waitForSelector('#chart-tip:not([hidden])', { timeout: 3000 });
  check(/acme\.example/.test(await page.textContent('#chart-tip')), 'the tip names the layers under the pointer');
  await page.screenshot({ path: path.join(args.artifacts, 'ui_usage.png'), fullPage: true });

  // Top by total, whose page holds fewer keys than the period has (here six of them): the
  // legend's other keys are still every key but the top five, with their whole total.
  const topPage = (url) => url.pathname === '/api/v1/usage' && url.searchParams.get('order') === 'total';
  await page.route(topPage, async (route) => {
    const whole = await route.fetch();
    const body = JSON.parse(await whole.text());
    await route.fulfill({ response: whole, json: { ...body, rows: body.rows.slice(0, 6), next_offset: 6 } });
  });
  await visit(`#/usage?${new URLSearchParams({ ...period, from: String(T - 3600e3), compare: '', show: 'top' })}`, 'usage');
  await page.waitForSelector('#usage-legend-others', { timeout: 10000 });
  eq([Number(await page.getAttribute('#usage-legend-others', 'data-total')), (await page.textContent('#usage-legend-others')).split(':')[0]],
    [sum(Object.fromEntries(ranked.slice(5))), othersLabel], 'top view: the other keys are every key but the top five');
  await page.unroute(topPage);

  // Months: the previous button goes to the month before, by name; next comes back.
  await visit(`#/usage?${new URLSearchParams({ table, metric: 'http_req_cnt', range: 'month' })}`, 'usage');
  const thisMonth = new Date().toISOString().slice(0, 7);
  const d = new Date(`${thisMonth}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() - 1);
  const lastMonth = d.toISOString().slice(0, 7);
  await page.click('#range-prev');
  await readyAfter(`new URLSearchParams(location.hash.split('?')[1]).get('month') === '${lastMonth}'`);
  eq([(await hashParams(page)).get('range'), await page.inputValue('#month'), await page.isVisible('#month')],
    ['a-month', lastMonth, true], 'the month before, in the address and the month field');
  const monthName = new Intl.DateTimeFormat(undefined, { timeZone: 'UTC', year: 'numeric', month: 'long' }).format(d);
  check((await page.textContent('main')).includes(monthName), `the page names the month: ${monthName}`);
  await page.click('#range-next');
  await readyAfter(`new URLSearchParams(location.hash.split('?')[1]).get('month') === '${thisMonth}'`);
  eq(await page.getAttribute('#usage-total', 'data-value'), String(sum(await usage(...wide))), 'this month again, with every request');
  await coverageNotices(page, visit, api, table);
  eq(problems, [], 'no console errors');
  log('usage page checked');
}

// The data completeness notice: a period before stickmeter first received from lb1 says "No
// data" (not just no usage) on the usage, key and export pages; a period lb1 was connected for
// throughout says so quietly.
async function coverageNotices(page, visit, api, table) {
  const first = (await api('/api/v1/coverage', { from: Date.now() - 86400e3, to: Date.now() })).first_seen_ms;
  check(first > 0, `lb1 was first seen: ${first}`);
  const notice = async (id) => {
    const el = await page.waitForSelector(`#${id}[data-coverage]`, { timeout: 10000 });
    return [await el.getAttribute('data-coverage'), await el.getAttribute('class'), (await el.textContent()).trim()];
  };
  const old = { from: String(first - 2 * 86400e3), to: String(first - 86400e3) };
  await visit(`#/usage?${new URLSearchParams({ table, metric: 'http_req_cnt', range: 'custom', ...old })}`, 'usage');
  const [status, cls, text] = await notice('usage-coverage');
  eq([status, cls], ['none', 'coverage warn'], 'usage before the first data: the no-data notice');
  check(text.startsWith('No data: stickmeter was not receiving from any node before'), `it says why: ${text}`);
  check(await page.isVisible('#usage-coverage details'), 'with a details list');
  await page.click('#usage-coverage summary');
  check((await page.textContent('#usage-coverage li[data-source="lb1"]')).includes('first seen'), 'naming lb1 and when it was first seen');
  check((await page.textContent('#usage-table')).includes('No usage in this range.'), 'and no rows');
  check((await page.textContent('#usage-coverage li[data-source="lb1"]')).includes('no session in this period'), 'which had no session in it');
  await page.screenshot({ path: path.join(args.artifacts, 'ui_coverage_none.png'), fullPage: true });
  // Dark and on a phone: the notice keeps its warning colours and fits the screen.
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.setViewportSize({ width: 390, height: 800 });
  eq(await page.$eval('#usage-coverage', (e) => [getComputedStyle(e).backgroundColor, e.scrollWidth <= e.clientWidth]),
    ['rgb(46, 38, 7)', true], 'the notice in dark mode on a phone');
  await page.screenshot({ path: path.join(args.artifacts, 'ui_coverage_none_dark_phone.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1280, height: 800 });
  await visit(`#/key?${new URLSearchParams({ table, key: 'acme.example', metric: 'http_req_cnt', range: 'custom', ...old })}`, 'key');
  eq((await notice('key-coverage'))[0], 'none', 'the key page says the same');
  await visit(`#/export?${new URLSearchParams({ table, metric: 'http_req_cnt', mode: 'range', ...old })}`, 'export');
  eq((await notice('x-coverage'))[0], 'none', 'and the export page');

  // Since lb1 connected, up to a moment ago: complete, one quiet line.
  const covered = { from: String(first + 1), to: String(Date.now() - 10) };
  await visit(`#/usage?${new URLSearchParams({ table, metric: 'http_req_cnt', range: 'custom', ...covered })}`, 'usage');
  eq(await notice('usage-coverage'), ['complete', 'coverage quiet', '✓ All nodes connected for the whole period.'],
    'a period lb1 was connected for throughout');
}

await runTest('usage', 100_000, main);
