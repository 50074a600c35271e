/**
 * HTTP cameras: a snapshot URL polled for one JPEG per frame, or an MJPEG stream
 * (multipart/x-mixed-replace) whose parts are passed on without re-encoding. `http` finds
 * out which from the answer's content type, for the command line's one source string.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { LaneVisionError } from '../errors.js';
import { HttpAuthenticator, type Credentials } from './http-auth.js';
import { MjpegParser, multipartBoundary } from './mjpeg-parser.js';
import type { CameraKind, Connector, Demand, FrameSink } from './types.js';

export interface HttpCameraOptions {
  url: string;
  /** Credentials; else those in the URL (http://user:pass@cam/...), else none. */
  credentials?: Credentials;
  /** A request (or an MJPEG stream between two bytes) that takes longer fails. Default 10 s. */
  timeoutMs?: number;
  /** https: check the camera's certificate (default true; cameras often have self-signed ones). */
  tlsVerify?: boolean;
}

const DEFAULT_TIMEOUT_MS = 10_000;

/** The URL for logs and status: the password is replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

function checkHttpUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new LaneVisionError('CAMERA_BAD_SOURCE', `"${url}" is not a URL: give the camera's address, e.g. http://192.168.1.20/snapshot.jpg`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new LaneVisionError('CAMERA_BAD_SOURCE', `An HTTP camera needs an http:// or https:// URL, got "${redactUrl(url)}"`);
  }
  return parsed;
}

/** One camera's HTTP client: requests with its credentials, answering 401 challenges. */
class CameraClient {
  private readonly url: URL;
  private readonly auth: HttpAuthenticator | undefined;
  readonly timeoutMs: number;
  private readonly tlsVerify: boolean;

  constructor(options: HttpCameraOptions) {
    this.tlsVerify = options.tlsVerify !== false;
    this.url = checkHttpUrl(options.url);
    const fromUrl = this.url.username ? { user: decodeURIComponent(this.url.username), password: decodeURIComponent(this.url.password) } : undefined;
    this.url.username = '';
    this.url.password = '';
    const credentials = options.credentials?.user ? options.credentials : fromUrl;
    this.auth = credentials ? new HttpAuthenticator(credentials) : undefined;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** GET the URL: a 200 answer whose body is still to be read, or a clear error. */
  async get(signal: AbortSignal): Promise<http.IncomingMessage> {
    let answer = await this.request(signal);
    if (answer.statusCode === 401 && this.auth) {
      // First contact, or the nonce went stale: take the new challenge and ask once more.
      answer.resume();
      if (!this.auth.accept(answer.headers['www-authenticate'])) {
        throw new LaneVisionError('CAMERA_AUTH_UNSUPPORTED', `The camera asks for an authentication other than basic or digest (${String(answer.headers['www-authenticate'] ?? 'none named')})`);
      }
      answer = await this.request(signal);
      if (answer.statusCode === 401) {
        answer.resume();
        throw new LaneVisionError('CAMERA_AUTH_FAILED', `The camera refused the user name and password (${this.auth.scheme} authentication): check the credentials`);
      }
    }
    if (answer.statusCode === 401) {
      answer.resume();
      throw new LaneVisionError('CAMERA_AUTH_REQUIRED', 'The camera wants a user name and password: set them in the node (or in the URL)');
    }
    if (answer.statusCode !== 200) {
      answer.resume();
      throw new LaneVisionError('CAMERA_HTTP_ERROR', `The camera answered HTTP ${answer.statusCode} ${answer.statusMessage ?? ''}`.trim());
    }
    return answer;
  }

  private request(signal: AbortSignal): Promise<http.IncomingMessage> {
    const path = `${this.url.pathname}${this.url.search}`;
    const authorization = this.auth?.header('GET', path);
    const secure = this.url.protocol === 'https:';
    const get = secure ? https.get : http.get;
    return new Promise((resolve, reject) => {
      const options = { signal, headers: authorization ? { authorization } : {}, timeout: this.timeoutMs, ...(secure ? { rejectUnauthorized: this.tlsVerify } : {}) };
      const request = get(this.url, options, resolve);
      request.on('timeout', () => request.destroy(new LaneVisionError('CAMERA_TIMEOUT', `No answer from the camera within ${this.timeoutMs / 1000} s`)));
      request.on('error', (err) => reject(describeNetworkError(err, this.url)));
    });
  }
}

function describeNetworkError(err: Error, url: URL): Error {
  if (err instanceof LaneVisionError || err.name === 'AbortError') return err;
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
  if (code === 'ECONNREFUSED') return new LaneVisionError('CAMERA_UNREACHABLE', `Nothing answers at ${where} (connection refused)`, { cause: err });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new LaneVisionError('CAMERA_UNREACHABLE', `The camera's host name ${url.hostname} is unknown`, { cause: err });
  if (code === 'ECONNRESET') return new LaneVisionError('CAMERA_DISCONNECTED', `The camera at ${where} closed the connection`, { cause: err });
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new LaneVisionError('CAMERA_TLS', `The camera at ${where} has a certificate that cannot be checked (${err.message}): turn off the certificate check for it, or use http://`, { cause: err });
  }
  return new LaneVisionError('CAMERA_UNREACHABLE', `Cannot reach the camera at ${where}: ${err.message}`, { cause: err });
}

