/**
 * MQTT topics of one lane station, built from a single template such as
 * `lane-vision/{line}/{station}/{event}`.
 *
 * Variables are validated so a value can never change the shape of a topic: no wildcards
 * (a publish topic must not contain them and a subscriber's filter would misfire), no
 * `/` (it would add levels and break `lane-vision/+/+/result` style filters), no NUL or
 * control characters, no empty value, and UTF-8 length limits.
 */
import { LaneVisionError } from '../errors.js';

export const DEFAULT_TOPIC_TEMPLATE = 'lane-vision/{line}/{station}/{event}';

/** Events a station publishes. */
export type LaneEventKind = 'result' | 'state' | 'model' | 'training' | 'error' | 'review';
export const LANE_EVENT_KINDS: readonly LaneEventKind[] = ['result', 'state', 'model', 'training', 'error', 'review'];

/** Commands a station accepts, on `<prefix>/cmd/<name>`. */
export type LaneCommandName = 'capture' | 'train' | 'rollback' | 'threshold';
export const LANE_COMMAND_NAMES: readonly LaneCommandName[] = ['capture', 'train', 'rollback', 'threshold'];

/** MQTT allows 65535 bytes per topic; a variable is a name, so it gets far less. */
export const MAX_TOPIC_BYTES = 65535;
export const MAX_TOPIC_VARIABLE_BYTES = 128;

export interface LaneTopics {
  readonly template: string;
  /** The values the template was filled with (without `event`). */
  readonly vars: Readonly<Record<string, string>>;
  readonly result: string;
  readonly state: string;
  readonly model: string;
  readonly training: string;
  readonly error: string;
  /** Frames queued for an operator's look (sent to inspection, or decided by a hair). */
  readonly review: string;
  /** Filter matching every command of this station: `<prefix>/cmd/+`. */
  readonly commandFilter: string;
  /** Topic of one command, e.g. `<prefix>/cmd/capture`. */
  command(name: LaneCommandName): string;
  /** The command name when `topic` is one of this station's command topics, else undefined. */
  commandNameOf(topic: string): string | undefined;
}

const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9_]*)\}/g;
// MQTT "SHOULD NOT" include control characters; they also make logs and UIs unreadable.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
// A lone UTF-16 surrogate has no UTF-8 encoding (String#isWellFormed is ES2024, past our lib).
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when `text` is free of lone surrogates, i.e. encodes to UTF-8 unchanged. */
export function isWellFormedText(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

/** Throws LaneVisionError TOPIC_VARIABLE_INVALID unless `value` can fill one topic level. */
export function validateTopicVariable(name: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" must be a string, got ${typeof value}.`);
  }
  if (value.length === 0) {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" is empty; it would create an empty topic level.`);
  }
  if (/[+#]/.test(value)) {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" ("${value}") contains an MQTT wildcard (+ or #), which is not allowed in a topic.`);
  }
  if (value.includes('/')) {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" ("${value}") contains "/", which would add topic levels.`);
  }
  if (CONTROL_CHARS.test(value)) {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" contains a NUL or control character.`);
  }
  if (!isWellFormedText(value)) {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" is not valid UTF-8 text (lone surrogate).`);
  }
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > MAX_TOPIC_VARIABLE_BYTES) {
    throw new LaneVisionError('TOPIC_VARIABLE_INVALID', `Topic variable "${name}" is ${bytes} bytes in UTF-8; the limit is ${MAX_TOPIC_VARIABLE_BYTES}.`);
  }
  return value;
}

/**
 * Throws LaneVisionError TOPIC_INVALID unless `topic` may be published to: non-empty, no
 * wildcard, no NUL/control character, well-formed, at most 65535 UTF-8 bytes.
 */
