/**
 * Crash-safe writes for the dataset and the model store: data goes to a temp entry in the
 * target's own folder, is fsynced, then renamed over the target, so readers see the old
 * state or the whole new one, never a torn one. Temp names carry the writer's pid so a
 * later open can tell a crash leftover from a write still in progress.
 *
 * Hand-written rather than `write-file-atomic`: that package names its temps
 * `<file>.<hash>`, which a folder scan can neither skip nor recognise as a crash leftover;
 * it does not fsync the folder after the rename, cannot refuse to overwrite, and has
 * nothing for folders, while a model version is a folder that must appear whole or not at
 * all and be removed the same way.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';

const debug = createDebug('lane-vision:fs');

/** Every temp entry starts with this; the leading dot also keeps it out of folder listings. */
export const TEMP_PREFIX = '.lane-vision-tmp-';
/** A folder being removed is renamed to this first. */
const TRASH_PREFIX = '.lane-vision-trash-';
const TEMP_NAME = /^\.lane-vision-(?:tmp|trash)-(\d+)-[0-9a-f]+/;

/** Temp entries this process is writing right now, so a concurrent open does not delete them. */
const inFlight = new Set<string>();

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) || name.startsWith(TRASH_PREFIX);
}

function tempPathFor(target: string, prefix = TEMP_PREFIX): string {
  return path.join(path.dirname(target), `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Runs `task` on a new temp path next to `target`, marked as in flight meanwhile. */
async function withTempPath<T>(target: string, prefix: string, task: (temp: string) => Promise<T>): Promise<T> {
  const temp = tempPathFor(target, prefix);
  inFlight.add(temp);
  try {
    return await task(temp);
  } finally {
    inFlight.delete(temp);
  }
}

/** Makes a rename or unlink in `dir` durable. Windows cannot open folders; there the rename is already durable enough. */
export async function syncFolder(dir: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    debug('folder fsync skipped for %s: %s', dir, (err as Error).message);
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Writes a new file (EEXIST if it is there) and flushes it to the disk before returning. */
export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.promises.open(file, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface AtomicWriteOptions {
  /** When false, refuse (EEXIST) if the target already exists. Default true. */
  overwrite?: boolean;
}

/** Writes `data` to `target` so that a crash leaves either the old state or the complete new file. */
export async function writeFileAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  await withTempPath(target, TEMP_PREFIX, async (temp) => {
    try {
      await writeFileDurable(temp, data);
      if (options.overwrite === false && (await exists(target))) {
        throw Object.assign(new Error(`EEXIST: file already exists, ${target}`), { code: 'EEXIST', path: target });
      }
      await fs.promises.rename(temp, target);
    } catch (err) {
      await fs.promises.rm(temp, { force: true }).catch(() => undefined);
      throw err;
    }
  });
  await syncFolder(path.dirname(target));
}

/**
 * Creates the folder `target` whole or not at all: `fill` writes its content into a temp
 * folder (with `writeFileDurable`), which is then fsynced and renamed into place. Fails if
 * `target` exists and is not empty.
 */
export async function publishFolderAtomic(target: string, fill: (tempDir: string) => Promise<void>): Promise<void> {
  await withTempPath(target, TEMP_PREFIX, async (temp) => {
    try {
      await fs.promises.mkdir(temp);
      await fill(temp);
      await syncFolder(temp);
      await fs.promises.rename(temp, target);
    } catch (err) {
      await fs.promises.rm(temp, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  });
  await syncFolder(path.dirname(target));
}

/** Removes a folder tree by first renaming it out of sight, so nobody reads it half-deleted. */
export async function removeFolderAtomic(dir: string): Promise<void> {
  await withTempPath(dir, TRASH_PREFIX, async (trash) => {
    await fs.promises.rename(dir, trash);
    await syncFolder(path.dirname(dir));
    await fs.promises.rm(trash, { recursive: true, force: true });
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.promises.lstat(file);
    return true;
  } catch {
    return false;
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0 only checks existence
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A temp entry is a crash leftover unless its writer is still running: this process with
 * the write in flight, or another live process (which may be mid-write into the same folder).
 */
export function isStaleTemp(fullPath: string): boolean {
  const match = TEMP_NAME.exec(path.basename(fullPath));
  if (!match) return true;
  const pid = Number(match[1]);
  if (pid === process.pid) return !inFlight.has(fullPath);
  return !processIsAlive(pid);
}

/** The temp entries directly inside `dir` (none if it cannot be read). */
export async function listTemps(dir: string): Promise<string[]> {
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  return names.filter(isTempName).map((name) => path.join(dir, name));
}

/** Deletes the crash leftovers among `tempPaths` (files or folders); returns those removed. Never throws. */
export async function removeStaleTemps(tempPaths: readonly string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const temp of tempPaths) {
    if (!isStaleTemp(temp)) continue;
    try {
      await fs.promises.rm(temp, { recursive: true, force: true });
      removed.push(temp);
      debug('removed leftover temp %s', temp);
    } catch (err) {
      debug('could not remove leftover temp %s: %s', temp, (err as Error).message);
    }
  }
  return removed;
}
