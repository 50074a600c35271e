/**
 * tfjs graph model (TensorFlow GraphDef as written by tfjs-converter) → ONNX nodes. Reads
 * the node list from model.json; weights are decoded by tfjs (`tf.io.decodeWeights`), so
 * quantized weights come out exactly as tfjs uses them. Only the ops image backbones are
 * made of are mapped; any other op raises NotConvertibleError naming it.
 */
import { tf } from '../backend.js';
import type { ModelFiles } from '../model-files.js';
import { GraphBuilder, NotConvertibleError, type Value, attr, paddingAttributes } from './onnx-graph.js';
import { kernelLayouts } from './convert-layers.js';
import type { OnnxAttribute } from './onnx-proto.js';

interface TfAttr {
  s?: string;
  i?: string | number;
  f?: number;
  b?: boolean;
  list?: { s?: string[]; i?: (string | number)[]; f?: number[] };
}

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, TfAttr>;
}

interface Constant {
  kind: 'const';
  dims: number[];
  values: Float32Array | Int32Array;
}

/** A converted value, or a constant kept in JS until an op needs it (shapes, axes, weights). */
type Resolved = (Value & { kind?: undefined }) | Constant;

const PASS_THROUGH = new Set(['Identity', 'StopGradient', 'Snapshot', 'PreventGradient']);
const ACTIVATIONS: Record<string, string> = { Relu: 'Relu', Sigmoid: 'Sigmoid', Tanh: 'Tanh', Elu: 'Elu' };
const BINARY: Record<string, string> = { Add: 'Add', AddV2: 'Add', BiasAdd: 'Add', Sub: 'Sub', Mul: 'Mul', RealDiv: 'Div', Maximum: 'Max', Minimum: 'Min' };

function text(a: TfAttr | undefined): string | undefined {
  return a?.s === undefined ? undefined : Buffer.from(a.s, 'base64').toString('utf8');
}
function ints(a: TfAttr | undefined): number[] | undefined {
  return a?.list?.i?.map(Number);
}
function splitInput(input: string): { node: string; index: number } {
  const [node, index] = input.replace(/^\^/, '').split(':');
  return { node, index: index === undefined ? 0 : Number(index) };
}

/** The graph's outputs as tfjs-converter picks them: the signature's, else nodes nothing reads. */
export function graphOutputNodes(files: ModelFiles, nodes: readonly TfNode[]): string[] {
  const json = files.modelJson as { signature?: { outputs?: Record<string, { name?: string }> }; userDefinedMetadata?: { signature?: { outputs?: Record<string, { name?: string }> } } };
  const signatureOutputs = json.signature?.outputs ?? json.userDefinedMetadata?.signature?.outputs;
  if (signatureOutputs && Object.keys(signatureOutputs).length) {
    return Object.values(signatureOutputs).map((o) => splitInput(o.name ?? '').node);
  }
  const read = new Set(nodes.flatMap((n) => (n.input ?? []).map((i) => splitInput(i).node)));
  return nodes.filter((n) => !read.has(n.name)).map((n) => n.name);
}

export class GraphModelConverter {
  private readonly nodes = new Map<string, TfNode>();
  private readonly constants = new Map<string, Constant>();
  private readonly memo = new Map<string, Resolved>();
  private readonly inputNode: string;

  constructor(
    private readonly g: GraphBuilder,
    files: ModelFiles,
    private readonly image: Value,
  ) {
    const topology = files.modelJson.modelTopology as { node?: TfNode[]; library?: { function?: unknown[] } };
    if (topology.library?.function?.length) throw new NotConvertibleError('the graph has control-flow functions');
    for (const node of topology.node ?? []) this.nodes.set(node.name, node);
    const placeholders = [...this.nodes.values()].filter((n) => n.op.startsWith('Placeholder'));
    if (placeholders.length !== 1) throw new NotConvertibleError(`the graph has ${placeholders.length} inputs`);
    this.inputNode = placeholders[0].name;
    this.readConstants(files);
  }

  /** Decodes every weight with tfjs (dequantizing as tfjs does) and frees the tensors. */
  private readConstants(files: ModelFiles): void {
    const tensors = tf.io.decodeWeights(files.weightData, files.weightSpecs);
    try {
      for (const [name, tensor] of Object.entries(tensors)) {
        if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') continue;
        const values = tensor.dtype === 'float32' ? Float32Array.from(tensor.dataSync() as Float32Array) : Int32Array.from(tensor.dataSync() as Int32Array);
        this.constants.set(name, { kind: 'const', dims: [...tensor.shape], values });
      }
    } finally {
      for (const tensor of Object.values(tensors)) tensor.dispose();
    }
  }

