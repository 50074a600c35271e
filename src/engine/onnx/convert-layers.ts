/**
 * tfjs layers model (Keras topology) → ONNX nodes. Works on the model tfjs itself built,
 * so topology parsing, nested Sequential / Model containers and weight dequantization are
 * exactly tfjs's; this file only maps each layer to ONNX operators. Anything it does not
 * know raises NotConvertibleError naming the layer, and the backbone stays on tfjs.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { GraphBuilder, NotConvertibleError, type Value, attr, paddingAttributes } from './onnx-graph.js';

type Layer = tfl.layers.Layer;
type SymbolicTensor = tfl.SymbolicTensor;
type Config = Record<string, unknown>;

/** Layers that compute nothing at inference time. */
const IDENTITY_LAYERS = new Set([
  'Dropout',
  'SpatialDropout1D',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'ActivityRegularization',
]);

const ELEMENTWISE: Record<string, string> = { Add: 'Add', Multiply: 'Mul', Subtract: 'Sub', Maximum: 'Max', Minimum: 'Min' };

function isContainer(layer: Layer): layer is tfl.LayersModel {
  return Array.isArray((layer as Partial<tfl.LayersModel>).layers);
}

function describe(layer: Layer): string {
  return `layer "${layer.name}" (${layer.getClassName()})`;
}

/** A model expanded once for one binding of its inputs. */
interface Expansion {
  model: tfl.LayersModel;
  inputs: Value[];
  memo: Map<SymbolicTensor, Value>;
}

export class LayersConverter {
  private readonly expansions: Expansion[] = [];

  constructor(private readonly g: GraphBuilder) {}

  /** The value of `tensor` inside `model` when the model's single input is `image`. */
  valueOf(model: tfl.LayersModel, image: Value, tensor: SymbolicTensor): Value {
    return this.resolve(this.expand(model, [image]), tensor);
  }

  private expand(model: tfl.LayersModel, inputs: Value[]): Expansion {
    const same = this.expansions.find((e) => e.model === model && e.inputs.every((v, i) => v.name === inputs[i]?.name));
    if (same) return same;
    if (model.inputs.length !== inputs.length) {
      throw new NotConvertibleError(`model "${model.name}" takes ${model.inputs.length} inputs, called with ${inputs.length}`);
    }
    const expansion = { model, inputs, memo: new Map<SymbolicTensor, Value>() };
    this.expansions.push(expansion);
    return expansion;
  }

  private resolve(expansion: Expansion, tensor: SymbolicTensor): Value {
    const known = expansion.memo.get(tensor);
    if (known) return known;
    const inputIndex = expansion.model.inputs.indexOf(tensor);
    let value: Value;
    if (inputIndex >= 0) {
      value = expansion.inputs[inputIndex];
    } else {
      const layer = tensor.sourceLayer;
      if (!tensor.inputs || tensor.inputs.length === 0) {
        throw new NotConvertibleError(`${describe(layer)} in "${expansion.model.name}" is an input that is not connected to the image`);
      }
      const inputs = tensor.inputs.map((t) => this.resolve(expansion, t));
      if (isContainer(layer)) {
        const inner = this.expand(layer, inputs);
        const output = layer.outputs[tensor.tensorIndex ?? 0];
        if (!output) throw new NotConvertibleError(`${describe(layer)} has no output ${tensor.tensorIndex}`);
        value = this.resolve(inner, output);
      } else {
        value = this.convertLayer(layer, inputs);
      }
    }
    expansion.memo.set(tensor, value);
    return value;
  }

