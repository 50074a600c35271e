/**
 * Puts a backbone on ONNX Runtime: from the conversion cache when it holds this model, else
 * by converting the tfjs model, checking the conversion against tfjs on test frames and
 * caching it. Anything that stops ONNX Runtime (not installed, a layer it cannot convert, a
 * conversion that does not reproduce tfjs) is returned as a reason, never thrown, so the
 * caller falls back to tfjs; problems with the model or the settings themselves are thrown
 * as they would be on tfjs.
 */
import createDebug from 'debug';
import type { BackendInfo } from '../backend.js';
import { TfjsInferenceEngine } from '../tfjs-engine.js';
import type { BuiltModel } from '../tfjs-models.js';
import type { ModelFiles } from '../model-files.js';
import type { InputRange } from '../types.js';
import { CONVERTER_VERSION, type ConversionTarget, convertToOnnx, operatorCounts } from './convert.js';
import { type OnnxCacheMeta, onnxCacheEntry, readCachedOnnx, writeCachedOnnx } from './onnx-cache.js';
import { OnnxInferenceEngine } from './onnx-engine.js';
import { NotConvertibleError } from './onnx-graph.js';
import { type OrtModule, type OrtSessionOptions, loadOnnxRuntime } from './runtime.js';
import { LaneVisionError } from '../../errors.js';
import type { CalibrationSet } from '../../quantise/calibration-frames.js';
import { featureAgreement, quantiseBackbone } from '../../quantise/quantise-backbone.js';
import { QUANTISER_VERSION } from '../../quantise/qdq.js';
import type { BackbonePrecision } from '../types.js';

const debug = createDebug('lane-vision:engine');

type Size = { width: number; height: number };

export interface OnnxBackboneRequest {
  files: ModelFiles;
  /** Feature layer and classifier settings as given to tfjs (part of the cache key). */
  choice: { featureLayer?: string; classifierOutput?: 'probabilities' | 'logits' | 'none' };
  /** Input size and range asked for by the spec or preset (part of the cache key). */
  requested: { inputSize?: Size; inputRange?: InputRange };
  /** The input size and range for a model declaring `declared` (throws for settings that do not fit). */
  resolveInput(declared: Size | undefined): { inputSize: Size; inputRange: InputRange };
  /** Builds the tfjs model: on a cache miss it decides the feature layer and checks the conversion. */
  buildTfjs(): Promise<BuiltModel>;
  /** The tfjs backend, for the check run. */
  tfjsBackend: BackendInfo;
  cacheDir: string;
  threads: number;
  maxBatch: number;
  /** Told when the model is not in the conversion cache and is converted (the slow part of a first start). */
  onConverting?: () => void;
  /** Quantise to int8, calibrated on these frames (part of the cache key). */
  int8?: CalibrationSet;
}

export type OnnxBackboneResult =
  | {
      ok: true;
      engine: OnnxInferenceEngine;
      featureLayer: string;
      hasClassifier: boolean;
      inputSize: Size;
      inputRange: InputRange;
      /** Loaded from the conversion cache (no tfjs model was built). */
      fromCache: boolean;
      precision: BackbonePrecision;
      /** For int8: how close its features came to float's on the calibration frames. */
      int8?: Int8Check;
      buildMs: number;
      warmupMs: number;
    }
  | {
      ok: false;
      reason: string;
      /** The tfjs model, when it was built on the way: the caller owns it (runs or disposes it). */
      built?: BuiltModel;
    };

/** How an int8 backbone compared with its float original when it was made. */
export interface Int8Check {
  calibrationFrames: number;
  /** sha256 of the calibration files (see readCalibrationSet). */
  calibrationFingerprint: string;
  meanCosine: number;
  minCosine: number;
  int8Weights: number;
  quantisedTensors: number;
}

/**
 * Mean cosine between int8 and float features on the calibration frames below which the
 * int8 model is refused (MobileNetV2 0.35 gives about 0.99). It catches a quantisation the
 * network does not survive; whether the frames represent the lane is the user's choice.
 */
