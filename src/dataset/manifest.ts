/**
 * The manifest: one JSON file at the dataset root recording, per image, what the folder
 * alone cannot (hash, size, when and by whom it was added). The folders stay the truth
 * for which images exist and under which label; the manifest adds metadata to them.
 */
import * as fs from 'node:fs';
import { LaneVisionError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { DatasetEntry } from './types.js';

export const MANIFEST_FORMAT = 'lane-vision-dataset';
export const MANIFEST_VERSION = 1;

/** A dataset entry as the manifest stores it: without the absolute path, which moves with the folder. */
export interface ManifestEntry extends Omit<DatasetEntry, 'path'> {
  /** sha256 the image stage gave the source when it differs from the file's (raw pixels stored as PNG). */
  sourceSha256?: string;
}

interface ManifestFile {
  format: typeof MANIFEST_FORMAT;
  version: number;
  updatedAt: string;
  entries: ManifestEntry[];
}

function invalid(file: string, why: string, cause?: unknown): LaneVisionError {
  return new LaneVisionError(
    'DATASET_MANIFEST_INVALID',
    `The dataset manifest ${file} cannot be used: ${why}. Fix or delete it (the images stay; their metadata is rebuilt from the folders).`,
    cause === undefined ? undefined : { cause },
  );
}

const HEX64 = /^[0-9a-f]{64}$/;

function checkEntry(file: string, raw: unknown, index: number): ManifestEntry {
  const where = `entry ${index}`;
  if (typeof raw !== 'object' || raw === null) throw invalid(file, `${where} is not an object`);
  const e = raw as Record<string, unknown>;
  for (const key of ['id', 'label', 'file', 'sha256', 'addedAt'] as const) {
    if (typeof e[key] !== 'string' || e[key] === '') throw invalid(file, `${where} has no "${key}" text`);
  }
  for (const key of ['width', 'height', 'size'] as const) {
    if (!Number.isSafeInteger(e[key]) || (e[key] as number) < 0) throw invalid(file, `${where} has no whole-number "${key}"`);
  }
  for (const key of ['source', 'author', 'session', 'problem', 'sourceSha256'] as const) {
    if (e[key] !== undefined && typeof e[key] !== 'string') throw invalid(file, `${where} has a non-text "${key}"`);
  }
  if (!HEX64.test(e.sha256 as string)) throw invalid(file, `${where} has a malformed sha256`);
  return e as unknown as ManifestEntry;
}

/** Reads the manifest; undefined when there is none yet. */
export async function readManifest(file: string): Promise<ManifestEntry[] | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LaneVisionError('DATASET_IO', `Cannot read the dataset manifest ${file}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalid(file, 'it is not valid JSON', err);
  }
  const doc = parsed as Partial<ManifestFile> | null;
  if (typeof doc !== 'object' || doc === null || doc.format !== MANIFEST_FORMAT) {
    throw invalid(file, `it is not a ${MANIFEST_FORMAT} manifest`);
  }
  if (doc.version !== MANIFEST_VERSION) {
    throw new LaneVisionError(
      'DATASET_MANIFEST_VERSION',
      `The dataset manifest ${file} has version ${String(doc.version)}; this Lane Vision reads version ${MANIFEST_VERSION}. Update Lane Vision.`,
    );
  }
  if (!Array.isArray(doc.entries)) throw invalid(file, 'it has no "entries" list');
  return doc.entries.map((entry, index) => checkEntry(file, entry, index));
}

/** Replaces the manifest atomically. */
export async function writeManifest(file: string, entries: readonly ManifestEntry[]): Promise<void> {
  const doc: ManifestFile = { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, updatedAt: new Date().toISOString(), entries: [...entries] };
  await writeFileAtomic(file, `${JSON.stringify(doc, null, 1)}\n`);
}
