import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPacer, type PacerClock } from '../../../src/lane-source/index.js';
import { isLaneVisionError } from '../../../src/errors.js';

/** A clock that moves only when the pacer sleeps or the test says work took time. */
function fakeClock() {
  let now = 1000;
  const clock: PacerClock & { work(ms: number): void } = {
    now: () => now,
    sleep: async (ms, signal) => {
      if (signal.aborted) throw new Error('aborted');
      now += ms;
    },
    work: (ms) => {
      now += ms;
    },
  };
  return clock;
}

test('ticks on a fixed grid, so lateness does not add up', async () => {
  const clock = fakeClock();
  const pacer = createPacer(50, { clock });
  assert.equal(pacer.periodMs, 20);
  const start = clock.now();
  const times: number[] = [];
  for (let i = 0; i < 40; i++) {
    assert.equal(await pacer.tick(), true);
    times.push(clock.now() - start);
    // Work that takes part of the period must not push later ticks back.
    clock.work(i % 2 === 0 ? 8 : 2);
  }
  assert.deepEqual(times, times.map((_, i) => i * 20), 'every tick on the grid, none early or drifting');
  pacer.stop();
});

test('a slow consumer skips missed ticks instead of bursting', async () => {
  const clock = fakeClock();
  const pacer = createPacer(100, { clock }); // 10 ms
  const start = clock.now();
  await pacer.tick();
  clock.work(55); // five and a half ticks missed
  const after: number[] = [];
  for (let i = 0; i < 3; i++) {
    await pacer.tick();
    after.push(clock.now() - start);
  }
  // Skipping: the three ticks fall on the grid at 60, 70 and 80 ms. Catching up would hand
  // out the missed ticks at once, all at 55 ms.
  assert.deepEqual(after, [60, 70, 80]);
  pacer.stop();
});

test('the real clock never ticks early', async () => {
  const pacer = createPacer(200); // 5 ms
  const before = performance.now();
  for (let i = 0; i < 5; i++) await pacer.tick();
  // A lower bound only: a loaded machine can make ticks late, never early.
  assert.ok(performance.now() - before >= 4 * pacer.periodMs);
  pacer.stop();
});

test('stop ends a pending tick at once, and later ticks report stopped', async () => {
  const pacer = createPacer(0.001); // one tick every 1000 s: a test that waited for it would time out
  assert.equal(await pacer.tick(), true);
  const pending = pacer.tick();
  setImmediate(() => pacer.stop());
  assert.equal(await pending, false);
  assert.equal(pacer.stopped, true);
  assert.equal(await pacer.tick(), false);
});

test('an abort signal stops it too', async () => {
  const controller = new AbortController();
  const pacer = createPacer(1, { signal: controller.signal });
  await pacer.tick();
  const pending = pacer.tick();
  controller.abort();
  assert.equal(await pending, false);
  assert.equal(pacer.stopped, true);
});

test('bad rates are refused', () => {
  for (const fps of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 5000, '10']) {
    assert.throws(() => createPacer(fps as number), (err) => isLaneVisionError(err, 'SOURCE_BAD_RATE'), String(fps));
  }
});
