/**
 * Editor settings of a lane-console node -> checked settings. Pure, so the rules (defaults,
 * ranges, what a page path may look like) live in one place.
 */
import { LaneVisionError } from '../../src/errors.js';
import type { ConsoleSettings, LaneConsoleDef } from './types.js';

export const DEFAULT_PATH = '/lane-vision/console';
export const DEFAULT_FRAMES = 24;
export const DEFAULT_REJECTS = 48;
export const DEFAULT_WINDOW_MINUTES = 10;

// Letters, digits and - _ . ~ per segment: the path is a URL prefix, never a file path.
const PATH_SEGMENT = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$/;

/** "/a/b" from " a/b/ ": one leading slash, no trailing one; refuses empty, dot and odd segments. */
export function normalisePagePath(value: unknown): string {
  const text = typeof value === 'string' && value.trim() !== '' ? value.trim() : DEFAULT_PATH;
  const segments = text.split('/').filter((segment) => segment !== '');
  if (segments.length === 0) {
    throw new LaneVisionError('CONSOLE_PATH_INVALID', `The console path must name a page below the root, like ${DEFAULT_PATH}; "/" alone is not allowed.`);
  }
  const bad = segments.find((segment) => !PATH_SEGMENT.test(segment) || segment.length > 64);
  if (bad !== undefined) {
    throw new LaneVisionError(
      'CONSOLE_PATH_INVALID',
      `The console path ${JSON.stringify(text)} has a part ${JSON.stringify(bad)} that is not allowed: use letters, digits and - _ . ~ (not starting with a dot).`,
    );
  }
  return '/' + segments.join('/');
}

function wholeNumber(value: unknown, fallback: number, min: number, max: number, what: string): number {
  if (value === undefined || value === null || String(value).trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new LaneVisionError('CONSOLE_SETTINGS_INVALID', `"${what}" must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
  }
  return n;
}

export function consoleSettingsFrom(def: Partial<LaneConsoleDef>): ConsoleSettings {
  return {
    path: normalisePagePath(def.path),
    frames: wholeNumber(def.frames, DEFAULT_FRAMES, 4, 200, 'Frames kept'),
    rejects: wholeNumber(def.rejects, DEFAULT_REJECTS, 0, 500, 'Unsure frames kept'),
    windowMinutes: wholeNumber(def.windowMinutes, DEFAULT_WINDOW_MINUTES, 1, 24 * 60, 'Count window'),
  };
}