  /** The value of a node's first output, converting whatever it depends on. */
  value(nodeName: string): Value {
    const resolved = this.resolve(`${nodeName}:0`);
    if (resolved.kind === 'const') throw new NotConvertibleError(`node "${nodeName}" is a constant, not a result of the image`);
    return resolved;
  }

  private resolve(ref: string): Resolved {
    const { node: name, index } = splitInput(ref);
    const key = `${name}:${index}`;
    const known = this.memo.get(key);
    if (known) return known;
    const node = this.nodes.get(name);
    if (!node) throw new NotConvertibleError(`the graph reads a missing node "${name}"`);
    if (index !== 0) throw new NotConvertibleError(`node "${name}" (${node.op}): only first outputs convert`);
    const result = this.convertNode(node);
    this.memo.set(key, result);
    return result;
  }

  private inputsOf(node: TfNode): Resolved[] {
    return (node.input ?? []).filter((i) => !i.startsWith('^')).map((i) => this.resolve(i));
  }

  private convertNode(node: TfNode): Resolved {
    const g = this.g;
    const where = `node "${node.name}" (${node.op})`;
    if (node.name === this.inputNode) return this.image;
    if (node.op === 'Const') {
      const constant = this.constants.get(node.name);
      if (!constant) throw new NotConvertibleError(`${where} has no value in the weights`);
      return constant;
    }
    const inputs = this.inputsOf(node);
    const valueAt = (i: number): Value => {
      const v = inputs[i];
      if (!v || v.kind === 'const') throw new NotConvertibleError(`${where}: input ${i} must come from the image`);
      return v;
    };
    const constAt = (i: number): Constant => {
      const c = inputs[i];
      if (!c || c.kind !== 'const') throw new NotConvertibleError(`${where}: input ${i} must be a constant`);
      return c;
    };
    const a = node.attr ?? {};
    const dataFormat = text(a.data_format);
    if (dataFormat !== undefined && dataFormat !== 'NHWC') throw new NotConvertibleError(`${where} uses ${dataFormat}; only NHWC graphs convert`);

    if (PASS_THROUGH.has(node.op)) return inputs[0];
    if (ACTIVATIONS[node.op]) {
      const x = valueAt(0);
      return { ...x, name: g.node(ACTIVATIONS[node.op], [x.name], {}, node.name) };
    }
    if (BINARY[node.op]) return this.binary(node, BINARY[node.op], inputs);

    switch (node.op) {
      case 'Relu6':
        return { ...valueAt(0), name: this.relu6(valueAt(0).name, node.name) };
      case 'LeakyRelu':
        return { ...valueAt(0), name: g.node('LeakyRelu', [valueAt(0).name], { alpha: attr.float(a.alpha?.f ?? 0.2) }, node.name) };
      case 'Softmax': {
        const x = valueAt(0);
        return { ...x, name: g.node('Softmax', [x.name], { axis: attr.int(g.axisOf(x, -1)) }, node.name) };
      }
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case 'FusedDepthwiseConv2dNative':
        return this.convolution(node, valueAt(0), constAt(1), inputs.slice(2));
      case 'AvgPool':
      case 'MaxPool': {
        const x = g.toNchw(valueAt(0), where);
        const [, kh, kw] = ints(a.ksize) ?? [];
        const [, sh, sw] = ints(a.strides) ?? [];
        const attributes = { kernel_shape: attr.ints([kh, kw]), strides: attr.ints([sh, sw]), ...paddingAttributes(this.padding(node), [kh, kw], [sh, sw]) };
        return { ...x, name: g.node(node.op === 'AvgPool' ? 'AveragePool' : 'MaxPool', [x.name], attributes, node.name) };
      }
      case 'Mean':
      case 'Max': {
        const axes = [...constAt(1).values];
        return this.reduce(node, node.op === 'Mean' ? 'ReduceMean' : 'ReduceMax', valueAt(0), axes, a.keep_dims?.b === true);
      }
      case 'Squeeze': {
        const axes = ints(a.squeeze_dims) ?? [];
        if (!axes.length) throw new NotConvertibleError(`${where} without explicit squeeze_dims`);
        return this.squeeze(node, valueAt(0), axes);
      }
      case 'Reshape': {
        const shape = [...constAt(1).values];
        const x = g.toPlain(valueAt(0));
        const out: Value = { name: g.node('Reshape', [x.name, g.int64Constant(`${node.name}_shape`, shape)], {}, node.name), rank: shape.length, layout: 'plain' };
        return out;
      }
      case 'MatMul':
      case '_FusedMatMul':
        return this.matMul(node, valueAt(0), constAt(1), inputs.slice(2));
      case 'ConcatV2': {
        const axis = constAt(inputs.length - 1).values[0];
        const parts = inputs.slice(0, -1).map((_, i) => valueAt(i));
        const same = parts.every((p) => p.layout === parts[0].layout && p.rank === parts[0].rank);
        const list = same ? parts : parts.map((p) => g.toPlain(p));
        return { ...list[0], name: g.node('Concat', list.map((p) => p.name), { axis: attr.int(g.axisOf(list[0], axis)) }, node.name) };
      }
      case 'Pad':
      case 'PadV2': {
        const x = valueAt(0);
        const paddings = constAt(1);
        if (paddings.dims.join() !== `${x.rank},2`) throw new NotConvertibleError(`${where} with paddings of shape [${paddings.dims.join(',')}]`);
        const before = Array.from({ length: x.rank }, (_, i) => paddings.values[i * 2]);
        const after = Array.from({ length: x.rank }, (_, i) => paddings.values[i * 2 + 1]);
        const order = x.layout === 'nchw' ? [0, 3, 1, 2] : before.map((_, i) => i);
        const pads = g.int64Constant(`${node.name}_pads`, [...order.map((i) => before[i]), ...order.map((i) => after[i])]);
        const padInputs = [x.name, pads];
        if (node.op === 'PadV2') padInputs.push(g.floatConstant(`${node.name}_value`, [], [constAt(2).values[0]]));
        return { ...x, name: g.node('Pad', padInputs, { mode: attr.string('constant') }, node.name) };
      }
      default:
        throw new NotConvertibleError(`${where} has no ONNX conversion`);
    }
  }

