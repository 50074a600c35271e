/**
 * The frames an operator should look at: those sent to inspection (low confidence, an
 * unknown product, a reject class) and those decided by a hair (a small top-1/top-2
 * margin). Labelling them is what teaches the model most per frame (active learning).
 *
 * Kept on disk so they survive a restart or a redeploy: one image file per frame and an
 * index written atomically after each change. Bounded (the oldest go first), newest first,
 * one entry per frame content (a frame seen again is not queued twice), and rate-limited,
 * so an empty belt sent to inspection thirty times a second costs a few writes, not thirty.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { encodeForStorage } from '../image/storage.js';
import type { ImageInput } from '../image/types.js';
import type { ClassificationResult } from '../classify/types.js';
import type { DecisionReason } from '../open-set/decision.js';

const debug = createDebug('lane-vision:review');

export type ReviewReason = Exclude<DecisionReason, 'accepted'> | 'small-margin';

export interface ReviewItem {
  /** Also the image file's stem. */
  id: string;
  reason: ReviewReason;
  /** The model's best label and its confidence (also when not accepted). */
  label: string;
  confidence: number;
  margin: number;
  similarity?: number;
  modelVersion: number;
  /** sha256 of the frame's content. */
  frameHash: string;
  addedAt: string;
  file: string;
  topK: { label: string; confidence: number }[];
}

export interface ReviewQueueOptions {
  /** Most frames kept (the oldest are removed). Default 200. */
  limit?: number;
  /** An accepted frame with a top-1/top-2 margin below this is queued as `small-margin`. Default 0.15. */
  smallMargin?: number;
  /** Most frames queued per second. Default 2. */
  perSecond?: number;
}

export const DEFAULT_REVIEW_LIMIT = 200;
const INDEX_FILE = 'review.json';
const INDEX_FORMAT = 'lane-vision-review/1';

/** Why a result deserves a look, or undefined when it does not. */
export function reviewReason(result: Pick<ClassificationResult, 'reason' | 'margin'>, smallMargin: number): ReviewReason | undefined {
  if (result.reason !== 'accepted') return result.reason;
  return result.margin < smallMargin ? 'small-margin' : undefined;
}

export class ReviewQueue {
  private items: ReviewItem[] = [];
  private writes: Promise<unknown> = Promise.resolve();
  private windowStart = 0;
  private inWindow = 0;
  /** Frames that deserved a look but were over the rate limit. */
  skipped = 0;
  readonly limit: number;
  readonly smallMargin: number;
  private readonly perSecond: number;

  private constructor(
    readonly dir: string,
    options: ReviewQueueOptions,
  ) {
    this.limit = checkCount('limit', options.limit ?? DEFAULT_REVIEW_LIMIT, 1, 100_000);
    this.smallMargin = options.smallMargin ?? 0.15;
    this.perSecond = checkCount('perSecond', options.perSecond ?? 2, 1, 1000);
  }

  /** Opens (creating) the queue in `dir`: its index is read back; image files it does not name are removed. */
  static async open(dir: string, options: ReviewQueueOptions = {}): Promise<ReviewQueue> {
    const queue = new ReviewQueue(path.resolve(dir), options);
    await fs.mkdir(queue.dir, { recursive: true });
    queue.items = await readIndex(queue.dir);
    const named = new Set(queue.items.map((item) => item.file));
    for (const name of await fs.readdir(queue.dir)) {
      if (name !== INDEX_FILE && !named.has(name) && !name.startsWith('.')) await fs.rm(path.join(queue.dir, name), { force: true });
    }
    return queue;
  }

  /** Newest first. */
  list(): ReviewItem[] {
    return [...this.items];
  }

  get size(): number {
    return this.items.length;
  }

  find(id: string): ReviewItem | undefined {
    return this.items.find((item) => item.id === id);
  }

  imagePath(item: ReviewItem): string {
    return path.join(this.dir, item.file);
  }

