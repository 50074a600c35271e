/**
 * A small in-memory ONNX graph the converters write into, the layout bookkeeping they
 * share (TensorFlow is NHWC, ONNX convolutions are NCHW), and the clean-up passes run
 * before encoding: batch norms and bias adds folded into the convolution before them,
 * then everything not needed for the outputs dropped.
 */
import { type OnnxAttribute, type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo } from './onnx-proto.js';

/** Thrown for anything the converter cannot express: the caller falls back to tfjs with this message. */
export class NotConvertibleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotConvertibleError';
  }
}

/**
 * A value in the graph. Image-shaped (rank 4) values are kept NCHW where possible
 * (`nchw`: TensorFlow's [N,H,W,C] stored as [N,C,H,W]); `plain` values have TensorFlow's
 * own axis order.
 */
export interface Value {
  name: string;
  rank: number;
  layout: 'nchw' | 'plain';
}

export const attr = {
  int: (value: number): OnnxAttribute => ({ kind: 'int', value }),
  float: (value: number): OnnxAttribute => ({ kind: 'float', value }),
  string: (value: string): OnnxAttribute => ({ kind: 'string', value }),
  ints: (value: readonly number[]): OnnxAttribute => ({ kind: 'ints', value }),
};

/**
 * Padding attributes for a TensorFlow "SAME" / "VALID" convolution or pooling. TensorFlow's
 * SAME puts the odd pixel at the end, as ONNX SAME_UPPER does; but ONNX Runtime refuses
 * auto_pad with dilation, so stride-1 SAME is spelt out (its padding does not depend on the
 * image size). TensorFlow itself allows dilation only with stride 1.
 */
export function paddingAttributes(
  padding: 'same' | 'valid',
  kernel: readonly number[],
  strides: readonly number[],
  dilations: readonly number[] = kernel.map(() => 1),
): Record<string, OnnxAttribute> {
  if (padding === 'valid') return { auto_pad: attr.string('VALID') };
  if (strides.every((s) => s === 1)) {
    const total = kernel.map((k, i) => (k - 1) * dilations[i]);
    return { pads: attr.ints([...total.map((t) => Math.floor(t / 2)), ...total.map((t) => t - Math.floor(t / 2))]) };
  }
  if (dilations.some((d) => d !== 1)) throw new NotConvertibleError('"same" padding with both strides and dilation');
  return { auto_pad: attr.string('SAME_UPPER') };
}

