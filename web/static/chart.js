// Small hand-written SVG bar charts of series {step_ms, points:[{t, v}]}: counters as the sum per
// step, gauges (`gauge`) as the maximum sample per step. barChart draws one series; stackedChart
// draws several stacked (the top keys of a table). Pointing at a chart shows the bucket under
// the pointer (its time span and value, or each layer's) in a tip, and marks its bar.
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
const endOf = (p, stepMs) => p.end ?? p.t + stepMs;

// The axes of a chart of [from, to) up to `top` at `width` x `height` CSS pixels (so text is
// never stretched; re-render on resize): the <svg>, and x(t), y(v) and the bar width of a bucket.
function frame({ from, to, stepMs, metric, top, width, height }) {
  const W = Math.max(240, Math.round(width)), H = height, L = 64, R = 12, T = 10, B = 26;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
  const max = niceMax(top);
  const span = Math.max(1, to - from);
  const x = (t) => L + ((t - from) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const label = (v) => (fmt.isBytes(metric) ? fmt.bytes(v) : fmt.int(v));
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(el('line', { class: 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(el('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, label(v)));
  }
  const ticks = W < 500 ? 2 : 4;
  for (let i = 0; i <= ticks; i++) {
    const t = from + (span * i) / ticks;
    const anchor = i === 0 ? 'start' : i === ticks ? 'end' : 'middle';
    svg.append(el('text', { x: x(t), y: H - 8, 'text-anchor': anchor },
      span > 3 * 86400000 ? fmt.day(t) : span > 86400000 ? fmt.short(t) : fmt.clock(t)));
  }
  const gap = stepMs / span > 0.01 ? 2 : 0;
  const barW = (p) => Math.max(1, ((W - L - R) * (endOf(p, stepMs) - p.t)) / span - gap);
  // The time under a pointer event's x.
  const timeAt = (e) => {
    const rect = svg.getBoundingClientRect();
    return from + ((((e.clientX - rect.left) / rect.width) * W - L) / (W - L - R)) * span;
  };
  return { svg, x, y, barW, timeAt, inRange: (p) => endOf(p, stepMs) > from && p.t < to };
}

// The chart in a box with its hover tip. `hit(t)` gives what is under the time t:
// { p (the bucket), marks (elements to mark), text, value }, or null.
function withTip(svg, hit, stepMs) {
  const box = document.createElement('div');
  box.className = 'chart-box';
  const tip = document.createElement('div');
  tip.className = 'chart-tip';
  tip.id = 'chart-tip';
  tip.setAttribute('role', 'status');
  tip.hidden = true;
  let marked = [];
  const unmark = () => { for (const m of marked) m.classList.remove('hover'); marked = []; };
  const hide = () => { tip.hidden = true; unmark(); };
  svg.addEventListener('pointermove', (e) => {
    const found = hit(e);
    if (!found) { hide(); return; }
    if (marked[0] !== found.marks[0]) { unmark(); marked = found.marks; for (const m of marked) m.classList.add('hover'); }
    tip.textContent = `${fmt.time(found.p.t)} – ${fmt.time(endOf(found.p, stepMs))}: ${found.text}`;
    tip.dataset.t = String(found.p.t);
    tip.dataset.value = String(found.value);
    tip.hidden = false;
    const rect = svg.getBoundingClientRect();
    const left = Math.min(Math.max(0, e.clientX - rect.left + 12), Math.max(0, rect.width - tip.offsetWidth));
    tip.style.transform = `translate(${Math.round(left)}px, 0)`;
  });
  svg.addEventListener('pointerleave', hide);
  box.append(svg, tip);
  return box;
}

// Renders the bars of `points` over [from, to); empty buckets are left blank.
export function barChart({ points, stepMs, from, to, metric, gauge = false, agg = 'max', width = 900, height = 240 }) {
  const total = points.reduce((a, p) => a + p.v, 0);
  // A gauge's samples are never summed: its label names the peak (or the last value) instead.
  const value = (v) => (gauge ? `${fmt.int(v)} ${metric} (${agg})` : fmt.amount(metric, v));
  const f = frame({ from, to, stepMs, metric, top: Math.max(0, ...points.map((p) => p.v)), width, height });
  f.svg.setAttribute('aria-label', gauge
    ? `${points.length} buckets of ${fmt.duration(stepMs)}, peak ${value(Math.max(0, ...points.map((p) => p.v)))}`
    : `${points.length} buckets of ${fmt.duration(stepMs)}, total ${fmt.amount(metric, total)}`);
  const bars = [];
  for (const p of points) {
    if (!f.inRange(p)) continue;
    const r = el('rect', { class: 'bar', x: f.x(p.t), y: f.y(p.v), width: f.barW(p), height: Math.max(0, f.y(0) - f.y(p.v)) });
    r.append(el('title', {}, `${fmt.time(p.t)}: ${value(p.v)}`));
    f.svg.append(r);
    bars.push({ p, r });
  }
  // The bucket under the pointer is found from its x (thin bars are hard to hit exactly).
  return withTip(f.svg, (e) => {
    const t = f.timeAt(e);
    const b = bars.find(({ p }) => t >= p.t && t < endOf(p, stepMs));
    return b && { p: b.p, marks: [b.r], text: value(b.p.v), value: b.p.v };
  }, stepMs);
}

// Several counter series stacked, bottom first: `layers` = [{ label, points }] (points of one
// step and bucketing). Layer i's bars have the class `layer-i` and `data-layer` = its label.
export function stackedChart({ layers, stepMs, from, to, metric, width = 900, height = 240 }) {
  const buckets = new Map(); // t -> { p: {t, end}, values: [per layer] }
  layers.forEach((layer, i) => {
    for (const p of layer.points) {
      const b = buckets.get(p.t) || { p: { t: p.t, end: p.end }, values: layers.map(() => 0) };
      b.values[i] += p.v;
      buckets.set(p.t, b);
    }
  });
  const sorted = [...buckets.values()].sort((a, b) => a.p.t - b.p.t);
  const sumOf = (b) => b.values.reduce((a, v) => a + v, 0);
  const f = frame({ from, to, stepMs, metric, top: Math.max(0, ...sorted.map(sumOf)), width, height });
  f.svg.setAttribute('aria-label', `${layers.length} keys stacked in ${sorted.length} buckets of ${fmt.duration(stepMs)}`);
  const drawn = [];
  for (const b of sorted) {
    if (!f.inRange(b.p)) continue;
    let base = 0;
    const rects = [];
    b.values.forEach((v, i) => {
      if (!v) return;
      const r = el('rect', { class: `bar layer-${i}`, 'data-layer': layers[i].label, 'data-v': v, x: f.x(b.p.t), y: f.y(base + v),
        width: f.barW(b.p), height: Math.max(0, f.y(base) - f.y(base + v)) });
      r.append(el('title', {}, `${fmt.time(b.p.t)} ${layers[i].label}: ${fmt.amount(metric, v)}`));
      f.svg.append(r);
      rects.push(r);
      base += v;
    });
    drawn.push({ b, rects });
  }
  return withTip(f.svg, (e) => {
    const t = f.timeAt(e);
    const d = drawn.find(({ b }) => t >= b.p.t && t < endOf(b.p, stepMs));
    if (!d) return null;
    const parts = d.b.values.map((v, i) => (v ? `${layers[i].label} ${fmt.amount(metric, v)}` : null)).filter(Boolean);
    return { p: d.b.p, marks: d.rects, text: parts.join(', '), value: sumOf(d.b) };
  }, stepMs);
}
