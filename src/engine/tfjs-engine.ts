/**
 * The TensorFlow.js InferenceEngine: prepared RGB frames in, plain Float32Arrays out.
 * Every tensor it makes is disposed before a call returns.
 */
import { LaneVisionError } from '../errors.js';
import { type BackendInfo, tf } from './backend.js';
import type { InferenceEngine, InputRange } from './types.js';
import { checkFrameSizes } from './frame-check.js';

/**
 * A loaded tfjs model reduced to the two things the engine asks of it. Results may be
 * promises (graph models with control flow only run asynchronously).
 */
export interface TfjsModelRunner {
  /** Feature tensor for a batch, any rank (pooled / flattened by the engine). Caller disposes. */
  features(batch: tf.Tensor4D): tf.Tensor | Promise<tf.Tensor>;
  /** The model's own output for a batch; absent if it has no classifier. Caller disposes. */
  output?(batch: tf.Tensor4D): tf.Tensor | Promise<tf.Tensor>;
  /** Whether `output` gives logits (the engine applies softmax) or probabilities. */
  readonly outputIsLogits: boolean;
  dispose(): void;
}

export interface TfjsEngineOptions {
  backend: BackendInfo;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  /** Frames per tensor; longer lists are split. Default 16. */
  maxBatch?: number;
}

export const DEFAULT_MAX_BATCH = 16;

/** Scale and offset taking a byte 0..255 to the backbone's input range. */
function scaling(range: InputRange): { scale: number; offset: number } {
  switch (range) {
    case '[-1,1]':
      return { scale: 1 / 127.5, offset: -1 };
    case '[0,1]':
      return { scale: 1 / 255, offset: 0 };
    case '[0,255]':
      return { scale: 1, offset: 0 };
    default:
      throw new LaneVisionError('ENGINE_INPUT_RANGE', `Unknown input range ${JSON.stringify(range)}: use [-1,1], [0,1] or [0,255]`);
  }
}

/** Global-average-pools spatial maps and flattens to [batch, features]. Runs inside tidy. */
function toVectors(t: tf.Tensor): tf.Tensor2D {
  let pooled = t;
  if (t.rank === 4) pooled = tf.mean(t, [1, 2]);
  else if (t.rank === 3) pooled = tf.mean(t, 1);
  return tf.reshape(pooled, [t.shape[0], -1]) as tf.Tensor2D;
}

export class TfjsInferenceEngine implements InferenceEngine {
  readonly name = 'tfjs';
  readonly backend: BackendInfo;
  readonly inputSize: { width: number; height: number };
  readonly inputRange: InputRange;
  private sizes = { feature: 0, output: 0 };
  private readonly maxBatch: number;
  private readonly scale: number;
  private readonly offset: number;
  private disposed = false;

  constructor(
    private readonly runner: TfjsModelRunner,
    options: TfjsEngineOptions,
  ) {
    this.backend = options.backend;
    this.inputSize = { ...options.inputSize };
    this.inputRange = options.inputRange;
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch ?? DEFAULT_MAX_BATCH));
    ({ scale: this.scale, offset: this.offset } = scaling(options.inputRange));
  }

  get featureSize(): number {
    return this.sizes.feature;
  }

  get outputSize(): number {
    return this.sizes.output;
  }

  /** Runs the model once on a black frame: compiles kernels and learns the output sizes. */
  async warmUp(): Promise<void> {
    const frame = { data: new Uint8Array(this.inputSize.width * this.inputSize.height * 3) };
    const [features] = await this.run([frame], 'features');
    this.sizes.feature = features.length;
    if (this.runner.output) {
      const [output] = await this.run([frame], 'output');
      this.sizes.output = output.length;
    }
  }

  features(frames: readonly { data: Uint8Array }[]): Promise<Float32Array[]> {
    return this.run(frames, 'features');
  }

  predict(frames: readonly { data: Uint8Array }[]): Promise<Float32Array[]> {
    if (!this.runner.output) {
      return Promise.reject(
        new LaneVisionError('MODEL_HAS_NO_CLASSIFIER', 'This backbone has no classifier of its own: use features() and a trained head'),
      );
    }
    return this.run(frames, 'output');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.runner.dispose();
  }

  private async run(frames: readonly { data: Uint8Array }[], what: 'features' | 'output'): Promise<Float32Array[]> {
    if (this.disposed) throw new LaneVisionError('ENGINE_DISPOSED', 'This backbone was released; acquire it again');
    if (!Array.isArray(frames)) throw new LaneVisionError('FRAME_INVALID', 'Expected an array of prepared frames');
    checkFrameSizes(frames, this.inputSize);
    const results: Float32Array[] = [];
    for (let start = 0; start < frames.length; start += this.maxBatch) {
      const chunk = frames.slice(start, start + this.maxBatch);
      const batch = this.toBatch(chunk);
      let raw: tf.Tensor;
      try {
        raw = await (what === 'features' ? this.runner.features(batch) : this.runner.output!(batch));
      } finally {
        batch.dispose();
      }
      let out: tf.Tensor2D;
      try {
        out = tf.tidy(() => {
          const vectors = toVectors(raw);
          return what === 'output' && this.runner.outputIsLogits ? tf.softmax(vectors) : vectors;
        });
      } finally {
        raw.dispose();
      }
      try {
        const values = (await out.data()) as Float32Array;
        const width = out.shape[1];
        for (let i = 0; i < chunk.length; i++) results.push(values.slice(i * width, (i + 1) * width));
      } finally {
        out.dispose();
      }
    }
    return results;
  }

  /** One float tensor for the whole chunk, already scaled (one pass in JS, no extra tensors). */
  private toBatch(frames: readonly { data: Uint8Array }[]): tf.Tensor4D {
    const { width, height } = this.inputSize;
    const frameLength = width * height * 3;
    const values = new Float32Array(frames.length * frameLength);
    frames.forEach((frame, i) => {
      const base = i * frameLength;
      const data = frame.data;
      for (let j = 0; j < frameLength; j++) values[base + j] = data[j] * this.scale + this.offset;
    });
    return tf.tensor4d(values, [frames.length, height, width, 3]);
  }
}
