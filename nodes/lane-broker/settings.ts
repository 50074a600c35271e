/** lane-broker settings (editor text fields and credentials) to LaneStation options. */
import * as path from 'node:path';
import type { LaneStationOptions, LaneTlsOptions } from '../../src/events/index.js';
import type { LaneBrokerCredentials, LaneBrokerDef } from './types.js';

// Not 1883: that is where a site's own broker listens; the embedded demo broker must neither take it nor fail on it.
const DEFAULT_EMBEDDED_PORT = 1884;

/** Editor fields are text; an empty one means "use the default". */
function numberSetting(value: unknown): number | undefined {
  if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return undefined;
  return Number(value);
}

function textSetting(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim().length > 0 ? value.trim() : undefined;
}

/** Flows written by hand may leave `embedded` out: then the embedded broker runs exactly when no URL is given. */
export function usesEmbeddedBroker(config: Pick<LaneBrokerDef, 'embedded' | 'url'>): boolean {
  if (config.embedded === undefined || config.embedded === null) return !textSetting(config.url);
  return config.embedded === true || (config.embedded as unknown) === 'true';
}

function tlsOptions(url: string, config: LaneBrokerDef, credentials: LaneBrokerCredentials): LaneTlsOptions | undefined {
  const material: LaneTlsOptions = {};
  if (textSetting(credentials.ca)) material.ca = credentials.ca;
  if (textSetting(credentials.cert)) material.cert = credentials.cert;
  if (textSetting(credentials.key)) material.key = credentials.key;
  if (credentials.passphrase) material.passphrase = credentials.passphrase;
  const verify = config.tlsVerify !== false && (config.tlsVerify as unknown) !== 'false';
  if (Object.keys(material).length > 0) return { ...material, rejectUnauthorized: verify };
  // Without material, only a secure URL with verification turned off needs TLS options.
  return /^(mqtts|wss):/i.test(url) && !verify ? { rejectUnauthorized: false } : undefined;
}

/** LaneStation options from the node's settings and credentials (checked by LaneStation). */
/** Where a broker node keeps unconfirmed events ("Keep unsent events on disk"): one file per node, in the user directory. */
export function outboxFileOf(userDir: string, nodeId: string): string {
  return path.join(userDir, 'lane-vision', 'outbox', `${nodeId.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`);
}

export function stationOptionsFrom(config: LaneBrokerDef, credentials: LaneBrokerCredentials = {}, userDir?: string): LaneStationOptions {
  const embedded = usesEmbeddedBroker(config);
  const url = textSetting(config.url) ?? '';
  const username = textSetting(credentials.user);
  const password = username && credentials.password ? credentials.password : undefined;
  const options: LaneStationOptions = {
    line: typeof config.line === 'string' ? config.line.trim() : config.line,
    station: typeof config.station === 'string' ? config.station.trim() : config.station,
    cleanSession: config.cleanSession !== false && (config.cleanSession as unknown) !== 'false',
    // A deploy must not hang on an unreachable broker (Node-RED waits 15 s for close).
    closeTimeoutMs: 3000,
  };
  if (config.acceptRetainedCommands === true || (config.acceptRetainedCommands as unknown) === 'true') options.acceptRetainedCommands = true;
  if ((config.durableOutbox === true || (config.durableOutbox as unknown) === 'true') && userDir) options.outboxFile = outboxFileOf(userDir, config.id);
  const template = textSetting(config.topicTemplate);
  if (template) options.topicTemplate = template;
  const clientId = textSetting(config.clientId);
  if (clientId) options.clientId = clientId;
  const keepalive = numberSetting(config.keepalive);
  if (keepalive !== undefined) options.keepaliveSeconds = keepalive;
  const queueLimit = numberSetting(config.offlineQueueLimit);
  if (queueLimit !== undefined) options.offlineQueueLimit = queueLimit;
  if (username) options.username = username;
  if (password !== undefined) options.password = password;
  if (embedded) {
    // The embedded broker asks for the same login the station uses, so giving a user and
    // password is enough to close it to others when it listens beyond 127.0.0.1.
    options.embedded = {
      host: textSetting(config.embeddedHost) ?? '127.0.0.1',
      port: numberSetting(config.embeddedPort) ?? DEFAULT_EMBEDDED_PORT,
      ...(username ? { credentials: { username, password: password ?? '' } } : {}),
    };
  } else {
    options.url = url;
    const tls = tlsOptions(url, config, credentials);
    if (tls) options.tls = tls;
  }
  return options;
}

/** What lane-broker reads from a core `mqtt-broker` config node (10-mqtt.js builds both at deploy). */
export interface CoreMqttBroker {
  /** mqtt://host:port, mqtts://..., ws(s)://... as the core node connects. */
  brokerurl?: string;
  clientid?: string;
  /** The MQTT.js options of the core node: login, keepalive and the TLS of its tls-config node. */
  options?: { username?: string; password?: string; keepalive?: number; ca?: unknown; cert?: unknown; key?: unknown; passphrase?: string; rejectUnauthorized?: boolean; servername?: string };
}

/**
 * LaneStation options for the broker a core mqtt-broker config node points at: its URL,
 * login and TLS (tls-config), with the lane's own topics, queue and outbox. The station opens
 * its own connection (with its own client id: two clients with one id would keep pushing
 * each other off the broker).
 */
export function stationOptionsOverCoreBroker(config: LaneBrokerDef, core: CoreMqttBroker, userDir?: string): LaneStationOptions {
  const options = stationOptionsFrom({ ...config, embedded: false, url: core.brokerurl ?? '' }, {}, userDir);
  const given = core.options ?? {};
  if (textSetting(given.username)) {
    options.username = given.username!.trim();
    if (given.password) options.password = given.password;
  }
  if (!textSetting(config.clientId) && textSetting(core.clientid)) options.clientId = `${core.clientid!.trim()}-lane-vision`;
  if (numberSetting(config.keepalive) === undefined && typeof given.keepalive === 'number') options.keepaliveSeconds = given.keepalive;
  const tls: LaneTlsOptions = {};
  for (const key of ['ca', 'cert', 'key'] as const) if (given[key] !== undefined && given[key] !== null && given[key] !== '') tls[key] = given[key] as string;
  if (given.passphrase) tls.passphrase = given.passphrase;
  if (given.servername) tls.servername = given.servername;
  if (given.rejectUnauthorized === false) tls.rejectUnauthorized = false;
  if (Object.keys(tls).length > 0) options.tls = { rejectUnauthorized: true, ...tls };
  else delete options.tls;
  return options;
}
