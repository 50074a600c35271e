/**
 * `lane-vision export` of a version trained on real photos, run OUTSIDE Lane Vision's code:
 * the ONNX file on onnxruntime-node directly, the TensorFlow.js files on plain tfjs
 * (tfjs-core + tfjs-layers + the cpu backend, tf.io.fromMemory), each image prepared here
 * with sharp exactly as lane-vision-export.json says. Both must give the same top-1 label
 * as `lane-vision classify` on 10 of 10 photos the model never saw.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import * as tfc from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-cpu';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';
import { jsonLines, runLaneVision } from '../cli/support.js';
import { acquireBackbone } from '../../../src/engine/index.js';
import { openDataset } from '../../../src/dataset/index.js';
import { openModelStore } from '../../../src/model-store/index.js';
import { retrain } from '../../../src/retrain/index.js';
import { selectLabels } from '../../../src/cli/dataset-view.js';
import { prepareImage } from '../../../src/image/index.js';

const LABELS = ['Bravo-Orange-Juice', 'Oatly-Oat-Milk', 'Yoggi-Strawberry-Yoghurt'];
/** 10 val photos (never trained on), spread over the labels. */
const PHOTOS = [...classImages(groceryValDir, LABELS[0]).slice(0, 4), ...classImages(groceryValDir, LABELS[1]).slice(0, 3), ...classImages(groceryValDir, LABELS[2]).slice(0, 3)];
let work: string;
let env: Record<string, string>;
let store: string;
/** What `lane-vision classify` ranks first per photo. */
let laneTop1: string[];

interface Description {
  format: string;
  files: string[];
  inputSize: [number, number];
  layout: 'NHWC';
  inputRange: [number, number];
  crop: null | { fraction: number } | { left: number; top: number; width: number; height: number };
  resize: 'cover';
  labels: { label: string; code: number }[];
  input: { name: string };
  output: { name: string };
  version: number;
  backboneId: string;
  opset?: number;
}

