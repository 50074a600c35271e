/**
 * lane-train in a Node-RED runtime on real photos and weights: a retrain of a captured
 * 3-class set, its progress messages (in the shape lane-events publishes), one training at
 * a time, the editor button's endpoint, and a clean cancel when the flow stops.
 * Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { NodeMessage } from 'node-red';
import Ajv2020 from 'ajv/dist/2020.js';
import {
  TrainingEventMapper,
  buildModelEvent,
  buildTrainingEvent,
  laneEventSchemas,
  modelInputFromSummary,
  type LaneEventContext,
} from '../../src/events/index.js';
import { classImages, groceryTrainDir, modelDir } from '../support/shared.js';
import {
  TAB,
  backboneConfig,
  catchAll,
  caughtCode,
  caughtText,
  compiledModule,
  datasetConfig,
  helper,
  lastStatus,
  laneNodes,
  recorder,
  tempDir,
  waitFor,
  waitForStatus,
  type FlowItem,
} from './support/lane-flow.js';

const engine = compiledModule<typeof import('../../src/engine/index.js')>('src/engine/index.js');
const datasets = compiledModule<typeof import('../../src/dataset/index.js')>('src/dataset/index.js');
const nodes = laneNodes('lane-backbone', 'lane-dataset', 'lane-capture', 'lane-train');
const CLASSES = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice', 'Yoggi-Strawberry-Yoghurt'];
const PER_CLASS = 8;
const LANE: LaneEventContext = { line: 'line-1', station: 'yoghurt-A' };
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
const validTraining = ajv.compile(laneEventSchemas.training as object);
const validModel = ajv.compile(laneEventSchemas.model as object);
let work: string;
/** Filled through the library in before(), for the tests that do not test capture. */
let readyDataset: string;

helper.init(require.resolve('node-red'));

before(async () => {
  work = tempDir('train');
  readyDataset = path.join(work, 'ready');
  const dataset = await datasets.openDataset(readyDataset);
  for (const label of CLASSES) {
    for (const file of classImages(groceryTrainDir, label).slice(PER_CLASS, 2 * PER_CLASS)) await dataset.add(label, file);
  }
  await helper.startServer();
});
afterEach(() => helper.unload());
after(async () => {
  await helper.stopServer();
  fs.rmSync(work, { recursive: true, force: true });
});

type Progress = { jobId: string; phase: string; stage?: string; progress?: number; [key: string]: unknown };

function flow(datasetFolder: string, modelsFolder: string, trainConfig: Record<string, unknown> = {}): FlowItem[] {
  return [
    TAB,
    backboneConfig('bb', modelDir('mobilenet-v2-0.35-features')),
    datasetConfig('ds', datasetFolder, modelsFolder),
    { id: 'cap', z: 'f1', type: 'lane-capture', name: '', dataset: 'ds', backbone: 'bb', label: '', wires: [['stored']] },
    { id: 'stored', z: 'f1', type: 'helper' },
    {
      id: 'tr',
      z: 'f1',
      type: 'lane-train',
      name: '',
      dataset: 'ds',
      backbone: 'bb',
      headKind: 'softmax',
      epochs: '',
      hiddenUnits: '',
      holdoutFraction: '0.25',
      seed: '1',
      targetPrecision: '0.95',
      activate: true,
      wires: [['model'], ['progress']],
      ...trainConfig,
    },
    { id: 'model', z: 'f1', type: 'helper' },
    { id: 'progress', z: 'f1', type: 'helper' },
    ...catchAll('c1', ['tr', 'cap']),
  ];
}

async function deploy(datasetFolder: string, modelsFolder: string, trainConfig: Record<string, unknown> = {}) {
  await helper.load(nodes, flow(datasetFolder, modelsFolder, trainConfig));
  const kit = {
    train: helper.getNode('tr'),
    stored: recorder(helper.getNode('stored')),
    model: recorder(helper.getNode('model')),
    progress: recorder(helper.getNode('progress')),
    caught: recorder(helper.getNode('c1-out')),
  };
  await waitForStatus(kit.train, (s) => /1280-d/.test(String(s.text)), 'backbone ready');
  return kit;
}

