/**
 * Lane frames decoded and embedded off the main thread. An EmbeddingWorker owns one worker
 * thread with its own copy of the backbone; a FrameEmbedder routes a classifier's frames
 * to it, or keeps them on the main thread (LANE_VISION_INFERENCE_THREAD=main, or when the
 * thread cannot load the same backbone).
 *
 * Why a thread of its own, measured in a Node-RED process at 30 fps:
 * - ONNX Runtime's Node binding runs a batch synchronously, so on the main thread every
 *   batch blocks Node-RED's event loop (4 ms a frame, 30-40 ms a batch of 8);
 * - each frame allocates about 155 KB of ArrayBuffers (decoded pixels), which V8 counts as
 *   external memory; in Node-RED's 60 MB heap that started a full mark-compact (5-15 ms on
 *   the lane's thread, up to 20 ms under load) about every second. In the worker's small
 *   heap the same collections are short, and the main heap sees only the encoded frame and
 *   5 KB of features.
 */
import { EventEmitter } from 'node:events';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import { normaliseBackboneSpec, type Backbone, type BackboneSpec, type BackendPreference, type EnginePreference } from '../engine/index.js';
import { resolveOnnxThreads } from '../engine/onnx/engine-preference.js';
import { DEFAULT_MAX_INPUT_BYTES, readImageSource, type ImageInput, type ImageSource } from '../image/index.js';
import { BackboneThread, enginePreferenceOf, type LoadedInWorker } from '../threads/backbone-thread.js';
import { deserialiseError } from '../threads/serialised-error.js';
import { threadChoiceFrom, type ThreadChoice } from '../threads/thread-choice.js';
import type { LaneActivity } from '../threads/lane-activity.js';
import { embedImagesSettled, type EmbedReport, type EmbeddedImage } from './embed.js';
import type { EmbedRequestOptions, EmbeddingWorkerData, FromEmbeddingWorker, ToEmbeddingWorker, TransferableInput } from './embedding-worker-protocol.js';

export type { EmbedRequestOptions } from './embedding-worker-protocol.js';

const debug = createDebug('lane-vision:embedding-worker');

/** `main` decodes and embeds lane frames on the main thread (the escape hatch), `worker` (default) in an EmbeddingWorker. */
export const INFERENCE_THREAD_ENV_VAR = 'LANE_VISION_INFERENCE_THREAD';
/** How long dispose() lets the thread finish its requests before terminating it. */
const DISPOSE_GRACE_MS = 5_000;
/** A view into a buffer this much larger is copied before it crosses: cloning a view sends its whole buffer. */
const COMPACT_ABOVE_BYTES = 64 * 1024;

export type InferenceThread = ThreadChoice;

/** Where lane frames are embedded: the value given, else LANE_VISION_INFERENCE_THREAD, else `worker`. */
export function inferenceThreadFrom(value: unknown = process.env[INFERENCE_THREAD_ENV_VAR]): InferenceThread {
  return threadChoiceFrom(INFERENCE_THREAD_ENV_VAR, 'INFERENCE_THREAD_UNKNOWN', value);
}

/** Frames to feature vectors, each input's error in its place: what a classifier calls. */
export type Embedder = (inputs: readonly ImageInput[], options: EmbedRequestOptions) => Promise<EmbedReport<EmbeddedImage | { error: Error }>>;

export interface EmbeddingWorkerOptions {
  /** The backbone to load in the thread: the same spec the main thread's Backbone was loaded from. */
  spec: BackboneSpec | string;
  backend?: BackendPreference;
  /** `enginePreferenceOf(mainBackbone)` runs the same engine as the main thread. */
  engine?: EnginePreference;
  /** ONNX Runtime threads in the worker. Default: LANE_VISION_ONNX_THREADS, else half the cores (onnxThreadsForMachine). */
  onnxThreads?: number;
  cacheDir?: string;
}

export interface EmbeddingWorkerEvents {
  ready: [info: LoadedInWorker & { threadId: number }];
  exit: [info: { threadId: number; code: number }];
}

type Embedded = Extract<FromEmbeddingWorker, { type: 'embedded' }>;

interface Thread {
  host: BackboneThread<FromEmbeddingWorker>;
  requests: Map<number, { resolve: (reply: Embedded) => void; reject: (err: Error) => void }>;
  /** Calls waiting on this thread (for it to load, or for their frames): it keeps the process open meanwhile. */
  waiting: number;
}

function workerFailed(message: string, cause?: unknown): LaneVisionError {
  return new LaneVisionError(
    'INFERENCE_WORKER_FAILED',
    `The inference worker failed. ${message}. The next frames start a fresh worker; ${INFERENCE_THREAD_ENV_VAR}=main embeds on the main thread instead.`,
    { cause },
  );
}

export class EmbeddingWorker extends EventEmitter<EmbeddingWorkerEvents> {
  private readonly data: EmbeddingWorkerData;
  private thread: Thread | undefined;
  private nextRequestId = 1;
  private disposed = false;