before(async () => {
  assert.equal(PHOTOS.length, 10);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-export-'));
  env = { LANE_VISION_CACHE: path.join(work, 'cache') };
  store = path.join(work, 'store');
  const train = await runLaneVision(
    ['train', '--backbone', modelDir('mobilenet-v2-0.35-features'), '--data', groceryTrainDir, '--store', store, '--labels', LABELS.join(','), '--budget', '20', '--json'],
    env,
    300_000,
  );
  assert.equal(train.code, 0, train.stderr);
  const classified = await runLaneVision(['classify', '--store', store, ...PHOTOS, '--json'], env);
  assert.equal(classified.code, 0, classified.stderr);
  laneTop1 = jsonLines(classified).map((line) => line.topK[0].label);
  // A model answering one label for everything would agree by accident; this one does not.
  assert.ok(new Set(laneTop1).size >= 2, `classify ranked ${laneTop1.join(', ')}`);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** The image as lane-vision-export.json says to feed it: upright, crop, cover resize, RGB mapped onto inputRange, NHWC float32. */
async function prepare(file: string, d: Description): Promise<Float32Array> {
  const upright = await sharp(file).rotate().toBuffer();
  const { width = 0, height = 0 } = await sharp(upright).metadata();
  let region = { left: 0, top: 0, width, height };
  if (d.crop && 'fraction' in d.crop) {
    const w = Math.round(width * d.crop.fraction);
    const h = Math.round(height * d.crop.fraction);
    region = { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
  } else if (d.crop) {
    region = { left: Math.round(width * d.crop.left), top: Math.round(height * d.crop.top), width: Math.round(width * d.crop.width), height: Math.round(height * d.crop.height) };
  }
  const [h, w] = d.inputSize;
  const { data } = await sharp(upright).extract(region).resize(w, h, { fit: d.resize, position: 'centre' }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  const [lo, hi] = d.inputRange;
  return Float32Array.from(data, (v) => lo + (v / 255) * (hi - lo));
}

function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

async function exportAs(format: string): Promise<{ dir: string; description: Description }> {
  const dir = path.join(work, `export-${format}`);
  const run = await runLaneVision(['export', '--store', store, '--format', format, '--out', dir, '--json'], env, 120_000);
  assert.equal(run.code, 0, run.stderr);
  const [result] = jsonLines(run);
  const description = JSON.parse(fs.readFileSync(path.join(dir, 'lane-vision-export.json'), 'utf8')) as Description;
  assert.deepEqual(result.description, description, '--json prints what the file says');
  for (const file of description.files) assert.ok(fs.existsSync(path.join(dir, file)), file);
  assert.deepEqual(description.labels.map((l) => l.label), LABELS, 'labels in output order');
  assert.equal(description.version, 1);
  assert.deepEqual(description.inputSize, [224, 224]);
  assert.deepEqual(description.inputRange, [-1, 1]);
  const metadata = JSON.parse(fs.readFileSync(path.join(store, 'v0001', 'metadata.json'), 'utf8'));
  assert.equal(description.backboneId, metadata.backbone.id);
  assert.deepEqual(description.crop, metadata.backbone.fit.crop ?? null, "the version's own crop");
  return { dir, description };
}

test('export --format onnx runs on onnxruntime-node alone and agrees with classify on 10 of 10 photos', async () => {
  const { dir, description } = await exportAs('onnx');
  assert.equal(description.opset, 13);
  // The runtime itself, not Lane Vision's engine around it.
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path.join(dir, description.files[0]));
  assert.deepEqual(session.inputNames, [description.input.name]);
  assert.deepEqual(session.outputNames, [description.output.name]);
  const [h, w] = description.inputSize;
  const top1: string[] = [];
  for (const photo of PHOTOS) {
    const outputs = await session.run({ [description.input.name]: new ort.Tensor('float32', await prepare(photo, description), [1, h, w, 3]) });
    const probabilities = outputs[description.output.name].data as Float32Array;
    assert.equal(probabilities.length, LABELS.length, 'one probability per label');
    assert.ok(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4, 'probabilities sum to 1');
    top1.push(description.labels[argMax(probabilities)].label);
  }
  await session.release();
  assert.deepEqual(top1, laneTop1, 'same top-1 label as lane-vision classify on every photo');
});

test('export --format tfjs loads with plain tfjs loadLayersModel and agrees with classify on 10 of 10 photos', async () => {
  const { dir, description } = await exportAs('tfjs');
  await tfc.setBackend('cpu');
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(dir, modelJson.weightsManifest[0].paths[0]));
  const model = await tfl.loadLayersModel(
    tfc.io.fromMemory({
      modelTopology: modelJson.modelTopology,
      weightSpecs: modelJson.weightsManifest[0].weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }),
  );
  const tensorsBefore = tfc.memory().numTensors;
  const [h, w] = description.inputSize;
  const top1: string[] = [];
  try {
    for (const photo of PHOTOS) {
      const input = await prepare(photo, description);
      const probabilities = tfc.tidy(() => (model.predict(tfc.tensor4d(input, [1, h, w, 3])) as tfc.Tensor).dataSync());
      assert.equal(probabilities.length, LABELS.length);
      assert.ok(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1) < 1e-4);
      top1.push(description.labels[argMax(probabilities)].label);
    }
    assert.equal(tfc.memory().numTensors, tensorsBefore, 'no tensor left behind');
  } finally {
    model.dispose();
  }
  assert.deepEqual(top1, laneTop1, 'same top-1 label as lane-vision classify on every photo');
});

test('a fine-tuned version exports with its own tuned backbone: the onnx network gives classify\'s probabilities', async () => {
  const tunedStore = path.join(work, 'store-tuned');
  const backbone = await acquireBackbone(modelDir('mobilenet-v2-0.35-features'));
  try {
    const dataset = selectLabels(await openDataset(groceryTrainDir, { readOnly: true }), LABELS);
    // The last epoch's blocks, so the tuned weights surely differ from the base's.
    await retrain({ dataset, backbone, store: await openModelStore(tunedStore), strategy: 'fine-tune', fineTune: { blocks: 1, epochs: 2, keep: 'last' }, trainViews: 0 });
  } finally {
    backbone.release();
  }
  const metadata = JSON.parse(fs.readFileSync(path.join(tunedStore, 'v0001', 'metadata.json'), 'utf8'));
  assert.ok(metadata.backbone.tuned, 'a fine-tuned version');
  const classified = await runLaneVision(['classify', '--store', tunedStore, ...PHOTOS, '--json'], env);
  assert.equal(classified.code, 0, classified.stderr);
  const lane = jsonLines(classified).map((line) => line.topK[0] as { label: string; confidence: number });

  const dir = path.join(work, 'export-tuned');
  const run = await runLaneVision(['export', '--store', tunedStore, '--format', 'onnx', '--out', dir], env, 120_000);
  assert.equal(run.code, 0, run.stderr);
  const description = JSON.parse(fs.readFileSync(path.join(dir, 'lane-vision-export.json'), 'utf8')) as Description & { tunedFrom?: string };
  assert.equal(description.backboneId, metadata.backbone.id, "the tuned backbone's identity");
  assert.equal(description.tunedFrom, metadata.backbone.tuned.from);
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path.join(dir, description.files[0]));
  const [h, w] = description.inputSize;
  try {
    for (const [i, photo] of PHOTOS.entries()) {
      // Lane Vision's own pixels here (the tests above check the stated preprocessing): this checks the exported network alone.
      const pixels = (await prepareImage(photo, { width: w, height: h, fit: metadata.backbone.fit })).data;
      const input = Float32Array.from(pixels, (v) => description.inputRange[0] + (v / 255) * (description.inputRange[1] - description.inputRange[0]));
      const outputs = await session.run({ [description.input.name]: new ort.Tensor('float32', input, [1, h, w, 3]) });
      const probabilities = outputs[description.output.name].data as Float32Array;
      const best = argMax(probabilities);
      assert.equal(description.labels[best].label, lane[i].label, `photo ${i}: same top-1 as classify`);
      assert.ok(Math.abs(probabilities[best] - lane[i].confidence) < 1e-3, `photo ${i}: ${probabilities[best]} vs classify's ${lane[i].confidence}`);
    }
  } finally {
    await session.release();
  }
});

