/**
 * Bounded serial work queue with micro-batching, for frames that share one backbone.
 *
 * - One batch runs at a time, in arrival order. Items that arrive while a batch runs are
 *   taken together (up to `maxBatch`) into the next one, so a busy lane pays one backbone
 *   call for several frames.
 * - `maxWaitMs` (default 0): when nothing runs and fewer than `maxBatch` items wait, wait
 *   until the oldest of them has waited that long (or the batch fills) before running. With
 *   0 a quiet lane waits for nothing.
 * - `maxRunning` (default 1): while a batch runs and a full one (`maxBatch` items) waits,
 *   up to this many batches run at once, started in arrival order. A saturated lane thus
 *   keeps the inference worker's decode -> backbone stages full across batches (its next
 *   batch decodes while the last part of this one is in the backbone), while a lane that
 *   is not saturated still gathers its frames into one batch at a time. lane-classify
 *   uses 2. Items of running batches are not waiting: `limit` and `overflow` apply to the rest.
 * - A barrier item (a command) always runs alone, after everything before it and before
 *   everything after it; it is never dropped and not counted against the limit.
 * - At most `limit` items wait (not counting the batch that runs). When full, `overflow`
 *   decides: `drop-oldest` evicts the oldest waiting item, `drop-newest` refuses the new
 *   one, `block` keeps everything up to `blockLimit` and refuses past it. Each item let go
 *   is handed to `onDrop` with its reason and counted.
 *
 * Plain TypeScript (no Node-RED): the classify node gives it the work, and the library,
 * bench and CLI can use the same policy.
 */
import { performance } from 'node:perf_hooks';

export type OverflowPolicy = 'drop-oldest' | 'drop-newest' | 'block';
export const OVERFLOW_POLICIES: readonly OverflowPolicy[] = ['drop-oldest', 'drop-newest', 'block'];

/** `queueFull`: the limit was reached under drop-oldest / drop-newest; `safetyCap`: under block, `blockLimit` was reached. */
export type DropReason = 'queueFull' | 'safetyCap';

/** With `block`, at most this many times `limit` items are held before new ones are refused. */
export const BLOCK_SAFETY_FACTOR = 10;

export interface MicroBatchQueueOptions<T> {
  /** Most items per batch (at least 1). */
  maxBatch: number;
  /** Longest wait for a batch to fill while nothing runs, counted from the oldest waiting item's arrival. Default 0. */
  maxWaitMs?: number;
  /** Most items waiting (barriers aside). Default: unbounded. */
  limit?: number;
  /** What happens at the limit. Default `drop-oldest`. */
  overflow?: OverflowPolicy;
  /** With `block`: the hard cap on waiting items. Default BLOCK_SAFETY_FACTOR × limit. */
  blockLimit?: number;
  /** Items that must run alone and in order (commands between frames). */
  isBarrier?: (item: T) => boolean;
  /** Gets what `run` threw; `run` is expected to settle each item itself. */
  onError?: (error: unknown, batch: T[]) => void;
  /** Gets every item the queue lets go without running it. */
  onDrop?: (item: T, reason: DropReason) => void;
  /** Hold items until `resume()` (e.g. while a model loads). Default false. */
  startPaused?: boolean;
  /** Most batches running at once; more than one only for full batches (see the top of this file). Default 1. */
  maxRunning?: number;
}

export interface MicroBatchQueueStats {
  /** Items waiting now (barriers aside; not counting the batch that runs). */
  queued: number;
  /** Most items seen waiting at once. */
  maxQueued: number;
  /** Items let go, by reason. */
  dropped: Record<DropReason, number>;
  /** Batches of (non-barrier) items run so far. */
  batches: number;
}

interface Entry<T> {
  item: T;
  barrier: boolean;
  /** performance.now() at push. */
  at: number;
}

export class MicroBatchQueue<T> {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly limit: number;
  readonly overflow: OverflowPolicy;
  readonly blockLimit: number;
  readonly maxRunning: number;
  private readonly entries: Entry<T>[] = [];
  /** Non-barrier entries in `entries`. */
  private waiting = 0;
  private running = false;
  /** The pump is inside run() of a batch of frames (not a barrier, not a fill wait). */
  private runningFrames = false;
  /** Batches started beside the pump's (see maxRunning). */
  private extra = 0;
  private extraWaiters: (() => void)[] = [];
  private paused: boolean;
  private idleWaiters: (() => void)[] = [];
  /** Ends a fill wait early (the batch filled, a barrier came, pause, takeAll). */
  private wake: (() => void) | undefined;
  private readonly counters: MicroBatchQueueStats = { queued: 0, maxQueued: 0, dropped: { queueFull: 0, safetyCap: 0 }, batches: 0 };

