/**
 * Reads a TensorFlow.js model folder (model.json + weight shards [+ Teachable Machine
 * metadata.json]) into memory and checks it before tfjs sees it.
 *
 * Written here rather than using a tfjs IOHandler: in Node, tfjs has no file:// handler
 * without tfjs-node (an optional dependency that often fails to install), and tfjs's own
 * errors for a half-copied folder are cryptic. The bytes read here go to tfjs through
 * `tf.io.fromMemory`, so layers and graph models load exactly as tfjs loads them.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import { LaneVisionError } from '../errors.js';
import type { ModelFormat } from './types.js';

export const MODEL_JSON = 'model.json';
export const TM_METADATA_JSON = 'metadata.json';
/**
 * Largest metadata.json read: a real Teachable Machine one is under 2 KB, and it is copied
 * into every version imported from it, so a huge one would fill the model store.
 */
export const MAX_TM_METADATA_BYTES = 256 * 1024;

export interface ModelJson {
  modelTopology: Record<string, unknown>;
  weightsManifest: io.WeightsManifestConfig;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  [key: string]: unknown;
}

export interface ModelFiles {
  /** Absolute folder path. */
  dir: string;
  modelJson: ModelJson;
  format: ModelFormat;
  weightSpecs: io.WeightsManifestEntry[];
  /** All shards concatenated in manifest order, as tfjs expects. */
  weightData: ArrayBuffer;
  /** sha256 (hex) over model.json and every shard: changes when any byte of the model does. */
  fingerprint: string;
  /** Class labels from a Teachable Machine `metadata.json`, if present. */
  labels?: string[];
}

/** Bytes per stored element for a weight entry (quantized weights store fewer). */
function bytesPerElement(entry: io.WeightsManifestEntry): number | undefined {
  const quantized = entry.quantization?.dtype;
  if (quantized === 'uint8') return 1;
  if (quantized === 'uint16' || quantized === 'float16') return 2;
  if (quantized) return undefined;
  switch (entry.dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'bool':
      return 1;
    case 'complex64':
      return 8;
    default:
      return undefined; // strings have variable length
  }
}

/**
 * Total bytes the shards of one manifest group must hold, or undefined when it cannot be
 * known (string weights). The converter splits a group's bytes over its shards at fixed
 * sizes, so only the group total is checkable, not each shard.
 */
export function expectedGroupBytes(group: io.WeightsManifestConfig[number]): number | undefined {
  let total = 0;
  for (const entry of group.weights) {
    const bytes = weightEntryBytes(entry);
    if (bytes === undefined) return undefined;
    total += bytes;
  }
  return total;
}

/** Bytes one weight takes in the shards, or undefined when it cannot be known (strings). */
export function weightEntryBytes(entry: io.WeightsManifestEntry): number | undefined {
  const perElement = bytesPerElement(entry);
  return perElement === undefined ? undefined : entry.shape.reduce((a: number, b: number) => a * b, 1) * perElement;
}

/** Parses and sanity-checks model.json text; `where` names it in error messages. */
export function parseModelJson(text: string, where: string): ModelJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new LaneVisionError(
      'MODEL_INVALID',
      `${where} is not valid JSON (${err instanceof Error ? err.message : String(err)}); it should be a TensorFlow.js model.json`,
      { cause: err },
    );
  }
  const json = parsed as Partial<ModelJson> | null;
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new LaneVisionError('MODEL_INVALID', `${where} is not a TensorFlow.js model.json (expected a JSON object)`);
  }
  if (!json.modelTopology || typeof json.modelTopology !== 'object') {
    throw new LaneVisionError('MODEL_INVALID', `${where} has no "modelTopology": it is not a TensorFlow.js model.json`);
  }
  if (!Array.isArray(json.weightsManifest)) {
    throw new LaneVisionError('MODEL_INVALID', `${where} has no "weightsManifest": it is not a TensorFlow.js model.json with weights`);
  }
  for (const group of json.weightsManifest) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new LaneVisionError('MODEL_INVALID', `${where} has a malformed weightsManifest entry`);
    }
    for (const shard of group.paths) checkShardPath(shard, where);
    for (const w of group.weights) {
      if (!w || typeof w.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new LaneVisionError('MODEL_INVALID', `${where} has a malformed weight entry ${JSON.stringify(w?.name ?? w)}`);
      }
    }
  }
  modelFormatOf(json as ModelJson, where);
  return json as ModelJson;
}

