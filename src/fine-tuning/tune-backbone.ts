/**
 * Fine-tunes a backbone's last blocks on a training job's frames and writes the tuned
 * backbone as a model folder: the frozen bottom runs once per frame and view (its
 * activations are kept for the whole run, so each epoch only runs the top, and on disk in
 * the activation cache, so the next fine-tune of the same frames skips it), the top and a
 * classifier train on them (fine-tune.ts), and the best epoch's weights are written. The
 * tuned top then runs once more on every activation: those are the tuned backbone's
 * features of every frame and view, which the head's training takes instead of running the
 * whole tuned backbone on the frames again.
 */
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { defaultCacheDir } from '../engine/download-cache.js';
import { DiskFeatureCache, type FeatureCache } from '../features/index.js';
import type { ViewTransform } from '../image/types.js';
import { memoryHandler } from '../engine/tfjs-models.js';
import { readModelFolder } from '../engine/model-files.js';
import type { Backbone } from '../engine/types.js';
import { LaneVisionError } from '../errors.js';
import type { FitPolicy } from '../image/types.js';
import { FrameFeatures, type EmbeddingProgress } from '../pipeline/frame-features.js';
import { augmentationViews } from '../pipeline/views.js';
import { bottomBackbone } from './bottom.js';
import { fineTuneTop, type FineTuneOptions, type FineTuneProgress, type FineTuneResult, type FineTuneSample } from './fine-tune.js';
import { defaultFineTuneBlocks, splitBackbone } from './top-graph.js';
import { topFeatures } from './top-forward.js';
import { writeTunedFolder } from './tuned-folder.js';

export interface TuneBackboneOptions extends Omit<FineTuneOptions, 'onProgress' | 'classCount'> {
  backbone: Backbone;
  paths: readonly string[];
  targets: readonly number[];
  classCount: number;
  /** Per frame: held out for early stopping. */
  heldOut: readonly boolean[];
  fit: FitPolicy;
  /** Augmentation views per frame besides the plain one. */
  trainViews: number;
  /**
   * Once early stopping has chosen the epoch count on the held-out frames, train the blocks
   * again from the pretrained weights, same seed, on every frame (held-out ones included,
   * with their views) for that many epochs, and keep those weights. Only for held-out frames
   * that are the job's own (a grouped fold), not another session's validation set.
   */
  finalTraining?: boolean;
  /** Depthwise blocks to unfreeze (default per backbone family). */
  blocks?: number;
  outDir: string;
  /** Where the bottom's activations are kept between runs; null: not kept. Default: `activations/` in the model cache folder. */
  activationCache?: FeatureCache | null;
  decodeConcurrency?: number;
  beforeStep?: () => Promise<unknown>;
  onActivations?: (progress: EmbeddingProgress) => void;
  onEpoch?: (progress: FineTuneProgress) => void;
}

/** The tuned backbone's features of the job's frames for one fit and view (undefined for an unreadable frame). */
export interface TunedFeatureSet {
  fit: FitPolicy;
  view?: ViewTransform;
  vectors: (Float32Array | undefined)[];
}

export interface TunedBackboneResult extends FineTuneResult {
  dir: string;
  blocks: number;
  cut: string;
  activationMs: number;
  /** Activations found in the activation cache. */
  cachedActivations: number;
  /** Whether the bottom ran on ONNX Runtime or tfjs, and why not ONNX. */
  bottomEngine: string;
  /** Per options.paths, the plain frames' set first, then one per training view. */
  features: TunedFeatureSet[];
  featuresMs: number;
  /** The final training on all frames (options.finalTraining), absent when it did not run (no epoch beat the pretrained blocks, or not asked). */
  finalTraining?: { epochs: number; frames: number; samples: number; trainMs: number; history: FineTuneProgress[] };
}

/** The activation cache a fine-tune uses unless told otherwise; opened once per process. */
let defaultActivationCache: DiskFeatureCache | undefined;
export function sharedActivationCache(): DiskFeatureCache {
  defaultActivationCache ??= new DiskFeatureCache(path.join(defaultCacheDir(), 'activations'));
  return defaultActivationCache;
}

