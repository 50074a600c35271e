import type { CropRegion } from '../image/types.js';
import type { HeadMetrics, TrainHeadParams } from '../training/index.js';

/**
 * How a model turns frames into decisions, beyond the backbone: what part of the frame it
 * looks at, which head decides, and which extra views of a frame it learns from and
 * averages. Stored with every model version (metadata `pipeline`) so it is served as it
 * was trained and a warm retrain can reuse it.
 */
export interface PipelineSpec {
  /** Cut out of the frame (inside the backbone node's fit or region) before it is fitted to the input; null: the whole frame. */
  crop: CropRegion | null;
  head: TrainHeadParams;
  /** Augmentation views per training frame (0: the plain frames only). */
  trainViews: number;
  /** Test-time views averaged with the plain frame when classifying (0: one backbone run per frame). */
  testViews: number;
}

/**
 * `auto` searches for the pipeline (the default); `fixed` trains the one given;
 * `fine-tune` also trains the backbone's last blocks (src/fine-tuning) before the head.
 */
export type TrainingStrategy = 'auto' | 'fixed' | 'fine-tune';
export const TRAINING_STRATEGIES: readonly TrainingStrategy[] = ['auto', 'fixed', 'fine-tune'];

/**
 * Where the reported accuracy comes from:
 * - `validation-set`: frames of another session given for it (`--validation`), the figure that predicts the next shift;
 * - `session-cross-validation`: whole capture sessions held out in turn;
 * - `grouped-cross-validation`: near-duplicate groups held out in turn, all from one session:
 *   optimistic, since no split of one session shows what the next one looks like.
 */
export type EstimateKind = 'validation-set' | 'session-cross-validation' | 'grouped-cross-validation';

export interface ValidationEstimate {
  kind: EstimateKind;
  /** True when every frame comes from one session, so the figure likely overstates the next shift. */
  optimistic: boolean;
  folds: number;
  groups: number;
  /** Frames scored. */
  count: number;
  /** One sentence an operator can read. */
  note: string;
}

export interface CandidateScore {
  /** What was tried, e.g. "crop 0.70, logistic (L2 0.003), 4 views". */
  name: string;
  stage: 'crop' | 'head' | 'views' | 'test-views' | 'given' | 'reused';
  spec: PipelineSpec;
  /** Estimated accuracy (see ValidationEstimate), null when skipped. */
  accuracy: number | null;
  macroF1: number | null;
  /** Milliseconds: fitting the heads of the estimate, and embedding features this candidate needed first. */
  fitMs: number;
  embedMs: number;
  /** Backbone runs per lane frame when served: 1 + testViews. */
  backboneRunsPerFrame: number;
  chosen: boolean;
  /** Set when the candidate was not scored (e.g. "over the time budget"). */
  skipped?: string;
}

export interface PipelineReport {
  strategy: TrainingStrategy | 'reused';
  spec: PipelineSpec;
  candidates: CandidateScore[];
  searchMs: number;
  budgetMs: number;
  estimate: ValidationEstimate;
  /** Sharpness the heads' probabilities were calibrated with on held-out frames (1: unchanged). */
  calibration: number;
  /** Test-time views measured but not used by default (they cost backbone runs per frame): the accuracy they gave. */
  testViewsMeasured?: { testViews: number; accuracy: number };
  /** What the search was run on, to tell when a warm retrain may reuse its choice. */
  searchedOn: { images: number; labels: string[] };
}

/** Out-of-fold (or validation-set) predictions of a pipeline. */
export interface PipelineScore {
  metrics: HeadMetrics;
  /** One probability vector per scored frame. */
  probabilities: Float32Array[];
  /** True labels of the scored frames. */
  targets: number[];
  fitMs: number;
}
