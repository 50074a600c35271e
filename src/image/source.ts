/**
 * Turns any ImageInput into bytes we have checked (size, format) plus the source hash,
 * without decoding pixels. Both prepareImage and encodeForStorage start here, so a frame
 * hashes the same whichever way it arrives and whichever function sees it.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RawImage } from './types.js';
import { describeBytes, describePixels, ImageErrorCode, imageError } from './errors.js';
import { type DecodableFormat, sniffFormat } from './sniff.js';

export const DEFAULT_MAX_INPUT_PIXELS = 40_000_000;
export const DEFAULT_MAX_INPUT_BYTES = 50 * 1024 * 1024;
/** Ceilings for the caps themselves: sharp's own default pixel limit (16383 x 16383), and 1 GiB. */
const CEILING_PIXELS = 0x3fff * 0x3fff;
const CEILING_BYTES = 1024 * 1024 * 1024;

/**
 * Which files an image given as text may name: any (the library's and the CLI's default),
 * none, or only files inside these folders (after resolving links). Node-RED nodes default
 * to none: a message string must not make the host read its own files.
 */
export type FileAccess = 'any' | 'none' | { folders: readonly string[] };

export interface SourceLimits {
  maxInputPixels: number;
  maxInputBytes: number;
  files: FileAccess;
}

export type ImageSource =
  | { kind: 'encoded'; bytes: Buffer; format: DecodableFormat; hash: string; origin: string }
  | { kind: 'raw'; pixels: Buffer; width: number; height: number; channels: 1 | 3 | 4; hash: string; origin: string };

/** Leading base64 characters decoded to check for an image signature (24 chars = 18 bytes). */
const BASE64_HEAD_CHARS = 24;
/** Shorter text cannot hold an image, so it is never read as base64. */
const MIN_BASE64_CHARS = 24;
// Character class and padding are disjoint, so a failing match backtracks linearly.
const BASE64_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/;
/** Paths longer than this are not paths (Linux PATH_MAX); skips a useless syscall for big base64. */
const MAX_PATH_CHARS = 4096;
const DATA_URL = /^data:([^,;]*)((?:;[^,;]*)*),/i;
const PATH_LIKE = /^(?:\.{0,2}[\\/]|~|[A-Za-z]:[\\/]|file:)|[\\/]|\.[A-Za-z0-9]{1,5}$/;

export function checkLimits(limits: Partial<SourceLimits>): SourceLimits {
  const maxInputPixels = limits.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const maxInputBytes = limits.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES;
  if (!Number.isSafeInteger(maxInputPixels) || maxInputPixels < 1 || maxInputPixels > CEILING_PIXELS) {
    throw imageError(ImageErrorCode.OPTIONS, `maxInputPixels must be a whole number from 1 to ${CEILING_PIXELS}, got ${String(maxInputPixels)}.`);
  }
  if (!Number.isSafeInteger(maxInputBytes) || maxInputBytes < 1 || maxInputBytes > CEILING_BYTES) {
    throw imageError(ImageErrorCode.OPTIONS, `maxInputBytes must be a whole number from 1 to ${CEILING_BYTES} (1 GiB), got ${String(maxInputBytes)}.`);
  }
  const files = limits.files ?? 'any';
  if (files !== 'any' && files !== 'none') {
    const folders = (files as { folders?: unknown }).folders;
    if (!Array.isArray(folders) || folders.length === 0 || folders.some((f) => typeof f !== 'string' || f.trim() === '' || f.includes('\0'))) {
      throw imageError(ImageErrorCode.OPTIONS, 'files must be "any", "none" or {folders: [one or more folder paths]}.');
    }
  }
  return { maxInputPixels, maxInputBytes, files };
}

export async function resolveSource(input: unknown, limits: SourceLimits): Promise<ImageSource> {
  if (input instanceof Uint8Array) return encodedSource(asBuffer(input), 'The image data', limits);
  if (typeof input === 'string') return resolveString(input, limits);
  if (typeof input === 'object' && input !== null && 'data' in input) return rawSource(input as RawImage, limits);
  throw imageError(
    ImageErrorCode.INPUT_TYPE,
    `Expected an image (JPEG/PNG/WebP bytes, base64 text, a data URL, a file path, or raw pixels {data, width, height, channels}), got ${describeValue(input)}.`,
  );
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing (undefined)';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof ArrayBuffer) return 'an ArrayBuffer (wrap it in a Buffer)';
  if (typeof value === 'object') {
    const keys = Object.keys(value).slice(0, 5);
    return keys.length ? `an object with fields ${keys.join(', ')}` : 'an empty object';
  }
  return `a ${typeof value}`;
}

/** A Buffer view of the same memory: no copy on the hot path. */
function asBuffer(bytes: Uint8Array | Uint8ClampedArray): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function sha256(...parts: (string | Uint8Array)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
}

