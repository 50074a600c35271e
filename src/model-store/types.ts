/**
 * What a stored model version is on disk and what the store hands back.
 * `ModelMetadata` keeps the field names of Teachable Machine's `Metadata`
 * (tfjsVersion, packageName, packageVersion, modelName, timeStamp, labels, userMetadata,
 * imageSize) so tools that read TM metadata.json still find the labels, and adds what a
 * production lane needs to trust and trace a model.
 */
import type { InputRange } from '../engine/types.js';
import type { FitPolicy } from '../image/types.js';
import type { HeadJson } from '../training/serialise.js';
import type { TrainedHead } from '../training/types.js';
import type { PipelineReport } from '../pipeline/types.js';
import type { CurvePoint, OperatingPoint } from '../open-set/decision.js';
import type { NoveltyIndex } from '../open-set/novelty-index.js';

/** Bumped when the on-disk layout changes incompatibly; older stores stay readable. */
export const MODEL_FORMAT_VERSION = 1;

/** A class of the head: its output index is its position in the list. */
export interface LabelCode {
  label: string;
  /** Stable integer for PLC registers: kept across retrains, never reused. 0 is never assigned. */
  code: number;
}

/** Which backbone produced the features the head was trained on, and how frames were fed to it. */
export interface BackboneDescriptor {
  /**
   * Identity of the backbone, as the engine gives it (`origin|featureLayer|WxH|range|weights`,
   * see src/engine/load-backbone.ts): a loaded backbone with the same id gives the same
   * features. `backboneCompatibility` also accepts the same network loaded another way.
   */
  id: string;
  /** Path or URL of the model.json the backbone was loaded from. */
  source: string;
  /**
   * Engine preset that gives these same features: the preset the backbone was loaded
   * through, or the one an import recognised (a Teachable Machine MobileNetV2 backbone is
   * the preset's default features).
   */
  preset?: string;
  /** Layer (layers model) or node (graph model) whose output is the feature vector. */
  featureLayer?: string;
  /**
   * Other names of layers that give exactly these features in this network (the engine
   * average-pools spatial outputs): for a Teachable Machine backbone its pooling layer and
   * the layer that pooling reads, besides the sub-model ending in them.
   */
  featureLayerAliases?: string[];
  /**
   * sha256 (hex) over the stored bytes of the weights that compute the features, in
   * manifest order, model.json excluded. The weights part of the engine id also covers
   * model.json, so only this recognises the same network saved with another model.json.
   */
  weightsFingerprint?: string;
  /**
   * A fine-tuned backbone: the version holds its own copy (a layers-model folder) whose top
   * blocks were trained from the base backbone `id`. A lane serving the base loads this copy
   * for the version; rolling back to a frozen-feature version serves the base again.
   */
  tuned?: TunedBackbone;
  featureSize: number;
  inputSize: { width: number; height: number };
  inputRange: InputRange;
  fit: FitPolicy;
}

/** The tuned backbone folder's one weights file. */
export const TUNED_WEIGHTS_FILE = 'weights.bin';

export interface TunedBackbone {
  /** Id of the base backbone the version was tuned from (what the lane must have loaded). */
  from: string;
  /** Folder inside the version holding model.json and the tuned weights. */
  folder: string;
  /** sha256 (hex) of the tuned weights file, checked before loading. */
  sha256: string;
  blocks: number;
  /** Layer the frozen bottom ends at. */
  cut: string;
}

/**
 * The head's description in metadata.json: the training module's head format
 * (`serialiseHead`), plus where its weights file is and its checksum.
 */
export interface HeadFileSpec extends HeadJson {
  /** Name of the weights file inside the version folder. */
  file: string;
  /** sha256 (hex) of the weights file, so a damaged file is refused instead of misclassifying. */
  sha256: string;
}

export interface ImportedFrom {
  kind: 'teachable-machine';
  /** Folder or URL the export was read from. */
  source: string;
  /** The export's own metadata.json, unchanged. */
  metadata: Record<string, unknown>;
  /** sha256 over the export's model.json and weight files. */
  fingerprint?: string;
}

