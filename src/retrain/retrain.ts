/**
 * The whole retrain of a lane: dataset -> features (cached) -> head trained on a
 * stratified split and scored on the held-out part -> final head on all the data ->
 * a new model version with its metrics. The held-out figures are what the operator
 * judges; the saved head has also seen those frames, as is usual once a model is chosen.
 */
import { performance } from 'node:perf_hooks';
import { LaneVisionError } from '../errors.js';
import type { Backbone } from '../engine/types.js';
import type { Dataset } from '../dataset/index.js';
import { embedImagesSettled, type FeatureCache } from '../features/index.js';
import type { FitPolicy } from '../image/types.js';
import type { LabelCode, ModelStore } from '../model-store/index.js';
import {
  evaluateHead,
  predictHeadBatch,
  stratifiedSplit,
  thresholdForPrecision,
  trainHead,
  type HeadMetrics,
  type PrecisionThreshold,
  type TrainHeadParams,
} from '../training/index.js';

export type RetrainProgress =
  | { phase: 'features'; done: number; total: number }
  | { phase: 'training'; epoch: number; epochs: number; loss: number; accuracy: number }
  | { phase: 'saving' };

/** What a retrain reads from the dataset: a Dataset, or a training worker's stand-in for one. */
export type RetrainDataset = Pick<Dataset, 'entries' | 'fingerprint'>;
/** What a retrain uses of the model store: a ModelStore, or a training worker's stand-in that saves through the main thread. */
export type RetrainStore = Pick<ModelStore, 'dir' | 'saveModel'>;

export interface RetrainOptions {
  dataset: RetrainDataset;
  backbone: Backbone;
  store: RetrainStore;
  head?: TrainHeadParams;
  /** Share of each label held out for scoring. Default 0.2. */
  holdoutFraction?: number;
  seed?: number;
  /** Precision the suggested confidence threshold must reach on held-out frames. Default 0.95. */
  targetPrecision?: number;
  /** Make the new version the one classifiers use. Default true. */
  activate?: boolean;
  fit?: FitPolicy;
  cache?: FeatureCache | null;
  signal?: AbortSignal;
  onProgress?: (progress: RetrainProgress) => void;
  /** Frames decoded at once while embedding (see EmbedOptions.decodeConcurrency). */
  decodeConcurrency?: number;
  /** Awaited before each embedding step (see EmbedOptions.beforeStep). */
  beforeStep?: () => Promise<unknown>;
  modelName?: string;
}

export interface RetrainMetrics {
  holdout: HeadMetrics;
  threshold: PrecisionThreshold;
  trainCount: number;
  holdoutCount: number;
  countsPerLabel: Record<string, number>;
  skippedImages: { path: string; reason: string }[];
  headKind: string;
  backend: string;
  timings: { featuresMs: number; cachedFeatures: number; trainMs: number; totalMs: number };
}

export interface RetrainResult {
  version: number;
  activated: boolean;
  labels: LabelCode[];
  metrics: RetrainMetrics;
  datasetFingerprint: string;
}

/** Below this many images a label cannot be both trained on and scored. */
export const MIN_IMAGES_PER_LABEL = 2;

/** Stores with a retrain under way: whoever asks (train node, console, MQTT command), one at a time. */
const training = new Set<string>();

export function isRetraining(store: Pick<ModelStore, 'dir'>): boolean {
  return training.has(store.dir);
}

/** Retrains into `store`; rejects with RETRAIN_BUSY while another retrain of the same store runs. */
export async function retrain(options: RetrainOptions): Promise<RetrainResult> {
  return withRetrainLock(options.store, () => runRetrain(options));
}

/**
 * Runs `task` holding the store's retrain lock (RETRAIN_BUSY if taken): `retrain` here,
 * or a training worker's retrain, which the main thread must count as one too.
 */
export async function withRetrainLock<T>(store: Pick<ModelStore, 'dir'>, task: () => Promise<T>): Promise<T> {
  const key = store.dir;
  if (training.has(key)) {
    throw new LaneVisionError('RETRAIN_BUSY', 'A training run for this model store is already under way; wait for it to finish or cancel it.');
  }
  training.add(key);
  try {
    return await task();
  } finally {
    training.delete(key);
  }
}

