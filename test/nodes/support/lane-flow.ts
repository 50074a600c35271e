/**
 * Shared pieces for the lane node tests: the compiled nodes (dist/, so run `npm run build`
 * first), flow items for the config nodes, and waiting on statuses and messages.
 * node-red-node-test-helper's RED._ returns the key unchanged, so status and error texts
 * built from catalog keys read as the keys ("lane-capture.errors.no-label").
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import helper, { type TestFlowsItem, type TestNodeInitializer } from 'node-red-node-test-helper';
import type { Node, NodeMessage, NodeStatus } from 'node-red';

export { helper };

const repo = path.resolve(__dirname, '..', '..', '..');

/** The compiled node module of `type` (dist/nodes/<type>/<type>.js). */
export function compiledNode(type: string): TestNodeInitializer {
  const file = path.join(repo, 'dist', 'nodes', type, `${type}.js`);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
  return require(file);
}

/** A module compiled into dist/ (the same instance the compiled nodes use, e.g. dist/src/features/index.js). */
export function compiledModule<T>(relative: string): T {
  return require(path.join(repo, 'dist', relative));
}

/** The lane nodes the tests load together (config nodes and their users). */
export function laneNodes(...types: string[]): TestNodeInitializer[] {
  return types.map(compiledNode);
}

export type FlowItem = TestFlowsItem & Record<string, unknown>;

export const TAB: FlowItem = { id: 'f1', type: 'tab', label: 'lane' };

export function backboneConfig(id: string, source: string, extra: Record<string, unknown> = {}): FlowItem {
  return { id, type: 'lane-backbone', name: '', source, featureLayer: '', fit: 'cover', roiLeft: '', roiTop: '', roiWidth: '', roiHeight: '', backend: 'auto', ...extra };
}

export function datasetConfig(id: string, folder: string, modelsFolder: string, extra: Record<string, unknown> = {}): FlowItem {
  return { id, type: 'lane-dataset', name: '', folder, modelsFolder, maxPerLabel: 0, whenFull: 'refuse', ...extra };
}

/** A catch node for `scope` wired to a helper node `<id>-out`. */
export function catchAll(id: string, scope: string[]): FlowItem[] {
  return [
    { id, z: 'f1', type: 'catch', scope, uncaught: false, wires: [[`${id}-out`]] },
    { id: `${id}-out`, z: 'f1', type: 'helper' },
  ];
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lane-nodes-${prefix}-`));
}

/** Every status `node` has shown since the flow was loaded (the helper spies on Node.prototype.status). */
export function statuses(node: Node): NodeStatus[] {
  const spy = node.status as unknown as { getCalls(): { thisValue: unknown; args: unknown[] }[] };
  return spy
    .getCalls()
    .filter((call) => call.thisValue === node)
    .map((call) => call.args[0] as NodeStatus);
}

export function lastStatus(node: Node): NodeStatus | undefined {
  return statuses(node).at(-1);
}

export async function waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until the node's latest status satisfies `match`. */
export function waitForStatus(node: Node, match: (status: NodeStatus) => boolean, what: string, timeoutMs = 20_000): Promise<NodeStatus> {
  return waitFor(() => {
    const last = lastStatus(node);
    return last && match(last) ? last : undefined;
  }, `${node.id} status ${what} (last: ${JSON.stringify(lastStatus(node))})`, timeoutMs);
}

/** Records every message a helper node receives. */
export function recorder(node: Node): NodeMessage[] & { next(what?: string, timeoutMs?: number): Promise<NodeMessage> } {
  const seen: NodeMessage[] = [];
  let taken = 0;
  node.on('input', (msg: NodeMessage) => seen.push(msg));
  return Object.assign(seen, {
    async next(what = `a message on ${node.id}`, timeoutMs = 20_000): Promise<NodeMessage> {
      const msg = await waitFor(() => (seen.length > taken ? seen[taken] : undefined), what, timeoutMs);
      taken++;
      return msg;
    },
  });
}

/** The error text a catch node received, without the "LaneVisionError: " Node-RED puts in front. */
export function caughtText(msg: NodeMessage): string {
  const text = String((msg as NodeMessage & { error?: { message?: string } }).error?.message ?? '');
  return text.replace(/^(LaneVisionError|Error): /, '');
}

/** The LaneVisionError code a catch node received (Node-RED copies it onto msg.error). */
export function caughtCode(msg: NodeMessage): string | undefined {
  return (msg as NodeMessage & { error?: { code?: string } }).error?.code;
}
