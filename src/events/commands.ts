/**
 * Commands arriving on `<prefix>/cmd/<name>`. `parseCommand` never throws: anything
 * malformed becomes a CommandError for the caller to answer on the error topic, so one bad
 * message from the factory network cannot break the subscriber's loop.
 */
// labels.js directly (also re-exported by dataset/index.js): the index pulls in sharp,
// which the MQTT layer does not otherwise need.
import { validateLabel } from '../dataset/labels.js';
import { isLaneVisionError } from '../errors.js';
import type { LaneTopics } from './topics.js';
import { LANE_COMMAND_NAMES, type LaneCommandName } from './topics.js';

/** Commands are tiny JSON objects; anything bigger is a mistake or an attack. */
export const DEFAULT_MAX_COMMAND_BYTES = 4096;
export const DEFAULT_MAX_CAPTURE_COUNT = 100;
export const MAX_REQUEST_ID_CHARS = 128;
export const MAX_VERSION_CHARS = 128;

interface CommandBase {
  /** Optional id chosen by the sender, echoed in the error event answering this command. */
  requestId?: string;
}
export interface CaptureCommand extends CommandBase {
  name: 'capture';
  label: string;
  /** Frames to capture, 1..maxCaptureCount (default 1). */
  count: number;
}
export interface TrainCommand extends CommandBase {
  name: 'train';
}
export interface RollbackCommand extends CommandBase {
  name: 'rollback';
  version: string;
}
export interface ThresholdCommand extends CommandBase {
  name: 'threshold';
  /** Minimum confidence to accept a result, 0..1. */
  threshold: number;
}
export type LaneCommand = CaptureCommand | TrainCommand | RollbackCommand | ThresholdCommand;

/** What to publish on the error topic (with buildErrorEvent, source "command"). */
export interface CommandError {
  code: string;
  message: string;
  topic: string;
  command?: string;
  requestId?: string;
}

export type CommandParseResult = { ok: true; command: LaneCommand } | { ok: false; error: CommandError };

export interface ParseCommandOptions {
  /** Accept only this station's command topics (otherwise any topic ending in cmd/<name>). */
  topics?: LaneTopics;
  maxBytes?: number;
  maxCaptureCount?: number;
}

const FIELDS: Record<LaneCommandName, readonly string[]> = {
  capture: ['label', 'count', 'requestId'],
  train: ['requestId'],
  rollback: ['version', 'requestId'],
  threshold: ['threshold', 'requestId'],
};

class CommandRejected extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function reject(code: string, message: string): never {
  throw new CommandRejected(code, message);
}

function commandNameOf(topic: string, topics: LaneTopics | undefined): string | undefined {
  if (topics) return topics.commandNameOf(topic);
  const levels = topic.split('/');
  return levels.length >= 2 && levels[levels.length - 2] === 'cmd' ? levels[levels.length - 1] : undefined;
}

function decodePayload(payload: unknown, maxBytes: number): unknown {
  let bytes: Uint8Array;
  if (typeof payload === 'string') bytes = Buffer.from(payload, 'utf8');
  else if (payload instanceof Uint8Array) bytes = payload;
  else reject('COMMAND_INVALID_JSON', 'The command payload must be JSON text.');
  if (bytes.byteLength > maxBytes) {
    reject('COMMAND_TOO_LARGE', `The command is ${bytes.byteLength} bytes; the limit is ${maxBytes}.`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    reject('COMMAND_INVALID_ENCODING', 'The command payload is not valid UTF-8 text.');
  }
  if (text.trim().length === 0) return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    reject('COMMAND_INVALID_JSON', `The command payload is not valid JSON (${(err as Error).message}).`);
  }
}

/** Lets a sender write `0.8` instead of {"threshold":0.8}, or "Arla" instead of {"label":"Arla"}. */
function expandShorthand(name: LaneCommandName, body: unknown): unknown {
  if (name === 'threshold' && typeof body === 'number') return { threshold: body };
  if (name === 'capture' && typeof body === 'string') return { label: body };
  if (name === 'rollback' && typeof body === 'string') return { version: body };
  return body;
}

function readRequestId(body: Record<string, unknown>): string | undefined {
  const id = body.requestId;
  if (id === undefined) return undefined;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_REQUEST_ID_CHARS) {
    reject('COMMAND_INVALID_FIELD', `requestId must be a string of 1 to ${MAX_REQUEST_ID_CHARS} characters.`);
  }
  return id;
}

/**
 * The dataset's own label rule (code LABEL_INVALID, NFC-normalised result, the reserved
 * "unknown" included), so a command can never create a label the dataset would refuse.
 */
function checkLabel(label: unknown): string {
  let name: string;
  try {
    name = validateLabel(label);
  } catch (err) {
    reject(isLaneVisionError(err) ? err.code : 'LABEL_INVALID', err instanceof Error ? err.message : String(err));
  }
  return name;
}

