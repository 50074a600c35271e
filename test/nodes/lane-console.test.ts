/**
 * lane-console in the test helper: the page and its reads on httpNode, the write routes on
 * httpAdmin (CSRF header and origin, body checks, 404 / 409), frames in (camera and
 * classified copies), teaching, training a candidate, promote / discard / rollback, the
 * event stream, and shutdown. Real backbone, real dataset and model store in temp folders,
 * real synthetic yoghurt frames. The helper stubs permissions (every request is allowed):
 * test/e2e/console.test.ts checks them against a real Node-RED with adminAuth.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import request from 'supertest';
import type { Node } from 'node-red';
import type * as Lib from '../../src/index.js';
import type { ClassificationResult } from '../../src/classify/index.js';
import type { StateView } from '../../nodes/lane-console/types.js';
import { backboneConfig, catchAll, caughtCode, caughtText, compiledModule, compiledNode, datasetConfig, helper, recorder, tempDir, waitFor, type FlowItem } from './support/lane-flow.js';
import { modelDir } from '../support/shared.js';

const lib = compiledModule<typeof Lib>('src/index.js');
helper.init(require.resolve('node-red'));

const PAGE = '/test-console';
const ADMIN = '/lane-vision/lane-console';
const FEATURES_MODEL = modelDir('mobilenet-v2-0.35-features');
const CSRF = { 'X-Lane-Vision': '1' };

/** The RED the console module was given: its httpNode is the app the page is served on. */
let RED: { httpNode: http.RequestListener } | undefined;
const consoleNode = compiledNode('lane-console');
/** The helper's RED._ returns keys; the console gets its real en-US messages, as an engineer reads them. */
const catalog = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'dist', 'nodes', 'lane-console', 'locales', 'en-US', 'lane-console.json'), 'utf8'));
function translate(key: string, vars: Record<string, unknown> = {}): string {
  const text = key.split('.').reduce<any>((at, part) => at?.[part], catalog);
  return typeof text === 'string' ? text.replace(/__(\w+)__/g, (_, name) => String(vars[name])) : key;
}
const nodes = [
  compiledNode('lane-backbone'),
  compiledNode('lane-dataset'),
  (red: any) => {
    RED = red;
    red._ = translate;
    return consoleNode(red);
  },
];

interface Frame {
  label: string;
  image: Buffer;
}
let frames: Frame[];
let work: string;
let server: http.Server | undefined;

before(async () => {
  await helper.startServer();
  // 24 frames, 12 of each flavour, rendered once.
  const lane = lib.createSyntheticLane({ flavours: ['strawberry', 'blueberry'], seed: 3, order: 'round-robin', width: 320, height: 240 });
  frames = [];
  for (let i = 0; i < 24; i++) {
    const frame = (await lane.next())!;
    frames.push({ label: frame.label, image: frame.image as Buffer });
  }
});

after(async () => {
  await helper.stopServer();
});

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
  await helper.unload();
});

function flow(consoleExtra: Record<string, unknown> = {}, datasetExtra: Record<string, unknown> = {}): FlowItem[] {
  work = tempDir('console');
  return [
    { id: 'f1', type: 'tab', label: 'lane' },
    backboneConfig('bb', FEATURES_MODEL),
    datasetConfig('ds', path.join(work, 'dataset'), path.join(work, 'models'), datasetExtra),
    { id: 'lc', z: 'f1', type: 'lane-console', name: 'test lane', backbone: 'bb', dataset: 'ds', path: PAGE, frames: 12, rejects: 6, windowMinutes: 10, wires: [], ...consoleExtra },
    ...catchAll('caught', ['lc']),
  ];
}

async function load(consoleExtra: Record<string, unknown> = {}, datasetExtra: Record<string, unknown> = {}): Promise<Node> {
  await helper.load(nodes, flow(consoleExtra, datasetExtra));
  return helper.getNode('lc');
}

