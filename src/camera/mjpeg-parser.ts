/**
 * Parts of an MJPEG stream (`multipart/x-mixed-replace`), each a JPEG passed on as it came.
 *
 * Written here rather than taken from npm: the multipart parsers there (meros, dicer,
 * @mjackson/multipart-parser) are built for finite multipart/mixed or form-data bodies and
 * are strict where cameras are not. Cameras differ in small ways this parser accepts:
 * a boundary with or without its leading "--", quoted or not; Content-Length present or not
 * (then the JPEG markers cut the stream from there on); blank lines between parts.
 */
import { JpegSplitter } from './jpeg-splitter.js';

const MAX_HEADER_BYTES = 16 * 1024;

/** The boundary of a multipart content type, or undefined when it is not multipart. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\//i.test(contentType)) return undefined;
  const match = /boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  return boundary?.replace(/^--/, '');
}

export class MjpegParser {
  private buffer: Buffer = Buffer.alloc(0);
  /** Bytes of the current part's body still to come (Content-Length), or undefined between parts. */
  private remaining: number | undefined;
  /** A stream whose parts have no Content-Length is cut at the JPEG markers from then on. */
  private readonly markers: JpegSplitter;
  private byMarkers = false;
  private readonly delimiter: Buffer;

  constructor(
    boundary: string,
    private readonly onImage: (image: Buffer) => void,
  ) {
    this.delimiter = Buffer.from(`--${boundary}`);
    this.markers = new JpegSplitter(onImage);
  }

  push(chunk: Buffer): void {
    if (this.byMarkers) {
      this.markers.push(chunk);
      return;
    }
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (this.remaining !== undefined) {
        if (this.buffer.length < this.remaining) return;
        this.onImage(Buffer.from(this.buffer.subarray(0, this.remaining)));
        this.buffer = this.buffer.subarray(this.remaining);
        this.remaining = undefined;
      }
      const start = this.buffer.indexOf(this.delimiter);
      if (start < 0) {
        // Keep what could be the start of a boundary cut across chunks.
        this.buffer = this.buffer.subarray(Math.max(0, this.buffer.length - this.delimiter.length));
        return;
      }
      const headersEnd = this.buffer.indexOf('\r\n\r\n', start);
      const headersEndLf = this.buffer.indexOf('\n\n', start);
      const end = headersEnd >= 0 && (headersEndLf < 0 || headersEnd < headersEndLf) ? headersEnd + 4 : headersEndLf >= 0 ? headersEndLf + 2 : -1;
      if (end < 0) {
        if (this.buffer.length - start > MAX_HEADER_BYTES) this.buffer = Buffer.alloc(0); // garbage, not a part header
        return;
      }
      const headers = this.buffer.subarray(start + this.delimiter.length, end).toString('latin1');
      this.buffer = this.buffer.subarray(end);
      const length = /content-length\s*:\s*(\d+)/i.exec(headers);
      if (length) {
        this.remaining = Number(length[1]);
        continue;
      }
      this.byMarkers = true;
      const rest = this.buffer;
      this.buffer = Buffer.alloc(0);
      this.markers.push(rest);
      return;
    }
  }
}
