/**
 * TrainedHead <-> (JSON structure + one binary file). Written by hand because the head is
 * plain typed arrays (no tensors, so tf.io.encodeWeights does not apply) and the format
 * must stay readable without a tfjs backend.
 *
 * Layout: the arrays listed in `arrays`, in order, raw little-endian, no padding; every
 * element is 4 bytes, so offsets follow from the shapes (as in a tfjs weights manifest).
 *
 * NOTE: src/training is getting serialiseHead/deserialiseHead; when it lands, this file
 * should delegate to it (or be removed) so the head has one on-disk format.
 */
import * as os from 'node:os';
import { LaneVisionError } from '../errors.js';
import type { DenseLayerWeights, HeadKind, TrainedHead } from '../training/types.js';
import type { HeadArraySpec, HeadFileSpec } from './types.js';

export type HeadWeightsSpec = Omit<HeadFileSpec, 'file' | 'byteLength' | 'sha256'>;

const HEAD_KINDS: readonly HeadKind[] = ['prototype', 'knn', 'softmax', 'mlp'];
const ACTIVATIONS: readonly DenseLayerWeights['activation'][] = ['relu', 'softmax', 'linear'];

/** Checks a head is complete and consistent; `code` is MODEL_INVALID on save, MODEL_CORRUPT on load. */
export function validateHead(head: TrainedHead, code: string): void {
  const fail = (why: string): never => {
    throw new LaneVisionError(code, `Classifier head is not usable: ${why}`);
  };
  if (!head || typeof head !== 'object') fail('no head given');
  if (!HEAD_KINDS.includes(head.kind)) fail(`unknown kind "${String(head.kind)}"`);
  if (!isPositiveInt(head.featureSize)) fail(`featureSize ${head.featureSize} is not a positive integer`);
  if (!isPositiveInt(head.classCount)) fail(`classCount ${head.classCount} is not a positive integer`);
  if (typeof head.normalise !== 'boolean') fail('normalise must be true or false');
  if (head.temperature !== undefined && !(Number.isFinite(head.temperature) && head.temperature > 0)) {
    fail(`temperature ${head.temperature} is not a positive number`);
  }
  if (head.kind === 'softmax' || head.kind === 'mlp') {
    const layers = head.layers;
    if (!layers || layers.length === 0) return fail(`a ${head.kind} head needs dense layers`);
    let width = head.featureSize;
    layers.forEach((layer, i) => {
      if (layer.inputSize !== width) fail(`layer ${i} takes ${layer.inputSize} inputs but receives ${width}`);
      if (!isPositiveInt(layer.outputSize)) fail(`layer ${i} outputSize ${layer.outputSize} is not a positive integer`);
      if (!ACTIVATIONS.includes(layer.activation)) fail(`layer ${i} has unknown activation "${layer.activation}"`);
      checkArray(layer.kernel, Float32Array, layer.inputSize * layer.outputSize, `layer ${i} kernel`, fail);
      checkArray(layer.bias, Float32Array, layer.outputSize, `layer ${i} bias`, fail);
      width = layer.outputSize;
    });
    if (width !== head.classCount) fail(`last layer gives ${width} outputs for ${head.classCount} classes`);
  } else if (head.kind === 'prototype') {
    checkArray(head.prototypes, Float32Array, head.classCount * head.featureSize, 'prototypes', fail);
  } else {
    const examples = head.examples;
    if (!examples) return fail('a knn head needs its examples');
    const count = examples.labels instanceof Int32Array ? examples.labels.length : -1;
    if (count < 1) fail('knn examples need an Int32Array of labels');
    checkArray(examples.features, Float32Array, count * head.featureSize, 'knn example features', fail);
    for (const label of examples.labels) if (label < 0 || label >= head.classCount) fail(`knn example label ${label} is out of range`);
    if (!isPositiveInt(examples.k)) fail(`knn k ${examples.k} is not a positive integer`);
  }
}