  constructor(
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly options: MicroBatchQueueOptions<T>,
  ) {
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch));
    this.maxWaitMs = Math.max(0, options.maxWaitMs ?? 0);
    this.limit = Math.max(1, options.limit ?? Infinity);
    this.overflow = options.overflow ?? 'drop-oldest';
    this.blockLimit = Math.max(this.limit, options.blockLimit ?? this.limit * BLOCK_SAFETY_FACTOR);
    this.paused = options.startPaused ?? false;
    this.maxRunning = Math.max(1, Math.floor(options.maxRunning ?? 1));
  }

  /** Items waiting, barriers included (not counting the batch that runs). */
  get length(): number {
    return this.entries.length;
  }

  get stats(): MicroBatchQueueStats {
    return { ...this.counters, queued: this.waiting, dropped: { ...this.counters.dropped } };
  }

  /**
   * Queues an item. Returns false when the item itself was refused (drop-newest at the
   * limit, block at the cap; `onDrop` has it); under drop-oldest an older item may be
   * evicted (to `onDrop`) to make room.
   */
  push(item: T): boolean {
    const barrier = this.options.isBarrier?.(item) ?? false;
    if (!barrier) {
      if (this.overflow === 'block' ? this.waiting >= this.blockLimit : this.waiting >= this.limit) {
        if (this.overflow !== 'drop-oldest') {
          this.drop(item, this.overflow === 'block' ? 'safetyCap' : 'queueFull');
          return false;
        }
        const oldest = this.entries.findIndex((entry) => !entry.barrier);
        const [evicted] = this.entries.splice(oldest, 1);
        this.waiting--;
        this.drop(evicted.item, 'queueFull');
      }
      this.waiting++;
      this.counters.maxQueued = Math.max(this.counters.maxQueued, this.waiting);
    }
    this.entries.push({ item, barrier, at: performance.now() });
    if (this.wake && this.fillWaitMs() === 0) this.wake();
    void this.pump();
    this.startExtra();
    return true;
  }

  /** Holds items until `resume()`; a batch already running finishes. */
  pause(): void {
    this.paused = true;
    this.wake?.();
  }

  resume(): void {
    this.paused = false;
    void this.pump();
  }

  /** Removes and returns everything still waiting (not counted as dropped: the caller settles them). */
  takeAll(): T[] {
    const items = this.entries.splice(0, this.entries.length).map((entry) => entry.item);
    this.waiting = 0;
    this.wake?.();
    return items;
  }

  /** Resolves once no batch runs and none is being waited for (items may still wait if paused). */
  idle(): Promise<void> {
    if (!this.running && this.extra === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private drop(item: T, reason: DropReason): void {
    this.counters.dropped[reason]++;
    this.options.onDrop?.(item, reason);
  }

  /** Non-barrier entries at the head, up to maxBatch, and whether a barrier ends them. */
  private headRun(): { count: number; cut: boolean } {
    let count = 0;
    while (count < this.maxBatch && count < this.entries.length && !this.entries[count].barrier) count++;
    return { count, cut: count < this.entries.length };
  }

  /** How long to wait for more items before running the head batch: 0 = run now. */
  private fillWaitMs(): number {
    if (this.maxWaitMs <= 0 || this.entries.length === 0 || this.entries[0].barrier) return 0;
    const { count, cut } = this.headRun();
    if (count >= this.maxBatch || cut) return 0;
    return Math.max(0, this.entries[0].at + this.maxWaitMs - performance.now());
  }

  private waitForMore(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.(), Math.ceil(ms));
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private nextBatch(): T[] {
    if (this.entries[0].barrier) return [this.entries.shift()!.item];
    const { count } = this.headRun();
    this.waiting -= count;
    return this.entries.splice(0, count).map((entry) => entry.item);
  }

  private async pump(): Promise<void> {
    if (this.running || this.paused || this.entries.length === 0) return;
    this.running = true;
    try {
      while (!this.paused && this.entries.length > 0) {
        const barrier = this.entries[0].barrier;
        if (barrier && this.extra > 0) {
          // A barrier runs alone: after the batches started beside this one.
          await new Promise<void>((resolve) => this.extraWaiters.push(resolve));
          continue;
        }
        const wait = this.fillWaitMs();
        if (wait > 0) {
          await this.waitForMore(wait);
          continue; // look again: paused, emptied, filled, or the time is up
        }
        const batch = this.nextBatch();
        if (!barrier) this.counters.batches++;
        this.runningFrames = !barrier;
        try {
          const running = this.run(batch);
          this.startExtra();
          await running;
        } catch (err) {
          this.options.onError?.(err, batch);
        } finally {
          this.runningFrames = false;
        }
      }
    } finally {
      this.running = false;
      this.settleIdle();
    }
  }

  /** Starts full batches beside the pump's running one, up to maxRunning at once. */
  private startExtra(): void {
    while (
      this.runningFrames &&
      !this.paused &&
      this.extra + 1 < this.maxRunning &&
      this.entries.length > 0 &&
      !this.entries[0].barrier &&
      this.headRun().count >= this.maxBatch
    ) {
      const batch = this.nextBatch();
      this.counters.batches++;
      this.extra++;
      void (async () => {
        try {
          await this.run(batch);
        } catch (err) {
          this.options.onError?.(err, batch);
        } finally {
          this.extra--;
          const waiters = this.extraWaiters;
          this.extraWaiters = [];
          for (const resolve of waiters) resolve();
          this.startExtra();
          this.settleIdle();
        }
      })();
    }
  }

  private settleIdle(): void {
    if (this.running || this.extra > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
