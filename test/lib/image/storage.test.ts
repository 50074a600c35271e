import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { encodeForStorage, ImageErrorCode, prepareImage } from '../../../src/image/index.js';
import { assertRejectsWith, encodeRaw, quadrantsRaw, samplePhotos, tempDir } from './helpers.js';

const SIZE = { width: 224, height: 224 };

test('a shared JPEG is stored byte for byte, with the same hash from every input form', async (t) => {
  const [photo] = samplePhotos(1);
  const bytes = await fs.promises.readFile(photo!);
  const fileHash = createHash('sha256').update(bytes).digest('hex');
  const copy = path.join(tempDir(t), 'copy.jpg');
  await fs.promises.copyFile(photo!, copy);

  for (const input of [bytes, photo!, copy, bytes.toString('base64'), `data:image/jpeg;base64,${bytes.toString('base64')}`]) {
    const stored = await encodeForStorage(input);
    assert.equal(stored.format, 'jpeg');
    assert.equal(stored.extension, '.jpg');
    assert.deepEqual([stored.width, stored.height], [348, 348]);
    assert.ok(stored.bytes.equals(bytes), 'original bytes kept');
    assert.equal(stored.sha256, fileHash);
  }
  const prepared = await prepareImage(bytes, SIZE);
  assert.equal(prepared.sourceHash, fileHash);
});

test('PNG and WebP are kept; GIF, TIFF and raw pixels become PNG with the same pixels', async () => {
  const raw = quadrantsRaw(48, 32);
  for (const [format, extension] of [['png', '.png'], ['webp', '.webp']] as const) {
    const encoded = await encodeRaw(raw, format);
    const stored = await encodeForStorage(encoded);
    assert.equal(stored.format, format);
    assert.equal(stored.extension, extension);
    assert.ok(stored.bytes.equals(encoded));
    assert.deepEqual([stored.width, stored.height], [48, 32]);
    assert.equal(stored.sha256, (await prepareImage(encoded, SIZE)).sourceHash);
  }

  const rgba = { data: Buffer.alloc(48 * 32 * 4), width: 48, height: 32, channels: 4 as const };
  for (let i = 0; i < 48 * 32; i++) {
    raw.data.copy(rgba.data, i * 4, i * 3, i * 3 + 3);
    rgba.data[i * 4 + 3] = i % 2 ? 255 : 128;
  }
  const grey = { data: Buffer.from(Array.from({ length: 48 * 32 }, (_, i) => i % 251)), width: 48, height: 32, channels: 1 as const };
  const sources = {
    gif: await encodeRaw(raw, 'gif'),
    tiff: await encodeRaw(raw, 'tiff'),
    avif: await sharp(raw.data, { raw: { width: 48, height: 32, channels: 3 } }).avif({ lossless: true }).toBuffer(),
    rawRgb: raw,
    rawRgba: rgba,
    rawGrey: grey,
  };
  for (const [name, input] of Object.entries(sources)) {
    const stored = await encodeForStorage(input);
    assert.equal(stored.format, 'png', name);
    assert.equal(stored.extension, '.png', name);
    assert.deepEqual([stored.width, stored.height], [48, 32], name);
    assert.equal(stored.sha256, (await prepareImage(input, SIZE)).sourceHash, `${name} hash matches prepareImage`);
    if (!Buffer.isBuffer(input)) {
      // Raw frames come back exactly, alpha and grey included.
      assert.equal((await sharp(stored.bytes).metadata()).channels, input.channels, `${name} channels on disk`);
      const reader = sharp(stored.bytes);
      const decoded = await (input.channels === 1 ? reader.toColourspace('b-w') : reader).raw().toBuffer();
      assert.ok(decoded.equals(input.data), `${name} pixels survive`);
    } else {
      // The palette of four colours is exact in GIF; TIFF-LZW is lossless; lossless AVIF
      // still goes through YUV, so allow a small difference there.
      const decoded = await sharp(stored.bytes).removeAlpha().raw().toBuffer();
      const worst = Math.max(...decoded.map((v, i) => Math.abs(v - raw.data[i]!)));
      assert.ok(worst <= (name === 'avif' ? 8 : 0), `${name} pixels survive (worst difference ${worst})`);
    }
  }
});

test('stored size is the upright size of an EXIF-rotated JPEG', async () => {
  const raw = quadrantsRaw(30, 50);
  const tagged = await sharp(raw.data, { raw: { width: 30, height: 50, channels: 3 } }).withMetadata({ orientation: 6 }).jpeg().toBuffer();
  const stored = await encodeForStorage(tagged);
  assert.ok(stored.bytes.equals(tagged), 'orientation tag kept with the original bytes');
  assert.deepEqual([stored.width, stored.height], [50, 30]);
});

test('storage refuses what prepareImage refuses', async () => {
  const [photo] = samplePhotos(1);
  const bytes = await fs.promises.readFile(photo!);
  await assertRejectsWith(encodeForStorage(bytes.subarray(0, bytes.length - 100)), ImageErrorCode.CORRUPT);
  await assertRejectsWith(encodeForStorage(bytes, { maxInputBytes: 1000 }), ImageErrorCode.TOO_LARGE);
  await assertRejectsWith(encodeForStorage(bytes, { maxInputPixels: 100 * 100 }), ImageErrorCode.TOO_LARGE, /348x348/);
  await assertRejectsWith(encodeForStorage(bytes, { maxInputPixels: 0 }), ImageErrorCode.OPTIONS);
  // A truncated WebP must fail too, even though it is kept as-is when whole.
  const webp = await encodeRaw(quadrantsRaw(64, 64), 'webp');
  await assertRejectsWith(encodeForStorage(webp.subarray(0, Math.floor(webp.length / 2))), ImageErrorCode.CORRUPT);
});
