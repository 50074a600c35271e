// Label colours: a fixed categorical palette by label index (d3's schemeCategory10), then
// hues spread by the golden angle for more labels. The index is the label's place in the
// sorted label list, so a label keeps its colour across sections and reloads.
// Written here rather than imported: the page has no build step and loads nothing from elsewhere.

/** d3 schemeCategory10 (Tableau's "Category 10"), in its order. */
export const CATEGORY_10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
/** The rejection label: dark slate, apart from every palette colour. */
export const UNKNOWN_COLOUR = '#1f2937';
const DARK_INK = '#111827';
const GOLDEN_ANGLE = 137.508;
/** Lightness steps beyond the palette, so neighbouring hues also differ in brightness. */
const LIGHTNESS = [42, 58, 34];

function hslToHex(h, s, l) {
  const a = (s / 100) * Math.min(l / 100, 1 - l / 100);
  const channel = (n) => {
    const k = (n + h / 30) % 12;
    const value = l / 100 - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
    return Math.round(value * 255)
      .toString(16)
      .padStart(2, '0');
  };
  return `#${channel(0)}${channel(8)}${channel(4)}`;
}

/** The colour of the label at `index` of the sorted label list. */
export function colourAt(index) {
  if (index < CATEGORY_10.length) return CATEGORY_10[index];
  const extra = index - CATEGORY_10.length;
  // Offset so the first extra hue does not sit on the palette's blue.
  return hslToHex((20 + extra * GOLDEN_ANGLE) % 360, 68, LIGHTNESS[extra % LIGHTNESS.length]);
}

function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** White or near-black text, whichever reads better on `hex` (WCAG contrast). */
export function inkOn(hex) {
  const l = luminance(hex);
  return 1.05 / (l + 0.05) >= (l + 0.05) / (luminance(DARK_INK) + 0.05) ? '#ffffff' : DARK_INK;
}

/** Colours for a set of labels: sorted by code point (as the dataset sorts them), then by index. */
export function labelColours(labels) {
  const sorted = [...new Set(labels)].filter((l) => l !== 'unknown').sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(sorted.map((label, i) => [label, colourAt(i)]));
}
