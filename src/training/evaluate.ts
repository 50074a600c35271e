/**
 * How good is a head, measured only on examples it did not train on: seeded
 * stratified splits, per-class metrics with a confusion matrix, and the confidence
 * threshold that buys a wanted precision by rejecting doubtful frames.
 * Written by hand: these few formulas are not worth a dependency.
 */
import { LaneVisionError } from '../errors.js';
import { predictHeadBatch } from './predict.js';
import { createRandom, shuffleInPlace } from '../random.js';
import { trainHead } from './train.js';
import type { TrainedHead, TrainHeadParams, TrainingData } from './types.js';
import { argMax } from './vectors.js';

export interface SplitIndices {
  /** Indices into the examples, ascending. */
  train: number[];
  test: number[];
}

export interface ClassMetrics {
  label: string;
  /** Of the frames predicted as this class, the share that are (0 if none were). */
  precision: number;
  /** Of the frames of this class, the share predicted as it (0 if there were none). */
  recall: number;
  f1: number;
  /** Frames of this class in the evaluated set. */
  support: number;
}

export interface HeadMetrics {
  accuracy: number;
  /** Mean F1 over the classes present in the evaluated set. */
  macroF1: number;
  perClass: ClassMetrics[];
  /** confusion[true class][predicted class] = frame count. */
  confusion: number[][];
  count: number;
}

export interface PrecisionThreshold {
  targetPrecision: number;
  /** False when even the most confident frames alone miss the target. */
  reached: boolean;
  /**
   * Accept a frame when its top probability is >= threshold, reject it otherwise.
   * 0 when every frame can be accepted; null when the target cannot be reached.
   */
  threshold: number | null;
  /** Share of frames the threshold rejects (0..1). */
  rejectedShare: number;
  acceptedCount: number;
  count: number;
  /** Share of accepted frames whose top class is right (their accuracy); null if none are accepted. */
  precision: number | null;
}

/**
 * Hold-out split keeping each class's proportion: every class with 2 or more examples
 * has at least one in each part.
 */
export function stratifiedSplit(
  labels: readonly number[],
  options: { testFraction?: number; seed?: number } = {},
): SplitIndices {
  const testFraction = options.testFraction ?? 0.2;
  if (!(testFraction > 0 && testFraction < 1)) invalidInput(`testFraction must be between 0 and 1 (got ${testFraction})`);
  checkLabels(labels);
  const random = createRandom(options.seed ?? 1);
  const train: number[] = [];
  const test: number[] = [];
  for (const members of shuffledClassMembers(labels, random)) {
    const testCount =
      members.length < 2 ? 0 : Math.min(members.length - 1, Math.max(1, Math.round(members.length * testFraction)));
    test.push(...members.slice(0, testCount));
    train.push(...members.slice(testCount));
  }
  return { train: train.sort((a, b) => a - b), test: test.sort((a, b) => a - b) };
}

/** k folds keeping each class's proportion; every example is in exactly one test part. */
export function stratifiedFolds(labels: readonly number[], options: { folds?: number; seed?: number } = {}): SplitIndices[] {
  const folds = options.folds ?? 5;
  checkLabels(labels);
  if (!Number.isInteger(folds) || folds < 2 || folds > labels.length) {
    invalidInput(`folds must be a whole number from 2 to the number of examples (${labels.length}); got ${folds}`);
  }
  const random = createRandom(options.seed ?? 1);
  const foldOf = new Int32Array(labels.length);
  // Dealing continues across classes, so fold sizes differ by at most one.
  let dealt = 0;
  for (const members of shuffledClassMembers(labels, random)) {
    for (const index of members) foldOf[index] = dealt++ % folds;
  }
  return Array.from({ length: folds }, (_, fold) => {
    const split: SplitIndices = { train: [], test: [] };
    foldOf.forEach((f, index) => (f === fold ? split.test : split.train).push(index));
    return split;
  });
}

/** Indices of each class (in label order), each list shuffled. */
function shuffledClassMembers(labels: readonly number[], random: () => number): number[][] {
  const byClass = new Map<number, number[]>();
  labels.forEach((label, index) => {
    const members = byClass.get(label) ?? [];
    members.push(index);
    byClass.set(label, members);
  });
  return [...byClass.keys()].sort((a, b) => a - b).map((label) => shuffleInPlace(byClass.get(label)!, random));
}

/** Runs the head on the features and scores its top class against the labels. */
export function evaluateHead(
  head: TrainedHead,
  features: readonly Float32Array[],
  labels: readonly number[],
  labelNames: readonly string[],
): HeadMetrics {
  if (labelNames.length !== head.classCount) {
    invalidInput(`${labelNames.length} label names for a head with ${head.classCount} classes`);
  }
  if (features.length !== labels.length) invalidInput(`${features.length} feature vectors but ${labels.length} labels`);
  const predicted = predictHeadBatch(head, features).map((probabilities) => argMax(probabilities));
  return metricsFromPredictions(predicted, labels, labelNames);
}

