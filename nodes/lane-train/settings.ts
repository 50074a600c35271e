/**
 * Training settings of a lane-train node, and the overrides a message may carry
 * (`msg.payload.headKind`, ...). Pure, so the editor's strings and a message's numbers
 * go through the same checks.
 */
import type { NodeDef } from 'node-red';
import { LaneVisionError } from '../../src/errors.js';
import { HEAD_KINDS, type HeadKind, type TrainHeadParams } from '../../src/training/index.js';
import { MAX_TEST_VIEWS, TRAINING_STRATEGIES, type TrainingStrategy } from '../../src/pipeline/index.js';
import { DEFAULT_BUDGET_SECONDS, DEFAULT_FOLDS } from '../../src/retrain/index.js';

/**
 * Settings shown as typedInputs, with the type of their fixed value; `<field>Type` says
 * where the value comes from (missing in flows saved before: the fixed type).
 */
export const TYPED_FIELDS = {
  budget: 'num',
  testViews: 'num',
  folds: 'num',
  epochs: 'num',
  hiddenUnits: 'num',
  seed: 'num',
  targetPrecision: 'num',
  rejectLabels: 'str',
} as const;
export type TypedField = keyof typeof TYPED_FIELDS;

export interface LaneTrainDef extends NodeDef, Partial<Record<`${TypedField}Type`, string>> {
  dataset: string;
  /** Optional second lane-dataset: frames of another session to score on. */
  validationDataset?: string;
  backbone: string;
  /** auto (default): search crop, head and views; fixed: the head below. Flows saved before the setting existed: fixed. */
  strategy?: TrainingStrategy | '';
  /** Seconds the auto search may take; blank: default. */
  budget?: string | number;
  /** Test-time views per frame at classification; blank: 0. */
  testViews?: string | number;
  /** Grouped cross-validation folds; blank: default (or the older holdoutFraction). */
  folds?: string | number;
  headKind: HeadKind;
  /** Comma-separated labels trained as reject classes (other products, an empty belt). */
  rejectLabels?: string;
  /** Blank: the head kind's default. */
  epochs: string | number;
  /** mlp only; blank: default. */
  hiddenUnits: string | number;
  holdoutFraction: string | number;
  seed: string | number;
  targetPrecision: string | number;
  activate: boolean | string;
}

export interface TrainSettings {
  strategy: TrainingStrategy;
  rejectLabels: string[];
  budgetSeconds: number;
  testViews: number;
  folds: number;
  head: TrainHeadParams;
  seed: number;
  targetPrecision: number;
  activate: boolean;
}

/** The settings a message may override, by name in `msg.payload`. */
export const OVERRIDABLE = ['rejectLabels', 'strategy', 'budget', 'testViews', 'folds', 'headKind', 'epochs', 'hiddenUnits', 'holdoutFraction', 'seed', 'targetPrecision', 'activate'] as const;
type Raw = Partial<Record<(typeof OVERRIDABLE)[number], unknown>>;

/** A settings error about `field` says where its value was read (a context or env key the user can find). */
export function withSourceNamed(err: unknown, field: string, source: string): unknown {
  if (err instanceof LaneVisionError && err.message.startsWith(`${field} `)) {
    return new LaneVisionError(err.code, `${field} (read from ${source}) ${err.message.slice(field.length + 1)}`);
  }
  return err;
}

function invalid(message: string): never {
  throw new LaneVisionError('TRAIN_SETTINGS_INVALID', message);
}

const blank = (value: unknown) => value === undefined || value === null || (typeof value === 'string' && value.trim() === '');

function numberOf(name: string, value: unknown, fallback: number | undefined, ok: (v: number) => boolean, range: string): number | undefined {
  if (blank(value)) return fallback;
  const number = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isFinite(number) || !ok(number)) invalid(`${name} must be ${range}, got ${JSON.stringify(value) ?? String(value)}.`);
  return number;
}

