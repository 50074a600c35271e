/**
 * The fine-tune strategy: the backbone's last blocks are trained on the job's frames
 * (src/fine-tuning), then the ordinary fixed pipeline runs on the tuned backbone, whose
 * folder the new version keeps. Early stopping holds out the validation set, else one grouped fold.
 */
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { loadBackbone } from '../engine/load-backbone.js';
import type { Backbone } from '../engine/types.js';
import { FeatureCache, sharedFeatureCache } from '../features/index.js';
import { tunedSpec, tuneBackbone, type FineTuneOptions, type FineTuneProgress, type TunedFeatureSet } from '../fine-tuning/index.js';
import { readImageSource } from '../image/index.js';
import type { CropRegion } from '../image/types.js';
import { TUNED_WEIGHTS_FILE, type TunedBackbone } from '../model-store/index.js';
import { fitWithCrop } from '../pipeline/index.js';
import type { TrainedHead } from '../training/index.js';
import type { RetrainOptions, RetrainResult } from './retrain.js';

export interface FineTuneSettings extends Pick<FineTuneOptions, 'epochs' | 'patience' | 'headLearningRate' | 'backboneLearningRateFactor' | 'weightDecay' | 'keep'> {
  blocks?: number;
  /**
   * The version's head: the classifier trained with the blocks (`fine-tune`), or a logistic
   * head fitted afresh on the tuned features of every frame (`refit`). Default in FINE_TUNE_HEAD.
   */
  head?: 'fine-tune' | 'refit';
  /**
   * With a grouped fold held out: once early stopping has chosen the epoch count, train the
   * blocks again on every frame, fold included, for that many epochs. Default in FINE_TUNE_FINAL_TRAINING.
   */
  finalTraining?: boolean;
}

/**
 * Off: on the 31 shared packages (crop 0.625, 6 views, a grouped fold of 181 frames) it gave
 * 86 % on val/ against 84 % without, but the second training (3 epochs on 864 frames instead
 * of 683) took 6 min more, 11.9 min in all (12.7 min of CPU), over the 10 minutes on 2 cores
 * a retrain may take (README).
 */
export const FINE_TUNE_FINAL_TRAINING = false;

export const FINE_TUNE_HEAD: NonNullable<FineTuneSettings['head']> = 'refit';

export interface FineTuneReport {
  blocks: number;
  cut: string;
  /** Which head the version serves (FineTuneSettings.head). */
  head: 'fine-tune' | 'refit';
  /** Accuracy of the fine-tune's own classifier on the held-out frames (the validation set, else one fold of capture groups), at the best epoch. */
  validationAccuracy: number;
  /** The same before any epoch: the pretrained blocks with the frozen pipeline's head. */
  frozenValidationAccuracy: number;
  heldOutKind: 'validation-set' | 'grouped-fold';
  heldOutFrames: number;
  bestEpoch: number;
  history: FineTuneProgress[];
  /**
   * The final training on all frames (FineTuneSettings.finalTraining): its epochs (the fold's
   * bestEpoch), the frames and samples (frames times views) it trained on; the version's blocks
   * are these. Absent when it did not run (validation set given, no epoch beat the pretrained blocks, or turned off).
   */
  finalTraining?: { epochs: number; frames: number; samples: number; trainMs: number; history: FineTuneProgress[] };
  activationMs: number;
  /** Activations read from the activation cache instead of running the bottom. */
  cachedActivations: number;
  /** What ran the frozen bottom (onnxruntime, tfjs's backend, or why not ONNX). */
  bottomEngine: string;
  trainMs: number;
  /** The tuned top run on every activation: the head's features, without running the tuned backbone on the frames. */
  featuresMs: number;
  /** Resident memory at the end of the fine-tune, MB (the peak is near it: activations and weights stay until then). */
  rssMb: number;
}

export interface TunedRun {
  descriptor: TunedBackbone;
  dir: string;
  report: FineTuneReport;
  /** The head to save instead of fitting one (FineTuneSettings.head 'fine-tune'). */
  head?: TrainedHead;
}

/** Crop used when neither the options nor the active version's pipeline give one (train auto first to search it). */
const DEFAULT_CROP: CropRegion = { fraction: 0.7 };
/**
 * Augmentation views per frame the blocks train on, at least (more when the active
 * version's pipeline has more): the blocks need more varied frames than a head does. On the
 * 31 shared packages (crop 0.625, val/ photos of another session) 6 views gave 84 % where 3
 * gave 81 % (frozen pipeline: 82 %), for 7/4 the samples per epoch (90 s against 77 s on busy cores).
 */
export const FINE_TUNE_MIN_VIEWS = 6;
export const TUNED_FOLDER = 'backbone';

/** The training job's readable frames as the frozen pipeline sees them: labels, targets, grouped folds, the validation set. */
export interface JobFrames {
  paths: readonly string[];
  targets: readonly number[];
  labels: readonly string[];
  fold: Int32Array;
  validation?: { paths: string[]; targets: number[] };
}

