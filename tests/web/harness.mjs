// Shared pieces of the browser tests: checks, child processes that are always cleaned up, free
// ports, plain HTTP from node, polling, and Chromium through playwright-core.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import http from 'node:http';
import net from 'node:net';
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
