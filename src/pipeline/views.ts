/**
 * The extra views of a frame: augmentation views added to training, test-time views
 * averaged at classification. Both are fixed lists (seeded, not drawn per run), so a
 * view's features are cached under the same key every time and a warm retrain re-uses
 * them. No mirror images: packaging text is not mirror-symmetric, so a flipped pack is
 * another product.
 */
import type { ViewTransform } from '../image/types.js';
import { createRandom, mixSeed } from '../random.js';

/** How far augmentation goes, measured on photos of packs held in front of shelves: the tilt a hand gives, a step closer or back, a shift of the framing, shop lighting. */
const AUGMENTATION = { scale: [0.85, 1.15], shift: 0.06, angle: 25, brightness: [0.85, 1.15] } as const;
export const MAX_VIEWS = 16;

/** `count` augmentation views (the same list for the same count and seed). */
export function augmentationViews(count: number, seed = 1): ViewTransform[] {
  return Array.from({ length: count }, (_, index) => {
    const random = createRandom(mixSeed(seed, index));
    const draw = ([low, high]: readonly [number, number]) => round(low + (high - low) * random());
    return {
      scale: draw(AUGMENTATION.scale),
      dx: draw([-AUGMENTATION.shift, AUGMENTATION.shift]),
      dy: draw([-AUGMENTATION.shift, AUGMENTATION.shift]),
      angle: draw([-AUGMENTATION.angle, AUGMENTATION.angle]),
      brightness: draw(AUGMENTATION.brightness),
    };
  });
}

/** Test-time views besides the plain frame: a closer and a wider look, then small shifts (as measured, no rotation: it costs a second pass). */
const TEST_VIEWS: readonly ViewTransform[] = [
  { scale: 0.9 },
  { scale: 1.1 },
  { dx: 0.05 },
  { dx: -0.05 },
  { dy: 0.05 },
  { dy: -0.05 },
  { scale: 0.9, dx: 0.05 },
  { scale: 0.9, dx: -0.05 },
];
export const MAX_TEST_VIEWS = TEST_VIEWS.length;

/** The first `count` test-time views (the plain frame is always used besides them). */
export function testTimeViews(count: number): ViewTransform[] {
  return TEST_VIEWS.slice(0, Math.max(0, Math.min(count, TEST_VIEWS.length)));
}

/** Three decimals: short cache keys, and the same view on every machine. */
function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