/** Checks one training's progress messages and returns them. */
function checkProgress(messages: NodeMessage[], examples: number): Progress[] {
  const payloads = messages.map((m) => {
    assert.equal(m.topic, 'training');
    return m.payload as Progress;
  });
  assert.equal(payloads[0].phase, 'started');
  assert.equal(payloads[0].examples, examples);
  assert.deepEqual(payloads[0].labels, [...CLASSES].sort());
  assert.equal(payloads.at(-1)!.phase, 'finished');
  assert.equal(new Set(payloads.map((p) => p.jobId)).size, 1, 'one jobId for the whole run');
  const middle = payloads.slice(1, -1);
  assert.ok(middle.every((p) => p.phase === 'progress'));
  // Stages in order: features, then training, then saving.
  const stages = middle.map((p) => p.stage);
  const order = ['features', 'training', 'saving'];
  assert.deepEqual([...new Set(stages)], order, `stages ${stages.join(',')}`);
  assert.ok(stages.every((s, i) => i === 0 || order.indexOf(s!) >= order.indexOf(stages[i - 1]!)));
  const fractions = middle.map((p) => p.progress!);
  assert.ok(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1])), `progress ${fractions.join(',')}`);
  const features = middle.filter((p) => p.stage === 'features').map((p) => p.features as { done: number; total: number });
  assert.deepEqual(features.at(-1), { done: examples, total: examples });
  const epochs = middle.filter((p) => p.stage === 'training');
  assert.ok(epochs.every((p, i) => typeof p.loss === 'number' && typeof p.accuracy === 'number' && (i === 0 || (p.epoch as number) > (epochs[i - 1].epoch as number))));
  assert.equal(epochs.at(-1)!.epoch, epochs.at(-1)!.epochs);
  // lane-events turns exactly these payloads into valid training events.
  const mapper = new TrainingEventMapper();
  for (const payload of payloads) {
    const event = buildTrainingEvent(LANE, mapper.map(payload));
    assert.ok(validTraining(event), ajv.errorsText(validTraining.errors));
    assert.equal(event.jobId, payloads[0].jobId);
    if (payload.stage === 'training') assert.deepEqual(Object.keys(event.metrics ?? {}).sort(), ['accuracy', 'loss']);
    if (payload.stage === 'features') assert.equal(event.metrics, undefined, 'image counts are not metrics');
  }
  return payloads;
}

