/**
 * Model downloads report their progress (bytes received of the model's total) and go
 * through the proxy HTTP_PROXY names, unless NO_PROXY exempts the host. Real model files
 * from a loopback server; a real forward proxy (the `proxy` package) on loopback.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { createProxy } from 'proxy';
import { type DownloadProgress, downloadModel, formatDownloadProgress } from '../../../src/engine/index.js';
import { isLaneVisionError } from '../../../src/errors.js';
import { modelDir } from '../../support/shared.js';
import { type ModelServer, startModelServer } from './model-server.js';

let server: ModelServer;
let scratch: string;
let proxy: { origin: string; seen: string[]; close(): Promise<void> };

async function startProxy(): Promise<typeof proxy> {
  const seen: string[] = [];
  const httpServer = createProxy(http.createServer());
  // undici tunnels through the proxy with CONNECT; plain forwarding arrives as 'request'.
  httpServer.prependListener('connect', (req: http.IncomingMessage) => seen.push(`CONNECT ${req.url}`));
  httpServer.prependListener('request', (req: http.IncomingMessage) => seen.push(`GET ${req.url}`));
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const { port } = httpServer.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      }),
  };
}

before(async () => {
  server = await startModelServer();
  proxy = await startProxy();
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'lane-vision-progress-'));
});

after(async () => {
  await server.close();
  await proxy.close();
  await fs.rm(scratch, { recursive: true, force: true });
});

let cacheCount = 0;
async function freshCache(): Promise<string> {
  const dir = path.join(scratch, `cache-${++cacheCount}`);
  await fs.mkdir(dir);
  return dir;
}

/** Bytes of a shared model folder's model.json and weight shards (what a download fetches, metadata aside). */
async function modelBytes(model: string): Promise<number> {
  const dir = modelDir(model);
  const files = (await fs.readdir(dir)).filter((f) => f === 'model.json' || f.endsWith('.bin'));
  let total = 0;
  for (const f of files) total += (await fs.stat(path.join(dir, f))).size;
  return total;
}

const PROXY_VARS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy'];

/** Runs `body` with exactly these proxy variables set (others unset), restoring the environment after. */
async function withProxyEnv<T>(vars: Record<string, string>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(PROXY_VARS.map((name) => [name, process.env[name]]));
  for (const name of PROXY_VARS) delete process.env[name];
  Object.assign(process.env, vars);
  try {
    return await body();
  } finally {
    for (const name of PROXY_VARS) {
      if (saved[name] === undefined) delete process.env[name];
      else process.env[name] = saved[name];
    }
  }
}

test('progress of a multi-shard download only grows, names each file, and ends done at the model total', async () => {
  const model = 'mobilenet-v1-1.0-features'; // several weight shards
  const events: DownloadProgress[] = [];
  const url = `${server.origin}/ok/${model}/model.json`;
  const cacheDir = await freshCache();
  await withProxyEnv({}, () => downloadModel(url, { cacheDir, onProgress: (p) => events.push({ ...p }), progressIntervalMs: 0 }));

  const total = await modelBytes(model);
  assert.ok(events.length > 3, `several progress calls (${events.length})`);
  const last = events.at(-1)!;
  assert.equal(last.done, true);
  assert.equal(last.receivedBytes, total);
  assert.equal(last.totalBytes, total);
  assert.equal(events.filter((e) => e.done).length, 1, 'done only once, at the end');
  assert.equal(events[0].file, 'model.json');
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].receivedBytes >= events[i - 1].receivedBytes, `received bytes never go back (call ${i})`);
    assert.equal(events[i].url, url);
  }
  // Once model.json is in, the total is known and stays the same.
  const totals = new Set(events.filter((e) => e.file !== 'model.json').map((e) => e.totalBytes));
  assert.deepEqual([...totals], [total]);
  // Each file ends at its Content-Length.
  const manifest = JSON.parse(await fs.readFile(path.join(modelDir(model), 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
  const shards = manifest.weightsManifest.flatMap((g) => g.paths);
  for (const shard of shards) {
    const ofShard = events.filter((e) => e.file === shard);
    assert.ok(ofShard.length >= 2, `${shard}: a start and an end`);
    const size = (await fs.stat(path.join(modelDir(model), shard))).size;
    assert.equal(ofShard.at(-1)!.fileBytes, size);
    assert.equal(ofShard.at(-1)!.fileTotal, size);
  }
  assert.equal(formatDownloadProgress(last), `${(total / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB`);
});

test('a cached model reports no progress; a failed download never reports done', async () => {
  const cacheDir = await freshCache();
  const url = `${server.origin}/ok/mobilenet-v2-0.35-features/model.json`;
  await withProxyEnv({}, () => downloadModel(url, { cacheDir }));
  const again: DownloadProgress[] = [];
  await withProxyEnv({}, () => downloadModel(url, { cacheDir, onProgress: (p) => again.push(p) }));
  assert.deepEqual(again, []);

  const cut: DownloadProgress[] = [];
  await assert.rejects(
    withProxyEnv({}, async () => downloadModel(`${server.origin}/cut/mobilenet-v2-0.35-features/model.json`, { cacheDir, onProgress: (p) => cut.push(p) })),
    (err: unknown) => isLaneVisionError(err, 'MODEL_TRUNCATED'),
  );
  assert.ok(cut.length > 0);
  assert.ok(cut.every((p) => !p.done));
});

test('with HTTP_PROXY set the download goes through the proxy; NO_PROXY=127.0.0.1 bypasses it', async () => {
  const model = 'mobilenet-v2-0.35-features';
  const target = new URL(server.origin).host;

  proxy.seen.length = 0;
  const requestsBefore = server.requests.length;
  const viaProxy = await withProxyEnv({ HTTP_PROXY: proxy.origin }, async () =>
    downloadModel(`${server.origin}/ok/${model}/model.json`, { cacheDir: await freshCache() }),
  );
  assert.ok(proxy.seen.some((line) => line.includes(target)), `the proxy saw requests for ${target}: ${proxy.seen.join(', ')}`);
  assert.ok(server.requests.length > requestsBefore, 'and the model server answered them');
  const weights = (await fs.readdir(viaProxy)).filter((f) => f.endsWith('.bin'));
  assert.ok(weights.length > 0);

  proxy.seen.length = 0;
  const served = server.requests.length;
  await withProxyEnv({ HTTP_PROXY: proxy.origin, NO_PROXY: '127.0.0.1' }, async () =>
    downloadModel(`${server.origin}/ok/${model}/model.json`, { cacheDir: await freshCache() }),
  );
  assert.deepEqual(proxy.seen, [], 'NO_PROXY host: the proxy sees nothing');
  assert.ok(server.requests.length > served, 'the server was asked directly');
});

test('a proxy that is not there is a clear offline error naming the model URL', async () => {
  const closed = await startProxy();
  await closed.close(); // a port nothing listens on any more
  const url = `${server.origin}/ok/mobilenet-v2-0.35-features/model.json`;
  await assert.rejects(
    withProxyEnv({ HTTP_PROXY: closed.origin }, async () => downloadModel(url, { cacheDir: await freshCache() })),
    (err: unknown) => isLaneVisionError(err, 'MODEL_OFFLINE') && err.message.includes(url) && err.message.includes(`HTTP_PROXY is set to ${closed.origin}`),
  );
});
