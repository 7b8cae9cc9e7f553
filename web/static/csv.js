// CSV files made in the browser from what a page shows.

// A cell: RFC 4180 quoting and, because people open these files in a spreadsheet, the Excel-safe
// form of the billing export (a text starting with = + - @ TAB or CR gets a leading ').
export function cell(text) {
  let s = String(text);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

// Saves `rows` (arrays of cells, the header first) as `name`.csv; the name keeps only letters,
// digits, dot, dash and underscore.
export function saveCsv(name, rows) {
  const text = rows.map((r) => r.map(cell).join(',')).join('\r\n');
  const blob = new Blob([`${text}\r\n`], { type: 'text/csv;charset=utf-8' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '')}.csv`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
