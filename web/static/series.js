// Series for charts: which step a period is drawn at, and the points of a key's series in days
// of the billing zone. Shared by the key page (one key) and the usage page (the top keys).
import { getJson } from './api.js';
import * as fmt from './fmt.js';

export const STEP_MS = { '1m': 60e3, '1h': 3600e3, '1d': 86400e3 };
// A chart about 900 px wide: 400 bars are 2 px or more each.
const MAX_BARS = 400;

// The steps a period of `span` ms may be drawn at, finest first; at least 1d.
export function stepsFor(span) {
  const fit = Object.keys(STEP_MS).filter((s) => span / STEP_MS[s] <= MAX_BARS);
  return fit.length ? fit : ['1d'];
}

// The series API's 1d buckets are UTC days. In another billing zone a day step asks for hours
// instead (minutes where the zone's days do not start on a UTC hour, as in Asia/Kathmandu) and
// adds them up into the zone's days, so that a bar is a billing day; past what one answer may
// hold (API_MAX_POINTS) the UTC days are drawn.
const API_MAX_POINTS = 100000;
export function seriesPlan(step, r) {
  if (step !== '1d' || fmt.zone === 'UTC' || fmt.zone === 'Etc/UTC') return { ask: step };
  const w = fmt.wall(r.from);
  const days = [];
  for (let d = 0; ; d++) {
    const t = fmt.zoned(w.y, w.m, w.d + d);
    if (t >= r.to) break;
    days.push({ t, end: fmt.zoned(w.y, w.m, w.d + d + 1) });
  }
  const hourly = days.every((x) => x.t % STEP_MS['1h'] === 0);
  const ask = hourly ? '1h' : '1m';
  if ((r.to - r.from) / STEP_MS[ask] > API_MAX_POINTS) return { ask: '1d' };
  return { ask, days };
}

// Points (sorted by time) summed, or for a gauge their maximum or their last taken, into `days`;
// days without a point are left out, as the API leaves out empty buckets.
function intoDays(points, days, gauge, agg) {
  const out = days.map((x) => ({ t: x.t, end: x.end, v: 0, n: 0 }));
  let i = 0;
  for (const p of points) {
    while (i < out.length && p.t >= out[i].end) i++;
    if (i === out.length) break;
    if (p.t < out[i].t) continue;
    if (!gauge) out[i].v += p.v;
    else if (agg === 'last') out[i].v = p.v;
    else out[i].v = out[i].n ? Math.max(out[i].v, p.v) : p.v;
    out[i].n++;
  }
  return out.filter((x) => x.n).map(({ t, end, v }) => ({ t, end, v }));
}

// One key's series (without `key`, the whole table's) over the range `r` at `step` (a key of
// STEP_MS), as chart points:
// { gauge, agg, stepMs, points: [{t, v, end?}] }. `agg` ('max' or 'last') is asked of a gauge
// only. The chart only needs shapes: plain numbers are fine.
export async function loadSeries({ table, metric, key, r, step, agg }) {
  const plan = seriesPlan(step, r);
  const s = await getJson('/api/v1/series', { table, metric, ...(key === undefined ? {} : { key }), from: r.from, to: r.to, step: plan.ask, ...(agg ? { agg } : {}) });
  const raw = (s.points || []).map((p) => ({ t: Number(p.t), v: Number(p.v) }));
  const gauge = Boolean(s.gauge);
  return {
    gauge,
    agg: gauge ? s.agg || 'max' : undefined,
    stepMs: plan.days ? STEP_MS['1d'] : s.step_ms || 60000,
    points: plan.days ? intoDays(raw, plan.days, gauge, s.agg) : raw,
  };
}
