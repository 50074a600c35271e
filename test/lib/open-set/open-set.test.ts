/**
 * Unknown products on real photos and weights: the novelty score of a far-away image is
 * high and of a training-like one low; every result says why it was or was not accepted
 * (and the MQTT result event carries it); a reject class sends what it covers to
 * inspection; the operating point reaches its precision; the review queue is bounded,
 * de-duplicated and survives a restart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import Ajv2020 from 'ajv/dist/2020.js';
import { acquireBackbone, type Backbone } from '../../../src/engine/index.js';
import { openDataset, type Dataset } from '../../../src/dataset/index.js';
import { openModelStore } from '../../../src/model-store/index.js';
import { FeatureCache } from '../../../src/features/index.js';
import { retrain } from '../../../src/retrain/index.js';
import { LaneClassifier, type ClassificationResult } from '../../../src/classify/index.js';
import { buildResultEvent, resultEventSchema, resultInputFromClassification } from '../../../src/events/index.js';
import { chooseOperatingPoint, decide, openSetFigures } from '../../../src/open-set/index.js';
import { ReviewQueue } from '../../../src/review/index.js';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';

const PRODUCTS = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice', 'Yoggi-Strawberry-Yoghurt'];
/** Shown to the model under one reject label: what it must not sort into a bin. */
const OTHERS = ['Arla-Sour-Cream', 'Tropicana-Apple-Juice', 'Garant-Ecological-Standard-Milk', 'God-Morgon-Apple-Juice'];
const REJECT = 'other-products';
const LANE = { line: 'line-1', station: 'open-set' };
let backbone: Backbone;
let work: string;
let dataset: Dataset;
const cache = new FeatureCache();

