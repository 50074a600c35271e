/**
 * Loads onnxruntime-node (an optional dependency; its CPU runtime ships inside the npm
 * package) at run time, once per process. The few parts of its API used here are typed
 * locally so that the project type-checks where the package did not install.
 */
import * as path from 'node:path';
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
/**
 * Where install/onnxruntime.cjs puts onnxruntime-node when npm dropped it (its own install
 * script failed on the CUDA download): native-deps/ at the package root, from dist/src/engine/onnx.
 */
const NATIVE_DEPS = path.resolve(__dirname, '..', '..', '..', '..', 'native-deps');
/** How to get native speed back, said with every reason ONNX Runtime is not used. */
export const ONNX_FIX_HINT = `to fix, run \`ONNXRUNTIME_NODE_INSTALL=skip npm install ${PACKAGE}\` in the Node-RED user directory (CPU binaries from the npm registry, no CUDA download) and restart Node-RED`;

function resolveOnnxRuntime(): string | undefined {
  for (const paths of [undefined, [NATIVE_DEPS]]) {
    try {
      return require.resolve(PACKAGE, paths ? { paths } : undefined);
    } catch {
      // try the next place
    }
  }
  return undefined;
}
let loaded: { ort: OrtModule; version: string } | { reason: string } | undefined;

/** ONNX Runtime, or why it cannot be used here. */
export function loadOnnxRuntime(): { ort: OrtModule; version: string } | { reason: string } {
  if (loaded) return loaded;
  const entry = resolveOnnxRuntime();
  if (!entry) {
    loaded = { reason: `${PACKAGE} is not installed (optional dependency), so the backbone runs on TensorFlow.js, several times slower; ${ONNX_FIX_HINT}` };
    return loaded;
  }
  try {
    const ort = require(entry) as OrtModule;
    if (typeof ort.InferenceSession?.create !== 'function' || typeof ort.Tensor !== 'function') {
      loaded = { reason: `${PACKAGE} loaded but does not look like ONNX Runtime` };
    } else {
      let version = 'unknown';
      try {
        version = (require(path.join(path.dirname(entry), '..', 'package.json')) as { version: string }).version;
      } catch {
        // version only decorates reports
      }
      loaded = { ort, version };
    }
  } catch (err) {
    loaded = { reason: `${PACKAGE} failed to load (${err instanceof Error ? err.message : String(err)}), so the backbone runs on TensorFlow.js; ${ONNX_FIX_HINT}` };
  }
  debug('onnxruntime: %o', 'reason' in loaded ? loaded.reason : `version ${loaded.version}`);
  return loaded;
}
