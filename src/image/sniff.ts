/**
 * Recognises an encoded image by its first bytes, before sharp sees it.
 *
 * Hand-written because sharp has no per-call allow-list of decoders: left alone, it
 * would hand an SVG to librsvg, a PDF to PDFium or anything else to ImageMagick if
 * present. `sharp.block()` exists but is process-wide and would also change sharp for
 * every other Node-RED node in the same process. A few magic numbers keep the risky
 * decoders out of reach and give a clearer message than "unsupported image format".
 */

/** Formats we let sharp decode. */
export type DecodableFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif';

export type SniffResult = { ok: true; format: DecodableFormat } | { ok: false; description: string };

function startsWith(bytes: Uint8Array, signature: readonly number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  for (let i = 0; i < signature.length; i++) if (bytes[offset + i] !== signature[i]) return false;
  return true;
}

function ascii(bytes: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));
}

export function sniffFormat(bytes: Uint8Array): SniffResult {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { ok: true, format: 'jpeg' };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { ok: true, format: 'png' };
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 12) === 'WEBP') return { ok: true, format: 'webp' };
  if (ascii(bytes, 0, 4) === 'GIF8') return { ok: true, format: 'gif' };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return { ok: true, format: 'tiff' };
  if (ascii(bytes, 4, 8) === 'ftyp') {
    const brand = ascii(bytes, 8, 12);
    if (brand === 'avif' || brand === 'avis') return { ok: true, format: 'avif' };
    return { ok: false, description: brand.startsWith('hei') || brand === 'mif1' ? 'a HEIC photo' : 'a video or ISO media file' };
  }
  return { ok: false, description: describeUnknown(bytes) };
}

/** Names what the bytes most likely are, for the error message. */
function describeUnknown(bytes: Uint8Array): string {
  if (ascii(bytes, 0, 5) === '%PDF-') return 'a PDF document';
  if (startsWith(bytes, [0x42, 0x4d])) return 'a BMP image';
  const head = ascii(bytes, 0, 1024).replace(/^\uFEFF/, '').trimStart().toLowerCase();
  if (head.startsWith('<')) return head.includes('<svg') ? 'an SVG drawing' : 'an XML/HTML document';
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return 'a ZIP archive';
  const sample = bytes.subarray(0, 512);
  let printable = 0;
  for (const b of sample) if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127)) printable++;
  if (sample.length > 0 && printable / sample.length > 0.95) return 'text';
  return 'unrecognised data';
}
