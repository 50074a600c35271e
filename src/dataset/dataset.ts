/**
 * The dataset store: a folder per label of image files, plus a manifest at the root.
 * Capture writes it, training reads it. Any folder-per-class dataset opens as it is;
 * nothing is written until the first change.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { isLaneVisionError, LaneVisionError } from '../errors.js';
import { encodeForStorage } from '../image/index.js';
import type { ImageInput, StorableImage } from '../image/types.js';
import { readImageSize } from './image-size.js';
import { removeStaleTemps, syncFolder, writeFileAtomic } from '../fs/atomic.js';
import { MANIFEST_FILE_NAME, validateLabel } from './labels.js';
import { type DiskFile, type FolderScan, scanFolders } from './scan.js';
import { type ManifestEntry, readManifest, writeManifest } from './manifest.js';
import type { AddMeta, AddResult, Dataset, DatasetEntry, DatasetOptions, FingerprintOptions, LabelCapPolicy, SkippedItem } from './types.js';

const debug = createDebug('lane-vision:dataset');

const MAX_META_CHARS = 256;
/** Files hashed at once: enough to overlap disk and decoding on a small box. */
const HASH_CONCURRENCY = 4;
const FINGERPRINT_HEADER = 'lane-vision-dataset-fingerprint/v1\n';

/** One image as the store tracks it; hash and size fields are filled lazily for files found on disk. */
interface ImageRecord extends DiskFile {
  id: string;
  addedAt: string;
  source?: string;
  author?: string;
  session?: string;
  sha256?: string;
  sourceSha256?: string;
  width?: number;
  height?: number;
  problem?: string;
}

type HashedRecord = ImageRecord & { sha256: string; width: number; height: number };


interface Cap {
  max: number;
  policy: LabelCapPolicy;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Locale-independent order, so labels, entries and fingerprints sort the same on every machine. */
function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeIoFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return 'the disk is full';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied for the user running Node-RED';
  if (code === 'EROFS') return 'the file system is read-only';
  return (err as Error).message;
}

function ioError(action: string, err: unknown): LaneVisionError {
  if (err instanceof LaneVisionError) return err;
  return new LaneVisionError('DATASET_IO', `Could not ${action}: ${describeIoFailure(err)}.`, { cause: err });
}

async function runLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** "20261123-112739-123": sorts by time, safe in any file system. */
function timeStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('T', '-').replace('.', '-').replace('Z', '');
}

/**
 * State of one dataset folder, shared by every handle opened on it in this process, with
 * one queue that serialises changes so concurrent adds never lose manifest entries.
 */
