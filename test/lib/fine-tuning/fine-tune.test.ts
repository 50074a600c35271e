/**
 * Fine-tuning on real weights and photos: the interpreted top reproduces the backbone's
 * features before training; a fine-tuned version carries its own backbone whose features
 * differ from the base, is served by a classifier holding the base backbone (and after a
 * fresh store open), and a rollback serves the base again; the bottom runs on ONNX Runtime,
 * its activations are kept on disk and found by the next fine-tune of the same frames and
 * crop, and the head trains on the tuned top's features without running the tuned backbone
 * on those frames; a cancelled fine-tune saves nothing; a graph model is refused clearly;
 * no tensor is left behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { acquireBackbone, loadBackbone, readModelFolder, tf, type Backbone } from '../../../src/engine/index.js';
import { DiskFeatureCache, embedImages, FeatureCache } from '../../../src/features/index.js';
import { openDataset, type Dataset } from '../../../src/dataset/index.js';
import { openModelStore } from '../../../src/model-store/index.js';
import { FINE_TUNE_FINAL_TRAINING, FINE_TUNE_MIN_VIEWS, retrain } from '../../../src/retrain/index.js';
import { LaneClassifier } from '../../../src/classify/index.js';
import { runTop, splitBackbone, topVariables } from '../../../src/fine-tuning/index.js';
import { bottomBackbone } from '../../../src/fine-tuning/bottom.js';
import { memoryHandler } from '../../../src/engine/tfjs-models.js';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';

const LABELS = ['Oatly-Oat-Milk', 'Yoggi-Strawberry-Yoghurt'];
/** The last epoch's weights, so the tuned backbone differs from the base even where the base is already right on every held-out frame. */
const FINE_TUNE = { blocks: 1, epochs: 2, keep: 'last' as const, finalTraining: true };
let backbone: Backbone;
let work: string;
let dataset: Dataset;
const valPhoto = () => classImages(groceryValDir, LABELS[1])[0];

