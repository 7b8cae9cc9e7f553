// Browser test of refused peers in the overview, against a real stickmeter (--allow-peer lb1)
// and two real HAProxy nodes: lb1, accepted, and lb9, whose name is not allowed and whose hello
// stickmeter refuses. The overview must not count lb9 as connected ("1 / 2", marked bad) and
// must list it under "Refused connections" with the reason; /api/v1/peers lists it the same way.
//
// Usage: node ui_refused_test.mjs --stickmeter BIN --node-modules DIR --artifacts DIR
import {
  HAPROXY, CHROMIUM, parseArgs, log, check, eq, httpGet, waitFor, runTest, tempDir, startStickmeter,
  startHaproxy, openBrowser, openPage,
} from './harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const args = parseArgs(['stickmeter', 'node-modules', 'artifacts']);

async function main() {
  for (const f of [args.stickmeter, HAPROXY, CHROMIUM]) if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  fs.mkdirSync(args.artifacts, { recursive: true });
  const tmp = tempDir('refused');
  const { httpPort: apiPort, peersPort, base } = await startStickmeter(args.stickmeter, tmp, ['--allow-peer', 'lb1']);
  const peersApi = async () => JSON.parse((await httpGet(apiPort, '/api/v1/peers')).body.toString());

  const tableLine = 'table quota type string len 64 size 10k expire 1h store http_req_cnt';
  await startHaproxy(tmp, { name: 'lb1', peersPort, tableLine });
  await startHaproxy(tmp, { name: 'lb9', peersPort, tableLine });
  const api = await waitFor('lb1 connected and lb9 refused', async () => {
    const p = await peersApi();
    const lb1 = p.peers.find((x) => x.name === 'lb1');
    return lb1 && lb1.connected && p.refused.some((r) => r.name === 'lb9') ? p : null;
  }, 20000);
  check(!api.peers.some((p) => p.name === 'lb9'), 'lb9 is not among the peers');
  const lb9 = api.refused.find((r) => r.name === 'lb9');
  eq(lb9.reason, 'hello refused with 504: peer name not in --allow-peer', 'the API gives the reason');
  eq(lb9.address, '127.0.0.1', 'the API gives the source address');
  log('lb1 connected, lb9 refused');

  const browser = await openBrowser(args['node-modules']);
  const { page, problems, visit } = await openPage(browser, base);
  await visit('#/overview', 'overview');
  await page.waitForSelector('#ov-refused tbody tr', { timeout: 8000 });

  eq((await page.textContent('#ov-card-peers .value')).trim(), '1 / 2', 'the refused node is not counted as connected');
  check(await page.$eval('#ov-card-peers', (el) => el.classList.contains('bad')), 'the peers card is marked bad');
  check(/refused/.test(await page.getAttribute('#ov-card-peers', 'title')), 'the peers card says why');
  const peerNames = await page.$$eval('#ov-peers tbody tr td:first-child', (tds) => tds.map((t) => t.textContent.trim()));
  eq(peerNames, ['lb1'], 'only lb1 is in the peers table');
  const refusedRows = await page.$$eval('#ov-refused tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
  eq(refusedRows.length, 1, 'one refused node listed');
  eq(refusedRows[0].slice(0, 3), ['lb9', '127.0.0.1', 'hello refused with 504: peer name not in --allow-peer'],
    'the refused node is listed with its address and reason');
  check(/^[1-9][0-9]*$/.test(refusedRows[0][3]), 'the number of refusals is shown');
  await page.screenshot({ path: path.join(args.artifacts, 'ui_refused_overview.png'), fullPage: true });
  eq(problems, [], 'no console errors');
  log('overview shows the refused node');
}

await runTest('refused peers', 80_000, main);
