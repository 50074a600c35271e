/**
 * Builds tfjs models from files read by `readModelFolder` and decides where features come
 * from: an explicit layer / node, else the layer before the classifier, else the output.
 */
import * as tfc from '@tensorflow/tfjs-converter';
import * as tfl from '@tensorflow/tfjs-layers';
import { LaneVisionError } from '../errors.js';
import { tf } from './backend.js';
import type { ModelFiles } from './model-files.js';
import type { TfjsModelRunner } from './tfjs-engine.js';
import type { BackboneSpec } from './types.js';

export interface BuiltModel {
  runner: TfjsModelRunner;
  /** Layer / node the features come from. */
  featureLayer: string;
  /** [height, width] the model declares, if fixed. */
  declaredInputSize?: { width: number; height: number };
  /** Whether the model's own output is a classifier (and so `predict` works). */
  hasClassifier: boolean;
}

type Choice = Pick<BackboneSpec, 'featureLayer' | 'classifierOutput'>;

/** The files read by `readModelFolder`, as tfjs loads them. */
export function memoryHandler(files: ModelFiles): tf.io.IOHandler {
  return tf.io.fromMemory({
    modelTopology: files.modelJson.modelTopology,
    weightSpecs: files.weightSpecs,
    weightData: files.weightData,
    format: files.modelJson.format,
    generatedBy: files.modelJson.generatedBy,
    convertedBy: files.modelJson.convertedBy ?? undefined,
  });
}

export async function buildModel(files: ModelFiles, choice: Choice): Promise<BuiltModel> {
  const handler = memoryHandler(files);
  return files.format === 'graph' ? buildGraph(handler, files, choice) : buildLayers(handler, files, choice);
}

