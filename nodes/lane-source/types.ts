/** Settings and runtime surface of a lane-source node. */
import type { Node, NodeDef } from 'node-red';

export type SourceMode = 'synthetic' | 'folder';
export type SourceCommand = 'start' | 'stop' | 'next';

export interface LaneSourceDef extends NodeDef {
  mode?: SourceMode;
  /** synthetic: flavours on the lane (array, or comma-separated); empty = all. */
  flavours?: string[] | string;
  /** folder: a folder per class (or a dataset root holding train/); relative to the Node-RED user directory. */
  folder?: string;
  /** folder: random order, reshuffled every pass (seeded). Default true. */
  shuffle?: boolean;
  /** folder: start again after the last image. Default true. */
  loop?: boolean;
  seed?: string | number;
  /** Frames per second. Default 2. */
  rate?: string | number;
  /** Start sending when deployed. Default false. */
  autostart?: boolean;
}

export interface LaneSourceNode extends Node {
  /** Starts when stopped, stops when running (editor button). */
  toggle(): Promise<{ running: boolean; sent: number }>;
}
