import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Backbone, initBackend, loadBackbone, tf } from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { modelDir } from '../../support/shared.js';
import { copyModel } from './copy-model.js';
import { type Photo, valPhotos } from './photos.js';

/** What the shared models README documents for each folder. */
const SHARED_MODELS = [
  { name: 'mobilenet-v2-0.35-features', format: 'layers', featureSize: 1280, outputSize: 0 },
  { name: 'mobilenet-v1-0.25-imagenet', format: 'layers', featureSize: 256, outputSize: 1000, featureLayer: 'global_average_pooling2d_1' },
  {
    name: 'mobilenet-v1-0.25-imagenet-graph',
    format: 'graph',
    featureSize: 256,
    outputSize: 1001,
    featureLayer: 'module_apply_default/MobilenetV1/Logits/global_pool',
    inputRange: '[0,1]',
  },
  { name: 'mobilenet-v1-1.0-features', format: 'layers', featureSize: 1024, outputSize: 0 },
  { name: 'mobilenet-v2-1.0-imagenet', format: 'layers', featureSize: 1280, outputSize: 1001, featureLayer: 'features' },
  { name: 'teachable-machine-export', format: 'layers', featureSize: 1280, outputSize: 2, labels: ['twin1', 'twin2'] },
] as const;

let photos: Photo[];
let scratch: string;

before(async () => {
  await initBackend();
  photos = (await valPhotos({ width: 224, height: 224 }, 1)).slice(0, 3);
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-engine-'));
});

after(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

for (const expected of SHARED_MODELS) {
  test(`folder ${expected.name} loads as documented and gives features per frame`, async () => {
    const tensorsBefore = tf.memory().numTensors;
    const backbone = await loadBackbone(modelDir(expected.name));
    try {
      assert.equal(backbone.format, expected.format);
      assert.equal(backbone.featureSize, expected.featureSize);
      assert.equal(backbone.engine.featureSize, expected.featureSize);
      assert.equal(backbone.engine.outputSize, expected.outputSize);
      assert.deepEqual(backbone.inputSize, { width: 224, height: 224 });
      assert.equal(backbone.inputRange, 'inputRange' in expected ? expected.inputRange : '[-1,1]');
      assert.deepEqual(backbone.fit, { kind: 'cover' });
      if ('featureLayer' in expected) assert.equal(backbone.featureLayer, expected.featureLayer);
      assert.ok(backbone.id.includes(backbone.featureLayer));
      assert.ok(['wasm', 'tensorflow', 'cpu'].includes(backbone.backend.name));

      const features = await backbone.engine.features(photos);
      assert.equal(features.length, photos.length);
      for (const f of features) {
        assert.ok(f instanceof Float32Array);
        assert.equal(f.length, expected.featureSize);
        assert.ok(f.every(Number.isFinite));
        assert.ok(f.some((v) => v !== 0), 'features are not all zero');
      }
      assert.ok(maxAbsDiff(features[0], features[1]) > 1e-3, 'different photos give different features');

      if (expected.outputSize) {
        const probabilities = await backbone.engine.predict(photos);
        for (const p of probabilities) {
          assert.equal(p.length, expected.outputSize);
          assert.ok(p.every((v) => v >= 0 && v <= 1));
          assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-3, 'probabilities sum to 1');
        }
        assert.equal(backbone.classLabels?.length, expected.outputSize);
        if ('labels' in expected) assert.deepEqual(backbone.classLabels, expected.labels);
      } else {
        assert.equal(backbone.classLabels, undefined);
        await assert.rejects(backbone.engine.predict(photos), (err) => isLaneVisionError(err, 'MODEL_HAS_NO_CLASSIFIER'));
      }
    } finally {
      backbone.release();
    }
    assert.equal(tf.memory().numTensors, tensorsBefore, 'release frees every tensor');
  });
}

