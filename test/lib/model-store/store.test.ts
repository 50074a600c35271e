import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { isLaneVisionError } from '../../../src/errors.js';
import { TEMP_PREFIX } from '../../../src/fs/atomic.js';
import {
  ACTIVE_FILE,
  REGISTRY_FILE,
  assignLabelCodes,
  openModelStore,
  type ActiveChange,
  type ModelStore,
} from '../../../src/model-store/index.js';
import { deserialiseHead, HEAD_FORMAT } from '../../../src/training/serialise.js';
import type { HeadKind } from '../../../src/training/types.js';
import { backbone, makeHead, tempStoreDir } from './helpers.js';

const execFileAsync = promisify(execFile);

function save(store: ModelStore, labels: string[], extra: { kind?: HeadKind; seed?: number; activate?: boolean; metrics?: Record<string, unknown> } = {}) {
  return store.saveModel({
    head: makeHead(extra.kind ?? 'softmax', labels.length, extra.seed ?? 1),
    labels,
    backbone,
    metrics: extra.metrics ?? { accuracy: 0.5 },
    datasetFingerprint: `dataset-${extra.seed ?? 1}`,
    activate: extra.activate,
  });
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isLaneVisionError(err, code), `expected ${code}, got ${String((err as Error)?.stack ?? err)}`);
    return true;
  });
}

test('save, list and load latest, pinned and active versions', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  await rejectsWith(store.loadModel('latest'), 'MODEL_STORE_EMPTY');
  await rejectsWith(store.loadModel('active'), 'MODEL_STORE_EMPTY');
  assert.deepEqual(await store.listVersions(), []);

  const saved = [];
  for (const [i, kind] of (['softmax', 'mlp', 'prototype', 'knn'] as const).entries()) {
    saved.push(await save(store, ['a', 'b', 'c'], { kind, seed: 10 * (i + 1), metrics: { accuracy: (7 + i) / 10, confusion: [[1, 0], [0, 1]] } }));
  }
  assert.deepEqual(saved.map((s) => s.name), ['v0001', 'v0002', 'v0003', 'v0004']);

  const listed = await store.listVersions();
  assert.deepEqual(listed.map((v) => v.version), [1, 2, 3, 4]);
  assert.deepEqual(listed.map((v) => v.active), [false, false, false, true]);
  assert.deepEqual(listed.map((v) => v.metrics?.accuracy), [0.7, 0.8, 0.9, 1.0]);
  assert.deepEqual(listed[0].metrics?.confusion, [[1, 0], [0, 1]]);
  for (const v of listed) assert.ok(!Number.isNaN(Date.parse(v.createdAt ?? '')), `createdAt of ${v.name}`);

  // Each kind of head comes back bit for bit.
  for (const [i, kind] of (['softmax', 'mlp', 'prototype', 'knn'] as const).entries()) {
    const loaded = await store.loadModel(i + 1);
    assert.deepEqual(loaded.head, makeHead(kind, 3, 10 * (i + 1)), `${kind} head round trip`);
    assert.equal(loaded.metadata.head.kind, kind);
    assert.equal(loaded.metadata.datasetFingerprint, `dataset-${10 * (i + 1)}`);
  }
  assert.equal((await store.loadModel('latest')).version, 4);
  assert.equal((await store.loadModel('active')).version, 4);
  assert.equal((await store.loadModel('v0002')).version, 2);
  assert.equal((await store.loadModel()).version, 4, 'default is the active version');

  // TM-compatible metadata fields are present.
  const meta = (await store.loadModel(1)).metadata;
  assert.deepEqual(meta.labels, ['a', 'b', 'c']);
  assert.equal(meta.packageName, 'node-red-contrib-lane-vision');
  assert.match(meta.tfjsVersion, /^\d+\.\d+\.\d+/);
  assert.equal(meta.imageSize, 224);
  assert.equal(meta.timeStamp, meta.createdAt);
  assert.equal(meta.backbone.id, backbone.id);

  // One head format: metadata.json's `head` is the training module's description of head.bin.
  for (const version of [1, 2, 3, 4]) {
    const { metadata, dir, head } = await store.loadModel(version);
    const { file, sha256, ...headJson } = metadata.head;
    assert.equal(headJson.format, HEAD_FORMAT);
    assert.match(sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(deserialiseHead(headJson, fs.readFileSync(path.join(dir, file))), head);
  }

  await rejectsWith(store.loadModel(99), 'MODEL_VERSION_NOT_FOUND');
  await rejectsWith(store.loadModel('newest'), 'MODEL_VERSION_NOT_FOUND');
  // A second open of the same folder shares the instance (one queue, one set of events).
  assert.equal(await openModelStore(store.dir), store);
});

