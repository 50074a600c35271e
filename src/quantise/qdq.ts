/**
 * Static int8 quantisation of a converted backbone, in the QDQ format ONNX Runtime's
 * quantiser writes (onnxruntime/python/tools/quantization, qdq_quantizer.py): the graph stays
 * a float graph, with QuantizeLinear -> DequantizeLinear pairs on the activations and int8
 * weights behind DequantizeLinear. ONNX Runtime's CPU provider then fuses
 * DQ -> Conv -> Q into QLinearConv and DQ -> Add -> Q into QLinearAdd, running them on int8
 * kernels (VNNI where the CPU has it). Written here because ONNX Runtime ships its
 * quantiser only in Python; the scheme is the same:
 * - weights: int8, symmetric, per output channel (axis 0 of an ONNX Conv weight, depthwise
 *   included: its weight is [channels, 1, kh, kw]); biases int32 at input scale x weight scale;
 * - activations: uint8, asymmetric, from calibrated ranges (u8s8, the fast x86 pairing);
 * - a Relu or Clip right after a Conv is removed and the Conv's output takes the activation's
 *   range: the Q's saturation does the clipping (QDQRemovableActivation in ONNX Runtime);
 * - a zero Pad before a Conv (Keras' ZeroPadding2D before a strided convolution) becomes the
 *   Conv's own padding: ONNX Runtime fuses Pad into Conv for float graphs, but a Pad between
 *   Q/DQ pairs would cost a dequantise, a float pad and a quantise each time.
 */
import type { OnnxModel, OnnxNode, OnnxTensor } from '../engine/onnx/onnx-proto.js';

/** Bump whenever the quantised graph changes: cached int8 models of older versions are not reused. */
export const QUANTISER_VERSION = 1;

export interface TensorRange {
  min: number;
  max: number;
}

/** What the pass will do to a graph: which activations to remove, which tensors need a range. */
export interface QuantisationPlan {
  /** Activation nodes folded into the Conv before them (by node name). */
  removedActivations: Set<string>;
  /** Tensors (as named in the float graph) that get a QuantizeLinear -> DequantizeLinear pair. */
  tensors: string[];
}

export interface QuantisationSummary {
  /** Conv weights stored as int8. */
  int8Weights: number;
  /** Activation tensors with a Q/DQ pair. */
  quantisedTensors: number;
  removedActivations: number;
}

const QUANTISED_OPS = new Set(['Conv']);

/** Works out, on the float graph, what `quantiseStatic` needs ranges for. */
export function planQuantisation(model: OnnxModel): QuantisationPlan {
  return planFolded(foldPadsIntoConvs(model));
}

function planFolded(model: OnnxModel): QuantisationPlan {
  const initializers = new Map(model.initializers.map((t) => [t.name, t]));
  const producer = new Map<string, OnnxNode>();
  const readers = new Map<string, OnnxNode[]>();
  for (const node of model.nodes) {
    for (const o of node.outputs) producer.set(o, node);
    for (const i of node.inputs) readers.set(i, [...(readers.get(i) ?? []), node]);
  }
  const graphOutputs = new Set(model.outputs.map((o) => o.name));

  const removedActivations = new Set<string>();
  // Conv output name -> the activation output that replaces it.
  const renamed = new Map<string, string>();
  for (const node of model.nodes) {
    if (!isRemovableActivation(node, initializers)) continue;
    const convOut = node.inputs[0];
    const conv = producer.get(convOut);
    if (!conv || !QUANTISED_OPS.has(conv.op) || graphOutputs.has(convOut) || readers.get(convOut)?.length !== 1) continue;
    removedActivations.add(node.name);
    renamed.set(convOut, node.outputs[0]);
  }

  const tensors = new Set<string>();
  const isActivation = (name: string) => !initializers.has(name) && name !== '';
  for (const node of model.nodes) {
    if (node.op === 'Conv') {
      if (isActivation(node.inputs[0])) tensors.add(node.inputs[0]);
      tensors.add(renamed.get(node.outputs[0]) ?? node.outputs[0]);
    } else if (node.op === 'Add' && node.inputs.length === 2 && node.inputs.every(isActivation)) {
      // A residual connection: QLinearAdd keeps the block in int8.
      for (const input of node.inputs) tensors.add(input);
      tensors.add(node.outputs[0]);
    }
  }
  return { removedActivations, tensors: [...tensors] };
}

