/**
 * What one lane-console node does, without Node-RED: keeps the latest frames and the
 * unsure ones, teaches (captures into the dataset, deletes, relabels), trains a candidate
 * model without making it active, promotes / discards / rolls back, finds similar stored
 * frames, and pushes every change to the open pages over its event stream.
 * The work itself is the library's (dataset, model store, retrain, SimilarityIndex).
 */
import { errorText } from '../errors.js';
import { readRejectLabels, writeRejectLabels } from '../open-set/index.js';
import type { ReviewQueue } from '../review/index.js';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXPORT_DESCRIPTION_FILE, exportModel, type ExportFormat } from '../export/index.js';
import type { ClassificationResult } from '../classify/index.js';
import { SimilarityIndex } from '../classify/index.js';
import type { Dataset, DatasetEntry } from '../dataset/index.js';
import type { Backbone } from '../engine/index.js';
import { embedImages } from '../features/index.js';
import { readImageSource, type FitPolicy, type ImageInput } from '../image/index.js';
import { versionFolderName, type ModelStore } from '../model-store/index.js';
import {
  isRetraining,
  MIN_IMAGES_PER_LABEL,
  retrain,
  type RetrainMetrics,
  type RetrainOptions,
  type RetrainProgress,
  type RetrainResult,
} from '../retrain/index.js';
import type { HeadMetrics } from '../training/index.js';
import { EventHub } from './event-stream.js';
import { FrameStore, imageInputOf, jpegThumbnail, type StoredFrame, type ThumbnailSize, THUMBNAIL_BOX } from './frame-store.js';
import { LiveStats } from './live-stats.js';
import type {
  BackboneView,
  CaptureView,
  ConsoleSettings,
  DatasetView,
  GalleryView,
  ModelReport,
  ModelsView,
  SimilarView,
  ReviewView,
  StateView,
  TrainView,
} from './types.js';
import { HttpError, type WriteRequest } from './write-requests.js';

export interface OperatorConsoleOptions {
  settings: ConsoleSettings;
  node: { id: string; name: string };
  /** httpAdminRoot with a trailing slash, or null when the admin API is off. */
  adminRoot: string | null;
  dataset: () => Promise<Dataset>;
  models: () => Promise<ModelStore>;
  /** The lane's review queue (frames sent to inspection or decided by a hair), when there is one. */
  review?: () => Promise<ReviewQueue>;
  /** The shared backbone, acquired by the node; training and "similar" wait for it. */
  backbone: Promise<Backbone>;
  fit: FitPolicy;
  /** Runs a retrain (the backbone node's, off the main thread). Default: `retrain` on this thread. */
  retrain?: (options: RetrainOptions) => Promise<RetrainResult>;
  /** Called when something the node status shows changed (viewers, training). */
  onActivity?: () => void;
}

/** Images per label the gallery lists (newest first); the counts always cover all. */
export const GALLERY_PER_LABEL = 120;
/** Thumbnails of dataset images kept in memory (~10 kB each). */
const IMAGE_THUMBNAILS_KEPT = 600;
const TICK_MS = 1_000;
const MAX_HISTORY = 1_000;
const SIMILAR_DEFAULT = 8;
/** Dataset image ids remembered as handed to a page, so a thumbnail asked for after the image left the dataset gets a placeholder. */
const LISTED_IMAGES_KEPT = 5_000;
/** Review frames the page lists (the newest); the total counts all. */
const REVIEW_ITEMS_SHOWN = 60;

export type WriteResult = Record<string, unknown>;

interface CaptureRun extends CaptureView {
  author?: string;
  /** Frames whose write finished (stored, duplicate or failed). */
  settled: number;
}

function datasetViewOf(dataset: Dataset): DatasetView {
  return { counts: dataset.counts(), total: dataset.size, revision: dataset.revision };
}

function shortSha(sha: string): string {
  return sha.slice(0, 12);
}

