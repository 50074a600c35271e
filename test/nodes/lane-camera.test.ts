/**
 * lane-camera in a Node-RED runtime (node-red-node-test-helper, compiled node from dist/) with
 * real cameras on 127.0.0.1: ffmpeg serving MJPEG (into lane-classify on the ImageNet
 * MobileNet), GStreamer's RTSP server (H.264, decoded by the node's ffmpeg), a snapshot
 * server with basic and digest auth, and a watched folder. Cameras are dropped and brought
 * back mid-stream; a trigger gets exactly one frame with its properties; closing the flow
 * ends ffmpeg. Servers are shared by the tests. Run `npm run build` first.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { Node, NodeMessage } from 'node-red';
import { classImages, groceryValDir, modelDir, YOGHURT_CLASSES } from '../support/shared.js';
import { ffmpegMissing, isRunning, rtspServerMissing, startMjpegCamera, startRtspCamera, startSnapshotServer, type SnapshotServer, type TestCamera } from '../support/cameras.js';
import { TAB, backboneConfig, caughtText, helper, laneNodes, lastStatus, recorder, tempDir, waitFor, waitForStatus, type FlowItem } from './support/lane-flow.js';

helper.init(require.resolve('node-red'));

const nodes = laneNodes('lane-camera', 'lane-backbone', 'lane-dataset', 'lane-classify');
const JPEG = fs.readFileSync(classImages(groceryValDir, YOGHURT_CLASSES[0])[0]);
const isJpeg = (b: unknown) => Buffer.isBuffer(b) && b[0] === 0xff && b[1] === 0xd8;

function cameraFlow(camera: Record<string, unknown>, credentials?: Record<string, string>): { flow: FlowItem[]; credentials: Record<string, unknown> } {
  return {
    flow: [
      TAB,
      { id: 'cam', z: 'f1', type: 'lane-camera', name: '', mode: 'free-run', fps: 10, retryMax: 0.3, ...camera, wires: [['out']] },
      { id: 'out', z: 'f1', type: 'helper' },
      { id: 'cc', z: 'f1', type: 'catch', scope: ['cam'], uncaught: false, wires: [['caught']] },
      { id: 'caught', z: 'f1', type: 'helper' },
    ],
    credentials: credentials ? { cam: credentials } : {},
  };
}

async function load(camera: Record<string, unknown>, credentials?: Record<string, string>) {
  const { flow, credentials: creds } = cameraFlow(camera, credentials);
  await helper.load(nodes, flow, creds);
  const cam = helper.getNode('cam') as Node & { ffmpegPid?: number };
  return { cam, out: recorder(helper.getNode('out')), caught: recorder(helper.getNode('caught')) };
}

/** Calls of `method` (warn, error, log) on `node`: the helper spies on Node.prototype. */
function calls(node: Node, method: 'warn' | 'error' | 'log'): string[] {
  const spy = (node as unknown as Record<string, { getCalls(): { thisValue: unknown; args: unknown[] }[] }>)[method];
  return spy
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => String(call.args[0]));
}

const trigger = (node: Node, msg: object) => node.receive(msg as NodeMessage);

before(async () => {
  await helper.startServer();
});
after(async () => {
  await helper.stopServer();
});
afterEach(() => helper.unload());

