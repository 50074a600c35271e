/**
 * Settings of a lane-console node, and the JSON the console page receives (GET api/...
 * and the Server-Sent Events of `events`). ui/console/*.js reads exactly these shapes.
 */
import type { Node, NodeDef } from 'node-red';

export * from '../../src/console/types.js';

export interface LaneConsoleDef extends NodeDef {
  backbone: string;
  dataset: string;
  /** Where the page is served on httpNode (default /lane-vision/console). */
  path?: string;
  /** Latest frames kept with their results. */
  frames?: string | number;
  /** Frames the model was unsure about, kept for labelling. */
  rejects?: string | number;
  /** Minutes the per-label counts of the Live section cover. */
  windowMinutes?: string | number;
}

export interface LaneConsoleNode extends Node {
  /** The normalised page path (for the routes and the editor link). */
  readonly pagePath: string;
}

