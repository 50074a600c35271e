/**
 * The lane's own frames that an int8 backbone is calibrated on: image files in a folder and
 * its subfolders one level down (a dataset's `<label>/` folders), picked evenly across the
 * sorted list up to a limit, so every label contributes. The fingerprint (names and bytes)
 * keys the quantised model in the conversion cache: other frames, another calibration.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LaneVisionError } from '../errors.js';
import { prepareImage } from '../image/prepare.js';

const IMAGE_FILE = /\.(jpe?g|png|webp)$/i;
/** Enough for stable min / max ranges on a MobileNet (ONNX Runtime's examples use 100s; 64 gave the same val accuracy). */
export const DEFAULT_CALIBRATION_FRAMES = 64;
/** Fewer than this cannot show the ranges a lane's frames reach. */
export const MIN_CALIBRATION_FRAMES = 8;

export interface CalibrationSet {
  folder: string;
  files: string[];
  /** sha256 (hex) over the chosen files' relative names and bytes. */
  fingerprint: string;
  /** The files decoded and fitted to the backbone's input (centre crop, as lanes fit frames). */
  frames(size: { width: number; height: number }): Promise<{ data: Uint8Array }[]>;
}

async function imageFiles(folder: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(folder, { withFileTypes: true })) {
    const full = path.join(folder, entry.name);
    if (entry.isFile() && IMAGE_FILE.test(entry.name)) found.push(full);
    else if (entry.isDirectory() && !entry.name.startsWith('.')) {
      for (const inner of await fs.readdir(full, { withFileTypes: true })) {
        if (inner.isFile() && IMAGE_FILE.test(inner.name)) found.push(path.join(full, inner.name));
      }
    }
  }
  return found.sort();
}

/** Reads the calibration set in `folder`; throws BACKBONE_CALIBRATION_INVALID when it cannot serve. */
export async function readCalibrationSet(folder: string, limit = DEFAULT_CALIBRATION_FRAMES): Promise<CalibrationSet> {
  const bad = (why: string, cause?: unknown) =>
    new LaneVisionError('BACKBONE_CALIBRATION_INVALID', `Cannot calibrate the int8 backbone on ${folder}: ${why}`, cause ? { cause } : undefined);
  let all: string[];
  try {
    all = await imageFiles(folder);
  } catch (err) {
    throw bad(`the folder cannot be read (${err instanceof Error ? err.message : String(err)})`, err);
  }
  if (all.length < MIN_CALIBRATION_FRAMES) {
    throw bad(`it holds ${all.length} image(s) (JPEG, PNG or WebP, in it or one subfolder down); at least ${MIN_CALIBRATION_FRAMES} of the lane's own frames are needed`);
  }
  const count = Math.min(limit, all.length);
  const files = Array.from({ length: count }, (_, i) => all[Math.floor((i * all.length) / count)]);
  const hash = createHash('sha256');
  const bytes: Buffer[] = [];
  for (const file of files) {
    const data = await fs.readFile(file);
    bytes.push(data);
    hash.update(path.relative(folder, file)).update('\0').update(data);
  }
  return {
    folder,
    files,
    fingerprint: hash.digest('hex'),
    frames: async (size) => {
      const frames: { data: Uint8Array }[] = [];
      for (let i = 0; i < files.length; i++) {
        try {
          frames.push(await prepareImage(bytes[i], { ...size, fit: { kind: 'cover' } }));
        } catch (err) {
          throw bad(`${path.relative(folder, files[i])} cannot be decoded (${err instanceof Error ? err.message : String(err)})`, err);
        }
      }
      return frames;
    },
  };
}
