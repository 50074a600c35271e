/**
 * The whole retrain of a lane: dataset -> features (cached) -> the pipeline (searched
 * within a time budget, given, or reused from the active version) -> its honest accuracy
 * (grouped cross-validation, or a validation set of another session) -> the final head on
 * all the frames -> a new model version storing the pipeline, so it is served as trained.
 */
import { performance } from 'node:perf_hooks';
import { LaneVisionError } from '../errors.js';
import type { Backbone } from '../engine/types.js';
import type { Dataset, DatasetEntry } from '../dataset/index.js';
import type { FeatureCache } from '../features/index.js';
import type { CropRegion, FitPolicy } from '../image/types.js';
import { checkCrop } from '../image/geometry.js';
import type { BackboneDescriptor, LabelCode, ModelStore, OpenSetSpec } from '../model-store/index.js';
import { buildNoveltyIndex, chooseOperatingPoint, heldOutSimilarities } from '../open-set/index.js';
import { thresholdForPrecision, type HeadMetrics, type PrecisionThreshold, type TrainHeadParams } from '../training/index.js';
import { adviseFromTraining, type Advice } from '../advisor/index.js';
import { checkFineTuneOptions } from '../fine-tuning/index.js';
import { fineTuneRetrain, type FineTuneReport, type FineTuneSettings, type TunedRun } from './fine-tune-retrain.js';
import {
  calibrateHead,
  canCalibrate,
  describeSpec,
  featureSource,
  fitPipelineHead,
  fitSharpness,
  fitWithCrop,
  FrameFeatures,
  groupedFolds,
  groupFrames,
  MAX_TEST_VIEWS,
  MAX_VIEWS,
  TRAINING_STRATEGIES,
  scoreSpec,
  searchPipeline,
  sharpen,
  type CandidateScore,
  type EstimateKind,
  type PipelineReport,
  type PipelineScore,
  type PipelineSpec,
  type TrainingStrategy,
  type ValidationEstimate,
} from '../pipeline/index.js';

export type RetrainProgress =
  | { phase: 'features'; done: number; total: number; what?: string }
  | { phase: 'search'; done: number; name: string }
  | { phase: 'training'; epoch: number; epochs: number; loss: number; accuracy: number }
  | { phase: 'fine-tune'; epoch: number; epochs: number; loss: number; validationAccuracy: number; epochMs: number; stage?: 'final training on all frames' }
  | { phase: 'saving' };

/** What a retrain reads from the dataset: a Dataset, or a training worker's stand-in for one. */
export type RetrainDataset = Pick<Dataset, 'entries' | 'fingerprint'>;
/** What a retrain uses of the model store: a ModelStore, or a training worker's stand-in that saves through the main thread. */
export type RetrainStore = Pick<ModelStore, 'dir' | 'saveModel'>;

export interface RetrainOptions {
  dataset: RetrainDataset;
  backbone: Backbone;
  store: RetrainStore;
  /** `auto` (default) searches crop, head and views; `fixed` trains `head`, `crop` and `trainViews` as given. */
  strategy?: TrainingStrategy;
  /** fixed: the head (default logistic). auto: ignored. */
  head?: TrainHeadParams;
  /** fixed: the crop inside the fit (default none). */
  crop?: CropRegion | null;
  /** fixed: augmentation views per frame (default 0). */
  trainViews?: number;
  /** Test-time views to serve with. Default 0 (auto measures and reports them, without using them); `auto` lets the search decide. */
  testViews?: number | 'auto';
  /** auto: seconds the search may take (default 100); its first candidate is always scored. */
  budgetSeconds?: number;
  /** The active version's pipeline: auto reuses it while the labels are the same and the data grew or shrank by less than a quarter. */
  previous?: PipelineReport;
  /** Frames of another session to score on (the figure that predicts the next shift) instead of cross-validation. */
  validation?: RetrainDataset;
  /** Folds of the grouped cross-validation (default 5). */
  folds?: number;
  seed?: number;
  /** Precision the suggested thresholds (the operating point) must reach on held-out frames. Default 0.95. */
  targetPrecision?: number;
  /**
   * Labels that are reject classes ("other products", "empty belt"): trained like any
   * label, but a frame that looks most like one is sent to inspection, never sorted.
   */
  rejectLabels?: readonly string[];
  /** Make the new version the one classifiers use. Default true. */
  activate?: boolean;
  /** The backbone node's fit (or region): the search crops inside it. Default the backbone's. */
  fit?: FitPolicy;
  cache?: FeatureCache | null;
  /** fine-tune: where the frozen bottom's activations are kept between runs (default: on disk in the model cache folder; null: not kept). */
  activationCache?: FeatureCache | null;
  signal?: AbortSignal;
  onProgress?: (progress: RetrainProgress) => void;
  /** Frames decoded at once while embedding (see EmbedOptions.decodeConcurrency). */
  decodeConcurrency?: number;
  /** Awaited before each embedding step (see EmbedOptions.beforeStep). */
  beforeStep?: () => Promise<unknown>;
  modelName?: string;
  /** fine-tune: blocks to unfreeze (default per backbone family), epochs, learning rates, weight decay. */
  fineTune?: FineTuneSettings;
  /** Set by the fine-tune strategy for the head training it runs on the tuned backbone. */
  tuned?: TunedRun;
}

