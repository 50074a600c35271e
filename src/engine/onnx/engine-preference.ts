/**
 * Which inference engine runs the backbone's forward pass: ONNX Runtime when it loads and
 * the model converts (auto), or TensorFlow.js. Settings and env vars are parsed here.
 */
import { LaneVisionError } from '../../errors.js';
import type { EnginePreference } from '../types.js';

export const ENGINE_ENV_VAR = 'LANE_VISION_ENGINE';
export const ONNX_THREADS_ENV_VAR = 'LANE_VISION_ONNX_THREADS';
export const ENGINE_PREFERENCES: readonly EnginePreference[] = ['auto', 'onnx', 'tfjs'];
/** One thread per session: classification and training share a two-core machine. */
export const DEFAULT_ONNX_THREADS = 1;
const MAX_THREADS = 64;

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

/** ONNX Runtime intra-op threads: the option, else LANE_VISION_ONNX_THREADS, else 1. */
export function resolveOnnxThreads(option?: number): number {
  const raw = option ?? process.env[ONNX_THREADS_ENV_VAR];
  if (raw === undefined || raw === '') return DEFAULT_ONNX_THREADS;
  const threads = Number(raw);
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
    throw new LaneVisionError('ENGINE_THREADS_INVALID', `ONNX Runtime threads must be a whole number from 1 to ${MAX_THREADS}, got ${String(raw)}`);
  }
  return threads;
}
