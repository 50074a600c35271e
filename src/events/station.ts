/**
 * A station's MQTT side as a long-lived thing that can be started and stopped again (a
 * Node-RED config node lives across many deploys; a LaneMqttConnection is good for one
 * connect..close): optionally its own embedded broker, a fresh LaneMqttConnection per
 * start, the backend/model version and current model carried over from one connection to
 * the next, and commands re-emitted for whoever listens.
 * Start and stop are queued one after the other, so a quick stop/start/stop (a redeploy
 * while the embedded broker is still coming up) cannot leave a connection or port behind.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import createDebug from 'debug';
import { LaneVisionError } from '../errors.js';
import { leaseEmbeddedBroker, type BrokerLease, type EmbeddedBroker, type EmbeddedBrokerOptions } from './broker.js';
import type { CommandError, LaneCommand } from './commands.js';
import {
  LaneMqttConnection,
  readableError,
  type ConnectionStatus,
  type ConnectionStatusEvent,
  type LaneMqttConnectionOptions,
  type PublishOutcome,
  type QoS,
} from './connection.js';
import { errorEventFrom } from './payloads.js';
import type { FrameCounters, LaneErrorEvent, LaneEventContext, LaneModelEvent, LaneResultEvent, LaneReviewEvent, LaneTrainingEvent, OutboxCounters } from './payloads.js';
import type { LaneTopics } from './topics.js';

const log = createDebug('lane-vision:events');

export interface LaneStationOptions extends Omit<LaneMqttConnectionOptions, 'url'> {
  /** The factory's broker; not used when `embedded` is set (the station connects to its own broker). */
  url?: string;
  /** Run an aedes broker in this process (127.0.0.1 unless a host is given) and connect to it. */
  embedded?: EmbeddedBrokerOptions;
  /** How long a stopped station's embedded broker on a fixed port waits to be taken over (stop({keepBroker})). */
  embeddedLingerMs?: number;
  /** Longest wait at stop() for the offline state and in-flight acknowledgements. Default 5000 ms. */
  closeTimeoutMs?: number;
  /** Frame counters change with every frame: the retained state is republished for them at most this often. Default 1000 ms. */
  frameStateIntervalMs?: number;
}

export const DEFAULT_FRAME_STATE_INTERVAL_MS = 1000;

export interface EngineInfo {
  backend?: string | null;
  modelVersion?: string | null;
}

type EventOf<K> = K extends 'result' ? LaneResultEvent : K extends 'training' ? LaneTrainingEvent : K extends 'review' ? LaneReviewEvent : LaneErrorEvent;

export interface LaneStation {
  /** Connection status, including 'error' when the embedded broker or the connection cannot start. */
  on(event: 'status', listener: (event: ConnectionStatusEvent) => void): this;
  /** A valid command; a listener that throws has the error answered on the error topic. */
  on(event: 'command', listener: (command: LaneCommand) => void): this;
  /** A malformed command (already answered on the error topic). */
  on(event: 'command-rejected', listener: (error: CommandError) => void): this;
  /** Something that does not stop the station but an operator should see (e.g. a refused subscription). */
  on(event: 'warning', listener: (error: Error) => void): this;
}

/** mqtt://host:port a client in this process uses to reach an embedded broker bound to `host`. */
function loopbackUrl(broker: EmbeddedBroker): string {
  if (broker.host === '0.0.0.0') return `mqtt://127.0.0.1:${broker.port}`;
  if (broker.host === '::') return `mqtt://[::1]:${broker.port}`;
  return broker.url;
}

