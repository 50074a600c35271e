/**
 * Temperature scaling (Guo et al., 2017) on held-out predictions: one sharpness factor
 * that makes the head's probabilities mean what they say on frames it did not train on.
 * A head fitted to its own frames is overconfident on new ones (an SVM's margins are
 * not probabilities at all), and the confidence threshold and the operator's trust both
 * read these numbers.
 */
import type { TrainedHead } from '../training/index.js';

const FLOOR = 1e-7;
const LIMITS = { low: 0.05, high: 20 } as const;

/**
 * The factor s minimising the cross-entropy of softmax(s * log p) against the true
 * labels. Convex in s, so a golden-section search finds it; 1 when there is nothing to fit.
 */
export function fitSharpness(probabilities: readonly Float32Array[], targets: readonly number[]): number {
  if (probabilities.length === 0) return 1;
  const logs = probabilities.map((p) => Float64Array.from(p, (v) => Math.log(Math.max(v, FLOOR))));
  const loss = (s: number): number => {
    let total = 0;
    logs.forEach((row, i) => {
      let max = -Infinity;
      for (const v of row) max = Math.max(max, s * v);
      let sum = 0;
      for (const v of row) sum += Math.exp(s * v - max);
      total += max + Math.log(sum) - s * row[targets[i]];
    });
    return total / logs.length;
  };
  const golden = (Math.sqrt(5) - 1) / 2;
  let low: number = LIMITS.low;
  let high: number = LIMITS.high;
  for (let i = 0; i < 80 && high - low > 1e-3; i++) {
    const a = high - golden * (high - low);
    const b = low + golden * (high - low);
    if (loss(a) < loss(b)) high = b;
    else low = a;
  }
  return (low + high) / 2;
}

/** softmax(s * log p) for each row. */
export function sharpen(probabilities: readonly Float32Array[], sharpness: number): Float32Array[] {
  if (sharpness === 1) return probabilities.map((p) => p.slice());
  return probabilities.map((p) => {
    const out = new Float32Array(p.length);
    let max = -Infinity;
    for (const v of p) max = Math.max(max, sharpness * Math.log(Math.max(v, FLOOR)));
    let sum = 0;
    p.forEach((v, c) => (sum += out[c] = Math.exp(sharpness * Math.log(Math.max(v, FLOOR)) - max)));
    for (let c = 0; c < out.length; c++) out[c] /= sum;
    return out;
  });
}

/**
 * The head with its probabilities sharpened by `sharpness`: a dense head's last layer (its
 * logits) scaled, a similarity head's temperature divided. knn votes are not a softmax
 * of logits and stay as they are.
 */
export function calibrateHead(head: TrainedHead, sharpness: number): TrainedHead {
  if (sharpness === 1) return head;
  if (head.layers) {
    const layers = head.layers.map((layer, i) =>
      i === head.layers!.length - 1
        ? { ...layer, kernel: layer.kernel.map((v) => v * sharpness), bias: layer.bias.map((v) => v * sharpness) }
        : layer,
    );
    return { ...head, layers };
  }
  if (head.kind === 'prototype') return { ...head, temperature: (head.temperature ?? 1) / sharpness };
  return head;
}

/** Whether calibrateHead changes this kind of head (so fitting a sharpness for it is worthwhile). */
export function canCalibrate(head: TrainedHead): boolean {
  return head.layers !== undefined || head.kind === 'prototype';
}
