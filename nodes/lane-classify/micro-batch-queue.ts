/**
 * Serial work queue with micro-batching: one batch runs at a time, in arrival order; items
 * that arrive while a batch runs are taken together (up to `maxBatch`) into the next one,
 * so a busy lane pays one backbone call for several frames and a quiet lane waits for
 * nothing. A barrier item (a command) always runs alone, after everything before it and
 * before everything after it. No Node-RED import: the classify node gives it the work.
 */
export interface MicroBatchQueueOptions<T> {
  /** Most items per batch (at least 1). */
  maxBatch: number;
  /** Items that must run alone and in order (commands between frames). */
  isBarrier?: (item: T) => boolean;
  /** Gets what `run` threw; `run` is expected to settle each item itself. */
  onError?: (error: unknown, batch: T[]) => void;
}

export class MicroBatchQueue<T> {
  private readonly items: T[] = [];
  private running = false;
  private paused: boolean;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;

  constructor(
    private readonly run: (batch: T[]) => Promise<void>,
    private readonly options: MicroBatchQueueOptions<T>,
    startPaused = false,
  ) {
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch));
    this.paused = startPaused;
  }

  /** Items waiting (not counting the batch that runs). */
  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    void this.pump();
  }

  /** Holds items until `resume()` (while the model loads). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    void this.pump();
  }

  /** Removes and returns everything still waiting. */
  takeAll(): T[] {
    return this.items.splice(0, this.items.length);
  }

  /** Resolves once no batch runs (items may still wait if paused). */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private nextBatch(): T[] {
    const isBarrier = this.options.isBarrier ?? (() => false);
    if (isBarrier(this.items[0])) return this.items.splice(0, 1);
    let count = 1;
    while (count < this.maxBatch && count < this.items.length && !isBarrier(this.items[count])) count++;
    return this.items.splice(0, count);
  }

  private async pump(): Promise<void> {
    if (this.running || this.paused || this.items.length === 0) return;
    this.running = true;
    try {
      while (!this.paused && this.items.length > 0) {
        const batch = this.nextBatch();
        try {
          await this.run(batch);
        } catch (err) {
          this.options.onError?.(err, batch);
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }
}
