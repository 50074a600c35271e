/** What a lane-train node offers its admin endpoint. */
import type { Node } from 'node-red';

export interface LaneTrainNode extends Node {
  /** Starts a retrain as an input message would (the editor button); throws when one is running. */
  trainNow(overrides: unknown): { started: true };
}
