/**
 * lane-classify in a Node-RED runtime (node-red-node-test-helper, compiled nodes from dist/)
 * with the real lane-backbone and lane-dataset config nodes, real MobileNet weights and the
 * grocery photos: a store is trained here with the library's retrain, and the node is
 * scored on val photos it never trained on. Run `npm run build` first.
 *
 * The library is loaded from dist/ too, so the test and the nodes share one model-store
 * registry and one backbone registry (a retrain here is seen by the node, as in Node-RED).
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Node, NodeAPI, NodeInitializer, NodeMessage } from 'node-red';
import type * as Lib from '../../src/index.js';
import type { Backbone, Dataset, FeatureCache, ModelStore } from '../../src/index.js';
import type { LaneBrokerNode } from '../../nodes/lane-broker/types.js';
import { startSorter, validateEvent } from '../lib/events/scenarios.js';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../support/shared.js';
import {
  TAB,
  backboneConfig,
  caughtCode,
  compiledModule,
  compiledNode,
  datasetConfig,
  helper,
  lastStatus as lastStatusOf,
  statuses,
  waitFor,
  type FlowItem,
} from './support/lane-flow.js';

const lib = compiledModule<typeof Lib>('src/index.js');

helper.init(require.resolve('node-red'));

const NODE_TYPES = ['lane-backbone', 'lane-dataset', 'lane-classify'];

/**
 * The nodes with their real en-US messages: the helper's RED._ returns the key, and the
 * tests should read what an engineer reads.
 */
function withMessages(types: string[]): NodeInitializer[] {
  const catalog: Record<string, unknown> = {};
  for (const type of types) {
    Object.assign(catalog, JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'dist', 'nodes', type, 'locales', 'en-US', `${type}.json`), 'utf8')));
  }
  const translate = (key: string, vars: Record<string, unknown> = {}) => {
    const text = key.split('.').reduce<any>((at, part) => at?.[part], catalog);
    return typeof text === 'string' ? text.replace(/__(\w+)__/g, (_, name) => String(vars[name])) : key;
  };
  return types.map((type) => {
    const init = compiledNode(type) as NodeInitializer;
    return (RED: NodeAPI) => {
      RED._ = translate as NodeAPI['_'];
      return init(RED);
    };
  });
}
const nodes = withMessages(NODE_TYPES);
const withEvents = withMessages([...NODE_TYPES, 'lane-broker', 'lane-events']);

const CLASSES = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice', 'Yoggi-Strawberry-Yoghurt'];
const FEATURES_MODEL = modelDir('mobilenet-v2-0.35-features');
const IMAGENET_MODEL = modelDir('mobilenet-v2-1.0-imagenet');
/** Another network (256-d features): models trained on it do not fit FEATURES_MODEL. */
const OTHER_MODEL = modelDir('mobilenet-v1-0.25-imagenet');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const waitUntil = (predicate: () => boolean, what: string) => waitFor(predicate, what);

/** Everything a helper node receives, in order. */
function collect(id: string): any[] {
  const messages: any[] = [];
  helper.getNode(id).on('input', (msg: unknown) => messages.push(msg));
  return messages;
}

const statusesOf = (id: string) => statuses(helper.getNode(id));
const lastStatus = (id: string) => lastStatusOf(helper.getNode(id)) ?? {};

const send = (msg: object, id = 'c1') => (helper.getNode(id) as Node).receive(msg as NodeMessage);

/** Val photos (never trained on) of the classes, with their true label. */
function valFrames(classes = CLASSES): { label: string; image: Buffer }[] {
  return classes.flatMap((label) => classImages(groceryValDir, label).map((file) => ({ label, image: fs.readFileSync(file) })));
}

interface FlowOptions {
  classify?: Record<string, unknown>;
  backboneSource?: string;
  modelsFolder?: string;
}

function classifyFlow(options: FlowOptions = {}): FlowItem[] {
  const classify = { mode: 'trained', threshold: 0.6, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], outputs: 1, ...options.classify };
  const outputs = Number(classify.outputs);
  return [
    TAB,
    backboneConfig('bb', options.backboneSource ?? FEATURES_MODEL),
    datasetConfig('ds', datasetDir, options.modelsFolder ?? path.join(work, 'models')),
    {
      id: 'c1',
      z: 'f1',
      type: 'lane-classify',
      name: '',
      backbone: 'bb',
      dataset: 'ds',
      ...classify,
      wires: Array.from({ length: outputs }, (_, i) => [`o${i}`]),
    },
    ...Array.from({ length: outputs }, (_, i) => ({ id: `o${i}`, z: 'f1', type: 'helper' })),
    { id: 'cc', z: 'f1', type: 'catch', scope: ['c1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', z: 'f1', type: 'helper' },
  ];
}

let work: string;
let datasetDir: string;
let backbone: Backbone;
let dataset: Dataset;
let cache: FeatureCache;
let released = false;

/** A model store in its own folder with `versions` retrains of the 3-class dataset. */
async function trainedStore(name: string, versions: number): Promise<{ dir: string; store: ModelStore }> {
  const dir = path.join(work, name);
  const store = await lib.openModelStore(dir);
  for (let i = 0; i < versions; i++) await lib.retrain({ dataset, backbone, store, cache, seed: i + 1 });
  return { dir, store };
}

before(async () => {
  await helper.startServer();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-classify-node-'));
  datasetDir = path.join(work, 'dataset');
  backbone = await lib.acquireBackbone(FEATURES_MODEL);
  cache = new lib.FeatureCache();
  dataset = await lib.openDataset(datasetDir);
  for (const label of CLASSES) {
    for (const file of classImages(groceryTrainDir, label).slice(0, 20)) await dataset.add(label, file, { source: 'test' });
  }
  await trainedStore('models', 1);
});
after(async () => {
  if (!released) backbone.release();
  await helper.stopServer();
  fs.rmSync(work, { recursive: true, force: true });
});
afterEach(() => helper.unload());

