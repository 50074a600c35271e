/**
 * Converted backbones on disk, next to the downloaded models: `<cache>/onnx/<weights>-<variant>.onnx`
 * plus a `.json` with what the conversion decided. `<weights>` is the start of the source's
 * weights fingerprint (as in the Backbone id); `<variant>` hashes the converter version and
 * the settings that shape the graph. Only conversions checked against tfjs are stored.
 * Writing is best effort: a read-only cache only costs converting again at the next start.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import createDebug from 'debug';
import type { InputRange } from '../types.js';
import type { Int8Check } from './load-onnx.js';
import { writeFileAtomic } from '../../fs/atomic.js';

const debug = createDebug('lane-vision:engine');

export const ONNX_CACHE_FOLDER = 'onnx';

export interface OnnxCacheMeta {
  converterVersion: number;
  sourceFingerprint: string;
  /** What was asked for (the key), for people reading the cache. */
  variant: unknown;
  featureLayer: string;
  hasClassifier: boolean;
  outputIsLogits: boolean;
  declaredInputSize?: { width: number; height: number };
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  featureSize: number;
  outputSize: number;
  /** sha256 of the .onnx file: a damaged file is converted again, never loaded. */
  onnxSha256: string;
  /** Largest feature difference to tfjs seen when the conversion was checked. */
  verifiedMaxDiff: number;
  operators: Record<string, number>;
  /** Present for an int8 model: its calibration and how close it came to float. */
  int8?: Int8Check;
  createdAt: string;
}

export interface OnnxCacheEntry {
  onnxPath: string;
  metaPath: string;
}

export function onnxCacheEntry(cacheDir: string, sourceFingerprint: string, variant: unknown): OnnxCacheEntry {
  const variantHash = createHash('sha256').update(JSON.stringify(variant)).digest('hex').slice(0, 12);
  const base = path.join(path.resolve(cacheDir), ONNX_CACHE_FOLDER, `${sourceFingerprint.slice(0, 16)}-${variantHash}`);
  return { onnxPath: `${base}.onnx`, metaPath: `${base}.json` };
}

/** The cached conversion, if present and intact. */
export async function readCachedOnnx(entry: OnnxCacheEntry): Promise<{ bytes: Uint8Array; meta: OnnxCacheMeta } | undefined> {
  try {
    const meta = JSON.parse(await fs.readFile(entry.metaPath, 'utf8')) as OnnxCacheMeta;
    const bytes = new Uint8Array(await fs.readFile(entry.onnxPath));
    if (createHash('sha256').update(bytes).digest('hex') !== meta.onnxSha256) {
      debug('cached ONNX model %s does not match its checksum; converting again', entry.onnxPath);
      return undefined;
    }
    return { bytes, meta };
  } catch {
    return undefined;
  }
}

/** Stores a conversion (model first, then the meta that makes it count), atomically per file. */
export async function writeCachedOnnx(entry: OnnxCacheEntry, bytes: Uint8Array, meta: Omit<OnnxCacheMeta, 'onnxSha256' | 'createdAt'>): Promise<void> {
  const full: OnnxCacheMeta = { ...meta, onnxSha256: createHash('sha256').update(bytes).digest('hex'), createdAt: new Date().toISOString() };
  try {
    await fs.mkdir(path.dirname(entry.onnxPath), { recursive: true });
    await writeFileAtomic(entry.onnxPath, bytes);
    await writeFileAtomic(entry.metaPath, JSON.stringify(full, null, 2));
    debug('cached ONNX conversion in %s', entry.onnxPath);
  } catch (err) {
    debug('could not cache ONNX conversion in %s: %s', entry.onnxPath, err instanceof Error ? err.message : err);
  }
}
