/**
 * The converter layer by layer and op by op: small models built here cover every layer
 * kind the shared backbones do not (odd kernels, padding, dilation, depth multipliers,
 * standalone batch norms, pooling, reshapes, dense heads...), with seeded weights; real
 * backbones with one unsupported layer or op must fall back to tfjs and say why.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, loadBackbone, tf } from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { copyModel } from './copy-model.js';
import { maxAbsDiff, saveLayersModel, setSeededWeights } from './onnx-support.js';
import { type Photo, valPhotos } from './photos.js';

let scratch: string;
let cacheDir: string;

before(async () => {
  await initBackend();
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-onnx-conv-'));
  cacheDir = path.join(scratch, 'cache');
});

after(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

const photoCache = new Map<number, Photo[]>();
async function photosAt(side: number): Promise<Photo[]> {
  if (!photoCache.has(side)) photoCache.set(side, (await valPhotos({ width: side, height: side }, 1)).slice(0, 8));
  return photoCache.get(side)!;
}

/** Loads `dir` on ONNX Runtime and on tfjs and checks both give the same numbers on real photos. */
async function expectSameOnBothEngines(dir: string, side: number, spec: { featureLayer?: string } = {}): Promise<void> {
  const photos = await photosAt(side);
  const onnx = await loadBackbone({ source: dir, ...spec }, { cacheDir, engine: 'onnx' });
  const tfjs = await loadBackbone({ source: dir, ...spec }, { engine: 'tfjs' });
  try {
    assert.equal(onnx.engine.name, 'onnxruntime');
    assert.equal(tfjs.engine.name, 'tfjs');
    assert.equal(onnx.id, tfjs.id, 'the engine does not change the backbone identity');
    const [a, b] = await Promise.all([onnx.engine.features(photos), tfjs.engine.features(photos)]);
    assert.ok(maxAbsDiff(a, b) < 1e-4, `features differ by ${maxAbsDiff(a, b)}`);
    assert.ok(maxAbsDiff(a.slice(0, 1), a.slice(1, 2)) > 1e-3, 'different photos give different features');
    if (tfjs.engine.outputSize) {
      const [p, q] = await Promise.all([onnx.engine.predict(photos), tfjs.engine.predict(photos)]);
      assert.ok(maxAbsDiff(p, q) < 1e-4, `probabilities differ by ${maxAbsDiff(p, q)}`);
    }
  } finally {
    onnx.release();
    tfjs.release();
  }
}

test('convolution zoo: padding, strides, dilation, depthwise multipliers, separable, standalone batch norm, pooling, merges', async () => {
  const input = tfl.input({ shape: [32, 32, 3] });
  const L = tfl.layers;
  let x = L.zeroPadding2d({ padding: [[1, 2], [0, 1]] }).apply(input) as tfl.SymbolicTensor;
  x = L.conv2d({ filters: 8, kernelSize: [3, 2], strides: 2, padding: 'valid', activation: 'relu6' }).apply(x) as tfl.SymbolicTensor;
  x = L.batchNormalization({ epsilon: 1e-3 }).apply(x) as tfl.SymbolicTensor;
  let a = L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false }).apply(x) as tfl.SymbolicTensor;
  a = L.batchNormalization({}).apply(a) as tfl.SymbolicTensor;
  a = L.reLU({ maxValue: 6 }).apply(a) as tfl.SymbolicTensor;
  const b = L.conv2d({ filters: 16, kernelSize: 3, dilationRate: 2, padding: 'same', activation: 'swish' }).apply(x) as tfl.SymbolicTensor;
  let y = L.add().apply([a, b]) as tfl.SymbolicTensor;
  y = L.batchNormalization({ center: false }).apply(y) as tfl.SymbolicTensor; // after an Add: not foldable
  y = L.leakyReLU({ alpha: 0.1 }).apply(y) as tfl.SymbolicTensor;
  const s = L.separableConv2d({ filters: 12, kernelSize: 3, strides: 2, padding: 'same', activation: 'elu' }).apply(y) as tfl.SymbolicTensor;
  const p1 = L.averagePooling2d({ poolSize: 2, strides: 1, padding: 'same' }).apply(s) as tfl.SymbolicTensor;
  const p2 = L.maxPooling2d({ poolSize: 3, strides: 1, padding: 'same' }).apply(s) as tfl.SymbolicTensor;
  const m = L.maximum().apply([p1, p2]) as tfl.SymbolicTensor;
  const d = L.minimum().apply([p1, p2]) as tfl.SymbolicTensor;
  let z = L.concatenate().apply([p1, p2, m, L.multiply().apply([d, d]) as tfl.SymbolicTensor]) as tfl.SymbolicTensor;
  z = L.conv2d({ filters: 10, kernelSize: 1, activation: 'sigmoid' }).apply(z) as tfl.SymbolicTensor;
  const pooled = L.concatenate().apply([L.globalAveragePooling2d({}).apply(z), L.globalMaxPooling2d({}).apply(z)] as tfl.SymbolicTensor[]);
  const model = tfl.model({ inputs: input, outputs: pooled as tfl.SymbolicTensor });
  setSeededWeights(model, 7);
  const dir = await saveLayersModel(model, path.join(scratch, 'zoo-conv'));
  await expectSameOnBothEngines(dir, 32);
});

