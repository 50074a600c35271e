/**
 * Lane Vision library: everything the Node-RED nodes, the CLI and the tests call.
 * No Node-RED import anywhere under src/.
 */
export * from './errors.js';
export * from './image/index.js';
export * from './engine/index.js';
export * from './features/index.js';
export * from './dataset/index.js';
export * from './training/index.js';
export * from './model-store/index.js';
export * from './retrain/index.js';
export { LaneActivity, type ThreadChoice } from './threads/index.js';
export * from './classify/index.js';
export * from './events/index.js';
export * from './lane-source/index.js';
export * from './fleet/index.js';
export * from './export/index.js';
export * from './dashboard/index.js';