/** What the Train section shows of a version, from its stored metrics (imported models have none). */
function reportOf(version: number, stored: Record<string, unknown> | undefined): Omit<ModelReport, 'labels'> {
  const metrics = (stored ?? {}) as Partial<RetrainMetrics>;
  return {
    version,
    holdout: holdoutOf(stored),
    threshold: metrics.threshold,
    trainCount: metrics.trainCount,
    holdoutCount: metrics.holdoutCount,
    ...(metrics.validation ? { validation: metrics.validation } : {}),
    ...(metrics.pipeline ? { candidates: metrics.pipeline.candidates } : {}),
    ...(metrics.advice ? { advice: metrics.advice } : {}),
  };
}

/** The hold-out figures stored with a version, if it has them (imported models do not). */
function holdoutOf(metrics: Record<string, unknown> | undefined): HeadMetrics | undefined {
  const holdout = (metrics as Partial<RetrainMetrics> | undefined)?.holdout;
  return holdout && typeof holdout.accuracy === 'number' && Array.isArray(holdout.confusion) ? holdout : undefined;
}

export class OperatorConsole {
  readonly hub: EventHub;
  readonly frames: FrameStore;
  private readonly stats: LiveStats;
  private backboneView: BackboneView = { state: 'loading' };
  private backbone: Backbone | undefined;
  /** Exports being made or made, by folder: two clicks on a link make one export. */
  private readonly exports = new Map<string, Promise<string>>();
  private train: TrainView = { state: 'idle', history: [] };
  private training: { controller: AbortController; finished: Promise<void> } | undefined;
  private capture: CaptureRun | null = null;
  /** Dataset writes go one after another, in the order frames arrived. */
  private writes: Promise<unknown> = Promise.resolve();
  private similarity: { signature: string; index: Promise<SimilarityIndex> } | undefined;
  private readonly imageThumbnails = new Map<string, Promise<Buffer>>();
  /** Dataset image ids the gallery or "similar" listed (oldest first). */
  private readonly listedImages = new Set<string>();
  private datasetSignature = '';
  private reviewSignature = '';
  private ticker: NodeJS.Timeout | undefined;
  private modelsTimer: NodeJS.Timeout | undefined;
  private store: ModelStore | undefined;
  private readonly onStoreChange = () => this.modelsChanged();
  private closed = false;

  constructor(private readonly options: OperatorConsoleOptions) {
    this.frames = new FrameStore(options.settings.frames, options.settings.rejects);
    this.stats = new LiveStats(options.settings.windowMinutes);
    this.hub = new EventHub(() => this.viewersChanged());
    options.backbone.then(
      (backbone) => {
        this.backbone = backbone;
        this.setBackbone({ state: 'ready' });
      },
      (err: unknown) => this.setBackbone({ state: 'error', message: errorText(err) }),
    );
    // Model changes made elsewhere (lane-train, an MQTT rollback) reach the page too.
    options.models().then(
      (store) => {
        if (this.closed) return;
        this.store = store;
        store.on('saved', this.onStoreChange);
        store.on('active', this.onStoreChange);
        store.on('pruned', this.onStoreChange);
      },
      () => undefined, // reported when the page asks for the models
    );
  }

  get viewers(): number {
    return this.hub.viewers;
  }

  get isTraining(): boolean {
    return this.training !== undefined;
  }

  // #region frames in

  /** A frame from the flow: classified (msg.frame + msg.classification) or straight from the camera. */
  async receive(image: ImageInput, classification?: ClassificationResult, truth?: string): Promise<void> {
    // Never a path: the console would serve any image file of the host as a thumbnail.
    const source = await readImageSource(image, { files: 'none' });
    if (this.closed) return;
    const at = Date.now();
    const outcome = this.frames.add({ source, classification, truth, at });
    if (outcome.isNew) this.stats.arrived(at);
    if (classification && outcome.changed) this.stats.classified(at, classification.label, classification.timings?.totalMs, classification);
    if (outcome.changed) this.hub.send('frame', outcome.frame.view);
    if (outcome.rejected) this.sendRejects();
    if (outcome.isNew && this.capture) this.captureNextFrame(outcome.frame);
  }

  // #endregion

  // #region reads

