/**
 * Frame -> decision. A classifier holds a shared backbone and one model at a time: a
 * trained head from the model store, or the backbone's own (ImageNet) classifier used as
 * it is. Swapping the model is one reference assignment, so a frame in flight finishes
 * with the model it started with and none is dropped at the swap.
 */
import { performance } from 'node:perf_hooks';
import { LaneVisionError } from '../errors.js';
import type { Backbone, BackboneSpec } from '../engine/types.js';
import { acquireBackbone } from '../engine/load-backbone.js';
import { tunedSpec } from '../fine-tuning/tuned-folder.js';
import { topK } from '../engine/imagenet.js';
import type { FitPolicy, ImageInput } from '../image/types.js';
import { embedImagesSettled, type EmbeddedImage, type Embedder, type FeatureCache } from '../features/index.js';
import { MAX_TEST_VIEWS, testTimeViews } from '../pipeline/views.js';
import { decide, nearestSimilarity, type OpenSetThresholds } from '../open-set/index.js';
import { predictHead } from '../training/index.js';
import { backboneCompatibility, type LoadedModel, type ModelStore } from '../model-store/index.js';
import { UNKNOWN_CODE, UNKNOWN_LABEL, type ClassificationResult, type FrameTimings, type RankedLabel } from './types.js';

export const DEFAULT_THRESHOLD = 0.6;
export const DEFAULT_TOP_K = 3;
const NO_REJECT_CLASSES: ReadonlySet<number> = new Set();

export interface ClassifierOptions {
  backbone: Backbone;
  /**
   * Confidence below which a frame is `unknown` (sent to manual inspection): a number, or
   * `model` (default) for the threshold the model's training chose for its target precision
   * (0.6 for a model that has none, and for the backbone's own classifier).
   */
  threshold?: number | 'model';
  /**
   * Similarity to the nearest training frame below which a frame is an unknown product:
   * a number, `model` (default, the model's own), or null for no novelty gate.
   */
  similarityThreshold?: number | 'model' | null;
  topK?: number;
  /**
   * How frames are fitted for the backbone's own classifier (default: the backbone's fit).
   * A trained model is always fed as it was trained: with the fit (and crop) it stores.
   */
  fit?: FitPolicy;
  /**
   * Test-time views averaged per frame (each one more backbone run): a number, or `model`
   * (default) for the number the model was trained to be served with.
   */
  testViews?: number | 'model';
  /** Lane frames are all new, so caching their features is off unless a cache is given. */
  cache?: FeatureCache | null;
  /**
   * Decodes frames and runs the backbone on them, e.g. a FrameEmbedder's (in a worker
   * thread). Default: embedImagesSettled on this thread, with `cache`.
   */
  embed?: Embedder;
  maxInputPixels?: number;
  /**
   * Loads the fine-tuned backbone a model version carries (see BackboneDescriptor.tuned).
   * Default: acquireBackbone on this thread, with the lane backbone's input and engine.
   */
  loadTunedBackbone?: (spec: BackboneSpec, base: Backbone) => Promise<Backbone>;
  /**
   * Embeds frames with a fine-tuned backbone, e.g. a FrameEmbedder for it (its own worker
   * thread). Default: embedImagesSettled on this thread.
   */
  tunedEmbedder?: (tuned: Backbone, spec: BackboneSpec) => { embed: Embedder; dispose(): unknown };
}

/** A fine-tuned backbone a classifier serves a version with, and how frames reach it. */
interface TunedServing {
  backbone: Backbone;
  embed: Embedder;
  /** Batches running on it: a swap must not dispose it under them. */
  inflight: number;
  retired: boolean;
  dispose(): void;
}

/** The model a classifier decides with. */
type ActiveModel =
  | { kind: 'head'; model: LoadedModel; tuned?: TunedServing; rejectClasses: ReadonlySet<number> }
  | { kind: 'backbone'; labels: readonly string[]; codes: number[] };

export class LaneClassifier {
  readonly backbone: Backbone;
  private current: ActiveModel | undefined;
  /** Set: it overrides the model's confidence threshold. */
  private thresholdOverride: number | undefined;
  private readonly similarityOverride: number | 'model' | null;
  private readonly k: number;
  private readonly fit: FitPolicy;
  private readonly testViewSetting: number | 'model';
  private readonly cache: FeatureCache | null;
  private readonly maxInputPixels: number | undefined;
  private readonly embed: Embedder;
  private readonly loadTuned: (spec: BackboneSpec, base: Backbone) => Promise<Backbone>;
  private readonly tunedEmbedder: ClassifierOptions['tunedEmbedder'];

