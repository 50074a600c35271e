/**
 * A real Mosquitto broker for tests: `/usr/sbin/mosquitto -c <temp conf>` on a free
 * 127.0.0.1 port, persistence in a temp dir (so a restart keeps persistent sessions),
 * optional password file made with mosquitto_passwd, and stop/kill/restart helpers.
 * Tests skip with `mosquittoSkipReason` when the binary is missing.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const MOSQUITTO_BIN = process.env.MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';
export const MOSQUITTO_PASSWD_BIN = process.env.MOSQUITTO_PASSWD_BIN ?? '/usr/bin/mosquitto_passwd';

/** `false` when Mosquitto can run, else why the test is skipped (for `{ skip }` of node:test). */
export const mosquittoSkipReason: string | false = fs.existsSync(MOSQUITTO_BIN)
  ? false
  : `Mosquitto not found at ${MOSQUITTO_BIN}: install it (apt-get install -y mosquitto) or set MOSQUITTO_BIN. Real-broker tests skipped.`;

export interface MosquittoOptions {
  /** username -> password; when given, anonymous clients are refused. */
  users?: Record<string, string>;
  /** PEM files: the listener becomes TLS (mqtts://), clients need a certificate signed by `caFile`. */
  tls?: { caFile: string; certFile: string; keyFile: string };
  /** Seconds between saves of the in-memory state (sessions, queued messages) to disk. Default 1. */
  autosaveIntervalSeconds?: number;
}

export interface MosquittoBroker {
  readonly url: string;
  readonly port: number;
  /** Temp dir with the config, the password file and mosquitto.db. */
  readonly dir: string;
  readonly running: boolean;
  /** Graceful stop (SIGTERM): Mosquitto saves its state first. */
  stop(): Promise<void>;
  /** Crash (SIGKILL): only the last autosave survives. */
  kill(): Promise<void>;
  /** Starts again on the same port with the same persistence dir. */
  start(): Promise<void>;
  /** Resolves once Mosquitto has written mosquitto.db after `since` (ms epoch). */
  waitForSave(since: number, timeoutMs?: number): Promise<void>;
  /** Stops and removes the temp dir. */
  close(): Promise<void>;
  /** What Mosquitto wrote to stderr, for failure messages. */
  log(): string;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoBroker> {
  if (mosquittoSkipReason) throw new Error(mosquittoSkipReason);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-mosquitto-'));
  const port = await freePort();
  const lines = [
    `listener ${port} 127.0.0.1`,
    ...(options.tls
      ? [`cafile ${options.tls.caFile}`, `certfile ${options.tls.certFile}`, `keyfile ${options.tls.keyFile}`, 'require_certificate true', 'tls_version tlsv1.2']
      : []),
    'persistence true',
    `persistence_location ${dir}${path.sep}`,
    `autosave_interval ${options.autosaveIntervalSeconds ?? 1}`,
    // Room for everything a test queues for an offline persistent subscriber.
    'max_queued_messages 100000',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    // As root Mosquitto would switch to user "mosquitto", who cannot write our temp dir.
    `user ${os.userInfo().username}`,
  ];
  if (options.users) {
    const passwordFile = path.join(dir, 'passwd');
    for (const [index, [user, password]] of Object.entries(options.users).entries()) {
      const args = index === 0 ? ['-c', '-b', passwordFile, user, password] : ['-b', passwordFile, user, password];
      const made = spawnSync(MOSQUITTO_PASSWD_BIN, args, { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`mosquitto_passwd failed: ${made.stderr || made.error}`);
    }
    lines.push('allow_anonymous false', `password_file ${passwordFile}`);
  } else {
    lines.push('allow_anonymous true');
  }
  const confFile = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(confFile, `${lines.join('\n')}\n`);

  let child: ChildProcess | undefined;
  let stderr = '';

  async function start(): Promise<void> {
    if (child) throw new Error('Mosquitto is already running');
    const proc = spawn(MOSQUITTO_BIN, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    let exited = false;
    proc.once('exit', () => {
      exited = true;
      if (child === proc) child = undefined;
    });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`Mosquitto exited at start:\n${stderr}`);
      if (await canConnect(port)) return;
      await sleep(25);
    }
    proc.kill('SIGKILL');
    throw new Error(`Mosquitto did not listen on port ${port} within 5 s:\n${stderr}`);
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const proc = child;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(sig);
    await exited;
    child = undefined;
  }

  await start();
  return {
    url: `${options.tls ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return child !== undefined;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    start,
    async waitForSave(since, timeoutMs = 5000) {
      const db = path.join(dir, 'mosquitto.db');
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (fs.existsSync(db) && fs.statSync(db).mtimeMs > since) return;
        await sleep(50);
      }
      throw new Error(`Mosquitto did not save ${db} within ${timeoutMs} ms`);
    },
    async close() {
      await signal('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
    log: () => stderr,
  };
}

export interface TestCertificates {
  dir: string;
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  ca: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
}

/** `false` when openssl can make test certificates, else why TLS tests are skipped. */
export const opensslSkipReason: string | false =
  spawnSync('openssl', ['version']).status === 0 ? false : 'openssl not found: TLS tests skipped.';

/** A throw-away CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256, 1 day). */
export function makeTestCertificates(): TestCertificates {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-vision-certs-'));
  const f = (name: string) => path.join(dir, name);
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=lane-vision-test-ca']);
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const who of ['server', 'client']) {
    run(['req', ...ec, '-keyout', f(`${who}.key`), '-out', f(`${who}.csr`), '-subj', `/CN=lane-vision-test-${who}`]);
    const ext = who === 'server' ? ['-extfile', f('server.ext')] : [];
    run(['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${who}.crt`), '-days', '1', ...ext]);
  }
  return {
    dir,
    caFile: f('ca.crt'),
    serverCertFile: f('server.crt'),
    serverKeyFile: f('server.key'),
    ca: fs.readFileSync(f('ca.crt')),
    clientCert: fs.readFileSync(f('client.crt')),
    clientKey: fs.readFileSync(f('client.key')),
  };
}
