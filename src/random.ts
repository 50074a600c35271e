/**
 * Seeded randomness, one generator for the whole library: the same seed gives the same
 * initial weights, splits, synthetic frames and replay order on every machine. Written by
 * hand because it is a dozen lines: Math.random cannot be seeded, and tfjs's seeded ops
 * would tie reproducibility to one tfjs version and backend.
 */

/** A uniform generator in [0, 1). */
export type RandomSource = () => number;

/** mulberry32: tiny, fast, good enough statistically for shuffles, weight init, poses and noise. */
export function createRandom(seed: number): RandomSource {
  // `>>> 0` maps NaN and ±Infinity to 0 and truncates, so any number is a usable seed.
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

/** A uniform sample in [low, high). */
export function between(random: RandomSource, low: number, high: number): number {
  return low + (high - low) * random();
}

/** Fisher–Yates: shuffles `items` in place and returns it. */
export function shuffleInPlace<T>(items: T[], random: RandomSource): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = items[i];
    items[i] = items[j];
    items[j] = swap;
  }
  return items;
}

/** A shuffled copy, in the same order `shuffleInPlace` gives for the same generator state. */
export function shuffled<T>(items: readonly T[], random: RandomSource): T[] {
  return shuffleInPlace(items.slice(), random);
}

/** A standard normal sample (Box–Muller). */
export function randomNormal(random: RandomSource): number {
  const u = 1 - random(); // (0, 1]: log(0) would be -Infinity
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