test('export refuses what it cannot do with one line and a code', async () => {
  const tm = await runLaneVision(['export', '--store', store, '--format', 'tm', '--out', path.join(work, 'tm')], env);
  const metadata = JSON.parse(fs.readFileSync(path.join(store, 'v0001', 'metadata.json'), 'utf8'));
  if (metadata.backbone.fit.crop) {
    assert.equal(tm.code, 1);
    assert.match(tm.stderr, /^lane-vision export: Model v1 cannot be a Teachable Machine export: it crops frames.*\[EXPORT_NOT_TM_COMPATIBLE\]$/m);
    assert.ok(!fs.existsSync(path.join(work, 'tm')), 'nothing written');
  } else {
    assert.equal(tm.code, 0, tm.stderr);
    assert.ok(fs.existsSync(path.join(work, 'tm', 'metadata.json')));
  }
  const exists = await runLaneVision(['export', '--store', store, '--format', 'onnx', '--out', work], env);
  assert.equal(exists.code, 1);
  assert.match(exists.stderr, /already exists.*\[EXPORT_TARGET_EXISTS\]/);
  const badFormat = await runLaneVision(['export', '--store', store, '--format', 'pt', '--out', path.join(work, 'x')], env);
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /--format must be one of onnx, tfjs, tm/);
  const missing = await runLaneVision(['export', '--store', store, '--version', '7', '--format', 'onnx', '--out', path.join(work, 'y')], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /\[MODEL_VERSION_NOT_FOUND\]/);
});

test('export --format tm of a version Teachable Machine could have made: TM metadata.json, and the model agrees with classify', { timeout: 300_000 }, async () => {
  // --strategy fixed searches no crop, so the version takes the whole frame as TM does.
  const tmStore = path.join(work, 'tm-store');
  const labels = LABELS.slice(0, 2);
  const train = await runLaneVision(
    ['train', '--backbone', modelDir('mobilenet-v2-0.35-features'), '--data', groceryTrainDir, '--store', tmStore, '--labels', labels.join(','), '--strategy', 'fixed', '--head', 'logistic', '--json'],
    env,
    300_000,
  );
  assert.equal(train.code, 0, train.stderr);
  const photos = [...classImages(groceryValDir, labels[0]).slice(0, 2), ...classImages(groceryValDir, labels[1]).slice(0, 2)];
  const classified = jsonLines(await runLaneVision(['classify', '--store', tmStore, ...photos, '--json'], env)).map((l) => l.topK[0].label);
  const dir = path.join(work, 'export-tm');
  const run = await runLaneVision(['export', '--store', tmStore, '--format', 'tm', '--out', dir], env, 120_000);
  assert.equal(run.code, 0, run.stderr);
  const tmMetadata = JSON.parse(fs.readFileSync(path.join(dir, 'metadata.json'), 'utf8'));
  assert.deepEqual(tmMetadata.labels, labels, "TM's labels, in output order");
  assert.equal(tmMetadata.imageSize, 224);
  assert.equal(tmMetadata.packageName, '@teachablemachine/image');
  const description = JSON.parse(fs.readFileSync(path.join(dir, 'lane-vision-export.json'), 'utf8')) as Description;
  assert.equal(description.crop, null);
  await tfc.setBackend('cpu');
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(dir, 'weights.bin'));
  const model = await tfl.loadLayersModel(
    tfc.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) }),
  );
  try {
    const top1: string[] = [];
    for (const photo of photos) {
      const input = await prepare(photo, description);
      const probabilities = tfc.tidy(() => (model.predict(tfc.tensor4d(input, [1, 224, 224, 3])) as tfc.Tensor).dataSync());
      top1.push(tmMetadata.labels[argMax(probabilities)]);
    }
    assert.deepEqual(top1, classified);
  } finally {
    model.dispose();
  }
});
