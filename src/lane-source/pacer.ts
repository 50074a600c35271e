/**
 * Paces a loop at N frames per second. Ticks are due on a fixed grid (start + k * period),
 * so timer lateness does not add up; a consumer that falls behind skips the missed ticks
 * instead of bursting to catch up.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LaneVisionError } from '../errors.js';

export const MAX_FPS = 1000;

export interface Pacer {
  readonly fps: number;
  readonly periodMs: number;
  /** Waits for the next tick (the first is immediate): true, or false once stopped. */
  tick(): Promise<boolean>;
  /** Ends pacing; a pending `tick()` resolves false at once. */
  stop(): void;
  readonly stopped: boolean;
}

export function createPacer(fps: number, options: { signal?: AbortSignal } = {}): Pacer {
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0 || fps > MAX_FPS) {
    throw new LaneVisionError('SOURCE_BAD_RATE', `Frame rate must be a number above 0 and at most ${MAX_FPS} per second, got ${String(fps)}`);
  }
  const periodMs = 1000 / fps;
  const stopper = new AbortController();
  const signal = options.signal ? AbortSignal.any([stopper.signal, options.signal]) : stopper.signal;
  let start: number | undefined;
  let ticks = 0;

  return {
    fps,
    periodMs,
    get stopped() {
      return signal.aborted;
    },
    stop() {
      stopper.abort();
    },
    async tick() {
      if (signal.aborted) return false;
      const now = performance.now();
      if (start === undefined) {
        start = now;
        return true;
      }
      ticks++;
      if (start + ticks * periodMs < now - periodMs) ticks = Math.ceil((now - start) / periodMs);
      const due = start + ticks * periodMs;
      // Timers count from the event loop's cached clock and may fire a little early: wait again.
      for (let wait = due - now; wait > 0; wait = due - performance.now()) {
        try {
          await sleep(Math.ceil(wait), undefined, { signal });
        } catch {
          return false; // stopped while waiting
        }
      }
      return !signal.aborted;
    },
  };
}
