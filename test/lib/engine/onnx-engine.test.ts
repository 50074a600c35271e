/**
 * Choosing the engine (auto, forced, env), the conversion cache, batching, threads,
 * errors and memory of the ONNX Runtime engine, with the real MobileNetV2-0.35 backbone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ENGINE_ENV_VAR, ONNX_THREADS_ENV_VAR, parseEnginePreference } from '../../../src/engine/onnx/index.js';
import { initBackend, loadBackbone, tf } from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { modelDir } from '../../support/shared.js';
import { maxAbsDiff } from './onnx-support.js';
import { type Photo, valPhotos } from './photos.js';

const MODEL = 'mobilenet-v2-0.35-features';
let photos: Photo[];
let scratch: string;
let cacheDir: string;

before(async () => {
  await initBackend();
  photos = (await valPhotos({ width: 224, height: 224 }, 1)).slice(0, 8);
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-onnx-engine-'));
  cacheDir = path.join(scratch, 'cache');
});

after(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

/** Runs `body` with env vars set, restoring them afterwards. */
async function withEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

test('auto runs the backbone on ONNX Runtime and reports it; tfjs can be forced by option or LANE_VISION_ENGINE', async () => {
  const auto = await loadBackbone(modelDir(MODEL), { cacheDir });
  const forced = await loadBackbone(modelDir(MODEL), { cacheDir, engine: 'tfjs' });
  const fromEnv = await withEnv({ [ENGINE_ENV_VAR]: 'tfjs' }, () => loadBackbone(modelDir(MODEL), { cacheDir }));
  const optionWins = await withEnv({ [ENGINE_ENV_VAR]: 'tfjs' }, () => loadBackbone(modelDir(MODEL), { cacheDir, engine: 'onnx' }));
  try {
    assert.equal(auto.engine.name, 'onnxruntime');
    assert.deepEqual(auto.backend, { name: 'cpu', preference: 'auto', skipped: [] });
    for (const tfjs of [forced, fromEnv]) {
      assert.equal(tfjs.engine.name, 'tfjs');
      assert.ok(['tensorflow', 'wasm', 'cpu'].includes(tfjs.backend.name));
      assert.ok(!tfjs.backend.skipped.some((s) => s.name === 'onnxruntime'), 'a forced engine is not a skipped one');
    }
    assert.equal(optionWins.engine.name, 'onnxruntime');
    const [a, b] = await Promise.all([auto.engine.features(photos), forced.engine.features(photos)]);
    assert.ok(maxAbsDiff(a, b) < 1e-4);
  } finally {
    for (const b of [auto, forced, fromEnv, optionWins]) b.release();
  }
});

test('unknown engine names and thread counts are refused before anything loads', async () => {
  assert.equal(parseEnginePreference(' ONNXRuntime '), 'onnx');
  assert.equal(parseEnginePreference(undefined), 'auto');
  await assert.rejects(loadBackbone(modelDir(MODEL), { engine: 'gpu' as never }), (err) => isLaneVisionError(err, 'ENGINE_UNKNOWN'));
  await assert.rejects(
    withEnv({ [ENGINE_ENV_VAR]: 'tensorrt' }, () => loadBackbone(modelDir(MODEL))),
    (err) => isLaneVisionError(err, 'ENGINE_UNKNOWN'),
  );
  for (const threads of [0, 1.5, 1000]) {
    await assert.rejects(loadBackbone(modelDir(MODEL), { onnxThreads: threads }), (err) => isLaneVisionError(err, 'ENGINE_THREADS_INVALID'));
  }
  await assert.rejects(
    withEnv({ [ONNX_THREADS_ENV_VAR]: 'two' }, () => loadBackbone(modelDir(MODEL))),
    (err) => isLaneVisionError(err, 'ENGINE_THREADS_INVALID'),
  );
});

test('the conversion is cached by weights and settings, reused without converting again, and redone when damaged', async () => {
  const ownCache = path.join(scratch, 'cache-reuse');
  const first = await loadBackbone(modelDir(MODEL), { cacheDir: ownCache });
  const reference = await first.engine.features(photos.slice(0, 2));
  first.release();
  const folder = path.join(ownCache, 'onnx');
  const files = (await fs.readdir(folder)).sort();
  assert.equal(files.length, 2);
  const [metaFile, onnxFile] = files.map((f) => path.join(folder, f));
  assert.match(metaFile, /\.json$/);
  assert.ok(path.basename(onnxFile).startsWith(first.id.split('|').pop()!), 'named by the weights fingerprint in the backbone id');
  const meta = JSON.parse(await fs.readFile(metaFile, 'utf8'));
  assert.equal(meta.featureSize, 1280);
  assert.ok(meta.verifiedMaxDiff < 1e-3);
  const written = (await fs.stat(metaFile)).mtimeMs;

  const second = await loadBackbone(modelDir(MODEL), { cacheDir: ownCache });
  try {
    assert.equal(second.engine.name, 'onnxruntime');
    assert.equal(second.id, first.id);
    assert.equal(maxAbsDiff(await second.engine.features(photos.slice(0, 2)), reference), 0);
    assert.equal((await fs.stat(metaFile)).mtimeMs, written, 'loaded from the cache, not converted again');
  } finally {
    second.release();
  }

  // Other settings make another conversion; a damaged file is converted again, never run.
  const layer = await loadBackbone({ source: modelDir(MODEL), featureLayer: 'block_16_project_BN' }, { cacheDir: ownCache });
  assert.equal(layer.engine.featureSize, 112);
  layer.release();
  assert.equal((await fs.readdir(folder)).length, 4);
  const bytes = await fs.readFile(onnxFile);
  bytes[bytes.length >> 1] ^= 0xff;
  await fs.writeFile(onnxFile, bytes);
  const repaired = await loadBackbone(modelDir(MODEL), { cacheDir: ownCache });
  try {
    assert.equal(repaired.engine.name, 'onnxruntime');
    assert.ok(maxAbsDiff(await repaired.engine.features(photos.slice(0, 2)), reference) < 1e-6);
    assert.ok((await fs.stat(metaFile)).mtimeMs > written, 'rewritten');
  } finally {
    repaired.release();
  }
});

