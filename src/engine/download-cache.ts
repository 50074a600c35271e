/**
 * Downloads a TensorFlow.js model (model.json + every weight shard) into a cache folder
 * keyed by its URL, so that the same URL later loads without any network and air-gapped
 * machines can be served by copying the folder in.
 *
 * A folder appears in the cache only complete and checked: files go to a temporary folder
 * that is renamed into place at the end, and each weight group's byte count is checked
 * against model.json (quantization-aware). tfjs's own http loader does neither, keeps
 * nothing on disk, reports no progress and has no timeout, so this part is written by hand
 * on fetch. The fetch is undici's (the npm package) with its EnvHttpProxyAgent, because
 * Node 20's built-in fetch ignores HTTP_PROXY / HTTPS_PROXY / NO_PROXY.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import createDebug from 'debug';
import { EnvHttpProxyAgent, fetch, type Dispatcher, type Response } from 'undici';
import { LaneVisionError, isLaneVisionError } from '../errors.js';
import { MODEL_JSON, TM_METADATA_JSON, expectedGroupBytes, parseModelJson } from './model-files.js';
import { isModelHubModelJsonUrl, siblingUrl } from './model-source.js';

const debug = createDebug('lane-vision:engine');

export const CACHE_ENV_VAR = 'LANE_VISION_CACHE';
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_DOWNLOAD_BYTES = 512 * 1024 * 1024;
/** Written into each cached folder: where it came from, for people copying caches around. */
export const SOURCE_FILE = 'lane-vision-source.json';

export interface DownloadOptions {
  /** Cache root. Default: env LANE_VISION_CACHE, else ~/.cache/lane-vision/models. */
  cacheDir?: string;
  /** Limit for each HTTP request, body included. Default 60 s. */
  requestTimeoutMs?: number;
  /** Refuse models larger than this in total. Default 512 MiB. */
  maxDownloadBytes?: number;
  /**
   * Told how the download goes: at each file's start and end, and in between at most every
   * `progressIntervalMs`; the last call has `done` set. Not called for a cached model.
   */
  onProgress?: (progress: DownloadProgress) => void;
  /** Least time between two in-file progress calls. Default 250 ms. */
  progressIntervalMs?: number;
}

/** Where a model download stands. */
export interface DownloadProgress {
  /** The model.json URL being downloaded. */
  url: string;
  /** The file in flight: model.json, then each weight shard as model.json names it. */
  file: string;
  /** Bytes of `file` received so far, and its Content-Length when the server sent one. */
  fileBytes: number;
  fileTotal?: number;
  /** Bytes of the whole model received so far. */
  receivedBytes: number;
  /** Bytes of the whole model (model.json + weights), known once model.json has arrived. */
  totalBytes?: number;
  /** Set on the last call, when every file is in and checked. */
  done: boolean;
}

export const DEFAULT_PROGRESS_INTERVAL_MS = 250;

/** "3.1/5.2 MB" (or "3.1 MB" while the total is unknown), as the node status and the CLI show it. */
export function formatDownloadProgress(progress: Pick<DownloadProgress, 'receivedBytes' | 'totalBytes'>): string {
  const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
  return progress.totalBytes !== undefined ? `${mb(progress.receivedBytes)}/${mb(progress.totalBytes)} MB` : `${mb(progress.receivedBytes)} MB`;
}

export function defaultCacheDir(): string {
  const fromEnv = process.env[CACHE_ENV_VAR];
  if (fromEnv && fromEnv.trim()) return path.resolve(fromEnv.trim());
  return path.join(os.homedir(), '.cache', 'lane-vision', 'models');
}