export const INT8_MIN_MEAN_COSINE = 0.95;

/** How close ONNX features must be to tfjs's on the check frames: relative to their size. */
export const RELATIVE_TOLERANCE = 1e-3;

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export async function loadOnnxBackbone(request: OnnxBackboneRequest): Promise<OnnxBackboneResult> {
  const runtime = loadOnnxRuntime();
  if ('reason' in runtime) return { ok: false, reason: runtime.reason };
  const started = Date.now();
  const variant = {
    converter: CONVERTER_VERSION,
    featureLayer: request.choice.featureLayer ?? null,
    classifierOutput: request.choice.classifierOutput ?? null,
    inputSize: request.requested.inputSize ?? null,
    inputRange: request.requested.inputRange ?? null,
    // Only int8 adds to the key, so float conversions cached before int8 existed stay valid.
    ...(request.int8 ? { precision: 'int8', quantiser: QUANTISER_VERSION, calibration: request.int8.fingerprint } : {}),
  };
  const entry = onnxCacheEntry(request.cacheDir, request.files.fingerprint, variant);

  const cached = await readCachedOnnx(entry);
  if (cached && cached.meta.converterVersion === CONVERTER_VERSION && cached.meta.sourceFingerprint === request.files.fingerprint) {
    const { meta } = cached;
    const input = request.resolveInput(meta.declaredInputSize);
    if (sameSize(input.inputSize, meta.inputSize) && input.inputRange === meta.inputRange) {
      const opened = await openEngine(runtime.ort, cached.bytes, request, meta.inputSize, meta.hasClassifier);
      if ('engine' in opened) {
        const openedAt = Date.now();
        let warmed = true;
        try {
          await opened.engine.warmUp();
        } catch (err) {
          warmed = false;
          debug('cached ONNX model %s failed to run: %s', entry.onnxPath, message(err));
        }
        if (warmed && opened.engine.featureSize === meta.featureSize && opened.engine.outputSize === meta.outputSize) {
          debug('ONNX backbone from cache %s', entry.onnxPath);
          return {
            ok: true,
            engine: opened.engine,
            featureLayer: meta.featureLayer,
            hasClassifier: meta.hasClassifier,
            ...input,
            fromCache: true,
            precision: meta.int8 ? 'int8' : 'float32',
            ...(meta.int8 ? { int8: meta.int8 } : {}),
            buildMs: openedAt - started,
            warmupMs: Date.now() - openedAt,
          };
        }
        opened.engine.dispose();
      }
      debug('cached ONNX model %s unusable; converting again', entry.onnxPath);
    }
  }

  request.onConverting?.();
  const built = await request.buildTfjs();
  let input: { inputSize: Size; inputRange: InputRange };
  try {
    input = request.resolveInput(built.declaredInputSize);
  } catch (err) {
    built.runner.dispose();
    throw err;
  }
  const target: ConversionTarget = {
    files: request.files,
    featureLayer: built.featureLayer,
    hasClassifier: built.hasClassifier,
    outputIsLogits: built.runner.outputIsLogits,
    ...input,
  };
  let converted: Awaited<ReturnType<typeof convertToOnnx>>;
  try {
    converted = await convertToOnnx(target);
  } catch (err) {
    const reason = err instanceof NotConvertibleError ? `cannot convert the model to ONNX: ${err.message}` : `ONNX conversion failed: ${message(err)}`;
    return { ok: false, reason, built };
  }
  const opened = await openEngine(runtime.ort, converted.bytes, request, input.inputSize, built.hasClassifier);
  if ('reason' in opened) return { ok: false, reason: opened.reason, built };
  const { engine } = opened;
  const convertedAt = Date.now();

  // The check run doubles as the tfjs warm-up, should the caller fall back to it.
  const tfjsEngine = new TfjsInferenceEngine(built.runner, { backend: request.tfjsBackend, ...input, maxBatch: request.maxBatch });
  let verifiedMaxDiff: number;
  try {
    await engine.warmUp();
    verifiedMaxDiff = await compareWithTfjs(engine, tfjsEngine, input.inputSize, built.hasClassifier);
  } catch (err) {
    engine.dispose();
    return { ok: false, reason: `the ONNX model could not be checked against tfjs: ${message(err)}`, built };
  }
  if (!(verifiedMaxDiff <= RELATIVE_TOLERANCE)) {
    engine.dispose();
    return { ok: false, reason: `the ONNX conversion does not reproduce tfjs (relative difference ${verifiedMaxDiff.toExponential(1)})`, built };
  }
  built.runner.dispose();

  let bytes = converted.bytes;
  let operators = converted.operators;
  let int8: Int8Check | undefined;
  let served = engine;
  if (request.int8) {
    try {
      const quantised = await quantiseEngine(runtime.ort, converted.model, engine, request, input.inputSize, built.hasClassifier);
      ({ bytes, operators, int8 } = quantised);
      served = quantised.engine;
    } finally {
      engine.dispose();
    }
  }

  const meta: Omit<OnnxCacheMeta, 'onnxSha256' | 'createdAt'> = {
    converterVersion: CONVERTER_VERSION,
    sourceFingerprint: request.files.fingerprint,
    variant,
    featureLayer: built.featureLayer,
    hasClassifier: built.hasClassifier,
    outputIsLogits: built.runner.outputIsLogits,
    declaredInputSize: built.declaredInputSize,
    ...input,
    featureSize: served.featureSize,
    outputSize: served.outputSize,
    verifiedMaxDiff,
    operators,
    ...(int8 ? { int8 } : {}),
  };
  await writeCachedOnnx(entry, bytes, meta);
  debug('converted %s to ONNX (%o), checked against tfjs: relative difference %s', request.files.dir, operators, verifiedMaxDiff.toExponential(1));
  if (int8) debug('quantised to int8 on %d frames: mean cosine to float %s (lowest %s)', int8.calibrationFrames, int8.meanCosine.toFixed(4), int8.minCosine.toFixed(4));
  return {
    ok: true,
    engine: served,
    precision: int8 ? 'int8' : 'float32',
    ...(int8 ? { int8 } : {}),
    featureLayer: built.featureLayer,
    hasClassifier: built.hasClassifier,
    ...input,
    fromCache: false,
    buildMs: convertedAt - started,
    warmupMs: Date.now() - convertedAt,
  };
}

