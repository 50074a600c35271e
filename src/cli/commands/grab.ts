/** `lane-vision grab`: save frames of a camera as image files (to check a camera, or to collect a dataset). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Camera, MAX_CAMERA_FPS, openCameraSource, type CameraFrame, type Roi } from '../../camera/index.js';
import { LaneVisionError } from '../../errors.js';
import { COMMON_OPTIONS, UsageError, integerOption, numberOption, parseCommandLine, requiredOption } from '../args.js';
import { JSON_HELP, PROGRAM, type Command } from '../command.js';
import { Output } from '../output.js';

const OPTIONS = {
  ...COMMON_OPTIONS,
  source: { type: 'string' },
  count: { type: 'string', short: 'n' },
  out: { type: 'string', short: 'o' },
  every: { type: 'string' },
  timeout: { type: 'string' },
  ffmpeg: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  roi: { type: 'string' },
  insecure: { type: 'boolean' },
} as const;

export const grabCommand: Command = {
  name: 'grab',
  summary: 'save N frames of a camera (snapshot/MJPEG URL, rtsp://, /dev/videoN, folder) as image files',
  help: `Usage: ${PROGRAM} grab --source URL|/dev/videoN|DIR --count N --out DIR [options]

Connects to a camera as the lane-camera node does and writes N frames into DIR as
frame-000001.jpg, ... (the camera's own JPEG bytes; RTSP and USB video encoded to JPEG
by ffmpeg). A camera that drops is reconnected.

Sources:
  http(s)://CAM/snapshot.jpg   a snapshot URL (polled) or an MJPEG stream (found out from the answer)
  rtsp://CAM:554/stream1       an RTSP stream, through ffmpeg
  /dev/video0                  a USB / V4L2 camera, through ffmpeg
  DIR                          a folder: its images, then new ones as they arrive
User and password may be in the URL (http://user:pass@cam/...) or given as options;
HTTP cameras get basic or digest authentication, whichever they ask for.

Options:
  --source <url|device|dir>   the camera
  -n, --count <n>             frames to write (default 10)
  -o, --out DIR               folder for the files (created if missing)
  --every <ms>                at least this long between frames (default: as they come)
  --timeout <s>               give up when no frame came for this long (default 20)
  --roi <left,top,width,height>  cut this region out of each frame (pixels)
  --ffmpeg PATH               ffmpeg to run for RTSP and USB (default: ffmpeg on PATH)
  --user NAME, --password PW  camera credentials (default: those in the URL)
  --insecure                  accept an https:// camera's certificate unchecked (self-signed)
  ${JSON_HELP}
  -h, --help                  this help

With --json each frame gives {"file", "seq", "timestamp", "bytes", "kind"}.
Exit code 1 when fewer than N frames could be written.`,

  async run(args, streams) {
    const { values, positionals } = parseCommandLine('grab', args, OPTIONS);
    if (positionals.length) throw new UsageError('grab', `unexpected argument "${positionals[0]}" (the camera goes in --source)`);
    const source = requiredOption('grab', 'source', values.source);
    const outDir = path.resolve(requiredOption('grab', 'out', values.out));
    const count = integerOption('grab', 'count', values.count, 10, { min: 1, max: 1_000_000 });
    const everyMs = numberOption('grab', 'every', values.every, 0, { min: 0, max: 3_600_000 });
    const timeoutMs = numberOption('grab', 'timeout', values.timeout, 20, { min: 0.1, max: 3600 }) * 1000;
    const roi = roiOption(values.roi);
    const out = new Output(values.json === true, streams);

    const connector = openCameraSource(source, {
      ffmpegPath: values.ffmpeg,
      credentials: values.user ? { user: values.user, password: values.password ?? '' } : undefined,
      existing: true,
      tlsVerify: values.insecure !== true,
    });
    fs.mkdirSync(outDir, { recursive: true });
    out.note(`grabbing ${count} frame(s) from ${connector.label} into ${outDir}`);

    let written = 0;
    let writing: Promise<void> = Promise.resolve();
    let finish!: (err?: Error) => void;
    const finished = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
    let silence: NodeJS.Timeout | undefined;
    const watchSilence = () => {
      clearTimeout(silence);
      silence = setTimeout(() => {
        const state = camera.state;
        const why = state.state === 'reconnecting' || state.state === 'failed' ? `: ${state.error.message}` : '';
        finish(new LaneVisionError('CAMERA_NO_FRAME', `No frame from ${connector.label} for ${timeoutMs / 1000} s (${written} of ${count} written)${why}`));
      }, timeoutMs);
    };
    const save = (frame: CameraFrame) => {
      if (written >= count) return;
      written++;
      const number = written;
      watchSilence();
      writing = writing.then(async () => {
        // grab never asks for raw output, so every frame is an encoded image.
        const image = frame.image as Buffer;
        const file = path.join(outDir, `frame-${String(number).padStart(6, '0')}.${extensionOf(image)}`);
        await fs.promises.writeFile(file, image);
        out.record({ file, seq: frame.seq, timestamp: frame.timestamp, bytes: image.length, kind: frame.kind });
        out.line(file);
        if (number === count) finish();
      });
      writing.catch((err: Error) => finish(err));
    };
    const camera = new Camera({
      connector,
      mode: 'free-run',
      maxFps: everyMs > 0 ? Math.min(MAX_CAMERA_FPS, 1000 / everyMs) : MAX_CAMERA_FPS,
      roi,
      onFrame: save,
      onOutage: (err) => out.warn(`${PROGRAM} grab: camera lost: ${err.message} (retrying)`),
      onState: (state) => {
        if (state.state === 'failed') finish(state.error);
      },
    });
    watchSilence();
    camera.start();
    try {
      await finished;
      await writing;
    } finally {
      clearTimeout(silence);
      await camera.stop();
    }
    out.note(`${written} frame(s) written`);
    return 0;
  },
};

function roiOption(value: string | undefined): Roi | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',').map((part) => Number(part.trim()));
  if (parts.length !== 4 || !parts.every((v) => Number.isInteger(v) && v >= 0) || parts[2] < 1 || parts[3] < 1) {
    throw new UsageError('grab', `--roi must be left,top,width,height in whole pixels, got "${value}"`);
  }
  const [left, top, width, height] = parts;
  return { left, top, width, height };
}

function extensionOf(image: Buffer): string {
  if (image[0] === 0xff && image[1] === 0xd8) return 'jpg';
  if (image.subarray(1, 4).toString('latin1') === 'PNG') return 'png';
  if (image.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  if (image.subarray(0, 2).toString('latin1') === 'BM') return 'bmp';
  return 'tif';
}
