/**
 * The training pipeline on real photos and weights: the automatic search beats a
 * deliberately bad pipeline; a model's crop is stored with it and applied the same way by
 * the main thread, the inference worker and the training worker; the advisor tells a
 * tiny dataset from a large one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireBackbone, tf, type Backbone } from '../../../src/engine/index.js';
import { openDataset, type Dataset } from '../../../src/dataset/index.js';
import { openModelStore, type ModelStore } from '../../../src/model-store/index.js';
import { embedImages, FeatureCache, FrameEmbedder } from '../../../src/features/index.js';
import { enginePreferenceOf, retrain, TrainingWorker, type RetrainResult } from '../../../src/retrain/index.js';
import { LaneClassifier } from '../../../src/classify/index.js';
import { predictHead } from '../../../src/training/index.js';
import { adviseScenario } from '../../../src/advisor/index.js';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';

const MODEL = 'mobilenet-v2-0.35-features';
const CLASSES = ['Arla-Sour-Cream', 'Bravo-Orange-Juice', 'Oatly-Oat-Milk', 'Yoggi-Strawberry-Yoghurt'];
const PER_CLASS = 14;
let backbone: Backbone;
let work: string;
let dataset: Dataset;
let stores = 0;
/** Shared by the retrains here, as a lane's process shares one. */
const cache = new FeatureCache();

before(async () => {
  backbone = await acquireBackbone(modelDir(MODEL));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-pipeline-stage-'));
  dataset = await openDataset(path.join(work, 'dataset'));
  for (const label of CLASSES) {
    for (const file of classImages(groceryTrainDir, label).slice(0, PER_CLASS)) await dataset.add(label, file, { session: 'one-shift' });
  }
});
after(() => {
  backbone.release();
  fs.rmSync(work, { recursive: true, force: true });
});

function newStore(): Promise<ModelStore> {
  return openModelStore(path.join(work, `models-${++stores}`));
}

/** Accuracy of the store's active model on val/ photos of the trained classes, classified as a lane would. */
async function valAccuracy(store: ModelStore): Promise<number> {
  const classifier = new LaneClassifier({ backbone, threshold: 0 });
  classifier.useModel(await store.loadModel('active'));
  let right = 0;
  let total = 0;
  for (const label of CLASSES) {
    for (const file of classImages(groceryValDir, label)) {
      total++;
      if ((await classifier.classify(file)).topK[0].label === label) right++;
    }
  }
  return right / total;
}

test('the automatic search chooses a better pipeline than a deliberately bad one, and says what it tried', async () => {
  const tensorsBefore = tf.memory().numTensors;
  const autoStore = await newStore();
  const auto = await retrain({ dataset, backbone, store: autoStore, cache, budgetSeconds: 60 });
  // A sliver of the centre, fed to the nearest single example: a pipeline nobody should pick.
  const badStore = await newStore();
  const bad = await retrain({ dataset, backbone, store: badStore, cache, strategy: 'fixed', crop: { fraction: 0.12 }, head: { kind: 'knn', k: 1 } });
  assert.equal(tf.memory().numTensors, tensorsBefore, 'the search leaks no tensors');

  const pipeline = auto.metrics.pipeline;
  assert.equal(pipeline.strategy, 'auto');
  assert.ok(pipeline.candidates.filter((c) => c.accuracy !== null).length >= 4, 'several candidates were scored');
  assert.equal(pipeline.candidates.filter((c) => c.chosen).length, 1);
  assert.deepEqual(new Set(pipeline.candidates.map((c) => c.stage)), new Set(['crop', 'views', 'head', 'test-views']));
  assert.equal(auto.metrics.validation.kind, 'grouped-cross-validation');
  assert.equal(auto.metrics.validation.optimistic, true, 'one session: the estimate says it is optimistic');
  assert.equal(auto.metrics.holdoutCount, CLASSES.length * PER_CLASS, 'every frame is scored once, by a head that did not see it');
  assert.ok(auto.metrics.holdout.accuracy > bad.metrics.holdout.accuracy, `auto ${auto.metrics.holdout.accuracy} vs bad ${bad.metrics.holdout.accuracy}`);
  // And on photos of another session, which neither saw.
  const [autoVal, badVal] = [await valAccuracy(autoStore), await valAccuracy(badStore)];
  assert.ok(autoVal > badVal, `on val/: auto ${autoVal} vs bad ${badVal}`);

  // A warm retrain after a few new frames reuses the chosen pipeline.
  const added: string[] = [];
  for (const label of CLASSES) added.push((await dataset.add(label, classImages(groceryTrainDir, label)[PER_CLASS], { session: 'one-shift' })).id);
  try {
    const warm = await retrain({ dataset, backbone, store: autoStore, cache, previous: (await autoStore.loadModel('active')).metadata.pipeline });
    assert.equal(warm.metrics.pipeline.strategy, 'reused');
    assert.deepEqual(warm.metrics.pipeline.spec, pipeline.spec);
  } finally {
    for (const id of added) await dataset.remove(id);
  }
});