export class LaneStation extends EventEmitter {
  readonly topics: LaneTopics;
  readonly context: LaneEventContext;
  private readonly options: LaneStationOptions;
  private connection: LaneMqttConnection | undefined;
  private broker: EmbeddedBroker | undefined;
  private brokerLease: BrokerLease | undefined;
  /** Start/stop steps, one after the other; never rejects (each caller gets its own step's outcome). */
  private lifecycle: Promise<void> = Promise.resolve();
  private startError: Error | undefined;
  private engine: EngineInfo;
  private model: LaneModelEvent | undefined;
  private commandsWanted = false;
  private subscribedConnection: LaneMqttConnection | undefined;
  private subscriptionAcknowledged = false;
  /** Latest frame counters of each classifier reporting to this station; the state carries their sum. */
  private readonly frameSources = new Map<string, FrameCounters>();
  private framesPublishedAt = -Infinity;
  private framesTimer: NodeJS.Timeout | undefined;

  /** Throws LaneVisionError (MQTT_CONFIG_INVALID, MQTT_URL_INVALID, TOPIC_*) for settings that can never work. */
  constructor(options: LaneStationOptions) {
    super();
    if (!options || typeof options !== 'object') throw new LaneVisionError('MQTT_CONFIG_INVALID', 'MQTT station options are missing.');
    if (!options.embedded && !options.url) {
      throw new LaneVisionError('MQTT_CONFIG_INVALID', 'Give the broker URL (mqtt://host:1883) or turn on the embedded broker.');
    }
    if (options.embedded && options.tls) {
      throw new LaneVisionError('MQTT_CONFIG_INVALID', 'The embedded broker speaks plain MQTT on this machine; TLS settings apply to an external broker only.');
    }
    this.options = { ...options };
    this.engine = { backend: options.backend ?? null, modelVersion: options.modelVersion ?? null };
    // A throw-away connection checks every option now rather than at the first start
    // (an embedded broker's port is only known later, any valid URL stands in for it).
    const probe = new LaneMqttConnection({ ...this.connectionOptions(options.embedded ? 'mqtt://127.0.0.1:1883' : options.url!), outboxFile: undefined });
    this.topics = probe.topics;
    this.context = probe.context;
  }

  /** Status of the current connection; 'error' when the last start failed. */
  get status(): ConnectionStatus {
    return this.connection?.status ?? (this.startError ? 'error' : 'disconnected');
  }

  /** Why the last start failed, if it did. */
  get problem(): Error | undefined {
    return this.startError;
  }

  get running(): boolean {
    return this.connection !== undefined;
  }

  /** Messages dropped by the current connection (offline queue full, or closed with messages waiting). */
  get dropped(): number {
    return this.connection?.dropped ?? 0;
  }

  get stats(): OutboxCounters | undefined {
    return this.connection?.stats;
  }

  /** The running embedded broker (its url, host, port and aedes instance), if any. */
  get embeddedBroker(): EmbeddedBroker | undefined {
    return this.broker;
  }

  /** True once the broker acknowledged the command subscription of the current connection. */
  get listening(): boolean {
    return this.subscriptionAcknowledged;
  }

  /** Client id of the current connection. */
  get clientId(): string | undefined {
    return this.connection?.clientId;
  }

  /** Starts the embedded broker (if configured) and connects; the connection then retries on its own. */
  start(): Promise<void> {
    return this.step(() => this.doStart());
  }

  /**
   * Publishes the retained offline state, disconnects and stops the embedded broker; with
   * `keepBroker` (a redeploy), a broker on a fixed port stays up for a while so the next
   * station with the same settings takes it over (EMBEDDED_BROKER_LINGER_MS).
   */
  stop(options: { keepBroker?: boolean } = {}): Promise<void> {
    return this.step(() => this.doStop(options.keepBroker === true));
  }

  /** Subscribes to `<prefix>/cmd/+` now (when running) and on every later start. */
  listenForCommands(): void {
    this.commandsWanted = true;
    if (this.connection) this.subscribe(this.connection);
  }

  /**
   * Publishes a result, training or error event. Resolves how it ended ('dropped' when the
   * offline queue overflowed). Rejects with MQTT_NOT_STARTED when the station is not running
   * (naming why the last start failed).
   */
  async publishEvent<K extends 'result' | 'training' | 'error' | 'review'>(kind: K, event: EventOf<K>, qos?: QoS): Promise<PublishOutcome> {
    const connection = await this.runningConnection();
    return connection.publish(this.topics[kind], event, qos === undefined ? {} : { qos });
  }

