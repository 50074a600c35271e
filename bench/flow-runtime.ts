/**
 * The real Node-RED runtime, embedded in the bench process (RED.init / RED.start, as
 * node-red's own red.js does), loading Lane Vision from the package's `node-red` section
 * exactly as an install does, plus one tiny probe node type the bench uses to put frames
 * on a wire and to receive what comes out. Flows are deployed through the runtime API
 * (a full deploy, as the editor's Deploy button), so every message crosses real wires.
 *
 * Why not node-red-node-test-helper (what test/nodes uses): it spies on Node.prototype
 * send/status/log with sinon and keeps every call, i.e. every message of a 100,000-frame
 * soak, which would both slow the flow and make the memory figures meaningless.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Server } from 'node:http';
import RED from 'node-red';
import type { Node, NodeMessage } from 'node-red';

/** A node type with no behaviour of its own: the bench sends from it and listens on its input. */
const PROBE_TYPE = 'lane-bench-probe';
const PROBE_JS = `module.exports = function (RED) {
  RED.nodes.registerType(${JSON.stringify(PROBE_TYPE)}, function (config) { RED.nodes.createNode(this, config); });
};
`;
const PROBE_HTML = `<script type="text/javascript">
RED.nodes.registerType(${JSON.stringify(PROBE_TYPE)}, { category: 'function', defaults: {}, inputs: 1, outputs: 1, label: 'bench probe' });
</script>
`;

export type FlowNode = Record<string, unknown> & { id: string; type: string };

export interface LogLine {
  level: number;
  msg: string;
}

export interface EmbeddedNodeRed {
  version: string;
  /** Replaces every flow (a full deploy) and resolves once the new nodes are started. */
  deploy(flow: FlowNode[]): Promise<void>;
  node(id: string): Node;
  /**
   * Calls `listener` for every message a node of the flow settles (Node-RED's onComplete
   * messaging hook): how the bench hears of frames lane-classify let go without an error.
   */
  onComplete(listener: (nodeId: string, msg: NodeMessage) => void): () => void;
  /** Warnings and errors Node-RED logged since the last call (kept, not printed: an overload logs one per dropped frame). */
  takeLog(): { warnings: number; errors: number; distinct: string[] };
  stop(): Promise<void>;
}

let started = false;
let completeHooks = 0;

/**
 * Starts Node-RED with `userDir` as its user directory (flows file, context, config files
 * all go there), no HTTP server (admin and node routes are plain unmounted express apps)
 * and Lane Vision loaded from `repoRoot`. One per process: Node-RED cannot be re-initialised.
 */
export async function startNodeRed(repoRoot: string, userDir: string): Promise<EmbeddedNodeRed> {
  if (started) throw new Error('Node-RED was already started in this process');
  started = true;
  const probeDir = path.join(userDir, 'bench-nodes');
  fs.mkdirSync(probeDir, { recursive: true });
  fs.writeFileSync(path.join(probeDir, `${PROBE_TYPE}.js`), PROBE_JS);
  fs.writeFileSync(path.join(probeDir, `${PROBE_TYPE}.html`), PROBE_HTML);
  const flowFile = path.join(userDir, 'flows.json');
  fs.writeFileSync(flowFile, '[]\n');

  const log: LogLine[] = [];
  const settings = {
    userDir,
    flowFile,
    credentialSecret: false,
    // A package with a `node-red` section in nodesDir is loaded as that module (as scripts/start-demo does).
    nodesDir: [repoRoot, probeDir],
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    editorTheme: { projects: { enabled: false } },
    logging: {
      console: { level: 'off' },
      bench: {
        level: 'warn',
        metrics: false,
        audit: false,
        handler: () => (line: LogLine) => {
          if (log.length < 100_000) log.push({ level: line.level, msg: String(line.msg) });
        },
      },
    },
  };
  RED.init(null as unknown as Server, settings as never);
  await RED.start();
  const runtime = (RED as unknown as { runtime: { flows: { setFlows(opts: unknown): Promise<unknown> } } }).runtime;

  const nodes = RED.nodes as unknown as { getNode(id: string): Node | null };
  const takeLog = () => {
    const lines = log.splice(0, log.length);
    // Node-RED levels: 20 error, 30 warn.
    const errors = lines.filter((l) => l.level <= 20).length;
    return { warnings: lines.length - errors, errors, distinct: [...new Set(lines.map((l) => l.msg.slice(0, 160)))].slice(0, 5) };
  };
  return {
    version: (RED as unknown as { version(): string }).version(),
    async deploy(flow) {
      // setFlows resolves before the new flow has started; flows:started names the revision it started.
      const startedRevs = new Set<string>();
      const onStarted = (event: { config?: { rev?: string } }) => startedRevs.add(event.config?.rev ?? '');
      RED.events.on('flows:started', onStarted);
      try {
        const { rev } = (await runtime.flows.setFlows({ flows: { flows: flow }, deploymentType: 'full' })) as { rev: string };
        const since = Date.now();
        while (!startedRevs.has(rev)) {
          if (Date.now() - since > 60_000) throw new Error(`the deployed flow did not start within 60 s: ${JSON.stringify(takeLog().distinct)}`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      } finally {
        RED.events.removeListener('flows:started', onStarted);
      }
    },
    node(id) {
      const node = nodes.getNode(id);
      if (!node) throw new Error(`node ${id} is not in the deployed flow (did its type load? ${JSON.stringify(takeLog().distinct)})`);
      return node;
    },
    takeLog,
    onComplete(listener) {
      const hooks = RED.hooks as unknown as { add(name: string, fn: (event: { msg: NodeMessage; node: { id: string } }) => void): void; remove(name: string): void };
      const name = `onComplete.laneVisionBench${++completeHooks}`;
      hooks.add(name, (event) => listener(event.node.id, event.msg));
      return () => hooks.remove(name);
    },
    async stop() {
      await RED.stop();
    },
  };
}

export const probe = (id: string, tab: string, wires: string[][] = []): FlowNode => ({ id, type: PROBE_TYPE, z: tab, name: id, wires });
