export { FeatureCache, sharedFeatureCache, DEFAULT_FEATURE_CACHE_BYTES } from './feature-cache.js';
export { embedImages, embedImagesSettled, type EmbedOptions, type EmbeddedImage, type EmbedReport } from './embed.js';
