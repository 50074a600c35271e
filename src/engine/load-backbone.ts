/**
 * One loader for every kind of backbone source (preset, folder, file://, http(s), TF Hub /
 * Kaggle), and the per-process registry that shares a loaded backbone between users.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import createDebug from 'debug';
import { LaneVisionError, isLaneVisionError } from '../errors.js';
import type { FitPolicy } from '../image/types.js';
import { type BackendPreference, initBackend } from './backend.js';
import { formatBackboneId } from './backbone-id.js';
import { type DownloadOptions, type DownloadProgress, defaultCacheDir, downloadModel, findCachedModel } from './download-cache.js';
import { imagenetLabelsFor } from './imagenet.js';
import { type ModelFiles, readModelFolder } from './model-files.js';
import { type ResolvedSource, resolveSource } from './model-source.js';
import { loadOnnxBackbone } from './onnx/load-onnx.js';
import { resolveEnginePreference, resolveOnnxThreads } from './onnx/engine-preference.js';
import { type BackbonePreset, presetNames } from './presets.js';
import { DEFAULT_MAX_BATCH, TfjsInferenceEngine } from './tfjs-engine.js';
import { type BuiltModel, buildModel } from './tfjs-models.js';
import { readCalibrationSet } from '../quantise/calibration-frames.js';
import {
  BACKBONE_PRECISIONS,
  INPUT_RANGES,
  type Backbone,
  type BackbonePrecision,
  type BackboneSpec,
  type EngineBackendInfo,
  type EnginePreference,
  type InferenceEngine,
  type InputRange,
  type ModelFormat,
} from './types.js';

const debug = createDebug('lane-vision:engine');

export interface LoadBackboneOptions extends DownloadOptions {
  /** TensorFlow.js backend (default: LANE_VISION_BACKEND, else the best available): runs heads, and the backbone on tfjs. */
  backend?: BackendPreference;
  /**
   * Engine for the backbone's forward pass (default: LANE_VISION_ENGINE, else auto): `auto`
   * runs it on ONNX Runtime when that loads and converts the model, else on tfjs (the reason
   * is in `backend.skipped`); `onnx` fails instead of falling back; `tfjs` never tries ONNX.
   * Converted models are cached in `<cacheDir>/onnx/`.
   */
  engine?: EnginePreference;
  /** ONNX Runtime intra-op threads per backbone (default: LANE_VISION_ONNX_THREADS, else half the cores, onnxThreadsForMachine). */
  onnxThreads?: number;
  /** Frames per tensor in `features` / `predict`. Default 16. */
  maxBatch?: number;
  /**
   * Told when loading reaches a step that can take a while after the download: `converting`
   * (to ONNX Runtime, on the first start with this model; later starts read the conversion cache).
   */
  onStage?: (stage: LoadStage) => void;
}

export type LoadStage = 'converting';

const CLASSIFIER_OUTPUTS = ['probabilities', 'logits', 'none'] as const;
const MAX_INPUT_SIDE = 2048;
const RECOMMENDED_FIT: FitPolicy = { kind: 'cover' };

