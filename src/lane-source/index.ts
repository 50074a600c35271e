/** Frame sources for demo and test lanes: a synthetic yoghurt lane, folder replay, pacing. */
export type { LaneFrame, LaneSource } from './types.js';
export {
  renderYoghurtFrame,
  createSyntheticLane,
  DEFAULT_FRAME_SIZE,
  type YoghurtFrameOptions,
  type SyntheticLane,
  type SyntheticLaneOptions,
} from './synthetic-yoghurt.js';
export { YOGHURT_FLAVOURS, isYoghurtFlavour, type YoghurtFlavour } from './yoghurt-flavours.js';
export {
  listLabelledImages,
  createFolderReplay,
  IMAGE_EXTENSIONS,
  type LabelledImage,
  type FolderReplay,
  type FolderReplayOptions,
} from './folder-replay.js';
export { createPacer, MAX_FPS, type Pacer, type PacerClock } from './pacer.js';
