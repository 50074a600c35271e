/**
 * A small MQTT broker (aedes) inside the process, for demos, tests and a lane without
 * its own broker. Listens on 127.0.0.1 unless told otherwise, so it is not exposed to the
 * factory network by accident.
 */
import * as net from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
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
  /** While true, the broker does not keep the process alive (a broker waiting to be taken over). */
  setIdle(idle: boolean): void;
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
  let idle = false;
  const server = net.createServer((socket) => {
    if (idle) socket.unref();
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
    setIdle(value) {
      idle = value;
      for (const target of [server, ...sockets]) {
        if (value) target.unref();
        else target.ref();
      }
    },
    close() {
      closing ??= (async () => {
        // Stops listening at once (before the first await), so the port is free as soon as close() is called.
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await stopped;
        log('embedded broker on port %d closed', address.port);
      })();
      return closing;
    },
  };
}

// #region kept across redeploys

/**
 * How long an embedded broker on a fixed port outlives its last station: a Node-RED deploy
 * stops the old nodes and starts the new ones within this, and a new station with the same
 * settings takes the running broker over. Its clients (the sorter, dashboards) stay
 * connected, and its retained messages, sessions and queued QoS 1 messages (aedes keeps
 * them in memory) survive the deploy.
 */
export const EMBEDDED_BROKER_LINGER_MS = 10_000;

export interface BrokerLease {
  readonly broker: EmbeddedBroker;
  /** True when a broker left running by an earlier station was taken over. */
  readonly reused: boolean;
  /** Gives the broker back: closed at once with `now`, else after the linger unless taken again. */
  release(now?: boolean): Promise<void>;
}

interface SharedBroker {
  key: string;
  broker: Promise<EmbeddedBroker>;
  users: number;
  linger?: NodeJS.Timeout;
  /** Set while lingering. */
  closeNow?: () => Promise<void>;
}

/** By listen address (host:port): one broker per port, whatever its settings. */
const sharedBrokers = new Map<string, SharedBroker>();

function settingsKey(options: EmbeddedBrokerOptions): string {
  const { username, password } = options.credentials ?? {};
  const secret = password === undefined ? '' : createHash('sha256').update(password).digest('hex');
  return JSON.stringify([options.host ?? '127.0.0.1', options.port ?? 0, username ?? '', secret]);
}

/**
 * An embedded broker for a station: on a fixed port, the one an earlier station with the
 * same settings left running, else a new one (after closing a lingering one with other
 * settings, which holds the port). Port 0 (any free port) is never shared.
 */
export async function leaseEmbeddedBroker(options: EmbeddedBrokerOptions = {}, lingerMs = EMBEDDED_BROKER_LINGER_MS): Promise<BrokerLease> {
  const port = options.port ?? 0;
  if (port === 0) {
    const broker = await startEmbeddedBroker(options);
    return { broker, reused: false, release: () => broker.close() };
  }
  const listen = `${options.host ?? '127.0.0.1'}:${port}`;
  const key = settingsKey(options);
  let shared = sharedBrokers.get(listen);
  if (shared && shared.key !== key && shared.users === 0) {
    // Settings changed: the old broker must free the port first.
    clearTimeout(shared.linger);
    sharedBrokers.delete(listen);
    await shared.broker.then((b) => b.close()).catch(() => undefined);
    shared = undefined;
  }
  const reused = shared !== undefined && shared.key === key;
  if (!shared || shared.key !== key) {
    const started: SharedBroker = { key, broker: startEmbeddedBroker(options), users: 0 };
    shared = started;
    sharedBrokers.set(listen, started);
    started.broker.catch(() => {
      if (sharedBrokers.get(listen) === started) sharedBrokers.delete(listen);
    });
  }
  const lease = shared;
  clearTimeout(lease.linger);
  lease.linger = undefined;
  lease.closeNow = undefined;
  lease.users++;
  void lease.broker.then((b) => b.setIdle(false), () => undefined);
  let broker: EmbeddedBroker;
  try {
    broker = await lease.broker;
  } catch (err) {
    lease.users--;
    throw err;
  }
  if (reused) log('embedded broker on %s taken over from the previous deploy', listen);
  let released = false;
  return {
    broker,
    reused,
    async release(now = false) {
      if (released) return;
      released = true;
      lease.users--;
      if (lease.users > 0) return;
      const close = async () => {
        clearTimeout(lease.linger);
        lease.closeNow = undefined;
        if (sharedBrokers.get(listen) === lease) sharedBrokers.delete(listen);
        await broker.close();
      };
      if (now || lingerMs <= 0) return close();
      // Waiting to be taken over must not keep a stopping Node-RED alive.
      broker.setIdle(true);
      lease.closeNow = close;
      lease.linger = setTimeout(() => void close(), lingerMs);
      lease.linger.unref();
    },
  };
}

/**
 * Closes every broker waiting to be taken over: the flows were stopped, not redeployed
 * (Node-RED's "stop flows", or the runtime shutting down). The ports are free on return.
 */
export function closeLingeringBrokers(): Promise<void> {
  const closing = [...sharedBrokers.values()].flatMap((lease) => (lease.users === 0 && lease.closeNow ? [lease.closeNow()] : []));
  return Promise.all(closing).then(() => undefined);
}

// #endregion
