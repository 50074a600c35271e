/**
 * lane-dataset in a Node-RED runtime: folders relative to the user directory, the label
 * cap, and the admin endpoint the editor reads. Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeMessage } from 'node-red';
import type { LaneDatasetNode } from '../../nodes/lane-dataset/types.js';
import { classImages, groceryTrainDir } from '../support/shared.js';
import { TAB, catchAll, caughtCode, caughtText, datasetConfig, helper, laneNodes, recorder, tempDir, type FlowItem } from './support/lane-flow.js';

const nodes = laneNodes('lane-dataset', 'lane-capture');
const PHOTOS = classImages(groceryTrainDir, 'Yoggi-Strawberry-Yoghurt');
let work: string;

helper.init(require.resolve('node-red'));

before(async () => {
  work = tempDir('dataset');
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

function flow(dataset: FlowItem): FlowItem[] {
  return [
    TAB,
    dataset,
    { id: 'cap', z: 'f1', type: 'lane-capture', name: '', dataset: dataset.id, backbone: '', label: 'Yoggi', wires: [['out']] },
    { id: 'out', z: 'f1', type: 'helper' },
    ...catchAll('c1', ['cap']),
  ];
}

/** Sends frames one at a time; returns what came out and what was caught. */
async function captureAll(files: string[]): Promise<{ out: NodeMessage[]; caught: NodeMessage[] }> {
  const out = recorder(helper.getNode('out'));
  const caught = recorder(helper.getNode('c1-out'));
  for (const file of files) {
    const seen = out.length + caught.length;
    helper.getNode('cap').receive({ payload: fs.readFileSync(file) } as NodeMessage);
    const started = Date.now();
    while (out.length + caught.length === seen) {
      if (Date.now() - started > 10_000) throw new Error('capture did not answer');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  return { out, caught };
}

test('relative folders live in the Node-RED user directory, with the defaults when left blank', async () => {
  const userDir = tempDir('userdir');
  helper.settings({ userDir });
  try {
    await helper.load(nodes, flow(datasetConfig('ds', '', 'trained')));
    const node = helper.getNode('ds') as LaneDatasetNode;
    assert.equal(node.folder, path.join(userDir, 'lane-vision', 'dataset'));
    assert.equal(node.modelsFolder, path.join(userDir, 'trained'));
    await captureAll(PHOTOS.slice(0, 2));
    assert.equal(fs.readdirSync(path.join(userDir, 'lane-vision', 'dataset', 'Yoggi')).length, 2);
    assert.equal(await node.dataset(), await node.dataset(), 'one shared handle');
  } finally {
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});

test('a full label refuses new frames, or drops the oldest', async () => {
  await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'refuse'), path.join(work, 'm1'), { maxPerLabel: '2', whenFull: 'refuse' })));
  const refused = await captureAll(PHOTOS.slice(0, 3));
  assert.equal(refused.out.length, 2);
  assert.equal(caughtCode(refused.caught[0]), 'LABEL_FULL');
  await helper.unload();

  await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'rolling'), path.join(work, 'm2'), { maxPerLabel: 2, whenFull: 'drop-oldest' })));
  const rolling = await captureAll(PHOTOS.slice(0, 3));
  assert.equal(rolling.caught.length, 0);
  const third = rolling.out[2] as NodeMessage & { counts: Record<string, number>; dropped?: string[] };
  assert.deepEqual(third.counts, { Yoggi: 2 });
  assert.deepEqual(third.dropped, [(rolling.out[0].payload as { id: string }).id]);
});

test('an impossible cap setting is reported to the nodes using the dataset', async () => {
  await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'bad'), path.join(work, 'm3'), { maxPerLabel: 'lots' })));
  const { out, caught } = await captureAll(PHOTOS.slice(0, 1));
  assert.equal(out.length, 0);
  assert.equal(caughtCode(caught[0]), 'DATASET_OPTIONS');
  assert.match(caughtText(caught[0]), /Max per label/);
  assert.ok(!fs.existsSync(path.join(work, 'bad')), 'nothing created');
});

test('the counts endpoint answers 404 for unknown or other nodes and 200 with counts and versions for a deployed one', async () => {
  await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'counted'), path.join(work, 'm4'))));
  await helper.request().get('/lane-vision/lane-dataset/no-such-node/counts').expect(404);
  await helper.request().get('/lane-vision/lane-dataset/cap/counts').expect(404); // a node of another type
  await captureAll(PHOTOS.slice(0, 3));
  // A file copied in by hand shows up too.
  fs.mkdirSync(path.join(work, 'counted', 'by-hand'));
  fs.copyFileSync(PHOTOS[5], path.join(work, 'counted', 'by-hand', 'a.jpg'));
  const res = await helper.request().get('/lane-vision/lane-dataset/ds/counts').expect(200);
  assert.deepEqual(res.body.counts, { Yoggi: 3, 'by-hand': 1 });
  assert.equal(res.body.total, 4);
  assert.deepEqual(res.body.versions, []);
  assert.equal(res.body.activeVersion, null);
  assert.equal(res.body.folder, path.join(work, 'counted'));
});

