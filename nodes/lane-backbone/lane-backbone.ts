/**
 * lane-backbone: the config node owning one pretrained backbone (src/engine
 * acquireBackbone), shared by every node that uses it, as the core mqtt-broker node owns
 * its connection: the first acquire() loads it, every user mirrors loading / ready /
 * error on its status, and it is released after the last user and on close. It also owns
 * the two threads that keep work off Node-RED's event loop, both ended with the backbone:
 * the training worker (src/retrain TrainingWorker), started on the first training, and
 * the inference worker that decodes and embeds classifiers' frames (src/features
 * FrameEmbedder), started when the first classifier asks for it.
 */
import type { Node, NodeAPI } from 'node-red';
import { LaneVisionError } from '../../src/errors.js';
import {
  BACKBONE_PRESETS,
  acquireBackbone,
  formatDownloadProgress,
  type Backbone,
  type BackboneSpec,
  type BackendPreference,
  type DownloadProgress,
  type EnginePreference,
  type LoadStage,
} from '../../src/engine/index.js';
import { FrameEmbedder, type Embedder } from '../../src/features/index.js';
import { LaneActivity } from '../../src/threads/index.js';
import type { FitPolicy } from '../../src/image/index.js';
import { TrainingWorker, enginePreferenceOf, retrain, trainThreadFrom, type RetrainOptions, type RetrainResult } from '../../src/retrain/index.js';
import { READ_PERMISSION } from '../shared/admin-routes.js';
import { errorText, showStatus, type StatusState } from '../shared/status.js';
import { userDirOf } from '../shared/paths.js';
import { backboneSpecFrom, backendPreferenceFrom, enginePreferenceFrom, fitPolicyFrom, runtimeName, type LaneBackboneDef } from './settings.js';
import type { LaneBackboneNode } from './types.js';

/** How long close() waits for users still stopping (a training being cancelled) before releasing anyway. */
const CLOSE_WAIT_MS = 10_000;

/** One load of the backbone, from acquire to release. */
interface Holding {
  promise: Promise<Backbone>;
  backbone?: Backbone;
  dropped: boolean;
}

