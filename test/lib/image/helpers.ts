/** Small images generated with sharp for the image tests (no committed binaries). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { isLaneVisionError } from '../../../src/errors.js';
import { classImages, classNames, groceryValDir } from '../../support/shared.js';

export type Rgb = readonly [number, number, number];

export const RED: Rgb = [255, 0, 0];
export const GREEN: Rgb = [0, 255, 0];
export const BLUE: Rgb = [0, 0, 255];
export const YELLOW: Rgb = [255, 255, 0];

/** Deterministic bytes (mulberry32), so "random" inputs repeat run to run. */
export function seededBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let state = seed >>> 0;
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** Raw RGB pixels painted by `colourAt(x, y)`. */
export function paintRaw(width: number, height: number, colourAt: (x: number, y: number) => Rgb): { data: Buffer; width: number; height: number; channels: 3 } {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colourAt(x, y);
      const i = (y * width + x) * 3;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
  return { data, width, height, channels: 3 };
}

/** Quadrants: top-left red, top-right green, bottom-left blue, bottom-right yellow. */
export function quadrantsRaw(width: number, height: number) {
  return paintRaw(width, height, (x, y) => (y < height / 2 ? (x < width / 2 ? RED : GREEN) : x < width / 2 ? BLUE : YELLOW));
}

export async function encodeRaw(
  raw: { data: Buffer; width: number; height: number; channels: 1 | 3 | 4 },
  format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff',
): Promise<Buffer> {
  const image = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels } });
  switch (format) {
    case 'png':
      return image.png().toBuffer();
    case 'jpeg':
      return image.jpeg({ quality: 95 }).toBuffer();
    case 'webp':
      return image.webp({ lossless: true }).toBuffer();
    case 'gif':
      return image.gif().toBuffer();
    case 'tiff':
      return image.tiff({ compression: 'lzw' }).toBuffer();
  }
}

export function pixelAt(data: Uint8Array, width: number, x: number, y: number): Rgb {
  const i = (y * width + x) * 3;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

export function assertColourNear(actual: Rgb, expected: Rgb, tolerance: number, where: string): void {
  const off = Math.max(...actual.map((v, i) => Math.abs(v - expected[i]!)));
  assert.ok(off <= tolerance, `${where}: got rgb(${actual.join(',')}), expected about rgb(${expected.join(',')})`);
}

/** Every pixel of the rectangle is within `tolerance` of `expected`. */
export function assertRegion(
  data: Uint8Array,
  width: number,
  rect: { left: number; top: number; right: number; bottom: number },
  expected: Rgb,
  tolerance: number,
  label: string,
): void {
  for (let y = rect.top; y < rect.bottom; y++) {
    for (let x = rect.left; x < rect.right; x++) assertColourNear(pixelAt(data, width, x, y), expected, tolerance, `${label} at (${x},${y})`);
  }
}

/** Rejects with a LaneVisionError of this code and a message that is a real sentence. */
export async function assertRejectsWith(promise: Promise<unknown>, code: string, messagePattern?: RegExp): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    assert.ok(isLaneVisionError(err), `expected a LaneVisionError, got ${String(err)}`);
    assert.equal(err.code, code, `wrong code; message: ${err.message}`);
    assert.ok(err.message.length > 20, `message too short: ${err.message}`);
    if (messagePattern) assert.match(err.message, messagePattern);
    return err;
  }
  assert.fail(`expected rejection with ${code}, but it resolved`);
}

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-image-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The first photo of each of the first `count` validation classes, sorted so runs repeat. */
export function samplePhotos(count: number): string[] {
  return classNames(groceryValDir)
    .slice(0, count)
    .map((name) => classImages(groceryValDir, name)[0]!);
}