  private convertLayer(layer: Layer, inputs: Value[]): Value {
    const kind = layer.getClassName();
    const config = layer.getConfig() as Config;
    const g = this.g;
    const hint = layer.name;
    const one = (): Value => {
      if (inputs.length !== 1) throw new NotConvertibleError(`${describe(layer)} has ${inputs.length} inputs`);
      return inputs[0];
    };
    const channelsLast = () => {
      if (config.dataFormat !== undefined && config.dataFormat !== 'channelsLast') {
        throw new NotConvertibleError(`${describe(layer)} uses ${String(config.dataFormat)}; only channels-last models convert`);
      }
    };

    if (IDENTITY_LAYERS.has(kind) || kind === 'InputLayer') return one();
    if (ELEMENTWISE[kind]) return this.elementwise(layer, ELEMENTWISE[kind], inputs);

    switch (kind) {
      case 'Conv2D':
      case 'DepthwiseConv2D':
      case 'SeparableConv2D': {
        channelsLast();
        const x = g.toNchw(one(), describe(layer));
        let y = this.convolution(layer, kind, config, x);
        y = this.activation(layer, String(config.activation ?? 'linear'), { name: y, rank: 4, layout: 'nchw' });
        return { name: y, rank: 4, layout: 'nchw' };
      }
      case 'Dense': {
        const x = one();
        if (x.rank !== 2) throw new NotConvertibleError(`${describe(layer)} on a rank-${x.rank} input is not supported (only [batch, features])`);
        const weights = this.weights(layer);
        const kernel = weights.take('kernel');
        const inputs2 = [x.name, g.floatConstant(`${hint}_W`, kernel.shape, kernel.data)];
        if (config.useBias !== false) {
          const bias = weights.take('bias');
          inputs2.push(g.floatConstant(`${hint}_B`, bias.shape, bias.data));
        }
        weights.expectAllUsed();
        const y = g.node('Gemm', inputs2, {}, hint);
        return { name: this.activation(layer, String(config.activation ?? 'linear'), { name: y, rank: 2, layout: 'plain' }), rank: 2, layout: 'plain' };
      }
      case 'BatchNormalization':
        return this.batchNormalization(layer, config, one());
      case 'Activation':
        return { ...one(), name: this.activation(layer, String(config.activation), one()) };
      case 'ReLU': {
        const maxValue = config.maxValue as number | null | undefined;
        for (const key of ['negativeSlope', 'threshold']) {
          if (config[key] !== undefined && config[key] !== 0) throw new NotConvertibleError(`${describe(layer)} with ${key} ${String(config[key])}`);
        }
        const x = one();
        if (maxValue === null || maxValue === undefined) return { ...x, name: g.node('Relu', [x.name], {}, hint) };
        return { ...x, name: this.clip(x.name, 0, maxValue, hint) };
      }
      case 'LeakyReLU':
        return { ...one(), name: g.node('LeakyRelu', [one().name], { alpha: attr.float(Number(config.alpha ?? 0.3)) }, hint) };
      case 'ELU':
        return { ...one(), name: g.node('Elu', [one().name], { alpha: attr.float(Number(config.alpha ?? 1)) }, hint) };
      case 'Softmax': {
        const x = one();
        const axis = Array.isArray(config.axis) ? config.axis : [config.axis ?? -1];
        if (axis.length !== 1) throw new NotConvertibleError(`${describe(layer)} over several axes`);
        return { ...x, name: g.node('Softmax', [x.name], { axis: attr.int(g.axisOf(x, Number(axis[0]))) }, hint) };
      }
      case 'ZeroPadding2D': {
        channelsLast();
        const x = g.toNchw(one(), describe(layer));
        const [[top, bottom], [left, right]] = padding2d(config.padding, layer);
        const pads = g.int64Constant(`${hint}_pads`, [0, 0, top, left, 0, 0, bottom, right]);
        return { ...x, name: g.node('Pad', [x.name, pads], { mode: attr.string('constant') }, hint) };
      }
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D': {
        channelsLast();
        const x = g.toNchw(one(), describe(layer));
        const pooled = g.node(kind === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x.name], {}, hint);
        if (config.keepDims === true) return { name: pooled, rank: 4, layout: 'nchw' };
        return { name: g.node('Flatten', [pooled], { axis: attr.int(1) }, `${hint}_flat`), rank: 2, layout: 'plain' };
      }
      case 'AveragePooling2D':
      case 'MaxPooling2D': {
        channelsLast();
        const x = g.toNchw(one(), describe(layer));
        const size = pair(config.poolSize, layer, 'poolSize');
        const strides = pair(config.strides ?? config.poolSize, layer, 'strides');
        const attributes = { kernel_shape: attr.ints(size), strides: attr.ints(strides), ...paddingAttributes(padding(config.padding, layer), size, strides) };
        return { ...x, name: g.node(kind === 'AveragePooling2D' ? 'AveragePool' : 'MaxPool', [x.name], attributes, hint) };
      }
      case 'Flatten': {
        const x = g.toPlain(one());
        return { name: g.node('Flatten', [x.name], { axis: attr.int(1) }, hint), rank: 2, layout: 'plain' };
      }
      case 'Reshape': {
        const target = config.targetShape;
        if (!Array.isArray(target) || !target.every((d) => Number.isInteger(d))) throw new NotConvertibleError(`${describe(layer)} without a fixed target shape`);
        const x = g.toPlain(one());
        const shape = g.int64Constant(`${hint}_shape`, [0, ...(target as number[])]);
        const reshaped: Value = { name: g.node('Reshape', [x.name, shape], {}, hint), rank: target.length + 1, layout: 'plain' };
        return reshaped.rank === 4 ? g.toNchw(reshaped, describe(layer)) : reshaped;
      }
      case 'Concatenate': {
        const layouts = new Set(inputs.map((v) => v.layout));
        const parts = layouts.size === 1 ? inputs : inputs.map((v) => g.toPlain(v));
        const axis = g.axisOf(parts[0], Number(config.axis ?? -1));
        return { ...parts[0], name: g.node('Concat', parts.map((v) => v.name), { axis: attr.int(axis) }, hint) };
      }
      case 'Rescaling': {
        const x = one();
        const scaled = g.node('Mul', [x.name, g.floatConstant(`${hint}_scale`, [], [Number(config.scale)])], {}, hint);
        return { ...x, name: g.node('Add', [scaled, g.floatConstant(`${hint}_offset`, [], [Number(config.offset ?? 0)])], {}, `${hint}_offset`) };
      }
      default:
        throw new NotConvertibleError(`${describe(layer)} has no ONNX conversion`);
    }
  }

  private convolution(layer: Layer, kind: string, config: Config, x: Value): string {
    const g = this.g;
    const hint = layer.name;
    const weights = this.weights(layer);
    const strides = pair(config.strides ?? 1, layer, 'strides');
    const dilations = pair(config.dilationRate ?? 1, layer, 'dilationRate');
    const kernelSize = pair(config.kernelSize, layer, 'kernelSize');
    const common = {
      strides: attr.ints(strides),
      dilations: attr.ints(dilations),
      ...paddingAttributes(padding(config.padding, layer), kernelSize, strides, dilations),
    };
    const bias = () => {
      if (config.useBias === false) return [];
      const b = weights.take('bias');
      return [g.floatConstant(`${hint}_B`, b.shape, b.data)];
    };
    let y: string;
    if (kind === 'Conv2D') {
      const kernel = weights.take('kernel');
      const groups = Number(config.groups ?? 1);
      const w = g.constant(`${hint}_W`, convKernelDims(kernel.shape), convKernelToOnnx(kernel.shape, kernel.data));
      y = g.node('Conv', [x.name, w, ...bias()], { ...common, group: attr.int(groups) }, hint);
    } else {
      const depthwise = weights.take('depthwise_kernel');
      const [, , channels] = depthwise.shape;
      const dw = g.constant(`${hint}_dw`, depthwiseKernelDims(depthwise.shape), depthwiseKernelToOnnx(depthwise.shape, depthwise.data));
      if (kind === 'DepthwiseConv2D') {
        y = g.node('Conv', [x.name, dw, ...bias()], { ...common, group: attr.int(channels) }, hint);
      } else {
        const mid = g.node('Conv', [x.name, dw], { ...common, group: attr.int(channels) }, `${hint}_depthwise`);
        const pointwise = weights.take('pointwise_kernel');
        const pw = g.constant(`${hint}_pw`, convKernelDims(pointwise.shape), convKernelToOnnx(pointwise.shape, pointwise.data));
        y = g.node('Conv', [mid, pw, ...bias()], {}, hint);
      }
    }
    weights.expectAllUsed();
    return y;
  }

  private batchNormalization(layer: Layer, config: Config, x: Value): Value {
    const g = this.g;
    const axis = Number(config.axis ?? -1);
    const channelAxis = axis < 0 ? axis + x.rank : axis;
    // ONNX BatchNormalization normalises axis 1: the channels of NCHW or of [batch, features].
    const onChannels = (x.layout === 'nchw' && channelAxis === 3) || (x.layout === 'plain' && x.rank === 2 && channelAxis === 1);
    if (!onChannels) throw new NotConvertibleError(`${describe(layer)} over axis ${axis} of a rank-${x.rank} value`);
    const weights = this.weights(layer);
    const mean = weights.take('moving_mean');
    const variance = weights.take('moving_variance');
    const channels = mean.data.length;
    const gamma = config.scale === false ? new Float32Array(channels).fill(1) : weights.take('gamma').data;
    const beta = config.center === false ? new Float32Array(channels) : weights.take('beta').data;
    weights.expectAllUsed();
    const hint = layer.name;
    const inputs = [
      x.name,
      g.floatConstant(`${hint}_gamma`, [channels], gamma),
      g.floatConstant(`${hint}_beta`, [channels], beta),
      g.floatConstant(`${hint}_mean`, [channels], mean.data),
      g.floatConstant(`${hint}_var`, [channels], variance.data),
    ];
    return { ...x, name: g.node('BatchNormalization', inputs, { epsilon: attr.float(Number(config.epsilon ?? 1e-3)) }, hint) };
  }

  private elementwise(layer: Layer, op: string, inputs: Value[]): Value {
    if (inputs.length < 2) throw new NotConvertibleError(`${describe(layer)} has ${inputs.length} input`);
    const sameForm = inputs.every((v) => v.layout === inputs[0].layout && v.rank === inputs[0].rank);
    const parts = sameForm ? inputs : inputs.map((v) => this.g.toPlain(v));
    let acc = parts[0].name;
    for (let i = 1; i < parts.length; i++) acc = this.g.node(op, [acc, parts[i].name], {}, layer.name);
    return { ...parts[0], name: acc };
  }

  /** Applies a Keras activation by name; returns the output name. */
  private activation(layer: Layer, name: string, x: Value): string {
    const g = this.g;
    const hint = `${layer.name}_${name}`;
    switch (name) {
      case 'linear':
      case 'null':
      case 'undefined':
        return x.name;
      case 'relu':
        return g.node('Relu', [x.name], {}, hint);
      case 'relu6':
        return this.clip(x.name, 0, 6, hint);
      case 'sigmoid':
        return g.node('Sigmoid', [x.name], {}, hint);
      case 'tanh':
        return g.node('Tanh', [x.name], {}, hint);
      case 'elu':
        return g.node('Elu', [x.name], { alpha: attr.float(1) }, hint);
      case 'selu':
        return g.node('Selu', [x.name], {}, hint);
      case 'softplus':
        return g.node('Softplus', [x.name], {}, hint);
      case 'softsign':
        return g.node('Softsign', [x.name], {}, hint);
      case 'hardSigmoid':
      case 'hard_sigmoid':
        return g.node('HardSigmoid', [x.name], { alpha: attr.float(0.2), beta: attr.float(0.5) }, hint);
      case 'swish':
        return g.node('Mul', [x.name, g.node('Sigmoid', [x.name], {}, `${hint}_sigmoid`)], {}, hint);
      case 'softmax':
        return g.node('Softmax', [x.name], { axis: attr.int(g.axisOf(x, -1)) }, hint);
      default:
        throw new NotConvertibleError(`${describe(layer)} uses activation "${name}", which has no ONNX conversion`);
    }
  }

  private clip(input: string, min: number, max: number, hint: string): string {
    const g = this.g;
    return g.node('Clip', [input, g.floatConstant(`${hint}_min`, [], [min]), g.floatConstant(`${hint}_max`, [], [max])], {}, hint);
  }

  private weights(layer: Layer): WeightSet {
    return new WeightSet(layer);
  }
}

