/**
 * The fleet library against a real Mosquitto: a station publishes versions, the others
 * fetch, check, store and activate (or stage) them and acknowledge; a station with another
 * backbone refuses; a damaged release fails its checksum; a fleet rollback brings every
 * station back; a station that was off catches up from the retained manifest and does
 * not take the same manifest twice after a restart. Last, 20 stations in one process:
 * the time to full adoption is reported (not asserted). Heads are seeded random numbers:
 * what travels is files, and every byte of them is compared.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import mqtt from 'mqtt';
import Ajv2020 from 'ajv/dist/2020.js';
import { FleetMember, fleetAckSchema, fleetManifestSchema, fleetTopics, type FleetAck, type FleetManifest } from '../../../src/fleet/index.js';
import { openModelStore, type LoadedBackboneIdentity, type ModelStore } from '../../../src/model-store/index.js';
import { mosquittoSkipReason, startMosquitto, type MosquittoBroker } from '../../support/mosquitto.js';
import { backbone, makeHead, makeHeadOfSize } from '../model-store/helpers.js';
import { buildNoveltyIndex } from '../../../src/open-set/index.js';
import { createRandom, randomNormal } from '../../../src/random.js';

let mosquitto: MosquittoBroker;
let work: string;
const members: FleetMember[] = [];
const SAME: LoadedBackboneIdentity = { id: backbone.id, featureSize: backbone.featureSize, inputSize: backbone.inputSize, inputRange: backbone.inputRange };
const ajv = new Ajv2020({ strict: true, allErrors: true, validateFormats: false });
const validAck = ajv.compile(fleetAckSchema as object);
const validManifest = ajv.compile(fleetManifestSchema as object);
const OTHER: LoadedBackboneIdentity = { id: 'folder:other|pool|224x224|[-1,1]|abc', featureSize: 8, inputSize: backbone.inputSize, inputRange: backbone.inputRange };

before(async () => {
  if (mosquittoSkipReason) return;
  mosquitto = await startMosquitto();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lane-fleet-'));
});
after(async () => {
  if (mosquittoSkipReason) return;
  await Promise.all(members.map((m) => m.close()));
  await mosquitto.close();
  fs.rmSync(work, { recursive: true, force: true });
});

async function storeAt(name: string): Promise<ModelStore> {
  return openModelStore(path.join(work, name));
}

async function member(fleet: string, station: string, store: ModelStore, extra: Partial<ConstructorParameters<typeof FleetMember>[0]> = {}): Promise<FleetMember> {
  const m = new FleetMember({ url: mosquitto.url, fleet, station, store, backbone: SAME, fetchTimeoutMs: 10_000, ...extra });
  m.on('error', () => undefined); // asserted through acks
  members.push(m);
  await new Promise<void>((resolve) => (m.connected ? resolve() : m.once('connect', () => resolve())));
  return m;
}

/** The next `count` acks for `release` heard by `m`, by station. */
function acksFor(m: FleetMember, release: () => string | undefined, count: number, kind?: string): Promise<Map<string, FleetAck>> {
  return new Promise((resolve) => {
    const got = new Map<string, FleetAck>();
    const on = (ack: FleetAck) => {
      assert.ok(validAck(ack), `ack against its schema: ${ajv.errorsText(validAck.errors)}`);
      if (ack.release !== release() || (kind && ack.kind !== kind)) return;
      got.set(ack.station, ack);
      if (got.size === count) {
        m.off('ack', on);
        resolve(got);
      }
    };
    m.on('ack', on);
  });
}

