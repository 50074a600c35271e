/**
 * lane-fleet in the test helper against a real Mosquitto: bad settings and bad commands
 * end with a clear error (status, done(err) for a catch node, one log line), and a publish
 * message answers with the manifest it put on the broker. The full fleet (several Node-RED
 * processes) is test/e2e/fleet.test.ts. Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Node, NodeMessage } from 'node-red';
import type * as Lib from '../../src/index.js';
import { mosquittoSkipReason, startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import { modelDir } from '../support/shared.js';
import { makeHeadOfSize } from '../lib/model-store/helpers.js';
import { backboneConfig, catchAll, caughtCode, caughtText, compiledModule, datasetConfig, helper, laneNodes, lastStatus, recorder, tempDir, waitFor, type FlowItem } from './support/lane-flow.js';

const lib = compiledModule<typeof Lib>('src/index.js');
helper.init(require.resolve('node-red'));
const FEATURES_MODEL = modelDir('mobilenet-v2-0.35-features');
const nodes = laneNodes('lane-backbone', 'lane-dataset', 'lane-fleet');
let mosquitto: MosquittoBroker;
let work: string;

before(async () => {
  if (mosquittoSkipReason) return;
  mosquitto = await startMosquitto();
  work = tempDir('fleet-node');
  await helper.startServer();
});
afterEach(async () => {
  if (!mosquittoSkipReason) await helper.unload();
});
after(async () => {
  if (mosquittoSkipReason) return;
  await helper.stopServer();
  await mosquitto.close();
  fs.rmSync(work, { recursive: true, force: true });
});

function flow(fleet: Record<string, unknown>): FlowItem[] {
  return [
    { id: 'f1', type: 'tab', label: 'lane' },
    backboneConfig('bb', FEATURES_MODEL),
    datasetConfig('ds', path.join(work, 'dataset'), path.join(work, 'models')),
    { id: 'fl', z: 'f1', type: 'lane-fleet', name: '', url: mosquitto.url, fleet: 'plant-9', station: 'lane-1', dataset: 'ds', backbone: 'bb', policy: 'activate', receive: true, wires: [['out']], ...fleet },
    { id: 'out', z: 'f1', type: 'helper' },
    ...catchAll('c1', ['fl']),
  ];
}

test('without its dataset the node shows why and fails every message', { skip: mosquittoSkipReason }, async () => {
  await helper.load(nodes, flow({ dataset: '' }));
  const fleet = helper.getNode('fl') as Node;
  const caught = recorder(helper.getNode('c1-out'));
  fleet.receive({ topic: 'publish' } as NodeMessage);
  const msg = await caught.next();
  assert.equal(caughtCode(msg), 'FLEET_CONFIG_INVALID');
  assert.match(caughtText(msg), /lane-fleet.errors.no-dataset/);
  assert.equal(lastStatus(fleet)?.fill, 'red');
});

test('a broker URL with ${VAR} inside (as the yoghurt-lane example has) is expanded from the environment', { skip: mosquittoSkipReason }, async () => {
  const port = new URL(mosquitto.url).port;
  process.env.LANE_FLEET_TEST_PORT = port;
  try {
    await helper.load(nodes, flow({ url: mosquitto.url.replace(`:${port}`, ':${LANE_FLEET_TEST_PORT}') }));
    const fleet = helper.getNode('fl') as Node;
    await waitFor(() => lastStatus(fleet)?.fill === 'green', 'connected to the broker on the port from env');
  } finally {
    delete process.env.LANE_FLEET_TEST_PORT;
  }
});

test('bad commands are refused; publish answers with the manifest it put on the broker', { skip: mosquittoSkipReason, timeout: 60_000 }, async () => {
  const backbone = await lib.loadBackbone(FEATURES_MODEL);
  const store = await lib.openModelStore(path.join(work, 'models'));
  await store.saveModel({ head: makeHeadOfSize('logistic', 2, backbone.featureSize, 1), labels: ['a', 'b'], backbone, datasetFingerprint: 'd' });
  backbone.release();
  await helper.load(nodes, flow({}));
  const fleet = helper.getNode('fl') as Node;
  const caught = recorder(helper.getNode('c1-out'));
  const out = recorder(helper.getNode('out'));
  await waitFor(() => lastStatus(fleet)?.fill === 'green', 'connected');

  fleet.receive({ topic: 'frobnicate' } as NodeMessage);
  const unknown = await caught.next();
  assert.equal(caughtCode(unknown), 'FLEET_BAD_COMMAND');
  fleet.receive({ topic: 'publish', payload: { version: 'latest!' } } as NodeMessage);
  assert.equal(caughtCode(await caught.next()), 'FLEET_BAD_COMMAND');
  fleet.receive({ topic: 'publish', payload: { version: 7 } } as NodeMessage);
  assert.equal(caughtCode(await caught.next()), 'MODEL_VERSION_NOT_FOUND');
  fleet.receive({ topic: 'rollback' } as NodeMessage);
  assert.equal(caughtCode(await caught.next()), 'FLEET_ROLLBACK_UNAVAILABLE');

  fleet.receive({ topic: 'publish', payload: {} } as NodeMessage);
  const sent = (await out.next()) as NodeMessage & { payload: Record<string, any> };
  assert.equal(sent.topic, 'publish-sent');
  assert.equal(sent.payload.sourceVersion, 1);
  assert.equal(sent.payload.kind, 'release');
  assert.match(sent.payload.release, /^[0-9a-f]{64}$/);
  assert.deepEqual(sent.payload.labels.map((l: { label: string }) => l.label), ['a', 'b']);
});