async function readBody(answer: http.IncomingMessage, timeoutMs: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  answer.setTimeout(timeoutMs, () => answer.destroy(new LaneVisionError('CAMERA_TIMEOUT', `The camera stopped sending within ${timeoutMs / 1000} s`)));
  for await (const chunk of answer) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Reads an MJPEG answer until it ends (an error: a camera stream does not end by itself) or `signal` aborts. */
async function readMjpeg(answer: http.IncomingMessage, boundary: string, sink: FrameSink, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const parser = new MjpegParser(boundary, (image) => sink(image));
  answer.setTimeout(timeoutMs, () => answer.destroy(new LaneVisionError('CAMERA_TIMEOUT', `The MJPEG stream sent nothing for ${timeoutMs / 1000} s`)));
  try {
    for await (const chunk of answer) parser.push(chunk as Buffer);
  } catch (err) {
    if (signal.aborted) return;
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as Error).message === 'aborted') {
      throw new LaneVisionError('CAMERA_DISCONNECTED', 'The MJPEG stream broke off', { cause: err });
    }
    throw err;
  }
  if (!signal.aborted) throw new LaneVisionError('CAMERA_DISCONNECTED', 'The camera ended the MJPEG stream');
}

function isJpegOrImage(body: Buffer, contentType: string | undefined): boolean {
  return (body[0] === 0xff && body[1] === 0xd8) || /^image\//i.test(contentType ?? '');
}

/** A snapshot URL: one GET per wanted frame. */
export function snapshotCamera(options: HttpCameraOptions): Connector {
  const client = new CameraClient(options);
  return {
    kind: 'snapshot',
    label: redactUrl(options.url),
    async run(sink: FrameSink, demand: Demand, signal: AbortSignal) {
      while (await demand()) {
        if (signal.aborted) return;
        const answer = await client.get(signal);
        const body = await readBody(answer, client.timeoutMs);
        if (!isJpegOrImage(body, answer.headers['content-type'])) {
          throw new LaneVisionError('CAMERA_NOT_AN_IMAGE', `The snapshot URL sent ${answer.headers['content-type'] ?? 'no content type'}, not an image: is it the camera's snapshot address?`);
        }
        sink(body);
      }
    },
  };
}

/** An MJPEG stream URL. */
export function mjpegCamera(options: HttpCameraOptions): Connector {
  const client = new CameraClient(options);
  return {
    kind: 'mjpeg',
    label: redactUrl(options.url),
    async run(sink: FrameSink, _demand: Demand, signal: AbortSignal) {
      const answer = await client.get(signal);
      const boundary = multipartBoundary(answer.headers['content-type']);
      if (!boundary) {
        answer.resume();
        throw new LaneVisionError('CAMERA_NOT_MJPEG', `The URL sent ${answer.headers['content-type'] ?? 'no content type'}, not an MJPEG stream (multipart/x-mixed-replace): for a single image use the snapshot kind`);
      }
      await readMjpeg(answer, boundary, sink, client.timeoutMs, signal);
    },
  };
}

/** An HTTP URL that is a snapshot or a stream: the first answer's content type decides (and is remembered). */
export function httpCamera(options: HttpCameraOptions): Connector & { resolvedKind(): CameraKind | undefined } {
  const client = new CameraClient(options);
  let resolved: 'snapshot' | 'mjpeg' | undefined;
  return {
    get kind() {
      return resolved ?? 'snapshot';
    },
    resolvedKind: () => resolved,
    label: redactUrl(options.url),
    async run(sink: FrameSink, demand: Demand, signal: AbortSignal) {
      if (resolved === 'mjpeg') {
        const answer = await client.get(signal);
        const boundary = multipartBoundary(answer.headers['content-type']);
        if (!boundary) throw new LaneVisionError('CAMERA_NOT_MJPEG', 'The camera stopped sending an MJPEG stream');
        return readMjpeg(answer, boundary, sink, client.timeoutMs, signal);
      }
      while (await demand()) {
        const answer = await client.get(signal);
        const boundary = multipartBoundary(answer.headers['content-type']);
        if (boundary) {
          resolved = 'mjpeg';
          return readMjpeg(answer, boundary, sink, client.timeoutMs, signal);
        }
        const body = await readBody(answer, client.timeoutMs);
        if (!isJpegOrImage(body, answer.headers['content-type'])) {
          throw new LaneVisionError('CAMERA_NOT_AN_IMAGE', `The URL sent ${answer.headers['content-type'] ?? 'no content type'}, neither an image nor an MJPEG stream`);
        }
        resolved = 'snapshot';
        sink(body);
      }
    },
  };
}
