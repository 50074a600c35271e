/**
 * trainHead: checks the data and parameters, then trains one of six heads on
 * L2-normalised feature vectors. Heads come back as plain data (see types.ts).
 */
import createDebug from 'debug';
import { initBackend } from '../engine/backend.js';
import { LaneVisionError } from '../errors.js';
import { TrainingControl } from './control.js';
import { trainDenseLayers } from './dense.js';
import { trainLinearHead } from './linear.js';
import { trainNearestNeighbourHead, trainPrototypeHead, type SimilarityOutcome } from './similarity.js';
import { HEAD_KINDS, type DenseLayerWeights, type TrainedHead, type TrainHeadCallbacks, type TrainHeadParams, type TrainHeadResult, type TrainingData } from './types.js';
import { stackFeatures } from './vectors.js';

const debug = createDebug('lane-vision:training');

/**
 * Defaults, measured on real MobileNetV2 features of grocery-package photos. Unit-length
 * features need large weights, hence a learning rate that looks big for Adam.
 */
export const HEAD_DEFAULTS = {
  balanceClasses: true,
  seed: 1,
  softmax: { epochs: 60, learningRate: 0.05, weightDecay: 1e-4 },
  mlp: { epochs: 100, learningRate: 0.005, weightDecay: 1e-4, hiddenUnits: 64 },
  knn: { k: 5, temperature: 0.1 },
  /**
   * Measured on photos of another session (grocery val/): L2 3e-3 and smoothing 0.1 were
   * best of 3e-4..1e-2 and 0..0.2; L-BFGS converges in 40-70 iterations.
   */
  logistic: { epochs: 150, weightDecay: 3e-3, labelSmoothing: 0.1 },
  svm: { epochs: 150, weightDecay: 3e-3 },
} as const;

/** Fully resolved parameters (what was actually used). */
export type ResolvedTrainHeadParams = Required<Omit<TrainHeadParams, 'temperature'>> & { temperature?: number };

/**
 * Trains a classifier head. Rejects with TRAINING_DATA_INVALID / TRAINING_PARAMS_INVALID
 * for bad input and TRAINING_CANCELLED when `callbacks.signal` aborts; no tensors
 * outlive the call either way.
 */
export async function trainHead(
  data: TrainingData,
  params: TrainHeadParams,
  callbacks: TrainHeadCallbacks = {},
): Promise<TrainHeadResult> {
  const started = performance.now();
  const control = new TrainingControl(callbacks);
  control.checkCancelled();
  const settings = resolveTrainHeadParams(params);
  checkTrainingData(data);
  const backend = (await initBackend()).name;
  control.checkCancelled();

  const { classCount } = data;
  const featureSize = data.features[0].length;
  const labels = Int32Array.from(data.labels);
  const input = {
    features: stackFeatures(data.features, true),
    labels,
    featureSize,
    classCount,
    exampleWeights: exampleWeights(labels, classCount, settings.balanceClasses),
  };

  let outcome: SimilarityOutcome;
  let epochs = 0;
  switch (settings.kind) {
    case 'prototype':
      outcome = trainPrototypeHead(input, settings.temperature);
      break;
    case 'knn':
      outcome = await trainNearestNeighbourHead(
        input,
        settings.k,
        settings.temperature ?? HEAD_DEFAULTS.knn.temperature,
        control,
      );
      break;
    case 'logistic':
    case 'svm': {
      const linear = await trainLinearHead(
        input,
        {
          loss: settings.kind === 'svm' ? 'hinge' : 'logistic',
          weightDecay: settings.weightDecay,
          labelSmoothing: settings.labelSmoothing,
          iterations: settings.epochs,
          start: callbacks.startFrom ? startingLayers(callbacks.startFrom, settings, featureSize, classCount)[0] : undefined,
        },
        control,
      );
      epochs = linear.iterations;
      outcome = {
        head: { kind: settings.kind, featureSize, classCount, normalise: true, layers: [linear.layer] },
        finalLoss: linear.finalLoss,
        trainAccuracy: linear.trainAccuracy,
      };
      break;
    }
    case 'softmax':
    case 'mlp': {
      const startLayers = callbacks.startFrom ? startingLayers(callbacks.startFrom, settings, featureSize, classCount) : undefined;
      const dense = await trainDenseLayers(input, { ...settings, kind: settings.kind, startLayers }, control);
      epochs = settings.epochs;
      outcome = {
        head: { kind: settings.kind, featureSize, classCount, normalise: true, layers: dense.layers },
        finalLoss: dense.finalLoss,
        trainAccuracy: dense.trainAccuracy,
      };
      break;
    }
  }
  const ms = performance.now() - started;
  debug(
    '%s head: %d examples x %d, %d classes, %d epochs on %s in %d ms; loss %d, train accuracy %d',
    settings.kind,
    labels.length,
    featureSize,
    classCount,
    epochs,
    backend,
    Math.round(ms),
    outcome.finalLoss,
    outcome.trainAccuracy,
  );
  return { ...outcome, backend, ms, epochs };
}

