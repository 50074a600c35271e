/**
 * Crash-safe file operations. Hand-written because no dependency we ship covers it:
 * a model version is a *folder* that must appear whole or not at all (write to a temp
 * folder, fsync, rename), and small pointer files are replaced with temp + rename.
 * Temp names carry the writer's pid so a later run can tell a crash leftover from a
 * write in progress in another process.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';

const debug = createDebug('lane-vision:model-store');

const TEMP_PATTERN = /^\.(?:tmp|trash)-(\d+)-[0-9a-f]+(?:-.*)?$/;

/** A name in the store folder that listings ignore and `removeStaleTemps` can clear. */
export function tempName(kind: 'tmp' | 'trash', hint = ''): string {
  return `.${kind}-${process.pid}-${randomBytes(4).toString('hex')}${hint ? `-${hint}` : ''}`;
}

export function isTempName(name: string): boolean {
  return TEMP_PATTERN.test(name);
}

/** Writes a whole file and flushes it to the disk before returning. */
export async function writeFileDurable(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fsp.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a folder's entry list, so a rename inside it survives a power cut. */
export async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    // Windows cannot open or fsync folders; its renames are journaled anyway.
    debug('fsync of folder %s skipped: %s', dir, (err as Error).message);
  } finally {
    await handle?.close();
  }
}

/** Replaces `file` as one step: readers see the old or the new content, never a mix. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const temp = path.join(dir, tempName('tmp', path.basename(file)));
  try {
    await writeFileDurable(temp, data);
    await fsp.rename(temp, file);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

/** Removes a folder tree by first renaming it out of sight, so nobody reads it half-deleted. */
export async function removeDirAtomic(dir: string): Promise<void> {
  const trash = path.join(path.dirname(dir), tempName('trash', path.basename(dir)));
  await fsp.rename(dir, trash);
  await syncDir(path.dirname(dir));
  await fsp.rm(trash, { recursive: true, force: true });
}

/**
 * Deletes temp/trash entries left by crashed writers. Entries of live processes other
 * than this one are kept; this process's own are stale whenever the caller holds the
 * store's write queue (nothing of ours is in flight then).
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = TEMP_PATTERN.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && isProcessAlive(pid)) continue;
    await fsp.rm(path.join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length) debug('removed crash leftovers in %s: %o', dir, removed);
  return removed;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0 only checks existence
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
