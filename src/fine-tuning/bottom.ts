/**
 * The frozen bottom of a backbone as something the feature pipeline can embed with: frames
 * are decoded, cropped and augmented exactly as for features, and what comes out is the
 * cut's activations, flattened (not pooled), once per frame and view.
 *
 * It runs on ONNX Runtime when the base backbone does (converted like the backbone, cut at
 * the same layer, checked against tfjs on the check frames): tfjs's wasm backend has no
 * threads in Node, so on tfjs the bottom pass used one core of two. Anything that stops the
 * conversion leaves the bottom on tfjs, with the reason in `engineNote`.
 */
import createDebug from 'debug';
import * as tfl from '@tensorflow/tfjs-layers';
import { currentBackend, tf } from '../engine/backend.js';
import type { ModelFiles } from '../engine/model-files.js';
import { checkFrames, convertToOnnx, loadOnnxRuntime, maxRelativeDiff, OnnxInferenceEngine, onnxSessionOptions, RELATIVE_TOLERANCE, ONNX_ENGINE_NAME } from '../engine/onnx/index.js';
import { TfjsInferenceEngine } from '../engine/tfjs-engine.js';
import type { Backbone, InferenceEngine } from '../engine/types.js';

const debug = createDebug('lane-vision:fine-tuning');

export type BottomBackbone = Backbone & { dispose(): void; engineNote?: string };

export interface BottomSource {
  base: Backbone;
  /** The base backbone's files (the ONNX conversion reads them). */
  files: ModelFiles;
  bottom: tfl.LayersModel;
  /** The cut layer's name (part of the id). */
  cut: string;
  /** The cut as the converter finds it (`container/name` when nested). */
  cutPath: string;
}

export async function bottomBackbone(source: BottomSource): Promise<BottomBackbone> {
  const { base, bottom, cut } = source;
  const tfjsEngine = new TfjsInferenceEngine(
    {
      // Rank 2 output: the engine does not pool it.
      features: (batch) =>
        tf.tidy(() => {
          const out = bottom.predict(batch) as tf.Tensor;
          return tf.reshape(out, [out.shape[0], -1]);
        }),
      outputIsLogits: false,
      dispose: () => undefined,
    },
    { backend: currentBackend()!, inputSize: base.inputSize, inputRange: base.inputRange, maxBatch: 8 },
  );
  await tfjsEngine.warmUp();
  let engine: InferenceEngine = tfjsEngine;
  let engineNote: string | undefined;
  if (base.engine.name === ONNX_ENGINE_NAME) {
    const onnx = await onnxBottom(source, tfjsEngine);
    if ('engine' in onnx) engine = onnx.engine;
    else {
      engineNote = `bottom on tfjs: ${onnx.reason}`;
      debug('%s', engineNote);
    }
  }
  if (engine !== tfjsEngine) tfjsEngine.dispose();
  const id = `${base.id}|activations:${cut}`;
  return {
    id,
    source: base.source,
    location: base.location,
    format: base.format,
    featureLayer: cut,
    engine,
    // The bottom runs on tfjs in float, whatever the base runs on.
    precision: 'float32',
    inputSize: base.inputSize,
    inputRange: base.inputRange,
    fit: base.fit,
    featureSize: engine.featureSize,
    backend: { ...base.backend, name: engine.backend.name },
    loadTimings: { fetchMs: 0, buildMs: 0, warmupMs: 0 },
    release: () => engine.dispose(),
    dispose: () => engine.dispose(),
    ...(engineNote ? { engineNote } : {}),
  };
}

/** The bottom converted to ONNX and checked against tfjs's, or why not. */
async function onnxBottom(source: BottomSource, tfjsEngine: TfjsInferenceEngine): Promise<{ engine: OnnxInferenceEngine } | { reason: string }> {
  const runtime = loadOnnxRuntime();
  if ('reason' in runtime) return { reason: runtime.reason };
  const { base } = source;
  let engine: OnnxInferenceEngine | undefined;
  try {
    const { bytes } = await convertToOnnx({
      files: source.files,
      featureLayer: source.cutPath,
      hasClassifier: false,
      outputIsLogits: false,
      inputSize: base.inputSize,
      inputRange: base.inputRange,
      spatial: true,
    });
    const threads = (base.engine as Partial<OnnxInferenceEngine>).threads ?? 1;
    const session = await runtime.ort.InferenceSession.create(bytes, onnxSessionOptions(threads));
    engine = new OnnxInferenceEngine(runtime.ort, session, { backend: { name: 'cpu', preference: 'auto', skipped: [] }, inputSize: base.inputSize, hasClassifier: false, maxBatch: 8, threads });
    await engine.warmUp();
    const frames = checkFrames(base.inputSize);
    const diff = maxRelativeDiff(await engine.features(frames), await tfjsEngine.features(frames));
    if (!(diff <= RELATIVE_TOLERANCE)) throw new Error(`the ONNX bottom does not reproduce tfjs (relative difference ${diff.toExponential(1)})`);
    return { engine };
  } catch (err) {
    engine?.dispose();
    return { reason: err instanceof Error ? err.message : String(err) };
  }
}
