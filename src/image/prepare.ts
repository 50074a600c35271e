/**
 * Frame -> RGB bytes of the backbone's input size, in a single sharp pipeline
 * (decode with shrink-on-load, EXIF orientation, crop/pad, colour conversion, raw out).
 *
 * Shrink-on-load: libjpeg can decode a JPEG at 1/2, 1/4 or 1/8 scale (DCT scaling), far
 * less work than decoding 1080p and throwing most of it away. sharp does this itself for a
 * `resize` (fastShrinkOnLoad, on by default) but not when an `extract` comes before the
 * resize (sharp's pipeline.cc: no pre-shrink with a pre-resize extract). So a window of a
 * large JPEG is cut after the resize (see shrinkOnLoadWindow): the whole frame is scaled
 * so the window lands on the output size, then the window is cut out; libvips computes
 * only the pixels of the cut, and the decode runs at the reduced scale.
 */
import sharp from 'sharp';
import { LaneVisionError } from '../errors.js';
import type { FitPolicy, ImageInput, PreparedImage, PrepareOptions, ViewTransform } from './types.js';
import { checkCrop, checkView, isPlainView, windowFor, type PixelWindow } from './geometry.js';
import { ImageErrorCode, imageError } from './errors.js';
import { checkLimits, type ImageSource, resolveSource, type SourceLimits } from './source.js';
import { explainDecodeFailure, openPipeline } from './decoder.js';

/** Backbones take 224-ish inputs; this bound only stops a typo from allocating gigabytes. */
const MAX_OUTPUT_SIDE = 4096;
const BLACK = { r: 0, g: 0, b: 0 };

type Roi = Extract<FitPolicy, { kind: 'roi' }>;
type Size = { width: number; height: number };

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
  const { width, height, fit, view } = checkPrepareOptions(options);
  const limits = checkLimits(options);
  if (fit.kind === 'roi' && source.kind === 'raw') checkRoiInside(fit, source.width, source.height);

  let data: Uint8Array;
  try {
    data = view || (fit.crop && !centredCropOnly(fit)) || roiShrinksOnLoad(source, fit, { width, height })
      ? await prepareWindow(source, { width, height }, fit, view ?? checkView({}), limits.maxInputPixels)
      : await prepareWhole(source, { width, height }, fit, limits.maxInputPixels);
  } catch (err) {
    throw await explainFailure(err, source, fit, limits.maxInputPixels);
  }
  return { data, width, height, sourceHash: source.hash };
}

/** A centred crop of a whole frame or of a pixel region needs no frame size: the common case, kept off metadata(). */
function centredCropOnly(fit: FitPolicy): boolean {
  return fit.crop !== undefined && 'fraction' in fit.crop && fit.kind !== 'contain';
}

/**
 * A region of interest of a JPEG at least twice the output takes the window path, which
 * reads the frame's size (a header parse, about 0.1 ms) so it can decode at a reduced scale.
 */
function roiShrinksOnLoad(source: ImageSource, fit: FitPolicy, size: Size): boolean {
  if (fit.kind !== 'roi' || !canShrinkOnLoad(source)) return false;
  const fraction = fit.crop && 'fraction' in fit.crop ? fit.crop.fraction : 1;
  return coverScale({ width: fit.width * fraction, height: fit.height * fraction }, size) <= MAX_SHRINK_ON_LOAD_SCALE;
}

/** libjpeg's DCT scaling is the shrink-on-load worth having; sharp's WebP one is already used by plain resizes. */
function canShrinkOnLoad(source: ImageSource): boolean {
  return source.kind === 'encoded' && source.format === 'jpeg';
}

/** libjpeg shrinks by 2 at the least: a window less than twice the output decodes at full scale either way. */
const MAX_SHRINK_ON_LOAD_SCALE = 0.5;

/** The scale at which `window` covers `size`. */
function coverScale(window: Size, size: Size): number {
  return Math.max(size.width / window.width, size.height / window.height);
}