test('label codes stay stable across retrains; removed codes are never reused', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  const codesOf = async (labels: string[]) => {
    const { metadata } = await save(store, labels);
    return Object.fromEntries(metadata.classes.map((c) => [c.label, c.code]));
  };
  assert.deepEqual(await codesOf(['vanilla', 'natural', 'strawberry']), { vanilla: 1, natural: 2, strawberry: 3 });
  // Reordered, one added: existing labels keep their codes.
  assert.deepEqual(await codesOf(['strawberry', 'vanilla', 'mild']), { strawberry: 3, vanilla: 1, mild: 4 });
  // natural and strawberry removed, a new label takes 5, not a freed code.
  assert.deepEqual(await codesOf(['vanilla', 'mild', 'blueberry']), { vanilla: 1, mild: 4, blueberry: 5 });
  // A label that comes back gets its old code.
  assert.deepEqual(await codesOf(['natural', 'blueberry']), { natural: 2, blueberry: 5 });

  // Losing the registry file must not free codes that versions still use.
  await store.prune({ keep: 1 });
  fs.rmSync(path.join(store.dir, REGISTRY_FILE));
  assert.deepEqual(await codesOf(['apricot', 'natural']), { apricot: 6, natural: 2 });
  // prune kept v4 (active) and v3 (previous, the rollback target).
  assert.deepEqual((await store.listVersions()).map((v) => v.version), [3, 4, 5], 'version numbers keep counting after prune and registry loss');
  const registry = await store.labelCodes();
  assert.equal(registry.nextCode, 7);
});

test('assignLabelCodes is pure and refuses bad labels', () => {
  const first = assignLabelCodes(['x', 'y']);
  assert.deepEqual(first.classes, [{ label: 'x', code: 1 }, { label: 'y', code: 2 }]);
  const second = assignLabelCodes(['y', 'z'], first.registry);
  assert.deepEqual(second.classes, [{ label: 'y', code: 2 }, { label: 'z', code: 3 }]);
  assert.deepEqual(second.added, ['z']);
  assert.deepEqual(first.registry.codes.length, 2, 'input registry untouched');
  for (const bad of [[], ['a', 'a'], [''], ['  ']]) {
    assert.throws(() => assignLabelCodes(bad), (err: unknown) => isLaneVisionError(err, 'LABELS_INVALID'));
  }
});

test('activate and rollback move the active pointer and notify listeners', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  const heard: ActiveChange[] = [];
  const watched: number[] = [];
  store.on('active', (change) => heard.push(change));
  const stop = store.watchActive((change) => watched.push(change.version));

  await rejectsWith(store.rollback(), 'MODEL_ROLLBACK_UNAVAILABLE');
  for (let i = 1; i <= 3; i++) await save(store, ['a', 'b'], { seed: i });
  assert.equal(await store.activeVersion(), 3);
  await save(store, ['a', 'b'], { seed: 4, activate: false });
  assert.equal(await store.activeVersion(), 3, 'activate: false leaves the active version');
  assert.equal((await store.loadModel('active')).version, 3);

  assert.deepEqual(await store.rollback(), { version: 2, previous: 3, reason: 'rollback' });
  assert.equal((await store.loadModel('active')).version, 2);
  assert.equal((await store.rollback()).version, 1);
  await rejectsWith(store.rollback(), 'MODEL_ROLLBACK_UNAVAILABLE');
  assert.equal(await store.activeVersion(), 1, 'a refused rollback changes nothing');

  assert.deepEqual(await store.activate('v0004'), { version: 4, previous: 1, reason: 'activate' });
  assert.equal((await store.rollback()).version, 1);
  await rejectsWith(store.activate(42), 'MODEL_VERSION_NOT_FOUND');

  assert.deepEqual(heard.map((c) => [c.version, c.reason]), [
    [1, 'save'], [2, 'save'], [3, 'save'], [2, 'rollback'], [1, 'rollback'], [4, 'activate'], [1, 'rollback'],
  ]);
  assert.deepEqual(watched, [1, 2, 3, 2, 1, 4, 1]);
  stop();
  await store.activate(3);
  assert.equal(watched.length, 7, 'no calls after stop');
});