class DatasetStore {
  readonly manifestPath: string;
  records = new Map<string, ImageRecord>();
  /** label -> folder name, including folders that hold no image yet. */
  labelDirs = new Map<string, string>();
  skipped: SkippedItem[] = [];
  /** Grows with every (re)read and every change written, so a reader can tell the content changed when counts do not (a capped label dropping its oldest). */
  revision = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly root: string) {
    this.manifestPath = path.join(root, MANIFEST_FILE_NAME);
  }

  /** Runs `work` after every change queued before it. */
  serialise<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  pathOf(record: ImageRecord): string {
    return path.join(this.root, record.dir, record.file);
  }

  /** (Re)reads folders and manifest. Only writes when removing crash leftovers and `cleanTemps` is set. */
  async load(cleanTemps: boolean): Promise<void> {
    const manifest = await readManifest(this.manifestPath);
    let scan: FolderScan;
    try {
      scan = await scanFolders(this.root);
    } catch (err) {
      throw ioError(`read the dataset folder ${this.root}`, err);
    }
    const previous = new Map([...this.records.values()].map((r) => [`${r.dir}/${r.file}`, r]));
    const onDisk = new Map(scan.files.map((f) => [`${f.dir}/${f.file}`, f]));
    const claimed = new Set<string>();
    const records = new Map<string, ImageRecord>();
    const uniqueId = (id: string): string => {
      let candidate = id;
      for (let n = 2; records.has(candidate); n++) candidate = `${id}#${n}`;
      return candidate;
    };
    const orphans: ManifestEntry[] = [];

    for (const entry of manifest ?? []) {
      const dir = scan.labelDirs.get(entry.label);
      const key = `${dir}/${entry.file}`;
      const disk = dir === undefined ? undefined : onDisk.get(key);
      if (!disk || claimed.has(key)) {
        orphans.push(entry);
        continue;
      }
      claimed.add(key);
      records.set(uniqueId(entry.id), fromManifest(entry, disk));
    }

    // A relabel or label rename that crashed between moving the file and writing the
    // manifest leaves the entry pointing at the old folder: find the file by name and size.
    for (const entry of orphans) {
      const candidates = scan.files.filter((f) => f.file === entry.file && f.size === entry.size && !claimed.has(`${f.dir}/${f.file}`));
      if (candidates.length === 1) {
        const disk = candidates[0];
        claimed.add(`${disk.dir}/${disk.file}`);
        records.set(uniqueId(entry.id), { ...fromManifest(entry, disk), label: disk.label });
        debug('manifest entry %s found moved to %s/%s', entry.id, disk.dir, disk.file);
      } else {
        debug('manifest entry %s (%s/%s): file is gone, entry dropped', entry.id, entry.label, entry.file);
      }
    }

    for (const disk of scan.files) {
      const key = `${disk.dir}/${disk.file}`;
      if (claimed.has(key)) continue;
      const known = previous.get(key);
      const unchanged = known && known.size === disk.size && known.mtimeMs === disk.mtimeMs;
      const record: ImageRecord = unchanged
        ? { ...known, label: disk.label }
        : { id: `${disk.label}/${disk.file}`, ...disk, addedAt: new Date(disk.mtimeMs).toISOString(), source: 'folder' };
      record.id = uniqueId(record.id);
      records.set(record.id, record);
    }

    this.records = records;
    this.revision++;
    this.labelDirs = scan.labelDirs;
    this.skipped = scan.skipped;
    debug('loaded %s: %d images in %d label folders (%s manifest)', this.root, records.size, scan.labelDirs.size, manifest ? 'with' : 'no');
    if (cleanTemps && scan.temps.length > 0) await removeStaleTemps(scan.temps);
  }

  /** Fills hash and size for records found on disk (reads each such file once). */
  async hashAll(only?: readonly ImageRecord[]): Promise<void> {
    const pending = (only ?? [...this.records.values()]).filter((r) => r.sha256 === undefined);
    if (pending.length === 0) return;
    const started = Date.now();
    await runLimited(pending, HASH_CONCURRENCY, async (record) => {
      let bytes: Buffer;
      try {
        bytes = await fs.promises.readFile(this.pathOf(record));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.records.delete(record.id);
          return;
        }
        throw ioError(`read ${this.pathOf(record)}`, err);
      }
      record.sha256 = sha256Hex(bytes);
      record.size = bytes.length;
      try {
        const checked = await readImageSize(bytes, `The image file ${this.pathOf(record)}`);
        record.width = checked.width;
        record.height = checked.height;
        delete record.problem;
      } catch (err) {
        if (!isLaneVisionError(err)) throw err;
        record.width = 0;
        record.height = 0;
        record.problem = err.message;
        debug('%s is not a usable image: %s', this.pathOf(record), err.message);
      }
    });
    debug('hashed %d images in %d ms', pending.length, Date.now() - started);
  }

  hashed(): HashedRecord[] {
    return [...this.records.values()].filter((r): r is HashedRecord => r.sha256 !== undefined);
  }

  toEntry(record: HashedRecord): DatasetEntry {
    const entry: DatasetEntry = {
      id: record.id,
      label: record.label,
      file: record.file,
      path: this.pathOf(record),
      sha256: record.sha256,
      width: record.width,
      height: record.height,
      size: record.size,
      addedAt: record.addedAt,
    };
    if (record.source !== undefined) entry.source = record.source;
    if (record.author !== undefined) entry.author = record.author;
    if (record.session !== undefined) entry.session = record.session;
    if (record.problem !== undefined) entry.problem = record.problem;
    return entry;
  }

  sortedEntries(): DatasetEntry[] {
    return this.hashed()
      .sort((a, b) => byCodeUnit(a.label, b.label) || byCodeUnit(a.file, b.file))
      .map((r) => this.toEntry(r));
  }

  /** Writes the manifest for the current records (hashing any not yet hashed). */
  async persist(): Promise<void> {
    this.revision++;
    await this.hashAll();
    const entries: ManifestEntry[] = this.hashed()
      .sort((a, b) => byCodeUnit(a.label, b.label) || byCodeUnit(a.file, b.file))
      .map((r) => {
        const { path: _path, ...entry } = this.toEntry(r);
        return r.sourceSha256 === undefined ? entry : { ...entry, sourceSha256: r.sourceSha256 };
      });
    try {
      await writeManifest(this.manifestPath, entries);
    } catch (err) {
      throw ioError(`write the dataset manifest ${this.manifestPath}`, err);
    }
  }

  recordsOf(label: string): ImageRecord[] {
    return [...this.records.values()].filter((r) => r.label === label);
  }

  labelNames(): string[] {
    return [...new Set([...this.records.values()].map((r) => r.label))].sort(byCodeUnit);
  }

  /** Refuses a label that differs from an existing one only in letter case: on Windows and macOS both would be one folder. */
  checkCaseClash(label: string, except?: string): void {
    const folded = label.toLowerCase();
    for (const existing of this.labelDirs.keys()) {
      if (existing !== label && existing !== except && existing.toLowerCase() === folded) {
        throw new LaneVisionError(
          'LABEL_CONFLICT',
          `Label "${label}" differs from the existing label "${existing}" only in letter case; use "${existing}" or rename it.`,
        );
      }
    }
  }

  /** Creates the label's folder if needed; returns its name on disk. */
  async ensureLabelDir(label: string): Promise<string> {
    const dir = this.labelDirs.get(label) ?? label;
    try {
      // Also when known: someone may have deleted the folder by hand since the last scan.
      const created = await fs.promises.mkdir(path.join(this.root, dir), { recursive: true });
      if (created !== undefined) await syncFolder(this.root);
    } catch (err) {
      throw ioError(`create the folder for label "${label}" in ${this.root}`, err);
    }
    this.labelDirs.set(label, dir);
    return dir;
  }

  /** Removes a label folder left without images; keeps it if anything else is inside. */
  async dropFolderIfEmpty(label: string): Promise<void> {
    const dir = this.labelDirs.get(label);
    if (dir === undefined || this.recordsOf(label).length > 0) return;
    try {
      await fs.promises.rmdir(path.join(this.root, dir));
      this.labelDirs.delete(label);
    } catch (err) {
      debug('kept folder %s: %s', dir, (err as Error).message);
    }
  }

  /** A file name not used in `dir`, keeping `wanted` when free. */
  async freeFileName(dir: string, wanted: string): Promise<string> {
    const ext = path.extname(wanted);
    const stem = wanted.slice(0, wanted.length - ext.length);
    for (let n = 1; ; n++) {
      const name = n === 1 ? wanted : `${stem}-${n}${ext}`;
      const taken = [...this.records.values()].some((r) => r.dir === dir && r.file === name);
      if (!taken && !(await fs.promises.lstat(path.join(this.root, dir, name)).catch(() => undefined))) return name;
    }
  }

  uniqueId(wanted: string): string {
    let id = wanted;
    for (let n = 2; this.records.has(id); n++) id = `${wanted}#${n}`;
    return id;
  }

  async unlinkImage(record: ImageRecord): Promise<void> {
    try {
      await fs.promises.unlink(this.pathOf(record));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`delete ${this.pathOf(record)}`, err);
    }
  }

  // ---- changes; each runs inside serialise() ----

  async add(label: string, stored: StorableImage, meta: CheckedMeta, cap: Cap | undefined): Promise<AddResult> {
    await this.hashAll();
    const fileSha = sha256Hex(stored.bytes);
    const existing = this.hashed().find((r) => r.sha256 === fileSha || r.sha256 === stored.sha256 || r.sourceSha256 === stored.sha256);
    if (existing) return { ...this.toEntry(existing), duplicate: true, dropped: [] };

    this.checkCaseClash(label);
    const current = this.recordsOf(label);
    let dropped: ImageRecord[] = [];
    if (cap && current.length >= cap.max) {
      if (cap.policy === 'refuse') {
        throw new LaneVisionError(
          'LABEL_FULL',
          `Label "${label}" already holds ${current.length} images, the most allowed (maxPerLabel ${cap.max}); remove some first or raise the cap.`,
        );
      }
      dropped = current.sort((a, b) => byCodeUnit(a.addedAt, b.addedAt) || byCodeUnit(a.file, b.file)).slice(0, current.length - cap.max + 1);
    }

    const dir = await this.ensureLabelDir(label);
    const stem = `${timeStamp(meta.addedAt)}-${fileSha.slice(0, 12)}`;
    const file = await this.freeFileName(dir, `${stem}${stored.extension}`);
    const record: HashedRecord = {
      id: this.uniqueId(stem),
      label,
      dir,
      file,
      size: stored.bytes.length,
      mtimeMs: 0,
      addedAt: meta.addedAt.toISOString(),
      sha256: fileSha,
      width: stored.width,
      height: stored.height,
    };
    if (stored.sha256 !== fileSha) record.sourceSha256 = stored.sha256;
    if (meta.source !== undefined) record.source = meta.source;
    if (meta.author !== undefined) record.author = meta.author;
    if (meta.session !== undefined) record.session = meta.session;

    try {
      await writeFileAtomic(this.pathOf(record), stored.bytes, { overwrite: false });
    } catch (err) {
      throw ioError(`save the image under label "${label}" in ${this.root}`, err);
    }
    this.records.set(record.id, record);
    const droppedEntries = dropped.map((r) => this.toEntry(r as HashedRecord));
    for (const old of dropped) {
      await this.unlinkImage(old);
      this.records.delete(old.id);
    }
    try {
      await this.persist();
    } catch (err) {
      // Without a manifest entry the file would come back as an anonymous "folder" image.
      this.records.delete(record.id);
      await this.unlinkImage(record).catch(() => undefined);
      throw err;
    }
    debug('added %s to "%s"%s', record.file, label, dropped.length ? `, dropped ${dropped.length} oldest` : '');
    return { ...this.toEntry(record), duplicate: false, dropped: droppedEntries };
  }

  getOrThrow(id: string): ImageRecord {
    const record = typeof id === 'string' ? this.records.get(id) : undefined;
    if (!record) throw new LaneVisionError('DATASET_ENTRY_NOT_FOUND', `No image with id ${JSON.stringify(id)} in dataset ${this.root}.`);
    return record;
  }

  async remove(id: string): Promise<DatasetEntry> {
    await this.hashAll();
    const record = this.getOrThrow(id) as HashedRecord;
    const entry = this.toEntry(record);
    // File first: a crash before the manifest is written then leaves an entry without a
    // file (dropped on open) rather than a deleted image coming back.
    await this.unlinkImage(record);
    this.records.delete(id);
    await this.persist();
    await this.dropFolderIfEmpty(record.label);
    return entry;
  }

  async relabel(id: string, label: string, cap: Cap | undefined): Promise<DatasetEntry> {
    await this.hashAll();
    const record = this.getOrThrow(id) as HashedRecord;
    if (record.label === label) return this.toEntry(record);
    this.checkCaseClash(label);
    const count = this.recordsOf(label).length;
    if (cap && count >= cap.max) {
      throw new LaneVisionError('LABEL_FULL', `Label "${label}" already holds ${count} images, the most allowed (maxPerLabel ${cap.max}).`);
    }
    const from = { label: record.label, dir: record.dir, file: record.file };
    const dir = await this.ensureLabelDir(label);
    const file = await this.freeFileName(dir, record.file);
    try {
      await fs.promises.rename(this.pathOf(record), path.join(this.root, dir, file));
      await syncFolder(path.join(this.root, dir));
      await syncFolder(path.join(this.root, from.dir));
    } catch (err) {
      throw ioError(`move ${this.pathOf(record)} to label "${label}"`, err);
    }
    Object.assign(record, { label, dir, file });
    try {
      await this.persist();
    } catch (err) {
      await fs.promises.rename(this.pathOf(record), path.join(this.root, from.dir, from.file)).catch(() => undefined);
      Object.assign(record, from);
      throw err;
    }
    await this.dropFolderIfEmpty(from.label);
    return this.toEntry(record);
  }

  async renameLabel(from: string, to: string): Promise<number> {
    await this.hashAll();
    const fromDir = this.labelDirs.get(from);
    if (fromDir === undefined) throw this.labelNotFound(from);
    if (from === to) return this.recordsOf(from).length;
    if (this.labelDirs.has(to)) {
      throw new LaneVisionError('LABEL_EXISTS', `Label "${to}" already exists; relabel its images one by one or remove it first.`);
    }
    this.checkCaseClash(to, from);
    try {
      await fs.promises.rename(path.join(this.root, fromDir), path.join(this.root, to));
      await syncFolder(this.root);
    } catch (err) {
      throw ioError(`rename the folder of label "${from}" to "${to}"`, err);
    }
    const moved = this.recordsOf(from);
    for (const record of moved) Object.assign(record, { label: to, dir: to });
    this.labelDirs.delete(from);
    this.labelDirs.set(to, to);
    await this.persist();
    return moved.length;
  }

  async removeLabel(label: string): Promise<number> {
    await this.hashAll();
    if (!this.labelDirs.has(label)) throw this.labelNotFound(label);
    const doomed = this.recordsOf(label);
    for (const record of doomed) {
      await this.unlinkImage(record);
      this.records.delete(record.id);
    }
    await this.persist();
    await this.dropFolderIfEmpty(label);
    return doomed.length;
  }

  labelNotFound(label: string): LaneVisionError {
    return new LaneVisionError('LABEL_NOT_FOUND', `No label "${label}" in dataset ${this.root}.`);
  }
}

