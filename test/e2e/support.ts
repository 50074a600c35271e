/** Helpers shared by the end-to-end tests: free ports, temp user dirs, example flows. */
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