test('watchActive polling sees an activation made by another process', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  await save(store, ['a', 'b'], { seed: 1 });
  await save(store, ['a', 'b'], { seed: 2 });
  await store.activate(1);
  const seen = new Promise<ActiveChange>((resolve, reject) => {
    // The poll timer is unref'd (it must not keep Node-RED alive); this one keeps the test alive.
    const timeout = setTimeout(() => reject(new Error('no change seen within 10 s')), 10_000);
    const stop = store.watchActive(
      (change) => {
        stop();
        clearTimeout(timeout);
        resolve(change);
      },
      { pollIntervalMs: 50 },
    );
  });
  const script = path.join(path.dirname(store.dir), 'activate.ts');
  const storeModule = path.resolve(__dirname, '../../../src/model-store/index.ts');
  fs.writeFileSync(
    script,
    `import { openModelStore } from ${JSON.stringify(storeModule)};\n` +
      `openModelStore(${JSON.stringify(store.dir)}).then((s) => s.activate(2)).catch((e) => { console.error(e); process.exit(1); });\n`,
  );
  await execFileAsync(process.execPath, ['--import', 'tsx', script], { cwd: path.resolve(__dirname, '../../..') });
  const change = await seen;
  assert.deepEqual(change, { version: 2, previous: 1, reason: 'external' });
});

test('prune keeps the newest versions and always the active one', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  for (let i = 1; i <= 5; i++) await save(store, ['a', 'b'], { seed: i });
  await store.activate(1);
  const prunedEvents: number[][] = [];
  store.on('pruned', (v) => prunedEvents.push(v));
  assert.deepEqual(await store.prune({ keep: 2 }), [2, 3]);
  assert.deepEqual((await store.listVersions()).map((v) => v.version), [1, 4, 5]);
  assert.equal((await store.loadModel('active')).version, 1);
  assert.deepEqual(prunedEvents, [[2, 3]]);
  assert.deepEqual(await store.prune({ keep: 1 }), [4]);
  await rejectsWith(store.prune({ keep: 0 }), 'MODEL_STORE_INVALID');
  // Rollback skips pruned versions; nothing older than v1 is left.
  await store.activate(5);
  assert.equal((await store.rollback()).version, 1);
  const next = await save(store, ['a', 'b'], { seed: 6 });
  assert.equal(next.version, 6, 'numbers are never reused after pruning');
  assert.equal(fs.readdirSync(store.dir).filter((n) => n.startsWith('.')).length, 0, 'no trash left behind');
});

test('prune never removes the previous version, so a rollback after pruning still has somewhere to go', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  for (let i = 1; i <= 5; i++) await save(store, ['a', 'b'], { seed: i });
  await store.activate(1);
  await store.activate(5);
  assert.equal(await store.previousVersion(), 1);
  assert.deepEqual(await store.prune({ keep: 1 }), [2, 3, 4], 'v1 is the rollback target, v5 the active one');
  assert.equal((await store.rollback()).version, 1);
  assert.equal(await store.previousVersion(), 5, 'a second rollback returns to v5, the pruned v2..v4 are skipped');
});

