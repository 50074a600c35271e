/**
 * Messages between an EmbeddingWorker (main thread) and its thread. Everything here crosses
 * `postMessage`, so it is plain data; the feature vectors of a request travel as one
 * transferred Float32Array (no copy).
 */
import type { FitPolicy, RawImage } from '../image/index.js';
import type { BackboneLoadInWorker, StopMessage } from '../threads/backbone-thread.js';
import type { SerialisedError } from '../threads/serialised-error.js';

export type EmbeddingWorkerData = BackboneLoadInWorker;

export interface EmbedRequestOptions {
  fit: FitPolicy;
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
      /** Input i's vector is features[i * featureSize, (i + 1) * featureSize) when errors[i] is null. */
      features: Float32Array;
      featureSize: number;
      hashes: (string | null)[];
      errors: (SerialisedError | null)[];
      decodeMs: number;
      featuresMs: number;
    }
  | { type: 'failed'; requestId: number; error: SerialisedError };
