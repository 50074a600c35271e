/**
 * How far a frame is from everything the model was shown: the cosine similarity of its
 * features to the nearest training frame's. A softmax spreads all its probability over
 * the labels it knows, so a product never seen still gets a confident label; its
 * features, though, sit far from every training frame (measured on the grocery photos:
 * fruit and vegetables median 0.40 against 0.80 for known packs).
 *
 * The index keeps every training frame's unit vector quantised to one byte per feature
 * (scaled by its largest value; features after ReLU are >= 0, so nothing is lost to a
 * sign): a quarter of float32, and the cosine stays within about 0.005 of the exact one.
 */
import { tensorValues, tf } from '../engine/backend.js';
import { LaneVisionError } from '../errors.js';
import { normaliseFeature, stackFeatures } from '../training/vectors.js';

export interface NoveltyIndex {
  featureSize: number;
  count: number;
  /** Row-major [count][featureSize], each row's unit vector divided by its largest magnitude, times 127 (signed). */
  codes: Int8Array;
  /** Per row: the factor that turns its codes back into the unit vector's values. */
  scales: Float32Array;
}

const LEVELS = 127;

export function buildNoveltyIndex(features: readonly Float32Array[]): NoveltyIndex {
  if (features.length === 0) throw new LaneVisionError('NOVELTY_INDEX_INVALID', 'A novelty index needs at least one training frame.');
  const featureSize = features[0].length;
  const codes = new Int8Array(features.length * featureSize);
  const scales = new Float32Array(features.length);
  features.forEach((feature, row) => {
    if (feature.length !== featureSize) throw new LaneVisionError('NOVELTY_INDEX_INVALID', `Frame ${row} has ${feature.length} features, expected ${featureSize}.`);
    const unit = normaliseFeature(feature);
    let largest = 0;
    for (const v of unit) largest = Math.max(largest, Math.abs(v));
    const scale = largest > 0 ? largest / LEVELS : 0;
    scales[row] = scale;
    if (scale === 0) return;
    for (let i = 0; i < featureSize; i++) codes[row * featureSize + i] = Math.round(unit[i] / scale);
  });
  return { featureSize, count: features.length, codes, scales };
}

/** Cosine similarity of `feature` to its nearest indexed frame (1: the same direction). */
export function nearestSimilarity(index: NoveltyIndex, feature: Float32Array): number {
  if (feature.length !== index.featureSize) {
    throw new LaneVisionError('FEATURE_SIZE_MISMATCH', `The novelty index holds ${index.featureSize} features per frame, this frame has ${feature.length}.`);
  }
  const unit = normaliseFeature(feature);
  return bestDot(index, unit);
}

/** The largest dot product of `unit` with a row: a tight loop, the one part of this on the per-frame path. */
function bestDot(index: NoveltyIndex, unit: Float32Array): number {
  const { codes, scales, featureSize, count } = index;
  let best = -Infinity;
  for (let row = 0; row < count; row++) {
    const base = row * featureSize;
    let dot = 0;
    for (let i = 0; i < featureSize; i++) dot += unit[i] * codes[base + i];
    dot *= scales[row];
    if (dot > best) best = dot;
  }
  return best;
}

/** Bytes as stored in a model version: the scales (float32, little-endian), then the codes. */
export function serialiseNoveltyIndex(index: NoveltyIndex): Buffer {
  const out = Buffer.alloc(index.count * 4 + index.codes.length);
  index.scales.forEach((scale, i) => out.writeFloatLE(scale, i * 4));
  Buffer.from(index.codes.buffer, index.codes.byteOffset, index.codes.byteLength).copy(out, index.count * 4);
  return out;
}

/** The index back from its bytes; NOVELTY_INDEX_INVALID when they do not fit the shape. */
export function deserialiseNoveltyIndex(bytes: Uint8Array, shape: { count: number; featureSize: number }): NoveltyIndex {
  const { count, featureSize } = shape;
  if (!Number.isSafeInteger(count) || count < 1 || !Number.isSafeInteger(featureSize) || featureSize < 1 || bytes.byteLength !== count * (4 + featureSize)) {
    throw new LaneVisionError('NOVELTY_INDEX_INVALID', `The novelty index has ${bytes.byteLength} bytes, which does not fit ${count} frames of ${featureSize} features.`);
  }
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scales = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    scales[i] = buffer.readFloatLE(i * 4);
    if (!Number.isFinite(scales[i]) || scales[i] < 0) throw new LaneVisionError('NOVELTY_INDEX_INVALID', `The novelty index has a bad scale for frame ${i}.`);
  }
  const codes = new Int8Array(count * featureSize);
  codes.set(new Int8Array(buffer.buffer, buffer.byteOffset + count * 4, count * featureSize));
  return { featureSize, count, codes, scales };
}

/**
 * Each frame's similarity to the nearest frame a head scoring it trained on: with `fold`,
 * to the frames of the other folds (its near-duplicates share its fold, so this is how a
 * frame of a new capture compares); with `against`, to those frames. The product runs as
 * blocks of tensors (one matMul instead of millions of multiply-adds in JS).
 */
export function heldOutSimilarities(features: readonly Float32Array[], options: { fold: Int32Array } | { against: readonly Float32Array[] }): number[] {
  const references = 'against' in options ? options.against : features;
  const count = references.length;
  const featureSize = features[0]?.length ?? 0;
  const out = new Array<number>(features.length).fill(-1);
  if (count === 0 || features.length === 0) return out;
  const all = tf.tensor2d(stackFeatures(references, true), [count, featureSize]);
  const allTransposed = tf.transpose(all);
  try {
    const queries = stackFeatures(features, true);
    const rows = Math.max(1, Math.floor(BLOCK_CELLS / count));
    for (let start = 0; start < features.length; start += rows) {
      const end = Math.min(features.length, start + rows);
      const block = tensorValues(() => tf.matMul(tf.tensor2d(queries.subarray(start * featureSize, end * featureSize), [end - start, featureSize]), allTransposed));
      for (let i = start; i < end; i++) {
        const row = block.subarray((i - start) * count, (i - start + 1) * count);
        let best = -1;
        for (let j = 0; j < count; j++) {
          if ('fold' in options && options.fold[j] === options.fold[i]) continue;
          if (row[j] > best) best = row[j];
        }
        out[i] = best;
      }
    }
  } finally {
    tf.dispose([all, allTransposed]);
  }
  return out;
}

const BLOCK_CELLS = 4_000_000;
