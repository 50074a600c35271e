/**
 * lane-capture in a Node-RED runtime: real photos from ../shared/datasets stored under the
 * right label, capture commands arming a label, and hostile labels and broken images
 * reaching a catch node with nothing written. Run `npm run build` first.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Node, NodeMessage } from 'node-red';
import type { LaneBackboneNode } from '../../nodes/lane-backbone/types.js';
import { classImages, groceryTrainDir, modelDir } from '../support/shared.js';
import {
  TAB,
  backboneConfig,
  catchAll,
  caughtCode,
  caughtText,
  compiledModule,
  datasetConfig,
  helper,
  lastStatus,
  laneNodes,
  recorder,
  tempDir,
  waitFor,
  waitForStatus,
  type FlowItem,
} from './support/lane-flow.js';

const features = compiledModule<typeof import('../../src/features/index.js')>('src/features/index.js');
const nodes = laneNodes('lane-backbone', 'lane-dataset', 'lane-capture');
const OATLY = classImages(groceryTrainDir, 'Oatly-Oat-Milk');
const BRAVO = classImages(groceryTrainDir, 'Bravo-Orange-Juice');
let work: string;
let run = 0;
let datasetDir: string;

helper.init(require.resolve('node-red'));

before(async () => {
  work = tempDir('capture');
  await helper.startServer();
});
afterEach(() => helper.unload());
after(async () => {
  await helper.stopServer();
  fs.rmSync(work, { recursive: true, force: true });
});

interface Kit {
  capture: Node;
  out: NodeMessage[] & { next(what?: string): Promise<NodeMessage> };
  caught: NodeMessage[] & { next(what?: string): Promise<NodeMessage> };
  /** Sends a message and waits for it to be stored or refused. */
  send(msg: Record<string, unknown>): Promise<{ stored?: NodeMessage; error?: NodeMessage }>;
}

/** A fresh dataset folder per test, a capture node wired to `out`, errors to `caught`. */
async function deploy(captureConfig: Record<string, unknown> = {}, extra: FlowItem[] = []): Promise<Kit> {
  datasetDir = path.join(work, `dataset-${++run}`);
  await helper.load(nodes, [
    TAB,
    datasetConfig('ds', datasetDir, path.join(work, `models-${run}`)),
    { id: 'cap', z: 'f1', type: 'lane-capture', name: '', dataset: 'ds', backbone: '', label: '', wires: [['out']], ...captureConfig },
    { id: 'out', z: 'f1', type: 'helper' },
    ...catchAll('c1', ['cap']),
    ...extra,
  ]);
  const capture = helper.getNode('cap');
  const out = recorder(helper.getNode('out'));
  const caught = recorder(helper.getNode('c1-out'));
  const send = async (msg: Record<string, unknown>) => {
    const before = { out: out.length, caught: caught.length };
    capture.receive(msg as NodeMessage);
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const poll = () => {
        if (out.length > before.out || caught.length > before.caught) return resolve();
        if (Date.now() - started > 10_000) return reject(new Error('no output and no error within 10 s'));
        setTimeout(poll, 10);
      };
      poll();
    });
    return { stored: out[before.out], error: caught[before.caught] };
  };
  return { capture, out, caught, send };
}

/** Every file under the dataset folder, relative, sorted (what a refused frame must not change). */
function filesOnDisk(): string[] {
  if (!fs.existsSync(datasetDir)) return [];
  return (fs.readdirSync(datasetDir, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(datasetDir, f)).isFile()).sort();
}

test('stores real photos under msg.label, outputs the entry and the counts, and shows them', async () => {
  const kit = await deploy();
  for (const [i, file] of OATLY.slice(0, 3).entries()) {
    const bytes = fs.readFileSync(file);
    const { stored } = await kit.send({ payload: bytes, label: 'Oatly-Oat-Milk' });
    assert.ok(stored, `frame ${i} stored`);
    const entry = stored.payload as { id: string; label: string; file: string; sha256: string; duplicate: boolean };
    assert.equal(entry.label, 'Oatly-Oat-Milk');
    assert.equal(entry.duplicate, false);
    assert.equal(entry.sha256, createHash('sha256').update(bytes).digest('hex'));
    // JPEG frames are kept byte for byte.
    assert.deepEqual(fs.readFileSync(path.join(datasetDir, 'Oatly-Oat-Milk', entry.file)), bytes);
    assert.deepEqual((stored as NodeMessage & { counts: unknown }).counts, { 'Oatly-Oat-Milk': i + 1 });
  }
  assert.equal(lastStatus(kit.capture)?.text, 'Oatly-Oat-Milk: 3');

  // The same photo again is a duplicate: nothing new on disk, the count stays.
  const files = filesOnDisk();
  const { stored } = await kit.send({ payload: fs.readFileSync(OATLY[0]), label: 'Oatly-Oat-Milk' });
  assert.equal((stored!.payload as { duplicate: boolean }).duplicate, true);
  assert.deepEqual(filesOnDisk(), files);
  assert.deepEqual((stored as NodeMessage & { counts: unknown }).counts, { 'Oatly-Oat-Milk': 3 });
  assert.equal(kit.caught.length, 0);
});

