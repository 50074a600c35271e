/** Settings and runtime surface of a lane-classify node. */
import type { Node, NodeDef } from 'node-red';
import type { DropReason, OverflowPolicy } from '../../src/classify/index.js';
import type { FileInputSettings } from '../shared/file-input.js';

export type ClassifyMode = 'trained' | 'backbone';

export interface LaneClassifyDef extends NodeDef, FileInputSettings {
  backbone: string;
  /** lane-dataset config node: where the model store is. Not needed in mode `backbone`. */
  dataset?: string;
  mode?: ClassifyMode;
  threshold?: string | number;
  /** typedInput type of `threshold`: model (blank), num, env, flow or global. Missing in flows before typedInputs: num, or model when blank. */
  thresholdType?: 'model' | 'num' | 'env' | 'flow' | 'global';
  /** Frames while there is no usable model: `fail` each (default), or `skip` all but the first of a fault. */
  unreadyFrames?: 'fail' | 'skip';
  /** Message property holding the frame (typedInput msg). Default payload. */
  property?: string;
  /** Message property the decided label is written to (typedInput msg). Default payload. */
  outputProperty?: string;
  /** The frame goes out in msg.frame too (off by default; a lane-console after the node gets it anyway). */
  includeFrame?: boolean | string;
  /** Frames queued for review also go out on a last output. */
  reviewOutput?: boolean | string;
  /** `shared` (default): one output for every frame sent to inspection; `separate`: low-confidence, then unknown-product. */
  inspectOutputs?: 'shared' | 'separate';
  /** Test-time views per frame: blank or "model" for the model's own (default), else 0..8. */
  testViews?: string | number;
  topK?: string | number;
  /** Most frames per backbone call when frames queue up. */
  maxBatch?: string | number;
  /** While the backbone is idle, how long a frame may wait for others to fill its batch. Default 0. */
  maxWaitMs?: string | number;
  /** Most frames waiting to be classified. Default 100. */
  queueLimit?: string | number;
  /** What happens to frames beyond the queue limit. Default drop-oldest. */
  overflow?: OverflowPolicy;
  /** One output per label in `labels`, plus a last one for `unknown` and everything else. */
  splitOutputs?: boolean;
  labels?: string[];
}

export interface LaneClassifyNode extends Node {
  /** Labels and version of the model in use (admin route `labels`). */
  modelLabels(): { labels: string[]; modelVersion: number | undefined; mode: ClassifyMode };
}

/** Why a frame left the node without being classified: queue full, block's safety cap, or the node stopped (redeploy). */
/** `not-ready`: skipped while there is no model (the node's *Without a model* = skip). */
export type FrameDropReason = DropReason | 'stopped' | 'not-ready';

/** Counters of a classify node since it started, in msg.laneVision.queue. */
export interface QueueCounters {
  /** Frames waiting now (not counting the batch being classified). */
  queued: number;
  /** Most frames seen waiting at once. */
  maxQueued: number;
  /** Frames classified (a result was sent). */
  processed: number;
  /** Frames that could not be classified (an error was reported). */
  failed: number;
  /** Frames dropped by the queue, all reasons. */
  dropped: number;
  droppedBy: Record<DropReason, number>;
}

/** msg.laneVision on every message the node settles: results, failed and dropped frames. */
export interface LaneVisionInfo {
  /** The classify node's id (lane-events sums the counters of each classifier it hears from). */
  classifier: string;
  /** Frames in the backbone call that classified this one. */
  batchSize?: number;
  /** Set on a frame that was not classified. */
  dropped?: FrameDropReason;
  queue: QueueCounters;
}