/**
 * Quantises the checked float conversion on the calibration frames, opens it and compares
 * its features with `float`'s on those frames; throws BACKBONE_INT8_INACCURATE when they
 * drift too far (the caller asked for int8, so it is refused rather than swapped silently).
 */
async function quantiseEngine(
  ort: OrtModule,
  floatModel: Parameters<typeof quantiseBackbone>[1],
  float: OnnxInferenceEngine,
  request: OnnxBackboneRequest,
  inputSize: Size,
  hasClassifier: boolean,
): Promise<{ engine: OnnxInferenceEngine; bytes: Uint8Array; operators: Record<string, number>; int8: Int8Check }> {
  const calibration = request.int8!;
  const frames = await calibration.frames(inputSize);
  const quantised = await quantiseBackbone(ort, floatModel, frames, {
    inputName: floatModel.inputs[0].name,
    inputSize,
    session: onnxSessionOptions(request.threads),
  });
  const opened = await openEngine(ort, quantised.bytes, request, inputSize, hasClassifier);
  if ('reason' in opened) throw new LaneVisionError('ENGINE_UNAVAILABLE', `The int8 backbone could not be opened: ${opened.reason}`);
  try {
    await opened.engine.warmUp();
    const agreement = featureAgreement(await float.features(frames), await opened.engine.features(frames));
    if (!(agreement.meanCosine >= INT8_MIN_MEAN_COSINE)) {
      throw new LaneVisionError(
        'BACKBONE_INT8_INACCURATE',
        `The int8 backbone's features drift from float's on the calibration frames in ${calibration.folder} ` +
          `(mean cosine ${agreement.meanCosine.toFixed(3)}, needs ${INT8_MIN_MEAN_COSINE}); use precision float32, or calibrate on more of the lane's frames`,
      );
    }
    return {
      engine: opened.engine,
      bytes: quantised.bytes,
      operators: operatorCounts(quantised.model),
      int8: {
        calibrationFrames: frames.length,
        calibrationFingerprint: calibration.fingerprint,
        ...agreement,
        int8Weights: quantised.summary.int8Weights,
        quantisedTensors: quantised.summary.quantisedTensors,
      },
    };
  } catch (err) {
    opened.engine.dispose();
    throw err;
  }
}