function fromManifest(entry: ManifestEntry, disk: DiskFile): ImageRecord {
  const record: ImageRecord = {
    id: entry.id,
    label: disk.label,
    dir: disk.dir,
    file: disk.file,
    size: disk.size,
    mtimeMs: disk.mtimeMs,
    addedAt: entry.addedAt,
  };
  if (entry.source !== undefined) record.source = entry.source;
  if (entry.author !== undefined) record.author = entry.author;
  if (entry.session !== undefined) record.session = entry.session;
  // A file replaced by another of a different size is hashed again on demand.
  if (entry.size === disk.size) {
    record.sha256 = entry.sha256;
    record.width = entry.width;
    record.height = entry.height;
    if (entry.sourceSha256 !== undefined) record.sourceSha256 = entry.sourceSha256;
    if (entry.problem !== undefined) record.problem = entry.problem;
  }
  return record;
}

type CheckedMeta = { source?: string; author?: string; session?: string; addedAt: Date };

function checkMeta(meta: AddMeta | undefined): CheckedMeta {
  if (meta === undefined || meta === null) return { addedAt: new Date() };
  if (typeof meta !== 'object') throw new LaneVisionError('DATASET_META_INVALID', 'Image details must be an object like {source, author}.');
  const checked: CheckedMeta = { addedAt: new Date() };
  for (const key of ['source', 'author', 'session'] as const) {
    const value = meta[key];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' || value.length > MAX_META_CHARS) {
      throw new LaneVisionError('DATASET_META_INVALID', `"${key}" must be text of at most ${MAX_META_CHARS} characters.`);
    }
    checked[key] = value;
  }
  if (meta.addedAt !== undefined) {
    if (!(meta.addedAt instanceof Date) || Number.isNaN(meta.addedAt.getTime())) {
      throw new LaneVisionError('DATASET_META_INVALID', '"addedAt" must be a valid Date.');
    }
    checked.addedAt = meta.addedAt;
  }
  return checked;
}

