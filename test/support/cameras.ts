/**
 * Real cameras on 127.0.0.1 for the camera tests: ffmpeg serving an MJPEG stream, GStreamer's
 * RTSP server streaming H.264, and a node HTTP snapshot server with basic or digest auth.
 * Each can be stopped and started again on the same port (a camera dropping off the network).
 * Tools that are missing make `missingTools` say so, and the tests skip with that reason.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { freePort } from '../e2e/support.js';

const PYTHON = '/usr/bin/python3';
const RTSP_SCRIPT = path.join(__dirname, 'rtsp-server.py');

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && fs.existsSync(path.join(dir, command)));
}

let rtspChecked: string | undefined | null = null;
/** Why the RTSP server cannot run here, or undefined when it can. */
export function rtspServerMissing(): string | undefined {
  if (rtspChecked !== null) return rtspChecked;
  try {
    execFileSync(PYTHON, ['-c', "import gi; gi.require_version('GstRtspServer', '1.0'); gi.require_version('Gst', '1.0'); from gi.repository import Gst, GstRtspServer; Gst.init(None); assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay') and Gst.ElementFactory.find('videotestsrc')"], { stdio: 'pipe', timeout: 20_000 });
    rtspChecked = undefined;
  } catch {
    rtspChecked = 'GStreamer RTSP server missing (apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-plugins-base)';
  }
  return rtspChecked;
}

export function ffmpegMissing(): string | undefined {
  return onPath('ffmpeg') ? undefined : 'ffmpeg is not installed (apt-get install ffmpeg)';
}

export { freePort };

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface TestCamera {
  url: string;
  port: number;
  /** Drops the camera off the network (the process ends; clients lose their connection). */
  stop(): Promise<void>;
  /** Brings it back on the same port. */
  start(): Promise<void>;
}

/**
 * ffmpeg as an MJPEG camera: `-f mpjpeg -listen 1` serves one client, then exits, so it is
 * started again after each client (like a camera that takes one viewer at a time).
 */
export async function startMjpegCamera(video: { size?: string; rate?: number; quality?: number } = {}): Promise<TestCamera> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/stream.mjpg`;
  let child: ChildProcess | undefined;
  let up = false;
  const spawnOne = () => {
    const one = spawn('ffmpeg', [
      '-hide_banner', '-loglevel', 'quiet', '-nostdin',
      '-re', '-f', 'lavfi', '-i', `testsrc=size=${video.size ?? '640x480'}:rate=${video.rate ?? 10}`,
      '-q:v', String(video.quality ?? 5), '-f', 'mpjpeg', '-content_type', 'multipart/x-mixed-replace;boundary=ffmpeg',
      '-listen', '1', url,
    ], { stdio: 'ignore' });
    child = one;
    one.once('exit', () => {
      if (up && child === one) spawnOne();
    });
  };
  const camera: TestCamera = {
    url,
    port,
    async start() {
      up = true;
      spawnOne();
      await waitListening(port);
    },
    async stop() {
      up = false;
      const one = child;
      one?.kill('SIGKILL');
      if (one) await exited(one);
    },
  };
  await camera.start();
  return camera;
}

/** GStreamer's RTSP server (test/support/rtsp-server.py) streaming H.264 at rtsp://127.0.0.1:PORT/test. */
export async function startRtspCamera(): Promise<TestCamera> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const camera: TestCamera = {
    url: `rtsp://127.0.0.1:${port}/test`,
    port,
    async start() {
      const one = spawn(PYTHON, [RTSP_SCRIPT, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
      child = one;
      await new Promise<void>((resolve, reject) => {
        let said = '';
        one.stdout!.setEncoding('utf8').on('data', (text: string) => {
          said += text;
          if (said.includes('ready')) resolve();
        });
        one.once('exit', (code) => reject(new Error(`the RTSP server ended (exit code ${code}) before it was ready`)));
      });
    },
    async stop() {
      const one = child;
      one?.kill('SIGKILL');
      if (one) await exited(one);
    },
  };
  await camera.start();
  return camera;
}

/**
 * Waits for a LISTEN socket on `port` by reading /proc/net/tcp: connecting to look would use up
 * ffmpeg's one client.
 */
async function waitListening(port: number): Promise<void> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (let attempt = 0; ; attempt++) {
    const table = fs.readFileSync('/proc/net/tcp', 'utf8');
    if (table.split('\n').some((line) => line.trim().split(/\s+/)[1]?.endsWith(`:${hexPort}`) && line.trim().split(/\s+/)[3] === '0A')) return;
    if (attempt > 400) throw new Error(`nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 25)); // polling a port that is coming up, not timing the test
  }
}

export interface SnapshotServer extends TestCamera {
  /** Requests served with an image. */
  served: number;
  /** Authorization headers that were refused. */
  refused: number;
}

/**
 * An HTTP camera serving `image` at /snapshot.jpg, checking basic or digest auth (RFC 7616,
 * MD5, qop=auth) for `user`/`password`, or none.
 */
export async function startSnapshotServer(image: Buffer, auth: { scheme: 'basic' | 'digest' | 'none'; user?: string; password?: string }): Promise<SnapshotServer> {
  const port = await freePort();
  const realm = 'lane-camera';
  const nonce = randomBytes(12).toString('hex');
  const md5 = (text: string) => createHash('md5').update(text).digest('hex');
  let server: http.Server | undefined;
  const sockets = new Set<net.Socket>();

  function authorized(header: string | undefined): boolean {
    if (auth.scheme === 'none') return true;
    if (!header) return false;
    if (auth.scheme === 'basic') return header === `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
    if (!header.startsWith('Digest ')) return false;
    const p: Record<string, string> = {};
    for (const m of header.matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]+))/g)) p[m[1]] = m[2] ?? m[3];
    const ha1 = md5(`${auth.user}:${realm}:${auth.password}`);
    const ha2 = md5(`GET:${p.uri}`);
    return p.username === auth.user && p.nonce === nonce && p.response === md5(`${ha1}:${nonce}:${p.nc}:${p.cnonce}:${p.qop}:${ha2}`);
  }

  const snapshot: SnapshotServer = {
    url: `http://127.0.0.1:${port}/snapshot.jpg`,
    port,
    served: 0,
    refused: 0,
    async start() {
      server = http.createServer((req, res) => {
        if (req.url !== '/snapshot.jpg') {
          res.writeHead(404).end();
          return;
        }
        if (!authorized(req.headers.authorization)) {
          if (req.headers.authorization) snapshot.refused++;
          const challenge = auth.scheme === 'basic' ? `Basic realm="${realm}"` : `Digest realm="${realm}", qop="auth", nonce="${nonce}", algorithm=MD5, opaque="${md5(realm)}"`;
          res.writeHead(401, { 'www-authenticate': challenge }).end();
          return;
        }
        snapshot.served++;
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': image.length }).end(image);
      });
      server.on('connection', (socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    },
    async stop() {
      const one = server;
      if (!one) return;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => one.close(() => resolve()));
    },
  };
  await snapshot.start();
  return snapshot;
}

/** True while process `pid` exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
