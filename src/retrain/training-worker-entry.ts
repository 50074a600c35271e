/**
 * The training worker thread: its own tfjs, ONNX Runtime session and copy of the backbone,
 * its own feature cache kept across retrains. It runs `retrain` as the main thread would,
 * but reads the dataset and saves the new version through the main thread (see
 * training-worker.ts), so the store keeps one writer and classifiers hear the switch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as os from 'node:os';
import type { Backbone } from '../engine/index.js';
import { BackboneInThread } from '../threads/backbone-in-thread.js';
import { LaneActivity } from '../threads/lane-activity.js';
import { FeatureCache } from '../features/index.js';
import type { FitPolicy } from '../image/index.js';
import type { DatasetEntry } from '../dataset/index.js';
import type { BackboneDescriptor } from '../model-store/index.js';
import { retrain, type RetrainDataset, type RetrainStore } from './retrain.js';
import { fitWithCrop } from '../pipeline/frame-features.js';
import { deserialiseError, serialiseError } from '../threads/serialised-error.js';
import {
  type EmbeddedInWorker,
  type FromWorker,
  type MainThreadCall,
  type ToWorker,
  type TrainingWorkerData,
} from './training-worker-protocol.js';

/** Longest a training step waits for the lane to be idle. */
const MAX_YIELD_MS = 20;
/** Like `nice -n 10`: lower than the lane, not starved. */
const TRAINING_THREAD_NICENESS = 10;
// On Linux, setpriority(0) renices only the calling thread (and threads it starts, such as
// ONNX Runtime's), so training yields the CPU to the lane's thread when both want it.
try {
  os.setPriority(TRAINING_THREAD_NICENESS);
} catch {
  // not permitted or not supported here: training just competes as an equal
}

if (!parentPort) throw new Error('training-worker-entry runs as a worker thread (see TrainingWorker)');
const port = parentPort;
const data = workerData as TrainingWorkerData;
/** The worker's feature cache, which also notes what it computed for the job under way. */
class WorkerFeatureCache extends FeatureCache {
  private embedded = new Map<string, Float32Array>();

  override set(key: string, features: Float32Array): void {
    super.set(key, features);
    this.embedded.set(key, features);
  }

  /** Stores a vector the main thread had: not noted, it needs no sending back. */
  adopt(key: string, features: Float32Array): void {
    super.set(key, features);
  }

  /** Vectors set since the last call. */
  takeEmbedded(): EmbeddedInWorker {
    const taken = this.embedded;
    this.embedded = new Map();
    return { keys: [...taken.keys()], vectors: [...taken.values()] };
  }
}

const cache = new WorkerFeatureCache(data.featureCacheBytes);
const jobs = new Map<number, { controller: AbortController; finished: Promise<void> }>();
const calls = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
let nextCallId = 1;
const held = new BackboneInThread(data, port);
const lane = data.laneActivity ? new LaneActivity(data.laneActivity) : undefined;

const post = (message: FromWorker): void => port.postMessage(message);

/** Asks the main thread to run a dataset or store method for job `jobId`. */
function callMain<T>(jobId: number, call: MainThreadCall): Promise<T> {
  const callId = nextCallId++;
  return new Promise<T>((resolve, reject) => {
    calls.set(callId, { resolve: resolve as (value: unknown) => void, reject });
    post({ type: 'call', jobId, callId, ...call });
  });
}

/** The descriptor fields of the loaded backbone: what the store records, minus the engine. */
function descriptorOf(b: BackboneDescriptor): BackboneDescriptor {
  const { id, source, preset, featureLayer, featureLayerAliases, weightsFingerprint, featureSize, inputSize, inputRange, fit } = b;
  return JSON.parse(JSON.stringify({ id, source, preset, featureLayer, featureLayerAliases, weightsFingerprint, featureSize, inputSize, inputRange, fit })) as BackboneDescriptor;
}

function startJob(message: Extract<ToWorker, { type: 'retrain' }>, loaded: Backbone): void {
  const controller = new AbortController();
  const finished = runJob(message, loaded, controller.signal).finally(() => jobs.delete(message.jobId));
  jobs.set(message.jobId, { controller, finished });
}

