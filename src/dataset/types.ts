import type { ImageInput } from '../image/types.js';

/** What to do when a label already holds `maxPerLabel` images and another is added. */
export type LabelCapPolicy = 'refuse' | 'drop-oldest';

export interface DatasetOptions {
  /** Create the folder when it does not exist. Default true. */
  create?: boolean;
  /** Refuse every change (DATASET_READ_ONLY). Opening never writes either way. */
  readOnly?: boolean;
  /** Most images one label may hold. Default: no cap. */
  maxPerLabel?: number;
  /**
   * What `add` does at the cap. Default 'refuse' (LABEL_FULL). 'drop-oldest' removes the
   * label's oldest images to make room, for rolling capture. `relabel`/`renameLabel` always refuse.
   */
  whenLabelFull?: LabelCapPolicy;
  /** Passed to the image stage when checking added images. */
  maxInputPixels?: number;
  maxInputBytes?: number;
}

/** Who/what added an image; stored in the manifest. */
export interface AddMeta {
  /** Where the image came from, e.g. "camera:lane-1", "upload", "mqtt". */
  source?: string;
  /** Who taught it, e.g. an operator name or node id. */
  author?: string;
  /** When it was captured. Default: now. */
  addedAt?: Date;
  /**
   * The capture session (shift, day, batch) it belongs to. Validation holds out whole
   * sessions when there are several, which predicts the next shift better than any split
   * of one session.
   */
  session?: string;
}

export interface DatasetEntry {
  /** Stable across relabel: the file stem for added images, "<label>/<file>" for files found on disk. */
  id: string;
  label: string;
  /** File name inside the label's folder. */
  file: string;
  /** Absolute path of the image file. */
  path: string;
  /** sha256 (hex) of the file's bytes. */
  sha256: string;
  width: number;
  height: number;
  /** File size in bytes. */
  size: number;
  /** ISO 8601; the file's modification time for files found on disk. */
  addedAt: string;
  /** "folder" for images found on disk without a manifest entry. */
  source?: string;
  author?: string;
  /** Capture session, when it was recorded (see AddMeta.session). */
  session?: string;
  /** Set when the file cannot be read as an image (width and height are then 0). */
  problem?: string;
}

export interface AddResult extends DatasetEntry {
  /**
   * True when the same image was already in the dataset: nothing was written and this is
   * the existing entry, which may sit under another label than the one asked for.
   */
  duplicate: boolean;
  /** Entries removed to stay within `maxPerLabel` ('drop-oldest'). */
  dropped: DatasetEntry[];
}

export interface FingerprintOptions {
  /** Only these labels (e.g. the classes a model was trained on). Default: all. */
  labels?: readonly string[];
}

/** A folder or file in a dataset folder that is not read as a label or an image. */
export interface SkippedItem {
  kind: 'folder' | 'file';
  /** Relative to the dataset folder. */
  path: string;
  reason: string;
}

export interface Dataset {
  /** Absolute, symlink-free path of the dataset folder. */
  readonly dir: string;
  readonly readOnly: boolean;
  /** Labels holding at least one image, sorted by code point. */
  labels(): string[];
  /** Images per label (labels sorted by code point). */
  counts(): Record<string, number>;
  /** Total number of images. */
  readonly size: number;
  /**
   * Grows whenever the content may have changed (any write, a refresh), shared by every
   * handle of the folder in this process: a label at its cap that drops its oldest image
   * keeps its count, but not its revision.
   */
  readonly revision: number;
  /** Every entry, sorted by label then file. Hashes images not yet in the manifest. */
  entries(): Promise<DatasetEntry[]>;
  entry(id: string): Promise<DatasetEntry | undefined>;
  add(label: string, image: ImageInput, meta?: AddMeta): Promise<AddResult>;
  /** Deletes the image; returns the removed entry. */
  remove(id: string): Promise<DatasetEntry>;
  /** Moves the image to another label; returns the moved entry. */
  relabel(id: string, newLabel: string): Promise<DatasetEntry>;
  /** Renames a label (its folder); returns how many images moved. */
  renameLabel(from: string, to: string): Promise<number>;
  /** Deletes a label and its images; returns how many were removed. */
  removeLabel(label: string): Promise<number>;
  /** sha256 (hex) over sorted (label, image sha256) pairs: names the data a model was trained on. */
  fingerprint(options?: FingerprintOptions): Promise<string>;
  /** Re-reads the folder and manifest (after changes made outside this process). */
  refresh(): Promise<void>;
  /** Folders and files found at the last (re)read that are not part of the dataset, with why. */
  skipped(): SkippedItem[];
}
