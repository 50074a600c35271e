/**
 * Typed builders of the JSON events a station publishes, and their JSON Schemas
 * (documented in docs/mqtt-events.md). Builders check their input and throw
 * LaneVisionError EVENT_INVALID, so a malformed event never reaches the sorter.
 */
import { DECISION_REASONS, type DecisionReason } from '../open-set/decision.js';
import { randomUUID } from 'node:crypto';
import { LaneVisionError } from '../errors.js';

export const EVENT_SCHEMA_VERSION = 1;
// The decision for a frame that is not accepted (send to manual inspection) is defined once, by classify.
import { UNKNOWN_CODE, UNKNOWN_LABEL } from '../classify/types.js';
import type { LabelCode } from '../model-store/types.js';
export { UNKNOWN_CODE, UNKNOWN_LABEL, type LabelCode };
export const MAX_LABEL_CHARS = 128;

/** Who is publishing: the values of the topic template. */
export interface LaneEventContext {
  line: string;
  station: string;
}

/** Fields every event carries. */
export interface LaneEventEnvelope {
  schemaVersion: typeof EVENT_SCHEMA_VERSION;
  /** Unique per event (crypto.randomUUID); QoS 1 may deliver twice, dedupe on this. */
  eventId: string;
  /** ISO 8601 UTC time the event was built. */
  ts: string;
  line: string;
  station: string;
}

export interface ScoredLabel {
  label: string;
  code: number;
  confidence: number;
}

export interface LaneResultEvent extends LaneEventEnvelope {
  /** The decision: the best label when accepted, else UNKNOWN_LABEL. */
  label: string;
  /** Stable integer of the decision for a PLC; UNKNOWN_CODE when not accepted. */
  code: number;
  /** Confidence of the best label (also when not accepted). */
  confidence: number;
  /** false = manual inspection; `reason` says why. */
  accepted: boolean;
  /** accepted, low-confidence, unknown-product or reject-class (see src/open-set/decision.ts). */
  reason?: DecisionReason;
  /** Cosine similarity to the nearest training frame, for models with a novelty index. */
  similarity?: number;
  /** Best labels, highest confidence first. */
  topK: ScoredLabel[];
  modelVersion: string;
  backend: string;
  /** Milliseconds per stage, e.g. decodeMs, inferenceMs, totalMs. */
  timings: Record<string, number>;
  frameId?: string;
}

export interface ResultEventInput {
  /** Scores of the best labels (any order; sorted here), at least one. */
  topK: readonly ScoredLabel[];
  accepted: boolean;
  reason?: DecisionReason;
  similarity?: number;
  modelVersion: string;
  backend: string;
  timings?: Readonly<Record<string, number>>;
  frameId?: string;
  ts?: Date;
}

export type LaneStatus = 'online' | 'offline';
/** Why the state was published: birth on (re)connect, an update, a clean close, or the broker's last will. */
export type LaneStateReason = 'connected' | 'update' | 'closed' | 'connection-lost';

export interface OutboxCounters {
  /** Messages accepted for publishing since start. */
  published: number;
  /** Acknowledged by the broker (QoS >= 1) or written (QoS 0). */
  delivered: number;
  /** Held while disconnected, waiting for the connection. */
  queued: number;
  /** Dropped because the offline queue was full (oldest first) or the connection was closed. */
  dropped: number;
  /** Handed to the client but not confirmed: refused by the client, or still unacknowledged at close. */
  failed: number;
}

export interface FrameCounters {
  queued: number;
  dropped: number;
  processed: number;
}

export interface LaneStateEvent extends LaneEventEnvelope {
  status: LaneStatus;
  reason: LaneStateReason;
  clientId: string;
  backend: string | null;
  modelVersion: string | null;
  outbox: OutboxCounters;
  frames?: FrameCounters;
}

export interface StateEventInput {
  status: LaneStatus;
  reason: LaneStateReason;
  clientId: string;
  backend?: string | null;
  modelVersion?: string | null;
  outbox: OutboxCounters;
  frames?: FrameCounters;
  ts?: Date;
}