test('trained mode classifies unseen photos with the active model and reports its fields', async () => {
  await helper.load(nodes, classifyFlow({ classify: { threshold: 0.5 } }));
  const out = collect('o0');
  const caught = collect('caught');
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'ready');
  const frames = valFrames();
  const statusesBefore = statusesOf('c1').length;
  const started = Date.now();
  frames.forEach((frame, i) => send({ payload: frame.image, truth: frame.label, frame: { index: i, source: 'folder' } }));
  await waitUntil(() => out.length === frames.length, 'every frame classified');
  const statusUpdates = statusesOf('c1').length - statusesBefore;
  assert.ok(statusUpdates <= Math.ceil((Date.now() - started) / 500) + 1, `${statusUpdates} status updates: at most 2 a second`);
  assert.equal(caught.length, 0);

  let correct = 0;
  for (const [i, msg] of out.entries()) {
    const result = msg.classification;
    assert.equal(msg.truth, frames[i].label, 'outputs keep arrival order');
    assert.deepEqual(msg.frameInfo, { index: i, source: 'folder' }, "a lane source's msg.frame moves to msg.frameInfo");
    assert.equal(msg.frame, undefined, 'results carry no frame unless asked (Frame setting, off by default)');
    assert.equal(msg.payload, result.label);
    assert.equal(result.modelVersion, 1);
    assert.equal(result.backend, backbone.backend.name);
    assert.equal(result.backboneId, backbone.id);
    assert.equal(result.engine, backbone.engine.name);
    assert.equal(result.threshold, 0.5);
    assert.equal(result.topK.length, 3);
    assert.ok(result.topK.every((r: { label: string }) => CLASSES.includes(r.label)));
    assert.equal(result.accepted, result.label !== 'unknown');
    assert.equal(result.accepted, result.confidence >= 0.5);
    assert.equal(result.code === 0, result.label === 'unknown');
    assert.match(result.frameHash, /^[0-9a-f]{64}$/);
    assert.ok(result.timings.featuresMs > 0 && result.timings.totalMs >= result.timings.featuresMs);
    if (result.topK[0].label === frames[i].label) correct++;
  }
  // Measured 9/15 here (chance 5/15): hand-held shelf photos, 20 examples per class.
  assert.ok(correct >= 8, `unseen top-1 accuracy ${correct}/15`);
  await waitUntil(() => /^v1 · \w+ · \d+ ms/.test(lastStatus('c1').text ?? ''), 'the status line');
  assert.match(lastStatus('c1').text!, new RegExp(`^v1 · ${backbone.backend.name} · \\d+ ms`));

  const labels = await helper.request().get('/lane-vision/lane-classify/c1/labels');
  assert.equal(labels.status, 200);
  assert.deepEqual({ ...labels.body, labels: [...labels.body.labels].sort() }, { labels: [...CLASSES].sort(), modelVersion: 1, mode: 'trained' });
  assert.equal((await helper.request().get('/lane-vision/lane-classify/nope/labels')).status, 404);
});

test('typedInputs: the frame from another property, the label to another, a global threshold read before each batch and a bad one reported once', async () => {
  await helper.load(nodes, classifyFlow({ classify: { property: 'camera.image', outputProperty: 'decision', threshold: 'laneThreshold', thresholdType: 'global' } }));
  const out = collect('o0');
  const caught = collect('caught');
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'ready');
  const [frame, other] = valFrames();
  const node = helper.getNode('c1') as Node;
  node.context().global.set('laneThreshold', 0.99);
  send({ camera: { image: frame.image, id: 7 }, payload: 'kept' });
  await waitUntil(() => out.length === 1, 'classified');
  assert.equal(out[0].payload, 'kept', 'msg.payload is left alone');
  assert.equal(out[0].decision, out[0].classification.label);
  assert.equal(out[0].camera.image, undefined, 'the frame leaves the result');
  assert.equal(out[0].camera.id, 7);
  assert.equal(out[0].classification.threshold, 0.99, 'the global threshold applies');

  const warnings: string[] = [];
  const warn = node.warn.bind(node);
  node.warn = (text: unknown) => {
    warnings.push(String(text));
    warn(text);
  };
  node.context().global.set('laneThreshold', 'lots');
  for (let i = 0; i < 3; i++) send({ camera: { image: other.image } });
  await waitUntil(() => out.length === 4, 'classified with the threshold still in use');
  assert.equal(warnings.filter((text) => /laneThreshold/.test(text)).length, 1, `one warning for the bad value, not one per frame: ${warnings.join(' | ')}`);
  assert.ok(out.slice(1).every((msg) => msg.classification.threshold === 0.99));
  assert.equal(caught.length, 0);
});

test('a file path in msg.payload is classified only with "Read image files" on, and only inside its folders', async () => {
  const photo = classImages(groceryValDir, CLASSES[0])[0];
  const elsewhere = classImages(groceryTrainDir, CLASSES[0])[0];
  await helper.load(nodes, classifyFlow({ classify: { threshold: 0.5 } }));
  let out = collect('o0');
  let caught = collect('caught');
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'ready');
  send({ payload: photo, seq: 1 });
  send({ payload: fs.readFileSync(photo), seq: 2 });
  await waitUntil(() => out.length + caught.length === 2, 'both frames answered');
  assert.deepEqual([caught.length, caught[0].error.code], [1, 'IMAGE_FILES_OFF'], 'off by default: the path is not read');
  assert.equal(out[0].seq, 2, 'the frame after it is classified');
  await helper.unload();

  await helper.load(nodes, classifyFlow({ classify: { threshold: 0.5, readFiles: true, fileFolders: groceryValDir, includeFrame: true } }));
  out = collect('o0');
  caught = collect('caught');
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'ready');
  send({ payload: photo, seq: 3 });
  send({ payload: elsewhere, seq: 4 });
  await waitUntil(() => out.length + caught.length === 2, 'both frames answered');
  assert.deepEqual(out.map((m) => m.seq), [3]);
  assert.ok(Buffer.isBuffer(out[0].frame) && out[0].frame.equals(fs.readFileSync(photo)), 'msg.frame holds the bytes: later nodes never read the path again');
  assert.deepEqual([caught.length, caught[0].error.code], [1, 'IMAGE_FILE_NOT_ALLOWED']);
});