/** The cache folder for a model.json URL: readable prefix + hash of the full URL. */
export function cacheFolderFor(modelJsonUrl: string, cacheDir: string = defaultCacheDir()): string {
  const hash = createHash('sha256').update(modelJsonUrl).digest('hex').slice(0, 16);
  let readable = modelJsonUrl.replace(/^[a-z]+:\/\//i, '').replace(/\?.*$/, '').replace(/\/model\.json$/i, '');
  readable = readable.replace(/[^a-zA-Z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(-80);
  return path.join(path.resolve(cacheDir), `${readable}-${hash}`);
}

/** The cached folder for this URL if it is there (no network). */
export async function findCachedModel(modelJsonUrl: string, cacheDir?: string): Promise<string | undefined> {
  const folder = cacheFolderFor(modelJsonUrl, cacheDir);
  const stat = await fs.stat(path.join(folder, MODEL_JSON)).catch(() => undefined);
  return stat?.isFile() ? folder : undefined;
}

/**
 * Returns the cache folder holding the model at `modelJsonUrl`, downloading it first if it
 * is not cached. Errors: MODEL_NOT_FOUND (404), MODEL_DOWNLOAD_FAILED, MODEL_OFFLINE,
 * MODEL_TIMEOUT, MODEL_TRUNCATED, MODEL_TOO_LARGE, MODEL_INVALID. On any error nothing is
 * left in the cache.
 */
export async function downloadModel(modelJsonUrl: string, options: DownloadOptions = {}): Promise<string> {
  const cacheDir = path.resolve(options.cacheDir ?? defaultCacheDir());
  const cached = await findCachedModel(modelJsonUrl, cacheDir);
  if (cached) {
    debug('model %s from cache %s', modelJsonUrl, cached);
    return cached;
  }
  const finalDir = cacheFolderFor(modelJsonUrl, cacheDir);
  const budget: Budget = {
    cacheDir,
    timeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxBytes: options.maxDownloadBytes ?? DEFAULT_MAX_DOWNLOAD_BYTES,
    used: 0,
    // Made per download so that proxy variables set since the last one count.
    dispatcher: new EnvHttpProxyAgent(),
    progress: progressReporter(modelJsonUrl, options),
  };
  const tmpDir = path.join(cacheDir, `${PARTIAL_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await fs.mkdir(cacheDir, { recursive: true });
    await removeStalePartials(cacheDir);
    await fs.mkdir(tmpDir);
  } catch (err) {
    throw new LaneVisionError('MODEL_DOWNLOAD_FAILED', `Cannot write to the model cache folder ${cacheDir}: ${describe(err)}`, { cause: err });
  }
  const started = Date.now();
  try {
    const modelJsonText = (await fetchToFile(modelJsonUrl, path.join(tmpDir, MODEL_JSON), budget, MODEL_JSON)).bytes!.toString('utf8');
    const modelJson = parseModelJson(modelJsonText, `model.json from ${modelJsonUrl}`);
    const expectedTotal = modelJson.weightsManifest.reduce((n, g) => n + (expectedGroupBytes(g) ?? 0), 0);
    if (budget.used + expectedTotal > budget.maxBytes) {
      throw tooLarge(modelJsonUrl, budget.used + expectedTotal, budget.maxBytes);
    }
    const knowable = modelJson.weightsManifest.every((g) => expectedGroupBytes(g) !== undefined);
    if (knowable) budget.progress.totalBytes = budget.used + expectedTotal;
    const files: { file: string; bytes: number }[] = [{ file: MODEL_JSON, bytes: Buffer.byteLength(modelJsonText) }];
    for (const group of modelJson.weightsManifest) {
      let groupBytes = 0;
      for (const shard of group.paths) {
        const target = path.join(tmpDir, ...shard.split('/'));
        await fs.mkdir(path.dirname(target), { recursive: true });
        const bytes = (await fetchToFile(siblingUrl(modelJsonUrl, shard), target, budget, shard, false)).length;
        groupBytes += bytes;
        files.push({ file: shard, bytes });
      }
      const expected = expectedGroupBytes(group);
      if (expected !== undefined && groupBytes !== expected) {
        throw new LaneVisionError(
          groupBytes < expected ? 'MODEL_TRUNCATED' : 'MODEL_INVALID',
          `Weight files ${group.paths.join(', ')} from ${modelJsonUrl} hold ${groupBytes} bytes but model.json describes ${expected}` +
            (groupBytes < expected ? ': the download was cut short, try again' : ': the server sent files that do not match model.json'),
        );
      }
    }
    if (!isModelHubModelJsonUrl(modelJsonUrl)) {
      // Teachable Machine hosts metadata.json (class labels) next to model.json; optional.
      const metadata = await fetchOptional(siblingUrl(modelJsonUrl, TM_METADATA_JSON), budget);
      if (metadata) {
        await fs.writeFile(path.join(tmpDir, TM_METADATA_JSON), metadata);
        files.push({ file: TM_METADATA_JSON, bytes: metadata.length });
      }
    }
    budget.progress.finish();
    const record = { url: modelJsonUrl, downloadedAt: new Date().toISOString(), files };
    await fs.writeFile(path.join(tmpDir, SOURCE_FILE), JSON.stringify(record, null, 2));
    try {
      await fs.rename(tmpDir, finalDir);
    } catch (err) {
      // Another process finished the same download first: keep theirs.
      if (await findCachedModel(modelJsonUrl, cacheDir)) return finalDir;
      throw new LaneVisionError('MODEL_DOWNLOAD_FAILED', `Cannot move the downloaded model into ${finalDir}: ${describe(err)}`, { cause: err });
    }
    debug('downloaded %s (%d bytes) in %d ms to %s', modelJsonUrl, budget.used, Date.now() - started, finalDir);
    return finalDir;
  } finally {
    await budget.dispatcher.close().catch(() => undefined);
    await fs.rm(tmpDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Progress bookkeeping of one download; calls `onProgress` (rate-limited within a file). */
interface ProgressReporter {
  totalBytes?: number;
  startFile(file: string, fileTotal: number | undefined): void;
  add(bytes: number): void;
  endFile(): void;
  finish(): void;
}

function progressReporter(url: string, options: DownloadOptions): ProgressReporter {
  const listener = options.onProgress;
  const interval = options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS;
  let file = '';
  let fileBytes = 0;
  let fileTotal: number | undefined;
  let receivedBytes = 0;
  let lastCall = 0;
  const reporter: ProgressReporter = {
    totalBytes: undefined,
    startFile(name, total) {
      file = name;
      fileBytes = 0;
      fileTotal = total;
      call(false);
    },
    add(bytes) {
      fileBytes += bytes;
      receivedBytes += bytes;
      if (Date.now() - lastCall >= interval) call(false);
    },
    endFile: () => call(false),
    finish: () => call(true),
  };
  function call(done: boolean): void {
    if (!listener) return;
    lastCall = Date.now();
    const total = reporter.totalBytes !== undefined ? Math.max(reporter.totalBytes, receivedBytes) : undefined;
    try {
      listener({ url, file, fileBytes, fileTotal, receivedBytes, totalBytes: total, done });
    } catch (err) {
      debug('progress listener failed: %s', describe(err)); // a display problem must not stop the download
    }
  }
  return reporter;
}

const PARTIAL_PREFIX = '.partial-';
const STALE_PARTIAL_MS = 6 * 60 * 60 * 1000;

/** Leftovers of downloads whose process died (a live download is never this old). */
async function removeStalePartials(cacheDir: string): Promise<void> {
  const entries = await fs.readdir(cacheDir).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(PARTIAL_PREFIX))) {
    const full = path.join(cacheDir, entry);
    const stat = await fs.stat(full).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > STALE_PARTIAL_MS) await fs.rm(full, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Limits and bookkeeping shared by the requests of one download. */
interface Budget {
  cacheDir: string;
  timeoutMs: number;
  maxBytes: number;
  used: number;
  /** Proxy-aware connection pool of this download, closed at its end. */
  dispatcher: Dispatcher;
  progress: ProgressReporter;
}

/**
 * GETs `url` into `file`, enforcing the timeout (headers and body) and the size budget.
 * Returns how many bytes arrived, and the bytes themselves when `keep` is set (model.json;
 * shards stay on disk only).
 */
async function fetchToFile(
  url: string,
  file: string,
  budget: Budget,
  shardName: string,
  keep = true,
): Promise<{ length: number; bytes?: Buffer }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), budget.timeoutMs);
  let handle: fs.FileHandle | undefined;
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: controller.signal, redirect: 'follow', dispatcher: budget.dispatcher });
    } catch (err) {
      throw fetchFailure(err, url, controller.signal.aborted, budget);
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      throw httpFailure(response.status, url);
    }
    // With a content-encoding, Content-Length counts compressed bytes: not comparable.
    const encoding = response.headers.get('content-encoding');
    const declared = encoding && encoding !== 'identity' ? NaN : Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && budget.used + declared > budget.maxBytes) {
      throw tooLarge(url, budget.used + declared, budget.maxBytes);
    }
    handle = await fs.open(file, 'w');
    const kept: Buffer[] = [];
    let received = 0;
    budget.progress.startFile(shardName, Number.isFinite(declared) ? declared : undefined);
    try {
      // Node's web ReadableStream is async-iterable; the DOM typings do not say so.
      for await (const chunk of (response.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
        const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        received += bytes.length;
        budget.used += bytes.length;
        if (budget.used > budget.maxBytes) {
          controller.abort();
          throw tooLarge(url, budget.used, budget.maxBytes);
        }
        await handle.write(bytes);
        if (keep) kept.push(bytes);
        budget.progress.add(bytes.length);
      }
    } catch (err) {
      if (isLaneVisionError(err)) throw err;
      if (controller.signal.aborted) throw timeout(url, budget.timeoutMs, err);
      throw new LaneVisionError(
        'MODEL_TRUNCATED',
        `The download of ${url} broke off after ${received} bytes${Number.isFinite(declared) ? ` of ${declared}` : ''} (${describe(err)}): try again`,
        { cause: err },
      );
    }
    if (Number.isFinite(declared) && received < declared) {
      throw new LaneVisionError('MODEL_TRUNCATED', `The download of ${url} stopped after ${received} of ${declared} bytes: try again`);
    }
    budget.progress.endFile();
    return { length: received, bytes: keep ? Buffer.concat(kept) : undefined };
  } finally {
    clearTimeout(timer);
    controller.abort(); // frees the connection of a response we stopped reading; no-op once read
    await handle?.close().catch(() => undefined);
  }
}

/** GET of an optional file: its bytes, or undefined on 404 or any other failure except a timeout. */
async function fetchOptional(url: string, budget: Budget): Promise<Buffer | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), budget.timeoutMs);
  try {
    const response = await fetch(url, { signal: controller.signal, dispatcher: budget.dispatcher });
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      return undefined;
    }
    const bytes = Buffer.from(await response.arrayBuffer());
    if (bytes.length > 1024 * 1024) return undefined;
    budget.used += bytes.length;
    return bytes;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Error codes Node's fetch (undici) reports when there is no route to the server. */
const OFFLINE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ENETDOWN', 'EAI_FAIL', 'EAI_NONAME']);

function fetchFailure(err: unknown, url: string, aborted: boolean, budget: Budget): LaneVisionError {
  if (aborted) return timeout(url, budget.timeoutMs, err);
  const code = errorCode(err);
  const host = hostOf(url);
  if (code && OFFLINE_CODES.has(code)) {
    return new LaneVisionError(
      'MODEL_OFFLINE',
      `Cannot reach ${host} (${code}) to download the model ${url}${proxyNote(url)}. If this machine has no internet, ` +
        `copy the model folder onto it and set its path as the model source, or copy the Lane Vision model cache ` +
        `of a machine that has it into ${budget.cacheDir}.`,
      { cause: err },
    );
  }
  return new LaneVisionError('MODEL_DOWNLOAD_FAILED', `Downloading ${url} failed: ${describe(err)}`, { cause: err });
}

/** Names the proxy variable in play, since an unreachable proxy looks like an unreachable server. */
function proxyNote(url: string): string {
  const https = url.toLowerCase().startsWith('https:');
  const names = https ? ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'] : ['http_proxy', 'HTTP_PROXY'];
  const name = names.find((n) => process.env[n]);
  return name ? ` (${name} is set to ${process.env[name]}, unless NO_PROXY exempts this host: check that proxy too)` : '';
}

function httpFailure(status: number, url: string): LaneVisionError {
  if (status === 404 || status === 410) {
    return new LaneVisionError('MODEL_NOT_FOUND', `No model at ${url} (HTTP ${status}): check the URL`);
  }
  return new LaneVisionError('MODEL_DOWNLOAD_FAILED', `The server answered HTTP ${status} for ${url}: try again later or check the URL`);
}

function timeout(url: string, timeoutMs: number, cause?: unknown): LaneVisionError {
  return new LaneVisionError(
    'MODEL_TIMEOUT',
    `No complete answer from ${hostOf(url)} within ${Math.round(timeoutMs / 100) / 10} s for ${url}: the network is slow or the server stalls`,
    { cause },
  );
}

function tooLarge(url: string, bytes: number, maxBytes: number): LaneVisionError {
  return new LaneVisionError(
    'MODEL_TOO_LARGE',
    `The model at ${url} needs at least ${bytes} bytes, more than the download limit of ${maxBytes} bytes`,
  );
}

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    // AggregateError (happy-eyeballs tried several addresses)
    const inner = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(inner) && inner.length) {
      const nested = errorCode(inner[0]);
      if (nested) return nested;
    }
  }
  return undefined;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error && cause.message !== err.message ? `${err.message}: ${cause.message}` : err.message;
}
