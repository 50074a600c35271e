import { LaneVisionError } from '../errors.js';

/**
 * Every engine takes frames already prepared at the backbone's input size (RGB bytes);
 * a frame of another size is a caller's mistake, named here the same way for all engines.
 */
export function checkFrameSizes(frames: readonly { data: Uint8Array }[], inputSize: { width: number; height: number }): void {
  const expected = inputSize.width * inputSize.height * 3;
  frames.forEach((frame, i) => {
    const data = frame?.data;
    if (!(data instanceof Uint8Array) || data.length !== expected) {
      throw new LaneVisionError(
        'FRAME_SIZE_MISMATCH',
        `Frame ${i} has ${data instanceof Uint8Array ? `${data.length} bytes` : 'no pixel data'}; this backbone needs ` +
          `${inputSize.width}x${inputSize.height} RGB (${expected} bytes): prepare frames at the backbone's input size`,
      );
    }
  });
}
