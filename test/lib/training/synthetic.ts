/**
 * Seeded synthetic feature vectors for the training tests: Gaussian clusters around
 * random class centres, so separability is set by `spread` and every run repeats.
 */
import { createRandom, randomNormal, type RandomSource } from '../../../src/random.js';

export interface LabelledFeatures {
  features: Float32Array[];
  labels: number[];
  classCount: number;
}

/** Unit-length random directions, one per class (nearly orthogonal in high dimension). */
export function makeCentres(classCount: number, featureSize: number, seed: number): Float32Array[] {
  const random = createRandom(seed);
  return Array.from({ length: classCount }, () => {
    const centre = Float32Array.from({ length: featureSize }, () => randomNormal(random));
    const norm = Math.hypot(...centre);
    return centre.map((v) => v / norm);
  });
}

/**
 * `perClass[c]` examples of class c: centre + noise whose expected length is `spread`
 * (centres are ~1.4 apart, so spread 0.2 is well separated and 1.5 overlaps a lot).
 */
export function sampleClusters(
  centres: readonly Float32Array[],
  perClass: number | readonly number[],
  spread: number,
  seed: number,
): LabelledFeatures {
  const random: RandomSource = createRandom(seed);
  const featureSize = centres[0].length;
  const scale = spread / Math.sqrt(featureSize);
  const features: Float32Array[] = [];
  const labels: number[] = [];
  centres.forEach((centre, c) => {
    const count = typeof perClass === 'number' ? perClass : perClass[c];
    for (let i = 0; i < count; i++) {
      features.push(Float32Array.from(centre, (v) => v + scale * randomNormal(random)));
      labels.push(c);
    }
  });
  return { features, labels, classCount: centres.length };
}

/** Share of `data` whose most probable class is the label. */
export function accuracyOf(predict: (feature: Float32Array) => Float32Array, data: LabelledFeatures): number {
  let correct = 0;
  data.features.forEach((feature, i) => {
    const p = predict(feature);
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
    if (best === data.labels[i]) correct++;
  });
  return correct / data.features.length;
}

/** Recall of one class: share of its examples predicted as it. */
export function recallOf(predict: (feature: Float32Array) => Float32Array, data: LabelledFeatures, cls: number): number {
  let hits = 0;
  let total = 0;
  data.features.forEach((feature, i) => {
    if (data.labels[i] !== cls) return;
    total++;
    const p = predict(feature);
    let best = 0;
    for (let c = 1; c < p.length; c++) if (p[c] > p[best]) best = c;
    if (best === cls) hits++;
  });
  return hits / total;
}
