/**
 * One station's MQTT connection, over mqtt.js.
 *
 * mqtt.js does: connecting over mqtt/mqtts/ws/wss, keepalive, reconnecting, QoS 1/2
 * handshakes, keeping every unacknowledged QoS>=1 message in its outgoingStore and
 * resending it after a reconnect, resubscribing, and sending the last will.
 *
 * Written here by hand: the bound on what is held while disconnected. mqtt.js's offline
 * queue has no size limit (memory grows for the whole outage) and no way to drop the
 * oldest: publish() does not return the message id needed by removeOutgoingMessage(), and
 * its store is keyed by 16-bit message ids, so a long outage would silently overwrite
 * entries anyway. So while disconnected, new messages wait in our own FIFO capped at
 * `offlineQueueLimit` (oldest dropped and counted) and are handed to mqtt.js when it
 * reports `connect`; messages handed over before the outage stay mqtt.js's business.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import { connect as mqttConnect, UniqueMessageIdProvider, type IClientOptions, type MqttClient } from 'mqtt';
import { LaneVisionError } from '../errors.js';
import { parseCommand, type CommandError, type CommandParseResult, type LaneCommand, type ParseCommandOptions } from './commands.js';
import {
  buildErrorEvent,
  buildStateEvent,
  errorEventFrom,
  type FrameCounters,
  type LaneErrorEvent,
  type LaneEventContext,
  type LaneModelEvent,
  type LaneResultEvent,
  type LaneStateReason,
  type LaneTrainingEvent,
  type OutboxCounters,
} from './payloads.js';
import { DiskOutbox } from './disk-outbox.js';
import { buildLaneTopics, DEFAULT_TOPIC_TEMPLATE, validatePublishTopic, type LaneTopics } from './topics.js';

const log = createDebug('lane-vision:events');

export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'error';

export interface ConnectionStatusEvent {
  status: ConnectionStatus;
  /** The latest transport or broker error (also on `reconnecting`/`disconnected`). */
  error?: Error;
  at: Date;
}

/** How a publish ended: acknowledged (QoS>=1) or written (QoS 0), dropped from the offline queue, or failed. */
export type PublishOutcome = 'delivered' | 'dropped' | 'failed';

export type QoS = 0 | 1 | 2;

export interface LaneTlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  /** Default true; false only for a test broker with a self-signed certificate. */
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface LaneMqttConnectionOptions {
  /** mqtt://, mqtts://, ws:// or wss:// URL of the broker. */
  url: string;
  line: string;
  station: string;
  topicTemplate?: string;
  /** Required for a persistent session; default `lane-vision-<random>`. */
  clientId?: string;
  username?: string;
  password?: string | Buffer;
  tls?: LaneTlsOptions;
  /** Seconds; default 30. */
  keepaliveSeconds?: number;
  /** false = persistent session (the broker keeps subscriptions and queued QoS>=1 commands). Default true. */
  cleanSession?: boolean;
  /** Default 2000 ms; 0 disables reconnecting. */
  reconnectPeriodMs?: number;
  /** Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Default QoS of publishes; default 1. */
  qos?: QoS;
  /** Messages held while disconnected; beyond it the oldest are dropped. Default 1000. */
  offlineQueueLimit?: number;
  /** Publish the retained `online` state on connect and register the retained `offline` last will. Default true. */
  birthAndWill?: boolean;
  protocolVersion?: 4 | 5;
  backend?: string;
  modelVersion?: string;
  /**
   * Carry out retained commands (default false). A retained cmd/train or cmd/rollback is
   * delivered again at every (re)connect and would run again each time; by default it is
   * ignored and answered on the error topic with COMMAND_RETAINED.
   */
  acceptRetainedCommands?: boolean;
  /**
   * Keep QoS >= 1 events (not retained ones) in this file until the broker confirms them,
   * so events queued or in flight when the process stops are published after the restart,
   * with their original eventId. Default: in memory only.
   */
  outboxFile?: string;
}

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
}

