/**
 * Retraining off the main event loop. A TrainingWorker owns one worker thread with its own
 * tfjs, ONNX Runtime and copy of the backbone, and a feature cache that stays warm across
 * retrains; embedding frames and fitting the head happen there, so the lane keeps
 * classifying at full rate on the main thread meanwhile.
 *
 * The worker reads the dataset and saves the new version through the main thread's
 * handles: the store keeps a single writer (its write queue, atomic version folder and
 * active pointer), and classifiers following the store switch the moment it is saved.
 * The per-store retrain lock is held here, so `retrain()` and worker retrains exclude
 * each other.
 */
import { EventEmitter } from 'node:events';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import {
  normaliseBackboneSpec,
  type Backbone,
  type BackboneSpec,
  type BackendPreference,
  type EnginePreference,
} from '../engine/index.js';
import { resolveOnnxThreads } from '../engine/onnx/engine-preference.js';
import { sharedFeatureCache, type FeatureCache } from '../features/index.js';
import { withRetrainLock, type RetrainOptions, type RetrainResult } from './retrain.js';
import { deserialiseError, serialiseError } from '../threads/serialised-error.js';
import { BackboneThread, enginePreferenceOf, type LoadedInWorker } from '../threads/backbone-thread.js';
import { threadChoiceFrom, type ThreadChoice } from '../threads/thread-choice.js';
import type { LaneActivity } from '../threads/lane-activity.js';
import {
  type FromWorker,
  type MainThreadCall,
  type ToWorker,
  type TrainingWorkerData,
} from './training-worker-protocol.js';

const debug = createDebug('lane-vision:training-worker');

/** `main` trains on the main thread (the escape hatch), `worker` (default) in a TrainingWorker. */
export const TRAIN_THREAD_ENV_VAR = 'LANE_VISION_TRAIN_THREAD';
/** ONNX Runtime intra-op threads of the training worker's backbone. */
export const TRAIN_ONNX_THREADS_ENV_VAR = 'LANE_VISION_TRAIN_ONNX_THREADS';
/** One compute thread, so classification on the main thread keeps a core of a two-core box. */
export const DEFAULT_TRAIN_ONNX_THREADS = 1;
/** How long dispose() lets the thread finish what it runs before terminating it. */
const DISPOSE_GRACE_MS = 5_000;

export { enginePreferenceOf };
export type TrainThread = ThreadChoice;

/** Where trainings run: the value given, else LANE_VISION_TRAIN_THREAD, else `worker`. */
export function trainThreadFrom(value: unknown = process.env[TRAIN_THREAD_ENV_VAR]): TrainThread {
  return threadChoiceFrom(TRAIN_THREAD_ENV_VAR, 'TRAIN_THREAD_UNKNOWN', value);
}

export interface TrainingWorkerOptions {
  /** The backbone to load in the worker: the same spec the main thread's Backbone was loaded from. */
  spec: BackboneSpec | string;
  /** tfjs backend in the worker (heads, and the backbone on tfjs). Default: LANE_VISION_BACKEND, else the best available. */
  backend?: BackendPreference;
  /** Default: LANE_VISION_ENGINE, else auto. `enginePreferenceOf(mainBackbone)` runs the same engine as the main thread. */
  engine?: EnginePreference;
  /** ONNX Runtime threads in the worker. Default: LANE_VISION_TRAIN_ONNX_THREADS, else 1. */
  onnxThreads?: number;
  /** Model download cache (default: LANE_VISION_CACHE, else ~/.cache/lane-vision/models). */
  cacheDir?: string;
  /** Size of the worker's feature cache. Default: the library's (256 MB). */
  featureCacheBytes?: number;
  /** The lane's frames in flight (its FrameEmbedder's): the training steps aside for them between its own frames. */
  laneActivity?: LaneActivity;
}

/**
 * `retrain()`'s options, run with the worker's own copy of the backbone (`backbone`, the
 * main thread's, is optional and only checked) and its own feature cache. `dataset` and
 * `store` are the main thread's handles. `cache` is the main thread's feature cache (default
 * the process-wide one, null for none): the worker takes the vectors it already holds for
 * the dataset's frames (captured frames are embedded as they arrive), and a finished
 * retrain leaves the vectors it computed there, as `retrain()` would.
 */
export type WorkerRetrainOptions = Omit<RetrainOptions, 'backbone'> & {
  /** The main thread's backbone: the worker's copy must have its id, or the job fails. */
  backbone?: Pick<Backbone, 'id'>;
};

interface Job {
  options: WorkerRetrainOptions;
  resolve: (result: RetrainResult) => void;
  reject: (err: Error) => void;
  /** Set when the main thread's side failed (onProgress threw): reported once the worker stops. */
  failure?: Error;
}

