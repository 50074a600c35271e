import { LaneVisionError } from '../errors.js';

/** Seeds are safe integers: anything else would round differently between callers. */
export function checkSeed(seed: unknown, what = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new LaneVisionError('SOURCE_BAD_SEED', `The ${what} must be a whole number, got ${String(seed)}`);
  }
  return seed;
}
