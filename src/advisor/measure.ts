/**
 * The measures the advisor reads that a training does not take anyway: how separable the
 * labels are at the feature layer and at an earlier layer (grouped cross-validation of a
 * nearest-class-mean classifier, which needs no fitting), and how confident the backbone's
 * own ImageNet classifier is on the frames.
 */
import type { Backbone } from '../engine/types.js';
import { embedImagesSettled } from '../features/index.js';
import type { FitPolicy } from '../image/types.js';
import { crossValidatePipeline } from '../pipeline/score.js';

/**
 * Layers a little before each family's feature layer (per Keras / TF-Slim naming): far
 * enough back to be less ImageNet-specific, near enough to stay a good description.
 * The first that the backbone has is used.
 */
export const EARLIER_LAYERS: readonly string[] = [
  'block_13_expand_relu', // MobileNet V2 (Keras)
  'conv_pw_11_relu', // MobileNet V1 (Keras)
  'mixed7', // Inception V3 (Keras)
  'module_apply_default/MobilenetV1/MobilenetV1/Conv2d_11_pointwise/Relu6', // MobileNet V1 (TF Hub graph)
];

/** Grouped-CV accuracy of a nearest-class-mean classifier on `features`. */
export async function separability(features: readonly Float32Array[], labels: readonly number[], labelNames: readonly string[], fold: Int32Array): Promise<number> {
  const score = await crossValidatePipeline({ plain: [...features], views: [], testViews: [] }, { labels, classCount: labelNames.length, labelNames }, fold, { head: { kind: 'prototype' } });
  return score.metrics.accuracy;
}

/** Mean top-1 probability of the backbone's own classifier on up to `limit` of the frames; undefined when it has none. */
export async function imagenetConfidence(backbone: Backbone, paths: readonly string[], fit: FitPolicy, limit = 64): Promise<number | undefined> {
  if (backbone.engine.outputSize === 0) return undefined;
  const step = Math.max(1, Math.floor(paths.length / limit));
  const sample = paths.filter((_, i) => i % step === 0).slice(0, limit);
  const report = await embedImagesSettled(backbone, sample, { output: 'classifier', fit, cache: null });
  const tops = report.results.flatMap((r) => ('error' in r ? [] : [Math.max(...r.features)]));
  return tops.length ? tops.reduce((a, b) => a + b, 0) / tops.length : undefined;
}