  constructor(options: ClassifierOptions) {
    this.backbone = options.backbone;
    this.thresholdOverride = options.threshold === undefined || options.threshold === 'model' ? undefined : checkThreshold(options.threshold);
    const similarity = options.similarityThreshold ?? 'model';
    this.similarityOverride = similarity === 'model' || similarity === null ? similarity : checkSimilarity(similarity);
    this.k = Math.max(1, Math.floor(options.topK ?? DEFAULT_TOP_K));
    this.fit = options.fit ?? options.backbone.fit;
    this.testViewSetting = checkTestViews(options.testViews ?? 'model');
    this.cache = options.cache ?? null;
    this.maxInputPixels = options.maxInputPixels;
    this.embed =
      options.embed ??
      ((inputs, embedOptions) => embedImagesSettled(this.backbone, inputs, { ...embedOptions, cache: this.cache, batchSize: Math.max(1, inputs.length) }));
    this.loadTuned = options.loadTunedBackbone ?? loadTunedBackbone;
    this.tunedEmbedder = options.tunedEmbedder;
  }

  /** The confidence threshold in force: the override, else the model's own, else 0.6. */
  get threshold(): number {
    return this.thresholds().confidence;
  }

  /** Overrides the model's confidence threshold from now on (an MQTT command, the node setting); 'model' goes back to it. */
  setThreshold(value: number | 'model'): void {
    this.thresholdOverride = value === 'model' ? undefined : checkThreshold(value);
  }

  /** Both thresholds in force for the model in use. */
  thresholds(): OpenSetThresholds {
    const point = this.current?.kind === 'head' ? this.current.model.metadata.openSet?.operatingPoint : undefined;
    const confidence = this.thresholdOverride ?? point?.confidence ?? DEFAULT_THRESHOLD;
    const hasIndex = this.current?.kind === 'head' && this.current.model.novelty !== undefined;
    const similarity = this.similarityOverride === 'model' ? (hasIndex ? (point?.similarity ?? null) : null) : this.similarityOverride;
    return { confidence, similarity };
  }

  /** Version of the model in use: 0 for the backbone's own classifier, undefined before one is set. */
  get modelVersion(): number | undefined {
    if (!this.current) return undefined;
    return this.current.kind === 'head' ? this.current.model.version : 0;
  }

  get labels(): readonly string[] {
    if (!this.current) return [];
    return this.current.kind === 'head' ? this.current.model.labels : this.current.labels;
  }

  /** The fit frames are prepared with for the model in use: the model's own, or for the backbone's classifier the classifier's. */
  get frameFit(): FitPolicy {
    return this.current?.kind === 'head' ? this.current.model.metadata.backbone.fit : this.fit;
  }

  /** Test-time views per frame for the model in use (0: one backbone run per frame). */
  get testViews(): number {
    if (this.testViewSetting !== 'model') return this.testViewSetting;
    return this.current?.kind === 'head' ? (this.current.model.metadata.pipeline?.spec.testViews ?? 0) : 0;
  }

  /**
   * Decide with a trained head. Its features must come from this backbone (same network,
   * layer and input); a fine-tuned version's from the tuned copy of it, loaded first with
   * `useLoadedModel`.
   */
  useModel(model: LoadedModel, tunedBackbone?: Backbone): void {
    this.serve(model, tunedBackbone && this.servingFor(tunedBackbone));
  }

  private serve(model: LoadedModel, tuned: TunedServing | undefined): void {
    const serving = tuned?.backbone ?? this.backbone;
    const fit = backboneCompatibility(model.metadata.backbone, serving);
    if (!fit.fits || (model.metadata.backbone.tuned && !tuned)) {
      throw new LaneVisionError(
        'MODEL_BACKBONE_MISMATCH',
        `Model v${model.version} does not fit the backbone in use (${serving.source}): ${fit.reason ?? 'its fine-tuned backbone is not loaded'}. ` +
          'Retrain, or select the backbone it was trained with.',
      );
    }
    const before = this.current;
    // Reject classes by output index, worked out once per model rather than per frame.
    const rejectClasses = new Set((model.metadata.openSet?.rejectLabels ?? []).map((label) => model.labels.indexOf(label)).filter((i) => i >= 0));
    this.current = { kind: 'head', model, rejectClasses, ...(tuned ? { tuned } : {}) };
    if (before?.kind === 'head' && before.tuned) this.retire(before.tuned);
  }

  /** A tuned backbone given by the caller: frames run on it on this thread; the caller keeps its share. */
  private servingFor(backbone: Backbone, spec?: BackboneSpec, release = false): TunedServing {
    const own = spec && this.tunedEmbedder ? this.tunedEmbedder(backbone, spec) : undefined;
    return {
      backbone,
      embed: own?.embed ?? ((list, options) => embedImagesSettled(backbone, list, { ...options, cache: null, batchSize: Math.max(1, list.length) })),
      inflight: 0,
      retired: false,
      dispose: () => {
        void own?.dispose();
        if (release) backbone.release();
      },
    };
  }

