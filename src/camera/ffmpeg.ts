/**
 * RTSP and USB (V4L2) cameras through ffmpeg as a child process: it decodes the camera's
 * video and writes JPEG frames back to back on stdout (`-f image2pipe -c:v mjpeg`), which
 * are cut at their markers; or, with raw output, RGB pixels already cut and scaled to the
 * size the lane asks for (`-f rawvideo -pix_fmt rgb24`), cut every width x height x 3 bytes:
 * no JPEG encode here and no decode in the lane. The child is ended when the connection is
 * dropped or stopped, and `run` returns only after it has exited, so no ffmpeg outlives its camera.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LaneVisionError } from '../errors.js';
import { redactUrl } from './http-sources.js';
import { JpegSplitter } from './jpeg-splitter.js';
import { RawFrameSplitter } from './raw-splitter.js';
import type { Connector, Demand, FrameSink, Roi } from './types.js';

/**
 * Raw RGB output: ffmpeg cuts `roi` out of the camera's picture (if set), scales it to cover
 * width x height and crops the overflow in the middle (the backbones' cover fit), so frames
 * arrive at the backbone's input size.
 */
export interface RawOutput {
  width: number;
  height: number;
  roi?: Roi;
}

/** Largest raw frame side: beyond it raw pixels cost more to move than a JPEG to decode. */
export const MAX_RAW_SIDE = 4096;

export interface FfmpegCameraOptions {
  /** ffmpeg to run: a path, or blank to search PATH. */
  ffmpegPath?: string;
  /** JPEG quality of ffmpeg's encoder, 2 (best) to 31. Default 3. */
  quality?: number;
  /** A camera that sends nothing for this long is dropped and reconnected. Default 10 s. */
  timeoutMs?: number;
  /** Called with each ffmpeg process started (tests check it is gone after stop). */
  onSpawn?: (child: ChildProcess) => void;
  /** Raw RGB frames of this size instead of JPEG (see RawOutput). */
  raw?: RawOutput;
}

export interface RtspCameraOptions extends FfmpegCameraOptions {
  url: string;
  /** RTP over the RTSP connection (tcp, default: passes firewalls and loses nothing) or udp. */
  transport?: 'tcp' | 'udp';
}

export interface UsbCameraOptions extends FfmpegCameraOptions {
  /** /dev/video0, ... */
  device: string;
  /** Asked of the camera (V4L2 -video_size WxH), else its default. */
  size?: string;
  /** Asked of the camera (V4L2 -framerate), else its default. */
  fps?: number;
}

const KILL_GRACE_MS = 2000;
const STDERR_LINES_KEPT = 5;

/** ffmpeg's path: the configured one (which must exist), else the first on PATH. */
export function findFfmpeg(configured?: string): string {
  const wanted = configured?.trim();
  if (wanted) {
    if (isExecutable(wanted)) return wanted;
    if (!wanted.includes(path.sep)) {
      const onPath = searchPath(wanted);
      if (onPath) return onPath;
    }
    throw new LaneVisionError('CAMERA_FFMPEG_MISSING', `ffmpeg not found at "${wanted}": install it (Debian/Ubuntu: apt-get install ffmpeg) or correct the ffmpeg path`);
  }
  const found = searchPath(process.platform === 'win32' ? 'ffmpeg.exe' : 'ffmpeg');
  if (!found) {
    throw new LaneVisionError('CAMERA_FFMPEG_MISSING', 'ffmpeg is not installed (not found on PATH): RTSP and USB cameras need it. Install it (Debian/Ubuntu: apt-get install ffmpeg) or set the ffmpeg path');
  }
  return found;
}

function searchPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function outputArgs(options: FfmpegCameraOptions): string[] {
  const { raw } = options;
  if (!raw) return ['-an', '-f', 'image2pipe', '-c:v', 'mjpeg', '-q:v', String(options.quality ?? 3), 'pipe:1'];
  const { width, height, roi } = raw;
  const filters = [
    ...(roi ? [`crop=${roi.width}:${roi.height}:${roi.left}:${roi.top}`] : []),
    `scale=${width}:${height}:force_original_aspect_ratio=increase`,
    `crop=${width}:${height}`,
  ];
  return ['-an', '-vf', filters.join(','), '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'];
}

/** Checks raw output settings; throws CAMERA_BAD_SETTING saying what is wrong. */
export function checkRawOutput(raw: RawOutput): void {
  const side = (n: number) => Number.isInteger(n) && n >= 8 && n <= MAX_RAW_SIDE;
  if (!side(raw.width) || !side(raw.height)) {
    throw new LaneVisionError('CAMERA_BAD_SETTING', `Raw frames need a whole-number width and height from 8 to ${MAX_RAW_SIDE} pixels, got ${raw.width}x${raw.height}`);
  }
  if (raw.roi) {
    const { left, top, width, height } = raw.roi;
    if (![left, top, width, height].every((v) => Number.isInteger(v) && v >= 0) || width < 1 || height < 1) {
      throw new LaneVisionError('CAMERA_BAD_SETTING', `The region of interest needs whole pixel numbers (left, top >= 0; width, height >= 1), got ${JSON.stringify(raw.roi)}`);
    }
  }
}

