/**
 * TrainingWorker on real photos and weights: a retrain in a worker thread gives what an
 * in-process retrain gives, reports progress, cancels without writing a version, keeps
 * the main event loop free, survives a backbone it cannot load and a thread that dies,
 * hands the new version to a classifier following the store without a failed frame, and
 * ends its thread on dispose.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Worker } from 'node:worker_threads';
import { acquireBackbone, tf, type Backbone } from '../../../src/engine/index.js';
import { openDataset, type Dataset } from '../../../src/dataset/index.js';
import { openModelStore, type ModelStore } from '../../../src/model-store/index.js';
import { FeatureCache, embedImages } from '../../../src/features/index.js';
import {
  TrainingWorker,
  enginePreferenceOf,
  isRetraining,
  retrain,
  type RetrainProgress,
  type RetrainResult,
} from '../../../src/retrain/index.js';
import { LaneClassifier, type ClassificationResult } from '../../../src/classify/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../../support/shared.js';
import { copyModel } from '../engine/copy-model.js';

const MODEL = 'mobilenet-v2-0.35-features';
const CLASSES = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice', 'Yoggi-Strawberry-Yoghurt'];
const PER_CLASS = 10;
/** These tests are about the thread, not the pipeline search: one fixed pipeline, the earlier default head. */
const FIXED = { strategy: 'fixed', head: { kind: 'softmax' } } as const;
let backbone: Backbone;
let work: string;
let dataset: Dataset;
/** One worker for the tests that need a working one; each store folder is new. */
let trainer: TrainingWorker;
let stores = 0;

before(async () => {
  backbone = await acquireBackbone(modelDir(MODEL));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-training-worker-'));
  dataset = await openDataset(path.join(work, 'dataset'));
  for (const label of CLASSES) {
    for (const file of classImages(groceryTrainDir, label).slice(0, PER_CLASS)) await dataset.add(label, file);
  }
  trainer = new TrainingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
});
after(async () => {
  await trainer.dispose();
  backbone.release();
  fs.rmSync(work, { recursive: true, force: true });
});

function newStore(): Promise<ModelStore> {
  return openModelStore(path.join(work, `models-${++stores}`));
}

function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  return assert.rejects(promise, (err: unknown) => {
    assert.ok(isLaneVisionError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

test('a worker retrain gives what an in-process retrain gives, with progress, under the store lock', async () => {
  const inProcessStore = await newStore();
  const inProcess = await retrain({ ...FIXED, dataset, backbone, store: inProcessStore, cache: new FeatureCache() });

  const store = await newStore();
  const progress: RetrainProgress[] = [];
  const tensorsBefore = tf.memory();
  const running = trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null, onProgress: (p) => progress.push(p) });
  assert.equal(isRetraining(store), true, 'the main thread holds the store lock');
  await rejectsWithCode(retrain({ ...FIXED, dataset, backbone, store }), 'RETRAIN_BUSY');
  await rejectsWithCode(trainer.retrain({ ...FIXED, dataset, store }), 'RETRAIN_BUSY');
  const result = await running;
  assert.equal(isRetraining(store), false);
  assert.deepEqual(tf.memory().numTensors, tensorsBefore.numTensors, 'the main thread allocated no tensors');
  assert.deepEqual(tf.memory().numBytes, tensorsBefore.numBytes);

  assert.equal(result.version, 1);
  assert.equal(result.activated, true);
  assert.deepEqual(result.labels, inProcess.labels);
  assert.equal(result.datasetFingerprint, inProcess.datasetFingerprint);
  const m = result.metrics;
  assert.equal(m.trainCount, inProcess.metrics.trainCount);
  assert.equal(m.holdoutCount, inProcess.metrics.holdoutCount);
  assert.deepEqual(m.countsPerLabel, inProcess.metrics.countsPerLabel);
  assert.equal(m.headKind, 'softmax');
  assert.equal(m.timings.cachedFeatures, 0, 'no main-thread cache was given');
  // Same features (same engine, one thread each) and seed: the same held-out verdicts.
  assert.deepEqual(m.holdout.confusion, inProcess.metrics.holdout.confusion);
  assert.ok(Math.abs(m.holdout.accuracy - inProcess.metrics.holdout.accuracy) < 1e-9);

  // The version was written by the main thread's store, with this backbone's identity.
  const saved = await store.loadModel('active');
  assert.equal(saved.version, 1);
  assert.equal(saved.metadata.backbone.id, backbone.id);
  assert.deepEqual(saved.labels, [...CLASSES].sort());

  const phases = progress.map((p) => p.phase);
  assert.deepEqual([...new Set(phases)], ['features', 'training', 'saving'], 'phases arrive in order');
  const lastFeatures = progress.filter((p) => p.phase === 'features').at(-1);
  assert.deepEqual(lastFeatures, { phase: 'features', done: CLASSES.length * PER_CLASS, total: CLASSES.length * PER_CLASS, what: 'training frames' });
  assert.ok(progress.some((p) => p.phase === 'training' && p.epoch === p.epochs && Number.isFinite(p.loss)));

  // A second retrain embeds nothing: the worker's own cache is warm.
  const second = await trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null });
  assert.equal(second.version, 2);
  assert.equal(second.metrics.timings.cachedFeatures, CLASSES.length * PER_CLASS);
});

