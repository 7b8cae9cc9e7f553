// Browser tests of what a billing user relies on day to day, each against a real stickmeter,
// driven by headless Chromium. One case per run (--case), so each is its own ctest test:
//   zone     one billing zone for the server: with `--billing-tz Pacific/Auckland` and a browser
//            in Los Angeles, the header names Auckland, periods and times are Auckland's, the
//            export page defaults to it, and the API's export without `tz` is Auckland's too;
//   period   the key page's period picker (this month, last month, a day, custom) with a step
//            that follows the period (no 1-px bars: steps too fine are not offered), days of
//            the billing zone (Europe/Berlin) as bars, and the value of the bar under the
//            pointer, against a real HAProxy sending traffic;
//   session  with a token, the billing zone (/api/v1/info) is read once the token is given and
//            before the page is drawn; signing out forgets the token and the zone (the next call
//            asks again), the theme can be set to light, dark or the system's and is
//            remembered, and a busy server's 503 with Retry-After is waited out, not shown.
//
// Usage: node ui_billing_test.mjs --case zone|period|session --stickmeter BIN --node-modules DIR
//        --artifacts DIR
import fs from 'node:fs';
import path from 'node:path';
import {
  HAPROXY, CHROMIUM, parseArgs, log, check, eq, httpGet, waitFor, runTest, tempDir, startStickmeter,
  startHaproxy, openBrowser, openPage,
} from './harness.mjs';

const args = parseArgs(['case', 'stickmeter', 'node-modules', 'artifacts']);
const hashParam = async (page, name) => new URLSearchParams((await page.evaluate(() => location.hash)).split('?')[1] || '').get(name);

// Unix ms of a wall-clock time in `zone` (the test's own arithmetic, independent of the UI's).
function zonedMs(zone, y, m, d, hh = 0, mm = 0) {
  const asUtc = Date.UTC(y, m, d, hh, mm);
  const offset = (ms) => {
    const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric',
    }).formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute) - Math.floor(ms / 60000) * 60000;
  };
  return asUtc - offset(asUtc - offset(asUtc));
}
function wallNow(zone) {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric' })
    .formatToParts(new Date()).map((x) => [x.type, Number(x.value)]));
  return { y: p.year, m: p.month - 1, d: p.day };
}
const pad = (n) => String(n).padStart(2, '0');

async function zoneCase() {
  const zone = 'Pacific/Auckland';
  const tmp = tempDir('zone');
  const server = await startStickmeter(args.stickmeter, tmp, ['--billing-tz', zone]);
  // A node and a request announce a table, without which the export page has nothing to offer.
  const { fePort } = await startHaproxy(tmp, {
    name: 'lb1', peersPort: server.peersPort, frontend: true,
    tableLine: 'table quota type string len 64 size 10k expire 1h store http_req_cnt',
  });
  await httpGet(fePort, '/', { Host: 'acme.example' });
  await waitFor('the table', async () => JSON.parse((await httpGet(server.httpPort, '/api/v1/tables')).body.toString()).tables.length > 0, 15000);
  eq((await httpGet(server.httpPort, '/api/v1/health')).body.toString(), '{"status":"ok"}\n', 'health is exactly {"status":"ok"}');
  const info = JSON.parse((await httpGet(server.httpPort, '/api/v1/info')).body.toString());
  eq(info, { billing_tz: zone }, '/api/v1/info names the billing zone');
  const exported = JSON.parse((await httpGet(server.httpPort, '/api/v1/export?period=2026-11&format=json')).body.toString());
  eq([exported.tz, exported.period_start], [zone, '2026-11-01T00:00:00+13:00'], 'an export without tz is in the billing zone');

  const browser = await openBrowser(args['node-modules']);
  const { page, problems, visit } = await openPage(browser, server.base, { timezoneId: 'America/Los_Angeles' });
  await visit('#/overview', 'overview');
  eq(await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone), 'America/Los_Angeles', 'the browser is in another zone');
  const header = (await page.textContent('#zone')).trim();
  check(/^Billing zone: Pacific\/Auckland \(GMT\+1[23]\)$/.test(header), `the header names the billing zone: ${header}`);

  // The export page: month mode defaults to the billing zone and to its previous month.
  await visit('#/export', 'export');
  eq(await page.inputValue('#x-tz'), zone, 'the export page defaults to the billing zone');
  const now = wallNow(zone);
  const prev = new Date(Date.UTC(now.y, now.m - 1, 1));
  eq(await page.inputValue('#x-period'), `${prev.getUTCFullYear()}-${pad(prev.getUTCMonth() + 1)}`, 'the default month is the previous month of the billing zone');
  check((await page.textContent('#x-url')).includes(`tz=${encodeURIComponent(zone)}`), 'the script URL names the zone');
  // Range mode: the default [from, to) is last month's in the billing zone, whatever the browser's.
  await visit('#/export?mode=range', 'export');
  const url = new URL(await page.textContent('#x-url'));
  eq([Number(url.searchParams.get('from')), Number(url.searchParams.get('to'))],
    [zonedMs(zone, now.y, now.m - 1, 1), zonedMs(zone, now.y, now.m, 1)], 'a custom range is read in the billing zone');
  eq(await page.inputValue('#x-from'), `${prev.getUTCFullYear()}-${pad(prev.getUTCMonth() + 1)}-01T00:00`, 'the range is shown in the billing zone');
  await page.screenshot({ path: path.join(args.artifacts, 'ui_billing_zone.png'), fullPage: true });
  eq(problems, [], 'no console errors');
  log('billing zone checked');
}

