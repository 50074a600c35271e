import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import sharp from 'sharp';
import { encodeForStorage, ImageErrorCode, prepareImage } from '../../../src/image/index.js';
import type { ImageInput, PrepareOptions } from '../../../src/image/index.js';
import { assertRejectsWith, encodeRaw, quadrantsRaw, samplePhotos, seededBytes, tempDir } from './helpers.js';

const SIZE = { width: 224, height: 224 };

/** Both entry points must refuse the input the same way. */
async function assertBothReject(input: unknown, code: string, options: Partial<PrepareOptions> = {}, pattern?: RegExp): Promise<void> {
  await assertRejectsWith(prepareImage(input as ImageInput, { ...SIZE, ...options }), code, pattern);
  await assertRejectsWith(encodeForStorage(input as ImageInput, options), code, pattern);
}

function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A tiny, well-formed PNG whose header claims width x height (a "decompression bomb" header). */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

test('empty inputs are IMAGE_EMPTY', async () => {
  await assertBothReject(Buffer.alloc(0), ImageErrorCode.EMPTY);
  await assertBothReject(new Uint8Array(0), ImageErrorCode.EMPTY);
  await assertBothReject('', ImageErrorCode.EMPTY);
  await assertBothReject('  \n ', ImageErrorCode.EMPTY);
  await assertBothReject('data:image/jpeg;base64,', ImageErrorCode.EMPTY);
  await assertBothReject({ data: new Uint8Array(0), width: 4, height: 4, channels: 3 }, ImageErrorCode.EMPTY);
});

test('random bytes are refused as unsupported, damaged image data as corrupt', async () => {
  const random = seededBytes(4096, 7);
  await assertBothReject(random, ImageErrorCode.UNSUPPORTED, {}, /unrecognised data/);
  await assertBothReject(random.toString('base64'), ImageErrorCode.UNSUPPORTED);
  // Right signature, garbage after it.
  const fakeJpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), random]);
  await assertBothReject(fakeJpeg, ImageErrorCode.CORRUPT);
  const fakePng = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), random]);
  await assertBothReject(fakePng, ImageErrorCode.CORRUPT);
});

test('truncated JPEG and PNG are IMAGE_CORRUPT, not grey-filled frames', async () => {
  const [photo] = samplePhotos(1);
  const jpeg = await fs.promises.readFile(photo!);
  const png = await sharp(jpeg).png().toBuffer();
  for (const fraction of [0.3, 0.9, 0.99]) {
    await assertBothReject(jpeg.subarray(0, Math.floor(jpeg.length * fraction)), ImageErrorCode.CORRUPT, {}, /damaged or incomplete/);
    await assertBothReject(png.subarray(0, Math.floor(png.length * fraction)), ImageErrorCode.CORRUPT);
  }
  // The same bytes uncut are fine, so it is the truncation that is caught.
  await prepareImage(jpeg, SIZE);
  await prepareImage(png, SIZE);
});

test('a PNG header claiming 100000x100000 is refused before decoding', async () => {
  const bomb = pngClaiming(100_000, 100_000);
  assert.ok(bomb.length < 2000);
  await assertBothReject(bomb, ImageErrorCode.TOO_LARGE, {}, /100000x100000 .*limit of 40\.0 MP/);
  // Even with the pixel cap lifted as far as sharp allows, it must not hang or crash.
  await assertRejectsWith(prepareImage(bomb, { ...SIZE, maxInputPixels: 268_402_689 }), ImageErrorCode.TOO_LARGE);
});

test('a 10000x10000 image is refused over the default and a small cap', async () => {
  const big = await sharp({ create: { width: 10_000, height: 10_000, channels: 3, background: '#808080' } }).png().toBuffer();
  await assertBothReject(big, ImageErrorCode.TOO_LARGE, {}, /10000x10000 \(100\.0 MP\).*limit of 40\.0 MP/);
  await assertBothReject(big, ImageErrorCode.TOO_LARGE, { maxInputPixels: 1_000_000 }, /limit of 1\.0 MP/);
  await assertBothReject({ data: Buffer.alloc(3000 * 3000), width: 3000, height: 3000, channels: 1 }, ImageErrorCode.TOO_LARGE, { maxInputPixels: 1_000_000 });
  // A small image passes the small cap, so the cap is what refused the big one.
  await prepareImage(await encodeRaw(quadrantsRaw(100, 100), 'png'), { ...SIZE, maxInputPixels: 1_000_000 });
});

