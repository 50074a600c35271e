export { splitBackbone, defaultFineTuneBlocks, type TopGraph, type TopOp, type SplitBackbone } from './top-graph.js';
export { runTop, topVariables, type TopParams } from './top-forward.js';
export { fineTuneTop, checkFineTuneOptions, FINE_TUNE_DEFAULTS, type FineTuneOptions, type FineTuneProgress, type FineTuneResult, type FineTuneSample } from './fine-tune.js';
export { tunedSpec, writeTunedFolder } from './tuned-folder.js';
export { tuneBackbone, type TuneBackboneOptions, type TunedBackboneResult } from './tune-backbone.js';