function buildCommand(name: LaneCommandName, body: Record<string, unknown>, requestId: string | undefined, maxCaptureCount: number): LaneCommand {
  const withId = <T extends LaneCommand>(cmd: T): T => (requestId === undefined ? cmd : { ...cmd, requestId });
  switch (name) {
    case 'capture': {
      const label = checkLabel(body.label);
      const count = body.count ?? 1;
      if (!Number.isSafeInteger(count) || (count as number) < 1 || (count as number) > maxCaptureCount) {
        reject('COMMAND_INVALID_FIELD', `count must be an integer from 1 to ${maxCaptureCount}.`);
      }
      return withId({ name, label, count: count as number });
    }
    case 'train':
      return withId({ name });
    case 'rollback': {
      const version = body.version;
      if (typeof version !== 'string' || version.trim().length === 0 || version.length > MAX_VERSION_CHARS) {
        reject('COMMAND_INVALID_FIELD', `version must be a non-empty string of at most ${MAX_VERSION_CHARS} characters.`);
      }
      return withId({ name, version });
    }
    case 'threshold': {
      const threshold = body.threshold;
      if (typeof threshold !== 'number' || !Number.isFinite(threshold) || threshold < 0 || threshold > 1) {
        reject('COMMAND_INVALID_FIELD', 'threshold must be a number from 0 to 1.');
      }
      return withId({ name, threshold });
    }
  }
}

/**
 * Parses one command message. Never throws; returns `{ ok: false, error }` for anything
 * malformed: unknown command, payload too large, not UTF-8/JSON, unknown or invalid field.
 */
export function parseCommand(topic: string, payload: Buffer | Uint8Array | string, options: ParseCommandOptions = {}): CommandParseResult {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_COMMAND_BYTES;
  const maxCaptureCount = options.maxCaptureCount ?? DEFAULT_MAX_CAPTURE_COUNT;
  const safeTopic = typeof topic === 'string' ? topic : String(topic);
  const rawName = commandNameOf(safeTopic, options.topics);
  let requestId: string | undefined;
  try {
    if (rawName === undefined || !(LANE_COMMAND_NAMES as readonly string[]).includes(rawName)) {
      reject('COMMAND_UNKNOWN', `"${safeTopic}" is not a command topic; commands are ${LANE_COMMAND_NAMES.map((n) => `cmd/${n}`).join(', ')}.`);
    }
    const name = rawName as LaneCommandName;
    const body = expandShorthand(name, decodePayload(payload, maxBytes));
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      reject('COMMAND_INVALID_JSON', `The ${name} command must be a JSON object.`);
    }
    const fields = body as Record<string, unknown>;
    if (typeof fields.requestId === 'string') requestId = fields.requestId.slice(0, MAX_REQUEST_ID_CHARS);
    readRequestId(fields);
    const unknown = Object.keys(fields).filter((key) => !FIELDS[name].includes(key));
    if (unknown.length > 0) {
      reject('COMMAND_UNKNOWN_FIELD', `The ${name} command does not take ${unknown.map((k) => `"${k}"`).join(', ')}; allowed: ${FIELDS[name].join(', ')}.`);
    }
    return { ok: true, command: buildCommand(name, fields, requestId, maxCaptureCount) };
  } catch (err) {
    const known = err instanceof CommandRejected;
    const error: CommandError = {
      code: known ? err.code : 'COMMAND_FAILED',
      message: known ? err.message : `The command could not be read: ${String(err)}`,
      topic: safeTopic,
    };
    if (rawName !== undefined) error.command = rawName.slice(0, 64);
    if (requestId !== undefined) error.requestId = requestId;
    return { ok: false, error };
  }
}

// JSON Schemas (draft 2020-12) of command payloads; shorthand forms are described in the docs.
const requestId = { type: 'string', minLength: 1, maxLength: MAX_REQUEST_ID_CHARS } as const;

export const laneCommandSchemas = {
  capture: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:lane-vision:command:capture:1',
    title: 'Lane Vision cmd/capture',
    type: 'object',
    required: ['label'],
    additionalProperties: false,
    properties: {
      label: { type: 'string', minLength: 1 },
      count: { type: 'integer', minimum: 1, maximum: DEFAULT_MAX_CAPTURE_COUNT, default: 1 },
      requestId,
    },
  },
  train: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:lane-vision:command:train:1',
    title: 'Lane Vision cmd/train (empty payload allowed)',
    type: 'object',
    additionalProperties: false,
    properties: { requestId },
  },
  rollback: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:lane-vision:command:rollback:1',
    title: 'Lane Vision cmd/rollback',
    type: 'object',
    required: ['version'],
    additionalProperties: false,
    properties: { version: { type: 'string', minLength: 1, maxLength: MAX_VERSION_CHARS }, requestId },
  },
  threshold: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:lane-vision:command:threshold:1',
    title: 'Lane Vision cmd/threshold',
    type: 'object',
    required: ['threshold'],
    additionalProperties: false,
    properties: { threshold: { type: 'number', minimum: 0, maximum: 1 }, requestId },
  },
} as const;

/**
 * The argument of a command as other nodes take it on `msg.payload`: the label of a capture,
 * the version of a rollback, the threshold of a threshold, `{}` for train (no argument).
 */
export function commandArgument(command: LaneCommand): string | number | Record<string, never> {
  switch (command.name) {
    case 'capture':
      return command.label;
    case 'rollback':
      return command.version;
    case 'threshold':
      return command.threshold;
    case 'train':
      return {};
  }
}
