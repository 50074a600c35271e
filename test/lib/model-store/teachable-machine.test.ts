/**
 * Proves the Teachable Machine import: the export's own full model (run by tfjs-layers)
 * and "TM backbone features -> imported head with plain arithmetic" agree on real photos.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import * as tfl from '@tensorflow/tfjs-layers';
import { initBackend, tf } from '../../../src/engine/backend.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { prepareImage } from '../../../src/image/index.js';
import {
  importTeachableMachineExport,
  openModelStore,
  parseTeachableMachineExport,
  readTeachableMachineExport,
} from '../../../src/model-store/index.js';
import { predictHead } from '../../../src/training/predict.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';
import { tempStoreDir } from './helpers.js';

const exportDir = modelDir('teachable-machine-export');
const modelJson = JSON.parse(fs.readFileSync(path.join(exportDir, 'model.json'), 'utf8'));
const tmMetadata = JSON.parse(fs.readFileSync(path.join(exportDir, 'metadata.json'), 'utf8'));
const weightsFile = fs.readFileSync(path.join(exportDir, 'weights.bin'));
const weights = weightsFile.buffer.slice(weightsFile.byteOffset, weightsFile.byteOffset + weightsFile.byteLength) as ArrayBuffer;

before(async () => {
  const backend = await initBackend('wasm');
  assert.equal(backend.name, 'wasm');
});

/** Frames as TM feeds them: centre square, 224x224, x / 127 - 1. Caller disposes. */
async function photoBatch(files: string[]): Promise<tf.Tensor4D> {
  const frames = await Promise.all(files.map((f) => prepareImage(f, { width: 224, height: 224, fit: { kind: 'cover' } })));
  const pixels = new Float32Array(files.length * 224 * 224 * 3);
  frames.forEach((frame, i) => frame.data.forEach((v, j) => (pixels[i * 224 * 224 * 3 + j] = v / 127 - 1)));
  return tf.tensor4d(pixels, [files.length, 224, 224, 3]);
}

test('imported TM head reproduces the full TM model on real photos (within 1e-4)', async () => {
  const tensorsBefore = tf.memory().numTensors;
  const imported = await readTeachableMachineExport(exportDir);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'import leaves no tensors behind');

  assert.deepEqual(imported.labels, ['twin1', 'twin2']);
  assert.equal(imported.head.kind, 'mlp');
  assert.equal(imported.head.normalise, false);
  assert.equal(imported.head.featureSize, 1280);
  assert.deepEqual(
    imported.head.layers!.map((l) => [l.inputSize, l.outputSize, l.activation]),
    [[1280, 100, 'relu'], [100, 2, 'softmax']],
  );
  // The id the engine gives the export folder loaded as a backbone (backbone-compatibility.test.ts loads it).
  assert.equal(imported.backbone.id, `folder:teachable-machine-export|sequential_5|224x224|[-1,1]|${imported.fingerprint!.slice(0, 16)}`);
  assert.equal(imported.backbone.preset, 'mobilenet-v2-0.35');
  assert.match(imported.backbone.weightsFingerprint ?? '', /^[0-9a-f]{64}$/);
  assert.equal(imported.backbone.featureSize, 1280);
  assert.deepEqual(imported.backbone.inputSize, { width: 224, height: 224 });
  assert.equal(imported.backbone.source, path.join(exportDir, 'model.json'));
  assert.match(imported.fingerprint ?? '', /^[0-9a-f]{64}$/);

  const model = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: tf.io.getWeightSpecs(modelJson.weightsManifest), weightData: weights }));
  // Two photos of each of four grocery kinds, none of which the TM model was trained on.
  const photos = classNames(groceryValDir).slice(0, 4).flatMap((c) => classImages(groceryValDir, c).slice(0, 2));
  const x = await photoBatch(photos);
  const [full, features, hidden] = tf.tidy(() => {
    const f = model.layers[0].apply(x) as tf.Tensor2D;
    const headModel = model.layers[1] as tfl.Sequential;
    return [model.predict(x) as tf.Tensor2D, f, headModel.layers[0].apply(f) as tf.Tensor2D];
  });
  const fullRows = (await full.array()) as number[][];
  const featureRows = (await features.array()) as number[][];
  const hiddenRows = (await hidden.array()) as number[][];
  tf.dispose([x, full, features, hidden]);
  model.dispose();

  let worst = 0;
  let worstHidden = 0;
  for (let i = 0; i < photos.length; i++) {
    const feature = Float32Array.from(featureRows[i]);
    assert.equal(feature.length, 1280);
    const ours = predictHead(imported.head, feature);
    fullRows[i].forEach((p, j) => (worst = Math.max(worst, Math.abs(p - ours[j]))));
    // The hidden layer too, where a wrong kernel layout could not hide behind a saturated softmax.
    const layer = imported.head.layers![0];
    for (let o = 0; o < layer.outputSize; o++) {
      let sum = layer.bias[o];
      for (let k = 0; k < layer.inputSize; k++) sum += feature[k] * layer.kernel[k * layer.outputSize + o];
      worstHidden = Math.max(worstHidden, Math.abs(Math.max(0, sum) - hiddenRows[i][o]));
    }
  }
  const spread = Math.max(...fullRows.map((r) => r[0])) - Math.min(...fullRows.map((r) => r[0]));
  console.log(`TM import: ${photos.length} photos, max |full - imported| = ${worst.toExponential(2)}, hidden ${worstHidden.toExponential(2)}, p(twin1) spread ${spread.toFixed(4)}`);
  assert.ok(worst < 1e-4, `outputs differ by ${worst}`);
  assert.ok(worstHidden < 1e-4, `hidden activations differ by ${worstHidden}`);
  assert.ok(hiddenRows.flat().some((v) => v > 0.01), 'hidden layer is not all zeros (the comparison means something)');
});

