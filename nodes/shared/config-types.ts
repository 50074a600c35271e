/**
 * What the config nodes offer the nodes that use them (the way core mqtt in/out hold
 * their mqtt-broker node). Implemented by nodes/lane-backbone and nodes/lane-dataset.
 */
import type { Node } from 'node-red';
import type { Backbone, BackboneSpec, BackendPreference } from '../../src/engine/index.js';
import type { Dataset } from '../../src/dataset/index.js';
import type { Embedder } from '../../src/features/index.js';
import type { ModelStore } from '../../src/model-store/index.js';
import type { ReviewQueue } from '../../src/review/index.js';
import type { FitPolicy } from '../../src/image/index.js';
import type { RetrainOptions, RetrainResult } from '../../src/retrain/index.js';

export interface BackboneConfigNode extends Node {
  readonly source: string;
  readonly fit: FitPolicy;
  readonly backendPreference: BackendPreference;
  /**
   * Registers `user` (it then mirrors loading / ready / error on its status) and resolves
   * the shared backbone, loading it on the first call. Rejects with the load error.
   */
  acquire(user: Node): Promise<Backbone>;
  /** Deregisters `user`; the backbone is released after the last user. */
  release(user: Node): void;
  /**
   * `retrain()` for a user holding this backbone (`options.backbone`): in the node's training
   * worker thread (started on the first training, kept warm, ended with the backbone), or on
   * the main thread when LANE_VISION_TRAIN_THREAD=main.
   */
  retrain(options: RetrainOptions): Promise<RetrainResult>;
  /**
   * Decodes and embeds a classifier's frames with the backbone this user holds: in the
   * node's inference worker thread (started by this call, ended with the backbone), or on
   * the main thread when LANE_VISION_INFERENCE_THREAD=main or the thread cannot load it.
   */
  embedder(): Embedder;
  /** The same for a model version's fine-tuned copy of this backbone (its own thread); dispose() ends it. */
  tunedEmbedder(tuned: Backbone, spec: BackboneSpec): { embed: Embedder; dispose(): unknown };
}

export interface DatasetConfigNode extends Node {
  /** Absolute folders (relative settings resolve against the Node-RED user directory). */
  readonly folder: string;
  readonly modelsFolder: string;
  /** The shared dataset handle (opened on first use). */
  dataset(): Promise<Dataset>;
  /** The shared model store handle (opened on first use). */
  models(): Promise<ModelStore>;
  /** The lane's review queue: frames sent to inspection or decided by a hair, kept on disk (opened on first use). */
  review(): Promise<ReviewQueue>;
}
