/**
 * MicroBatchQueue on its own: batching, barriers, the bound and its three overflow
 * policies, max wait, pause/takeAll/idle. A batch "runs" until the test lets it finish, so
 * what arrives meanwhile is exactly known; no assertion depends on wall time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MicroBatchQueue, type DropReason, type MicroBatchQueueOptions } from '../../../src/classify/index.js';

interface Item {
  id: number;
  command?: boolean;
}

/** A queue whose batches wait for `finish()`; records batches and drops. */
function gatedQueue(options: Partial<MicroBatchQueueOptions<Item>>) {
  const batches: number[][] = [];
  const drops: [number, DropReason][] = [];
  let release: (() => void) | undefined;
  const queue = new MicroBatchQueue<Item>(
    (batch) => {
      batches.push(batch.map((item) => item.id));
      return new Promise<void>((resolve) => (release = resolve));
    },
    {
      maxBatch: 4,
      isBarrier: (item) => item.command === true,
      onDrop: (item, reason) => drops.push([item.id, reason]),
      ...options,
    },
  );
  return {
    queue,
    batches,
    drops,
    /** Lets the running batch finish. */
    release() {
      const done = release;
      release = undefined;
      done?.();
    },
    /** Lets the running batch finish and waits until the next one started (or the queue is idle). */
    async finish() {
      const before = batches.length;
      const done = release;
      release = undefined;
      done?.();
      await waitFor(() => batches.length > before || (queue.length === 0 && release === undefined), 'the next batch');
    },
    async drain() {
      while (release) await this.finish();
      await queue.idle();
    },
  };
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const push = (queue: MicroBatchQueue<Item>, ids: number[]) => ids.map((id) => queue.push({ id }));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test('the first item runs at once; items that arrive meanwhile go together, up to max batch, in order', async () => {
  const q = gatedQueue({});
  push(q.queue, range(0, 11));
  assert.deepEqual(q.batches, [[0]], 'the first runs before the others arrive');
  assert.equal(q.queue.stats.queued, 10);
  await q.drain();
  assert.deepEqual(q.batches, [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]);
  assert.deepEqual(q.drops, []);
  assert.equal(q.queue.stats.batches, 4);
  assert.equal(q.queue.stats.maxQueued, 10);
  assert.equal(q.queue.stats.queued, 0);
});

test('a barrier runs alone between the items before and after it, and is never dropped nor counted', async () => {
  const q = gatedQueue({ limit: 2, overflow: 'drop-newest' });
  push(q.queue, [0, 1]);
  q.queue.push({ id: 100, command: true });
  q.queue.push({ id: 101, command: true });
  push(q.queue, [2, 3]);
  assert.equal(q.queue.stats.queued, 2, 'commands are not frames waiting');
  assert.equal(q.queue.length, 4);
  await q.drain();
  assert.deepEqual(q.batches, [[0], [1], [100], [101], [2]]);
  assert.deepEqual(q.drops, [[3, 'queueFull']]);
  assert.equal(q.queue.stats.batches, 3);
});

test('drop-oldest keeps the newest items and hands every evicted one to onDrop', async () => {
  const q = gatedQueue({ limit: 3, overflow: 'drop-oldest' });
  const accepted = push(q.queue, range(0, 10));
  assert.ok(accepted.every(Boolean), 'every new item is taken');
  await q.drain();
  assert.deepEqual(q.batches, [[0], [7, 8, 9]]);
  assert.deepEqual(q.drops, range(1, 7).map((id) => [id, 'queueFull']));
  assert.deepEqual(q.queue.stats.dropped, { queueFull: 6, safetyCap: 0 });
  assert.equal(q.queue.stats.maxQueued, 3);
});

test('drop-oldest passes over a waiting barrier to evict the oldest item', async () => {
  const q = gatedQueue({ limit: 1, overflow: 'drop-oldest' });
  push(q.queue, [0, 1]);
  q.queue.push({ id: 100, command: true });
  push(q.queue, [2]);
  await q.drain();
  assert.deepEqual(q.batches, [[0], [100], [2]]);
  assert.deepEqual(q.drops, [[1, 'queueFull']]);
});

test('drop-newest keeps the first items and refuses the new ones', async () => {
  const q = gatedQueue({ limit: 3, overflow: 'drop-newest' });
  const accepted = push(q.queue, range(0, 10));
  assert.deepEqual(accepted, [true, true, true, true, false, false, false, false, false, false]);
  await q.drain();
  assert.deepEqual(q.batches, [[0], [1, 2, 3]]);
  assert.deepEqual(q.drops, range(4, 10).map((id) => [id, 'queueFull']));
});

test('block keeps everything up to the safety cap (10 x limit by default), then refuses', async () => {
  const q = gatedQueue({ limit: 2, overflow: 'block', maxBatch: 64 });
  assert.equal(q.queue.blockLimit, 20);
  const accepted = push(q.queue, range(0, 25));
  assert.equal(accepted.filter(Boolean).length, 21, 'one running and 20 waiting');
  assert.equal(q.queue.stats.queued, 20);
  await q.drain();
  assert.deepEqual(q.batches, [[0], range(1, 21)]);
  assert.deepEqual(q.drops, range(21, 25).map((id) => [id, 'safetyCap']));
  assert.deepEqual(q.queue.stats.dropped, { queueFull: 0, safetyCap: 4 });

  const own = gatedQueue({ limit: 2, overflow: 'block', blockLimit: 5 });
  push(own.queue, range(0, 8));
  assert.equal(own.queue.stats.queued, 5);
  await own.drain();
  assert.equal(own.drops.length, 2);
});

test('max wait 0: an item that finds the queue idle runs alone at once', async () => {
  const q = gatedQueue({ maxWaitMs: 0 });
  push(q.queue, [0]);
  assert.deepEqual(q.batches, [[0]]);
  await q.finish();
  await new Promise((resolve) => setTimeout(resolve, 5));
  push(q.queue, [1]);
  assert.deepEqual(q.batches, [[0], [1]]);
  await q.drain();
});

test('max wait: an item waits for others to share its batch; a full batch or a barrier does not wait', async () => {
  // The wait ends by the batch filling up (max batch 2): without that the test would time out.
  const full = gatedQueue({ maxWaitMs: 60_000, maxBatch: 2 });
  push(full.queue, [0]);
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(full.batches, [], 'the first item waits for company');
  assert.equal(full.queue.stats.queued, 1);
  push(full.queue, [1]);
  await waitFor(() => full.batches.length === 1, 'the full batch');
  assert.deepEqual(full.batches, [[0, 1]], 'runs as soon as the batch is full');
  await full.drain();

  // The wait ends by time: both items, a few ms apart, share one batch.
  const timed = gatedQueue({ maxWaitMs: 1000, maxBatch: 8 });
  push(timed.queue, [0]);
  await new Promise((resolve) => setTimeout(resolve, 10));
  push(timed.queue, [1]);
  await waitFor(() => timed.batches.length === 1, 'the batch after the wait');
  assert.deepEqual(timed.batches, [[0, 1]]);
  await timed.drain();

  const barrier = gatedQueue({ maxWaitMs: 60_000 });
  push(barrier.queue, [0]);
  barrier.queue.push({ id: 100, command: true });
  await waitFor(() => barrier.batches.length === 1, 'the batch cut by the barrier');
  assert.deepEqual(barrier.batches, [[0]], 'a barrier cuts the batch: no point waiting');
  await barrier.drain();
  assert.deepEqual(barrier.batches, [[0], [100]]);
});

test('max wait counts from the oldest item: items that waited behind a running batch do not wait again', async () => {
  const q = gatedQueue({ maxWaitMs: 100, maxBatch: 8 });
  push(q.queue, range(0, 9)); // a full batch, and one more
  await waitFor(() => q.batches.length === 1, 'the full batch');
  assert.deepEqual(q.batches, [range(0, 8)]);
  await new Promise((resolve) => setTimeout(resolve, 150));
  q.release();
  // Without waiting again, the next batch starts within the same turn of the event loop.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(q.batches, [range(0, 8), [8]], 'item 8 had waited long enough already');
  await q.drain();
});

test('pause holds items (bounded all the same), takeAll empties the queue, pause ends a wait', async () => {
  const q = gatedQueue({ limit: 2, startPaused: true });
  push(q.queue, [0, 1, 2]);
  assert.deepEqual(q.batches, []);
  assert.deepEqual(q.drops, [[0, 'queueFull']]);
  q.queue.resume();
  await q.drain();
  assert.deepEqual(q.batches, [[1, 2]]);

  const waiting = gatedQueue({ maxWaitMs: 60_000 });
  push(waiting.queue, [0]);
  const idle = waiting.queue.idle();
  waiting.queue.pause();
  await idle; // would time out if pause did not end the wait
  assert.deepEqual(waiting.queue.takeAll().map((item) => item.id), [0]);
  assert.equal(waiting.queue.stats.queued, 0);
  assert.deepEqual(waiting.batches, []);
});

test('what run throws goes to onError with its batch, and the queue goes on', async () => {
  const failed: number[][] = [];
  const ran: number[][] = [];
  const queue = new MicroBatchQueue<Item>(
    async (batch) => {
      ran.push(batch.map((item) => item.id));
      if (batch.some((item) => item.id === 0)) throw new Error('boom');
    },
    { maxBatch: 4, onError: (_err, batch) => failed.push(batch.map((item) => item.id)) },
  );
  push(queue, [0, 1, 2]);
  await waitFor(() => ran.length === 2, 'both batches');
  await queue.idle();
  assert.deepEqual(ran, [[0], [1, 2]]);
  assert.deepEqual(failed, [[0]]);
});

/** A queue whose batches each wait for their own release; records batches as they start. */
function concurrentQueue(options: Partial<MicroBatchQueueOptions<Item>>) {
  const started: number[][] = [];
  const releases: (() => void)[] = [];
  const queue = new MicroBatchQueue<Item>(
    (batch) => {
      started.push(batch.map((item) => item.id));
      return new Promise<void>((resolve) => releases.push(resolve));
    },
    { maxBatch: 4, isBarrier: (item) => item.command === true, ...options },
  );
  return { queue, started, releases };
}

test('maxRunning 2: a full batch waiting starts beside the running one, in arrival order; a partial one waits its turn', async () => {
  const { queue, started, releases } = concurrentQueue({ maxRunning: 2 });
  queue.push({ id: 1 }); // runs alone at once
  for (let id = 2; id <= 4; id++) queue.push({ id });
  assert.deepEqual(started, [[1]], 'three waiting (not a full batch): nothing starts beside batch 1');
  queue.push({ id: 5 });
  assert.deepEqual(started, [[1], [2, 3, 4, 5]], 'a full batch starts beside the running one');
  for (let id = 6; id <= 13; id++) queue.push({ id });
  assert.equal(started.length, 2, 'never more than maxRunning at once');
  releases[1](); // the second batch ends first: the next full batch starts beside batch 1
  await waitFor(() => started.length === 3, 'a third batch');
  assert.deepEqual(started[2], [6, 7, 8, 9]);
  releases[0]();
  await waitFor(() => started.length === 4, 'a fourth batch');
  assert.deepEqual(started[3], [10, 11, 12, 13]);
  releases[2]();
  releases[3]();
  await queue.idle();
  assert.equal(queue.stats.batches, 4);
});

test('maxRunning 2: a barrier waits for every running batch, runs alone, and idle() waits for all of them', async () => {
  const { queue, started, releases } = concurrentQueue({ maxRunning: 2 });
  for (let id = 1; id <= 5; id++) queue.push({ id });
  queue.push({ id: 100, command: true });
  queue.push({ id: 6 });
  assert.deepEqual(started, [[1], [2, 3, 4, 5]]);
  let idle = false;
  void queue.idle().then(() => (idle = true));
  releases[0]();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(started.length, 2, 'the barrier waits for the batch still running beside');
  assert.equal(idle, false);
  releases[1]();
  await waitFor(() => started.length === 3, 'the barrier');
  assert.deepEqual(started[2], [100]);
  releases[2]();
  await waitFor(() => started.length === 4, 'the frame after the barrier');
  assert.deepEqual(started[3], [6]);
  assert.equal(idle, false, 'idle waits for the last batch');
  releases[3]();
  await queue.idle();
});

test('maxRunning defaults to 1: a full batch waiting does not start beside the running one', () => {
  const { queue, started } = concurrentQueue({});
  for (let id = 1; id <= 9; id++) queue.push({ id });
  assert.deepEqual(started, [[1]]);
});