function encodedSource(bytes: Buffer, origin: string, limits: SourceLimits): ImageSource {
  if (bytes.length === 0) throw imageError(ImageErrorCode.EMPTY, `${origin} is empty (0 bytes).`);
  if (bytes.length > limits.maxInputBytes) {
    throw imageError(
      ImageErrorCode.TOO_LARGE,
      `${origin} is ${describeBytes(bytes.length)}, more than the limit of ${describeBytes(limits.maxInputBytes)}. Lower the camera's resolution or quality, or raise maxInputBytes.`,
    );
  }
  const sniffed = sniffFormat(bytes);
  if (!sniffed.ok) {
    throw imageError(
      ImageErrorCode.UNSUPPORTED,
      `${origin} is ${sniffed.description}, not a JPEG, PNG, WebP, GIF, TIFF or AVIF image. Send camera frames in one of those formats.`,
    );
  }
  return { kind: 'encoded', bytes, format: sniffed.format, hash: sha256(bytes), origin };
}

function rawSource(raw: RawImage, limits: SourceLimits): ImageSource {
  const origin = 'The raw frame';
  const { data, width, height, channels } = raw;
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
    throw imageError(ImageErrorCode.INPUT_TYPE, `${origin} needs its pixels in a Buffer, Uint8Array or Uint8ClampedArray, got ${describeValue(data)}.`);
  }
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw imageError(ImageErrorCode.INPUT_TYPE, `${origin} needs a ${name} in pixels (a positive whole number), got ${String(value)}.`);
    }
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw imageError(ImageErrorCode.INPUT_TYPE, `${origin} must have 1 (grey), 3 (RGB) or 4 (RGBA) channels, got ${String(channels)}.`);
  }
  if (data.length === 0) throw imageError(ImageErrorCode.EMPTY, `${origin} has no pixel data (0 bytes).`);
  const pixels = width * height;
  if (pixels > limits.maxInputPixels) {
    throw imageError(
      ImageErrorCode.TOO_LARGE,
      `${origin} is ${width}x${height} (${describePixels(pixels)}), more than the limit of ${describePixels(limits.maxInputPixels)}.`,
    );
  }
  const expected = pixels * channels;
  if (data.length !== expected) {
    throw imageError(
      ImageErrorCode.INPUT_TYPE,
      `${origin} says ${width}x${height} with ${channels} channel(s), which needs ${expected} bytes, but its data has ${data.length} bytes. Check width, height and channels.`,
    );
  }
  const bytes = asBuffer(data);
  // Dimensions and channels are part of the identity: the same bytes read as another shape are another frame.
  const hash = sha256(`lane-vision-raw:${width}x${height}x${channels}:`, bytes);
  return { kind: 'raw', pixels: bytes, width, height, channels, hash, origin };
}

async function resolveString(text: string, limits: SourceLimits): Promise<ImageSource> {
  // Refuse oversized text before any scan or copy of it; base64 packs 3 bytes into 4 characters.
  const maxTextChars = Math.ceil((limits.maxInputBytes * 4) / 3) * 1.05 + 1024;
  if (text.length > maxTextChars) {
    throw imageError(
      ImageErrorCode.TOO_LARGE,
      `The image text is ${describeBytes(text.length)} long, more than base64 of the ${describeBytes(limits.maxInputBytes)} limit.`,
    );
  }
  if (text.trim() === '') throw imageError(ImageErrorCode.EMPTY, 'The image text is empty.');
  if (/^\s*data:/i.test(text)) return dataUrlSource(text.trimStart(), limits);

  const base64 = compactBase64(text);
  // Base64 of a real image starts with a known signature: decode it without touching the disk.
  if (base64 !== undefined && sniffFormat(Buffer.from(base64.slice(0, BASE64_HEAD_CHARS), 'base64')).ok) {
    return encodedSource(Buffer.from(base64, 'base64'), 'The base64 image', limits);
  }
  if (limits.files === 'none') {
    if (base64 !== undefined) return encodedSource(Buffer.from(base64, 'base64'), 'The base64 text', limits);
    throw imageError(
      ImageErrorCode.FILES_OFF,
      `The text ${quotePath(text)} is not image data (a data URL or base64), and reading image files named in messages is off. ` +
        'Send the image bytes, or turn on "Read image files" in the node with the folders it may read.',
    );
  }
  const fromFile = await readFileIfExists(text, limits);
  if (fromFile) return encodedSource(fromFile.bytes, fromFile.origin, limits);
  if (base64 !== undefined) return encodedSource(Buffer.from(base64, 'base64'), 'The base64 text', limits);
  if (PATH_LIKE.test(text.trim())) {
    throw imageError(ImageErrorCode.NOT_FOUND, `No image file at ${quotePath(text)}: the file does not exist. Check the path and that Node-RED can see that folder.`);
  }
  throw imageError(
    ImageErrorCode.INPUT_TYPE,
    `The text ${quotePath(text)} is neither a data URL, an existing file path, nor base64-encoded image data.`,
  );
}

