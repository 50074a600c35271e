import { afterEach, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MANIFEST_FILE_NAME, openDataset } from '../../../src/dataset/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { encodeForStorage } from '../../../src/image/index.js';
import { imageFiles, listTree, readManifestJson, realPhotos } from './support.js';

let root: string;

beforeEach(async () => {
  root = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'lane-vision-dataset-'));
});

afterEach(async () => {
  await fs.promises.rm(root, { recursive: true, force: true });
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('a new folder gets no manifest until the first change, then one entry per image', async () => {
  const dataset = await openDataset(path.join(root, 'new', 'lane-1'));
  assert.equal(dataset.size, 0);
  assert.deepEqual(dataset.labels(), []);
  assert.equal(fs.existsSync(path.join(dataset.dir, MANIFEST_FILE_NAME)), false);

  const [photo] = realPhotos(1);
  const when = new Date('2026-03-01T08:15:30.250Z');
  const entry = await dataset.add('Yoggi-Strawberry', photo.bytes, { source: 'camera:lane-1', author: 'anna', addedAt: when });
  assert.equal(entry.duplicate, false);
  assert.deepEqual(entry.dropped, []);
  assert.equal(entry.label, 'Yoggi-Strawberry');
  assert.equal(entry.sha256, sha256(photo.bytes));
  assert.equal(entry.addedAt, when.toISOString());
  assert.equal(entry.source, 'camera:lane-1');
  assert.equal(entry.author, 'anna');
  assert.match(entry.file, /^20260301-081530-250-[0-9a-f]{12}\.jpg$/);
  assert.equal(entry.path, path.join(dataset.dir, 'Yoggi-Strawberry', entry.file));
  // JPEG bytes are kept as they came: no re-encoding.
  assert.deepEqual(fs.readFileSync(entry.path), photo.bytes);

  const manifest = readManifestJson(dataset.dir);
  assert.equal(manifest.entries.length, 1);
  assert.deepEqual(manifest.entries[0], {
    id: entry.id,
    label: 'Yoggi-Strawberry',
    file: entry.file,
    sha256: entry.sha256,
    width: entry.width,
    height: entry.height,
    size: photo.bytes.length,
    addedAt: when.toISOString(),
    source: 'camera:lane-1',
    author: 'anna',
  });
});

test('add, relabel, remove and counts keep folders, manifest and a reopen in step', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(6);
  const a = await dataset.add('A', photos[0].bytes);
  const b = await dataset.add('A', photos[1].bytes);
  const c = await dataset.add('B', photos[2].bytes);
  assert.deepEqual(dataset.counts(), { A: 2, B: 1 });

  const moved = await dataset.relabel(b.id, 'C');
  assert.equal(moved.id, b.id, 'the id survives a relabel');
  assert.equal(moved.label, 'C');
  assert.ok(fs.existsSync(moved.path));
  assert.ok(!fs.existsSync(b.path));
  assert.deepEqual(dataset.counts(), { A: 1, B: 1, C: 1 });

  const removed = await dataset.remove(c.id);
  assert.equal(removed.id, c.id);
  assert.ok(!fs.existsSync(c.path));
  assert.ok(!fs.existsSync(path.join(root, 'B')), 'an emptied label folder is removed');
  assert.deepEqual(dataset.labels(), ['A', 'C']);
  await assert.rejects(dataset.remove(c.id), (err: unknown) => isLaneVisionError(err, 'DATASET_ENTRY_NOT_FOUND'));
  await assert.rejects(dataset.relabel('nope', 'A'), (err: unknown) => isLaneVisionError(err, 'DATASET_ENTRY_NOT_FOUND'));

  assert.deepEqual(await imageFiles(root), [`A/${a.file}`, `C/${b.file}`].sort());
  const manifest = readManifestJson(root);
  assert.deepEqual(manifest.entries.map((e) => [e.id, e.label]).sort(), [[a.id, 'A'], [b.id, 'C']].sort());

  // A second store instance (as another process would) sees the same dataset.
  const before = await dataset.entries();
  const fingerprint = await dataset.fingerprint();
  await dataset.refresh();
  assert.deepEqual(await dataset.entries(), before);
  assert.equal(await dataset.fingerprint(), fingerprint);
});

test('relabel changes the fingerprint, relabelling back restores it', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(3);
  const first = await dataset.add('A', photos[0].bytes);
  await dataset.add('A', photos[1].bytes);
  await dataset.add('B', photos[2].bytes);
  const original = await dataset.fingerprint();
  await dataset.relabel(first.id, 'B');
  const changed = await dataset.fingerprint();
  assert.notEqual(changed, original);
  await dataset.relabel(first.id, 'A');
  assert.equal(await dataset.fingerprint(), original);
});

