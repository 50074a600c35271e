/**
 * lane-source: a lane camera for demos and tests. Sends synthetic yoghurt frames or
 * replays a folder of photos (a folder per class) at a set rate, each frame with its true
 * label so a capture node can learn from it. The frames come from src/lane-source; this
 * file paces them, takes start / stop / next and keeps the status.
 */
import type { NodeAPI, NodeMessage } from 'node-red';
import {
  createFolderReplay,
  createPacer,
  createSyntheticLane,
  isYoghurtFlavour,
  MAX_FPS,
  YOGHURT_FLAVOURS,
  type LaneFrame,
  type LaneSource,
  type Pacer,
  type YoghurtFlavour,
} from '../../src/lane-source/index.js';
import { LaneVisionError } from '../../src/errors.js';
import { registerWriteAction } from '../shared/admin-routes.js';
import { errorText, showStatus } from '../shared/status.js';
import { createStatusThrottle } from '../shared/status-throttle.js';
import { resolveInUserDir, userDirOf } from '../shared/paths.js';
import type { LaneSourceDef, LaneSourceNode, SourceCommand, SourceMode } from './types.js';

const COMMANDS: readonly SourceCommand[] = ['start', 'stop', 'next'];
/** Consecutive failed frames after which a running source stops instead of logging forever. */
const MAX_FAILURES_IN_A_ROW = 5;
const STATUS_INTERVAL_MS = 500;

