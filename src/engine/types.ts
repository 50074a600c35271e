import type { BackendInfo } from './backend.js';

/** Pixel scaling a backbone expects, applied to RGB bytes 0..255. */
export type InputRange = '[-1,1]' | '[0,1]' | '[0,255]';

/**
 * The one small interface every inference runtime implements (tfjs today; ONNX Runtime
 * can join without touching callers). Inputs are prepared RGB frames of `inputSize`.
 */
export interface InferenceEngine {
  /** e.g. "tfjs" — together with `backend.name` says what actually runs the model. */
  readonly name: string;
  readonly backend: BackendInfo;
  readonly inputSize: { width: number; height: number };
  /** Length of each feature vector. */
  readonly featureSize: number;
  /** Number of classes of the model's own output, if it has a classifier (else 0). */
  readonly outputSize: number;
  /** One feature vector per frame. */
  features(frames: readonly { data: Uint8Array }[]): Promise<Float32Array[]>;
  /** The model's own classifier output (probabilities) per frame; throws if it has none. */
  predict(frames: readonly { data: Uint8Array }[]): Promise<Float32Array[]>;
  dispose(): void;
}