/** One worker thread and the trainings sent to it. */
interface Thread {
  host: BackboneThread<FromWorker>;
  jobs: Map<number, Job>;
}

function workerFailed(message: string, cause?: unknown): LaneVisionError {
  return new LaneVisionError(
    'TRAINING_WORKER_FAILED',
    `The training worker failed. ${message}. The next training starts a fresh worker; ${TRAIN_THREAD_ENV_VAR}=main trains on the main thread instead.`,
    { cause },
  );
}

export interface TrainingWorkerEvents {
  /** A worker thread loaded its backbone. */
  ready: [info: LoadedInWorker & { threadId: number }];
  /** A worker thread ended: disposed (code 0, or 1 if it had to be terminated), crashed or failed to load. */
  exit: [info: { threadId: number; code: number }];
}

export class TrainingWorker extends EventEmitter<TrainingWorkerEvents> {
  private readonly data: TrainingWorkerData;
  private thread: Thread | undefined;
  private nextJobId = 1;
  private disposed = false;

  constructor(options: TrainingWorkerOptions) {
    super();
    this.data = {
      spec: normaliseBackboneSpec(options.spec),
      load: {
        backend: options.backend,
        engine: options.engine,
        onnxThreads: resolveOnnxThreads(options.onnxThreads ?? trainOnnxThreadsFromEnv()),
        cacheDir: options.cacheDir,
      },
      featureCacheBytes: options.featureCacheBytes,
      laneActivity: options.laneActivity?.buffer,
    };
  }

  /** Whether a worker thread is up (started by a retrain, ended by a crash or dispose). */
  get running(): boolean {
    return this.thread !== undefined;
  }

  /**
   * Retrains into `options.store` in the worker thread (started on first use), with the
   * result `retrain()` gives. Progress comes back through `onProgress`; aborting
   * `signal` cancels inside the worker (no version is written). RETRAIN_BUSY while
   * another retrain of the same store runs, in a worker or not.
   */
  retrain(options: WorkerRetrainOptions): Promise<RetrainResult> {
    if (this.disposed) return Promise.reject(new LaneVisionError('TRAINING_WORKER_DISPOSED', 'The training worker was disposed; create a new one.'));
    return withRetrainLock(options.store, () => this.run(options));
  }

  private async run(options: WorkerRetrainOptions): Promise<RetrainResult> {
    const { signal } = options;
    signal?.throwIfAborted();
    const thread = this.thread ?? this.start();
    const jobId = this.nextJobId++;
    const job = new Promise<RetrainResult>((resolve, reject) => {
      thread.jobs.set(jobId, { options, resolve, reject });
    });
    job.catch(() => undefined); // it may fail (worker crash) before it is awaited
    const onAbort = () => {
      if (!thread.jobs.has(jobId)) return;
      thread.host.worker.postMessage({ type: 'abort', jobId, reason: serialiseError(signal!.reason) } satisfies ToWorker);
    };
    this.updateRef(thread);
    try {
      // Cancelled while the worker loads: nothing has started, stop waiting at once.
      const loaded = await abortable(thread.host.ready, signal);
      if (options.backbone && options.backbone.id !== loaded.id) {
        throw new LaneVisionError(
          'TRAINING_WORKER_BACKBONE_MISMATCH',
          `The training worker loaded backbone ${loaded.id}, but the lane uses ${options.backbone.id}; were the model files changed? Redeploy to reload both.`,
        );
      }
      if (thread.host.broken) throw thread.host.broken;
      signal?.throwIfAborted();
      signal?.addEventListener('abort', onAbort, { once: true });
      const { dataset: _dataset, validation, store, backbone: _backbone, cache: _cache, signal: _signal, onProgress: _onProgress, beforeStep: _beforeStep, ...plain } = options;
      thread.host.worker.postMessage({ type: 'retrain', jobId, options: { ...plain, hasValidation: validation !== undefined }, storeDir: store.dir } satisfies ToWorker);
      return await job;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      thread.jobs.delete(jobId);
      this.updateRef(thread);
    }
  }

  /**
   * Ends the worker thread: it cancels what it runs, releases its backbone and exits
   * (terminated if that takes longer than a few seconds). Trainings still waiting fail
   * with TRAINING_WORKER_DISPOSED. Later retrains are refused.
   */
  async dispose(): Promise<void> {
    this.disposed = true;
    const thread = this.thread;
    if (!thread) return;
    this.thread = undefined;
    const outcome = await thread.host.stop(new LaneVisionError('TRAINING_WORKER_DISPOSED', 'The training worker was stopped before the training finished.'), DISPOSE_GRACE_MS);
    if (outcome === 'terminated') debug('worker %d did not stop within %d ms: terminated it', thread.host.threadId, DISPOSE_GRACE_MS);
  }

