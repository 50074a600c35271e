/**
 * Settings the editor shows as typedInputs (a fixed value, or one read from msg, flow,
 * global or env), read at run time with RED.util.evaluateNodeProperty as core nodes do.
 * env is read once at deploy (it cannot change while the flow runs); msg, flow and global
 * each time the setting is used.
 */
import type { Node, NodeAPI, NodeMessage } from 'node-red';

/** Where a typedInput setting's value may come from besides the fixed one. */
export const READ_SOURCES = ['msg', 'flow', 'global', 'env'] as const;
export type ReadSource = (typeof READ_SOURCES)[number];

export function isReadSource(type: unknown): type is ReadSource {
  return (READ_SOURCES as readonly unknown[]).includes(type);
}

/** "flow.trainBudget", "env TRAIN_BUDGET": for error messages. */
export function describeSource(type: ReadSource, key: string): string {
  return type === 'env' ? `env ${key}` : `${type}.${key}`;
}

/**
 * The value of a setting read from `type` (msg / flow / global / env). The callback form
 * is used so that asynchronous context stores (localfilesystem) work too.
 */
export function readSetting(RED: NodeAPI, node: Node, key: string, type: ReadSource, msg: NodeMessage = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    RED.util.evaluateNodeProperty(key, type, node, msg, (err, value) => (err ? reject(err) : resolve(value)));
  });
}

/** An env variable's value at deploy ("" when it is not set, as Node-RED reads it). */
export function readEnvSetting(RED: NodeAPI, node: Node, key: string): unknown {
  return RED.util.evaluateNodeProperty(key, 'env', node, {});
}
