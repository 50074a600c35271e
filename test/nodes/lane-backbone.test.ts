/**
 * lane-backbone in a Node-RED runtime: real weights from ../shared/models, statuses fanned
 * out to the nodes using it, one load shared by them, clear errors, and nothing left
 * behind after redeploys. Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type { Node } from 'node-red';
import type { LaneBackboneNode } from '../../nodes/lane-backbone/types.js';
import { runtimeName } from '../../nodes/lane-backbone/settings.js';
import { groceryTrainDir, modelDir } from '../support/shared.js';
import {
  TAB,
  backboneConfig,
  catchAll,
  caughtCode,
  caughtText,
  compiledModule,
  datasetConfig,
  helper,
  laneNodes,
  recorder,
  statuses,
  tempDir,
  waitForStatus,
  type FlowItem,
} from './support/lane-flow.js';

const engine = compiledModule<typeof import('../../src/engine/index.js')>('src/engine/index.js');
const nodes = laneNodes('lane-backbone', 'lane-dataset', 'lane-capture', 'lane-train');
const MODEL = modelDir('mobilenet-v2-0.35-features');
let work: string;

helper.init(require.resolve('node-red'));

before(async () => {
  work = tempDir('backbone');
  await helper.startServer();
});
afterEach(async () => {
  await helper.unload();
  helper.settings({});
});
after(async () => {
  await helper.stopServer();
  fs.rmSync(work, { recursive: true, force: true });
});

/** A backbone, a dataset and two capture nodes using both. */
function flow(source: string, backboneExtra: Record<string, unknown> = {}): FlowItem[] {
  return [
    TAB,
    backboneConfig('bb', source, backboneExtra),
    datasetConfig('ds', path.join(work, 'dataset'), path.join(work, 'models')),
    { id: 'cap1', z: 'f1', type: 'lane-capture', name: '', dataset: 'ds', backbone: 'bb', label: '', wires: [[]] },
    { id: 'cap2', z: 'f1', type: 'lane-capture', name: '', dataset: 'ds', backbone: 'bb', label: '', wires: [[]] },
  ];
}

const isReady = (s: { fill?: string; text?: string }) => s.fill === 'green' && /1280-d/.test(String(s.text));

test('loads real weights once for two users, who both show loading then ready with backend and size', async () => {
  await helper.load(nodes, flow(MODEL));
  const users = [helper.getNode('cap1'), helper.getNode('cap2')];
  for (const user of users) await waitForStatus(user, isReady, 'ready');

  const backbone = (helper.getNode('bb') as LaneBackboneNode).current();
  assert.ok(backbone, 'the config node holds the loaded backbone');
  assert.equal(backbone.featureSize, 1280);
  for (const user of users) {
    const texts = statuses(user).map((s) => String(s.text));
    const loading = texts.indexOf('lane-backbone.status.loading');
    const ready = texts.findIndex((t) => t.includes(`· ${runtimeName(backbone)} · 1280-d`));
    assert.ok(loading >= 0 && ready > loading, `loading, then ready: ${JSON.stringify(texts)}`);
  }
  // One copy in the process, held once by the config node for both users.
  assert.deepEqual(engine.sharedBackbones(), [{ id: backbone.id, users: 1 }]);

  const logged = helper
    .log()
    .args.map((args: unknown[]) => args[0] as { id?: string; msg?: unknown })
    .filter((entry) => entry.id === 'bb' && String(entry.msg).startsWith('lane-backbone.log.loaded'));
  assert.equal(logged.length, 1, 'the backend in use is logged once');
  // A backend or engine that could not be used is named on the status, with the reason in the log.
  const skipped = backbone.backend.skipped;
  if (skipped.length > 0) {
    assert.match(String(logged[0].msg), /lane-backbone\.log\.skipped/);
    // (The helper's RED._ returns keys, so the status is cut at 60 characters after the first name.)
    const expected = `lane-backbone.status.ready · ${runtimeName(backbone)} · 1280-d · ${skipped.map((s) => s.name).join(', ')} lane-backbone.status.skipped`;
    const shown = String(statuses(users[0]).at(-1)?.text);
    assert.ok(expected.startsWith(shown.replace(/\.\.\.$/, '')), shown);
  }
});