test('a crash leftover is ignored, then cleaned; concurrent saves are serialised', async (t) => {
  const dir = tempStoreDir(t);
  const first = await openModelStore(dir);
  await save(first, ['a', 'b']);
  // What a writer killed mid-save leaves behind: a half-written temp version folder and
  // a temp pointer file, named with a pid that no longer runs.
  const deadPid = 2 ** 22 + 12345; // above Linux's pid_max
  const leftover = path.join(dir, `${TEMP_PREFIX}${deadPid}-0badf00d-v0002`);
  fs.mkdirSync(leftover);
  fs.writeFileSync(path.join(leftover, 'metadata.json'), '{"formatVersion":1,"vers');
  fs.writeFileSync(path.join(dir, `${TEMP_PREFIX}${deadPid}-0badf00e-active.json`), '{');
  assert.deepEqual((await first.listVersions()).map((v) => v.name), ['v0001'], 'temp folder is not a version');
  assert.equal((await first.loadModel('latest')).version, 1);

  await first.cleanUp();
  assert.deepEqual(fs.readdirSync(dir).sort(), [ACTIVE_FILE, REGISTRY_FILE, 'v0001'].sort());

  // Five saves fired at once get five distinct versions, all complete.
  const results = await Promise.all([1, 2, 3, 4, 5].map((seed) => save(first, ['a', 'b', `extra-${seed}`], { seed })));
  assert.deepEqual(results.map((r) => r.version).sort(), [2, 3, 4, 5, 6]);
  for (const r of results) {
    const loaded = await first.loadModel(r.version);
    assert.equal(loaded.labels[2], loaded.metadata.labels[2]);
  }
  const extraCodes = results.map((r) => r.metadata.classes[2].code);
  assert.equal(new Set(extraCodes).size, 5, 'each new label got its own code');
  assert.equal(await first.activeVersion(), 6);
  assert.equal(fs.readdirSync(dir).filter((n) => n.startsWith('.')).length, 0);
});

test('damaged files give clear errors, not crashes', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  for (let i = 1; i <= 5; i++) await save(store, ['a', 'b'], { seed: i, kind: 'mlp' });
  const file = (v: number, name: string) => path.join(store.dir, `v000${v}`, name);

  fs.writeFileSync(file(1, 'metadata.json'), '{"formatVersion": 1, "version": ');
  await rejectsWith(store.loadModel(1), 'MODEL_CORRUPT');

  const head = fs.readFileSync(file(2, 'head.bin'));
  fs.writeFileSync(file(2, 'head.bin'), head.subarray(0, head.length - 8));
  await rejectsWith(store.loadModel(2), 'MODEL_CORRUPT');

  const flipped = fs.readFileSync(file(3, 'head.bin'));
  flipped[17] ^= 0x40;
  fs.writeFileSync(file(3, 'head.bin'), flipped);
  await rejectsWith(store.loadModel(3), 'MODEL_CORRUPT');

  fs.rmSync(file(4, 'head.bin'));
  await rejectsWith(store.loadModel(4), 'MODEL_CORRUPT');

  // A head.bin edited together with its checksum still has to hold a usable head.
  const meta5Before = JSON.parse(fs.readFileSync(file(5, 'metadata.json'), 'utf8'));
  const headBefore = fs.readFileSync(file(5, 'head.bin'));
  const poisoned = Buffer.from(headBefore);
  poisoned.writeFloatLE(Number.NaN, 4);
  fs.writeFileSync(file(5, 'head.bin'), poisoned);
  const resummed = { ...meta5Before, head: { ...meta5Before.head, sha256: createHash('sha256').update(poisoned).digest('hex') } };
  fs.writeFileSync(file(5, 'metadata.json'), JSON.stringify(resummed));
  await assert.rejects(store.loadModel(5), (err: unknown) => {
    assert.ok(isLaneVisionError(err, 'MODEL_CORRUPT'), String(err));
    assert.match((err as Error).message, /head\.bin.*NaN/);
    return true;
  });
  fs.writeFileSync(file(5, 'head.bin'), headBefore);
  fs.writeFileSync(file(5, 'metadata.json'), JSON.stringify(meta5Before));

  const meta5 = JSON.parse(fs.readFileSync(file(5, 'metadata.json'), 'utf8'));
  fs.writeFileSync(file(5, 'metadata.json'), JSON.stringify({ ...meta5, formatVersion: 99 }));
  await rejectsWith(store.loadModel(5), 'MODEL_FORMAT_UNSUPPORTED');
  fs.writeFileSync(file(5, 'metadata.json'), JSON.stringify({ ...meta5, classes: [{ label: 'a', code: 1 }] }));
  await rejectsWith(store.loadModel(5), 'MODEL_CORRUPT');
  fs.writeFileSync(file(5, 'metadata.json'), JSON.stringify(meta5));
  assert.equal((await store.loadModel(5)).version, 5, 'restored metadata loads again');

  // Listing still works and says what is wrong with each version.
  const listed = await store.listVersions();
  assert.deepEqual(listed.map((v) => v.problem?.code), ['MODEL_CORRUPT', undefined, undefined, undefined, undefined]);
  // A damaged version cannot be activated.
  await rejectsWith(store.activate(3), 'MODEL_CORRUPT');
  assert.equal(await store.activeVersion(), 5);

  fs.mkdirSync(path.join(store.dir, 'v0009'));
  await rejectsWith(store.loadModel(9), 'MODEL_CORRUPT');

  fs.writeFileSync(path.join(store.dir, ACTIVE_FILE), 'not json');
  await rejectsWith(store.loadModel('active'), 'MODEL_CORRUPT');
  await rejectsWith(store.prune({ keep: 1 }), 'MODEL_CORRUPT'); // never prune without knowing what is active
  assert.equal((await store.listVersions()).filter((v) => v.active).length, 0, 'listing survives a damaged pointer');
  // Saving repairs the pointer.
  const repaired = await save(store, ['a', 'b'], { seed: 6 });
  assert.equal((await store.loadModel('active')).version, repaired.version);
  assert.equal(repaired.version, 10, 'a stray v0009 folder still counts towards numbering');

  fs.writeFileSync(path.join(store.dir, REGISTRY_FILE), '{"lastVersion": "ten"}');
  await rejectsWith(save(store, ['a', 'b']), 'MODEL_CORRUPT');
});

