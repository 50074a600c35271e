/** Unknown products: novelty score, reject classes, the operating point, decisions with reasons. */
export { buildNoveltyIndex, deserialiseNoveltyIndex, heldOutSimilarities, nearestSimilarity, serialiseNoveltyIndex, type NoveltyIndex } from './novelty-index.js';
export {
  chooseOperatingPoint,
  decide,
  DECISION_REASONS,
  DEFAULT_KNOWN_LOSS,
  type CurvePoint,
  type DecisionReason,
  type OpenSetThresholds,
  type OperatingPoint,
  type OperatingPointInput,
} from './decision.js';
export { openSetCurve, openSetFigures, type OpenSetFigures, type OpenSetFrames } from './evaluate.js';
export { readRejectLabels, REJECT_LABELS_FILE, writeRejectLabels } from './reject-labels.js';