/**
 * The graph with each constant zero Pad of the spatial axes that only Convs read folded into
 * those Convs' `pads` (the same arithmetic: the Conv sees the padded image either way).
 */
export function foldPadsIntoConvs(model: OnnxModel): OnnxModel {
  const initializers = new Map(model.initializers.map((t) => [t.name, t]));
  const readers = new Map<string, OnnxNode[]>();
  for (const node of model.nodes) for (const i of node.inputs) readers.set(i, [...(readers.get(i) ?? []), node]);
  const graphOutputs = new Set(model.outputs.map((o) => o.name));
  const replaced = new Map<OnnxNode, OnnxNode>();
  const dropped = new Set<OnnxNode>();
  for (const pad of model.nodes) {
    if (pad.op !== 'Pad') continue;
    const mode = pad.attributes.mode;
    if (mode && !(mode.kind === 'string' && mode.value === 'constant')) continue;
    const pads = initializers.get(pad.inputs[1]);
    if (!pads || !(pads.data instanceof BigInt64Array) || pads.data.length !== 8) continue;
    const amounts = Array.from(pads.data, Number);
    if (amounts[0] || amounts[1] || amounts[4] || amounts[5]) continue;
    const value = pad.inputs[2] ? initializers.get(pad.inputs[2]) : undefined;
    if (pad.inputs[2] && !(value?.data instanceof Float32Array && value.data.length === 1 && value.data[0] === 0)) continue;
    const convs = readers.get(pad.outputs[0]) ?? [];
    if (graphOutputs.has(pad.outputs[0]) || convs.length === 0) continue;
    if (!convs.every((c) => c.op === 'Conv' && c.inputs[0] === pad.outputs[0] && ownPads(c) !== undefined)) continue;
    const [top, left, bottom, right] = [amounts[2], amounts[3], amounts[6], amounts[7]];
    for (const conv of convs) {
      const [t, l, b, r] = ownPads(conv)!;
      const { auto_pad: _autoPad, ...attributes } = conv.attributes;
      replaced.set(conv, {
        ...conv,
        inputs: [pad.inputs[0], ...conv.inputs.slice(1)],
        attributes: { ...attributes, pads: { kind: 'ints', value: [t + top, l + left, b + bottom, r + right] } },
      });
    }
    dropped.add(pad);
  }
  if (dropped.size === 0) return model;
  return { ...model, nodes: model.nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n) };
}

/** A 2-D Conv's explicit padding [top, left, bottom, right], or undefined if it pads automatically (SAME). */
function ownPads(conv: OnnxNode): number[] | undefined {
  const auto = conv.attributes.auto_pad;
  if (auto && !(auto.kind === 'string' && (auto.value === 'VALID' || auto.value === 'NOTSET'))) return undefined;
  const pads = conv.attributes.pads;
  if (!pads) return [0, 0, 0, 0];
  return pads.kind === 'ints' && pads.value.length === 4 ? [...pads.value] : undefined;
}

/** Relu, or a Clip whose range holds 0 (the Q range always does), with constant bounds. */
function isRemovableActivation(node: OnnxNode, initializers: Map<string, OnnxTensor>): boolean {
  if (node.op === 'Relu') return true;
  if (node.op !== 'Clip') return false;
  const bound = (i: number, fallback: number) => {
    const name = node.inputs[i];
    if (name === undefined || name === '') return fallback;
    const t = initializers.get(name);
    return t && t.data instanceof Float32Array && t.data.length === 1 ? t.data[0] : undefined;
  };
  const min = bound(1, -Infinity);
  const max = bound(2, Infinity);
  return min !== undefined && max !== undefined && min <= 0 && max >= 0;
}

