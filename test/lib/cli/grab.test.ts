/**
 * `lane-vision grab` through the real command line (a child process, as a user runs it) on
 * real cameras on 127.0.0.1: ffmpeg serving MJPEG and GStreamer's RTSP server; each run writes
 * 10 frames that decode. Also a wrong command line and a camera nobody answers for.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { ffmpegMissing, freePort, rtspServerMissing, startMjpegCamera, startRtspCamera, type TestCamera } from '../../support/cameras.js';
import { jsonLines, ownStderrLines, runLaneVision } from './support.js';

let work: string;
before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-grab-'));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

async function checkTenFrames(outDir: string, records: Record<string, any>[], kind: string): Promise<void> {
  assert.equal(records.length, 10);
  const files = fs.readdirSync(outDir).sort();
  assert.deepEqual(files, Array.from({ length: 10 }, (_, i) => `frame-${String(i + 1).padStart(6, '0')}.jpg`));
  for (const [i, record] of records.entries()) {
    assert.equal(record.kind, kind);
    assert.equal(path.basename(record.file), files[i]);
    if (i > 0) assert.ok(record.seq > records[i - 1].seq, 'frames in camera order');
  }
  for (const file of files) {
    const { width, height } = await sharp(path.join(outDir, file)).raw().toBuffer({ resolveWithObject: true }).then((r) => r.info);
    assert.deepEqual([width, height], [640, 480], `${file} decodes`);
  }
}

test('grab from an MJPEG URL writes 10 decodable JPEGs', { skip: ffmpegMissing() }, async () => {
  let camera: TestCamera | undefined;
  try {
    camera = await startMjpegCamera();
    const outDir = path.join(work, 'mjpeg');
    const run = await runLaneVision(['grab', '--source', camera.url, '--count', '10', '--out', outDir, '--json']);
    assert.equal(run.code, 0, run.stderr);
    await checkTenFrames(outDir, jsonLines(run), 'mjpeg');
  } finally {
    await camera?.stop();
  }
});

test('grab from an rtsp:// URL writes 10 decodable JPEGs, at least --every apart', { skip: ffmpegMissing() ?? rtspServerMissing() }, async () => {
  let camera: TestCamera | undefined;
  try {
    camera = await startRtspCamera();
    const outDir = path.join(work, 'rtsp');
    const run = await runLaneVision(['grab', '--source', camera.url, '--count', '10', '--out', outDir, '--every', '150', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const records = jsonLines(run);
    await checkTenFrames(outDir, records, 'rtsp');
    // The cap holds off the next frame; at 10 frames/s from the camera, that skips frames.
    assert.ok(records.some((r, i) => i > 0 && r.seq > records[i - 1].seq + 1), 'frames over the --every cap were skipped');
  } finally {
    await camera?.stop();
  }
});

test('a wrong command line is exit code 2; a camera nobody answers for is exit code 1 with the reason', async () => {
  const usage = await runLaneVision(['grab', '--count', '3', '--out', work]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--source is required/);
  const badRoi = await runLaneVision(['grab', '--source', work, '--out', work, '--roi', '1,2,3']);
  assert.equal(badRoi.code, 2);
  assert.match(badRoi.stderr, /--roi must be left,top,width,height/);
  const port = await freePort();
  const nobody = await runLaneVision(['grab', '--source', `http://127.0.0.1:${port}/snapshot.jpg`, '--count', '1', '--out', path.join(work, 'none'), '--timeout', '1']);
  assert.equal(nobody.code, 1);
  assert.match(ownStderrLines(nobody).join('\n'), /No frame from .*connection refused.*\[CAMERA_NO_FRAME\]/);
});
