// Small DOM helpers: the page is plain DOM, no framework and no build step.
import { colourAt, inkOn, labelColours, UNKNOWN_COLOUR } from './colours.js';

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

let colours = new Map();
/** Labels met that the page did not know (e.g. in a result of another model), in the order met. */
const extraLabels = [];

/** The labels the page knows (dataset and model in use); each gets its colour by its place among them. */
export function setKnownLabels(labels) {
  colours = labelColours(labels);
}

/** A steady colour per label, so a flavour looks the same in every section. */
export function labelColour(label) {
  if (label === 'unknown') return UNKNOWN_COLOUR;
  const known = colours.get(label);
  if (known) return known;
  // After the known ones, so meeting a stray label never shifts the colours already shown.
  if (!extraLabels.includes(label)) extraLabels.push(label);
  return colourAt(colours.size + extraLabels.indexOf(label));
}

/** Sets the label's colour and the text colour that reads on it. */
export function paintLabel(el, label) {
  const colour = labelColour(label);
  el.style.setProperty('--label-colour', colour);
  el.style.setProperty('--label-ink', inkOn(colour));
}

/** A pill with the label's colour; `text` replaces the label as what it says (e.g. "peach?"). */
export function labelBadge(label, extraClass = '', text = label) {
  const el = h(`span.badge${extraClass ? '.' + extraClass : ''}`, { title: text }, text);
  paintLabel(el, label);
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
