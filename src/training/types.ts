import type { BackendName } from '../engine/backend.js';

/**
 * A trained classifier head as plain data: no tensors, so it serialises, crosses
 * worker threads, and predicts with plain arithmetic on the hot path.
 */
export type HeadKind = 'prototype' | 'knn' | 'softmax' | 'mlp' | 'logistic' | 'svm';
export const HEAD_KINDS: readonly HeadKind[] = ['prototype', 'knn', 'softmax', 'mlp', 'logistic', 'svm'];

/**
 * Heads that are dense layers (mlp: two, the others one). softmax is trained by Adam on
 * unit vectors; logistic and svm are fitted to convergence on standardised features (see
 * linear.ts) and stored the same way.
 */
export const DENSE_HEAD_KINDS: readonly HeadKind[] = ['softmax', 'mlp', 'logistic', 'svm'];

export function isDenseHead(kind: HeadKind): boolean {
  return DENSE_HEAD_KINDS.includes(kind);
}

export interface DenseLayerWeights {
  inputSize: number;
  outputSize: number;
  /** Row-major [inputSize][outputSize]. */
  kernel: Float32Array;
  bias: Float32Array;
  activation: 'relu' | 'softmax' | 'linear';
}

export interface TrainedHead {
  kind: HeadKind;
  featureSize: number;
  classCount: number;
  /** Features are L2-normalised before the head (as in training). */
  normalise: boolean;
  /** softmax / mlp / logistic / svm: dense layers, in order. */
  layers?: DenseLayerWeights[];
  /** prototype: one unit-length mean vector per class, row-major [classCount][featureSize]. */
  prototypes?: Float32Array;
  /** knn: the stored examples. */
  examples?: { features: Float32Array; labels: Int32Array; k: number };
  /** prototype / knn: similarity -> probability sharpness. */
  temperature?: number;
}

/** Labelled feature vectors to train on: `labels[i]` in [0, classCount) names the class of `features[i]`. */
export interface TrainingData {
  features: Float32Array[];
  labels: number[];
  classCount: number;
  /** Only used to make error messages name the class. */
  labelNames?: readonly string[];
}

/** How to train a head. Everything is optional except `kind`; defaults are in `HEAD_DEFAULTS`. */
export interface TrainHeadParams {
  kind: HeadKind;
  /** softmax / mlp: full-batch optimiser steps; logistic / svm: L-BFGS iterations at most. */
  epochs?: number;
  /** softmax / mlp: Adam step size. */
  learningRate?: number;
  /** softmax / mlp: L2 penalty on the kernels (weightDecay / 2 * sum of squares); logistic / svm: the same, on standardised features. */
  weightDecay?: number;
  /** logistic: share of each target spread evenly over the classes (0 = hard labels). */
  labelSmoothing?: number;
  /** Weight each class's examples by N / (classCount * n_class), so a small class counts as much as a big one. */
  balanceClasses?: boolean;
  /** Seeds the initial weights (mlp) so the same seed gives the same head. */
  seed?: number;
  /** mlp: width of the hidden ReLU layer. */
  hiddenUnits?: number;
  /** knn: neighbours that vote. */
  k?: number;
  /** prototype / knn: similarity -> probability sharpness. prototype fits it (leave-one-out) when unset. */
  temperature?: number;
}

export interface TrainingProgress {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Class-weighted cross-entropy on the training examples, before this epoch's update. */
  loss: number;
  /** Share of training examples classified right, before this epoch's update. */
  accuracy: number;
}

export interface TrainHeadCallbacks {
  /** Called at most every `progressIntervalMs` and always for the last epoch. */
  onProgress?: (progress: TrainingProgress) => void;
  /** Default 100 ms. */
  progressIntervalMs?: number;
  /** Aborting rejects with LaneVisionError TRAINING_CANCELLED. */
  signal?: AbortSignal;
  /**
   * softmax / mlp: start from this head's weights instead of the usual initial ones (it
   * must have the same kind and shapes). Continuing from a head trained on most of the
   * same data converges in a fraction of the epochs.
   */
  startFrom?: TrainedHead;
}

export interface TrainHeadResult {
  head: TrainedHead;
  /** The tfjs backend the training arithmetic ran on. */
  backend: BackendName;
  /** Wall time of trainHead. */
  ms: number;
  /** Optimiser steps taken (0 for prototype / knn). */
  epochs: number;
  /**
   * Class-weighted cross-entropy of the finished head on its training examples
   * (knn: leave-one-out, since a stored example would find itself).
   */
  finalLoss: number;
  /** Share of training examples the finished head classifies right (knn: leave-one-out). */
  trainAccuracy: number;
}