  private retire(tuned: TunedServing): void {
    tuned.retired = true;
    if (tuned.inflight === 0) tuned.dispose();
  }

  private async onTuned<T>(tuned: TunedServing, run: () => Promise<T>): Promise<T> {
    tuned.inflight++;
    try {
      return await run();
    } finally {
      if (--tuned.inflight === 0 && tuned.retired) tuned.dispose();
    }
  }

  /** useModel, after loading the fine-tuned backbone a version carries (refused unless tuned from this lane's backbone). */
  async useLoadedModel(model: LoadedModel): Promise<void> {
    const tunedFrom = model.metadata.backbone.tuned;
    if (!tunedFrom) return this.useModel(model);
    if (tunedFrom.from !== this.backbone.id || !model.tunedBackboneDir) {
      throw new LaneVisionError(
        'MODEL_BACKBONE_MISMATCH',
        `Model v${model.version} was fine-tuned from backbone ${tunedFrom.from}, not from the loaded ${this.backbone.id}. Select the backbone it was tuned from, or retrain.`,
      );
    }
    // The shared registry hands out the same loaded copy to every classifier serving this folder.
    const spec = tunedSpec(model.tunedBackboneDir, this.backbone);
    const tuned = this.servingFor(await this.loadTuned(spec, this.backbone), spec, true);
    try {
      this.serve(model, tuned);
    } catch (err) {
      tuned.dispose();
      throw err;
    }
  }

  /** Releases a fine-tuned backbone the classifier holds. */
  dispose(): void {
    if (this.current?.kind === 'head' && this.current.tuned) this.retire(this.current.tuned);
    this.current = undefined;
  }

  /** Decide with the backbone's own classifier (e.g. ImageNet classes), used as it is. */
  useBackboneClassifier(): void {
    const labels = this.backbone.classLabels;
    if (!labels || this.backbone.engine.outputSize === 0) {
      throw new LaneVisionError('MODEL_HAS_NO_CLASSIFIER', `Backbone ${this.backbone.source} has no classifier of its own: train a model first.`);
    }
    // Codes are the output index + 1, keeping 0 for "unknown".
    this.current = { kind: 'backbone', labels, codes: labels.map((_, i) => i + 1) };
  }

  /**
   * Follow a model store's active version: load it now and again whenever it changes
   * (a retrain, a rollback). Returns a function that stops following.
   */
  async followActiveModel(store: ModelStore, onChange?: (version: number, error?: Error) => void): Promise<() => void> {
    await this.useLoadedModel(await store.loadModel('active'));
    // Loads can finish out of order (a big head, then a quick rollback): the newest change wins.
    let latestChange = 0;
    return store.watchActive((change) => {
      const changeNumber = ++latestChange;
      const report = (version: number, error?: Error): void => {
        if (changeNumber === latestChange) onChange?.(version, error);
      };
      store.loadModel(change.version).then(
        async (model) => {
          if (changeNumber !== latestChange) return;
          try {
            await this.useLoadedModel(model);
          } catch (error) {
            // A model that does not fit this backbone keeps the current one in use.
            report(model.version, error as Error);
            return;
          }
          report(model.version);
        },
        (error: Error) => report(change.version, error),
      );
    });
  }

  async classify(input: ImageInput, queueMs = 0): Promise<ClassificationResult> {
    const [result] = await this.classifyBatch([input], [queueMs]);
    if ('error' in result) throw result.error;
    return result;
  }

