/**
 * Two bounded stages for frames: the first (decode, on sharp's thread pool) works on the
 * next item while the second (the backbone) runs the current one, so a saturated lane keeps
 * a core decoding while another runs the model, instead of taking turns.
 *
 * - The second stage runs one item at a time, in push order; every item settles in push order.
 * - At most `ahead` items are in the first stage or done with it and waiting for the second:
 *   the memory held by decoded frames is bounded, and pushes beyond wait their turn.
 * - An item whose first stage fails is rejected in its turn, and the items after it go on.
 */
export interface TwoStagePipelineOptions {
  /** Items decoding or decoded ahead of the second stage (at least 1). Default 1. */
  ahead?: number;
}

export interface TwoStagePipelineStats {
  /** Most items seen in the first stage or waiting after it at once (never above `ahead`). */
  maxAhead: number;
  /** Times the first stage started an item while the second stage was running one: the overlap. */
  overlapped: number;
}

interface Pending<I, R> {
  item: I;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

type Outcome<D> = { ok: true; value: D } | { ok: false; error: unknown };

export class TwoStagePipeline<I, D, R> {
  readonly ahead: number;
  /** Pushed, first stage not started. */
  private readonly waiting: Pending<I, R>[] = [];
  /** First stage started (running or done), in push order, not yet taken by the second. */
  private readonly started: (Pending<I, R> & { outcome: Promise<Outcome<D>> })[] = [];
  private secondRunning = false;
  private inSecond = false;
  private readonly counters: TwoStagePipelineStats = { maxAhead: 0, overlapped: 0 };

  constructor(
    private readonly first: (item: I) => Promise<D>,
    private readonly second: (decoded: D) => Promise<R>,
    options: TwoStagePipelineOptions = {},
  ) {
    const ahead = options.ahead ?? 1;
    if (!Number.isSafeInteger(ahead) || ahead < 1) throw new RangeError(`ahead must be a whole number >= 1, got ${String(ahead)}`);
    this.ahead = ahead;
  }

  get stats(): TwoStagePipelineStats {
    return { ...this.counters };
  }

  /** Items pushed and not yet settled. */
  get pending(): number {
    return this.waiting.length + this.started.length + (this.inSecond ? 1 : 0);
  }

  push(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.startFirst();
    });
  }

  private startFirst(): void {
    while (this.waiting.length > 0 && this.started.length < this.ahead) {
      const pending = this.waiting.shift()!;
      if (this.inSecond) this.counters.overlapped++;
      let outcome: Promise<Outcome<D>>;
      try {
        outcome = this.first(pending.item).then(
          (value): Outcome<D> => ({ ok: true, value }),
          (error: unknown): Outcome<D> => ({ ok: false, error }),
        );
      } catch (error) {
        outcome = Promise.resolve({ ok: false, error });
      }
      this.started.push({ ...pending, outcome });
      this.counters.maxAhead = Math.max(this.counters.maxAhead, this.started.length);
    }
    if (!this.secondRunning && this.started.length > 0) void this.runSecond();
  }

  private async runSecond(): Promise<void> {
    this.secondRunning = true;
    try {
      while (this.started.length > 0) {
        const head = this.started[0];
        const outcome = await head.outcome;
        this.started.shift();
        this.inSecond = outcome.ok;
        // A slot is free: the next item starts its first stage before this one's second, which is the overlap.
        this.startFirst();
        if (!outcome.ok) {
          head.reject(outcome.error);
          continue;
        }
        try {
          head.resolve(await this.second(outcome.value));
        } catch (error) {
          head.reject(error);
        } finally {
          this.inSecond = false;
        }
      }
    } finally {
      this.secondRunning = false;
    }
  }
}
