/**
 * A tiny single-stroke capital font as SVG paths. Hand-written on purpose: label text
 * drawn with <text> would depend on the fonts installed on each machine (and render
 * differently or not at all on a bare server), while these paths render the same
 * everywhere librsvg runs.
 *
 * Glyphs sit on a 4 x 6 grid, y down, baseline at 6.
 */
import { f } from './svg.js';

const GLYPH_WIDTH = 4;
const GLYPH_HEIGHT = 6;
const LETTER_SPACING = 1.6;
const ADVANCE = GLYPH_WIDTH + LETTER_SPACING;
export const GLYPH_SIZE = { width: GLYPH_WIDTH, height: GLYPH_HEIGHT } as const;

const O = 'M2 0Q0 0 0 3Q0 6 2 6Q4 6 4 3Q4 0 2 0Z';
const P = 'M0 6V0H2.6Q4 0 4 1.6Q4 3.2 2.6 3.2H0';

const GLYPHS: Record<string, string> = {
  A: 'M0 6L2 0L4 6M0.7 4H3.3',
  B: 'M0 6V0H2.6Q3.8 0 3.8 1.5Q3.8 3 2.6 3H0M2.6 3Q4 3 4 4.5Q4 6 2.6 6H0',
  C: 'M4 0.9Q3.4 0 2.1 0Q0 0 0 3Q0 6 2.1 6Q3.4 6 4 5.1',
  D: 'M0 0V6H1.8Q4 6 4 3Q4 0 1.8 0Z',
  E: 'M4 0H0V6H4M0 3H3',
  F: 'M4 0H0V6M0 3H3',
  G: 'M4 0.9Q3.4 0 2.1 0Q0 0 0 3Q0 6 2.1 6Q4 6 4 3.6H2.2',
  H: 'M0 0V6M4 0V6M0 3H4',
  I: 'M1 0H3M2 0V6M1 6H3',
  J: 'M4 0V4.4Q4 6 2 6Q0 6 0 4.4',
  K: 'M0 0V6M4 0L0 3.8M1.4 2.7L4 6',
  L: 'M0 0V6H4',
  M: 'M0 6V0L2 3.6L4 0V6',
  N: 'M0 6V0L4 6V0',
  O,
  P,
  Q: `${O}M2.6 4.4L4 6.3`,
  R: `${P}M2.2 3.2L4 6`,
  S: 'M4 0.9Q3.4 0 2 0Q0 0 0 1.5Q0 3 2 3Q4 3 4 4.5Q4 6 2 6Q0.6 6 0 5.1',
  T: 'M0 0H4M2 0V6',
  U: 'M0 0V4.3Q0 6 2 6Q4 6 4 4.3V0',
  V: 'M0 0L2 6L4 0',
  W: 'M0 0L1 6L2 2L3 6L4 0',
  X: 'M0 0L4 6M4 0L0 6',
  Y: 'M0 0L2 3L4 0M2 3V6',
  Z: 'M0 0H4L0 6H4',
  ' ': '',
};

/** Width of `text` in grid units (cap height is 6). */
export function strokeTextWidth(text: string): number {
  return text.length === 0 ? 0 : text.length * ADVANCE - LETTER_SPACING;
}

/** Each character's path (empty for unknown ones) and the x of its centre, in grid units. */
export function strokeGlyphs(text: string): { path: string; centre: number }[] {
  return [...text.toUpperCase()].map((char, i) => ({ path: GLYPHS[char] ?? '', centre: i * ADVANCE + GLYPH_WIDTH / 2 }));
}

/** Attributes that stroke glyph paths; `weight` is in grid units. */
export function strokeStyle(colour: string, weight: number): string {
  return `fill="none" stroke="${colour}" stroke-width="${f(weight)}" stroke-linecap="round" stroke-linejoin="round"`;
}

/** SVG for `text` centred on (x, y) with the given cap height, as stroked paths. */
export function strokeText(text: string, options: { x: number; y: number; capHeight: number; colour: string; weight?: number }): string {
  const scale = options.capHeight / GLYPH_HEIGHT;
  const left = options.x - (strokeTextWidth(text) * scale) / 2;
  const top = options.y - options.capHeight / 2;
  const paths = strokeGlyphs(text)
    .filter((glyph) => glyph.path)
    .map((glyph) => `<path transform="translate(${f(glyph.centre - GLYPH_WIDTH / 2)} 0)" d="${glyph.path}"/>`)
    .join('');
  // Stroke width is in glyph units, so it scales with the text.
  return `<g transform="translate(${f(left)} ${f(top)}) scale(${f(scale)})" ${strokeStyle(options.colour, options.weight ?? 1)}>${paths}</g>`;
}
