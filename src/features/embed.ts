/**
 * Frames -> feature vectors through a backbone: read and hash each input, take cached
 * vectors where there are some, decode the rest with sharp, and run the backbone on
 * them in batches.
 */
import { performance } from 'node:perf_hooks';
import type { Backbone } from '../engine/types.js';
import type { FitPolicy, ImageInput, ViewTransform } from '../image/types.js';
import { prepareSource, readImageSource, type ImageSource } from '../image/index.js';
import { FeatureCache, sharedFeatureCache } from './feature-cache.js';

export interface EmbedOptions {
  /**
   * What of the backbone to return for each frame: its feature vector (default), or its
   * own classifier's output (class probabilities, e.g. ImageNet's), which is never cached.
   */
  output?: 'features' | 'classifier';
  /** Default: the backbone's own fit (centre crop). */
  fit?: FitPolicy;
  /** A view of each frame (augmentation or test-time view); default the plain frame. Cached under its own key. */
  view?: ViewTransform;
  /** Default: the process-wide cache; `null` disables caching. */
  cache?: FeatureCache | null;
  /** Frames per backbone call. Default 8. */
  batchSize?: number;
  maxInputPixels?: number;
  maxInputBytes?: number;
  /** Stop between batches (training cancellation). */
  signal?: AbortSignal;
  /**
   * Frames decoded at once. Default: the whole batch. Decoding runs on the process-wide
   * libuv pool (4 threads), shared with every worker thread, so a background job (a
   * training worker) decoding one at a time leaves the pool to the lane's frames.
   */
  decodeConcurrency?: number;
  /**
   * Awaited before each frame's decode (cache hits skip it) and each backbone call: lets a
   * background job (a training) step aside while the lane has frames in flight (see LaneActivity).
   */
  beforeStep?: () => Promise<unknown>;
}

export interface EmbeddedImage {
  /** The feature vector, or the classifier's output when asked for (EmbedOptions.output). */
  features: Float32Array;
  /** sha256 of the source content. */
  hash: string;
  cached: boolean;
}

export interface EmbedReport<T> {
  results: T[];
  decodeMs: number;
  featuresMs: number;
  cacheHits: number;
}

/** Embeds every input or throws the first input's error. */
export async function embedImages(backbone: Backbone, inputs: readonly ImageInput[], options: EmbedOptions = {}): Promise<EmbedReport<EmbeddedImage>> {
  const report = await embedImagesSettled(backbone, inputs, options);
  const results = report.results.map((r) => {
    if ('error' in r) throw r.error;
    return r;
  });
  return { ...report, results };
}

/** Like embedImages, but an input that cannot be read gives `{error}` in its place. */
export async function embedImagesSettled(
  backbone: Backbone,
  inputs: readonly ImageInput[],
  options: EmbedOptions = {},
): Promise<EmbedReport<EmbeddedImage | { error: Error }>> {
  const fit = options.fit ?? backbone.fit;
  const classifier = options.output === 'classifier';
  const cache = classifier ? null : options.cache === undefined ? sharedFeatureCache : options.cache;
  const batchSize = Math.max(1, options.batchSize ?? 8);
  const decodeConcurrency = Math.max(1, Math.floor(options.decodeConcurrency ?? batchSize));
  const limits = { maxInputPixels: options.maxInputPixels, maxInputBytes: options.maxInputBytes };
  const results: (EmbeddedImage | { error: Error })[] = new Array(inputs.length);
  let decodeMs = 0;
  let featuresMs = 0;
  let cacheHits = 0;

  for (let start = 0; start < inputs.length; start += batchSize) {
    options.signal?.throwIfAborted();
    const indices = Array.from({ length: Math.min(batchSize, inputs.length - start) }, (_, i) => start + i);
    const decodeStart = performance.now();
    // Decoding runs on sharp's thread pool, so the batch's frames decode in parallel.
    const prepared = await mapLimited(
      indices,
      decodeConcurrency,
      async (index) => {
        let source: ImageSource;
        try {
          source = await readImageSource(inputs[index], limits);
        } catch (error) {
          results[index] = { error: error as Error };
          return undefined;
        }
        const key = cache ? FeatureCache.key(backbone.id, fit, source.hash, options.view) : '';
        const hit = cache?.get(key);
        if (hit) {
          cacheHits++;
          results[index] = { features: hit, hash: source.hash, cached: true };
          return undefined;
        }
        await options.beforeStep?.();
        try {
          const frame = await prepareSource(source, { ...backbone.inputSize, fit, view: options.view, ...limits });
          return { index, key, frame };
        } catch (error) {
          results[index] = { error: error as Error };
          return undefined;
        }
      },
    );
    decodeMs += performance.now() - decodeStart;
    const todo = prepared.filter((p): p is NonNullable<typeof p> => p !== undefined);
    if (todo.length === 0) continue;
    await options.beforeStep?.();
    const featuresStart = performance.now();
    const frames = todo.map((t) => t.frame);
    const vectors = await (classifier ? backbone.engine.predict(frames) : backbone.engine.features(frames));
    featuresMs += performance.now() - featuresStart;
    todo.forEach((t, i) => {
      cache?.set(t.key, vectors[i]);
      results[t.index] = { features: vectors[i], hash: t.frame.sourceHash, cached: false };
    });
  }
  return { results, decodeMs, featuresMs, cacheHits };
}

/** `items.map(work)` with at most `limit` calls in flight; results keep the items' order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  if (limit >= items.length) return Promise.all(items.map(work));
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: limit }, lane));
  return results;
}
