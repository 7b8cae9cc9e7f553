// Screenshots of every page of the UI, as the docs show them: a real stickmeter (billing zone
// Europe/Berlin, quotas on) and two real HAProxy nodes carrying a few customers' requests, each
// page in a light and a dark laptop window and a light phone. Each file is checked to be a PNG
// drawn without console errors.
//
// As a test (web.screenshots) the files go to the build's artifacts; to refresh the docs' images:
//   node tests/web/screenshots.mjs --stickmeter build/dev/app/stickmeter \
//     --node-modules build/dev/tests/web/node/node_modules --artifacts docs/img
//
// Usage: node screenshots.mjs --stickmeter BIN --node-modules DIR --artifacts DIR
import fs from 'node:fs';
import path from 'node:path';
import {
  HAPROXY, CHROMIUM, parseArgs, log, check, eq, httpGet, httpSend, waitFor, runTest, tempDir, startStickmeter,
  startHaproxy, openBrowser, openPage,
} from './harness.mjs';

const args = parseArgs(['stickmeter', 'node-modules', 'artifacts']);
const CUSTOMERS = { 'acme.example': 60, 'globex.example': 34, 'initech.example': 21, 'umbrella.example': 13, 'hooli.example': 8,
  'stark.example': 5, 'wayne.example': 3 };
const SHAPES = {
  light: { viewport: { width: 1280, height: 800 }, colorScheme: 'light' },
  dark: { viewport: { width: 1280, height: 800 }, colorScheme: 'dark' },
  phone: { viewport: { width: 390, height: 844 }, colorScheme: 'light', isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
};

async function main() {
  for (const f of [args.stickmeter, CHROMIUM, HAPROXY]) if (!fs.existsSync(f)) throw new Error(`${f} not found`);
  fs.mkdirSync(args.artifacts, { recursive: true });
  const tmp = tempDir('shots');
  const server = await startStickmeter(args.stickmeter, tmp, ['--billing-tz', 'Europe/Berlin', '--quota', '/quota']);
  const tableLine = 'table quota type string len 64 size 10k expire 1h store http_req_cnt,bytes_out_cnt,conn_cur\n'
    + '    table quota.quota type string len 64 size 10k expire 1h store gpt0,gpc0';
  const nodes = [];
  for (const name of ['lb1', 'lb2']) nodes.push(await startHaproxy(tmp, { name, peersPort: server.peersPort, frontend: true, tableLine }));
  // The customers' requests, spread over both nodes.
  let i = 0;
  for (const [host, n] of Object.entries(CUSTOMERS)) {
    for (let k = 0; k < n; k++) await httpGet(nodes[i++ % 2].fePort, `/api/${k}`, { Host: host });
  }
  const api = async (p) => JSON.parse((await httpGet(server.httpPort, p)).body.toString());
  const table = (await waitFor('the table', async () => (await api('/api/v1/tables')).tables.find((t) => t.name === '/quota'), 15000)).name;
  await waitFor('every request', async () => {
    const rows = (await api(`/api/v1/usage?table=${encodeURIComponent(table)}&metric=http_req_cnt&from=${Date.now() - 86400e3}&to=${Date.now() + 86400e3}`)).rows;
    return Object.entries(CUSTOMERS).every(([k, n]) => rows.some((r) => r.key === k && r.total === n));
  }, 20000);
  for (const [key, limit] of [['acme.example', 50], ['globex.example', 100], [undefined, 1000]]) {
    const put = await httpSend(server.httpPort, 'PUT', '/api/v1/quotas', { table, ...(key ? { key } : {}), metric: 'http_req_cnt', limit, period: 'month' });
    check(put.status === 200 || put.status === 201, `quota ${key || 'default'} set: ${put.status} ${JSON.stringify(put.body)}`);
  }
  log('traffic and quotas in place');

  const month = new URLSearchParams({ table, metric: 'http_req_cnt', range: 'month' });
  const pages = {
    overview: ['#/overview', 'overview'],
    usage: [`#/usage?${month}&compare=1`, 'usage'],
    key: [`#/key?${new URLSearchParams({ table, key: 'acme.example', metric: 'http_req_cnt', range: 'today' })}`, 'key'],
    // The invoice layout of this month, a column per node, bytes in kB.
    export: [`#/export?${new URLSearchParams({ layout: 'invoice', table, period: new Date().toISOString().slice(0, 7), per_source: 'true', bytes_unit: 'kB' })}`, 'export'],
    quotas: ['#/quotas', 'quotas'],
  };
  const browser = await openBrowser(args['node-modules']);
  for (const [shape, options] of Object.entries(SHAPES)) {
    const { page, problems, visit, context } = await openPage(browser, server.base, options);
    for (const [name, [hash, ready]] of Object.entries(pages)) {
      await visit(hash, ready);
      // What loads after the page is drawn: the usage chart, the key's subtotals.
      if (name === 'usage') await page.waitForSelector('#usage-legend', { timeout: 10000 });
      if (name === 'key') await page.waitForSelector('#key-nodes', { timeout: 10000 });
      const file = path.join(args.artifacts, `ui-${name}-${shape}.png`);
      await page.screenshot({ path: file, fullPage: shape !== 'phone' || name !== 'key' });
      eq(fs.readFileSync(file).subarray(1, 4).toString(), 'PNG', `${path.basename(file)} is a PNG`);
    }
    eq(problems, [], `no console errors (${shape})`);
    await context.close();
  }
  log(`${Object.keys(pages).length * Object.keys(SHAPES).length} screenshots in ${args.artifacts}`);
}

await runTest('screenshots', 110_000, main);