/** Checks a spec (or bare source string) and returns it as a plain object. */
export function normaliseBackboneSpec(spec: BackboneSpec | string): BackboneSpec {
  const raw: Partial<BackboneSpec> = typeof spec === 'string' ? { source: spec } : (spec ?? {});
  const bad = (why: string) => new LaneVisionError('BACKBONE_SPEC_INVALID', `Invalid backbone settings: ${why}`);
  if (typeof raw.source !== 'string' || !raw.source.trim()) throw bad('"source" must name a preset, a folder or a URL');
  const out: BackboneSpec = { source: raw.source.trim() };
  if (raw.featureLayer !== undefined && raw.featureLayer !== '') {
    if (typeof raw.featureLayer !== 'string') throw bad('"featureLayer" must be a layer or node name');
    out.featureLayer = raw.featureLayer.trim();
  }
  if (raw.inputRange !== undefined) {
    if (!INPUT_RANGES.includes(raw.inputRange)) throw bad(`"inputRange" must be one of ${INPUT_RANGES.join(', ')}`);
    out.inputRange = raw.inputRange;
  }
  if (raw.inputSize !== undefined) {
    const { width, height } = raw.inputSize ?? ({} as { width?: unknown; height?: unknown });
    const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 8 && (n as number) <= MAX_INPUT_SIDE;
    if (!ok(width) || !ok(height)) throw bad(`"inputSize" needs whole-number width and height between 8 and ${MAX_INPUT_SIDE}`);
    out.inputSize = { width: width as number, height: height as number };
  }
  if (raw.classifierOutput !== undefined) {
    if (!CLASSIFIER_OUTPUTS.includes(raw.classifierOutput)) throw bad(`"classifierOutput" must be one of ${CLASSIFIER_OUTPUTS.join(', ')}`);
    out.classifierOutput = raw.classifierOutput;
  }
  if (raw.labels !== undefined) {
    if (!Array.isArray(raw.labels) || !raw.labels.every((l) => typeof l === 'string')) throw bad('"labels" must be a list of names');
    out.labels = [...raw.labels];
  }
  if (raw.precision !== undefined && raw.precision !== 'float32') {
    if (!BACKBONE_PRECISIONS.includes(raw.precision)) throw bad(`"precision" must be one of ${BACKBONE_PRECISIONS.join(', ')}`);
    out.precision = raw.precision;
  }
  if (raw.calibration !== undefined && raw.calibration !== '') {
    if (typeof raw.calibration !== 'string') throw bad('"calibration" must be a folder of the lane\'s frames');
    out.calibration = raw.calibration.trim();
  }
  if (out.precision === 'int8' && !out.calibration) {
    throw bad('"precision" int8 needs "calibration": a folder of the lane\'s own frames to calibrate the quantised backbone on');
  }
  return out;
}

class SharedBackbone implements Backbone {
  private users = 1;
  /** Registry entries pointing here, removed when the last user releases. */
  readonly registryKeys = new Set<string>();
  onDisposed?: (backbone: SharedBackbone) => void;

  constructor(
    readonly id: string,
    readonly source: string,
    readonly location: string,
    readonly preset: string | undefined,
    readonly format: ModelFormat,
    readonly featureLayer: string,
    readonly engine: InferenceEngine,
    readonly inputRange: InputRange,
    readonly classLabels: readonly string[] | undefined,
    readonly loadTimings: { fetchMs: number; buildMs: number; warmupMs: number },
    /** The engine's backend, plus any engine skipped on the way (ONNX Runtime, and why). */
    readonly backend: EngineBackendInfo,
    readonly precision: BackbonePrecision = 'float32',
  ) {}

  get inputSize(): { width: number; height: number } {
    return { ...this.engine.inputSize };
  }
  get fit(): FitPolicy {
    return { ...RECOMMENDED_FIT };
  }
  get featureSize(): number {
    return this.engine.featureSize;
  }
  get userCount(): number {
    return this.users;
  }

  /** Adds a user; false if the backbone was already disposed. */
  retain(): boolean {
    if (this.users <= 0) return false;
    this.users++;
    return true;
  }

  release(): void {
    if (this.users <= 0) return;
    if (--this.users > 0) return;
    this.engine.dispose();
    debug('disposed backbone %s', this.id);
    this.onDisposed?.(this);
  }
}

/**
 * Loads a backbone for one user (release() disposes it). Prefer `acquireBackbone`, which
 * shares one loaded copy per process.
 */
export async function loadBackbone(spec: BackboneSpec | string, options: LoadBackboneOptions = {}): Promise<Backbone> {
  return loadNormalised(normaliseBackboneSpec(spec), options);
}