test('an unwritable cache costs only the caching', async () => {
  const blocked = path.join(scratch, 'not-a-folder');
  await fs.writeFile(blocked, 'a file where the cache folder should be');
  const backbone = await loadBackbone(modelDir(MODEL), { cacheDir: blocked });
  try {
    assert.equal(backbone.engine.name, 'onnxruntime');
  } finally {
    backbone.release();
  }
});

test('batches of 1 and 8, split or not, and 1 or 2 threads give the same features', async () => {
  const one = await loadBackbone(modelDir(MODEL), { cacheDir });
  const split = await loadBackbone(modelDir(MODEL), { cacheDir, maxBatch: 3, onnxThreads: 2 });
  try {
    const batched = await one.engine.features(photos);
    const chunked = await split.engine.features(photos);
    const single: Float32Array[] = [];
    for (const photo of photos) single.push(...(await one.engine.features([photo])));
    assert.equal(batched.length, 8);
    assert.ok(maxAbsDiff(batched, single) < 1e-5, `batch 8 vs 1: ${maxAbsDiff(batched, single)}`);
    assert.ok(maxAbsDiff(batched, chunked) < 1e-5, `batch 8 vs 3+3+2 on two threads: ${maxAbsDiff(batched, chunked)}`);
    assert.deepEqual(await one.engine.features([]), []);
  } finally {
    one.release();
    split.release();
  }
});

test('bad frames, a missing classifier and a released engine give clear errors', async () => {
  const backbone = await loadBackbone(modelDir(MODEL), { cacheDir });
  const engine = backbone.engine;
  await assert.rejects(engine.features([{ data: new Uint8Array(3) }]), (err) => isLaneVisionError(err, 'FRAME_SIZE_MISMATCH'));
  await assert.rejects(engine.features([photos[0], { data: 'pixels' as never }]), (err) => isLaneVisionError(err, 'FRAME_SIZE_MISMATCH'));
  await assert.rejects(engine.features('frames' as never), (err) => isLaneVisionError(err, 'FRAME_INVALID'));
  await assert.rejects(engine.predict(photos.slice(0, 1)), (err) => isLaneVisionError(err, 'MODEL_HAS_NO_CLASSIFIER'));
  assert.equal((await engine.features(photos.slice(0, 1)))[0].length, 1280, 'still works after bad calls');
  backbone.release();
  await assert.rejects(engine.features(photos.slice(0, 1)), (err) => isLaneVisionError(err, 'ENGINE_DISPOSED'));
});

/** Collects, then lets finalisers of external (native) buffers run, a few times over. */
async function settleGarbage(gc: () => void): Promise<void> {
  for (let round = 0; round < 3; round++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

test('memory stays flat over 200 calls', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const backbone = await loadBackbone(modelDir(MODEL), { cacheDir });
  try {
    const call = (i: number) => backbone.engine.features(i % 2 ? [photos[i % 8]] : photos.slice(0, 4));
    for (let i = 0; i < 40; i++) await call(i);
    await settleGarbage(gc);
    const start = process.memoryUsage();
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 200; i++) await call(i);
    await settleGarbage(gc);
    const end = process.memoryUsage();
    const mb = (n: number) => n / 2 ** 20;
    const rss = mb(end.rss - start.rss);
    const buffers = mb(end.arrayBuffers - start.arrayBuffers);
    // One leaked input batch (4 x 224 x 224 x 3 floats, 2.4 MB) per call would add
    // hundreds of MB; the margin allows for buffers the collector has not finalised yet.
    assert.ok(rss < 32, `rss grew ${rss.toFixed(1)} MB over 200 calls`);
    assert.ok(buffers < 8, `array buffers grew ${buffers.toFixed(2)} MB over 200 calls`);
    assert.equal(tf.memory().numTensors, tensors);
  } finally {
    backbone.release();
  }
});