test("the node's own label is used when the message has none, and msg.label wins over it", async () => {
  // With "Read image files" on for the photos' folder, a file path is a frame too.
  const kit = await deploy({ label: 'Bravo-Orange-Juice', readFiles: true, fileFolders: groceryTrainDir });
  const first = await kit.send({ payload: BRAVO[0] });
  assert.equal((first.stored!.payload as { label: string }).label, 'Bravo-Orange-Juice');
  const second = await kit.send({ payload: OATLY[0], label: 'Oatly-Oat-Milk' });
  assert.equal((second.stored!.payload as { label: string }).label, 'Oatly-Oat-Milk');
});

test('typedInputs: the label from msg / flow / env and the frame from another property; a blank one falls back to msg.label or a refusal', async () => {
  const fromMsg = await deploy({ label: 'item.kind', labelType: 'msg', property: 'image' });
  const stored = await fromMsg.send({ image: fs.readFileSync(BRAVO[1]), item: { kind: 'Bravo-Orange-Juice' }, payload: 'not an image' });
  assert.equal((stored.stored!.payload as { label: string }).label, 'Bravo-Orange-Juice', 'label from msg.item.kind, frame from msg.image');
  const unlabelled = await fromMsg.send({ image: fs.readFileSync(BRAVO[2]), item: {} });
  assert.equal(caughtCode(unlabelled.error!), 'CAPTURE_NO_LABEL', 'no label anywhere: refused with the reason');
  await helper.unload();

  const fromFlow = await deploy({ label: 'currentLabel', labelType: 'flow' });
  fromFlow.capture.context().flow.set('currentLabel', 'Oatly-Oat-Milk');
  const flowLabelled = await fromFlow.send({ payload: fs.readFileSync(OATLY[1]) });
  assert.equal((flowLabelled.stored!.payload as { label: string }).label, 'Oatly-Oat-Milk');
  fromFlow.capture.context().flow.set('currentLabel', '../escape');
  const hostile = await fromFlow.send({ payload: fs.readFileSync(OATLY[2]) });
  assert.ok(hostile.error, 'a label from context is checked like any other');
  await helper.unload();

  process.env.LANE_CAPTURE_TEST_LABEL = 'Bravo-Orange-Juice';
  try {
    const fromEnv = await deploy({ label: 'LANE_CAPTURE_TEST_LABEL', labelType: 'env' });
    const envLabelled = await fromEnv.send({ payload: fs.readFileSync(BRAVO[3]) });
    assert.equal((envLabelled.stored!.payload as { label: string }).label, 'Bravo-Orange-Juice');
  } finally {
    delete process.env.LANE_CAPTURE_TEST_LABEL;
  }
});

test('a capture command arms its label for the next count frames, then frames need a label again', async () => {
  const kit = await deploy();
  const none = await kit.send({ payload: fs.readFileSync(OATLY[0]) });
  assert.equal(caughtText(none.error!), 'lane-capture.errors.no-label');
  assert.equal(caughtCode(none.error!), 'CAPTURE_NO_LABEL');
  assert.deepEqual(filesOnDisk(), []);

  kit.capture.receive({ topic: 'capture', payload: { label: 'Bravo-Orange-Juice', count: 2 } } as NodeMessage);
  await waitForStatus(kit.capture, (s) => String(s.text) === 'lane-capture.status.armed', 'armed');
  assert.equal(kit.out.length, 0, 'a command outputs nothing');
  // msg.label still wins and does not use up the armed frames.
  const labelled = await kit.send({ payload: fs.readFileSync(OATLY[1]), label: 'Oatly-Oat-Milk' });
  assert.equal((labelled.stored!.payload as { label: string }).label, 'Oatly-Oat-Milk');
  // A broken frame does not use one up either.
  const broken = await kit.send({ payload: Buffer.from('not an image, just text') });
  assert.ok(broken.error);
  for (const file of BRAVO.slice(0, 2)) {
    const { stored } = await kit.send({ payload: fs.readFileSync(file) });
    assert.equal((stored!.payload as { label: string }).label, 'Bravo-Orange-Juice');
  }
  const after = await kit.send({ payload: fs.readFileSync(BRAVO[2]) });
  assert.equal(caughtCode(after.error!), 'CAPTURE_NO_LABEL');

  // The shape lane-events outputs for MQTT cmd/capture: payload = label, count on the message.
  kit.capture.receive({ topic: 'capture', payload: 'Oatly-Oat-Milk', count: 1 } as NodeMessage);
  const armed = await kit.send({ payload: fs.readFileSync(OATLY[2]) });
  assert.equal((armed.stored!.payload as { label: string }).label, 'Oatly-Oat-Milk');
  assert.deepEqual((armed.stored as NodeMessage & { counts: unknown }).counts, { 'Bravo-Orange-Juice': 2, 'Oatly-Oat-Milk': 2 });
});