  async state(): Promise<StateView> {
    return {
      node: { id: this.options.node.id, name: this.options.node.name, path: this.options.settings.path },
      adminRoot: this.options.adminRoot,
      settings: { frames: this.options.settings.frames, rejects: this.options.settings.rejects, windowMinutes: this.options.settings.windowMinutes },
      backbone: this.backboneView,
      frames: this.frames.frames().map((f) => f.view),
      rejects: this.frames.rejects().map((f) => f.view),
      stats: this.stats.snapshot(),
      dataset: await this.datasetView().catch(() => ({ counts: {}, total: 0, revision: 0 })),
      models: await this.modelsView().catch(() => ({ active: null, versions: [] })),
      train: this.train,
      capture: this.captureView(),
      review: await this.reviewView().catch(() => ({ items: [], total: 0 })),
      rejectLabels: await this.options.models().then((store) => readRejectLabels(store.dir), () => []),
    };
  }

  /** The review queue, newest first: what the Teach tab offers for one-click labelling. */
  async reviewView(): Promise<ReviewView> {
    if (!this.options.review) return { items: [], total: 0 };
    const queue = await this.options.review();
    const items = queue.list().slice(0, REVIEW_ITEMS_SHOWN).map(({ id, reason, label, confidence, margin, similarity, modelVersion, addedAt, frameHash }) => ({
      id,
      reason,
      label,
      confidence,
      margin,
      ...(similarity !== undefined ? { similarity } : {}),
      modelVersion,
      addedAt,
      sha: shortSha(frameHash),
    }));
    return { items, total: queue.size };
  }

  /** A reviewed frame's image, as a thumbnail. */
  async reviewThumbnail(id: string, size: ThumbnailSize): Promise<Buffer | undefined> {
    if (!this.options.review) return undefined;
    const queue = await this.options.review();
    const item = queue.find(id);
    return item ? jpegThumbnail(queue.imagePath(item), THUMBNAIL_BOX[size]) : undefined;
  }

  async datasetView(): Promise<DatasetView> {
    return datasetViewOf(await this.options.dataset());
  }

  async gallery(): Promise<GalleryView> {
    const dataset = await this.options.dataset();
    const byLabel = new Map<string, DatasetEntry[]>();
    for (const entry of await dataset.entries()) {
      if (!byLabel.has(entry.label)) byLabel.set(entry.label, []);
      byLabel.get(entry.label)!.push(entry);
    }
    const view: GalleryView = {
      perLabelLimit: GALLERY_PER_LABEL,
      labels: [...byLabel].map(([label, entries]) => ({
        label,
        count: entries.length,
        images: entries
          .filter((e) => !e.problem)
          .sort((a, b) => (a.addedAt < b.addedAt ? 1 : a.addedAt > b.addedAt ? -1 : 0))
          .slice(0, GALLERY_PER_LABEL)
          .map((e) => ({ id: e.id, sha: shortSha(e.sha256), addedAt: e.addedAt, ...(e.source ? { source: e.source } : {}) })),
      })),
    };
    this.noteListed(view.labels.flatMap((l) => l.images.map((i) => i.id)));
    return view;
  }

  private noteListed(ids: readonly string[]): void {
    for (const id of ids) {
      this.listedImages.delete(id); // re-inserted as the newest
      this.listedImages.add(id);
    }
    for (const id of this.listedImages) {
      if (this.listedImages.size <= LISTED_IMAGES_KEPT) break;
      this.listedImages.delete(id);
    }
  }

  /**
   * True for an image a page was shown that is no longer in the dataset (deleted, or
   * dropped by the label's cap since the page loaded its list): its thumbnail is a
   * placeholder saying so, not a 404.
   */
  async imageGone(id: string): Promise<boolean> {
    if (!this.listedImages.has(id)) return false;
    return (await (await this.options.dataset()).entry(id)) === undefined;
  }