async function loadNormalised(spec: BackboneSpec, options: LoadBackboneOptions): Promise<SharedBackbone> {
  const started = Date.now();
  const enginePreference = resolveEnginePreference(options.engine);
  const onnxThreads = enginePreference === 'tfjs' ? 1 : resolveOnnxThreads(options.onnxThreads);
  const resolved = resolveSource(spec.source);
  const preset = resolved.kind === 'url' ? resolved.preset : undefined;
  const { folder, origin: remoteOrigin } = await locateModel(resolved, spec.source, options);
  const files = await readModelFolder(folder).catch((err: unknown) => {
    if (remoteOrigin && isLaneVisionError(err) && err.code !== 'MODEL_NOT_FOUND') {
      throw new LaneVisionError(err.code, `The cached copy of ${spec.source} in ${folder} is damaged (${err.message}); delete that folder to download it again`, {
        cause: err,
      });
    }
    throw err;
  });
  // A folder is known by its name and content, not its path: copies elsewhere give the same features.
  const origin = remoteOrigin ?? `folder:${path.basename(files.dir)}`;
  const fetched = Date.now();

  const backend = await initBackend(options.backend);
  if (spec.precision === 'int8' && enginePreference === 'tfjs') {
    throw new LaneVisionError('BACKBONE_SPEC_INVALID', 'An int8 backbone runs on ONNX Runtime only: choose engine auto or onnx, or precision float32');
  }
  const calibration = spec.precision === 'int8' ? await readCalibrationSet(path.resolve(spec.calibration!)) : undefined;
  const choice = { featureLayer: spec.featureLayer ?? preset?.featureLayer, classifierOutput: spec.classifierOutput };
  const resolveInput = (declared: { width: number; height: number } | undefined) => ({
    inputSize: chooseInputSize(spec, preset, declared, files),
    inputRange: spec.inputRange ?? preset?.inputRange ?? (files.format === 'graph' ? '[0,1]' : ('[-1,1]' as InputRange)),
  });
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
  const assemble = (loaded: LoadedEngine) => {
    const { engine, inputSize, inputRange } = loaded;
    if (preset && !spec.featureLayer && engine.featureSize !== preset.featureSize) {
      debug('preset %s gave %d features, documented %d', preset.name, engine.featureSize, preset.featureSize);
    }
    const classLabels = loaded.hasClassifier ? chooseLabels(spec, files, engine.outputSize) : undefined;
    const precision = loaded.precision ?? 'float32';
    // int8 features are close to float's, not equal: their own id (and feature cache), the same weights (heads still fit).
    const quantisedOrigin = loaded.int8 ? `${origin}+int8:${loaded.int8.calibrationFingerprint.slice(0, 12)}` : origin;
    const id = formatBackboneId({ origin: quantisedOrigin, featureLayer: loaded.featureLayer, inputSize, inputRange, weights: files.fingerprint });
    const timings = { fetchMs: fetched - started, buildMs: loaded.buildMs, warmupMs: loaded.warmupMs };
    const backbone = new SharedBackbone(id, spec.source, files.dir, preset?.name, files.format, loaded.featureLayer, engine, inputRange, classLabels, timings, loaded.backend, precision);
    debug('loaded backbone %s from %s in %o ms (%s on %s, %d features)', id, files.dir, timings, engine.name, loaded.backend.name, engine.featureSize);
    return backbone;
  };

  let built: BuiltModel | undefined;
  const skipped: EngineBackendInfo['skipped'] = [];
  if (enginePreference !== 'tfjs') {
    const onnx = await loadOnnxBackbone({
      files,
      choice,
      requested: { inputSize: spec.inputSize ?? preset?.inputSize, inputRange: spec.inputRange ?? preset?.inputRange },
      resolveInput,
      buildTfjs: () => buildModel(files, choice),
      tfjsBackend: backend,
      cacheDir: options.cacheDir ?? defaultCacheDir(),
      threads: onnxThreads,
      maxBatch,
      onConverting: () => options.onStage?.('converting'),
      int8: calibration,
    });
    if (onnx.ok) {
      try {
        return assemble({ ...onnx, backend: onnx.engine.backend });
      } catch (err) {
        onnx.engine.dispose();
        throw err;
      }
    }
    if (enginePreference === 'onnx' || calibration) {
      onnx.built?.runner.dispose();
      throw new LaneVisionError(
        'ENGINE_UNAVAILABLE',
        calibration
          ? `The int8 backbone needs ONNX Runtime, which cannot run the backbone in ${files.dir}: ${onnx.reason}. Choose precision float32 to run it on TensorFlow.js.`
          : `ONNX Runtime cannot run the backbone in ${files.dir}: ${onnx.reason}. Choose engine "auto" to fall back to TensorFlow.js.`,
      );
    }
    debug('backbone %s stays on tfjs: %s', files.dir, onnx.reason);
    skipped.push({ name: 'onnxruntime', reason: onnx.reason });
    built = onnx.built;
  }

  built ??= await buildModel(files, choice);
  const builtTfjs = built;
  let engine: TfjsInferenceEngine | undefined;
  try {
    const { inputSize, inputRange } = resolveInput(builtTfjs.declaredInputSize);
    engine = new TfjsInferenceEngine(builtTfjs.runner, { backend, inputSize, inputRange, maxBatch });
    const builtAt = Date.now();
    await engine.warmUp();
    return assemble({
      engine,
      featureLayer: builtTfjs.featureLayer,
      hasClassifier: builtTfjs.hasClassifier,
      inputSize,
      inputRange,
      buildMs: builtAt - fetched,
      warmupMs: Date.now() - builtAt,
      backend: { ...backend, skipped: [...skipped, ...backend.skipped] },
    });
  } catch (err) {
    if (engine) engine.dispose();
    else builtTfjs.runner.dispose();
    throw err;
  }
}

