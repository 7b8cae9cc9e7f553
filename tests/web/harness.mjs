// Shared pieces of the browser tests: checks, child processes that are always cleaned up, free
// ports, plain HTTP from node, polling, Chromium through playwright-core, and the start-up the
// tests share: a run with a deadline and a report (runTest), a real stickmeter answering its
// health (startStickmeter), a real HAProxy node peering with it (startHaproxy), and a page that
// records console errors (openPage).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = '/usr/bin/chromium';
export const HAPROXY = process.env.STICKMETER_HAPROXY || '/usr/sbin/haproxy';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function parseArgs(required) {
  const args = {};
  for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  for (const a of required) {
    if (!args[a]) { console.error(`usage: missing --${a}`); process.exit(2); }
  }
  return args;
}

const started = Date.now();
export const log = (...m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...m);

export const counts = { passed: 0 };
export function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  counts.passed++;
}
export function eq(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`check failed: ${what}\n  expected: ${e}\n  actual:   ${a}`);
  counts.passed++;
}

// Child processes: output kept (last 20 kB) for the failure report, stopped by cleanup().
export const children = [];
export function startProcess(name, cmd, argv) {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc = { name, child, output: '', exited: null };
  const keep = (d) => { proc.output = (proc.output + d.toString()).slice(-20000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.on('exit', (code, signal) => { proc.exited = { code, signal }; });
  child.on('error', (err) => { proc.exited = { code: -1, signal: null }; keep(`spawn failed: ${err.message}\n`); });
  children.push(proc);
  return proc;
}

export async function stopProcess(proc, ms = 5000) {
  if (proc.exited) return proc.exited;
  proc.child.kill('SIGTERM');
  const until = Date.now() + ms;
  while (!proc.exited && Date.now() < until) await sleep(50);
  if (!proc.exited) {
    proc.child.kill('SIGKILL');
    while (!proc.exited) await sleep(20);
  }
  return proc.exited;
}

export function dumpLogs() {
  for (const p of children) {
    console.error(`----- ${p.name} output (last lines) -----`);
    console.error(p.output.split('\n').slice(-40).join('\n'));
  }
}

// A loopback port free a moment ago, at random below the kernel's ephemeral range: a port from
// listen(0) is also what the next outgoing connection gets, and tests running beside this one
// connect a lot (see FreePort in tests/support/process.h).
const handedOut = new Set();  // never the same port twice: one handed out may not be bound yet

export async function freePort() {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    const free = await new Promise((resolve) => {
      const s = net.createServer();
      s.on('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free loopback port');
}

export function httpGet(port, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

// A request with a JSON body (PUT, POST, DELETE): { status, body } with the body parsed when JSON.
export function httpSend(port, method, urlPath, json, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = json === undefined ? '' : JSON.stringify(json);
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false,
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body = text;
        try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolve({ status: res.statusCode, body });
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

export async function waitFor(what, fn, ms) {
  const until = Date.now() + ms;
  let last = null;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) { last = err; }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
}

export async function launchChromium(nodeModules) {
  const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (err) {
    throw new Error(`playwright-core not installed in ${nodeModules} (the web.npm_ci test installs it): ${err.message}`);
  }
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync'],
  });
}

// ---------------------------------------------------------------------------------------------
// The start-up the tests share.

const tempDirs = [];
const browsers = [];

// A directory under the system's temporary one, removed when the test ends.
export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `stickmeter-${prefix}-`));
  tempDirs.push(dir);
  return dir;
}

// Chromium, closed when the test ends.
export async function openBrowser(nodeModules) {
  const browser = await launchChromium(nodeModules);
  browsers.push(browser);
  return browser;
}

