/**
 * lane-train: retrains the lane's classifier head on its dataset (src/retrain) when a
 * message arrives or the editor button is pressed, one training at a time. Output 1 gets
 * the new model version, output 2 the progress in the shape lane-events publishes.
 */
import { randomUUID } from 'node:crypto';
import type { NodeAPI, NodeMessage, NodeMessageInFlow } from 'node-red';
import { LaneVisionError, isLaneVisionError } from '../../src/errors.js';
import type { Backbone } from '../../src/engine/index.js';
import type { RetrainProgress, RetrainResult } from '../../src/retrain/index.js';
import type { ModelStore } from '../../src/model-store/index.js';
import type { PipelineReport } from '../../src/pipeline/index.js';
import { registerWriteAction } from '../shared/admin-routes.js';
import type { BackboneConfigNode, DatasetConfigNode } from '../shared/config-types.js';
import { errorText, showStatus } from '../shared/status.js';
import { describeSource, isReadSource, readEnvSetting, readSetting, type ReadSource } from '../shared/typed-setting.js';
import { TYPED_FIELDS, trainSettingsFrom, withOverrides, withSourceNamed, type LaneTrainDef, type TrainSettings, type TypedField } from './settings.js';
import type { LaneTrainNode } from './types.js';

type Send = (msg: (NodeMessage | null)[]) => void;
type Done = (err?: Error) => void;

/** Share of the progress bar each phase fills: embedding is usually the long part. */
const FEATURES_SHARE = 0.4;
const TRAINING_SHARE = 0.55;

