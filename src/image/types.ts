/** What callers may hand us as a frame. */
export type ImageInput =
  | Buffer // encoded JPEG / PNG / WebP (and anything else sharp decodes)
  | Uint8Array
  | string // base64, data URL, or a file path
  | RawImage;

/** Uncompressed pixels, interleaved, row-major (HWC). */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray | Buffer;
  width: number;
  height: number;
  /** 1 (grey), 3 (RGB) or 4 (RGBA). */
  channels: number;
}

/**
 * A part of the frame cut out before it is fitted to the backbone's input, in fractions
 * of the frame (so it holds at any camera resolution): a centred `fraction` x width by
 * `fraction` x height, or a rectangle. Inside a pixel region of interest (fit `roi`) the
 * fractions are of that region.
 */
export type CropRegion = { fraction: number } | { left: number; top: number; width: number; height: number };

/**
 * How a frame is brought to the backbone's input size. `crop`, when set, is cut out first;
 * a model stores the policy it was trained with, and frames are fed to it the same way.
 */
export type FitPolicy = (
  | { kind: 'cover' } // scale to fill, centre-crop the excess
  | { kind: 'contain'; background?: { r: number; g: number; b: number } } // scale to fit, pad
  | { kind: 'roi'; left: number; top: number; width: number; height: number } // fixed region in source pixels, then cover
) & { crop?: CropRegion };

/**
 * A small change of the frame after its crop: a zoom (`scale` < 1 zooms in), a shift of
 * the crop window (`dx`, `dy` in fractions of it), a rotation in degrees and a brightness
 * factor. Training adds such views of each frame (augmentation); classification can
 * average a few (test-time views). All defaults give the plain frame.
 */
export interface ViewTransform {
  scale?: number;
  dx?: number;
  dy?: number;
  angle?: number;
  brightness?: number;
}

export interface PrepareOptions {
  width: number;
  height: number;
  fit?: FitPolicy; // default cover
  /** Default: the plain frame. */
  view?: ViewTransform;
  /** Refuse sources larger than this many pixels before decoding them. Default 40 MP. */
  maxInputPixels?: number;
  /** Refuse encoded inputs larger than this many bytes. Default 50 MiB. */
  maxInputBytes?: number;
}

/** A frame ready for a backbone: RGB, 3 channels, exactly the requested size. */
export interface PreparedImage {
  data: Uint8Array; // length width*height*3
  width: number;
  height: number;
  /** sha256 (hex) of the source content, before any resizing. */
  sourceHash: string;
}

/** Encoded formats kept byte-for-byte when a frame is stored. */
export type StorageFormat = 'jpeg' | 'png' | 'webp';

/** A frame ready to be written to disk by the dataset store. */
export interface StorableImage {
  /** The original bytes for JPEG/PNG/WebP; a PNG for raw pixels and other formats. */
  bytes: Buffer;
  format: StorageFormat;
  extension: '.jpg' | '.png' | '.webp';
  /** Size as displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
  /**
   * sha256 (hex) of the source content, equal to `PreparedImage.sourceHash` for the same
   * input. For converted inputs (raw pixels, GIF, TIFF, AVIF) it identifies the source, not `bytes`.
   */
  sha256: string;
}

export interface StorageOptions {
  /** Refuse sources larger than this many pixels before decoding them. Default 40 MP. */
  maxInputPixels?: number;
  /** Refuse encoded inputs larger than this many bytes. Default 50 MiB. */
  maxInputBytes?: number;
}
