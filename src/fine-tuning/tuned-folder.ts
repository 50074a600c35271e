/**
 * Writes a fine-tuned backbone as an ordinary TensorFlow.js layers-model folder: the base
 * model.json topology with one float32 weight file, the tuned weights replacing their
 * pretrained values under the same manifest names. Any loader (tfjs engine, ONNX conversion,
 * worker threads) then serves it like the base, and its fingerprint differs from the base's.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { tf } from '../engine/backend.js';
import type { Backbone, BackboneSpec } from '../engine/types.js';
import { LaneVisionError } from '../errors.js';
import { MODEL_JSON, type ModelFiles } from '../engine/model-files.js';
import { TUNED_WEIGHTS_FILE } from '../model-store/types.js';

export async function writeTunedFolder(base: ModelFiles, tuned: ReadonlyMap<string, Float32Array>, dir: string): Promise<void> {
  const decoded = tf.io.decodeWeights(base.weightData, base.weightSpecs);
  try {
    for (const [name, values] of tuned) {
      const old = decoded[name];
      if (!old || old.size !== values.length) {
        throw new LaneVisionError('FINE_TUNE_UNSUPPORTED', `Tuned weight ${name} has no matching weight in ${base.dir}`);
      }
      decoded[name] = tf.tensor(values, old.shape);
      old.dispose();
    }
    // Manifest order is kept so the folder's layout follows the base.
    const ordered = base.weightSpecs.map((spec) => ({ name: spec.name, tensor: decoded[spec.name] }));
    const { data, specs } = await tf.io.encodeWeights(ordered);
    const modelJson = { ...base.modelJson, weightsManifest: [{ paths: [TUNED_WEIGHTS_FILE], weights: specs }] };
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, TUNED_WEIGHTS_FILE), new Uint8Array(data as ArrayBuffer));
    await fs.writeFile(path.join(dir, MODEL_JSON), JSON.stringify(modelJson));
  } finally {
    for (const t of Object.values(decoded)) t.dispose();
  }
}

/** How a version's fine-tuned backbone folder is loaded: with the lane backbone's input, layer and engine. */
export function tunedSpec(dir: string, base: Backbone): BackboneSpec {
  return {
    source: dir,
    // A nested layer's name (owner/layer) is found by default, as for the base.
    ...(base.featureLayer.includes('/') ? {} : { featureLayer: base.featureLayer }),
    inputRange: base.inputRange,
    inputSize: base.inputSize,
  };
}
