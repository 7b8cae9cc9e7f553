// A small hand-written SVG bar chart for a series {step_ms, points:[{t, v}]}: counters as the
// sum per step, gauges (`gauge`) as the maximum sample per step. Pointing at the chart shows the
// bucket under the pointer (its time span and value) in a tip, and marks its bar.
import * as fmt from './fmt.js';

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// A point may carry its bucket's `end` (a day of the billing zone, 23 to 25 hours around a DST
// change); without it a bucket is `stepMs` long.
//
// Renders the bars of `points` over [from, to) into a new <svg> drawn at `width` x `height` CSS
// pixels (so text is never stretched; re-render on resize), in a box that also holds the hover
// tip. Empty buckets are left blank.
export function barChart({ points, stepMs, from, to, metric, gauge = false, width = 900, height = 240 }) {
  const W = Math.max(240, Math.round(width)), H = height, L = 64, R = 12, T = 10, B = 26;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
  const total = points.reduce((a, p) => a + p.v, 0);
  // A gauge's samples are never summed: its label names the peak instead of a total.
  const value = (v) => (gauge ? `${fmt.int(v)} ${metric} (max)` : fmt.amount(metric, v));
  svg.setAttribute('aria-label', gauge
    ? `${points.length} buckets of ${fmt.duration(stepMs)}, peak ${value(Math.max(0, ...points.map((p) => p.v)))}`
    : `${points.length} buckets of ${fmt.duration(stepMs)}, total ${fmt.amount(metric, total)}`);
  const max = niceMax(Math.max(0, ...points.map((p) => p.v)));
  const span = Math.max(1, to - from);
  const x = (t) => L + ((t - from) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const label = (v) => (fmt.isBytes(metric) ? fmt.bytes(v) : fmt.int(v));
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(el('line', { class: 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, label(v)));
  }
  const gap = stepMs / span > 0.01 ? 2 : 0;
  const endOf = (p) => p.end ?? p.t + stepMs;
  const bars = [];
  for (const p of points) {
    if (endOf(p) <= from || p.t >= to) continue;
    const barW = Math.max(1, ((W - L - R) * (endOf(p) - p.t)) / span - gap);
    const r = el('rect', { class: 'bar', x: x(p.t), y: y(p.v), width: barW, height: Math.max(0, y(0) - y(p.v)) });
    r.append(el('title', {}, `${fmt.time(p.t)}: ${value(p.v)}`));
    svg.append(r);
    bars.push({ p, r });
  }
  const ticks = W < 500 ? 2 : 4;
  for (let i = 0; i <= ticks; i++) {
    const t = from + (span * i) / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svg.append(el('text', { x: x(t), y: H - 8, 'text-anchor': anchor },
      span > 3 * 86400000 ? fmt.day(t) : span > 86400000 ? fmt.short(t) : fmt.clock(t)));
  }

  // Hover: the bucket under the pointer, found from its x (thin bars are hard to hit exactly).
  const box = document.createElement('div');
  box.className = 'chart-box';
  const tip = document.createElement('div');
  tip.className = 'chart-tip';
  tip.id = 'chart-tip';
  tip.setAttribute('role', 'status');
  tip.hidden = true;
  let marked = null;
  const hide = () => { tip.hidden = true; if (marked) marked.classList.remove('hover'); marked = null; };
  svg.addEventListener('pointermove', (e) => {
    const rect = svg.getBoundingClientRect();
    const px = ((e.clientX - rect.left) / rect.width) * W;
    const t = from + ((px - L) / (W - L - R)) * span;
    const hit = bars.find(({ p }) => t >= p.t && t < endOf(p));
    if (!hit) { hide(); return; }
    if (marked !== hit.r) { if (marked) marked.classList.remove('hover'); marked = hit.r; marked.classList.add('hover'); }
    tip.textContent = `${fmt.time(hit.p.t)} – ${fmt.time(endOf(hit.p))}: ${value(hit.p.v)}`;
    tip.dataset.t = String(hit.p.t);
    tip.dataset.value = String(hit.p.v);
    tip.hidden = false;
    const left = Math.min(Math.max(0, e.clientX - rect.left + 12), Math.max(0, rect.width - tip.offsetWidth));
    tip.style.transform = `translate(${Math.round(left)}px, 0)`;
  });
  svg.addEventListener('pointerleave', hide);
  box.append(svg, tip);
  return box;
}
