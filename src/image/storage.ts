/**
 * A frame as bytes for the dataset store: originals are kept when they are already
 * JPEG/PNG/WebP (no generation loss, hash of the file = hash of the source), everything
 * else becomes a lossless PNG.
 */
import type { ImageInput, StorableImage, StorageFormat, StorageOptions } from './types.js';
import { checkLimits, resolveSource } from './source.js';
import { explainDecodeFailure, openPipeline } from './decoder.js';

const EXTENSIONS: Record<StorageFormat, StorableImage['extension']> = { jpeg: '.jpg', png: '.png', webp: '.webp' };

function isStorageFormat(format: string): format is StorageFormat {
  return format in EXTENSIONS;
}

/**
 * Checks that `input` fully decodes and returns bytes to write plus their extension.
 * `sha256` equals prepareImage's `sourceHash` for the same input.
 */
export async function encodeForStorage(input: ImageInput, options: StorageOptions = {}): Promise<StorableImage> {
  const limits = checkLimits(options ?? {});
  const source = await resolveSource(input, limits);
  try {
    if (source.kind === 'encoded' && isStorageFormat(source.format)) {
      // stats() pulls every pixel through the decoder (so truncation fails here, as it
      // would at training time) while streaming: no full-size buffer is allocated.
      const pipeline = openPipeline(source, limits.maxInputPixels);
      const meta = await pipeline.metadata();
      await pipeline.stats();
      return {
        bytes: source.bytes,
        format: source.format,
        extension: EXTENSIONS[source.format],
        width: meta.autoOrient.width,
        height: meta.autoOrient.height,
        sha256: source.hash,
      };
    }
    // Raw pixels, GIF, TIFF, AVIF: store upright as lossless PNG, keeping alpha.
    let pipeline = openPipeline(source, limits.maxInputPixels);
    // sharp writes sRGB unless told otherwise; a grey camera stays one channel on disk.
    if (source.kind === 'raw' && source.channels === 1) pipeline = pipeline.toColourspace('b-w');
    const { data, info } = await pipeline.png().toBuffer({ resolveWithObject: true });
    return { bytes: data, format: 'png', extension: '.png', width: info.width, height: info.height, sha256: source.hash };
  } catch (err) {
    throw await explainDecodeFailure(err, source, limits.maxInputPixels);
  }
}
