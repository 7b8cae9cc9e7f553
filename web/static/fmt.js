// Formatting of counts, bytes and times for display, and the range presets. Times are shown in
// the browser's time zone, which the header names.
export const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const dateOnly = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const shortTime = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

export function zoneLabel() {
  const parts = new Intl.DateTimeFormat(undefined, { timeZoneName: 'shortOffset' }).formatToParts(new Date());
  const off = parts.find((p) => p.type === 'timeZoneName');
  return off ? `${zone} (${off.value})` : zone;
}

// Exact sum of counts that may be numbers or BigInts; returns a BigInt.
export function sum(values) {
  let s = 0n;
  for (const v of values) s += BigInt(v);
  return s;
}

// Orders numbers and BigInts alike (mixed comparisons are exact in JS).
export const cmp = (a, b) => (a > b) - (a < b);

// Exact value of a decimal integer string (as in the CSV export), or null.
export const exact = (text) => (/^-?\d+$/.test(text) ? BigInt(text) : null);

export function int(n) {
  return n === null || n === undefined || Number.isNaN(n) ? '–' : intFmt.format(n);
}

export function rate(n) {
  return n === null || n === undefined || !Number.isFinite(n) ? '–' : decFmt.format(n);
}

export const isBytes = (metric) => /^bytes_/.test(metric || '');

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(n) {
  if (n === null || n === undefined) return '–';
  let v = Number(n); // approximate on purpose: the unit display keeps 1 decimal
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${intFmt.format(v)} B` : `${decFmt.format(v)} ${UNITS[u]}`;
}

// The unit word of a metric's totals.
export function unit(metric) {
  if (isBytes(metric)) return 'bytes';
  const m = {
    http_req_cnt: 'requests', http_err_cnt: 'errors', http_fail_cnt: 'failures',
    conn_cnt: 'connections', sess_cnt: 'sessions', glitch_cnt: 'glitches',
  }[metric];
  return m || 'events';
}

// A metric's value for display: bytes in binary units, other counters as integers with unit.
export function amount(metric, n) {
  return isBytes(metric) ? bytes(n) : `${int(n)} ${unit(metric)}`;
}

export function time(ms) {
  return ms ? dateTime.format(new Date(ms)) : '–';
}
export function day(ms) { return dateOnly.format(new Date(ms)); }
export function short(ms) { return shortTime.format(new Date(ms)); }
const clockTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
export function clock(ms) { return clockTime.format(new Date(ms)); }

export function ago(ms, now = Date.now()) {
  if (!ms) return '–';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function duration(ms) {
  if (!ms) return '–';
  const s = ms / 1000;
  if (s < 120) return `${decFmt.format(s)} s`;
  if (s < 7200) return `${decFmt.format(s / 60)} min`;
  if (s < 172800) return `${decFmt.format(s / 3600)} h`;
  return `${decFmt.format(s / 86400)} d`;
}

// [from, to) in Unix ms for a preset, in the browser's zone.
export function presetRange(preset, now = new Date()) {
  const y = now.getFullYear();
  const m = now.getMonth();
  switch (preset) {
    case 'today': {
      const start = new Date(y, m, now.getDate());
      return [start.getTime(), new Date(y, m, now.getDate() + 1).getTime()];
    }
    case 'last-month':
      return [new Date(y, m - 1, 1).getTime(), new Date(y, m, 1).getTime()];
    case 'month':
    default:
      return [new Date(y, m, 1).getTime(), new Date(y, m + 1, 1).getTime()];
  }
}

// Value for <input type="datetime-local"> from Unix ms, and back (local time).
export function toLocalInput(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
export function fromLocalInput(text) {
  const t = new Date(text).getTime();
  return Number.isFinite(t) ? t : null;
}
