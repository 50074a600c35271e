/**
 * LaneActivity: a training thread waits for the lane's frames in flight (counted in
 * another thread) to finish, never longer than it was told, and not at all when the lane
 * is idle; embedding calls the step hook before each decode and each backbone call.
 * Every test asserts order (what happened before what), never how long anything took.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { loadBackbone, type Backbone } from '../../../src/engine/index.js';
import { embedImagesSettled } from '../../../src/features/index.js';
import { LaneActivity } from '../../../src/threads/lane-activity.js';
import { classImages, classNames, groceryValDir, modelDir } from '../../support/shared.js';

/** A frame that stays in flight until released by the test. */
function heldFrame(lane: LaneActivity, frames = 1) {
  let release!: () => void;
  const done = lane.during(frames, () => new Promise<void>((resolve) => (release = resolve)));
  return { done, release: () => release() };
}

/** Resolves after the event loop has run a few turns: long enough for anything already due to happen. */
const turns = async (count = 5) => {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
};

test('idle() returns at once when no frame is in flight', async () => {
  const lane = new LaneActivity();
  const first = await Promise.race([lane.idle(60_000).then(() => 'idle'), turns(1).then(() => 'a loop turn later')]);
  assert.equal(first, 'idle', 'an idle lane is not waited for');
});

test('idle() resumes only after the frames in flight are done', async () => {
  const lane = new LaneActivity();
  const order: string[] = [];
  const frame = heldFrame(lane, 3);
  assert.equal(lane.framesInFlight, 3);
  const idle = lane.idle(60_000).then(() => order.push('idle'));
  await turns();
  assert.deepEqual(order, [], 'still waiting while frames are in flight');
  order.push('frames done');
  frame.release();
  await frame.done;
  await idle;
  assert.deepEqual(order, ['frames done', 'idle']);
  assert.equal(lane.framesInFlight, 0);
});

test('a lane that never pauses holds a step back for the given time only; a failing frame still counts down', async () => {
  const lane = new LaneActivity();
  const frame = heldFrame(lane);
  await lane.idle(30);
  assert.equal(lane.framesInFlight, 1, 'idle() gave up while the frame was still in flight');
  frame.release();
  await frame.done;
  await assert.rejects(lane.during(2, async () => Promise.reject(new Error('corrupt frame'))), /corrupt frame/);
  assert.equal(lane.framesInFlight, 0);
});

test('another thread sees the frames in flight and waits for them', async () => {
  const lane = new LaneActivity();
  // The worker answers 'pong' to a 'ping' while it waits: had it stopped waiting early,
  // its 'done' would come before the 'pong' (one port delivers in order).
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const count = new Int32Array(workerData, 0, 1);
    const alive = setInterval(() => {}, 1000); // a pending waitAsync alone does not keep a thread's loop running
    const wait = () => {
      const inFlight = Atomics.load(count, 0);
      if (inFlight === 0) {
        clearInterval(alive);
        return parentPort.postMessage('done');
      }
      const pending = Atomics.waitAsync(count, 0, inFlight, 60000);
      if (pending.async) pending.value.then(wait);
      else wait();
    };
    parentPort.on('message', (m) => {
      if (m === 'ping') return parentPort.postMessage('pong');
      parentPort.postMessage('waiting for ' + Atomics.load(count, 0));
      wait();
    });
  `;
  const frame = heldFrame(lane);
  const worker = new Worker(code, { eval: true, workerData: lane.buffer });
  const order: string[] = [];
  worker.on('message', (m: string) => order.push(m));
  try {
    worker.postMessage('go');
    await once(worker, 'message');
    worker.postMessage('ping');
    while (order.length < 2) await once(worker, 'message');
    order.push('released');
    frame.release();
    await frame.done;
    while (order.length < 4) await once(worker, 'message');
    assert.deepEqual(order, ['waiting for 1', 'pong', 'released', 'done']);
  } finally {
    worker.unref();
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
  const order: string[] = [];
  const frame = heldFrame(lane);
  let steps = 0;
  const report = await embedImagesSettled(backbone, photos, {
    cache: null,
    batchSize: 4,
    decodeConcurrency: 1,
    beforeStep: async () => {
      steps++;
      if (steps === 1) {
        order.push(`first step sees ${lane.framesInFlight} lane frame in flight`);
        // The lane's frame ends only after the first step has started waiting for it.
        setImmediate(() => {
          order.push('lane frame done');
          frame.release();
        });
      }
      await lane.idle(60_000);
      if (steps === 1) order.push('first step resumed');
    },
  });
  order.push('embedded');
  await frame.done;
  assert.ok(report.results.every((r) => 'features' in r));
  assert.equal(steps, photos.length + Math.ceil(photos.length / 4), 'one step per decode and per backbone call');
  assert.deepEqual(order, ['first step sees 1 lane frame in flight', 'lane frame done', 'first step resumed', 'embedded']);
});
