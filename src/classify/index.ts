export { LaneClassifier, DEFAULT_THRESHOLD, DEFAULT_TOP_K, type ClassifierOptions } from './classifier.js';
export { SimilarityIndex, type SimilarImage } from './similar.js';
export { isClassificationResult, UNKNOWN_CODE, UNKNOWN_LABEL, type ClassificationResult, type FrameTimings, type RankedLabel } from './types.js';
export {
  BLOCK_SAFETY_FACTOR,
  MicroBatchQueue,
  OVERFLOW_POLICIES,
  type DropReason,
  type MicroBatchQueueOptions,
  type MicroBatchQueueStats,
  type OverflowPolicy,
} from './micro-batch-queue.js';