test('one output per label: listed labels go to their output, unknown and unlisted labels to the last', async () => {
  const listed = CLASSES.slice(0, 2);
  await helper.load(nodes, classifyFlow({ classify: { splitOutputs: true, labels: listed, outputs: 3, threshold: 0.5 } }));
  const outputs = [collect('o0'), collect('o1'), collect('o2')];
  const frames = valFrames();
  for (const frame of frames) send({ payload: frame.image });
  await waitUntil(() => outputs.flat().length === frames.length, 'every frame routed');
  await sleep(100);
  assert.equal(outputs.flat().length, frames.length, 'each frame goes to exactly one output');
  outputs[0].forEach((msg) => assert.equal(msg.payload, listed[0]));
  outputs[1].forEach((msg) => assert.equal(msg.payload, listed[1]));
  outputs[2].forEach((msg) => assert.ok(!listed.includes(msg.payload), `${msg.payload} is not listed`));
  assert.ok(outputs[0].length > 0 && outputs[1].length > 0, 'both listed labels were decided');
  assert.ok(outputs[2].some((msg) => msg.payload === CLASSES[2]), 'an unlisted label went to the last output');
});

test('a retrain and a rollback in the store are picked up while frames flow, none dropped, order kept', async () => {
  const { dir, store } = await trainedStore('models-flow', 1);
  await helper.load(nodes, classifyFlow({ modelsFolder: dir }));
  const out = collect('o0');
  const caught = collect('caught');
  const frames = valFrames();
  let sent = 0;
  let sending = true;
  const sender = (async () => {
    while (sending) {
      send({ payload: frames[sent % frames.length].image, seq: sent });
      sent++;
      await sleep(40);
    }
  })();
  const versionsAfter = (count: number, version: number) => () => out.slice(count).filter((m) => m.classification.modelVersion === version).length >= 3;

  await waitUntil(() => out.length >= 3, 'frames with v1');
  const retrained = await lib.retrain({ dataset, backbone, store, cache, seed: 9 });
  assert.equal(retrained.version, 2);
  const atRetrain = out.length;
  await waitUntil(versionsAfter(atRetrain, 2), 'frames with v2');
  await store.rollback();
  const atRollback = out.length;
  await waitUntil(versionsAfter(atRollback, 1), 'frames with v1 again');
  sending = false;
  await sender;
  await waitUntil(() => out.length === sent, `all ${sent} frames out`);

  assert.equal(caught.length, 0, 'no frame failed at a swap');
  assert.deepEqual(out.map((m) => m.seq), [...Array(sent).keys()], 'count in == count out, in order');
  // Versions change only at the swaps: v1 ... v2 ... v1.
  const runs = out.map((m) => m.classification.modelVersion).filter((v, i, all) => i === 0 || v !== all[i - 1]);
  assert.deepEqual(runs, [1, 2, 1]);
  assert.match(lastStatus('c1').text!, /^v1 · /);
});

test('a saturated lane (two batches in flight) takes up a rollback between whole batches, results in frame order, none dropped', async () => {
  const { dir, store } = await trainedStore('models-saturated', 2);
  await helper.load(nodes, classifyFlow({ modelsFolder: dir, classify: { maxBatch: 4, queueLimit: 1000 } }));
  const out = collect('o0');
  const caught = collect('caught');
  await waitUntil(() => /^v2 · /.test(lastStatus('c1').text ?? ''), 'ready with v2');
  // Bursts of 12 whenever at most 4 are outstanding: a full batch always waits, so the second
  // batch runs beside the first whenever one is in the worker.
  let sent = 0;
  const burst = () => {
    flood(12, sent);
    sent += 12;
  };
  burst();
  await waitUntil(() => out.length >= 4, 'frames with v2');
  await store.rollback();
  const atRollback = out.length;
  while (out.slice(atRollback).filter((m) => m.classification.modelVersion === 1).length < 8) {
    await waitUntil(() => sent - out.length <= 4, 'the lane caught up');
    burst();
  }
  await waitUntil(() => out.length === sent, `all ${sent} frames out`);

  assert.equal(caught.length, 0);
  assert.deepEqual(out.map((m) => m.seq), range(0, sent), 'count in == count out, in frame order');
  assert.deepEqual(
    out.map((m) => m.classification.modelVersion).filter((v, i, all) => i === 0 || v !== all[i - 1]),
    [2, 1],
    'the version changes once, at the rollback',
  );
  // Results leave batch after batch: each batch's frames are consecutive, with one model and one backbone.
  for (let i = 0; i < out.length; ) {
    const size = out[i].laneVision.batchSize;
    const batch = out.slice(i, i + size);
    assert.ok(batch.length === size && batch.every((m) => m.laneVision.batchSize === size), `a whole batch of ${size} at ${i}`);
    assert.equal(new Set(batch.map((m) => m.classification.modelVersion)).size, 1, `one model for the batch at ${i}`);
    assert.ok(batch.every((m) => m.classification.backboneId === backbone.id), 'through the lane backbone');
    i += size;
  }
});