describe('snapshot cameras', () => {
  let basic: SnapshotServer;
  let digest: SnapshotServer;
  before(async () => {
    basic = await startSnapshotServer(JPEG, { scheme: 'basic', user: 'lane', password: 'secret' });
    digest = await startSnapshotServer(JPEG, { scheme: 'digest', user: 'lane', password: 'p4ss word' });
  });
  after(async () => {
    await basic?.stop();
    await digest?.stop();
  });

  test('basic auth from the credentials, free-run: the camera\'s JPEG bytes, numbered and time-stamped', async () => {
    const { out } = await load({ kind: 'snapshot', url: basic.url, fps: 20 }, { user: 'lane', password: 'secret' });
    const first = (await out.next()) as any;
    const second = (await out.next()) as any;
    assert.deepEqual(first.payload, JPEG, 'sent as the camera encoded it');
    assert.equal(first.frame.kind, 'snapshot');
    assert.equal(second.frame.seq, first.frame.seq + 1);
    assert.ok(second.frame.timestamp >= first.frame.timestamp);
    assert.equal(new Date(first.frame.timestamp).toISOString(), first.frame.time);
    assert.equal(basic.refused, 0);
    assert.ok(first.camera.received >= 1);
  });

  test('digest auth, triggered: one frame per trigger, carrying the trigger\'s properties', async () => {
    const { cam, out } = await load({ kind: 'snapshot', url: digest.url, mode: 'triggered', timeout: 10 }, { user: 'lane', password: 'p4ss word' });
    const served = digest.served;
    trigger(cam, { payload: 'go', itemId: 'A-17', topic: 'photo-eye' });
    const msg = (await out.next()) as any;
    assert.equal(msg.itemId, 'A-17');
    assert.equal(msg.topic, 'photo-eye');
    assert.deepEqual(msg.payload, JPEG);
    trigger(cam, { itemId: 'A-18' });
    assert.equal(((await out.next()) as any).itemId, 'A-18');
    assert.equal(digest.served - served, 2, 'a snapshot is fetched per trigger, none in between');
    assert.equal(out.length, 2, 'exactly one frame per trigger');
    assert.equal(digest.refused, 0, 'the nonce was reused with a growing count');
  });

  test('wrong password: one warning, the status says why, and a trigger fails with the reason', async () => {
    const { cam, caught } = await load({ kind: 'snapshot', url: digest.url, mode: 'triggered', timeout: 1 }, { user: 'lane', password: 'wrong' });
    trigger(cam, { itemId: 'B-1' });
    await waitForStatus(cam, (s) => /reconnecting/.test(String(s.text)), 'reconnecting');
    const failed = await caught.next();
    assert.match(caughtText(failed), /No frame from the camera within 1 s \(reconnecting: The camera refused the user name and password \(digest authentication\)/);
    // A triggered snapshot camera is asked again at the next trigger: several attempts, one log line.
    trigger(cam, { itemId: 'B-2' });
    await caught.next();
    assert.ok(digest.refused >= 2, 'the credentials were tried again');
    assert.equal(calls(cam, 'warn').length, 1);
    assert.match(calls(cam, 'warn')[0], /outage/);
  });

  test('a bad setting is an error on the node at deploy', async () => {
    const { cam } = await load({ kind: 'snapshot', url: '' });
    assert.match(String(lastStatus(cam)?.text), /no-url/);
    assert.equal(lastStatus(cam)?.fill, 'red');
    assert.equal(calls(cam, 'error').length, 1);
    await helper.unload();
    const roi = await load({ kind: 'snapshot', url: basic.url, roiLeft: 0, roiTop: 0, roiWidth: -5, roiHeight: 10 });
    assert.match(String(lastStatus(roi.cam)?.text), /bad-roi/);
  });
});

describe('MJPEG camera (ffmpeg -f mpjpeg -listen 1)', { skip: ffmpegMissing() }, () => {
  let camera: TestCamera;
  before(async () => {
    camera = await startMjpegCamera();
  });
  after(() => camera?.stop());

  test('frames go into lane-classify; the camera drops and comes back without a redeploy', async () => {
    const flow: FlowItem[] = [
      TAB,
      backboneConfig('bb', modelDir('mobilenet-v2-1.0-imagenet')),
      { id: 'cam', z: 'f1', type: 'lane-camera', name: '', kind: 'mjpeg', url: camera.url, mode: 'free-run', fps: 5, retryMax: 0.3, wires: [['classify']] },
      { id: 'classify', z: 'f1', type: 'lane-classify', name: '', mode: 'backbone', backbone: 'bb', dataset: '', threshold: 0.05, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], outputs: 1, includeFrame: true, wires: [['out']] },
      { id: 'out', z: 'f1', type: 'helper' },
    ];
    await helper.load(nodes, flow);
    const cam = helper.getNode('cam');
    const out = recorder(helper.getNode('out'));
    const first = (await out.next('a classified camera frame', 60_000)) as any;
    assert.equal(first.frameInfo.kind, 'mjpeg');
    assert.ok(isJpeg(first.frame));
    assert.equal((await sharp(first.frame).metadata()).width, 640);
    assert.equal(first.classification.topK.length, 3);

    await camera.stop();
    await waitForStatus(cam, (s) => /reconnecting/.test(String(s.text)), 'reconnecting');
    await camera.start();
    const backAt = Date.now();
    // Frames still queued in lane-classify from before the drop do not count.
    const after = (await waitFor(() => out.find((msg: any) => msg.frameInfo.timestamp >= backAt), 'a classified frame taken after the camera came back', 30_000)) as any;
    assert.ok(after.frameInfo.seq > first.frameInfo.seq);
    assert.equal(after.classification.topK.length, 3);
    assert.equal(calls(cam, 'warn').length, 1, 'one line for the outage');
    assert.equal(calls(cam, 'log').filter((line) => /recovered/.test(line)).length, 1, `one line when it is back: ${JSON.stringify(calls(cam, 'log'))}`);
    await waitForStatus(cam, (s) => s.fill === 'green', 'streaming again');
  });
});