test('vectors the main thread holds seed the worker, and what the worker embeds comes back', async () => {
  const fresh = new TrainingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  try {
    const entries = await dataset.entries();
    const captured = new FeatureCache();
    const firstLabel = entries.filter((e) => e.label === CLASSES[0]);
    await embedImages(backbone, firstLabel.map((e) => e.path), { cache: captured }); // as capture does
    const result = await fresh.retrain({ ...FIXED, dataset, backbone, store: await newStore(), cache: captured });
    assert.equal(result.metrics.timings.cachedFeatures, firstLabel.length, 'the captured frames were not embedded again');
    assert.equal(captured.size, entries.length, 'every frame of the dataset is now in the main thread cache');
    const key = FeatureCache.key(backbone.id, backbone.fit, entries.at(-1)!.sha256);
    const [direct] = (await embedImages(backbone, [entries.at(-1)!.path], { cache: null })).results;
    const fromWorker = captured.get(key)!;
    assert.equal(fromWorker.length, backbone.featureSize);
    const gap = Math.max(...direct.features.map((v, i) => Math.abs(v - fromWorker[i])));
    assert.ok(gap < 1e-4, `worker and main thread features differ by ${gap}`);
  } finally {
    await fresh.dispose();
  }
});

test('cancelling stops the training inside the worker and writes no version', async () => {
  const store = await newStore();
  await trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null });
  for (const stopAt of ['features', 'training'] as const) {
    const controller = new AbortController();
    const reason = new Error(`stop at ${stopAt}`);
    const cancelled = trainer.retrain({
      ...FIXED,
      dataset,
      backbone,
      store,
      cache: null,
      head: { kind: 'softmax', epochs: 2000 },
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === stopAt) controller.abort(reason);
      },
    });
    await assert.rejects(cancelled, (err: Error) => err.message === reason.message || isLaneVisionError(err, 'TRAINING_CANCELLED'));
    assert.equal(isRetraining(store), false, 'the lock is free again');
  }
  assert.deepEqual((await store.listVersions()).map((v) => v.version), [1], 'no version was written');
  assert.equal(await store.activeVersion(), 1);
  // The worker is still good for the next training.
  assert.equal((await trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null })).version, 2);
});

test('the main event loop stays free while the worker trains', async (t) => {
  const job = { dataset, backbone, strategy: 'fixed' as const, head: { kind: 'mlp' as const, epochs: 300 } };
  const measure = async (run: () => Promise<RetrainResult>) => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const start = performance.eventLoopUtilization();
    delay.enable();
    await run();
    delay.disable();
    return { busy: performance.eventLoopUtilization(start).utilization, maxDelayMs: delay.max / 1e6 };
  };
  // Both warm (features cached), so the runs differ only in where the work happens.
  const cache = new FeatureCache();
  await embedImages(backbone, (await dataset.entries()).map((e) => e.path), { cache });
  const inProcess = await measure(async () => retrain({ ...job, store: await newStore(), cache }));
  await trainer.retrain({ ...job, store: await newStore(), cache: null });
  const inWorker = await measure(async () => trainer.retrain({ ...job, store: await newStore(), cache: new FeatureCache() }));
  const figures = `main thread busy ${inWorker.busy.toFixed(2)} (in-process ${inProcess.busy.toFixed(2)}), ` +
    `longest event-loop delay ${inWorker.maxDelayMs.toFixed(0)} ms (in-process ${inProcess.maxDelayMs.toFixed(0)} ms)`;
  t.diagnostic(figures);
  // Share of wall time the main thread ran code: a ratio, so a slow machine does not move it much.
  assert.ok(inWorker.busy < 0.3, figures);
  assert.ok(inProcess.busy > inWorker.busy + 0.3, figures);
});