  constructor(options: EmbeddingWorkerOptions) {
    super();
    this.data = {
      spec: normaliseBackboneSpec(options.spec),
      load: { backend: options.backend, engine: options.engine, onnxThreads: resolveOnnxThreads(options.onnxThreads), cacheDir: options.cacheDir },
    };
  }

  /** Whether a thread is up (started by start() or the first frames, ended by a crash or dispose). */
  get running(): boolean {
    return this.thread !== undefined;
  }

  /** Starts the thread if none is up; resolves with its backbone once loaded. */
  start(): Promise<LoadedInWorker> {
    if (this.disposed) return Promise.reject(disposedError());
    const thread = this.thread ?? this.startThread();
    return waitOn(thread, thread.host.ready);
  }

  /** embedImagesSettled without a feature cache, in the thread. Rejects only if the thread fails (INFERENCE_WORKER_FAILED). */
  async embedSettled(inputs: readonly ImageInput[], options: EmbedRequestOptions): Promise<EmbedReport<EmbeddedImage | { error: Error }>> {
    if (this.disposed) throw disposedError();
    const results: (EmbeddedImage | { error: Error })[] = new Array(inputs.length);
    const sent: { index: number; input: TransferableInput }[] = [];
    const crossings = await Promise.all(inputs.map((input) => crossable(input, options)));
    crossings.forEach((crossing, index) => {
      if ('error' in crossing) results[index] = crossing;
      else sent.push({ index, input: crossing.input });
    });
    if (sent.length === 0) return { results, decodeMs: 0, featuresMs: 0, cacheHits: 0 };

    const thread = this.thread ?? this.startThread();
    await waitOn(thread, thread.host.ready);
    if (thread.host.broken) throw thread.host.broken;
    const requestId = this.nextRequestId++;
    const reply = new Promise<Embedded>((resolve, reject) => thread.requests.set(requestId, { resolve, reject }));
    try {
      const message: ToEmbeddingWorker = { type: 'embed', requestId, inputs: sent.map((s) => s.input), options };
      thread.host.worker.postMessage(message);
      const { vectors, size, hashes, errors, decodeMs, featuresMs } = await waitOn(thread, reply);
      sent.forEach(({ index }, k) => {
        const error = errors[k];
        results[index] = error
          ? { error: deserialiseError(error) }
          : { features: vectors.subarray(k * size, (k + 1) * size), hash: hashes[k] ?? '', cached: false };
      });
      return { results, decodeMs, featuresMs, cacheHits: 0 };
    } finally {
      thread.requests.delete(requestId);
    }
  }

  /**
   * Ends the thread: requests under way fail with INFERENCE_WORKER_DISPOSED, the thread
   * lets them finish and exits (terminated after a few seconds). Later calls are refused.
   */
  async dispose(): Promise<void> {
    this.disposed = true;
    const thread = this.thread;
    if (!thread) return;
    this.thread = undefined;
    const outcome = await thread.host.stop(disposedError(), DISPOSE_GRACE_MS);
    if (outcome === 'terminated') debug('worker %d did not stop within %d ms: terminated it', thread.host.threadId, DISPOSE_GRACE_MS);
  }

  private startThread(): Thread {
    const requests: Thread['requests'] = new Map();
    const host: BackboneThread<FromEmbeddingWorker> = new BackboneThread<FromEmbeddingWorker>({
      callerFile: __filename,
      entryName: 'embedding-worker-entry',
      data: this.data,
      failure: workerFailed,
      onMessage: (message) => {
        const request = requests.get(message.requestId);
        if (!request) return;
        if (message.type === 'embedded') request.resolve(message);
        else request.reject(deserialiseError(message.error));
      },
      onBroken: (err) => {
        if (this.thread === thread) this.thread = undefined;
        debug('worker %d out of use (%d requests failed): %s', host.threadId, requests.size, err.message);
        for (const request of requests.values()) request.reject(err);
        requests.clear();
      },
      onExit: (code) => this.emit('exit', { threadId: host.threadId, code }),
    });
    const thread: Thread = { host, requests, waiting: 0 };
    this.thread = thread;
    host.holdProcess(false);
    host.ready.then((backbone) => this.emit('ready', { ...backbone, threadId: host.threadId }), () => undefined);
    return thread;
  }
}

/** `promise`, with the thread holding the process open until it settles. */
async function waitOn<T>(thread: Thread, promise: Promise<T>): Promise<T> {
  thread.waiting++;
  thread.host.holdProcess(true);
  try {
    return await promise;
  } finally {
    thread.waiting--;
    thread.host.holdProcess(thread.waiting > 0);
  }
}

function disposedError(): LaneVisionError {
  return new LaneVisionError('INFERENCE_WORKER_DISPOSED', 'The inference worker was stopped.');
}

