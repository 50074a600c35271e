/**
 * One status vocabulary for every Lane Vision node, so the lane reads the same way
 * across the workspace (as the core mqtt nodes share `node-red:common.status.*`).
 */
import type { Node, NodeStatus } from 'node-red';

export type StatusState = 'idle' | 'loading' | 'ready' | 'busy' | 'warning' | 'error' | 'stopped';

const LOOK: Record<StatusState, Pick<NodeStatus, 'fill' | 'shape'>> = {
  idle: { fill: 'grey', shape: 'ring' },
  loading: { fill: 'yellow', shape: 'ring' },
  ready: { fill: 'green', shape: 'dot' },
  busy: { fill: 'blue', shape: 'dot' },
  warning: { fill: 'yellow', shape: 'dot' },
  error: { fill: 'red', shape: 'ring' },
  stopped: { fill: 'grey', shape: 'dot' },
};

/** Status text is kept short: the editor truncates long status lines. */
export function showStatus(node: Node, state: StatusState, text = ''): void {
  node.status({ ...LOOK[state], text: text.length > 60 ? `${text.slice(0, 57)}...` : text });
}

export function clearStatus(node: Node): void {
  node.status({});
}

export { errorText } from '../../src/errors.js';