test('a classifier following the store keeps classifying during a worker retrain and switches with no failed frame', async () => {
  const store = await newStore();
  await trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null });
  const classifier = new LaneClassifier({ backbone, threshold: 0.5 });
  const switched: number[] = [];
  const stop = await classifier.followActiveModel(store, (version, error) => {
    assert.ifError(error);
    switched.push(version);
  });
  try {
    const frames = CLASSES.flatMap((label) => classImages(groceryValDir, label));
    const results: ClassificationResult[] = [];
    let training = true;
    let duringTraining = 0;
    const lane = (async () => {
      for (let i = 0; training || switched.length === 0; i++) {
        results.push(await classifier.classify(frames[i % frames.length]));
        if (training) duringTraining++;
      }
    })();
    const result = await trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null, head: { kind: 'mlp', epochs: 300 } }).finally(() => {
      training = false;
    });
    await lane;
    results.push(await classifier.classify(frames[0]));
    assert.equal(result.version, 2);
    assert.deepEqual(switched, [2]);
    assert.ok(duringTraining > 0, 'frames were classified while the worker trained');
    const versions = results.map((r) => r.modelVersion);
    assert.equal(versions[0], 1);
    assert.equal(versions.at(-1), 2);
    assert.deepEqual(versions, [...versions].sort(), 'once switched, every frame uses the new version');
    assert.ok(results.every((r) => r.topK.length > 0 && CLASSES.includes(r.topK[0].label)));
  } finally {
    stop();
  }
});

test('a worker that cannot load the backbone fails clearly; the next training starts a fresh one', async () => {
  const folder = path.join(work, 'later', MODEL);
  const broken = new TrainingWorker({ spec: folder, engine: enginePreferenceOf(backbone) });
  try {
    const store = await newStore();
    await assert.rejects(broken.retrain({ ...FIXED, dataset, backbone, store }), (err: unknown) => {
      assert.ok(isLaneVisionError(err, 'TRAINING_WORKER_FAILED'), String(err));
      assert.match(err.message, /could not load the backbone/);
      assert.ok(err.message.includes(folder), err.message);
      assert.match(err.message, /LANE_VISION_TRAIN_THREAD=main/);
      return true;
    });
    assert.equal(broken.running, false);
    assert.equal(isRetraining(store), false);
    // Same network, same folder name: the same backbone id as the main thread's copy.
    await copyModel(MODEL, folder);
    const result = await broken.retrain({ ...FIXED, dataset, backbone, store, cache: null });
    assert.equal(result.version, 1);
  } finally {
    await broken.dispose();
  }
});

test('a worker thread that dies mid-training fails that training only; the next one starts a fresh thread', async () => {
  const store = await newStore();
  const threads: number[] = [];
  trainer.on('ready', (info) => threads.push(info.threadId));
  try {
    let killed: number | undefined;
    const dying = trainer.retrain({
      ...FIXED,
      dataset,
      backbone,
      store,
      cache: null,
      head: { kind: 'softmax', epochs: 2000 },
      onProgress: (p) => {
        if (p.phase !== 'training' || killed !== undefined) return;
        // As if the thread crashed: nothing in the worker gets to clean up.
        const { worker } = (trainer as unknown as { thread: { host: { worker: Worker } } }).thread.host;
        killed = worker.threadId;
        void worker.terminate();
      },
    });
    await rejectsWithCode(dying, 'TRAINING_WORKER_FAILED');
    assert.equal(trainer.running, false);
    assert.equal(isRetraining(store), false);
    assert.deepEqual(await store.listVersions(), []);
    const result = await trainer.retrain({ ...FIXED, dataset, backbone, store, cache: null });
    assert.equal(result.version, 1);
    assert.ok(killed !== undefined && threads.length > 0 && threads.at(-1) !== killed, 'a new thread loaded the backbone');
  } finally {
    trainer.removeAllListeners('ready');
  }
});

test('dispose ends the thread; a disposed worker refuses work', async () => {
  const worker = new TrainingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  await worker.dispose(); // never started: nothing to end
  const used = new TrainingWorker({ spec: modelDir(MODEL), engine: enginePreferenceOf(backbone) });
  await used.retrain({ ...FIXED, dataset, backbone, store: await newStore(), cache: null });
  assert.equal(used.running, true);
  const exited = once(used, 'exit');
  await used.dispose();
  const [{ code }] = (await exited) as [{ code: number }];
  assert.equal(code, 0, 'the thread ended on its own after releasing its backbone');
  assert.equal(used.running, false);
  await rejectsWithCode(used.retrain({ ...FIXED, dataset, backbone, store: await newStore() }), 'TRAINING_WORKER_DISPOSED');
});