describe('RTSP camera (GStreamer RTSP server, H.264)', { skip: ffmpegMissing() ?? rtspServerMissing() }, () => {
  let camera: TestCamera;
  before(async () => {
    camera = await startRtspCamera();
  });
  after(() => camera?.stop());

  test('ffmpeg decodes the stream into JPEG frames; a drop is recovered; closing ends ffmpeg', async () => {
    const { cam, out } = await load({ kind: 'rtsp', url: camera.url, fps: 10 });
    const first = (await out.next('an RTSP frame', 30_000)) as any;
    assert.ok(isJpeg(first.payload));
    assert.equal(first.frame.kind, 'rtsp');
    const { width, height } = await sharp(first.payload).metadata();
    assert.deepEqual([width, height], [640, 480]);
    const firstPid = cam.ffmpegPid;
    assert.ok(firstPid && isRunning(firstPid), 'ffmpeg runs');

    await camera.stop();
    await waitForStatus(cam, (s) => /reconnecting/.test(String(s.text)), 'reconnecting', 30_000);
    assert.equal(isRunning(firstPid!), false, 'the ffmpeg of the lost connection has ended');
    await camera.start();
    const backAt = Date.now();
    await waitFor(() => out.find((msg: any) => msg.frame.timestamp >= backAt), 'a frame taken after the RTSP server came back', 30_000);
    assert.equal(calls(cam, 'warn').length, 1, 'one line for the outage');

    const pid = cam.ffmpegPid;
    assert.ok(pid && isRunning(pid));
    await helper.unload();
    assert.equal(isRunning(pid!), false, 'no ffmpeg left after the flow closed');
  });

  test('triggered with an ROI: one cropped frame per trigger', async () => {
    const { cam, out } = await load({ kind: 'rtsp', url: camera.url, mode: 'triggered', timeout: 20, roiLeft: 10, roiTop: 20, roiWidth: 200, roiHeight: 100 });
    trigger(cam, { itemId: 'R-1' });
    const msg = (await out.next('a triggered RTSP frame', 30_000)) as any;
    assert.equal(msg.itemId, 'R-1');
    const { width, height } = await sharp(msg.payload).metadata();
    assert.deepEqual([width, height], [200, 100]);
    trigger(cam, { itemId: 'R-2' });
    assert.equal(((await out.next()) as any).itemId, 'R-2');
    assert.equal(out.length, 2);
  });

  test('raw output: ffmpeg hands over RGB pixels at the backbone size, which lane-classify classifies without JPEG', async () => {
    const flow: FlowItem[] = [
      TAB,
      backboneConfig('bb', modelDir('mobilenet-v2-1.0-imagenet')),
      { id: 'cam', z: 'f1', type: 'lane-camera', name: '', kind: 'rtsp', url: camera.url, output: 'raw', rawSize: '224x224', mode: 'triggered', timeout: 30, retryMax: 0.3, roiLeft: 0, roiTop: 0, roiWidth: 480, roiHeight: 480, wires: [['classify', 'out']] },
      { id: 'classify', z: 'f1', type: 'lane-classify', name: '', mode: 'backbone', backbone: 'bb', dataset: '', threshold: 0.05, topK: 3, maxBatch: 8, splitOutputs: false, labels: [], outputs: 1, includeFrame: true, wires: [['classified']] },
      { id: 'out', z: 'f1', type: 'helper' },
      { id: 'classified', z: 'f1', type: 'helper' },
    ];
    await helper.load(nodes, flow);
    const cam = helper.getNode('cam');
    const out = recorder(helper.getNode('out'));
    const classified = recorder(helper.getNode('classified'));
    trigger(cam, { itemId: 'RAW-1' });
    const sent = (await out.next('a raw RTSP frame', 30_000)) as any;
    assert.equal(sent.itemId, 'RAW-1');
    assert.ok(!Buffer.isBuffer(sent.payload), 'not encoded');
    assert.deepEqual([sent.payload.width, sent.payload.height, sent.payload.channels, sent.payload.data.length], [224, 224, 3, 224 * 224 * 3]);
    const result = (await classified.next('the raw frame classified', 60_000)) as any;
    assert.equal(result.itemId, 'RAW-1');
    assert.equal(result.classification.topK.length, 3);
    assert.equal(result.frameInfo.kind, 'rtsp');
  });

  test('raw output on a camera ffmpeg does not run, or at a bad size: an error on the node at deploy', async () => {
    const snapshot = await load({ kind: 'snapshot', url: 'http://127.0.0.1:9/snap.jpg', output: 'raw' });
    assert.equal(lastStatus(snapshot.cam)?.fill, 'red');
    assert.match(String(lastStatus(snapshot.cam)?.text), /raw-kind/);
    assert.equal(calls(snapshot.cam, 'error').length, 1);
    await helper.unload();
    const size = await load({ kind: 'rtsp', url: camera.url, output: 'raw', rawSize: '2x2' });
    assert.match(String(lastStatus(size.cam)?.text), /bad-raw-size/);
    assert.equal(size.cam.ffmpegPid, undefined, 'no ffmpeg started');
  });

  test('a USB device that is not there: the status says so and the node keeps trying', async () => {
    const { cam } = await load({ kind: 'usb', device: '/dev/video-lane-test-none' });
    await waitForStatus(cam, (s) => /reconnecting/.test(String(s.text)), 'reconnecting');
    assert.equal(calls(cam, 'warn').length, 1);
    assert.match(calls(cam, 'warn')[0], /outage/);
  });

  test('ffmpeg missing at the configured path: an error status that says so', async () => {
    const { cam } = await load({ kind: 'rtsp', url: camera.url, ffmpeg: '/nonexistent/ffmpeg' });
    assert.equal(lastStatus(cam)?.fill, 'red');
    assert.match(String(calls(cam, 'error')[0]), /unusable/);
  });
});

test('a watched folder: each new image once, not the ones already there', async () => {
  const dir = tempDir('camera-folder');
  fs.writeFileSync(path.join(dir, 'before.jpg'), JPEG);
  try {
    const { cam, out } = await load({ kind: 'folder', folder: dir, settle: 50, fps: 20 });
    await waitFor(() => lastStatus(cam) || undefined, 'a status');
    fs.writeFileSync(path.join(dir, 'item-1.jpg'), JPEG);
    const msg = (await out.next()) as any;
    assert.equal(path.basename(msg.frame.path), 'item-1.jpg');
    assert.deepEqual(msg.payload, JPEG);
    fs.writeFileSync(path.join(dir, 'item-2.jpg'), JPEG);
    assert.equal(path.basename(((await out.next()) as any).frame.path), 'item-2.jpg');
    assert.equal(out.length, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
