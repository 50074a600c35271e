/**
 * One trained model to every lane: three real Node-RED processes (scripts/start-demo.ts
 * launcher, each with its own user dir, backbone, model store, lane-classify and
 * lane-fleet) and a real Mosquitto. Station 1 captures real photos and trains; stations 2
 * and 3 receive the version, acknowledge and classify with it without a redeploy. Station 3
 * is stopped, station 1 trains again, station 3 is started again and catches up from the
 * retained manifest. A fleet rollback brings every station back. A fourth station runs another
 * backbone and refuses every release with a clear error. Run `npm run build` first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import mqtt from 'mqtt';
import { demoOptionsFrom, startDemo, type RunningDemo } from '../../scripts/start-demo.js';
import { mosquittoSkipReason, startMosquitto, type MosquittoBroker } from '../support/mosquitto.js';
import { classImages, groceryTrainDir, groceryValDir, modelDir } from '../support/shared.js';
import { freePort, repoRoot, tempDir } from './support.js';

const BACKBONE = modelDir('mobilenet-v2-0.35-features');
/** Station "odd" runs another network (256 features): it must refuse what the others take. */
const OTHER_BACKBONE = modelDir('mobilenet-v1-0.25-imagenet');
const FLEET = 'plant-1';
const LABELS = ['Oatly-Oat-Milk', 'Bravo-Orange-Juice', 'Yoggi-Strawberry-Yoghurt'];
const FRAMES_PER_LABEL = 8;

interface Ack {
  station: string;
  release: string;
  kind: string;
  result: string;
  version: number | null;
  activeVersion: number | null;
  error?: { code: string; message: string };
}

let mosquitto: MosquittoBroker;
let watcher: mqtt.MqttClient;
const acks: Ack[] = [];
const stations = new Map<string, { demo?: RunningDemo; userDir: string; flowFile: string; httpPort: number }>();

/** A station's flow: backbone, dataset, classify behind POST /classify, fleet; station-1 also captures and trains. */
function stationFlow(station: string, publisher: boolean, backbone = BACKBONE): object[] {
  const z = 'lane';
  const nodes: Record<string, unknown>[] = [
    { id: z, type: 'tab', label: station },
    { id: 'bb', type: 'lane-backbone', name: '', source: backbone, featureLayer: '', fit: 'cover', roiLeft: '', roiTop: '', roiWidth: '', roiHeight: '', backend: 'auto' },
    { id: 'ds', type: 'lane-dataset', name: '', folder: 'lane-vision/dataset', modelsFolder: 'lane-vision/models', maxPerLabel: 0, whenFull: 'refuse', keepVersions: 20 },
    { id: 'fleet', z, type: 'lane-fleet', name: '', url: mosquitto.url, fleet: FLEET, station, dataset: 'ds', backbone: 'bb', policy: 'activate', receive: true, wires: [['fleet-reply']] },
    { id: 'fleet-reply', z, type: 'switch', name: '', property: 'topic', propertyType: 'msg', rules: [{ t: 'eq', v: 'rollback-sent', vt: 'str' }], checkall: 'true', repair: false, outputs: 1, wires: [['reply']] },
    { id: 'in-classify', z, type: 'http in', name: '', url: '/classify', method: 'post', upload: false, swaggerDoc: '', wires: [['unwrap-classify']] },
    { id: 'unwrap-classify', z, type: 'function', name: '', func: 'msg.payload = msg.payload.image; return msg;', outputs: 1, wires: [['classify']] },
    { id: 'classify', z, type: 'lane-classify', name: '', backbone: 'bb', dataset: 'ds', mode: 'trained', threshold: 0, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], outputs: 1, wires: [['wrap-classify']] },
    { id: 'wrap-classify', z, type: 'function', name: '', func: 'msg.payload = msg.classification; return msg;', outputs: 1, wires: [['reply']] },
    { id: 'reply', z, type: 'http response', name: '', statusCode: '', headers: {}, wires: [] },
  ];
  if (publisher) {
    nodes.push(
      { id: 'in-capture', z, type: 'http in', name: '', url: '/capture', method: 'post', upload: false, swaggerDoc: '', wires: [['unwrap-capture']] },
      { id: 'unwrap-capture', z, type: 'function', name: '', func: 'msg.label = msg.payload.label; msg.payload = msg.payload.image; return msg;', outputs: 1, wires: [['capture']] },
      { id: 'capture', z, type: 'lane-capture', name: '', dataset: 'ds', backbone: '', label: '', wires: [['reply']] },
      { id: 'in-train', z, type: 'http in', name: '', url: '/train', method: 'post', upload: false, swaggerDoc: '', wires: [['train']] },
      { id: 'train', z, type: 'lane-train', name: '', dataset: 'ds', backbone: 'bb', strategy: 'fixed', budget: '', testViews: '', folds: '', headKind: 'logistic', rejectLabels: '', epochs: '', hiddenUnits: '', holdoutFraction: '', seed: 1, targetPrecision: '', activate: true, wires: [['fleet', 'reply'], []] },
      { id: 'in-rollback', z, type: 'http in', name: '', url: '/fleet-rollback', method: 'post', upload: false, swaggerDoc: '', wires: [['as-rollback']] },
      { id: 'as-rollback', z, type: 'change', name: '', rules: [{ t: 'set', p: 'topic', pt: 'msg', to: 'rollback', tot: 'str' }, { t: 'set', p: 'payload', pt: 'msg', to: '{}', tot: 'json' }], wires: [['fleet']] },
    );
  }
  return nodes;
}

