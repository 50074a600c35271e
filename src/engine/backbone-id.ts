/**
 * The identity the engine gives a loaded backbone, `origin|featureLayer|WxH|range|weights`,
 * where weights is the first 16 hex digits of sha256(model.json + shards) (`readModelFolder`).
 * Equal ids mean the same features. Built and parsed only here, so the model store's
 * compatibility check and the Teachable Machine import read the format the loader writes.
 */
import { createHash } from 'node:crypto';
import type { io } from '@tensorflow/tfjs-core';
import { LaneVisionError } from '../errors.js';
import { weightEntryBytes } from './model-files.js';
import { INPUT_RANGES, type InputRange } from './types.js';

/** The parts of an engine backbone id. */
export interface BackboneIdParts {
  /** `preset:<name>`, `folder:<folder name>` or the model.json URL. */
  origin: string;
  featureLayer: string;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  /** sha256 (hex) of model.json + weight shards; the id keeps its first 16 digits. */
  weights: string;
}

export function formatBackboneId(parts: BackboneIdParts): string {
  const { origin, featureLayer, inputSize, inputRange, weights } = parts;
  return [origin, featureLayer, `${inputSize.width}x${inputSize.height}`, inputRange, weights.slice(0, 16)].join('|');
}

/** The parts of an engine id, or undefined for an id the engine did not make. Parsed from the right: a URL origin may hold "|". */
export function parseBackboneId(id: string): BackboneIdParts | undefined {
  const parts = id.split('|');
  if (parts.length < 5) return undefined;
  const [featureLayer, size, inputRange, weights] = parts.slice(-4);
  const origin = parts.slice(0, -4).join('|');
  const sizeMatch = /^(\d+)x(\d+)$/.exec(size);
  const range = INPUT_RANGES.find((known) => known === inputRange);
  if (!origin || !featureLayer || !sizeMatch || !range || !/^[0-9a-f]{16}$/.test(weights)) return undefined;
  return { origin, featureLayer, inputSize: { width: Number(sizeMatch[1]), height: Number(sizeMatch[2]) }, inputRange: range, weights };
}

/**
 * sha256 (hex) over the stored bytes of the weights `keep` selects (default all), in
 * manifest order, model.json excluded: a network's weights fingerprint, the same whichever
 * model.json describes them (e.g. a backbone saved on its own, or inside a larger export).
 */
export function fingerprintWeights(
  specs: readonly io.WeightsManifestEntry[],
  weightData: ArrayBuffer | ArrayBuffer[],
  keep: (name: string) => boolean = () => true,
): string {
  const shards = Array.isArray(weightData) ? weightData : [weightData];
  const all = shards.length === 1 ? new Uint8Array(shards[0]) : Buffer.concat(shards.map((b) => new Uint8Array(b)));
  const hash = createHash('sha256');
  let offset = 0;
  for (const spec of specs) {
    const size = weightEntryBytes(spec);
    if (size === undefined) {
      throw new LaneVisionError('MODEL_INVALID', `Cannot fingerprint weight ${spec.name}: its ${spec.dtype} values have no fixed size`);
    }
    if (keep(spec.name)) hash.update(all.subarray(offset, offset + size));
    offset += size;
  }
  return hash.digest('hex');
}