/** Structure (JSON) and numbers (one buffer) of a head; the head is validated first. */
export function encodeHeadWeights(head: TrainedHead): { spec: HeadWeightsSpec; data: Buffer } {
  validateHead(head, 'MODEL_INVALID');
  assertLittleEndian();
  const arrays: { spec: HeadArraySpec; values: Float32Array | Int32Array }[] = [];
  const spec: HeadWeightsSpec = {
    kind: head.kind,
    featureSize: head.featureSize,
    classCount: head.classCount,
    normalise: head.normalise,
    arrays: [],
  };
  if (head.temperature !== undefined) spec.temperature = head.temperature;
  if (head.layers && (head.kind === 'softmax' || head.kind === 'mlp')) {
    spec.layers = head.layers.map(({ inputSize, outputSize, activation }) => ({ inputSize, outputSize, activation }));
    head.layers.forEach((layer, i) => {
      arrays.push({ spec: { name: `layer${i}/kernel`, dtype: 'float32', shape: [layer.inputSize, layer.outputSize] }, values: layer.kernel });
      arrays.push({ spec: { name: `layer${i}/bias`, dtype: 'float32', shape: [layer.outputSize] }, values: layer.bias });
    });
  } else if (head.kind === 'prototype' && head.prototypes) {
    arrays.push({ spec: { name: 'prototypes', dtype: 'float32', shape: [head.classCount, head.featureSize] }, values: head.prototypes });
  } else if (head.kind === 'knn' && head.examples) {
    const count = head.examples.labels.length;
    spec.k = head.examples.k;
    arrays.push({ spec: { name: 'examples/features', dtype: 'float32', shape: [count, head.featureSize] }, values: head.examples.features });
    arrays.push({ spec: { name: 'examples/labels', dtype: 'int32', shape: [count] }, values: head.examples.labels });
  }
  spec.arrays = arrays.map((a) => a.spec);
  const data = Buffer.concat(arrays.map((a) => Buffer.from(a.values.buffer, a.values.byteOffset, a.values.byteLength)));
  return { spec, data };
}

/** Rebuilds a head from its structure and weights; anything inconsistent is MODEL_CORRUPT. */
export function decodeHeadWeights(spec: HeadWeightsSpec, data: Uint8Array): TrainedHead {
  assertLittleEndian();
  const corrupt = (why: string): never => {
    throw new LaneVisionError('MODEL_CORRUPT', `Classifier head weights are damaged: ${why}`);
  };
  if (!spec || !Array.isArray(spec.arrays)) corrupt('no list of weight arrays');
  const values = new Map<string, Float32Array | Int32Array>();
  let offset = 0;
  for (const array of spec.arrays) {
    if (!Array.isArray(array.shape) || !array.shape.every((d) => Number.isInteger(d) && d >= 0)) corrupt(`bad shape for ${array.name}`);
    const count = array.shape.reduce((a, b) => a * b, 1);
    const byteLength = count * 4;
    if (offset + byteLength > data.byteLength) corrupt(`file ends before ${array.name} (${data.byteLength} bytes)`);
    // Copy: the source buffer need not be 4-byte aligned.
    const bytes = data.slice(offset, offset + byteLength);
    if (array.dtype === 'float32') values.set(array.name, new Float32Array(bytes.buffer, bytes.byteOffset, count));
    else if (array.dtype === 'int32') values.set(array.name, new Int32Array(bytes.buffer, bytes.byteOffset, count));
    else corrupt(`unknown dtype ${String(array.dtype)} for ${array.name}`);
    offset += byteLength;
  }
  if (offset !== data.byteLength) corrupt(`expected ${offset} bytes, found ${data.byteLength}`);
  const take = <T extends Float32Array | Int32Array>(name: string, type: new (n: number) => T): T => {
    const found = values.get(name);
    if (!(found instanceof type)) return corrupt(`missing ${name}`);
    return found;
  };
  const head: TrainedHead = {
    kind: spec.kind,
    featureSize: spec.featureSize,
    classCount: spec.classCount,
    normalise: spec.normalise,
  };
  if (spec.temperature !== undefined) head.temperature = spec.temperature;
  if (spec.kind === 'softmax' || spec.kind === 'mlp') {
    if (!Array.isArray(spec.layers)) corrupt('missing dense layer list');
    head.layers = (spec.layers ?? []).map((layer, i) => ({
      ...layer,
      kernel: take(`layer${i}/kernel`, Float32Array),
      bias: take(`layer${i}/bias`, Float32Array),
    }));
  } else if (spec.kind === 'prototype') {
    head.prototypes = take('prototypes', Float32Array);
  } else if (spec.kind === 'knn') {
    head.examples = { features: take('examples/features', Float32Array), labels: take('examples/labels', Int32Array), k: spec.k ?? 0 };
  }
  validateHead(head, 'MODEL_CORRUPT');
  return head;
}

function checkArray(
  values: unknown,
  type: typeof Float32Array,
  length: number,
  what: string,
  fail: (why: string) => never,
): void {
  if (!(values instanceof type)) fail(`${what} must be a ${type.name}`);
  const array = values as Float32Array;
  if (array.length !== length) fail(`${what} has ${array.length} values, expected ${length}`);
  for (let i = 0; i < array.length; i++) {
    if (!Number.isFinite(array[i])) fail(`${what} contains ${array[i]} at ${i}`);
  }
}

function isPositiveInt(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) > 0;
}

function assertLittleEndian(): void {
  // Typed arrays use the machine's byte order; every platform Node runs on here is little-endian.
  if (os.endianness() !== 'LE') throw new LaneVisionError('PLATFORM_UNSUPPORTED', 'The model store needs a little-endian machine');
}