export interface LaneModelEvent extends LaneEventEnvelope {
  modelVersion: string;
  labels: LabelCode[];
  /** e.g. valAccuracy, trainAccuracy, examples. */
  metrics: Record<string, number>;
  backbone?: string;
  head?: string;
  trainedAt?: string;
}

export interface ModelEventInput {
  modelVersion: string;
  labels: readonly LabelCode[];
  metrics?: Readonly<Record<string, number>>;
  backbone?: string;
  head?: string;
  trainedAt?: Date | string;
  ts?: Date;
}

export type TrainingPhase = 'started' | 'progress' | 'finished' | 'failed';

export type TrainingEventInput =
  | { phase: 'started'; jobId: string; examples?: number; labels?: readonly string[]; ts?: Date }
  | { phase: 'progress'; jobId: string; progress: number; epoch?: number; epochs?: number; metrics?: Readonly<Record<string, number>>; ts?: Date }
  | { phase: 'finished'; jobId: string; modelVersion: string; metrics?: Readonly<Record<string, number>>; ts?: Date }
  | { phase: 'failed'; jobId: string; error: { code: string; message: string }; ts?: Date };

export interface LaneTrainingEvent extends LaneEventEnvelope {
  phase: TrainingPhase;
  jobId: string;
  /** 0..1; absent on `failed`. */
  progress?: number;
  epoch?: number;
  epochs?: number;
  examples?: number;
  labels?: string[];
  metrics?: Record<string, number>;
  modelVersion?: string;
  error?: { code: string; message: string };
}

export type ErrorSource = 'command' | 'classify' | 'training' | 'model' | 'camera' | 'connection' | 'internal';
export const ERROR_SOURCES: readonly ErrorSource[] = ['command', 'classify', 'training', 'model', 'camera', 'connection', 'internal'];

export interface LaneErrorEvent extends LaneEventEnvelope {
  /** Stable UPPER_SNAKE code, e.g. COMMAND_INVALID_JSON. */
  code: string;
  message: string;
  source: ErrorSource;
  /** The command that failed, when source is `command`. */
  command?: string;
  /** Echo of the command's requestId, so the sender can match the answer. */
  requestId?: string;
  topic?: string;
}

export interface ErrorEventInput {
  code: string;
  message: string;
  source: ErrorSource;
  command?: string;
  requestId?: string;
  topic?: string;
  ts?: Date;
}

// ---------------------------------------------------------------------------
// Input checks (private): each throws EVENT_INVALID naming the field.

function invalid(what: string, field: string, problem: string): never {
  throw new LaneVisionError('EVENT_INVALID', `Cannot build the ${what} event: ${field} ${problem}.`);
}

function checkText(what: string, field: string, value: unknown, maxChars = 256): string {
  if (typeof value !== 'string' || value.length === 0) invalid(what, field, 'must be a non-empty string');
  if (value.length > maxChars) invalid(what, field, `must be at most ${maxChars} characters`);
  return value;
}

function checkUnit(what: string, field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) invalid(what, field, 'must be a number from 0 to 1');
  return value;
}

function checkCount(what: string, field: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) invalid(what, field, 'must be a non-negative integer');
  return value as number;
}

function checkNumberMap(what: string, field: string, value: unknown, nonNegative: boolean): Record<string, number> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(what, field, 'must be an object of numbers');
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(value)) {
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(key)) invalid(what, `${field}.${key}`, 'is not a valid name (letters, digits, _)');
    if (typeof n !== 'number' || !Number.isFinite(n) || (nonNegative && n < 0)) {
      invalid(what, `${field}.${key}`, nonNegative ? 'must be a finite number >= 0' : 'must be a finite number');
    }
    out[key] = n;
  }
  return out;
}

