/**
 * The frozen bottom of a backbone as something the feature pipeline can embed with: frames
 * are decoded, cropped and augmented exactly as for features, and what comes out is the
 * cut's activations, flattened (not pooled), once per frame and view.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { currentBackend, tf } from '../engine/backend.js';
import { TfjsInferenceEngine } from '../engine/tfjs-engine.js';
import type { Backbone } from '../engine/types.js';

export async function bottomBackbone(base: Backbone, bottom: tfl.LayersModel, cut: string): Promise<Backbone & { dispose(): void }> {
  const engine = new TfjsInferenceEngine(
    {
      // Rank 2 output: the engine does not pool it.
      features: (batch) => tf.tidy(() => {
        const out = bottom.predict(batch) as tf.Tensor;
        return tf.reshape(out, [out.shape[0], -1]);
      }),
      outputIsLogits: false,
      dispose: () => undefined,
    },
    { backend: currentBackend()!, inputSize: base.inputSize, inputRange: base.inputRange, maxBatch: 8 },
  );
  await engine.warmUp();
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
  };
}
