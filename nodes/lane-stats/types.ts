import type { Node, NodeDef } from 'node-red';

export interface LaneStatsDef extends NodeDef {
  /** Seconds between two emissions. */
  interval?: string | number;
  /** Minutes the per-label counts and the reject rate cover. */
  windowMinutes?: string | number;
  /** Longest side of the last-frame JPEG in pixels; 0 sends no frame. */
  frameSize?: string | number;
}

export type LaneStatsNode = Node;

export interface StatsSettings {
  intervalMs: number;
  windowMinutes: number;
  frameBox: number;
}
