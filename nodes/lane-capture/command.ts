/**
 * Which label a frame goes under, and the `capture` command that arms one for the next
 * frames. Pure, so the rules are in one place and read the same as the MQTT cmd/capture
 * rules in src/events/commands.ts (shorthand string or {label, count}; "unknown" reserved).
 */
import { LaneVisionError } from '../../src/errors.js';
import { validateLabel } from '../../src/dataset/index.js';
import { DEFAULT_MAX_CAPTURE_COUNT } from '../../src/events/commands.js';

export const CAPTURE_TOPIC = 'capture';

/** A label set by a capture command for the next `remaining` frames. */
export interface ArmedLabel {
  label: string;
  remaining: number;
}

/** validateLabel (which also refuses the classifiers' rejection label, "unknown"). */
export function checkCaptureLabel(label: unknown): string {
  return validateLabel(label);
}

/**
 * The label a `capture` command arms: `payload` is the label, or `{label, count}`;
 * `count` may also come on the message (as lane-events sends MQTT commands), else from the
 * node's count setting (`fallbackCount`). Default 1 frame.
 */
export function parseCaptureCommand(payload: unknown, msgCount?: unknown, fallbackCount?: number): ArmedLabel {
  const body = typeof payload === 'string' ? { label: payload } : payload;
  if (body === null || typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) {
    throw new LaneVisionError('CAPTURE_COMMAND_INVALID', 'A capture command needs msg.payload = a label, or {label, count}.');
  }
  const { label, count } = body as { label?: unknown; count?: unknown };
  const frames = checkCaptureCount(count ?? msgCount ?? fallbackCount ?? 1);
  return { label: checkCaptureLabel(label), remaining: frames };
}

/** A capture count: a whole number from 1 to the limit. `source` names where it was read (a setting). */
export function checkCaptureCount(count: unknown, source?: string): number {
  const frames = count;
  if (!Number.isSafeInteger(frames) || (frames as number) < 1 || (frames as number) > DEFAULT_MAX_CAPTURE_COUNT) {
    throw new LaneVisionError(
      'CAPTURE_COMMAND_INVALID',
      `A capture command's count${source ? ` (read from ${source})` : ''} must be a whole number from 1 to ${DEFAULT_MAX_CAPTURE_COUNT}, got ${JSON.stringify(count) ?? String(count)}.`,
    );
  }
  return frames as number;
}

/** msg.label when it is set (null, undefined and "" are not), as given: checked by the caller. */
export function messageLabel(msg: { label?: unknown }): unknown {
  return msg.label === undefined || msg.label === null || msg.label === '' ? undefined : msg.label;
}
