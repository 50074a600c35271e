/**
 * A converted float backbone -> its static int8 (QDQ) graph, calibrated on the lane's frames,
 * and the check that the int8 features still point where the float ones do.
 */
import type { OnnxModel } from '../engine/onnx/onnx-proto.js';
import { encodeOnnxModel } from '../engine/onnx/onnx-proto.js';
import type { OrtModule, OrtSessionOptions } from '../engine/onnx/runtime.js';
import { calibrateRanges } from './calibrate.js';
import { type QuantisationSummary, planQuantisation, quantiseStatic } from './qdq.js';

export interface QuantisedBackbone {
  bytes: Uint8Array;
  model: OnnxModel;
  summary: QuantisationSummary;
  calibrationFrames: number;
}

export async function quantiseBackbone(
  ort: OrtModule,
  float: OnnxModel,
  frames: readonly { data: Uint8Array }[],
  options: { inputName: string; inputSize: { width: number; height: number }; session?: OrtSessionOptions },
): Promise<QuantisedBackbone> {
  const plan = planQuantisation(float);
  const ranges = await calibrateRanges(ort, float, plan.tensors, frames, options);
  const { model, summary } = quantiseStatic(float, ranges);
  return { bytes: encodeOnnxModel(model), model, summary, calibrationFrames: frames.length };
}

/** Cosine similarity of two vectors (1 for two zero vectors: nothing to tell apart). */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 && bb === 0 ? 1 : dot / Math.sqrt(aa * bb || 1);
}

/** Mean and lowest cosine between paired feature vectors. */
export function featureAgreement(float: readonly Float32Array[], int8: readonly Float32Array[]): { meanCosine: number; minCosine: number } {
  if (float.length !== int8.length || float.length === 0) throw new Error('feature lists to compare differ in length or are empty');
  let sum = 0;
  let min = 1;
  for (let i = 0; i < float.length; i++) {
    const c = float[i].length === int8[i].length ? cosine(float[i], int8[i]) : -1;
    sum += c;
    min = Math.min(min, c);
  }
  return { meanCosine: sum / float.length, minCosine: min };
}
