/**
 * The example flows (examples/*.json, shown under Import ▸ Examples) are valid flows: every
 * wire and config reference resolves, together they use every node type of the package, and
 * each loads in a Node-RED runtime (node-red-node-test-helper with the compiled nodes and
 * the core nodes they use) with every node created. The ImageNet example is also run on
 * the real ImageNet MobileNet; the yoghurt lane runs in a real process in
 * node-red-process.test.ts, the dashboard lane in dashboard.test.ts (with Dashboard 2, a
 * devDependency here as a user's palette install is there). Run `npm run build` first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import helper from 'node-red-node-test-helper';
import type { Node } from 'node-red';
import { IMAGENET_CLASSES } from '../../src/engine/imagenet.js';
import { startSnapshotServer } from '../support/cameras.js';
import { classImages, groceryValDir, modelDir, YOGHURT_CLASSES } from '../support/shared.js';
import { exampleFiles, freePort, isListening, packageNodeTypes, readExample, repoRoot, tempDir, type FlowNode } from './support.js';

helper.init(require.resolve('node-red'));

/** Core node modules the examples use, by type (files of @node-red/nodes). */
const CORE_NODES: Record<string, string> = {
  inject: 'core/common/20-inject.js',
  debug: 'core/common/21-debug.js',
  catch: 'core/common/25-catch.js',
  comment: 'core/common/90-comment.js',
  function: 'core/function/10-function.js',
  switch: 'core/function/10-switch.js',
  delay: 'core/function/89-delay.js',
};
/** Dashboard 2 (@flowfuse/node-red-dashboard, installed by the user) node modules, by type. */
const DASHBOARD_PACKAGE = path.dirname(require.resolve('@flowfuse/node-red-dashboard/package.json'));
const DASHBOARD_NODES = (JSON.parse(fs.readFileSync(path.join(DASHBOARD_PACKAGE, 'package.json'), 'utf8')) as { 'node-red': { nodes: Record<string, string> } })['node-red'].nodes;
/** Flow items that are not nodes of a registered type. */
const STRUCTURAL = new Set(['tab', 'group', 'subflow']);

const laneTypes = packageNodeTypes();

function nodeModules(): unknown[] {
  const lane = Object.entries(laneTypes).map(([type, file]) => {
    const compiled = path.join(repoRoot, file);
    if (!fs.existsSync(compiled)) throw new Error(`${compiled} is missing (node type ${type}): run npm run build first`);
    return require(compiled);
  });
  const core = Object.values(CORE_NODES).map((file) => require(require.resolve(`@node-red/nodes/${file}`)));
  const dashboard = Object.values(DASHBOARD_NODES).map((file) => require(path.join(DASHBOARD_PACKAGE, file)));
  return [...core, ...dashboard, ...lane];
}

const examples = exampleFiles();
const LANE_ENV = ['LANE_VISION_CAMERA_URL', 'LANE_VISION_BACKBONE', 'LANE_VISION_IMAGENET_BACKBONE', 'LANE_VISION_FRAMES', 'LANE_VISION_MQTT_PORT', 'LANE_VISION_TRAIN_DELAY'];
const savedEnv = Object.fromEntries(LANE_ENV.map((name) => [name, process.env[name]]));
let userDir: string;

before(async () => {
  userDir = tempDir('lane-vision-examples-');
  helper.settings({ userDir });
  await helper.startServer();
});