test('a model trained with a crop stores it, and the main thread, the inference worker and the training worker feed frames with it', async () => {
  const crop = { fraction: 0.6 };
  const trainer = new TrainingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  const store = await newStore();
  let inWorker: RetrainResult;
  try {
    inWorker = await trainer.retrain({ dataset, backbone, store, strategy: 'fixed', crop, trainViews: 0, cache: null });
  } finally {
    await trainer.dispose();
  }
  const model = await store.loadModel('active');
  assert.equal(model.version, inWorker.version);
  assert.deepEqual(model.metadata.backbone.fit, { ...backbone.fit, crop }, 'the crop is part of the stored preprocessing');
  assert.deepEqual(model.metadata.pipeline?.spec.crop, crop);

  // The training worker embedded the frames with the crop: the same head, retrained here on the main thread, matches it.
  const onMain = await retrain({ dataset, backbone, store: await newStore(), strategy: 'fixed', crop, cache: null });
  assert.equal(onMain.metrics.holdout.accuracy, inWorker.metrics.holdout.accuracy);

  const photos = CLASSES.map((label) => classImages(groceryValDir, label)[0]);
  const withCrop = (await embedImages(backbone, photos, { fit: model.metadata.backbone.fit, cache: null })).results.map((r) => predictHead(model.head, r.features));
  const withoutCrop = (await embedImages(backbone, photos, { fit: backbone.fit, cache: null })).results.map((r) => predictHead(model.head, r.features));
  assert.ok(withCrop.some((p, i) => Math.abs(p[0] - withoutCrop[i][0]) > 1e-3), 'the crop changes what the head sees');

  const mainThread = new LaneClassifier({ backbone, threshold: 0, topK: CLASSES.length });
  const embedder = new FrameEmbedder(backbone, { spec: modelDir(MODEL), thread: 'worker' });
  const inferenceWorker = new LaneClassifier({ backbone, threshold: 0, topK: CLASSES.length, embed: embedder.embed });
  try {
    mainThread.useModel(model);
    inferenceWorker.useModel(model);
    for (const [i, photo] of photos.entries()) {
      for (const classifier of [mainThread, inferenceWorker]) {
        const result = await classifier.classify(photo);
        for (const ranked of result.topK) {
          const expected = withCrop[i][model.labels.indexOf(ranked.label)];
          assert.ok(Math.abs(ranked.confidence - expected) < 1e-4, `${ranked.label}: ${ranked.confidence} vs ${expected} (cropped)`);
        }
      }
    }
    assert.equal(embedder.thread, 'worker', 'the frames went through the inference worker');
  } finally {
    await embedder.dispose();
  }
});

test('test-time views the model is served with are averaged by the classifier, one backbone run each', async () => {
  const store = await newStore();
  await retrain({ dataset, backbone, store, strategy: 'fixed', crop: { fraction: 0.7 }, testViews: 2, cache });
  const model = await store.loadModel('active');
  assert.equal(model.metadata.pipeline?.spec.testViews, 2);
  const classifier = new LaneClassifier({ backbone, threshold: 0 });
  classifier.useModel(model);
  const result = await classifier.classify(classImages(groceryValDir, CLASSES[0])[1]);
  assert.equal(result.timings.views, 3);
  const plainOnly = new LaneClassifier({ backbone, threshold: 0, testViews: 0 });
  plainOnly.useModel(model);
  const plain = await plainOnly.classify(classImages(groceryValDir, CLASSES[0])[1]);
  assert.equal(plain.timings.views, 1);
  assert.notEqual(plain.confidence, result.confidence, 'the views change the averaged probabilities');
});

test('the advisor tells a tiny dataset from a large one, and names what would help', async () => {
  const tiny = adviseScenario({ countsPerLabel: { a: 4, b: 3, c: 5 }, featureSeparability: 0.9 });
  assert.equal(tiny.dataSize, 'small');
  assert.equal(tiny.similarity, 'similar');
  assert.match(tiny.prescription, /linear classifier/);
  assert.ok(tiny.recommendations.some((r) => /Add frames of b \(3/.test(r)), 'the smallest label is named first');

  const large = adviseScenario({ countsPerLabel: Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`label-${i}`, 28])), featureSeparability: 0.85 });
  assert.equal(large.dataSize, 'large');
  assert.match(large.prescription, /fine-tune the top layers/);

  const different = adviseScenario({ countsPerLabel: { a: 8, b: 8 }, featureSeparability: 0.55, earlierLayer: { name: 'block_13_expand_relu', separability: 0.7 } });
  assert.equal(different.similarity, 'different');
  assert.match(different.prescription, /earlier layer/);

  // From a real training: the advice travels with the metrics.
  const trained = await retrain({ dataset, backbone, store: await newStore(), strategy: 'fixed', crop: { fraction: 0.7 }, cache });
  assert.equal(trained.metrics.advice.dataSize, 'small');
  assert.ok(trained.metrics.advice.recommendations.some((r) => /another shift or day/.test(r)), 'one session: asks for frames from another');
});
