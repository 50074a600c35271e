/**
 * Cuts a byte stream of back-to-back JPEG images (ffmpeg's `-f image2pipe -c:v mjpeg`) into
 * images at their SOI (FF D8) and EOI (FF D9) markers. Inside a JPEG's entropy-coded data
 * every FF byte is followed by 00 (byte stuffing), so an FF D9 there is the real end;
 * ffmpeg's encoder writes no embedded thumbnail that could hold a second EOI.
 */

const MAX_FRAME_BYTES = 64 * 1024 * 1024;

export class JpegSplitter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of `buffered` already searched for the EOI (a marker may straddle two chunks). */
  private searched = 0;
  private inImage = false;

  constructor(private readonly onImage: (image: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    let data = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    for (;;) {
      if (!this.inImage) {
        const start = indexOfMarker(data, 0xd8, 0);
        if (start < 0) {
          // Keep a trailing FF: it may be the first half of the next SOI.
          data = data[data.length - 1] === 0xff ? data.subarray(data.length - 1) : Buffer.alloc(0);
          break;
        }
        data = data.subarray(start);
        this.inImage = true;
        this.searched = 2;
      }
      const end = indexOfMarker(data, 0xd9, Math.max(2, this.searched - 1));
      if (end < 0) {
        this.searched = data.length;
        if (data.length > MAX_FRAME_BYTES) {
          // Not a JPEG stream after all (or a broken one): start over rather than grow without end.
          this.inImage = false;
          data = Buffer.alloc(0);
        }
        break;
      }
      this.onImage(Buffer.from(data.subarray(0, end + 2))); // a copy: the chunk's memory is not held by the frame
      data = data.subarray(end + 2);
      this.inImage = false;
    }
    this.chunks = data.length ? [data] : [];
    this.buffered = data.length;
  }
}

function indexOfMarker(data: Buffer, marker: number, from: number): number {
  for (let i = data.indexOf(0xff, from); i >= 0 && i < data.length - 1; i = data.indexOf(0xff, i + 1)) {
    if (data[i + 1] === marker) return i;
  }
  return -1;
}