function parse(raw: Raw, base?: TrainSettings, legacyDefaults = false): TrainSettings {
  // A flow saved before strategies existed trained the head it names: it keeps doing so.
  const strategy = blank(raw.strategy) ? (base?.strategy ?? (legacyDefaults ? 'fixed' : 'auto')) : raw.strategy;
  if (!TRAINING_STRATEGIES.includes(strategy as TrainingStrategy)) invalid(`strategy must be one of ${TRAINING_STRATEGIES.join(', ')}, got ${JSON.stringify(strategy)}.`);
  const kind = blank(raw.headKind) ? (base?.head.kind ?? 'logistic') : raw.headKind;
  if (!HEAD_KINDS.includes(kind as HeadKind)) invalid(`headKind must be one of ${HEAD_KINDS.join(', ')}, got ${JSON.stringify(kind)}.`);
  const whole = (v: number) => Number.isSafeInteger(v) && v >= 1;
  const epochs = numberOf('epochs', raw.epochs, base?.head.epochs, whole, 'a whole number of at least 1 (blank = default)');
  const hiddenUnits = numberOf('hiddenUnits', raw.hiddenUnits, base?.head.hiddenUnits, whole, 'a whole number of at least 1 (blank = default)');
  const head: TrainHeadParams = { kind: kind as HeadKind };
  if (epochs !== undefined) head.epochs = epochs;
  if (hiddenUnits !== undefined) head.hiddenUnits = hiddenUnits;
  let activate = base?.activate ?? true;
  if (!blank(raw.activate)) {
    if (raw.activate === true || raw.activate === 'true') activate = true;
    else if (raw.activate === false || raw.activate === 'false') activate = false;
    else invalid(`activate must be true or false, got ${JSON.stringify(raw.activate)}.`);
  }
  const holdout = numberOf('holdoutFraction', raw.holdoutFraction, undefined, (v) => v > 0 && v < 1, 'between 0 and 1');
  const foldsFallback = holdout !== undefined ? Math.min(20, Math.max(2, Math.round(1 / holdout))) : (base?.folds ?? DEFAULT_FOLDS);
  return {
    strategy: strategy as TrainingStrategy,
    rejectLabels: blank(raw.rejectLabels) ? (base?.rejectLabels ?? []) : labelList(raw.rejectLabels),
    budgetSeconds: numberOf('budget', raw.budget, base?.budgetSeconds ?? DEFAULT_BUDGET_SECONDS, (v) => v > 0 && v <= 86_400, 'a number of seconds above 0 (blank = default)')!,
    testViews: numberOf('testViews', raw.testViews, base?.testViews ?? 0, (v) => Number.isInteger(v) && v >= 0 && v <= MAX_TEST_VIEWS, `a whole number from 0 to ${MAX_TEST_VIEWS}`)!,
    folds: numberOf('folds', raw.folds, foldsFallback, (v) => Number.isInteger(v) && v >= 2 && v <= 20, 'a whole number from 2 to 20')!,
    head,
    seed: numberOf('seed', raw.seed, base?.seed ?? 1, Number.isSafeInteger, 'a whole number')!,
    targetPrecision: numberOf('targetPrecision', raw.targetPrecision, base?.targetPrecision ?? 0.95, (v) => v > 0 && v <= 1, 'above 0 and at most 1')!,
    activate,
  };
}

/** "a, b" or ["a", "b"] as a list of labels. */
function labelList(value: unknown): string[] {
  const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : invalid(`rejectLabels must be a list of labels, got ${JSON.stringify(value)}.`);
  return items.map((item) => (typeof item === 'string' ? item.trim() : invalid(`rejectLabels must be labels, got ${JSON.stringify(item)}.`))).filter((item) => item !== '');
}

/** The node's own settings; throws TRAIN_SETTINGS_INVALID naming the field. */
export function trainSettingsFrom(def: Partial<LaneTrainDef>): TrainSettings {
  return parse(def as Raw, undefined, def.strategy === undefined);
}

/**
 * The node's settings with a message's overrides applied. Anything that is not a plain
 * object (a frame, a command's `{}`, a string) overrides nothing.
 */
export function withOverrides(settings: TrainSettings, payload: unknown): TrainSettings {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload) || Buffer.isBuffer(payload)) return settings;
  const raw: Raw = {};
  for (const key of OVERRIDABLE) raw[key] = (payload as Raw)[key];
  // A different head kind brings its own default epochs and width, not this node's.
  const base = !blank(raw.headKind) && raw.headKind !== settings.head.kind ? { ...settings, head: { kind: settings.head.kind } } : settings;
  return parse(raw, base);
}