/** A warmed-up engine and what it was built with, ready to become a SharedBackbone. */
interface LoadedEngine {
  engine: InferenceEngine;
  featureLayer: string;
  hasClassifier: boolean;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  buildMs: number;
  warmupMs: number;
  backend: EngineBackendInfo;
  precision?: BackbonePrecision;
  int8?: { calibrationFingerprint: string };
}

/** Finds (downloading if needed) the folder holding the model, and names a remote origin for the id. */
async function locateModel(
  resolved: ResolvedSource,
  source: string,
  options: DownloadOptions,
): Promise<{ folder: string; origin?: string }> {
  if (resolved.kind === 'folder') return { folder: await checkFolder(resolved.path, source) };
  const origin = resolved.preset ? `preset:${resolved.preset.name}` : resolved.modelJsonUrls[0];
  // Any cached copy wins, so machines without network never touch it.
  for (const url of resolved.modelJsonUrls) {
    const cached = await findCachedModel(url, options.cacheDir);
    if (cached) return { folder: cached, origin };
  }
  let firstError: unknown;
  for (const url of resolved.modelJsonUrls) {
    try {
      return { folder: await downloadModel(url, options), origin };
    } catch (err) {
      firstError ??= err;
      // A mirror helps when this address is gone or broken, not when the network is down.
      const tryNext = ['MODEL_NOT_FOUND', 'MODEL_DOWNLOAD_FAILED', 'MODEL_INVALID', 'MODEL_TRUNCATED'].some((c) => isLaneVisionError(err, c));
      if (!tryNext) throw err;
      debug('model %s unavailable (%s), trying next address', url, err instanceof Error ? err.message : err);
    }
  }
  throw firstError;
}

async function checkFolder(folder: string, source: string): Promise<string> {
  const exists = await fs.stat(folder).catch(() => undefined);
  if (!exists && !/[\\/]/.test(source)) {
    throw new LaneVisionError(
      'MODEL_NOT_FOUND',
      `"${source}" is neither a model folder nor a preset. Presets: ${presetNames().join(', ')}`,
    );
  }
  return folder;
}

function chooseInputSize(
  spec: BackboneSpec,
  preset: BackbonePreset | undefined,
  declared: { width: number; height: number } | undefined,
  files: ModelFiles,
): { width: number; height: number } {
  const chosen = spec.inputSize ?? preset?.inputSize ?? declared ?? { width: 224, height: 224 };
  if (declared && (declared.width !== chosen.width || declared.height !== chosen.height)) {
    throw new LaneVisionError(
      'BACKBONE_SPEC_INVALID',
      `The model in ${files.dir} takes ${declared.width}x${declared.height} images, not ${chosen.width}x${chosen.height}`,
    );
  }
  return { ...chosen };
}

function chooseLabels(spec: BackboneSpec, files: ModelFiles, outputSize: number): readonly string[] | undefined {
  for (const candidate of [spec.labels, files.labels]) {
    if (!candidate) continue;
    if (candidate.length === outputSize) return [...candidate];
    debug('ignoring %d labels for a classifier with %d outputs', candidate.length, outputSize);
  }
  return imagenetLabelsFor(outputSize);
}

