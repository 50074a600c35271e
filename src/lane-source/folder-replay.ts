/**
 * Replays photos from a folder as if a lane camera took them: a folder per class
 * (`<dir>/<Label>/*.jpg`), a dataset root holding `train/`, or a flat folder of
 * unlabelled images.
 */
import { promises as fs, type Dirent } from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import { createRandom, mixSeed, shuffled } from '../random.js';
import { checkSeed } from './seed.js';
import type { LaneFrame, LaneSource } from './types.js';

const debug = createDebug('lane-vision:lane-source');

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

export interface LabelledImage {
  /** Name of the class folder; undefined for images in a flat folder. */
  label: string | undefined;
  path: string;
}

/**
 * Images under `dir`, sorted by label then file name (by code point, so the order is the
 * same on every machine). Hidden files and folders and non-image files are skipped.
 * If `dir` holds a `train/` folder, that is listed instead; if it has no class folders with
 * images, its own images are listed with label undefined.
 */
export async function listLabelledImages(dir: string): Promise<LabelledImage[]> {
  if (typeof dir !== 'string' || dir.trim() === '') {
    throw new LaneVisionError('SOURCE_NOT_FOUND', 'No image folder given: set the path of a folder of images');
  }
  const root = path.resolve(dir);
  let entries = await readFolder(root);
  let base = root;
  const train = entries.find((entry) => entry.name === 'train');
  if (train && (await isFolder(base, train))) {
    base = path.join(root, 'train');
    entries = await readFolder(base);
  }
  const labelled: LabelledImage[] = [];
  for (const entry of entries) {
    if (!(await isFolder(base, entry))) continue;
    const folder = path.join(base, entry.name);
    const images = await imageFiles(folder, await readFolder(folder));
    if (images.length === 0) debug('skipping %s: no images', folder);
    for (const file of images) labelled.push({ label: entry.name, path: file });
  }
  const result =
    labelled.length > 0 ? labelled : (await imageFiles(base, entries)).map((file) => ({ label: undefined, path: file }));
  if (result.length === 0) {
    throw new LaneVisionError(
      'SOURCE_EMPTY',
      `No images (${IMAGE_EXTENSIONS.join(', ')}) in ${root} or in folders directly inside it`,
    );
  }
  debug('listed %d images under %s', result.length, base);
  return result;
}

/** Visible entries of a folder, sorted by name. */
async function readFolder(folder: string): Promise<Dirent[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(folder, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new LaneVisionError('SOURCE_NOT_FOUND', `Image folder not found: ${folder}`, { cause: err });
    if (code === 'ENOTDIR') throw new LaneVisionError('SOURCE_NOT_FOUND', `Not a folder: ${folder}`, { cause: err });
    throw new LaneVisionError('SOURCE_UNREADABLE', `Cannot read image folder ${folder}: ${(err as Error).message}`, { cause: err });
  }
  return entries
    .filter((entry) => !entry.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function imageFiles(folder: string, entries: Dirent[]): Promise<string[]> {
  const files: string[] = [];
  for (const entry of entries) {
    if (!IMAGE_EXTENSIONS.includes(path.extname(entry.name).toLowerCase())) continue;
    if (entry.isFile() || (entry.isSymbolicLink() && (await statOf(path.join(folder, entry.name)))?.isFile())) {
      files.push(path.join(folder, entry.name));
    }
  }
  return files;
}

async function isFolder(parent: string, entry: Dirent): Promise<boolean> {
  if (entry.isDirectory()) return true;
  return entry.isSymbolicLink() && ((await statOf(path.join(parent, entry.name)))?.isDirectory() ?? false);
}

/** Stat following links; undefined for a dangling link. */
async function statOf(file: string) {
  return fs.stat(file).catch(() => undefined);
}

export interface FolderReplayOptions {
  /** Random order, reshuffled on every pass; default false (sorted order). */
  shuffle?: boolean;
  /** Seed of the shuffle; default 1. */
  seed?: number;
  /** Start again after the last image; default false (then `next()` gives null). */
  loop?: boolean;
}

export interface FolderReplay extends LaneSource {
  /** Every image of one pass, in sorted order. */
  readonly images: readonly LabelledImage[];
  /** Distinct labels, sorted (empty for a flat folder). */
  readonly labels: readonly string[];
}

/** Lists the folder now (so a bad folder fails here) and reads each image when asked. */
export async function createFolderReplay(dir: string, options: FolderReplayOptions = {}): Promise<FolderReplay> {
  const images = await listLabelledImages(dir);
  const labels = [...new Set(images.map((image) => image.label).filter((label) => label !== undefined))];
  const seed = checkSeed(options.seed ?? 1);
  const shuffle = options.shuffle ?? false;
  const loop = options.loop ?? false;
  let nextIndex = 0;
  let order: { pass: number; images: readonly LabelledImage[] } = { pass: -1, images };

  const imagesOfPass = (pass: number) => {
    if (order.pass !== pass) {
      order = { pass, images: shuffle ? shuffled(images, createRandom(mixSeed(seed, pass))) : images };
    }
    return order.images;
  };

  return {
    images,
    labels,
    async next(): Promise<LaneFrame | null> {
      // Taken before awaiting, so concurrent calls get distinct frames.
      const index = nextIndex;
      const pass = Math.floor(index / images.length);
      if (pass > 0 && !loop) return null;
      nextIndex++;
      const entry = imagesOfPass(pass)[index % images.length];
      return { label: entry.label, image: await readImage(entry.path), index, path: entry.path };
    },
  };
}

async function readImage(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    // Listed a moment ago: removed or made unreadable since.
    throw new LaneVisionError('SOURCE_READ_FAILED', `Cannot read image ${file}: ${(err as Error).message}`, { cause: err });
  }
}