/** The httpNode app, listening for real (the event stream needs a socket). */
async function pageServer(): Promise<string> {
  server = http.createServer(RED!.httpNode);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${PAGE}`;
}

function classification(label: string, confidence: number, frameHash = ''): ClassificationResult {
  return {
    label: confidence >= 0.6 ? label : 'unknown',
    code: confidence >= 0.6 ? 1 : 0,
    confidence,
    accepted: confidence >= 0.6,
    threshold: 0.6,
    topK: [{ label, code: 1, confidence }],
    modelVersion: 1,
    backboneId: 'test',
    engine: 'tfjs',
    backend: 'cpu',
    frameHash,
    timings: { queueMs: 0, decodeMs: 3, featuresMs: 20, headMs: 1, totalMs: 24 },
  };
}

/** Sends frames straight from the camera, with the true label as lane-source does. */
function sendFrames(node: Node, list: Frame[]): void {
  for (const frame of list) node.receive({ payload: frame.image, label: frame.label } as never);
}

async function stateOf(node: Node): Promise<StateView> {
  return (node as unknown as { operatorConsole: { state(): Promise<StateView> } }).operatorConsole.state();
}

async function waitForFrames(node: Node, count: number): Promise<StateView> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const state = await stateOf(node);
    if (state.stats.frames >= count) return state;
    if (Date.now() > deadline) throw new Error(`expected ${count} frames, have ${state.stats.frames}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function post(action: string, body: unknown, id = 'lc') {
  return helper.request().post(`${ADMIN}/${id}/${action}`).set(CSRF).send(body as object);
}

/** Reads the console's Server-Sent Events. */
async function openStream(url: string) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const events: { event: string; data: any }[] = [];
  let ended = false;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    events,
    get ended() {
      return ended;
    },
    async next(event: string, match: (data: any) => boolean = () => true, timeoutMs = 30_000): Promise<any> {
      const found = await waitFor(() => events.find((e) => e.event === event && match(e.data)), `event ${event}`, timeoutMs);
      return found.data;
    },
    async close() {
      controller.abort();
      await reading;
    },
  };
}

test('one machine cannot take every event stream: past its share it gets 429, and a closed stream frees its place', async () => {
  const node = await load();
  const url = `${await pageServer()}/events`;
  const streams = [];
  for (let i = 0; i < 8; i++) streams.push(await openStream(url));
  const refused = await fetch(url);
  assert.equal(refused.status, 429);
  assert.match(((await refused.json()) as { error: string }).error, /from this machine/);
  await streams.pop()!.close();
  const lane = (node as unknown as { operatorConsole: { viewers: number } }).operatorConsole;
  await waitFor(() => lane.viewers === 7 || undefined, 'the closed stream to be forgotten');
  streams.push(await openStream(url));
  for (const stream of streams) await stream.close();
});

