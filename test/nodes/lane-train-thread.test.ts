/**
 * Where lane-train's trainings run, in a Node-RED runtime on real photos and weights: in
 * the backbone node's training worker by default (started once, kept warm), on the main
 * thread with LANE_VISION_TRAIN_THREAD=main, and a clear error for any other value.
 * Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeMessage } from 'node-red';
import { classImages, groceryTrainDir, modelDir } from '../support/shared.js';
import {
  TAB,
  backboneConfig,
  catchAll,
  caughtCode,
  compiledModule,
  datasetConfig,
  helper,
  laneNodes,
  recorder,
  tempDir,
  waitForStatus,
  type FlowItem,
} from './support/lane-flow.js';

const datasets = compiledModule<typeof import('../../src/dataset/index.js')>('src/dataset/index.js');
const nodes = laneNodes('lane-backbone', 'lane-dataset', 'lane-train');
const CLASSES = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice'];
const PER_CLASS = 6;
const ENV = 'LANE_VISION_TRAIN_THREAD';
let work: string;
let datasetFolder: string;
let runs = 0;

helper.init(require.resolve('node-red'));

before(async () => {
  work = tempDir('train-thread');
  datasetFolder = path.join(work, 'dataset');
  const dataset = await datasets.openDataset(datasetFolder);
  for (const label of CLASSES) {
    for (const file of classImages(groceryTrainDir, label).slice(0, PER_CLASS)) await dataset.add(label, file);
  }
  await helper.startServer();
});
afterEach(async () => {
  delete process.env[ENV];
  await helper.unload();
});
after(async () => {
  await helper.stopServer();
  fs.rmSync(work, { recursive: true, force: true });
});

async function deploy() {
  const flow: FlowItem[] = [
    TAB,
    backboneConfig('bb', modelDir('mobilenet-v2-0.35-features')),
    datasetConfig('ds', datasetFolder, path.join(work, `models-${++runs}`)),
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
      wires: [['model'], []],
    },
    { id: 'model', z: 'f1', type: 'helper' },
    ...catchAll('c1', ['tr']),
  ];
  await helper.load(nodes, flow);
  const kit = { train: helper.getNode('tr'), model: recorder(helper.getNode('model')), caught: recorder(helper.getNode('c1-out')) };
  await waitForStatus(kit.train, (s) => /1280-d/.test(String(s.text)), 'backbone ready');
  return kit;
}

/** The backbone node's "training worker ready" log lines. */
function workerLogs(): string[] {
  return helper
    .log()
    .args.map((args: unknown[]) => args[0] as { id?: string; msg?: unknown })
    .filter((entry) => entry.id === 'bb' && String(entry.msg).startsWith('lane-backbone.log.training-worker'))
    .map((entry) => String(entry.msg));
}

type ModelPayload = { version: number; metrics: { timings: { cachedFeatures: number } } };

test('trainings run in the backbone node\'s worker, started once and kept warm', async () => {
  const kit = await deploy();
  kit.train.receive({ payload: {} } as NodeMessage);
  const first = (await kit.model.next('the first model', 30_000)).payload as ModelPayload;
  kit.train.receive({ payload: {} } as NodeMessage);
  const second = (await kit.model.next('the second model', 30_000)).payload as ModelPayload;
  assert.equal(first.version, 1);
  assert.equal(second.version, 2);
  assert.equal(second.metrics.timings.cachedFeatures, CLASSES.length * PER_CLASS, 'the second training embedded nothing');
  assert.equal(workerLogs().length, 1, 'one worker thread served both trainings');
});

test('LANE_VISION_TRAIN_THREAD=main trains on the main thread', async () => {
  process.env[ENV] = 'main';
  const kit = await deploy();
  kit.train.receive({ payload: {} } as NodeMessage);
  const model = (await kit.model.next('the model', 30_000)).payload as ModelPayload;
  assert.equal(model.version, 1);
  assert.deepEqual(workerLogs(), [], 'no worker was started');
});

test('an unknown LANE_VISION_TRAIN_THREAD fails the training clearly', async () => {
  process.env[ENV] = 'gpu';
  const kit = await deploy();
  kit.train.receive({ payload: {} } as NodeMessage);
  const caught = await kit.caught.next('the training error');
  assert.equal(caughtCode(caught), 'TRAIN_THREAD_UNKNOWN');
  const status = await waitForStatus(kit.train, (s) => s.fill === 'red', 'error status');
  assert.match(String(status.text), /LANE_VISION_TRAIN_THREAD/);
});
