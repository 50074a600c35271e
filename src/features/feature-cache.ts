/**
 * Feature vectors keyed by (backbone identity, fit policy, image content hash), so the
 * same frame is never embedded twice: retraining after adding ten frames costs ten
 * embeddings. A byte-bounded LRU (Map keeps insertion order; a hit re-inserts).
 */
import type { FitPolicy } from '../image/types.js';

export const DEFAULT_FEATURE_CACHE_BYTES = 256 * 1024 * 1024;

export class FeatureCache {
  private readonly entries = new Map<string, Float32Array>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly maxBytes = DEFAULT_FEATURE_CACHE_BYTES) {}

  static key(backboneId: string, fit: FitPolicy, imageHash: string): string {
    return `${backboneId}|${fitKey(fit)}|${imageHash}`;
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

function fitKey(fit: FitPolicy): string {
  switch (fit.kind) {
    case 'cover':
      return 'cover';
    case 'contain': {
      const bg = fit.background ?? { r: 0, g: 0, b: 0 };
      return `contain(${bg.r},${bg.g},${bg.b})`;
    }
    case 'roi':
      return `roi(${fit.left},${fit.top},${fit.width},${fit.height})`;
  }
}

/** One cache for the process, shared by capture, training and classification. */
export const sharedFeatureCache = new FeatureCache();
