/**
 * Frames given as text (msg.payload = "/some/path.jpg") are read from disk only when the
 * node's "Read image files" setting is on, and only inside the folders it lists: a string
 * from an MQTT command, an HTTP endpoint or a dashboard must not make the host read its own
 * files. Off by default; send image bytes instead.
 */
import { readImageSource, type FileAccess } from '../../src/image/index.js';
import { LaneVisionError } from '../../src/errors.js';
import { resolveInUserDir } from './paths.js';

export interface FileInputSettings {
  /** "Read image files": msg.payload may be the path of an image file. Default off. */
  readFiles?: boolean | string;
  /** The folders it may read, one per line or comma-separated; relative ones are in the user directory. */
  fileFolders?: string;
}

/** What the node may read; throws LaneVisionError FILE_INPUT_INVALID when reading is on without folders. */
export function fileAccessFrom(config: FileInputSettings, userDir: string): FileAccess {
  const on = config.readFiles === true || config.readFiles === 'true';
  if (!on) return 'none';
  const folders = String(config.fileFolders ?? '')
    .split(/[\n,]/)
    .map((f) => f.trim())
    .filter((f) => f !== '')
    .map((f) => resolveInUserDir(userDir, f));
  if (folders.length === 0) {
    throw new LaneVisionError('FILE_INPUT_INVALID', '"Read image files" is on but no folder is listed: list the folders the node may read images from.');
  }
  return { folders };
}

/**
 * Text frames become their image bytes here, under the node's file access, so nothing
 * after the node (another thread, msg.frame for the next node) reads a path again.
 * Bytes and raw pixels pass as they are.
 */
export async function frameBytes(payload: unknown, files: FileAccess): Promise<unknown> {
  if (typeof payload !== 'string') return payload;
  const source = await readImageSource(payload, { files });
  return source.kind === 'encoded' ? source.bytes : payload;
}
