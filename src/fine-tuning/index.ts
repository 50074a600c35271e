export { splitBackbone, defaultFineTuneBlocks, type TopGraph, type TopOp, type SplitBackbone } from './top-graph.js';
export { runTop, topFeatures, topVariables, type TopParams } from './top-forward.js';
export { fineTuneTop, checkFineTuneOptions, FINE_TUNE_DEFAULTS, type FineTuneOptions, type FineTuneProgress, type FineTuneResult, type FineTuneSample } from './fine-tune.js';
export { tunedSpec, writeTunedFolder } from './tuned-folder.js';
export { sharedActivationCache, tuneBackbone, type TuneBackboneOptions, type TunedBackboneResult, type TunedFeatureSet } from './tune-backbone.js';