test('with Unlabelled "skip" a stream of unlabelled frames passes unstored, without errors, until a capture command arms a label', async () => {
  const kit = await deploy({ unlabelled: 'skip' }, [
    { id: 'done', z: 'f1', type: 'complete', scope: ['cap'], uncaught: false, wires: [['done-out']] },
    { id: 'done-out', z: 'f1', type: 'helper' },
  ]);
  const completed = recorder(helper.getNode('done-out'));
  /** Sends a frame and waits until the node has finished with it (done called). */
  const pass = async (msg: Record<string, unknown>) => {
    const before = completed.length;
    kit.capture.receive(msg as NodeMessage);
    await waitFor(() => completed.length > before || undefined, 'the frame handled');
  };
  await pass({ payload: fs.readFileSync(OATLY[0]) });
  await pass({ payload: fs.readFileSync(OATLY[1]) });
  assert.equal(kit.out.length, 0, 'nothing stored, nothing sent');
  assert.equal(kit.caught.length, 0, 'and no error: skipping is what this node was set to do');
  assert.deepEqual(filesOnDisk(), []);

  kit.capture.receive({ topic: 'capture', payload: 'Bravo-Orange-Juice', count: 1 } as NodeMessage);
  await waitForStatus(kit.capture, (s) => String(s.text) === 'lane-capture.status.armed', 'armed');
  const { stored } = await kit.send({ payload: fs.readFileSync(OATLY[2]) });
  assert.equal((stored!.payload as { label: string }).label, 'Bravo-Orange-Juice', 'the armed label, whatever the frame shows');
  await pass({ payload: fs.readFileSync(OATLY[3]) });
  assert.equal(kit.out.length, 1, 'one frame asked for, one stored');
  // A labelled frame is still stored under its label.
  const labelled = await kit.send({ payload: fs.readFileSync(BRAVO[0]), label: 'Bravo-Orange-Juice' });
  assert.deepEqual((labelled.stored as NodeMessage & { counts: unknown }).counts, { 'Bravo-Orange-Juice': 2 });
  assert.equal(kit.caught.length, 0);
});

test('an Unlabelled setting other than error or skip is a clear error on the node', async () => {
  const kit = await deploy({ unlabelled: 'maybe' });
  const { error } = await kit.send({ payload: fs.readFileSync(OATLY[0]), label: 'Oatly-Oat-Milk' });
  assert.equal(caughtCode(error!), 'CAPTURE_BAD_SETTING');
  assert.equal(caughtText(error!), 'lane-capture.errors.bad-unlabelled');
});

