/**
 * Frame -> RGB bytes of the backbone's input size, in a single sharp pipeline
 * (decode with shrink-on-load, EXIF orientation, crop/pad, colour conversion, raw out).
 */
import sharp from 'sharp';
import { LaneVisionError } from '../errors.js';
import type { FitPolicy, ImageInput, PreparedImage, PrepareOptions } from './types.js';
import { ImageErrorCode, imageError } from './errors.js';
import { checkLimits, type ImageSource, resolveSource, type SourceLimits } from './source.js';
import { explainDecodeFailure, openPipeline } from './decoder.js';

/** Backbones take 224-ish inputs; this bound only stops a typo from allocating gigabytes. */
const MAX_OUTPUT_SIDE = 4096;
const BLACK = { r: 0, g: 0, b: 0 };

type Roi = Extract<FitPolicy, { kind: 'roi' }>;

/**
 * Decodes `input` and returns exactly `options.width` x `options.height` RGB bytes,
 * upright per EXIF. Throws LaneVisionError (codes in ImageErrorCode) for anything else.
 * Raw pixels are read in place, not copied: do not reuse their buffer until this settles.
 */
export async function prepareImage(input: ImageInput, options: PrepareOptions): Promise<PreparedImage> {
  checkPrepareOptions(options); // before touching the input, so bad options fail as options
  return prepareSource(await readImageSource(input, options), options);
}

/**
 * First half of prepareImage: reads and checks the input and hashes it, without decoding,
 * so a caller holding features for that hash can skip the decode.
 */
export function readImageSource(input: ImageInput, limits: Partial<SourceLimits> = {}): Promise<ImageSource> {
  return resolveSource(input, checkLimits(limits));
}

/** Second half of prepareImage: decodes a source from readImageSource. */
export async function prepareSource(source: ImageSource, options: PrepareOptions): Promise<PreparedImage> {
  const { width, height, fit } = checkPrepareOptions(options);
  const limits = checkLimits(options);
  if (fit.kind === 'roi' && source.kind === 'raw') checkRoiInside(fit, source.width, source.height);

  const background = fit.kind === 'contain' ? (fit.background ?? BLACK) : BLACK;
  let pipeline = openPipeline(source, limits.maxInputPixels);
  if (fit.kind === 'roi') pipeline = pipeline.extract({ left: fit.left, top: fit.top, width: fit.width, height: fit.height });
  pipeline = pipeline
    .resize(width, height, fit.kind === 'contain' ? { fit: 'contain', background } : { fit: 'cover', position: 'centre' })
    // Transparent pixels become the background rather than whatever colour they hide.
    .flatten({ background })
    .toColourspace('srgb')
    .raw();

  let output: { data: Buffer; info: sharp.OutputInfo };
  try {
    output = await pipeline.toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw await explainFailure(err, source, fit, limits.maxInputPixels);
  }
  const { data, info } = output;
  // Guard the contract downstream code relies on; sharp should never break it.
  if (info.width !== width || info.height !== height || info.channels !== 3 || data.length !== width * height * 3) {
    throw imageError(
      ImageErrorCode.CORRUPT,
      `${source.origin} decoded to ${info.width}x${info.height} with ${info.channels} channels instead of ${width}x${height} RGB.`,
    );
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, sourceHash: source.hash };
}

function checkPrepareOptions(options: PrepareOptions): { width: number; height: number; fit: FitPolicy } {
  if (typeof options !== 'object' || options === null) {
    throw imageError(ImageErrorCode.OPTIONS, 'prepareImage needs options with the output width and height.');
  }
  for (const side of ['width', 'height'] as const) {
    const value = options[side];
    if (!Number.isSafeInteger(value) || value < 1 || value > MAX_OUTPUT_SIDE) {
      throw imageError(ImageErrorCode.OPTIONS, `The output ${side} must be a whole number from 1 to ${MAX_OUTPUT_SIDE}, got ${String(value)}.`);
    }
  }
  const fit: FitPolicy = options.fit ?? { kind: 'cover' };
  switch (fit.kind) {
    case 'cover':
      break;
    case 'contain':
      if (fit.background !== undefined) checkColour(fit.background);
      break;
    case 'roi':
      for (const key of ['left', 'top', 'width', 'height'] as const) {
        const value = fit[key];
        const min = key === 'left' || key === 'top' ? 0 : 1;
        if (!Number.isSafeInteger(value) || value < min) {
          throw imageError(ImageErrorCode.OPTIONS, `The region of interest needs ${key} as a whole number of pixels >= ${min}, got ${String(value)}.`);
        }
      }
      break;
    default:
      throw imageError(ImageErrorCode.OPTIONS, `Unknown fit policy ${JSON.stringify((fit as { kind?: unknown }).kind)}; use cover, contain or roi.`);
  }
  return { width: options.width, height: options.height, fit };
}

function checkColour(colour: { r: number; g: number; b: number }): void {
  const ok =
    typeof colour === 'object' &&
    colour !== null &&
    [colour.r, colour.g, colour.b].every((v) => Number.isInteger(v) && v >= 0 && v <= 255);
  if (!ok) throw imageError(ImageErrorCode.OPTIONS, `The padding colour must be {r, g, b} with whole numbers 0-255, got ${JSON.stringify(colour)}.`);
}

function checkRoiInside(roi: Roi, frameWidth: number, frameHeight: number): void {
  if (roi.left + roi.width <= frameWidth && roi.top + roi.height <= frameHeight) return;
  throw imageError(
    ImageErrorCode.ROI_OUTSIDE,
    `The region of interest (left ${roi.left}, top ${roi.top}, ${roi.width}x${roi.height}) reaches outside the ${frameWidth}x${frameHeight} frame. ` +
      `Pick a region inside the frame, or check the camera resolution.`,
  );
}

/**
 * A failed pipeline is usually a damaged frame; for a region of interest it may instead
 * be a region outside the frame. Reading the header only on this failure path keeps the
 * metadata call off the per-frame path.
 */
async function explainFailure(err: unknown, source: ImageSource, fit: FitPolicy, maxInputPixels: number): Promise<LaneVisionError> {
  if (fit.kind === 'roi' && source.kind === 'encoded' && err instanceof Error && /extract_area/.test(err.message)) {
    try {
      const meta = await sharp(source.bytes, { limitInputPixels: maxInputPixels }).metadata();
      checkRoiInside(fit, meta.autoOrient.width, meta.autoOrient.height);
    } catch (roiErr) {
      if (roiErr instanceof LaneVisionError) return roiErr;
    }
  }
  return explainDecodeFailure(err, source, maxInputPixels);
}
