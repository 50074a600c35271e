/** Helpers shared by the end-to-end tests: free ports, temp user dirs, example flows. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..');
export const examplesDir = path.join(repoRoot, 'examples');

export type FlowNode = Record<string, unknown> & { id: string; type: string; z?: string; wires?: string[][] };

export function readExample(name: string): FlowNode[] {
  return JSON.parse(fs.readFileSync(path.join(examplesDir, name), 'utf8')) as FlowNode[];
}

export function exampleFiles(): string[] {
  return fs
    .readdirSync(examplesDir)
    .filter((file) => file.endsWith('.json'))
    .sort();
}

/**
 * A port nothing listens on right now (the OS picks it; we close and hand it on, so another
 * process could take it in between, which is unlikely on a test machine).
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts connections on 127.0.0.1:port. */
export async function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** The node types the package registers (package.json `node-red.nodes`). */
export function packageNodeTypes(): Record<string, string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { 'node-red'?: { nodes?: Record<string, string> } };
  return pkg['node-red']?.nodes ?? {};
}

/** A package folder Node-RED loads our nodes from (settings `nodesDir`): package.json lists every compiled node, dist/ is a symlink to ours. */
export function nodesPackage(dir: string, name: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '0.0.0', 'node-red': { nodes: packageNodeTypes() } }));
  fs.symlinkSync(path.join(repoRoot, 'dist'), path.join(dir, 'dist'), 'dir');
  return dir;
}

export interface RunningNodeRed {
  url: string;
  child: ChildProcess;
  /** Everything the process printed, line by line: the tail explains a failure. */
  log: string[];
  stop(): Promise<void>;
}

/** A real `node-red` process on 127.0.0.1:port, its settings.js and flows.json written into userDir first. */
export function startNodeRedProcess(options: {
  userDir: string;
  port: number;
  settings: Record<string, unknown>;
  flows: unknown[];
  env?: NodeJS.ProcessEnv;
}): RunningNodeRed {
  const { userDir, port } = options;
  fs.mkdirSync(userDir, { recursive: true });
  const settingsFile = path.join(userDir, 'settings.js');
  fs.writeFileSync(settingsFile, `module.exports = ${JSON.stringify({ uiHost: '127.0.0.1', uiPort: port, flowFile: 'flows.json', ...options.settings }, null, 2)};\n`);
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(options.flows, null, 2));
  const child = spawn(process.execPath, [require.resolve('node-red/red.js'), '--settings', settingsFile, '--userDir', userDir, '--port', String(port)], {
    cwd: userDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.env ?? process.env,
  });
  const log: string[] = [];
  const keep = (chunk: Buffer) => log.push(...chunk.toString('utf8').split('\n').filter(Boolean));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Polls `check` until it gives a value: for states another process reaches on its own
 * (a page, a broker), which send no event this test could wait on. On a timeout the last
 * lines of `log` say why.
 */
export async function waitForCondition<T>(
  check: () => Promise<T | undefined>,
  what: string,
  options: { log?: () => readonly string[] | undefined; timeoutMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${(options.log?.() ?? []).slice(-20).join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