test('dense zoo: flatten of a spatial map, dense layers, 2-D batch norm, reshape back to an image, softmax classifier', async () => {
  const L = tfl.layers;
  const model = tfl.sequential({
    layers: [
      L.rescaling({ inputShape: [16, 16, 3], scale: 0.5, offset: 0.1 }),
      L.conv2d({ filters: 4, kernelSize: 3, padding: 'valid', activation: 'tanh' }),
      L.averagePooling2d({ poolSize: 2 }),
      L.flatten(),
      L.dense({ units: 16, activation: 'softplus' }),
      L.batchNormalization({}),
      L.activation({ activation: 'hardSigmoid' }),
      L.reshape({ targetShape: [2, 2, 4] }),
      L.conv2d({ filters: 3, kernelSize: 1, activation: 'selu', name: 'embedding_conv' }),
      L.flatten({ name: 'embedding' }),
      L.dropout({ rate: 0.5 }),
      L.dense({ units: 5, activation: 'softmax' }),
    ],
  });
  setSeededWeights(model, 11);
  const dir = await saveLayersModel(model, path.join(scratch, 'zoo-dense'));
  await expectSameOnBothEngines(dir, 16);
  await expectSameOnBothEngines(dir, 16, { featureLayer: 'embedding' });
});

test('a real backbone with an unsupported activation falls back to tfjs and says which layer', async () => {
  const dir = await copyModel('mobilenet-v1-0.25-imagenet', path.join(scratch, 'v1-gelu'));
  const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
  const layers = json.modelTopology.model_config.config.layers as { class_name: string; config: { name: string; activation?: string } }[];
  const victim = layers.find((l) => l.class_name === 'Activation' && l.config.activation === 'relu6')!;
  victim.config.activation = 'gelu';
  await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));

  const ownCache = path.join(scratch, 'cache-gelu');
  const tensors = tf.memory().numTensors;
  const backbone = await loadBackbone(dir, { cacheDir: ownCache });
  try {
    assert.equal(backbone.engine.name, 'tfjs');
    const skip = backbone.backend.skipped.find((s) => s.name === 'onnxruntime');
    assert.ok(skip, `skipped: ${JSON.stringify(backbone.backend.skipped)}`);
    assert.match(skip.reason, new RegExp(`${victim.config.name}.*gelu`));
    const [features] = await backbone.engine.features((await photosAt(224)).slice(0, 1));
    assert.equal(features.length, 256);
  } finally {
    backbone.release();
  }
  assert.equal(tf.memory().numTensors, tensors, 'the converter and the fallback leak no tensors');
  await assert.rejects(loadBackbone(dir, { cacheDir: ownCache, engine: 'onnx' }), (err) => isLaneVisionError(err, 'ENGINE_UNAVAILABLE') && /gelu/.test(err.message));
  assert.equal(tf.memory().numTensors, tensors, 'a refused ONNX load frees the tfjs model too');
  assert.deepEqual(await fs.readdir(path.join(ownCache, 'onnx')).catch(() => []), [], 'nothing unconvertible is cached');
});

test('a real graph model with an unsupported op falls back to tfjs and says which node', async () => {
  const dir = await copyModel('mobilenet-v1-0.25-imagenet-graph', path.join(scratch, 'graph-selu'));
  const json = JSON.parse(await fs.readFile(path.join(dir, 'model.json'), 'utf8'));
  const victim = (json.modelTopology.node as { name: string; op: string }[]).find((n) => n.op === 'Relu6')!;
  victim.op = 'Selu';
  await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));

  const backbone = await loadBackbone(dir, { cacheDir });
  try {
    assert.equal(backbone.engine.name, 'tfjs');
    const skip = backbone.backend.skipped.find((s) => s.name === 'onnxruntime');
    assert.ok(skip?.reason.includes(victim.name) && skip.reason.includes('Selu'), skip?.reason);
    const probabilities = await backbone.engine.predict((await photosAt(224)).slice(0, 2));
    assert.equal(probabilities[0].length, 1001);
  } finally {
    backbone.release();
  }
});