/**
 * `window` of the frame covering the output, cut after the resize so the JPEG decodes at a
 * reduced scale; undefined where that gains nothing (not a JPEG, a window under twice the output).
 * Equal to extract-then-resize up to sub-pixel rounding of the window's edges.
 */
function shrinkOnLoadWindow(source: ImageSource, frame: Size, window: PixelWindow, size: Size, maxInputPixels: number): sharp.Sharp | undefined {
  if (!canShrinkOnLoad(source)) return undefined;
  const scale = coverScale(window, size);
  if (scale > MAX_SHRINK_ON_LOAD_SCALE) return undefined;
  // frame >= window >= size / scale on both axes, so the scaled frame holds the output.
  const scaledWidth = Math.max(size.width, Math.round(frame.width * scale));
  const scaledHeight = Math.max(size.height, Math.round(frame.height * scale));
  // The output is centred on the window's centre (cover), kept inside the scaled frame.
  const left = Math.min(Math.max(0, Math.round((window.left + window.width / 2) * scale - size.width / 2)), scaledWidth - size.width);
  const top = Math.min(Math.max(0, Math.round((window.top + window.height / 2) * scale - size.height / 2)), scaledHeight - size.height);
  return openPipeline(source, maxInputPixels)
    .resize(scaledWidth, scaledHeight, { fit: 'fill' })
    .extract({ left, top, ...size });
}

/** The frame (or its pixel region, or a centred crop of either) scaled to the output in one pipeline. */
async function prepareWhole(source: ImageSource, size: Size, fit: FitPolicy, maxInputPixels: number): Promise<Uint8Array> {
  const background = fit.kind === 'contain' ? (fit.background ?? BLACK) : BLACK;
  const fraction = fit.crop && 'fraction' in fit.crop ? fit.crop.fraction : 1;
  let pipeline = openPipeline(source, maxInputPixels);
  if (fit.kind === 'roi') {
    // A centred crop of a region is a smaller region: pixel arithmetic, no frame size needed.
    const w = Math.max(1, Math.round(fit.width * fraction));
    const h = Math.max(1, Math.round(fit.height * fraction));
    pipeline = pipeline
      .extract({ left: fit.left + Math.floor((fit.width - w) / 2), top: fit.top + Math.floor((fit.height - h) / 2), width: w, height: h })
      .resize(size.width, size.height, { fit: 'cover', position: 'centre' });
  } else if (fraction < 1) {
    // Covering (w/f) x (h/f) and keeping the centre w x h is the same as cutting the
    // centred f x width by f x height and covering w x h with it, without reading the frame's size.
    const coverWidth = Math.max(size.width, Math.round(size.width / fraction));
    const coverHeight = Math.max(size.height, Math.round(size.height / fraction));
    pipeline = pipeline
      .resize(coverWidth, coverHeight, { fit: 'cover', position: 'centre' })
      .extract({ left: Math.floor((coverWidth - size.width) / 2), top: Math.floor((coverHeight - size.height) / 2), ...size });
  } else {
    pipeline = pipeline.resize(size.width, size.height, fit.kind === 'contain' ? { fit: 'contain', background } : { fit: 'cover', position: 'centre' });
  }
  return toRgb(pipeline, background, size, source.origin);
}

/**
 * A window of the frame (crop rectangle, view zoom and shift) scaled to the output, then
 * the view's rotation and brightness. Needs the frame's size (a header read); training
 * views and test-time views take this path, a lane's plain frames only for crop rectangles.
 */