async function periodCase() {
  const zone = 'Europe/Berlin';
  const tmp = tempDir('period');
  const server = await startStickmeter(args.stickmeter, tmp, ['--billing-tz', zone]);
  const { fePort } = await startHaproxy(tmp, {
    name: 'lb1', peersPort: server.peersPort, frontend: true,
    tableLine: 'table quota type string len 64 size 10k expire 1h store http_req_cnt',
  });
  const REQUESTS = 12;
  for (let i = 0; i < REQUESTS; i++) await httpGet(fePort, `/r/${i}`, { Host: 'acme.example' });
  const api = async (p) => JSON.parse((await httpGet(server.httpPort, p)).body.toString());
  const table = (await waitFor('the table', async () => (await api('/api/v1/tables')).tables[0], 15000)).name;
  const wide = { from: Date.now() - 86400e3, to: Date.now() + 86400e3 };
  await waitFor('the requests in the API', async () => {
    const rows = (await api(`/api/v1/usage?${new URLSearchParams({ table, metric: 'http_req_cnt', ...wide })}`)).rows;
    return rows.some((r) => r.key === 'acme.example' && r.total === REQUESTS);
  }, 20000);
  log('traffic stored');

  const browser = await openBrowser(args['node-modules']);
  const { page, problems, ready, visit } = await openPage(browser, server.base, { timezoneId: 'America/New_York' });
  const stepState = () => page.$$eval('#key-steps button', (bs) => bs.map((b) => [b.dataset.step, b.disabled, b.getAttribute('aria-pressed')]));
  const seriesSteps = [];
  const onRequest = (r) => { if (r.url().includes('/api/v1/series?')) seriesSteps.push(new URL(r.url()).searchParams.get('step')); };
  page.on('request', onRequest);
  const base = { table, key: 'acme.example', metric: 'http_req_cnt' };

  // This month: a month at 1m or 1h would be hundreds of 1-px bars; 1d is picked, finer is off.
  await visit(`#/key?${new URLSearchParams({ ...base, range: 'month' })}`, 'key');
  eq(await page.inputValue('#range'), 'month', 'the key page has a period picker, on this month');
  eq(await stepState(), [['1m', true, 'false'], ['1h', true, 'false'], ['1d', false, 'true']], 'a month is drawn by day; 1m and 1h are not offered');
  // The API's days are UTC days: for Berlin's days the page asks for hours and adds them up.
  // (The chart and the daily subtotals both ask.)
  eq([...new Set(seriesSteps)], ['1h'], 'a day step in a billing zone other than UTC asks for hours');
  page.off('request', onRequest);
  await page.locator('#key-chart rect.bar').first().hover();
  await page.waitForSelector('#chart-tip:not([hidden])', { timeout: 3000 });
  const berlin = wallNow(zone);
  eq([Number(await page.getAttribute('#chart-tip', 'data-t')), Number(await page.getAttribute('#chart-tip', 'data-value'))],
    [zonedMs(zone, berlin.y, berlin.m, berlin.d), REQUESTS], "a month's bar is a day of the billing zone, with its requests");
  check(/too fine/.test(await page.getAttribute('#key-steps button[data-step="1m"]', 'title')), 'a step too fine says why');
  eq(Number(await page.getAttribute('#key-total', 'data-value')), REQUESTS, 'this month holds the requests');
  // An old link asking 1m for a month is drawn by day all the same.
  await visit(`#/key?${new URLSearchParams({ ...base, range: 'month', step: '1m' })}`, 'key');
  eq((await stepState()).find(([, , pressed]) => pressed === 'true')[0], '1d', 'a step too fine for the period gives way');

  // A day: by hour; the hover tip gives the bucket's value.
  const today = await page.evaluate(() => document.getElementById('day').value);
  await page.selectOption('#range', 'day');
  await page.waitForFunction(() => /range=day/.test(location.hash) && document.querySelector('main').dataset.ready === 'key');
  eq([await hashParam(page, 'range'), await hashParam(page, 'day'), await hashParam(page, 'step')], ['day', today, null], 'a day in the address, no stale step');
  check(await page.isVisible('#day'), 'the day is shown for "A day"');
  eq(await stepState(), [['1m', true, 'false'], ['1h', false, 'true'], ['1d', false, 'false']], 'a day is drawn by hour');
  const bar = page.locator('#key-chart rect.bar').first();
  await bar.hover();
  await page.waitForSelector('#chart-tip:not([hidden])', { timeout: 3000 });
  const tip = await page.textContent('#chart-tip');
  check(/12 requests$/.test(tip), `the tip gives the value under the pointer: ${tip}`);
  const tipT = Number(await page.getAttribute('#chart-tip', 'data-t'));
  eq(tipT % 3600e3, 0, 'the tip names an hour bucket');
  check(await page.$eval('#key-chart rect.bar', (r) => r.classList.contains('hover')), 'the bar under the pointer is marked');
  await page.mouse.move(2, 2);
  await page.waitForSelector('#chart-tip', { state: 'hidden', timeout: 3000 });
  await page.screenshot({ path: path.join(args.artifacts, 'ui_billing_key_day.png'), fullPage: true });
  // Another day, typed: its period is that day of the billing zone.
  await page.fill('#day', '2026-03-29');
  await page.dispatchEvent('#day', 'change');
  await page.waitForFunction(() => /day=2026-03-29/.test(location.hash) && document.querySelector('main').dataset.ready === 'key');
  const period = await page.textContent('#key-period');
  check(/03\/29\/2026, 12:00:00 AM, 03\/30\/2026, 12:00:00 AM\) Europe\/Berlin/.test(period), `the day's period in the billing zone: ${period}`);
  eq(await page.textContent('#key-total'), '0 requests', 'nothing billed that day');

  // Custom: two hours around now, by minute. The end first, so that every step is a valid range.
  await page.selectOption('#range', 'custom');
  await page.waitForFunction(() => /range=custom/.test(location.hash) && document.querySelector('main').dataset.ready === 'key');
  const minute = (ms) => Math.floor(ms / 60e3) * 60e3;
  const now = Date.now();
  const setTime = async (id, ms) => {
    const text = await page.evaluate((t) => {
      const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Berlin', hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' })
        .formatToParts(new Date(t)).map((x) => [x.type, x.value]));
      return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
    }, ms);
    await page.fill(`#${id}`, text);
    await page.dispatchEvent(`#${id}`, 'change');
    await page.waitForFunction(([name, want]) => new URLSearchParams(location.hash.split('?')[1]).get(name) === want
      && document.querySelector('main').dataset.ready === 'key', [id, String(minute(ms))], { timeout: 10000 });
  };
  await setTime('to', now + 3600e3);
  await setTime('from', now - 3600e3);
  eq([Number(await hashParam(page, 'from')), Number(await hashParam(page, 'to'))], [minute(now - 3600e3), minute(now + 3600e3)],
    'the custom range, typed in the billing zone, is the instants meant');
  eq(await stepState(), [['1m', false, 'true'], ['1h', false, 'false'], ['1d', false, 'false']], 'two hours are drawn by minute');
  eq(Number(await page.getAttribute('#key-total', 'data-value')), REQUESTS, 'the custom range holds the requests');

  // Last month: nothing yet, said so.
  await page.selectOption('#range', 'last-month');
  await page.waitForFunction(() => /range=last-month/.test(location.hash) && document.querySelector('main').dataset.ready === 'key');
  eq(await page.textContent('#key-total'), '0 requests', 'nothing billed last month');
  check(/No deltas/.test(await page.textContent('#key-chart')), 'an empty chart says so');
  eq(problems, [], 'no console errors');
  log('key page period picker, step and hover checked');
}

