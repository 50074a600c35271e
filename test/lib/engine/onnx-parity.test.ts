/**
 * Every shared backbone the tfjs engine loads also runs on ONNX Runtime, and gives the same
 * features (and class probabilities) on real grocery photos, in batches of 8 and one at a time.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, loadBackbone, tf } from '../../../src/engine/index.js';
import { modelDir } from '../../support/shared.js';
import { maxAbsDiff } from './onnx-support.js';
import { type Photo, valPhotos } from './photos.js';

/** The shared models (see ../shared/models/README.md); all of them convert. */
const SHARED_MODELS = [
  'mobilenet-v2-0.35-features',
  'mobilenet-v1-0.25-imagenet',
  'mobilenet-v1-0.25-imagenet-graph',
  'mobilenet-v1-1.0-features',
  'mobilenet-v2-1.0-imagenet',
  'teachable-machine-export',
];
const TOLERANCE = 1e-4;

let photos: Photo[];
let cacheDir: string;

before(async () => {
  await initBackend();
  photos = await valPhotos({ width: 224, height: 224 }, 1); // one photo of each of the 20 val classes
  cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-onnx-parity-'));
});

after(async () => {
  await fs.rm(cacheDir, { recursive: true, force: true });
});

/** Runs `frames` through `run` in batches of `size`. */
async function inBatches(frames: Photo[], size: number, run: (batch: Photo[]) => Promise<Float32Array[]>): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let i = 0; i < frames.length; i += size) out.push(...(await run(frames.slice(i, i + size))));
  return out;
}

for (const name of SHARED_MODELS) {
  test(`${name}: ONNX Runtime features match tfjs within ${TOLERANCE} on real photos, batch 8 and batch 1`, async () => {
    const tensors = tf.memory().numTensors;
    const onnx = await loadBackbone(modelDir(name), { cacheDir });
    const tfjs = await loadBackbone(modelDir(name), { engine: 'tfjs' });
    try {
      assert.equal(onnx.engine.name, 'onnxruntime', `not converted: ${JSON.stringify(onnx.backend.skipped)}`);
      assert.equal(tfjs.engine.name, 'tfjs');
      assert.equal(onnx.id, tfjs.id);
      assert.equal(onnx.featureLayer, tfjs.featureLayer);
      assert.equal(onnx.featureSize, tfjs.featureSize);
      assert.equal(onnx.engine.outputSize, tfjs.engine.outputSize);
      assert.deepEqual(onnx.classLabels, tfjs.classLabels);

      const reference = await inBatches(photos, 8, (b) => tfjs.engine.features(b));
      const batched = await inBatches(photos, 8, (b) => onnx.engine.features(b));
      const single = await inBatches(photos, 1, (b) => onnx.engine.features(b));
      const diff8 = maxAbsDiff(batched, reference);
      const diff1 = maxAbsDiff(single, reference);
      assert.ok(diff8 < TOLERANCE, `batch 8 differs from tfjs by ${diff8}`);
      assert.ok(diff1 < TOLERANCE, `batch 1 differs from tfjs by ${diff1}`);
      const magnitude = Math.max(...reference.map((f) => Math.max(...f.map(Math.abs))));
      assert.ok(magnitude > 0.1, `features are large enough for the tolerance to mean something (${magnitude})`);

      if (tfjs.engine.outputSize) {
        const expected = await inBatches(photos, 8, (b) => tfjs.engine.predict(b));
        const got = await inBatches(photos, 8, (b) => onnx.engine.predict(b));
        assert.ok(maxAbsDiff(got, expected) < TOLERANCE, `probabilities differ by ${maxAbsDiff(got, expected)}`);
        const argmax = (p: Float32Array) => p.indexOf(Math.max(...p));
        assert.deepEqual(got.map(argmax), expected.map(argmax), 'same top class on every photo');
      }
    } finally {
      onnx.release();
      tfjs.release();
    }
    assert.equal(tf.memory().numTensors, tensors, 'converting and releasing leaves no tfjs tensors');
  });
}
