// Overview: peers, tables and ingest counters, refreshed every few seconds.
//
// Units: an "update" is one stick-table entry change a peer sent (the `updates` of
// /api/v1/peers); the ingest rate and each peer's Updates/s are differences of those counts
// between two readings, so the card is the sum of the column. Readings are kept across
// navigation, and the second one is taken a second after the first, so rates appear at once.
import { getJson, getText } from './api.js';
import * as fmt from './fmt.js';
import { h } from './dom.js';
import { main, nav, isCurrent, showError, tables, counterMetrics, loading, RETRY_MS } from './shared.js';

// Prometheus text -> Map(name -> sum over label sets).
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    out.set(m[1], (out.get(m[1]) || 0) + v);
  }
  return out;
}

// The last reading of every peer's update count: { at (ms), counts: Map(peer id -> updates) }.
// A peer is identified by name and direction: its address changes on every reconnection.
let last = null;
const peerId = (p) => `${p.name}|${p.direction}`;
const FIRST_GAP_MS = 1000; // second reading after the first, so rates fill in quickly

export async function overviewPage(gen) {
  main.replaceChildren(
    h('h1', {}, 'Overview'),
    h('div', { class: 'cards', id: 'ov-cards' }),
    h('h2', {}, 'HAProxy peers'),
    h('div', { class: 'scroll', id: 'ov-peers' }, loading()),
    h('div', { id: 'ov-refused' }),
    h('h2', {}, 'Stick tables'),
    h('div', { class: 'scroll', id: 'ov-tables' }),
    h('p', { class: 'muted small', id: 'ov-updated' }),
  );
  let busy = false; // a slow answer must not pile up refreshes
  const refresh = async () => {
    if (busy) return;
    busy = true;
    try { await refreshOnce(gen); } finally { busy = false; }
  };
  await refresh();
  const quick = setTimeout(refresh, FIRST_GAP_MS);
  const timer = setInterval(refresh, RETRY_MS);
  nav.cleanups.push(() => { clearTimeout(quick); clearInterval(timer); });
}

