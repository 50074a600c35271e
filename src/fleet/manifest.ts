/**
 * Fleet topics and payloads. One retained manifest per fleet is the fleet's desired state
 * (which release, activated or staged); a release's bytes sit in retained chunks beside
 * it; each station's last answer is retained on its own ack topic.
 *
 *   <prefix>/<fleet>/manifest                 retained JSON FleetManifest
 *   <prefix>/<fleet>/release/<sha256>/<i>     retained raw bytes, chunk i of the release
 *   <prefix>/<fleet>/ack/<station>            retained JSON FleetAck
 */
import { LaneVisionError } from '../errors.js';
import { validateTopicVariable } from '../events/topics.js';
import type { LabelCode } from '../model-store/index.js';
import type { BundleFile } from './bundle.js';

export const FLEET_SCHEMA_VERSION = 1;
export const DEFAULT_FLEET_PREFIX = 'lane-vision/fleet';
/** 256 KiB: well under every broker's default packet limit (EMQX 1 MB, Mosquitto and HiveMQ 256 MB). */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

export interface FleetTopics {
  manifest: string;
  chunk(release: string, index: number): string;
  chunkFilter(release: string): string;
  ack(station: string): string;
  ackFilter: string;
}

export function fleetTopics(fleet: string, prefix = DEFAULT_FLEET_PREFIX): FleetTopics {
  validateTopicVariable('fleet', fleet);
  if (typeof prefix !== 'string' || prefix === '' || /[+#]/.test(prefix)) throw new LaneVisionError('FLEET_CONFIG_INVALID', `The fleet topic prefix "${prefix}" is not a topic`);
  const base = `${prefix}/${fleet}`;
  return {
    manifest: `${base}/manifest`,
    chunk: (release, index) => `${base}/release/${release}/${index}`,
    chunkFilter: (release) => `${base}/release/${release}/+`,
    ack: (station) => `${base}/ack/${validateTopicVariable('station', station)}`,
    ackFilter: `${base}/ack/+`,
  };
}

/**
 * `release`: a new version for the stations (activated unless `activate` is false or a
 * station stages releases); `activate`: activate a release stations already hold or fetch;
 * `rollback`: the fleet goes back to an earlier release. Every kind names its bytes, so a
 * station that missed them (offline, new) fetches what it lacks.
 */
export type FleetManifestKind = 'release' | 'activate' | 'rollback';

export interface FleetManifest {
  schemaVersion: number;
  kind: FleetManifestKind;
  fleet: string;
  /** Station that published it. */
  from: string;
  /** Increases with every manifest of the publisher (ms since epoch at publication). */
  sequence: number;
  publishedAt: string;
  /** sha256 (hex) of the bundle. */
  release: string;
  activate: boolean;
  /** The version's number at the publisher (stations number their own). */
  sourceVersion: number;
  labels: LabelCode[];
  backboneId: string;
  head: string;
  accuracy: number | null;
  bundle: { size: number; chunkSize: number; chunks: number; files: BundleFile[] };
}

export type FleetResult = 'activated' | 'staged' | 'refused' | 'failed';

export interface FleetAck {
  schemaVersion: number;
  fleet: string;
  station: string;
  release: string;
  kind: FleetManifestKind;
  sequence: number;
  result: FleetResult;
  /** The station's own version number for the release (null when refused or failed). */
  version: number | null;
  /** The version the station classifies with after this. */
  activeVersion: number | null;
  error?: { code: string; message: string };
  ts: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** A manifest from the wire, checked field by field; FLEET_MANIFEST_INVALID names what is wrong. */
export function parseManifest(payload: Buffer | string): FleetManifest {
  const bad = (why: string): never => {
    throw new LaneVisionError('FLEET_MANIFEST_INVALID', `Fleet manifest refused: ${why}`);
  };
  let m: FleetManifest;
  try {
    m = JSON.parse(payload.toString()) as FleetManifest;
  } catch (err) {
    return bad(`not JSON (${(err as Error).message})`);
  }
  if (!m || typeof m !== 'object') bad('not an object');
  if (m.schemaVersion !== FLEET_SCHEMA_VERSION) bad(`schemaVersion ${String(m.schemaVersion)} (this Lane Vision reads ${FLEET_SCHEMA_VERSION})`);
  if (!['release', 'activate', 'rollback'].includes(m.kind)) bad(`unknown kind ${JSON.stringify(m.kind)}`);
  if (typeof m.release !== 'string' || !HEX64.test(m.release)) bad('release is not a sha256');
  if (typeof m.from !== 'string' || m.from === '') bad('no publishing station');
  if (!Number.isSafeInteger(m.sequence)) bad('no sequence');
  if (typeof m.activate !== 'boolean') bad('activate must be true or false');
  if (!Array.isArray(m.labels) || m.labels.length === 0 || !m.labels.every((l) => typeof l?.label === 'string' && Number.isInteger(l.code))) bad('labels need {label, code}');
  if (typeof m.backboneId !== 'string') bad('no backboneId');
  const b = m.bundle;
  if (!b || !Number.isSafeInteger(b.size) || !Number.isSafeInteger(b.chunkSize) || b.chunkSize < 1 || !Number.isSafeInteger(b.chunks)) bad('bundle needs size, chunkSize and chunks');
  if (b.chunks !== Math.ceil(b.size / b.chunkSize)) bad(`${b.chunks} chunks cannot hold ${b.size} bytes of ${b.chunkSize}`);
  if (!Array.isArray(b.files) || !b.files.every((f) => typeof f?.path === 'string' && Number.isSafeInteger(f.size) && typeof f.sha256 === 'string' && HEX64.test(f.sha256))) {
    bad('bundle.files need {path, size, sha256}');
  }
  return m;
}

const sha = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const labelCodes = {
  type: 'array',
  minItems: 1,
  items: { type: 'object', required: ['label', 'code'], additionalProperties: false, properties: { label: { type: 'string', minLength: 1 }, code: { type: 'integer', minimum: 1 } } },
} as const;

export const fleetManifestSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:fleet:manifest:1',
  title: 'Lane Vision fleet manifest (retained)',
  type: 'object',
  required: ['schemaVersion', 'kind', 'fleet', 'from', 'sequence', 'publishedAt', 'release', 'activate', 'sourceVersion', 'labels', 'backboneId', 'head', 'accuracy', 'bundle'],
  additionalProperties: false,
  properties: {
    schemaVersion: { const: FLEET_SCHEMA_VERSION },
    kind: { enum: ['release', 'activate', 'rollback'] },
    fleet: { type: 'string', minLength: 1 },
    from: { type: 'string', minLength: 1 },
    sequence: { type: 'integer' },
    publishedAt: { type: 'string', format: 'date-time' },
    release: sha,
    activate: { type: 'boolean' },
    sourceVersion: { type: 'integer', minimum: 1 },
    labels: labelCodes,
    backboneId: { type: 'string' },
    head: { type: 'string' },
    accuracy: { type: ['number', 'null'] },
    bundle: {
      type: 'object',
      required: ['size', 'chunkSize', 'chunks', 'files'],
      additionalProperties: false,
      properties: {
        size: { type: 'integer', minimum: 1 },
        chunkSize: { type: 'integer', minimum: 1 },
        chunks: { type: 'integer', minimum: 1 },
        files: {
          type: 'array',
          items: { type: 'object', required: ['path', 'size', 'sha256'], additionalProperties: false, properties: { path: { type: 'string' }, size: { type: 'integer', minimum: 0 }, sha256: sha } },
        },
      },
    },
  },
} as const;

export const fleetAckSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:lane-vision:fleet:ack:1',
  title: 'Lane Vision fleet acknowledgement (retained, one per station)',
  type: 'object',
  required: ['schemaVersion', 'fleet', 'station', 'release', 'kind', 'sequence', 'result', 'version', 'activeVersion', 'ts'],
  additionalProperties: false,
  properties: {
    schemaVersion: { const: FLEET_SCHEMA_VERSION },
    fleet: { type: 'string', minLength: 1 },
    station: { type: 'string', minLength: 1 },
    release: sha,
    kind: { enum: ['release', 'activate', 'rollback'] },
    sequence: { type: 'integer' },
    result: { enum: ['activated', 'staged', 'refused', 'failed'] },
    version: { type: ['integer', 'null'], minimum: 1 },
    activeVersion: { type: ['integer', 'null'], minimum: 1 },
    error: { type: 'object', required: ['code', 'message'], additionalProperties: false, properties: { code: { type: 'string' }, message: { type: 'string' } } },
    ts: { type: 'string', format: 'date-time' },
  },
} as const;