test('every save prunes the store to "Keep versions", never the active or previous version', async () => {
  const { backbone, makeHead } = await import('../lib/model-store/helpers.js');
  await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'pruned'), path.join(work, 'm5'), { keepVersions: '2' })));
  const node = helper.getNode('ds') as LaneDatasetNode;
  const store = await node.models();
  const pruned = new Promise<number[][]>((resolve) => {
    const seen: number[][] = [];
    store.on('pruned', (versions) => {
      seen.push(versions);
      if (versions.includes(3)) resolve(seen);
    });
  });
  const save = (seed: number, activate = true) =>
    store.saveModel({ head: makeHead('softmax', 2, seed), labels: ['a', 'b'], backbone, datasetFingerprint: `d${seed}`, activate });
  await save(1);
  await save(2);
  await store.activate(1); // v1 active, v2 previous
  await save(3, false);
  await save(4, false);
  await save(5, false);
  const events = await pruned;
  assert.deepEqual((await store.listVersions()).map((v) => v.version), [1, 2, 4, 5], 'v3 went; v1 (active) and v2 (previous) stayed');
  assert.ok(events.flat().every((v) => v === 3), `only v3 was pruned: ${JSON.stringify(events)}`);
  await helper.unload();
  await save(6, false);
  assert.equal((await store.listVersions()).length, 5, 'a closed node no longer prunes');
});

test('a bad "Keep versions" setting is refused at deploy', async () => {
  await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'bad-keep'), path.join(work, 'm6'), { keepVersions: '-1' })));
  const { caught } = await captureAll(PHOTOS.slice(0, 1));
  assert.equal(caughtCode(caught[0]), 'DATASET_OPTIONS');
  assert.match(caughtText(caught[0]), /Keep versions/);
});

test('the editor imports a Teachable Machine export from a folder and from a URL as the active version; bad sources get clear errors', async () => {
  const { startModelServer } = await import('../lib/engine/model-server.js');
  const { modelDir } = await import('../support/shared.js');
  const server = await startModelServer();
  const cache = tempDir('tm-cache');
  const before = process.env.LANE_VISION_CACHE;
  process.env.LANE_VISION_CACHE = cache;
  const importTm = (source: unknown) => helper.request().post('/lane-vision/lane-dataset/ds/import-tm').set({ 'X-Lane-Vision': '1' }).send({ source });
  try {
    await helper.load(nodes, flow(datasetConfig('ds', path.join(work, 'tm-data'), path.join(work, 'tm-models'))));
    const config = helper.getNode('ds') as LaneDatasetNode;

    const fromFolder = await importTm(modelDir('teachable-machine-export'));
    assert.equal(fromFolder.status, 200, JSON.stringify(fromFolder.body));
    assert.deepEqual(fromFolder.body.labels, ['twin1', 'twin2']);
    assert.equal(fromFolder.body.active, true);

    const url = `${server.origin}/ok/teachable-machine-export/`; // a folder URL, as a shareable link is
    const fromUrl = await importTm(url);
    assert.equal(fromUrl.status, 200, JSON.stringify(fromUrl.body));
    assert.equal(fromUrl.body.version, fromFolder.body.version + 1);
    assert.ok(server.requests.some((r) => r.endsWith('/teachable-machine-export/metadata.json')), 'metadata.json fetched beside model.json');

    const store = await config.models();
    const active = await store.loadModel();
    assert.equal(active?.metadata.version, fromUrl.body.version, 'the URL import is the active version');
    assert.deepEqual(active?.metadata.classes.map((c) => c.label), ['twin1', 'twin2']);
    assert.equal(active?.metadata.importedFrom?.source, `${url}model.json`);

    // A URL with nothing behind it, a model without metadata.json, a server that is not there, no source at all.
    const missing = await importTm(`${server.origin}/ok/no-such-export/model.json`);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.code, 'MODEL_NOT_FOUND');
    assert.match(missing.body.error, /No model at .*no-such-export\/model\.json \(HTTP 404\): check the URL/);
    const notTm = await importTm(`${server.origin}/ok/mobilenet-v2-0.35-features/`);
    assert.equal(notTm.status, 400);
    assert.equal(notTm.body.code, 'TM_IMPORT_INVALID');
    assert.match(notTm.body.error, /no metadata\.json beside it/);
    const { freePort } = await import('../e2e/support.js');
    const offline = await importTm(`http://127.0.0.1:${await freePort()}/model.json`);
    assert.equal(offline.status, 502);
    assert.equal(offline.body.code, 'MODEL_OFFLINE');
    const empty = await importTm('  ');
    assert.equal(empty.status, 400);
    assert.equal(empty.body.code, 'TM_IMPORT_INVALID');
    // None of the failures made a version.
    assert.equal((await store.listVersions()).length, 2);
    const warnings = helper
      .log()
      .args.map((args: unknown[]) => args[0] as { id?: string; level?: number; msg?: unknown })
      .filter((entry) => entry.id === 'ds' && String(entry.msg).startsWith('lane-dataset.errors.tm-import-failed'));
    assert.equal(warnings.length, 4, 'one log line per failed import');
  } finally {
    if (before === undefined) delete process.env.LANE_VISION_CACHE;
    else process.env.LANE_VISION_CACHE = before;
    await server.close();
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
