/**
 * Loads onnxruntime-node (an optional dependency; its CPU runtime ships inside the npm
 * package) at run time, once per process. The few parts of its API used here are typed
 * locally so that the project type-checks where the package did not install.
 */
import createDebug from 'debug';

const debug = createDebug('lane-vision:engine');

export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
  readonly type: string;
  dispose?(): void;
}

export interface OrtSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'layout' | 'all';
  executionProviders?: string[];
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtModule {
  InferenceSession: { create(model: Uint8Array | string, options?: OrtSessionOptions): Promise<OrtSession> };
  Tensor: new (type: 'uint8' | 'float32', data: Uint8Array | Float32Array, dims: readonly number[]) => OrtTensor;
  env?: { versions?: Record<string, string> };
}

const PACKAGE = 'onnxruntime-node';
let loaded: { ort: OrtModule; version: string } | { reason: string } | undefined;

/** ONNX Runtime, or why it cannot be used here. */
export function loadOnnxRuntime(): { ort: OrtModule; version: string } | { reason: string } {
  if (loaded) return loaded;
  let entry: string;
  try {
    entry = require.resolve(PACKAGE);
  } catch {
    loaded = { reason: `${PACKAGE} is not installed (optional dependency)` };
    return loaded;
  }
  try {
    const ort = require(entry) as OrtModule;
    if (typeof ort.InferenceSession?.create !== 'function' || typeof ort.Tensor !== 'function') {
      loaded = { reason: `${PACKAGE} loaded but does not look like ONNX Runtime` };
    } else {
      let version = 'unknown';
      try {
        version = (require(`${PACKAGE}/package.json`) as { version: string }).version;
      } catch {
        // version only decorates reports
      }
      loaded = { ort, version };
    }
  } catch (err) {
    loaded = { reason: `${PACKAGE} failed to load: ${err instanceof Error ? err.message : String(err)}` };
  }
  debug('onnxruntime: %o', 'reason' in loaded ? loaded.reason : `version ${loaded.version}`);
  return loaded;
}