function fileHash(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

const save = (store: ModelStore, seed: number, labels: string[]) =>
  store.saveModel({ head: makeHead('softmax', labels.length, seed), labels, backbone, metrics: { holdout: { accuracy: seed / 10 } }, datasetFingerprint: `d${seed}` });

test('publish, refuse, checksum, rollback, staging and catch-up across stations', { skip: mosquittoSkipReason, timeout: 120_000 }, async () => {
  const source = await storeAt('source');
  await save(source, 1, ['vanilla', 'strawberry']);
  await save(source, 2, ['vanilla', 'strawberry', 'natural']);
  await source.activate(1);
  const publisher = await member('plant-1', 'station-1', source);
  const stores = { s2: await storeAt('s2'), s3: await storeAt('s3'), wrong: await storeAt('wrong') };
  // s3 already holds a version of its own: fleet versions are numbered by each station.
  await save(stores.s3, 9, ['vanilla', 'strawberry']);
  await member('plant-1', 'station-2', stores.s2);
  let s3 = await member('plant-1', 'station-3', stores.s3);
  await member('plant-1', 'station-wrong', stores.wrong, { backbone: OTHER });

  let release: string | undefined;
  const first = acksFor(publisher, () => release, 3);
  const v1 = await publisher.publish(1);
  release = v1.release;
  assert.ok(validManifest(v1), `manifest against its schema: ${ajv.errorsText(validManifest.errors)}`);
  const acks = await first;
  assert.equal(acks.get('station-2')!.result, 'activated');
  assert.equal(acks.get('station-3')!.result, 'activated');
  assert.equal(acks.get('station-wrong')!.result, 'refused');
  assert.equal(acks.get('station-wrong')!.error!.code, 'MODEL_BACKBONE_MISMATCH');
  assert.match(acks.get('station-wrong')!.error!.message, /Station station-wrong refuses release .* from station-1: .*1[6] features.*8/);
  assert.equal(await stores.wrong.activeVersion(), undefined, 'nothing stored on a refusal');
  assert.equal(acks.get('station-3')!.version, 2, "s3's own numbering");
  for (const [store, version] of [[stores.s2, 1], [stores.s3, 2]] as const) {
    const model = await store.loadModel('active');
    assert.equal(model.version, version);
    assert.deepEqual(model.metadata.classes, (await source.readMetadata(1)).classes, 'label codes travel unchanged');
    assert.equal(fileHash(path.join(model.dir, 'head.bin')), fileHash(path.join(source.dir, 'v0001', 'head.bin')), 'the same head bytes');
  }

  // A new release, activated everywhere; then a fleet-wide rollback to the first one.
  const second = acksFor(publisher, () => release, 3);
  const v2 = await publisher.publish(2);
  release = v2.release;
  await second;
  assert.deepEqual((await stores.s2.loadModel('active')).labels, ['vanilla', 'strawberry', 'natural']);
  const back = acksFor(publisher, () => release, 3, 'rollback');
  release = v1.release;
  const rolled = await publisher.rollback();
  assert.equal(rolled.release, v1.release);
  const backAcks = await back;
  assert.deepEqual(Object.fromEntries([...backAcks].map(([station, a]) => [station, a.result])), { 'station-2': 'activated', 'station-3': 'activated', 'station-wrong': 'refused' });
  assert.equal(await source.activeVersion(), 1, 'the publishing station rolls back too');
  assert.equal(await stores.s2.activeVersion(), 1, 'the version it already held, not a new copy');
  assert.equal((await stores.s2.listVersions()).length, 2);

  // station-3 goes offline; a new release is published meanwhile; it catches up on return.
  await s3.close();
  members.splice(members.indexOf(s3), 1);
  await save(source, 3, ['vanilla', 'natural']);
  const third = acksFor(publisher, () => release, 2);
  const v3 = await publisher.publish(3);
  release = v3.release;
  assert.deepEqual([...(await third).keys()].sort(), ['station-2', 'station-wrong'], 'station-3 is away');
  assert.notEqual((await stores.s3.loadModel('active')).labels.join(), 'vanilla,natural');
  const caughtUp = acksFor(publisher, () => release, 1);
  s3 = await member('plant-1', 'station-3', stores.s3);
  assert.equal((await caughtUp).get('station-3')!.result, 'activated');
  assert.deepEqual((await stores.s3.loadModel('active')).labels, ['vanilla', 'natural']);
  // A restart does not take the same retained manifest again.
  const versionsBefore = (await stores.s3.listVersions()).length;
  await s3.close();
  members.splice(members.indexOf(s3), 1);
  let again = 0;
  const restarted = await member('plant-1', 'station-3', stores.s3);
  restarted.on('applied', () => again++);
  await new Promise<void>((resolve) => restarted.once('manifest', () => resolve()));
  await restarted.close(); // waits for the manifest being taken up
  members.splice(members.indexOf(restarted), 1);
  assert.equal(again, 0);
  assert.equal((await stores.s3.listVersions()).length, versionsBefore);
});

test('a staging station keeps the release until the fleet activates it; a damaged release fails its checksum', { skip: mosquittoSkipReason, timeout: 60_000 }, async () => {
  const source = await storeAt('stage-source');
  await save(source, 5, ['a', 'b']);
  const publisher = await member('plant-2', 'p', source);
  const staging = await storeAt('stage-target');
  await member('plant-2', 'staged', staging, { policy: 'stage' });
  let release: string | undefined;
  const staged = acksFor(publisher, () => release, 1);
  release = (await publisher.publish()).release;
  assert.equal((await staged).get('staged')!.result, 'staged');
  assert.equal(await staging.activeVersion(), undefined, 'stored, not used');
  assert.equal((await staging.listVersions()).length, 1);
  const activated = acksFor(publisher, () => release, 1, 'activate');
  await publisher.activateRelease();
  assert.equal((await activated).get('staged')!.result, 'activated');
  assert.equal(await staging.activeVersion(), 1);

  // A manifest whose bytes do not match its sha256.
  const topics = fleetTopics('plant-2');
  const client = await mqtt.connectAsync(mosquitto.url);
  const fake = 'f'.repeat(64);
  const manifest: FleetManifest = JSON.parse(JSON.stringify(await publisher.activateRelease()));
  const realChunks = await new Promise<Buffer[]>((resolve) => {
    const parts: Buffer[] = [];
    client.on('message', (_t, p) => {
      parts.push(p);
      if (parts.length === manifest.bundle.chunks) resolve(parts);
    });
    void client.subscribeAsync(topics.chunkFilter(manifest.release), { qos: 1 });
  });
  const tampered = Buffer.concat(realChunks);
  tampered[tampered.length - 1] ^= 0xff;
  await client.publishAsync(topics.chunk(fake, 0), tampered, { qos: 1, retain: true });
  const failed = acksFor(publisher, () => fake, 1);
  await client.publishAsync(
    topics.manifest,
    JSON.stringify({ ...manifest, release: fake, from: 'intruder', kind: 'release', sequence: Date.now() + 1000, bundle: { ...manifest.bundle, chunkSize: tampered.length, chunks: 1 } }),
    { qos: 1, retain: true },
  );
  const ack = (await failed).get('staged')!;
  assert.equal(ack.result, 'failed');
  assert.equal(ack.error!.code, 'FLEET_CHECKSUM_MISMATCH');
  assert.equal(await staging.activeVersion(), 1, 'the lane keeps its model');
  await client.publishAsync(topics.chunk(fake, 0), '', { qos: 1, retain: true });
  await client.endAsync();
});

test('20 stations in one process adopt a release (time to full adoption reported)', { skip: mosquittoSkipReason, timeout: 120_000 }, async (t) => {
  // Sized like a real version: a 6-label logistic head on 1280 MobileNet features and the novelty index of 300 frames.
  const wide = { ...backbone, id: 'folder:wide|pool|224x224|[-1,1]|1280', featureSize: 1280 };
  const random = createRandom(3);
  const frames = Array.from({ length: 300 }, () => Float32Array.from({ length: 1280 }, () => randomNormal(random)));
  const source = await storeAt('sim-source');
  await source.saveModel({
    head: makeHeadOfSize('logistic', 6, 1280, 7),
    labels: ['a', 'b', 'c', 'd', 'e', 'f'],
    backbone: wide,
    novelty: buildNoveltyIndex(frames),
    datasetFingerprint: 'sim',
  });
  const identity: LoadedBackboneIdentity = { id: wide.id, featureSize: 1280, inputSize: wide.inputSize, inputRange: wide.inputRange };
  const publisher = await member('plant-sim', 'sim-0', source, { backbone: identity });
  for (let i = 1; i <= 20; i++) await member('plant-sim', `sim-${i}`, await storeAt(`sim-${i}`), { backbone: identity });
  let release: string | undefined;
  const all = acksFor(publisher, () => release, 20);
  const started = performance.now();
  const manifest = await publisher.publish();
  release = manifest.release;
  const acks = await all;
  const elapsed = performance.now() - started;
  assert.equal([...acks.values()].filter((a) => a.result === 'activated').length, 20);
  t.diagnostic(`20 stations activated a ${(manifest.bundle.size / 1024).toFixed(0)} KiB release (${manifest.bundle.chunks} chunks) ${elapsed.toFixed(0)} ms after publish() began`);
});