export = function (RED: NodeAPI) {
  function LaneBackboneNodeConstructor(this: LaneBackboneNode, config: LaneBackboneDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const users = new Map<string, Node>();
    let shown: { state: StatusState; text: string } = { state: 'idle', text: '' };
    let holding: Holding | undefined;
    let trainer: TrainingWorker | undefined;
    let frames: FrameEmbedder | undefined;
    // The classifiers' frames in flight: the training worker steps aside for them.
    const laneActivity = new LaneActivity();
    let closed = false;
    let finishClose: (() => void) | undefined;

    // Settings errors surface when a user acquires, on its status, like a load error.
    let problem: unknown;
    const settle = <T>(read: () => T, fallback: T): T => {
      try {
        return read();
      } catch (err) {
        problem ??= err;
        return fallback;
      }
    };
    const spec: BackboneSpec = settle(() => backboneSpecFrom(config, userDirOf(RED.settings)), { source: String(config.source ?? '') });
    const fit: FitPolicy = settle(() => fitPolicyFrom(config), { kind: 'cover' });
    const backendPreference: BackendPreference = settle(() => backendPreferenceFrom(config), 'auto');
    const enginePreference: EnginePreference = settle(() => enginePreferenceFrom(config), 'auto');
    if (problem) node.error(RED._('lane-backbone.errors.invalid-config', { message: errorText(problem) }));

    function show(state: StatusState, text: string): void {
      shown = { state, text };
      for (const user of users.values()) showStatus(user, state, text);
    }

    function readyText(backbone: Backbone): { state: StatusState; text: string } {
      const { name, preference, skipped } = backbone.backend;
      let text = `${RED._('lane-backbone.status.ready')} · ${runtimeName(backbone)} · ${backbone.featureSize}-d`;
      if (skipped.length > 0) text += ` · ${skipped.map((s) => s.name).join(', ')} ${RED._('lane-backbone.status.skipped')}`;
      // Asked for a tfjs backend by name and the backbone runs on another one: worth a yellow dot.
      const missed = backbone.engine.name === 'tfjs' && preference !== 'auto' && preference !== name;
      return { state: missed ? 'warning' : 'ready', text };
    }

    function logBackend(backbone: Backbone): void {
      const { skipped } = backbone.backend;
      const t = backbone.loadTimings;
      const seconds = ((t.fetchMs + t.buildMs + t.warmupMs) / 1000).toFixed(1);
      const why = skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
      node.log(
        RED._('lane-backbone.log.loaded', { source: backbone.source, backend: runtimeName(backbone), size: backbone.featureSize, seconds }) +
          (why ? ` ${RED._('lane-backbone.log.skipped', { reasons: why })}` : ''),
      );
    }

    function load(): Holding {
      show('loading', RED._('lane-backbone.status.loading'));
      const held: Holding = { dropped: false } as Holding;
      held.promise = (async () => {
        if (problem) throw problem;
        // 'auto' leaves the choice (and the LANE_VISION_BACKEND override) to the engine.
        const backbone = await acquireBackbone(spec, {
          backend: backendPreference === 'auto' ? undefined : backendPreference,
          engine: enginePreference === 'auto' ? undefined : enginePreference,
          // The engine calls at most every 250 ms, so the status needs no throttle of its own.
          onProgress: (progress: DownloadProgress) => {
            if (held.dropped || holding !== held) return;
            if (!progress.done) return show('loading', RED._('lane-backbone.status.downloading', { progress: formatDownloadProgress(progress) }));
            show('loading', RED._('lane-backbone.status.loading'));
            node.log(RED._('lane-backbone.log.downloaded', { url: progress.url, progress: formatDownloadProgress(progress) }));
          },
          onStage: (stage: LoadStage) => {
            if (held.dropped || holding !== held) return;
            if (stage === 'converting') show('loading', RED._('lane-backbone.status.converting'));
          },
        });
        if (held.dropped) {
          backbone.release();
          throw new LaneVisionError('BACKBONE_STOPPED', RED._('lane-backbone.errors.stopped'));
        }
        held.backbone = backbone;
        return backbone;
      })();
      held.promise.then(
        (backbone) => {
          if (holding !== held) return;
          const { state, text } = readyText(backbone);
          show(state, text);
          logBackend(backbone);
        },
        (err: unknown) => {
          if (holding !== held) return;
          show('error', errorText(err));
          node.error(RED._('lane-backbone.errors.load-failed', { message: errorText(err) }));
        },
      );
      return held;
    }

    /** Releases the backbone and ends the training and inference workers; resolves when their threads are gone. */
    function drop(): Promise<void> {
      const ending = Promise.all([trainer?.dispose(), frames?.dispose()]).catch((err: unknown) => node.warn(errorText(err)));
      trainer = undefined;
      frames = undefined;
      const held = holding;
      holding = undefined;
      shown = { state: 'idle', text: '' };
      if (held) {
        held.dropped = true;
        held.backbone?.release();
        held.backbone = undefined;
      }
      return ending.then(() => undefined);
    }

    async function train(options: RetrainOptions): Promise<RetrainResult> {
      if (trainThreadFrom() === 'main') return retrain(options);
      if (closed || !holding) throw new LaneVisionError('BACKBONE_STOPPED', RED._('lane-backbone.errors.stopped'));
      // Same spec, tfjs backend and engine as the main thread's copy, so the features match.
      if (!trainer) {
        trainer = new TrainingWorker({
          spec,
          backend: backendPreference === 'auto' ? undefined : backendPreference,
          engine: enginePreferenceOf(options.backbone),
          laneActivity,
        });
        trainer.on('ready', (info) => {
          const backend = runtimeName({ engine: { name: info.engine }, backend: { name: info.backend } });
          node.log(RED._('lane-backbone.log.training-worker', { thread: info.threadId, backend }));
        });
      }
      return trainer.retrain(options);
    }

    function startFrameEmbedder(backbone: Backbone, forSpec: BackboneSpec = spec): FrameEmbedder {
      return new FrameEmbedder(backbone, {
        spec: forSpec,
        backend: backendPreference === 'auto' ? undefined : backendPreference,
        onWorkerReady: (info) => {
          const backend = runtimeName({ engine: { name: info.engine }, backend: { name: info.backend } });
          node.log(RED._('lane-backbone.log.inference-worker', { thread: info.threadId, backend }));
        },
        onMainThread: (reason) => node.warn(RED._('lane-backbone.log.inference-main', { message: errorText(reason) })),
        activity: laneActivity,
      });
    }

    function embedder(): Embedder {
      const current = holding?.backbone;
      if (current && !closed) frames ??= startFrameEmbedder(current);
      return (inputs, options) => {
        const backbone = holding?.backbone;
        if (closed || !backbone) return Promise.reject(new LaneVisionError('BACKBONE_STOPPED', RED._('lane-backbone.errors.stopped')));
        frames ??= startFrameEmbedder(backbone);
        return frames.embed(inputs, options);
      };
    }

    Object.assign(node, {
      source: spec.source,
      featureLayer: spec.featureLayer,
      fit,
      backendPreference,
      current: () => holding?.backbone,
      acquire(user: Node): Promise<Backbone> {
        if (closed) return Promise.reject(new LaneVisionError('BACKBONE_STOPPED', RED._('lane-backbone.errors.stopped')));
        users.set(user.id, user);
        if (holding) showStatus(user, shown.state, shown.text);
        else holding = load(); // shows "loading" on every user, this one included
        return holding.promise;
      },
      release(user: Node): void {
        if (!users.delete(user.id) || users.size > 0) return;
        if (finishClose) finishClose();
        else void drop();
      },
      retrain: train,
      embedder,
      // A fine-tuned version's backbone gets an inference thread of its own, ended by the classifier that asked.
      tunedEmbedder: (tuned: Backbone, tunedSpec: BackboneSpec) => startFrameEmbedder(tuned, tunedSpec),
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (!finishClose) return;
        finishClose = undefined;
        clearTimeout(timer);
        users.clear();
        void drop().then(() => done());
      };
      finishClose = finish;
      // Users still stopping release in their own close (after cancelling a training); the model must outlive them.
      if (users.size === 0) finish();
      else timer = setTimeout(finish, CLOSE_WAIT_MS);
    });
  }

  RED.nodes.registerType('lane-backbone', LaneBackboneNodeConstructor);

  // The editor's list of presets comes from the engine's table, never a copy of it.
  RED.httpAdmin.get('/lane-vision/lane-backbone/presets', RED.auth.needsPermission(READ_PERMISSION), (_req, res) => {
    res.json(BACKBONE_PRESETS.map(({ name, description, featureSize, inputSize }) => ({ name, description, featureSize, inputSize })));
  });
};