test('a file:// URL, the model.json path and a copy elsewhere load the same backbone (same id, same features)', async () => {
  const dir = modelDir('mobilenet-v1-0.25-imagenet');
  const copy = await copyModel('mobilenet-v1-0.25-imagenet', path.join(scratch, 'elsewhere', 'mobilenet-v1-0.25-imagenet'));
  const loaded = await Promise.all([dir, pathToFileURL(dir).href, path.join(dir, 'model.json'), copy].map((s) => loadBackbone(s)));
  try {
    const reference = await loaded[0].engine.features(photos.slice(0, 1));
    for (const backbone of loaded.slice(1)) {
      assert.equal(backbone.id, loaded[0].id);
      const features = await backbone.engine.features(photos.slice(0, 1));
      assert.equal(maxAbsDiff(features[0], reference[0]), 0);
    }
    assert.notEqual(loaded[0].location, loaded[3].location);
  } finally {
    for (const b of loaded) b.release();
  }
});

test('Teachable Machine export: features from its backbone equal the standalone backbone; predict uses the whole model', async () => {
  const tm = await loadBackbone(modelDir('teachable-machine-export'));
  const standalone = await loadBackbone(modelDir('mobilenet-v2-0.35-features'));
  try {
    assert.equal(tm.featureLayer, 'sequential_5');
    const [a, b] = await Promise.all([tm.engine.features(photos), standalone.engine.features(photos)]);
    for (let i = 0; i < photos.length; i++) assert.ok(maxAbsDiff(a[i], b[i]) < 1e-5);
    const p = await tm.engine.predict(photos);
    assert.ok(p.every((v) => v.length === 2));
  } finally {
    tm.release();
    standalone.release();
  }
});

test('a chosen feature layer is used; a spatial layer is global-average-pooled; nested layers work', async () => {
  const dir = modelDir('mobilenet-v1-0.25-imagenet');
  const pooled = await loadBackbone(dir);
  const spatial = await loadBackbone({ source: dir, featureLayer: 'conv_pw_13_relu' });
  const earlier = await loadBackbone({ source: dir, featureLayer: 'conv_pw_12_relu' });
  const tmNested = await loadBackbone({ source: modelDir('teachable-machine-export'), featureLayer: 'out_relu' });
  const tmDefault = await loadBackbone(modelDir('teachable-machine-export'));
  try {
    assert.equal(spatial.featureLayer, 'conv_pw_13_relu');
    assert.notEqual(spatial.id, pooled.id);
    const [a, b, c] = await Promise.all([pooled, spatial, earlier].map((bb) => bb.engine.features(photos.slice(0, 1))));
    assert.ok(maxAbsDiff(a[0], b[0]) < 1e-4, 'GAP of conv_pw_13_relu equals global_average_pooling2d_1');
    assert.equal(c[0].length, 256);
    assert.ok(maxAbsDiff(a[0], c[0]) > 1e-3, 'an earlier layer gives other features');
    assert.equal(tmNested.featureLayer, 'model2/out_relu');
    const [n, d] = await Promise.all([tmNested, tmDefault].map((bb) => bb.engine.features(photos.slice(0, 1))));
    assert.ok(maxAbsDiff(n[0], d[0]) < 1e-5);
  } finally {
    for (const b of [pooled, spatial, earlier, tmNested, tmDefault]) b.release();
  }
  await assert.rejects(loadBackbone({ source: dir, featureLayer: 'no_such_layer' }), (err) => isLaneVisionError(err, 'FEATURE_LAYER_NOT_FOUND'));
  await assert.rejects(
    loadBackbone({ source: modelDir('mobilenet-v1-0.25-imagenet-graph'), featureLayer: 'no/such/node' }),
    (err) => isLaneVisionError(err, 'FEATURE_LAYER_NOT_FOUND'),
  );
});

test('a missing folder or an unknown name is MODEL_NOT_FOUND', async () => {
  await assert.rejects(loadBackbone(path.join(scratch, 'nothing-here')), (err) => {
    assert.ok(isLaneVisionError(err, 'MODEL_NOT_FOUND'));
    assert.match(err.message, /nothing-here/);
    return true;
  });
  await assert.rejects(loadBackbone('mobilenet-v9'), (err) => {
    assert.ok(isLaneVisionError(err, 'MODEL_NOT_FOUND'));
    assert.match(err.message, /mobilenet-v2-0\.35/, 'lists the presets');
    return true;
  });
  const empty = path.join(scratch, 'empty-folder');
  await fs.mkdir(empty);
  await assert.rejects(loadBackbone(empty), (err) => isLaneVisionError(err, 'MODEL_NOT_FOUND'));
});

