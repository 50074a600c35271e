/** Classifier heads on backbone features: training, prediction, storage format and evaluation. */
export type {
  DenseLayerWeights,
  HeadKind,
  TrainedHead,
  TrainHeadCallbacks,
  TrainHeadParams,
  TrainHeadResult,
  TrainingData,
  TrainingProgress,
} from './types.js';
export { HEAD_KINDS } from './types.js';
export { HEAD_DEFAULTS, trainHead, resolveTrainHeadParams, type ResolvedTrainHeadParams } from './train.js';
export { predictHead, predictHeadBatch } from './predict.js';
export {
  deserialiseHead,
  HEAD_FORMAT,
  HEAD_FORMAT_VERSION,
  serialiseHead,
  validateHead,
  type HeadJson,
  type SerialisedHead,
} from './serialise.js';
export {
  crossValidateHead,
  evaluateHead,
  metricsFromPredictions,
  stratifiedFolds,
  stratifiedSplit,
  thresholdForPrecision,
  type ClassMetrics,
  type CrossValidation,
  type HeadMetrics,
  type PrecisionThreshold,
  type SplitIndices,
} from './evaluate.js';
export { createRandom, randomNormal, shuffleInPlace, type RandomSource } from '../random.js';
export { normaliseFeature } from './vectors.js';