after(async () => {
  await helper.unload();
  await helper.stopServer();
  for (const [name, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  fs.rmSync(userDir, { recursive: true, force: true });
});

test('there are the four documented examples', () => {
  assert.deepEqual(examples, ['camera-sorter.json', 'dashboard-lane.json', 'imagenet-as-is.json', 'yoghurt-lane.json']);
});

for (const file of examples) {
  test(`${file}: every id is unique, every wire and config reference resolves`, () => {
    const flow = readExample(file);
    const byId = new Map(flow.map((node) => [node.id, node]));
    assert.equal(byId.size, flow.length, 'duplicate ids');
    const tabs = flow.filter((node) => node.type === 'tab');
    assert.equal(tabs.length, 1, 'one tab per example');
    for (const node of flow) {
      assert.ok(STRUCTURAL.has(node.type) || node.type in CORE_NODES || node.type in laneTypes || node.type in DASHBOARD_NODES, `${node.id}: unknown type ${node.type}`);
      if (node.type !== 'tab') assert.equal(node.z, tabs[0].id, `${node.id} is not on the example's tab`);
      for (const [port, targets] of (node.wires ?? []).entries()) {
        for (const target of targets) assert.ok(byId.has(target), `${node.id} output ${port} goes to missing node ${target}`);
      }
      if (typeof node.outputs === 'number') assert.equal(node.wires?.length, node.outputs, `${node.id}: wires per output`);
      // Config references: a property named like a config type holds the id of such a node.
      for (const [property, configType] of [['backbone', 'lane-backbone'], ['dataset', 'lane-dataset'], ['broker', 'lane-broker'], ['group', 'ui-group'], ['page', 'ui-page'], ['ui', 'ui-base'], ['theme', 'ui-theme']] as const) {
        const ref = node[property];
        if (typeof ref === 'string' && ref !== '') {
          assert.equal(byId.get(ref)?.type, configType, `${node.id}.${property} -> ${ref} is not a ${configType}`);
        }
      }
    }
  });
}

test('together the examples use every node type the package registers', () => {
  const used = new Set(examples.flatMap((file) => readExample(file).map((node) => node.type)));
  assert.ok(Object.keys(laneTypes).length >= 8, 'package.json node-red.nodes lists the lane nodes');
  assert.deepEqual(Object.keys(laneTypes).filter((type) => !used.has(type)), []);
});

/** Loads the example's tab with one inject per tab variable whose payload is `${NAME}`: the values Node-RED gives its nodes. */
async function tabVariables(file: string): Promise<Record<string, unknown>> {
  const tab = readExample(file).find((node) => node.type === 'tab')!;
  const names = (tab.env as { name: string }[]).map((entry) => entry.name);
  const probes = names.map((name) => ({ id: `probe-${name}`, type: 'inject', z: tab.id, props: [{ p: 'payload' }], payload: `\${${name}}`, payloadType: 'str', wires: [[]] }));
  await helper.load(nodeModules() as never, [tab, ...probes] as never);
  const values = Object.fromEntries(names.map((name) => [name, (helper.getNode(`probe-${name}`) as unknown as { props: { v: unknown }[] }).props[0].v]));
  await helper.unload();
  return values;
}

test('the examples read their settings from LANE_VISION_* and fall back to working defaults', async () => {
  for (const name of LANE_ENV) delete process.env[name];
  assert.deepEqual(await tabVariables('yoghurt-lane.json'), {
    LANE_BACKBONE: 'mobilenet-v2-0.35',
    LANE_FRAMES: '',
    LANE_FRAMES_MODE: 'synthetic',
    LANE_MQTT_PORT: '1884',
    LANE_TRAIN_DELAY: '20',
  });
  assert.deepEqual(await tabVariables('camera-sorter.json'), {
    LANE_CAMERA_URL: 'http://192.168.1.20/snapshot.jpg',
    LANE_BACKBONE: 'mobilenet-v2-0.35',
    LANE_MQTT_PORT: '1884',
  });
  assert.deepEqual(await tabVariables('imagenet-as-is.json'), {
    LANE_IMAGENET_BACKBONE: 'mobilenet-v1-1.00',
    LANE_FRAMES: '',
    LANE_FRAMES_MODE: 'synthetic',
  });
  assert.deepEqual(await tabVariables('dashboard-lane.json'), {
    LANE_BACKBONE: 'mobilenet-v2-0.35',
    LANE_FRAMES: '',
    LANE_FRAMES_MODE: 'synthetic',
    LANE_TRAIN_DELAY: '20',
  });
  Object.assign(process.env, {
    LANE_VISION_BACKBONE: '/models/a',
    LANE_VISION_IMAGENET_BACKBONE: '/models/b',
    LANE_VISION_FRAMES: '/photos',
    LANE_VISION_MQTT_PORT: '1999',
    LANE_VISION_TRAIN_DELAY: '7',
    LANE_VISION_CAMERA_URL: 'http://cam/still.jpg',
  });
  assert.deepEqual(await tabVariables('camera-sorter.json'), { LANE_CAMERA_URL: 'http://cam/still.jpg', LANE_BACKBONE: '/models/a', LANE_MQTT_PORT: '1999' });
  assert.deepEqual(await tabVariables('yoghurt-lane.json'), {
    LANE_BACKBONE: '/models/a',
    LANE_FRAMES: '/photos',
    LANE_FRAMES_MODE: 'folder',
    LANE_MQTT_PORT: '1999',
    LANE_TRAIN_DELAY: '7',
  });
  assert.deepEqual(await tabVariables('imagenet-as-is.json'), { LANE_IMAGENET_BACKBONE: '/models/b', LANE_FRAMES: '/photos', LANE_FRAMES_MODE: 'folder' });
  assert.deepEqual(await tabVariables('dashboard-lane.json'), { LANE_BACKBONE: '/models/a', LANE_FRAMES: '/photos', LANE_FRAMES_MODE: 'folder', LANE_TRAIN_DELAY: '7' });
});

test('dashboard-lane.json: every widget is fed from a lane-stats output or drives lane-train, no function node', () => {
  const flow = readExample('dashboard-lane.json');
  assert.ok(!flow.some((node) => node.type === 'function'), 'no function node');
  const stats = flow.filter((node) => node.type === 'lane-stats');
  assert.equal(stats.length, 1);
  const fed = new Set(stats[0].wires!.flat());
  const widgets = flow.filter((node) => node.type.startsWith('ui-') && typeof node.group === 'string');
  const byType = (type: string) => widgets.filter((node) => node.type === type).map((node) => node.id);
  for (const type of ['ui-chart', 'ui-gauge', 'ui-template']) assert.ok(byType(type).every((id) => fed.has(id)), `every ${type} is fed by lane-stats`);
  assert.equal(byType('ui-chart').length, 2, 'counts per label and throughput');
  const button = flow.find((node) => node.type === 'ui-button')!;
  assert.equal(flow.find((node) => node.id === button.wires![0][0])?.type, 'lane-train', 'the button trains');
  assert.equal(button.topic, 'train');
});

test('dashboard-lane.json loads with Dashboard 2 installed, every node created', async () => {
  Object.assign(process.env, { LANE_VISION_BACKBONE: modelDir('mobilenet-v2-0.35-features'), LANE_VISION_TRAIN_DELAY: '600' });
  delete process.env.LANE_VISION_FRAMES;
  try {
    await loadExample('dashboard-lane.json');
  } finally {
    await helper.unload();
  }
});

/** Loads an example and checks Node-RED created every node in it (an unknown type leaves the flow waiting, nothing created). */
async function loadExample(file: string): Promise<FlowNode[]> {
  const flow = readExample(file);
  await helper.load(nodeModules() as never, flow as never);
  for (const node of flow) {
    if (STRUCTURAL.has(node.type)) continue;
    const created = helper.getNode(node.id) as Node | null;
    assert.ok(created, `${file}: node ${node.id} (${node.type}) was not created`);
    assert.equal(created.type, node.type);
  }
  return flow;
}

test('yoghurt-lane.json loads with every node created, its settings filled in from the environment', async () => {
  const mqttPort = await freePort();
  const backbone = modelDir('mobilenet-v2-0.35-features');
  Object.assign(process.env, { LANE_VISION_BACKBONE: backbone, LANE_VISION_MQTT_PORT: String(mqttPort), LANE_VISION_TRAIN_DELAY: '600' });
  delete process.env.LANE_VISION_FRAMES;
  try {
    await loadExample('yoghurt-lane.json');
    const backboneNode = helper.getNode('yoghurt-lane.backbone') as unknown as { source: string };
    assert.equal(backboneNode.source, backbone);
    // The embedded broker of the lane-broker node listens on the port from the environment.
    const deadline = Date.now() + 10_000;
    while (!(await isListening(mqttPort))) {
      assert.ok(Date.now() < deadline, `the embedded broker does not listen on ${mqttPort}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await helper.unload();
  }
  assert.equal(await isListening(mqttPort), false, 'the embedded broker closed with the flow');
});

test('imagenet-as-is.json loads and names ImageNet classes for synthetic frames', async () => {
  process.env.LANE_VISION_IMAGENET_BACKBONE = modelDir('mobilenet-v2-1.0-imagenet');
  delete process.env.LANE_VISION_FRAMES;
  try {
    await loadExample('imagenet-as-is.json');
    const debug = helper.getNode('imagenet-as-is.top3');
    const first = await new Promise<{ payload: unknown; classification: { modelVersion: number; topK: { label: string; confidence: number }[] } }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no classified frame within 30 s')), 30_000);
      debug.on('input', (msg: never) => {
        clearTimeout(timer);
        resolve(msg);
      });
    });
    assert.equal(first.classification.modelVersion, 0, 'the backbone\'s own classes, no trained model');
    assert.equal(first.classification.topK.length, 3);
    const names = new Set<string>(IMAGENET_CLASSES);
    for (const ranked of first.classification.topK) assert.ok(names.has(ranked.label), `${ranked.label} is an ImageNet class`);
    assert.ok(typeof first.payload === 'string' && (first.payload === 'unknown' || names.has(first.payload)));
  } finally {
    await helper.unload();
  }
});

test('camera-sorter.json loads; the photo-eye gets one frame from a snapshot camera into classify, with its itemId', async () => {
  const image = fs.readFileSync(classImages(groceryValDir, YOGHURT_CLASSES[0])[0]);
  const camera = await startSnapshotServer(image, { scheme: 'none' });
  Object.assign(process.env, {
    LANE_VISION_CAMERA_URL: camera.url,
    LANE_VISION_BACKBONE: modelDir('mobilenet-v2-0.35-features'),
    LANE_VISION_MQTT_PORT: String(await freePort()), // no broker there: events wait offline
  });
  try {
    await loadExample('camera-sorter.json');
    const errors = helper.getNode('camera-sorter.errors');
    const seen: { itemId?: string; error: { message: string } }[] = [];
    errors.on('input', (msg: never) => seen.push(msg));
    helper.getNode('camera-sorter.photo-eye').receive({} as never);
    const deadline = Date.now() + 30_000;
    while (seen.length === 0) {
      assert.ok(Date.now() < deadline, 'the triggered frame reached classify');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // No model is trained in this user directory: classify says so, for the frame of this item.
    assert.match(seen[0].error.message, /errors.no-model|no trained model yet/); // the helper's RED._ gives the catalog key
    assert.match(String(seen[0].itemId), /^\d+$/);
    assert.equal(camera.served, 1, 'one snapshot for one trigger');
  } finally {
    await helper.unload();
    await camera.stop();
  }
});