async function openEngine(
  ort: OrtModule,
  bytes: Uint8Array,
  request: OnnxBackboneRequest,
  inputSize: Size,
  hasClassifier: boolean,
): Promise<{ engine: OnnxInferenceEngine } | { reason: string }> {
  try {
    const session = await ort.InferenceSession.create(bytes, onnxSessionOptions(request.threads));
    const backend = { name: 'cpu' as const, preference: 'auto' as const, skipped: [] };
    return { engine: new OnnxInferenceEngine(ort, session, { backend, inputSize, hasClassifier, maxBatch: request.maxBatch, threads: request.threads }) };
  } catch (err) {
    return { reason: `ONNX Runtime refused the converted model: ${message(err)}` };
  }
}

function sameSize(a: Size, b: Size): boolean {
  return a.width === b.width && a.height === b.height;
}

/** Two frames nobody would photograph but every layer reacts to: seeded noise, and a colour ramp. */
export function checkFrames(size: Size): { data: Uint8Array }[] {
  const length = size.width * size.height * 3;
  const noise = new Uint8Array(length);
  let seed = 0x2545f491;
  for (let i = 0; i < length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    noise[i] = seed >>> 24;
  }
  const ramp = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const pixel = Math.floor(i / 3);
    const x = pixel % size.width;
    const y = Math.floor(pixel / size.width);
    ramp[i] = [(x * 255) / size.width, (y * 255) / size.height, ((x + y) * 127) / (size.width + size.height)][i % 3];
  }
  return [{ data: noise }, { data: ramp }];
}

/** Largest difference between the engines' outputs on the check frames, relative to the outputs' size. */
async function compareWithTfjs(onnx: OnnxInferenceEngine, tfjs: TfjsInferenceEngine, size: Size, hasClassifier: boolean): Promise<number> {
  const frames = checkFrames(size);
  let worst = maxRelativeDiff(await onnx.features(frames), await tfjs.features(frames));
  if (hasClassifier) worst = Math.max(worst, maxRelativeDiff(await onnx.predict(frames), await tfjs.predict(frames)));
  return worst;
}

export function maxRelativeDiff(a: Float32Array[], b: Float32Array[]): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < b.length; i++) {
    if (a[i]?.length !== b[i].length) return Infinity;
    for (let j = 0; j < b[i].length; j++) {
      diff = Math.max(diff, Math.abs(a[i][j] - b[i][j]));
      scale = Math.max(scale, Math.abs(b[i][j]));
    }
  }
  return diff / scale;
}

/**
 * Session options for a converted backbone; `bench/run.ts --only frame-path` states them.
 * - `all`: constant folding and node fusions (a Conv with its activation) plus the CPU
 *   layout transform (NCHWc), which the basic and extended levels leave out.
 * - one inter-op thread, sequential: a MobileNet is one chain of operators, nothing runs
 *   side by side, so a parallel executor only adds hand-offs.
 * - intra-op threads from the machine (onnxThreadsForMachine) unless set.
 */
export function onnxSessionOptions(threads: number): OrtSessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    logSeverityLevel: 3,
  };
}
