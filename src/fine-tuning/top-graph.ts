/**
 * Splits a layers-model backbone into a frozen bottom (image -> activations at a cut) and
 * a trainable top (cut -> feature vector) described as plain operations, so the top can be
 * trained on cached activations and its weights written back under their manifest names.
 *
 * The top is interpreted here rather than rebuilt as a tfjs-layers model because tfjs's wasm
 * backend has no gradient for conv2d / depthwiseConv2d: the top's 1x1 convolutions run as
 * matmuls and its 3x3 depthwise convolutions as nine shifted slices (see top-forward.ts),
 * which train on wasm and cpu alike. Only what MobileNet V1/V2 tops use is supported; any
 * other layer gives FINE_TUNE_UNSUPPORTED naming it.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { LaneVisionError } from '../errors.js';
import type { Tensor } from '@tensorflow/tfjs-core';

export type Activation = 'linear' | 'relu' | 'relu6';

/** One operation of the top; `inputs` name earlier operations or the cut. */
export type TopOp =
  | { kind: 'pointwise'; name: string; inputs: [string]; kernel: string; bias?: string; activation: Activation }
  | { kind: 'depthwise'; name: string; inputs: [string]; kernel: string; bias?: string; activation: Activation }
  | { kind: 'batchnorm'; name: string; inputs: [string]; scale: Float32Array; shift: Float32Array }
  | { kind: 'activation'; name: string; inputs: [string]; activation: Activation }
  | { kind: 'add'; name: string; inputs: string[] }
  | { kind: 'pool'; name: string; inputs: [string] }
  | { kind: 'identity'; name: string; inputs: [string] };

export interface TopGraph {
  /** Name of the tensor the top starts from (the bottom's output layer). */
  cut: string;
  /** [height, width, channels] of the cut activations. */
  cutShape: [number, number, number];
  ops: TopOp[];
  /** Trainable weights by manifest name, with their pretrained values. */
  weights: Map<string, { shape: number[]; values: Float32Array }>;
  /** Depthwise convolutions (blocks) in the top. */
  blocks: number;
}

export interface SplitBackbone {
  /** Image -> activations at the cut; shares the loaded model's weights (dispose the full model, not this). */
  bottom: tfl.LayersModel;
  top: TopGraph;
  /** The cut layer as the ONNX converter finds it: its name, or `container/name` when nested. */
  cutPath: string;
}

interface FlatLayer {
  layer: tfl.layers.Layer;
  inputs: string[];
}

function isContainer(layer: tfl.layers.Layer): layer is tfl.LayersModel {
  return Array.isArray((layer as Partial<tfl.LayersModel>).layers);
}

function unsupported(why: string): LaneVisionError {
  return new LaneVisionError('FINE_TUNE_UNSUPPORTED', why);
}

/**
 * The model's layers in order with nested models expanded (Teachable Machine's backbone is a
 * functional model inside a Sequential), each with the names of the layers feeding it.
 */
function flatten(model: tfl.LayersModel, outerInput: string | undefined, out: FlatLayer[], alias: Map<string, string>): void {
  for (const layer of model.layers) {
    const inbound = layer.inboundNodes[0]?.inboundLayers.map((l) => alias.get(l.name) ?? l.name) ?? [];
    if (layer.getClassName() === 'InputLayer') {
      if (outerInput) alias.set(layer.name, outerInput);
      continue;
    }
    if (isContainer(layer)) {
      flatten(layer, inbound[0], out, alias);
      const innerOutput = layer.outputLayers[0]?.name;
      if (innerOutput) alias.set(layer.name, alias.get(innerOutput) ?? innerOutput);
      continue;
    }
    out.push({ layer, inputs: inbound.length ? inbound : outerInput ? [outerInput] : [] });
  }
}

/** Where a block begins: the last point before it where one tensor alone carries everything. */
function cutBefore(layers: FlatLayer[], index: number): number {
  const lastUse = new Map<string, number>();
  layers.forEach((l, i) => l.inputs.forEach((name) => lastUse.set(name, i)));
  for (let j = index - 1; j >= 0; j--) {
    const name = layers[j].layer.name;
    const liveOthers = layers.slice(0, j).some((l) => (lastUse.get(l.layer.name) ?? -1) > j);
    if (!liveOthers && (lastUse.get(name) ?? -1) > j) return j;
  }
  throw unsupported('The backbone has no point before its last blocks where it can be cut');
}

