/**
 * A FeatureCache kept on disk, for vectors too large or too costly to recompute to lose
 * with the process: the fine-tune strategy's cut activations (a [7, 7, 56] map is 11 KB a
 * frame and view, against 5 KB for a feature vector), so a second fine-tune of the same
 * frames skips the bottom pass. Keyed exactly like the feature cache (backbone identity,
 * fit and view, image content hash), one file per entry named by the key's hash, bounded
 * in bytes with the least recently used entries deleted first (a hit touches the file, so
 * the order survives restarts). Synchronous on purpose: the embedding pipeline asks the
 * cache synchronously, and an entry is one small read.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { FeatureCache } from './feature-cache.js';

const debug = createDebug('lane-vision:features');

export const DEFAULT_DISK_CACHE_BYTES = 512 * 1024 * 1024;
const SUFFIX = '.f32';

export class DiskFeatureCache extends FeatureCache {
  /** File name -> bytes, least recently used first. */
  private readonly files = new Map<string, number>();
  private diskBytes = 0;

  constructor(
    readonly dir: string,
    maxBytes = DEFAULT_DISK_CACHE_BYTES,
  ) {
    super(maxBytes);
    fs.mkdirSync(dir, { recursive: true });
    const found: { name: string; bytes: number; used: number }[] = [];
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith(SUFFIX)) continue;
      try {
        const stat = fs.statSync(path.join(dir, name));
        found.push({ name, bytes: stat.size, used: stat.mtimeMs });
      } catch {
        // gone meanwhile (another process evicted it)
      }
    }
    found.sort((a, b) => a.used - b.used);
    for (const f of found) {
      this.files.set(f.name, f.bytes);
      this.diskBytes += f.bytes;
    }
    this.evict();
  }

  override get size(): number {
    return this.files.size;
  }

  override get byteSize(): number {
    return this.diskBytes;
  }

  override get(key: string): Float32Array | undefined {
    const name = fileName(key);
    const file = path.join(this.dir, name);
    let bytes: Buffer | undefined;
    if (this.files.has(name)) {
      try {
        bytes = fs.readFileSync(file);
      } catch {
        bytes = undefined;
      }
    }
    if (!bytes || bytes.byteLength % 4 !== 0) {
      if (this.files.has(name)) this.forget(name, true);
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.files.delete(name);
    this.files.set(name, bytes.byteLength);
    const now = new Date();
    try {
      fs.utimesSync(file, now, now);
    } catch {
      // the order on disk is a hint; this process keeps its own
    }
    // A copy that owns its buffer (a Buffer may share a pooled one).
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }

  override set(key: string, features: Float32Array): void {
    if (features.byteLength > this.maxBytes) return;
    const name = fileName(key);
    if (this.files.has(name)) this.forget(name, false);
    const file = path.join(this.dir, name);
    const temporary = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(temporary, new Uint8Array(features.buffer, features.byteOffset, features.byteLength));
      fs.renameSync(temporary, file);
    } catch (err) {
      // Best effort, like the ONNX cache: a full or read-only disk only costs recomputing.
      debug('could not cache %s in %s: %s', key, this.dir, err instanceof Error ? err.message : err);
      fs.rmSync(temporary, { force: true });
      return;
    }
    this.files.set(name, features.byteLength);
    this.diskBytes += features.byteLength;
    this.evict();
  }

  override clear(): void {
    for (const name of [...this.files.keys()]) this.forget(name, true);
  }

  private evict(): void {
    for (const name of this.files.keys()) {
      if (this.diskBytes <= this.maxBytes) break;
      this.forget(name, true);
    }
  }

  private forget(name: string, remove: boolean): void {
    this.diskBytes -= this.files.get(name) ?? 0;
    this.files.delete(name);
    if (remove) fs.rmSync(path.join(this.dir, name), { force: true });
  }
}

function fileName(key: string): string {
  return `${createHash('sha256').update(key).digest('hex').slice(0, 40)}${SUFFIX}`;
}
