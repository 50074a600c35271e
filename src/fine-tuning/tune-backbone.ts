/**
 * Fine-tunes a backbone's last blocks on a training job's frames and writes the tuned
 * backbone as a model folder: the frozen bottom runs once per frame and view (its
 * activations are kept for the whole run, so each epoch only runs the top), the top and
 * a classifier train on them (fine-tune.ts), and the best epoch's weights are written.
 */
import * as tfl from '@tensorflow/tfjs-layers';
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
  /** Depthwise blocks to unfreeze (default per backbone family). */
  blocks?: number;
  outDir: string;
  decodeConcurrency?: number;
  beforeStep?: () => Promise<unknown>;
  onActivations?: (progress: EmbeddingProgress) => void;
  onEpoch?: (progress: FineTuneProgress) => void;
}

export interface TunedBackboneResult extends FineTuneResult {
  dir: string;
  blocks: number;
  cut: string;
  activationMs: number;
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
    const { bottom, top } = splitBackbone(model, backbone.featureLayer, blocks);
    bottomBb = await bottomBackbone(backbone, bottom, top.cut);
    const started = performance.now();
    const frames = new FrameFeatures(bottomBb, {
      cache: null,
      signal: options.signal,
      decodeConcurrency: options.decodeConcurrency,
      beforeStep: options.beforeStep,
      onProgress: options.onActivations,
    });
    const samples: FineTuneSample[] = [];
    const add = (results: (Float32Array | Error)[], plain: boolean) =>
      results.forEach((activations, i) => {
        if (activations instanceof Error) return;
        if (!plain && options.heldOut[i]) return; // held-out frames are scored on their plain view only
        samples.push({ activations, target: options.targets[i], heldOut: options.heldOut[i], plain });
      });
    add(await frames.embed(options.paths, options.fit, undefined, 'activations'), true);
    for (const [k, view] of augmentationViews(options.trainViews, options.seed ?? 1).entries()) {
      add(await frames.embed(options.paths, options.fit, view, `activations, view ${k + 1}/${options.trainViews}`), false);
    }
    const activationMs = performance.now() - started;
    const result = await fineTuneTop(top, samples, { ...options, onProgress: options.onEpoch });
    await writeTunedFolder(files, result.weights, options.outDir);
    return { ...result, dir: options.outDir, blocks, cut: top.cut, activationMs };
  } finally {
    bottomBb?.dispose();
    model.dispose();
  }
}