  /**
   * Queues `frame` when its result deserves a look; resolves with the new item, or undefined
   * (nothing to review, already queued, or over the rate limit).
   */
  offer(frame: ImageInput, result: ClassificationResult, now = Date.now()): Promise<ReviewItem | undefined> {
    const reason = reviewReason(result, this.smallMargin);
    if (!reason) return Promise.resolve(undefined);
    if (this.items.some((item) => item.frameHash === result.frameHash)) return Promise.resolve(undefined);
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perSecond) {
      this.skipped++;
      return Promise.resolve(undefined);
    }
    this.inWindow++;
    return this.exclusive(async () => {
      if (this.items.some((item) => item.frameHash === result.frameHash)) return undefined;
      const stored = await encodeForStorage(frame);
      const id = `${new Date(now).toISOString().replace(/[-:.TZ]/g, '')}-${result.frameHash.slice(0, 12)}`;
      const item: ReviewItem = {
        id,
        reason,
        label: result.topK[0]?.label ?? result.label,
        confidence: result.confidence,
        margin: result.margin,
        ...(result.similarity !== undefined ? { similarity: result.similarity } : {}),
        modelVersion: result.modelVersion,
        frameHash: result.frameHash,
        addedAt: new Date(now).toISOString(),
        file: `${id}${stored.extension}`,
        topK: result.topK.map(({ label, confidence }) => ({ label, confidence })),
      };
      await writeFileAtomic(path.join(this.dir, item.file), stored.bytes);
      const dropped = this.items.splice(this.limit - 1);
      this.items.unshift(item);
      await this.saveIndex();
      for (const old of dropped) await fs.rm(path.join(this.dir, old.file), { force: true });
      debug('queued %s (%s, %s %d)', item.id, reason, item.label, item.confidence);
      return item;
    });
  }

  /** Removes an item (labelled or dismissed); resolves with it, or undefined when it is not queued. */
  remove(id: string): Promise<ReviewItem | undefined> {
    return this.exclusive(async () => {
      const index = this.items.findIndex((item) => item.id === id);
      if (index < 0) return undefined;
      const [item] = this.items.splice(index, 1);
      await this.saveIndex();
      await fs.rm(path.join(this.dir, item.file), { force: true });
      return item;
    });
  }

  /** Resolves when every change asked for so far is on disk. */
  settled(): Promise<void> {
    return this.writes.then(() => undefined);
  }

  private saveIndex(): Promise<void> {
    return writeFileAtomic(path.join(this.dir, INDEX_FILE), JSON.stringify({ format: INDEX_FORMAT, items: this.items }, null, 1) + '\n');
  }

  /** One change at a time, in the order asked, so the index always names the files on disk. */
  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.writes.then(task, task);
    this.writes = run.catch(() => undefined);
    return run;
  }
}

async function readIndex(dir: string): Promise<ReviewItem[]> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, INDEX_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new LaneVisionError('REVIEW_QUEUE_UNREADABLE', `Cannot read the review queue in ${dir}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const parsed = JSON.parse(text) as { format?: unknown; items?: unknown };
    if (parsed.format !== INDEX_FORMAT || !Array.isArray(parsed.items)) throw new Error('not a review index');
    // Only entries whose file name is a plain name of this folder: the index is never trusted to point elsewhere.
    return (parsed.items as ReviewItem[]).filter((item) => typeof item?.id === 'string' && typeof item.file === 'string' && item.file === path.basename(item.file) && !item.file.startsWith('.'));
  } catch (err) {
    // A damaged index loses the queue, not the lane: it starts empty (and the files are cleaned up).
    debug('review index in %s unreadable (%s): starting empty', dir, (err as Error).message);
    return [];
  }
}

function checkCount(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new LaneVisionError('REVIEW_QUEUE_OPTIONS', `The review queue's ${name} must be a whole number from ${min} to ${max}, got ${String(value)}.`);
  }
  return value;
}