/** The layers of a head to continue training from; TRAINING_PARAMS_INVALID when it does not fit. */
function startingLayers(head: TrainedHead, settings: ResolvedTrainHeadParams, featureSize: number, classCount: number): DenseLayerWeights[] {
  const kind = settings.kind;
  const widths = kind === 'mlp' ? [featureSize, settings.hiddenUnits, classCount] : [featureSize, classCount];
  // For svm the stored kernel carries the fitted sharpness: a start, not the solution, so still a fine one.
  const fits =
    head.kind === kind &&
    head.layers?.length === widths.length - 1 &&
    head.layers.every((layer, i) => layer.inputSize === widths[i] && layer.outputSize === widths[i + 1]);
  if (!fits || !head.layers) {
    invalidParams(
      `Cannot continue from a ${head.kind} head of ${head.featureSize} features x ${head.classCount} classes: ` +
        `this training is a ${kind} head of ${featureSize} x ${classCount}`,
    );
  }
  return head.layers;
}

/**
 * Loss weight per example, summing to 1. Balanced: each class gets the same total
 * (N / (classCount * n_class) per example, then normalised), so a class with few
 * photos is not drowned out by one with many.
 */
export function exampleWeights(labels: Int32Array, classCount: number, balance: boolean): Float32Array {
  const classSizes = new Float64Array(classCount);
  for (const label of labels) classSizes[label]++;
  const raw = Array.from(labels, (label) => (balance ? 1 / (classCount * classSizes[label]) : 1 / labels.length));
  const total = raw.reduce((a, b) => a + b, 0);
  return Float32Array.from(raw, (w) => w / total);
}