export async function tuneBackbone(options: TuneBackboneOptions): Promise<TunedBackboneResult> {
  const { backbone } = options;
  const files = await readModelFolder(backbone.location);
  if (files.format !== 'layers') {
    throw new LaneVisionError(
      'FINE_TUNE_UNSUPPORTED',
      `Backbone ${backbone.source} is a TensorFlow graph model, whose weights are frozen constants: it cannot be fine-tuned. Use a layers model (e.g. the MobileNet presets) or the auto / fixed strategies.`,
    );
  }
  const model = await tfl.loadLayersModel(memoryHandler(files));
  const blocks = options.blocks ?? defaultFineTuneBlocks(backbone.source);
  let bottomBb: Awaited<ReturnType<typeof bottomBackbone>> | undefined;
  try {
    const { bottom, top, cutPath } = splitBackbone(model, backbone.featureLayer, blocks);
    bottomBb = await bottomBackbone({ base: backbone, files, bottom, cut: top.cut, cutPath });
    const started = performance.now();
    const frames = new FrameFeatures(bottomBb, {
      cache: options.activationCache === undefined ? sharedActivationCache() : options.activationCache,
      signal: options.signal,
      decodeConcurrency: options.decodeConcurrency,
      beforeStep: options.beforeStep,
      onProgress: options.onActivations,
    });
    const sets: { view?: ViewTransform; activations: (Float32Array | Error)[] }[] = [];
    sets.push({ activations: await frames.embed(options.paths, options.fit, undefined, 'activations') });
    for (const [k, view] of augmentationViews(options.trainViews, options.seed ?? 1).entries()) {
      sets.push({ view, activations: await frames.embed(options.paths, options.fit, view, `activations, view ${k + 1}/${options.trainViews}`) });
    }
    const activationMs = performance.now() - started;
    const samples: FineTuneSample[] = [];
    sets.forEach((set, k) =>
      set.activations.forEach((activations, i) => {
        if (activations instanceof Error) return;
        if (k > 0 && options.heldOut[i]) return; // held-out frames are scored on their plain view only
        samples.push({ activations, target: options.targets[i], heldOut: options.heldOut[i], plain: k === 0 });
      }),
    );
    const chosen = await fineTuneTop(top, samples, { ...options, onProgress: options.onEpoch });
    let result = chosen;
    let finalTraining: TunedBackboneResult['finalTraining'];
    if (options.finalTraining && chosen.bestEpoch > 0 && options.heldOut.some(Boolean)) {
      // Every frame and view, the held-out ones now trained on too; nothing is scored, so each epoch is kept and the last one wins.
      const all: FineTuneSample[] = [];
      sets.forEach((set, k) => set.activations.forEach((activations, i) => activations instanceof Error || all.push({ activations, target: options.targets[i], heldOut: false, plain: k === 0 })));
      const stage = 'final training on all frames' as const;
      const final = await fineTuneTop(top, all, { ...options, epochs: chosen.bestEpoch, keep: 'last', onProgress: (p) => options.onEpoch?.({ ...p, stage }) });
      finalTraining = {
        epochs: final.history.length,
        frames: sets[0].activations.filter((a) => !(a instanceof Error)).length,
        samples: final.trainedSamples,
        trainMs: final.trainMs,
        history: final.history.map((p) => ({ ...p, stage })),
      };
      // The fold's figures stay those of the chosen epoch; the weights and head are the final pass's.
      result = { ...chosen, weights: final.weights, head: final.head, trainMs: chosen.trainMs + final.trainMs };
    }
    await writeTunedFolder(files, result.weights, options.outDir);
    const featuresStart = performance.now();
    const features: TunedFeatureSet[] = [];
    for (const set of sets) {
      options.signal?.throwIfAborted();
      const readable = set.activations.filter((a): a is Float32Array => !(a instanceof Error));
      const vectors = await topFeatures(top, result.weights, readable);
      let next = 0;
      features.push({ fit: options.fit, ...(set.view ? { view: set.view } : {}), vectors: set.activations.map((a) => (a instanceof Error ? undefined : vectors[next++])) });
    }
    return {
      ...result,
      dir: options.outDir,
      blocks,
      cut: top.cut,
      activationMs,
      cachedActivations: frames.cachedVectors,
      bottomEngine: bottomBb.engineNote ?? bottomBb.engine.name,
      features,
      featuresMs: performance.now() - featuresStart,
      ...(finalTraining ? { finalTraining } : {}),
    };
  } finally {
    bottomBb?.dispose();
    model.dispose();
  }
}