test('serves the page and its assets on httpNode; anything else below the path is refused', async () => {
  await load();
  const app = request(RED!.httpNode);
  const redirect = await app.get(PAGE);
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.location, `${PAGE}/`);
  const page = await app.get(`${PAGE}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type'], /text\/html/);
  assert.match(page.text, /<script type="module" src="js\/main.js">/);
  assert.match(page.headers['content-security-policy'], /default-src 'self'/);
  assert.match(page.headers['content-security-policy'], /connect-src 'self'/);
  const script = await app.get(`${PAGE}/js/main.js`);
  assert.equal(script.status, 200);
  assert.match(script.headers['content-type'], /javascript/);
  const css = await app.get(`${PAGE}/console.css`);
  assert.equal(css.status, 200);
  for (const probe of ['/../package.json', '/%2e%2e/package.json', '/js/../../package.json', '/nope.js', '/frames/12.jpg', '/images/none.jpg', '/api/other']) {
    const res = await app.get(PAGE + probe);
    assert.equal(res.status, 404, `${probe} -> ${res.status}`);
  }
  assert.equal((await app.get(`${PAGE}/api/similar?frame=x`)).status, 400);
  const state = (await app.get(`${PAGE}/api/state`)).body as StateView;
  assert.deepEqual(state.node, { id: 'lc', name: 'test lane', path: PAGE });
  assert.equal(state.adminRoot, '/');
  assert.deepEqual(state.settings, { frames: 12, rejects: 6, windowMinutes: 10 });
  // Another path is not the console's business.
  assert.equal((await app.get('/somewhere-else')).status, 404);
});

test('a frame sent by the camera and again classified is one frame; unsure ones queue; thumbnails are JPEGs', async () => {
  const node = await load();
  const caught = recorder(helper.getNode('caught-out'));
  const [first, second] = frames;
  const hash = (await lib.readImageSource(first.image)).hash;
  node.receive({ payload: first.image, label: first.label } as never);
  await waitForFrames(node, 1);
  node.receive({ payload: 'unknown', frame: first.image, classification: classification(first.label, 0.4, hash), label: first.label } as never);
  node.receive({ payload: second.label, frame: second.image, classification: classification(second.label, 0.9) } as never);
  let state: StateView | undefined;
  await waitFor(() => {
    stateOf(node).then((s) => (state = s));
    return state && state.frames.length === 2 && state.frames.every((f) => f.classified);
  }, 'two classified frames');
  const [one, two] = state!.frames;
  assert.equal(one.truth, first.label);
  assert.equal(one.accepted, false);
  assert.equal(one.label, 'unknown');
  assert.equal(two.label, second.label);
  assert.equal(two.latencyMs, 24);
  const live = await stateOf(node);
  assert.deepEqual(live.rejects.map((f) => f.id), [one.id], 'the unsure frame waits for a label');
  assert.equal(live.stats.frames, 2);
  assert.deepEqual(live.stats.counts, { unknown: 1, [second.label]: 1 });

  const app = request(RED!.httpNode);
  const small = await app.get(`${PAGE}/frames/${one.id}.jpg`).buffer(true);
  assert.equal(small.status, 200);
  assert.equal(small.headers['content-type'], 'image/jpeg');
  const meta = await sharp(small.body).metadata();
  assert.equal(meta.format, 'jpeg');
  assert.equal(Math.max(meta.width!, meta.height!), 200);
  const large = await sharp((await app.get(`${PAGE}/frames/${one.id}.jpg?size=large`).buffer(true)).body).metadata();
  assert.equal(Math.max(large.width!, large.height!), 320, 'never enlarged beyond the frame');

  // Frames the console cannot read fail the message, for a catch node.
  node.receive({ payload: 42 } as never);
  assert.match(caughtText(await caught.next()), /Expected an image/);
  node.receive({ payload: 'x', classification: classification('x', 0.9) } as never);
  const noFrame = await caught.next();
  assert.equal(caughtCode(noFrame), 'CONSOLE_NO_FRAME');
});

test('a result without msg.frame (lane-classify with Frame off) still shows its frame: the console takes the copy kept under the message id', async () => {
  const recent = compiledModule<typeof import('../../nodes/shared/recent-frames.js')>('nodes/shared/recent-frames.js');
  const node = await load();
  const caught = recorder(helper.getNode('caught-out'));
  const [first] = frames;
  recent.keepFrame('msg-kept', first.image);
  node.receive({ _msgid: 'msg-kept', payload: first.label, classification: classification(first.label, 0.9) } as never);
  let state: StateView | undefined;
  await waitFor(() => {
    stateOf(node).then((s) => (state = s));
    return state && state.frames.length === 1 && state.frames[0].classified;
  }, 'the classified frame');
  assert.equal(state!.frames[0].label, first.label);
  // A result whose frame was never kept (another message id) still fails, for a catch node.
  node.receive({ _msgid: 'msg-not-kept', payload: 'x', classification: classification('x', 0.9) } as never);
  assert.equal(caughtCode(await caught.next()), 'CONSOLE_NO_FRAME');
});

test('writes need the header, the same origin and a sound body; nothing changes when refused', async () => {
  const node = await load();
  sendFrames(node, frames.slice(0, 2));
  await waitForFrames(node, 2);
  const capture = () => helper.request().post(`${ADMIN}/lc/capture`);

  const noHeader = await capture().send({ label: 'strawberry' });
  assert.equal(noHeader.status, 403);
  assert.match(noHeader.body.error, /X-Lane-Vision/);
  assert.equal((await capture().set({ 'X-Lane-Vision': 'yes' }).send({ label: 'strawberry' })).status, 403);
  const crossOrigin = await capture().set({ ...CSRF, Origin: 'http://evil.example' }).send({ label: 'strawberry' });
  assert.equal(crossOrigin.status, 403);
  assert.match(crossOrigin.body.error, /evil\.example/);
  assert.equal((await capture().set({ ...CSRF, 'Sec-Fetch-Site': 'cross-site' }).send({ label: 'strawberry' })).status, 403);
  assert.equal((await capture().set({ ...CSRF, Origin: 'null' }).send({ label: 'strawberry' })).status, 403);

  const cases: [string, unknown, RegExp][] = [
    ['capture', { label: '../etc' }, /Label "..\/etc" is not allowed/],
    ['capture', { label: '' }, /is not allowed: it is empty/],
    ['capture', {}, /A "label" is needed/],
    ['capture', { label: 'ok', colour: 'red' }, /Unexpected field "colour"/],
    ['capture', { label: 'ok', frames: [] }, /"frames" must be a list of 1 to 200/],
    ['capture', { label: 'ok', frames: ['1'] }, /"frames\[\]" must be a whole number/],
    ['capture', { label: 'ok', count: 0 }, /"count" must be a whole number from 1 to 200/],
    ['capture', { label: 'ok', count: 2, frames: [1] }, /not both/],
    ['capture', [1, 2], /must be a JSON object/],
    ['relabel', { id: 'x', label: 'a/b' }, /path separator/],
    ['capture', { label: 'unknown' }, /"unknown" is reserved/],
    ['relabel', { id: 'x', label: 'Unknown' }, /"unknown" is reserved/],
    ['relabel', { id: '', label: 'ok' }, /"id" must be the id of a dataset image/],
    ['delete', { id: 'x'.repeat(600) }, /"id" must be the id/],
    ['promote', { version: 1.5 }, /"version" must be a whole number/],
    ['promote', { version: '1' }, /"version" must be a whole number/],
    ['train', { epochs: 3 }, /Unexpected field "epochs"; this action takes strategy, head/],
    ['train', { strategy: 'guess' }, /"strategy" must be one of auto, fixed/],
    ['train', { strategy: 'auto', head: 'svm' }, /"head" goes with the fixed strategy/],
    ['dismiss', { frames: 'all' }, /"frames" must be a list/],
  ];
  for (const [action, body, message] of cases) {
    const res = await post(action, body);
    assert.equal(res.status, 400, `${action} ${JSON.stringify(body)} -> ${res.status} ${res.text}`);
    assert.match(res.body.error, message);
  }

  // A body that is not JSON gets a JSON answer, not Express's HTML page with a stack trace.
  const malformed = await capture().set(CSRF).set('Content-Type', 'application/json').send('{"label": ');
  assert.equal(malformed.status, 400);
  assert.match(malformed.headers['content-type'], /application\/json/);
  assert.deepEqual(malformed.body, { error: 'The request body is not valid JSON.', code: 'REQUEST_INVALID_JSON' });
  assert.doesNotMatch(malformed.text, /<html|at .*\.js:\d+/i);

  assert.equal((await post('capture', { label: 'strawberry' }, 'no-such-node')).status, 404);
  assert.equal((await post('capture', { label: 'strawberry' }, 'ds')).status, 404, 'another node type is not a console');
  assert.match((await post('explode', {})).body.error, /Unknown console action "explode"/);
  assert.equal((await post('capture', { label: 'strawberry', frames: [123] })).status, 404, 'a frame no longer kept');
  assert.equal((await post('delete', { id: 'missing' })).status, 404);
  assert.equal((await post('relabel', { id: 'missing', label: 'x' })).status, 404);
  assert.equal((await post('promote', { version: 3 })).status, 404);
  const rollback = await post('rollback', {});
  assert.equal(rollback.status, 409);
  assert.match(rollback.body.error, /nothing to roll back/);
  const train = await post('train', {});
  assert.equal(train.status, 409);
  assert.match(train.body.error, /at least 2 labels/);
  assert.equal((await post('cancel-train', {})).status, 409);

  const dataset = await lib.openDataset(path.join(work, 'dataset'));
  assert.equal(dataset.size, 0, 'nothing was stored');
});

test('teaching: capture chosen frames, the latest one and the next N; relabel, delete, dismiss; the gallery follows', async () => {
  const node = await load();
  const stream = await openStream(`${await pageServer()}/events`);
  const first = await stream.next('state');
  assert.equal(first.node.id, 'lc');
  sendFrames(node, frames.slice(0, 6));
  const state = await waitForFrames(node, 6);
  await stream.next('frame', (f) => f.id === state.frames[5].id);
  const ids = (label: string) => state.frames.filter((f) => f.truth === label).map((f) => f.id);

  const chosen = await post('capture', { label: 'strawberry', frames: ids('strawberry') });
  assert.equal(chosen.status, 200, chosen.text);
  assert.equal(chosen.body.added.length, 3);
  assert.deepEqual(chosen.body.duplicates, []);
  await stream.next('dataset', (d) => d.counts.strawberry === 3);
  const marked = await stream.next('frame', (f) => f.stored === 'strawberry');
  assert.ok(ids('strawberry').includes(marked.id), 'a stored frame is marked as such');
  const again = await post('capture', { label: 'strawberry', frames: ids('strawberry').slice(0, 1) });
  assert.equal(again.body.duplicates.length, 1, 'the same frame is not stored twice');

  const latest = await post('capture', { label: 'blueberry' });
  assert.equal(latest.status, 200);
  assert.deepEqual(latest.body.added.map((a: { frame: number }) => a.frame), [state.frames[5].id]);

  // The next 3 frames, whatever they show.
  assert.equal((await post('capture', { label: 'blueberry', count: 3 })).status, 200);
  const busy = await post('capture', { label: 'blueberry', count: 3 });
  assert.equal(busy.status, 409);
  assert.match(busy.body.error, /Already capturing/);
  assert.equal((await stream.next('capture', (c) => c !== null)).remaining, 3);
  sendFrames(node, frames.slice(6, 9));
  await stream.next('capture', (c) => c === null);
  const dataset = await lib.openDataset(path.join(work, 'dataset'));
  await waitFor(() => dataset.size === 7 || undefined, 'seven stored frames');
  assert.deepEqual(dataset.counts(), { blueberry: 4, strawberry: 3 });
  assert.deepEqual((await post('stop-capture', {})).body, { stopped: false });

  const app = request(RED!.httpNode);
  const gallery = (await app.get(`${PAGE}/api/gallery`)).body;
  assert.deepEqual(gallery.labels.map((l: { label: string; count: number }) => [l.label, l.count]), [['blueberry', 4], ['strawberry', 3]]);
  const someone = gallery.labels[1].images[0];
  const thumb = await app.get(`${PAGE}/images/${encodeURIComponent(someone.id)}.jpg?v=${someone.sha}`).buffer(true);
  assert.equal(thumb.status, 200);
  assert.equal((await sharp(thumb.body).metadata()).format, 'jpeg');
  const entries = await dataset.entries();
  assert.equal(entries.find((e) => e.id === someone.id)?.source, 'lane-console');

  const moved = await post('relabel', { id: someone.id, label: 'blueberry' });
  assert.equal(moved.status, 200);
  assert.deepEqual(moved.body.moved, { id: someone.id, label: 'blueberry' });
  const removed = await post('delete', { id: someone.id });
  assert.equal(removed.status, 200);
  await stream.next('dataset', (d) => d.total === 6);
  await dataset.refresh();
  assert.deepEqual(dataset.counts(), { blueberry: 4, strawberry: 2 });
  const deleted = await app.get(`${PAGE}/images/${encodeURIComponent(someone.id)}.jpg`);
  assert.equal(deleted.status, 200, 'a deleted image the page was shown: a placeholder');
  assert.equal(deleted.headers['x-lane-vision-image'], 'gone');
  assert.equal((await app.get(`${PAGE}/images/${encodeURIComponent('strawberry/never-listed')}.jpg`)).status, 404, 'an id no page was given');

  // An unsure frame, dismissed.
  node.receive({ payload: 'unknown', frame: frames[10].image, classification: classification('strawberry', 0.3) } as never);
  const queued = await stream.next('rejects', (list) => list.length === 1);
  assert.deepEqual((await post('dismiss', { frames: [queued[0].id] })).body, { removed: 1 });
  await stream.next('rejects', (list) => list.length === 0);
  await stream.close();
});

test('images a capped label drops leave the gallery at once; a page still showing one gets a placeholder, not a 404', async () => {
  const node = await load({}, { maxPerLabel: 2, whenFull: 'drop-oldest' });
  const stream = await openStream(`${await pageServer()}/events`);
  await stream.next('state');
  sendFrames(node, frames.slice(0, 4));
  const state = await waitForFrames(node, 4);
  const strawberries = state.frames.filter((f) => f.truth === 'strawberry').map((f) => f.id);
  assert.equal(strawberries.length, 2);
  assert.equal((await post('capture', { label: 'strawberry', frames: strawberries })).status, 200);
  await stream.next('dataset', (d) => d.counts.strawberry === 2);
  const app = request(RED!.httpNode);
  const listed = (await app.get(`${PAGE}/api/gallery`)).body.labels[0].images.map((i: { id: string }) => i.id) as string[];
  assert.equal(listed.length, 2);
  const { revision } = (await app.get(`${PAGE}/api/state`)).body.dataset as { revision: number };

  // Another node (the demo's lane-capture) adds to the full label: its oldest goes, its count stays.
  const dataset = await lib.openDataset(path.join(work, 'dataset'), { maxPerLabel: 2, whenLabelFull: 'drop-oldest' });
  const added = await dataset.add('strawberry', frames[4].image, { source: 'another node' });
  assert.equal(frames[4].label, 'strawberry');
  assert.equal(added.dropped.length, 1);
  const dropped = added.dropped[0].id;
  assert.ok(listed.includes(dropped), 'the page was shown the image that was dropped');
  const changed = await stream.next('dataset', (d) => d.revision > revision);
  assert.deepEqual(changed.counts, { strawberry: 2 }, 'same count, yet the page hears of it (and reloads its gallery)');
  const gallery = (await app.get(`${PAGE}/api/gallery`)).body.labels[0].images.map((i: { id: string }) => i.id) as string[];
  assert.ok(!gallery.includes(dropped) && gallery.includes(added.id), 'the gallery lists what the dataset holds');

  const thumb = await app.get(`${PAGE}/images/${encodeURIComponent(dropped)}.jpg`).buffer(true);
  assert.equal(thumb.status, 200);
  assert.match(thumb.headers['content-type'], /^image\/svg\+xml/);
  assert.equal(thumb.headers['x-lane-vision-image'], 'gone');
  assert.match(thumb.body.toString('utf8'), /no longer in the dataset/);
  const kept = await app.get(`${PAGE}/images/${encodeURIComponent(added.id)}.jpg`).buffer(true);
  assert.equal((await sharp(kept.body).metadata()).format, 'jpeg', 'a kept image is its thumbnail');
  await stream.close();
});

test('training makes an unused candidate; promote, discard and rollback move the model in use; similar frames come with labels', async () => {
  const node = await load();
  const stream = await openStream(`${await pageServer()}/events`);
  await stream.next('state');
  sendFrames(node, frames.slice(0, 10));
  const state = await waitForFrames(node, 10);
  for (const label of ['strawberry', 'blueberry']) {
    const res = await post('capture', { label, frames: state.frames.filter((f) => f.truth === label).map((f) => f.id) });
    assert.equal(res.body.added.length, 5);
  }
  const store = await lib.openModelStore(path.join(work, 'models'));

  const started = await post('train', {});
  assert.deepEqual(started.body, { started: true });
  const busy = await post('train', {});
  assert.equal(busy.status, 409, 'one training at a time');
  const progress = await stream.next('train-progress', (p) => p.phase === 'training');
  assert.ok(progress.epochs > 0 && progress.loss >= 0);
  const done = await stream.next('train', (t) => t.state !== 'running', 60_000);
  assert.equal(done.state, 'finished', done.error);
  assert.equal(done.candidate.version, 1);
  assert.deepEqual(done.candidate.labels, ['blueberry', 'strawberry']);
  const confusion: number[][] = done.candidate.holdout.confusion;
  assert.equal(confusion.length, 2);
  assert.equal(confusion.flat().reduce((a, b) => a + b, 0), done.candidate.holdoutCount);
  assert.ok(done.history.length > 0, 'the loss curve');
  assert.equal(done.inUse, undefined, 'nothing was in use');
  assert.equal(await store.activeVersion(), undefined, 'a candidate is not used until promoted');
  await stream.next('models', (m) => m.versions.length === 1 && m.active === null);

  const promoted = await post('promote', { version: 1 });
  assert.deepEqual(promoted.body, { active: 1, previous: null });
  assert.equal(await store.activeVersion(), 1);
  const nothingBefore = await post('rollback', {});
  assert.equal(nothingBefore.status, 409, 'a model in use with none before it: nothing to roll back is a conflict, not a server failure');
  assert.deepEqual([nothingBefore.body.code, /No earlier active version/.test(nothingBefore.body.error)], ['MODEL_ROLLBACK_UNAVAILABLE', true]);
  assert.equal(await store.activeVersion(), 1);
  await stream.next('models', (m) => m.active === 1);
  assert.equal((await stream.next('train', (t) => t.state === 'idle')).candidate, undefined);

  await post('train', {});
  const second = await stream.next('train', (t) => t.state === 'finished' && t.candidate.version === 2, 60_000);
  assert.equal(second.inUse.version, 1, 'compared with the model in use');
  assert.equal(typeof second.inUse.holdout.accuracy, 'number');
  assert.deepEqual((await post('discard', { version: 2 })).body, { discarded: 2 });
  assert.equal(await store.activeVersion(), 1, 'discarding leaves the model in use');
  assert.equal((await post('promote', { version: 2 })).status, 200);
  const back = await post('rollback', {});
  assert.deepEqual(back.body, { active: 1, previous: 2 });
  const models = (await request(RED!.httpNode).get(`${PAGE}/api/models`)).body;
  assert.deepEqual(models.versions.map((v: { version: number; active: boolean }) => [v.version, v.active]), [[2, false], [1, true]]);
  assert.equal(typeof models.versions[0].accuracy, 'number');

  // The nearest stored frames of a strawberry frame are mostly strawberries.
  const strawberry = state.frames.find((f) => f.truth === 'strawberry')!;
  const similar = await request(RED!.httpNode).get(`${PAGE}/api/similar?frame=${strawberry.id}&k=4`);
  assert.equal(similar.status, 200, similar.text);
  assert.equal(similar.body.indexed, 10);
  assert.equal(similar.body.neighbours.length, 4);
  assert.equal(similar.body.neighbours[0].label, 'strawberry');
  assert.ok(similar.body.neighbours[0].similarity > 0.99, 'the frame itself is stored');
  assert.equal((await request(RED!.httpNode).get(`${PAGE}/api/similar?frame=${strawberry.id}&k=99`)).status, 400);
  assert.equal(node.id, 'lc');
  await stream.close();
});

test('settings are checked; one path per console; closing ends the streams and frees the path', async () => {
  await helper.load(nodes, flow({ path: '/bad path/..' }));
  const bad = helper.getNode('lc') as unknown as { problem?: Error };
  assert.match(String(bad.problem?.message), /not allowed/);
  await helper.unload();

  const twice = flow();
  twice.push({ ...twice.find((n) => n.id === 'lc')!, id: 'lc2', name: 'second' });
  await helper.load(nodes, twice);
  const second = helper.getNode('lc2') as unknown as { problem?: Error };
  assert.match(String(second.problem?.message), /already used by console lc/);
  const app = request(RED!.httpNode);
  assert.equal((await app.get(`${PAGE}/api/state`)).body.node.id, 'lc', 'the first console keeps the path');
  await helper.unload();

  await load({ path: 'lanes/one/' });
  const url = (await pageServer()).replace(PAGE, '/lanes/one');
  const stream = await openStream(`${url}/events`);
  await stream.next('state');
  await helper.unload();
  await waitFor(() => stream.ended || undefined, 'the stream to end');
  assert.equal((await request(RED!.httpNode).get('/lanes/one/')).status, 404, 'nothing is served after close');
  await helper.load(nodes, flow({ path: 'lanes/one' }));
  assert.equal(((await request(RED!.httpNode).get('/lanes/one/api/state')).body as StateView).node.id, 'lc', 'the path is free again');
});

test('the Models tab offers each version as an ONNX / tfjs download that runs outside Lane Vision', async () => {
  const node = await load();
  const { makeHeadOfSize } = await import('../lib/model-store/helpers.js');
  const backbone = await lib.loadBackbone(FEATURES_MODEL);
  const store = await lib.openModelStore(path.join(work, 'models'));
  await store.saveModel({ head: makeHeadOfSize('logistic', 2, backbone.featureSize, 3), labels: ['strawberry', 'blueberry'], backbone, datasetFingerprint: 'd', metrics: {} });
  backbone.release();
  const page = await pageServer();
  assert.ok(node);
  const description = await (await fetch(`${page}/api/models/1/export/onnx/lane-vision-export.json`)).json();
  assert.deepEqual(description.labels.map((l: { label: string }) => l.label), ['strawberry', 'blueberry']);
  const download = await fetch(`${page}/api/models/1/export/onnx/model.onnx`);
  assert.equal(download.status, 200);
  assert.match(download.headers.get('content-disposition') ?? '', /attachment; filename="lane-vision-v1-model.onnx"/);
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node');
  const session = await ort.InferenceSession.create(new Uint8Array(await download.arrayBuffer()));
  const [h, w] = description.inputSize;
  const out = await session.run({ image: new ort.Tensor('float32', new Float32Array(h * w * 3), [1, h, w, 3]) });
  assert.equal((out.probabilities.data as Float32Array).length, 2);
  await session.release();
  const tfjs = await fetch(`${page}/api/models/1/export/tfjs/model.json`);
  assert.equal(tfjs.status, 200);
  assert.equal((await tfjs.json()).format, 'layers-model');
  assert.equal((await fetch(`${page}/api/models/9/export/onnx/model.onnx`)).status, 404);
  assert.equal((await fetch(`${page}/api/models/1/export/onnx/secrets.txt`)).status, 404);
});
