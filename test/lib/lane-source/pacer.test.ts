import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPacer } from '../../../src/lane-source/index.js';
import { isLaneVisionError } from '../../../src/errors.js';

test('ticks on a fixed grid, so lateness does not add up', async () => {
  const fps = 50;
  const pacer = createPacer(fps);
  assert.equal(pacer.periodMs, 20);
  const times: number[] = [];
  // The pacer's first tick starts its grid somewhere between these two readings.
  const before = performance.now();
  for (let i = 0; i < 40; i++) {
    assert.equal(await pacer.tick(), true);
    times.push(performance.now());
    // Work that takes part of the period must not push later ticks back.
    await sleep(i % 2 === 0 ? 8 : 2);
  }
  // Never early: tick i comes no sooner than i periods after the start (later if the
  // machine stalled for more than a period and the pacer skipped ticks).
  for (let i = 1; i < times.length; i++) {
    assert.ok(times[i] - before >= i * pacer.periodMs, `tick ${i} early by ${before + i * pacer.periodMs - times[i]} ms`);
  }
  // On the grid: nearly every tick lands just after a multiple of the period. A pacer that
  // slept a period after each tick would drift by the work (2-8 ms) plus timer overshoot
  // every tick, spreading its ticks all over the period.
  const phases = times.slice(1).map((time) => (time - before) % pacer.periodMs);
  const onGrid = phases.filter((phase) => phase < 5).length / phases.length;
  assert.ok(onGrid >= 0.75, `only ${(onGrid * 100).toFixed(0)}% of ticks on the grid: ${phases.map((p) => p.toFixed(1)).join(' ')}`);
  pacer.stop();
});

test('a slow consumer skips missed ticks instead of bursting', async () => {
  const pacer = createPacer(100); // 10 ms
  const before = performance.now();
  await pacer.tick();
  await sleep(55); // five and a half ticks missed
  await pacer.tick();
  await pacer.tick();
  await pacer.tick();
  const elapsed = performance.now() - before;
  // Skipping: the three ticks fall on the grid at 60, 70 and 80 ms. Catching up would hand
  // out the missed ticks at once and finish at about 55 ms.
  assert.ok(elapsed >= 80, `three ticks after a 55 ms lag ended at ${elapsed.toFixed(1)} ms`);
  pacer.stop();
});

test('stop ends a pending tick at once, and later ticks report stopped', async () => {
  const pacer = createPacer(0.5); // one tick every 2 s
  assert.equal(await pacer.tick(), true);
  const started = performance.now();
  const pending = pacer.tick();
  setTimeout(() => pacer.stop(), 20);
  assert.equal(await pending, false);
  assert.ok(performance.now() - started < 500, 'did not wait for the 2 s tick');
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