  /**
   * Answers a valid command that failed later, in whichever node carried it out (a rollback
   * to a missing version, a training already running), on the error topic with its
   * requestId, as docs/mqtt-events.md promises for failures "from the station".
   */
  async answerCommandFailure(command: Pick<LaneCommand, 'name' | 'requestId'>, err: unknown): Promise<PublishOutcome> {
    // Errors from a node of another copy of this package (or a function node) carry a code without being our class.
    const code = (err as { code?: unknown } | null)?.code;
    const failure = !(err instanceof LaneVisionError) && typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(code) ? new LaneVisionError(code, (err as Error).message ?? String(err)) : err;
    const event = errorEventFrom(this.context, failure, 'command', {
      command: command.name,
      ...(command.requestId === undefined ? {} : { requestId: command.requestId }),
      topic: this.topics.command(command.name),
    });
    return this.publishEvent('error', event);
  }

  /**
   * Publishes the retained model event, makes its version the state's model version, and
   * keeps it to publish again on every later start (an embedded broker forgets retained
   * messages when it stops).
   */
  async publishModel(event: LaneModelEvent): Promise<PublishOutcome> {
    this.model = event;
    this.reportEngine({ modelVersion: event.modelVersion });
    const connection = await this.runningConnection();
    return connection.publishModel(event);
  }

  /**
   * Records the backend and model version the classifier reports; when they change, the
   * retained state (and the last will) is republished. Returns whether anything changed.
   */
  reportEngine(info: EngineInfo): boolean {
    const changes: EngineInfo = {};
    if (info.backend !== undefined && info.backend !== this.engine.backend) changes.backend = info.backend;
    if (info.modelVersion !== undefined && info.modelVersion !== this.engine.modelVersion) changes.modelVersion = info.modelVersion;
    if (Object.keys(changes).length === 0) return false;
    this.engine = { ...this.engine, ...changes };
    if (this.connection) void this.connection.updateState(changes);
    return true;
  }

  /**
   * Records the frame counters a classifier reports (counted since it started; a classifier
   * that restarts reports from 0 again under the same `source`). The state carries the sum
   * over all sources and is republished at most every `frameStateIntervalMs`, the latest
   * counts always landing.
   */
  reportFrames(source: string, counters: FrameCounters): void {
    this.frameSources.set(source, { queued: counters.queued, dropped: counters.dropped, processed: counters.processed });
    if (this.framesTimer) return;
    const wait = this.framesPublishedAt + (this.options.frameStateIntervalMs ?? DEFAULT_FRAME_STATE_INTERVAL_MS) - performance.now();
    if (wait <= 0) this.publishFrames();
    else this.framesTimer = setTimeout(() => this.publishFrames(), wait);
  }

  /** Sum of the frame counters reported so far (undefined before any). */
  get frames(): FrameCounters | undefined {
    if (this.frameSources.size === 0) return undefined;
    const sum: FrameCounters = { queued: 0, dropped: 0, processed: 0 };
    for (const counters of this.frameSources.values()) {
      sum.queued += counters.queued;
      sum.dropped += counters.dropped;
      sum.processed += counters.processed;
    }
    return sum;
  }

  // -------------------------------------------------------------------------

  private publishFrames(): void {
    this.framesTimer = undefined;
    this.framesPublishedAt = performance.now();
    const frames = this.frames;
    if (frames && this.connection) void this.connection.updateState({ frames });
  }

  private step(run: () => Promise<void>): Promise<void> {
    const next = this.lifecycle.then(run);
    this.lifecycle = next.catch(() => undefined);
    return next;
  }

