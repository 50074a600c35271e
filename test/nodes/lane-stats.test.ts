/**
 * lane-stats in the test helper, fed by a real lane-classify (backbone mode: the real
 * ImageNet MobileNet's own classes, so no training) with real photos: one message per
 * widget output after results, the last frame taken from the frames lane-classify keeps
 * aside (its Include frame is off), a non-result message reported once, bad settings
 * reported on the node.
 */
import { afterEach, before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import type { Node, NodeMessage } from 'node-red';
import { backboneConfig, caughtCode, compiledNode, helper, lastStatus, recorder, TAB, waitFor, waitForStatus, type FlowItem } from './support/lane-flow.js';
import { classImages, groceryValDir, modelDir } from '../support/shared.js';

helper.init(require.resolve('node-red'));

const IMAGENET_MODEL = modelDir('mobilenet-v1-0.25-imagenet');
const nodes = [compiledNode('lane-backbone'), compiledNode('lane-classify'), compiledNode('lane-stats')];
const OUTPUTS = ['counts', 'rejectRate', 'confidence', 'throughput', 'frame', 'model'];
const photos = ['Arla-Mild-Vanilla-Yoghurt', 'Yoggi-Strawberry-Yoghurt'].map((product) => fs.readFileSync(classImages(groceryValDir, product)[0]));

before(async () => {
  await helper.startServer();
});

after(async () => {
  await helper.stopServer();
});

afterEach(async () => {
  await helper.unload();
});

function flow(stats: Record<string, unknown> = {}): FlowItem[] {
  return [
    TAB,
    backboneConfig('bb', IMAGENET_MODEL),
    { id: 'c1', z: 'f1', type: 'lane-classify', name: '', backbone: 'bb', dataset: '', mode: 'backbone', threshold: 0.5, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], outputs: 1, wires: [['s1']] },
    { id: 's1', z: 'f1', type: 'lane-stats', name: '', interval: 0.5, windowMinutes: 10, frameSize: 96, ...stats, wires: OUTPUTS.map((name) => [name]) },
    ...OUTPUTS.map((id) => ({ id, z: 'f1', type: 'helper' })),
    { id: 'cs', z: 'f1', type: 'catch', scope: ['s1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', z: 'f1', type: 'helper' },
  ];
}

test('after real results: counts, reject rate, confidence, frames/s, the kept-aside frame and the model, one output each', async () => {
  await helper.load(nodes as never, flow());
  const seen = Object.fromEntries(OUTPUTS.map((id) => [id, recorder(helper.getNode(id))]));
  assert.equal(lastStatus(helper.getNode('s1'))?.text, 'lane-stats.status.waiting');
  for (const image of [...photos, ...photos]) helper.getNode('c1').receive({ payload: image } as never);

  // The emission after the fourth result counts all four.
  const counts = await waitFor(() => seen.counts.find((msg) => total(msg) === 4), 'counts of four results', 60_000);
  assert.equal(counts.topic, 'frames per label');
  const payload = counts.payload as { label: string; count: number }[];
  assert.deepEqual(payload.map((entry) => entry.label), [...payload.map((entry) => entry.label)].sort((a, b) => a.localeCompare(b)), 'sorted by label');

  const throughput = await seen.throughput.next();
  assert.equal(throughput.topic, 'frames/s');
  assert.equal(typeof throughput.payload, 'number');
  const confidence = await seen.confidence.next();
  assert.ok((confidence.payload as number) > 0 && (confidence.payload as number) <= 100);
  const reject = await seen.rejectRate.next();
  assert.ok((reject.payload as number) >= 0 && (reject.payload as number) <= 100);

  const model = await seen.model.next();
  assert.equal(model.payload, 'ImageNet (backbone)', 'version 0: the backbone\'s own classes');
  const frame = (await seen.frame.next()) as NodeMessage & { label: string };
  assert.match(String(frame.payload), /^data:image\/jpeg;base64,/);
  assert.equal(typeof frame.label, 'string');

  // Later emissions: counts again, but the same model and no new frame are not repeated.
  const emitted = seen.counts.length;
  await waitFor(() => seen.counts.length >= emitted + 1, 'one more emission');
  const framesThen = seen.frame.length;
  await waitFor(() => seen.counts.length >= emitted + 2, 'another emission');
  assert.equal(seen.frame.length, framesThen, 'no new frame came: none sent');
  assert.equal(seen.model.length, 1, 'the model once');
  await waitForStatus(helper.getNode('s1') as Node, (status) => status.fill === 'green', 'a ready status');
});

test('a message without a result fails once; later ones are counted on the status, not reported each', async () => {
  await helper.load(nodes as never, flow());
  const caught = recorder(helper.getNode('caught'));
  const counts = recorder(helper.getNode('counts'));
  const stats = helper.getNode('s1');
  stats.receive({ payload: 'hello' } as never);
  stats.receive({ payload: 'again' } as never);
  stats.receive({ payload: 'and again' } as never);
  const first = await caught.next();
  assert.equal(caughtCode(first), 'STATS_NO_RESULT');
  // A real result after them: its emission comes after all three were handled.
  helper.getNode('c1').receive({ payload: photos[0] } as never);
  await counts.next('an emission', 60_000);
  assert.equal(caught.length, 1, 'one error for three bad messages');
  await waitForStatus(stats as Node, (status) => /ignored/.test(String(status.text)), 'the ignored count on the status');
});

test('a bad setting shows on the node and every message fails with it', async () => {
  await helper.load(nodes as never, flow({ interval: 0.1 }));
  const stats = helper.getNode('s1');
  assert.equal(lastStatus(stats)?.fill, 'red');
  assert.match(String(lastStatus(stats)?.text), /Every.*0\.5/);
  const caught = recorder(helper.getNode('caught'));
  stats.receive({ payload: 'x' } as never);
  assert.equal(caughtCode(await caught.next()), 'STATS_SETTINGS_INVALID');
});

function total(msg: NodeMessage): number {
  return (msg.payload as { count: number }[]).reduce((sum, entry) => sum + entry.count, 0);
}
