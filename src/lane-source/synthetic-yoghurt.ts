/**
 * A synthetic yoghurt lane drawn by the project itself, so demos and tests need no photos:
 * each frame is an SVG scene (yoghurt-scene.ts) rasterised by sharp, then given what a real
 * lane camera adds: exposure and white-balance drift, focus blur and sensor noise.
 * Everything that varies comes from the seed, so a seed always gives the same JPEG bytes.
 */
import sharp from 'sharp';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import { between, createRandom, mixSeed, type RandomSource } from '../random.js';
import { checkSeed } from './seed.js';
import { CUP_SHAPE, drawYoghurtScene, sceneExtent, type YoghurtScene } from './yoghurt-scene.js';
import { isYoghurtFlavour, YOGHURT_FLAVOURS, type YoghurtFlavour } from './yoghurt-flavours.js';
import type { LaneFrame, LaneSource } from './types.js';

const debug = createDebug('lane-vision:lane-source');

export const DEFAULT_FRAME_SIZE = { width: 640, height: 480 } as const;
const MIN_SIDE = 64;
const MAX_SIDE = 4096;
const JPEG_QUALITY = 88;

export interface YoghurtFrameOptions {
  flavour: YoghurtFlavour;
  /** Whole number; the same seed gives the same frame. */
  seed: number;
  /** Pixels; default 640 x 480. */
  width?: number;
  height?: number;
}

/** Camera effects applied to the rasterised scene. */
interface CameraEffects {
  /** Multiplies all channels (auto-exposure drift). */
  exposure: number;
  /** -1 cool (bluish) .. +1 warm (yellowish) light. */
  warmth: number;
  /** Gaussian blur sigma in pixels at 480 px height (focus, vibration). */
  blur: number;
  /** Standard deviation of per-pixel sensor noise, in 0..255 levels. */
  noise: number;
}