export = function (RED: NodeAPI) {
  function LaneSourceNodeConstructor(this: LaneSourceNode, config: LaneSourceDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const mode: SourceMode = config.mode === 'folder' ? 'folder' : 'synthetic';
    const throttle = createStatusThrottle(node, STATUS_INTERVAL_MS);
    let pacer: Pacer | undefined;
    /** Loops still finishing (a stopped loop may be making its last frame). */
    const loops = new Set<Promise<void>>();
    let sent = 0;
    let closed = false;
    let problem: Error | undefined;

    let rate = 2;
    const ready: Promise<LaneSource> = (async () => {
      rate = readRate(config.rate);
      const seed = readSeed(config.seed);
      if (mode === 'synthetic') return createSyntheticLane({ flavours: readFlavours(config.flavours), seed });
      return createFolderReplay(resolveFolder(config.folder), {
        shuffle: config.shuffle !== false,
        loop: config.loop !== false,
        seed,
      });
    })();
    ready.then(
      (source) => {
        if (closed) return;
        const images = 'images' in source ? (source.images as readonly unknown[]).length : undefined;
        node.debug(`${mode} source ready${images === undefined ? '' : ` (${images} images)`}`);
        if (config.autostart) start();
        else showState();
      },
      (err: Error) => {
        problem = err;
        if (closed) return;
        node.error(RED._('lane-source.errors.unusable', { message: errorText(err) }));
        showStatus(node, 'error', errorText(err));
      },
    );

    /** Frames are made one at a time, so they go out in index order (a 'next' during a run waits its turn). */
    let making: Promise<unknown> = Promise.resolve();
    function nextFrame(source: LaneSource): Promise<LaneFrame | null> {
      const frame = making.then(() => source.next());
      making = frame.catch(() => undefined);
      return frame;
    }

    function showState(now = false): void {
      const running = pacer !== undefined;
      const text = RED._(running ? 'lane-source.status.running' : 'lane-source.status.stopped', { count: sent, rate });
      if (now) throttle.showNow(running ? 'ready' : 'stopped', text);
      else throttle.show(running ? 'ready' : 'stopped', text);
    }

    function emit(frame: LaneFrame, send: (msg: NodeMessage) => void): void {
      sent++;
      send({
        payload: frame.image,
        label: frame.label,
        frame: { index: frame.index, ...(frame.path ? { path: frame.path } : {}), source: mode },
      });
      showState();
    }

    /** Sends a frame per tick. A tick missed while a frame was still being made is skipped, not queued. */
    async function run(source: LaneSource, ticks: Pacer): Promise<void> {
      let failures = 0;
      while (await ticks.tick()) {
        try {
          const frame = await nextFrame(source);
          if (ticks.stopped) break; // stopped while rendering: that frame is not wanted any more
          if (!frame) {
            stopLoop(ticks); // a folder played once (loop off)
            break;
          }
          failures = 0;
          emit(frame, (msg) => node.send(msg));
        } catch (err) {
          failures++;
          node.error(RED._('lane-source.errors.frame-failed', { message: errorText(err) }));
          if (failures >= MAX_FAILURES_IN_A_ROW) {
            stopLoop(ticks);
            throttle.showNow('error', RED._('lane-source.status.gave-up', { message: errorText(err) }));
            break;
          }
        }
      }
    }

    function start(): void {
      if (pacer || closed) return;
      const ticks = createPacer(rate);
      pacer = ticks;
      showState(true);
      ready.then(
        (source) => {
          const running = run(source, ticks).finally(() => loops.delete(running));
          loops.add(running);
        },
        () => undefined, // start is only called once the source is ready
      );
    }

    function stop(): void {
      if (pacer) stopLoop(pacer);
    }

    function stopLoop(ticks: Pacer): void {
      ticks.stop();
      if (pacer !== ticks) return;
      pacer = undefined;
      showState(true);
    }

    async function sourceOrProblem(): Promise<LaneSource> {
      try {
        return await ready;
      } catch {
        throw problem;
      }
    }

    node.toggle = async () => {
      await sourceOrProblem();
      if (pacer) stop();
      else start();
      return { running: pacer !== undefined, sent };
    };

    node.on('input', (msg, send, done) => {
      const command = commandOf(msg.topic) ?? commandOf(msg.payload);
      if (!command) {
        done(new LaneVisionError('SOURCE_BAD_COMMAND', RED._('lane-source.errors.bad-command', { topic: String(msg.topic ?? ''), payload: describe(msg.payload) })));
        return;
      }
      sourceOrProblem()
        .then(async (source) => {
          if (command === 'start') start();
          else if (command === 'stop') stop();
          else {
            const frame = await nextFrame(source);
            if (!frame) throw new LaneVisionError('SOURCE_EXHAUSTED', RED._('lane-source.errors.exhausted'));
            emit(frame, send);
          }
          done();
        })
        .catch((err: unknown) => done(err instanceof Error ? err : new Error(String(err))));
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      pacer?.stop();
      pacer = undefined;
      throttle.stop();
      Promise.allSettled([...loops]).then(() => done());
    });

    function resolveFolder(folder: unknown): string {
      if (typeof folder !== 'string' || folder.trim() === '') {
        throw new LaneVisionError('SOURCE_NOT_FOUND', RED._('lane-source.errors.no-folder'));
      }
      return resolveInUserDir(userDirOf(RED.settings), folder.trim());
    }
  }

  function readRate(value: unknown): number {
    if (value === undefined || value === null || value === '') return 2;
    const rate = Number(value);
    if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_FPS) {
      throw new LaneVisionError('SOURCE_BAD_RATE', RED._('lane-source.errors.bad-rate', { value: String(value), max: MAX_FPS }));
    }
    return rate;
  }

  function readSeed(value: unknown): number {
    if (value === undefined || value === null || value === '') return 1;
    return Number(value); // the library refuses what is not a whole number, with its own message
  }

  function readFlavours(value: unknown): YoghurtFlavour[] | undefined {
    const list = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : [];
    const names = list.map((name) => String(name).trim()).filter((name) => name !== '');
    if (names.length === 0) return undefined; // all
    const unknown = names.filter((name) => !isYoghurtFlavour(name));
    if (unknown.length) {
      throw new LaneVisionError('SOURCE_UNKNOWN_FLAVOUR', RED._('lane-source.errors.bad-flavour', { names: unknown.join(', '), known: YOGHURT_FLAVOURS.join(', ') }));
    }
    return names as YoghurtFlavour[];
  }

  RED.nodes.registerType('lane-source', LaneSourceNodeConstructor);

  registerWriteAction<LaneSourceNode>(RED, 'lane-source', 'toggle', (node) => node.toggle());
};

function commandOf(value: unknown): SourceCommand | undefined {
  return typeof value === 'string' && (COMMANDS as readonly string[]).includes(value.trim().toLowerCase())
    ? (value.trim().toLowerCase() as SourceCommand)
    : undefined;
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? `"${value}"` : Buffer.isBuffer(value) ? 'a Buffer' : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
