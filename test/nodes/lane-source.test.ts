/**
 * lane-source in a Node-RED runtime (node-red-node-test-helper, compiled node from dist/):
 * synthetic frames at the set rate, start / stop / next, folder replay of the real grocery
 * photos with their labels, the editor button, a missing folder, and no burst of frames
 * after the event loop was blocked. Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Node, NodeAPI, NodeInitializer, NodeMessage } from 'node-red';
import { classImages, groceryTrainDir, YOGHURT_CLASSES } from '../support/shared.js';
import { TAB, caughtCode, compiledNode, helper, lastStatus as lastStatusOf, waitFor, type FlowItem } from './support/lane-flow.js';

helper.init(require.resolve('node-red'));

/**
 * The node with its real en-US messages: the helper's RED._ returns the key, and the tests
 * should read what an engineer reads (counts in the status, error texts).
 */
function withMessages(type: string): NodeInitializer {
  const init = compiledNode(type) as NodeInitializer;
  const catalog = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'dist', 'nodes', type, 'locales', 'en-US', `${type}.json`), 'utf8'));
  return (RED: NodeAPI) => {
    RED._ = (key: string, vars: Record<string, unknown> = {}) => {
      const text = key.split('.').reduce<any>((at, part) => at?.[part], catalog);
      return typeof text === 'string' ? text.replace(/__(\w+)__/g, (_, name) => String(vars[name])) : key;
    };
    return init(RED);
  };
}

const sourceNode = withMessages('lane-source');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const waitUntil = (predicate: () => boolean, what: string) => waitFor(predicate, what);

interface Frame {
  payload: Buffer;
  label: string | undefined;
  frame: { index: number; path?: string; source: string };
  receivedAt: number;
}

/** Everything a helper node receives, in order, with the time it arrived. */
function collect(id: string): any[] {
  const messages: any[] = [];
  helper.getNode(id).on('input', (msg: any) => messages.push({ ...msg, receivedAt: Date.now() }));
  return messages;
}

const lastStatus = (id: string) => lastStatusOf(helper.getNode(id));