test('trains on a captured 3-class set: new version, metrics, progress in order, one training at a time', async () => {
  const datasetFolder = path.join(work, 'captured');
  const modelsFolder = path.join(work, 'captured-models');
  const kit = await deploy(datasetFolder, modelsFolder);
  for (const label of CLASSES) {
    for (const file of classImages(groceryTrainDir, label).slice(0, PER_CLASS)) {
      helper.getNode('cap').receive({ payload: fs.readFileSync(file), label } as NodeMessage);
      await kit.stored.next();
    }
  }
  // Let the last frames' pre-embedding finish (messages complete after it).
  await new Promise((resolve) => setTimeout(resolve, 300));

  kit.train.receive({ payload: {} } as NodeMessage);
  kit.train.receive({ payload: {} } as NodeMessage);
  const refused = await kit.caught.next('the second trigger refused');
  assert.equal(caughtCode(refused), 'TRAINING_RUNNING');
  assert.equal(caughtText(refused), 'lane-train.errors.running');

  const done = await kit.model.next('the new model', 30_000);
  assert.equal(done.topic, 'model');
  const result = done.payload as {
    version: number;
    activated: boolean;
    labels: { label: string; code: number }[];
    head: string;
    metrics: { holdout: { accuracy: number }; trainCount: number; holdoutCount: number; timings: { cachedFeatures: number } };
  };
  assert.equal(result.version, 1);
  assert.equal(result.activated, true);
  assert.equal(result.head, 'softmax');
  assert.deepEqual(result.labels.map((l) => l.label), [...CLASSES].sort());
  assert.equal(new Set(result.labels.map((l) => l.code)).size, 3);
  assert.ok(result.labels.every((l) => Number.isInteger(l.code) && l.code >= 1));
  assert.equal(result.metrics.trainCount, 3 * PER_CLASS);
  assert.equal(result.metrics.holdoutCount, 3 * PER_CLASS, 'every frame scored once by a head that did not see it');
  assert.ok(result.metrics.holdout.accuracy >= 0 && result.metrics.holdout.accuracy <= 1);
  assert.equal(result.metrics.timings.cachedFeatures, 3 * PER_CLASS, 'capture already embedded every frame');
  // Captured in one session: the status says the accuracy is likely optimistic.
  // (Here the i18n keys stand in for the words, so the status is cut at its 60 characters.)
  assert.match(String(lastStatus(kit.train)?.text), /^v1 · lane-train\.status\.acc \d\.\d\d \(lane-train\.status\.one-se/);
  // Output 1 wired to lane-events publishes the lane's model event.
  const modelEvent = buildModelEvent(LANE, modelInputFromSummary(done.payload));
  assert.ok(validModel(modelEvent), ajv.errorsText(validModel.errors));
  assert.equal(modelEvent.modelVersion, 'v1');
  assert.deepEqual(modelEvent.labels, result.labels);

  await waitFor(() => (kit.progress.at(-1)?.payload as Progress | undefined)?.phase === 'finished', 'the finished progress message');
  const payloads = checkProgress(kit.progress, 3 * PER_CLASS);
  const finished = payloads.at(-1)!;
  assert.equal(finished.version, 1);
  assert.equal((finished.metrics as { accuracy: number }).accuracy.toFixed(4), result.metrics.holdout.accuracy.toFixed(4));

  // The editor reads the new version back through the dataset node.
  const counts = await helper.request().get('/lane-vision/lane-dataset/ds/counts').expect(200);
  assert.deepEqual(counts.body.counts, Object.fromEntries(CLASSES.map((c) => [c, PER_CLASS])));
  assert.equal(counts.body.activeVersion, 1);
  assert.deepEqual(counts.body.versions.map((v: { version: number; active: boolean }) => [v.version, v.active]), [[1, true]]);
});

/** What the editor's button sends (nodes/lane-train/lane-train.html). */
const EDITOR = { 'X-Lane-Vision': '1' };

test("the editor button's endpoint starts a training, refuses a second one, and 404s for unknown nodes", async () => {
  const kit = await deploy(readyDataset, path.join(work, 'button-models'));
  await helper.request().post('/lane-vision/lane-train/no-such-node/train').set(EDITOR).send({}).expect(404);
  await helper.request().post('/lane-vision/lane-train/ds/train').set(EDITOR).send({}).expect(404); // not a train node
  // A page of another site cannot start a training, even without adminAuth: no header, or the header from another origin.
  const crossSite = await helper.request().post('/lane-vision/lane-train/tr/train').send({}).expect(403);
  assert.equal(crossSite.body.code, 'REQUEST_CROSS_SITE');
  await helper.request().post('/lane-vision/lane-train/tr/train').set({ ...EDITOR, Origin: 'http://evil.example' }).send({}).expect(403);
  await helper.request().post('/lane-vision/lane-train/tr/train').set({ ...EDITOR, 'Sec-Fetch-Site': 'cross-site' }).send({}).expect(403);
  assert.equal(kit.progress.length, 0, 'no training started');
  const started = await helper.request().post('/lane-vision/lane-train/tr/train').set(EDITOR).send({}).expect(200);
  assert.deepEqual(started.body, { started: true });
  const again = await helper.request().post('/lane-vision/lane-train/tr/train').set(EDITOR).send({}).expect(409);
  assert.deepEqual(again.body, { error: 'lane-train.errors.running', code: 'TRAINING_RUNNING' });
  const done = await kit.model.next('the new model', 30_000);
  assert.equal((done.payload as { version: number }).version, 1);
  assert.equal(kit.caught.length, 0);
});

test('message overrides change one training; bad overrides and too little data are refused clearly', async () => {
  const kit = await deploy(readyDataset, path.join(work, 'override-models'));
  kit.train.receive({ payload: { headKind: 'prototype', activate: false } } as NodeMessage);
  const prototype = (await kit.model.next('the prototype model', 30_000)).payload as { head: string; activated: boolean; version: number };
  assert.deepEqual([prototype.head, prototype.activated, prototype.version], ['prototype', false, 1]);

  kit.train.receive({ payload: { headKind: 'tree' } } as NodeMessage);
  const bad = await kit.caught.next();
  assert.equal(caughtCode(bad), 'TRAIN_SETTINGS_INVALID');
  assert.match(caughtText(bad), /headKind must be one of prototype, knn, softmax, mlp, logistic, svm/);
  kit.train.receive({ payload: { holdoutFraction: 1.5 } } as NodeMessage);
  assert.match(caughtText(await kit.caught.next()), /holdoutFraction must be between 0 and 1/);
  await helper.unload();

  // One label only: the run fails, says why on output 2 and to the catch node.
  const tiny = path.join(work, 'tiny');
  const dataset = await datasets.openDataset(tiny);
  for (const file of classImages(groceryTrainDir, CLASSES[0]).slice(0, 3)) await dataset.add(CLASSES[0], file);
  const small = await deploy(tiny, path.join(work, 'tiny-models'));
  small.train.receive({ payload: {} } as NodeMessage);
  const failed = await small.caught.next();
  assert.equal(caughtCode(failed), 'RETRAIN_NOT_ENOUGH_DATA');
  await waitFor(() => small.progress.length >= 2, 'started and failed');
  assert.deepEqual(
    small.progress.map((m) => (m.payload as Progress).phase),
    ['started', 'failed'],
  );
  assert.equal(((small.progress[1].payload as Progress).error as { code: string }).code, 'RETRAIN_NOT_ENOUGH_DATA');
  assert.equal(lastStatus(small.train)?.fill, 'red');
});

test('typedInputs: epochs read from flow or msg when a training starts, from env at deploy; a bad value names where it was read', async () => {
  /**
   * The epochs of each fit, from the training's progress: it reports all fits as one run,
   * the 4 cross-validation folds (holdoutFraction 0.25) and the final fit.
   */
  const epochsOf = async (kit: Awaited<ReturnType<typeof deploy>>, msg: Record<string, unknown>): Promise<number> => {
    const before = kit.progress.length;
    kit.train.receive(msg as NodeMessage);
    await kit.model.next('the model', 60_000);
    const training = kit.progress.slice(before).map((m) => m.payload as Progress).filter((p) => p.stage === 'training');
    assert.ok(training.length > 0, 'training progress');
    return (training[0].epochs as number) / 5;
  };

  const fromFlow = await deploy(readyDataset, path.join(work, 'typed-flow-models'), { epochs: 'trainEpochs', epochsType: 'flow' });
  fromFlow.train.context().flow.set('trainEpochs', 3);
  assert.equal(await epochsOf(fromFlow, { payload: {} }), 3);
  fromFlow.train.context().flow.set('trainEpochs', '2'); // context often holds text
  assert.equal(await epochsOf(fromFlow, { payload: {} }), 2, 'read again at each training');
  assert.equal(await epochsOf(fromFlow, { payload: { epochs: 4 } }), 4, 'msg.payload overrides still win');
  fromFlow.train.context().flow.set('trainEpochs', 'many');
  fromFlow.train.receive({ payload: {} } as NodeMessage);
  const bad = await fromFlow.caught.next();
  assert.equal(caughtCode(bad), 'TRAIN_SETTINGS_INVALID');
  assert.match(caughtText(bad), /^epochs \(read from flow\.trainEpochs\) must be a whole number of at least 1/);
  await helper.unload();

  const fromMsg = await deploy(readyDataset, path.join(work, 'typed-msg-models'), { epochs: 'job.epochs', epochsType: 'msg' });
  assert.equal(await epochsOf(fromMsg, { payload: {}, job: { epochs: 2 } }), 2);
  await helper.unload();

  process.env.LANE_TRAIN_TEST_EPOCHS = '3';
  process.env.LANE_TRAIN_TEST_PRECISION = '7';
  try {
    const fromEnv = await deploy(readyDataset, path.join(work, 'typed-env-models'), { epochs: 'LANE_TRAIN_TEST_EPOCHS', epochsType: 'env' });
    assert.equal(await epochsOf(fromEnv, { payload: {} }), 3);
    await helper.unload();
    // A bad env value is a deploy-time error naming the variable.
    await helper.load(nodes, flow(readyDataset, path.join(work, 'typed-env-bad'), { targetPrecision: 'LANE_TRAIN_TEST_PRECISION', targetPrecisionType: 'env' }));
    const status = await waitForStatus(helper.getNode('tr'), (s) => s.fill === 'red', 'error');
    assert.match(String(status.text), /^targetPrecision \(read from env LANE_TRAIN_TEST_PRECISION\)/);
    const logged = helper
      .log()
      .args.map((args: unknown[]) => args[0] as { id?: string; msg?: unknown })
      .filter((entry) => entry.id === 'tr' && String(entry.msg).startsWith('targetPrecision'));
    assert.equal(logged.length, 1, 'one log line');
    assert.match(String(logged[0].msg), /^targetPrecision \(read from env LANE_TRAIN_TEST_PRECISION\) must be above 0 and at most 1, got "7"/);
  } finally {
    delete process.env.LANE_TRAIN_TEST_EPOCHS;
    delete process.env.LANE_TRAIN_TEST_PRECISION;
  }
});

test('stopping the flow during a training cancels it quickly, saves nothing and leaks no tensors', async () => {
  const modelsFolder = path.join(work, 'cancel-models');
  const tensorsBefore = tf.memory().numTensors;
  // An mlp with far more epochs than the test would wait for.
  const kit = await deploy(readyDataset, modelsFolder, { headKind: 'mlp', epochs: '100000' });
  kit.train.receive({ payload: {} } as NodeMessage);
  const epochOf = (m: NodeMessage) => ((m.payload as Progress).stage === 'training' ? ((m.payload as Progress).epoch as number) : 0);
  await waitFor(() => kit.progress.some((m) => epochOf(m) > 1), 'training under way', 30_000);
  await helper.unload();
  const lastEpoch = Math.max(...kit.progress.map(epochOf));
  assert.ok(lastEpoch < 100_000, `the training stopped at epoch ${lastEpoch}, not at its end`);
  assert.equal(kit.model.length, 0, 'no model message');
  assert.equal(kit.caught.length, 0, 'a cancel on stop is not an error for catch nodes');
  assert.ok(!fs.existsSync(modelsFolder) || !fs.readdirSync(modelsFolder).some((f) => /^v\d+$/.test(f)), 'no version saved');
  assert.deepEqual(engine.sharedBackbones(), []);
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensors left behind');
  // afterEach unloads again.
  await helper.load(nodes, [TAB]);
});
