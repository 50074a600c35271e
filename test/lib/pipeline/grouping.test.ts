/**
 * Grouped validation: near-duplicates of one capture never sit on both sides of a split,
 * on synthetic clusters and on real photos with real near-duplicates made from them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { acquireBackbone, type Backbone } from '../../../src/engine/index.js';
import { embedImages } from '../../../src/features/index.js';
import { groupedFolds, groupFrames, nearDuplicateGroups } from '../../../src/pipeline/index.js';
import { createRandom, randomNormal } from '../../../src/random.js';
import { classImages, groceryTrainDir, modelDir } from '../../support/shared.js';

let backbone: Backbone;
before(async () => {
  backbone = await acquireBackbone(modelDir('mobilenet-v2-0.35-features'));
});
after(() => backbone.release());

/** `bursts` captures per label, each `burst` frames of tiny noise around its own point. */
function bursts(labels: number, perLabel: number, burst: number, seed: number) {
  const random = createRandom(seed);
  const size = 64;
  const features: Float32Array[] = [];
  const targets: number[] = [];
  const capture: number[] = [];
  let id = 0;
  for (let label = 0; label < labels; label++) {
    for (let b = 0; b < perLabel; b++, id++) {
      const centre = Float32Array.from({ length: size }, () => randomNormal(random));
      for (let k = 0; k < burst; k++) {
        features.push(centre.map((v) => v + 0.02 * randomNormal(random)));
        targets.push(label);
        capture.push(id);
      }
    }
  }
  return { features, targets, capture };
}

test('frames of one burst share a group and a fold; different labels never share a group', () => {
  const { features, targets, capture } = bursts(3, 6, 4, 7);
  const groups = nearDuplicateGroups(features, targets);
  const fold = groupedFolds(groups, targets, 5);
  for (let i = 0; i < features.length; i++) {
    for (let j = i + 1; j < features.length; j++) {
      if (capture[i] === capture[j]) {
        assert.equal(groups.group[i], groups.group[j], `frames ${i} and ${j} of one burst are in different groups`);
        assert.equal(fold[i], fold[j]);
      }
      if (targets[i] !== targets[j]) assert.notEqual(groups.group[i], groups.group[j]);
    }
  }
  // Every label is spread over at least two folds, so each fold trains on every label.
  for (let label = 0; label < 3; label++) {
    assert.ok(new Set([...fold].filter((_, i) => targets[i] === label)).size >= 2);
  }
  // A random split would have separated some burst: the grouping is what keeps them together.
  assert.ok(groups.count <= 3 * 6, `${groups.count} groups for 18 bursts`);
});

test('no label ends up as one group holding most of its frames', () => {
  // One label's frames all alike: its threshold rises until the largest group holds at most half.
  const random = createRandom(3);
  const features: Float32Array[] = [];
  const targets: number[] = [];
  const base = Float32Array.from({ length: 32 }, () => randomNormal(random));
  for (let i = 0; i < 20; i++) {
    features.push(base.map((v) => v + 0.05 * randomNormal(random)));
    targets.push(0);
    features.push(Float32Array.from({ length: 32 }, () => randomNormal(random)));
    targets.push(1);
  }
  const groups = nearDuplicateGroups(features, targets);
  const sizes = new Map<number, number>();
  targets.forEach((t, i) => t === 0 && sizes.set(groups.group[i], (sizes.get(groups.group[i]) ?? 0) + 1));
  assert.ok(Math.max(...sizes.values()) <= 10, `largest group of label 0 has ${Math.max(...sizes.values())} of 20 frames`);
});

test('capture sessions are the groups when there are several, and a fold holds whole sessions', () => {
  const { features, targets } = bursts(2, 6, 2, 11);
  const sessions = targets.map((_, i) => (i % 3 === 0 ? 'monday' : i % 3 === 1 ? 'tuesday' : 'wednesday'));
  const groups = groupFrames(features, targets, sessions);
  assert.equal(groups.kind, 'sessions');
  const fold = groupedFolds(groups, targets, 5);
  const foldOfSession = new Map<string, number>();
  sessions.forEach((s, i) => {
    if (foldOfSession.has(s)) assert.equal(foldOfSession.get(s), fold[i], `session ${s} split over folds`);
    foldOfSession.set(s, fold[i]);
  });
  assert.equal(new Set(foldOfSession.values()).size, 3);
  // One session (or none recorded): near-duplicate groups.
  assert.equal(groupFrames(features, targets, targets.map(() => 'monday')).kind, 'near-duplicates');
});

test('real near-duplicates (the same photo nudged, re-encoded) are grouped with their original', async () => {
  const labels = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice', 'Arla-Sour-Cream'];
  const inputs: Buffer[] = [];
  const targets: number[] = [];
  const origin: number[] = [];
  for (const [label, name] of labels.entries()) {
    for (const file of classImages(groceryTrainDir, name).slice(0, 8)) {
      const original = await sharp(file).jpeg({ quality: 92 }).toBuffer();
      const { width = 0, height = 0 } = await sharp(original).metadata();
      // What a camera gives a moment later: a few pixels of shift and another JPEG quality.
      const nudged = await sharp(original).extract({ left: 4, top: 3, width: width - 8, height: height - 6 }).jpeg({ quality: 80 }).toBuffer();
      for (const image of [original, nudged]) {
        inputs.push(image);
        targets.push(label);
        origin.push(inputs.length >> 1);
      }
    }
  }
  const { results } = await embedImages(backbone, inputs, { cache: null });
  const groups = nearDuplicateGroups(results.map((r) => r.features), targets);
  const fold = groupedFolds(groups, targets, 4);
  for (let i = 0; i < inputs.length; i += 2) {
    assert.equal(groups.group[i], groups.group[i + 1], `photo ${origin[i]} and its nudged copy are in different groups`);
    assert.equal(fold[i], fold[i + 1]);
  }
});
