// DOM helpers shared by the pages.

// Creates an element: h('td', {class: 'num'}, 'text', child, ...). Text is never parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function field(id, text, control) {
  return h('div', { class: 'field' }, h('label', { for: id }, text), control);
}