  /**
   * A file of a version's export (ONNX or TensorFlow.js, see src/export), made on first
   * request into `<models>/exports/` and kept: a version never changes. Undefined when the
   * export has no such file.
   */
  async exportFile(version: number, format: ExportFormat, file: string): Promise<string | undefined> {
    const store = await this.options.models();
    const dir = path.join(store.dir, 'exports', `${versionFolderName(version)}-${format}`);
    const key = dir;
    let pending = this.exports.get(key);
    if (!pending) {
      pending = (async () => {
        if (!fs.existsSync(path.join(dir, EXPORT_DESCRIPTION_FILE))) {
          await fs.promises.mkdir(path.dirname(dir), { recursive: true });
          await exportModel({ store, version, format, outDir: dir });
        }
        return dir;
      })();
      this.exports.set(key, pending);
      pending.catch(() => this.exports.delete(key));
    }
    await pending;
    const description = JSON.parse(await fs.promises.readFile(path.join(dir, EXPORT_DESCRIPTION_FILE), 'utf8')) as { files: string[] };
    return file === EXPORT_DESCRIPTION_FILE || description.files.includes(file) ? path.join(dir, file) : undefined;
  }

  async modelsView(): Promise<ModelsView> {
    const store = await this.options.models();
    const versions = await store.listVersions();
    return {
      active: versions.find((v) => v.active)?.version ?? null,
      versions: versions
        .map((v) => {
          const holdout = holdoutOf(v.metrics);
          const metrics = v.metrics as Partial<RetrainMetrics> | undefined;
          return {
            version: v.version,
            active: v.active,
            createdAt: v.createdAt,
            labels: v.metadata?.labels ?? [],
            ...(holdout ? { accuracy: holdout.accuracy, macroF1: holdout.macroF1 } : {}),
            ...(typeof metrics?.trainCount === 'number' ? { trainCount: metrics.trainCount, holdoutCount: metrics.holdoutCount } : {}),
            ...(metrics?.validation ? { optimistic: metrics.validation.optimistic } : {}),
            ...(v.metadata?.pipeline ? { pipeline: v.metadata.pipeline.candidates.find((c) => c.chosen)?.name } : {}),
            ...(v.problem ? { problem: v.problem.message } : {}),
          };
        })
        .reverse(), // newest first
    };
  }

  frameThumbnail(id: number, size: ThumbnailSize): Promise<Buffer> | undefined {
    const frame = this.frames.find(id);
    return frame ? this.frames.thumbnail(frame, size) : undefined;
  }

  /** JPEG thumbnail of a dataset image, or undefined when there is no such image. */
  async imageThumbnail(id: string, size: ThumbnailSize): Promise<Buffer | undefined> {
    const dataset = await this.options.dataset();
    const entry = await dataset.entry(id);
    if (!entry) return undefined;
    const key = `${entry.sha256}|${size}`;
    let made = this.imageThumbnails.get(key);
    if (!made) {
      made = jpegThumbnail(entry.path, THUMBNAIL_BOX[size]);
      made.catch(() => this.imageThumbnails.delete(key));
      this.imageThumbnails.set(key, made);
      if (this.imageThumbnails.size > IMAGE_THUMBNAILS_KEPT) this.imageThumbnails.delete(this.imageThumbnails.keys().next().value!);
    }
    return made;
  }

  /** The stored frames nearest to a frame of the ring or the unsure queue. */
  async similar(frameId: number, k = SIMILAR_DEFAULT): Promise<SimilarView> {
    const frame = this.frames.find(frameId);
    if (!frame) throw new HttpError(404, `Frame ${frameId} is no longer kept; pick a newer one.`);
    const backbone = this.readyBackbone();
    const dataset = await this.options.dataset();
    const entries = (await dataset.entries()).filter((e) => !e.problem);
    const index = await this.similarityIndex(dataset, backbone, entries);
    const sha = new Map(entries.map((e) => [e.id, e.sha256]));
    const nearest = await index.similar(imageInputOf(frame.source), k);
    this.noteListed(nearest.map((n) => n.id));
    return {
      frame: frame.view,
      indexed: index.size,
      neighbours: nearest.map((n) => ({ id: n.id, label: n.label, similarity: n.similarity, sha: shortSha(sha.get(n.id) ?? '') })),
    };
  }

  // #endregion

  // #region writes

