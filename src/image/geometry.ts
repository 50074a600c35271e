/**
 * Where in a frame the backbone looks: the crop of a fit policy and the zoom / shift of a
 * view, checked and turned into a pixel window. Kept apart from the sharp pipeline so the
 * same rules name cache keys and stored models.
 */
import type { CropRegion, FitPolicy, ViewTransform } from './types.js';
import { ImageErrorCode, imageError } from './errors.js';

/** A crop smaller than this is a typo, not a region of a frame. */
const MIN_CROP_FRACTION = 0.05;
const VIEW_LIMITS = { scale: [0.25, 2], shift: [-0.5, 0.5], angle: [-90, 90], brightness: [0.2, 5] } as const;

export interface PixelWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Throws IMAGE_OPTIONS unless `crop` is a centred fraction or a rectangle of fractions inside the frame. */
export function checkCrop(crop: CropRegion): CropRegion {
  const fail = (why: string): never => {
    throw imageError(ImageErrorCode.OPTIONS, `The crop ${JSON.stringify(crop)} is invalid: ${why}.`);
  };
  if (typeof crop !== 'object' || crop === null) fail('expected {fraction} or {left, top, width, height}');
  const isFraction = (v: unknown, min: number) => typeof v === 'number' && Number.isFinite(v) && v >= min && v <= 1;
  if ('fraction' in crop) {
    if (!isFraction(crop.fraction, MIN_CROP_FRACTION)) fail(`fraction must be from ${MIN_CROP_FRACTION} to 1`);
    return { fraction: crop.fraction };
  }
  const { left, top, width, height } = crop as Extract<CropRegion, { left: number }>;
  if (!isFraction(left, 0) || !isFraction(top, 0)) fail('left and top must be fractions of the frame from 0 to 1');
  if (!isFraction(width, MIN_CROP_FRACTION) || !isFraction(height, MIN_CROP_FRACTION)) fail(`width and height must be fractions from ${MIN_CROP_FRACTION} to 1`);
  if (left + width > 1 + 1e-9 || top + height > 1 + 1e-9) fail('the rectangle reaches outside the frame');
  return { left, top, width, height };
}

/** Throws IMAGE_OPTIONS for a view outside the sane ranges; returns it with defaults filled in. */
export function checkView(view: ViewTransform): Required<ViewTransform> {
  const resolved = { scale: view.scale ?? 1, dx: view.dx ?? 0, dy: view.dy ?? 0, angle: view.angle ?? 0, brightness: view.brightness ?? 1 };
  const within = (name: string, value: number, [low, high]: readonly [number, number]) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < low || value > high) {
      throw imageError(ImageErrorCode.OPTIONS, `The view's ${name} must be a number from ${low} to ${high}, got ${String(value)}.`);
    }
  };
  within('scale', resolved.scale, VIEW_LIMITS.scale);
  within('dx', resolved.dx, VIEW_LIMITS.shift);
  within('dy', resolved.dy, VIEW_LIMITS.shift);
  within('angle', resolved.angle, VIEW_LIMITS.angle);
  within('brightness', resolved.brightness, VIEW_LIMITS.brightness);
  return resolved;
}

export function isPlainView(view: ViewTransform | undefined): boolean {
  if (!view) return true;
  const v = checkView(view);
  return v.scale === 1 && v.dx === 0 && v.dy === 0 && v.angle === 0 && v.brightness === 1;
}

/** The frame part the crop (and view) selects, in pixels of the upright frame; inside `base`. */
export function windowFor(base: PixelWindow, crop: CropRegion | undefined, view: Required<ViewTransform>, frame: { width: number; height: number }): PixelWindow {
  let x = base.left;
  let y = base.top;
  let w = base.width;
  let h = base.height;
  if (crop && 'fraction' in crop) {
    x += (w * (1 - crop.fraction)) / 2;
    y += (h * (1 - crop.fraction)) / 2;
    w *= crop.fraction;
    h *= crop.fraction;
  } else if (crop) {
    x += w * crop.left;
    y += h * crop.top;
    w *= crop.width;
    h *= crop.height;
  }
  // The view zooms around the window's centre, then shifts it by a share of its size.
  const centreX = x + w / 2 + view.dx * w;
  const centreY = y + h / 2 + view.dy * h;
  w = Math.min(frame.width, w * view.scale);
  h = Math.min(frame.height, h * view.scale);
  // Kept inside the frame: a shifted window slides back rather than reading padding.
  const left = Math.min(Math.max(0, Math.round(centreX - w / 2)), frame.width - Math.max(1, Math.round(w)));
  const top = Math.min(Math.max(0, Math.round(centreY - h / 2)), frame.height - Math.max(1, Math.round(h)));
  return { left, top, width: Math.max(1, Math.round(w)), height: Math.max(1, Math.round(h)) };
}

/** Stable text for a fit policy, for cache keys: equal text, equal frames. */
export function describeFit(fit: FitPolicy): string {
  let text: string;
  switch (fit.kind) {
    case 'cover':
      text = 'cover';
      break;
    case 'contain': {
      const bg = fit.background ?? { r: 0, g: 0, b: 0 };
      text = `contain(${bg.r},${bg.g},${bg.b})`;
      break;
    }
    case 'roi':
      text = `roi(${fit.left},${fit.top},${fit.width},${fit.height})`;
      break;
  }
  if (!fit.crop) return text;
  const crop = fit.crop;
  return `${text}+crop(${'fraction' in crop ? crop.fraction : `${crop.left},${crop.top},${crop.width},${crop.height}`})`;
}

/** Stable text for a view ('' for the plain frame), for cache keys. */
export function describeView(view: ViewTransform | undefined): string {
  if (isPlainView(view)) return '';
  const v = checkView(view!);
  return `view(${v.scale},${v.dx},${v.dy},${v.angle},${v.brightness})`;
}
