/**
 * Scores a pipeline honestly: heads trained without the frames they are scored on, nor
 * any view or near-duplicate of them (whole groups per fold), or trained on everything and
 * scored on a validation set from another session.
 */
import { performance } from 'node:perf_hooks';
import { metricsFromPredictions, predictHeadBatch, trainHead, type TrainedHead, type TrainHeadCallbacks, type TrainHeadParams, type TrainingProgress } from '../training/index.js';
import { argMax } from '../training/vectors.js';
import type { PipelineScore } from './types.js';

/** The features a pipeline gives each frame. */
export interface PipelineFeatures {
  plain: Float32Array[];
  /** views[k][frame]: augmentation view k of each frame. */
  views: Float32Array[][];
  /** testViews[k][frame]: test-time view k of each frame. */
  testViews: Float32Array[][];
}

export interface LabelledFrames {
  labels: readonly number[];
  classCount: number;
  labelNames: readonly string[];
}

export interface ScoreOptions {
  head: TrainHeadParams;
  signal?: AbortSignal;
  /** Each fit's progress, with which fit of how many it is (cross-validation: one per fold). */
  onProgress?: (progress: TrainingProgress, fit: { index: number; count: number }) => void;
}

/** Grouped k-fold: every frame scored by a head trained on the other folds (with their views). */
export async function crossValidatePipeline(features: PipelineFeatures, frames: LabelledFrames, fold: Int32Array, options: ScoreOptions): Promise<PipelineScore> {
  const started = performance.now();
  const probabilities = new Array<Float32Array>(frames.labels.length);
  const folds = Math.max(...fold) + 1;
  for (let f = 0; f < folds; f++) {
    const train: number[] = [];
    const test: number[] = [];
    fold.forEach((value, i) => (value === f ? test : train).push(i));
    if (test.length === 0) continue;
    const head = await fitPipelineHead(features, train, frames, { ...options, onProgress: options.onProgress && ((p) => options.onProgress!(p, { index: f, count: folds })) });
    const predicted = predictAveraged(head, features, test);
    test.forEach((frame, i) => (probabilities[frame] = predicted[i]));
  }
  const targets = [...frames.labels];
  return { metrics: metricsFromPredictions(probabilities.map(argMax), targets, frames.labelNames), probabilities, targets, fitMs: performance.now() - started };
}

/** Trained on all training frames (with their views), scored on the validation frames. */
export async function validatePipeline(
  features: PipelineFeatures,
  frames: LabelledFrames,
  validation: { features: PipelineFeatures; labels: readonly number[] },
  options: ScoreOptions,
): Promise<PipelineScore> {
  const started = performance.now();
  const head = await fitPipelineHead(features, frames.labels.map((_, i) => i), frames, { ...options, onProgress: options.onProgress && ((p) => options.onProgress!(p, { index: 0, count: 1 })) });
  const all = validation.labels.map((_, i) => i);
  const probabilities = predictAveraged(head, validation.features, all);
  const targets = [...validation.labels];
  return { metrics: metricsFromPredictions(probabilities.map(argMax), targets, frames.labelNames), probabilities, targets, fitMs: performance.now() - started };
}

/**
 * A head on the given frames and their augmentation views. A label with no frame among
 * them (a session that alone holds it, held out) gets probability 0: such frames count
 * as wrong, as they would be on a lane that never learnt the product.
 */
export async function fitPipelineHead(
  features: PipelineFeatures,
  rows: readonly number[],
  frames: LabelledFrames,
  options: { head: TrainHeadParams; signal?: AbortSignal; onProgress?: TrainHeadCallbacks['onProgress'] },
): Promise<TrainedHead> {
  const present = [...new Set(rows.map((i) => frames.labels[i]))].sort((a, b) => a - b);
  const local = new Map(present.map((label, i) => [label, i]));
  const trainFeatures: Float32Array[] = [];
  const trainLabels: number[] = [];
  for (const source of [features.plain, ...features.views]) {
    for (const i of rows) {
      trainFeatures.push(source[i]);
      trainLabels.push(local.get(frames.labels[i])!);
    }
  }
  const { head } = await trainHead(
    { features: trainFeatures, labels: trainLabels, classCount: present.length, labelNames: present.map((l) => frames.labelNames[l]) },
    options.head,
    { signal: options.signal, onProgress: options.onProgress },
  );
  return present.length === frames.classCount ? head : widenHead(head, present, frames.classCount);
}

/** Mean class probabilities over the plain frame and its test-time views. */
export function predictAveraged(head: TrainedHead, features: PipelineFeatures, rows: readonly number[]): Float32Array[] {
  const sources = [features.plain, ...features.testViews];
  const predicted = sources.map((source) => predictHeadBatch(head, rows.map((i) => source[i])));
  return rows.map((_, r) => {
    const mean = new Float32Array(predicted[0][r].length);
    for (const view of predicted) for (let c = 0; c < mean.length; c++) mean[c] += view[r][c] / predicted.length;
    return mean;
  });
}

/**
 * A head over `present` classes as one over all `classCount`: an absent class gets a large
 * negative bias (dense heads), a zero prototype (cosine 0, so next to no probability at
 * the fitted temperature), or simply no example (knn).
 */
function widenHead(head: TrainedHead, present: readonly number[], classCount: number): TrainedHead {
  if (head.examples) {
    const labels = Int32Array.from(head.examples.labels, (label) => present[label]);
    return { ...head, classCount, examples: { ...head.examples, labels } };
  }
  if (head.prototypes) {
    const prototypes = new Float32Array(classCount * head.featureSize);
    present.forEach((label, i) => prototypes.set(head.prototypes!.subarray(i * head.featureSize, (i + 1) * head.featureSize), label * head.featureSize));
    return { ...head, classCount, prototypes };
  }
  const layers = head.layers!.map((layer) => ({ ...layer }));
  const last = layers[layers.length - 1];
  const kernel = new Float32Array(last.inputSize * classCount);
  const bias = new Float32Array(classCount).fill(-1e4);
  present.forEach((label, i) => {
    bias[label] = last.bias[i];
    for (let row = 0; row < last.inputSize; row++) kernel[row * classCount + label] = last.kernel[row * last.outputSize + i];
  });
  layers[layers.length - 1] = { ...last, outputSize: classCount, kernel, bias };
  return { ...head, classCount, layers };
}
