/**
 * The Live section's figures: frames per second, classification latency, and how many
 * frames got each label over the last N minutes.
 */
import type { StatsView } from './types.js';

/** Frames/s is measured over this span: long enough to be steady at 1 frame/s, short enough to follow a stop. */
const RATE_SPAN_MS = 5_000;
/** Latency is the mean of this many latest classified frames. */
const LATENCY_SAMPLES = 20;

export class LiveStats {
  private arrivals: number[] = [];
  /** Classified frames in the window, oldest first. */
  private decided: { at: number; label: string }[] = [];
  private latencies: number[] = [];
  private seen = 0;

  constructor(private readonly windowMinutes: number) {}

  /** A frame arrived (counted once, even when its classified copy follows). */
  arrived(at: number): void {
    this.seen++;
    this.arrivals.push(at);
    this.prune(at);
  }

  /** A frame's classification arrived. */
  classified(at: number, label: string, latencyMs: number | undefined): void {
    this.decided.push({ at, label });
    if (latencyMs !== undefined && Number.isFinite(latencyMs)) {
      this.latencies.push(latencyMs);
      if (this.latencies.length > LATENCY_SAMPLES) this.latencies.shift();
    }
    this.prune(at);
  }

  snapshot(now = Date.now()): StatsView {
    this.prune(now);
    const counts: Record<string, number> = {};
    for (const { label } of this.decided) counts[label] = (counts[label] ?? 0) + 1;
    // Intervals between the frames of the span, up to now (so the rate falls when frames stop).
    const fps = this.arrivals.length < 2 ? 0 : ((this.arrivals.length - 1) * 1000) / Math.max(1, now - this.arrivals[0]);
    return {
      fps: Math.round(fps * 10) / 10,
      latencyMs: this.latencies.length ? Math.round(this.latencies.reduce((a, b) => a + b, 0) / this.latencies.length) : null,
      windowMinutes: this.windowMinutes,
      counts,
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
