/**
 * Heads that need no optimiser: nearest class mean (prototype) and k nearest
 * neighbours, both by cosine similarity of unit-length features. The similarity
 * products run as tensors (one matmul instead of millions of JS multiply-adds); the
 * heads they produce predict in plain JS.
 */
import { tensorValues, tf } from '../engine/backend.js';
import type { TrainingControl } from './control.js';
import { neighbourVotes } from './predict.js';
import type { TrainedHead } from './types.js';
import { argMax, selectTop } from './vectors.js';

export interface SimilarityTrainingInput {
  /** Row-major [count][featureSize], already normalised. */
  features: Float32Array;
  labels: Int32Array;
  featureSize: number;
  classCount: number;
  /** Per-example loss weight, summing to 1 (only used for the reported loss and the temperature fit). */
  exampleWeights: Float32Array;
}

export interface SimilarityOutcome {
  head: TrainedHead;
  finalLoss: number;
  trainAccuracy: number;
}

/** Used when no example can be left out (every class has one example). */
const FALLBACK_PROTOTYPE_TEMPERATURE = 0.05;
/** Floor for a probability inside a logarithm: knn gives exact zeros. */
const PROBABILITY_FLOOR = 1e-6;

export function trainPrototypeHead(input: SimilarityTrainingInput, temperature: number | undefined): SimilarityOutcome {
  const { features, labels, featureSize, classCount, exampleWeights } = input;
  const count = labels.length;
  const sums = new Float32Array(classCount * featureSize);
  const classSizes = new Int32Array(classCount);
  for (let e = 0; e < count; e++) {
    const row = labels[e] * featureSize;
    classSizes[labels[e]]++;
    for (let i = 0; i < featureSize; i++) sums[row + i] += features[e * featureSize + i];
  }
  const sumNormSquared = new Float64Array(classCount);
  for (let c = 0; c < classCount; c++) {
    for (let i = 0; i < featureSize; i++) sumNormSquared[c] += sums[c * featureSize + i] ** 2;
  }
  const exampleNormSquared = new Float64Array(count);
  for (let e = 0; e < count; e++) {
    for (let i = 0; i < featureSize; i++) exampleNormSquared[e] += features[e * featureSize + i] ** 2;
  }
  // dot(example, class sum) for every pair: [count][classCount]. The sums go in
  // transposed: wasm's matMul with a transposed operand is ~10x slower than a plain one.
  const sumsTransposed = new Float32Array(featureSize * classCount);
  for (let c = 0; c < classCount; c++) {
    for (let i = 0; i < featureSize; i++) sumsTransposed[i * classCount + c] = sums[c * featureSize + i];
  }
  const dots = tensorValues(() => tf.matMul(tf.tensor2d(features, [count, featureSize]), tf.tensor2d(sumsTransposed, [featureSize, classCount])));

  const prototypes = new Float32Array(classCount * featureSize);
  for (let c = 0; c < classCount; c++) {
    const scale = sumNormSquared[c] > 0 ? 1 / Math.sqrt(sumNormSquared[c]) : 0;
    for (let i = 0; i < featureSize; i++) prototypes[c * featureSize + i] = sums[c * featureSize + i] * scale;
  }
  const cosine = (e: number, c: number, leaveOut: boolean): number => {
    const dot = dots[e * classCount + c];
    if (leaveOut && labels[e] === c) {
      // The example's own class mean without it: sum - x, so dot - |x|^2 over |sum - x|.
      const normSquared = sumNormSquared[c] - 2 * dot + exampleNormSquared[e];
      return normSquared > 1e-12 ? (dot - exampleNormSquared[e]) / Math.sqrt(normSquared) : 0;
    }
    return sumNormSquared[c] > 0 ? dot / Math.sqrt(sumNormSquared[c]) : 0;
  };
  const similarityRows = (leaveOut: boolean, include: (e: number) => boolean) => {
    const rows: { scores: Float64Array; label: number; weight: number }[] = [];
    for (let e = 0; e < count; e++) {
      if (!include(e)) continue;
      const scores = new Float64Array(classCount);
      for (let c = 0; c < classCount; c++) scores[c] = cosine(e, c, leaveOut);
      rows.push({ scores, label: labels[e], weight: exampleWeights[e] });
    }
    return rows;
  };

  // Fit the temperature on leave-one-out similarities: on its own class mean every
  // example looks closer than a new frame would, which would make the head overconfident.
  let fitted = temperature;
  if (fitted === undefined) {
    const heldOut = similarityRows(true, (e) => classSizes[labels[e]] > 1);
    fitted = heldOut.length > 0 ? 1 / fitSharpness(heldOut) : FALLBACK_PROTOTYPE_TEMPERATURE;
  }
  const own = similarityRows(false, () => true);
  const head: TrainedHead = {
    kind: 'prototype',
    featureSize,
    classCount,
    normalise: true,
    prototypes,
    temperature: fitted,
  };
  return { head, finalLoss: crossEntropy(own, 1 / fitted), trainAccuracy: accuracy(own) };
}

