// Browser test of refused peers in the overview, against a real stickmeter (--allow-peer lb1)
// and two real HAProxy nodes: lb1, accepted, and lb9, whose name is not allowed and whose hello
// stickmeter refuses. The overview must not count lb9 as connected ("1 / 2", marked bad) and
// must list it under "Refused connections" with the reason; /api/v1/peers lists it the same way.
//
// Usage: node ui_refused_test.mjs --stickmeter BIN --node-modules DIR --artifacts DIR
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HAPROXY, CHROMIUM, parseArgs, log, counts, check, eq, children, startProcess, stopProcess, dumpLogs, freePort,
  httpGet, waitFor, launchChromium,
} from './harness.mjs';

const DEADLINE_MS = 80_000;
const args = parseArgs(['stickmeter', 'node-modules', 'artifacts']);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stickmeter-refused-'));
let browser = null;

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const p of [...children].reverse()) await stopProcess(p).catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
}
const deadline = setTimeout(async () => {
  console.error(`FAIL: the refused peers test did not finish within ${DEADLINE_MS / 1000} s`);
  dumpLogs();
  await cleanup();
  process.exit(1);
}, DEADLINE_MS);

// A HAProxy node named `name` whose peers section points at stickmeter's peers port.
async function startHaproxy(name, peersPort) {
  const localPeerPort = await freePort();
  const cfg = path.join(tmp, `${name}.cfg`);
  fs.writeFileSync(cfg, `global
    log stderr format short local0 warning
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
peers billing
    bind 127.0.0.1:${localPeerPort}
    server ${name}
    server stickmeter 127.0.0.1:${peersPort}
    table quota type string len 64 size 10k expire 1h store http_req_cnt
`);
  return startProcess(`haproxy ${name}`, HAPROXY, ['-f', cfg, '-L', name, '-db']);
}

async function main() {
  for (const f of [args.stickmeter, HAPROXY, CHROMIUM]) if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  fs.mkdirSync(args.artifacts, { recursive: true });
  const apiPort = await freePort();
  const peersPort = await freePort();
  const stickmeter = startProcess('stickmeter', args.stickmeter, ['serve', '--data', path.join(tmp, 'data'),
    '--http', `127.0.0.1:${apiPort}`, '--peers-listen', `127.0.0.1:${peersPort}`, '--name', 'stickmeter',
    '--allow-peer', 'lb1']);
  await waitFor('stickmeter to answer /api/v1/health', async () => {
    if (stickmeter.exited) throw new Error(`stickmeter exited early (${JSON.stringify(stickmeter.exited)})`);
    return (await httpGet(apiPort, '/api/v1/health')).status === 200;
  }, 15000);
  const peersApi = async () => JSON.parse((await httpGet(apiPort, '/api/v1/peers')).body.toString());

  await startHaproxy('lb1', peersPort);
  await startHaproxy('lb9', peersPort);
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

  browser = await launchChromium(args['node-modules']);
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' })).newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`http://127.0.0.1:${apiPort}/#/overview`);
  await page.waitForSelector('main[data-ready="overview"]', { timeout: 10000 });
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

try {
  await main();
  clearTimeout(deadline);
  await cleanup();
  console.log(`${counts.passed} passed, 0 failed`);
  process.exit(0);
} catch (err) {
  clearTimeout(deadline);
  console.error(`FAIL: ${err.message}`);
  dumpLogs();
  await cleanup();
  console.log(`${counts.passed} passed, 1 failed`);
  process.exit(1);
}