// ---------------------------------------------------------------- sharing

const registry = new Map<string, Promise<SharedBackbone>>();
const byId = new Map<string, SharedBackbone>();
/** Listeners of the loads under way: a caller joining a load still sees its download and stages. */
const progressListeners = new Map<string, LoadListeners>();

interface LoadListeners {
  progress: Set<(progress: DownloadProgress) => void>;
  stage: Set<(stage: LoadStage) => void>;
}

function addListeners(listeners: LoadListeners, options: LoadBackboneOptions): void {
  if (options.onProgress) listeners.progress.add(options.onProgress);
  if (options.onStage) listeners.stage.add(options.onStage);
}

/** A copy is shared by spec and by the engine asked for: a user forcing tfjs gets its own copy beside an ONNX one. */
function registryKey(spec: BackboneSpec, options: LoadBackboneOptions): string {
  const resolved = resolveSource(spec.source);
  const where = resolved.kind === 'folder' ? `folder:${resolved.path}` : resolved.preset ? `preset:${resolved.preset.name}` : resolved.modelJsonUrls.join(' ');
  const engine = resolveEnginePreference(options.engine);
  const calibration = spec.calibration ? path.resolve(spec.calibration) : undefined;
  return JSON.stringify([where, spec.featureLayer, spec.inputRange, spec.inputSize, spec.classifierOutput, spec.labels, engine, spec.precision, calibration]);
}

/** Loaded copies are the same when the network and the engine running it are. */
function copyKey(backbone: SharedBackbone): string {
  return `${backbone.id} ${backbone.engine.name}`;
}

/**
 * The process-wide copy of a backbone: loaded (and warmed up) on first use, then shared.
 * Each call adds a user; each user calls `release()` once, and the last release disposes it.
 * Specs that end up at the same `id` share one copy too.
 */
export async function acquireBackbone(spec: BackboneSpec | string, options: LoadBackboneOptions = {}): Promise<Backbone> {
  const normal = normaliseBackboneSpec(spec);
  const key = registryKey(normal, options);
  for (;;) {
    const pending = registry.get(key);
    if (!pending) {
      const listeners: LoadListeners = { progress: new Set(), stage: new Set() };
      addListeners(listeners, options);
      progressListeners.set(key, listeners);
      const onProgress = (progress: DownloadProgress) => listeners.progress.forEach((listener) => listener(progress));
      const onStage = (stage: LoadStage) => listeners.stage.forEach((listener) => listener(stage));
      const loading = loadNormalised(normal, { ...options, onProgress, onStage }).then((loaded) => adopt(loaded, key));
      registry.set(key, loading);
      const settled = () => {
        if (progressListeners.get(key) === listeners) progressListeners.delete(key);
      };
      loading.then(settled, () => {
        settled();
        if (registry.get(key) === loading) registry.delete(key);
      });
      return loading; // the new copy already counts this caller
    }
    const joined = progressListeners.get(key);
    if (joined) addListeners(joined, options);
    const backbone = await pending;
    if (backbone.retain()) return backbone;
    // Released by its last user while we waited: load afresh.
    if (registry.get(key) === pending) registry.delete(key);
  }
}

/** Registers a freshly loaded backbone, or hands back an equal one already live. */
function adopt(loaded: SharedBackbone, key: string): SharedBackbone {
  const existing = byId.get(copyKey(loaded));
  if (existing && existing.retain()) {
    loaded.release();
    existing.registryKeys.add(key);
    return existing;
  }
  byId.set(copyKey(loaded), loaded);
  loaded.registryKeys.add(key);
  loaded.onDisposed = (gone) => {
    if (byId.get(copyKey(gone)) === gone) byId.delete(copyKey(gone));
    for (const k of gone.registryKeys) registry.delete(k);
  };
  return loaded;
}

/** Backbones currently shared in this process, with their user counts (for status displays). */
export function sharedBackbones(): { id: string; users: number }[] {
  return [...byId.values()].map((b) => ({ id: b.id, users: b.userCount }));
}
