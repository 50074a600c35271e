/**
 * The console's write requests: what their bodies may hold. Pure functions over plain values, so the rules are tested
 * without a runtime; failures are HttpErrors carrying the status to answer with.
 */
import { TRAINING_STRATEGIES, type TrainingStrategy } from '../pipeline/index.js';
import { HEAD_KINDS, type HeadKind } from '../training/index.js';
import { isLaneVisionError } from '../errors.js';
import { validateLabel } from '../dataset/index.js';
import { HttpError } from './http-error.js';

// Who may write lives in same-origin.ts, shared by every admin write route (nodes/shared re-exports it).
export { checkSameOrigin, CSRF_HEADER, HttpError, type OriginHeaders } from './same-origin.js';

export const WRITE_ACTIONS = ['capture', 'stop-capture', 'dismiss', 'delete', 'relabel', 'train', 'cancel-train', 'promote', 'discard', 'rollback', 'review-label', 'review-dismiss', 'mark-reject'] as const;
export type WriteAction = (typeof WRITE_ACTIONS)[number];

/** Frames one capture may take (selected, or the next N). */
export const MAX_CAPTURE_FRAMES = 200;
const MAX_ID_CHARS = 512;

export type WriteRequest =
  | { action: 'capture'; label: string; frames?: number[]; count?: number }
  | { action: 'stop-capture' }
  | { action: 'dismiss'; frames: number[] }
  | { action: 'delete'; id: string }
  | { action: 'relabel'; id: string; label: string }
  | { action: 'train'; strategy: TrainingStrategy; head?: HeadKind }
  | { action: 'review-label'; id: string; label: string }
  | { action: 'review-dismiss'; id: string }
  | { action: 'mark-reject'; label: string; reject: boolean }
  | { action: 'cancel-train' }
  | { action: 'promote'; version: number }
  | { action: 'discard'; version: number }
  | { action: 'rollback' };

export function isWriteAction(value: string): value is WriteAction {
  return (WRITE_ACTIONS as readonly string[]).includes(value);
}

function bad(message: string): HttpError {
  return new HttpError(400, message);
}

function objectBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw bad('The request body must be a JSON object.');
  const extra = Object.keys(body).filter((key) => !allowed.includes(key));
  if (extra.length > 0) {
    throw bad(`Unexpected field${extra.length > 1 ? 's' : ''} ${extra.map((k) => JSON.stringify(k)).join(', ')}; this action takes ${allowed.length ? allowed.join(', ') : 'no fields'}.`);
  }
  return body as Record<string, unknown>;
}

function label(value: unknown): string {
  if (value === undefined) throw bad('A "label" is needed.');
  try {
    return validateLabel(value);
  } catch (err) {
    if (isLaneVisionError(err) || (err as { code?: string }).code === 'LABEL_INVALID') throw bad((err as Error).message);
    throw err;
  }
}

function imageId(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_CHARS || /[\u0000-\u001f\u007f]/.test(value)) {
    throw bad(`"id" must be the id of a dataset image (text of 1 to ${MAX_ID_CHARS} characters).`);
  }
  return value;
}

function wholeNumber(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw bad(`"${name}" must be a whole number from ${min} to ${max}, got ${JSON.stringify(value) ?? String(value)}.`);
  }
  return value;
}

function frameIds(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_CAPTURE_FRAMES) {
    throw bad(`"frames" must be a list of 1 to ${MAX_CAPTURE_FRAMES} frame ids.`);
  }
  const ids = value.map((id) => wholeNumber(id, 'frames[]', 0, Number.MAX_SAFE_INTEGER));
  return [...new Set(ids)];
}

/** Checks a write's body; throws HttpError 400 naming what is wrong. */
export function parseWriteRequest(action: WriteAction, body: unknown): WriteRequest {
  switch (action) {
    case 'capture': {
      const b = objectBody(body, ['label', 'frames', 'count']);
      if (b.frames !== undefined && b.count !== undefined) throw bad('Give either "frames" (these frames) or "count" (the next frames), not both.');
      const request: WriteRequest = { action, label: label(b.label) };
      if (b.frames !== undefined) request.frames = frameIds(b.frames);
      if (b.count !== undefined) request.count = wholeNumber(b.count, 'count', 1, MAX_CAPTURE_FRAMES);
      return request;
    }
    case 'dismiss':
      return { action, frames: frameIds(objectBody(body, ['frames']).frames) };
    case 'delete':
      return { action, id: imageId(objectBody(body, ['id']).id) };
    case 'relabel': {
      const b = objectBody(body, ['id', 'label']);
      return { action, id: imageId(b.id), label: label(b.label) };
    }
    case 'review-label': {
      const b = objectBody(body, ['id', 'label']);
      return { action, id: imageId(b.id), label: label(b.label) };
    }
    case 'review-dismiss':
      return { action, id: imageId(objectBody(body, ['id']).id) };
    case 'mark-reject': {
      const b = objectBody(body, ['label', 'reject']);
      if (typeof b.reject !== 'boolean') throw bad('"reject" must be true or false.');
      return { action, label: label(b.label), reject: b.reject };
    }
    case 'promote':
    case 'discard':
      return { action, version: wholeNumber(objectBody(body, ['version']).version, 'version', 1, 999_999) };
    case 'train': {
      const b = objectBody(body, ['strategy', 'head']);
      const strategy = b.strategy === undefined ? 'auto' : b.strategy;
      if (!TRAINING_STRATEGIES.includes(strategy as TrainingStrategy)) throw bad(`"strategy" must be one of ${TRAINING_STRATEGIES.join(', ')}.`);
      if (b.head !== undefined && !HEAD_KINDS.includes(b.head as HeadKind)) throw bad(`"head" must be one of ${HEAD_KINDS.join(', ')}.`);
      if (strategy === 'auto' && b.head !== undefined) throw bad('A "head" goes with the fixed strategy; auto chooses its own.');
      return { action, strategy: strategy as TrainingStrategy, ...(b.head !== undefined ? { head: b.head as HeadKind } : {}) };
    }
    case 'stop-capture':
    case 'cancel-train':
    case 'rollback':
      objectBody(body, []);
      return { action };
  }
}
