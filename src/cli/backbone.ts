/**
 * Which backbone a command runs: the one named on the command line, or the one a stored
 * model was trained on (read from its descriptor), refused when its features would not
 * fit the stored head.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LaneVisionError } from '../errors.js';
import { loadBackbone } from '../engine/load-backbone.js';
import type { BackendPreference } from '../engine/backend.js';
import { findPreset } from '../engine/presets.js';
import { ONNX_THREADS_ENV_VAR } from '../engine/onnx/engine-preference.js';
import type { Backbone, BackboneSpec, EnginePreference } from '../engine/types.js';
import { backboneCompatibility, type BackboneDescriptor, type ModelMetadata } from '../model-store/index.js';
import { formatDownloadProgress, type DownloadProgress } from '../engine/download-cache.js';
import type { LoadStage } from '../engine/load-backbone.js';
import { backendOption, engineOption, requiredOption } from './args.js';
import type { Output } from './output.js';

/**
 * A local path is made absolute, so a model trained from a relative path still finds its
 * backbone when used from another folder; presets and URLs stay as they are (a preset
 * name wins over a folder of that name, as in the engine's loader).
 */
export function absoluteSource(source: string): string {
  const text = source.trim();
  if (/^[a-z][a-z0-9+.-]+:\/\//i.test(text) || findPreset(text)) return text;
  return fs.existsSync(text) || /[\\/]/.test(text) || text.startsWith('.') ? path.resolve(text) : text;
}

export interface BackboneChoice {
  backend?: BackendPreference;
  /** --engine: ONNX Runtime or TensorFlow.js for the forward pass. */
  engine?: EnginePreference;
  /** --layer: feature layer or node. */
  featureLayer?: string;
  /** --int8: the folder of frames an int8 backbone is calibrated on. */
  int8Calibration?: string;
}

/** --backend, --engine, --layer and --int8 as the loader takes them. */
export function backboneChoice(command: string, values: { backend?: string; engine?: string; layer?: string; int8?: string }): BackboneChoice {
  const choice: BackboneChoice = { backend: backendOption(command, values.backend), engine: engineOption(command, values.engine), featureLayer: values.layer };
  if (values.int8 !== undefined) choice.int8Calibration = path.resolve(requiredOption(command, 'int8', values.int8));
  return choice;
}

/** The spec with int8 asked for by --int8. */
function withPrecision(spec: BackboneSpec, choice: BackboneChoice): BackboneSpec {
  return choice.int8Calibration ? { ...spec, precision: 'int8', calibration: choice.int8Calibration } : spec;
}

/** Loads the backbone named on the command line (one user; the caller releases it), showing any download on `out`. */
export function loadNamedBackbone(source: string, choice: BackboneChoice = {}, out?: Output): Promise<Backbone> {
  const spec: BackboneSpec = { source: absoluteSource(source) };
  if (choice.featureLayer) spec.featureLayer = choice.featureLayer;
  return loadBackbone(withPrecision(spec, choice), {
    backend: choice.backend,
    engine: choice.engine,
    onnxThreads: commandOnnxThreads(),
    onProgress: downloadReporter(out),
    onStage: stageReporter(out, spec.source),
  });
}

/** A line on stderr for the slow step of a first start, so a silent minute is explained. */
function stageReporter(out: Output | undefined, source: string): ((stage: LoadStage) => void) | undefined {
  if (!out) return undefined;
  return (stage) => {
    if (stage === 'converting') out.note(`converting ${source} for ONNX Runtime (first use of this model; cached afterwards)`);
  };
}

/**
 * Download progress for the terminal: a line rewritten in place on a TTY (the engine calls
 * at most every 250 ms), and one summary line when the download ends, TTY or not.
 */
export function downloadReporter(out: Output | undefined): ((progress: DownloadProgress) => void) | undefined {
  if (!out) return undefined;
  return (progress) => {
    if (!progress.done) return out.progress(`downloading ${progress.url}: ${formatDownloadProgress(progress)}`);
    out.progress(undefined);
    out.note(`downloaded ${progress.url} (${formatDownloadProgress(progress)})`);
  };
}

/**
 * A command owns the machine (no lane shares its cores, unlike in Node-RED), so ONNX
 * Runtime gets them all unless LANE_VISION_ONNX_THREADS says otherwise.
 */
function commandOnnxThreads(): number | undefined {
  return process.env[ONNX_THREADS_ENV_VAR] ? undefined : Math.min(4, os.availableParallelism());
}

/**
 * How to load the backbone a stored head was trained on: its recorded source with the
 * recorded layer, input size and scaling. When the recorded source was a local file that
 * is gone and the descriptor names the preset giving the same features, the preset is used.
 */
export function specForDescriptor(descriptor: BackboneDescriptor): BackboneSpec {
  let source = descriptor.source;
  const local = !/^[a-z][a-z0-9+.-]+:\/\//i.test(source) && path.isAbsolute(source);
  if (local && !fs.existsSync(source) && descriptor.preset) source = descriptor.preset;
  return {
    source,
    ...(descriptor.featureLayer && source !== descriptor.preset ? { featureLayer: descriptor.featureLayer } : {}),
    inputSize: { ...descriptor.inputSize },
    inputRange: descriptor.inputRange,
  };
}

/**
 * Loads the backbone for a stored model: `override` (--backbone) when given, else the one
 * recorded in its metadata. Throws MODEL_BACKBONE_MISMATCH when the head cannot use its features.
 */
export async function loadBackboneForModel(
  metadata: ModelMetadata,
  override: string | undefined,
  choice: BackboneChoice = {},
  /** A fine-tuned version's own backbone folder (LoadedModel.tunedBackboneDir): loaded instead of the recorded source. */
  tunedBackboneDir?: string,
  out?: Output,
): Promise<Backbone> {
  const recorded = tunedBackboneDir ? { ...specForDescriptor(metadata.backbone), source: tunedBackboneDir } : specForDescriptor(metadata.backbone);
  const backbone = override
    ? await loadNamedBackbone(override, choice, out)
    : await loadBackbone(withPrecision(choice.featureLayer ? { ...recorded, featureLayer: choice.featureLayer } : recorded, choice), {
        backend: choice.backend,
        engine: choice.engine,
        onnxThreads: commandOnnxThreads(),
        onProgress: downloadReporter(out),
        onStage: stageReporter(out, recorded.source),
      });
  const fit = backboneCompatibility(metadata.backbone, backbone);
  if (!fit.fits) {
    backbone.release();
    throw new LaneVisionError(
      'MODEL_BACKBONE_MISMATCH',
      `Model v${metadata.version} cannot use the features of ${backbone.source}: ${fit.reason ?? 'different features'}`,
    );
  }
  return backbone;
}