function checkLabelCode(what: string, field: string, value: unknown): LabelCode {
  const v = value as Partial<LabelCode> | null;
  if (v === null || typeof v !== 'object') invalid(what, field, 'must be an object { label, code }');
  const label = checkText(what, `${field}.label`, v.label, MAX_LABEL_CHARS);
  if (!Number.isSafeInteger(v.code) || (v.code as number) <= UNKNOWN_CODE) {
    invalid(what, `${field}.code`, `must be an integer >= ${UNKNOWN_CODE + 1} (${UNKNOWN_CODE} is reserved for "${UNKNOWN_LABEL}")`);
  }
  if (label === UNKNOWN_LABEL) invalid(what, `${field}.label`, `must not be "${UNKNOWN_LABEL}", reserved for "not accepted"`);
  return { label, code: v.code as number };
}

function envelope(context: LaneEventContext, ts: Date | undefined, what: string): LaneEventEnvelope {
  const when = ts ?? new Date();
  if (!(when instanceof Date) || Number.isNaN(when.getTime())) invalid(what, 'ts', 'must be a valid Date');
  return {
    schemaVersion: EVENT_SCHEMA_VERSION,
    eventId: randomUUID(),
    ts: when.toISOString(),
    line: checkText(what, 'line', context?.line),
    station: checkText(what, 'station', context?.station),
  };
}

// ---------------------------------------------------------------------------
// Builders

export function buildResultEvent(context: LaneEventContext, input: ResultEventInput): LaneResultEvent {
  const what = 'result';
  if (!Array.isArray(input?.topK) || input.topK.length === 0) invalid(what, 'topK', 'must list at least one label');
  const topK = input.topK.map((entry, i) => ({
    ...checkLabelCode(what, `topK[${i}]`, entry),
    confidence: checkUnit(what, `topK[${i}].confidence`, entry.confidence),
  }));
  topK.sort((a, b) => b.confidence - a.confidence);
  if (typeof input.accepted !== 'boolean') invalid(what, 'accepted', 'must be true or false');
  const best = topK[0];
  const event: LaneResultEvent = {
    ...envelope(context, input.ts, what),
    label: input.accepted ? best.label : UNKNOWN_LABEL,
    code: input.accepted ? best.code : UNKNOWN_CODE,
    confidence: best.confidence,
    accepted: input.accepted,
    topK,
    modelVersion: checkText(what, 'modelVersion', input.modelVersion),
    backend: checkText(what, 'backend', input.backend),
    timings: checkNumberMap(what, 'timings', input.timings, true),
  };
  if (input.reason !== undefined) {
    if (!DECISION_REASONS.includes(input.reason)) invalid(what, 'reason', `must be one of ${DECISION_REASONS.join(', ')}`);
    if ((input.reason === 'accepted') !== input.accepted) invalid(what, 'reason', `"${input.reason}" contradicts accepted ${input.accepted}`);
    event.reason = input.reason;
  }
  if (input.similarity !== undefined) {
    if (typeof input.similarity !== 'number' || !Number.isFinite(input.similarity) || input.similarity < -1.01 || input.similarity > 1.01) {
      invalid(what, 'similarity', 'must be a number from -1 to 1');
    }
    event.similarity = input.similarity;
  }
  if (input.frameId !== undefined) event.frameId = checkText(what, 'frameId', input.frameId);
  return event;
}

export function buildStateEvent(context: LaneEventContext, input: StateEventInput): LaneStateEvent {
  const what = 'state';
  if (input?.status !== 'online' && input?.status !== 'offline') invalid(what, 'status', 'must be "online" or "offline"');
  const reasons: LaneStateReason[] = ['connected', 'update', 'closed', 'connection-lost'];
  if (!reasons.includes(input.reason)) invalid(what, 'reason', `must be one of ${reasons.join(', ')}`);
  const optionalText = (field: string, v: unknown) => (v === undefined || v === null ? null : checkText(what, field, v));
  const outbox = input.outbox;
  if (outbox === null || typeof outbox !== 'object') invalid(what, 'outbox', 'must be an object of counters');
  const event: LaneStateEvent = {
    ...envelope(context, input.ts, what),
    status: input.status,
    reason: input.reason,
    clientId: checkText(what, 'clientId', input.clientId, 65535),
    backend: optionalText('backend', input.backend),
    modelVersion: optionalText('modelVersion', input.modelVersion),
    outbox: {
      published: checkCount(what, 'outbox.published', outbox.published),
      delivered: checkCount(what, 'outbox.delivered', outbox.delivered),
      queued: checkCount(what, 'outbox.queued', outbox.queued),
      dropped: checkCount(what, 'outbox.dropped', outbox.dropped),
      failed: checkCount(what, 'outbox.failed', outbox.failed),
    },
  };
  if (input.frames !== undefined) {
    const f = input.frames;
    if (f === null || typeof f !== 'object') invalid(what, 'frames', 'must be an object of counters');
    event.frames = {
      queued: checkCount(what, 'frames.queued', f.queued),
      dropped: checkCount(what, 'frames.dropped', f.dropped),
      processed: checkCount(what, 'frames.processed', f.processed),
    };
  }
  return event;
}

