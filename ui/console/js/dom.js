// Small DOM helpers: the page is plain DOM, no framework and no build step.

/** h('div.card#x', {onclick, title, dataset: {...}}, child, ...) -> element. Strings become text, never HTML. */
export function h(tag, props, ...children) {
  const [name, ...rest] = tag.split(/(?=[.#])/);
  const el = document.createElement(name || 'div');
  for (const part of rest) {
    if (part.startsWith('.')) el.classList.add(part.slice(1));
    else if (part.startsWith('#')) el.id = part.slice(1);
  }
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
      else if (key === 'dataset') Object.assign(el.dataset, value);
      else if (key === 'style') Object.assign(el.style, value); // CSSOM: allowed by the page's CSP
      else if (key === 'class') el.className = value;
      else if (key in el && typeof value !== 'string') el[key] = value;
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

export function percent(value, digits = 0) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  return `${(value * 100).toFixed(digits)}%`;
}

export function number(value, digits = 0) {
  if (value === undefined || value === null || Number.isNaN(value)) return '–';
  return Number(value).toFixed(digits);
}

export function dateTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function timeAgo(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

// Distinct colours that carry white text; a label keeps its colour across sections and reloads.
const PALETTE = ['#1f6fb2', '#c2410c', '#2f7d3f', '#7c3aed', '#b91c5c', '#0f766e', '#a16207', '#4338ca', '#be123c', '#15803d', '#9333ea', '#0e7490'];

/** A steady colour per label, so a flavour looks the same in every section. */
export function labelColour(label) {
  if (label === 'unknown') return '#6b7280';
  let hash = 0;
  for (const ch of String(label)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

export function labelBadge(label, extraClass = '') {
  const el = h(`span.badge${extraClass ? '.' + extraClass : ''}`, { title: label }, label);
  el.style.setProperty('--label-colour', labelColour(label));
  return el;
}

let toastRoot;
/** A short message in the corner; errors stay longer. */
export function toast(message, kind = 'info') {
  toastRoot ??= document.getElementById('toasts');
  const el = h(`div.toast.${kind}`, { role: kind === 'error' ? 'alert' : 'status' }, message);
  toastRoot.append(el);
  setTimeout(() => el.classList.add('leaving'), kind === 'error' ? 7000 : 3000);
  setTimeout(() => el.remove(), kind === 'error' ? 7600 : 3600);
}

/** Runs `fn` at most once per animation frame, however often it is asked. */
export function batched(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}