/** uint8 scale and zero point covering `range` (widened to hold 0, so zero padding is exact). */
export function activationParams(range: TensorRange): { scale: number; zeroPoint: number } {
  const min = Math.min(0, range.min);
  const max = Math.max(0, range.max);
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error(`range [${range.min}, ${range.max}] is not finite`);
  const scale = max > min ? (max - min) / 255 : 1;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-min / scale)));
  return { scale, zeroPoint };
}

/** Symmetric int8 per output channel (axis 0). An all-zero channel gets scale 1. */
export function quantiseWeightPerChannel(weights: Float32Array, channels: number): { values: Int8Array; scales: Float32Array } {
  const perChannel = weights.length / channels;
  const values = new Int8Array(weights.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let absMax = 0;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) absMax = Math.max(absMax, Math.abs(weights[i]));
    const scale = absMax > 0 ? absMax / 127 : 1;
    scales[c] = scale;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) values[i] = Math.max(-127, Math.min(127, Math.round(weights[i] / scale)));
  }
  return { values, scales };
}

/**
 * The QDQ int8 graph of `model`, given calibrated ranges for every tensor of
 * `planQuantisation(model).tensors`. The input graph is not changed.
 */
export function quantiseStatic(original: OnnxModel, ranges: ReadonlyMap<string, TensorRange>): { model: OnnxModel; summary: QuantisationSummary } {
  const model = foldPadsIntoConvs(original);
  const plan = planFolded(model);
  for (const name of plan.tensors) if (!ranges.has(name)) throw new Error(`no calibrated range for tensor "${name}"`);
  const initializers = new Map(model.initializers.map((t) => [t.name, t]));
  const used = new Set([...model.nodes.flatMap((n) => [...n.inputs, ...n.outputs, n.name]), ...initializers.keys()]);
  const unique = (hint: string) => {
    let name = hint;
    for (let i = 1; used.has(name); i++) name = `${hint}_${i}`;
    used.add(name);
    return name;
  };
  const added: OnnxTensor[] = [];
  const addTensor = (hint: string, dims: number[], type: OnnxTensor['type'], data: OnnxTensor['data']) => {
    const name = unique(hint);
    added.push({ name, dims, type, data });
    return name;
  };

  // 1. Drop the activations folded into their Conv: the Conv writes the activation's output.
  const nodes: OnnxNode[] = [];
  const removedBy = new Map<string, string>();
  for (const node of model.nodes) if (plan.removedActivations.has(node.name)) removedBy.set(node.inputs[0], node.outputs[0]);
  for (const node of model.nodes) {
    if (plan.removedActivations.has(node.name)) continue;
    nodes.push({ ...node, inputs: [...node.inputs], outputs: node.outputs.map((o) => removedBy.get(o) ?? o), attributes: { ...node.attributes } });
  }

  // 2. A Q -> DQ pair after each planned tensor; its readers take the dequantised copy.
  const params = new Map<string, { scale: string; zeroPoint: string; scaleValue: number }>();
  const dequantised = new Map<string, string>();
  // Dequantised copy -> the tensor it copies (a Conv's bias scale needs its input's scale).
  const sourceOf = new Map<string, string>();
  for (const tensor of plan.tensors) {
    const { scale, zeroPoint } = activationParams(ranges.get(tensor)!);
    params.set(tensor, {
      scale: addTensor(`${tensor}_scale`, [], 'float32', Float32Array.of(scale)),
      zeroPoint: addTensor(`${tensor}_zero_point`, [], 'uint8', Uint8Array.of(zeroPoint)),
      scaleValue: scale,
    });
    dequantised.set(tensor, unique(`${tensor}_dequantised`));
    sourceOf.set(dequantised.get(tensor)!, tensor);
  }
  const out: OnnxNode[] = [];
  const pairAfter = (tensor: string) => {
    const p = params.get(tensor)!;
    const quantised = unique(`${tensor}_quantised`);
    out.push({ op: 'QuantizeLinear', inputs: [tensor, p.scale, p.zeroPoint], outputs: [quantised], name: unique(`${tensor}#quantise`), attributes: {} });
    out.push({ op: 'DequantizeLinear', inputs: [quantised, p.scale, p.zeroPoint], outputs: [dequantised.get(tensor)!], name: unique(`${tensor}#dequantise`), attributes: {} });
  };
  const graphInputs = new Set(model.inputs.map((i) => i.name));
  for (const tensor of plan.tensors) if (graphInputs.has(tensor)) pairAfter(tensor);

  let int8Weights = 0;
  for (const node of nodes) {
    node.inputs = node.inputs.map((i) => dequantised.get(i) ?? i);
    if (node.op === 'Conv') int8Weights += quantiseConvWeights(node, initializers, params, addTensor, unique, sourceOf, out) ? 1 : 0;
    out.push(node);
    for (const o of node.outputs) if (params.has(o)) pairAfter(o);
  }

  const needed = new Set(out.flatMap((n) => n.inputs));
  const kept = [...model.initializers, ...added].filter((t) => needed.has(t.name));
  return {
    model: { ...model, nodes: out, initializers: kept },
    summary: { int8Weights, quantisedTensors: plan.tensors.length, removedActivations: plan.removedActivations.size },
  };
}