export interface ModelMetadata {
  // --- Teachable Machine `Metadata` fields ---
  tfjsVersion: string;
  packageName: string;
  packageVersion: string;
  modelName: string;
  /** ISO time the version was saved (same instant as createdAt). */
  timeStamp: string;
  /** Class names in head output order. */
  labels: string[];
  userMetadata: Record<string, unknown>;
  /** Backbone input side in pixels (TM models are square). */
  imageSize: number;
  // --- Lane Vision ---
  formatVersion: number;
  /** Monotonic version number; the folder is `v` + 4 digits. */
  version: number;
  /** Labels with their stable codes, in head output order. */
  classes: LabelCode[];
  backbone: BackboneDescriptor;
  head: HeadFileSpec;
  /** Whatever training / evaluation reported (JSON data). */
  metrics: Record<string, unknown>;
  /** Fingerprint of the dataset the head was trained on; null when unknown (imported models). */
  datasetFingerprint: string | null;
  createdAt: string;
  notes?: string;
  importedFrom?: ImportedFrom;
  /**
   * How the version was trained and is to be served beyond the backbone (crop, head, views),
   * the candidates its training compared and the kind of accuracy estimate. Versions saved
   * before pipelines existed, and imported ones, have none. The crop is also in `backbone.fit`,
   * which is what frames are fed with.
   */
  pipeline?: PipelineReport;
  /** The training frames' novelty index (file in the version folder), for the unknown-product gate. */
  novelty?: NoveltyFileSpec;
  /** How the version decides: its operating point (thresholds), the curve it was chosen from, and its reject-class labels. */
  openSet?: OpenSetSpec;
}

export interface NoveltyFileSpec {
  file: string;
  sha256: string;
  byteLength: number;
  count: number;
  featureSize: number;
  /** How the vectors are stored (see src/open-set/novelty-index.ts). */
  encoding: 'int8-row-scaled';
}

export interface OpenSetSpec {
  operatingPoint: OperatingPoint;
  curve: CurvePoint[];
  /** Labels trained like any other that decide as "send to inspection" (e.g. other products, an empty belt). */
  rejectLabels: string[];
}

export interface SaveModelInput {
  head: TrainedHead;
  /** Class names in head output order. */
  labels: readonly string[];
  backbone: BackboneDescriptor;
  metrics?: Record<string, unknown>;
  datasetFingerprint: string | null;
  modelName?: string;
  notes?: string;
  userMetadata?: Record<string, unknown>;
  importedFrom?: ImportedFrom;
  pipeline?: PipelineReport;
  novelty?: NoveltyIndex;
  openSet?: OpenSetSpec;
  /** A fine-tuned backbone folder (model.json + weights) to keep inside the version; `backbone.tuned` describes it. */
  tunedBackboneDir?: string;
  /** Make this the version classifiers use. Default true. */
  activate?: boolean;
  /**
   * Keep these label codes instead of assigning them (a version made by another station of
   * the fleet); MODEL_CODES_CONFLICT when the store gave a label or code otherwise.
   */
  labelCodes?: readonly LabelCode[];
}

/** A version number, its folder name ("v0003"), 'latest' (highest number) or 'active'. */
export type VersionRef = number | string;

export interface VersionSummary {
  version: number;
  /** Folder name, e.g. "v0003". */
  name: string;
  dir: string;
  active: boolean;
  createdAt?: string;
  metrics?: Record<string, unknown>;
  /** Undefined when the version cannot be read; then `problem` says why. */
  metadata?: ModelMetadata;
  problem?: { code: string; message: string };
}

export interface LoadedModel {
  version: number;
  dir: string;
  metadata: ModelMetadata;
  head: TrainedHead;
  /** Class names in head output order. */
  labels: string[];
  /** Stable code per class, in head output order. */
  codes: number[];
  /** The training frames' novelty index, when the version has one. */
  novelty?: NoveltyIndex;
  /** Folder of the version's fine-tuned backbone (checked against its hash), when it has one. */
  tunedBackboneDir?: string;
}

export interface ActiveChange {
  version: number;
  previous: number | undefined;
  reason: 'save' | 'activate' | 'rollback' | 'external';
}

export interface ModelStoreEvents {
  saved: [summary: { version: number; name: string; dir: string }];
  active: [change: ActiveChange];
  pruned: [versions: number[]];
}
