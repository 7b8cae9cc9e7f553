// Browser test of the Quotas page against the real HTTP server and web UI over an in-memory
// store and quota service (quota_ui_server: table /quota, keys acme 350, gamma 150, beta 10
// requests). Drives headless Chromium (the system's, through playwright-core): adding quotas with
// the form, the API's 400 messages next to it, over-quota rows first and marked, usage bars, the
// keys list, editing, deleting, and a key's page showing its standing with a link back. The same
// page against `stickmeter serve --quota` is covered by ui_test.mjs once the flag exists.
//
// Usage: node quota_ui_test.mjs --server BIN --node-modules DIR --artifacts DIR
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const DEADLINE_MS = 60_000;
const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'quota-ui-test-token-0123456789';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const a of ['server', 'node-modules', 'artifacts']) {
  if (!args[a]) { console.error(`usage: missing --${a}`); process.exit(2); }
}

const started = Date.now();
const log = (...m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...m);
let passed = 0;
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  passed++;
}
function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`check failed: ${what}\n  expected: ${e}\n  actual:   ${a}`);
  passed++;
}

let server = null;
let serverOutput = '';
let browser = null;
async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => { server.once('exit', r); setTimeout(r, 3000); });
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}
const deadline = setTimeout(async () => {
  console.error(`FAIL: the quota UI test did not finish within ${DEADLINE_MS / 1000} s\n${serverOutput.slice(-4000)}`);
  await cleanup();
  process.exit(1);
}, DEADLINE_MS);

