/**
 * Versioned model store: one folder per trained model under a store folder.
 *
 *   <store>/registry.json     last version number given + every label code ever given
 *   <store>/active.json       which version classifiers use, and the activation history
 *   <store>/v0001/metadata.json, head.bin
 *
 * The head is kept in the training module's format (serialiseHead): its description goes
 * into metadata.json under `head`, with the sha256 of head.bin, checked on every load.
 *
 * Versions are written to a temp folder and renamed into place, pointer files are
 * replaced by temp + rename, so a crash leaves the old state or the new one. Writes from
 * one process are queued per store folder; one process writes a store at a time.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { version_core as tfjsVersion } from '@tensorflow/tfjs-core';
import createDebug from 'debug';
import { LaneVisionError, isLaneVisionError } from '../errors.js';
import { listTemps, publishFolderAtomic, removeFolderAtomic, removeStaleTemps, writeFileAtomic, writeFileDurable } from '../fs/atomic.js';
import { deserialiseHead, serialiseHead, type HeadJson } from '../training/serialise.js';
import type { TrainedHead } from '../training/types.js';
import { deserialiseNoveltyIndex, serialiseNoveltyIndex, type NoveltyIndex } from '../open-set/novelty-index.js';
import { assignLabelCodes, emptyLabelCodeRegistry, mergeLabelCodes, validateLabels, type LabelCodeRegistry } from './label-codes.js';
import {
  MODEL_FORMAT_VERSION,
  TUNED_WEIGHTS_FILE,
  type TunedBackbone,
  type ActiveChange,
  type BackboneDescriptor,
  type LabelCode,
  type LoadedModel,
  type ModelMetadata,
  type ModelStoreEvents,
  type NoveltyFileSpec,
  type SaveModelInput,
  type VersionRef,
  type VersionSummary,
} from './types.js';

const debug = createDebug('lane-vision:model-store');

export const REGISTRY_FILE = 'registry.json';
export const ACTIVE_FILE = 'active.json';
export const METADATA_FILE = 'metadata.json';
export const HEAD_FILE = 'head.bin';
export const NOVELTY_FILE = 'novelty.bin';
/** Activations remembered for rollback. */
const ACTIVE_HISTORY_LIMIT = 50;
const VERSION_FOLDER = /^v(\d+)$/;

interface RegistryFile {
  formatVersion: number;
  lastVersion: number;
  labelCodes: LabelCodeRegistry;
}

interface ActiveFile {
  formatVersion: number;
  version: number;
  /** Versions activated before, oldest first; the last entry is `version`. */
  history: number[];
  activatedAt: string;
}

export function versionFolderName(version: number): string {
  return `v${String(version).padStart(4, '0')}`;
}

const stores = new Map<string, ModelStore>();

/**
 * The store in `dir` (created on first save). Every caller in this process that opens the
 * same folder gets the same object, so they share its write queue and its change events:
 * a classifier hears `active` as soon as a trainer saves or activates a version.
 */
export async function openModelStore(dir: string): Promise<ModelStore> {
  if (typeof dir !== 'string' || dir.trim() === '') {
    throw new LaneVisionError('MODEL_STORE_INVALID', 'The model store needs a folder path');
  }
  const resolved = path.resolve(dir);
  const stat = await fsp.stat(resolved).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new LaneVisionError('MODEL_STORE_INVALID', `Cannot open model store ${resolved}: ${err.message}`, { cause: err });
  });
  if (stat && !stat.isDirectory()) {
    throw new LaneVisionError('MODEL_STORE_INVALID', `Model store ${resolved} is a file, not a folder`);
  }
  let store = stores.get(resolved);
  if (!store) {
    store = new ModelStore(resolved);
    stores.set(resolved, store);
  }
  if (stat) await store.cleanUp();
  return store;
}

export class ModelStore extends EventEmitter<ModelStoreEvents> {
  readonly dir: string;
  private queue: Promise<unknown> = Promise.resolve();

  /** Use `openModelStore`, which shares one instance per folder. */
  constructor(dir: string) {
    super();
    this.dir = dir;
    // Every classifier node of a flow may listen; that is not a leak.
    this.setMaxListeners(200);
  }