async function runRetrain(options: RetrainOptions): Promise<RetrainResult> {
  const started = performance.now();
  const { dataset, backbone, store, signal } = options;
  const headParams: TrainHeadParams = { kind: 'softmax', seed: options.seed ?? 1, balanceClasses: true, ...options.head };

  const entries = (await dataset.entries()).filter((entry) => !entry.problem);
  checkEnoughData(entries.map((e) => e.label));

  const total = entries.length;
  options.onProgress?.({ phase: 'features', done: 0, total });
  const featuresStart = performance.now();
  const features: Float32Array[] = [];
  const labelNames: string[] = [];
  const skippedImages: RetrainMetrics['skippedImages'] = [];
  let cachedFeatures = 0;
  const chunk = 32; // progress granularity; embedImages batches inside
  for (let start = 0; start < total; start += chunk) {
    signal?.throwIfAborted();
    const part = entries.slice(start, start + chunk);
    const report = await embedImagesSettled(backbone, part.map((e) => e.path), {
      fit: options.fit,
      cache: options.cache,
      signal,
      decodeConcurrency: options.decodeConcurrency,
      beforeStep: options.beforeStep,
    });
    cachedFeatures += report.cacheHits;
    report.results.forEach((result, i) => {
      if ('error' in result) skippedImages.push({ path: part[i].path, reason: result.error.message });
      else {
        features.push(result.features);
        labelNames.push(part[i].label);
      }
    });
    options.onProgress?.({ phase: 'features', done: Math.min(total, start + chunk), total });
  }
  const featuresMs = performance.now() - featuresStart;
  const labels = checkEnoughData(labelNames);
  const labelIndex = new Map(labels.map((label, i) => [label, i]));
  const targets = labelNames.map((label) => labelIndex.get(label)!);

  const trainStart = performance.now();
  const split = stratifiedSplit(targets, { testFraction: options.holdoutFraction ?? 0.2, seed: headParams.seed });
  const pick = <T>(items: T[], indices: number[]) => indices.map((i) => items[i]);
  const scored = await trainHead(
    { features: pick(features, split.train), labels: pick(targets, split.train), classCount: labels.length, labelNames: labels },
    headParams,
    { signal, onProgress: (p) => options.onProgress?.({ phase: 'training', ...p }) },
  );
  const holdoutFeatures = pick(features, split.test);
  const holdoutTargets = pick(targets, split.test);
  const holdout = evaluateHead(scored.head, holdoutFeatures, holdoutTargets, labels);
  const threshold = thresholdForPrecision(predictHeadBatch(scored.head, holdoutFeatures), holdoutTargets, options.targetPrecision ?? 0.95);
  const final = await trainHead({ features, labels: targets, classCount: labels.length, labelNames: labels }, finalHeadParams(headParams, scored.epochs), {
    signal,
    startFrom: scored.epochs > 0 ? scored.head : undefined,
  });
  const trainMs = performance.now() - trainStart;

  signal?.throwIfAborted();
  options.onProgress?.({ phase: 'saving' });
  const datasetFingerprint = await dataset.fingerprint();
  const countsPerLabel = Object.fromEntries(labels.map((label) => [label, 0]));
  for (const label of labelNames) countsPerLabel[label]++;
  const metrics: RetrainMetrics = {
    holdout,
    threshold,
    trainCount: split.train.length,
    holdoutCount: split.test.length,
    countsPerLabel,
    skippedImages,
    headKind: headParams.kind,
    backend: final.backend,
    timings: { featuresMs, cachedFeatures, trainMs, totalMs: 0 },
  };
  const saved = await store.saveModel({
    head: final.head,
    labels,
    backbone,
    metrics: metrics as unknown as Record<string, unknown>,
    datasetFingerprint,
    modelName: options.modelName,
    activate: options.activate ?? true,
  });
  metrics.timings.totalMs = performance.now() - started;
  return {
    version: saved.version,
    activated: saved.active,
    labels: saved.metadata.classes,
    metrics,
    datasetFingerprint,
  };
}

/**
 * The final head continues from the scored one, which has seen 80% of the same frames:
 * a third of the epochs reaches the loss and held-out accuracy that training from scratch
 * does (measured on the grocery train/ and val/ splits, softmax and mlp), which keeps a
 * warm retrain of the whole split under a second.
 */
function finalHeadParams(params: TrainHeadParams, scoredEpochs: number): TrainHeadParams {
  if (scoredEpochs === 0) return params; // prototype / knn: nothing to continue
  return { ...params, epochs: Math.max(1, Math.ceil(scoredEpochs / 3)) };
}

/** Sorted labels, after checking there is something to learn and to score. */
function checkEnoughData(labelOfEach: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const label of labelOfEach) counts.set(label, (counts.get(label) ?? 0) + 1);
  const labels = [...counts.keys()].sort();
  const short = labels.filter((label) => counts.get(label)! < MIN_IMAGES_PER_LABEL);
  if (labels.length < 2 || short.length > 0) {
    throw new LaneVisionError(
      'RETRAIN_NOT_ENOUGH_DATA',
      labels.length < 2
        ? `Training needs at least 2 labels with ${MIN_IMAGES_PER_LABEL}+ images each; the dataset has ${labels.length} label(s).`
        : `Every label needs at least ${MIN_IMAGES_PER_LABEL} images; too few for: ${short.map((l) => `${l} (${counts.get(l)})`).join(', ')}.`,
    );
  }
  return labels;
}