  /** Checks what the body alone cannot say (the frame, image or version exists; nothing conflicting runs). */
  async checkWrite(request: WriteRequest): Promise<void> {
    switch (request.action) {
      case 'capture':
        if (request.frames) this.framesOrThrow(request.frames);
        else if (request.count !== undefined) {
          if (this.capture) throw new HttpError(409, `Already capturing the next frames as "${this.capture.label}" (${this.capture.remaining} to go); stop that first.`);
        } else if (!this.frames.latest()) throw new HttpError(409, 'No frame has arrived yet: wire the camera or the classify node to the console.');
        return;
      case 'dismiss':
        return;
      case 'delete':
      case 'relabel': {
        const dataset = await this.options.dataset();
        if (!(await dataset.entry(request.id))) throw new HttpError(404, `No image with id ${JSON.stringify(request.id)} in the dataset (deleted meanwhile?).`);
        return;
      }
      case 'train': {
        if (this.backboneView.state === 'error') throw new HttpError(409, `The backbone could not be loaded: ${this.backboneView.message}`);
        const store = await this.options.models();
        if (this.training || isRetraining(store)) throw new HttpError(409, 'A training run for this lane is already under way; wait for it to finish.');
        const counts = (await this.options.dataset()).counts();
        const labels = Object.keys(counts);
        const short = labels.filter((l) => counts[l] < MIN_IMAGES_PER_LABEL);
        if (labels.length < 2 || short.length > 0) {
          throw new HttpError(
            409,
            labels.length < 2
              ? `Training needs at least 2 labels with ${MIN_IMAGES_PER_LABEL} or more frames each; the dataset has ${labels.length}.`
              : `Every label needs at least ${MIN_IMAGES_PER_LABEL} frames; too few for: ${short.map((l) => `${l} (${counts[l]})`).join(', ')}.`,
          );
        }
        return;
      }
      case 'cancel-train':
        if (!this.training) throw new HttpError(409, 'No training is running.');
        return;
      case 'promote':
      case 'discard': {
        const store = await this.options.models();
        const versions = await store.listVersions();
        const found = versions.find((v) => v.version === request.version);
        if (!found) throw new HttpError(404, `There is no model version ${request.version}.`);
        if (request.action === 'promote' && found.problem) throw new HttpError(409, `Version ${request.version} cannot be used: ${found.problem.message}`);
        return;
      }
      case 'rollback': {
        const store = await this.options.models();
        if ((await store.activeVersion()) === undefined) throw new HttpError(409, 'No model is in use, so there is nothing to roll back.');
        return;
      }
      case 'stop-capture':
        return;
    }
  }

  async write(request: WriteRequest, author?: string): Promise<WriteResult> {
    switch (request.action) {
      case 'capture':
        if (request.count !== undefined) return this.startCapture(request.label, request.count, author);
        return this.captureFrames(request.label, request.frames ? this.framesOrThrow(request.frames) : [this.frames.latest()!], author);
      case 'stop-capture':
        return { stopped: this.stopCapture() };
      case 'dismiss': {
        const removed = this.frames.removeRejects(request.frames);
        if (removed) this.sendRejects();
        return { removed };
      }
      case 'delete': {
        const removed = await this.queueWrite(async () => (await this.options.dataset()).remove(request.id));
        this.datasetChanged();
        return { removed: { id: removed.id, label: removed.label } };
      }
      case 'relabel': {
        const moved = await this.queueWrite(async () => (await this.options.dataset()).relabel(request.id, request.label));
        this.datasetChanged();
        return { moved: { id: moved.id, label: moved.label } };
      }
      case 'train':
        return this.startTraining(request);
      case 'review-label': {
        const queue = await this.reviewQueue();
        const item = queue.find(request.id);
        if (!item) throw new HttpError(404, `No frame ${JSON.stringify(request.id)} in the review queue (labelled or dismissed meanwhile?).`);
        const added = await this.queueWrite(async () => (await this.options.dataset()).add(request.label, queue.imagePath(item), { source: 'console:review', author }));
        await queue.remove(item.id);
        this.datasetChanged();
        this.reviewChanged();
        return { added: { id: added.id, label: added.label, duplicate: added.duplicate } };
      }
      case 'mark-reject': {
        const store = await this.options.models();
        const marked = new Set(await readRejectLabels(store.dir));
        if (request.reject) marked.add(request.label);
        else marked.delete(request.label);
        await writeRejectLabels(store.dir, [...marked]);
        this.hub.send('reject-labels', [...marked].sort());
        return { rejectLabels: [...marked].sort() };
      }
      case 'review-dismiss': {
        const removed = await (await this.reviewQueue()).remove(request.id);
        if (!removed) throw new HttpError(404, `No frame ${JSON.stringify(request.id)} in the review queue.`);
        this.reviewChanged();
        return { dismissed: removed.id };
      }
      case 'cancel-train':
        this.training?.controller.abort();
        return { cancelling: true };
      case 'promote': {
        const store = await this.options.models();
        const change = await store.activate(request.version);
        if (this.train.candidate?.version === request.version) this.setTrain({ state: 'idle', history: [] });
        return { active: change.version, previous: change.previous ?? null };
      }
      case 'discard':
        // The version stays on disk, unused (pruning removes old versions); the page stops offering it.
        if (this.train.candidate?.version === request.version) this.setTrain({ state: 'idle', history: [] });
        return { discarded: request.version };
      case 'rollback': {
        const store = await this.options.models();
        const change = await store.rollback();
        return { active: change.version, previous: change.previous ?? null };
      }
    }
  }