/** Applies defaults and checks ranges; throws TRAINING_PARAMS_INVALID. */
export function resolveTrainHeadParams(params: TrainHeadParams): ResolvedTrainHeadParams {
  if (!params || typeof params !== 'object') invalidParams('Training parameters are missing');
  const kind = params.kind;
  if (!HEAD_KINDS.includes(kind)) {
    invalidParams(`Unknown head kind "${String(kind)}": use ${HEAD_KINDS.join(', ')}`);
  }
  const dense = kind === 'mlp' ? HEAD_DEFAULTS.mlp : HEAD_DEFAULTS.softmax;
  const linear = kind === 'svm' ? HEAD_DEFAULTS.svm : HEAD_DEFAULTS.logistic;
  const isLinear = kind === 'logistic' || kind === 'svm';
  const resolved: ResolvedTrainHeadParams = {
    kind,
    epochs: params.epochs ?? (isLinear ? linear.epochs : dense.epochs),
    learningRate: params.learningRate ?? dense.learningRate,
    weightDecay: params.weightDecay ?? (isLinear ? linear.weightDecay : dense.weightDecay),
    labelSmoothing: params.labelSmoothing ?? (kind === 'logistic' ? HEAD_DEFAULTS.logistic.labelSmoothing : 0),
    balanceClasses: params.balanceClasses ?? HEAD_DEFAULTS.balanceClasses,
    seed: params.seed ?? HEAD_DEFAULTS.seed,
    hiddenUnits: params.hiddenUnits ?? HEAD_DEFAULTS.mlp.hiddenUnits,
    k: params.k ?? HEAD_DEFAULTS.knn.k,
    temperature: params.temperature,
  };
  checkInteger('epochs', resolved.epochs, 1, 100_000);
  checkNumber('learningRate', resolved.learningRate, (v) => v > 0 && v <= 10, 'above 0 and at most 10');
  checkNumber('weightDecay', resolved.weightDecay, (v) => v >= 0 && v <= 10, 'between 0 and 10');
  checkInteger('hiddenUnits', resolved.hiddenUnits, 1, 4096);
  checkNumber('labelSmoothing', resolved.labelSmoothing, (v) => v >= 0 && v < 1, 'from 0 to below 1');
  checkInteger('k', resolved.k, 1, 1000);
  checkNumber('seed', resolved.seed, Number.isFinite, 'a finite number');
  if (resolved.temperature !== undefined) {
    checkNumber('temperature', resolved.temperature, (v) => v > 0 && v <= 100, 'above 0 and at most 100');
  }
  if (typeof resolved.balanceClasses !== 'boolean') invalidParams('balanceClasses must be true or false');
  return resolved;
}

function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalidParams(`${name} must be a whole number from ${min} to ${max} (got ${String(value)})`);
  }
}

function checkNumber(name: string, value: unknown, ok: (v: number) => boolean, range: string): void {
  if (typeof value !== 'number' || Number.isNaN(value) || !ok(value)) {
    invalidParams(`${name} must be ${range} (got ${String(value)})`);
  }
}

function invalidParams(message: string): never {
  throw new LaneVisionError('TRAINING_PARAMS_INVALID', message);
}

/** Throws TRAINING_DATA_INVALID unless every example is a finite vector of one size with a known label. */
export function checkTrainingData(data: TrainingData): void {
  const fail = (message: string): never => {
    throw new LaneVisionError('TRAINING_DATA_INVALID', message);
  };
  if (!data || !Array.isArray(data.features) || !Array.isArray(data.labels)) {
    fail('Training data needs a features array and a labels array');
  }
  const { features, labels, classCount } = data;
  if (!Number.isInteger(classCount) || classCount < 2) {
    fail(`A classifier needs at least 2 classes (got ${String(classCount)})`);
  }
  if (features.length === 0) fail('There are no training examples');
  if (labels.length !== features.length) {
    fail(`There are ${features.length} feature vectors but ${labels.length} labels`);
  }
  const featureSize = features[0] instanceof Float32Array ? features[0].length : 0;
  if (featureSize === 0) fail('Feature vectors must be non-empty Float32Arrays');
  const classSizes = new Array<number>(classCount).fill(0);
  features.forEach((feature, i) => {
    if (!(feature instanceof Float32Array) || feature.length !== featureSize) {
      fail(`Example ${i} has ${feature instanceof Float32Array ? feature.length : 'no'} features, expected ${featureSize}`);
    }
    for (let j = 0; j < feature.length; j++) {
      if (!Number.isFinite(feature[j])) fail(`Example ${i} has a NaN or infinite feature value`);
    }
    const label = labels[i];
    if (!Number.isInteger(label) || label < 0 || label >= classCount) {
      fail(`Example ${i} has label ${String(label)}, expected a whole number from 0 to ${classCount - 1}`);
    }
    classSizes[label]++;
  });
  const empty = classSizes.findIndex((size) => size === 0);
  if (empty >= 0) {
    const name = data.labelNames?.[empty] ?? `number ${empty}`;
    fail(`Class ${name} has no examples: add some, or remove the class`);
  }
}
