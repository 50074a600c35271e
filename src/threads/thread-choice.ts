/** Where a kind of work runs: in its own worker thread (the default) or on the main thread (the escape hatch). */
import { LaneVisionError } from '../errors.js';

export type ThreadChoice = 'worker' | 'main';

/** `value` (typically an environment variable's) read as a ThreadChoice; empty means `worker`. */
export function threadChoiceFrom(envVar: string, errorCode: string, value: unknown): ThreadChoice {
  const text = value === undefined || value === null ? '' : String(value).trim().toLowerCase();
  if (text === '' || text === 'worker') return 'worker';
  if (text === 'main') return 'main';
  throw new LaneVisionError(errorCode, `${envVar} must be "worker" or "main", got "${String(value)}".`);
}
