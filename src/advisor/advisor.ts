/**
 * The scenario advisor: which of the four classic transfer-learning situations a dataset
 * is in (small or large data, similar to ImageNet or not), what Lane Vision does about it,
 * and what would help most. The seeds' table:
 *
 *               | similar to ImageNet                  | different
 *   small data  | features + linear classifier         | an earlier layer + SVM
 *   large data  | fine-tune the top layers             | fine-tune more layers / train from scratch
 *
 * Pure: it reads measures (counts, the honest accuracy estimate and its confusions, how
 * separable the labels are at the feature layer and at an earlier one, how sure the
 * backbone's own ImageNet classifier is) and returns plain data.
 */
import type { HeadMetrics } from '../training/index.js';
import type { CandidateScore, PipelineSpec, ValidationEstimate } from '../pipeline/types.js';

export type DataSize = 'small' | 'large';
export type Similarity = 'similar' | 'different' | 'unknown';

export interface AdvisorMeasures {
  countsPerLabel: Record<string, number>;
  /** The honest estimate of the trained pipeline (its confusion names the look-alike labels). */
  metrics?: HeadMetrics;
  estimate?: ValidationEstimate;
  spec?: PipelineSpec;
  candidates?: readonly CandidateScore[];
  /** Grouped-CV accuracy of a nearest-class-mean classifier on the feature layer's vectors. */
  featureSeparability?: number;
  /** The same on an earlier layer, and its name. */
  earlierLayer?: { name: string; separability: number };
  /** Mean top-1 probability of the backbone's own ImageNet classifier on the frames. */
  imagenetConfidence?: number;
  /** The pipeline ran on a fine-tuned backbone already. */
  tuned?: boolean;
}

export interface Advice {
  dataSize: DataSize;
  similarity: Similarity;
  /** The seeds' name for the situation, e.g. "small data, similar to ImageNet". */
  scenario: string;
  /** What the seeds prescribe for it. */
  prescription: string;
  /** What Lane Vision does about it. */
  action: string;
  /** Most helpful first. */
  recommendations: string[];
  measures: {
    labels: number;
    images: number;
    examplesPerLabel: { min: number; median: number; max: number };
    accuracy?: number;
    featureSeparability?: number;
    earlierLayer?: { name: string; separability: number };
    imagenetConfidence?: number;
  };
}

/** At least this many images, and per label at the median, make the data large enough for fine-tuning to pay (issue 13 measured +4 points on 864 images, about 28 per label). */
export const LARGE_DATA = { images: 500, medianPerLabel: 20 } as const;
/** Fewer examples than this for a label: the first advice is more of them. */
const FEW_EXAMPLES = 10;
/** Features this separable (nearest class mean, grouped) count as ImageNet-like for the labels. */
const SIMILAR_SEPARABILITY = 0.6;
/** An earlier layer must separate the labels this much better to call the data different from ImageNet. */
const EARLIER_LAYER_MARGIN = 0.03;
const CONFIDENT_IMAGENET = 0.5;

export function adviseScenario(m: AdvisorMeasures): Advice {
  const counts = Object.values(m.countsPerLabel);
  const sorted = [...counts].sort((a, b) => a - b);
  const images = counts.reduce((a, b) => a + b, 0);
  const median = sorted.length ? sorted[sorted.length >> 1] : 0;
  const dataSize: DataSize = images >= LARGE_DATA.images && median >= LARGE_DATA.medianPerLabel ? 'large' : 'small';
  const similarity = judgeSimilarity(m);

  const scenario = `${dataSize} data, ${similarity === 'different' ? 'different from' : similarity === 'similar' ? 'similar to' : 'unknown likeness to'} ImageNet`;
  const prescribed = prescribe(dataSize, similarity);
  const { prescription } = prescribed;
  const action = m.tuned
    ? "This version's backbone blocks are fine-tuned: compare its estimate with the frozen version's; if it is not better, unfreeze more blocks (--blocks) or add frames of another session."
    : prescribed.action;
  return {
    dataSize,
    similarity,
    scenario,
    prescription,
    action,
    recommendations: recommend(m, dataSize, similarity),
    measures: {
      labels: counts.length,
      images,
      examplesPerLabel: { min: sorted[0] ?? 0, median, max: sorted[sorted.length - 1] ?? 0 },
      ...(m.metrics ? { accuracy: m.metrics.accuracy } : {}),
      ...(m.featureSeparability !== undefined ? { featureSeparability: m.featureSeparability } : {}),
      ...(m.earlierLayer ? { earlierLayer: m.earlierLayer } : {}),
      ...(m.imagenetConfidence !== undefined ? { imagenetConfidence: m.imagenetConfidence } : {}),
    },
  };
}

