/**
 * ImageNet class names and top-k reading of a classifier's probabilities, for using a
 * pretrained classification model as it is (and for checking a backbone is sane).
 */
import { LaneVisionError } from '../errors.js';
import IMAGENET_CLASS_LIST from './imagenet-classes.json';

/** The 1000 ImageNet classes in Keras order (index 0 = tench). */
export const IMAGENET_CLASSES: readonly string[] = Object.freeze([...(IMAGENET_CLASS_LIST as string[])]);

/** Label used for output 0 of 1001-way TF-Slim models. */
export const IMAGENET_BACKGROUND = 'background';

/**
 * ImageNet labels matching a classifier with `outputSize` outputs: 1000 (Keras) or 1001
 * (TF-Slim / TF Hub, output 0 is "background", class i is output i + 1). Otherwise undefined.
 */
export function imagenetLabelsFor(outputSize: number): readonly string[] | undefined {
  if (outputSize === IMAGENET_CLASSES.length) return IMAGENET_CLASSES;
  if (outputSize === IMAGENET_CLASSES.length + 1) return [IMAGENET_BACKGROUND, ...IMAGENET_CLASSES];
  return undefined;
}

export interface RankedClass {
  label: string;
  /** Index into the probabilities given. */
  index: number;
  probability: number;
}

/** The `k` most probable classes, best first; entries listed in `skip` are left out. */
export function topK(probabilities: ArrayLike<number>, labels: readonly string[], k = 5, skip: readonly number[] = []): RankedClass[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i)
    .filter((i) => !skip.includes(i))
    .sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, Math.max(0, k)).map((index) => ({ label: labels[index] ?? `class ${index}`, index, probability: probabilities[index] }));
}

export interface ImagenetClass {
  label: string;
  /** ImageNet class index 0..999 (Keras order), whatever the model's output layout. */
  classIndex: number;
  probability: number;
}

/**
 * Top-k ImageNet classes from a 1000- or 1001-way probability vector (the background
 * output of 1001-way models is skipped, and indices are mapped back to 0..999).
 */
export function imagenetTopK(probabilities: ArrayLike<number>, k = 5): ImagenetClass[] {
  const labels = imagenetLabelsFor(probabilities.length);
  if (!labels) {
    throw new LaneVisionError(
      'NOT_IMAGENET_OUTPUT',
      `Expected 1000 or 1001 ImageNet probabilities, got ${probabilities.length}: this model is not an ImageNet classifier`,
    );
  }
  const offset = probabilities.length - IMAGENET_CLASSES.length;
  return topK(probabilities, labels, k, offset ? [0] : []).map((r) => ({
    label: r.label,
    classIndex: r.index - offset,
    probability: r.probability,
  }));
}
