/**
 * Messages between an EmbeddingWorker (main thread) and its thread. Everything here crosses
 * `postMessage`, so it is plain data; the feature vectors of a request travel as one
 * transferred Float32Array (no copy).
 */
import type { FitPolicy, RawImage, ViewTransform } from '../image/index.js';
import type { BackboneLoadInWorker, StopMessage } from '../threads/backbone-thread.js';
import type { SerialisedError } from '../threads/serialised-error.js';

export type EmbeddingWorkerData = BackboneLoadInWorker;

export interface EmbedRequestOptions {
  fit: FitPolicy;
  /** A test-time view of each frame; default the plain frame. */
  view?: ViewTransform;
  /** The backbone's features (default) or its own classifier's output (see EmbedOptions.output). */
  output?: 'features' | 'classifier';
  maxInputPixels?: number;
  maxInputBytes?: number;
}

/** Inputs as they cross: bytes, text (a path, base64 or a data URL) or raw pixels. */
export type TransferableInput = Uint8Array | string | RawImage;

export type ToEmbeddingWorker = { type: 'embed'; requestId: number; inputs: TransferableInput[]; options: EmbedRequestOptions } | StopMessage;

/** Besides the LoadMessage every backbone thread sends (handled by BackboneThread). */
export type FromEmbeddingWorker =
  | {
      type: 'embedded';
      requestId: number;
      /** Input i's vector is vectors[i * size, (i + 1) * size) when errors[i] is null. */
      vectors: Float32Array;
      size: number;
      hashes: (string | null)[];
      errors: (SerialisedError | null)[];
      decodeMs: number;
      featuresMs: number;
    }
  | { type: 'failed'; requestId: number; error: SerialisedError };

/**
 * Frames per backbone run inside a request. A request's first decode and last backbone run
 * overlap nothing (when the lane sends one batch at a time), so smaller parts leave less idle:
 * a micro-batch of 8 runs as 4 x 2. MobileNet runs 2 frames as fast per frame as 4 on ONNX
 * Runtime (bench frame-path, backbone alone by batch size). A lane's batch of 8 photos in
 * runs of 2 against 4 (medians of interleaved pairs, 2 cores shared with other work): 219
 * against 196 frames/s float and 295 against 266 int8 at load 7-9; 259 against 253 and 344
 * against 342 at load 5. A small gain (runs of 2 faster in 46 of 72 pairs), never a loss.
 */
export const FRAMES_PER_RUN = 2;
