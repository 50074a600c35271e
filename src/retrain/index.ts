export { retrain, isRetraining, MIN_IMAGES_PER_LABEL, type RetrainOptions, type RetrainResult, type RetrainMetrics, type RetrainProgress } from './retrain.js';
