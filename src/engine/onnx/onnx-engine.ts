/**
 * The ONNX Runtime InferenceEngine: prepared RGB frames in, plain Float32Arrays out. The
 * model (see convert.ts) takes the frame bytes as they are, so a call hands one frame over
 * as it is, or copies several into one staging buffer; scaling and layout happen inside
 * ONNX Runtime.
 *
 * Why the staging buffers are reused: every ArrayBuffer a frame allocates counts as V8
 * "external memory", and in a Node-RED-sized heap that is what starts full mark-compact
 * collections (5-15 ms pauses on the lane's thread). A fresh 150 KB copy per frame
 * doubled their rate at 30 fps.
 */
import { LaneVisionError } from '../../errors.js';
import type { EngineBackendInfo, InferenceEngine } from '../types.js';
import { ONNX_FEATURES, ONNX_INPUT, ONNX_OUTPUT } from './convert.js';
import type { OrtModule, OrtSession, OrtTensor } from './runtime.js';
import { checkFrameSizes } from '../frame-check.js';

export const ONNX_ENGINE_NAME = 'onnxruntime';

export interface OnnxEngineOptions {
  backend: EngineBackendInfo;
  inputSize: { width: number; height: number };
  /** Whether the model has the `output` (classifier) output. */
  hasClassifier: boolean;
  /** Frames per run; longer lists are split. */
  maxBatch: number;
  /** Intra-op threads the session was created with (reported only). */
  threads: number;
}

export class OnnxInferenceEngine implements InferenceEngine {
  readonly name = ONNX_ENGINE_NAME;
  readonly backend: EngineBackendInfo;
  readonly inputSize: { width: number; height: number };
  readonly threads: number;
  private readonly hasClassifier: boolean;
  private readonly maxBatch: number;
  private sizes = { feature: 0, output: 0 };
  private disposed = false;
  /** Staging buffers of maxBatch frames, free for the next run (more than one only when runs overlap). */
  private readonly freeStaging: Uint8Array[] = [];

  constructor(
    private readonly ort: OrtModule,
    private readonly session: OrtSession,
    options: OnnxEngineOptions,
  ) {
    this.backend = options.backend;
    this.inputSize = { ...options.inputSize };
    this.hasClassifier = options.hasClassifier;
    this.maxBatch = Math.max(1, Math.floor(options.maxBatch));
    this.threads = options.threads;
  }

  get featureSize(): number {
    return this.sizes.feature;
  }

  get outputSize(): number {
    return this.sizes.output;
  }

  /** Runs once on a black frame: ONNX Runtime allocates its buffers, and the output sizes are learnt. */
  async warmUp(): Promise<void> {
    const frame = { data: new Uint8Array(this.inputSize.width * this.inputSize.height * 3) };
    const fetches = this.hasClassifier ? [ONNX_FEATURES, ONNX_OUTPUT] : [ONNX_FEATURES];
    const results = await this.runSession([frame], fetches);
    this.sizes.feature = results[ONNX_FEATURES][0].length;
    if (this.hasClassifier) this.sizes.output = results[ONNX_OUTPUT][0].length;
  }

  async features(frames: readonly { data: Uint8Array }[]): Promise<Float32Array[]> {
    return (await this.run(frames, ONNX_FEATURES))[ONNX_FEATURES];
  }

  async predict(frames: readonly { data: Uint8Array }[]): Promise<Float32Array[]> {
    if (!this.hasClassifier) {
      throw new LaneVisionError('MODEL_HAS_NO_CLASSIFIER', 'This backbone has no classifier of its own: use features() and a trained head');
    }
    return (await this.run(frames, ONNX_OUTPUT))[ONNX_OUTPUT];
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.session.release().catch(() => undefined);
  }

  private async run(frames: readonly { data: Uint8Array }[], what: string): Promise<Record<string, Float32Array[]>> {
    if (this.disposed) throw new LaneVisionError('ENGINE_DISPOSED', 'This backbone was released; acquire it again');
    if (!Array.isArray(frames)) throw new LaneVisionError('FRAME_INVALID', 'Expected an array of prepared frames');
    checkFrameSizes(frames, this.inputSize);
    return this.runSession(frames, [what]);
  }

  private async runSession(frames: readonly { data: Uint8Array }[], fetches: string[]): Promise<Record<string, Float32Array[]>> {
    const { width, height } = this.inputSize;
    const frameLength = width * height * 3;
    const out: Record<string, Float32Array[]> = Object.fromEntries(fetches.map((f) => [f, []]));
    for (let start = 0; start < frames.length; start += this.maxBatch) {
      const chunk = frames.slice(start, start + this.maxBatch);
      const single = chunk.length === 1 && chunk[0].data instanceof Uint8Array && chunk[0].data.length === frameLength;
      const staging = single ? undefined : (this.freeStaging.pop() ?? new Uint8Array(this.maxBatch * frameLength));
      let pixels: Uint8Array;
      if (staging) {
        pixels = staging.subarray(0, chunk.length * frameLength);
        chunk.forEach((frame, i) => pixels.set(frame.data, i * frameLength));
      } else {
        pixels = chunk[0].data;
      }
      const input = new this.ort.Tensor('uint8', pixels, [chunk.length, height, width, 3]);
      let results: Record<string, OrtTensor>;
      try {
        results = await this.session.run({ [ONNX_INPUT]: input }, fetches);
      } catch (err) {
        throw new LaneVisionError('ENGINE_RUN_FAILED', `ONNX Runtime failed on ${chunk.length} frame(s): ${err instanceof Error ? err.message : String(err)}`, {
          cause: err,
        });
      } finally {
        input.dispose?.();
        if (staging) this.freeStaging.push(staging);
      }
      try {
        for (const name of fetches) {
          const tensor = results[name];
          const values = tensor?.data;
          if (!(values instanceof Float32Array) || tensor.dims.length !== 2 || tensor.dims[0] !== chunk.length) {
            throw new LaneVisionError('ENGINE_RUN_FAILED', `ONNX Runtime returned an unexpected "${name}" of shape [${tensor?.dims.join(',')}]`);
          }
          const size = tensor.dims[1];
          // Views, not copies: the output buffer is the run's own (see the top of this file for why).
          for (let i = 0; i < chunk.length; i++) out[name].push(values.subarray(i * size, (i + 1) * size));
        }
      } finally {
        for (const tensor of Object.values(results)) tensor.dispose?.();
      }
    }
    return out;
  }
}
