/** The operator console's logic (frames, stats, teach / train / promote, event streams), free of Node-RED; nodes/lane-console serves it. */
export { OperatorConsole } from './operator-console.js';
export { FrameStore, jpegThumbnail, imageInputOf, THUMBNAIL_BOX, type StoredFrame, type ThumbnailSize } from './frame-store.js';
export { LiveStats } from './live-stats.js';
export { EventHub, type EventHubLimits } from './event-stream.js';
export { HttpError } from './http-error.js';
export { parseWriteRequest, isWriteAction, checkSameOrigin, WRITE_ACTIONS, type WriteRequest } from './write-requests.js';
export type * from './types.js';
