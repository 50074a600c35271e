/**
 * One worker thread holding its own copy of a backbone, from start to exit: what the
 * training worker (src/retrain) and the inference worker (src/features) have in common.
 * The thread loads the backbone from `workerData` and says `ready` or `load-failed`; the
 * owner gets every other message, and hears once when the thread can no longer be used
 * (crashed, exited, failed to load, or stopped), so it can fail the work it had sent.
 */
import type { Worker } from 'node:worker_threads';
import type { Backbone, BackboneSpec, BackendPreference, EngineBackendInfo, EngineName, EnginePreference } from '../engine/index.js';
import type { LaneVisionError } from '../errors.js';
import { deserialiseError, type SerialisedError } from './serialised-error.js';
import { startWorker } from './start-worker.js';

/** How a worker thread loads its copy of the backbone (its `workerData` has at least this). */
export interface BackboneLoadInWorker {
  spec: BackboneSpec;
  load: { backend?: BackendPreference; engine?: EnginePreference; onnxThreads: number; cacheDir?: string };
}

/** A worker's own copy of the backbone, as the main thread sees it. */
export interface LoadedInWorker {
  id: string;
  engine: EngineName;
  /** The engine's backend: the tfjs backend, or ONNX Runtime's execution provider. */
  backend: EngineBackendInfo['name'];
  featureSize: number;
}

/** The engine preference that makes a worker run the backbone on the same engine as `backbone`. */
export function enginePreferenceOf(backbone: Pick<Backbone, 'engine'>): EnginePreference {
  return backbone.engine.name === 'onnxruntime' ? 'onnx' : 'tfjs';
}

/** The messages every backbone thread sends once, after loading; and the one it takes to stop. */
export type LoadMessage = { type: 'ready'; backbone: LoadedInWorker } | { type: 'load-failed'; error: SerialisedError };
export type StopMessage = { type: 'dispose' };

export interface BackboneThreadOptions<FromThread> {
  /** The owner's `__filename`: the entry file sits next to it. */
  callerFile: string;
  entryName: string;
  data: BackboneLoadInWorker;
  /** The owner's error for "the thread failed", with `message` saying how. */
  failure: (message: string, cause?: unknown) => LaneVisionError;
  onMessage: (message: FromThread) => void;
  /** Once, when the thread becomes unusable: everything sent to it and not answered has failed with `err`. */
  onBroken: (err: Error) => void;
  onExit?: (code: number) => void;
}

export class BackboneThread<FromThread extends { type: string }> {
  readonly worker: Worker;
  /** `worker.threadId`, which reads -1 once the thread has exited. */
  readonly threadId: number;
  readonly ready: Promise<LoadedInWorker>;
  readonly exited: Promise<void>;
  /** Why it cannot be used any more. */
  broken?: Error;
  private readonly onBroken: (err: Error) => void;

  constructor(options: BackboneThreadOptions<FromThread>) {
    const { failure } = options;
    let worker: Worker;
    try {
      worker = startWorker(options.callerFile, options.entryName, options.data);
    } catch (err) {
      throw failure(`It could not start: ${(err as Error).message}`, err);
    }
    this.worker = worker;
    this.threadId = worker.threadId;
    this.onBroken = options.onBroken;
    let settle!: { resolve: (info: LoadedInWorker) => void; reject: (err: Error) => void };
    this.ready = new Promise<LoadedInWorker>((resolve, reject) => {
      settle = { resolve, reject };
    });
    this.ready.catch(() => undefined); // whoever awaits it reports the error
    let exitedResolve!: () => void;
    this.exited = new Promise<void>((resolve) => {
      exitedResolve = resolve;
    });
    const fail = (err: Error) => {
      settle.reject(err);
      this.break(err);
    };
    worker.on('message', (message: FromThread | LoadMessage) => {
      if (message.type === 'ready') settle.resolve((message as Extract<LoadMessage, { type: 'ready' }>).backbone);
      else if (message.type === 'load-failed') {
        const cause = deserialiseError((message as Extract<LoadMessage, { type: 'load-failed' }>).error);
        fail(failure(`It could not load the backbone ${options.data.spec.source}: ${cause.message}`, cause));
        void worker.terminate();
      } else options.onMessage(message as FromThread);
    });
    worker.on('error', (err) => fail(failure(`It crashed: ${err.message}`, err)));
    worker.on('exit', (code) => {
      fail(failure(`It stopped (exit code ${code})`));
      exitedResolve();
      options.onExit?.(code);
    });
  }

  /** Marks the thread unusable (once) and tells the owner. */
  break(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    this.onBroken(err);
  }

  /** Keeps the process open only while the owner waits for this thread. */
  holdProcess(hold: boolean): void {
    if (hold) this.worker.ref();
    else this.worker.unref();
  }

  /**
   * Asks the thread to finish and exit, after breaking it with `reason`; terminates it if
   * it is still there after `graceMs`. Resolves once it has exited.
   */
  async stop(reason: Error, graceMs: number): Promise<'exited' | 'terminated'> {
    this.break(reason);
    this.worker.postMessage({ type: 'dispose' } satisfies StopMessage);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const outcome = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (outcome !== 'late') return 'exited';
    await this.worker.terminate();
    return 'terminated';
  }
}
