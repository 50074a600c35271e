/**
 * One station's part in a fleet: it publishes its versions to the fleet (bundle in
 * retained chunks, then the retained manifest), and takes up what others publish (fetch
 * the chunks, check every sha256, check the backbone, store as a new version, activate or
 * stage it, acknowledge). The store's `active` event then hot-swaps every classifier of
 * the station, and lane-events' model follower republishes the retained model event.
 *
 * A station that was offline, or is new, gets the retained manifest when it (re)connects
 * and catches up; what it handled is kept in `<store>/fleet.json`, so a restart does not
 * fetch or acknowledge the same manifest again.
 */
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import createDebug from 'debug';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { LaneVisionError, isLaneVisionError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { backboneCompatibility, type LoadedBackboneIdentity, type ModelStore } from '../model-store/index.js';
import { packVersion, unpackBundle } from './bundle.js';
import {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_FLEET_PREFIX,
  FLEET_SCHEMA_VERSION,
  fleetTopics,
  parseManifest,
  type FleetAck,
  type FleetManifest,
  type FleetManifestKind,
  type FleetResult,
  type FleetTopics,
} from './manifest.js';

const debug = createDebug('lane-vision:fleet');

export const FLEET_STATE_FILE = 'fleet.json';
export const DEFAULT_FETCH_TIMEOUT_MS = 120_000;

/** What a station does with a new release that arrives: `activate` it at once, or `stage` it until an activate command. */
export type FleetPolicy = 'activate' | 'stage';

export interface FleetMemberOptions {
  /** mqtt://host:1883 (or a ready client: then the caller connects and ends it). */
  url?: string;
  client?: MqttClient;
  mqtt?: IClientOptions;
  fleet: string;
  station: string;
  store: ModelStore;
  /** The backbone this station classifies with: releases trained on another are refused. */
  backbone: LoadedBackboneIdentity;
  policy?: FleetPolicy;
  /** Take up releases of other stations (default true); false: publish only. */
  receive?: boolean;
  prefix?: string;
  chunkBytes?: number;
  fetchTimeoutMs?: number;
}

interface FleetState {
  /** release sha256 -> this store's version holding it. */
  releases: Record<string, number>;
  /** Sequence of the last manifest handled. */
  handled: number;
  /** What this station published, oldest first. */
  published: { release: string; version: number; sequence: number; chunks: number; kind: FleetManifestKind }[];
}

export interface FleetMember {
  on(event: 'ack', listener: (ack: FleetAck) => void): this;
  on(event: 'applied', listener: (ack: FleetAck) => void): this;
  on(event: 'manifest', listener: (manifest: FleetManifest) => void): this;
  /** A manifest or release that could not be taken up (also acknowledged), or a bad message. */
  on(event: 'error', listener: (err: Error) => void): this;
  /** The broker cannot be reached; mqtt.js keeps retrying. */
  on(event: 'connection-error', listener: (err: Error) => void): this;
  on(event: 'connect' | 'offline', listener: () => void): this;
}

export class FleetMember extends EventEmitter {
  readonly topics: FleetTopics;
  readonly station: string;
  readonly fleet: string;
  private readonly options: FleetMemberOptions;
  private readonly client: MqttClient;
  private readonly ownsClient: boolean;
  private state: FleetState | undefined;
  /** Manifests are taken one after the other; only the newest waiting one is kept. */
  private working: Promise<void> = Promise.resolve();
  private waiting: FleetManifest | undefined;
  private closed = false;
  private readonly onMessage = (topic: string, payload: Buffer) => this.dispatch(topic, payload);

  constructor(options: FleetMemberOptions) {
    super();
    if (!options?.store || !options.backbone) throw new LaneVisionError('FLEET_CONFIG_INVALID', 'A fleet member needs its model store and backbone');
    if (!options.client && !options.url) throw new LaneVisionError('FLEET_CONFIG_INVALID', 'A fleet member needs the broker URL (mqtt://host:1883)');
    if (options.policy !== undefined && options.policy !== 'activate' && options.policy !== 'stage') {
      throw new LaneVisionError('FLEET_CONFIG_INVALID', `Fleet policy must be activate or stage, got ${JSON.stringify(options.policy)}`);
    }
    this.options = options;
    this.fleet = options.fleet;
    this.station = options.station;
    this.topics = fleetTopics(options.fleet, options.prefix ?? DEFAULT_FLEET_PREFIX);
    this.topics.ack(options.station); // validates the station name now
    this.ownsClient = !options.client;
    this.client =
      options.client ??
      mqtt.connect(options.url!, { clientId: `lane-vision-fleet-${options.fleet}-${options.station}`, reconnectPeriod: 1000, connectTimeout: 10_000, ...options.mqtt });
    this.client.on('message', this.onMessage);
    this.client.on('connect', () => {
      this.emit('connect');
      const filters: Record<string, { qos: 1 }> = { [this.topics.ackFilter]: { qos: 1 } };
      if (options.receive !== false) filters[this.topics.manifest] = { qos: 1 };
      this.client.subscribe(filters, (err) => err && this.emit('error', new LaneVisionError('FLEET_SUBSCRIBE_FAILED', `Could not subscribe to the fleet topics: ${err.message}`)));
    });
    this.client.on('offline', () => this.emit('offline'));
    // mqtt.js retries on its own (and says so at every attempt): for the status, not a crash.
    this.client.on('error', (err) => this.emit('connection-error', err));
    if (this.client.connected) this.client.emit('connect', { cmd: 'connack' } as never);
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Publishes `version` (default: the active one) to the fleet: chunks first, then the manifest that names them. */
  async publish(version?: number, options: { activate?: boolean; kind?: FleetManifestKind } = {}): Promise<FleetManifest> {
    const store = this.options.store;
    const chosen = version ?? (await store.activeVersion());
    if (chosen === undefined) throw new LaneVisionError('FLEET_NOTHING_TO_PUBLISH', `No version is active in ${store.dir}; train one before publishing it to the fleet`);
    const bundle = await packVersion(store, chosen);
    const metadata = (await store.loadModel(chosen)).metadata;
    const state = await this.loadState();
    const chunkSize = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const chunks = Math.ceil(bundle.bytes.byteLength / chunkSize);
    const previous = state.published[state.published.length - 1];
    const sequence = Math.max(Date.now(), (previous?.sequence ?? 0) + 1, state.handled + 1);
    await Promise.all(
      Array.from({ length: chunks }, (_, i) => this.client.publishAsync(this.topics.chunk(bundle.release, i), bundle.bytes.subarray(i * chunkSize, (i + 1) * chunkSize), { qos: 1, retain: true })),
    );
    const kind = options.kind ?? 'release';
    const manifest: FleetManifest = {
      schemaVersion: FLEET_SCHEMA_VERSION,
      kind,
      fleet: this.fleet,
      from: this.station,
      sequence,
      publishedAt: new Date(sequence).toISOString(),
      release: bundle.release,
      activate: kind !== 'release' || options.activate !== false,
      sourceVersion: chosen,
      labels: metadata.classes,
      backboneId: metadata.backbone.id,
      head: metadata.head.kind,
      accuracy: typeof (metadata.metrics as any)?.holdout?.accuracy === 'number' ? (metadata.metrics as any).holdout.accuracy : null,
      bundle: { size: bundle.bytes.byteLength, chunkSize, chunks, files: bundle.files },
    };
    await this.client.publishAsync(this.topics.manifest, JSON.stringify(manifest), { qos: 1, retain: true });
    // The retained chunks of the release the fleet left behind go; a rollback republishes them.
    if (previous && previous.release !== bundle.release) {
      await Promise.all(Array.from({ length: previous.chunks }, (_, i) => this.client.publishAsync(this.topics.chunk(previous.release, i), '', { qos: 1, retain: true })));
    }
    state.published.push({ release: bundle.release, version: chosen, sequence, chunks, kind });
    state.published = state.published.slice(-50);
    state.releases[bundle.release] = chosen;
    state.handled = Math.max(state.handled, sequence);
    await this.saveState(state);
    debug('%s published v%d as %s (%s, %d chunks)', this.station, chosen, bundle.release.slice(0, 12), kind, chunks);
    return manifest;
  }

  /**
   * Fleet-wide rollback: every station goes back to the release this station published
   * before the current one (or to `version`), this station included.
   */
  async rollback(version?: number): Promise<FleetManifest> {
    const state = await this.loadState();
    let target = version;
    if (target === undefined) {
      const current = state.published[state.published.length - 1];
      const existing = new Set((await this.options.store.listVersions()).map((v) => v.version));
      target = [...state.published].reverse().find((p) => p.release !== current?.release && existing.has(p.version))?.version;
      if (target === undefined) throw new LaneVisionError('FLEET_ROLLBACK_UNAVAILABLE', `Station ${this.station} has published no earlier release to the fleet that is still stored`);
    }
    const manifest = await this.publish(target, { kind: 'rollback' });
    if ((await this.options.store.activeVersion()) !== target) await this.options.store.activate(target);
    return manifest;
  }

  /** Activates a release the fleet staged (default: the last one this station published). */
  async activateRelease(version?: number): Promise<FleetManifest> {
    const state = await this.loadState();
    const target = version ?? state.published[state.published.length - 1]?.version;
    if (target === undefined) throw new LaneVisionError('FLEET_NOTHING_TO_PUBLISH', `Station ${this.station} has published nothing to activate`);
    return this.publish(target, { kind: 'activate' });
  }

  /** Activates locally a release this station staged (an operator's decision). */
  async activateStaged(): Promise<number> {
    const state = await this.loadState();
    const staged = Object.values(state.releases).sort((a, b) => b - a)[0];
    if (staged === undefined) throw new LaneVisionError('FLEET_NOTHING_STAGED', `Station ${this.station} holds no fleet release to activate`);
    await this.options.store.activate(staged);
    return staged;
  }

  /** Waits for the manifest being taken up, then disconnects (when it made the connection). */
  async close(): Promise<void> {
    this.closed = true;
    this.waiting = undefined;
    this.client.off('message', this.onMessage);
    await this.working.catch(() => undefined);
    if (this.ownsClient) await this.client.endAsync();
  }

  // -------------------------------------------------------------------------

  private dispatch(topic: string, payload: Buffer): void {
    if (topic === this.topics.manifest) {
      if (payload.length === 0) return; // a cleared manifest
      let manifest: FleetManifest;
      try {
        manifest = parseManifest(payload);
      } catch (err) {
        this.emit('error', err as Error);
        return;
      }
      if (manifest.from === this.station || manifest.fleet !== this.fleet) return;
      this.emit('manifest', manifest);
      this.enqueue(manifest);
    } else if (topic.startsWith(this.topics.ackFilter.slice(0, -1)) && payload.length > 0) {
      try {
        const ack = JSON.parse(payload.toString()) as FleetAck;
        if (ack.station !== this.station) this.emit('ack', ack);
      } catch {
        this.emit('error', new LaneVisionError('FLEET_ACK_INVALID', `A fleet acknowledgement on ${topic} is not JSON`));
      }
    }
  }

  private enqueue(manifest: FleetManifest): void {
    const busy = this.waiting !== undefined;
    if (!this.waiting || manifest.sequence > this.waiting.sequence) this.waiting = manifest;
    if (busy) return;
    this.working = this.working.then(async () => {
      const next = this.waiting;
      this.waiting = undefined;
      if (next && !this.closed) await this.takeUp(next);
    });
  }

  private async takeUp(m: FleetManifest): Promise<void> {
    const state = await this.loadState();
    if (m.sequence <= state.handled) return; // handled before a restart or reconnect
    const store = this.options.store;
    const wantActive = m.kind !== 'release' || (m.activate && (this.options.policy ?? 'activate') === 'activate');
    let result: FleetResult;
    let version: number | null = null;
    let error: FleetAck['error'];
    try {
      const existing = new Set((await store.listVersions()).map((v) => v.version));
      version = existing.has(state.releases[m.release]) ? state.releases[m.release] : await this.fetchAndStore(m, state);
      if (wantActive && (await store.activeVersion()) !== version) await store.activate(version);
      result = wantActive ? 'activated' : 'staged';
    } catch (err) {
      result = isLaneVisionError(err, 'MODEL_BACKBONE_MISMATCH') || isLaneVisionError(err, 'MODEL_CODES_CONFLICT') ? 'refused' : 'failed';
      error = { code: isLaneVisionError(err) ? err.code : 'FLEET_FAILED', message: (err as Error).message };
      version = null;
      this.emit('error', err as Error);
    }
    state.handled = Math.max(state.handled, m.sequence);
    await this.saveState(state);
    const ack: FleetAck = {
      schemaVersion: FLEET_SCHEMA_VERSION,
      fleet: this.fleet,
      station: this.station,
      release: m.release,
      kind: m.kind,
      sequence: m.sequence,
      result,
      version,
      activeVersion: (await store.activeVersion().catch(() => undefined)) ?? null,
      ...(error ? { error } : {}),
      ts: new Date().toISOString(),
    };
    await this.client.publishAsync(this.topics.ack(this.station), JSON.stringify(ack), { qos: 1, retain: true }).catch((err: Error) => this.emit('error', err));
    debug('%s %s release %s (v%s)', this.station, result, m.release.slice(0, 12), version ?? '-');
    this.emit('applied', ack);
  }

  /** Fetches the release's chunks, checks them and the backbone, saves it as this store's next version. */
  private async fetchAndStore(m: FleetManifest, state: FleetState): Promise<number> {
    const bytes = await this.fetchChunks(m);
    const { model, dispose } = await unpackBundle(bytes, m.release, m.bundle.files, m.sourceVersion);
    try {
      const descriptor = model.metadata.backbone;
      // A tuned version runs its own copy, made from the base backbone it names.
      const base = descriptor.tuned ? { ...descriptor, id: descriptor.tuned.from } : descriptor;
      const fit = backboneCompatibility(base, this.options.backbone);
      if (!fit.fits) {
        throw new LaneVisionError('MODEL_BACKBONE_MISMATCH', `Station ${this.station} refuses release ${m.release.slice(0, 12)} from ${m.from}: ${fit.reason ?? 'different backbone'}`);
      }
      const md = model.metadata;
      const saved = await this.options.store.saveModel({
        head: model.head,
        labels: model.labels,
        labelCodes: md.classes,
        backbone: md.backbone,
        metrics: md.metrics,
        datasetFingerprint: md.datasetFingerprint,
        modelName: md.modelName,
        ...(md.notes !== undefined ? { notes: md.notes } : {}),
        userMetadata: { ...md.userMetadata, fleet: { fleet: this.fleet, release: m.release, from: m.from, sourceVersion: m.sourceVersion } },
        ...(md.importedFrom ? { importedFrom: md.importedFrom } : {}),
        ...(md.pipeline ? { pipeline: md.pipeline } : {}),
        ...(model.novelty ? { novelty: model.novelty } : {}),
        ...(md.openSet ? { openSet: md.openSet } : {}),
        ...(model.tunedBackboneDir ? { tunedBackboneDir: model.tunedBackboneDir } : {}),
        activate: false,
      });
      state.releases[m.release] = saved.version;
      return saved.version;
    } finally {
      await dispose();
    }
  }

  private fetchChunks(m: FleetManifest): Promise<Buffer> {
    const filter = this.topics.chunkFilter(m.release);
    const prefix = filter.slice(0, -1);
    const parts: (Buffer | undefined)[] = new Array(m.bundle.chunks);
    let have = 0;
    return new Promise<Buffer>((resolve, reject) => {
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.client.off('message', onChunk);
        this.client.unsubscribe(filter, () => undefined);
        if (err) reject(err);
        else resolve(Buffer.concat(parts as Buffer[]));
      };
      const onChunk = (topic: string, payload: Buffer) => {
        if (!topic.startsWith(prefix) || payload.length === 0) return;
        const index = Number(topic.slice(prefix.length));
        if (!Number.isInteger(index) || index < 0 || index >= parts.length || parts[index]) return;
        parts[index] = payload;
        if (++have === parts.length) finish();
      };
      const timeoutMs = this.options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
      const timer = setTimeout(
        () => finish(new LaneVisionError('FLEET_INCOMPLETE', `Only ${have} of ${parts.length} parts of release ${m.release.slice(0, 12)} arrived within ${timeoutMs / 1000} s; the publisher may have replaced it`)),
        timeoutMs,
      );
      this.client.on('message', onChunk);
      this.client.subscribe(filter, { qos: 1 }, (err) => err && finish(new LaneVisionError('FLEET_SUBSCRIBE_FAILED', `Could not subscribe to ${filter}: ${err.message}`)));
    });
  }

  private async loadState(): Promise<FleetState> {
    if (this.state) return this.state;
    const file = path.join(this.options.store.dir, FLEET_STATE_FILE);
    try {
      const parsed = JSON.parse(await fsp.readFile(file, 'utf8')) as Partial<FleetState>;
      this.state = { releases: parsed.releases ?? {}, handled: Number.isSafeInteger(parsed.handled) ? (parsed.handled as number) : 0, published: Array.isArray(parsed.published) ? parsed.published : [] };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') debug('%s unreadable, starting afresh: %s', file, (err as Error).message);
      this.state = { releases: {}, handled: 0, published: [] };
    }
    return this.state;
  }

  private async saveState(state: FleetState): Promise<void> {
    await fsp.mkdir(this.options.store.dir, { recursive: true });
    await writeFileAtomic(path.join(this.options.store.dir, FLEET_STATE_FILE), JSON.stringify(state, null, 2) + '\n');
  }
}