/** A layer's weights by their Keras role (kernel, bias, gamma, ...), each taken once. */
class WeightSet {
  private readonly byRole = new Map<string, { shape: number[]; data: Float32Array }>();

  constructor(private readonly layer: Layer) {
    for (const variable of layer.weights) {
      const last = (variable.originalName || variable.name).split('/').pop() ?? '';
      const role = last.replace(/_\d+$/, '');
      if (variable.dtype !== 'float32') throw new NotConvertibleError(`${describe(layer)} has ${variable.dtype} weights`);
      if (this.byRole.has(role)) throw new NotConvertibleError(`${describe(layer)} has two weights named ${role}`);
      // Copied: some backends hand out their own storage.
      this.byRole.set(role, { shape: [...(variable.shape as number[])], data: Float32Array.from(variable.read().dataSync() as Float32Array) });
    }
  }

  take(role: string): { shape: number[]; data: Float32Array } {
    const found = this.byRole.get(role);
    if (!found) throw new NotConvertibleError(`${describe(this.layer)} has no "${role}" weight (has ${[...this.byRole.keys()].join(', ') || 'none'})`);
    this.byRole.delete(role);
    return found;
  }

  /** A weight left over means the layer does something this converter does not model. */
  expectAllUsed(): void {
    if (this.byRole.size) throw new NotConvertibleError(`${describe(this.layer)} has unexpected weights: ${[...this.byRole.keys()].join(', ')}`);
  }
}

