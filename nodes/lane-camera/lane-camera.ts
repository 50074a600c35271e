/**
 * lane-camera: a real camera as a lane source. Snapshot URL, MJPEG stream, RTSP or USB
 * (through ffmpeg) or a watched folder, free-running at a frame-rate cap or one frame per
 * trigger message; RTSP and USB frames as JPEG, or as raw RGB pixels (msg.payload a
 * { data, width, height, channels } frame) that skip JPEG on both sides. The camera itself is
 * src/camera's Camera (reconnects, pacing, ROI);
 * this file reads the settings, sends the frames, and keeps the status and the log to one
 * line per outage.
 */
import type { NodeAPI, NodeMessage } from 'node-red';
import {
  Camera,
  CAMERA_KINDS,
  DEFAULT_SETTLE_MS,
  MAX_CAMERA_FPS,
  MAX_RAW_SIDE,
  checkRawOutput,
  folderCamera,
  mjpegCamera,
  rtspCamera,
  snapshotCamera,
  usbCamera,
  withCredentials,
  type CameraFrame,
  type CameraKind,
  type CameraMode,
  type CameraState,
  type Connector,
  type RawOutput,
  type Roi,
} from '../../src/camera/index.js';
import { LaneVisionError } from '../../src/errors.js';
import { errorText, showStatus } from '../shared/status.js';
import { createStatusThrottle } from '../shared/status-throttle.js';
import { resolveInUserDir, userDirOf } from '../shared/paths.js';
import type { LaneCameraCredentials, LaneCameraDef, LaneCameraNode } from './types.js';

const STATUS_INTERVAL_MS = 500;
const DEFAULTS = { fps: 5, timeoutS: 5, retryMaxS: 10 };
/** The input size of the MobileNet backbones: raw frames of it reach the backbone unresized. */
const DEFAULT_RAW_SIZE = '224x224';

