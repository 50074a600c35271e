/**
 * Raw RGB frames ({data, width, height, channels: 3}, what a camera giving pixels sends)
 * go through the inference worker and classify exactly as their PNG encoding does, without
 * a JPEG/PNG decode; a raw frame whose fields disagree fails alone, with a clear error.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { loadBackbone, type Backbone } from '../../../src/engine/index.js';
import { FrameEmbedder } from '../../../src/features/index.js';
import { LaneClassifier } from '../../../src/classify/index.js';
import type { RawImage } from '../../../src/image/index.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';

/** A backbone with ImageNet's classifier of its own, so no head has to be trained first. */
const MODEL = 'mobilenet-v1-0.25-imagenet';
let backbone: Backbone;
let embedder: FrameEmbedder;
let classifier: LaneClassifier;

before(async () => {
  backbone = await loadBackbone(modelDir(MODEL));
  embedder = new FrameEmbedder(backbone, { spec: modelDir(MODEL), thread: 'worker', onMainThread: (why) => assert.fail(`stayed on the main thread: ${why.message}`) });
  classifier = new LaneClassifier({ backbone, embed: embedder.embed, threshold: 0 });
  classifier.useBackboneClassifier();
});
after(async () => {
  classifier.dispose();
  await embedder.dispose();
  backbone.release();
});

async function rawOf(file: string, size?: { width: number; height: number }): Promise<RawImage> {
  const image = size ? sharp(file).resize(size.width, size.height, { fit: 'fill' }) : sharp(file);
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function pngOf(raw: RawImage): Promise<Buffer> {
  return sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels as 3 } }).png().toBuffer();
}

test('raw RGB frames classify as their PNG encoding does, through the inference worker', async () => {
  const files = classNames(groceryValDir)
    .slice(0, 4)
    .map((name) => classImages(groceryValDir, name)[0]!);
  // The shared photos at their size, and one stretched to a 1080p camera frame.
  const raws = [...(await Promise.all(files.map((f) => rawOf(f)))), await rawOf(files[0]!, { width: 1920, height: 1080 })];
  const pngs = await Promise.all(raws.map(pngOf));
  // In one batch, raw and PNG frames mixed, as a lane with two kinds of camera would send them.
  const results = await classifier.classifyBatch([...raws, ...pngs]);
  assert.equal(embedder.thread, 'worker');
  raws.forEach((raw, i) => {
    const fromRaw = results[i]!;
    const fromPng = results[raws.length + i]!;
    assert.ok(!('error' in fromRaw) && !('error' in fromPng), `frame ${i} classified`);
    assert.equal(fromRaw.label, fromPng.label, `frame ${i} (${raw.width}x${raw.height}): same label`);
    assert.ok(Math.abs(fromRaw.confidence - fromPng.confidence) < 1e-6, `frame ${i}: same confidence (${fromRaw.confidence} vs ${fromPng.confidence})`);
    fromRaw.topK.forEach((ranked, k) => assert.equal(ranked.label, fromPng.topK[k]!.label, `frame ${i}: same rank ${k}`));
  });
  // Different photos are told apart: the comparison above is not of one constant answer.
  assert.ok(new Set(results.slice(0, files.length).map((r) => ('error' in r ? '' : r.frameHash))).size === files.length);
});

test('a raw frame whose size and data disagree fails alone, saying so', async () => {
  const good = await rawOf(classImages(groceryValDir, classNames(groceryValDir)[0]!)[0]!);
  const short: RawImage = { ...good, data: good.data.subarray(0, good.data.length - 3) };
  const twoChannels: RawImage = { ...good, channels: 2 };
  const [ok, shortResult, channelResult] = await classifier.classifyBatch([good, short, twoChannels]);
  assert.ok(ok && !('error' in ok), 'the good frame still classifies');
  assert.ok(shortResult && 'error' in shortResult);
  assert.equal((shortResult.error as { code?: string }).code, 'INPUT_TYPE');
  assert.match(shortResult.error.message, /needs \d+ bytes, but its data has \d+ bytes/);
  assert.ok(channelResult && 'error' in channelResult);
  assert.match(channelResult.error.message, /1 \(grey\), 3 \(RGB\) or 4 \(RGBA\) channels, got 2/);
});
