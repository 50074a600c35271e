/**
 * Chooses the TensorFlow.js backend once per process: tfjs-node (native) where it
 * installed, else WebAssembly (ships inside its npm package), else pure-JS cpu.
 * Every API that runs a model reports the `BackendInfo` this returns.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';

const debug = createDebug('lane-vision:engine');

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;
export const BACKEND_ORDER: readonly BackendName[] = ['tensorflow', 'wasm', 'cpu'];
export const BACKEND_ENV_VAR = 'LANE_VISION_BACKEND';

export interface BackendInfo {
  /** The backend tfjs runs on now. */
  name: BackendName;
  /** What was asked for. */
  preference: BackendPreference;
  /** Backends tried before `name` and why they could not be used. */
  skipped: { name: BackendName; reason: string }[];
}

export function parseBackendPreference(value: unknown): BackendPreference {
  if (value === undefined || value === null || value === '') return 'auto';
  const text = String(value).trim().toLowerCase();
  if (text === 'auto' || (BACKEND_ORDER as readonly string[]).includes(text)) return text as BackendPreference;
  if (text === 'node' || text === 'tfjs-node') return 'tensorflow';
  throw new LaneVisionError('BACKEND_UNKNOWN', `Unknown backend "${text}": use auto, tensorflow, wasm or cpu`);
}

let current: BackendInfo | undefined;
let queue: Promise<unknown> = Promise.resolve();
let wasmPathsSet = false;

/** The backend chosen so far, if any. */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

/**
 * Make sure a backend is ready. `auto` (or the `LANE_VISION_BACKEND` env var) keeps the
 * backend already chosen; naming a backend switches to it, falling back down the order
 * (with the reasons in `skipped`) unless `strict` is set.
 */
export function initBackend(
  preference: BackendPreference = parseBackendPreference(process.env[BACKEND_ENV_VAR]),
  options: { strict?: boolean } = {},
): Promise<BackendInfo> {
  // Serialised: two nodes starting at once must not race tf.setBackend.
  const next = queue.then(() => chooseBackend(preference, options.strict ?? false));
  queue = next.catch(() => undefined);
  return next;
}

async function chooseBackend(preference: BackendPreference, strict: boolean): Promise<BackendInfo> {
  if (current && (preference === 'auto' || preference === current.name) && tf.getBackend() === current.name) {
    return current;
  }
  const candidates = preference === 'auto' ? BACKEND_ORDER : BACKEND_ORDER.slice(BACKEND_ORDER.indexOf(preference));
  const skipped: BackendInfo['skipped'] = [];
  for (const name of candidates) {
    const reason = await tryBackend(name);
    if (reason === undefined) {
      current = { name, preference, skipped };
      debug('backend %s (asked %s; skipped %o)', name, preference, skipped);
      return current;
    }
    skipped.push({ name, reason });
    if (strict) break;
  }
  throw new LaneVisionError(
    'BACKEND_UNAVAILABLE',
    `No TensorFlow.js backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`,
  );
}

/** Returns undefined when the backend is now active, else why not. */
async function tryBackend(name: BackendName): Promise<string | undefined> {
  try {
    if (name === 'tensorflow') {
      const reason = registerTfjsNode();
      if (reason) return reason;
    }
    if (name === 'wasm' && !wasmPathsSet) {
      // In Node the .wasm files are read from the package's own dist folder; nothing is downloaded.
      const wasmDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
      setWasmPaths(wasmDir + path.sep);
      wasmPathsSet = true;
    }
    // setBackend resolves false instead of throwing when initialisation fails.
    const ok = await tf.setBackend(name);
    if (!ok || tf.getBackend() !== name) return `tf.setBackend('${name}') failed`;
    await tf.ready();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

let tfjsNodeState: string | undefined | null = null; // null: not tried yet

/** Loads @tensorflow/tfjs-node (an optional dependency) at run time. */
function registerTfjsNode(): string | undefined {
  if (tfjsNodeState !== null) return tfjsNodeState;
  tfjsNodeState = (() => {
    let nodeEntry: string;
    try {
      nodeEntry = require.resolve('@tensorflow/tfjs-node');
    } catch {
      return '@tensorflow/tfjs-node is not installed (optional dependency; its install downloads libtensorflow from outside the npm registry), so tfjs runs on WebAssembly; for native TensorFlow run `npm install @tensorflow/tfjs-node` in the Node-RED user directory with internet access';
    }
    // A second copy of tfjs-core gives two engines that do not share tensors: refuse it.
    const ours = require.resolve('@tensorflow/tfjs-core');
    let theirs: string;
    try {
      theirs = require.resolve('@tensorflow/tfjs-core', { paths: [path.dirname(nodeEntry)] });
    } catch {
      theirs = ours;
    }
    if (theirs !== ours) return `@tensorflow/tfjs-node uses another copy of tfjs-core (${theirs}); install matching versions`;
    try {
      require(nodeEntry);
    } catch (err) {
      return `@tensorflow/tfjs-node failed to load: ${err instanceof Error ? err.message : String(err)}`;
    }
    return tf.findBackend('tensorflow') || tf.findBackendFactory('tensorflow') ? undefined : 'tfjs-node registered no backend';
  })();
  return tfjsNodeState;
}

export { tf };

/**
 * The values of the tensor `build` makes, with everything it allocated disposed. Use this
 * rather than returning `dataSync()` from `tf.tidy`: tidy walks a returned array element
 * by element looking for tensors (20 ms for 40k floats, more than the maths).
 */
export function tensorValues(build: () => tf.Tensor): Float32Array {
  const tensor = tf.tidy(build);
  try {
    return tensor.dataSync() as Float32Array;
  } finally {
    tensor.dispose();
  }
}
