/**
 * Section 7 of `npm run bench`: a 1920x1080 MJPEG camera (ffmpeg on 127.0.0.1, 30 frames/s)
 * through src/camera into the classifier, as lane-camera -> lane-classify does: the camera's
 * cost on the main thread (parsing, CPU per frame, event-loop delay), the ROI crop's cost,
 * and camera-to-decision latency when classify is slower than the camera (newest frame wins).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Camera, mjpegCamera, type CameraFrame, type Roi } from '../src/camera/index.js';
import { LaneClassifier } from '../src/classify/index.js';
import { loadBackbone } from '../src/engine/index.js';
import { table } from '../src/cli/output.js';
import { ffmpegMissing, startMjpegCamera } from '../test/support/cameras.js';
import { modelDir } from '../test/support/shared.js';
import { distribution, fixed, type Distribution } from './stats.js';

const SIZE = '1920x1080';
const CAMERA_FPS = 30;
const ROI: Roi = { left: 640, top: 300, width: 640, height: 480 };

export interface CameraRunFigures {
  name: string;
  seconds: number;
  receivedPerSecond: number;
  sentPerSecond: number;
  /** Frames handed on (camera alone, ROI) or decided (classify) per second. */
  donePerSecond: number;
  dropped: number;
  kilobytesPerFrame: number;
  /** Main-thread CPU (user + system) per received frame. */
  cpuMsPerFrame: number;
  eventLoopDelayP99Ms: number;
  /** Arrival to hand-off (ROI crop), or arrival to decision (classify). */
  latencyMs: Distribution;
}

export type CameraBenchFigures = { skipped: string } | { runs: CameraRunFigures[]; classifier: string };

async function measure(name: string, seconds: number, run: (signal: AbortSignal) => Promise<{ camera: Camera; latencies: number[]; bytes: number[] }>): Promise<CameraRunFigures> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const stop = new AbortController();
  const cpuBefore = process.cpuUsage();
  loop.enable();
  const started = performance.now();
  const work = run(stop.signal);
  await sleep(seconds * 1000);
  stop.abort();
  const { camera, latencies, bytes } = await work;
  const elapsed = (performance.now() - started) / 1000;
  loop.disable();
  const cpu = process.cpuUsage(cpuBefore);
  const { received, sent, dropped } = camera.counters;
  return {
    name,
    seconds: elapsed,
    receivedPerSecond: received / elapsed,
    sentPerSecond: sent / elapsed,
    donePerSecond: latencies.length / elapsed,
    dropped,
    kilobytesPerFrame: bytes.length ? bytes.reduce((a, b) => a + b, 0) / bytes.length / 1024 : NaN,
    cpuMsPerFrame: received ? (cpu.user + cpu.system) / 1000 / received : NaN,
    eventLoopDelayP99Ms: loop.percentile(99) / 1e6,
    latencyMs: distribution(latencies),
  };
}

export async function runCameraBench(options: { quick: boolean; say: (line?: string) => void }): Promise<CameraBenchFigures> {
  const { say } = options;
  const missing = ffmpegMissing();
  if (missing) {
    say(`skipped: ${missing}`);
    return { skipped: missing };
  }
  const seconds = options.quick ? 5 : 15;
  const server = await startMjpegCamera({ size: SIZE, rate: CAMERA_FPS, quality: 5 });
  const runs: CameraRunFigures[] = [];
  try {
    const freeRun = (roi: Roi | undefined) => async (signal: AbortSignal) => {
      const latencies: number[] = [];
      const bytes: number[] = [];
      const camera = new Camera({
        connector: mjpegCamera({ url: server.url }),
        mode: 'free-run',
        maxFps: CAMERA_FPS,
        roi,
        onFrame: (frame) => {
          latencies.push(Date.now() - frame.timestamp);
          bytes.push((frame.image as Buffer).length); // an MJPEG camera: encoded frames
        },
      });
      camera.start();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      await camera.stop();
      return { camera, latencies, bytes };
    };
    runs.push(await measure(`camera alone, ${SIZE} MJPEG, cap ${CAMERA_FPS}/s`, seconds, freeRun(undefined)));
    runs.push(await measure(`camera + ROI crop to ${ROI.width}x${ROI.height} (sharp, re-encoded)`, seconds, freeRun(ROI)));

    const backbone = await loadBackbone(modelDir('mobilenet-v2-1.0-imagenet'));
    const classifier = new LaneClassifier({ backbone, threshold: 0.05 });
    classifier.useBackboneClassifier();
    await classifier.classify((await grabOne(server.url)).image); // warm-up
    try {
      runs.push(
        await measure(`camera -> classify (MobileNetV2 1.0 ImageNet, ${backbone.engine.name}), newest frame wins`, seconds, async (signal) => {
          const latencies: number[] = [];
          const bytes: number[] = [];
          let newest: CameraFrame | undefined;
          let wake: (() => void) | undefined;
          const camera = new Camera({
            connector: mjpegCamera({ url: server.url }),
            mode: 'free-run',
            maxFps: CAMERA_FPS,
            onFrame: (frame) => {
              newest = frame; // a frame the classifier had no time for is replaced, as in lane-classify's drop-oldest
              wake?.();
            },
          });
          camera.start();
          signal.addEventListener('abort', () => wake?.(), { once: true });
          while (!signal.aborted) {
            if (!newest) {
              await new Promise<void>((resolve) => (wake = resolve));
              continue;
            }
            const frame = newest;
            newest = undefined;
            await classifier.classify(frame.image);
            latencies.push(Date.now() - frame.timestamp);
            bytes.push((frame.image as Buffer).length); // an MJPEG camera: encoded frames
          }
          await camera.stop();
          return { camera, latencies, bytes };
        }),
      );
      return report(runs, `${backbone.engine.name} / ${backbone.backend.name}`, say);
    } finally {
      backbone.release();
    }
  } finally {
    await server.stop();
  }
}

async function grabOne(url: string): Promise<CameraFrame> {
  const camera = new Camera({ connector: mjpegCamera({ url }), mode: 'triggered', maxFps: CAMERA_FPS });
  camera.start();
  try {
    return await camera.grab(20_000);
  } finally {
    await camera.stop();
  }
}

function report(runs: CameraRunFigures[], classifier: string, say: (line?: string) => void): CameraBenchFigures {
  for (const line of table(
    ['run', 'received/s', 'sent/s', 'done/s', 'dropped', 'KB/frame', 'CPU ms/frame', 'loop p99 ms', 'latency p50', 'p99'],
    runs.map((r) => [r.name, fixed(r.receivedPerSecond), fixed(r.sentPerSecond), fixed(r.donePerSecond), r.dropped, fixed(r.kilobytesPerFrame, 0), fixed(r.cpuMsPerFrame, 2), fixed(r.eventLoopDelayP99Ms), `${fixed(r.latencyMs.p50)} ms`, `${fixed(r.latencyMs.p99)} ms`]),
    [false, true, true, true, true, true, true, true, true, true],
  )) {
    say(line);
  }
  say('received/s: what the camera delivered (ffmpeg paces it at 30/s); sent/s: what the camera handed on; done/s: handed on, or decided in the');
  say('last row (a frame the classifier had no time for is replaced by the newest); dropped: at the camera. CPU: the whole process per received frame;');
  say('latency: from the frame\'s arrival to its hand-off (first rows) or to its decision (last row).');
  return { runs, classifier };
}
