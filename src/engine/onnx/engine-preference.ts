/**
 * Which inference engine runs the backbone's forward pass: ONNX Runtime when it loads and
 * the model converts (auto), or TensorFlow.js. Settings and env vars are parsed here.
 */
import * as os from 'node:os';
import { LaneVisionError } from '../../errors.js';
import type { EnginePreference } from '../types.js';

export const ENGINE_ENV_VAR = 'LANE_VISION_ENGINE';
export const ONNX_THREADS_ENV_VAR = 'LANE_VISION_ONNX_THREADS';
export const ENGINE_PREFERENCES: readonly EnginePreference[] = ['auto', 'onnx', 'tfjs'];
/** The fewest threads a session gets (a two-core machine: one runs the model, one decodes). */
export const DEFAULT_ONNX_THREADS = 1;
const MAX_THREADS = 64;
/**
 * Most intra-op threads the machine-derived default gives: MobileNet-sized convolutions
 * at batch 8 gain little past 4 threads, and more only spin on cores the decoder needs.
 */
const MAX_DEFAULT_THREADS = 4;

/**
 * Intra-op threads for a lane's backbone on a machine with `cores` cores: half of them
 * (at least 1, at most 4). The other half decodes the next frames meanwhile (sharp on
 * libuv's pool, see TwoStagePipeline) and serves Node-RED and a training. 2 cores: 1.
 */
export function onnxThreadsForMachine(cores: number = os.availableParallelism()): number {
  return Math.min(MAX_DEFAULT_THREADS, Math.max(DEFAULT_ONNX_THREADS, Math.floor(cores / 2)));
}

export function parseEnginePreference(value: unknown): EnginePreference {
  if (value === undefined || value === null || value === '') return 'auto';
  const text = String(value).trim().toLowerCase();
  if ((ENGINE_PREFERENCES as readonly string[]).includes(text)) return text as EnginePreference;
  if (text === 'onnxruntime' || text === 'ort') return 'onnx';
  if (text === 'tensorflow.js' || text === 'tensorflowjs') return 'tfjs';
  throw new LaneVisionError('ENGINE_UNKNOWN', `Unknown inference engine "${text}": use auto, onnx or tfjs`);
}

/** The engine asked for: the option, else LANE_VISION_ENGINE, else auto. */
export function resolveEnginePreference(option?: EnginePreference | string): EnginePreference {
  return parseEnginePreference(option ?? process.env[ENGINE_ENV_VAR]);
}

/** ONNX Runtime intra-op threads: the option, else LANE_VISION_ONNX_THREADS, else half the machine's cores (onnxThreadsForMachine). */
export function resolveOnnxThreads(option?: number): number {
  const raw = option ?? process.env[ONNX_THREADS_ENV_VAR];
  if (raw === undefined || raw === '') return onnxThreadsForMachine();
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new LaneVisionError('ENGINE_THREADS_INVALID', `ONNX Runtime threads must be a whole number from 1 to ${MAX_THREADS}, got ${String(raw)}`);
  }
  return threads;
}