export interface RetrainMetrics {
  /** The model's accuracy as every surface reports it: on frames the scoring head never saw (see `validation`). */
  holdout: HeadMetrics;
  /** Where `holdout` comes from and how far to trust it. */
  validation: ValidationEstimate;
  threshold: PrecisionThreshold;
  /** The thresholds the model decides with (confidence and novelty), the precision/coverage curve, the reject classes. */
  openSet: OpenSetSpec;
  /** Frames the final head was trained on. */
  trainCount: number;
  /** Frames the estimate scored (cross-validation: every frame, once, by a head that had not seen it). */
  holdoutCount: number;
  countsPerLabel: Record<string, number>;
  skippedImages: { path: string; reason: string }[];
  headKind: string;
  backend: string;
  pipeline: PipelineReport;
  advice: Advice;
  timings: { featuresMs: number; cachedFeatures: number; searchMs: number; trainMs: number; totalMs: number };
  /** fine-tune: what the backbone's blocks learnt, and the held-out accuracy that steered them. */
  fineTune?: FineTuneReport;
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

/** The search's share of a cold training of about 900 frames that should end within two minutes on two cores. */
export const DEFAULT_BUDGET_SECONDS = 100;
export const DEFAULT_FOLDS = 5;
/** A warm retrain reuses the searched pipeline until the data grows or shrinks by this share. */
const REUSE_CHANGE = 0.25;

async function runRetrain(options: RetrainOptions): Promise<RetrainResult> {
  const started = performance.now();
  const { dataset, backbone, store, signal } = options;
  const seed = options.seed ?? 1;
  const strategy = options.strategy ?? 'auto';
  checkRetrainOptions(options);
  const baseFit = options.fit ?? backbone.fit;
  const budgetMs = (options.budgetSeconds ?? DEFAULT_BUDGET_SECONDS) * 1000;
  const features = new FrameFeatures(backbone, {
    cache: options.cache,
    signal,
    decodeConcurrency: options.decodeConcurrency,
    beforeStep: options.beforeStep,
    onProgress: (p) => options.onProgress?.({ phase: 'features', ...p }),
  });

  // The plain frames at the base fit: which frames are readable, and which near-duplicate groups they form.
  const entries = (await dataset.entries()).filter((entry) => !entry.problem);
  checkEnoughData(entries.map((e) => e.label));
  options.onProgress?.({ phase: 'features', done: 0, total: entries.length });
  const entryPaths = entries.map((e) => e.path);
  const plain = await features.embed(entryPaths, fitWithCrop(baseFit, null), undefined, 'training frames');
  const skippedImages: RetrainMetrics['skippedImages'] = [];
  const kept: DatasetEntry[] = [];
  const plainVectors: Float32Array[] = [];
  plain.forEach((result, i) => {
    if (result instanceof Error) skippedImages.push({ path: entries[i].path, reason: result.message });
    else {
      kept.push(entries[i]);
      plainVectors.push(result);
    }
  });
  const labels = checkEnoughData(kept.map((e) => e.label));
  checkRejectLabels(options.rejectLabels ?? [], labels);
  const labelIndex = new Map(labels.map((label, i) => [label, i]));
  const targets = kept.map((e) => labelIndex.get(e.label)!);
  const frames = { labels: targets, classCount: labels.length, labelNames: labels };
  const groups = groupFrames(plainVectors, targets, kept.map((e) => e.session));
  const fold = groupedFolds(groups, targets, options.folds ?? DEFAULT_FOLDS, seed);
  const validation = options.validation ? await validationFrames(options.validation, labelIndex) : undefined;
  // The same array as embedded above when nothing was skipped, so its plain vectors are not embedded again.
  const trainPaths = kept.length === entries.length ? entryPaths : kept.map((e) => e.path);
  // fine-tune: the backbone's blocks first, on these frames and groups; then this run again on the tuned backbone.
  if (strategy === 'fine-tune') return fineTuneRetrain(options, runRetrain, { paths: trainPaths, targets, labels, fold, validation });
  const source = featureSource(features, baseFit, trainPaths, validation?.paths, seed);
  const scoring = { frames, fold, validation: validation && { labels: validation.targets }, features: source, signal };

  // The pipeline, and its honest score.
  const searchStart = performance.now();
  const chosen = await choosePipeline(options, strategy, scoring, budgetMs, kept.length, labels, seed);
  const { spec, score } = chosen;
  const searchMs = performance.now() - searchStart;

  // The final head on every frame (and its views), its probabilities calibrated on the held-out ones.
  const trainStart = performance.now();
  const { train } = await source(spec.crop, { train: spec.trainViews, test: 0 });
  // The last fit of the run of epochs the scoring began (folds, then this one).
  const fits = scoring.validation ? 2 : Math.max(...fold) + 2;
  // fine-tune may bring the classifier that trained with its blocks; else the head is fitted here.
  let head =
    options.tuned?.head ??
    (await fitPipelineHead(train, targets.map((_, i) => i), frames, {
      head: spec.head,
      signal,
      onProgress: (p) => options.onProgress?.({ ...p, phase: 'training', epoch: (fits - 1) * p.epochs + p.epoch, epochs: fits * p.epochs }),
    }));
  const calibration = canCalibrate(head) ? fitSharpness(score.probabilities, score.targets) : 1;
  head = calibrateHead(head, calibration);
  const calibrated = sharpen(score.probabilities, calibration);
  const targetPrecision = options.targetPrecision ?? 0.95;
  const threshold = thresholdForPrecision(calibrated, score.targets, targetPrecision);
  // The novelty gate: how a frame of a new capture compares with the frames its head learnt from.
  const heldOut = validation
    ? heldOutSimilarities((await source(spec.crop, { train: 0, test: 0 })).validation!.plain, { against: train.plain })
    : heldOutSimilarities(train.plain, { fold });
  const rejectLabels = labels.filter((label) => options.rejectLabels?.includes(label));
  const rejectClasses = new Set(rejectLabels.map((label) => labelIndex.get(label)!));
  const { point, curve } = chooseOperatingPoint({ probabilities: calibrated, targets: score.targets, similarities: heldOut, rejectClasses, targetPrecision });
  const openSet: OpenSetSpec = { operatingPoint: point, curve, rejectLabels };
  const novelty = buildNoveltyIndex(train.plain);
  const trainMs = performance.now() - trainStart;

  signal?.throwIfAborted();
  options.onProgress?.({ phase: 'saving' });
  const datasetFingerprint = await dataset.fingerprint();
  const countsPerLabel = Object.fromEntries(labels.map((label) => [label, 0]));
  for (const entry of kept) countsPerLabel[entry.label]++;
  const estimate = describeEstimate(validation ? 'validation-set' : groups.kind === 'sessions' ? 'session-cross-validation' : 'grouped-cross-validation', {
    folds: validation ? 1 : Math.max(...fold) + 1,
    groups: groups.count,
    count: score.targets.length,
    sessions: new Set(kept.map((e) => e.session).filter((s) => s)).size,
  });
  if (options.tuned && estimate.kind !== 'validation-set') {
    // The tuned blocks saw every group but the held-out ones: only those are an honest figure.
    estimate.optimistic = true;
    estimate.note += ` The backbone's tuned blocks trained on most of these frames: trust the fine-tune's held-out accuracy (${(options.tuned.report.validationAccuracy * 100).toFixed(1)} %) or a validation folder more.`;
  }
  const pipeline: PipelineReport = {
    strategy: options.tuned ? 'fine-tune' : chosen.strategy,
    spec,
    candidates: chosen.candidates,
    searchMs,
    budgetMs,
    estimate,
    calibration,
    ...(chosen.testViewsMeasured ? { testViewsMeasured: chosen.testViewsMeasured } : {}),
    searchedOn: chosen.searchedOn,
  };
  const metrics: RetrainMetrics = {
    holdout: score.metrics,
    validation: estimate,
    threshold,
    openSet,
    trainCount: kept.length,
    holdoutCount: score.targets.length,
    countsPerLabel,
    skippedImages,
    headKind: spec.head.kind,
    backend: backbone.backend.name,
    pipeline,
    advice: adviseFromTraining({ countsPerLabel, metrics: score.metrics, estimate, spec, candidates: chosen.candidates, tuned: options.tuned !== undefined }),
    timings: { featuresMs: features.embedMs, cachedFeatures: features.cachedVectors, searchMs, trainMs, totalMs: 0 },
    ...(options.tuned ? { fineTune: options.tuned.report } : {}),
  };
  const saved = await store.saveModel({
    head,
    labels,
    // The model's own preprocessing: frames are fed to it with this fit, whatever the backbone node says later.
    backbone: {
      ...descriptorOf(backbone),
      fit: fitWithCrop(baseFit, spec.crop),
      // A tuned backbone lives in the version, not where it was written during the training.
      ...(options.tuned ? { source: options.tuned.descriptor.folder, tuned: options.tuned.descriptor } : {}),
    },
    ...(options.tuned ? { tunedBackboneDir: options.tuned.dir } : {}),
    metrics: metrics as unknown as Record<string, unknown>,
    pipeline,
    novelty,
    openSet,
    datasetFingerprint,
    modelName: options.modelName,
    activate: options.activate ?? true,
  });
  metrics.timings.totalMs = performance.now() - started;
  return { version: saved.version, activated: saved.active, labels: saved.metadata.classes, metrics, datasetFingerprint };
}

interface ChosenPipeline {
  spec: PipelineSpec;
  score: PipelineScore;
  candidates: CandidateScore[];
  strategy: PipelineReport['strategy'];
  searchedOn: PipelineReport['searchedOn'];
  testViewsMeasured?: PipelineReport['testViewsMeasured'];
}

/** auto: searched, or the previous version's when still fitting; fixed: as given. Scored either way. */
async function choosePipeline(
  options: RetrainOptions,
  strategy: TrainingStrategy,
  scoring: Parameters<typeof scoreSpec>[0],
  budgetMs: number,
  images: number,
  labels: string[],
  seed: number,
): Promise<ChosenPipeline> {
  const testViews = options.testViews;
  const previous = strategy === 'auto' && options.previous && canReuse(options.previous, images, labels) ? options.previous : undefined;
  if (strategy === 'auto' && !previous) {
    const found = await searchPipeline({
      ...scoring,
      budgetMs,
      allowTestViews: testViews === 'auto',
      onCandidate: (done, name) => options.onProgress?.({ phase: 'search', done, name }),
    });
    const searchedOn = { images, labels };
    if (typeof testViews !== 'number' || testViews === found.spec.testViews) {
      return { ...found, strategy, searchedOn };
    }
    const spec = { ...found.spec, testViews };
    return { ...found, spec, score: (await scoreSpec(scoring, spec)).score, strategy, searchedOn };
  }
  const spec: PipelineSpec = previous
    ? { ...previous.spec, testViews: typeof testViews === 'number' ? testViews : previous.spec.testViews }
    : {
        crop: options.crop ?? null,
        head: { kind: 'logistic', seed, ...options.head },
        trainViews: options.trainViews ?? 0,
        testViews: typeof testViews === 'number' ? testViews : 0,
      };
  // One pipeline: its scoring fits and the final one are the training the operator watches, as one run of epochs.
  const { score, embedMs } = await scoreSpec(scoring, spec, (p, fit) =>
    options.onProgress?.({ ...p, phase: 'training', epoch: fit.index * p.epochs + p.epoch, epochs: (fit.count + 1) * p.epochs }),
  );
  const candidate: CandidateScore = {
    name: describeSpec(spec),
    stage: previous ? 'reused' : 'given',
    spec,
    accuracy: score.metrics.accuracy,
    macroF1: score.metrics.macroF1,
    fitMs: score.fitMs,
    embedMs,
    backboneRunsPerFrame: 1 + spec.testViews,
    chosen: true,
  };
  return { spec, score, candidates: [candidate], strategy: previous ? 'reused' : strategy, searchedOn: previous ? previous.searchedOn : { images, labels } };
}

/** The descriptor fields of a loaded backbone: what the store records. */
function descriptorOf(b: Backbone): BackboneDescriptor {
  const { id, source, preset, featureLayer, featureSize, inputSize, inputRange, fit } = b;
  return { id, source, ...(preset !== undefined ? { preset } : {}), featureLayer, featureSize, inputSize, inputRange, fit };
}

function canReuse(previous: PipelineReport, images: number, labels: readonly string[]): boolean {
  const on = previous.searchedOn;
  if (!on || !previous.spec || on.labels.join('\u0000') !== labels.join('\u0000')) return false;
  return images <= on.images * (1 + REUSE_CHANGE) && images >= on.images * (1 - REUSE_CHANGE);
}

/** The validation set's readable frames of labels the training knows (frames of other labels are not scored). */
async function validationFrames(dataset: RetrainDataset, labelIndex: Map<string, number>): Promise<{ paths: string[]; targets: number[] }> {
  const known = (await dataset.entries()).filter((e) => !e.problem && labelIndex.has(e.label));
  if (known.length === 0) {
    throw new LaneVisionError('RETRAIN_VALIDATION_EMPTY', `The validation set holds no readable image of the training labels (${[...labelIndex.keys()].join(', ')}).`);
  }
  return { paths: known.map((e) => e.path), targets: known.map((e) => labelIndex.get(e.label)!) };
}

function describeEstimate(kind: EstimateKind, counts: { folds: number; groups: number; count: number; sessions: number }): ValidationEstimate {
  const note =
    kind === 'validation-set'
      ? `Scored on ${counts.count} frames of the validation set, kept apart from the training frames: the figure to expect on the next shift.`
      : kind === 'session-cross-validation'
        ? `Each of ${counts.sessions} capture sessions held out in turn (${counts.folds} folds): close to what the next shift will see.`
        : `All frames come from one capture session: ${counts.groups} groups of near-duplicates held out in turn (${counts.folds} folds). ` +
          'Likely optimistic: capture frames on another shift or day (or give a validation folder) for a figure that predicts the next shift.';
  return { kind, optimistic: kind === 'grouped-cross-validation', folds: counts.folds, groups: counts.groups, count: counts.count, note };
}

function checkRejectLabels(reject: readonly string[], labels: readonly string[]): void {
  const missing = reject.filter((label) => !labels.includes(label));
  if (missing.length > 0) {
    throw new LaneVisionError('RETRAIN_OPTIONS_INVALID', `Reject label${missing.length > 1 ? 's' : ''} ${missing.map((l) => `"${l}"`).join(', ')} not in the training data (labels: ${labels.join(', ')}).`);
  }
  if (labels.every((label) => reject.includes(label))) {
    throw new LaneVisionError('RETRAIN_OPTIONS_INVALID', 'Every label is a reject class: at least one label must be a product to sort.');
  }
}

function checkRetrainOptions(options: RetrainOptions): void {
  const bad = (message: string): never => {
    throw new LaneVisionError('RETRAIN_OPTIONS_INVALID', message);
  };
  if (options.strategy !== undefined && !TRAINING_STRATEGIES.includes(options.strategy)) bad(`strategy must be ${TRAINING_STRATEGIES.join(', ')}, got ${JSON.stringify(options.strategy)}`);
  if (options.fineTune) {
    try {
      checkFineTuneOptions(options.fineTune);
    } catch (err) {
      bad((err as Error).message);
    }
    const finalHead = options.fineTune.head;
    if (finalHead !== undefined && finalHead !== 'fine-tune' && finalHead !== 'refit') bad(`fine-tune head must be fine-tune or refit, got ${JSON.stringify(finalHead)}`);
    const finalTraining = options.fineTune.finalTraining;
    if (finalTraining !== undefined && typeof finalTraining !== 'boolean') bad(`fine-tune finalTraining must be true or false, got ${JSON.stringify(finalTraining)}`);
    const blocks = options.fineTune.blocks;
    if (blocks !== undefined && !(Number.isInteger(blocks) && blocks >= 1 && blocks <= 8)) bad(`fine-tune blocks must be a whole number from 1 to 8, got ${String(blocks)}`);
  }
  const budget = options.budgetSeconds;
  if (budget !== undefined && !(typeof budget === 'number' && budget > 0 && budget <= 24 * 3600)) bad(`The time budget must be above 0 seconds and at most a day, got ${String(budget)}`);
  const folds = options.folds;
  if (folds !== undefined && !(Number.isInteger(folds) && folds >= 2 && folds <= 20)) bad(`folds must be a whole number from 2 to 20, got ${String(folds)}`);
  const views = options.trainViews;
  if (views !== undefined && !(Number.isInteger(views) && views >= 0 && views <= MAX_VIEWS)) bad(`trainViews must be a whole number from 0 to ${MAX_VIEWS}, got ${String(views)}`);
  const test = options.testViews;
  if (test !== undefined && test !== 'auto' && !(Number.isInteger(test) && test >= 0 && test <= MAX_TEST_VIEWS)) {
    bad(`testViews must be auto or a whole number from 0 to ${MAX_TEST_VIEWS}, got ${String(test)}`);
  }
  const reject = options.rejectLabels;
  if (reject !== undefined && !(Array.isArray(reject) && reject.every((l) => typeof l === 'string'))) bad('rejectLabels must be a list of label names');
  if (options.crop) {
    try {
      checkCrop(options.crop);
    } catch (err) {
      bad((err as Error).message);
    }
  }
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
