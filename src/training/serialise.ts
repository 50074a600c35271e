/**
 * A head as JSON (shapes and settings) plus one binary blob of little-endian float32
 * values, the way the model store keeps it. Reading back checks every size and value,
 * so a truncated or edited file gives HEAD_INVALID instead of a head that predicts
 * garbage.
 */
import { LaneVisionError } from '../errors.js';
import { HEAD_KINDS, isDenseHead, type DenseLayerWeights, type TrainedHead } from './types.js';

export const HEAD_FORMAT = 'lane-vision-head';
export const HEAD_FORMAT_VERSION = 1;

/** The JSON half: everything but the numbers, plus the order and shapes of the numbers. */
export interface HeadJson {
  format: typeof HEAD_FORMAT;
  version: number;
  kind: TrainedHead['kind'];
  featureSize: number;
  classCount: number;
  normalise: boolean;
  temperature?: number;
  /** softmax / mlp / logistic / svm. */
  layers?: { inputSize: number; outputSize: number; activation: DenseLayerWeights['activation'] }[];
  /** knn. */
  k?: number;
  /** The float32 arrays in `weights`, in order. knn labels are stored as float32 (exact for whole numbers). */
  tensors: { name: string; shape: number[] }[];
  /** Length of `weights` in bytes. */
  byteLength: number;
}

export interface SerialisedHead {
  json: HeadJson;
  weights: Buffer;
}

export function serialiseHead(head: TrainedHead): SerialisedHead {
  const checked = validateHead(head);
  const arrays: { name: string; shape: number[]; values: Float32Array }[] = [];
  const json: HeadJson = {
    format: HEAD_FORMAT,
    version: HEAD_FORMAT_VERSION,
    kind: checked.kind,
    featureSize: checked.featureSize,
    classCount: checked.classCount,
    normalise: checked.normalise,
    tensors: [],
    byteLength: 0,
  };
  if (checked.temperature !== undefined) json.temperature = checked.temperature;
  if (checked.layers) {
    json.layers = checked.layers.map(({ inputSize, outputSize, activation }) => ({ inputSize, outputSize, activation }));
    checked.layers.forEach((layer, i) => {
      arrays.push({ name: `layers.${i}.kernel`, shape: [layer.inputSize, layer.outputSize], values: layer.kernel });
      arrays.push({ name: `layers.${i}.bias`, shape: [layer.outputSize], values: layer.bias });
    });
  }
  if (checked.prototypes) {
    arrays.push({ name: 'prototypes', shape: [checked.classCount, checked.featureSize], values: checked.prototypes });
  }
  if (checked.examples) {
    const { features, labels, k } = checked.examples;
    json.k = k;
    arrays.push({ name: 'examples.features', shape: [labels.length, checked.featureSize], values: features });
    arrays.push({ name: 'examples.labels', shape: [labels.length], values: Float32Array.from(labels) });
  }
  const total = arrays.reduce((sum, a) => sum + a.values.length, 0);
  const weights = Buffer.alloc(total * 4);
  let offset = 0;
  for (const { name, shape, values } of arrays) {
    json.tensors.push({ name, shape });
    for (let i = 0; i < values.length; i++, offset += 4) weights.writeFloatLE(values[i], offset);
  }
  json.byteLength = weights.length;
  return { json, weights };
}

