/**
 * Accept, or send to inspection, and why. Three gates, in order:
 *   1. unknown-product: the frame is farther from every training frame than the model's
 *      similarity threshold (a product, an empty belt or a hand it was never shown);
 *   2. reject-class: it looks most like a label marked as a reject class ("other
 *      products"), which is trained like any label but never sorted into a bin;
 *   3. low-confidence: the top probability is below the confidence threshold.
 * Otherwise accepted. Training chooses both thresholds for a target precision on held-out
 * frames (the operating point), and lane-classify applies them unless told otherwise.
 */
import { argMax } from '../training/vectors.js';

export type DecisionReason = 'accepted' | 'low-confidence' | 'unknown-product' | 'reject-class';
export const DECISION_REASONS: readonly DecisionReason[] = ['accepted', 'low-confidence', 'unknown-product', 'reject-class'];

export interface OpenSetThresholds {
  /** Accept only when the top probability is at least this. */
  confidence: number;
  /** Accept only when the nearest training frame is at least this similar; null: no novelty gate. */
  similarity: number | null;
}

export function decide(probabilities: ArrayLike<number>, similarity: number | undefined, thresholds: OpenSetThresholds, rejectClasses: ReadonlySet<number>): { reason: DecisionReason; top: number } {
  const top = argMax(probabilities);
  if (thresholds.similarity !== null && similarity !== undefined && similarity < thresholds.similarity) return { reason: 'unknown-product', top };
  if (rejectClasses.has(top)) return { reason: 'reject-class', top };
  if (probabilities[top] < thresholds.confidence) return { reason: 'low-confidence', top };
  return { reason: 'accepted', top };
}

export interface OperatingPoint extends OpenSetThresholds {
  targetPrecision: number;
  /** False when no confidence threshold reaches the target on the held-out frames. */
  reached: boolean;
  /** Of the accepted held-out frames, the share whose label is right. */
  precision: number | null;
  /** Of the held-out frames of products (not reject classes), the share accepted. */
  coverage: number;
  /** Share of known frames the similarity gate alone sends to inspection. */
  knownRejectedAsUnknown: number;
}

export interface CurvePoint {
  confidence: number;
  similarity: number | null;
  precision: number | null;
  coverage: number;
}

/** Share of known held-out frames the novelty gate may send to inspection: it is set at this quantile of their similarity. */
export const DEFAULT_KNOWN_LOSS = 0.03;
const CURVE_POINTS = 21;

export interface OperatingPointInput {
  /** Held-out (out-of-fold) probabilities, calibrated. */
  probabilities: readonly ArrayLike<number>[];
  targets: readonly number[];
  /** Held-out similarity of each frame to the frames its head trained on; omitted: no novelty gate. */
  similarities?: readonly number[];
  rejectClasses: ReadonlySet<number>;
  targetPrecision: number;
  knownLoss?: number;
}

/**
 * The thresholds to serve with: the similarity gate at the `knownLoss` quantile of the
 * known frames' held-out similarity, then the lowest confidence threshold whose accepted
 * frames reach the target precision (the one that sends the fewest to inspection).
 * Also the precision/coverage curve over confidence thresholds at that similarity gate.
 */
export function chooseOperatingPoint(input: OperatingPointInput): { point: OperatingPoint; curve: CurvePoint[] } {
  const { probabilities, targets, rejectClasses, targetPrecision } = input;
  const productFrames = targets.map((t, i) => i).filter((i) => !rejectClasses.has(targets[i]));
  let similarity: number | null = null;
  if (input.similarities && input.similarities.length === targets.length && productFrames.length > 0) {
    const sorted = productFrames.map((i) => input.similarities![i]).sort((a, b) => a - b);
    similarity = sorted[Math.min(sorted.length - 1, Math.floor((input.knownLoss ?? DEFAULT_KNOWN_LOSS) * sorted.length))];
  }
  const evaluate = (confidence: number): CurvePoint => {
    let accepted = 0;
    let right = 0;
    let acceptedProducts = 0;
    probabilities.forEach((p, i) => {
      const { reason, top } = decide(p, input.similarities?.[i], { confidence, similarity }, rejectClasses);
      if (reason !== 'accepted') return;
      accepted++;
      if (top === targets[i]) right++;
      if (!rejectClasses.has(targets[i])) acceptedProducts++;
    });
    return { confidence, similarity, precision: accepted ? right / accepted : null, coverage: productFrames.length ? acceptedProducts / productFrames.length : 0 };
  };
  // Candidate thresholds: every distinct held-out top probability (the accepted set only changes there).
  const tops = [...new Set(probabilities.map((p) => p[argMax(p)]))].sort((a, b) => a - b);
  let best: CurvePoint | undefined;
  for (const confidence of [0, ...tops]) {
    const point = evaluate(confidence);
    if (point.precision !== null && point.precision >= targetPrecision - 1e-12) {
      best = point;
      break; // the lowest threshold reaching the target accepts the most
    }
  }
  const knownRejectedAsUnknown =
    similarity === null || !input.similarities ? 0 : productFrames.filter((i) => input.similarities![i] < similarity!).length / Math.max(1, productFrames.length);
  const fallback = evaluate(tops.at(-1) ?? 1);
  const chosen = best ?? fallback;
  const point: OperatingPoint = {
    confidence: chosen.confidence,
    similarity,
    targetPrecision,
    reached: best !== undefined,
    precision: chosen.precision,
    coverage: chosen.coverage,
    knownRejectedAsUnknown,
  };
  const curve = Array.from({ length: CURVE_POINTS }, (_, k) => evaluate(k / (CURVE_POINTS - 1)));
  return { point, curve };
}
