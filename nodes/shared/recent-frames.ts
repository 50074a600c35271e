/**
 * The frames lane-classify left out of its results (its *Include frame* setting is off), kept
 * for a short while by message id so that a lane-console wired after it still shows them:
 * results stay small for MQTT, debug and context, and the console keeps its own copy.
 * Node-RED keeps `_msgid` through wires and clones, so every copy of a result finds its frame.
 */
import type { ImageInput } from '../../src/image/index.js';

/** About a second of frames at 30 fps; a console takes its frame within a tick of the result. */
const KEPT_FRAMES = 32;
const frames = new Map<string, ImageInput>();

export function keepFrame(msgId: string | undefined, frame: ImageInput): void {
  if (!msgId) return;
  frames.delete(msgId);
  frames.set(msgId, frame);
  while (frames.size > KEPT_FRAMES) frames.delete(frames.keys().next().value as string);
}

export function keptFrame(msgId: string | undefined): ImageInput | undefined {
  return msgId ? frames.get(msgId) : undefined;
}
