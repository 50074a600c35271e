/**
 * EmbeddingWorker and FrameEmbedder on real weights and photos: the worker thread gives
 * the vectors and errors the main thread would, survives its thread dying, ends on
 * dispose; FrameEmbedder stays on the main thread when the thread cannot serve the lane's
 * backbone, and says why.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { after, before, test } from 'node:test';
import type { Worker } from 'node:worker_threads';
import { loadBackbone, tf, type Backbone } from '../../../src/engine/index.js';
import {
  EmbeddingWorker,
  FrameEmbedder,
  embedImagesSettled,
  inferenceThreadFrom,
  type EmbedRequestOptions,
} from '../../../src/features/index.js';
import { enginePreferenceOf } from '../../../src/threads/backbone-thread.js';
import type { ImageInput } from '../../../src/image/index.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';

const MODEL = 'mobilenet-v2-0.35-features';
let backbone: Backbone;
let worker: EmbeddingWorker;
let options: EmbedRequestOptions;
const photos = classNames(groceryValDir)
  .slice(0, 3)
  .flatMap((name) => classImages(groceryValDir, name).slice(0, 2))
  .map((file) => fs.readFileSync(file));

before(async () => {
  backbone = await loadBackbone(modelDir(MODEL));
  worker = new EmbeddingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  options = { fit: backbone.fit };
});
after(async () => {
  await worker.dispose();
  backbone.release();
});

const onMainThread = (inputs: readonly ImageInput[]) => embedImagesSettled(backbone, inputs, { ...options, cache: null, batchSize: inputs.length });

function codeOf(result: object): string | undefined {
  return 'error' in result ? (result.error as { code?: string }).code : undefined;
}

test('the worker gives the vectors and hashes the main thread gives, in input order', async () => {
  const loaded = await worker.start();
  assert.equal(loaded.id, backbone.id, 'the thread loaded the same backbone');
  const tensorsBefore = tf.memory().numTensors;
  const there = await worker.embedSettled(photos, options);
  const here = await onMainThread(photos);
  assert.equal(there.results.length, photos.length);
  there.results.forEach((result, i) => {
    const expected = here.results[i];
    assert.ok('features' in result && 'features' in expected, `frame ${i} embedded`);
    assert.equal(result.hash, expected.hash);
    assert.equal(result.features.length, backbone.featureSize);
    const worst = result.features.reduce((max, v, k) => Math.max(max, Math.abs(v - expected.features[k])), 0);
    assert.ok(worst < 1e-5, `frame ${i}: vectors differ by ${worst}`);
  });
  assert.ok(there.decodeMs > 0 && there.featuresMs > 0, 'the thread timed its decode and backbone');
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor left on the main thread');
});

test('requests sent together overlap in the thread and each gets its own vectors, in input order', async () => {
  // Three lane batches at once, as a saturated lane sends them: they share the thread's decode and backbone stages.
  const batches = [photos.slice(0, 3), photos.slice(3), [...photos].reverse()];
  const here = await onMainThread(photos);
  const byHash = new Map(here.results.map((r) => ('features' in r ? [r.hash, r.features] : ['', new Float32Array()])));
  const replies = await Promise.all(batches.map((batch) => worker.embedSettled(batch, options)));
  replies.forEach((reply, b) => {
    assert.equal(reply.results.length, batches[b].length);
    reply.results.forEach((result, i) => {
      assert.ok('features' in result, `batch ${b} frame ${i} embedded`);
      const expected = here.results[photos.indexOf(batches[b][i])];
      assert.ok('features' in expected);
      assert.equal(result.hash, expected.hash, `batch ${b} frame ${i} is that frame`);
      const worst = result.features.reduce((max, v, k) => Math.max(max, Math.abs(v - byHash.get(result.hash)![k])), 0);
      assert.ok(worst < 1e-4, `batch ${b} frame ${i}: off by ${worst}`);
    });
  });
});

test('bad inputs fail in their place with the main thread\'s error codes; the rest embed', async () => {
  const hostile = { data: new Uint8Array(12), width: 2, height: 2, channels: 3, describe: () => 'not cloneable' };
  const inputs = [
    photos[0],
    Buffer.from('not an image at all'),
    42 as unknown as ImageInput,
    { data: new Uint8Array(10), width: 100, height: 100, channels: 3 },
    hostile as ImageInput,
    photos[1].subarray(0, photos[1].length / 2), // truncated JPEG
    photos[1],
  ];
  const there = await worker.embedSettled(inputs, options);
  const here = await onMainThread(inputs);
  assert.deepEqual(there.results.map(codeOf), here.results.map(codeOf));
  assert.ok('features' in there.results[0] && 'features' in there.results[4] && 'features' in there.results[6], 'good frames embedded');
  for (const i of [1, 2, 3, 5]) assert.ok(codeOf(there.results[i]), `input ${i} failed with a code`);

  // Over the byte limit: refused on this side, with the same error, before any copy to the thread.
  const small = { ...options, maxInputBytes: 1000 };
  const [tooBig] = (await worker.embedSettled([photos[0]], small)).results;
  const [tooBigHere] = (await embedImagesSettled(backbone, [photos[0]], { ...small, cache: null })).results;
  assert.equal(codeOf(tooBig), codeOf(tooBigHere));
  assert.match(codeOf(tooBig) ?? '', /TOO_LARGE/);
});

test('a frame that is a small view into a big buffer crosses as that frame only', async () => {
  const big = Buffer.alloc(4 * 1024 * 1024);
  photos[2].copy(big, 1000);
  const view = big.subarray(1000, 1000 + photos[2].length);
  const [result] = (await worker.embedSettled([view], options)).results;
  const [expected] = (await onMainThread([photos[2]])).results;
  assert.ok('features' in result && 'features' in expected);
  assert.equal(result.hash, expected.hash);
});

test('a thread that dies mid-request fails that request only; the next one starts a fresh thread', async () => {
  const victim = new EmbeddingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  const threads: number[] = [];
  victim.on('ready', (info) => threads.push(info.threadId));
  try {
    await victim.start();
    const pending = victim.embedSettled(photos, options);
    // As if the thread crashed: nothing in it gets to clean up.
    void (victim as unknown as { thread: { host: { worker: Worker } } }).thread.host.worker.terminate();
    await assert.rejects(pending, (err: unknown) => (err as { code?: string }).code === 'INFERENCE_WORKER_FAILED');
    const again = await victim.embedSettled(photos.slice(0, 2), options);
    assert.ok(again.results.every((r) => 'features' in r));
    assert.equal(threads.length, 2, 'a second thread loaded the backbone');
    assert.notEqual(threads[0], threads[1]);
  } finally {
    await victim.dispose();
  }
});

test('dispose ends the thread; a disposed worker refuses frames', async () => {
  const used = new EmbeddingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  const exit = new Promise<{ code: number }>((resolve) => used.once('exit', resolve));
  await used.embedSettled(photos.slice(0, 1), options);
  assert.equal(used.running, true);
  await used.dispose();
  assert.equal((await exit).code, 0, 'the thread ended on its own after releasing its backbone');
  await assert.rejects(used.embedSettled(photos.slice(0, 1), options), (err: unknown) => (err as { code?: string }).code === 'INFERENCE_WORKER_DISPOSED');
});

test('the backbone\'s own classifier output (ImageNet classes, 1001 here) comes from the thread as it does from the main thread', async () => {
  const imagenet = await loadBackbone(modelDir('mobilenet-v2-1.0-imagenet'));
  const classes = new EmbeddingWorker({ spec: modelDir('mobilenet-v2-1.0-imagenet'), engine: enginePreferenceOf(imagenet) });
  try {
    assert.ok(imagenet.engine.outputSize >= 1000, 'an ImageNet classifier');
    const asked = { fit: imagenet.fit, output: 'classifier' as const };
    const there = await classes.embedSettled(photos.slice(0, 3), asked);
    const here = await embedImagesSettled(imagenet, photos.slice(0, 3), { ...asked, cache: null });
    there.results.forEach((result, i) => {
      const expected = here.results[i];
      assert.ok('features' in result && 'features' in expected);
      assert.equal(result.features.length, imagenet.engine.outputSize, 'one probability per class of the backbone');
      const worst = result.features.reduce((max, v, k) => Math.max(max, Math.abs(v - expected.features[k])), 0);
      assert.ok(worst < 1e-5, `frame ${i}: outputs differ by ${worst}`);
    });
  } finally {
    await classes.dispose();
    imagenet.release();
  }
});

test('on tfjs (where ONNX Runtime is not installed) the thread gives the vectors the main thread gives on tfjs', async () => {
  const onTfjs = await loadBackbone(modelDir(MODEL), { engine: 'tfjs' });
  const thread = new EmbeddingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(onTfjs) });
  try {
    const loaded = await thread.start();
    assert.equal(loaded.engine, 'tfjs');
    assert.equal(loaded.id, onTfjs.id);
    const there = await thread.embedSettled(photos.slice(0, 2), options);
    const here = await embedImagesSettled(onTfjs, photos.slice(0, 2), { ...options, cache: null });
    there.results.forEach((result, i) => {
      const expected = here.results[i];
      assert.ok('features' in result && 'features' in expected);
      const worst = result.features.reduce((max, v, k) => Math.max(max, Math.abs(v - expected.features[k])), 0);
      assert.ok(worst < 1e-4, `frame ${i}: vectors differ by ${worst}`);
    });
  } finally {
    await thread.dispose();
    onTfjs.release();
  }
});

test('FrameEmbedder stays on the main thread, and says why, when its thread cannot load the backbone', async () => {
  const reasons: Error[] = [];
  const frames = new FrameEmbedder(backbone, { spec: '/nonexistent/model-folder', thread: 'worker', onMainThread: (reason) => reasons.push(reason) });
  try {
    const report = await frames.embed(photos.slice(0, 2), options);
    assert.ok(report.results.every((r) => 'features' in r), 'the frames were embedded anyway');
    assert.equal(frames.thread, 'main');
    assert.equal(reasons.length, 1);
    assert.equal((reasons[0] as { code?: string }).code, 'INFERENCE_WORKER_FAILED');
    assert.match(reasons[0].message, /nonexistent/);
  } finally {
    await frames.dispose();
  }
});

test('FrameEmbedder stays on the main thread when its thread loads a different backbone', async () => {
  const reasons: Error[] = [];
  const frames = new FrameEmbedder(backbone, { spec: modelDir('mobilenet-v1-0.25-imagenet'), thread: 'worker', onMainThread: (reason) => reasons.push(reason) });
  try {
    const report = await frames.embed(photos.slice(0, 1), options);
    assert.ok('features' in report.results[0] && report.results[0].features.length === backbone.featureSize, 'the lane\'s own backbone embedded it');
    assert.equal((reasons[0] as { code?: string }).code, 'INFERENCE_WORKER_BACKBONE_MISMATCH');
  } finally {
    await frames.dispose();
  }
});

test('FrameEmbedder uses its thread when it loads the same backbone; LANE_VISION_INFERENCE_THREAD picks the thread', async () => {
  const ready: number[] = [];
  const frames = new FrameEmbedder(backbone, { spec: modelDir(MODEL), thread: 'worker', onWorkerReady: (info) => ready.push(info.threadId) });
  try {
    const report = await frames.embed(photos.slice(0, 2), options);
    assert.ok(report.results.every((r) => 'features' in r));
    assert.equal(frames.thread, 'worker');
    assert.equal(ready.length, 1, 'its thread served the frames');
  } finally {
    await frames.dispose();
  }
  assert.equal(new FrameEmbedder(backbone, { spec: modelDir(MODEL), thread: 'main' }).thread, 'main');
  assert.equal(inferenceThreadFrom(''), 'worker');
  assert.equal(inferenceThreadFrom(' MAIN '), 'main');
  assert.throws(() => inferenceThreadFrom('gpu'), (err: unknown) => (err as { code?: string }).code === 'INFERENCE_THREAD_UNKNOWN');
});
