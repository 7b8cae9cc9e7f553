// Data completeness of the period a page shows (GET /api/v1/coverage): whether stickmeter was
// receiving from every HAProxy node over it, so that "no usage" is never read where there was
// no data. coverageNotice() returns a box that fills itself: a clear notice with a details list
// when the period is partly covered or not at all, one quiet line when it is complete.
import { getJson } from './api.js';
import * as fmt from './fmt.js';
import { h } from './dom.js';
import { isCurrent } from './shared.js';

const times = (n) => (n === 1 ? 'once' : `${fmt.int(n)} times`);

// The headline: what is missing, in a sentence (billing/coverage.cc says it the same way).
export function coverageText(c) {
  if (c.status === 'complete') return '✓ All nodes connected for the whole period.';
  if (c.status === 'none') {
    if (!c.first_seen_ms) return 'No data: stickmeter has not received from any node yet.';
    if (c.first_seen_ms >= c.to_ms) return `No data: stickmeter was not receiving from any node before ${fmt.time(c.first_seen_ms)}.`;
    if (c.future_from_ms && c.future_from_ms <= c.from_ms) return 'No data yet: this period has not started.';
    return 'No data: stickmeter was not connected to any node during this period.';
  }
  const parts = [];
  if (c.first_seen_ms > c.from_ms) parts.push(`no node before ${fmt.time(c.first_seen_ms)}`);
  for (const s of c.sources) {
    if (s.gap_count) parts.push(`${s.source} was disconnected ${times(s.gap_count)}, ${fmt.duration(s.gap_ms)} in total`);
  }
  if (!parts.length && c.future_from_ms) return 'All nodes connected so far; the period is still running.';
  if (c.future_from_ms) parts.push(`the period runs until ${fmt.time(c.to_ms)}`);
  return `Partly covered: ${parts.join('; ')}.`;
}

function details(c) {
  const items = c.sources.map((s) => {
    const gaps = s.gaps.map((g) => `${fmt.time(g.from_ms)} – ${fmt.time(g.to_ms)}`);
    if (s.gap_count > s.gaps.length) gaps.push(`${fmt.int(s.gap_count - s.gaps.length)} more`);
    const resyncs = s.resync_count ? `; restarted (full resync) ${times(s.resync_count)}: ${s.resyncs.map(fmt.time).join(', ')}` : '';
    return h('li', { dataset: { source: s.source } },
      h('strong', {}, s.source), `: first seen ${fmt.time(s.first_seen_ms)}${s.connected ? ', connected now' : ', not connected now'}`,
      gaps.length ? `; not connected ${gaps.join(', ')}` : s.status === 'none' ? '; no session in this period' : '; connected throughout', resyncs);
  });
  return h('details', {}, h('summary', {}, 'Details'),
    h('ul', {}, items.length ? items : h('li', {}, 'No HAProxy node has connected yet.')),
    h('p', { class: 'muted small' }, 'While a node is disconnected its requests are not lost: on reconnect HAProxy sends its '
      + 'current counters, and what it counted meanwhile is dated at the reconnect.'));
}

// A box for the period of `range` (from and to, or a calendar period and tz, as the API takes
// them) that fills itself; `id` names it for tests and links.
export function coverageNotice(gen, { id, ...range }) {
  const box = h('div', { id, class: 'coverage', role: 'status', hidden: true });
  getJson('/api/v1/coverage', range).then((c) => {
    if (!isCurrent(gen)) return;
    box.dataset.coverage = c.status;
    // Complete, or complete so far of a period still running: one quiet line.
    const soFar = c.status === 'partial' && c.first_seen_ms && c.first_seen_ms <= c.from_ms && !c.sources.some((s) => s.gap_count);
    box.className = c.status === 'complete' || soFar ? 'coverage quiet' : 'coverage warn';
    // replaceChildren would print a null as text: a complete period has no details.
    box.replaceChildren(...[h('span', { class: 'coverage-text' }, coverageText(c)), c.status === 'complete' ? null : details(c)].filter(Boolean));
    box.hidden = false;
  }).catch(() => { /* an older server without coverage: say nothing */ });
  return box;
}
