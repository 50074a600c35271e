/**
 * Flow library readiness without a runtime: the example flows' nodes do not overlap on their
 * tab (at Node-RED's default node size), every palette node's icon stands out from its
 * colour, and package.json carries what the flow library lists.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { exampleFiles, packageNodeTypes, readExample, repoRoot, type FlowNode } from './support.js';

/** Node-RED's editor (view.js): nodes are at least 100 x 30, 15 px more height per port past two. */
const NODE_MIN_WIDTH = 100;
const NODE_HEIGHT = 30;
const GRID = 20;
/** Helvetica 14 px in the editor: about 7.5 px a character; icon and padding add ~50 px. */
const CHAR_WIDTH = 7.5;
const ICON_AND_PADDING = 50;

interface Box {
  id: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function boxOf(node: FlowNode): Box {
  const label = String(node.name || node.type);
  const width = Math.max(NODE_MIN_WIDTH, GRID * Math.ceil((label.length * CHAR_WIDTH + ICON_AND_PADDING) / GRID));
  const ports = Math.max(node.wires?.length ?? 0, 1);
  const height = Math.max(NODE_HEIGHT, ports * 15);
  const x = Number(node.x);
  const y = Number(node.y);
  return { id: `${node.id} (${label})`, left: x - width / 2, right: x + width / 2, top: y - height / 2, bottom: y + height / 2 };
}

const overlap = (a: Box, b: Box) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;

for (const file of exampleFiles()) {
  test(`${file}: no two nodes of the tab overlap at Node-RED's default node size`, () => {
    const placed = readExample(file).filter((node) => typeof node.x === 'number' && typeof node.y === 'number');
    assert.ok(placed.length >= 3, 'the example has nodes on its tab');
    const boxes = placed.map(boxOf);
    const clashes: string[] = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) if (overlap(boxes[i], boxes[j])) clashes.push(`${boxes[i].id} / ${boxes[j].id}`);
    }
    assert.deepEqual(clashes, []);
  });
}

test('the overlap check catches two nodes on top of each other', () => {
  const a = boxOf({ id: 'a', type: 'debug', name: 'a label long enough to widen it', x: 200, y: 100 });
  const b = boxOf({ id: 'b', type: 'debug', name: 'b', x: 300, y: 110 });
  assert.equal(overlap(a, b), true);
});

/** WCAG relative luminance of #rrggbb. */
function luminance(hex: string): number {
  const channels = hex
    .replace('#', '')
    .match(/../g)!
    .map((pair) => parseInt(pair, 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2];
}

function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

function expand(hex: string): string {
  const bare = hex.replace('#', '').toLowerCase();
  if (bare === 'fff' || bare === 'white') return '#ffffff';
  if (bare.length === 3) return `#${[...bare].map((c) => c + c).join('')}`;
  return `#${bare}`;
}

test('every palette node icon contrasts with its node colour (WCAG 3:1 for graphics)', () => {
  for (const type of Object.keys(packageNodeTypes())) {
    const html = fs.readFileSync(path.join(repoRoot, 'nodes', type, `${type}.html`), 'utf8');
    const colour = /color:\s*["']([#0-9A-Fa-f]+)["']/.exec(html)?.[1];
    if (!colour) continue; // config nodes: not in the palette
    const svg = fs.readFileSync(path.join(repoRoot, 'icons', `${type}.svg`), 'utf8');
    const inks = [...svg.matchAll(/(?:fill|stroke)="(#[0-9A-Fa-f]{3,6}|white)"/g)].map((match) => expand(match[1]));
    assert.ok(inks.length > 0, `${type}.svg draws in a colour`);
    // Ink in the node colour itself is a knock-out (the camera's lens dot), not a mark to see.
    for (const ink of inks.filter((ink) => ink !== expand(colour))) assert.ok(contrast(ink, expand(colour)) >= 3, `${type}: ${ink} on ${colour} is ${contrast(ink, expand(colour)).toFixed(2)}:1`);
  }
});

test('palette icons are bold enough to read at palette size, and no two node types share one', () => {
  const seen = new Map<string, string>();
  for (const type of Object.keys(packageNodeTypes())) {
    const svg = fs.readFileSync(path.join(repoRoot, 'icons', `${type}.svg`), 'utf8');
    // The editor draws icons about 20 px wide: a 40-unit-wide icon is halved, so strokes under 2.5 units end up thinner than 1.25 px.
    const viewBox = /viewBox="0 0 (\d+) (\d+)"/.exec(svg);
    assert.ok(viewBox, `${type}.svg has a viewBox`);
    assert.equal(Number(viewBox[1]), 40, `${type}.svg is 40 units wide, as Node-RED's own icons`);
    for (const match of svg.matchAll(/stroke-width="([\d.]+)"/g)) {
      assert.ok(Number(match[1]) >= 2.5, `${type}.svg: stroke-width ${match[1]} is too faint at palette size`);
    }
    const drawing = svg.replace(/<!--[\s\S]*?-->/g, '').replace(/\s+/g, ' ').trim();
    assert.equal(seen.get(drawing), undefined, `${type}.svg draws the same icon as ${seen.get(drawing)}.svg`);
    seen.set(drawing, type);
  }
});

test('package.json has what the flow library shows: repository, bugs, the Node-RED range, shipped docs and licence', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  assert.match(pkg.repository?.url ?? '', /^git\+https:\/\//);
  assert.match(pkg.bugs?.url ?? '', /^https:\/\//);
  assert.match(pkg['node-red']?.version ?? '', /^>=\d/);
  assert.ok(pkg.keywords.includes('node-red'), 'the flow library lists packages with the node-red keyword');
  for (const shipped of ['LICENSE', 'docs/', 'examples/', 'icons/', 'install/']) assert.ok(pkg.files.includes(shipped), `files ships ${shipped}`);
  assert.ok(fs.existsSync(path.join(repoRoot, 'LICENSE')));
});