function checkOptions(options: DatasetOptions): Cap | undefined {
  if (typeof options !== 'object' || options === null) throw new LaneVisionError('DATASET_OPTIONS', 'Dataset options must be an object.');
  const { maxPerLabel, whenLabelFull } = options;
  if (whenLabelFull !== undefined && whenLabelFull !== 'refuse' && whenLabelFull !== 'drop-oldest') {
    throw new LaneVisionError('DATASET_OPTIONS', `whenLabelFull must be "refuse" or "drop-oldest", got ${JSON.stringify(whenLabelFull)}.`);
  }
  if (maxPerLabel === undefined) return undefined;
  if (!Number.isSafeInteger(maxPerLabel) || maxPerLabel < 1) {
    throw new LaneVisionError('DATASET_OPTIONS', `maxPerLabel must be a whole number of at least 1, got ${String(maxPerLabel)}.`);
  }
  return { max: maxPerLabel, policy: whenLabelFull ?? 'refuse' };
}

/** What callers hold: the shared store plus this opener's options. */
class DatasetHandle implements Dataset {
  readonly dir: string;
  readonly readOnly: boolean;

  constructor(
    private readonly store: DatasetStore,
    private readonly options: DatasetOptions,
    private readonly cap: Cap | undefined,
  ) {
    this.dir = store.root;
    this.readOnly = options.readOnly === true;
  }

