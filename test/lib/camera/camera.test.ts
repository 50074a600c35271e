/**
 * src/camera without Node-RED: JPEG cutting and MJPEG parts on hand-made byte streams, the
 * digest answer of RFC 7616's worked example, and a Camera on a real ffmpeg MJPEG stream
 * (rate cap, newest frame wins, ROI, reconnect after the camera drops), a watched folder;
 * raw RGB output from ffmpeg on the real RTSP camera (GStreamer), against its JPEG frames.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { Camera, RawFrameSplitter, folderCamera, rtspCamera, snapshotCamera, usbCamera, HttpAuthenticator, JpegSplitter, mjpegCamera, MjpegParser, multipartBoundary, parseChallenges, redactUrl, sourceKind, withCredentials, type CameraFrame, type CameraState } from '../../../src/camera/index.js';
import type { RawImage } from '../../../src/image/index.js';
import { ffmpegMissing, rtspServerMissing, startMjpegCamera, startRtspCamera, type TestCamera } from '../../support/cameras.js';

const fakeJpeg = (n: number) => Buffer.from([0xff, 0xd8, 0xff, 0xe0, n, 0xff, 0x00, n, 0xff, 0xd9]);

function waitUntil<T>(check: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const look = () => {
      const value = check();
      if (value !== undefined && value !== false) return resolve(value);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(look, 10);
    };
    look();
  });
}

describe('byte streams', () => {
  test('RawFrameSplitter cuts fixed-size frames however the chunks fall', () => {
    const frames: Buffer[] = [];
    const splitter = new RawFrameSplitter(6, (frame) => frames.push(frame));
    const stream = Buffer.from(Array.from({ length: 20 }, (_, i) => i));
    for (const [from, to] of [[0, 1], [1, 9], [9, 9], [9, 18], [18, 20]]) splitter.push(stream.subarray(from, to));
    assert.deepEqual(frames.map((f) => [...f]), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17]], 'two bytes of the fourth frame wait');
    assert.notEqual(frames[0].buffer, frames[1].buffer, 'each frame its own memory, safe to keep');
  });

  test('JpegSplitter cuts back-to-back JPEGs however the chunks fall', () => {
    const stream = Buffer.concat([Buffer.from('junk'), fakeJpeg(1), fakeJpeg(2), fakeJpeg(3)]);
    for (const size of [1, 3, 7, stream.length]) {
      const images: Buffer[] = [];
      const splitter = new JpegSplitter((image) => images.push(image));
      for (let i = 0; i < stream.length; i += size) splitter.push(stream.subarray(i, i + size));
      assert.deepEqual(images, [fakeJpeg(1), fakeJpeg(2), fakeJpeg(3)], `chunks of ${size}`);
    }
  });

  test('MjpegParser takes parts by Content-Length, or by JPEG markers when a camera sends none', () => {
    assert.equal(multipartBoundary('multipart/x-mixed-replace; boundary="--myboundary"'), 'myboundary');
    assert.equal(multipartBoundary('multipart/x-mixed-replace;boundary=ffmpeg'), 'ffmpeg');
    assert.equal(multipartBoundary('image/jpeg'), undefined);
    const part = (n: number, length: boolean) =>
      Buffer.concat([Buffer.from(`--cam\r\nContent-Type: image/jpeg\r\n${length ? `Content-Length: ${fakeJpeg(n).length}\r\n` : ''}\r\n`), fakeJpeg(n), Buffer.from('\r\n')]);
    for (const length of [true, false]) {
      const stream = Buffer.concat([part(1, length), part(2, length), part(3, length)]);
      const images: Buffer[] = [];
      const parser = new MjpegParser('cam', (image) => images.push(image));
      for (let i = 0; i < stream.length; i += 5) parser.push(stream.subarray(i, i + 5));
      assert.deepEqual(images, [fakeJpeg(1), fakeJpeg(2), fakeJpeg(3)], length ? 'with Content-Length' : 'without');
    }
  });

  test('digest: the answer of RFC 7616 section 3.9.1 (SHA-256), and basic when that is all the camera offers', () => {
    const auth = new HttpAuthenticator({ user: 'Mufasa', password: 'Circle of Life' });
    assert.ok(
      auth.accept('Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'),
    );
    const header = auth.header('GET', '/dir/index.html')!;
    const cnonce = /cnonce="([^"]+)"/.exec(header)![1];
    // The RFC's response is for its own cnonce; recompute it the RFC's way for ours.
    const { createHash } = require('node:crypto') as typeof import('node:crypto');
    const h = (t: string) => createHash('sha256').update(t).digest('hex');
    const ha1 = h('Mufasa:http-auth@example.org:Circle of Life');
    const ha2 = h('GET:/dir/index.html');
    assert.match(header, new RegExp(`response="${h(`${ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:${cnonce}:auth:${ha2}`)}"`));
    assert.match(header, /nc=00000001/);
    assert.match(auth.header('GET', '/dir/index.html')!, /nc=00000002/, 'the nonce is reused with the next count');
    assert.deepEqual(parseChallenges('Basic realm="x", Digest realm="y", nonce="n"').map((c) => c.scheme), ['digest', 'basic']);
    const basic = new HttpAuthenticator({ user: 'a', password: 'b' });
    assert.ok(basic.accept('Basic realm="cam"'));
    assert.equal(basic.header('GET', '/'), `Basic ${Buffer.from('a:b').toString('base64')}`);
  });

  test('a source string names its kind, and a bad one says what is accepted', () => {
    assert.equal(sourceKind('http://cam/snapshot.jpg'), 'http');
    assert.equal(sourceKind('rtsp://cam:554/stream1'), 'rtsp');
    assert.equal(sourceKind('/dev/video0'), 'usb');
    assert.equal(sourceKind(os.tmpdir()), 'folder');
    assert.throws(() => sourceKind('ftp://cam/x'), /use http\(s\):\/\/, rtsp:\/\/, \/dev\/videoN or a folder/);
    assert.throws(() => sourceKind('/no/such/folder'), /neither a camera URL/);
    const withLogin = withCredentials('rtsp://cam:554/stream1', { user: 'op@line', password: 'p%ss:w/rd' });
    assert.equal(decodeURIComponent(new URL(withLogin).password), 'p%ss:w/rd');
    assert.equal(redactUrl(withLogin), 'rtsp://op%40line:***@cam:554/stream1', 'logs and status never show the password');
  });
});

describe('Camera on a real ffmpeg MJPEG stream', { skip: ffmpegMissing() }, () => {
  let camera: TestCamera;
  before(async () => {
    camera = await startMjpegCamera();
  });
  after(() => camera?.stop());

  test('free-run below the camera rate: newest frame wins, counters add up; ROI cut; reconnects after the camera drops', async () => {
    const frames: CameraFrame[] = [];
    const states: CameraState['state'][] = [];
    const outages: Error[] = [];
    const recovered: number[] = [];
    const lane = new Camera({
      connector: mjpegCamera({ url: camera.url, timeoutMs: 3000 }),
      mode: 'free-run',
      maxFps: 4, // the camera sends 10/s
      roi: { left: 100, top: 50, width: 320, height: 240 },
      retryMinMs: 50,
      retryMaxMs: 200,
      onFrame: (frame) => frames.push(frame),
      onState: (state) => states.push(state.state),
      onOutage: (err) => outages.push(err),
      onRecovered: (_ms, attempts) => recovered.push(attempts),
    });
    lane.start();
    try {
      await waitUntil(() => frames.length >= 4, '4 frames');
      const { width, height, format } = await sharp(frames[0].image as Buffer).metadata();
      assert.deepEqual([width, height, format], [320, 240, 'jpeg'], 'the ROI was cut out');
      assert.ok(frames.every((f, i) => i === 0 || f.seq > frames[i - 1].seq), 'sequence numbers grow');
      assert.ok(frames.some((f, i) => i > 0 && f.seq > frames[i - 1].seq + 1), 'frames over the cap were dropped, the newest sent');
      assert.ok(lane.counters.dropped > 0);
      assert.ok(lane.counters.received >= lane.counters.sent + lane.counters.dropped - 1);

      await camera.stop();
      await waitUntil(() => states.includes('reconnecting'), 'reconnecting');
      const before = frames.length;
      await camera.start();
      await waitUntil(() => frames.length >= before + 2, 'frames after the camera came back');
      assert.equal(outages.length, 1, `one outage reported, however many retries: ${outages.map((e) => e.message).join('; ')}`);
      assert.equal(recovered.length, 1);
      assert.ok(lane.counters.reconnects >= 1);
    } finally {
      await lane.stop();
    }
    assert.equal(lane.state.state, 'stopped');
  });

  test('USB: a device that is not there, and an ffmpeg that is not there, are said plainly', async () => {
    await assert.rejects(usbCamera({ device: '/dev/video-lane-test-none' }).run(() => undefined, async () => true, new AbortController().signal), /There is no video device \/dev\/video-lane-test-none/);
    assert.throws(() => usbCamera({ device: '/dev/video0', ffmpegPath: '/nonexistent/ffmpeg' }), /ffmpeg not found at "\/nonexistent\/ffmpeg": install it/);
  });

  test('triggered: each grab gets the next frame, frames between grabs are not kept', async () => {
    const lane = new Camera({ connector: mjpegCamera({ url: camera.url }), mode: 'triggered', maxFps: 30, retryMinMs: 50 });
    lane.start();
    try {
      const first = await lane.grab(10_000);
      const second = await lane.grab(10_000);
      assert.ok(second.seq > first.seq);
      assert.ok(second.timestamp >= first.timestamp);
      assert.equal(lane.counters.sent, 2);
      // Without a ROI the frame is the camera's own JPEG: ffmpeg's encoder comment is in it.
      assert.ok((first.image as Buffer).includes('Lavc'), 'passed on as ffmpeg encoded it');
      assert.equal(lane.counters.dropped, 0);
    } finally {
      await lane.stop();
    }
  });
});

test('a watched folder sends each new file once, and only after it has settled', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-camera-folder-'));
  fs.writeFileSync(path.join(dir, 'old.jpg'), fakeJpeg(0));
  const frames: CameraFrame[] = [];
  const lane = new Camera({ connector: folderCamera({ folder: dir, settleMs: 100 }), mode: 'free-run', maxFps: 50, onFrame: (f) => frames.push(f) });
  lane.start();
  try {
    // A file written in two halves: the frame must be the whole file.
    const half = path.join(dir, 'a.jpg');
    fs.writeFileSync(half, fakeJpeg(1).subarray(0, 4));
    await waitUntil(() => lane.state.state !== 'connecting' || frames.length === 0, 'watching');
    fs.appendFileSync(half, fakeJpeg(1).subarray(4));
    fs.writeFileSync(path.join(dir, 'b.jpg'), fakeJpeg(2));
    await waitUntil(() => frames.length >= 2, 'two frames');
    assert.deepEqual(frames.map((f) => path.basename(f.path!)), ['a.jpg', 'b.jpg'], 'new files only, in name order');
    assert.deepEqual(frames[0].image, fakeJpeg(1));
    fs.writeFileSync(path.join(dir, 'c.jpg'), fakeJpeg(3));
    await waitUntil(() => frames.length >= 3, 'a third frame');
    assert.deepEqual(frames.map((f) => path.basename(f.path!)), ['a.jpg', 'b.jpg', 'c.jpg'], 'each once');
  } finally {
    await lane.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an https:// camera with a self-signed certificate: refused with the reason, accepted with the check off', { skip: fs.existsSync('/usr/bin/openssl') ? undefined : 'openssl is not installed' }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-camera-tls-'));
  const { execFileSync } = await import('node:child_process');
  execFileSync('/usr/bin/openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-days', '1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
  const https = await import('node:https');
  const server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: fs.readFileSync(path.join(dir, 'cert.pem')) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fakeJpeg(7));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/snapshot.jpg`;
  try {
    const once = async (tlsVerify: boolean) => {
      const frames: Buffer[] = [];
      let asked = false;
      await snapshotCamera({ url, tlsVerify }).run((image) => frames.push(image as Buffer), async () => !asked && (asked = true), new AbortController().signal);
      return frames;
    };
    await assert.rejects(once(true), /certificate that cannot be checked .*turn off the certificate check/);
    assert.deepEqual(await once(false), [fakeJpeg(7)]);
  } finally {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('RTSP camera through ffmpeg with raw RGB output', { skip: ffmpegMissing() ?? rtspServerMissing() }, () => {
  let camera: TestCamera;
  before(async () => {
    camera = await startRtspCamera();
  });
  after(() => camera?.stop());

  async function grabOne(connector: ReturnType<typeof rtspCamera>): Promise<CameraFrame> {
    const lane = new Camera({ connector, mode: 'triggered', maxFps: 30, retryMinMs: 50 });
    lane.start();
    try {
      return await lane.grab(30_000);
    } finally {
      await lane.stop();
    }
  }

  test('frames arrive as raw pixels at the asked size, the picture the JPEG output shows; a region is cut before scaling', async () => {
    const raw = (await grabOne(rtspCamera({ url: camera.url, raw: { width: 224, height: 224 } }))).image as RawImage;
    assert.ok(!Buffer.isBuffer(raw), 'not encoded');
    assert.deepEqual([raw.width, raw.height, raw.channels, raw.data.length], [224, 224, 3, 224 * 224 * 3]);

    // The same stream as JPEG, fitted the way the backbone fits frames (cover): the same picture.
    const jpeg = (await grabOne(rtspCamera({ url: camera.url }))).image as Buffer;
    const fitted = await sharp(jpeg).resize(224, 224, { fit: 'cover' }).removeAlpha().raw().toBuffer();
    let difference = 0;
    for (let i = 0; i < fitted.length; i++) difference += Math.abs(fitted[i] - raw.data[i]);
    const meanDifference = difference / fitted.length;
    assert.ok(meanDifference < 12, `mean difference ${meanDifference.toFixed(1)} of 255 to the JPEG frame`);
    const flat = Buffer.alloc(fitted.length, raw.data[0]);
    let toFlat = 0;
    for (let i = 0; i < fitted.length; i++) toFlat += Math.abs(flat[i] - raw.data[i]);
    assert.ok(toFlat / fitted.length > 4 * meanDifference, 'the comparison tells pictures apart');

    const cut = (await grabOne(rtspCamera({ url: camera.url, raw: { width: 64, height: 32, roi: { left: 0, top: 0, width: 320, height: 160 } } }))).image as RawImage;
    assert.deepEqual([cut.width, cut.height, cut.data.length], [64, 32, 64 * 32 * 3]);
  });

  test('a raw size out of range is refused before ffmpeg starts', () => {
    assert.throws(() => rtspCamera({ url: camera.url, raw: { width: 4, height: 224 } }), /Raw frames need a whole-number width and height from 8 to 4096 pixels, got 4x224/);
  });
});