test('typedInput count: a capture command without a count arms the count read from flow / msg / env; a bad one fails the command naming its source', async () => {
  /** Arms `label` with `command`, then sends unlabelled frames until one is refused: how many were taken. */
  async function framesArmed(kit: Kit, command: Record<string, unknown>): Promise<number> {
    const statusesBefore = (kit.capture.status as unknown as { callCount: number }).callCount;
    kit.capture.receive({ topic: 'capture', payload: 'Oatly-Oat-Milk', ...command } as NodeMessage);
    await waitFor(() => (kit.capture.status as unknown as { callCount: number }).callCount > statusesBefore && lastStatus(kit.capture)?.fill === 'blue', 'armed');
    let taken = 0;
    for (const file of OATLY) {
      const { stored, error } = await kit.send({ payload: fs.readFileSync(file) });
      if (error) {
        assert.equal(caughtCode(error), 'CAPTURE_NO_LABEL');
        return taken;
      }
      assert.ok(stored);
      taken++;
    }
    return taken;
  }

  const fromFlow = await deploy({ count: 'framesPerCommand', countType: 'flow' });
  fromFlow.capture.context().flow.set('framesPerCommand', 3);
  assert.equal(await framesArmed(fromFlow, {}), 3, 'count from flow.framesPerCommand');
  assert.equal(await framesArmed(fromFlow, { count: 1 }), 1, 'the message\'s own count wins');
  fromFlow.capture.context().flow.set('framesPerCommand', 'lots');
  const caughtBefore = fromFlow.caught.length;
  fromFlow.capture.receive({ topic: 'capture', payload: 'Oatly-Oat-Milk' } as NodeMessage);
  const bad = await waitFor(() => fromFlow.caught[caughtBefore], 'the bad count caught');
  assert.equal(caughtCode(bad), 'CAPTURE_COMMAND_INVALID');
  assert.match(caughtText(bad), /count \(read from flow\.framesPerCommand\) must be a whole number from 1 to \d+, got "lots"/);
  await helper.unload();

  const fromMsg = await deploy({ count: 'shots', countType: 'msg' });
  assert.equal(await framesArmed(fromMsg, { shots: '2' }), 2, 'count from msg.shots (numeric text counts)');
  assert.equal(await framesArmed(fromMsg, {}), 1, 'msg.shots not set: 1 frame');
  await helper.unload();

  process.env.LANE_CAPTURE_TEST_COUNT = '2';
  try {
    const fromEnv = await deploy({ count: 'LANE_CAPTURE_TEST_COUNT', countType: 'env' });
    assert.equal(await framesArmed(fromEnv, {}), 2, 'count from env');
  } finally {
    delete process.env.LANE_CAPTURE_TEST_COUNT;
  }
  await helper.unload();

  const fixed = await deploy({ count: '0', countType: 'num' });
  assert.equal(lastStatus(fixed.capture)?.fill, 'red', 'a fixed count of 0 is refused at deploy');
  assert.equal(String(lastStatus(fixed.capture)?.text), 'lane-capture.errors.bad-count');
});

test('hostile labels and broken images reach the catch node and store nothing', async () => {
  const kit = await deploy();
  await kit.send({ payload: fs.readFileSync(OATLY[0]), label: 'Oatly-Oat-Milk' });
  const before = filesOnDisk();
  const photo = fs.readFileSync(OATLY[1]);
  const hostile: [unknown, RegExp][] = [
    ['../x', /path separator/],
    ['..', /starts with a dot/],
    ['CON', /reserved device name/],
    ['nul.txt', /reserved device name/],
    ['a\u0000b', /NUL/],
    ['line\nbreak', /control/],
    ['unknown', /reserved/],
    ['x'.repeat(200), /bytes long/],
    [42, /must be text/],
  ];
  for (const [label, why] of hostile) {
    const { stored, error } = await kit.send({ payload: photo, label });
    assert.equal(stored, undefined, `label ${JSON.stringify(label)} refused`);
    assert.equal(caughtCode(error!), 'LABEL_INVALID');
    assert.match(caughtText(error!), why);
  }
  // The same labels in a capture command are refused too, and arm nothing.
  for (const payload of ['../x', { label: 'CON', count: 3 }, { label: 'ok', count: 0 }, { label: 'ok', count: 1000 }, 17]) {
    const { error } = await kit.send({ topic: 'capture', payload });
    assert.ok(error, `command ${JSON.stringify(payload)} refused`);
    assert.match(String(caughtCode(error)), /^(LABEL_INVALID|CAPTURE_COMMAND_INVALID)$/);
  }
  const unarmed = await kit.send({ payload: photo });
  assert.equal(caughtCode(unarmed.error!), 'CAPTURE_NO_LABEL');

  const broken: [unknown, string][] = [
    [Buffer.from('not an image, just text'), 'text'],
    [fs.readFileSync(OATLY[2]).subarray(0, 600), 'truncated JPEG'],
    [Buffer.alloc(0), 'empty buffer'],
    [{ data: new Uint8Array(10), width: 100, height: 100, channels: 3 }, 'raw pixels of the wrong length'],
    [path.join(work, 'no-such-photo.jpg'), 'missing file'],
    [undefined, 'no payload'],
  ];
  for (const [payload, what] of broken) {
    const { stored, error } = await kit.send({ payload, label: 'Oatly-Oat-Milk' });
    assert.equal(stored, undefined, `${what} refused`);
    assert.ok(caughtText(error!).length > 10, `${what}: ${caughtText(error!)}`);
  }
  assert.deepEqual(filesOnDisk(), before, 'nothing was written');
  assert.ok(!fs.existsSync(path.join(path.dirname(datasetDir), 'x')), 'nothing escaped the dataset folder');
  assert.equal(lastStatus(kit.capture)?.fill, 'red');
});