export async function trainNearestNeighbourHead(
  input: SimilarityTrainingInput,
  k: number,
  temperature: number,
  control: TrainingControl,
): Promise<SimilarityOutcome> {
  const { features, labels, featureSize, classCount, exampleWeights } = input;
  const count = labels.length;
  const head: TrainedHead = {
    kind: 'knn',
    featureSize,
    classCount,
    normalise: true,
    examples: { features, labels, k },
    temperature,
  };
  // Leave-one-out scores: every stored example would otherwise find itself first.
  // Rows go in chunks so the similarity block stays a few MB however many examples.
  const chunkRows = Math.max(1, Math.floor(4_000_000 / count));
  let loss = 0;
  let correct = 0;
  const all = tf.tensor2d(features, [count, featureSize]);
  const allTransposed = tf.transpose(all); // see trainPrototypeHead: plain matMul is the fast one
  try {
    for (let start = 0; start < count; start += chunkRows) {
      const end = Math.min(count, start + chunkRows);
      const block = tensorValues(() => tf.matMul(tf.slice(all, [start, 0], [end - start, featureSize]), allTransposed));
      for (let e = start; e < end; e++) {
        const row = block.subarray((e - start) * count, (e - start + 1) * count);
        const nearest = selectTop(row, k, e);
        const probabilities = neighbourVotes(row, nearest, labels, classCount, temperature);
        loss -= exampleWeights[e] * Math.log(Math.max(probabilities[labels[e]], PROBABILITY_FLOOR));
        if (argMax(probabilities) === labels[e]) correct++;
      }
      await control.breathe();
    }
  } finally {
    tf.dispose([all, allTransposed]);
  }
  return { head, finalLoss: loss, trainAccuracy: count > 0 ? correct / count : 0 };
}

type ScoredRow = { scores: Float64Array; label: number; weight: number };

/** Weighted mean of -log softmax(sharpness * scores)[label]. */
function crossEntropy(rows: readonly ScoredRow[], sharpness: number): number {
  let total = 0;
  let weight = 0;
  for (const { scores, label, weight: w } of rows) {
    let max = -Infinity;
    for (const s of scores) max = Math.max(max, sharpness * s);
    let sum = 0;
    for (const s of scores) sum += Math.exp(sharpness * s - max);
    total += w * (max + Math.log(sum) - sharpness * scores[label]);
    weight += w;
  }
  return weight > 0 ? total / weight : 0;
}

function accuracy(rows: readonly ScoredRow[]): number {
  let correct = 0;
  for (const { scores, label } of rows) if (argMax(scores) === label) correct++;
  return rows.length > 0 ? correct / rows.length : 0;
}

/**
 * The sharpness (1 / temperature) minimising the cross-entropy. It is convex in the
 * sharpness (log-sum-exp of a linear function), so a golden-section search finds it.
 */
function fitSharpness(rows: readonly ScoredRow[]): number {
  const goldenRatio = (Math.sqrt(5) - 1) / 2;
  let low = 0.5;
  let high = 2000;
  let a = high - goldenRatio * (high - low);
  let b = low + goldenRatio * (high - low);
  let lossA = crossEntropy(rows, a);
  let lossB = crossEntropy(rows, b);
  for (let i = 0; i < 60 && high - low > 1e-3 * low; i++) {
    if (lossA < lossB) {
      high = b;
      b = a;
      lossB = lossA;
      a = high - goldenRatio * (high - low);
      lossA = crossEntropy(rows, a);
    } else {
      low = a;
      a = b;
      lossA = lossB;
      b = low + goldenRatio * (high - low);
      lossB = crossEntropy(rows, b);
    }
  }
  return (low + high) / 2;
}
