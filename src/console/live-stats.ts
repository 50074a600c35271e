/**
 * The Live section's figures (and lane-stats' for dashboards): frames per second,
 * classification latency and confidence, how many frames got each label over the last N
 * minutes and which share of them was rejected (sent to inspection).
 */
import type { StatsView } from './types.js';

/** Frames/s is measured over this span: long enough to be steady at 1 frame/s, short enough to follow a stop. */
const RATE_SPAN_MS = 5_000;
/** Latency and confidence are the means of this many latest classified frames. */
const LATENCY_SAMPLES = 20;

/** How a frame was decided, beyond its label (both optional: older callers pass the label only). */
export interface Decision {
  /** False when the frame went to inspection (unknown, unsure, a reject class). */
  accepted?: boolean;
  /** Confidence of the best class, 0..1. */
  confidence?: number;
}

export class LiveStats {
  private arrivals: number[] = [];
  /** Classified frames in the window, oldest first. */
  private decided: { at: number; label: string; rejected: boolean }[] = [];
  private latencies: number[] = [];
  private confidences: number[] = [];
  private seen = 0;

  constructor(private readonly windowMinutes: number) {}

  /** A frame arrived (counted once, even when its classified copy follows). */
  arrived(at: number): void {
    this.seen++;
    this.arrivals.push(at);
    this.prune(at);
  }

  /** A frame's classification arrived. */
  classified(at: number, label: string, latencyMs: number | undefined, decision: Decision = {}): void {
    this.decided.push({ at, label, rejected: decision.accepted === false });
    if (latencyMs !== undefined && Number.isFinite(latencyMs)) keepLatest(this.latencies, latencyMs);
    if (decision.confidence !== undefined && Number.isFinite(decision.confidence)) keepLatest(this.confidences, decision.confidence);
    this.prune(at);
  }

  snapshot(now = Date.now()): StatsView {
    this.prune(now);
    const counts: Record<string, number> = {};
    let rejected = 0;
    for (const decided of this.decided) {
      counts[decided.label] = (counts[decided.label] ?? 0) + 1;
      if (decided.rejected) rejected++;
    }
    // Intervals between the frames of the span, up to now (so the rate falls when frames stop).
    const fps = this.arrivals.length < 2 ? 0 : ((this.arrivals.length - 1) * 1000) / Math.max(1, now - this.arrivals[0]);
    return {
      fps: Math.round(fps * 10) / 10,
      latencyMs: this.latencies.length ? Math.round(mean(this.latencies)) : null,
      confidence: this.confidences.length ? Math.round(mean(this.confidences) * 1000) / 1000 : null,
      windowMinutes: this.windowMinutes,
      counts,
      rejectRate: this.decided.length ? Math.round((rejected / this.decided.length) * 1000) / 1000 : null,
      frames: this.seen,
    };
  }

  private prune(now: number): void {
    const rateStart = now - RATE_SPAN_MS;
    let drop = 0;
    while (drop < this.arrivals.length && this.arrivals[drop] < rateStart) drop++;
    if (drop) this.arrivals = this.arrivals.slice(drop);
    const windowStart = now - this.windowMinutes * 60_000;
    drop = 0;
    while (drop < this.decided.length && this.decided[drop].at < windowStart) drop++;
    if (drop) this.decided = this.decided.slice(drop);
  }
}

function keepLatest(samples: number[], value: number): void {
  samples.push(value);
  if (samples.length > LATENCY_SAMPLES) samples.shift();
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