  /** Waits for a start or stop under way, so a message sent right after deploy is not refused. */
  private async runningConnection(): Promise<LaneMqttConnection> {
    await this.lifecycle;
    if (this.connection) return this.connection;
    const why = this.startError ? `: ${readableError(this.startError)}` : '';
    throw new LaneVisionError('MQTT_NOT_STARTED', `The MQTT connection of station ${this.context.line}/${this.context.station} is not running${why}.`);
  }

  private connectionOptions(url: string): LaneMqttConnectionOptions {
    const { embedded: _embedded, closeTimeoutMs: _timeout, frameStateIntervalMs: _interval, embeddedLingerMs: _linger, url: _url, ...rest } = this.options;
    return { ...rest, url, backend: this.engine.backend ?? undefined, modelVersion: this.engine.modelVersion ?? undefined };
  }

  private async doStart(): Promise<void> {
    if (this.connection) return;
    this.startError = undefined;
    try {
      let url = this.options.url!;
      if (this.options.embedded) {
        this.brokerLease = await leaseEmbeddedBroker(this.options.embedded, this.options.embeddedLingerMs);
        this.broker = this.brokerLease.broker;
        url = loopbackUrl(this.broker);
      }
      const connection = new LaneMqttConnection(this.connectionOptions(url));
      // Before connecting, so the birth and the last will carry the counts too.
      const frames = this.frames;
      if (frames) void connection.updateState({ frames });
      connection.on('status', (event) => this.emit('status', event));
      connection.on('command-rejected', (error) => this.emit('command-rejected', error));
      this.connection = connection;
      connection.connect();
      if (this.model) void connection.publishModel(this.model);
      if (this.commandsWanted) this.subscribe(connection);
      log('station %s/%s started (%s)', this.context.line, this.context.station, url);
    } catch (err) {
      this.startError = err instanceof Error ? err : new Error(String(err));
      const lease = this.brokerLease;
      this.broker = undefined;
      this.brokerLease = undefined;
      await lease?.release(true);
      this.emit('status', { status: 'error', error: this.startError, at: new Date() } satisfies ConnectionStatusEvent);
      throw err;
    }
  }

  private async doStop(keepBroker: boolean): Promise<void> {
    if (this.framesTimer) {
      // The counts held back by the interval go out now, and into the closing state.
      clearTimeout(this.framesTimer);
      this.publishFrames();
    }
    const connection = this.connection;
    const broker = this.broker;
    const lease = this.brokerLease;
    this.connection = undefined;
    this.broker = undefined;
    this.brokerLease = undefined;
    this.subscribedConnection = undefined;
    this.subscriptionAcknowledged = false;
    if (connection) {
      await connection.close({ publishOffline: true, timeoutMs: this.options.closeTimeoutMs ?? 5000 });
      connection.removeAllListeners();
    }
    await lease?.release(!keepBroker);
    if (connection || broker) log('station %s/%s stopped', this.context.line, this.context.station);
  }

  private subscribe(connection: LaneMqttConnection): void {
    if (this.subscribedConnection === connection) return;
    this.subscribedConnection = connection;
    connection
      .subscribeCommands((command) => {
        this.emit('command', command);
      })
      .then(() => {
        if (this.connection === connection) this.subscriptionAcknowledged = true;
      })
      .catch((err: unknown) => {
        // A subscription still pending when the connection closes fails too; only a live one matters.
        if (this.connection !== connection) return;
        if (err instanceof LaneVisionError && err.code === 'MQTT_SUBSCRIBE_INTERRUPTED') {
          // The broker is away (e.g. down at deploy): not worth a warning; subscribe again once it is back.
          log('%s; subscribing again when connected', err.message);
          this.subscribedConnection = undefined;
          const retry = (event: ConnectionStatusEvent) => {
            if (event.status !== 'connected') return;
            connection.off('status', retry);
            if (this.connection === connection && this.commandsWanted) this.subscribe(connection);
          };
          connection.on('status', retry);
          return;
        }
        this.emit('warning', err instanceof Error ? err : new Error(String(err)));
      });
  }
}
