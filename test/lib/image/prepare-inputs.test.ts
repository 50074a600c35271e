import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { prepareImage } from '../../../src/image/index.js';
import { BLUE, GREEN, RED, YELLOW, assertColourNear, encodeRaw, pixelAt, quadrantsRaw, samplePhotos, tempDir } from './helpers.js';

const SIZE = { width: 224, height: 224 };

test('a shared photo gives the same pixels and hash as Buffer, Uint8Array, base64, data URL and path', async (t) => {
  const [photo] = samplePhotos(1);
  const bytes = await fs.promises.readFile(photo!);
  const meta = await sharp(bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 348, 348], 'the shared photos are 348x348 JPEGs');

  const fromBuffer = await prepareImage(bytes, SIZE);
  assert.equal(fromBuffer.data.length, 224 * 224 * 3);
  assert.equal(fromBuffer.width, 224);
  assert.equal(fromBuffer.height, 224);
  assert.equal(fromBuffer.sourceHash, createHash('sha256').update(bytes).digest('hex'));

  const u8 = new Uint8Array(bytes.byteLength);
  u8.set(bytes);
  const base64 = bytes.toString('base64');
  const wrapped = base64.replace(/(.{76})/g, '$1\n'); // MIME-style line breaks
  const dir = tempDir(t);
  const relative = path.relative(process.cwd(), photo!);
  const others = {
    uint8array: await prepareImage(u8, SIZE),
    base64: await prepareImage(base64, SIZE),
    base64Wrapped: await prepareImage(wrapped, SIZE),
    base64Url: await prepareImage(bytes.toString('base64url'), SIZE),
    dataUrl: await prepareImage(`data:image/jpeg;base64,${base64}`, SIZE),
    absolutePath: await prepareImage(photo!, SIZE),
    relativePath: await prepareImage(relative, SIZE),
    fileUrl: await prepareImage(pathToFileURL(photo!).href, SIZE),
    copiedPath: await (async () => {
      const copy = path.join(dir, 'frame.jpeg');
      await fs.promises.copyFile(photo!, copy);
      return prepareImage(copy, SIZE);
    })(),
  };
  for (const [form, prepared] of Object.entries(others)) {
    assert.equal(prepared.sourceHash, fromBuffer.sourceHash, `${form} hash`);
    assert.deepEqual(Buffer.from(prepared.data), Buffer.from(fromBuffer.data), `${form} pixels`);
  }

  // A different photo must hash and look different, or the checks above prove nothing.
  const [, otherPhoto] = samplePhotos(2);
  const other = await prepareImage(otherPhoto!, SIZE);
  assert.notEqual(other.sourceHash, fromBuffer.sourceHash);
  assert.notDeepEqual(Buffer.from(other.data), Buffer.from(fromBuffer.data));
});

test('PNG, WebP, GIF and TIFF decode to the same picture', async () => {
  const raw = quadrantsRaw(64, 64);
  for (const format of ['png', 'webp', 'gif', 'tiff'] as const) {
    const encoded = await encodeRaw(raw, format);
    const prepared = await prepareImage(encoded, { width: 32, height: 32 });
    assert.equal(prepared.sourceHash, createHash('sha256').update(encoded).digest('hex'), format);
    assertColourNear(pixelAt(prepared.data, 32, 4, 4), RED, 8, `${format} top-left`);
    assertColourNear(pixelAt(prepared.data, 32, 27, 4), GREEN, 8, `${format} top-right`);
    assertColourNear(pixelAt(prepared.data, 32, 4, 27), BLUE, 8, `${format} bottom-left`);
    assertColourNear(pixelAt(prepared.data, 32, 27, 27), YELLOW, 8, `${format} bottom-right`);
  }
});

test('raw RGB, RGBA and grey pixels become RGB; hash covers pixels and shape', async () => {
  const rgb = quadrantsRaw(40, 40);
  const fromRgb = await prepareImage(rgb, { width: 40, height: 40 });
  // Same size, cover: the RGB bytes come back unchanged.
  assert.deepEqual(Buffer.from(fromRgb.data), rgb.data);

  const rgba = Buffer.alloc(40 * 40 * 4);
  for (let i = 0; i < 40 * 40; i++) {
    rgb.data.copy(rgba, i * 4, i * 3, i * 3 + 3);
    rgba[i * 4 + 3] = 255;
  }
  const fromRgba = await prepareImage({ data: new Uint8ClampedArray(rgba), width: 40, height: 40, channels: 4 }, { width: 40, height: 40 });
  assert.deepEqual(Buffer.from(fromRgba.data), rgb.data);
  assert.notEqual(fromRgba.sourceHash, fromRgb.sourceHash);

  const grey = Buffer.alloc(10 * 20);
  for (let i = 0; i < grey.length; i++) grey[i] = i % 256;
  const fromGrey = await prepareImage({ data: grey, width: 10, height: 20, channels: 1 }, { width: 10, height: 20 });
  for (let i = 0; i < grey.length; i++) {
    assert.deepEqual(pixelAt(fromGrey.data, 10, i % 10, Math.floor(i / 10)), [grey[i], grey[i], grey[i]]);
  }
  // The same bytes read as another shape are another frame.
  const asOtherShape = await prepareImage({ data: grey, width: 20, height: 10, channels: 1 }, { width: 10, height: 20 });
  assert.notEqual(asOtherShape.sourceHash, fromGrey.sourceHash);
  // The same raw frame hashes the same every time.
  const again = await prepareImage({ data: Buffer.from(grey), width: 10, height: 20, channels: 1 }, { width: 10, height: 20 });
  assert.equal(again.sourceHash, fromGrey.sourceHash);
});

test('transparent pixels become the background colour, 16-bit and grey PNGs become 8-bit RGB', async () => {
  const rgba = Buffer.alloc(8 * 8 * 4); // fully transparent, hidden colour black
  const png = await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } }).png().toBuffer();
  const teal = { r: 0, g: 128, b: 128 };
  const prepared = await prepareImage(png, { width: 8, height: 8, fit: { kind: 'contain', background: teal } });
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) assertColourNear(pixelAt(prepared.data, 8, x, y), [0, 128, 128], 1, `(${x},${y})`);

  const raw = quadrantsRaw(16, 16);
  const png16 = await sharp(raw.data, { raw: { width: 16, height: 16, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, 'ushort');
  const from16 = await prepareImage(png16, { width: 16, height: 16 });
  assert.deepEqual(Buffer.from(from16.data), raw.data);

  const greyPng = await sharp(Buffer.alloc(16 * 16, 200), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(greyPng).metadata()).channels, 1);
  const fromGrey = await prepareImage(greyPng, { width: 4, height: 4 });
  assert.deepEqual([...fromGrey.data], new Array(4 * 4 * 3).fill(200));
});