export function buildModelEvent(context: LaneEventContext, input: ModelEventInput): LaneModelEvent {
  const what = 'model';
  if (!Array.isArray(input?.labels) || input.labels.length === 0) invalid(what, 'labels', 'must list at least one label');
  const labels = input.labels.map((entry, i) => checkLabelCode(what, `labels[${i}]`, entry));
  const seenLabels = new Set<string>();
  const seenCodes = new Set<number>();
  for (const { label, code } of labels) {
    if (seenLabels.has(label)) invalid(what, 'labels', `has "${label}" twice`);
    if (seenCodes.has(code)) invalid(what, 'labels', `has code ${code} twice`);
    seenLabels.add(label);
    seenCodes.add(code);
  }
  const event: LaneModelEvent = {
    ...envelope(context, input.ts, what),
    modelVersion: checkText(what, 'modelVersion', input.modelVersion),
    labels,
    metrics: checkNumberMap(what, 'metrics', input.metrics, false),
  };
  if (input.backbone !== undefined) event.backbone = checkText(what, 'backbone', input.backbone);
  if (input.head !== undefined) event.head = checkText(what, 'head', input.head);
  if (input.trainedAt !== undefined) {
    const at = new Date(input.trainedAt);
    if (Number.isNaN(at.getTime())) invalid(what, 'trainedAt', 'must be a date');
    event.trainedAt = at.toISOString();
  }
  return event;
}

export function buildTrainingEvent(context: LaneEventContext, input: TrainingEventInput): LaneTrainingEvent {
  const what = 'training';
  const base = { ...envelope(context, input?.ts, what), phase: input.phase, jobId: checkText(what, 'jobId', input.jobId) };
  switch (input.phase) {
    case 'started': {
      const event: LaneTrainingEvent = { ...base, progress: 0 };
      if (input.examples !== undefined) event.examples = checkCount(what, 'examples', input.examples);
      if (input.labels !== undefined) {
        if (!Array.isArray(input.labels)) invalid(what, 'labels', 'must be an array of strings');
        event.labels = input.labels.map((l, i) => checkText(what, `labels[${i}]`, l, MAX_LABEL_CHARS));
      }
      return event;
    }
    case 'progress': {
      const event: LaneTrainingEvent = { ...base, progress: checkUnit(what, 'progress', input.progress) };
      if (input.epoch !== undefined) event.epoch = checkCount(what, 'epoch', input.epoch);
      if (input.epochs !== undefined) event.epochs = checkCount(what, 'epochs', input.epochs);
      if (input.metrics !== undefined) event.metrics = checkNumberMap(what, 'metrics', input.metrics, false);
      return event;
    }
    case 'finished': {
      const event: LaneTrainingEvent = { ...base, progress: 1, modelVersion: checkText(what, 'modelVersion', input.modelVersion) };
      if (input.metrics !== undefined) event.metrics = checkNumberMap(what, 'metrics', input.metrics, false);
      return event;
    }
    case 'failed':
      return {
        ...base,
        error: { code: checkText(what, 'error.code', input.error?.code), message: checkText(what, 'error.message', input.error?.message, 4096) },
      };
    default:
      return invalid(what, 'phase', 'must be started, progress, finished or failed');
  }
}