export async function fineTuneRetrain(options: RetrainOptions, runFixed: (options: RetrainOptions) => Promise<RetrainResult>, frames: JobFrames): Promise<RetrainResult> {
  const started = performance.now();
  const { backbone, signal } = options;
  const seed = options.seed ?? 1;
  const baseFit = options.fit ?? backbone.fit;
  const crop = options.crop !== undefined ? options.crop : (options.previous?.spec?.crop ?? DEFAULT_CROP);
  const trainViews = options.trainViews ?? Math.max(FINE_TUNE_MIN_VIEWS, options.previous?.spec?.trainViews ?? 0);

  // Early stopping on another session when one is given (what predicts the next shift), else on one grouped fold.
  const validation = frames.validation;
  const heldOut = validation ? [...frames.paths.map(() => false), ...validation.paths.map(() => true)] : Array.from(frames.fold, (f) => f === 0);
  const tunePaths = [...frames.paths, ...(validation?.paths ?? [])];
  const tuneTargets = [...frames.targets, ...(validation?.targets ?? [])];

  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-fine-tune-'));
  // The folder is named as it will be inside the version, so the backbone id is the same there.
  const dir = path.join(work, TUNED_FOLDER);
  let tunedBackbone: Backbone | undefined;
  try {
    const tuned = await tuneBackbone({
      ...options.fineTune,
      backbone,
      paths: tunePaths,
      targets: tuneTargets,
      classCount: frames.labels.length,
      heldOut,
      fit: fitWithCrop(baseFit, crop),
      trainViews,
      seed,
      signal,
      outDir: dir,
      decodeConcurrency: options.decodeConcurrency,
      beforeStep: options.beforeStep,
      ...(options.activationCache !== undefined ? { activationCache: options.activationCache } : {}),
      onActivations: (p) => options.onProgress?.({ phase: 'features', ...p }),
      // Another session's frames are only scored; the job's own held-out groups are trained on at the end.
      finalTraining: !validation && (options.fineTune?.finalTraining ?? FINE_TUNE_FINAL_TRAINING),
      onEpoch: (p) => options.onProgress?.({ phase: 'fine-tune', ...p }),
    });
    signal?.throwIfAborted();
    tunedBackbone = await loadBackbone(tunedSpec(dir, backbone), { engine: backbone.engine.name === 'onnxruntime' ? 'auto' : 'tfjs' });
    const weights = await fs.readFile(path.join(dir, TUNED_WEIGHTS_FILE));
    // null asks for no cache beyond this run: the tuned features then live in one of its own.
    const cache = options.cache === undefined ? sharedFeatureCache : (options.cache ?? new FeatureCache());
    await seedTunedFeatures(cache, tunedBackbone.id, tunePaths, tuned.features);
    const report: FineTuneReport = {
      blocks: tuned.blocks,
      cut: tuned.cut,
      head: options.fineTune?.head ?? FINE_TUNE_HEAD,
      validationAccuracy: tuned.validationAccuracy,
      frozenValidationAccuracy: tuned.frozenValidationAccuracy,
      heldOutKind: validation ? 'validation-set' : 'grouped-fold',
      heldOutFrames: heldOut.filter(Boolean).length,
      bestEpoch: tuned.bestEpoch,
      history: tuned.history,
      ...(tuned.finalTraining ? { finalTraining: tuned.finalTraining } : {}),
      activationMs: tuned.activationMs,
      cachedActivations: tuned.cachedActivations,
      bottomEngine: tuned.bottomEngine,
      trainMs: tuned.trainMs,
      featuresMs: tuned.featuresMs,
      rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
    const result = await runFixed({
      ...options,
      strategy: 'fixed',
      backbone: tunedBackbone,
      cache,
      crop,
      trainViews,
      previous: undefined,
      tuned: {
        descriptor: { from: backbone.id, folder: TUNED_FOLDER, sha256: createHash('sha256').update(weights).digest('hex'), blocks: tuned.blocks, cut: tuned.cut },
        dir,
        report,
        ...((options.fineTune?.head ?? FINE_TUNE_HEAD) === 'fine-tune' ? { head: tuned.head } : {}),
      },
    });
    // The whole run, the blocks' training included (the stored metrics time the head's part).
    result.metrics.timings.totalMs = performance.now() - started;
    return result;
  } finally {
    tunedBackbone?.release();
    await fs.rm(work, { recursive: true, force: true });
  }
}

/**
 * Puts the tuned backbone's features, as the tuned top computed them from the cached
 * activations, in the feature cache under the tuned backbone's keys: the head's training
 * then finds every frame and view it needs at the fine-tune's crop there. They match what
 * the tuned backbone gives to 1e-4 (the top's plain ops against its convolutions).
 */
async function seedTunedFeatures(cache: FeatureCache, tunedId: string, paths: readonly string[], sets: readonly TunedFeatureSet[]): Promise<void> {
  for (let i = 0; i < paths.length; i++) {
    if (sets.every((set) => !set.vectors[i])) continue;
    let hash: string;
    try {
      hash = (await readImageSource(paths[i])).hash;
    } catch {
      continue; // unreadable now: the head's training reports it
    }
    for (const set of sets) {
      const vector = set.vectors[i];
      if (vector) cache.set(FeatureCache.key(tunedId, set.fit, hash, set.view), vector);
    }
  }
}