  /** Saves a trained head as the next version; by default also makes it the active one. */
  saveModel(input: SaveModelInput): Promise<VersionSummary & { metadata: ModelMetadata }> {
    // Validate before queueing, so a bad call fails fast and never touches the disk.
    const prepared = prepareSave(input);
    return this.exclusive(async () => {
      await fsp.mkdir(this.dir, { recursive: true });
      await this.removeLeftovers();
      const registry = await this.currentRegistry();
      const { classes, registry: labelCodes, added } = prepared.labelCodes
        ? keepLabelCodes(prepared.labels, prepared.labelCodes, registry.labelCodes, this.dir)
        : assignLabelCodes(prepared.labels, registry.labelCodes);
      const version = registry.lastVersion + 1;
      const name = versionFolderName(version);
      const now = new Date().toISOString();
      const metadata: ModelMetadata = {
        tfjsVersion,
        packageName: PACKAGE.name,
        packageVersion: PACKAGE.version,
        modelName: input.modelName ?? `lane-vision-${name}`,
        timeStamp: now,
        labels: classes.map((c) => c.label),
        userMetadata: prepared.userMetadata,
        imageSize: input.backbone.inputSize.width,
        formatVersion: MODEL_FORMAT_VERSION,
        version,
        classes,
        backbone: prepared.backbone,
        head: { ...prepared.headJson, file: HEAD_FILE, sha256: sha256(prepared.headData) },
        metrics: prepared.metrics,
        datasetFingerprint: input.datasetFingerprint,
        createdAt: now,
      };
      if (input.notes !== undefined) metadata.notes = String(input.notes);
      if (input.importedFrom) metadata.importedFrom = prepared.importedFrom;
      if (prepared.pipeline) metadata.pipeline = prepared.pipeline;
      if (prepared.openSet) metadata.openSet = prepared.openSet;
      if (prepared.noveltyData && input.novelty) {
        metadata.novelty = {
          file: NOVELTY_FILE,
          sha256: sha256(prepared.noveltyData),
          byteLength: prepared.noveltyData.byteLength,
          count: input.novelty.count,
          featureSize: input.novelty.featureSize,
          encoding: 'int8-row-scaled',
        };
      }

      // Registry first: if we crash after it, a version number and new codes are merely
      // skipped, never handed out twice.
      await this.writeRegistry({ formatVersion: MODEL_FORMAT_VERSION, lastVersion: version, labelCodes });
      const finalDir = path.join(this.dir, name);
      try {
        await publishFolderAtomic(finalDir, async (temp) => {
          await writeFileDurable(path.join(temp, HEAD_FILE), prepared.headData);
          if (prepared.noveltyData) await writeFileDurable(path.join(temp, NOVELTY_FILE), prepared.noveltyData);
          if (input.tunedBackboneDir && prepared.backbone.tuned) {
            const into = path.join(temp, prepared.backbone.tuned.folder);
            await fsp.mkdir(into);
            for (const file of await fsp.readdir(input.tunedBackboneDir)) {
              await writeFileDurable(path.join(into, file), await fsp.readFile(path.join(input.tunedBackboneDir, file)));
            }
          }
          await writeFileDurable(path.join(temp, METADATA_FILE), JSON.stringify(metadata, null, 2) + '\n');
        });
      } catch (err) {
        throw new LaneVisionError('MODEL_STORE_WRITE_FAILED', `Could not write model ${name} to ${this.dir}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      debug('saved %s (%s, labels %o, new codes for %o)', name, prepared.headJson.kind, metadata.labels, added);
      let active = false;
      let change: ActiveChange | undefined;
      if (input.activate ?? true) {
        change = await this.writeActive(version, 'save');
        active = true;
      }
      const summary = { version, name, dir: finalDir };
      this.emit('saved', summary);
      if (change) this.emit('active', change);
      return { ...summary, active, createdAt: now, metrics: metadata.metrics, metadata };
    });
  }

  /** Every version, oldest first; unreadable ones are listed with `problem` instead of metadata. */
  async listVersions(): Promise<VersionSummary[]> {
    const versions = await this.versionNumbers();
    // A damaged pointer must not hide the list that helps to repair it.
    const active = (await this.readActive().catch(() => undefined))?.version;
    const summaries: VersionSummary[] = [];
    for (const version of versions) {
      const name = versionFolderName(version);
      const summary: VersionSummary = { version, name, dir: path.join(this.dir, name), active: version === active };
      try {
        const metadata = await this.readMetadata(version);
        Object.assign(summary, { metadata, createdAt: metadata.createdAt, metrics: metadata.metrics });
      } catch (err) {
        if (!isLaneVisionError(err)) throw err;
        summary.problem = { code: err.code, message: err.message };
      }
      summaries.push(summary);
    }
    return summaries;
  }

  /** The version number `ref` names now ('latest', 'active', 3, "v0003"). */
  async resolveVersion(ref: VersionRef): Promise<number> {
    if (ref === 'latest') {
      const versions = await this.versionNumbers();
      if (versions.length === 0) throw this.emptyError();
      return versions[versions.length - 1];
    }
    if (ref === 'active') {
      const active = await this.readActive();
      if (active) return active.version;
      const versions = await this.versionNumbers();
      if (versions.length === 0) throw this.emptyError();
      throw new LaneVisionError(
        'MODEL_VERSION_NOT_FOUND',
        `No model version is active in ${this.dir}; activate one of ${versions.map(versionFolderName).join(', ')}`,
      );
    }
    const version = typeof ref === 'number' ? ref : /^v?\d+$/.test(ref) ? Number(ref.replace(/^v/, '')) : NaN;
    if (!Number.isInteger(version) || version < 1) {
      throw new LaneVisionError('MODEL_VERSION_NOT_FOUND', `"${String(ref)}" is not a model version: use a number, v0003, latest or active`);
    }
    return version;
  }

  /** A version's metadata without loading its weights. */
  async readMetadata(ref: VersionRef): Promise<ModelMetadata> {
    const version = await this.resolveVersion(ref);
    const dir = path.join(this.dir, versionFolderName(version));
    const file = path.join(dir, METADATA_FILE);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        if (!fs.existsSync(dir)) {
          const versions = await this.versionNumbers();
          if (versions.length === 0) throw this.emptyError();
          throw new LaneVisionError(
            'MODEL_VERSION_NOT_FOUND',
            `Model ${versionFolderName(version)} is not in ${this.dir} (there: ${versions.map(versionFolderName).join(', ')})`,
          );
        }
        throw new LaneVisionError('MODEL_CORRUPT', `Model ${versionFolderName(version)} has no ${METADATA_FILE} (${file})`);
      }
      throw new LaneVisionError('MODEL_CORRUPT', `Cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new LaneVisionError('MODEL_CORRUPT', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    return checkMetadata(parsed, version, file);
  }

  /** Metadata and head of a version; the weights are checked against their recorded sha256. */
  async loadModel(ref: VersionRef = 'active'): Promise<LoadedModel> {
    const metadata = await this.readMetadata(ref);
    const dir = path.join(this.dir, versionFolderName(metadata.version));
    const file = path.join(dir, metadata.head.file);
    let data: Buffer;
    try {
      data = await fsp.readFile(file);
    } catch (err) {
      throw new LaneVisionError('MODEL_CORRUPT', `Model ${versionFolderName(metadata.version)} weights are missing (${file})`, { cause: err });
    }
    if (data.byteLength !== metadata.head.byteLength || sha256(data) !== metadata.head.sha256) {
      throw new LaneVisionError(
        'MODEL_CORRUPT',
        `Model ${versionFolderName(metadata.version)} weights do not match their checksum (${file}, ${data.byteLength} bytes, ${metadata.head.byteLength} expected)`,
      );
    }
    const head = readHead(metadata.head, data, file);
    const novelty = metadata.novelty ? await readNovelty(metadata.novelty, dir, metadata.version) : undefined;
    const tunedBackboneDir = metadata.backbone.tuned ? await checkTunedBackbone(metadata.backbone.tuned, dir, metadata.version) : undefined;
    return {
      version: metadata.version,
      dir,
      metadata,
      head,
      labels: metadata.classes.map((c) => c.label),
      codes: metadata.classes.map((c) => c.code),
      ...(novelty ? { novelty } : {}),
      ...(tunedBackboneDir ? { tunedBackboneDir } : {}),
    };
  }

  /** The active version number, or undefined when none was activated. */
  async activeVersion(): Promise<number | undefined> {
    return (await this.readActive())?.version;
  }

  /** Makes `ref` the version classifiers use, after checking it loads. */
  activate(ref: VersionRef): Promise<ActiveChange> {
    return this.exclusive(async () => {
      const version = await this.resolveVersion(ref);
      await this.loadModel(version);
      const change = await this.writeActive(version, 'activate');
      if (change.previous !== version) this.emit('active', change);
      return change;
    });
  }

  /** Goes back to the version that was active before the current one (skipping pruned ones). */
  rollback(): Promise<ActiveChange> {
    return this.exclusive(async () => {
      const active = await this.readActive();
      if (!active) throw new LaneVisionError('MODEL_ROLLBACK_UNAVAILABLE', `No model version is active in ${this.dir}, so there is nothing to roll back`);
      const existing = new Set(await this.versionNumbers());
      const history = rollbackHistory(active, existing);
      const target = history[history.length - 1];
      if (target === undefined) {
        throw new LaneVisionError(
          'MODEL_ROLLBACK_UNAVAILABLE',
          `No earlier active version of ${this.dir} is left to roll back to (active: ${versionFolderName(active.version)})`,
        );
      }
      await this.loadModel(target);
      const pointer: ActiveFile = { formatVersion: MODEL_FORMAT_VERSION, version: target, history, activatedAt: new Date().toISOString() };
      await writeFileAtomic(path.join(this.dir, ACTIVE_FILE), JSON.stringify(pointer, null, 2) + '\n');
      const change: ActiveChange = { version: target, previous: active.version, reason: 'rollback' };
      debug('rolled back %s -> %s', versionFolderName(active.version), versionFolderName(target));
      this.emit('active', change);
      return change;
    });
  }

  /**
   * Deletes all but the newest `keep` versions; the active version and the previous one
   * (what `rollback` would go back to) always stay. Returns the deleted numbers.
   */
  prune(options: { keep: number }): Promise<number[]> {
    const keep = options?.keep;
    if (!Number.isInteger(keep) || keep < 1) {
      return Promise.reject(new LaneVisionError('MODEL_STORE_INVALID', `prune needs keep >= 1 (got ${String(keep)})`));
    }
    return this.exclusive(async () => {
      const versions = await this.versionNumbers();
      const active = await this.readActive();
      const kept = new Set(versions.slice(-keep));
      if (active !== undefined) {
        kept.add(active.version);
        const previous = rollbackTarget(active, new Set(versions));
        if (previous !== undefined) kept.add(previous);
      }
      const removed: number[] = [];
      for (const version of versions) {
        if (kept.has(version)) continue;
        await removeFolderAtomic(path.join(this.dir, versionFolderName(version)));
        removed.push(version);
      }
      if (removed.length) {
        debug('pruned %o', removed.map(versionFolderName));
        this.emit('pruned', removed);
      }
      return removed;
    });
  }

  /** The version `rollback` would go back to now, or undefined when there is none. */
  async previousVersion(): Promise<number | undefined> {
    const active = await this.readActive();
    return active ? rollbackTarget(active, new Set(await this.versionNumbers())) : undefined;
  }

  /** Every label code the store has ever given. */
  async labelCodes(): Promise<LabelCodeRegistry> {
    return (await this.currentRegistry()).labelCodes;
  }

  /**
   * Calls `listener` whenever the active version changes: at once for changes made
   * through this process, and every `pollIntervalMs` (if given) for changes made by
   * another process (e.g. the CLI). No fs.watch: it is unreliable on network drives.
   * Returns a function that stops listening.
   */
  watchActive(listener: (change: ActiveChange) => void, options: { pollIntervalMs?: number } = {}): () => void {
    let known: number | undefined;
    let knownSet = false;
    const deliver = (change: ActiveChange): void => {
      if (knownSet && change.version === known) return;
      known = change.version;
      knownSet = true;
      listener(change);
    };
    this.on('active', deliver);
    this.activeVersion().then(
      (version) => {
        if (!knownSet) {
          known = version;
          knownSet = true;
        }
      },
      () => undefined,
    );
    let timer: NodeJS.Timeout | undefined;
    if (options.pollIntervalMs !== undefined) {
      if (!(options.pollIntervalMs > 0)) throw new LaneVisionError('MODEL_STORE_INVALID', 'pollIntervalMs must be above 0');
      let busy = false;
      timer = setInterval(() => {
        if (busy || !knownSet) return;
        busy = true;
        this.activeVersion()
          .then((version) => {
            if (version !== undefined && version !== known) deliver({ version, previous: known, reason: 'external' });
          })
          .catch((err) => debug('polling %s failed: %s', this.dir, (err as Error).message))
          .finally(() => {
            busy = false;
          });
      }, options.pollIntervalMs);
      timer.unref();
    }
    return () => {
      this.off('active', deliver);
      if (timer) clearInterval(timer);
    };
  }

  /** Removes leftovers of crashed writes. Runs on open and before each save. */
  cleanUp(): Promise<string[]> {
    return this.exclusive(() => this.removeLeftovers());
  }

  /** Call inside `exclusive`: then none of this store's own temps is in flight. */
  private async removeLeftovers(): Promise<string[]> {
    const removed = await removeStaleTemps(await listTemps(this.dir));
    return removed.map((temp) => path.basename(temp));
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private emptyError(): LaneVisionError {
    return new LaneVisionError('MODEL_STORE_EMPTY', `No model has been saved in ${this.dir} yet: train or import one first`);
  }

  private async versionNumbers(): Promise<number[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new LaneVisionError('MODEL_STORE_INVALID', `Cannot read model store ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    return names
      .map((name) => VERSION_FOLDER.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  }

  private async readActive(): Promise<ActiveFile | undefined> {
    const file = path.join(this.dir, ACTIVE_FILE);
    const parsed = await readJson(file);
    if (parsed === undefined) return undefined;
    const active = parsed as Partial<ActiveFile>;
    if (!isPositiveInt(active.version) || !Array.isArray(active.history) || !active.history.every((v) => isPositiveInt(v))) {
      throw new LaneVisionError('MODEL_CORRUPT', `${file} does not name an active version; activate one again`);
    }
    return active as ActiveFile;
  }

  private async writeActive(version: number, reason: ActiveChange['reason']): Promise<ActiveChange> {
    const current = await this.readActive().catch((err) => {
      // A damaged pointer is replaced by the new one rather than blocking every save.
      debug('replacing unreadable %s: %s', ACTIVE_FILE, (err as Error).message);
      return undefined;
    });
    const change: ActiveChange = { version, previous: current?.version, reason };
    if (current?.version === version) return change;
    const history = [...(current?.history ?? []), version].slice(-ACTIVE_HISTORY_LIMIT);
    const pointer: ActiveFile = { formatVersion: MODEL_FORMAT_VERSION, version, history, activatedAt: new Date().toISOString() };
    await writeFileAtomic(path.join(this.dir, ACTIVE_FILE), JSON.stringify(pointer, null, 2) + '\n');
    debug('active %s (was %s, %s)', versionFolderName(version), current ? versionFolderName(current.version) : 'none', reason);
    return change;
  }

  /**
   * The registry file joined with what the version folders say, so a lost or stale
   * registry can never hand out a version number or a label code twice.
   */
  private async currentRegistry(): Promise<RegistryFile> {
    const file = path.join(this.dir, REGISTRY_FILE);
    const parsed = (await readJson(file)) as Partial<RegistryFile> | undefined;
    let labelCodes = emptyLabelCodeRegistry();
    let lastVersion = 0;
    if (parsed !== undefined) {
      const codes = parsed.labelCodes;
      if (
        !(Number.isInteger(parsed.lastVersion) && (parsed.lastVersion as number) >= 0) ||
        !codes ||
        !Array.isArray(codes.codes) ||
        !Number.isInteger(codes.nextCode) ||
        !codes.codes.every((c) => typeof c?.label === 'string' && Number.isInteger(c.code))
      ) {
        throw new LaneVisionError('MODEL_CORRUPT', `${file} is damaged; it holds the label codes your PLC relies on, so restore it from a backup`);
      }
      labelCodes = mergeLabelCodes(emptyLabelCodeRegistry(), codes.codes);
      labelCodes.nextCode = Math.max(labelCodes.nextCode, codes.nextCode);
      lastVersion = parsed.lastVersion as number;
    }
    for (const version of await this.versionNumbers()) {
      lastVersion = Math.max(lastVersion, version);
      let metadata: ModelMetadata;
      try {
        metadata = await this.readMetadata(version);
      } catch (err) {
        if (!isLaneVisionError(err)) throw err;
        debug('registry: skipping unreadable %s: %s', versionFolderName(version), err.message);
        continue;
      }
      labelCodes = mergeLabelCodes(labelCodes, metadata.classes);
    }
    return { formatVersion: MODEL_FORMAT_VERSION, lastVersion, labelCodes };
  }

  private async writeRegistry(registry: RegistryFile): Promise<void> {
    await writeFileAtomic(path.join(this.dir, REGISTRY_FILE), JSON.stringify(registry, null, 2) + '\n');
  }
}

/**
 * The codes a version brings along (one made by another station of the fleet), kept as they
 * are: a PLC reads the same code for a label on every lane. Refused when this store already
 * gave the label another code, or the code to another label.
 */
function keepLabelCodes(labels: readonly string[], given: readonly LabelCode[], registry: LabelCodeRegistry, dir: string) {
  const byLabel = new Map(given.map((c) => [c.label, c.code]));
  const classes = labels.map((label) => {
    const code = byLabel.get(label);
    if (!Number.isInteger(code) || (code as number) < 1) throw new LaneVisionError('MODEL_INVALID', `No label code was given for "${label}"`);
    return { label, code: code as number };
  });
  let merged: LabelCodeRegistry;
  try {
    merged = mergeLabelCodes(registry, classes);
  } catch (err) {
    throw new LaneVisionError('MODEL_CODES_CONFLICT', `The version's label codes clash with those of ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const known = new Set(registry.codes.map((c) => c.label));
  return { classes, registry: merged, added: classes.filter((c) => !known.has(c.label)).map((c) => c.label) };
}

/** The activation history rollback leaves: earlier entries that still exist, the last one being its target. */
function rollbackHistory(active: ActiveFile, existing: ReadonlySet<number>): number[] {
  const history = active.history.slice(0, -1);
  while (history.length > 0 && (!existing.has(history[history.length - 1]) || history[history.length - 1] === active.version)) {
    history.pop();
  }
  return history;
}

function rollbackTarget(active: ActiveFile, existing: ReadonlySet<number>): number | undefined {
  const history = rollbackHistory(active, existing);
  return history[history.length - 1];
}

/** Everything checked and encoded before the write queue is entered. */
function prepareSave(input: SaveModelInput) {
  if (!input || typeof input !== 'object') throw new LaneVisionError('MODEL_INVALID', 'saveModel needs {head, labels, backbone, datasetFingerprint}');
  validateLabels(input.labels);
  const { json: headJson, weights: headData } = writeHead(input.head);
  if (input.head.classCount !== input.labels.length) {
    throw new LaneVisionError('MODEL_INVALID', `The head has ${input.head.classCount} classes but ${input.labels.length} labels were given`);
  }
  const backbone = checkBackbone(input.backbone, 'MODEL_INVALID', 'backbone');
  if (backbone.featureSize !== input.head.featureSize) {
    throw new LaneVisionError(
      'MODEL_INVALID',
      `The head expects ${input.head.featureSize} features but backbone ${backbone.id} gives ${backbone.featureSize}`,
    );
  }
  if (input.datasetFingerprint !== null && typeof input.datasetFingerprint !== 'string') {
    throw new LaneVisionError('MODEL_INVALID', 'datasetFingerprint must be a text (or null when unknown)');
  }
  return {
    labels: input.labels,
    headJson,
    headData,
    backbone,
    metrics: jsonCopy(input.metrics ?? {}, 'metrics'),
    userMetadata: jsonCopy(input.userMetadata ?? {}, 'userMetadata'),
    importedFrom: input.importedFrom ? jsonCopy(input.importedFrom, 'importedFrom') : undefined,
    pipeline: input.pipeline ? jsonCopy(input.pipeline, 'pipeline') : undefined,
    openSet: input.openSet ? jsonCopy(input.openSet, 'openSet') : undefined,
    noveltyData: input.novelty ? noveltyBytes(input.novelty, input.head.featureSize) : undefined,
    labelCodes: input.labelCodes ? jsonCopy(input.labelCodes, 'labelCodes') : undefined,
  };
}

function noveltyBytes(index: NoveltyIndex, featureSize: number): Buffer {
  if (index.featureSize !== featureSize) {
    throw new LaneVisionError('MODEL_INVALID', `The novelty index holds ${index.featureSize} features per frame but the head takes ${featureSize}`);
  }
  return serialiseNoveltyIndex(index);
}

/** The head in the training module's format; a head that cannot be stored is MODEL_INVALID. */
function writeHead(head: TrainedHead): { json: HeadJson; weights: Buffer } {
  try {
    return serialiseHead(head);
  } catch (err) {
    if (!isLaneVisionError(err, 'HEAD_INVALID')) throw err;
    throw new LaneVisionError('MODEL_INVALID', `Cannot save this model: ${err.message}`, { cause: err });
  }
}

/** A version's novelty index, checked against its recorded sha256; anything off is MODEL_CORRUPT. */
async function readNovelty(spec: NoveltyFileSpec, dir: string, version: number): Promise<NoveltyIndex> {
  const name = versionFolderName(version);
  if (typeof spec.file !== 'string' || spec.file !== path.basename(spec.file) || spec.file.startsWith('.')) {
    throw new LaneVisionError('MODEL_CORRUPT', `Model ${name} names a bad novelty index file`);
  }
  const file = path.join(dir, spec.file);
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (err) {
    throw new LaneVisionError('MODEL_CORRUPT', `Model ${name} novelty index is missing (${file})`, { cause: err });
  }
  if (data.byteLength !== spec.byteLength || sha256(data) !== spec.sha256) {
    throw new LaneVisionError('MODEL_CORRUPT', `Model ${name} novelty index does not match its checksum (${file})`);
  }
  try {
    return deserialiseNoveltyIndex(data, spec);
  } catch (err) {
    throw new LaneVisionError('MODEL_CORRUPT', `Model ${name} novelty index is damaged: ${(err as Error).message}`, { cause: err });
  }
}

/** The head of a version whose checksum matched; anything inconsistent is MODEL_CORRUPT. */
function readHead(spec: ModelMetadata['head'], weights: Buffer, file: string): TrainedHead {
  const { file: _file, sha256: _sha256, ...json } = spec;
  try {
    return deserialiseHead(json, weights);
  } catch (err) {
    if (!isLaneVisionError(err, 'HEAD_INVALID')) throw err;
    throw new LaneVisionError('MODEL_CORRUPT', `${file} is damaged or does not match its metadata.json: ${err.message}`, { cause: err });
  }
}

/** The tuned backbone folder of a version, after checking its weights against the stored hash. */
async function checkTunedBackbone(tuned: TunedBackbone, dir: string, version: number): Promise<string> {
  const folder = path.join(dir, tuned.folder);
  const file = path.join(folder, TUNED_WEIGHTS_FILE);
  const data = await fsp.readFile(file).catch((err: unknown) => {
    throw new LaneVisionError('MODEL_CORRUPT', `Model ${versionFolderName(version)}'s tuned backbone is missing (${file})`, { cause: err });
  });
  if (sha256(data) !== tuned.sha256) throw new LaneVisionError('MODEL_CORRUPT', `Model ${versionFolderName(version)}'s tuned backbone does not match its checksum (${file})`);
  return folder;
}

function checkBackbone(value: unknown, code: string, where: string): BackboneDescriptor {
  const b = value as BackboneDescriptor;
  const problem =
    !b || typeof b !== 'object'
      ? 'missing'
      : typeof b.id !== 'string' || b.id === ''
        ? 'no id'
        : typeof b.source !== 'string'
          ? 'no source'
          : !isPositiveInt(b.featureSize)
            ? 'featureSize is not a positive integer'
            : !b.inputSize || !isPositiveInt(b.inputSize.width) || !isPositiveInt(b.inputSize.height)
              ? 'inputSize needs positive width and height'
              : typeof b.inputRange !== 'string'
                ? 'no inputRange'
                : !b.fit || typeof b.fit.kind !== 'string'
                  ? 'no fit policy'
                  : b.featureLayerAliases !== undefined && !(Array.isArray(b.featureLayerAliases) && b.featureLayerAliases.every((n) => typeof n === 'string'))
                    ? 'featureLayerAliases is not a list of layer names'
                    : b.weightsFingerprint !== undefined && !/^[0-9a-f]{64}$/.test(String(b.weightsFingerprint))
                      ? 'weightsFingerprint is not a sha256 in hex'
                      : undefined;
  if (problem) throw new LaneVisionError(code, `The ${where} description is incomplete: ${problem}`);
  // Pick the descriptor's fields: a loaded engine Backbone may be passed as it is.
  const { id, source, preset, featureLayer, featureLayerAliases, weightsFingerprint, featureSize, inputSize, inputRange, fit, tuned } = b;
  if (tuned !== undefined) {
    const ok = tuned && typeof tuned.from === 'string' && /^[\w.-]+$/.test(String(tuned.folder)) && /^[0-9a-f]{64}$/.test(String(tuned.sha256)) && isPositiveInt(tuned.blocks) && typeof tuned.cut === 'string';
    if (!ok) throw new LaneVisionError(code, `The ${where} description is incomplete: tuned needs from, folder, sha256, blocks and cut`);
  }
  return jsonCopy(
    {
      id,
      source,
      ...(preset !== undefined ? { preset } : {}),
      ...(featureLayer !== undefined ? { featureLayer } : {}),
      ...(featureLayerAliases !== undefined ? { featureLayerAliases: [...featureLayerAliases] } : {}),
      ...(weightsFingerprint !== undefined ? { weightsFingerprint } : {}),
      featureSize,
      inputSize: { width: inputSize.width, height: inputSize.height },
      inputRange,
      fit,
      ...(tuned !== undefined ? { tuned: { from: tuned.from, folder: tuned.folder, sha256: tuned.sha256, blocks: tuned.blocks, cut: tuned.cut } } : {}),
    },
    where,
  );
}

/** Refuses metadata that does not describe a usable version; never trusts the file blindly. */
function checkMetadata(value: unknown, version: number, file: string): ModelMetadata {
  const corrupt = (why: string): never => {
    throw new LaneVisionError('MODEL_CORRUPT', `${file} is damaged: ${why}`);
  };
  if (!value || typeof value !== 'object') return corrupt('not an object');
  const m = value as ModelMetadata;
  if (!Number.isInteger(m.formatVersion)) corrupt('no formatVersion');
  if (m.formatVersion > MODEL_FORMAT_VERSION) {
    throw new LaneVisionError(
      'MODEL_FORMAT_UNSUPPORTED',
      `${file} has format ${m.formatVersion}; this Lane Vision reads up to ${MODEL_FORMAT_VERSION}: update it`,
    );
  }
  if (m.version !== version) corrupt(`it says version ${String(m.version)} but sits in ${versionFolderName(version)}`);
  if (!Array.isArray(m.classes) || m.classes.length === 0) corrupt('no classes');
  for (const c of m.classes) {
    if (typeof c?.label !== 'string' || !Number.isInteger(c.code)) corrupt('a class lacks its label or code');
  }
  const head = m.head;
  if (!head || typeof head !== 'object' || !Array.isArray(head.tensors)) corrupt('no head description');
  if (typeof head.file !== 'string' || head.file !== path.basename(head.file) || head.file.startsWith('.')) corrupt('bad head file name');
  if (typeof head.sha256 !== 'string' || !Number.isInteger(head.byteLength)) corrupt('no head checksum');
  if (head.classCount !== m.classes.length) corrupt(`head has ${head.classCount} classes, metadata ${m.classes.length}`);
  checkBackbone(m.backbone, 'MODEL_CORRUPT', `backbone in ${file}`);
  if (!Array.isArray(m.labels) || m.labels.join('\u0000') !== m.classes.map((c) => c.label).join('\u0000')) {
    corrupt('labels and classes disagree');
  }
  return m;
}

function jsonCopy<T>(value: T, what: string): T {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new LaneVisionError('MODEL_INVALID', `${what} cannot be stored as JSON: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new LaneVisionError('MODEL_INVALID', `${what} cannot be stored as JSON`);
  return JSON.parse(text) as T;
}

/** Parsed JSON, undefined when the file does not exist, MODEL_CORRUPT when it is not JSON. */
async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LaneVisionError('MODEL_CORRUPT', `Cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new LaneVisionError('MODEL_CORRUPT', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function isPositiveInt(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** This package's name and version, for the metadata (works from src/ under tsx and from dist/). */
const PACKAGE = ((): { name: string; version: string } => {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'node-red-contrib-lane-vision') return { name: pkg.name, version: pkg.version ?? '0.0.0' };
    } catch {
      // not here; keep walking up
    }
    if (path.dirname(dir) === dir) return { name: 'node-red-contrib-lane-vision', version: '0.0.0' };
  }
})();
