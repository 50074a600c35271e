/**
 * Editor settings of a lane-dataset node -> folders and dataset options. Pure, so the
 * rules (defaults, relative folders, what "0" means) are in one place.
 */
import { resolveInUserDir } from '../shared/paths.js';
import type { NodeDef } from 'node-red';
import { LaneVisionError } from '../../src/errors.js';
import type { DatasetOptions, LabelCapPolicy } from '../../src/dataset/index.js';

export const DEFAULT_DATASET_FOLDER = 'lane-vision/dataset';
export const DEFAULT_MODELS_FOLDER = 'lane-vision/models';

export interface LaneDatasetDef extends NodeDef {
  folder: string;
  modelsFolder: string;
  /** 0 or blank: no cap. */
  maxPerLabel: string | number;
  whenFull: LabelCapPolicy;
  /** Model versions kept after each save (older ones are pruned; the active and previous ones always stay). Blank: 20. */
  keepVersions?: string | number;
}

export const DEFAULT_KEEP_VERSIONS = 20;

/** "Keep versions" as a count; 0 turns pruning off. Throws DATASET_OPTIONS for anything else. */
export function keepVersionsFrom(def: Partial<LaneDatasetDef>): number {
  const raw = def.keepVersions;
  if (raw === undefined || raw === null || String(raw).trim() === '') return DEFAULT_KEEP_VERSIONS;
  const keep = Number(raw);
  if (!Number.isSafeInteger(keep) || keep < 0) {
    throw new LaneVisionError('DATASET_OPTIONS', `"Keep versions" must be a whole number (0 = keep all), got ${JSON.stringify(raw)}.`);
  }
  return keep;
}

export function datasetFoldersFrom(def: Partial<LaneDatasetDef>, userDir: string): { folder: string; modelsFolder: string } {
  const text = (value: unknown, fallback: string) => (typeof value === 'string' && value.trim() ? value.trim() : fallback);
  return {
    folder: resolveInUserDir(userDir, text(def.folder, DEFAULT_DATASET_FOLDER)),
    modelsFolder: resolveInUserDir(userDir, text(def.modelsFolder, DEFAULT_MODELS_FOLDER)),
  };
}

/** The cap settings as openDataset takes them; throws DATASET_OPTIONS for values the editor should not have let through. */
export function datasetOptionsFrom(def: Partial<LaneDatasetDef>): DatasetOptions {
  const raw = def.maxPerLabel;
  const max = raw === undefined || raw === null || String(raw).trim() === '' ? 0 : Number(raw);
  if (!Number.isSafeInteger(max) || max < 0) {
    throw new LaneVisionError('DATASET_OPTIONS', `"Max per label" must be a whole number (0 = no cap), got ${JSON.stringify(raw)}.`);
  }
  const whenFull = def.whenFull === undefined || (def.whenFull as string) === '' ? 'refuse' : def.whenFull;
  if (whenFull !== 'refuse' && whenFull !== 'drop-oldest') {
    throw new LaneVisionError('DATASET_OPTIONS', `"When full" must be refuse or drop-oldest, got ${JSON.stringify(whenFull)}.`);
  }
  return max === 0 ? {} : { maxPerLabel: max, whenLabelFull: whenFull };
}
