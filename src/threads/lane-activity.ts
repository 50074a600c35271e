/**
 * How many lane frames are being decoded and embedded right now, readable from every
 * thread (one Int32 in a SharedArrayBuffer), so background work (a training) can step
 * aside for the lane between its own frames instead of competing with it for two cores.
 * Written by hand: it is a counter and a wait, which Atomics gives directly.
 */
/** Atomics.waitAsync (Node >= 16; typed from lib es2024 on, this project builds with es2022). */
const waitAsync = (Atomics as unknown as {
  waitAsync(array: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

export class LaneActivity {
  private readonly count: Int32Array;

  /** A new counter, or a view of one made in another thread (its `buffer`). */
  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT)) {
    this.count = new Int32Array(buffer, 0, 1);
  }

  get framesInFlight(): number {
    return Atomics.load(this.count, 0);
  }

  /** Runs `work` counted as lane frames in flight. */
  async during<T>(frames: number, work: () => Promise<T>): Promise<T> {
    Atomics.add(this.count, 0, frames);
    try {
      return await work();
    } finally {
      Atomics.sub(this.count, 0, frames);
      Atomics.notify(this.count, 0);
    }
  }

  /**
   * Resolves when no lane frame is in flight, or after `maxWaitMs` at the latest: a lane
   * that never pauses (saturation) slows background work down without stopping it.
   * Returns the ms waited.
   */
  async idle(maxWaitMs: number): Promise<number> {
    const started = performance.now();
    for (;;) {
      const inFlight = Atomics.load(this.count, 0);
      const left = maxWaitMs - (performance.now() - started);
      if (inFlight <= 0 || left <= 0) return performance.now() - started;
      const wait = waitAsync(this.count, 0, inFlight, left);
      if (!wait.async) continue;
      // A pending waitAsync does not keep Node's event loop alive; this timer does, and bounds the wait.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([wait.value, new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
  }
}
