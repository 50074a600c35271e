/**
 * Editor settings of a lane-backbone node -> what the engine loads. Pure, so the rules
 * (default source, relative folders, region numbers) are in one place.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { NodeDef } from 'node-red';
import { LaneVisionError } from '../../src/errors.js';
import {
  findPreset,
  parseBackendPreference,
  parseEnginePreference,
  type Backbone,
  type BackboneSpec,
  type BackendPreference,
  type EnginePreference,
} from '../../src/engine/index.js';
import type { FitPolicy } from '../../src/image/index.js';
import { resolveInUserDir } from '../shared/paths.js';

export const DEFAULT_BACKBONE_SOURCE = 'mobilenet-v2-0.35';

export interface LaneBackboneDef extends NodeDef {
  source: string;
  featureLayer: string;
  fit: 'cover' | 'contain' | 'roi';
  roiLeft: string | number;
  roiTop: string | number;
  roiWidth: string | number;
  roiHeight: string | number;
  backend: string;
  engine?: string;
  /** float32 (default) or int8; flows saved before the setting have none. */
  precision?: string;
  /** Folder of the lane's frames int8 is calibrated on (relative: in the user directory). */
  calibration?: string;
}

/**
 * Presets and URLs stay as they are; a relative folder is found in the Node-RED user
 * directory. A bare word that is no folder there is left alone, so the engine answers
 * with its "neither a folder nor a preset" message listing the presets.
 */
export function backboneSourceFrom(raw: unknown, userDir: string): string {
  const source = typeof raw === 'string' && raw.trim() ? raw.trim() : DEFAULT_BACKBONE_SOURCE;
  if (/^(https?|file):/i.test(source) || findPreset(source) || path.isAbsolute(source)) return source;
  const inUserDir = resolveInUserDir(userDir, source);
  return /[\\/]/.test(source) || fs.existsSync(inUserDir) ? inUserDir : source;
}

export function backboneSpecFrom(def: Partial<LaneBackboneDef>, userDir: string): BackboneSpec {
  const spec: BackboneSpec = { source: backboneSourceFrom(def.source, userDir) };
  if (typeof def.featureLayer === 'string' && def.featureLayer.trim()) spec.featureLayer = def.featureLayer.trim();
  const precision = typeof def.precision === 'string' ? def.precision.trim() : '';
  if (precision && precision !== 'float32') {
    // normaliseBackboneSpec names what is wrong (an unknown precision, int8 without frames).
    spec.precision = precision as BackboneSpec['precision'];
    const calibration = typeof def.calibration === 'string' ? def.calibration.trim() : '';
    if (calibration) spec.calibration = resolveInUserDir(userDir, calibration);
  }
  return spec;
}

export function backendPreferenceFrom(def: Partial<LaneBackboneDef>): BackendPreference {
  return parseBackendPreference(def.backend);
}

/** Flows saved before the setting existed have none: auto. */
export function enginePreferenceFrom(def: Partial<LaneBackboneDef>): EnginePreference {
  return parseEnginePreference(def.engine === undefined || def.engine === '' ? 'auto' : def.engine);
}

/** The fit policy; throws BACKBONE_FIT_INVALID naming the field when a region number is unusable. */
export function fitPolicyFrom(def: Partial<LaneBackboneDef>): FitPolicy {
  const kind = def.fit === undefined || (def.fit as string) === '' ? 'cover' : def.fit;
  if (kind === 'cover' || kind === 'contain') return { kind };
  if (kind !== 'roi') {
    throw new LaneVisionError('BACKBONE_FIT_INVALID', `Fit must be cover, contain or roi, got ${JSON.stringify(kind)}.`);
  }
  const read = (field: 'roiLeft' | 'roiTop' | 'roiWidth' | 'roiHeight', name: string, min: number): number => {
    const raw = def[field];
    const value = raw === undefined || raw === null || String(raw).trim() === '' ? NaN : Number(raw);
    if (!Number.isSafeInteger(value) || value < min) {
      throw new LaneVisionError(
        'BACKBONE_FIT_INVALID',
        `The region of interest needs ${name} as a whole number of pixels >= ${min}, got ${JSON.stringify(raw ?? '')}.`,
      );
    }
    return value;
  };
  return { kind: 'roi', left: read('roiLeft', 'left', 0), top: read('roiTop', 'top', 0), width: read('roiWidth', 'width', 1), height: read('roiHeight', 'height', 1) };
}

/**
 * What runs the backbone, as status and log name it: the tfjs backend ("wasm"), or
 * engine and provider for another engine ("onnxruntime/cpu").
 */
export function runtimeName(backbone: { engine: Pick<Backbone['engine'], 'name'>; backend: Pick<Backbone['backend'], 'name'> }): string {
  return backbone.engine.name === 'tfjs' ? backbone.backend.name : `${backbone.engine.name}/${backbone.backend.name}`;
}
