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
import helper from 'node-red-node-test-helper';
import type { Node } from 'node-red';
import { classImages, groceryTrainDir, YOGHURT_CLASSES } from '../support/shared.js';

helper.init(require.resolve('node-red'));

/**
 * The node with its real en-US messages: the helper's RED._ returns the key, and the tests
 * should read what an engineer reads (counts in the status, error texts).
 */
function withMessages(type: string): (RED: any) => unknown {
  const init = require(`../../dist/nodes/${type}/${type}.js`);
  const catalog = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'dist', 'nodes', type, 'locales', 'en-US', `${type}.json`), 'utf8'));
  return (RED) => {
    RED._ = (key: string, vars: Record<string, unknown> = {}) => {
      const text = key.split('.').reduce<any>((at, part) => at?.[part], catalog);
      return typeof text === 'string' ? text.replace(/__(\w+)__/g, (_, name) => String(vars[name])) : key;
    };
    return init(RED);
  };
}

const sourceNode = withMessages('lane-source');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

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

/** Every status the node showed since the flow was loaded (the helper spies on Node.prototype). */
function statusesOf(id: string): { fill?: string; shape?: string; text?: string }[] {
  const spy = (helper as unknown as { _NodePrototype: { status: { getCalls(): { thisValue: Node; args: any[] }[] } } })._NodePrototype.status;
  return spy
    .getCalls()
    .filter((call) => call.thisValue.id === id)
    .map((call) => call.args[0]);
}

const lastStatus = (id: string) => statusesOf(id).at(-1);

function sourceFlow(config: Record<string, unknown>): object[] {
  return [
    { id: 'f1', type: 'tab', label: 'lane' },
    { id: 's1', z: 'f1', type: 'lane-source', name: '', mode: 'synthetic', flavours: [], rate: 2, autostart: false, seed: 1, ...config, wires: [['out']] },
    { id: 'out', z: 'f1', type: 'helper' },
    { id: 'c1', z: 'f1', type: 'catch', scope: ['s1'], uncaught: false, wires: [['caught']] },
    { id: 'caught', z: 'f1', type: 'helper' },
  ];
}

const send = (msg: object) => (helper.getNode('s1') as Node).receive(msg);
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
  await helper.load(sourceNode, sourceFlow({ rate: 10, flavours: ['strawberry', 'cherry'] }));
  const frames: Frame[] = collect('out');
  await sleep(300);
  assert.equal(frames.length, 0, 'autostart is off: nothing before start');
  assert.equal(lastStatus('s1')?.fill, 'grey');

  send({ payload: 'start' });
  await waitUntil(() => frames.length > 0, 'the first frame');
  const first = frames[0].receivedAt;
  await sleep(2000);
  send({ topic: 'stop' });
  await sleep(50);
  const sent = frames.length;
  const measured = frames.filter((f) => f.receivedAt - first < 2000).length - 1;
  // 10 frames/s for 2 s; synthetic frames take ~30 ms to render here, well inside the 100 ms period.
  assert.ok(measured >= 17 && measured <= 21, `${measured} frames in 2 s at 10/s`);
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
  await helper.load(sourceNode, sourceFlow({ rate: 5 }));
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

  send({ payload: 'start' });
  send({ payload: 'start' });
  await sleep(1100);
  send({ payload: 'stop' });
  const looped = frames.length - 2;
  assert.ok(looped >= 5 && looped <= 7, `one loop at 5/s gives ~6 frames in 1.1 s, got ${looped}`);
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
  const toggle = await helper.request().post('/lane-vision/lane-source/s1/toggle').send({});
  assert.equal(toggle.status, 500, 'the editor button reports the failure');
  assert.match(toggle.body.error, /not found/i);
});

test('autostart sends on deploy; the editor button stops and starts; 404 for an unknown node', async () => {
  await helper.load(sourceNode, sourceFlow({ autostart: true, rate: 20 }));
  const frames: Frame[] = collect('out');
  await waitUntil(() => frames.length >= 3, 'frames after deploy');
  const stop = await helper.request().post('/lane-vision/lane-source/s1/toggle').send({});
  assert.equal(stop.status, 200);
  assert.equal(stop.body.running, false);
  await sleep(100);
  const stoppedAt = frames.length;
  assert.ok(stop.body.sent >= 3 && stop.body.sent <= stoppedAt);
  await sleep(300);
  assert.equal(frames.length, stoppedAt, 'stopped by the button');
  const start = await helper.request().post('/lane-vision/lane-source/s1/toggle').send({});
  assert.equal(start.body.running, true);
  await waitUntil(() => frames.length > stoppedAt, 'frames after the button started it again');
  assert.equal((await helper.request().post('/lane-vision/lane-source/nope/toggle').send({})).status, 404);
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