export interface CloseOptions {
  /** Publish the retained `offline` state (reason "closed") before disconnecting. Default true. */
  publishOffline?: boolean;
  /** Longest wait for the offline state and in-flight acknowledgements. Default 5000 ms. */
  timeoutMs?: number;
}

export type CommandHandler = (command: LaneCommand) => void | Promise<void>;

export const DEFAULT_OFFLINE_QUEUE_LIMIT = 1000;
/** Stays well below mqtt.js's 65535 message ids, all needed at once when the queue is flushed. */
export const MAX_OFFLINE_QUEUE_LIMIT = 50_000;

interface OutboxEntry {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  settle: (outcome: PublishOutcome) => void;
  /** false for the connection's own state/model messages, which stay out of the counters. */
  counted: boolean;
  /** Its id in the disk outbox, when it is kept there. */
  diskId?: number;
}

/** FIFO with a cap: pushing onto a full queue evicts and returns the oldest entry. */
class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;
  constructor(readonly limit: number) {}
  get length(): number {
    return this.items.length - this.head;
  }
  push(item: T): T | undefined {
    if (this.limit === 0) return item;
    const evicted = this.length >= this.limit ? this.shift() : undefined;
    this.items.push(item);
    return evicted;
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

function configError(message: string): LaneVisionError {
  return new LaneVisionError('MQTT_CONFIG_INVALID', message);
}

function checkInteger(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) throw configError(`${name} must be an integer from ${min} to ${max}, got ${value}.`);
  return value;
}

function checkQos(value: unknown, fallback: QoS): QoS {
  if (value === undefined) return fallback;
  if (value !== 0 && value !== 1 && value !== 2) throw configError(`QoS must be 0, 1 or 2, got ${String(value)}.`);
  return value;
}

/** Builds mqtt.js options from ours, refusing combinations an engineer would not mean. */
function clientOptionsFrom(options: LaneMqttConnectionOptions, clientId: string): IClientOptions {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new LaneVisionError('MQTT_URL_INVALID', `"${options.url}" is not a broker URL (expected mqtt://host:1883, mqtts://, ws:// or wss://).`);
  }
  const secure = url.protocol === 'mqtts:' || url.protocol === 'wss:';
  if (!['mqtt:', 'mqtts:', 'ws:', 'wss:'].includes(url.protocol)) {
    throw new LaneVisionError('MQTT_URL_INVALID', `Unsupported broker URL scheme "${url.protocol}"; use mqtt://, mqtts://, ws:// or wss://.`);
  }
  if (options.tls && !secure) throw configError(`TLS material was given but the URL ${options.url} is not mqtts:// or wss://.`);
  if (options.password !== undefined && !options.username) throw configError('A password was given without a username.');
  if (url.username || url.password) throw configError('Put the username and password in the options, not in the URL (it ends up in logs).');
  const cleanSession = options.cleanSession ?? true;
  if (!cleanSession && !options.clientId) throw configError('A persistent session (cleanSession: false) needs a fixed clientId.');
  const clientOptions: IClientOptions = {
    clientId,
    clean: cleanSession,
    keepalive: checkInteger('keepaliveSeconds', options.keepaliveSeconds, 30, 0, 65535),
    reconnectPeriod: checkInteger('reconnectPeriodMs', options.reconnectPeriodMs, 2000, 0, 3_600_000),
    connectTimeout: checkInteger('connectTimeoutMs', options.connectTimeoutMs, 10_000, 100, 600_000),
    protocolVersion: options.protocolVersion ?? 4,
    // We never publish while mqtt.js is disconnected (see top of file); this keeps it that way.
    queueQoSZero: false,
    resubscribe: true,
  };
  if (options.username !== undefined) clientOptions.username = options.username;
  if (options.password !== undefined) clientOptions.password = options.password;
  if (secure) {
    const tls = options.tls ?? {};
    Object.assign(clientOptions, {
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      passphrase: tls.passphrase,
      servername: tls.servername,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
    });
  }
  return clientOptions;
}