export function buildErrorEvent(context: LaneEventContext, input: ErrorEventInput): LaneErrorEvent {
  const what = 'error';
  if (!ERROR_SOURCES.includes(input?.source)) invalid(what, 'source', `must be one of ${ERROR_SOURCES.join(', ')}`);
  const event: LaneErrorEvent = {
    ...envelope(context, input.ts, what),
    code: checkText(what, 'code', input.code),
    message: checkText(what, 'message', input.message, 4096),
    source: input.source,
  };
  // Echoed fields come from untrusted commands: cap them instead of refusing the answer.
  if (input.command !== undefined) event.command = String(input.command).slice(0, 64);
  if (input.requestId !== undefined) event.requestId = String(input.requestId).slice(0, 128);
  if (input.topic !== undefined) event.topic = String(input.topic).slice(0, 1024);
  return event;
}

/** Turns anything thrown into an error event (LaneVisionError keeps its code). */
export function errorEventFrom(context: LaneEventContext, err: unknown, source: ErrorSource, extra: Partial<Pick<ErrorEventInput, 'command' | 'requestId' | 'topic'>> = {}): LaneErrorEvent {
  const code = err instanceof LaneVisionError ? err.code : 'INTERNAL_ERROR';
  const message = (err instanceof Error ? err.message : String(err)) || 'Unknown error';
  return buildErrorEvent(context, { code, message: message.slice(0, 4096), source, ...extra });
}

// ---------------------------------------------------------------------------
// JSON Schemas (draft 2020-12) of the events above; docs/mqtt-events.md shows them.

const envelopeProperties = {
  schemaVersion: { const: EVENT_SCHEMA_VERSION },
  eventId: { type: 'string', format: 'uuid' },
  ts: { type: 'string', format: 'date-time' },
  line: { type: 'string', minLength: 1 },
  station: { type: 'string', minLength: 1 },
} as const;
const envelopeRequired = ['schemaVersion', 'eventId', 'ts', 'line', 'station'] as const;
const unit = { type: 'number', minimum: 0, maximum: 1 } as const;
const count = { type: 'integer', minimum: 0 } as const;
const text = { type: 'string', minLength: 1 } as const;
const numberMap = { type: 'object', additionalProperties: { type: 'number' } } as const;
const classCode = { type: 'integer', minimum: UNKNOWN_CODE + 1 } as const;
const scoredLabel = {
  type: 'object',
  required: ['label', 'code', 'confidence'],
  additionalProperties: false,
  properties: { label: text, code: classCode, confidence: unit },
} as const;

export const resultEventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:event:result:1',
  title: 'Lane Vision result event',
  type: 'object',
  required: [...envelopeRequired, 'label', 'code', 'confidence', 'accepted', 'topK', 'modelVersion', 'backend', 'timings'],
  additionalProperties: false,
  properties: {
    ...envelopeProperties,
    label: text,
    code: count,
    confidence: unit,
    accepted: { type: 'boolean' },
    reason: { enum: DECISION_REASONS },
    similarity: { type: 'number', minimum: -1.01, maximum: 1.01 },
    topK: { type: 'array', minItems: 1, items: scoredLabel },
    modelVersion: text,
    backend: text,
    timings: { type: 'object', additionalProperties: { type: 'number', minimum: 0 } },
    frameId: text,
  },
} as const;

export const stateEventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:event:state:1',
  title: 'Lane Vision state event (retained)',
  type: 'object',
  required: [...envelopeRequired, 'status', 'reason', 'clientId', 'backend', 'modelVersion', 'outbox'],
  additionalProperties: false,
  properties: {
    ...envelopeProperties,
    status: { enum: ['online', 'offline'] },
    reason: { enum: ['connected', 'update', 'closed', 'connection-lost'] },
    clientId: text,
    backend: { type: ['string', 'null'] },
    modelVersion: { type: ['string', 'null'] },
    outbox: {
      type: 'object',
      required: ['published', 'delivered', 'queued', 'dropped', 'failed'],
      additionalProperties: false,
      properties: { published: count, delivered: count, queued: count, dropped: count, failed: count },
    },
    frames: {
      type: 'object',
      required: ['queued', 'dropped', 'processed'],
      additionalProperties: false,
      properties: { queued: count, dropped: count, processed: count },
    },
  },
} as const;