test('the same image again is a duplicate, also under another label: nothing is written or moved', async () => {
  const dataset = await openDataset(root);
  const [photo, other] = realPhotos(2);
  const first = await dataset.add('A', photo.bytes, { author: 'anna' });
  const files = await listTree(root);

  const again = await dataset.add('A', Buffer.from(photo.bytes));
  assert.equal(again.duplicate, true);
  assert.equal(again.id, first.id);

  // Same bytes taught as another product: the first label stands, the caller sees the conflict.
  const elsewhere = await dataset.add('B', photo.bytes, { author: 'ben' });
  assert.equal(elsewhere.duplicate, true);
  assert.equal(elsewhere.id, first.id);
  assert.equal(elsewhere.label, 'A');
  assert.equal(elsewhere.author, 'anna');

  // Also when the same image arrives another way (file path, base64).
  const asBase64 = await dataset.add('A', photo.bytes.toString('base64'));
  assert.equal(asBase64.duplicate, true);
  assert.deepEqual(await listTree(root), files);
  assert.deepEqual(dataset.counts(), { A: 1 });

  assert.equal((await dataset.add('A', other.bytes)).duplicate, false);
  assert.equal(dataset.size, 2);
});

test('raw pixels are stored as PNG and recognised when added again, as pixels or as that PNG', async () => {
  const dataset = await openDataset(root);
  const width = 40;
  const height = 30;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
  const raw = { data, width, height, channels: 3 };
  const entry = await dataset.add('Raw', raw);
  assert.equal(path.extname(entry.file), '.png');
  assert.deepEqual([entry.width, entry.height], [width, height]);
  assert.equal(entry.sha256, sha256(fs.readFileSync(entry.path)), 'the entry hash is the hash of the stored file');
  assert.equal((await dataset.add('Raw', { ...raw, data: Uint8Array.from(data) })).duplicate, true);
  assert.equal((await dataset.add('Other', entry.path)).duplicate, true);
  assert.equal(dataset.size, 1);
});

test('a label cap refuses by default and names the cap', async () => {
  const dataset = await openDataset(root, { maxPerLabel: 2 });
  const photos = realPhotos(4);
  await dataset.add('A', photos[0].bytes);
  const second = await dataset.add('A', photos[1].bytes);
  await assert.rejects(dataset.add('A', photos[2].bytes), (err: unknown) => isLaneVisionError(err, 'LABEL_FULL') && /maxPerLabel 2/.test(err.message));
  assert.deepEqual(dataset.counts(), { A: 2 });
  assert.equal((await imageFiles(root)).length, 2);
  // Other labels are not affected; relabelling into a full label is refused too.
  const b = await dataset.add('B', photos[3].bytes);
  await assert.rejects(dataset.relabel(b.id, 'A'), (err: unknown) => isLaneVisionError(err, 'LABEL_FULL'));
  // A duplicate never counts against the cap.
  assert.equal((await dataset.add('A', photos[1].bytes)).id, second.id);
  assert.deepEqual(dataset.counts(), { A: 2, B: 1 });
});

