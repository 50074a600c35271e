/** Editor settings of a lane-stats node -> checked settings (defaults and ranges in one place). */
import { LaneVisionError } from '../../src/errors.js';
import type { LaneStatsDef, StatsSettings } from './types.js';

export const DEFAULT_INTERVAL_S = 2;
export const DEFAULT_WINDOW_MINUTES = 10;
export const DEFAULT_FRAME_SIZE = 320;

function numberSetting(value: unknown, fallback: number, min: number, max: number, what: string, whole: boolean): number {
  if (value === undefined || value === null || String(value).trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw new LaneVisionError('STATS_SETTINGS_INVALID', `"${what}" must be a ${whole ? 'whole ' : ''}number from ${min} to ${max}, got ${JSON.stringify(value)}.`);
  }
  return n;
}

export function statsSettingsFrom(def: Partial<LaneStatsDef>): StatsSettings {
  const frameBox = numberSetting(def.frameSize, DEFAULT_FRAME_SIZE, 0, 1024, 'Frame size', true);
  if (frameBox > 0 && frameBox < 32) throw new LaneVisionError('STATS_SETTINGS_INVALID', `"Frame size" must be 0 (no frame) or from 32 to 1024 pixels, got ${frameBox}.`);
  return {
    intervalMs: Math.round(numberSetting(def.interval, DEFAULT_INTERVAL_S, 0.5, 3600, 'Every', false) * 1000),
    windowMinutes: numberSetting(def.windowMinutes, DEFAULT_WINDOW_MINUTES, 1, 24 * 60, 'Window', true),
    frameBox,
  };
}
