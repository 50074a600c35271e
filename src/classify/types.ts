import type { BackendName } from '../engine/backend.js';
import type { DecisionReason } from '../open-set/decision.js';

/** One ranked class of a result. */
export interface RankedLabel {
  label: string;
  /** Stable integer code (0 = no decision / unknown). */
  code: number;
  confidence: number;
}

/** Where the time of one frame went, in milliseconds. */
export interface FrameTimings {
  /** Waiting in the classifier's queue before work started. */
  queueMs: number;
  decodeMs: number;
  featuresMs: number;
  headMs: number;
  totalMs: number;
  /** Backbone runs for this frame: 1, plus its test-time views. Decode and features times cover them all. */
  views?: number;
}

/**
 * What classifying a frame returns; the Node-RED classify node puts it on
 * `msg.classification` and its label on `msg.payload`, and the MQTT result event is built from it.
 */
export interface ClassificationResult {
  /** The decided label, or `unknown` when confidence is below the threshold. */
  label: string;
  /** Stable code of `label`; 0 for `unknown`. */
  code: number;
  /** Confidence of the best class (also when rejected). */
  confidence: number;
  /** True when the frame is sorted under `label`; otherwise it goes to inspection, and `reason` says why. */
  accepted: boolean;
  /**
   * Why: `accepted`; `low-confidence` (top probability below `threshold`); `unknown-product`
   * (farther from every training frame than `similarityThreshold`); `reject-class` (it looks
   * most like a label trained as a reject class, e.g. other products).
   */
  reason: DecisionReason;
  /** The confidence threshold applied. */
  threshold: number;
  /** Cosine similarity to the nearest training frame (models with a novelty index). */
  similarity?: number;
  /** The similarity threshold applied; null when there is no novelty gate. */
  similarityThreshold: number | null;
  /** Top probability minus the second: small margins are worth an operator's look. */
  margin: number;
  /** Best classes, most confident first. */
  topK: RankedLabel[];
  /** Model version that decided (0 for a backbone's own ImageNet classifier). */
  modelVersion: number;
  backboneId: string;
  /** e.g. "tfjs" */
  engine: string;
  backend: BackendName;
  /** sha256 of the frame's source content. */
  frameHash: string;
  timings: FrameTimings;
}

export const UNKNOWN_LABEL = 'unknown';
export const UNKNOWN_CODE = 0;

/** True for what lane-classify puts on `msg.classification` (nodes fed by it check their input with this). */
export function isClassificationResult(value: unknown): value is ClassificationResult {
  const result = value as Partial<ClassificationResult> | null;
  return typeof result === 'object' && result !== null && typeof result.label === 'string' && typeof result.confidence === 'number';
}
