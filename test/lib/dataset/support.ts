/** Shared helpers for the dataset tests: real photos and a snapshot of a folder tree. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { classImages, classNames, groceryTrainDir } from '../../support/shared.js';

export interface Photo {
  className: string;
  file: string;
  bytes: Buffer;
}

/** `count` distinct real photos, taken round-robin over the classes so they repeat between runs. */
export function realPhotos(count: number): Photo[] {
  const perClass = classNames(groceryTrainDir).map((c) => ({ className: c, files: classImages(groceryTrainDir, c) }));
  const photos: Photo[] = [];
  for (let round = 0; photos.length < count; round++) {
    for (const { className, files } of perClass) {
      if (photos.length === count) break;
      if (round < files.length) photos.push({ className, file: files[round], bytes: fs.readFileSync(files[round]) });
    }
  }
  return photos;
}

/** Every file and folder under `root` with size, mtime and ctime: any write shows up as a difference. */
export async function listTree(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const stat = await fs.promises.stat(dir);
    lines.push(`${path.relative(root, dir) || '.'}/ ${stat.mtimeMs} ${stat.ctimeMs}`);
    for (const item of await fs.promises.readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, item.name);
      if (item.isDirectory()) await walk(full);
      else {
        const s = await fs.promises.stat(full);
        lines.push(`${path.relative(root, full)} ${s.size} ${s.mtimeMs} ${s.ctimeMs}`);
      }
    }
  };
  await walk(root);
  return lines.sort();
}

/** Image files (not temp files, not the manifest) under `root`, as "<folder>/<file>". */
export async function imageFiles(root: string): Promise<string[]> {
  const found: string[] = [];
  for (const dir of await fs.promises.readdir(root, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const file of await fs.promises.readdir(path.join(root, dir.name))) found.push(`${dir.name}/${file}`);
  }
  return found.sort();
}

export function readManifestJson(root: string): { entries: Record<string, unknown>[] } {
  return JSON.parse(fs.readFileSync(path.join(root, 'lane-vision-dataset.json'), 'utf8'));
}
