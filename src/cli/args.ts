/**
 * Command-line parsing on `node:util` parseArgs: the options every command shares, and
 * checked conversion of option text to numbers. A bad command line is a `UsageError`
 * (exit code 2), kept apart from failures of the work itself (exit code 1).
 */
import { parseArgs } from 'node:util';
import { parseBackendPreference, type BackendPreference } from '../engine/backend.js';
import { parseEnginePreference } from '../engine/onnx/engine-preference.js';
import type { EnginePreference } from '../engine/types.js';
import { isLaneVisionError } from '../errors.js';

/** The command line cannot be understood; `command` names the help to point at. */
export class UsageError extends Error {
  constructor(
    readonly command: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

type OptionConfig = { type: 'string' | 'boolean'; short?: string };
export type OptionsConfig = Record<string, OptionConfig>;

/** What parseArgs gives for `O`: each option once, absent when not on the command line. */
export type OptionValues<O extends OptionsConfig> = { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string };

/** Options accepted by every command. */
export const COMMON_OPTIONS = {
  backend: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

/** parseArgs in strict mode, with its errors turned into one-line usage errors. */
export function parseCommandLine<O extends OptionsConfig>(
  command: string,
  args: readonly string[],
  options: O,
): { values: OptionValues<O>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: withNegativeValues(args, options), options, allowPositionals: true, strict: true });
    return { values: values as OptionValues<O>, positionals };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw err;
    throw new UsageError(command, describeParseError(err as Error & { code: string }));
  }
}

const NEGATIVE_NUMBER = /^-(\d|\.\d)/;

/**
 * `--threshold -1` as `--threshold=-1`: parseArgs takes "-1" for an option and says the
 * value is missing, where the user gave one that is out of range and should hear so.
 */
function withNegativeValues(args: readonly string[], options: OptionsConfig): string[] {
  const takesValue = new Map<string, string>();
  for (const [name, spec] of Object.entries(options)) {
    if (spec.type !== 'string') continue;
    takesValue.set(`--${name}`, name);
    if (spec.short) takesValue.set(`-${spec.short}`, name);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = takesValue.get(arg);
    if (name !== undefined && i + 1 < args.length && NEGATIVE_NUMBER.test(args[i + 1])) {
      out.push(`--${name}=${args[++i]}`);
    } else out.push(arg);
  }
  return out;
}

/** parseArgs messages carry advice about "--" that confuses more than it helps here. */
function describeParseError(err: Error & { code: string }): string {
  const option = /'(-{1,2}[^' ]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option ?? err.message}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return option ? `option ${option} needs a value` : err.message;
    default:
      return err.message.split('\n')[0];
  }
}

export function backendOption(command: string, value: string | undefined): BackendPreference | undefined {
  if (value === undefined) return undefined; // the engine then reads LANE_VISION_BACKEND
  try {
    return parseBackendPreference(value);
  } catch (err) {
    if (isLaneVisionError(err)) throw new UsageError(command, `--backend: ${err.message}`);
    throw err;
  }
}

/** Options of the commands that run a backbone. */
export const BACKBONE_OPTIONS = {
  engine: { type: 'string' },
  layer: { type: 'string' },
  int8: { type: 'string' },
} as const satisfies OptionsConfig;

export function engineOption(command: string, value: string | undefined): EnginePreference | undefined {
  if (value === undefined) return undefined; // the engine then reads LANE_VISION_ENGINE
  try {
    return parseEnginePreference(value);
  } catch (err) {
    if (isLaneVisionError(err)) throw new UsageError(command, `--engine: ${err.message}`);
    throw err;
  }
}

export function requiredOption(command: string, name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === '') throw new UsageError(command, `--${name} is required`);
  return value;
}

export function integerOption(command: string, name: string, value: string | undefined, fallback: number, range: { min: number; max: number }): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^[+-]?\d+$/.test(value.trim()) || number < range.min || number > range.max) {
    throw new UsageError(command, `--${name} must be a whole number from ${range.min} to ${range.max}, got "${value}"`);
  }
  return number;
}

/** A number in [min, max]; `exclusive` leaves the ends out. */
export function numberOption(
  command: string,
  name: string,
  value: string | undefined,
  fallback: number,
  range: { min: number; max: number; exclusive?: boolean },
): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  const inside = range.exclusive ? number > range.min && number < range.max : number >= range.min && number <= range.max;
  if (value.trim() === '' || !Number.isFinite(number) || !inside) {
    const bounds = range.exclusive ? `between ${range.min} and ${range.max} (exclusive)` : `from ${range.min} to ${range.max}`;
    throw new UsageError(command, `--${name} must be a number ${bounds}, got "${value}"`);
  }
  return number;
}

export function oneOf<T extends string>(command: string, name: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(command, `--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
}

/** A comma-separated list ("a,b , c"), empty entries dropped; undefined when not given. */
export function listOption(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

export function needPositionals(command: string, positionals: readonly string[], what: string, count: { min: number; max?: number }): void {
  if (positionals.length < count.min) throw new UsageError(command, `missing ${what}`);
  if (count.max !== undefined && positionals.length > count.max) {
    throw new UsageError(command, `unexpected argument "${positionals[count.max]}"`);
  }
}
