import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_LABEL_BYTES, openDataset, validateLabel } from '../../../src/dataset/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { listTree, realPhotos } from './support.js';

/** [label, the rule the message must name] */
const HOSTILE: [unknown, RegExp][] = [
  ['', /empty/],
  ['   ', /only whitespace/],
  ['\t\n', /only whitespace/],
  ['..', /starts with a dot/],
  ['.', /starts with a dot/],
  ['../x', /path separator/],
  ['..\\x', /path separator/],
  ['a/b', /path separator/],
  ['/etc/passwd', /path separator/],
  ['C:\\Windows', /path separator/],
  ['\\\\server\\share', /path separator/],
  ['C:', /not allowed in Windows/],
  ['a\0b', /NUL/],
  ['a\nb', /control/],
  ['red\x1b[31m', /control/],
  ['\u0085next', /control/],
  ['\u202Egpj.exe', /direction/],
  ['.hidden', /starts with a dot/],
  ['CON', /reserved device name/],
  ['con', /reserved device name/],
  ['Nul', /reserved device name/],
  ['COM1', /reserved device name/],
  ['lpt9', /reserved device name/],
  ['CON.txt', /reserved device name/],
  ['aux.tar.gz', /reserved device name/],
  ['COM¹', /reserved device name/],
  ['name.', /ends with a dot or whitespace/],
  ['name ', /ends with a dot or whitespace/],
  [' name', /starts with whitespace/],
  ['what?', /not allowed in Windows/],
  ['a<b>', /not allowed in Windows/],
  ['a|b', /not allowed in Windows/],
  ['star*', /not allowed in Windows/],
  ['say "hi"', /not allowed in Windows/],
  ['lane-vision-dataset.json', /manifest/],
  ['unknown', /"unknown" is reserved for frames a classifier does not accept/],
  ['Unknown', /"unknown" is reserved/],
  ['UNKNOWN', /"unknown" is reserved/],
  ['a'.repeat(MAX_LABEL_BYTES + 1), /bytes long/],
  ['ヨ'.repeat(Math.floor(MAX_LABEL_BYTES / 3) + 1), /bytes long/],
  ['\uD800broken', /lone surrogate/],
  [42, /must be text/],
  [null, /must be text/],
  [undefined, /must be text/],
  [{ toString: () => 'x' }, /must be text/],
];

test('hostile labels are refused with LABEL_INVALID naming the failed rule', () => {
  for (const [label, rule] of HOSTILE) {
    assert.throws(
      () => validateLabel(label),
      (err: unknown) => isLaneVisionError(err, 'LABEL_INVALID') && rule.test(err.message),
      `label ${JSON.stringify(label)} should fail with ${rule}`,
    );
  }
});

test('ordinary and unicode labels pass and come back in NFC', () => {
  for (const label of ['Jogurt Erdbeere', 'ヨーグルト', 'Arla-Natural-Yoghurt', 'Yoggi 0,5 l', 'v1.2', 'CONSOLE', 'COM10', 'con-test', '__proto__', 'a'.repeat(MAX_LABEL_BYTES)]) {
    assert.equal(validateLabel(label), label);
  }
  const decomposed = 'Cafe\u0301';
  assert.equal(validateLabel(decomposed), 'Caf\u00e9');
  // The byte limit is on UTF-8, not characters: 3 bytes per katakana.
  const katakana = 'ヨ'.repeat(Math.floor(MAX_LABEL_BYTES / 3));
  assert.equal(validateLabel(katakana), katakana);
});

test('no hostile label creates or touches anything, inside or outside the dataset', async (t) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-labels-'));
  t.after(() => fs.rm(parent, { recursive: true, force: true }));
  const root = path.join(parent, 'dataset');
  const dataset = await openDataset(root);
  const [photo] = realPhotos(1);
  const first = await dataset.add('Yoghurt', photo.bytes);
  const before = await listTree(parent);

  for (const [label] of HOSTILE) {
    await assert.rejects(dataset.add(label as string, photo.bytes), (err: unknown) => isLaneVisionError(err, 'LABEL_INVALID'));
    await assert.rejects(dataset.relabel(first.id, label as string), (err: unknown) => isLaneVisionError(err, 'LABEL_INVALID'));
    await assert.rejects(dataset.renameLabel('Yoghurt', label as string), (err: unknown) => isLaneVisionError(err, 'LABEL_INVALID'));
    await assert.rejects(dataset.removeLabel(label as string), (err: unknown) => isLaneVisionError(err, 'LABEL_INVALID'));
  }
  assert.deepEqual(await listTree(parent), before);
  assert.deepEqual(dataset.counts(), { Yoghurt: 1 });
});

