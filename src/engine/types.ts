import type { FitPolicy } from '../image/types.js';
import type { BackendInfo, BackendName } from './backend.js';

/** What runs a backbone's forward pass (`InferenceEngine.name`). */
export type EngineName = 'onnxruntime' | 'tfjs';

/**
 * Engine choice: `auto` takes ONNX Runtime when it loads and converts the model, else
 * TensorFlow.js; `onnx` insists on ONNX Runtime (an error says why it cannot); `tfjs`
 * never tries ONNX Runtime.
 */
export type EnginePreference = 'auto' | 'onnx' | 'tfjs';

/**
 * `BackendInfo` as an engine reports it. For tfjs it is the tfjs backend; for ONNX Runtime
 * `name` is its execution provider (`cpu`). `skipped` may also list `onnxruntime`, with
 * why the backbone runs on tfjs instead.
 */
export interface EngineBackendInfo extends Omit<BackendInfo, 'skipped'> {
  skipped: { name: BackendName | EngineName; reason: string }[];
}

/** Pixel scaling a backbone expects, applied to RGB bytes 0..255. */
export type InputRange = '[-1,1]' | '[0,1]' | '[0,255]';
export const INPUT_RANGES: readonly InputRange[] = ['[-1,1]', '[0,1]', '[0,255]'];

/**
 * The one small interface every inference runtime implements (tfjs today; ONNX Runtime
 * can join without touching callers). Inputs are prepared RGB frames of `inputSize`.
 */
export interface InferenceEngine {
  /** "onnxruntime" or "tfjs" — together with `backend.name` says what actually runs the model. */
  readonly name: EngineName;
  readonly backend: EngineBackendInfo;
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

/** Weight file layout: Keras-style layers model or TF graph model (tfjs-converter). */
export type ModelFormat = 'layers' | 'graph';

/**
 * Which backbone to load. `source` is a preset name (see `BACKBONE_PRESETS`), a local folder
 * or `file://` URL holding `model.json`, or an `http(s)://` URL (a `model.json`, a folder,
 * or a TF Hub / Kaggle model page URL). Everything else is optional and overrides the
 * preset's or the folder's defaults.
 */
export interface BackboneSpec {
  source: string;
  /** Layer (layers model) or node (graph model) whose output is the feature vector. */
  featureLayer?: string;
  inputRange?: InputRange;
  inputSize?: { width: number; height: number };
  /**
   * What the model's own output is: softmax `probabilities`, raw `logits` (softmax is
   * applied by `predict`), or `none` (no classifier). Default: read from the model.
   */
  classifierOutput?: 'probabilities' | 'logits' | 'none';
  /** Names of the model's own output classes (default: metadata.json, or ImageNet for 1000/1001 outputs). */
  labels?: readonly string[];
  /**
   * `int8`: the converted backbone quantised to int8 (static, calibrated on `calibration`),
   * ONNX Runtime only; its features differ slightly, so its id differs. Default `float32`.
   */
  precision?: BackbonePrecision;
  /** Folder of the lane's own frames (images, or `<label>/` subfolders of them) that int8 is calibrated on. */
  calibration?: string;
}

export type BackbonePrecision = 'float32' | 'int8';
export const BACKBONE_PRECISIONS: readonly BackbonePrecision[] = ['float32', 'int8'];

/** A loaded, warmed-up backbone shared by everything in the process that asks for the same one. */
export interface Backbone {
  /**
   * Stable identity: source, feature layer, input size and range, and a fingerprint of the
   * weights. Keys feature caches and stored models: same id, same features.
   */
  readonly id: string;
  /** The source as given (preset name, path or URL). */
  readonly source: string;
  /** Folder the weights were read from (the download cache for URLs and presets). */
  readonly location: string;
  readonly preset?: string;
  readonly format: ModelFormat;
  /** The layer / node the features come from (globally average-pooled if spatial). */
  readonly featureLayer: string;
  readonly engine: InferenceEngine;
  /** `int8` when the engine runs the quantised backbone (see `BackboneSpec.precision`). */
  readonly precision: BackbonePrecision;
  readonly inputSize: { width: number; height: number };
  readonly inputRange: InputRange;
  /** How frames should be fitted to `inputSize` (the backbone was trained on centre crops). */
  readonly fit: FitPolicy;
  readonly featureSize: number;
  /** The engine's backend (see `EngineBackendInfo`); `engine.name` says which engine. */
  readonly backend: EngineBackendInfo;
  /** Labels of the model's own classifier, if it has one and they are known. */
  readonly classLabels?: readonly string[];
  /** Milliseconds spent loading: reading or downloading, building, warming up. */
  readonly loadTimings: { readonly fetchMs: number; readonly buildMs: number; readonly warmupMs: number };
  /** Give up this user's share; the model is disposed when the last user releases it. */
  release(): void;
}
