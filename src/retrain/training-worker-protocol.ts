/**
 * Messages between a TrainingWorker (main thread) and its worker thread. Everything here
 * crosses `postMessage`, so it is plain data: no class instances, no functions.
 */
import type { SerialisedError } from '../threads/serialised-error.js';
import type { BackboneLoadInWorker, StopMessage } from '../threads/backbone-thread.js';
import type { SaveModelInput } from '../model-store/index.js';
import type { RetrainDataset, RetrainOptions, RetrainProgress, RetrainResult } from './retrain.js';

/** What the worker thread starts with (`workerData`). */
export interface TrainingWorkerData extends BackboneLoadInWorker {
  featureCacheBytes?: number;
  /** The lane's LaneActivity counter: training steps aside while it has frames in flight. */
  laneActivity?: SharedArrayBuffer;
}

/** The retrain settings that travel as they are; dataset, store, signal and progress are bridged. */
export type PlainRetrainOptions = Omit<RetrainOptions, 'dataset' | 'validation' | 'backbone' | 'store' | 'cache' | 'signal' | 'onProgress' | 'beforeStep'> & {
  /** The job has a validation set, read through 'validationEntries' calls. */
  hasValidation?: boolean;
};

/**
 * Calls a worker job makes on the main thread: its dataset and store, and its feature
 * cache (vectors the lane already computed, e.g. while capturing, by FeatureCache key).
 */
export type MainThreadCall =
  | { method: 'entries'; args: [] }
  | { method: 'validationEntries'; args: [] }
  | { method: 'cachedFeatures'; args: [keys: string[]] }
  | { method: 'fingerprint'; args: Parameters<RetrainDataset['fingerprint']> }
  | { method: 'saveModel'; args: [SaveModelInput] };

export type ToWorker =
  | { type: 'retrain'; jobId: number; options: PlainRetrainOptions; storeDir: string }
  | { type: 'abort'; jobId: number; reason: SerialisedError }
  | { type: 'reply'; callId: number; value?: unknown; error?: SerialisedError }
  | StopMessage;

/** Besides the LoadMessage every backbone thread sends (handled by BackboneThread). */
export type FromWorker =
  | { type: 'progress'; jobId: number; progress: RetrainProgress }
  | ({ type: 'call'; jobId: number; callId: number } & MainThreadCall)
  | { type: 'done'; jobId: number; result: RetrainResult; embedded: EmbeddedInWorker }
  | { type: 'failed'; jobId: number; error: SerialisedError };

/** Feature vectors the worker computed for a job, by FeatureCache key, for the main thread's cache. */
export interface EmbeddedInWorker {
  keys: string[];
  vectors: Float32Array[];
}