function pair(value: unknown, layer: Layer, what: string): [number, number] {
  const list = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(list) || list.length !== 2 || !list.every((v) => Number.isInteger(v) && v > 0)) {
    throw new NotConvertibleError(`${describe(layer)} has an unsupported ${what} ${JSON.stringify(value)}`);
  }
  return [list[0], list[1]];
}

function padding(value: unknown, layer: Layer): 'same' | 'valid' {
  if (value === 'same' || value === 'valid') return value;
  if (value === undefined) return 'valid';
  throw new NotConvertibleError(`${describe(layer)} uses padding "${String(value)}"`);
}

function padding2d(value: unknown, layer: Layer): [[number, number], [number, number]] {
  if (typeof value === 'number') return [[value, value], [value, value]];
  if (Array.isArray(value) && value.length === 2) {
    const [a, b] = value.map((v) => (typeof v === 'number' ? [v, v] : v));
    if ([a, b].every((p) => Array.isArray(p) && p.length === 2 && p.every((n) => Number.isInteger(n) && n >= 0))) {
      return [a as [number, number], b as [number, number]];
    }
  }
  throw new NotConvertibleError(`${describe(layer)} has an unsupported padding ${JSON.stringify(value)}`);
}

// Kernel layouts: tfjs stores [kh, kw, in, out] (depthwise: [kh, kw, in, multiplier]);
// ONNX Conv wants [out, in, kh, kw] (depthwise: [in * multiplier, 1, kh, kw], group = in).

function convKernelDims([kh, kw, cin, cout]: number[]): number[] {
  return [cout, cin, kh, kw];
}

function convKernelToOnnx([kh, kw, cin, cout]: number[], data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let c = 0; c < cin; c++)
        for (let o = 0; o < cout; o++) out[((o * cin + c) * kh + i) * kw + j] = data[((i * kw + j) * cin + c) * cout + o];
  return out;
}

function depthwiseKernelDims([kh, kw, cin, mult]: number[]): number[] {
  return [cin * mult, 1, kh, kw];
}

function depthwiseKernelToOnnx([kh, kw, cin, mult]: number[], data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++)
      for (let c = 0; c < cin; c++)
        for (let m = 0; m < mult; m++) out[((c * mult + m) * kh + i) * kw + j] = data[((i * kw + j) * cin + c) * mult + m];
  return out;
}

export const kernelLayouts = { convKernelDims, convKernelToOnnx, depthwiseKernelDims, depthwiseKernelToOnnx };
