/**
 * Calibration for static quantisation: the float backbone runs on the user's own frames with
 * every tensor the quantiser needs exposed as an extra output, and each tensor's range is the
 * min / max seen over all frames (ONNX Runtime's MinMax calibrator, calibrate.py).
 */
import type { OnnxModel } from '../engine/onnx/onnx-proto.js';
import { encodeOnnxModel } from '../engine/onnx/onnx-proto.js';
import type { OrtModule, OrtSessionOptions } from '../engine/onnx/runtime.js';
import type { TensorRange } from './qdq.js';

export interface CalibrationOptions {
  /** The graph's uint8 input [batch, height, width, 3]. */
  inputName: string;
  inputSize: { width: number; height: number };
  /** Frames per run: each exposes every planned tensor, so keep it small. Default 4. */
  batch?: number;
  session?: OrtSessionOptions;
}

/** Min / max of each of `tensors` over `frames` (prepared RGB of the input size). */
export async function calibrateRanges(
  ort: OrtModule,
  model: OnnxModel,
  tensors: readonly string[],
  frames: readonly { data: Uint8Array }[],
  options: CalibrationOptions,
): Promise<Map<string, TensorRange>> {
  if (frames.length === 0) throw new Error('calibration needs at least one frame');
  const { width, height } = options.inputSize;
  const frameLength = width * height * 3;
  for (const frame of frames) {
    if (frame.data.length !== frameLength) throw new Error(`a calibration frame has ${frame.data.length} bytes, expected ${width}x${height}x3 = ${frameLength}`);
  }
  const existing = new Set(model.outputs.map((o) => o.name));
  const exposed: OnnxModel = {
    ...model,
    outputs: [...model.outputs, ...tensors.filter((t) => !existing.has(t)).map((name) => ({ name, type: 'float32' as const }))],
  };
  const session = await ort.InferenceSession.create(encodeOnnxModel(exposed), {
    ...options.session,
    // Every exposed tensor must stay as written: fusions would hide some of them.
    graphOptimizationLevel: 'basic',
  });
  const ranges = new Map<string, TensorRange>(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
  const batch = Math.max(1, options.batch ?? 4);
  try {
    for (let start = 0; start < frames.length; start += batch) {
      const chunk = frames.slice(start, start + batch);
      const pixels = new Uint8Array(chunk.length * frameLength);
      chunk.forEach((f, i) => pixels.set(f.data, i * frameLength));
      const input = new ort.Tensor('uint8', pixels, [chunk.length, height, width, 3]);
      const results = await session.run({ [options.inputName]: input }, tensors);
      try {
        for (const name of tensors) {
          const data = results[name]?.data;
          if (!(data instanceof Float32Array)) throw new Error(`calibration run gave no float tensor "${name}"`);
          const range = ranges.get(name)!;
          let { min, max } = range;
          for (let i = 0; i < data.length; i++) {
            const v = data[i];
            if (v < min) min = v;
            if (v > max) max = v;
          }
          range.min = min;
          range.max = max;
        }
      } finally {
        input.dispose?.();
        for (const tensor of Object.values(results)) tensor.dispose?.();
      }
    }
  } finally {
    await session.release();
  }
  return ranges;
}
