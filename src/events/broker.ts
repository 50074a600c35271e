/**
 * A small MQTT broker (aedes) inside the process, for demos, tests and a lane without
 * its own broker. Listens on 127.0.0.1 unless told otherwise, so it is not exposed to the
 * factory network by accident.
 */
import * as net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import createDebug from 'debug';
import type { Aedes, AedesOptions } from 'aedes';
import { LaneVisionError } from '../errors.js';

const log = createDebug('lane-vision:events');

export interface EmbeddedBrokerOptions {
  /** Default 127.0.0.1. Use 0.0.0.0 only to let other machines connect. */
  host?: string;
  /** Default 0: a free port, reported in the result. */
  port?: number;
  /** When given, clients must log in with exactly these. */
  credentials?: { username: string; password: string };
}

export interface EmbeddedBroker {
  /** mqtt://host:port to give to LaneMqttConnection. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** The aedes instance, for advanced use (events, connected clients). */
  readonly aedes: Aedes;
  /** Disconnects every client and stops listening. */
  close(): Promise<void>;
}

function sameSecret(given: Buffer | string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export async function startEmbeddedBroker(options: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) {
    throw new LaneVisionError('BROKER_CONFIG_INVALID', `Broker port must be an integer from 0 to 65535, got ${port}.`);
  }
  const aedesOptions: AedesOptions = {};
  const credentials = options.credentials;
  if (credentials) {
    if (!credentials.username || typeof credentials.password !== 'string') {
      throw new LaneVisionError('BROKER_CONFIG_INVALID', 'Broker credentials need a username and a password.');
    }
    aedesOptions.authenticate = (_client, username, password, done) => {
      if (username === credentials.username && sameSecret(password, credentials.password)) return done(null, true);
      // returnCode 4 = "bad user name or password" in the CONNACK.
      done(Object.assign(new Error('Bad username or password'), { returnCode: 4 as const }), null);
    };
  }
  // aedes 1.x is ESM-only and created asynchronously (Aedes.createBroker awaits its persistence).
  const { Aedes: AedesBroker } = await import('aedes');
  const aedes = await AedesBroker.createBroker(aedesOptions);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw new LaneVisionError('BROKER_LISTEN_FAILED', `The embedded MQTT broker cannot listen on ${host}:${port}: ${(err as Error).message}.`, { cause: err });
  }
  const address = server.address() as net.AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  log('embedded broker listening on %s:%d', address.address, address.port);
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://${urlHost}:${address.port}`,
    host: address.address,
    port: address.port,
    aedes,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await stopped;
        log('embedded broker on port %d closed', address.port);
      })();
      return closing;
    },
  };
}