test('drop-oldest keeps the newest images per label', async () => {
  const dataset = await openDataset(root, { maxPerLabel: 3, whenLabelFull: 'drop-oldest' });
  const photos = realPhotos(6);
  const t0 = Date.parse('2026-01-01T00:00:00Z');
  // Added out of time order on purpose: "oldest" means capture time, not insertion order.
  const order = [2, 0, 1, 3, 4];
  const added = [];
  const revisions: number[] = [];
  for (const i of order) {
    added[i] = await dataset.add('A', photos[i].bytes, { addedAt: new Date(t0 + i * 60_000) });
    revisions.push(dataset.revision);
  }
  assert.deepEqual(dataset.counts(), { A: 3 });
  // The count stays at the cap, the revision does not: a reader can tell the images changed.
  for (let k = 1; k < revisions.length; k++) assert.ok(revisions[k] > revisions[k - 1], `revision grows with add ${k}`);
  const before = dataset.revision;
  await dataset.add('A', photos[4].bytes);
  assert.equal(dataset.revision, before, 'a duplicate changes nothing');
  const kept = (await dataset.entries()).map((e) => e.id).sort();
  assert.deepEqual(kept, [added[2].id, added[3].id, added[4].id].sort());
  assert.deepEqual(added[3].dropped.map((e) => e.id), [added[0].id]);
  assert.deepEqual(added[4].dropped.map((e) => e.id), [added[1].id]);
  for (const gone of [added[0], added[1]]) assert.ok(!fs.existsSync(gone.path));
  assert.equal(readManifestJson(root).entries.length, 3);
});

test('bad options are refused clearly', async () => {
  await assert.rejects(openDataset(root, { maxPerLabel: 0 }), (err: unknown) => isLaneVisionError(err, 'DATASET_OPTIONS'));
  await assert.rejects(openDataset(root, { maxPerLabel: 2.5 }), (err: unknown) => isLaneVisionError(err, 'DATASET_OPTIONS'));
  await assert.rejects(openDataset(root, { whenLabelFull: 'oldest' as never }), (err: unknown) => isLaneVisionError(err, 'DATASET_OPTIONS'));
  await assert.rejects(openDataset(path.join(root, 'missing'), { create: false }), (err: unknown) => isLaneVisionError(err, 'DATASET_NOT_FOUND'));
  await assert.rejects(openDataset(path.join(root, 'missing'), { readOnly: true }), (err: unknown) => isLaneVisionError(err, 'DATASET_NOT_FOUND'));
  fs.writeFileSync(path.join(root, 'a-file'), 'x');
  await assert.rejects(openDataset(path.join(root, 'a-file')), (err: unknown) => isLaneVisionError(err, 'DATASET_NOT_A_FOLDER'));
  const dataset = await openDataset(path.join(root, 'ok'));
  const [photo] = realPhotos(1);
  await assert.rejects(dataset.add('A', photo.bytes, { author: 42 as never }), (err: unknown) => isLaneVisionError(err, 'DATASET_META_INVALID'));
  await assert.rejects(dataset.add('A', photo.bytes, { addedAt: new Date('nonsense') }), (err: unknown) => isLaneVisionError(err, 'DATASET_META_INVALID'));
  assert.equal(dataset.size, 0);
});

test('renameLabel moves a whole label; removeLabel deletes it', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(5);
  for (const p of photos.slice(0, 3)) await dataset.add('Jogurt', p.bytes, { author: 'anna' });
  await dataset.add('Milch', photos[3].bytes);
  const ids = (await dataset.entries()).filter((e) => e.label === 'Jogurt').map((e) => e.id).sort();

  assert.equal(await dataset.renameLabel('Jogurt', 'Jogurt Erdbeere'), 3);
  const renamed = (await dataset.entries()).filter((e) => e.label === 'Jogurt Erdbeere');
  assert.deepEqual(renamed.map((e) => e.id).sort(), ids);
  for (const e of renamed) {
    assert.ok(fs.existsSync(e.path));
    assert.equal(e.author, 'anna');
  }
  assert.ok(!fs.existsSync(path.join(root, 'Jogurt')));
  await assert.rejects(dataset.renameLabel('Jogurt', 'X'), (err: unknown) => isLaneVisionError(err, 'LABEL_NOT_FOUND'));
  await assert.rejects(dataset.renameLabel('Milch', 'Jogurt Erdbeere'), (err: unknown) => isLaneVisionError(err, 'LABEL_EXISTS'));

  assert.equal(await dataset.removeLabel('Jogurt Erdbeere'), 3);
  assert.deepEqual(dataset.counts(), { Milch: 1 });
  assert.deepEqual(await imageFiles(root), (await dataset.entries()).map((e) => `Milch/${e.file}`));
  assert.deepEqual(readManifestJson(root).entries.map((e) => e.label), ['Milch']);
  await assert.rejects(dataset.removeLabel('Jogurt Erdbeere'), (err: unknown) => isLaneVisionError(err, 'LABEL_NOT_FOUND'));
});

