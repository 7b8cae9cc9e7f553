// Display names of keys (`serve --key-names`, GET /api/v1/names): shown next to the key on the
// usage rows and the key page. Read once per table and kept for the session; a table with more
// names than one page shows the first page's (the list is sorted by key, 100,000 at most). A
// failure (an older server, a network error) shows no names rather than an error: names are an
// aid, the key is what is billed.
import { getJson } from './api.js';
import { h } from './dom.js';

const cache = new Map(); // table -> Promise<Map<key, name>>

export function keyNames(table) {
  if (!cache.has(table)) {
    cache.set(table, getJson('/api/v1/names', { table, limit: 100000 })
      .then((b) => new Map((b.names || []).map((n) => [String(n.key), String(n.name)])))
      .catch(() => { cache.delete(table); return new Map(); }));
  }
  return cache.get(table);
}

// The name of `key` as a small muted label after the key, or null without one.
export function nameLabel(names, key) {
  const name = names && names.get(String(key));
  return name ? h('span', { class: 'key-name muted small' }, name) : null;
}
