/** The training pipeline: crop, head and views chosen and scored honestly (grouped or second-session validation). */
export type { CandidateScore, EstimateKind, PipelineReport, PipelineScore, PipelineSpec, TrainingStrategy, ValidationEstimate } from './types.js';
export { TRAINING_STRATEGIES } from './types.js';
export { groupedFolds, groupFrames, nearDuplicateGroups, type FrameGroups } from './grouping.js';
export { augmentationViews, testTimeViews, MAX_TEST_VIEWS, MAX_VIEWS } from './views.js';
export { crossValidatePipeline, fitPipelineHead, predictAveraged, validatePipeline, type LabelledFrames, type PipelineFeatures } from './score.js';
export { calibrateHead, canCalibrate, fitSharpness, sharpen } from './calibrate.js';
export { describeSpec, scoreSpec, searchPipeline, SEARCH_BASE_HEAD, type FeatureSource, type SearchInput, type SearchResult } from './search.js';
export { featureSource, fitWithCrop, FrameFeatures, type EmbeddingProgress } from './frame-features.js';