test('a file path in msg.payload is read only with "Read image files" on, and only inside its folders', async () => {
  const allowed = path.join(work, 'allowed-photos');
  fs.mkdirSync(allowed, { recursive: true });
  fs.copyFileSync(OATLY[3], path.join(allowed, 'inside.jpg'));
  const outsideLink = path.join(allowed, 'link-out.jpg');
  if (!fs.existsSync(outsideLink)) fs.symlinkSync(BRAVO[3], outsideLink);

  // Off by default: no file of the host is read, whatever the text names.
  const off = await deploy();
  for (const payload of [path.join(allowed, 'inside.jpg'), '/etc/passwd', OATLY[4]]) {
    const { stored, error } = await off.send({ payload, label: 'Oatly-Oat-Milk' });
    assert.equal(stored, undefined, `${payload} refused`);
    assert.equal(caughtCode(error!), 'IMAGE_FILES_OFF');
    assert.match(caughtText(error!), /reading image files named in messages is off/);
  }
  assert.deepEqual(filesOnDisk(), []);
  await helper.unload();

  const on = await deploy({ readFiles: true, fileFolders: allowed });
  const inside = await on.send({ payload: path.join(allowed, 'inside.jpg'), label: 'Oatly-Oat-Milk' });
  assert.equal((inside.stored!.payload as { label: string }).label, 'Oatly-Oat-Milk');
  for (const payload of [OATLY[4], outsideLink, path.join(allowed, '..', path.basename(work), 'x.jpg'), allowed + '/..'.repeat(allowed.split(path.sep).length) + '/etc/passwd']) {
    const { stored, error } = await on.send({ payload, label: 'Oatly-Oat-Milk' });
    assert.equal(stored, undefined, `${payload} refused`);
    assert.match(String(caughtCode(error!)), /^IMAGE_(FILE_NOT_ALLOWED|NOT_FOUND)$/, `${payload}: ${caughtText(error!)}`);
  }
  const outside = await on.send({ payload: OATLY[4], label: 'Oatly-Oat-Milk' });
  assert.equal(caughtCode(outside.error!), 'IMAGE_FILE_NOT_ALLOWED');
  assert.match(caughtText(outside.error!), /outside the folders this node may read/);
  assert.deepEqual(Object.values(on.out.at(-1)!.counts as Record<string, number>), [1], 'only the frame inside the folder was stored');
  await helper.unload();

  // On without a folder is a settings error at deploy.
  const unbounded = await deploy({ readFiles: true, fileFolders: ' ' });
  assert.equal(lastStatus(unbounded.capture)?.fill, 'red');
  const { error } = await unbounded.send({ payload: fs.readFileSync(OATLY[0]), label: 'Oatly-Oat-Milk' });
  assert.match(caughtText(error!), /no folder is listed/);
});

test('a bad label in the node settings is refused at deploy with a clear status', async () => {
  const kit = await deploy({ label: 'CON' });
  assert.equal(lastStatus(kit.capture)?.fill, 'red');
  const { error } = await kit.send({ payload: fs.readFileSync(OATLY[0]) });
  assert.match(caughtText(error!), /reserved device name/);
  assert.deepEqual(filesOnDisk(), []);
});

test('with a backbone, stored frames are embedded into the shared feature cache', async () => {
  const kit = await deploy({ backbone: 'bb' }, [backboneConfig('bb', modelDir('mobilenet-v2-0.35-features'))]);
  await waitForStatus(kit.capture, (s) => /1280-d/.test(String(s.text)), 'backbone ready');
  const backbone = (helper.getNode('bb') as LaneBackboneNode).current()!;
  const sizeBefore = features.sharedFeatureCache.size;
  const stored: string[] = [];
  for (const file of BRAVO.slice(3, 6)) {
    const { stored: msg } = await kit.send({ payload: fs.readFileSync(file), label: 'Bravo-Orange-Juice' });
    stored.push((msg!.payload as { sha256: string }).sha256);
  }
  // Embedding follows the output, before the message completes.
  const fit = (helper.getNode('bb') as LaneBackboneNode).fit;
  for (const hash of stored) {
    const key = features.FeatureCache.key(backbone.id, fit, hash);
    const vector = await waitFor(() => features.sharedFeatureCache.get(key), 'the cached feature vector');
    assert.equal(vector.length, 1280, 'feature vector cached under the key retrain looks up');
  }
  assert.equal(features.sharedFeatureCache.size, sizeBefore + 3);
});
