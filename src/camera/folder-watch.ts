/**
 * A watched folder as a camera: each new image file becomes one frame, once, in name order.
 * A file counts as written when its size and modification time have stayed the same for the
 * settle delay, so a file still being copied in is not read half-way. The folder is looked
 * at (every half settle delay, at most every 500 ms) rather than watched with fs.watch: the
 * folders cameras and PLCs drop files into are often network shares, where fs.watch sees
 * nothing, and a look is needed anyway to tell when a file has settled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LaneVisionError } from '../errors.js';
import type { Connector, Demand, FrameSink } from './types.js';

export interface FolderCameraOptions {
  folder: string;
  /** Milliseconds a file must stay unchanged before it is read. Default 300. */
  settleMs?: number;
  /** Also send the images already there when watching starts. Default false: only new ones. */
  existing?: boolean;
}

export const WATCHED_EXTENSIONS = /\.(jpe?g|png|webp|bmp|tiff?)$/i;
export const DEFAULT_SETTLE_MS = 300;

export function folderCamera(options: FolderCameraOptions): Connector {
  const folder = path.resolve(options.folder);
  const settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
  if (!Number.isFinite(settleMs) || settleMs < 0) throw new LaneVisionError('CAMERA_BAD_SETTING', `The settle delay must be 0 ms or more, got ${String(options.settleMs)}`);
  const scanEveryMs = Math.min(500, Math.max(25, settleMs / 2));
  /** Files sent or ignored, by name; kept across reconnects so no file is sent twice. */
  const done = new Set<string>();
  /** Size and mtime of each candidate at the last look, and since when they have not changed. */
  const watching = new Map<string, { size: number; mtimeMs: number; stableSince: number }>();
  let started = false;

  async function listImages(): Promise<string[]> {
    try {
      return (await fs.promises.readdir(folder)).filter((name) => WATCHED_EXTENSIONS.test(name)).sort();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new LaneVisionError('CAMERA_NO_FOLDER', code === 'ENOENT' ? `The watched folder ${folder} does not exist` : `The watched folder ${folder} cannot be read (${code})`, { cause: err });
    }
  }

  /** The first new file that has settled, or undefined. */
  async function settledFile(): Promise<string | undefined> {
    const now = Date.now();
    const names = await listImages();
    // Forget files that are gone (a lane that deletes what it processed keeps these sets small).
    const present = new Set(names);
    for (const name of done) if (!present.has(name)) done.delete(name);
    for (const name of watching.keys()) if (!present.has(name)) watching.delete(name);
    for (const name of names) {
      if (done.has(name)) continue;
      let stat;
      try {
        stat = await fs.promises.stat(path.join(folder, name));
      } catch {
        watching.delete(name); // gone again (renamed into place elsewhere)
        continue;
      }
      if (!stat.isFile()) continue;
      const seen = watching.get(name);
      if (!seen || seen.size !== stat.size || seen.mtimeMs !== stat.mtimeMs) {
        watching.set(name, { size: stat.size, mtimeMs: stat.mtimeMs, stableSince: now });
        continue;
      }
      if (now - seen.stableSince >= settleMs && now - stat.mtimeMs >= settleMs && stat.size > 0) return name;
    }
    return undefined;
  }

  return {
    kind: 'folder',
    label: folder,
    async run(sink: FrameSink, demand: Demand, signal: AbortSignal) {
      if (!started) {
        // Listed at once (not in the thread pool), so "already there" means there when the camera started.
        let names: string[];
        try {
          names = fs.readdirSync(folder).filter((name) => WATCHED_EXTENSIONS.test(name));
        } catch {
          names = await listImages(); // says why it cannot be read
        }
        started = true;
        if (!options.existing) names.forEach((name) => done.add(name));
      }
      while (await demand()) {
        for (;;) {
          if (signal.aborted) return;
          const name = await settledFile();
          if (name) {
            done.add(name);
            watching.delete(name);
            const file = path.join(folder, name);
            let image: Buffer;
            try {
              image = await fs.promises.readFile(file);
            } catch {
              continue; // removed between the look and the read: not a frame
            }
            sink(image, { path: file });
            break;
          }
          try {
            await sleep(scanEveryMs, undefined, { signal });
          } catch {
            return; // stopped
          }
        }
      }
    },
  };
}