async function startStation(station: string): Promise<void> {
  let entry = stations.get(station);
  if (!entry) {
    const userDir = tempDir(`lane-fleet-${station}-`);
    const flowFile = path.join(userDir, 'flow-template.json');
    fs.writeFileSync(flowFile, JSON.stringify(stationFlow(station, station === 'station-1', station === 'station-odd' ? OTHER_BACKBONE : BACKBONE)));
    entry = { userDir, flowFile, httpPort: await freePort() };
    stations.set(station, entry);
  }
  const options = {
    ...demoOptionsFrom({ PORT: String(entry.httpPort), LANE_VISION_MQTT_PORT: String(await freePort()), LANE_VISION_DEMO_DIR: entry.userDir, LANE_VISION_BACKBONE: BACKBONE }, [], repoRoot),
    flowTemplate: entry.flowFile,
    output: 'pipe' as const,
  };
  entry.demo = await startDemo(options);
  await entry.demo.ready;
}

async function stopStation(station: string): Promise<void> {
  const entry = stations.get(station)!;
  await entry.demo?.stop();
  entry.demo = undefined;
}

async function post(station: string, route: string, body: unknown): Promise<any> {
  const entry = stations.get(station)!;
  const res = await fetch(`http://127.0.0.1:${entry.httpPort}${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, `${station} ${route}: ${res.status} ${text}\n${entry.demo?.log.slice(-20).join('\n')}`);
  return JSON.parse(text);
}

const photo = (file: string) => fs.readFileSync(file).toString('base64');

async function waitForAcks(release: string, kind: string, wanted: string[], timeoutMs = 120_000): Promise<Map<string, Ack>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = new Map(acks.filter((a) => a.release === release && a.kind === kind && wanted.includes(a.station)).map((a) => [a.station, a]));
    if (got.size === wanted.length) return got;
    if (Date.now() > deadline) throw new Error(`acks for ${release.slice(0, 12)} (${kind}) from ${wanted.join(', ')}: got ${[...got.keys()].join(', ') || 'none'}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The retained manifest, once it names a release other than `previous` (lane-fleet publishes while /train answers). */
async function nextManifest(previous?: string): Promise<{ release: string; kind: string; labels: { label: string }[] }> {
  for (let tries = 0; ; tries++) {
    const manifest = await currentManifest();
    if (manifest.release !== previous) return manifest;
    if (tries > 600) throw new Error('the fleet manifest did not change');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The release the fleet's retained manifest names now. */
async function currentManifest(): Promise<{ release: string; kind: string; labels: { label: string }[] }> {
  const client = await mqtt.connectAsync(mosquitto.url, { reconnectPeriod: 0 });
  try {
    const got = new Promise<any>((resolve) => client.on('message', (_t, p) => p.length && resolve(JSON.parse(p.toString()))));
    await client.subscribeAsync(`lane-vision/fleet/${FLEET}/manifest`, { qos: 1 });
    return await got;
  } finally {
    await client.endAsync();
  }
}

async function captureAll(labels: string[]): Promise<void> {
  for (const label of labels) {
    for (const file of classImages(groceryTrainDir, label).slice(0, FRAMES_PER_LABEL)) await post('station-1', '/capture', { label, image: photo(file) });
  }
}

before(async () => {
  if (mosquittoSkipReason) return;
  mosquitto = await startMosquitto();
  watcher = await mqtt.connectAsync(mosquitto.url);
  watcher.on('message', (_topic, payload) => payload.length && acks.push(JSON.parse(payload.toString())));
  await watcher.subscribeAsync(`lane-vision/fleet/${FLEET}/ack/+`, { qos: 1 });
});
after(async () => {
  if (mosquittoSkipReason) return;
  for (const station of stations.keys()) await stopStation(station).catch(() => undefined);
  await watcher.endAsync();
  await mosquitto.close();
  for (const { userDir } of stations.values()) fs.rmSync(userDir, { recursive: true, force: true });
});

test('train on one station, the others classify with it; a stopped station catches up; a fleet rollback returns all', { skip: mosquittoSkipReason, timeout: 600_000 }, async () => {
  await Promise.all(['station-1', 'station-2', 'station-3', 'station-odd'].map(startStation));
  const val = (label: string) => photo(classImages(groceryValDir, label)[0]);

  await captureAll(LABELS.slice(0, 2));
  const first = await post('station-1', '/train', {});
  assert.equal(first.version, 1);
  const release1 = (await nextManifest()).release;
  const acks1 = await waitForAcks(release1, 'release', ['station-2', 'station-3']);
  for (const ack of acks1.values()) assert.equal(ack.result, 'activated', JSON.stringify(ack));
  const odd = (await waitForAcks(release1, 'release', ['station-odd'])).get('station-odd')!;
  assert.equal(odd.result, 'refused');
  assert.equal(odd.error?.code, 'MODEL_BACKBONE_MISMATCH');
  assert.match(odd.error!.message, /Station station-odd refuses release \w+ from station-1: .*1280 features.*256/);
  assert.equal(odd.activeVersion, null, 'nothing activated on the odd station');
  const reference = await post('station-1', '/classify', { image: val(LABELS[0]) });
  for (const station of ['station-2', 'station-3']) {
    const result = await post(station, '/classify', { image: val(LABELS[0]) });
    assert.equal(result.modelVersion, acks1.get(station)!.version, `${station} classifies with the version it acknowledged, no redeploy`);
    assert.deepEqual(result.topK.map((t: { label: string }) => t.label).sort(), LABELS.slice(0, 2).sort());
    assert.equal(result.topK[0].label, reference.topK[0].label, 'the same decision as the station that trained it');
    assert.ok(Math.abs(result.confidence - reference.confidence) < 1e-4, `${result.confidence} vs ${reference.confidence}`);
  }

  // Station 3 is off while station 1 learns a third label.
  await stopStation('station-3');
  await captureAll(LABELS.slice(2));
  const second = await post('station-1', '/train', {});
  assert.equal(second.version, 2);
  const manifest2 = await nextManifest(release1);
  assert.deepEqual(manifest2.labels.map((l) => l.label).sort(), [...LABELS].sort());
  await waitForAcks(manifest2.release, 'release', ['station-2']);
  assert.equal(acks.filter((a) => a.station === 'station-3' && a.release === manifest2.release).length, 0, 'station 3 is away');
  await startStation('station-3');
  const caughtUp = await waitForAcks(manifest2.release, 'release', ['station-3']);
  assert.equal(caughtUp.get('station-3')!.result, 'activated');
  const afterRestart = await post('station-3', '/classify', { image: val(LABELS[2]) });
  assert.equal(afterRestart.topK.length, 3, 'the restarted station classifies with the 3-label version');

  // Fleet rollback: every station back to the first release.
  const rolled = await post('station-1', '/fleet-rollback', {});
  assert.equal(rolled.release, release1);
  const back = await waitForAcks(release1, 'rollback', ['station-2', 'station-3']);
  for (const station of ['station-2', 'station-3']) {
    assert.equal(back.get(station)!.result, 'activated');
    const result = await post(station, '/classify', { image: val(LABELS[0]) });
    assert.equal(result.topK.length, 2, `${station} is back on the 2-label version`);
    assert.equal(result.modelVersion, back.get(station)!.activeVersion);
  }
  assert.equal((await post('station-1', '/classify', { image: val(LABELS[0]) })).modelVersion, 1, 'the publishing station rolled back too');
});