test('Precision int8 with a calibration folder loads the quantised backbone; int8 without one is a clear error', async () => {
  await helper.load(nodes, flow(MODEL, { engine: 'onnx', precision: 'int8', calibration: groceryTrainDir }));
  const user = helper.getNode('cap1');
  await waitForStatus(user, isReady, 'ready');
  const backbone = (helper.getNode('bb') as LaneBackboneNode).current();
  assert.equal(backbone?.precision, 'int8');
  assert.match(String(backbone?.id), /\+int8:/);
  await helper.unload();

  await helper.load(nodes, flow(MODEL, { precision: 'int8', calibration: '' }));
  const refused = helper.getNode('cap1');
  await waitForStatus(refused, (s) => s.fill === 'red', 'an error status');
  assert.match(String(statuses(refused).at(-1)?.text), /"precision" int8 needs "calibr/); // the status is cut at 60 characters
});

test('a model folder that does not exist shows a clear error on every user', async () => {
  const missing = path.join(work, 'no-such-model');
  await helper.load(nodes, [
    ...flow(missing),
    { id: 'tr', z: 'f1', type: 'lane-train', name: '', dataset: 'ds', backbone: 'bb', headKind: 'softmax', epochs: '', hiddenUnits: '', holdoutFraction: 0.2, seed: 1, targetPrecision: 0.95, activate: true, wires: [[], []] },
    ...catchAll('c1', ['tr']),
  ]);
  const message = `Model folder ${missing} does not exist: copy the model folder there or set the right path`;
  for (const id of ['cap1', 'cap2', 'tr']) {
    const status = await waitForStatus(helper.getNode(id), (s) => s.fill === 'red', 'error');
    // Status lines are cut to 60 characters; the start of the message shows.
    assert.ok(message.startsWith(String(status.text).replace(/\.\.\.$/, '')), String(status.text));
  }
  // The whole message reaches whoever needs the backbone.
  const caught = recorder(helper.getNode('c1-out'));
  helper.getNode('tr').receive({ payload: {} });
  const error = await caught.next();
  assert.equal(caughtText(error), message);
  assert.equal(caughtCode(error), 'MODEL_NOT_FOUND');
  assert.deepEqual(engine.sharedBackbones(), []);
});

test('a relative folder is found in the Node-RED user directory', async () => {
  const userDir = tempDir('userdir');
  fs.mkdirSync(path.join(userDir, 'backbones'));
  // A link, not a copy: the shared weights are never duplicated.
  fs.symlinkSync(MODEL, path.join(userDir, 'backbones', 'mnv2'));
  helper.settings({ userDir });
  try {
    await helper.load(nodes, flow('backbones/mnv2'));
    const config = helper.getNode('bb') as LaneBackboneNode;
    assert.equal(config.source, path.join(userDir, 'backbones', 'mnv2'));
    await waitForStatus(helper.getNode('cap1'), isReady, 'ready');
  } finally {
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});

test('an unknown preset name lists the presets; a bad region and a bad backend are refused with their field named', async () => {
  await helper.load(nodes, flow('mobilenet-v9'));
  const unknown = await waitForStatus(helper.getNode('cap1'), (s) => s.fill === 'red', 'error');
  assert.match(String(unknown.text), /neither a model folder nor a preset/);
  await helper.unload();

  await helper.load(nodes, flow(MODEL, { fit: 'roi', roiLeft: '10', roiTop: '0', roiWidth: 'wide', roiHeight: '100' }));
  const roi = await waitForStatus(helper.getNode('cap1'), (s) => s.fill === 'red', 'error');
  assert.match(String(roi.text), /width/);
  await helper.unload();

  await helper.load(nodes, flow(MODEL, { backend: 'gpu' }));
  const backend = await waitForStatus(helper.getNode('cap1'), (s) => s.fill === 'red', 'error');
  assert.match(String(backend.text), /Unknown backend "gpu"/);
});

test('a region of interest is handed to the users as a fit policy', async () => {
  await helper.load(nodes, flow(MODEL, { fit: 'roi', roiLeft: '10', roiTop: '20', roiWidth: '200', roiHeight: '150' }));
  const config = helper.getNode('bb') as LaneBackboneNode;
  assert.deepEqual(config.fit, { kind: 'roi', left: 10, top: 20, width: 200, height: 150 });
  assert.equal(config.backendPreference, 'auto');
  await waitForStatus(helper.getNode('cap1'), isReady, 'ready');
});

test('the editor gets the presets from the engine table', async () => {
  await helper.load(nodes, [backboneConfig('bb', MODEL)]);
  const res = await helper.request().get('/lane-vision/lane-backbone/presets').expect(200);
  assert.deepEqual(
    res.body.map((p: { name: string }) => p.name),
    engine.BACKBONE_PRESETS.map((p) => p.name),
  );
  assert.ok(res.body.every((p: { featureSize: number }) => p.featureSize > 0));
});

test('deploying and stopping 20 times keeps tf.memory().numTensors flat and releases the backbone', async () => {
  // On TensorFlow.js, so the weights really are tensors that must be disposed.
  const engineBefore = process.env.LANE_VISION_ENGINE;
  process.env.LANE_VISION_ENGINE = 'tfjs';
  try {
    const counts: number[] = [];
    for (let i = 0; i < 20; i++) {
      await helper.load(nodes, flow(MODEL));
      await waitForStatus(helper.getNode('cap2') as Node, isReady, 'ready');
      const backbone = (helper.getNode('bb') as LaneBackboneNode).current()!;
      assert.equal(backbone.engine.name, 'tfjs');
      assert.ok(tf.memory().numTensors > 100, 'the weights are loaded as tensors');
      await helper.unload();
      assert.deepEqual(engine.sharedBackbones(), [], 'released after the last user');
      counts.push(tf.memory().numTensors);
    }
    assert.equal(new Set(counts).size, 1, `tensor count after each cycle: ${counts.join(', ')}`);

    // Stopped while still loading: the model is released as soon as it arrives.
    await helper.load(nodes, flow(MODEL));
    await helper.unload();
    await new Promise((resolve) => setTimeout(resolve, 1500)); // a load takes ~0.1 s here
    assert.deepEqual(engine.sharedBackbones(), []);
    assert.equal(tf.memory().numTensors, counts[0]);
  } finally {
    if (engineBefore === undefined) delete process.env.LANE_VISION_ENGINE;
    else process.env.LANE_VISION_ENGINE = engineBefore;
  }
  // afterEach unloads again: load something cheap so it has a flow to stop.
  await helper.load(nodes, [TAB]);
});

test('the engine setting picks what runs the backbone: tfjs and auto load side by side; an unknown engine is refused', async () => {
  await helper.load(nodes, [
    TAB,
    backboneConfig('bb-tfjs', MODEL, { engine: 'tfjs' }),
    backboneConfig('bb-auto', MODEL, { engine: 'auto' }),
    datasetConfig('ds', path.join(work, 'dataset'), path.join(work, 'models')),
    { id: 'cap1', z: 'f1', type: 'lane-capture', name: '', dataset: 'ds', backbone: 'bb-tfjs', label: '', wires: [[]] },
    { id: 'cap2', z: 'f1', type: 'lane-capture', name: '', dataset: 'ds', backbone: 'bb-auto', label: '', wires: [[]] },
  ]);
  await waitForStatus(helper.getNode('cap1'), isReady, 'ready');
  await waitForStatus(helper.getNode('cap2'), isReady, 'ready');
  const forced = (helper.getNode('bb-tfjs') as LaneBackboneNode).current()!;
  const automatic = (helper.getNode('bb-auto') as LaneBackboneNode).current()!;
  assert.equal(forced.engine.name, 'tfjs');
  assert.equal(String(statuses(helper.getNode('cap1')).at(-1)?.text).includes(`· ${forced.backend.name} ·`), true);
  if (automatic.engine.name !== 'tfjs') {
    // ONNX Runtime is installed here: two copies, one per engine, not one shared by both.
    assert.notEqual(forced, automatic);
    assert.equal(engine.sharedBackbones().length, 2);
  }
  await helper.unload();

  await helper.load(nodes, flow(MODEL, { engine: 'cuda' }));
  const refused = await waitForStatus(helper.getNode('cap1'), (s) => s.fill === 'red', 'error');
  assert.match(String(refused.text), /cuda/);
});

test('a backbone from a URL shows its download (and its first ONNX conversion) on the users, logs it once, then turns ready', async () => {
  const { startModelServer } = await import('../lib/engine/model-server.js');
  const server = await startModelServer();
  const cache = tempDir('download-cache');
  const before = process.env.LANE_VISION_CACHE;
  process.env.LANE_VISION_CACHE = cache; // a fresh cache: the model must be downloaded
  try {
    await helper.load(nodes, flow(`${server.origin}/ok/mobilenet-v2-0.35-features/model.json`));
    const user = helper.getNode('cap1');
    await waitForStatus(user, isReady, 'ready');
    const texts = statuses(user).map((s) => String(s.text));
    const loading = texts.indexOf('lane-backbone.status.loading');
    const downloading = texts.indexOf('lane-backbone.status.downloading');
    const ready = texts.findIndex((t) => t.startsWith('lane-backbone.status.ready'));
    assert.ok(loading >= 0 && downloading > loading && ready > downloading, `loading, downloading, ready: ${JSON.stringify(texts)}`);
    // A fresh cache holds no ONNX conversion either: on ONNX Runtime the first start says it converts, after the download.
    const converting = texts.indexOf('lane-backbone.status.converting');
    if ((helper.getNode('bb') as LaneBackboneNode).current()?.engine.name !== 'tfjs') {
      assert.ok(converting > downloading && ready > converting, `downloading, converting, ready: ${JSON.stringify(texts)}`);
    }
    const logged = helper
      .log()
      .args.map((args: unknown[]) => args[0] as { id?: string; msg?: unknown })
      .filter((entry) => entry.id === 'bb' && String(entry.msg).startsWith('lane-backbone.log.downloaded'));
    assert.equal(logged.length, 1, 'one log line for the download, not one per chunk');
  } finally {
    if (before === undefined) delete process.env.LANE_VISION_CACHE;
    else process.env.LANE_VISION_CACHE = before;
    await server.close();
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