export const modelEventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:event:model:1',
  title: 'Lane Vision current model (retained)',
  type: 'object',
  required: [...envelopeRequired, 'modelVersion', 'labels', 'metrics'],
  additionalProperties: false,
  properties: {
    ...envelopeProperties,
    modelVersion: text,
    labels: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['label', 'code'],
        additionalProperties: false,
        properties: { label: text, code: classCode },
      },
    },
    metrics: numberMap,
    backbone: text,
    head: text,
    trainedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const trainingEventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:event:training:1',
  title: 'Lane Vision training event',
  type: 'object',
  required: [...envelopeRequired, 'phase', 'jobId'],
  additionalProperties: false,
  properties: {
    ...envelopeProperties,
    phase: { enum: ['started', 'progress', 'finished', 'failed'] },
    jobId: text,
    progress: unit,
    epoch: count,
    epochs: count,
    examples: count,
    labels: { type: 'array', items: text },
    metrics: numberMap,
    modelVersion: text,
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: { code: text, message: text },
    },
  },
} as const;

export const errorEventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:event:error:1',
  title: 'Lane Vision error event',
  type: 'object',
  required: [...envelopeRequired, 'code', 'message', 'source'],
  additionalProperties: false,
  properties: {
    ...envelopeProperties,
    code: text,
    message: text,
    source: { enum: [...ERROR_SOURCES] },
    command: { type: 'string' },
    requestId: { type: 'string' },
    topic: { type: 'string' },
  },
} as const;

/** A frame queued for review (see src/review): what an operator labelling it needs to know, without the image. */
export interface LaneReviewEvent extends LaneEventEnvelope {
  reviewId: string;
  reason: 'low-confidence' | 'unknown-product' | 'reject-class' | 'small-margin';
  /** The model's best label (also when not accepted) and its confidence. */
  label: string;
  confidence: number;
  margin: number;
  similarity?: number;
  modelVersion: string;
  frameId: string;
}

export interface ReviewEventInput {
  id: string;
  reason: LaneReviewEvent['reason'];
  label: string;
  confidence: number;
  margin: number;
  similarity?: number;
  modelVersion: number | string;
  frameHash: string;
  ts?: Date;
}

const REVIEW_REASONS = ['low-confidence', 'unknown-product', 'reject-class', 'small-margin'] as const;

export function buildReviewEvent(context: LaneEventContext, input: ReviewEventInput): LaneReviewEvent {
  const what = 'review';
  if (!REVIEW_REASONS.includes(input?.reason)) invalid(what, 'reason', `must be one of ${REVIEW_REASONS.join(', ')}`);
  const event: LaneReviewEvent = {
    ...envelope(context, input.ts, what),
    reviewId: checkText(what, 'reviewId', input.id),
    reason: input.reason,
    label: checkText(what, 'label', input.label),
    confidence: checkUnit(what, 'confidence', input.confidence),
    margin: checkUnit(what, 'margin', input.margin),
    modelVersion: checkText(what, 'modelVersion', typeof input.modelVersion === 'number' ? `v${input.modelVersion}` : input.modelVersion),
    frameId: checkText(what, 'frameId', input.frameHash),
  };
  if (input.similarity !== undefined) event.similarity = input.similarity;
  return event;
}

export const reviewEventSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:event:review:1',
  title: 'Lane Vision frame queued for review',
  type: 'object',
  required: [...envelopeRequired, 'reviewId', 'reason', 'label', 'confidence', 'margin', 'modelVersion', 'frameId'],
  additionalProperties: false,
  properties: {
    ...envelopeProperties,
    reviewId: text,
    reason: { enum: REVIEW_REASONS },
    label: text,
    confidence: unit,
    margin: unit,
    similarity: { type: 'number', minimum: -1.01, maximum: 1.01 },
    modelVersion: text,
    frameId: text,
  },
} as const;

export const laneEventSchemas = {
  result: resultEventSchema,
  state: stateEventSchema,
  model: modelEventSchema,
  training: trainingEventSchema,
  error: errorEventSchema,
  review: reviewEventSchema,
} as const;
