/**
 * Converts a tfjs backbone (layers or graph model) to one ONNX model with the same
 * contract as the tfjs engine: input `frames`, uint8 RGB [batch, height, width, 3] exactly
 * as prepared frames hold them; scaling to the backbone's input range and the NHWC → NCHW
 * transpose happen once inside the graph; output `features` [batch, featureSize] (global
 * average pooled if the feature layer is spatial, as the tfjs engine does) and, for models
 * with a classifier, `output` [batch, classes] as probabilities.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { tf } from '../backend.js';
import type { ModelFiles } from '../model-files.js';
import type { InputRange } from '../types.js';
import { GraphModelConverter, type TfNode, graphOutputNodes } from './convert-graph.js';
import { LayersConverter } from './convert-layers.js';
import { GraphBuilder, NotConvertibleError, type Value, attr } from './onnx-graph.js';
import { type OnnxModel, encodeOnnxModel } from './onnx-proto.js';

/** Bump whenever the converter's output changes: cached conversions from older versions are not reused. */
export const CONVERTER_VERSION = 1;

export const ONNX_INPUT = 'frames';
export const ONNX_FEATURES = 'features';
export const ONNX_OUTPUT = 'output';

/** What the tfjs side decided about the model (see tfjs-models.ts `buildModel`). */
export interface ConversionTarget {
  files: ModelFiles;
  /** Layer (or `container/layer`) or graph node whose output is the feature vector. */
  featureLayer: string;
  hasClassifier: boolean;
  /** Apply softmax to the model's own output (it gives logits). */
  outputIsLogits: boolean;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  /**
   * `features` is the feature layer's map flattened in TensorFlow's [h, w, c] order instead
   * of pooled: a backbone cut short for fine-tuning, whose top needs the whole map.
   */
  spatial?: boolean;
}

export interface ConvertedModel {
  bytes: Uint8Array;
  /** The graph `bytes` encode, for passes over it (int8 quantisation). */
  model: OnnxModel;
  /** ONNX operator counts, for logs and reports. */
  operators: Record<string, number>;
}

const SCALING: Record<InputRange, { scale: number; offset: number }> = {
  '[-1,1]': { scale: 1 / 127.5, offset: -1 },
  '[0,1]': { scale: 1 / 255, offset: 0 },
  '[0,255]': { scale: 1, offset: 0 },
};

/** Converts, or throws NotConvertibleError saying which layer or op stopped it. */
export async function convertToOnnx(target: ConversionTarget): Promise<ConvertedModel> {
  const g = new GraphBuilder();
  const names = { input: g.uniqueName(ONNX_INPUT), features: g.uniqueName(ONNX_FEATURES), output: g.uniqueName(ONNX_OUTPUT) };
  const image = preprocess(g, names.input, target.inputRange);

  const { features, output } =
    target.files.format === 'graph' ? convertGraph(g, target, image) : await convertLayers(g, target, image);

  g.nodeTo('Identity', [target.spatial ? flattenPlain(g, features) : toVector(g, features)], names.features);
  const outputs = [{ name: names.features, type: 'float32' as const, dims: ['batch', 'features'] }];
  if (target.hasClassifier) {
    if (!output) throw new NotConvertibleError('the model has no classifier output to convert');
    const vector = toVector(g, output);
    g.nodeTo(target.outputIsLogits ? 'Softmax' : 'Identity', [vector], names.output, target.outputIsLogits ? { axis: attr.int(-1) } : {});
    outputs.push({ name: names.output, type: 'float32', dims: ['batch', 'classes'] });
  }
  const { width, height } = target.inputSize;
  const model = g.finish([{ name: names.input, type: 'uint8', dims: ['batch', height, width, 3] }], outputs, {
    graphName: 'lane-vision-backbone',
    producer: { name: 'lane-vision', version: String(CONVERTER_VERSION) },
    docString: `Converted from the tfjs ${target.files.format} model in ${target.files.dir}; features at ${target.featureLayer}`,
    metadata: { sourceFingerprint: target.files.fingerprint, featureLayer: target.featureLayer, inputRange: target.inputRange },
  });
  return { bytes: encodeOnnxModel(model), model, operators: operatorCounts(model) };
}

/** ONNX operator counts of a graph, for logs and reports. */
export function operatorCounts(model: OnnxModel): Record<string, number> {
  const operators: Record<string, number> = {};
  for (const node of model.nodes) operators[node.op] = (operators[node.op] ?? 0) + 1;
  return operators;
}

/**
 * Appends the backbone to `g`, reading `image` (float NCHW in the backbone's input range),
 * and returns the name of its feature vector [batch, featureSize] (pooled as the engine
 * does). For graphs that go on past the features, e.g. an exported model with its head.
 */
export async function appendBackboneFeatures(g: GraphBuilder, target: Omit<ConversionTarget, 'hasClassifier' | 'outputIsLogits'>, image: Value): Promise<string> {
  const full = { ...target, hasClassifier: false, outputIsLogits: false };
  const { features } = full.files.format === 'graph' ? convertGraph(g, full, image) : await convertLayers(g, full, image);
  return toVector(g, features);
}

