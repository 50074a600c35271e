import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import {
  createSyntheticLane,
  DEFAULT_FRAME_SIZE,
  renderYoghurtFrame,
  YOGHURT_FLAVOURS,
  type YoghurtFlavour,
} from '../../../src/lane-source/index.js';
import { isLaneVisionError } from '../../../src/errors.js';

async function pixels(jpeg: Buffer): Promise<Buffer> {
  return (await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true })).data;
}

/** Mean colour of the clearly coloured pixels (the grey belt and rails drop out). */
async function saturatedMeanColour(jpeg: Buffer): Promise<[number, number, number]> {
  const data = await pixels(jpeg);
  const sum = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < data.length; i += 3) {
    const high = Math.max(data[i], data[i + 1], data[i + 2]);
    const low = Math.min(data[i], data[i + 1], data[i + 2]);
    if (high > 40 && (high - low) / high > 0.3) {
      sum[0] += data[i];
      sum[1] += data[i + 1];
      sum[2] += data[i + 2];
      count++;
    }
  }
  assert.ok(count > 0, 'frame has coloured pixels');
  return [sum[0] / count, sum[1] / count, sum[2] / count];
}

function meanAbsoluteDifference(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length);
  let total = 0;
  for (let i = 0; i < a.length; i++) total += Math.abs(a[i] - b[i]);
  return total / a.length;
}

test('renders a JPEG of the default and of a requested size', async () => {
  const byDefault = await sharp(await renderYoghurtFrame({ flavour: 'strawberry', seed: 1 })).metadata();
  assert.equal(byDefault.format, 'jpeg');
  assert.equal(byDefault.width, DEFAULT_FRAME_SIZE.width);
  assert.equal(byDefault.height, DEFAULT_FRAME_SIZE.height);
  for (const [width, height] of [
    [224, 224],
    [320, 240],
    [200, 360],
  ]) {
    const meta = await sharp(await renderYoghurtFrame({ flavour: 'peach', seed: 2, width, height })).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, width);
    assert.equal(meta.height, height);
    assert.equal(meta.channels, 3);
  }
});

test('the same seed gives identical bytes; other seeds give other frames', async () => {
  const options = { flavour: 'blueberry' as const, seed: 42, width: 320, height: 240 };
  const first = await renderYoghurtFrame(options);
  const again = await renderYoghurtFrame({ ...options });
  assert.ok(first.equals(again), 'same seed, same bytes');
  const base = await pixels(first);
  for (const seed of [43, 44, -42, 2 ** 40]) {
    const other = await renderYoghurtFrame({ ...options, seed });
    assert.ok(!other.equals(first));
    // Not just different noise: pose and lighting move, so pixels differ a lot on average.
    assert.ok(meanAbsoluteDifference(base, await pixels(other)) > 8, `seed ${seed} changes the scene`);
  }
});

test('flavours differ in colour under the same pose and lighting', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const colours = await Promise.all(
      YOGHURT_FLAVOURS.map(async (flavour) => saturatedMeanColour(await renderYoghurtFrame({ flavour, seed, width: 320, height: 240 }))),
    );
    for (let a = 0; a < colours.length; a++) {
      for (let b = a + 1; b < colours.length; b++) {
        const distance = Math.hypot(...colours[a].map((value, i) => value - colours[b][i]));
        assert.ok(distance > 10, `seed ${seed}: ${YOGHURT_FLAVOURS[a]} vs ${YOGHURT_FLAVOURS[b]} differ by only ${distance.toFixed(1)}`);
      }
    }
  }
});

test('render time per frame', async (t) => {
  for (const [width, height] of [
    [640, 480],
    [320, 240],
  ]) {
    await renderYoghurtFrame({ flavour: 'vanilla', seed: 0, width, height }); // warm-up
    const count = 8;
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      await renderYoghurtFrame({ flavour: YOGHURT_FLAVOURS[i % YOGHURT_FLAVOURS.length], seed: 1000 + i, width, height });
    }
    const perFrame = (performance.now() - started) / count;
    t.diagnostic(`${width}x${height}: ${perFrame.toFixed(1)} ms per frame`);
    // Generous bound: only catches a pathological slowdown (e.g. an unsnapped pattern).
    assert.ok(perFrame < 2000);
  }
});

test('bad options give clear errors', async () => {
  const rejects = (options: unknown, code: string) =>
    assert.rejects(renderYoghurtFrame(options as never), (err) => isLaneVisionError(err, code));
  await rejects({ flavour: 'banana', seed: 1 }, 'SOURCE_UNKNOWN_FLAVOUR');
  await rejects({ seed: 1 }, 'SOURCE_UNKNOWN_FLAVOUR');
  await rejects(undefined, 'SOURCE_UNKNOWN_FLAVOUR');
  await rejects({ flavour: 'peach', seed: 1.5 }, 'SOURCE_BAD_SEED');
  await rejects({ flavour: 'peach', seed: '1' }, 'SOURCE_BAD_SEED');
  await rejects({ flavour: 'peach', seed: 1, width: 10 }, 'SOURCE_BAD_SIZE');
  await rejects({ flavour: 'peach', seed: 1, height: 100000 }, 'SOURCE_BAD_SIZE');
  await rejects({ flavour: 'peach', seed: 1, width: 320.5 }, 'SOURCE_BAD_SIZE');
  assert.throws(() => createSyntheticLane({ flavours: [] }), (err) => isLaneVisionError(err, 'SOURCE_EMPTY'));
  assert.throws(() => createSyntheticLane({ flavours: ['kiwi' as YoghurtFlavour] }), (err) => isLaneVisionError(err, 'SOURCE_UNKNOWN_FLAVOUR'));
  assert.throws(() => createSyntheticLane({ order: 'sorted' as never }), (err) => isLaneVisionError(err, 'SOURCE_BAD_ORDER'));
});

test('a synthetic lane streams labelled frames, reproducibly', async () => {
  const flavours: YoghurtFlavour[] = ['cherry', 'natural', 'peach'];
  const roundRobin = createSyntheticLane({ flavours, order: 'round-robin', seed: 5, width: 160, height: 120 });
  for (let i = 0; i < 6; i++) {
    const frame = await roundRobin.next();
    assert.equal(frame.index, i);
    assert.equal(frame.label, flavours[i % flavours.length]);
    assert.equal((await sharp(frame.image).metadata()).width, 160);
  }

  const take = async (seed: number, count: number) => {
    const lane = createSyntheticLane({ seed, width: 96, height: 96 });
    // Concurrent calls still get indices 0..count-1 in call order.
    return Promise.all(Array.from({ length: count }, () => lane.next()));
  };
  const first = await take(9, 24);
  const again = await take(9, 24);
  const other = await take(10, 24);
  assert.deepEqual(first.map((frame) => frame.index), [...Array(24).keys()]);
  assert.deepEqual(again.map((frame) => frame.label), first.map((frame) => frame.label));
  assert.ok(first.every((frame, i) => frame.image.equals(again[i].image)));
  assert.ok(first.some((frame, i) => !frame.image.equals(other[i].image)));
  // Random order still shows several flavours, and not in a fixed rotation.
  const labels = first.map((frame) => frame.label);
  assert.ok(new Set(labels).size >= 4, `flavours seen: ${[...new Set(labels)].join(', ')}`);
  assert.notDeepEqual(labels.slice(0, 6), labels.slice(6, 12));
});
