// Formatting of counts, bytes and times for display, and the range presets. Times, months and
// days are those of the server's billing zone (`billing_tz` of /api/v1/info, `serve
// --billing-tz`), which the header names: the UI's "November" is the export's and the CLI's,
// whatever zone the browser is in. setZone() is called once the server has answered.
export let zone = 'UTC';

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
let dateTime, dateOnly, monthYear, shortTime, clockTime, wallParts;

function buildFormatters() {
  const timeZone = zone;
  dateTime = new Intl.DateTimeFormat(undefined, {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  dateOnly = new Intl.DateTimeFormat(undefined, { timeZone, year: 'numeric', month: 'short', day: 'numeric' });
  monthYear = new Intl.DateTimeFormat(undefined, { timeZone, year: 'numeric', month: 'long' });
  shortTime = new Intl.DateTimeFormat(undefined, { timeZone, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  clockTime = new Intl.DateTimeFormat(undefined, { timeZone, hour: '2-digit', minute: '2-digit' });
  // Wall-clock fields in the zone, for the calendar arithmetic below.
  wallParts = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
}

// Uses `name` for every time shown and every period computed; an unknown name (a browser whose
// time zone data lacks it) falls back to UTC. Returns the zone in use.
export function setZone(name) {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    zone = name;
  } catch {
    zone = 'UTC';
  }
  buildFormatters();
  return zone;
}
buildFormatters();

export function zoneLabel() {
  if (zone === 'UTC' || zone === 'Etc/UTC') return zone; // "UTC (GMT)" says nothing more
  const parts = new Intl.DateTimeFormat(undefined, { timeZone: zone, timeZoneName: 'shortOffset' }).formatToParts(new Date());
  const off = parts.find((p) => p.type === 'timeZoneName');
  return off && off.value !== zone ? `${zone} (${off.value})` : zone;
}

// The wall clock of the zone at `ms`: { y, m (0-11), d, hh, mm, ss }.
export function wall(ms) {
  const p = Object.fromEntries(wallParts.formatToParts(new Date(ms)).map((x) => [x.type, Number(x.value)]));
  return { y: p.year, m: p.month - 1, d: p.day, hh: p.hour, mm: p.minute, ss: p.second };
}

// The zone's offset from UTC at `ms`, in ms.
function offsetAt(ms) {
  const w = wall(ms);
  return Date.UTC(w.y, w.m, w.d, w.hh, w.mm, w.ss) - Math.floor(ms / 1000) * 1000;
}

// Unix ms of a wall-clock time in the zone; fields may overflow (month 12 is January next year,
// day 0 the last of the month before), as with Date.UTC. A repeated time (the hour a DST change
// turns back) is its first occurrence; a skipped one is read with the offset before the jump, so
// a midnight that does not exist is the instant the day begins (as the server reads it).
const HALF_DAY_MS = 14 * 3600e3; // beyond any zone's offset
export function zoned(y, m, d = 1, hh = 0, mm = 0) {
  const asUtc = Date.UTC(y, m, d, hh, mm);
  const before = offsetAt(asUtc - HALF_DAY_MS);
  const after = offsetAt(asUtc + HALF_DAY_MS);
  const fits = [before, after].map((o) => asUtc - o).filter((t) => offsetAt(t) === asUtc - t);
  return fits.length ? Math.min(...fits) : asUtc - before;
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
  if (isBytes(metric)) return bytes(n);
  const word = unit(metric);
  // One request, one glitch: every unit word is a plural of an "s" or, for glitches, an "es".
  const one = String(n) !== '1' ? word : word === 'glitches' ? 'glitch' : word.slice(0, -1);
  return `${int(n)} ${one}`;
}

export function time(ms) {
  return ms ? dateTime.format(new Date(ms)) : '–';
}
export function day(ms) { return dateOnly.format(new Date(ms)); }
export function monthName(ms) { return monthYear.format(new Date(ms)); }
export function short(ms) { return shortTime.format(new Date(ms)); }
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

// [from, to) in Unix ms for a preset, in the billing zone: `today`, `month` (this month),
// `last-month`, `day` (the calendar day `date`, "YYYY-MM-DD"; today without one) or `a-month`
// (the month `date`, "YYYY-MM"; this month without one).
export function presetRange(preset, now = Date.now(), date = '') {
  const w = wall(typeof now === 'number' ? now : now.getTime());
  switch (preset) {
    case 'a-month': {
      const m = /^(\d{4})-(\d{2})$/.exec(date || '');
      const [y, mo] = m ? [Number(m[1]), Number(m[2]) - 1] : [w.y, w.m];
      return [zoned(y, mo, 1), zoned(y, mo + 1, 1)];
    }
    case 'day': {
      const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date || '');
      const [y, mo, d] = m ? [Number(m[1]), Number(m[2]) - 1, Number(m[3])] : [w.y, w.m, w.d];
      return [zoned(y, mo, d), zoned(y, mo, d + 1)];
    }
    case 'today':
      return [zoned(w.y, w.m, w.d), zoned(w.y, w.m, w.d + 1)];
    case 'last-month':
      return [zoned(w.y, w.m - 1, 1), zoned(w.y, w.m, 1)];
    case 'month':
    default:
      return [zoned(w.y, w.m, 1), zoned(w.y, w.m + 1, 1)];
  }
}

const pad = (n) => String(n).padStart(2, '0');
// "YYYY-MM-DD" of the day `ms` falls on in the billing zone (for <input type="date">).
export function dateInput(ms) {
  const w = wall(ms);
  return `${w.y}-${pad(w.m + 1)}-${pad(w.d)}`;
}
// "YYYY-MM" of the month `ms` falls in, in the billing zone.
export function monthInput(ms) {
  const w = wall(ms);
  return `${w.y}-${pad(w.m + 1)}`;
}

// Value for <input type="datetime-local"> from Unix ms, and back: wall clock of the billing zone.
export function toLocalInput(ms) {
  const w = wall(ms);
  return `${w.y}-${pad(w.m + 1)}-${pad(w.d)}T${pad(w.hh)}:${pad(w.mm)}`;
}
export function fromLocalInput(text) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(text || '');
  return m ? zoned(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5])) : null;
}
