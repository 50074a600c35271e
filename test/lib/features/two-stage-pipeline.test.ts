/**
 * TwoStagePipeline: the next item's first stage (decode) runs while the second (backbone)
 * runs the current one; results settle in push order; no more than `ahead` items are
 * decoded ahead; a failed decode fails its item only. Stages are held by hand, so the
 * tests check order and causality, never durations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TwoStagePipeline } from '../../../src/features/two-stage-pipeline.js';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A pipeline whose stages wait for the test to release them, logging every start and end. */
function heldPipeline(ahead?: number) {
  const log: string[] = [];
  const decodes = new Map<number, ReturnType<typeof deferred<void>>>();
  const runs = new Map<number, ReturnType<typeof deferred<void>>>();
  const gate = (map: typeof decodes, n: number) => {
    if (!map.has(n)) map.set(n, deferred());
    return map.get(n)!;
  };
  const pipeline = new TwoStagePipeline<number, number, string>(
    async (n) => {
      log.push(`decode ${n}`);
      await gate(decodes, n).promise;
      log.push(`decoded ${n}`);
      return n * 10;
    },
    async (d) => {
      log.push(`run ${d / 10}`);
      await gate(runs, d / 10).promise;
      log.push(`ran ${d / 10}`);
      return `result ${d / 10}`;
    },
    ahead === undefined ? {} : { ahead },
  );
  return { pipeline, log, decode: (n: number) => gate(decodes, n), run: (n: number) => gate(runs, n) };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('the next item decodes while the current one runs; results keep push order', async () => {
  const { pipeline, log, decode, run } = heldPipeline();
  const results: string[] = [];
  const done = [0, 1, 2].map((n) => pipeline.push(n).then((r) => results.push(r)));
  decode(0).resolve();
  await settle();
  assert.deepEqual(log, ['decode 0', 'decoded 0', 'decode 1', 'run 0'], 'item 1 starts decoding before item 0 runs');
  // Item 2 finishes decoding first, item 1 next; the backbone still takes them in push order.
  decode(2).resolve();
  decode(1).resolve();
  await settle();
  assert.ok(!log.includes('decode 2'), 'item 2 waits: one item decodes ahead (ahead 1)');
  run(0).resolve();
  await settle();
  // Item 1 goes to the backbone, which frees the slot: item 2 starts decoding, then item 1 runs.
  assert.ok(log.indexOf('ran 0') < log.indexOf('decode 2') && log.indexOf('decode 2') < log.indexOf('run 1'), log.join(', '));
  assert.ok(!log.includes('ran 1'), 'item 2 decodes while item 1 runs');
  run(1).resolve();
  run(2).resolve();
  await Promise.all(done);
  assert.deepEqual(results, ['result 0', 'result 1', 'result 2']);
  assert.deepEqual(
    log.filter((l) => l.startsWith('run')),
    ['run 0', 'run 1', 'run 2'],
  );
  const stats = pipeline.stats;
  assert.equal(stats.maxAhead, 1);
  assert.ok(stats.overlapped >= 2, `decodes started while the backbone ran: ${stats.overlapped}`);
  assert.equal(pipeline.pending, 0);
});

test('in flight stays bounded: with ahead 2, a burst decodes two at a time behind the one running', async () => {
  const { pipeline, log, decode, run } = heldPipeline(2);
  const done = Array.from({ length: 6 }, (_, n) => pipeline.push(n));
  await settle();
  assert.deepEqual(log, ['decode 0', 'decode 1'], 'two decode ahead, four wait');
  decode(0).resolve();
  await settle();
  assert.deepEqual(log.slice(2), ['decoded 0', 'decode 2', 'run 0'], 'a slot frees when item 0 goes to the backbone');
  for (let n = 1; n < 6; n++) decode(n).resolve();
  await settle();
  assert.ok(!log.includes('decode 4'), 'items 1 and 2 decoded and waiting hold both slots while item 0 runs');
  for (let n = 0; n < 6; n++) run(n).resolve();
  assert.deepEqual(await Promise.all(done), [0, 1, 2, 3, 4, 5].map((n) => `result ${n}`));
  assert.equal(pipeline.stats.maxAhead, 2);
  // Besides the item running, never more than 2 decodes were started and not yet run.
  const startedBeforeRun = (n: number) => log.slice(0, log.indexOf(`run ${n}`)).filter((l) => l.startsWith('decode ')).length;
  for (let n = 0; n < 6; n++) assert.ok(startedBeforeRun(n) <= n + 3, `before item ${n} ran: ${startedBeforeRun(n)} decodes started`);
});

test('a failed decode rejects its item in its turn; the items after it still run', async () => {
  const { pipeline, log, decode, run } = heldPipeline();
  const first = pipeline.push(0);
  const broken = pipeline.push(1);
  const last = pipeline.push(2);
  decode(0).resolve();
  decode(1).reject(new Error('damaged frame 1'));
  decode(2).resolve();
  run(0).resolve();
  run(2).resolve();
  assert.equal(await first, 'result 0');
  await assert.rejects(broken, /damaged frame 1/);
  assert.equal(await last, 'result 2');
  assert.ok(!log.includes('run 1'), 'a frame that did not decode never reaches the backbone');
});

test('a failed run rejects that item only, and a bad bound is refused', async () => {
  const { pipeline, decode, run } = heldPipeline();
  const first = pipeline.push(0);
  const second = pipeline.push(1);
  decode(0).resolve();
  decode(1).resolve();
  run(0).reject(new Error('backbone failed'));
  run(1).resolve();
  await assert.rejects(first, /backbone failed/);
  assert.equal(await second, 'result 1');
  for (const ahead of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => new TwoStagePipeline(async () => 0, async () => 0, { ahead }), /ahead must be a whole number >= 1/);
  }
});