  labels(): string[] {
    return this.store.labelNames();
  }

  counts(): Record<string, number> {
    const counts = new Map<string, number>();
    for (const record of this.store.records.values()) counts.set(record.label, (counts.get(record.label) ?? 0) + 1);
    return Object.fromEntries([...counts].sort((a, b) => byCodeUnit(a[0], b[0])));
  }

  get size(): number {
    return this.store.records.size;
  }

  get revision(): number {
    return this.store.revision;
  }

  entries(): Promise<DatasetEntry[]> {
    return this.store.serialise(async () => {
      await this.store.hashAll();
      return this.store.sortedEntries();
    });
  }

  entry(id: string): Promise<DatasetEntry | undefined> {
    return this.store.serialise(async () => {
      const record = this.store.records.get(id);
      if (!record) return undefined;
      await this.store.hashAll([record]);
      const hashed = this.store.records.get(id);
      return hashed?.sha256 === undefined ? undefined : this.store.toEntry(hashed as HashedRecord);
    });
  }

  private assertWritable(): void {
    if (this.readOnly) {
      throw new LaneVisionError('DATASET_READ_ONLY', `Dataset ${this.dir} was opened read-only; open it without readOnly to change it.`);
    }
  }

  async add(label: string, image: ImageInput, meta?: AddMeta): Promise<AddResult> {
    const name = validateLabel(label);
    const checkedMeta = checkMeta(meta);
    this.assertWritable();
    // Decoding runs outside the queue so several frames can be checked in parallel.
    const stored = await encodeForStorage(image, { maxInputPixels: this.options.maxInputPixels, maxInputBytes: this.options.maxInputBytes });
    return this.store.serialise(() => this.store.add(name, stored, checkedMeta, this.cap));
  }

