/**
 * A stored version as one byte string to send over MQTT, and back: the files of its
 * folder (metadata.json, head.bin, novelty.bin, the tuned backbone folder) concatenated in
 * a fixed order, each with its size and sha256, and the whole with its own sha256 (the
 * release id). Written by hand rather than with tar: the receiver must check every byte
 * before anything touches its store, and a list of (path, size, sha256) is all it takes.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LaneVisionError } from '../errors.js';
import { openModelStore, versionFolderName, type LoadedModel, type ModelStore } from '../model-store/index.js';

export interface BundleFile {
  /** Relative to the version folder, `/`-separated. */
  path: string;
  size: number;
  sha256: string;
}

export interface VersionBundle {
  /** sha256 (hex) of `bytes`: the release id every station checks. */
  release: string;
  bytes: Buffer;
  files: BundleFile[];
  version: number;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await fsp.readdir(path.join(dir, prefix), { withFileTypes: true });
  const out: string[] = [];
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}

/** The version's files as one bundle (after loadModel checked every checksum). */
export async function packVersion(store: ModelStore, version: number): Promise<VersionBundle> {
  const model = await store.loadModel(version);
  const files = await listFiles(model.dir);
  const parts: Buffer[] = [];
  const list: BundleFile[] = [];
  for (const file of files) {
    const data = await fsp.readFile(path.join(model.dir, file));
    parts.push(data);
    list.push({ path: file, size: data.byteLength, sha256: sha256(data) });
  }
  const bytes = Buffer.concat(parts);
  return { release: sha256(bytes), bytes, files: list, version: model.version };
}

const SAFE_PATH = /^(?!.*(^|\/)\.\.?(\/|$))[\w.-]+(\/[\w.-]+)*$/;

/**
 * Checks `bytes` against the release id and every file against its sha256, writes the
 * files as version `version` of a throw-away store and loads it there (the model store's
 * own checks: metadata, head and tuned-backbone checksums). The caller calls `dispose()`.
 */
export async function unpackBundle(bytes: Buffer, release: string, files: readonly BundleFile[], version: number): Promise<{ model: LoadedModel; dispose(): Promise<void> }> {
  if (sha256(bytes) !== release) {
    throw new LaneVisionError('FLEET_CHECKSUM_MISMATCH', `The received model does not match its sha256 ${release.slice(0, 16)}…: it was damaged or mixed up on the way`);
  }
  const total = files.reduce((sum, f) => sum + f.size, 0);
  if (total !== bytes.byteLength) throw new LaneVisionError('FLEET_BUNDLE_INVALID', `The manifest lists ${total} bytes of files but the model has ${bytes.byteLength}`);
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'lane-vision-fleet-'));
  const dispose = () => fsp.rm(root, { recursive: true, force: true });
  try {
    const folder = path.join(root, versionFolderName(version));
    let offset = 0;
    for (const file of files) {
      if (typeof file.path !== 'string' || !SAFE_PATH.test(file.path)) throw new LaneVisionError('FLEET_BUNDLE_INVALID', `The manifest names a bad file path ${JSON.stringify(file.path)}`);
      const data = bytes.subarray(offset, offset + file.size);
      offset += file.size;
      if (sha256(data) !== file.sha256) throw new LaneVisionError('FLEET_CHECKSUM_MISMATCH', `${file.path} of the received model does not match its sha256`);
      await fsp.mkdir(path.dirname(path.join(folder, file.path)), { recursive: true });
      await fsp.writeFile(path.join(folder, file.path), data);
    }
    const scratch = await openModelStore(root);
    return { model: await scratch.loadModel(version), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