export = function (RED: NodeAPI) {
  function LaneCameraNodeConstructor(this: LaneCameraNode, config: LaneCameraDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const throttle = createStatusThrottle(node, STATUS_INTERVAL_MS);
    let camera: Camera | undefined;
    let problem: Error | undefined;
    let mode: CameraMode = 'free-run';
    let timeoutMs = DEFAULTS.timeoutS * 1000;

    try {
      mode = config.mode === 'triggered' ? 'triggered' : 'free-run';
      timeoutMs = readNumber(config.timeout, DEFAULTS.timeoutS, 'timeout', { min: 0.1, max: 3600 }) * 1000;
      const roi = readRoi(config);
      const raw = readRawOutput(config, roi);
      camera = new Camera({
        connector: connectorFor(config, node.credentials ?? {}, raw),
        mode,
        maxFps: readNumber(config.fps, DEFAULTS.fps, 'fps', { min: 0.01, max: MAX_CAMERA_FPS }),
        // Raw frames are cut by ffmpeg (readRawOutput), before they are scaled.
        roi: raw ? undefined : roi,
        retryMaxMs: readNumber(config.retryMax, DEFAULTS.retryMaxS, 'retry', { min: 0.1, max: 3600 }) * 1000,
        onFrame: (frame) => node.send(frameMessage(frame, {})),
        onState: showState,
        onOutage: (err) => {
          // One line per outage: the retries that follow show on the status only.
          node.warn(RED._('lane-camera.errors.outage', { camera: camera?.label ?? '', message: errorText(err) }));
        },
        onRecovered: (ms, attempts) => node.log(RED._('lane-camera.log.recovered', { camera: camera?.label ?? '', seconds: (ms / 1000).toFixed(1), attempts })),
        onFrameFault: (err) => node.error(RED._('lane-camera.errors.frame', { message: errorText(err) })),
      });
      camera.start();
    } catch (err) {
      problem = err instanceof Error ? err : new Error(String(err));
      node.error(RED._('lane-camera.errors.unusable', { message: errorText(problem) }));
      showStatus(node, 'error', errorText(problem));
    }

    function frameMessage(frame: CameraFrame, base: Record<string, unknown>): NodeMessage {
      const counters = camera!.counters;
      return {
        ...base,
        payload: frame.image,
        frame: {
          seq: frame.seq,
          timestamp: frame.timestamp,
          time: new Date(frame.timestamp).toISOString(),
          source: 'camera',
          kind: frame.kind,
          camera: camera!.label,
          ...(frame.path ? { path: frame.path } : {}),
        },
        camera: { ...counters },
      } as NodeMessage;
    }

    function countsText(): string {
      const { received, sent, dropped } = camera!.counters;
      return RED._('lane-camera.status.streaming', { received, sent, dropped });
    }

    function showState(state: CameraState): void {
      switch (state.state) {
        case 'connecting':
          // A triggered snapshot URL or folder is only looked at when a trigger comes.
          if (mode === 'triggered' && (camera?.kind === 'snapshot' || camera?.kind === 'folder')) throttle.showNow('idle', RED._('lane-camera.status.waiting'));
          else throttle.showNow('loading', RED._('lane-camera.status.connecting'));
          break;
        case 'streaming':
          throttle.showNow('ready', countsText());
          break;
        case 'reconnecting':
          throttle.showNow('warning', RED._('lane-camera.status.reconnecting', { seconds: (state.retryInMs / 1000).toFixed(1), message: errorText(state.error) }));
          break;
        case 'failed':
          node.error(RED._('lane-camera.errors.unusable', { message: errorText(state.error) }));
          throttle.showNow('error', errorText(state.error));
          break;
        case 'stopped':
          break;
      }
    }

    // The counts change with every frame: throttled, so the editor is not flooded.
    const counting = setInterval(() => {
      if (camera?.state.state === 'streaming') throttle.show('ready', countsText());
    }, STATUS_INTERVAL_MS);

    node.on('input', (msg, send, done) => {
      if (!camera) {
        done(new LaneVisionError('CAMERA_UNUSABLE', RED._('lane-camera.errors.unusable', { message: errorText(problem) })));
        return;
      }
      const trigger = msg as unknown as Record<string, unknown>;
      camera.grab(timeoutMs).then(
        (frame) => {
          // The trigger's properties (msg.itemId, ...) go along with its frame.
          send(frameMessage(frame, trigger));
          done();
        },
        (err: Error) => done(err),
      );
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      clearInterval(counting);
      throttle.stop();
      // Waits for the connection to end, ffmpeg child included, so a redeploy leaves none behind.
      (camera?.stop() ?? Promise.resolve()).then(() => done(), () => done());
    });

    function connectorFor(settings: LaneCameraDef, credentials: LaneCameraCredentials, raw: RawOutput | undefined): Connector {
      const kind = settings.kind ?? 'snapshot';
      if (!(CAMERA_KINDS as readonly string[]).includes(kind)) {
        throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.bad-kind', { kind: String(kind), kinds: CAMERA_KINDS.join(', ') }));
      }
      const login = credentials.user ? { user: credentials.user, password: credentials.password ?? '' } : undefined;
      const url = text(settings.url);
      const needUrl = (k: CameraKind) => {
        if (!url) throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.no-url', { kind: k }));
        return url;
      };
      const onSpawn = (child: { pid?: number; once(event: 'exit', listener: () => void): unknown }) => {
        node.ffmpegPid = child.pid;
        child.once('exit', () => {
          if (node.ffmpegPid === child.pid) node.ffmpegPid = undefined;
        });
      };
      switch (kind as CameraKind) {
        case 'snapshot':
          return snapshotCamera({ url: needUrl('snapshot'), credentials: login, tlsVerify: settings.tlsVerify !== false });
        case 'mjpeg':
          return mjpegCamera({ url: needUrl('mjpeg'), credentials: login, tlsVerify: settings.tlsVerify !== false });
        case 'rtsp':
          return rtspCamera({ url: withCredentials(needUrl('rtsp'), login), ffmpegPath: text(settings.ffmpeg), transport: settings.transport === 'udp' ? 'udp' : 'tcp', raw, onSpawn });
        case 'usb': {
          const size = text(settings.size);
          if (size && !/^\d+x\d+$/.test(size)) throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.bad-size', { value: size }));
          return usbCamera({ device: text(settings.device) || '/dev/video0', size: size || undefined, ffmpegPath: text(settings.ffmpeg), raw, onSpawn });
        }
        case 'folder': {
          const folder = text(settings.folder);
          if (!folder) throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.no-folder'));
          return folderCamera({
            folder: resolveInUserDir(userDirOf(RED.settings), folder),
            settleMs: readNumber(settings.settle, DEFAULT_SETTLE_MS, 'settle', { min: 0, max: 60_000 }),
            existing: settings.existing === true,
          });
        }
      }
    }
  }

  function readNumber(value: unknown, fallback: number, setting: string, range: { min: number; max: number }): number {
    if (value === undefined || value === null || String(value).trim() === '') return fallback;
    const number = Number(value);
    if (!Number.isFinite(number) || number < range.min || number > range.max) {
      throw new LaneVisionError('CAMERA_BAD_SETTING', RED._(`lane-camera.errors.bad-${setting}`, { value: String(value), min: range.min, max: range.max }));
    }
    return number;
  }

  /** Raw output settings (RTSP and USB only), with the region ffmpeg cuts out before scaling. */
  function readRawOutput(config: LaneCameraDef, roi: Roi | undefined): RawOutput | undefined {
    if (config.output !== 'raw') return undefined;
    const kind = config.kind ?? 'snapshot';
    if (kind !== 'rtsp' && kind !== 'usb') throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.raw-kind', { kind }));
    const size = text(config.rawSize) || DEFAULT_RAW_SIZE;
    const match = /^(\d+)x(\d+)$/.exec(size);
    if (!match) throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.bad-raw-size', { value: size, max: MAX_RAW_SIDE }));
    const raw: RawOutput = { width: Number(match[1]), height: Number(match[2]), ...(roi ? { roi } : {}) };
    try {
      checkRawOutput(raw);
    } catch {
      throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.bad-raw-size', { value: size, max: MAX_RAW_SIDE }));
    }
    return raw;
  }

  function readRoi(config: LaneCameraDef): Roi | undefined {
    const fields = [config.roiLeft, config.roiTop, config.roiWidth, config.roiHeight].map((v) => (v === undefined || v === null ? '' : String(v).trim()));
    if (fields[2] === '' && fields[3] === '') return undefined; // no width and height: the whole frame
    const [left, top, width, height] = fields.map((v) => (v === '' ? 0 : Number(v)));
    if (![left, top, width, height].every((v) => Number.isInteger(v) && v >= 0) || width < 1 || height < 1) {
      throw new LaneVisionError('CAMERA_BAD_SETTING', RED._('lane-camera.errors.bad-roi', { roi: fields.join(', ') }));
    }
    return { left, top, width, height };
  }

  // Declared here and in the editor; stored encrypted in the flow credentials file, never in the flow.
  RED.nodes.registerType<LaneCameraNode, LaneCameraDef, unknown, LaneCameraCredentials>('lane-camera', LaneCameraNodeConstructor, {
    credentials: {
      user: { type: 'text' },
      password: { type: 'password' },
    },
  });
};

function text(value: unknown): string {
  return typeof value === 'string' ? value.trim() : '';
}