/** Accuracy, per-class precision / recall / F1 and the confusion matrix of predicted vs true labels. */
export function metricsFromPredictions(
  predicted: readonly number[],
  labels: readonly number[],
  labelNames: readonly string[],
): HeadMetrics {
  const classCount = labelNames.length;
  if (predicted.length !== labels.length) invalidInput(`${predicted.length} predictions but ${labels.length} labels`);
  if (labels.length === 0) invalidInput('There is nothing to evaluate');
  for (const value of [...labels, ...predicted]) {
    if (!Number.isInteger(value) || value < 0 || value >= classCount) {
      invalidInput(`Label ${String(value)} is outside the ${classCount} classes`);
    }
  }
  const confusion = Array.from({ length: classCount }, () => new Array<number>(classCount).fill(0));
  labels.forEach((label, i) => confusion[label][predicted[i]]++);
  let correct = 0;
  const perClass = labelNames.map((label, c): ClassMetrics => {
    const truePositives = confusion[c][c];
    correct += truePositives;
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predictedCount = confusion.reduce((sum, row) => sum + row[c], 0);
    const precision = predictedCount > 0 ? truePositives / predictedCount : 0;
    const recall = support > 0 ? truePositives / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
  const present = perClass.filter((m) => m.support > 0);
  return {
    accuracy: correct / labels.length,
    macroF1: present.reduce((sum, m) => sum + m.f1, 0) / present.length,
    perClass,
    confusion,
    count: labels.length,
  };
}

/**
 * The smallest confidence threshold (top probability) whose accepted frames reach
 * `targetPrecision`, i.e. the one that rejects the fewest frames. Frames with equal
 * confidence are accepted or rejected together.
 */
export function thresholdForPrecision(
  probabilities: readonly ArrayLike<number>[],
  labels: readonly number[],
  targetPrecision: number,
): PrecisionThreshold {
  if (!(typeof targetPrecision === 'number' && targetPrecision > 0 && targetPrecision <= 1)) {
    invalidInput(`targetPrecision must be above 0 and at most 1 (got ${String(targetPrecision)})`);
  }
  if (probabilities.length !== labels.length) invalidInput(`${probabilities.length} predictions but ${labels.length} labels`);
  const count = labels.length;
  if (count === 0) invalidInput('There is nothing to evaluate');
  const frames = probabilities.map((p, i) => {
    if (!p || p.length === 0) invalidInput(`Prediction ${i} is empty`);
    const top = argMax(p);
    return { confidence: p[top], correct: top === labels[i] };
  });
  frames.sort((a, b) => b.confidence - a.confidence);

  // Walk the thresholds from most to least confident; keep the last (lowest) that reaches the target.
  let best: { accepted: number; correct: number } | undefined;
  let accepted = 0;
  let correct = 0;
  for (let i = 0; i < count; i++) {
    accepted++;
    if (frames[i].correct) correct++;
    const groupEnds = i === count - 1 || frames[i + 1].confidence !== frames[i].confidence;
    if (groupEnds && correct / accepted >= targetPrecision - 1e-12) best = { accepted, correct };
  }
  if (!best) {
    return { targetPrecision, reached: false, threshold: null, rejectedShare: 1, acceptedCount: 0, count, precision: null };
  }
  return {
    targetPrecision,
    reached: true,
    threshold: best.accepted === count ? 0 : frames[best.accepted - 1].confidence,
    rejectedShare: (count - best.accepted) / count,
    acceptedCount: best.accepted,
    count,
    precision: best.correct / best.accepted,
  };
}

export interface CrossValidation {
  metrics: HeadMetrics;
  /** Out-of-fold probabilities, one per example in data order (feed thresholdForPrecision). */
  probabilities: Float32Array[];
  folds: number;
  ms: number;
}

/**
 * k-fold cross-validation: trains one head per fold and scores every example with the
 * head that did not see it. For when there is no separate validation set.
 */
export async function crossValidateHead(
  data: TrainingData,
  params: TrainHeadParams,
  options: { folds?: number; seed?: number; signal?: AbortSignal } = {},
): Promise<CrossValidation> {
  const started = performance.now();
  const labelNames = data.labelNames ?? Array.from({ length: data.classCount }, (_, c) => `class ${c}`);
  const sizes = new Array<number>(data.classCount).fill(0);
  for (const label of data.labels) if (label >= 0 && label < data.classCount) sizes[label]++;
  const tooSmall = sizes.findIndex((size) => size < 2);
  if (tooSmall >= 0) {
    throw new LaneVisionError(
      'TRAINING_DATA_INVALID',
      `Class ${labelNames[tooSmall]} has ${sizes[tooSmall]} example(s); cross-validation needs at least 2 per class`,
    );
  }
  const splits = stratifiedFolds(data.labels, { folds: options.folds, seed: options.seed ?? params.seed });
  const probabilities = new Array<Float32Array>(data.labels.length);
  for (const split of splits) {
    const { head } = await trainHead(
      {
        features: split.train.map((i) => data.features[i]),
        labels: split.train.map((i) => data.labels[i]),
        classCount: data.classCount,
        labelNames: data.labelNames,
      },
      params,
      { signal: options.signal },
    );
    for (const i of split.test) probabilities[i] = predictHeadBatch(head, [data.features[i]])[0];
  }
  const metrics = metricsFromPredictions(
    probabilities.map((p) => argMax(p)),
    data.labels,
    labelNames,
  );
  return { metrics, probabilities, folds: splits.length, ms: performance.now() - started };
}

function checkLabels(labels: readonly number[]): void {
  if (!Array.isArray(labels) || labels.length === 0) invalidInput('There are no labels to split');
  if (!labels.every((l) => Number.isInteger(l) && l >= 0)) invalidInput('Labels must be whole numbers from 0');
}

function invalidInput(message: string): never {
  throw new LaneVisionError('EVALUATION_INPUT_INVALID', message);
}
