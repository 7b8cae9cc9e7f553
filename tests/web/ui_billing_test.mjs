// Browser tests of what a billing user relies on day to day, each against a real stickmeter,
// driven by headless Chromium. One case per run (--case), so each is its own ctest test:
//   zone     one billing zone for the server: with `--billing-tz Pacific/Auckland` and a browser
//            in Los Angeles, the header names Auckland, periods and times are Auckland's, the
//            export page defaults to it, and the API's export without `tz` is Auckland's too.
//
// Usage: node ui_billing_test.mjs --case zone --stickmeter BIN --node-modules DIR
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
  const health = JSON.parse((await httpGet(server.httpPort, '/api/v1/health')).body.toString());
  eq(health, { status: 'ok', billing_tz: zone }, 'health names the billing zone');
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

const CASES = { zone: zoneCase };
async function main() {
  const run = CASES[args.case];
  if (!run) throw new Error(`unknown --case ${args.case} (zone)`);
  for (const f of [args.stickmeter, CHROMIUM, ...(args.case === 'session' ? [] : [HAPROXY])]) {
    if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  }
  fs.mkdirSync(args.artifacts, { recursive: true });
  await run();
}

await runTest(`billing ${args.case}`, 100_000, main);
