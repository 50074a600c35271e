/**
 * LaneActivity: a training thread waits for the lane's frames in flight (counted in
 * another thread) to finish, never longer than it was told, and not at all when the lane
 * is idle; embedding calls the step hook before each decode and each backbone call.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadBackbone, type Backbone } from '../../../src/engine/index.js';
import { embedImagesSettled } from '../../../src/features/index.js';
import { LaneActivity } from '../../../src/threads/lane-activity.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('idle() returns at once when no frame is in flight, and when the frames are done', async () => {
  const lane = new LaneActivity();
  assert.ok((await lane.idle(1000)) < 20, 'an idle lane is not waited for');
  let finished = 0;
  const frames = lane.during(3, async () => {
    await sleep(120);
    finished = performance.now();
  });
  assert.equal(lane.framesInFlight, 3);
  const waited = await lane.idle(5000);
  const resumed = performance.now();
  await frames;
  assert.ok(resumed >= finished, 'it resumed after the frames were done');
  assert.ok(waited >= 100 && waited < 1000, `waited ${waited} ms`);
  assert.equal(lane.framesInFlight, 0);
});

test('a lane that never pauses holds a step back for the given time only; a failing frame still counts down', async () => {
  const lane = new LaneActivity();
  let release!: () => void;
  const busy = lane.during(1, () => new Promise<void>((resolve) => (release = resolve)));
  const waited = await lane.idle(60);
  assert.ok(waited >= 55 && waited < 500, `waited ${waited} ms`);
  release();
  await busy;
  await assert.rejects(lane.during(2, async () => Promise.reject(new Error('corrupt frame'))), /corrupt frame/);
  assert.equal(lane.framesInFlight, 0);
});

test('another thread sees the frames in flight and waits for them', async () => {
  const lane = new LaneActivity();
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const count = new Int32Array(workerData, 0, 1);
    const started = performance.now();
    const alive = setInterval(() => {}, 1000); // a pending waitAsync alone does not keep a thread's loop running
    const wait = () => {
      const inFlight = Atomics.load(count, 0);
      if (inFlight === 0) {
        clearInterval(alive);
        return parentPort.postMessage(performance.now() - started);
      }
      const pending = Atomics.waitAsync(count, 0, inFlight, 5000);
      if (pending.async) pending.value.then(wait);
      else wait();
    };
    parentPort.once('message', () => {
      parentPort.postMessage('waiting');
      wait();
    });
  `;
  let release!: () => void;
  const frame = lane.during(1, () => new Promise<void>((resolve) => (release = resolve)));
  const worker = new Worker(code, { eval: true, workerData: lane.buffer });
  try {
    worker.postMessage('go');
    await once(worker, 'message'); // waiting
    await sleep(100);
    release();
    const [waited] = (await once(worker, 'message')) as [number];
    await frame;
    assert.ok(waited >= 90 && waited < 2000, `the other thread waited ${waited} ms for the frame`);
  } finally {
    await worker.terminate();
  }
});

let backbone: Backbone;
before(async () => {
  backbone = await loadBackbone(modelDir('mobilenet-v2-0.35-features'));
});
after(() => backbone.release());

test('embedding awaits the step hook before each decode and each backbone call', async () => {
  const photos = classNames(groceryValDir).slice(0, 2).flatMap((name) => classImages(groceryValDir, name).slice(0, 3));
  const lane = new LaneActivity();
  let steps = 0;
  let waitedWhileBusy = 0;
  const busy = lane.during(1, () => sleep(80));
  const report = await embedImagesSettled(backbone, photos, {
    cache: null,
    batchSize: 4,
    decodeConcurrency: 1,
    beforeStep: async () => {
      steps++;
      waitedWhileBusy += await lane.idle(1000);
    },
  });
  await busy;
  assert.ok(report.results.every((r) => 'features' in r));
  assert.equal(steps, photos.length + Math.ceil(photos.length / 4), 'one step per decode and per backbone call');
  assert.ok(waitedWhileBusy >= 50, `the first step waited for the lane (${waitedWhileBusy} ms in all)`);
});
