/**
 * Rate-limits a node's status: a lane at 30 frames/s would otherwise send 30 status
 * updates a second to every open editor. The latest status always lands, at most one
 * interval late. (Node-RED has no throttle of its own for status.)
 */
import type { Node } from 'node-red';
import { showStatus, type StatusState } from './status.js';

export interface StatusThrottle {
  /** Shown now if the last update is older than the interval, else when it has passed. */
  show(state: StatusState, text: string): void;
  /** Shown now (answers to commands, errors): drops a pending throttled one. */
  showNow(state: StatusState, text: string): void;
  /** Drops a pending update and its timer (on close). */
  stop(): void;
}

export function createStatusThrottle(node: Node, intervalMs = 500): StatusThrottle {
  let lastShown = 0;
  let pending: { state: StatusState; text: string } | undefined;
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    timer = undefined;
    if (!pending) return;
    lastShown = Date.now();
    showStatus(node, pending.state, pending.text);
    pending = undefined;
  };

  return {
    show(state, text) {
      pending = { state, text };
      if (timer) return;
      const wait = lastShown + intervalMs - Date.now();
      if (wait <= 0) flush();
      else timer = setTimeout(flush, wait);
    },
    showNow(state, text) {
      pending = { state, text };
      if (timer) clearTimeout(timer);
      flush();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
    },
  };
}