/**
 * Rewrites a Conv's weight (and bias) to int8 (int32) behind DequantizeLinear nodes pushed
 * onto `out` before it. False (left float) when the weight is not a constant.
 */
function quantiseConvWeights(
  conv: OnnxNode,
  initializers: Map<string, OnnxTensor>,
  params: Map<string, { scale: string; zeroPoint: string; scaleValue: number }>,
  addTensor: (hint: string, dims: number[], type: OnnxTensor['type'], data: OnnxTensor['data']) => string,
  unique: (hint: string) => string,
  sourceOf: ReadonlyMap<string, string>,
  out: OnnxNode[],
): boolean {
  const weight = initializers.get(conv.inputs[1]);
  if (!weight || !(weight.data instanceof Float32Array)) return false;
  const channels = weight.dims[0];
  const { values, scales } = quantiseWeightPerChannel(weight.data, channels);
  const dq = (hint: string, data: string, scale: string, zeroPoint: string) => {
    const output = unique(`${hint}_dequantised`);
    out.push({ op: 'DequantizeLinear', inputs: [data, scale, zeroPoint], outputs: [output], name: unique(`${hint}#dequantise`), attributes: { axis: { kind: 'int', value: 0 } } });
    return output;
  };
  const weightScale = addTensor(`${weight.name}_scale`, [channels], 'float32', scales);
  conv.inputs[1] = dq(
    weight.name,
    addTensor(`${weight.name}_int8`, [...weight.dims], 'int8', values),
    weightScale,
    addTensor(`${weight.name}_zero_point`, [channels], 'int8', new Int8Array(channels)),
  );

  const bias = conv.inputs[2] ? initializers.get(conv.inputs[2]) : undefined;
  const inputParams = params.get(sourceOf.get(conv.inputs[0]) ?? conv.inputs[0]);
  if (bias && bias.data instanceof Float32Array && inputParams) {
    const biasScales = new Float32Array(channels);
    const biasValues = new Int32Array(channels);
    for (let c = 0; c < channels; c++) {
      biasScales[c] = inputParams.scaleValue * scales[c];
      biasValues[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(bias.data[c] / biasScales[c])));
    }
    conv.inputs[2] = dq(
      bias.name,
      addTensor(`${bias.name}_int32`, [channels], 'int32', biasValues),
      addTensor(`${bias.name}_scale`, [channels], 'float32', biasScales),
      addTensor(`${bias.name}_zero_point`, [channels], 'int32', new Int32Array(channels)),
    );
  }
  return true;
}