test('bad images are refused with the image error and nothing is written', async () => {
  const dataset = await openDataset(root);
  const [photo] = realPhotos(1);
  await dataset.add('Good', photo.bytes);
  const before = await listTree(root);
  const bad: [string, unknown, RegExp][] = [
    ['truncated JPEG', photo.bytes.subarray(0, Math.floor(photo.bytes.length / 2)), /^IMAGE_CORRUPT$/],
    ['empty buffer', Buffer.alloc(0), /^IMAGE_EMPTY$/],
    ['text', Buffer.from('hello, this is not an image at all, just some words'), /^IMAGE_UNSUPPORTED$/],
    ['SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), /^IMAGE_UNSUPPORTED$/],
    ['missing file', path.join(root, 'nowhere', 'frame.jpg'), /^IMAGE_NOT_FOUND$/],
    ['raw with wrong length', { data: new Uint8Array(10), width: 4, height: 4, channels: 3 }, /^INPUT_TYPE$/],
    ['a number', 42, /^INPUT_TYPE$/],
  ];
  for (const [what, input, code] of bad) {
    await assert.rejects(
      dataset.add('New', input as never),
      (err: unknown) => isLaneVisionError(err) && code.test(err.code),
      what,
    );
  }
  const tooBig = await openDataset(root, { maxInputBytes: 1000 });
  await assert.rejects(tooBig.add('New', photo.bytes), (err: unknown) => isLaneVisionError(err, 'IMAGE_TOO_LARGE'));
  assert.deepEqual(await listTree(root), before);
  assert.deepEqual(dataset.counts(), { Good: 1 });
});

test('50 adds in parallel keep 50 entries, also through two handles on the same folder', async () => {
  const photos = realPhotos(50);
  const first = await openDataset(root);
  const second = await openDataset(root);
  const results = await Promise.all(photos.map((p, i) => (i % 2 ? first : second).add(p.className, p.bytes, { source: `test-${i}` })));
  assert.equal(results.filter((r) => r.duplicate).length, 0);
  assert.equal(new Set(results.map((r) => r.id)).size, 50);
  assert.equal(first.size, 50);
  assert.equal(second.size, 50);
  const manifest = readManifestJson(root);
  assert.equal(manifest.entries.length, 50);
  assert.deepEqual(manifest.entries.map((e) => e.sha256).sort(), photos.map((p) => sha256(p.bytes)).sort());
  assert.equal((await imageFiles(root)).length, 50);
  const expected: Record<string, number> = {};
  for (const p of photos) expected[p.className] = (expected[p.className] ?? 0) + 1;
  assert.deepEqual(first.counts(), Object.fromEntries(Object.entries(expected).sort(([a], [b]) => (a < b ? -1 : 1))));
});

test('the same image added 5 times at once is stored once', async () => {
  const dataset = await openDataset(root);
  const [photo] = realPhotos(1);
  const results = await Promise.all(Array.from({ length: 5 }, () => dataset.add('A', photo.bytes)));
  assert.equal(results.filter((r) => !r.duplicate).length, 1);
  assert.equal(new Set(results.map((r) => r.id)).size, 1);
  assert.equal((await imageFiles(root)).length, 1);
});

test('parallel removes, relabels and adds lose nothing', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(30);
  const initial = await Promise.all(photos.slice(0, 20).map((p) => dataset.add('A', p.bytes)));
  await Promise.all([
    ...initial.slice(0, 5).map((e) => dataset.remove(e.id)),
    ...initial.slice(5, 10).map((e) => dataset.relabel(e.id, 'B')),
    ...photos.slice(20).map((p) => dataset.add('C', p.bytes)),
  ]);
  assert.deepEqual(dataset.counts(), { A: 10, B: 5, C: 10 });
  const manifest = readManifestJson(root);
  assert.equal(manifest.entries.length, 25);
  const onDisk = await imageFiles(root);
  assert.deepEqual(manifest.entries.map((e) => `${e.label}/${e.file}`).sort(), onDisk);
});