/**
 * An input as it can cross to the thread, or its error. Bytes, text and raw pixels cross
 * as they are (a small view of a big buffer is copied first); anything else, and bytes or
 * text over the size limit, is read here, so it fails with the main thread's error
 * without being copied to the thread first.
 */
async function crossable(input: ImageInput, limits: EmbedRequestOptions): Promise<{ input: TransferableInput } | { error: Error }> {
  const maxBytes = limits.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES;
  if (typeof input === 'string' && input.length <= maxBytes) return { input };
  if (input instanceof Uint8Array && input.byteLength <= maxBytes) return { input: compact(input) };
  const raw = input as Partial<{ data: unknown; width: unknown; height: unknown; channels: unknown }> | null;
  if (raw && typeof raw === 'object' && (raw.data instanceof Uint8Array || raw.data instanceof Uint8ClampedArray)) {
    // Only the pixel fields: the rest of the object may not be cloneable.
    return { input: { data: compact(raw.data), width: raw.width, height: raw.height, channels: raw.channels } as TransferableInput };
  }
  let source: ImageSource;
  try {
    source = await readImageSource(input, limits);
  } catch (error) {
    return { error: error as Error };
  }
  return { input: source.kind === 'encoded' ? source.bytes : { data: source.pixels, width: source.width, height: source.height, channels: source.channels } };
}

function compact<T extends Uint8Array | Uint8ClampedArray>(view: T): T {
  const wasteful = view.buffer.byteLength > COMPACT_ABOVE_BYTES && view.buffer.byteLength > 2 * view.byteLength;
  if (!wasteful) return view;
  // A copy of just the view (not `new Buffer(view)`, which is deprecated).
  return (view instanceof Uint8ClampedArray ? new Uint8ClampedArray(view) : new Uint8Array(view)) as T;
}

export interface FrameEmbedderOptions {
  /** The spec `backbone` was loaded from, for the thread's own copy. */
  spec: BackboneSpec | string;
  backend?: BackendPreference;
  /** Default: LANE_VISION_INFERENCE_THREAD, else `worker`. */
  thread?: InferenceThread;
  /** The thread loaded the backbone and takes frames from now on. */
  onWorkerReady?: (info: LoadedInWorker & { threadId: number }) => void;
  /** Frames stay on the main thread from now on, because of `reason`. */
  onMainThread?: (reason: Error) => void;
  /** Counts the frames in flight, for background work that steps aside for the lane (a TrainingWorker given the same one). */
  activity?: LaneActivity;
}

/**
 * A classifier's Embedder for `backbone`: frames go to an EmbeddingWorker with the same
 * backbone; if that thread cannot start, load or loads something else (files changed),
 * they stay on the main thread, and `onMainThread` says why. A thread that crashes later
 * fails its frames, and the next frames start a fresh one.
 */
export class FrameEmbedder {
  private worker: EmbeddingWorker | undefined;

  constructor(
    private readonly backbone: Backbone,
    private readonly options: FrameEmbedderOptions,
  ) {
    if ((options.thread ?? inferenceThreadFrom()) !== 'worker') return;
    const worker = new EmbeddingWorker({ spec: options.spec, backend: options.backend, engine: enginePreferenceOf(backbone) });
    if (options.onWorkerReady) worker.on('ready', options.onWorkerReady);
    this.worker = worker;
    void this.usable(worker); // loads now, so the first frames do not wait for it
  }

  /** Where frames are embedded now: `worker` also while its thread loads. */
  get thread(): InferenceThread {
    return this.worker ? 'worker' : 'main';
  }

  readonly embed: Embedder = (inputs, options) => {
    const run = async () => {
      const worker = this.worker && (await this.usable(this.worker));
      if (worker) return worker.embedSettled(inputs, options);
      return embedImagesSettled(this.backbone, inputs, { ...options, cache: null, batchSize: Math.max(1, inputs.length) });
    };
    return this.options.activity ? this.options.activity.during(inputs.length, run) : run();
  };

  async dispose(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.dispose();
  }

  /**
   * The worker once its thread has loaded the same backbone (starting a fresh thread after
   * a crash); otherwise undefined from now on.
   */
  private async usable(worker: EmbeddingWorker): Promise<EmbeddingWorker | undefined> {
    let reason: Error;
    try {
      const loaded = await worker.start();
      if (loaded.id === this.backbone.id) return worker;
      reason = new LaneVisionError(
        'INFERENCE_WORKER_BACKBONE_MISMATCH',
        `The inference worker loaded backbone ${loaded.id}, but the lane uses ${this.backbone.id}; were the model files changed?`,
      );
    } catch (err) {
      reason = err as Error;
    }
    if (this.worker !== worker) return undefined; // disposed meanwhile, or already given up
    this.worker = undefined;
    void worker.dispose();
    this.options.onMainThread?.(reason);
    return undefined;
  }
}