function round(value: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** The flat numbers the lane-events training event carries as metrics. */
function summaryMetrics(result: RetrainResult): Record<string, number> {
  const m = result.metrics;
  const out: Record<string, number> = {
    accuracy: round(m.holdout.accuracy),
    macroF1: round(m.holdout.macroF1),
    trainCount: m.trainCount,
    holdoutCount: m.holdoutCount,
    totalMs: Math.round(m.timings.totalMs),
    optimistic: m.validation.optimistic ? 1 : 0,
  };
  if (m.threshold.threshold !== null) out.threshold = round(m.threshold.threshold);
  return out;
}

/** The active version's pipeline, which an auto retrain reuses while the data has not changed much. */
async function previousPipeline(store: ModelStore): Promise<PipelineReport | undefined> {
  try {
    return (await store.loadModel('active')).metadata.pipeline;
  } catch {
    return undefined; // no active version yet (or an unreadable one): search afresh
  }
}

export = function (RED: NodeAPI) {
  function LaneTrainNodeConstructor(this: LaneTrainNode, config: LaneTrainDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const datasetNode = RED.nodes.getNode(config.dataset) as DatasetConfigNode | null;
    const backboneNode = RED.nodes.getNode(config.backbone) as BackboneConfigNode | null;
    const validationNode = config.validationDataset ? (RED.nodes.getNode(config.validationDataset) as DatasetConfigNode | null) : undefined;
    let running: { controller: AbortController; finished: Promise<void> } | undefined;
    let starting = false;
    let closing = false;

    let setupProblem: Error | undefined;
    let settings: TrainSettings | undefined;
    if (!datasetNode) setupProblem = new LaneVisionError('TRAIN_NO_DATASET', RED._('lane-train.errors.no-dataset'));
    else if (validationNode === null) setupProblem = new LaneVisionError('TRAIN_NO_DATASET', RED._('lane-train.errors.no-validation'));
    else if (!backboneNode) setupProblem = new LaneVisionError('TRAIN_NO_BACKBONE', RED._('lane-train.errors.no-backbone'));
    // Typed settings read from msg / flow / global at each training; env ones once, here.
    const readEachTime: { field: TypedField; type: Exclude<ReadSource, 'env'>; key: string }[] = [];
    const fromEnv: { field: TypedField; source: string }[] = [];
    const fixed: Partial<LaneTrainDef> = { ...config };
    if (!setupProblem) {
      try {
        for (const field of Object.keys(TYPED_FIELDS) as TypedField[]) {
          const literal = TYPED_FIELDS[field];
          const type = config[`${field}Type`] || literal;
          if (type === literal) continue;
          if (!isReadSource(type)) {
            throw new LaneVisionError('TRAIN_SETTINGS_INVALID', RED._('lane-train.errors.bad-type', { field, type: String(type), literal }));
          }
          const key = String(config[field] ?? '').trim();
          if (!key) throw new LaneVisionError('TRAIN_SETTINGS_INVALID', RED._('lane-train.errors.no-key', { field, type }));
          if (type === 'env') {
            fixed[field] = readEnvSetting(RED, node, key) as string;
            fromEnv.push({ field, source: describeSource(type, key) });
          } else {
            fixed[field] = ''; // the default until a training reads it
            readEachTime.push({ field, type, key });
          }
        }
        settings = trainSettingsFrom(fixed);
      } catch (err) {
        // An error about a field read from env names the variable.
        setupProblem = fromEnv.reduce((e, { field, source }) => withSourceNamed(e, field, source), err) as Error;
      }
    }

    /** This training's settings: the node's, then the typed ones read now, then the message's overrides. */
    async function chooseSettings(msg: NodeMessageInFlow): Promise<TrainSettings> {
      const read: Record<string, unknown> = {};
      for (const { field, type, key } of readEachTime) {
        const value = await readSetting(RED, node, key, type, msg);
        if (value === undefined || value === null) continue; // not set: the field's default
        try {
          withOverrides(settings!, { [field]: value });
        } catch (err) {
          throw withSourceNamed(err, field, describeSource(type, key));
        }
        read[field] = value;
      }
      return withOverrides(withOverrides(settings!, read), msg.payload);
    }

    // Loaded at deploy, so the first training does not wait for it (and its status shows).
    let backboneReady: Promise<Backbone> | undefined;
    if (setupProblem) {
      showStatus(node, 'error', errorText(setupProblem));
      node.error(setupProblem.message);
    } else {
      backboneReady = backboneNode!.acquire(node);
      backboneReady.catch(() => undefined); // shown on the status by the backbone node
    }

    async function train(msg: NodeMessageInFlow, chosen: TrainSettings, signal: AbortSignal, send: Send): Promise<void> {
      const jobId = randomUUID();
      const progress = (payload: Record<string, unknown>) => send([null, { topic: 'training', payload: { jobId, ...payload } }]);
      try {
        const dataset = await datasetNode!.dataset();
        const store = await datasetNode!.models();
        progress({ phase: 'started', examples: dataset.size, labels: dataset.labels(), strategy: chosen.strategy, headKind: chosen.head.kind });
        showStatus(node, 'busy', RED._('lane-train.status.starting'));
        const backbone = await backboneReady!;
        signal.throwIfAborted();
        const onProgress = (p: RetrainProgress) => {
          if (p.phase === 'features') {
            showStatus(node, 'busy', `${RED._('lane-train.status.features')} ${p.done}/${p.total}`);
            progress({ phase: 'progress', stage: 'features', progress: round(p.total ? (FEATURES_SHARE * p.done) / p.total : 0), features: { done: p.done, total: p.total } });
          } else if (p.phase === 'search') {
            showStatus(node, 'busy', `${RED._('lane-train.status.search')} ${p.done}: ${p.name}`);
            progress({ phase: 'progress', stage: 'search', progress: FEATURES_SHARE, candidates: p.done, candidate: p.name });
          } else if (p.phase === 'training') {
            showStatus(node, 'busy', `${RED._('lane-train.status.epoch')} ${p.epoch}/${p.epochs} · ${RED._('lane-train.status.loss')} ${p.loss.toFixed(3)}`);
            progress({
              phase: 'progress',
              stage: 'training',
              progress: round(FEATURES_SHARE + (TRAINING_SHARE * p.epoch) / p.epochs),
              epoch: p.epoch,
              epochs: p.epochs,
              loss: round(p.loss),
              accuracy: round(p.accuracy),
            });
          } else {
            showStatus(node, 'busy', RED._('lane-train.status.saving'));
            progress({ phase: 'progress', stage: 'saving', progress: FEATURES_SHARE + TRAINING_SHARE });
          }
        };
        // Through the backbone node: in its training worker, so the lane keeps classifying.
        const result = await backboneNode!.retrain({
          dataset,
          backbone,
          store,
          strategy: chosen.strategy,
          budgetSeconds: chosen.budgetSeconds,
          testViews: chosen.testViews,
          folds: chosen.folds,
          head: chosen.head,
          rejectLabels: chosen.rejectLabels,
          previous: await previousPipeline(store),
          validation: validationNode ? await validationNode.dataset() : undefined,
          seed: chosen.seed,
          targetPrecision: chosen.targetPrecision,
          activate: chosen.activate,
          fit: backboneNode!.fit,
          signal,
          onProgress,
        });
        const metrics = summaryMetrics(result);
        const estimate = result.metrics.validation;
        showStatus(
          node,
          'ready',
          `v${result.version} · ${RED._('lane-train.status.acc')} ${metrics.accuracy.toFixed(2)}${estimate.optimistic ? ` (${RED._('lane-train.status.one-session')})` : ''} · ${(result.metrics.timings.totalMs / 1000).toFixed(1)} s`,
        );
        const out = msg as NodeMessageInFlow & Record<string, unknown>;
        // topic 'model': wired to lane-events, the new version is published as the lane's model.
        out.topic = 'model';
        out.payload = {
          version: result.version,
          activated: result.activated,
          labels: result.labels,
          metrics: result.metrics,
          datasetFingerprint: result.datasetFingerprint,
          backbone: backbone.id,
          head: result.metrics.headKind,
          pipeline: result.metrics.pipeline.candidates.find((c) => c.chosen)?.name,
          advice: result.metrics.advice,
        };
        send([out, { topic: 'training', payload: { jobId, phase: 'finished', version: result.version, activated: result.activated, metrics } }]);
      } catch (err) {
        const code = isLaneVisionError(err) ? err.code : 'TRAINING_FAILED';
        progress({ phase: 'failed', error: { code, message: errorText(err) } });
        if (!closing) showStatus(node, 'error', errorText(err));
        throw err;
      }
    }

    node.on('input', (msg: NodeMessageInFlow, send: Send, done: Done) => {
      starting = false;
      if (setupProblem) return done(setupProblem);
      if (running) return done(new LaneVisionError('TRAINING_RUNNING', RED._('lane-train.errors.running')));
      const controller = new AbortController();
      // Settings are read before the training starts; a bad one fails this message only.
      const finished = chooseSettings(msg).then((chosen) => train(msg, chosen, controller.signal, send)).then(
        () => done(),
        (err: unknown) => {
          // Cancelled because the flow is stopping: nothing for a catch node to do.
          if (closing && controller.signal.aborted) {
            node.log(RED._('lane-train.log.cancelled'));
            done();
          } else {
            done(err instanceof Error ? err : new Error(String(err)));
          }
        },
      );
      running = { controller, finished };
      finished.finally(() => {
        if (running?.finished === finished) running = undefined;
      });
    });

    node.trainNow = (overrides: unknown) => {
      if (setupProblem) throw setupProblem;
      if (running || starting) throw new LaneVisionError('TRAINING_RUNNING', RED._('lane-train.errors.running'));
      starting = true; // the message reaches the input handler a moment later
      node.receive({ topic: 'train', payload: overrides ?? {} });
      return { started: true };
    };

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      const current = running;
      current?.controller.abort(new LaneVisionError('TRAINING_CANCELLED', RED._('lane-train.errors.cancelled')));
      // Wait for the training to stop before the backbone it uses may be released.
      Promise.resolve(current?.finished)
        .catch(() => undefined)
        .then(() => {
          backboneNode?.release(node);
          done();
        });
    });
  }

  RED.nodes.registerType('lane-train', LaneTrainNodeConstructor);

  // POST /lane-vision/lane-train/:id/train: the editor's button.
  registerWriteAction<LaneTrainNode>(RED, 'lane-train', 'train', (node, body) => node.trainNow(body));
};
