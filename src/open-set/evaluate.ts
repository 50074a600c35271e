/**
 * How a model does on the open lane: frames of the products it knows mixed with frames of
 * ones it does not. Precision is over every accepted frame, known or unknown (an unknown
 * product sorted into a bin is a wrong decision); coverage is the share of known product
 * frames accepted; unknownAccepted the share of unknown frames accepted.
 */
import { decide, type OpenSetThresholds } from './decision.js';

export interface OpenSetFrames {
  probabilities: readonly ArrayLike<number>[];
  /** Nearest-training-frame similarity per frame (undefined: the model has no novelty index). */
  similarities?: readonly number[];
}

export interface OpenSetFigures {
  thresholds: OpenSetThresholds;
  unknownAccepted: number | null;
  precision: number | null;
  coverage: number;
  knownCount: number;
  unknownCount: number;
}

export function openSetFigures(
  known: OpenSetFrames & { targets: readonly number[] },
  unknown: OpenSetFrames | undefined,
  thresholds: OpenSetThresholds,
  rejectClasses: ReadonlySet<number>,
): OpenSetFigures {
  let accepted = 0;
  let right = 0;
  let knownProducts = 0;
  let knownAccepted = 0;
  known.probabilities.forEach((p, i) => {
    const isProduct = !rejectClasses.has(known.targets[i]);
    if (isProduct) knownProducts++;
    const { reason, top } = decide(p, known.similarities?.[i], thresholds, rejectClasses);
    if (reason !== 'accepted') return;
    accepted++;
    if (top === known.targets[i]) right++;
    if (isProduct) knownAccepted++;
  });
  let unknownAccepted = 0;
  unknown?.probabilities.forEach((p, i) => {
    if (decide(p, unknown.similarities?.[i], thresholds, rejectClasses).reason === 'accepted') unknownAccepted++;
  });
  accepted += unknownAccepted;
  const unknownCount = unknown?.probabilities.length ?? 0;
  return {
    thresholds,
    unknownAccepted: unknownCount ? unknownAccepted / unknownCount : null,
    precision: accepted ? right / accepted : null,
    coverage: knownProducts ? knownAccepted / knownProducts : 0,
    knownCount: known.probabilities.length,
    unknownCount,
  };
}

/** The figures over confidence thresholds 0, 0.05, ... 1 at the given similarity threshold. */
export function openSetCurve(
  known: OpenSetFrames & { targets: readonly number[] },
  unknown: OpenSetFrames | undefined,
  similarity: number | null,
  rejectClasses: ReadonlySet<number>,
  points = 21,
): OpenSetFigures[] {
  return Array.from({ length: points }, (_, k) => openSetFigures(known, unknown, { confidence: k / (points - 1), similarity }, rejectClasses));
}