  private framesOrThrow(ids: readonly number[]): StoredFrame[] {
    return ids.map((id) => {
      const frame = this.frames.find(id);
      if (!frame) throw new HttpError(404, `Frame ${id} is no longer kept (only the latest ${this.options.settings.frames} are); pick a newer one.`);
      return frame;
    });
  }

  private queueWrite<T>(task: () => Promise<T>): Promise<T> {
    const run = this.writes.then(task);
    this.writes = run.catch(() => undefined);
    return run;
  }

  private async addToDataset(label: string, frame: StoredFrame, author?: string) {
    const dataset = await this.options.dataset();
    const added = await dataset.add(label, imageInputOf(frame.source), { source: 'lane-console', ...(author ? { author } : {}) });
    this.warmFeatures(frame);
    return added;
  }

  /** Embeds a captured frame in the background, so the next training only waits for what is new. */
  private warmFeatures(frame: StoredFrame): void {
    if (!this.backbone) return;
    embedImages(this.backbone, [imageInputOf(frame.source)], { fit: this.options.fit }).catch(() => undefined);
  }

  private async captureFrames(label: string, frames: StoredFrame[], author?: string): Promise<WriteResult> {
    const result = await this.queueWrite(async () => {
      const added: { frame: number; id: string }[] = [];
      const duplicates: { frame: number; id: string; label: string }[] = [];
      for (const frame of frames) {
        const entry = await this.addToDataset(label, frame, author);
        if (entry.duplicate) duplicates.push({ frame: frame.view.id, id: entry.id, label: entry.label });
        else added.push({ frame: frame.view.id, id: entry.id });
        this.markStored(frame, entry.label);
      }
      return { label, added, duplicates };
    });
    // Labelled now: they leave the unsure queue.
    if (this.frames.removeRejects(frames.map((f) => f.view.id))) this.sendRejects();
    this.datasetChanged();
    return result;
  }

  private markStored(frame: StoredFrame, label: string): void {
    frame.view.stored = label;
    this.hub.send('frame', frame.view);
  }

  private startCapture(label: string, count: number, author?: string): WriteResult {
    this.capture = { label, total: count, remaining: count, added: 0, duplicates: 0, author, settled: 0 };
    this.hub.send('capture', this.captureView());
    return { capturing: this.captureView() };
  }

  private captureNextFrame(frame: StoredFrame): void {
    const run = this.capture!;
    run.remaining--;
    if (run.remaining === 0) this.capture = null; // later frames are not this run's
    this.queueWrite(() => this.addToDataset(run.label, frame, run.author)).then(
      (entry) => {
        run.settled++;
        if (entry.duplicate) run.duplicates++;
        else run.added++;
        this.markStored(frame, entry.label);
        this.datasetChanged();
        // Progress while it runs; the end once its last frame is written (a stopped run already said so).
        if (this.capture === run) this.hub.send('capture', this.captureView());
        else if (run.remaining === 0 && run.settled === run.total) this.hub.send('capture', null);
      },
      (err: unknown) => {
        run.settled++;
        const wasRunning = this.capture === run || run.remaining === 0;
        if (this.capture === run) this.capture = null;
        run.remaining = 0;
        run.settled = run.total; // a failed run ends here: nothing more is reported for it
        if (wasRunning) this.hub.send('capture', null);
        this.notice('error', `Capture into "${run.label}" stopped: ${errorText(err)}`);
      },
    );
  }

