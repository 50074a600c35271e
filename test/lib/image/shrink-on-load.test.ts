/**
 * Windows of large JPEGs decode at a reduced scale (resize, then cut; see prepare.ts). These
 * tests hold the result to a reference decoded at full scale and cut before resizing, on
 * shared photos and a 1080p frame, and check that the window lands where the crop says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { prepareImage, type FitPolicy } from '../../../src/image/index.js';
import { assertColourNear, pixelAt, samplePhotos, type Rgb } from './helpers.js';

const OUT = { width: 224, height: 224 };

/** A shared photo stretched to a 1080p camera frame, as a lane camera would send it. */
async function fullHdFrame(photo: string): Promise<Buffer> {
  return sharp(photo).resize(1920, 1080, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer();
}

/** Full-scale decode, cut the window, cover the output: the pipeline before shrink-on-load. */
async function reference(jpeg: Buffer, window: { left: number; top: number; width: number; height: number }): Promise<Uint8Array> {
  const full = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const data = await sharp(full.data, { raw: { width: full.info.width, height: full.info.height, channels: 3 } })
    .extract(window)
    .resize(OUT.width, OUT.height, { fit: 'cover', position: 'centre' })
    .raw()
    .toBuffer();
  return new Uint8Array(data);
}

/** Mean and 99th percentile of the absolute channel differences. */
function difference(a: Uint8Array, b: Uint8Array): { mean: number; p99: number } {
  assert.equal(a.length, b.length);
  const counts = new Array<number>(256).fill(0);
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    counts[d]!++;
    sum += d;
  }
  let seen = 0;
  let p99 = 0;
  while (p99 < 255 && (seen += counts[p99]!) < 0.99 * a.length) p99++;
  return { mean: sum / a.length, p99 };
}

/** An edge moved by 2 pixels, backwards at the frame's far side, not at all for a window the frame's size. */
function nudge(start: number, length: number, frameLength: number): number {
  if (start + length + 2 <= frameLength) return start + 2;
  return start >= 2 ? start - 2 : start;
}

const FULL_HD_CASES: { name: string; fit: FitPolicy; window: { left: number; top: number; width: number; height: number } }[] = [
  { name: 'region of interest', fit: { kind: 'roi', left: 400, top: 100, width: 1000, height: 900 }, window: { left: 400, top: 100, width: 1000, height: 900 } },
  {
    name: 'crop rectangle',
    fit: { kind: 'cover', crop: { left: 0.25, top: 0.1, width: 0.5, height: 0.8 } },
    window: { left: 480, top: 108, width: 960, height: 864 },
  },
  {
    name: 'centred crop of a region',
    fit: { kind: 'roi', left: 200, top: 0, width: 1200, height: 1080, crop: { fraction: 0.5 } },
    window: { left: 500, top: 270, width: 600, height: 540 },
  },
  // Whole-frame cover: sharp's own resize, already shrinking on load.
  { name: 'whole frame', fit: { kind: 'cover' }, window: { left: 420, top: 0, width: 1080, height: 1080 } },
];

test('1080p JPEG windows decoded at reduced scale match a full-scale decode', async () => {
  const photos = samplePhotos(3);
  for (const photo of photos) {
    const jpeg = await fullHdFrame(photo);
    for (const { name, fit, window } of FULL_HD_CASES) {
      const out = await prepareImage(jpeg, { ...OUT, fit });
      const expected = await reference(jpeg, window);
      const diff = difference(out.data, expected);
      // The tolerance in the frame's own terms: the same window moved by 2 pixels of the
      // 1080p frame (half an output pixel). The cut of the scaled frame rounds to whole
      // pixels there, and libvips' shrink aligns its blocks to the frame, not the window.
      const movedWindow = { ...window, left: nudge(window.left, window.width, 1920), top: nudge(window.top, window.height, 1080) };
      const moved = difference(await reference(jpeg, movedWindow), expected);
      const where = `${name} of ${photo}: mean ${diff.mean.toFixed(2)}, p99 ${diff.p99} (window moved 2 px: mean ${moved.mean.toFixed(2)}, p99 ${moved.p99})`;
      assert.ok(diff.mean <= moved.mean && diff.p99 <= moved.p99, where);
    }
  }
});

test('shared photos (348 px, under twice the output) keep their exact pixels', async () => {
  for (const photo of samplePhotos(4)) {
    const jpeg = await sharp(photo).jpeg({ quality: 95 }).toBuffer();
    const { width = 0, height = 0 } = await sharp(jpeg).metadata();
    const window = { left: Math.round(width * 0.1), top: Math.round(height * 0.2), width: Math.round(width * 0.7), height: Math.round(height * 0.6) };
    const roi = await prepareImage(jpeg, { ...OUT, fit: { kind: 'roi', ...window } });
    assert.deepEqual(Buffer.from(roi.data), Buffer.from(await reference(jpeg, window)), `roi of ${photo}`);
  }
});

/** 1920x1080 in a grid of 8 x 4 tiles of 240 x 270 pixels, each its own colour. */
const TILE = { width: 240, height: 270 };
function tileColour(column: number, row: number): Rgb {
  return [column * 32 + 16, row * 64 + 32, ((column + row) % 2) * 200 + 20];
}

test('a crop of a 1080p frame lands on the tiles it names', async () => {
  const data = Buffer.alloc(1920 * 1080 * 3);
  for (let y = 0; y < 1080; y++) {
    for (let x = 0; x < 1920; x++) {
      const colour = tileColour(Math.floor(x / TILE.width), Math.floor(y / TILE.height));
      data.set(colour, (y * 1920 + x) * 3);
    }
  }
  const jpeg = await sharp(data, { raw: { width: 1920, height: 1080, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
  // Tiles 2..5 by 1..2: a 960 x 540 window (crop fractions of the frame), 4 x 2 tiles in the output.
  const rect = await prepareImage(jpeg, { width: 256, height: 144, fit: { kind: 'cover', crop: { left: 0.25, top: 0.25, width: 0.5, height: 0.5 } } });
  // The same tiles as a region of interest in pixels.
  const roi = await prepareImage(jpeg, { width: 256, height: 144, fit: { kind: 'roi', left: 480, top: 270, width: 960, height: 540 } });
  for (const [form, out] of [['crop rectangle', rect], ['region of interest', roi]] as const) {
    for (let column = 0; column < 4; column++) {
      for (let row = 0; row < 2; row++) {
        // The centre of each 64 x 72 output tile.
        const centre = pixelAt(out.data, 256, column * 64 + 32, row * 72 + 36);
        assertColourNear(centre, tileColour(column + 2, row + 1), 6, `${form}, tile ${column + 2},${row + 1}`);
      }
    }
  }
});