  async remove(id: string): Promise<DatasetEntry> {
    this.assertWritable();
    return this.store.serialise(() => this.store.remove(id));
  }

  async relabel(id: string, newLabel: string): Promise<DatasetEntry> {
    const name = validateLabel(newLabel);
    this.assertWritable();
    return this.store.serialise(() => this.store.relabel(id, name, this.cap));
  }

  async renameLabel(from: string, to: string): Promise<number> {
    const fromName = validateLabel(from);
    const toName = validateLabel(to);
    this.assertWritable();
    return this.store.serialise(() => this.store.renameLabel(fromName, toName));
  }

  async removeLabel(label: string): Promise<number> {
    const name = validateLabel(label);
    this.assertWritable();
    return this.store.serialise(() => this.store.removeLabel(name));
  }

  fingerprint(options: FingerprintOptions = {}): Promise<string> {
    const wanted = options.labels?.map((l) => validateLabel(l));
    return this.store.serialise(async () => {
      await this.store.hashAll();
      const present = new Set(this.store.labelNames());
      for (const label of wanted ?? []) if (!present.has(label)) throw this.store.labelNotFound(label);
      const include = wanted ? new Set(wanted) : present;
      // Unreadable files are left out: training cannot use them either.
      const lines = this.store
        .hashed()
        .filter((r) => include.has(r.label) && r.problem === undefined)
        .map((r) => `${r.label}\0${r.sha256}\n`)
        .sort(byCodeUnit);
      return sha256Hex(FINGERPRINT_HEADER + lines.join(''));
    });
  }

