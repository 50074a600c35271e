/**
 * A trained classifier head as plain data: no tensors, so it serialises, crosses
 * worker threads, and predicts with plain arithmetic on the hot path.
 */
export type HeadKind = 'prototype' | 'knn' | 'softmax' | 'mlp';

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
  /** softmax / mlp: dense layers, in order. */
  layers?: DenseLayerWeights[];
  /** prototype: one unit-length mean vector per class, row-major [classCount][featureSize]. */
  prototypes?: Float32Array;
  /** knn: the stored examples. */
  examples?: { features: Float32Array; labels: Int32Array; k: number };
  /** prototype / knn: similarity -> probability sharpness. */
  temperature?: number;
}