export function validatePublishTopic(topic: unknown): string {
  if (typeof topic !== 'string' || topic.length === 0) {
    throw new LaneVisionError('TOPIC_INVALID', 'An MQTT topic must be a non-empty string.');
  }
  if (/[+#]/.test(topic)) {
    throw new LaneVisionError('TOPIC_INVALID', `Cannot publish to "${topic}": it contains an MQTT wildcard (+ or #).`);
  }
  if (CONTROL_CHARS.test(topic)) {
    throw new LaneVisionError('TOPIC_INVALID', 'Cannot publish: the topic contains a NUL or control character.');
  }
  if (!isWellFormedText(topic)) {
    throw new LaneVisionError('TOPIC_INVALID', 'Cannot publish: the topic is not valid UTF-8 text.');
  }
  if (Buffer.byteLength(topic, 'utf8') > MAX_TOPIC_BYTES) {
    throw new LaneVisionError('TOPIC_INVALID', `Cannot publish: the topic is longer than ${MAX_TOPIC_BYTES} bytes.`);
  }
  return topic;
}

/** Checks a template and returns the names of its placeholders, in order. */
function parseTemplate(template: string): string[] {
  if (typeof template !== 'string' || template.length === 0) {
    throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', 'The topic template must be a non-empty string.');
  }
  const levels = template.split('/');
  const names: string[] = [];
  levels.forEach((level, index) => {
    if (level.length === 0) {
      throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', `Topic template "${template}" has an empty level.`);
    }
    const placeholders = [...level.matchAll(PLACEHOLDER)].map((m) => m[1]);
    const literal = level.replace(PLACEHOLDER, '');
    if (/[{}]/.test(literal)) {
      throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', `Topic template "${template}" has a malformed placeholder in "${level}" (use {name}).`);
    }
    if (/[+#]/.test(literal) || CONTROL_CHARS.test(literal)) {
      throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', `Topic template "${template}" contains a wildcard or control character.`);
    }
    if (placeholders.includes('event') && (level !== '{event}' || index !== levels.length - 1)) {
      // Commands live under `<prefix>/cmd/<name>`, so {event} must be the whole last level.
      throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', `Topic template "${template}": {event} must be the whole last level.`);
    }
    names.push(...placeholders);
  });
  if (!names.includes('event')) {
    throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', `Topic template "${template}" must end with the level {event}.`);
  }
  if (template.startsWith('$')) {
    throw new LaneVisionError('TOPIC_TEMPLATE_INVALID', `Topic template "${template}" starts with "$", which brokers reserve ($SYS).`);
  }
  return names;
}

/**
 * Fills `template` with `vars` (every placeholder but {event}, which is filled with
 * `event`). Throws LaneVisionError TOPIC_VARIABLE_MISSING / TOPIC_VARIABLE_INVALID /
 * TOPIC_TEMPLATE_INVALID / TOPIC_INVALID.
 */
export function formatTopic(template: string, vars: Readonly<Record<string, string>>, event: string): string {
  const names = parseTemplate(template);
  for (const name of names) {
    if (name === 'event') continue;
    if (!Object.prototype.hasOwnProperty.call(vars, name) || vars[name] === undefined) {
      throw new LaneVisionError('TOPIC_VARIABLE_MISSING', `Topic template "${template}" needs a value for {${name}}.`);
    }
    validateTopicVariable(name, vars[name]);
  }
  const topic = template.replace(PLACEHOLDER, (_m, name: string) => (name === 'event' ? event : vars[name]));
  return validatePublishTopic(topic);
}

/** All topics of one station. Throws LaneVisionError when the template or a variable is bad. */
export function buildLaneTopics(vars: Readonly<Record<string, string>>, template: string = DEFAULT_TOPIC_TEMPLATE): LaneTopics {
  const filled = { ...vars };
  const topicOf = (event: string) => formatTopic(template, filled, event);
  const commandPrefix = topicOf('cmd/');
  return {
    template,
    vars: Object.freeze(filled),
    result: topicOf('result'),
    state: topicOf('state'),
    model: topicOf('model'),
    training: topicOf('training'),
    error: topicOf('error'),
    review: topicOf('review'),
    // Built by string concatenation: formatTopic rightly refuses wildcards.
    commandFilter: `${commandPrefix}+`,
    command: (name) => topicOf(`cmd/${name}`),
    commandNameOf(topic) {
      if (typeof topic !== 'string' || !topic.startsWith(commandPrefix)) return undefined;
      const name = topic.slice(commandPrefix.length);
      return name.length > 0 && !name.includes('/') ? name : undefined;
    },
  };
}