  private padding(node: TfNode): 'same' | 'valid' {
    const padding = text(node.attr?.padding);
    if (padding === 'SAME') return 'same';
    if (padding === 'VALID') return 'valid';
    throw new NotConvertibleError(`node "${node.name}" (${node.op}) uses padding ${padding ?? 'none'}`);
  }

  private convolution(node: TfNode, input: Value, filter: Constant, args: Resolved[]): Value {
    const g = this.g;
    const a = node.attr ?? {};
    const where = `node "${node.name}" (${node.op})`;
    const x = g.toNchw(input, where);
    const [, sh, sw] = ints(a.strides) ?? [1, 1, 1, 1];
    const [, dh, dw] = ints(a.dilations) ?? [1, 1, 1, 1];
    if (filter.values instanceof Int32Array || filter.dims.length !== 4) throw new NotConvertibleError(`${where} has a filter of shape [${filter.dims.join(',')}]`);
    const attributes: Record<string, OnnxAttribute> = { strides: attr.ints([sh, sw]), dilations: attr.ints([dh, dw]) };
    if (text(a.padding) === 'EXPLICIT') {
      const p = ints(a.explicit_paddings) ?? [];
      if (p.length !== 8) throw new NotConvertibleError(`${where} with explicit paddings ${JSON.stringify(p)}`);
      attributes.pads = attr.ints([p[2], p[4], p[3], p[5]]);
    } else {
      Object.assign(attributes, paddingAttributes(this.padding(node), filter.dims.slice(0, 2), [sh, sw], [dh, dw]));
    }
    const depthwise = node.op.includes('Depthwise');
    const weights = depthwise
      ? g.constant(`${node.name}_W`, kernelLayouts.depthwiseKernelDims(filter.dims), kernelLayouts.depthwiseKernelToOnnx(filter.dims, filter.values))
      : g.constant(`${node.name}_W`, kernelLayouts.convKernelDims(filter.dims), kernelLayouts.convKernelToOnnx(filter.dims, filter.values));
    attributes.group = attr.int(depthwise ? filter.dims[2] : 1);

    const fused = (a.fused_ops?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
    const convInputs = [x.name, weights];
    let rest = fused;
    if (fused[0] === 'BiasAdd') {
      const bias = args[0];
      if (!bias || bias.kind !== 'const') throw new NotConvertibleError(`${where}: fused bias is not a constant`);
      convInputs.push(g.floatConstant(`${node.name}_B`, [bias.values.length], bias.values));
      rest = fused.slice(1);
    }
    let y = g.node('Conv', convInputs, attributes, rest.length ? `${node.name}_conv` : node.name);
    if (rest.length > 1) throw new NotConvertibleError(`${where} fuses ${fused.join(' + ')}`);
    if (rest.length === 1) y = this.fusedActivation(node, rest[0], y);
    return { name: y, rank: 4, layout: 'nchw' };
  }

  private fusedActivation(node: TfNode, op: string, input: string): string {
    if (op === 'Relu6') return this.relu6(input, node.name);
    if (op === 'LeakyRelu') return this.g.node('LeakyRelu', [input], { alpha: attr.float(node.attr?.leakyrelu_alpha?.f ?? 0.2) }, node.name);
    if (ACTIVATIONS[op]) return this.g.node(ACTIVATIONS[op], [input], {}, node.name);
    throw new NotConvertibleError(`node "${node.name}" (${node.op}) fuses ${op}, which has no ONNX conversion`);
  }

  private matMul(node: TfNode, input: Value, weights: Constant, args: Resolved[]): Value {
    const g = this.g;
    const a = node.attr ?? {};
    const where = `node "${node.name}" (${node.op})`;
    if (input.rank !== 2 || weights.dims.length !== 2) throw new NotConvertibleError(`${where} on rank ${input.rank}`);
    const inputs = [input.name, g.floatConstant(`${node.name}_W`, weights.dims, weights.values)];
    const fused = (a.fused_ops?.list?.s ?? []).map((s) => Buffer.from(s, 'base64').toString('utf8'));
    let rest = fused;
    if (fused[0] === 'BiasAdd') {
      const bias = args[0];
      if (!bias || bias.kind !== 'const') throw new NotConvertibleError(`${where}: fused bias is not a constant`);
      inputs.push(g.floatConstant(`${node.name}_B`, [bias.values.length], bias.values));
      rest = fused.slice(1);
    }
    const attributes = { transA: attr.int(a.transpose_a?.b ? 1 : 0), transB: attr.int(a.transpose_b?.b ? 1 : 0) };
    let y = g.node('Gemm', inputs, attributes, rest.length ? `${node.name}_gemm` : node.name);
    if (rest.length > 1) throw new NotConvertibleError(`${where} fuses ${fused.join(' + ')}`);
    if (rest.length === 1) y = this.fusedActivation(node, rest[0], y);
    return { name: y, rank: 2, layout: 'plain' };
  }

  private binary(node: TfNode, op: string, inputs: Resolved[]): Value {
    const g = this.g;
    if (inputs.length !== 2) throw new NotConvertibleError(`node "${node.name}" (${node.op}) has ${inputs.length} inputs`);
    const [left, right] = inputs;
    if (left.kind === 'const' && right.kind === 'const') throw new NotConvertibleError(`node "${node.name}" (${node.op}) only combines constants`);
    if (left.kind === 'const' || right.kind === 'const') {
      const value = (left.kind === 'const' ? right : left) as Value;
      const constant = (left.kind === 'const' ? left : right) as Constant;
      const c = g.broadcastConstant(`${node.name}_const`, value, constant.dims, constant.values);
      const ordered = left.kind === 'const' ? [c, value.name] : [value.name, c];
      return { ...value, name: g.node(op, ordered, {}, node.name) };
    }
    const same = left.layout === right.layout && left.rank === right.rank;
    const [l, r] = same ? [left, right] : [g.toPlain(left), g.toPlain(right)];
    return { ...l, name: g.node(op, [l.name, r.name], {}, node.name) };
  }

  private relu6(input: string, hint: string): string {
    const g = this.g;
    return g.node('Clip', [input, g.floatConstant(`${hint}_min`, [], [0]), g.floatConstant(`${hint}_max`, [], [6])], {}, hint);
  }

  /** Whether dropping `dropped` NHWC axes from an NCHW value leaves the rest in NHWC order. */
  private static keepsOrder(dropped: number[]): boolean {
    const keepsChannels = !dropped.includes(3);
    const keepsSpace = !dropped.includes(1) || !dropped.includes(2);
    return !(keepsChannels && keepsSpace);
  }

  private reduce(node: TfNode, op: string, input: Value, tfAxes: number[], keepDims: boolean): Value {
    const g = this.g;
    const axes = tfAxes.map((ax) => (ax < 0 ? ax + input.rank : ax));
    const x = input.layout === 'nchw' && (keepDims || GraphModelConverter.keepsOrder(axes)) ? input : g.toPlain(input);
    const mapped = axes.map((ax) => g.axisOf(x, ax));
    const name = g.node(op, [x.name], { axes: attr.ints(mapped), keepdims: attr.int(keepDims ? 1 : 0) }, node.name);
    if (keepDims) return { ...x, name };
    return { name, rank: x.rank - axes.length, layout: 'plain' };
  }

  private squeeze(node: TfNode, input: Value, tfAxes: number[]): Value {
    const g = this.g;
    const axes = tfAxes.map((ax) => (ax < 0 ? ax + input.rank : ax));
    const x = input.layout === 'nchw' && GraphModelConverter.keepsOrder(axes) ? input : g.toPlain(input);
    const mapped = g.int64Constant(`${node.name}_axes`, axes.map((ax) => g.axisOf(x, ax)));
    return { name: g.node('Squeeze', [x.name, mapped], {}, node.name), rank: x.rank - axes.length, layout: 'plain' };
  }
}
