/**
 * lane-classify: frame in, decision out. Holds the shared backbone of a lane-backbone
 * config node and either follows the active model of a lane-dataset's model store (a
 * retrain or rollback is picked up without redeploy, and a frame in flight finishes with
 * the model it started with) or uses the backbone's own ImageNet classes.
 * The deciding is src/classify LaneClassifier and the queueing its MicroBatchQueue (micro-
 * batching, a bounded queue with a drop policy); this file settles each frame's message
 * (also dropped ones), counts, routes results to outputs, answers commands and keeps the status.
 */
import { performance } from 'node:perf_hooks';
import type { ReviewQueue } from '../../src/review/index.js';
import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import {
  LaneClassifier,
  MicroBatchQueue,
  OVERFLOW_POLICIES,
  UNKNOWN_LABEL,
  type ClassificationResult,
  type DropReason,
  type OverflowPolicy,
} from '../../src/classify/index.js';
import type { ModelStore } from '../../src/model-store/index.js';
import { LaneVisionError, isLaneVisionError } from '../../src/errors.js';
import type { FileAccess, ImageInput } from '../../src/image/index.js';
import { fileAccessFrom, frameBytes } from '../shared/file-input.js';
import { userDirOf } from '../shared/paths.js';
import type { BackboneConfigNode, DatasetConfigNode } from '../shared/config-types.js';
import { registerReadAction } from '../shared/admin-routes.js';
import { keepFrame } from '../shared/recent-frames.js';
import { errorText, showStatus } from '../shared/status.js';
import { createStatusThrottle } from '../shared/status-throttle.js';
import type { ClassifyMode, FrameDropReason, LaneClassifyDef, LaneClassifyNode, LaneVisionInfo, QueueCounters } from './types.js';

/** A frame or a command waiting its turn. */
interface Job {
  msg: NodeMessageInFlow;
  /** The frame, read from the node's image property when the message arrived. */
  image?: unknown;
  send: (msg: NodeMessage | Array<NodeMessage | null>) => void;
  done: (err?: Error) => void;
  command?: 'threshold' | 'rollback';
  /** performance.now() when the message reached the node: queue wait counts from here. */
  arrivedAt: number;
}

const COMMANDS = new Set(['threshold', 'rollback']);
/** Batches of frames in flight at once when the lane is saturated (MicroBatchQueue maxRunning). */
const LANE_BATCHES_RUNNING = 2;
const DEFAULTS = { threshold: 'model' as number | 'model', topK: 3, maxBatch: 8, maxWaitMs: 0, queueLimit: 100, overflow: 'drop-oldest' as OverflowPolicy, testViews: 'model' as number | 'model' };
const STATUS_INTERVAL_MS = 500;
/** Dropping frames is warned about once, then at most once a minute (the status shows the count). */
const DROP_WARN_INTERVAL_MS = 60_000;
/** How often the store is checked for a model activated by another process (the CLI). */
const POLL_STORE_MS = 2000;