export interface LaneMqttConnection {
  on(event: 'status', listener: (event: ConnectionStatusEvent) => void): this;
  once(event: 'status', listener: (event: ConnectionStatusEvent) => void): this;
  off(event: 'status', listener: (event: ConnectionStatusEvent) => void): this;
  emit(event: 'status', payload: ConnectionStatusEvent): boolean;
  /** A malformed command, already answered on the error topic; for logs and operator warnings. */
  on(event: 'command-rejected', listener: (error: CommandError) => void): this;
  once(event: 'command-rejected', listener: (error: CommandError) => void): this;
  off(event: 'command-rejected', listener: (error: CommandError) => void): this;
  emit(event: 'command-rejected', error: CommandError): boolean;
}

/**
 * A station's link to the broker: birth/will state, typed publishes with a bounded offline
 * queue, command subscription, status events for Node-RED nodes to mirror.
 * Nothing is emitted as an EventEmitter 'error' (that would crash a process with no
 * listener); errors arrive on 'status'.
 */
export class LaneMqttConnection extends EventEmitter {
  readonly topics: LaneTopics;
  readonly context: LaneEventContext;
  readonly clientId: string;
  readonly qos: QoS;
  readonly offlineQueueLimit: number;
  readonly url: string;
  private readonly clientOptions: IClientOptions;
  private readonly birthAndWill: boolean;
  private readonly acceptRetainedCommands: boolean;
  private readonly disk: DiskOutbox | undefined;
  private client: MqttClient | undefined;
  private statusValue: ConnectionStatus = 'disconnected';
  private lastError: Error | undefined;
  /** Our own view: true from mqtt.js 'connect' (store replayed) to 'close'. */
  private online = false;
  private closing = false;
  private readonly outbox: BoundedQueue<OutboxEntry>;
  private readonly inFlight = new Set<OutboxEntry>();
  private readonly counters = { published: 0, delivered: 0, dropped: 0, failed: 0 };
  private stateInfo: { backend: string | null; modelVersion: string | null; frames?: FrameCounters };
  private commandHandler: CommandHandler | undefined;
  private commandOptions: ParseCommandOptions = {};
  private currentModel: Buffer | undefined;
  private hasConnected = false;

  constructor(options: LaneMqttConnectionOptions) {
    super();
    if (!options || typeof options !== 'object') throw configError('MQTT connection options are missing.');
    this.topics = buildLaneTopics({ line: options.line, station: options.station }, options.topicTemplate ?? DEFAULT_TOPIC_TEMPLATE);
    this.context = { line: options.line, station: options.station };
    if (options.clientId !== undefined && (typeof options.clientId !== 'string' || options.clientId.length === 0 || options.clientId.length > 256)) {
      throw configError('clientId must be a non-empty string of at most 256 characters.');
    }
    this.clientId = options.clientId ?? `lane-vision-${randomBytes(5).toString('hex')}`;
    this.qos = checkQos(options.qos, 1);
    this.offlineQueueLimit = checkInteger('offlineQueueLimit', options.offlineQueueLimit, DEFAULT_OFFLINE_QUEUE_LIMIT, 0, MAX_OFFLINE_QUEUE_LIMIT);
    this.outbox = new BoundedQueue(this.offlineQueueLimit);
    if (options.outboxFile !== undefined) {
      if (typeof options.outboxFile !== 'string' || options.outboxFile.trim() === '') throw configError('outboxFile must be a file path.');
      const { outbox, pending } = DiskOutbox.open(options.outboxFile);
      this.disk = outbox;
      // Events of an earlier run go first, as they were: same topic, payload and eventId.
      for (const stored of pending) {
        this.counters.published++;
        const entry: OutboxEntry = { topic: stored.topic, payload: stored.payload, qos: stored.qos, retain: false, settle: () => undefined, counted: true, diskId: stored.id };
        this.enqueue(this.keptOnDisk(entry));
      }
    }
    this.birthAndWill = options.birthAndWill ?? true;
    this.acceptRetainedCommands = options.acceptRetainedCommands === true;
    this.stateInfo = { backend: options.backend ?? null, modelVersion: options.modelVersion ?? null };
    this.clientOptions = clientOptionsFrom(options, this.clientId);
    this.url = options.url;
  }

