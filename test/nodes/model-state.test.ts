/**
 * The retained MQTT model topic names the active version after every kind of change: a
 * training's save, a console promote, an MQTT cmd/rollback (taken by lane-classify), a
 * rollback to a named version, and `lane-vision versions activate` from another process.
 * Real Mosquitto, real backbone, a real lane-classify serving each version; the versions'
 * heads are seeded random numbers of the backbone's feature size (what is tested is which
 * version is announced, not how well it sorts). Run `npm run build` first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import mqtt from 'mqtt';
import type * as Lib from '../../src/index.js';
import { mosquittoSkipReason, startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import { modelDir } from '../support/shared.js';
import { makeHeadOfSize } from '../lib/model-store/helpers.js';
import { runLaneVision } from '../lib/cli/support.js';
import { backboneConfig, compiledModule, datasetConfig, helper, laneNodes, tempDir, waitFor, type FlowItem } from './support/lane-flow.js';

const lib = compiledModule<typeof Lib>('src/index.js');
helper.init(require.resolve('node-red'));

const FEATURES_MODEL = modelDir('mobilenet-v2-0.35-features');
const MODEL_TOPIC = 'lane-vision/line-1/station-A/model';
const CSRF = { 'X-Lane-Vision': '1' };
let mosquitto: MosquittoBroker;
let work: string;

before(async () => {
  if (mosquittoSkipReason) return;
  mosquitto = await startMosquitto();
  work = tempDir('model-state');
  await helper.startServer();
});
after(async () => {
  if (mosquittoSkipReason) return;
  await helper.unload();
  await helper.stopServer();
  await mosquitto.close();
});

function flow(modelsFolder: string): FlowItem[] {
  return [
    { id: 'f1', type: 'tab', label: 'lane' },
    backboneConfig('bb', FEATURES_MODEL),
    datasetConfig('ds', path.join(work, 'dataset'), modelsFolder),
    {
      id: 'b1', type: 'lane-broker', name: '', url: mosquitto.url, embedded: false, embeddedHost: '', embeddedPort: 0, clientId: '', keepalive: 30,
      cleanSession: true, tlsVerify: true, line: 'line-1', station: 'station-A', topicTemplate: 'lane-vision/{line}/{station}/{event}', offlineQueueLimit: 1000,
    },
    { id: 'e1', z: 'f1', type: 'lane-events', name: '', broker: 'b1', dataset: 'ds', qos: '1', commands: true, outputs: 1, wires: [['c1']] },
    { id: 'c1', z: 'f1', type: 'lane-classify', name: '', backbone: 'bb', dataset: 'ds', mode: 'trained', threshold: 0.6, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], outputs: 1, wires: [[]] },
    { id: 'lc', z: 'f1', type: 'lane-console', name: 'lane', backbone: 'bb', dataset: 'ds', path: '/model-state-console', frames: 12, rejects: 6, windowMinutes: 10, wires: [] },
  ];
}

/** The retained model event a subscriber that connects now is given. */
async function retainedModel(): Promise<Record<string, any>> {
  const client = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0 });
  try {
    const got = new Promise<Record<string, any>>((resolve) => client.on('message', (_t, payload, packet) => packet.retain && resolve(JSON.parse(payload.toString()))));
    await client.subscribeAsync(MODEL_TOPIC, { qos: 1 });
    return await got;
  } finally {
    await client.endAsync();
  }
}

test('the retained model topic follows the active version through save, promote, MQTT and node rollbacks and the CLI', { skip: mosquittoSkipReason, timeout: 120_000 }, async () => {
  const modelsFolder = path.join(work, 'models');
  const backbone = await lib.loadBackbone(FEATURES_MODEL);
  const store = await lib.openModelStore(modelsFolder);
  const save = (seed: number, labels: string[], activate = true) =>
    store.saveModel({
      head: makeHeadOfSize('logistic', labels.length, backbone.featureSize, seed),
      labels,
      backbone,
      metrics: { holdout: { accuracy: seed / 10, macroF1: seed / 20 } },
      datasetFingerprint: `d${seed}`,
      activate,
    });
  await save(1, ['vanilla', 'strawberry']);
  await save(2, ['vanilla', 'strawberry', 'natural']);
  backbone.release();

  const watcher = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0 });
  const announced: Record<string, any>[] = [];
  watcher.on('message', (_t, payload) => announced.push(JSON.parse(payload.toString())));
  await watcher.subscribeAsync(MODEL_TOPIC, { qos: 1 });

  await helper.load(laneNodes('lane-backbone', 'lane-dataset', 'lane-broker', 'lane-events', 'lane-classify', 'lane-console'), flow(modelsFolder));
  const commander = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0 });

  /** After a change: the announcement for `version` arrives, and the retained event is it, with the version's metadata. */
  async function expectAnnounced(version: number, what: string): Promise<void> {
    await waitFor(() => announced.some((e) => e.modelVersion === `v${version}`), `${what}: model event for v${version} (got ${announced.map((e) => e.modelVersion).join(', ')})`, 30_000);
    assert.equal(await store.activeVersion(), version, what);
    const retained = await retainedModel();
    const metadata = await store.readMetadata(version);
    assert.equal(retained.modelVersion, `v${version}`, `${what}: retained topic names the active version`);
    assert.deepEqual(retained.labels, metadata.classes, `${what}: labels with codes`);
    assert.equal(retained.metrics.accuracy, (metadata.metrics as any).holdout.accuracy, `${what}: grouped accuracy`);
    assert.equal(retained.head, 'logistic');
    assert.equal(retained.backbone, metadata.backbone.id);
    announced.length = 0;
  }

  await expectAnnounced(2, 'deploy');

  await save(3, ['vanilla', 'natural']); // what a training that activates does
  await expectAnnounced(3, 'training saved and activated v3');

  await save(4, ['vanilla', 'natural'], false); // a candidate is not the lane's model
  const promoted = await helper.request().post('/lane-vision/lane-console/lc/promote').set(CSRF).send({ version: 1 });
  assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
  await expectAnnounced(1, 'console promote of v1');
  assert.ok(!announced.some((e) => e.modelVersion === 'v4'), 'the unpromoted candidate was never announced');

  await commander.publishAsync('lane-vision/line-1/station-A/cmd/rollback', JSON.stringify({ version: 'v3' }), { qos: 1 });
  await expectAnnounced(3, 'MQTT cmd/rollback to v3');

  // A rollback message to the classify node goes back to the version active before (v1).
  (helper.getNode('c1') as unknown as { receive(msg: object): void }).receive({ topic: 'rollback' });
  await expectAnnounced(1, 'rollback message to lane-classify');

  await commander.publishAsync('lane-vision/line-1/station-A/cmd/rollback', '"v2"', { qos: 1 });
  await expectAnnounced(2, 'MQTT cmd/rollback "v2"');

  const cli = await runLaneVision(['versions', '--store', modelsFolder, 'activate', '4']);
  assert.equal(cli.code, 0, cli.stderr);
  await expectAnnounced(4, 'lane-vision versions activate 4 in another process');

  await commander.endAsync();
  await watcher.endAsync();
});
