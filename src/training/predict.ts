/**
 * Runs a trained head on feature vectors with plain arithmetic: no tensors, because
 * this runs per frame and a 1280x6 product takes microseconds, less than a tensor
 * round trip would.
 */
import { LaneVisionError } from '../errors.js';
import type { DenseLayerWeights, TrainedHead } from './types.js';
import { normaliseFeature, selectTop, softmaxInPlace } from './vectors.js';

/** Class probabilities (summing to 1) for one feature vector. */
export function predictHead(head: TrainedHead, feature: Float32Array): Float32Array {
  if (!(feature instanceof Float32Array) || feature.length !== head.featureSize) {
    throw new LaneVisionError(
      'FEATURE_SIZE_MISMATCH',
      `The head expects ${head.featureSize} features per frame but got ${feature instanceof Float32Array ? feature.length : typeof feature}; was it trained with another backbone?`,
    );
  }
  const input = head.normalise ? normaliseFeature(feature) : feature;
  switch (head.kind) {
    case 'softmax':
    case 'mlp':
    case 'logistic':
    case 'svm':
      return runDenseLayers(head.layers ?? [], input);
    case 'prototype':
      return predictPrototype(head, input);
    case 'knn':
      return predictNearestNeighbours(head, input);
    default:
      throw new LaneVisionError('HEAD_INVALID', `Unknown head kind "${String(head.kind)}"`);
  }
}

/** `predictHead` for each feature vector. */
export function predictHeadBatch(head: TrainedHead, features: readonly Float32Array[]): Float32Array[] {
  return features.map((feature) => predictHead(head, feature));
}

function runDenseLayers(layers: readonly DenseLayerWeights[], input: Float32Array): Float32Array {
  let values: Float32Array = input;
  for (const layer of layers) {
    const { inputSize, outputSize, kernel, bias } = layer;
    // Float64 accumulators: 1280 float32 products summed in float32 lose digits.
    const out = new Float64Array(outputSize);
    for (let o = 0; o < outputSize; o++) out[o] = bias[o];
    for (let i = 0; i < inputSize; i++) {
      const value = values[i];
      if (value === 0) continue; // ReLU zeros are common in the hidden layer
      const row = i * outputSize;
      for (let o = 0; o < outputSize; o++) out[o] += value * kernel[row + o];
    }
    if (layer.activation === 'relu') {
      for (let o = 0; o < outputSize; o++) if (out[o] < 0) out[o] = 0;
    } else if (layer.activation === 'softmax') {
      softmaxInPlace(out);
    }
    values = Float32Array.from(out);
  }
  return values;
}

function predictPrototype(head: TrainedHead, input: Float32Array): Float32Array {
  const prototypes = head.prototypes as Float32Array;
  const { classCount, featureSize } = head;
  const scores = new Float64Array(classCount);
  for (let c = 0; c < classCount; c++) {
    let dot = 0;
    const row = c * featureSize;
    for (let i = 0; i < featureSize; i++) dot += input[i] * prototypes[row + i];
    scores[c] = dot;
  }
  softmaxInPlace(scores, head.temperature ?? 1);
  return Float32Array.from(scores);
}

function predictNearestNeighbours(head: TrainedHead, input: Float32Array): Float32Array {
  const { features, labels, k } = head.examples as NonNullable<TrainedHead['examples']>;
  const { featureSize } = head;
  const similarities = new Float64Array(labels.length);
  for (let e = 0; e < labels.length; e++) {
    let dot = 0;
    const row = e * featureSize;
    for (let i = 0; i < featureSize; i++) dot += input[i] * features[row + i];
    similarities[e] = dot;
  }
  return neighbourVotes(similarities, selectTop(similarities, k), labels, head.classCount, head.temperature ?? 1);
}

/**
 * Similarity-weighted votes of the neighbours as probabilities. `neighbours` indexes
 * `similarities` and `labels`, most similar first.
 */
export function neighbourVotes(
  similarities: ArrayLike<number>,
  neighbours: ArrayLike<number>,
  labels: ArrayLike<number>,
  classCount: number,
  temperature: number,
): Float32Array {
  const votes = new Float64Array(classCount);
  let total = 0;
  for (let n = 0; n < neighbours.length; n++) {
    const vote = Math.exp((similarities[neighbours[n]] - similarities[neighbours[0]]) / temperature);
    votes[labels[neighbours[n]]] += vote;
    total += vote;
  }
  for (let c = 0; c < classCount; c++) votes[c] /= total;
  return Float32Array.from(votes);
}