export function rtspCamera(options: RtspCameraOptions): Connector {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new LaneVisionError('CAMERA_BAD_SOURCE', `"${options.url}" is not a URL: give the camera's stream address, e.g. rtsp://192.168.1.20:554/stream1`);
  }
  if (url.protocol !== 'rtsp:' && url.protocol !== 'rtsps:') {
    throw new LaneVisionError('CAMERA_BAD_SOURCE', `An RTSP camera needs an rtsp:// URL, got "${redactUrl(options.url)}"`);
  }
  const ffmpeg = findFfmpeg(options.ffmpegPath);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    // Low latency: no input buffering, frames out as soon as decoded.
    '-fflags', 'nobuffer', '-flags', 'low_delay',
    '-rtsp_transport', options.transport ?? 'tcp',
    // ffmpeg >= 5: socket I/O timeout in microseconds, so a silent camera ends the process.
    '-timeout', String(timeoutMs * 1000),
    '-i', options.url,
    ...outputArgs(options),
  ];
  return ffmpegConnector('rtsp', redactUrl(options.url), ffmpeg, args, timeoutMs, options);
}

export function usbCamera(options: UsbCameraOptions): Connector {
  const device = options.device?.trim();
  if (!device) throw new LaneVisionError('CAMERA_BAD_SOURCE', 'No video device given: name it, e.g. /dev/video0');
  const ffmpeg = findFfmpeg(options.ffmpegPath);
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-f', 'v4l2',
    ...(options.size ? ['-video_size', options.size] : []),
    ...(options.fps ? ['-framerate', String(options.fps)] : []),
    '-i', device,
    ...outputArgs(options),
  ];
  const timeoutMs = options.timeoutMs ?? 10_000;
  return {
    ...ffmpegConnector('usb', device, ffmpeg, args, timeoutMs, options),
    async run(sink, demand, signal) {
      // A missing device is said plainly instead of through ffmpeg's stderr.
      if (!fs.existsSync(device)) throw new LaneVisionError('CAMERA_NO_DEVICE', `There is no video device ${device} (is the camera plugged in? ls /dev/video*)`);
      return ffmpegConnector('usb', device, ffmpeg, args, timeoutMs, options).run(sink, demand, signal);
    },
  };
}

function ffmpegConnector(kind: 'rtsp' | 'usb', label: string, ffmpeg: string, args: string[], timeoutMs: number, options: FfmpegCameraOptions): Connector {
  const { onSpawn, raw } = options;
  if (raw) checkRawOutput(raw);
  return {
    kind,
    label,
    run(sink: FrameSink, _demand: Demand, signal: AbortSignal): Promise<void> {
      return new Promise((resolve, reject) => {
        if (signal.aborted) return resolve();
        const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        onSpawn?.(child);
        const stderr: string[] = [];
        let failure: Error | undefined;
        let killTimer: NodeJS.Timeout | undefined;
        let silenceTimer: NodeJS.Timeout | undefined;
        const end = (why?: Error) => {
          failure ??= why;
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          // ffmpeg stuck in a network read may ignore SIGTERM for a while.
          killTimer ??= setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
        };
        const watchSilence = () => {
          clearTimeout(silenceTimer);
          silenceTimer = setTimeout(() => end(new LaneVisionError('CAMERA_TIMEOUT', `No frame from ${label} for ${timeoutMs / 1000} s`)), timeoutMs);
        };
        const onAbort = () => end();
        signal.addEventListener('abort', onAbort, { once: true });
        const splitter = raw
          ? new RawFrameSplitter(raw.width * raw.height * 3, (data) => {
              watchSilence();
              sink({ data, width: raw.width, height: raw.height, channels: 3 });
            })
          : new JpegSplitter((image) => {
              watchSilence();
              sink(image);
            });
        watchSilence();
        child.stdout.on('data', (chunk: Buffer) => splitter.push(chunk));
        child.stderr.setEncoding('utf8').on('data', (text: string) => {
          for (const line of text.split(/\r?\n/)) {
            if (line.trim()) stderr.push(line.trim());
          }
          stderr.splice(0, Math.max(0, stderr.length - STDERR_LINES_KEPT));
        });
        child.on('error', (err: NodeJS.ErrnoException) => {
          failure ??=
            err.code === 'ENOENT'
              ? new LaneVisionError('CAMERA_FFMPEG_MISSING', `ffmpeg could not be started (${ffmpeg} not found): install it or set the ffmpeg path`)
              : new LaneVisionError('CAMERA_FFMPEG_FAILED', `ffmpeg could not be started: ${err.message}`, { cause: err });
        });
        child.on('close', (code, killedBy) => {
          clearTimeout(killTimer);
          clearTimeout(silenceTimer);
          signal.removeEventListener('abort', onAbort);
          if (signal.aborted) return resolve();
          if (failure) return reject(failure);
          const said = stderr.length ? `: ${redactText(stderr.join(' | '))}` : '';
          reject(new LaneVisionError('CAMERA_DISCONNECTED', `ffmpeg for ${label} ended (${killedBy ? `signal ${killedBy}` : `exit code ${code}`})${said}`));
        });
      });
    },
  };
}

/** ffmpeg repeats the input URL, password included, in its messages. */
function redactText(text: string): string {
  return text.replace(/(\w+:\/\/[^:/\s@]+:)[^@\s]+@/g, '$1***@');
}
