/**
 * Exports a stored model version as a self-contained model another program runs without
 * Lane Vision: the backbone (the version's tuned copy when it has one), the head and the
 * softmax in one file set, plus `lane-vision-export.json` saying exactly how to feed it.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { loadBackbone } from '../engine/load-backbone.js';
import { readModelFolder } from '../engine/model-files.js';
import type { Backbone, InputRange } from '../engine/types.js';
import { LaneVisionError } from '../errors.js';
import { publishFolderAtomic } from '../fs/atomic.js';
import type { CropRegion } from '../image/types.js';
import { backboneCompatibility, type ModelMetadata, type ModelStore, type VersionRef } from '../model-store/index.js';
import { headLayers } from './head-layers.js';
import { ONNX_EXPORT_INPUT, ONNX_EXPORT_OUTPUT, ONNX_OPSET, exportOnnx } from './onnx-export.js';
import { exportTfjs } from './tfjs-export.js';

export const EXPORT_FORMATS = ['onnx', 'tfjs', 'tm'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const EXPORT_DESCRIPTION_FILE = 'lane-vision-export.json';
export const ONNX_EXPORT_FILE = 'model.onnx';

/** What `lane-vision-export.json` holds: everything a program needs to feed the model and read its output. */
export interface ExportDescription {
  format: ExportFormat;
  /** Files of the model, relative to the export folder. */
  files: string[];
  /** [height, width] of the model's input. */
  inputSize: [number, number];
  layout: 'NHWC';
  dtype: 'float32';
  /** RGB bytes 0..255 mapped linearly onto [lo, hi]. */
  inputRange: [number, number];
  /** Cut out of the (upright) frame first: null, a centred fraction of width and height, or a rectangle in fractions. */
  crop: null | { fraction: number } | { left: number; top: number; width: number; height: number };
  /** Then brought to inputSize: `cover` scales to fill and cuts the excess equally from both sides. */
  resize: 'cover';
  /** One probability per label, in this order. */
  labels: { label: string; code: number }[];
  output: { name: string; kind: 'probabilities' };
  input: { name: string };
  version: number;
  backboneId: string;
  /** Only when the version has its own fine-tuned backbone (it is inside the export). */
  tunedFrom?: string;
  head: string;
  opset?: number;
  accuracy: number | null;
  exportedAt: string;
}

export interface ExportOptions {
  store: ModelStore;
  version?: VersionRef;
  format: ExportFormat;
  /** Folder to create; must not exist yet (an export is never written over another one). */
  outDir: string;
}

export interface ExportResult {
  dir: string;
  description: ExportDescription;
}

const RANGES: Record<InputRange, [number, number]> = { '[-1,1]': [-1, 1], '[0,1]': [0, 1], '[0,255]': [0, 255] };

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(options.format)) {
    throw new LaneVisionError('EXPORT_UNSUPPORTED', `Unknown export format "${String(options.format)}": use ${EXPORT_FORMATS.join(', ')}`);
  }
  const outDir = path.resolve(options.outDir);
  if (await fsp.stat(outDir).then(() => true, () => false)) {
    throw new LaneVisionError('EXPORT_TARGET_EXISTS', `${outDir} already exists; name a new folder for the export`);
  }
  const model = await options.store.loadModel(options.version ?? 'active');
  const { metadata } = model;
  const head = headLayers(model.head);
  const crop = exportCrop(metadata);
  if (options.format === 'tm') checkTeachableMachine(metadata, crop);

  const backbone = await loadVersionBackbone(metadata, model.tunedBackboneDir);
  try {
    const files = await readModelFolder(backbone.location);
    const { width, height } = backbone.inputSize;
    const description: ExportDescription = {
      format: options.format,
      files: [],
      inputSize: [height, width],
      layout: 'NHWC',
      dtype: 'float32',
      inputRange: RANGES[backbone.inputRange],
      crop,
      resize: 'cover',
      labels: metadata.classes.map((c) => ({ label: c.label, code: c.code })),
      input: { name: ONNX_EXPORT_INPUT },
      output: { name: ONNX_EXPORT_OUTPUT, kind: 'probabilities' },
      version: metadata.version,
      backboneId: metadata.backbone.id,
      ...(metadata.backbone.tuned ? { tunedFrom: metadata.backbone.tuned.from } : {}),
      head: metadata.head.kind,
      accuracy: holdoutAccuracy(metadata),
      exportedAt: new Date().toISOString(),
    };
    await publishFolderAtomic(outDir, async (temp) => {
      if (options.format === 'onnx') {
        const bytes = await exportOnnx({
          files,
          featureLayer: backbone.featureLayer,
          inputSize: backbone.inputSize,
          inputRange: backbone.inputRange,
          head,
          labels: metadata.labels,
          docString: `Lane Vision model v${metadata.version} (${metadata.head.kind} head on ${metadata.backbone.id}); feed it as ${EXPORT_DESCRIPTION_FILE} says`,
          metadata: { version: String(metadata.version), backboneId: metadata.backbone.id },
        });
        await fsp.writeFile(path.join(temp, ONNX_EXPORT_FILE), bytes);
        description.files = [ONNX_EXPORT_FILE];
        description.opset = ONNX_OPSET;
      } else {
        const { modelJson, weights } = await exportTfjs({ files, featureLayer: backbone.featureLayer, head });
        await fsp.writeFile(path.join(temp, 'model.json'), JSON.stringify(modelJson));
        await fsp.writeFile(path.join(temp, 'weights.bin'), weights);
        description.files = ['model.json', 'weights.bin'];
        // A layers model's input and output are named by its layers; programs use predict().
        description.input = { name: ((modelJson.modelTopology as any)?.config?.input_layers?.[0]?.[0] as string) ?? 'input' };
        description.output = { name: 'lv_head_' + (head.layers.length - 1), kind: 'probabilities' };
        if (options.format === 'tm') {
          await fsp.writeFile(path.join(temp, 'metadata.json'), JSON.stringify(teachableMachineMetadata(metadata), null, 2) + '\n');
          description.files.push('metadata.json');
        }
      }
      await fsp.writeFile(path.join(temp, EXPORT_DESCRIPTION_FILE), JSON.stringify(description, null, 2) + '\n');
    });
    return { dir: outDir, description };
  } finally {
    backbone.release();
  }
}