test('the byte cap applies to buffers, base64 and files', async (t) => {
  const png = await encodeRaw(quadrantsRaw(64, 64), 'png');
  const cap = { maxInputBytes: Math.floor(png.length / 2) };
  const file = path.join(tempDir(t), 'frame.png');
  await fs.promises.writeFile(file, png);
  for (const input of [png, png.toString('base64'), `data:image/png;base64,${png.toString('base64')}`, file]) {
    await assertBothReject(input, ImageErrorCode.TOO_LARGE, cap, /limit/);
    await prepareImage(input, { ...SIZE, maxInputBytes: png.length });
  }
});

test('documents, drawings and text are IMAGE_UNSUPPORTED', async (t) => {
  const dir = tempDir(t);
  const textFile = path.join(dir, 'notes.txt');
  await fs.promises.writeFile(textFile, 'Line 3 reject count: 12\nOperator: A. Jensen\n');
  await assertBothReject(textFile, ImageErrorCode.UNSUPPORTED, {}, /text/);

  const svg = Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  await assertBothReject(svg, ImageErrorCode.UNSUPPORTED, {}, /SVG/);
  await assertBothReject(svg.toString('base64'), ImageErrorCode.UNSUPPORTED, {}, /SVG/);
  await assertBothReject(`data:image/svg+xml;base64,${svg.toString('base64')}`, ImageErrorCode.UNSUPPORTED, {}, /SVG/);
  await assertBothReject(`data:image/svg+xml,${encodeURIComponent(svg.toString())}`, ImageErrorCode.UNSUPPORTED, {}, /SVG/);
  // Declared as PNG, but an SVG inside: the bytes decide.
  await assertBothReject(`data:image/png;base64,${svg.toString('base64')}`, ImageErrorCode.UNSUPPORTED, {}, /SVG/);
  const svgFile = path.join(dir, 'logo.png');
  await fs.promises.writeFile(svgFile, svg);
  await assertBothReject(svgFile, ImageErrorCode.UNSUPPORTED, {}, /SVG/);

  await assertBothReject(Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n', 'latin1'), ImageErrorCode.UNSUPPORTED, {}, /PDF/);
  await assertBothReject(Buffer.from('<!DOCTYPE html><html><body>hi</body></html>'), ImageErrorCode.UNSUPPORTED, {}, /HTML/);
  await assertBothReject(Buffer.from('BM' + 'x'.repeat(60)), ImageErrorCode.UNSUPPORTED, {}, /BMP/);
});

test('missing paths and folders are IMAGE_NOT_FOUND', async (t) => {
  const dir = tempDir(t);
  await assertBothReject(path.join(dir, 'no-such-frame.jpg'), ImageErrorCode.NOT_FOUND, {}, /does not exist/);
  await assertBothReject('./frames/missing.png', ImageErrorCode.NOT_FOUND);
  await assertBothReject('C:\\frames\\missing.jpg', ImageErrorCode.NOT_FOUND);
  await assertBothReject(dir, ImageErrorCode.NOT_FOUND, {}, /folder/);
  await assertBothReject('/dev/zero', ImageErrorCode.NOT_FOUND, {}, /not a regular file/);
});

test('wrong input types are INPUT_TYPE', async () => {
  const wrong: unknown[] = [
    42,
    null,
    undefined,
    true,
    {},
    { image: 'frame.jpg' },
    [1, 2, 3],
    new ArrayBuffer(8),
    () => 'frame',
    Symbol('frame'),
    'hello',
    'hello world',
    'data:image/jpeg;base64',
  ];
  for (const input of wrong) await assertBothReject(input, ImageErrorCode.INPUT_TYPE);
});

test('raw frames with the wrong shape are INPUT_TYPE', async () => {
  const good = quadrantsRaw(10, 10);
  const bad: { input: unknown; pattern: RegExp }[] = [
    { input: { ...good, data: good.data.subarray(1) }, pattern: /needs 300 bytes, but its data has 299/ },
    { input: { ...good, width: 11 }, pattern: /needs 330 bytes/ },
    { input: { ...good, channels: 2 }, pattern: /1 \(grey\), 3 \(RGB\) or 4 \(RGBA\)/ },
    { input: { ...good, channels: 4 }, pattern: /needs 400 bytes/ },
    { input: { ...good, width: 0 }, pattern: /width/ },
    { input: { ...good, height: 2.5 }, pattern: /height/ },
    { input: { ...good, width: '10' }, pattern: /width/ },
    { input: { ...good, data: Array.from(good.data) }, pattern: /Buffer, Uint8Array/ },
    { input: { ...good, data: new Uint16Array(300) }, pattern: /Buffer, Uint8Array/ },
    { input: { data: good.data }, pattern: /width/ },
  ];
  for (const { input, pattern } of bad) await assertBothReject(input, ImageErrorCode.INPUT_TYPE, {}, pattern);
  await prepareImage(good, SIZE);
});

test('bad options and a region outside the frame give clear errors', async () => {
  const raw = quadrantsRaw(100, 80);
  const png = await encodeRaw(raw, 'png');
  const outside = { kind: 'roi', left: 60, top: 0, width: 50, height: 50 } as const;
  for (const input of [png, raw]) {
    await assertRejectsWith(prepareImage(input, { ...SIZE, fit: outside }), ImageErrorCode.ROI_OUTSIDE, /outside the 100x80 frame/);
    await assertRejectsWith(
      prepareImage(input, { ...SIZE, fit: { kind: 'roi', left: 0, top: 70, width: 10, height: 11 } }),
      ImageErrorCode.ROI_OUTSIDE,
    );
    await prepareImage(input, { ...SIZE, fit: { kind: 'roi', left: 50, top: 30, width: 50, height: 50 } });
  }
  const badOptions: unknown[] = [
    { width: 0, height: 224 },
    { width: 224, height: 224.5 },
    { width: 224 },
    { width: 100_000, height: 224 },
    { ...SIZE, fit: { kind: 'stretch' } },
    { ...SIZE, fit: { kind: 'roi', left: -1, top: 0, width: 10, height: 10 } },
    { ...SIZE, fit: { kind: 'roi', left: 0, top: 0, width: 0, height: 10 } },
    { ...SIZE, fit: { kind: 'contain', background: { r: 300, g: 0, b: 0 } } },
    { ...SIZE, maxInputPixels: -5 },
    { ...SIZE, maxInputPixels: 1e12 },
    { ...SIZE, maxInputBytes: 'lots' },
    null,
  ];
  for (const options of badOptions) {
    await assertRejectsWith(prepareImage(png, options as PrepareOptions), ImageErrorCode.OPTIONS);
  }
});

test('many hostile inputs at once: every one rejects, the process survives', async () => {
  const [photo] = samplePhotos(1);
  const jpeg = await fs.promises.readFile(photo!);
  const inputs: unknown[] = [];
  for (let i = 0; i < 40; i++) {
    inputs.push(jpeg.subarray(0, 200 + i * 400), seededBytes(500 + i, i), pngClaiming(50_000 + i, 50_000));
  }
  const results = await Promise.allSettled(inputs.map((input) => prepareImage(input as ImageInput, SIZE)));
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.match((result as PromiseRejectedResult).reason.code, /^IMAGE_(CORRUPT|UNSUPPORTED|TOO_LARGE)$/);
  }
  // And a good frame still works afterwards.
  const ok = await prepareImage(jpeg, SIZE);
  assert.equal(ok.data.length, 224 * 224 * 3);
});
