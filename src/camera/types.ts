/** What a camera of any kind hands the lane, and what a connection to one looks like. */
import type { RawImage } from '../image/types.js';

/**
 * A frame as a camera hands it over: encoded bytes (JPEG, or a watched file's format), or
 * raw RGB pixels from an ffmpeg camera in raw output mode (the `RawImage` the classify path
 * takes as it is: no JPEG encode in ffmpeg, no decode in the lane).
 */
export type CameraImage = Buffer | RawImage;

/** Where frames come from: an HTTP snapshot URL, an MJPEG stream, RTSP or USB through ffmpeg, or a watched folder. */
export type CameraKind = 'snapshot' | 'mjpeg' | 'rtsp' | 'usb' | 'folder';
export const CAMERA_KINDS: readonly CameraKind[] = ['snapshot', 'mjpeg', 'rtsp', 'usb', 'folder'];

/** Free-run sends frames at up to the frame-rate cap; triggered sends one frame per request (a photo-eye). */
export type CameraMode = 'free-run' | 'triggered';

/** A region of interest in source pixels, cut out at the source so the rest of the lane never sees the full frame. */
export interface Roi {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface CameraFrame {
  /**
   * The encoded image: the camera's own JPEG bytes (re-encoded only when a ROI is cut out),
   * or a watched file's bytes; or, from an ffmpeg camera with raw output, RGB pixels.
   */
  image: CameraImage;
  /** 1, 2, 3, ... per camera, counted over every frame received (so gaps show frames that were not sent). */
  seq: number;
  /** When the frame arrived (ms since the epoch). */
  timestamp: number;
  kind: CameraKind;
  /** The file a watched folder's frame was read from. */
  path?: string;
}

/** Frames received from a camera as it sends them, before any is chosen for the lane. */
export interface FrameSink {
  (image: CameraImage, extra?: { path?: string }): void;
}

/**
 * Resolves true when the camera wants a frame (free-run: at the frame-rate cap; triggered:
 * when a trigger waits), false once it stops. Pull sources (snapshot, folder) fetch one frame
 * per true; stream sources ignore it.
 */
export type Demand = () => Promise<boolean>;

/**
 * One kind of camera. `run` holds one connection: it delivers frames to `sink` until the
 * connection fails (rejects with why) or `signal` aborts (resolves, everything it started
 * ended: no child process or socket is left behind).
 */
export interface Connector {
  readonly kind: CameraKind;
  /** The source for logs and status, with any password removed. */
  readonly label: string;
  run(sink: FrameSink, demand: Demand, signal: AbortSignal): Promise<void>;
}

/** Connection state, as the status shows it. */
export type CameraState =
  | { state: 'connecting' }
  | { state: 'streaming' }
  | { state: 'reconnecting'; error: Error; retryInMs: number; attempts: number }
  | { state: 'failed'; error: Error }
  | { state: 'stopped' };

export interface CameraCounters {
  /** Frames the camera delivered. */
  received: number;
  /** Frames handed to the lane. */
  sent: number;
  /** Frames not sent because a newer one replaced them while they waited (frame-rate cap, slow crop). */
  dropped: number;
  /** Connections lost and tried again. */
  reconnects: number;
}