function holdoutAccuracy(metadata: ModelMetadata): number | null {
  const holdout = (metadata.metrics as { holdout?: { accuracy?: unknown } }).holdout;
  return typeof holdout?.accuracy === 'number' ? holdout.accuracy : null;
}

/** The crop frames get before the resize; fit policies the description cannot state are refused. */
function exportCrop(metadata: ModelMetadata): ExportDescription['crop'] {
  const fit = metadata.backbone.fit;
  if (fit.kind === 'contain') {
    throw new LaneVisionError('EXPORT_UNSUPPORTED', `Model v${metadata.version} pads frames to fit (fit "contain"); an export states crop + cover resize only. Retrain with fit "cover" to export it`);
  }
  if (fit.kind === 'roi') {
    throw new LaneVisionError(
      'EXPORT_UNSUPPORTED',
      `Model v${metadata.version} reads a pixel region of interest (${fit.left},${fit.top} ${fit.width}x${fit.height}) of a known camera; an export states crops as fractions of the frame only. Crop at the camera (lane-camera's region) and retrain without the region to export it`,
    );
  }
  return fit.crop ? copyCrop(fit.crop) : null;
}

function copyCrop(crop: CropRegion): NonNullable<ExportDescription['crop']> {
  return 'fraction' in crop ? { fraction: crop.fraction } : { left: crop.left, top: crop.top, width: crop.width, height: crop.height };
}

/** Teachable Machine's image models take a centred square of the frame at 224x224, scaled to [-1, 1], from a MobileNet layers model. */
function checkTeachableMachine(metadata: ModelMetadata, crop: ExportDescription['crop']): void {
  const b = metadata.backbone;
  const problems: string[] = [];
  if (b.inputSize.width !== 224 || b.inputSize.height !== 224) problems.push(`its input is ${b.inputSize.width}x${b.inputSize.height}, TM's is 224x224`);
  if (b.inputRange !== '[-1,1]') problems.push(`it scales pixels to ${b.inputRange}, TM to [-1,1]`);
  if (crop) problems.push('it crops frames before the resize, which TM does not');
  if (!/mobilenet/i.test(`${b.preset ?? ''} ${b.source} ${b.id}`)) problems.push(`its backbone ${b.source} is not a MobileNet`);
  if (problems.length) {
    throw new LaneVisionError('EXPORT_NOT_TM_COMPATIBLE', `Model v${metadata.version} cannot be a Teachable Machine export: ${problems.join('; ')}. Use --format tfjs or onnx`);
  }
}

/** metadata.json as Teachable Machine writes it (field names of its Metadata). */
function teachableMachineMetadata(metadata: ModelMetadata): Record<string, unknown> {
  return {
    tfjsVersion: metadata.tfjsVersion,
    tmVersion: '2.4.10',
    packageVersion: '0.8.4',
    packageName: '@teachablemachine/image',
    timeStamp: metadata.timeStamp,
    userMetadata: { ...metadata.userMetadata, laneVision: { version: metadata.version, backboneId: metadata.backbone.id, codes: metadata.classes } },
    modelName: metadata.modelName,
    labels: metadata.labels,
    imageSize: 224,
  };
}

/** The backbone the version's head reads: its tuned copy, else the recorded source (refused when its features differ). */
async function loadVersionBackbone(metadata: ModelMetadata, tunedBackboneDir: string | undefined): Promise<Backbone> {
  const d = metadata.backbone;
  const backbone = await loadBackbone(
    {
      source: tunedBackboneDir ?? d.source,
      ...(d.featureLayer ? { featureLayer: d.featureLayer } : {}),
      inputSize: { ...d.inputSize },
      inputRange: d.inputRange,
    },
    // Only its files and settings are needed here; tfjs loads without converting.
    { engine: 'tfjs' },
  );
  const fit = backboneCompatibility(d, backbone);
  if (!fit.fits) {
    backbone.release();
    throw new LaneVisionError('MODEL_BACKBONE_MISMATCH', `Model v${metadata.version} cannot use the features of ${backbone.source}: ${fit.reason ?? 'different features'}`);
  }
  return backbone;
}