/** Shard names come from a file we may have downloaded: never let them leave the folder. */
function checkShardPath(shard: unknown, where: string): void {
  if (
    typeof shard !== 'string' ||
    shard.length === 0 ||
    shard.includes('\\') ||
    shard.includes('\0') ||
    /^[a-z][a-z0-9+.-]*:/i.test(shard) ||
    path.posix.isAbsolute(shard) ||
    shard.split('/').some((part) => part === '..' || part === '')
  ) {
    throw new LaneVisionError('MODEL_INVALID', `${where} names an unsafe weight file ${JSON.stringify(shard)}`);
  }
}

export function modelFormatOf(modelJson: ModelJson, where: string): ModelFormat {
  if (modelJson.format === 'graph-model') return 'graph';
  if (modelJson.format === 'layers-model') return 'layers';
  const topology = modelJson.modelTopology;
  if (Array.isArray(topology.node)) return 'graph';
  if (topology.model_config || topology.class_name || topology.config) return 'layers';
  throw new LaneVisionError('MODEL_INVALID', `${where}: cannot tell whether this is a layers or a graph model`);
}

/**
 * Reads a model folder (or the path of its model.json). Throws MODEL_NOT_FOUND when there
 * is none, MODEL_INVALID for a broken model.json, MODEL_TRUNCATED for missing or short shards.
 */
export async function readModelFolder(folderOrModelJson: string): Promise<ModelFiles> {
  const target = path.resolve(folderOrModelJson);
  let dir = target;
  let modelJsonPath = path.join(target, MODEL_JSON);
  const stat = await fs.stat(target).catch(() => undefined);
  if (stat?.isFile()) {
    dir = path.dirname(target);
    modelJsonPath = target;
  }
  let text: string;
  try {
    text = await fs.readFile(modelJsonPath, 'utf8');
  } catch (err) {
    throw new LaneVisionError(
      'MODEL_NOT_FOUND',
      stat
        ? `No ${MODEL_JSON} in ${dir}: the model folder must hold model.json and its weight files`
        : `Model folder ${target} does not exist: copy the model folder there or set the right path`,
      { cause: err },
    );
  }
  const modelJson = parseModelJson(text, modelJsonPath);
  const format = modelFormatOf(modelJson, modelJsonPath);
  const hash = createHash('sha256').update(text);
  const groups: Buffer[] = [];
  for (const group of modelJson.weightsManifest) {
    const shards: Buffer[] = [];
    for (const shard of group.paths) {
      const file = path.join(dir, ...shard.split('/'));
      try {
        shards.push(await fs.readFile(file));
      } catch (err) {
        throw new LaneVisionError(
          'MODEL_TRUNCATED',
          `Weight file ${shard} listed in ${modelJsonPath} is missing: the model folder is incomplete, copy it again`,
          { cause: err },
        );
      }
    }
    const bytes = shards.reduce((n, b) => n + b.length, 0);
    const expected = expectedGroupBytes(group);
    if (expected !== undefined && bytes !== expected) {
      throw new LaneVisionError(
        bytes < expected ? 'MODEL_TRUNCATED' : 'MODEL_INVALID',
        `Weight files ${group.paths.join(', ')} in ${dir} hold ${bytes} bytes but model.json describes ${expected}: ` +
          (bytes < expected ? 'the copy is incomplete, copy the model folder again' : 'they do not belong to this model.json'),
      );
    }
    for (const b of shards) hash.update(b);
    groups.push(...shards);
  }
  const all = Buffer.concat(groups);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  const weightSpecs = modelJson.weightsManifest.flatMap((g) => g.weights);
  return { dir, modelJson, format, weightSpecs, weightData, fingerprint: hash.digest('hex'), labels: await readLabels(dir) };
}

/** Teachable Machine exports keep class names in metadata.json next to model.json. */
async function readLabels(dir: string): Promise<string[] | undefined> {
  let text: string;
  try {
    const file = path.join(dir, TM_METADATA_JSON);
    if ((await fs.stat(file)).size > MAX_TM_METADATA_BYTES) return undefined; // labels only; the import refuses it with a reason
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const labels = (JSON.parse(text) as { labels?: unknown }).labels;
    if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) return labels;
  } catch {
    // a broken metadata.json only costs the labels
  }
  return undefined;
}