test('a TM export becomes a store version with codes and provenance', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  const saved = await importTeachableMachineExport(store, exportDir, { notes: 'from the line-2 tablet' });
  const loaded = await store.loadModel('active');
  assert.equal(loaded.version, saved.version);
  assert.deepEqual(loaded.head, (await readTeachableMachineExport(exportDir)).head);
  assert.deepEqual(loaded.metadata.classes, [{ label: 'twin1', code: 1 }, { label: 'twin2', code: 2 }]);
  assert.equal(loaded.metadata.modelName, tmMetadata.modelName);
  assert.equal(loaded.metadata.datasetFingerprint, null);
  assert.equal(loaded.metadata.notes, 'from the line-2 tablet');
  assert.equal(loaded.metadata.importedFrom?.kind, 'teachable-machine');
  assert.deepEqual(loaded.metadata.importedFrom?.metadata, tmMetadata);
  assert.deepEqual(loaded.metadata.backbone, (await readTeachableMachineExport(exportDir)).backbone);
});

/** IEEE 754 half precision, round to nearest even (what the tfjs converter writes). */
function toFloat16Bits(value: number): number {
  const f32 = new Float32Array([value]);
  const bits = new Uint32Array(f32.buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  let mantissa = bits & 0x7fffff;
  if (exponent <= 0) {
    if (exponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - exponent;
    const half = (mantissa >>> shift) + ((mantissa >>> (shift - 1)) & 1);
    return sign | half;
  }
  if (exponent >= 31) return sign | 0x7c00;
  const rounded = (exponent << 10) + (mantissa >>> 13) + ((mantissa >>> 12) & 1);
  return sign | rounded;
}

test('float16-quantized head weights are decoded', async () => {
  // The same export with the head's Dense weights stored as float16, as the tfjs
  // converter writes with --quantize_float16.
  const specs = tf.io.getWeightSpecs(modelJson.weightsManifest);
  const parts: Uint8Array[] = [];
  const quantizedSpecs = [];
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a: number, b: number) => a * b, 1);
    const values = new Float32Array(weights.slice(offset, offset + count * 4));
    offset += count * 4;
    if (spec.name.startsWith('dense_')) {
      parts.push(new Uint8Array(Uint16Array.from(values, toFloat16Bits).buffer));
      quantizedSpecs.push({ ...spec, quantization: { dtype: 'float16' as const } });
    } else {
      parts.push(new Uint8Array(values.buffer));
      quantizedSpecs.push(spec);
    }
  }
  const data = Buffer.concat(parts);
  const quantizedModelJson = { ...modelJson, weightsManifest: [{ paths: ['weights.bin'], weights: quantizedSpecs }] };
  const half = await parseTeachableMachineExport({
    modelJson: quantizedModelJson,
    metadata: tmMetadata,
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer,
    source: 'memory',
  });
  const exact = await readTeachableMachineExport(exportDir);
  let worstRelative = 0;
  half.head.layers!.forEach((layer, i) => {
    const reference = exact.head.layers![i].kernel;
    assert.notDeepEqual(layer.kernel, reference, 'float16 values differ from float32 ones');
    layer.kernel.forEach((v, j) => {
      worstRelative = Math.max(worstRelative, Math.abs(v - reference[j]) / Math.max(Math.abs(reference[j]), 1e-4));
    });
  });
  assert.ok(worstRelative < 1e-3, `float16 decoding off by ${worstRelative} (relative)`);
  // The backbone weights fingerprint skips the head's weights, wherever they sit in the file
  // (here mid-file, and shorter): the backbone is still recognised as the same network.
  assert.equal(half.backbone.weightsFingerprint, exact.backbone.weightsFingerprint);
  assert.equal(half.backbone.id, `teachable-machine:mobilenet-v2-0.35:${exact.backbone.weightsFingerprint!.slice(0, 16)}`, 'read from memory: no engine id');
});

