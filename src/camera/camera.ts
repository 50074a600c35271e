/**
 * A lane camera: keeps one connection to a camera up (reconnecting with backoff when it
 * drops), numbers and time-stamps its frames, cuts out the region of interest, and hands the
 * lane frames either at up to a frame-rate cap (free-run) or one per trigger. Nothing queues
 * up: while a frame waits for its turn, a newer one replaces it (counted as dropped).
 */
import sharp from 'sharp';
import { setTimeout as sleep } from 'node:timers/promises';
import createDebug from 'debug';
import { LaneVisionError, isLaneVisionError } from '../errors.js';
import type { CameraCounters, CameraFrame, CameraImage, CameraMode, CameraState, Connector, Roi } from './types.js';

const debug = createDebug('lane-vision:camera');

export const DEFAULT_RETRY_MIN_MS = 500;
export const DEFAULT_RETRY_MAX_MS = 10_000;
export const MAX_CAMERA_FPS = 120;

/** Errors that no retry can cure: the camera stops and says why. */
const FATAL = new Set(['CAMERA_FFMPEG_MISSING', 'CAMERA_BAD_SOURCE', 'CAMERA_BAD_SETTING']);

export interface CameraOptions {
  connector: Connector;
  mode: CameraMode;
  /** Free-run: frames per second at most (also how often a snapshot URL or folder is looked at). */
  maxFps: number;
  roi?: Roi;
  /** Backoff between reconnects: doubles from min to max, back to min after a frame. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Free-run frames (triggered frames are the answer of `grab`). */
  onFrame?(frame: CameraFrame): void;
  onState?(state: CameraState): void;
  /** The camera went away: once per outage, however many retries it takes. */
  onOutage?(error: Error): void;
  /** Frames flow again after an outage. */
  onRecovered?(outageMs: number, attempts: number): void;
  /** A frame could not be used (e.g. the ROI is outside it): once until a frame works again. */
  onFrameFault?(error: Error): void;
}

interface Waiter {
  resolve(frame: CameraFrame): void;
  reject(err: Error): void;
}

export class Camera {
  readonly counters: CameraCounters = { received: 0, sent: 0, dropped: 0, reconnects: 0 };
  private stateNow: CameraState = { state: 'stopped' };
  private readonly stopper = new AbortController();
  private running: Promise<void> | undefined;
  private readonly periodMs: number;
  /** Free-run: the newest frame waiting to go out, and whether one is being cut / sent now. */
  private waiting: { image: CameraImage; seq: number; timestamp: number; path?: string } | undefined;
  private busy = false;
  /**
   * Free-run: when the next frame may go out. The slots keep a grid one period apart, so
   * a camera at exactly the cap, whose frames jitter, is not thinned out (a frame a little
   * early waits for its slot); frames stay at least half a period apart.
   */
  private nextSlotAt = -Infinity;
  private paceTimer: NodeJS.Timeout | undefined;
  /** Triggered: requests waiting for the next frame. */
  private readonly waiters: Waiter[] = [];
  private demandWake: (() => void) | undefined;
  private frameFaulty = false;
  private outage: { since: number; attempts: number } | undefined;

  constructor(private readonly options: CameraOptions) {
    if (!Number.isFinite(options.maxFps) || options.maxFps <= 0 || options.maxFps > MAX_CAMERA_FPS) {
      throw new LaneVisionError('CAMERA_BAD_SETTING', `The frame-rate cap must be above 0 and at most ${MAX_CAMERA_FPS} frames/s, got ${String(options.maxFps)}`);
    }
    if (options.roi) checkRoi(options.roi);
    this.periodMs = 1000 / options.maxFps;
  }

  get kind() {
    return this.options.connector.kind;
  }

  get label() {
    return this.options.connector.label;
  }

  get state(): CameraState {
    return this.stateNow;
  }

  start(): void {
    if (this.running || this.stopper.signal.aborted) return;
    this.running = this.connectLoop();
  }

