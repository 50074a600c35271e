/**
 * Imports an image model exported by Teachable Machine ("Upload (shareable link)" /
 * "Download my model", TensorFlow.js): model.json + weights.bin + metadata.json.
 *
 * A TM model is a Sequential of two parts: layer 0 is a truncated MobileNet (V2 out_relu
 * + global average pooling, or V1 conv_pw_13_relu + flatten), layer 1 a small Sequential
 * of Dense layers. Only layer 1 is taken as a TrainedHead; the backbone is recorded by
 * identity so the engine can rebuild the same features. Weights are decoded by
 * tf.io.decodeWeights, which also undoes uint8/uint16/float16 quantization.
 *
 * The backbone descriptor names every way to get the head's features back:
 * - `id`: the id the engine gives the export folder loaded as a backbone (default layer);
 * - `featureLayer` + `featureLayerAliases`: the backbone sub-model, its pooling layer and
 *   the layer that pooling reads, which give the same vector (the engine average-pools);
 * - `preset`: the MobileNetV2 preset whose default features these are (TM downloads its
 *   backbone from that preset's URL and pools `out_relu` the same way);
 * - `weightsFingerprint`: sha256 of the backbone's own weight bytes, equal for the
 *   backbone saved on its own under another model.json.
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import { initBackend, tf } from '../engine/backend.js';
import { fingerprintWeights, formatBackboneId } from '../engine/backbone-id.js';
import { MAX_TM_METADATA_BYTES, MODEL_JSON, TM_METADATA_JSON, readModelFolder, weightEntryBytes, type ModelFiles } from '../engine/model-files.js';
import { validateLabel } from '../dataset/labels.js';
import { findPreset } from '../engine/presets.js';
import { type DownloadOptions, downloadModel } from '../engine/download-cache.js';
import { resolveModelJsonUrl } from '../engine/model-source.js';
import { LaneVisionError } from '../errors.js';
import type { DenseLayerWeights, TrainedHead } from '../training/types.js';
import type { ModelStore } from './store.js';
import type { BackboneDescriptor, ModelMetadata, VersionSummary } from './types.js';

const debug = createDebug('lane-vision:model-store');

/** Output channels of the last MobileNet block -> width multiplier (alpha), per TM's supported alphas. */
const V2_ALPHA_BY_BLOCK16_CHANNELS: Record<number, number> = { 112: 0.35, 160: 0.5, 240: 0.75, 320: 1 };
const V1_ALPHA_BY_PW13_CHANNELS: Record<number, number> = { 256: 0.25, 512: 0.5, 768: 0.75, 1024: 1 };

export interface TeachableMachineExport {
  head: TrainedHead;
  labels: string[];
  backbone: BackboneDescriptor;
  /** The export's metadata.json as found. */
  metadata: Record<string, unknown>;
  modelName: string;
  /** sha256 over the export's model.json and weights, when read from files. */
  fingerprint?: string;
}

interface LayerJson {
  class_name: string;
  config: {
    name?: string;
    layers?: LayerJson[];
    units?: number;
    activation?: string;
    use_bias?: boolean;
    batch_input_shape?: (number | null)[];
    /** Functional models: [[layer name, node, tensor]]. */
    output_layers?: [string, number, number][];
  };
  name?: string;
}

/** Reads an export folder (model.json, its weight shards, metadata.json). */
export async function readTeachableMachineExport(exportDir: string): Promise<TeachableMachineExport> {
  let files: ModelFiles;
  try {
    files = await readModelFolder(exportDir);
  } catch (err) {
    if (err instanceof LaneVisionError) invalid(err.message);
    throw err;
  }
  const metadata = await readJsonFile(path.join(files.dir, TM_METADATA_JSON), MAX_TM_METADATA_BYTES);
  return parseTeachableMachineExport({
    modelJson: files.modelJson,
    metadata,
    weightData: files.weightData,
    source: path.join(files.dir, MODEL_JSON),
    folder: files.dir,
    fingerprint: files.fingerprint,
  });
}

/**
 * Turns an export already in memory (e.g. uploaded through the editor) into a head,
 * labels and backbone identity. `weightData` holds the shards in manifest order.
 */