  private stopCapture(): boolean {
    const was = this.capture !== null;
    this.capture = null;
    if (was) this.hub.send('capture', null);
    return was;
  }

  private captureView(): CaptureView | null {
    if (!this.capture) return null;
    const { label, total, remaining, added, duplicates } = this.capture;
    return { label, total, remaining, added, duplicates };
  }

  private startTraining(request: Extract<WriteRequest, { action: 'train' }>): WriteResult {
    const controller = new AbortController();
    this.setTrain({ state: 'running', phase: 'starting', history: [] });
    const finished = this.runTraining(request, controller.signal).finally(() => {
      this.training = undefined;
      this.options.onActivity?.();
    });
    this.training = { controller, finished };
    this.options.onActivity?.();
    return { started: true };
  }

  private async runTraining(request: Extract<WriteRequest, { action: 'train' }>, signal: AbortSignal): Promise<void> {
    const history: TrainView['history'] = [];
    try {
      const backbone = await this.options.backbone;
      const dataset = await this.options.dataset();
      const store = await this.options.models();
      signal.throwIfAborted();
      const onProgress = (p: RetrainProgress): void => {
        // The final training on all frames counts its epochs from 1 again and scores no held-out frames: the curve stays the fold's.
        if (p.phase === 'training' || (p.phase === 'fine-tune' && !p.stage)) {
          history.push({ epoch: p.epoch, loss: p.loss, accuracy: p.phase === 'training' ? p.accuracy : p.validationAccuracy });
          if (history.length > MAX_HISTORY) history.shift();
        }
        // Progress goes out as its own small event; the page keeps the curve.
        this.train = { ...this.train, ...p, history };
        this.hub.send('train-progress', p);
      };
      const train = this.options.retrain ?? retrain;
      const previous = await store.loadModel('active').then((m) => m.metadata.pipeline, () => undefined);
      // Marked in the Teach tab; labels not (or no longer) in the dataset are left out.
      const counts = dataset.counts();
      const rejectLabels = (await readRejectLabels(store.dir)).filter((label) => (counts[label] ?? 0) > 0);
      const result = await train({
        dataset,
        backbone,
        store,
        activate: false,
        fit: this.options.fit,
        strategy: request.strategy,
        ...(request.head ? { head: { kind: request.head } } : {}),
        rejectLabels,
        previous,
        signal,
        onProgress,
      });
      const candidate: ModelReport = {
        ...reportOf(result.version, result.metrics as unknown as Record<string, unknown>),
        createdAt: new Date().toISOString(),
        labels: result.labels.map((l) => l.label),
        totalMs: Math.round(result.metrics.timings.totalMs),
      };
      this.setTrain({ state: 'finished', history, candidate, inUse: await this.inUseReport(store) });
    } catch (err) {
      if (signal.aborted) this.setTrain({ state: 'cancelled', history });
      else this.setTrain({ state: 'failed', history, error: errorText(err) });
    }
  }

  private async inUseReport(store: ModelStore): Promise<ModelReport | undefined> {
    const active = await store.activeVersion();
    if (active === undefined) return undefined;
    try {
      const metadata = await store.readMetadata(active);
      return { ...reportOf(active, metadata.metrics), createdAt: metadata.createdAt, labels: metadata.labels };
    } catch {
      return { version: active, labels: [] };
    }
  }

  // #endregion

  // #region pushing changes

  private setTrain(train: TrainView): void {
    this.train = train;
    this.hub.send('train', train);
  }

  private setBackbone(view: BackboneView): void {
    this.backboneView = view;
    this.hub.send('backbone', view);
  }

