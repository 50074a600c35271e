/**
 * int8 backbones on the real MobileNetV2 0.35 from shared/, calibrated on the shared train
 * photos (the lane's own frames) and compared with float on val photos it never saw:
 * - the quantised graph holds int8 weights, and ONNX Runtime really runs int8 kernels on it;
 * - through the loader, int8 features stay close to float features (cosine), under an id of
 *   their own with the same weights, cached with their calibration;
 * - bad settings fail with clear errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend, loadBackbone, parseBackboneId, type Backbone } from '../../../src/engine/index.js';
import { readModelFolder } from '../../../src/engine/model-files.js';
import { buildModel } from '../../../src/engine/tfjs-models.js';
import { convertToOnnx, onnxSessionOptions } from '../../../src/engine/onnx/index.js';
import { encodeOnnxModel } from '../../../src/engine/onnx/onnx-proto.js';
import { loadOnnxRuntime } from '../../../src/engine/onnx/runtime.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { cosine, planQuantisation, quantiseBackbone, readCalibrationSet } from '../../../src/quantise/index.js';
import { type Photo, valPhotos } from '../engine/photos.js';
import { groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';

const BACKBONE = modelDir('mobilenet-v2-0.35-features');
const SIZE = { width: 224, height: 224 };

let scratch: string;
let photos: Photo[];
let float: Backbone;
let int8: Backbone;

before(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-int8-'));
  photos = await valPhotos(SIZE, 1);
  float = await loadBackbone(BACKBONE, { engine: 'onnx', cacheDir: scratch });
  int8 = await loadBackbone({ source: BACKBONE, precision: 'int8', calibration: groceryTrainDir }, { engine: 'onnx', cacheDir: scratch });
});

after(async () => {
  float?.release();
  int8?.release();
  await fs.rm(scratch, { recursive: true, force: true });
});

test('the quantised graph stores every Conv weight as int8, and ONNX Runtime fuses it into int8 kernels', async () => {
  const runtime = loadOnnxRuntime();
  assert.ok('ort' in runtime, 'onnxruntime-node is installed for the tests');
  await initBackend();
  const files = await readModelFolder(BACKBONE);
  const built = await buildModel(files, {});
  const converted = await convertToOnnx({ files, featureLayer: built.featureLayer, hasClassifier: false, outputIsLogits: false, inputSize: SIZE, inputRange: '[-1,1]' });
  built.runner.dispose();
  const calibration = await readCalibrationSet(groceryTrainDir, 16);
  const frames = await calibration.frames(SIZE);
  const quantised = await quantiseBackbone(runtime.ort, converted.model, frames, { inputName: converted.model.inputs[0].name, inputSize: SIZE });

  const convs = quantised.model.nodes.filter((n) => n.op === 'Conv');
  const initializers = new Map(quantised.model.initializers.map((t) => [t.name, t]));
  const producers = new Map(quantised.model.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
  assert.equal(convs.length, converted.operators.Conv, 'every Conv is kept');
  for (const conv of convs) {
    const dequantise = producers.get(conv.inputs[1]);
    assert.equal(dequantise?.op, 'DequantizeLinear', `${conv.name} reads a dequantised weight`);
    assert.equal(initializers.get(dequantise.inputs[0])?.type, 'int8', `${conv.name}'s weight is stored as int8`);
    assert.equal(producers.get(conv.inputs[0])?.op, 'DequantizeLinear', `${conv.name}'s input is quantised`);
  }
  assert.ok(!quantised.model.initializers.some((t) => t.type === 'float32' && t.dims.length === 4), 'no float kernel is left');
  assert.ok(quantised.bytes.length < converted.bytes.length / 2, `int8 file ${quantised.bytes.length} bytes against float ${converted.bytes.length}`);
  assert.ok(!quantised.model.nodes.some((n) => n.op === 'Clip' || n.op === 'Pad'), 'ReLU6 and zero pads are folded into the convolutions');
  assert.equal(planQuantisation(converted.model).tensors.length, quantised.summary.quantisedTensors);

  // What ONNX Runtime runs after its optimisations: int8 convolutions, no float ones.
  const optimised = path.join(scratch, 'optimised.onnx');
  const session = await runtime.ort.InferenceSession.create(encodeOnnxModel(quantised.model), {
    ...onnxSessionOptions(1),
    optimizedModelFilePath: optimised,
  } as ReturnType<typeof onnxSessionOptions>);
  await session.release();
  const text = (await fs.readFile(optimised)).toString('latin1');
  const count = (op: string) => text.split(`\u0022${String.fromCharCode(op.length)}${op}`).length - 1;
  assert.equal(count('QLinearConv'), convs.length, 'every convolution runs as QLinearConv');
  assert.equal(count('Conv'), 0, 'no float convolution is left');
  assert.ok(count('QLinearAdd') > 0, 'residual additions stay in int8');
});

test('int8 features point where float features do on val photos the calibration never saw', async () => {
  assert.equal(int8.precision, 'int8');
  assert.equal(float.precision, 'float32');
  assert.equal(int8.featureSize, float.featureSize);
  const a = await float.engine.features(photos);
  const b = await int8.engine.features(photos);
  const cosines = a.map((f, i) => cosine(f, b[i]));
  const mean = cosines.reduce((s, c) => s + c, 0) / cosines.length;
  const lowest = Math.min(...cosines);
  assert.ok(mean > 0.97, `mean cosine ${mean.toFixed(4)} over ${photos.length} val photos`);
  assert.ok(lowest > 0.95, `lowest cosine ${lowest.toFixed(4)}`);
  assert.ok(cosines.some((c) => c < 0.9999), 'the int8 features are not float features under another name');
});

test('an int8 backbone has an id of its own with the same weights, and is cached with its calibration', async () => {
  assert.notEqual(int8.id, float.id);
  const [i, f] = [parseBackboneId(int8.id), parseBackboneId(float.id)];
  assert.ok(i && f);
  assert.equal(i.weights, f.weights);
  assert.match(i.origin, /\+int8:[0-9a-f]{12}$/);
  const metas = await Promise.all(
    (await fs.readdir(path.join(scratch, 'onnx'))).filter((n) => n.endsWith('.json')).map(async (n) => JSON.parse(await fs.readFile(path.join(scratch, 'onnx', n), 'utf8'))),
  );
  const quantised = metas.filter((m) => m.int8);
  assert.equal(quantised.length, 1, 'one int8 model in the conversion cache');
  const calibration = await readCalibrationSet(groceryTrainDir);
  assert.equal(quantised[0].int8.calibrationFingerprint, calibration.fingerprint);
  assert.equal(quantised[0].int8.calibrationFrames, calibration.files.length);
  assert.ok(quantised[0].int8.meanCosine > 0.95);
  assert.ok(quantised[0].operators.QuantizeLinear > 0);

  // Loaded again: from the cache, the same features.
  const again = await loadBackbone({ source: BACKBONE, precision: 'int8', calibration: groceryTrainDir }, { engine: 'onnx', cacheDir: scratch });
  try {
    assert.equal(again.id, int8.id);
    const [x, y] = [await again.engine.features(photos.slice(0, 3)), await int8.engine.features(photos.slice(0, 3))];
    assert.deepEqual(x, y);
  } finally {
    again.release();
  }
});

test('int8 without calibration frames, with too few, or on tfjs is refused with a clear error', async () => {
  await assert.rejects(loadBackbone({ source: BACKBONE, precision: 'int8' }, { cacheDir: scratch }), (err) => {
    assert.ok(isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'));
    assert.match(err.message, /calibration/);
    return true;
  });
  const few = path.join(scratch, 'few');
  await fs.mkdir(few);
  const someVal = (await fs.readdir(path.join(groceryValDir, 'Oatly-Oat-Milk'))).slice(0, 3);
  for (const name of someVal) await fs.copyFile(path.join(groceryValDir, 'Oatly-Oat-Milk', name), path.join(few, name));
  await assert.rejects(loadBackbone({ source: BACKBONE, precision: 'int8', calibration: few }, { cacheDir: scratch }), (err) => {
    assert.ok(isLaneVisionError(err, 'BACKBONE_CALIBRATION_INVALID'));
    assert.match(err.message, /holds 3 image\(s\).*at least 8/);
    return true;
  });
  await assert.rejects(loadBackbone({ source: BACKBONE, precision: 'int8', calibration: groceryTrainDir }, { engine: 'tfjs', cacheDir: scratch }), (err) => {
    assert.ok(isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'));
    assert.match(err.message, /ONNX Runtime only/);
    return true;
  });
  await assert.rejects(loadBackbone({ source: BACKBONE, precision: 'int4' as 'int8', calibration: groceryTrainDir }, { cacheDir: scratch }), (err) =>
    isLaneVisionError(err, 'BACKBONE_SPEC_INVALID'),
  );
});
