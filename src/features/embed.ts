/**
 * Frames -> feature vectors through a backbone: read and hash each input, take cached
 * vectors where there are some, decode the rest with sharp, and run the backbone on
 * them in batches, the next batch decoding while the backbone runs the current one.
 */
import { performance } from 'node:perf_hooks';
import type { Backbone } from '../engine/types.js';
import type { FitPolicy, ImageInput, ViewTransform } from '../image/types.js';
import { prepareSource, readImageSource, type ImageSource, type PreparedImage } from '../image/index.js';
import { FeatureCache, sharedFeatureCache } from './feature-cache.js';
import { TwoStagePipeline } from './two-stage-pipeline.js';

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
  const job = startEmbedJob(backbone, inputs, options);
  const batchSize = Math.max(1, options.batchSize ?? 8);
  // Batch k+1 decodes while the backbone runs batch k (see TwoStagePipeline).
  const pipeline = new TwoStagePipeline(
    (indices: number[]) => {
      options.signal?.throwIfAborted();
      return decodeFrames(job, indices);
    },
    (decoded: DecodedFrames) => {
      options.signal?.throwIfAborted();
      return embedDecoded(job, decoded);
    },
  );
  const batches: number[][] = [];
  for (let start = 0; start < inputs.length; start += batchSize) {
    batches.push(Array.from({ length: Math.min(batchSize, inputs.length - start) }, (_, i) => start + i));
  }
  // Settled, not all: a failure (an abort) returns only after the batch under way is done with the backbone.
  const outcomes = await Promise.allSettled(batches.map((batch) => pipeline.push(batch)));
  const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) throw failed.reason;
  return finishEmbedJob(job);
}

/**
 * One embedding request split into batches that go through the two stages separately:
 * decodeFrames (read, cache look-up, sharp) then embedDecoded (the backbone). The
 * inference worker feeds the batches of all its requests through one TwoStagePipeline.
 */
export interface EmbedJob {
  readonly backbone: Backbone;
  readonly inputs: readonly ImageInput[];
  readonly results: (EmbeddedImage | { error: Error })[];
  readonly fit: FitPolicy;
  readonly classifier: boolean;
  readonly cache: FeatureCache | null;
  readonly options: EmbedOptions;
  decodeMs: number;
  featuresMs: number;
  cacheHits: number;
}

/** Frames of one batch decoded for the backbone; those read from the cache or failed are already in the job's results. */
export interface DecodedFrames {
  job: EmbedJob;
  todo: { index: number; key: string; frame: PreparedImage }[];
}

export function startEmbedJob(backbone: Backbone, inputs: readonly ImageInput[], options: EmbedOptions = {}): EmbedJob {
  const classifier = options.output === 'classifier';
  return {
    backbone,
    inputs,
    results: new Array(inputs.length),
    fit: options.fit ?? backbone.fit,
    classifier,
    cache: classifier ? null : options.cache === undefined ? sharedFeatureCache : options.cache,
    options,
    decodeMs: 0,
    featuresMs: 0,
    cacheHits: 0,
  };
}

export function finishEmbedJob(job: EmbedJob): EmbedReport<EmbeddedImage | { error: Error }> {
  return { results: job.results, decodeMs: job.decodeMs, featuresMs: job.featuresMs, cacheHits: job.cacheHits };
}

/** First stage: reads, hashes and decodes the inputs at `indices` (cache hits and errors go straight to the results). */
export async function decodeFrames(job: EmbedJob, indices: readonly number[]): Promise<DecodedFrames> {
  const { backbone, cache, fit, options, results } = job;
  const limits = { maxInputPixels: options.maxInputPixels, maxInputBytes: options.maxInputBytes };
  const decodeConcurrency = Math.max(1, Math.floor(options.decodeConcurrency ?? indices.length));
  const decodeStart = performance.now();
  // Decoding runs on sharp's thread pool, so the batch's frames decode in parallel.
  const prepared = await mapLimited(indices, decodeConcurrency, async (index) => {
    let source: ImageSource;
    try {
      source = await readImageSource(job.inputs[index], limits);
    } catch (error) {
      results[index] = { error: error as Error };
      return undefined;
    }
    const key = cache ? FeatureCache.key(backbone.id, fit, source.hash, options.view) : '';
    const hit = cache?.get(key);
    if (hit) {
      job.cacheHits++;
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
  });
  job.decodeMs += performance.now() - decodeStart;
  return { job, todo: prepared.filter((p): p is NonNullable<typeof p> => p !== undefined) };
}

/** Second stage: runs the backbone on a batch's decoded frames and puts the vectors in the job's results. */
export async function embedDecoded(job: EmbedJob, decoded: DecodedFrames): Promise<void> {
  const { todo } = decoded;
  if (todo.length === 0) return;
  await job.options.beforeStep?.();
  const featuresStart = performance.now();
  const frames = todo.map((t) => t.frame);
  const engine = job.backbone.engine;
  const vectors = await (job.classifier ? engine.predict(frames) : engine.features(frames));
  job.featuresMs += performance.now() - featuresStart;
  todo.forEach((t, i) => {
    job.cache?.set(t.key, vectors[i]);
    job.results[t.index] = { features: vectors[i], hash: t.frame.sourceHash, cached: false };
  });
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
