/**
 * Seeded randomness for training and evaluation: the same seed gives the same
 * initial weights and the same splits on every machine. Written by hand because
 * Math.random cannot be seeded and tfjs's seeded ops would tie reproducibility
 * to one tfjs version and backend.
 */

/** A uniform generator in [0, 1). */
export type RandomSource = () => number;

/** mulberry32: tiny, fast, good enough statistically for shuffles and weight init. */
export function createRandom(seed: number): RandomSource {
  let state = Math.trunc(Number.isFinite(seed) ? seed : 0) >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

/** A standard normal sample (Box–Muller). */
export function randomNormal(random: RandomSource): number {
  const u = 1 - random(); // (0, 1]: log(0) would be -Infinity
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