  get status(): ConnectionStatus {
    return this.statusValue;
  }

  /** Counters of the outbox; `queued` is what waits for the connection right now. */
  get stats(): OutboxCounters {
    return { ...this.counters, queued: this.outbox.length };
  }

  get dropped(): number {
    return this.counters.dropped;
  }

  get connected(): boolean {
    return this.online;
  }

  /** Starts connecting (and reconnecting) in the background; watch 'status' or await whenConnected(). */
  connect(): this {
    if (this.closing) throw new LaneVisionError('MQTT_CLOSED', 'This MQTT connection was closed; create a new one.');
    if (this.client) return this;
    // The default id provider wraps around without checking, so an unacknowledged message
    // could be overwritten in the store; this one never hands out an id still in use.
    const clientOptions: IClientOptions = { ...this.clientOptions, messageIdProvider: new UniqueMessageIdProvider() };
    if (this.birthAndWill) clientOptions.will = this.willMessage();
    log('connecting to %s as %s', this.url, this.clientId);
    this.setStatus('connecting');
    const client = mqttConnect(this.url, clientOptions);
    this.client = client;
    client.on('connect', () => this.onConnected());
    client.on('reconnect', () => this.setStatus('reconnecting'));
    client.on('close', () => this.onClosed());
    client.on('error', (err) => this.onClientError(err));
    client.on('message', (topic, payload, packet) => this.onMessage(topic, payload, packet.retain === true));
    return this;
  }

