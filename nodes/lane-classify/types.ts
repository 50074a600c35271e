/** Settings and runtime surface of a lane-classify node. */
import type { Node, NodeDef } from 'node-red';

export type ClassifyMode = 'trained' | 'backbone';

export interface LaneClassifyDef extends NodeDef {
  backbone: string;
  /** lane-dataset config node: where the model store is. Not needed in mode `backbone`. */
  dataset?: string;
  mode?: ClassifyMode;
  threshold?: string | number;
  topK?: string | number;
  /** Most frames per backbone call when frames queue up. */
  maxBatch?: string | number;
  /** One output per label in `labels`, plus a last one for `unknown` and everything else. */
  splitOutputs?: boolean;
  labels?: string[];
}

export interface LaneClassifyNode extends Node {
  /** Labels and version of the model in use (admin route `labels`). */
  modelLabels(): { labels: string[]; modelVersion: number | undefined; mode: ClassifyMode };
}