export async function parseTeachableMachineExport(files: {
  modelJson: unknown;
  metadata: unknown;
  /** The shards in manifest order (one buffer or one per shard). */
  weightData: ArrayBuffer | ArrayBuffer[];
  /** Where it came from (recorded as the backbone source). */
  source: string;
  /** The folder the files were read from, if they were: with `fingerprint`, gives the id the engine would give it. */
  folder?: string;
  /** sha256 over model.json text and the shards (as `readModelFolder` computes it), if known. */
  fingerprint?: string;
}): Promise<TeachableMachineExport> {
  const { modelJson, metadata, weightData, source, folder, fingerprint } = files;
  const meta = metadata as { labels?: unknown; grayscale?: unknown; imageSize?: unknown; modelName?: unknown };
  if (!meta || typeof meta !== 'object' || !Array.isArray(meta.labels)) invalid('metadata.json has no labels list');
  if (meta.grayscale === true) unsupported('grayscale Teachable Machine models are not supported; export a colour model');
  const metadataBytes = Buffer.byteLength(JSON.stringify(meta));
  if (metadataBytes > MAX_TM_METADATA_BYTES) invalid(`metadata.json is ${metadataBytes} bytes; a Teachable Machine one is at most ${MAX_TM_METADATA_BYTES}`);
  const labels = checkedLabels(meta.labels as unknown[]);

  const model = modelJson as { modelTopology?: { config?: unknown; model_config?: { config?: unknown } }; weightsManifest?: unknown };
  const topology = model?.modelTopology;
  const outerConfig = (topology?.model_config?.config ?? topology?.config) as LayerJson['config'] | LayerJson[] | undefined;
  const outerLayers = Array.isArray(outerConfig) ? outerConfig : outerConfig?.layers;
  if (!Array.isArray(outerLayers) || outerLayers.length !== 2) {
    unsupported('model.json is not a Teachable Machine image model (expected a Sequential of backbone + head)');
  }
  const [backboneLayer, headLayer] = outerLayers as LayerJson[];
  const headLayers = headLayer?.config?.layers;
  if (!Array.isArray(headLayers)) unsupported('layer 1 of model.json is not a Sequential head');
  const dense = (headLayers as LayerJson[]).filter((l) => l.class_name !== 'Dropout'); // dropout does nothing at inference
  for (const layer of dense) {
    if (layer.class_name !== 'Dense') unsupported(`the head contains a ${layer.class_name} layer; only Dense and Dropout are supported`);
  }
  if (dense.length === 0) unsupported('the head has no Dense layer');

  await initBackend();
  let specs: tf.io.WeightsManifestEntry[];
  let tensors: tf.NamedTensorMap;
  try {
    specs = tf.io.getWeightSpecs(model.weightsManifest as tf.io.WeightsManifestConfig);
    const needed = specs.reduce((sum, s) => sum + (weightEntryBytes(s) ?? 0), 0);
    const have = (Array.isArray(weightData) ? weightData : [weightData]).reduce((sum, b) => sum + b.byteLength, 0);
    if (have < needed) invalid(`weight files hold ${have} bytes, the manifest needs ${needed}`);
    tensors = tf.io.decodeWeights(weightData, specs);
  } catch (err) {
    if (err instanceof LaneVisionError) throw err;
    return invalid(`cannot decode the weights: ${(err as Error).message}`);
  }
  try {
    const names = Object.keys(tensors);
    const headWeights = new Set<string>();
    const find = (suffix: string): tf.Tensor | undefined => {
      const hits = names.filter((n) => n === suffix || n.endsWith(`/${suffix}`));
      if (hits.length > 1) unsupported(`weight ${suffix} is ambiguous (${hits.join(', ')})`);
      if (hits.length) headWeights.add(hits[0]);
      return hits.length ? tensors[hits[0]] : undefined;
    };
    const layers: DenseLayerWeights[] = dense.map((layer, i) => {
      const name = layer.config.name ?? layer.name;
      const kernel = name ? find(`${name}/kernel`) : undefined;
      if (!kernel || kernel.rank !== 2) return invalid(`weights of head layer ${String(name)} are missing from model.json`);
      const [inputSize, outputSize] = kernel.shape;
      const activation = layer.config.activation ?? 'linear';
      if (activation !== 'relu' && activation !== 'softmax' && activation !== 'linear') {
        unsupported(`head layer ${name} uses activation "${activation}"`);
      }
      const useBias = layer.config.use_bias !== false;
      const bias = useBias ? find(`${name}/bias`) : undefined;
      if (useBias && (!bias || bias.size !== outputSize)) invalid(`bias of head layer ${name} is missing or the wrong size`);
      debug('TM head layer %d %s: %dx%d %s%s', i, name, inputSize, outputSize, activation, useBias ? '' : ' (no bias)');
      return {
        inputSize,
        outputSize,
        kernel: Float32Array.from(kernel.dataSync() as Float32Array),
        // TM's last layer has use_bias: false; a zero bias is the same arithmetic.
        bias: bias ? Float32Array.from(bias.dataSync() as Float32Array) : new Float32Array(outputSize),
        activation: activation as DenseLayerWeights['activation'],
      };
    });
    const last = layers[layers.length - 1];
    if (last.activation !== 'softmax') unsupported(`the head ends in "${last.activation}", not softmax`);
    if (last.outputSize !== labels.length) invalid(`the head has ${last.outputSize} outputs but metadata.json lists ${labels.length} labels`);

    const backbone = describeBackbone(backboneLayer, specs, tensors, {
      featureSize: layers[0].inputSize,
      metadataImageSize: meta.imageSize,
      source,
      exportId: folder !== undefined && fingerprint !== undefined ? { folder, fingerprint } : undefined,
      weightsFingerprint: fingerprintWeights(specs, weightData, (name) => !headWeights.has(name)),
    });
    const head: TrainedHead = {
      kind: layers.length === 1 ? 'softmax' : 'mlp',
      featureSize: layers[0].inputSize,
      classCount: labels.length,
      normalise: false, // TM feeds the pooled features to its head as they are
      layers,
    };
    return {
      head,
      labels,
      backbone,
      metadata: metadata as Record<string, unknown>,
      modelName: typeof meta.modelName === 'string' ? meta.modelName : 'teachable-machine-model',
      fingerprint,
    };
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** Imports a TM export folder as the next version of `store`. */
export async function importTeachableMachineExport(
  store: ModelStore,
  exportDir: string,
  options: { activate?: boolean; notes?: string; modelName?: string; /** Recorded as where it came from; default the folder. */ source?: string } = {},
): Promise<VersionSummary & { metadata: ModelMetadata }> {
  const imported = await readTeachableMachineExport(exportDir);
  const userMetadata = imported.metadata.userMetadata;
  return store.saveModel({
    head: imported.head,
    labels: imported.labels,
    backbone: imported.backbone,
    metrics: {},
    datasetFingerprint: null,
    modelName: options.modelName ?? imported.modelName,
    notes: options.notes,
    userMetadata: userMetadata && typeof userMetadata === 'object' ? (userMetadata as Record<string, unknown>) : {},
    importedFrom: {
      kind: 'teachable-machine',
      source: options.source ?? path.resolve(exportDir),
      metadata: imported.metadata,
      ...(imported.fingerprint ? { fingerprint: imported.fingerprint } : {}),
    },
    activate: options.activate,
  });
}

export interface TeachableMachineImportOptions extends Pick<DownloadOptions, 'cacheDir' | 'onProgress'> {
  activate?: boolean;
  notes?: string;
  modelName?: string;
}

/**
 * Imports a TM export from a folder, or from a URL: the shareable link
 * (https://teachablemachine.withgoogle.com/models/<id>/), a folder URL or its model.json
 * URL. A URL is downloaded into the model cache with its metadata.json, as a backbone URL
 * is, so the version's backbone (the export itself) loads offline afterwards.
 */
export async function importTeachableMachine(
  store: ModelStore,
  source: string,
  options: TeachableMachineImportOptions = {},
): Promise<VersionSummary & { metadata: ModelMetadata }> {
  const text = typeof source === 'string' ? source.trim() : '';
  if (!text) throw new LaneVisionError('TM_IMPORT_INVALID', 'Name the Teachable Machine export to import: its folder, its shareable link or its model.json URL');
  const { activate, notes, modelName } = options;
  if (!/^https?:\/\//i.test(text)) return importTeachableMachineExport(store, text, { activate, notes, modelName });
  const modelJsonUrl = resolveModelJsonUrl(text);
  const folder = await downloadModel(modelJsonUrl, { cacheDir: options.cacheDir, onProgress: options.onProgress });
  const hasMetadata = await fsp.stat(path.join(folder, TM_METADATA_JSON)).then((s) => s.isFile(), () => false);
  if (!hasMetadata) {
    invalid(`${modelJsonUrl} has no ${TM_METADATA_JSON} beside it (it holds the class names), so it is not a Teachable Machine image export`);
  }
  return importTeachableMachineExport(store, folder, { activate, notes, modelName, source: modelJsonUrl });
}

/** Identifies the MobileNet inside the export from its weight shapes (names are Keras'). */
function describeBackbone(
  layer: LayerJson,
  specs: tf.io.WeightsManifestEntry[],
  tensors: tf.NamedTensorMap,
  found: {
    featureSize: number;
    metadataImageSize: unknown;
    source: string;
    /** Folder and fingerprint the export was read with, when read from a folder. */
    exportId?: { folder: string; fingerprint: string };
    weightsFingerprint: string;
  },
): BackboneDescriptor {
  const channels = (pattern: RegExp): number | undefined => {
    const spec = specs.find((s) => pattern.test(s.name));
    return spec ? tensors[spec.name].shape[3] : undefined;
  };
  const v2 = channels(/(^|\/)block_16_project\/kernel$/);
  const v1 = channels(/(^|\/)conv_pw_13\/kernel$/);
  const mobileNetVersion = v2 !== undefined ? 2 : v1 !== undefined ? 1 : undefined;
  const alpha = v2 !== undefined ? V2_ALPHA_BY_BLOCK16_CHANNELS[v2] : v1 !== undefined ? V1_ALPHA_BY_PW13_CHANNELS[v1] : undefined;
  if (mobileNetVersion === undefined || alpha === undefined) {
    unsupported('the backbone (layer 0) is not a MobileNet V1/V2 of a width Teachable Machine uses');
  }
  const side = Number(found.metadataImageSize) || findInputSide(layer) || 224;
  const inputSize = { width: side, height: side };
  const inputRange = '[-1,1]' as const;
  // The engine's default feature layer for the export folder is this sub-model (the layer before the head).
  const backboneName = layer.config.name ?? layer.name ?? unsupported('the backbone (layer 0) has no name');
  const aliases = sameFeatureLayers(layer).filter((name) => name !== backboneName);
  // The preset stands for these features only if its default layer is one of the layers
  // that give them (V2: TM pools out_relu, the preset's layer); otherwise none is claimed.
  const preset = findPreset(`mobilenet-v${mobileNetVersion}-${(alpha as number).toFixed(2)}`);
  const presetGivesTheseFeatures = preset?.featureLayer !== undefined && aliases.includes(preset.featureLayer);
  const network = `mobilenet-v${mobileNetVersion}-${alpha}`;
  return {
    id: found.exportId
      ? formatBackboneId({
          origin: `folder:${path.basename(found.exportId.folder)}`,
          featureLayer: backboneName,
          inputSize,
          inputRange,
          weights: found.exportId.fingerprint,
        })
      : // Read from memory: no id the engine would give, so the network and its weights name it.
        `teachable-machine:${network}:${found.weightsFingerprint.slice(0, 16)}`,
    source: found.source,
    ...(presetGivesTheseFeatures ? { preset: preset.name } : {}),
    featureLayer: backboneName,
    ...(aliases.length ? { featureLayerAliases: aliases } : {}),
    weightsFingerprint: found.weightsFingerprint,
    featureSize: found.featureSize,
    inputSize,
    // TM scales pixels as x / 127 - 1 (its utils/tf.ts capture()): [-1, 1] up to 0.8 %.
    inputRange,
    // TM crops the centre square, then resizes: that is "cover".
    fit: { kind: 'cover' },
  };
}

/**
 * Layers inside the backbone sub-model whose output, average-pooled by the engine, is the
 * sub-model's output: its last layer, and when that is a global average pooling, the layer
 * it reads (for a nested functional model, that model's output layer too).
 */
function sameFeatureLayers(backbone: LayerJson): string[] {
  const nameOf = (l: LayerJson | undefined) => l?.config?.name ?? l?.name;
  const inner = backbone.config.layers ?? [];
  const last = inner[inner.length - 1];
  const names = [nameOf(backbone), nameOf(last)];
  if (last?.class_name === 'GlobalAveragePooling2D' && inner.length >= 2) {
    const pooled = inner[inner.length - 2];
    names.push(nameOf(pooled));
    const outputs = pooled.config.output_layers;
    if (Array.isArray(outputs) && outputs.length === 1) names.push(outputs[0][0]);
  }
  return [...new Set(names.filter((n): n is string => typeof n === 'string' && n !== ''))];
}

function findInputSide(layer: LayerJson): number | undefined {
  const shape = layer.config.batch_input_shape;
  if (Array.isArray(shape) && typeof shape[1] === 'number') return shape[1];
  for (const inner of layer.config.layers ?? []) {
    const found = findInputSide(inner);
    if (found) return found;
  }
  return undefined;
}

async function readJsonFile(file: string, maxBytes: number): Promise<unknown> {
  const stat = await fsp.stat(file).catch((err: Error) => invalid(`cannot read ${file}: ${err.message}`));
  if (stat.size > maxBytes) invalid(`${file} is ${stat.size} bytes; a Teachable Machine metadata.json is at most ${maxBytes}`);
  const text = await fsp.readFile(file, 'utf8').catch((err: Error) => invalid(`cannot read ${file}: ${err.message}`));
  try {
    return JSON.parse(text);
  } catch (err) {
    return invalid(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The dataset's own label rule, so an import cannot bring a label capture or training would refuse. */
function checkedLabels(raw: readonly unknown[]): string[] {
  const labels = raw.map((label, i) => {
    try {
      return validateLabel(label);
    } catch (err) {
      return invalid(`label ${i + 1} of metadata.json: ${(err as Error).message}`);
    }
  });
  const seen = new Set<string>();
  for (const label of labels) {
    if (seen.has(label)) invalid(`label "${label}" appears twice in metadata.json`);
    seen.add(label);
  }
  return labels;
}

function invalid(why: string): never {
  throw new LaneVisionError('TM_IMPORT_INVALID', `Teachable Machine export is incomplete or damaged: ${why}`);
}

function unsupported(why: string): never {
  throw new LaneVisionError('TM_IMPORT_UNSUPPORTED', `Cannot import this Teachable Machine export: ${why}`);
}
