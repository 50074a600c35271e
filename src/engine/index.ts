/** Public surface of the engine stage: backend choice, backbone loading, inference. */
export * from './backend.js';
export * from './types.js';
export { acquireBackbone, loadBackbone, normaliseBackboneSpec, sharedBackbones } from './load-backbone.js';
export type { LoadBackboneOptions, LoadStage } from './load-backbone.js';
export { fingerprintWeights, formatBackboneId, parseBackboneId } from './backbone-id.js';
export type { BackboneIdParts } from './backbone-id.js';
export { BACKBONE_PRESETS, findPreset, presetNames } from './presets.js';
export type { BackbonePreset } from './presets.js';
export {
  CACHE_ENV_VAR,
  DEFAULT_MAX_DOWNLOAD_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  cacheFolderFor,
  defaultCacheDir,
  downloadModel,
  findCachedModel,
  formatDownloadProgress,
} from './download-cache.js';
export type { DownloadOptions, DownloadProgress } from './download-cache.js';
export { resolveModelJsonUrl } from './model-source.js';
export { readModelFolder } from './model-files.js';
export type { ModelFiles } from './model-files.js';
export { IMAGENET_BACKGROUND, IMAGENET_CLASSES, imagenetLabelsFor, imagenetTopK, topK } from './imagenet.js';
export type { ImagenetClass, RankedClass } from './imagenet.js';
export { DEFAULT_MAX_BATCH, TfjsInferenceEngine } from './tfjs-engine.js';
export {
  DEFAULT_ONNX_THREADS,
  ENGINE_ENV_VAR,
  ONNX_CACHE_FOLDER,
  ONNX_ENGINE_NAME,
  ONNX_THREADS_ENV_VAR,
  NotConvertibleError,
  OnnxInferenceEngine,
  convertToOnnx,
  onnxSessionOptions,
  onnxThreadsForMachine,
  loadOnnxRuntime,
  parseEnginePreference,
} from './onnx/index.js';
export type { ConversionTarget, ConvertedModel, OnnxCacheMeta } from './onnx/index.js';
