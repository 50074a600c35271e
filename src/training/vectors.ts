/** Small vector helpers shared by training and prediction (plain arithmetic, no tensors). */
import { LaneVisionError } from '../errors.js';

/**
 * Copy of `feature` scaled to unit length. A zero vector stays zero (it has no
 * direction); a non-finite value is an error, since it would poison every score.
 */
export function normaliseFeature(feature: Float32Array): Float32Array {
  let sumSquares = 0;
  for (let i = 0; i < feature.length; i++) sumSquares += feature[i] * feature[i];
  if (!Number.isFinite(sumSquares)) {
    throw new LaneVisionError('FEATURE_INVALID', 'Feature vector contains NaN or infinite values');
  }
  const out = new Float32Array(feature.length);
  if (sumSquares === 0) return out;
  const scale = 1 / Math.sqrt(sumSquares);
  for (let i = 0; i < feature.length; i++) out[i] = feature[i] * scale;
  return out;
}

/** Row-major [features.length][featureSize] copy, normalised per row if asked. */
export function stackFeatures(features: readonly Float32Array[], normalise: boolean): Float32Array {
  const featureSize = features.length > 0 ? features[0].length : 0;
  const out = new Float32Array(features.length * featureSize);
  features.forEach((feature, row) => out.set(normalise ? normaliseFeature(feature) : feature, row * featureSize));
  return out;
}

/** Turns scores into probabilities in place: softmax(scores / temperature). */
export function softmaxInPlace(scores: Float32Array | Float64Array, temperature = 1): void {
  let max = -Infinity;
  for (let i = 0; i < scores.length; i++) if (scores[i] > max) max = scores[i];
  let sum = 0;
  for (let i = 0; i < scores.length; i++) {
    scores[i] = Math.exp((scores[i] - max) / temperature);
    sum += scores[i];
  }
  for (let i = 0; i < scores.length; i++) scores[i] /= sum;
}

/** Index of the largest value (the first one on ties). */
export function argMax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Indices of the `k` largest values, largest first, leaving out index `skip`. */
export function selectTop(values: ArrayLike<number>, k: number, skip = -1): Int32Array {
  const size = Math.min(k, values.length - (skip >= 0 && skip < values.length ? 1 : 0));
  const top = new Int32Array(Math.max(0, size));
  let filled = 0;
  // Insertion into a short sorted list: k is small, so this beats sorting everything.
  for (let i = 0; i < values.length; i++) {
    if (i === skip) continue;
    const value = values[i];
    if (filled === size && value <= values[top[size - 1]]) continue;
    let slot = filled < size ? filled++ : size - 1;
    while (slot > 0 && values[top[slot - 1]] < value) {
      top[slot] = top[slot - 1];
      slot--;
    }
    top[slot] = i;
  }
  return top;
}