function activationOf(config: Record<string, unknown>, where: string): Activation {
  const a = config.activation ?? 'linear';
  if (a === 'linear' || a === 'relu' || a === 'relu6') return a;
  throw unsupported(`Layer ${where} uses activation ${JSON.stringify(a)}, which fine-tuning does not support; unfreeze fewer blocks`);
}

/** The manifest name of a layer's weight ending in `suffix` (kernel, bias, gamma...). */
function weightNamed(layer: tfl.layers.Layer, suffix: string): tfl.LayerVariable | undefined {
  return layer.weights.find((w) => (w.originalName ?? w.name).endsWith(`/${suffix}`));
}

/**
 * Splits `model` so the top holds the last `blocks` depthwise blocks and everything after
 * them up to `featureLayer` (a top-level or nested layer name, `owner/name` accepted).
 */
export function splitBackbone(model: tfl.LayersModel, featureLayer: string, blocks: number): SplitBackbone {
  if (!Number.isInteger(blocks) || blocks < 1) throw new LaneVisionError('FINE_TUNE_INVALID', `blocks must be a whole number from 1, got ${blocks}`);
  const layers: FlatLayer[] = [];
  flatten(model, undefined, layers, new Map());
  const featureName = featureLayer.split('/').pop()!;
  const end = layers.findIndex((l) => l.layer.name === featureName);
  if (end < 0) throw unsupported(`Feature layer "${featureLayer}" is not a layer fine-tuning can reach in this model`);
  const used = layers.slice(0, end + 1);
  const depthwise = used.map((l, i) => (l.layer.getClassName() === 'DepthwiseConv2D' ? i : -1)).filter((i) => i >= 0);
  if (depthwise.length < blocks) {
    throw unsupported(`The backbone has ${depthwise.length} depthwise blocks before its features; cannot unfreeze ${blocks}`);
  }
  const first = depthwise[depthwise.length - blocks];
  const cutAt = cutBefore(used, first);
  const cutLayer = used[cutAt].layer;
  const cutShape = (cutLayer.outputShape as (number | null)[]).slice(1) as number[];
  if (cutShape.length !== 3 || cutShape.some((d) => !d)) throw unsupported(`The cut at ${cutLayer.name} has shape ${JSON.stringify(cutLayer.outputShape)}, not [h, w, c]`);

  const ops: TopOp[] = [];
  const weights = new Map<string, { shape: number[]; values: Float32Array }>();
  const keep = (variable: tfl.LayerVariable | undefined): string | undefined => {
    if (!variable) return undefined;
    const name = variable.originalName ?? variable.name;
    weights.set(name, { shape: [...variable.shape] as number[], values: (variable.read() as Tensor).dataSync() as Float32Array });
    return name;
  };
  for (const { layer, inputs } of used.slice(cutAt + 1)) {
    const kind = layer.getClassName();
    const config = layer.getConfig() as Record<string, unknown>;
    const name = layer.name;
    const single = (): [string] => {
      if (inputs.length !== 1) throw unsupported(`Layer ${name} (${kind}) has ${inputs.length} inputs`);
      return [inputs[0]];
    };
    const strides = (config.strides as number[] | undefined) ?? [1, 1];
    const dilation = ([] as number[]).concat((config.dilationRate as number[] | number | undefined) ?? 1);
    switch (kind) {
      case 'Conv2D': {
        const size = config.kernelSize as number[];
        if (size[0] !== 1 || size[1] !== 1 || strides.some((s) => s !== 1)) {
          throw unsupported(`Layer ${name} is a ${size.join('x')} convolution with stride ${strides.join('x')}; only 1x1 stride-1 convolutions can be fine-tuned: unfreeze fewer blocks`);
        }
        ops.push({ kind: 'pointwise', name, inputs: single(), kernel: keep(weightNamed(layer, 'kernel'))!, bias: keep(weightNamed(layer, 'bias')), activation: activationOf(config, name) });
        break;
      }
      case 'DepthwiseConv2D': {
        const size = config.kernelSize as number[];
        if (size[0] !== 3 || size[1] !== 3 || strides.some((s) => s !== 1) || config.padding !== 'same' || (config.depthMultiplier ?? 1) !== 1 || dilation.some((d) => d !== 1)) {
          throw unsupported(`Layer ${name} is a depthwise convolution with stride ${strides.join('x')}; only 3x3 stride-1 "same" ones can be fine-tuned: unfreeze fewer blocks`);
        }
        ops.push({ kind: 'depthwise', name, inputs: single(), kernel: keep(weightNamed(layer, 'depthwise_kernel'))!, bias: keep(weightNamed(layer, 'bias')), activation: activationOf(config, name) });
        break;
      }
      case 'BatchNormalization': {
        // Batch norm stays frozen (its moving statistics are the pretrained ones): a per-channel scale and shift.
        const read = (suffix: string) => {
          const w = weightNamed(layer, suffix);
          return w ? ((w.read() as Tensor).dataSync() as Float32Array) : undefined;
        };
        const mean = read('moving_mean')!;
        const variance = read('moving_variance')!;
        const gamma = read('gamma') ?? new Float32Array(mean.length).fill(1);
        const beta = read('beta') ?? new Float32Array(mean.length);
        const epsilon = (config.epsilon as number | undefined) ?? 1e-3;
        const scale = gamma.map((g, c) => g / Math.sqrt(variance[c] + epsilon));
        const shift = beta.map((b, c) => b - mean[c] * scale[c]);
        ops.push({ kind: 'batchnorm', name, inputs: single(), scale, shift });
        break;
      }
      case 'ReLU': {
        const max = config.maxValue as number | null | undefined;
        if ((config.negativeSlope ?? 0) !== 0 || (config.threshold ?? 0) !== 0 || (max != null && max !== 6)) throw unsupported(`Layer ${name} is a ReLU variant fine-tuning does not support`);
        ops.push({ kind: 'activation', name, inputs: single(), activation: max === 6 ? 'relu6' : 'relu' });
        break;
      }
      case 'Activation':
        ops.push({ kind: 'activation', name, inputs: single(), activation: activationOf(config, name) });
        break;
      case 'Add':
        ops.push({ kind: 'add', name, inputs });
        break;
      case 'GlobalAveragePooling2D':
        ops.push({ kind: 'pool', name, inputs: single() });
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
        ops.push({ kind: 'identity', name, inputs: single() });
        break;
      default:
        throw unsupported(`Layer ${name} (${kind}) cannot be fine-tuned here; unfreeze fewer blocks or use the frozen strategies`);
    }
  }
  // The bottom: the model that holds the cut layer, cut there (it must take the image itself).
  const owner = ownerOf(model, cutLayer);
  const bottom = tfl.model({ inputs: owner.inputs, outputs: cutLayer.output as tfl.SymbolicTensor });
  if (JSON.stringify(owner.inputs[0].shape) !== JSON.stringify(model.inputs[0].shape)) {
    throw unsupported(`The cut at ${cutLayer.name} sits in a nested model that does not take the image directly`);
  }
  const cutPath = owner === model ? cutLayer.name : `${owner.name}/${cutLayer.name}`;
  return { bottom, cutPath, top: { cut: cutLayer.name, cutShape: cutShape as [number, number, number], ops, weights, blocks } };
}

function ownerOf(model: tfl.LayersModel, layer: tfl.layers.Layer): tfl.LayersModel {
  if (model.layers.includes(layer)) return model;
  for (const inner of model.layers) {
    if (isContainer(inner)) {
      const found = ownerOf(inner, layer);
      if (found.layers.includes(layer)) return found;
    }
  }
  return model;
}

/** Default blocks to unfreeze per backbone family (a depthwise block is a few hundred thousand weights). */
export function defaultFineTuneBlocks(source: string): number {
  return /v1/i.test(source) ? 1 : 2;
}
