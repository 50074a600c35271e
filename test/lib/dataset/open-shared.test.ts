/**
 * The shared grocery train split opens as a dataset as it is, and nothing is written to it
 * (it is shared by every lane and must stay byte-for-byte as shipped).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MANIFEST_FILE_NAME, openDataset } from '../../../src/dataset/index.js';
import { encodeForStorage } from '../../../src/image/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { classImages, classNames, groceryTrainDir } from '../../support/shared.js';
import { listTree, realPhotos } from './support.js';

let snapshot: string[];

before(async () => {
  snapshot = await listTree(groceryTrainDir);
});

test('the train split opens with its 31 labels, 864 images and the right count per label', async () => {
  const dataset = await openDataset(groceryTrainDir, { readOnly: true });
  const classes = classNames(groceryTrainDir);
  assert.equal(classes.length, 31);
  assert.deepEqual(dataset.labels(), classes);
  assert.equal(dataset.size, 864);
  const expected = Object.fromEntries(classes.map((c) => [c, classImages(groceryTrainDir, c).length]));
  assert.deepEqual(dataset.counts(), expected);
  assert.equal(Object.values(dataset.counts()).reduce((a, b) => a + b, 0), 864);
});

test('entries carry absolute paths, the file hash and the image size', async () => {
  const dataset = await openDataset(groceryTrainDir, { readOnly: true });
  const entries = await dataset.entries();
  assert.equal(entries.length, 864);
  assert.equal(new Set(entries.map((e) => e.id)).size, 864);
  for (const entry of entries) {
    assert.ok(path.isAbsolute(entry.path));
    assert.equal(path.basename(path.dirname(entry.path)), entry.label);
    const bytes = fs.readFileSync(entry.path);
    assert.equal(entry.sha256, createHash('sha256').update(bytes).digest('hex'));
    assert.equal(entry.size, bytes.length);
    assert.ok(entry.width > 0 && entry.height > 0);
    assert.equal(entry.source, 'folder');
    assert.equal(entry.problem, undefined);
  }
  // Sizes come from the headers; a full decode of every 20th image agrees with them.
  for (const entry of entries.filter((_, i) => i % 20 === 0)) {
    const decoded = await encodeForStorage(entry.path);
    assert.deepEqual([entry.width, entry.height], [decoded.width, decoded.height], entry.path);
  }
  const one = entries[100];
  assert.deepEqual(await dataset.entry(one.id), one);
});

test('the fingerprint is stable, covers labels and changes with the label subset', async () => {
  const dataset = await openDataset(groceryTrainDir, { readOnly: true });
  const whole = await dataset.fingerprint();
  assert.match(whole, /^[0-9a-f]{64}$/);
  assert.equal(await dataset.fingerprint(), whole);
  // A fresh scan (new records, hashes computed again) gives the same answer.
  await dataset.refresh();
  assert.equal(await dataset.fingerprint(), whole);
  const yoghurts = ['Yoggi-Vanilla-Yoghurt', 'Arla-Natural-Yoghurt'];
  const subset = await dataset.fingerprint({ labels: yoghurts });
  assert.notEqual(subset, whole);
  assert.equal(await dataset.fingerprint({ labels: [...yoghurts].reverse() }), subset, 'order of the labels asked for does not matter');
  await assert.rejects(dataset.fingerprint({ labels: ['No-Such-Product'] }), (err: unknown) => isLaneVisionError(err, 'LABEL_NOT_FOUND'));
});

test('every change is refused when opened read-only, before anything is written', async () => {
  const dataset = await openDataset(groceryTrainDir, { readOnly: true });
  const [photo] = realPhotos(1);
  const [first] = await dataset.entries();
  const refused = (err: unknown) => isLaneVisionError(err, 'DATASET_READ_ONLY');
  await assert.rejects(dataset.add('New-Product', photo.bytes), refused);
  await assert.rejects(dataset.remove(first.id), refused);
  await assert.rejects(dataset.relabel(first.id, 'Oatly-Oat-Milk'), refused);
  await assert.rejects(dataset.renameLabel('Oatly-Oat-Milk', 'Oat-Milk'), refused);
  await assert.rejects(dataset.removeLabel('Oatly-Oat-Milk'), refused);
  assert.equal(dataset.size, 864);
});

test('opening without readOnly and reading still writes nothing', async () => {
  const dataset = await openDataset(groceryTrainDir);
  assert.equal(dataset.readOnly, false);
  assert.equal(dataset.size, 864);
  await dataset.entries();
  await dataset.fingerprint();
  assert.equal(fs.existsSync(path.join(groceryTrainDir, MANIFEST_FILE_NAME)), false);
});

test('after all of the above the train split is unchanged: no manifest, same files, same times', async () => {
  assert.equal(fs.existsSync(path.join(groceryTrainDir, MANIFEST_FILE_NAME)), false);
  assert.deepEqual(await listTree(groceryTrainDir), snapshot);
});
