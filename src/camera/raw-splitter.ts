/**
 * Cuts ffmpeg's `-f rawvideo` stream (frames of a fixed size, back to back, no markers) into
 * frames of `frameBytes`. Each frame is a Buffer with memory of its own (never from Node's
 * shared pool), so the lane may keep it or hand its memory to a worker thread.
 */
export class RawFrameSplitter {
  private frame: Buffer;
  private filled = 0;

  constructor(
    private readonly frameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
  ) {
    this.frame = Buffer.allocUnsafeSlow(frameBytes);
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.frameBytes - this.filled, chunk.length - offset);
      chunk.copy(this.frame, this.filled, offset, offset + take);
      this.filled += take;
      offset += take;
      if (this.filled === this.frameBytes) {
        const done = this.frame;
        this.frame = Buffer.allocUnsafeSlow(this.frameBytes);
        this.filled = 0;
        this.onFrame(done);
      }
    }
  }
}