async function cleanupAll() {
  for (const b of browsers.splice(0)) await b.close().catch(() => {});
  for (const p of [...children].reverse()) await stopProcess(p).catch(() => {});
  for (const d of tempDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

// Runs `main`, failing it after `deadlineMs`; then closes the browsers, stops the processes,
// removes the temporary directories, prints "N passed, M failed" and exits 0 or 1 (with the
// processes' last output on failure).
export async function runTest(name, deadlineMs, main) {
  const deadline = setTimeout(async () => {
    console.error(`FAIL: the ${name} test did not finish within ${deadlineMs / 1000} s`);
    dumpLogs();
    await cleanupAll();
    process.exit(1);
  }, deadlineMs);
  try {
    await main();
    clearTimeout(deadline);
    await cleanupAll();
    console.log(`${counts.passed} passed, 0 failed`);
    process.exit(0);
  } catch (err) {
    clearTimeout(deadline);
    console.error(`FAIL: ${err.message}`);
    dumpLogs();
    await cleanupAll();
    console.log(`${counts.passed} passed, 1 failed`);
    process.exit(1);
  }
}

// `stickmeter serve` on free loopback ports with its data in `dir`, plus `extra` flags; resolves
// once /api/v1/health answers 200. Returns { proc, httpPort, peersPort, base, restart() }:
// restart() starts it again on the same ports and data (after the test stopped it).
export async function startStickmeter(binary, dir, extra = []) {
  const httpPort = await freePort();
  const peersPort = await freePort();
  const argv = ['serve', '--data', path.join(dir, 'data'), '--http', `127.0.0.1:${httpPort}`,
    '--peers-listen', `127.0.0.1:${peersPort}`, '--name', 'stickmeter', ...extra];
  const start = async () => {
    const proc = startProcess('stickmeter', binary, argv);
    await waitFor('stickmeter to answer /api/v1/health', async () => {
      if (proc.exited) throw new Error(`stickmeter exited early (${JSON.stringify(proc.exited)})`);
      return (await httpGet(httpPort, '/api/v1/health')).status === 200;
    }, 15000);
    return proc;
  };
  const server = { httpPort, peersPort, base: `http://127.0.0.1:${httpPort}` };
  server.proc = await start();
  server.restart = async () => { server.proc = await start(); return server.proc; };
  return server;
}

// A HAProxy node `name` (its -L) whose peers section `section` has stickmeter at `peersPort` and
// the table `tableLine` ("table quota type string len 64 ... store ..."). With `frontend`, an
// HTTP frontend on a free port tracks the Host header in that table, applies `rules` (more
// http-request lines) and answers 200; the node is returned once it accepts connections there
// ({ proc, fePort }).
export async function startHaproxy(dir, { name, peersPort, tableLine, section = 'billing', frontend = false, rules = [] }) {
  const localPeerPort = await freePort();
  const fePort = frontend ? await freePort() : 0;
  const cfg = path.join(dir, `${name}.cfg`);
  fs.writeFileSync(cfg, `global
    log stderr format short local0 warning
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
peers ${section}
    bind 127.0.0.1:${localPeerPort}
    server ${name}
    server stickmeter 127.0.0.1:${peersPort}
    ${tableLine}
${frontend ? `frontend fe
    bind 127.0.0.1:${fePort}
    http-request track-sc0 req.hdr(host) table ${section}/${tableLine.split(/\s+/)[1]}
${rules.map((r) => `    ${r}\n`).join('')}    http-request return status 200 content-type text/plain string "ok\\n"
` : ''}`);
  const proc = startProcess(`haproxy ${name}`, HAPROXY, ['-f', cfg, '-L', name, '-db']);
  if (frontend) {
    await waitFor(`HAProxy ${name} to accept connections`, async () => {
      if (proc.exited) throw new Error(`haproxy exited early (${JSON.stringify(proc.exited)})`);
      return (await httpGet(fePort, '/', { Host: 'probe.invalid' }).catch(() => null)) !== null;
    }, 10000);
  }
  return { proc, fePort };
}

// A new page in its own context (`contextOptions`: viewport, locale, timezoneId, colorScheme)
// whose console errors and page errors are collected in `problems`, but console messages for
// which `ignore(text)` is true (expected ones, such as refused connections while the test has
// stopped the server). A busy server's 503 is always expected: a page that moves on quickly
// leaves queries running, more than --max-queries may be under way on a slow machine, and the UI
// waits out a 503 with Retry-After (ui_billing_test checks that it does). The browser logs the
// load failure all the same. `ready(name)` waits for a page of the UI to be drawn;
// `visit(hashPath, name)` loads one.
export async function openPage(browser, base, contextOptions = {}, ignoreAlso = () => false) {
  const ignore = (text) => /status of 503\b/.test(text) || ignoreAlso(text);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US', ...contextOptions });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && !ignore(m.text())) problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const ready = (name, timeout = 10000) => page.waitForSelector(`main[data-ready="${name}"]`, { timeout });
  const visit = async (hashPath, name) => {
    await page.evaluate(() => { delete document.querySelector('main').dataset.ready; }).catch(() => {});
    await page.goto(`${base}/${hashPath}`);
    await ready(name);
  };
  return { context, page, problems, ready, visit };
}