/** Renders one lane-camera frame of a yoghurt cup as JPEG. */
export async function renderYoghurtFrame(options: YoghurtFrameOptions): Promise<Buffer> {
  const flavour = checkFlavour(options?.flavour);
  const seed = checkSeed(options.seed);
  const width = checkSide(options.width ?? DEFAULT_FRAME_SIZE.width, 'width');
  const height = checkSide(options.height ?? DEFAULT_FRAME_SIZE.height, 'height');

  const random = createRandom(mixSeed(seed));
  const scene = pickScene(random, flavour, width, height);
  const camera = pickCamera(random);
  const { unit } = sceneExtent(width, height);
  try {
    const pixels = await sharp(Buffer.from(drawYoghurtScene(scene)))
      .flatten({ background: '#000000' })
      .blur(Math.max(0.3, camera.blur * unit))
      .raw()
      .toBuffer();
    exposeWithNoise(pixels, camera, createRandom(mixSeed(seed, 1)));
    return await sharp(pixels, { raw: { width, height, channels: 3 } }).jpeg({ quality: JPEG_QUALITY }).toBuffer();
  } catch (err) {
    // Our own SVG failing to render means a broken sharp/librsvg install, not bad input.
    throw new LaneVisionError('SOURCE_RENDER_FAILED', `Could not render a synthetic ${flavour} frame: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function checkFlavour(flavour: unknown): YoghurtFlavour {
  if (!isYoghurtFlavour(flavour)) {
    throw new LaneVisionError(
      'SOURCE_UNKNOWN_FLAVOUR',
      `Unknown yoghurt flavour "${String(flavour)}": choose one of ${YOGHURT_FLAVOURS.join(', ')}`,
    );
  }
  return flavour;
}

function checkSide(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_SIDE || value > MAX_SIDE) {
    throw new LaneVisionError(
      'SOURCE_BAD_SIZE',
      `Frame ${name} must be a whole number of pixels from ${MIN_SIDE} to ${MAX_SIDE}, got ${String(value)}`,
    );
  }
  return value;
}

/** Where the cup stands and how it is lit; keeps the whole cup inside the frame. */
function pickScene(random: RandomSource, flavour: YoghurtFlavour, width: number, height: number): YoghurtScene {
  const view = sceneExtent(width, height);
  const cupRadius = 110 * between(random, 0.82, 1.15);
  const viewAspect = between(random, 0.5, 0.72);
  const tilt = between(random, -18, 18);
  // Extent of the cup around its lid centre, with room for the tilt.
  const top = cupRadius * CUP_SHAPE.rimRatio * viewAspect;
  const bottom = cupRadius * (CUP_SHAPE.bodyDepth + CUP_SHAPE.bottomRatio * viewAspect);
  const halfWidth = cupRadius * CUP_SHAPE.rimRatio * 1.08;
  const margin = 0.03 * Math.min(view.width, view.height);
  const cupX = clamp(view.width / 2 + between(random, -0.2, 0.2) * view.width, halfWidth + margin, view.width - halfWidth - margin);
  const middleY = view.height / 2 + between(random, -0.08, 0.08) * view.height;
  const cupY = clamp(middleY - (bottom - top) / 2, top + margin, view.height - bottom - margin);
  return {
    flavour,
    width,
    height,
    cupX,
    cupY,
    cupRadius,
    viewAspect,
    tilt,
    spin: random(),
    lightAngle: between(random, 20, 160),
    hotspotX: between(random, 0.2, 0.8),
    hotspotY: between(random, 0.2, 0.8),
    shadowLength: between(random, 6, 30) * (cupRadius / 110),
    shadowSoftness: between(random, 4, 12),
    shadowOpacity: between(random, 0.4, 0.7),
    beltPhase: random(),
    grimeSeed: Math.floor(random() * 10000),
  };
}

function pickCamera(random: RandomSource): CameraEffects {
  return {
    exposure: between(random, 0.72, 1.2),
    warmth: between(random, -1, 1),
    blur: between(random, 0.3, 1.3),
    noise: between(random, 1.5, 6),
  };
}

function clamp(value: number, low: number, high: number): number {
  return low > high ? (low + high) / 2 : Math.min(high, Math.max(low, value));
}

/**
 * Applies exposure and white balance and adds Gaussian sensor noise, in place and in one
 * pass over the pixels (sharp has no seedable noise): part of the noise is shared by the
 * three channels of a pixel (luminance), part is per channel (colour noise).
 */
function exposeWithNoise(pixels: Buffer, camera: CameraEffects, random: RandomSource): void {
  const gainRed = camera.exposure * (1 + 0.09 * camera.warmth);
  const gainGreen = camera.exposure * (1 + 0.01 * camera.warmth);
  const gainBlue = camera.exposure * (1 - 0.12 * camera.warmth);
  const luma = camera.noise * 0.8;
  const chroma = camera.noise * 0.6;
  const table = gaussianTable();
  for (let i = 0; i + 2 < pixels.length; i += 3) {
    // Two 32-bit draws give four 16-bit indices into the table of normal samples.
    const first = (random() * 4294967296) >>> 0;
    const second = (random() * 4294967296) >>> 0;
    const shared = table[first >>> 16] * luma;
    pixels[i] = clampByte(pixels[i] * gainRed + shared + table[first & 0xffff] * chroma);
    pixels[i + 1] = clampByte(pixels[i + 1] * gainGreen + shared + table[second >>> 16] * chroma);
    pixels[i + 2] = clampByte(pixels[i + 2] * gainBlue + shared + table[second & 0xffff] * chroma);
  }
}

let gaussianSamples: Float32Array | undefined;

/** 65536 standard normal samples (fixed seed), so noise costs a table lookup, not a log and a cosine. */
function gaussianTable(): Float32Array {
  if (!gaussianSamples) {
    const random = createRandom(0x5eed);
    gaussianSamples = new Float32Array(65536);
    for (let i = 0; i < gaussianSamples.length; i += 2) {
      // Box-Muller: two independent normal samples from two uniform ones.
      const radius = Math.sqrt(-2 * Math.log(1 - random()));
      const angle = 2 * Math.PI * random();
      gaussianSamples[i] = radius * Math.cos(angle);
      gaussianSamples[i + 1] = radius * Math.sin(angle);
    }
  }
  return gaussianSamples;
}

function clampByte(value: number): number {
  return value < 0 ? 0 : value > 255 ? 255 : Math.round(value);
}

export interface SyntheticLaneOptions {
  /** Flavours on this lane; default all. */
  flavours?: readonly YoghurtFlavour[];
  /** Default 1. Frame i of a lane is the same for the same seed. */
  seed?: number;
  width?: number;
  height?: number;
  /** 'random' (default): a seeded random flavour per frame, like a mixed lane; 'round-robin': each in turn. */
  order?: 'random' | 'round-robin';
}

/** An endless stream of synthetic frames (`next()` never gives null). */
export interface SyntheticLane extends LaneSource {
  readonly flavours: readonly YoghurtFlavour[];
  next(): Promise<LaneFrame>;
}

export function createSyntheticLane(options: SyntheticLaneOptions = {}): SyntheticLane {
  const flavours = [...(options.flavours ?? YOGHURT_FLAVOURS)];
  if (flavours.length === 0) {
    throw new LaneVisionError('SOURCE_EMPTY', 'A synthetic lane needs at least one flavour');
  }
  flavours.forEach(checkFlavour);
  const seed = checkSeed(options.seed ?? 1);
  const width = checkSide(options.width ?? DEFAULT_FRAME_SIZE.width, 'width');
  const height = checkSide(options.height ?? DEFAULT_FRAME_SIZE.height, 'height');
  const order = options.order ?? 'random';
  if (order !== 'random' && order !== 'round-robin') {
    throw new LaneVisionError('SOURCE_BAD_ORDER', `Unknown frame order "${String(order)}": use random or round-robin`);
  }
  let nextIndex = 0;
  return {
    flavours,
    async next() {
      // Taken before awaiting, so concurrent calls get distinct frames.
      const index = nextIndex++;
      const flavour =
        order === 'round-robin'
          ? flavours[index % flavours.length]
          : flavours[Math.floor(createRandom(mixSeed(seed, index, 7))() * flavours.length)];
      const image = await renderYoghurtFrame({ flavour, seed: mixSeed(seed, index), width, height });
      debug('synthetic frame %d: %s', index, flavour);
      return { label: flavour, image, index };
    },
  };
}