  refresh(): Promise<void> {
    return this.store.serialise(() => this.store.load(!this.readOnly));
  }

  skipped(): SkippedItem[] {
    return this.store.skipped.map((item) => ({ ...item }));
  }
}

/** One store per real folder path, so every handle in this process shares state and queue. */
const stores = new Map<string, DatasetStore>();

/**
 * Opens the folder-per-label dataset at `dir` as it is (creating the folder unless
 * `create: false` or `readOnly`). Opening never writes, except to delete temp files a
 * crashed writer left behind; the manifest is written on the first change.
 */
export async function openDataset(dir: string, options: DatasetOptions = {}): Promise<Dataset> {
  const cap = checkOptions(options);
  if (typeof dir !== 'string' || dir.trim() === '' || dir.includes('\0')) {
    throw new LaneVisionError('DATASET_NOT_FOUND', `A dataset folder path is needed, got ${JSON.stringify(dir)}.`);
  }
  const resolved = path.resolve(dir);
  let stat: fs.Stats | undefined;
  try {
    stat = await fs.promises.stat(resolved);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`open the dataset folder ${resolved}`, err);
  }
  if (!stat) {
    if (options.create === false || options.readOnly) {
      throw new LaneVisionError('DATASET_NOT_FOUND', `There is no dataset folder at ${resolved}.`);
    }
    try {
      await fs.promises.mkdir(resolved, { recursive: true });
    } catch (err) {
      throw ioError(`create the dataset folder ${resolved}`, err);
    }
  } else if (!stat.isDirectory()) {
    throw new LaneVisionError('DATASET_NOT_A_FOLDER', `${resolved} is a file, not a dataset folder.`);
  }
  const root = await fs.promises.realpath(resolved);
  let store = stores.get(root);
  const isNew = !store;
  if (!store) {
    store = new DatasetStore(root);
    stores.set(root, store);
  }
  const opened = store;
  try {
    await opened.serialise(() => opened.load(options.readOnly !== true));
  } catch (err) {
    if (isNew) stores.delete(root);
    throw err;
  }
  return new DatasetHandle(opened, options, cap);
}