test('a garbage or wrong model.json is MODEL_INVALID', async () => {
  const cases: Record<string, string> = {
    garbage: '\u0000\u0001 this is not json {',
    array: '[1, 2, 3]',
    'no-topology': JSON.stringify({ weightsManifest: [] }),
    'unsafe-shard': JSON.stringify({ modelTopology: { node: [] }, weightsManifest: [{ paths: ['../../etc/passwd'], weights: [] }] }),
  };
  for (const [name, text] of Object.entries(cases)) {
    const dir = path.join(scratch, `invalid-${name}`);
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, 'model.json'), text);
    await assert.rejects(loadBackbone(dir), (err) => isLaneVisionError(err, 'MODEL_INVALID'), name);
  }
  // Valid JSON and weights, but a topology tfjs cannot build.
  const broken = await copyModel('mobilenet-v1-1.0-features', path.join(scratch, 'broken-topology'));
  const json = JSON.parse(await fs.readFile(path.join(broken, 'model.json'), 'utf8'));
  json.modelTopology.config.layers[1].class_name = 'NoSuchLayerType';
  await fs.writeFile(path.join(broken, 'model.json'), JSON.stringify(json));
  await assert.rejects(loadBackbone(broken), (err) => isLaneVisionError(err, 'MODEL_INVALID'));
});

test('a half-copied folder (short or missing shard) is MODEL_TRUNCATED', async () => {
  const short = await copyModel('mobilenet-v2-1.0-imagenet', path.join(scratch, 'short-shard'));
  const shard = path.join(short, 'group1-shard1of1.bin');
  const bytes = await fs.readFile(shard);
  await fs.writeFile(shard, bytes.subarray(0, bytes.length - 4096));
  await assert.rejects(loadBackbone(short), (err) => {
    assert.ok(isLaneVisionError(err, 'MODEL_TRUNCATED'));
    assert.match(err.message, /copy/);
    return true;
  });
  const missing = await copyModel('mobilenet-v1-0.25-imagenet', path.join(scratch, 'missing-shard'));
  await fs.rm(path.join(missing, 'group30-shard1of1'));
  await assert.rejects(loadBackbone(missing), (err) => isLaneVisionError(err, 'MODEL_TRUNCATED'));
});

test('bad settings and bad frames are clear errors', async () => {
  const dir = modelDir('mobilenet-v2-0.35-features');
  await assert.rejects(loadBackbone({ source: dir, inputSize: { width: 299, height: 299 } }), (err) => isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'));
  await assert.rejects(loadBackbone({ source: dir, inputRange: '[0,2]' as never }), (err) => isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'));
  await assert.rejects(loadBackbone({ source: '' }), (err) => isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'));
  await assert.rejects(loadBackbone('ftp://example.com/model.json'), (err) => isLaneVisionError(err, 'MODEL_INVALID'));

  const backbone: Backbone = await loadBackbone(dir);
  try {
    assert.deepEqual(await backbone.engine.features([]), []);
    await assert.rejects(backbone.engine.features([{ data: new Uint8Array(100) }]), (err) => {
      assert.ok(isLaneVisionError(err, 'FRAME_SIZE_MISMATCH'));
      assert.match(err.message, /224x224/);
      return true;
    });
    await assert.rejects(backbone.engine.features([{ data: 'pixels' as never }]), (err) => isLaneVisionError(err, 'FRAME_SIZE_MISMATCH'));
  } finally {
    backbone.release();
  }
  await assert.rejects(backbone.engine.features(photos), (err) => isLaneVisionError(err, 'ENGINE_DISPOSED'));
  backbone.release(); // a second release is harmless
});