test('rollback and threshold commands change the model and threshold, send nothing, and bad ones are caught', async () => {
  const { dir, store } = await trainedStore('models-commands', 2);
  await helper.load(nodes, classifyFlow({ modelsFolder: dir }));
  const out = collect('o0');
  const caught = collect('caught');
  const [frame] = valFrames([CLASSES[1]]);
  const classifyOnce = async () => {
    const before = out.length;
    send({ payload: frame.image });
    await waitUntil(() => out.length === before + 1, 'one frame out');
    return out[before].classification;
  };

  const first = await classifyOnce();
  assert.equal(first.modelVersion, 2);
  send({ topic: 'rollback' });
  assert.equal((await classifyOnce()).modelVersion, 1, 'frames after the command use the previous version');
  assert.match(lastStatus('c1').text!, /^v1 · /);
  send({ topic: 'rollback', payload: 'v0002' });
  assert.equal((await classifyOnce()).modelVersion, 2);
  send({ topic: 'rollback', payload: 1 });
  assert.equal((await classifyOnce()).modelVersion, 1);

  send({ topic: 'threshold', payload: 1 });
  const strict = await classifyOnce();
  assert.equal(strict.label, 'unknown');
  assert.equal(strict.threshold, 1);
  assert.equal(strict.accepted, false);
  assert.ok(strict.topK[0].confidence < 1);
  await waitUntil(() => /1\/\d+ unknown/.test(lastStatus('c1').text ?? ''), 'the unknown count in the status');
  send({ topic: 'threshold', payload: '0' });
  const lax = await classifyOnce();
  assert.equal(lax.accepted, true);
  assert.equal(lax.label, lax.topK[0].label);
  send({ topic: 'threshold', payload: 'model' });
  const v1Point = (await store.readMetadata(1)).openSet?.operatingPoint;
  assert.ok(v1Point, 'v1 stores its operating point');
  assert.equal((await classifyOnce()).threshold, v1Point.confidence, "'model' goes to the operating point of the model in use, not the node's 0.6");
  assert.equal(first.threshold, 0.6, "the node's setting was in force before");

  const commands = out.length;
  send({ topic: 'threshold', payload: 1.5 });
  send({ topic: 'threshold', payload: 'high' });
  send({ topic: 'rollback', payload: { version: 1 } });
  send({ topic: 'rollback', payload: 9 });
  await waitUntil(() => caught.length === 4, 'four caught errors');
  assert.equal(out.length, commands, 'commands send no frame');
  assert.deepEqual(caught.map(caughtCode), ['THRESHOLD_INVALID', 'THRESHOLD_INVALID', 'CLASSIFY_BAD_COMMAND', 'MODEL_VERSION_NOT_FOUND']);
  assert.match(caught[0].error.message, /threshold command needs msg.payload from 0 to 1 \(or "model"\), got 1.5/);
  assert.match(caught[1].error.message, /got "high"/);
  assert.match(caught[2].error.message, /rollback command takes no payload/);
  assert.match(caught[3].error.message, /v0009 is not in/);
  assert.ok(caught.every((msg) => msg.error.source.id === 'c1'));
  assert.equal((await classifyOnce()).modelVersion, 1, 'a failed rollback keeps the model');
});

test('before any model: a clear error and a warning status; the first training is picked up without redeploy', async () => {
  const dir = path.join(work, 'models-empty');
  await helper.load(nodes, classifyFlow({ modelsFolder: dir }));
  const out = collect('o0');
  const caught = collect('caught');
  await waitUntil(() => lastStatus('c1').fill === 'yellow', 'the warning status');
  assert.equal(lastStatus('c1').text, 'no trained model yet');
  const [frame] = valFrames([CLASSES[0]]);
  send({ payload: frame.image });
  await waitUntil(() => caught.length === 1, 'the caught error');
  assert.match(caught[0].error.message, /no trained model yet: capture examples and train/);
  assert.equal(caughtCode(caught[0]), 'CLASSIFY_NO_MODEL');

  await lib.retrain({ dataset, backbone, store: await lib.openModelStore(dir), cache });
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'the first model taken up');
  send({ payload: frame.image });
  await waitUntil(() => out.length === 1, 'a classified frame');
  assert.equal(out[0].classification.modelVersion, 1);
});

test('"No model: skip" (a free-running lane): one error for the fault, the other frames counted on the status, not one error each', async () => {
  const dir = path.join(work, 'models-empty-skip');
  await helper.load(nodes, classifyFlow({ modelsFolder: dir, classify: { unreadyFrames: 'skip' } }));
  const out = collect('o0');
  const caught = collect('caught');
  await waitUntil(() => lastStatus('c1').fill === 'yellow', 'the warning status');
  const [frame] = valFrames([CLASSES[0]]);
  for (let i = 0; i < 6; i++) send({ payload: frame.image, seq: i });
  await waitUntil(() => /5 frames skipped/.test(lastStatus('c1').text ?? ''), 'the skipped frames counted on the status');
  assert.equal(caught.length, 1, 'one error for the fault, not one per frame');
  assert.equal(caughtCode(caught[0]), 'CLASSIFY_NO_MODEL');
  assert.equal(caught[0].seq, 0, 'the first frame carries the reason');
  assert.equal(out.length, 0);

  await lib.retrain({ dataset, backbone, store: await lib.openModelStore(dir), cache });
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'the first model taken up');
  send({ payload: frame.image });
  await waitUntil(() => out.length === 1, 'a classified frame');
  assert.equal(caught.length, 1);
});

test('a model trained on another backbone is refused with a warning, the one in use stays, the next good one is taken up', async () => {
  const { dir, store } = await trainedStore('models-mismatch', 1);
  await helper.load(nodes, classifyFlow({ modelsFolder: dir }));
  const out = collect('o0');
  const caught = collect('caught');
  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'ready with v1');
  const other = await lib.acquireBackbone(OTHER_MODEL);
  try {
    assert.equal((await lib.retrain({ dataset, backbone: other, store, cache })).version, 2);
  } finally {
    other.release();
  }
  await waitUntil(() => lastStatus('c1').fill === 'yellow', 'the warning status');
  assert.match(lastStatus('c1').text!, /^v1 · .*v2 refused/);
  const [frame] = valFrames([CLASSES[0]]);
  send({ payload: frame.image });
  await waitUntil(() => out.length === 1, 'a frame classified');
  assert.equal(out[0].classification.modelVersion, 1, 'the model in use stays');

  assert.equal((await lib.retrain({ dataset, backbone, store, cache })).version, 3);
  await waitUntil(() => /^v3 · /.test(lastStatus('c1').text ?? '') && lastStatus('c1').fill === 'green', 'v3 taken up');
  send({ payload: frame.image });
  await waitUntil(() => out.length === 2, 'a frame with v3');
  assert.equal(out[1].classification.modelVersion, 3);
  assert.equal(caught.length, 0);
});

test('bad frames (corrupt, huge, wrong type) reach a catch node and the next frame still works', async () => {
  await helper.load(nodes, classifyFlow());
  const out = collect('o0');
  const caught = collect('caught');
  const bad = [Buffer.from('not an image, just text'), hugePng(30000, 30000), 42, { data: new Uint8Array(10), width: 5, height: 5, channels: 3 }];
  for (const payload of bad) send({ payload });
  const [frame] = valFrames([CLASSES[2]]);
  send({ payload: frame.image, good: true });
  await waitUntil(() => caught.length === bad.length && out.length === 1, 'four errors and one result');
  assert.match(caught[0].error.message, /text, not a JPEG/);
  assert.match(caught[1].error.message, /30000x30000.*refused before decoding/);
  assert.match(caught[2].error.message, /got a number/);
  assert.match(caught[3].error.message, /needs 75 bytes/);
  assert.equal(out[0].good, true);
  assert.equal(out[0].classification.topK.length, 3);
});

