import { LaneVisionError } from '../errors.js';

/** Stable codes of the image stage, so callers branch on `err.code`, not on text. */
export const ImageErrorCode = {
  /** Zero bytes, an empty string or a raw frame without pixels. */
  EMPTY: 'IMAGE_EMPTY',
  /** Looks like a supported image but does not decode (truncated, damaged). */
  CORRUPT: 'IMAGE_CORRUPT',
  /** A PDF, SVG, text or any format we do not read. */
  UNSUPPORTED: 'IMAGE_UNSUPPORTED',
  /** More pixels or bytes than the configured caps. */
  TOO_LARGE: 'IMAGE_TOO_LARGE',
  /** A file path that does not exist or is not a readable file. */
  NOT_FOUND: 'IMAGE_NOT_FOUND',
  /** Text that would be read as a file path where reading files is off (a node's default). */
  FILES_OFF: 'IMAGE_FILES_OFF',
  /** A file path outside the folders that may be read. */
  FILE_NOT_ALLOWED: 'IMAGE_FILE_NOT_ALLOWED',
  /** Something that is not an image input at all (number, null, wrong object shape). */
  INPUT_TYPE: 'INPUT_TYPE',
  /** The region of interest reaches outside the frame. */
  ROI_OUTSIDE: 'IMAGE_ROI_OUTSIDE',
  /** Invalid prepare/storage options (sizes, caps, fit policy). */
  OPTIONS: 'IMAGE_OPTIONS',
  /** Decoding took longer than the safety timeout. */
  TIMEOUT: 'IMAGE_TIMEOUT',
} as const;

export type ImageErrorCode = (typeof ImageErrorCode)[keyof typeof ImageErrorCode];

export function imageError(code: ImageErrorCode, message: string, cause?: unknown): LaneVisionError {
  return new LaneVisionError(code, message, cause === undefined ? undefined : { cause });
}

/** Human size: "48.0 MiB", "12.3 KiB". */
export function describeBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/** Human pixel count: "40.0 MP" or "12,345 pixels". */
export function describePixels(pixels: number): string {
  return pixels >= 100_000 ? `${(pixels / 1e6).toFixed(1)} MP` : `${pixels.toLocaleString('en-US')} pixels`;
}

/**
 * Turns a sharp/libvips failure into a LaneVisionError. libvips reports problems only as
 * text, so matching its wording is the one way to tell a pixel-limit refusal from damage.
 */
export function translateDecodeError(err: unknown, what: string, limits: { maxInputPixels: number; timeoutSeconds: number }): LaneVisionError {
  if (err instanceof LaneVisionError) return err;
  const text = err instanceof Error ? err.message : String(err);
  if (/exceeds pixel limit/i.test(text)) {
    return imageError(
      ImageErrorCode.TOO_LARGE,
      `${what} has more pixels than the limit of ${describePixels(limits.maxInputPixels)}; it was refused before decoding. Use a smaller camera resolution or raise maxInputPixels.`,
      err,
    );
  }
  if (/timeout/i.test(text)) {
    return imageError(
      ImageErrorCode.TIMEOUT,
      `${what} took longer than ${limits.timeoutSeconds} s to decode and was abandoned.`,
      err,
    );
  }
  if (/unsupported image format/i.test(text)) {
    return imageError(ImageErrorCode.UNSUPPORTED, `${what} is not an image format Lane Vision reads (JPEG, PNG, WebP, GIF, TIFF, AVIF).`, err);
  }
  const firstLine = text.split('\n')[0]?.trim() ?? '';
  return imageError(
    ImageErrorCode.CORRUPT,
    `${what} is damaged or incomplete and cannot be decoded (${firstLine}). Check the camera connection or re-capture the frame.`,
    err,
  );
}
