/**
 * TensorFlow.js export: one layers model (model.json + weights.bin) that plain
 * `tf.loadLayersModel` loads, built from stock layers only so no custom class is needed:
 * the backbone up to its feature layer, global average pooling when that layer is
 * spatial, then the head.
 *
 * tfjs-layers has no L2-normalisation layer, so x / |x| is made of stock ones:
 * z = [x, -x] has mean 0 and variance |x|^2 / F, so LayerNormalization (no centre, no
 * scale) gives sqrt(F) * z / |x|; the first dense layer reads only the first half of z,
 * with its kernel divided by sqrt(F).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../engine/backend.js';
import type { ModelFiles } from '../engine/model-files.js';
import { findFeatureLayer } from '../engine/onnx/convert.js';
import { LaneVisionError } from '../errors.js';
import type { ExportHeadLayers } from './head-layers.js';

export interface TfjsArtifacts {
  modelJson: Record<string, unknown>;
  weights: Uint8Array;
}

export interface TfjsExportInput {
  files: ModelFiles;
  featureLayer: string;
  head: ExportHeadLayers;
}

/** Builds the exported layers model and returns its model.json (weights in `weights.bin`) and weight bytes; every tensor is disposed. */
export async function exportTfjs(input: TfjsExportInput, weightsFile = 'weights.bin'): Promise<TfjsArtifacts> {
  const { files } = input;
  if (files.format !== 'layers') {
    throw new LaneVisionError(
      'EXPORT_UNSUPPORTED',
      'A TensorFlow.js graph-model backbone cannot be joined to the head as one layers model; export it with --format onnx',
    );
  }
  const base = await tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: files.modelJson.modelTopology, weightSpecs: files.weightSpecs, weightData: files.weightData }));
  const baseWeights = base.weights;
  let exported: tfl.LayersModel | undefined;
  try {
    const found = findFeatureLayer(base, input.featureLayer);
    if (!found) throw new LaneVisionError('EXPORT_UNSUPPORTED', `Feature layer "${input.featureLayer}" is not in the backbone model`);
    const lastLayer = base.layers[base.layers.length - 1];
    const raw = found.owner === base && found.layer === lastLayer ? base.outputs[0] : found.layer.output;
    if (Array.isArray(raw)) throw new LaneVisionError('EXPORT_UNSUPPORTED', `Feature layer "${input.featureLayer}" has several outputs`);
    let x = raw as tfl.SymbolicTensor;
    if (x.shape.length === 4) x = tfl.layers.globalAveragePooling2d({ name: 'lv_features_pool' }).apply(x) as tfl.SymbolicTensor;
    if (x.shape.length !== 2) throw new LaneVisionError('EXPORT_UNSUPPORTED', `Feature layer "${input.featureLayer}" gives rank ${x.shape.length} outputs`);
    const featureSize = x.shape[1] as number;

    const { layers } = input.head;
    let firstKernel = layers[0].kernel;
    let firstInput = layers[0].inputSize;
    if (input.head.normalise) {
      const negated = tfl.layers.rescaling({ scale: -1, offset: 0, name: 'lv_negated' }).apply(x) as tfl.SymbolicTensor;
      const both = tfl.layers.concatenate({ axis: -1, name: 'lv_both_signs' }).apply([x, negated]) as tfl.SymbolicTensor;
      x = tfl.layers.layerNormalization({ axis: -1, epsilon: 1e-12, center: false, scale: false, name: 'lv_l2_normalised' }).apply(both) as tfl.SymbolicTensor;
      const scale = 1 / Math.sqrt(featureSize);
      const out = layers[0].outputSize;
      firstKernel = new Float32Array(2 * featureSize * out);
      for (let i = 0; i < featureSize * out; i++) firstKernel[i] = layers[0].kernel[i] * scale;
      firstInput = 2 * featureSize;
    }
    const dense: { layer: tfl.layers.Layer; kernel: Float32Array; inputSize: number; bias: Float32Array; outputSize: number }[] = [];
    layers.forEach((weights, i) => {
      const layer = tfl.layers.dense({ units: weights.outputSize, activation: weights.activation, name: `lv_head_${i}` });
      x = layer.apply(x) as tfl.SymbolicTensor;
      dense.push({ layer, kernel: i === 0 ? firstKernel : weights.kernel, inputSize: i === 0 ? firstInput : weights.inputSize, bias: weights.bias, outputSize: weights.outputSize });
    });
    const inputs = found.owner === base ? base.inputs : found.owner.inputs;
    exported = tfl.model({ inputs, outputs: x, name: 'lane_vision_export' });
    for (const { layer, kernel, inputSize, bias, outputSize } of dense) {
      const values = [tf.tensor2d(kernel, [inputSize, outputSize]), tf.tensor1d(bias)];
      layer.setWeights(values);
      tf.dispose(values);
    }
    let artifacts: tf.io.ModelArtifacts | undefined;
    await exported.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    if (!artifacts?.weightData || !artifacts.weightSpecs) throw new LaneVisionError('EXPORT_FAILED', 'TensorFlow.js saved no weights');
    const weightData = artifacts.weightData;
    const weights = new Uint8Array(Array.isArray(weightData) ? concatBuffers(weightData) : weightData);
    return {
      modelJson: {
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: 'lane-vision export',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs }],
      },
      weights,
    };
  } finally {
    // The head layers' weights belong to `exported`; the backbone's (shared with it) to `base`.
    // Disposing one model frees the layers it shares with the other, so each may find some already gone.
    for (const container of [exported, base]) {
      try {
        container?.dispose();
      } catch {
        // layers already freed with the other model
      }
    }
    for (const variable of baseWeights) {
      try {
        variable.dispose();
      } catch {
        // already freed with its model
      }
    }
  }
}

function concatBuffers(buffers: ArrayBuffer[]): ArrayBuffer {
  const total = buffers.reduce((sum, b) => sum + b.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const b of buffers) {
    out.set(new Uint8Array(b), offset);
    offset += b.byteLength;
  }
  return out.buffer;
}
