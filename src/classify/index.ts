export { LaneClassifier, DEFAULT_THRESHOLD, DEFAULT_TOP_K, type ClassifierOptions } from './classifier.js';
export { SimilarityIndex, type SimilarImage } from './similar.js';
export { UNKNOWN_CODE, UNKNOWN_LABEL, type ClassificationResult, type FrameTimings, type RankedLabel } from './types.js';