test('a damaged or foreign export gives a clear error', async (t) => {
  const dir = path.dirname(tempStoreDir(t));
  const expectCode = async (code: string, files: Record<string, string | Buffer>) => {
    const target = fs.mkdtempSync(path.join(dir, 'tm-'));
    for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(target, name), content);
    await assert.rejects(readTeachableMachineExport(target), (err: unknown) => {
      assert.ok(isLaneVisionError(err, code), `expected ${code}: ${String(err)}`);
      return true;
    });
  };
  const modelText = JSON.stringify(modelJson);
  const metaText = JSON.stringify(tmMetadata);
  await expectCode('TM_IMPORT_INVALID', { 'metadata.json': metaText });
  await expectCode('TM_IMPORT_INVALID', { 'model.json': modelText, 'weights.bin': weightsFile.subarray(0, 1000), 'metadata.json': metaText });
  await expectCode('TM_IMPORT_INVALID', { 'model.json': modelText, 'weights.bin': weightsFile });
  await expectCode('TM_IMPORT_INVALID', { 'model.json': modelText, 'weights.bin': weightsFile, 'metadata.json': JSON.stringify({ labels: ['only-one'] }) });
  await expectCode('TM_IMPORT_UNSUPPORTED', { 'model.json': modelText, 'weights.bin': weightsFile, 'metadata.json': JSON.stringify({ ...tmMetadata, grayscale: true }) });
  // A plain MobileNet (not a TM backbone + head pair) is refused, not misread.
  const plainDir = modelDir('mobilenet-v2-0.35-features');
  const plainFiles: Record<string, string | Buffer> = { 'metadata.json': metaText };
  for (const name of fs.readdirSync(plainDir)) plainFiles[name] = fs.readFileSync(path.join(plainDir, name));
  await expectCode('TM_IMPORT_UNSUPPORTED', plainFiles);
});

test('labels the dataset would refuse and an oversized metadata.json are refused with the reason', async (t) => {
  const dir = path.dirname(tempStoreDir(t));
  const store = await openModelStore(tempStoreDir(t));
  const labelCount = tmMetadata.labels.length as number;
  const withLabel = (bad: unknown) => ({ ...tmMetadata, labels: [bad, ...tmMetadata.labels.slice(1)] });
  const cases: [Record<string, unknown>, RegExp][] = [
    [withLabel('../../etc'), /label 1 of metadata\.json: .*path separator/],
    [withLabel('a\0b'), /label 1 .*NUL/],
    [withLabel('x'.repeat(10_000)), /label 1 .*bytes long/],
    [withLabel(7), /label 1 .*must be text/],
    [withLabel('unknown'), /label 1 .*"unknown" is reserved/],
    [withLabel(tmMetadata.labels[1]), /appears twice/],
    [{ ...tmMetadata, userMetadata: { blob: 'x'.repeat(30 * 1024 * 1024) } }, /metadata\.json is \d+ bytes; a Teachable Machine (one|metadata\.json) is at most 262144/],
  ];
  assert.ok(labelCount >= 2);
  for (const [metadata, reason] of cases) {
    // In memory (an upload) and from a folder (the CLI's import-tm): same rule, same words.
    await assert.rejects(
      parseTeachableMachineExport({ modelJson, metadata, weightData: weights, source: 'upload' }),
      (err: unknown) => isLaneVisionError(err, 'TM_IMPORT_INVALID') && reason.test(err.message),
    );
    const target = fs.mkdtempSync(path.join(dir, 'tm-'));
    fs.writeFileSync(path.join(target, 'model.json'), JSON.stringify(modelJson));
    fs.writeFileSync(path.join(target, 'weights.bin'), weightsFile);
    fs.writeFileSync(path.join(target, 'metadata.json'), JSON.stringify(metadata));
    await assert.rejects(importTeachableMachineExport(store, target), (err: unknown) => {
      assert.ok(isLaneVisionError(err, 'TM_IMPORT_INVALID'), String(err));
      assert.match((err as Error).message, reason);
      return true;
    });
  }
  assert.deepEqual(await store.listVersions(), [], 'nothing saved');
});