test('frames that queue up go through the backbone together, up to max batch, each with its own output', async () => {
  await helper.load(nodes, classifyFlow({ classify: { maxBatch: 4 } }));
  const out = collect('o0');
  await waitUntil(() => /^v1/.test(lastStatus('c1').text ?? ''), 'ready');
  const frames = valFrames().slice(0, 11);
  frames.forEach((frame, seq) => send({ payload: frame.image, seq }));
  await waitUntil(() => out.length === frames.length, 'every frame out');
  assert.deepEqual(out.map((m) => m.seq), [...frames.keys()]);
  // The first frame starts alone; the ten that arrived meanwhile go in batches of at most 4.
  assert.deepEqual(out.map((m) => m.laneVision.batchSize), [1, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2]);
  assert.ok(out[10].classification.timings.queueMs > out[0].classification.timings.queueMs, 'later frames waited');
});

/** What the backbone node logged since the flow was loaded (info and warnings), as text. */
function backboneLogs(): string[] {
  return helper
    .log()
    .args.map((args: unknown[]) => args[0] as { id?: string; msg?: unknown })
    .filter((entry) => entry.id === 'bb')
    .map((entry) => String(entry.msg));
}

test('frames are decoded and embedded in the backbone node\'s inference worker; LANE_VISION_INFERENCE_THREAD=main gives the same results on the main thread', async () => {
  const frames = valFrames().slice(0, 4);
  const workerStarts = () => backboneLogs().filter((text) => /^Inference worker thread \d+ ready: /.test(text));
  const classifyAll = async () => {
    await helper.load(nodes, classifyFlow());
    const out = collect('o0');
    await waitUntil(() => /^v1/.test(lastStatus('c1').text ?? ''), 'ready');
    frames.forEach((frame, seq) => send({ payload: frame.image, seq }));
    await waitUntil(() => out.length === frames.length, 'every frame out');
    return out.map((m) => m.classification);
  };
  const inWorker = await classifyAll();
  await waitUntil(() => workerStarts().length === 1, 'the inference worker logged its start');
  await helper.unload();
  process.env.LANE_VISION_INFERENCE_THREAD = 'main';
  try {
    const onMain = await classifyAll();
    assert.deepEqual(workerStarts(), [], 'no worker was started');
    onMain.forEach((result, i) => {
      assert.equal(result.label, inWorker[i].label);
      assert.ok(Math.abs(result.confidence - inWorker[i].confidence) < 1e-4, `frame ${i}: ${result.confidence} vs ${inWorker[i].confidence}`);
    });
  } finally {
    delete process.env.LANE_VISION_INFERENCE_THREAD;
  }
});

test('a fine-tuned version is served by an inference worker of its own; a rollback serves the base backbone again', async () => {
  const { dir, store } = await trainedStore('models-fine-tune', 1);
  const tuned = await lib.retrain({ dataset, backbone, store, cache, strategy: 'fine-tune', fineTune: { blocks: 1, epochs: 2, keep: 'last' }, trainViews: 0 });
  const tunedId = (await store.readMetadata(tuned.version)).backbone.id;
  assert.notEqual(tunedId, backbone.id);
  const workerStarts = () => backboneLogs().filter((text) => /^Inference worker thread \d+ ready: /.test(text));
  await helper.load(nodes, classifyFlow({ modelsFolder: dir }));
  const out = collect('o0');
  await waitUntil(() => /^v2/.test(lastStatus('c1').text ?? ''), 'the tuned version in use');
  const [frame] = valFrames([CLASSES[2]]);
  send({ payload: frame.image });
  await waitUntil(() => out.length === 1, 'a classified frame');
  assert.equal(out[0].classification.modelVersion, 2);
  assert.equal(out[0].classification.backboneId, tunedId, 'features from the tuned backbone');
  await waitUntil(() => workerStarts().length === 2, "the base backbone's inference worker, and the tuned backbone's own");

  await store.rollback();
  await waitUntil(() => /^v1/.test(lastStatus('c1').text ?? ''), 'v1 taken up without a redeploy');
  send({ payload: frame.image });
  await waitUntil(() => out.length === 2, 'a frame after the rollback');
  assert.equal(out[1].classification.modelVersion, 1);
  assert.equal(out[1].classification.backboneId, backbone.id, 'the frozen version is served by the base backbone');
});

test('deploying and stopping five times leaves no inference thread behind', async () => {
  const threadsOfProcess = () => fs.readdirSync('/proc/self/task').length;
  const cycle = async () => {
    await helper.load(nodes, classifyFlow());
    const out = collect('o0');
    await waitUntil(() => /^v1/.test(lastStatus('c1').text ?? ''), 'ready');
    send({ payload: valFrames()[0].image });
    await waitUntil(() => out.length === 1, 'the frame classified');
    await helper.unload();
  };
  await cycle(); // pools that start once per process (libuv, V8) are up from here on
  const before = threadsOfProcess();
  for (let i = 0; i < 5; i++) await cycle();
  assert.ok(threadsOfProcess() <= before, `${threadsOfProcess()} threads after five deploys, ${before} before`);
});

test('an unknown LANE_VISION_INFERENCE_THREAD fails the node with a clear error', async () => {
  process.env.LANE_VISION_INFERENCE_THREAD = 'gpu';
  try {
    await helper.load(nodes, classifyFlow());
    const caught = collect('caught');
    await waitUntil(() => lastStatus('c1').fill === 'red', 'error status');
    assert.match(lastStatus('c1').text ?? '', /LANE_VISION_INFERENCE_THREAD/);
    send({ payload: valFrames()[0].image });
    await waitUntil(() => caught.length === 1, 'the frame failed');
    assert.equal(caughtCode(caught[0]), 'INFERENCE_THREAD_UNKNOWN');
  } finally {
    delete process.env.LANE_VISION_INFERENCE_THREAD;
  }
});

