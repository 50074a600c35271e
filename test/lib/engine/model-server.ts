/**
 * A loopback HTTP server in front of the shared model folders, with routes that fail the
 * ways real servers do. URL layout: /<behaviour>/<model folder>/<file>.
 *   ok       serve the file
 *   hub      like TF Hub: every file only with ?tfjs-format=file, else 404
 *   fail500  HTTP 500 for everything
 *   stall    accept and never answer
 *   stallbin answer model.json, never answer weight files
 *   short    weight files lose their last 1000 bytes (consistent Content-Length)
 *   cut      weight files: full Content-Length declared, half sent, connection dropped
 *   garbage  model.json is not JSON
 */
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { modelsDir } from '../../support/shared.js';

export interface ModelServer {
  /** e.g. http://127.0.0.1:12345 */
  origin: string;
  /** Paths (with query) requested so far. */
  requests: string[];
  close(): Promise<void>;
}

export async function startModelServer(): Promise<ModelServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [behaviour, model, ...rest] = url.pathname.split('/').filter(Boolean);
    const file = rest.join('/');
    const isWeights = file !== 'model.json' && file !== 'metadata.json';
    if (behaviour === 'fail500') return void res.writeHead(500).end('internal error');
    if (behaviour === 'stall' || (behaviour === 'stallbin' && isWeights)) return; // never answer
    if (behaviour === 'hub' && url.searchParams.get('tfjs-format') !== 'file') return void res.writeHead(404).end();
    if (behaviour === 'garbage' && file === 'model.json') return void res.writeHead(200).end('<html>not a model</html>');
    const local = path.join(modelsDir, model ?? '', ...file.split('/'));
    if (!local.startsWith(modelsDir + path.sep)) return void res.writeHead(403).end();
    let body: Buffer;
    try {
      body = await fs.readFile(local);
    } catch {
      return void res.writeHead(404).end('not found');
    }
    if (behaviour === 'short' && isWeights) body = body.subarray(0, Math.max(0, body.length - 1000));
    if (behaviour === 'cut' && isWeights) {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
    res.end(body);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