async function runJob(message: Extract<ToWorker, { type: 'retrain' }>, loaded: Backbone, signal: AbortSignal): Promise<void> {
  const { jobId } = message;
  const { hasValidation, ...options } = message.options;
  const baseFit = options.fit ?? loaded.fit;
  // The plain frames (what capture embeds) and, for a warm retrain, the previous version's crop.
  const fits = [fitWithCrop(baseFit, null), ...(options.previous?.spec.crop ? [fitWithCrop(baseFit, options.previous.spec.crop)] : [])];
  const dataset: RetrainDataset = {
    entries: async () => {
      const entries = await callMain<DatasetEntry[]>(jobId, { method: 'entries', args: [] });
      await takeCachedFeatures(jobId, entries, fits, loaded);
      return entries;
    },
    fingerprint: (...args) => callMain(jobId, { method: 'fingerprint', args }),
  };
  const validation: RetrainDataset | undefined = hasValidation
    ? {
        entries: () => callMain<DatasetEntry[]>(jobId, { method: 'validationEntries', args: [] }),
        fingerprint: async () => '',
      }
    : undefined;
  const store: RetrainStore = {
    dir: message.storeDir,
    saveModel: (input) => callMain(jobId, { method: 'saveModel', args: [{ ...input, backbone: descriptorOf(input.backbone) }] }),
  };
  try {
    const result = await retrain({
      ...options,
      dataset,
      validation,
      store,
      backbone: loaded,
      cache,
      signal,
      // One decode at a time: the libuv pool is shared with the lane's decodes.
      decodeConcurrency: 1,
      // And none while the lane has frames in flight (at most MAX_YIELD_MS per step, so a saturated lane slows training, not stops it).
      beforeStep: lane ? () => lane.idle(MAX_YIELD_MS) : undefined,
      onProgress: (progress) => post({ type: 'progress', jobId, progress }),
    });
    // Back to the main thread's cache, where an in-process retrain would have left them (similar-frame search reads it).
    post({ type: 'done', jobId, result, embedded: cache.takeEmbedded() });
  } catch (err) {
    cache.takeEmbedded(); // they stay in this cache; only a finished job's go back
    post({ type: 'failed', jobId, error: serialiseError(err) });
  }
}

/** Copies into this cache the vectors the main thread already has for the dataset's frames. */
async function takeCachedFeatures(jobId: number, entries: DatasetEntry[], fits: FitPolicy[], loaded: Backbone): Promise<void> {
  const missing = entries
    .filter((entry) => !entry.problem)
    .flatMap((entry) => fits.map((fit) => FeatureCache.key(loaded.id, fit, entry.sha256)))
    .filter((key) => cache.get(key) === undefined);
  if (missing.length === 0) return;
  const found = await callMain<(Float32Array | null)[]>(jobId, { method: 'cachedFeatures', args: [missing] });
  found.forEach((vector, i) => {
    if (vector) cache.adopt(missing[i], vector);
  });
}

/** Cancels what runs, lets it stop (the engine must outlive its last call), then frees the backbone; the thread then ends. */
function stop(): Promise<void> {
  const running = [...jobs.values()];
  for (const job of running) job.controller.abort(new Error('The training worker is stopping'));
  return held.stop(Promise.all(running.map((job) => job.finished)));
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'retrain':
      // The main thread sends jobs only after 'ready'.
      if (held.backbone) startJob(message, held.backbone);
      else post({ type: 'failed', jobId: message.jobId, error: { name: 'Error', message: 'The training worker has no backbone loaded' } });
      break;
    case 'abort':
      jobs.get(message.jobId)?.controller.abort(deserialiseError(message.reason));
      break;
    case 'reply': {
      const pending = calls.get(message.callId);
      calls.delete(message.callId);
      if (message.error) pending?.reject(deserialiseError(message.error));
      else pending?.resolve(message.value);
      break;
    }
    case 'dispose':
      void stop();
      break;
  }
});