// ---------------------------------------------------------------------------
// Backpressure: frames sent faster than the node classifies them.

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** The flow with a complete node scoped to the classify node, into helper `completed`. */
function withCompletion(flow: FlowItem[]): FlowItem[] {
  return [
    ...flow,
    { id: 'cp', z: 'f1', type: 'complete', scope: ['c1'], uncaught: false, wires: [['completed']] },
    { id: 'completed', z: 'f1', type: 'helper' },
  ];
}

/** Sends `count` frames at once (val photos over and over), msg.seq = 0, 1, ...: far faster than they can be classified. */
function flood(count: number, from = 0): void {
  const frames = valFrames();
  for (let seq = from; seq < from + count; seq++) send({ payload: frames[seq % frames.length].image, seq });
}

/** Every call of a Node method on one node (the helper spies on them). */
function calls(id: string, method: 'warn' | 'log'): unknown[] {
  const seen: unknown[] = [];
  (helper.getNode(id) as unknown as NodeJS.EventEmitter).on(`call:${method}`, (call: { args: unknown[] }) => seen.push(call.args[0]));
  return seen;
}

const ready = () => waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'ready');

test('drop-oldest: a flood keeps the newest frames, counts every other one as dropped, completes each, warns once', async () => {
  await helper.load(nodes, withCompletion(classifyFlow({ classify: { maxBatch: 4, queueLimit: 10, overflow: 'drop-oldest' } })));
  const out = collect('o0');
  const caught = collect('caught');
  const completed = collect('completed');
  const warnings = calls('c1', 'warn');
  await ready();
  flood(60);
  await waitUntil(() => out.length === 15 && completed.length === 60, 'fifteen results and sixty completions');
  // The first frame found the backbone idle and ran alone; the next four filled a batch, which
  // went to the inference worker beside it (two batches in flight). Those five are classified,
  // not waiting; of the 55 that came while they ran, the newest 10 (the queue limit) waited.
  assert.deepEqual(out.map((m) => m.seq), [...range(0, 5), ...range(50, 60)], 'results in frame order');
  assert.deepEqual(out.map((m) => m.laneVision.batchSize), [1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2]);
  const last = out.at(-1).laneVision;
  assert.equal(last.classifier, 'c1');
  assert.deepEqual(last.queue, { queued: 0, maxQueued: 10, processed: 15, failed: 0, dropped: 45, droppedBy: { queueFull: 45, safetyCap: 0 } });
  assert.equal(last.queue.processed + last.queue.dropped, 60, 'sent = processed + dropped');
  assert.deepEqual(out.map((m) => m.laneVision.queue.processed), range(1, 16), 'each result carries the counts up to itself');
  // How many still wait when a result leaves depends on which batch the worker finishes
  // first; that never more than the limit wait, and that the queue drains, does not.
  const waiting = out.map((m) => m.laneVision.queue.queued);
  assert.equal(waiting[0], 10, 'the queue was full when the first result went out');
  assert.ok(waiting.every((n, i) => n <= 10 && (i === 0 || n <= waiting[i - 1])), `frames waiting when each result went out: ${waiting}`);
  assert.equal(waiting.at(-1), 0);

  const dropped = completed.filter((m) => m.laneVision?.dropped !== undefined);
  assert.deepEqual(dropped.map((m) => m.seq).sort((a, b) => a - b), range(5, 50), 'dropped frames complete too');
  assert.ok(dropped.every((m) => m.laneVision.dropped === 'queueFull' && m.classification === undefined));
  assert.equal(caught.length, 0, 'a dropped frame is no error');

  for (const msg of out) {
    const t = msg.classification.timings;
    for (const key of ['queueMs', 'decodeMs', 'featuresMs', 'headMs', 'totalMs']) assert.ok(Number.isFinite(t[key]) && t[key] >= 0, `${key} = ${t[key]}`);
    assert.ok(t.totalMs >= t.queueMs && t.totalMs >= t.decodeMs + t.featuresMs, 'total runs from arrival to result');
  }
  assert.ok(out[14].classification.timings.queueMs > out[0].classification.timings.queueMs, 'the last frame waited behind the others');

  await waitUntil(() => /45 dropped/.test(lastStatus('c1').text ?? ''), 'the drop count on the status');
  assert.equal(warnings.length, 1, 'one warning for the whole flood');
  assert.match(String(warnings[0]), /Frames dropped: 1 so far \(queue limit 10 reached, policy drop-oldest\)/);
});

test('drop-newest: a flood keeps the first frames and drops the rest', async () => {
  await helper.load(nodes, withCompletion(classifyFlow({ classify: { maxBatch: 4, queueLimit: 10, overflow: 'drop-newest' } })));
  const out = collect('o0');
  const completed = collect('completed');
  await ready();
  flood(60);
  await waitUntil(() => out.length === 15 && completed.length === 60, 'fifteen results and sixty completions');
  // Frame 0 and the batch 1-4 run (two batches in flight), 5-14 wait (the limit), the rest are refused.
  assert.deepEqual(out.map((m) => m.seq), range(0, 15));
  assert.deepEqual(out.at(-1).laneVision.queue, { queued: 0, maxQueued: 10, processed: 15, failed: 0, dropped: 45, droppedBy: { queueFull: 45, safetyCap: 0 } });
  const dropped = completed.filter((m) => m.laneVision?.dropped === 'queueFull');
  assert.deepEqual(dropped.map((m) => m.seq).sort((a, b) => a - b), range(15, 60));
});