before(async () => {
  backbone = await acquireBackbone(modelDir('mobilenet-v2-0.35-features'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-open-set-'));
  dataset = await openDataset(path.join(work, 'dataset'));
  for (const label of PRODUCTS) for (const file of classImages(groceryTrainDir, label).slice(0, 14)) await dataset.add(label, file);
  for (const other of OTHERS) for (const file of classImages(groceryTrainDir, other).slice(0, 5)) await dataset.add(REJECT, file);
});
after(() => {
  backbone.release();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Images no training frame looks like: flat grey, coloured noise. */
async function farAwayImages(): Promise<Buffer[]> {
  const grey = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 128, g: 128, b: 128 } } }).jpeg().toBuffer();
  const noise = Buffer.alloc(320 * 240 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  return [grey, await sharp(noise, { raw: { width: 320, height: 240, channels: 3 } }).jpeg().toBuffer()];
}

test('a far-away image is an unknown product; a photo of a trained product is near its training frames', async () => {
  const store = await openModelStore(path.join(work, 'models-novelty'));
  const result = await retrain({ dataset, backbone, store, cache, strategy: 'fixed', crop: { fraction: 0.7 }, rejectLabels: [REJECT] });
  const point = result.metrics.openSet.operatingPoint;
  assert.ok(point.similarity !== null && point.similarity > 0 && point.similarity < 1, `similarity threshold ${point.similarity}`);
  const model = await store.loadModel('active');
  assert.ok(model.novelty, 'the version stores its novelty index');
  assert.equal(model.novelty!.count, result.metrics.trainCount);
  assert.deepEqual(model.metadata.openSet?.rejectLabels, [REJECT]);

  const classifier = new LaneClassifier({ backbone });
  classifier.useModel(model);
  assert.deepEqual(classifier.thresholds(), { confidence: point.confidence, similarity: point.similarity }, 'the model\'s own operating point applies by default');
  const known = await classifier.classify(classImages(groceryValDir, PRODUCTS[0])[0]);
  for (const image of await farAwayImages()) {
    const far = await classifier.classify(image);
    assert.equal(far.reason, 'unknown-product', `similarity ${far.similarity} vs threshold ${far.similarityThreshold}`);
    assert.equal(far.accepted, false);
    assert.equal(far.label, 'unknown');
    assert.ok(far.similarity! < known.similarity!, `far ${far.similarity} is below the trained product's ${known.similarity}`);
  }
});

test('every result says why; a reject class goes to inspection; the result event carries the reason', async () => {
  const store = await openModelStore(path.join(work, 'models-reasons'));
  await retrain({ dataset, backbone, store, cache, strategy: 'fixed', crop: { fraction: 0.7 }, rejectLabels: [REJECT] });
  const model = await store.loadModel('active');
  const validate = new Ajv2020({ strict: false }).compile(resultEventSchema);
  const event = (result: ClassificationResult) => buildResultEvent(LANE, resultInputFromClassification(result));

  // A photo of a product the reject class was made of, from another session.
  const classifier = new LaneClassifier({ backbone, similarityThreshold: null });
  classifier.useModel(model);
  const other = await classifier.classify(classImages(groceryValDir, 'Arla-Sour-Cream')[0]);
  assert.equal(other.topK[0].label, REJECT, 'it looks most like the reject class');
  assert.equal(other.reason, 'reject-class');
  assert.equal(other.accepted, false);
  const otherEvent = event(other);
  assert.ok(validate(otherEvent), JSON.stringify(validate.errors));
  assert.equal(otherEvent.reason, 'reject-class');
  assert.equal(otherEvent.label, 'unknown');

  // The same photo of a product, decided three ways by the thresholds alone.
  const photo = classImages(groceryValDir, PRODUCTS[1])[0];
  const strict = new LaneClassifier({ backbone, threshold: 1, similarityThreshold: null });
  strict.useModel(model);
  const doubtful = await strict.classify(photo);
  assert.equal(doubtful.reason, 'low-confidence');
  const picky = new LaneClassifier({ backbone, threshold: 0, similarityThreshold: 0.9999 });
  picky.useModel(model);
  assert.equal((await picky.classify(photo)).reason, 'unknown-product');
  const lax = new LaneClassifier({ backbone, threshold: 0, similarityThreshold: -1 });
  lax.useModel(model);
  const accepted = await lax.classify(photo);
  assert.equal(accepted.reason, accepted.topK[0].label === REJECT ? 'reject-class' : 'accepted');
  for (const result of [doubtful, accepted]) {
    const built = event(result);
    assert.ok(validate(built), JSON.stringify(validate.errors));
    assert.equal(built.reason, result.reason);
    assert.equal(built.similarity, result.similarity);
  }
  // A threshold command overrides the model's, and "model" goes back to it.
  classifier.setThreshold(0.99);
  assert.equal(classifier.threshold, 0.99);
  classifier.setThreshold('model');
  assert.equal(classifier.threshold, model.metadata.openSet!.operatingPoint.confidence);
});

test('the operating point is the lowest confidence threshold that reaches the target precision', () => {
  // Six held-out frames of two classes: the two least confident are wrong.
  const probabilities = [
    [0.95, 0.05],
    [0.9, 0.1],
    [0.2, 0.8],
    [0.15, 0.85],
    [0.45, 0.55],
    [0.6, 0.4],
  ].map((p) => Float32Array.from(p));
  const targets = [0, 0, 1, 1, 0, 1];
  const { point, curve } = chooseOperatingPoint({ probabilities, targets, rejectClasses: new Set(), targetPrecision: 0.95 });
  assert.equal(point.reached, true);
  assert.ok(Math.abs(point.confidence - 0.8) < 1e-6, `threshold ${point.confidence}`);
  assert.equal(point.precision, 1);
  assert.ok(Math.abs(point.coverage - 4 / 6) < 1e-9);
  assert.equal(curve.length, 21);
  assert.ok(curve.every((c, i) => i === 0 || c.coverage <= curve[i - 1].coverage), 'coverage falls as the threshold rises');

  // Unknown frames accepted at an operating point count against precision.
  const known = { probabilities, targets };
  const unknown = { probabilities: [Float32Array.from([0.99, 0.01]), Float32Array.from([0.5, 0.5])], similarities: [0.2, 0.9] };
  const gated = openSetFigures({ ...known, similarities: targets.map(() => 0.9) }, unknown, { confidence: 0.8, similarity: 0.5 }, new Set());
  assert.equal(gated.unknownAccepted, 0, 'the far unknown is stopped by the similarity gate, the doubtful one by confidence');
  const ungated = openSetFigures(known, unknown, { confidence: 0.8, similarity: null }, new Set());
  assert.equal(ungated.unknownAccepted, 0.5);
  assert.ok(ungated.precision! < 1);
  assert.equal(decide([0.7, 0.3], 0.1, { confidence: 0.5, similarity: 0.3 }, new Set([0])).reason, 'unknown-product', 'the novelty gate comes first');
});

test('the review queue keeps what deserves a look, once each, newest first, bounded, across a restart', async () => {
  const dir = path.join(work, 'review');
  const frames = classImages(groceryValDir, PRODUCTS[2]).slice(0, 5).map((file) => fs.readFileSync(file));
  const base: ClassificationResult = {
    label: 'unknown',
    code: 0,
    confidence: 0.4,
    accepted: false,
    reason: 'low-confidence',
    threshold: 0.6,
    similarityThreshold: 0.5,
    similarity: 0.7,
    margin: 0.1,
    topK: [{ label: PRODUCTS[2], code: 3, confidence: 0.4 }],
    modelVersion: 1,
    backboneId: backbone.id,
    engine: 'test',
    backend: 'cpu',
    frameHash: '',
    timings: { queueMs: 0, decodeMs: 0, featuresMs: 0, headMs: 0, totalMs: 0 },
  };
  const resultFor = (i: number, changes: Partial<ClassificationResult> = {}): ClassificationResult => ({ ...base, frameHash: `hash-${i}`, ...changes });
  const queue = await ReviewQueue.open(dir, { limit: 3, perSecond: 100 });
  let now = 1_000_000;
  assert.equal(await queue.offer(frames[0], resultFor(0, { accepted: true, reason: 'accepted', margin: 0.9 }), now), undefined, 'a sure decision is not queued');
  assert.equal((await queue.offer(frames[0], resultFor(0, { accepted: true, reason: 'accepted', margin: 0.05 }), now))?.reason, 'small-margin');
  assert.equal(await queue.offer(frames[0], resultFor(0), (now += 10)), undefined, 'a frame already queued is not queued again');
  for (let i = 1; i < 5; i++) assert.ok(await queue.offer(frames[i], resultFor(i, { reason: i % 2 ? 'unknown-product' : 'low-confidence' }), (now += 10)));
  assert.equal(queue.size, 3, 'bounded: the oldest went');
  assert.deepEqual(queue.list().map((item) => item.frameHash), ['hash-4', 'hash-3', 'hash-2']);
  assert.equal(fs.readdirSync(dir).filter((name) => name.endsWith('.jpg')).length, 3, 'the dropped frames\' files went too');

  const reopened = await ReviewQueue.open(dir, { limit: 3 });
  assert.deepEqual(reopened.list(), queue.list(), 'the queue survives a restart');
  const first = reopened.list()[0];
  assert.deepEqual(fs.readFileSync(reopened.imagePath(first)), frames[4], 'the frame is kept as it came');
  await reopened.remove(first.id);
  assert.equal(reopened.size, 2);
  assert.equal((await ReviewQueue.open(dir)).size, 2);

  // At most `perSecond` frames a second: an empty belt sent to inspection does not flood the disk.
  const limited = await ReviewQueue.open(path.join(work, 'review-limited'), { perSecond: 2 });
  const offered = await Promise.all(frames.map((frame, i) => limited.offer(frame, resultFor(10 + i), 5_000_000)));
  assert.equal(offered.filter(Boolean).length, 2);
  assert.equal(limited.skipped, 3);
});