before(async () => {
  backbone = await acquireBackbone(modelDir('mobilenet-v2-0.35-features'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-fine-tune-'));
  dataset = await openDataset(path.join(work, 'dataset'));
  for (const label of LABELS) for (const file of classImages(groceryTrainDir, label).slice(0, 10)) await dataset.add(label, file);
});
after(() => {
  backbone.release();
  fs.rmSync(work, { recursive: true, force: true });
});

test('the untrained top, run as matmuls and shifted slices on the bottom activations, gives the backbone features', async () => {
  const files = await readModelFolder(backbone.location);
  const model = await tfl.loadLayersModel(memoryHandler(files));
  try {
    const { bottom, top, cutPath } = splitBackbone(model, backbone.featureLayer, 2);
    assert.equal(top.cut, 'block_14_add', 'two blocks: cut before block 15');
    assert.equal(top.ops.filter((op) => op.kind === 'depthwise').length, 2);
    const bottomBb = await bottomBackbone({ base: backbone, files, bottom, cut: top.cut, cutPath });
    const [activations] = (await embedImages(bottomBb, [valPhoto()], { cache: null })).results;
    const [features] = (await embedImages(backbone, [valPhoto()], { cache: null })).results;
    const params = topVariables(top);
    const mine = tf.tidy(() => runTop(top, params, tf.tensor4d(activations.features, [1, ...top.cutShape])).dataSync());
    for (const v of params.values()) v.dispose();
    bottomBb.dispose();
    assert.equal(mine.length, features.features.length);
    const worst = (mine as Float32Array).reduce((m, v, i) => Math.max(m, Math.abs(v - features.features[i])), 0);
    assert.ok(worst < 1e-3, `largest difference ${worst}`);
    assert.throws(() => splitBackbone(model, backbone.featureLayer, 40), /cannot unfreeze 40/);
  } finally {
    model.dispose();
  }
});

test('a fine-tuned version serves its own backbone, survives a reopen, and a rollback serves the base again', async () => {
  const storeDir = path.join(work, 'models');
  const store = await openModelStore(storeDir);
  await retrain({ dataset, backbone, store, strategy: 'fixed', crop: { fraction: 0.7 } });
  const tensorsBefore = tf.memory().numTensors;
  const epochs: string[] = [];
  const tuned = await retrain({
    dataset,
    backbone,
    store,
    strategy: 'fine-tune',
    fineTune: FINE_TUNE,
    trainViews: 1,
    activationCache: null,
    onProgress: (p) => p.phase === 'fine-tune' && epochs.push(`${p.stage ?? 'fold'} ${p.epoch}/${p.epochs}`),
  });
  assert.equal(tf.memory().numTensors, tensorsBefore, 'the fine-tune disposes every tensor it made');
  const f = tuned.metrics.fineTune!;
  assert.equal(f.heldOutKind, 'grouped-fold');
  assert.equal(f.bestEpoch, 2, 'keep last: the fold chose both epochs');
  assert.deepEqual(
    epochs,
    ['fold 1/2', 'fold 2/2', 'final training on all frames 1/2', 'final training on all frames 2/2'],
    'one progress report per epoch, in order: early stopping on the fold, then the chosen epoch count on all frames',
  );
  const frames = (await dataset.entries()).length;
  assert.ok(f.heldOutFrames > 0 && f.heldOutFrames < frames);
  assert.deepEqual(
    { epochs: f.finalTraining?.epochs, frames: f.finalTraining?.frames, samples: f.finalTraining?.samples, history: f.finalTraining?.history.map((e) => e.epoch) },
    { epochs: f.bestEpoch, frames, samples: frames * 2, history: [1, 2] },
    'the final pass ran the chosen epoch count on every frame and view, held-out ones included',
  );
  assert.equal(tuned.version, 2);
  assert.equal(tuned.metrics.pipeline.strategy, 'fine-tune');
  assert.equal(f.blocks, 1);

  const reopened = await openModelStore(storeDir);
  const model = await reopened.loadModel('active');
  const descriptor = model.metadata.backbone;
  assert.equal(descriptor.tuned?.from, backbone.id, 'tuned from the lane backbone');
  assert.notEqual(descriptor.id, backbone.id, 'a tuned backbone has its own identity');
  assert.ok(model.tunedBackboneDir && fs.existsSync(path.join(model.tunedBackboneDir, 'model.json')), 'the version holds the tuned folder');

  const tunedBackbone = await loadBackbone({ source: model.tunedBackboneDir!, inputRange: backbone.inputRange });
  const [base] = (await embedImages(backbone, [valPhoto()], { cache: null })).results;
  const [own] = (await embedImages(tunedBackbone, [valPhoto()], { cache: null })).results;
  tunedBackbone.release();
  const change = base.features.reduce((sum, v, i) => sum + Math.abs(v - own.features[i]), 0) / base.features.length;
  assert.ok(change > 1e-3, `tuned features differ from the base (mean |diff| ${change})`);

  const classifier = new LaneClassifier({ backbone });
  assert.throws(() => classifier.useModel(model), { code: 'MODEL_BACKBONE_MISMATCH' }, 'a tuned version needs its own backbone loaded');
  const stop = await classifier.followActiveModel(reopened);
  try {
    const served = await classifier.classify(valPhoto());
    assert.equal(served.modelVersion, 2);
    assert.equal(served.backboneId, descriptor.id, 'frames go through the tuned backbone');
    const versionChanged = new Promise<number>((resolve) => {
      const off = reopened.watchActive((c) => {
        off();
        resolve(c.version);
      });
    });
    await reopened.rollback();
    assert.equal(await versionChanged, 1);
    // followActiveModel takes the change up asynchronously: wait until it serves v1.
    let back = await classifier.classify(valPhoto());
    for (let i = 0; i < 100 && back.modelVersion !== 1; i++) back = await classifier.classify(valPhoto());
    assert.equal(back.modelVersion, 1);
    assert.equal(back.backboneId, backbone.id, 'the frozen version is served by the base backbone');
  } finally {
    stop();
    classifier.dispose();
  }
});

test('activations are cached on disk for the next fine-tune of the same frames and crop; the head reads the tuned features from the cache', async () => {
  const store = await openModelStore(path.join(work, 'models-cache'));
  const activationCache = new DiskFeatureCache(path.join(work, 'activations'));
  const run = (crop: number) =>
    retrain({ dataset, backbone, store, strategy: 'fine-tune', fineTune: FINE_TUNE, crop: { fraction: crop }, trainViews: 1, cache: new FeatureCache(), activationCache });
  const frames = (await dataset.entries()).length;
  const first = await run(0.7);
  const f1 = first.metrics.fineTune!;
  assert.equal(f1.bottomEngine, backbone.engine.name, 'the bottom runs where the backbone runs (ONNX Runtime here)');
  assert.equal(f1.cachedActivations, 0, 'a cold cache');
  assert.equal(activationCache.size, frames * 2, 'one entry per frame and view');
  // Of the crop's frames and views the head needs, none went through the tuned backbone again.
  assert.ok(first.metrics.timings.cachedFeatures >= frames * 2, `cached features ${first.metrics.timings.cachedFeatures}`);

  const second = await run(0.7);
  assert.equal(second.metrics.fineTune!.cachedActivations, frames * 2, 'every activation read back from disk');
  assert.deepEqual(
    second.metrics.fineTune!.history.map((e) => e.loss),
    f1.history.map((e) => e.loss),
    'the same activations train the same way',
  );
  const otherCrop = await run(0.55);
  assert.equal(otherCrop.metrics.fineTune!.cachedActivations, 0, 'another crop is another key');

  // Without views given, the blocks train on at least FINE_TUNE_MIN_VIEWS (the active version has 1).
  const defaults = await retrain({ dataset, backbone, store, strategy: 'fine-tune', fineTune: { ...FINE_TUNE, finalTraining: undefined }, previous: otherCrop.metrics.pipeline, cache: new FeatureCache(), activationCache });
  assert.equal(defaults.metrics.pipeline.spec.trainViews, FINE_TUNE_MIN_VIEWS);
  assert.equal(FINE_TUNE_FINAL_TRAINING, false);
  assert.equal(defaults.metrics.fineTune!.finalTraining, undefined, 'no final training on all frames unless asked (FINE_TUNE_FINAL_TRAINING)');
  assert.equal(defaults.metrics.fineTune!.cachedActivations, frames * 2, 'the plain frames and the first view at crop 0.55 were cached: views are the same list for the same seed');
});

test('a cancelled fine-tune saves nothing; a graph model cannot be fine-tuned', async () => {
  const store = await openModelStore(path.join(work, 'models-cancel'));
  await retrain({ dataset, backbone, store, strategy: 'fixed' });
  const controller = new AbortController();
  await assert.rejects(
    retrain({ dataset, backbone, store, strategy: 'fine-tune', fineTune: FINE_TUNE, activationCache: null, signal: controller.signal, onProgress: (p) => p.phase === 'fine-tune' && controller.abort() }),
    (err: Error) => err.name === 'AbortError' || /abort/i.test(err.message),
  );
  assert.equal((await store.listVersions()).length, 1, 'no new version');
  assert.equal(await store.activeVersion(), 1, 'the active version is untouched');
  // Cancelled in the final training on all frames, after early stopping finished.
  const late = new AbortController();
  const seen: string[] = [];
  await assert.rejects(
    retrain({
      dataset,
      backbone,
      store,
      strategy: 'fine-tune',
      fineTune: FINE_TUNE,
      activationCache: null,
      signal: late.signal,
      onProgress: (p) => {
        if (p.phase !== 'fine-tune') return;
        seen.push(p.stage ?? 'fold');
        if (p.stage) late.abort();
      },
    }),
    (err: Error) => err.name === 'AbortError' || /abort/i.test(err.message),
  );
  assert.deepEqual(seen, ['fold', 'fold', 'final training on all frames'], 'cancelled after the first final epoch');
  assert.equal((await store.listVersions()).length, 1, 'no new version after a cancel in the final training');
  assert.equal(await store.activeVersion(), 1, 'the active version is still untouched');

  const graph = await acquireBackbone(modelDir('mobilenet-v1-0.25-imagenet-graph'));
  try {
    await assert.rejects(retrain({ dataset, backbone: graph, store, strategy: 'fine-tune', fineTune: FINE_TUNE }), { code: 'FINE_TUNE_UNSUPPORTED', message: /graph model.*cannot be fine-tuned/ });
  } finally {
    graph.release();
  }
});