async function main() {
  const require = createRequire(path.join(path.resolve(args['node-modules']), 'noop.js'));
  const { chromium } = require('playwright-core');
  fs.mkdirSync(args.artifacts, { recursive: true });

  server = spawn(args.server, ['--token', TOKEN], { stdio: ['ignore', 'pipe', 'pipe'] });
  server.stderr.on('data', (d) => { serverOutput += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`quota_ui_server exited (${code}): ${serverOutput}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  const api = async (p, init = {}) => {
    const res = await fetch(`${base}${p}`, { ...init, headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers || {}) } });
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
  };
  log(`server on ${port}`);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync'] });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' })).newPage();
  const problems = [];
  let allowHttpErrors = true; // the token prompt's 401 shows up as a failed resource load
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    // A 400 the form shows is the page working; the browser still logs the failed load.
    if (allowHttpErrors && /status of 40[01]/.test(m.text())) return;
    // A busy server's 503 (more queries under way than --max-queries) is waited out by the UI,
    // as tests/web/harness.mjs says; the browser still logs it.
    if (/status of 503\b/.test(m.text())) return;
    problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept(); });
  const ready = () => page.waitForSelector('main[data-ready="quotas"]', { timeout: 10000 });
  const noProblems = async (where) => {
    eq(problems, [], `no console errors on ${where}`);
    const unlabeled = await page.$$eval('main input, main select, main button', (els) => els
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim()))
      .map((e) => e.outerHTML.slice(0, 80)));
    eq(unlabeled, [], `every control on ${where} has a label`);
  };
  const quotaRows = () => page.$$eval('#q-rows tbody tr', (trs) => trs.map((tr) => ({
    cells: [...tr.cells].map((td) => td.textContent.trim()), over: tr.dataset.over === 'true', marked: tr.classList.contains('over'),
    meter: tr.querySelector('meter') ? Number(tr.querySelector('meter').value) : null })));
  // Fills the form and saves; waits for the page to be drawn again (or the error to show).
  const save = async (q, expectError = false) => {
    for (const [k, v] of Object.entries(q)) {
      if (k === 'period') await page.selectOption('#q-period', v);
      else await page.fill(`#q-${k}`, v);
    }
    if (expectError) {
      await page.evaluate(() => { document.getElementById('q-form-error').textContent = ''; });
      await page.click('#q-save');
      await page.waitForFunction(() => document.getElementById('q-form-error').textContent !== '', null, { timeout: 10000 });
      return page.textContent('#q-form-error');
    }
    await page.evaluate(() => { delete document.querySelector('main').dataset.ready; });
    await page.click('#q-save');
    await ready();
    return '';
  };

  // The token prompt, then an empty page.
  await page.goto(`${base}/#/quotas`);
  await page.waitForSelector('#token-dialog[open]', { timeout: 10000 });
  await page.fill('#token-input', TOKEN);
  await page.press('#token-input', 'Enter');
  await ready();
  eq(await page.getAttribute('nav a[data-nav="quotas"]', 'aria-current'), 'page', 'the Quotas link is the current page');
  check(/No quota yet/.test(await page.textContent('#q-list')), 'an empty list says so');
  check(!(await page.isVisible('#q-disabled')), 'no "not enabled" note when quotas are enabled');

  // Adding: a key's own quota (over: 350 >= 300), the table default by day (gamma is over it),
  // and beta's own (not over).
  await save({ table: '/quota', key: 'acme', metric: 'http_req_cnt', limit: '300', period: 'month', tz: 'UTC' });
  await save({ table: '/quota', key: '', metric: 'http_req_cnt', limit: '100', period: 'day', tz: 'Europe/Berlin' });
  await save({ table: '/quota', key: 'beta', metric: 'http_req_cnt', limit: '1000', period: 'month', tz: 'UTC' });
  const listed = (await api('/api/v1/quotas')).body.quotas;
  eq(listed.length, 3, 'three quotas in the API');
  let rows = await quotaRows();
  eq(rows.length, 3, 'three quota rows');
  eq(rows.map((r) => r.over), [true, true, false], 'over-quota rows first');
  eq(rows.map((r) => r.marked), [true, true, false], 'over-quota rows are highlighted');
  const acme = rows.find((r) => r.cells[1] === 'acme');
  eq([acme.cells[0], acme.cells[2], acme.cells[3], acme.cells[4], acme.cells[5]], ['/quota', 'http_req_cnt', 'month · UTC', '300', '350'], 'acme row');
  eq(acme.meter, 300, 'the bar of an over-quota key is full');
  check(/116%/.test(acme.cells[6]), `acme's usage is 116%: ${acme.cells[6]}`);
  const def = rows.find((r) => r.cells[1] === 'default');
  eq([def.cells[3], def.cells[4], def.cells[5]], ['day · Europe/Berlin', '100', '1 key over'], 'the default row counts the keys over');
  eq(rows[2].cells[1], 'beta', 'beta, under its quota, comes last');
  eq(rows[2].meter, 10, 'beta bar at 10 of 1000');
  await noProblems('quotas');

  // The API's 400 messages are shown next to the form, and nothing is saved.
  const errors = {};
  errors.limit = await save({ table: '/quota', key: 'acme', metric: 'http_req_cnt', limit: '1.5' }, true);
  errors.metric = await save({ metric: 'conn_cur', limit: '5' }, true);
  errors.tz = await save({ metric: 'http_req_cnt', tz: 'Mars/Olympus_Mons' }, true);
  errors.table = await save({ table: '/nope', tz: 'UTC' }, true);
  for (const [f, message] of Object.entries(errors)) check(message.startsWith(`${f}:`), `the form shows the ${f} error: ${message}`);
  eq((await api('/api/v1/quotas')).body.quotas.length, 3, 'failed saves stored nothing');
  await page.screenshot({ path: path.join(args.artifacts, 'quotas-form-error-laptop.png'), fullPage: true });

  // The keys, over first: gamma (150 of the default 100), acme (350 of 300), beta (10 of 1000).
  const keyRows = await page.$$eval('#q-key-rows tbody tr', (trs) => trs.map((tr) => ({
    key: tr.cells[0].textContent.trim(), over: tr.dataset.over === 'true', marked: tr.classList.contains('over'), limit: tr.cells[4].textContent.trim() })));
  eq(keyRows.map((k) => [k.key, k.over, k.marked]), [['gamma', true, true], ['acme', true, true], ['beta', false, false]], 'keys over quota first');
  check(/default/.test(keyRows[0].limit), 'gamma is marked as governed by the default');
  eq(keyRows.map((k) => k.key), (await api('/api/v1/quotas/keys?table=/quota')).body.keys.map((k) => k.key), 'the keys as /api/v1/quotas/keys orders them');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(args.artifacts, 'quotas-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no horizontal page scroll at phone width (overflow ${overflow}px)`);
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.screenshot({ path: path.join(args.artifacts, 'quotas-laptop.png'), fullPage: true });

  // Editing acme's quota to 400: no longer over.
  await page.click('#q-rows button[aria-label="Edit /quota acme http_req_cnt"]');
  eq(await page.inputValue('#q-limit'), '300', 'Edit fills the form');
  eq(await page.inputValue('#q-key'), 'acme', 'Edit fills the key');
  await save({ limit: '400' });
  rows = await quotaRows();
  const acme2 = rows.find((r) => r.cells[1] === 'acme');
  eq([acme2.cells[4], acme2.over, acme2.marked], ['400', false, false], 'acme under its raised quota');
  eq((await api('/api/v1/quotas?table=/quota&key=acme')).body.quotas.find((q) => q.key === 'acme').limit, 400, 'the API has the new limit');

  // Deleting beta's quota (after a confirmation).
  await page.evaluate(() => { delete document.querySelector('main').dataset.ready; });
  await page.click('#q-rows button[aria-label="Delete /quota beta http_req_cnt"]');
  await ready();
  check(dialogs.some((d) => /beta/.test(d)), `the delete asked first: ${JSON.stringify(dialogs)}`);
  rows = await quotaRows();
  check(!rows.some((r) => r.cells[1] === 'beta'), 'beta\'s quota is gone');
  eq((await api('/api/v1/quotas')).body.quotas.length, 2, 'two quotas left in the API');
  eq((await api('/api/v1/quotas/history')).body.changes.map((c) => c.action), ['put', 'put', 'put', 'put', 'delete'], 'the history of the changes');
  await noProblems('quotas after edits');

  // A key's page shows its standing and links to the Quotas page filtered to it.
  await page.evaluate(() => { delete document.querySelector('main').dataset.ready; });
  await page.goto(`${base}/#/key?table=%2Fquota&key=gamma&metric=http_req_cnt`);
  await page.waitForSelector('main[data-ready="key"]', { timeout: 10000 });
  await page.waitForSelector('#key-quota a', { timeout: 10000 });
  const standing = await page.textContent('#key-quota');
  check(/http_req_cnt: 150 of 100 today/.test(standing) && /over quota/.test(standing), `gamma's standing on its page: ${standing}`);
  await page.click('#key-quota a');
  await ready();
  const hash = await page.evaluate(() => location.hash);
  check(hash.includes('table=%2Fquota') && hash.includes('key=gamma'), `the link filters to the key: ${hash}`);
  eq(await page.inputValue('#q-filter-key'), 'gamma', 'the key filter is set');
  eq((await page.$$eval('#q-key-rows tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent.trim()))), ['gamma'], 'only gamma in the keys list');
  await noProblems('key page and filtered quotas');

  // More keys than the page asks for: /many's 1,100 keys under a default quota. The list says
  // so, and the key filter finds the least used one, which is not among those listed.
  await page.evaluate(() => { delete document.querySelector('main').dataset.ready; });
  await page.goto(`${base}/#/quotas?table=%2Fmany`);
  await ready();
  await save({ table: '/many', key: '', metric: 'http_req_cnt', limit: '2000' });
  const manyRows = await page.$$eval('#q-key-rows tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent.trim()));
  eq([manyRows.length, manyRows[0]], [200, 'm0000'], 'the 200 most used keys of /many are listed, most used first');
  const more = await page.textContent('#q-keys-more');
  check(/Showing 200 of 1,000 or more keys/.test(more) && /filter by table and key/.test(more), `the list says there are more: ${more}`);
  check(!manyRows.includes('m1099'), 'the least used key is not listed');
  await page.evaluate(() => { delete document.querySelector('main').dataset.ready; });
  await page.fill('#q-filter-key', 'm1099');
  await page.press('#q-filter-key', 'Enter');
  await ready();
  const found = await page.$$eval('#q-key-rows tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
  eq(found.map((r) => [r[0], r[3]]), [['m1099', '1']], 'the key filter finds m1099 (1 request) past the first 1,000');
  eq(await page.$$('#q-keys-more'), [], 'no "more" note for one key');
  await noProblems('a key past the listed ones');
}

try {
  await main();
  clearTimeout(deadline);
  await cleanup();
  console.log(`quota UI test: ${passed} checks passed; screenshots in ${args.artifacts}`);
  process.exit(0);
} catch (err) {
  clearTimeout(deadline);
  console.error(`FAIL: ${err.message}\n${serverOutput.slice(-4000)}`);
  await cleanup();
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
}
