/**
 * Dashboard-ready figures of a lane, from its classification results: what the
 * lane-stats node sends to Dashboard 2 widgets (or any dashboard) every few seconds,
 * instead of every result. Results carry no frame (a JPEG per result sent a dashboard
 * into a reconnect loop); the last frame goes out here, as a small JPEG data URL, at most
 * once per emission and only when a new one arrived.
 *
 * The counting is the operator console's LiveStats; this file only shapes its snapshot
 * into one message per widget (payload a number, an array or a text; topic the series).
 */
import type { ClassificationResult } from '../classify/index.js';
import { jpegThumbnail } from '../console/frame-store.js';
import { LiveStats } from '../console/live-stats.js';
import type { ImageInput } from '../image/index.js';
import { readImageSource } from '../image/index.js';

export interface DashboardFeedOptions {
  /** Minutes the per-label counts and the reject rate cover. */
  windowMinutes: number;
  /** Longest side of the last-frame JPEG in pixels; 0 sends no frame. */
  frameBox: number;
}

/** One message for one widget: Dashboard 2 reads msg.payload, and msg.topic as the series name of a chart. */
export interface WidgetMessage<T = unknown> {
  topic: string;
  payload: T;
  [more: string]: unknown;
}

export interface LabelCount {
  label: string;
  count: number;
}

/** What one emission sends, by output; undefined leaves that output quiet this time. */
export interface DashboardMessages {
  /** Frames per decided label in the window, by label: a bar chart (x = label, y = count, action replace). */
  counts: WidgetMessage<LabelCount[]>;
  /** Percent (0..100) of the window's frames sent to inspection: a gauge; undefined while the window is empty. */
  rejectRate?: WidgetMessage<number>;
  /** Mean confidence of the latest frames in percent: a gauge or a line chart. */
  confidence?: WidgetMessage<number>;
  /** Frames per second over the last seconds: a line chart (0 when the lane stops). */
  throughput: WidgetMessage<number>;
  /** The latest frame as a JPEG data URL, when a new one arrived since the last emission. */
  frame?: WidgetMessage<string>;
  /** The model version that decided, when it changed (and in the first emission). */
  model?: WidgetMessage<string>;
  /** Why the latest frame could not be sent (the caller reports it once). */
  frameProblem?: Error;
}

export const DASHBOARD_TOPICS = {
  counts: 'frames per label',
  rejectRate: 'reject rate',
  confidence: 'confidence',
  throughput: 'frames/s',
  frame: 'last frame',
  model: 'model',
} as const;

const JPEG_DATA_URL = 'data:image/jpeg;base64,';

export class DashboardFeed {
  private readonly stats: LiveStats;
  private results = 0;
  /** The latest frame not yet sent, with its result. */
  private pendingFrame: { image: ImageInput; label: string; confidence: number } | undefined;
  private model: { version: number; backboneId: string } | undefined;
  private sentModel: string | undefined;

  constructor(private readonly options: DashboardFeedOptions) {
    this.stats = new LiveStats(options.windowMinutes);
  }

  /** The latest result's model as shown ("v3"), '' before the first result. */
  get modelShown(): string {
    return this.model ? modelText(this.model.version) : '';
  }

  /** Results recorded since the start: nothing is worth sending before the first. */
  get resultCount(): number {
    return this.results;
  }

  /** One classified frame; `frame` is its image when the caller has it (only the latest is kept). */
  record(result: ClassificationResult, frame: ImageInput | undefined, at = Date.now()): void {
    this.results++;
    this.stats.arrived(at);
    this.stats.classified(at, result.label, result.timings?.totalMs, result);
    this.model = { version: result.modelVersion, backboneId: result.backboneId };
    if (frame !== undefined && this.options.frameBox > 0) this.pendingFrame = { image: frame, label: result.label, confidence: result.confidence };
  }

  /** The messages of one emission; the frame and the model go out only when they changed. */
  async messages(now = Date.now()): Promise<DashboardMessages> {
    const snapshot = this.stats.snapshot(now);
    const counts = Object.entries(snapshot.counts)
      .map(([label, count]) => ({ label, count }))
      .sort((a, b) => a.label.localeCompare(b.label));
    const out: DashboardMessages = {
      counts: { topic: DASHBOARD_TOPICS.counts, payload: counts, windowMinutes: snapshot.windowMinutes },
      throughput: { topic: DASHBOARD_TOPICS.throughput, payload: snapshot.fps },
    };
    if (snapshot.rejectRate !== null) out.rejectRate = { topic: DASHBOARD_TOPICS.rejectRate, payload: percent(snapshot.rejectRate), windowMinutes: snapshot.windowMinutes };
    if (snapshot.confidence !== null) out.confidence = { topic: DASHBOARD_TOPICS.confidence, payload: percent(snapshot.confidence) };
    if (this.model) {
      const text = modelText(this.model.version);
      if (text !== this.sentModel) {
        this.sentModel = text;
        out.model = { topic: DASHBOARD_TOPICS.model, payload: text, version: this.model.version, backboneId: this.model.backboneId };
      }
    }
    const pending = this.pendingFrame;
    this.pendingFrame = undefined;
    if (pending) {
      try {
        const source = await readImageSource(pending.image, { files: 'none' });
        const jpeg = await jpegThumbnail(source, this.options.frameBox);
        out.frame = { topic: DASHBOARD_TOPICS.frame, payload: JPEG_DATA_URL + jpeg.toString('base64'), label: pending.label, confidence: pending.confidence };
      } catch (err) {
        out.frameProblem = err instanceof Error ? err : new Error(String(err));
      }
    }
    return out;
  }
}

/** "v3"; version 0 is the backbone's own ImageNet classifier. */
export function modelText(version: number): string {
  return version === 0 ? 'ImageNet (backbone)' : `v${version}`;
}

function percent(fraction: number): number {
  return Math.round(fraction * 1000) / 10;
}
