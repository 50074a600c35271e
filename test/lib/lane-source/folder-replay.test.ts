import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { createFolderReplay, listLabelledImages, type LaneFrame, type LaneSource } from '../../../src/lane-source/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { classImages, classNames, groceryDir, groceryTrainDir } from '../../support/shared.js';

const EXPECTED_LABELS = 31;
const EXPECTED_IMAGES = 864;

let scratch: string;
before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-source-'));
});
after(() => {
  fs.rmSync(scratch, { recursive: true, force: true });
});

async function drain(source: LaneSource, limit: number): Promise<LaneFrame[]> {
  const frames: LaneFrame[] = [];
  for (let frame = await source.next(); frame && frames.length < limit; frame = await source.next()) frames.push(frame);
  return frames;
}

async function writeImage(file: string, colour: string): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 8, height: 8, channels: 3, background: colour } }).toFile(file);
}

test('lists the grocery training set by class folder', async () => {
  const images = await listLabelledImages(groceryTrainDir);
  const expected = classNames(groceryTrainDir).flatMap((label) => classImages(groceryTrainDir, label).map((file) => ({ label, path: file })));
  assert.equal(images.length, EXPECTED_IMAGES);
  assert.equal(new Set(images.map((image) => image.label)).size, EXPECTED_LABELS);
  assert.deepEqual(images, expected);
  for (const image of images) assert.equal(image.label, path.basename(path.dirname(image.path)));
  // A dataset root holding train/ lists train/.
  assert.deepEqual(await listLabelledImages(groceryDir), images);
});

test('replays every training image once, with its folder as label, then ends', async () => {
  const replay = await createFolderReplay(groceryTrainDir);
  assert.equal(replay.labels.length, EXPECTED_LABELS);
  const frames = await drain(replay, EXPECTED_IMAGES + 10);
  assert.equal(frames.length, EXPECTED_IMAGES);
  assert.deepEqual(frames.map((frame) => frame.index), [...Array(EXPECTED_IMAGES).keys()]);
  assert.deepEqual(frames.map((frame) => frame.path), replay.images.map((image) => image.path));
  for (const frame of frames) assert.equal(frame.label, path.basename(path.dirname(frame.path!)));
  for (const frame of frames.filter((_, i) => i % 97 === 0)) {
    assert.ok(frame.image.equals(fs.readFileSync(frame.path!)), `bytes of ${frame.path}`);
    assert.equal((await sharp(frame.image).metadata()).format, 'jpeg');
  }
  assert.equal(await replay.next(), null);
  assert.equal(await replay.next(), null);
});

test('loop starts again after the last image', async () => {
  const replay = await createFolderReplay(groceryTrainDir, { loop: true });
  const frames = await drain(replay, EXPECTED_IMAGES * 2 + 3);
  assert.equal(frames.length, EXPECTED_IMAGES * 2 + 3);
  assert.equal(frames[EXPECTED_IMAGES * 2 + 2].index, EXPECTED_IMAGES * 2 + 2);
  for (const offset of [0, 1, 2]) {
    assert.equal(frames[EXPECTED_IMAGES + offset].path, frames[offset].path);
    assert.equal(frames[2 * EXPECTED_IMAGES + offset].path, frames[offset].path);
  }
});

test('seeded shuffle is reproducible, reshuffles each pass and still shows every image', async () => {
  const order = async (seed: number) =>
    (await drain(await createFolderReplay(groceryTrainDir, { shuffle: true, seed, loop: true }), EXPECTED_IMAGES * 2)).map(
      (frame) => frame.path!,
    );
  const first = await order(7);
  const again = await order(7);
  const other = await order(8);
  assert.deepEqual(again, first);
  assert.notDeepEqual(other.slice(0, EXPECTED_IMAGES), first.slice(0, EXPECTED_IMAGES));
  const sorted = (await listLabelledImages(groceryTrainDir)).map((image) => image.path);
  const passOne = first.slice(0, EXPECTED_IMAGES);
  const passTwo = first.slice(EXPECTED_IMAGES);
  assert.notDeepEqual(passOne, sorted);
  assert.notDeepEqual(passTwo, passOne);
  assert.deepEqual([...passOne].sort(), [...sorted].sort());
  assert.deepEqual([...passTwo].sort(), [...sorted].sort());
});

