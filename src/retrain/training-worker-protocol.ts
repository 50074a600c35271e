/**
 * Messages between a TrainingWorker (main thread) and its worker thread. Everything here
 * crosses `postMessage`, so it is plain data: no class instances, no functions.
 */
import { LaneVisionError } from '../errors.js';
import type { BackboneSpec, BackendPreference, EngineBackendInfo, EngineName, EnginePreference } from '../engine/index.js';
import type { SaveModelInput } from '../model-store/index.js';
import type { RetrainDataset, RetrainOptions, RetrainProgress, RetrainResult } from './retrain.js';

/** What the worker thread starts with (`workerData`). */
export interface TrainingWorkerData {
  spec: BackboneSpec;
  load: { backend?: BackendPreference; engine?: EnginePreference; onnxThreads: number; cacheDir?: string };
  featureCacheBytes?: number;
}

/** The retrain settings that travel as they are; dataset, store, signal and progress are bridged. */
export type PlainRetrainOptions = Omit<RetrainOptions, 'dataset' | 'backbone' | 'store' | 'cache' | 'signal' | 'onProgress'>;

/**
 * Calls a worker job makes on the main thread: its dataset and store, and its feature
 * cache (vectors the lane already computed, e.g. while capturing, by FeatureCache key).
 */
export type MainThreadCall =
  | { method: 'entries'; args: [] }
  | { method: 'cachedFeatures'; args: [keys: string[]] }
  | { method: 'fingerprint'; args: Parameters<RetrainDataset['fingerprint']> }
  | { method: 'saveModel'; args: [SaveModelInput] };

export interface SerialisedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

export type ToWorker =
  | { type: 'retrain'; jobId: number; options: PlainRetrainOptions; storeDir: string }
  | { type: 'abort'; jobId: number; reason: SerialisedError }
  | { type: 'reply'; callId: number; value?: unknown; error?: SerialisedError }
  | { type: 'dispose' };

export type FromWorker =
  | { type: 'ready'; backbone: LoadedInWorker }
  | { type: 'load-failed'; error: SerialisedError }
  | { type: 'progress'; jobId: number; progress: RetrainProgress }
  | ({ type: 'call'; jobId: number; callId: number } & MainThreadCall)
  | { type: 'done'; jobId: number; result: RetrainResult; embedded: EmbeddedInWorker }
  | { type: 'failed'; jobId: number; error: SerialisedError };

/** Feature vectors the worker computed for a job, by FeatureCache key, for the main thread's cache. */
export interface EmbeddedInWorker {
  keys: string[];
  vectors: Float32Array[];
}

/** The worker's own copy of the backbone, as the main thread sees it. */
export interface LoadedInWorker {
  id: string;
  engine: EngineName;
  /** The engine's backend: the tfjs backend, or ONNX Runtime's execution provider. */
  backend: EngineBackendInfo['name'];
  featureSize: number;
}

export function serialiseError(err: unknown): SerialisedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, code: typeof code === 'string' ? code : undefined, stack: err.stack };
  }
  return { name: 'Error', message: String(err) };
}

/** The error again, a LaneVisionError if it was one; its stack says which thread threw it. */
export function deserialiseError(data: SerialisedError): Error {
  let err: Error;
  if (data.name === 'LaneVisionError' && data.code) err = new LaneVisionError(data.code, data.message);
  else {
    err = new Error(data.message);
    err.name = data.name;
    if (data.code) Object.assign(err, { code: data.code });
  }
  if (data.stack) err.stack = data.stack;
  return err;
}
