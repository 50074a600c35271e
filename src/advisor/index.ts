/** The scenario advisor: which transfer-learning situation a dataset is in, and what helps. */
export { adviseFromTraining, adviseScenario, confusedPairs, LARGE_DATA, type Advice, type AdvisorMeasures, type DataSize, type Similarity } from './advisor.js';
export { EARLIER_LAYERS, imagenetConfidence, separability } from './measure.js';