  /**
   * Resolves once connected. Rejects with MQTT_CONNECTION_REFUSED when the broker refuses
   * (credentials, authorisation) and with MQTT_CONNECT_TIMEOUT (naming the last error) after
   * `timeoutMs`; mqtt.js keeps retrying transport errors in the background either way.
   */
  whenConnected(timeoutMs = 10_000): Promise<void> {
    if (this.online) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.off('status', onStatus);
        if (err) reject(err);
        else resolve();
      };
      const onStatus = (event: ConnectionStatusEvent) => {
        if (event.status === 'connected') finish();
        else if (event.status === 'error') {
          const why = event.error ? readableError(event.error) : 'unknown reason';
          finish(new LaneVisionError('MQTT_CONNECTION_REFUSED', `The MQTT broker at ${this.url} refused the connection: ${why}.`, { cause: event.error }));
        }
      };
      const timer = setTimeout(() => {
        const reason = this.lastError ? `: ${readableError(this.lastError)}` : '';
        finish(new LaneVisionError('MQTT_CONNECT_TIMEOUT', `Not connected to the MQTT broker at ${this.url} after ${timeoutMs} ms${reason}.`));
      }, timeoutMs);
      this.on('status', onStatus);
      if (this.statusValue === 'error') onStatus({ status: 'error', error: this.lastError, at: new Date() });
    });
  }

  /**
   * Publishes `payload` (objects are sent as JSON). Never rejects: resolves how it ended.
   * While disconnected the message waits in the offline queue. Throws LaneVisionError
   * TOPIC_INVALID for a topic with wildcards, PAYLOAD_INVALID for an object JSON cannot hold.
   */
  publish(topic: string, payload: string | Buffer | object, options: PublishOptions = {}): Promise<PublishOutcome> {
    validatePublishTopic(topic);
    const qos = checkQos(options.qos, this.qos);
    const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : toJson(payload), 'utf8');
    if (this.closing) {
      log('publish to %s after close: not sent', topic);
      return Promise.resolve('failed');
    }
    this.counters.published++;
    return new Promise((settle) => {
      const entry: OutboxEntry = { topic, payload: body, qos, retain: options.retain ?? false, settle, counted: true };
      if (this.disk && qos > 0 && !entry.retain) {
        try {
          entry.diskId = this.disk.add(topic, body, qos as 1 | 2);
          this.keptOnDisk(entry);
        } catch (err) {
          // A full disk must not stop the events: this one is kept in memory only.
          log('outbox: cannot keep an event for %s on disk: %s', topic, (err as Error).message);
        }
      }
      if (this.online) this.handOver(entry);
      else this.enqueue(entry);
    });
  }

  publishResult(event: LaneResultEvent): Promise<PublishOutcome> {
    return this.publish(this.topics.result, event);
  }

  /**
   * Retained, so a sorter or dashboard starting later learns the current model at once.
   * Also republished after every reconnect, in case the broker restarted without its
   * retained messages.
   */
  publishModel(event: LaneModelEvent): Promise<PublishOutcome> {
    this.currentModel = Buffer.from(JSON.stringify(event), 'utf8');
    return this.publish(this.topics.model, this.currentModel, { retain: true });
  }

  publishTraining(event: LaneTrainingEvent): Promise<PublishOutcome> {
    return this.publish(this.topics.training, event);
  }

  publishError(event: LaneErrorEvent): Promise<PublishOutcome> {
    return this.publish(this.topics.error, event);
  }

  /**
   * Updates what the state event says (backend, model version, frame counters), the last
   * will, and republishes the retained state when connected.
   */
  updateState(info: { backend?: string | null; modelVersion?: string | null; frames?: FrameCounters }): Promise<PublishOutcome> {
    this.stateInfo = { ...this.stateInfo, ...info };
    if (this.client && this.birthAndWill) this.client.options.will = this.willMessage();
    return this.publishState('update');
  }

  /** Publishes the retained `online` state now (when connected; the birth covers reconnects). */
  publishState(reason: LaneStateReason = 'update'): Promise<PublishOutcome> {
    if (!this.online || !this.client) return Promise.resolve('failed');
    return new Promise((settle) => this.handOver(this.stateEntry('online', reason, settle)));
  }

  /**
   * Subscribes to this station's commands. Malformed commands and handler failures are
   * answered on the error topic; nothing is thrown into the client's message loop.
   * Rejects with MQTT_SUBSCRIBE_REFUSED when the broker refuses the subscription.
   */
  subscribeCommands(handler: CommandHandler, options: Omit<ParseCommandOptions, 'topics'> = {}): Promise<void> {
    if (typeof handler !== 'function') throw configError('subscribeCommands needs a handler function.');
    const client = this.requireClient();
    this.commandHandler = handler;
    this.commandOptions = { ...options, topics: this.topics };
    return new Promise((resolve, reject) => {
      client.subscribe(this.topics.commandFilter, { qos: 1 }, (err, granted) => {
        if (err && !this.online) {
          // Not a refusal: the connection went (or never came) up before the broker answered.
          reject(new LaneVisionError('MQTT_SUBSCRIBE_INTERRUPTED', `Subscribing to ${this.topics.commandFilter} was interrupted: ${err.message}.`));
        } else if (err || granted?.some((g) => g.qos === 128)) {
          const why = err ? err.message : 'the broker refused it (check its ACL)';
          reject(new LaneVisionError('MQTT_SUBSCRIBE_REFUSED', `Cannot subscribe to ${this.topics.commandFilter}: ${why}.`));
        } else {
          log('subscribed to %s', this.topics.commandFilter);
          resolve();
        }
      });
    });
  }

  /**
   * Ends the connection. With `publishOffline` (default) and a live connection, the retained
   * `offline` state goes out first and in-flight messages get `timeoutMs` to be acknowledged.
   * Messages still in the offline queue are dropped (counted).
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const timeoutMs = options.timeoutMs ?? 5000;
    for (let entry = this.outbox.shift(); entry; entry = this.outbox.shift()) {
      this.counters.dropped++;
      entry.settle('dropped');
    }
    const client = this.client;
    if (client) {
      if (this.online && (options.publishOffline ?? true) && this.birthAndWill) {
        const offline = new Promise<PublishOutcome>((settle) => this.handOver(this.stateEntry('offline', 'closed', settle)));
        await withTimeout(offline, timeoutMs);
      }
      const graceful = this.online;
      const ended = new Promise<void>((resolve) => client.end(!graceful, {}, () => resolve()));
      if (!(await withTimeout(ended.then(() => true), timeoutMs))) {
        log('close: broker did not acknowledge in %d ms, forcing', timeoutMs);
        await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
      }
      client.removeAllListeners('message');
    }
    // Whatever mqtt.js still holds unacknowledged will never be confirmed now.
    for (const entry of this.inFlight) {
      if (entry.counted) this.counters.failed++;
      entry.settle('failed');
    }
    this.inFlight.clear();
    this.disk?.close();
    this.online = false;
    this.setStatus('disconnected');
  }

  // -------------------------------------------------------------------------

  private requireClient(): MqttClient {
    if (!this.client) throw new LaneVisionError('MQTT_NOT_STARTED', 'Call connect() before using the MQTT connection.');
    return this.client;
  }

  private setStatus(status: ConnectionStatus, error?: Error): void {
    if (status === this.statusValue && !error) return;
    this.statusValue = status;
    log('status %s%s', status, error ? ` (${error.message})` : '');
    this.emit('status', { status, error: error ?? this.lastError, at: new Date() });
  }

  private onConnected(): void {
    if (this.closing) return;
    this.online = true;
    this.lastError = undefined;
    if (this.birthAndWill) this.handOver(this.stateEntry('online', 'connected', () => undefined));
    if (this.hasConnected && this.currentModel) {
      this.handOver({ topic: this.topics.model, payload: this.currentModel, qos: 1, retain: true, settle: () => undefined, counted: false });
    }
    this.hasConnected = true;
    const waiting = this.outbox.length;
    for (let entry = this.outbox.shift(); entry; entry = this.outbox.shift()) this.handOver(entry);
    if (waiting > 0) log('connected: flushed %d queued messages', waiting);
    this.setStatus('connected');
  }

  private onClosed(): void {
    this.online = false;
    // Each failed attempt closes the socket: stay 'reconnecting' until one succeeds, instead of
    // flipping between reconnecting and disconnected at every retry.
    if (this.statusValue === 'reconnecting' && !this.closing) return;
    // Keep a fatal 'error' visible; otherwise the connection is just down (mqtt.js retries).
    if (this.statusValue !== 'error' || this.client?.reconnecting) this.setStatus('disconnected');
  }

  private onClientError(err: Error): void {
    const repeated = this.lastError?.message === err.message;
    this.lastError = err;
    // A CONNACK refusal (bad credentials, not authorised) carries a numeric reason code and
    // mqtt.js does not retry it; transport errors are retried.
    const refused = typeof (err as { code?: unknown }).code === 'number';
    const willRetry = !refused && (this.clientOptions.reconnectPeriod ?? 0) > 0 && !this.closing;
    log('client error: %s', err.message);
    // Retried errors repeat on every attempt; tell listeners once per distinct error.
    if (willRetry) {
      if (!repeated) this.emit('status', { status: this.statusValue, error: err, at: new Date() });
    }
    else this.setStatus('error', err);
  }

  /** Takes the entry off the disk once settled, except what closing leaves unconfirmed: that is for the next run. */
  private keptOnDisk(entry: OutboxEntry): OutboxEntry {
    const { diskId } = entry;
    const disk = this.disk;
    if (diskId === undefined || !disk) return entry;
    const settle = entry.settle;
    entry.settle = (outcome) => {
      if (outcome === 'delivered' || !this.closing) {
        try {
          disk.done(diskId);
        } catch (err) {
          log('outbox: cannot mark an event done: %s', (err as Error).message);
        }
      }
      settle(outcome);
    };
    return entry;
  }

  private enqueue(entry: OutboxEntry): void {
    const evicted = this.outbox.push(entry);
    if (evicted) {
      this.counters.dropped++;
      evicted.settle('dropped');
      if (this.counters.dropped === 1 || this.counters.dropped % 1000 === 0) {
        log('offline queue full (%d): dropped %d messages so far', this.offlineQueueLimit, this.counters.dropped);
      }
    }
  }

  /** Gives a message to mqtt.js, which keeps QoS>=1 messages until acknowledged, across reconnects. */
  private handOver(entry: OutboxEntry): void {
    const client = this.requireClient();
    this.inFlight.add(entry);
    client.publish(entry.topic, entry.payload, { qos: entry.qos, retain: entry.retain }, (err) => {
      if (!this.inFlight.delete(entry)) return; // already settled by close()
      if (err) {
        if (entry.counted) this.counters.failed++;
        log('publish to %s failed: %s', entry.topic, err.message);
        entry.settle('failed');
      } else {
        if (entry.counted) this.counters.delivered++;
        entry.settle('delivered');
      }
    });
  }

  private stateEntry(status: 'online' | 'offline', reason: LaneStateReason, settle: (o: PublishOutcome) => void): OutboxEntry {
    return { topic: this.topics.state, payload: this.statePayload(status, reason), qos: 1, retain: true, settle, counted: false };
  }

  private statePayload(status: 'online' | 'offline', reason: LaneStateReason): Buffer {
    const event = buildStateEvent(this.context, {
      status,
      reason,
      clientId: this.clientId,
      backend: this.stateInfo.backend,
      modelVersion: this.stateInfo.modelVersion,
      outbox: this.stats,
      ...(this.stateInfo.frames ? { frames: this.stateInfo.frames } : {}),
    });
    return Buffer.from(JSON.stringify(event), 'utf8');
  }

  /** Retained `offline` state the broker publishes if this client vanishes without DISCONNECT. */
  private willMessage(): NonNullable<IClientOptions['will']> {
    return { topic: this.topics.state, payload: this.statePayload('offline', 'connection-lost'), qos: 1, retain: true };
  }

  private onMessage(topic: string, payload: Buffer, retained = false): void {
    const name = this.topics.commandNameOf(topic);
    if (!this.commandHandler || name === undefined) return;
    // The broker sets the flag only for a stored message sent because we subscribed (at each connect).
    const parsed: CommandParseResult =
      retained && !this.acceptRetainedCommands
        ? {
            ok: false,
            error: {
              code: 'COMMAND_RETAINED',
              message:
                `A retained command on ${topic} was ignored: the broker sends it again at every connect, so it would run again each time. ` +
                'Publish commands without the retain flag and clear this one (an empty retained message on that topic), or turn on "accept retained commands".',
              topic,
              command: name,
            },
          }
        : parseCommand(topic, payload, this.commandOptions);
    if (!parsed.ok) {
      log('bad command on %s: %s', topic, parsed.error.message);
      void this.publishError(buildErrorEvent(this.context, { ...parsed.error, source: 'command' }));
      try {
        this.emit('command-rejected', parsed.error);
      } catch (err) {
        // A listener's bug must not break the client's message loop.
        log('command-rejected listener failed: %s', err instanceof Error ? err.message : String(err));
      }
      return;
    }
    const { command } = parsed;
    const answerFailure = (err: unknown) => {
      log('command %s failed: %s', command.name, err instanceof Error ? err.message : String(err));
      void this.publishError(errorEventFrom(this.context, err, 'command', { command: command.name, requestId: command.requestId, topic }));
    };
    try {
      const done = this.commandHandler(command);
      if (done && typeof (done as Promise<void>).then === 'function') (done as Promise<void>).then(undefined, answerFailure);
    } catch (err) {
      answerFailure(err);
    }
  }
}

function toJson(payload: object): string {
  try {
    return JSON.stringify(payload);
  } catch (err) {
    throw new LaneVisionError('PAYLOAD_INVALID', `The message cannot be sent as JSON: ${(err as Error).message}.`, { cause: err });
  }
}

/** OpenSSL errors arrive as "80BC...:error:0A00045C:SSL routines:fn:reason:file:line..."; keep the reason. */
export function readableError(err: Error): string {
  const ssl = /SSL routines:[^:]*:([^:]+):/.exec(err.message);
  return (ssl ? `TLS ${ssl[1]}` : err.message).trim();
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | false> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
