/**
 * Turns what the other stages report (a classify node's ClassificationResult, a model
 * summary from the model store, training progress from the train node) into the inputs of
 * the event builders. Kept apart from the builders: those define the wire format, these
 * accept the shapes the rest of Lane Vision happens to produce.
 * Everything here throws LaneVisionError EVENT_INVALID naming what is wrong.
 */
import { randomBytes } from 'node:crypto';
import { LaneVisionError } from '../errors.js';
import type { ClassificationResult } from '../classify/types.js';
import type { LabelCode, ModelEventInput, ResultEventInput, TrainingEventInput } from './payloads.js';

function invalid(message: string): never {
  throw new LaneVisionError('EVENT_INVALID', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const METRIC_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

/** The finite numbers of `source` under valid metric names; anything else (nested data, text) is left out. */
function numericEntries(source: unknown, skip: ReadonlySet<string> = new Set()): Record<string, number> {
  const out: Record<string, number> = {};
  if (!isRecord(source)) return out;
  for (const [key, value] of Object.entries(source)) {
    if (!skip.has(key) && METRIC_NAME.test(key) && typeof value === 'number' && Number.isFinite(value)) out[key] = value;
  }
  return out;
}

/**
 * The model version as events carry it: the model store's number n becomes "v<n>" (the
 * form cmd/rollback accepts back); 0 is a backbone's own ImageNet classifier ("v0").
 * Text is kept as it is.
 */
export function formatModelVersion(version: unknown): string {
  if (typeof version === 'number' && Number.isSafeInteger(version) && version >= 0) return `v${version}`;
  if (typeof version === 'string' && version.trim().length > 0 && version.length <= 128) return version;
  return invalid(`The model version must be a whole number or a text of at most 128 characters, got ${JSON.stringify(version) ?? String(version)}.`);
}

/**
 * A training's metrics as a model event carries them: its flat numbers, plus the honest
 * accuracy estimate (`accuracy`, `macroF1`), the suggested `threshold` and whether the
 * estimate is `optimistic` (1: one capture session only), lifted from where retrain keeps them.
 */
function modelMetrics(metrics: unknown): Record<string, number> {
  const out = numericEntries(metrics);
  if (!isRecord(metrics)) return out;
  const holdout = isRecord(metrics.holdout) ? metrics.holdout : undefined;
  for (const key of ['accuracy', 'macroF1'] as const) {
    const value = holdout?.[key];
    if (out[key] === undefined && typeof value === 'number' && Number.isFinite(value)) out[key] = value;
  }
  const threshold = isRecord(metrics.threshold) ? metrics.threshold.threshold : undefined;
  if (out.threshold === undefined && typeof threshold === 'number') out.threshold = threshold;
  const validation = isRecord(metrics.validation) ? metrics.validation : undefined;
  if (out.optimistic === undefined && typeof validation?.optimistic === 'boolean') out.optimistic = validation.optimistic ? 1 : 0;
  return out;
}

/** Result event input from what the classify node puts on `msg.classification`. */
export function resultInputFromClassification(classification: unknown): ResultEventInput {
  if (!isRecord(classification)) {
    invalid('msg.classification must be the classification result of a lane-classify node (an object with topK, accepted, modelVersion, backend).');
  }
  const c = classification as Partial<ClassificationResult>;
  if (!Array.isArray(c.topK) || c.topK.length === 0) invalid('msg.classification.topK must list at least one label.');
  if (typeof c.accepted !== 'boolean') invalid('msg.classification.accepted must be true or false.');
  if (typeof c.backend !== 'string' || c.backend.length === 0) invalid('msg.classification.backend must name the tfjs backend.');
  const input: ResultEventInput = {
    topK: c.topK.map((entry) => ({ label: entry?.label, code: entry?.code, confidence: entry?.confidence }) as ResultEventInput['topK'][number]),
    accepted: c.accepted,
    modelVersion: formatModelVersion(c.modelVersion),
    backend: c.backend,
    timings: numericEntries(c.timings),
  };
  if (typeof c.frameHash === 'string' && c.frameHash.length > 0) input.frameId = c.frameHash;
  if (typeof c.reason === 'string') input.reason = c.reason;
  if (typeof c.similarity === 'number') input.similarity = c.similarity;
  return input;
}

function labelCodesOf(summary: Record<string, unknown>): LabelCode[] {
  const { labels, classes, codes } = summary;
  // The model store's LoadedModel: labels and codes as two lists in head output order.
  if (Array.isArray(labels) && Array.isArray(codes) && labels.every((l) => typeof l === 'string')) {
    if (codes.length !== labels.length) invalid(`The model summary has ${labels.length} labels but ${codes.length} codes.`);
    return labels.map((label, i) => ({ label: label as string, code: codes[i] as number }));
  }
  const list = Array.isArray(classes) ? classes : labels;
  if (!Array.isArray(list) || list.length === 0) {
    invalid('The model summary needs its classes: labels (or classes) as a list of { label, code }.');
  }
  if (list.some((entry) => !isRecord(entry))) {
    invalid('The model summary lists labels without codes; give { label, code } pairs (codes come from the model store).');
  }
  return list.map((entry) => ({ label: (entry as LabelCode).label, code: (entry as LabelCode).code }));
}

/**
 * Model event input from a model summary: a ModelEventInput, the model store's
 * ModelMetadata (`version`, `classes`, `backbone.id`, `head.kind`, `createdAt`) or its
 * LoadedModel (`version`, `labels`, `codes`, `metadata`).
 */
export function modelInputFromSummary(summary: unknown): ModelEventInput {
  if (!isRecord(summary)) invalid('A model message needs msg.payload = the model summary (modelVersion and labels with codes).');
  const metadata = isRecord(summary.metadata) ? summary.metadata : {};
  const merged: Record<string, unknown> = { ...metadata, ...summary };
  if (Array.isArray(summary.labels) && Array.isArray(metadata.classes) && !Array.isArray(summary.codes)) merged.classes = metadata.classes;
  const version = merged.modelVersion ?? merged.version;
  if (version === undefined) invalid('The model summary needs modelVersion (or the model store\'s version).');
  const input: ModelEventInput = {
    modelVersion: formatModelVersion(version),
    labels: labelCodesOf(merged),
    metrics: modelMetrics(merged.metrics),
  };
  const backbone = isRecord(merged.backbone) ? merged.backbone.id : merged.backbone;
  if (typeof backbone === 'string' && backbone.length > 0) input.backbone = backbone;
  const head = isRecord(merged.head) ? merged.head.kind : merged.head;
  if (typeof head === 'string' && head.length > 0) input.head = head;
  const trainedAt = merged.trainedAt ?? merged.createdAt;
  if (typeof trainedAt === 'string' || trainedAt instanceof Date) input.trainedAt = trainedAt;
  return input;
}

const PHASES = ['started', 'progress', 'finished', 'failed'] as const;
/** Fields of a training message that are not metrics. */
const NOT_METRICS = new Set(['phase', 'jobId', 'progress', 'epoch', 'epochs', 'examples', 'labels', 'metrics', 'modelVersion', 'version', 'error', 'code', 'message', 'ts']);

function errorOf(payload: Record<string, unknown>): { code: string; message: string } {
  const raw = payload.error ?? (payload.message !== undefined ? { code: payload.code, message: payload.message } : undefined);
  if (typeof raw === 'string' && raw.length > 0) return { code: 'TRAINING_FAILED', message: raw };
  if (isRecord(raw) || raw instanceof Error) {
    const err = raw as { code?: unknown; message?: unknown };
    const message = typeof err.message === 'string' && err.message.length > 0 ? err.message : 'Training failed.';
    const code = typeof err.code === 'string' && err.code.length > 0 ? err.code : 'TRAINING_FAILED';
    return { code, message };
  }
  return invalid('A failed training message needs error: { code, message } (or an error text).');
}

function countOf(field: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || (value as number) < 0) invalid(`training ${field} must be a whole number >= 0.`);
  return value as number;
}

/**
 * Maps the train node's messages (`{ phase, ... }`) to training event inputs and gives the
 * events of one run a common jobId when the train node sends none: a new one on `started`,
 * kept until `finished` or `failed`.
 */
export class TrainingEventMapper {
  private currentJobId: string | undefined;

  map(payload: unknown): TrainingEventInput {
    if (!isRecord(payload)) invalid('A training message needs msg.payload = { phase: "started" | "progress" | "finished" | "failed", ... }.');
    const phase = payload.phase;
    if (!(PHASES as readonly unknown[]).includes(phase)) {
      invalid(`training phase must be one of ${PHASES.join(', ')}, got ${JSON.stringify(phase) ?? String(phase)}.`);
    }
    const jobId = this.jobIdFor(phase as TrainingEventInput['phase'], payload.jobId);
    const metrics = { ...numericEntries(payload, NOT_METRICS), ...numericEntries(payload.metrics) };
    const withMetrics = Object.keys(metrics).length > 0 ? { metrics } : {};
    switch (phase as TrainingEventInput['phase']) {
      case 'started': {
        const input: TrainingEventInput = { phase: 'started', jobId };
        const examples = countOf('examples', payload.examples);
        if (examples !== undefined) input.examples = examples;
        if (Array.isArray(payload.labels)) input.labels = payload.labels as string[];
        return input;
      }
      case 'progress': {
        const epoch = countOf('epoch', payload.epoch);
        const epochs = countOf('epochs', payload.epochs);
        let progress = payload.progress;
        if (progress === undefined && epoch !== undefined && epochs) progress = Math.min(1, epoch / epochs);
        if (progress === undefined) invalid('A training progress message needs progress (0..1) or epoch and epochs.');
        const input: TrainingEventInput = { phase: 'progress', jobId, progress: progress as number, ...withMetrics };
        if (epoch !== undefined) input.epoch = epoch;
        if (epochs !== undefined) input.epochs = epochs;
        return input;
      }
      case 'finished': {
        const version = payload.modelVersion ?? payload.version;
        if (version === undefined) invalid('A finished training message needs modelVersion (the new model\'s version).');
        return { phase: 'finished', jobId, modelVersion: formatModelVersion(version), ...withMetrics };
      }
      case 'failed':
        return { phase: 'failed', jobId, error: errorOf(payload) };
    }
  }

  private jobIdFor(phase: TrainingEventInput['phase'], given: unknown): string {
    let jobId: string;
    if (typeof given === 'string' && given.length > 0) jobId = given;
    else if (typeof given === 'number' && Number.isFinite(given)) jobId = String(given);
    else if (given !== undefined) invalid('training jobId must be a text or a number.');
    else jobId = phase === 'started' || !this.currentJobId ? newJobId() : this.currentJobId;
    this.currentJobId = phase === 'finished' || phase === 'failed' ? undefined : jobId;
    return jobId;
  }
}

function newJobId(): string {
  return `train-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(2).toString('hex')}`;
}
