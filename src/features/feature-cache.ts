/**
 * Feature vectors keyed by (backbone identity, fit policy and view, image content hash), so the
 * same frame is never embedded twice: retraining after adding ten frames costs ten
 * embeddings. A byte-bounded LRU (Map keeps insertion order; a hit re-inserts).
 */
import type { FitPolicy, ViewTransform } from '../image/types.js';
import { describeFit, describeView } from '../image/geometry.js';

export const DEFAULT_FEATURE_CACHE_BYTES = 256 * 1024 * 1024;

export class FeatureCache {
  private readonly entries = new Map<string, Float32Array>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes = DEFAULT_FEATURE_CACHE_BYTES) {}

  /** The plain frame's key is the same with or without a plain view. */
  static key(backboneId: string, fit: FitPolicy, imageHash: string, view?: ViewTransform): string {
    const viewText = describeView(view);
    return `${backboneId}|${describeFit(fit)}${viewText ? `|${viewText}` : ''}|${imageHash}`;
  }

  get size(): number {
    return this.entries.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  get(key: string): Float32Array | undefined {
    const found = this.entries.get(key);
    if (found === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, found);
    return found;
  }

  set(key: string, features: Float32Array): void {
    const previous = this.entries.get(key);
    if (previous) {
      this.bytes -= previous.byteLength;
      this.entries.delete(key);
    }
    if (features.byteLength > this.maxBytes) return;
    this.entries.set(key, features);
    this.bytes += features.byteLength;
    for (const [oldest, vector] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.bytes -= vector.byteLength;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/** One cache for the process, shared by capture, training and classification. */
export const sharedFeatureCache = new FeatureCache();