test('block: nothing is dropped, each frame completes only after its result; past the safety cap frames are refused with an error', async () => {
  await helper.load(nodes, withCompletion(classifyFlow({ classify: { maxBatch: 4, queueLimit: 2, overflow: 'block' } })));
  const out = collect('o0');
  const caught = collect('caught');
  const completed: any[] = [];
  const completedBeforeResult: number[] = [];
  helper.getNode('completed').on('input', (msg: any) => {
    completed.push(msg);
    if (!out.some((sent) => sent.seq === msg.seq)) completedBeforeResult.push(msg.seq);
  });
  await ready();

  // Six times the queue limit, under the cap (10 x 2): all held, all classified.
  flood(12);
  assert.equal(completed.length, 0);
  await waitUntil(() => out.length === 12 && completed.length === 12, 'every frame classified and completed');
  assert.deepEqual(out.map((m) => m.seq), range(0, 12));
  assert.deepEqual(completed.map((m) => m.seq), range(0, 12), 'completions in order');
  assert.deepEqual(completedBeforeResult, [], 'no frame completed before its result was sent');
  assert.ok(completed.every((m) => m.classification !== undefined));
  // Frame 0 and the batch 1-4 run (two batches in flight): the other 7 waited.
  assert.deepEqual(out.at(-1).laneVision.queue, { queued: 0, maxQueued: 7, processed: 12, failed: 0, dropped: 0, droppedBy: { queueFull: 0, safetyCap: 0 } });
  assert.equal(caught.length, 0);

  // 30 at once: frame 100 and the batch 101-104 run, 20 are held (the cap), 5 are refused with a clear error.
  flood(30, 100);
  await waitUntil(() => out.length === 12 + 25 && caught.length === 5, '25 results and 5 refusals');
  assert.deepEqual(out.slice(12).map((m) => m.seq), range(100, 125));
  assert.deepEqual(caught.map((m) => m.seq), range(125, 130));
  assert.ok(caught.every((m) => caughtCode(m) === 'CLASSIFY_OVERLOADED' && m.laneVision.dropped === 'safetyCap'));
  assert.match(caught[0].error.message, /More than 20 frames are waiting \(10 × queue limit 2, policy block\)/);
  await waitUntil(() => completed.length === 37, 'the classified frames completed');
  assert.deepEqual(out.at(-1).laneVision.queue, { queued: 0, maxQueued: 20, processed: 37, failed: 0, dropped: 5, droppedBy: { queueFull: 0, safetyCap: 5 } });
});

test('max wait: two frames sent a few ms apart share one batch; with max wait 0 the first does not wait', async () => {
  const [a, b] = valFrames().slice(0, 2);
  const pair = async (maxWaitMs: number) => {
    await helper.load(nodes, classifyFlow({ classify: { maxBatch: 8, maxWaitMs } }));
    const out = collect('o0');
    await ready();
    send({ payload: a.image, seq: 0 });
    await sleep(20);
    send({ payload: b.image, seq: 1 });
    await waitUntil(() => out.length === 2, 'both frames');
    const sizes = out.map((m) => m.laneVision.batchSize);
    const waits = out.map((m) => m.classification.timings.queueMs);
    await helper.unload();
    return { sizes, waits };
  };
  const waited = await pair(1000);
  assert.deepEqual(waited.sizes, [2, 2], 'one backbone call for both');
  assert.ok(waited.waits[0] >= 20, 'the first frame waited for the second (queueMs counts from its arrival)');
  const quiet = await pair(0);
  assert.deepEqual(quiet.sizes, [1, 1], 'max wait 0: the first frame ran alone at once');
});

test('settings out of range are refused with a clear error', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ overflow: 'drop-some' }, /overflow must be one of drop-oldest, drop-newest, block, got "drop-some"/],
    [{ queueLimit: 0 }, /queueLimit must be a number from 1 to 10000, got "0"/],
    [{ maxWaitMs: -5 }, /maxWaitMs must be a number from 0 to 10000, got "-5"/],
  ];
  for (const [settings, message] of cases) {
    await helper.load(nodes, classifyFlow({ classify: settings }));
    const caught = collect('caught');
    await waitUntil(() => lastStatus('c1').fill === 'red', 'the error status');
    send({ payload: valFrames()[0].image });
    await waitUntil(() => caught.length === 1, 'the frame refused');
    assert.match(caught[0].error.message, message);
    assert.equal(caughtCode(caught[0]), 'CLASSIFY_BAD_SETTING');
    await helper.unload();
  }
});

test('the counters reach the retained MQTT state through lane-events, over the embedded broker', async () => {
  const flow = classifyFlow({ classify: { maxBatch: 4, queueLimit: 10 } });
  flow.find((n) => n.id === 'c1')!.wires = [['o0', 'e1']];
  flow.push(
    {
      id: 'b1',
      type: 'lane-broker',
      name: '',
      url: '',
      embedded: true,
      embeddedHost: '',
      embeddedPort: 0,
      clientId: '',
      keepalive: 30,
      cleanSession: true,
      tlsVerify: true,
      line: 'line-1',
      station: 'cam-1',
      topicTemplate: 'lane-vision/{line}/{station}/{event}',
      offlineQueueLimit: 1000,
    },
    { id: 'e1', z: 'f1', type: 'lane-events', name: '', broker: 'b1', qos: '1', commands: false, wires: [] },
  );
  flow.find((n) => n.id === 'cc')!.scope = ['c1', 'e1'];
  await helper.load(withEvents, flow);
  const out = collect('o0');
  const caught = collect('caught');
  const station = (helper.getNode('b1') as unknown as LaneBrokerNode).station!;
  await waitUntil(() => station.status === 'connected', 'the station connected');
  const sorter = await startSorter(station.embeddedBroker!.url, ['lane-vision/line-1/cam-1/state', 'lane-vision/line-1/cam-1/result']);
  try {
    await ready();
    flood(60);
    // As in the drop-oldest test: 5 frames run in two batches, 10 wait, 45 are dropped.
    await waitUntil(() => out.length === 15, 'fifteen results');
    const counts = out.at(-1).laneVision.queue;
    assert.deepEqual([counts.processed, counts.dropped, counts.queued], [15, 45, 0]);
    await sorter.waitFor(
      (received) => received.some((r) => r.topic.endsWith('/state') && r.json.frames?.processed === 15),
      10_000,
      'the state with the final counts',
    );
    const final = sorter.received.filter((r) => r.topic.endsWith('/state') && r.json.frames).at(-1)!.json;
    assert.deepEqual(final.frames, { queued: 0, dropped: 45, processed: 15 });
    assert.ok(validateEvent.state(final), JSON.stringify(validateEvent.state.errors));
    await sorter.waitFor((received) => received.filter((r) => r.topic.endsWith('/result')).length === 15, 10_000, 'fifteen result events');
    assert.equal(caught.length, 0);
  } finally {
    await sorter.client.endAsync();
  }
});

