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

/** Where a pacer reads the time and waits; tests pass a fake one so they never depend on a loaded machine's timers. */
export interface PacerClock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

const realClock: PacerClock = {
  now: () => performance.now(),
  sleep: (ms, signal) => sleep(ms, undefined, { signal }),
};

export function createPacer(fps: number, options: { signal?: AbortSignal; clock?: PacerClock } = {}): Pacer {
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0 || fps > MAX_FPS) {
    throw new LaneVisionError('SOURCE_BAD_RATE', `Frame rate must be a number above 0 and at most ${MAX_FPS} per second, got ${String(fps)}`);
  }
  const periodMs = 1000 / fps;
  const stopper = new AbortController();
  const signal = options.signal ? AbortSignal.any([stopper.signal, options.signal]) : stopper.signal;
  const clock = options.clock ?? realClock;
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
      const now = clock.now();
      if (start === undefined) {
        start = now;
        return true;
      }
      ticks++;
      if (start + ticks * periodMs < now - periodMs) ticks = Math.ceil((now - start) / periodMs);
      const due = start + ticks * periodMs;
      // Timers count from the event loop's cached clock and may fire a little early: wait again.
      for (let wait = due - now; wait > 0; wait = due - clock.now()) {
        try {
          await clock.sleep(Math.ceil(wait), signal);
        } catch {
          return false; // stopped while waiting
        }
      }
      return !signal.aborted;
    },
  };
}