async function sessionCase() {
  const tmp = tempDir('session');
  const token = 'billing-team-token-0123456789';
  fs.writeFileSync(path.join(tmp, 'token'), `${token}\n`);
  const zone = 'Asia/Tokyo';
  const server = await startStickmeter(args.stickmeter, tmp, ['--token-file', path.join(tmp, 'token'), '--billing-tz', zone]);
  eq((await httpGet(server.httpPort, '/api/v1/info')).status, 401, '/api/v1/info needs the token');
  eq((await httpGet(server.httpPort, '/api/v1/health')).body.toString(), '{"status":"ok"}\n', 'health needs none');
  const browser = await openBrowser(args['node-modules']);
  const { page, problems, ready } = await openPage(browser, server.base, { colorScheme: 'light', timezoneId: 'Europe/London' });
  const unauthorized = (p) => /status of 401/.test(p);
  const apiCalls = [];
  page.on('request', (r) => { if (r.url().includes('/api/v1/')) apiCalls.push(new URL(r.url()).pathname); });
  const ZONE_LABEL = 'Billing zone: Asia/Tokyo (GMT+9)';

  // Sign in: the zone is read with the token, before the page; then out: the token is forgotten
  // and asked for again.
  await page.goto(`${server.base}/#/overview`);
  await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
  check(await page.isHidden('#sign-out'), 'no sign-out without a token');
  eq(apiCalls, ['/api/v1/info'], 'the zone is the first thing asked for');
  await page.fill('#token-input', token);
  await page.click('#token-form button[type="submit"]');
  await ready('overview');
  eq(apiCalls.slice(0, 2), ['/api/v1/info', '/api/v1/info'], 'the zone is read again with the token before the page');
  eq([(await page.textContent('#zone')).trim(), await page.getAttribute('#zone', 'data-zone')], [ZONE_LABEL, zone],
    'the header names the billing zone read with the token');
  check(await page.isVisible('#sign-out'), 'sign-out offered once a token is held');
  eq(await page.evaluate(() => sessionStorage.getItem('stickmeter.token')), token, 'the token is kept in this tab');
  await page.click('#sign-out');
  await page.waitForSelector('#token-dialog[open]', { timeout: 5000 });
  eq(await page.$$eval('#ov-cards .card', (cards) => cards.length), 0, 'what was read with the token is no longer shown');
  eq((await page.textContent('#zone')).trim(), '', 'nor is the zone');
  eq(await page.evaluate(() => sessionStorage.getItem('stickmeter.token')), null, 'signing out forgets the token');
  check(await page.isHidden('#sign-out'), 'no sign-out once signed out');
  await page.reload();
  await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
  check(await page.isVisible('#token-input'), 'a reload after signing out asks for the token again');
  await page.fill('#token-input', token);
  await page.click('#token-form button[type="submit"]');
  await ready('overview');
  eq((await page.textContent('#zone')).trim(), ZONE_LABEL, 'the zone is shown again once signed in');
  log('sign-out checked');

  // The theme: light, dark or the system's, remembered.
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const LIGHT = 'rgb(246, 247, 249)';
  const DARK = 'rgb(15, 19, 24)';
  eq([await page.inputValue('#theme'), await background()], ['system', LIGHT], 'the system theme (light) by default');
  await page.emulateMedia({ colorScheme: 'dark' });
  eq(await background(), DARK, 'the system theme follows the system to dark');
  await page.selectOption('#theme', 'light');
  eq([await page.getAttribute('html', 'data-theme'), await background()], ['light', LIGHT], 'light chosen over a dark system');
  await page.selectOption('#theme', 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  eq([await page.getAttribute('html', 'data-theme'), await background()], ['dark', DARK], 'dark chosen over a light system');
  await page.reload();
  await ready('overview');
  eq([await page.inputValue('#theme'), await background()], ['dark', DARK], 'the choice is remembered');
  await page.screenshot({ path: path.join(args.artifacts, 'ui_billing_dark.png'), fullPage: true });
  await page.selectOption('#theme', 'system');
  eq([await page.getAttribute('html', 'data-theme'), await background()], [null, LIGHT], 'back to the system theme');
  await page.reload();
  await ready('overview');
  eq(await page.inputValue('#theme'), 'system', 'the system theme is remembered too');
  eq(problems.filter((p) => !unauthorized(p)), [], 'no console errors but the 401s that ask for the token');
  log('theme checked');

  // A busy server answers 503 with Retry-After while its --max-queries are all under way (other
  // pages, other users): the page waits as asked and tries again instead of showing an error.
  // The first two answers for the peers are the server's busy answer, the rest come from it.
  let busy = 0;
  await page.route('**/api/v1/peers', (route) => {
    if (busy >= 2) return route.continue();
    busy += 1;
    return route.fulfill({
      status: 503, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
      body: '{"error":{"code":"busy","message":"too many queries at once"}}\n',
    });
  });
  problems.length = 0;
  await page.reload();
  await ready('overview');
  await waitFor('the peers after two busy answers', async () =>
    (await page.$$eval('#ov-cards .card', (cards) => cards.length)) > 0 && busy === 2, 15000);
  check(await page.isHidden('#banner'), 'no error shown for a busy server that answered later');
  eq(problems.filter((p) => !/status of 503/.test(p)), [], 'no console errors but the busy answers');
  await page.unroute('**/api/v1/peers');
  log('busy server retried');
}

const CASES = { zone: zoneCase, period: periodCase, session: sessionCase };
async function main() {
  const run = CASES[args.case];
  if (!run) throw new Error(`unknown --case ${args.case} (zone, period or session)`);
  for (const f of [args.stickmeter, CHROMIUM, ...(args.case === 'session' ? [] : [HAPROXY])]) {
    if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  }
  fs.mkdirSync(args.artifacts, { recursive: true });
  await run();
}

await runTest(`billing ${args.case}`, 100_000, main);