test('redeploying with frames queued: nothing crashes, every queued frame is done once, the new node classifies', async () => {
  const flow = classifyFlow({ classify: { maxBatch: 2, queueLimit: 100 } });
  await helper.load(nodes, flow);
  const out = collect('o0');
  const caught = collect('caught');
  const logs = calls('c1', 'log');
  // Every done() of the old node, seen where Node-RED receives it (a complete node in the
  // flow is restarted by the deploy too, so it would miss the batch finishing meanwhile).
  const old = helper.getNode('c1') as unknown as { _complete(msg: any, err?: Error): void };
  const settled: { seq: number; dropped?: string; error?: Error }[] = [];
  const complete = old._complete;
  old._complete = function (msg, err) {
    settled.push({ seq: msg.seq, dropped: msg.laneVision?.dropped, error: err });
    return complete.call(this, msg, err);
  };
  await ready();
  flood(40);
  await sleep(50); // a batch or two under way, most frames waiting
  await helper.setFlows(
    flow.map((n) => (n.id === 'c1' ? { ...n, threshold: 0.55 } : n)),
    'nodes',
  );
  await waitUntil(() => settled.length === 40, 'all forty frames done');
  assert.deepEqual(settled.map((s) => s.seq).sort((a, b) => a - b), range(0, 40), 'each frame done exactly once');
  assert.ok(settled.every((s) => s.error === undefined), 'no frame failed');
  const stopped = settled.filter((s) => s.dropped === 'stopped');
  assert.ok(stopped.length > 0, 'frames were still waiting at the redeploy');
  assert.equal(out.length + stopped.length, 40, 'each frame either classified or done as stopped');
  assert.equal(caught.length, 0);
  assert.ok(logs.some((line) => String(line).startsWith(`${stopped.length} waiting frames were not classified`)), String(logs));

  await waitUntil(() => /^v1 · /.test(lastStatus('c1').text ?? ''), 'the new node ready');
  assert.notEqual(helper.getNode('c1'), old, 'a new node');
  const before = out.length;
  send({ payload: valFrames()[0].image, seq: 99 });
  await waitUntil(() => out.length === before + 1, 'a frame classified by the new node');
  assert.equal(out.at(-1).classification.threshold, 0.55);
  assert.equal(out.at(-1).laneVision.queue.processed, 1, 'the new node counts from 0');
});

test('backbone mode gives the ImageNet classes of a classifier backbone, used as it is', async () => {
  const imagenet = await lib.acquireBackbone(IMAGENET_MODEL);
  try {
    const flow = classifyFlow({ backboneSource: IMAGENET_MODEL, classify: { mode: 'backbone', dataset: '', threshold: 0.05, topK: 5 } }).filter(
      (n: any) => n.id !== 'ds',
    );
    await helper.load(nodes, flow);
    const out = collect('o0');
    const frames = valFrames([CLASSES[0]]).slice(0, 3);
    for (const frame of frames) send({ payload: frame.image });
    await waitUntil(() => out.length === frames.length, 'three results');
    const reference = new lib.LaneClassifier({ backbone: imagenet, threshold: 0.05, topK: 5 });
    reference.useBackboneClassifier();
    for (const [i, msg] of out.entries()) {
      const expected = await reference.classify(frames[i].image);
      const result = msg.classification;
      assert.equal(result.modelVersion, 0);
      assert.equal(result.topK.length, 5);
      assert.ok(lib.IMAGENET_CLASSES.includes(result.topK[0].label), `${result.topK[0].label} is an ImageNet class`);
      assert.equal(msg.payload, expected.label);
      assert.deepEqual(result.topK.map((r: { label: string }) => r.label), expected.topK.map((r) => r.label));
      assert.ok(Math.abs(result.confidence - expected.confidence) < 1e-5);
    }
    assert.match(lastStatus('c1').text ?? '', /^ImageNet · /);
    const labels = await helper.request().get('/lane-vision/lane-classify/c1/labels');
    assert.equal(labels.body.labels.length, imagenet.classLabels!.length);
    assert.equal(labels.body.modelVersion, 0);
  } finally {
    imagenet.release();
  }
});

test('backbone mode with a features-only backbone shows why it cannot classify', async () => {
  await helper.load(nodes, classifyFlow({ classify: { mode: 'backbone' } }));
  const caught = collect('caught');
  await waitUntil(() => lastStatus('c1').fill === 'red', 'the error status');
  assert.equal(lastStatus('c1').text, 'backbone has no classes of its own');
  send({ payload: valFrames([CLASSES[0]])[0].image });
  await waitUntil(() => caught.length === 1, 'the caught error');
  assert.match(caught[0].error.message, /no classifier of its own/);
});

test('deploying and removing the flow 20 times leaks no tensors and frees the backbone', async () => {
  // Let go of the test's own share, so every deploy loads the backbone and every removal disposes it.
  backbone.release();
  released = true;
  const [frame] = valFrames([CLASSES[1]]);
  const cycle = async () => {
    await helper.load(nodes, classifyFlow());
    const out = collect('o0');
    send({ payload: frame.image });
    await waitUntil(() => out.length === 1, 'a frame classified');
    await helper.unload();
  };
  await cycle();
  const tensors = lib.tf.memory().numTensors;
  for (let i = 0; i < 19; i++) await cycle();
  assert.equal(lib.tf.memory().numTensors, tensors, 'tensor count flat over 20 deploys');
  assert.equal(lib.sharedBackbones().length, 0, 'no backbone left loaded');

  // Removed again while the backbone still loads: the load is dropped, nothing stays behind.
  for (let i = 0; i < 3; i++) {
    await helper.load(nodes, classifyFlow());
    await helper.unload();
  }
  await waitUntil(() => lib.sharedBackbones().length === 0, 'the dropped loads released');
  assert.equal(lib.tf.memory().numTensors, tensors);
});

/** A PNG header claiming width x height pixels: refused from the header, never decoded. */
function hugePng(width: number, height: number): Buffer {
  const crc32 = (bytes: Buffer) => {
    let c = ~0;
    for (const byte of bytes) {
      c ^= byte;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
    }
    return ~c >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', Buffer.alloc(0)), chunk('IEND', Buffer.alloc(0))]);
}