  private start(): Thread {
    const jobs = new Map<number, Job>();
    const host: BackboneThread<FromWorker> = new BackboneThread<FromWorker>({
      callerFile: __filename,
      entryName: 'training-worker-entry',
      data: this.data,
      failure: workerFailed,
      onMessage: (message) => this.onMessage(thread, message),
      onBroken: (err) => {
        if (this.thread === thread) this.thread = undefined;
        debug('worker %d out of use (%d trainings failed): %s', host.threadId, jobs.size, err.message);
        for (const job of jobs.values()) job.reject(err);
        jobs.clear();
      },
      onExit: (code) => this.emit('exit', { threadId: host.threadId, code }),
    });
    const thread: Thread = { host, jobs };
    this.thread = thread;
    debug('started worker %d for %s', host.threadId, this.data.spec.source);
    host.ready.then((backbone) => {
      debug('worker %d loaded %s (%s on %s)', host.threadId, backbone.id, backbone.engine, backbone.backend);
      this.emit('ready', { ...backbone, threadId: host.threadId });
    }, () => undefined);
    this.updateRef(thread);
    return thread;
  }

  private onMessage(thread: Thread, message: FromWorker): void {
    switch (message.type) {
      case 'progress': {
        const job = thread.jobs.get(message.jobId);
        if (!job || job.failure) break;
        try {
          job.options.onProgress?.(message.progress);
        } catch (err) {
          // As in retrain(): a throwing progress callback ends the training with its error.
          job.failure = err as Error;
          thread.host.worker.postMessage({ type: 'abort', jobId: message.jobId, reason: serialiseError(err) } satisfies ToWorker);
        }
        break;
      }
      case 'call':
        void this.answer(thread, message);
        break;
      case 'done':
      case 'failed': {
        const job = thread.jobs.get(message.jobId);
        if (!job) break;
        thread.jobs.delete(message.jobId);
        if (job.failure) {
          job.reject(job.failure);
        } else if (message.type === 'failed') {
          job.reject(deserialiseError(message.error));
        } else {
          const cache = mainCache(job.options);
          message.embedded.keys.forEach((key, i) => cache?.set(key, message.embedded.vectors[i]));
          job.resolve(message.result);
        }
        break;
      }
    }
  }

  /** Runs a dataset / store call of a job on the main thread and sends back the answer. */
  private async answer(thread: Thread, message: Extract<FromWorker, { type: 'call' }>): Promise<void> {
    let reply: ToWorker;
    try {
      const job = thread.jobs.get(message.jobId);
      if (!job) throw new LaneVisionError('TRAINING_WORKER_DISPOSED', 'The training this call belongs to has ended.');
      reply = { type: 'reply', callId: message.callId, value: await callOnMain(job, message) };
    } catch (err) {
      reply = { type: 'reply', callId: message.callId, error: serialiseError(err) };
    }
    // Also after dispose: the refusal lets the worker's job end, and the thread with it.
    thread.host.worker.postMessage(reply);
  }

  /** Holds the process open only while a training waits for the worker. */
  private updateRef(thread: Thread): void {
    thread.host.holdProcess(thread.jobs.size > 0);
  }
}

function trainOnnxThreadsFromEnv(): number {
  const raw = process.env[TRAIN_ONNX_THREADS_ENV_VAR];
  if (raw === undefined || raw.trim() === '') return DEFAULT_TRAIN_ONNX_THREADS;
  const threads = Number(raw);
  if (!Number.isInteger(threads)) {
    throw new LaneVisionError('ENGINE_THREADS_INVALID', `${TRAIN_ONNX_THREADS_ENV_VAR} must be a whole number of threads, got "${raw}".`);
  }
  return threads;
}

async function callOnMain(job: Job, call: MainThreadCall): Promise<unknown> {
  const { options } = job;
  switch (call.method) {
    case 'entries':
      return options.dataset.entries();
    case 'validationEntries':
      if (!options.validation) throw new LaneVisionError('RETRAIN_VALIDATION_EMPTY', 'This training has no validation set.');
      return options.validation.entries();
    case 'cachedFeatures': {
      const cache = mainCache(options);
      return call.args[0].map((key) => cache?.get(key) ?? null);
    }
    case 'fingerprint':
      return options.dataset.fingerprint(...call.args);
    case 'saveModel':
      // Cancelled while the worker finished: the version is not written.
      options.signal?.throwIfAborted();
      if (job.failure) throw job.failure;
      return options.store.saveModel(...call.args);
  }
}

function mainCache(options: WorkerRetrainOptions): FeatureCache | null {
  return options.cache === undefined ? sharedFeatureCache : options.cache;
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