function invalid(files: ModelFiles, err: unknown): LaneVisionError {
  return new LaneVisionError(
    'MODEL_INVALID',
    `TensorFlow.js cannot build the ${files.format} model in ${files.dir}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

function sizeFromShape(shape: readonly (number | null)[] | undefined): { width: number; height: number } | undefined {
  if (!shape || shape.length !== 4) return undefined;
  const [, height, width] = shape;
  return height && width && height > 0 && width > 0 ? { width, height } : undefined;
}

// ---------------------------------------------------------------- layers models

/** Layers that only reshape or regularise: skipped when looking for the classifier. */
const PASS_THROUGH = new Set(['Reshape', 'Flatten', 'Dropout', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout']);
const GLOBAL_POOLS = new Set(['GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D']);

function isContainer(layer: tfl.layers.Layer): layer is tfl.LayersModel {
  return Array.isArray((layer as Partial<tfl.LayersModel>).layers);
}

function activationOf(layer: tfl.layers.Layer): unknown {
  return (layer.getConfig() as { activation?: unknown }).activation;
}

/** Whether `layer` ends in a softmax (looking inside nested models). */
function endsInSoftmax(layer: tfl.layers.Layer): boolean {
  if (isContainer(layer)) {
    const inner = [...layer.layers].reverse().find((l) => !PASS_THROUGH.has(l.getClassName()));
    return inner ? endsInSoftmax(inner) : false;
  }
  return layer.getClassName() === 'Softmax' || activationOf(layer) === 'softmax';
}

/** Index of the top-level layer holding the softmax classifier, or -1. */
function classifierIndex(model: tfl.LayersModel): number {
  for (let i = model.layers.length - 1; i >= 0; i--) {
    const layer = model.layers[i];
    if (PASS_THROUGH.has(layer.getClassName())) continue;
    return endsInSoftmax(layer) ? i : -1;
  }
  return -1;
}

/**
 * The layer before the classifier: the last global pooling layer or nested backbone model
 * before it, else the last layer before the classifier's Dense / Conv that is not one.
 */
function defaultFeatureLayer(model: tfl.LayersModel, classifierAt: number): tfl.layers.Layer {
  for (let i = classifierAt - 1; i >= 0; i--) {
    const layer = model.layers[i];
    if (GLOBAL_POOLS.has(layer.getClassName()) || isContainer(layer)) return layer;
  }
  for (let i = classifierAt - 1; i >= 0; i--) {
    const layer = model.layers[i];
    const kind = layer.getClassName();
    if (PASS_THROUGH.has(kind) || kind === 'Activation' || kind === 'Dense' || kind === 'InputLayer') continue;
    return layer;
  }
  return model.layers[Math.max(0, classifierAt - 1)];
}

/** Finds a layer by name at the top level or inside nested models, with the model holding it. */
function findLayer(model: tfl.LayersModel, name: string): { layer: tfl.layers.Layer; owner: tfl.LayersModel } | undefined {
  for (const layer of model.layers) {
    if (layer.name === name) return { layer, owner: model };
  }
  for (const layer of model.layers) {
    if (isContainer(layer)) {
      const found = findLayer(layer, name);
      if (found) return found;
    }
  }
  return undefined;
}

function layerNames(model: tfl.LayersModel, prefix = ''): string[] {
  return model.layers.flatMap((l) => [prefix + l.name, ...(isContainer(l) ? layerNames(l, `${prefix}${l.name}/`) : [])]);
}

async function buildLayers(handler: tf.io.IOHandler, files: ModelFiles, choice: Choice): Promise<BuiltModel> {
  let model: tfl.LayersModel;
  try {
    model = await tfl.loadLayersModel(handler);
  } catch (err) {
    throw invalid(files, err);
  }
  try {
    if (model.inputs.length !== 1 || model.inputs[0].shape.length !== 4 || model.inputs[0].shape[3] !== 3) {
      throw new LaneVisionError(
        'MODEL_INVALID',
        `The model in ${files.dir} takes ${JSON.stringify(model.inputs.map((i) => i.shape))}; a backbone needs one [batch, height, width, 3] image input`,
      );
    }
    const classifierAt = classifierIndex(model);
    const hasClassifier = choice.classifierOutput ? choice.classifierOutput !== 'none' : classifierAt >= 0;
    const outputLayer = model.layers[model.layers.length - 1];

    let featureLayer: tfl.layers.Layer;
    let owner: tfl.LayersModel = model;
    if (choice.featureLayer) {
      const found = findLayer(model, choice.featureLayer);
      if (!found) {
        const names = layerNames(model);
        throw new LaneVisionError(
          'FEATURE_LAYER_NOT_FOUND',
          `No layer "${choice.featureLayer}" in the model in ${files.dir}. Last layers: ${names.slice(-12).join(', ')}`,
        );
      }
      ({ layer: featureLayer, owner } = found);
    } else {
      featureLayer = hasClassifier && classifierAt >= 0 ? defaultFeatureLayer(model, classifierAt) : outputLayer;
    }

    let featureModel: tfl.LayersModel;
    if (featureLayer === outputLayer && owner === model) {
      featureModel = model;
    } else if (owner === model) {
      featureModel = tfl.model({ inputs: model.inputs, outputs: featureLayer.output as tfl.SymbolicTensor });
    } else {
      // A layer inside a nested model: cut that model, which must itself take the image.
      const ownerInput = owner.inputs[0]?.shape;
      if (!ownerInput || JSON.stringify(ownerInput) !== JSON.stringify(model.inputs[0].shape)) {
        throw new LaneVisionError(
          'FEATURE_LAYER_NOT_FOUND',
          `Layer "${choice.featureLayer}" sits in nested model "${owner.name}", which does not take the image directly; choose one of its outer layers`,
        );
      }
      featureModel = tfl.model({ inputs: owner.inputs, outputs: featureLayer.output as tfl.SymbolicTensor });
    }

    const variables = model.weights;
    const runner: TfjsModelRunner = {
      features: (batch) => tf.tidy(() => featureModel.predict(batch) as tf.Tensor),
      output: hasClassifier ? (batch) => tf.tidy(() => model.predict(batch) as tf.Tensor) : undefined,
      outputIsLogits: choice.classifierOutput === 'logits',
      // Sub-models share the full model's layers and own no weights, so only the full model
      // is disposed. tfjs-layers counts a nested model once as a container and once as a
      // layer, so nested models (Teachable Machine's head) survive model.dispose(); their
      // weights are disposed one by one.
      dispose: () => disposeLayersModel(model, variables),
    };
    return {
      runner,
      featureLayer: owner === model ? featureLayer.name : `${owner.name}/${featureLayer.name}`,
      declaredInputSize: sizeFromShape(model.inputs[0].shape),
      hasClassifier,
    };
  } catch (err) {
    disposeLayersModel(model, model.weights);
    throw err;
  }
}

function disposeLayersModel(model: tfl.LayersModel, variables: readonly tfl.LayerVariable[]): void {
  try {
    model.dispose();
  } catch {
    // already disposed
  }
  for (const variable of variables) {
    try {
      variable.dispose();
    } catch {
      // disposed with its layer
    }
  }
}

// ---------------------------------------------------------------- graph models

interface GraphNodeJson {
  name: string;
  op: string;
  input?: string[];
}

const POOL_OPS = new Set(['Mean', 'AvgPool', 'Max', 'MaxPool']);
const GRAPH_PASS_THROUGH = new Set(['Reshape', 'Squeeze', 'Identity', 'IdentityN', 'StopGradient']);

function nodeName(tensorName: string): string {
  return tensorName.replace(/^\^/, '').replace(/:\d+$/, '');
}

function graphNodes(files: ModelFiles): Map<string, GraphNodeJson> {
  const nodes = (files.modelJson.modelTopology.node ?? []) as GraphNodeJson[];
  return new Map(nodes.map((n) => [n.name, n]));
}

/** Follows single-input pass-through ops backwards from `name`. */
function throughPassThrough(nodes: Map<string, GraphNodeJson>, name: string): GraphNodeJson | undefined {
  let node = nodes.get(name);
  for (let guard = 0; node && GRAPH_PASS_THROUGH.has(node.op) && guard < 20; guard++) {
    const first = node.input?.find((i) => !i.startsWith('^'));
    node = first ? nodes.get(nodeName(first)) : undefined;
  }
  return node;
}

/** Nearest pooling node upstream of `output`: the global pool feeding the logits. */
function nearestPool(nodes: Map<string, GraphNodeJson>, output: string): string | undefined {
  const seen = new Set<string>([output]);
  let frontier = [output];
  while (frontier.length) {
    const next: string[] = [];
    for (const name of frontier) {
      for (const input of nodes.get(name)?.input ?? []) {
        if (input.startsWith('^')) continue;
        const upstream = nodeName(input);
        if (seen.has(upstream)) continue;
        seen.add(upstream);
        const node = nodes.get(upstream);
        if (node && POOL_OPS.has(node.op)) return upstream;
        next.push(upstream);
      }
    }
    frontier = next;
  }
  return undefined;
}

function looksLikeClassifierOutput(nodes: Map<string, GraphNodeJson>, output: string): boolean {
  const node = throughPassThrough(nodes, output);
  return node?.op === 'Softmax' || /(logits|predictions|probabilities|softmax)/i.test(output);
}

async function buildGraph(handler: tf.io.IOHandler, files: ModelFiles, choice: Choice): Promise<BuiltModel> {
  let model: tfc.GraphModel;
  try {
    model = await tfc.loadGraphModel(handler);
  } catch (err) {
    throw invalid(files, err);
  }
  try {
    if (model.inputs.length !== 1) {
      throw new LaneVisionError(
        'MODEL_INVALID',
        `The graph model in ${files.dir} has ${model.inputs.length} inputs (${model.inputs.map((i) => i.name).join(', ')}); a backbone needs one image input`,
      );
    }
    const nodes = graphNodes(files);
    const output = model.outputNodes[0];
    const outputName = nodeName(output);
    let featureNode: string;
    let hasClassifier: boolean;
    if (choice.featureLayer) {
      featureNode = choice.featureLayer;
      if (!nodes.has(nodeName(featureNode))) {
        const candidates = [...nodes.values()].filter((n) => POOL_OPS.has(n.op)).map((n) => n.name);
        throw new LaneVisionError(
          'FEATURE_LAYER_NOT_FOUND',
          `No node "${featureNode}" in the graph model in ${files.dir}. Pooling nodes: ${candidates.slice(-8).join(', ') || 'none'}`,
        );
      }
      hasClassifier = choice.classifierOutput ? choice.classifierOutput !== 'none' : nodeName(featureNode) !== outputName;
    } else {
      hasClassifier = choice.classifierOutput ? choice.classifierOutput !== 'none' : looksLikeClassifierOutput(nodes, outputName);
      const pool = hasClassifier ? nearestPool(nodes, outputName) : undefined;
      featureNode = pool ?? output;
    }
    const featuresAreOutput = nodeName(featureNode) === outputName;
    const outputIsLogits =
      choice.classifierOutput === 'logits' || (!choice.classifierOutput && throughPassThrough(nodes, outputName)?.op !== 'Softmax');
    // Graphs with control flow refuse execute(); they are then run with executeAsync() for good.
    let needsAsync = false;
    const execute = (batch: tf.Tensor4D, node?: string): tf.Tensor | Promise<tf.Tensor> => {
      if (!needsAsync) {
        try {
          return tf.tidy(() => model.execute(batch, node) as tf.Tensor);
        } catch (err) {
          if (!/executeAsync/.test(err instanceof Error ? err.message : String(err))) throw err;
          needsAsync = true;
        }
      }
      return model.executeAsync(batch, node) as Promise<tf.Tensor>;
    };
    const runner: TfjsModelRunner = {
      features: (batch) => execute(batch, featuresAreOutput ? undefined : featureNode),
      output: hasClassifier ? (batch) => execute(batch) : undefined,
      outputIsLogits,
      dispose: () => model.dispose(),
    };
    return {
      runner,
      featureLayer: nodeName(featureNode),
      declaredInputSize: sizeFromShape(model.inputs[0].shape),
      hasClassifier,
    };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