  /**
   * The next frame the camera delivers after this call (a trigger). Rejects when none comes
   * within `timeoutMs` or the camera stops.
   */
  grab(timeoutMs: number): Promise<CameraFrame> {
    if (this.stopper.signal.aborted) return Promise.reject(new LaneVisionError('CAMERA_STOPPED', 'The camera is stopped'));
    return new Promise<CameraFrame>((resolve, reject) => {
      const timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        const state = this.stateNow;
        const why = state.state === 'reconnecting' || state.state === 'failed' ? `: ${state.error.message}` : '';
        reject(new LaneVisionError('CAMERA_NO_FRAME', `No frame from the camera within ${timeoutMs / 1000} s (${state.state}${why})`));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.push(waiter);
      this.wakeDemand();
    });
  }

  /** Ends the connection (and any ffmpeg child) and resolves once it is gone. */
  async stop(): Promise<void> {
    this.stopper.abort();
    clearTimeout(this.paceTimer);
    this.wakeDemand();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new LaneVisionError('CAMERA_STOPPED', 'The camera was stopped before a frame came'));
    await this.running;
    this.setState({ state: 'stopped' });
  }

  private setState(state: CameraState): void {
    this.stateNow = state;
    this.options.onState?.(state);
  }

  private async connectLoop(): Promise<void> {
    const signal = this.stopper.signal;
    const minMs = this.options.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    const maxMs = Math.max(minMs, this.options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS);
    let backoff = minMs;
    this.setState({ state: 'connecting' });
    while (!signal.aborted) {
      const framesBefore = this.counters.received;
      let error: Error;
      try {
        await this.options.connector.run((image, extra) => this.receive(image, extra?.path), () => this.demand(), signal);
        if (signal.aborted) break;
        error = new LaneVisionError('CAMERA_DISCONNECTED', `${this.label} stopped sending`);
      } catch (err) {
        if (signal.aborted) break;
        error = err instanceof Error ? err : new Error(String(err));
      }
      if (isLaneVisionError(error) && FATAL.has(error.code)) {
        this.setState({ state: 'failed', error });
        this.options.onOutage?.(error);
        for (const waiter of this.waiters.splice(0)) waiter.reject(error);
        return;
      }
      if (this.counters.received > framesBefore) backoff = minMs;
      if (!this.outage) {
        this.outage = { since: Date.now(), attempts: 0 };
        this.options.onOutage?.(error);
      }
      this.outage.attempts++;
      this.counters.reconnects++;
      debug('%s: %s; retry in %d ms', this.label, error.message, backoff);
      this.setState({ state: 'reconnecting', error, retryInMs: backoff, attempts: this.outage.attempts });
      try {
        await sleep(backoff, undefined, { signal });
      } catch {
        break;
      }
      backoff = Math.min(maxMs, backoff * 2);
    }
  }

  /** For pull sources: resolves when a frame is wanted. */
  private async demand(): Promise<boolean> {
    const signal = this.stopper.signal;
    if (this.options.mode === 'triggered') {
      while (!signal.aborted && this.waiters.length === 0) {
        await new Promise<void>((resolve) => (this.demandWake = resolve));
      }
      return !signal.aborted;
    }
    // Free-run: one look per frame period, counted from the last one.
    const wait = this.lastDemandAt + this.periodMs - performance.now();
    if (wait > 0) {
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        return false;
      }
    }
    this.lastDemandAt = performance.now();
    return !signal.aborted;
  }

  private lastDemandAt = -Infinity;

  private wakeDemand(): void {
    const wake = this.demandWake;
    this.demandWake = undefined;
    wake?.();
  }

  private receive(image: CameraImage, path?: string): void {
    if (this.stopper.signal.aborted) return;
    this.counters.received++;
    const frame = { image, seq: this.counters.received, timestamp: Date.now(), ...(path ? { path } : {}) };
    if (this.stateNow.state !== 'streaming') {
      if (this.outage) {
        this.options.onRecovered?.(Date.now() - this.outage.since, this.outage.attempts);
        this.outage = undefined;
      }
      this.setState({ state: 'streaming' });
    }
    if (this.waiters.length > 0) {
      // Every trigger waiting gets this frame, the first after it.
      const waiters = this.waiters.splice(0);
      this.finish(frame).then(
        (done) => waiters.forEach((w) => w.resolve(done)),
        (err: Error) => waiters.forEach((w) => w.reject(err)),
      );
    }
    if (this.options.mode === 'triggered') return; // frames nobody asked for are not kept
    if (this.waiting) this.counters.dropped++;
    this.waiting = frame;
    this.pump();
  }

  /** Free-run: sends the waiting frame when the cap allows and nothing is being cut. */
  private pump(): void {
    if (this.busy || !this.waiting || this.paceTimer || this.stopper.signal.aborted) return;
    const now = performance.now();
    const wait = this.nextSlotAt - now;
    if (wait > 0) {
      this.paceTimer = setTimeout(() => {
        this.paceTimer = undefined;
        this.pump();
      }, Math.ceil(wait));
      return;
    }
    const frame = this.waiting;
    this.waiting = undefined;
    this.busy = true;
    this.nextSlotAt = Math.max(this.nextSlotAt + this.periodMs, now + this.periodMs / 2);
    this.finish(frame)
      .then(
        (done) => {
          if (!this.stopper.signal.aborted) this.options.onFrame?.(done);
        },
        () => undefined, // reported by finish
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  /** Cuts the ROI out (when set) and counts the frame as sent. */
  private async finish(frame: { image: CameraImage; seq: number; timestamp: number; path?: string }): Promise<CameraFrame> {
    let image = frame.image;
    if (this.options.roi) {
      try {
        image = await cropRoi(image, this.options.roi);
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        if (!this.frameFaulty) this.options.onFrameFault?.(error);
        this.frameFaulty = true;
        throw error;
      }
    }
    this.frameFaulty = false;
    this.counters.sent++;
    return { ...frame, image, kind: this.kind };
  }
}

export function checkRoi(roi: Roi): void {
  const values = [roi.left, roi.top, roi.width, roi.height];
  if (values.some((v) => !Number.isInteger(v) || v < 0) || roi.width < 1 || roi.height < 1) {
    throw new LaneVisionError('CAMERA_BAD_SETTING', `The region of interest needs whole pixel numbers (left, top >= 0; width, height >= 1), got ${JSON.stringify(roi)}`);
  }
}

/**
 * The ROI of a frame: as a JPEG for an encoded frame (the only case where a camera frame is
 * re-encoded), as raw pixels for a raw one (ffmpeg cameras crop raw frames themselves).
 */
export async function cropRoi(image: Buffer, roi: Roi): Promise<Buffer>;
export async function cropRoi(image: CameraImage, roi: Roi): Promise<CameraImage>;
export async function cropRoi(image: CameraImage, roi: Roi): Promise<CameraImage> {
  const raw = Buffer.isBuffer(image) ? undefined : image;
  const picture = raw ? sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: raw.channels as 1 | 2 | 3 | 4 } }) : sharp(image as Buffer);
  const { width = 0, height = 0 } = raw ?? (await picture.metadata());
  if (roi.left + roi.width > width || roi.top + roi.height > height) {
    throw new LaneVisionError('CAMERA_ROI_OUTSIDE', `The region of interest (${roi.width}x${roi.height} at ${roi.left},${roi.top}) does not fit in the ${width}x${height} frame`);
  }
  if (!raw) return picture.extract(roi).jpeg({ quality: 90 }).toBuffer();
  return { data: await picture.extract(roi).raw().toBuffer(), width: roi.width, height: roi.height, channels: raw.channels };
}