test('skips hidden files, hidden folders, non-images and empty class folders', async () => {
  const tree = path.join(scratch, 'tree');
  await writeImage(path.join(tree, 'Cherry', 'b.png'), '#a00');
  await writeImage(path.join(tree, 'Cherry', 'A.JPG'), '#a00');
  await writeImage(path.join(tree, 'Cherry', '.hidden.jpg'), '#a00');
  await writeImage(path.join(tree, 'Peach', 'one.webp'), '#f90');
  await writeImage(path.join(tree, 'Peach', 'two.jpeg'), '#f90');
  await writeImage(path.join(tree, '.thumbnails', 'x.jpg'), '#000');
  await writeImage(path.join(tree, 'stray.jpg'), '#fff');
  fs.writeFileSync(path.join(tree, 'Peach', 'notes.txt'), 'not an image');
  fs.writeFileSync(path.join(tree, 'Cherry', '.DS_Store'), '');
  fs.mkdirSync(path.join(tree, 'Empty'));
  const images = await listLabelledImages(tree);
  assert.deepEqual(
    images.map((image) => [image.label, path.relative(tree, image.path)]),
    [
      ['Cherry', path.join('Cherry', 'A.JPG')],
      ['Cherry', path.join('Cherry', 'b.png')],
      ['Peach', path.join('Peach', 'one.webp')],
      ['Peach', path.join('Peach', 'two.jpeg')],
    ],
  );
});

test('a flat folder of images replays with no label', async () => {
  const flat = path.join(scratch, 'flat');
  await writeImage(path.join(flat, 'frame-2.png'), '#123');
  await writeImage(path.join(flat, 'frame-1.jpg'), '#456');
  fs.writeFileSync(path.join(flat, 'readme.md'), '# frames');
  const frames = await drain(await createFolderReplay(flat), 10);
  assert.deepEqual(
    frames.map((frame) => [frame.label, path.basename(frame.path!)]),
    [
      [undefined, 'frame-1.jpg'],
      [undefined, 'frame-2.png'],
    ],
  );
});

test('missing, empty and image-less folders give clear errors', async () => {
  const missing = path.join(scratch, 'no-such-folder');
  await assert.rejects(listLabelledImages(missing), (err) => isLaneVisionError(err, 'SOURCE_NOT_FOUND') && err.message.includes(missing));
  await assert.rejects(createFolderReplay(missing), (err) => isLaneVisionError(err, 'SOURCE_NOT_FOUND'));
  const file = path.join(scratch, 'a-file.jpg');
  await writeImage(file, '#000');
  await assert.rejects(listLabelledImages(file), (err) => isLaneVisionError(err, 'SOURCE_NOT_FOUND'));

  for (const nothing of ['', '  ', undefined, 42]) {
    await assert.rejects(listLabelledImages(nothing as string), (err) => isLaneVisionError(err, 'SOURCE_NOT_FOUND'));
  }

  const empty = path.join(scratch, 'empty');
  fs.mkdirSync(empty);
  await assert.rejects(createFolderReplay(empty), (err) => isLaneVisionError(err, 'SOURCE_EMPTY') && err.message.includes(empty));
  const noImages = path.join(scratch, 'no-images');
  fs.mkdirSync(path.join(noImages, 'Cherry'), { recursive: true });
  fs.writeFileSync(path.join(noImages, 'Cherry', 'notes.txt'), 'x');
  fs.writeFileSync(path.join(noImages, '.hidden.png'), 'x');
  await assert.rejects(listLabelledImages(noImages), (err) => isLaneVisionError(err, 'SOURCE_EMPTY'));
});

test('an image removed after listing gives a read error, not a crash', async () => {
  const folder = path.join(scratch, 'vanishing');
  await writeImage(path.join(folder, 'A', 'one.png'), '#0f0');
  await writeImage(path.join(folder, 'A', 'two.png'), '#0f0');
  const replay = await createFolderReplay(folder);
  fs.rmSync(path.join(folder, 'A', 'one.png'));
  await assert.rejects(replay.next(), (err) => isLaneVisionError(err, 'SOURCE_READ_FAILED') && err.message.includes('one.png'));
  assert.equal((await replay.next())?.label, 'A');
});