/** The advice a retrain can give from what it measured anyway (no extra backbone runs). */
export function adviseFromTraining(m: Pick<AdvisorMeasures, 'countsPerLabel' | 'metrics' | 'estimate' | 'spec' | 'candidates' | 'tuned'>): Advice {
  const prototype = m.candidates?.find((c) => c.spec.head.kind === 'prototype' && c.accuracy !== null);
  return adviseScenario({ ...m, featureSeparability: prototype?.accuracy ?? undefined });
}

function judgeSimilarity(m: AdvisorMeasures): Similarity {
  const at = m.featureSeparability ?? m.metrics?.accuracy;
  if (m.earlierLayer && at !== undefined && m.earlierLayer.separability > at + EARLIER_LAYER_MARGIN) return 'different';
  if (at !== undefined) {
    if (at >= SIMILAR_SEPARABILITY) return 'similar';
    // Poorly separable, and the backbone itself does not recognise much: far from ImageNet.
    if (m.imagenetConfidence === undefined || m.imagenetConfidence < CONFIDENT_IMAGENET) return 'different';
    return 'similar';
  }
  return 'unknown';
}

function prescribe(size: DataSize, similarity: Similarity): { prescription: string; action: string } {
  if (size === 'small' && similarity !== 'different') {
    return {
      prescription: 'use the backbone as a feature extractor and train a linear classifier on its features',
      action: 'Lane Vision trains a linear head (logistic regression or SVM, chosen by validation) on frozen features, with the crop and views the search found.',
    };
  }
  if (size === 'small') {
    return {
      prescription: 'take features from an earlier layer, which is less specific to ImageNet, and train an SVM on them',
      action: 'Try an earlier feature layer with the svm head (train --layer <earlier layer> --strategy fixed --head svm) and compare its estimate; the search keeps the feature layer.',
    };
  }
  if (similarity !== 'different') {
    return {
      prescription: 'fine-tune the top layers of the backbone with a lower learning rate for the old layers',
      action: 'Train with the fine-tune strategy (train --strategy fine-tune, the lane-train or console choice): it trains the last blocks of the backbone at a 10x lower learning rate than the head.',
    };
  }
  return {
    prescription: 'fine-tune more layers, or train the network from scratch',
    action: 'Frozen features are a weak fit here: train with --strategy fine-tune and more blocks (--blocks 3 or more), or train a network on this data.',
  };
}

function recommend(m: AdvisorMeasures, size: DataSize, similarity: Similarity): string[] {
  const out: string[] = [];
  const few = Object.entries(m.countsPerLabel)
    .filter(([, n]) => n < FEW_EXAMPLES)
    .sort((a, b) => a[1] - b[1]);
  if (few.length > 0) {
    out.push(`Add frames of ${few.slice(0, 5).map(([label, n]) => `${label} (${n}, want ${FEW_EXAMPLES}+)`).join(', ')}: below ${FEW_EXAMPLES} a label is learnt from too few looks.`);
  }
  const metrics = m.metrics;
  if (metrics) {
    for (const pair of confusedPairs(metrics).slice(0, 3)) {
      out.push(`${pair.actual} is taken for ${pair.predicted} in ${pair.count} of ${pair.support} held-out frames: show more frames of both, especially the sides that tell them apart.`);
    }
  }
  if (m.estimate?.optimistic) {
    out.push('All frames come from one session: capture a few frames per label on another shift or day (or train with --validation) so the accuracy predicts the next shift.');
  }
  const crop = m.spec?.crop;
  if (crop && 'fraction' in crop && crop.fraction < 0.8) {
    out.push(`The best crop kept the centre ${Math.round(crop.fraction * 100)} % of the frame: a tighter region of interest on the backbone node gives the backbone more pixels of the product.`);
  }
  if (size === 'large' && m.spec && !m.tuned) out.push('There is enough data to fine-tune the top of the backbone: train --strategy fine-tune (or choose it in the console) and compare its estimate.');
  if (similarity === 'different') out.push('The labels separate better at an earlier layer: try it with the svm head, or fine-tune more layers.');
  return out;
}

/** Off-diagonal confusion cells, largest share of the true label first. */
export function confusedPairs(metrics: HeadMetrics): { actual: string; predicted: string; count: number; support: number }[] {
  const pairs: { actual: string; predicted: string; count: number; support: number }[] = [];
  metrics.confusion.forEach((row, actual) => {
    const support = row.reduce((a, b) => a + b, 0);
    row.forEach((count, predicted) => {
      if (predicted !== actual && count > 0) pairs.push({ actual: metrics.perClass[actual].label, predicted: metrics.perClass[predicted].label, count, support });
    });
  });
  return pairs.sort((a, b) => b.count / b.support - a.count / a.support || b.count - a.count);
}