/** uint8 NHWC frames → float, scaled to the backbone's range, NCHW. */
function preprocess(g: GraphBuilder, input: string, range: InputRange): Value {
  const { scale, offset } = SCALING[range];
  let x = g.node('Cast', [input], { to: attr.int(1) }, 'frames_float');
  if (scale !== 1) x = g.node('Mul', [x, g.floatConstant('input_scale', [], [scale])], {}, 'frames_scaled');
  if (offset !== 0) x = g.node('Add', [x, g.floatConstant('input_offset', [], [offset])], {}, 'frames_shifted');
  return g.toNchw({ name: x, rank: 4, layout: 'plain' }, 'the input');
}

/** [batch, ...] → [batch, n]: spatial maps are averaged over space first, as the tfjs engine does. */
function toVector(g: GraphBuilder, v: Value): string {
  if (v.rank === 4) {
    const pooled = g.node('GlobalAveragePool', [g.toNchw(v, 'pooling').name], {}, `${v.name}_pool`);
    return g.node('Flatten', [pooled], { axis: attr.int(1) }, `${v.name}_vector`);
  }
  if (v.rank === 3) {
    const mean = g.node('ReduceMean', [g.toPlain(v).name], { axes: attr.ints([1]), keepdims: attr.int(0) }, `${v.name}_mean`);
    return mean;
  }
  if (v.rank === 2) return v.name;
  return g.node('Flatten', [g.toPlain(v).name], { axis: attr.int(1) }, `${v.name}_vector`);
}

/** [batch, ...] → [batch, n] in TensorFlow's axis order, nothing averaged. */
function flattenPlain(g: GraphBuilder, v: Value): string {
  if (v.rank === 2) return v.name;
  return g.node('Flatten', [g.toPlain(v).name], { axis: attr.int(1) }, `${v.name}_flat`);
}

// ---------------------------------------------------------------- layers models

function isContainer(layer: tfl.layers.Layer): layer is tfl.LayersModel {
  return Array.isArray((layer as Partial<tfl.LayersModel>).layers);
}

/** The layer named like tfjs-models names features: `layer` at the top, or `container/layer`. */
export function findFeatureLayer(model: tfl.LayersModel, name: string): { layer: tfl.layers.Layer; owner: tfl.LayersModel } | undefined {
  const top = model.layers.find((l) => l.name === name);
  if (top) return { layer: top, owner: model };
  const search = (container: tfl.LayersModel): { layer: tfl.layers.Layer; owner: tfl.LayersModel } | undefined => {
    for (const layer of container.layers) if (`${container.name}/${layer.name}` === name) return { layer, owner: container };
    for (const layer of container.layers) {
      if (!isContainer(layer)) continue;
      const found = search(layer);
      if (found) return found;
    }
    return undefined;
  };
  for (const layer of model.layers) {
    if (!isContainer(layer)) continue;
    const found = search(layer);
    if (found) return found;
  }
  return undefined;
}

async function convertLayers(g: GraphBuilder, target: ConversionTarget, image: Value): Promise<{ features: Value; output?: Value }> {
  const { files } = target;
  // A private copy: the converter reads every weight, and the tfjs model it came from may be disposed meanwhile.
  const handler = tf.io.fromMemory({ modelTopology: files.modelJson.modelTopology, weightSpecs: files.weightSpecs, weightData: files.weightData });
  const model = await tfl.loadLayersModel(handler);
  const variables = model.weights;
  try {
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      throw new NotConvertibleError(`the model has ${model.inputs.length} inputs and ${model.outputs.length} outputs`);
    }
    const converter = new LayersConverter(g);
    const found = findFeatureLayer(model, target.featureLayer);
    if (!found) throw new NotConvertibleError(`feature layer "${target.featureLayer}" not found in the converter's copy of the model`);
    const lastLayer = model.layers[model.layers.length - 1];
    const featureTensor =
      found.owner === model && found.layer === lastLayer ? model.outputs[0] : (found.layer.output as tfl.SymbolicTensor);
    if (Array.isArray(featureTensor)) throw new NotConvertibleError(`feature layer "${target.featureLayer}" has several outputs`);
    const features = converter.valueOf(found.owner, image, featureTensor);
    const output = target.hasClassifier ? converter.valueOf(model, image, model.outputs[0]) : undefined;
    return { features, output };
  } finally {
    // Nested containers survive model.dispose() in tfjs-layers; their weights are freed one by one.
    model.dispose();
    for (const variable of variables) {
      try {
        variable.dispose();
      } catch {
        // already freed with its layer
      }
    }
  }
}

// ---------------------------------------------------------------- graph models

function convertGraph(g: GraphBuilder, target: ConversionTarget, image: Value): { features: Value; output?: Value } {
  const nodes = ((target.files.modelJson.modelTopology as { node?: TfNode[] }).node ?? []) as TfNode[];
  const converter = new GraphModelConverter(g, target.files, image);
  const features = converter.value(target.featureLayer.replace(/:\d+$/, ''));
  let output: Value | undefined;
  if (target.hasClassifier) {
    const [outputNode] = graphOutputNodes(target.files, nodes);
    if (!outputNode) throw new NotConvertibleError('the graph has no output node');
    output = converter.value(outputNode);
  }
  return { features, output };
}
