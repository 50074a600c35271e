/** ONNX Runtime as the second inference engine: conversion from tfjs models, cache, engine. */
export { CONVERTER_VERSION, ONNX_FEATURES, ONNX_INPUT, ONNX_OUTPUT, convertToOnnx } from './convert.js';
export type { ConversionTarget, ConvertedModel } from './convert.js';
export {
  DEFAULT_ONNX_THREADS,
  ENGINE_ENV_VAR,
  ENGINE_PREFERENCES,
  ONNX_THREADS_ENV_VAR,
  parseEnginePreference,
  resolveEnginePreference,
  onnxThreadsForMachine,
  resolveOnnxThreads,
} from './engine-preference.js';
export { checkFrames, loadOnnxBackbone, maxRelativeDiff, onnxSessionOptions, RELATIVE_TOLERANCE } from './load-onnx.js';
export type { OnnxBackboneRequest, OnnxBackboneResult } from './load-onnx.js';
export { ONNX_CACHE_FOLDER, onnxCacheEntry } from './onnx-cache.js';
export type { OnnxCacheMeta } from './onnx-cache.js';
export { ONNX_ENGINE_NAME, OnnxInferenceEngine } from './onnx-engine.js';
export { NotConvertibleError } from './onnx-graph.js';
export { loadOnnxRuntime } from './runtime.js';