async function prepareWindow(source: ImageSource, size: Size, fit: FitPolicy, view: Required<ViewTransform>, maxInputPixels: number): Promise<Uint8Array> {
  const background = fit.kind === 'contain' ? (fit.background ?? BLACK) : BLACK;
  const frame = await frameSize(source, maxInputPixels);
  const base = fit.kind === 'roi' ? fit : { left: 0, top: 0, ...frame };
  if (fit.kind === 'roi') checkRoiInside(fit, frame.width, frame.height);
  const window = windowFor(base, fit.crop, view, frame);
  // A rotated output needs the corners the rotation swings in: a window larger by |cos| + |sin|.
  const radians = (view.angle * Math.PI) / 180;
  const spread = view.angle === 0 ? 1 : Math.abs(Math.cos(radians)) + Math.abs(Math.sin(radians));
  const inner = spread === 1 ? window : grow(window, spread, frame);
  const outWidth = Math.round(size.width * (inner.width / window.width));
  const outHeight = Math.round(size.height * (inner.height / window.height));
  const shrunk = spread === 1 && fit.kind !== 'contain' ? shrinkOnLoadWindow(source, frame, window, size, maxInputPixels) : undefined;
  let pipeline =
    shrunk ??
    openPipeline(source, maxInputPixels)
      .extract(inner)
      .resize(outWidth, outHeight, fit.kind === 'contain' ? { fit: 'contain', background } : { fit: 'cover', position: 'centre' });
  if (spread !== 1) {
    // Rotated, the canvas is the bounding box of the turned image; its centre is the output.
    // Floor of the box's size: the real one is never smaller, so the extract stays inside.
    const cos = Math.abs(Math.cos(radians));
    const sin = Math.abs(Math.sin(radians));
    const boxWidth = Math.floor(outWidth * cos + outHeight * sin);
    const boxHeight = Math.floor(outWidth * sin + outHeight * cos);
    pipeline = pipeline
      .rotate(view.angle, { background })
      .extract({ left: Math.floor((boxWidth - size.width) / 2), top: Math.floor((boxHeight - size.height) / 2), ...size });
  }
  if (view.brightness !== 1) pipeline = pipeline.linear(view.brightness, 0);
  return toRgb(pipeline, background, size, source.origin);
}

/** `window` grown by `factor` around its centre, kept inside the frame. */
function grow(window: PixelWindow, factor: number, frame: Size): PixelWindow {
  const width = Math.min(frame.width, Math.round(window.width * factor));
  const height = Math.min(frame.height, Math.round(window.height * factor));
  const left = Math.min(Math.max(0, Math.round(window.left + window.width / 2 - width / 2)), frame.width - width);
  const top = Math.min(Math.max(0, Math.round(window.top + window.height / 2 - height / 2)), frame.height - height);
  return { left, top, width, height };
}

async function frameSize(source: ImageSource, maxInputPixels: number): Promise<Size> {
  if (source.kind === 'raw') return { width: source.width, height: source.height };
  const meta = await openPipeline(source, maxInputPixels).metadata();
  return { width: meta.autoOrient.width, height: meta.autoOrient.height };
}

async function toRgb(pipeline: sharp.Sharp, background: { r: number; g: number; b: number }, size: Size, origin: string): Promise<Uint8Array> {
  const { data, info } = await pipeline
    // Transparent pixels become the background rather than whatever colour they hide.
    .flatten({ background })
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  // Guard the contract downstream code relies on; sharp should never break it.
  if (info.width !== size.width || info.height !== size.height || info.channels !== 3 || data.length !== size.width * size.height * 3) {
    throw imageError(
      ImageErrorCode.CORRUPT,
      `${origin} decoded to ${info.width}x${info.height} with ${info.channels} channels instead of ${size.width}x${size.height} RGB.`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

function checkPrepareOptions(options: PrepareOptions): { width: number; height: number; fit: FitPolicy; view?: Required<ViewTransform> } {
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
  if (fit.crop !== undefined) checkCrop(fit.crop);
  // A plain view takes the plain path: the same frame must give the same pixels either way.
  const view = isPlainView(options.view) ? undefined : checkView(options.view!);
  return { width: options.width, height: options.height, fit, view };
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