function quotePath(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return JSON.stringify(shown);
}

/** The text without whitespace if it is plausible base64 (standard or URL-safe), else undefined. */
function compactBase64(text: string): string | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact.length < MIN_BASE64_CHARS || !BASE64_TEXT.test(compact)) return undefined;
  return compact.replace(/=+$/, '').length % 4 === 1 ? undefined : compact;
}

function dataUrlSource(url: string, limits: SourceLimits): ImageSource {
  const match = DATA_URL.exec(url);
  if (!match) throw imageError(ImageErrorCode.INPUT_TYPE, 'The data URL is malformed: expected "data:image/jpeg;base64,...".');
  const mediaType = (match[1] ?? '').trim().toLowerCase();
  const isBase64 = /;\s*base64\s*$/i.test(match[2] ?? '') || /;\s*base64\s*;/i.test(match[2] ?? '');
  const origin = `The data URL image${mediaType ? ` (${mediaType})` : ''}`;
  if (mediaType === 'image/svg+xml') {
    throw imageError(ImageErrorCode.UNSUPPORTED, 'The data URL holds an SVG drawing; SVG is refused because it can reference other files and is not a camera frame. Send JPEG, PNG or WebP.');
  }
  const payload = url.slice(match[0].length);
  if (payload.trim() === '') throw imageError(ImageErrorCode.EMPTY, `${origin} has no data after the comma.`);
  let bytes: Buffer;
  if (isBase64) {
    // Buffer's decoder skips whitespace and line breaks, as data URLs in the wild have them.
    bytes = Buffer.from(payload, 'base64');
  } else {
    try {
      bytes = Buffer.from(decodeURIComponent(payload), 'latin1');
    } catch (err) {
      throw imageError(ImageErrorCode.INPUT_TYPE, `${origin} has invalid %-escapes in its data.`, err);
    }
  }
  return encodedSource(bytes, origin, limits);
}

/**
 * Reads a regular file through one handle: O_NONBLOCK so a FIFO or device cannot block
 * the open, fstat on the same handle so the size cap and "is a file" hold for what is read.
 * Returns undefined when nothing exists at that path, so the caller can try other readings.
 */
async function readFileIfExists(text: string, limits: SourceLimits): Promise<{ bytes: Buffer; origin: string } | undefined> {
  if (text.length > MAX_PATH_CHARS || text.includes('\0')) return undefined;
  let filePath = text;
  if (text.startsWith('file:')) {
    try {
      filePath = fileURLToPath(text);
    } catch {
      return undefined;
    }
  }
  const origin = `The image file ${quotePath(filePath)}`;
  if (limits.files !== 'any' && limits.files !== 'none') {
    const real = await fs.promises.realpath(filePath).catch(() => undefined);
    if (real === undefined) return undefined; // nothing there: reported as not found when it looks like a path
    const folders = await Promise.all(limits.files.folders.map((f) => fs.promises.realpath(f).catch(() => path.resolve(f))));
    if (!folders.some((dir) => real === dir || real.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep))) {
      throw imageError(ImageErrorCode.FILE_NOT_ALLOWED, `${origin} is outside the folders this node may read (${limits.files.folders.join(', ')}).`);
    }
    // Open what was checked, not the name again: a link changed in between cannot lead elsewhere.
    filePath = real;
  }
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(filePath, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'EINVAL') return undefined;
    if (code === 'EISDIR') throw imageError(ImageErrorCode.NOT_FOUND, `${quotePath(filePath)} is a folder, not an image file.`, err);
    if (code === 'EACCES' || code === 'EPERM') {
      throw imageError(ImageErrorCode.NOT_FOUND, `${origin} exists but cannot be read: permission denied for the Node-RED user.`, err);
    }
    throw imageError(ImageErrorCode.NOT_FOUND, `${origin} cannot be opened (${code ?? String(err)}).`, err);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw imageError(ImageErrorCode.NOT_FOUND, `${quotePath(filePath)} is a folder, not an image file.`);
    if (!stat.isFile()) throw imageError(ImageErrorCode.NOT_FOUND, `${quotePath(filePath)} is not a regular file (a device, pipe or socket).`);
    if (stat.size > limits.maxInputBytes) {
      throw imageError(
        ImageErrorCode.TOO_LARGE,
        `${origin} is ${describeBytes(stat.size)}, more than the limit of ${describeBytes(limits.maxInputBytes)}.`,
      );
    }
    return { bytes: await handle.readFile(), origin };
  } finally {
    await handle.close();
  }
}