function sourceFlow(config: Record<string, unknown>): FlowItem[] {
  return [
    TAB,
    { id: 's1', z: 'f1', type: 'lane-source', name: '', mode: 'synthetic', flavours: [], rate: 2, autostart: false, seed: 1, ...config, wires: [['out']] },
    { id: 'out', z: 'f1', type: 'helper' },
    { id: 'c1', z: 'f1', type: 'catch', scope: ['s1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', z: 'f1', type: 'helper' },
  ];
}

const send = (msg: object) => (helper.getNode('s1') as Node).receive(msg as NodeMessage);
const isJpeg = (buffer: unknown) => Buffer.isBuffer(buffer) && buffer[0] === 0xff && buffer[1] === 0xd8;

let work: string;
before(async () => {
  await helper.startServer();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-source-node-'));
});
after(async () => {
  await helper.stopServer();
  fs.rmSync(work, { recursive: true, force: true });
});
afterEach(() => helper.unload());

test('synthetic frames come at about the set rate, only of the chosen flavours, and stop on stop', async () => {
  await helper.load(sourceNode, sourceFlow({ rate: 4, flavours: ['strawberry', 'cherry'] }));
  const frames: Frame[] = collect('out');
  await sleep(300);
  assert.equal(frames.length, 0, 'autostart is off: nothing before start');
  assert.equal(lastStatus('s1')?.fill, 'grey');

  send({ payload: 'start' });
  await waitUntil(() => frames.length > 0, 'the first frame');
  const first = frames[0].receivedAt;
  await sleep(2600);
  send({ topic: 'stop' });
  await sleep(50);
  const sent = frames.length;
  const measured = frames.filter((f) => f.receivedAt - first < 2500).length - 1;
  // At 4 frames/s the ticks after the first fall at 0.25, 0.5, ... 2.25 s: 9 inside 2.5 s
  // (measured 9 with the load average at 7 on 2 cores). A loaded machine may skip a tick;
  // more than 10 would be a burst.
  assert.ok(measured >= 7 && measured <= 10, `${measured} frames in 2.5 s at 4/s`);
  await sleep(400);
  assert.equal(frames.length, sent, 'no frame after stop');

  for (const [i, f] of frames.entries()) {
    assert.ok(isJpeg(f.payload), 'payload is a JPEG Buffer');
    assert.ok(f.label === 'strawberry' || f.label === 'cherry', `label ${f.label}`);
    assert.deepEqual(f.frame, { index: i, source: 'synthetic' });
  }
  assert.deepEqual(new Set(frames.map((f) => f.label)), new Set(['strawberry', 'cherry']), 'both flavours appear');
  await waitUntil(() => lastStatus('s1')?.text?.includes(`${sent}`) === true, 'the status count');
  assert.equal(lastStatus('s1')?.fill, 'grey', 'stopped shows grey');
});

test('next sends exactly one frame, start twice runs one loop, and unknown commands reach a catch node', async () => {
  await helper.load(sourceNode, sourceFlow({ rate: 2 }));
  const frames: Frame[] = collect('out');
  const caught = collect('caught');
  send({ topic: 'next' });
  send({ payload: 'next' });
  await waitUntil(() => frames.length === 2, 'two frames');
  await sleep(400);
  assert.equal(frames.length, 2, 'next sends one frame each, no loop starts');
  assert.deepEqual(frames.map((f) => f.frame.index), [0, 1]);

  send({ payload: 'jump' });
  send({ payload: Buffer.from('start') });
  await waitUntil(() => caught.length === 2, 'two caught errors');
  assert.match(caught[0].error.message, /Send 'start', 'stop' or 'next'/);
  assert.equal(caught[0].error.source.id, 's1');
  assert.equal(caughtCode(caught[0]), 'SOURCE_BAD_COMMAND');

  send({ payload: 'start' });
  send({ payload: 'start' });
  await sleep(1200);
  send({ payload: 'stop' });
  const looped = frames.length - 2;
  // One loop at 2/s sends at 0, 0.5 and 1 s; a second loop would double that. (A loaded
  // machine may skip a tick, never add one.)
  assert.ok(looped >= 1 && looped <= 3, `one loop at 2/s gives 3 frames in 1.2 s, got ${looped}`);
});

test('folder replay sends the real photos with their folder name as label, seeded and looping', async () => {
  // Two classes, two photos each, as symlinks: a small folder to loop over quickly.
  const lane = path.join(work, 'lane');
  for (const label of YOGHURT_CLASSES.slice(0, 2)) {
    fs.mkdirSync(path.join(lane, label), { recursive: true });
    for (const file of classImages(groceryTrainDir, label).slice(0, 2)) fs.symlinkSync(file, path.join(lane, label, path.basename(file)));
  }
  const run = async (seed: number) => {
    await helper.load(sourceNode, sourceFlow({ mode: 'folder', folder: lane, rate: 50, seed, shuffle: true, loop: true }));
    const frames: Frame[] = collect('out');
    send({ payload: 'start' });
    await waitUntil(() => frames.length >= 8, 'two passes');
    send({ payload: 'stop' });
    await helper.unload();
    return frames.slice(0, 8);
  };
  const frames = await run(7);
  for (const f of frames) {
    assert.equal(f.frame.source, 'folder');
    assert.equal(path.basename(path.dirname(f.frame.path!)), f.label, 'label is the folder name');
    assert.ok(f.payload.equals(fs.readFileSync(f.frame.path!)), 'payload is the file bytes');
  }
  const firstPass = frames.slice(0, 4).map((f) => f.frame.path);
  const secondPass = frames.slice(4).map((f) => f.frame.path);
  assert.equal(new Set(firstPass).size, 4, 'a pass sends every photo once');
  assert.deepEqual(new Set(secondPass), new Set(firstPass), 'the loop starts over');
  assert.deepEqual((await run(7)).map((f) => f.frame.path), frames.map((f) => f.frame.path), 'the same seed gives the same order');
});

test('the shared grocery train folder replays with its class names as labels', async () => {
  await helper.load(sourceNode, sourceFlow({ mode: 'folder', folder: groceryTrainDir, rate: 100 }));
  const frames: Frame[] = collect('out');
  for (let i = 0; i < 5; i++) send({ payload: 'next' });
  await waitUntil(() => frames.length === 5, 'five frames');
  const classes = new Set(fs.readdirSync(groceryTrainDir));
  for (const f of frames) assert.ok(classes.has(f.label!), `${f.label} is a class folder`);
});

test('a missing folder shows an error status and start fails into a catch node', async () => {
  const missing = path.join(work, 'no-such-folder');
  await helper.load(sourceNode, sourceFlow({ mode: 'folder', folder: missing, autostart: true }));
  const caught = collect('caught');
  await waitUntil(() => lastStatus('s1')?.fill === 'red', 'the error status');
  assert.match(lastStatus('s1')!.text!, /not found/i);
  send({ payload: 'start' });
  await waitUntil(() => caught.length === 1, 'the caught error');
  assert.match(caught[0].error.message, /no-such-folder/);
  assert.equal(caughtCode(caught[0]), 'SOURCE_NOT_FOUND');
  const toggle = await helper.request().post('/lane-vision/lane-source/s1/toggle').set(EDITOR).send({});
  assert.equal(toggle.status, 500, 'the editor button reports the failure');
  assert.match(toggle.body.error, /not found/i);
  assert.equal(toggle.body.code, 'SOURCE_NOT_FOUND');
});

/** What the editor's button sends (nodes/lane-source/lane-source.html). */
const EDITOR = { 'X-Lane-Vision': '1' };

test('autostart sends on deploy; the editor button stops and starts; 404 for an unknown node; cross-site requests are refused', async () => {
  await helper.load(sourceNode, sourceFlow({ autostart: true, rate: 20 }));
  const frames: Frame[] = collect('out');
  await waitUntil(() => frames.length >= 3, 'frames after deploy');
  // A page of another site cannot stop the camera, even without adminAuth.
  for (const headers of [{}, { ...EDITOR, Origin: 'http://evil.example' }, { ...EDITOR, 'Sec-Fetch-Site': 'cross-site' }]) {
    const refused = await helper.request().post('/lane-vision/lane-source/s1/toggle').set(headers).send({});
    assert.equal(refused.status, 403, JSON.stringify(headers));
    assert.equal(refused.body.code, 'REQUEST_CROSS_SITE');
  }
  const sentBefore = frames.length;
  await waitUntil(() => frames.length > sentBefore, 'still running after the refused requests');
  const stop = await helper.request().post('/lane-vision/lane-source/s1/toggle').set(EDITOR).send({});
  assert.equal(stop.status, 200);
  assert.equal(stop.body.running, false);
  await sleep(100);
  const stoppedAt = frames.length;
  assert.ok(stop.body.sent >= 3 && stop.body.sent <= stoppedAt);
  await sleep(300);
  assert.equal(frames.length, stoppedAt, 'stopped by the button');
  const start = await helper.request().post('/lane-vision/lane-source/s1/toggle').set(EDITOR).send({});
  assert.equal(start.body.running, true);
  await waitUntil(() => frames.length > stoppedAt, 'frames after the button started it again');
  assert.equal((await helper.request().post('/lane-vision/lane-source/nope/toggle').set(EDITOR).send({})).status, 404);
});

test('a blocked event loop skips ticks instead of sending a burst of stored-up frames', async () => {
  await helper.load(sourceNode, sourceFlow({ rate: 20, autostart: true, flavours: ['vanilla'] }));
  const frames: Frame[] = collect('out');
  await waitUntil(() => frames.length >= 3, 'running');
  const blockedUntil = Date.now() + 1000;
  while (Date.now() < blockedUntil) {
    // A downstream node hogging the CPU for a second: 20 ticks are missed.
  }
  const before = frames.length;
  await sleep(200);
  const after = frames.length - before;
  // Paced again at 20/s: about 4 in 200 ms (plus the frame already under way), never the 20 missed ones.
  assert.ok(after <= 6, `${after} frames in the 200 ms after the block`);
});

test('closing a running source stops its timer: no frames, no errors after unload', async () => {
  await helper.load(sourceNode, sourceFlow({ rate: 50, autostart: true }));
  const frames: Frame[] = collect('out');
  await waitUntil(() => frames.length >= 3, 'running');
  await helper.unload();
  const count = frames.length;
  await sleep(300);
  assert.equal(frames.length, count);
});
