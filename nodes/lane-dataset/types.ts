/** What a lane-dataset config node offers besides the shared DatasetConfigNode interface. */
import type { LabelCode } from '../../src/model-store/index.js';
import type { DatasetConfigNode } from '../shared/config-types.js';

/** What the editor shows: images per label and the stored model versions. */
export interface DatasetSummary {
  folder: string;
  modelsFolder: string;
  counts: Record<string, number>;
  total: number;
  maxPerLabel: number;
  activeVersion: number | null;
  versions: {
    version: number;
    name: string;
    active: boolean;
    createdAt?: string;
    labels?: LabelCode[];
    metrics?: Record<string, unknown>;
    problem?: { code: string; message: string };
  }[];
}

/** The version a Teachable Machine import made. */
export interface TeachableMachineImported {
  version: number;
  active: boolean;
  name: string;
  labels: string[];
  /** The folder (absolute) or URL it was read from. */
  source: string;
}

export interface LaneDatasetNode extends DatasetConfigNode {
  summary(): Promise<DatasetSummary>;
  /** Imports the export named by `{source}` (folder or URL) as the store's active version. */
  importTeachableMachine(body: unknown): Promise<TeachableMachineImported>;
}