/** NHWC axis → where it sits in NCHW. */
const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers = new Map<string, OnnxTensor>();
  private readonly used = new Set<string>();

  /** A name not used yet, readable in ONNX Runtime's messages. */
  uniqueName(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]+/g, '_') || 'value';
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  constant(hint: string, dims: readonly number[], data: Float32Array | BigInt64Array): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) throw new NotConvertibleError(`constant ${hint} has ${data.length} values for shape [${dims.join(',')}]`);
    const name = this.uniqueName(hint);
    this.initializers.set(name, { name, dims: [...dims], type: data instanceof Float32Array ? 'float32' : 'int64', data });
    return name;
  }

  floatConstant(hint: string, dims: readonly number[], values: ArrayLike<number>): string {
    return this.constant(hint, dims, Float32Array.from(values));
  }

  int64Constant(hint: string, values: readonly number[]): string {
    return this.constant(hint, [values.length], BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** Adds a node with one output and returns that output's name. */
  node(op: string, inputs: string[], attributes: Record<string, OnnxAttribute> = {}, hint = op): string {
    const output = this.uniqueName(hint);
    this.nodes.push({ op, inputs, outputs: [output], name: this.uniqueName(`${hint}#node`), attributes });
    return output;
  }

  /** Adds a node writing to a name reserved earlier with `uniqueName` (graph inputs and outputs). */
  nodeTo(op: string, inputs: string[], output: string, attributes: Record<string, OnnxAttribute> = {}): void {
    this.nodes.push({ op, inputs, outputs: [output], name: this.uniqueName(`${output}#node`), attributes });
  }

  // ------------------------------------------------------------ layout helpers

  /** The value in TensorFlow's own axis order. */
  toPlain(v: Value): Value {
    if (v.layout === 'plain') return v;
    return { name: this.node('Transpose', [v.name], { perm: attr.ints([0, 2, 3, 1]) }, `${v.name}_nhwc`), rank: 4, layout: 'plain' };
  }

  /** A rank-4 value as NCHW, for convolutions and pooling. */
  toNchw(v: Value, what: string): Value {
    if (v.rank !== 4) throw new NotConvertibleError(`${what} needs an image-shaped (rank 4) input, got rank ${v.rank}`);
    if (v.layout === 'nchw') return v;
    return { name: this.node('Transpose', [v.name], { perm: attr.ints([0, 3, 1, 2]) }, `${v.name}_nchw`), rank: 4, layout: 'nchw' };
  }

  /** Where a TensorFlow axis (negative allowed) sits in the stored value. */
  axisOf(v: Value, tfAxis: number): number {
    const axis = tfAxis < 0 ? tfAxis + v.rank : tfAxis;
    if (axis < 0 || axis >= v.rank) throw new NotConvertibleError(`axis ${tfAxis} is out of range for rank ${v.rank}`);
    return v.layout === 'nchw' ? NHWC_TO_NCHW_AXIS[axis] : axis;
  }

  /**
   * A TensorFlow constant broadcast against `v`: for an NCHW value its axes are padded to
   * rank 4 and reordered to NCHW, so elementwise ops broadcast as they did in TensorFlow.
   */
  broadcastConstant(hint: string, v: Value, dims: readonly number[], values: ArrayLike<number>): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (v.layout !== 'nchw' || count === 1) return this.floatConstant(hint, count === 1 ? [] : dims, values);
    if (dims.length > 4) throw new NotConvertibleError(`constant ${hint} of rank ${dims.length} against an image`);
    const [n, h, w, c] = [...Array(4 - dims.length).fill(1), ...dims] as number[];
    const out = new Float32Array(count);
    for (let a = 0; a < n; a++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++)
          for (let k = 0; k < c; k++) out[((a * c + k) * h + y) * w + x] = values[((a * h + y) * w + x) * c + k];
    return this.constant(hint, [n, c, h, w], out);
  }

  // ------------------------------------------------------------ finishing

  /** Runs the folding passes and prunes to what `outputs` need. */
  finish(inputs: OnnxValueInfo[], outputs: OnnxValueInfo[], meta: Omit<OnnxModel, 'nodes' | 'initializers' | 'inputs' | 'outputs'>): OnnxModel {
    const keep = new Set(outputs.map((o) => o.name));
    foldIntoConvolutions(this, keep);
    const nodes = prune(this.nodes, keep);
    const needed = new Set(nodes.flatMap((n) => n.inputs));
    const initializers = [...this.initializers.values()].filter((t) => needed.has(t.name));
    return { ...meta, nodes, initializers, inputs, outputs };
  }
}

/** Keeps only nodes some output depends on (the list stays in topological order). */
function prune(nodes: OnnxNode[], outputs: Set<string>): OnnxNode[] {
  const wanted = new Set(outputs);
  const kept: OnnxNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (!node.outputs.some((o) => wanted.has(o))) continue;
    kept.push(node);
    for (const input of node.inputs) wanted.add(input);
  }
  return kept.reverse();
}

/**
 * Folds `BatchNormalization` and per-channel `Add` constants into the `Conv` that feeds them
 * when nothing else reads the convolution's output: one kernel instead of two, and the
 * arithmetic done once here in double precision.
 */
