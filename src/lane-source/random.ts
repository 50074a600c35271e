/**
 * Seeded randomness for frame sources. Written by hand because it is a dozen lines and
 * the frames must be byte-identical for a seed on every machine: Math.random cannot be
 * seeded, and a dependency would buy nothing here.
 */
import { LaneVisionError } from '../errors.js';

/** Uniform numbers in [0, 1), reproducible from the seed. */
export type Random = () => number;

/** Mulberry32: small, fast, and good enough for picking poses and noise. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Mixes several integers into one 32-bit seed, so (lane seed, frame index) pairs give
 * unrelated streams instead of neighbouring ones.
 */
export function mixSeed(...parts: number[]): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    const low = part >>> 0;
    const high = Math.floor(part / 4294967296) >>> 0;
    for (const word of [low, high]) {
      hash = Math.imul(hash ^ word, 0x01000193);
      hash ^= hash >>> 15;
      hash = Math.imul(hash, 0x2c1b3c6d);
      hash ^= hash >>> 12;
    }
  }
  return hash >>> 0;
}

/** Seeds are safe integers: anything else would round differently between callers. */
export function checkSeed(seed: unknown, what = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new LaneVisionError('SOURCE_BAD_SEED', `The ${what} must be a whole number, got ${String(seed)}`);
  }
  return seed;
}

export function between(random: Random, low: number, high: number): number {
  return low + (high - low) * random();
}

/** A new array in Fisher-Yates order. */
export function shuffled<T>(items: readonly T[], random: Random): T[] {
  const result = items.slice();
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [result[i], result[j]] = [result[j], result[i]];
  }
  return result;
}