test('files copied in without a manifest entry join the dataset and are hashed on demand', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(3);
  const added = await dataset.add('A', photos[0].bytes);
  fs.mkdirSync(path.join(root, 'B'));
  fs.writeFileSync(path.join(root, 'B', 'dropped-in.jpg'), photos[1].bytes);
  fs.writeFileSync(path.join(root, 'B', 'notes.txt'), 'not an image');
  fs.writeFileSync(path.join(root, 'B', 'broken.jpg'), photos[2].bytes.subarray(0, 20));
  fs.mkdirSync(path.join(root, '.git'));
  await dataset.refresh();
  assert.deepEqual(dataset.counts(), { A: 1, B: 2 });
  const entries = await dataset.entries();
  const found = entries.find((e) => e.file === 'dropped-in.jpg');
  assert.ok(found);
  assert.equal(found.id, 'B/dropped-in.jpg');
  assert.equal(found.source, 'folder');
  assert.equal(found.sha256, sha256(photos[1].bytes));
  const broken = entries.find((e) => e.file === 'broken.jpg');
  assert.ok(broken?.problem, 'a file that is not a readable image is flagged');
  assert.deepEqual([broken.width, broken.height], [0, 0]);
  // Unreadable files do not change the fingerprint: training cannot use them.
  const withBroken = await dataset.fingerprint();
  fs.rmSync(broken.path);
  await dataset.refresh();
  assert.equal(await dataset.fingerprint(), withBroken);
  // The dropped-in image is a duplicate candidate like any other.
  assert.equal((await dataset.add('C', photos[1].bytes)).id, 'B/dropped-in.jpg');
  // Its details are written on the next change, keeping the added image's metadata.
  await dataset.remove(added.id);
  const manifest = readManifestJson(root);
  assert.deepEqual(manifest.entries.map((e) => [e.id, e.sha256]), [['B/dropped-in.jpg', sha256(photos[1].bytes)]]);
});

test('a damaged manifest is reported, not silently replaced', async () => {
  const dataset = await openDataset(root);
  const [photo] = realPhotos(1);
  await dataset.add('A', photo.bytes);
  fs.writeFileSync(path.join(root, MANIFEST_FILE_NAME), '{"format": "lane-vision-dataset", "version": 1, "entries": [{"id": 3}]}');
  await assert.rejects(openDataset(root), (err: unknown) => isLaneVisionError(err, 'DATASET_MANIFEST_INVALID') && /entry 0/.test(err.message));
  fs.writeFileSync(path.join(root, MANIFEST_FILE_NAME), '{"format": "lane-vision-dataset", "version": 7, "entries": []}');
  await assert.rejects(openDataset(root), (err: unknown) => isLaneVisionError(err, 'DATASET_MANIFEST_VERSION'));
  fs.writeFileSync(path.join(root, MANIFEST_FILE_NAME), 'not json');
  await assert.rejects(openDataset(root), (err: unknown) => isLaneVisionError(err, 'DATASET_MANIFEST_INVALID'));
});

test('stored images decode to what was added', async () => {
  const dataset = await openDataset(root);
  const photos = realPhotos(3);
  for (const p of photos) {
    const entry = await dataset.add(p.className, p.bytes);
    const decoded = await encodeForStorage(entry.path);
    assert.deepEqual([decoded.width, decoded.height], [entry.width, entry.height]);
    assert.equal(decoded.sha256, entry.sha256);
  }
});