/** Rebuilds a head; throws HEAD_INVALID for anything inconsistent. `json` may be the object or its text. */
export function deserialiseHead(json: HeadJson | string, weights: Uint8Array): TrainedHead {
  let manifest: HeadJson;
  try {
    manifest = typeof json === 'string' ? JSON.parse(json) : json;
  } catch (err) {
    throw invalid(`its description is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!manifest || typeof manifest !== 'object') throw invalid('its description is missing');
  if (manifest.format !== HEAD_FORMAT) throw invalid(`format is "${String(manifest.format)}", expected "${HEAD_FORMAT}"`);
  if (manifest.version !== HEAD_FORMAT_VERSION) {
    throw invalid(`format version ${String(manifest.version)} is not supported (this release reads ${HEAD_FORMAT_VERSION})`);
  }
  if (!(weights instanceof Uint8Array)) throw invalid('the weights are not binary data');
  if (!Array.isArray(manifest.tensors)) throw invalid('the list of weight arrays is missing');
  if (manifest.byteLength !== weights.length) {
    throw invalid(`the weights are ${weights.length} bytes but the description says ${String(manifest.byteLength)}`);
  }
  const view = new DataView(weights.buffer, weights.byteOffset, weights.byteLength);
  const arrays = new Map<string, Float32Array>();
  let offset = 0;
  for (const entry of manifest.tensors) {
    if (!entry || typeof entry.name !== 'string' || !Array.isArray(entry.shape)) throw invalid('a weight array entry is malformed');
    if (!entry.shape.every((d) => Number.isInteger(d) && d >= 0)) throw invalid(`${entry.name} has a bad shape`);
    const length = entry.shape.reduce((a, b) => a * b, 1);
    if (offset + length * 4 > weights.length) throw invalid(`the weights end before ${entry.name}`);
    const values = new Float32Array(length);
    for (let i = 0; i < length; i++, offset += 4) values[i] = view.getFloat32(offset, true);
    if (arrays.has(entry.name)) throw invalid(`${entry.name} appears twice`);
    arrays.set(entry.name, values);
  }
  if (offset !== weights.length) throw invalid(`${weights.length - offset} bytes of weights are not described`);

  const take = (name: string): Float32Array => {
    const values = arrays.get(name);
    if (!values) throw invalid(`${name} is missing`);
    arrays.delete(name);
    return values;
  };
  const head: TrainedHead = {
    kind: manifest.kind,
    featureSize: manifest.featureSize,
    classCount: manifest.classCount,
    normalise: manifest.normalise,
  };
  if (manifest.temperature !== undefined) head.temperature = manifest.temperature;
  if (isDenseHead(manifest.kind)) {
    if (!Array.isArray(manifest.layers)) throw invalid('its layers are missing');
    head.layers = manifest.layers.map((layer, i) => ({
      inputSize: layer?.inputSize,
      outputSize: layer?.outputSize,
      activation: layer?.activation,
      kernel: take(`layers.${i}.kernel`),
      bias: take(`layers.${i}.bias`),
    }));
  } else if (manifest.kind === 'prototype') {
    head.prototypes = take('prototypes');
  } else if (manifest.kind === 'knn') {
    const labels = take('examples.labels');
    if (!labels.every((l) => Number.isInteger(l))) throw invalid('a stored example label is not a whole number');
    head.examples = { features: take('examples.features'), labels: Int32Array.from(labels), k: manifest.k as number };
  }
  if (arrays.size > 0) throw invalid(`unexpected weight arrays: ${[...arrays.keys()].join(', ')}`);
  return validateHead(head);
}

/**
 * Checks that a head is complete and self-consistent (sizes agree, values finite,
 * labels in range) and returns it; throws HEAD_INVALID otherwise.
 */
export function validateHead(head: TrainedHead): TrainedHead {
  if (!head || typeof head !== 'object') throw invalid('it is missing');
  const { kind, featureSize, classCount } = head;
  if (!HEAD_KINDS.includes(kind)) throw invalid(`its kind "${String(kind)}" is unknown`);
  if (!isCount(featureSize)) throw invalid(`its feature size ${String(featureSize)} is not a positive whole number`);
  if (!isCount(classCount) || classCount < 2) throw invalid(`its class count ${String(classCount)} is not 2 or more`);
  if (typeof head.normalise !== 'boolean') throw invalid('it does not say whether features are normalised');
  if (head.temperature !== undefined && !(Number.isFinite(head.temperature) && head.temperature > 0)) {
    throw invalid(`its temperature ${String(head.temperature)} is not a positive number`);
  }
  const checkValues = (name: string, values: unknown, length: number) => {
    if (!(values instanceof Float32Array)) throw invalid(`${name} is not a Float32Array`);
    if (values.length !== length) throw invalid(`${name} has ${values.length} values, expected ${length}`);
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw invalid(`${name} contains NaN or infinity`);
  };
  if (isDenseHead(kind)) {
    const layers = head.layers;
    if (!Array.isArray(layers) || layers.length === 0) throw invalid('it has no layers');
    if (kind !== 'mlp' && layers.length !== 1) throw invalid(`a ${kind} head has 1 layer, not ${layers.length}`);
    let size = featureSize;
    layers.forEach((layer, i) => {
      const last = i === layers.length - 1;
      if (!layer || layer.inputSize !== size) throw invalid(`layer ${i} takes ${String(layer?.inputSize)} inputs, expected ${size}`);
      if (!isCount(layer.outputSize)) throw invalid(`layer ${i} has a bad output size ${String(layer.outputSize)}`);
      if (last && layer.outputSize !== classCount) throw invalid(`the last layer gives ${layer.outputSize} outputs for ${classCount} classes`);
      const allowed = last ? ['softmax'] : ['relu', 'linear'];
      if (!allowed.includes(layer.activation)) throw invalid(`layer ${i} has activation "${String(layer.activation)}"`);
      checkValues(`layer ${i} kernel`, layer.kernel, layer.inputSize * layer.outputSize);
      checkValues(`layer ${i} bias`, layer.bias, layer.outputSize);
      size = layer.outputSize;
    });
  } else if (kind === 'prototype') {
    checkValues('prototypes', head.prototypes, classCount * featureSize);
  } else {
    const examples = head.examples;
    if (!examples || !(examples.labels instanceof Int32Array) || examples.labels.length === 0) {
      throw invalid('it has no stored examples');
    }
    if (!isCount(examples.k)) throw invalid(`its k ${String(examples.k)} is not a positive whole number`);
    checkValues('stored examples', examples.features, examples.labels.length * featureSize);
    for (const label of examples.labels) {
      if (label < 0 || label >= classCount) throw invalid(`a stored example has label ${label} of ${classCount} classes`);
    }
  }
  return head;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

function invalid(reason: string): LaneVisionError {
  return new LaneVisionError('HEAD_INVALID', `The classifier head cannot be used: ${reason}`);
}