test('unicode labels become folders with exactly that name', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-labels-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const dataset = await openDataset(root);
  const photos = realPhotos(3);
  await dataset.add('Jogurt Erdbeere', photos[0].bytes);
  await dataset.add('ヨーグルト', photos[1].bytes);
  await dataset.add('Cafe\u0301', photos[2].bytes); // stored under the NFC name
  const folders = (await fs.readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  assert.deepEqual(folders, ['Caf\u00e9', 'Jogurt Erdbeere', 'ヨーグルト'].sort());
  assert.deepEqual(dataset.labels(), ['Caf\u00e9', 'Jogurt Erdbeere', 'ヨーグルト'].sort());
});

test('a label differing from an existing one only in letter case is refused', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-labels-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const dataset = await openDataset(root);
  const photos = realPhotos(2);
  await dataset.add('Yoghurt', photos[0].bytes);
  await assert.rejects(dataset.add('yoghurt', photos[1].bytes), (err: unknown) => isLaneVisionError(err, 'LABEL_CONFLICT') && /letter case/.test(err.message));
  assert.deepEqual(dataset.counts(), { Yoghurt: 1 });
  // Changing only the case of a label by renaming it is fine.
  assert.equal(await dataset.renameLabel('Yoghurt', 'YOGHURT'), 1);
  assert.deepEqual(dataset.labels(), ['YOGHURT']);
});

test('a folder dataset holding a folder named "unknown" is refused, naming the folder', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-labels-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const [a, b] = realPhotos(2);
  await fs.mkdir(path.join(root, 'Yoghurt'));
  await fs.writeFile(path.join(root, 'Yoghurt', 'a.jpg'), a.bytes);
  await fs.mkdir(path.join(root, 'Unknown'));
  await fs.writeFile(path.join(root, 'Unknown', 'b.jpg'), b.bytes);
  const folder = JSON.stringify(path.join(await fs.realpath(root), 'Unknown'));
  for (const readOnly of [true, false]) {
    await assert.rejects(openDataset(root, { readOnly }), (err: unknown) => isLaneVisionError(err, 'LABEL_INVALID') && err.message.includes(folder) && /reserved/.test(err.message));
  }
});

test('folders and files that are not labels or images are listed with why, none left out silently', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-labels-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const [a, b] = realPhotos(2);
  await fs.mkdir(path.join(root, 'Yoghurt', 'nested'), { recursive: true });
  await fs.writeFile(path.join(root, 'Yoghurt', 'a.jpg'), a.bytes);
  await fs.writeFile(path.join(root, 'Yoghurt', 'notes.txt'), 'not an image');
  await fs.writeFile(path.join(root, 'Yoghurt', '.b.jpg'), b.bytes);
  for (const name of ['con', '\u202Egpj.exe', '.hidden']) {
    await fs.mkdir(path.join(root, name));
    await fs.writeFile(path.join(root, name, 'x.jpg'), b.bytes);
  }
  await fs.writeFile(path.join(root, 'loose.jpg'), b.bytes);
  const dataset = await openDataset(root, { readOnly: true });
  assert.deepEqual(dataset.counts(), { Yoghurt: 1 });
  const skipped = Object.fromEntries(dataset.skipped().map((s) => [s.path, `${s.kind}: ${s.reason}`]));
  assert.deepEqual(Object.keys(skipped).sort(), ['.hidden', 'Yoghurt/.b.jpg', 'Yoghurt/nested', 'Yoghurt/notes.txt', 'con', 'loose.jpg', '\u202Egpj.exe'].sort());
  assert.match(skipped['con'], /^folder: .*reserved device name/);
  assert.match(skipped['\u202Egpj.exe'], /^folder: .*direction/);
  assert.match(skipped['.hidden'], /^folder: .*starts with a dot/);
  assert.match(skipped['Yoghurt/notes.txt'], /^file: not a \.jpg/);
  assert.match(skipped['Yoghurt/.b.jpg'], /^file: hidden/);
  assert.match(skipped['loose.jpg'], /^file: .*label folder/);
  // A fixed folder is no longer listed after a refresh.
  await fs.rm(path.join(root, 'con'), { recursive: true });
  await dataset.refresh();
  assert.ok(!dataset.skipped().some((s) => s.path === 'con'));
});
