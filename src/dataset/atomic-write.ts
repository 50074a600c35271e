/**
 * Crash-safe file writes: data goes to a temp file in the target's own folder, is
 * fsynced, then renamed over the target, so readers see the old file or the whole new
 * one, never a torn one. Temp names carry the writer's pid so a later open can tell a
 * crash leftover from a write still in progress.
 *
 * Hand-written because `write-file-atomic` is not a dependency, and because the store
 * must recognise (and skip, then clean up) its own temp files when it scans folders.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';

const debug = createDebug('lane-vision:dataset');

/** Every temp file starts with this; the leading dot also keeps it out of label folders' listings. */
export const TEMP_PREFIX = '.lane-vision-tmp-';
const TEMP_NAME = /^\.lane-vision-tmp-(\d+)-[0-9a-f]+/;

/** Temp files this process is writing right now, so a concurrent open does not delete them. */
const inFlight = new Set<string>();

export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX);
}

function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
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

export interface AtomicWriteOptions {
  /** When false, refuse (EEXIST) if the target already exists. Default true. */
  overwrite?: boolean;
}

/** Writes `data` to `target` so that a crash leaves either the old state or the complete new file. */
export async function writeFileAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = tempPathFor(target);
  inFlight.add(temp);
  try {
    const handle = await fs.promises.open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.overwrite === false && (await exists(target))) {
      throw Object.assign(new Error(`EEXIST: file already exists, ${target}`), { code: 'EEXIST', path: target });
    }
    await fs.promises.rename(temp, target);
    await syncFolder(path.dirname(target));
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  } finally {
    inFlight.delete(temp);
  }
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
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A temp file is a crash leftover unless its writer is still running: this process with
 * the write in flight, or another live process (which may be mid-write into the same folder).
 */
export function isStaleTemp(fullPath: string): boolean {
  const match = TEMP_NAME.exec(path.basename(fullPath));
  if (!match) return true;
  const pid = Number(match[1]);
  if (pid === process.pid) return !inFlight.has(fullPath);
  return !processIsAlive(pid);
}

/** Deletes crash leftovers among `tempPaths`; returns how many were removed. Never throws. */
export async function removeStaleTemps(tempPaths: readonly string[]): Promise<number> {
  let removed = 0;
  for (const temp of tempPaths) {
    if (!isStaleTemp(temp)) continue;
    try {
      await fs.promises.rm(temp, { force: true });
      removed++;
      debug('removed leftover temp file %s', temp);
    } catch (err) {
      debug('could not remove leftover temp file %s: %s', temp, (err as Error).message);
    }
  }
  return removed;
}
