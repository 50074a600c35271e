export { FeatureCache, sharedFeatureCache, DEFAULT_FEATURE_CACHE_BYTES } from './feature-cache.js';
export { DiskFeatureCache, DEFAULT_DISK_CACHE_BYTES } from './disk-feature-cache.js';
export { embedImages, embedImagesSettled, type EmbedOptions, type EmbeddedImage, type EmbedReport } from './embed.js';
export {
  EmbeddingWorker,
  FrameEmbedder,
  inferenceThreadFrom,
  INFERENCE_THREAD_ENV_VAR,
  type Embedder,
  type EmbedRequestOptions,
  type EmbeddingWorkerOptions,
  type EmbeddingWorkerEvents,
  type FrameEmbedderOptions,
  type InferenceThread,
} from './embedding-worker.js';