export = function (RED: NodeAPI) {
  function LaneClassifyNodeConstructor(this: LaneClassifyNode, config: LaneClassifyDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const mode: ClassifyMode = config.mode === 'backbone' ? 'backbone' : 'trained';
    const outputLabels = config.splitOutputs && Array.isArray(config.labels) ? config.labels.map(String) : undefined;
    /** Low-confidence and unknown-product (and reject-class) frames on one output, or on two. */
    const separateInspection = config.inspectOutputs === 'separate';
    /** Frames queued for review also go out on a last output (topic "review"; wire it to lane-events). */
    const reviewOutput = config.reviewOutput === true || config.reviewOutput === 'true';
    // Off by default: a JPEG in every result weighs on MQTT, debug and context (a console still gets it).
    const includeFrame = config.includeFrame === true || config.includeFrame === 'true';
    // Frames while there is no model: `fail` each (a triggered item needs its answer), or `skip`:
    // the first fails with the reason, the rest are counted (a free-running lane would flood catch and debug).
    const unreadyFrames = config.unreadyFrames === 'skip' ? 'skip' : 'fail';
    /** The fault the first skipped frame was failed with; a new fault is reported again. */
    let reportedFault: Error | undefined;
    let skippedUnready = 0;
    const imageProperty = messageProperty(config.property);
    const outputProperty = messageProperty(config.outputProperty);
    const thresholdType = config.thresholdType ?? (blankOrModel(config.threshold) ? 'model' : 'num');
    // flow / global thresholds are read before every batch; the last value applied, to notice a change.
    let contextThreshold: unknown;
    let reviewQueue: ReviewQueue | undefined;
    let reviewFailed = false;
    const throttle = createStatusThrottle(node, STATUS_INTERVAL_MS);
    const backboneNode = RED.nodes.getNode(config.backbone) as BackboneConfigNode | null;
    const datasetNode = config.dataset ? (RED.nodes.getNode(config.dataset) as DatasetConfigNode | null) : null;

    /**
     * loading: frames wait; ready: frames classify; no-model: frames fail with `problem`
     * until the store gets a usable model; failed: everything fails with `problem`.
     */
    let state: 'loading' | 'ready' | 'no-model' | 'failed' = 'loading';
    let problem: Error | undefined;
    let classifier: LaneClassifier | undefined;
    let store: ModelStore | undefined;
    /** Registered with the backbone node (from the acquire call on, also while it loads). */
    let registered = false;
    let closing = false;
    let stopWatching: (() => void) | undefined;
    /** The latest take-up of a model version: a newer one makes older ones moot. */
    let takingUp: { seq: number; done: Promise<void>; error?: Error } = { seq: 0, done: Promise.resolve() };
    /** A newer version the store activated that cannot be used here (the one in use stays). */
    let refused: number | 'active' | undefined;
    /** frames = classified (with a result); failed = could not be classified (error sent). */
    const counts = { frames: 0, unknown: 0, failed: 0 };
    let lastMs = 0;
    let lastDropWarning = -Infinity;

    let settings = DEFAULTS;
    let setupProblem: Error | undefined;
    let files: FileAccess = 'none';
    try {
      files = fileAccessFrom(config, userDirOf(RED.settings as { userDir?: string }));
      settings = {
        // Blank: the thresholds the model's training chose for its target precision.
        threshold: initialThreshold(),
        topK: Math.floor(readNumber(config.topK, DEFAULTS.topK, 1, 1000, 'topK')),
        maxBatch: Math.floor(readNumber(config.maxBatch, DEFAULTS.maxBatch, 1, 64, 'maxBatch')),
        maxWaitMs: readNumber(config.maxWaitMs, DEFAULTS.maxWaitMs, 0, 10_000, 'maxWaitMs'),
        queueLimit: Math.floor(readNumber(config.queueLimit, DEFAULTS.queueLimit, 1, 10_000, 'queueLimit')),
        overflow: readOverflow(config.overflow),
        testViews: config.testViews === undefined || String(config.testViews).trim() === '' || config.testViews === 'model' ? 'model' : Math.floor(readNumber(config.testViews, 0, 0, 8, 'testViews')),
      };
      if (!backboneNode) throw new LaneVisionError('CLASSIFY_NO_BACKBONE', RED._('lane-classify.errors.no-backbone'));
      if (mode === 'trained' && !datasetNode) throw new LaneVisionError('CLASSIFY_NO_DATASET', RED._('lane-classify.errors.no-dataset'));
    } catch (err) {
      setupProblem = asError(err);
    }

    const queue = new MicroBatchQueue<Job>(runBatch, {
      maxBatch: settings.maxBatch,
      maxWaitMs: settings.maxWaitMs,
      limit: settings.queueLimit,
      overflow: settings.overflow,
      isBarrier: (job) => job.command !== undefined,
      onError: (err, batch) => batch.forEach((job) => (job.command ? job.done(asError(err)) : failFrame(job, asError(err), batch.length))),
      onDrop: dropped,
      startPaused: true,
      // Saturated, a second full batch goes to the inference worker while the first is in its
      // backbone, so the worker's decode and backbone stages stay busy across batches
      // (photos: 455-462 against 384-387 frames/s with the cores free, bench frame-path);
      // runBatch has them take their model and send their results in the order they started.
      // Their frames are no longer waiting: the queue limit and policy apply to the others.
      maxRunning: LANE_BATCHES_RUNNING,
    });
    /** Settle once the batch started last has taken its model / sent its results (see runFrames). */
    let previousModelTaken: Promise<void> = Promise.resolve();
    let previousSent: Promise<void> = Promise.resolve();

    node.modelLabels = () => ({ labels: [...(classifier?.labels ?? [])], modelVersion: classifier?.modelVersion, mode });

    if (setupProblem) {
      fail(setupProblem);
    } else {
      showStatus(node, 'loading', RED._('lane-classify.status.loading'));
      start().catch((err: unknown) => fail(asError(err)));
    }

    async function start(): Promise<void> {
      registered = true;
      const backbone = await backboneNode!.acquire(node);
      if (closing) return;
      classifier = new LaneClassifier({ backbone, threshold: settings.threshold, topK: settings.topK, testViews: settings.testViews, embed: backboneNode!.embedder(), tunedEmbedder: (tuned, spec) => backboneNode!.tunedEmbedder(tuned, spec) });
      if (mode === 'backbone') {
        classifier.useBackboneClassifier();
        becomeReady();
        return;
      }
      store = await datasetNode!.models();
      reviewQueue = await datasetNode!.review().catch((err: unknown) => {
        node.warn(RED._('lane-classify.warnings.review-unavailable', { message: errorText(err) }));
        return undefined;
      });
      if (closing) return;
      // Watch first, so a model activated while the first one loads is not missed.
      stopWatching = store.watchActive((change) => void takeUp(change.version), { pollIntervalMs: POLL_STORE_MS });
      await takeUp('active');
    }

    /**
     * Loads a model version and decides with it from the next frame on; a frame in flight
     * finishes with the model it started with. Written here rather than with the library's
     * followActiveModel because the node must also start on an empty store (waiting for
     * the first model) and keep its status and warnings in step with each change.
     */
    function takeUp(version: number | 'active'): Promise<void> {
      const seq = takingUp.seq + 1;
      const done = (async () => {
        try {
          const model = await store!.loadModel(version);
          if (closing || seq !== takingUp.seq) return;
          await classifier!.useLoadedModel(model);
          becomeReady();
        } catch (err) {
          if (closing || seq !== takingUp.seq) return;
          takingUp.error = asError(err);
          modelUnusable(takingUp.error, version);
        }
      })();
      takingUp = { seq, done };
      return done;
    }

    /** Without a usable model frames fail fast with the reason; with one, it stays in use. */
    function modelUnusable(err: Error, version: number | 'active'): void {
      if (state === 'ready') {
        refused = version;
        node.warn(RED._('lane-classify.errors.model-change-failed', { version, message: errorText(err) }));
        throttle.showNow(readyState(), readyText());
        return;
      }
      const empty = isLaneVisionError(err, 'MODEL_STORE_EMPTY');
      state = 'no-model';
      problem = empty ? new LaneVisionError('CLASSIFY_NO_MODEL', RED._('lane-classify.errors.no-model')) : err;
      if (!empty) node.error(RED._('lane-classify.errors.model-unusable', { message: errorText(err) }));
      throttle.showNow(empty ? 'warning' : 'error', empty ? RED._('lane-classify.status.no-model') : errorText(err));
      queue.resume();
    }

    function becomeReady(): void {
      state = 'ready';
      reportedFault = undefined;
      skippedUnready = 0;
      problem = undefined;
      refused = undefined;
      throttle.showNow(readyState(), readyText());
      queue.resume();
    }

    function fail(err: Error): void {
      if (closing) return;
      state = 'failed';
      problem = err;
      node.error(RED._('lane-classify.errors.cannot-classify', { message: errorText(err) }));
      // The status is cut at 60 characters: known causes get a short text that fits.
      const short = isLaneVisionError(err, 'MODEL_HAS_NO_CLASSIFIER') ? RED._('lane-classify.status.no-classifier') : errorText(err);
      throttle.showNow('error', short);
      queue.resume(); // waiting frames fail with the reason
    }

    /** Yellow while a model version was refused, or while block holds more frames than the queue limit. */
    function readyState(): 'ready' | 'warning' {
      return refused === undefined && queue.stats.queued <= settings.queueLimit ? 'ready' : 'warning';
    }

    function readyText(extra?: string): string {
      const version = mode === 'backbone' ? RED._('lane-classify.status.imagenet') : `v${classifier?.modelVersion ?? '?'}`;
      const { queued, dropped } = queueCounters();
      // [text, rank]: when the line is longer than the editor shows, the highest ranks go first.
      const parts: [string, number][] = [
        [version, 0],
        [classifier?.backbone.backend.name ?? '', 5],
      ];
      if (counts.frames > 0) parts.push([`${Math.round(lastMs)} ms`, 4]);
      if (counts.unknown > 0) parts.push([RED._('lane-classify.status.unknown', { count: counts.unknown, total: counts.frames }), 2]);
      if (dropped > 0) parts.push([RED._('lane-classify.status.dropped', { count: dropped }), 2]);
      if (queued > 0) parts.push([RED._('lane-classify.status.queued', { count: queued }), 3]);
      if (refused !== undefined) parts.push([RED._('lane-classify.status.refused', { version: refused }), 1]);
      if (extra) parts.push([extra, 1]);
      return fitStatus(parts);
    }

    function showReady(): void {
      if (state === 'ready' && !closing) throttle.show(readyState(), readyText());
    }

    function queueCounters(): QueueCounters {
      const stats = queue.stats;
      return {
        queued: stats.queued,
        maxQueued: stats.maxQueued,
        processed: counts.frames,
        failed: counts.failed,
        dropped: stats.dropped.queueFull + stats.dropped.safetyCap,
        droppedBy: stats.dropped,
      };
    }

    /** What every message leaving the node carries in msg.laneVision (documented in the help). */
    function laneVisionInfo(more: { batchSize?: number; dropped?: FrameDropReason } = {}): LaneVisionInfo {
      return { classifier: node.id, ...more, queue: queueCounters() };
    }

    /** A frame the queue let go: settled now, counted; only the safety cap of `block` is an error. */
    function dropped(job: Job, reason: DropReason): void {
      job.msg.laneVision = laneVisionInfo({ dropped: reason });
      if (reason === 'safetyCap') {
        job.done(new LaneVisionError('CLASSIFY_OVERLOADED', RED._('lane-classify.errors.overloaded', { count: queue.blockLimit, limit: settings.queueLimit })));
      } else {
        job.done();
        warnDropping();
      }
      showReady();
    }

    /** One warning when dropping starts, then at most one a minute: the debug sidebar stays readable. */
    function warnDropping(): void {
      const now = performance.now();
      if (now - lastDropWarning < DROP_WARN_INTERVAL_MS) return;
      lastDropWarning = now;
      const { dropped: count } = queueCounters();
      node.warn(RED._('lane-classify.errors.dropping', { count, limit: settings.queueLimit, policy: settings.overflow }));
    }

    /** The threshold setting at deploy: the model's own, a number, an env variable; flow / global start with the model's own. */
    function initialThreshold(): number | 'model' {
      if (thresholdType === 'model' || thresholdType === 'flow' || thresholdType === 'global') return 'model';
      const value = thresholdType === 'env' ? RED.util.evaluateNodeProperty(String(config.threshold ?? ''), 'env', node, {}) : config.threshold;
      if (!['num', 'env'].includes(thresholdType)) throw new LaneVisionError('CLASSIFY_BAD_SETTING', RED._('lane-classify.errors.bad-threshold-type', { type: String(thresholdType) }));
      return blankOrModel(value) ? 'model' : readNumber(value, 0.6, 0, 1, 'threshold');
    }

    /**
     * A flow / global threshold: applied when it changes. A bad value keeps the threshold in
     * use and is reported once (one warning, the status), not with every frame.
     */
    function applyContextThreshold(): void {
      if (!classifier || (thresholdType !== 'flow' && thresholdType !== 'global')) return;
      const value: unknown = RED.util.evaluateNodeProperty(String(config.threshold ?? ''), thresholdType, node, {});
      if (value === contextThreshold) return;
      contextThreshold = value;
      const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (value === undefined || blankOrModel(value)) {
        classifier.setThreshold('model');
      } else if (typeof number === 'number' && Number.isFinite(number) && number >= 0 && number <= 1) {
        classifier.setThreshold(number);
      } else {
        const text = RED._('lane-classify.errors.bad-context-threshold', { type: thresholdType, key: String(config.threshold), value: describe(value), threshold: String(classifier.threshold) });
        node.warn(text);
        throttle.showNow('warning', text);
      }
    }

    function failFrame(job: Job, err: Error, batchSize: number): void {
      counts.failed++;
      job.msg.laneVision = laneVisionInfo({ batchSize });
      job.done(err);
    }

    async function runBatch(jobs: Job[]): Promise<void> {
      if (jobs[0].command) return runCommand(jobs[0]);
      // Taken before any await: the queue starts batches in arrival order, so turns follow it.
      const turns = { modelTaken: previousModelTaken, sent: previousSent };
      let modelTaken!: () => void;
      let sent!: () => void;
      previousModelTaken = new Promise<void>((resolve) => (modelTaken = resolve));
      previousSent = new Promise<void>((resolve) => (sent = resolve));
      try {
        await runFrames(jobs, turns, modelTaken);
      } catch (err) {
        // Reported by the queue's onError: after the batch before this one, like results.
        await turns.sent;
        throw err;
      } finally {
        modelTaken();
        sent();
      }
    }

    /**
     * `turns.modelTaken` settles when the batch before this one has taken its model (called
     * classifyBatch), `turns.sent` when it has sent its results (see maxRunning): so with
     * two batches in flight each still uses one model whole, a later batch never an older
     * model than an earlier one, and results and errors leave in frame order.
     */
    async function runFrames(jobs: Job[], turns: { modelTaken: Promise<void>; sent: Promise<void> }, modelTaken: () => void): Promise<void> {
      if (state !== 'ready' || !classifier) {
        await turns.sent;
        const fault = problem ?? new LaneVisionError('CLASSIFY_NOT_READY', RED._('lane-classify.errors.not-ready'));
        for (const job of jobs) {
          if (unreadyFrames === 'fail' || reportedFault !== fault) {
            reportedFault = fault;
            failFrame(job, fault, jobs.length);
            continue;
          }
          skippedUnready++;
          job.msg.laneVision = laneVisionInfo({ batchSize: jobs.length, dropped: 'not-ready' });
          job.done();
        }
        if (unreadyFrames === 'skip' && skippedUnready > 0) {
          const noModel = isLaneVisionError(fault, 'CLASSIFY_NO_MODEL');
          throttle.show(noModel ? 'warning' : 'error', `${noModel ? RED._('lane-classify.status.no-model') : errorText(fault)} · ${RED._('lane-classify.status.skipped', { count: skippedUnready })}`);
        }
        return;
      }
      // Text frames become bytes first, under the node's file access (off by default).
      const unreadable = new Map<Job, Error>();
      await Promise.all(
        jobs.map(async (job) => {
          try {
            job.image = await frameBytes(job.image, files);
          } catch (err) {
            unreadable.set(job, asError(err));
          }
        }),
      );
      const readable = jobs.filter((job) => !unreadable.has(job));
      await turns.modelTaken;
      applyContextThreshold();
      const started = performance.now();
      // classifyBatch takes the model (and threshold) in use before its first await.
      const classifying = readable.length > 0 ? classifier.classifyBatch(
        readable.map((job) => job.image as ImageInput),
        readable.map((job) => started - job.arrivedAt),
      ) : Promise.resolve([]);
      modelTaken();
      const results = await classifying;
      await turns.sent;
      for (const job of jobs) if (unreadable.has(job)) failFrame(job, unreadable.get(job)!, jobs.length);
      if (readable.length === 0) return showReady();
      results.forEach((result, i) => {
        const job = readable[i];
        if ('error' in result) return failFrame(job, result.error, readable.length);
        counts.frames++;
        if (result.label === UNKNOWN_LABEL) counts.unknown++;
        lastMs = result.timings.decodeMs + result.timings.featuresMs + result.timings.headMs;
        const frame = job.image as ImageInput;
        job.send(route(decorate(job.msg, frame, result, readable.length)));
        job.done();
        offerForReview(frame, result);
      });
      showReady();
    }

    function decorate(msg: NodeMessageInFlow, frame: ImageInput, result: ClassificationResult, batchSize: number): NodeMessageInFlow {
      // lane-source describes its frames in msg.frame; keep that next to the image.
      if (msg.frame !== undefined && msg.frameInfo === undefined) msg.frameInfo = msg.frame;
      if (includeFrame) {
        msg.frame = frame;
      } else {
        delete msg.frame;
        keepFrame(msg._msgid, frame);
      }
      // The frame leaves its property (unless the label goes there anyway): results stay small.
      if (imageProperty !== outputProperty) RED.util.setMessageProperty(msg, imageProperty, undefined, false);
      RED.util.setMessageProperty(msg, outputProperty, result.label, true);
      msg.classification = result;
      msg.laneVision = laneVisionInfo({ batchSize });
      return msg;
    }

    /** Queues a frame worth an operator's look; a failing queue is reported once, not per frame. */
    function offerForReview(frame: ImageInput, result: ClassificationResult): void {
      if (!reviewQueue) return;
      reviewQueue.offer(frame, result).then(
        (item) => {
          if (!item || !reviewOutput) return;
          const outputs: Array<NodeMessage | null> = new Array(outputCount()).fill(null);
          outputs[outputs.length - 1] = { topic: 'review', payload: item } as NodeMessage;
          node.send(outputs);
        },
        (err: unknown) => {
          if (reviewFailed) return;
          reviewFailed = true;
          node.warn(RED._('lane-classify.warnings.review-failed', { message: errorText(err) }));
        },
      );
    }

    function outputCount(): number {
      return (outputLabels ? outputLabels.length + (separateInspection ? 2 : 1) : 1) + (reviewOutput ? 1 : 0);
    }

    /** One output per label, then inspection: one output, or low-confidence then unknown-product (reject classes with them). */
    function route(msg: NodeMessageInFlow): NodeMessage | Array<NodeMessage | null> {
      if (!outputLabels) return reviewOutput ? [msg, null] : msg;
      const outputs: Array<NodeMessage | null> = new Array(outputCount()).fill(null);
      const index = outputLabels.indexOf((msg.classification as ClassificationResult).label);
      const reason = (msg.classification as ClassificationResult).reason;
      const inspection = outputLabels.length + (separateInspection && reason !== 'low-confidence' ? 1 : 0);
      outputs[index === -1 ? inspection : index] = msg;
      return outputs;
    }

    async function runCommand(job: Job): Promise<void> {
      if (state === 'failed' || !classifier) {
        return job.done(problem ?? new LaneVisionError('CLASSIFY_NOT_READY', RED._('lane-classify.errors.not-ready')));
      }
      try {
        if (job.command === 'threshold') {
          classifier.setThreshold(readThresholdCommand(job.msg.payload));
          throttle.showNow(state === 'ready' ? readyState() : 'warning', readyText(RED._('lane-classify.status.threshold', { threshold: classifier.threshold })));
        } else {
          await rollback(job.msg.payload);
        }
        job.done();
      } catch (err) {
        job.done(asError(err));
      }
    }

    async function rollback(payload: unknown): Promise<void> {
      if (mode !== 'trained' || !store) throw new LaneVisionError('CLASSIFY_BAD_COMMAND', RED._('lane-classify.errors.rollback-mode'));
      const ref = readVersionCommand(payload);
      const change = ref === undefined ? await store.rollback() : await store.activate(ref);
      // The store announced the change to the watch, which is taking it up now.
      await takingUp.done;
      if (classifier!.modelVersion !== change.version) {
        throw takingUp.error ?? new LaneVisionError('CLASSIFY_NOT_READY', RED._('lane-classify.errors.not-ready'));
      }
      throttle.showNow(readyState(), readyText(RED._('lane-classify.status.activated', { from: change.previous ?? '-' })));
    }

    /** A number from 0 to 1, or "model" to go back to the model's own threshold. */
    function readThresholdCommand(payload: unknown): number | 'model' {
      if (payload === 'model') return 'model';
      const value = typeof payload === 'string' && payload.trim() !== '' ? Number(payload) : payload;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
        throw new LaneVisionError('THRESHOLD_INVALID', RED._('lane-classify.errors.bad-threshold', { value: describe(payload) }));
      }
      return value;
    }

    function readVersionCommand(payload: unknown): number | string | undefined {
      if (payload === undefined || payload === null || payload === '') return undefined;
      if (typeof payload === 'number' && Number.isInteger(payload) && payload >= 1) return payload;
      if (typeof payload === 'string' && /^v?\d+$/.test(payload.trim())) return payload.trim();
      throw new LaneVisionError('CLASSIFY_BAD_COMMAND', RED._('lane-classify.errors.bad-version', { value: describe(payload) }));
    }

    node.on('input', (msg, send, done) => {
      const command = typeof msg.topic === 'string' && COMMANDS.has(msg.topic) ? (msg.topic as Job['command']) : undefined;
      // A frame the queue refuses or evicts is settled by `dropped`.
      const image = command ? undefined : RED.util.getMessageProperty(msg, imageProperty);
      queue.push({ msg, send, done, command, image, arrivedAt: performance.now() });
    });

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      throttle.stop();
      stopWatching?.();
      queue.pause();
      // Frames still waiting are settled like dropped ones (counted, no error each: a redeploy
      // with a busy lane would otherwise flood the log); a waiting command fails visibly.
      let stopped = 0;
      for (const job of queue.takeAll()) {
        if (job.command) {
          job.done(new LaneVisionError('CLASSIFY_STOPPED', RED._('lane-classify.errors.stopped')));
          continue;
        }
        stopped++;
        job.msg.laneVision = laneVisionInfo({ dropped: 'stopped' });
        job.done();
      }
      if (stopped > 0) node.log(RED._('lane-classify.errors.stopped-frames', { count: stopped }));
      // The batch in flight still uses the backbone: release it only after that batch.
      queue.idle().then(() => {
        // Also while it still loads: the backbone node then drops the load if no one else wants it.
        if (registered) backboneNode?.release(node);
        registered = false;
        classifier?.dispose();
        done();
      });
    });
  }

  function readOverflow(value: unknown): OverflowPolicy {
    if (value === undefined || value === null || value === '') return DEFAULTS.overflow;
    if ((OVERFLOW_POLICIES as readonly unknown[]).includes(value)) return value as OverflowPolicy;
    throw new LaneVisionError('CLASSIFY_BAD_SETTING', RED._('lane-classify.errors.bad-overflow', { value: String(value), policies: OVERFLOW_POLICIES.join(', ') }));
  }

  /** A typedInput msg property; blank (flows before the setting) is payload. */
  function messageProperty(value: unknown): string {
    return typeof value === 'string' && value.trim() !== '' ? value.trim() : 'payload';
  }

  function blankOrModel(value: unknown): boolean {
    return value === undefined || value === null || value === 'model' || (typeof value === 'string' && value.trim() === '');
  }

  /** Reads a number setting, refusing values outside [min, max] with a message naming the setting. */
  function readNumber(value: unknown, fallback: number, min: number, max: number, name: string): number {
    if (value === undefined || value === null || value === '') return fallback;
    const number = Number(value);
    if (!Number.isFinite(number) || number < min || number > max) {
      throw new LaneVisionError('CLASSIFY_BAD_SETTING', RED._('lane-classify.errors.bad-setting', { name, value: String(value), min, max }));
    }
    return number;
  }

  RED.nodes.registerType('lane-classify', LaneClassifyNodeConstructor);

  // The editor fills the per-label outputs from the model the deployed node uses.
  registerReadAction<LaneClassifyNode>(RED, 'lane-classify', 'labels', (node) => node.modelLabels());
};

/** Joins status parts with ' · ', leaving out the highest-ranked ones until it fits the editor's 60 characters. */
function fitStatus(parts: [string, number][]): string {
  let kept = parts.filter(([text]) => text !== '');
  const join = () => kept.map(([text]) => text).join(' · ');
  while (join().length > 60 && kept.length > 1) {
    const worst = Math.max(...kept.map(([, rank]) => rank));
    if (worst === 0) break;
    const at = kept.map(([, rank]) => rank).lastIndexOf(worst);
    kept = kept.filter((_, i) => i !== at);
  }
  return join();
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function describe(value: unknown): string {
  const text =
    typeof value === 'string' ? `"${value}"` : Array.isArray(value) ? 'an array' : value !== null && typeof value === 'object' ? 'an object' : String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}