test('bad save input is refused before anything is written', async (t) => {
  const store = await openModelStore(tempStoreDir(t));
  const good = { head: makeHead('softmax', 2), labels: ['a', 'b'], backbone, datasetFingerprint: 'd' };
  const nan = makeHead('softmax', 2);
  nan.layers![0].kernel[3] = Number.NaN;
  const cases: [string, unknown][] = [
    ['MODEL_INVALID', { ...good, labels: ['a', 'b', 'c'] }],
    ['MODEL_INVALID', { ...good, head: nan }],
    ['MODEL_INVALID', { ...good, backbone: { ...backbone, featureSize: 1280 } }],
    ['MODEL_INVALID', { ...good, backbone: { ...backbone, id: '' } }],
    ['MODEL_INVALID', { ...good, metrics: { big: 1n } }],
    ['MODEL_INVALID', { ...good, head: { ...makeHead('knn', 2), examples: { ...makeHead('knn', 2).examples!, k: 0 } } }],
    ['LABELS_INVALID', { ...good, labels: ['a', 'a'] }],
  ];
  for (const [code, input] of cases) {
    assert.throws(() => store.saveModel(input as never), (err: unknown) => isLaneVisionError(err, code), JSON.stringify(Object.keys(input as object)));
  }
  assert.equal(fs.existsSync(store.dir), false, 'nothing written');

  // A loaded engine Backbone can be passed as is: only its description is stored.
  const engineLike = { ...backbone, engine: { self: null as unknown }, release: () => undefined };
  engineLike.engine.self = engineLike;
  const saved = await store.saveModel({ ...good, backbone: engineLike });
  assert.deepEqual(saved.metadata.backbone, backbone);
  await rejectsWith(openModelStore(path.join(store.dir, 'v0001', 'metadata.json')), 'MODEL_STORE_INVALID');
});
