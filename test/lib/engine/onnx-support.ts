/**
 * Helpers for the ONNX engine tests: writing small tfjs models to a scratch folder, and
 * comparing feature vectors.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../../../src/engine/index.js';

export function maxAbsDiff(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].length, b[i].length);
    for (let j = 0; j < a[i].length; j++) max = Math.max(max, Math.abs(a[i][j] - b[i][j]));
  }
  return max;
}

/** Seeded uniform numbers in [-1, 1). */
function* seeded(seed: number): Generator<number> {
  let s = seed >>> 0;
  for (;;) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    yield s / 2 ** 31 - 1;
  }
}

/**
 * Gives every weight a fixed pseudo-random value of a sensible size (variance-scaled
 * kernels, batch-norm variances and scales around 1), so synthetic models are repeatable
 * and their activations neither vanish nor explode.
 */
export function setSeededWeights(model: tfl.LayersModel, seed: number): void {
  const random = seeded(seed);
  const next = () => random.next().value as number;
  tf.tidy(() => {
    for (const layer of model.layers) {
      const values = layer.weights.map((w) => {
        const shape = w.shape as number[];
        const size = shape.reduce((a, b) => a * b, 1);
        const role = (w.originalName || w.name).split('/').pop() ?? '';
        const data = new Float32Array(size);
        const fanIn = shape.length > 1 ? size / shape[shape.length - 1] : 1;
        for (let i = 0; i < size; i++) {
          if (/moving_variance|gamma/.test(role)) data[i] = 1 + 0.5 * next();
          else if (/moving_mean|beta|bias/.test(role)) data[i] = 0.2 * next();
          else data[i] = next() * Math.sqrt(3 / fanIn);
        }
        return tf.tensor(data, shape);
      });
      if (values.length) layer.setWeights(values);
    }
  });
}

/** Saves a layers model as model.json + weights.bin in `dir`, then disposes it. */
export async function saveLayersModel(model: tfl.LayersModel, dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData;
      const buffers = data === undefined ? [] : Array.isArray(data) ? data : [data];
      const bytes = Buffer.concat(buffers.map((b) => Buffer.from(b)));
      await fs.writeFile(path.join(dir, 'weights.bin'), bytes);
      const json = {
        format: 'layers-model',
        generatedBy: 'lane-vision test',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      await fs.writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const variables = model.weights;
  model.dispose();
  for (const v of variables) {
    try {
      v.dispose();
    } catch {
      // freed with the model
    }
  }
  return dir;
}
