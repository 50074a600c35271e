export { LaneActivity } from './lane-activity.js';
export { threadChoiceFrom, type ThreadChoice } from './thread-choice.js';
export { enginePreferenceOf, type LoadedInWorker } from './backbone-thread.js';