function card(id, label, value, title, cls = '') {
  return h('div', { class: `card ${cls}`, id, title }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
}

// Offline: what the page shows may be stale, and whether peers are connected is unknown.
function markUnknown() {
  const cards = document.getElementById('ov-cards');
  if (cards && !cards.children.length) cards.append(card('ov-card-peers', 'Peers connected', 'unknown', 'server unreachable'));
  const peersCard = document.querySelector('#ov-card-peers .value');
  if (peersCard) peersCard.textContent = 'unknown';
  for (const c of document.querySelectorAll('#ov-cards .card')) c.classList.add('stale');
  for (const d of document.querySelectorAll('#ov-peers .dot')) { d.className = 'dot unknown'; d.title = 'unknown: server unreachable'; }
}

async function refreshOnce(gen) {
  let peers, tbls, metricsText;
  try {
    [peers, tbls, metricsText] = await Promise.all([
      getJson('/api/v1/peers'),
      tables(true),
      getText('/metrics').catch((err) => { if (err.offline) throw err; return ''; }),
    ]);
  } catch (err) {
    if (!isCurrent(gen)) return;
    showError(err);
    if (err.offline) markUnknown();
    return;
  }
  if (!isCurrent(gen)) return;
  showError(null);
  // Connections refused at their hello (a wrong peer name, a name not allowed): never connected,
  // but a node meant to be a peer, so they count in the total and are listed with the reason.
  const refused = Array.isArray(peers) ? [] : peers.refused || [];
  peers = Array.isArray(peers) ? peers : peers.peers || [];
  const now = Date.now();
  const metrics = parseMetrics(metricsText);
  const counts = new Map(peers.map((p) => [peerId(p), Number(p.updates)]));
  // Rates from the previous reading; a count that went down (a restarted server) has none.
  const dt = last ? (now - last.at) / 1000 : 0;
  const rateOf = (p) => {
    const before = last && last.counts.get(peerId(p));
    return before !== undefined && before !== null && dt > 0 && Number(p.updates) >= before
      ? (Number(p.updates) - before) / dt : null;
  };
  const rates = peers.map(rateOf);
  const ingestRate = peers.length && rates.every((r) => r !== null) ? rates.reduce((a, r) => a + r, 0) : (peers.length ? null : 0);
  last = { at: now, counts };

  const received = peers.reduce((a, p) => a + Number(p.updates), 0);
  const deltas = metrics.get('stickmeter_deltas_written_total');
  // Data files plus what the memtable holds before its next flush (already in the write-ahead
  // log); the journal backlog is the same data seen from another side, so it is not added.
  const sst = metrics.get('stickmeter_store_live_sst_bytes');
  const memtable = metrics.get('stickmeter_store_memtable_bytes');
  const stored = sst === undefined && memtable === undefined ? undefined : (sst || 0) + (memtable || 0);
  const connected = peers.filter((p) => p.connected).length;
  const listed = new Set(peers.map((p) => p.name));
  const refusedNames = new Set(refused.map((r) => r.name).filter((n) => !listed.has(n)));
  const peersTitle = refused.length
    ? `HAProxy peer connections now; ${refusedNames.size} more refused at their hello (see Refused connections)`
    : 'HAProxy peer connections now';
  document.getElementById('ov-cards').replaceChildren(
    card('ov-card-peers', 'Peers connected', `${fmt.int(connected)} / ${fmt.int(peers.length + refusedNames.size)}`,
      peersTitle, refusedNames.size ? 'bad' : ''),
    card('ov-card-tables', 'Stick tables', fmt.int(tbls.length), 'tables announced by HAProxy'),
    card('ov-card-received', 'Updates received', `${fmt.int(received)} updates`, 'stick-table entry updates received from every peer (sum of the Updates column)'),
    card('ov-card-rate', 'Ingest rate', ingestRate === null ? 'measuring…' : `${fmt.rate(ingestRate)} updates/s`,
      'entry updates per second over the last refresh (sum of the Updates/s column)'),
    card('ov-card-deltas', 'Deltas written', deltas === undefined ? '–' : `${fmt.int(deltas)} deltas`,
      'non-zero counter deltas stored (stickmeter_deltas_written_total)'),
    card('ov-card-store', 'Store size', stored === undefined ? '–' : fmt.bytes(stored),
      'data files and memtable (stickmeter_store_live_sst_bytes + stickmeter_store_memtable_bytes)'));

  const peerRows = peers.map((p, i) => h('tr', {},
    h('td', { class: 'nowrap' }, h('span', { class: `dot ${p.connected ? 'on' : 'off'}`, title: p.connected ? 'connected' : 'disconnected' }),
      p.name),
    h('td', {}, p.direction || '–'),
    h('td', { class: 'nowrap' }, h('code', {}, p.address || '–')),
    h('td', { class: 'hide-sm', title: fmt.time(p.since_ms) }, p.connected ? fmt.ago(p.since_ms, now) : 'disconnected'),
    h('td', { title: fmt.time(p.last_message_ms) }, fmt.ago(p.last_message_ms, now)),
    h('td', { class: 'num' }, fmt.int(p.updates)),
    h('td', { class: 'num' }, rates[i] === null ? '…' : fmt.rate(rates[i])),
    h('td', { class: 'hide-sm small bad' }, p.last_error || '')));
  // A shared peers section makes totals over nodes inexact: say so above everything else.
  const warnings = peers.filter((p) => p.warning).map((p) =>
    h('p', { class: 'banner', role: 'alert' }, `Topology warning for ${p.name}: ${p.warning}.`));
  document.getElementById('ov-peers').replaceChildren(...warnings, peers.length
    ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Peer'), h('th', {}, 'Direction'), h('th', {}, 'Address'),
      h('th', { class: 'hide-sm' }, 'Connected since'), h('th', {}, 'Last message'), h('th', { class: 'num' }, 'Updates'),
      h('th', { class: 'num' }, 'Updates/s'), h('th', { class: 'hide-sm' }, 'Last error'))), h('tbody', {}, peerRows))
    : h('p', { class: 'muted pad' }, 'No HAProxy peer has connected yet.'));
  document.getElementById('ov-refused').replaceChildren(...(refused.length ? [h('h2', {}, 'Refused connections'), h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Peer name sent'), h('th', {}, 'Address'), h('th', {}, 'Reason'),
      h('th', { class: 'num' }, 'Times'), h('th', {}, 'Last'))),
    h('tbody', {}, refused.map((r) => h('tr', {},
      h('td', { class: 'nowrap' }, h('span', { class: 'dot off', title: 'refused' }), r.name || '(none)'),
      h('td', { class: 'nowrap' }, h('code', {}, r.address || '–')),
      h('td', { class: 'small bad' }, r.reason),
      h('td', { class: 'num' }, fmt.int(r.count)),
      h('td', { title: fmt.time(r.last_ms) }, fmt.ago(r.last_ms, now)))))))] : []));

  const tableRows = tbls.map((t) => {
    const counters = new Set(counterMetrics(t));
    return h('tr', {},
      h('td', {}, h('a', { href: `#/usage?table=${encodeURIComponent(t.name)}` }, t.name)),
      h('td', {}, `${t.key_type || '–'}${t.key_size ? ` (${t.key_size})` : ''}`),
      h('td', { class: 'hide-sm' }, t.expire_ms ? fmt.duration(t.expire_ms) : '–'),
      h('td', {}, (t.data_types || []).map((d) => h('span', { class: `tag${counters.has(d) ? ' counter' : ''}`,
        title: counters.has(d) ? 'counter: billed as deltas' : 'gauge: sampled, never summed' }, d))),
      h('td', {}, (t.sources || []).join(', ') || '–'));
  });
  document.getElementById('ov-tables').replaceChildren(tbls.length
    ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Table'), h('th', {}, 'Key type'), h('th', { class: 'hide-sm' }, 'Expire'),
      h('th', {}, 'Data types'), h('th', {}, 'Sources'))), h('tbody', {}, tableRows))
    : h('p', { class: 'muted pad' }, 'No stick table has been announced yet.'));

  document.getElementById('ov-updated').textContent =
    `Updated ${fmt.time(now)} · refreshes every ${RETRY_MS / 1000} s · counters are outlined in blue, gauges are not billed`;
}