  private readyBackbone(): Backbone {
    if (this.backbone) return this.backbone;
    if (this.backboneView.state === 'error') throw new HttpError(409, `The backbone could not be loaded: ${this.backboneView.message}`);
    throw new HttpError(503, 'The backbone is still loading; try again in a moment.');
  }

  private async similarityIndex(dataset: Dataset, backbone: Backbone, entries: DatasetEntry[]): Promise<SimilarityIndex> {
    const signature = createHash('sha1')
      .update(entries.map((e) => `${e.id}\u0000${e.label}\u0000${e.sha256}`).join('\n'))
      .digest('hex');
    if (this.similarity?.signature !== signature) {
      const index = SimilarityIndex.fromDataset(dataset, backbone, { fit: this.options.fit });
      index.catch(() => {
        if (this.similarity?.index === index) this.similarity = undefined;
      });
      this.similarity = { signature, index };
    }
    return this.similarity.index;
  }

  private sendRejects(): void {
    this.hub.send(
      'rejects',
      this.frames.rejects().map((f) => f.view),
    );
  }

  private notice(level: 'info' | 'error', message: string): void {
    this.hub.send('notice', { level, message });
  }

  private datasetChanged(): void {
    this.options
      .dataset()
      .then((dataset) => {
        const view = datasetViewOf(dataset);
        this.datasetSignature = JSON.stringify(view);
        this.hub.send('dataset', view);
      })
      .catch(() => undefined);
  }

  private modelsChanged(): void {
    // A save emits 'saved' and 'active' back to back: one update.
    if (this.modelsTimer || this.closed) return;
    this.modelsTimer = setTimeout(() => {
      this.modelsTimer = undefined;
      this.modelsView().then(
        (models) => this.hub.send('models', models),
        () => undefined,
      );
    }, 50);
  }

  /** While someone watches: figures every second, and the dataset when another node changed it. */
  private viewersChanged(): void {
    if (this.hub.viewers > 0 && !this.ticker && !this.closed) {
      this.ticker = setInterval(() => this.tick(), TICK_MS);
      this.ticker.unref();
    } else if (this.hub.viewers === 0 && this.ticker) {
      clearInterval(this.ticker);
      this.ticker = undefined;
    }
    this.options.onActivity?.();
  }

  private async reviewQueue(): Promise<ReviewQueue> {
    if (!this.options.review) throw new HttpError(409, 'This lane has no review queue.');
    return this.options.review();
  }

  private reviewChanged(): void {
    this.reviewView().then(
      (view) => {
        this.reviewSignature = JSON.stringify(view.items.map((i) => i.id));
        this.hub.send('review', view);
      },
      () => undefined,
    );
  }

  private tick(): void {
    this.hub.send('stats', this.stats.snapshot());
    // The classify node fills the queue: the page hears of new frames at the next tick.
    this.reviewView().then(
      (view) => {
        const signature = JSON.stringify(view.items.map((i) => i.id));
        if (signature === this.reviewSignature) return;
        this.reviewSignature = signature;
        this.hub.send('review', view);
      },
      () => undefined,
    );
    this.options
      .dataset()
      .then((dataset) => {
        // The revision tells of images a capped label dropped: its count stays the same.
        const view = datasetViewOf(dataset);
        const signature = JSON.stringify(view);
        if (signature !== this.datasetSignature) {
          this.datasetSignature = signature;
          this.hub.send('dataset', view);
        }
      })
      .catch(() => undefined);
  }

  // #endregion

  /** Stops: cancels a training and waits for it (the backbone must outlive it), ends the streams. */
  async close(): Promise<void> {
    this.closed = true;
    this.capture = null;
    if (this.ticker) clearInterval(this.ticker);
    if (this.modelsTimer) clearTimeout(this.modelsTimer);
    this.ticker = this.modelsTimer = undefined;
    this.store?.off('saved', this.onStoreChange);
    this.store?.off('active', this.onStoreChange);
    this.store?.off('pruned', this.onStoreChange);
    const running = this.training;
    running?.controller.abort();
    await running?.finished.catch(() => undefined);
    await this.writes.catch(() => undefined);
    this.hub.close();
  }
}