  /** Classifies frames in one backbone call; a frame that cannot be read gives `{error}` in its place. */
  async classifyBatch(inputs: readonly ImageInput[], queueMs: readonly number[] = []): Promise<(ClassificationResult | { error: Error })[]> {
    const model = this.current;
    if (!model) throw new LaneVisionError('MODEL_NOT_READY', 'No model to classify with yet: train one, or use the backbone\'s own classifier.');
    const started = performance.now();
    const thresholds = this.thresholds();
    // A trained head decides from the backbone's features, fed as it was trained; the backbone's own classifier from its output.
    const output = model.kind === 'head' ? 'features' : 'classifier';
    const fit = model.kind === 'head' ? model.model.metadata.backbone.fit : this.fit;
    const views = model.kind === 'head' ? testTimeViews(this.testViews) : [];
    const request = { fit, maxInputPixels: this.maxInputPixels, output } as const;
    // The plain frames, and each test-time view of them, as one backbone call each.
    // A fine-tuned version runs its own copy of the backbone.
    const tuned = model.kind === 'head' ? model.tuned : undefined;
    const embed: Embedder = tuned ? (list, embedOptions) => this.onTuned(tuned, () => tuned.embed(list, embedOptions)) : this.embed;
    const embedded = await Promise.all([embed(inputs, request), ...views.map((view) => embed(inputs, { ...request, view }))]);
    const [plain] = embedded;
    const share = inputs.length || 1;
    const decodeMs = embedded.reduce((sum, e) => sum + e.decodeMs, 0);
    const featuresMs = embedded.reduce((sum, e) => sum + e.featuresMs, 0);
    return plain.results.map((item, i) => {
      if ('error' in item) return item;
      const headStart = performance.now();
      const probabilities = model.kind === 'head' ? averagedPrediction(model.model, item.features, embedded.slice(1).map((e) => e.results[i])) : item.features;
      const novelty = model.kind === 'head' && model.model.novelty ? nearestSimilarity(model.model.novelty, item.features) : undefined;
      const headMs = model.kind === 'head' ? performance.now() - headStart : 0;
      const timings: FrameTimings = {
        queueMs: queueMs[i] ?? 0,
        decodeMs: decodeMs / share,
        featuresMs: featuresMs / share,
        headMs,
        totalMs: 0,
        views: 1 + views.length,
      };
      timings.totalMs = timings.queueMs + performance.now() - started;
      const { labels, codes, version } = model.kind === 'head' ? model.model : { ...model, version: 0 };
      const rejectClasses = model.kind === 'head' ? model.rejectClasses : NO_REJECT_CLASSES;
      return this.decide(probabilities, novelty, labels, codes, thresholds, rejectClasses, version, item.hash, timings, tuned?.backbone ?? this.backbone);
    });
  }

  private decide(
    probabilities: Float32Array,
    similarity: number | undefined,
    labels: readonly string[],
    codes: readonly number[],
    thresholds: OpenSetThresholds,
    rejectClasses: ReadonlySet<number>,
    modelVersion: number,
    frameHash: string,
    timings: FrameTimings,
    /** The backbone the frame went through (a tuned version's own copy, else the lane's). */
    servedBy: Backbone,
  ): ClassificationResult {
    const ranked: RankedLabel[] = topK(probabilities, labels, Math.max(this.k, 2)).map((r) => ({
      label: r.label,
      code: codes[r.index] ?? UNKNOWN_CODE,
      confidence: r.probability,
    }));
    const { reason } = decide(probabilities, similarity, thresholds, rejectClasses);
    const best = ranked[0];
    const accepted = reason === 'accepted';
    return {
      label: accepted ? best.label : UNKNOWN_LABEL,
      code: accepted ? best.code : UNKNOWN_CODE,
      confidence: best?.confidence ?? 0,
      accepted,
      reason,
      threshold: thresholds.confidence,
      ...(similarity !== undefined ? { similarity } : {}),
      similarityThreshold: thresholds.similarity,
      margin: (best?.confidence ?? 0) - (ranked[1]?.confidence ?? 0),
      topK: ranked.slice(0, this.k),
      modelVersion,
      backboneId: servedBy.id,
      engine: servedBy.engine.name,
      backend: servedBy.backend.name,
      frameHash,
      timings,
    };
  }
}

/** The head's probabilities for the plain frame, averaged with its test-time views' (a view that failed to decode is left out). */
function averagedPrediction(model: LoadedModel, plain: Float32Array, views: readonly (EmbeddedImage | { error: Error })[]): Float32Array {
  const probabilities = predictHead(model.head, plain);
  let count = 1;
  for (const view of views) {
    if ('error' in view) continue;
    const p = predictHead(model.head, view.features);
    for (let c = 0; c < p.length; c++) probabilities[c] += p[c];
    count++;
  }
  if (count > 1) for (let c = 0; c < probabilities.length; c++) probabilities[c] /= count;
  return probabilities;
}

function checkTestViews(value: number | 'model'): number | 'model' {
  if (value === 'model' || (Number.isInteger(value) && value >= 0 && value <= MAX_TEST_VIEWS)) return value;
  throw new LaneVisionError('TEST_VIEWS_INVALID', `Test-time views must be "model" or a whole number from 0 to ${MAX_TEST_VIEWS}, got ${String(value)}.`);
}

function checkSimilarity(value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < -1 || value > 1) {
    throw new LaneVisionError('THRESHOLD_INVALID', `The similarity threshold must be a number from -1 to 1, got ${String(value)}.`);
  }
  return value;
}

function checkThreshold(value: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new LaneVisionError('THRESHOLD_INVALID', `The confidence threshold must be a number from 0 to 1, got ${String(value)}.`);
  }
  return value;
}

/** The default loader of a version's fine-tuned backbone: the shared registry, on the lane backbone's engine. */
async function loadTunedBackbone(spec: BackboneSpec, base: Backbone): Promise<Backbone> {
  return acquireBackbone(spec, { engine: base.engine.name === 'onnxruntime' ? 'auto' : 'tfjs' });
}
