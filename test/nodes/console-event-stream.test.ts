/**
 * The console's event streams cannot be exhausted: each address gets a share, logged-in
 * pages keep slots of their own, streams end after their lifetime (the page reconnects),
 * and a client that stopped reading is dropped. A real HTTP server and express, small limits.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { EventHub, type EventHubLimits } from '../../src/console/event-stream.js';

let server: http.Server;
let base: string;
let hub: EventHub;
/** What the route answers for the next open; set per test. */
let authenticated = false;

function startHub(limits: Partial<EventHubLimits>): void {
  hub?.close();
  hub = new EventHub(() => undefined, limits);
}

before(async () => {
  const app = express();
  app.get('/events', (req, res) => {
    const refused = hub.open(req, res, { event: 'state', data: { ok: true } }, { authenticated });
    if (refused) res.status(refused === 'client-limit' ? 429 : 503).json({ error: refused });
  });
  server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  hub?.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Opens a stream; resolves with its status, and `ended` once the server ends it. */
function open(localAddress = '127.0.0.1'): Promise<{ status: number; ended: Promise<void>; destroy(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/events`, { localAddress, agent: false }, (res) => {
      const ended = new Promise<void>((done) => {
        res.on('end', done);
        res.on('close', done);
      });
      res.resume();
      resolve({ status: res.statusCode!, ended, destroy: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

test('one address gets its share (429), the console its total (503); a closed stream frees its slot', async () => {
  startHub({ perClient: 2, maxViewers: 3, reservedForAuthenticated: 0 });
  const a1 = await open('127.0.0.1');
  const a2 = await open('127.0.0.1');
  assert.deepEqual([a1.status, a2.status], [200, 200]);
  assert.equal((await open('127.0.0.1')).status, 429, 'a third from the same address');
  const b1 = await open('127.0.0.2');
  assert.equal(b1.status, 200, 'another address still gets in');
  assert.equal((await open('127.0.0.3')).status, 503, 'the console is full');
  a1.destroy();
  for (; hub.viewers > 2; ) await new Promise((resolve) => setImmediate(resolve));
  assert.equal((await open('127.0.0.3')).status, 200, 'the freed slot is taken');
  hub.close();
  await Promise.all([a2.ended, b1.ended]);
});

test('slots kept for logged-in pages: anonymous ones stop short of the total', async () => {
  startHub({ perClient: 10, maxViewers: 3, reservedForAuthenticated: 1 });
  authenticated = false;
  const anonymous = [await open('127.0.0.1'), await open('127.0.0.2')];
  assert.deepEqual(anonymous.map((s) => s.status), [200, 200]);
  assert.equal((await open('127.0.0.3')).status, 503, 'the last slot is not for anonymous pages');
  authenticated = true;
  assert.equal((await open('127.0.0.3')).status, 200, 'a logged-in page gets it');
  authenticated = false;
  hub.close();
});

test('a stream ends after its lifetime, so an abandoned page does not hold a slot forever', async () => {
  startHub({ maxStreamMs: 30 });
  const stream = await open();
  assert.equal(stream.status, 200);
  assert.equal(hub.viewers, 1);
  await stream.ended;
  assert.equal(hub.viewers, 0, 'the slot is free again');
});

test('a client that stops reading is dropped once its unsent text passes the limit', async () => {
  startHub({ maxBufferedBytes: 64 * 1024 });
  // A raw socket that never reads: the server's writes pile up in its buffer.
  const { createConnection } = await import('node:net');
  const socket = createConnection({ host: '127.0.0.1', port: Number(new URL(base).port) });
  socket.pause();
  socket.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
  for (; hub.viewers === 0; ) await new Promise((resolve) => setTimeout(resolve, 5));
  const big = 'x'.repeat(64 * 1024);
  for (let i = 0; i < 1000 && hub.viewers > 0; i++) {
    hub.send('frame', big);
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(hub.viewers, 0, 'dropped, not buffered without end');
  socket.destroy();
});
