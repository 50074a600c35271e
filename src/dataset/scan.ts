/**
 * Reads what a dataset folder holds without opening any image: label folders, image files
 * (name, size, mtime) and temp files left by writers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { isTempName } from '../fs/atomic.js';
import { labelOfFolder } from './labels.js';

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
}

/** Lists label folders, their image files and any temp files, without reading image contents. */
export async function scanFolders(root: string): Promise<FolderScan> {
  const labelDirs = new Map<string, string>();
  const temps: string[] = [];
  const top = await fs.promises.readdir(root, { withFileTypes: true });
  for (const item of top) {
    if (isTempName(item.name)) {
      temps.push(path.join(root, item.name));
      continue;
    }
    // Symlinked folders are skipped: writing through them would leave the dataset folder.
    if (!item.isDirectory()) continue;
    const label = labelOfFolder(item.name);
    if (label === undefined) {
      if (!item.name.startsWith('.')) debug('skipping folder %j: not a usable label name', item.name);
      continue;
    }
    if (labelDirs.has(label)) {
      debug('skipping folder %j: same label as folder %j', item.name, labelDirs.get(label));
      continue;
    }
    labelDirs.set(label, item.name);
  }
  const perLabel = await Promise.all(
    [...labelDirs].map(async ([label, dir]) => {
      const folder = path.join(root, dir);
      const found: DiskFile[] = [];
      for (const item of await fs.promises.readdir(folder, { withFileTypes: true })) {
        if (isTempName(item.name)) temps.push(path.join(folder, item.name));
        else if ((item.isFile() || item.isSymbolicLink()) && IMAGE_FILE.test(item.name) && !item.name.startsWith('.')) {
          found.push({ label, dir, file: item.name, size: 0, mtimeMs: 0 });
        }
      }
      await Promise.all(
        found.map(async (f) => {
          const stat = await fs.promises.stat(path.join(folder, f.file)).catch(() => undefined);
          if (stat?.isFile()) {
            f.size = stat.size;
            f.mtimeMs = stat.mtimeMs;
          } else f.size = -1; // dangling symlink or vanished meanwhile
        }),
      );
      return found.filter((f) => f.size >= 0);
    }),
  );
  return { labelDirs, files: perLabel.flat(), temps };
}
