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