function foldIntoConvolutions(g: GraphBuilder, graphOutputs: Set<string>): void {
  for (let changed = true; changed; ) {
    changed = false;
    const producer = new Map<string, OnnxNode>();
    const readers = new Map<string, number>();
    for (const node of g.nodes) {
      for (const o of node.outputs) producer.set(o, node);
      for (const i of node.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
    }
    for (const node of g.nodes) {
      if (node.op !== 'BatchNormalization' && node.op !== 'Add') continue;
      const convIndex = node.inputs.findIndex((i) => producer.get(i)?.op === 'Conv');
      if (convIndex < 0 || (node.op === 'BatchNormalization' && convIndex !== 0)) continue;
      const convOut = node.inputs[convIndex];
      const conv = producer.get(convOut)!;
      if (readers.get(convOut) !== 1 || graphOutputs.has(convOut)) continue;
      const weights = g.initializers.get(conv.inputs[1]);
      const bias = conv.inputs[2] ? g.initializers.get(conv.inputs[2]) : undefined;
      if (!weights || weights.type !== 'float32' || (conv.inputs[2] && !bias)) continue;
      const channels = weights.dims[0];
      const folded = node.op === 'BatchNormalization' ? batchNormFactors(g, node, channels) : biasFactors(g, node, convIndex, channels);
      if (!folded) continue;
      const { scale, shift } = folded;
      const perChannel = weights.data.length / channels;
      const w = new Float32Array(weights.data.length);
      for (let c = 0; c < channels; c++) {
        for (let k = 0; k < perChannel; k++) w[c * perChannel + k] = (weights.data as Float32Array)[c * perChannel + k] * scale[c];
      }
      const b = new Float32Array(channels);
      for (let c = 0; c < channels; c++) b[c] = (bias ? (bias.data as Float32Array)[c] : 0) * scale[c] + shift[c];
      conv.inputs = [conv.inputs[0], g.constant(`${conv.name}_W`, weights.dims, w), g.constant(`${conv.name}_B`, [channels], b)];
      conv.outputs = [...node.outputs];
      g.nodes.splice(g.nodes.indexOf(node), 1);
      changed = true;
      break;
    }
  }
}

/** y = x * scale + shift per channel, for an inference-mode BatchNormalization with constant parameters. */
function batchNormFactors(g: GraphBuilder, node: OnnxNode, channels: number): { scale: Float64Array; shift: Float64Array } | undefined {
  const [gamma, beta, mean, variance] = node.inputs.slice(1, 5).map((n) => g.initializers.get(n));
  if (!gamma || !beta || !mean || !variance) return undefined;
  if ([gamma, beta, mean, variance].some((t) => t.data.length !== channels || t.type !== 'float32')) return undefined;
  const epsilon = node.attributes.epsilon?.kind === 'float' ? node.attributes.epsilon.value : 1e-5;
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma.data as Float32Array)[c] / Math.sqrt((variance.data as Float32Array)[c] + epsilon);
    shift[c] = (beta.data as Float32Array)[c] - (mean.data as Float32Array)[c] * scale[c];
  }
  return { scale, shift };
}

/** x + bias for a constant bias that is one value per output channel ([C,1,1] or [1,C,1,1]). */
function biasFactors(g: GraphBuilder, node: OnnxNode, convIndex: number, channels: number): { scale: Float64Array; shift: Float64Array } | undefined {
  if (node.inputs.length !== 2) return undefined;
  const constant = g.initializers.get(node.inputs[1 - convIndex]);
  if (!constant || constant.type !== 'float32' || constant.data.length !== channels) return undefined;
  const dims = constant.dims.filter((d) => d !== 1);
  const channelAxis = constant.dims.length - 3; // [C,1,1] or [1,C,1,1]
  if (channels > 1 && (dims.length !== 1 || constant.dims.length < 3 || constant.dims[channelAxis] !== channels)) return undefined;
  if (channels === 1 && constant.dims.length > 4) return undefined;
  return { scale: new Float64Array(channels).fill(1), shift: Float64Array.from(constant.data as Float32Array) };
}
