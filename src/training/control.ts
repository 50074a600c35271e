/**
 * Progress throttling, cancellation and event-loop breathing room for the training
 * loops, so each loop only says "an epoch passed".
 */
import { LaneVisionError } from '../errors.js';
import type { TrainHeadCallbacks, TrainingProgress } from './types.js';

const DEFAULT_PROGRESS_INTERVAL_MS = 100;
/** Longest stretch of synchronous tensor work before timers, I/O and aborts get a turn. */
const YIELD_EVERY_MS = 20;

export class TrainingControl {
  private readonly onProgress?: (progress: TrainingProgress) => void;
  private readonly progressIntervalMs: number;
  private readonly signal?: AbortSignal;
  private lastProgressAt = -Infinity;
  private lastYieldAt = performance.now();

  constructor(callbacks: TrainHeadCallbacks = {}) {
    this.onProgress = callbacks.onProgress;
    const interval = callbacks.progressIntervalMs;
    this.progressIntervalMs =
      typeof interval === 'number' && Number.isFinite(interval) && interval >= 0 ? interval : DEFAULT_PROGRESS_INTERVAL_MS;
    this.signal = callbacks.signal;
  }

  /** Throws TRAINING_CANCELLED once the signal has fired. */
  checkCancelled(): void {
    if (this.signal?.aborted) {
      throw new LaneVisionError('TRAINING_CANCELLED', 'Training was cancelled before it finished', {
        cause: this.signal.reason,
      });
    }
  }

  /** Whether this epoch's loss and accuracy should be read back (reading costs a sync). */
  progressDue(epoch: number, epochs: number): boolean {
    if (!this.onProgress) return false;
    return epoch === 1 || epoch === epochs || performance.now() - this.lastProgressAt >= this.progressIntervalMs;
  }

  emitProgress(progress: TrainingProgress): void {
    this.lastProgressAt = performance.now();
    this.onProgress?.(progress);
  }

  /** Lets the event loop run if the last chance was long enough ago, then checks for cancellation. */
  async breathe(): Promise<void> {
    if (performance.now() - this.lastYieldAt >= YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.lastYieldAt = performance.now();
    }
    this.checkCancelled();
  }
}
