/** The console page's label colours (ui/console/js/colours.js, a browser module without DOM use). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error a plain browser script of the page, without types
import { CATEGORY_10, UNKNOWN_COLOUR, colourAt, inkOn, labelColours } from '../../ui/console/js/colours.js';

const GROCERY_31 = Array.from({ length: 31 }, (_, i) => `product-${String(i).padStart(2, '0')}`);

test('31 labels get 31 distinct colours; the first 10 are the categorical palette, in order', () => {
  const colours = labelColours([...GROCERY_31].reverse()) as Map<string, string>;
  assert.equal(colours.size, 31);
  assert.equal(new Set(colours.values()).size, 31, 'no two labels share a colour');
  assert.deepEqual([...colours.values()].slice(0, 10), CATEGORY_10);
  assert.deepEqual(CATEGORY_10, ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'], 'd3 schemeCategory10');
  for (const colour of colours.values()) {
    assert.match(colour, /^#[0-9a-f]{6}$/);
    assert.notEqual(colour, UNKNOWN_COLOUR);
  }
});

test('a label keeps its colour whatever order the labels come in (a reload), by its place in the sorted list', () => {
  const once = labelColours(['vanilla', 'cherry', 'peach', 'blueberry']) as Map<string, string>;
  const again = labelColours(['peach', 'blueberry', 'vanilla', 'cherry', 'peach']) as Map<string, string>;
  assert.deepEqual([...once], [...again]);
  assert.equal(once.get('blueberry'), CATEGORY_10[0]);
  // The case: four labels, four different colours.
  assert.equal(new Set(once.values()).size, 4);
  assert.equal(labelColours(['unknown', 'a']).has('unknown'), false, 'the rejection label has its own colour');
  assert.equal(colourAt(3), CATEGORY_10[3]);
});

test('text on a label colour is white on dark colours and dark on light ones', () => {
  assert.equal(inkOn('#1f77b4'), '#ffffff');
  assert.equal(inkOn('#bcbd22'), '#111827');
  assert.equal(inkOn(UNKNOWN_COLOUR), '#ffffff');
});
