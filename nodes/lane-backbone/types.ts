/** What a lane-backbone config node offers besides the shared BackboneConfigNode interface. */
import type { Backbone } from '../../src/engine/index.js';
import type { BackboneConfigNode } from '../shared/config-types.js';

export interface LaneBackboneNode extends BackboneConfigNode {
  /** Layer or node the features come from, when set (else the preset's or the model's). */
  readonly featureLayer: string | undefined;
  /** The backbone once loaded and while users hold it; undefined while loading, failed or idle. */
  current(): Backbone | undefined;
}
