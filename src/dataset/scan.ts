/**
 * Reads what a dataset folder holds without opening any image: label folders, image files
 * (name, size, mtime) and temp files left by writers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import { isTempName } from '../fs/atomic.js';
import { isReservedLabel, labelOfFolder, MANIFEST_FILE_NAME } from './labels.js';
import type { SkippedItem } from './types.js';

const debug = createDebug('lane-vision:dataset');

/** Files counted as images when found on disk. */
const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;

export interface DiskFile {
  label: string;
  /** Folder name on disk; equals `label` except for folders not in NFC (e.g. made on macOS). */
  dir: string;
  file: string;
  size: number;
  mtimeMs: number;
}

export interface FolderScan {
  /** label -> folder name, including folders without images. */
  labelDirs: Map<string, string>;
  files: DiskFile[];
  /** Temp files anywhere in the dataset (live writes or crash leftovers). */
  temps: string[];
  /** Folders and files left out, each with why, so nothing is skipped without a word. */
  skipped: SkippedItem[];
}

/** Lists label folders, their image files and any temp files, without reading image contents. */
export async function scanFolders(root: string): Promise<FolderScan> {
  const labelDirs = new Map<string, string>();
  const temps: string[] = [];
  const skipped: SkippedItem[] = [];
  const skip = (item: SkippedItem) => {
    debug('skipping %s %j: %s', item.kind, item.path, item.reason);
    skipped.push(item);
  };
  const top = await fs.promises.readdir(root, { withFileTypes: true });
  for (const item of top) {
    if (isTempName(item.name)) {
      temps.push(path.join(root, item.name));
      continue;
    }
    if (!item.isDirectory()) {
      if (item.isSymbolicLink()) skip({ kind: 'folder', path: item.name, reason: 'it is a symbolic link (writing through it would leave the dataset folder)' });
      else if (item.name !== MANIFEST_FILE_NAME) skip({ kind: 'file', path: item.name, reason: 'images belong in a label folder, not at the top of the dataset' });
      continue;
    }
    // A reserved label is not skipped: the folder holds frames someone meant to train on, and
    // leaving them out would change the model without a word.
    if (isReservedLabel(item.name)) {
      throw new LaneVisionError(
        'LABEL_INVALID',
        `Dataset folder ${JSON.stringify(path.join(root, item.name))} cannot be a label: "${item.name}" is reserved for frames a classifier does not accept. Rename the folder.`,
      );
    }
    const found = labelOfFolder(item.name);
    if ('reason' in found) {
      skip({ kind: 'folder', path: item.name, reason: found.reason });
      continue;
    }
    if (labelDirs.has(found.label)) {
      skip({ kind: 'folder', path: item.name, reason: `same label as folder ${JSON.stringify(labelDirs.get(found.label))}` });
      continue;
    }
    labelDirs.set(found.label, item.name);
  }
  const perLabel = await Promise.all(
    [...labelDirs].map(async ([label, dir]) => {
      const folder = path.join(root, dir);
      const found: DiskFile[] = [];
      for (const item of await fs.promises.readdir(folder, { withFileTypes: true })) {
        const shown = path.join(dir, item.name);
        if (isTempName(item.name)) temps.push(path.join(folder, item.name));
        else if (item.isDirectory()) skip({ kind: 'folder', path: shown, reason: 'folders inside a label folder are not read' });
        else if (item.name.startsWith('.')) skip({ kind: 'file', path: shown, reason: 'hidden file' });
        else if (!IMAGE_FILE.test(item.name)) skip({ kind: 'file', path: shown, reason: 'not a .jpg, .jpeg, .png or .webp file' });
        else if (item.isFile() || item.isSymbolicLink()) found.push({ label, dir, file: item.name, size: 0, mtimeMs: 0 });
        else skip({ kind: 'file', path: shown, reason: 'not a regular file' });
      }
      await Promise.all(
        found.map(async (f) => {
          const stat = await fs.promises.stat(path.join(folder, f.file)).catch(() => undefined);
          if (stat?.isFile()) {
            f.size = stat.size;
            f.mtimeMs = stat.mtimeMs;
          } else {
            f.size = -1;
            skip({ kind: 'file', path: path.join(dir, f.file), reason: 'broken link or removed while reading' });
          }
        }),
      );
      return found.filter((f) => f.size >= 0);
    }),
  );
  return { labelDirs, files: perLabel.flat(), temps, skipped };
}
