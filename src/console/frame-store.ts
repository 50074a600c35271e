/**
 * The latest frames with their results (a ring), and the frames the model was unsure
 * about (a queue the operator labels). A frame may arrive twice, straight from the camera
 * and again classified: the content hash (the same sha256 the classifier reports as
 * `frameHash`) makes it one frame, and the classified copy adds its result.
 * The original bytes are kept for capture; JPEG thumbnails are made with sharp on first
 * request and kept with the frame.
 */
import sharp from 'sharp';
import type { ClassificationResult } from '../classify/index.js';
import type { ImageInput, ImageSource } from '../image/index.js';
import type { FrameView } from './types.js';

export type ThumbnailSize = 'small' | 'large';

/** Longest side in pixels: strip tiles, and the big "current frame" view. */
export const THUMBNAIL_BOX: Record<ThumbnailSize, number> = { small: 200, large: 480 };
const THUMBNAIL_QUALITY = 78;

export interface StoredFrame {
  view: FrameView;
  source: ImageSource;
  thumbnails: Partial<Record<ThumbnailSize, Promise<Buffer>>>;
}

export interface IncomingFrame {
  source: ImageSource;
  classification?: ClassificationResult;
  truth?: string;
  at: number;
}

export interface AddOutcome {
  frame: StoredFrame;
  /** A frame not seen before (the "next N frames" capture counts these). */
  isNew: boolean;
  /** The frame's view changed (new, or its classification arrived). */
  changed: boolean;
  /** It joined the unsure queue. */
  rejected: boolean;
}

/** JPEG of an image source (or a file), fitted inside a square box, never enlarged, upright. */
export function jpegThumbnail(image: ImageSource | string, box: number): Promise<Buffer> {
  const pipeline =
    typeof image === 'string'
      ? sharp(image)
      : image.kind === 'encoded'
        ? sharp(image.bytes)
        : sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: image.channels } });
  return pipeline
    .rotate()
    .resize(box, box, { fit: 'inside', withoutEnlargement: true })
    .flatten({ background: '#ffffff' })
    .jpeg({ quality: THUMBNAIL_QUALITY })
    .toBuffer();
}

/** The frame as the dataset takes it: encoded bytes as they came, raw pixels as raw pixels. */
export function imageInputOf(source: ImageSource): ImageInput {
  return source.kind === 'encoded' ? source.bytes : { data: source.pixels, width: source.width, height: source.height, channels: source.channels };
}

function viewOf(id: number, frame: IncomingFrame): FrameView {
  const view: FrameView = { id, at: frame.at, classified: false };
  if (frame.truth !== undefined) view.truth = frame.truth;
  if (frame.classification) addClassification(view, frame.classification);
  return view;
}

function addClassification(view: FrameView, result: ClassificationResult): void {
  view.classified = true;
  view.label = result.label;
  view.confidence = result.confidence;
  view.accepted = result.accepted;
  view.modelVersion = result.modelVersion;
  view.topK = (result.topK ?? []).map(({ label, confidence }) => ({ label, confidence }));
  view.latencyMs = result.timings?.totalMs;
}

export class FrameStore {
  private readonly ring: StoredFrame[] = [];
  private readonly unsure: StoredFrame[] = [];
  // Ids start at the deploy time, so a browser never shows a cached thumbnail of an earlier deploy's frame.
  private nextId = Date.now();

  constructor(
    private readonly ringSize: number,
    private readonly rejectsSize: number,
  ) {}

  add(frame: IncomingFrame): AddOutcome {
    const known = this.findByHash(frame.source.hash);
    if (known) {
      // Camera copy first, classified copy second (the usual order): add the result.
      if (!frame.classification || known.view.classified) return { frame: known, isNew: false, changed: false, rejected: false };
      addClassification(known.view, frame.classification);
      if (frame.truth !== undefined) known.view.truth ??= frame.truth;
      return { frame: known, isNew: false, changed: true, rejected: this.maybeQueue(known) };
    }
    const stored: StoredFrame = { view: viewOf(this.nextId++, frame), source: frame.source, thumbnails: {} };
    this.ring.push(stored);
    if (this.ring.length > this.ringSize) this.ring.shift();
    return { frame: stored, isNew: true, changed: true, rejected: this.maybeQueue(stored) };
  }

  /** Newest last. */
  frames(): StoredFrame[] {
    return [...this.ring];
  }

  /** Newest last. */
  rejects(): StoredFrame[] {
    return [...this.unsure];
  }

  latest(): StoredFrame | undefined {
    return this.ring.at(-1);
  }

  find(id: number): StoredFrame | undefined {
    return this.ring.find((f) => f.view.id === id) ?? this.unsure.find((f) => f.view.id === id);
  }

  /** Takes frames out of the unsure queue; returns how many were in it. */
  removeRejects(ids: readonly number[]): number {
    const wanted = new Set(ids);
    const before = this.unsure.length;
    for (let i = this.unsure.length - 1; i >= 0; i--) if (wanted.has(this.unsure[i].view.id)) this.unsure.splice(i, 1);
    return before - this.unsure.length;
  }

  thumbnail(frame: StoredFrame, size: ThumbnailSize): Promise<Buffer> {
    let made = frame.thumbnails[size];
    if (!made) {
      made = jpegThumbnail(frame.source, THUMBNAIL_BOX[size]);
      made.catch(() => delete frame.thumbnails[size]); // a failure is not remembered
      frame.thumbnails[size] = made;
    }
    return made;
  }

  private findByHash(hash: string): StoredFrame | undefined {
    for (let i = this.ring.length - 1; i >= 0; i--) if (this.ring[i].source.hash === hash) return this.ring[i];
    return this.unsure.find((f) => f.source.hash === hash);
  }

  private maybeQueue(frame: StoredFrame): boolean {
    if (this.rejectsSize === 0 || !frame.view.classified || frame.view.accepted !== false) return false;
    if (this.unsure.includes(frame)) return false;
    this.unsure.push(frame);
    if (this.unsure.length > this.rejectsSize) this.unsure.shift();
    return true;
  }
}
